//! MCP's Streamable HTTP transport, server side: one endpoint (`/mcp`: POST, GET, DELETE) on
//! axum that serves 2026-07-28 clients statelessly and 2025-x clients in `Mcp-Session-Id`
//! sessions, beside each other.
//!
//! ```no_run
//! use portico_core::server::Server;
//! use portico_transport::http::{HttpConfig, router, serve};
//!
//! # async fn run() -> std::io::Result<()> {
//! let server = Server::builder("demo", "1.0.0").build();
//! let config = HttpConfig::default();
//! let shutdown = config.shutdown.clone();
//! let app = router(move || server.connection(), config);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! serve(listener, app, shutdown.cancelled_owned()).await
//! # }
//! ```
//!
//! # How a POST is served
//!
//! The body is read (at most [`HttpConfig::max_body_bytes`], else `413`) and decoded with
//! [`portico_core::message::decode`] (not JSON: `400` with `-32700`; not a message: `400` with
//! `-32600`). The headers are checked after that, so an error about a request carries its `id`.
//! Then, by what it is:
//!
//! - A request whose `params._meta` carries `io.modelcontextprotocol/protocolVersion` is a
//!   **2026-07-28** request. In this order: the headers mirroring the body must match it —
//!   `MCP-Protocol-Version`, `Mcp-Method`, and `Mcp-Name` (`params.name` of `tools/call` and
//!   `prompts/get`, `params.uri` of `resources/read`, `params.taskId` of the tasks extension's
//!   `tasks/get`/`update`/`cancel`, Base64-sentinel values decoded) — else
//!   `400` with `-32020` (missing headers count as a mismatch, as the revision requires, unless
//!   [`HttpConfig::require_request_headers`] is off); the version must be supported (`400` with
//!   `-32022`, its data naming the supported versions); `_meta` must declare the client's
//!   capabilities (`400` with `-32602`); and the `Mcp-Param-{Name}` headers must match the
//!   arguments a tool annotates with `x-mcp-header` (`400` with `-32020`; the service decides,
//!   through [`portico_core::Service::check_mirrored`], since only it knows its tools). The
//!   request is served by a service of its own (`make_service()`), and no session exists;
//!   `Mcp-Session-Id` is ignored, as the revision says. Closing the response stream cancels the
//!   request. An error answer in JSON gets the status the revision gives it: `-32601` is `404`;
//!   `-32020`, `-32021`, `-32022` are `400`.
//! - A request whose `MCP-Protocol-Version` is 2026-07-28 but whose `_meta` has no version is
//!   `400` with `-32602` (the version is a required member of that revision's `_meta`).
//! - `initialize` without `Mcp-Session-Id` starts a **session** (revisions up to 2025-11-25): a
//!   fresh service and peer, and a 128-bit random id returned in `Mcp-Session-Id` with the
//!   successful answer (a failed `initialize` leaves no session). At most
//!   [`HttpConfig::max_sessions`] are open (`503` beyond); one idle for
//!   [`HttpConfig::session_idle_timeout`] is closed by a reaper task.
//! - Any other message must name its session: no `Mcp-Session-Id` is `400`, an unknown or
//!   expired one `404`. Requests are answered on their POST; notifications and responses (to
//!   the server's own requests) are `202`.
//! - A **batch** (a JSON array) is accepted only in a session that negotiated 2025-03-26, the
//!   one revision with batches ([`portico_core::Service::accepts_batches`]); elsewhere it is
//!   `400` with `-32600`. Its requests share one answer: a JSON array of their responses, or a
//!   stream ending with it. A batch without requests is `202`, or `400` with the errors of its
//!   unreadable elements (none of it is then delivered).
//!
//! `MCP-Protocol-Version`, when present, must be a supported revision (`400` with `-32022`
//! otherwise). Every request's `Host` and `Origin` pass [`HttpConfig::allowed_hosts`] and
//! [`HttpConfig::allowed_origins`] first (`403`): by default only loopback names, which protects
//! a local server from DNS rebinding. Every error answer has a JSON-RPC error object as its
//! body, with the request's `id` when one was read and no `id` otherwise (the spec's "error
//! response that has no id"; 2025-11-25 and 2026-07-28 allow no `null` id).
//!
//! # How a request is answered
//!
//! The request's peer sends its answer and everything its handler sends while running
//! (progress, log messages, in a session server→client requests), each tagged with the request
//! ([`portico_core::Outbound::related`]). A session's peer hands each message to the stream of
//! the request it belongs to itself, from the task that sent it (the session's
//! [`portico_core::Outlet`]); messages of the session as a whole go to its GET stream (or a
//! bounded backlog until one opens). A stateless request's peer serves that request alone, so
//! it writes to its response's queue (the `queue` module: one small queue per response, no tokio channel).
//!
//! A POST's request starts in the connection's task: the peer hands its handling back
//! ([`portico_core::Peer::serve_message_with`], [`portico_core::Peer::serve_alone`]) and the
//! endpoint polls it once. A call that answers at once (most do) is then served in one poll of
//! the connection, with no spawn and no wake-up in between; one that waits (on I/O, a timer,
//! the client) goes on in a task of its own, so that its wake-ups do not go through the
//! connection's futures. (Polling every handler in the response instead was measured: it made
//! the gateway, whose handlers wait on their upstreams, slower.)
//!
//! The answer is one `application/json` object or a `text/event-stream` ending with the
//! response; [`ResponseMode`] says which. By default a request with a `progressToken` (or
//! `subscriptions/listen`) streams at once; any other waits for its first message and answers
//! JSON when that is the response, SSE when something comes first. This needs no guess about
//! what a handler will send, and a plain call costs no SSE framing. In a session, a method of
//! [`HttpConfig::stream_methods`] also streams once it has run for
//! [`HttpConfig::stream_after`] without a message (at once by default), so that a long call
//! has a primed, resumable stream while a quick one is still one JSON object.
//!
//! SSE events carry ids `{stream}-{seq}`, unique within a session and naming their stream;
//! streams send a comment as keep-alive every [`HttpConfig::sse_keepalive`] and carry
//! `X-Accel-Buffering: no`.
//!
//! # What handlers learn about the HTTP request
//!
//! Nothing, by default: a handler sees the MCP request. Values that layers in front of the
//! endpoint put in the HTTP request's extensions (an authenticated principal) reach the
//! handlers of the MCP requests it carries when the embedder names their types in
//! [`HttpConfig::carry`] ([`Carry`]): each POST's go to its requests, a WebSocket upgrade's to
//! every request of the socket; handlers read them with
//! [`portico_core::server::Context::extension`].
//!
//! # Resuming streams (sessions)
//!
//! A session's SSE streams can be resumed (2025-11-25, SEP-1699). A POST stream of a client
//! speaking 2025-11-25 starts with a priming event (its id, empty data) and the
//! [`HttpConfig::sse_retry`] hint, so a client that loses the connection can come back from the
//! start. A handler may end its stream before answering
//! ([`portico_core::server::Context::close_stream`]) to free the connection during a long call:
//! what it sends afterwards is numbered and kept, and the client fetches it with a GET carrying
//! `Last-Event-ID`. The same happens when a client's connection drops: the request goes on, and
//! its messages wait for the client to resume. How streams are logged and bounded is in the
//! `session` module. Stateless (2026-07-28) streams are not resumable: closing one cancels its
//! request, as that revision says.
//!
//! # GET and DELETE
//!
//! GET with `Mcp-Session-Id` opens the session's stream (one at a time: a second is `409`),
//! first sending what the session sent while no GET was open; with `Last-Event-ID` it resumes
//! the stream that id names (see above). DELETE ends the session (`204`). Without a session id both are `405`, which is what a
//! 2026-07-28 client expects and tells a sessionless client there is no stream.
//!
//! A GET carrying `Upgrade: websocket` is not a stream request but MCP over WebSocket, at the
//! same path ([`ws`]); the legacy HTTP+SSE transport of 2024-11-05 is a router of its own to
//! merge beside this one ([`legacy_sse`]).
//!
//! The client ends of those two: [`ws_client::connect`] (MCP over WebSocket) and
//! [`legacy_sse_client::connect`] (legacy HTTP+SSE), each giving a client that holds the
//! [`Peer`] talking to the server, shaped like [`crate::stdio::spawn`]'s.
//!
//! # Not yet
//!
//! HTTP/2. A session client that accepts only `application/json` cannot receive the
//! server→client requests of its request: they are dropped, and the handler's request times
//! out. Timeouts on reading request bodies are the server's (a tower layer).

pub mod auth;
mod carry;
pub mod client;
mod config;
mod endpoint;
mod error;
mod event_stream;
mod front;
mod guard;
mod headers;
pub mod legacy_sse;
pub mod legacy_sse_client;
mod queue;
mod reply;
mod serve;
mod session;
mod sse;
pub mod tls;
pub mod ws;
pub mod ws_client;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::Router;
use axum::routing::post;
use portico_core::message::Message;
use portico_core::mirror::MirroredParam;
use portico_core::server::ReadAhead;
use portico_core::{
    ErrorObject, Extensions, Handling, Outbound, Outlet, Peer, PeerConfig, PeerHandle, RequestId, Service,
};
use serde_json::value::RawValue;
use tokio::sync::{Semaphore, mpsc};

pub use carry::Carry;
pub use config::{HttpConfig, ResponseMode};
pub use headers::{HEADER_MISMATCH, LAST_EVENT_ID, MCP_METHOD, MCP_NAME, MCP_PROTOCOL_VERSION, MCP_SESSION_ID};
pub use serve::{serve, serve_endpoint, serve_service};
pub use session::Sessions;

/// Completes at the next tick of `ticker` (keep-alives, pings), never when there is none.
pub(crate) async fn tick(ticker: &mut Option<tokio::time::Interval>) {
    match ticker {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// A peer with its service type erased, so the endpoint's code is not generic.
pub(crate) trait DynPeer: Send + Sync + 'static {
    /// [`Peer::receive_with`].
    fn receive<'a>(&'a self, frame: &'a str, extensions: Extensions) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
    /// [`Peer::serve_message_with`]: a request's handling, for the response to poll.
    fn serve_message(
        &self,
        message: Message,
        extensions: Extensions,
    ) -> Pin<Box<dyn Future<Output = Option<Handling>> + Send + '_>>;
    /// [`Peer::serve_alone_read_ahead`]: the one request of a peer made for it, for the
    /// response to poll.
    fn serve_alone(
        &self,
        id: RequestId,
        method: String,
        params: Option<Box<RawValue>>,
        extensions: Extensions,
        read_ahead: Option<Box<ReadAhead>>,
    ) -> Option<Handling>;
    /// [`Peer::close`].
    fn close(&self);
    /// The handle of the connection as a whole.
    fn handle(&self) -> PeerHandle;
    /// [`Service::check_mirrored`].
    fn check_mirrored(
        &self,
        method: &str,
        params: Option<&RawValue>,
        read_ahead: Option<&ReadAhead>,
        sent: &[MirroredParam<'_>],
        extensions: &Extensions,
    ) -> Result<(), ErrorObject>;
    /// [`Service::accepts_batches`].
    fn accepts_batches(&self) -> bool;
    /// [`Service::session_started`].
    fn session_started(&self, id: &str);
    /// [`Service::restore_session`], on this peer.
    fn restore_session<'a>(&'a self, id: &'a str) -> Pin<Box<dyn Future<Output = Option<String>> + Send + 'a>>;
    /// [`Service::session_ended`].
    fn session_ended(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

impl<S: Service> DynPeer for Peer<S> {
    fn receive<'a>(&'a self, frame: &'a str, extensions: Extensions) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(Peer::receive_with(self, frame, extensions))
    }

    fn serve_message(
        &self,
        message: Message,
        extensions: Extensions,
    ) -> Pin<Box<dyn Future<Output = Option<Handling>> + Send + '_>> {
        Box::pin(Peer::serve_message_with(self, message, extensions))
    }

    fn serve_alone(
        &self,
        id: RequestId,
        method: String,
        params: Option<Box<RawValue>>,
        extensions: Extensions,
        read_ahead: Option<Box<ReadAhead>>,
    ) -> Option<Handling> {
        Peer::serve_alone_read_ahead(self, id, method, params, extensions, read_ahead)
    }

    fn close(&self) {
        Peer::close(self);
    }

    fn handle(&self) -> PeerHandle {
        Peer::handle(self).clone()
    }

    fn check_mirrored(
        &self,
        method: &str,
        params: Option<&RawValue>,
        read_ahead: Option<&ReadAhead>,
        sent: &[MirroredParam<'_>],
        extensions: &Extensions,
    ) -> Result<(), ErrorObject> {
        self.service()
            .check_mirrored(method, params, read_ahead, sent, extensions)
    }

    fn accepts_batches(&self) -> bool {
        self.service().accepts_batches()
    }

    fn session_started(&self, id: &str) {
        self.service().session_started(id);
    }

    fn restore_session<'a>(&'a self, id: &'a str) -> Pin<Box<dyn Future<Output = Option<String>> + Send + 'a>> {
        Box::pin(async move {
            let handle = Peer::handle(self).clone();
            self.service().restore_session(&handle, id).await
        })
    }

    fn session_ended(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.service().session_ended())
    }
}

/// Makes the peer of a stateless notification or of a WebSocket connection, writing to the
/// given channel.
type MakePeer = dyn Fn(mpsc::Sender<Outbound>) -> Arc<dyn DynPeer> + Send + Sync;

/// Makes a peer delivering through an outlet: a session's, or a stateless request's queue.
type MakeOutletPeer = dyn Fn(Arc<dyn Outlet>) -> Arc<dyn DynPeer> + Send + Sync;

/// What the endpoint's handlers share.
pub(crate) struct State {
    config: HttpConfig,
    guard: guard::Guard,
    make_peer: Box<MakePeer>,
    /// Makes the peer of one 2026-07-28 request, writing to that request's own queue (the
    /// `queue` module), not to a channel.
    make_request_peer: Box<MakeOutletPeer>,
    /// Makes the peer of a session, which may end a request's stream early
    /// ([`portico_core::PeerConfig::stream_control`]).
    make_session_peer: Box<MakeOutletPeer>,
    sessions: session::Registry,
    /// Slots for stateless requests in flight.
    stateless: Arc<Semaphore>,
    /// Numbers the streams of stateless requests (sessions number their own).
    next_stream: AtomicU64,
    /// Slots for open WebSocket connections ([`ws::WsConfig::max_connections`]).
    websockets: Arc<Semaphore>,
}

/// A Streamable HTTP endpoint: its [`Router`] and its [`Sessions`].
#[derive(Clone)]
pub struct StreamableHttp {
    state: Arc<State>,
}

impl std::fmt::Debug for StreamableHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamableHttp")
            .field("config", &self.state.config)
            .finish_non_exhaustive()
    }
}

impl StreamableHttp {
    /// An endpoint serving each session and each stateless request with a service from
    /// `make_service` (for a [`portico_core::server::Server`]: `move || server.connection()`).
    pub fn new<F, S>(make_service: F, config: HttpConfig) -> Self
    where
        F: Fn() -> S + Send + Sync + 'static,
        S: Service,
    {
        let peer_config = config.peer.clone();
        let make_service = Arc::new(make_service);
        let session_service = make_service.clone();
        let session_config = PeerConfig {
            stream_control: true,
            ..peer_config.clone()
        };
        // Only a session's streams can end early and be resumed; a stateless request's stream
        // is the request (closing it cancels the request), a WebSocket has no streams.
        let stateless_config = PeerConfig {
            stream_control: false,
            ..peer_config
        };
        let request_service = make_service.clone();
        let request_config = stateless_config.clone();
        let make_peer: Box<MakePeer> = Box::new(move |outbound| {
            Arc::new(Peer::new(make_service(), stateless_config.clone(), outbound)) as Arc<dyn DynPeer>
        });
        let make_request_peer: Box<MakeOutletPeer> = Box::new(move |outlet| {
            Arc::new(Peer::with_outlet(request_service(), request_config.clone(), outlet)) as Arc<dyn DynPeer>
        });
        let make_session_peer: Box<MakeOutletPeer> = Box::new(move |outlet| {
            Arc::new(Peer::with_outlet(session_service(), session_config.clone(), outlet)) as Arc<dyn DynPeer>
        });
        let state = State {
            guard: guard::Guard::new(config.allowed_hosts.as_deref(), config.allowed_origins.as_deref()),
            make_peer,
            make_request_peer,
            make_session_peer,
            sessions: session::Registry::new(),
            stateless: Arc::new(Semaphore::new(config.max_stateless_in_flight.max(1))),
            next_stream: AtomicU64::new(1),
            websockets: ws::slots(&config),
            config,
        };
        Self { state: Arc::new(state) }
    }

    /// The router: the endpoint at [`HttpConfig::path`], taking POST, GET and DELETE.
    pub fn router(&self) -> Router {
        let methods = post(endpoint::post)
            .get(endpoint::get)
            .delete(endpoint::delete)
            .fallback(endpoint::other_method);
        Router::new()
            .route(&self.state.config.path, methods)
            .with_state(self.state.clone())
    }

    /// The path the endpoint serves ([`HttpConfig::path`]).
    pub fn path(&self) -> &str {
        &self.state.config.path
    }

    /// Whether the handlers of its requests are handed the peer's address
    /// (`ConnectInfo<SocketAddr>` in [`HttpConfig::carry`]).
    pub(crate) fn carries_peer_address(&self) -> bool {
        self.state
            .config
            .carry
            .carries::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    }

    /// Whether `request` is one [`StreamableHttp::post`] answers: a POST to
    /// [`StreamableHttp::path`].
    pub fn takes(&self, request: &axum::extract::Request) -> bool {
        request.method() == axum::http::Method::POST && request.uri().path() == self.path()
    }

    /// Answers a POST to [`StreamableHttp::path`] as [`StreamableHttp::router`] would, without
    /// routing it again: for a front that has routed the request itself (the gateway, which
    /// picks the endpoint by path first). Every check of the POST is made as on the router.
    ///
    /// The future is the endpoint's own (it borrows nothing of `self`): box it where it is made,
    /// with [`portico_core::boxed`], rather than awaiting it in another `async fn` or block,
    /// which would copy it (kilobytes) into its own state first.
    pub fn post(
        &self,
        request: axum::extract::Request,
    ) -> impl Future<Output = axum::response::Response> + Send + 'static {
        endpoint::post(axum::extract::State(self.state.clone()), request)
    }

    /// The endpoint's sessions.
    pub fn sessions(&self) -> Sessions {
        Sessions {
            state: self.state.clone(),
        }
    }

    /// Shuts the endpoint down (cancels [`HttpConfig::shutdown`]): sessions close, streams end,
    /// new requests get `503`.
    pub fn shutdown(&self) {
        self.state.config.shutdown.cancel();
    }
}

/// The router of a Streamable HTTP endpoint serving `make_service`'s services with `config`
/// (see [`StreamableHttp`] to reach its sessions as well).
pub fn router<F, S>(make_service: F, config: HttpConfig) -> Router
where
    F: Fn() -> S + Send + Sync + 'static,
    S: Service,
{
    StreamableHttp::new(make_service, config).router()
}
