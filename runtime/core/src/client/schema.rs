//! Tools' `outputSchema`, learned from `tools/list`, and the check of a call's
//! `structuredContent` against it.
//!
//! A tool that declares an `outputSchema` must answer a successful call with `structuredContent`
//! that conforms to it. With the `output-schema` feature (on by default) the content is
//! validated with the `jsonschema` crate (draft 2020-12 unless the schema names another; remote
//! `$ref`s are not fetched); each schema is compiled once, on the tool's first call. A schema
//! that does not compile is not held against the server's results: only the presence of
//! `structuredContent` is checked then, as it is without the feature. Results with `isError`
//! are not checked, and neither are calls of tools the client has not listed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use portico_protocol::v2026_07_28 as wire;
use serde_json::Value;

/// A compiled schema, or `None` when it does not compile.
#[cfg(feature = "output-schema")]
type Compiled = Option<Arc<jsonschema::Validator>>;
#[cfg(not(feature = "output-schema"))]
type Compiled = Option<Arc<()>>;

/// The output schema of one tool.
struct Entry {
    schema: Value,
    compiled: Option<Compiled>,
}

/// What the client knows of its tools' output schemas.
#[derive(Default)]
pub(crate) struct OutputSchemas {
    tools: Mutex<HashMap<String, Entry>>,
}

impl OutputSchemas {
    /// Records the output schemas of listed tools (a tool listed without one forgets it).
    pub(crate) fn learn(&self, tools: &[wire::Tool]) {
        let mut known = self.tools.lock().unwrap_or_else(PoisonError::into_inner);
        for tool in tools {
            match tool.output_schema.as_ref().and_then(|s| serde_json::to_value(s).ok()) {
                Some(schema) => {
                    known.insert(tool.name.clone(), Entry { schema, compiled: None });
                }
                None => {
                    known.remove(&tool.name);
                }
            }
        }
    }

    /// Checks the result of a call of `tool`; the error says what does not match.
    pub(crate) fn check(&self, tool: &str, result: &wire::CallToolResult) -> Result<(), String> {
        if result.is_error == Some(true) {
            return Ok(());
        }
        let compiled = {
            let mut known = self.tools.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(entry) = known.get_mut(tool) else {
                return Ok(());
            };
            entry.compiled.get_or_insert_with(|| compile(&entry.schema)).clone()
        };
        let Some(content) = &result.structured_content else {
            return Err("the tool declares an outputSchema but the result has no structuredContent".into());
        };
        validate(compiled.as_deref(), content)
    }
}

#[cfg(feature = "output-schema")]
fn compile(schema: &Value) -> Compiled {
    jsonschema::validator_for(schema).ok().map(Arc::new)
}

#[cfg(not(feature = "output-schema"))]
fn compile(_schema: &Value) -> Compiled {
    None
}

#[cfg(feature = "output-schema")]
fn validate(validator: Option<&jsonschema::Validator>, content: &Value) -> Result<(), String> {
    let Some(validator) = validator else { return Ok(()) };
    let errors: Vec<String> = validator
        .iter_errors(content)
        .take(5)
        .map(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("{e} (at {at})")
            }
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

#[cfg(not(feature = "output-schema"))]
fn validate(_validator: Option<&()>, _content: &Value) -> Result<(), String> {
    Ok(())
}
