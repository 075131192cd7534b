//! Emitter placeholder for openapi (being written).
use super::Generated;
use crate::ir::Module;
use crate::Result;

/// Renders one revision.
pub fn emit(_env: &minijinja::Environment<'_>, module: &Module) -> Result<Generated> {
    Ok(Generated { path: format!("target/unused-openapi-{}", module.revision), contents: String::new() })
}
