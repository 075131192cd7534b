//! `portico-protocol`: the MCP wire types of every protocol revision, generated from the MCP
//! JSON Schema by `cargo xtask generate`, and the server stubs of the newest revision.
//!
//! - [`v2024_11_05`] … [`v2026_07_28`]: one module per revision, one type per schema definition.
//!   Constants (`jsonrpc`, `method`, `type`) are part of the type, not free strings; unions
//!   dispatch on their tag; members a schema does not name are kept in `extra`.
//! - [`v2026_07_28_server`]: the handler trait and dispatch table of the newest revision.
//! - [`support`]: the hand-written machinery the generated code uses.
//!
//! The crate has no features.

pub mod support;

#[allow(missing_docs)]
#[rustfmt::skip]
mod generated;

pub use generated::*;
