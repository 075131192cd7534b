//! The configuration examples of the README and `docs/configuration.md` are valid files.

use portico_gateway::config::Config;

/// The fenced blocks of `lang` in the repository file `path`.
fn blocks(path: &str, lang: &str) -> Vec<String> {
    // Read at run time: a test binary reused from another checkout must read this one's files.
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
    let text = std::fs::read_to_string(format!("{root}/../../{path}")).unwrap_or_else(|e| panic!("{path}: {e}"));
    let fence = format!("```{lang}\n");
    text.split(fence.as_str())
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn every_configuration_example_is_a_valid_file() {
    let mut read = 0;
    for path in ["README.md", "docs/configuration.md"] {
        for (lang, toml) in [("yaml", false), ("toml", true)] {
            for block in blocks(path, lang) {
                let block = with_set_variables(&block);
                if let Err(e) = Config::parse(&block, toml) {
                    panic!("{path}: a {lang} example does not read: {e}\n{block}");
                }
                read += 1;
            }
        }
    }
    assert!(read >= 3, "the examples were found ({read})");
}

/// The examples name environment variables (`client_secret_env: CRM_CLIENT_SECRET`) that this
/// process has not set, and cannot (edition 2024 makes `set_var` unsafe, which the crate
/// forbids): they are read as `PATH`, which every test run has.
fn with_set_variables(block: &str) -> String {
    block
        .lines()
        .map(|line| match line.split_once("client_secret_env: ") {
            Some((before, after)) => {
                let rest = after.trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '_');
                format!("{before}client_secret_env: PATH{rest}")
            }
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}
