//! What each endpoint serves, as a [`Catalog`] over the upstreams' snapshots:
//!
//! - the aggregated endpoint (`/mcp`): every upstream's tools and prompts named
//!   `<prefix><separator><name>` (unprefixed for an upstream whose `prefix` is `""`), and their
//!   resources and templates under their own URIs;
//! - an upstream's endpoint (`/mcp/<name>`): that upstream's items under their own names;
//! - a virtual server (`/mcp/<name>`): the tools it lists, renamed and redescribed as it says.
//!
//! Two items that would be served under one name are a collision: the first upstream (in
//! configuration order) keeps the name, the others' item is left out, and the collision is
//! logged and reported by [`Routes::collisions`] (shown at `/healthz`).
//!
//! The policy ([`crate::policy`]) of the routes in force filters every list and guards every
//! call, for the caller the request's [`Principal`] names: lists keep what it allows (after
//! collisions are settled, so a name is listed exactly when its call would be let through), and
//! a call, read, get or completion of an item it does not allow fails exactly as one of an
//! item that does not exist.
//!
//! What the policy lets through is relayed with [`relay::forward`], through the plugins of the
//! routes in force ([`crate::plugin`]), given the name the client used.
//!
//! With a `cache` section, lists are kept per endpoint and role set, and `resources/read` and
//! opted-in `tools/call` results as their freshness allows ([`crate::cache`]), the policy
//! always deciding first. Lists say `cacheScope: private` when a policy is in force (they
//! differ per caller), `public` otherwise.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

use portico_core::server::catalog::{Catalog, CatalogFeatures, CatalogFuture, Listing};
use portico_core::server::{Answered, Context};
use portico_core::{ErrorObject, Extensions};
use portico_protocol::v2026_07_28 as wire;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::auth::Principal;
use crate::cache::{self, Cache, ListKey};
use crate::config::{Config, VirtualServerConfig};
use crate::plugin::Chain;
use crate::policy::{Caller, Item, Policy};
use crate::relay::{self, UNKNOWN_TARGET};
use crate::upstream::Upstream;

/// The upstreams in configuration order, the configuration they came from, its compiled
/// policy and plugins; replaced whole on reload.
pub struct Routes {
    /// The configuration.
    pub config: Config,
    /// The upstreams, in configuration order.
    pub upstreams: Vec<Arc<Upstream>>,
    /// The configuration's `policy`, compiled; `None` without one (everything allowed).
    pub policy: Option<Policy>,
    /// The configuration's `plugins`, compiled ([`Routes::plugged`]); empty until then.
    pub plugins: Chain,
    /// Where the policy's refusals are recorded ([`Routes::audited`]).
    audit: Option<crate::audit::Auditor>,
    /// The cache, with a `cache` section ([`crate::cache`]; made by the gateway as it puts
    /// the routes in force).
    pub(crate) cache: Option<Arc<Cache>>,
}

impl Routes {
    /// The routes of `config` (checked already) over `upstreams`.
    pub fn new(config: Config, upstreams: Vec<Arc<Upstream>>) -> Self {
        let policy = config.policy.as_ref().map(|policy| {
            Policy::compile(policy).unwrap_or_else(|(key, message)| {
                // Not reached: a configuration is checked (its policy compiled) before it is
                // routed. Were it reached, nothing is allowed rather than everything.
                tracing::error!(target: "portico::policy", key, message, "the policy does not compile; nothing is allowed");
                Policy::closed()
            })
        });
        Self {
            config,
            upstreams,
            policy,
            plugins: Chain::default(),
            audit: None,
            cache: None,
        }
    }

    /// Runs `plugins` (the configuration's, compiled with the gateway's registry) on every
    /// request relayed.
    pub fn plugged(mut self, plugins: Chain) -> Self {
        self.plugins = plugins;
        self
    }

    /// Records the policy's refusals in `audit`.
    pub fn audited(mut self, audit: Option<crate::audit::Auditor>) -> Self {
        self.audit = audit;
        self
    }

    /// The caller `principal` (none: anonymous) under the policy in force.
    pub fn caller<'a>(&'a self, principal: Option<&'a Principal>) -> Caller<'a> {
        Caller::new(self.policy.as_ref(), principal).audited(self.audit.as_ref())
    }

    fn upstream(&self, name: &str) -> Option<&Arc<Upstream>> {
        self.upstreams.iter().find(|u| u.name() == name)
    }

    /// The aggregated endpoint's name of `item` of `upstream`.
    fn exposed(&self, upstream: &Upstream, item: &str) -> String {
        match upstream.config().prefix() {
            "" => item.to_string(),
            prefix => format!("{prefix}{}{item}", self.config.separator),
        }
    }

    /// The upstream and upstream-side name behind an aggregated tool or prompt name.
    fn resolve<'a>(&'a self, name: &str, has: impl Fn(&Upstream, &str) -> bool) -> Option<(&'a Arc<Upstream>, String)> {
        self.upstreams.iter().find_map(|u| {
            let item = match u.config().prefix() {
                "" => name,
                prefix => name
                    .strip_prefix(prefix)?
                    .strip_prefix(self.config.separator.as_str())?,
            };
            has(u, item).then(|| (u, item.to_string()))
        })
    }

    /// Names served twice on the aggregated endpoint: `(kind, name, upstreams)`.
    pub fn collisions(&self) -> Vec<(&'static str, String, Vec<String>)> {
        let mut seen: BTreeMap<(&'static str, String), Vec<String>> = BTreeMap::new();
        for u in &self.upstreams {
            let snapshot = u.snapshot();
            for tool in &snapshot.tools {
                seen.entry(("tool", self.exposed(u, &tool.name)))
                    .or_default()
                    .push(u.name().to_string());
            }
            for prompt in &snapshot.prompts {
                seen.entry(("prompt", self.exposed(u, &prompt.name)))
                    .or_default()
                    .push(u.name().to_string());
            }
            for resource in &snapshot.resources {
                seen.entry(("resource", resource.uri.clone()))
                    .or_default()
                    .push(u.name().to_string());
            }
        }
        seen.into_iter()
            .filter(|(_, owners)| owners.len() > 1)
            .map(|((kind, name), owners)| (kind, name, owners))
            .collect()
    }
}

/// The routes, swapped whole when the configuration changes.
pub type SharedRoutes = Arc<RwLock<Arc<Routes>>>;

/// Which items an endpoint serves.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every upstream's, namespaced.
    All,
    /// One upstream's, as they are.
    Upstream(String),
    /// A virtual server's.
    Virtual(String),
}

/// The catalog of one endpoint.
pub struct View {
    routes: SharedRoutes,
    scope: Scope,
    /// Which tool started each task this endpoint handed out, so that its task methods are
    /// allowed to whom the tool is.
    tasks: Mutex<TaskOwners>,
}

/// The tool behind each task id handed out (as the client sees it), the most recent ones.
#[derive(Default)]
struct TaskOwners {
    owners: HashMap<String, (String, String)>,
    order: VecDeque<String>,
}

/// Task ids remembered per endpoint; older ones are decided by their upstream alone.
const TASK_OWNERS: usize = 4096;

impl TaskOwners {
    fn insert(&mut self, task: String, upstream: &str, tool: &str) {
        if self.owners.len() >= TASK_OWNERS
            && let Some(oldest) = self.order.pop_front()
        {
            self.owners.remove(&oldest);
        }
        if self
            .owners
            .insert(task.clone(), (upstream.to_string(), tool.to_string()))
            .is_none()
        {
            self.order.push_back(task);
        }
    }
}

impl View {
    /// `tools/call` of the tool served as `name`, relayed to its upstream with `arguments`
    /// decoded, or `raw` as the client sent them ([`relay::forward_through_as`]).
    async fn relay_call(
        &self,
        cx: &Context,
        name: &str,
        arguments: Option<Value>,
        raw: Option<&RawValue>,
    ) -> Result<Answered, ErrorObject> {
        let routes = self.routes();
        let caller = routes.caller(cx.extension::<Principal>());
        let (upstream, tool) = self
            .allowed_tool(&routes, &caller, "tools/call", name)
            .ok_or_else(|| unknown("tool", name))?;
        let mut params = Map::new();
        params.insert("name".into(), tool.clone().into());
        if let Some(arguments) = arguments {
            params.insert("arguments".into(), arguments);
        }
        // A session upstream's tasks, for a client of the extension.
        crate::tasks::prepare_call(&upstream.snapshot(), &tool, name, cx, &mut params)?;
        let augmented = params.contains_key("task");
        let plugins = routes.plugins.on(Some(name));
        let cache = routes
            .cache
            .as_deref()
            .filter(|cache| cache.caches_tool(&upstream, &tool))
            .map(|cache| (cache, cache::Kind::Tool));
        // A task's result is read; any other may be handed on as the upstream's text, to a
        // client of any revision ([`Answered::Text`] is the same in every one).
        let text = !augmented;
        let answered =
            relay::forward_through_as(&upstream, cx, "tools/call", params, raw, plugins, cache, text).await?;
        let mut result = match answered {
            Answered::Value(result) => result,
            text @ Answered::Text { .. } => return Ok(text),
        };
        if augmented {
            result = crate::tasks::created(result);
        }
        // A task handle (the tasks extension) names the upstream that runs the task.
        if self.prefixes_tasks() {
            rewrite_task_ids(&mut result, &|id| format!("{}{TASK_SEPARATOR}{id}", upstream.name()));
        }
        if let Some(task) = task_id(&result) {
            self.tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(task.to_string(), upstream.name(), &tool);
        }
        Ok(Answered::Value(result))
    }

    /// The catalog of the endpoint `scope`.
    pub fn new(routes: SharedRoutes, scope: Scope) -> Self {
        Self {
            routes,
            scope,
            tasks: Mutex::default(),
        }
    }

    /// Whether the endpoint serves `caller` at all: a virtual server kept to roles the caller
    /// holds none of serves it nothing.
    fn serves(&self, routes: &Routes, caller: &Caller<'_>) -> bool {
        match &self.scope {
            Scope::Virtual(name) => virtual_server(routes, name).is_some_and(|v| caller.may_use(v)),
            _ => true,
        }
    }

    fn routes(&self) -> Arc<Routes> {
        self.routes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The upstreams this endpoint draws on.
    fn upstreams(&self, routes: &Routes) -> Vec<Arc<Upstream>> {
        match &self.scope {
            Scope::All => routes.upstreams.clone(),
            Scope::Upstream(name) => routes.upstream(name).cloned().into_iter().collect(),
            Scope::Virtual(name) => {
                let names: BTreeSet<&str> = virtual_server(routes, name)
                    .map(|v| v.tools.iter().map(|t| t.upstream.as_str()).collect())
                    .unwrap_or_default();
                routes
                    .upstreams
                    .iter()
                    .filter(|u| names.contains(u.name()))
                    .cloned()
                    .collect()
            }
        }
    }

    /// The upstream and upstream-side name of a tool this endpoint serves as `name`. A name
    /// that only a disconnected upstream could serve goes to it (its call then fails naming the
    /// upstream as unavailable, rather than the tool as unknown). Also what the rate limiter
    /// ([`crate::ratelimit`]) keys a call by.
    pub(crate) fn tool(&self, routes: &Routes, name: &str) -> Option<(Arc<Upstream>, String)> {
        let has = |u: &Upstream, item: &str| u.snapshot().tools.iter().any(|t| t.name == item);
        let down_or_has = |u: &Upstream, item: &str| !u.is_available() || has(u, item);
        match &self.scope {
            Scope::All => routes
                .resolve(name, has)
                .or_else(|| routes.resolve(name, down_or_has))
                .map(|(u, n)| (u.clone(), n)),
            Scope::Upstream(upstream) => routes
                .upstream(upstream)
                .filter(|u| down_or_has(u, name))
                .map(|u| (u.clone(), name.to_string())),
            Scope::Virtual(server) => {
                let tool = virtual_server(routes, server)?
                    .tools
                    .iter()
                    .find(|t| t.rename.as_deref().unwrap_or(&t.tool) == name)?;
                routes.upstream(&tool.upstream).map(|u| (u.clone(), tool.tool.clone()))
            }
        }
    }

    /// The upstream and upstream-side name of a prompt this endpoint serves as `name`.
    pub(crate) fn prompt(&self, routes: &Routes, name: &str) -> Option<(Arc<Upstream>, String)> {
        let has = |u: &Upstream, item: &str| u.snapshot().prompts.iter().any(|p| p.name == item);
        match &self.scope {
            Scope::All => routes.resolve(name, has).map(|(u, n)| (u.clone(), n)),
            Scope::Upstream(upstream) => routes
                .upstream(upstream)
                .filter(|u| has(u, name))
                .map(|u| (u.clone(), name.to_string())),
            Scope::Virtual(_) => None,
        }
    }

    /// The upstreams that may serve `uri`: the one listing it, else those with templates (an
    /// upstream's template decides what it matches, so each is asked in turn).
    fn resource_owners(&self, routes: &Routes, uri: &str) -> Vec<Arc<Upstream>> {
        if matches!(self.scope, Scope::Virtual(_)) {
            return Vec::new();
        }
        let upstreams = self.upstreams(routes);
        if let Some(owner) = upstreams
            .iter()
            .find(|u| u.snapshot().resources.iter().any(|r| r.uri == uri))
        {
            return vec![owner.clone()];
        }
        upstreams
            .into_iter()
            .filter(|u| !u.snapshot().templates.is_empty())
            .collect()
    }
}

fn virtual_server<'a>(routes: &'a Routes, name: &str) -> Option<&'a VirtualServerConfig> {
    routes.config.virtual_servers.iter().find(|v| v.name == name)
}

/// An item of a list, with what the policy decides it by: its upstream and its name there.
struct Listed<T> {
    upstream: String,
    name: String,
    item: T,
}

/// Keeps the first item of each name (logging the others), then those `allowed` lets through.
fn visible<T>(items: Vec<(String, Listed<T>)>, kind: &str, allowed: impl Fn(&str, &str) -> bool) -> Vec<T> {
    dedup(items, kind)
        .into_iter()
        .filter(|l| allowed(&l.upstream, &l.name))
        .map(|l| l.item)
        .collect()
}

/// Keeps the first item of each name; logs the others.
fn dedup<T>(items: Vec<(String, T)>, kind: &str) -> Vec<T> {
    let mut seen = BTreeSet::new();
    items
        .into_iter()
        .filter_map(|(name, item)| {
            if seen.insert(name.clone()) {
                Some(item)
            } else {
                tracing::warn!(kind, name, "two upstreams serve this name; the first one's is served");
                None
            }
        })
        .collect()
}

fn unknown(kind: &str, name: &str) -> ErrorObject {
    ErrorObject::new(
        UNKNOWN_TARGET,
        format!("unknown {kind} {name:?}: no upstream serves it here"),
    )
    .with_data(json!({kind: name}))
}

impl Catalog for View {
    fn features(&self) -> CatalogFeatures {
        match self.scope {
            Scope::Virtual(_) => {
                let mut features = CatalogFeatures::default();
                features.tools = true;
                features
            }
            _ => CatalogFeatures::all(),
        }
    }

    fn tool_listing<'a>(&'a self, cx: &'a Context) -> CatalogFuture<'a, Listing<wire::Tool>> {
        Box::pin(self.listing(cx, self.list_tools(cx)))
    }

    fn resource_listing<'a>(&'a self, cx: &'a Context) -> CatalogFuture<'a, Listing<wire::Resource>> {
        Box::pin(self.listing(cx, self.list_resources(cx)))
    }

    fn resource_template_listing<'a>(&'a self, cx: &'a Context) -> CatalogFuture<'a, Listing<wire::ResourceTemplate>> {
        Box::pin(self.listing(cx, self.list_resource_templates(cx)))
    }

    fn prompt_listing<'a>(&'a self, cx: &'a Context) -> CatalogFuture<'a, Listing<wire::Prompt>> {
        Box::pin(self.listing(cx, self.list_prompts(cx)))
    }

    fn mirrors_arguments(&self) -> bool {
        // Any upstream's, whatever this endpoint serves: a cheap answer that is never wrong.
        self.routes()
            .upstreams
            .iter()
            .any(|u| !u.snapshot().header_tools.is_empty())
    }

    fn tool_definition(&self, name: &str, extensions: &Extensions) -> Option<wire::Tool> {
        let routes = self.routes();
        // Not recorded here: the call that follows is refused (and recorded) as well.
        let caller = routes.caller(extensions.get::<Principal>()).audited(None);
        // A hidden tool has no definition: its call fails as an unknown tool's, headers or not.
        let (upstream, tool) = self.allowed_tool(&routes, &caller, "tools/call", name)?;
        // Only a tool with `x-mcp-header` annotations has headers to check: the common call
        // copies no definition.
        let snapshot = upstream.snapshot();
        if !snapshot.header_tools.contains(&tool) {
            return None;
        }
        snapshot.tools.iter().find(|t| t.name == tool).cloned()
    }

    fn list_tools<'a>(&'a self, cx: &'a Context) -> CatalogFuture<'a, Vec<wire::Tool>> {
        Box::pin(async move {
            let routes = self.routes();
            let caller = routes.caller(cx.extension::<Principal>());
            if !self.serves(&routes, &caller) {
                return Ok(Vec::new());
            }
            let listed = |u: &Upstream, t: &wire::Tool, exposed: String| {
                let mut tool = t.clone();
                tool.name = exposed.clone();
                let item = Listed {
                    upstream: u.name().to_string(),
                    name: t.name.clone(),
                    item: tool,
                };
                (exposed, item)
            };
            let tools = match &self.scope {
                Scope::All => routes
                    .upstreams
                    .iter()
                    .flat_map(|u| {
                        let snapshot = u.snapshot();
                        let routes = &routes;
                        snapshot
                            .tools
                            .iter()
                            .map(|t| listed(u, t, routes.exposed(u, &t.name)))
                            .collect::<Vec<_>>()
                    })
                    .collect(),
                Scope::Upstream(name) => routes
                    .upstream(name)
                    .map(|u| {
                        u.snapshot()
                            .tools
                            .iter()
                            .map(|t| listed(u, t, t.name.clone()))
                            .collect()
                    })
                    .unwrap_or_default(),
                Scope::Virtual(server) => virtual_server(&routes, server)
                    .map(|v| {
                        v.tools
                            .iter()
                            .filter_map(|chosen| {
                                let upstream = routes.upstream(&chosen.upstream)?;
                                let snapshot = upstream.snapshot();
                                let original = snapshot.tools.iter().find(|t| t.name == chosen.tool)?;
                                let exposed = chosen.rename.clone().unwrap_or_else(|| original.name.clone());
                                let (exposed, mut listed) = listed(upstream, original, exposed);
                                if let Some(description) = &chosen.description {
                                    listed.item.description = Some(description.clone());
                                }
                                Some((exposed, listed))
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            Ok(visible(tools, "tool", |upstream, name| {
                caller.allows("tools/list", Item::tool(upstream, name))
            }))
        })
    }

    fn call_tool<'a>(
        &'a self,
        cx: &'a Context,
        name: &'a str,
        arguments: Option<Map<String, Value>>,
    ) -> CatalogFuture<'a, Value> {
        Box::pin(async move { self.call_tool_answered(cx, name, arguments).await?.into_value() })
    }

    /// A 2026-07-28 client's call of a plain tool gets the upstream's result as its text
    /// ([`relay::forward_through_as`] says when it can): it is neither read into a value nor
    /// written again.
    fn call_tool_answered<'a>(
        &'a self,
        cx: &'a Context,
        name: &'a str,
        arguments: Option<Map<String, Value>>,
    ) -> CatalogFuture<'a, Answered> {
        Box::pin(self.relay_call(cx, name, arguments.map(Value::Object), None))
    }

    /// The arguments go to the upstream as the client sent them, not decoded into a map and
    /// encoded again (unless a plugin or the cache reads them: [`relay::forward_through_as`]).
    /// serde_json borrows them as a `&RawValue` only after checking them once more.
    fn call_tool_raw<'a>(
        &'a self,
        cx: &'a Context,
        name: &'a str,
        arguments: Option<&'a str>,
    ) -> CatalogFuture<'a, Answered> {
        Box::pin(async move {
            let arguments = arguments.map(relay::read_arguments::<&RawValue>).transpose()?;
            self.relay_call(cx, name, None, arguments).await
        })
    }

    fn extensions(&self) -> BTreeMap<String, Value> {
        let routes = self.routes();
        let mut extensions = BTreeMap::new();
        for upstream in self.upstreams(&routes) {
            for (name, settings) in &upstream.snapshot().extensions {
                // A virtual server serves tools: of the extensions, tasks alone.
                if matches!(self.scope, Scope::Virtual(_)) && name != TASKS {
                    continue;
                }
                extensions.entry(name.clone()).or_insert_with(|| settings.clone());
            }
        }
        extensions
    }

    fn extension_request<'a>(
        &'a self,
        cx: &'a Context,
        method: &'a str,
        params: Option<&'a serde_json::value::RawValue>,
    ) -> Option<CatalogFuture<'a, Value>> {
        Some(Box::pin(async move {
            let routes = self.routes();
            let caller = routes.caller(cx.extension::<Principal>());
            let mut params: Map<String, Value> = match params {
                Some(raw) => serde_json::from_str(raw.get())
                    .map_err(|e| ErrorObject::invalid_params(format!("{method}: {e}")))?,
                None => Map::new(),
            };
            params.remove("_meta");
            let unknown_method = || ErrorObject::method_not_found(method);
            if !self.serves(&routes, &caller) {
                return Err(unknown_method());
            }
            if method.starts_with("tasks/") {
                let id = params
                    .get("taskId")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let unknown_task = || unknown_task(method, &id);
                if let Scope::Upstream(name) = &self.scope {
                    // One upstream: its task ids, as they are.
                    let upstream = routes.upstream(name).ok_or_else(unknown_method)?;
                    if !upstream.snapshot().extensions.contains_key(TASKS) {
                        return Err(unknown_method());
                    }
                    if !self.allows_task(&caller, upstream, &id) {
                        return Err(unknown_task());
                    }
                    return task_method(upstream, cx, method, params, routes.plugins.on(None)).await;
                }
                // `<upstream>/<its task id>`.
                let (name, original) = id.split_once(TASK_SEPARATOR).ok_or_else(unknown_task)?;
                let upstream = self
                    .upstreams(&routes)
                    .into_iter()
                    .find(|u| u.name() == name)
                    .ok_or_else(unknown_task)?;
                if !self.allows_task(&caller, &upstream, &id) {
                    return Err(unknown_task());
                }
                params.insert("taskId".into(), original.into());
                let mut result = task_method(&upstream, cx, method, params, routes.plugins.on(None)).await?;
                rewrite_task_ids(&mut result, &|id| format!("{name}{TASK_SEPARATOR}{id}"));
                return Ok(result);
            }
            if matches!(self.scope, Scope::Virtual(_)) {
                return Err(unknown_method());
            }
            // The skills extension: its upstreams that declare it (one, on an upstream's
            // endpoint). Skills are resources: the policy's `resources` patterns decide on
            // their URIs.
            let serving: Vec<_> = self
                .upstreams(&routes)
                .into_iter()
                .filter(|u| u.snapshot().extensions.contains_key(SKILLS))
                .collect();
            if serving.is_empty() {
                return Err(unknown_method());
            }
            if method == "skills/list" {
                // One upstream's list keeps its pages; several are merged, whole.
                let single = serving.len() == 1;
                let mut merged = Vec::new();
                for upstream in &serving {
                    let asked = if single { params.clone() } else { Map::new() };
                    let mut listed = relay::forward(upstream, cx, method, asked, routes.plugins.on(None)).await?;
                    if let Some(Value::Array(skills)) = listed.get_mut("skills") {
                        skills.retain(|skill| {
                            let uri = skill.get("uri").and_then(Value::as_str).unwrap_or_default();
                            caller.allows(method, Item::resource(upstream.name(), uri))
                        });
                        if single {
                            filtered_scope(&routes, &mut listed);
                            return Ok(listed);
                        }
                        merged.append(skills);
                    }
                }
                return Ok(json!({"skills": merged}));
            }
            // `skills/get` and `resources/directory/read` name a URI: asked of each upstream
            // that declares the extension and allows it, in turn.
            let uri = params
                .get("uri")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let serving: Vec<_> = serving
                .into_iter()
                .filter(|u| caller.allows(method, Item::resource(u.name(), &uri)))
                .collect();
            let Some(last) = serving.len().checked_sub(1) else {
                return Err(unknown_uri(method, &uri));
            };
            for (i, upstream) in serving.iter().enumerate() {
                match relay::forward(upstream, cx, method, params.clone(), routes.plugins.on(None)).await {
                    Err(e) if i < last && e.code == UNKNOWN_TARGET => continue,
                    Ok(mut result) => {
                        // A directory's entries: those allowed.
                        if let Some(Value::Array(entries)) = result.get_mut("resources") {
                            entries.retain(|entry| {
                                let uri = entry.get("uri").and_then(Value::as_str).unwrap_or_default();
                                caller.allows(method, Item::resource(upstream.name(), uri))
                            });
                            filtered_scope(&routes, &mut result);
                        }
                        return Ok(result);
                    }
                    outcome => return outcome,
                }
            }
            Err(unknown_method())
        }))
    }

    fn list_resources<'a>(&'a self, cx: &'a Context) -> CatalogFuture<'a, Vec<wire::Resource>> {
        Box::pin(async move {
            let routes = self.routes();
            let caller = routes.caller(cx.extension::<Principal>());
            let resources = self
                .upstreams(&routes)
                .iter()
                .filter(|_| !matches!(self.scope, Scope::Virtual(_)))
                .flat_map(|u| {
                    u.snapshot()
                        .resources
                        .iter()
                        .map(|r| {
                            let listed = Listed {
                                upstream: u.name().to_string(),
                                name: r.uri.clone(),
                                item: r.clone(),
                            };
                            (r.uri.clone(), listed)
                        })
                        .collect::<Vec<_>>()
                })
                .collect();
            Ok(visible(resources, "resource", |upstream, uri| {
                caller.allows("resources/list", Item::resource(upstream, uri))
            }))
        })
    }

    fn list_resource_templates<'a>(&'a self, cx: &'a Context) -> CatalogFuture<'a, Vec<wire::ResourceTemplate>> {
        Box::pin(async move {
            let routes = self.routes();
            let caller = routes.caller(cx.extension::<Principal>());
            let templates = self
                .upstreams(&routes)
                .iter()
                .filter(|_| !matches!(self.scope, Scope::Virtual(_)))
                .flat_map(|u| {
                    u.snapshot()
                        .templates
                        .iter()
                        .map(|t| {
                            let listed = Listed {
                                upstream: u.name().to_string(),
                                name: t.uri_template.clone(),
                                item: t.clone(),
                            };
                            (t.uri_template.clone(), listed)
                        })
                        .collect::<Vec<_>>()
                })
                .collect();
            Ok(visible(templates, "resource template", |upstream, template| {
                caller.allows("resources/templates/list", Item::resource(upstream, template))
            }))
        })
    }

    fn read_resource<'a>(&'a self, cx: &'a Context, uri: &'a str) -> CatalogFuture<'a, Option<Value>> {
        Box::pin(async move {
            let routes = self.routes();
            let caller = routes.caller(cx.extension::<Principal>());
            // Only upstreams whose `uri` the caller may read are asked: none is "not found".
            let owners: Vec<_> = self
                .resource_owners(&routes, uri)
                .into_iter()
                .filter(|u| caller.allows("resources/read", Item::resource(u.name(), uri)))
                .collect();
            let last = owners.len().saturating_sub(1);
            for (i, upstream) in owners.iter().enumerate() {
                let params = Map::from_iter([("uri".to_string(), Value::from(uri))]);
                let plugins = routes.plugins.on(None);
                let cache = routes.cache.as_deref().map(|cache| (cache, cache::Kind::Resource));
                match relay::forward_through(upstream, cx, "resources/read", params, plugins, cache).await {
                    Ok(result) => return Ok(Some(result)),
                    // Not this upstream's: ask the next one.
                    Err(e) if i < last && is_not_found(&e) => continue,
                    Err(e) if is_not_found(&e) => return Ok(None),
                    Err(e) => return Err(e),
                }
            }
            Ok(None)
        })
    }

    fn list_prompts<'a>(&'a self, cx: &'a Context) -> CatalogFuture<'a, Vec<wire::Prompt>> {
        Box::pin(async move {
            let routes = self.routes();
            let caller = routes.caller(cx.extension::<Principal>());
            let listed = |u: &Upstream, p: &wire::Prompt, exposed: String| {
                let mut prompt = p.clone();
                prompt.name = exposed.clone();
                let item = Listed {
                    upstream: u.name().to_string(),
                    name: p.name.clone(),
                    item: prompt,
                };
                (exposed, item)
            };
            let prompts = match &self.scope {
                Scope::Virtual(_) => Vec::new(),
                Scope::All => routes
                    .upstreams
                    .iter()
                    .flat_map(|u| {
                        let routes = &routes;
                        u.snapshot()
                            .prompts
                            .iter()
                            .map(|p| listed(u, p, routes.exposed(u, &p.name)))
                            .collect::<Vec<_>>()
                    })
                    .collect(),
                Scope::Upstream(name) => routes
                    .upstream(name)
                    .map(|u| {
                        u.snapshot()
                            .prompts
                            .iter()
                            .map(|p| listed(u, p, p.name.clone()))
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            Ok(visible(prompts, "prompt", |upstream, name| {
                caller.allows("prompts/list", Item::prompt(upstream, name))
            }))
        })
    }

    fn get_prompt<'a>(
        &'a self,
        cx: &'a Context,
        name: &'a str,
        arguments: BTreeMap<String, String>,
    ) -> CatalogFuture<'a, Value> {
        Box::pin(async move {
            let routes = self.routes();
            let caller = routes.caller(cx.extension::<Principal>());
            let (upstream, prompt) = self
                .prompt(&routes, name)
                .filter(|(u, p)| caller.allows("prompts/get", Item::prompt(u.name(), p)))
                .ok_or_else(|| unknown("prompt", name))?;
            let mut params = Map::new();
            params.insert("name".into(), prompt.into());
            if !arguments.is_empty() {
                params.insert("arguments".into(), json!(arguments));
            }
            relay::forward(&upstream, cx, "prompts/get", params, routes.plugins.on(Some(name))).await
        })
    }

    fn complete<'a>(&'a self, cx: &'a Context, params: wire::CompleteRequestParams) -> CatalogFuture<'a, Value> {
        Box::pin(async move {
            let routes = self.routes();
            let caller = routes.caller(cx.extension::<Principal>());
            let mut value = serde_json::to_value(&params).map_err(ErrorObject::internal)?;
            if let Some(object) = value.as_object_mut() {
                object.remove("_meta");
            }
            let reference = value.get("ref").cloned().unwrap_or(Value::Null);
            let upstream = match reference.get("type").and_then(Value::as_str) {
                Some("ref/prompt") => {
                    let name = reference.get("name").and_then(Value::as_str).unwrap_or_default();
                    let (upstream, prompt) = self
                        .prompt(&routes, name)
                        .filter(|(u, p)| caller.allows("completion/complete", Item::prompt(u.name(), p)))
                        .ok_or_else(|| unknown("prompt", name))?;
                    value["ref"]["name"] = prompt.into();
                    upstream
                }
                _ => {
                    let uri = reference.get("uri").and_then(Value::as_str).unwrap_or_default();
                    self.upstreams(&routes)
                        .into_iter()
                        .filter(|_| !matches!(self.scope, Scope::Virtual(_)))
                        .find(|u| {
                            let snapshot = u.snapshot();
                            snapshot.templates.iter().any(|t| t.uri_template == uri)
                                || snapshot.resources.iter().any(|r| r.uri == uri)
                        })
                        .filter(|u| caller.allows("completion/complete", Item::resource(u.name(), uri)))
                        .ok_or_else(|| unknown("resource", uri))?
                }
            };
            let Value::Object(params) = value else {
                return Err(ErrorObject::invalid_params(
                    "completion/complete: params must be an object",
                ));
            };
            relay::forward(&upstream, cx, "completion/complete", params, routes.plugins.on(None)).await
        })
    }

    fn watch<'a>(&'a self, uri: &'a str) -> CatalogFuture<'a, ()> {
        Box::pin(async move {
            let routes = self.routes();
            for upstream in self.resource_owners(&routes, uri) {
                if let Err(e) = upstream.watch(uri).await {
                    tracing::warn!(upstream = upstream.name(), uri, error = %e, "subscribing upstream failed");
                }
            }
            Ok(())
        })
    }
}

impl View {
    /// The list `assemble` makes for `cx`, or the one the cache kept (with a `cache`).
    async fn listing<T: cache::Listed>(
        &self,
        cx: &Context,
        assemble: CatalogFuture<'_, Vec<T>>,
    ) -> Result<Listing<T>, ErrorObject> {
        let routes = self.routes();
        match &routes.cache {
            Some(cache) => {
                let roles = routes.caller(cx.extension::<Principal>()).role_set();
                cache.list(ListKey::new(&self.scope, roles), assemble).await
            }
            None => {
                let listing = Listing::from(assemble.await?);
                // A list the policy filtered is the caller's.
                Ok(match routes.policy {
                    Some(_) => listing.with_cache_scope(wire::CacheableResultCacheScope::Private),
                    None => listing,
                })
            }
        }
    }

    /// The upstream and upstream-side name of the tool served as `name`, when `caller` may
    /// use it (the decision logged for `method`).
    fn allowed_tool(
        &self,
        routes: &Routes,
        caller: &Caller<'_>,
        method: &str,
        name: &str,
    ) -> Option<(Arc<Upstream>, String)> {
        if !self.serves(routes, caller) {
            return None;
        }
        self.tool(routes, name)
            .filter(|(upstream, tool)| caller.allows(method, Item::tool(upstream.name(), tool)))
    }

    /// Whether `caller` may use the task `id` (as the client names it) of `upstream`: when this
    /// endpoint handed it out, whether it may use the tool that started it; otherwise (handed
    /// out by another replica, or before a restart) whether it may use any tool of the upstream.
    fn allows_task(&self, caller: &Caller<'_>, upstream: &Upstream, id: &str) -> bool {
        let owner = self
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .owners
            .get(id)
            .cloned();
        match owner {
            Some((owner, tool)) => caller.allows("tasks", Item::tool(&owner, &tool)),
            None => {
                let snapshot = upstream.snapshot();
                let allowed = caller.allows_any(snapshot.tools.iter().map(|t| Item::tool(upstream.name(), &t.name)));
                let (upstream, task) = (upstream.name(), id);
                if allowed {
                    tracing::debug!(target: "portico::policy", upstream, task, decision = "allow",
                        rule = "a tool of the upstream allowed", "policy decision");
                } else {
                    tracing::info!(target: "portico::policy", upstream, task, decision = "deny",
                        rule = "no tool of the upstream allowed", "policy decision");
                }
                allowed
            }
        }
    }
}

/// A result whose entries the policy filtered is the caller's: its `cacheScope`, if it says
/// one, becomes `private` when a policy is in force.
fn filtered_scope(routes: &Routes, result: &mut Value) {
    if routes.policy.is_some()
        && let Some(scope) = result.get_mut("cacheScope")
    {
        *scope = "private".into();
    }
}

/// The `taskId` of a task handle (`resultType: "task"`), if the result is one.
fn task_id(result: &Value) -> Option<&str> {
    let task = result.get("task").unwrap_or(result);
    task.get("taskId").and_then(Value::as_str)
}

/// A task method (`params` with the upstream's task id) relayed to `upstream`: as it is to an
/// upstream of the extension, bridged to a session upstream's 2025-11-25 tasks
/// ([`crate::tasks`]).
async fn task_method(
    upstream: &Upstream,
    cx: &Context,
    method: &str,
    mut params: Map<String, Value>,
    plugins: crate::plugin::Plugged<'_>,
) -> Result<Value, ErrorObject> {
    if !upstream.snapshot().session_tasks {
        return relay::forward(upstream, cx, method, params, plugins).await;
    }
    let id = params
        .get("taskId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    match method {
        "tasks/get" => crate::tasks::get(upstream, cx, &id, plugins).await,
        "tasks/cancel" => crate::tasks::cancel(upstream, cx, &id, plugins).await,
        "tasks/update" => {
            let responses = match params.remove("inputResponses") {
                Some(Value::Object(responses)) => responses,
                Some(Value::Null) | None => Map::new(),
                Some(_) => {
                    return Err(ErrorObject::invalid_params(
                        "tasks/update: inputResponses must be an object",
                    ));
                }
            };
            crate::tasks::update(upstream, cx, &id, responses, plugins).await
        }
        _ => Err(ErrorObject::method_not_found(method)),
    }
}

/// The answer to a task method naming a task that does not exist (or may not be used).
fn unknown_task(method: &str, id: &str) -> ErrorObject {
    ErrorObject::invalid_params(format!("{method}: unknown task {id:?} (never created, or expired)"))
        .with_data(json!({"taskId": id}))
}

/// The answer to a skills method naming a URI no upstream serves (or may serve) here: what a
/// server of the extension answers for one it does not have.
fn unknown_uri(method: &str, uri: &str) -> ErrorObject {
    let message = match method {
        "skills/get" => format!("skills/get: no skill at {uri:?}"),
        _ => format!("{method}: {uri:?} is not a directory"),
    };
    ErrorObject::invalid_params(message).with_data(json!({"uri": uri}))
}

/// The tasks extension's name.
const TASKS: &str = "io.modelcontextprotocol/tasks";
/// The skills extension's name.
const SKILLS: &str = "io.modelcontextprotocol/skills";
/// Between the upstream's name and its own task id, in the task ids clients see on the
/// aggregated endpoint and virtual servers.
const TASK_SEPARATOR: char = '/';

/// Rewrites every `taskId` string in a result.
fn rewrite_task_ids(value: &mut Value, rename: &dyn Fn(&str) -> String) {
    match value {
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                match item {
                    Value::String(id) if key == "taskId" => *id = rename(id),
                    other => rewrite_task_ids(other, rename),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| rewrite_task_ids(item, rename)),
        _ => {}
    }
}

impl View {
    /// Whether task ids get the upstream's name (on the aggregated endpoint and virtual
    /// servers, where several upstreams may run tasks).
    fn prefixes_tasks(&self) -> bool {
        !matches!(self.scope, Scope::Upstream(_))
    }
}

/// Whether an upstream's error says it has no such resource (`-32002` before 2026-07-28,
/// `-32602` with the URI in 2026-07-28).
fn is_not_found(error: &ErrorObject) -> bool {
    error.code == portico_core::server::RESOURCE_NOT_FOUND
        || (error.code == UNKNOWN_TARGET && error.message.contains("not found"))
}
