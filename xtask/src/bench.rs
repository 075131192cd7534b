//! `cargo xtask bench` (being written).
use std::process::ExitCode;

/// The benchmarks.
#[derive(clap::Subcommand)]
pub enum Which {
    /// Generation time and typed vs untyped JSON round trips.
    Codegen,
}

/// Runs one benchmark.
pub fn run(_which: Which) -> anyhow::Result<ExitCode> {
    Ok(ExitCode::SUCCESS)
}
