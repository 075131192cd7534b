//! How the client's POSTs are sent: on a pool of HTTP/1.1 connections of its own when nothing
//! reqwest adds is needed, through reqwest otherwise; and [`Answer`], the response of either.
//!
//! # Decisions
//!
//! - **Why not reqwest for every POST.** reqwest runs each request through layers this client
//!   does not use: its redirect layer parses the request's URL again from text twice (even with
//!   redirects off), its proxy matcher is consulted, and header maps are cloned. In
//!   `valgrind --tool=callgrind` of a gateway relaying `tools/call`, that was about 25k
//!   instructions a call, an eighth of the relayed call.
//! - **Why not hyper's client either.** hyper's HTTP/1.1 client drives each connection from a
//!   task of its own, to which the request and from which each part of the response are
//!   handed over channels; the task that awaits the answer and the connection's task then
//!   take turns several times a call. A connection of [`super::h1`] is written and read by the
//!   task that POSTs; its answer is read by the task that awaits it (see that module).
//! - **When the direct client is used ([`Direct`]):** the endpoint is `http://`, the request has no
//!   [`super::auth::Auth`] provider (the `401`/`403` retry with a renewed token is
//!   [`super::auth::send`]'s, on reqwest), the URL carries no user name or password (reqwest
//!   sends them as Basic credentials), and the environment names no proxy (`http_proxy`,
//!   `HTTP_PROXY`, `all_proxy`, `ALL_PROXY`: reqwest honours them, this client does not). Everything
//!   else — `https://`, proxies, OAuth, and the session's GET stream and `DELETE` — goes
//!   through reqwest as before.
//! - **The same connection behaviour as reqwest's defaults:** `TCP_NODELAY`, the configured
//!   connect timeout, TCP keep-alive (15 s, probes every 15 s, 3 retries), idle connections
//!   kept 90 s, `Host` from the URL.
//! - **A pool of its own, not `hyper_util`'s.** [`Direct`] talks to one endpoint, so its pool
//!   is a stack of idle HTTP/1.1 connections, last used first:
//!   no key to hash (`hyper_util`'s pool hashed its scheme-and-authority key with SipHash on
//!   every checkout and every return), no `Host` formatted per request, no request URI made
//!   origin-form per request (both are made once). In `valgrind --tool=callgrind` of a
//!   gateway relaying `tools/call`, `hyper_util`'s `send_request` was about 9k instructions a
//!   call. A connection goes back to the stack when its response's body has been read to
//!   the end ([`Answer::chunk`] returned `None`); one whose answer is dropped unread is
//!   closed. A connection found closed, or idle for longer than [`IDLE_TIMEOUT`], is dropped
//!   at checkout; a request that a reused connection could not take and that got no answer
//!   (the server closed it meanwhile) is sent again on the next connection, as `hyper_util`'s
//!   client does. Connections idle past the timeout are closed when the pool is next used.
//! - **An SSE answer read up to its response** ([`Answer::release`]): the rest of the stream
//!   (a server ends it after the response) is read in a task of its own, at most
//!   [`DRAIN_LIMIT`] bytes within [`DRAIN_TIMEOUT`], and the connection pooled again; a
//!   stream that goes on is closed. An answer dropped for any other reason (the call was
//!   cancelled) closes its connection at once, which a stateless server takes as the cancel.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::header::{ACCEPT, CONTENT_TYPE, HOST};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};
use tokio::net::TcpStream;

use super::h1::{self, Conn, Error};

/// Environment variables through which reqwest finds a proxy for `http://` URLs.
const PROXY_VARIABLES: [&str; 4] = ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"];
/// How long an idle connection is kept (reqwest's default).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// TCP keep-alive: the idle time before the first probe, and between probes.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// TCP keep-alive: unanswered probes before the connection is dropped.
const KEEPALIVE_RETRIES: u32 = 3;
/// What is read at most of an answer's rest after its response ([`Pooled::release`]), and for
/// how long, before its connection is given up rather than pooled again.
const DRAIN_LIMIT: usize = 64 * 1024;
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// The HTTP/1.1 client of one `http://` endpoint, with its pool of idle connections.
pub(super) struct Direct {
    /// Where to connect: the URL's host (without brackets) and port.
    host: String,
    port: u16,
    /// The request target (the URL's path and query), made once.
    target: String,
    /// The headers of every POST: `Host`, the content type, `Accept` and the configured ones.
    headers: HeaderMap,
    connect_timeout: Duration,
    /// Idle connections, the most recently used last.
    idle: Arc<Mutex<Vec<Idle>>>,
}

/// A connection waiting in the pool.
struct Idle {
    conn: Conn,
    since: Instant,
}

impl Direct {
    /// The client for `url`, or `None` when its POSTs must go through reqwest (an `https://`
    /// URL, one with credentials, or a proxy in the environment).
    pub(super) fn new(url: &Url, connect_timeout: Duration) -> Option<Self> {
        let credentials = !url.username().is_empty() || url.password().is_some();
        if url.scheme() != "http" || credentials || names_a_proxy(std::env::var_os) {
            return None;
        }
        let host = match url.host()? {
            url::Host::Domain(domain) => domain.to_string(),
            url::Host::Ipv4(address) => address.to_string(),
            url::Host::Ipv6(address) => address.to_string(),
        };
        let port = url.port_or_known_default()?;
        // `Host`: the URL's host as written (brackets kept), and its port unless the default.
        let written = url.host_str()?;
        let host_header = match url.port() {
            Some(port) if port != 80 => HeaderValue::from_str(&format!("{written}:{port}")).ok()?,
            _ => HeaderValue::from_str(written).ok()?,
        };
        let target = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        };
        let mut headers = HeaderMap::new();
        headers.insert(HOST, host_header);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json, text/event-stream"));
        Some(Self {
            host,
            port,
            target,
            headers,
            connect_timeout,
            idle: Arc::default(),
        })
    }

    /// Sends `configured` with every POST (the client's configured headers), before the
    /// request's own. The content type and `Accept` are this client's; a configured `Host`
    /// replaces the URL's.
    pub(super) fn with_headers(mut self, configured: &HeaderMap) -> Self {
        let mut headers = configured.clone();
        headers.extend(std::mem::take(&mut self.headers));
        if let Some(host) = configured.get(HOST) {
            headers.insert(HOST, host.clone());
        }
        self.headers = headers;
        self
    }

    /// POSTs `body` with the headers of every POST and `extra` (which replace those of the
    /// same names), on an idle connection or a new one, and reads the response's head.
    pub(super) async fn post(&self, extra: HeaderMap, body: String) -> Result<Pooled, Error> {
        loop {
            let (mut conn, reused) = match self.checkout() {
                Some(conn) => (conn, true),
                None => (self.connect().await?, false),
            };
            let written = conn
                .write_post(&self.target, &self.headers, &extra, body.as_bytes())
                .await;
            let head = match (written, conn.read_head().await) {
                (_, Ok(head)) => head,
                // Not written: the server closed the idle connection meanwhile, and the next
                // connection gets the request. (A server that refuses a request before reading
                // all of it may close before it is written; its answer is read above.)
                (Err(_), Err(_)) if reused => continue,
                (Err(e), Err(_)) => return Err(e.into()),
                (Ok(()), Err(e)) => return Err(e),
            };
            return Ok(Pooled {
                status: head.status,
                headers: head.headers,
                body: head.body,
                keep_alive: head.keep_alive,
                conn: Some(conn),
                idle: self.idle.clone(),
            });
        }
    }

    /// An idle connection that can take a request, the most recently used first; those
    /// closed or idle too long are dropped.
    fn checkout(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        // The oldest are first: those idle too long are all at the front.
        let expired = idle.iter().take_while(|i| now - i.since > IDLE_TIMEOUT).count();
        idle.drain(..expired);
        while let Some(Idle { conn, .. }) = idle.pop() {
            if conn.is_reusable() {
                return Some(conn);
            }
        }
        None
    }

    /// A new connection.
    async fn connect(&self) -> Result<Conn, Error> {
        let address = (self.host.as_str(), self.port);
        let stream = match tokio::time::timeout(self.connect_timeout, TcpStream::connect(address)).await {
            Ok(connected) => connected?,
            Err(_) => {
                return Err(format!(
                    "connecting to {}:{} timed out after {:?}",
                    self.host, self.port, self.connect_timeout
                )
                .into());
            }
        };
        stream.set_nodelay(true)?;
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(KEEPALIVE)
            .with_interval(KEEPALIVE)
            .with_retries(KEEPALIVE_RETRIES);
        socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive)?;
        Ok(Conn::new(stream))
    }
}

/// A response on a pooled connection: the connection goes back to the pool once the body
/// has been read to its end.
pub(super) struct Pooled {
    status: StatusCode,
    headers: HeaderMap,
    /// What is left of the body.
    body: h1::Body,
    /// Whether the connection may serve again once the body is read.
    keep_alive: bool,
    /// `None` once the body has been read, or failed.
    conn: Option<Conn>,
    idle: Arc<Mutex<Vec<Idle>>>,
}

impl Pooled {
    /// The next chunk of the body; `None` at its end.
    async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(None);
        };
        match conn.read_body(&mut self.body).await {
            Ok(Some(chunk)) => Ok(Some(chunk)),
            Ok(None) => {
                if let Some(conn) = self.conn.take()
                    && self.keep_alive
                    && conn.is_drained()
                {
                    let idle = Idle {
                        conn,
                        since: Instant::now(),
                    };
                    self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(idle);
                }
                Ok(None)
            }
            Err(e) => {
                self.conn = None;
                Err(e)
            }
        }
    }

    /// Done with the answer before its end: see the module's docs.
    fn release(mut self) {
        if !self.keep_alive || self.conn.is_none() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
                let mut read = 0usize;
                while let Some(chunk) = self.chunk().await? {
                    read += chunk.len();
                    if read > DRAIN_LIMIT {
                        return Err(Error::from("too long"));
                    }
                }
                Ok(())
            })
            .await;
            // The connection was pooled again by `chunk` at the body's end; otherwise it
            // closes as `self` is dropped.
            drop(drained);
        });
    }
}

/// Whether the environment (read with `get`) names a proxy for `http://` URLs.
fn names_a_proxy(get: impl Fn(&'static str) -> Option<std::ffi::OsString>) -> bool {
    PROXY_VARIABLES
        .iter()
        .any(|name| get(name).is_some_and(|value| !value.is_empty()))
}

/// An answer to one of the client's requests, from whichever client sent it.
pub(super) enum Answer {
    Reqwest(reqwest::Response),
    Direct(Pooled),
}

impl Answer {
    pub(super) fn status(&self) -> StatusCode {
        match self {
            Answer::Reqwest(response) => response.status(),
            Answer::Direct(pooled) => pooled.status,
        }
    }

    pub(super) fn headers(&self) -> &HeaderMap {
        match self {
            Answer::Reqwest(response) => response.headers(),
            Answer::Direct(pooled) => &pooled.headers,
        }
    }

    /// The next chunk of the body; `None` at its end.
    pub(super) async fn chunk(&mut self) -> Result<Option<Bytes>, Box<dyn std::error::Error + Send + Sync>> {
        match self {
            Answer::Reqwest(response) => Ok(response.chunk().await?),
            Answer::Direct(pooled) => pooled.chunk().await,
        }
    }

    /// Done with an answer whose stream may not have ended yet (an SSE answer read up to its
    /// response): the direct client's connection is pooled again once the rest is read, if it ends soon.
    pub(super) fn release(self) {
        if let Answer::Direct(pooled) = self {
            pooled.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http;
    use http_body_util::{BodyExt, Full};
    use hyper::body::Incoming;

    use super::*;

    #[test]
    fn the_direct_client_sends_only_to_plain_http_endpoints() {
        let url = |text: &str| Url::parse(text).unwrap();
        let timeout = Duration::from_secs(1);
        // No proxy in the test environment is assumed: CI sets none.
        if !names_a_proxy(std::env::var_os) {
            assert!(Direct::new(&url("http://127.0.0.1:8080/mcp"), timeout).is_some());
        }
        assert!(Direct::new(&url("https://127.0.0.1:8443/mcp"), timeout).is_none());
        assert!(Direct::new(&url("http://user:secret@127.0.0.1:8080/mcp"), timeout).is_none());
        assert!(Direct::new(&url("http://user@127.0.0.1:8080/mcp"), timeout).is_none());
    }

    #[test]
    fn a_proxy_in_the_environment_leaves_the_posts_to_reqwest() {
        let with = |set: &'static str, value: &'static str| {
            move |name: &'static str| (name == set).then(|| std::ffi::OsString::from(value))
        };
        for name in PROXY_VARIABLES {
            assert!(names_a_proxy(with(name, "http://proxy:3128")), "{name}");
            assert!(!names_a_proxy(with(name, "")), "{name} set but empty");
        }
        assert!(!names_a_proxy(with("https_proxy", "http://proxy:3128")));
        assert!(!names_a_proxy(|_| None));
    }

    /// A test server answering every request with `answer`, counting the connections it
    /// accepted; with `keep_alive` off it closes each after one answer.
    async fn serve<F, Fut, B>(keep_alive: bool, answer: F) -> (Url, Arc<std::sync::atomic::AtomicUsize>)
    where
        F: Fn(http::Request<Incoming>) -> Fut + Clone + Send + 'static,
        Fut: std::future::Future<Output = Result<http::Response<B>, hyper::Error>> + Send + 'static,
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Error>,
    {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/mcp?x=1", listener.local_addr().unwrap())).unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counted = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .keep_alive(keep_alive)
                        .serve_connection(
                            hyper_util::rt::TokioIo::new(stream),
                            hyper::service::service_fn(answer.clone()),
                        ),
                );
            }
        });
        (url, accepted)
    }

    /// [`serve`] answering every POST with what it saw (`Host`, target, body).
    async fn server(keep_alive: bool) -> (Url, Arc<std::sync::atomic::AtomicUsize>) {
        serve(keep_alive, |request: http::Request<Incoming>| async move {
            let host = request.headers()[HOST].to_str().unwrap().to_string();
            let target = request.uri().to_string();
            let body = request.into_body().collect().await?.to_bytes();
            let text = format!("{host} {target} {}", String::from_utf8_lossy(&body));
            Ok(http::Response::new(Full::new(Bytes::from(text))))
        })
        .await
    }

    /// The whole body of an answer.
    async fn read(mut answer: Pooled) -> String {
        let mut text = Vec::new();
        while let Some(chunk) = answer.chunk().await.unwrap() {
            text.extend_from_slice(&chunk);
        }
        String::from_utf8(text).unwrap()
    }

    #[tokio::test]
    async fn posts_reuse_one_connection_once_each_answer_is_read() {
        use std::sync::atomic::Ordering;
        if names_a_proxy(std::env::var_os) {
            return;
        }
        let (url, accepted) = server(true).await;
        let direct = Direct::new(&url, Duration::from_secs(5)).unwrap();
        let port = url.port().unwrap();
        for n in 0..5 {
            let answer = direct.post(HeaderMap::new(), format!("call {n}")).await.unwrap();
            assert_eq!(answer.status, StatusCode::OK);
            assert_eq!(read(answer).await, format!("127.0.0.1:{port} /mcp?x=1 call {n}"));
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "five POSTs, one after another, share one connection"
        );
        // Two at once need two connections; both go back to the pool.
        let (a, b) = tokio::join!(
            direct.post(HeaderMap::new(), "a".into()),
            direct.post(HeaderMap::new(), "b".into())
        );
        assert!(read(a.unwrap()).await.ends_with(" a"));
        assert!(read(b.unwrap()).await.ends_with(" b"));
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        assert_eq!(direct.idle.lock().unwrap().len(), 2);
        // An answer dropped unread takes its connection with it.
        drop(direct.post(HeaderMap::new(), "unread".into()).await.unwrap());
        assert_eq!(direct.idle.lock().unwrap().len(), 1);
        assert!(
            read(direct.post(HeaderMap::new(), "after".into()).await.unwrap())
                .await
                .ends_with(" after")
        );
    }

    /// A body of the chunks sent on a channel, ending when its sender is dropped.
    struct Chunks(tokio::sync::mpsc::Receiver<Bytes>);

    impl hyper::body::Body for Chunks {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
            self.0
                .poll_recv(cx)
                .map(|chunk| chunk.map(|c| Ok(hyper::body::Frame::data(c))))
        }
    }

    #[tokio::test]
    async fn an_answer_released_after_its_response_gives_its_connection_back_when_its_stream_ends() {
        use std::sync::atomic::Ordering;
        if names_a_proxy(std::env::var_os) {
            return;
        }
        // Each answer: an event at once, the stream's end 50 ms later (as a server ends a
        // request's stream after its response).
        let (url, accepted) = serve(true, |_: http::Request<Incoming>| async move {
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            tokio::spawn(async move {
                let _ = tx.send(Bytes::from_static(b"event: message\ndata: {}\n\n")).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            });
            Ok(http::Response::new(Chunks(rx)))
        })
        .await;
        let direct = Direct::new(&url, Duration::from_secs(5)).unwrap();
        for _ in 0..3 {
            let mut answer = direct.post(HeaderMap::new(), "x".into()).await.unwrap();
            let first = answer.chunk().await.unwrap().expect("the event");
            assert!(first.starts_with(b"event: message"));
            answer.release();
            let back = async {
                while direct.idle.lock().unwrap().is_empty() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            };
            tokio::time::timeout(Duration::from_secs(5), back)
                .await
                .expect("the connection back in the pool once the stream ended");
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "three answers released, one connection"
        );
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_is_not_used_again() {
        use std::sync::atomic::Ordering;
        if names_a_proxy(std::env::var_os) {
            return;
        }
        let (url, accepted) = server(false).await;
        let direct = Direct::new(&url, Duration::from_secs(5)).unwrap();
        for n in 0..3 {
            let answer = direct.post(HeaderMap::new(), format!("call {n}")).await.unwrap();
            assert!(read(answer).await.ends_with(&format!(" call {n}")));
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3, "each answer closed its connection");
    }

    #[tokio::test]
    async fn a_refusal_sent_before_the_body_was_read_is_the_answer() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        if names_a_proxy(std::env::var_os) {
            return;
        }
        // A server that answers `413` after the request's head and closes the connection
        // with the body unread, as servers do with a body over their limit.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/mcp", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut seen = Vec::new();
                let mut byte = [0u8; 1];
                while !seen.ends_with(b"\r\n\r\n") && stream.read_exact(&mut byte).await.is_ok() {
                    seen.push(byte[0]);
                }
                let refusal = b"HTTP/1.1 413 Payload Too Large\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}";
                let _ = stream.write_all(refusal).await;
            }
        });
        let direct = Direct::new(&url, Duration::from_secs(5)).unwrap();
        // Far more than the socket buffers hold: the write fails once the server has closed.
        let body = "x".repeat(16 << 20);
        let answer = direct.post(HeaderMap::new(), body).await.unwrap();
        assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(read(answer).await, "{}");
        assert!(
            direct.idle.lock().unwrap().is_empty(),
            "a closed connection is not pooled"
        );
    }

    #[tokio::test]
    async fn a_connection_that_cannot_be_made_is_an_error_naming_it() {
        // A port nothing listens on: bound, then closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = Url::parse(&format!("http://127.0.0.1:{port}/mcp")).unwrap();
        let Some(direct) = Direct::new(&url, Duration::from_secs(5)) else {
            return; // a proxy in the environment
        };
        let error = direct.post(HeaderMap::new(), "x".into()).await.err().unwrap();
        assert!(error.to_string().to_lowercase().contains("refused"), "{error}");
    }

    #[test]
    fn the_host_header_and_target_come_from_the_url() {
        if names_a_proxy(std::env::var_os) {
            return;
        }
        let direct = |text: &str| Direct::new(&Url::parse(text).unwrap(), Duration::from_secs(1)).unwrap();
        let d = direct("http://localhost/mcp");
        assert_eq!(
            (d.host.as_str(), d.port, d.headers[HOST].to_str().unwrap()),
            ("localhost", 80, "localhost")
        );
        assert_eq!(d.target, "/mcp");
        let d = direct("http://[::1]:8080/a/b?c=d");
        assert_eq!(
            (d.host.as_str(), d.port, d.headers[HOST].to_str().unwrap()),
            ("::1", 8080, "[::1]:8080")
        );
        assert_eq!(d.target, "/a/b?c=d");
        let d = direct("http://example.com:80/");
        assert_eq!(d.headers[HOST].to_str().unwrap(), "example.com");
        // Configured headers go with every POST; a configured `Host` wins, the content type
        // and `Accept` are the client's.
        let mut configured = HeaderMap::new();
        configured.insert("x-team", HeaderValue::from_static("blue"));
        configured.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let d = direct("http://127.0.0.1:9/mcp").with_headers(&configured);
        assert_eq!(d.headers["x-team"], "blue");
        assert_eq!(d.headers[CONTENT_TYPE], "application/json");
        assert_eq!(d.headers[HOST], "127.0.0.1:9");
        configured.insert(HOST, HeaderValue::from_static("mcp.internal"));
        let d = direct("http://127.0.0.1:9/mcp").with_headers(&configured);
        assert_eq!(d.headers[HOST], "mcp.internal");
    }
}
