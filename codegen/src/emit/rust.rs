//! Rust emitter (being written).
use super::Generated;
use crate::ir::Module;
use crate::Result;

/// Renders every revision.
pub fn emit(_env: &minijinja::Environment<'_>, _modules: &[Module]) -> Result<Vec<Generated>> {
    Ok(Vec::new())
}
