//! `webhook`: a plugin out of process, in any language, reached over HTTP.
//!
//! ```yaml
//! - name: policy-hook
//!   kind: webhook
//!   url: http://127.0.0.1:9000/hook
//!   headers: {Authorization: "Bearer s3cret"}
//!   hooks: [before, after]
//!   timeout: 2s
//!   on_error: deny
//! ```
//!
//! For each hook (of `hooks`, default both) the gateway POSTs a JSON object to `url`, with the
//! static `headers`:
//!
//! ```json
//! {"hook": "before", "plugin": "policy-hook", "method": "tools/call", "upstream": "files",
//!  "name": "read_file", "clientName": "files__read_file", "arguments": {"path": "/etc/hosts"},
//!  "principal": {"subject": "ada", "roles": ["reader"], "scopes": ["mcp"]}}
//! ```
//!
//! `after` adds `"result"`: the upstream's result (as earlier plugins left it). Fields that do
//! not apply are left out (`name` and `clientName` without a tool or prompt, `uri` without a
//! resource, `arguments` without arguments, `principal` without `auth`). The answer must be
//! `2xx` with a JSON object:
//!
//! ```json
//! {"decision": "continue", "arguments": {"path": "/srv/hosts"}, "annotations": {"checked": true}}
//! {"decision": "deny", "reason": "not on a weekend"}
//! ```
//!
//! - `decision` (required): `continue` or `deny`;
//! - `reason`: why it denies (default "denied by the webhook"), sent to the client;
//! - `arguments` (`before` only): an object that replaces the arguments;
//! - `result` (`after` only): an object that replaces the result;
//! - `annotations`: an object of key/values for the audit record and the result's `_meta`.
//!
//! Other fields are ignored. Anything else — no connection, no answer within the plugin's
//! `timeout` (default 2 s; the request is then dropped), a status other than `2xx`, a body that
//! is not such an object or larger than 16 MiB, `arguments` in an `after` answer — is a failure
//! of the plugin, decided by its `on_error` (default `deny`). Redirects are not followed. The
//! error a client may see does not name the URL.

use std::sync::OnceLock;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Hook, Options, Plugin, PluginError, PluginFuture, PluginRequest, Verdict};
use crate::config::ConfigError;

/// The largest answer read, in bytes.
const MAX_ANSWER_BYTES: usize = 16 << 20;

/// The `webhook` plugin.
#[derive(Debug)]
pub struct Webhook {
    name: String,
    url: reqwest::Url,
    headers: HeaderMap,
    before: bool,
    after: bool,
}

/// What the webhook answers.
#[derive(Deserialize)]
struct Answer {
    decision: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    arguments: Option<Value>,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    annotations: Option<Map<String, Value>>,
}

/// The one HTTP client of every webhook: no redirects, no timeout of its own (the plugin's
/// `timeout` drops the request).
fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        // A reqwest client built with rustls (the `tls` feature) needs the provider first.
        portico_transport::http::tls::install_provider();
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    })
}

impl Webhook {
    /// From its options: `url` (required), `headers`, `hooks`.
    pub fn from_options(options: &mut Options) -> Result<Self, ConfigError> {
        let text: String = options.require("url")?;
        let url = reqwest::Url::parse(&text)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| options.invalid("url", format!("`{text}` is not an http:// or https:// URL")))?;
        let mut headers = HeaderMap::new();
        let given: std::collections::BTreeMap<String, String> = options.take("headers")?.unwrap_or_default();
        for (name, value) in given {
            let header = HeaderName::from_bytes(name.as_bytes())
                .ok()
                .zip(HeaderValue::from_str(&value).ok())
                .ok_or_else(|| {
                    options.invalid(&format!("headers.{name}"), "is not a valid HTTP header name and value")
                })?;
            headers.insert(header.0, header.1);
        }
        let hooks: Vec<String> = options
            .take("hooks")?
            .unwrap_or_else(|| vec!["before".into(), "after".into()]);
        let mut before = false;
        let mut after = false;
        for (i, hook) in hooks.iter().enumerate() {
            match hook.as_str() {
                "before" => before = true,
                "after" => after = true,
                other => {
                    return Err(options.invalid(
                        &format!("hooks[{i}]"),
                        format!("`{other}` is not a hook: `before` or `after`"),
                    ));
                }
            }
        }
        if !before && !after {
            return Err(options.invalid("hooks", "must name `before`, `after` or both"));
        }
        Ok(Self {
            name: options.name().to_string(),
            url,
            headers,
            before,
            after,
        })
    }

    /// POSTs `body` and reads the answer.
    async fn ask(&self, body: Value) -> Result<Answer, PluginError> {
        let failed =
            |what: &str, error: reqwest::Error| PluginError::new(format!("{what}: {}", chain(&error.without_url())));
        let mut response = client()
            .post(self.url.clone())
            .headers(self.headers.clone())
            .json(&body)
            .send()
            .await
            .map_err(|e| failed("the webhook could not be reached", e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(PluginError::new(format!(
                "the webhook answered HTTP {}",
                status.as_u16()
            )));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| failed("the webhook's answer could not be read", e))?
        {
            if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(PluginError::new(format!(
                    "the webhook's answer is larger than {MAX_ANSWER_BYTES} bytes"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        let answer: Answer = serde_json::from_slice(&bytes)
            .map_err(|e| PluginError::new(format!("the webhook's answer is not a decision: {e}")))?;
        Ok(answer)
    }

    /// The verdict of `answer` to `hook`; its replacement `arguments` or `result`, if any.
    fn verdict(answer: Answer, hook: Hook) -> Result<(Verdict, Option<Map<String, Value>>), PluginError> {
        let (replacement, misplaced) = match hook {
            Hook::Before => (answer.arguments, answer.result.map(|_| "result")),
            Hook::After => (answer.result, answer.arguments.map(|_| "arguments")),
        };
        if let Some(field) = misplaced {
            return Err(PluginError::new(format!(
                "the webhook answered `{field}` to a `{}` hook",
                hook.as_str()
            )));
        }
        let replacement = match replacement {
            None => None,
            Some(Value::Object(object)) => Some(object),
            Some(_) => {
                let field = if hook == Hook::Before { "arguments" } else { "result" };
                return Err(PluginError::new(format!("the webhook's `{field}` is not an object")));
            }
        };
        let mut verdict = match answer.decision.as_str() {
            "continue" => Verdict::proceed(),
            "deny" => Verdict::deny(answer.reason.unwrap_or_else(|| "denied by the webhook".into())),
            other => {
                return Err(PluginError::new(format!(
                    "the webhook's decision `{other}` is neither `continue` nor `deny`"
                )));
            }
        };
        verdict.annotations = answer.annotations.unwrap_or_default();
        Ok((verdict, replacement))
    }

    fn body(&self, hook: Hook, request: &PluginRequest, result: Option<&Value>) -> Value {
        let mut body = Map::new();
        body.insert("hook".into(), hook.as_str().into());
        body.insert("plugin".into(), self.name.clone().into());
        if let Value::Object(fields) = request.to_json() {
            body.extend(fields);
        }
        if let Some(result) = result {
            body.insert("result".into(), result.clone());
        }
        Value::Object(body)
    }
}

/// An error and its sources, one after the other.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

impl Plugin for Webhook {
    fn hooks(&self) -> &[Hook] {
        match (self.before, self.after) {
            (true, true) => &[Hook::Before, Hook::After],
            (true, false) => &[Hook::Before],
            _ => &[Hook::After],
        }
    }

    fn before<'a>(&'a self, request: &'a mut PluginRequest) -> PluginFuture<'a, Verdict> {
        Box::pin(async move {
            if !self.before {
                return Ok(Verdict::proceed());
            }
            let answer = self.ask(self.body(Hook::Before, request, None)).await?;
            let (verdict, arguments) = Self::verdict(answer, Hook::Before)?;
            if let Some(arguments) = arguments
                && verdict.denied().is_none()
            {
                *request.arguments_mut() = Some(arguments);
            }
            Ok(verdict)
        })
    }

    fn after<'a>(&'a self, request: &'a PluginRequest, result: &'a mut Value) -> PluginFuture<'a, Verdict> {
        Box::pin(async move {
            if !self.after {
                return Ok(Verdict::proceed());
            }
            let answer = self.ask(self.body(Hook::After, request, Some(result))).await?;
            let (verdict, replacement) = Self::verdict(answer, Hook::After)?;
            if let Some(replacement) = replacement
                && verdict.denied().is_none()
            {
                *result = Value::Object(replacement);
            }
            Ok(verdict)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    fn plugin(options: Value) -> Result<Webhook, ConfigError> {
        let values: BTreeMap<String, Value> = serde_json::from_value(options).expect("options");
        Webhook::from_options(&mut Options::new("plugins[1]", "w", "webhook", values))
    }

    fn answer(value: Value) -> Answer {
        serde_json::from_value(value).expect("an answer")
    }

    #[test]
    fn answers_are_read_strictly() {
        let (verdict, arguments) = Webhook::verdict(
            answer(json!({"decision": "continue", "arguments": {"a": 1}, "annotations": {"k": "v"}, "extra": 1})),
            Hook::Before,
        )
        .expect("a verdict");
        assert_eq!(verdict.denied(), None);
        assert_eq!(verdict.annotations()["k"], "v");
        assert_eq!(arguments, Some(json!({"a": 1}).as_object().cloned().expect("object")));
        let (denied, _) = Webhook::verdict(answer(json!({"decision": "deny"})), Hook::After).expect("a verdict");
        assert_eq!(denied.denied(), Some("denied by the webhook"));
        for (wrong, hook) in [
            (json!({"decision": "maybe"}), Hook::Before),
            (json!({"decision": "continue", "arguments": [1]}), Hook::Before),
            (json!({"decision": "continue", "arguments": {}}), Hook::After),
            (json!({"decision": "continue", "result": {}}), Hook::Before),
        ] {
            assert!(Webhook::verdict(answer(wrong.clone()), hook).is_err(), "{wrong}");
        }
        assert!(
            serde_json::from_value::<Answer>(json!({"reason": "x"})).is_err(),
            "decision is required"
        );
    }

    #[test]
    fn options_are_checked() {
        let error = |options| plugin(options).expect_err("refused").to_string();
        assert!(error(json!({})).starts_with("plugins[1].url: is required"));
        assert!(error(json!({"url": "ftp://x"})).starts_with("plugins[1].url: `ftp://x` is not"));
        assert!(
            error(json!({"url": "http://x", "headers": {"bad name": "v"}})).starts_with("plugins[1].headers.bad name:")
        );
        assert!(error(json!({"url": "http://x", "hooks": ["during"]})).starts_with("plugins[1].hooks[0]:"));
        assert!(error(json!({"url": "http://x", "hooks": []})).starts_with("plugins[1].hooks:"));
        let hook = plugin(json!({"url": "https://hooks.example/x", "hooks": ["after"], "headers": {"X-Key": "k"}}))
            .expect("plugin");
        assert!(!hook.before && hook.after);
    }

    #[tokio::test]
    async fn a_webhook_that_is_not_there_is_a_failure_without_its_url() {
        // A port bound and let go: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a port")
            .port();
        let hook = plugin(json!({"url": format!("http://127.0.0.1:{port}/hook")})).expect("plugin");
        let mut request = PluginRequest::new("tools/call", "u").with_name("t");
        let error = hook.before(&mut request).await.expect_err("a failure");
        let text = error.to_string();
        assert!(text.starts_with("the webhook could not be reached"), "{text}");
        assert!(!text.contains(&port.to_string()), "the URL is not told: {text}");
    }
}
