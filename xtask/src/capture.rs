//! A recording proxy between the conformance suite and the server under test, and the schema
//! validation of every JSON-RPC message the server sent through it.
//!
//! [`Proxy`] listens on a free local port and forwards each request to the server: method, path,
//! query, headers (`Host`, `Origin`, `Mcp-Session-Id`, `Last-Event-ID`, ... as the client sent
//! them; hop-by-hop headers dropped) and body. The answer comes back with its status and headers
//! and its body streamed frame by frame, so an SSE stream reaches the client event by event and
//! a client closing its stream closes the server's. One thing differs from a direct connection:
//! the HTTP client adds `Accept: */*` to a request that has no `Accept` (the suite always sends
//! one). The request body is read whole first (it is one JSON document).
//!
//! Alongside, the proxy records each exchange ([`Exchange`]): the request (HTTP method, session
//! id, `MCP-Protocol-Version`, `Last-Event-ID`, the body), the status, the session id the server
//! answered with, and every message of the answer: an `application/json` body when it ended, each
//! SSE event's `data` as the event completes (events without data, such as priming events, carry
//! no message).
//!
//! [`validate`] then checks every recorded message against the schema of the revision the
//! connection negotiated ([`Source`] says how that is known), loaded from the spec folder
//! (`MCP_SPEC_DIR`): the message as `JSONRPCMessage` and as its kind's envelope; a result against
//! the result definition of the method called (found from the schema: the request definition
//! `<Stem>Request` of the method, then `<Stem>ResultResponse.result` (the union a 2026-07-28 result
//! may take, `input_required` included), else `<Stem>Result`, else `EmptyResult`); a notification
//! or a server→client request against its definition. What the revision does not define (an
//! extension's method, say) is checked as JSON-RPC only and counted apart, except a server→client
//! request, which is invalid when the revision has no such request.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Value, json};

/// The largest request body the proxy forwards.
const MAX_REQUEST_BODY: usize = 16 << 20;

/// The largest JSON response body recorded (larger ones are forwarded, and noted).
const MAX_RECORDED_BODY: usize = 64 << 20;

/// How much of a body that is neither JSON nor SSE is kept, for the report.
const MAX_OTHER_BODY: usize = 1 << 10;

/// How long [`Proxy::finish`] waits for bodies still streaming.
const FINISH_GRACE: Duration = Duration::from_secs(3);

/// The `_meta` key of a 2026-07-28 request that names its revision.
const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";

/// Headers that belong to one connection and are not forwarded (RFC 9110, section 7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// One HTTP exchange through the proxy, and the messages the server answered with.
#[derive(Debug, Default, Clone)]
pub struct Exchange {
    /// `POST`, `GET`, `DELETE`, ...
    pub http_method: String,
    /// The path and query.
    pub target: String,
    /// The request's `Mcp-Session-Id`.
    pub session: Option<String>,
    /// The request's `MCP-Protocol-Version`.
    pub version_header: Option<String>,
    /// The request's `Last-Event-ID`.
    pub last_event_id: Option<String>,
    /// The request body when it is JSON (`None`: no body, or not JSON).
    pub request: Option<Value>,
    /// The status the server answered with (`502` written by the proxy when it could not reach
    /// the server; see `note`).
    pub status: u16,
    /// The `Mcp-Session-Id` of the answer.
    pub response_session: Option<String>,
    /// The `Content-Type` of the answer.
    pub content_type: Option<String>,
    /// Every JSON-RPC message of the answer, as text, in order.
    pub messages: Vec<String>,
    /// The start of a body that is neither JSON nor SSE.
    pub other_body: Option<String>,
    /// Something about the exchange worth reporting (a body cut off, the server unreachable).
    pub note: Option<String>,
}

impl Exchange {
    /// The methods of the request body (one, or each of a batch), `None` for what has none.
    fn request_methods(&self) -> Vec<&str> {
        match &self.request {
            Some(Value::Array(items)) => items.iter().filter_map(|m| m["method"].as_str()).collect(),
            Some(message) => message["method"].as_str().into_iter().collect(),
            None => Vec::new(),
        }
    }

    /// The request in the body whose id is `id`.
    fn request_by_id(&self, id: &Value) -> Option<&Value> {
        let matches = |m: &Value| m.get("id") == Some(id) && m["method"].is_string();
        match &self.request {
            Some(Value::Array(items)) => items.iter().find(|m| matches(m)),
            Some(message) => Some(message).filter(|m| matches(m)),
            None => None,
        }
    }

    /// The first request (or notification) of the body.
    fn first_request(&self) -> Option<&Value> {
        match &self.request {
            Some(Value::Array(items)) => items.first(),
            other => other.as_ref(),
        }
    }

    /// `POST tools/call → 200 text/event-stream`, for reports.
    fn describe(&self) -> String {
        let methods = self.request_methods();
        let what = if methods.is_empty() {
            String::new()
        } else {
            format!(" {}", methods.join(", "))
        };
        let kind = self
            .content_type
            .as_deref()
            .and_then(|c| c.split(';').next())
            .unwrap_or("no body");
        format!("{}{what} → {} {kind}", self.http_method, self.status)
    }

    /// The exchange as one JSON object, for the capture file.
    fn to_json(&self) -> Value {
        json!({
            "httpMethod": self.http_method,
            "target": self.target,
            "sessionId": self.session,
            "protocolVersionHeader": self.version_header,
            "lastEventId": self.last_event_id,
            "request": self.request,
            "status": self.status,
            "responseSessionId": self.response_session,
            "contentType": self.content_type,
            "messages": self.messages,
            "otherBody": self.other_body,
            "note": self.note,
        })
    }
}

/// What one proxy recorded.
#[derive(Debug, Default)]
pub struct Capture {
    /// Every exchange, in the order the answers' headers arrived.
    pub exchanges: Vec<Exchange>,
}

impl Capture {
    /// Writes one JSON object per exchange and line to `path`.
    pub fn write_jsonl(&self, path: &Path) -> anyhow::Result<()> {
        let mut text = String::new();
        for exchange in &self.exchanges {
            text.push_str(&exchange.to_json().to_string());
            text.push('\n');
        }
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }

    /// How many messages were recorded.
    pub fn messages(&self) -> usize {
        self.exchanges.iter().map(|e| e.messages.len()).sum()
    }
}

/// State shared by the proxy's handlers.
struct Shared {
    /// `http://HOST:PORT` of the server.
    upstream: String,
    /// `Authorization` put on every request that has none (the token a gateway with `auth`
    /// wants, which the suite cannot send).
    authorization: Option<axum::http::HeaderValue>,
    client: reqwest::Client,
    exchanges: Mutex<Vec<Exchange>>,
    /// Answer bodies still streaming.
    open: AtomicUsize,
}

impl Shared {
    fn with_exchange(&self, index: usize, f: impl FnOnce(&mut Exchange)) {
        let mut exchanges = self.exchanges.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(exchange) = exchanges.get_mut(index) {
            f(exchange);
        }
    }

    fn push(&self, exchange: Exchange) -> usize {
        let mut exchanges = self.exchanges.lock().unwrap_or_else(PoisonError::into_inner);
        exchanges.push(exchange);
        exchanges.len() - 1
    }
}

/// A recording proxy in front of one server, served on a tokio runtime.
pub struct Proxy {
    /// The URL clients use: the proxy's address with the server's path (`http://127.0.0.1:PORT/mcp`).
    pub url: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy for `upstream` (`http://HOST:PORT/PATH`) on a free port of 127.0.0.1,
    /// putting `authorization` (`Bearer …`), if any, on every request that has no
    /// `Authorization` of its own.
    pub fn start(
        runtime: &tokio::runtime::Handle,
        upstream: &str,
        authorization: Option<&str>,
    ) -> anyhow::Result<Self> {
        let authorization = authorization
            .map(axum::http::HeaderValue::from_str)
            .transpose()
            .context("the proxy's Authorization value")?;
        let rest = upstream
            .strip_prefix("http://")
            .with_context(|| format!("the proxy forwards to http:// URLs, not {upstream}"))?;
        let (authority, path) = match rest.find('/') {
            Some(slash) => rest.split_at(slash),
            None => (rest, "/"),
        };
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .retry(reqwest::retry::never())
            .no_proxy()
            .build()
            .context("building the proxy's HTTP client")?;
        let shared = Arc::new(Shared {
            upstream: format!("http://{authority}"),
            authorization,
            client,
            exchanges: Mutex::new(Vec::new()),
            open: AtomicUsize::new(0),
        });
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .context("binding the proxy to a free port of 127.0.0.1")?;
        let address = listener.local_addr()?;
        let app = axum::Router::new().fallback(forward).with_state(Arc::clone(&shared));
        let server = runtime.spawn(async move {
            // Ends only on an accept error; the proxy is stopped by aborting this task.
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            url: format!("http://{address}{path}"),
            shared,
            server,
        })
    }

    /// Stops accepting connections, waits a little for bodies still streaming (stop the server
    /// first, so that they end), and returns what was recorded.
    pub fn finish(self) -> Capture {
        self.server.abort();
        let deadline = Instant::now() + FINISH_GRACE;
        while self.shared.open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let exchanges = std::mem::take(&mut *self.shared.exchanges.lock().unwrap_or_else(PoisonError::into_inner));
        Capture { exchanges }
    }
}

/// Whether a header is forwarded.
fn forwarded(name: &HeaderName) -> bool {
    !HOP_BY_HOP.contains(&name.as_str())
}

/// The value of header `name` as text.
fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// The proxy's one handler: forwards the request, records it, and streams the answer back
/// through a [`Tap`].
async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_REQUEST_BODY).await {
        Ok(body) => body,
        Err(e) => {
            return (
                StatusCode::BAD_GATEWAY,
                format!("conformance proxy: reading the request: {e}"),
            )
                .into_response();
        }
    };
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let mut exchange = Exchange {
        http_method: parts.method.to_string(),
        session: header_text(&parts.headers, "mcp-session-id"),
        version_header: header_text(&parts.headers, "mcp-protocol-version"),
        last_event_id: header_text(&parts.headers, "last-event-id"),
        request: serde_json::from_slice(&body).ok(),
        target: target.clone(),
        ..Exchange::default()
    };
    let url = match reqwest::Url::parse(&format!("{}{target}", shared.upstream)) {
        Ok(url) => url,
        Err(e) => {
            return (
                StatusCode::BAD_GATEWAY,
                format!("conformance proxy: bad target {target}: {e}"),
            )
                .into_response();
        }
    };
    let mut upstream = reqwest::Request::new(parts.method.clone(), url);
    for (name, value) in parts
        .headers
        .iter()
        .filter(|(n, _)| forwarded(n) && *n != header::CONTENT_LENGTH)
    {
        upstream.headers_mut().append(name.clone(), value.clone());
    }
    if let Some(authorization) = &shared.authorization
        && !parts.headers.contains_key(header::AUTHORIZATION)
    {
        upstream
            .headers_mut()
            .insert(header::AUTHORIZATION, authorization.clone());
    }
    *upstream.body_mut() = Some(body.into());
    let answer = match shared.client.execute(upstream).await {
        Ok(answer) => answer,
        Err(e) => {
            let text = format!("conformance proxy: the server did not answer: {e}");
            exchange.status = StatusCode::BAD_GATEWAY.as_u16();
            exchange.note = Some(text.clone());
            shared.push(exchange);
            return (StatusCode::BAD_GATEWAY, text).into_response();
        }
    };
    exchange.status = answer.status().as_u16();
    exchange.response_session = header_text(answer.headers(), "mcp-session-id");
    exchange.content_type = header_text(answer.headers(), "content-type");
    let kind = TapKind::for_content_type(exchange.content_type.as_deref());
    let index = shared.push(exchange);
    let answer: axum::http::Response<reqwest::Body> = answer.into();
    let (answer_parts, answer_body) = answer.into_parts();
    shared.open.fetch_add(1, Ordering::SeqCst);
    let tap = Tap {
        shared: Arc::clone(&shared),
        index,
        kind,
        done: false,
    };
    let frames = Body::new(answer_body).into_data_stream();
    let stream = futures_util::stream::unfold((frames, tap), |(mut frames, mut tap)| async move {
        match frames.next().await {
            Some(Ok(bytes)) => {
                tap.feed(&bytes);
                Some((Ok(bytes), (frames, tap)))
            }
            Some(Err(e)) => {
                tap.finish(false);
                Some((Err(e), (frames, tap)))
            }
            None => {
                tap.finish(true);
                None
            }
        }
    });
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = answer_parts.status;
    for (name, value) in answer_parts.headers.iter().filter(|(n, _)| forwarded(n)) {
        response.headers_mut().append(name.clone(), value.clone());
    }
    response
}

/// What a [`Tap`] makes of the body passing through it.
enum TapKind {
    /// `application/json`: recorded when the body ends.
    Json(Vec<u8>),
    /// `text/event-stream`: each event's data recorded as the event completes.
    Sse(SseParser),
    /// Anything else: the start is kept for the report.
    Other(Vec<u8>),
}

impl TapKind {
    fn for_content_type(content_type: Option<&str>) -> Self {
        let essence = content_type
            .and_then(|c| c.split(';').next())
            .map(|c| c.trim().to_ascii_lowercase());
        match essence.as_deref() {
            Some("application/json") => Self::Json(Vec::new()),
            Some("text/event-stream") => Self::Sse(SseParser::default()),
            _ => Self::Other(Vec::new()),
        }
    }
}

/// Records the messages of one answer body as it streams through the proxy.
struct Tap {
    shared: Arc<Shared>,
    index: usize,
    kind: TapKind,
    done: bool,
}

impl Tap {
    fn feed(&mut self, bytes: &Bytes) {
        match &mut self.kind {
            TapKind::Json(buffer) => {
                if buffer.len() + bytes.len() <= MAX_RECORDED_BODY {
                    buffer.extend_from_slice(bytes);
                }
            }
            TapKind::Sse(parser) => {
                let mut events = Vec::new();
                parser.feed(bytes, &mut events);
                if !events.is_empty() {
                    self.shared.with_exchange(self.index, |e| e.messages.extend(events));
                }
            }
            TapKind::Other(start) => {
                let room = MAX_OTHER_BODY.saturating_sub(start.len());
                start.extend_from_slice(&bytes[..room.min(bytes.len())]);
            }
        }
    }

    /// Records what is left once the body ended (`complete`) or was cut off.
    fn finish(&mut self, complete: bool) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let kind = std::mem::replace(&mut self.kind, TapKind::Other(Vec::new()));
        self.shared.with_exchange(self.index, |exchange| match kind {
            TapKind::Json(body) => {
                // With a `Content-Length`, the body is dropped once that much was sent, without
                // being read to its end: a whole JSON document counts as complete too.
                let whole = complete || serde_json::from_slice::<Value>(&body).is_ok();
                if body.len() >= MAX_RECORDED_BODY {
                    exchange.note = Some(format!("JSON body over {MAX_RECORDED_BODY} bytes, not recorded"));
                } else if !whole {
                    exchange.note = Some("the JSON body was cut off".to_owned());
                } else if !body.is_empty() {
                    exchange.messages.push(String::from_utf8_lossy(&body).into_owned());
                }
            }
            // An event not ended by a blank line is discarded, as an SSE client does.
            TapKind::Sse(_) => {}
            TapKind::Other(start) => {
                if !start.is_empty() {
                    exchange.other_body = Some(String::from_utf8_lossy(&start).into_owned());
                }
            }
        });
        self.shared.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        // The client (or the server) closed the stream before its end.
        self.finish(false);
    }
}

/// An incremental `text/event-stream` parser that keeps only each event's `data`.
#[derive(Default)]
pub(crate) struct SseParser {
    /// Bytes not yet split into lines.
    pending: Vec<u8>,
    /// The data of the event being read, if it has a `data` line yet.
    data: Option<String>,
}

impl SseParser {
    /// Feeds `bytes`, pushing the data of each event they complete onto `events` (events
    /// without data, or with empty data, push nothing).
    pub(crate) fn feed(&mut self, bytes: &[u8], events: &mut Vec<String>) {
        self.pending.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(offset) = self.pending[start..].iter().position(|b| *b == b'\n' || *b == b'\r') {
            let end = start + offset;
            let skip = match (self.pending[end], self.pending.get(end + 1)) {
                (b'\r', Some(b'\n')) => 2,
                // A `\r` last in the buffer may be the first half of `\r\n`: wait for more.
                (b'\r', None) => break,
                _ => 1,
            };
            let line = String::from_utf8_lossy(&self.pending[start..end]).into_owned();
            self.line(&line, events);
            start = end + skip;
        }
        self.pending.drain(..start);
    }

    fn line(&mut self, line: &str, events: &mut Vec<String>) {
        if line.is_empty() {
            if let Some(data) = self.data.take().filter(|d| !d.is_empty()) {
                events.push(data);
            }
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        if field == "data" {
            match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            }
        }
    }
}

/// How the revision a message was checked against was known, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// The request's `_meta` named it (a 2026-07-28 request).
    Meta,
    /// The request named a session, and `initialize` of that session answered it.
    Session,
    /// The answer to `initialize` named it.
    Initialize,
    /// The request's `MCP-Protocol-Version` header named it.
    Header,
    /// Nothing did: the revision the suite run was asked to speak.
    Default,
}

impl Source {
    fn label(self) -> &'static str {
        match self {
            Source::Meta => "request _meta",
            Source::Session => "session (initialize)",
            Source::Initialize => "initialize answer",
            Source::Header => "MCP-Protocol-Version header",
            Source::Default => "suite run's revision",
        }
    }
}

/// One revision's schema, with the validators built from it so far.
struct Revision {
    doc: Value,
    /// `$defs` (2020-12) or `definitions` (draft-07).
    defs_key: &'static str,
    /// Method → definition name, of the requests a client sends.
    client_requests: BTreeMap<String, String>,
    /// Method → definition name, of the requests a server sends; `None` when the revision has
    /// no server→client requests.
    server_requests: Option<BTreeMap<String, String>>,
    /// Method → definition name, of the notifications a server sends.
    notifications: BTreeMap<String, String>,
    /// Error code → the definition of that error (`MethodNotFoundError`, ...) and whether it
    /// describes the whole response (`true`) or the error object.
    error_codes: BTreeMap<i64, (String, bool)>,
    /// Validators by the schema pointers they accept any of.
    validators: HashMap<Vec<String>, jsonschema::Validator>,
}

impl Revision {
    fn load(dir: &Path, name: &str) -> anyhow::Result<Self> {
        let path = dir.join(name).join("schema.json");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "reading {}; MCP_SPEC_DIR must point at the MCP spec folder",
                path.display()
            )
        })?;
        let doc: Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let defs_key = if doc.get("$defs").is_some() {
            "$defs"
        } else {
            "definitions"
        };
        let methods = |union: &str| -> Option<BTreeMap<String, String>> {
            let members = doc[defs_key][union]["anyOf"].as_array()?;
            Some(
                members
                    .iter()
                    .filter_map(|m| m["$ref"].as_str()?.rsplit('/').next())
                    .filter_map(|def| {
                        let method = doc[defs_key][def]["properties"]["method"]["const"].as_str()?;
                        Some((method.to_owned(), def.to_owned()))
                    })
                    .collect(),
            )
        };
        let client_requests =
            methods("ClientRequest").with_context(|| format!("{}: no ClientRequest union", path.display()))?;
        let server_requests = methods("ServerRequest");
        let notifications = methods("ServerNotification").unwrap_or_default();
        let mut error_codes = BTreeMap::new();
        for (name, def) in doc[defs_key].as_object().into_iter().flatten() {
            if !name.ends_with("Error") || name == "Error" || name == "JSONRPCError" {
                continue;
            }
            if let Some(code) = def["properties"]["code"]["const"].as_i64() {
                error_codes.insert(code, (name.clone(), false));
            } else if let Some(code) = def["properties"]["error"]["allOf"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|part| part["properties"]["code"]["const"].as_i64())
            {
                error_codes.insert(code, (name.clone(), true));
            }
        }
        Ok(Self {
            defs_key,
            client_requests,
            server_requests,
            notifications,
            error_codes,
            validators: HashMap::new(),
            doc,
        })
    }

    fn has_def(&self, name: &str) -> bool {
        self.doc[self.defs_key].get(name).is_some()
    }

    /// `#/$defs/NAME`.
    fn pointer(&self, name: &str) -> String {
        format!("#/{}/{name}", self.defs_key)
    }

    /// The pointer of the first of `names` the revision defines.
    fn first_def(&self, names: &[&str]) -> Option<String> {
        names.iter().find(|n| self.has_def(n)).map(|n| self.pointer(n))
    }

    /// The schema(s) a result of `method` must match (any of them), `None` when the revision
    /// defines no such client request.
    fn result_pointers(&self, method: &str, params: Option<&Value>) -> Option<Vec<String>> {
        let def = self.client_requests.get(method)?;
        let stem = def.strip_suffix("Request").unwrap_or(def);
        let response = format!("{stem}ResultResponse");
        let mut pointers = Vec::new();
        if self.doc[self.defs_key][&response]["properties"]["result"].is_object() {
            pointers.push(format!("{}/properties/result", self.pointer(&response)));
        } else if let Some(pointer) = self.first_def(&[&format!("{stem}Result"), "EmptyResult", "Result"]) {
            pointers.push(pointer);
        }
        // A task-augmented request (2025-11-25) may be answered with the task instead.
        if params.is_some_and(|p| p.get("task").is_some_and(Value::is_object)) && self.has_def("CreateTaskResult") {
            pointers.push(self.pointer("CreateTaskResult"));
        }
        Some(pointers)
    }

    /// The members of a result union that a result with this `resultType` must match: a union
    /// with `InputRequiredResult` is decided by the tag (`InputRequiredResult` alone would
    /// accept any result, it requires nothing else), as a client reads it. `Err(tag)` for a
    /// `resultType` the revision does not name (an extension's, such as `task`).
    fn by_result_type(&self, pointers: Vec<String>, result: &Value) -> Result<Vec<String>, String> {
        let input_required = self.pointer("InputRequiredResult");
        let members: Vec<String> = match pointers.as_slice() {
            [one] => self
                .doc
                .pointer(one.trim_start_matches('#'))
                .and_then(|s| s["anyOf"].as_array())
                .map(|m| m.iter().filter_map(|m| m["$ref"].as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        if !members.contains(&input_required) {
            return Ok(pointers);
        }
        match result.get("resultType").and_then(Value::as_str) {
            Some("input_required") => Ok(vec![input_required]),
            None | Some("complete") => Ok(members.into_iter().filter(|m| *m != input_required).collect()),
            Some(other) => Err(other.to_owned()),
        }
    }

    /// The validator accepting what matches any of `pointers`, built on first use.
    fn validator(&mut self, pointers: &[String]) -> anyhow::Result<&jsonschema::Validator> {
        if !self.validators.contains_key(pointers) {
            let mut wrapper = serde_json::Map::new();
            if let Some(dialect) = self.doc.get("$schema") {
                wrapper.insert("$schema".into(), dialect.clone());
            }
            wrapper.insert(self.defs_key.into(), self.doc[self.defs_key].clone());
            let refs = pointers.iter().map(|p| json!({ "$ref": p })).collect();
            // `allOf` of one reports that schema's own errors; `anyOf` would only say "none".
            let combinator = if pointers.len() == 1 { "allOf" } else { "anyOf" };
            wrapper.insert(combinator.into(), Value::Array(refs));
            let validator = jsonschema::validator_for(&Value::Object(wrapper))
                .map_err(|e| anyhow::anyhow!("building a validator for {}: {e}", pointers.join(" | ")))?;
            self.validators.insert(pointers.to_vec(), validator);
        }
        Ok(&self.validators[pointers])
    }

    /// Whether `instance` matches any of `pointers`.
    fn matches(&mut self, pointers: &[String], instance: &Value) -> anyhow::Result<bool> {
        Ok(self.validator(pointers)?.is_valid(instance))
    }

    /// The errors of `instance` against any of `pointers`: none when it matches one of them.
    /// A union (several pointers, or one naming an `anyOf` of references) is explained member
    /// by member, since "not valid under any of the schemas" says little.
    fn errors(&mut self, pointers: &[String], instance: &Value) -> anyhow::Result<Vec<String>> {
        if self.matches(pointers, instance)? {
            return Ok(Vec::new());
        }
        let members: Vec<String> = match pointers {
            [one] => self
                .doc
                .pointer(one.trim_start_matches('#'))
                .and_then(|s| s["anyOf"].as_array())
                .map(|m| m.iter().filter_map(|m| m["$ref"].as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
            many => many.to_vec(),
        };
        if members.len() > 1 {
            let mut errors = Vec::new();
            for member in members {
                let name = member.rsplit('/').next().unwrap_or(&member).to_owned();
                for error in self.errors(std::slice::from_ref(&member), instance)? {
                    errors.push(format!("as {name}: {error}"));
                }
            }
            return Ok(errors);
        }
        Ok(self
            .validator(pointers)?
            .iter_errors(instance)
            .map(|e| format!("{e} (at {})", display_path(&e.instance_path().to_string())))
            .collect())
    }
}

/// `/` for the root, else the pointer.
fn display_path(path: &str) -> &str {
    if path.is_empty() { "/" } else { path }
}

/// The schemas of the revisions in the spec folder, loaded when first needed.
pub struct Schemas {
    dir: PathBuf,
    /// The revisions that may be negotiated (those of `spec/PINNED.toml`).
    known: BTreeSet<String>,
    loaded: HashMap<String, Revision>,
}

impl Schemas {
    /// The schemas of `revisions` in `dir` (the spec folder).
    pub fn new(dir: PathBuf, revisions: impl IntoIterator<Item = String>) -> Self {
        Self {
            dir,
            known: revisions.into_iter().collect(),
            loaded: HashMap::new(),
        }
    }

    /// The revisions of `spec/PINNED.toml`, from the spec folder.
    pub fn pinned(root: &Path) -> anyhow::Result<Self> {
        let pinned = portico_codegen::spec::Pinned::load(&root.join("spec/PINNED.toml"))?;
        Ok(Self::new(
            crate::spec_dir(),
            pinned.revisions.into_iter().map(|r| r.name),
        ))
    }

    fn is_known(&self, revision: &str) -> bool {
        self.known.contains(revision)
    }

    fn revision(&mut self, name: &str) -> anyhow::Result<&mut Revision> {
        if !self.loaded.contains_key(name) {
            if !self.is_known(name) {
                bail!("revision {name} is not in spec/PINNED.toml");
            }
            let revision = Revision::load(&self.dir, name)?;
            self.loaded.insert(name.to_owned(), revision);
        }
        Ok(self.loaded.get_mut(name).expect("loaded above"))
    }
}

/// Counts of validated messages of one revision.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Counts {
    pub messages: usize,
    pub results: usize,
    pub errors: usize,
    pub notifications: usize,
    pub requests: usize,
    /// Messages that did not validate.
    pub invalid: usize,
}

/// A message that did not validate.
#[derive(Debug, Clone)]
pub struct Invalid {
    /// The suite run it was captured in.
    pub run: String,
    pub revision: String,
    pub source: Source,
    /// The exchange (`POST tools/call → 200 text/event-stream`).
    pub exchange: String,
    /// The message, as sent.
    pub message: String,
    /// The schema errors (or why it is not a JSON-RPC message).
    pub errors: Vec<String>,
}

/// What [`validate`] found.
#[derive(Debug, Default)]
pub struct Report {
    /// Per revision.
    pub revisions: BTreeMap<String, Counts>,
    /// How the revision of each message was known.
    pub sources: BTreeMap<Source, usize>,
    pub invalid: Vec<Invalid>,
    /// Valid JSON-RPC the revision has no definition for, by `(revision, what)`.
    pub unchecked: BTreeMap<(String, String), usize>,
    /// Exchanges worth a look that carry no message: bodies cut off, non-JSON answers.
    pub notes: BTreeMap<String, usize>,
    pub exchanges: usize,
}

impl Report {
    pub fn messages(&self) -> usize {
        self.revisions.values().map(|c| c.messages).sum()
    }

    /// The report as text: a table per revision, then what was not checked, notes, and every
    /// invalid message with its errors. `markdown` writes a Markdown table and list.
    pub fn render(&self, markdown: bool) -> String {
        let mut out = String::new();
        if markdown {
            let _ = writeln!(
                out,
                "| revision | messages | results | errors | notifications | server requests | invalid |\n|---|---:|---:|---:|---:|---:|---:|"
            );
            for (revision, c) in &self.revisions {
                let _ = writeln!(
                    out,
                    "| {revision} | {} | {} | {} | {} | {} | {} |",
                    c.messages, c.results, c.errors, c.notifications, c.requests, c.invalid
                );
            }
        } else {
            let _ = writeln!(
                out,
                "  {:<12} {:>8} {:>8} {:>7} {:>13} {:>15} {:>7}",
                "revision", "messages", "results", "errors", "notifications", "server requests", "invalid"
            );
            for (revision, c) in &self.revisions {
                let _ = writeln!(
                    out,
                    "  {revision:<12} {:>8} {:>8} {:>7} {:>13} {:>15} {:>7}",
                    c.messages, c.results, c.errors, c.notifications, c.requests, c.invalid
                );
            }
        }
        let bullet = if markdown { "- " } else { "  " };
        let sources: Vec<String> = self.sources.iter().map(|(s, n)| format!("{} {n}", s.label())).collect();
        let _ = writeln!(
            out,
            "\n{bullet}{} messages in {} HTTP exchanges; revision known from: {}",
            self.messages(),
            self.exchanges,
            if sources.is_empty() {
                "-".to_owned()
            } else {
                sources.join(", ")
            }
        );
        if !self.unchecked.is_empty() {
            let items: Vec<String> = self
                .unchecked
                .iter()
                .map(|((revision, what), n)| format!("{what} ({revision}) ×{n}"))
                .collect();
            let _ = writeln!(
                out,
                "{bullet}checked as JSON-RPC only (the revision does not define them): {}",
                items.join("; ")
            );
        }
        for (note, n) in &self.notes {
            let _ = writeln!(out, "{bullet}note: {note} ×{n}");
        }
        for invalid in &self.invalid {
            let tick = if markdown { "`" } else { "" };
            let _ = writeln!(
                out,
                "{bullet}INVALID ({} from {}) in {}, {}: {tick}{}{tick}",
                invalid.revision,
                invalid.source.label(),
                invalid.run,
                invalid.exchange,
                cut(&invalid.message, 400)
            );
            let indent = if markdown { "  - " } else { "      " };
            for error in invalid.errors.iter().take(6) {
                let _ = writeln!(out, "{indent}{}", cut(error, 400));
            }
            if invalid.errors.len() > 6 {
                let _ = writeln!(out, "{indent}and {} more errors", invalid.errors.len() - 6);
            }
        }
        out
    }
}

/// `text` on one line, at most `max` characters.
fn cut(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        flat.chars().take(max).collect::<String>() + "…"
    } else {
        flat
    }
}

/// Validates every message of `runs` (the suite run's name, the revision it was asked to speak,
/// what its proxy captured) against the schema of the revision negotiated for it.
pub fn validate(schemas: &mut Schemas, runs: &[(String, String, &Capture)]) -> anyhow::Result<Report> {
    let mut report = Report::default();
    for (run, wire, capture) in runs {
        validate_run(schemas, run, wire, capture, &mut report)?;
    }
    Ok(report)
}

fn validate_run(
    schemas: &mut Schemas,
    run: &str,
    wire: &str,
    capture: &Capture,
    report: &mut Report,
) -> anyhow::Result<()> {
    // First the sessions, from every answer to `initialize`, and the requests sent in each, so
    // that order does not matter (an answer resumed on a GET stream names only its id).
    let mut sessions: HashMap<&str, String> = HashMap::new();
    let mut session_requests: HashMap<(&str, String), &Value> = HashMap::new();
    for exchange in &capture.exchanges {
        if let (Some(session), Some("initialize")) = (
            &exchange.response_session,
            exchange.first_request().and_then(|r| r["method"].as_str()),
        ) && let Some(version) = exchange
            .messages
            .iter()
            .filter_map(|m| serde_json::from_str::<Value>(m).ok())
            .find_map(|m| m["result"]["protocolVersion"].as_str().map(str::to_owned))
        {
            sessions.insert(session, version);
        }
        if let Some(session) = &exchange.session {
            let requests: Vec<&Value> = match &exchange.request {
                Some(Value::Array(items)) => items.iter().collect(),
                Some(one) => vec![one],
                None => Vec::new(),
            };
            for request in requests {
                if let Some(id) = request.get("id").filter(|_| request["method"].is_string()) {
                    session_requests.insert((session.as_str(), id.to_string()), request);
                }
            }
        }
    }
    let known_revisions = schemas.known.clone();
    let known = |v: Option<&str>| v.filter(|v| known_revisions.contains(*v)).map(str::to_owned);
    for exchange in &capture.exchanges {
        report.exchanges += 1;
        if let Some(note) = &exchange.note {
            *report.notes.entry(note.clone()).or_default() += 1;
        }
        if let Some(body) = &exchange.other_body {
            let note = format!(
                "{} answered with a non-JSON body ({}): {}",
                exchange.describe(),
                exchange.content_type.as_deref().unwrap_or("no Content-Type"),
                cut(body, 120)
            );
            *report.notes.entry(note).or_default() += 1;
        }
        let first = exchange.first_request();
        let meta = known(first.and_then(|r| r["params"]["_meta"][META_PROTOCOL_VERSION].as_str()));
        let session = exchange
            .session
            .as_deref()
            .and_then(|s| sessions.get(s))
            .and_then(|v| known(Some(v)));
        let header = known(exchange.version_header.as_deref());
        let is_initialize = first.and_then(|r| r["method"].as_str()) == Some("initialize");
        let requested = known(first.and_then(|r| r["params"]["protocolVersion"].as_str()));
        for text in &exchange.messages {
            let message: Result<Value, _> = serde_json::from_str(text);
            let answered = message
                .as_ref()
                .ok()
                .and_then(|m| known(m["result"]["protocolVersion"].as_str()))
                .filter(|_| is_initialize);
            let (revision, source) = if let Some(v) = &meta {
                (v.clone(), Source::Meta)
            } else if let Some(v) = &session {
                (v.clone(), Source::Session)
            } else if let Some(v) = answered.or_else(|| requested.clone().filter(|_| is_initialize)) {
                (v, Source::Initialize)
            } else if let Some(v) = &header {
                (v.clone(), Source::Header)
            } else {
                (wire.to_owned(), Source::Default)
            };
            *report.sources.entry(source).or_default() += 1;
            let counts = report.revisions.entry(revision.clone()).or_default();
            counts.messages += 1;
            let invalid = |errors: Vec<String>, report: &mut Report| {
                report.revisions.get_mut(&revision).expect("counted above").invalid += 1;
                report.invalid.push(Invalid {
                    run: run.to_owned(),
                    revision: revision.clone(),
                    source,
                    exchange: exchange.describe(),
                    message: text.clone(),
                    errors,
                });
            };
            let message = match message {
                Ok(message) => message,
                Err(e) => {
                    invalid(vec![format!("not JSON: {e}")], report);
                    continue;
                }
            };
            let lookup = |id: &Value| -> Option<&Value> {
                exchange.request_by_id(id).or_else(|| {
                    let session = exchange.session.as_deref()?;
                    session_requests.get(&(session, id.to_string())).copied()
                })
            };
            let checked = check_message(schemas.revision(&revision)?, &message, &lookup)?;
            let counts = report.revisions.get_mut(&revision).expect("counted above");
            for kind in &checked.kinds {
                match kind {
                    Kind::Result => counts.results += 1,
                    Kind::Error => counts.errors += 1,
                    Kind::Notification => counts.notifications += 1,
                    Kind::Request => counts.requests += 1,
                }
            }
            for what in checked.unchecked {
                *report.unchecked.entry((revision.clone(), what)).or_default() += 1;
            }
            if !checked.errors.is_empty() {
                invalid(checked.errors, report);
            }
        }
    }
    Ok(())
}

/// The kinds of JSON-RPC message.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Request,
    Notification,
    Result,
    Error,
}

/// What checking one message found.
#[derive(Debug, Default)]
struct Checked {
    /// The kind of the message (of each member, for a batch).
    kinds: Vec<Kind>,
    /// Schema errors; empty when valid.
    errors: Vec<String>,
    /// What the revision does not define, checked as JSON-RPC only.
    unchecked: Vec<String>,
}

/// Checks a message the server sent against `revision`: as `JSONRPCMessage`, as its kind's
/// envelope, and its payload as the definition of its method. `request_of` finds the request a
/// response answers, by its id.
fn check_message<'a>(
    revision: &mut Revision,
    message: &Value,
    request_of: &dyn Fn(&Value) -> Option<&'a Value>,
) -> anyhow::Result<Checked> {
    let mut checked = Checked::default();
    // The envelope's own check below says what is wrong; this one only whether it is a message.
    if !revision.matches(&[revision.pointer("JSONRPCMessage")], message)? {
        checked.errors.push("not a JSONRPCMessage of this revision".to_owned());
    }
    let members: Vec<&Value> = match message {
        Value::Array(items) => items.iter().collect(),
        one => vec![one],
    };
    for member in members {
        check_member(revision, member, request_of, &mut checked)?;
    }
    Ok(checked)
}

/// Adds the errors of `instance` against `pointers` to `checked`, each prefixed with `label`.
fn check_into(
    revision: &mut Revision,
    pointers: &[String],
    instance: &Value,
    label: &str,
    checked: &mut Checked,
) -> anyhow::Result<()> {
    let errors = revision.errors(pointers, instance)?;
    checked
        .errors
        .extend(errors.into_iter().map(|e| format!("{label}: {e}")));
    Ok(())
}

fn check_member<'a>(
    revision: &mut Revision,
    message: &Value,
    request_of: &dyn Fn(&Value) -> Option<&'a Value>,
    checked: &mut Checked,
) -> anyhow::Result<()> {
    let method = message.get("method").and_then(Value::as_str);
    let has = |key: &str| message.get(key).is_some();
    let kind = match (method, has("id"), has("result"), has("error")) {
        (Some(_), true, ..) => Kind::Request,
        (Some(_), false, ..) => Kind::Notification,
        (None, _, true, true) => {
            checked
                .errors
                .push("a response with both `result` and `error`".to_owned());
            return Ok(());
        }
        (None, _, true, false) => Kind::Result,
        (None, _, false, true) => Kind::Error,
        (None, _, false, false) => {
            checked
                .errors
                .push("neither a request, a notification nor a response".to_owned());
            return Ok(());
        }
    };
    checked.kinds.push(kind);
    let envelope = match kind {
        Kind::Request => revision.first_def(&["JSONRPCRequest"]),
        Kind::Notification => revision.first_def(&["JSONRPCNotification"]),
        Kind::Result => revision.first_def(&["JSONRPCResultResponse", "JSONRPCResponse"]),
        Kind::Error => revision.first_def(&["JSONRPCErrorResponse", "JSONRPCError"]),
    };
    if let Some(envelope) = envelope {
        let name = envelope.rsplit('/').next().unwrap_or_default().to_owned();
        check_into(revision, &[envelope], message, &name, checked)?;
    }
    let method = method.unwrap_or_default();
    match kind {
        Kind::Request => match revision.server_requests.as_ref().map(|r| r.get(method).cloned()) {
            Some(Some(def)) => check_into(revision, &[revision.pointer(&def)], message, &def, checked)?,
            Some(None) => checked
                .errors
                .push(format!("`{method}` is not a request a server sends in this revision")),
            None => checked.errors.push(format!(
                "this revision has no server→client requests, yet the server sent `{method}`"
            )),
        },
        Kind::Notification => match revision.notifications.get(method).cloned() {
            Some(def) => check_into(revision, &[revision.pointer(&def)], message, &def, checked)?,
            None => checked.unchecked.push(format!("notification {method}")),
        },
        Kind::Result => {
            let id = message.get("id").cloned().unwrap_or(Value::Null);
            let request = request_of(&id);
            match request.and_then(|r| r["method"].as_str()) {
                None => checked.unchecked.push("result of a request not seen".to_owned()),
                Some(called) => match revision.result_pointers(called, request.and_then(|r| r.get("params"))) {
                    None => checked.unchecked.push(format!("result of {called}")),
                    Some(pointers) => {
                        let result = &message["result"];
                        match revision.by_result_type(pointers, result) {
                            Ok(pointers) => {
                                let label = format!("result of {called}");
                                check_into(revision, &pointers, result, &label, checked)?;
                            }
                            Err(tag) => checked
                                .unchecked
                                .push(format!("result of {called} with resultType {tag}")),
                        }
                    }
                },
            }
        }
        Kind::Error => {
            // An error the revision defines by its code (2026-07-28: -32020, -32601, ...).
            let code = message["error"]["code"].as_i64();
            if let Some((def, whole)) = code.and_then(|c| revision.error_codes.get(&c)).cloned() {
                let instance = if whole { message } else { &message["error"] };
                check_into(revision, &[revision.pointer(&def)], instance, &def, checked)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schemas() -> Schemas {
        Schemas::pinned(&crate::repo_root()).expect("spec/PINNED.toml")
    }

    fn check(schemas: &mut Schemas, revision: &str, message: Value, method: &str) -> Checked {
        let request = json!({"jsonrpc": "2.0", "id": 1, "method": method});
        let lookup = |_: &Value| Some(&request);
        check_message(schemas.revision(revision).unwrap(), &message, &lookup).unwrap()
    }

    #[test]
    fn sse_events_are_split_across_chunks_and_line_endings() {
        let mut parser = SseParser::default();
        let mut events = Vec::new();
        for chunk in [
            &b"id: 1\nretry: 500\ndata: \n\n: keep-alive\n\nevent: message\nda"[..],
            b"ta: {\"a\":\r",
            b"\ndata: 1}\r\n\r\ndata:x\r\rdata: tail",
        ] {
            parser.feed(chunk, &mut events);
        }
        assert_eq!(events, ["{\"a\":\n1}", "x"]);
    }

    #[test]
    fn methods_map_to_their_result_definitions() {
        let mut schemas = schemas();
        let r = schemas.revision("2026-07-28").unwrap();
        assert_eq!(
            r.result_pointers("tools/call", None).unwrap(),
            ["#/$defs/CallToolResultResponse/properties/result"]
        );
        assert_eq!(
            r.result_pointers("server/discover", None).unwrap(),
            ["#/$defs/DiscoverResultResponse/properties/result"]
        );
        assert!(r.result_pointers("initialize", None).is_none());
        assert!(r.server_requests.is_none());
        let r = schemas.revision("2025-11-25").unwrap();
        assert_eq!(
            r.result_pointers("tools/call", None).unwrap(),
            ["#/$defs/CallToolResult"]
        );
        assert_eq!(r.result_pointers("ping", None).unwrap(), ["#/$defs/EmptyResult"]);
        assert_eq!(
            r.result_pointers("tasks/result", None).unwrap(),
            ["#/$defs/GetTaskPayloadResult"]
        );
        assert_eq!(
            r.result_pointers("tools/call", Some(&json!({"name": "x", "task": {}})))
                .unwrap(),
            ["#/$defs/CallToolResult", "#/$defs/CreateTaskResult"]
        );
        let r = schemas.revision("2024-11-05").unwrap();
        assert_eq!(
            r.result_pointers("initialize", None).unwrap(),
            ["#/definitions/InitializeResult"]
        );
        // Every client request of every revision maps to a definition that exists.
        for name in schemas.known.clone() {
            let r = schemas.revision(&name).unwrap();
            for method in r.client_requests.keys() {
                let pointers = r.result_pointers(method, None).unwrap();
                assert_eq!(pointers.len(), 1, "{name} {method}");
                assert!(
                    r.doc.pointer(pointers[0].trim_start_matches('#')).is_some(),
                    "{name} {method}"
                );
            }
        }
    }

    #[test]
    fn valid_messages_pass() {
        let mut schemas = schemas();
        let result = json!({"jsonrpc": "2.0", "id": 1, "result": {"resultType": "complete", "content": [{"type": "text", "text": "hi"}]}});
        let c = check(&mut schemas, "2026-07-28", result, "tools/call");
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(c.kinds, [Kind::Result]);
        let input = json!({"jsonrpc": "2.0", "id": 1, "result": {"resultType": "input_required", "requestState": "s"}});
        assert!(check(&mut schemas, "2026-07-28", input, "tools/call").errors.is_empty());
        let error = json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": "bad"}});
        assert!(check(&mut schemas, "2026-07-28", error, "tools/call").errors.is_empty());
        let progress = json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": "t", "progress": 1}});
        assert!(check(&mut schemas, "2025-11-25", progress, "-").errors.is_empty());
        let extension = json!({"jsonrpc": "2.0", "method": "notifications/tasks/status", "params": {}});
        let c = check(&mut schemas, "2026-07-28", extension, "-");
        assert!(c.errors.is_empty());
        assert_eq!(c.unchecked, ["notification notifications/tasks/status"]);
        let sampling = json!({"jsonrpc": "2.0", "id": 0, "method": "sampling/createMessage", "params": {"messages": [], "maxTokens": 10}});
        assert!(check(&mut schemas, "2025-11-25", sampling, "-").errors.is_empty());
    }

    #[test]
    fn invalid_messages_are_caught_with_the_schema_error() {
        let mut schemas = schemas();
        // A 2026-07-28 result without `resultType`.
        let result = json!({"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "hi"}]}});
        let c = check(&mut schemas, "2026-07-28", result, "tools/call");
        assert!(c.errors.iter().any(|e| e.contains("resultType")), "{:?}", c.errors);
        // A complete 2026-07-28 tool result without `content`: `InputRequiredResult` alone would
        // take it, but the tag says which member applies.
        let result = json!({"jsonrpc": "2.0", "id": 1, "result": {"resultType": "complete"}});
        let c = check(&mut schemas, "2026-07-28", result, "tools/call");
        assert!(c.errors.iter().any(|e| e.contains("content")), "{:?}", c.errors);
        // An extension's result type is checked as JSON-RPC only, and listed.
        let task = json!({"jsonrpc": "2.0", "id": 1, "result": {"resultType": "task", "task": {}}});
        let c = check(&mut schemas, "2026-07-28", task, "tools/call");
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(c.unchecked, ["result of tools/call with resultType task"]);
        // Content with the wrong shape, against the method's result type only.
        let result = json!({"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text"}]}});
        let c = check(&mut schemas, "2025-11-25", result, "tools/call");
        assert!(
            c.errors
                .iter()
                .any(|e| e.starts_with("result of tools/call:") && e.contains("/content/0")),
            "{:?}",
            c.errors
        );
        // The same result is fine as an answer to a method whose result is open.
        let result = json!({"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text"}]}});
        assert!(check(&mut schemas, "2025-11-25", result, "ping").errors.is_empty());
        // An error object without a message, an id of the wrong type, both result and error.
        let error = json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32600}});
        assert!(!check(&mut schemas, "2025-11-25", error, "-").errors.is_empty());
        let error = json!({"jsonrpc": "2.0", "id": [1], "error": {"code": -32600, "message": "x"}});
        assert!(!check(&mut schemas, "2026-07-28", error, "-").errors.is_empty());
        // An error the revision defines by its code must carry what that definition requires.
        let unsupported = json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32022, "message": "no"}});
        let c = check(&mut schemas, "2026-07-28", unsupported, "-");
        assert!(
            c.errors
                .iter()
                .any(|e| e.starts_with("UnsupportedProtocolVersionError")),
            "{:?}",
            c.errors
        );
        let capability = json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32021, "message": "no", "data": {"requiredCapabilities": {"sampling": {}}}}});
        assert!(check(&mut schemas, "2026-07-28", capability, "-").errors.is_empty());
        let both = json!({"jsonrpc": "2.0", "id": 1, "result": {}, "error": {"code": 1, "message": "x"}});
        assert!(!check(&mut schemas, "2025-06-18", both, "ping").errors.is_empty());
        // A notification with bad params; a server request 2026-07-28 does not have.
        let log = json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "loud", "data": 1}});
        assert!(!check(&mut schemas, "2025-11-25", log, "-").errors.is_empty());
        let elicit = json!({"jsonrpc": "2.0", "id": 1, "method": "elicitation/create", "params": {"message": "?", "requestedSchema": {"type": "object", "properties": {}}}});
        assert!(!check(&mut schemas, "2026-07-28", elicit.clone(), "-").errors.is_empty());
        assert!(check(&mut schemas, "2025-11-25", elicit, "-").errors.is_empty());
    }

    fn exchange(request: Value, session: Option<&str>, messages: &[Value]) -> Exchange {
        Exchange {
            http_method: "POST".to_owned(),
            target: "/mcp".to_owned(),
            session: session.map(str::to_owned),
            request: Some(request),
            status: 200,
            content_type: Some("application/json".to_owned()),
            messages: messages.iter().map(Value::to_string).collect(),
            ..Exchange::default()
        }
    }

    #[test]
    fn the_negotiated_revision_decides_the_schema() {
        let mut schemas = schemas();
        let mut init = exchange(
            json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "c", "version": "1"}}}),
            None,
            &[
                json!({"jsonrpc": "2.0", "id": 0, "result": {"protocolVersion": "2025-06-18", "capabilities": {}, "serverInfo": {"name": "s", "version": "1"}}}),
            ],
        );
        init.response_session = Some("s1".to_owned());
        // Valid at 2025-06-18; `resultType` is not required there.
        let call = exchange(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x"}}),
            Some("s1"),
            &[json!({"jsonrpc": "2.0", "id": 1, "result": {"content": []}})],
        );
        // A stateless 2026-07-28 request: the same result lacks `resultType`.
        let stateless = exchange(
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "x", "_meta": {META_PROTOCOL_VERSION: "2026-07-28"}}}),
            None,
            &[json!({"jsonrpc": "2.0", "id": 2, "result": {"content": []}})],
        );
        // A resumed answer on a GET stream: its method is found from the session's requests.
        let mut resumed = exchange(
            Value::Null,
            Some("s1"),
            &[json!({"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text"}]}})],
        );
        resumed.http_method = "GET".to_owned();
        resumed.request = None;
        let capture = Capture {
            exchanges: vec![call, stateless, init, resumed],
        };
        let report = validate(&mut schemas, &[("run".to_owned(), "2025-11-25".to_owned(), &capture)]).unwrap();
        assert_eq!(report.revisions["2025-06-18"].messages, 3);
        assert_eq!(report.revisions["2026-07-28"].messages, 1);
        assert_eq!(report.sources[&Source::Session], 2);
        assert_eq!(report.sources[&Source::Meta], 1);
        assert_eq!(report.sources[&Source::Initialize], 1);
        assert_eq!(report.invalid.len(), 2, "{}", report.render(false));
        assert_eq!(report.invalid[0].revision, "2026-07-28");
        assert!(
            report.invalid[1]
                .errors
                .iter()
                .any(|e| e.contains("result of tools/call"))
        );
        let text = report.render(false);
        assert!(
            text.contains("INVALID (2026-07-28 from request _meta) in run, POST tools/call → 200 application/json"),
            "{text}"
        );
    }

    /// In the workspace's test build reqwest is compiled with rustls but no crypto provider
    /// (portico-transport's `tls` feature turns it on for every crate: features are unified),
    /// and then it refuses to build a client until one is installed. `cargo xtask` itself is
    /// built alone, without TLS, and needs none of this.
    fn tls_provider() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }

    #[test]
    fn the_proxy_streams_events_one_by_one_and_keeps_headers_and_status() {
        use axum::routing::any;
        tls_provider();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (release_tx, release_rx) = tokio::sync::watch::channel(false);
        // A server that sends one event, then waits until the test has seen it, then another.
        let upstream = axum::Router::new().route(
            "/mcp",
            any(move |request: Request| {
                let mut release = release_rx.clone();
                async move {
                    let seen = format!(
                        "{} {} {}",
                        request.method(),
                        header_text(request.headers(), "mcp-session-id").unwrap_or_default(),
                        header_text(request.headers(), "host").unwrap_or_default()
                    );
                    if request.method() == axum::http::Method::DELETE {
                        return (StatusCode::NOT_FOUND, [("content-type", "application/json")], r#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"no"}}"#).into_response();
                    }
                    let first = format!("id: 1\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{{\"level\":\"info\",\"data\":\"{seen}\"}}}}\n\n");
                    let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from(first))]).chain(
                        futures_util::stream::once(async move {
                            let _ = release.wait_for(|r| *r).await;
                            Ok(Bytes::from_static(b"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n"))
                        }),
                    );
                    let mut response = Response::new(Body::from_stream(stream));
                    response.headers_mut().insert("content-type", "text/event-stream".parse().unwrap());
                    response.headers_mut().insert("mcp-session-id", "abc".parse().unwrap());
                    response
                }
            }),
        );
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let address = listener.local_addr().unwrap();
        runtime.spawn(async move { axum::serve(listener, upstream).await });
        let proxy = Proxy::start(runtime.handle(), &format!("http://{address}/mcp"), None).unwrap();
        let url = proxy.url.clone();
        runtime.block_on(async move {
            let client = reqwest::Client::new();
            let mut response = client
                .post(&url)
                .header("mcp-session-id", "abc")
                .header("host", "localhost:1")
                .body(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(response.headers()["mcp-session-id"], "abc");
            // The first event arrives while the server still holds the second back.
            let first = tokio::time::timeout(Duration::from_secs(10), response.chunk())
                .await
                .expect("the first event arrives while the stream is still open")
                .unwrap()
                .unwrap();
            let first = String::from_utf8_lossy(&first);
            assert!(first.contains("POST abc localhost:1"), "{first}");
            release_tx.send(true).unwrap();
            let mut rest = Vec::new();
            while let Some(chunk) = response.chunk().await.unwrap() {
                rest.extend_from_slice(&chunk);
            }
            assert!(String::from_utf8_lossy(&rest).contains("\"result\""));
            let gone = client.delete(&url).send().await.unwrap();
            assert_eq!(gone.status(), 404);
            assert!(gone.text().await.unwrap().contains("-32600"));
        });
        let capture = proxy.finish();
        assert_eq!(capture.exchanges.len(), 2);
        let post = &capture.exchanges[0];
        assert_eq!(
            (post.session.as_deref(), post.response_session.as_deref()),
            (Some("abc"), Some("abc"))
        );
        assert_eq!(post.request_methods(), ["ping"]);
        assert_eq!(post.messages.len(), 2);
        assert_eq!(capture.exchanges[1].messages.len(), 1);
        assert_eq!(capture.exchanges[1].status, 404);
        let report = validate(&mut schemas(), &[("t".to_owned(), "2025-11-25".to_owned(), &capture)]).unwrap();
        assert!(report.invalid.is_empty(), "{}", report.render(false));
        assert_eq!(report.revisions["2025-11-25"].messages, 3);
    }

    #[test]
    fn a_client_closing_its_stream_closes_the_servers() {
        use axum::routing::get;
        tls_provider();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        /// Tells the test when the server's stream is dropped.
        struct Dropped(Option<tokio::sync::oneshot::Sender<()>>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                if let Some(tx) = self.0.take() {
                    let _ = tx.send(());
                }
            }
        }
        let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel();
        let dropped_tx = Arc::new(Mutex::new(Some(dropped_tx)));
        // A GET stream that sends one event and then stays open, as a session's GET stream does.
        let upstream = axum::Router::new().route(
            "/mcp",
            get(move || {
                let guard = Dropped(dropped_tx.lock().unwrap().take());
                async move {
                    let first = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(
                        b"id: 0\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n",
                    ))]);
                    let forever = futures_util::stream::pending();
                    let stream = first.chain(forever).map(move |item| {
                        let _ = &guard;
                        item
                    });
                    let mut response = Response::new(Body::from_stream(stream));
                    response
                        .headers_mut()
                        .insert("content-type", "text/event-stream".parse().unwrap());
                    response
                }
            }),
        );
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let address = listener.local_addr().unwrap();
        runtime.spawn(async move { axum::serve(listener, upstream).await });
        let proxy = Proxy::start(runtime.handle(), &format!("http://{address}/mcp"), None).unwrap();
        let url = proxy.url.clone();
        runtime.block_on(async move {
            let mut response = reqwest::Client::new().get(&url).send().await.unwrap();
            let first = response.chunk().await.unwrap().unwrap();
            assert!(String::from_utf8_lossy(&first).contains("list_changed"));
            drop(response);
            tokio::time::timeout(Duration::from_secs(10), dropped_rx)
                .await
                .expect("the server's stream ends once the client closed its own")
                .unwrap();
        });
        let capture = proxy.finish();
        assert_eq!(capture.exchanges[0].messages.len(), 1);
    }
}
