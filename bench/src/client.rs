//! A minimal HTTP/1.1 client over one keep-alive TCP connection: requests are written from bytes
//! prepared by the caller, responses read with `httparse` (`Content-Length` or chunked bodies).
//!
//! It is not a general client. It is as cheap per request as a client can be, so that a load
//! generator on one core can keep a server on another core busy, and measure the server rather
//! than itself.

use std::io::Write as _;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Where requests go: `http://HOST:PORT/PATH`.
#[derive(Debug, Clone)]
pub struct Target {
    /// `HOST:PORT`, connected to and sent as `Host`.
    pub authority: String,
    /// The request path, `/mcp`.
    pub path: String,
}

impl Target {
    /// Reads an `http://` URL (no TLS, no user info, no query).
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .with_context(|| format!("expected an http:// URL, got {url:?}"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            bail!("no host in {url:?}");
        }
        Ok(Self {
            authority: authority.to_owned(),
            path: path.to_owned(),
        })
    }
}

/// One response: the status, the `Mcp-Session-Id` header if any, and the body (valid until the
/// next request on the connection).
#[derive(Debug)]
pub struct Response<'a> {
    /// The HTTP status.
    pub status: u16,
    /// `Mcp-Session-Id`, when the server sent one.
    pub session_id: Option<String>,
    /// The body, de-chunked.
    pub body: &'a [u8],
}

/// One keep-alive connection.
pub struct Connection {
    stream: TcpStream,
    target: Target,
    /// The request being written.
    out: Vec<u8>,
    /// Bytes read and not yet consumed.
    input: Vec<u8>,
    /// The body of the last response.
    body: Vec<u8>,
}

/// How a response's body is delimited.
enum Framing {
    Length(usize),
    Chunked,
}

impl Connection {
    /// Connects to `target` with `TCP_NODELAY`.
    pub async fn open(target: &Target) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(&target.authority)
            .await
            .with_context(|| format!("connecting to {}", target.authority))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            target: target.clone(),
            out: Vec::with_capacity(1024),
            input: Vec::with_capacity(16 * 1024),
            body: Vec::with_capacity(4 * 1024),
        })
    }

    /// Sends one request and reads its response. `headers` are written as given, after `Host`;
    /// `Content-Length` is added when there is a body.
    pub async fn send(&mut self, method: &str, headers: &[(&str, &str)], body: &[u8]) -> anyhow::Result<Response<'_>> {
        self.out.clear();
        write!(
            self.out,
            "{method} {} HTTP/1.1\r\nHost: {}\r\n",
            self.target.path, self.target.authority
        )?;
        for (name, value) in headers {
            write!(self.out, "{name}: {value}\r\n")?;
        }
        if !body.is_empty() || method == "POST" {
            write!(self.out, "Content-Length: {}\r\n", body.len())?;
        }
        self.out.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(body);
        self.stream.write_all(&self.out).await?;
        self.read_response().await
    }

    async fn read_response(&mut self) -> anyhow::Result<Response<'_>> {
        loop {
            if let Some((status, session_id)) = self.take_response()? {
                return Ok(Response {
                    status,
                    session_id,
                    body: &self.body,
                });
            }
            self.input.reserve(16 * 1024);
            if self.stream.read_buf(&mut self.input).await? == 0 {
                bail!("the server closed the connection");
            }
        }
    }

    /// Takes one complete response off the input into `body`; `None` while it is incomplete.
    fn take_response(&mut self) -> anyhow::Result<Option<(u16, Option<String>)>> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        let head = match response.parse(&self.input).context("reading a response head")? {
            httparse::Status::Complete(head) => head,
            httparse::Status::Partial => return Ok(None),
        };
        let status = response.code.unwrap_or_default();
        let mut framing = None;
        let mut session_id = None;
        for header in response.headers.iter() {
            if header.name.eq_ignore_ascii_case("content-length") {
                let text = std::str::from_utf8(header.value).unwrap_or_default();
                framing = Some(Framing::Length(text.trim().parse().context("Content-Length")?));
            } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                if !header.value.eq_ignore_ascii_case(b"chunked") {
                    bail!(
                        "unsupported Transfer-Encoding {:?}",
                        String::from_utf8_lossy(header.value)
                    );
                }
                framing = Some(Framing::Chunked);
            } else if header.name.eq_ignore_ascii_case("mcp-session-id") {
                session_id = Some(String::from_utf8_lossy(header.value).into_owned());
            }
        }
        let framing = match framing {
            Some(framing) => framing,
            None if status == 204 || status == 304 || (100..200).contains(&status) => Framing::Length(0),
            None => bail!("a {status} response without Content-Length or chunked body"),
        };
        let rest = &self.input[head..];
        let used = match framing {
            Framing::Length(length) => {
                if rest.len() < length {
                    return Ok(None);
                }
                self.body.clear();
                self.body.extend_from_slice(&rest[..length]);
                length
            }
            Framing::Chunked => match dechunk(rest, &mut self.body)? {
                Some(used) => used,
                None => return Ok(None),
            },
        };
        self.input.drain(..head + used);
        Ok(Some((status, session_id)))
    }
}

/// Decodes a chunked body at the start of `input` into `body`: the bytes it took, or `None`
/// while it is incomplete.
fn dechunk(input: &[u8], body: &mut Vec<u8>) -> anyhow::Result<Option<usize>> {
    body.clear();
    let mut at = 0;
    loop {
        let Some(line_end) = find(&input[at..], b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&input[at..at + line_end]).context("a chunk size")?;
        let size = usize::from_str_radix(line.split(';').next().unwrap_or_default().trim(), 16)
            .with_context(|| format!("chunk size {line:?}"))?;
        at += line_end + 2;
        if size == 0 {
            // Trailers (none expected), then the empty line.
            loop {
                let Some(end) = find(&input[at..], b"\r\n") else {
                    return Ok(None);
                };
                at += end + 2;
                if end == 0 {
                    return Ok(Some(at));
                }
            }
        }
        if input.len() < at + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&input[at..at + size]);
        at += size + 2;
    }
}

/// Where `needle` first occurs in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_authority_and_path() {
        let t = Target::parse("http://127.0.0.1:3000/mcp").unwrap();
        assert_eq!((t.authority.as_str(), t.path.as_str()), ("127.0.0.1:3000", "/mcp"));
        let t = Target::parse("http://localhost:1").unwrap();
        assert_eq!(t.path, "/");
        assert!(Target::parse("https://x/mcp").is_err());
        assert!(Target::parse("http:///mcp").is_err());
    }

    #[test]
    fn chunked_bodies_are_decoded_or_reported_incomplete() {
        let mut body = Vec::new();
        let input = b"5\r\nhello\r\n6;x=1\r\n world\r\n0\r\n\r\nNEXT";
        assert_eq!(dechunk(input, &mut body).unwrap(), Some(input.len() - 4));
        assert_eq!(body, b"hello world");
        for cut in 0..input.len() - 4 {
            assert_eq!(dechunk(&input[..cut], &mut body).unwrap(), None, "cut at {cut}");
        }
        assert!(dechunk(b"zz\r\n", &mut body).is_err());
    }
}
