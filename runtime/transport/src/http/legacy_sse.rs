//! The legacy HTTP+SSE transport of revision 2024-11-05, server side: `GET /sse` opens a
//! session's event stream, whose first event names the URL the client POSTs its messages to.
//!
//! Clients written before Streamable HTTP (2025-03-26) still speak it. It is a [`Router`] of its
//! own, to serve alone or merge with the Streamable HTTP router on one listener:
//!
//! ```no_run
//! use portico_core::server::Server;
//! use portico_transport::http::legacy_sse::{self, LegacySseConfig};
//! use portico_transport::http::{self, HttpConfig};
//!
//! # async fn run() -> std::io::Result<()> {
//! let server = Server::builder("demo", "1.0.0").build();
//! let config = HttpConfig::default();
//! let legacy = LegacySseConfig::from_http(&config);
//! let shutdown = config.shutdown.clone();
//! let (a, b) = (server.clone(), server);
//! let app = http::router(move || a.connection(), config)
//!     .merge(legacy_sse::router(move || b.connection(), legacy));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! http::serve(listener, app, shutdown.cancelled_owned()).await
//! # }
//! ```
//!
//! # The rules
//!
//! - **`GET` [`LegacySseConfig::sse_path`]** (default `/sse`) starts a session: a fresh service
//!   from `make_service` and its peer, and a `text/event-stream` whose first event is
//!   `event: endpoint` with `data: /messages?sessionId=<id>` (the id is 128 random bits in hex;
//!   the path is [`LegacySseConfig::endpoint`], by default [`LegacySseConfig::messages_path`]).
//!   Every message the server sends — answers, notifications, its own requests (sampling,
//!   elicitation, roots) — follows as `event: message` with the JSON as `data`. A comment line
//!   goes out every [`LegacySseConfig::sse_keepalive`]. At most
//!   [`LegacySseConfig::max_sessions`] are open; beyond that `503`.
//! - **`POST` [`LegacySseConfig::messages_path`]`?sessionId=<id>`** carries one JSON-RPC
//!   message (or, where the peer accepts them, a batch) and is answered `202 Accepted` with no
//!   body once the message is handed to the session's peer; what the server answers goes on
//!   the stream. Refused: no `sessionId` `400`; an unknown one `404` (the stream closed, or it
//!   never existed); a `Content-Type` other than JSON `415`; a body over
//!   [`LegacySseConfig::max_body_bytes`] `413`; a body that is not JSON `400` with `-32700`;
//!   JSON that is not a message `400` with `-32600`.
//! - **The stream is the session.** When the client closes it (or the endpoint shuts down),
//!   the session ends: its peer is closed, which cancels the handlers still running, and its
//!   id answers `404`. There is no idle timeout: an open stream is a live session, and
//!   keep-alives find out when its client is gone.
//! - **Host and Origin** of both requests pass [`LegacySseConfig::allowed_hosts`] and
//!   [`LegacySseConfig::allowed_origins`] first (`403`), as the 2024-11-05 transport requires
//!   ("Servers MUST validate the Origin header").
//!
//! Every refusal has a JSON-RPC error object as its body. The service decides the revision:
//! `initialize` negotiates it as on any session (a 2025-x client on this transport gets its
//! own), and a request with 2026-07-28 `_meta` is served statelessly, as on stdio.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State as Extract};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use portico_core::message::{self, Inbound};
use portico_core::{ErrorObject, Outbound, Peer, PeerConfig, Service};
use tokio::sync::mpsc;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::endpoint::read_body;
use super::error::HttpError;
use super::guard::Guard;
use super::session::new_session_id;
use super::{Carry, DynPeer, HttpConfig, MakePeer, sse, tick};

/// The configuration of a legacy HTTP+SSE endpoint.
#[derive(Debug, Clone)]
pub struct LegacySseConfig {
    /// The path that opens a session's event stream (default `/sse`).
    pub sse_path: String,
    /// The path messages are POSTed to (default `/messages`).
    pub messages_path: String,
    /// What the `endpoint` event names, before `?sessionId=…`. `None` (the default): the
    /// messages path as routed. Set it when the router is nested under a prefix or served
    /// behind a proxy that rewrites paths (`/legacy/messages`); it may be an absolute URL.
    pub endpoint: Option<String>,
    /// Sessions (open streams) at once; a `GET` beyond that is `503` (default 10 000).
    pub max_sessions: usize,
    /// The largest POST body accepted; larger is `413` (default 4 MiB).
    pub max_body_bytes: usize,
    /// `Host` values accepted besides the loopback names; as [`HttpConfig::allowed_hosts`].
    pub allowed_hosts: Option<Vec<String>>,
    /// `Origin` values accepted besides loopback origins; as [`HttpConfig::allowed_origins`].
    pub allowed_origins: Option<Vec<String>>,
    /// The peer of each session.
    pub peer: PeerConfig,
    /// How often an idle stream gets a comment line (default 15 s; `None`: never).
    pub sse_keepalive: Option<Duration>,
    /// Messages queued for one stream before the handlers sending them wait (default 64).
    pub outbound_capacity: usize,
    /// Cancelled to shut the endpoint down: every stream ends and every session closes; later
    /// requests get `503`. Give [`super::serve`] the same token.
    pub shutdown: CancellationToken,
    /// Which values of each POST's extensions the handlers of the requests it carries see
    /// (default: none); see [`Carry`]. The `GET` that opened the stream carries nothing: each
    /// message is its POST's.
    pub carry: Carry,
}

impl Default for LegacySseConfig {
    fn default() -> Self {
        Self {
            sse_path: "/sse".into(),
            messages_path: "/messages".into(),
            endpoint: None,
            max_sessions: 10_000,
            max_body_bytes: 4 * 1024 * 1024,
            allowed_hosts: Some(Vec::new()),
            allowed_origins: Some(Vec::new()),
            peer: PeerConfig::default(),
            sse_keepalive: Some(Duration::from_secs(15)),
            outbound_capacity: 64,
            shutdown: CancellationToken::new(),
            carry: Carry::default(),
        }
    }
}

impl LegacySseConfig {
    /// The defaults, with what it shares with a Streamable HTTP endpoint taken from `http`:
    /// session and body limits, the Host and Origin allow-lists, the peer, keep-alives, the
    /// shutdown token and what is carried from HTTP requests — for serving both on one
    /// listener.
    pub fn from_http(http: &HttpConfig) -> Self {
        Self {
            max_sessions: http.max_sessions,
            max_body_bytes: http.max_body_bytes,
            allowed_hosts: http.allowed_hosts.clone(),
            allowed_origins: http.allowed_origins.clone(),
            peer: http.peer.clone(),
            sse_keepalive: http.sse_keepalive,
            shutdown: http.shutdown.clone(),
            carry: http.carry.clone(),
            ..Self::default()
        }
    }
}

/// What the endpoint's handlers share.
struct Shared {
    config: LegacySseConfig,
    guard: Guard,
    make_peer: Box<MakePeer>,
    /// The open sessions' peers, by id. Never locked across an `.await`.
    sessions: Mutex<HashMap<String, Arc<dyn DynPeer>>>,
}

impl Shared {
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<dyn DynPeer>>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A legacy HTTP+SSE endpoint: its [`Router`] and its sessions.
#[derive(Clone)]
pub struct LegacySse {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for LegacySse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegacySse")
            .field("config", &self.shared.config)
            .field("open_sessions", &self.open_sessions())
            .finish_non_exhaustive()
    }
}

impl LegacySse {
    /// An endpoint serving each session with a service from `make_service` (for a
    /// [`portico_core::server::Server`]: `move || server.connection()`).
    pub fn new<F, S>(make_service: F, config: LegacySseConfig) -> Self
    where
        F: Fn() -> S + Send + Sync + 'static,
        S: Service,
    {
        // The stream is the connection: no stream of a request to end early.
        let peer_config = portico_core::PeerConfig {
            stream_control: false,
            ..config.peer.clone()
        };
        let make_peer = Box::new(move |outbound: mpsc::Sender<Outbound>| {
            Arc::new(Peer::new(make_service(), peer_config.clone(), outbound)) as Arc<dyn DynPeer>
        });
        let shared = Shared {
            guard: Guard::new(config.allowed_hosts.as_deref(), config.allowed_origins.as_deref()),
            make_peer,
            sessions: Mutex::new(HashMap::new()),
            config,
        };
        Self {
            shared: Arc::new(shared),
        }
    }

    /// The router: `GET` at [`LegacySseConfig::sse_path`], `POST` at
    /// [`LegacySseConfig::messages_path`].
    pub fn router(&self) -> Router {
        let config = &self.shared.config;
        Router::new()
            .route(&config.sse_path, get(open).fallback(not_get))
            .route(&config.messages_path, post(message).fallback(not_post))
            .with_state(self.shared.clone())
    }

    /// How many sessions (streams) are open.
    pub fn open_sessions(&self) -> usize {
        self.shared.sessions().len()
    }

    /// Shuts the endpoint down (cancels [`LegacySseConfig::shutdown`]).
    pub fn shutdown(&self) {
        self.shared.config.shutdown.cancel();
    }
}

/// The router of a legacy HTTP+SSE endpoint serving `make_service`'s services with `config`.
pub fn router<F, S>(make_service: F, config: LegacySseConfig) -> Router
where
    F: Fn() -> S + Send + Sync + 'static,
    S: Service,
{
    LegacySse::new(make_service, config).router()
}

type Extracted = Extract<Arc<Shared>>;

/// Any method but `GET` on the stream's path.
async fn not_get() -> Response {
    HttpError::method_not_allowed("GET", "the SSE path takes GET only").into_response()
}

/// Any method but `POST` on the messages path.
async fn not_post() -> Response {
    HttpError::method_not_allowed("POST", "the messages path takes POST only").into_response()
}

/// `GET`: a new session and its stream.
async fn open(Extract(shared): Extracted, request: Request) -> Response {
    open_session(&shared, request).unwrap_or_else(IntoResponse::into_response)
}

/// `POST`: one message for a session.
async fn message(Extract(shared): Extracted, request: Request) -> Response {
    match deliver(&shared, request).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(e) => e.into_response(),
    }
}

fn refuse_after_shutdown(shared: &Shared) -> Result<(), HttpError> {
    if shared.config.shutdown.is_cancelled() {
        return Err(HttpError::unavailable("the server is shutting down"));
    }
    Ok(())
}

fn open_session(shared: &Arc<Shared>, request: Request) -> Result<Response, HttpError> {
    let config = &shared.config;
    let (parts, _) = request.into_parts();
    shared.guard.check(&parts)?;
    refuse_after_shutdown(shared)?;
    let full = || {
        HttpError::unavailable(format!(
            "{} sessions are open, the most this server accepts",
            config.max_sessions
        ))
    };
    // Checked before a service is made for nothing, and again (under the lock) as it is added.
    if shared.sessions().len() >= config.max_sessions {
        return Err(full());
    }
    let id = new_session_id()?;
    let (tx, rx) = mpsc::channel(config.outbound_capacity.max(1));
    let peer = (shared.make_peer)(tx);
    {
        let mut sessions = shared.sessions();
        if sessions.len() >= config.max_sessions {
            return Err(full());
        }
        sessions.insert(id.clone(), peer.clone());
    }
    let session = Session {
        shared: shared.clone(),
        id,
        peer,
    };
    let endpoint = config.endpoint.as_deref().unwrap_or(&config.messages_path);
    let first = event("endpoint", &format!("{endpoint}?sessionId={}", session.id));
    let keepalive = config.sse_keepalive.filter(|p| !p.is_zero()).map(|period| {
        let mut interval = tokio::time::interval_at(Instant::now() + period, period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        interval
    });
    let stream = Stream {
        first: Some(first),
        rx,
        keepalive,
        closed: config.shutdown.clone(),
        _session: session,
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    let body = Body::from_stream(futures_util::stream::unfold(stream, next_chunk));
    Ok((StatusCode::OK, headers, body).into_response())
}

/// An open session: ends (leaves the registry, its peer closed) when its stream is dropped.
struct Session {
    shared: Arc<Shared>,
    id: String,
    peer: Arc<dyn DynPeer>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.shared.sessions().remove(&self.id);
        self.peer.close();
    }
}

/// The state of a session's event stream.
struct Stream {
    /// The `endpoint` event, until sent.
    first: Option<Bytes>,
    rx: mpsc::Receiver<Outbound>,
    keepalive: Option<Interval>,
    closed: CancellationToken,
    _session: Session,
}

async fn next_chunk(mut stream: Stream) -> Option<(Result<Bytes, Infallible>, Stream)> {
    if let Some(first) = stream.first.take() {
        return Some((Ok(first), stream));
    }
    let chunk = tokio::select! {
        biased;
        message = stream.rx.recv() => event("message", &message?.text),
        () = stream.closed.cancelled() => return None,
        () = tick(&mut stream.keepalive) => sse::keepalive(),
    };
    Some((Ok(chunk), stream))
}

/// One SSE event named `name`. A line break inside `data` (JSON may hold one as whitespace,
/// never inside a string) starts another `data:` line, which the client joins back.
fn event(name: &str, data: &str) -> Bytes {
    let mut out = String::with_capacity(data.len() + name.len() + 16);
    out.push_str("event: ");
    out.push_str(name);
    out.push('\n');
    for line in data.split(['\r', '\n']).filter(|l| !l.is_empty()) {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

/// Hands a POSTed message to its session's peer.
async fn deliver(shared: &Shared, request: Request) -> Result<(), HttpError> {
    let (parts, body) = request.into_parts();
    shared.guard.check(&parts)?;
    refuse_after_shutdown(shared)?;
    let Some(id) = session_id(parts.uri.query()) else {
        return Err(HttpError::client(
            StatusCode::BAD_REQUEST,
            "missing `sessionId` query parameter: POST to the URL of the stream's `endpoint` event",
        ));
    };
    let Some(peer) = shared.sessions().get(id).cloned() else {
        return Err(HttpError::client(
            StatusCode::NOT_FOUND,
            format!(
                "no such session: its stream closed, or it never existed; open a new one with GET {}",
                shared.config.sse_path
            ),
        ));
    };
    check_content_type(&parts.headers)?;
    let body = read_body(body, &parts.headers, shared.config.max_body_bytes).await?;
    let text = std::str::from_utf8(&body).map_err(|e| {
        HttpError::new(
            StatusCode::BAD_REQUEST,
            ErrorObject::parse_error(format!("the body is not UTF-8: {e}")),
        )
    })?;
    if let Inbound::Single(Err(invalid)) = message::decode(text) {
        return Err(HttpError::new(StatusCode::BAD_REQUEST, invalid.error).with_id(invalid.id));
    }
    peer.receive(text, shared.config.carry.copy(&parts.extensions)).await;
    Ok(())
}

/// The `sessionId` of a query string.
fn session_id(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("sessionId="))
        .filter(|id| !id.is_empty())
}

/// `415` unless the body is declared JSON (or not declared at all).
fn check_content_type(headers: &HeaderMap) -> Result<(), HttpError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(HttpError::client(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("a message is application/json, not {essence:?}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_named_and_keep_json_on_data_lines() {
        assert_eq!(
            &event("endpoint", "/messages?sessionId=ab")[..],
            b"event: endpoint\ndata: /messages?sessionId=ab\n\n"
        );
        assert_eq!(
            &event("message", "{\r\n \"a\": 1\n}")[..],
            b"event: message\ndata: {\ndata:  \"a\": 1\ndata: }\n\n"
        );
    }

    #[test]
    fn session_ids_are_read_from_the_query() {
        assert_eq!(session_id(Some("sessionId=abc")), Some("abc"));
        assert_eq!(session_id(Some("x=1&sessionId=abc&y=2")), Some("abc"));
        assert_eq!(session_id(Some("sessionId=")), None);
        assert_eq!(session_id(Some("session=abc")), None);
        assert_eq!(session_id(None), None);
    }
}
