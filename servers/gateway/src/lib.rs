//! Portico's gateway: one front door for many upstream MCP servers.
//!
//! Clients of any revision reach it over Streamable HTTP (both generations), WebSocket or the
//! legacy HTTP+SSE transport, all on one listener; it relays their requests to upstream
//! servers reached over stdio, Streamable HTTP, legacy HTTP+SSE, WebSocket or in process, each
//! spoken to in the generation it speaks, each with replicas behind a balancing policy, health
//! checks and circuit breakers. Endpoints ([`http`]):
//!
//! | path | serves |
//! |---|---|
//! | `/mcp` (and `ws://…/mcp`, `/sse` + `/messages`) | every upstream's tools and prompts, namespaced `<prefix><separator><name>`, and their resources |
//! | `/mcp/<upstream>` (`…/sse`, `…/messages`) | one upstream's items, as they are |
//! | `/mcp/<virtual server>` | a curated set of tools, renamed and redescribed |
//! | `/healthz`, `/readyz` | liveness; readiness with every upstream's and replica's state and name collisions (JSON) |
//! | `/metrics` | Prometheus metrics ([`metrics`]) |
//! | `/.well-known/oauth-protected-resource` | the resource's metadata, with `auth` ([`auth`]) |
//! | `/admin/…`, `/openapi.json`, `/admin/docs` | the admin API ([`admin`]), its OpenAPI 3.1 document and reference page |
//!
//! Served on a listener with [`portico_transport::http::serve_service`] of [`Gateway::service`]
//! (`portico gateway` does): the MCP endpoints' POSTs go to their endpoint unrouted (through the
//! same authentication), everything else through [`Gateway::router`].
//!
//! The request path: transport → bearer token ([`auth`], when configured) → rate limits
//! ([`ratelimit`], when `rate_limits` has rules: token buckets in memory or Redis, `429` with
//! `Retry-After` and `RateLimit` headers) → [`portico_core::server`] (sessions, revisions,
//! input rounds) → [`catalog::View`] (which upstream serves the name; what the caller may see
//! and use, [`policy`]) → [`relay`] (the configured [`plugin`]s' `before` hooks, which may
//! refuse or change the request; then, when `cache` is configured, the [`cache`]: lists kept
//! per role set, `resources/read` and opted-in tool results kept as their `ttlMs` and
//! `cacheScope` say, concurrent identical misses coalesced; replica picked within its
//! `max_in_flight`; progress, log messages, questions and cancellation carried both ways; the
//! plugins' `after` hooks on the result; the call recorded by [`audit`]) → the replica's
//! [`portico_core::client::Client`], kept connected by [`upstream::Replica`]. The transport
//! carries the token's [`auth::Principal`] (and, for a JWT, its [`auth::SubjectToken`]) to the
//! catalog as request extensions.
//!
//! A caller's token never goes upstream: each upstream gets the gateway's own credentials
//! ([`credentials`]) — static `headers`, an OAuth client credentials token on its connection,
//! or, on a stateless Streamable HTTP upstream with token exchange, a token exchanged for the
//! caller's and attached to that caller's calls alone.
//!
//! Plugins are shipped (redaction of results, an arguments guard, a tool deny-list, a webhook
//! for plugins in other languages) or compiled in: implement [`plugin::Plugin`], register its
//! kind in a [`plugin::PluginRegistry`] and start the gateway with [`Gateway::start_with`]
//! (see [`plugin`]).
//!
//! What replicas share — sessions, admin changes, the audit trail, rate limit buckets, cached
//! results with the `redis` backend — is in the state store ([`store`]) and Redis ([`redis`],
//! [`signal`]).
//!
//! The configuration is replaced whole and atomically ([`Gateway::apply`]): from the file when
//! it changes ([`reload`]) or from the admin API. A bad configuration is refused and the one in
//! force keeps serving; upstreams whose configuration did not change keep their connections;
//! replaced and removed ones finish their calls in flight before they stop.
//!
//! The crate has no features.

pub mod admin;
pub mod apikeys;
pub mod audit;
pub mod auth;
pub mod breaker;
pub mod cache;
pub mod catalog;
pub mod config;
pub mod credentials;
pub mod http;
pub mod metrics;
pub mod plugin;
pub mod policy;
pub mod ratelimit;
pub mod redis;
pub mod relay;
pub mod reload;
pub mod signal;
pub mod store;
pub mod tasks;
pub mod upstream;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use portico_core::server::Change;
use tokio_util::sync::CancellationToken;

use crate::catalog::{Routes, SharedRoutes};
use crate::config::{Config, ConfigError};
use crate::http::Endpoint;
use crate::upstream::{Announce, Upstream};

/// The gateway's name in `serverInfo`.
pub const NAME: &str = "portico-gateway";

/// A running gateway: its upstreams (connecting, connected, reconnecting) and its endpoints.
/// Cheap to clone: clones share everything.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    routes: SharedRoutes,
    /// The endpoints by name (`""` for the aggregated one).
    endpoints: RwLock<BTreeMap<String, Endpoint>>,
    announce: Announce,
    shutdown: CancellationToken,
    /// One configuration change at a time.
    applying: tokio::sync::Mutex<()>,
    /// How long a new upstream's first connection is waited for before it serves.
    connect_wait: Duration,
    /// The outcome of the last configuration change ([`Gateway::last_change`]).
    last_change: Mutex<Option<ConfigChange>>,
    /// The file's configuration and the admin API's changes ([`reload`]).
    sources: reload::SharedSources,
    metrics: Arc<metrics::Metrics>,
    /// Where spans go (`telemetry.otlp_endpoint`), if anywhere.
    exporter: Option<portico_transport::otel::Exporter>,
    /// The state store shared with the other replicas.
    store: store::Store,
    /// Where changes are announced to the other replicas, if anywhere.
    redis: Option<redis::Address>,
    /// The version of the admin changes applied here.
    applied_version: std::sync::atomic::AtomicI64,
    /// Set by [`Gateway::drain`]: `/readyz` answers `503`.
    draining: std::sync::atomic::AtomicBool,
    /// Checks bearer tokens, when `auth` is configured.
    auth: Option<Arc<auth::Authenticator>>,
    /// Records calls, refusals and admin changes, when `audit` is configured.
    audit: Option<audit::Auditor>,
    /// The rate limits in force and their buckets.
    limiter: ratelimit::Limiter,
    /// The plugin kinds `plugins` entries may name.
    registry: plugin::PluginRegistry,
}

/// What the last configuration change did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConfigChange {
    /// Where it came from: `file`, `admin`.
    pub source: String,
    /// `applied` or `rejected`.
    pub outcome: String,
    /// Why it was rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Seconds since the Unix epoch.
    pub at: u64,
}

impl Gateway {
    /// Opens the state store (`state.url`), applies the admin changes kept there on top of
    /// `config` (checked already, as [`Config::parse`] and [`Config::load`] do), starts the
    /// upstreams and waits, at most `connect_wait`, for each one's first connection attempt; an
    /// upstream not reachable yet keeps being retried in the background, its calls answered
    /// with [`relay::UPSTREAM_UNAVAILABLE`] meanwhile. Fails when the store cannot be opened.
    pub async fn start(config: Config, connect_wait: Duration) -> Result<Self, String> {
        Self::start_with(config, connect_wait, plugin::PluginRegistry::new()).await
    }

    /// [`Gateway::start`], with the plugin kinds of `registry` (the shipped ones and those the
    /// program adds, [`plugin::PluginRegistry::with`]) for `plugins` to name, at start and on
    /// every reload. Fails, naming the key, when a plugin does not compile.
    pub async fn start_with(
        config: Config,
        connect_wait: Duration,
        registry: plugin::PluginRegistry,
    ) -> Result<Self, String> {
        // Compiled before anything starts: a kind the registry does not know stops the start.
        let plugins = plugin::Chain::compile(&config.plugins, &registry).map_err(|e| e.to_string())?;
        let store = store::Store::open(&config.state.url).await?;
        let authenticator = match config.auth.clone() {
            Some(auth) => Some(Arc::new(
                auth::Authenticator::new(auth).await.with_api_keys(store.clone()),
            )),
            None => None,
        };
        let redis = config.state.redis.as_deref().map(redis::Address::parse).transpose()?;
        let (version, overlay) = store.overlay().await?;
        let base = config.clone();
        let merged = overlay.apply_to(&config);
        let (config, overlay, plugins) = match merged
            .check()
            .and_then(|()| plugin::Chain::compile(&merged.plugins, &registry))
        {
            Ok(merged_plugins) => (merged, overlay, merged_plugins),
            Err(e) => {
                tracing::error!(error = %e, "the admin changes in the state store do not fit this configuration; serving the file's alone");
                (config, reload::Overlay::default(), plugins)
            }
        };
        let exporter = config
            .telemetry
            .otlp_endpoint
            .as_deref()
            .map(|endpoint| portico_transport::otel::Exporter::start(endpoint, &config.telemetry.service_name));
        let shutdown = CancellationToken::new();
        let auditor = config
            .audit
            .clone()
            .map(|audit| audit::Auditor::start(store.clone(), audit, shutdown.clone()));
        let metrics: Arc<metrics::Metrics> = Arc::default();
        let limiter = ratelimit::Limiter::new(redis.clone(), metrics.clone());
        let routes: SharedRoutes = Arc::new(RwLock::new(Arc::new(Routes::new(config.clone(), Vec::new()))));
        let gateway = Arc::new_cyclic(|weak: &std::sync::Weak<Inner>| {
            let weak = weak.clone();
            let announce: Announce = Arc::new(move |upstream: &str, change: Change| {
                if let Some(inner) = weak.upgrade() {
                    Gateway { inner }.announce(Some(upstream), &change);
                }
            });
            Inner {
                routes,
                endpoints: RwLock::new(BTreeMap::new()),
                announce,
                shutdown,
                applying: tokio::sync::Mutex::new(()),
                connect_wait,
                last_change: Mutex::new(None),
                sources: Mutex::default(),
                metrics,
                exporter,
                store,
                redis,
                applied_version: std::sync::atomic::AtomicI64::new(version),
                draining: std::sync::atomic::AtomicBool::new(false),
                auth: authenticator,
                audit: auditor,
                limiter,
                registry,
            }
        });
        let gateway = Gateway { inner: gateway };
        gateway.set_sources(base, overlay);
        let upstreams = gateway.start_upstreams(&config.upstreams).await;
        gateway.set_routes(
            Routes::new(config, upstreams)
                .audited(gateway.inner.audit.clone())
                .plugged(plugins),
            &[],
        );
        gateway.sync_endpoints(None);
        gateway.follow_store();
        Ok(gateway)
    }

    /// The API keys, when `auth` is configured with `api_keys`.
    pub fn api_keys(&self) -> Option<&apikeys::ApiKeys> {
        self.inner.auth.as_ref().and_then(|a| a.api_keys())
    }

    /// The audit trail, when `audit` is configured.
    pub fn auditor(&self) -> Option<&audit::Auditor> {
        self.inner.audit.as_ref()
    }

    /// The routes in force.
    pub fn routes(&self) -> Arc<Routes> {
        self.inner.routes.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Puts `routes` in force, with a new cache (`dropped`: the upstreams whose shared cache
    /// entries go, on a configuration change).
    fn set_routes(&self, mut routes: Routes, dropped: &[&str]) {
        self.inner.limiter.configure(&routes.config);
        routes.cache = cache::Cache::new(
            &routes.config,
            self.inner.redis.clone(),
            self.inner.metrics.clone(),
            dropped,
        );
        *self.inner.routes.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(routes);
    }

    /// The configuration in force.
    pub fn config(&self) -> Config {
        self.routes().config.clone()
    }

    /// The outcome of the last configuration change, if there was one.
    pub fn last_change(&self) -> Option<ConfigChange> {
        self.inner
            .last_change
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn record_change(&self, source: &str, outcome: &Result<(), ConfigError>) {
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let change = ConfigChange {
            source: source.to_string(),
            outcome: if outcome.is_ok() { "applied" } else { "rejected" }.to_string(),
            error: outcome.as_ref().err().map(ToString::to_string),
            at,
        };
        *self.inner.last_change.lock().unwrap_or_else(PoisonError::into_inner) = Some(change);
        self.inner.metrics.record_change(source, outcome.is_ok());
    }

    /// Cancelled by [`Gateway::shutdown`]; give [`portico_transport::http::serve_service`]
    /// (serving [`Gateway::service`]) the same.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    /// The first half of a graceful shutdown: `/readyz` answers `503` (so a load balancer stops
    /// sending), and this waits until no call is in flight to any upstream, or `timeout`
    /// passed; returns how many calls were still in flight. Requests still arriving meanwhile
    /// are served. Call [`Gateway::shutdown`] after it.
    pub async fn drain(&self, timeout: Duration) -> usize {
        self.inner.draining.store(true, std::sync::atomic::Ordering::Release);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let in_flight = self.in_flight();
            if in_flight == 0 || tokio::time::Instant::now() >= deadline {
                return in_flight;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether [`Gateway::drain`] began.
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Calls in flight to upstreams now.
    pub fn in_flight(&self) -> usize {
        self.routes()
            .upstreams
            .iter()
            .flat_map(|u| u.replicas().iter())
            .map(|r| r.in_flight())
            .sum()
    }

    /// Stops the endpoints' streams and the upstreams.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
        for endpoint in self
            .inner
            .endpoints
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
        {
            endpoint.close();
        }
        for upstream in &self.routes().upstreams {
            upstream.stop();
        }
    }

    /// Starts upstreams and waits for their first connection attempts.
    async fn start_upstreams(&self, configs: &[config::UpstreamConfig]) -> Vec<Arc<Upstream>> {
        let mut upstreams = Vec::new();
        let mut first = Vec::new();
        for config in configs {
            let upstream = Upstream::new(
                config.clone(),
                upstream::Hooks {
                    announce: self.inner.announce.clone(),
                    metrics: self.inner.metrics.clone(),
                    exporter: self.inner.exporter.clone(),
                    audit: self.inner.audit.clone(),
                },
            );
            let (tx, rx) = tokio::sync::oneshot::channel();
            tokio::spawn(upstream.clone().run(tx));
            first.push(rx);
            upstreams.push(upstream);
        }
        let _ = tokio::time::timeout(self.inner.connect_wait, futures_util::future::join_all(first)).await;
        upstreams
    }

    /// Replaces the configuration with `config`, atomically: checked first (an error names the
    /// key, and nothing changes); upstreams whose configuration is unchanged keep running, new
    /// ones are connected before they serve (at most the start's `connect_wait`), replaced and
    /// removed ones finish the calls they have in flight (at most their `timeout`) and stop;
    /// endpoints appear and disappear with their upstreams and virtual servers; every client
    /// listening is told the lists changed.
    pub async fn apply(&self, mut config: Config) -> Result<(), ConfigError> {
        let plugins = self.check(&config)?;
        let _one_at_a_time = self.inner.applying.lock().await;
        let old = self.routes();
        // The listener stays where it is until a restart.
        if config.listen != old.config.listen {
            tracing::warn!(listen = %config.listen, serving = %old.config.listen, "`listen` changes take effect at restart");
            config.listen = old.config.listen;
        }
        let mut kept = Vec::new();
        let mut fresh = Vec::new();
        for upstream in &config.upstreams {
            match old.upstreams.iter().find(|u| u.config() == upstream) {
                Some(same) => kept.push(same.clone()),
                None => fresh.push(upstream.clone()),
            }
        }
        let started = self.start_upstreams(&fresh).await;
        let mut started = started.into_iter();
        let upstreams: Vec<Arc<Upstream>> = config
            .upstreams
            .iter()
            .map(|c| {
                kept.iter()
                    .find(|u| u.config() == c)
                    .cloned()
                    .or_else(|| started.next())
                    .unwrap_or_else(|| unreachable!("every upstream is kept or started"))
            })
            .collect();
        let retired: Vec<Arc<Upstream>> = old
            .upstreams
            .iter()
            .filter(|u| !upstreams.iter().any(|n| Arc::ptr_eq(n, u)))
            .cloned()
            .collect();
        // Every upstream's shared cache entries go (a policy, or anything else, may have changed).
        let mut dropped: Vec<&str> = old.config.upstreams.iter().map(|u| u.name.as_str()).collect();
        let names: Vec<String> = config.upstreams.iter().map(|u| u.name.clone()).collect();
        dropped.extend(names.iter().map(String::as_str));
        dropped.sort_unstable();
        dropped.dedup();
        self.set_routes(
            Routes::new(config, upstreams)
                .audited(self.inner.audit.clone())
                .plugged(plugins),
            &dropped,
        );
        // Dropped in Redis before the change is done: no replica serves what it dropped.
        if let Some(cache) = self.routes().cache.clone() {
            cache.flush().await;
        }
        self.sync_endpoints(Some(&old.config));
        for upstream in retired {
            tokio::spawn(retire(upstream));
        }
        for change in [
            Change::ToolsListChanged,
            Change::PromptsListChanged,
            Change::ResourcesListChanged,
        ] {
            self.announce(None, &change);
        }
        tracing::info!("configuration applied");
        Ok(())
    }

    /// Checks `config` whole ([`Config::check`]) and compiles its plugins with this gateway's
    /// registry (which knows the kinds the program added).
    pub fn check(&self, config: &Config) -> Result<plugin::Chain, ConfigError> {
        config.check()?;
        plugin::Chain::compile(&config.plugins, &self.inner.registry)
    }

    /// Makes the endpoints match the routes: one per upstream and virtual server, plus the
    /// aggregated one. A virtual server whose definition changed gets a new endpoint (its
    /// instructions are the server's); removed ones are closed.
    fn sync_endpoints(&self, old: Option<&Config>) {
        let routes = self.routes();
        let config = &routes.config;
        let mut wanted: BTreeMap<String, catalog::Scope> = BTreeMap::new();
        wanted.insert(String::new(), catalog::Scope::All);
        for upstream in &config.upstreams {
            wanted.insert(upstream.name.clone(), catalog::Scope::Upstream(upstream.name.clone()));
        }
        for server in &config.virtual_servers {
            wanted.insert(server.name.clone(), catalog::Scope::Virtual(server.name.clone()));
        }
        let changed_virtual = |name: &str| {
            let before = old.and_then(|o| o.virtual_servers.iter().find(|v| v.name == name));
            let after = config.virtual_servers.iter().find(|v| v.name == name);
            before.is_some() && before != after
        };
        let limits_changed = old.is_some_and(|o| o.limits != config.limits);
        let mut endpoints = self.inner.endpoints.write().unwrap_or_else(PoisonError::into_inner);
        endpoints.retain(|name, endpoint| {
            let keep = wanted.get(name).is_some_and(|scope| endpoint.scope() == scope)
                && !changed_virtual(name)
                && !limits_changed;
            if !keep {
                endpoint.close();
            }
            keep
        });
        for (name, scope) in wanted {
            if let std::collections::btree_map::Entry::Vacant(vacant) = endpoints.entry(name) {
                let endpoint = Endpoint::new(self, vacant.key(), scope);
                vacant.insert(endpoint);
            }
        }
    }

    /// Tells the endpoints' listening clients about `change` — those `upstream` concerns, or
    /// all of them.
    fn announce(&self, upstream: Option<&str>, change: &Change) {
        let routes = self.routes();
        // What the upstream serves changed: what the cache kept of it goes first.
        if let (Some(upstream), Some(cache)) = (upstream, &routes.cache) {
            cache.drop_upstream(upstream);
        }
        let endpoints = self.inner.endpoints.read().unwrap_or_else(PoisonError::into_inner);
        for (name, endpoint) in endpoints.iter() {
            let concerned = match upstream {
                None => true,
                Some(upstream) => {
                    name.is_empty()
                        || name == upstream
                        || routes
                            .config
                            .virtual_servers
                            .iter()
                            .any(|v| &v.name == name && v.tools.iter().any(|t| t.upstream == upstream))
                }
            };
            if concerned {
                endpoint.server().notify(change.clone());
            }
        }
    }
}

/// Stops an upstream taken out of the configuration once its calls in flight are done (or its
/// `timeout` passed).
async fn retire(upstream: Arc<Upstream>) {
    let deadline = tokio::time::Instant::now() + upstream.config().timeout;
    while upstream.replicas().iter().any(|r| r.in_flight() > 0) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tracing::info!(upstream = upstream.name(), "upstream retired");
    upstream.stop();
}
