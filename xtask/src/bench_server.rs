//! `cargo xtask bench server`: `portico serve everything` under closed-loop `tools/call` load,
//! against a bare hyper + serde reference measured in the same run, each server pinned to one
//! core and the load generator (`portico-bench`, in `bench/`) to another; writes its section of
//! `docs/benchmarks.md`.
//!
//! Each cell (a protocol generation × a concurrency) starts a fresh reference and a fresh
//! Portico, so peak RSS and CPU time are the cell's own, and loads them in turn for a few rounds,
//! so that the drift of a shared machine's speed reaches both alike. The load generator reads
//! the server's CPU time (`/proc/<pid>/stat`) and the whole machine's (`/proc/stat`) at the edges
//! of each measured window; this task reads `VmHWM` when the cell ends. A cell during which other
//! processes used more than 10% of a core is measured again.
//!
//! Idle-session memory is the growth of `VmRSS` over 1000 sessions opened one after another on
//! one connection, each `initialize` + `notifications/initialized`, read by
//! `portico-bench sessions`.

use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::Value;

/// The goal of the issue: Portico's requests/s at least this share of the reference's.
const THROUGHPUT_GOAL: f64 = 0.85;
/// The goal of the issue: at most this many KiB of RSS per idle session.
const SESSION_GOAL_KIB: f64 = 2.0;
/// Other processes using more than this share of a core during a cell make its figures suspect.
pub(crate) const OTHER_CPU_WARNING: f64 = 10.0;
/// How long a server may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// The first line of the section this task owns in `docs/benchmarks.md`.
const BEGIN: &str = "<!-- begin: written by `cargo xtask bench server` (xtask/src/bench_server.rs); run it again rather than editing -->";
/// The last line of that section.
const END: &str = "<!-- end: cargo xtask bench server -->";

/// `cargo xtask bench server` options.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    load: LoadOptions,
    /// Idle sessions opened for the memory figure.
    #[arg(long, default_value_t = 1000)]
    sessions: usize,
    /// A smoke run: 1 s cells after 0.5 s of warm-up, 100 sessions; docs/benchmarks.md is left
    /// alone.
    #[arg(long)]
    quick: bool,
}

/// The options of a load benchmark (`bench server`'s and `bench gateway`'s): two subjects
/// loaded in turn in each cell, the server and the load generator pinned to two CPUs.
#[derive(clap::Args, Debug)]
pub(crate) struct LoadOptions {
    /// Seconds measured per subject (server, or path to it) and cell, split over the rounds.
    #[arg(long, default_value_t = 10.0)]
    pub(crate) duration: f64,
    /// Seconds of warm-up before each round, not measured.
    #[arg(long, default_value_t = 2.0)]
    pub(crate) warmup: f64,
    /// Rounds per cell: the two subjects are loaded in turn this many times.
    #[arg(long, default_value_t = 3)]
    pub(crate) rounds: usize,
    /// Concurrency levels (closed-loop workers, one connection each).
    #[arg(long = "concurrency", value_delimiter = ',', default_values_t = [32, 256])]
    pub(crate) concurrency: Vec<usize>,
    /// Print the report only; leave docs/benchmarks.md alone.
    #[arg(long)]
    pub(crate) no_docs: bool,
    /// How many times a cell is measured again when other processes used more than 10% of a
    /// core meanwhile (the least disturbed attempt is reported).
    #[arg(long, default_value_t = 2)]
    pub(crate) retries: usize,
    /// The CPU the servers are pinned to.
    #[arg(long, default_value_t = 0)]
    pub(crate) server_cpu: usize,
    /// The CPU the load generator is pinned to.
    #[arg(long, default_value_t = 1)]
    pub(crate) load_cpu: usize,
}

impl LoadOptions {
    /// A smoke run: one round of 1 s after 0.5 s of warm-up per subject and cell;
    /// docs/benchmarks.md is left alone.
    pub(crate) fn smoke(&mut self) {
        self.duration = 1.0;
        self.warmup = 0.5;
        self.rounds = 1;
        self.no_docs = true;
    }

    /// Checks the options and the machine, builds the binaries and makes the log folder
    /// `dir` beside them: the repository root, the binaries, the log folder.
    pub(crate) fn prepare(&mut self, dir: &str) -> anyhow::Result<(PathBuf, Binaries, PathBuf)> {
        self.rounds = self.rounds.max(1);
        if self.concurrency.is_empty() || self.concurrency.contains(&0) {
            bail!("--concurrency takes positive numbers");
        }
        check_cpus(("--server-cpu", self.server_cpu), ("--load-cpu", self.load_cpu))?;
        let root = crate::repo_root();
        let binaries = build(&root)?;
        let logs = binaries
            .bench
            .parent()
            .map_or_else(|| root.join("target"), Path::to_path_buf)
            .join(dir);
        std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
        Ok((root, binaries, logs))
    }

    /// The measured seconds of one round, and the warm-up before it.
    pub(crate) fn round_seconds(&self) -> (f64, f64) {
        (self.duration / self.rounds as f64, self.warmup)
    }

    /// The report's line naming the run (`per` what the duration is: `cell and server`).
    pub(crate) fn results_line(&self, command: &str, per: &str) -> String {
        let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
        let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
        format!(
            "Results ({}, commit {commit}{}; one run of `cargo xtask bench {command}`: per {per} {} s measured in {} round(s), each after {} s of warm-up; {}):\n",
            today(),
            if dirty { " with local changes" } else { "" },
            self.duration,
            self.rounds,
            self.warmup,
            cpu_model(),
        )
    }
}

/// The two servers of every cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Subject {
    /// `portico-bench reference`.
    Reference,
    /// `portico serve everything`.
    Portico,
}

/// The two client generations.
pub(crate) const MODES: [(&str, &str); 2] = [
    ("stateless", "2026-07-28 stateless"),
    ("stateful", "2025-11-25 session"),
];

/// One server's figures in one cell (also `bench gateway`'s).
#[derive(Debug, Clone, Default)]
pub(crate) struct Figures {
    pub(crate) rps: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) server_cpu: f64,
    /// The CPU time of a gateway's upstream (`bench gateway`), in % of one core.
    pub(crate) upstream_cpu: f64,
    pub(crate) load_cpu: f64,
    /// CPU time other processes used meanwhile, in % of one core.
    pub(crate) other_cpu: f64,
    pub(crate) peak_rss_kib: u64,
}

impl Figures {
    /// Server CPU time per answered call, in microseconds.
    pub(crate) fn cpu_us_per_call(&self) -> f64 {
        per_call(self.server_cpu, self.rps)
    }
}

/// CPU time per answered call in microseconds, from `cpu` % of one core at `rate` calls/s.
pub(crate) fn per_call(cpu: f64, rate: f64) -> f64 {
    if rate > 0.0 { cpu / 100.0 / rate * 1e6 } else { 0.0 }
}

/// One cell: a client generation at a concurrency, both servers.
#[derive(Debug, Clone)]
struct Cell {
    mode_label: &'static str,
    concurrency: usize,
    reference: Figures,
    portico: Figures,
}

/// The idle-session figures of one server (also `bench gateway`'s).
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionFigures {
    pub(crate) opened: u64,
    pub(crate) with_id: u64,
    pub(crate) before_kib: u64,
    pub(crate) after_kib: u64,
    pub(crate) per_session_kib: f64,
}

/// The binaries under test.
pub(crate) struct Binaries {
    pub(crate) portico: PathBuf,
    pub(crate) bench: PathBuf,
}

/// Runs the benchmark.
pub fn run(mut args: Args) -> anyhow::Result<ExitCode> {
    if args.quick {
        args.load.smoke();
        args.sessions = args.sessions.min(100);
    }
    let (root, binaries, logs) = args.load.prepare("bench-server")?;
    println!(
        "{} cells x 2 servers x {} round(s) of {:.1} s after {} s of warm-up; servers on CPU {}, load on CPU {}; logs in {}",
        MODES.len() * args.load.concurrency.len(),
        args.load.rounds,
        args.load.duration / args.load.rounds as f64,
        args.load.warmup,
        args.load.server_cpu,
        args.load.load_cpu,
        logs.display()
    );

    let mut cells = Vec::new();
    for (mode, mode_label) in MODES {
        for &concurrency in &args.load.concurrency {
            cells.push(least_disturbed(args.load.retries, Cell::other_cpu, || {
                run_both(&binaries, &args, &logs, mode, mode_label, concurrency)
            })?);
        }
    }
    let mut sessions = Vec::new();
    for subject in [Subject::Reference, Subject::Portico] {
        sessions.push((subject, run_sessions(&binaries, &args, &logs, subject)?));
    }

    let report = render(&args, &cells, &sessions);
    write_report(&root, &report, args.load.no_docs, |old| splice(old, &report))?;
    Ok(ExitCode::SUCCESS)
}

/// Measures a cell, and again (at most `retries` more times) while other processes used more
/// than [`OTHER_CPU_WARNING`] of a core meanwhile; keeps the least disturbed measurement.
pub(crate) fn least_disturbed<C>(
    retries: usize,
    other_cpu: impl Fn(&C) -> f64,
    mut measure: impl FnMut() -> anyhow::Result<C>,
) -> anyhow::Result<C> {
    let mut best: Option<C> = None;
    for attempt in 0..=retries {
        if attempt > 0 {
            println!("  other work ran meanwhile: measuring the cell again ({attempt} of {retries})");
        }
        let cell = measure()?;
        let disturbed = other_cpu(&cell) > OTHER_CPU_WARNING;
        if best.as_ref().is_none_or(|b| other_cpu(&cell) < other_cpu(b)) {
            best = Some(cell);
        }
        if !disturbed {
            break;
        }
    }
    best.ok_or_else(|| anyhow::anyhow!("no measurement"))
}

/// Prints `report` and, unless `no_docs`, rewrites docs/benchmarks.md with `splice` (which
/// puts the report into the command's own section of the old text).
pub(crate) fn write_report(
    root: &Path,
    report: &str,
    no_docs: bool,
    splice: impl FnOnce(&str) -> String,
) -> anyhow::Result<()> {
    println!("\n{report}");
    if no_docs {
        println!("note: docs/benchmarks.md left as it is");
        return Ok(());
    }
    let path = root.join("docs/benchmarks.md");
    let old = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    std::fs::write(&path, splice(&old)).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// One cell: a fresh reference and a fresh Portico, loaded in turn for `--rounds` rounds, so a
/// drift in the machine's speed (a shared VM's varies by up to 2x over minutes) reaches both
/// alike.
fn run_both(
    binaries: &Binaries,
    args: &Args,
    logs: &Path,
    mode: &str,
    mode_label: &'static str,
    concurrency: usize,
) -> anyhow::Result<Cell> {
    let subjects = [Subject::Reference, Subject::Portico];
    let mut servers = Vec::new();
    for subject in subjects {
        let name = format!("{}-{mode}-{concurrency}", subject.name());
        let log = logs.join(format!("{name}.server.log"));
        servers.push(Server::start(binaries, subject, args.load.server_cpu, &log)?);
    }
    let mut rounds: [Vec<Round>; 2] = [Vec::new(), Vec::new()];
    for round in 0..args.load.rounds {
        for (i, subject) in subjects.into_iter().enumerate() {
            let name = format!("{}-{mode}-{concurrency}-{round}", subject.name());
            let measured = run_load(
                binaries,
                args,
                &servers[i],
                mode,
                concurrency,
                &logs.join(format!("{name}.load.log")),
            )
            .with_context(|| format!("{name}; see {}", servers[i].log.display()))?;
            servers[i].check_alive()?;
            rounds[i].push(measured);
        }
    }
    let mut cell = Cell {
        mode_label,
        concurrency,
        reference: Figures::default(),
        portico: Figures::default(),
    };
    for (i, subject) in subjects.into_iter().enumerate() {
        let figures = Figures::of(&rounds[i], servers[i].status_kib("VmHWM")?);
        println!(
            "  {mode_label:<22} c={concurrency:<4} {:<9} {:>9.0} req/s  p50 {:>7.0} µs  p99 {:>7.0} µs  server CPU {:>3.0}%  load CPU {:>3.0}%  other CPU {:>3.0}%{}",
            subject.name(),
            figures.rps,
            figures.p50_us,
            figures.p99_us,
            figures.server_cpu,
            figures.load_cpu,
            figures.other_cpu,
            if figures.other_cpu > OTHER_CPU_WARNING {
                "  <- other work ran meanwhile"
            } else {
                ""
            }
        );
        match subject {
            Subject::Reference => cell.reference = figures,
            Subject::Portico => cell.portico = figures,
        }
    }
    Ok(cell)
}

impl Cell {
    /// The most CPU other processes used while either server was measured.
    fn other_cpu(&self) -> f64 {
        self.reference.other_cpu.max(self.portico.other_cpu)
    }
}

impl Subject {
    fn name(self) -> &'static str {
        match self {
            Subject::Reference => "reference",
            Subject::Portico => "portico",
        }
    }
}

/// `taskset` must run and the two CPUs (`(option, cpu)`) must be different CPUs of this
/// machine; a busy machine is reported (it distorts the numbers) but not refused.
pub(crate) fn check_cpus(server: (&str, usize), other: (&str, usize)) -> anyhow::Result<()> {
    let taskset = Command::new("taskset").arg("--version").output();
    if !taskset.is_ok_and(|out| out.status.success()) {
        bail!("`taskset` (util-linux) is needed to pin the processes of the benchmark to their cores");
    }
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    if server.1 == other.1 || server.1.max(other.1) >= cpus {
        bail!(
            "{} {} and {} {} must be two different CPUs of the {cpus} here",
            server.0,
            server.1,
            other.0,
            other.1
        );
    }
    if let Some(load) = load_average()
        && load > 0.5
    {
        println!("warning: the 1-minute load average is {load:.2}: other work on this machine distorts the numbers");
    }
    Ok(())
}

/// The report's line on how much other processes disturbed the run (`other`: the most CPU
/// they used in any measured window, in % of one core).
pub(crate) fn disturbance(other: f64) -> String {
    format!(
        "- Other processes used at most {other:.0}% of a core during any measured window{}.",
        if other > OTHER_CPU_WARNING {
            ": the run was disturbed; measure again on a quiet machine"
        } else {
            " (a quiet machine)"
        }
    )
}

/// The 1-minute load average.
pub(crate) fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Builds `portico` and `portico-bench` in release mode; returns their paths.
pub(crate) fn build(root: &Path) -> anyhow::Result<Binaries> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut child = Command::new(cargo)
        .current_dir(root)
        .args([
            "build",
            "--release",
            "-p",
            "portico",
            "-p",
            "portico-bench",
            "--message-format=json-render-diagnostics",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .context("starting cargo build --release")?;
    let (mut portico, mut bench) = (None, None);
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let Ok(message) = serde_json::from_str::<Value>(&line?) else {
                continue;
            };
            let is_bin = message["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| *k == "bin"));
            if message["reason"] != "compiler-artifact" || !is_bin {
                continue;
            }
            let executable = message["executable"].as_str().map(PathBuf::from);
            match message["target"]["name"].as_str() {
                Some("portico") => portico = executable,
                Some("portico-bench") => bench = executable,
                _ => {}
            }
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("cargo build --release -p portico -p portico-bench failed ({status})");
    }
    Ok(Binaries {
        portico: portico.context("cargo build reported no `portico` executable")?,
        bench: bench.context("cargo build reported no `portico-bench` executable")?,
    })
}

/// A server process pinned to a CPU, killed and reaped when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) url: String,
    pub(crate) log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        // Both fail only when the process is already gone, which is what we want.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `subject` on a free port of 127.0.0.1, pinned to `cpu`, its output going to `log`;
    /// waits for the line naming its URL.
    pub(crate) fn start(binaries: &Binaries, subject: Subject, cpu: usize, log: &Path) -> anyhow::Result<Self> {
        let mut command = match subject {
            Subject::Reference => pinned(cpu, &binaries.bench),
            Subject::Portico => pinned(cpu, &binaries.portico),
        };
        match subject {
            Subject::Reference => command.args(["reference", "--addr", "127.0.0.1:0"]),
            Subject::Portico => command.args(["serve", "everything", "--http", "127.0.0.1:0"]),
        };
        Self::spawn(command, subject.name(), log)
    }

    /// Runs `command` (a server started with [`pinned`]), its output going to `log`; waits for
    /// its first line, which names its URL (`… http://ADDR/mcp`). `what` names it in errors.
    pub(crate) fn spawn(mut command: Command, what: &str, log: &Path) -> anyhow::Result<Self> {
        let file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(file.try_clone()?);
        // `taskset` executes the server in its own process: the child's pid is the server's.
        let mut child = command.spawn().with_context(|| format!("starting {command:?}"))?;
        let stdout = child.stdout.take().context("the server's stdout")?;
        let server_log = log.to_owned();
        let mut server = Self {
            child,
            url: String::new(),
            log: server_log,
        };
        let (first_tx, first_rx) = mpsc::sync_channel(1);
        // Reads the first line for us, then drains the pipe into the log so the server never
        // blocks on it; ends when the server exits.
        std::thread::spawn(move || {
            use std::io::Write as _;
            let mut file = file;
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = writeln!(file, "{first}");
                let _ = first_tx.send(first);
            }
            for line in lines.map_while(Result::ok) {
                let _ = writeln!(file, "{line}");
            }
        });
        let first = first_rx.recv_timeout(START_TIMEOUT).map_err(|_| {
            anyhow::anyhow!(
                "{what} printed no address within {} s; see {}",
                START_TIMEOUT.as_secs(),
                log.display()
            )
        })?;
        let url = first
            .find("http://")
            .map(|at| first[at..].trim().to_owned())
            .with_context(|| format!("expected a line naming http://ADDR/mcp from {what}, got {first:?}"))?;
        server.url = url;
        Ok(server)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails when the server has exited.
    pub(crate) fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "the server exited during the run ({status}); see {}",
                self.log.display()
            );
        }
        Ok(())
    }

    /// A `kB` line of the server's `/proc/<pid>/status`, in KiB.
    pub(crate) fn status_kib(&self, key: &str) -> anyhow::Result<u64> {
        let path = format!("/proc/{}/status", self.pid());
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|value| value.trim().strip_suffix("kB"))
            .and_then(|value| value.trim().parse().ok())
            .with_context(|| format!("no {key} in {path}"))
    }
}

/// `program` pinned with `taskset` to `cpu` (`taskset` executes it in its own process, so the
/// child's pid is the program's).
pub(crate) fn pinned(cpu: usize, program: &Path) -> Command {
    let mut command = Command::new("taskset");
    command.arg("-c").arg(cpu.to_string()).arg(program);
    command
}

/// Runs `portico-bench` pinned to `load_cpu`; returns the JSON object it prints.
pub(crate) fn run_bench_tool(
    binaries: &Binaries,
    load_cpu: usize,
    tool_args: &[String],
    log: &Path,
) -> anyhow::Result<Value> {
    let file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let output = pinned(load_cpu, &binaries.bench)
        .args(tool_args)
        .stdin(Stdio::null())
        .stderr(file)
        .output()
        .context("running portico-bench")?;
    if !output.status.success() {
        bail!(
            "portico-bench {} failed ({}); see {}",
            tool_args.join(" "),
            output.status,
            log.display()
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(text.trim()).with_context(|| format!("reading portico-bench's report {text:?}"))
}

/// What one round of load against one server measured (also `bench gateway`'s): the figures
/// of its measured window (no peak RSS) and how long that was.
pub(crate) struct Round {
    pub(crate) seconds: f64,
    pub(crate) figures: Figures,
}

impl Round {
    /// The round `portico-bench load` reported; an error when a call failed.
    pub(crate) fn of_load(report: &Value) -> anyhow::Result<Self> {
        let errors = report["errors"].as_u64().unwrap_or_default();
        if errors > 0 {
            bail!(
                "{errors} calls failed; the first: {}",
                report["first_error"].as_str().unwrap_or("?")
            );
        }
        let number = |key: &str| report[key].as_f64().with_context(|| format!("{key} in {report}"));
        let seconds = number("seconds")?;
        let figures = Figures {
            rps: number("requests")? / seconds.max(f64::MIN_POSITIVE),
            p50_us: number("p50_us")?,
            p99_us: number("p99_us")?,
            server_cpu: number("server_cpu_percent")?,
            upstream_cpu: report["upstream_cpu_percent"].as_f64().unwrap_or_default(),
            load_cpu: number("client_cpu_percent")?,
            other_cpu: number("other_cpu_percent")?,
            peak_rss_kib: 0,
        };
        Ok(Self { seconds, figures })
    }
}

/// The arguments of `portico-bench load` for one round of `seconds` after `warmup` against the
/// server at `url` whose process is `pid`.
pub(crate) fn load_args(
    url: &str,
    mode: &str,
    concurrency: usize,
    (seconds, warmup): (f64, f64),
    pid: u32,
) -> Vec<String> {
    [
        "load",
        "--url",
        url,
        "--concurrency",
        concurrency.to_string().as_str(),
        "--duration",
        seconds.to_string().as_str(),
        "--warmup",
        warmup.to_string().as_str(),
        "--mode",
        mode,
        "--pid",
        pid.to_string().as_str(),
    ]
    .map(str::to_owned)
    .to_vec()
}

impl Figures {
    /// Rounds combined: requests/s over all of them, the median round's latencies, the mean
    /// CPU, the largest disturbance.
    pub(crate) fn of(rounds: &[Round], peak_rss_kib: u64) -> Self {
        let median = |value: fn(&Figures) -> f64| {
            let mut values: Vec<f64> = rounds.iter().map(|r| value(&r.figures)).collect();
            values.sort_by(f64::total_cmp);
            values.get(values.len() / 2).copied().unwrap_or_default()
        };
        let mean = |value: fn(&Figures) -> f64| {
            rounds.iter().map(|r| value(&r.figures)).sum::<f64>() / rounds.len().max(1) as f64
        };
        let seconds: f64 = rounds.iter().map(|r| r.seconds).sum();
        let requests: f64 = rounds.iter().map(|r| r.figures.rps * r.seconds).sum();
        Self {
            rps: requests / seconds.max(f64::MIN_POSITIVE),
            p50_us: median(|f| f.p50_us),
            p99_us: median(|f| f.p99_us),
            server_cpu: mean(|f| f.server_cpu),
            upstream_cpu: mean(|f| f.upstream_cpu),
            load_cpu: mean(|f| f.load_cpu),
            other_cpu: rounds.iter().map(|r| r.figures.other_cpu).fold(0.0, f64::max),
            peak_rss_kib,
        }
    }
}

/// One round of `portico-bench load` against `server`.
fn run_load(
    binaries: &Binaries,
    args: &Args,
    server: &Server,
    mode: &str,
    concurrency: usize,
    log: &Path,
) -> anyhow::Result<Round> {
    let tool_args = load_args(&server.url, mode, concurrency, args.load.round_seconds(), server.pid());
    Round::of_load(&run_bench_tool(binaries, args.load.load_cpu, &tool_args, log)?)
}

/// Idle sessions on a fresh server.
fn run_sessions(binaries: &Binaries, args: &Args, logs: &Path, subject: Subject) -> anyhow::Result<SessionFigures> {
    let name = format!("{}-sessions", subject.name());
    let mut server = Server::start(
        binaries,
        subject,
        args.load.server_cpu,
        &logs.join(format!("{name}.server.log")),
    )?;
    let log = logs.join(format!("{name}.client.log"));
    let figures = measure_sessions(binaries, args.load.load_cpu, &mut server, args.sessions, &log)?;
    if subject == Subject::Portico {
        figures.check_ids("portico")?;
    }
    Ok(figures)
}

/// `portico-bench sessions` (pinned to `load_cpu`) opening `count` idle sessions on `server`.
pub(crate) fn measure_sessions(
    binaries: &Binaries,
    load_cpu: usize,
    server: &mut Server,
    count: usize,
    log: &Path,
) -> anyhow::Result<SessionFigures> {
    let tool_args: Vec<String> = [
        "sessions",
        "--url",
        server.url.as_str(),
        "--count",
        count.to_string().as_str(),
        "--pid",
        server.pid().to_string().as_str(),
    ]
    .map(str::to_owned)
    .to_vec();
    let report = run_bench_tool(binaries, load_cpu, &tool_args, log)?;
    server.check_alive()?;
    let number = |key: &str| report[key].as_u64().with_context(|| format!("{key} in {report}"));
    Ok(SessionFigures {
        opened: number("opened")?,
        with_id: number("with_id")?,
        before_kib: number("rss_before_kib")?,
        after_kib: number("rss_after_kib")?,
        per_session_kib: report["kib_per_session"]
            .as_f64()
            .with_context(|| format!("kib_per_session in {report}"))?,
    })
}

impl SessionFigures {
    /// Fails unless every session got an id from `server`.
    pub(crate) fn check_ids(&self, server: &str) -> anyhow::Result<()> {
        if self.with_id != self.opened {
            bail!(
                "{server} gave {} session ids for {} sessions",
                self.with_id,
                self.opened
            );
        }
        Ok(())
    }
}

/// `portico / reference`, as `0.87×`.
pub(crate) fn ratio(portico: f64, reference: f64) -> String {
    if reference > 0.0 {
        format!("{:.2}×", portico / reference)
    } else {
        "—".into()
    }
}

/// The report: what was measured, the tables, the goals.
fn render(args: &Args, cells: &[Cell], sessions: &[(Subject, SessionFigures)]) -> String {
    let mut out = String::new();
    let line = |out: &mut String, text: &str| {
        out.push_str(text);
        out.push('\n');
    };
    line(&mut out, "## Server (`cargo xtask bench server`)\n");
    line(
        &mut out,
        "What it measures: closed-loop load on `tools/call` of the `echo` tool of `portico serve everything`\n\
         (release build, Streamable HTTP, HTTP/1.1 keep-alive, one connection per worker, one call in\n\
         flight per connection), against a reference measured in the same run: a bare hyper 1 HTTP/1.1\n\
         server that parses each body into a JSON-RPC struct with serde (`params` as `serde_json::Value`)\n\
         and answers a fixed result of the same shape with the request's id (`portico-bench reference`).\n\
         Both run on tokio's multi-thread runtime pinned with `taskset` to CPU 0 (so one worker thread);\n\
         the load generator (`portico-bench load`: raw HTTP/1.1, one thread) is pinned to CPU 1.\n\
         Stateless calls are 2026-07-28 requests (`_meta` with protocol version, client info and\n\
         capabilities; `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` headers); stateful calls use\n\
         one 2025-11-25 session per worker (`initialize` + `notifications/initialized` first, then\n\
         `Mcp-Session-Id`).\n\
         \n\
         Each cell starts a fresh reference and a fresh Portico and loads them in turn, round after\n\
         round (each round after a warm-up), so a drift in the machine's speed reaches both alike.\n\
         req/s is over all rounds; latency is per call, client side, of the median round; server CPU\n\
         is utime+stime of the server process over the measured windows, in % of one core (load CPU:\n\
         the load generator's; other CPU: the rest of the machine's, which distorts the figures when\n\
         it is more than a few %); peak RSS is the server's `VmHWM`. Idle-session memory: on a fresh\n\
         server, 20 sessions opened and ended, then `VmRSS` before and after opening N more one after\n\
         another on one connection, divided by N. Goals (issue): Portico ≥ 0.85× the reference's\n\
         req/s in every cell; ≤ 2 KiB per idle session.\n",
    );
    line(&mut out, &args.load.results_line("server", "cell and server"));
    line(
        &mut out,
        "### Throughput, latency, CPU and memory (ratios: Portico / reference)\n",
    );
    line(
        &mut out,
        "| calls | concurrency | server | req/s | p50 µs | p99 µs | server CPU % | server CPU µs/call | peak RSS MiB | load CPU % | other CPU % |",
    );
    line(&mut out, "|---|---|---|---|---|---|---|---|---|---|---|");
    for cell in cells {
        let (r, p) = (&cell.reference, &cell.portico);
        let mib = |kib: u64| kib as f64 / 1024.0;
        line(
            &mut out,
            &format!(
                "| {} | {} | reference | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} | {:.1} | {:.0} | {:.0} |",
                cell.mode_label,
                cell.concurrency,
                r.rps,
                r.p50_us,
                r.p99_us,
                r.server_cpu,
                r.cpu_us_per_call(),
                mib(r.peak_rss_kib),
                r.load_cpu,
                r.other_cpu
            ),
        );
        line(
            &mut out,
            &format!(
                "| | | portico | {:.0} ({}) | {:.0} ({}) | {:.0} ({}) | {:.0} ({}) | {:.1} ({}) | {:.1} ({}) | {:.0} | {:.0} |",
                p.rps,
                ratio(p.rps, r.rps),
                p.p50_us,
                ratio(p.p50_us, r.p50_us),
                p.p99_us,
                ratio(p.p99_us, r.p99_us),
                p.server_cpu,
                ratio(p.server_cpu, r.server_cpu),
                p.cpu_us_per_call(),
                ratio(p.cpu_us_per_call(), r.cpu_us_per_call()),
                mib(p.peak_rss_kib),
                ratio(p.peak_rss_kib as f64, r.peak_rss_kib as f64),
                p.load_cpu,
                p.other_cpu
            ),
        );
    }
    line(&mut out, "");
    line(&mut out, &format!("### Idle sessions ({} opened)\n", args.sessions));
    line(
        &mut out,
        "| server | session ids | VmRSS before KiB | VmRSS after KiB | KiB per idle session |",
    );
    line(&mut out, "|---|---|---|---|---|");
    for (subject, s) in sessions {
        let note = match subject {
            Subject::Reference => " (no sessions: the noise floor)",
            Subject::Portico => "",
        };
        line(
            &mut out,
            &format!(
                "| {} | {} of {} | {} | {} | {:.2}{note} |",
                subject.name(),
                s.with_id,
                s.opened,
                s.before_kib,
                s.after_kib,
                s.per_session_kib
            ),
        );
    }
    line(&mut out, "");
    let worst = cells
        .iter()
        .map(|c| (c.portico.rps / c.reference.rps.max(f64::MIN_POSITIVE), c))
        .min_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((worst, cell)) = worst {
        let met = cells
            .iter()
            .filter(|c| c.portico.rps >= THROUGHPUT_GOAL * c.reference.rps)
            .count();
        line(
            &mut out,
            &format!(
                "- Throughput goal (≥ {THROUGHPUT_GOAL}× the reference's req/s in every cell): **{}** — met in {met} of {} cells; lowest {worst:.2}× ({}, concurrency {}).",
                if met == cells.len() { "met" } else { "missed" },
                cells.len(),
                cell.mode_label,
                cell.concurrency
            ),
        );
    }
    if let Some((_, s)) = sessions.iter().find(|(subject, _)| *subject == Subject::Portico) {
        line(
            &mut out,
            &format!(
                "- Idle-session goal (≤ {SESSION_GOAL_KIB} KiB each): **{}** — {:.2} KiB per session.",
                if s.per_session_kib <= SESSION_GOAL_KIB {
                    "met"
                } else {
                    "missed"
                },
                s.per_session_kib
            ),
        );
    }
    let other = cells
        .iter()
        .flat_map(|c| [c.reference.other_cpu, c.portico.other_cpu])
        .fold(0.0_f64, f64::max);
    line(&mut out, &disturbance(other));
    let busy_load = cells
        .iter()
        .flat_map(|c| [c.reference.load_cpu, c.portico.load_cpu])
        .fold(0.0_f64, f64::max);
    if busy_load >= 90.0 {
        line(
            &mut out,
            &format!(
                "- The load generator reached {busy_load:.0}% of its core in some cell: there the client, not only the server, limits the rate (the reference's figure most)."
            ),
        );
    }
    out
}

/// `docs/benchmarks.md` with this task's section replaced (or appended).
fn splice(old: &str, report: &str) -> String {
    splice_section(old, BEGIN, END, report)
}

/// `old` with the section between the lines `begin` and `end` replaced by `report` (or appended
/// when there is none).
pub(crate) fn splice_section(old: &str, begin_line: &str, end_line: &str, report: &str) -> String {
    let section = format!("{begin_line}\n\n{}\n{end_line}\n", report.trim_end());
    match (old.find(begin_line), old.find(end_line)) {
        (Some(begin), Some(end)) if begin < end => {
            let after = old[end + end_line.len()..].trim_start_matches('\n');
            let mut new = format!("{}{section}", &old[..begin]);
            if !after.is_empty() {
                new.push('\n');
                new.push_str(after);
            }
            new
        }
        _ => format!("{}\n\n{section}", old.trim_end()),
    }
}

pub(crate) fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .current_dir(crate::repo_root())
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Today's date (UTC), `YYYY-MM-DD`.
pub(crate) fn today() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "unknown date".into())
}

/// The CPU's model name and the number of CPUs.
pub(crate) fn cpu_model() -> String {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|info| {
        info.lines().find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, m)| m.trim().to_owned())
        })
    });
    match model {
        Some(model) => format!("{cpus} × {model}"),
        None => format!("{cpus} CPUs"),
    }
}

/// An HS256 token minted by `portico token` (the binary under test, `portico`) for `(issuer,
/// audience)`, as `(subject, role, kid)`, signed with `secret`, valid for 10 hours: what a
/// gateway with `auth` run by a benchmark or a conformance run wants.
pub(crate) fn mint_token(
    portico: &std::path::Path,
    (issuer, audience): (&str, &str),
    (subject, role, kid): (&str, &str, &str),
    secret: &str,
) -> anyhow::Result<String> {
    use anyhow::Context as _;
    let output = std::process::Command::new(portico)
        .args([
            "token",
            "--issuer",
            issuer,
            "--audience",
            audience,
            "--subject",
            subject,
        ])
        .args(["--roles", role, "--kid", kid, "--ttl", "600m"])
        .env("PORTICO_TOKEN_SECRET", secret)
        .output()
        .context("running portico token")?;
    anyhow::ensure!(
        output.status.success(),
        "portico token failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)
        .context("portico token printed no UTF-8")?
        .trim()
        .to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_is_appended_then_replaced_in_place() {
        let doc = "# Benchmarks\n\n## Codegen\n\ntext\n";
        let once = splice(doc, "## Server\n\nfirst\n");
        assert!(once.starts_with(doc.trim_end()), "{once}");
        assert!(once.ends_with(&format!("first\n{END}\n")), "{once}");
        let with_tail = format!("{once}\n## Later\n\nkept\n");
        let twice = splice(&with_tail, "## Server\n\nsecond\n");
        assert_eq!(twice.matches(BEGIN).count(), 1, "{twice}");
        assert!(!twice.contains("first") && twice.contains("second"), "{twice}");
        assert!(twice.ends_with("## Later\n\nkept\n"), "{twice}");
        assert!(twice.starts_with(doc.trim_end()), "{twice}");
    }

    #[test]
    fn ratios_guard_against_a_zero_reference() {
        assert_eq!(ratio(85.0, 100.0), "0.85×");
        assert_eq!(ratio(1.0, 0.0), "—");
    }
}
