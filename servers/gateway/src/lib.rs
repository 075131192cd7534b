//! Portico's gateway: one front door for many upstream MCP servers.
//!
//! Clients of any revision reach it over Streamable HTTP (both generations), WebSocket or the
//! legacy HTTP+SSE transport, all on one listener; it relays their requests to upstream
//! servers reached over stdio, Streamable HTTP, legacy HTTP+SSE, WebSocket or in process, each
//! spoken to in the generation it speaks. Endpoints:
//!
//! | path | serves |
//! |---|---|
//! | `/mcp` (and `ws://…/mcp`, `/sse` + `/messages`) | every upstream's tools and prompts, namespaced `<prefix><separator><name>`, and their resources |
//! | `/mcp/<upstream>` (`…/sse`, `…/messages`) | one upstream's items, as they are |
//! | `/mcp/<virtual server>` | a curated set of tools, renamed and redescribed |
//! | `/healthz`, `/readyz` | liveness; readiness with every upstream's state and name collisions (JSON) |
//!
//! The request path: transport → [`portico_core::server`] (sessions, revisions, input rounds)
//! → [`catalog::View`] (which upstream serves the name) → [`relay`] (progress, log messages,
//! questions and cancellation carried both ways) → the upstream's
//! [`portico_core::client::Client`], kept connected by [`upstream::Upstream`]. Policy layers
//! (authentication, authorization, rate limits, caching, audit) slot in between the transport
//! and the catalog.
//!
//! The crate has no features.

pub mod breaker;
pub mod catalog;
pub mod config;
pub mod relay;
pub mod upstream;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use portico_core::server::{Change, Server};
use portico_transport::http::HttpConfig;
use portico_transport::http::legacy_sse::{self, LegacySseConfig};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::catalog::{Routes, Scope, SharedRoutes, View};
use crate::config::Config;
use crate::upstream::{Announce, Upstream};

/// The gateway's name in `serverInfo`.
pub const NAME: &str = "portico-gateway";

/// A running gateway: its upstreams (connecting, connected, reconnecting) and its endpoints.
pub struct Gateway {
    routes: SharedRoutes,
    endpoints: Arc<Endpoints>,
    shutdown: CancellationToken,
}

/// The MCP server of each endpoint, by path name (`""` for the aggregated one).
#[derive(Default)]
struct Endpoints {
    servers: RwLock<Vec<(String, Server)>>,
}

impl Endpoints {
    fn announce(&self, upstream: &str, change: &Change, routes: &Routes) {
        let servers = self.servers.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (name, server) in servers.iter() {
            let concerned = name.is_empty()
                || name == upstream
                || routes
                    .config
                    .virtual_servers
                    .iter()
                    .any(|v| &v.name == name && v.tools.iter().any(|t| t.upstream == upstream));
            if concerned {
                server.notify(change.clone());
            }
        }
    }
}

impl Gateway {
    /// Starts the upstreams of `config` and waits (at most `connect_wait`) for each one's
    /// first connection attempt; an upstream that is not reachable yet keeps being retried
    /// in the background, its calls answered with [`relay::UPSTREAM_UNAVAILABLE`] meanwhile.
    pub async fn start(config: Config, connect_wait: Duration) -> Self {
        let endpoints = Arc::new(Endpoints::default());
        let routes: SharedRoutes = Arc::new(RwLock::new(Arc::new(Routes {
            config: config.clone(),
            upstreams: Vec::new(),
        })));
        let announce: Announce = {
            let endpoints = endpoints.clone();
            let routes = routes.clone();
            Arc::new(move |upstream: &str, change: Change| {
                let routes = routes.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
                endpoints.announce(upstream, &change, &routes);
            })
        };
        let mut upstreams = Vec::new();
        let mut first = Vec::new();
        for upstream in &config.upstreams {
            let upstream = Upstream::new(upstream.clone(), announce.clone());
            let (tx, rx) = tokio::sync::oneshot::channel();
            tokio::spawn(upstream.clone().run(tx));
            first.push(rx);
            upstreams.push(upstream);
        }
        *routes.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(Routes { config, upstreams });
        let _ = tokio::time::timeout(connect_wait, futures_util::future::join_all(first)).await;
        Self {
            routes,
            endpoints,
            shutdown: CancellationToken::new(),
        }
    }

    /// The routes in force.
    pub fn routes(&self) -> Arc<Routes> {
        self.routes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Cancelled by [`Gateway::shutdown`]; give [`portico_transport::http::serve`] the same.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops the endpoints' streams and the upstreams.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
        for (_, server) in self
            .endpoints
            .servers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            server.shutdown();
        }
        for upstream in &self.routes().upstreams {
            upstream.stop();
        }
    }

    /// The endpoint serving `scope`, as an MCP server.
    fn server(&self, name: &str, scope: Scope) -> Server {
        let mut builder =
            Server::builder(NAME, env!("CARGO_PKG_VERSION")).catalog(View::new(self.routes.clone(), scope.clone()));
        if let Scope::Virtual(name) = &scope
            && let Some(instructions) = self
                .routes()
                .config
                .virtual_servers
                .iter()
                .find(|v| &v.name == name)
                .and_then(|v| v.instructions.clone())
        {
            builder = builder.instructions(instructions);
        }
        let server = builder.build();
        self.endpoints
            .servers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((name.to_string(), server.clone()));
        server
    }

    /// The HTTP application: every endpoint, on every transport, and the health checks.
    pub fn router(&self) -> Router {
        let routes = self.routes();
        let limits = &routes.config.limits;
        let mut app = Router::new();
        let endpoint = |path: String, name: &str, scope: Scope, app: Router| -> Router {
            let server = self.server(name, scope);
            let http = HttpConfig {
                path: path.clone(),
                max_body_bytes: limits.max_body_bytes,
                max_sessions: limits.max_sessions,
                shutdown: self.shutdown.clone(),
                ..HttpConfig::default()
            };
            let mut legacy = LegacySseConfig::from_http(&http);
            let base = if path == "/mcp" { String::new() } else { path.clone() };
            legacy.sse_path = format!("{base}/sse");
            legacy.messages_path = format!("{base}/messages");
            let for_legacy = server.clone();
            app.merge(portico_transport::http::router(move || server.connection(), http))
                .merge(legacy_sse::router(move || for_legacy.connection(), legacy))
        };
        app = endpoint("/mcp".into(), "", Scope::All, app);
        for upstream in &routes.config.upstreams {
            let path = format!("/mcp/{}", upstream.name);
            app = endpoint(path, &upstream.name, Scope::Upstream(upstream.name.clone()), app);
        }
        for server in &routes.config.virtual_servers {
            let path = format!("/mcp/{}", server.name);
            app = endpoint(path, &server.name, Scope::Virtual(server.name.clone()), app);
        }
        let shared = self.routes.clone();
        app.route(
            "/healthz",
            get(|| async { json_response(StatusCode::OK, &json!({"status": "ok"})) }),
        )
        .route(
            "/readyz",
            get(move || {
                let routes = shared.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
                async move { readiness(&routes) }
            }),
        )
    }
}

/// `/readyz`: `200` when every upstream can serve (a replica connected and not held off by
/// its breaker), else `503`; the body lists each upstream and replica and the names served
/// twice.
fn readiness(routes: &Routes) -> axum::response::Response {
    let upstreams: Vec<_> = routes
        .upstreams
        .iter()
        .map(|u| {
            let snapshot = u.snapshot();
            let replicas: Vec<_> = u
                .replicas()
                .iter()
                .map(|r| {
                    let reason = r.unavailable_reason();
                    json!({
                        "target": r.describe(),
                        "connected": r.client().is_some(),
                        "breaker": r.breaker_state(),
                        "in_flight": r.in_flight(),
                        "calls": r.calls(),
                        "error": if reason.is_empty() { None } else { Some(reason) },
                    })
                })
                .collect();
            let available = u.is_available();
            json!({
                "name": u.name(),
                "connected": available,
                "error": if available { None } else { Some(u.unavailable_reason()) },
                "tools": snapshot.tools.len(),
                "prompts": snapshot.prompts.len(),
                "resources": snapshot.resources.len(),
                "replicas": replicas,
            })
        })
        .collect();
    let collisions: Vec<_> = routes
        .collisions()
        .into_iter()
        .map(|(kind, name, upstreams)| json!({"kind": kind, "name": name, "upstreams": upstreams}))
        .collect();
    let ready = routes.upstreams.iter().all(|u| u.is_available());
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "upstreams": upstreams,
        "collisions": collisions,
    });
    json_response(status, &body)
}

/// A JSON body with its status.
fn json_response(status: StatusCode, body: &serde_json::Value) -> axum::response::Response {
    let headers = [(axum::http::header::CONTENT_TYPE, "application/json")];
    (status, headers, body.to_string()).into_response()
}
