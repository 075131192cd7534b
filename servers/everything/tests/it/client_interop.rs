//! Portico's client core against the fixtures server, over real transports: Streamable HTTP
//! (the server's router on 127.0.0.1, the client's `http::client`), WebSocket and legacy HTTP+SSE
//! (on the same listener, the clients' `ws_client` and `legacy_sse_client`) and stdio (the
//! server end of the stdio transport over in-memory pipes), in both generations — 2026-07-28 (stateless,
//! `input_required` rounds) and 2025-11-25 sessions (real server→client requests, the GET stream,
//! resumable response streams). Every scenario is the same list/call/read/get/listen run; the
//! transport-specific checks (`Mcp-Param-*` headers, `Last-Event-ID` resumption, an expired
//! session) follow.

use std::time::Duration;

use portico_core::client::{
    Client, ClientConfig, ClientHandler, ClientService, ClientTransport, InputContext, Notification, Protocol,
    RequestOptions,
};
use portico_core::server::{Change, Era, Server};
use portico_core::{ErrorObject, OutboundKind, Peer, PeerConfig, PeerHandle};
use portico_protocol::v2026_07_28 as wire;
use portico_transport::http::client::{HttpClientConfig, connect};
use portico_transport::http::legacy_sse::{self, LegacySseConfig};
use portico_transport::http::legacy_sse_client::{self, LegacySseClientConfig};
use portico_transport::http::ws_client::{self, WsClientConfig};
use portico_transport::http::{self, HttpConfig, StreamableHttp};
use portico_transport::stdio::{self, StdioConfig};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long one wait may take before the test fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(20);

async fn within<F: std::future::Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {PATIENCE:?}"))
}

/// A client that answers every input request and declares every capability.
struct Answers;

impl ClientHandler for Answers {
    fn capabilities(&self) -> wire::ClientCapabilities {
        serde_json::from_value(json!({"sampling": {}, "elicitation": {"form": {}}, "roots": {}})).expect("caps")
    }

    async fn create_message(
        &self,
        _params: wire::CreateMessageRequestParams,
        _cx: InputContext,
    ) -> Result<wire::CreateMessageResult, ErrorObject> {
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
        Ok(serde_json::from_value(
            json!({"action": "accept", "content": {"username": "ada", "email": "ada@example.com"}}),
        )
        .expect("answer"))
    }

    async fn list_roots(&self, _cx: InputContext) -> Result<wire::ListRootsResult, ErrorObject> {
        Ok(wire::ListRootsResult::new(vec![wire::Root::new("file:///work")]))
    }
}

/// The fixtures server on a Streamable HTTP listener.
struct HttpServer {
    url: String,
    endpoint: StreamableHttp,
    shutdown: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

impl HttpServer {
    async fn start(server: &Server) -> Self {
        let config = HttpConfig {
            // Resumed streams come back quickly.
            sse_retry: Duration::from_millis(20),
            ..HttpConfig::default()
        };
        let shutdown = config.shutdown.clone();
        let s = server.clone();
        let legacy = LegacySseConfig::from_http(&config);
        let endpoint = StreamableHttp::new(move || s.connection(), config);
        let l = server.clone();
        // Streamable HTTP and WebSocket at /mcp, legacy HTTP+SSE at /sse, on one listener.
        let app = endpoint
            .router()
            .merge(legacy_sse::router(move || l.connection(), legacy));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let task = tokio::spawn(http::serve(listener, app, shutdown.clone().cancelled_owned()));
        Self {
            url: format!("http://{addr}/mcp"),
            endpoint,
            shutdown,
            task,
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.task.abort();
    }
}

/// The client's end of a stdio connection over in-memory pipes: lines in, lines out, the
/// server end run by `stdio::serve`.
struct PipeStdio {
    peer: Peer<ClientService>,
    tasks: Vec<JoinHandle<()>>,
}

impl PipeStdio {
    fn connect(server: &Server, service: ClientService) -> Self {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let (server_read, server_write) = tokio::io::split(server_io);
        let connection = server.connection();
        let serve = tokio::spawn(async move {
            let _ = stdio::serve(server_read, server_write, connection, StdioConfig::default()).await;
        });
        let (client_read, mut client_write) = tokio::io::split(client_io);
        let (tx, mut rx) = mpsc::channel(64);
        let peer = Peer::new(service, PeerConfig::default(), tx);
        let write = tokio::spawn(async move {
            while let Some(out) = rx.recv().await {
                if out.kind == OutboundKind::Message
                    && client_write
                        .write_all(format!("{}\n", out.text).as_bytes())
                        .await
                        .is_err()
                {
                    break;
                }
            }
        });
        let read = tokio::spawn({
            let peer = peer.clone();
            async move {
                let mut lines = BufReader::new(client_read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    peer.receive(&line).await;
                }
                peer.close();
            }
        });
        Self {
            peer,
            tasks: vec![serve, write, read],
        }
    }
}

impl Drop for PipeStdio {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        self.peer.close();
    }
}

impl ClientTransport for PipeStdio {
    fn handle(&self) -> PeerHandle {
        self.peer.handle().clone()
    }

    fn close(self: Box<Self>) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send>> {
        drop(self);
        Box::pin(async { Ok(()) })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carrier {
    Http,
    Stdio,
    WebSocket,
    LegacySse,
}

const PROTOCOLS: [Protocol; 3] = [Protocol::Stateless, Protocol::Stateful("2025-11-25"), Protocol::Auto];

fn http_config() -> HttpClientConfig {
    HttpClientConfig {
        default_retry: Duration::from_millis(20),
        ..HttpClientConfig::default()
    }
}

async fn client(carrier: Carrier, server: &Server, http: &HttpServer, protocol: Protocol) -> Client {
    let builder = Client::builder(wire::Implementation::new("interop", "1.0.0"))
        .handler(Answers)
        .protocol(protocol)
        .config(ClientConfig {
            request_timeout: PATIENCE,
            ..ClientConfig::default()
        });
    let client = match carrier {
        Carrier::Http => {
            within(
                "connecting",
                builder.connect(|service| connect(&http.url, service, http_config())),
            )
            .await
        }
        Carrier::Stdio => {
            within(
                "connecting",
                builder.connect(|service| async move { Ok::<_, std::io::Error>(PipeStdio::connect(server, service)) }),
            )
            .await
        }
        Carrier::WebSocket => {
            let url = http.url.replacen("http://", "ws://", 1);
            within(
                "connecting",
                builder.connect(|service| async move {
                    ws_client::connect(&url, service, WsClientConfig::default())
                        .await
                        .map_err(std::io::Error::from)
                }),
            )
            .await
        }
        Carrier::LegacySse => {
            let url = http.url.replacen("/mcp", "/sse", 1);
            within(
                "connecting",
                builder.connect(|service| async move {
                    legacy_sse_client::connect(&url, service, LegacySseClientConfig::default())
                        .await
                        .map_err(std::io::Error::from)
                }),
            )
            .await
        }
    };
    client.unwrap_or_else(|e| panic!("{carrier:?} {protocol:?}: {e}"))
}

fn text_of(result: &wire::CallToolResult) -> String {
    serde_json::to_value(&result.content).expect("JSON")[0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The same run over every carrier and protocol.
async fn scenario(carrier: Carrier, server: &Server, http: &HttpServer, protocol: Protocol) {
    let what = format!("{carrier:?} {protocol:?}");
    let client = client(carrier, server, http, protocol).await;
    let stateless = matches!(protocol, Protocol::Stateless | Protocol::Auto);
    assert_eq!(client.era() == Era::Stateless, stateless, "{what}");
    assert_eq!(
        client.server().info.as_ref().map(|i| i.name.as_str()),
        Some(portico_everything::NAME)
    );

    let tools = within(&what, client.list_all_tools()).await.expect("tools");
    assert!(tools.iter().any(|t| t.name == "test_simple_text"), "{what}");
    let simple = within(&what, client.call_tool("test_simple_text", json!({})))
        .await
        .expect("call");
    assert_eq!(
        text_of(&simple),
        "This is a simple text response for testing.",
        "{what}"
    );

    // Progress, on the notification stream.
    let mut notes = client.notifications();
    let token = client.progress_token();
    let options = RequestOptions::new().progress(token.clone());
    let progressed = within(
        &what,
        client.call_tool_with("test_tool_with_progress", json!({}), &options),
    )
    .await
    .expect("progress");
    assert_eq!(text_of(&progressed), "Progress reported: 0, 50 and 100 of 100");
    for step in [0.0, 50.0, 100.0] {
        match within(&what, notes.recv()).await {
            Some(Notification::Progress(p)) => {
                assert_eq!(p.progress_token, token, "{what}");
                assert_eq!(p.progress.as_f64(), Some(step), "{what}");
            }
            other => panic!("{what}: expected progress, got {other:?}"),
        }
    }

    // Input from the client: real requests in a session, input_required rounds in 2026-07-28.
    let sampled = within(
        &what,
        client.call_tool("test_sampling", json!({"prompt": "Say something"})),
    )
    .await
    .expect("sampling");
    assert_eq!(text_of(&sampled), "LLM response: a sampled answer", "{what}");
    let elicited = within(
        &what,
        client.call_tool("test_elicitation", json!({"message": "Who are you?"})),
    )
    .await
    .expect("elicitation");
    let text = text_of(&elicited);
    assert!(text.starts_with("User response: action=accept"), "{what}: {text}");
    assert!(text.contains("ada@example.com"), "{what}: {text}");

    let read = within(&what, client.read_resource("test://static-text"))
        .await
        .expect("read");
    assert_eq!(
        serde_json::to_value(&read.contents).expect("JSON")[0]["text"],
        "This is the content of the static text resource.",
        "{what}"
    );
    let prompt = within(&what, client.get_prompt("test_simple_prompt", Default::default()))
        .await
        .expect("prompt");
    assert!(!prompt.messages.is_empty(), "{what}");

    // Change notifications: subscriptions/listen (2026-07-28) or the session (2025-11-25).
    let watched = "test://watched-resource";
    let filter = wire::SubscriptionFilter::new()
        .with_tools_list_changed(true)
        .with_resource_subscriptions(vec![watched.into()]);
    let subscription = within(&what, client.listen(filter)).await.expect("listen");
    assert_eq!(subscription.granted().tools_list_changed, Some(true), "{what}");
    within(&what, client.call_tool("test_trigger_tool_change", json!({})))
        .await
        .expect("trigger");
    server.notify(Change::ResourceUpdated(watched.into()));
    let mut saw_tools = false;
    let mut saw_resource = false;
    while !(saw_tools && saw_resource) {
        match within(&what, notes.recv()).await {
            Some(Notification::ToolsListChanged { subscription: s }) => {
                assert_eq!(s.as_ref(), subscription.id(), "{what}");
                saw_tools = true;
            }
            Some(Notification::ResourceUpdated { uri, subscription: s }) => {
                assert_eq!(uri, watched, "{what}");
                assert_eq!(s.as_ref(), subscription.id(), "{what}");
                saw_resource = true;
            }
            Some(_) => {}
            None => panic!("{what}: the notification stream ended"),
        }
    }
    within(&what, subscription.close()).await.expect("unsubscribe");

    // The server ends the response stream mid-call: sessions over HTTP resume it.
    let reconnected = within(&what, client.call_tool("test_reconnection", json!({})))
        .await
        .expect("reconnection");
    assert!(
        text_of(&reconnected).starts_with("Reconnection test completed successfully"),
        "{what}: {}",
        text_of(&reconnected)
    );

    // A tool argument mirrored into `Mcp-Param-Region` (2026-07-28 over HTTP refuses the call
    // without it), non-ASCII going Base64.
    for region in ["us-west1", "Zürich"] {
        let echoed = within(&what, client.call_tool("test_x_mcp_header", json!({"region": region})))
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(text_of(&echoed).contains(region), "{what}: {}", text_of(&echoed));
    }
    within(&what, client.close()).await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_lists_calls_reads_and_gets_over_every_transport_in_both_generations() {
    let server = portico_everything::server();
    let http = HttpServer::start(&server).await;
    for carrier in [Carrier::Http, Carrier::Stdio, Carrier::WebSocket, Carrier::LegacySse] {
        for protocol in PROTOCOLS {
            scenario(carrier, &server, &http, protocol).await;
        }
    }
    // Every session was ended with DELETE (stdio has none).
    assert_eq!(http.endpoint.sessions().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_called_before_listing_gets_its_headers_after_a_mismatch() {
    let server = portico_everything::server();
    let http = HttpServer::start(&server).await;
    let client = client(Carrier::Http, &server, &http, Protocol::Stateless).await;
    // The transport knows no annotation yet: the server answers -32020, the client lists the
    // tools and calls again.
    let echoed = within(
        "call",
        client.call_tool("test_x_mcp_header", json!({"region": "eu-north1"})),
    )
    .await
    .expect("retried with the header");
    assert!(text_of(&echoed).contains("eu-north1"), "{}", text_of(&echoed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_is_renewed() {
    let server = portico_everything::server();
    let http = HttpServer::start(&server).await;
    let client = client(Carrier::Http, &server, &http, Protocol::Stateful("2025-11-25")).await;
    within("ping", client.ping()).await.expect("ping");
    let first = http.endpoint.sessions().ids();
    for id in &first {
        assert!(http.endpoint.sessions().close(id));
    }
    // The 404 starts a new session (ClientConfig::renew_sessions); the ping is sent again.
    within("ping", client.ping()).await.expect("ping in a new session");
    let renewed = http.endpoint.sessions().ids();
    assert_eq!(renewed.len(), 1, "{renewed:?}");
    assert_ne!(renewed, first);
    client.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_falls_back_to_a_session_when_discovery_is_refused() {
    // A server that serves sessions only: its 2026-07-28 requests are refused at the door.
    let server = portico_everything::server();
    let config = HttpConfig {
        protocol_versions: portico_core::server::STATEFUL_REVISIONS
            .iter()
            .map(|r| r.to_string())
            .collect(),
        ..HttpConfig::default()
    };
    let shutdown = config.shutdown.clone();
    let s = server.clone();
    let app = http::router(move || s.connection(), config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/mcp", listener.local_addr().expect("address"));
    let task = tokio::spawn(http::serve(listener, app, shutdown.clone().cancelled_owned()));
    let client = within(
        "connecting",
        Client::builder(wire::Implementation::new("interop", "1.0.0"))
            .connect(|service| connect(&url, service, http_config())),
    )
    .await
    .expect("falls back");
    assert_eq!(client.era(), Era::Stateful("2025-11-25"));
    let simple = within("call", client.call_tool("test_simple_text", json!({})))
        .await
        .expect("call");
    assert_eq!(text_of(&simple), "This is a simple text response for testing.");
    client.close().await.expect("close");
    shutdown.cancel();
    let _ = task.await;
}
