//! `cargo xtask test`: the whole test suite, installing the Python and Node tools it needs first.
//!
//! The steps, in order, each announced by a banner; the first failure stops the run:
//!
//! 1. install pinned `mypy` and the official MCP SDK `mcp` (a Python venv) and `typescript`
//!    (npm) under the tools folder,
//!    skipped when a stamp file says the pinned versions are already there;
//! 2. check that the MCP spec inputs exist;
//! 3. `cargo fmt --all --check` and `cargo clippy --workspace --all-targets -- -D warnings`
//!    (not with `--skip-lint`);
//! 4. `cargo xtask generate --check`;
//! 5. `cargo test --workspace --all-targets` (unit, integration, example and bench targets) with
//!    `PORTICO_TSC`, `PORTICO_MYPY` and `PORTICO_PYTHON` (the venv's python, with the official
//!    MCP SDK) pointing at the installed tools, then the doc tests;
//! 6. the Python SDK (`python_sdk.rs`): its wheel built with maturin and installed into a fresh
//!    venv, the pytest suite against it, mypy over the package, examples and tests;
//!    the TypeScript SDK (`node_sdk.rs`): its addon built, `tsc` over its declarations and
//!    examples, the package packed with npm and installed into a fresh folder, the `node --test`
//!    suite against it (Node 20 from PATH and the conformance tools' Node 22);
//! 7. the official MCP conformance suites against `portico serve everything` through the
//!    recording proxy, every message the server sent validated against its revision's schema
//!    (`cargo xtask conformance` with its defaults, see `conformance.rs`), and beside them the
//!    suite's client scenarios against `portico conformance-client`; every scenario must pass,
//!    but for the client ones pending in `CLIENT_PENDING` (not with `--skip-conformance`); then
//!    the client scenarios again against the Python SDK's and the TypeScript SDK's conformance
//!    clients.
//!
//! The tools folder is `PORTICO_TOOLS_DIR`, by default `<repo>/.tools` (gitignored). Child
//! processes inherit the environment, `CARGO_TARGET_DIR` included.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The Python packages installed into `<tools>/venv`, every one pinned, dependencies included
/// (for Python >= 3.11), so two machines type-check the generated `.pyi` with the same mypy and
/// run the same official-SDK server in the interop tests
/// (`servers/everything/tests/python/official_server.py`).
const PYTHON_PACKAGES: &[&str] = &[
    "mypy==1.20.2",
    "typing_extensions==4.16.0",
    "mypy_extensions==1.2.0",
    "pathspec==1.1.1",
    "librt==0.17.0",
    // The official MCP Python SDK and its dependencies. Keep `MCP_PYTHON_SDK` in
    // servers/everything/tests/it/python_interop.rs in step with the `mcp` pin.
    "mcp==2.3.0",
    "mcp-types==2.3.0",
    "annotated-types==0.8.0",
    "anyio==4.16.0",
    "attrs==26.1.0",
    "cffi==2.1.1",
    "click==8.5.1",
    "cryptography==50.0.2",
    "h11==0.16.0",
    "httpcore2==2.16.2",
    "httpx2==2.16.2",
    "idna==3.20",
    "jsonschema==4.26.0",
    "jsonschema-specifications==2025.9.1",
    "opentelemetry-api==1.45.2",
    "pycparser==3.12",
    "pydantic==2.14.4",
    "pydantic_core==2.50.5",
    "PyJWT==2.15.1",
    "python-multipart==0.0.34",
    "referencing==0.37.0",
    "rpds-py==2026.9.1",
    "sse-starlette==3.7.0",
    "starlette==1.10.0",
    "truststore==0.10.5",
    "typing-inspection==0.4.5",
    "uvicorn==0.54.0",
    // Builds the Python SDK's wheel (sdks/python; see python_sdk.rs).
    "maturin==1.15.0",
];

/// The npm packages installed into `<tools>/node`, pinned exactly.
const NODE_PACKAGES: &[&str] = &[
    "typescript@5.9.3",
    // Node's own types, for type-checking the TypeScript SDK (sdks/typescript; see node_sdk.rs).
    "@types/node@22.20.5",
    "undici-types@6.21.0",
];

/// The oldest Python the pinned mypy and the generated stubs are checked with.
const MIN_PYTHON: (u32, u32) = (3, 11);

/// The oldest Node.js major version supported.
const MIN_NODE_MAJOR: u32 = 20;

/// Name of the file, inside each tool's folder, that records what was installed there.
const STAMP: &str = ".portico-stamp";

/// Options of `cargo xtask test`.
#[derive(clap::Args)]
pub struct Args {
    /// Skip `cargo fmt --check` and `cargo clippy` (for quick local runs; CI never skips them).
    #[arg(long)]
    skip_lint: bool,
    /// Install nothing: use the tools already in the tools folder, or
    /// `PORTICO_TSC`/`PORTICO_MYPY`/`PORTICO_PYTHON`.
    #[arg(long)]
    no_install: bool,
    /// Skip the conformance suites (for quick local runs; CI never skips them).
    #[arg(long)]
    skip_conformance: bool,
}

/// Runs the suite: installs tools, then runs every step, stopping at the first failure.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let root = crate::repo_root();
    check_checkout(&root)?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut report = Report::default();

    println!("portico test suite");
    println!("  repository: {}", root.display());
    println!("  target dir: {}", target_dir(&root).display());
    println!("  tools dir:  {}", tools_dir(&root)?.display());

    banner("tools");
    let tools = match Tools::prepare(&root, !args.no_install) {
        Ok(tools) => tools,
        Err(e) => {
            report.failed("tools", started.elapsed());
            return Ok(report.finish(started, Some(&format!("{e:#}"))));
        }
    };
    report.passed("tools", started.elapsed());

    banner("MCP spec inputs");
    let step = Instant::now();
    if let Err(e) = check_spec_inputs(&root) {
        report.failed("MCP spec inputs", step.elapsed());
        return Ok(report.finish(started, Some(&format!("{e:#}"))));
    }
    report.passed("MCP spec inputs", step.elapsed());

    banner("services");
    print_services();

    // (title, cargo arguments, whether the step runs tests whose counts are summed up)
    let cargo_steps: Vec<(&str, Vec<&str>, bool)> = [
        (!args.skip_lint).then(|| ("cargo fmt --all --check", vec!["fmt", "--all", "--check"], false)),
        (!args.skip_lint).then(|| {
            (
                "cargo clippy --workspace --all-targets -- -D warnings",
                vec!["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"],
                false,
            )
        }),
        Some((
            "cargo xtask generate --check",
            vec!["run", "-q", "-p", "xtask", "--", "generate", "--check"],
            false,
        )),
        Some((
            "cargo test --workspace --all-targets",
            vec!["test", "--workspace", "--all-targets"],
            true,
        )),
        Some((
            "cargo test --workspace --doc",
            vec!["test", "--workspace", "--doc"],
            true,
        )),
    ]
    .into_iter()
    .flatten()
    .collect();

    for (title, cargo_args, counts) in cargo_steps {
        banner(title);
        let step = Instant::now();
        let mut command = Command::new(&cargo);
        command.args(&cargo_args).current_dir(&root);
        tools.set_env(&mut command);
        let status = if counts {
            if std::io::stdout().is_terminal() {
                command.args(["--", "--color=always"]);
            }
            report.ran_tests = true;
            run_counting(&mut command, &mut report.tests)
        } else {
            command.status()
        }
        .with_context(|| format!("starting `{title}`"))?;
        if status.success() {
            report.passed(title, step.elapsed());
        } else {
            report.failed(title, step.elapsed());
            let why = match status.code() {
                Some(code) => format!("`{title}` exited with code {code}"),
                None => format!("`{title}` was killed by a signal"),
            };
            return Ok(report.finish(started, Some(&why)));
        }
    }
    if let Some(exit) = report.sdk_tests(
        started,
        "Python SDK: wheel, pytest in a fresh venv, mypy",
        "Python SDK",
        || crate::python_sdk::test(&root, !args.no_install),
    ) {
        return Ok(exit);
    }
    if let Some(exit) = report.sdk_tests(
        started,
        "TypeScript SDK: addon, tsc, npm pack, node --test of the installed package",
        "TypeScript SDK",
        || crate::node_sdk::test(&root),
    ) {
        return Ok(exit);
    }
    let title = "conformance suites through the recording proxy";
    if !args.skip_conformance {
        banner(title);
        let step = Instant::now();
        match crate::conformance::check(crate::conformance::Args::for_test(!args.no_install)) {
            Ok(true) => {
                report.passed(title, step.elapsed());
                if let Some(exit) = report.sdk_conformance(
                    started,
                    "conformance client scenarios: the Python SDK (sdks/python/examples/conformance_client.py)",
                    "Python conformance client",
                    || crate::python_sdk::conformance(&root),
                ) {
                    return Ok(exit);
                }
                if let Some(exit) = report.sdk_conformance(
                    started,
                    "conformance client scenarios: the TypeScript SDK (sdks/typescript/examples/conformance-client.mjs)",
                    "TypeScript conformance client",
                    || crate::node_sdk::conformance(&root),
                ) {
                    return Ok(exit);
                }
            }
            Ok(false) => {
                report.failed(title, step.elapsed());
                let why = "the conformance suites failed (a scenario did not pass or a message was invalid; \
                           see above, and `cargo xtask conformance` to rerun them alone)";
                return Ok(report.finish(started, Some(why)));
            }
            Err(e) => {
                report.failed(title, step.elapsed());
                return Ok(report.finish(started, Some(&format!("conformance: {e:#}"))));
            }
        }
    } else {
        println!("\nnote: --skip-conformance: the conformance suites were not run (CI runs them)");
    }
    if args.skip_lint {
        println!("\nnote: --skip-lint: cargo fmt and cargo clippy were not run (CI runs them)");
    }
    Ok(report.finish(started, None))
}

/// Runs a `cargo test` command, passing its standard output through line by line and adding up
/// the counts of every `test result:` line into `counts`.
fn run_counting(command: &mut Command, counts: &mut TestCounts) -> std::io::Result<ExitStatus> {
    let mut child = command.stdout(Stdio::piped()).spawn()?;
    if let Some(stdout) = child.stdout.take() {
        let mut out = std::io::stdout();
        for line in BufReader::new(stdout).split(b'\n') {
            let line = line?;
            out.write_all(&line)?;
            out.write_all(b"\n")?;
            out.flush()?;
            counts.add_line(&String::from_utf8_lossy(&line));
        }
    }
    child.wait()
}

/// Tests counted over every test binary the suite ran.
#[derive(Default, Debug, PartialEq)]
struct TestCounts {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl TestCounts {
    /// Adds the counts of a libtest summary line
    /// (`test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; ...`);
    /// other lines are ignored. Colour codes are stripped first.
    fn add_line(&mut self, line: &str) {
        let plain = strip_ansi(line);
        let Some(rest) = plain.trim().strip_prefix("test result: ") else {
            return;
        };
        let Some((_, counts)) = rest.split_once(". ") else {
            return;
        };
        for part in counts.split(';') {
            let mut words = part.split_whitespace();
            let (Some(n), Some(what)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            match what {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => {}
            }
        }
    }
}

/// `text` without ANSI escape sequences (`ESC [ ... letter`).
pub(crate) fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Fails when this binary was built for another checkout than the one cargo runs it in.
///
/// The repository root is compiled in. With one `CARGO_TARGET_DIR` shared by several checkouts,
/// cargo can reuse an `xtask` built in another checkout (same relative paths, sources not newer
/// than the build, as after a copy that keeps modification times), and every step would then
/// test the other checkout. Cargo sets `CARGO_MANIFEST_DIR` at run time too, so compare the two.
pub(crate) fn check_checkout(root: &Path) -> anyhow::Result<()> {
    let Some(manifest_dir) = std::env::var_os("CARGO_MANIFEST_DIR") else {
        return Ok(());
    };
    let Some(running) = Path::new(&manifest_dir).parent() else {
        return Ok(());
    };
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    if !same(running, root) {
        bail!(
            "this xtask binary was built for {} but cargo runs it for {}: cargo reused a build from \
             another checkout sharing CARGO_TARGET_DIR. Touch xtask/src/main.rs (or use another \
             CARGO_TARGET_DIR) and run again",
            root.display(),
            running.display()
        );
    }
    Ok(())
}

/// Prints a step's banner.
pub(crate) fn banner(title: &str) {
    println!("\n==> {title}");
}

/// The steps run so far and how each went.
#[derive(Default)]
struct Report {
    steps: Vec<(String, bool, Duration)>,
    tests: TestCounts,
    /// Whether a step that runs tests has started (only then is a test count printed).
    ran_tests: bool,
}

/// How an SDK's own test run went (`python_sdk::test`, `node_sdk::test`).
pub(crate) struct SdkOutcome {
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Why the step failed, if it did.
    pub failure: Option<String>,
}

impl Report {
    /// Runs an SDK's test step titled `title`, counting its tests; `Some(exit)` ends the run
    /// (`what` names the SDK in the reason).
    fn sdk_tests(
        &mut self,
        started: Instant,
        title: &str,
        what: &str,
        run: impl FnOnce() -> anyhow::Result<SdkOutcome>,
    ) -> Option<ExitCode> {
        banner(title);
        let step = Instant::now();
        let why = match run() {
            Ok(outcome) => {
                self.ran_tests = true;
                self.tests.passed += outcome.passed;
                self.tests.failed += outcome.failed;
                self.tests.ignored += outcome.skipped;
                outcome.failure
            }
            Err(e) => Some(format!("{what}: {e:#}")),
        };
        self.end_step(started, title, step, why)
    }

    /// Runs an SDK's conformance client step (its list of scenarios that did not pass);
    /// `Some(exit)` ends the run.
    fn sdk_conformance(
        &mut self,
        started: Instant,
        title: &str,
        what: &str,
        run: impl FnOnce() -> anyhow::Result<Vec<String>>,
    ) -> Option<ExitCode> {
        banner(title);
        let step = Instant::now();
        let why = match run() {
            Ok(problems) if problems.is_empty() => None,
            Ok(problems) => Some(format!("{what}: {}", problems.join("\n  "))),
            Err(e) => Some(format!("{what}: {e:#}")),
        };
        self.end_step(started, title, step, why)
    }

    /// Records the step as passed, or as failed with `why` (then `Some(exit)`: the run ends).
    fn end_step(&mut self, started: Instant, title: &str, step: Instant, why: Option<String>) -> Option<ExitCode> {
        match why {
            None => {
                self.passed(title, step.elapsed());
                None
            }
            Some(why) => {
                self.failed(title, step.elapsed());
                Some(self.finish(started, Some(&why)))
            }
        }
    }

    fn passed(&mut self, title: &str, took: Duration) {
        self.steps.push((title.to_owned(), true, took));
    }

    fn failed(&mut self, title: &str, took: Duration) {
        self.steps.push((title.to_owned(), false, took));
    }

    /// Prints the summary and the total time, and returns the exit code: `failure` is the reason
    /// the run stopped, if it did.
    fn finish(&self, started: Instant, failure: Option<&str>) -> ExitCode {
        let mut out = String::from("\n==> summary\n");
        for (title, ok, took) in &self.steps {
            let _ = writeln!(
                out,
                "  {:<4}  {:>8}  {title}",
                if *ok { "ok" } else { "FAIL" },
                human(*took)
            );
        }
        let total = human(started.elapsed());
        let code = match failure {
            None => {
                let _ = writeln!(out, "all {} steps succeeded\ntotal time: {total}", self.steps.len());
                ExitCode::SUCCESS
            }
            Some(why) => {
                let _ = writeln!(out, "FAILED: {why}\ntotal time: {total}");
                ExitCode::FAILURE
            }
        };
        if self.ran_tests {
            // Last, alone on its line: the tests run, over every test binary.
            let TestCounts {
                passed,
                failed,
                ignored,
            } = self.tests;
            let _ = writeln!(out, "tests: {passed} passed, {failed} failed, {ignored} skipped");
        }
        print!("{out}");
        code
    }
}

/// `1m 05s` or `4.2s`.
pub(crate) fn human(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 60 {
        format!("{}m {:02}s", secs / 60, secs % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// Where cargo puts its output: `CARGO_TARGET_DIR`, else `<repo>/target`.
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

/// The tools folder: `PORTICO_TOOLS_DIR` (a relative path is taken from the current directory),
/// else `<repo>/.tools`.
pub(crate) fn tools_dir(root: &Path) -> anyhow::Result<PathBuf> {
    match std::env::var_os("PORTICO_TOOLS_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => std::path::absolute(PathBuf::from(&dir))
            .with_context(|| format!("PORTICO_TOOLS_DIR={}", PathBuf::from(dir).display())),
        None => Ok(root.join(".tools")),
    }
}

/// The external checkers the tests call, as absolute paths (`None`: not available).
struct Tools {
    tsc: Option<PathBuf>,
    mypy: Option<PathBuf>,
    /// A python with the official MCP SDK (`mcp`) installed.
    python: Option<PathBuf>,
}

impl Tools {
    /// Finds or installs `tsc`, `mypy` and a python with `mcp`. A `PORTICO_TSC`, `PORTICO_MYPY`
    /// or `PORTICO_PYTHON` already set in the environment wins over the tools folder.
    fn prepare(root: &Path, install: bool) -> anyhow::Result<Self> {
        let dir = tools_dir(root)?;
        // Check the presets before installing anything, so a bad one fails at once.
        let (preset_mypy, preset_tsc) = (preset("PORTICO_MYPY")?, preset("PORTICO_TSC")?);
        let preset_python = preset("PORTICO_PYTHON")?;
        let venv = dir.join("venv");
        if install && (preset_mypy.is_none() || preset_python.is_none()) {
            install_python(&venv)?;
        }
        let mypy = match preset_mypy {
            Some(path) => Some(path),
            None => existing(venv.join("bin/mypy"), "PORTICO_MYPY"),
        };
        let python = match preset_python {
            Some(path) => Some(path),
            None => existing(venv.join("bin/python"), "PORTICO_PYTHON"),
        };
        let tsc = match preset_tsc {
            Some(path) => Some(path),
            None if install => Some(install_node(&dir.join("node"))?),
            None => existing(dir.join("node/node_modules/.bin/tsc"), "PORTICO_TSC"),
        };
        if let Some(path) = &mypy {
            println!("PORTICO_MYPY={}", path.display());
        }
        if let Some(path) = &tsc {
            println!("PORTICO_TSC={}", path.display());
        }
        if let Some(path) = &python {
            println!("PORTICO_PYTHON={}", path.display());
        }
        Ok(Self { tsc, mypy, python })
    }

    /// Puts `PORTICO_TSC`, `PORTICO_MYPY` and `PORTICO_PYTHON` into a child's environment.
    fn set_env(&self, command: &mut Command) {
        if let Some(tsc) = &self.tsc {
            command.env("PORTICO_TSC", tsc);
        }
        if let Some(mypy) = &self.mypy {
            command.env("PORTICO_MYPY", mypy);
        }
        if let Some(python) = &self.python {
            command.env("PORTICO_PYTHON", python);
        }
    }
}

/// A tool path the user set in `var`, checked to exist.
fn preset(var: &str) -> anyhow::Result<Option<PathBuf>> {
    let Some(value) = std::env::var_os(var).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let path = PathBuf::from(&value);
    if !path.is_file() {
        bail!(
            "{var}={} is set but is not a file; unset it to let cargo xtask test install the tool",
            path.display()
        );
    }
    println!("{var} is set: using {}", path.display());
    Ok(Some(path))
}

/// With `--no-install`: the tool at `path` if it is there, else a warning.
fn existing(path: PathBuf, var: &str) -> Option<PathBuf> {
    if path.is_file() {
        Some(path)
    } else {
        println!(
            "warning: --no-install and no {} ({var} left unset); run without --no-install once",
            path.display()
        );
        None
    }
}

/// True when the stamp in `dir` records exactly `pins`.
pub(crate) fn stamp_matches(dir: &Path, pins: &str) -> bool {
    std::fs::read_to_string(dir.join(STAMP)).is_ok_and(|s| s == pins)
}

/// Creates `dir` afresh (removing what an older or broken install left there).
pub(crate) fn fresh_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// Runs `command`, failing with `what` and the command line when it cannot start or fails.
pub(crate) fn run_checked(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let line = format!("{command:?}");
    let status = command
        .status()
        .with_context(|| format!("{what}: could not start {line}"))?;
    if !status.success() {
        bail!("{what}: {line} failed ({status})");
    }
    Ok(())
}

/// The stdout of `program args…`, or `None` when it cannot be run or fails.
pub(crate) fn output_of(program: impl Into<OsString>, args: &[impl AsRef<OsStr>]) -> Option<String> {
    let out = Command::new(program.into()).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The check that the venv's python imports the official MCP SDK.
const MCP_PROBE: &[&str] = &["-c", "import mcp.server.mcpserver, uvicorn"];

/// Makes sure `venv` holds the pinned Python packages (mypy, and the MCP SDK for
/// `PORTICO_PYTHON`); returns the path of its `mypy`.
fn install_python(venv: &Path) -> anyhow::Result<PathBuf> {
    let mypy = venv.join("bin/mypy");
    let pins = PYTHON_PACKAGES.join("\n") + "\n";
    if stamp_matches(venv, &pins)
        && output_of(&mypy, &["--version"]).is_some()
        && output_of(venv.join("bin/python"), MCP_PROBE).is_some()
    {
        println!("python tools up to date in {}", venv.display());
        return Ok(mypy);
    }
    let python = "python3";
    let Some(version) = output_of(python, &["-c", "import sys; print('%d.%d' % sys.version_info[:2])"]) else {
        bail!(
            "python3 not found on PATH. The tests type-check generated Python stubs with mypy and \
             run a server on the official MCP Python SDK, which cargo xtask test installs into a \
             venv; it needs Python >= {}.{} with the venv module (Debian/Ubuntu: `apt-get install \
             python3 python3-venv`; macOS: `brew install python`; or \
             https://www.python.org/downloads/). Or set PORTICO_MYPY to an existing mypy and \
             PORTICO_PYTHON to a python with the pinned `mcp` installed.",
            MIN_PYTHON.0,
            MIN_PYTHON.1
        );
    };
    let parsed = version
        .split_once('.')
        .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)));
    match parsed {
        Some(v) if v >= MIN_PYTHON => {}
        _ => bail!(
            "python3 is version {version}; the tests need Python >= {}.{}. Install a newer Python, \
             put it first on PATH as python3, or set PORTICO_MYPY to an existing mypy and \
             PORTICO_PYTHON to a python with the pinned `mcp` installed.",
            MIN_PYTHON.0,
            MIN_PYTHON.1
        ),
    }
    println!(
        "installing {} into {} (Python {version})",
        PYTHON_PACKAGES.join(" "),
        venv.display()
    );
    fresh_dir(venv)?;
    run_checked(
        Command::new(python).arg("-m").arg("venv").arg(venv),
        "creating the Python venv (Debian/Ubuntu need `apt-get install python3-venv`)",
    )?;
    run_checked(
        Command::new(venv.join("bin/python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
            ])
            .args(PYTHON_PACKAGES),
        "installing Python packages with pip",
    )?;
    let Some(reported) = output_of(&mypy, &["--version"]) else {
        bail!("{} does not run after installing it", mypy.display());
    };
    println!("{reported}");
    if output_of(venv.join("bin/python"), MCP_PROBE).is_none() {
        bail!(
            "{} cannot import the MCP SDK after installing it",
            venv.join("bin/python").display()
        );
    }
    std::fs::write(venv.join(STAMP), pins).with_context(|| format!("writing the stamp in {}", venv.display()))?;
    Ok(mypy)
}

/// Makes sure `dir` holds the pinned npm packages; returns the path of its `tsc`.
fn install_node(dir: &Path) -> anyhow::Result<PathBuf> {
    let tsc = dir.join("node_modules/.bin/tsc");
    let how = "The tests check generated TypeScript definitions with tsc, which cargo xtask test \
               installs with npm. Install Node.js >= 20 with npm (Debian/Ubuntu: `apt-get install \
               nodejs npm`, or https://nodejs.org/en/download), or set PORTICO_TSC to an existing tsc.";
    npm_install(
        dir,
        NODE_PACKAGES,
        NpmProbe {
            tools: "node tools",
            name: "tsc",
            program: &tsc,
            args: &[OsStr::new("--version")],
        },
        how,
    )?;
    Ok(tsc)
}

/// The program that shows an npm install in a folder works, and how messages name things.
pub(crate) struct NpmProbe<'a> {
    /// What the folder holds, in messages (`node tools up to date in …`).
    pub tools: &'a str,
    /// The name printed before what `program` reports after an install (`tsc Version 5.9.3`).
    pub name: &'a str,
    /// A program installed into the folder, run with `args`; it must succeed.
    pub program: &'a Path,
    /// The arguments `program` is run with (`--version`).
    pub args: &'a [&'a OsStr],
}

/// Makes sure `dir` holds exactly the npm `packages` (each pinned as `name@version`), installed
/// with the `node` and `npm` on PATH. Nothing is installed when the stamp in `dir` records the
/// same pins and the probe still runs; otherwise `dir` is emptied and installed afresh, the probe
/// must run, and the stamp is written. `how` tells the user how to get Node.js and npm.
pub(crate) fn npm_install(
    dir: &Path,
    packages: &[impl AsRef<str>],
    probe: NpmProbe<'_>,
    how: &str,
) -> anyhow::Result<()> {
    let packages: Vec<&str> = packages.iter().map(AsRef::as_ref).collect();
    let pins = packages.join("\n") + "\n";
    if stamp_matches(dir, &pins) && output_of(probe.program, probe.args).is_some() {
        println!("{} up to date in {}", probe.tools, dir.display());
        return Ok(());
    }
    let Some(node_version) = output_of("node", &["--version"]) else {
        bail!("node not found on PATH. {how}");
    };
    let major = node_version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    if major.is_none_or(|m| m < MIN_NODE_MAJOR) {
        bail!("node is {node_version}; Node.js >= {MIN_NODE_MAJOR} is needed. {how}");
    }
    if output_of("npm", &["--version"]).is_none() {
        bail!("npm not found on PATH (node {node_version} is). {how}");
    }
    println!(
        "installing {} into {} (node {node_version})",
        packages.join(" "),
        dir.display()
    );
    fresh_dir(dir)?;
    run_checked(
        Command::new("npm")
            .arg("install")
            .arg("--prefix")
            .arg(dir)
            .args(["--save-exact", "--no-audit", "--no-fund", "--loglevel=error"])
            .args(&packages)
            .env("npm_config_update_notifier", "false"),
        "installing npm packages",
    )?;
    let Some(reported) = output_of(probe.program, probe.args) else {
        bail!("{} does not run after installing it", probe.program.display());
    };
    println!("{} {reported}", probe.name);
    std::fs::write(dir.join(STAMP), pins).with_context(|| format!("writing the stamp in {}", dir.display()))?;
    Ok(())
}

/// Fails unless the spec folder holds `<revision>/schema.json` for every revision of
/// `spec/PINNED.toml` (hashes are checked later, by `cargo xtask generate --check`).
fn check_spec_inputs(root: &Path) -> anyhow::Result<()> {
    let dir = crate::spec_dir();
    let how = "MCP_SPEC_DIR must point at the MCP spec folder (one folder per revision, each with \
               schema.json); by default it is ../shared/mcp-spec beside the repository";
    if !dir.is_dir() {
        bail!("the MCP spec folder {} does not exist: {how}", dir.display());
    }
    let pinned = portico_codegen::spec::Pinned::load(&root.join("spec/PINNED.toml"))?;
    let missing: Vec<String> = pinned
        .revisions
        .iter()
        .map(|r| dir.join(&r.name).join("schema.json"))
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    if !missing.is_empty() {
        bail!("missing MCP spec inputs: {}. {how}", missing.join(", "));
    }
    println!("{} revisions in {}", pinned.revisions.len(), dir.display());
    Ok(())
}

/// The services the tests will use, by name and address.
const SERVICES: &[(&str, &str)] = &[
    ("PostgreSQL", "127.0.0.1:5432"),
    ("MariaDB", "127.0.0.1:3306"),
    ("Redis", "127.0.0.1:6379"),
];

/// Whether each service accepts TCP connections, as `(name, address, up)`.
fn service_status() -> Vec<(&'static str, &'static str, bool)> {
    SERVICES
        .iter()
        .map(|&(name, addr)| {
            let up = addr
                .parse::<SocketAddr>()
                .is_ok_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok());
            (name, addr, up)
        })
        .collect()
}

/// Prints whether each service is up. No test needs them yet, so a service that is down is only
/// reported; once tests use them this becomes a failure (`.ci/run` starts them).
fn print_services() {
    for (name, addr, up) in service_status() {
        println!(
            "  {name:<10} {addr:<15} {}",
            if up { "up" } else { "DOWN (not required yet)" }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_over_libtest_summaries_and_ignore_other_lines() {
        let mut counts = TestCounts::default();
        for line in [
            "running 3 tests",
            "test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s",
            "test result: ok. 5 passed; 0 failed; 0 ignored; 0 measured; 2 filtered out; finished in 1.00s",
            "\u{1b}[31mtest result: \u{1b}[0mFAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out",
            "test parse::passed ... ok",
        ] {
            counts.add_line(line);
        }
        assert_eq!(
            counts,
            TestCounts {
                passed: 10,
                failed: 1,
                ignored: 1
            }
        );
    }

    #[test]
    fn strip_ansi_removes_colour_codes_only() {
        assert_eq!(strip_ansi("\u{1b}[32mok\u{1b}[0m. 1 passed"), "ok. 1 passed");
        assert_eq!(strip_ansi("plain"), "plain");
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(Duration::from_millis(4_200)), "4.2s");
        assert_eq!(human(Duration::from_secs(65)), "1m 05s");
    }
}
