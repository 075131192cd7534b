//! Malformed, truncated or hostile inputs stop the generator with a message naming the file,
//! patch or JSON pointer at fault: never a panic, never a partial result.

use portico_codegen::Error;
use portico_codegen::spec::{self, Patch, PinnedRevision, Schema};
use serde_json::{Value, json};

fn lower(document: Value) -> Result<portico_codegen::ir::Module, Error> {
    let schema = Schema {
        revision: "bad".into(),
        path: "bad.json".into(),
        sha256: "0".into(),
        document,
    };
    portico_codegen::lower::lower(&schema, "bad.json")
}

fn lower_err(document: Value) -> String {
    match lower(document) {
        Ok(_) => panic!("a broken schema was accepted"),
        Err(e) => e.to_string(),
    }
}

fn assert_mentions(message: &str, parts: &[&str]) {
    for p in parts {
        assert!(message.contains(p), "{message:?} should mention {p:?}");
    }
}

const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

#[test]
fn missing_defs() {
    assert_mentions(&lower_err(json!({"$schema": DRAFT})), &["/$defs", "missing"]);
    assert_mentions(&lower_err(json!({"$defs": {}})), &["/$schema", "dialect"]);
}

#[test]
fn dangling_ref() {
    let e = lower_err(json!({"$schema": DRAFT, "$defs": {
        "A": {"type": "object", "properties": {"b": {"$ref": "#/$defs/Nope"}}}
    }}));
    assert_mentions(&e, &["/$defs/A/properties/b", "dangling", "Nope"]);
    let e = lower_err(json!({"$schema": DRAFT, "$defs": {"A": {"$ref": "https://example.com/x.json"}}}));
    assert_mentions(&e, &["/$defs/A", "does not point into"]);
}

#[test]
fn cyclic_ref() {
    let e = lower_err(json!({"$schema": DRAFT, "$defs": {"A": {"$ref": "#/$defs/B"}, "B": {"$ref": "#/$defs/A"}}}));
    assert_mentions(&e, &["cyclic", "/$defs/"]);
    // Recursion through a container is a legitimate recursive type, not a cycle.
    lower(
        json!({"$schema": DRAFT, "$defs": {"Tree": {"type": "object", "properties": {
            "children": {"type": "array", "items": {"$ref": "#/$defs/Tree"}}
        }}}}),
    )
    .expect("a recursive type lowers");
}

#[test]
fn hostile_shapes() {
    let e = lower_err(json!({"$schema": DRAFT, "$defs": {"A": 5}}));
    assert_mentions(&e, &["/$defs/A", "JSON object"]);
    let e =
        lower_err(json!({"$schema": DRAFT, "$defs": {"A": {"type": "object", "properties": {"x": {"type": "quux"}}}}}));
    assert_mentions(&e, &["/$defs/A/properties/x", "quux"]);
    let e = lower_err(
        json!({"$schema": DRAFT, "$defs": {"A": {"type": "object", "properties": {}, "required": ["ghost"]}}}),
    );
    assert_mentions(&e, &["/$defs/A", "ghost"]);
    let e = lower_err(json!({"$schema": DRAFT, "$defs": {"A": {"allOf": [{"type": "string"}]}}}));
    assert_mentions(&e, &["/$defs/A/allOf/0", "only objects"]);
    let e = lower_err(json!({"$schema": DRAFT, "$defs": {"A": {"enum": [1, 2]}}}));
    assert_mentions(&e, &["/$defs/A", "string enums"]);
}

#[test]
fn truncated_missing_and_changed_files() {
    let dir = std::env::temp_dir().join(format!("portico-codegen-errors-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("r1")).expect("temp dir");
    let truncated = br#"{"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": {"A": {"#;
    std::fs::write(dir.join("r1/schema.json"), truncated).expect("write");
    let pin = PinnedRevision {
        name: "r1".into(),
        sha256: spec::sha256_hex(truncated),
    };
    let e = spec::load_schema(&dir, &pin, &[])
        .expect_err("truncated JSON")
        .to_string();
    assert_mentions(&e, &["r1/schema.json", "EOF"]);

    let wrong = PinnedRevision {
        name: "r1".into(),
        sha256: "ab".repeat(32),
    };
    let e = spec::load_schema(&dir, &wrong, &[])
        .expect_err("hash differs")
        .to_string();
    assert_mentions(&e, &["sha256", &"ab".repeat(32), "PINNED.toml"]);

    let missing = PinnedRevision {
        name: "r2".into(),
        sha256: "00".repeat(32),
    };
    let e = spec::load_schema(&dir, &missing, &[]).expect_err("no file").to_string();
    assert_mentions(&e, &["r2/schema.json", "missing", "MCP_SPEC_DIR"]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn stale_patches_fail() {
    let patch = |pointer: &str, expect: Option<&str>| Patch {
        revision: "r".into(),
        pointer: pointer.into(),
        expect: expect.map(str::to_string),
        replace: "\"new\"".into(),
        reason: "test".into(),
    };
    let mut doc = json!({"$defs": {"A": {"type": "string"}}});
    spec::apply_patches(&mut doc, "r", &[patch("/$defs/A/type", Some("\"string\""))]).expect("applies");
    assert_eq!(doc["$defs"]["A"]["type"], "new");
    let e = spec::apply_patches(&mut doc, "r", &[patch("/$defs/A/type", Some("\"string\""))]).expect_err("stale");
    assert_mentions(
        &e.to_string(),
        &[
            "patch 1",
            "/$defs/A/type",
            "expected \"string\" but found \"new\"",
            "delete this patch",
        ],
    );
    let e = spec::apply_patches(&mut doc, "r", &[patch("/$defs/A/type", None)]).expect_err("already there");
    assert_mentions(&e.to_string(), &["expected nothing"]);
    let e = spec::apply_patches(&mut doc, "r", &[patch("/$defs/Gone/type", Some("1"))]).expect_err("gone");
    assert_mentions(&e.to_string(), &["nothing at `/$defs/Gone`"]);
    // A patch for another revision is not applied.
    spec::apply_patches(&mut doc, "other", &[patch("/$defs/Gone/type", Some("1"))]).expect("not this revision");
}

#[test]
fn the_pinned_patches_apply_and_the_task_results_merge() {
    let modules = crate::real_modules();
    let m = modules
        .iter()
        .find(|m| m.revision == "2025-11-25")
        .expect("2025-11-25 is pinned");
    let Some(portico_codegen::ir::Def {
        kind: portico_codegen::ir::DefKind::Struct(s),
        ..
    }) = m.def("GetTaskResult")
    else {
        panic!("GetTaskResult lowers to a struct")
    };
    let names: Vec<&str> = s.fields.iter().map(|f| f.name.as_str()).collect();
    for member in ["_meta", "taskId", "status", "ttl", "createdAt"] {
        assert!(names.contains(&member), "GetTaskResult lacks {member}: {names:?}");
    }
    assert!(
        s.field("ttl").is_some_and(|f| f.required),
        "allOf keeps Task's required members"
    );
}
