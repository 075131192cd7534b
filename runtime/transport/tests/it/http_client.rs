//! The Streamable HTTP client transport over real TCP on 127.0.0.1: against a recording server
//! (what each request carries: `Mcp-Method`, `Mcp-Name`, `Mcp-Param-*`, the session's id and
//! revision, `DELETE` on shutdown), against Portico's own endpoint (a response stream resumed
//! with `Last-Event-ID`), and against servers that misbehave (garbage, a wrong id, a `202`, a
//! stream that ends early, a refusal, silence), each giving the caller a typed error.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use portico_core::client::{Client, ClientConfig, ClientError, Protocol, RequestOptions};
use portico_core::server::{Context, Server, tool};
use portico_core::{ErrorObject, JsonText, PeerError, RequestContext, Service};
use portico_transport::http::client::{HttpClient, HttpClientConfig, HttpClientError, connect};
use portico_transport::http::{HttpConfig, StreamableHttp, serve};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::within;

/// A client service that serves nothing.
pub(crate) struct Nobody;

impl Service for Nobody {
    async fn request(
        &self,
        _cx: RequestContext,
        method: String,
        _params: Option<Box<RawValue>>,
    ) -> Result<JsonText, ErrorObject> {
        Err(ErrorObject::method_not_found(&method))
    }
}

/// One request as the recording server saw it.
#[derive(Debug, Clone)]
struct Seen {
    verb: &'static str,
    headers: HeaderMap,
    body: Value,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// A router on 127.0.0.1:0, stopped on drop.
struct Running {
    url: String,
    stop: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn start(router: Router) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/mcp", listener.local_addr().expect("address"));
        let stop = CancellationToken::new();
        let task = tokio::spawn(serve(listener, router, stop.clone().cancelled_owned()));
        Self { url, stop, task }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
        self.task.abort();
    }
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn result(id: &Value, result: Value) -> Response {
    json_response(StatusCode::OK, json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

/// What the recording server answers: a 2026-07-28 server with two listed tools, or (after
/// `initialize`) a 2025-06-18 session `s-1`.
async fn recorded(log: Log, verb: &'static str, headers: HeaderMap, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    log.lock().expect("lock").push(Seen {
        verb,
        headers,
        body: body.clone(),
    });
    if verb != "POST" {
        return match verb {
            "DELETE" => StatusCode::NO_CONTENT.into_response(),
            _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
        };
    }
    let id = &body["id"];
    match body["method"].as_str().unwrap_or_default() {
        "server/discover" => result(
            id,
            json!({"resultType": "complete", "supportedVersions": ["2026-07-28"], "capabilities": {"tools": {}}}),
        ),
        "initialize" => {
            let mut response = result(
                id,
                json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "rec", "version": "1"}}),
            );
            response
                .headers_mut()
                .insert("mcp-session-id", "s-1".parse().expect("value"));
            response
        }
        "tools/list" => result(
            id,
            json!({"resultType": "complete", "tools": [
                {"name": "q", "inputSchema": {"type": "object", "properties": {
                    "region": {"type": "string", "x-mcp-header": "Region"},
                    "limits": {"type": "object", "properties": {"count": {"type": "integer", "x-mcp-header": "Count"}}},
                    "note": {"type": "string", "x-mcp-header": "Note"}
                }}},
                {"name": "bad", "inputSchema": {"type": "object", "properties": {
                    "ratio": {"type": "number", "x-mcp-header": "Ratio"}
                }}}
            ]}),
        ),
        "tools/call" => result(
            id,
            json!({"resultType": "complete", "content": [{"type": "text", "text": "ok"}]}),
        ),
        "prompts/get" => result(id, json!({"resultType": "complete", "messages": []})),
        "resources/read" => result(id, json!({"resultType": "complete", "contents": []})),
        "ping" => result(id, json!({})),
        _ if id.is_null() => StatusCode::ACCEPTED.into_response(),
        other => json_response(
            StatusCode::NOT_FOUND,
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": format!("no {other}")}}),
        ),
    }
}

fn recording(log: &Log) -> Router {
    let (a, b, c) = (log.clone(), log.clone(), log.clone());
    let route = post(move |headers: HeaderMap, body: Bytes| recorded(a, "POST", headers, body))
        .get(move |headers: HeaderMap| recorded(b, "GET", headers, Bytes::new()))
        .delete(move |headers: HeaderMap| recorded(c, "DELETE", headers, Bytes::new()));
    Router::new().route("/mcp", route)
}

/// The client's identity (`portico-protocol` is no dependency of this crate: read from JSON).
pub(crate) fn builder() -> portico_core::client::ClientBuilder {
    let info = serde_json::from_value(json!({"name": "http-client-it", "version": "1"})).expect("Implementation");
    Client::builder(info)
}

/// A client connected to `url` whose `initialize` (2025-11-25) was answered, and the answer;
/// `notifications/initialized` is the caller's to send.
async fn initialized(url: &str) -> (HttpClient<Nobody>, Value) {
    let http: HttpClient<Nobody> = connect(url, Nobody, HttpClientConfig::default()).await.expect("client");
    let init = within(
        "initialize",
        http.peer().handle().request(
            "initialize",
            &json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
        ),
    )
    .await
    .expect("initialized");
    (http, init)
}

fn seen(log: &Log, method: &str) -> Vec<Seen> {
    log.lock()
        .expect("lock")
        .iter()
        .filter(|s| s.body["method"] == method)
        .cloned()
        .collect()
}

#[tokio::test]
async fn stateless_requests_mirror_their_body_in_headers() {
    let log = Log::default();
    let running = Running::start(recording(&log)).await;
    let client = within(
        "connect",
        builder()
            .protocol(Protocol::Stateless)
            .connect(|service| connect(&running.url, service, HttpClientConfig::default())),
    )
    .await
    .expect("connects");
    // The tool with an annotation on a `number` is invalid: left out of the list.
    let tools = within("list", client.list_all_tools()).await.expect("tools");
    assert_eq!(tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["q"]);
    within(
        "call",
        client.call_tool("q", json!({"region": "Zürich", "limits": {"count": 42}, "note": null})),
    )
    .await
    .expect("call");
    within("get", client.get_prompt("héllo", Default::default()))
        .await
        .expect("get");
    within("read", client.read_resource("file:///a b.txt"))
        .await
        .expect("read");

    let call = &seen(&log, "tools/call")[0];
    assert_eq!(call.header("mcp-protocol-version"), Some("2026-07-28"));
    assert_eq!(call.header("mcp-method"), Some("tools/call"));
    assert_eq!(call.header("mcp-name"), Some("q"));
    assert_eq!(call.header("mcp-param-region"), Some("=?base64?WsO8cmljaA==?="));
    assert_eq!(call.header("mcp-param-count"), Some("42"));
    assert_eq!(call.header("mcp-param-note"), None, "a null argument is not mirrored");
    assert_eq!(call.header("mcp-session-id"), None);
    assert_eq!(call.header("accept"), Some("application/json, text/event-stream"));
    assert_eq!(
        call.body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"],
        "2026-07-28"
    );
    let get = &seen(&log, "prompts/get")[0];
    assert_eq!(get.header("mcp-name"), Some("=?base64?aMOpbGxv?="));
    let read = &seen(&log, "resources/read")[0];
    assert_eq!(read.header("mcp-name"), Some("file:///a b.txt"));
    assert_eq!(read.header("mcp-method"), Some("resources/read"));
    client.close().await.expect("close");
    // No session: nothing to end, no stream to open.
    assert!(log.lock().expect("lock").iter().all(|s| s.verb == "POST"));
}

#[tokio::test]
async fn a_session_carries_its_id_and_revision_and_ends_with_delete() {
    let log = Log::default();
    let running = Running::start(recording(&log)).await;
    let client = within(
        "connect",
        builder()
            .protocol(Protocol::Stateful("2025-06-18"))
            .connect(|service| connect(&running.url, service, HttpClientConfig::default())),
    )
    .await
    .expect("connects");
    within("ping", client.ping()).await.expect("ping");
    let init = &seen(&log, "initialize")[0];
    assert_eq!(init.header("mcp-session-id"), None);
    assert_eq!(init.header("mcp-protocol-version"), None);
    let initialized = &seen(&log, "notifications/initialized")[0];
    assert_eq!(initialized.header("mcp-session-id"), Some("s-1"));
    let ping = &seen(&log, "ping")[0];
    assert_eq!(ping.header("mcp-session-id"), Some("s-1"));
    assert_eq!(ping.header("mcp-protocol-version"), Some("2025-06-18"));
    assert_eq!(ping.header("mcp-method"), None, "sessions mirror nothing");
    client.close().await.expect("close");
    let log = log.lock().expect("lock");
    let delete = log.iter().find(|s| s.verb == "DELETE").expect("a DELETE");
    assert_eq!(delete.header("mcp-session-id"), Some("s-1"));
    // The GET stream was asked for once initialized (and refused with 405: not asked again).
    let gets: Vec<_> = log.iter().filter(|s| s.verb == "GET").collect();
    assert!(gets.len() <= 1, "{gets:?}");
    if let Some(get) = gets.first() {
        assert_eq!(get.header("mcp-session-id"), Some("s-1"));
        assert_eq!(get.header("accept"), Some("text/event-stream"));
    }
}

#[tokio::test]
async fn a_response_stream_that_ends_early_is_resumed_with_last_event_id() {
    let server = Server::builder("resume", "1.0.0")
        .tool(tool(
            "interrupted",
            "Ends its stream, then answers",
            |cx: Context, _a: Nothing| async move {
                cx.close_stream().await;
                tokio::time::sleep(Duration::from_millis(20)).await;
                "answered after the stream ended"
            },
        ))
        .build();
    let config = HttpConfig {
        sse_retry: Duration::from_millis(10),
        ..HttpConfig::default()
    };
    let endpoint = StreamableHttp::new(move || server.connection(), config);
    let running = Running::start(endpoint.router()).await;
    let (http, init) = initialized(&running.url).await;
    let peer = http.peer().handle().clone();
    assert_eq!(init["protocolVersion"], "2025-11-25");
    assert!(http.session_id().is_some());
    assert_eq!(http.protocol_version().as_deref(), Some("2025-11-25"));
    peer.notify("notifications/initialized", &json!({}))
        .await
        .expect("initialized");
    let answer: Value = within(
        "call",
        peer.request("tools/call", &json!({"name": "interrupted", "arguments": {}})),
    )
    .await
    .expect("the answer, after resuming");
    assert_eq!(answer["content"][0]["text"], "answered after the stream ended");
    assert_eq!(http.resumed_streams(), 1);
    http.shutdown().await.expect("DELETE");
    assert_eq!(endpoint.sessions().len(), 0);
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
pub(crate) struct Nothing {}

/// A 2026-07-28 server whose tools misbehave, each its own way.
pub(crate) async fn misbehave(body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let id = body["id"].clone();
    let sse = |text: String| ([(header::CONTENT_TYPE, "text/event-stream")], text).into_response();
    match (body["method"].as_str(), body["params"]["name"].as_str()) {
        (Some("server/discover"), _) => result(
            &id,
            json!({"resultType": "complete", "supportedVersions": ["2026-07-28"], "capabilities": {"tools": {}}}),
        ),
        (_, Some("garbage")) => ([(header::CONTENT_TYPE, "application/json")], "this is not JSON").into_response(),
        (_, Some("wrong_id")) => result(&json!(999_999), json!({"resultType": "complete", "content": []})),
        (_, Some("accepted")) => StatusCode::ACCEPTED.into_response(),
        (_, Some("cut_short")) => sse(format!(
            "data: {}\n\n",
            json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "hi"}})
        )),
        (_, Some("bad_event")) => sse("data: {not json\n\n".into()),
        (_, Some("not_a_message")) => json_response(StatusCode::OK, json!({"jsonrpc": "1.0", "id": id, "result": {}})),
        (_, Some("plain_500")) => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        (_, Some("refused")) => json_response(
            StatusCode::BAD_REQUEST,
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32022, "message": "unsupported", "data": {"supported": ["2026-07-28"]}}}),
        ),
        (_, Some("huge")) => result(
            &id,
            json!({"resultType": "complete", "content": [{"type": "text", "text": "x".repeat(4096)}]}),
        ),
        (_, Some("silent")) => std::future::pending().await,
        _ => StatusCode::BAD_REQUEST.into_response(),
    }
}

#[tokio::test]
async fn misbehaving_servers_give_typed_errors_without_waiting_for_the_timeout() {
    let running = Running::start(Router::new().route("/mcp", post(misbehave))).await;
    let config = HttpClientConfig {
        max_message_bytes: 2048,
        ..HttpClientConfig::default()
    };
    // A request timeout longer than the test's patience: an error that waited for it would fail
    // the test instead of passing it.
    let client_config = ClientConfig {
        request_timeout: Duration::from_secs(3600),
        ..ClientConfig::default()
    };
    let client = within(
        "connect",
        builder()
            .protocol(Protocol::Stateless)
            .config(client_config)
            .connect(|service| connect(&running.url, service, config)),
    )
    .await
    .expect("connects");
    // What is not JSON-RPC at all names itself: invalid JSON, in a body or an event.
    for (tool, expect) in [
        ("garbage", "invalid JSON: "),
        ("bad_event", "invalid JSON: key must be a string"),
        ("not_a_message", "not a JSON-RPC message: `jsonrpc` must be \"2.0\""),
    ] {
        match within(tool, client.call_tool(tool, json!({}))).await {
            Err(ClientError::Unreadable { method, message }) => {
                assert_eq!(method, "tools/call");
                assert!(message.starts_with(expect), "{tool}: {message}");
            }
            other => panic!("{tool}: expected an unreadable-message error, got {other:?}"),
        }
    }
    for (tool, expect) in [
        ("wrong_id", "not the request's response"),
        ("accepted", "without answering"),
        ("cut_short", "ended before the response"),
        ("plain_500", "boom"),
        ("huge", "longer than 2048 bytes"),
    ] {
        match within(tool, client.call_tool(tool, json!({}))).await {
            Err(ClientError::Transport { message, .. }) => {
                assert!(message.contains(expect), "{tool}: {message}");
            }
            other => panic!("{tool}: expected a transport error, got {other:?}"),
        }
    }
    let error = within("refused", client.call_tool("refused", json!({})))
        .await
        .expect_err("refused");
    assert_eq!(error.code(), Some(-32022), "{error}");
    if let ClientError::Transport { status, .. } = within("plain", client.call_tool("plain_500", json!({})))
        .await
        .expect_err("500")
    {
        assert_eq!(status, Some(500));
    }
    // Silence: the request's own timeout ends it, with a typed error.
    let options = RequestOptions::new().timeout(Duration::from_millis(200));
    let error = within("silent", client.call_tool_with("silent", json!({}), &options))
        .await
        .expect_err("timeout");
    assert!(matches!(error, ClientError::Timeout { .. }), "{error}");
    client.close().await.expect("close");
}

#[tokio::test]
async fn nobody_listening_and_bad_urls_are_typed_errors() {
    // A port nobody listens on: bind one, then let it go.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/mcp", listener.local_addr().expect("address"));
    drop(listener);
    let http = connect(&url, Nobody, HttpClientConfig::default())
        .await
        .expect("no I/O yet");
    let error = within("ping", http.peer().handle().request::<_, Value>("ping", &json!({})))
        .await
        .expect_err("refused");
    assert!(
        matches!(error, PeerError::Remote(ref e) if e.message.contains("POST")),
        "{error}"
    );
    // This test crate has the `tls` feature: https:// is a URL like any (no I/O at connect).
    assert!(
        connect("https://example.com/mcp", Nobody, HttpClientConfig::default())
            .await
            .is_ok()
    );
    assert!(matches!(
        connect("not a url", Nobody, HttpClientConfig::default()).await,
        Err(HttpClientError::InvalidUrl { .. })
    ));
}

#[tokio::test]
async fn nothing_overtakes_the_end_of_the_handshake() {
    // A server slow to accept `notifications/initialized` (200 ms after it came): it says when
    // it came, and notes when it has accepted it and when a request comes.
    let events: Arc<Mutex<Vec<String>>> = Arc::default();
    let noted = events.clone();
    let came = Arc::new(tokio::sync::Notify::new());
    let arrived = came.clone();
    let route = post(move |body: Bytes| {
        let (noted, arrived) = (noted.clone(), arrived.clone());
        async move {
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let method = body["method"].as_str().unwrap_or_default().to_string();
            match method.as_str() {
                "initialize" => {
                    let mut response = result(
                        &body["id"],
                        json!({"protocolVersion": "2025-11-25", "capabilities": {}, "serverInfo": {"name": "slow", "version": "1"}}),
                    );
                    response
                        .headers_mut()
                        .insert("mcp-session-id", "s-1".parse().expect("value"));
                    response
                }
                "notifications/initialized" => {
                    arrived.notify_one();
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    noted.lock().expect("lock").push("initialized accepted".into());
                    StatusCode::ACCEPTED.into_response()
                }
                _ => {
                    noted.lock().expect("lock").push(method);
                    result(&body["id"], json!({}))
                }
            }
        }
    })
    .get(|| async { StatusCode::METHOD_NOT_ALLOWED });
    let running = Running::start(Router::new().route("/mcp", route)).await;
    let (http, _) = initialized(&running.url).await;
    let peer = http.peer().handle().clone();
    // The handshake's end from one task and, while the server holds it, a request from another.
    let ending = tokio::spawn({
        let peer = peer.clone();
        async move { peer.notify("notifications/initialized", &json!({})).await }
    });
    within("the handshake's end at the server", came.notified()).await;
    let _: Value = within("ping", peer.request("ping", &json!({}))).await.expect("pong");
    within("the handshake's end", ending)
        .await
        .expect("joined")
        .expect("sent");
    assert_eq!(
        *events.lock().expect("lock"),
        ["initialized accepted", "ping"],
        "the request waited for the handshake's end"
    );
    http.shutdown().await.expect("shutdown");
}

/// Signals when the `wait` tool starts, and when it is dropped (it ends only by cancellation).
#[derive(Default)]
struct Waiting {
    started: tokio::sync::Notify,
    running: std::sync::atomic::AtomicBool,
    dropped: tokio::sync::Notify,
    cancelled: std::sync::atomic::AtomicBool,
}

struct Dropped(Arc<Waiting>);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.cancelled.store(true, std::sync::atomic::Ordering::SeqCst);
        self.0.dropped.notify_waiters();
    }
}

#[tokio::test]
async fn dropping_a_call_cancels_it_on_the_server_in_both_generations() {
    use std::sync::atomic::Ordering;
    for protocol in [Protocol::Stateless, Protocol::Stateful("2025-11-25")] {
        let waiting = Arc::new(Waiting::default());
        let w = waiting.clone();
        let server = Server::builder("cancel", "1.0.0")
            .tool(tool("wait", "Waits until cancelled", move |_cx, _a: Nothing| {
                let w = w.clone();
                async move {
                    let _dropped = Dropped(w.clone());
                    w.running.store(true, Ordering::SeqCst);
                    w.started.notify_waiters();
                    std::future::pending::<()>().await;
                    "unreachable"
                }
            }))
            .build();
        let endpoint = StreamableHttp::new(move || server.connection(), HttpConfig::default());
        let running = Running::start(endpoint.router()).await;
        let client = within(
            "connect",
            builder()
                .protocol(protocol)
                .connect(|service| connect(&running.url, service, HttpClientConfig::default())),
        )
        .await
        .expect("connects");
        let started = waiting.started.notified();
        let call = tokio::spawn({
            let client = client.clone();
            async move { client.call_tool("wait", json!({})).await }
        });
        if !waiting.running.load(Ordering::SeqCst) {
            within("start", started).await;
        }
        let dropped = waiting.dropped.notified();
        call.abort();
        // 2026-07-28: the POST's stream closes; a session: `notifications/cancelled`.
        if !waiting.cancelled.load(Ordering::SeqCst) {
            within("cancellation", dropped).await;
        }
        assert!(waiting.cancelled.load(Ordering::SeqCst), "{protocol:?}");
        client.close().await.expect("close");
    }
}

/// A logging level by its name (the protocol types are no dependency of this crate).
fn level<T: serde::de::DeserializeOwned>(name: &str) -> T {
    serde_json::from_value(json!(name)).expect("a logging level")
}

#[tokio::test]
async fn a_session_the_server_forgot_is_renewed_with_its_level_and_subscriptions() {
    use portico_core::client::Notification;
    use portico_core::server::{Change, resource};

    const WATCHED: &str = "test://watched";
    let server = Server::builder("renew", "1.0.0")
        .tool(tool(
            "chatty",
            "Logs at debug and info",
            |cx: Context, _a: Nothing| async move {
                let _ = cx.log(level("debug"), "debug").await;
                let _ = cx.log(level("info"), "info").await;
                "done"
            },
        ))
        .resource(resource(WATCHED, "watched", |_cx| async { Ok(Vec::new()) }))
        .build();
    let serving = server.clone();
    let endpoint = StreamableHttp::new(move || serving.connection(), HttpConfig::default());
    let running = Running::start(endpoint.router()).await;
    let connect_with = |config: ClientConfig| {
        builder()
            .protocol(Protocol::Stateful("2025-11-25"))
            .config(config)
            .connect(|service| connect(&running.url, service, HttpClientConfig::default()))
    };
    let client = within("connect", connect_with(ClientConfig::default()))
        .await
        .expect("connects");
    let mut notifications = client.notifications();
    within("setLevel", client.set_level(level("info")))
        .await
        .expect("level");
    within("subscribe", client.subscribe(WATCHED))
        .await
        .expect("subscribed");
    let first = endpoint.sessions().ids();
    assert_eq!(first.len(), 1);
    assert!(endpoint.sessions().close(&first[0]));

    // The next call meets a 404, starts a new session (level and subscription asked for again)
    // and is sent once more.
    let answer = within(
        "call after the session was forgotten",
        client.call_tool("chatty", json!({})),
    )
    .await
    .expect("answered in a new session");
    assert_eq!(answer.content.len(), 1);
    let renewed = endpoint.sessions().ids();
    assert_eq!(renewed.len(), 1, "{renewed:?}");
    assert_ne!(renewed, first);
    server.notify(Change::ResourceUpdated(WATCHED.into()));
    let mut logged = Vec::new();
    loop {
        match within("notifications", notifications.recv()).await.expect("open") {
            Notification::Log(message) => logged.push((json!(message.level), message.data)),
            Notification::ResourceUpdated { uri, .. } => {
                assert_eq!(uri, WATCHED);
                break;
            }
            _ => {}
        }
    }
    // Only the info message: the new session got the level too.
    assert_eq!(logged, [(json!("info"), json!("info"))]);
    client.close().await.expect("close");

    // Renewal off: the request fails, typed.
    let client = within(
        "connect",
        connect_with(ClientConfig {
            renew_sessions: false,
            ..ClientConfig::default()
        }),
    )
    .await
    .expect("connects");
    let id = endpoint.sessions().ids();
    assert_eq!(id.len(), 1);
    assert!(endpoint.sessions().close(&id[0]));
    let error = within("call", client.call_tool("chatty", json!({})))
        .await
        .expect_err("expired");
    assert!(matches!(error, ClientError::SessionExpired { .. }), "{error}");
}
