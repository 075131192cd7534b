//! `cargo xtask bench sdk`: Portico's Python and TypeScript SDKs against the official MCP SDKs
//! (`mcp` for Python, `@modelcontextprotocol/sdk` for TypeScript), calling the `echo` tool of
//! `portico serve everything` over Streamable HTTP in one run; writes its section of
//! `docs/benchmarks.md`.
//!
//! Each client runs in a small driver (`bench/sdk/python_driver.py`, `bench/sdk/node_driver.mjs`)
//! that prints one JSON line. Portico's SDKs are built in release mode and installed as users get
//! them (the wheel into a venv; the npm tarball into a folder) under
//! `$CARGO_TARGET_DIR/bench-sdk/`; the official SDKs are the pinned ones of the tools folder
//! (`cargo xtask test` installs them). The server is pinned to one core and the drivers to the
//! other. Each cell (a protocol generation × calls in flight) starts a fresh server and runs the
//! clients in turn, round after round (the order rotated each round), each round a fresh process.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::bench_client::{Figures, Round};
use crate::bench_server::{
    Binaries, Server, Subject as ServerKind, check_cpus, cpu_model, disturbance, git, least_disturbed, ratio,
    splice_section, today, write_report,
};
use crate::test::{fresh_dir, output_of, run_checked, target_dir, tools_dir};

/// Other processes using more than this share of a core during a cell make its figures suspect.
const OTHER_CPU_WARNING: f64 = 10.0;
/// Portico's Python SDK against the official Python client, calls/s.
const PYTHON_GOAL: f64 = 3.0;
/// Portico's TypeScript SDK against the official TypeScript client, calls/s.
const TYPESCRIPT_GOAL: f64 = 1.5;
/// The first line of the section this task owns in `docs/benchmarks.md`.
const BEGIN: &str =
    "<!-- begin: written by `cargo xtask bench sdk` (xtask/src/bench_sdk.rs); run it again rather than editing -->";
/// The last line of that section.
const END: &str = "<!-- end: cargo xtask bench sdk -->";

/// `cargo xtask bench sdk` options.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Seconds measured per client and cell, split over the rounds.
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Seconds of warm-up before each round, not measured.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Rounds per cell: every client runs this many times, in turn.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Calls in flight (1: sequential).
    #[arg(long = "concurrency", value_delimiter = ',', default_values_t = [1, 32])]
    concurrency: Vec<usize>,
    /// A smoke run: one round of 1 s after 0.5 s of warm-up per client and cell;
    /// docs/benchmarks.md is left alone.
    #[arg(long)]
    quick: bool,
    /// Print the report only; leave docs/benchmarks.md alone.
    #[arg(long)]
    no_docs: bool,
    /// How many times a cell is measured again when other processes used more than 10% of a
    /// core meanwhile (the least disturbed attempt is reported).
    #[arg(long, default_value_t = 0)]
    retries: usize,
    /// The CPU the server is pinned to.
    #[arg(long, default_value_t = 0)]
    server_cpu: usize,
    /// The CPU the clients are pinned to.
    #[arg(long, default_value_t = 1)]
    client_cpu: usize,
}

/// The four clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    /// The official Python SDK, `mcp.Client`.
    OfficialPython,
    /// Portico's Python SDK, `portico.Client`.
    PorticoPython,
    /// The official TypeScript SDK, `Client` over `StreamableHTTPClientTransport`.
    OfficialNode,
    /// Portico's TypeScript SDK, `@portico-mcp/client`.
    PorticoNode,
}

const CLIENTS: [Client; 4] = [
    Client::OfficialPython,
    Client::PorticoPython,
    Client::OfficialNode,
    Client::PorticoNode,
];

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::OfficialPython => "official Python",
            Client::PorticoPython => "Portico Python",
            Client::OfficialNode => "official TS",
            Client::PorticoNode => "Portico TS",
        }
    }

    fn file_name(self) -> &'static str {
        match self {
            Client::OfficialPython => "official-python",
            Client::PorticoPython => "portico-python",
            Client::OfficialNode => "official-node",
            Client::PorticoNode => "portico-node",
        }
    }

    /// `--sdk` of the driver.
    fn sdk(self) -> &'static str {
        match self {
            Client::OfficialPython | Client::OfficialNode => "official",
            Client::PorticoPython | Client::PorticoNode => "portico",
        }
    }

    /// Whether the client speaks the generation of `mode` (the official TypeScript SDK, 1.x,
    /// stops at 2025-11-25).
    fn speaks(self, mode: Mode) -> bool {
        !(self == Client::OfficialNode && mode == Mode::Stateless)
    }
}

/// The protocol generations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A 2025-11-25 session (initialize, then `Mcp-Session-Id`): all four clients.
    Stateful,
    /// 2026-07-28, stateless: the official TypeScript SDK does not speak it.
    Stateless,
}

impl Mode {
    fn arg(self) -> &'static str {
        match self {
            Mode::Stateful => "stateful",
            Mode::Stateless => "stateless",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Mode::Stateful => "2025-11-25 session",
            Mode::Stateless => "2026-07-28 stateless",
        }
    }

    /// The revision the driver must report as negotiated.
    fn revision(self) -> &'static str {
        match self {
            Mode::Stateful => "2025-11-25",
            Mode::Stateless => "2026-07-28",
        }
    }
}

const MODES: [Mode; 2] = [Mode::Stateful, Mode::Stateless];

/// Where each client's runtime and package are.
struct Setup {
    binaries: Binaries,
    /// The driver scripts' folder (`bench/sdk`).
    drivers: PathBuf,
    /// The python of the venv with Portico's release wheel.
    portico_python: PathBuf,
    /// The python of the tools venv, with the official `mcp`.
    official_python: PathBuf,
    /// `node_modules` holding the installed `@portico-mcp/client` tarball.
    portico_node_modules: PathBuf,
    /// `node_modules` holding the official `@modelcontextprotocol/sdk`.
    official_node_modules: PathBuf,
    /// What ran, for the report: `(client, versions)`.
    versions: Vec<(Client, String)>,
}

/// One cell: a generation at a concurrency, every client that speaks it.
#[derive(Debug, Clone)]
struct Cell {
    mode: Mode,
    concurrency: usize,
    figures: Vec<(Client, Figures)>,
}

impl Cell {
    fn other_cpu(&self) -> f64 {
        self.figures.iter().map(|(_, f)| f.other_cpu).fold(0.0, f64::max)
    }

    fn get(&self, client: Client) -> Option<&Figures> {
        self.figures.iter().find(|(c, _)| *c == client).map(|(_, f)| f)
    }

    /// `portico / official` calls/s, when both ran.
    fn speedup(&self, portico: Client, official: Client) -> Option<f64> {
        let (p, o) = (self.get(portico)?, self.get(official)?);
        (o.calls_per_second > 0.0).then(|| p.calls_per_second / o.calls_per_second)
    }
}

/// Runs the benchmark.
pub fn run(mut args: Args) -> anyhow::Result<ExitCode> {
    if args.quick {
        args.duration = 1.0;
        args.warmup = 0.5;
        args.rounds = 1;
        args.retries = 0;
        args.no_docs = true;
    }
    args.rounds = args.rounds.max(1);
    if args.concurrency.is_empty() || args.concurrency.contains(&0) {
        bail!("--concurrency takes positive numbers");
    }
    check_cpus(("--server-cpu", args.server_cpu), ("--client-cpu", args.client_cpu))?;
    let root = crate::repo_root();
    let setup = prepare(&root)?;
    let logs = target_dir(&root).join("bench-sdk/logs");
    fresh_dir(&logs)?;
    let cells_count: usize = MODES.len() * args.concurrency.len();
    println!(
        "{cells_count} cells x up to 4 clients x {} round(s) of {:.1} s after {} s of warm-up; server on CPU {}, clients on CPU {}; logs in {}",
        args.rounds,
        args.duration / args.rounds as f64,
        args.warmup,
        args.server_cpu,
        args.client_cpu,
        logs.display()
    );
    let mut cells = Vec::new();
    for mode in MODES {
        for &concurrency in &args.concurrency {
            cells.push(least_disturbed(args.retries, Cell::other_cpu, || {
                run_cell(&setup, &args, &logs, mode, concurrency)
            })?);
        }
    }
    let report = render(&args, &setup, &cells);
    write_report(&root, &report, args.no_docs, |old| {
        splice_section(old, BEGIN, END, &report)
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Builds the server and both of Portico's SDKs in release mode, installs the SDKs, and finds
/// the official ones.
fn prepare(root: &Path) -> anyhow::Result<Setup> {
    let binaries = crate::bench_server::build(root)?;
    let tools = tools_dir(root)?;
    let work = target_dir(root).join("bench-sdk");
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;

    let official_python = tools.join("venv/bin/python");
    let official_node_modules = tools.join("conformance/node_modules");
    let official_ts_package = official_node_modules.join("@modelcontextprotocol/sdk/package.json");
    let python_probe = ["-c", "import importlib.metadata as m; print(m.version('mcp'))"];
    let Some(mcp_version) = output_of(&official_python, &python_probe) else {
        bail!(
            "{} cannot import the official `mcp`: `cargo xtask test` installs it into the tools folder \
             (PORTICO_TOOLS_DIR, else .tools)",
            official_python.display()
        );
    };
    let ts_version = std::fs::read_to_string(&official_ts_package)
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|package| package["version"].as_str().map(str::to_owned))
        .with_context(|| {
            format!(
                "{} is missing: `cargo xtask conformance` installs the official TypeScript SDK with the suite \
                 (PORTICO_TOOLS_DIR, else .tools)",
                official_ts_package.display()
            )
        })?;

    let portico_python = install_python_sdk(root, &tools, &work)?;
    let portico_node_modules = install_node_sdk(root, &work)?;
    let python = output_of(&official_python, &["--version"]).unwrap_or_default();
    let node = output_of("node", &["--version"]).unwrap_or_default();
    Ok(Setup {
        binaries,
        drivers: root.join("bench/sdk"),
        portico_python,
        official_python,
        portico_node_modules,
        official_node_modules,
        versions: vec![
            (Client::OfficialPython, format!("`mcp` {mcp_version}, {python}")),
            (Client::PorticoPython, format!("`portico` (release wheel), {python}")),
            (
                Client::OfficialNode,
                format!("`@modelcontextprotocol/sdk` {ts_version}, Node {node}"),
            ),
            (
                Client::PorticoNode,
                format!("`@portico-mcp/client` (release addon), Node {node}"),
            ),
        ],
    })
}

/// Builds the wheel in release mode with the tools venv's maturin and installs it into
/// `work/venv` (created once, the wheel reinstalled each run); returns that venv's python.
fn install_python_sdk(root: &Path, tools: &Path, work: &Path) -> anyhow::Result<PathBuf> {
    let maturin = tools.join("venv/bin/maturin");
    if output_of(&maturin, &["--version"]).is_none() {
        bail!(
            "{} does not run: `cargo xtask test` installs it into the tools venv",
            maturin.display()
        );
    }
    let wheels = work.join("wheels");
    fresh_dir(&wheels)?;
    run_checked(
        Command::new(&maturin)
            .args(["build", "--release", "--quiet", "--manifest-path"])
            .arg(root.join("sdks/python/Cargo.toml"))
            .arg("--out")
            .arg(&wheels),
        "building the Python wheel (release) with maturin",
    )?;
    let wheel = std::fs::read_dir(&wheels)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .context("maturin built no wheel")?;
    let venv = work.join("venv");
    let python = venv.join("bin/python");
    if output_of(&python, &["--version"]).is_none() {
        fresh_dir(&venv)?;
        run_checked(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            "creating the benchmark's venv",
        )?;
    }
    run_checked(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
            ])
            .args(["--no-index", "--no-deps", "--force-reinstall"])
            .arg(&wheel),
        "installing the release wheel into the benchmark's venv",
    )?;
    Ok(python)
}

/// Builds the addon in release mode, packs the package with it (from a copy of
/// `sdks/typescript`, leaving the development addon there alone) and installs the tarball into
/// a fresh folder; returns that folder's `node_modules`.
fn install_node_sdk(root: &Path, work: &Path) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run_checked(
        Command::new(cargo)
            .args(["build", "--release", "-q", "-p", "portico-node"])
            .current_dir(root),
        "building the Node addon (cargo build --release -p portico-node)",
    )?;
    let sdk = root.join("sdks/typescript");
    let package = work.join("ts-package");
    fresh_dir(&package)?;
    for file in ["package.json", "README.md"] {
        std::fs::copy(sdk.join(file), package.join(file)).with_context(|| format!("copying {file}"))?;
    }
    copy_files(&sdk.join("lib"), &package.join("lib"), |_| true)?;
    copy_files(&sdk.join("src/generated"), &package.join("src/generated"), |name| {
        name.ends_with(".d.ts")
    })?;
    let built = target_dir(root).join("release/libportico_node.so");
    let addon = package.join("portico.node");
    let stripped = Command::new("strip")
        .arg("-o")
        .arg(&addon)
        .arg(&built)
        .status()
        .is_ok_and(|s| s.success());
    if !stripped {
        std::fs::copy(&built, &addon).with_context(|| format!("copying {}", built.display()))?;
    }
    let packed = work.join("pack");
    fresh_dir(&packed)?;
    let output = Command::new("npm")
        .args(["pack", "--silent", "--pack-destination"])
        .arg(&packed)
        .current_dir(&package)
        .env("npm_config_update_notifier", "false")
        .output()
        .context("starting npm pack")?;
    if !output.status.success() {
        bail!("npm pack failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let tarball = packed.join(String::from_utf8_lossy(&output.stdout).trim());
    let app = work.join("node-app");
    fresh_dir(&app)?;
    std::fs::write(
        app.join("package.json"),
        "{\"name\": \"portico-bench-sdk\", \"private\": true, \"type\": \"module\"}\n",
    )?;
    run_checked(
        Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefer-offline", "--silent"])
            .arg(&tarball)
            .current_dir(&app)
            .env("npm_config_update_notifier", "false"),
        "installing the packed @portico-mcp/client into a fresh folder",
    )?;
    Ok(app.join("node_modules"))
}

/// Copies the files of `from` whose name `keep` accepts into `to` (not recursively).
fn copy_files(from: &Path, to: &Path, keep: impl Fn(&str) -> bool) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_file() && keep(&entry.file_name().to_string_lossy()) {
            std::fs::copy(entry.path(), to.join(entry.file_name()))
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// One cell: a fresh server, then every client that speaks `mode` in turn for `--rounds`
/// rounds, the first client of a round moving on by one each round.
fn run_cell(setup: &Setup, args: &Args, logs: &Path, mode: Mode, concurrency: usize) -> anyhow::Result<Cell> {
    let name = format!("server-{}-{concurrency}", mode.arg());
    let mut server = Server::start(
        &setup.binaries,
        ServerKind::Portico,
        args.server_cpu,
        &logs.join(format!("{name}.log")),
    )?;
    let clients: Vec<Client> = CLIENTS.into_iter().filter(|c| c.speaks(mode)).collect();
    let mut rounds: Vec<Vec<Round>> = clients.iter().map(|_| Vec::new()).collect();
    for round in 0..args.rounds {
        for k in 0..clients.len() {
            let i = (round + k) % clients.len();
            let client = clients[i];
            let log = logs.join(format!(
                "{}-{}-{concurrency}-{round}.log",
                client.file_name(),
                mode.arg()
            ));
            let measured = run_driver(setup, args, &server, client, mode, concurrency, &log).with_context(|| {
                format!(
                    "{} {} c={concurrency}; see {} and {}",
                    client.name(),
                    mode.label(),
                    log.display(),
                    server.log.display()
                )
            })?;
            server.check_alive()?;
            rounds[i].push(measured);
        }
    }
    let mut cell = Cell {
        mode,
        concurrency,
        figures: Vec::new(),
    };
    for (client, rounds) in clients.into_iter().zip(&rounds) {
        let f = Figures::of(rounds);
        println!(
            "  {:<20} c={concurrency:<3} {:<15} {:>7.0} calls/s  p50 {:>7.0} µs  p99 {:>7.0} µs  client CPU {:>3.0}% ({:>6.1} µs/call)  peak RSS {:>6.1} MiB  server CPU {:>3.0}%  other CPU {:>3.0}%{}",
            mode.label(),
            client.name(),
            f.calls_per_second,
            f.p50_us,
            f.p99_us,
            f.client_cpu,
            f.cpu_us_per_call(),
            f.peak_rss_kib as f64 / 1024.0,
            f.server_cpu,
            f.other_cpu,
            if f.other_cpu > OTHER_CPU_WARNING {
                "  <- other work ran meanwhile"
            } else {
                ""
            }
        );
        cell.figures.push((client, f));
    }
    Ok(cell)
}

/// One round: a driver process pinned to the client CPU.
fn run_driver(
    setup: &Setup,
    args: &Args,
    server: &Server,
    client: Client,
    mode: Mode,
    concurrency: usize,
    log: &Path,
) -> anyhow::Result<Round> {
    let file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let seconds = args.duration / args.rounds as f64;
    let mut command = Command::new("taskset");
    command.arg("-c").arg(args.client_cpu.to_string());
    match client {
        Client::OfficialPython | Client::PorticoPython => {
            let python = if client == Client::PorticoPython {
                &setup.portico_python
            } else {
                &setup.official_python
            };
            command.arg(python).arg(setup.drivers.join("python_driver.py"));
        }
        Client::OfficialNode | Client::PorticoNode => {
            let modules = if client == Client::PorticoNode {
                &setup.portico_node_modules
            } else {
                &setup.official_node_modules
            };
            // `--no-warnings`: the official SDK (1.32) adds an abort listener to one shared
            // `AbortSignal` per request and never removes it, and Node would print a
            // `MaxListenersExceededWarning` on every call after the 1500th, which is the
            // driver's cost, not the SDK's.
            command
                .arg("node")
                .arg("--no-warnings")
                .arg(setup.drivers.join("node_driver.mjs"))
                .arg("--node-modules")
                .arg(modules);
        }
    }
    let output = command
        .args(["--sdk", client.sdk(), "--url", &server.url, "--mode", mode.arg()])
        .args(["--concurrency", &concurrency.to_string()])
        .args(["--duration", &seconds.to_string(), "--warmup", &args.warmup.to_string()])
        .args(["--server-pid", &server.pid().to_string()])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stderr(file)
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!("the driver failed ({})", output.status);
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let report: Value = text
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line.trim()).ok())
        .with_context(|| format!("no JSON report in the driver's output {text:?}"))?;
    if report["protocol_version"] != mode.revision() {
        bail!(
            "the client negotiated {} where {} was asked",
            report["protocol_version"],
            mode.revision()
        );
    }
    let number = |key: &str| report[key].as_f64().with_context(|| format!("{key} in {report}"));
    Ok(Round {
        calls: number("calls")?,
        seconds: number("seconds")?,
        p50_us: number("p50_us")?,
        p99_us: number("p99_us")?,
        client_cpu: number("client_cpu_percent")?,
        server_cpu: number("server_cpu_percent")?,
        other_cpu: number("other_cpu_percent")?,
        peak_rss_kib: report["peak_rss_kib"]
            .as_u64()
            .with_context(|| format!("peak_rss_kib in {report}"))?,
    })
}

/// The report: what was measured, the tables, the goals.
fn render(args: &Args, setup: &Setup, cells: &[Cell]) -> String {
    let mut out = String::new();
    let line = |out: &mut String, text: &str| {
        out.push_str(text);
        out.push('\n');
    };
    line(&mut out, "## SDKs (`cargo xtask bench sdk`)\n");
    line(
        &mut out,
        "What it measures: Portico's Python SDK (`portico`) and TypeScript SDK (`@portico-mcp/client`),\n\
         both over the one Rust client core, against the official MCP SDKs (`mcp.Client` for Python;\n\
         `Client` over `StreamableHTTPClientTransport` of `@modelcontextprotocol/sdk` for TypeScript),\n\
         each calling `tools/call` of the `echo` tool of `portico serve everything` (release build) over\n\
         Streamable HTTP, closed loop, with 1 (sequential) or 32 calls in flight sharing one client, its\n\
         tools listed once first. The drivers are `bench/sdk/python_driver.py` and\n\
         `bench/sdk/node_driver.mjs`; Portico's SDKs are release builds installed as users get them (the\n\
         wheel into a venv, the npm tarball into a folder). Like is compared with like: every client\n\
         opens a 2025-11-25 session (the official TypeScript SDK's newest revision); the 2026-07-28\n\
         stateless cells have both Python SDKs and Portico's TypeScript SDK, which has no official\n\
         counterpart there. The negotiated revision is checked on every run. Each call's timeout is\n\
         the SDK's own (10 s), so the drivers add no per-call wrapper; Node runs with `--no-warnings`\n\
         (the official SDK 1.32 leaves an abort listener on one shared `AbortSignal` per request, and\n\
         Node would print a warning on every call after the 1500th).\n\
         \n\
         Each cell starts a fresh server pinned with `taskset` to CPU 0 and runs the clients, pinned to\n\
         CPU 1, in turn, round after round (the order rotated each round; each round a fresh process,\n\
         after a warm-up), so a drift in the machine's speed reaches all alike. calls/s is over all\n\
         rounds; latency is per call, of the median round; client CPU is the driver process's user +\n\
         system time over the measured windows (every thread; µs/call: per answered call); peak RSS is\n\
         its `VmHWM` (largest over rounds), interpreter included; server CPU is the server's, other CPU\n\
         the rest of the machine's, in % of one core.\n",
    );
    line(&mut out, "Clients:\n");
    for (client, version) in &setup.versions {
        line(&mut out, &format!("- {}: {version}", client.name()));
    }
    line(&mut out, "");
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    line(
        &mut out,
        &format!(
            "Results ({}, commit {commit}{}; one run of `cargo xtask bench sdk`: per cell and client {} s measured in {} round(s), each after {} s of warm-up; {}):\n",
            today(),
            if dirty { " with local changes" } else { "" },
            args.duration,
            args.rounds,
            args.warmup,
            cpu_model(),
        ),
    );
    line(&mut out, "### Speed-ups (calls/s: Portico's SDK / the official SDK)\n");
    line(
        &mut out,
        &format!("| calls | in flight | Python (goal ≥ {PYTHON_GOAL}×) | TypeScript (goal ≥ {TYPESCRIPT_GOAL}×) |"),
    );
    line(&mut out, "|---|---|---|---|");
    let show =
        |speedup: Option<f64>| speedup.map_or_else(|| "— (no official client)".to_owned(), |s| format!("{s:.2}×"));
    for cell in cells {
        line(
            &mut out,
            &format!(
                "| {} | {} | {} | {} |",
                cell.mode.label(),
                cell.concurrency,
                show(cell.speedup(Client::PorticoPython, Client::OfficialPython)),
                show(cell.speedup(Client::PorticoNode, Client::OfficialNode)),
            ),
        );
    }
    line(&mut out, "");
    line(
        &mut out,
        "### Calls, latency, CPU and memory (ratios: Portico's SDK / the official SDK of its language)\n",
    );
    line(
        &mut out,
        "| calls | in flight | client | calls/s | p50 µs | p99 µs | client CPU % | client CPU µs/call | peak RSS MiB | server CPU % | other CPU % |",
    );
    line(&mut out, "|---|---|---|---|---|---|---|---|---|---|---|");
    fn mib(kib: u64) -> f64 {
        kib as f64 / 1024.0
    }
    for cell in cells {
        for (i, (client, f)) in cell.figures.iter().enumerate() {
            let official = match client {
                Client::PorticoPython => cell.get(Client::OfficialPython),
                Client::PorticoNode => cell.get(Client::OfficialNode),
                Client::OfficialPython | Client::OfficialNode => None,
            };
            let with = |value: f64, of: fn(&Figures) -> f64, digits: usize| match official {
                Some(o) => format!("{value:.digits$} ({})", ratio(value, of(o))),
                None => format!("{value:.digits$}"),
            };
            let (mode, concurrency) = if i == 0 {
                (cell.mode.label().to_owned(), cell.concurrency.to_string())
            } else {
                (String::new(), String::new())
            };
            line(
                &mut out,
                &format!(
                    "| {mode} | {concurrency} | {} | {} | {} | {} | {:.0} | {} | {} | {:.0} | {:.0} |",
                    client.name(),
                    with(f.calls_per_second, |o| o.calls_per_second, 0),
                    with(f.p50_us, |o| o.p50_us, 0),
                    with(f.p99_us, |o| o.p99_us, 0),
                    f.client_cpu,
                    with(f.cpu_us_per_call(), Figures::cpu_us_per_call, 1),
                    with(mib(f.peak_rss_kib), |o| mib(o.peak_rss_kib), 1),
                    f.server_cpu,
                    f.other_cpu
                ),
            );
        }
    }
    line(&mut out, "");
    for (language, portico, official, goal) in [
        ("Python", Client::PorticoPython, Client::OfficialPython, PYTHON_GOAL),
        ("TypeScript", Client::PorticoNode, Client::OfficialNode, TYPESCRIPT_GOAL),
    ] {
        let measured: Vec<(f64, &Cell)> = cells
            .iter()
            .filter_map(|c| Some((c.speedup(portico, official)?, c)))
            .collect();
        let Some(&(lowest, worst)) = measured.iter().min_by(|a, b| a.0.total_cmp(&b.0)) else {
            continue;
        };
        let met = measured.iter().filter(|(s, _)| *s >= goal).count();
        line(
            &mut out,
            &format!(
                "- {language} goal (Portico's SDK ≥ {goal}× the official SDK's calls/s in every cell with both): **{}** — met in {met} of {} cells; lowest {lowest:.2}× ({}, {} in flight).",
                if met == measured.len() { "met" } else { "missed" },
                measured.len(),
                worst.mode.label(),
                worst.concurrency
            ),
        );
    }
    let other = cells.iter().map(Cell::other_cpu).fold(0.0_f64, f64::max);
    line(&mut out, &disturbance(other));
    let unsaturated = cells
        .iter()
        .flat_map(|c| c.figures.iter().map(move |(client, f)| (client, c, f)))
        .filter(|(_, _, f)| f.client_cpu < 90.0)
        .map(|(client, c, f)| {
            format!(
                "{} ({}, {} in flight: {:.0}%)",
                client.name(),
                c.mode.label(),
                c.concurrency,
                f.client_cpu
            )
        })
        .collect::<Vec<_>>();
    if !unsaturated.is_empty() {
        line(
            &mut out,
            &format!(
                "- Clients using less than 90% of their core, whose rate the round trip (the server, the wake-ups) bounds rather than their own CPU time: {}. There client CPU µs/call measures the SDK's own cost better than calls/s does.",
                unsaturated.join("; ")
            ),
        );
    }
    let busy = cells
        .iter()
        .flat_map(|c| c.figures.iter().map(|(_, f)| f.server_cpu))
        .fold(0.0_f64, f64::max);
    if busy >= 90.0 {
        line(
            &mut out,
            &format!(
                "- The server reached {busy:.0}% of its core in some cell: there the server, not only the client, limits the rate (compare client CPU µs/call, which does not depend on it)."
            ),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(calls_per_second: f64) -> Figures {
        Figures {
            calls_per_second,
            client_cpu: 50.0,
            ..Figures::default()
        }
    }

    #[test]
    fn speedups_pair_each_sdk_with_the_official_one_of_its_language() {
        let cell = Cell {
            mode: Mode::Stateless,
            concurrency: 32,
            figures: vec![
                (Client::OfficialPython, figures(100.0)),
                (Client::PorticoPython, figures(450.0)),
                (Client::PorticoNode, figures(900.0)),
            ],
        };
        assert_eq!(cell.speedup(Client::PorticoPython, Client::OfficialPython), Some(4.5));
        assert_eq!(cell.speedup(Client::PorticoNode, Client::OfficialNode), None);
        assert!(!Client::OfficialNode.speaks(Mode::Stateless));
        assert!(CLIENTS.iter().all(|c| c.speaks(Mode::Stateful)));
    }

    #[test]
    fn cpu_per_call_is_per_answered_call() {
        // Half a core for 1000 calls/s: 500 µs of CPU per call.
        assert!((figures(1000.0).cpu_us_per_call() - 500.0).abs() < 1e-9);
        assert_eq!(figures(0.0).cpu_us_per_call(), 0.0);
    }
}
