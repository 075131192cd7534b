//! The OAuth 2.1 client (`http::auth`) over real TCP on 127.0.0.1: an in-process mock
//! authorization server (metadata at a chosen well-known URL, registration, an authorization
//! endpoint that approves at once and redirects back, a token endpoint checking PKCE) and
//! Portico's own MCP endpoint behind a bearer check (a middleware answering `401`/`403` with
//! `WWW-Authenticate`). Covered: the discovery variants, PKCE, dynamic registration,
//! pre-registration, client credentials (discovered, or at a known token endpoint, eager),
//! token exchange (RFC 8693), step-up (and its bound), refresh, RFC 9207 `iss`, an
//! authorization server migration, the loopback authorizer, the WebSocket and legacy SSE clients'
//! tokens, a request's own credentials, and bad metadata giving typed errors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use portico_core::client::{Client, ClientError, Protocol, RequestOptions};
use portico_core::server::{Server, tool};
use portico_transport::http::auth::{
    Auth, AuthError, Authorizer, ClientCredentials, HeadlessAuthorizer, LoopbackAuthorizer, OAuthConfig, OAuthProvider,
    TokenEndpointAuth, TokenExchange, TokenStore,
};
use portico_transport::http::client::{HttpClientConfig, connect};
use portico_transport::http::legacy_sse::{self, LegacySseConfig};
use portico_transport::http::legacy_sse_client::{self, LegacySseClientConfig};
use portico_transport::http::ws_client::{self, WsClientConfig};
use portico_transport::http::{HttpConfig, serve};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::within;

/// A tool without arguments.
#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Nothing {}

const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// Where the authorization server publishes its metadata.
#[derive(Clone, Copy, PartialEq)]
enum MetadataAt {
    /// RFC 8414, path inserted.
    OAuth,
    /// OpenID Connect, path appended (the last resort for an issuer with a path).
    OpenIdAppended,
}

/// How the mock servers behave.
#[derive(Clone)]
struct Knobs {
    /// The issuer's path (`""` or `/tenant1`).
    issuer_path: &'static str,
    metadata_at: MetadataAt,
    /// The metadata's `issuer`, if not the real one.
    issuer_override: Option<String>,
    pkce: bool,
    registration: bool,
    auth_methods: Vec<&'static str>,
    iss_advertised: bool,
    /// `Some(value)`: the redirect's `iss`; `None`: the real issuer.
    iss_sent: Option<Option<String>>,
    expires_in: u64,
    /// The protected resource metadata's path (`None`: none is served).
    prm_path: Option<&'static str>,
    prm_in_challenge: bool,
    prm_resource: Option<String>,
    /// The protected resource metadata names the origin (root metadata for every path).
    prm_names_origin: bool,
    scopes_supported: Option<Vec<&'static str>>,
    /// The 401 challenge's `scope`.
    challenge_scope: Option<&'static str>,
    /// The scope `tools/call` needs (`403 insufficient_scope` without it).
    call_scope: Option<&'static str>,
    /// Grant `call_scope` never (the step-up bound).
    never_grant: bool,
    client_credentials: bool,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            issuer_path: "",
            metadata_at: MetadataAt::OAuth,
            issuer_override: None,
            pkce: true,
            registration: true,
            auth_methods: vec!["none"],
            iss_advertised: true,
            iss_sent: None,
            expires_in: 3600,
            prm_path: Some("/.well-known/oauth-protected-resource/mcp"),
            prm_in_challenge: true,
            prm_resource: None,
            prm_names_origin: false,
            scopes_supported: None,
            challenge_scope: None,
            call_scope: None,
            never_grant: false,
            client_credentials: false,
        }
    }
}

/// What the mock servers saw.
#[derive(Default)]
struct Seen {
    /// GETs of metadata documents, by path, in order.
    metadata: Vec<String>,
    registrations: Vec<Value>,
    authorizations: Vec<HashMap<String, String>>,
    /// Token requests: the form and the `Authorization` header.
    tokens: Vec<(HashMap<String, String>, Option<String>)>,
    /// The `Authorization` of each MCP request.
    mcp: Vec<Option<String>>,
}

struct Mock {
    knobs: Knobs,
    as_url: String,
    rs_url: String,
    seen: Mutex<Seen>,
    /// Valid access tokens and their scopes.
    tokens: Mutex<HashMap<String, Vec<String>>>,
    /// Issued codes: their challenge and scopes.
    codes: Mutex<HashMap<String, (String, Vec<String>)>>,
    counter: Mutex<u64>,
    /// Another mock whose authorization server this resource has moved to.
    moved_to: Mutex<Option<Shared>>,
}

type Shared = Arc<Mock>;

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn form(text: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(text.as_bytes()).into_owned().collect()
}

impl Mock {
    fn issuer(&self) -> String {
        format!("{}{}", self.as_url, self.knobs.issuer_path)
    }

    fn next(&self) -> u64 {
        let mut counter = self.counter.lock().expect("lock");
        *counter += 1;
        *counter
    }

    fn issue(&self, scopes: Vec<String>) -> Value {
        let n = self.next();
        let token = format!("at-{n}");
        self.tokens.lock().expect("lock").insert(token.clone(), scopes.clone());
        let mut answer = json!({"access_token": token, "token_type": "Bearer", "expires_in": self.knobs.expires_in, "refresh_token": format!("rt-{n}")});
        if !scopes.is_empty() {
            answer["scope"] = json!(scopes.join(" "));
        }
        answer
    }

    fn challenge(&self, status: StatusCode, scope: Option<&str>, error: Option<&str>) -> Response {
        let mut value = "Bearer realm=\"mcp\"".to_string();
        if let Some(error) = error {
            value.push_str(&format!(", error=\"{error}\""));
        }
        if let Some(scope) = scope {
            value.push_str(&format!(", scope=\"{scope}\""));
        }
        if self.knobs.prm_in_challenge
            && let Some(path) = self.knobs.prm_path
        {
            value.push_str(&format!(", resource_metadata=\"{}{path}\"", self.rs_url));
        }
        (status, [(header::WWW_AUTHENTICATE, value)], "").into_response()
    }
}

async fn as_metadata(State(mock): State<Shared>, uri: Uri) -> Response {
    mock.seen.lock().expect("lock").metadata.push(uri.path().to_string());
    let path = mock.knobs.issuer_path;
    let expected = match mock.knobs.metadata_at {
        MetadataAt::OAuth => format!("/.well-known/oauth-authorization-server{path}"),
        MetadataAt::OpenIdAppended => format!("{path}/.well-known/openid-configuration"),
    };
    if uri.path() != expected {
        return StatusCode::NOT_FOUND.into_response();
    }
    let base = &mock.as_url;
    let mut metadata = json!({
        "issuer": mock.knobs.issuer_override.clone().unwrap_or_else(|| mock.issuer()),
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "response_types_supported": ["code"],
        "token_endpoint_auth_methods_supported": mock.knobs.auth_methods,
        "authorization_response_iss_parameter_supported": mock.knobs.iss_advertised,
    });
    if mock.knobs.pkce {
        metadata["code_challenge_methods_supported"] = json!(["S256"]);
    }
    if mock.knobs.registration {
        metadata["registration_endpoint"] = json!(format!("{base}/register"));
    }
    json_response(StatusCode::OK, metadata)
}

async fn register(State(mock): State<Shared>, body: String) -> Response {
    let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    mock.seen.lock().expect("lock").registrations.push(request.clone());
    let n = mock.next();
    let method = request["token_endpoint_auth_method"]
        .as_str()
        .unwrap_or("none")
        .to_string();
    let id = format!("dcr-{}-{n}", mock.as_url.rsplit(':').next().unwrap_or_default());
    let mut answer = json!({"client_id": id, "token_endpoint_auth_method": method});
    if method != "none" {
        answer["client_secret"] = json!(format!("secret-{n}"));
    }
    json_response(StatusCode::CREATED, answer)
}

async fn authorize(State(mock): State<Shared>, uri: Uri) -> Response {
    let query = form(uri.query().unwrap_or_default());
    mock.seen.lock().expect("lock").authorizations.push(query.clone());
    let code = format!("code-{}", mock.next());
    let scopes: Vec<String> = query
        .get("scope")
        .map(|s| s.split(' ').map(str::to_string).collect())
        .unwrap_or_default();
    mock.codes.lock().expect("lock").insert(
        code.clone(),
        (query.get("code_challenge").cloned().unwrap_or_default(), scopes),
    );
    let mut redirect =
        url::Url::parse(query.get("redirect_uri").map_or("http://invalid/", String::as_str)).expect("a redirect URI");
    {
        let mut pairs = redirect.query_pairs_mut();
        pairs.append_pair("code", &code);
        if let Some(state) = query.get("state") {
            pairs.append_pair("state", state);
        }
        match &mock.knobs.iss_sent {
            None => {
                pairs.append_pair("iss", &mock.issuer());
            }
            Some(Some(iss)) => {
                pairs.append_pair("iss", iss);
            }
            Some(None) => {}
        }
    }
    (StatusCode::FOUND, [(header::LOCATION, redirect.to_string())]).into_response()
}

async fn token(State(mock): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let request = form(&body);
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    mock.seen
        .lock()
        .expect("lock")
        .tokens
        .push((request.clone(), authorization));
    let refuse = |error: &str| json_response(StatusCode::BAD_REQUEST, json!({"error": error}));
    match request.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code = request.get("code").cloned().unwrap_or_default();
            let Some((challenge, scopes)) = mock.codes.lock().expect("lock").remove(&code) else {
                return refuse("invalid_grant");
            };
            let verifier = request.get("code_verifier").cloned().unwrap_or_default();
            let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if computed != challenge {
                return refuse("invalid_grant");
            }
            json_response(StatusCode::OK, mock.issue(scopes))
        }
        Some("refresh_token") => json_response(StatusCode::OK, mock.issue(Vec::new())),
        Some("urn:ietf:params:oauth:grant-type:token-exchange") if mock.knobs.client_credentials => {
            let Some(subject) = request.get("subject_token") else {
                return refuse("invalid_request");
            };
            if subject == "revoked" {
                return refuse("invalid_grant");
            }
            let scopes = request
                .get("scope")
                .map(|s| s.split(' ').map(str::to_string).collect())
                .unwrap_or_default();
            let mut answer = mock.issue(scopes);
            answer["issued_token_type"] = json!("urn:ietf:params:oauth:token-type:access_token");
            json_response(StatusCode::OK, answer)
        }
        Some("client_credentials") if mock.knobs.client_credentials => {
            let scopes = request
                .get("scope")
                .map(|s| s.split(' ').map(str::to_string).collect())
                .unwrap_or_default();
            json_response(StatusCode::OK, mock.issue(scopes))
        }
        _ => refuse("unsupported_grant_type"),
    }
}

async fn prm(State(mock): State<Shared>, uri: Uri) -> Response {
    mock.seen.lock().expect("lock").metadata.push(uri.path().to_string());
    if mock.knobs.prm_path != Some(uri.path()) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let mut metadata = json!({
        "resource": match (&mock.knobs.prm_resource, mock.knobs.prm_names_origin) {
            (Some(resource), _) => resource.clone(),
            (None, true) => mock.rs_url.clone(),
            (None, false) => format!("{}/mcp", mock.rs_url),
        },
        "authorization_servers": [mock.moved_to.lock().expect("lock").as_ref().map_or_else(|| mock.issuer(), |m| m.issuer())],
    });
    if let Some(scopes) = &mock.knobs.scopes_supported {
        metadata["scopes_supported"] = json!(scopes);
    }
    json_response(StatusCode::OK, metadata)
}

/// The bearer check in front of the MCP endpoint.
async fn guard(State(mock): State<Shared>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let method = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v["method"].as_str().map(str::to_string));
    let sent = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    mock.seen.lock().expect("lock").mcp.push(sent.clone());
    let issuer = mock
        .moved_to
        .lock()
        .expect("lock")
        .clone()
        .unwrap_or_else(|| mock.clone());
    let scopes = sent
        .as_deref()
        .and_then(|s| s.strip_prefix("Bearer "))
        .and_then(|t| issuer.tokens.lock().expect("lock").get(t).cloned());
    let Some(scopes) = scopes else {
        return mock.challenge(StatusCode::UNAUTHORIZED, mock.knobs.challenge_scope, None);
    };
    if method.as_deref() == Some("tools/call")
        && let Some(needed) = mock.knobs.call_scope
        && (mock.knobs.never_grant || !scopes.iter().any(|s| s == needed))
    {
        return mock.challenge(StatusCode::FORBIDDEN, Some(needed), Some("insufficient_scope"));
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// Both servers, running until dropped.
struct Running {
    mock: Shared,
    stop: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Running {
    async fn start(knobs: Knobs) -> Self {
        let as_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let rs_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mock = Arc::new(Mock {
            knobs,
            as_url: format!("http://{}", as_listener.local_addr().expect("address")),
            rs_url: format!("http://{}", rs_listener.local_addr().expect("address")),
            seen: Mutex::default(),
            tokens: Mutex::default(),
            codes: Mutex::default(),
            counter: Mutex::default(),
            moved_to: Mutex::default(),
        });
        let auth_server = Router::new()
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/register", post(register))
            .fallback(as_metadata)
            .with_state(mock.clone());
        let server = Server::builder("guarded", "1.0.0")
            .tool(tool(
                "hello",
                "Says hello",
                |_cx, _args: Nothing| async move { "hello" },
            ))
            .build();
        let legacy_server = server.clone();
        let mcp = portico_transport::http::router(move || server.connection(), HttpConfig::default())
            .merge(legacy_sse::router(
                move || legacy_server.connection(),
                LegacySseConfig::default(),
            ))
            .layer(middleware::from_fn_with_state(mock.clone(), guard));
        let resource_server = Router::new()
            .route("/.well-known/{*rest}", get(prm))
            .with_state(mock.clone())
            .merge(mcp);
        let stop = CancellationToken::new();
        tokio::spawn(serve(as_listener, auth_server, stop.clone().cancelled_owned()));
        tokio::spawn(serve(rs_listener, resource_server, stop.clone().cancelled_owned()));
        Self { mock, stop }
    }

    fn url(&self) -> String {
        format!("{}/mcp", self.mock.rs_url)
    }

    fn seen<T>(&self, read: impl FnOnce(&Seen) -> T) -> T {
        read(&self.mock.seen.lock().expect("lock"))
    }
}

fn headless() -> OAuthConfig {
    let mut config = OAuthConfig::authorization_code("oauth-test", Arc::new(HeadlessAuthorizer::new(REDIRECT)));
    config.timeout = Duration::from_secs(10);
    config
}

async fn connected(url: &str, config: OAuthConfig) -> Result<Client, ClientError> {
    let provider = OAuthProvider::new(url, config).expect("provider");
    connect_with(url, Auth::new(provider)).await
}

async fn connect_with(url: &str, auth: Auth) -> Result<Client, ClientError> {
    let http = HttpClientConfig {
        auth: Some(auth),
        ..HttpClientConfig::default()
    };
    within(
        "connect",
        Client::builder(info())
            .protocol(Protocol::Stateless)
            .connect(|service| connect(url, service, http)),
    )
    .await
}

async fn call(client: &Client) -> Result<(), ClientError> {
    within("call", client.call_tool("hello", json!({}))).await.map(drop)
}

fn info<T: serde::de::DeserializeOwned>() -> T {
    serde_json::from_value(json!({"name": "oauth-it", "version": "1"})).expect("Implementation")
}

#[tokio::test]
async fn discovery_from_the_challenge_then_registration_pkce_and_the_resource_parameter() {
    let running = Running::start(Knobs {
        scopes_supported: Some(vec!["mcp:read"]),
        ..Knobs::default()
    })
    .await;
    let url = running.url();
    let client = connected(&url, headless()).await.expect("connected");
    call(&client).await.expect("called");
    running.seen(|seen| {
        // Challenge URL first: the root PRM is never asked for.
        assert_eq!(
            seen.metadata,
            [
                "/.well-known/oauth-protected-resource/mcp",
                "/.well-known/oauth-authorization-server"
            ]
        );
        let registration = &seen.registrations[0];
        assert_eq!(registration["application_type"], "native");
        assert_eq!(registration["redirect_uris"], json!([REDIRECT]));
        assert_eq!(
            registration["grant_types"],
            json!(["authorization_code", "refresh_token"])
        );
        assert_eq!(registration["token_endpoint_auth_method"], "none");
        let authorization = &seen.authorizations[0];
        assert_eq!(authorization["code_challenge_method"], "S256");
        assert_eq!(authorization["resource"], url);
        assert_eq!(authorization["scope"], "mcp:read");
        let client_id = seen.registrations.len().to_string();
        assert!(authorization["client_id"].starts_with("dcr-") && authorization["client_id"].ends_with(&client_id));
        assert!(authorization["state"].len() >= 32);
        let (form, header) = &seen.tokens[0];
        assert_eq!(form["grant_type"], "authorization_code");
        assert_eq!(form["resource"], url);
        assert_eq!(form["client_id"], authorization["client_id"]);
        assert_eq!(header, &None);
        // The first request went without a token; every later one carried it.
        assert_eq!(seen.mcp[0], None);
        assert!(
            seen.mcp[1..]
                .iter()
                .all(|h| h.as_deref().is_some_and(|h| h.starts_with("Bearer at-")))
        );
    });
    client.close().await.expect("closed");
}

#[tokio::test]
async fn without_a_challenge_url_the_well_known_urls_are_tried_in_order() {
    let running = Running::start(Knobs {
        prm_in_challenge: false,
        prm_path: Some("/.well-known/oauth-protected-resource"),
        issuer_path: "/tenant1",
        metadata_at: MetadataAt::OpenIdAppended,
        ..Knobs::default()
    })
    .await;
    let url = running.url();
    let mut config = headless();
    config.client = None;
    // The root metadata names the origin: it covers /mcp.
    let running_origin = running.mock.rs_url.clone();
    let client = connected(&url, config).await.expect("connected");
    call(&client).await.expect("called");
    running.seen(|seen| {
        assert_eq!(
            seen.metadata,
            [
                "/.well-known/oauth-protected-resource/mcp",
                "/.well-known/oauth-protected-resource",
                "/.well-known/oauth-authorization-server/tenant1",
                "/.well-known/openid-configuration/tenant1",
                "/tenant1/.well-known/openid-configuration"
            ]
        );
        assert!(seen.authorizations[0]["resource"].starts_with(&running_origin));
        // No scope anywhere: no scope parameter.
        assert!(!seen.authorizations[0].contains_key("scope"));
    });
}

#[tokio::test]
async fn pre_registered_credentials_use_client_secret_basic_and_skip_registration() {
    let running = Running::start(Knobs {
        registration: false,
        auth_methods: vec!["client_secret_basic", "client_secret_post"],
        ..Knobs::default()
    })
    .await;
    let mut config = headless();
    config.client = Some(ClientCredentials::new("pre id", Some("s3cret".into())));
    let client = connected(&running.url(), config).await.expect("connected");
    call(&client).await.expect("called");
    running.seen(|seen| {
        assert!(seen.registrations.is_empty());
        let (form, header) = &seen.tokens[0];
        assert!(!form.contains_key("client_secret"));
        let expected = base64::engine::general_purpose::STANDARD.encode("pre+id:s3cret");
        assert_eq!(header.as_deref(), Some(format!("Basic {expected}").as_str()));
    });
}

#[tokio::test]
async fn the_client_credentials_grant_needs_no_user_agent() {
    let running = Running::start(Knobs {
        client_credentials: true,
        challenge_scope: Some("mcp:tools"),
        auth_methods: vec!["client_secret_post"],
        ..Knobs::default()
    })
    .await;
    let config = OAuthConfig::client_credentials("m2m", ClientCredentials::new("machine", Some("key".into())));
    let client = connected(&running.url(), config).await.expect("connected");
    call(&client).await.expect("called");
    running.seen(|seen| {
        assert!(seen.authorizations.is_empty());
        let (form, header) = &seen.tokens[0];
        assert_eq!(form["grant_type"], "client_credentials");
        assert_eq!(form["scope"], "mcp:tools");
        assert_eq!(form["client_secret"], "key");
        assert_eq!(header, &None);
    });
}

#[tokio::test]
async fn insufficient_scope_steps_up_with_the_union_and_is_bounded() {
    let running = Running::start(Knobs {
        challenge_scope: Some("mcp:read"),
        call_scope: Some("mcp:write"),
        ..Knobs::default()
    })
    .await;
    let client = connected(&running.url(), headless()).await.expect("connected");
    call(&client).await.expect("called after stepping up");
    running.seen(|seen| {
        let scopes: Vec<&str> = seen.authorizations.iter().map(|a| a["scope"].as_str()).collect();
        assert_eq!(scopes, ["mcp:read", "mcp:read mcp:write"]);
    });

    // A server that never grants: the call fails, after a bounded number of authorizations.
    let stubborn = Running::start(Knobs {
        challenge_scope: Some("mcp:read"),
        call_scope: Some("mcp:write"),
        never_grant: true,
        ..Knobs::default()
    })
    .await;
    let client = connected(&stubborn.url(), headless()).await.expect("connected");
    let error = call(&client).await.expect_err("refused for good");
    assert!(
        matches!(error, ClientError::Transport { .. } | ClientError::Rpc { .. }),
        "{error:?}"
    );
    stubborn.seen(|seen| assert_eq!(seen.authorizations.len(), 2, "one initial, one step-up"));
}

#[tokio::test]
async fn an_expired_token_is_refreshed_before_use() {
    let running = Running::start(Knobs {
        expires_in: 0,
        ..Knobs::default()
    })
    .await;
    let client = connected(&running.url(), headless()).await.expect("connected");
    call(&client).await.expect("called");
    call(&client).await.expect("called again");
    running.seen(|seen| {
        assert_eq!(seen.authorizations.len(), 1);
        let refreshes: Vec<_> = seen
            .tokens
            .iter()
            .filter(|(form, _)| form["grant_type"] == "refresh_token")
            .collect();
        assert!(refreshes.len() >= 2, "each use refreshed the expired token");
        assert!(refreshes.iter().all(|(form, _)| form["resource"] == running.url()));
    });
}

#[tokio::test]
async fn a_revoked_token_is_refreshed_before_authorizing_anew() {
    let running = Running::start(Knobs::default()).await;
    let client = connected(&running.url(), headless()).await.expect("connected");
    call(&client).await.expect("called");
    running.mock.tokens.lock().expect("lock").clear();
    call(&client).await.expect("called after the 401");
    running.seen(|seen| {
        assert_eq!(seen.authorizations.len(), 1, "no second visit to the user agent");
        let grants: Vec<&str> = seen
            .tokens
            .iter()
            .map(|(form, _)| form["grant_type"].as_str())
            .collect();
        assert_eq!(grants, ["authorization_code", "refresh_token"]);
    });
}

#[tokio::test]
async fn the_loopback_authorizer_waits_for_the_callback() {
    let authorizer = LoopbackAuthorizer::bind(0)
        .await
        .expect("bound")
        .timeout(Duration::from_secs(10))
        .on_url(|url| {
            // The "browser": the authorization server approves and sends it back.
            let state = url
                .query_pairs()
                .find(|(k, _)| k == "state")
                .map(|(_, v)| v.into_owned());
            let redirect = url
                .query_pairs()
                .find(|(k, _)| k == "redirect_uri")
                .map(|(_, v)| v.into_owned());
            tokio::spawn(async move {
                let redirect = redirect.expect("redirect_uri");
                let base = redirect.trim_end_matches("/callback").to_string();
                // A stray request first: answered 404 and waited past.
                let _ = reqwest::get(format!("{base}/favicon.ico")).await;
                let back = format!("{redirect}?code=c1&state={}", state.expect("state"));
                let page = reqwest::get(back).await.expect("callback answered");
                assert_eq!(page.status(), 200);
            });
        });
    let redirect_uri = authorizer.redirect_uri();
    assert!(redirect_uri.starts_with("http://127.0.0.1:") && redirect_uri.ends_with("/callback"));
    let mut url = url::Url::parse("http://as.invalid/authorize").expect("url");
    url.query_pairs_mut()
        .append_pair("state", "st")
        .append_pair("redirect_uri", &redirect_uri);
    let response = within("callback", authorizer.authorize(&url))
        .await
        .expect("called back");
    assert_eq!(response.get("code"), Some("c1"));
    assert_eq!(response.get("state"), Some("st"));
}

#[tokio::test]
async fn a_wrong_iss_is_refused_before_the_code_is_exchanged() {
    let running = Running::start(Knobs {
        iss_sent: Some(Some("http://evil.example".into())),
        ..Knobs::default()
    })
    .await;
    let error = connected(&running.url(), headless()).await.expect_err("refused");
    assert!(error.to_string().contains("RFC 9207"), "{error}");
    running.seen(|seen| {
        assert_eq!(seen.authorizations.len(), 1);
        assert!(seen.tokens.is_empty());
    });

    // Advertised but absent: refused too; neither advertised nor sent: fine.
    let missing = Running::start(Knobs {
        iss_sent: Some(None),
        ..Knobs::default()
    })
    .await;
    let provider = OAuthProvider::new(&missing.url(), headless()).expect("provider");
    assert!(matches!(
        provider.authorize().await,
        Err(AuthError::IssMismatch { found: None, .. })
    ));
    let quiet = Running::start(Knobs {
        iss_sent: Some(None),
        iss_advertised: false,
        ..Knobs::default()
    })
    .await;
    let provider = OAuthProvider::new(&quiet.url(), headless()).expect("provider");
    provider.authorize().await.expect("authorized");
}

#[tokio::test]
async fn bad_metadata_gives_typed_errors() {
    async fn authorize(knobs: Knobs) -> (AuthError, Running) {
        let running = Running::start(knobs).await;
        let provider = OAuthProvider::new(&running.url(), headless()).expect("provider");
        let error = within("authorize", provider.authorize()).await.expect_err("refused");
        (error, running)
    }
    let (error, _) = authorize(Knobs {
        issuer_override: Some("http://honest.example".into()),
        ..Knobs::default()
    })
    .await;
    assert!(
        matches!(error, AuthError::IssuerMismatch { ref found, .. } if found == "http://honest.example"),
        "{error}"
    );
    let (error, running) = authorize(Knobs {
        prm_resource: Some("http://evil.example/mcp".into()),
        ..Knobs::default()
    })
    .await;
    assert!(matches!(error, AuthError::ResourceMismatch { .. }), "{error}");
    running.seen(|seen| assert!(seen.authorizations.is_empty()));
    let (error, _) = authorize(Knobs {
        pkce: false,
        ..Knobs::default()
    })
    .await;
    assert!(matches!(error, AuthError::PkceUnsupported { .. }), "{error}");
    let (error, _) = authorize(Knobs {
        prm_path: None,
        ..Knobs::default()
    })
    .await;
    assert!(matches!(error, AuthError::NoResourceMetadata { .. }), "{error}");
    let (error, _) = authorize(Knobs {
        registration: false,
        ..Knobs::default()
    })
    .await;
    assert!(matches!(error, AuthError::NoClientIdentity { .. }), "{error}");
}

#[tokio::test]
async fn tokens_are_stored_by_resource_and_never_printed() {
    let running = Running::start(Knobs::default()).await;
    let store = Arc::new(portico_transport::http::auth::MemoryTokenStore::new());
    let mut config = headless();
    config.store = store.clone();
    let provider = OAuthProvider::new(&running.url(), config).expect("provider");
    provider.authorize().await.expect("authorized");
    let tokens = store.load(&running.url()).await.expect("load").expect("stored");
    assert!(tokens.access_token.starts_with("at-"));
    let printed = format!("{tokens:?} {provider:?}");
    assert!(!printed.contains(&tokens.access_token), "{printed}");
    assert!(!printed.contains("rt-"), "{printed}");
}

#[tokio::test]
async fn the_websocket_client_opens_with_a_token() {
    let running = Running::start(Knobs::default()).await;
    let provider = OAuthProvider::new(&running.url(), headless()).expect("provider");
    let ws_url = running.url().replacen("http://", "ws://", 1);
    let config = WsClientConfig {
        auth: Some(Auth::new(provider)),
        ..WsClientConfig::default()
    };
    let socket = within(
        "ws connect",
        ws_client::connect(&ws_url, Client::builder(info()).service(), config),
    )
    .await
    .expect("the guarded upgrade accepted the token");
    socket.shutdown().await;
    running.seen(|seen| {
        assert_eq!(seen.authorizations.len(), 1);
        assert!(
            seen.mcp
                .last()
                .is_some_and(|h| h.as_deref().is_some_and(|h| h.starts_with("Bearer ")))
        );
    });
}

#[tokio::test]
async fn a_new_authorization_server_gets_a_new_registration() {
    let first = Running::start(Knobs::default()).await;
    let second = Running::start(Knobs::default()).await;
    let client = connected(&first.url(), headless()).await.expect("connected");
    call(&client).await.expect("called");
    *first.mock.moved_to.lock().expect("lock") = Some(second.mock.clone());
    call(&client).await.expect("called after the move");
    let old_id = first.seen(|seen| {
        assert_eq!(seen.registrations.len(), 1);
        seen.authorizations[0]["client_id"].clone()
    });
    second.seen(|seen| {
        assert_eq!(seen.registrations.len(), 1, "registered anew at the new server");
        assert_eq!(seen.authorizations.len(), 1);
        assert_ne!(seen.authorizations[0]["client_id"], old_id);
        // No refresh token of the old server was offered to the new one.
        assert!(
            seen.tokens
                .iter()
                .all(|(form, _)| form["grant_type"] == "authorization_code")
        );
    });
    // Pre-registered credentials are bound to the first server: the move is refused.
    let bound = Running::start(Knobs::default()).await;
    let elsewhere = Running::start(Knobs::default()).await;
    let mut config = headless();
    config.client = Some(ClientCredentials::new("pre", None));
    let provider = Arc::new(OAuthProvider::new(&bound.url(), config).expect("provider"));
    provider.authorize().await.expect("authorized at the first server");
    *bound.mock.moved_to.lock().expect("lock") = Some(elsewhere.mock.clone());
    assert!(matches!(
        provider.authorize().await,
        Err(AuthError::CredentialsBoundElsewhere { .. })
    ));
    elsewhere.seen(|seen| assert!(seen.authorizations.is_empty()));
}

#[tokio::test]
async fn the_legacy_sse_client_carries_the_token_on_its_stream_and_posts() {
    let running = Running::start(Knobs {
        prm_path: Some("/.well-known/oauth-protected-resource"),
        prm_names_origin: true,
        ..Knobs::default()
    })
    .await;
    let sse_url = format!("{}/sse", running.mock.rs_url);
    let provider = OAuthProvider::new(&sse_url, headless()).expect("provider");
    let config = LegacySseClientConfig {
        auth: Some(Auth::new(provider)),
        ..LegacySseClientConfig::default()
    };
    let client = within(
        "legacy connect",
        Client::builder(info())
            .protocol(Protocol::Stateful("2024-11-05"))
            .connect(|service| legacy_sse_client::connect(&sse_url, service, config)),
    )
    .await
    .expect("connected");
    call(&client).await.expect("called");
    running.seen(|seen| {
        assert_eq!(seen.authorizations.len(), 1);
        assert!(
            seen.mcp.len() >= 3,
            "the stream, initialize, the call: {}",
            seen.mcp.len()
        );
        assert!(
            seen.mcp
                .iter()
                .all(|h| h.as_deref().is_some_and(|h| h.starts_with("Bearer ")))
        );
    });
}

#[tokio::test]
async fn a_known_token_endpoint_fixed_scopes_and_an_eager_grant_need_no_discovery_and_no_bare_request() {
    let running = Running::start(Knobs {
        client_credentials: true,
        auth_methods: vec!["client_secret_post"],
        ..Knobs::default()
    })
    .await;
    let mut client = ClientCredentials::new("machine", Some("key".into()));
    client.auth_method = Some(TokenEndpointAuth::ClientSecretBasic);
    let mut config = OAuthConfig::client_credentials("m2m", client);
    config.token_endpoint = Some(format!("{}/token", running.mock.as_url));
    config.scopes = Some(vec!["mcp:a".into(), "mcp:b".into()]);
    config.resource = Some("https://resource.example/mcp".into());
    config.eager = true;
    let client = connected(&running.url(), config).await.expect("connected");
    call(&client).await.expect("called");
    call(&client).await.expect("called again");
    running.seen(|seen| {
        assert!(seen.metadata.is_empty(), "no discovery: {:?}", seen.metadata);
        assert_eq!(seen.tokens.len(), 1, "one token, reused");
        let (form, header) = &seen.tokens[0];
        assert_eq!(form["grant_type"], "client_credentials");
        assert_eq!(form["scope"], "mcp:a mcp:b");
        assert_eq!(form["resource"], "https://resource.example/mcp");
        assert!(!form.contains_key("client_secret"));
        let expected = base64::engine::general_purpose::STANDARD.encode("machine:key");
        assert_eq!(header.as_deref(), Some(format!("Basic {expected}").as_str()));
        assert!(
            seen.mcp.iter().all(|h| h.as_deref() == Some("Bearer at-1")),
            "every request carried the token, the first one too: {:?}",
            seen.mcp
        );
    });
}

#[tokio::test]
async fn a_token_exchange_sends_the_subject_token_and_returns_tokens_it_does_not_keep() {
    let running = Running::start(Knobs {
        client_credentials: true,
        auth_methods: vec!["client_secret_post"],
        ..Knobs::default()
    })
    .await;
    let config = OAuthConfig::client_credentials("gateway", ClientCredentials::new("gw", Some("gw-secret".into())));
    let provider = OAuthProvider::new(&running.url(), config).expect("provider");
    let request = TokenExchange::access_token("caller-token")
        .with_audience("upstream-a")
        .with_scopes(vec!["read".into()]);
    assert!(!format!("{request:?}").contains("caller-token"), "{request:?}");
    let tokens = within("exchange", provider.exchange_token(&request))
        .await
        .expect("exchanged");
    assert_eq!(tokens.access_token, "at-1");
    assert_eq!(tokens.refresh_token, None);
    assert!(tokens.expires_at.is_some());
    let again = within("exchange", provider.exchange_token(&request))
        .await
        .expect("exchanged");
    assert_eq!(again.access_token, "at-2", "nothing is cached for a subject");
    let refused = within(
        "exchange",
        provider.exchange_token(&TokenExchange::access_token("revoked")),
    )
    .await;
    assert!(
        matches!(&refused, Err(AuthError::Endpoint { error, .. }) if error == "invalid_grant"),
        "{refused:?}"
    );
    running.seen(|seen| {
        // Discovered once, from the well-known URLs.
        assert_eq!(
            seen.metadata,
            [
                "/.well-known/oauth-protected-resource/mcp",
                "/.well-known/oauth-authorization-server"
            ]
        );
        let (form, header) = &seen.tokens[0];
        assert_eq!(form["grant_type"], TokenExchange::GRANT_TYPE);
        assert_eq!(form["subject_token"], "caller-token");
        assert_eq!(form["subject_token_type"], TokenExchange::ACCESS_TOKEN);
        assert_eq!(form["requested_token_type"], TokenExchange::ACCESS_TOKEN);
        assert_eq!(form["audience"], "upstream-a");
        assert_eq!(form["scope"], "read");
        assert_eq!(form["resource"], running.url());
        assert_eq!(form["client_id"], "gw");
        assert_eq!(form["client_secret"], "gw-secret");
        assert_eq!(header, &None);
    });
    // Nothing was stored for the endpoint: its own requests still have no token.
    assert_eq!(
        within(
            "authorization",
            portico_transport::http::auth::AuthProvider::authorization(&provider)
        )
        .await
        .expect("no error"),
        None
    );
}

#[tokio::test]
async fn a_request_s_own_credentials_replace_the_connection_s_for_it_alone() {
    let running = Running::start(Knobs::default()).await;
    for token in ["connection-token", "caller-token"] {
        running
            .mock
            .tokens
            .lock()
            .expect("lock")
            .insert(token.into(), Vec::new());
    }
    let client = connect_with(&running.url(), Auth::bearer("connection-token").expect("auth"))
        .await
        .expect("connected");
    let before = running.seen(|seen| seen.mcp.len());
    let own = RequestOptions::new().extension(Auth::bearer("caller-token").expect("auth"));
    within("a call", client.call_tool_with("hello", json!({}), &own))
        .await
        .expect("called with the caller's token");
    call(&client).await.expect("called with the connection's");
    // A refused token of the request's is not replaced by the connection's.
    let wrong = RequestOptions::new().extension(Auth::bearer("unknown-token").expect("auth"));
    let refused = within("a refused call", client.call_tool_with("hello", json!({}), &wrong)).await;
    assert!(
        matches!(&refused, Err(ClientError::Transport { status: Some(401), .. })),
        "{refused:?}"
    );
    running.seen(|seen| {
        let sent: Vec<&str> = seen.mcp[before..].iter().map(|h| h.as_deref().unwrap_or("")).collect();
        assert_eq!(
            sent,
            ["Bearer caller-token", "Bearer connection-token", "Bearer unknown-token"]
        );
    });
}
