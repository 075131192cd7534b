//! What an operator can tune about the Streamable HTTP endpoint: limits, timeouts, the Host and
//! Origin allow-lists, and how answers are framed.

use std::time::Duration;

use portico_core::PeerConfig;
use tokio_util::sync::CancellationToken;

use super::carry::Carry;
use super::ws::WsConfig;

/// How a request's answer is framed: one JSON object, or an SSE stream that can carry the
/// request's progress, log messages and (in a session) server→client requests before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseMode {
    /// Decide per request (the default). A request that carries a `progressToken`, or a
    /// `subscriptions/listen` request, gets an SSE stream at once, so keep-alives flow while it
    /// runs. Otherwise the transport waits for the first message the request produces: when it
    /// is the answer itself, the answer goes out as `application/json`; when it is anything else
    /// (a log message, a server→client request), an SSE stream starts with it. Either way the
    /// client's `Accept` header is honoured.
    #[default]
    Auto,
    /// Always an SSE stream (when the client accepts one).
    Sse,
    /// Always one JSON object (when the client accepts one); what the request's handler sends
    /// besides its answer is dropped.
    Json,
}

/// The configuration of a Streamable HTTP endpoint.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// The endpoint's path (default `/mcp`).
    pub path: String,
    /// The largest request body accepted; larger is `413` (default 4 MiB).
    pub max_body_bytes: usize,
    /// Stateful sessions open at once; `initialize` beyond that is `503` (default 10 000).
    pub max_sessions: usize,
    /// A session nobody used for this long (no request, no open stream) is closed (default
    /// 30 min); its id then answers `404`.
    pub session_idle_timeout: Duration,
    /// Stateless (2026-07-28) requests served at once; more wait for a slot (default 1024).
    pub max_stateless_in_flight: usize,
    /// `Host` values accepted besides the loopback names (`localhost`, `127.0.0.1`, `[::1]`, any
    /// port). An entry with a port (`example.com:8443`) matches that port only, one without
    /// matches any. `None` accepts any `Host`: only behind a proxy that checks it. Default: no
    /// extras, so a server reached under another name answers `403` (DNS-rebinding protection).
    pub allowed_hosts: Option<Vec<String>>,
    /// `Origin` values accepted besides loopback origins (`http(s)://localhost`, `127.0.0.1` or
    /// `[::1]`, any port), compared whole and case-insensitively (`https://app.example.com`).
    /// A request without `Origin` (not from a browser) is not affected. `None` accepts any
    /// `Origin`. Default: no extras.
    pub allowed_origins: Option<Vec<String>>,
    /// The protocol versions accepted in `MCP-Protocol-Version` and in a 2026-07-28 request's
    /// `_meta` (default: every revision [`portico_core::server`] serves).
    pub protocol_versions: Vec<String>,
    /// Whether a 2026-07-28 request must carry `MCP-Protocol-Version`, `Mcp-Method` and (for
    /// `tools/call`, `prompts/get`, `resources/read`) `Mcp-Name`, as the revision requires
    /// (default `true`). When `false`, only headers that are present are checked against the body.
    pub require_request_headers: bool,
    /// The peer of each session and of each stateless request.
    pub peer: PeerConfig,
    /// How answers are framed.
    pub response_mode: ResponseMode,
    /// Methods whose answers in a session (2025-x) are an SSE stream in [`ResponseMode::Auto`]
    /// once they have taken [`Self::stream_after`], as a request with a `progressToken` is at
    /// once (default none). For a server that cannot know whether a call will send progress,
    /// log messages or questions before its answer, nor how long it takes — a gateway relaying
    /// `tools/call` — so that a long call's stream is primed and resumable (`Last-Event-ID`).
    /// 2026-07-28 requests are not affected: their errors must keep their HTTP status
    /// (`-32021` is a `400`), which a stream already started cannot give.
    pub stream_methods: Vec<String>,
    /// How long the answer of a [`Self::stream_methods`] call is waited for before its SSE
    /// stream starts (default zero: at once). A call answered within it gets one JSON object
    /// (written with its response head, in one write); a message before the answer (progress,
    /// a log message, a question) starts the stream when it comes; a call still running when
    /// it has passed gets its primed stream then. A stream's priming event so comes at most
    /// this late, and only calls that last that long get one.
    pub stream_after: Duration,
    /// How often an idle SSE stream gets a comment line, so proxies and clients keep it open
    /// (default 15 s; `None`: never).
    pub sse_keepalive: Option<Duration>,
    /// The reconnection delay a session's GET stream advertises (SSE `retry:`, default 3 s).
    pub sse_retry: Duration,
    /// Messages queued for one response stream before the request's handler waits for the client
    /// to read (default 32).
    pub stream_buffer: usize,
    /// Messages of a session as a whole kept while it has no GET stream open; beyond that they
    /// are dropped (default 64).
    pub backlog: usize,
    /// Cancelled to shut the endpoint down: every session closes and every stream ends, so a
    /// graceful server shutdown does not wait on them. Give [`super::serve`] the same token.
    pub shutdown: CancellationToken,
    /// MCP over WebSocket at the same path: a GET carrying `Upgrade: websocket` becomes a socket
    /// (see [`super::ws`]). `None` refuses upgrades with `400`. Default: on, with
    /// [`WsConfig::default`].
    pub websocket: Option<WsConfig>,
    /// Which values of each HTTP request's extensions its MCP requests' handlers see (default:
    /// none); see [`Carry`].
    pub carry: Carry,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            path: "/mcp".into(),
            max_body_bytes: 4 * 1024 * 1024,
            max_sessions: 10_000,
            session_idle_timeout: Duration::from_secs(30 * 60),
            max_stateless_in_flight: 1024,
            allowed_hosts: Some(Vec::new()),
            allowed_origins: Some(Vec::new()),
            protocol_versions: portico_core::server::supported_versions(),
            require_request_headers: true,
            peer: PeerConfig::default(),
            response_mode: ResponseMode::Auto,
            stream_methods: Vec::new(),
            stream_after: Duration::ZERO,
            sse_keepalive: Some(Duration::from_secs(15)),
            sse_retry: Duration::from_secs(3),
            stream_buffer: 32,
            backlog: 64,
            shutdown: CancellationToken::new(),
            websocket: Some(WsConfig::default()),
            carry: Carry::default(),
        }
    }
}
