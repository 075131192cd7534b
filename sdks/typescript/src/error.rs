//! Client errors as they cross into JavaScript: one JSON reason per error, which the package's
//! `lib/errors.cjs` turns into an `McpError` (the one place each side maps errors).

use portico_core::client::ClientError;
use serde_json::{Value, json};

/// The rejection of a failed call: a napi error whose reason is a JSON object with `kind`,
/// `message` and, for the kinds that have them, `code`, `data`, `method`, `status`, `result`.
pub fn to_js(error: ClientError) -> napi::Error {
    let message = error.to_string();
    let mut body = match &error {
        ClientError::Rpc { method, error } => json!({
            "kind": "rpc", "method": method, "code": error.code, "data": error.data,
            "serverMessage": error.message,
        }),
        ClientError::Timeout { method, after } => {
            json!({"kind": "timeout", "method": method, "timeoutMs": after.as_millis() as u64})
        }
        ClientError::Closed => json!({"kind": "closed"}),
        ClientError::Connect(_) => json!({"kind": "connect"}),
        ClientError::SessionExpired { method } => json!({"kind": "sessionExpired", "method": method}),
        ClientError::Transport { method, status, .. } => {
            json!({"kind": "transport", "method": method, "status": status})
        }
        // A message that is not JSON-RPC at all breaks the protocol too.
        ClientError::Protocol { method, .. } | ClientError::Unreadable { method, .. } => {
            json!({"kind": "protocol", "method": method})
        }
        ClientError::UnsupportedVersion { requested, supported } => {
            json!({"kind": "unsupportedVersion", "requested": requested, "supported": supported})
        }
        ClientError::Unsupported { method, revision } => {
            json!({"kind": "unsupported", "method": method, "revision": revision})
        }
        ClientError::Input { method, key, error } => json!({
            "kind": "input", "method": method, "key": key, "code": error.code, "data": error.data,
        }),
        ClientError::OutputSchema { tool, result, .. } => {
            json!({"kind": "outputSchema", "tool": tool, "result": result})
        }
        ClientError::Encode { method, .. } => json!({"kind": "encode", "method": method}),
        _ => json!({"kind": "other"}),
    };
    body["message"] = Value::String(message);
    reason(body)
}

/// A rejection of the given kind that did not come from the client core.
pub fn other(kind: &str, message: impl Into<String>) -> napi::Error {
    reason(json!({"kind": kind, "message": message.into()}))
}

fn reason(body: Value) -> napi::Error {
    napi::Error::new(napi::Status::GenericFailure, body.to_string())
}
