//! Rate limits over HTTP: a burst admitted, then `429` with `Retry-After`, `RateLimit` and a
//! JSON-RPC error; the bucket refilling; buckets per tool and per caller; two gateways sharing
//! buckets on one Redis without admitting more than a bucket holds; Redis going away (through
//! a proxy the test stops) and coming back; bad rules refused naming the key.
//!
//! Redis (127.0.0.1:6379, or `PORTICO_TEST_REDIS`) must be running, as for the replica tests;
//! a test that cannot reach it fails saying so.

use portico_core::server::{Server, tool};
use portico_gateway::config::{Config, ConfigError};

use super::*;

/// The answer to one HTTP request: status, headers, JSON body.
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) headers: reqwest::header::HeaderMap,
    pub(super) body: serde_json::Value,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }
}

/// Posts a 2026-07-28 request of `method` (with `params`) to `base` + `path`.
pub(super) async fn post(
    base: &str,
    path: &str,
    method: &str,
    params: serde_json::Value,
    authorization: Option<&str>,
) -> Answer {
    let mut params = params;
    params["_meta"] = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}});
    let mut request = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method)
        .body(json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string());
    if let Some(name) = params
        .get("name")
        .or_else(|| params.get("uri"))
        .and_then(|n| n.as_str())
    {
        request = request.header("mcp-name", name);
    }
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    send(request).await
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = within("an answer", request.send()).await.expect("sent");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    let body = if text.trim_start().starts_with('{') || text.trim_start().starts_with('[') {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    } else {
        // An SSE answer: its JSON-RPC response.
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<serde_json::Value>(d.trim()).ok())
            .find(|m| m.get("id").is_some())
            .unwrap_or_else(|| panic!("no answer in {text}"))
    };
    Answer { status, headers, body }
}

/// Calls `tool` at `base` + `path`.
async fn call(base: &str, path: &str, tool: &str) -> Answer {
    post(base, path, "tools/call", json!({"name": tool, "arguments": {}}), None).await
}

/// Whether a call was admitted and served.
pub(super) fn served(answer: &Answer) -> bool {
    answer.status == 200 && answer.body.get("result").is_some()
}

/// The text of `/metrics`.
pub(super) async fn metrics_text(base: &str) -> String {
    let response = reqwest::get(format!("{base}/metrics")).await.expect("GET /metrics");
    response.text().await.expect("metrics")
}

/// The machine's Redis URL, checked to be reachable (as the replica tests do).
pub(super) async fn redis_url() -> String {
    let redis = std::env::var("PORTICO_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let address = redis
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap_or_default()
        .rsplit('@')
        .next()
        .unwrap_or_default()
        .to_string();
    if let Err(e) = tokio::net::TcpStream::connect(&address).await {
        panic!("Redis is not reachable at {redis} ({e}): start it (`bash .ci/run` does), or set PORTICO_TEST_REDIS");
    }
    redis
}

/// A name no other test run uses (rules in Redis are shared by name).
pub(super) fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{prefix}-{}-{nanos}", std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_admitted_then_refused_with_429_until_its_bucket_refills() {
    // `slow` refills one token in 30 s (never during the test), `quick` one in 200 ms.
    let gateway = Running::start(
        "upstreams:\n  - {name: e, builtin: everything}\nrate_limits:\n  - {name: slow, key: [tool], rate: 2/m, burst: 2, tools: [test_simple_text, test_image_content]}\n  - {name: quick, rate: 5/s, burst: 1, tools: [test_audio_content]}\n",
    )
    .await;
    let base = &gateway.base;

    let first = call(base, "/mcp", "e__test_simple_text").await;
    assert!(served(&first), "{}", first.body);
    assert_eq!(first.header("ratelimit-policy"), "\"slow\";q=2;w=60");
    assert_eq!(first.header("ratelimit"), "\"slow\";r=1;t=30");
    let second = call(base, "/mcp", "e__test_simple_text").await;
    assert!(served(&second), "{}", second.body);
    // `t`: the seconds until the bucket is full again (two tokens of 30 s, less what the
    // time between the calls refilled).
    let full: u64 = second
        .header("ratelimit")
        .strip_prefix("\"slow\";r=0;t=")
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{:?}", second.headers));
    assert!((50..=60).contains(&full), "{full}");

    let refused = call(base, "/mcp", "e__test_simple_text").await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.header("content-type"), "application/json");
    let retry_after: u64 = refused.header("retry-after").parse().expect("Retry-After in seconds");
    assert!((20..=30).contains(&retry_after), "{retry_after}");
    assert_eq!(refused.header("ratelimit-policy"), "\"slow\";q=2;w=60");
    assert_eq!(refused.header("ratelimit"), format!("\"slow\";r=0;t={retry_after}"));
    assert_eq!(refused.body["jsonrpc"], "2.0");
    assert_eq!(refused.body["id"], 1);
    let error = &refused.body["error"];
    assert_eq!(error["code"], -32053, "{error}");
    assert_eq!(error["data"]["rule"], "slow");
    let retry_ms = error["data"]["retryAfterMs"].as_u64().expect("retryAfterMs");
    assert!(
        retry_ms > (retry_after - 1) * 1000 && retry_ms <= retry_after * 1000,
        "{retry_ms}"
    );
    assert!(
        error["message"].as_str().unwrap_or_default().contains("`slow`"),
        "{error}"
    );

    // The same tool by its name on its upstream's endpoint: the same bucket.
    let there = call(base, "/mcp/e", "test_simple_text").await;
    assert_eq!(there.status, 429, "{}", there.body);
    // Another tool has a bucket of its own; a tool no rule names, none; lists are free.
    assert!(served(&call(base, "/mcp", "e__test_image_content").await));
    for _ in 0..5 {
        assert!(served(&call(base, "/mcp", "e__test_embedded_resource").await));
    }
    let listed = post(base, "/mcp", "tools/list", json!({}), None).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(listed.headers.get("ratelimit").is_none());

    // A batch is checked request by request, and refused whole with a `null` id.
    let batch = json!([
        {"jsonrpc": "2.0", "id": 10, "method": "tools/call", "params": {"name": "e__test_image_content"}},
        {"jsonrpc": "2.0", "id": 11, "method": "tools/call", "params": {"name": "e__test_image_content"}},
    ]);
    let refused_batch = send(
        reqwest::Client::new()
            .post(format!("{base}/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(batch.to_string()),
    )
    .await;
    assert_eq!(refused_batch.status, 429, "{}", refused_batch.body);
    assert_eq!(refused_batch.body["id"], serde_json::Value::Null);

    // `quick` refills: refused once its token is taken, admitted again after the wait it names.
    let mut waited = None;
    for _ in 0..20 {
        let answer = call(base, "/mcp", "e__test_audio_content").await;
        if answer.status == 429 {
            waited = answer.body["error"]["data"]["retryAfterMs"].as_u64();
            break;
        }
        assert!(served(&answer), "{}", answer.body);
    }
    let waited = waited.expect("`quick` refused a call");
    assert!(waited <= 200, "{waited}");
    tokio::time::sleep(Duration::from_millis(waited + 20)).await;
    let again = call(base, "/mcp", "e__test_audio_content").await;
    assert!(served(&again), "{}", again.body);

    let metrics = metrics_text(base).await;
    assert!(
        metrics.contains("portico_gateway_rate_limited_total{rule=\"slow\",reason=\"limited\"} 3\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("portico_gateway_rate_limited_total{rule=\"quick\",reason=\"limited\"} 1\n"),
        "{metrics}"
    );
}

const SECRET: &str = "a-test-secret-of-enough-length-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_that_disagree_with_the_body_cannot_steer_a_call_past_its_limit() {
    let gateway = Running::start(
        "upstreams:\n  - {name: e, builtin: everything}\nrate_limits:\n  - {name: one, rate: 1/m, burst: 1, tools: [test_simple_text]}\n",
    )
    .await;
    let base = &gateway.base;
    // A 2026-07-28 call is limited by the headers that mirror its body.
    assert!(served(&call(base, "/mcp", "e__test_simple_text").await));
    let refused = call(base, "/mcp", "e__test_simple_text").await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(
        refused.body["id"], 1,
        "the refusal answers the request's id: {}",
        refused.body
    );
    // The same call under another tool's name: the transport refuses the mismatch.
    let raw = |session: Option<&str>, id: u64, method: &str, params: serde_json::Value, headers: &[(&str, &str)]| {
        let mut request = reqwest::Client::new()
            .post(format!("{base}/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string());
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
    };
    let stateless = json!({"name": "e__test_simple_text", "arguments": {},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}});
    let mirrored = [("mcp-protocol-version", "2026-07-28"), ("mcp-method", "tools/call")];
    let lying = [mirrored[0], mirrored[1], ("mcp-name", "e__test_image_content")];
    let answer = send(raw(None, 2, "tools/call", stateless.clone(), &lying)).await;
    assert_eq!(
        (answer.status, &answer.body["error"]["code"]),
        (400, &json!(-32020)),
        "{}",
        answer.body
    );
    // Without `Mcp-Name`, the body is read: still refused.
    let answer = send(raw(None, 3, "tools/call", stateless, &mirrored)).await;
    assert_eq!(answer.status, 429, "{}", answer.body);
    // In a session nothing checks those headers: the body decides.
    let initialize =
        json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}});
    let response = within("initialize", raw(None, 4, "initialize", initialize, &[]).send())
        .await
        .expect("initialize");
    let session = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .expect("a session")
        .to_string();
    let in_session = [
        ("mcp-protocol-version", "2025-11-25"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "e__test_image_content"),
    ];
    let call = json!({"name": "e__test_simple_text", "arguments": {}});
    let answer = send(raw(Some(&session), 5, "tools/call", call, &in_session)).await;
    assert_eq!(answer.status, 429, "{}", answer.body);
    assert_eq!(answer.body["id"], 5);
}

fn token(subject: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs();
    let claims =
        json!({"iss": "https://issuer.test", "aud": "https://gateway.test/mcp", "sub": subject, "exp": now + 600});
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("signed");
    format!("Bearer {token}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_have_buckets_of_their_own_and_new_rules_apply_on_reload() {
    let yaml = format!(
        "auth:\n  jwt:\n    issuer: https://issuer.test\n    audience: [https://gateway.test/mcp]\n    keys: [{{alg: HS256, secret: '{SECRET}'}}]\nupstreams:\n  - {{name: e, builtin: everything}}\n"
    );
    let gateway = Running::start(&yaml).await;
    let base = &gateway.base;
    let (ada, bob) = (token("ada"), token("bob"));
    let ada_calls = || {
        post(
            base,
            "/mcp",
            "tools/call",
            json!({"name": "e__test_simple_text"}),
            Some(&ada),
        )
    };
    // No rules yet: nothing is limited.
    for _ in 0..3 {
        assert!(served(&ada_calls().await));
    }
    let mut config = Config::parse(&yaml, false).expect("config");
    config.rate_limits = Config::parse(
        "rate_limits:\n  - {name: per-caller, key: [principal], rate: 1/m, burst: 1}\n",
        false,
    )
    .expect("rules")
    .rate_limits;
    gateway.gateway.apply(config).await.expect("applied");
    assert!(served(&ada_calls().await));
    let refused = ada_calls().await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    let bobs = post(base, "/mcp", "tools/list", json!({}), Some(&bob)).await;
    assert_eq!(bobs.status, 200, "{}", bobs.body);
    assert_eq!(bobs.header("ratelimit"), "\"per-caller\";r=0;t=60");
    // Authentication comes first: a request without a token is refused as such, not limited.
    let anonymous = post(base, "/mcp", "tools/list", json!({}), None).await;
    assert_eq!(anonymous.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_rule_is_refused_naming_its_key_and_the_rules_in_force_stay() {
    let error = |yaml: &str| Config::parse(yaml, false).unwrap_err().to_string();
    assert_eq!(
        error("rate_limits:\n  - {name: a, rate: ten/s}\n"),
        "rate_limits[0].rate: `ten/s` is not a rate such as `10/s`, `600/m`, `1000/h` or `5/250ms`"
    );
    assert_eq!(
        error("rate_limits:\n  - {name: a, rate: 1/s}\n  - {name: b, rate: 1/s, backend: redis}\n"),
        "rate_limits[1].backend: `redis` needs `state.redis`"
    );
    assert!(error("rate_limits:\n  - {name: a, rate: 1/s, key: [who]}\n").contains("rate_limits[0].key[0]"));
    let path = temp_path("limits.yaml");
    std::fs::write(&path, "rate_limits:\n  - {name: a, rate: 1/s, burst: 0}\n").expect("written");
    let loaded = Config::load(&path).unwrap_err();
    let _ = std::fs::remove_file(&path);
    assert!(
        matches!(&loaded, ConfigError::Invalid { key, .. } if key == "rate_limits[0].burst"),
        "{loaded}"
    );

    let yaml = "upstreams:\n  - {name: e, builtin: everything}\nrate_limits:\n  - {name: one, rate: 1/m, burst: 1, tools: [test_simple_text]}\n";
    let gateway = Running::start(yaml).await;
    let mut bad = Config::parse(yaml, false).expect("config");
    bad.rate_limits[0].rate = "1/week".into();
    let refused = gateway.gateway.apply(bad).await.unwrap_err();
    assert!(refused.to_string().starts_with("rate_limits[0].rate:"), "{refused}");
    assert!(served(&call(&gateway.base, "/mcp", "e__test_simple_text").await));
    assert_eq!(call(&gateway.base, "/mcp", "e__test_simple_text").await.status, 429);
}

/// A gateway in a runtime (and thread) of its own, as another process would be.
struct Isolated {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Isolated {
    fn start(config: Config) -> Self {
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let running = Running::serve(config).await;
                let _ = ready_tx.send(running.base.clone());
                let _ = stopped.await;
                drop(running);
            });
        });
        let base = ready.recv_timeout(PATIENCE).expect("the gateway started");
        Self {
            base,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Isolated {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_on_one_redis_admit_no_more_than_the_bucket_holds() {
    let redis = redis_url().await;
    let rule = unique("shared");
    const BURST: u64 = 5;
    // One token a minute after the burst.
    let yaml = format!(
        "upstreams:\n  - {{name: e, builtin: everything}}\nstate:\n  redis: '{redis}'\nrate_limits:\n  - {{name: {rule}, rate: 1/m, burst: {BURST}, methods: [tools/call]}}\n"
    );
    let config = Config::parse(&yaml, false).expect("config");
    let (a, b) = (Isolated::start(config.clone()), Isolated::start(config));
    let started = std::time::Instant::now();
    let calls: Vec<_> = (0..40)
        .map(|i| {
            let base = if i % 2 == 0 { a.base.clone() } else { b.base.clone() };
            tokio::spawn(async move { (i % 2, call(&base, "/mcp", "e__test_simple_text").await) })
        })
        .collect();
    let mut admitted = [0u64; 2];
    let mut refused = [0u64; 2];
    for task in calls {
        let (which, answer) = task.await.expect("a call");
        if served(&answer) {
            admitted[which] += 1;
        } else {
            assert_eq!(answer.status, 429, "{}", answer.body);
            assert_eq!(answer.body["error"]["data"]["rule"], rule.as_str());
            refused[which] += 1;
        }
    }
    // At most the burst, and what refilled meanwhile (one a minute, counted generously).
    let refilled = started.elapsed().as_secs() / 60 + 1;
    let total = admitted[0] + admitted[1];
    assert!(
        total <= BURST + refilled,
        "admitted {admitted:?} (total {total}) > burst {BURST} + {refilled} refilled"
    );
    assert!(total >= BURST, "the bucket was not used up: admitted {admitted:?}");
    // Each gateway refused calls: each saw the bucket the other emptied.
    assert!(
        refused[0] >= 20 - BURST - refilled && refused[1] >= 20 - BURST - refilled,
        "{refused:?}"
    );
}

/// An upstream with write tools and read-only ones (`readOnlyHint`).
fn annotated_server() -> Server {
    let read_only = || wire::ToolAnnotations::new().with_read_only_hint(true);
    let handler =
        |_cx: portico_core::server::Context, _args: serde_json::Map<String, serde_json::Value>| async { "done" };
    Server::builder("annotated", "1.0.0")
        .tool(tool("write", "Changes something", handler))
        .tool(tool("open_write", "Changes something else", handler))
        .tool(tool("read", "Reads something", handler).with_annotations(read_only()))
        .tool(tool("strict_read", "Reads something guarded", handler).with_annotations(read_only()))
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_away_fails_closed_for_writes_or_as_configured_and_limits_recover() {
    let redis = redis_url().await;
    let (proxy, proxied) = Proxy::for_redis(&redis).await;
    let server = annotated_server();
    let config = HttpConfig::default();
    let shutdown = config.shutdown.clone();
    let upstream = serve_mcp(
        StreamableHttp::new(move || server.connection(), config).router(),
        &shutdown,
    )
    .await;
    let _stop = shutdown.drop_guard();
    let (guarded, lenient, strict, lists) = (unique("guarded"), unique("lenient"), unique("strict"), unique("lists"));
    let gateway = Running::start(&format!(
        "upstreams:\n  - {{name: t, url: '{upstream}', prefix: ''}}\nstate:\n  redis: '{}'\nrate_limits:\n  - {{name: {guarded}, rate: 1000/s, tools: [write, read]}}\n  - {{name: {lenient}, rate: 1000/s, tools: [open_write], fail: open}}\n  - {{name: {strict}, rate: 1000/s, tools: [strict_read], fail: closed}}\n  - {{name: {lists}, rate: 1000/s, methods: [tools/list]}}\n",
        proxied
    ))
    .await;
    let base = &gateway.base;
    for tool in ["write", "read", "open_write", "strict_read"] {
        let answer = call(base, "/mcp", tool).await;
        assert!(served(&answer), "{tool}: {}", answer.body);
    }

    proxy.down();
    let write = call(base, "/mcp", "write").await;
    assert_eq!(write.status, 503, "{}", write.body);
    let error = &write.body["error"];
    assert_eq!(error["code"], -32053, "{error}");
    assert_eq!(error["data"]["rule"], guarded.as_str());
    assert_eq!(error["data"]["reason"], "store unavailable");
    assert!(
        error["data"]["retryAfterMs"].as_u64().is_some_and(|ms| ms > 0),
        "{error}"
    );
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("cannot be checked") && message.contains("Redis") && message.contains("closed-for-writes"),
        "{message}"
    );
    assert!(write.header("retry-after").parse::<u64>().is_ok_and(|s| s >= 1));
    // Reads pass the same rule; `fail: open` admits writes; `fail: closed` refuses reads.
    assert!(served(&call(base, "/mcp", "read").await));
    assert!(served(&call(base, "/mcp", "open_write").await));
    let strict_read = call(base, "/mcp", "strict_read").await;
    assert_eq!(strict_read.status, 503, "{}", strict_read.body);
    assert_eq!(strict_read.body["error"]["data"]["rule"], strict.as_str());
    let listed = post(base, "/mcp", "tools/list", json!({}), None).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let metrics = metrics_text(base).await;
    assert!(
        metrics.contains(&format!(
            "portico_gateway_rate_limited_total{{rule=\"{guarded}\",reason=\"store_unavailable\"}} 1\n"
        )),
        "{metrics}"
    );
    for rule in [&lenient, &lists] {
        assert!(
            metrics.contains(&format!(
                "portico_gateway_rate_limit_store_errors_total{{rule=\"{rule}\"}} 1\n"
            )),
            "{metrics}"
        );
    }

    // Redis back: the limits are checked again, once the client tries it again.
    proxy.up();
    within("writes admitted again", async {
        loop {
            let answer = call(base, "/mcp", "write").await;
            if served(&answer) {
                break;
            }
            assert_eq!(answer.status, 503, "{}", answer.body);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(served(&call(base, "/mcp", "strict_read").await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_messages_are_limited_as_posts_are() {
    use portico_transport::http::ws_client::{self, WsClientConfig};
    let gateway = Running::start(
        "upstreams:\n  - {name: e, builtin: everything}\nrate_limits:\n  - {name: sockets, key: [principal, tool], rate: 2/m, burst: 2, tools: [test_simple_text]}\n",
    )
    .await;
    let ws_url = format!("{}/mcp", gateway.base.replace("http://", "ws://"));
    let ws = Client::builder(wire::Implementation::new("ws-limits", "1.0.0"))
        .connect(|service| ws_client::connect(&ws_url, service, WsClientConfig::default()))
        .await
        .expect("WebSocket");
    for _ in 0..2 {
        let result = ws.call_tool("e__test_simple_text", json!({})).await.expect("admitted");
        assert_eq!(result.is_error, None);
    }
    let refused = rpc_error(
        ws.call_tool("e__test_simple_text", json!({}))
            .await
            .expect_err("refused"),
    );
    assert_eq!(refused.code, -32053, "{refused:?}");
    let data = refused.data.expect("data");
    assert_eq!(data["rule"], "sockets");
    assert!(data["retryAfterMs"].as_u64().is_some_and(|ms| ms > 0), "{data}");
    // Another tool has its own bucket; the socket stays open and serves it.
    let other = ws
        .call_tool("e__test_image_content", json!({}))
        .await
        .expect("another tool");
    assert_eq!(other.is_error, None);
    // The same caller over HTTP (the same address) shares the socket's bucket.
    let over_http = call(&gateway.base, "/mcp", "e__test_simple_text").await;
    assert_eq!(over_http.status, 429, "{}", over_http.body);
}
