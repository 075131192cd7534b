//! MCP over WebSocket, client side: [`connect`] opens a socket to an MCP endpoint and gives a
//! [`WsClient`] holding the [`Peer`] that talks over it, one JSON-RPC message per text frame.
//!
//! It is the other end of [`super::ws`], and the same shape as [`crate::stdio::spawn`]:
//! requests go out through [`WsClient::peer`] (`client.peer().handle().request(…)`), and the
//! requests the server sends (sampling, elicitation, roots, ping) are served by the `Service`
//! given to [`connect`]. When the connection ends, however it ends, the peer closes: waiting
//! requests fail with [`portico_core::PeerError::Closed`] instead of hanging, and so do later
//! ones.
//!
//! # Decisions
//!
//! - **The handshake.** A GET to the URL with `Upgrade: websocket`, offering the subprotocol
//!   [`SUBPROTOCOL`] (`mcp`) and only it, plus [`WsClientConfig::headers`] (an
//!   `Authorization`, say). The server must choose `mcp`: a server that answers with another
//!   subprotocol, or with none, does not say it speaks MCP, and the connection is refused with
//!   [`WsConnectError::Subprotocol`] (RFC 6455 makes a subprotocol the client did not offer a
//!   failed handshake; answering none to a client that offered one is allowed by the RFC, but
//!   Portico's server and the other MCP WebSocket servers answer `mcp`, so none is treated as a
//!   server speaking something else). An upgrade refused with an HTTP status is
//!   [`WsConnectError::Refused`], carrying the message of the JSON-RPC error body Portico's
//!   server sends. TCP connect and handshake together take at most
//!   [`WsClientConfig::connect_timeout`].
//! - **`wss://`** with the crate's `tls` feature ([`super::tls`]: rustls, the platform's roots
//!   and [`WsClientConfig::tls`]); without it a `wss://` URL fails at once with
//!   [`WsConnectError::TlsUnsupported`], before any connection is made.
//! - **Framing.** Every message the peer sends is one text frame. Every text frame received is
//!   handed to [`Peer::receive_shared`], which answers text that is no message with a JSON-RPC
//!   error and goes on; such a frame names no request, so the requests waiting for an answer
//!   fail at once ([`portico_core::client::ClientError::Unreadable`], naming what was wrong) and
//!   are cancelled on the server, rather than waiting for their timeouts. A binary frame closes the connection with `1003` (MCP messages are UTF-8
//!   JSON: a server sending binary speaks something else), a text frame that is not UTF-8 with
//!   `1007`, another protocol violation with `1002` — the codes the server end uses.
//! - **Size.** A message longer than [`WsClientConfig::max_message_bytes`] closes the
//!   connection with `1009`; the length is checked from frame headers before the payload is
//!   read, so nothing larger is held. A request whose answer is too large therefore fails with
//!   `Closed`: the stream of frames cannot be resynchronised past a message that was not read.
//!   What the client sends is not limited here; the server's limit applies (it closes with
//!   `1009`, and the peer closes with it).
//! - **Ping and pong.** Pings from the server are answered by the WebSocket layer as long as
//!   the connection is read, which it always is. The client pings every
//!   [`WsClientConfig::ping_interval`], and a server that sent nothing at all, not even the
//!   pong, for a whole interval after a ping is taken as gone (the connection closes with
//!   `1001`): a half-open TCP connection would otherwise leave requests waiting for their
//!   timeout.
//! - **Back-pressure.** What the peer sends goes through a queue of
//!   [`WsClientConfig::outbound_capacity`] messages to the socket; when the server reads
//!   slowly, senders wait. Reading goes on meanwhile, bounded by the peer's handler slots.
//! - **Closing.** The server closing the socket, the connection dropping, a read or write error,
//!   or a frame that ends the connection (above) all close the peer. [`WsClient::shutdown`]
//!   writes what is already queued, sends a close frame with `1000`, closes the peer and waits
//!   up to [`WsClientConfig::close_grace`] for the server's close frame. Dropping the client
//!   closes the peer and drops the socket without a close frame.
//!
//! Not supported: `wss://` (above), per-message compression, WebSocket over HTTP/2, and
//! following redirects on the upgrade (a `3xx` is a refusal).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use portico_core::{ErrorObject, Outbound, OutboundKind, Peer, PeerConfig, Service};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::{ProtocolError, SubProtocolError};
use tokio_tungstenite::tungstenite::http::{HeaderMap, HeaderValue, header};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Bytes, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use super::auth::{Auth, AuthError};
use super::tick;
pub use super::ws::SUBPROTOCOL;
use super::ws::truncate;

/// The reason of the close frame of [`WsClient::shutdown`].
const DONE: &str = "the client is done";

/// The longest refusal body quoted in an error, in characters.
const MAX_QUOTED: usize = 300;

/// How a [`WsClient`] connects and behaves.
#[derive(Debug, Clone)]
pub struct WsClientConfig {
    /// The client's peer (request timeout, handler slots, …).
    pub peer: PeerConfig,
    /// The longest message accepted from the server, in bytes; longer closes the connection
    /// with `1009` (default 4 MiB, the server's default limit).
    pub max_message_bytes: usize,
    /// Messages queued for the socket before the senders wait (default 64).
    pub outbound_capacity: usize,
    /// How long the TCP connection and the handshake may take together (default 10 s).
    pub connect_timeout: Duration,
    /// How often the client pings; a server silent for a whole interval after a ping is taken
    /// as gone (default 30 s; `None`: never ping).
    pub ping_interval: Option<Duration>,
    /// How long [`WsClient::shutdown`] may spend writing what is queued, and then waiting for
    /// the server's close frame (default 1 s each).
    pub close_grace: Duration,
    /// Headers added to the handshake request (credentials, say). `Sec-WebSocket-Protocol`
    /// is always [`SUBPROTOCOL`], whatever is set here. Mark credentials with
    /// `HeaderValue::set_sensitive`, so this config's `Debug` does not print them.
    pub headers: HeaderMap,
    /// Where the handshake's `Authorization` comes from ([`super::auth`]): the provider's
    /// current value, or the one a flow run before connecting gives (default none). The
    /// provider is built for the endpoint's `http://` URL.
    pub auth: Option<Auth>,
    /// Roots trusted for `wss://` besides the platform's ([`super::tls`]).
    pub tls: super::tls::TlsConfig,
}

impl Default for WsClientConfig {
    fn default() -> Self {
        Self {
            peer: PeerConfig::default(),
            max_message_bytes: 4 * 1024 * 1024,
            outbound_capacity: 64,
            connect_timeout: Duration::from_secs(10),
            ping_interval: Some(Duration::from_secs(30)),
            close_grace: Duration::from_secs(1),
            headers: HeaderMap::new(),
            auth: None,
            tls: super::tls::TlsConfig::default(),
        }
    }
}

/// Why [`connect`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WsConnectError {
    /// The URL is not a `ws://` URL with a host.
    #[error("invalid WebSocket URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `wss://` URL, and this build has no TLS ([`super::tls`]).
    #[error("{url}: wss:// needs TLS: {}", super::tls::HOW_TO_GET_TLS)]
    TlsUnsupported {
        /// The URL given.
        url: String,
    },
    /// TLS could not be set up (a bad extra root, the platform's store).
    #[error("TLS: {0}")]
    Tls(#[from] super::tls::TlsError),
    /// The TCP connection and handshake took longer than [`WsClientConfig::connect_timeout`].
    #[error("connecting to {url} took longer than {after:?}")]
    Timeout {
        /// The URL given.
        url: String,
        /// The timeout that ran out.
        after: Duration,
    },
    /// The server answered the upgrade with an HTTP status instead of `101`.
    #[error("the server refused the WebSocket upgrade with HTTP {status}: {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The message of the JSON-RPC error in the body, else the body's start.
        message: String,
    },
    /// The server did not choose the `mcp` subprotocol.
    #[error("the server did not agree to speak `{SUBPROTOCOL}` (Sec-WebSocket-Protocol): it {chose}")]
    Subprotocol {
        /// What the server did instead: "chose another subprotocol", "chose none".
        chose: &'static str,
    },
    /// The connection or the handshake failed.
    #[error("connecting to {url}: {source}")]
    Connect {
        /// The URL given.
        url: String,
        /// What the WebSocket layer said.
        #[source]
        source: tungstenite::Error,
    },
    /// Authorizing before the handshake failed.
    #[error("authorizing: {0}")]
    Auth(#[source] AuthError),
}

impl From<WsConnectError> for io::Error {
    fn from(error: WsConnectError) -> Self {
        let kind = match &error {
            WsConnectError::InvalidUrl { .. } | WsConnectError::TlsUnsupported { .. } | WsConnectError::Tls(_) => {
                io::ErrorKind::InvalidInput
            }
            WsConnectError::Timeout { .. } => io::ErrorKind::TimedOut,
            WsConnectError::Refused { .. } => io::ErrorKind::ConnectionRefused,
            WsConnectError::Subprotocol { .. } => io::ErrorKind::InvalidData,
            WsConnectError::Connect { .. } => io::ErrorKind::Other,
            WsConnectError::Auth(_) => io::ErrorKind::PermissionDenied,
        };
        io::Error::new(kind, error)
    }
}

/// An MCP connection over WebSocket, and the [`Peer`] that talks over it.
///
/// Requests go through [`WsClient::peer`]; requests the server sends are served by the
/// `Service` given to [`connect`]. When the socket closes (either side) or fails, the peer
/// closes. [`WsClient::shutdown`] closes gracefully; dropping the client closes the peer and
/// drops the socket.
pub struct WsClient<S> {
    peer: Peer<S>,
    /// Cancelled to close the connection gracefully.
    stop: CancellationToken,
    /// Cancelled when the connection has ended (the peer is closed by then).
    ended: CancellationToken,
    /// Runs the connection.
    task: JoinHandle<()>,
    /// Closes the peer (`Drop` has no `S: Service` bound to call [`Peer::close`] with).
    close_peer: Box<dyn Fn() + Send + Sync>,
}

/// Connects to the MCP endpoint at `url` (`ws://host:port/mcp`) and serves the requests the
/// server sends with `service`.
///
/// Fails when the URL is not `ws://`, the server cannot be reached or refuses the upgrade, does
/// not choose the `mcp` subprotocol, or all that takes longer than
/// [`WsClientConfig::connect_timeout`].
pub async fn connect<S: Service>(url: &str, service: S, config: WsClientConfig) -> Result<WsClient<S>, WsConnectError> {
    let socket = handshake(url, &config).await?;
    let (tx, rx) = mpsc::channel(config.outbound_capacity.max(1));
    // A socket is one stream for the connection's life: there is no stream of a request to end.
    let peer_config = PeerConfig {
        stream_control: false,
        ..config.peer.clone()
    };
    let peer = Peer::new(service, peer_config, tx);
    let stop = CancellationToken::new();
    let ended = CancellationToken::new();
    let connection = Connection {
        max: config.max_message_bytes.max(1),
        ping: config.ping_interval.filter(|p| !p.is_zero()),
        grace: config.close_grace,
    };
    let task = tokio::spawn(connection.run(socket, peer.clone(), rx, stop.clone(), ended.clone()));
    let close_peer = Box::new({
        let peer = peer.clone();
        move || peer.close()
    });
    Ok(WsClient {
        peer,
        stop,
        ended,
        task,
        close_peer,
    })
}

impl<S: Service> WsClient<S> {
    /// The peer connected to the server: `peer().handle()` sends it requests and notifications.
    pub fn peer(&self) -> &Peer<S> {
        &self.peer
    }

    /// Completes when the connection has ended (the peer is closed by then).
    pub async fn closed(&self) {
        self.ended.cancelled().await;
    }

    /// Closes the connection the way RFC 6455 asks: writes what is queued (at most
    /// [`WsClientConfig::close_grace`]), sends a close frame with `1000`, closes the peer, and
    /// waits up to [`WsClientConfig::close_grace`] for the server's close frame.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        // The task bounds its own waits; it fails only by panicking, and then it is over too.
        let _ = (&mut self.task).await;
    }
}

impl<S> Drop for WsClient<S> {
    fn drop(&mut self) {
        self.task.abort();
        // The task closes the peer when it ends by itself; aborted, it cannot.
        (self.close_peer)();
    }
}

/// Opens the socket: checks the URL, then connects and handshakes within the timeout.
async fn handshake(url: &str, config: &WsClientConfig) -> Result<Socket, WsConnectError> {
    let invalid = |reason: &str| WsConnectError::InvalidUrl {
        url: url.into(),
        reason: reason.into(),
    };
    let mut request = url.into_client_request().map_err(|e| invalid(&e.to_string()))?;
    match request.uri().scheme_str() {
        Some("ws") => {}
        Some("wss") if super::tls::ENABLED => {}
        Some("wss") => return Err(WsConnectError::TlsUnsupported { url: url.into() }),
        _ => return Err(invalid("the scheme must be ws:// or wss://")),
    }
    let connector = super::tls::ws_connector(&config.tls)?;
    let bearer = match &config.auth {
        Some(auth) => auth.initial().await.map_err(WsConnectError::Auth)?,
        None => None,
    };
    let headers = request.headers_mut();
    for (name, value) in &config.headers {
        headers.append(name, value.clone());
    }
    if let Some(mut value) = bearer.and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok()) {
        value.set_sensitive(true);
        headers.insert(header::AUTHORIZATION, value);
    }
    headers.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(SUBPROTOCOL));
    let max = config.max_message_bytes.max(1);
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max));
    // Small request/answer messages: Nagle's algorithm would only delay them.
    #[cfg(feature = "tls")]
    let connecting = tokio_tungstenite::connect_async_tls_with_config(request, Some(ws_config), true, connector);
    #[cfg(not(feature = "tls"))]
    let connecting = {
        let _: Option<tokio_tungstenite::Connector> = connector;
        tokio_tungstenite::connect_async_with_config(request, Some(ws_config), true)
    };
    let (socket, response) = match tokio::time::timeout(config.connect_timeout, connecting).await {
        Err(_) => {
            return Err(WsConnectError::Timeout {
                url: url.into(),
                after: config.connect_timeout,
            });
        }
        Ok(Err(e)) => return Err(connect_error(url, e)),
        Ok(Ok(connected)) => connected,
    };
    // The WebSocket layer checks this too; it is what the connection stands on, so it is
    // checked here as well.
    let chosen = response.headers().get(header::SEC_WEBSOCKET_PROTOCOL);
    if chosen.is_none_or(|p| p.as_bytes() != SUBPROTOCOL.as_bytes()) {
        return Err(WsConnectError::Subprotocol {
            chose: if chosen.is_some() {
                "chose another subprotocol"
            } else {
                "chose none"
            },
        });
    }
    Ok(socket)
}

/// The error a failed connection or handshake is.
fn connect_error(url: &str, error: tungstenite::Error) -> WsConnectError {
    match error {
        tungstenite::Error::Http(response) => {
            let body = response.body().as_deref().unwrap_or_default();
            WsConnectError::Refused {
                status: response.status().as_u16(),
                message: refusal_message(body),
            }
        }
        tungstenite::Error::Protocol(ProtocolError::SecWebSocketSubProtocolError(e)) => WsConnectError::Subprotocol {
            chose: match e {
                SubProtocolError::NoSubProtocol => "chose none",
                _ => "chose another subprotocol",
            },
        },
        tungstenite::Error::Url(tungstenite::error::UrlError::TlsFeatureNotEnabled) => {
            WsConnectError::TlsUnsupported { url: url.into() }
        }
        source => WsConnectError::Connect {
            url: url.into(),
            source,
        },
    }
}

/// What a refusal's body says: the message of its JSON-RPC error, else its start.
pub(crate) fn refusal_message(body: &[u8]) -> String {
    match body_error(body) {
        Some(error) => error.message,
        None => quote(body),
    }
}

/// The JSON-RPC error a body carries: a whole error response (what Portico's servers send) or
/// a bare error object.
pub(crate) fn body_error(body: &[u8]) -> Option<ErrorObject> {
    #[derive(serde::Deserialize)]
    struct Response {
        error: ErrorObject,
    }
    serde_json::from_slice::<Response>(body)
        .map(|r| r.error)
        .or_else(|_| serde_json::from_slice::<ErrorObject>(body))
        .ok()
}

/// The start of a body, as text, for an error message.
pub(crate) fn quote(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(no body)".into();
    }
    match text.char_indices().nth(MAX_QUOTED) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Sink = SplitSink<Socket, Message>;
type Stream = SplitStream<Socket>;

/// One open socket.
struct Connection {
    max: usize,
    ping: Option<Duration>,
    grace: Duration,
}

/// Why a connection ends.
enum End {
    /// The server closed the socket, or the connection dropped: nothing more can be sent.
    Gone(String),
    /// The client closes it, with this code and reason.
    Close(CloseCode, String),
}

impl Connection {
    async fn run<S: Service>(
        self,
        socket: Socket,
        peer: Peer<S>,
        mut rx: mpsc::Receiver<Outbound>,
        stop: CancellationToken,
        ended: CancellationToken,
    ) {
        let (mut sink, mut stream) = socket.split();
        // Set by the reader on every frame, cleared by the writer on every ping.
        let heard = AtomicBool::new(true);
        let end = tokio::select! {
            end = read(&mut stream, &peer, &heard, self.max) => end,
            end = write(&mut sink, &mut rx, self.ping, &heard, &stop) => end,
            // The writer finishes the frame it is sending and what is queued, within the grace.
            () = deadline(&stop, self.grace) => End::Close(CloseCode::Normal, DONE.into()),
        };
        peer.close();
        drop(rx);
        ended.cancel();
        let close = match end {
            End::Gone(why) => {
                tracing::debug!(why, "a WebSocket client connection ended");
                None
            }
            End::Close(code, reason) => {
                tracing::debug!(%code, reason, "a WebSocket client connection is closed by the client");
                Some(CloseFrame {
                    code,
                    reason: truncate(reason).into(),
                })
            }
        };
        // Completes the closing handshake (or sends ours), bounded: a server that stopped
        // reading cannot hold the task.
        let _ = tokio::time::timeout(self.grace, async {
            if let Some(close) = close {
                let _ = sink.send(Message::Close(Some(close))).await;
            }
            let _ = sink.close().await;
            while let Some(Ok(_)) = stream.next().await {}
        })
        .await;
    }
}

/// Hands every text frame to the peer until the socket ends or a frame ends it.
async fn read<S: Service>(stream: &mut Stream, peer: &Peer<S>, heard: &AtomicBool, max: usize) -> End {
    while let Some(next) = stream.next().await {
        heard.store(true, Ordering::Relaxed);
        match next {
            Ok(Message::Text(text)) => peer.receive_shared(text.as_str()).await,
            Ok(Message::Binary(_)) => {
                return End::Close(
                    CloseCode::Unsupported,
                    "binary frames are not MCP messages: send each JSON-RPC message as a text frame".into(),
                );
            }
            Ok(Message::Close(frame)) => {
                // Answered by the WebSocket layer; the stream ends next.
                tracing::debug!(?frame, "the server closed the WebSocket");
            }
            // Pings are answered by the WebSocket layer.
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
            Err(e) => return read_error(e, max),
        }
    }
    End::Gone("the server closed the connection".into())
}

/// The end a read error calls for.
fn read_error(error: tungstenite::Error, max: usize) -> End {
    match error {
        tungstenite::Error::Capacity(_) => End::Close(
            CloseCode::Size,
            format!("a message is longer than the limit of {max} bytes"),
        ),
        tungstenite::Error::Utf8(_) => End::Close(CloseCode::Invalid, "a text frame is not UTF-8".into()),
        tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            End::Gone("the connection was reset without a closing handshake".into())
        }
        tungstenite::Error::Protocol(e) => End::Close(CloseCode::Protocol, e.to_string()),
        other => End::Gone(format!("reading failed: {other}")),
    }
}

/// Sends what the peer queues, and the pings, until the socket fails or the client stops:
/// then what is queued is written (and nothing new taken), and the end is a close with `1000`.
async fn write(
    sink: &mut Sink,
    rx: &mut mpsc::Receiver<Outbound>,
    ping: Option<Duration>,
    heard: &AtomicBool,
    stop: &CancellationToken,
) -> End {
    let mut ticker = ping.map(|period| {
        let mut interval = tokio::time::interval_at(Instant::now() + period, period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        interval
    });
    loop {
        let frame = tokio::select! {
            message = rx.recv() => match message {
                Some(message) if message.kind == OutboundKind::Message => Message::text(message.text),
                // A socket has no streams of requests to end.
                Some(_) => continue,
                // The task holds a peer, so its queue cannot close first.
                None => return End::Gone("the peer's queue closed".into()),
            },
            () = tick(&mut ticker) => {
                if !heard.swap(false, Ordering::Relaxed) {
                    return End::Close(CloseCode::Away, "no pong and no message since the last ping".into());
                }
                Message::Ping(Bytes::from_static(b"portico"))
            }
            () = stop.cancelled() => {
                rx.close();
                return if drain(sink, rx).await {
                    End::Close(CloseCode::Normal, DONE.into())
                } else {
                    End::Gone("the connection failed while writing what was queued".into())
                };
            }
        };
        if let Err(e) = sink.send(frame).await {
            return End::Gone(format!("writing failed: {e}"));
        }
    }
}

/// Writes what is left in a closed queue; `false` when the socket failed.
async fn drain(sink: &mut Sink, rx: &mut mpsc::Receiver<Outbound>) -> bool {
    while let Some(message) = rx.recv().await {
        if message.kind == OutboundKind::Message && sink.send(Message::text(message.text)).await.is_err() {
            return false;
        }
    }
    true
}

/// Completes `grace` after `stop` is cancelled.
async fn deadline(stop: &CancellationToken, grace: Duration) {
    stop.cancelled().await;
    tokio::time::sleep(grace).await;
}

impl<S: Service> portico_core::client::ClientTransport for WsClient<S> {
    fn handle(&self) -> portico_core::PeerHandle {
        self.peer().handle().clone()
    }

    fn close(self: Box<Self>) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send>> {
        Box::pin(async move {
            (*self).shutdown().await;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_quote_the_json_rpc_message_or_the_body() {
        let body = br#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"no WebSocket here"}}"#;
        assert_eq!(refusal_message(body), "no WebSocket here");
        assert_eq!(refusal_message(br#"{"code":-32603,"message":"bare"}"#), "bare");
        assert_eq!(refusal_message(b"  plain text \n"), "plain text");
        assert_eq!(refusal_message(b""), "(no body)");
        let long = "x".repeat(1000);
        assert_eq!(refusal_message(long.as_bytes()).chars().count(), MAX_QUOTED + 1);
    }
}
