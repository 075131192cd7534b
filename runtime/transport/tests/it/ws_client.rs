//! The WebSocket client ([`portico_transport::http::ws_client`]) against the real server end
//! over TCP on 127.0.0.1: both eras on one socket (`initialize` at 2025-11-25 and 2024-11-05,
//! a 2026-07-28 request with `_meta`), progress, a server→client request answered by the
//! client's service, pings both ways, the size limit, the server going away mid-call; and,
//! against small hand-made servers, what the real one never does: choosing another
//! subprotocol, dropping the connection, going silent, and the close frame of a shutdown.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use portico_core::server::{Context, Server, tool};
use portico_core::{ErrorObject, JsonText, PeerConfig, PeerError, PeerHandle, RequestContext, Service};
use portico_transport::http::ws::WsConfig;
use portico_transport::http::ws_client::{self, WsClient, WsClientConfig, WsConnectError};
use portico_transport::http::{HttpConfig, StreamableHttp, serve};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Callback, ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;

use crate::within;

/// The newest revision: stateless, `_meta` in every request.
pub const MODERN: &str = "2026-07-28";

#[derive(Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    /// The text to say back.
    text: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct CountArgs {
    /// How many progress steps to report.
    steps: u32,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct NapArgs {
    /// How long to sleep, in milliseconds.
    millis: u64,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct Nothing {}

/// A server with `echo`, `count` (progress), `ask` (pings the client), `nap` (sleeps) and
/// `wait` (runs until cancelled; notifies `started` when it starts).
pub fn client_test_server(started: Arc<Notify>) -> Server {
    Server::builder("portico-client-test", "1.0.0")
        .tool(tool("echo", "Says the text back", |_cx, args: EchoArgs| async move {
            args.text
        }))
        .tool(tool(
            "count",
            "Reports progress, then the count",
            |cx: Context, args: CountArgs| async move {
                for step in 1..=args.steps {
                    cx.progress(f64::from(step), Some(f64::from(args.steps)), Some("counting"))
                        .await
                        .map_err(|e| e.to_string())?;
                }
                Ok::<_, String>(format!("counted to {}", args.steps))
            },
        ))
        .tool(tool(
            "ask",
            "Pings the client, then says what it answered",
            |cx: Context, _args: Nothing| async move {
                match cx.peer().request::<_, Value>("ping", &json!({})).await {
                    Ok(answer) => format!("the client answered {answer}"),
                    Err(e) => format!("the ping failed: {e}"),
                }
            },
        ))
        .tool(tool("nap", "Sleeps, then answers", |_cx, args: NapArgs| async move {
            tokio::time::sleep(Duration::from_millis(args.millis)).await;
            "rested"
        }))
        .tool(tool(
            "wait",
            "Runs until cancelled",
            move |cx: Context, _args: Nothing| {
                let started = started.clone();
                async move {
                    started.notify_one();
                    cx.cancelled().await;
                    "cancelled"
                }
            },
        ))
        .build()
}

/// The client's service: answers the server's `ping`, and passes on every notification.
pub struct ClientService {
    notes: mpsc::Sender<Value>,
}

impl ClientService {
    /// The service, and where its notifications arrive.
    pub fn new() -> (Self, mpsc::Receiver<Value>) {
        let (notes, rx) = mpsc::channel(64);
        (Self { notes }, rx)
    }
}

impl Service for ClientService {
    async fn request(
        &self,
        _cx: RequestContext,
        method: String,
        _params: Option<Box<RawValue>>,
    ) -> Result<JsonText, ErrorObject> {
        let answer: Result<Box<RawValue>, ErrorObject> = {
            match method.as_str() {
                "ping" => Ok(RawValue::from_string("{}".into()).expect("JSON")),
                other => Err(ErrorObject::method_not_found(other)),
            }
        };
        answer.map(JsonText::from)
    }

    async fn notification(&self, _peer: PeerHandle, method: String, params: Option<Box<RawValue>>) {
        let params: Value = params.map_or(Value::Null, |p| serde_json::from_str(p.get()).expect("JSON"));
        let _ = self.notes.send(json!({"method": method, "params": params})).await;
    }
}

/// A client config whose requests never time out: only the connection's end can fail them.
pub fn patient_peer() -> PeerConfig {
    PeerConfig {
        request_timeout: Duration::from_secs(3600),
        ..PeerConfig::default()
    }
}

/// `tools/call` of `params`: the result.
pub async fn call(peer: &PeerHandle, params: Value) -> Value {
    within("tools/call", peer.request::<_, Value>("tools/call", &params))
        .await
        .unwrap_or_else(|e| panic!("tools/call {params}: {e}"))
}

/// The text of a tool result's first content block.
pub fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or_default()
}

/// The `_meta` of a 2026-07-28 request.
pub fn modern_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "client-test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    })
}

/// What every client transport runs against [`client_test_server`]: `initialize` at
/// `revision`, a call, a call with progress, a call during which the server pings the client;
/// with `stateless`, a 2026-07-28 request on the same connection too.
pub async fn scenario(peer: &PeerHandle, notes: &mut mpsc::Receiver<Value>, revision: &str, stateless: bool) {
    let init: Value = within(
        "initialize",
        peer.request(
            "initialize",
            &json!({"protocolVersion": revision, "capabilities": {}, "clientInfo": {"name": "client-test", "version": "1"}}),
        ),
    )
    .await
    .expect("initialized");
    assert_eq!(init["protocolVersion"], revision, "{init}");
    assert_eq!(init["serverInfo"]["name"], "portico-client-test", "{init}");
    peer.notify("notifications/initialized", &json!({}))
        .await
        .expect("sent");

    let echoed = call(peer, json!({"name": "echo", "arguments": {"text": "over the wire"}})).await;
    assert_eq!(text(&echoed), "over the wire", "{echoed}");

    let counted = call(
        peer,
        json!({"name": "count", "arguments": {"steps": 3}, "_meta": {"progressToken": "p-1"}}),
    )
    .await;
    assert_eq!(text(&counted), "counted to 3", "{counted}");
    // Notifications are served as they are read, so those sent before the answer are in.
    let mut progress = Vec::new();
    while let Ok(note) = notes.try_recv() {
        if note["method"] == "notifications/progress" {
            assert_eq!(note["params"]["progressToken"], "p-1", "{note}");
            progress.push(note["params"]["progress"].as_f64().expect("a number"));
        }
    }
    assert_eq!(progress, [1.0, 2.0, 3.0]);

    let asked = call(peer, json!({"name": "ask", "arguments": {}})).await;
    assert_eq!(text(&asked), "the client answered {}", "{asked}");

    if stateless {
        let modern = call(
            peer,
            json!({"name": "echo", "arguments": {"text": "stateless"}, "_meta": modern_meta()}),
        )
        .await;
        assert_eq!(modern["resultType"], "complete", "{modern}");
        assert_eq!(text(&modern), "stateless");
    }
}

/// A Streamable HTTP endpoint (with its WebSocket) serving [`client_test_server`].
struct Endpoint {
    url: String,
    started: Arc<Notify>,
    shutdown: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

impl Endpoint {
    async fn start(config: HttpConfig) -> Self {
        let started = Arc::new(Notify::new());
        let server = client_test_server(started.clone());
        let shutdown = config.shutdown.clone();
        let http = StreamableHttp::new(move || server.connection(), config);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("ws://{}/mcp", listener.local_addr().expect("address"));
        let task = tokio::spawn(serve(listener, http.router(), shutdown.clone().cancelled_owned()));
        Self {
            url,
            started,
            shutdown,
            task,
        }
    }

    async fn default() -> Self {
        Self::start(HttpConfig::default()).await
    }

    async fn connect(&self, config: WsClientConfig) -> (WsClient<ClientService>, mpsc::Receiver<Value>) {
        let (service, notes) = ClientService::new();
        let client = within("connecting", ws_client::connect(&self.url, service, config))
            .await
            .expect("connected");
        (client, notes)
    }

    async fn stop(self) {
        self.shutdown.cancel();
        within("the server stops", self.task)
            .await
            .expect("the server task")
            .expect("serve");
    }
}

fn patient() -> WsClientConfig {
    WsClientConfig {
        peer: patient_peer(),
        ..WsClientConfig::default()
    }
}

#[tokio::test]
async fn ws_client_serves_both_eras_with_progress_and_server_requests() {
    let endpoint = Endpoint::default().await;
    for revision in ["2025-11-25", "2024-11-05"] {
        let (client, mut notes) = endpoint.connect(patient()).await;
        scenario(client.peer().handle(), &mut notes, revision, true).await;
        within("shutting down", client.shutdown()).await;
    }
    // A connection that never initializes: 2026-07-28 requests alone.
    let (client, _notes) = endpoint.connect(patient()).await;
    let discovered: Value = within(
        "server/discover",
        client
            .peer()
            .handle()
            .request("server/discover", &json!({"_meta": modern_meta()})),
    )
    .await
    .expect("discovered");
    assert!(
        discovered["supportedVersions"]
            .as_array()
            .is_some_and(|v| v.contains(&json!(MODERN))),
        "{discovered}"
    );
    within("shutting down", client.shutdown()).await;
    endpoint.stop().await;
}

#[tokio::test]
async fn ws_client_fails_a_waiting_request_when_the_server_goes_away() {
    let endpoint = Endpoint::default().await;
    let (client, _notes) = endpoint.connect(patient()).await;
    let handle = client.peer().handle().clone();
    let started = endpoint.started.notified();
    let waiting = tokio::spawn(async move {
        handle
            .request::<_, Value>(
                "tools/call",
                &json!({"name": "wait", "arguments": {}, "_meta": modern_meta()}),
            )
            .await
    });
    within("the call starts", started).await;
    // The server shuts down: every socket is closed with 1001.
    endpoint.shutdown.cancel();
    let outcome = within("the waiting request ends", waiting).await.expect("the task");
    assert!(matches!(outcome, Err(PeerError::Closed)), "{outcome:?}");
    within("the client sees the end", client.closed()).await;
    let later = client.peer().handle().request::<_, Value>("ping", &json!({})).await;
    assert!(matches!(later, Err(PeerError::Closed)), "{later:?}");
    within("the server stops", endpoint.task)
        .await
        .expect("the server task")
        .expect("serve");
}

#[tokio::test]
async fn ws_client_answers_the_servers_pings() {
    // The server pings every 20 ms and closes a socket silent for a whole interval after one;
    // the client sends nothing during the nap, so only its pongs keep the socket open.
    let endpoint = Endpoint::start(HttpConfig {
        websocket: Some(WsConfig {
            ping_interval: Some(Duration::from_millis(20)),
            ..WsConfig::default()
        }),
        ..HttpConfig::default()
    })
    .await;
    let config = WsClientConfig {
        ping_interval: None,
        ..patient()
    };
    let (client, _notes) = endpoint.connect(config).await;
    let napped = call(
        client.peer().handle(),
        json!({"name": "nap", "arguments": {"millis": 300}, "_meta": modern_meta()}),
    )
    .await;
    assert_eq!(text(&napped), "rested");
    within("shutting down", client.shutdown()).await;
    endpoint.stop().await;
}

#[tokio::test]
async fn ws_client_closes_on_a_message_over_its_limit() {
    let endpoint = Endpoint::default().await;
    let config = WsClientConfig {
        max_message_bytes: 1024,
        ..patient()
    };
    let (client, _notes) = endpoint.connect(config).await;
    let small = call(
        client.peer().handle(),
        json!({"name": "echo", "arguments": {"text": "small"}, "_meta": modern_meta()}),
    )
    .await;
    assert_eq!(text(&small), "small");
    let large = within(
        "the large answer",
        client.peer().handle().request::<_, Value>(
            "tools/call",
            &json!({"name": "echo", "arguments": {"text": "x".repeat(4000)}, "_meta": modern_meta()}),
        ),
    )
    .await;
    assert!(matches!(large, Err(PeerError::Closed)), "{large:?}");
    within("the client sees the end", client.closed()).await;
    endpoint.stop().await;
}

#[tokio::test]
async fn ws_client_reports_a_refused_upgrade_and_refuses_urls_it_cannot_serve() {
    let endpoint = Endpoint::start(HttpConfig {
        websocket: None,
        ..HttpConfig::default()
    })
    .await;
    let (service, _notes) = ClientService::new();
    let refused = within(
        "connecting",
        ws_client::connect(&endpoint.url, service, WsClientConfig::default()),
    )
    .await;
    match refused {
        Err(WsConnectError::Refused { status, message }) => {
            assert_eq!(status, 400);
            assert!(message.contains("does not serve WebSocket"), "{message}");
        }
        other => panic!("expected a refusal, got {:?}", other.err()),
    }
    endpoint.stop().await;

    for url in ["http://127.0.0.1:1/mcp", "not a url"] {
        let (service, _notes) = ClientService::new();
        let error = ws_client::connect(url, service, WsClientConfig::default())
            .await
            .err()
            .expect("refused");
        assert!(matches!(error, WsConnectError::InvalidUrl { .. }), "{url}: {error}");
        let io: std::io::Error = error.into();
        assert_eq!(io.kind(), std::io::ErrorKind::InvalidInput);
    }
    // With the `tls` feature (this test crate has it) wss:// is tried: nobody listens there.
    let (service, _notes) = ClientService::new();
    let error = ws_client::connect("wss://127.0.0.1:1/mcp", service, WsClientConfig::default())
        .await
        .err()
        .expect("refused");
    assert!(matches!(error, WsConnectError::Connect { .. }), "{error}");
}

/// A hand-made WebSocket server on 127.0.0.1: its URL, and the first socket it accepts,
/// answering the handshake with `protocol` as `Sec-WebSocket-Protocol` (or none).
async fn hand_made(protocol: Option<&'static str>) -> (String, JoinHandle<WebSocketStream<TcpStream>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/mcp", listener.local_addr().expect("address"));
    let accepted = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("a connection");
        tokio_tungstenite::accept_hdr_async(tcp, Choose(protocol))
            .await
            .expect("handshake")
    });
    (url, accepted)
}

/// A client connected (with [`patient`] settings) to a [`hand_made`] server choosing `mcp`, and
/// the server's end of the connection.
async fn connected_by_hand() -> (WsClient<ClientService>, WebSocketStream<TcpStream>) {
    let (url, accepted) = hand_made(Some("mcp")).await;
    let (service, _notes) = ClientService::new();
    let client = within("connecting", ws_client::connect(&url, service, patient()))
        .await
        .expect("connected");
    let server = within("accepted", accepted).await.expect("the server task");
    (client, server)
}

/// A request `method` of `client` in flight, read by `server`: the task awaiting its answer,
/// and the request as the server read it.
async fn request_in_flight(
    client: &WsClient<ClientService>,
    server: &mut WebSocketStream<TcpStream>,
    method: &'static str,
) -> (JoinHandle<Result<Value, PeerError>>, Value) {
    let handle = client.peer().handle().clone();
    let waiting = tokio::spawn(async move { handle.request::<_, Value>(method, &json!({})).await });
    let request = within("the request arrives", server.next())
        .await
        .expect("a frame")
        .expect("readable");
    let request: Value = serde_json::from_str(request.to_text().expect("text")).expect("JSON");
    (waiting, request)
}

/// Answers a handshake choosing its subprotocol (or none), whatever the client offered.
struct Choose(Option<&'static str>);

impl Callback for Choose {
    fn on_request(self, _request: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
        if let Some(protocol) = self.0 {
            response
                .headers_mut()
                .insert("sec-websocket-protocol", HeaderValue::from_static(protocol));
        }
        Ok(response)
    }
}

#[tokio::test]
async fn ws_client_refuses_a_server_that_does_not_choose_mcp() {
    for (protocol, chosen) in [(Some("graphql-ws"), "chose another subprotocol"), (None, "chose none")] {
        let (url, accepted) = hand_made(protocol).await;
        let (service, _notes) = ClientService::new();
        let outcome = within(
            "connecting",
            ws_client::connect(&url, service, WsClientConfig::default()),
        )
        .await;
        match outcome {
            Err(WsConnectError::Subprotocol { chose }) => assert_eq!(chose, chosen),
            other => panic!("{protocol:?}: expected a subprotocol refusal, got {:?}", other.err()),
        }
        accepted.abort();
    }
}

#[tokio::test]
async fn ws_client_fails_a_waiting_request_when_the_connection_drops() {
    let (client, mut server) = connected_by_hand().await;
    let (waiting, request) = request_in_flight(&client, &mut server, "tools/list").await;
    assert_eq!(request["method"], "tools/list");
    // The server dies without a closing handshake.
    drop(server);
    let outcome = within("the waiting request ends", waiting).await.expect("the task");
    assert!(matches!(outcome, Err(PeerError::Closed)), "{outcome:?}");
    within("the client sees the end", client.closed()).await;
}

#[tokio::test]
async fn ws_client_fails_the_waiting_requests_at_once_on_a_frame_that_is_not_json() {
    let (client, mut server) = connected_by_hand().await;
    let (waiting, request) = request_in_flight(&client, &mut server, "tools/list").await;
    server.send(Message::text("this is not JSON {")).await.expect("sent");
    // The request fails naming why, long before its timeout (an hour).
    let outcome = within("the waiting request ends", waiting).await.expect("the task");
    match outcome {
        Err(PeerError::Remote(error)) => assert!(error.message.starts_with("invalid JSON: "), "{error:?}"),
        other => panic!("expected the unreadable-message error, got {other:?}"),
    }
    // The server is answered, and told the request is cancelled; the connection goes on.
    let mut seen = Vec::new();
    for _ in 0..2 {
        let frame = within("a frame", server.next())
            .await
            .expect("a frame")
            .expect("readable");
        seen.push(serde_json::from_str::<Value>(frame.to_text().expect("text")).expect("JSON"));
    }
    assert!(seen.iter().any(|m| m["error"]["code"] == -32700), "{seen:?}");
    assert!(
        seen.iter()
            .any(|m| m["method"] == "notifications/cancelled" && m["params"]["requestId"] == request["id"]),
        "{seen:?}"
    );
    let (again, ping) = request_in_flight(&client, &mut server, "ping").await;
    let answer = json!({"jsonrpc": "2.0", "id": ping["id"], "result": {}});
    server.send(Message::text(answer.to_string())).await.expect("sent");
    assert_eq!(
        within("answered", again).await.expect("the task").expect("an answer"),
        json!({})
    );
}

#[tokio::test]
async fn ws_client_takes_a_silent_server_as_gone() {
    let (url, accepted) = hand_made(Some("mcp")).await;
    let (service, _notes) = ClientService::new();
    let config = WsClientConfig {
        ping_interval: Some(Duration::from_millis(20)),
        ..patient()
    };
    let client = within("connecting", ws_client::connect(&url, service, config))
        .await
        .expect("connected");
    // Accepted and then never read: no pong, no answer.
    let server = within("accepted", accepted).await.expect("the server task");
    let outcome = within(
        "the waiting request ends",
        client.peer().handle().request::<_, Value>("tools/list", &json!({})),
    )
    .await;
    assert!(matches!(outcome, Err(PeerError::Closed)), "{outcome:?}");
    within("the client sees the end", client.closed()).await;
    drop(server);
}

#[tokio::test]
async fn ws_client_shutdown_writes_what_is_queued_then_closes_with_1000() {
    let (client, mut server) = connected_by_hand().await;
    let (frames_tx, frames) = oneshot::channel();
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(Ok(frame)) = server.next().await {
            let close = matches!(frame, Message::Close(_));
            seen.push(frame);
            if close {
                // Answers the close, as a server does.
                let _ = server.close(None).await;
                break;
            }
        }
        let _ = frames_tx.send(seen);
    });
    client
        .peer()
        .handle()
        .notify("notifications/initialized", &json!({}))
        .await
        .expect("queued");
    within("shutting down", client.shutdown()).await;
    let frames = within("the frames", frames).await.expect("the reader");
    match frames.as_slice() {
        [Message::Text(text), Message::Close(Some(close))] => {
            let note: Value = serde_json::from_str(text.as_str()).expect("JSON");
            assert_eq!(note["method"], "notifications/initialized");
            assert_eq!(close.code, CloseCode::Normal);
        }
        other => panic!("expected the notification then a close frame, got {other:?}"),
    }
    within("the reader ends", reader).await.expect("the reader");
}

#[tokio::test]
async fn ws_client_refuses_binary_frames_with_1003() {
    let (client, mut server) = connected_by_hand().await;
    within("sending", server.send(Message::binary(b"{}".to_vec())))
        .await
        .expect("sent");
    let close = loop {
        match within("a frame", server.next()).await {
            Some(Ok(Message::Close(close))) => break close,
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(close.expect("a close frame with a code").code, CloseCode::Unsupported);
    within("the client sees the end", client.closed()).await;
}

/// A TCP listener on 127.0.0.1 that accepts connections and never says a word on them: its
/// address, and the task holding them.
pub async fn mute_server() -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    (addr, task)
}

#[tokio::test]
async fn ws_client_gives_up_on_a_handshake_that_never_comes() {
    let (addr, mute) = mute_server().await;
    let (service, _notes) = ClientService::new();
    let config = WsClientConfig {
        connect_timeout: Duration::from_millis(50),
        ..WsClientConfig::default()
    };
    let outcome = within(
        "connecting",
        ws_client::connect(&format!("ws://{addr}/mcp"), service, config),
    )
    .await;
    match outcome {
        Err(WsConnectError::Timeout { after, .. }) => assert_eq!(after, Duration::from_millis(50)),
        other => panic!("expected a timeout, got {:?}", other.err()),
    }
    mute.abort();
}
