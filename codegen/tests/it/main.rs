//! Integration tests of `portico-codegen`: emitters on small fixture schemas (golden files) and
//! on the pinned MCP schemas.

mod errors;
mod openapi;
mod python;
mod rust;
mod typescript;

/// The machinery generated Rust calls as `crate::support` (the golden files are compiled here).
pub use portico_protocol::support;

use std::path::{Path, PathBuf};
use std::process::Command;

use portico_codegen::ir::Module;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("codegen/ has a parent")
        .to_path_buf()
}

/// The template environment of `templates/`.
pub fn environment() -> minijinja::Environment<'static> {
    portico_codegen::emit::environment(&repo_root().join("templates"))
}

/// Lowers `codegen/tests/fixtures/<file>` as revision `tiny`.
pub fn fixture(file: &str) -> Module {
    let path = repo_root().join("codegen/tests/fixtures").join(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let schema = portico_codegen::spec::Schema {
        revision: "tiny".into(),
        sha256: portico_codegen::spec::sha256_hex(&bytes),
        document: serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        path,
    };
    portico_codegen::lower::lower(&schema, file).unwrap_or_else(|e| panic!("lowering {file}: {e}"))
}

/// Every pinned MCP revision, lowered, oldest first (schemas from `MCP_SPEC_DIR`, default
/// `../shared/mcp-spec`).
pub fn real_modules() -> Vec<Module> {
    let root = repo_root();
    let spec_dir = std::env::var_os("MCP_SPEC_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/mcp-spec"));
    let schemas = portico_codegen::spec::load_all(&root, &spec_dir).unwrap_or_else(|e| panic!("loading schemas: {e}"));
    assert_eq!(schemas.len(), 5, "spec/PINNED.toml pins five revisions");
    schemas
        .iter()
        .map(|s| {
            portico_codegen::lower::lower(s, &format!("{}/schema.json", s.revision))
                .unwrap_or_else(|e| panic!("lowering {}: {e}", s.revision))
        })
        .collect()
}

/// Checks that the committed file at `path` (relative to the repository root) is what the
/// emitter renders now.
pub fn assert_current(path: &str, contents: &str) {
    let on_disk = std::fs::read_to_string(repo_root().join(path)).unwrap_or_default();
    assert!(
        on_disk == contents,
        "{path} is missing or stale: run `cargo xtask generate`"
    );
}

/// The external tool named by environment variable `var` (installed by `cargo xtask test`).
pub fn tool(var: &str, name: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => panic!("{var} is not set: run `cargo xtask test`, which installs it, or set {var}=/path/to/{name}"),
    }
}

/// A fresh, empty scratch folder for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("portico-codegen-it")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

/// Runs `command`, failing the test with its output unless it succeeds.
pub fn run(mut command: Command) {
    let shown = format!("{command:?}");
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("could not run {shown}: {e}"));
    assert!(
        output.status.success(),
        "{shown} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
