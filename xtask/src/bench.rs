//! `cargo xtask bench codegen`: how long a full `generate` of every revision takes, and the
//! parse + serialize throughput of typed messages against `serde_json::Value` in one run;
//! `bench server`, `bench client`, `bench sdk` and `bench gateway` live in their own modules.

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::Context;

/// The benchmarks.
#[derive(clap::Subcommand)]
pub enum Which {
    /// Generation time and typed vs untyped JSON round trips.
    Codegen {
        /// Seconds per round-trip case.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// Full generations to time.
        #[arg(long, default_value_t = 10)]
        runs: usize,
    },
    /// `portico serve everything` under closed-loop tools/call load against a bare hyper
    /// reference, both pinned to one core; writes its section of docs/benchmarks.md.
    Server(crate::bench_server::Args),
    /// Portico's client core calling `echo` of `portico serve everything` against a bare hyper
    /// client, client and server each pinned to a core; writes its section of
    /// docs/benchmarks.md.
    Client(crate::bench_client::Args),
    /// Portico's Python and TypeScript SDKs against the official MCP SDKs calling `echo` of
    /// `portico serve everything`, server and clients each pinned to a core; writes its section
    /// of docs/benchmarks.md.
    Sdk(crate::bench_sdk::Args),
    /// `portico gateway` in front of `portico serve everything` against the server alone (echo
    /// calls), `tools/list` over 10 upstreams, and 10 000 idle sessions; writes its section of
    /// docs/benchmarks.md.
    Gateway(crate::bench_gateway::Args),
}

/// Runs one benchmark.
pub fn run(which: Which) -> anyhow::Result<ExitCode> {
    match which {
        Which::Codegen { seconds, runs } => codegen(seconds, runs.max(1)),
        Which::Server(args) => crate::bench_server::run(args),
        Which::Client(args) => crate::bench_client::run(args),
        Which::Sdk(args) => crate::bench_sdk::run(args),
        Which::Gateway(args) => crate::bench_gateway::run(args),
    }
}

fn codegen(seconds: f64, runs: usize) -> anyhow::Result<ExitCode> {
    // Generation: load, verify and patch 5 schemas, lower, render and format every output;
    // nothing is written.
    crate::generate::generate_all()?;
    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    let mut files = 0;
    let mut bytes = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let out = crate::generate::generate_all()?;
        times.push(start.elapsed());
        files = out.len();
        bytes = out.iter().map(|f| f.contents.len()).sum::<usize>();
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "## generate (all 5 revisions, {files} files, {:.1} MB, {runs} runs, in-process)\n",
        bytes as f64 / 1e6
    );
    println!("| min ms | median ms | max ms |");
    println!("|---|---|---|");
    println!(
        "| {:.0} | {:.0} | {:.0} |\n",
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1])
    );

    println!("## typed vs serde_json::Value round trip (parse + serialize, release build)\n");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(crate::repo_root())
        .args(["bench", "-q", "-p", "portico-protocol", "--bench", "roundtrip", "--"])
        .arg(seconds.to_string())
        .status()
        .context("running cargo bench")?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
