//! MCP's Streamable HTTP transport, client side: [`connect`] gives an [`HttpClient`] holding the
//! [`Peer`] whose messages go to the server's MCP endpoint, one POST each — the other end of
//! [`super::router`], and the same shape as [`crate::stdio::spawn`]: requests go out through
//! [`HttpClient::peer`], requests the server sends (in a 2025-x session) are served by the
//! `Service` given to [`connect`], and [`HttpClient::shutdown`] ends it. It implements
//! [`portico_core::client::ClientTransport`], so a [`portico_core::client::Client`] runs on it.
//!
//! # Decisions
//!
//! - **One POST per message**, with `Content-Type: application/json`, `Accept:
//!   application/json, text/event-stream` and [`HttpClientConfig::headers`]. Requests are
//!   POSTed concurrently (at most [`HttpClientConfig::max_concurrent_requests`] at once; more
//!   wait for a slot), each on a task of its own; notifications and responses (answers to the
//!   server's requests) are POSTed as they come and need a `2xx`. Nothing waits on another
//!   message's POST, so an answer to a server's question is never stuck behind the request that
//!   caused it — except that `notifications/initialized` is accepted before anything after it
//!   is sent, so no request overtakes the end of the handshake. On a plain `http://` endpoint
//!   (no credentials in its URL), with no proxy in the environment and no
//!   [`HttpClientConfig::auth`], POSTs go out on a pooled HTTP/1.1 client of its own rather than
//!   through reqwest's layers ([`direct`] says why); the GET stream, `DELETE`, `https://`,
//!   proxies and authorized POSTs use reqwest.
//! - **A request's params are read once**, as it is queued, for what its headers mirror
//!   (below), with the transport's own `Peek`; a tool's arguments only when the tool has
//!   `x-mcp-header` params.
//! - **Headers come from the message.** A 2026-07-28 request (its `params._meta` names
//!   `io.modelcontextprotocol/protocolVersion`) carries `MCP-Protocol-Version` (that version),
//!   `Mcp-Method`, `Mcp-Name` (`params.name` of `tools/call` and `prompts/get`, `params.uri` of
//!   `resources/read`, `params.taskId` of the tasks extension's methods; Base64-sentinel encoded
//!   when not plain ASCII, [`portico_core::mirror::encode_value`]) and, for `tools/call`, one
//!   `Mcp-Param-{Name}` per `x-mcp-header` annotation of the tool
//!   ([`portico_core::mirror::header_values`]). The annotations are learned here, from every
//!   `tools/list` answer this transport carries (a tool whose annotations are invalid gets no
//!   headers; the client core leaves it out of the list). Other messages carry the session:
//!   `Mcp-Session-Id` and `MCP-Protocol-Version` as `initialize` negotiated them (none on
//!   `initialize` itself).
//! - **Sessions.** The `Mcp-Session-Id` of a successful `initialize` answer is kept and sent
//!   from then on; once `notifications/initialized` is accepted, the session's GET stream is
//!   opened ([`HttpClientConfig::session_stream`]; `405` means the server offers none), and
//!   nothing more is sent until the server answered that GET (at most the connect timeout), so
//!   a server request sent there right after the handshake is not lost; its messages — server
//!   requests, notifications — go to the peer; it is reopened after the
//!   `retry:` delay when it ends, with `Last-Event-ID`, until
//!   [`HttpClientConfig::max_reconnects`] attempts in a row fail. [`HttpClient::shutdown`] sends
//!   `DELETE` (a `405` or `404` answer is fine).
//! - **Answers** are one JSON object or an SSE stream, read event by event (comments and
//!   priming events skipped) and handed to the peer; the request's response ends it. Each
//!   message is at most [`HttpClientConfig::max_message_bytes`]. What cannot be a request's
//!   answer fails that request at once instead of leaving it to time out: a body or event that
//!   is not a JSON-RPC message (invalid JSON, not UTF-8, JSON that is no message) with
//!   [`portico_core::client::unreadable_error`] naming what is wrong (the client's
//!   [`portico_core::client::ClientError::Unreadable`]; the peer then cancels the request, so a
//!   session's server is told); a response with another id, a batch or a `202` with a
//!   [`portico_core::client::transport_error`].
//! - **Resumption** (sessions, 2025-11-25): a response stream that ends before its response is
//!   resumed with `GET` + `Last-Event-ID` (the last event id seen, a priming event's included)
//!   after the server's `retry:` delay ([`HttpClientConfig::default_retry`] without one, at most
//!   [`HttpClientConfig::max_retry`]), up to [`HttpClientConfig::max_reconnects`] failed
//!   attempts in a row. A stream without any event id, or a 2026-07-28 stream (not resumable in
//!   that revision), fails the request instead.
//! - **Errors.** A `4xx`/`5xx` answer whose body is a JSON-RPC error gives the request that error
//!   (so `-32022` and `-32020` keep their codes and data); another body gives a transport error
//!   with the status. `404` to a request that carried `Mcp-Session-Id` is a transport error
//!   marked session-expired (the session is forgotten; the client core reports
//!   [`portico_core::client::ClientError::SessionExpired`]).
//! - **Cancellation.** When the peer cancels a request (its caller dropped it, or it timed out),
//!   its POST is dropped: in 2026-07-28 closing the stream *is* the cancellation, and no
//!   `notifications/cancelled` is sent; in a session the notification is POSTed as well, since
//!   there a dropped connection is not a cancellation.
//! - **Authorization.** With [`HttpClientConfig::auth`], every POST, GET and DELETE carries the
//!   provider's `Authorization` and goes through [`super::auth::send`]: a `401` runs the
//!   provider's flow and the request is sent once more; a `403 insufficient_scope` steps up, a
//!   bounded number of times ([`super::auth::MAX_STEP_UPS`]).
//! - **Per-request credentials.** An [`Auth`] attached to a request
//!   ([`portico_core::client::RequestOptions::extension`]) replaces the connection's for that
//!   request's POST (and the GETs resuming its stream), 401 retry included: one connection
//!   can carry the calls of many callers, each with its own token (the gateway's token
//!   exchange). Meant for 2026-07-28 requests, which hold no session; in a session the
//!   session's own messages keep the connection's credentials.
//! - **`https://`** with the crate's `tls` feature ([`super::tls`]: rustls, the platform's
//!   roots and [`HttpClientConfig::tls`]); without it an `https://` URL is refused by
//!   [`connect`] ([`HttpClientError::TlsUnsupported`]).

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use portico_core::client::{ClientTransport, transport_error, unreadable_error};
use portico_core::message::{self, Inbound, Message};
use portico_core::mirror::{self, HeaderParam, Mirror};
use portico_core::peer::CANCELLED;
use portico_core::{
    ErrorObject, Extensions, Outbound, OutboundKind, OutboundRequest, Peer, PeerConfig, PeerHandle, RequestId, Service,
};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::{AbortHandle, JoinHandle};
use tokio_util::sync::CancellationToken;

use super::auth::{self, Auth};
use super::event_stream::{Decoder, Event, TooLarge};
use super::headers::{LAST_EVENT_ID, MCP_METHOD, MCP_NAME, MCP_PROTOCOL_VERSION, MCP_SESSION_ID, Peek};
use direct::{Answer, Direct};

mod direct;
mod h1;

/// The most of an error answer's body that is read.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// How an [`HttpClient`] connects and behaves.
#[derive(Debug, Clone)]
pub struct HttpClientConfig {
    /// The client's peer (request timeout, handler slots, …).
    pub peer: PeerConfig,
    /// Headers sent with every request (credentials, say).
    pub headers: HeaderMap,
    /// How long connecting to the server may take (default 10 s).
    pub connect_timeout: Duration,
    /// Messages the peer queues for sending before its senders wait (default 64).
    pub outbound_capacity: usize,
    /// The longest message (a JSON answer, an SSE event) accepted, in bytes (default 16 MiB).
    pub max_message_bytes: usize,
    /// Requests POSTed at once; more wait for a slot (default 64).
    pub max_concurrent_requests: usize,
    /// Failed attempts in a row to resume a stream before giving up (default 3).
    pub max_reconnects: u32,
    /// The reconnection delay when the server gave no `retry:` (default 1 s).
    pub default_retry: Duration,
    /// The longest `retry:` delay honoured (default 30 s).
    pub max_retry: Duration,
    /// Whether a session opens its GET stream once initialized (default `true`).
    pub session_stream: bool,
    /// Where every request's `Authorization` comes from, renewed after a `401` or a `403
    /// insufficient_scope` ([`super::auth`]; default none). It adds its own `Authorization`:
    /// leave that header out of [`HttpClientConfig::headers`] then.
    pub auth: Option<Auth>,
    /// Roots trusted for `https://` besides the platform's ([`super::tls`]).
    pub tls: super::tls::TlsConfig,
}

impl Default for HttpClientConfig {
    fn default() -> Self {
        Self {
            peer: PeerConfig::default(),
            headers: HeaderMap::new(),
            connect_timeout: Duration::from_secs(10),
            outbound_capacity: 64,
            max_message_bytes: 16 * 1024 * 1024,
            max_concurrent_requests: 64,
            max_reconnects: 3,
            default_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(30),
            session_stream: true,
            auth: None,
            tls: super::tls::TlsConfig::default(),
        }
    }
}

/// Why [`connect`] or [`HttpClient::shutdown`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpClientError {
    /// The URL is not an `http://` URL with a host.
    #[error("invalid MCP endpoint URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An `https://` URL, and this build has no TLS ([`super::tls`]).
    #[error("{url}: https:// needs TLS: {}", super::tls::HOW_TO_GET_TLS)]
    TlsUnsupported {
        /// The URL given.
        url: String,
    },
    /// TLS could not be set up (a bad extra root, the platform's store).
    #[error("TLS: {0}")]
    Tls(#[from] super::tls::TlsError),
    /// The HTTP client could not be built.
    #[error("building the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
    /// `DELETE` of the session failed (the client is closed all the same).
    #[error("ending the session: {0}")]
    EndSession(String),
}

/// The hasher of the client's tables: foldhash, seeded per process (their keys are our own
/// request ids and the server's tool names; SipHash cost more than the rest of a lookup).
type Hasher = foldhash::fast::RandomState;

/// What the client's tasks share.
struct Shared {
    http: reqwest::Client,
    /// The HTTP/1.1 client for the POSTs that need nothing of reqwest's, if this endpoint's can.
    direct: Option<Direct>,
    url: Url,
    config: HttpClientConfig,
    session: Mutex<Session>,
    /// The `x-mcp-header` annotations of the tools listed so far, by tool name.
    tools: Mutex<HashMap<String, Vec<HeaderParam>, Hasher>>,
    /// Requests being POSTed, by id.
    in_flight: Mutex<HashMap<RequestId, InFlight, Hasher>>,
    /// Slots for requests POSTed at once.
    requests: Arc<Semaphore>,
    /// Response streams resumed with `Last-Event-ID`.
    resumed: AtomicU64,
    /// Cancelled on shutdown: every task ends.
    stop: CancellationToken,
}

/// A session's state (2025-x).
#[derive(Debug, Default, Clone)]
struct Session {
    id: Option<String>,
    version: Option<String>,
    /// The GET stream was started.
    stream: bool,
}

/// A request being POSTed.
struct InFlight {
    task: AbortHandle,
    stateless: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A Streamable HTTP connection to an MCP endpoint, and the [`Peer`] that talks over it.
///
/// Requests go through [`HttpClient::peer`] (`client.peer().handle().request(…)`, or a
/// [`portico_core::client::Client`] built on it). [`HttpClient::shutdown`] ends the session;
/// dropping the client stops its tasks and closes the peer without telling the server.
pub struct HttpClient<S: Service> {
    peer: Peer<S>,
    shared: Arc<Shared>,
    pump: JoinHandle<()>,
}

impl<S: Service> std::fmt::Debug for HttpClient<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("url", &self.shared.url.as_str())
            .field("session", &*lock(&self.shared.session))
            .finish_non_exhaustive()
    }
}

/// Connects a [`Peer`] serving `service` (for the requests a session's server sends) to the MCP
/// endpoint at `url`. Nothing is sent yet: the first message the peer sends is the first POST.
pub async fn connect<S: Service>(
    url: &str,
    service: S,
    config: HttpClientConfig,
) -> Result<HttpClient<S>, HttpClientError> {
    let invalid = |reason: &str| HttpClientError::InvalidUrl {
        url: url.into(),
        reason: reason.into(),
    };
    let parsed = Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
    match parsed.scheme() {
        "http" => {}
        "https" if super::tls::ENABLED => {}
        "https" => return Err(HttpClientError::TlsUnsupported { url: url.into() }),
        other => return Err(invalid(&format!("the scheme must be http or https, not {other:?}"))),
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    let http = super::tls::reqwest_builder(&config.tls)?
        .connect_timeout(config.connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(HttpClientError::Build)?;
    let (outbound, queue) = mpsc::channel(config.outbound_capacity.max(1));
    // Requests come with their id, method and params: the pump reads them, not the text.
    let peer_config = PeerConfig {
        requests_beside: true,
        ..config.peer.clone()
    };
    let peer = Peer::new(service, peer_config, outbound);
    let shared = Arc::new(Shared {
        http,
        direct: Direct::new(&parsed, config.connect_timeout).map(|direct| direct.with_headers(&config.headers)),
        url: parsed,
        requests: Arc::new(Semaphore::new(config.max_concurrent_requests.max(1))),
        resumed: AtomicU64::new(0),
        config,
        session: Mutex::default(),
        tools: Mutex::default(),
        in_flight: Mutex::default(),
        stop: CancellationToken::new(),
    });
    let pump = tokio::spawn(pump(shared.clone(), peer.clone(), queue));
    Ok(HttpClient { peer, shared, pump })
}

impl<S: Service> HttpClient<S> {
    /// The peer talking to the server: `peer().handle()` sends it requests and notifications.
    pub fn peer(&self) -> &Peer<S> {
        &self.peer
    }

    /// The session id `initialize` was answered with, if any.
    pub fn session_id(&self) -> Option<String> {
        lock(&self.shared.session).id.clone()
    }

    /// The revision `initialize` negotiated, if any.
    pub fn protocol_version(&self) -> Option<String> {
        lock(&self.shared.session).version.clone()
    }

    /// How many response streams were resumed with `Last-Event-ID` so far.
    pub fn resumed_streams(&self) -> u64 {
        self.shared.resumed.load(Ordering::Relaxed)
    }

    /// Ends the connection: stops every stream and request (waiting requests fail with
    /// [`portico_core::PeerError::Closed`]), closes the peer, and ends the session with
    /// `DELETE`. The client is closed even when `DELETE` fails; the error says why it failed.
    pub async fn shutdown(self) -> Result<(), HttpClientError> {
        let session = lock(&self.shared.session).clone();
        self.shared.stop.cancel();
        self.pump.abort();
        self.peer.close();
        let Some(id) = session.id else { return Ok(()) };
        let mut delete = self
            .shared
            .http
            .delete(self.shared.url.clone())
            .headers(self.shared.config.headers.clone())
            .header(MCP_SESSION_ID, id);
        if let Some(version) = session.version {
            delete = delete.header(MCP_PROTOCOL_VERSION, version);
        }
        let grace = self.shared.config.connect_timeout;
        match tokio::time::timeout(grace, auth::send(self.shared.config.auth.as_ref(), delete)).await {
            Ok(Ok(response))
                if response.status().is_success()
                    || matches!(
                        response.status(),
                        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
                    ) =>
            {
                Ok(())
            }
            Ok(Ok(response)) => Err(HttpClientError::EndSession(format!("HTTP {}", response.status()))),
            Ok(Err(e)) => Err(HttpClientError::EndSession(e.to_string())),
            Err(_) => Err(HttpClientError::EndSession(format!("no answer within {grace:?}"))),
        }
    }
}

impl<S: Service> Drop for HttpClient<S> {
    fn drop(&mut self) {
        self.shared.stop.cancel();
        self.pump.abort();
        self.peer.close();
    }
}

impl<S: Service> ClientTransport for HttpClient<S> {
    fn handle(&self) -> PeerHandle {
        self.peer.handle().clone()
    }

    fn mirrors_params(&self) -> bool {
        true
    }

    fn close(self: Box<Self>) -> Pin<Box<dyn Future<Output = io::Result<()>> + Send>> {
        Box::pin(async move { (*self).shutdown().await.map_err(io::Error::other) })
    }
}

/// Runs `task` until it ends or the client shuts down.
fn spawn<F: Future<Output = ()> + Send + 'static>(shared: &Arc<Shared>, make: impl FnOnce() -> F) -> JoinHandle<()> {
    let stop = shared.stop.clone();
    // Boxed: an exchange's future (reqwest's request, the SSE reader) is kilobytes, and tokio
    // copies a task's future into its cell and its stage again as it runs and ends (three
    // copies, ~5k instructions a call in `cargo xtask bench client`); a box is one copy, and
    // none when the future is made in it (`portico_core::boxed`).
    let task = portico_core::boxed(make);
    // The task first: one that is done when woken (a POST answered) is done without the
    // client's shutdown being looked at again (a waiter is registered once, as it first waits).
    tokio::spawn(async move {
        tokio::select! {
            biased;
            () = task => {}
            () = stop.cancelled() => {}
        }
    })
}

/// Reads what the peer sends and POSTs it.
async fn pump<S: Service>(shared: Arc<Shared>, peer: Peer<S>, mut queue: mpsc::Receiver<Outbound>) {
    while let Some(mut out) = queue.recv().await {
        if out.kind != OutboundKind::Message {
            continue;
        }
        // A request the peer sent comes with its id, method and params: not decoded again.
        if let Some(request) = out.request.take() {
            queue_request(&shared, &peer, *request, out);
            continue;
        }
        match message::decode(&out.text) {
            Inbound::Single(Ok(Message::Request { id, method, params })) => {
                queue_request(&shared, &peer, OutboundRequest { id, method, params }, out);
            }
            Inbound::Single(Ok(Message::Notification { method, params })) if method == CANCELLED => {
                #[derive(Deserialize)]
                #[serde(rename_all = "camelCase")]
                struct Cancelled {
                    request_id: RequestId,
                }
                let cancelled = params
                    .and_then(|p| serde_json::from_str::<Cancelled>(p.get()).ok())
                    .and_then(|c| lock(&shared.in_flight).remove(&c.request_id));
                let in_session = lock(&shared.session).id.is_some();
                let tell = match cancelled {
                    Some(request) => {
                        request.task.abort();
                        !request.stateless
                    }
                    None => in_session,
                };
                if tell {
                    spawn(&shared, || post_message(shared.clone(), peer.clone(), method, out.text));
                }
            }
            // The handshake's end is sent before anything that follows it.
            Inbound::Single(Ok(Message::Notification { method, .. })) if method == "notifications/initialized" => {
                tokio::select! {
                    () = shared.stop.cancelled() => return,
                    () = post_message(shared.clone(), peer.clone(), method, out.text) => {}
                }
            }
            Inbound::Single(Ok(Message::Notification { method, .. })) => {
                spawn(&shared, || post_message(shared.clone(), peer.clone(), method, out.text));
            }
            Inbound::Single(Ok(_)) => {
                spawn(&shared, || {
                    post_message(shared.clone(), peer.clone(), "(response)".into(), out.text)
                });
            }
            _ => tracing::debug!(message = %out.text, "not sent: the peer sent something that is not one message"),
        }
    }
}

/// Starts the POST of `request` (encoded in `out`), entered in the requests in flight.
fn queue_request<S: Service>(shared: &Arc<Shared>, peer: &Peer<S>, request: OutboundRequest, out: Outbound) {
    let OutboundRequest { id, method, params } = request;
    let mirrored = Mirrored::of(&method, params.as_deref(), &out.extensions);
    let stateless = mirrored.version.is_some();
    // Credentials of this request alone, when its sender attached some.
    let auth = out.extensions.get::<Auth>().cloned();
    // The entry is made under the lock the task takes to remove it.
    let mut in_flight = lock(&shared.in_flight);
    let queued = Queued {
        id: id.clone(),
        method,
        params,
        text: out.text,
        mirrored,
    };
    let task = spawn(shared, || post_request(shared.clone(), peer.clone(), queued, auth));
    in_flight.insert(
        id,
        InFlight {
            task: task.abort_handle(),
            stateless,
        },
    );
}

/// What a request's POST mirrors of its params, read once as the request is queued: from the
/// [`Mirror`] its sender attached (the client core does, for the requests it writes), else
/// with the transport's own [`Peek`], which the server side reads requests with too.
#[derive(Debug, Default)]
struct Mirrored {
    /// `_meta["io.modelcontextprotocol/protocolVersion"]`: set in 2026-07-28 requests alone.
    version: Option<String>,
    /// What `Mcp-Name` carries: `params.name`, `params.uri` or `params.taskId`, as the method
    /// has it, when a string (read only for a 2026-07-28 request).
    name: Option<String>,
}

impl Mirrored {
    fn of(method: &str, params: Option<&RawValue>, extensions: &Extensions) -> Self {
        if let Some(mirror) = extensions.get::<Mirror>() {
            return Self {
                version: Some(mirror.version.clone()),
                name: mirror.name.clone(),
            };
        }
        let peek = Peek::of(params);
        let name = peek.named(method);
        let Some(version) = peek.version else {
            return Self::default();
        };
        Self {
            version: Some(version.into_owned()),
            name: name.and_then(portico_core::message::string_in).map(Cow::into_owned),
        }
    }
}

/// `params.arguments` of a `tools/call`, read only when the tool has `x-mcp-header` params.
fn arguments_of(params: Option<&RawValue>) -> Option<Value> {
    #[derive(Deserialize)]
    struct Params {
        arguments: Option<Value>,
    }
    params
        .and_then(|p| serde_json::from_str::<Params>(p.get()).ok())
        .and_then(|p| p.arguments)
}

/// A request the pump took from the peer, for its POST.
struct Queued {
    id: RequestId,
    method: String,
    params: Option<Box<RawValue>>,
    /// The whole message, as POSTed.
    text: String,
    mirrored: Mirrored,
}

/// POSTs a notification or a response: the server accepts it with a `2xx`.
async fn post_message<S: Service>(shared: Arc<Shared>, peer: Peer<S>, method: String, text: String) {
    let session = lock(&shared.session).clone();
    let headers = match session_headers(&session) {
        Ok(headers) => headers,
        Err(e) => {
            tracing::debug!(%method, error = %e, "a message could not be sent");
            return;
        }
    };
    match shared.send_post(shared.config.auth.as_ref(), headers, text).await {
        Ok(response) if response.status().is_success() => {
            if method == "notifications/initialized"
                && session.id.is_some()
                && shared.config.session_stream
                && let Some(answered) = open_session_stream(&shared, peer)
            {
                // This runs before anything that follows the handshake is sent (see the
                // writer), so nothing is sent before the GET stream is answered: a server may
                // send its own requests only there, and one sent while the stream is not open
                // yet would be lost (bounded by the connect timeout).
                let _ = tokio::time::timeout(shared.config.connect_timeout, answered).await;
            }
        }
        Ok(response) => tracing::debug!(%method, status = %response.status(), "the server refused a message"),
        Err(e) => tracing::debug!(%method, error = %e, "a message could not be sent"),
    }
}

/// POSTs a request and hands its answer (or the error that stands for it) to the peer; `auth`
/// replaces the connection's [`HttpClientConfig::auth`] for it.
async fn post_request<S: Service>(shared: Arc<Shared>, peer: Peer<S>, queued: Queued, auth: Option<Auth>) {
    let Queued {
        id,
        method,
        params,
        text,
        mirrored,
    } = queued;
    let exchange = Exchange {
        shared: &shared,
        peer: &peer,
        id: &id,
        method: &method,
        auth: auth.as_ref().or(shared.config.auth.as_ref()),
    };
    if let Err(error) = exchange.run(params.as_deref(), text, &mirrored).await {
        peer.receive(&message::encode_error(Some(&id), &error)).await;
    }
    lock(&shared.in_flight).remove(&id);
}

/// The headers of a message sent in `session`: its id and version, when it has them.
fn session_headers(session: &Session) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for (name, value) in [(MCP_SESSION_ID, &session.id), (MCP_PROTOCOL_VERSION, &session.version)] {
        if let Some(value) = value {
            let value = HeaderValue::from_str(value).map_err(|_| format!("{value:?} cannot be sent as {name}"))?;
            headers.insert(name, value);
        }
    }
    Ok(headers)
}

impl Shared {
    /// POSTs `body` with the headers every POST carries and `headers`, authorized by `auth`:
    /// on the direct client when it can ([`direct`]), else through reqwest.
    async fn send_post(
        &self,
        auth: Option<&Auth>,
        headers: HeaderMap,
        body: String,
    ) -> Result<Answer, Box<dyn std::error::Error + Send + Sync>> {
        if auth.is_none()
            && let Some(direct) = &self.direct
        {
            return Ok(Answer::Direct(direct.post(headers, body).await?));
        }
        Ok(Answer::Reqwest(
            auth::send(auth, self.post(body).headers(headers)).await?,
        ))
    }

    /// A POST of `body` with the headers every POST carries.
    fn post(&self, body: String) -> reqwest::RequestBuilder {
        self.http
            .post(self.url.clone())
            .headers(self.config.headers.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream")
            .body(body)
    }

    /// A GET of the session's stream, resuming after `last_event_id`.
    fn get(&self, last_event_id: Option<&str>) -> reqwest::RequestBuilder {
        let session = lock(&self.session).clone();
        let mut get = self
            .http
            .get(self.url.clone())
            .headers(self.config.headers.clone())
            .header(ACCEPT, "text/event-stream");
        if let Some(id) = session.id {
            get = get.header(MCP_SESSION_ID, id);
        }
        if let Some(version) = session.version {
            get = get.header(MCP_PROTOCOL_VERSION, version);
        }
        if let Some(last) = last_event_id {
            get = get.header(LAST_EVENT_ID, last);
        }
        get
    }

    /// The reconnection delay: the server's `retry:`, bounded.
    fn retry(&self, retry: Option<u64>) -> Duration {
        retry
            .map_or(self.config.default_retry, Duration::from_millis)
            .min(self.config.max_retry)
    }

    /// Learns what an answer tells the transport: the negotiated revision (`initialize`) and
    /// the tools' `x-mcp-header` annotations (`tools/list`).
    fn observe(&self, method: &str, answer: &str) {
        match method {
            "initialize" => {
                #[derive(Deserialize)]
                struct Answer {
                    result: Initialized,
                }
                #[derive(Deserialize)]
                struct Initialized {
                    #[serde(rename = "protocolVersion")]
                    protocol_version: String,
                }
                if let Ok(answer) = serde_json::from_str::<Answer>(answer) {
                    lock(&self.session).version = Some(answer.result.protocol_version);
                }
            }
            "tools/list" => {
                #[derive(Deserialize)]
                struct Answer {
                    result: Listed,
                }
                #[derive(Deserialize)]
                struct Listed {
                    tools: Vec<Listing>,
                }
                #[derive(Deserialize)]
                struct Listing {
                    name: String,
                    #[serde(rename = "inputSchema")]
                    input_schema: Value,
                }
                let Ok(answer) = serde_json::from_str::<Answer>(answer) else {
                    return;
                };
                let mut tools = lock(&self.tools);
                for tool in answer.result.tools {
                    match mirror::header_params(&tool.input_schema) {
                        Ok(params) if !params.is_empty() => {
                            tools.insert(tool.name, params);
                        }
                        // No annotations, or invalid ones (the client drops such a tool).
                        _ => {
                            tools.remove(&tool.name);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// Opens the session's GET stream, once; the receiver completes when the server answered the
/// first GET (whatever the answer).
fn open_session_stream<S: Service>(shared: &Arc<Shared>, peer: Peer<S>) -> Option<oneshot::Receiver<()>> {
    let mut session = lock(&shared.session);
    if session.stream || session.id.is_none() {
        return None;
    }
    session.stream = true;
    drop(session);
    let (answered, receiver) = oneshot::channel();
    spawn(shared, || session_stream(shared.clone(), peer, answered));
    Some(receiver)
}

/// An error and the errors that caused it, `: `-separated (reqwest's own message leaves out
/// why: a refused certificate, a reset connection).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        cause = e.source();
    }
    text
}

/// The headers of a 2026-07-28 request (of `version`) that mirror its body.
fn mirrored_headers(
    shared: &Shared,
    method: &str,
    version: &str,
    mirrored: &Mirrored,
    params: Option<&RawValue>,
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let mut put = |name: HeaderName, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    put(MCP_PROTOCOL_VERSION, version);
    put(MCP_METHOD, method);
    if let Some(name) = &mirrored.name {
        put(MCP_NAME, &mirror::encode_value(name));
    }
    if method == "tools/call"
        && let Some(tool) = &mirrored.name
        && let Some(header_params) = lock(&shared.tools).get(tool)
        && !header_params.is_empty()
    {
        let arguments = arguments_of(params);
        for (name, value) in mirror::header_values(header_params, arguments.as_ref()) {
            if let Ok(name) = HeaderName::from_bytes(format!("mcp-param-{name}").as_bytes()) {
                put(name, &value);
            }
        }
    }
    headers
}

/// One request's POST and its answer.
struct Exchange<'a, S: Service> {
    shared: &'a Arc<Shared>,
    peer: &'a Peer<S>,
    id: &'a RequestId,
    method: &'a str,
    /// Its credentials: the request's own, else the connection's.
    auth: Option<&'a Auth>,
}

/// How reading a response stream ended.
enum StreamEnd {
    /// The request's response came (and was handed to the peer).
    Answered,
    /// The stream ended first, after this many events.
    Ended(usize),
}

impl<S: Service> Exchange<'_, S> {
    fn error(&self, message: impl std::fmt::Display, status: Option<StatusCode>) -> ErrorObject {
        transport_error(message.to_string(), status.map(|s| s.as_u16()), false)
    }

    /// POSTs the request; `Ok` once its answer is with the peer.
    async fn run(&self, params: Option<&RawValue>, text: String, mirrored: &Mirrored) -> Result<(), ErrorObject> {
        let shared = self.shared;
        let _slot = shared
            .requests
            .acquire()
            .await
            .map_err(|_| self.error("the client is shut down", None))?;
        let stateless = mirrored.version.is_some();
        let mut headers = HeaderMap::new();
        let mut sent_session = None;
        if let Some(version) = &mirrored.version {
            headers = mirrored_headers(shared, self.method, version, mirrored, params);
        } else if self.method != "initialize" {
            let session = lock(&shared.session).clone();
            headers = session_headers(&session).map_err(|e| self.error(e, None))?;
            sent_session = session.id;
        }
        // W3C trace context: the `_meta.traceparent` a request carries goes in the header too,
        // for HTTP tracing between the two (load balancers, proxies, the server's own).
        if let Some(context) = crate::otel::TraceContext::from_params(params)
            && let Ok(value) = HeaderValue::from_str(&context.traceparent())
        {
            headers.insert(crate::otel::TRACEPARENT, value);
        }
        let response = shared
            .send_post(self.auth, headers, text)
            .await
            .map_err(|e| self.error(format_args!("POST {}: {}", shared.url, with_causes(&*e)), None))?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND
            && let Some(sent) = sent_session
        {
            let mut session = lock(&shared.session);
            if session.id.as_deref() == Some(sent.as_str()) {
                *session = Session::default();
            }
            return Err(transport_error(
                format!("the server no longer knows session {sent:?} (HTTP 404)"),
                Some(404),
                true,
            ));
        }
        if !status.is_success() {
            return Err(status_error(response).await);
        }
        if status == StatusCode::ACCEPTED || status == StatusCode::NO_CONTENT {
            return Err(self.error("the server accepted the request without answering it", Some(status)));
        }
        if self.method == "initialize"
            && let Some(id) = response.headers().get(MCP_SESSION_ID).and_then(|v| v.to_str().ok())
        {
            let mut session = lock(&shared.session);
            *session = Session {
                id: Some(id.to_string()),
                ..Session::default()
            };
        }
        match media_type(&response).as_deref() {
            Some("application/json") => self.json(response).await,
            Some("text/event-stream") => self.stream(response, stateless).await,
            other => Err(self.error(
                format_args!(
                    "an answer of type {:?}, neither JSON nor an event stream",
                    other.unwrap_or("(none)")
                ),
                Some(status),
            )),
        }
    }

    /// Hands the peer the request's answer, if `text` is it.
    async fn answer(&self, text: &str) -> Result<bool, ErrorObject> {
        match message::decode(text) {
            // Decoded once: the peer is handed the message, not the text again.
            Inbound::Single(Ok(message)) => {
                let ours = match &message {
                    Message::Response { id, .. } | Message::Error { id: Some(id), .. } => Some(id == self.id),
                    // An error about the request that could not name it.
                    Message::Error { id: None, error } => return Err(error.clone()),
                    _ => None,
                };
                match ours {
                    Some(true) => {
                        self.shared.observe(self.method, text);
                        self.peer.receive_message(message).await;
                        Ok(true)
                    }
                    Some(false) => {
                        tracing::debug!(method = self.method, "a response to another request was ignored");
                        Ok(false)
                    }
                    // A message about the request (progress, a log message, a server request of
                    // a session): the peer is told which request's stream it came on.
                    None => {
                        self.peer.receive_in(message, Some(self.id.clone())).await;
                        Ok(false)
                    }
                }
            }
            // The request's answer could not be read: it fails naming why, and is cancelled.
            Inbound::Single(Err(invalid)) => {
                tracing::debug!(method = self.method, problem = %invalid.describe(), "an unreadable answer");
                Err(unreadable_error(invalid.describe()))
            }
            Inbound::Batch(_) => Err(self.error(
                "the server sent a batch, which this request cannot be answered with",
                None,
            )),
        }
    }

    async fn json(&self, mut response: Answer) -> Result<(), ErrorObject> {
        let max = self.shared.config.max_message_bytes;
        let body = read_body(&mut response, max).await.map_err(|e| self.error(e, None))?;
        let text = String::from_utf8(body)
            .map_err(|e| unreadable_error(format!("invalid JSON: the answer is not UTF-8 ({e})")))?;
        if self.answer(&text).await? {
            Ok(())
        } else {
            Err(self.error("the JSON answer is not the request's response", None))
        }
    }

    /// Reads the response stream to the response, resuming it when it ends first.
    async fn stream(&self, mut response: Answer, stateless: bool) -> Result<(), ErrorObject> {
        let shared = self.shared;
        let mut decoder = Decoder::new(shared.config.max_message_bytes, None);
        let mut failures = 0u32;
        loop {
            match self.read(&mut response, &mut decoder).await? {
                StreamEnd::Answered => {
                    // The stream ends after the response: its connection serves again.
                    response.release();
                    return Ok(());
                }
                StreamEnd::Ended(events) if events > 0 => failures = 0,
                StreamEnd::Ended(_) => {}
            }
            let Some(last) = decoder.last_event_id.clone() else {
                return Err(self.error(
                    "the response stream ended before the response, without an event id to resume from",
                    None,
                ));
            };
            if stateless || lock(&shared.session).id.is_none() {
                return Err(self.error(
                    "the response stream ended before the response (streams without a session cannot be resumed)",
                    None,
                ));
            }
            response = loop {
                failures += 1;
                if failures > shared.config.max_reconnects {
                    return Err(self.error(
                        format_args!(
                            "the response stream could not be resumed ({} attempts)",
                            shared.config.max_reconnects
                        ),
                        None,
                    ));
                }
                tokio::time::sleep(shared.retry(decoder.retry)).await;
                match auth::send(self.auth, shared.get(Some(&last)))
                    .await
                    .map(Answer::Reqwest)
                {
                    Ok(r) if r.status() == StatusCode::NOT_FOUND => {
                        return Err(transport_error(
                            "the session expired while the answer was awaited (HTTP 404)",
                            Some(404),
                            true,
                        ));
                    }
                    Ok(r) if r.status().is_success() && media_type(&r).as_deref() == Some("text/event-stream") => {
                        shared.resumed.fetch_add(1, Ordering::Relaxed);
                        break r;
                    }
                    Ok(r) if r.status() == StatusCode::METHOD_NOT_ALLOWED => {
                        return Err(self.error(
                            "the response stream ended and the server offers no GET to resume it",
                            Some(r.status()),
                        ));
                    }
                    Ok(r) => tracing::debug!(status = %r.status(), "resuming a response stream failed"),
                    Err(e) => tracing::debug!(error = %e, "resuming a response stream failed"),
                }
            };
            decoder =
                Decoder::new(shared.config.max_message_bytes, decoder.last_event_id.take()).retrying(decoder.retry);
        }
    }

    /// Reads events until the response or the end of the stream.
    async fn read(&self, response: &mut Answer, decoder: &mut Decoder) -> Result<StreamEnd, ErrorObject> {
        let mut events: Vec<Event> = Vec::new();
        let mut count = 0;
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => return Ok(StreamEnd::Ended(count)),
                Err(e) => {
                    tracing::debug!(method = self.method, error = %e, "a response stream broke");
                    return Ok(StreamEnd::Ended(count));
                }
            };
            decoder
                .push(&chunk, &mut events)
                .map_err(|TooLarge(max)| self.error(format_args!("an event longer than {max} bytes"), None))?;
            for event in events.drain(..) {
                count += 1;
                if event.name != "message" || event.data.trim().is_empty() {
                    continue;
                }
                if self.answer(&event.data).await? {
                    return Ok(StreamEnd::Answered);
                }
            }
        }
    }
}

/// The session's GET stream: the server's own requests and notifications, handed to the peer;
/// reopened (with `Last-Event-ID`) when it ends, until it is refused or fails too often in a row.
async fn session_stream<S: Service>(shared: Arc<Shared>, peer: Peer<S>, answered: oneshot::Sender<()>) {
    let mut answered = Some(answered);
    let mut last: Option<String> = None;
    let mut retry = None;
    let mut failures = 0u32;
    // The stream of this session only: once the server forgets it (and the client starts a
    // new one, which opens its own stream), this one ends.
    let session = lock(&shared.session).id.clone();
    loop {
        if session.is_none() || lock(&shared.session).id != session {
            return;
        }
        let answer = auth::send(shared.config.auth.as_ref(), shared.get(last.as_deref()))
            .await
            .map(Answer::Reqwest);
        if let Some(answered) = answered.take() {
            let _ = answered.send(());
        }
        match answer {
            Ok(response)
                if response.status().is_success() && media_type(&response).as_deref() == Some("text/event-stream") =>
            {
                let mut decoder = Decoder::new(shared.config.max_message_bytes, last.take()).retrying(retry);
                let events = read_session_events(&peer, response, &mut decoder).await;
                last = decoder.last_event_id.take();
                retry = decoder.retry;
                if events > 0 {
                    failures = 0;
                } else {
                    failures += 1;
                }
            }
            Ok(response)
                if matches!(
                    response.status(),
                    StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST
                ) =>
            {
                tracing::debug!(status = %response.status(), "the server offers no session stream");
                return;
            }
            Ok(response) => {
                tracing::debug!(status = %response.status(), "opening the session stream failed");
                failures += 1;
            }
            Err(e) => {
                tracing::debug!(error = %e, "opening the session stream failed");
                failures += 1;
            }
        }
        if failures > shared.config.max_reconnects {
            return;
        }
        tokio::time::sleep(shared.retry(retry)).await;
    }
}

/// Hands a session stream's messages to the peer until it ends; how many events it carried.
async fn read_session_events<S: Service>(peer: &Peer<S>, mut response: Answer, decoder: &mut Decoder) -> usize {
    let mut events: Vec<Event> = Vec::new();
    let mut count = 0;
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return count,
            Err(e) => {
                tracing::debug!(error = %e, "the session stream broke");
                return count;
            }
        };
        if decoder.push(&chunk, &mut events).is_err() {
            tracing::debug!("the session stream sent an event longer than the limit; it is reopened");
            return count;
        }
        for event in events.drain(..) {
            count += 1;
            if event.name == "message" && !event.data.trim().is_empty() {
                // What is not a message is answered by the peer, or dropped (a broken response).
                peer.receive(&event.data).await;
            }
        }
    }
}

/// The media type of an answer, lower-case, without parameters.
fn media_type(response: &Answer) -> Option<String> {
    let value = response.headers().get(CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
}

/// Reads a whole body, at most `max` bytes.
async fn read_body(response: &mut Answer, max: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| format!("reading the answer: {e}"))? {
        if body.len() + chunk.len() > max {
            return Err(format!("the answer is longer than {max} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The error a refused request gets: the JSON-RPC error of the body, else one naming the status.
async fn status_error(mut response: Answer) -> ErrorObject {
    let status = response.status();
    let body = read_body(&mut response, MAX_ERROR_BODY).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&body);
    if let Inbound::Single(Ok(Message::Error { error, .. })) = message::decode(&text) {
        return error;
    }
    let snippet: String = text.chars().take(200).collect();
    let detail = if snippet.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", snippet.trim())
    };
    transport_error(format!("HTTP {status}{detail}"), Some(status.as_u16()), false)
}
