//! The MCP request headers: what they are called, how their values are read, and the 2026-07-28
//! rule that headers mirroring the body (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`) match it.

use std::borrow::Cow;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use portico_core::ErrorObject;
use portico_core::message;
use portico_core::mirror::MirroredParam;
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
/// `Last-Event-ID`: the last SSE event a client saw; a GET carrying it resumes that stream.
pub const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

pub use portico_core::mirror::HEADER_MISMATCH;

/// A request's MCP headers (`Mcp-Session-Id`, `MCP-Protocol-Version`, `Mcp-Method`,
/// `Mcp-Name`, `Mcp-Param-*`), found in one pass over its headers rather than looked up one by
/// one. Each of the first four may appear once: what [`single`] answers for it is answered
/// here, errors included, when it is asked for.
pub(crate) struct McpHeaders<'a> {
    session_id: Seen<'a>,
    protocol_version: Seen<'a>,
    method: Seen<'a>,
    name: Seen<'a>,
    /// The `Mcp-Param-{Name}` headers, in the order sent.
    pub(crate) params: Vec<MirroredParam<'a>>,
}

/// How often a header that may appear once was seen, and its (first) value.
#[derive(Clone, Copy)]
enum Seen<'a> {
    Absent,
    Once(&'a HeaderValue),
    Repeated,
}

impl<'a> Seen<'a> {
    fn add(&mut self, value: &'a HeaderValue) {
        *self = match self {
            Self::Absent => Self::Once(value),
            _ => Self::Repeated,
        };
    }

    /// As [`single`] answers for `name`.
    fn single(self, name: &HeaderName) -> Result<Option<&'a str>, HttpError> {
        match self {
            Self::Absent => Ok(None),
            Self::Once(value) => value.to_str().map(Some).map_err(|_| not_visible(name)),
            Self::Repeated => Err(repeated(name)),
        }
    }
}

impl<'a> McpHeaders<'a> {
    pub(crate) fn of(headers: &'a HeaderMap) -> Self {
        let mut found = Self {
            session_id: Seen::Absent,
            protocol_version: Seen::Absent,
            method: Seen::Absent,
            name: Seen::Absent,
            params: Vec::new(),
        };
        for (name, value) in headers {
            // Header names are stored lower-case.
            let Some(rest) = name.as_str().strip_prefix("mcp-") else {
                continue;
            };
            match rest {
                "session-id" => found.session_id.add(value),
                "protocol-version" => found.protocol_version.add(value),
                "method" => found.method.add(value),
                "name" => found.name.add(value),
                _ => {
                    if let Some(param) = rest.strip_prefix("param-") {
                        found.params.push(MirroredParam {
                            name: param,
                            value: value.to_str().ok(),
                        });
                    }
                }
            }
        }
        found
    }

    /// `Mcp-Session-Id`, if present. Session ids are visible ASCII (0x21–0x7E).
    pub(crate) fn session_id(&self) -> Result<Option<&'a str>, HttpError> {
        let id = self.session_id.single(&MCP_SESSION_ID)?;
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

    /// `MCP-Protocol-Version`, as [`single`] reads it.
    pub(crate) fn protocol_version(&self) -> Result<Option<&'a str>, HttpError> {
        self.protocol_version.single(&MCP_PROTOCOL_VERSION)
    }
}

fn repeated(name: &HeaderName) -> HttpError {
    HttpError::client(
        StatusCode::BAD_REQUEST,
        format!("the `{name}` header appears more than once"),
    )
}

fn not_visible(name: &HeaderName) -> HttpError {
    HttpError::client(
        StatusCode::BAD_REQUEST,
        format!("the `{name}` header is not visible ASCII"),
    )
}

/// The value of a header that may appear once, as text.
pub(crate) fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a str>, HttpError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(repeated(name));
    }
    value.to_str().map(Some).map_err(|_| not_visible(name))
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
        // What MCP clients send on every POST, recognized without taking it apart.
        let common = |v: &&HeaderValue| {
            v.as_bytes() == b"application/json, text/event-stream"
                || v.as_bytes() == b"text/event-stream, application/json"
        };
        if values.next_if(common).is_some() {
            (accept.json, accept.sse) = (true, true);
        }
        for range in values.filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')) {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            if refused {
                continue;
            }
            // Media types are case-insensitive; compared without lower-casing a copy.
            let is = |name: &str| media.eq_ignore_ascii_case(name);
            if is("*/*") {
                (accept.json, accept.sse) = (true, true);
            } else if is("application/*") || is("application/json") {
                accept.json = true;
            } else if is("text/*") || is("text/event-stream") {
                accept.sse = true;
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
    // What clients send, told at once.
    if value.as_bytes() == b"application/json" {
        return Ok(());
    }
    let media = value.to_str().ok().and_then(|v| v.split(';').next()).map(str::trim);
    if media.is_some_and(|m| m.eq_ignore_ascii_case("application/json")) {
        return Ok(());
    }
    Err(HttpError::client(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "the body of a POST must be a JSON-RPC message with `Content-Type: application/json`",
    ))
}

/// What the transport reads from a request's `params` besides the envelope, borrowed from them.
#[derive(Debug, Default)]
pub(crate) struct Peek<'a> {
    /// `_meta["io.modelcontextprotocol/protocolVersion"]`: present only in 2026-07-28 requests.
    pub(crate) version: Option<Cow<'a, str>>,
    /// Whether `_meta.progressToken` is present.
    pub(crate) progress: bool,
    /// Whether `_meta["io.modelcontextprotocol/clientCapabilities"]` is present.
    pub(crate) capabilities: bool,
    /// `params.name` (`tools/call`, `prompts/get`), if present, as sent (its JSON text).
    pub(crate) name: Option<&'a str>,
    /// `params.uri` (`resources/read`), if present, as sent.
    pub(crate) uri: Option<&'a str>,
    /// `params.taskId` (`tasks/get`, `tasks/update`, `tasks/cancel` of the tasks extension), if
    /// present, as sent.
    pub(crate) task_id: Option<&'a str>,
}

impl<'a> Peek<'a> {
    /// Reads the members the transport needs; params that are not an object peek as empty (the
    /// service then answers `-32602`).
    pub(crate) fn of(params: Option<&'a RawValue>) -> Self {
        #[derive(Deserialize)]
        struct Params<'a> {
            #[serde(rename = "_meta", borrow)]
            meta: Option<Meta<'a>>,
            #[serde(borrow)]
            name: Option<&'a RawValue>,
            #[serde(borrow)]
            uri: Option<&'a RawValue>,
            #[serde(rename = "taskId", borrow)]
            task_id: Option<&'a RawValue>,
        }
        #[derive(Deserialize)]
        struct Meta<'a> {
            #[serde(rename = "io.modelcontextprotocol/protocolVersion", borrow)]
            version: Option<&'a RawValue>,
            #[serde(rename = "progressToken")]
            progress_token: Option<IgnoredAny>,
            #[serde(rename = "io.modelcontextprotocol/clientCapabilities")]
            capabilities: Option<IgnoredAny>,
        }
        // Most requests in a session name neither a version nor a progress token, and then
        // nothing else here is looked at: their params need no reading.
        let Some(Ok(params)) = params
            .filter(|p| {
                static VERSION: message::Mention = message::Mention::new("protocolVersion");
                static PROGRESS: message::Mention = message::Mention::new("progressToken");
                message::may_name(p.get(), &[&VERSION, &PROGRESS])
            })
            .map(|p| serde_json::from_str::<Params<'a>>(p.get()))
        else {
            return Self::default();
        };
        let meta = params.meta;
        Self {
            // A version that is not a string is left to the service to reject.
            version: meta.as_ref().and_then(|m| m.version).map(|v| text_of(v.get())),
            progress: meta.as_ref().is_some_and(|m| m.progress_token.is_some()),
            capabilities: meta.is_some_and(|m| m.capabilities.is_some()),
            name: params.name.map(RawValue::get),
            uri: params.uri.map(RawValue::get),
            task_id: params.task_id.map(RawValue::get),
        }
    }

    /// What [`ReadAhead`](portico_core::server::ReadAhead) read of `params` already: the same
    /// members [`Peek::of`] would find (a `_meta` that reads whole names the client's
    /// capabilities, which the revision requires).
    pub(crate) fn read_ahead(read: &portico_core::server::ReadAhead, params: &'a RawValue) -> Self {
        Self {
            version: Some(Cow::Owned(read.version().to_owned())),
            progress: read.progress(),
            capabilities: true,
            name: read.name(params),
            uri: read.uri(params),
            task_id: read.task_id(params),
        }
    }

    /// The member `Mcp-Name` mirrors for `method` ([`portico_core::mirror::name_member`]), as
    /// sent, if present.
    pub(crate) fn named(&self, method: &str) -> Option<&'a str> {
        match portico_core::mirror::name_member(method)? {
            "name" => self.name,
            "uri" => self.uri,
            _ => self.task_id,
        }
    }
}

/// The string a JSON value's text (`json`) holds; any other value as compact JSON (for error
/// messages).
fn text_of(json: &str) -> Cow<'_, str> {
    if let Some(text) = message::string_in(json) {
        return text;
    }
    match serde_json::from_str::<Value>(json) {
        Ok(other) => other.to_string().into(),
        Err(_) => json.into(),
    }
}

/// `400` with `-32602` when a 2026-07-28 request's `_meta` lacks the client's capabilities,
/// which that revision requires in every request (its version was found by the caller).
pub(crate) fn check_meta(peek: &Peek) -> Result<(), HttpError> {
    if peek.capabilities {
        return Ok(());
    }
    Err(HttpError::new(
        StatusCode::BAD_REQUEST,
        ErrorObject::invalid_params(
            "params._meta has no io.modelcontextprotocol/clientCapabilities: a 2026-07-28 request declares the \
             client's capabilities in each request (an empty object when it has none)",
        ),
    ))
}

/// Checks the headers that mirror a 2026-07-28 request's body: `MCP-Protocol-Version` against
/// `_meta`'s version, `Mcp-Method` against `method`, `Mcp-Name` against `params.name`
/// (`tools/call`, `prompts/get`), `params.uri` (`resources/read`) or `params.taskId` (the tasks
/// extension's `tasks/get`, `tasks/update`, `tasks/cancel`), after undoing the Base64
/// sentinel encoding. With `required`, a missing header is a mismatch too. The error is `-32020`.
pub(crate) fn check_mirrored(headers: &McpHeaders, required: bool, method: &str, peek: &Peek) -> Result<(), HttpError> {
    let mismatch =
        |message: String| HttpError::new(StatusCode::BAD_REQUEST, ErrorObject::new(HEADER_MISMATCH, message));
    let body_version = peek.version.as_deref().unwrap_or_default();
    match headers.protocol_version()? {
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
    match headers.method.single(&MCP_METHOD)? {
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
    // Other methods have no name to mirror; a stray `Mcp-Name` is ignored.
    let Some(member) = portico_core::mirror::name_member(method) else {
        return Ok(());
    };
    let source = format_args!("params.{member}");
    // A name that is not a string is the service's to reject (-32602); it cannot be mirrored.
    let body_name = peek.named(method).and_then(message::string_in);
    let body_name = body_name.as_deref();
    match (headers.name.single(&MCP_NAME)?, body_name) {
        (Some(raw), Some(body)) => {
            let header = portico_core::mirror::decode_value(raw)
                .map_err(|e| mismatch(format!("Header mismatch: Mcp-Name: {e}")))?;
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

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

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

    #[test]
    fn a_peek_from_what_was_read_ahead_is_the_peek_of_the_params() {
        let fields = |peek: Peek<'_>| {
            let text = |json: Option<&str>| json.map(str::to_owned);
            (
                peek.version.map(Cow::into_owned),
                peek.progress,
                peek.capabilities,
                [text(peek.name), text(peek.uri), text(peek.task_id)],
            )
        };
        for text in [
            r#"{"name":"echo","arguments":{"m":1},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}"#,
            r#"{"_meta":{"progressToken":3,"io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/protocolVersion":"2026-07-28"},"uri":"a:\/b","taskId":"t"}"#,
        ] {
            let params = RawValue::from_string(text.to_owned()).expect("JSON");
            let read = portico_core::server::ReadAhead::of(&params).expect("read whole");
            assert_eq!(
                fields(Peek::read_ahead(&read, &params)),
                fields(Peek::of(Some(&params))),
                "{text}"
            );
        }
    }

    #[test]
    fn peek_finds_the_version_and_progress_token_however_they_are_spelled() {
        let peek = |text: &str| {
            let raw = RawValue::from_string(text.to_owned()).expect("JSON");
            let peek = Peek::of(Some(&raw));
            (peek.version.map(Cow::into_owned), peek.progress, peek.capabilities)
        };
        let version = Some("2026-07-28".to_owned());
        assert_eq!(
            peek(r#"{"name":"echo","arguments":{"message":"hi"}}"#),
            (None, false, false)
        );
        assert_eq!(peek(r#"{"_meta":{"progressToken":1}}"#), (None, true, false));
        assert_eq!(peek(r#"{"_meta":{"pr\u006fgressToken":"p"}}"#), (None, true, false));
        let stateless = r#"{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}"#;
        assert_eq!(peek(stateless), (version.clone(), false, true));
        let escaped = r#"{"_meta":{"io.modelcontextprotocol\/pr\u006ftocolVersion":"2026-07-28"}}"#;
        assert_eq!(peek(escaped), (version, false, false));
        // Named elsewhere than in `_meta`: nothing.
        assert_eq!(
            peek(r#"{"arguments":{"progressToken":1,"protocolVersion":"x"}}"#),
            (None, false, false)
        );
        assert!(!Peek::of(None).progress);
    }
}
