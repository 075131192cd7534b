//! Hostile HTTP against the whole gateway surface, in process (its service, as `portico gateway`
//! serves it: `Gateway::service`):
//! every path it serves and some it does not, every method, MCP messages and admin bodies cut,
//! flipped and spliced. Nothing may panic or hang; every answer has an expected status; every
//! JSON answer decodes (a JSON-RPC message on the MCP endpoints, an object elsewhere).
//! Deterministic for the default 1 500 rounds; `PORTICO_FUZZ_SECONDS=N` runs it for N seconds
//! seeded from the clock.

use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

use super::*;

/// Paths tried, the MCP endpoints most often.
const PATHS: &[&str] = &[
    "/mcp",
    "/mcp",
    "/mcp/e",
    "/mcp/v",
    "/mcp/nope",
    "/mcp/e/sse",
    "/sse",
    "/messages?sessionId=0123",
    "/mcp/%2e%2e/admin",
    "/admin/upstreams/x",
    "/admin/upstreams/e",
    "/admin/virtual-servers/v",
    "/admin/config",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/nowhere",
];

/// Bodies the mutations start from.
const BODIES: &[&str] = &[
    r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"e__test_simple_text","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#,
    r#"{"jsonrpc":"2.0","id":2,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"f","version":"1"}}}"#,
    r#"{"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"e__test_prompt_with_arguments","arguments":{"arg1":"a","arg2":"b"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#,
    r#"{"name":"x","builtin":"everything","timeout":"1s","replicas":[]}"#,
    r#"{"name":"v","tools":[{"upstream":"e","tool":"test_simple_text","rename":"hi"}]}"#,
];

/// Statuses the gateway may answer with.
const EXPECTED: &[u16] = &[200, 201, 202, 204, 400, 401, 403, 404, 405, 406, 409, 413, 415, 503];
// (The admin API of this gateway wants its token, `fuzz`.)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_never_break_the_gateway() {
    let budget = std::env::var("PORTICO_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok());
    let deadline = budget.map(|s| std::time::Instant::now() + Duration::from_secs(s));
    let seed: u64 = match budget {
        Some(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 | 1),
        None => 0x9e37_79b9_7f4a_7c15,
    };
    let mut x = seed;
    let mut rand = move || {
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let gateway = Running::start(
        "admin: {token: fuzz}\nupstreams:\n  - {name: e, builtin: everything, timeout: 2s}\nvirtual_servers:\n  - {name: v, tools: [{upstream: e, tool: test_simple_text}]}\nlimits: {max_body_bytes: 8192, max_sessions: 32}\n",
    )
    .await;
    let router = gateway.gateway.service();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut round = 0usize;
    while deadline.map_or(round < 1_500, |d| std::time::Instant::now() < d) {
        round += 1;
        let path = PATHS[(rand() as usize) % PATHS.len()];
        let mut body = BODIES[(rand() as usize) % BODIES.len()].as_bytes().to_vec();
        for _ in 0..rand() % 3 {
            let at = (rand() as usize) % body.len().max(1);
            match rand() % 4 {
                0 if !body.is_empty() => body[at] ^= 1 << (rand() % 8),
                1 => body.truncate(at),
                2 => body
                    .splice(at..at, b"\"\\u0000\",{[-1e999".iter().copied())
                    .for_each(drop),
                _ => {
                    let repeated = body[at..].repeat(1 + (rand() as usize) % 50);
                    body.splice(at..at, repeated).for_each(drop);
                }
            }
        }
        let method = [
            Method::POST,
            Method::POST,
            Method::GET,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
        ][(rand() as usize) % 6]
            .clone();
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1")
            .header("content-type", "application/json");
        if rand() % 5 != 0 {
            request = request.header("accept", "application/json, text/event-stream");
        }
        match rand() % 4 {
            0 => {
                request = request
                    .header("mcp-protocol-version", "2026-07-28")
                    .header("mcp-method", "tools/call")
            }
            1 => request = request.header("mcp-session-id", "0123456789abcdef0123456789abcdef"),
            2 => request = request.header("authorization", "Bearer nope"),
            _ => {}
        }
        // The admin token goes with a PUT of the upstream `x` only, so that its body is read
        // and checked but `e` stays (a DELETE of it would be obeyed).
        if path == "/admin/upstreams/x" && rand() % 2 == 0 {
            request = request.method(Method::PUT).header("authorization", "Bearer fuzz");
        }
        let request = request.body(Body::from(body.clone())).expect("a request");
        let shown = format!("{} {path} {}", request.method(), String::from_utf8_lossy(&body));
        let response = tokio::time::timeout(Duration::from_secs(10), router.clone().oneshot(request))
            .await
            .unwrap_or_else(|_| panic!("no answer within 10 s (round {round}, seed {seed:#x}) to {shown}"))
            .expect("infallible");
        let status = response.status().as_u16();
        *statuses.entry(status).or_default() += 1;
        assert!(EXPECTED.contains(&status), "status {status} for {shown}");
        let json = response
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
        if json {
            let bytes = within("a body", response.into_body().collect())
                .await
                .expect("body")
                .to_bytes();
            let value: serde_json::Value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{status} to {shown}: {e}: {}", String::from_utf8_lossy(&bytes)));
            if path.starts_with("/mcp") && status != 404 {
                let items = value.as_array().cloned().unwrap_or_else(|| vec![value.clone()]);
                for item in items {
                    assert_eq!(item["jsonrpc"], "2.0", "answer to {shown}: {item}");
                }
            } else {
                assert!(value.is_object(), "{shown}: {value}");
            }
        }
    }
    // The gateway still serves afterwards.
    let client = gateway
        .client("/mcp", portico_core::client::Protocol::Stateless, ())
        .await;
    client
        .call_tool("e__test_simple_text", json!({}))
        .await
        .expect("still serving");
    println!("fuzzed the gateway with {round} requests (seed {seed:#x}); statuses {statuses:?}");
    assert!(
        statuses.contains_key(&200) && statuses.contains_key(&400),
        "{statuses:?}"
    );
}
