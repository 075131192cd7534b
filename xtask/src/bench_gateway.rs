//! `cargo xtask bench gateway`: what `portico gateway` adds in front of an MCP server, measured
//! against that server alone in the same run; writes its section of `docs/benchmarks.md`.
//!
//! - **Echo**: `bench server`'s closed-loop `tools/call` of `echo` (`portico-bench load`, both
//!   client generations, concurrency 32 and 256), once direct to `portico serve everything
//!   --http` and once through a gateway whose one upstream is that same server (over HTTP,
//!   `protocol` the client's generation, `prefix: ""`), rounds alternating so that a drift of
//!   the machine's speed reaches both alike.
//! - **Steady rate**: the echo cells at concurrency 32 once more, paced (`portico-bench load
//!   --rate`) at a quarter of the gateway's req/s in the closed loop: the latency the gateway
//!   adds when neither path is the bottleneck. In the closed loop every worker calls again at
//!   once, so the latency there is concurrency / req/s (Little's law) and only restates the
//!   throughput.
//! - **Fan-out**: whole `tools/list`s (every page) on the aggregated `/mcp` of a gateway with 10
//!   `builtin: everything` upstreams (360 tools), against `tools/list` direct to one everything
//!   server.
//! - **Idle sessions**: 10 000 2025-11-25 sessions (`initialize` +
//!   `notifications/initialized`) held on a gateway, its `VmRSS` before and after
//!   (`portico-bench sessions`: one keep-alive connection, so no file descriptor per session),
//!   and the same on `portico serve everything` for comparison.
//!
//! Processes are pinned with `taskset`: the direct server to `--server-cpu`, the load
//! generator to `--load-cpu`, the gateway of the echo and policy cells to `--gateway-cpu` and
//! its upstream (a second `portico serve everything`) to `--upstream-cpu`. By default the
//! gateway has a core of its own, as the direct server has, and its upstream shares the load
//! generator's: with two cores two of the three processes share one, and sharing the subject's
//! core would measure what the other process leaves it rather than what the subject costs. The
//! peers' core must then not be the bottleneck: the report gives its load (the load
//! generator's CPU and the upstream's) beside each cell. `--gateway-cpu 1 --upstream-cpu 0`
//! gives the layout of the earlier runs (the gateway beside the load generator). The fan-out's
//! and the sessions' gateways have no upstream process and take the server's core. A cell
//! during which other processes used more than 10% of a core is measured again.

mod policy;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::bench_server::{
    Binaries, Figures, LoadOptions, MODES, OTHER_CPU_WARNING, Round, Server, SessionFigures, Subject as ServerKind,
    disturbance, least_disturbed, load_args, measure_sessions, per_call, pinned, ratio, run_bench_tool, splice_section,
    write_report,
};

/// The goal of the issue: through the gateway, at least this share of the direct req/s.
const THROUGHPUT_GOAL: f64 = 0.5;
/// The goal of the issue: the gateway adds at most this many µs to the p50 latency…
const ADDED_P50_GOAL_US: f64 = 150.0;
/// …at this concurrency.
const GOAL_CONCURRENCY: usize = 32;
/// The steady rate of the echo cells at [`GOAL_CONCURRENCY`], as a share of the gateway's req/s
/// in the closed loop: a load both paths carry with room to spare.
const STEADY_SHARE: f64 = 0.25;
/// The sessions `portico serve everything` (and the gateway, unless told otherwise) holds at
/// most (`HttpConfig::max_sessions`, `limits.max_sessions`).
const DEFAULT_MAX_SESSIONS: usize = 10_000;
/// Sessions `portico-bench sessions` opens and ends before its baseline (its default).
const WARM_SESSIONS: usize = 20;
/// The first line of the section this task owns in `docs/benchmarks.md`.
const BEGIN: &str = "<!-- begin: written by `cargo xtask bench gateway` (xtask/src/bench_gateway.rs); run it again rather than editing -->";
/// The last line of that section.
const END: &str = "<!-- end: cargo xtask bench gateway -->";

/// `cargo xtask bench gateway` options (`--concurrency`: of the echo cells; the two subjects
/// are the direct path and the path through the gateway).
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    load: LoadOptions,
    /// Concurrency levels of the tools/list fan-out cells.
    #[arg(long = "fanout-concurrency", value_delimiter = ',', default_values_t = [32])]
    fanout_concurrency: Vec<usize>,
    /// Upstreams of the fan-out gateway (each `builtin: everything`).
    #[arg(long, default_value_t = 10)]
    upstreams: usize,
    /// Idle sessions held on the gateway.
    #[arg(long, default_value_t = 10_000)]
    sessions: usize,
    /// A smoke run: one round of 1 s after 0.5 s of warm-up per path and cell, 500 sessions,
    /// no retries; docs/benchmarks.md is left alone.
    #[arg(long, alias = "quick")]
    smoke: bool,
    /// The CPU of the echo and policy cells' gateway (default: the direct server's, which is
    /// idle while the gateway is loaded; the fan-out's and the sessions' gateways take the
    /// server's too).
    #[arg(long, default_value_t = 0)]
    gateway_cpu: usize,
    /// The CPU of the echo and policy cells' upstream, a `portico serve everything` of its own
    /// (default: the load generator's).
    #[arg(long, default_value_t = 1)]
    upstream_cpu: usize,
    /// Concurrency of the policy cells (echo through gateways with each policy layer on).
    #[arg(long, default_value_t = 32)]
    policy_concurrency: usize,
    /// The gateway's `--log` (`info` writes an access line per relayed call).
    #[arg(long, default_value = "warn")]
    gateway_log: String,
}

/// The two paths of every cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Straight to `portico serve everything`.
    Direct,
    /// Through `portico gateway`.
    Gateway,
}

const ROUTES: [Route; 2] = [Route::Direct, Route::Gateway];

impl Route {
    fn name(self) -> &'static str {
        match self {
            Route::Direct => "direct",
            Route::Gateway => "gateway",
        }
    }
}

/// What a cell loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// `tools/call` of `echo`; the gateway relays to the direct server.
    Echo,
    /// Whole `tools/list`s; the gateway has `--upstreams` built-in upstreams.
    Fanout,
}

/// What a path's listings held (fan-out cells), from its last round.
#[derive(Debug, Clone, Copy, Default)]
struct Listing {
    tools: u64,
    pages: f64,
    bytes: f64,
}

/// One cell: a part, a client generation, a concurrency; both paths.
#[derive(Debug, Clone)]
struct Cell {
    part: Part,
    mode_label: &'static str,
    concurrency: usize,
    direct: Figures,
    gateway: Figures,
    listings: [Listing; 2],
    /// The same load paced at a steady rate (echo cells at [`GOAL_CONCURRENCY`]).
    steady: Option<Steady>,
}

/// An echo cell paced at a steady rate, both paths.
#[derive(Debug, Clone)]
struct Steady {
    /// Calls per second asked for.
    rate: f64,
    direct: Figures,
    gateway: Figures,
    /// The largest share of late calls of a round, in % (direct, gateway): calls whose turn came
    /// while their worker still waited for its last answer.
    late: [f64; 2],
}

impl Steady {
    /// What the gateway adds to the p50 latency, in µs.
    fn added_p50_us(&self) -> f64 {
        self.gateway.p50_us - self.direct.p50_us
    }
}

impl Cell {
    /// The most CPU other processes used while either path was measured.
    fn other_cpu(&self) -> f64 {
        self.direct.other_cpu.max(self.gateway.other_cpu)
    }

    /// Gateway req/s over direct req/s.
    fn throughput_ratio(&self) -> f64 {
        self.gateway.rps / self.direct.rps.max(f64::MIN_POSITIVE)
    }

    /// What the gateway adds to the p50 latency, in µs.
    fn added_p50_us(&self) -> f64 {
        self.gateway.p50_us - self.direct.p50_us
    }
}

/// The idle-session figures: the gateway's and the direct server's.
struct Sessions {
    gateway: SessionFigures,
    direct: SessionFigures,
}

/// Runs the benchmark.
pub fn run(mut args: Args) -> anyhow::Result<ExitCode> {
    if args.smoke {
        args.load.smoke();
        args.load.retries = 0;
        args.sessions = args.sessions.min(500);
    }
    if args.fanout_concurrency.is_empty()
        || args.fanout_concurrency.contains(&0)
        || args.upstreams == 0
        || args.policy_concurrency == 0
    {
        bail!("--fanout-concurrency, --policy-concurrency and --upstreams take positive numbers");
    }
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    for (flag, cpu) in [
        ("--gateway-cpu", args.gateway_cpu),
        ("--upstream-cpu", args.upstream_cpu),
    ] {
        if cpu >= cpus {
            bail!("{flag} {cpu} is not one of the {cpus} CPUs here");
        }
    }
    let (root, binaries, logs) = args.load.prepare("bench-gateway")?;
    let binaries = keep(&root, &binaries, &logs)?;
    println!(
        "{} cells x 2 paths x {} round(s) of {:.1} s after {} s of warm-up; server on CPU {}, gateway on CPU {}, its upstream on CPU {}, load on CPU {}; logs in {}",
        MODES.len() * (args.load.concurrency.len() + args.fanout_concurrency.len()),
        args.load.rounds,
        args.load.duration / args.load.rounds as f64,
        args.load.warmup,
        args.load.server_cpu,
        args.gateway_cpu,
        args.upstream_cpu,
        args.load.load_cpu,
        logs.display()
    );

    let bench = Bench {
        binaries: &binaries,
        args: &args,
        logs: &logs,
    };
    let mut cells = Vec::new();
    for (part, levels) in [
        (Part::Echo, &args.load.concurrency),
        (Part::Fanout, &args.fanout_concurrency),
    ] {
        for (mode, mode_label) in MODES {
            for &concurrency in levels {
                cells.push(least_disturbed(args.load.retries, Cell::other_cpu, || {
                    bench.cell(part, mode, mode_label, concurrency)
                })?);
            }
        }
    }
    let policy = bench.policy()?;
    let cache = bench.cache()?;
    let sessions = bench.sessions()?;
    let report = render(&args, &cells, (&policy, &cache), &sessions);
    write_report(&root, &report, args.load.no_docs, |old| {
        splice_section(old, BEGIN, END, &report)
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Copies of the binaries under test beside the logs, once checked to be built from this
/// checkout: another checkout building into the same target directory (cargo hashes a
/// workspace member's paths relative to its workspace, so both build the same files) could
/// otherwise have left its own, or swap them during the run.
fn keep(root: &Path, binaries: &Binaries, logs: &Path) -> anyhow::Result<Binaries> {
    let bin = logs.join("bin");
    std::fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
    let copy = |from: &Path| -> anyhow::Result<PathBuf> {
        let sources = std::fs::read_to_string(from.with_extension("d")).unwrap_or_default();
        if !sources.contains(&format!(" {}", root.display())) {
            bail!(
                "{} was last built from another checkout sharing the target directory (see its .d file); touch one of its sources here and run again",
                from.display()
            );
        }
        let to = bin.join(from.file_name().context("a binary's file name")?);
        std::fs::copy(from, &to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        Ok(to)
    };
    Ok(Binaries {
        portico: copy(&binaries.portico)?,
        bench: copy(&binaries.bench)?,
    })
}

/// The processes of a cell: the direct server, the gateway and the gateway's upstream (echo).
struct Processes<'a> {
    server: &'a mut Server,
    gateway: &'a mut Server,
    upstream: Option<&'a mut Server>,
}

/// What every part needs.
struct Bench<'a> {
    binaries: &'a Binaries,
    args: &'a Args,
    logs: &'a Path,
}

impl Bench<'_> {
    /// One cell: a fresh server and a fresh gateway, loaded in turn for `--rounds` rounds.
    fn cell(&self, part: Part, mode: &str, mode_label: &'static str, concurrency: usize) -> anyhow::Result<Cell> {
        let args = self.args;
        let name = format!("{}-{mode}-{concurrency}", part.name());
        let server_log = self.logs.join(format!("{name}-server.log"));
        let mut server = Server::start(self.binaries, ServerKind::Portico, args.load.server_cpu, &server_log)?;
        // The echo gateway's upstream: a server of its own, on `--upstream-cpu`.
        let mut upstream = match part {
            Part::Echo => {
                let log = self.logs.join(format!("{name}-upstream.log"));
                Some(Server::start(
                    self.binaries,
                    ServerKind::Portico,
                    args.upstream_cpu,
                    &log,
                )?)
            }
            Part::Fanout => None,
        };
        let (config, gateway_cpu) = match &upstream {
            Some(upstream) => (echo_config(&upstream.url, mode), args.gateway_cpu),
            None => (fanout_config(args.upstreams), args.load.server_cpu),
        };
        let mut gateway = self.gateway(&name, &config, gateway_cpu)?;
        let mut rounds: [Vec<Round>; 2] = [Vec::new(), Vec::new()];
        let mut listings = [Listing::default(); 2];
        let mut processes = Processes {
            server: &mut server,
            gateway: &mut gateway,
            upstream: upstream.as_mut(),
        };
        for round in 0..args.load.rounds {
            for (i, path) in ROUTES.into_iter().enumerate() {
                let method: &[&str] = match part {
                    Part::Echo => &[],
                    Part::Fanout => &["--method", "tools/list"],
                };
                let report = self.load(&mut processes, (&name, round, path), mode, concurrency, method)?;
                rounds[i].push(Round::of_load(&report).with_context(|| format!("{name} {}", path.name()))?);
                listings[i] = Listing::of(&report);
            }
        }
        // The echo load at a steady rate both paths carry, round after round likewise.
        let mut steady = None;
        if part == Part::Echo && concurrency == GOAL_CONCURRENCY {
            let rate = (Figures::of(&rounds[1], 0).rps * STEADY_SHARE).round().max(1.0);
            let mut paced: [Vec<Round>; 2] = [Vec::new(), Vec::new()];
            let mut late = [0.0f64; 2];
            let rate_text = rate.to_string();
            for round in 0..args.load.rounds {
                for (i, path) in ROUTES.into_iter().enumerate() {
                    let label = format!("{name}-steady");
                    let extra = ["--rate", rate_text.as_str()];
                    let report = self.load(&mut processes, (&label, round, path), mode, concurrency, &extra)?;
                    paced[i].push(Round::of_load(&report).with_context(|| format!("{label} {}", path.name()))?);
                    late[i] = late[i].max(report["late_percent"].as_f64().unwrap_or_default());
                }
            }
            steady = Some(Steady {
                rate,
                direct: Figures::of(&paced[0], 0),
                gateway: Figures::of(&paced[1], 0),
                late,
            });
        }
        let cell = Cell {
            part,
            mode_label,
            concurrency,
            direct: Figures::of(&rounds[0], server.status_kib("VmHWM")?),
            gateway: Figures::of(&rounds[1], gateway.status_kib("VmHWM")?),
            listings,
            steady,
        };
        if part == Part::Fanout {
            let [direct, through] = listings;
            if through.tools != direct.tools * args.upstreams as u64 {
                bail!(
                    "the gateway listed {} tools, not {} × {}: an upstream was not connected; see {}",
                    through.tools,
                    args.upstreams,
                    direct.tools,
                    gateway.log.display()
                );
            }
        }
        cell.print();
        Ok(cell)
    }

    /// One round of `portico-bench load` on one path of the cell `(name, round, path)`, with
    /// `extra` arguments; every process checked to be alive afterwards.
    fn load(
        &self,
        processes: &mut Processes<'_>,
        (name, round, path): (&str, usize, Route),
        mode: &str,
        concurrency: usize,
        extra: &[&str],
    ) -> anyhow::Result<Value> {
        let target = match path {
            Route::Direct => &*processes.server,
            Route::Gateway => &*processes.gateway,
        };
        let seconds = self.args.load.round_seconds();
        let mut tool_args = load_args(&target.url, mode, concurrency, seconds, target.pid());
        if let (Route::Gateway, Some(upstream)) = (path, &processes.upstream) {
            tool_args.extend(["--upstream-pid".into(), upstream.pid().to_string()]);
        }
        tool_args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        let log = self.logs.join(format!("{name}-{}-{round}.load.log", path.name()));
        let report = run_bench_tool(self.binaries, self.args.load.load_cpu, &tool_args, &log)
            .with_context(|| format!("{name} {}; see {}", path.name(), target.log.display()))?;
        processes.server.check_alive()?;
        processes.gateway.check_alive()?;
        if let Some(upstream) = processes.upstream.as_mut() {
            upstream.check_alive()?;
        }
        Ok(report)
    }

    /// Starts `portico gateway` on `config` (written beside the logs), pinned to `cpu`.
    fn gateway(&self, name: &str, config: &str, cpu: usize) -> anyhow::Result<Server> {
        let path = self.logs.join(format!("{name}-gateway.yaml"));
        std::fs::write(&path, config).with_context(|| format!("writing {}", path.display()))?;
        let mut command = pinned(cpu, &self.binaries.portico);
        command
            .arg("gateway")
            .arg("--config")
            .arg(&path)
            .args(["--listen", "127.0.0.1:0", "--watch-interval", "0s", "--log"])
            .arg(&self.args.gateway_log);
        Server::spawn(command, "the gateway", &self.logs.join(format!("{name}-gateway.log")))
    }

    /// Idle sessions on a fresh gateway (one built-in upstream) and on a fresh `portico serve
    /// everything`, each alone on the server's core.
    fn sessions(&self) -> anyhow::Result<Sessions> {
        let args = self.args;
        let mut gateway = self.gateway("sessions", &sessions_config(args.sessions), args.load.server_cpu)?;
        let log = self.logs.join("sessions-gateway.client.log");
        let through = measure_sessions(self.binaries, args.load.load_cpu, &mut gateway, args.sessions, &log)?;
        through.check_ids("the gateway")?;
        drop(gateway);
        let log = self.logs.join("sessions-direct-server.log");
        let mut server = Server::start(self.binaries, ServerKind::Portico, args.load.server_cpu, &log)?;
        let log = self.logs.join("sessions-direct.client.log");
        let count = direct_sessions(args.sessions);
        let direct = measure_sessions(self.binaries, args.load.load_cpu, &mut server, count, &log)?;
        direct.check_ids("portico serve everything")?;
        for (what, s) in [("gateway", &through), ("direct", &direct)] {
            println!(
                "  idle sessions  {what:<8} {} opened  VmRSS {} -> {} KiB  {:.2} KiB per session",
                s.opened, s.before_kib, s.after_kib, s.per_session_kib
            );
        }
        Ok(Sessions {
            gateway: through,
            direct,
        })
    }
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Echo => "echo",
            Part::Fanout => "fanout",
        }
    }
}

impl Listing {
    fn of(report: &Value) -> Self {
        Self {
            tools: report["tools_listed"].as_u64().unwrap_or_default(),
            pages: report["pages_per_call"].as_f64().unwrap_or_default(),
            bytes: report["bytes_per_call"].as_f64().unwrap_or_default(),
        }
    }
}

impl Cell {
    /// Its progress line for each path.
    fn print(&self) {
        for (path, f) in [(Route::Direct, &self.direct), (Route::Gateway, &self.gateway)] {
            println!(
                "  {:<6} {:<22} c={:<4} {:<8} {:>8.0} calls/s  p50 {:>7.0} µs  p99 {:>7.0} µs  CPU {:>3.0}% ({:>6.1} µs/call)  upstream CPU {:>3.0}%  load CPU {:>3.0}%  other CPU {:>3.0}%{}",
                self.part.name(),
                self.mode_label,
                self.concurrency,
                path.name(),
                f.rps,
                f.p50_us,
                f.p99_us,
                f.server_cpu,
                f.cpu_us_per_call(),
                f.upstream_cpu,
                f.load_cpu,
                f.other_cpu,
                if f.other_cpu > OTHER_CPU_WARNING {
                    "  <- other work ran meanwhile"
                } else {
                    ""
                }
            );
        }
        if let Some(steady) = &self.steady {
            for (path, f, late) in [
                (Route::Direct, &steady.direct, steady.late[0]),
                (Route::Gateway, &steady.gateway, steady.late[1]),
            ] {
                println!(
                    "  steady {:<22} c={:<4} {:<8} {:>8.0} calls/s (paced at {:.0})  p50 {:>7.0} µs  p99 {:>7.0} µs  CPU {:>3.0}%  late {:.1}%",
                    self.mode_label,
                    self.concurrency,
                    path.name(),
                    f.rps,
                    steady.rate,
                    f.p50_us,
                    f.p99_us,
                    f.server_cpu,
                    late
                );
            }
        }
    }
}

/// The echo gateway: the server at `url` as its one upstream, spoken to in the client's
/// generation, its tools unprefixed.
fn echo_config(url: &str, mode: &str) -> String {
    format!("upstreams:\n  - name: e\n    url: {url}\n    protocol: {mode}\n    prefix: \"\"\n")
}

/// The fan-out gateway: `n` built-in everything servers, each prefixed with its name.
fn fanout_config(n: usize) -> String {
    let mut config = String::from("upstreams:\n");
    for i in 0..n {
        config.push_str(&format!("  - name: e{i}\n    builtin: everything\n"));
    }
    config
}

/// The sessions gateway: one built-in everything server, unprefixed; room for `count`
/// sessions when that is more than the default (the warm-up's are ended first).
fn sessions_config(count: usize) -> String {
    let mut config = String::from("upstreams:\n  - name: e\n    builtin: everything\n    prefix: \"\"\n");
    if count > DEFAULT_MAX_SESSIONS {
        config.push_str(&format!("limits:\n  max_sessions: {count}\n"));
    }
    config
}

/// The sessions opened on `portico serve everything`, which holds at most its default.
fn direct_sessions(count: usize) -> usize {
    count.min(DEFAULT_MAX_SESSIONS)
}

/// The report: what was measured, the tables, the goals.
fn render(
    args: &Args,
    cells: &[Cell],
    (policy, cache): (&[policy::Row], &policy::CacheRows),
    sessions: &Sessions,
) -> String {
    let mut out = String::new();
    let line = |out: &mut String, text: &str| {
        out.push_str(text);
        out.push('\n');
    };
    line(&mut out, "## Gateway (`cargo xtask bench gateway`)\n");
    line(
        &mut out,
        &format!(
            "What it measures: what `portico gateway` (release build) adds in front of `portico serve everything`,\n\
             against that server alone in the same run.\n\
             \n\
             - **Echo**: the load of `bench server` (`portico-bench load`: closed-loop `tools/call` of `echo`, one\n\
             connection per worker, one call in flight per connection; 2026-07-28 stateless calls and 2025-11-25\n\
             sessions), once direct to `portico serve everything --http` and once through a gateway whose one\n\
             upstream is that same server over Streamable HTTP, `prefix: \"\"`, and `protocol` the client's\n\
             generation (`stateless` for stateless clients, `stateful` for sessions), so each path stays in\n\
             one generation end to end and the gateway adds its hop, not a translation. In a session the\n\
             gateway answers a relayed `tools/call` in one JSON object when the upstream answers within\n\
             100 ms and sends nothing first, else on a primed SSE stream (the load generator reads both).\n\
             Each cell starts a fresh server and a fresh gateway and loads the two paths in turn, round\n\
             after round, so a drift in the machine's speed reaches both alike. The gateway's upstream is a\n\
             second `portico serve everything`, started with the direct one. Pinning (`taskset`, 2 cores):\n\
             the direct server on CPU {server}, the load generator on CPU {load}, the gateway on CPU\n\
             {gateway} and its upstream on CPU {upstream}{shares}.\n\
             - **Steady rate**: the echo cells at concurrency {GOAL_CONCURRENCY} once more, both paths, with the\n\
             calls paced (`portico-bench load --rate`: a thread of the load generator's releases one call\n\
             every 1/rate seconds, to the workers in turn) at a quarter of the gateway's req/s in the\n\
             closed loop, a rate both paths carry with room to spare: the latency the gateway adds when\n\
             neither path is the bottleneck. (In the closed loop each worker calls again as soon as it\n\
             is answered, so the p50 there is about concurrency / req/s by Little's law, and the added\n\
             p50 restates the throughput.) A call whose turn comes while its worker still waits for its\n\
             last answer is late; its latency still counts from when it was sent.\n\
             - **Fan-out**: whole `tools/list`s (every page, following `nextCursor`) on the aggregated `/mcp` of\n\
             a gateway with {upstreams} `builtin: everything` upstreams, against `tools/list` direct to one\n\
             everything server. Built-in upstreams: the gateway answers `tools/list` from each upstream's\n\
             snapshot (kept current by its list-changed notifications), so no upstream is asked during a\n\
             call and their transport is not on the measured path; in-process they keep the subject one\n\
             process, whose CPU and memory are the gateway's, on the server's core (CPU {server}) alone, and\n\
             spare 2 cores {upstreams} more processes. Pages hold 100 tools, so a listing of the gateway is\n\
             several requests.\n\
             - **Policy layers**: the echo load (2026-07-28, concurrency {policy}) through gateways that differ\n\
             only in their policy layers (none; auth + RBAC; and a rate limit in memory or in Redis; and a\n\
             durable audit trail), all relaying to one server (pinned as the echo cells' upstream), loaded\n\
             in turn round after round.\n\
             - **Cache**: the fan-out's `tools/list` on two such gateways, one without a cache (cold) and\n\
             one with `cache: {{}}` (warm), loaded in turn.\n\
             - **Idle sessions**: on a fresh gateway (one built-in everything upstream) on CPU {server},\n\
             `portico-bench sessions` (CPU {load}) opens and ends {warm} sessions, reads `VmRSS`, opens N more\n\
             (`initialize` + `notifications/initialized`) one after another on one keep-alive connection, waits\n\
             0.5 s, reads `VmRSS` again while they are held, then ends them; the same on `portico serve\n\
             everything` for comparison (at most its default 10 000 sessions). One connection: no file\n\
             descriptor per session, so no descriptor limit to raise.\n\
             \n\
             req/s is over all rounds; latency is per call, client side, of the median round; CPU is\n\
             utime+stime over the measured windows, in % of one core and per answered call (the gateway's,\n\
             or the direct server's; upstream: the server behind the gateway); load CPU is the load\n\
             generator's; other CPU is the rest of the machine's, which distorts the figures when it is\n\
             more than a few %; peak RSS is `VmHWM` of the process under test. The gateway runs with\n\
             `--log {log}`. Goals (issue):\n\
             through the gateway ≥ {THROUGHPUT_GOAL}× the direct req/s; added p50 ≤ {ADDED_P50_GOAL_US} µs at concurrency\n\
             {GOAL_CONCURRENCY}.\n",
            server = args.load.server_cpu,
            load = args.load.load_cpu,
            gateway = args.gateway_cpu,
            upstream = args.upstream_cpu,
            shares = sharing(args),
            upstreams = args.upstreams,
            warm = WARM_SESSIONS,
            policy = args.policy_concurrency,
            log = args.gateway_log,
        ),
    );
    line(&mut out, &args.load.results_line("gateway", "cell and path"));
    render_echo(&mut out, cells);
    render_steady(&mut out, cells);
    render_fanout(&mut out, args, cells);
    policy::render(&mut out, args, policy);
    policy::render_cache(&mut out, args, cache);
    render_sessions(&mut out, args, sessions);
    let policy_goals = policy::goal(policy).into_iter().chain([policy::cache_goal(cache)]);
    for goal in goals(cells).into_iter().chain(policy_goals) {
        line(&mut out, &goal);
    }
    let other = cells
        .iter()
        .map(Cell::other_cpu)
        .fold(policy::other_cpu(policy), f64::max)
        .max(cache.cold.other_cpu)
        .max(cache.warm.other_cpu);
    line(&mut out, &disturbance(other));
    out
}

/// Which processes share a core in the echo cells, and why it matters.
fn sharing(args: &Args) -> String {
    let (gateway, upstream, load) = (args.gateway_cpu, args.upstream_cpu, args.load.load_cpu);
    if gateway == load {
        ". The gateway shares the load\n\
         generator's core, so its req/s is what the load generator leaves it of that core"
            .into()
    } else if gateway == upstream {
        ". The gateway shares its upstream's\n\
         core, so its req/s is what the upstream leaves it of that core"
            .into()
    } else if upstream == load {
        ": the gateway has a core of its own, as the direct server has (it idles while the\n\
         gateway is loaded), and its upstream shares the load generator's, whose load (load CPU +\n\
         upstream CPU) is given for each cell: as long as it is below 100% of that core, the\n\
         gateway's core is what limits its req/s"
            .into()
    } else {
        ": each process has a core of its own".into()
    }
}

/// `| a | b |` of `cells` (`| |` for an empty one).
fn row(cells: &[String]) -> String {
    cells.iter().fold(String::from("|"), |row, cell| {
        if cell.is_empty() {
            row + " |"
        } else {
            format!("{row} {cell} |")
        }
    })
}

/// The echo table.
fn render_echo(out: &mut String, cells: &[Cell]) {
    out.push_str("### Echo: direct and through the gateway (ratios and differences: gateway vs direct)\n\n");
    out.push_str("| calls | concurrency | path | req/s | p50 µs | p99 µs | CPU % | CPU µs/call | upstream CPU % | upstream CPU µs/call | peak RSS MiB | load CPU % | other CPU % |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for cell in cells.iter().filter(|c| c.part == Part::Echo) {
        let (d, g) = (&cell.direct, &cell.gateway);
        for (path, f) in [(Route::Direct, d), (Route::Gateway, g)] {
            let gateway = path == Route::Gateway;
            let compared = |value: f64, direct: f64| compared(gateway, value, direct);
            let (label, level) = if gateway {
                (String::new(), String::new())
            } else {
                (cell.mode_label.to_owned(), cell.concurrency.to_string())
            };
            let row_cells = [
                label,
                level,
                path.name().to_owned(),
                if gateway {
                    format!("{:.0} ({})", f.rps, ratio(f.rps, d.rps))
                } else {
                    format!("{:.0}", f.rps)
                },
                compared(f.p50_us, d.p50_us),
                compared(f.p99_us, d.p99_us),
                format!("{:.0}", f.server_cpu),
                format!("{:.1}", f.cpu_us_per_call()),
                if gateway {
                    format!("{:.0}", f.upstream_cpu)
                } else {
                    "—".into()
                },
                if gateway {
                    format!("{:.1}", per_call(f.upstream_cpu, f.rps))
                } else {
                    "—".into()
                },
                format!("{:.1}", mib(f.peak_rss_kib)),
                format!("{:.0}", f.load_cpu),
                format!("{:.0}", f.other_cpu),
            ];
            out.push_str(&row(&row_cells));
            out.push('\n');
        }
    }
    out.push('\n');
}

/// A figure of a row: the gateway's with its difference to the direct path's.
fn compared(gateway: bool, value: f64, direct: f64) -> String {
    if gateway {
        format!("{value:.0} ({:+.0})", value - direct)
    } else {
        format!("{value:.0}")
    }
}

/// The steady-rate table.
fn render_steady(out: &mut String, cells: &[Cell]) {
    let paced: Vec<(&Cell, &Steady)> = cells.iter().filter_map(|c| c.steady.as_ref().map(|s| (c, s))).collect();
    if paced.is_empty() {
        return;
    }
    out.push_str(&format!(
        "### Echo at a steady rate: concurrency {GOAL_CONCURRENCY}, paced at {:.0}% of the gateway's req/s above (differences: gateway − direct)\n\n",
        STEADY_SHARE * 100.0
    ));
    out.push_str("| calls | rate (calls/s) | path | req/s | p50 µs | p99 µs | CPU % | CPU µs/call | late calls % (largest of a round) | other CPU % |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    for (cell, steady) in paced {
        let d = &steady.direct;
        for (path, f, late) in [
            (Route::Direct, d, steady.late[0]),
            (Route::Gateway, &steady.gateway, steady.late[1]),
        ] {
            let gateway = path == Route::Gateway;
            let compared = |value: f64, direct: f64| compared(gateway, value, direct);
            let row_cells = [
                if gateway {
                    String::new()
                } else {
                    cell.mode_label.to_owned()
                },
                if gateway {
                    String::new()
                } else {
                    format!("{:.0}", steady.rate)
                },
                path.name().to_owned(),
                format!("{:.0}", f.rps),
                compared(f.p50_us, d.p50_us),
                compared(f.p99_us, d.p99_us),
                format!("{:.0}", f.server_cpu),
                format!("{:.1}", f.cpu_us_per_call()),
                format!("{late:.1}"),
                format!("{:.0}", f.other_cpu),
            ];
            out.push_str(&row(&row_cells));
            out.push('\n');
        }
    }
    out.push('\n');
}

/// The fan-out table.
fn render_fanout(out: &mut String, args: &Args, cells: &[Cell]) {
    out.push_str(&format!(
        "### tools/list fan-out: {} upstreams through the gateway, one server direct (ratios: gateway / direct)\n\n",
        args.upstreams
    ));
    out.push_str("| calls | concurrency | path | tools | requests per listing | KiB per listing | listings/s | requests/s | p50 µs | p99 µs | CPU % | CPU µs/listing | peak RSS MiB | other CPU % |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for cell in cells.iter().filter(|c| c.part == Part::Fanout) {
        let d = &cell.direct;
        for (i, (path, f)) in [(Route::Direct, d), (Route::Gateway, &cell.gateway)]
            .into_iter()
            .enumerate()
        {
            let listing = cell.listings[i];
            let vs = |value: f64, direct: f64| {
                if path == Route::Gateway {
                    format!("{value:.0} ({})", ratio(value, direct))
                } else {
                    format!("{value:.0}")
                }
            };
            let first = path == Route::Direct;
            let row_cells = [
                if first {
                    cell.mode_label.to_owned()
                } else {
                    String::new()
                },
                if first {
                    cell.concurrency.to_string()
                } else {
                    String::new()
                },
                path.name().to_owned(),
                listing.tools.to_string(),
                format!("{:.0}", listing.pages),
                format!("{:.0}", listing.bytes / 1024.0),
                vs(f.rps, d.rps),
                format!("{:.0}", f.rps * listing.pages),
                vs(f.p50_us, d.p50_us),
                vs(f.p99_us, d.p99_us),
                format!("{:.0}", f.server_cpu),
                vs(f.cpu_us_per_call(), d.cpu_us_per_call()),
                format!("{:.1}", mib(f.peak_rss_kib)),
                format!("{:.0}", f.other_cpu),
            ];
            out.push_str(&row(&row_cells));
            out.push('\n');
        }
    }
    out.push('\n');
}

/// The idle-session table.
fn render_sessions(out: &mut String, args: &Args, sessions: &Sessions) {
    out.push_str(&format!(
        "### Idle sessions ({} held on the gateway)\n\n",
        args.sessions
    ));
    out.push_str("| server | sessions held (with an id) | VmRSS before KiB | VmRSS after KiB | growth MiB | KiB per idle session |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for (what, s) in [
        ("gateway (one built-in upstream)", &sessions.gateway),
        ("`portico serve everything` (direct)", &sessions.direct),
    ] {
        let row_cells = [
            what.to_owned(),
            format!("{} ({})", s.opened, s.with_id),
            s.before_kib.to_string(),
            s.after_kib.to_string(),
            format!("{:.1}", mib(s.after_kib.saturating_sub(s.before_kib))),
            format!("{:.2}", s.per_session_kib),
        ];
        out.push_str(&row(&row_cells));
        out.push('\n');
    }
    out.push('\n');
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The goals' lines: throughput in every echo cell, added p50 at [`GOAL_CONCURRENCY`].
fn goals(cells: &[Cell]) -> Vec<String> {
    let echo: Vec<&Cell> = cells.iter().filter(|c| c.part == Part::Echo).collect();
    let mut lines = Vec::new();
    let worst = echo
        .iter()
        .min_by(|a, b| a.throughput_ratio().total_cmp(&b.throughput_ratio()));
    if let Some(worst) = worst {
        let met = echo.iter().filter(|c| c.throughput_ratio() >= THROUGHPUT_GOAL).count();
        lines.push(format!(
            "- Throughput goal (through the gateway ≥ {THROUGHPUT_GOAL}× the direct req/s in every echo cell): **{}** — met in {met} of {} cells; lowest {:.2}× ({}, concurrency {}).",
            if met == echo.len() { "met" } else { "missed" },
            echo.len(),
            worst.throughput_ratio(),
            worst.mode_label,
            worst.concurrency
        ));
    }
    let at_goal: Vec<&&Cell> = echo.iter().filter(|c| c.concurrency == GOAL_CONCURRENCY).collect();
    let steady: Vec<(&Cell, &Steady)> = at_goal
        .iter()
        .filter_map(|c| c.steady.as_ref().map(|s| (**c, s)))
        .collect();
    if !steady.is_empty() {
        let met = steady.iter().all(|(_, s)| s.added_p50_us() <= ADDED_P50_GOAL_US);
        let each: Vec<String> = steady
            .iter()
            .map(|(c, s)| format!("{} {:+.0} µs at {:.0} calls/s", c.mode_label, s.added_p50_us(), s.rate))
            .collect();
        lines.push(format!(
            "- Latency goal (added p50 ≤ {ADDED_P50_GOAL_US} µs at concurrency {GOAL_CONCURRENCY}), at a steady rate both paths carry: **{}** — {}.",
            if met { "met" } else { "missed" },
            each.join(", ")
        ));
    }
    if !at_goal.is_empty() {
        let met = at_goal.iter().all(|c| c.added_p50_us() <= ADDED_P50_GOAL_US);
        let each: Vec<String> = at_goal
            .iter()
            .map(|c| format!("{} {:+.0} µs", c.mode_label, c.added_p50_us()))
            .collect();
        lines.push(format!(
            "- The same in the closed loop (each worker calls again when answered): **{}** — {}. There the p50 is about concurrency / req/s (Little's law), so at {GOAL_CONCURRENCY} calls in flight the added p50 follows the throughput ratio, not the hop's own cost.",
            if met { "met" } else { "missed" },
            each.join(", ")
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(rps: f64, p50_us: f64) -> Figures {
        Figures {
            rps,
            p50_us,
            p99_us: p50_us * 2.0,
            ..Figures::default()
        }
    }

    fn echo(concurrency: usize, direct: (f64, f64), gateway: (f64, f64)) -> Cell {
        Cell {
            part: Part::Echo,
            mode_label: "2026-07-28 stateless",
            concurrency,
            direct: figures(direct.0, direct.1),
            gateway: figures(gateway.0, gateway.1),
            listings: [Listing::default(); 2],
            steady: None,
        }
    }

    #[test]
    fn goals_are_judged_on_every_echo_cell_and_at_32() {
        let cells = [
            echo(32, (1000.0, 400.0), (600.0, 500.0)),
            echo(256, (1000.0, 3000.0), (400.0, 7000.0)),
        ];
        let lines = goals(&cells);
        assert!(
            lines[0].contains("**missed** — met in 1 of 2 cells; lowest 0.40×"),
            "{lines:?}"
        );
        assert!(lines[1].contains("**met** — 2026-07-28 stateless +100 µs"), "{lines:?}");
        let lines = goals(&[echo(32, (1000.0, 400.0), (500.0, 551.0))]);
        assert!(
            lines[0].contains("**met**") && lines[1].contains("**missed**"),
            "{lines:?}"
        );
    }

    #[test]
    fn the_latency_goal_is_judged_at_the_steady_rate_and_the_closed_loop_shown_beside() {
        let mut cell = echo(32, (1000.0, 400.0), (400.0, 1000.0));
        cell.steady = Some(Steady {
            rate: 100.0,
            direct: figures(100.0, 120.0),
            gateway: figures(100.0, 250.0),
            late: [0.0, 0.5],
        });
        let lines = goals(std::slice::from_ref(&cell));
        assert!(
            lines[1]
                .contains("at a steady rate both paths carry: **met** — 2026-07-28 stateless +130 µs at 100 calls/s"),
            "{lines:?}"
        );
        assert!(
            lines[2].contains("closed loop") && lines[2].contains("**missed** — 2026-07-28 stateless +600 µs"),
            "{lines:?}"
        );
        let mut table = String::new();
        render_steady(&mut table, std::slice::from_ref(&cell));
        assert!(
            table.contains("| 2026-07-28 stateless | 100 | direct | 100 | 120 | 240 |"),
            "{table}"
        );
        assert!(
            table.contains("| | | gateway | 100 | 250 (+130) | 500 (+260) |"),
            "{table}"
        );
        assert!(table.contains("| 0.5 |"), "{table}");
        cell.steady.as_mut().unwrap().gateway.p50_us = 271.0;
        assert!(goals(std::slice::from_ref(&cell))[1].contains("**missed** — 2026-07-28 stateless +151 µs"));
        // Cells without a steady part have no table.
        let mut none = String::new();
        render_steady(&mut none, &[echo(256, (1.0, 1.0), (1.0, 1.0))]);
        assert!(none.is_empty());
    }

    #[test]
    fn rows_leave_empty_cells_empty() {
        assert_eq!(row(&["a".into(), String::new(), "b".into()]), "| a | | b |");
    }

    #[test]
    fn configs_name_their_upstreams() {
        let echo = echo_config("http://127.0.0.1:1/mcp", "stateful");
        assert!(echo.contains("url: http://127.0.0.1:1/mcp\n    protocol: stateful\n    prefix: \"\"\n"));
        let fanout = fanout_config(10);
        assert_eq!(fanout.matches("builtin: everything").count(), 10);
        assert!(fanout.contains("name: e0\n") && fanout.contains("name: e9\n"));
        assert!(!sessions_config(10_000).contains("max_sessions"));
        assert!(sessions_config(20_000).contains("max_sessions: 20000"));
        assert_eq!(direct_sessions(20_000), 10_000);
        assert_eq!(direct_sessions(500), 500);
    }

    #[test]
    fn the_section_has_its_own_markers() {
        let doc = "# Benchmarks\n\n<!-- end: cargo xtask bench sdk -->\n";
        let once = splice_section(doc, BEGIN, END, "## Gateway\n\nfirst\n");
        let twice = splice_section(&once, BEGIN, END, "## Gateway\n\nsecond\n");
        assert!(twice.contains("<!-- end: cargo xtask bench sdk -->"), "{twice}");
        assert_eq!(twice.matches(BEGIN).count(), 1, "{twice}");
        assert!(twice.contains("second") && !twice.contains("first"), "{twice}");
    }
}
