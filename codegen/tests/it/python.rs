//! The Python emitter: golden output of the fixture, every revision rendered, and `mypy
//! --strict` accepting (and rejecting) what it should.

use std::path::{Path, PathBuf};
use std::process::Command;

use expect_test::expect_file;
use portico_codegen::emit::python;

use crate::{environment, fixture, real_modules, repo_root, run, scratch, tool};

/// `mypy --strict` for Python 3.10 over `files`, run in `dir`.
fn mypy(dir: &Path, files: &[PathBuf]) {
    let mut command = Command::new(tool("PORTICO_MYPY", "mypy"));
    command
        .current_dir(dir)
        .args([
            "--strict",
            "--python-version",
            "3.10",
            "--no-error-summary",
            "--cache-dir",
        ])
        .arg(dir.join(".mypy_cache"))
        .args(files);
    run(command);
}

#[test]
fn golden_tiny() {
    let out = python::emit(&environment(), &fixture("tiny.schema.json")).unwrap();
    assert_eq!(out.path, "sdks/python/portico/protocol/vtiny.pyi");
    expect_file!["../golden/tiny.pyi"].assert_eq(&out.contents);
}

#[test]
fn every_revision_renders_and_is_current() {
    crate::assert_stubs_declare_every_def(
        python::emit,
        "#",
        &["class {}(TypedDict):", "{} = TypedDict(", "{}: TypeAlias = "],
    );
}

/// The golden stub type-checks, and means what it should: constants reject other values,
/// required members must be present, `NotRequired` ones may be left out.
#[test]
fn mypy_accepts_golden_and_usage() {
    let dir = scratch("mypy-golden");
    std::fs::copy(repo_root().join("codegen/tests/golden/tiny.pyi"), dir.join("tiny.pyi")).unwrap();
    std::fs::copy(
        repo_root().join("codegen/tests/fixtures/tiny_usage.py"),
        dir.join("tiny_usage.py"),
    )
    .unwrap();
    mypy(&dir, &[dir.join("tiny.pyi"), dir.join("tiny_usage.py")]);
}

#[test]
fn mypy_accepts_every_generated_file() {
    let generated = repo_root().join("sdks/python/portico/protocol");
    let files: Vec<_> = real_modules()
        .iter()
        .map(|m| generated.join(format!("{}.pyi", portico_codegen::emit::revision_module(&m.revision))))
        .inspect(|f| assert!(f.is_file(), "{} is missing: run `cargo xtask generate`", f.display()))
        .collect();
    mypy(&scratch("mypy-generated"), &files);
}
