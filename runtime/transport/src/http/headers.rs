//! The MCP request headers: what they are called, how their values are read, and the 2026-07-28
//! rule that headers mirroring the body (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`) match it.

use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use base64::Engine;
use portico_core::ErrorObject;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;
use serde_json::value::RawValue;

use super::error::HttpError;

/// `Mcp-Session-Id`: the session a 2025-x request belongs to.
pub const MCP_SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
/// `MCP-Protocol-Version`: the revision the client speaks.
pub const MCP_PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
/// `Mcp-Method`: the request's method, mirrored from the body (2026-07-28).
pub const MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
/// `Mcp-Name`: the `params.name` or `params.uri` of the request, mirrored (2026-07-28).
pub const MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");
/// `Last-Event-ID`: where a client would resume an SSE stream (not supported yet: ignored).
pub const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// `-32020` of 2026-07-28: the HTTP headers do not match the body, or a required one is missing.
pub const HEADER_MISMATCH: i64 = -32020;

/// The value of a header that may appear once, as text.
pub(crate) fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a str>, HttpError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(HttpError::client(
            StatusCode::BAD_REQUEST,
            format!("the `{name}` header appears more than once"),
        ));
    }
    value.to_str().map(Some).map_err(|_| {
        HttpError::client(
            StatusCode::BAD_REQUEST,
            format!("the `{name}` header is not visible ASCII"),
        )
    })
}

/// The `MCP-Protocol-Version` header, if present; `400` with `-32022` when it names a version not
/// in `supported`.
pub(crate) fn protocol_version<'a>(headers: &'a HeaderMap, supported: &[String]) -> Result<Option<&'a str>, HttpError> {
    let Some(version) = single(headers, &MCP_PROTOCOL_VERSION)? else {
        return Ok(None);
    };
    check_version(version, supported)?;
    Ok(Some(version))
}

/// `400` with `-32022` (UnsupportedProtocolVersionError) unless `version` is supported.
pub(crate) fn check_version(version: &str, supported: &[String]) -> Result<(), HttpError> {
    if supported.iter().any(|v| v == version) {
        return Ok(());
    }
    Err(HttpError::new(
        StatusCode::BAD_REQUEST,
        ErrorObject::new(
            portico_core::server::UNSUPPORTED_PROTOCOL_VERSION,
            format!("unsupported protocol version {version:?}"),
        )
        .with_data(serde_json::json!({"requested": version, "supported": supported})),
    ))
}

/// Whether `version` is a revision without sessions (2026-07-28 and later): not one negotiated
/// by `initialize`.
pub(crate) fn is_stateless(version: &str) -> bool {
    !portico_core::server::STATEFUL_REVISIONS.contains(&version)
}

/// The `Mcp-Session-Id` header, if present. Session ids are visible ASCII (0x21–0x7E).
pub(crate) fn session_id(headers: &HeaderMap) -> Result<Option<&str>, HttpError> {
    let id = single(headers, &MCP_SESSION_ID)?;
    if let Some(id) = id
        && (id.is_empty() || !id.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(HttpError::client(
            StatusCode::BAD_REQUEST,
            "`Mcp-Session-Id` must be visible ASCII",
        ));
    }
    Ok(id)
}

/// Which answer formats the client's `Accept` header allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Accept {
    /// `application/json`.
    pub(crate) json: bool,
    /// `text/event-stream`.
    pub(crate) sse: bool,
}

impl Accept {
    /// Reads `Accept`; without one, both formats are allowed. Media ranges with `q=0` are refused.
    pub(crate) fn of(headers: &HeaderMap) -> Self {
        let mut values = headers.get_all(header::ACCEPT).iter().peekable();
        if values.peek().is_none() {
            return Self { json: true, sse: true };
        }
        let mut accept = Self {
            json: false,
            sse: false,
        };
        for range in values.filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')) {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default().to_ascii_lowercase();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            if refused {
                continue;
            }
            match media.as_str() {
                "*/*" => (accept.json, accept.sse) = (true, true),
                "application/*" | "application/json" => accept.json = true,
                "text/*" | "text/event-stream" => accept.sse = true,
                _ => {}
            }
        }
        accept
    }
}

/// `415` unless the body is declared JSON (a missing `Content-Type` is let through).
pub(crate) fn check_content_type(headers: &HeaderMap) -> Result<(), HttpError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let media = value
        .to_str()
        .ok()
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    if media.as_deref() == Some("application/json") {
        return Ok(());
    }
    Err(HttpError::client(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "the body of a POST must be a JSON-RPC message with `Content-Type: application/json`",
    ))
}

/// What the transport reads from a request's `params` besides the envelope.
#[derive(Debug, Default)]
pub(crate) struct Peek {
    /// `_meta["io.modelcontextprotocol/protocolVersion"]`: present only in 2026-07-28 requests.
    pub(crate) version: Option<String>,
    /// Whether `_meta.progressToken` is present.
    pub(crate) progress: bool,
    /// `params.name` (`tools/call`, `prompts/get`), if present.
    pub(crate) name: Option<Value>,
    /// `params.uri` (`resources/read`), if present.
    pub(crate) uri: Option<Value>,
}

impl Peek {
    /// Reads the members the transport needs; params that are not an object peek as empty (the
    /// service then answers `-32602`).
    pub(crate) fn of(params: Option<&RawValue>) -> Self {
        #[derive(Deserialize)]
        struct Params {
            #[serde(rename = "_meta")]
            meta: Option<Meta>,
            name: Option<Value>,
            uri: Option<Value>,
        }
        #[derive(Deserialize)]
        struct Meta {
            #[serde(rename = "io.modelcontextprotocol/protocolVersion")]
            version: Option<Value>,
            #[serde(rename = "progressToken")]
            progress_token: Option<IgnoredAny>,
        }
        let Some(Ok(params)) = params.map(|p| serde_json::from_str::<Params>(p.get())) else {
            return Self::default();
        };
        let meta = params.meta;
        Self {
            // A version that is not a string is left to the service to reject.
            version: meta
                .as_ref()
                .and_then(|m| m.version.as_ref())
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string)),
            progress: meta.is_some_and(|m| m.progress_token.is_some()),
            name: params.name,
            uri: params.uri,
        }
    }
}

/// Checks the headers that mirror a 2026-07-28 request's body: `MCP-Protocol-Version` against
/// `_meta`'s version, `Mcp-Method` against `method`, `Mcp-Name` against `params.name`
/// (`tools/call`, `prompts/get`) or `params.uri` (`resources/read`), after undoing the Base64
/// sentinel encoding. With `required`, a missing header is a mismatch too. The error is `-32020`.
pub(crate) fn check_mirrored(headers: &HeaderMap, required: bool, method: &str, peek: &Peek) -> Result<(), HttpError> {
    let mismatch =
        |message: String| HttpError::new(StatusCode::BAD_REQUEST, ErrorObject::new(HEADER_MISMATCH, message));
    let body_version = peek.version.as_deref().unwrap_or_default();
    match single(headers, &MCP_PROTOCOL_VERSION)? {
        Some(v) if v != body_version => {
            return Err(mismatch(format!(
                "Header mismatch: MCP-Protocol-Version header value {v:?} does not match body value {body_version:?}"
            )));
        }
        None if required => {
            return Err(mismatch(
                "Header mismatch: the required MCP-Protocol-Version header is missing".into(),
            ));
        }
        _ => {}
    }
    match single(headers, &MCP_METHOD)? {
        Some(m) if m != method => {
            return Err(mismatch(format!(
                "Header mismatch: Mcp-Method header value {m:?} does not match body value {method:?}"
            )));
        }
        None if required => {
            return Err(mismatch(
                "Header mismatch: the required Mcp-Method header is missing".into(),
            ));
        }
        _ => {}
    }
    let (source, body_name) = match method {
        "tools/call" | "prompts/get" => ("params.name", peek.name.as_ref()),
        "resources/read" => ("params.uri", peek.uri.as_ref()),
        // Other methods have no name to mirror; a stray `Mcp-Name` is ignored.
        _ => return Ok(()),
    };
    // A name that is not a string is the service's to reject (-32602); it cannot be mirrored.
    let body_name = body_name.and_then(Value::as_str);
    match (single(headers, &MCP_NAME)?, body_name) {
        (Some(raw), Some(body)) => {
            let header = decode_value(raw).map_err(|e| mismatch(format!("Header mismatch: Mcp-Name: {e}")))?;
            if header != body {
                return Err(mismatch(format!(
                    "Header mismatch: Mcp-Name header value {header:?} does not match body value {body:?}"
                )));
            }
        }
        (Some(raw), None) => {
            return Err(mismatch(format!(
                "Header mismatch: Mcp-Name header value {raw:?} but the body has no {source}"
            )));
        }
        (None, Some(_)) if required => {
            return Err(mismatch(format!(
                "Header mismatch: the required Mcp-Name header (from {source}) is missing"
            )));
        }
        _ => {}
    }
    Ok(())
}

/// Undoes the Base64 sentinel encoding of `Mcp-Name` and `Mcp-Param-*` values:
/// `=?base64?{Base64 of the UTF-8 text}?=` (markers lower-case, exactly); other values are plain.
pub(crate) fn decode_value(raw: &str) -> Result<std::borrow::Cow<'_, str>, String> {
    let Some(encoded) = raw.strip_prefix("=?base64?").and_then(|rest| rest.strip_suffix("?=")) else {
        return Ok(raw.into());
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| format!("invalid Base64 in {raw:?}: {e}"))?;
    String::from_utf8(bytes)
        .map(Into::into)
        .map_err(|_| format!("the Base64 value {raw:?} is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn sentinel_values_decode() {
        assert_eq!(decode_value("us-west1").expect("plain"), "us-west1");
        assert_eq!(
            decode_value("=?base64?SGVsbG8sIOS4lueVjA==?=").expect("utf-8"),
            "Hello, 世界"
        );
        assert_eq!(decode_value("=?base64?IHBhZGRlZCA=?=").expect("spaces"), " padded ");
        assert_eq!(
            decode_value("=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=").expect("literal"),
            "=?base64?literal?="
        );
        assert!(decode_value("=?base64?not base64!?=").is_err());
        assert!(decode_value("=?base64?/w==?=").is_err(), "0xFF is not UTF-8");
        // Upper-case markers are not the sentinel: the value is plain.
        assert_eq!(decode_value("=?BASE64?SGk=?=").expect("plain"), "=?BASE64?SGk=?=");
    }

    #[test]
    fn accept_ranges() {
        let of = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_str(v).expect("value"));
            Accept::of(&h)
        };
        assert_eq!(Accept::of(&HeaderMap::new()), Accept { json: true, sse: true });
        assert_eq!(
            of("application/json, text/event-stream"),
            Accept { json: true, sse: true }
        );
        assert_eq!(of("application/json"), Accept { json: true, sse: false });
        assert_eq!(of("text/event-stream;q=0.9"), Accept { json: false, sse: true });
        assert_eq!(of("*/*"), Accept { json: true, sse: true });
        assert_eq!(
            of("text/html, application/json;q=0"),
            Accept {
                json: false,
                sse: false
            }
        );
    }
}
