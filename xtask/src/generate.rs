//! `cargo xtask generate [--check]`.

use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::Context;
use portico_codegen::emit::Generated;

/// Folders whose files all come from the generator: a file there that the generator no longer
/// produces is stale too.
pub const GENERATED_DIRS: &[&str] = &[
    "runtime/protocol/src/generated",
    "docs/openapi",
    "sdks/python/portico/protocol",
    "sdks/typescript/src/generated",
];

/// Lowers every pinned revision and renders every output.
pub fn generate_all() -> anyhow::Result<Vec<Generated>> {
    let root = crate::repo_root();
    let spec_dir = crate::spec_dir();
    let schemas = portico_codegen::spec::load_all(&root, &spec_dir)?;
    let modules = schemas
        .iter()
        .map(|s| portico_codegen::lower::lower(s, &format!("{}/schema.json", s.revision)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut files = portico_codegen::emit::all(&root.join("templates"), &modules)?;
    files.extend(rust_goldens(&root)?);
    Ok(files)
}

/// The Rust emitter's golden files for the `tiny` fixture schema. They are compiled into the
/// codegen test binary, so they are regenerated here rather than by the test itself (a stale
/// golden that no longer compiles could not run the test that rewrites it).
fn rust_goldens(root: &std::path::Path) -> anyhow::Result<Vec<Generated>> {
    let path = root.join("codegen/tests/fixtures/tiny.schema.json");
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let schema = portico_codegen::spec::Schema {
        revision: "tiny".into(),
        sha256: portico_codegen::spec::sha256_hex(&bytes),
        document: serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))?,
        path,
    };
    let module = portico_codegen::lower::lower(&schema, "tiny.schema.json")?;
    let env = portico_codegen::emit::environment(&root.join("templates"));
    let mut types = portico_codegen::emit::rust::emit_types(&env, &module)?;
    types.path = "codegen/tests/golden/tiny.rs".into();
    let mut server = portico_codegen::emit::rust::emit_server(&env, &module)?;
    server.path = "codegen/tests/golden/tiny_server.rs".into();
    Ok(vec![types, server])
}

/// Writes (or, with `check`, compares) every generated file.
pub fn run(check: bool) -> anyhow::Result<ExitCode> {
    let root = crate::repo_root();
    let files = generate_all()?;
    let produced: BTreeSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
    let mut stale = Vec::new();
    for file in &files {
        let path = root.join(&file.path);
        let current = std::fs::read_to_string(&path).ok();
        if current.as_deref() != Some(file.contents.as_str()) {
            if check {
                stale.push(format!(
                    "{} ({})",
                    file.path,
                    if current.is_some() { "differs" } else { "missing" }
                ));
            } else {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
                }
                std::fs::write(&path, &file.contents).with_context(|| format!("writing {}", path.display()))?;
                println!("wrote {}", file.path);
            }
        }
    }
    for dir in GENERATED_DIRS {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let rel = format!("{dir}/{}", entry.file_name().to_string_lossy());
            if entry.path().is_file() && !produced.contains(rel.as_str()) {
                if check {
                    stale.push(format!("{rel} (no longer generated)"));
                } else {
                    std::fs::remove_file(entry.path()).with_context(|| format!("removing {rel}"))?;
                    println!("removed {rel}");
                }
            }
        }
    }
    if check {
        if stale.is_empty() {
            println!("generated files are current ({} files)", files.len());
        } else {
            eprintln!("stale generated files:");
            for s in &stale {
                eprintln!("  {s}");
            }
            eprintln!("run `cargo xtask generate` and commit the result");
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}
