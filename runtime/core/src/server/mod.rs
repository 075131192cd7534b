//! The server framework: tools registered once, written against the newest revision's types,
//! served to clients of both protocol generations.
//!
//! - 2026-07-28 (stateless): every request carries the protocol version and the client's
//!   capabilities in `_meta`; `server/discover` describes the server; results carry
//!   `resultType`, and list results `ttlMs`/`cacheScope`.
//! - 2025-11-25 … 2024-11-05 (stateful): `initialize` negotiates a revision for the connection,
//!   then requests are plain; results are adapted to the negotiated revision ([`adapt`]).
//!
//! A [`Server`] holds what is registered; [`Server::connection`] makes the [`crate::Service`] of
//! one connection (a stdio pipe, an HTTP session, a WebSocket), which keeps that connection's
//! negotiated state.
//!
//! Reading a request's params: a 2026-07-28 request's `_meta` (its era, the client's
//! capabilities) is decoded and, for `tools/call`, its `name` and `arguments` are found (kept
//! raw) in one pass over the params (`Head`); the arguments are then read straight into the
//! tool's argument type. Whatever does not read that way is decoded again the plain
//! way, whose errors name the problem, so the fast path changes no answer. A `tools/call`
//! result is written without a `serde_json::Value` in between, with the server's `_meta`
//! (2026-07-28) or without the members the session's revision lacks.

pub mod adapt;
pub mod catalog;
pub mod context;
pub mod input;
pub mod notify;
pub mod prompt;
pub mod resource;
pub mod sessions;
pub mod skills;
pub mod tasks;
pub mod tool;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use portico_protocol::v2026_07_28 as wire;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::error::{ErrorObject, INVALID_REQUEST};
use crate::message::JsonText;
use crate::mirror::PROTOCOL_VERSION_KEY;
use crate::peer::{PeerHandle, RequestContext, Service};
pub use catalog::{Answered, Catalog, CatalogFeatures};
pub use context::Context;
pub use notify::Change;
pub use prompt::{Prompt, prompt};
pub use resource::{Resource, ResourceTemplate, resource, resource_template};
pub use tool::{IntoToolResult, Json, Tool, tool};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
/// A completion handler: the request's params in, suggested values out.
type CompleteHandler =
    dyn Fn(Context, wire::CompleteRequestParams) -> BoxFuture<Result<Vec<String>, ErrorObject>> + Send + Sync;

/// The revision served statelessly, with per-request `_meta`.
pub const STATELESS_REVISION: &str = "2026-07-28";

/// The revisions negotiated with `initialize`, newest first.
pub const STATEFUL_REVISIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// `-32021` of 2026-07-28: the request needs a client capability the client did not declare.
pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i64 = -32021;

/// `-32022` of 2026-07-28: the requested protocol version is not supported.
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// Default page size of list results.
pub const DEFAULT_PAGE_SIZE: usize = 100;

/// What a server is: its identity, instructions and registered tools.
#[derive(Clone)]
pub struct Server {
    inner: Arc<Registry>,
}

/// What is registered; shared by every connection.
struct Registry {
    info: wire::Implementation,
    /// `"_meta":{"io.modelcontextprotocol/serverInfo":<info>}`, the member every 2026-07-28
    /// result gets, encoded once.
    info_meta: String,
    /// `{"io.modelcontextprotocol/serverInfo":<info>}`: the same `_meta`, as a value.
    info_meta_value: Box<RawValue>,
    instructions: Option<String>,
    tools: Vec<Tool>,
    /// Finders of the names of the tools with `x-mcp-header` arguments, built once: only
    /// params holding one of them are read by `check_mirrored`.
    header_tool_names: Vec<memchr::memmem::Finder<'static>>,
    resources: Vec<Resource>,
    templates: Vec<ResourceTemplate>,
    prompts: Vec<Prompt>,
    completion: Option<Arc<CompleteHandler>>,
    page_size: usize,
    list_ttl_ms: i64,
    /// Connections and streams waiting for change notifications.
    listeners: notify::Listeners,
    /// Cancelled by [`Server::shutdown`]: open `subscriptions/listen` streams end gracefully.
    shutdown: tokio_util::sync::CancellationToken,
    /// Seals `requestState` of input-required results.
    sealer: input::Sealer,
    /// The tasks extension: the store and the running tasks (see [`tasks`]).
    tasks: Option<Arc<tasks::Tasks>>,
    /// The skills extension's skills (see [`skills`]).
    skills: Vec<skills::Skill>,
    /// Items decided at request time (see [`catalog`]).
    catalog: Option<Arc<dyn Catalog>>,
    /// Encoded pages of the catalog's keyed listings ([`catalog::Listing::key`]).
    pages: Mutex<PageMemo>,
    /// Where stateful sessions are kept for other processes of the server (see [`sessions`]).
    session_store: Option<Arc<dyn sessions::SessionStore>>,
}

impl Registry {
    /// The capabilities the registered features add up to. Logging is always offered.
    fn capabilities(&self) -> wire::ServerCapabilities {
        let r = self;
        let mut caps = wire::ServerCapabilities::new().with_logging(Default::default());
        if r.has_tools() {
            caps.tools = Some(wire::ServerCapabilitiesTools::new().with_list_changed(true));
        }
        if r.has_resources() {
            caps.resources = Some(
                wire::ServerCapabilitiesResources::new()
                    .with_list_changed(true)
                    .with_subscribe(true),
            );
        }
        if r.has_prompts() {
            caps.prompts = Some(wire::ServerCapabilitiesPrompts::new().with_list_changed(true));
        }
        if r.completion.is_some() || r.features().completions {
            caps.completions = Some(Default::default());
        }
        let mut extensions = BTreeMap::new();
        if r.tasks.is_some() {
            extensions.insert(tasks::EXTENSION.to_string(), Default::default());
        }
        if !r.skills.is_empty() {
            // `resources/directory/read` is served for the skills' directories.
            let settings = BTreeMap::from([("directoryRead".to_string(), true.into())]);
            extensions.insert(skills::EXTENSION.to_string(), settings);
        }
        if let Some(catalog) = &r.catalog {
            for (name, settings) in catalog.extensions() {
                // Settings that are no JSON object are declared without settings.
                let settings = serde_json::from_value(settings).unwrap_or_default();
                extensions.entry(name).or_insert(settings);
            }
        }
        if !extensions.is_empty() {
            caps.extensions = Some(extensions);
        }
        caps
    }
}

impl Registry {
    /// What the catalog adds (nothing without one).
    fn features(&self) -> CatalogFeatures {
        self.catalog.as_ref().map(|c| c.features()).unwrap_or_default()
    }

    fn has_tools(&self) -> bool {
        !self.tools.is_empty() || self.features().tools
    }

    fn has_resources(&self) -> bool {
        !self.resources.is_empty() || !self.templates.is_empty() || self.features().resources
    }

    fn has_prompts(&self) -> bool {
        !self.prompts.is_empty() || self.features().prompts
    }

    /// The capabilities of a session at `revision`: the tasks extension is 2026-07-28's, not
    /// declared there; a 2025-11-25 session gets that revision's `tasks` capability instead
    /// (see [`tasks::session`]).
    fn session_capabilities(&self, revision: &str) -> wire::ServerCapabilities {
        let mut caps = self.capabilities();
        if let Some(extensions) = caps.extensions.as_mut() {
            extensions.remove(tasks::EXTENSION);
            if extensions.is_empty() {
                caps.extensions = None;
            }
        }
        if self.tasks.is_some() && tasks::session::served_to(revision) {
            caps.extra.insert("tasks".into(), tasks::session::capability());
        }
        caps
    }
}

/// Builds a [`Server`].
pub struct ServerBuilder {
    registry: Registry,
}

impl ServerBuilder {
    /// Instructions for the model using the server.
    pub fn instructions(mut self, text: impl Into<String>) -> Self {
        self.registry.instructions = Some(text.into());
        self
    }

    /// Adds a tool. Panics if a tool of that name is already registered (a programming error).
    pub fn tool(mut self, tool: Tool) -> Self {
        if self.registry.tools.iter().any(|t| t.name() == tool.name()) {
            panic!("a tool named `{}` is already registered", tool.name());
        }
        self.registry.tools.push(tool);
        self
    }

    /// Adds a resource. Panics if its URI is already registered.
    pub fn resource(mut self, resource: Resource) -> Self {
        if self
            .registry
            .resources
            .iter()
            .any(|r| r.definition().uri == resource.definition().uri)
        {
            panic!("a resource at `{}` is already registered", resource.definition().uri);
        }
        self.registry.resources.push(resource);
        self
    }

    /// Adds a resource template (tried in registration order, after the fixed resources).
    pub fn resource_template(mut self, template: ResourceTemplate) -> Self {
        self.registry.templates.push(template);
        self
    }

    /// Adds a prompt. Panics if a prompt of that name is already registered.
    pub fn prompt(mut self, prompt: Prompt) -> Self {
        if self
            .registry
            .prompts
            .iter()
            .any(|p| p.definition().name == prompt.definition().name)
        {
            panic!("a prompt named `{}` is already registered", prompt.definition().name);
        }
        self.registry.prompts.push(prompt);
        self
    }

    /// Sets the handler of `completion/complete` (argument suggestions for prompts and resource
    /// templates); the `completions` capability is declared with it.
    pub fn completion<F, Fut>(mut self, complete: F) -> Self
    where
        F: Fn(Context, wire::CompleteRequestParams) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<String>, ErrorObject>> + Send + 'static,
    {
        let complete = Arc::new(complete);
        self.registry.completion = Some(Arc::new(move |cx, params| {
            let complete = complete.clone();
            Box::pin(async move { complete(cx, params).await })
        }));
        self
    }

    /// Serves the tasks extension with `store` (default settings; see [`tasks`]). Without it, a
    /// server with task-supporting tools keeps its tasks in an [`tasks::InMemoryTaskStore`].
    pub fn tasks(self, store: impl tasks::TaskStore) -> Self {
        self.tasks_with(store, tasks::TaskConfig::default())
    }

    /// Serves the tasks extension with `store` and `config` (TTL, polling interval).
    pub fn tasks_with(mut self, store: impl tasks::TaskStore, config: tasks::TaskConfig) -> Self {
        self.registry.tasks = Some(Arc::new(tasks::Tasks::new(Arc::new(store), config)));
        self
    }

    /// Adds a skill (the skills extension): its files become resources under `skill://`, and
    /// `skills/list`, `skills/get` and `resources/directory/read` serve it (see [`skills`]).
    /// Panics if a skill or resource at its URIs is already registered.
    pub fn skill(mut self, skill: skills::Skill) -> Self {
        if self.registry.skills.iter().any(|s| s.uri() == skill.uri()) {
            panic!("a skill at `{}` is already registered", skill.uri());
        }
        for resource in skill.resources() {
            self = self.resource(resource);
        }
        self.registry.skills.push(skill);
        self
    }

    /// Items per page of list results (at least 1).
    pub fn page_size(mut self, size: usize) -> Self {
        self.registry.page_size = size.max(1);
        self
    }

    /// Keeps stateful sessions in `store`, shared with other processes of the same server, so
    /// that any of them can serve a session's next request (see [`sessions`]).
    pub fn session_store(mut self, store: Arc<dyn sessions::SessionStore>) -> Self {
        self.registry.session_store = Some(store);
        self
    }

    /// Serves the items of `catalog` after the registered ones (see [`catalog`]).
    pub fn catalog(mut self, catalog: impl Catalog) -> Self {
        self.registry.catalog = Some(Arc::new(catalog));
        self
    }

    /// The `ttlMs` hint of list results for 2026-07-28 clients (default 0: re-fetch freely).
    pub fn list_ttl_ms(mut self, ttl: i64) -> Self {
        self.registry.list_ttl_ms = ttl.max(0);
        self
    }

    /// The server.
    pub fn build(mut self) -> Server {
        let r = &mut self.registry;
        if r.tasks.is_none()
            && r.tools
                .iter()
                .any(|t| t.task_support() != tasks::TaskSupport::Forbidden)
        {
            let store = Arc::new(tasks::InMemoryTaskStore::default());
            r.tasks = Some(Arc::new(tasks::Tasks::new(store, tasks::TaskConfig::default())));
        }
        r.header_tool_names = r
            .tools
            .iter()
            .filter(|t| !t.header_params().is_empty())
            .map(|t| memchr::memmem::Finder::new(t.name().as_bytes()).into_owned())
            .collect();
        // An `Implementation` is strings and optional strings: it always encodes.
        let info = serde_json::to_string(&r.info).unwrap_or_else(|_| "{}".into());
        r.info_meta = format!("\"_meta\":{{\"io.modelcontextprotocol/serverInfo\":{info}}}");
        let meta = format!("{{\"io.modelcontextprotocol/serverInfo\":{info}}}");
        r.info_meta_value = RawValue::from_string(meta).unwrap_or_else(|_| empty_object());
        Server {
            inner: Arc::new(self.registry),
        }
    }
}

impl Server {
    /// A builder for a server called `name` at `version`.
    pub fn builder(name: impl Into<String>, version: impl Into<String>) -> ServerBuilder {
        ServerBuilder {
            registry: Registry {
                info: wire::Implementation::new(name, version),
                info_meta: String::new(),
                info_meta_value: empty_object(),
                instructions: None,
                tools: Vec::new(),
                header_tool_names: Vec::new(),
                resources: Vec::new(),
                templates: Vec::new(),
                prompts: Vec::new(),
                completion: None,
                page_size: DEFAULT_PAGE_SIZE,
                list_ttl_ms: 0,
                listeners: notify::Listeners::default(),
                shutdown: tokio_util::sync::CancellationToken::new(),
                sealer: input::Sealer::random(),
                tasks: None,
                skills: Vec::new(),
                catalog: None,
                pages: Mutex::default(),
                session_store: None,
            },
        }
    }

    /// The service of one new connection.
    pub fn connection(&self) -> Connection {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Connection {
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            session_id: std::sync::OnceLock::new(),
            server: self.inner.clone(),
            session: Mutex::new(Session::default()),
        }
    }

    /// Announces a change to every connection and stream that asked for it.
    pub fn notify(&self, change: Change) {
        self.inner.listeners.announce(&change);
    }

    /// How many sessions and `subscriptions/listen` streams are listening for changes.
    pub fn listeners(&self) -> usize {
        self.inner.listeners.len()
    }

    /// Ends every open `subscriptions/listen` stream with its graceful result, and stops the
    /// handlers of running tasks (call before shutting the transports down).
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
        // Task handlers (the tasks extension) are stopped; their records stay in the store.
        if let Some(tasks) = &self.inner.tasks {
            tasks.shutdown();
        }
    }

    /// The capabilities the registered features add up to. Logging is always offered.
    pub fn capabilities(&self) -> wire::ServerCapabilities {
        self.inner.capabilities()
    }
}

/// A connection's negotiated state (stateful revisions only).
#[derive(Debug, Default)]
struct Session {
    /// URIs `resources/subscribe` asked for (shared with the session's change listener); made
    /// by `initialize`, so a stateless request's connection allocates none.
    subscriptions: Option<Arc<Mutex<std::collections::BTreeSet<String>>>>,
    /// Forwards changes to this session while it lives.
    forward: Option<notify::Forwarding>,
    /// The revision `initialize` negotiated.
    revision: Option<&'static str>,
    /// The level `logging/setLevel` asked for.
    log_level: Option<wire::LoggingLevel>,
    /// The capabilities the client declared in `initialize`.
    client_capabilities: serde_json::Value,
}

/// The revision a request is served at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Era {
    /// 2026-07-28, from the request's `_meta`.
    Stateless,
    /// A revision negotiated by `initialize`.
    Stateful(&'static str),
}

/// The [`Service`] of one connection to a [`Server`].
pub struct Connection {
    /// Unique in the process ([`Context::connection_id`]).
    id: u64,
    /// The transport's id of the session this connection is ([`Service::session_started`]).
    session_id: std::sync::OnceLock<String>,
    server: Arc<Registry>,
    session: Mutex<Session>,
}

/// The members of `params._meta` that decide the era.
#[derive(Deserialize)]
struct MetaPeek {
    #[serde(rename = "_meta")]
    meta: Option<MetaVersion>,
}

#[derive(Deserialize)]
struct MetaVersion {
    #[serde(rename = "io.modelcontextprotocol/protocolVersion")]
    protocol_version: Option<String>,
}

/// Whether params text mentions [`PROTOCOL_VERSION_KEY`] (only a 2026-07-28 request's does):
/// a searcher built once, where `str::contains` would set one up on every call.
fn names_a_version(params: &RawValue) -> bool {
    static KEY: crate::message::Mention = crate::message::Mention::new(PROTOCOL_VERSION_KEY);
    KEY.is_in(params.get())
}

/// The protocol version a request's `_meta` names (2026-07-28 style), if any.
fn requested_version(params: Option<&RawValue>) -> Option<String> {
    params
        .filter(|p| names_a_version(p))
        .and_then(|p| serde_json::from_str::<MetaPeek>(p.get()).ok())
        .and_then(|p| p.meta)
        .and_then(|m| m.protocol_version)
}

/// The members of a 2026-07-28 request's params the framework reads before the method does,
/// found in one pass: `_meta` decoded (the era, the client's capabilities, the log level), the
/// members of a Multi Round-Trip Request and of `tools/call` left raw.
#[derive(Deserialize)]
struct Prelude<'a> {
    #[serde(rename = "_meta", default)]
    meta: Option<Box<wire::RequestMetaObject>>,
    #[serde(rename = "inputResponses", borrow, default)]
    input_responses: Option<&'a RawValue>,
    #[serde(rename = "requestState", borrow, default)]
    request_state: Option<&'a RawValue>,
    /// `tools/call`'s members, so that it need not read the params again.
    #[serde(borrow, default)]
    name: Option<&'a RawValue>,
    #[serde(borrow, default)]
    arguments: Option<&'a RawValue>,
    /// What `Mcp-Name` mirrors of other methods ([`ReadAhead`]).
    #[serde(borrow, default)]
    uri: Option<&'a RawValue>,
    #[serde(rename = "taskId", borrow, default)]
    task_id: Option<&'a RawValue>,
}

/// Where a member of a request's params is in their text: its start and end.
type Span = (usize, usize);

/// The [`Span`] of `member`, a value borrowed from `params`' text.
fn span_of(params: &RawValue, member: &RawValue) -> Span {
    let start = (member.get().as_ptr() as usize).saturating_sub(params.get().as_ptr() as usize);
    (start, start + member.get().len())
}

/// The JSON text at `span` of `params` (a span [`span_of`] found in the same text, whose
/// values were checked when it was read: not read again here).
fn at(params: &RawValue, span: Option<Span>) -> Option<&str> {
    let (start, end) = span?;
    params.get().get(start..end)
}

/// What a 2026-07-28 request's params hold for the framework, read in one pass by the
/// transport that received it and handed on beside the params
/// ([`crate::Peer::serve_alone_read_ahead`]): `_meta` decoded, and where `name`, `uri`,
/// `taskId`, `arguments`, `inputResponses` and `requestState` are in the params' text (left
/// raw). The transport reads the protocol version, whether a progress token is present and the
/// member `Mcp-Name` mirrors from it; the service the rest ([`Head`]), so neither reads the
/// params again for them.
///
/// [`ReadAhead::of`] is `None` for params that name no protocol version (a session's), and for
/// those whose `_meta` is no whole `RequestMetaObject`: then the transport and the service read
/// the params each on their own, and the one that cannot read them names the problem.
#[derive(Debug)]
pub struct ReadAhead {
    /// Where the params' text it was read from starts, and its length: the service uses it
    /// only with that same text (the params are handed on in the box they came in), and reads
    /// any other itself.
    text: (usize, usize),
    meta: Box<wire::RequestMetaObject>,
    name: Option<Span>,
    uri: Option<Span>,
    task_id: Option<Span>,
    arguments: Option<Span>,
    input_responses: Option<Span>,
    request_state: Option<Span>,
}

impl ReadAhead {
    /// Reads `params`; see [`ReadAhead`] for when it is `None`. Meant for params that are
    /// likely a 2026-07-28 request's (the HTTP transport does not call it for a request in an
    /// older session): it reads them without first looking for the version's key, which a
    /// `_meta` that decodes names anyway.
    pub fn of(params: &RawValue) -> Option<Self> {
        let prelude = serde_json::from_str::<Prelude<'_>>(params.get()).ok()?;
        let span = |member: Option<&RawValue>| member.map(|m| span_of(params, m));
        Some(Self {
            text: (params.get().as_ptr() as usize, params.get().len()),
            meta: prelude.meta?,
            name: span(prelude.name),
            uri: span(prelude.uri),
            task_id: span(prelude.task_id),
            arguments: span(prelude.arguments),
            input_responses: span(prelude.input_responses),
            request_state: span(prelude.request_state),
        })
    }

    /// `_meta["io.modelcontextprotocol/protocolVersion"]`.
    pub fn version(&self) -> &str {
        &self.meta.protocol_version
    }

    /// Whether `_meta.progressToken` is present.
    pub fn progress(&self) -> bool {
        self.meta.progress_token.is_some()
    }

    /// `params.name`, if present, as sent (its JSON text); `params` are those it was read from.
    pub fn name<'p>(&self, params: &'p RawValue) -> Option<&'p str> {
        at(params, self.name)
    }

    /// `params.uri`, as [`ReadAhead::name`].
    pub fn uri<'p>(&self, params: &'p RawValue) -> Option<&'p str> {
        at(params, self.uri)
    }

    /// `params.taskId`, as [`ReadAhead::name`].
    pub fn task_id<'p>(&self, params: &'p RawValue) -> Option<&'p str> {
        at(params, self.task_id)
    }

    /// `params.arguments`, as [`ReadAhead::name`].
    pub fn arguments<'p>(&self, params: &'p RawValue) -> Option<&'p str> {
        at(params, self.arguments)
    }

    /// Whether this was read from `params` (the same text, not merely equal text).
    pub fn was_read_from(&self, params: &RawValue) -> bool {
        self.text == (params.get().as_ptr() as usize, params.get().len())
    }
}

/// `params.name` and `params.arguments` of a `tools/call`: from what the transport read
/// ahead when it read these params, else read here (borrowed; `None` when they do not
/// decode, which is the request's to reject, not the headers'). `arguments` is read only
/// when asked for.
struct CallNamed<'p> {
    params: &'p RawValue,
    read_ahead: Option<&'p ReadAhead>,
}

impl<'p> CallNamed<'p> {
    fn new(params: &'p RawValue, read_ahead: Option<&'p ReadAhead>) -> Self {
        let read_ahead = read_ahead.filter(|read| read.was_read_from(params));
        Self { params, read_ahead }
    }

    fn name(&self) -> Option<std::borrow::Cow<'p, str>> {
        #[derive(Deserialize)]
        struct Name<'a> {
            #[serde(borrow)]
            name: std::borrow::Cow<'a, str>,
        }
        match self.read_ahead {
            Some(read) => read.name(self.params).and_then(crate::message::string_in),
            None => serde_json::from_str::<Name<'_>>(self.params.get()).ok().map(|n| n.name),
        }
    }

    fn arguments(&self) -> Option<serde_json::Value> {
        #[derive(Deserialize)]
        struct Arguments {
            arguments: Option<serde_json::Value>,
        }
        match self.read_ahead {
            Some(read) => read
                .arguments(self.params)
                .and_then(|text| serde_json::from_str(text).ok()),
            None => serde_json::from_str::<Arguments>(self.params.get())
                .ok()
                .and_then(|a| a.arguments),
        }
    }
}

/// `tools/call`'s members, the arguments left as sent (their JSON text, checked when the
/// params were read): the tool reads them into its own type, with no map in between.
struct RawCall<'a> {
    name: std::borrow::Cow<'a, str>,
    arguments: Option<&'a str>,
}

impl<'a> RawCall<'a> {
    /// Reads `params` for them.
    fn of(params: &'a RawValue) -> Option<Self> {
        #[derive(Deserialize)]
        struct Call<'a> {
            #[serde(borrow)]
            name: std::borrow::Cow<'a, str>,
            #[serde(default, borrow)]
            arguments: Option<&'a RawValue>,
        }
        let call = serde_json::from_str::<Call<'a>>(params.get()).ok()?;
        Some(Self {
            name: call.name,
            arguments: call.arguments.map(RawValue::get),
        })
    }
}

/// The members of a request's params [`Prelude`] leaves raw, as their JSON text (checked when
/// the params were read, so not read again to be handed on).
#[derive(Default)]
struct Members<'a> {
    input_responses: Option<&'a str>,
    request_state: Option<&'a str>,
    name: Option<&'a str>,
    arguments: Option<&'a str>,
}

impl<'a> Members<'a> {
    fn of(prelude: &Prelude<'a>) -> Self {
        Self {
            input_responses: prelude.input_responses.map(RawValue::get),
            request_state: prelude.request_state.map(RawValue::get),
            name: prelude.name.map(RawValue::get),
            arguments: prelude.arguments.map(RawValue::get),
        }
    }
}

/// What the context of a 2026-07-28 request takes from its params.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatelessParams {
    #[serde(rename = "_meta")]
    meta: Box<wire::RequestMetaObject>,
    #[serde(default)]
    input_responses: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    request_state: Option<String>,
}

/// What [`Connection::request`] reads of a request's params before its method: the protocol
/// version `_meta` names and, for a 2026-07-28 request, its `_meta` decoded, so that neither
/// the era nor the context reads the params again. Each step that finds something it cannot
/// read falls back to decoding the params as before, which names the problem in its error.
struct Head<'a> {
    /// The protocol version `_meta` names (a 2026-07-28 request), as [`requested_version`].
    requested: Option<String>,
    /// The members left raw, when the params were read whole.
    members: Option<Members<'a>>,
    /// `_meta`, when it decoded whole.
    meta: Option<Box<wire::RequestMetaObject>>,
}

impl<'a> Head<'a> {
    /// What the transport read of `params` already ([`ReadAhead`]), else read here.
    fn read(params: Option<&'a RawValue>, read_ahead: Option<Box<ReadAhead>>) -> Self {
        let (Some(params), Some(read)) = (params, read_ahead) else {
            return Self::of(params);
        };
        if read.text != (params.get().as_ptr() as usize, params.get().len()) {
            return Self::of(Some(params));
        }
        let ReadAhead {
            text: _,
            mut meta,
            name,
            uri: _,
            task_id: _,
            arguments,
            input_responses,
            request_state,
        } = *read;
        let members = Members {
            input_responses: at(params, input_responses),
            request_state: at(params, request_state),
            name: at(params, name),
            arguments: at(params, arguments),
        };
        // Taken out: the context needs the rest of `_meta`, not the version.
        let requested = Some(std::mem::take(&mut meta.protocol_version));
        Self {
            requested,
            members: Some(members),
            meta: Some(meta),
        }
    }

    fn of(params: Option<&'a RawValue>) -> Self {
        let none = Self {
            requested: None,
            members: None,
            meta: None,
        };
        // Only a 2026-07-28 request names a version: others are not read here at all.
        let Some(text) = params.filter(|p| names_a_version(p)) else {
            return none;
        };
        // `_meta` is decoded in the same pass; params whose `_meta` is no whole
        // `RequestMetaObject` fail here as a whole, and everything is read the plain way.
        let Ok(mut prelude) = serde_json::from_str::<Prelude<'a>>(text.get()) else {
            return Self {
                requested: requested_version(params),
                ..none
            };
        };
        let mut meta = prelude.meta.take();
        // Taken out: the context needs the rest of `_meta`, not the version.
        let requested = meta.as_mut().map(|meta| std::mem::take(&mut meta.protocol_version));
        Self {
            requested,
            members: Some(Members::of(&prelude)),
            meta,
        }
    }

    /// `tools/call`'s `name` and `arguments`, from what was read already, when `name` is a
    /// string.
    fn call(&self) -> Option<RawCall<'a>> {
        let members = self.members.as_ref()?;
        let name = crate::message::string_in(members.name?)?;
        Some(RawCall {
            name,
            arguments: members.arguments,
        })
    }

    /// `_meta`, `inputResponses` and `requestState` of a 2026-07-28 request, from what was
    /// read already; `None` when something did not decode.
    fn stateless(&mut self) -> Option<StatelessParams> {
        let members = self.members.as_ref()?;
        let input_responses = match members.input_responses {
            Some(text) => Some(serde_json::from_str(text).ok()?),
            None => None,
        };
        let request_state = match members.request_state {
            Some(text) => Some(serde_json::from_str(text).ok()?),
            None => None,
        };
        Some(StatelessParams {
            meta: self.meta.take()?,
            input_responses,
            request_state,
        })
    }
}

/// Methods of the stateful revisions that 2026-07-28 removed.
const SESSION_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "logging/setLevel",
    "resources/subscribe",
    "resources/unsubscribe",
];

/// Decodes `params` as `T`, answering `-32602` with serde's message (which names the member).
fn decode<T: DeserializeOwned>(method: &str, params: Option<&RawValue>) -> Result<T, ErrorObject> {
    decode_text(method, params.map_or("{}", RawValue::get))
}

/// [`decode`] of JSON text.
fn decode_text<T: DeserializeOwned>(method: &str, text: &str) -> Result<T, ErrorObject> {
    serde_json::from_str(text).map_err(|e| ErrorObject::invalid_params(format!("{method}: {e}")))
}

/// A `CallToolResult` with no `_meta` and no members beyond the schema's, for a stateful
/// revision: the members [`adapt::result`] keeps (it drops `resultType`, which 2026-07-28
/// added), written straight from the result instead of through a `serde_json::Value`.
struct SessionCallResult<'a>(&'a tool::CallToolResult);

impl serde::Serialize for SessionCallResult<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let result = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("content", &result.content)?;
        if let Some(is_error) = &result.is_error {
            map.serialize_entry("isError", is_error)?;
        }
        if let Some(structured) = &result.structured_content {
            map.serialize_entry("structuredContent", structured)?;
        }
        map.end()
    }
}

/// "Resource not found": `-32602` in 2026-07-28, `-32002` before.
fn not_found(era: Era, uri: &str) -> ErrorObject {
    let code = if era == Era::Stateless {
        crate::error::INVALID_PARAMS
    } else {
        RESOURCE_NOT_FOUND
    };
    ErrorObject::new(code, format!("resource not found: {uri}")).with_data(serde_json::json!({"uri": uri}))
}

/// `{}`, as a raw value.
fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".into()).unwrap_or_else(|_| unreachable!("`{{}}` is JSON"))
}

fn raw<T: serde::Serialize>(value: &T) -> Result<JsonText, ErrorObject> {
    JsonText::encode(value).map_err(ErrorObject::internal)
}

impl Connection {
    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The era of a request: 2026-07-28 when its `_meta` names a protocol version, else the
    /// negotiated revision. A 2026-style version that is not supported is `-32022`.
    fn era(&self, method: &str, requested: Option<String>) -> Result<Era, ErrorObject> {
        if let Some(requested) = requested {
            if requested == STATELESS_REVISION {
                return Ok(Era::Stateless);
            }
            return Err(ErrorObject::new(
                UNSUPPORTED_PROTOCOL_VERSION,
                format!("unsupported protocol version {requested:?}"),
            )
            .with_data(serde_json::json!({"requested": requested, "supported": supported_versions()})));
        }
        let revision = self.session().revision;
        match revision {
            Some(revision) => Ok(Era::Stateful(revision)),
            None => Err(ErrorObject::new(
                INVALID_REQUEST,
                format!(
                    "`{method}` before `initialize`: send `initialize` first, or (revision {STATELESS_REVISION}) \
                     put the protocol version and client capabilities in the request's `_meta`"
                ),
            )),
        }
    }

    async fn initialize(&self, peer: &PeerHandle, params: Option<&RawValue>) -> Result<JsonText, ErrorObject> {
        // The members every stateful revision requires, checked with the newest stateful types.
        let init: portico_protocol::v2025_11_25::InitializeRequestParams = decode("initialize", params)?;
        let client_capabilities = serde_json::to_value(&init.capabilities).map_err(ErrorObject::internal)?;
        let protocol_version = init.protocol_version;
        // The client's version if we speak it, else our newest stateful one (the client then
        // decides whether it can go on).
        let revision = STATEFUL_REVISIONS
            .iter()
            .copied()
            .find(|r| *r == protocol_version)
            .unwrap_or(STATEFUL_REVISIONS[0]);
        {
            let mut session = self.session();
            session.revision = Some(revision);
            session.client_capabilities = client_capabilities;
            // List changes, and updates of subscribed resources, go to the session as a whole.
            let r = &self.server;
            let filter = notify::Filter {
                tools: r.has_tools(),
                prompts: r.has_prompts(),
                resources: r.has_resources(),
                uris: session.subscriptions.get_or_insert_with(Default::default).clone(),
            };
            session.forward = Some(r.listeners.forward(filter, peer.clone()));
        }
        self.persist().await;
        let mut result = serde_json::json!({
            "protocolVersion": revision,
            "capabilities": self.server.session_capabilities(revision),
            "serverInfo": self.server.info,
        });
        if let Some(instructions) = &self.server.instructions {
            result["instructions"] = instructions.clone().into();
        }
        raw(&adapt::result(revision, "initialize", result))
    }

    fn discover(&self) -> Result<JsonText, ErrorObject> {
        let mut meta = wire::ResultMetaObject::new();
        meta.server_info = Some(self.server.info.clone());
        let mut result = wire::DiscoverResult::new(self.server.capabilities(), "complete", supported_versions())
            .with_cache_scope(wire::CacheableResultCacheScope::Public)
            .with_ttl_ms(self.server.list_ttl_ms)
            .with_meta(meta);
        if let Some(instructions) = &self.server.instructions {
            result = result.with_instructions(instructions.clone());
        }
        raw(&result)
    }

    /// One page of `items`, from the request's `cursor`, and the cursor of the next page.
    fn page<'a, T>(
        &self,
        method: &str,
        items: &'a [T],
        params: Option<&RawValue>,
    ) -> Result<(&'a [T], Option<String>), ErrorObject> {
        #[derive(Deserialize)]
        struct Page {
            cursor: Option<String>,
        }
        let Page { cursor } = decode(method, params)?;
        let start = match cursor.as_deref() {
            None => 0,
            Some(c) => decode_cursor(c)
                .filter(|start| *start <= items.len())
                .ok_or_else(|| ErrorObject::invalid_params(format!("{method}: unknown cursor {c:?}")))?,
        };
        let end = (start + self.server.page_size).min(items.len());
        Ok((&items[start..end], (end < items.len()).then(|| encode_cursor(end))))
    }

    /// The answer to a list request: one page of the registered items' definitions followed
    /// by the catalog's `listing`, made into a result by `result` (the page, the next cursor,
    /// `ttlMs`, `cacheScope`). A page of a listing with a key is encoded once and its bytes
    /// reused (see [`catalog::Listing`]).
    fn list_answer<R, T: Clone, W: serde::Serialize>(
        &self,
        cx: &Context,
        method: &'static str,
        params: Option<&RawValue>,
        (registered, definition): (&[R], impl Fn(&R) -> &T),
        listing: Option<catalog::Listing<T>>,
        result: impl FnOnce(Vec<T>, Option<String>, i64, wire::CacheableResultCacheScope) -> W,
    ) -> Result<JsonText, ErrorObject> {
        let memo = match listing.as_ref().and_then(|l| l.key) {
            Some(key) => {
                #[derive(Deserialize)]
                struct Page {
                    cursor: Option<String>,
                }
                let Page { cursor } = decode(method, params)?;
                let memo = PageKey {
                    method,
                    key,
                    cursor,
                    era: cx.era(),
                };
                if let Some(answer) = self
                    .server
                    .pages
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(&memo)
                {
                    return Ok(answer);
                }
                Some(memo)
            }
            None => None,
        };
        let ttl = listing
            .as_ref()
            .and_then(|l| l.ttl_ms)
            .unwrap_or(self.server.list_ttl_ms);
        let scope = listing
            .as_ref()
            .and_then(|l| l.cache_scope)
            .unwrap_or(wire::CacheableResultCacheScope::Public);
        let items = listing.map(|l| l.items).filter(|items| !items.is_empty());
        let (page, next) = match items {
            None => {
                let (page, next) = self.page(method, registered, params)?;
                (page.iter().map(|r| definition(r).clone()).collect(), next)
            }
            Some(items) if registered.is_empty() => {
                let (page, next) = self.page(method, &items, params)?;
                (page.to_vec(), next)
            }
            Some(items) => {
                let all: Vec<T> = registered
                    .iter()
                    .map(|r| definition(r).clone())
                    .chain(items.iter().cloned())
                    .collect();
                let (page, next) = self.page(method, &all, params)?;
                (page.to_vec(), next)
            }
        };
        let answer = self.answer(cx.era(), method, &result(page, next, ttl, scope))?;
        if let Some(memo) = memo {
            self.server
                .pages
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(memo, &answer);
        }
        Ok(answer)
    }

    async fn list_tools(&self, cx: &Context, params: Option<&RawValue>) -> Result<JsonText, ErrorObject> {
        let listing = match &self.server.catalog {
            Some(catalog) => Some(catalog.tool_listing(cx).await?),
            None => None,
        };
        let result = |page, next, ttl, scope| {
            let mut result = wire::ListToolsResult::new("complete", page)
                .with_ttl_ms(ttl)
                .with_cache_scope(scope);
            result.next_cursor = next;
            result
        };
        // A session with tasks (2025-11-25) learns which tools run as tasks from the tools.
        if let Era::Stateful(revision) = cx.era()
            && self.server.tasks.is_some()
            && tasks::session::served_to(revision)
        {
            let tools: Vec<wire::Tool> = self.server.tools.iter().map(tasks::session::definition).collect();
            fn same(tool: &wire::Tool) -> &wire::Tool {
                tool
            }
            let registered = (&tools[..], same);
            return self.list_answer(cx, "tools/list", params, registered, listing, result);
        }
        let registered = (&self.server.tools[..], Tool::definition);
        self.list_answer(cx, "tools/list", params, registered, listing, result)
    }

    async fn list_resources(&self, cx: &Context, params: Option<&RawValue>) -> Result<JsonText, ErrorObject> {
        let listing = match &self.server.catalog {
            Some(catalog) => Some(catalog.resource_listing(cx).await?),
            None => None,
        };
        let registered = (&self.server.resources[..], Resource::definition);
        self.list_answer(
            cx,
            "resources/list",
            params,
            registered,
            listing,
            |page, next, ttl, scope| {
                let mut result = wire::ListResourcesResult::new(page, "complete")
                    .with_ttl_ms(ttl)
                    .with_cache_scope(scope);
                result.next_cursor = next;
                result
            },
        )
    }

    async fn list_templates(&self, cx: &Context, params: Option<&RawValue>) -> Result<JsonText, ErrorObject> {
        let listing = match &self.server.catalog {
            Some(catalog) => Some(catalog.resource_template_listing(cx).await?),
            None => None,
        };
        let registered = (&self.server.templates[..], ResourceTemplate::definition);
        let method = "resources/templates/list";
        self.list_answer(cx, method, params, registered, listing, |page, next, ttl, scope| {
            let mut result = wire::ListResourceTemplatesResult::new(page, "complete")
                .with_ttl_ms(ttl)
                .with_cache_scope(scope);
            result.next_cursor = next;
            result
        })
    }

    async fn list_prompts(&self, cx: &Context, params: Option<&RawValue>) -> Result<JsonText, ErrorObject> {
        let listing = match &self.server.catalog {
            Some(catalog) => Some(catalog.prompt_listing(cx).await?),
            None => None,
        };
        let registered = (&self.server.prompts[..], Prompt::definition);
        self.list_answer(
            cx,
            "prompts/list",
            params,
            registered,
            listing,
            |page, next, ttl, scope| {
                let mut result = wire::ListPromptsResult::new(page, "complete")
                    .with_ttl_ms(ttl)
                    .with_cache_scope(scope);
                result.next_cursor = next;
                result
            },
        )
    }

    /// `tools/call`; `read` is its name and arguments when [`Head`] read them already.
    async fn call_tool(
        &self,
        cx: Context,
        params: Option<&RawValue>,
        read: Option<RawCall<'_>>,
    ) -> Result<JsonText, ErrorObject> {
        #[derive(Deserialize)]
        struct Call {
            name: String,
            #[serde(default)]
            arguments: Option<serde_json::Map<String, serde_json::Value>>,
        }
        let era = cx.era();
        // Arguments that are not an object (nor `null`) take the decoding below, which names
        // the problem.
        let raw = read
            .or_else(|| params.and_then(RawCall::of))
            .filter(|call| call.arguments.is_none_or(|a| a.starts_with('{')));
        enum Given<'a> {
            Raw(&'a str),
            Map(serde_json::Map<String, serde_json::Value>),
        }
        let (name, arguments) = match raw {
            Some(RawCall { name, arguments }) => (name, arguments.map(Given::Raw)),
            None => {
                let Call { name, arguments } = decode("tools/call", params)?;
                (name.into(), arguments.map(Given::Map))
            }
        };
        let Some(tool) = self.server.tools.iter().find(|t| t.name() == name) else {
            let Some(catalog) = &self.server.catalog else {
                return Err(ErrorObject::invalid_params(format!(
                    "tools/call: unknown tool {name:?}"
                )));
            };
            let rounds = cx.rounds();
            let outcome = match arguments {
                Some(Given::Raw(text)) => catalog.call_tool_raw(&cx, &name, Some(text)).await,
                Some(Given::Map(map)) => catalog.call_tool_answered(&cx, &name, Some(map)).await,
                None => catalog.call_tool_answered(&cx, &name, None).await,
            };
            let failed = outcome.as_ref().map_or(true, Answered::is_error);
            if let Some(asked) = self.input_required("tools/call", params, rounds, failed)? {
                return Ok(asked);
            }
            return self.answer_answered(era, "tools/call", outcome?);
        };
        let rounds = cx.rounds();
        // A 2025-11-25 session asks for a task with the `task` param (see [`tasks::session`]).
        let augmented = matches!(era, Era::Stateful(revision) if tasks::session::served_to(revision))
            && self.server.tasks.is_some()
            && tasks::session::augmented(params);
        let outcome = match self.task_route(tool, &cx, augmented)? {
            // A task: answered with the task's handle, or as usual when the handler finished
            // without starting a task.
            Some(tasks) => {
                let arguments = match arguments {
                    Some(Given::Raw(text)) => Some(decode_text("tools/call", text)?),
                    Some(Given::Map(map)) => Some(map),
                    None => None,
                };
                // Boxed: a task's start is rare, and its future would size every call's.
                match Box::pin(tasks.call(tool.clone(), cx, arguments)).await? {
                    tasks::Called::Task(created) => {
                        return match era {
                            Era::Stateless => self.answer(era, "tools/call", &created),
                            Era::Stateful(_) => self::raw(&tasks::session::created(&created)),
                        };
                    }
                    tasks::Called::Finished(outcome) => *outcome,
                }
            }
            None => match arguments {
                Some(Given::Raw(text)) => tool.call_raw(cx, text.into()).await,
                Some(Given::Map(map)) => tool.call(cx, Some(map)).await,
                None => tool.call(cx, None).await,
            },
        };
        let failed = outcome.as_ref().map_or(true, |r| r.is_error == Some(true));
        if let Some(asked) = self.input_required("tools/call", params, rounds, failed)? {
            return Ok(asked);
        }
        let result = outcome?;
        match era {
            Era::Stateless if result.meta.is_none() && !result.extra.contains_key("_meta") => {
                self.answer_stateless(&result)
            }
            Era::Stateful(_) if result.meta.is_none() && result.extra.is_empty() => {
                JsonText::encode(&SessionCallResult(&result)).map_err(ErrorObject::internal)
            }
            _ => self.answer(era, "tools/call", &result),
        }
    }

    async fn read_resource(&self, cx: Context, params: Option<&RawValue>) -> Result<JsonText, ErrorObject> {
        #[derive(Deserialize)]
        struct Read {
            uri: String,
        }
        let era = cx.era();
        let Read { uri } = decode("resources/read", params)?;
        let rounds = cx.rounds();
        let outcome = if let Some(resource) = self.server.resources.iter().find(|r| r.definition().uri == uri) {
            resource.read(cx).await
        } else if let Some((template, vars)) = self
            .server
            .templates
            .iter()
            .find_map(|t| t.matches(&uri).map(|v| (t, v)))
        {
            template.read(cx, vars).await
        } else if let Some(catalog) = &self.server.catalog {
            let outcome = catalog.read_resource(&cx, &uri).await;
            if let Ok(None) = outcome {
                return Err(not_found(era, &uri));
            }
            if let Some(asked) = self.input_required("resources/read", params, rounds, outcome.is_err())? {
                return Ok(asked);
            }
            let mut result = outcome?.unwrap_or_default();
            // Cacheable in 2026-07-28: what an upstream of an older revision left out.
            if let Some(object) = result.as_object_mut() {
                object.entry("ttlMs").or_insert(self.server.list_ttl_ms.into());
                object.entry("cacheScope").or_insert("private".into());
            }
            return self.answer_value(era, "resources/read", result);
        } else {
            return Err(not_found(era, &uri));
        };
        if let Some(asked) = self.input_required("resources/read", params, rounds, outcome.is_err())? {
            return Ok(asked);
        }
        let contents = outcome?;
        let result = wire::ReadResourceResult::new(contents, "complete")
            .with_ttl_ms(self.server.list_ttl_ms)
            .with_cache_scope(wire::CacheableResultCacheScope::Private);
        self.answer(era, "resources/read", &result)
    }

    async fn get_prompt(&self, cx: Context, params: Option<&RawValue>) -> Result<JsonText, ErrorObject> {
        #[derive(Deserialize)]
        struct Get {
            name: String,
            #[serde(default)]
            arguments: Option<BTreeMap<String, String>>,
        }
        let era = cx.era();
        let Get { name, arguments } = decode("prompts/get", params)?;
        let Some(prompt) = self.server.prompts.iter().find(|p| p.definition().name == name) else {
            let Some(catalog) = &self.server.catalog else {
                return Err(ErrorObject::invalid_params(format!(
                    "prompts/get: unknown prompt {name:?}"
                )));
            };
            let rounds = cx.rounds();
            let outcome = catalog.get_prompt(&cx, &name, arguments.unwrap_or_default()).await;
            if let Some(asked) = self.input_required("prompts/get", params, rounds, outcome.is_err())? {
                return Ok(asked);
            }
            return self.answer_value(era, "prompts/get", outcome?);
        };
        let rounds = cx.rounds();
        let outcome = prompt.render(cx, arguments.unwrap_or_default()).await;
        if let Some(asked) = self.input_required("prompts/get", params, rounds, outcome.is_err())? {
            return Ok(asked);
        }
        let messages = outcome?;
        let mut result = wire::GetPromptResult::new(messages, "complete");
        result.description = prompt.definition().description.clone();
        self.answer(era, "prompts/get", &result)
    }

    async fn complete(&self, cx: Context, params: Option<&RawValue>) -> Result<JsonText, ErrorObject> {
        let era = cx.era();
        let catalog = self.server.catalog.as_ref().filter(|c| c.features().completions);
        if self.server.completion.is_none() && catalog.is_none() {
            return Err(ErrorObject::method_not_found("completion/complete"));
        }
        let request: wire::CompleteRequestParams = match era {
            Era::Stateless => decode("completion/complete", params)?,
            // Older params lack the 2026 `_meta`: give them one so the newest type decodes.
            Era::Stateful(_) => {
                let mut value: serde_json::Value = decode("completion/complete", params)?;
                value["_meta"] = serde_json::json!({
                    "io.modelcontextprotocol/protocolVersion": STATELESS_REVISION,
                    "io.modelcontextprotocol/clientCapabilities": {}
                });
                serde_json::from_value(value)
                    .map_err(|e| ErrorObject::invalid_params(format!("completion/complete: {e}")))?
            }
        };
        let Some(complete) = &self.server.completion else {
            let Some(catalog) = catalog else {
                return Err(ErrorObject::method_not_found("completion/complete"));
            };
            let result = catalog.complete(&cx, request).await?;
            return self.answer_value(era, "completion/complete", result);
        };
        let values = complete(cx, request).await?;
        // At most 100 values per response; `total`/`hasMore` say what was left out.
        let total = values.len();
        let values: Vec<String> = values.into_iter().take(100).collect();
        let completion = wire::CompleteResultCompletion::new(values)
            .with_total(i64::try_from(total).unwrap_or(i64::MAX))
            .with_has_more(total > 100);
        self.answer(
            era,
            "completion/complete",
            &wire::CompleteResult::new(completion, "complete"),
        )
    }

    /// `resources/subscribe` and `resources/unsubscribe` (stateful revisions).
    async fn subscribe(&self, method: &str, params: Option<&RawValue>) -> Result<JsonText, ErrorObject> {
        #[derive(Deserialize)]
        struct Subscribe {
            uri: String,
        }
        let Subscribe { uri } = decode(method, params)?;
        if method == "resources/subscribe"
            && let Some(catalog) = &self.server.catalog
        {
            catalog.watch(&uri).await?;
        }
        let subscriptions = self
            .session()
            .subscriptions
            .get_or_insert_with(Default::default)
            .clone();
        {
            let mut subscriptions = subscriptions.lock().unwrap_or_else(PoisonError::into_inner);
            if method == "resources/subscribe" {
                subscriptions.insert(uri);
            } else {
                subscriptions.remove(&uri);
            }
        }
        self.persist().await;
        raw(&serde_json::json!({}))
    }

    /// `subscriptions/listen` (2026-07-28): acknowledges the filter, then streams the changes it
    /// names until the client cancels or the server shuts down (then it answers gracefully).
    async fn listen(&self, cx: Context, params: Option<&RawValue>) -> Result<JsonText, ErrorObject> {
        let request: wire::SubscriptionsListenRequestParams = decode("subscriptions/listen", params)?;
        let r = &self.server;
        let asked = request.notifications;
        let has_resources = r.has_resources();
        // Acknowledge only what this server can send.
        let mut granted = wire::SubscriptionFilter::new();
        granted.tools_list_changed = asked.tools_list_changed.filter(|on| *on && r.has_tools());
        granted.prompts_list_changed = asked.prompts_list_changed.filter(|on| *on && r.has_prompts());
        granted.resources_list_changed = asked.resources_list_changed.filter(|on| *on && has_resources);
        granted.resource_subscriptions = asked
            .resource_subscriptions
            .filter(|uris| has_resources && !uris.is_empty());
        if let Some(catalog) = &r.catalog {
            for uri in granted.resource_subscriptions.iter().flatten() {
                catalog.watch(uri).await?;
            }
        }
        let filter = notify::Filter {
            tools: granted.tools_list_changed == Some(true),
            prompts: granted.prompts_list_changed == Some(true),
            resources: granted.resources_list_changed == Some(true),
            uris: Arc::new(Mutex::new(
                granted.resource_subscriptions.iter().flatten().cloned().collect(),
            )),
        };
        let mut changes = r.listeners.listen(filter);
        let id = cx.request().id().clone();
        let subscription = serde_json::to_value(&id).map_err(ErrorObject::internal)?;
        let ack = serde_json::json!({
            "_meta": {"io.modelcontextprotocol/subscriptionId": subscription},
            "notifications": granted,
        });
        cx.peer()
            .notify("notifications/subscriptions/acknowledged", &ack)
            .await
            .map_err(ErrorObject::internal)?;
        loop {
            tokio::select! {
                change = changes.recv() => match change {
                    Some(change) => send_change(cx.peer(), &change, Some(&subscription)).await.map_err(ErrorObject::internal)?,
                    None => break,
                },
                () = cx.cancelled() => break,
                () = r.shutdown.cancelled() => break,
            }
        }
        let mut meta = wire::SubscriptionsListenResultMetaObject::new(
            serde_json::from_value(subscription).map_err(ErrorObject::internal)?,
        );
        meta.server_info = Some(r.info.clone());
        raw(&wire::SubscriptionsListenResult::new(meta, "complete"))
    }

    /// When the handler asked for input it did not have (2026-07-28): the `input_required`
    /// result with every question and a sealed `requestState`, in place of its result. When it
    /// `failed` after asking for input the client has no capability for: `-32021` naming it (a
    /// handler that worked around the missing capability keeps its result).
    fn input_required(
        &self,
        method: &str,
        params: Option<&RawValue>,
        rounds: Option<Arc<input::Rounds>>,
        failed: bool,
    ) -> Result<Option<JsonText>, ErrorObject> {
        let Some(rounds) = rounds else { return Ok(None) };
        // Questions asked this round come first: a handler that could not go on without their
        // answers failed for that reason.
        let Some(asked) = rounds.asked() else {
            return match rounds.missing_capability().filter(|_| failed) {
                Some(capability) => Err(ErrorObject::new(
                    MISSING_REQUIRED_CLIENT_CAPABILITY,
                    format!("{method} needs the client capability `{capability}`"),
                )
                .with_data(serde_json::json!({"requiredCapabilities": {capability: {}}}))),
                None => Ok(None),
            };
        };
        let value: serde_json::Value = decode(method, params)?;
        let state = self
            .server
            .sealer
            .seal(&input::binding(method, &value), rounds.answers());
        let info = serde_json::to_value(&self.server.info).map_err(ErrorObject::internal)?;
        let result = serde_json::json!({
            "resultType": "input_required",
            "inputRequests": asked,
            "requestState": state,
            "_meta": {"io.modelcontextprotocol/serverInfo": info},
        });
        raw(&result).map(Some)
    }

    async fn set_level(&self, params: Option<&RawValue>) -> Result<JsonText, ErrorObject> {
        #[derive(Deserialize)]
        struct SetLevel {
            level: wire::LoggingLevel,
        }
        let SetLevel { level } = decode("logging/setLevel", params)?;
        self.session().log_level = Some(level);
        self.persist().await;
        raw(&serde_json::json!({}))
    }

    /// The catalog's answer to an extension's method, if it serves it.
    fn extension_request<'a>(
        &'a self,
        cx: &'a Context,
        method: &'a str,
        params: Option<&'a RawValue>,
    ) -> Option<catalog::CatalogFuture<'a, serde_json::Value>> {
        self.server.catalog.as_ref()?.extension_request(cx, method, params)
    }

    /// The session's state as kept in a [`sessions::SessionStore`] (once negotiated).
    fn snapshot(&self) -> Option<sessions::SessionState> {
        let session = self.session();
        Some(sessions::SessionState {
            revision: session.revision?.to_string(),
            client_capabilities: session.client_capabilities.clone(),
            log_level: session.log_level,
            subscriptions: session
                .subscriptions
                .as_ref()
                .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).clone())
                .unwrap_or_default(),
        })
    }

    /// Saves the session's state in the store, if the server has one and this connection is
    /// a session; a store that fails is logged, and the session goes on here.
    async fn persist(&self) {
        let (Some(store), Some(id)) = (&self.server.session_store, self.session_id.get()) else {
            return;
        };
        let Some(state) = self.snapshot() else { return };
        let Ok(text) = serde_json::to_string(&state) else {
            return;
        };
        if let Err(e) = store.save(id, text).await {
            tracing::warn!(session = id.as_str(), error = %e, "saving a session's state failed");
        }
    }

    /// A 2026-07-28 result the caller knows to have no `_meta` member, with the server's
    /// `_meta` first: the same text [`Connection::answer`] splices, written in one pass
    /// (serialized straight into a raw value, so nothing is copied or read again).
    fn answer_stateless<T: serde::Serialize>(&self, result: &T) -> Result<JsonText, ErrorObject> {
        #[derive(serde::Serialize)]
        struct WithInfo<'a, T> {
            #[serde(rename = "_meta")]
            meta: &'a RawValue,
            #[serde(flatten)]
            result: &'a T,
        }
        let with_info = WithInfo {
            meta: &self.server.info_meta_value,
            result,
        };
        JsonText::encode(&with_info).map_err(ErrorObject::internal)
    }

    /// [`Connection::answer_value`] of a catalog's [`Answered`]. Text is not read: a 2026-07-28
    /// client gets it with the server's `_meta` and `"resultType":"complete"` spliced in after
    /// its opening brace, a session's client as it is (the revision adapters change nothing
    /// but the envelope of this method's results, which the text has not: see
    /// [`Answered::Text`]); else it is read and answered as a value.
    fn answer_answered(&self, era: Era, method: &str, result: Answered) -> Result<JsonText, ErrorObject> {
        let text = match result {
            Answered::Text { text, .. } => text,
            Answered::Value(value) => return self.answer_value(era, method, value),
        };
        match era {
            Era::Stateless => {
                if let Some(rest) = text.get().strip_prefix('{') {
                    // Valid JSON members spliced into valid JSON's object: not read again.
                    return Ok(JsonText::trusted(self.spliced(rest, r#","resultType":"complete""#)));
                }
            }
            Era::Stateful(_) if adapt::envelope_only(method) => return Ok(text),
            Era::Stateful(_) => {}
        }
        self.answer_value(era, method, Answered::value_of_text(&text)?)
    }

    /// `text`, an object's, with the server's `_meta` spliced in after its opening brace;
    /// `None` when it is no object's or may hold a `_meta` of its own (a `"_meta"` anywhere
    /// in it, even inside a string, counts), which is then read and answered the general way.
    fn with_info_meta(&self, text: &str) -> Option<String> {
        static META: crate::message::Mention = crate::message::Mention::new("\"_meta\"");
        let rest = text.strip_prefix('{')?.trim_start();
        if META.is_in(text) {
            return None;
        }
        Some(self.spliced(rest, ""))
    }

    /// `{`, the server's `_meta` member, `members` (more members' text, each after a comma),
    /// then `rest`: an object's text after its opening brace, with a comma before it unless it
    /// is the closing one.
    fn spliced(&self, rest: &str, members: &str) -> String {
        let fragment = &self.server.info_meta;
        let mut joined = String::with_capacity(rest.len() + fragment.len() + members.len() + 2);
        joined.push('{');
        joined.push_str(fragment);
        joined.push_str(members);
        if !rest.trim_start().starts_with('}') {
            joined.push(',');
        }
        joined.push_str(rest);
        joined
    }

    /// [`Connection::answer`] of a result that is a JSON value already (a catalog's): a
    /// 2026-07-28 object without a `_meta` of its own is written once, the server's `_meta`
    /// first (no text to search and join, and no copy of it to check again); a session's is
    /// adapted in place rather than copied.
    fn answer_value(&self, era: Era, method: &str, result: serde_json::Value) -> Result<JsonText, ErrorObject> {
        match era {
            Era::Stateless if result.as_object().is_some_and(|o| !o.contains_key("_meta")) => {
                self.answer_stateless(&result)
            }
            Era::Stateless => self.answer(era, method, &result),
            Era::Stateful(revision) => raw(&adapt::result(revision, method, result)),
        }
    }

    /// Encodes a newest-revision result for the request's era.
    /// In 2026-07-28 every result names the server in `_meta` (the spec's SHOULD).
    fn answer<T: serde::Serialize>(&self, era: Era, method: &str, result: &T) -> Result<JsonText, ErrorObject> {
        if era == Era::Stateless {
            // The common case, without building a JSON tree: a result object with no `_meta`
            // of its own gets the server's, spliced in after its opening brace. (A `"_meta"`
            // anywhere in the text, even inside a string, takes the general way below.)
            let text = serde_json::to_string(result).map_err(ErrorObject::internal)?;
            if let Some(joined) = self.with_info_meta(&text) {
                return Ok(JsonText::trusted(joined));
            }
        }
        let mut value = serde_json::to_value(result).map_err(ErrorObject::internal)?;
        match era {
            Era::Stateless => {
                if let Some(object) = value.as_object_mut() {
                    let meta = object.entry("_meta").or_insert_with(|| serde_json::json!({}));
                    if let Some(meta) = meta.as_object_mut() {
                        let info = serde_json::to_value(&self.server.info).map_err(ErrorObject::internal)?;
                        meta.entry("io.modelcontextprotocol/serverInfo").or_insert(info);
                    }
                }
                raw(&value)
            }
            Era::Stateful(revision) => raw(&adapt::result(revision, method, value)),
        }
    }

    /// The context of a request in `era`; 2026-07-28 requests must carry the full `_meta`.
    fn context(
        &self,
        request: RequestContext,
        era: Era,
        method: &str,
        params: Option<&RawValue>,
        head: &mut Head<'_>,
    ) -> Result<Context, ErrorObject> {
        match era {
            Era::Stateless => {
                let StatelessParams {
                    meta,
                    input_responses,
                    request_state,
                } = match head.stateless() {
                    Some(read) => read,
                    None => decode(method, params)?,
                };
                // Answers are taken only with the state sealed when they were asked for: without
                // one they are ignored (and asked for again); earlier rounds' answers come from
                // the state.
                let answers = match &request_state {
                    Some(state) => {
                        let value: serde_json::Value = decode(method, params)?;
                        let mut answers = self.server.sealer.open(state, &input::binding(method, &value))?;
                        answers.extend(input_responses.unwrap_or_default());
                        answers
                    }
                    None => BTreeMap::new(),
                };
                let caps = serde_json::to_value(&meta.client_capabilities).map_err(ErrorObject::internal)?;
                let rounds = Arc::new(input::Rounds::new(answers));
                Ok(Context::new(request, era, meta.log_level, caps, Some(rounds)).with_connection(self.id))
            }
            Era::Stateful(_) => {
                let session = self.session();
                let (level, caps) = (session.log_level, session.client_capabilities.clone());
                drop(session);
                Ok(Context::new(request, era, level, caps, None).with_connection(self.id))
            }
        }
    }
}

impl Connection {
    /// [`Service::check_mirrored`] for a tool of the catalog: its definition's `x-mcp-header`
    /// annotations against the headers sent. Only params naming a tool the catalog defines
    /// with such annotations are checked; the caller asked `catalog.mirrors_arguments()`.
    fn check_catalog_mirrored(
        &self,
        catalog: &dyn Catalog,
        call: &CallNamed<'_>,
        name: &str,
        sent: &[crate::mirror::MirroredParam<'_>],
        extensions: &crate::Extensions,
    ) -> Result<(), ErrorObject> {
        if self.server.tools.iter().any(|t| t.name() == name) {
            return Ok(());
        }
        let Some(tool) = catalog.tool_definition(name, extensions) else {
            return Ok(());
        };
        let Ok(schema) = serde_json::to_value(&tool.input_schema) else {
            return Ok(());
        };
        if !schema.to_string().contains("x-mcp-header") {
            return Ok(());
        }
        // A definition whose annotations are invalid mirrors nothing a client could send.
        let Ok(header_params) = crate::mirror::header_params(&schema) else {
            return Ok(());
        };
        crate::mirror::check(&header_params, call.arguments().as_ref(), sent)
            .map_err(|message| ErrorObject::new(crate::mirror::HEADER_MISMATCH, message))
    }
}

/// Methods served in both eras (the era decides how params are read and results written).
const ERA_METHODS: &[&str] = &[
    "server/discover",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "subscriptions/listen",
    "tasks/get",
    "tasks/update",
    "tasks/cancel",
    "tasks/result",
    "skills/list",
    "skills/get",
    "resources/directory/read",
];

/// The error code of `resources/read` of an unknown URI up to 2025-11-25 (2026-07-28 uses
/// `-32602`).
pub const RESOURCE_NOT_FOUND: i64 = -32002;

/// Sends a change notification; on a `subscriptions/listen` stream it carries the subscription id.
async fn send_change(
    peer: &PeerHandle,
    change: &Change,
    subscription: Option<&serde_json::Value>,
) -> Result<(), crate::PeerError> {
    peer.notify(change.method(), &change.params(subscription)).await
}

/// Every revision served, newest first.
pub fn supported_versions() -> Vec<String> {
    std::iter::once(STATELESS_REVISION)
        .chain(STATEFUL_REVISIONS.iter().copied())
        .map(str::to_string)
        .collect()
}

/// Which encoded page a [`PageMemo`] entry is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PageKey {
    method: &'static str,
    /// The listing's [`catalog::Listing::key`].
    key: u64,
    cursor: Option<String>,
    era: Era,
}

/// Encoded pages of keyed listings, the oldest forgotten first when there are more than
/// [`catalog::PAGE_MEMO_ENTRIES`] or they hold more than [`catalog::PAGE_MEMO_BYTES`].
#[derive(Default)]
struct PageMemo {
    pages: std::collections::HashMap<PageKey, JsonText>,
    order: std::collections::VecDeque<PageKey>,
    bytes: usize,
}

impl PageMemo {
    fn get(&self, key: &PageKey) -> Option<JsonText> {
        self.pages.get(key).cloned()
    }

    fn insert(&mut self, key: PageKey, answer: &JsonText) {
        let size = answer.get().len();
        if size > catalog::PAGE_MEMO_BYTES / 4 || self.pages.contains_key(&key) {
            return;
        }
        while self.pages.len() >= catalog::PAGE_MEMO_ENTRIES || self.bytes + size > catalog::PAGE_MEMO_BYTES {
            let Some(oldest) = self.order.pop_front() else { break };
            if let Some(page) = self.pages.remove(&oldest) {
                self.bytes -= page.get().len();
            }
        }
        self.bytes += size;
        self.order.push_back(key.clone());
        self.pages.insert(key, answer.clone());
    }
}

/// An opaque page cursor: a version tag and the offset, so a client cannot guess at meaning.
fn encode_cursor(offset: usize) -> String {
    format!("c1.{offset:x}")
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    usize::from_str_radix(cursor.strip_prefix("c1.")?, 16).ok()
}

/// What [`Connection::request`] does with a request, decided before anything is awaited.
enum Prepared<'p> {
    /// `initialize`.
    Initialize(RequestContext),
    /// `ping` in a session.
    Ping,
    /// `logging/setLevel` in a session.
    SetLevel,
    /// `resources/subscribe` or `resources/unsubscribe` in a session.
    Subscribe,
    /// A method of both eras, with its context, its era and (for `tools/call`) what was read
    /// of its name and arguments.
    Run {
        cx: Context,
        era: Era,
        call: Option<RawCall<'p>>,
    },
}

impl Connection {
    /// The steps of [`Connection::request`] before its method runs, in a function of their
    /// own: the request's [`Head`] (over a kilobyte, with a 2026-07-28 request's decoded
    /// `_meta`) lives in this frame only. Held in `request`'s future, it was kept in every one
    /// of its states (a local once borrowed keeps its place until its scope ends, dropped or
    /// not), and that future is copied whole into its box for each request.
    fn prepare<'p>(
        &self,
        mut cx: RequestContext,
        method: &str,
        params: Option<&'p RawValue>,
    ) -> Result<Prepared<'p>, ErrorObject> {
        let mut head = Head::read(params, cx.take_read_ahead());
        let requested = head.requested.take();
        // A 2026-07-28 request (its `_meta` names a version) cannot use the methods that
        // revision removed: they are unknown to it.
        if SESSION_METHODS.contains(&method) && requested.is_some() {
            return Err(ErrorObject::method_not_found(method));
        }
        // Copied out so no lock is held while the method runs.
        let negotiated = self.session().revision.is_some();
        match method {
            "initialize" => return Ok(Prepared::Initialize(cx)),
            "ping" if negotiated => return Ok(Prepared::Ping),
            "logging/setLevel" if negotiated => return Ok(Prepared::SetLevel),
            "resources/subscribe" | "resources/unsubscribe" if negotiated => return Ok(Prepared::Subscribe),
            "ping" | "logging/setLevel" | "resources/subscribe" | "resources/unsubscribe" => {
                return Err(ErrorObject::method_not_found(method));
            }
            m if !ERA_METHODS.contains(&m) => return Err(ErrorObject::method_not_found(m)),
            _ => {}
        }
        let era = self.era(method, requested)?;
        let cx = self.context(cx, era, method, params, &mut head)?;
        Ok(Prepared::Run {
            cx,
            era,
            call: head.call(),
        })
    }
}

impl Service for Connection {
    async fn request(
        &self,
        cx: RequestContext,
        method: String,
        params: Option<Box<RawValue>>,
    ) -> Result<JsonText, ErrorObject> {
        let params = params.as_deref();
        let (cx, era, call) = match self.prepare(cx, &method, params)? {
            Prepared::Initialize(cx) => return self.initialize(cx.peer(), params).await,
            Prepared::Ping => return raw(&serde_json::json!({})),
            Prepared::SetLevel => return self.set_level(params).await,
            Prepared::Subscribe => return self.subscribe(&method, params).await,
            Prepared::Run { cx, era, call } => (cx, era, call),
        };
        match method.as_str() {
            "server/discover" if era == Era::Stateless => self.discover(),
            "tools/list" => self.list_tools(&cx, params).await,
            "tools/call" => self.call_tool(cx, params, call).await,
            "resources/list" => self.list_resources(&cx, params).await,
            "resources/templates/list" => self.list_templates(&cx, params).await,
            "resources/read" => self.read_resource(cx, params).await,
            "prompts/list" => self.list_prompts(&cx, params).await,
            "prompts/get" => self.get_prompt(cx, params).await,
            "completion/complete" => self.complete(cx, params).await,
            // Boxed, as the tasks below: rare, and the largest states of this future otherwise.
            "subscriptions/listen" if era == Era::Stateless => Box::pin(self.listen(cx, params)).await,
            // 2025-11-25's tasks, in a session of that revision (see [`tasks::session`]).
            "tasks/get" | "tasks/result" | "tasks/cancel"
                if let Era::Stateful(revision) = era
                    && tasks::session::served_to(revision)
                    && self.server.tasks.is_some() =>
            {
                let result = Box::pin(self.session_task_method(&cx, revision, &method, params)).await?;
                raw(&result)
            }
            "tasks/get" | "tasks/update" | "tasks/cancel"
                if era == Era::Stateless
                    && self.server.tasks.is_none()
                    && let Some(future) = self.extension_request(&cx, &method, params) =>
            {
                // As for the server's own tasks: a client that did not declare the extension.
                if !tasks::declared(cx.client_capabilities()) {
                    return Err(tasks::missing_extension(&method));
                }
                let result = future.await?;
                self.answer_value(era, &method, result)
            }
            "tasks/get" | "tasks/update" | "tasks/cancel" if era == Era::Stateless => {
                let result = self.task_method(&cx, &method, params).await?;
                self.answer(era, &method, &result)
            }
            "skills/list" | "skills/get" | "resources/directory/read"
                if self.server.skills.is_empty()
                    && let Some(future) = self.extension_request(&cx, &method, params) =>
            {
                let mut result = future.await?;
                // Cacheable in 2026-07-28: what an upstream of an older revision left out.
                if method != "resources/directory/read"
                    && let Some(object) = result.as_object_mut()
                {
                    object.entry("ttlMs").or_insert(self.server.list_ttl_ms.into());
                    object.entry("cacheScope").or_insert("public".into());
                }
                self.answer_value(era, &method, result)
            }
            "skills/list" | "skills/get" | "resources/directory/read" => self.skills_method(era, &method, params),
            _ => Err(ErrorObject::method_not_found(&method)),
        }
    }

    /// Batches belong to revision 2025-03-26 alone: accepted once `initialize` negotiated it.
    fn accepts_batches(&self) -> bool {
        self.session().revision == Some("2025-03-26")
    }

    fn session_started(&self, id: &str) {
        let _ = self.session_id.set(id.to_string());
    }

    /// Takes on a session another process of the server started, from the session store: its
    /// revision, the client's capabilities, the log level and the subscriptions, and the change
    /// notifications it listens for.
    async fn restore_session(&self, peer: &PeerHandle, id: &str) -> Option<String> {
        let store = self.server.session_store.as_ref()?;
        let text = match store.load(id).await {
            Ok(text) => text?,
            Err(e) => {
                tracing::warn!(session = id, error = %e, "loading a session's state failed");
                return None;
            }
        };
        let state: sessions::SessionState = serde_json::from_str(&text).ok()?;
        let revision = STATEFUL_REVISIONS.iter().copied().find(|r| *r == state.revision)?;
        let _ = self.session_id.set(id.to_string());
        for uri in &state.subscriptions {
            if let Some(catalog) = &self.server.catalog
                && let Err(e) = catalog.watch(uri).await
            {
                tracing::warn!(session = id, uri, error = %e.message, "watching a restored subscription failed");
            }
        }
        let r = &self.server;
        let mut session = self.session();
        session.revision = Some(revision);
        session.client_capabilities = state.client_capabilities;
        session.log_level = state.log_level;
        let uris = Arc::new(Mutex::new(state.subscriptions));
        session.subscriptions = Some(uris.clone());
        let filter = notify::Filter {
            tools: r.has_tools(),
            prompts: r.has_prompts(),
            resources: r.has_resources(),
            uris,
        };
        session.forward = Some(r.listeners.forward(filter, peer.unrelated()));
        Some(revision.to_string())
    }

    async fn session_ended(&self) {
        if let (Some(store), Some(id)) = (&self.server.session_store, self.session_id.get())
            && let Err(e) = store.remove(id).await
        {
            tracing::warn!(session = id.as_str(), error = %e, "forgetting a session's state failed");
        }
    }

    /// `tools/call` of a tool with `x-mcp-header` annotations: the mirrored values must match
    /// the arguments (`-32020` otherwise). Other requests mirror nothing of ours.
    fn check_mirrored(
        &self,
        method: &str,
        params: Option<&RawValue>,
        read_ahead: Option<&ReadAhead>,
        sent: &[crate::mirror::MirroredParam<'_>],
        extensions: &crate::Extensions,
    ) -> Result<(), ErrorObject> {
        if method != "tools/call" {
            return Ok(());
        }
        let Some(params) = params else {
            return Ok(());
        };
        let call = CallNamed::new(params, read_ahead);
        // The name only once something may check it.
        let catalog = self.server.catalog.as_ref().filter(|c| c.mirrors_arguments());
        if catalog.is_none() && self.server.header_tool_names.is_empty() {
            return Ok(());
        }
        // Only a call of one of the server's own tools with `x-mcp-header` arguments can
        // mismatch, and params naming one hold its name as is or (behind a backslash) escaped:
        // without a catalog, params with neither are not read at all (the common call, of
        // another tool).
        let may_name_own = {
            let text = params.get().as_bytes();
            memchr::memchr(b'\\', text).is_some()
                || self
                    .server
                    .header_tool_names
                    .iter()
                    .any(|name| name.find(text).is_some())
        };
        if catalog.is_none() && !may_name_own {
            return Ok(());
        }
        // Params that do not decode are the request's to reject (-32602), not the headers'.
        let Some(name) = call.name() else {
            return Ok(());
        };
        if let Some(catalog) = catalog {
            self.check_catalog_mirrored(catalog.as_ref(), &call, &name, sent, extensions)?;
        }
        if !may_name_own {
            return Ok(());
        }
        let Some(tool) = self.server.tools.iter().find(|t| t.name() == name) else {
            return Ok(());
        };
        if tool.header_params().is_empty() {
            return Ok(());
        }
        crate::mirror::check(tool.header_params(), call.arguments().as_ref(), sent)
            .map_err(|message| ErrorObject::new(crate::mirror::HEADER_MISMATCH, message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a [`Head`] holds, comparable.
    type Seen = (
        Option<String>,
        Option<Box<wire::RequestMetaObject>>,
        [Option<String>; 4],
    );

    fn seen(mut head: Head<'_>) -> Seen {
        let text = |json: Option<&str>| json.map(str::to_owned);
        let members = match &head.members {
            Some(m) => [
                text(m.name),
                text(m.arguments),
                text(m.input_responses),
                text(m.request_state),
            ],
            None => Default::default(),
        };
        (head.requested.take(), head.meta.take(), members)
    }

    #[test]
    fn a_call_is_named_alike_from_what_was_read_ahead_and_from_its_params() {
        let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"c","version":"1"}}"#;
        let cases = [
            (
                format!(r#"{{"name":"echo","arguments":{{"message":"hi"}},{meta}}}"#),
                Some("echo"),
                true,
            ),
            (format!(r#"{{{meta},"name":"na\u006de"}}"#), Some("name"), false),
            (format!(r#"{{"name":7,"arguments":{{}},{meta}}}"#), None, true),
        ];
        for (text, name, has_arguments) in &cases {
            let params = RawValue::from_string(text.clone()).expect("JSON");
            let read = ReadAhead::of(&params).unwrap_or_else(|| panic!("read whole: {text}"));
            let ahead = CallNamed::new(&params, Some(&read));
            assert!(ahead.read_ahead.is_some(), "{text}");
            let alone = CallNamed::new(&params, None);
            assert_eq!(ahead.name().as_deref(), *name, "{text}");
            assert_eq!(alone.name().as_deref(), *name, "{text}");
            assert_eq!(ahead.arguments(), alone.arguments(), "{text}");
            assert_eq!(ahead.arguments().is_some(), *has_arguments, "{text}");
            // What was read of other params is not used with these.
            let other = RawValue::from_string(r#"{"name":"other"}"#.to_owned()).expect("JSON");
            let elsewhere = CallNamed::new(&other, Some(&read));
            assert!(elsewhere.read_ahead.is_none());
            assert_eq!(elsewhere.name().as_deref(), Some("other"));
        }
    }

    #[test]
    fn what_the_transport_read_ahead_is_what_the_service_would_read() {
        let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"sampling":{}},"io.modelcontextprotocol/clientInfo":{"name":"c","version":"1"},"progressToken":"p"}"#;
        let read_whole = [
            format!(r#"{{"name":"echo","arguments":{{"message":"hi"}},{meta}}}"#),
            format!(r#"{{{meta},"uri":"file:///a","taskId":"t-1"}}"#),
            format!(
                r#"{{"name":"na\u006de","arguments":{{"nested":{{"a":[1,2]}}}},"inputResponses":{{"k":{{"action":"accept"}}}},"requestState":"s",{meta}}}"#
            ),
        ];
        for text in &read_whole {
            let params = RawValue::from_string(text.clone()).expect("JSON");
            let read = ReadAhead::of(&params).unwrap_or_else(|| panic!("read whole: {text}"));
            assert_eq!(read.version(), "2026-07-28");
            assert!(read.progress());
            // What `Mcp-Name` mirrors, as sent.
            let uri = text.contains("uri").then_some(r#""file:///a""#);
            assert_eq!(read.uri(&params), uri, "{text}");
            let task_id = text.contains("taskId").then_some(r#""t-1""#);
            assert_eq!(read.task_id(&params), task_id, "{text}");
            let via = seen(Head::read(Some(&params), Some(Box::new(read))));
            assert_eq!(via, seen(Head::of(Some(&params))), "{text}");
            assert_eq!(via.0.as_deref(), Some("2026-07-28"));
            // What was read of other params is not used with these.
            let read = ReadAhead::of(&params).expect("read whole");
            let other = RawValue::from_string(r#"{"name":"other"}"#.to_owned()).expect("JSON");
            let read_other = seen(Head::read(Some(&other), Some(Box::new(read))));
            assert_eq!(read_other, seen(Head::of(Some(&other))), "{text}");
            assert_eq!(read_other.0, None);
        }
        // Not read ahead: no version (a session's request), a `_meta` that is no whole
        // `RequestMetaObject` (no capabilities), a version named outside `_meta`. The service
        // then reads them itself, as before.
        for text in [
            r#"{"name":"echo","arguments":{}}"#,
            r#"{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"},"name":"echo"}"#,
            r#"{"arguments":{"io.modelcontextprotocol/protocolVersion":"x"}}"#,
            r#"{"_meta":{"io.modelcontextprotocol/protocolVersion":7,"io.modelcontextprotocol/clientCapabilities":{}}}"#,
        ] {
            let params = RawValue::from_string(text.to_owned()).expect("JSON");
            assert!(ReadAhead::of(&params).is_none(), "{text}");
            assert_eq!(seen(Head::read(Some(&params), None)), seen(Head::of(Some(&params))));
        }
    }
}
