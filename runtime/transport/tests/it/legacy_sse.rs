//! The legacy HTTP+SSE transport (2024-11-05) over real TCP on 127.0.0.1, merged with the
//! Streamable HTTP router on one listener: the `endpoint` event, messages POSTed and answered
//! on the stream, every refusal, the session limit, keep-alives, and cancellation when the
//! stream closes.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use portico_transport::http::legacy_sse::{LegacySse, LegacySseConfig};
use portico_transport::http::{HttpConfig, StreamableHttp, serve};
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::within;
use crate::ws::{Waiting, test_server};

/// Streamable HTTP at `/mcp` and legacy HTTP+SSE at `/sse` + `/messages` on one listener.
struct Endpoint {
    base: String,
    legacy: LegacySse,
    waiting: Arc<Waiting>,
    shutdown: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
    client: reqwest::Client,
}

impl Endpoint {
    async fn start(config: LegacySseConfig) -> Self {
        Self::start_nested(config, None).await
    }

    /// With the legacy router nested under `prefix`, when given.
    async fn start_nested(mut config: LegacySseConfig, prefix: Option<&str>) -> Self {
        let waiting = Arc::new(Waiting::default());
        let server = test_server(waiting.clone());
        let http = HttpConfig::default();
        let shutdown = http.shutdown.clone();
        config.shutdown = shutdown.clone();
        let made = server.clone();
        let streamable = StreamableHttp::new(move || made.connection(), http);
        let legacy = LegacySse::new(move || server.connection(), config);
        let app = match prefix {
            Some(prefix) => streamable.router().merge(Router::new().nest(prefix, legacy.router())),
            None => streamable.router().merge(legacy.router()),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let task = tokio::spawn(serve(listener, app, shutdown.clone().cancelled_owned()));
        Self {
            base,
            legacy,
            waiting,
            shutdown,
            task,
            client: crate::http_client(),
        }
    }

    async fn default() -> Self {
        Self::start(LegacySseConfig::default()).await
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        within("GET", request.send()).await.expect("an answer")
    }

    /// Opens a session: its stream, and the URL to POST to.
    async fn open(&self, path: &str) -> (Events, String) {
        let response = self.get(path, &[("accept", "text/event-stream")]).await;
        let mut events = Events::new(response);
        let (name, data) = events.next().await.expect("the endpoint event");
        assert_eq!(name, "endpoint");
        (events, format!("{}{data}", self.base))
    }

    async fn post(&self, url: &str, body: impl Into<reqwest::Body>, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.client.post(url).body(body);
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        within("POST", request.send()).await.expect("an answer")
    }

    /// POSTs a message, which must be accepted.
    async fn send(&self, url: &str, message: &Value) {
        let response = self.post(url, message.to_string(), &[]).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED, "{message}");
        assert_eq!(within("the body", response.text()).await.expect("a body"), "");
    }

    async fn stop(self) {
        self.shutdown.cancel();
        within("the server stops", self.task)
            .await
            .expect("the server task")
            .expect("serve");
    }
}

/// Reads named SSE events off a streaming response, as they arrive.
struct Events {
    response: reqwest::Response,
    buffer: String,
    /// Comment lines seen so far.
    comments: usize,
}

impl Events {
    fn new(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers().get(CONTENT_TYPE).map(|v| v.as_bytes()),
            Some(&b"text/event-stream"[..])
        );
        Self {
            response,
            buffer: String::new(),
            comments: 0,
        }
    }

    /// The next event's name and data; `None` when the stream ends.
    async fn next(&mut self) -> Option<(String, String)> {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        name = v.to_string();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push(v);
                    } else if line.starts_with(':') {
                        self.comments += 1;
                    }
                }
                if !data.is_empty() {
                    return Some((name, data.join("\n")));
                }
            }
            let chunk = within("an SSE chunk", self.response.chunk())
                .await
                .expect("reading the stream")?;
            self.buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    /// The next `message` event, as JSON.
    async fn message(&mut self) -> Value {
        let (name, data) = self.next().await.expect("an event");
        assert_eq!(name, "message", "{data}");
        serde_json::from_str(&data).unwrap_or_else(|e| panic!("{e}: {data}"))
    }

    /// Reads until a comment line has come (events in between are not expected).
    async fn keepalive(&mut self) {
        while self.comments == 0 {
            if self.buffer.starts_with(":\n\n") {
                self.buffer.drain(..3);
                self.comments += 1;
                break;
            }
            let chunk = within("an SSE chunk", self.response.chunk())
                .await
                .expect("reading the stream")
                .expect("the stream is open");
            self.buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }
}

/// Asserts an error answer: the status and a JSON-RPC error with `code`.
async fn assert_error(response: reqwest::Response, status: StatusCode, code: i64) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers().get(CONTENT_TYPE).map(|v| v.as_bytes()),
        Some(&b"application/json"[..])
    );
    let text = within("the body", response.text()).await.expect("a body");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    body
}

fn initialize(id: i64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
}

fn echo(id: i64, text: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": text}}})
}

/// Opens a session and initializes it at 2024-11-05.
async fn session(ep: &Endpoint) -> (Events, String) {
    let (mut events, url) = ep.open("/sse").await;
    ep.send(&url, &initialize(0)).await;
    let answer = events.message().await;
    assert_eq!(answer["id"], 0);
    assert_eq!(answer["result"]["protocolVersion"], "2024-11-05", "{answer}");
    ep.send(&url, &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await;
    (events, url)
}

#[tokio::test]
async fn legacy_sse_announces_the_endpoint_and_answers_on_the_stream() {
    let ep = Endpoint::default().await;
    let response = ep.get("/sse", &[]).await;
    assert_eq!(response.headers()["cache-control"], "no-cache");
    let mut events = Events::new(response);
    let (name, data) = events.next().await.expect("the endpoint event");
    assert_eq!(name, "endpoint");
    let id = data.strip_prefix("/messages?sessionId=").expect(&data);
    assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    let url = format!("{}{data}", ep.base);
    assert_eq!(ep.legacy.open_sessions(), 1);

    ep.send(&url, &initialize(0)).await;
    let answer = events.message().await;
    assert_eq!(answer["result"]["protocolVersion"], "2024-11-05", "{answer}");
    assert_eq!(answer["result"]["serverInfo"]["name"], "portico-ws-test");
    ep.send(&url, &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await;
    ep.send(&url, &echo(1, "over SSE")).await;
    let answer = events.message().await;
    assert_eq!(answer["id"], 1);
    assert_eq!(answer["result"]["content"][0]["text"], "over SSE", "{answer}");
    // An unknown method is answered on the stream, as any answer.
    ep.send(&url, &json!({"jsonrpc": "2.0", "id": 2, "method": "no/such"}))
        .await;
    let answer = events.message().await;
    assert_eq!(answer["error"]["code"], -32601, "{answer}");

    // The Streamable HTTP endpoint on the same listener is unaffected.
    let response = ep
        .client
        .post(format!("{}/mcp", ep.base))
        .header(CONTENT_TYPE, "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(initialize(0).to_string())
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("mcp-session-id"));
    ep.stop().await;
}

#[tokio::test]
async fn legacy_sse_refuses_bad_posts() {
    let ep = Endpoint::start(LegacySseConfig {
        max_body_bytes: 256,
        ..LegacySseConfig::default()
    })
    .await;
    let (mut events, url) = session(&ep).await;
    let messages = format!("{}/messages", ep.base);

    let body = assert_error(ep.post(&messages, "{}", &[]).await, StatusCode::BAD_REQUEST, -32600).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("sessionId"),
        "{body}"
    );
    let unknown = format!("{messages}?sessionId=00000000000000000000000000000000");
    let body = assert_error(
        ep.post(&unknown, echo(1, "x").to_string(), &[]).await,
        StatusCode::NOT_FOUND,
        -32600,
    )
    .await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("GET /sse"),
        "{body}"
    );

    let body = assert_error(
        ep.post(&url, "{\"jsonrpc\": ", &[]).await,
        StatusCode::BAD_REQUEST,
        -32700,
    )
    .await;
    assert!(body.get("id").is_none(), "{body}");
    let body = assert_error(
        ep.post(&url, r#"{"jsonrpc": "1.0", "id": 9, "method": "ping"}"#, &[])
            .await,
        StatusCode::BAD_REQUEST,
        -32600,
    )
    .await;
    assert_eq!(body["id"], 9);
    assert_error(
        ep.post(&url, echo(1, &"x".repeat(300)).to_string(), &[]).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        -32600,
    )
    .await;
    assert_error(
        ep.post(&url, echo(1, "x").to_string(), &[("content-type", "text/plain")])
            .await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        -32600,
    )
    .await;
    let wrong_method = within("PUT", ep.client.put(&url).body("{}").send())
        .await
        .expect("an answer");
    let body = assert_error(wrong_method, StatusCode::METHOD_NOT_ALLOWED, -32600).await;
    assert!(
        body["error"]["message"].as_str().unwrap_or_default().contains("POST"),
        "{body}"
    );

    // None of that disturbed the session.
    ep.send(&url, &echo(3, "fine")).await;
    let answer = events.message().await;
    assert_eq!(answer["id"], 3, "{answer}");
    assert_eq!(answer["result"]["content"][0]["text"], "fine");
    ep.stop().await;
}

#[tokio::test]
async fn legacy_sse_checks_host_and_origin() {
    let ep = Endpoint::default().await;
    let evil = [("origin", "http://evil.example")];
    assert_error(ep.get("/sse", &evil).await, StatusCode::FORBIDDEN, -32600).await;
    assert_error(
        ep.get("/sse", &[("host", "evil.example")]).await,
        StatusCode::FORBIDDEN,
        -32600,
    )
    .await;
    assert_eq!(ep.legacy.open_sessions(), 0, "a refused GET leaves no session");
    let (_events, url) = ep.open("/sse").await;
    assert_error(
        ep.post(&url, initialize(0).to_string(), &evil).await,
        StatusCode::FORBIDDEN,
        -32600,
    )
    .await;
    let response = ep
        .post(&url, initialize(0).to_string(), &[("origin", "http://127.0.0.1:3000")])
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    ep.stop().await;
}

#[tokio::test]
async fn legacy_sse_closing_the_stream_ends_the_session_and_cancels_its_calls() {
    let ep = Endpoint::default().await;
    let (events, url) = session(&ep).await;
    ep.send(
        &url,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "wait", "arguments": {}}}),
    )
    .await;
    within("the tool starts", ep.waiting.started.notified()).await;
    drop(events);
    ep.waiting.cancelled().await;
    // The session left the registry before its peer was closed.
    assert_eq!(ep.legacy.open_sessions(), 0);
    assert_error(
        ep.post(&url, echo(2, "x").to_string(), &[]).await,
        StatusCode::NOT_FOUND,
        -32600,
    )
    .await;
    ep.stop().await;
}

#[tokio::test]
async fn legacy_sse_sessions_are_bounded() {
    let ep = Endpoint::start(LegacySseConfig {
        max_sessions: 1,
        ..LegacySseConfig::default()
    })
    .await;
    let (first, _) = ep.open("/sse").await;
    let body = assert_error(ep.get("/sse", &[]).await, StatusCode::SERVICE_UNAVAILABLE, -32603).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("1 sessions"),
        "{body}"
    );
    drop(first);
    // The slot is free once the server has noticed the closed stream.
    let (mut events, url) = within("a slot frees", async {
        loop {
            let response = ep.get("/sse", &[]).await;
            if response.status() == StatusCode::OK {
                let mut events = Events::new(response);
                let (_, data) = events.next().await.expect("the endpoint event");
                break (events, format!("{}{data}", ep.base));
            }
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    ep.send(&url, &initialize(0)).await;
    assert_eq!(events.message().await["id"], 0);
    ep.stop().await;
}

#[tokio::test]
async fn legacy_sse_sends_keepalives_and_ends_streams_on_shutdown() {
    let ep = Endpoint::start(LegacySseConfig {
        sse_keepalive: Some(Duration::from_millis(20)),
        ..LegacySseConfig::default()
    })
    .await;
    let (mut events, _url) = ep.open("/sse").await;
    events.keepalive().await;
    assert!(events.comments >= 1);
    ep.shutdown.cancel();
    assert!(events.next().await.is_none(), "the stream ends");
    assert_eq!(ep.legacy.open_sessions(), 0);
    ep.stop().await;
}

#[tokio::test]
async fn legacy_sse_announces_a_configured_endpoint_under_a_prefix() {
    let config = LegacySseConfig {
        endpoint: Some("/legacy/messages".into()),
        ..LegacySseConfig::default()
    };
    let ep = Endpoint::start_nested(config, Some("/legacy")).await;
    let (mut events, url) = ep.open("/legacy/sse").await;
    assert!(url.contains("/legacy/messages?sessionId="), "{url}");
    ep.send(&url, &initialize(0)).await;
    assert_eq!(events.message().await["result"]["protocolVersion"], "2024-11-05");
    ep.stop().await;
}
