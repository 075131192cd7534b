//! One HTTP/1.1 client connection of the direct client ([`super::direct`]): a request written
//! and its response read by the task that awaits them, on a TCP stream it holds.
//!
//! # Decisions
//!
//! - **No connection task.** hyper's client runs a task per connection and hands each request
//!   to it, and each part of the response back, over channels: a relayed call switched to that
//!   task about 2.7 times and paid a channel hop each way (see `docs/benchmarks.md`, "Where the
//!   relay's time goes besides instructions"). Here the task that POSTs writes the request and
//!   reads the response itself; an idle connection is a stream in the pool, watched by nobody
//!   (a server that closed it meanwhile is seen at checkout, [`Conn::is_reusable`]).
//! - **What is read**: a status line and headers (`httparse`; at most [`MAX_HEAD`] bytes and
//!   [`MAX_HEADERS`] headers), informational (`1xx`) responses skipped, then a body framed as
//!   HTTP/1.1 says (RFC 9112 §6.3): none for `204` and `304`; chunked when the last transfer
//!   coding is `chunked` (extensions and trailers read and ignored); read to the connection's
//!   end for any other transfer coding, or when there is neither `Transfer-Encoding` nor
//!   `Content-Length`; else `Content-Length` (several values must agree). A malformed head, a
//!   bad chunk size or a body cut short is an error, never a guess.
//! - **Kept alive** only when the response is HTTP/1.1 without `Connection: close`, its body
//!   was framed by length or chunks and read to its end, and nothing followed it.
//! - **What is written**: `POST <target> HTTP/1.1`, the headers given, `Content-Length`, and
//!   the body, in one write, whole before the response is read. A server that answers while
//!   it still reads a body larger than the sockets' buffers would wait on this client as it
//!   waits on the server (hyper's client reads and writes at once); an MCP server reads a whole
//!   message before it answers it, one that refuses it and closes is read (see
//!   [`super::direct`]), and the request's timeout bounds the rest.

use std::io::{ErrorKind, Write as _};

use axum::body::Bytes;
use axum::http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest response head (status line and headers) read.
pub(super) const MAX_HEAD: usize = 64 * 1024;
/// The most headers a response may have.
const MAX_HEADERS: usize = 100;
/// The longest chunk-size line or trailer line read.
const MAX_LINE: usize = 4096;
/// How much room a read has at least.
const READ_SIZE: usize = 8 * 1024;

/// Why an exchange failed.
pub(super) type Error = Box<dyn std::error::Error + Send + Sync>;

/// An HTTP/1.1 connection and what was read on it and not consumed yet.
pub(super) struct Conn {
    stream: TcpStream,
    buf: BytesMut,
}

/// A response's status line and headers, and how its body is framed.
pub(super) struct Head {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) body: Body,
    /// Whether the connection may serve another request once the body is read.
    pub(super) keep_alive: bool,
}

/// How much of a response's body is left, by its framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Body {
    /// This many bytes.
    Length(u64),
    /// Chunks: the next is announced by a size line.
    ChunkSize,
    /// Chunks: this many bytes of the current chunk, then its line end.
    ChunkData(u64),
    /// Chunks: the line end after a chunk's data.
    ChunkEnd,
    /// Chunks: trailer lines up to an empty one.
    Trailers,
    /// Everything until the server closes the connection.
    UntilClose,
    /// Read to its end.
    Done,
}

impl Conn {
    pub(super) fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: BytesMut::new(),
        }
    }

    /// Whether an idle connection can take a request: the server has not closed it and sent
    /// nothing unasked. Checks what the runtime already knows of the socket; makes a system
    /// call only when it was seen readable.
    pub(super) fn is_reusable(&self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == ErrorKind::WouldBlock)
    }

    /// Writes a POST of `body` to `target` with the headers of `base` not named in `extra`,
    /// those of `extra`, and `Content-Length`.
    pub(super) async fn write_post(
        &mut self,
        target: &str,
        base: &HeaderMap,
        extra: &HeaderMap,
        body: &[u8],
    ) -> std::io::Result<()> {
        let mut request = Vec::with_capacity(256 + body.len());
        request.extend_from_slice(b"POST ");
        request.extend_from_slice(target.as_bytes());
        request.extend_from_slice(b" HTTP/1.1\r\n");
        let kept = base.iter().filter(|(name, _)| !extra.contains_key(*name));
        for (name, value) in kept.chain(extra) {
            request.extend_from_slice(name.as_str().as_bytes());
            request.extend_from_slice(b": ");
            request.extend_from_slice(value.as_bytes());
            request.extend_from_slice(b"\r\n");
        }
        // Writing to a `Vec` cannot fail.
        let _ = write!(request, "content-length: {}\r\n\r\n", body.len());
        request.extend_from_slice(body);
        self.stream.write_all(&request).await
    }

    /// Reads the response's head, skipping informational responses.
    pub(super) async fn read_head(&mut self) -> Result<Head, Error> {
        loop {
            if let Some(head) = self.parse_head()? {
                return Ok(head);
            }
            if self.buf.len() > MAX_HEAD {
                return Err(format!("the response's head is longer than {MAX_HEAD} bytes").into());
            }
            if self.fill().await? == 0 {
                return Err(if self.buf.is_empty() {
                    "the connection closed before the response".into()
                } else {
                    "the connection closed within the response's head".into()
                });
            }
        }
    }

    /// The final response's head if the buffer holds it whole; informational ones are consumed.
    fn parse_head(&mut self) -> Result<Option<Head>, Error> {
        loop {
            if self.buf.is_empty() {
                return Ok(None);
            }
            let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut response = httparse::Response::new(&mut slots);
            let length = match response.parse(&self.buf) {
                Ok(httparse::Status::Complete(length)) => length,
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(e) => return Err(format!("invalid HTTP response: {e}").into()),
            };
            let code = response.code.unwrap_or_default();
            let status = StatusCode::from_u16(code).map_err(|_| format!("invalid HTTP status {code}"))?;
            if status.is_informational() {
                if status == StatusCode::SWITCHING_PROTOCOLS {
                    return Err("the server switched protocols, which a POST never asks".into());
                }
                self.buf.advance(length);
                continue;
            }
            let mut headers = HeaderMap::with_capacity(response.headers.len());
            for header in response.headers.iter() {
                let name = HeaderName::from_bytes(header.name.as_bytes())
                    .map_err(|_| format!("invalid header name {:?}", header.name))?;
                let value = HeaderValue::from_bytes(header.value)
                    .map_err(|_| format!("invalid value of the header {}", header.name))?;
                headers.append(name, value);
            }
            let http11 = response.version == Some(1);
            let (body, framed) = framing(status, &headers)?;
            let keep_alive = http11 && framed && !has_token(&headers, &CONNECTION, "close");
            self.buf.advance(length);
            return Ok(Some(Head {
                status,
                headers,
                body,
                keep_alive,
            }));
        }
    }

    /// The next piece of a body framed as `body`, which it updates; `None` at its end.
    pub(super) async fn read_body(&mut self, body: &mut Body) -> Result<Option<Bytes>, Error> {
        loop {
            match *body {
                Body::Done => return Ok(None),
                Body::Length(0) => *body = Body::Done,
                Body::Length(left) | Body::ChunkData(left) => {
                    if self.buf.is_empty() && self.fill().await? == 0 {
                        return Err("the connection closed before the end of the response's body".into());
                    }
                    let take = self.buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let rest = left - take as u64;
                    *body = match *body {
                        Body::Length(_) => Body::Length(rest),
                        _ if rest == 0 => Body::ChunkEnd,
                        _ => Body::ChunkData(rest),
                    };
                    return Ok(Some(self.buf.split_to(take).freeze()));
                }
                Body::ChunkSize => {
                    let line = self.line().await?;
                    let size = chunk_size(&line)?;
                    *body = if size == 0 {
                        Body::Trailers
                    } else {
                        Body::ChunkData(size)
                    };
                }
                Body::ChunkEnd => {
                    if !self.line().await?.is_empty() {
                        return Err("a chunk is longer than its size".into());
                    }
                    *body = Body::ChunkSize;
                }
                Body::Trailers => {
                    if self.line().await?.is_empty() {
                        *body = Body::Done;
                    }
                }
                Body::UntilClose => {
                    if self.buf.is_empty() && self.fill().await? == 0 {
                        *body = Body::Done;
                        continue;
                    }
                    return Ok(Some(self.buf.split().freeze()));
                }
            }
        }
    }

    /// The next line (without its `\r\n`, a bare `\n` accepted too), at most [`MAX_LINE`] bytes.
    async fn line(&mut self) -> Result<Bytes, Error> {
        let mut searched = 0;
        loop {
            if let Some(at) = self.buf[searched..].iter().position(|&b| b == b'\n') {
                let mut line = self.buf.split_to(searched + at + 1);
                line.truncate(line.len() - 1);
                if line.last() == Some(&b'\r') {
                    line.truncate(line.len() - 1);
                }
                return Ok(line.freeze());
            }
            searched = self.buf.len();
            if searched > MAX_LINE {
                return Err(format!("a chunk's size line or trailer is longer than {MAX_LINE} bytes").into());
            }
            if self.fill().await? == 0 {
                return Err("the connection closed within the response's chunked body".into());
            }
        }
    }

    /// Reads what the socket has into the buffer; 0 when the server closed the connection.
    async fn fill(&mut self) -> std::io::Result<usize> {
        self.buf.reserve(READ_SIZE);
        self.stream.read_buf(&mut self.buf).await
    }

    /// Whether everything read has been consumed (nothing the server sent beyond a response).
    pub(super) fn is_drained(&self) -> bool {
        self.buf.is_empty()
    }
}

/// How a response's body is framed, and whether that framing lets the connection be reused.
fn framing(status: StatusCode, headers: &HeaderMap) -> Result<(Body, bool), Error> {
    if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok((Body::Done, true));
    }
    if headers.contains_key(TRANSFER_ENCODING) {
        // The last transfer coding says how the body ends: `chunked`, or the connection's end.
        let last = headers
            .get_all(TRANSFER_ENCODING)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .rfind(|coding| !coding.is_empty());
        return Ok(match last {
            Some(coding) if coding.eq_ignore_ascii_case("chunked") => (Body::ChunkSize, true),
            _ => (Body::UntilClose, false),
        });
    }
    let mut length: Option<u64> = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        for part in value.to_str().unwrap_or_default().split(',') {
            let part = part.trim();
            let parsed = (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse::<u64>().ok())
                .flatten()
                .ok_or_else(|| format!("invalid Content-Length {part:?}"))?;
            if length.is_some_and(|seen| seen != parsed) {
                return Err("the response has Content-Length values that disagree".into());
            }
            length = Some(parsed);
        }
    }
    Ok(match length {
        Some(length) => (Body::Length(length), true),
        None => (Body::UntilClose, false),
    })
}

/// A chunk-size line's size (hexadecimal, before any `;` extension).
fn chunk_size(line: &[u8]) -> Result<u64, Error> {
    let end = line.iter().position(|&b| b == b';').unwrap_or(line.len());
    let digits = line[..end].trim_ascii();
    let text = std::str::from_utf8(digits).unwrap_or_default();
    if text.is_empty() || text.len() > 15 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("invalid chunk size {:?}", String::from_utf8_lossy(line)).into());
    }
    u64::from_str_radix(text, 16).map_err(|e| e.to_string().into())
}

/// Whether a comma-separated header lists `token` (case-insensitively).
fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|part| part.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection to a server that answers the first request with `response` (sent in the
    /// pieces given, 10 ms apart), then closes if `close`.
    async fn answered(pieces: &[&'static [u8]], close: bool) -> Conn {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let pieces = pieces.to_vec();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            // The request: up to the end of its head, then its body by Content-Length.
            let mut seen = Vec::new();
            let mut byte = [0u8; 1];
            while !seen.ends_with(b"\r\n\r\n") {
                stream.read_exact(&mut byte).await.unwrap();
                seen.push(byte[0]);
            }
            for piece in pieces {
                // The client stops reading at an error; what it left unread does not matter.
                let _ = stream.write_all(piece).await;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            if !close {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            }
        });
        let mut conn = Conn::new(TcpStream::connect(address).await.unwrap());
        conn.write_post("/mcp", &HeaderMap::new(), &HeaderMap::new(), b"")
            .await
            .unwrap();
        conn
    }

    /// The response's status, its whole body and whether the connection could serve again.
    async fn exchange(pieces: &[&'static [u8]], close: bool) -> Result<(u16, String, bool), Error> {
        let mut conn = answered(pieces, close).await;
        let head = conn.read_head().await?;
        let mut body = head.body;
        let mut text = Vec::new();
        while let Some(chunk) = conn.read_body(&mut body).await? {
            text.extend_from_slice(&chunk);
        }
        let reusable = head.keep_alive && conn.is_drained();
        Ok((head.status.as_u16(), String::from_utf8(text).unwrap(), reusable))
    }

    #[tokio::test]
    async fn a_body_framed_by_its_length_is_read_in_whatever_pieces_it_comes() {
        let answer = exchange(
            &[
                b"HTTP/1.1 200 OK\r\nContent-Ty",
                b"pe: application/json\r\ncontent-length: 10\r\n\r\n{\"a\"",
                b":true}",
            ],
            false,
        )
        .await
        .unwrap();
        assert_eq!(answer, (200, "{\"a\":true}".to_string(), true));
    }

    #[tokio::test]
    async fn a_chunked_body_with_extensions_and_trailers_is_joined() {
        let answer = exchange(
            &[
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4;name=x\r\nev",
                b"en\r\n6\r\nt: a\n\n\r\n0\r\nx-trailer: 1\r\n\r\n",
            ],
            false,
        )
        .await
        .unwrap();
        assert_eq!(answer, (200, "event: a\n\n".to_string(), true));
    }

    #[tokio::test]
    async fn informational_responses_are_skipped_and_no_content_has_no_body() {
        let answer = exchange(
            &[b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n"],
            false,
        )
        .await
        .unwrap();
        assert_eq!(answer, (202, String::new(), true));
        let answer = exchange(&[b"HTTP/1.1 204 No Content\r\n\r\n"], false).await.unwrap();
        assert_eq!(answer, (204, String::new(), true));
    }

    #[tokio::test]
    async fn a_body_without_length_is_read_to_the_close_and_the_connection_not_reused() {
        let answer = exchange(&[b"HTTP/1.1 200 OK\r\n\r\nall ", b"of it"], true)
            .await
            .unwrap();
        assert_eq!(answer, (200, "all of it".to_string(), false));
        let answer = exchange(&[b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\nraw"], true)
            .await
            .unwrap();
        assert_eq!(answer, (200, "raw".to_string(), false));
    }

    #[tokio::test]
    async fn connection_close_and_http_1_0_are_not_kept_alive() {
        let answer = exchange(
            &[b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\ncontent-length: 2\r\n\r\nok"],
            false,
        )
        .await
        .unwrap();
        assert_eq!(answer, (200, "ok".to_string(), false));
        let answer = exchange(&[b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok"], false)
            .await
            .unwrap();
        assert_eq!(answer, (200, "ok".to_string(), false));
        // Bytes after the response: the connection is not in a state to reuse.
        let answer = exchange(&[b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokEXTRA"], false)
            .await
            .unwrap();
        assert_eq!(answer, (200, "ok".to_string(), false));
    }

    #[tokio::test]
    async fn malformed_or_cut_responses_are_errors_naming_what_is_wrong() {
        let cases: [(&[&'static [u8]], &str); 8] = [
            (&[b"HTTP/1.1 2x0 OK\r\n\r\n"], "invalid HTTP response"),
            (&[b"garbage\r\n\r\n"], "invalid HTTP response"),
            (
                &[b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nab"],
                "before the end of the response's body",
            ),
            (
                &[b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nab"],
                "disagree",
            ),
            (
                &[b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n"],
                "invalid Content-Length",
            ),
            (
                &[b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n"],
                "invalid chunk size",
            ),
            (
                &[b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabc\r\n"],
                "longer than its size",
            ),
            (
                &[b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab"],
                "closed",
            ),
        ];
        for (pieces, expected) in cases {
            let error = exchange(pieces, true).await.unwrap_err().to_string();
            assert!(error.contains(expected), "{pieces:?}: {error}");
        }
        let error = exchange(&[b"HTTP/1.1 200 OK\r\ncontent-"], true).await.unwrap_err();
        assert!(error.to_string().contains("within the response's head"), "{error}");
        let error = exchange(&[], true).await.unwrap_err();
        assert!(error.to_string().contains("closed before the response"), "{error}");
    }

    #[tokio::test]
    async fn an_endless_head_or_chunk_line_is_refused() {
        let mut long_head = b"HTTP/1.1 200 OK\r\nx-long: ".to_vec();
        long_head.resize(MAX_HEAD + 100, b'a');
        let error = exchange(&[long_head.leak()], false).await.unwrap_err();
        assert!(error.to_string().contains("head is longer than"), "{error}");
        let mut long_line = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1;".to_vec();
        long_line.resize(MAX_LINE + 100, b'a');
        let error = exchange(&[long_line.leak()], false).await.unwrap_err();
        assert!(error.to_string().contains("size line or trailer is longer"), "{error}");
    }

    #[tokio::test]
    async fn the_request_is_written_with_its_headers_and_length() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            stream.read_to_end(&mut seen).await.unwrap();
            String::from_utf8(seen).unwrap()
        });
        let mut conn = Conn::new(TcpStream::connect(address).await.unwrap());
        let mut base = HeaderMap::new();
        base.insert("host", HeaderValue::from_static("example:1"));
        base.insert("mcp-method", HeaderValue::from_static("ping"));
        let mut extra = HeaderMap::new();
        extra.insert("mcp-method", HeaderValue::from_static("tools/call"));
        conn.write_post("/mcp?x=1", &base, &extra, b"{}").await.unwrap();
        drop(conn);
        assert_eq!(
            server.await.unwrap(),
            "POST /mcp?x=1 HTTP/1.1\r\nhost: example:1\r\nmcp-method: tools/call\r\ncontent-length: 2\r\n\r\n{}",
            "the extra headers replace the base's of the same name"
        );
    }
}
