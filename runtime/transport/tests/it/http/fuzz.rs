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

/// A mutation test's time budget and seed: with `PORTICO_FUZZ_SECONDS` set, that long from
/// now and a seed from the clock; else no deadline (a fixed number of rounds) and `fixed`.
fn budget(fixed: u64) -> (Option<std::time::Instant>, u64) {
    let seconds = std::env::var("PORTICO_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok());
    match seconds {
        Some(seconds) => {
            let seed = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1;
            (Some(std::time::Instant::now() + Duration::from_secs(seconds)), seed)
        }
        None => (None, fixed),
    }
}

/// A xorshift64 generator from `seed` (not zero): cheap, and the same numbers for the same seed.
fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

#[tokio::test]
async fn mutated_requests_never_break_the_endpoint() {
    let (deadline, seed) = budget(0x2545_f491_4f6c_dd1d);
    let mut next = xorshift(seed);
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
    while deadline.map_or(round < 3_000, |d| {
        !round.is_multiple_of(64) || std::time::Instant::now() < d
    }) {
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
            let pick = if next().is_multiple_of(4) {
                (next() as usize) % values.len()
            } else {
                0
            };
            if let Some(value) = values[pick] {
                request = request.header(*name, value);
            }
        }
        if next().is_multiple_of(2) && !sessions.is_empty() {
            request = request.header("mcp-session-id", &sessions[(next() as usize) % sessions.len()]);
        } else if next().is_multiple_of(8) {
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

/// The name of the thread [`mutated_bytes_never_break_the_front`] serves on: a panic on it is
/// counted (the connection tasks run there, and a panicking task would otherwise only end).
const FRONT_THREAD: &str = "front-fuzz-server";

/// Panics seen on [`FRONT_THREAD`].
static FRONT_PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Counts panics on [`FRONT_THREAD`], then reports every panic as before.
fn count_front_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some(FRONT_THREAD) {
                FRONT_PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

/// Bytes inserted by [`mutated_bytes_never_break_the_front`]: the pieces HTTP/1.1 framing is
/// made of, and headers that change how a request is read.
const WIRE_TOKENS: &[&str] = &[
    "\r\n",
    "\n",
    "\r",
    ":",
    " ",
    "\t",
    "\0",
    "0",
    "9",
    "-",
    ",",
    "\u{ff}",
    "transfer-encoding: chunked\r\n",
    "Transfer-Encoding: gzip, chunked\r\n",
    "content-length: 5\r\n",
    "Content-Length: 99999999999999999999\r\n",
    "expect: 100-continue\r\n",
    "connection: close\r\n",
    "upgrade: websocket\r\nconnection: upgrade\r\n",
    "5\r\nhello\r\n0\r\n\r\n",
];

/// One raw POST of `body` to `/mcp`, as a 2026-07-28 client writes it.
fn wire_post(body: &[u8]) -> Vec<u8> {
    let mut wire = format!(
        "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\naccept: {BOTH}\r\n\
         mcp-protocol-version: {MODERN}\r\nmcp-method: tools/call\r\nmcp-name: echo\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    wire.extend_from_slice(body);
    wire
}

/// The statuses of the responses in `bytes`, all of which must be whole HTTP/1.1 responses
/// (a chunked one may be cut short: its request was cancelled when the client went away).
/// `head_first`: the first request was a `HEAD`, whose final answer has no body.
fn wire_answers(mut bytes: &[u8], head_first: bool) -> Result<Vec<u16>, String> {
    let mut statuses = Vec::new();
    let mut bodiless = head_first;
    while !bytes.is_empty() {
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| format!("a head cut short: {:?}", String::from_utf8_lossy(bytes)))?;
        let head = std::str::from_utf8(&bytes[..end]).map_err(|e| format!("a head that is not text: {e}"))?;
        bytes = &bytes[end + 4..];
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .strip_prefix("HTTP/1.1 ")
            .or_else(|| status_line.strip_prefix("HTTP/1.0 "))
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| format!("not a status line: {status_line:?}"))?;
        statuses.push(status);
        let (mut length, mut chunked) = (None, false);
        for line in lines {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| format!("not a header line: {line:?}"))?;
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.trim().parse::<usize>().map_err(|e| format!("{line:?}: {e}"))?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.trim().eq_ignore_ascii_case("chunked");
            }
        }
        if (100..200).contains(&status) {
            continue;
        }
        if std::mem::take(&mut bodiless) || status == 204 || status == 304 {
            continue;
        }
        if chunked {
            loop {
                let Some(line_end) = bytes.windows(2).position(|w| w == b"\r\n") else {
                    return Ok(statuses);
                };
                let size = std::str::from_utf8(&bytes[..line_end])
                    .ok()
                    .and_then(|s| usize::from_str_radix(s, 16).ok())
                    .ok_or_else(|| format!("not a chunk size: {:?}", String::from_utf8_lossy(&bytes[..line_end])))?;
                bytes = &bytes[line_end + 2..];
                if bytes.len() < size.saturating_add(2) {
                    return Ok(statuses);
                }
                if &bytes[size..size + 2] != b"\r\n" {
                    return Err("a chunk without its line end".into());
                }
                bytes = &bytes[size + 2..];
                if size == 0 {
                    break;
                }
            }
        } else if let Some(length) = length {
            if bytes.len() < length {
                return Err(format!("a body cut short: {} of {length} bytes", bytes.len()));
            }
            bytes = &bytes[length..];
        } else {
            // Read to the end of the connection.
            bytes = &[];
        }
    }
    Ok(statuses)
}

/// Mutated bytes on the wire against the HTTP/1.1 front under [`serve`] (Portico's own reading
/// of plain requests, and hyper's of the rest), over TCP: valid POSTs with bytes flipped,
/// inserted, deleted and duplicated, framing headers added or changed, requests cut short or
/// followed by another, written in pieces, then the write side closed. Nothing may panic or
/// hang; whatever comes back must be whole HTTP/1.1 responses, none a `500`; and the server
/// keeps answering a valid request on a new connection. Deterministic for the default 1 500
/// rounds; `PORTICO_FUZZ_SECONDS` time-boxes it seeded from the clock (`cargo xtask fuzz`).
#[tokio::test]
async fn mutated_bytes_never_break_the_front() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    count_front_panics();
    let (deadline, seed) = budget(0x9e37_79b9_7f4a_7c15);
    let mut next = xorshift(seed);

    // The server, on a thread of its own.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("non-blocking");
    let addr = listener.local_addr().expect("address");
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let server = std::thread::Builder::new()
        .name(FRONT_THREAD.into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let server = test_server(Arc::new(Waiting::default()));
                let http = StreamableHttp::new(
                    move || server.connection(),
                    HttpConfig {
                        max_body_bytes: 4096,
                        max_sessions: 64,
                        shutdown: stopped.clone(),
                        ..HttpConfig::default()
                    },
                );
                let listener = tokio::net::TcpListener::from_std(listener).expect("a listener");
                serve(listener, http.router(), stopped.cancelled_owned()).await
            })
        })
        .expect("a server thread");

    let valid = wire_post(SEEDS[0].as_bytes());
    let mut round = 0usize;
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    while deadline.map_or(round < 1_500, |d| {
        !round.is_multiple_of(64) || std::time::Instant::now() < d
    }) {
        round += 1;
        let mut bytes = wire_post(SEEDS[(next() as usize) % SEEDS.len()].as_bytes());
        for _ in 0..1 + next() % 3 {
            let at = (next() as usize) % bytes.len().max(1);
            match next() % 9 {
                0 if !bytes.is_empty() => bytes[at] = next() as u8,
                1 => {
                    let token = WIRE_TOKENS[(next() as usize) % WIRE_TOKENS.len()];
                    bytes.splice(at..at, token.bytes());
                }
                2 => {
                    let end = (at + 1 + (next() as usize) % 16).min(bytes.len());
                    bytes.drain(at..end);
                }
                3 => bytes.truncate(at),
                4 => {
                    // A header line (or the request line) twice.
                    let start = bytes[..at].iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
                    let end = bytes[at..]
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(bytes.len(), |p| at + p + 1);
                    let line = bytes[start..end].to_vec();
                    bytes.splice(start..start, line);
                }
                5 => {
                    // Another length: shorter (the rest reads as a next request) or longer.
                    let name = b"content-length: ";
                    if let Some(from) = bytes
                        .windows(name.len())
                        .position(|w| w == name)
                        .map(|p| p + name.len())
                    {
                        let to = from + bytes[from..].iter().position(|&b| b == b'\r').unwrap_or(0);
                        let length = (next() as usize) % (2 * bytes.len() + 1);
                        bytes.splice(from..to, length.to_string().bytes());
                    }
                }
                6 => bytes.extend_from_slice(&valid),
                7 => {
                    let method: &[u8] = match next() % 7 {
                        0 => b"GET",
                        1 => b"DELETE",
                        2 => b"HEAD",
                        3 => b"OPTIONS",
                        4 => b"CONNECT",
                        5 => b"P OST",
                        _ => b"post",
                    };
                    let end = bytes.len().min(4);
                    bytes.splice(0..end, method.iter().copied());
                }
                _ => {
                    let version: &[u8] = match next() % 4 {
                        0 => b"HTTP/1.0",
                        1 => b"HTTP/2.0",
                        2 => b"HTTP/1.x",
                        _ => b"HTTP/1.1 ",
                    };
                    if let Some(p) = bytes.windows(8).position(|w| w == b"HTTP/1.1") {
                        bytes.splice(p..p + 8, version.iter().copied());
                    }
                }
            }
        }
        let shown = || String::from_utf8_lossy(&bytes).into_owned();
        let mut stream = within("connect", tokio::net::TcpStream::connect(addr))
            .await
            .expect("the server accepts");
        // Written in up to three pieces, the server reading in between.
        let mut rest: &[u8] = &bytes;
        for _ in 0..next() % 3 {
            let cut = (next() as usize) % (rest.len() + 1);
            if stream.write_all(&rest[..cut]).await.is_err() {
                break;
            }
            rest = &rest[cut..];
            tokio::task::yield_now().await;
        }
        let _ = stream.write_all(rest).await;
        let _ = stream.shutdown().await;
        let mut answer = Vec::new();
        // The server may close with unread bytes (a reset): what came before it is the answer.
        let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the server neither answered nor closed within 10 s (round {round}, seed {seed:#x}): {:?}",
                    shown()
                )
            });
        // A server skips empty lines before a request line (RFC 9112 §2.2).
        let start = bytes
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(bytes.len());
        let answered = wire_answers(&answer, bytes[start..].starts_with(b"HEAD "))
            .unwrap_or_else(|e| panic!("{e} (round {round}, seed {seed:#x}) in answer to {:?}", shown()));
        for status in answered {
            assert_ne!(status, 500, "round {round}, seed {seed:#x}: {:?}", shown());
            *statuses.entry(status).or_default() += 1;
        }
        if round.is_multiple_of(64) {
            // Still serving.
            let mut stream = tokio::net::TcpStream::connect(addr).await.expect("the server accepts");
            stream.write_all(&valid).await.expect("a write");
            let _ = stream.shutdown().await;
            let mut answer = Vec::new();
            within("a valid request's answer", stream.read_to_end(&mut answer))
                .await
                .expect("a read");
            assert!(
                answer.starts_with(b"HTTP/1.1 200 "),
                "round {round}: {:?}",
                String::from_utf8_lossy(&answer)
            );
        }
    }
    stop.cancel();
    let served = tokio::task::spawn_blocking(move || server.join())
        .await
        .expect("joined")
        .expect("the server thread did not panic");
    served.expect("serve returned no error");
    assert_eq!(
        FRONT_PANICS.load(Ordering::SeqCst),
        0,
        "panics on the server's thread (seed {seed:#x})"
    );
    println!("fuzzed the HTTP/1.1 front with {round} mutated byte streams (seed {seed:#x}); statuses {statuses:?}");
    assert!(
        statuses.contains_key(&200) && statuses.contains_key(&400),
        "the mutations reach both outcomes"
    );
}
