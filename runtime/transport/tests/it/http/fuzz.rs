//! Mutated HTTP requests against the Streamable HTTP endpoint, in process (the router as a
//! tower service): bodies flipped, cut and spliced, headers swapped for odd or hostile values,
//! methods changed. Nothing may panic or hang, every answer has an expected status, and every
//! JSON answer is a JSON-RPC message. Deterministic for the default 3 000 rounds;
//! `PORTICO_FUZZ_SECONDS=600` runs it for ten minutes seeded from the clock (`cargo xtask
//! fuzz`), and prints the seed and the count.

use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;

/// Bodies the mutations start from: every kind of POST the endpoint reads.
const SEEDS: &[&str] = &[
    r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"f","version":"1"}}}}"#,
    r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"region","arguments":{"region":"eu","count":3},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#,
    r#"{"jsonrpc":"2.0","id":3,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"f","version":"1"}}}"#,
    r#"{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{"cursor":"x"}}"#,
    r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    r#"[{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{"text":"a"}}},{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":5}}]"#,
    r#"{"jsonrpc":"2.0","id":6,"result":{}}"#,
];

/// Values tried for each header the endpoint reads, the ordinary one first (`None`: the header
/// is left out).
const HEADERS: &[(&str, &[Option<&str>])] = &[
    (
        "accept",
        &[
            Some(BOTH),
            Some("application/json"),
            Some("text/event-stream"),
            Some("text/html"),
            None,
        ],
    ),
    (
        "content-type",
        &[
            Some("application/json"),
            Some("text/plain"),
            Some("application/json; charset=utf-8"),
            None,
        ],
    ),
    (
        "mcp-protocol-version",
        &[
            Some(MODERN),
            Some(LEGACY),
            Some("2025-03-26"),
            Some("1999-01-01"),
            Some(""),
            None,
        ],
    ),
    (
        "mcp-method",
        &[Some("tools/call"), Some("tools/list"), Some("TOOLS/CALL"), None],
    ),
    (
        "mcp-name",
        &[
            Some("echo"),
            Some("region"),
            Some("=?base64?ZWNobw==?="),
            Some("=?base64?!!?="),
            None,
        ],
    ),
    (
        "mcp-param-region",
        &[
            Some("eu"),
            Some("=?base64?ZXU=?="),
            Some("=?base64?ZXU?="),
            Some(" eu "),
            None,
        ],
    ),
    ("mcp-param-count", &[Some("3"), Some("3.0"), Some("three"), None]),
    ("last-event-id", &[None, Some("1-0"), Some("0-5"), Some("x")]),
    (
        "origin",
        &[None, Some("http://localhost"), Some("https://evil.example")],
    ),
    ("host", &[Some("127.0.0.1"), Some("evil.example"), None]),
];

/// Statuses the endpoint may answer with.
const EXPECTED: &[u16] = &[200, 202, 204, 400, 403, 404, 405, 406, 409, 413, 415, 503];

#[tokio::test]
async fn mutated_requests_never_break_the_endpoint() {
    let budget = std::env::var("PORTICO_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok());
    let deadline = budget.map(|s| std::time::Instant::now() + Duration::from_secs(s));
    let seed: u64 = match budget {
        Some(_) => {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        }
        None => 0x2545_f491_4f6c_dd1d,
    };
    let mut state = seed;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let waiting = Arc::new(Waiting::default());
    let server = test_server(waiting);
    let http = StreamableHttp::new(
        move || server.connection(),
        HttpConfig {
            max_body_bytes: 4096,
            max_sessions: 64,
            ..HttpConfig::default()
        },
    );
    let router = http.router();
    // Session ids the endpoint handed out, for requests to reuse.
    let mut sessions: Vec<String> = Vec::new();
    let mut round = 0usize;
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    while deadline.map_or(round < 3_000, |d| round % 64 != 0 || std::time::Instant::now() < d) {
        round += 1;
        let mut bytes = SEEDS[(next() as usize) % SEEDS.len()].as_bytes().to_vec();
        for _ in 0..next() % 4 {
            let at = (next() as usize) % bytes.len().max(1);
            match next() % 5 {
                0 if !bytes.is_empty() => bytes[at] = next() as u8,
                1 => bytes.truncate(at),
                2 => bytes.insert(at, b"{}[],:\"\\0-1e9tfn"[(next() % 16) as usize]),
                3 => {
                    let other = SEEDS[(next() as usize) % SEEDS.len()].as_bytes();
                    let from = (next() as usize) % other.len();
                    bytes.splice(at..at, other[from..].iter().copied());
                }
                _ => {
                    let end = (at + 1 + (next() as usize) % 64).min(bytes.len());
                    let chunk = bytes[at..end].repeat(1 + (next() as usize) % 80);
                    bytes.splice(at..at, chunk);
                }
            }
        }
        let method = match next() % 16 {
            0 => Method::GET,
            1 => Method::DELETE,
            2 => Method::PUT,
            _ => Method::POST,
        };
        let mut request = Request::builder().method(method).uri("/mcp");
        for (name, values) in HEADERS {
            // Mostly the ordinary value, so requests get past the first checks.
            let pick = if next() % 4 == 0 {
                (next() as usize) % values.len()
            } else {
                0
            };
            if let Some(value) = values[pick] {
                request = request.header(*name, value);
            }
        }
        if next() % 2 == 0 && !sessions.is_empty() {
            request = request.header("mcp-session-id", &sessions[(next() as usize) % sessions.len()]);
        } else if next() % 8 == 0 {
            request = request.header("mcp-session-id", "0123456789abcdef");
        }
        let request = request.body(Body::from(bytes.clone())).expect("a request");
        let shown = format!(
            "{} {:?} {}",
            request.method(),
            request.headers(),
            String::from_utf8_lossy(&bytes)
        );
        let response = tokio::time::timeout(Duration::from_secs(10), router.clone().oneshot(request))
            .await
            .unwrap_or_else(|_| panic!("no answer within 10 s (round {round}, seed {seed:#x}) to {shown}"))
            .expect("infallible");
        let status = response.status().as_u16();
        *statuses.entry(status).or_default() += 1;
        assert!(EXPECTED.contains(&status), "status {status} for {shown}");
        if let Some(id) = response.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()) {
            sessions.push(id.to_owned());
            if sessions.len() > 32 {
                sessions.remove(0);
            }
        }
        let json = response
            .headers()
            .get(CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
        if json {
            let body = within("a body", response.into_body().collect())
                .await
                .expect("a body")
                .to_bytes();
            let value: Value = serde_json::from_slice(&body)
                .unwrap_or_else(|e| panic!("status {status}: {e}: {}", String::from_utf8_lossy(&body)));
            let items = value.as_array().cloned().unwrap_or_else(|| vec![value.clone()]);
            for item in items {
                assert_eq!(item["jsonrpc"], "2.0", "answer to {shown}: {item}");
                assert!(item.get("result").is_some() != item.get("error").is_some(), "{item}");
            }
        }
        // An SSE answer is dropped unread: the client went away, which the endpoint must bear.
    }
    http.shutdown();
    println!("fuzzed the HTTP endpoint with {round} mutated requests (seed {seed:#x}); statuses {statuses:?}");
    assert!(
        statuses.contains_key(&200) && statuses.contains_key(&400),
        "the mutations reach both outcomes"
    );
}
