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

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use portico_core::ErrorObject;
use portico_core::server::Context;
use portico_core::server::catalog::{Catalog, CatalogFeatures, CatalogFuture};
use portico_protocol::v2026_07_28 as wire;
use serde_json::{Map, Value, json};

use crate::config::{Config, VirtualServerConfig};
use crate::relay::{self, UNKNOWN_TARGET};
use crate::upstream::Upstream;

/// The upstreams in configuration order, and the configuration they came from; replaced whole
/// on reload.
pub struct Routes {
    /// The configuration.
    pub config: Config,
    /// The upstreams, in configuration order.
    pub upstreams: Vec<Arc<Upstream>>,
}

impl Routes {
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
#[derive(Clone, Debug, PartialEq, Eq)]
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
}

impl View {
    /// The catalog of the endpoint `scope`.
    pub fn new(routes: SharedRoutes, scope: Scope) -> Self {
        Self { routes, scope }
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

    fn tool_definition(&self, name: &str, _extensions: &portico_core::Extensions) -> Option<wire::Tool> {
        let routes = self.routes();
        let (upstream, tool) = self.tool(&routes, name)?;
        // Only a tool with `x-mcp-header` annotations has headers to check: the common call
        // copies no definition.
        let snapshot = upstream.snapshot();
        if !snapshot.header_tools.contains(&tool) {
            return None;
        }
        snapshot.tools.iter().find(|t| t.name == tool).cloned()
    }

    fn list_tools<'a>(&'a self, _cx: &'a Context) -> CatalogFuture<'a, Vec<wire::Tool>> {
        Box::pin(async move {
            let routes = self.routes();
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
                            .map(|t| {
                                let name = routes.exposed(u, &t.name);
                                let mut tool = t.clone();
                                tool.name = name.clone();
                                (name, tool)
                            })
                            .collect::<Vec<_>>()
                    })
                    .collect(),
                Scope::Upstream(name) => routes
                    .upstream(name)
                    .map(|u| u.snapshot().tools.iter().map(|t| (t.name.clone(), t.clone())).collect())
                    .unwrap_or_default(),
                Scope::Virtual(server) => virtual_server(&routes, server)
                    .map(|v| {
                        v.tools
                            .iter()
                            .filter_map(|chosen| {
                                let upstream = routes.upstream(&chosen.upstream)?;
                                let mut tool = upstream
                                    .snapshot()
                                    .tools
                                    .iter()
                                    .find(|t| t.name == chosen.tool)?
                                    .clone();
                                if let Some(rename) = &chosen.rename {
                                    tool.name = rename.clone();
                                }
                                if let Some(description) = &chosen.description {
                                    tool.description = Some(description.clone());
                                }
                                Some((tool.name.clone(), tool))
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            Ok(dedup(tools, "tool"))
        })
    }

    fn call_tool<'a>(
        &'a self,
        cx: &'a Context,
        name: &'a str,
        arguments: Option<Map<String, Value>>,
    ) -> CatalogFuture<'a, Value> {
        Box::pin(async move {
            let routes = self.routes();
            let (upstream, tool) = self.tool(&routes, name).ok_or_else(|| unknown("tool", name))?;
            let mut params = Map::new();
            params.insert("name".into(), tool.into());
            if let Some(arguments) = arguments {
                params.insert("arguments".into(), Value::Object(arguments));
            }
            let mut result = relay::forward(&upstream, cx, "tools/call", params).await?;
            // A task handle (the tasks extension) names the upstream that runs the task.
            if self.prefixes_tasks() {
                rewrite_task_ids(&mut result, &|id| format!("{}{TASK_SEPARATOR}{id}", upstream.name()));
            }
            Ok(result)
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
            let mut params: Map<String, Value> = match params {
                Some(raw) => serde_json::from_str(raw.get())
                    .map_err(|e| ErrorObject::invalid_params(format!("{method}: {e}")))?,
                None => Map::new(),
            };
            params.remove("_meta");
            let unknown_method = || ErrorObject::method_not_found(method);
            if let Scope::Upstream(name) = &self.scope {
                // One upstream: its extensions, as they are.
                let upstream = routes.upstream(name).ok_or_else(unknown_method)?;
                if !upstream.snapshot().extensions.contains_key(extension_of(method)) {
                    return Err(unknown_method());
                }
                return relay::forward(upstream, cx, method, params).await;
            }
            if method.starts_with("tasks/") {
                // `<upstream>/<its task id>`.
                let id = params
                    .get("taskId")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let (name, original) = id
                    .split_once(TASK_SEPARATOR)
                    .ok_or_else(|| ErrorObject::invalid_params(format!("{method}: unknown task {id:?}")))?;
                let upstream = self
                    .upstreams(&routes)
                    .into_iter()
                    .find(|u| u.name() == name)
                    .ok_or_else(|| ErrorObject::invalid_params(format!("{method}: unknown task {id:?}")))?;
                params.insert("taskId".into(), original.into());
                let mut result = relay::forward(&upstream, cx, method, params).await?;
                rewrite_task_ids(&mut result, &|id| format!("{name}{TASK_SEPARATOR}{id}"));
                return Ok(result);
            }
            if matches!(self.scope, Scope::Virtual(_)) {
                return Err(unknown_method());
            }
            // The skills extension on the aggregated endpoint: its upstreams that declare it.
            let serving: Vec<_> = self
                .upstreams(&routes)
                .into_iter()
                .filter(|u| u.snapshot().extensions.contains_key(SKILLS))
                .collect();
            if serving.is_empty() {
                return Err(unknown_method());
            }
            if method == "skills/list" && serving.len() > 1 {
                let mut skills = Vec::new();
                for upstream in &serving {
                    let listed = relay::forward(upstream, cx, method, Map::new()).await?;
                    skills.extend(
                        listed
                            .get("skills")
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default(),
                    );
                }
                return Ok(json!({"skills": skills}));
            }
            // One of them has it: asked in turn.
            let last = serving.len() - 1;
            for (i, upstream) in serving.iter().enumerate() {
                match relay::forward(upstream, cx, method, params.clone()).await {
                    Err(e) if i < last && e.code == UNKNOWN_TARGET => continue,
                    outcome => return outcome,
                }
            }
            Err(unknown_method())
        }))
    }

    fn list_resources<'a>(&'a self, _cx: &'a Context) -> CatalogFuture<'a, Vec<wire::Resource>> {
        Box::pin(async move {
            let routes = self.routes();
            let resources = self
                .upstreams(&routes)
                .iter()
                .filter(|_| !matches!(self.scope, Scope::Virtual(_)))
                .flat_map(|u| {
                    u.snapshot()
                        .resources
                        .iter()
                        .map(|r| (r.uri.clone(), r.clone()))
                        .collect::<Vec<_>>()
                })
                .collect();
            Ok(dedup(resources, "resource"))
        })
    }

    fn list_resource_templates<'a>(&'a self, _cx: &'a Context) -> CatalogFuture<'a, Vec<wire::ResourceTemplate>> {
        Box::pin(async move {
            let routes = self.routes();
            let templates = self
                .upstreams(&routes)
                .iter()
                .filter(|_| !matches!(self.scope, Scope::Virtual(_)))
                .flat_map(|u| {
                    u.snapshot()
                        .templates
                        .iter()
                        .map(|t| (t.uri_template.clone(), t.clone()))
                        .collect::<Vec<_>>()
                })
                .collect();
            Ok(dedup(templates, "resource template"))
        })
    }

    fn read_resource<'a>(&'a self, cx: &'a Context, uri: &'a str) -> CatalogFuture<'a, Option<Value>> {
        Box::pin(async move {
            let routes = self.routes();
            let owners = self.resource_owners(&routes, uri);
            let last = owners.len().saturating_sub(1);
            for (i, upstream) in owners.iter().enumerate() {
                let params = Map::from_iter([("uri".to_string(), Value::from(uri))]);
                match relay::forward(upstream, cx, "resources/read", params).await {
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

    fn list_prompts<'a>(&'a self, _cx: &'a Context) -> CatalogFuture<'a, Vec<wire::Prompt>> {
        Box::pin(async move {
            let routes = self.routes();
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
                            .map(|p| {
                                let name = routes.exposed(u, &p.name);
                                let mut prompt = p.clone();
                                prompt.name = name.clone();
                                (name, prompt)
                            })
                            .collect::<Vec<_>>()
                    })
                    .collect(),
                Scope::Upstream(name) => routes
                    .upstream(name)
                    .map(|u| {
                        u.snapshot()
                            .prompts
                            .iter()
                            .map(|p| (p.name.clone(), p.clone()))
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            Ok(dedup(prompts, "prompt"))
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
            let (upstream, prompt) = self.prompt(&routes, name).ok_or_else(|| unknown("prompt", name))?;
            let mut params = Map::new();
            params.insert("name".into(), prompt.into());
            if !arguments.is_empty() {
                params.insert("arguments".into(), json!(arguments));
            }
            relay::forward(&upstream, cx, "prompts/get", params).await
        })
    }

    fn complete<'a>(&'a self, cx: &'a Context, params: wire::CompleteRequestParams) -> CatalogFuture<'a, Value> {
        Box::pin(async move {
            let routes = self.routes();
            let mut value = serde_json::to_value(&params).map_err(ErrorObject::internal)?;
            if let Some(object) = value.as_object_mut() {
                object.remove("_meta");
            }
            let reference = value.get("ref").cloned().unwrap_or(Value::Null);
            let upstream = match reference.get("type").and_then(Value::as_str) {
                Some("ref/prompt") => {
                    let name = reference.get("name").and_then(Value::as_str).unwrap_or_default();
                    let (upstream, prompt) = self.prompt(&routes, name).ok_or_else(|| unknown("prompt", name))?;
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
                        .ok_or_else(|| unknown("resource", uri))?
                }
            };
            let Value::Object(params) = value else {
                return Err(ErrorObject::invalid_params(
                    "completion/complete: params must be an object",
                ));
            };
            relay::forward(&upstream, cx, "completion/complete", params).await
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

/// The tasks extension's name.
const TASKS: &str = "io.modelcontextprotocol/tasks";
/// The skills extension's name.
const SKILLS: &str = "io.modelcontextprotocol/skills";
/// Between the upstream's name and its own task id, in the task ids clients see on the
/// aggregated endpoint and virtual servers.
const TASK_SEPARATOR: char = '/';

/// The extension a method belongs to.
fn extension_of(method: &str) -> &'static str {
    if method.starts_with("tasks/") { TASKS } else { SKILLS }
}

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
