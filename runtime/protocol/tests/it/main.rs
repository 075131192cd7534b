//! Integration tests of the generated wire types: the official examples, negative fixtures,
//! schema validation of emitted messages, and the dispatch table.

mod dispatch;
mod examples;
mod negative;
mod validate;

use std::path::PathBuf;

/// The MCP spec inputs: `MCP_SPEC_DIR`, else `../shared/mcp-spec` beside the repository.
pub fn spec_dir() -> PathBuf {
    match std::env::var_os("MCP_SPEC_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/mcp-spec"),
    }
}

/// A revision's schema document.
pub fn schema(revision: &str) -> serde_json::Value {
    let path = spec_dir().join(revision).join("schema.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; set MCP_SPEC_DIR to the MCP spec folder", path.display()));
    serde_json::from_str(&text).expect("schema.json is JSON")
}
