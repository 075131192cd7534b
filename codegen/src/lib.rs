//! `portico-codegen` compiles the MCP JSON Schema into Portico's typed artefacts.
//!
//! The pipeline has three stages, one module each:
//!
//! 1. [`spec`] loads a revision's `schema.json` from the spec directory, checks its sha256 against
//!    `spec/PINNED.toml` and applies the data patches of `spec/patches.toml`;
//! 2. [`lower`] turns the patched schema into the [`ir`]: `$ref`s resolved, `allOf` merged, inline
//!    objects, unions and enums hoisted into named definitions, and every union classified by how
//!    it is told apart on the wire (a constant tag, a marker key, or the JSON kind);
//! 3. [`emit`] renders the IR through the minijinja templates of `templates/` into Rust wire types,
//!    handler traits and a dispatch table, an OpenAPI 3.1 document, a Python `.pyi` stub and a
//!    TypeScript `.d.ts` file.
//!
//! The library has no features; `xtask` drives it (`cargo xtask generate`).

pub mod emit;
pub mod ir;
pub mod lower;
pub mod names;
pub mod spec;

use std::path::PathBuf;

/// Everything that can stop generation. Each message names the file, revision or JSON pointer
/// at fault, so a maintainer can find it without a debugger.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid JSON or TOML.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A pinned input is missing, or its hash differs from `spec/PINNED.toml`.
    #[error("{0}")]
    Pin(String),
    /// A patch of `spec/patches.toml` no longer applies.
    #[error("patch {index} ({revision} {pointer}): {message}")]
    Patch {
        /// Position of the patch in `spec/patches.toml`, from 1.
        index: usize,
        /// The revision the patch is for.
        revision: String,
        /// The JSON pointer the patch targets.
        pointer: String,
        /// What went wrong.
        message: String,
    },
    /// The schema has a shape the generator cannot lower.
    #[error("schema {revision} at {pointer}: {message}")]
    Schema {
        /// The revision being lowered.
        revision: String,
        /// A JSON pointer into the (patched) schema.
        pointer: String,
        /// What is wrong there.
        message: String,
    },
    /// A template failed to render, or rendered Rust that does not parse.
    #[error("rendering {template}: {message}")]
    Render {
        /// The template (or output) at fault.
        template: String,
        /// The renderer's or parser's message.
        message: String,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
