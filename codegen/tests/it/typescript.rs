//! The TypeScript emitter: golden output of the fixture, every revision rendered, and `tsc`
//! accepting (and rejecting) what it should.

use std::path::{Path, PathBuf};
use std::process::Command;

use expect_test::expect_file;
use portico_codegen::emit::typescript;

use crate::{environment, fixture, real_modules, repo_root, run, scratch, tool};

/// `tsc --noEmit --strict` over `files`, run in `dir` (so no stray `node_modules/@types` joins in).
fn tsc(dir: &Path, files: &[PathBuf]) {
    let mut command = Command::new(tool("PORTICO_TSC", "tsc"));
    command
        .current_dir(dir)
        .args(["--noEmit", "--strict", "--target", "es2022"])
        .args(files);
    run(command);
}

#[test]
fn golden_tiny() {
    let out = typescript::emit(&environment(), &fixture("tiny.schema.json")).unwrap();
    assert_eq!(out.path, "sdks/typescript/src/generated/mcp-tiny.d.ts");
    expect_file!["../golden/tiny.d.ts"].assert_eq(&out.contents);
}

#[test]
fn every_revision_renders_and_is_current() {
    crate::assert_stubs_declare_every_def(typescript::emit, "//", &["export interface {} {", "export type {} ="]);
}

/// The golden declarations type-check, and mean what they should: tags narrow unions,
/// constants reject other values, optional members may be left out.
#[test]
fn tsc_accepts_golden_and_usage() {
    let dir = scratch("tsc-golden");
    let golden = repo_root().join("codegen/tests/golden/tiny.d.ts");
    std::fs::copy(&golden, dir.join("tiny.d.ts")).unwrap();
    let usage = dir.join("usage.ts");
    std::fs::copy(repo_root().join("codegen/tests/fixtures/tiny.usage.ts"), &usage).unwrap();
    tsc(&dir, &[dir.join("tiny.d.ts"), usage]);
}

#[test]
fn tsc_accepts_every_generated_file() {
    let generated = repo_root().join("sdks/typescript/src/generated");
    let files: Vec<_> = real_modules()
        .iter()
        .map(|m| generated.join(format!("mcp-{}.d.ts", m.revision)))
        .inspect(|f| assert!(f.is_file(), "{} is missing: run `cargo xtask generate`", f.display()))
        .collect();
    tsc(&scratch("tsc-generated"), &files);
}
