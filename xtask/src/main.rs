//! Maintainer tasks, run as `cargo xtask <task>`:
//!
//! - `generate [--check]`: compile the pinned MCP schemas into every generated file, or check
//!   that the committed ones are current;
//! - `test`: the whole test suite, installing the tools it needs (see `test.rs`);
//! - `conformance`: the official MCP conformance suites against `portico serve everything`
//!   through a recording proxy that validates every message the server sent (`capture.rs`), with
//!   a report in `docs/conformance.md` (see `conformance.rs`; in `test` behind a switch);
//! - `bench codegen`: time generation and compare typed and untyped JSON round trips;
//! - `bench server`: Portico's Streamable HTTP server under load against a bare hyper reference
//!   (see `bench_server.rs`; not part of `test`);
//! - `bench sdk`: Portico's Python and TypeScript SDKs against the official MCP SDKs (see
//!   `bench_sdk.rs`; not part of `test`);
//! - `bench gateway`: `portico gateway` in front of `portico serve everything` against the
//!   server alone, `tools/list` fan-out and idle sessions (see `bench_gateway.rs`; not part of
//!   `test`);
//! - `fuzz [--seconds N]`: mutated JSON-RPC frames against the peer engine, mutated HTTP
//!   requests against the Streamable HTTP endpoint, then mutated bytes on the wire against the
//!   HTTP/1.1 front, N seconds each.

mod bench;
mod bench_client;
mod bench_gateway;
mod bench_sdk;
mod bench_server;
mod capture;
mod conformance;
mod generate;
mod node_sdk;
mod python_sdk;
mod test;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Portico maintainer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Regenerate protocol types, handler traits, OpenAPI, .pyi and .d.ts from the pinned schemas.
    Generate {
        /// Write nothing; exit non-zero naming each file that is stale.
        #[arg(long)]
        check: bool,
    },
    /// Run the whole test suite (installing Python/Node tools it needs under .tools/).
    Test(test::Args),
    /// Run the official MCP conformance suites against `portico serve everything` through a
    /// recording proxy (installing Node 22 and the suites under the tools folder), validate every
    /// message the server sent, and write docs/conformance.md.
    Conformance(conformance::Args),
    /// The Python SDK alone: build `portico` and the wheel, run the pytest suite and mypy in a
    /// fresh venv, then the conformance client scenarios (tools installed by `cargo xtask test`).
    PythonSdk,
    /// Feed mutated JSON-RPC frames to the decoder and the peer for a while (default 10 minutes).
    Fuzz {
        /// How long to run.
        #[arg(long, default_value_t = 600)]
        seconds: u64,
    },
    /// Run a benchmark and print its report.
    Bench {
        /// Which benchmark.
        #[command(subcommand)]
        which: bench::Which,
    },
}

/// The repository root (the parent of `xtask/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Where the MCP spec inputs are: `MCP_SPEC_DIR`, else `../shared/mcp-spec` beside the repository.
pub fn spec_dir() -> PathBuf {
    std::env::var_os("MCP_SPEC_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/mcp-spec"))
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Generate { check } => generate::run(check),
        Task::Test(args) => test::run(args),
        Task::Conformance(args) => conformance::run(args),
        Task::PythonSdk => python_sdk::run(),
        Task::Bench { which } => bench::run(which),
        Task::Fuzz { seconds } => fuzz(seconds),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `cargo xtask fuzz`: the mutation tests, time-boxed, in a release build: the JSON-RPC
/// decoder and peer engine, the Streamable HTTP endpoint, then the HTTP/1.1 front's reading of
/// raw bytes, each for `seconds`.
fn fuzz(seconds: u64) -> anyhow::Result<std::process::ExitCode> {
    let targets = [
        ("portico-core", "mutated_frames_never_break_the_peer"),
        ("portico-transport", "mutated_requests_never_break_the_endpoint"),
        ("portico-transport", "mutated_bytes_never_break_the_front"),
    ];
    for (package, test) in targets {
        let status = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(repo_root())
            .env("PORTICO_FUZZ_SECONDS", seconds.to_string())
            .args([
                "test",
                "--release",
                "-q",
                "-p",
                package,
                "--test",
                "it",
                test,
                "--",
                "--nocapture",
            ])
            .status()?;
        if !status.success() {
            return Ok(std::process::ExitCode::FAILURE);
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
