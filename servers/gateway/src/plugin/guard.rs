//! `guard`: refuses requests whose arguments are too large or, for tool calls, do not match the
//! tool's `inputSchema`, before any upstream is asked.
//!
//! ```yaml
//! - name: arguments
//!   kind: guard
//!   max_argument_bytes: 65536
//!   schema: true
//! ```
//!
//! - `max_argument_bytes`: the largest `arguments` accepted, measured as their JSON (compact,
//!   as the upstream gets them). Applies to every request with arguments (`tools/call`,
//!   `prompts/get`).
//! - `schema: true`: a `tools/call`'s arguments (none counting as `{}`) must be valid against
//!   the `inputSchema` the upstream lists for the tool, checked strictly with the `jsonschema`
//!   crate (every draft it knows; `additionalProperties`, `required`, formats as annotations).
//!   The refusal names the first few errors and where they are. A tool the upstream does not
//!   list (it is down) is let through: its call fails as unavailable anyway. A schema that does
//!   not compile is a failure of the plugin (`on_error` decides).
//!
//! At least one of them is required. Validators are compiled once per tool and kept while the
//! upstream's tool list stays the same.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use serde_json::Value;

use super::{Hook, Options, Plugin, PluginError, PluginFuture, PluginRequest, Verdict};
use crate::config::ConfigError;
use crate::upstream::Snapshot;

/// Compiled validators kept at most (per guard); past it, the cache starts over.
const MAX_VALIDATORS: usize = 1024;

/// A tool's compiled schema, and the list it came from.
type Cached = (Weak<Snapshot>, Result<Arc<jsonschema::Validator>, String>);

/// The `guard` plugin.
pub struct Guard {
    max_argument_bytes: Option<usize>,
    schema: bool,
    /// (upstream, tool) → its validator, for the snapshot it was compiled from.
    validators: Mutex<HashMap<(String, String), Cached>>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("max_argument_bytes", &self.max_argument_bytes)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl Guard {
    /// From its options: `max_argument_bytes` and `schema` (at least one).
    pub fn from_options(options: &mut Options) -> Result<Self, ConfigError> {
        let max_argument_bytes: Option<usize> = options.take("max_argument_bytes")?;
        let schema = options.take("schema")?.unwrap_or(false);
        if max_argument_bytes == Some(0) {
            return Err(options.invalid("max_argument_bytes", "must be at least 1"));
        }
        if max_argument_bytes.is_none() && !schema {
            return Err(options.invalid(
                "max_argument_bytes",
                "a `guard` plugin needs `max_argument_bytes`, `schema: true` or both",
            ));
        }
        Ok(Self {
            max_argument_bytes,
            schema,
            validators: Mutex::default(),
        })
    }

    fn check(&self, request: &PluginRequest) -> Result<Verdict, PluginError> {
        if let (Some(max), Some(arguments)) = (self.max_argument_bytes, request.arguments()) {
            let bytes = json_len(arguments);
            if bytes > max {
                return Ok(Verdict::deny(format!(
                    "the arguments are {bytes} bytes of JSON; at most {max} are accepted"
                ))
                .with_annotation("argument_bytes", bytes));
            }
        }
        if !self.schema || request.method() != "tools/call" {
            return Ok(Verdict::proceed());
        }
        let Some(tool) = request.tool() else {
            return Ok(Verdict::proceed());
        };
        let validator = self.validator(request, tool)?;
        let empty = serde_json::Map::new();
        let arguments = Value::Object(request.arguments().unwrap_or(&empty).clone());
        let errors: Vec<String> = validator
            .iter_errors(&arguments)
            .take(3)
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
            Ok(Verdict::proceed())
        } else {
            Ok(Verdict::deny(format!(
                "the arguments do not match the tool's inputSchema: {}",
                errors.join("; ")
            )))
        }
    }

    /// The tool's validator: compiled once for each list of the upstream's.
    fn validator(
        &self,
        request: &PluginRequest,
        tool: &portico_protocol::v2026_07_28::Tool,
    ) -> Result<Arc<jsonschema::Validator>, PluginError> {
        let key = (request.upstream().to_string(), tool.name.clone());
        let mut validators = self.validators.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((list, compiled)) = validators.get(&key)
            && Weak::ptr_eq(list, &Arc::downgrade(&request.snapshot))
        {
            return compiled.clone().map_err(PluginError::new);
        }
        let compiled = serde_json::to_value(&tool.input_schema)
            .map_err(|e| e.to_string())
            .and_then(|schema| jsonschema::validator_for(&schema).map_err(|e| e.to_string()))
            .map(Arc::new)
            .map_err(|e| format!("the inputSchema of `{}` does not compile: {e}", tool.name));
        if validators.len() >= MAX_VALIDATORS {
            validators.clear();
        }
        validators.insert(key, (Arc::downgrade(&request.snapshot), compiled.clone()));
        compiled.map_err(PluginError::new)
    }
}

impl Plugin for Guard {
    fn hooks(&self) -> &[Hook] {
        &[Hook::Before]
    }

    fn before<'a>(&'a self, request: &'a mut PluginRequest) -> PluginFuture<'a, Verdict> {
        let verdict = self.check(request);
        Box::pin(async move { verdict })
    }
}

/// The length of `value`'s compact JSON, without writing it out.
fn json_len(value: &serde_json::Map<String, Value>) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing to a counter does not fail; a map of JSON values always serializes.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use portico_protocol::v2026_07_28 as wire;
    use serde_json::json;

    use super::*;

    fn plugin(options: Value) -> Result<Guard, ConfigError> {
        let values: BTreeMap<String, Value> = serde_json::from_value(options).expect("options");
        Guard::from_options(&mut Options::new("plugins[3]", "g", "guard", values))
    }

    fn arguments(value: Value) -> serde_json::Map<String, Value> {
        value.as_object().cloned().expect("an object")
    }

    #[tokio::test]
    async fn oversized_arguments_are_refused() {
        let guard = plugin(json!({"max_argument_bytes": 20})).expect("plugin");
        let mut small = PluginRequest::new("tools/call", "u")
            .with_name("t")
            .with_arguments(arguments(json!({"m": "1234567890"})));
        assert_eq!(guard.before(&mut small).await.expect("verdict").denied(), None);
        let mut large = PluginRequest::new("prompts/get", "u")
            .with_name("p")
            .with_arguments(arguments(json!({"m": "12345678901234567890"})));
        let verdict = guard.before(&mut large).await.expect("verdict");
        assert_eq!(
            verdict.denied(),
            Some("the arguments are 28 bytes of JSON; at most 20 are accepted")
        );
        assert_eq!(verdict.annotations()["argument_bytes"], 28);
        assert_eq!(
            json_len(&arguments(json!({"m": "12345678901234567890"}))),
            r#"{"m":"12345678901234567890"}"#.len()
        );
    }

    #[tokio::test]
    async fn arguments_are_checked_against_the_tool_schema() {
        let guard = plugin(json!({"schema": true})).expect("plugin");
        let tool: wire::Tool = serde_json::from_value(json!({
            "name": "echo",
            "inputSchema": {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"], "additionalProperties": false}
        }))
        .expect("a tool");
        let request = |args: Value| {
            PluginRequest::new("tools/call", "u")
                .with_name("echo")
                .with_tools(vec![tool.clone()])
                .with_arguments(arguments(args))
        };
        let ok = guard
            .before(&mut request(json!({"message": "hi"})))
            .await
            .expect("verdict");
        assert_eq!(ok.denied(), None);
        let wrong = guard
            .before(&mut request(json!({"message": 5})))
            .await
            .expect("verdict");
        let reason = wrong.denied().expect("denied");
        assert!(
            reason.contains("inputSchema") && reason.contains("/message"),
            "{reason}"
        );
        let extra = guard
            .before(&mut request(json!({"message": "hi", "more": 1})))
            .await
            .expect("verdict");
        assert!(extra.denied().is_some());
        let mut none = PluginRequest::new("tools/call", "u")
            .with_name("echo")
            .with_tools(vec![tool.clone()]);
        assert!(
            guard.before(&mut none).await.expect("verdict").denied().is_some(),
            "no arguments are `{{}}`, which lacks `message`"
        );
        let mut unknown = PluginRequest::new("tools/call", "u").with_name("other");
        assert_eq!(guard.before(&mut unknown).await.expect("verdict").denied(), None);
    }

    #[test]
    fn options_are_checked() {
        let error = |options| plugin(options).expect_err("refused").to_string();
        assert!(error(json!({})).starts_with("plugins[3].max_argument_bytes: a `guard` plugin needs"));
        assert!(error(json!({"max_argument_bytes": 0})).starts_with("plugins[3].max_argument_bytes: must be"));
        assert!(error(json!({"schema": "yes"})).starts_with("plugins[3].schema: invalid type"));
    }
}
