//! `portico`: the command-line front of the Portico MCP platform.
//!
//! Today it answers `--help`, `--version` and `revisions` (the MCP protocol revisions Portico
//! supports). The gateway, the built-in servers (`serve <kind>`), `codegen` on users' own tool
//! specs, `inspect` and `token` come as their crates land. The binary has no features.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The MCP protocol revisions Portico supports, oldest first; the last one is the newest.
///
/// This list moves to `portico-protocol`, next to the generated wire types of each revision, once
/// that crate exports it; until then it is kept here and must match `spec/PINNED.toml`.
const REVISIONS: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"];

/// The command line; `about` is the package description.
#[derive(Parser)]
#[command(name = "portico", version, about, long_about = None, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the MCP protocol revisions Portico supports, newest first.
    Revisions,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Revisions => revisions(),
    }
}

/// Prints one revision per line, newest first, the newest marked.
fn revisions() -> ExitCode {
    for (i, revision) in REVISIONS.iter().rev().enumerate() {
        if i == 0 {
            println!("{revision} (newest)");
        } else {
            println!("{revision}");
        }
    }
    ExitCode::SUCCESS
}
