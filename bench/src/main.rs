//! `portico-bench`: the load generator and the reference server of `cargo xtask bench server`
//! (see `xtask/src/bench_server.rs` and `docs/benchmarks.md`).
//!
//! - `reference --addr ADDR`: a bare hyper endpoint that parses each JSON-RPC request with serde
//!   and answers a fixed result; prints `serving the reference on http://ADDR/mcp`.
//! - `load --url URL --concurrency N --duration S --mode stateless|stateful`: closed-loop
//!   `tools/call`s of `echo` (or whole `tools/list`s, `--method tools/list`); prints one JSON
//!   object (requests/s, p50/p99 latency, CPU of the server and, `--upstream-pid`, of a
//!   gateway's upstream). Also the load of `cargo xtask bench gateway`
//!   (`xtask/src/bench_gateway.rs`).
//! - `sessions --url URL --count N`: opens N idle sessions, reads the server's memory growth
//!   (`--pid`), ends them; prints one JSON object.
//! - `client --url URL --subject portico|reference --mode stateless|stateful --concurrency N`:
//!   the client benchmark of `cargo xtask bench client` (`xtask/src/bench_client.rs`): calls
//!   `echo` with Portico's client core or with bare hyper; prints one JSON object (calls/s,
//!   p50/p99 latency, its own CPU and peak RSS).
//!
//! The load generator and the sessions client run on one thread (pin them to one core); the
//! reference runs on tokio's multi-thread runtime, like `portico serve`, so pinned to one core it
//! has one worker. The crate has no features and no library: it is a tool.

mod client;
mod client_load;
mod load;
mod mcp;
mod proc;
mod reference;
mod sessions;
#[cfg(test)]
mod tests;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::client::Target;
use crate::mcp::{Call, MESSAGE, Method, Mode};

#[derive(Parser)]
#[command(
    name = "portico-bench",
    about = "Load generators and references for cargo xtask bench server, bench client and bench gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the reference endpoint (bare hyper + serde, fixed answers) until killed.
    Reference {
        /// The address to listen on; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: std::net::SocketAddr,
    },
    /// tools/call (or tools/list) load, closed loop or paced; prints a JSON report.
    Load {
        /// The MCP endpoint, `http://HOST:PORT/mcp`.
        #[arg(long)]
        url: String,
        /// Workers, each with its own connection and one call in flight.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Seconds measured.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Seconds of warm-up before the measurement (not counted).
        #[arg(long, default_value_t = 2.0)]
        warmup: f64,
        /// Stateless 2026-07-28 requests, or 2025-11-25 sessions (one per worker).
        #[arg(long, value_enum, default_value_t = Mode::Stateless)]
        mode: Mode,
        /// What each call asks: `tools/call` of `--tool`, or the whole `tools/list` (every
        /// page).
        #[arg(long, value_enum, default_value_t = Method::ToolsCall)]
        method: Method,
        /// The tool to call with `{"message": …}`.
        #[arg(long, default_value = "echo")]
        tool: String,
        /// The server's process id: its CPU time over the measurement is reported.
        #[arg(long)]
        pid: Option<u32>,
        /// A second process under test (the upstream behind a gateway): its CPU time is
        /// reported too, and not counted as other work.
        #[arg(long)]
        upstream_pid: Option<u32>,
        /// The `Authorization` header every request carries (`Bearer …`, for a gateway with
        /// `auth`).
        #[arg(long)]
        authorization: Option<String>,
        /// Calls per second over all workers, sent at a steady pace (open loop while the
        /// server keeps up); without it, each worker calls again as soon as it is answered.
        #[arg(long)]
        rate: Option<f64>,
    },
    /// Open idle sessions and report the server's memory growth per session; prints JSON.
    Sessions {
        /// The MCP endpoint, `http://HOST:PORT/mcp`.
        #[arg(long)]
        url: String,
        /// Sessions to open.
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// Sessions opened and ended before the baseline is read.
        #[arg(long, default_value_t = 20)]
        warm: usize,
        /// The server's process id, whose VmRSS is read before and after.
        #[arg(long)]
        pid: Option<u32>,
        /// Seconds to hold the sessions open after the memory is read.
        #[arg(long, default_value_t = 0.0)]
        hold: f64,
    },
    /// Closed-loop tools/call of `echo` by a client under test; prints a JSON report.
    Client {
        /// The MCP endpoint, `http://HOST:PORT/mcp`.
        #[arg(long)]
        url: String,
        /// Portico's client core, or bare hyper (the reference).
        #[arg(long, value_enum)]
        subject: client_load::Subject,
        /// Stateless 2026-07-28 calls, or one 2025-11-25 session.
        #[arg(long, value_enum, default_value_t = Mode::Stateless)]
        mode: Mode,
        /// Calls in flight.
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
        /// Seconds measured.
        #[arg(long, default_value_t = 2.0)]
        duration: f64,
        /// Seconds of warm-up before the measurement (not counted).
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
        /// The server's process id: its CPU time over the measurement is reported.
        #[arg(long)]
        pid: Option<u32>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn seconds(value: f64, what: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| anyhow::anyhow!("{what} must be a number of seconds ≥ 0"))
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Reference { addr } => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(async {
                let listener = tokio::net::TcpListener::bind(addr).await?;
                println!("serving the reference on http://{}/mcp", listener.local_addr()?);
                reference::serve(listener).await
            })?;
        }
        Command::Load {
            url,
            concurrency,
            duration,
            warmup,
            mode,
            method,
            tool,
            pid,
            upstream_pid,
            authorization,
            rate,
        } => {
            let call = match method {
                Method::ToolsCall => Call::new(mode, &tool, MESSAGE),
                Method::ToolsList => Call::list(mode),
            }
            .with_authorization(authorization);
            let options = load::Options {
                target: Target::parse(&url)?,
                concurrency,
                warmup: seconds(warmup, "--warmup")?,
                duration: seconds(duration, "--duration")?,
                call,
                mode,
                server_pid: pid,
                upstream_pid,
                rate,
            };
            let report = current_thread()?.block_on(load::run(&options))?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::Sessions {
            url,
            count,
            warm,
            pid,
            hold,
        } => {
            let options = sessions::Options {
                target: Target::parse(&url)?,
                count,
                warm,
                server_pid: pid,
                settle: Duration::from_millis(500),
                hold: seconds(hold, "--hold")?,
            };
            let report = current_thread()?.block_on(sessions::run(&options))?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::Client {
            url,
            subject,
            mode,
            concurrency,
            duration,
            warmup,
            pid,
        } => {
            let options = client_load::Options {
                url,
                subject,
                mode,
                concurrency,
                warmup: seconds(warmup, "--warmup")?,
                duration: seconds(duration, "--duration")?,
                server_pid: pid,
            };
            let report = current_thread()?.block_on(client_load::run(&options))?;
            println!("{}", serde_json::to_string(&report)?);
        }
    }
    Ok(())
}

fn current_thread() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()
}
