//! Emitters: the IR rendered through the minijinja templates of `templates/`.
//!
//! Each emitter turns one [`Module`] (one revision) into one or more [`Generated`] files. All
//! output is byte-stable: no timestamps, no hash-map iteration order, and a header naming the
//! schema file and its sha256 followed by "do not edit".

pub mod openapi;
pub mod python;
pub mod rust;
pub mod typescript;

use std::path::Path;

use crate::ir::Module;
use crate::{Error, Result};

/// One generated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// Path relative to the repository root, with `/` separators.
    pub path: String,
    /// The complete file contents.
    pub contents: String,
}

/// A template environment reading `templates/` under `templates_dir`, with the filters every
/// emitter shares.
pub fn environment(templates_dir: &Path) -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.set_loader(minijinja::path_loader(templates_dir));
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(true);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_filter("rust_str", rust_str);
    env
}

/// A Rust string literal of `value` (`{{ doc | rust_str }}`).
fn rust_str(value: String) -> String {
    format!("{value:?}")
}

/// Renders `template` with `context`, mapping errors to [`Error::Render`].
pub fn render(env: &minijinja::Environment<'_>, template: &str, context: minijinja::Value) -> Result<String> {
    let render_err = |e: minijinja::Error| {
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message.push_str(&format!(": {s}"));
            source = s.source();
        }
        Error::Render {
            template: template.to_string(),
            message,
        }
    };
    env.get_template(template)
        .and_then(|t| t.render(context))
        .map_err(render_err)
}

/// The module name of a revision in generated code (`2026-07-28` → `v2026_07_28`).
pub fn revision_module(revision: &str) -> String {
    format!("v{}", revision.replace('-', "_"))
}

/// Every generated file for `modules` (all revisions, oldest first). The newest revision also
/// gets the handler traits and dispatch table.
pub fn all(templates_dir: &Path, modules: &[Module]) -> Result<Vec<Generated>> {
    let env = environment(templates_dir);
    let mut out = Vec::new();
    out.extend(rust::emit(&env, modules)?);
    for module in modules {
        out.push(openapi::emit(&env, module)?);
        out.push(python::emit(&env, module)?);
        out.push(typescript::emit(&env, module)?);
    }
    Ok(out)
}
