//! Emitter placeholder for typescript (being written).
use super::Generated;
use crate::ir::Module;
use crate::Result;

/// Renders one revision.
pub fn emit(_env: &minijinja::Environment<'_>, module: &Module) -> Result<Generated> {
    Ok(Generated { path: format!("target/unused-typescript-{}", module.revision), contents: String::new() })
}
