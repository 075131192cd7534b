//! The fixtures server over real transports: stdio (the server end over in-memory pipes),
//! WebSocket and legacy HTTP+SSE (both on one TCP listener on 127.0.0.1, beside Streamable
//! HTTP, as `portico serve everything --http` runs them). Each runs the same [`scenario`], as a
//! 2025-11-25 and as a 2024-11-05 client: `initialize`, lists, calls with progress, sampling
//! and elicitation answered by the client, a resource, a prompt, a 2026-07-28 request where the
//! transport carries one, and bad input. Every message is validated against its revision's
//! official schema.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use portico_core::server::Server;
use portico_transport::http::legacy_sse::{self, LegacySseConfig};
use portico_transport::http::{self, HttpConfig};
use portico_transport::stdio::{self, StdioConfig};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use crate::{NEW, SESSION, notification_def, validate, validate_response};

/// The oldest revision: the one the legacy HTTP+SSE transport was made for.
const OLDEST: &str = "2024-11-05";

/// How long one wait may take before the test fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(10);

async fn within<F: std::future::Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {PATIENCE:?}"))
}

/// A client's end of one connection, whatever carries it.
enum Wire {
    Stdio {
        writer: WriteHalf<DuplexStream>,
        lines: Lines<BufReader<ReadHalf<DuplexStream>>>,
    },
    WebSocket(Box<WebSocketStream<MaybeTlsStream<TcpStream>>>),
    LegacySse {
        client: reqwest::Client,
        /// Where messages are POSTed: the `endpoint` event's URL.
        url: String,
        /// The `message` events' data, read off the stream by a task of their own.
        events: mpsc::Receiver<String>,
        reader: JoinHandle<()>,
    },
}

impl Drop for Wire {
    fn drop(&mut self) {
        if let Wire::LegacySse { reader, .. } = self {
            reader.abort();
        }
    }
}

impl Wire {
    /// Which transport, for messages.
    fn name(&self) -> &'static str {
        match self {
            Wire::Stdio { .. } => "stdio",
            Wire::WebSocket(_) => "WebSocket",
            Wire::LegacySse { .. } => "legacy HTTP+SSE",
        }
    }

    /// Sends one frame. Legacy HTTP+SSE refuses a bad one on its POST: that answer is returned.
    async fn send(&mut self, text: &str) -> Option<Value> {
        match self {
            Wire::Stdio { writer, .. } => {
                within("writing", writer.write_all(format!("{text}\n").as_bytes()))
                    .await
                    .expect("written");
                None
            }
            Wire::WebSocket(socket) => {
                within("sending", socket.send(Message::text(text))).await.expect("sent");
                None
            }
            Wire::LegacySse { client, url, .. } => {
                let response = within(
                    "POST",
                    client
                        .post(url.as_str())
                        .header("content-type", "application/json")
                        .body(text.to_string())
                        .send(),
                )
                .await
                .expect("an answer");
                if response.status() == reqwest::StatusCode::ACCEPTED {
                    return None;
                }
                let body = within("the body", response.text()).await.expect("a body");
                Some(serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}")))
            }
        }
    }

    async fn send_json(&mut self, message: &Value) {
        if let Some(refusal) = self.send(&message.to_string()).await {
            panic!("{} refused {message}: {refusal}", self.name());
        }
    }

    /// The next message the server sends.
    async fn recv(&mut self) -> Value {
        let text = match self {
            Wire::Stdio { lines, .. } => within("a line", lines.next_line())
                .await
                .expect("reading")
                .expect("the server is still there"),
            Wire::WebSocket(socket) => loop {
                match within("a frame", socket.next()).await.expect("open").expect("a frame") {
                    Message::Text(text) => break text.to_string(),
                    Message::Ping(_) | Message::Pong(_) => {}
                    other => panic!("unexpected frame {other:?}"),
                }
            },
            Wire::LegacySse { events, .. } => within("an event", events.recv()).await.expect("the stream is open"),
        };
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }
}

/// The server end of stdio over in-memory pipes, and the client's end.
fn stdio_wire(server: &Server) -> Wire {
    let (client, server_end) = tokio::io::duplex(1 << 16);
    let (reader, writer) = tokio::io::split(server_end);
    tokio::spawn(stdio::serve(
        reader,
        writer,
        server.connection(),
        StdioConfig::default(),
    ));
    let (reader, writer) = tokio::io::split(client);
    Wire::Stdio {
        writer,
        lines: BufReader::new(reader).lines(),
    }
}

/// Streamable HTTP (with WebSocket) at `/mcp` and legacy HTTP+SSE at `/sse` on one listener.
struct Listener {
    addr: String,
    shutdown: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

impl Listener {
    async fn start(server: &Server) -> Self {
        let config = HttpConfig::default();
        let legacy = LegacySseConfig::from_http(&config);
        let shutdown = config.shutdown.clone();
        let (a, b) = (server.clone(), server.clone());
        let app =
            http::router(move || a.connection(), config).merge(legacy_sse::router(move || b.connection(), legacy));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address").to_string();
        let task = tokio::spawn(http::serve(listener, app, shutdown.clone().cancelled_owned()));
        Self { addr, shutdown, task }
    }

    async fn websocket(&self) -> Wire {
        let mut request = format!("ws://{}/mcp", self.addr)
            .into_client_request()
            .expect("a request");
        request
            .headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_static("mcp"));
        let (socket, response) = within("the handshake", tokio_tungstenite::connect_async(request))
            .await
            .expect("upgraded");
        assert_eq!(response.headers()["sec-websocket-protocol"], "mcp");
        Wire::WebSocket(Box::new(socket))
    }

    async fn legacy_sse(&self) -> Wire {
        let client = reqwest::Client::new();
        let mut response = within(
            "GET /sse",
            client
                .get(format!("http://{}/sse", self.addr))
                .header("accept", "text/event-stream")
                .send(),
        )
        .await
        .expect("an answer");
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        let (tx, mut rx) = mpsc::channel(64);
        let reader = tokio::spawn(async move {
            let mut buffer = String::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
                while let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    let mut name = "message";
                    let mut data = Vec::new();
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("event: ") {
                            name = v;
                        } else if let Some(v) = line.strip_prefix("data: ") {
                            data.push(v);
                        }
                    }
                    if data.is_empty() {
                        continue;
                    }
                    let data = data.join("\n");
                    let event = match name {
                        "endpoint" => format!("endpoint {data}"),
                        "message" => data,
                        _ => panic!("unexpected event: {block}"),
                    };
                    if tx.send(event).await.is_err() {
                        return;
                    }
                }
            }
        });
        let first = within("the endpoint event", rx.recv()).await.expect("an event");
        let path = first.strip_prefix("endpoint ").expect(&first);
        assert!(path.starts_with("/messages?sessionId="), "{path}");
        Wire::LegacySse {
            client,
            url: format!("http://{}{path}", self.addr),
            events: rx,
            reader,
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        within("the server stops", self.task)
            .await
            .expect("the server task")
            .expect("serve");
    }
}

/// What one request produced.
#[derive(Debug, Default)]
struct Exchange {
    notifications: Vec<Value>,
    requests: Vec<Value>,
    response: Value,
}

impl Exchange {
    fn result(&self) -> &Value {
        assert!(
            self.response.get("result").is_some(),
            "expected a result: {}",
            self.response
        );
        &self.response["result"]
    }

    fn text(&self) -> &str {
        self.result()["content"][0]["text"].as_str().unwrap_or_default()
    }
}

/// One client on one wire, speaking `revision`.
struct Client<'a> {
    wire: &'a mut Wire,
    revision: &'static str,
    next: i64,
}

impl Client<'_> {
    /// Sends a request and collects what comes back until its response, answering the
    /// server's requests with `answer(method, params)`; validates every message.
    async fn exchange(
        &mut self,
        method: &str,
        params: Value,
        mut answer: impl FnMut(&str, &Value) -> Value,
    ) -> Exchange {
        self.next += 1;
        let id = self.next;
        let revision = if params
            .pointer("/_meta/io.modelcontextprotocol~1protocolVersion")
            .is_some()
        {
            NEW
        } else {
            self.revision
        };
        self.wire
            .send_json(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        let mut x = Exchange::default();
        loop {
            let message = self.wire.recv().await;
            if message["id"] == id && message.get("method").is_none() {
                x.response = message;
                break;
            }
            if let Some(server_method) = message["method"].as_str()
                && message.get("id").is_some()
            {
                let def = match server_method {
                    "sampling/createMessage" => "CreateMessageRequest",
                    "elicitation/create" => "ElicitRequest",
                    "roots/list" => "ListRootsRequest",
                    other => panic!("unexpected server request {other}"),
                };
                validate(revision, def, &message);
                let result = answer(server_method, &message["params"]);
                self.wire
                    .send_json(&json!({"jsonrpc": "2.0", "id": message["id"], "result": result}))
                    .await;
                x.requests.push(message);
            } else {
                validate(revision, notification_def(&message), &message);
                x.notifications.push(message);
            }
        }
        validate_response(revision, method, &x.response);
        x
    }

    async fn request(&mut self, method: &str, params: Value) -> Exchange {
        self.exchange(method, params, |m, p| panic!("unexpected request {m} {p}"))
            .await
    }
}

/// The `_meta` of a 2026-07-28 request.
fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": NEW,
        "io.modelcontextprotocol/clientInfo": {"name": "transports", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    })
}

/// The scenario every transport runs, as a client of `revision` (a session); with
/// `stateless`, a 2026-07-28 request on the same connection too.
async fn scenario(wire: &mut Wire, revision: &'static str, stateless: bool) {
    let transport = wire.name();
    let elicitation = revision != OLDEST;
    let capabilities = if elicitation {
        json!({"sampling": {}, "elicitation": {"form": {}}, "roots": {"listChanged": true}})
    } else {
        json!({"sampling": {}, "roots": {"listChanged": true}})
    };
    let mut c = Client {
        wire,
        revision,
        next: 0,
    };

    let init = c
        .request(
            "initialize",
            json!({"protocolVersion": revision, "capabilities": capabilities, "clientInfo": {"name": "transports", "version": "1"}}),
        )
        .await;
    assert_eq!(init.result()["protocolVersion"], revision, "{transport}");
    assert_eq!(init.result()["serverInfo"]["name"], portico_everything::NAME);
    c.wire
        .send_json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await;

    let tools = c.request("tools/list", json!({})).await;
    let names: Vec<&str> = tools.result()["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    for fixture in [
        "test_simple_text",
        "test_tool_with_progress",
        "test_sampling",
        "test_elicitation",
    ] {
        assert!(names.contains(&fixture), "{transport}: {fixture} in {names:?}");
    }

    let x = c
        .request("tools/call", json!({"name": "test_simple_text", "arguments": {}}))
        .await;
    assert_eq!(x.text(), "This is a simple text response for testing.", "{transport}");

    let x = c
        .request(
            "tools/call",
            json!({"name": "test_tool_with_progress", "arguments": {}, "_meta": {"progressToken": "p-1"}}),
        )
        .await;
    let progress: Vec<(f64, &Value)> = x
        .notifications
        .iter()
        .filter(|n| n["method"] == "notifications/progress")
        .map(|n| {
            (
                n["params"]["progress"].as_f64().unwrap_or(-1.0),
                &n["params"]["progressToken"],
            )
        })
        .collect();
    assert_eq!(
        progress,
        [(0.0, &json!("p-1")), (50.0, &json!("p-1")), (100.0, &json!("p-1"))],
        "{transport}"
    );
    assert!(x.text().contains("0, 50 and 100"), "{transport}: {}", x.text());

    let x = c
        .exchange(
            "tools/call",
            json!({"name": "test_sampling", "arguments": {"prompt": "Over the wire?"}}),
            |method, _| {
                assert_eq!(method, "sampling/createMessage");
                json!({"role": "assistant", "content": {"type": "text", "text": "Yes."}, "model": "test-model", "stopReason": "endTurn"})
            },
        )
        .await;
    assert_eq!(x.requests.len(), 1, "{transport}");
    assert_eq!(
        x.requests[0]["params"]["messages"][0]["content"]["text"],
        "Over the wire?"
    );
    assert_eq!(x.text(), "LLM response: Yes.", "{transport}");

    if elicitation {
        let content = json!({"username": "wire", "email": "wire@example.com"});
        let answer = content.clone();
        let x = c
            .exchange(
                "tools/call",
                json!({"name": "test_elicitation", "arguments": {"message": "Who is there?"}}),
                move |method, _| {
                    assert_eq!(method, "elicitation/create");
                    json!({"action": "accept", "content": answer})
                },
            )
            .await;
        assert_eq!(x.requests[0]["params"]["message"], "Who is there?");
        let text = x.text();
        let echoed = text
            .strip_prefix("User response: action=accept, content=")
            .unwrap_or_else(|| panic!("{text}"));
        assert_eq!(
            serde_json::from_str::<Value>(echoed).expect("JSON"),
            content,
            "{transport}"
        );
    }

    let x = c.request("resources/read", json!({"uri": "test://static-text"})).await;
    assert_eq!(
        x.result()["contents"][0]["text"],
        "This is the content of the static text resource.",
        "{transport}"
    );
    let x = c.request("prompts/get", json!({"name": "test_simple_prompt"})).await;
    assert_eq!(
        x.result()["messages"][0]["content"]["text"],
        "This is a simple prompt for testing.",
        "{transport}"
    );

    if stateless {
        // Served statelessly on the session's own connection: a 2026-07-28 result.
        let x = c
            .request(
                "tools/call",
                json!({"name": "test_simple_text", "arguments": {}, "_meta": meta()}),
            )
            .await;
        assert_eq!(x.result()["resultType"], "complete", "{transport}");
        assert_eq!(x.text(), "This is a simple text response for testing.");
        let x = c.request("server/discover", json!({"_meta": meta()})).await;
        assert!(
            x.result()["supportedVersions"]
                .as_array()
                .is_some_and(|v| v.contains(&json!(NEW)))
        );
    }

    // Bad input: answered, and the connection goes on serving.
    let error = match c.wire.send("{\"jsonrpc\": \"2.0\", \"id\": ").await {
        Some(refusal) => refusal,
        None => c.wire.recv().await,
    };
    assert_eq!(error["error"]["code"], -32700, "{transport}: {error}");
    let x = c.request("no/such/method", json!({})).await;
    assert_eq!(x.response["error"]["code"], -32601, "{transport}: {}", x.response);
    let x = c.request("ping", json!({})).await;
    assert_eq!(x.result(), &json!({}), "{transport}");
}

#[tokio::test]
async fn stdio_serves_the_scenario() {
    let server = portico_everything::server();
    for revision in [SESSION, OLDEST] {
        let mut wire = stdio_wire(&server);
        scenario(&mut wire, revision, true).await;
    }
}

#[tokio::test]
async fn websocket_serves_the_scenario() {
    let server = portico_everything::server();
    let listener = Listener::start(&server).await;
    for revision in [SESSION, OLDEST] {
        let mut wire = listener.websocket().await;
        scenario(&mut wire, revision, true).await;
    }
    listener.stop().await;
}

#[tokio::test]
async fn legacy_sse_serves_the_scenario() {
    let server = portico_everything::server();
    let listener = Listener::start(&server).await;
    for revision in [OLDEST, SESSION] {
        let mut wire = listener.legacy_sse().await;
        scenario(&mut wire, revision, false).await;
    }
    listener.stop().await;
}
