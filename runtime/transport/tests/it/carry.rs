//! What a layer in front of the endpoint puts in an HTTP request's extensions reaches the
//! handlers ([`portico_transport::http::Carry`]): over Streamable HTTP (a stateless request, a
//! session's POSTs each with its own), WebSocket (the upgrade's, for every message) and the
//! legacy HTTP+SSE transport (each POST's).

use axum::extract::Request;
use axum::middleware::{Next, from_fn};
use axum::response::Response;
use futures_util::SinkExt;
use portico_core::server::{Context, Server, tool};
use portico_transport::http::legacy_sse::{self, LegacySseConfig};
use portico_transport::http::{Carry, HttpConfig, StreamableHttp, serve};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;

use crate::within;

/// What the layer learned about the caller (from the `x-caller` header, standing in for a
/// checked token).
#[derive(Clone)]
struct Caller(String);

/// The layer: an `x-caller` header becomes a [`Caller`] extension.
async fn identify(mut request: Request, next: Next) -> Response {
    if let Some(name) = request.headers().get("x-caller").and_then(|v| v.to_str().ok()) {
        let caller = Caller(name.to_string());
        request.extensions_mut().insert(caller);
    }
    next.run(request).await
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Nothing {}

/// Streamable HTTP (and WebSocket) at `/mcp`, legacy HTTP+SSE at `/sse` + `/messages`, behind
/// the layer; the one tool says who the handler sees.
struct Endpoint {
    base: String,
    shutdown: CancellationToken,
    client: reqwest::Client,
}

impl Endpoint {
    async fn start() -> Self {
        let server = Server::builder("carry-test", "1.0.0")
            .tool(tool(
                "whoami",
                "Who the caller is",
                |cx: Context, _: Nothing| async move {
                    cx.extension::<Caller>()
                        .map_or_else(|| "nobody".to_string(), |c| c.0.clone())
                },
            ))
            .build();
        let http = HttpConfig {
            carry: Carry::new().with::<Caller>(),
            ..HttpConfig::default()
        };
        let legacy = LegacySseConfig::from_http(&http);
        let shutdown = http.shutdown.clone();
        let (a, b) = (server.clone(), server);
        let app = StreamableHttp::new(move || a.connection(), http)
            .router()
            .merge(legacy_sse::router(move || b.connection(), legacy))
            .layer(from_fn(identify));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(serve(listener, app, shutdown.clone().cancelled_owned()));
        Self {
            base,
            shutdown,
            client: crate::http_client(),
        }
    }

    /// POSTs `body` to `path` as `caller` (none: no `x-caller`) with `headers`.
    async fn post(
        &self,
        path: &str,
        caller: Option<&str>,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_string());
        if let Some(caller) = caller {
            request = request.header("x-caller", caller);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        within("POST", request.send()).await.expect("an answer")
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn whoami(id: i64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}})
}

fn whoami_stateless(id: i64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "whoami", "arguments": {},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"}}}})
}

/// The text of a `tools/call` answer.
fn said(answer: &Value) -> String {
    answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {answer}"))
        .to_string()
}

async fn json_of(response: reqwest::Response) -> Value {
    let text = within("the body", response.text()).await.expect("a body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

const STATELESS_HEADERS: &[(&str, &str)] = &[
    ("mcp-protocol-version", "2026-07-28"),
    ("mcp-method", "tools/call"),
    ("mcp-name", "whoami"),
];

#[tokio::test]
async fn a_stateless_request_carries_its_own_post_s_values() {
    let ep = Endpoint::start().await;
    let answer = json_of(
        ep.post("/mcp", Some("ada"), STATELESS_HEADERS, &whoami_stateless(1))
            .await,
    )
    .await;
    assert_eq!(said(&answer), "ada", "{answer}");
    let answer = json_of(ep.post("/mcp", None, STATELESS_HEADERS, &whoami_stateless(2)).await).await;
    assert_eq!(said(&answer), "nobody", "{answer}");
}

#[tokio::test]
async fn each_post_of_a_session_carries_its_own_values() {
    let ep = Endpoint::start().await;
    let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let response = ep.post("/mcp", Some("ada"), &[], &initialize).await;
    let session = response
        .headers()
        .get("mcp-session-id")
        .expect("a session")
        .to_str()
        .expect("ASCII")
        .to_string();
    let headers = [
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(ep.post("/mcp", Some("ada"), &headers, &initialized).await.status(), 202);
    for (id, caller) in [(1, Some("bob")), (2, Some("ada")), (3, None)] {
        let answer = json_of(ep.post("/mcp", caller, &headers, &whoami(id)).await).await;
        assert_eq!(said(&answer), caller.unwrap_or("nobody"), "{answer}");
    }
}

#[tokio::test]
async fn every_message_of_a_websocket_carries_the_upgrade_s_values() {
    let ep = Endpoint::start().await;
    let mut request = format!("{}/mcp", ep.base.replacen("http", "ws", 1))
        .into_client_request()
        .expect("a request");
    request
        .headers_mut()
        .insert("x-caller", tungstenite::http::HeaderValue::from_static("carol"));
    let (mut socket, _) = within("the handshake", tokio_tungstenite::connect_async(request))
        .await
        .expect("upgraded");
    // A 2026-07-28 request, then a session's, on the same socket.
    let frames = [
        whoami_stateless(1),
        json!({"jsonrpc": "2.0", "id": 2, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        whoami(3),
    ];
    for frame in &frames {
        within("sending", socket.send(Message::text(frame.to_string())))
            .await
            .expect("sent");
    }
    let mut answers = Vec::new();
    while answers.len() < 3 {
        answers.push(crate::ws::next_json(&mut socket).await);
    }
    for id in [1, 3] {
        let answer = answers.iter().find(|a| a["id"] == id).expect("an answer");
        assert_eq!(said(answer), "carol", "{answer}");
    }
}

/// The events of a legacy SSE stream: `(event, data)` pairs as they come.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn next(&mut self) -> (String, String) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .filter_map(|l| l.strip_prefix(name))
                        .map(str::trim_start)
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                let (event, data) = (field("event:"), field("data:"));
                if event.is_empty() {
                    continue; // a keep-alive comment
                }
                return (event, data);
            }
            let chunk = within("an event", self.response.chunk())
                .await
                .expect("the stream is readable")
                .expect("the stream is open");
            self.buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }
}

#[tokio::test]
async fn each_legacy_sse_post_carries_its_own_values() {
    let ep = Endpoint::start().await;
    let response = within(
        "GET /sse",
        ep.client
            .get(format!("{}/sse", ep.base))
            .header("accept", "text/event-stream")
            .header("x-caller", "dave")
            .send(),
    )
    .await
    .expect("a stream");
    let mut events = Events {
        response,
        buffer: String::new(),
    };
    let (event, endpoint) = events.next().await;
    assert_eq!(event, "endpoint");
    let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    assert_eq!(ep.post(&endpoint, Some("dave"), &[], &initialize).await.status(), 202);
    let (_, answer) = events.next().await;
    assert!(answer.contains("2024-11-05"), "{answer}");
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(ep.post(&endpoint, Some("dave"), &[], &initialized).await.status(), 202);
    assert_eq!(ep.post(&endpoint, Some("erin"), &[], &whoami(1)).await.status(), 202);
    let (event, answer) = events.next().await;
    assert_eq!(event, "message");
    let answer: Value = serde_json::from_str(&answer).expect("JSON");
    assert_eq!(said(&answer), "erin", "the POST's caller, not the GET's: {answer}");
}
