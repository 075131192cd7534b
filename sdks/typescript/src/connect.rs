//! Connecting: what JavaScript asked for (a target and options, as JSON) turned into a
//! transport, an era choice, limits, credentials and a handler for the client core.

use std::sync::Arc;
use std::time::Duration;

use portico_core::client::{Client, ClientBuilder, ClientConfig, ClientError, Protocol};
use portico_core::server::{STATEFUL_REVISIONS, STATELESS_REVISION};
use portico_protocol::v2026_07_28 as wire;
use portico_transport::http::auth::{Auth, ClientCredentials, HeadlessAuthorizer, OAuthConfig, OAuthProvider};
use portico_transport::http::tls::TlsConfig;
use portico_transport::http::{client as http, legacy_sse_client as sse, ws_client as ws};
use portico_transport::stdio;
use serde_json::Value;

use crate::bridge::{Bridge, JsHandler};
use crate::error;

/// What to connect to (normalized by `lib/client.cjs`).
pub enum Target {
    /// Streamable HTTP.
    Http(String),
    /// WebSocket (subprotocol `mcp`).
    Ws(String),
    /// The legacy HTTP+SSE transport (2024-11-05).
    Sse(String),
    /// A child process speaking over its stdin and stdout.
    Stdio {
        command: String,
        args: Vec<String>,
        env: Vec<(String, String)>,
        cwd: Option<String>,
    },
}

impl Target {
    pub fn parse(target: &Value) -> napi::Result<Self> {
        let text = |key: &str| target.get(key).and_then(Value::as_str).map(str::to_string);
        let url = || text("url").ok_or_else(|| error::other("invalidArgument", "the target has no url"));
        match target.get("transport").and_then(Value::as_str) {
            Some("http") => Ok(Self::Http(url()?)),
            Some("ws") => Ok(Self::Ws(url()?)),
            Some("sse") => Ok(Self::Sse(url()?)),
            Some("stdio") => Ok(Self::Stdio {
                command: text("command")
                    .ok_or_else(|| error::other("invalidArgument", "the stdio target has no command"))?,
                args: strings(target.get("args")),
                env: target
                    .get("env")
                    .and_then(Value::as_object)
                    .map(|env| {
                        env.iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                            .collect()
                    })
                    .unwrap_or_default(),
                cwd: text("cwd"),
            }),
            other => Err(error::other(
                "invalidArgument",
                format!("unknown transport {other:?} (http, ws, sse or stdio)"),
            )),
        }
    }

    /// Whether OAuth and bearer tokens apply (the HTTP transports).
    fn url(&self) -> Option<&str> {
        match self {
            Self::Http(url) | Self::Ws(url) | Self::Sse(url) => Some(url),
            Self::Stdio { .. } => None,
        }
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

fn millis(options: &Value, key: &str) -> Option<Duration> {
    options
        .get(key)
        .and_then(Value::as_f64)
        .filter(|ms| *ms >= 0.0)
        .map(|ms| Duration::from_millis(ms as u64))
}

/// The era `options.protocol` names: `"auto"` (default), `"stateless"` (or `"2026-07-28"`), or a
/// stateful revision.
fn protocol(options: &Value) -> napi::Result<Protocol> {
    match options.get("protocol").and_then(Value::as_str) {
        None | Some("auto") => Ok(Protocol::Auto),
        Some("stateless") => Ok(Protocol::Stateless),
        Some(revision) if revision == STATELESS_REVISION => Ok(Protocol::Stateless),
        Some(revision) => STATEFUL_REVISIONS
            .iter()
            .find(|r| **r == revision)
            .map(|r| Protocol::Stateful(r))
            .ok_or_else(|| {
                error::other(
                    "invalidArgument",
                    format!(
                        "unknown protocol {revision:?}: \"auto\", \"stateless\", {STATELESS_REVISION} or one of {}",
                        STATEFUL_REVISIONS.join(", ")
                    ),
                )
            }),
    }
}

/// `options.auth`: `{type: "bearer", token}` or `{type: "oauth", grant, …}` (see the README).
fn auth(options: &Value, url: &str) -> napi::Result<Option<Auth>> {
    let Some(auth) = options.get("auth").filter(|a| !a.is_null()) else {
        return Ok(None);
    };
    let text = |key: &str| auth.get(key).and_then(Value::as_str).map(str::to_string);
    let invalid = |e: &dyn std::fmt::Display| error::other("invalidArgument", format!("options.auth: {e}"));
    match text("type").as_deref() {
        Some("bearer") => {
            let token = text("token").ok_or_else(|| invalid(&"a bearer auth needs a token"))?;
            Auth::bearer(token).map(Some).map_err(|e| invalid(&e))
        }
        Some("oauth") => {
            let client_name = text("clientName").unwrap_or_else(|| "portico-node".into());
            let credentials = text("clientId").map(|id| ClientCredentials::new(id, text("clientSecret")));
            let mut config = match text("grant").as_deref() {
                Some("client_credentials") => {
                    let client =
                        credentials.ok_or_else(|| invalid(&"the client_credentials grant needs a clientId"))?;
                    OAuthConfig::client_credentials(client_name, client)
                }
                None | Some("authorization_code") => {
                    let redirect = text("redirectUri").unwrap_or_else(|| "http://localhost:3000/callback".into());
                    let mut config =
                        OAuthConfig::authorization_code(client_name, Arc::new(HeadlessAuthorizer::new(redirect)));
                    config.client = credentials;
                    config
                }
                Some(other) => return Err(invalid(&format!("unknown grant {other:?}"))),
            };
            config.client_metadata_url = text("clientMetadataUrl");
            if let Some(on) = auth.get("legacyDiscovery").and_then(Value::as_bool) {
                config.legacy_discovery = on;
            }
            if let Some(on) = auth.get("dynamicRegistration").and_then(Value::as_bool) {
                config.dynamic_registration = on;
            }
            let provider = OAuthProvider::new(url, config).map_err(|e| invalid(&e))?;
            Ok(Some(Auth::new(provider)))
        }
        other => Err(invalid(&format!("unknown auth type {other:?} (bearer or oauth)"))),
    }
}

/// The capabilities to declare: `options.capabilities` when given, else one per handler named
/// in `options.handlers` (`sampling`, `elicitation` with form and URL modes, `roots`).
fn capabilities(options: &Value) -> napi::Result<wire::ClientCapabilities> {
    if let Some(explicit) = options.get("capabilities").filter(|c| !c.is_null()) {
        return serde_json::from_value(explicit.clone())
            .map_err(|e| error::other("invalidArgument", format!("options.capabilities: {e}")));
    }
    let mut declared = serde_json::Map::new();
    for handler in strings(options.get("handlers")) {
        let capability = match handler.as_str() {
            "sampling" => serde_json::json!({}),
            "elicitation" => serde_json::json!({"form": {}, "url": {}}),
            "roots" => serde_json::json!({}),
            _ => continue,
        };
        declared.insert(handler, capability);
    }
    serde_json::from_value(Value::Object(declared)).map_err(|e| error::other("invalidArgument", e.to_string()))
}

/// Connects to `target` as `options` say, answering the server's questions through `bridge`.
pub async fn connect(target: Target, options: &Value, bridge: Arc<Bridge>) -> napi::Result<Client> {
    let info = options.get("clientInfo");
    let name = info
        .and_then(|i| i.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("portico-node");
    let version = info
        .and_then(|i| i.get("version"))
        .and_then(Value::as_str)
        .unwrap_or(env!("CARGO_PKG_VERSION"));
    let mut config = ClientConfig::default();
    if let Some(timeout) = millis(options, "requestTimeoutMs") {
        config.request_timeout = timeout;
    }
    if let Some(timeout) = millis(options, "probeTimeoutMs") {
        config.probe_timeout = timeout;
    }
    let handler = JsHandler {
        capabilities: capabilities(options)?,
        bridge,
    };
    let builder = Client::builder(wire::Implementation::new(name, version))
        .handler(handler)
        .protocol(protocol(options)?)
        .config(config);
    let auth = match target.url() {
        Some(url) => auth(options, url)?,
        None => None,
    };
    let mut tls = TlsConfig::default();
    for pem in strings(options.get("tls").and_then(|t| t.get("rootCertificates"))) {
        tls = tls.with_root_pem(pem);
    }
    let connected = open(builder, target, auth, tls).await;
    connected.map_err(error::to_js)
}

async fn open(
    builder: ClientBuilder,
    target: Target,
    auth: Option<Auth>,
    tls: TlsConfig,
) -> Result<Client, ClientError> {
    match target {
        Target::Http(url) => {
            let config = http::HttpClientConfig {
                auth,
                tls,
                ..Default::default()
            };
            builder.connect(|service| http::connect(&url, service, config)).await
        }
        Target::Ws(url) => {
            let config = ws::WsClientConfig {
                auth,
                tls,
                ..Default::default()
            };
            builder.connect(|service| ws::connect(&url, service, config)).await
        }
        Target::Sse(url) => {
            let config = sse::LegacySseClientConfig {
                auth,
                tls,
                ..Default::default()
            };
            builder.connect(|service| sse::connect(&url, service, config)).await
        }
        Target::Stdio {
            command,
            args,
            env,
            cwd,
        } => {
            let mut child = tokio::process::Command::new(command);
            child.args(args).envs(env);
            if let Some(cwd) = cwd {
                child.current_dir(cwd);
            }
            builder
                .connect(|service| async move { stdio::spawn(&mut child, service, Default::default()).await })
                .await
        }
    }
}
