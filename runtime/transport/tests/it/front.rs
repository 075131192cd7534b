//! The HTTP/1.1 server under [`portico_transport::http::serve`], over raw TCP: keep-alive and
//! pipelining, `Connection: close`, requests it hands to hyper (chunked, `Expect`, HTTP/1.0,
//! smuggling attempts, bad heads, large bodies), streamed responses, a client that goes away,
//! and a graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::routing::{get, post};
use portico_transport::http::serve;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::within;

/// Tells the test when it is dropped: a handler's future cancelled.
struct Dropped(Option<oneshot::Sender<()>>);

impl Drop for Dropped {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

/// A server on a loopback port and what its handlers report to the test.
struct Front {
    addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
    /// `/wait`: a receiver that completes when the handler's future is dropped.
    waiting: mpsc::Receiver<oneshot::Receiver<()>>,
    /// `/hold`: a sender that lets the handler answer.
    held: mpsc::Receiver<oneshot::Sender<()>>,
    /// `/stream`: the second part of the stream is sent when this is.
    release: mpsc::Sender<()>,
}

async fn start() -> Front {
    let (started, waiting) = mpsc::channel::<oneshot::Receiver<()>>(4);
    let (holding, held) = mpsc::channel::<oneshot::Sender<()>>(4);
    let (release, released) = mpsc::channel::<()>(4);
    let released = Arc::new(tokio::sync::Mutex::new(released));
    let app = Router::new()
        .route("/echo", post(|body: Bytes| async move { body }).get(|| async { "get" }))
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        )
        .route(
            "/wait",
            post(move || {
                let started = started.clone();
                async move {
                    let (tx, rx) = oneshot::channel();
                    let _guard = Dropped(Some(tx));
                    let _ = started.send(rx).await;
                    std::future::pending::<()>().await;
                    "never"
                }
            }),
        )
        .route(
            "/hold",
            post(move || {
                let holding = holding.clone();
                async move {
                    let (tx, rx) = oneshot::channel();
                    let _ = holding.send(tx).await;
                    let _ = rx.await;
                    "held"
                }
            }),
        )
        .route(
            "/stream",
            get(move || {
                let released = released.clone();
                async move {
                    let parts = futures_util::stream::unfold(0, move |step| {
                        let released = released.clone();
                        async move {
                            match step {
                                0 => Some((Ok::<_, std::io::Error>(Bytes::from_static(b"first,")), 1)),
                                1 => {
                                    released.lock().await.recv().await;
                                    Some((Ok(Bytes::from_static(b"second")), 2))
                                }
                                _ => None,
                            }
                        }
                    });
                    Body::from_stream(parts)
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let stop = CancellationToken::new();
    let task = tokio::spawn(serve(listener, app, stop.clone().cancelled_owned()));
    Front {
        addr,
        stop,
        task,
        waiting,
        held,
        release,
    }
}

/// One response as read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    /// Header lines, names lowercased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// A client connection reading responses as HTTP/1.1 frames them.
struct Wire {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Wire {
    async fn open(addr: SocketAddr) -> Self {
        Self {
            stream: within("connect", TcpStream::connect(addr)).await.expect("connect"),
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        within("write", self.stream.write_all(bytes)).await.expect("write");
    }

    /// Reads more; false at the end of the stream.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        let n = within("read", self.stream.read(&mut chunk)).await.unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    async fn line(&mut self) -> String {
        loop {
            if let Some(at) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8(self.buf[..at].to_vec()).expect("ASCII");
                self.buf.drain(..at + 2);
                return line;
            }
            assert!(self.fill().await, "the connection ended inside a line: {:?}", self.buf);
        }
    }

    async fn exactly(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill().await, "the connection ended inside a body");
        }
        self.buf.drain(..n).collect()
    }

    /// The next response's status line and headers.
    async fn head(&mut self) -> Answer {
        let status_line = self.line().await;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not a status line: {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let line = self.line().await;
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("a header line");
            headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
        }
        Answer {
            status,
            headers,
            body: Vec::new(),
        }
    }

    /// The next chunk of a chunked body; `None` at its end.
    async fn chunk(&mut self) -> Option<Vec<u8>> {
        let size = usize::from_str_radix(&self.line().await, 16).expect("a chunk size");
        if size == 0 {
            assert_eq!(self.line().await, "", "no trailers");
            return None;
        }
        let data = self.exactly(size).await;
        assert_eq!(self.line().await, "", "a chunk ends with CRLF");
        Some(data)
    }

    /// The next whole response.
    async fn answer(&mut self) -> Answer {
        let mut answer = self.head().await;
        if let Some(length) = answer.header("content-length") {
            let length = length.parse().expect("a length");
            answer.body = self.exactly(length).await;
        } else if answer.header("transfer-encoding") == Some("chunked") {
            while let Some(data) = self.chunk().await {
                answer.body.extend(data);
            }
        }
        answer
    }

    /// Whether the server closed the connection (nothing more comes).
    async fn ended(&mut self) -> bool {
        self.buf.is_empty() && !self.fill().await
    }
}

fn post_echo(body: &str, extra: &str) -> String {
    format!(
        "POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
}

#[tokio::test]
async fn requests_on_one_connection_are_answered_in_order_pipelined_or_not() {
    let front = start().await;
    let mut wire = Wire::open(front.addr).await;
    // Two requests in one write, the second's body split from its head by the first's.
    wire.send(format!("{}{}", post_echo("one", ""), post_echo("two!", "")).as_bytes())
        .await;
    let first = wire.answer().await;
    assert_eq!((first.status, first.body.as_slice()), (200, &b"one"[..]));
    assert_eq!(first.header("content-length"), Some("3"));
    let date = first.header("date").expect("a date");
    assert!(httpdate::parse_http_date(date).is_ok(), "{date:?}");
    let second = wire.answer().await;
    assert_eq!((second.status, second.body.as_slice()), (200, &b"two!"[..]));
    // A request sent a byte at a time.
    for byte in post_echo("three", "").as_bytes() {
        wire.send(std::slice::from_ref(byte)).await;
    }
    let third = wire.answer().await;
    assert_eq!(third.body, b"three");
    // A GET without a body, then the peer's address as the handler sees it.
    wire.send(b"GET /echo HTTP/1.1\r\nhost: t\r\n\r\nGET /peer HTTP/1.1\r\nhost: t\r\n\r\n")
        .await;
    assert_eq!(wire.answer().await.body, b"get");
    let peer = wire.answer().await;
    assert_eq!(
        String::from_utf8(peer.body).expect("text"),
        wire.stream.local_addr().expect("address").to_string()
    );
    // A path nobody serves: the router's 404, and the connection goes on.
    wire.send(b"POST /nothing HTTP/1.1\r\nhost: t\r\ncontent-length: 0\r\n\r\n")
        .await;
    assert_eq!(wire.answer().await.status, 404);
    wire.send(post_echo("four", "").as_bytes()).await;
    assert_eq!(wire.answer().await.body, b"four");
}

#[tokio::test]
async fn connection_close_is_answered_then_the_connection_ends() {
    let front = start().await;
    let mut wire = Wire::open(front.addr).await;
    wire.send(post_echo("bye", "Connection: keep-alive, Close\r\n").as_bytes())
        .await;
    let answer = wire.answer().await;
    assert_eq!(answer.body, b"bye");
    assert_eq!(answer.header("connection"), Some("close"));
    assert!(wire.ended().await, "the server closed the connection");
}

#[tokio::test]
async fn requests_the_front_does_not_read_itself_are_served_by_hyper_on_the_same_connection() {
    let front = start().await;
    let mut wire = Wire::open(front.addr).await;
    // One plain request first, then a chunked one: the connection changes hands midway.
    wire.send(post_echo("plain", "").as_bytes()).await;
    assert_eq!(wire.answer().await.body, b"plain");
    wire.send(
        b"POST /echo HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )
    .await;
    let chunked = wire.answer().await;
    assert_eq!((chunked.status, chunked.body.as_slice()), (200, &b"hello world"[..]));
    // And plain ones after it, on the same connection.
    wire.send(post_echo("after", "").as_bytes()).await;
    assert_eq!(wire.answer().await.body, b"after");

    // `Expect: 100-continue`: the interim answer, then the body, then the answer.
    let mut wire = Wire::open(front.addr).await;
    wire.send(b"POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: 4\r\nexpect: 100-continue\r\n\r\n")
        .await;
    assert_eq!(wire.head().await.status, 100);
    wire.send(b"body").await;
    assert_eq!(wire.answer().await.body, b"body");

    // HTTP/1.0.
    let mut wire = Wire::open(front.addr).await;
    wire.send(b"POST /echo HTTP/1.0\r\ncontent-length: 3\r\n\r\nold").await;
    let old = wire.answer().await;
    assert_eq!((old.status, old.body.as_slice()), (200, &b"old"[..]));

    // HEAD: the headers of a GET, no body.
    let mut wire = Wire::open(front.addr).await;
    wire.send(b"HEAD /echo HTTP/1.1\r\nhost: t\r\n\r\nGET /echo HTTP/1.1\r\nhost: t\r\n\r\n")
        .await;
    let head = wire.head().await;
    assert_eq!(head.status, 200);
    let get = wire.answer().await;
    assert_eq!(
        get.body, b"get",
        "nothing of the HEAD's body came before the next answer"
    );

    // A head longer than the front reads: hyper's to read (and refuse past its own limit).
    let mut wire = Wire::open(front.addr).await;
    let long = format!(
        "GET /echo HTTP/1.1\r\nhost: t\r\nx-long: {}\r\n\r\n",
        "y".repeat(100 * 1024)
    );
    wire.send(long.as_bytes()).await;
    assert_eq!(wire.answer().await.body, b"get");

    // A body larger than the front reads whole: streamed by hyper to the handler, whole.
    let big = "x".repeat(1536 * 1024);
    let mut wire = Wire::open(front.addr).await;
    wire.send(post_echo(&big, "").as_bytes()).await;
    let echoed = wire.answer().await;
    assert_eq!((echoed.status, echoed.body.len()), (200, big.len()));
}

#[tokio::test]
async fn ambiguous_or_broken_requests_are_refused_or_end_the_connection() {
    let front = start().await;
    // Both framings: `Transfer-Encoding` wins (RFC 9112 §6.3), and the connection ends after
    // the answer, so what may be a request smuggled behind the body is never read.
    let mut wire = Wire::open(front.addr).await;
    wire.send(b"POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nGET /peer HTTP/1.1\r\nhost: t\r\n\r\n")
        .await;
    let answer = wire.answer().await;
    assert_eq!((answer.status, answer.body.as_slice()), (200, &b""[..]));
    assert!(wire.ended().await, "nothing answers the request behind the body");

    let refused: [&[u8]; 4] = [
        b"POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: 4\r\ncontent-length: 5\r\n\r\nbody!",
        b"POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: -1\r\n\r\n",
        b"GARBAGE\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nbad header\r\n\r\n",
    ];
    for request in refused {
        let mut wire = Wire::open(front.addr).await;
        wire.send(request).await;
        let answer = wire.head().await;
        assert_eq!(answer.status, 400, "{:?}", String::from_utf8_lossy(request));
        // Whatever body the refusal has, nothing after it is a second answer.
        while wire.fill().await {}
        let rest = std::mem::take(&mut wire.buf);
        assert!(
            !String::from_utf8_lossy(&rest).contains("HTTP/1.1"),
            "{:?} got a second answer: {:?}",
            String::from_utf8_lossy(request),
            String::from_utf8_lossy(&rest)
        );
    }
}

#[tokio::test]
async fn a_streamed_answer_is_sent_in_chunks_as_it_is_made() {
    let front = start().await;
    let mut wire = Wire::open(front.addr).await;
    wire.send(b"GET /stream HTTP/1.1\r\nhost: t\r\n\r\n").await;
    let head = wire.head().await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("transfer-encoding"), Some("chunked"));
    assert_eq!(head.header("content-length"), None);
    // The first part arrives while the handler still holds the second back.
    assert_eq!(wire.chunk().await.as_deref(), Some(&b"first,"[..]));
    front.release.send(()).await.expect("the stream waits");
    assert_eq!(wire.chunk().await.as_deref(), Some(&b"second"[..]));
    assert_eq!(wire.chunk().await, None);
    // The connection serves on.
    wire.send(post_echo("next", "").as_bytes()).await;
    assert_eq!(wire.answer().await.body, b"next");
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_its_request() {
    let mut front = start().await;
    let mut wire = Wire::open(front.addr).await;
    wire.send(b"POST /wait HTTP/1.1\r\nhost: t\r\ncontent-length: 0\r\n\r\n")
        .await;
    let dropped = within("the handler starts", front.waiting.recv())
        .await
        .expect("a handler");
    drop(wire);
    within("the handler is dropped", dropped)
        .await
        .expect("the handler's guard says so");
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_finishes_requests_in_flight() {
    let mut front = start().await;
    let mut idle = Wire::open(front.addr).await;
    idle.send(post_echo("hi", "").as_bytes()).await;
    assert_eq!(idle.answer().await.body, b"hi");
    let mut busy = Wire::open(front.addr).await;
    busy.send(b"POST /hold HTTP/1.1\r\nhost: t\r\ncontent-length: 0\r\n\r\n")
        .await;
    // The held request is being served when the server is told to stop.
    let hold = within("the handler starts", front.held.recv())
        .await
        .expect("a handler");
    front.stop.cancel();
    assert!(idle.ended().await, "an idle connection is closed");
    let _ = hold.send(());
    let answer = busy.answer().await;
    assert_eq!((answer.status, answer.body.as_slice()), (200, &b"held"[..]));
    assert_eq!(answer.header("connection"), Some("close"));
    assert!(busy.ended().await, "then its connection is closed");
    within("serve returns", front.task)
        .await
        .expect("no panic")
        .expect("no error");
    assert!(
        TcpStream::connect(front.addr).await.is_err(),
        "no connections are accepted after the shutdown"
    );
}
