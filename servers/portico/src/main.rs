//! `portico`: the command-line front of the Portico MCP platform.
//!
//! Today it answers `--help`, `--version`, `revisions` (the MCP protocol revisions Portico
//! supports) and `check` (decode a JSON message as a protocol type, reporting what is wrong). The gateway, the built-in servers (`serve <kind>`), `codegen` on users' own tool
//! specs, `inspect` and `token` come as their crates land. The binary has no features.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use portico_protocol::{LATEST, REVISIONS};

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
    /// Decode a JSON value as a protocol type and print it as Portico re-encodes it; on bad
    /// input, say what is wrong and exit 1.
    Check {
        /// The schema type, e.g. `CallToolRequest`, `JSONRPCMessage`, `Tool`.
        #[arg(long = "type", short = 't', default_value = "JSONRPCMessage")]
        ty: String,
        /// The protocol revision.
        #[arg(long, short = 'r', default_value = LATEST)]
        revision: String,
        /// The file to read; `-` or nothing reads standard input.
        file: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Revisions => revisions(),
        Command::Check { ty, revision, file } => check(&ty, &revision, file.as_deref()),
    }
}

/// `portico check`.
fn check(ty: &str, revision: &str, file: Option<&std::path::Path>) -> ExitCode {
    let mut json = String::new();
    let read = match file {
        Some(path) if path.as_os_str() != "-" => std::fs::read_to_string(path).map(|text| json = text),
        _ => std::io::stdin().read_to_string(&mut json).map(|_| ()),
    };
    if let Err(e) = read {
        eprintln!(
            "error: reading {}: {e}",
            file.map_or("standard input".into(), |p| p.display().to_string())
        );
        return ExitCode::FAILURE;
    }
    if !REVISIONS.contains(&revision) {
        eprintln!("error: unknown revision {revision:?}; known: {}", REVISIONS.join(", "));
        return ExitCode::FAILURE;
    }
    match portico_protocol::roundtrip_json(revision, ty, &json) {
        None => {
            eprintln!("error: revision {revision} has no type {ty:?} that can be decoded on its own");
            ExitCode::FAILURE
        }
        Some(Err(e)) => {
            eprintln!("invalid {ty} ({revision}): {e}");
            ExitCode::FAILURE
        }
        Some(Ok(value)) => {
            println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
            ExitCode::SUCCESS
        }
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
