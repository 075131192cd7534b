//! The gateway's HTTP surface: every endpoint on one listener, each an MCP server over
//! Streamable HTTP, WebSocket and the legacy HTTP+SSE transport; `/mcp/<name>` is looked up
//! when a request comes, so endpoints come and go with the configuration. Also `/healthz` and
//! `/readyz`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError};
use std::task::Poll;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::future::RouteFuture;
use axum::routing::{any, get};
use futures_util::FutureExt as _;
use futures_util::future::Either;
use portico_core::server::Server;
use portico_transport::http::legacy_sse::{self, LegacySseConfig};
use portico_transport::http::{Carry, HttpConfig};
use portico_transport::otel::Traced;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use crate::auth::{Principal, SubjectToken};
use crate::catalog::{Routes, Scope, View};
use crate::{Gateway, NAME};

/// How long a session's relayed `tools/call` is waited for before its answer becomes an SSE
/// stream ([`HttpConfig::stream_after`]). A call answered sooner gets one JSON object, written
/// with the response head at once, rather than a head with a priming event and then the answer
/// in a second write. A call that takes longer is the one a client may need to resume, and
/// gets its primed stream then; a call's progress, log messages and questions are not held
/// back by it (the first starts the stream).
const STREAM_AFTER: std::time::Duration = std::time::Duration::from_millis(100);

/// One endpoint: its MCP server and the router serving it on every transport.
pub(crate) struct Endpoint {
    scope: Scope,
    server: Server,
    router: Router,
    /// Its Streamable HTTP endpoint, which POSTs to its path go to straight.
    streamable: portico_transport::http::StreamableHttp,
    /// Its Streamable HTTP sessions, counted for `/metrics`.
    sessions: portico_transport::http::Sessions,
    /// Ends the endpoint's sessions and streams when it is removed.
    closed: CancellationToken,
}

impl Endpoint {
    /// The endpoint `name` (`""`: the aggregated one, at `/mcp`) serving `scope`.
    pub(crate) fn new(gateway: &Gateway, name: &str, scope: Scope) -> Self {
        let routes = gateway.routes();
        let mut builder = Server::builder(NAME, env!("CARGO_PKG_VERSION"))
            .catalog(View::new(gateway.inner.routes.clone(), scope.clone()));
        if let Scope::Virtual(name) = &scope
            && let Some(instructions) = routes
                .config
                .virtual_servers
                .iter()
                .find(|v| &v.name == name)
                .and_then(|v| v.instructions.clone())
        {
            builder = builder.instructions(instructions);
        }
        let path = if name.is_empty() {
            "/mcp".to_string()
        } else {
            format!("/mcp/{name}")
        };
        let sessions = crate::store::EndpointSessions::new(gateway.inner.store.clone(), &path);
        let server = builder.session_store(Arc::new(sessions)).build();
        let closed = gateway.inner.shutdown.child_token();
        let limits = &routes.config.limits;
        let http = HttpConfig {
            path: path.clone(),
            max_body_bytes: limits.max_body_bytes,
            max_sessions: limits.max_sessions,
            shutdown: closed.clone(),
            // A relayed call may send progress, log messages or questions before its answer,
            // and take long: in a session, a call not answered within `STREAM_AFTER` gets a
            // primed, resumable SSE stream then (a message before it starts the stream at once).
            stream_methods: vec!["tools/call".into()],
            stream_after: STREAM_AFTER,
            // The caller `auth` admitted, for the policy (legacy SSE takes it from here too),
            // and its address, which WebSocket rate limits key an anonymous caller by, and its
            // token, for upstreams that exchange it.
            carry: Carry::new()
                .with::<Principal>()
                .with::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .with::<SubjectToken>(),
            // WebSocket messages pass no HTTP middleware: the rate limits check each one.
            websocket: Some(portico_transport::http::ws::WsConfig {
                admit: Some(crate::ratelimit::ws_admit(gateway, scope.clone())),
                ..portico_transport::http::ws::WsConfig::default()
            }),
            ..HttpConfig::default()
        };
        let mut legacy = LegacySseConfig::from_http(&http);
        let base = if name.is_empty() { String::new() } else { path };
        legacy.sse_path = format!("{base}/sse");
        legacy.messages_path = format!("{base}/messages");
        let (for_http, for_legacy) = (server.clone(), server.clone());
        let (exporter, for_legacy_exporter) = (gateway.inner.exporter.clone(), gateway.inner.exporter.clone());
        let streamable = portico_transport::http::StreamableHttp::new(
            move || Traced::new(for_http.connection(), exporter.clone()),
            http,
        );
        let sessions = streamable.sessions();
        let router = streamable.router().merge(legacy_sse::router(
            move || Traced::new(for_legacy.connection(), for_legacy_exporter.clone()),
            legacy,
        ));
        Self {
            scope,
            server,
            router,
            streamable,
            sessions,
            closed,
        }
    }

    pub(crate) fn scope(&self) -> &Scope {
        &self.scope
    }

    pub(crate) fn server(&self) -> &Server {
        &self.server
    }

    /// Ends its sessions and streams.
    pub(crate) fn close(&self) {
        self.server.shutdown();
        self.closed.cancel();
    }
}

impl Gateway {
    /// The HTTP application: every endpoint, on every transport, the health checks and the
    /// admin API.
    pub fn router(&self) -> Router {
        let mcp = Router::new()
            .route("/mcp", any(aggregated))
            .route("/sse", any(aggregated))
            .route("/messages", any(aggregated))
            .route("/mcp/{name}", any(named))
            .route("/mcp/{name}/{*rest}", any(named_rest));
        // With `auth`, the MCP endpoints want a valid bearer token; the resource's metadata
        // says where to get one.
        let mcp = match &self.inner.auth {
            Some(authenticator) => mcp
                .route_layer(axum::middleware::from_fn_with_state(
                    (authenticator.clone(), self.inner.audit.clone()),
                    crate::auth::require,
                ))
                .merge(
                    Router::new()
                        .route("/.well-known/oauth-protected-resource", get(crate::auth::metadata))
                        .route(
                            "/.well-known/oauth-protected-resource/{*rest}",
                            get(crate::auth::metadata),
                        )
                        .with_state(authenticator.clone()),
                ),
            None => mcp,
        };
        mcp.route(
            "/healthz",
            get(|| async { json_response(StatusCode::OK, &json!({"status": "ok"})) }),
        )
        .route(
            "/readyz",
            get(|State(gateway): State<Gateway>| async move {
                if gateway.is_draining() {
                    let body = json!({"status": "draining", "in_flight": gateway.in_flight()});
                    return json_response(StatusCode::SERVICE_UNAVAILABLE, &body);
                }
                readiness(&gateway.routes())
            }),
        )
        .route(
            "/metrics",
            get(|State(gateway): State<Gateway>| async move { gateway.metrics_text() }),
        )
        .merge(crate::admin::router())
        .with_state(self.clone())
    }

    /// The gateway's HTTP application as a service to serve on a listener
    /// ([`portico_transport::http::serve_service`]): [`Gateway::router`], except that a POST to
    /// an MCP endpoint's path (`/mcp`, `/mcp/<name>`) goes to that endpoint without being
    /// routed. Every MCP message is such a POST, and the router would only bring it to the same
    /// place through its path matching, its handler's extractors and the futures wrapping each
    /// (callgrind of a gateway relaying `tools/call`: about 2k instructions a call, of 93k).
    ///
    /// With `auth`, such a POST is authenticated first exactly as the router's layer in front
    /// of the MCP endpoints does it ([`crate::auth::require`]). A name that would need
    /// percent-decoding (`%`) is routed, so it is read exactly as the router's `Path` reads it.
    pub fn service(&self) -> GatewayService {
        GatewayService {
            gateway: self.clone(),
            router: self.router(),
        }
    }

    /// How the endpoint `name` serves `request`, if there is one: its Streamable HTTP
    /// endpoint straight for a POST to its path (the MCP messages: no second routing of
    /// each), else its router.
    fn endpoint_for(&self, name: &str, request: &Request) -> Option<Serve> {
        let endpoints = self.inner.endpoints.read().unwrap_or_else(PoisonError::into_inner);
        let endpoint = endpoints.get(name)?;
        let streamable = &endpoint.streamable;
        Some(if streamable.takes(request) {
            Serve::Post(streamable.clone())
        } else {
            Serve::Route(endpoint.router.clone())
        })
    }

    /// `/metrics`: the counters, and the gauges read now.
    fn metrics_text(&self) -> Response {
        let routes = self.routes();
        let mut gauges = crate::metrics::Gauges::default();
        for upstream in &routes.upstreams {
            let in_flight = upstream.replicas().iter().map(|r| r.in_flight()).sum();
            gauges.in_flight.push((upstream.name().to_string(), in_flight));
            for replica in upstream.replicas() {
                gauges.replicas.push((
                    upstream.name().to_string(),
                    replica.describe(),
                    replica.is_available(),
                    replica.breaker_state(),
                ));
            }
        }
        for (name, endpoint) in self
            .inner
            .endpoints
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let path = if name.is_empty() {
                "/mcp".to_string()
            } else {
                format!("/mcp/{name}")
            };
            gauges.sessions.push((path, endpoint.sessions.len()));
        }
        gauges.cache = routes.cache.as_ref().and_then(|cache| cache.size());
        let headers = [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )];
        (StatusCode::OK, headers, self.inner.metrics.render(&gauges)).into_response()
    }

    /// Serves `request` on the endpoint `name`: its rate limits first (authentication, a
    /// layer, ran before), then the endpoint.
    ///
    /// Not an `async fn`, nor is [`Gateway::serve_admitted`]: the endpoint's future is
    /// kilobytes, and each `async fn` awaiting it would copy it into its own state first
    /// (see [`portico_core::boxed`]). Without rate limits to apply, the endpoint's future is
    /// the answer, made in its box.
    fn serve(&self, name: &str, request: Request) -> Answering {
        if !crate::ratelimit::applies(self, &request) {
            return self.serve_admitted(name, request);
        }
        let gateway = self.clone();
        let name = name.to_owned();
        portico_core::boxed(|| async move {
            let next = |request| gateway.serve_admitted(&name, request).map(infallible);
            Ok(crate::ratelimit::enforce(&gateway, request, next).await)
        })
    }

    /// [`Gateway::serve`], once the rate limits admitted `request`.
    fn serve_admitted(&self, name: &str, request: Request) -> Answering {
        let no_such = || {
            let error = format!("no upstream or virtual server is named `{name}`");
            let response = json_response(StatusCode::NOT_FOUND, &json!({"error": error}));
            Box::pin(std::future::ready(Ok(response))) as Answering
        };
        let Some(serve) = self.endpoint_for(name, &request) else {
            return no_such();
        };
        // A virtual server kept to roles the caller holds none of does not exist for it.
        let routes = self.routes();
        if let Some(server) = routes.config.virtual_servers.iter().find(|v| v.name == name)
            && !routes.caller(request.extensions().get::<Principal>()).may_use(server)
        {
            return no_such();
        }
        match serve {
            Serve::Post(streamable) => portico_core::boxed(|| streamable.post(request).map(Ok)),
            Serve::Route(router) => Box::pin(router.oneshot(request)),
        }
    }
}

/// The response of a future that cannot fail.
fn infallible(answer: Result<Response, Infallible>) -> Response {
    match answer {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// [`Gateway::service`]: the gateway's HTTP application, one clone per connection.
#[derive(Clone)]
pub struct GatewayService {
    gateway: Gateway,
    router: Router,
}

/// A POST's answer, on its way.
type Answering = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl tower::Service<Request> for GatewayService {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Answering, RouteFuture<Infallible>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if request.method() == Method::POST
            && let Some(name) = endpoint_of(request.uri().path())
        {
            let name = name.to_owned();
            let Some(authenticator) = self.gateway.inner.auth.clone() else {
                return Either::Left(self.gateway.serve(&name, request));
            };
            let gateway = self.gateway.clone();
            return Either::Left(portico_core::boxed(|| async move {
                match crate::auth::admit(&authenticator, gateway.inner.audit.as_ref(), request).await {
                    Ok(request) => gateway.serve(&name, request).await,
                    Err(refused) => Ok(refused),
                }
            }));
        }
        Either::Right(self.router.call(request))
    }
}

/// The MCP endpoint whose path `path` is, as the router's `/mcp` and `/mcp/{name}` routes
/// would find it: `""` (the aggregated endpoint) or `name`; `None` for any other path, and for
/// a name with a `%` (left to the router, whose `Path` decodes it).
fn endpoint_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/mcp")?;
    if rest.is_empty() {
        return Some("");
    }
    let name = rest.strip_prefix('/')?;
    (!name.is_empty() && !name.contains(['/', '%'])).then_some(name)
}

/// How an endpoint serves a request ([`Gateway::endpoint_for`]).
enum Serve {
    /// A POST to its Streamable HTTP path.
    Post(portico_transport::http::StreamableHttp),
    /// Anything else, through its router.
    Route(Router),
}

async fn aggregated(State(gateway): State<Gateway>, request: Request) -> Response {
    infallible(gateway.serve("", request).await)
}

async fn named(State(gateway): State<Gateway>, Path(name): Path<String>, request: Request) -> Response {
    infallible(gateway.serve(&name, request).await)
}

async fn named_rest(
    State(gateway): State<Gateway>,
    Path((name, _rest)): Path<(String, String)>,
    request: Request,
) -> Response {
    infallible(gateway.serve(&name, request).await)
}

/// `/readyz`: `200` when every upstream can serve (a replica connected and not held off by
/// its breaker), else `503`; the body lists each upstream and replica and the names served
/// twice.
fn readiness(routes: &Routes) -> Response {
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
                        "connected": r.is_connected(),
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
pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let headers = [(axum::http::header::CONTENT_TYPE, "application/json")];
    (status, headers, body.to_string()).into_response()
}
