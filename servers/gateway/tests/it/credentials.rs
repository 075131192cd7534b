//! The gateway's own credentials at its upstreams (`upstreams[].oauth`), end to end: an
//! authorization server in the test (token endpoint for the client credentials grant and for
//! token exchange, checking the gateway's client authentication, counting what it issues; its
//! RFC 8414 metadata) and `everything` behind a bearer check that records the token of every
//! request it gets (Streamable HTTP, WebSocket and legacy SSE on one listener). Shown: a client
//! credentials token obtained once, reused, replaced after a `401` and once expired; discovery;
//! token exchange giving each caller its own upstream token, cached per caller; a caller's
//! token never reaching an upstream on any transport; an authorization server that is down,
//! or a caller without a token to exchange, failing calls with `-32050` naming the upstream;
//! bad configuration refused naming the key; secrets redacted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use portico_core::client::Protocol;
use portico_gateway::relay::UPSTREAM_UNAVAILABLE;
use portico_transport::http::legacy_sse::{self, LegacySseConfig};

use super::auth::{AUDIENCE, ISSUER, SECRET, claims, hs256};
use super::*;

/// The client secret the authorization server expects of the gateway.
const GATEWAY_SECRET: &str = "gateway-secret-0123456789";
/// The RFC 8693 grant type.
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// A token the upstream accepts that no authorization server issued (for `headers`).
const STATIC_TOKEN: &str = "static-upstream-token";

/// One token request the authorization server granted.
#[derive(Debug, Clone)]
struct Issued {
    grant: String,
    /// The `sub` of the subject token (token exchange).
    subject: Option<String>,
    /// The subject token itself.
    subject_token: Option<String>,
    audience: Option<String>,
    scope: Option<String>,
    resource: Option<String>,
    client_id: String,
    /// `basic` or `post`.
    client_auth: &'static str,
    token: String,
}

#[derive(Default)]
struct AsState {
    /// Accepted client ids and their secrets.
    clients: BTreeMap<String, String>,
    issued: Mutex<Vec<Issued>>,
    /// Token requests refused for their client authentication.
    refused: AtomicUsize,
    /// Tokens the upstream accepts (issued and not revoked, or static).
    valid: Mutex<HashSet<String>>,
    /// The `expires_in` of the next tokens.
    expires_in: AtomicU64,
    counter: AtomicUsize,
    metadata_reads: AtomicUsize,
}

/// The authorization server, running until dropped.
struct AuthServer {
    /// `http://127.0.0.1:PORT`.
    url: String,
    state: Arc<AsState>,
    stop: CancellationToken,
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl AuthServer {
    async fn start() -> Self {
        let mut clients = BTreeMap::new();
        clients.insert("gateway".to_string(), GATEWAY_SECRET.to_string());
        // `client_secret_env: PATH` in the tests (the crate forbids `set_var`).
        clients.insert("exchanger".to_string(), std::env::var("PATH").expect("PATH is set"));
        let state = Arc::new(AsState {
            clients,
            expires_in: AtomicU64::new(3600),
            ..AsState::default()
        });
        state.valid.lock().unwrap().insert(STATIC_TOKEN.into());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let issuer = url.clone();
        let app = axum::Router::new()
            .route("/token", post(token))
            .route(
                "/.well-known/oauth-authorization-server",
                get(move |State(state): State<Arc<AsState>>| {
                    let issuer = issuer.clone();
                    async move {
                        state.metadata_reads.fetch_add(1, Ordering::SeqCst);
                        json_body(json!({
                            "issuer": issuer,
                            "token_endpoint": format!("{issuer}/token"),
                            "grant_types_supported": ["client_credentials", TOKEN_EXCHANGE],
                            "token_endpoint_auth_methods_supported": ["client_secret_post"],
                        }))
                    }
                }),
            )
            .with_state(state.clone());
        let stop = CancellationToken::new();
        tokio::spawn(portico_transport::http::serve(
            listener,
            app,
            stop.clone().cancelled_owned(),
        ));
        Self { url, state, stop }
    }

    fn token_endpoint(&self) -> String {
        format!("{}/token", self.url)
    }

    fn issued(&self) -> Vec<Issued> {
        self.state.issued.lock().unwrap().clone()
    }

    /// The tokens granted so far by `grant` (`client_credentials` or the token exchange).
    fn granted(&self, grant: &str) -> Vec<Issued> {
        self.issued().into_iter().filter(|i| i.grant == grant).collect()
    }

    fn revoke(&self, token: &str) {
        self.state.valid.lock().unwrap().remove(token);
    }
}

/// A `200` JSON answer.
fn json_body(body: serde_json::Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn form(text: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(text.as_bytes()).into_owned().collect()
}

/// The `sub` of a JWT (unverified: the gateway verified it).
fn jwt_subject(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims["sub"].as_str().map(str::to_string)
}

async fn token(State(state): State<Arc<AsState>>, headers: HeaderMap, body: String) -> Response {
    let form = form(&body);
    let refuse = |status: StatusCode, error: &str| {
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            json!({"error": error}).to_string(),
        )
            .into_response()
    };
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|pair| {
            let (id, secret) = pair.split_once(':')?;
            let decode = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
            };
            Some((decode(id)?, decode(secret)?))
        });
    let (client_id, secret, client_auth) = match basic {
        Some((id, secret)) => (id, secret, "basic"),
        None => (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned().unwrap_or_default(),
            "post",
        ),
    };
    if state.clients.get(&client_id) != Some(&secret) {
        state.refused.fetch_add(1, Ordering::SeqCst);
        return refuse(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let n = state.counter.fetch_add(1, Ordering::SeqCst) + 1;
    let grant = form.get("grant_type").cloned().unwrap_or_default();
    let (token, subject) = match grant.as_str() {
        "client_credentials" => (format!("cc-{n}"), None),
        TOKEN_EXCHANGE => {
            if form.get("subject_token_type").map(String::as_str)
                != Some("urn:ietf:params:oauth:token-type:access_token")
            {
                return refuse(StatusCode::BAD_REQUEST, "invalid_request");
            }
            let Some(subject) = form.get("subject_token").and_then(|t| jwt_subject(t)) else {
                return refuse(StatusCode::BAD_REQUEST, "invalid_grant");
            };
            (format!("ex-{subject}-{n}"), Some(subject))
        }
        _ => return refuse(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    };
    state.valid.lock().unwrap().insert(token.clone());
    state.issued.lock().unwrap().push(Issued {
        grant: grant.clone(),
        subject,
        subject_token: form.get("subject_token").cloned(),
        audience: form.get("audience").cloned(),
        scope: form.get("scope").cloned(),
        resource: form.get("resource").cloned(),
        client_id,
        client_auth,
        token: token.clone(),
    });
    let mut answer = json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": state.expires_in.load(Ordering::SeqCst),
    });
    if grant == TOKEN_EXCHANGE {
        answer["issued_token_type"] = json!("urn:ietf:params:oauth:token-type:access_token");
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        answer.to_string(),
    )
        .into_response()
}

/// One request the upstream got.
#[derive(Debug, Clone)]
struct Seen {
    authorization: Option<String>,
    /// `POST <json-rpc method>`, `GET /sse`, `GET upgrade`, …
    what: String,
    /// A `tools/call`'s `arguments.message`.
    message: Option<String>,
}

/// `everything` over Streamable HTTP (and WebSocket) at `/mcp` and legacy SSE at `/sse`, behind
/// a bearer check against the authorization server's valid tokens; its protected resource
/// metadata names that server.
struct Guarded {
    /// `http://127.0.0.1:PORT`.
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: CancellationToken,
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Guarded {
    async fn start(auth_server: &AuthServer) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let server = portico_everything::server();
        let legacy_server = server.clone();
        let config = HttpConfig::default();
        let stop = config.shutdown.clone();
        let valid = auth_server.state.clone();
        let record = seen.clone();
        let metadata = format!("{base}/.well-known/oauth-protected-resource/mcp");
        let mcp = StreamableHttp::new(move || server.connection(), config)
            .router()
            .merge(legacy_sse::router(
                move || legacy_server.connection(),
                LegacySseConfig::default(),
            ))
            .layer(middleware::from_fn(move |request: Request, next: Next| {
                let (valid, record, metadata) = (valid.clone(), record.clone(), metadata.clone());
                async move { guard(request, next, &valid, &record, &metadata).await }
            }));
        let resource = format!("{base}/mcp");
        let as_url = auth_server.url.clone();
        let app = axum::Router::new()
            .route(
                "/.well-known/oauth-protected-resource/mcp",
                get(move || {
                    let body = json!({"resource": resource, "authorization_servers": [as_url]});
                    async move { json_body(body) }
                }),
            )
            .merge(mcp);
        tokio::spawn(portico_transport::http::serve(
            listener,
            app,
            stop.clone().cancelled_owned(),
        ));
        Self { base, seen, stop }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The token each `tools/call` carrying `message` was sent with, in order.
    fn calls(&self, message: &str) -> Vec<Option<String>> {
        self.seen()
            .into_iter()
            .filter(|s| s.message.as_deref() == Some(message))
            .map(|s| s.authorization)
            .collect()
    }
}

async fn guard(request: Request, next: Next, valid: &AsState, record: &Mutex<Vec<Seen>>, metadata: &str) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let message: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let what = match message["method"].as_str() {
        Some(method) => format!("{} {method}", parts.method),
        None if parts.headers.contains_key(header::UPGRADE) => format!("{} upgrade", parts.method),
        None => format!("{} {}", parts.method, parts.uri.path()),
    };
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    record.lock().unwrap().push(Seen {
        authorization: authorization.clone(),
        what,
        message: message["params"]["arguments"]["message"].as_str().map(str::to_string),
    });
    let accepted = authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .is_some_and(|t| valid.valid.lock().unwrap().contains(t));
    if !accepted {
        let challenge = format!("Bearer error=\"invalid_token\", resource_metadata=\"{metadata}\"");
        return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, challenge)], "").into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// The gateway's `auth` section (HS256 tokens of the auth tests).
fn auth_section() -> String {
    format!(
        "auth:\n  jwt:\n    issuer: '{ISSUER}'\n    audience: ['{AUDIENCE}']\n    keys:\n      - {{kid: hs, alg: HS256, secret: '{SECRET}'}}\n"
    )
}

/// A caller's valid token.
fn token_of(subject: &str) -> String {
    hs256("hs", &claims(|c| c["sub"] = json!(subject)))
}

/// A 2026-07-28 client of `path` sending `authorization`.
async fn caller(gateway: &Running, path: &str, authorization: &str) -> Client {
    let url = format!("{}{path}", gateway.base);
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("authorization", authorization.parse().expect("a header"));
    within(
        "connecting to the gateway",
        Client::builder(wire::Implementation::new("caller", "1"))
            .protocol(Protocol::Stateless)
            .connect(|service| {
                connect(
                    &url,
                    service,
                    HttpClientConfig {
                        headers,
                        ..HttpClientConfig::default()
                    },
                )
            }),
    )
    .await
    .expect("connecting to the gateway")
}

async fn echo(client: &Client, tool: &str, message: &str) -> Result<wire::CallToolResult, ClientError> {
    within("a call", client.call_tool(tool, json!({"message": message}))).await
}

/// A local port nobody listens on.
fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding");
    listener.local_addr().expect("address").port()
}

fn bearer(token: &str) -> Option<String> {
    Some(format!("Bearer {token}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_credentials_token_is_obtained_once_reused_and_replaced_after_a_401_and_once_expired() {
    let auth_server = AuthServer::start().await;
    let upstream = Guarded::start(&auth_server).await;
    let gateway = Running::start(&format!(
        "upstreams:\n  - name: u\n    url: '{}/mcp'\n    health: {{interval: 1h}}\n    oauth:\n      client_id: gateway\n      client_secret: '{GATEWAY_SECRET}'\n      token_endpoint: '{}'\n      token_endpoint_auth: client_secret_basic\n      scopes: [mcp]\n      resource: 'https://u.example/mcp'\n      refresh_margin: 0s\n",
        upstream.base,
        auth_server.token_endpoint()
    ))
    .await;
    let client = gateway.client("/mcp", Protocol::Stateless, ()).await;
    for n in 0..3 {
        let result = echo(&client, "u__echo", "first").await.expect("a call");
        assert!(text(&result).contains("first"), "call {n}: {result:?}");
    }
    let granted = auth_server.granted("client_credentials");
    assert_eq!(
        granted.len(),
        1,
        "one token for the connection and every call: {granted:?}"
    );
    let first = &granted[0];
    assert_eq!(first.client_id, "gateway");
    assert_eq!(first.client_auth, "basic");
    assert_eq!(first.scope.as_deref(), Some("mcp"));
    assert_eq!(first.resource.as_deref(), Some("https://u.example/mcp"));
    assert_eq!(
        auth_server.state.metadata_reads.load(Ordering::SeqCst),
        0,
        "a known token endpoint: no discovery"
    );
    let seen = upstream.seen();
    assert!(
        seen.iter().all(|s| s.authorization == bearer("cc-1")),
        "every request, the first one too, carried the token: {seen:?}"
    );
    assert_eq!(upstream.calls("first"), vec![bearer("cc-1"); 3]);

    // The upstream stops accepting it: the refused call is sent again with a new token.
    auth_server.state.expires_in.store(1, Ordering::SeqCst);
    auth_server.revoke("cc-1");
    echo(&client, "u__echo", "after-revoke")
        .await
        .expect("a call after the 401");
    assert_eq!(upstream.calls("after-revoke"), [bearer("cc-1"), bearer("cc-2")]);
    assert_eq!(auth_server.granted("client_credentials").len(), 2);

    // `cc-2` lives a second: once expired it is replaced before a call would carry it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    echo(&client, "u__echo", "after-expiry")
        .await
        .expect("a call after the expiry");
    assert_eq!(
        upstream.calls("after-expiry"),
        [bearer("cc-3")],
        "no request with the expired token"
    );
    assert_eq!(auth_server.granted("client_credentials").len(), 3);
    assert_eq!(auth_server.state.refused.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_endpoint_it_is_discovered_from_the_upstream_and_the_secret_may_come_from_the_environment() {
    let auth_server = AuthServer::start().await;
    let upstream = Guarded::start(&auth_server).await;
    let gateway = Running::start(&format!(
        "upstreams:\n  - name: u\n    url: '{}/mcp'\n    oauth: {{client_id: exchanger, client_secret_env: PATH}}\n",
        upstream.base
    ))
    .await;
    let client = gateway.client("/mcp", Protocol::Stateless, ()).await;
    echo(&client, "u__echo", "discovered").await.expect("a call");
    let granted = auth_server.granted("client_credentials");
    assert_eq!(granted.len(), 1, "{granted:?}");
    // The metadata lists `client_secret_post` only; the resource is the metadata's.
    assert_eq!(granted[0].client_auth, "post");
    assert_eq!(
        granted[0].resource.as_deref(),
        Some(format!("{}/mcp", upstream.base).as_str())
    );
    assert_eq!(auth_server.state.metadata_reads.load(Ordering::SeqCst), 1);
    assert_eq!(upstream.calls("discovered"), [bearer(&granted[0].token)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_exchange_gives_each_caller_its_own_upstream_token_cached_per_caller() {
    let auth_server = AuthServer::start().await;
    let upstream = Guarded::start(&auth_server).await;
    let gateway = Running::start(&format!(
        "{}upstreams:\n  - name: x\n    url: '{}/mcp'\n    protocol: stateless\n    health: {{interval: 1h}}\n    oauth:\n      client_id: gateway\n      client_secret: '{GATEWAY_SECRET}'\n      token_endpoint: '{}'\n      refresh_margin: 0s\n      token_exchange:\n        audience: upstream-x\n        scopes: [tools]\n        client_id: exchanger\n        client_secret_env: PATH\n        token_endpoint_auth: client_secret_post\n",
        auth_section(),
        upstream.base,
        auth_server.token_endpoint()
    ))
    .await;
    let (ada_token, bob_token) = (token_of("ada"), token_of("bob"));
    let ada = caller(&gateway, "/mcp", &format!("Bearer {ada_token}")).await;
    let bob = caller(&gateway, "/mcp", &format!("Bearer {bob_token}")).await;

    // Bob's first calls come at once: one exchange serves them.
    let (a, b, c) = tokio::join!(
        echo(&bob, "x__echo", "from-bob"),
        echo(&bob, "x__echo", "from-bob"),
        echo(&bob, "x__echo", "from-bob")
    );
    for result in [a, b, c] {
        result.expect("bob's call");
    }
    for _ in 0..2 {
        echo(&ada, "x__echo", "from-ada").await.expect("ada's call");
    }
    let exchanges = auth_server.granted(TOKEN_EXCHANGE);
    assert_eq!(exchanges.len(), 2, "one exchange per caller: {exchanges:?}");
    let of = |who: &str| {
        exchanges
            .iter()
            .find(|i| i.subject.as_deref() == Some(who))
            .cloned()
            .expect(who)
    };
    let (for_ada, for_bob) = (of("ada"), of("bob"));
    assert_eq!(for_ada.subject_token.as_deref(), Some(ada_token.as_str()));
    assert_eq!(for_ada.audience.as_deref(), Some("upstream-x"));
    assert_eq!(for_ada.scope.as_deref(), Some("tools"));
    assert_eq!(
        for_ada.resource.as_deref(),
        Some(format!("{}/mcp", upstream.base).as_str())
    );
    assert_eq!((for_ada.client_id.as_str(), for_ada.client_auth), ("exchanger", "post"));
    assert_ne!(for_ada.token, for_bob.token);
    assert_eq!(upstream.calls("from-ada"), vec![bearer(&for_ada.token); 2]);
    assert_eq!(upstream.calls("from-bob"), vec![bearer(&for_bob.token); 3]);
    // The gateway's own requests (discovery, lists) keep the client credentials.
    let own: Vec<Seen> = upstream.seen().into_iter().filter(|s| s.message.is_none()).collect();
    assert!(!own.is_empty());
    assert!(
        own.iter()
            .all(|s| s.authorization.as_deref().is_some_and(|a| a.starts_with("Bearer cc-"))),
        "{own:?}"
    );
    let routes = gateway.gateway.routes();
    let x = routes.upstreams.iter().find(|u| u.name() == "x").expect("x");
    assert_eq!(x.exchanger().expect("an exchanger").cached(), 2);

    // Ada's upstream token is refused: exchanged again, once, and the call goes through.
    auth_server.state.expires_in.store(1, Ordering::SeqCst);
    auth_server.revoke(&for_ada.token);
    echo(&ada, "x__echo", "ada-again")
        .await
        .expect("ada's call after the 401");
    let renewed = auth_server
        .granted(TOKEN_EXCHANGE)
        .into_iter()
        .filter(|i| i.subject.as_deref() == Some("ada"))
        .map(|i| i.token)
        .collect::<Vec<_>>();
    assert_eq!(renewed.len(), 2, "{renewed:?}");
    assert_eq!(upstream.calls("ada-again"), [bearer(&renewed[0]), bearer(&renewed[1])]);
    // Not the replica's fault: its breaker has seen no failure.
    let (_, ready) = gateway.get_json("/readyz").await;
    assert_eq!(ready["upstreams"][0]["replicas"][0]["breaker"], "closed", "{ready}");

    // Her new token lives a second: once expired, the next call exchanges anew, with no 401.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    echo(&ada, "x__echo", "ada-later")
        .await
        .expect("ada's call after the expiry");
    let latest = auth_server
        .granted(TOKEN_EXCHANGE)
        .last()
        .cloned()
        .expect("an exchange");
    assert_eq!(latest.subject.as_deref(), Some("ada"));
    assert_eq!(upstream.calls("ada-later"), [bearer(&latest.token)]);
    // Bob's token was not touched by any of it.
    echo(&bob, "x__echo", "bob-later").await.expect("bob's call");
    assert_eq!(upstream.calls("bob-later"), [bearer(&for_bob.token)]);
    assert_eq!(auth_server.state.refused.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_token_never_reaches_an_upstream_on_any_transport() {
    let auth_server = AuthServer::start().await;
    let upstream = Guarded::start(&auth_server).await;
    let base = &upstream.base;
    let endpoint = auth_server.token_endpoint();
    let oauth = format!("{{client_id: gateway, client_secret: '{GATEWAY_SECRET}', token_endpoint: '{endpoint}'}}");
    let gateway = Running::start(&format!(
        "{}upstreams:\n  - {{name: h, url: '{base}/mcp', oauth: {oauth}}}\n  - {{name: w, url: '{}/mcp', oauth: {oauth}}}\n  - {{name: s, url: '{base}/sse', transport: sse, oauth: {oauth}}}\n  - {{name: k, url: '{base}/mcp', headers: {{Authorization: 'Bearer {STATIC_TOKEN}'}}}}\n  - name: x\n    url: '{base}/mcp'\n    protocol: stateless\n    oauth: {{client_id: gateway, client_secret: '{GATEWAY_SECRET}', token_endpoint: '{endpoint}', token_exchange: {{}}}}\n",
        auth_section(),
        base.replace("http://", "ws://"),
    ))
    .await;
    let (status, ready) = gateway.get_json("/readyz").await;
    assert_eq!(status, 200, "{ready}");
    let jwt = token_of("ada");
    for protocol in [Protocol::Stateless, SESSION] {
        let url = format!("{}/mcp", gateway.base);
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("authorization", format!("Bearer {jwt}").parse().expect("a header"));
        let client = within(
            "connecting",
            Client::builder(wire::Implementation::new("caller", "1"))
                .protocol(protocol)
                .connect(|service| {
                    connect(
                        &url,
                        service,
                        HttpClientConfig {
                            headers,
                            ..HttpClientConfig::default()
                        },
                    )
                }),
        )
        .await
        .expect("connecting");
        for name in ["h", "w", "s", "k", "x"] {
            echo(&client, &format!("{name}__echo"), &format!("via-{name}"))
                .await
                .unwrap_or_else(|e| panic!("through {name}: {e:?}"));
        }
    }
    let issued: HashSet<String> = auth_server.issued().into_iter().map(|i| i.token).collect();
    let seen = upstream.seen();
    assert!(
        seen.iter().any(|s| s.what == "GET upgrade"),
        "the WebSocket upstream's handshake: {seen:?}"
    );
    assert!(
        seen.iter().any(|s| s.what == "GET /sse"),
        "the legacy SSE upstream's stream: {seen:?}"
    );
    for s in &seen {
        let token = s.authorization.as_deref().and_then(|a| a.strip_prefix("Bearer "));
        assert!(
            token.is_some_and(|t| issued.contains(t) || t == STATIC_TOKEN),
            "only the gateway's own credentials go upstream: {s:?}"
        );
        assert!(!s.authorization.as_deref().unwrap_or_default().contains(&jwt));
    }
    assert!(
        upstream
            .calls("via-x")
            .iter()
            .all(|a| a.as_deref().is_some_and(|a| a.starts_with("Bearer ex-ada-"))),
        "{:?}",
        upstream.calls("via-x")
    );
    assert_eq!(upstream.calls("via-k"), vec![bearer(STATIC_TOKEN); 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_authorization_server_or_nothing_to_exchange_fails_calls_naming_the_upstream() {
    let auth_server = AuthServer::start().await;
    let upstream = Guarded::start(&auth_server).await;
    let dead = format!("http://127.0.0.1:{}/token", dead_port());
    let gateway = Running::start(&format!(
        "{}upstreams:\n  - name: x\n    url: '{}/mcp'\n    protocol: stateless\n    oauth: {{client_id: gateway, client_secret: '{GATEWAY_SECRET}', token_endpoint: '{}', token_exchange: {{token_endpoint: '{dead}'}}}}\n  - name: c\n    url: '{}/mcp'\n    oauth: {{client_id: gateway, client_secret: '{GATEWAY_SECRET}', token_endpoint: '{dead}'}}\n",
        auth_section(),
        upstream.base,
        auth_server.token_endpoint(),
        upstream.base,
    ))
    .await;
    let ada = caller(&gateway, "/mcp", &format!("Bearer {}", token_of("ada"))).await;
    // More calls than the breaker's `failures`: the replica is not to blame.
    for _ in 0..4 {
        let error = rpc_error(echo(&ada, "x__echo", "never").await.unwrap_err());
        assert_eq!(error.code, UPSTREAM_UNAVAILABLE, "{error:?}");
        assert!(error.message.contains("upstream `x`"), "{error:?}");
        assert!(error.message.contains("token exchange failed"), "{error:?}");
        assert!(error.message.contains(&dead), "names the token endpoint: {error:?}");
        assert_eq!(error.data.as_ref().map(|d| &d["upstream"]), Some(&json!("x")));
    }
    assert!(
        upstream.calls("never").is_empty(),
        "no call went upstream without its token"
    );

    // The client credentials grant cannot be made: the upstream is unreachable, and says why.
    let (_, ready) = gateway.get_json("/readyz").await;
    let upstreams = ready["upstreams"].as_array().expect("upstreams");
    assert_eq!(upstreams[0]["replicas"][0]["breaker"], "closed", "{ready}");
    assert_eq!(upstreams[0]["connected"], true, "{ready}");
    assert_eq!(upstreams[1]["connected"], false, "{ready}");
    assert!(
        upstreams[1]["error"].as_str().is_some_and(|e| e.contains(&dead)),
        "{ready}"
    );
    let on_c = caller(&gateway, "/mcp/c", &format!("Bearer {}", token_of("ada"))).await;
    let error = rpc_error(echo(&on_c, "echo", "never").await.unwrap_err());
    assert_eq!(error.code, UPSTREAM_UNAVAILABLE, "{error:?}");
    assert!(error.message.contains("upstream `c`"), "{error:?}");

    // An API key is no token an authorization server can exchange.
    let made: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/admin/api-keys", gateway.base))
        .json(&json!({"name": "robot"}))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    let key = made["key"].as_str().expect("a key");
    let robot = caller(&gateway, "/mcp", &format!("Bearer {key}")).await;
    let error = rpc_error(echo(&robot, "x__echo", "never").await.unwrap_err());
    assert_eq!(error.code, UPSTREAM_UNAVAILABLE, "{error:?}");
    assert!(error.message.contains("no token to exchange"), "{error:?}");
    assert!(auth_server.granted(TOKEN_EXCHANGE).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_redacted_and_bad_oauth_settings_are_refused_naming_the_key() {
    let auth_server = AuthServer::start().await;
    let upstream = Guarded::start(&auth_server).await;
    let gateway = Running::start(&format!(
        "{}upstreams:\n  - name: x\n    url: '{}/mcp'\n    protocol: stateless\n    oauth:\n      client_id: gateway\n      client_secret: '{GATEWAY_SECRET}'\n      token_endpoint: '{}'\n      token_exchange: {{client_id: other, client_secret: another-secret-value}}\n  - name: e\n    url: '{}/mcp'\n    oauth: {{client_id: exchanger, client_secret_env: PATH}}\n",
        auth_section(),
        upstream.base,
        auth_server.token_endpoint(),
        upstream.base,
    ))
    .await;
    let path = std::env::var("PATH").expect("PATH");
    for what in ["/admin/config", "/admin/upstreams/x", "/admin/upstreams/e"] {
        let response = reqwest::get(format!("{}{what}", gateway.base)).await.expect("GET");
        assert_eq!(response.status(), 200);
        let text = response.text().await.expect("a body");
        for secret in [GATEWAY_SECRET, "another-secret-value", SECRET, path.as_str()] {
            assert!(!text.contains(secret), "{what} shows a secret: {text}");
        }
    }
    let (_, config) = gateway.get_json("/admin/config").await;
    let oauth = &config["config"]["upstreams"][0]["oauth"];
    assert_eq!(oauth["client_secret"], "<redacted>", "{oauth}");
    assert_eq!(oauth["client_id"], "gateway");
    assert_eq!(oauth["token_exchange"]["client_secret"], "<redacted>", "{oauth}");
    assert_eq!(config["config"]["upstreams"][1]["oauth"]["client_secret_env"], "PATH");
    let debug = format!("{:?}", gateway.gateway.config());
    assert!(
        !debug.contains(GATEWAY_SECRET) && !debug.contains("another-secret-value"),
        "{debug}"
    );

    // A bad upstream through the admin API: refused, naming the key, and nothing changes.
    for (body, expected) in [
        (
            json!({"name": "y", "url": "http://127.0.0.1:1/mcp", "oauth": {"client_id": "g", "client_secret": "s", "token_exchange": {}}}),
            "oauth.token_exchange: needs `protocol: stateless`",
        ),
        (
            json!({"name": "y", "command": ["true"], "oauth": {"client_id": "g", "client_secret": "s"}}),
            "oauth: applies to `url` upstreams only",
        ),
        (
            json!({"name": "y", "url": "http://127.0.0.1:1/mcp", "oauth": {"client_id": "g", "client_secret_env": "PORTICO_TEST_NO_SUCH_VARIABLE"}}),
            "oauth.client_secret_env: the environment variable `PORTICO_TEST_NO_SUCH_VARIABLE` is not set",
        ),
    ] {
        let response = reqwest::Client::new()
            .put(format!("{}/admin/upstreams/y", gateway.base))
            .json(&body)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 400);
        let text = response.text().await.expect("a body");
        assert!(text.contains(expected), "{text}");
    }
    assert!(gateway.gateway.config().upstream("y").is_none());
}
