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

pub mod adapt;
pub mod tool;

use std::sync::{Arc, Mutex, PoisonError};

use portico_protocol::v2026_07_28 as wire;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::error::{ErrorObject, INVALID_REQUEST};
use crate::peer::{PeerHandle, RequestContext, Service};
pub use tool::{IntoToolResult, Json, Tool, tool};

/// The revision served statelessly, with per-request `_meta`.
pub const STATELESS_REVISION: &str = "2026-07-28";

/// The revisions negotiated with `initialize`, newest first.
pub const STATEFUL_REVISIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// `-32022` of 2026-07-28: the requested protocol version is not supported.
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// Default page size of list results.
pub const DEFAULT_PAGE_SIZE: usize = 100;

/// What a server is: its identity, instructions and registered tools.
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

struct Inner {
    info: wire::Implementation,
    instructions: Option<String>,
    tools: Vec<Tool>,
    page_size: usize,
    list_ttl_ms: i64,
}

/// Builds a [`Server`].
pub struct ServerBuilder {
    info: wire::Implementation,
    instructions: Option<String>,
    tools: Vec<Tool>,
    page_size: usize,
    list_ttl_ms: i64,
}

impl ServerBuilder {
    /// Instructions for the model using the server.
    pub fn instructions(mut self, text: impl Into<String>) -> Self {
        self.instructions = Some(text.into());
        self
    }

    /// Adds a tool. Panics if a tool of that name is already registered (a programming error).
    pub fn tool(mut self, tool: Tool) -> Self {
        if self.tools.iter().any(|t| t.name() == tool.name()) {
            panic!("a tool named `{}` is already registered", tool.name());
        }
        self.tools.push(tool);
        self
    }

    /// Items per page of list results (at least 1).
    pub fn page_size(mut self, size: usize) -> Self {
        self.page_size = size.max(1);
        self
    }

    /// The `ttlMs` hint of list results for 2026-07-28 clients (default 0: re-fetch freely).
    pub fn list_ttl_ms(mut self, ttl: i64) -> Self {
        self.list_ttl_ms = ttl.max(0);
        self
    }

    /// The server.
    pub fn build(self) -> Server {
        Server {
            inner: Arc::new(Inner {
                info: self.info,
                instructions: self.instructions,
                tools: self.tools,
                page_size: self.page_size,
                list_ttl_ms: self.list_ttl_ms,
            }),
        }
    }
}

impl Server {
    /// A builder for a server called `name` at `version`.
    pub fn builder(name: impl Into<String>, version: impl Into<String>) -> ServerBuilder {
        ServerBuilder {
            info: wire::Implementation::new(name, version),
            instructions: None,
            tools: Vec::new(),
            page_size: DEFAULT_PAGE_SIZE,
            list_ttl_ms: 0,
        }
    }

    /// The service of one new connection.
    pub fn connection(&self) -> Connection {
        Connection {
            server: self.inner.clone(),
            session: Mutex::new(Session::default()),
        }
    }

    /// The capabilities the registered features add up to.
    pub fn capabilities(&self) -> wire::ServerCapabilities {
        let mut caps = wire::ServerCapabilities::new();
        if !self.inner.tools.is_empty() {
            caps.tools = Some(wire::ServerCapabilitiesTools::new().with_list_changed(false));
        }
        caps
    }
}

/// A connection's negotiated state (stateful revisions only).
#[derive(Debug, Default, Clone)]
struct Session {
    /// The revision `initialize` negotiated.
    revision: Option<&'static str>,
    /// Whether `notifications/initialized` arrived.
    initialized: bool,
}

/// The revision a request is served at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// 2026-07-28, from the request's `_meta`.
    Stateless,
    /// A revision negotiated by `initialize`.
    Stateful(&'static str),
}

/// The [`Service`] of one connection to a [`Server`].
pub struct Connection {
    server: Arc<Inner>,
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

/// Decodes `params` as `T`, answering `-32602` with serde's message (which names the member).
fn decode<T: DeserializeOwned>(method: &str, params: Option<&RawValue>) -> Result<T, ErrorObject> {
    let text = params.map_or("{}", RawValue::get);
    serde_json::from_str(text).map_err(|e| ErrorObject::invalid_params(format!("{method}: {e}")))
}

fn raw<T: serde::Serialize>(value: &T) -> Result<Box<RawValue>, ErrorObject> {
    serde_json::value::to_raw_value(value).map_err(ErrorObject::internal)
}

impl Connection {
    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The era of a request: 2026-07-28 when its `_meta` names a protocol version, else the
    /// negotiated revision. A 2026-style version that is not supported is `-32022`.
    fn era(&self, method: &str, params: Option<&RawValue>) -> Result<Era, ErrorObject> {
        let requested = params
            .filter(|p| p.get().contains("io.modelcontextprotocol/protocolVersion"))
            .and_then(|p| serde_json::from_str::<MetaPeek>(p.get()).ok())
            .and_then(|p| p.meta)
            .and_then(|m| m.protocol_version);
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
        match self.session().revision {
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

    fn initialize(&self, params: Option<&RawValue>) -> Result<Box<RawValue>, ErrorObject> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Init {
            protocol_version: String,
        }
        // The members every stateful revision requires, checked with the newest stateful types.
        let _: portico_protocol::v2025_11_25::InitializeRequestParams = decode("initialize", params)?;
        let Init { protocol_version } = decode("initialize", params)?;
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
            session.initialized = false;
        }
        let server = Server {
            inner: self.server.clone(),
        };
        let mut result = serde_json::json!({
            "protocolVersion": revision,
            "capabilities": server.capabilities(),
            "serverInfo": self.server.info,
        });
        if let Some(instructions) = &self.server.instructions {
            result["instructions"] = instructions.clone().into();
        }
        raw(&adapt::result(revision, "initialize", result))
    }

    fn discover(&self) -> Result<Box<RawValue>, ErrorObject> {
        let server = Server {
            inner: self.server.clone(),
        };
        let mut meta = wire::ResultMetaObject::new();
        meta.server_info = Some(self.server.info.clone());
        let mut result = wire::DiscoverResult::new(server.capabilities(), "complete", supported_versions())
            .with_cache_scope(wire::CacheableResultCacheScope::Public)
            .with_ttl_ms(self.server.list_ttl_ms)
            .with_meta(meta);
        if let Some(instructions) = &self.server.instructions {
            result = result.with_instructions(instructions.clone());
        }
        raw(&result)
    }

    fn list_tools(&self, era: Era, params: Option<&RawValue>) -> Result<Box<RawValue>, ErrorObject> {
        #[derive(Deserialize)]
        struct Page {
            cursor: Option<String>,
        }
        let Page { cursor } = decode("tools/list", params)?;
        let start = match cursor.as_deref() {
            None => 0,
            Some(c) => decode_cursor(c)
                .ok_or_else(|| ErrorObject::invalid_params(format!("tools/list: unknown cursor {c:?}")))?,
        };
        let tools = &self.server.tools;
        let end = (start + self.server.page_size).min(tools.len());
        let page: Vec<wire::Tool> = tools
            .get(start..end)
            .unwrap_or_default()
            .iter()
            .map(|t| t.definition().clone())
            .collect();
        let mut result = wire::ListToolsResult::new("complete", page)
            .with_ttl_ms(self.server.list_ttl_ms)
            .with_cache_scope(wire::CacheableResultCacheScope::Public);
        if end < tools.len() {
            result = result.with_next_cursor(encode_cursor(end));
        }
        self.answer(era, "tools/list", &result)
    }

    async fn call_tool(
        &self,
        cx: RequestContext,
        era: Era,
        params: Option<&RawValue>,
    ) -> Result<Box<RawValue>, ErrorObject> {
        #[derive(Deserialize)]
        struct Call {
            name: String,
            #[serde(default)]
            arguments: Option<serde_json::Map<String, serde_json::Value>>,
        }
        if era == Era::Stateless {
            // The full request type checks `_meta` (protocol version and capabilities) too.
            let _: wire::CallToolRequestParams = decode("tools/call", params)?;
        }
        let Call { name, arguments } = decode("tools/call", params)?;
        let tool = self
            .server
            .tools
            .iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| ErrorObject::invalid_params(format!("tools/call: unknown tool {name:?}")))?;
        let result = tool.call(cx, arguments).await?;
        self.answer(era, "tools/call", &result)
    }

    /// Encodes a newest-revision result for the request's era.
    fn answer<T: serde::Serialize>(&self, era: Era, method: &str, result: &T) -> Result<Box<RawValue>, ErrorObject> {
        match era {
            Era::Stateless => raw(result),
            Era::Stateful(revision) => {
                let value = serde_json::to_value(result).map_err(ErrorObject::internal)?;
                raw(&adapt::result(revision, method, value))
            }
        }
    }
}

/// Every revision served, newest first.
pub fn supported_versions() -> Vec<String> {
    std::iter::once(STATELESS_REVISION)
        .chain(STATEFUL_REVISIONS.iter().copied())
        .map(str::to_string)
        .collect()
}

/// An opaque page cursor: a version tag and the offset, so a client cannot guess at meaning.
fn encode_cursor(offset: usize) -> String {
    format!("c1.{offset:x}")
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    usize::from_str_radix(cursor.strip_prefix("c1.")?, 16).ok()
}

impl Service for Connection {
    async fn request(
        &self,
        cx: RequestContext,
        method: String,
        params: Option<Box<RawValue>>,
    ) -> Result<Box<RawValue>, ErrorObject> {
        let params = params.as_deref();
        match method.as_str() {
            "initialize" => self.initialize(params),
            "server/discover" => {
                let _: wire::RequestParams = decode("server/discover", params)?;
                match self.era(&method, params)? {
                    Era::Stateless => self.discover(),
                    Era::Stateful(_) => Err(ErrorObject::method_not_found(&method)),
                }
            }
            "ping" => match self.session().revision {
                Some(_) => raw(&serde_json::json!({})),
                None => Err(ErrorObject::method_not_found(&method)),
            },
            "tools/list" => {
                let era = self.era(&method, params)?;
                self.list_tools(era, params)
            }
            "tools/call" => {
                let era = self.era(&method, params)?;
                self.call_tool(cx, era, params).await
            }
            _ => Err(ErrorObject::method_not_found(&method)),
        }
    }

    async fn notification(&self, _peer: PeerHandle, method: String, _params: Option<Box<RawValue>>) {
        if method == "notifications/initialized" {
            self.session().initialized = true;
        }
    }
}
