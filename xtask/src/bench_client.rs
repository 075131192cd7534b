//! `cargo xtask bench client`: Portico's client core calling the `echo` tool of `portico serve
//! everything` over Streamable HTTP, against a bare hyper client posting the same pre-built
//! JSON-RPC body in the same run (the floor a client can reach); writes its section of
//! `docs/benchmarks.md`.
//!
//! The server is pinned to one core and the client (`portico-bench client`, in `bench/`) to the
//! other. Each cell (a protocol generation × a number of calls in flight) starts a fresh server
//! and runs the reference and Portico's client in turn, round after round, each round a fresh
//! client process, so a drift of a shared machine's speed reaches both alike and each peak RSS
//! is the client's own. A cell during which other processes used more than 10% of a core is
//! measured again.

use std::fs::File;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::bench_server::{
    Binaries, Server, Subject as ServerKind, check_cpus, cpu_model, disturbance, git, least_disturbed, ratio,
    splice_section, today, write_report,
};

/// Other processes using more than this share of a core during a cell make its figures suspect.
const OTHER_CPU_WARNING: f64 = 10.0;
/// The first line of the section this task owns in `docs/benchmarks.md`.
const BEGIN: &str = "<!-- begin: written by `cargo xtask bench client` (xtask/src/bench_client.rs); run it again rather than editing -->";
/// The last line of that section.
const END: &str = "<!-- end: cargo xtask bench client -->";

/// `cargo xtask bench client` options.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Seconds measured per client and cell, split over the rounds.
    #[arg(long, default_value_t = 6.0)]
    duration: f64,
    /// Seconds of warm-up before each round, not measured.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Rounds per cell: the reference and Portico's client run in turn this many times.
    #[arg(long, default_value_t = 3)]
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
    #[arg(long, default_value_t = 1)]
    retries: usize,
    /// The CPU the server is pinned to.
    #[arg(long, default_value_t = 0)]
    server_cpu: usize,
    /// The CPU the client is pinned to.
    #[arg(long, default_value_t = 1)]
    client_cpu: usize,
}

/// The two clients of every cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subject {
    /// `portico-bench client --subject reference`: bare hyper.
    Reference,
    /// `portico-bench client --subject portico`: the client core.
    Portico,
}

impl Subject {
    fn name(self) -> &'static str {
        match self {
            Subject::Reference => "reference",
            Subject::Portico => "portico",
        }
    }
}

/// The two protocol generations.
const MODES: [(&str, &str); 2] = [
    ("stateless", "2026-07-28 stateless"),
    ("stateful", "2025-11-25 session"),
];

/// What one round of one client measured (also `bench sdk`'s).
pub(crate) struct Round {
    pub(crate) calls: f64,
    pub(crate) seconds: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) client_cpu: f64,
    pub(crate) server_cpu: f64,
    pub(crate) other_cpu: f64,
    pub(crate) peak_rss_kib: u64,
}

/// One client's figures in one cell (also `bench sdk`'s).
#[derive(Debug, Clone, Default)]
pub(crate) struct Figures {
    pub(crate) calls_per_second: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    /// The client's CPU time, in % of one core.
    pub(crate) client_cpu: f64,
    /// The server's CPU time, in % of one core.
    pub(crate) server_cpu: f64,
    pub(crate) other_cpu: f64,
    /// The largest `VmHWM` of the client's rounds.
    pub(crate) peak_rss_kib: u64,
}

impl Figures {
    /// Rounds combined: calls/s over all of them, the median round's latencies, the mean CPU,
    /// the largest peak RSS and disturbance.
    pub(crate) fn of(rounds: &[Round]) -> Self {
        let median = |value: fn(&Round) -> f64| {
            let mut values: Vec<f64> = rounds.iter().map(value).collect();
            values.sort_by(f64::total_cmp);
            values.get(values.len() / 2).copied().unwrap_or_default()
        };
        let mean = |value: fn(&Round) -> f64| rounds.iter().map(value).sum::<f64>() / rounds.len().max(1) as f64;
        let seconds: f64 = rounds.iter().map(|r| r.seconds).sum();
        Self {
            calls_per_second: rounds.iter().map(|r| r.calls).sum::<f64>() / seconds.max(f64::MIN_POSITIVE),
            p50_us: median(|r| r.p50_us),
            p99_us: median(|r| r.p99_us),
            client_cpu: mean(|r| r.client_cpu),
            server_cpu: mean(|r| r.server_cpu),
            other_cpu: rounds.iter().map(|r| r.other_cpu).fold(0.0, f64::max),
            peak_rss_kib: rounds.iter().map(|r| r.peak_rss_kib).max().unwrap_or_default(),
        }
    }

    /// The client's CPU time per answered call, in microseconds.
    pub(crate) fn cpu_us_per_call(&self) -> f64 {
        if self.calls_per_second > 0.0 {
            self.client_cpu / 100.0 / self.calls_per_second * 1e6
        } else {
            0.0
        }
    }
}

/// One cell: a generation at a concurrency, both clients.
#[derive(Debug, Clone)]
struct Cell {
    mode_label: &'static str,
    concurrency: usize,
    reference: Figures,
    portico: Figures,
}

impl Cell {
    fn other_cpu(&self) -> f64 {
        self.reference.other_cpu.max(self.portico.other_cpu)
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
    check_machine(&args)?;
    let root = crate::repo_root();
    let binaries = crate::bench_server::build(&root)?;
    let logs = binaries
        .bench
        .parent()
        .map_or_else(|| root.join("target"), Path::to_path_buf)
        .join("bench-client");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    println!(
        "{} cells x 2 clients x {} round(s) of {:.1} s after {} s of warm-up; server on CPU {}, clients on CPU {}; logs in {}",
        MODES.len() * args.concurrency.len(),
        args.rounds,
        args.duration / args.rounds as f64,
        args.warmup,
        args.server_cpu,
        args.client_cpu,
        logs.display()
    );
    let mut cells = Vec::new();
    for (mode, mode_label) in MODES {
        for &concurrency in &args.concurrency {
            cells.push(least_disturbed(args.retries, Cell::other_cpu, || {
                run_cell(&binaries, &args, &logs, mode, mode_label, concurrency)
            })?);
        }
    }
    let report = render(&args, &cells);
    write_report(&root, &report, args.no_docs, |old| {
        splice_section(old, BEGIN, END, &report)
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `taskset` must run and both CPUs must exist; a busy machine is reported, not refused.
fn check_machine(args: &Args) -> anyhow::Result<()> {
    check_cpus(("--server-cpu", args.server_cpu), ("--client-cpu", args.client_cpu))
}

/// One cell: a fresh server, then the reference and Portico's client in turn for `--rounds`
/// rounds.
fn run_cell(
    binaries: &Binaries,
    args: &Args,
    logs: &Path,
    mode: &str,
    mode_label: &'static str,
    concurrency: usize,
) -> anyhow::Result<Cell> {
    let name = format!("server-{mode}-{concurrency}");
    let mut server = Server::start(
        binaries,
        ServerKind::Portico,
        args.server_cpu,
        &logs.join(format!("{name}.log")),
    )?;
    let subjects = [Subject::Reference, Subject::Portico];
    let mut rounds: [Vec<Round>; 2] = [Vec::new(), Vec::new()];
    for round in 0..args.rounds {
        for (i, subject) in subjects.into_iter().enumerate() {
            let log = logs.join(format!("{}-{mode}-{concurrency}-{round}.log", subject.name()));
            let measured =
                run_client(binaries, args, &server, subject, mode, concurrency, &log).with_context(|| {
                    format!(
                        "{} {mode} c={concurrency}; see {}",
                        subject.name(),
                        server.log.display()
                    )
                })?;
            server.check_alive()?;
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
        let f = Figures::of(&rounds[i]);
        println!(
            "  {mode_label:<22} c={concurrency:<3} {:<9} {:>8.0} calls/s  p50 {:>6.0} µs  p99 {:>6.0} µs  client CPU {:>3.0}% ({:>5.1} µs/call)  peak RSS {:>5.1} MiB  server CPU {:>3.0}%  other CPU {:>3.0}%{}",
            subject.name(),
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
        match subject {
            Subject::Reference => cell.reference = f,
            Subject::Portico => cell.portico = f,
        }
    }
    Ok(cell)
}

/// One round: `portico-bench client` pinned to the client CPU.
fn run_client(
    binaries: &Binaries,
    args: &Args,
    server: &Server,
    subject: Subject,
    mode: &str,
    concurrency: usize,
    log: &Path,
) -> anyhow::Result<Round> {
    let file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let seconds = args.duration / args.rounds as f64;
    let output = Command::new("taskset")
        .arg("-c")
        .arg(args.client_cpu.to_string())
        .arg(&binaries.bench)
        .args([
            "client",
            "--url",
            &server.url,
            "--subject",
            subject.name(),
            "--mode",
            mode,
        ])
        .args(["--concurrency", &concurrency.to_string()])
        .args(["--duration", &seconds.to_string(), "--warmup", &args.warmup.to_string()])
        .args(["--pid", &server.pid().to_string()])
        .stdin(Stdio::null())
        .stderr(file)
        .output()
        .context("running portico-bench client")?;
    if !output.status.success() {
        bail!("portico-bench client failed ({}); see {}", output.status, log.display());
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let report: Value =
        serde_json::from_str(text.trim()).with_context(|| format!("reading portico-bench's report {text:?}"))?;
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

/// The report: what was measured, the table, how to read it.
fn render(args: &Args, cells: &[Cell]) -> String {
    let mut out = String::new();
    let line = |out: &mut String, text: &str| {
        out.push_str(text);
        out.push('\n');
    };
    line(&mut out, "## Client (`cargo xtask bench client`)\n");
    line(
        &mut out,
        "What it measures: Portico's client core (`portico_core::client::Client` over\n\
         `portico_transport::http::client`, release build) calling `tools/call` of the `echo` tool of\n\
         `portico serve everything` over Streamable HTTP, closed loop, with 1 (sequential) or 32 calls in\n\
         flight, against a reference measured in the same run: bare hyper 1 HTTP/1.1 connections POSTing\n\
         the same pre-built JSON-RPC `tools/call` (only the id formatted per call) and reading the whole\n\
         answer — the floor a client can reach. Both clients run in `portico-bench client` on tokio's\n\
         current-thread runtime, pinned with `taskset` to CPU 1; the server is pinned to CPU 0. Portico's\n\
         side is one `Client` shared by the calls in flight (its HTTP client pools connections), tools\n\
         listed once first so `structuredContent` is checked against `outputSchema` as in real use; the\n\
         reference's is one connection per call in flight. Stateless calls are 2026-07-28 (`_meta`,\n\
         mirrored headers); stateful calls share one 2025-11-25 session on both sides.\n\
         \n\
         Each cell starts a fresh server and runs the reference and Portico's client in turn, round after\n\
         round (each round a fresh client process, after a warm-up), so a drift in the machine's speed\n\
         reaches both alike. calls/s is over all rounds; latency is per call, of the median round; client\n\
         CPU is utime+stime of the client process over the measured windows (µs/call: per answered call);\n\
         peak RSS is the client process's `VmHWM` (largest over rounds); server CPU is the server's, in %\n\
         of one core; other CPU is the rest of the machine's, which distorts the figures when it is more\n\
         than a few %.\n",
    );
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    line(
        &mut out,
        &format!(
            "Results ({}, commit {commit}{}; one run of `cargo xtask bench client`: per cell and client {} s measured in {} round(s), each after {} s of warm-up; {}):\n",
            today(),
            if dirty { " with local changes" } else { "" },
            args.duration,
            args.rounds,
            args.warmup,
            cpu_model(),
        ),
    );
    line(
        &mut out,
        "### Calls, latency, CPU and memory (ratios: Portico / reference)\n",
    );
    line(
        &mut out,
        "| calls | in flight | client | calls/s | p50 µs | p99 µs | client CPU % | client CPU µs/call | peak RSS MiB | server CPU % | other CPU % |",
    );
    line(&mut out, "|---|---|---|---|---|---|---|---|---|---|---|");
    let mib = |kib: u64| kib as f64 / 1024.0;
    for cell in cells {
        let (r, p) = (&cell.reference, &cell.portico);
        line(
            &mut out,
            &format!(
                "| {} | {} | reference | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} | {:.1} | {:.0} | {:.0} |",
                cell.mode_label,
                cell.concurrency,
                r.calls_per_second,
                r.p50_us,
                r.p99_us,
                r.client_cpu,
                r.cpu_us_per_call(),
                mib(r.peak_rss_kib),
                r.server_cpu,
                r.other_cpu
            ),
        );
        line(
            &mut out,
            &format!(
                "| | | portico | {:.0} ({}) | {:.0} ({}) | {:.0} ({}) | {:.0} | {:.1} ({}) | {:.1} ({}) | {:.0} | {:.0} |",
                p.calls_per_second,
                ratio(p.calls_per_second, r.calls_per_second),
                p.p50_us,
                ratio(p.p50_us, r.p50_us),
                p.p99_us,
                ratio(p.p99_us, r.p99_us),
                p.client_cpu,
                p.cpu_us_per_call(),
                ratio(p.cpu_us_per_call(), r.cpu_us_per_call()),
                mib(p.peak_rss_kib),
                ratio(p.peak_rss_kib as f64, r.peak_rss_kib as f64),
                p.server_cpu,
                p.other_cpu
            ),
        );
    }
    line(&mut out, "");
    let other = cells
        .iter()
        .flat_map(|c| [c.reference.other_cpu, c.portico.other_cpu])
        .fold(0.0_f64, f64::max);
    line(&mut out, &disturbance(other));
    let busy = cells
        .iter()
        .flat_map(|c| [c.reference.server_cpu, c.portico.server_cpu])
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

    #[test]
    fn rounds_combine_into_figures() {
        let round = |calls: f64, p50: f64, rss: u64| Round {
            calls,
            seconds: 1.0,
            p50_us: p50,
            p99_us: p50 * 2.0,
            client_cpu: 50.0,
            server_cpu: 40.0,
            other_cpu: calls / 100.0,
            peak_rss_kib: rss,
        };
        let f = Figures::of(&[round(100.0, 10.0, 5), round(300.0, 30.0, 9), round(200.0, 20.0, 7)]);
        assert_eq!(f.calls_per_second, 200.0);
        assert_eq!(f.p50_us, 20.0);
        assert_eq!(f.p99_us, 40.0);
        assert_eq!(f.peak_rss_kib, 9);
        assert_eq!(f.other_cpu, 3.0);
        // 50% of a core over 200 calls/s: 2500 µs each.
        assert_eq!(f.cpu_us_per_call(), 2500.0);
    }

    #[test]
    fn the_section_has_its_own_markers() {
        let doc = format!("# Benchmarks\n\n{}\n", "<!-- end: cargo xtask bench server -->");
        let once = splice_section(&doc, BEGIN, END, "## Client\n\nfirst\n");
        let twice = splice_section(&once, BEGIN, END, "## Client\n\nsecond\n");
        assert!(twice.contains("<!-- end: cargo xtask bench server -->"), "{twice}");
        assert_eq!(twice.matches(BEGIN).count(), 1, "{twice}");
        assert!(twice.contains("second") && !twice.contains("first"), "{twice}");
    }
}
