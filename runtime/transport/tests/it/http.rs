//! The Streamable HTTP server transport over real TCP on 127.0.0.1: a
//! [`portico_core::server::Server`] behind the endpoint, driven by a plain HTTP client the way
//! 2026-07-28 (stateless) and 2025-11-25 (session) clients drive it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use portico_core::server::{Change, Context, Server, tool};
use portico_transport::http::{HttpConfig, ResponseMode, StreamableHttp, serve};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::within;

mod fuzz;
mod resume;

const MODERN: &str = "2026-07-28";
const LEGACY: &str = "2025-11-25";
const BOTH: &str = "application/json, text/event-stream";

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
struct Nothing {}

/// Arguments a client mirrors into `Mcp-Param-*` headers.
#[derive(Deserialize, schemars::JsonSchema)]
struct RegionArgs {
    /// Where to run.
    #[schemars(extend("x-mcp-header" = "Region"))]
    region: String,
    /// How many to run.
    #[schemars(extend("x-mcp-header" = "Count"))]
    count: Option<i64>,
}

/// What the `wait` tool reports: that it started, and that it saw its cancellation.
#[derive(Default)]
struct Waiting {
    started: Notify,
    cancelled: AtomicBool,
    seen: Notify,
}

/// Records that the `wait` tool ended (it ends only by cancellation).
struct CancelGuard(Arc<Waiting>);

impl Drop for CancelGuard {
    fn drop(&mut self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
        self.0.seen.notify_one();
    }
}

fn test_server(waiting: Arc<Waiting>) -> Server {
    Server::builder("portico-http-test", "1.0.0")
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
        .tool(tool(
            "region",
            "Says where it would run (its arguments are mirrored in headers)",
            |_cx, args: RegionArgs| async move { format!("{} x{}", args.region, args.count.unwrap_or(1)) },
        ))
        .tool(tool(
            "poll",
            "Ends its stream at once, reports progress, then answers",
            |cx: Context, _args: Nothing| async move {
                let closed = cx.close_stream().await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                let _ = cx.progress(1.0, Some(1.0), Some("halfway")).await;
                format!("polled (stream closed: {closed})")
            },
        ))
        .tool(tool(
            "wait",
            "Runs until cancelled",
            move |cx: Context, _args: Nothing| {
                let waiting = waiting.clone();
                async move {
                    // The peer either lets the handler see the cancellation or drops it: the guard
                    // notices both.
                    let _guard = CancelGuard(waiting.clone());
                    waiting.started.notify_one();
                    cx.cancelled().await;
                    "cancelled"
                }
            },
        ))
        .build()
}

/// A running endpoint on 127.0.0.1.
struct Endpoint {
    url: String,
    http: StreamableHttp,
    server: Server,
    waiting: Arc<Waiting>,
    shutdown: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
    client: reqwest::Client,
}

/// A POST written by hand on one connection: its head with `headers`, then the body's
/// `chunks` in chunked transfer coding, 20 ms apart; the whole response, as text.
async fn post_chunked(url: &str, headers: &HeaderMap, chunks: &[&[u8]]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = url.trim_start_matches("http://").trim_end_matches("/mcp");
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
    let mut head = format!(
        "POST /mcp HTTP/1.1\r\nhost: {address}\r\naccept: {BOTH}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n"
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {}\r\n", value.to_str().expect("text")));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("write");
    // A server that refused the body may close before the rest is written: what it answered
    // is read all the same.
    for chunk in chunks {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
        let _ = stream.write_all(&framed).await;
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = within("the answer", stream.read_to_end(&mut response)).await;
    String::from_utf8(response).expect("text")
}

#[tokio::test]
async fn a_body_sent_in_chunks_is_read_to_its_end() {
    let ep = Endpoint::start(HttpConfig {
        max_body_bytes: 1024,
        ..HttpConfig::default()
    })
    .await;
    let mut params = json!({"name": "echo", "arguments": {"text": "in pieces"}});
    params["_meta"] = meta(&params);
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}).to_string();
    let headers = modern_headers("tools/call", &params);
    let (a, b) = body.as_bytes().split_at(body.len() / 2);
    let response = post_chunked(&ep.url, &headers, &[a, b]).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains("in pieces") && response.contains(r#""id":7"#),
        "{response}"
    );
    // Over the limit only in its second chunk: refused as a whole.
    let pad = "x".repeat(1000);
    let response = post_chunked(&ep.url, &headers, &[a, pad.as_bytes(), b]).await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    ep.stop().await;
}

impl Endpoint {
    async fn start(config: HttpConfig) -> Self {
        let waiting = Arc::new(Waiting::default());
        let server = test_server(waiting.clone());
        let shutdown = config.shutdown.clone();
        let made = server.clone();
        let http = StreamableHttp::new(move || made.connection(), config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/mcp", listener.local_addr().expect("address"));
        let task = tokio::spawn(serve(listener, http.router(), shutdown.clone().cancelled_owned()));
        Self {
            url,
            http,
            server,
            waiting,
            shutdown,
            task,
            client: crate::http_client(),
        }
    }

    async fn default() -> Self {
        Self::start(HttpConfig::default()).await
    }

    /// POSTs `body` with `headers`.
    async fn post(&self, body: &Value, headers: HeaderMap) -> reqwest::Response {
        within(
            "POST",
            self.client
                .post(&self.url)
                .header("accept", BOTH)
                .header(CONTENT_TYPE, "application/json")
                .headers(headers)
                .body(body.to_string())
                .send(),
        )
        .await
        .expect("the server answers")
    }

    /// A 2026-07-28 request with the headers its body calls for.
    async fn modern(&self, id: i64, method: &str, mut params: Value) -> reqwest::Response {
        params["_meta"] = meta(&params);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.post(&body, modern_headers(method, &params)).await
    }

    /// `initialize` of a 2025-11-25 client: the session id.
    async fn initialize(&self) -> String {
        self.initialize_at(LEGACY).await
    }

    /// `initialize` of a client of `version`: the session id.
    async fn initialize_at(&self, version: &str) -> String {
        let response = self
            .post(
                &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                    "protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}),
                HeaderMap::new(),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let session = response
            .headers()
            .get("mcp-session-id")
            .expect("a session id")
            .to_str()
            .expect("ASCII")
            .to_string();
        let answer = json_body(response).await;
        assert_eq!(answer["result"]["protocolVersion"], version, "{answer}");
        let mut headers = session_headers(&session);
        headers.insert("mcp-protocol-version", header(version));
        let response = self
            .post(
                &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
                headers,
            )
            .await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        session
    }

    async fn stop(self) {
        self.shutdown.cancel();
        within("the server stops", self.task)
            .await
            .expect("the server task")
            .expect("serve");
    }
}

/// The request `_meta` of a 2026-07-28 client, keeping what `params._meta` already has.
fn meta(params: &Value) -> Value {
    let mut meta = json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
    });
    if let Some(extra) = params.get("_meta").and_then(Value::as_object) {
        for (k, v) in extra {
            meta[k] = v.clone();
        }
    }
    meta
}

fn header(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).expect("a header value")
}

/// `MCP-Protocol-Version`, `Mcp-Method` and, where the method has one, `Mcp-Name`.
fn modern_headers(method: &str, params: &Value) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("mcp-protocol-version", header(MODERN));
    headers.insert("mcp-method", header(method));
    let name = match method {
        "tools/call" | "prompts/get" => params["name"].as_str(),
        "resources/read" => params["uri"].as_str(),
        _ => None,
    };
    if let Some(name) = name {
        headers.insert("mcp-name", header(name));
    }
    headers
}

fn session_headers(session: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("mcp-session-id", header(session));
    headers.insert("mcp-protocol-version", header(LEGACY));
    headers
}

fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

async fn json_body(response: reqwest::Response) -> Value {
    assert_eq!(content_type(&response), "application/json");
    let text = within("the body", response.text()).await.expect("a body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The MCP spec inputs: `MCP_SPEC_DIR`, else `../shared/mcp-spec` beside the repository.
fn spec_dir() -> std::path::PathBuf {
    match std::env::var_os("MCP_SPEC_DIR") {
        Some(dir) => dir.into(),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/mcp-spec"),
    }
}

/// Validates `value` as the definition `def` of `revision`'s official schema.
fn validate(revision: &str, def: &str, value: &Value) {
    let path = spec_dir().join(revision).join("schema.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; set MCP_SPEC_DIR to the MCP spec folder", path.display()));
    let schema: Value = serde_json::from_str(&text).expect("schema.json is JSON");
    let wrapper = json!({"$schema": schema["$schema"], "$ref": format!("#/$defs/{def}"), "$defs": schema["$defs"]});
    let validator = jsonschema::validator_for(&wrapper).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{revision} {def} {value}:\n{}", errors.join("\n"));
}

/// Asserts an error answer: the status, a JSON-RPC error with `code`, and the `id` (absent
/// when `None`). The body is a valid error response of both 2025-11-25 and 2026-07-28.
async fn expect_error(response: reqwest::Response, status: StatusCode, code: i64, id: Option<i64>) -> Value {
    assert_eq!(response.status(), status);
    let body = json_body(response).await;
    validate(LEGACY, "JSONRPCErrorResponse", &body);
    validate(MODERN, "JSONRPCErrorResponse", &body);
    match code {
        -32020 => validate(MODERN, "HeaderMismatchError", &body),
        -32022 => validate(MODERN, "UnsupportedProtocolVersionError", &body),
        _ => {}
    }
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    match id {
        Some(id) => assert_eq!(body["id"], id, "{body}"),
        None => assert!(body.get("id").is_none(), "no id member: {body}"),
    }
    body
}

/// One SSE event.
#[derive(Debug)]
struct Event {
    id: Option<String>,
    data: Value,
}

/// Reads SSE events off a streaming response, as they arrive.
struct Events {
    response: reqwest::Response,
    buffer: String,
    /// The id of the last block read, with data or without (a priming event).
    last_id: Option<String>,
}

impl Events {
    fn new(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(content_type(&response), "text/event-stream");
        assert_eq!(
            response.headers().get("x-accel-buffering").map(|v| v.as_bytes()),
            Some(&b"no"[..])
        );
        Self {
            response,
            buffer: String::new(),
            last_id: None,
        }
    }

    /// The next event with data; `None` when the stream ends.
    async fn next(&mut self) -> Option<Event> {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut id = None;
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = Some(v.to_string());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push(v);
                    }
                }
                if id.is_some() {
                    self.last_id.clone_from(&id);
                }
                // An event without data (a priming event) dispatches nothing, as in a browser.
                if data.iter().any(|d| !d.is_empty()) {
                    let text = data.join("\n");
                    let data = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
                    return Some(Event { id, data });
                }
            }
            let chunk = within("an SSE chunk", self.response.chunk())
                .await
                .expect("reading the stream")?;
            self.buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    /// All remaining events, until the stream ends.
    async fn rest(mut self) -> Vec<Event> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await {
            events.push(event);
        }
        events
    }
}

#[tokio::test]
async fn stateless_requests_get_json_answers() {
    let ep = Endpoint::default().await;
    let response = ep.modern(1, "tools/list", json!({})).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers().get("mcp-session-id").is_none(),
        "no session in 2026-07-28"
    );
    let answer = json_body(response).await;
    assert_eq!(answer["id"], 1);
    let names: Vec<&str> = answer["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["echo", "count", "ask", "region", "poll", "wait"]);

    validate(MODERN, "ListToolsResultResponse", &answer);

    let response = ep
        .modern(2, "tools/call", json!({"name": "echo", "arguments": {"text": "hi"}}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let answer = json_body(response).await;
    validate(MODERN, "CallToolResultResponse", &answer);
    assert_eq!(answer["id"], 2);
    assert_eq!(answer["result"]["content"][0]["text"], "hi", "{answer}");
    assert_eq!(answer["result"]["resultType"], "complete");

    // A string id, and a name that needs the Base64 sentinel form.
    let params = json!({"name": "echo", "arguments": {"text": "ok"}, "_meta": meta(&json!({}))});
    let mut headers = modern_headers("tools/call", &params);
    headers.insert("mcp-name", header("=?base64?ZWNobw==?="));
    let body = json!({"jsonrpc": "2.0", "id": "s-1", "method": "tools/call", "params": params});
    let answer = json_body(ep.post(&body, headers).await).await;
    assert_eq!(answer["id"], "s-1");
    assert_eq!(answer["result"]["content"][0]["text"], "ok", "{answer}");

    // An unknown method is 404 in 2026-07-28, with the JSON-RPC error telling it apart.
    expect_error(
        ep.modern(3, "tools/frobnicate", json!({})).await,
        StatusCode::NOT_FOUND,
        -32601,
        Some(3),
    )
    .await;
    ep.stop().await;
}

#[tokio::test]
async fn stateless_progress_streams_before_the_result() {
    let ep = Endpoint::default().await;
    let params = json!({"name": "count", "arguments": {"steps": 3}, "_meta": {"progressToken": "p1"}});
    let events = Events::new(ep.modern(7, "tools/call", params).await).rest().await;
    assert_eq!(events.len(), 4, "{events:?}");
    for (i, event) in events[..3].iter().enumerate() {
        assert_eq!(event.data["method"], "notifications/progress", "{event:?}");
        assert_eq!(event.data["params"]["progressToken"], "p1");
        assert_eq!(event.data["params"]["progress"].as_f64(), Some((i + 1) as f64));
        assert_eq!(event.data["params"]["total"], 3.0);
    }
    for event in &events[..3] {
        validate(MODERN, "ProgressNotification", &event.data);
    }
    let last = &events[3].data;
    validate(MODERN, "CallToolResultResponse", last);
    assert_eq!(last["id"], 7);
    assert_eq!(last["result"]["content"][0]["text"], "counted to 3", "{last}");
    // Event ids: one stream, counted from 1.
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_deref().expect("an id")).collect();
    let stream = ids[0].split_once('-').expect("stream-seq").0;
    assert_eq!(ids, (1..=4).map(|n| format!("{stream}-{n}")).collect::<Vec<_>>());

    // Without a progress token the same tool answers in JSON; a client that takes only SSE
    // gets SSE anyway.
    let answer = json_body(
        ep.modern(8, "tools/call", json!({"name": "count", "arguments": {"steps": 2}}))
            .await,
    )
    .await;
    assert_eq!(answer["result"]["content"][0]["text"], "counted to 2");
    let params = json!({"name": "echo", "arguments": {"text": "sse"}, "_meta": meta(&json!({}))});
    let mut headers = modern_headers("tools/call", &params);
    headers.insert("accept", header("text/event-stream"));
    let body = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": params});
    let response = ep
        .client
        .post(&ep.url)
        .headers(headers)
        .body(body.to_string())
        .send()
        .await
        .expect("sent");
    let events = Events::new(response).rest().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].data["result"]["content"][0]["text"], "sse");
    ep.stop().await;
}

#[tokio::test]
async fn response_modes_can_be_forced() {
    let ep = Endpoint::start(HttpConfig {
        response_mode: ResponseMode::Sse,
        ..HttpConfig::default()
    })
    .await;
    let events = Events::new(ep.modern(1, "tools/list", json!({})).await).rest().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].data["id"], 1);
    ep.stop().await;

    let ep = Endpoint::start(HttpConfig {
        response_mode: ResponseMode::Json,
        ..HttpConfig::default()
    })
    .await;
    let params = json!({"name": "count", "arguments": {"steps": 2}, "_meta": {"progressToken": 5}});
    let answer = json_body(ep.modern(2, "tools/call", params).await).await;
    assert_eq!(
        answer["result"]["content"][0]["text"], "counted to 2",
        "progress dropped"
    );
    ep.stop().await;
}

#[tokio::test]
async fn stateful_session_lifecycle() {
    let ep = Endpoint::default().await;
    let session = ep.initialize().await;
    assert_eq!(session.len(), 32, "128 bits in hex: {session}");
    assert!(session.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(ep.http.sessions().len(), 1);

    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "in session"}}});
    let answer = json_body(ep.post(&call, session_headers(&session)).await).await;
    assert_eq!(answer["result"]["content"][0]["text"], "in session", "{answer}");
    assert!(
        answer["result"].get("resultType").is_none(),
        "2025-11-25 results have no resultType"
    );

    // Progress in a session streams on the POST too.
    let count = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "count", "arguments": {"steps": 2}, "_meta": {"progressToken": 9}}});
    let events = Events::new(ep.post(&count, session_headers(&session)).await)
        .rest()
        .await;
    let methods: Vec<&Value> = events.iter().map(|e| &e.data["method"]).collect();
    assert_eq!(
        methods,
        [
            &json!("notifications/progress"),
            &json!("notifications/progress"),
            &Value::Null
        ]
    );
    assert_eq!(events[2].data["id"], 2);

    let delete = within(
        "DELETE",
        ep.client.delete(&ep.url).headers(session_headers(&session)).send(),
    )
    .await
    .expect("sent");
    assert_eq!(delete.status(), StatusCode::NO_CONTENT);
    assert!(ep.http.sessions().is_empty());
    expect_error(
        ep.post(&call, session_headers(&session)).await,
        StatusCode::NOT_FOUND,
        -32600,
        Some(1),
    )
    .await;
    let again = within(
        "DELETE",
        ep.client.delete(&ep.url).headers(session_headers(&session)).send(),
    )
    .await
    .expect("sent");
    expect_error(again, StatusCode::NOT_FOUND, -32600, None).await;
    ep.stop().await;
}

#[tokio::test]
async fn session_errors() {
    let ep = Endpoint::default().await;
    let list = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list"});
    // No session id, no 2026 `_meta`.
    let body = expect_error(
        ep.post(&list, HeaderMap::new()).await,
        StatusCode::BAD_REQUEST,
        -32600,
        Some(4),
    )
    .await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Mcp-Session-Id"),
        "{body}"
    );
    // A session id nobody issued.
    let unknown = session_headers("0123456789abcdef0123456789abcdef");
    expect_error(
        ep.post(&list, unknown.clone()).await,
        StatusCode::NOT_FOUND,
        -32600,
        Some(4),
    )
    .await;
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    expect_error(ep.post(&note, unknown).await, StatusCode::NOT_FOUND, -32600, None).await;
    // A 2026 header without the 2026 `_meta` is a request with invalid params (its `_meta`
    // lacks a required member), not a missing session.
    let mut headers = HeaderMap::new();
    headers.insert("mcp-protocol-version", header(MODERN));
    let body = expect_error(ep.post(&list, headers).await, StatusCode::BAD_REQUEST, -32602, Some(4)).await;
    assert!(
        body["error"]["message"].as_str().unwrap_or_default().contains("_meta"),
        "{body}"
    );
    // An unsupported MCP-Protocol-Version header: the error carries the request's id.
    let mut headers = HeaderMap::new();
    headers.insert("mcp-protocol-version", header("1999-01-01"));
    let body = expect_error(ep.post(&list, headers).await, StatusCode::BAD_REQUEST, -32022, Some(4)).await;
    assert_eq!(body["error"]["data"]["requested"], "1999-01-01");
    assert!(
        body["error"]["data"]["supported"]
            .as_array()
            .is_some_and(|v| v.contains(&json!(LEGACY)))
    );
    // A failed `initialize` starts no session.
    let bad_init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": LEGACY}});
    let response = ep.post(&bad_init, HeaderMap::new()).await;
    assert!(response.headers().get("mcp-session-id").is_none());
    let body = json_body(response).await;
    assert_eq!(body["error"]["code"], -32602, "{body}");
    assert!(ep.http.sessions().is_empty());
    // A request id reused while its request is still being answered.
    let session = ep.initialize().await;
    let wait = json!({"jsonrpc": "2.0", "id": 50, "method": "tools/call", "params": {"name": "wait", "arguments": {}}});
    let first = tokio::spawn({
        let (client, url, headers) = (ep.client.clone(), ep.url.clone(), session_headers(&session));
        let body = wait.to_string();
        async move {
            client
                .post(url)
                .headers(headers)
                .header("accept", BOTH)
                .body(body)
                .send()
                .await
        }
    });
    within("the tool starts", ep.waiting.started.notified()).await;
    expect_error(
        ep.post(&wait, session_headers(&session)).await,
        StatusCode::BAD_REQUEST,
        -32600,
        Some(50),
    )
    .await;
    first.abort();
    ep.stop().await;
}

#[tokio::test]
async fn bad_bodies_and_headers() {
    let ep = Endpoint::start(HttpConfig {
        max_body_bytes: 1024,
        ..HttpConfig::default()
    })
    .await;
    let send = |body: String, headers: HeaderMap| {
        let request = ep
            .client
            .post(&ep.url)
            .header("accept", BOTH)
            .header(CONTENT_TYPE, "application/json")
            .headers(headers)
            .body(body);
        async move { within("POST", request.send()).await.expect("an answer") }
    };
    expect_error(
        send("{not json".into(), HeaderMap::new()).await,
        StatusCode::BAD_REQUEST,
        -32700,
        None,
    )
    .await;
    expect_error(
        send("[]".into(), HeaderMap::new()).await,
        StatusCode::BAD_REQUEST,
        -32600,
        None,
    )
    .await;
    expect_error(
        send(r#"{"jsonrpc":"2.0","id":3}"#.into(), HeaderMap::new()).await,
        StatusCode::BAD_REQUEST,
        -32600,
        Some(3),
    )
    .await;
    let batch = json!([{"jsonrpc": "2.0", "id": 1, "method": "ping"}]).to_string();
    expect_error(
        send(batch, HeaderMap::new()).await,
        StatusCode::BAD_REQUEST,
        -32600,
        None,
    )
    .await;
    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"pad": "x".repeat(2000)}});
    expect_error(
        send(big.to_string(), HeaderMap::new()).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        -32600,
        None,
    )
    .await;

    let mut evil = HeaderMap::new();
    evil.insert("origin", header("http://evil.example"));
    expect_error(ep.modern_with(1, evil).await, StatusCode::FORBIDDEN, -32600, None).await;
    let mut evil = HeaderMap::new();
    evil.insert("host", header("evil.example"));
    expect_error(ep.modern_with(1, evil).await, StatusCode::FORBIDDEN, -32600, None).await;
    let mut local = HeaderMap::new();
    local.insert("origin", header("http://localhost:5173"));
    assert_eq!(ep.modern_with(1, local).await.status(), StatusCode::OK);

    let mut text = HeaderMap::new();
    text.insert(CONTENT_TYPE, header("text/plain"));
    expect_error(
        send("{}".into(), text).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        -32600,
        None,
    )
    .await;
    let response = within(
        "POST",
        ep.client.post(&ep.url).header("accept", "text/html").body("{}").send(),
    )
    .await
    .expect("an answer");
    expect_error(response, StatusCode::NOT_ACCEPTABLE, -32600, None).await;
    let put = within("PUT", ep.client.put(&ep.url).send()).await.expect("an answer");
    assert_eq!(
        put.headers().get("allow").map(|v| v.as_bytes()),
        Some(&b"GET, POST, DELETE"[..])
    );
    expect_error(put, StatusCode::METHOD_NOT_ALLOWED, -32600, None).await;
    ep.stop().await;
}

impl Endpoint {
    /// `tools/list` of a 2026-07-28 client with extra headers.
    async fn modern_with(&self, id: i64, extra: HeaderMap) -> reqwest::Response {
        let params = json!({"_meta": meta(&json!({}))});
        let mut headers = modern_headers("tools/list", &params);
        headers.extend(extra);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": params});
        self.post(&body, headers).await
    }
}

#[tokio::test]
async fn mirrored_headers_must_match_the_body() {
    let ep = Endpoint::default().await;
    let params = json!({"name": "echo", "arguments": {"text": "x"}, "_meta": meta(&json!({}))});
    let body = json!({"jsonrpc": "2.0", "id": 11, "method": "tools/call", "params": params});
    let check = |change: &dyn Fn(&mut HeaderMap)| {
        let mut headers = modern_headers("tools/call", &params);
        change(&mut headers);
        ep.post(&body, headers)
    };
    let mismatch = |response| expect_error(response, StatusCode::BAD_REQUEST, -32020, Some(11));
    mismatch(
        check(&|h| {
            h.insert("mcp-method", header("tools/list"));
        })
        .await,
    )
    .await;
    mismatch(
        check(&|h| {
            h.insert("mcp-name", header("other"));
        })
        .await,
    )
    .await;
    mismatch(
        check(&|h| {
            h.insert("mcp-name", header("=?base64?b3RoZXI=?="));
        })
        .await,
    )
    .await;
    mismatch(
        check(&|h| {
            h.insert("mcp-protocol-version", header(LEGACY));
        })
        .await,
    )
    .await;
    for missing in ["mcp-method", "mcp-name", "mcp-protocol-version"] {
        let body = mismatch(
            check(&|h| {
                h.remove(missing);
            })
            .await,
        )
        .await;
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("missing"),
            "{body}"
        );
    }
    // Each of the MCP headers may appear once, and must be visible ASCII: 400 naming it.
    let refused = |response: reqwest::Response, why: String| async move {
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{why}");
        let body = json_body(response).await;
        let message = body["error"]["message"].as_str().unwrap_or_default().to_owned();
        assert!(message.contains(&why), "{why}: {body}");
    };
    for name in ["mcp-method", "mcp-name", "mcp-protocol-version", "mcp-session-id"] {
        let twice = check(&|h| {
            let value = h.get(name).cloned().unwrap_or_else(|| header("s-1"));
            h.append(name, value.clone());
            h.append(name, value);
        })
        .await;
        refused(twice, format!("the `{name}` header appears more than once")).await;
        let unreadable = check(&|h| {
            h.insert(
                name,
                HeaderValue::from_bytes(b"caf\xe9").expect("obs-text is a header value"),
            );
        })
        .await;
        refused(unreadable, format!("`{name}`")).await;
    }
    // A 2026 `_meta` naming a version the server does not speak, mirrored in the header: -32022
    // with the request's id. A header that disagrees with the body is reported first (-32020).
    let mut future = params.clone();
    future["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let mut headers = modern_headers("tools/call", &future);
    headers.insert("mcp-protocol-version", header("2099-01-01"));
    let body = json!({"jsonrpc": "2.0", "id": 12, "method": "tools/call", "params": future});
    let error = expect_error(
        ep.post(&body, headers.clone()).await,
        StatusCode::BAD_REQUEST,
        -32022,
        Some(12),
    )
    .await;
    assert_eq!(error["error"]["data"]["requested"], "2099-01-01");
    headers.insert("mcp-protocol-version", header(MODERN));
    expect_error(ep.post(&body, headers).await, StatusCode::BAD_REQUEST, -32020, Some(12)).await;
    // `_meta` without the client's capabilities: -32602, 400.
    let mut bare = params.clone();
    bare["_meta"]
        .as_object_mut()
        .expect("meta")
        .remove("io.modelcontextprotocol/clientCapabilities");
    let headers = modern_headers("tools/call", &bare);
    let body = json!({"jsonrpc": "2.0", "id": 13, "method": "tools/call", "params": bare});
    expect_error(ep.post(&body, headers).await, StatusCode::BAD_REQUEST, -32602, Some(13)).await;
    ep.stop().await;

    // Lenient: only the headers present are checked.
    let ep = Endpoint::start(HttpConfig {
        require_request_headers: false,
        ..HttpConfig::default()
    })
    .await;
    let answer = json_body(ep.post(&body_with(&params), HeaderMap::new()).await).await;
    assert_eq!(answer["result"]["content"][0]["text"], "x");
    let mut wrong = HeaderMap::new();
    wrong.insert("mcp-method", header("tools/list"));
    expect_error(
        ep.post(&body_with(&params), wrong).await,
        StatusCode::BAD_REQUEST,
        -32020,
        Some(11),
    )
    .await;
    ep.stop().await;
}

fn body_with(params: &Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 11, "method": "tools/call", "params": params})
}

#[tokio::test]
async fn notifications_are_accepted() {
    let ep = Endpoint::default().await;
    let session = ep.initialize().await;
    let note = json!({"jsonrpc": "2.0", "method": "notifications/roots/list_changed"});
    let response = ep.post(&note, session_headers(&session)).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert!(within("the body", response.bytes()).await.expect("a body").is_empty());
    // A 2026-07-28 client's notification needs no session.
    let mut headers = HeaderMap::new();
    headers.insert("mcp-protocol-version", header(MODERN));
    assert_eq!(ep.post(&note, headers).await.status(), StatusCode::ACCEPTED);
    ep.stop().await;
}

#[tokio::test]
async fn the_get_stream_carries_session_messages() {
    let ep = Endpoint::default().await;
    let session = ep.initialize().await;
    // A change before the stream opens waits in the backlog.
    ep.server.notify(Change::ToolsListChanged);
    let get = |headers: HeaderMap| {
        let request = ep
            .client
            .get(&ep.url)
            .header("accept", "text/event-stream")
            .headers(headers);
        async move { within("GET", request.send()).await.expect("an answer") }
    };
    let mut events = Events::new(get(session_headers(&session)).await);
    let first = events.next().await.expect("the backlog");
    assert_eq!(first.data["method"], "notifications/tools/list_changed", "{first:?}");
    // One GET stream at a time.
    expect_error(get(session_headers(&session)).await, StatusCode::CONFLICT, -32600, None).await;
    // A message the application sends the session goes on the stream.
    let peer = ep.http.sessions().peer(&session).expect("the session's peer");
    within(
        "notify",
        peer.notify("notifications/message", &json!({"level": "info", "data": "hello"})),
    )
    .await
    .expect("sent");
    let second = events.next().await.expect("the message");
    assert_eq!(second.data["params"]["data"], "hello", "{second:?}");
    assert_ne!(first.id, second.id);
    // Without a session there is no stream; with an unknown one, 404.
    expect_error(
        get(HeaderMap::new()).await,
        StatusCode::METHOD_NOT_ALLOWED,
        -32600,
        None,
    )
    .await;
    expect_error(
        get(session_headers("feedface")).await,
        StatusCode::NOT_FOUND,
        -32600,
        None,
    )
    .await;
    // Deleting the session ends its stream.
    assert!(ep.http.sessions().close(&session));
    assert!(events.next().await.is_none(), "the stream ends with its session");
    ep.stop().await;
}

#[tokio::test]
async fn server_requests_travel_on_the_post_stream() {
    let ep = Endpoint::default().await;
    let session = ep.initialize().await;
    let ask = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "ask", "arguments": {}}});
    let mut events = Events::new(ep.post(&ask, session_headers(&session)).await);
    let ping = events.next().await.expect("the server's request");
    assert_eq!(ping.data["method"], "ping", "{ping:?}");
    let answer = json!({"jsonrpc": "2.0", "id": ping.data["id"], "result": {"pong": true}});
    assert_eq!(
        ep.post(&answer, session_headers(&session)).await.status(),
        StatusCode::ACCEPTED
    );
    let result = events.next().await.expect("the result");
    assert_eq!(result.data["id"], 3);
    let text = result.data["result"]["content"][0]["text"].as_str().unwrap_or_default();
    assert!(text.contains("pong"), "{result:?}");
    assert!(events.next().await.is_none(), "the stream ends after the result");
    ep.stop().await;
}

#[tokio::test]
async fn closing_a_stateless_stream_cancels_the_request() {
    let ep = Endpoint::default().await;
    let params = json!({"name": "wait", "arguments": {}, "_meta": {"progressToken": 1}});
    let response = ep.modern(1, "tools/call", params).await;
    assert_eq!(response.status(), StatusCode::OK);
    within("the tool starts", ep.waiting.started.notified()).await;
    drop(response);
    within("the tool sees the cancellation", async {
        while !ep.waiting.cancelled.load(Ordering::SeqCst) {
            let seen = ep.waiting.seen.notified();
            if ep.waiting.cancelled.load(Ordering::SeqCst) {
                break;
            }
            seen.await;
        }
    })
    .await;
    ep.stop().await;
}

#[tokio::test]
async fn subscriptions_listen_streams_until_closed() {
    let ep = Endpoint::default().await;
    let params = json!({"notifications": {"toolsListChanged": true}});
    let mut events = Events::new(ep.modern(5, "subscriptions/listen", params).await);
    let ack = events.next().await.expect("the acknowledgement");
    assert_eq!(
        ack.data["method"], "notifications/subscriptions/acknowledged",
        "{ack:?}"
    );
    ep.server.notify(Change::ToolsListChanged);
    let change = events.next().await.expect("the change");
    assert_eq!(change.data["method"], "notifications/tools/list_changed", "{change:?}");
    // The server shutting the stream down answers the request and ends the stream.
    ep.server.shutdown();
    let end = events.next().await.expect("the final result");
    assert_eq!(end.data["id"], 5, "{end:?}");
    assert!(events.next().await.is_none());
    ep.stop().await;
}

#[tokio::test]
async fn many_concurrent_posts() {
    let ep = Endpoint::default().await;
    let session = ep.initialize().await;
    let mut tasks = Vec::new();
    for i in 0..200i64 {
        let (client, url) = (ep.client.clone(), ep.url.clone());
        let session = session.clone();
        tasks.push(tokio::spawn(async move {
            let text = format!("message {i}");
            let (body, headers) = if i % 2 == 0 {
                let params = json!({"name": "echo", "arguments": {"text": text}, "_meta": meta(&json!({}))});
                let headers = modern_headers("tools/call", &params);
                (
                    json!({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": params}),
                    headers,
                )
            } else {
                let params = json!({"name": "echo", "arguments": {"text": text}});
                (
                    json!({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": params}),
                    session_headers(&session),
                )
            };
            let response = client
                .post(url)
                .header("accept", BOTH)
                .header(CONTENT_TYPE, "application/json")
                .headers(headers)
                .body(body.to_string())
                .send()
                .await
                .expect("an answer");
            assert_eq!(response.status(), StatusCode::OK);
            let answer: Value = serde_json::from_str(&response.text().await.expect("a body")).expect("JSON");
            assert_eq!(answer["id"], i);
            assert_eq!(answer["result"]["content"][0]["text"], text, "{answer}");
        }));
    }
    for task in tasks {
        within("a concurrent POST", task).await.expect("the POST task");
    }
    ep.stop().await;
}

#[tokio::test]
async fn sessions_are_bounded_and_expire() {
    let ep = Endpoint::start(HttpConfig {
        max_sessions: 1,
        session_idle_timeout: Duration::from_millis(300),
        ..HttpConfig::default()
    })
    .await;
    let session = ep.initialize().await;
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    expect_error(
        ep.post(&init, HeaderMap::new()).await,
        StatusCode::SERVICE_UNAVAILABLE,
        -32603,
        Some(0),
    )
    .await;
    // Idle past the timeout, the session is gone and its place free.
    within("the session expires", async {
        while !ep.http.sessions().is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    expect_error(
        ep.post(&list, session_headers(&session)).await,
        StatusCode::NOT_FOUND,
        -32600,
        Some(1),
    )
    .await;
    let again = ep.initialize().await;
    assert_ne!(again, session);
    ep.stop().await;
}

#[tokio::test]
async fn shutdown_ends_open_streams() {
    let ep = Endpoint::default().await;
    let session = ep.initialize().await;
    let response = within(
        "GET",
        ep.client
            .get(&ep.url)
            .header("accept", "text/event-stream")
            .headers(session_headers(&session))
            .send(),
    )
    .await
    .expect("an answer");
    let mut events = Events::new(response);
    let Endpoint { shutdown, task, .. } = ep;
    shutdown.cancel();
    assert!(events.next().await.is_none(), "the GET stream ends");
    within("the server stops", task)
        .await
        .expect("the task")
        .expect("serve");
}
