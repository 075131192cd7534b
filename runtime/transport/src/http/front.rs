//! The HTTP/1.1 server under [`super::serve`] and [`super::serve_endpoint`]: accepting
//! connections, reading requests, writing responses, and a graceful shutdown.
//!
//! # Decisions
//!
//! - **Plain requests are served here, anything else by hyper.** A request is *plain* when it
//!   is HTTP/1.1, its method is neither `HEAD` nor `CONNECT`, its body is framed by at most one
//!   `Content-Length` (no `Transfer-Encoding`) of at most [`MAX_PLAIN_BODY`] bytes, and it has
//!   no `Expect` and no `Upgrade`: every MCP POST a client sends, and a stream's GET. Such a
//!   request is read whole (head and body) into the connection's buffer, handed to the service
//!   as one `Bytes`, and answered from here. The first request that is not plain (chunked, a
//!   WebSocket upgrade, `Expect: 100-continue`, HTTP/1.0, a head `httparse` refuses or that
//!   exceeds [`MAX_HEAD`] or [`MAX_HEADERS`], a larger body) hands the connection to hyper,
//!   which reads it from the bytes buffered so far and serves the connection to its end: the
//!   rules of every odd case (request smuggling with both framings, conflicting lengths, a bad
//!   head's `400`, a large head's `431`, a body streamed to the endpoint's `413`) stay hyper's.
//!   Why: a served MCP call went through hyper's connection dispatcher, its body channel and
//!   its response encoder; here it is one parse and one write (see `docs/benchmarks.md`).
//! - **A response** goes out with `Content-Length` when its body's size is known (read whole,
//!   written with the head in one write when small), else `Transfer-Encoding: chunked`, a chunk
//!   written as each frame comes (an SSE stream's events go out as they are sent); `204`,
//!   `304` and `1xx` have no body. Headers are written as the service set them, lowercase, with
//!   a `date` (once a second) and without the service's own framing headers.
//! - **A client that goes away cancels its request**, as with hyper: while a response is
//!   awaited or streamed the connection is watched, and its end (or an error) drops the
//!   service's future (the MCP endpoint cancels the handler). Bytes of a pipelined next request
//!   read meanwhile are kept, up to [`MAX_HEAD`].
//! - **Keep-alive** unless the request or the response says `Connection: close`, or the server
//!   is shutting down; then the connection's write side is shut after the response.
//! - **Shutdown**: no more connections are accepted; an idle connection (nothing of a next
//!   request read) closes, one serving a request closes once it is answered, and hyper's
//!   connections shut down gracefully; [`run`] returns when all have ended. An SSE stream
//!   ends when its endpoint shuts down (see [`super::serve`]).
//! - **The peer's address** is in every request's extensions (`ConnectInfo<SocketAddr>`) on
//!   either path, or the services put it there themselves ([`Address`]). No read timeout, as
//!   hyper was run before.

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::io::{self, ErrorKind, Write as _};
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use axum::body::{Body, Bytes, HttpBody as _};
use axum::extract::{ConnectInfo, Request};
use axum::http::header::{CONNECTION, CONTENT_LENGTH, DATE, EXPECT, TRANSFER_ENCODING, UPGRADE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tower_service::Service;

use super::headers::{LAST_EVENT_ID, MCP_METHOD, MCP_NAME, MCP_PROTOCOL_VERSION, MCP_SESSION_ID};

/// The longest request head (request line and headers) read here; a longer one goes to hyper.
const MAX_HEAD: usize = 64 * 1024;
/// The most headers a request read here may have (hyper's limit as well).
const MAX_HEADERS: usize = 100;
/// The largest body read whole here; a larger one is streamed by hyper.
const MAX_PLAIN_BODY: usize = 1024 * 1024;
/// How much room a read has at least.
const READ_SIZE: usize = 8 * 1024;
/// A body up to this size is written with its head in one write.
const COPY_BODY: usize = 64 * 1024;

/// Who puts the peer's address (`ConnectInfo<SocketAddr>`) in a request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Address {
    /// The connection, in every request.
    Inserted,
    /// The service, made with the address, where it is needed.
    Service,
}

/// Serves `listener`'s connections with the services `make` makes (one per connection, given
/// its peer's address) until `shutdown` completes; then stops accepting and returns once every
/// connection has ended.
///
/// The services must be ready whenever called (a `Router` is): hyper's path calls them without
/// asking.
pub(crate) async fn run<M, S>(
    listener: TcpListener,
    mut make: M,
    address: Address,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()>
where
    M: FnMut(SocketAddr) -> S,
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let stop = CancellationToken::new();
    // Every connection's task holds a receiver; all have ended when the sender sees none.
    let (ended, alive) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors, say: wait rather than spin (as axum's `serve` does).
                tracing::error!("accepting a connection: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("could not set TCP_NODELAY on a connection: {e}");
        }
        let connection = Connection {
            stream,
            buf: BytesMut::new(),
            out: Vec::new(),
            service: make(peer),
            peer,
            address,
            stopping: Box::pin(stop.clone().cancelled_owned()),
            stop: stop.clone(),
        };
        let alive = alive.clone();
        tokio::spawn(async move {
            connection.serve().await;
            drop(alive);
        });
    }
    stop.cancel();
    drop((listener, alive));
    ended.closed().await;
    Ok(())
}

/// An accept error about one connection only (it was reset before it was accepted).
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}

/// One connection: its stream, what was read of it and not consumed, and its service.
struct Connection<S> {
    stream: TcpStream,
    buf: BytesMut,
    /// A response's head (and small body), reused from one response to the next.
    out: Vec<u8>,
    service: S,
    peer: SocketAddr,
    address: Address,
    stop: CancellationToken,
    /// `stop`, waited for while the connection is idle: one waiter for the connection's life,
    /// registered with the token the first time it waits and kept (a waiter made for each
    /// wait was registered and removed again for every request, ~0.3k instructions a call).
    stopping: Pin<Box<WaitForCancellationFutureOwned>>,
}

/// What a connection goes on with when it has no plain request to serve.
enum Instead {
    /// Hyper takes the connection: the request is not one for this path.
    Hyper,
    /// It ends (the client closed it, or the server is shutting down and it was idle).
    Close,
}

/// What a plain request's head says, read from its buffer.
struct Head {
    method: Method,
    uri: Uri,
    /// Each header's name and value, as ranges of the head.
    headers: Vec<(HeaderName, std::ops::Range<usize>)>,
    /// The head's length in bytes, and the body's.
    length: usize,
    body: usize,
    /// Whether the request says `Connection: close`.
    close: bool,
}

/// Whether the connection is still there, as seen while a response is awaited.
enum Watch {
    Open,
    Gone,
}

impl<S> Connection<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    async fn serve(mut self) {
        loop {
            let (request, close) = match self.next_request().await {
                Ok(plain) => plain,
                Err(Instead::Hyper) => return self.hand_over().await,
                Err(Instead::Close) => return,
            };
            let Some(response) = self.respond(request).await else {
                return;
            };
            let keep_alive = match self.write(response, close).await {
                Ok(keep_alive) => keep_alive,
                Err(e) => {
                    tracing::debug!("writing a response: {e}");
                    return;
                }
            };
            if !keep_alive {
                let _ = self.stream.shutdown().await;
                return;
            }
        }
    }

    /// Reads the next request, when it is plain: it and whether it says `Connection: close`.
    async fn next_request(&mut self) -> Result<(Request, bool), Instead> {
        let head = loop {
            if !self.buf.is_empty() {
                match parse(&self.buf) {
                    Parsed::Plain(head) => break head,
                    Parsed::Other => return Err(Instead::Hyper),
                    Parsed::Partial if self.buf.len() > MAX_HEAD => return Err(Instead::Hyper),
                    Parsed::Partial => {}
                }
            }
            self.buf.reserve(READ_SIZE);
            let read = if self.buf.is_empty() {
                // Idle: a shutdown closes it. What is there to read is read first.
                tokio::select! {
                    biased;
                    read = self.stream.read_buf(&mut self.buf) => read,
                    () = self.stopping.as_mut() => return Err(Instead::Close),
                }
            } else {
                self.stream.read_buf(&mut self.buf).await
            };
            match read {
                Ok(0) | Err(_) => return Err(Instead::Close),
                Ok(_) => {}
            }
        };
        let wanted = head.length + head.body;
        if self.buf.len() < wanted {
            self.buf.reserve(wanted - self.buf.len());
            while self.buf.len() < wanted {
                match self.stream.read_buf(&mut self.buf).await {
                    Ok(0) | Err(_) => return Err(Instead::Close),
                    Ok(_) => {}
                }
            }
        }
        let bytes = self.buf.split_to(head.length).freeze();
        let body = self.buf.split_to(head.body).freeze();
        let mut headers = HeaderMap::with_capacity(head.headers.len());
        for (name, range) in head.headers {
            match HeaderValue::from_maybe_shared(bytes.slice(range)) {
                Ok(value) => {
                    headers.append(name, value);
                }
                // httparse let through a byte `http` does not take: not for this path, but its
                // head is consumed already, so it is refused here as hyper would.
                Err(_) => return Err(Instead::Close),
            }
        }
        let mut request = Request::new(Body::from(body));
        *request.method_mut() = head.method;
        *request.uri_mut() = head.uri;
        *request.headers_mut() = headers;
        if self.address == Address::Inserted {
            request.extensions_mut().insert(ConnectInfo(self.peer));
        }
        Ok((request, head.close))
    }

    /// The service's response to `request`; `None` when the client went away first.
    async fn respond(&mut self, request: Request) -> Option<Response> {
        if poll_fn(|cx| self.service.poll_ready(cx)).await.is_err() {
            return None;
        }
        let mut answer = pin!(self.service.call(request));
        let answered = while_connected(&self.stream, &mut self.buf, |cx| answer.as_mut().poll(cx)).await;
        answered.map(|Ok(response)| response)
    }

    /// Writes `response`; whether the connection may serve another request.
    async fn write(&mut self, response: Response, close: bool) -> io::Result<bool> {
        let (parts, mut body) = response.into_parts();
        let close = close || self.stop.is_cancelled() || says_close(&parts.headers);
        let status = parts.status;
        let out = &mut self.out;
        out.clear();
        write_head(out, status, &parts.headers, close);
        if status.is_informational() || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
            out.extend_from_slice(b"\r\n");
            self.stream.write_all(&self.out).await?;
            return Ok(!close);
        }
        let chunked = match body.size_hint().exact() {
            Some(length) => {
                out.extend_from_slice(b"content-length: ");
                out.extend_from_slice(itoa::Buffer::new().format(length).as_bytes());
                out.extend_from_slice(b"\r\n\r\n");
                false
            }
            None => {
                out.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
                true
            }
        };
        let mut written = false;
        loop {
            let frame = while_connected(&self.stream, &mut self.buf, |cx| Pin::new(&mut body).poll_frame(cx)).await;
            let data = match frame {
                // The client went away: nothing more to write.
                None => return Ok(false),
                Some(None) => break,
                Some(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => data,
                    // Trailers: not sent.
                    Err(_) => continue,
                },
                Some(Some(Err(e))) => {
                    // A body that fails midway: the connection ends, so the client sees it cut.
                    return Err(io::Error::other(e));
                }
            };
            if data.is_empty() {
                continue;
            }
            if chunked {
                self.write_chunk(&data, written).await?;
            } else if !written && self.out.len() + data.len() <= COPY_BODY {
                // A small body goes out with its head, whole or in the frames it comes in.
                self.out.extend_from_slice(&data);
                continue;
            } else {
                if !written {
                    self.stream.write_all(&self.out).await?;
                }
                self.stream.write_all(&data).await?;
            }
            written = true;
        }
        if !written {
            // The head (and a small body) not sent yet: with the last chunk, if chunked.
            if chunked {
                self.out.extend_from_slice(b"0\r\n\r\n");
            }
            self.stream.write_all(&self.out).await?;
        } else if chunked {
            self.stream.write_all(b"0\r\n\r\n").await?;
        }
        Ok(!close)
    }

    /// Writes one chunk of a chunked body (after the head, when nothing was written yet).
    async fn write_chunk(&mut self, data: &Bytes, written: bool) -> io::Result<()> {
        if written {
            self.out.clear();
        }
        // Writing to a `Vec` cannot fail.
        let _ = write!(self.out, "{:x}\r\n", data.len());
        if data.len() <= COPY_BODY {
            self.out.extend_from_slice(data);
            self.out.extend_from_slice(b"\r\n");
            self.stream.write_all(&self.out).await
        } else {
            self.stream.write_all(&self.out).await?;
            self.stream.write_all(data).await?;
            self.stream.write_all(b"\r\n").await
        }
    }

    /// Serves the rest of the connection with hyper, from what was read of it so far.
    async fn hand_over(self) {
        let Self {
            stream,
            buf,
            service,
            peer,
            address,
            stop,
            ..
        } = self;
        let io = hyper_util::rt::TokioIo::new(Rewind {
            prefix: buf.freeze(),
            stream,
        });
        let service = Hyper { service, peer, address };
        let mut connection = pin!(
            hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .with_upgrades()
        );
        let served = tokio::select! {
            served = connection.as_mut() => served,
            () = stop.cancelled() => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(e) = served {
            tracing::debug!("serving a connection: {e}");
        }
    }
}

/// Polls `poll` until it is ready, watching the connection meanwhile; `None` when the client
/// went away first.
async fn while_connected<T>(
    stream: &TcpStream,
    buf: &mut BytesMut,
    mut poll: impl FnMut(&mut Context<'_>) -> Poll<T>,
) -> Option<T> {
    poll_fn(|cx| {
        if let Poll::Ready(value) = poll(cx) {
            return Poll::Ready(Some(value));
        }
        match watch(stream, buf, cx) {
            Watch::Gone => Poll::Ready(None),
            Watch::Open => Poll::Pending,
        }
    })
    .await
}

/// Looks at the connection while a response is awaited: reads what came (a pipelined request,
/// kept in `buf`) and tells whether the client is gone (end of stream or an error). Registers
/// `cx` for the next change.
fn watch(stream: &TcpStream, buf: &mut BytesMut, cx: &mut Context<'_>) -> Watch {
    loop {
        if buf.len() >= MAX_HEAD {
            // Enough of the next request: it waits for this one (and so does an end of stream).
            return Watch::Open;
        }
        match stream.poll_read_ready(cx) {
            Poll::Pending => return Watch::Open,
            Poll::Ready(Err(_)) => return Watch::Gone,
            Poll::Ready(Ok(())) => {}
        }
        buf.reserve(READ_SIZE);
        match stream.try_read_buf(buf) {
            Ok(0) => return Watch::Gone,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => return Watch::Gone,
        }
    }
}

/// What the buffer holds.
enum Parsed {
    /// A plain request's head (see the module's docs).
    Plain(Head),
    /// Not all of a head yet.
    Partial,
    /// A head that is not plain, or not readable: hyper's.
    Other,
}

/// Reads a request head from the start of `buf`.
fn parse(buf: &[u8]) -> Parsed {
    // Left uninitialized: httparse writes the ones it finds (hyper reads heads the same way).
    let mut slots = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let length = match request.parse_with_uninit_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Other,
    };
    if request.version != Some(1) {
        return Parsed::Other;
    }
    let Some(method) = request.method.and_then(|m| Method::from_bytes(m.as_bytes()).ok()) else {
        return Parsed::Other;
    };
    if method == Method::HEAD || method == Method::CONNECT {
        return Parsed::Other;
    }
    let Some(uri) = request.path.and_then(|p| Uri::try_from(p).ok()) else {
        return Parsed::Other;
    };
    let start = buf.as_ptr() as usize;
    let mut headers = Vec::with_capacity(request.headers.len());
    let (mut body, mut close) = (None, false);
    for header in request.headers.iter() {
        let Some(name) = header_name(header.name.as_bytes()) else {
            return Parsed::Other;
        };
        if name == CONTENT_LENGTH {
            if body.is_some() {
                return Parsed::Other;
            }
            match content_length(header.value) {
                Some(length) if length <= MAX_PLAIN_BODY => body = Some(length),
                _ => return Parsed::Other,
            }
        } else if name == TRANSFER_ENCODING || name == EXPECT || name == UPGRADE {
            return Parsed::Other;
        } else if name == CONNECTION {
            close |= has_token(header.value, "close");
        }
        // The value's place in the head (httparse's slices are of `buf`).
        let from = header.value.as_ptr() as usize - start;
        headers.push((name, from..from + header.value.len()));
    }
    Parsed::Plain(Head {
        method,
        uri,
        headers,
        length,
        body: body.unwrap_or(0),
        close,
    })
}

/// The names of MCP's own headers, which `http` has no constants for: a request's are matched
/// against these, so that reading one takes no allocation (`HeaderName::from_bytes` makes one
/// for every name it does not know).
static MCP_HEADERS: [HeaderName; 5] = [
    MCP_SESSION_ID,
    MCP_PROTOCOL_VERSION,
    MCP_METHOD,
    MCP_NAME,
    LAST_EVENT_ID,
];

/// A header's name, from its bytes as sent (any case); `None` if it is no token.
fn header_name(name: &[u8]) -> Option<HeaderName> {
    let known = MCP_HEADERS
        .iter()
        .find(|known| known.as_str().len() == name.len() && name.eq_ignore_ascii_case(known.as_str().as_bytes()));
    match known {
        Some(known) => Some(known.clone()),
        None => HeaderName::from_bytes(name).ok(),
    }
}

/// A `Content-Length` value: digits only.
fn content_length(value: &[u8]) -> Option<usize> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Whether a comma-separated header value has `token` (ASCII case aside).
fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// Whether response headers say `Connection: close`.
fn says_close(headers: &HeaderMap) -> bool {
    headers
        .get_all(CONNECTION)
        .iter()
        .any(|v| has_token(v.as_bytes(), "close"))
}

/// A response's status line and headers, without the framing headers and the blank line.
fn write_head(out: &mut Vec<u8>, status: StatusCode, headers: &HeaderMap, close: bool) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING || (close && name == CONNECTION) {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !headers.contains_key(DATE) {
        out.extend_from_slice(b"date: ");
        date::now(out);
        out.extend_from_slice(b"\r\n");
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
}

/// The `date` of responses, formatted once a second per thread.
mod date {
    use std::cell::RefCell;

    use super::SystemTime;

    thread_local! {
        static NOW: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
    }

    /// Appends the current time as an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
    pub(super) fn now(out: &mut Vec<u8>) {
        let time = SystemTime::now();
        let second = time
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        NOW.with_borrow_mut(|(at, text)| {
            if *at != second || text.is_empty() {
                *at = second;
                *text = httpdate::fmt_http_date(time);
            }
            out.extend_from_slice(text.as_bytes());
        });
    }
}

/// A connection's service as hyper calls it: with the body hyper reads and the peer's address.
struct Hyper<S> {
    service: S,
    peer: SocketAddr,
    address: Address,
}

impl<S> hyper::service::Service<hyper::Request<hyper::body::Incoming>> for Hyper<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone,
{
    type Response = Response;
    type Error = Infallible;
    type Future = S::Future;

    fn call(&self, request: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        let mut request = request.map(Body::new);
        if self.address == Address::Inserted {
            request.extensions_mut().insert(ConnectInfo(self.peer));
        }
        self.service.clone().call(request)
    }
}

/// A stream that reads `prefix` first: the connection as hyper gets it, with what was read of
/// it already.
struct Rewind {
    prefix: Bytes,
    stream: TcpStream,
}

impl AsyncRead for Rewind {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix.split_to(n));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(head: &str) -> Head {
        match parse(head.as_bytes()) {
            Parsed::Plain(head) => head,
            Parsed::Partial => panic!("partial: {head:?}"),
            Parsed::Other => panic!("not plain: {head:?}"),
        }
    }

    fn is_other(head: &str) -> bool {
        matches!(parse(head.as_bytes()), Parsed::Other)
    }

    #[test]
    fn a_post_with_a_length_is_plain_and_its_header_values_are_found_in_the_head() {
        let text =
            "POST /mcp?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\nConnection: keep-alive, Close\r\n\r\nbody";
        let head = plain(text);
        assert_eq!(head.method, Method::POST);
        assert_eq!(head.uri.path(), "/mcp");
        assert_eq!(head.uri.query(), Some("x=1"));
        assert_eq!(head.length, text.len() - 4);
        assert_eq!(head.body, 12);
        assert!(head.close);
        let values: Vec<(&str, &str)> = head
            .headers
            .iter()
            .map(|(name, range)| (name.as_str(), &text[range.clone()]))
            .collect();
        assert_eq!(
            values,
            [
                ("host", "a"),
                ("content-length", "12"),
                ("connection", "keep-alive, Close")
            ]
        );
    }

    #[test]
    fn a_get_without_a_body_is_plain_with_an_empty_body() {
        let head = plain("GET /mcp HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!((head.method, head.body, head.close), (Method::GET, 0, false));
    }

    #[test]
    fn what_hyper_must_judge_is_not_plain() {
        for head in [
            "POST /mcp HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST /mcp HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST /mcp HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
            "POST /mcp HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "POST /mcp HTTP/1.1\r\nContent-Length: +3\r\n\r\n",
            "POST /mcp HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\n",
            "POST /mcp HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "POST /mcp HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n",
            "POST /mcp HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
            "GET /mcp HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            "POST /mcp HTTP/1.0\r\nContent-Length: 3\r\n\r\n",
            "HEAD /mcp HTTP/1.1\r\n\r\n",
            "CONNECT a:443 HTTP/1.1\r\n\r\n",
            "POST /mcp HTTP/1.1\r\nBad Header: x\r\n\r\n",
            "NOT A REQUEST\r\n\r\n",
        ] {
            assert!(is_other(head), "{head:?} should be hyper's");
        }
    }

    #[test]
    fn a_head_cut_short_is_partial() {
        assert!(matches!(parse(b"POST /mcp HTTP/1.1\r\nContent-Le"), Parsed::Partial));
    }

    #[test]
    fn mcp_header_names_are_known_in_any_case_and_others_are_read_as_sent() {
        assert_eq!(header_name(b"Mcp-Session-Id"), Some(MCP_SESSION_ID));
        assert_eq!(header_name(b"MCP-PROTOCOL-VERSION"), Some(MCP_PROTOCOL_VERSION));
        assert_eq!(header_name(b"mcp-name"), Some(MCP_NAME));
        assert_eq!(
            header_name(b"Mcp-Param-Region").as_ref().map(HeaderName::as_str),
            Some("mcp-param-region")
        );
        assert_eq!(header_name(b"Content-Type"), Some(axum::http::header::CONTENT_TYPE));
        assert_eq!(header_name(b"mcp-name!"), HeaderName::from_bytes(b"mcp-name!").ok());
        assert_eq!(header_name(b"bad name"), None);
    }

    #[test]
    fn connection_tokens_are_read_whole_and_without_case() {
        assert!(has_token(b"keep-alive, CLOSE", "close"));
        assert!(has_token(b"close", "close"));
        assert!(!has_token(b"closed, keep-alive", "close"));
    }

    #[test]
    fn a_response_head_has_its_headers_a_date_and_no_framing_of_the_service_s() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("999"));
        headers.insert(CONNECTION, HeaderValue::from_static("keep-alive"));
        let mut out = Vec::new();
        write_head(&mut out, StatusCode::OK, &headers, true);
        let text = String::from_utf8(out).expect("ASCII");
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], "HTTP/1.1 200 OK");
        assert_eq!(lines[1], "content-type: application/json");
        assert!(
            lines[2].starts_with("date: ") && lines[2].ends_with(" GMT"),
            "{}",
            lines[2]
        );
        assert!(httpdate::parse_http_date(&lines[2]["date: ".len()..]).is_ok());
        assert_eq!(lines[3], "connection: close");
        assert_eq!(lines.len(), 5, "{text:?}");
    }
}
