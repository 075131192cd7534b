//! The client core: one [`Client`] for every transport and both protocol generations, used by
//! Rust programs, the gateway (a client of its upstreams) and the language SDKs.
//!
//! ```
//! use portico_core::client::{Client, Protocol, memory};
//! use portico_core::server::{Server, tool};
//! use portico_protocol::v2026_07_28 as wire;
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct Echo {
//!     message: String,
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), portico_core::client::ClientError> {
//! let server = Server::builder("demo", "1.0.0")
//!     .tool(tool("echo", "Says it back", |_cx, args: Echo| async move { args.message }))
//!     .build();
//! let client = Client::builder(wire::Implementation::new("my-app", "1.0.0"))
//!     .protocol(Protocol::Auto)
//!     // Any transport: `|service| portico_transport::http::client::connect(url, service, config)`.
//!     .connect(|service| async move {
//!         Ok::<_, std::io::Error>(memory::connect(service, server.connection(), Default::default()))
//!     })
//!     .await?;
//! let tools = client.list_all_tools().await?;
//! assert_eq!(tools[0].name, "echo");
//! let result = client.call_tool("echo", serde_json::json!({"message": "hi"})).await?;
//! assert_eq!(result.is_error, None);
//! client.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # How it is put together
//!
//! A transport's connect function (`portico_transport::stdio::spawn`,
//! `portico_transport::http::client::connect`, [`memory::connect`], …) takes a [`ClientService`]
//! — the [`crate::Service`] answering what the server sends — and returns something that holds
//! the connected [`crate::Peer`] and implements [`ClientTransport`]: its handle, and how to close
//! it. [`ClientBuilder::connect`] makes the service, calls the connect function with it, then
//! negotiates the era; [`ClientBuilder::service`] and [`ClientBuilder::start`] do the same in two
//! steps.
//!
//! # Eras
//!
//! [`Protocol`] says how the era is chosen:
//! - [`Protocol::Stateless`] (2026-07-28): `server/discover` describes the server; every request
//!   then carries `io.modelcontextprotocol/protocolVersion`, `clientInfo` and
//!   `clientCapabilities` (and `logLevel` once [`Client::set_level`] set one) in its `_meta`.
//!   A `-32022` answer to `server/discover` whose `supported` list names 2026-07-28 is retried
//!   once (the client retries with a supported version; that one is the only one it has).
//! - [`Protocol::Stateful`]: `initialize` at the given revision, then
//!   `notifications/initialized`; the server may answer with another revision the client speaks.
//! - [`Protocol::Auto`] (the default): `server/discover` within
//!   [`ClientConfig::probe_timeout`]; a `DiscoverResult` makes the connection stateless. A
//!   recognized modern error (`-32020`, `-32021`) is returned; `-32022` falls back to
//!   `initialize` when the server lists a stateful revision the client speaks; any other error or
//!   a timeout (a server of the stateful era) falls back to `initialize` at the newest stateful
//!   revision — the "Backward Compatibility" rules of the 2026-07-28 transports.
//!
//! Results are returned as the newest revision's types whatever the era: a result without
//! `resultType` (every revision before 2026-07-28) reads as `"complete"`, and members a type
//! does not name are kept in its `extra`.
//!
//! # Input from the client
//!
//! The [`ClientHandler`] answers sampling, elicitation (form and URL mode) and roots, and
//! declares the capabilities sent to the server. In a session the server asks with real
//! requests, which the [`ClientService`] hands to the handler. In 2026-07-28 a `tools/call`,
//! `prompts/get` or `resources/read` may end with `resultType: "input_required"`: the client
//! calls the same handler for each input request (in key order, one at a time, so a user is not
//! shown several questions at once), then retries the request with `inputResponses` and the
//! `requestState` echoed unchanged, at most [`ClientConfig::max_input_rounds`] times.
//!
//! # Requests
//!
//! Each request has a timeout ([`ClientConfig::request_timeout`], or
//! [`RequestOptions::timeout`]); an `input_required` round is a request of its own, so the time
//! a handler takes to answer is not counted. Dropping a call's future cancels its request: the
//! peer sends `notifications/cancelled` (stdio, sessions), and the Streamable HTTP transport
//! closes the request's stream (2026-07-28, where that is the cancellation). Errors are one
//! enum, [`ClientError`]. A tool's `structuredContent` is checked against the `outputSchema`
//! the tool was listed with ([`ClientConfig::validate_output`]).
//!
//! A session the server forgot (Streamable HTTP answers `404` to its `Mcp-Session-Id`) is
//! renewed, as the transports section of the spec asks: a new `initialize` at the negotiated
//! revision, the log level and the resource subscriptions asked for again, then the refused
//! request sent once more. Concurrent requests that meet the same `404` start one new session
//! between them. The server description stays the first session's; a server that negotiates
//! another revision the second time is a protocol error. [`ClientConfig::renew_sessions`] turns
//! this off ([`ClientError::SessionExpired`] then).
//!
//! # Notifications
//!
//! [`Client::notifications`] gives a receiver of progress, log messages, list changes and
//! resource updates, from a bounded ring that never holds the transport back: a reader that
//! falls behind loses the oldest ([`Notifications`] says why). [`Client::listen`] opens a
//! `subscriptions/listen` stream (2026-07-28) or subscribes to resources (2025-x).
//!
//! # Features
//!
//! `output-schema` (default): validates `structuredContent` with the `jsonschema` crate;
//! without it only the presence of `structuredContent` is checked.

mod error;
mod handler;
pub mod memory;
mod mrtr;
mod notify;
mod observe;
mod schema;
mod transport;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use portico_protocol::v2026_07_28 as wire;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use self::error::ClientError;
use self::handler::Shared;
pub use self::handler::{ClientHandler, ClientService, InputContext};
pub use self::notify::{Notification, Notifications, SUBSCRIPTION_ID};
pub use self::observe::{CallObserver, Observer, ObserverFuture};
pub(crate) use self::transport::is_unreadable;
pub use self::transport::{ClientTransport, TRANSPORT_ERROR_KEY, transport_error, unreadable_error};
use crate::extensions::Extensions;
use crate::message::RequestId;
use crate::mirror::{HEADER_MISMATCH, Mirror, PROTOCOL_VERSION_KEY};
use crate::peer::PeerHandle;
use crate::server::{
    Era, MISSING_REQUIRED_CLIENT_CAPABILITY, STATEFUL_REVISIONS, STATELESS_REVISION, UNSUPPORTED_PROTOCOL_VERSION,
};

/// How the client picks the protocol era (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// `server/discover`, falling back to `initialize` for a server of the stateful era.
    #[default]
    Auto,
    /// 2026-07-28: per-request `_meta`, no session.
    Stateless,
    /// `initialize` at this revision (one of [`STATEFUL_REVISIONS`]).
    Stateful(&'static str),
}

/// Limits and behaviour of a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// How long a request waits for its answer (default 60 s).
    pub request_timeout: Duration,
    /// How long [`Protocol::Auto`] waits for `server/discover` before taking the server for
    /// one of the stateful era (default 10 s).
    pub probe_timeout: Duration,
    /// `input_required` rounds answered before a call fails (default 8).
    pub max_input_rounds: usize,
    /// Pages the `list_all_*` helpers follow before failing (default 100).
    pub max_pages: usize,
    /// Notifications kept for receivers that fall behind (default 256; see [`Notifications`]).
    pub notification_capacity: usize,
    /// Whether `structuredContent` is checked against the tool's `outputSchema` (default `true`).
    pub validate_output: bool,
    /// Whether an accepted form-mode elicitation gets the requested schema's `default` for every
    /// field the handler's `content` leaves out (SEP-1034; default `true`).
    pub elicitation_defaults: bool,
    /// Whether a session the server forgot (Streamable HTTP `404`) is renewed: a new
    /// `initialize` at the same revision, the log level and resource subscriptions asked for
    /// again, and the refused request sent once more (default `true`; with `false` the
    /// request fails with [`ClientError::SessionExpired`]).
    pub renew_sessions: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(60),
            probe_timeout: Duration::from_secs(10),
            max_input_rounds: 8,
            max_pages: 100,
            notification_capacity: 256,
            validate_output: true,
            elicitation_defaults: true,
            renew_sessions: true,
        }
    }
}

/// Options of one request.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RequestOptions {
    /// Overrides [`ClientConfig::request_timeout`].
    pub timeout: Option<Duration>,
    /// Asks for `notifications/progress` with this token (they arrive on
    /// [`Client::notifications`] as [`Notification::Progress`]).
    pub progress_token: Option<wire::ProgressToken>,
    /// More `_meta` members for the request.
    pub meta: Map<String, Value>,
    /// Receives the server's messages about the call (see [`CallObserver`]).
    pub observer: Option<Observer>,
    /// Values for the transport that sends the request, never sent themselves (see
    /// [`crate::extensions`]): the Streamable HTTP client takes an `Auth` there as the
    /// credentials of this request alone, in place of its connection's.
    pub extensions: Extensions,
}

impl RequestOptions {
    /// No options.
    pub fn new() -> Self {
        Self::default()
    }

    /// With this timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Asking for progress with `token`.
    pub fn progress(mut self, token: wire::ProgressToken) -> Self {
        self.progress_token = Some(token);
        self
    }

    /// With a `_meta` member.
    pub fn meta(mut self, key: impl Into<String>, value: Value) -> Self {
        self.meta.insert(key.into(), value);
        self
    }

    /// With an observer of the server's messages about the call: its progress, its log
    /// messages, and the requests a session's server sends while serving it.
    pub fn observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// With `value` attached for the transport ([`RequestOptions::extensions`]).
    pub fn extension<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.extensions.insert(value);
        self
    }
}

/// What the client learned of the server when it connected.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerDescription {
    /// The revision in use.
    pub protocol_version: String,
    /// The server's name and version (`serverInfo`).
    pub info: Option<wire::Implementation>,
    /// What the server offers.
    pub capabilities: wire::ServerCapabilities,
    /// Guidance for the model using the server.
    pub instructions: Option<String>,
    /// The revisions the server supports (2026-07-28: from `server/discover`; in a session: the
    /// negotiated one).
    pub supported_versions: Vec<String>,
}

/// Builds a [`Client`]: its identity, handler, era choice and limits.
pub struct ClientBuilder {
    info: wire::Implementation,
    protocol: Protocol,
    config: ClientConfig,
    handler: Arc<dyn handler::DynHandler>,
    shared: OnceLock<Arc<Shared>>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("info", &self.info)
            .field("protocol", &self.protocol)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Answers the server's requests for input with `handler` (default: `()`, which declares
    /// no capability and answers none).
    pub fn handler(mut self, handler: impl ClientHandler) -> Self {
        self.handler = Arc::new(handler);
        if let Some(shared) = self.shared.get() {
            shared.set_handler(self.handler.clone());
        }
        self
    }

    /// How the era is chosen (default [`Protocol::Auto`]).
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// Limits and behaviour (set before [`ClientBuilder::service`]: the notification ring is
    /// made with it).
    pub fn config(mut self, config: ClientConfig) -> Self {
        self.config = config;
        self
    }

    fn shared(&self) -> Arc<Shared> {
        self.shared
            .get_or_init(|| {
                let shared = Shared::new(self.config.notification_capacity, self.config.elicitation_defaults);
                shared.set_handler(self.handler.clone());
                Arc::new(shared)
            })
            .clone()
    }

    /// The service to give the transport's connect function (the same one each time).
    pub fn service(&self) -> ClientService {
        ClientService { shared: self.shared() }
    }

    /// Connects with `connect` (a transport's connect function, given this builder's
    /// [`ClientService`]), then negotiates the era.
    pub async fn connect<F, Fut, T, E>(self, connect: F) -> Result<Client, ClientError>
    where
        F: FnOnce(ClientService) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        T: ClientTransport,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let transport = connect(self.service())
            .await
            .map_err(|e| ClientError::Connect(e.into()))?;
        self.start(transport).await
    }

    /// Negotiates the era over `transport`, whose peer serves this builder's
    /// [`ClientBuilder::service`]. On failure the transport is closed.
    pub async fn start(self, transport: impl ClientTransport) -> Result<Client, ClientError> {
        let shared = self.shared();
        let capabilities = self.handler.capabilities();
        let handle = transport.handle();
        let mirrors_params = transport.mirrors_params();
        let boot = Boot {
            handle: &handle,
            info: &self.info,
            capabilities: &capabilities,
            config: &self.config,
        };
        let (era, server) = match boot.negotiate(self.protocol).await {
            Ok(negotiated) => negotiated,
            Err(error) => {
                let _ = Box::new(transport).close().await;
                return Err(error);
            }
        };
        let stateless = encoded(&stateless_meta(&self.info, &capabilities, None));
        Ok(Client {
            inner: Arc::new(Inner {
                handle,
                shared,
                transport: Mutex::new(Some(Box::new(transport))),
                stateless,
                info: self.info,
                capabilities,
                config: self.config,
                era,
                server,
                mirrors_params,
                log_level: Mutex::new(None),
                schemas: schema::OutputSchemas::default(),
                next_token: AtomicU64::new(1),
                renewal: Renewal::default(),
            }),
        })
    }
}

/// The `_meta` of a 2026-07-28 request.
fn stateless_meta(
    info: &wire::Implementation,
    capabilities: &wire::ClientCapabilities,
    log_level: Option<wire::LoggingLevel>,
) -> Map<String, Value> {
    let mut meta = Map::new();
    meta.insert(PROTOCOL_VERSION_KEY.into(), STATELESS_REVISION.into());
    meta.insert(
        "io.modelcontextprotocol/clientInfo".into(),
        serde_json::to_value(info).unwrap_or_else(|_| json!({})),
    );
    meta.insert(
        "io.modelcontextprotocol/clientCapabilities".into(),
        serde_json::to_value(capabilities).unwrap_or_else(|_| json!({})),
    );
    if let Some(level) = log_level.and_then(|l| serde_json::to_value(l).ok()) {
        meta.insert("io.modelcontextprotocol/logLevel".into(), level);
    }
    meta
}

/// `meta`'s members with their values encoded (once, for every request that sends them; a
/// `Value` always encodes).
fn encoded(meta: &Map<String, Value>) -> Vec<(String, Box<RawValue>)> {
    meta.iter()
        .filter_map(|(key, value)| Some((key.clone(), serde_json::value::to_raw_value(value).ok()?)))
        .collect()
}

/// Reads a JSON value as `T`, a protocol violation otherwise.
fn decode<T: DeserializeOwned>(method: &str, value: Value) -> Result<T, ClientError> {
    serde_json::from_value(value).map_err(|e| ClientError::protocol(method, e.to_string()))
}

/// A request's params as a caller hands them to [`Client::forward_text`]: its members, and
/// at most one more member whose value is JSON text as it came (a relayed `tools/call`'s
/// `arguments`, checked when it was read), written into the request as it is rather than
/// decoded into a map and encoded again. A member of that name among `members` is left out.
#[derive(Clone, Copy, Debug)]
pub struct Params<'a> {
    members: &'a Map<String, Value>,
    raw: Option<(&'a str, &'a RawValue)>,
}

impl<'a> Params<'a> {
    /// `members`, and nothing else.
    pub fn new(members: &'a Map<String, Value>) -> Self {
        Self { members, raw: None }
    }

    /// These params with the member `key` (not `_meta`, which the client merges: see
    /// [`Client::request`]) whose value is `value`'s text.
    pub fn with_raw(self, key: &'a str, value: &'a RawValue) -> Self {
        Self {
            raw: Some((key, value)),
            ..self
        }
    }

    /// The member `key` among the decoded ones.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.members.get(key)
    }
}

impl<'a> From<&'a Map<String, Value>> for Params<'a> {
    fn from(members: &'a Map<String, Value>) -> Self {
        Self::new(members)
    }
}

/// A request's params as sent, serialized from borrowed parts: the caller's members, then
/// `_meta` merged from the caller's own `_meta` (an object; anything else is dropped), the
/// era's members a 2026-07-28 request carries (protocol version, client info and capabilities,
/// the log level asked for) where the caller's `_meta` has none of its own, the options' `_meta`
/// over both, and the options' progress token over all. Before, the merged `_meta` was built as
/// a map of copies (the client's info and capabilities cloned for every request) and dropped
/// after encoding: a tenth of a call's instructions in `cargo xtask bench client`.
struct Sent<'a> {
    params: Params<'a>,
    /// The era's `_meta` members (2026-07-28 only), encoded already: the client's info and
    /// capabilities are the same in every request, and encoding them again was about a fifth
    /// of a relayed request's encoding (the gateway's, callgrind: 0.9k of 4.5k instructions).
    stateless: Option<&'a [(String, Box<RawValue>)]>,
    /// The log level asked for (2026-07-28 only).
    level: Option<wire::LoggingLevel>,
    options: &'a RequestOptions,
}

/// The key of a 2026-07-28 request's log level in `_meta`.
const LOG_LEVEL_KEY: &str = "io.modelcontextprotocol/logLevel";

impl Sent<'_> {
    /// The caller's own `_meta`, if it is an object.
    fn own(&self) -> Option<&Map<String, Value>> {
        self.params.get("_meta").and_then(Value::as_object)
    }

    /// Whether a member of `_meta` named `key` comes from a later source than the caller's own.
    fn overridden(&self, key: &str) -> bool {
        self.options.meta.contains_key(key) || (key == "progressToken" && self.options.progress_token.is_some())
    }

    fn has_meta(&self) -> bool {
        self.stateless.is_some_and(|m| !m.is_empty())
            || self.level.is_some()
            || !self.options.meta.is_empty()
            || self.options.progress_token.is_some()
            || self.own().is_some_and(|m| !m.is_empty())
    }
}

impl Serialize for Sent<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = serializer.serialize_map(None)?;
        let raw = self.params.raw;
        for (key, value) in self.params.members {
            if key != "_meta" && raw.is_none_or(|(raw, _)| raw != key) {
                map.serialize_entry(key, value)?;
            }
        }
        if let Some((key, value)) = raw {
            map.serialize_entry(key, value)?;
        }
        if self.has_meta() {
            map.serialize_entry("_meta", &SentMeta(self))?;
        }
        map.end()
    }
}

/// The `_meta` of [`Sent`].
struct SentMeta<'a, 'b>(&'b Sent<'a>);

impl Serialize for SentMeta<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let sent = self.0;
        let own = sent.own();
        let mine = |key: &str| own.is_some_and(|m| m.contains_key(key));
        let mut map = serializer.serialize_map(None)?;
        for (key, value) in own.into_iter().flatten() {
            if !sent.overridden(key) {
                map.serialize_entry(key, value)?;
            }
        }
        for (key, value) in sent.stateless.into_iter().flatten() {
            if !mine(key) && !sent.overridden(key) {
                map.serialize_entry(key, value)?;
            }
        }
        if let Some(level) = &sent.level
            && !mine(LOG_LEVEL_KEY)
            && !sent
                .stateless
                .is_some_and(|m| m.iter().any(|(key, _)| key == LOG_LEVEL_KEY))
            && !sent.overridden(LOG_LEVEL_KEY)
        {
            map.serialize_entry(LOG_LEVEL_KEY, level)?;
        }
        for (key, value) in &sent.options.meta {
            if !(key == "progressToken" && sent.options.progress_token.is_some()) {
                map.serialize_entry(key, value)?;
            }
        }
        if let Some(token) = &sent.options.progress_token {
            map.serialize_entry("progressToken", token)?;
        }
        map.end()
    }
}

/// `resultType` of a result, read without the rest of it.
fn result_type(method: &str, raw: &RawValue) -> Result<Option<String>, ClientError> {
    #[derive(serde::Deserialize)]
    struct Kind<'a> {
        #[serde(rename = "resultType", borrow, default)]
        result_type: Option<std::borrow::Cow<'a, str>>,
    }
    let kind: Kind<'_> = serde_json::from_str(raw.get())
        .map_err(|e| ClientError::protocol(method, format!("the result is not an object: {e}")))?;
    Ok(kind.result_type.map(std::borrow::Cow::into_owned))
}

/// A complete result as `R`, read straight from the text the server sent. Revisions before
/// 2026-07-28 have no `resultType`, which the newest revision's types require: absent, it reads
/// as `"complete"` (the member is put in front of the text, one copy of it).
fn complete<R: DeserializeOwned>(method: &str, raw: &RawValue) -> Result<R, ClientError> {
    complete_as(method, raw, result_type(method, raw)?.as_deref())
}

/// [`complete`] of a result whose `resultType` was read already (`kind`).
fn complete_as<R: DeserializeOwned>(method: &str, raw: &RawValue, kind: Option<&str>) -> Result<R, ClientError> {
    let decode = |text: &str| serde_json::from_str(text).map_err(|e| ClientError::protocol(method, e.to_string()));
    match kind {
        Some("complete") => decode(raw.get()),
        None => decode(&with_complete(raw)),
        Some(other) => Err(ClientError::protocol(
            method,
            format!("unexpected resultType {other:?}"),
        )),
    }
}

/// The text of an object result with `"resultType":"complete"` as its first member.
fn with_complete(raw: &RawValue) -> String {
    let text = raw.get().trim_start();
    let rest = text.strip_prefix('{').unwrap_or(text);
    let separator = if rest.trim_start().starts_with('}') { "" } else { "," };
    format!("{{\"resultType\":\"complete\"{separator}{rest}")
}

/// A result as a `Value`, as the server sent it but for `resultType`, defaulted to
/// `"complete"` for revisions without one: what [`Client::forward`] returns of what
/// [`Client::forward_text`] does.
pub fn value_of(method: &str, raw: &RawValue) -> Result<Value, ClientError> {
    let mut value: Value = serde_json::from_str(raw.get()).map_err(|e| ClientError::protocol(method, e.to_string()))?;
    if let Some(object) = value.as_object_mut() {
        object.entry("resultType").or_insert_with(|| "complete".into());
    }
    Ok(value)
}

/// What negotiation needs, before there is a client.
struct Boot<'a> {
    handle: &'a PeerHandle,
    info: &'a wire::Implementation,
    capabilities: &'a wire::ClientCapabilities,
    config: &'a ClientConfig,
}

impl Boot<'_> {
    async fn negotiate(&self, protocol: Protocol) -> Result<(Era, ServerDescription), ClientError> {
        match protocol {
            Protocol::Stateless => self.discover(self.config.request_timeout).await,
            Protocol::Stateful(revision) => self.initialize(revision).await,
            Protocol::Auto => match self.discover(self.config.probe_timeout).await {
                Ok(negotiated) => Ok(negotiated),
                Err(ClientError::UnsupportedVersion { requested, supported }) => {
                    match STATEFUL_REVISIONS.iter().find(|r| supported.iter().any(|s| s == *r)) {
                        Some(revision) => self.initialize(revision).await,
                        None => Err(ClientError::UnsupportedVersion { requested, supported }),
                    }
                }
                Err(e @ (ClientError::Closed | ClientError::Encode { .. })) => Err(e),
                Err(e) if matches!(e.code(), Some(HEADER_MISMATCH | MISSING_REQUIRED_CLIENT_CAPABILITY)) => Err(e),
                // Not a modern server: the stateful era.
                Err(_) => self.initialize(STATEFUL_REVISIONS[0]).await,
            },
        }
    }

    async fn request(&self, method: &str, params: &Value, timeout: Duration) -> Result<Value, ClientError> {
        let params = serde_json::value::to_raw_value(params).map_err(|source| ClientError::Encode {
            method: method.into(),
            source,
        })?;
        let raw = self
            .handle
            .request_raw(method, Some(params), Some(timeout))
            .await
            .map_err(|e| ClientError::from_peer(method, e))?;
        serde_json::from_str(raw.get()).map_err(|e| ClientError::protocol(method, e.to_string()))
    }

    async fn discover(&self, timeout: Duration) -> Result<(Era, ServerDescription), ClientError> {
        let method = "server/discover";
        let params = json!({"_meta": stateless_meta(self.info, self.capabilities, None)});
        let mut retried = false;
        let value = loop {
            match self.request(method, &params, timeout).await {
                Ok(value) => break value,
                Err(ClientError::Rpc { error, .. }) if error.code == UNSUPPORTED_PROTOCOL_VERSION => {
                    let supported: Vec<String> = error
                        .data
                        .as_ref()
                        .and_then(|d| d.get("supported"))
                        .and_then(|s| serde_json::from_value(s.clone()).ok())
                        .unwrap_or_default();
                    // Refused, yet listed as supported: the retry with a supported version the
                    // revision asks for is this one (the only stateless revision there is).
                    if !retried && supported.iter().any(|v| v == STATELESS_REVISION) {
                        retried = true;
                        continue;
                    }
                    return Err(ClientError::UnsupportedVersion {
                        requested: STATELESS_REVISION.into(),
                        supported,
                    });
                }
                Err(e) => return Err(e),
            }
        };
        let result: wire::DiscoverResult = decode(method, value)?;
        if !result.supported_versions.iter().any(|v| v == STATELESS_REVISION) {
            return Err(ClientError::UnsupportedVersion {
                requested: STATELESS_REVISION.into(),
                supported: result.supported_versions,
            });
        }
        let server = ServerDescription {
            protocol_version: STATELESS_REVISION.into(),
            info: result.meta.and_then(|m| m.server_info),
            capabilities: result.capabilities,
            instructions: result.instructions,
            supported_versions: result.supported_versions,
        };
        Ok((Era::Stateless, server))
    }

    async fn initialize(&self, revision: &str) -> Result<(Era, ServerDescription), ClientError> {
        let method = "initialize";
        let Some(revision) = STATEFUL_REVISIONS.iter().copied().find(|r| *r == revision) else {
            return Err(ClientError::UnsupportedVersion {
                requested: revision.into(),
                supported: STATEFUL_REVISIONS.iter().map(|r| r.to_string()).collect(),
            });
        };
        let params = json!({
            "protocolVersion": revision,
            "capabilities": self.capabilities,
            "clientInfo": self.info,
        });
        let value = self.request(method, &params, self.config.request_timeout).await?;
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Initialized {
            protocol_version: String,
            capabilities: wire::ServerCapabilities,
            server_info: Option<wire::Implementation>,
            instructions: Option<String>,
        }
        let result: Initialized = decode(method, value)?;
        // The server may answer with another revision; the client goes on if it speaks it.
        let Some(negotiated) = STATEFUL_REVISIONS
            .iter()
            .copied()
            .find(|r| *r == result.protocol_version)
        else {
            return Err(ClientError::UnsupportedVersion {
                requested: revision.into(),
                supported: vec![result.protocol_version],
            });
        };
        self.handle
            .notify("notifications/initialized", &json!({}))
            .await
            .map_err(|e| ClientError::from_peer("notifications/initialized", e))?;
        let server = ServerDescription {
            protocol_version: negotiated.into(),
            info: result.server_info,
            capabilities: result.capabilities,
            instructions: result.instructions,
            supported_versions: vec![negotiated.into()],
        };
        Ok((Era::Stateful(negotiated), server))
    }
}

/// A connected MCP client. Cheap to clone: clones share the connection.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    handle: PeerHandle,
    shared: Arc<Shared>,
    transport: Mutex<Option<Box<dyn ClientTransport>>>,
    /// The `_meta` every 2026-07-28 request carries (but the log level), its values encoded
    /// once ([`Sent`] writes them as they are).
    stateless: Vec<(String, Box<RawValue>)>,
    info: wire::Implementation,
    capabilities: wire::ClientCapabilities,
    config: ClientConfig,
    era: Era,
    server: ServerDescription,
    mirrors_params: bool,
    /// The level asked for with `set_level` (sent in `_meta` in 2026-07-28).
    log_level: Mutex<Option<wire::LoggingLevel>>,
    schemas: schema::OutputSchemas,
    next_token: AtomicU64,
    renewal: Renewal,
}

/// What renewing an expired session needs (sessions only; see [`ClientConfig::renew_sessions`]).
#[derive(Default)]
struct Renewal {
    /// How many times the session was renewed: a request that failed in generation `n` renews
    /// only if nobody did since, so concurrent failures start one new session, not several.
    generation: AtomicU64,
    /// Held while a renewal runs.
    running: tokio::sync::Mutex<()>,
    /// The resources subscribed to (`resources/subscribe`), subscribed again in a new session.
    subscribed: Mutex<std::collections::BTreeSet<String>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("era", &self.inner.era)
            .field("server", &self.inner.server)
            .finish_non_exhaustive()
    }
}

/// The methods that may answer `input_required` (2026-07-28).
const INPUT_METHODS: &[&str] = &["tools/call", "prompts/get", "resources/read"];

impl Client {
    /// A builder for a client calling itself `info`.
    pub fn builder(info: wire::Implementation) -> ClientBuilder {
        ClientBuilder {
            info,
            protocol: Protocol::Auto,
            config: ClientConfig::default(),
            handler: Arc::new(()),
            shared: OnceLock::new(),
        }
    }

    /// The era (and revision) in use.
    pub fn era(&self) -> Era {
        self.inner.era
    }

    /// What the client learned of the server when it connected.
    pub fn server(&self) -> &ServerDescription {
        &self.inner.server
    }

    /// The capabilities the client declared.
    pub fn capabilities(&self) -> &wire::ClientCapabilities {
        &self.inner.capabilities
    }

    /// The handle of the peer, for requests the typed calls do not cover.
    pub fn peer(&self) -> &PeerHandle {
        &self.inner.handle
    }

    /// Whether the connection is closed.
    pub fn is_closed(&self) -> bool {
        self.inner.handle.is_closed()
    }

    /// A new receiver of the server's notifications (those sent from now on).
    pub fn notifications(&self) -> Notifications {
        Notifications {
            receiver: self.inner.shared.router.subscribe(),
            peer: self.inner.handle.clone(),
            missed: 0,
        }
    }

    /// A progress token not used before by this client, for [`RequestOptions::progress`].
    pub fn progress_token(&self) -> wire::ProgressToken {
        let n = self.inner.next_token.fetch_add(1, Ordering::Relaxed);
        wire::ProgressToken::String(format!("portico-progress-{n}"))
    }

    /// Closes the connection (ends the session, stops the child process, …). Clones of the
    /// client see it closed; closing twice does nothing.
    pub async fn close(&self) -> Result<(), ClientError> {
        let transport = self
            .inner
            .transport
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match transport {
            Some(transport) => transport.close().await.map_err(|e| ClientError::Transport {
                method: "close".into(),
                status: None,
                message: e.to_string(),
            }),
            None => Ok(()),
        }
    }

    fn renews_sessions(&self) -> bool {
        self.inner.config.renew_sessions && matches!(self.inner.era, Era::Stateful(_))
    }

    /// Starts a new session in place of the one the server forgot in `generation` (unless
    /// another request did already): `initialize` at the negotiated revision, then the log level
    /// and the resource subscriptions asked for again. The server must agree to the same
    /// revision; the server description of the first session is kept.
    async fn renew(&self, generation: u64) -> Result<(), ClientError> {
        let Era::Stateful(revision) = self.inner.era else {
            return Ok(());
        };
        let renewal = &self.inner.renewal;
        let _running = renewal.running.lock().await;
        if renewal.generation.load(Ordering::Acquire) != generation {
            return Ok(());
        }
        let boot = Boot {
            handle: &self.inner.handle,
            info: &self.inner.info,
            capabilities: &self.inner.capabilities,
            config: &self.inner.config,
        };
        let (era, _) = boot.initialize(revision).await?;
        if era != self.inner.era {
            return Err(ClientError::protocol(
                "initialize",
                format!("the renewed session negotiated {era:?}, the client speaks {revision}"),
            ));
        }
        let timeout = self.inner.config.request_timeout;
        let level = *self.inner.log_level.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(level) = level {
            boot.request("logging/setLevel", &json!({"level": level}), timeout)
                .await?;
        }
        let uris: Vec<String> = renewal
            .subscribed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect();
        for uri in uris {
            boot.request("resources/subscribe", &json!({"uri": uri}), timeout)
                .await?;
        }
        renewal.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Whether requests mirror tool arguments in headers: Streamable HTTP, 2026-07-28.
    fn mirrors_params(&self) -> bool {
        self.inner.mirrors_params && self.inner.era == Era::Stateless
    }

    fn revision(&self) -> &'static str {
        match self.inner.era {
            Era::Stateless => STATELESS_REVISION,
            Era::Stateful(revision) => revision,
        }
    }

    fn unsupported(&self, method: &str) -> ClientError {
        ClientError::Unsupported {
            method: method.into(),
            revision: self.revision().into(),
        }
    }

    /// `params` as sent, encoded: with the era's `_meta` and the options' (see [`Sent`]).
    fn encode(&self, method: &str, params: Params<'_>, options: &RequestOptions) -> Result<Box<RawValue>, ClientError> {
        let level = match self.inner.era {
            Era::Stateless => *self.inner.log_level.lock().unwrap_or_else(PoisonError::into_inner),
            Era::Stateful(_) => None,
        };
        let sent = Sent {
            params,
            stateless: (self.inner.era == Era::Stateless).then_some(self.inner.stateless.as_slice()),
            level,
            options,
        };
        serde_json::value::to_raw_value(&sent).map_err(|source| ClientError::Encode {
            method: method.into(),
            source,
        })
    }

    /// The extensions a request goes with: the caller's, and the [`Mirror`] of a 2026-07-28
    /// request when the transport reads it ([`crate::PeerConfig::requests_beside`]: the HTTP
    /// client) and the client is sure of it — the protocol version its `_meta` carries is the
    /// client's own (neither the caller's `_meta` nor the options name another) — so that the
    /// transport need not read the body again for its headers.
    fn extensions_for(&self, method: &str, params: Params<'_>, options: &RequestOptions) -> Extensions {
        let extensions = options.extensions.clone();
        if self.inner.era != Era::Stateless
            || !self.inner.handle.requests_beside()
            || options.meta.contains_key(PROTOCOL_VERSION_KEY)
            || params
                .get("_meta")
                .and_then(Value::as_object)
                .is_some_and(|own| own.contains_key(PROTOCOL_VERSION_KEY))
        {
            return extensions;
        }
        let name = crate::mirror::name_member(method)
            .and_then(|member| params.get(member))
            .and_then(Value::as_str)
            .map(str::to_owned);
        extensions.with(Mirror {
            // The version the client's own `_meta` carries (`stateless_meta`).
            version: STATELESS_REVISION.to_owned(),
            name,
        })
    }

    /// Sends one request and returns its result as the server sent it (see [`complete`] and
    /// [`value_of`] for reading it).
    async fn send(
        &self,
        method: &str,
        params: Params<'_>,
        options: &RequestOptions,
    ) -> Result<Box<RawValue>, ClientError> {
        let encode = || self.encode(method, params, options);
        let timeout = options.timeout.unwrap_or(self.inner.config.request_timeout);
        let mut renewed = false;
        let raw = loop {
            let generation = self.inner.renewal.generation.load(Ordering::Acquire);
            let mut watch = None;
            let extensions = self.extensions_for(method, params, options);
            let sent = match &options.observer {
                None => {
                    self.inner
                        .handle
                        .request_raw_with_extensions(method, Some(encode()?), Some(timeout), extensions, |_| {})
                        .await
                }
                Some(observer) => {
                    let token = options
                        .progress_token
                        .as_ref()
                        .and_then(|t| serde_json::to_string(t).ok());
                    let observed = &self.inner.shared.observed;
                    self.inner
                        .handle
                        .request_raw_with_extensions(method, Some(encode()?), Some(timeout), extensions, |id| {
                            watch = Some(observed.watch(id.clone(), token, observer));
                        })
                        .await
                }
            };
            drop(watch);
            match sent.map_err(|e| ClientError::from_peer(method, e)) {
                Ok(raw) => break raw,
                // Sent again once, encoded again (the common path pays for no copy).
                Err(ClientError::SessionExpired { .. }) if !renewed && self.renews_sessions() => {
                    renewed = true;
                    // Boxed: rare, and every call's future would carry its size.
                    Box::pin(self.renew(generation)).await?;
                }
                Err(e) => return Err(e),
            }
        };
        Ok(raw)
    }

    /// Sends a request (answering `input_required` rounds for the methods that have them) and
    /// decodes its complete result as `R`.
    async fn call<R: DeserializeOwned>(
        &self,
        method: &str,
        params: Map<String, Value>,
        options: &RequestOptions,
    ) -> Result<R, ClientError> {
        self.call_with(method, &params, options).await
    }

    /// [`Client::call`] of borrowed params (a caller that may send them again keeps them).
    async fn call_with<R: DeserializeOwned>(
        &self,
        method: &str,
        params: &Map<String, Value>,
        options: &RequestOptions,
    ) -> Result<R, ClientError> {
        if INPUT_METHODS.contains(&method) {
            // Its `resultType` was read to tell the rounds apart: not read again.
            let (raw, kind) = self.with_input(method, params, options).await?;
            complete_as(method, &raw, kind.as_deref())
        } else {
            complete(method, &self.send(method, params.into(), options).await?)
        }
    }

    /// Any request, with the era's `_meta` added to `params` (an object, or `null` for none);
    /// the result decoded as `R`. `input_required` rounds are answered for `tools/call`,
    /// `prompts/get` and `resources/read`.
    pub async fn request<R: DeserializeOwned>(
        &self,
        method: &str,
        params: Value,
        options: &RequestOptions,
    ) -> Result<R, ClientError> {
        let params = object(method, params)?;
        self.call(method, params, options).await
    }

    /// Sends any request as it is — no `input_required` rounds answered, the result returned
    /// whatever its `resultType` (defaulted to `"complete"` for revisions without one) — with
    /// the era's `_meta` added. For intermediaries (a gateway) that relay results and drive
    /// the rounds themselves. A `tools/call` refused for its `Mcp-Param-*` headers (`-32020`)
    /// is retried once after listing the tools again, as [`Client::call_tool_with`] does.
    pub async fn forward(
        &self,
        method: &str,
        params: &Map<String, Value>,
        options: &RequestOptions,
    ) -> Result<Value, ClientError> {
        let raw = self.forward_text(method, params, options).await?;
        value_of(method, &raw)
    }

    /// [`Client::forward`], the result as its text came (no `resultType` added where the
    /// revision has none): for an intermediary that hands it on unread.
    ///
    /// `params` are a map (`&Map`), or [`Params`] with a member whose value is handed on as
    /// the text it came as.
    pub async fn forward_text<'a>(
        &self,
        method: &str,
        params: impl Into<Params<'a>>,
        options: &RequestOptions,
    ) -> Result<Box<RawValue>, ClientError> {
        let params = params.into();
        let raw = match self.send(method, params, options).await {
            Err(e) if method == "tools/call" && self.mirrors_params() && e.code() == Some(HEADER_MISMATCH) => {
                // Boxed: rare, and every forwarded call's future would carry its size.
                Box::pin(self.list_all_tools()).await?;
                self.send(method, params, options).await?
            }
            other => other?,
        };
        Ok(raw)
    }

    /// `server/discover` (2026-07-28).
    pub async fn discover(&self) -> Result<wire::DiscoverResult, ClientError> {
        if self.inner.era != Era::Stateless {
            return Err(self.unsupported("server/discover"));
        }
        self.call("server/discover", Map::new(), &RequestOptions::default())
            .await
    }

    /// `ping` (sessions; 2026-07-28 removed it).
    pub async fn ping(&self) -> Result<(), ClientError> {
        if self.inner.era == Era::Stateless {
            return Err(self.unsupported("ping"));
        }
        self.call::<Value>("ping", Map::new(), &RequestOptions::default())
            .await
            .map(|_| ())
    }

    /// Asks for log messages at `level` and above: `logging/setLevel` in a session; in
    /// 2026-07-28, `logLevel` in every later request's `_meta`.
    pub async fn set_level(&self, level: wire::LoggingLevel) -> Result<(), ClientError> {
        if self.inner.era == Era::Stateless {
            *self.inner.log_level.lock().unwrap_or_else(PoisonError::into_inner) = Some(level);
            return Ok(());
        }
        let params = object("logging/setLevel", json!({"level": level}))?;
        self.call::<Value>("logging/setLevel", params, &RequestOptions::default())
            .await?;
        // Kept for a renewed session (see `ClientConfig::renew_sessions`).
        *self.inner.log_level.lock().unwrap_or_else(PoisonError::into_inner) = Some(level);
        Ok(())
    }

    /// Tells the server the client's roots changed (`notifications/roots/list_changed`,
    /// sessions; a 2026-07-28 server asks for roots when it needs them).
    pub async fn notify_roots_changed(&self) -> Result<(), ClientError> {
        if self.inner.era == Era::Stateless {
            return Err(self.unsupported("notifications/roots/list_changed"));
        }
        self.inner
            .handle
            .notify("notifications/roots/list_changed", &json!({}))
            .await
            .map_err(|e| ClientError::from_peer("notifications/roots/list_changed", e))
    }

    fn page(cursor: Option<&str>) -> Map<String, Value> {
        let mut params = Map::new();
        if let Some(cursor) = cursor {
            params.insert("cursor".into(), cursor.into());
        }
        params
    }

    /// Follows `nextCursor` from the first page, at most [`ClientConfig::max_pages`] pages.
    async fn all<I, F, Fut>(&self, method: &str, mut page: F) -> Result<Vec<I>, ClientError>
    where
        F: FnMut(Option<String>) -> Fut,
        Fut: Future<Output = Result<(Vec<I>, Option<String>), ClientError>>,
    {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        let mut seen = std::collections::HashSet::new();
        let max = self.inner.config.max_pages.max(1);
        for _ in 0..max {
            let (items, next) = page(cursor.take()).await?;
            all.extend(items);
            match next {
                None => return Ok(all),
                Some(next) if !seen.insert(next.clone()) => {
                    return Err(ClientError::protocol(
                        method,
                        format!("the cursor {next:?} came back twice"),
                    ));
                }
                Some(next) => cursor = Some(next),
            }
        }
        Err(ClientError::protocol(method, format!("more than {max} pages")))
    }

    /// One page of `tools/list`. On Streamable HTTP in 2026-07-28, tools whose `x-mcp-header`
    /// annotations are invalid are left out, as that revision requires.
    pub async fn list_tools(&self, cursor: Option<&str>) -> Result<wire::ListToolsResult, ClientError> {
        let mut result: wire::ListToolsResult = self
            .call("tools/list", Self::page(cursor), &RequestOptions::default())
            .await?;
        if self.mirrors_params() {
            result.tools.retain(|tool| {
                serde_json::to_value(&tool.input_schema)
                    .map(|schema| crate::mirror::header_params(&schema).is_ok())
                    .unwrap_or(false)
            });
        }
        self.inner.schemas.learn(&result.tools);
        Ok(result)
    }

    /// Every tool, following cursors.
    pub async fn list_all_tools(&self) -> Result<Vec<wire::Tool>, ClientError> {
        self.all("tools/list", |cursor| async move {
            let page = self.list_tools(cursor.as_deref()).await?;
            Ok((page.tools, page.next_cursor))
        })
        .await
    }

    /// `tools/call` with `arguments` (an object, or `null` for none).
    pub async fn call_tool(&self, name: &str, arguments: impl Serialize) -> Result<wire::CallToolResult, ClientError> {
        self.call_tool_with(name, arguments, &RequestOptions::default()).await
    }

    /// `tools/call` with options (timeout, progress). A tool error is a result with
    /// `is_error: Some(true)`, not an `Err`. On Streamable HTTP in 2026-07-28, a call refused
    /// for its `Mcp-Param-*` headers (`-32020`) is retried once after listing the tools again,
    /// as that revision advises.
    pub async fn call_tool_with(
        &self,
        name: &str,
        arguments: impl Serialize,
        options: &RequestOptions,
    ) -> Result<wire::CallToolResult, ClientError> {
        let method = "tools/call";
        let arguments = serde_json::to_value(arguments).map_err(|source| ClientError::Encode {
            method: method.into(),
            source,
        })?;
        let mut params = Map::new();
        params.insert("name".into(), name.into());
        match arguments {
            Value::Null => {}
            Value::Object(arguments) => {
                params.insert("arguments".into(), Value::Object(arguments));
            }
            other => {
                return Err(ClientError::Encode {
                    method: method.into(),
                    source: serde::ser::Error::custom(format!("tool arguments must be an object, got {other}")),
                });
            }
        }
        let result: wire::CallToolResult = match self.call_with(method, &params, options).await {
            Err(e) if self.mirrors_params() && e.code() == Some(HEADER_MISMATCH) => {
                self.list_all_tools().await?;
                self.call_with(method, &params, options).await?
            }
            other => other?,
        };
        if self.inner.config.validate_output
            && let Err(message) = self.inner.schemas.check(name, &result)
        {
            return Err(ClientError::OutputSchema {
                tool: name.into(),
                message,
                result: Box::new(result),
            });
        }
        Ok(result)
    }

    /// One page of `resources/list`.
    pub async fn list_resources(&self, cursor: Option<&str>) -> Result<wire::ListResourcesResult, ClientError> {
        self.call("resources/list", Self::page(cursor), &RequestOptions::default())
            .await
    }

    /// Every resource, following cursors.
    pub async fn list_all_resources(&self) -> Result<Vec<wire::Resource>, ClientError> {
        self.all("resources/list", |cursor| async move {
            let page = self.list_resources(cursor.as_deref()).await?;
            Ok((page.resources, page.next_cursor))
        })
        .await
    }

    /// One page of `resources/templates/list`.
    pub async fn list_resource_templates(
        &self,
        cursor: Option<&str>,
    ) -> Result<wire::ListResourceTemplatesResult, ClientError> {
        self.call(
            "resources/templates/list",
            Self::page(cursor),
            &RequestOptions::default(),
        )
        .await
    }

    /// Every resource template, following cursors.
    pub async fn list_all_resource_templates(&self) -> Result<Vec<wire::ResourceTemplate>, ClientError> {
        self.all("resources/templates/list", |cursor| async move {
            let page = self.list_resource_templates(cursor.as_deref()).await?;
            Ok((page.resource_templates, page.next_cursor))
        })
        .await
    }

    /// `resources/read`.
    pub async fn read_resource(&self, uri: &str) -> Result<wire::ReadResourceResult, ClientError> {
        self.read_resource_with(uri, &RequestOptions::default()).await
    }

    /// `resources/read` with options.
    pub async fn read_resource_with(
        &self,
        uri: &str,
        options: &RequestOptions,
    ) -> Result<wire::ReadResourceResult, ClientError> {
        let mut params = Map::new();
        params.insert("uri".into(), uri.into());
        self.call("resources/read", params, options).await
    }

    /// One page of `prompts/list`.
    pub async fn list_prompts(&self, cursor: Option<&str>) -> Result<wire::ListPromptsResult, ClientError> {
        self.call("prompts/list", Self::page(cursor), &RequestOptions::default())
            .await
    }

    /// Every prompt, following cursors.
    pub async fn list_all_prompts(&self) -> Result<Vec<wire::Prompt>, ClientError> {
        self.all("prompts/list", |cursor| async move {
            let page = self.list_prompts(cursor.as_deref()).await?;
            Ok((page.prompts, page.next_cursor))
        })
        .await
    }

    /// `prompts/get` with string arguments.
    pub async fn get_prompt(
        &self,
        name: &str,
        arguments: BTreeMap<String, String>,
    ) -> Result<wire::GetPromptResult, ClientError> {
        self.get_prompt_with(name, arguments, &RequestOptions::default()).await
    }

    /// `prompts/get` with options.
    pub async fn get_prompt_with(
        &self,
        name: &str,
        arguments: BTreeMap<String, String>,
        options: &RequestOptions,
    ) -> Result<wire::GetPromptResult, ClientError> {
        let mut params = Map::new();
        params.insert("name".into(), name.into());
        if !arguments.is_empty() {
            params.insert("arguments".into(), json!(arguments));
        }
        self.call("prompts/get", params, options).await
    }

    /// `completion/complete`: suggestions for `argument` of a prompt or resource template.
    pub async fn complete(
        &self,
        reference: wire::CompleteRequestParamsRef,
        argument: wire::CompleteRequestParamsArgument,
        context: Option<wire::CompleteRequestParamsContext>,
    ) -> Result<wire::CompleteResult, ClientError> {
        let method = "completion/complete";
        let mut params = object(method, json!({"ref": reference, "argument": argument}))?;
        if let Some(context) = context {
            params.insert(
                "context".into(),
                serde_json::to_value(context).map_err(|source| ClientError::Encode {
                    method: method.into(),
                    source,
                })?,
            );
        }
        self.call(method, params, &RequestOptions::default()).await
    }

    /// `resources/subscribe` (sessions; in 2026-07-28 use [`Client::listen`]).
    pub async fn subscribe(&self, uri: &str) -> Result<(), ClientError> {
        self.subscription("resources/subscribe", uri).await
    }

    /// `resources/unsubscribe` (sessions).
    pub async fn unsubscribe(&self, uri: &str) -> Result<(), ClientError> {
        self.subscription("resources/unsubscribe", uri).await
    }

    async fn subscription(&self, method: &str, uri: &str) -> Result<(), ClientError> {
        if self.inner.era == Era::Stateless {
            return Err(self.unsupported(method));
        }
        let mut params = Map::new();
        params.insert("uri".into(), uri.into());
        self.call::<Value>(method, params, &RequestOptions::default()).await?;
        let mut subscribed = self
            .inner
            .renewal
            .subscribed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if method == "resources/subscribe" {
            subscribed.insert(uri.into());
        } else {
            subscribed.remove(uri);
        }
        Ok(())
    }

    /// Asks for the change notifications `filter` names, in either era: a
    /// `subscriptions/listen` stream (2026-07-28), acknowledged before this returns; in a
    /// session, `resources/subscribe` for each URI (list changes come to every session whose
    /// server offers them). The notifications arrive on [`Client::notifications`].
    pub async fn listen(&self, filter: wire::SubscriptionFilter) -> Result<Subscription, ClientError> {
        if let Era::Stateful(_) = self.inner.era {
            let uris = filter.resource_subscriptions.clone().unwrap_or_default();
            for uri in &uris {
                self.subscribe(uri).await?;
            }
            let caps = &self.inner.server.capabilities;
            let mut granted = wire::SubscriptionFilter::new();
            let offered = |asked: Option<bool>, offered: bool| asked.filter(|on| *on && offered);
            granted.tools_list_changed = offered(
                filter.tools_list_changed,
                caps.tools.as_ref().is_some_and(|t| t.list_changed == Some(true)),
            );
            granted.prompts_list_changed = offered(
                filter.prompts_list_changed,
                caps.prompts.as_ref().is_some_and(|p| p.list_changed == Some(true)),
            );
            granted.resources_list_changed = offered(
                filter.resources_list_changed,
                caps.resources.as_ref().is_some_and(|r| r.list_changed == Some(true)),
            );
            granted.resource_subscriptions = (!uris.is_empty()).then(|| uris.clone());
            return Ok(Subscription {
                granted,
                state: SubscriptionState::Session {
                    client: self.clone(),
                    uris,
                },
            });
        }
        let method = "subscriptions/listen";
        let mut params = Map::new();
        params.insert(
            "notifications".into(),
            serde_json::to_value(&filter).map_err(|source| ClientError::Encode {
                method: method.into(),
                source,
            })?,
        );
        let raw = self.encode(method, (&params).into(), &RequestOptions::default())?;
        let (assigned_tx, assigned_rx) = oneshot::channel();
        let shared = self.inner.shared.clone();
        let handle = self.inner.handle.clone();
        let mut task = tokio::spawn(async move {
            let mut id = None;
            let outcome = handle
                .request_raw_with_id(method, Some(raw), Some(Duration::MAX), |assigned| {
                    let ack = shared.router.expect_ack(assigned);
                    id = Some(assigned.clone());
                    let _ = assigned_tx.send((assigned.clone(), ack));
                })
                .await;
            if let Some(id) = &id {
                shared.router.forget_ack(id);
            }
            outcome.map(|_| ()).map_err(|e| ClientError::from_peer(method, e))
        });
        let ended = |outcome: Result<Result<(), ClientError>, tokio::task::JoinError>| match outcome {
            Ok(Err(e)) => e,
            _ => ClientError::protocol(method, "the subscription ended before it was acknowledged"),
        };
        let (id, ack) = tokio::select! {
            assigned = assigned_rx => match assigned {
                Ok(assigned) => assigned,
                Err(_) => return Err(ended((&mut task).await)),
            },
            outcome = &mut task => return Err(ended(outcome)),
        };
        let timeout = self.inner.config.request_timeout;
        let granted = tokio::select! {
            granted = ack => granted.map_err(|_| ClientError::Closed),
            outcome = &mut task => Err(ended(outcome)),
            () = tokio::time::sleep(timeout) => Err(ClientError::Timeout { method: method.into(), after: timeout }),
        };
        let granted = match granted {
            Ok(granted) => granted,
            Err(e) => {
                task.abort();
                return Err(e);
            }
        };
        Ok(Subscription {
            granted,
            state: SubscriptionState::Listen { id, task: Some(task) },
        })
    }
}

/// `params` as an object: `null` is none, anything else but an object is refused.
fn object(method: &str, params: Value) -> Result<Map<String, Value>, ClientError> {
    match params {
        Value::Null => Ok(Map::new()),
        Value::Object(map) => Ok(map),
        other => Err(ClientError::Encode {
            method: method.into(),
            source: serde::ser::Error::custom(format!("params must be an object, got {other}")),
        }),
    }
}

/// Change notifications the client asked for with [`Client::listen`].
///
/// A `subscriptions/listen` stream (2026-07-28) lasts until [`Subscription::close`], until it
/// is dropped (both cancel the request: the server ends the stream), or until the server ends
/// it ([`Subscription::ended`]). In a session, closing unsubscribes the URIs; dropping leaves
/// them subscribed for the session's life.
#[derive(Debug)]
pub struct Subscription {
    granted: wire::SubscriptionFilter,
    state: SubscriptionState,
}

#[derive(Debug)]
enum SubscriptionState {
    Listen {
        id: RequestId,
        task: Option<JoinHandle<Result<(), ClientError>>>,
    },
    Session {
        client: Client,
        uris: Vec<String>,
    },
}

impl Subscription {
    /// What the server agreed to send (the acknowledged filter; in a session, what its
    /// capabilities offer).
    pub fn granted(&self) -> &wire::SubscriptionFilter {
        &self.granted
    }

    /// The id of the `subscriptions/listen` request, which its notifications carry
    /// ([`Notification::ResourceUpdated::subscription`] …); `None` in a session.
    pub fn id(&self) -> Option<&RequestId> {
        match &self.state {
            SubscriptionState::Listen { id, .. } => Some(id),
            SubscriptionState::Session { .. } => None,
        }
    }

    /// Completes when the server ends the subscription: `Ok` for a graceful end (its result),
    /// an error when the connection dropped. In a session, waits for the connection to close.
    pub async fn ended(&mut self) -> Result<(), ClientError> {
        match &mut self.state {
            SubscriptionState::Listen { task, .. } => match task.as_mut() {
                Some(running) => {
                    let outcome = running.await;
                    *task = None;
                    outcome.unwrap_or(Err(ClientError::Closed))
                }
                None => Ok(()),
            },
            SubscriptionState::Session { client, .. } => {
                client.inner.handle.closed().await;
                Err(ClientError::Closed)
            }
        }
    }

    /// Ends the subscription: cancels the `subscriptions/listen` request, or unsubscribes the
    /// session's URIs.
    pub async fn close(mut self) -> Result<(), ClientError> {
        match &mut self.state {
            SubscriptionState::Listen { task, .. } => {
                if let Some(task) = task.take() {
                    task.abort();
                }
                Ok(())
            }
            SubscriptionState::Session { client, uris } => {
                for uri in std::mem::take(uris) {
                    client.unsubscribe(&uri).await?;
                }
                Ok(())
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let SubscriptionState::Listen { task: Some(task), .. } = &self.state {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sent(
        params: Value,
        stateless: Option<Value>,
        level: Option<wire::LoggingLevel>,
        options: &RequestOptions,
    ) -> Value {
        let Value::Object(params) = params else {
            panic!("params must be an object")
        };
        let stateless = stateless.map(|s| match s {
            Value::Object(map) => map,
            _ => panic!("stateless meta must be an object"),
        });
        let stateless = stateless.as_ref().map(encoded);
        let sent = Sent {
            params: Params::new(&params),
            stateless: stateless.as_deref(),
            level,
            options,
        };
        serde_json::to_value(&sent).expect("encodes")
    }

    #[test]
    fn a_raw_member_is_written_as_its_text_in_place_of_the_decoded_one() {
        let Value::Object(members) = json!({"name": "echo", "arguments": {"lost": true}, "_meta": {"a": 1}}) else {
            unreachable!()
        };
        // Spacing, member order and a repeated member as sent: written as they are.
        let raw: Box<RawValue> = serde_json::from_str(r#"{ "z" : [1, 2],"a":"\u00e9","a":0 }"#).expect("JSON");
        let options = RequestOptions::new();
        let sent = Sent {
            params: Params::new(&members).with_raw("arguments", &raw),
            stateless: None,
            level: None,
            options: &options,
        };
        assert_eq!(
            serde_json::to_string(&sent).expect("encodes"),
            r#"{"name":"echo","arguments":{ "z" : [1, 2],"a":"\u00e9","a":0 },"_meta":{"a":1}}"#
        );
    }

    #[test]
    fn sent_params_merge_meta_in_order_of_precedence() {
        let options = RequestOptions::new()
            .meta("b", json!("options"))
            .meta("progressToken", json!("loses to the token"))
            .progress(wire::ProgressToken::from(7));
        let stateless = json!({"a": "era", "b": "era", "c": "era", "io.modelcontextprotocol/logLevel": "ignored"});
        let params = json!({"name": "echo", "_meta": {"a": "own", "progressToken": "own"}});
        let out = sent(params, Some(stateless), Some(wire::LoggingLevel::Debug), &options);
        assert_eq!(
            out,
            json!({
                "name": "echo",
                "_meta": {
                    "a": "own",
                    "b": "options",
                    "c": "era",
                    "io.modelcontextprotocol/logLevel": "ignored",
                    "progressToken": 7
                }
            })
        );
    }

    #[test]
    fn sent_params_carry_the_log_level_and_drop_an_empty_or_malformed_meta() {
        let none = RequestOptions::new();
        let out = sent(json!({"x": 1, "_meta": "not an object"}), None, None, &none);
        assert_eq!(out, json!({"x": 1}));
        let out = sent(json!({"x": 1, "_meta": {}}), None, None, &none);
        assert_eq!(out, json!({"x": 1}));
        let out = sent(json!({}), Some(json!({})), Some(wire::LoggingLevel::Warning), &none);
        assert_eq!(out, json!({"_meta": {"io.modelcontextprotocol/logLevel": "warning"}}));
    }

    #[test]
    fn results_without_a_result_type_read_as_complete() {
        let raw = |text: &str| RawValue::from_string(text.to_string()).expect("valid JSON");
        let empty: Value = complete("ping", &raw(" { } ")).expect("an empty result");
        assert_eq!(empty, json!({"resultType": "complete"}));
        let result: wire::CallToolResult =
            complete("tools/call", &raw(r#"{"content":[{"type":"text","text":"hi"}]}"#)).expect("a 2025 result");
        assert_eq!(result.result_type, "complete");
        let error = complete::<Value>("tools/call", &raw(r#"{"resultType":"input_required"}"#)).unwrap_err();
        assert!(
            error.to_string().contains("unexpected resultType \"input_required\""),
            "{error}"
        );
        let error = complete::<Value>("tools/call", &raw("[1]")).unwrap_err();
        assert!(error.to_string().contains("not an object"), "{error}");
    }
}
