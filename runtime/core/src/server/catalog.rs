//! Catalogs: tools, resources, prompts and completions decided when a request comes rather
//! than registered up front — what a gateway serves from its upstreams. A [`Server`] given a
//! catalog ([`super::ServerBuilder::catalog`]) lists the catalog's items after its registered
//! ones and hands it the calls no registered item takes.
//!
//! Everything else stays the framework's: `initialize`, `server/discover`, sessions and the
//! revision adapters, pagination, logging levels, subscriptions, and the input rounds: a
//! catalog that needs the client's input asks with [`Context::request_input`] (a server→client
//! request in a session; in 2026-07-28, an `input_required` result whose answers come back in
//! the retried request) exactly as a registered handler does.
//!
//! Results are JSON objects shaped as the newest revision's result types; the framework adapts
//! them to the request's revision.
//!
//! Lists come as a [`Listing`]: the items shared (the framework copies only the page it
//! answers), the `ttlMs` and `cacheScope` of their results (a catalog whose lists differ per
//! caller says `private`), and optionally a key naming exactly those items, with which the
//! framework encodes each page once and answers it again from the bytes.
//!
//! [`Server`]: super::Server

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use portico_protocol::v2026_07_28 as wire;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::Context;
use crate::error::ErrorObject;
use crate::message::{self, JsonText};

/// A boxed future borrowing the catalog.
pub type CatalogFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ErrorObject>> + Send + 'a>>;

/// A tool's result as a catalog answers it ([`Catalog::call_tool_answered`]): a value, or the
/// text of a result object as it came from elsewhere (a relay's upstream), which the framework
/// answers without reading it into a value when it can.
#[derive(Debug)]
pub enum Answered {
    /// A result object, shaped as the newest revision's.
    Value(Value),
    /// The text of a complete result object without the members of the result envelope: no
    /// `_meta` (the framework writes its server's) and no `resultType` (2026-07-28's, which
    /// the framework writes as `"complete"` for a client of that revision), so that it is the
    /// same text in every revision: a 2026-07-28 client gets it with the server's `_meta` and
    /// `resultType` spliced in, a session's client of any revision as it is — unread either
    /// way — except for a method whose results the revision adapters change beyond their
    /// envelope (`tools/list`, `initialize`), which is read into a value. See
    /// [`Answered::relayed`].
    Text {
        /// The result object.
        text: JsonText,
        /// Its `isError`.
        is_error: bool,
    },
}

impl Answered {
    /// Whether the result is a tool error (`isError: true`).
    pub fn is_error(&self) -> bool {
        match self {
            Answered::Value(value) => value.get("isError") == Some(&Value::Bool(true)),
            Answered::Text { is_error, .. } => *is_error,
        }
    }

    /// The result as a value (text is read).
    pub fn into_value(self) -> Result<Value, ErrorObject> {
        match self {
            Answered::Value(value) => Ok(value),
            Answered::Text { text, .. } => Self::value_of_text(&text),
        }
    }

    /// The value of [`Answered::Text`]'s `text`: read, `"resultType":"complete"` put back.
    pub(crate) fn value_of_text(text: &JsonText) -> Result<Value, ErrorObject> {
        let mut value: Value = text.decode().map_err(ErrorObject::internal)?;
        if let Some(object) = value.as_object_mut() {
            object.entry("resultType").or_insert_with(|| "complete".into());
        }
        Ok(value)
    }

    /// An upstream server's `result` as a relay got it ([`Answered::Text`]), when it is a
    /// plain complete result: an object whose `resultType`, if any, is `"complete"` (results of
    /// revisions before 2026-07-28 have none), with neither `ttlMs` nor `cacheScope`, and
    /// whose `_meta`, if any, names nothing but that server
    /// (`io.modelcontextprotocol/serverInfo`). Its top level is scanned
    /// ([`message::each_member`]), its members' values skipped unread; a `resultType` or
    /// `_meta` is cut out (the text is written again without them, the other members as they
    /// came). Any other result is given back, to be read as a value; so is one the scan does
    /// not take as it is: a key written with an escape (it could be one of those above), a
    /// member looked at written twice, a `resultType` or `isError` not written plainly, a
    /// `_meta` that is no object.
    pub fn relayed(result: Box<RawValue>) -> Result<Self, Box<RawValue>> {
        const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
        let whole = result.get();
        let (mut result_type, mut is_error, mut meta) = (None, None, None);
        let read = message::each_member(whole, |key, value| {
            let seen = match key {
                "resultType" => result_type.replace(value),
                "isError" => is_error.replace(value),
                "_meta" => meta.replace(value),
                // What a cacheable result has: read as a value, and answered with them.
                "ttlMs" | "cacheScope" => return false,
                _ => return !key.contains('\\'),
            };
            seen.is_none()
        });
        if !read || !matches!(result_type, None | Some("\"complete\"")) {
            return Err(result);
        }
        let is_error = match is_error {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(result),
        };
        if let Some(meta) = meta {
            let mut named = false;
            let info_only = message::each_member(meta, |key, _| {
                key == SERVER_INFO && !std::mem::replace(&mut named, true)
            });
            if !info_only {
                return Err(result);
            }
        }
        let text = match (result_type, meta) {
            (None, None) => JsonText::from(result),
            // Valid JSON's object written again without two of its members: valid.
            _ => match message::without_members(whole, |key| key == "resultType" || key == "_meta") {
                Some(cut) => JsonText::trusted(cut),
                None => return Err(result),
            },
        };
        Ok(Answered::Text { text, is_error })
    }
}

/// Which capabilities a catalog adds to the server's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CatalogFeatures {
    /// `tools` (with `listChanged`).
    pub tools: bool,
    /// `resources` (with `listChanged` and `subscribe`).
    pub resources: bool,
    /// `prompts` (with `listChanged`).
    pub prompts: bool,
    /// `completions`.
    pub completions: bool,
}

impl CatalogFeatures {
    /// Every feature.
    pub fn all() -> Self {
        Self {
            tools: true,
            resources: true,
            prompts: true,
            completions: true,
        }
    }
}

/// One of a catalog's lists, as [`Catalog::tool_listing`] and the like give it: the items,
/// shared rather than copied (the framework copies only the page it answers), and what its
/// results say about caching.
///
/// A `key` promises that every listing given with that key has the same items and hints: the
/// framework then encodes each page of it once, and answers the same page of a listing with the
/// same key (at the same revision) with the bytes it encoded before, up to [`PAGE_MEMO_ENTRIES`]
/// pages and [`PAGE_MEMO_BYTES`] per server, the oldest forgotten first. A catalog whose lists
/// change gives the changed list a key it never gave before.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Listing<T> {
    /// The items, in order (after the server's registered ones).
    pub items: Arc<[T]>,
    /// The results' `ttlMs` (2026-07-28); `None`: the server's
    /// [`list_ttl_ms`](super::ServerBuilder::list_ttl_ms).
    pub ttl_ms: Option<i64>,
    /// The results' `cacheScope` (2026-07-28); `None`: `public`.
    pub cache_scope: Option<wire::CacheableResultCacheScope>,
    /// What names these exact items and hints, if the catalog can say (see above).
    pub key: Option<u64>,
}

/// Pages a server keeps encoded for [`Listing::key`]s, at most.
pub const PAGE_MEMO_ENTRIES: usize = 64;
/// Bytes of encoded pages a server keeps for [`Listing::key`]s, at most.
pub const PAGE_MEMO_BYTES: usize = 4 << 20;

impl<T> Listing<T> {
    /// `items`, with the server's hints and no key.
    pub fn new(items: impl Into<Arc<[T]>>) -> Self {
        Self {
            items: items.into(),
            ttl_ms: None,
            cache_scope: None,
            key: None,
        }
    }

    /// With `ttlMs` (negative counts as 0).
    pub fn with_ttl_ms(mut self, ttl_ms: i64) -> Self {
        self.ttl_ms = Some(ttl_ms.max(0));
        self
    }

    /// With `cacheScope`.
    pub fn with_cache_scope(mut self, scope: wire::CacheableResultCacheScope) -> Self {
        self.cache_scope = Some(scope);
        self
    }

    /// With a key naming these items and hints (see [`Listing`]).
    pub fn with_key(mut self, key: u64) -> Self {
        self.key = Some(key);
        self
    }
}

impl<T> From<Vec<T>> for Listing<T> {
    fn from(items: Vec<T>) -> Self {
        Self::new(items)
    }
}

/// What a catalog serves. Every method has a default serving nothing, so a catalog writes only
/// what it has. Lists are whole (the framework pages them); a call of something the catalog
/// does not know answers `-32602` naming it.
pub trait Catalog: Send + Sync + 'static {
    /// The capabilities the catalog adds.
    fn features(&self) -> CatalogFeatures;

    /// The tools, for `tools/list`.
    fn list_tools<'a>(&'a self, cx: &'a Context) -> CatalogFuture<'a, Vec<wire::Tool>> {
        let _ = cx;
        Box::pin(async { Ok(Vec::new()) })
    }

    /// `tools/call`; the result is a `CallToolResult` (or any result the tool's revision
    /// allows, e.g. the tasks extension's `CreateTaskResult`).
    fn call_tool<'a>(
        &'a self,
        cx: &'a Context,
        name: &'a str,
        arguments: Option<Map<String, Value>>,
    ) -> CatalogFuture<'a, Value> {
        let _ = (cx, arguments);
        Box::pin(async move {
            Err(ErrorObject::invalid_params(format!(
                "tools/call: unknown tool {name:?}"
            )))
        })
    }

    /// [`Catalog::call_tool`], whose result may be text as it came ([`Answered::Text`]). The
    /// framework calls this one; the default answers [`Catalog::call_tool`]'s value. A catalog
    /// that relays results overrides it to hand them on unread.
    fn call_tool_answered<'a>(
        &'a self,
        cx: &'a Context,
        name: &'a str,
        arguments: Option<Map<String, Value>>,
    ) -> CatalogFuture<'a, Answered> {
        Box::pin(async move { self.call_tool(cx, name, arguments).await.map(Answered::Value) })
    }

    /// [`Catalog::call_tool_answered`] of arguments given as the text of the JSON object the
    /// request carried (checked to be JSON as the request was read, not decoded). The
    /// framework calls this one when it has that text; the default decodes it into a map (a
    /// `-32602` naming the problem if that fails) and calls [`Catalog::call_tool_answered`].
    /// A catalog that hands arguments on as they came (a relay) overrides it, sparing their
    /// decoding into a map and their encoding again.
    fn call_tool_raw<'a>(
        &'a self,
        cx: &'a Context,
        name: &'a str,
        arguments: Option<&'a str>,
    ) -> CatalogFuture<'a, Answered> {
        Box::pin(async move {
            let arguments = arguments
                .map(|text| super::decode_text("tools/call", text))
                .transpose()?;
            self.call_tool_answered(cx, name, arguments).await
        })
    }

    /// The definition of the tool served as `name`, if the catalog can tell without waiting
    /// (from what it listed last). The framework reads its `inputSchema`'s `x-mcp-header`
    /// annotations to check a Streamable HTTP request's `Mcp-Param-*` headers; `None` (the
    /// default) checks nothing. `extensions` are the request's ([`Context::extensions`]): a
    /// catalog that hides tools from some callers answers `None` for a tool hidden from this
    /// one, so that its call fails as a call of an unknown tool would.
    fn tool_definition(&self, name: &str, extensions: &crate::Extensions) -> Option<wire::Tool> {
        let _ = (name, extensions);
        None
    }

    /// Whether any tool the catalog serves may have `x-mcp-header` arguments (see
    /// [`Catalog::tool_definition`]). `false` lets the framework skip reading a call's params
    /// for them; the default, `true`, is always right.
    fn mirrors_arguments(&self) -> bool {
        true
    }

    /// The resources, for `resources/list`.
    fn list_resources<'a>(&'a self, cx: &'a Context) -> CatalogFuture<'a, Vec<wire::Resource>> {
        let _ = cx;
        Box::pin(async { Ok(Vec::new()) })
    }

    /// The resource templates, for `resources/templates/list`.
    fn list_resource_templates<'a>(&'a self, cx: &'a Context) -> CatalogFuture<'a, Vec<wire::ResourceTemplate>> {
        let _ = cx;
        Box::pin(async { Ok(Vec::new()) })
    }

    /// `resources/read`: `Ok(None)` when the catalog has no such resource (the framework then
    /// answers "resource not found" with the revision's code).
    fn read_resource<'a>(&'a self, cx: &'a Context, uri: &'a str) -> CatalogFuture<'a, Option<Value>> {
        let _ = (cx, uri);
        Box::pin(async { Ok(None) })
    }

    /// The prompts, for `prompts/list`.
    fn list_prompts<'a>(&'a self, cx: &'a Context) -> CatalogFuture<'a, Vec<wire::Prompt>> {
        let _ = cx;
        Box::pin(async { Ok(Vec::new()) })
    }

    /// The tools for `tools/list`, shared and with cache hints. The default is
    /// [`Catalog::list_tools`]'s, with the server's hints; a catalog that keeps its lists
    /// overrides it (the framework asks this one).
    fn tool_listing<'a>(&'a self, cx: &'a Context) -> CatalogFuture<'a, Listing<wire::Tool>> {
        Box::pin(async move { self.list_tools(cx).await.map(Listing::from) })
    }

    /// The resources for `resources/list`, as [`Catalog::tool_listing`].
    fn resource_listing<'a>(&'a self, cx: &'a Context) -> CatalogFuture<'a, Listing<wire::Resource>> {
        Box::pin(async move { self.list_resources(cx).await.map(Listing::from) })
    }

    /// The resource templates for `resources/templates/list`, as [`Catalog::tool_listing`].
    fn resource_template_listing<'a>(&'a self, cx: &'a Context) -> CatalogFuture<'a, Listing<wire::ResourceTemplate>> {
        Box::pin(async move { self.list_resource_templates(cx).await.map(Listing::from) })
    }

    /// The prompts for `prompts/list`, as [`Catalog::tool_listing`].
    fn prompt_listing<'a>(&'a self, cx: &'a Context) -> CatalogFuture<'a, Listing<wire::Prompt>> {
        Box::pin(async move { self.list_prompts(cx).await.map(Listing::from) })
    }

    /// `prompts/get`; the result is a `GetPromptResult`.
    fn get_prompt<'a>(
        &'a self,
        cx: &'a Context,
        name: &'a str,
        arguments: BTreeMap<String, String>,
    ) -> CatalogFuture<'a, Value> {
        let _ = (cx, arguments);
        Box::pin(async move {
            Err(ErrorObject::invalid_params(format!(
                "prompts/get: unknown prompt {name:?}"
            )))
        })
    }

    /// `completion/complete`; the result is a `CompleteResult`.
    fn complete<'a>(&'a self, cx: &'a Context, params: wire::CompleteRequestParams) -> CatalogFuture<'a, Value> {
        let _ = (cx, params);
        Box::pin(async { Err(ErrorObject::method_not_found("completion/complete")) })
    }

    /// The extensions the catalog serves, as declared in the server's capabilities
    /// (`capabilities.extensions`: name → its settings object), beside the framework's own.
    fn extensions(&self) -> BTreeMap<String, Value> {
        BTreeMap::new()
    }

    /// A method of an extension the framework serves from its own registries when it has them
    /// — `tasks/get`, `tasks/update`, `tasks/cancel` (the tasks extension, 2026-07-28 requests
    /// only), `skills/list`, `skills/get`, `resources/directory/read` (the skills extension) —
    /// when it has none: the catalog's result (a newest-revision result object), or `None`
    /// (the default) for "method not found".
    fn extension_request<'a>(
        &'a self,
        cx: &'a Context,
        method: &'a str,
        params: Option<&'a serde_json::value::RawValue>,
    ) -> Option<CatalogFuture<'a, Value>> {
        let _ = (cx, method, params);
        None
    }

    /// A session subscribed to `uri` (`resources/subscribe`) or a `subscriptions/listen`
    /// stream asked for it: start watching it, so that its changes can be announced with
    /// [`super::Server::notify`]. The default watches nothing.
    fn watch<'a>(&'a self, uri: &'a str) -> CatalogFuture<'a, ()> {
        let _ = uri;
        Box::pin(async { Ok(()) })
    }
}
