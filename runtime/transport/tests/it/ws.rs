//! MCP over WebSocket at the Streamable HTTP endpoint's path, over real TCP on 127.0.0.1: the
//! upgrade's checks (subprotocol, Host/Origin, limits), framing errors and their close codes,
//! ping/pong, and cancellation when the socket closes. A [`tokio_tungstenite`] client plays
//! the other side.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use portico_core::server::{Context, Server, tool};
use portico_transport::http::ws::{SUBPROTOCOL, WsConfig};
use portico_transport::http::{HttpConfig, StreamableHttp, serve};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use crate::within;

/// A client's socket.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    /// The text to say back.
    text: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct Nothing {}

/// What the `wait` tool reports: that it started, and that it ended (it ends only by
/// cancellation).
#[derive(Default)]
pub struct Waiting {
    /// Notified when the tool starts.
    pub started: Notify,
    cancelled: AtomicBool,
    seen: Notify,
}

impl Waiting {
    /// Completes once the `wait` tool has ended, which only cancellation does.
    pub async fn cancelled(&self) {
        within("the tool sees the cancellation", async {
            loop {
                let seen = self.seen.notified();
                if self.cancelled.load(Ordering::SeqCst) {
                    break;
                }
                seen.await;
            }
        })
        .await;
    }
}

/// Records that the `wait` tool ended.
struct CancelGuard(Arc<Waiting>);

impl Drop for CancelGuard {
    fn drop(&mut self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
        self.0.seen.notify_waiters();
    }
}

/// A server with `echo` and `wait` tools.
pub fn test_server(waiting: Arc<Waiting>) -> Server {
    Server::builder("portico-ws-test", "1.0.0")
        .tool(tool("echo", "Says the text back", |_cx, args: EchoArgs| async move {
            args.text
        }))
        .tool(tool(
            "wait",
            "Runs until cancelled",
            move |cx: Context, _args: Nothing| {
                let waiting = waiting.clone();
                async move {
                    let _guard = CancelGuard(waiting.clone());
                    waiting.started.notify_one();
                    cx.cancelled().await;
                    "cancelled"
                }
            },
        ))
        .build()
}

/// A Streamable HTTP endpoint (with its WebSocket) on 127.0.0.1.
struct Endpoint {
    addr: String,
    waiting: Arc<Waiting>,
    shutdown: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

impl Endpoint {
    async fn start(config: HttpConfig) -> Self {
        let waiting = Arc::new(Waiting::default());
        let server = test_server(waiting.clone());
        let shutdown = config.shutdown.clone();
        let http = StreamableHttp::new(move || server.connection(), config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address").to_string();
        let task = tokio::spawn(serve(listener, http.router(), shutdown.clone().cancelled_owned()));
        Self {
            addr,
            waiting,
            shutdown,
            task,
        }
    }

    async fn default() -> Self {
        Self::start(HttpConfig::default()).await
    }

    fn with_ws(ws: WsConfig) -> HttpConfig {
        HttpConfig {
            websocket: Some(ws),
            ..HttpConfig::default()
        }
    }

    /// Opens a socket offering `protocols` (a `Sec-WebSocket-Protocol` value) with `headers`.
    async fn try_connect(
        &self,
        protocols: Option<&str>,
        headers: &[(&'static str, &str)],
    ) -> Result<(Socket, tungstenite::handshake::client::Response), tungstenite::Error> {
        let mut request = format!("ws://{}/mcp", self.addr)
            .into_client_request()
            .expect("a request");
        if let Some(protocols) = protocols {
            request.headers_mut().insert(
                "sec-websocket-protocol",
                HeaderValue::from_str(protocols).expect("a value"),
            );
        }
        for (name, value) in headers {
            request
                .headers_mut()
                .insert(*name, HeaderValue::from_str(value).expect("a value"));
        }
        within("the handshake", tokio_tungstenite::connect_async(request)).await
    }

    /// A socket that negotiated `mcp`.
    async fn connect(&self) -> Socket {
        let (socket, response) = self.try_connect(Some(SUBPROTOCOL), &[]).await.expect("upgraded");
        assert_eq!(
            response.headers().get("sec-websocket-protocol").map(|v| v.as_bytes()),
            Some(&b"mcp"[..])
        );
        socket
    }

    async fn stop(self) {
        self.shutdown.cancel();
        within("the server stops", self.task)
            .await
            .expect("the server task")
            .expect("serve");
    }
}

/// The status and JSON body of a refused upgrade.
fn refusal(
    result: Result<(Socket, tungstenite::handshake::client::Response), tungstenite::Error>,
) -> (StatusCode, Value) {
    match result {
        Err(tungstenite::Error::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            let body: Value =
                serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&body)));
            assert_eq!(body["jsonrpc"], "2.0", "{body}");
            (response.status(), body)
        }
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("expected a refusal, the upgrade succeeded"),
    }
}

/// Sends one JSON message as a text frame.
pub async fn send(socket: &mut Socket, message: &Value) {
    send_text(socket, &message.to_string()).await;
}

/// Sends one text frame.
pub async fn send_text(socket: &mut Socket, text: &str) {
    within("sending", socket.send(Message::text(text))).await.expect("sent");
}

/// The next frame that is not a ping or pong.
pub async fn next_frame(socket: &mut Socket) -> Message {
    loop {
        let frame = within("a frame", socket.next())
            .await
            .expect("the socket is open")
            .expect("a frame");
        if !matches!(frame, Message::Ping(_) | Message::Pong(_)) {
            return frame;
        }
    }
}

/// The next message, as JSON.
pub async fn next_json(socket: &mut Socket) -> Value {
    match next_frame(socket).await {
        Message::Text(text) => serde_json::from_str(text.as_str()).unwrap_or_else(|e| panic!("{e}: {text}")),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// The close frame the server sends next: its code and reason.
async fn next_close(socket: &mut Socket) -> (CloseCode, String) {
    match next_frame(socket).await {
        Message::Close(Some(frame)) => (frame.code, frame.reason.to_string()),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

/// `initialize` at 2025-11-25 and `notifications/initialized`.
async fn initialize(socket: &mut Socket) {
    send(
        socket,
        &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}),
    )
    .await;
    let answer = next_json(socket).await;
    assert_eq!(answer["id"], 0);
    assert_eq!(answer["result"]["protocolVersion"], "2025-11-25", "{answer}");
    send(
        socket,
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
}

fn echo(id: i64, text: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": text}}})
}

#[tokio::test]
async fn ws_negotiates_mcp_and_serves_both_eras_on_one_socket() {
    let ep = Endpoint::default().await;
    let mut socket = ep.connect().await;
    initialize(&mut socket).await;
    send(&mut socket, &echo(1, "hello")).await;
    let answer = next_json(&mut socket).await;
    assert_eq!(answer["id"], 1);
    assert_eq!(answer["result"]["content"][0]["text"], "hello", "{answer}");
    assert!(
        answer["result"].get("resultType").is_none(),
        "2025-11-25 has no resultType: {answer}"
    );
    // A 2026-07-28 request on the same socket is served statelessly.
    send(
        &mut socket,
        &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "echo", "arguments": {"text": "new"},
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                      "io.modelcontextprotocol/clientCapabilities": {},
                      "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"}}}}),
    )
    .await;
    let answer = next_json(&mut socket).await;
    assert_eq!(answer["id"], 2);
    assert_eq!(answer["result"]["content"][0]["text"], "new", "{answer}");
    assert_eq!(answer["result"]["resultType"], "complete", "{answer}");
    socket.close(None).await.expect("closed");

    // `mcp` among others is chosen; offering nothing is accepted without a subprotocol.
    let (mut socket, response) = ep.try_connect(Some("graphql-ws, mcp"), &[]).await.expect("upgraded");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(response.headers()["sec-websocket-protocol"], "mcp");
    initialize(&mut socket).await;
    let (mut socket, response) = ep.try_connect(None, &[]).await.expect("upgraded");
    assert!(response.headers().get("sec-websocket-protocol").is_none());
    initialize(&mut socket).await;
    ep.stop().await;
}

#[tokio::test]
async fn ws_refuses_other_subprotocols_and_foreign_hosts_and_origins() {
    let ep = Endpoint::default().await;
    let (status, body) = refusal(ep.try_connect(Some("graphql-ws, wamp"), &[]).await);
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], -32600);
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("graphql-ws") && message.contains("`mcp`"), "{message}");

    let (status, body) = refusal(ep.try_connect(Some("mcp"), &[("origin", "http://evil.example")]).await);
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["error"]["message"].as_str().unwrap_or_default().contains("Origin"),
        "{body}"
    );
    let (status, _) = refusal(ep.try_connect(Some("mcp"), &[("host", "evil.example")]).await);
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A loopback origin passes.
    let (_socket, response) = ep
        .try_connect(Some("mcp"), &[("origin", "http://localhost:5173")])
        .await
        .expect("upgraded");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    // A broken upgrade (no Sec-WebSocket-Version 13) is a JSON 400 too, not a stream request.
    let (status, body) = refusal(ep.try_connect(Some("mcp"), &[("sec-websocket-version", "8")]).await);
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("WebSocket"),
        "{body}"
    );
    ep.stop().await;
}

#[tokio::test]
async fn ws_switched_off_is_400_and_plain_gets_are_unaffected() {
    let ep = Endpoint::start(HttpConfig {
        websocket: None,
        ..HttpConfig::default()
    })
    .await;
    let (status, body) = refusal(ep.try_connect(Some("mcp"), &[]).await);
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("WebSocket"),
        "{body}"
    );
    let response = crate::http_client()
        .get(format!("http://{}/mcp", ep.addr))
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), reqwest::StatusCode::METHOD_NOT_ALLOWED);
    ep.stop().await;
}

#[tokio::test]
async fn ws_malformed_json_is_answered_and_the_socket_keeps_serving() {
    let ep = Endpoint::default().await;
    let mut socket = ep.connect().await;
    initialize(&mut socket).await;
    send_text(&mut socket, "{\"jsonrpc\": \"2.0\", \"id\": 1, ").await;
    let error = next_json(&mut socket).await;
    assert_eq!(error["error"]["code"], -32700, "{error}");
    assert!(error.get("id").is_none() || error["id"].is_null(), "{error}");
    send_text(&mut socket, "[1, 2]").await;
    let error = next_json(&mut socket).await;
    assert_eq!(error["error"]["code"], -32600, "{error}");
    send(&mut socket, &json!({"jsonrpc": "2.0", "id": 2, "method": "no/such"})).await;
    let error = next_json(&mut socket).await;
    assert_eq!(error["id"], 2);
    assert_eq!(error["error"]["code"], -32601, "{error}");
    send(&mut socket, &echo(3, "still here")).await;
    let answer = next_json(&mut socket).await;
    assert_eq!(answer["result"]["content"][0]["text"], "still here", "{answer}");
    ep.stop().await;
}

#[tokio::test]
async fn ws_oversize_message_closes_with_1009_and_binary_with_1003() {
    let ep = Endpoint::start(Endpoint::with_ws(WsConfig {
        max_message_bytes: Some(1024),
        ..WsConfig::default()
    }))
    .await;
    let mut socket = ep.connect().await;
    initialize(&mut socket).await;
    // Just under the limit is served.
    let text = "a".repeat(900);
    let call = echo(1, &text);
    assert!(call.to_string().len() <= 1024);
    send(&mut socket, &call).await;
    assert_eq!(next_json(&mut socket).await["result"]["content"][0]["text"], text);
    send(&mut socket, &echo(2, &"b".repeat(2000))).await;
    let (code, reason) = next_close(&mut socket).await;
    assert_eq!(code, CloseCode::Size, "{reason}");
    assert!(reason.contains("1024"), "{reason}");

    let mut socket = ep.connect().await;
    within("sending", socket.send(Message::binary(b"{}".to_vec())))
        .await
        .expect("sent");
    let (code, reason) = next_close(&mut socket).await;
    assert_eq!(code, CloseCode::Unsupported, "{reason}");
    assert!(reason.contains("text frame"), "{reason}");
    ep.stop().await;
}

#[tokio::test]
async fn ws_oversize_limit_defaults_to_the_http_body_limit() {
    let ep = Endpoint::start(HttpConfig {
        max_body_bytes: 512,
        ..HttpConfig::default()
    })
    .await;
    let mut socket = ep.connect().await;
    send(&mut socket, &echo(1, &"c".repeat(600))).await;
    let (code, reason) = next_close(&mut socket).await;
    assert_eq!(code, CloseCode::Size, "{reason}");
    assert!(reason.contains("512"), "{reason}");
    ep.stop().await;
}

#[tokio::test]
async fn ws_closing_the_socket_cancels_an_in_flight_call() {
    let ep = Endpoint::default().await;
    let mut socket = ep.connect().await;
    initialize(&mut socket).await;
    send(
        &mut socket,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "wait", "arguments": {}}}),
    )
    .await;
    within("the tool starts", ep.waiting.started.notified()).await;
    socket.close(None).await.expect("closed");
    ep.waiting.cancelled().await;

    // Dropping the connection without a closing handshake does the same.
    let mut socket = ep.connect().await;
    initialize(&mut socket).await;
    send(
        &mut socket,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "wait", "arguments": {}}}),
    )
    .await;
    within("the tool starts", ep.waiting.started.notified()).await;
    drop(socket);
    ep.waiting.cancelled().await;
    ep.stop().await;
}

#[tokio::test]
async fn ws_connections_are_bounded() {
    let ep = Endpoint::start(Endpoint::with_ws(WsConfig {
        max_connections: 1,
        ..WsConfig::default()
    }))
    .await;
    let mut first = ep.connect().await;
    initialize(&mut first).await;
    let (status, body) = refusal(ep.try_connect(Some("mcp"), &[]).await);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body["error"]["message"].as_str().unwrap_or_default().contains('1'),
        "{body}"
    );
    first.close(None).await.expect("closed");
    // The slot is free once the server has seen the close; until then the answer is 503.
    let mut second = within("a slot frees", async {
        loop {
            match ep.try_connect(Some("mcp"), &[]).await {
                Ok((socket, _)) => break socket,
                Err(tungstenite::Error::Http(response)) if response.status() == StatusCode::SERVICE_UNAVAILABLE => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await;
    initialize(&mut second).await;
    ep.stop().await;
}

#[tokio::test]
async fn ws_answers_pings_and_pings_the_client() {
    let ep = Endpoint::start(Endpoint::with_ws(WsConfig {
        ping_interval: Some(Duration::from_millis(50)),
        ..WsConfig::default()
    }))
    .await;
    let mut socket = ep.connect().await;
    within("sending", socket.send(Message::Ping(b"are you there".to_vec().into())))
        .await
        .expect("sent");
    let mut pinged = false;
    let mut ponged = false;
    while !(pinged && ponged) {
        match within("a frame", socket.next()).await.expect("open").expect("a frame") {
            Message::Pong(payload) => {
                assert_eq!(&payload[..], b"are you there");
                ponged = true;
            }
            // The client answers the server's pings by itself as it reads.
            Message::Ping(_) => pinged = true,
            other => panic!("unexpected {other:?}"),
        }
    }
    // Answering pings keeps the socket open across several intervals.
    initialize(&mut socket).await;
    send(&mut socket, &echo(1, "alive")).await;
    assert_eq!(next_json(&mut socket).await["result"]["content"][0]["text"], "alive");
    ep.stop().await;
}

#[tokio::test]
async fn ws_shutdown_closes_sockets_with_1001() {
    let ep = Endpoint::default().await;
    let mut socket = ep.connect().await;
    initialize(&mut socket).await;
    ep.shutdown.cancel();
    let (code, reason) = next_close(&mut socket).await;
    assert_eq!(code, CloseCode::Away, "{reason}");
    ep.stop().await;
}

#[tokio::test]
async fn ws_closes_a_client_that_stays_silent_after_a_ping() {
    let ep = Endpoint::start(Endpoint::with_ws(WsConfig {
        ping_interval: Some(Duration::from_millis(20)),
        ..WsConfig::default()
    }))
    .await;
    let mut socket = ep.connect().await;
    // The client answers pings only while it reads: silence here is the point of the test, so
    // it waits many intervals without reading.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (code, reason) = next_close(&mut socket).await;
    assert_eq!(code, CloseCode::Away, "{reason}");
    assert!(reason.contains("pong"), "{reason}");
    ep.stop().await;
}
