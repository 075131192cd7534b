//! The gateway end to end, in process: a [`Gateway`] on a 127.0.0.1 listener in front of real
//! upstreams (the built-in `everything` server in process, and `everything` on its own
//! Streamable HTTP listener), driven by Portico's client core as a 2025-11-25 session client
//! and as a 2026-07-28 client.

mod apikeys;
mod audit;
mod auth;
mod bridging;
mod cache;
mod credentials;
mod docs;
mod failures;
mod flows;
mod fuzz;
mod limits;
mod observability;
mod plugins;
mod rbac;
mod reload;
mod replicas;
mod routing;
mod tasks;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use portico_core::ErrorObject;
use portico_core::client::{Client, ClientError, ClientHandler, InputContext, Protocol};
use portico_gateway::Gateway;
use portico_gateway::config::Config;
use portico_protocol::v2026_07_28 as wire;
use portico_transport::http::client::{HttpClientConfig, connect};
use portico_transport::http::{HttpConfig, StreamableHttp};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// How long one wait may take before the test fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(20);

async fn within<F: std::future::Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {PATIENCE:?}"))
}

/// A gateway serving on a free local port.
struct Running {
    /// `http://127.0.0.1:PORT`.
    base: String,
    gateway: Gateway,
    /// The state store file made for it alone, removed with it.
    own_state: Option<std::path::PathBuf>,
}

impl Running {
    /// Starts a gateway for the YAML configuration `yaml`.
    async fn start(yaml: &str) -> Self {
        Self::serve(Config::parse(yaml, false).expect("a valid test config")).await
    }

    /// Starts a gateway for the configuration file at `path`.
    async fn start_file(path: &std::path::Path) -> Self {
        Self::serve(Config::load(path).expect("a valid test config")).await
    }

    async fn serve(config: Config) -> Self {
        Self::serve_with(config, portico_gateway::plugin::PluginRegistry::new()).await
    }

    /// Starts a gateway for `config` whose plugins may name the kinds of `registry`.
    async fn serve_with(mut config: Config, registry: portico_gateway::plugin::PluginRegistry) -> Self {
        // The tests' own reqwest clients need the process's rustls provider, which the
        // gateway installs only when it builds an HTTP client of its own (not for a built-in
        // upstream): installed here, so no test depends on another having run first.
        portico_transport::http::tls::install_provider();
        // A state store of its own, unless the test shares one on purpose.
        let mut own_state = None;
        if config.state == portico_gateway::config::StateConfig::default() {
            let path = temp_path("state.db");
            config.state.url = format!("sqlite://{}", path.display());
            own_state = Some(path);
        }
        let gateway = Gateway::start_with(config, Duration::from_secs(10), registry)
            .await
            .expect("the gateway starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        // As `portico gateway` serves it: MCP POSTs unrouted (`Gateway::service`).
        let app = gateway.service();
        let shutdown = gateway.shutdown_token();
        tokio::spawn(portico_transport::http::serve_service(
            listener,
            app,
            shutdown.cancelled_owned(),
        ));
        Self {
            base,
            gateway,
            own_state,
        }
    }

    /// A client of the endpoint at `path` speaking `protocol`, answering questions with `handler`.
    async fn client(&self, path: &str, protocol: Protocol, handler: impl ClientHandler) -> Client {
        let url = format!("{}{path}", self.base);
        within(
            "connecting to the gateway",
            Client::builder(wire::Implementation::new("gateway-test", "1.0.0"))
                .handler(handler)
                .protocol(protocol)
                .connect(|service| connect(&url, service, HttpClientConfig::default())),
        )
        .await
        .expect("connecting to the gateway")
    }

    /// A 2026-07-28 `tools/call` of `tool` with `arguments`, POSTed to `path` with
    /// `authorization` (none: no header): the status and the JSON body.
    async fn post_tool_call(
        &self,
        path: &str,
        authorization: Option<&str>,
        tool: &str,
        arguments: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        self.post_tool_call_with(path, authorization, tool, arguments, &[])
            .await
    }

    /// [`Running::post_tool_call`] with the extra `headers`.
    async fn post_tool_call_with(
        &self,
        path: &str,
        authorization: Option<&str>,
        tool: &str,
        arguments: serde_json::Value,
        headers: &[(&str, &str)],
    ) -> (u16, serde_json::Value) {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments,
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}});
        let mut request = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", tool)
            .body(body.to_string());
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("sent");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
        )
    }

    /// `GET path` on the gateway: status and JSON body.
    async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let response = reqwest::get(format!("{}{path}", self.base)).await.expect("GET");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}")),
        )
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.gateway.shutdown();
        if let Some(path) = &self.own_state {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
    }
}

/// A path in the temporary directory unique in this test run.
fn temp_path(name: &str) -> std::path::PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("portico-gateway-it-{}-{n}-{name}", std::process::id()))
}

/// The session revision the tests speak.
const SESSION: Protocol = Protocol::Stateful("2025-11-25");

/// `everything` on a Streamable HTTP listener of its own, for upstreams reached over HTTP.
struct HttpEverything {
    url: String,
    shutdown: CancellationToken,
}

impl HttpEverything {
    async fn start() -> Self {
        Self::traced(None).await
    }

    /// With its requests traced to `exporter`.
    async fn traced(exporter: Option<portico_transport::otel::Exporter>) -> Self {
        let server = portico_everything::server();
        let config = HttpConfig::default();
        let shutdown = config.shutdown.clone();
        let app = StreamableHttp::new(
            move || portico_transport::otel::Traced::new(server.connection(), exporter.clone()),
            config,
        )
        .router();
        let url = serve_mcp(app, &shutdown).await;
        Self { url, shutdown }
    }
}

/// Serves `app` (an MCP endpoint at `/mcp`) on a free local port until `shutdown`; its URL.
async fn serve_mcp(app: axum::Router, shutdown: &CancellationToken) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding");
    let url = format!("http://{}/mcp", listener.local_addr().expect("address"));
    tokio::spawn(portico_transport::http::serve(
        listener,
        app,
        shutdown.clone().cancelled_owned(),
    ));
    url
}

impl Drop for HttpEverything {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A client that answers every question, counting them.
#[derive(Clone, Default)]
struct Answers {
    asked: Arc<AtomicUsize>,
}

impl Answers {
    fn asked(&self) -> usize {
        self.asked.load(Ordering::SeqCst)
    }
}

impl ClientHandler for Answers {
    fn capabilities(&self) -> wire::ClientCapabilities {
        serde_json::from_value(json!({"sampling": {}, "elicitation": {"form": {}}, "roots": {}})).expect("caps")
    }

    async fn create_message(
        &self,
        _params: wire::CreateMessageRequestParams,
        _cx: InputContext,
    ) -> Result<wire::CreateMessageResult, ErrorObject> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        Ok(wire::CreateMessageResult::new(
            wire::TextContent::new("a sampled answer").into(),
            "test-model",
            wire::Role::Assistant,
        ))
    }

    async fn elicit(
        &self,
        _params: wire::ElicitRequestParams,
        _cx: InputContext,
    ) -> Result<wire::ElicitResult, ErrorObject> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        Ok(serde_json::from_value(
            json!({"action": "accept", "content": {"name": "Ada", "username": "ada", "email": "ada@example.com"}}),
        )
        .expect("answer"))
    }

    async fn list_roots(&self, _cx: InputContext) -> Result<wire::ListRootsResult, ErrorObject> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        Ok(wire::ListRootsResult::new(vec![wire::Root::new("file:///work")]))
    }
}

/// The text of a result's first content block.
fn text(result: &wire::CallToolResult) -> String {
    match result.content.first() {
        Some(wire::ContentBlock::Text(text)) => text.text.clone(),
        other => panic!("expected a text block, got {other:?}"),
    }
}

/// The JSON-RPC error of a failed call.
fn rpc_error(error: ClientError) -> ErrorObject {
    match error {
        ClientError::Rpc { error, .. } => error,
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
}

/// A TCP proxy to a service (Redis, PostgreSQL) that a test takes down and brings back: while
/// down it closes every connection, open or new.
struct Proxy {
    /// `127.0.0.1:PORT`: where to connect instead of the service.
    address: String,
    up: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// A proxy to `target` (`host:port`).
    async fn start(target: &str) -> Self {
        let target = target.to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding");
        let address = listener.local_addr().expect("address").to_string();
        let up = Arc::new(AtomicBool::new(true));
        let connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (for_accept, for_tasks) = (up.clone(), connections.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !for_accept.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                for_tasks.lock().expect("connections").push(task.abort_handle());
            }
        });
        Self {
            address,
            up,
            connections,
            accept,
        }
    }

    /// A proxy to the Redis at `redis` (`redis://[auth@]host:port[/db]`), and the URL that
    /// reaches it through the proxy.
    async fn for_redis(redis: &str) -> (Self, String) {
        let rest = redis.trim_start_matches("redis://");
        let server = rest.split('/').next().unwrap_or_default();
        let (auth, host) = match server.rsplit_once('@') {
            Some((auth, host)) => (format!("{auth}@"), host),
            None => (String::new(), server),
        };
        let proxy = Self::start(host).await;
        let url = format!("redis://{auth}{}", proxy.address);
        (proxy, url)
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        for connection in self.connections.lock().expect("connections").drain(..) {
            connection.abort();
        }
    }

    fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.down();
        self.accept.abort();
    }
}
