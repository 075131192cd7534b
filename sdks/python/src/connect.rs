//! `connect(kind, target, options_json, dispatch)`: a transport and the client on it.
//!
//! `kind` is `"http"` (Streamable HTTP), `"ws"` (WebSocket), `"sse"` (legacy HTTP+SSE) or
//! `"stdio"` (spawn `target`, a command line as a list). The options are JSON made by
//! `portico.client` (see [`Options`]); unknown members are refused so the two sides cannot
//! drift apart silently.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use portico_core::client::{Client, ClientBuilder, ClientConfig, Protocol};
use portico_core::server::{STATEFUL_REVISIONS, STATELESS_REVISION};
use portico_protocol::v2026_07_28 as wire;
use portico_transport::http::auth::{Auth, ClientCredentials, HeadlessAuthorizer, OAuthConfig, OAuthProvider};
use portico_transport::http::client::HttpClientConfig;
use portico_transport::http::legacy_sse_client::LegacySseClientConfig;
use portico_transport::http::ws_client::WsClientConfig;
use portico_transport::http::{legacy_sse_client, ws_client};
use portico_transport::stdio::{self, StdioConfig};
use pyo3::prelude::*;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;

use crate::client::NativeClient;
use crate::errors;
use crate::handler::PyHandler;

/// What `portico.client.Client` asks for.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Options {
    client_name: Option<String>,
    client_version: Option<String>,
    /// `"auto"` (default), `"2026-07-28"` or a stateful revision.
    protocol: Option<String>,
    /// Seconds.
    request_timeout: Option<f64>,
    /// Seconds.
    probe_timeout: Option<f64>,
    /// Seconds.
    connect_timeout: Option<f64>,
    capabilities: Option<serde_json::Value>,
    headers: BTreeMap<String, String>,
    env: Option<BTreeMap<String, String>>,
    cwd: Option<String>,
    auth: Option<AuthOptions>,
    validate_output: Option<bool>,
    renew_sessions: Option<bool>,
    notification_capacity: Option<usize>,
    max_concurrent_requests: Option<usize>,
    max_input_rounds: Option<usize>,
}

/// How HTTP requests are authorized.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum AuthOptions {
    /// A fixed bearer token.
    Bearer { token: String },
    /// The OAuth 2.1 client of the MCP authorization spec.
    Oauth(OAuthOptions),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OAuthOptions {
    client_name: String,
    /// `"authorization_code"` (a headless user agent) or `"client_credentials"`.
    grant: String,
    redirect_uri: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    client_metadata_url: Option<String>,
    dynamic_registration: Option<bool>,
    offline_access: Option<bool>,
    legacy_discovery: Option<bool>,
}

fn seconds(what: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| errors::usage(format!("{what} must be a positive number of seconds, got {value}")))
}

impl Options {
    fn protocol(&self) -> PyResult<Protocol> {
        match self.protocol.as_deref() {
            None | Some("auto") => Ok(Protocol::Auto),
            Some(STATELESS_REVISION) => Ok(Protocol::Stateless),
            Some(other) => STATEFUL_REVISIONS
                .iter()
                .find(|r| **r == other)
                .map(|r| Protocol::Stateful(r))
                .ok_or_else(|| {
                    errors::usage(format!(
                        "protocol {other:?} is not one this client speaks: \"auto\", {STATELESS_REVISION:?}, or one of {STATEFUL_REVISIONS:?}"
                    ))
                }),
        }
    }

    fn config(&self) -> PyResult<ClientConfig> {
        let mut config = ClientConfig::default();
        if let Some(t) = self.request_timeout {
            config.request_timeout = seconds("timeout", t)?;
        }
        if let Some(t) = self.probe_timeout {
            config.probe_timeout = seconds("probe_timeout", t)?;
        }
        if let Some(v) = self.validate_output {
            config.validate_output = v;
        }
        if let Some(v) = self.renew_sessions {
            config.renew_sessions = v;
        }
        if let Some(v) = self.notification_capacity {
            config.notification_capacity = v;
        }
        if let Some(v) = self.max_input_rounds {
            config.max_input_rounds = v;
        }
        Ok(config)
    }

    fn headers(&self) -> PyResult<HeaderMap> {
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| errors::usage(format!("header name {name:?}: {e}")))?;
            let value = HeaderValue::from_str(value).map_err(|e| errors::usage(format!("header {name}: {e}")))?;
            headers.insert(name, value);
        }
        Ok(headers)
    }

    fn auth(&self, url: &str) -> PyResult<Option<Auth>> {
        let Some(auth) = &self.auth else { return Ok(None) };
        let auth = match auth {
            AuthOptions::Bearer { token } => Auth::bearer(token.as_str()).map_err(|e| errors::usage(e.to_string()))?,
            AuthOptions::Oauth(o) => {
                let credentials = o
                    .client_id
                    .as_ref()
                    .map(|id| ClientCredentials::new(id, o.client_secret.clone()));
                let mut config = match o.grant.as_str() {
                    "client_credentials" => {
                        let client = credentials
                            .ok_or_else(|| errors::usage("the client_credentials grant needs a client_id"))?;
                        OAuthConfig::client_credentials(&o.client_name, client)
                    }
                    "authorization_code" => {
                        let redirect = o
                            .redirect_uri
                            .clone()
                            .unwrap_or_else(|| "http://localhost:3000/callback".into());
                        let mut config = OAuthConfig::authorization_code(
                            &o.client_name,
                            Arc::new(HeadlessAuthorizer::new(redirect)),
                        );
                        config.client = credentials;
                        config
                    }
                    other => return Err(errors::usage(format!("unknown OAuth grant {other:?}"))),
                };
                config.client_metadata_url = o.client_metadata_url.clone();
                if let Some(v) = o.dynamic_registration {
                    config.dynamic_registration = v;
                }
                if let Some(v) = o.offline_access {
                    config.offline_access = v;
                }
                if let Some(v) = o.legacy_discovery {
                    config.legacy_discovery = v;
                }
                Auth::new(OAuthProvider::new(url, config).map_err(|e| errors::usage(e.to_string()))?)
            }
        };
        Ok(Some(auth))
    }
}

/// Connects: `kind` names the transport, `target` is `[url]` or the command line to spawn.
/// Resolves to a `NativeClient`; fails with a `portico.errors` exception.
#[pyfunction]
#[pyo3(signature = (kind, target, options_json, dispatch=None))]
pub(crate) fn connect<'py>(
    py: Python<'py>,
    kind: String,
    target: Vec<String>,
    options_json: &str,
    dispatch: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let options: Options =
        serde_json::from_str(options_json).map_err(|e| errors::usage(format!("client options: {e}")))?;
    let capabilities: wire::ClientCapabilities = match &options.capabilities {
        Some(caps) => serde_json::from_value(caps.clone()).map_err(|e| errors::usage(format!("capabilities: {e}")))?,
        None => wire::ClientCapabilities::new(),
    };
    let locals = pyo3_async_runtimes::tokio::get_current_locals(py)?;
    let handler = PyHandler {
        dispatch,
        capabilities,
        locals,
    };
    let config = options.config()?;
    let progress_capacity = config.notification_capacity;
    let info = wire::Implementation::new(
        options.client_name.clone().unwrap_or_else(|| "portico-python".into()),
        options
            .client_version
            .clone()
            .unwrap_or_else(|| env!("CARGO_PKG_VERSION").into()),
    );
    let builder = Client::builder(info)
        .handler(handler)
        .protocol(options.protocol()?)
        .config(config);
    let first = target
        .first()
        .cloned()
        .ok_or_else(|| errors::usage("no URL or command given"))?;
    let transport = match kind.as_str() {
        "http" => {
            let mut config = HttpClientConfig {
                headers: options.headers()?,
                auth: options.auth(&first)?,
                ..HttpClientConfig::default()
            };
            if let Some(n) = options.max_concurrent_requests {
                config.max_concurrent_requests = n;
            }
            if let Some(t) = options.connect_timeout {
                config.connect_timeout = seconds("connect_timeout", t)?;
            }
            Transport::Http(first, config)
        }
        "ws" => {
            let mut config = WsClientConfig {
                headers: options.headers()?,
                auth: options.auth(&first)?,
                ..WsClientConfig::default()
            };
            if let Some(t) = options.connect_timeout {
                config.connect_timeout = seconds("connect_timeout", t)?;
            }
            Transport::Ws(first, config)
        }
        "sse" => {
            let mut config = LegacySseClientConfig {
                headers: options.headers()?,
                auth: options.auth(&first)?,
                ..LegacySseClientConfig::default()
            };
            if let Some(t) = options.connect_timeout {
                config.connect_timeout = seconds("connect_timeout", t)?;
            }
            Transport::Sse(first, config)
        }
        "stdio" => {
            let mut command = tokio::process::Command::new(&first);
            command.args(&target[1..]);
            if let Some(env) = &options.env {
                command.envs(env);
            }
            if let Some(cwd) = &options.cwd {
                command.current_dir(cwd);
            }
            Transport::Stdio(command)
        }
        other => return Err(errors::usage(format!("unknown transport {other:?}"))),
    };
    let in_flight = crate::InFlight::start();
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        let _in_flight = in_flight;
        let client = transport.connect(builder).await.map_err(errors::connecting)?;
        Ok(NativeClient::new(client, progress_capacity))
    })
}

enum Transport {
    Http(String, HttpClientConfig),
    Ws(String, WsClientConfig),
    Sse(String, LegacySseClientConfig),
    Stdio(tokio::process::Command),
}

impl Transport {
    async fn connect(self, builder: ClientBuilder) -> Result<Client, portico_core::client::ClientError> {
        match self {
            Self::Http(url, config) => {
                builder
                    .connect(
                        |service| async move { portico_transport::http::client::connect(&url, service, config).await },
                    )
                    .await
            }
            Self::Ws(url, config) => {
                builder
                    .connect(|service| async move { ws_client::connect(&url, service, config).await })
                    .await
            }
            Self::Sse(url, config) => {
                builder
                    .connect(|service| async move { legacy_sse_client::connect(&url, service, config).await })
                    .await
            }
            Self::Stdio(mut command) => {
                builder
                    .connect(|service| async move { stdio::spawn(&mut command, service, StdioConfig::default()).await })
                    .await
            }
        }
    }
}
