//! MCP over WebSocket, server side: a GET to the MCP endpoint carrying `Upgrade: websocket`
//! becomes a socket on which one [`portico_core::Peer`] exchanges JSON-RPC messages, one per
//! text frame.
//!
//! The socket is reached at the MCP endpoint's own path ([`HttpConfig::path`]), so
//! `ws://host/mcp` and Streamable HTTP at `http://host/mcp` share one listener and one router:
//! [`super::StreamableHttp::router`] serves both, configured by [`HttpConfig::websocket`].
//!
//! # The upgrade
//!
//! Checked in this order, each refusal an HTTP answer with a JSON-RPC error body:
//!
//! 1. `Host` and `Origin` pass the endpoint's allow-lists ([`HttpConfig::allowed_hosts`],
//!    [`HttpConfig::allowed_origins`]), else `403` — a browser page can open a WebSocket to
//!    any address, so this matters here as much as for POSTs;
//! 2. the endpoint is not shutting down (`503`) and has WebSocket switched on (`400`);
//! 3. the request is a well-formed RFC 6455 upgrade (`Connection: upgrade`,
//!    `Sec-WebSocket-Version: 13`, a key), else `400` (or `426`) with what is missing;
//! 4. the subprotocol: a client that offers [`SUBPROTOCOL`] (`mcp`) gets it
//!    (`Sec-WebSocket-Protocol: mcp`); a client that offers none is accepted without one (the
//!    path already says what is spoken, and simple clients send none); a client that offers
//!    only others is refused with `400`, since it expects a protocol this server does not
//!    speak and would fail the handshake anyway;
//! 5. a connection slot ([`WsConfig::max_connections`]), else `503`.
//!
//! # The connection
//!
//! - **Framing.** Each text frame is one JSON-RPC message (a batch is one array), handed to
//!   [`portico_core::Peer::receive`]: text that is not JSON is answered with a `-32700` error
//!   frame, JSON that is no message with `-32600`, and the connection goes on. Every message the
//!   server sends is one text frame.
//! - **Binary frames** close the connection with `1003` (unsupported data), the code RFC 6455
//!   names for an endpoint that accepts only text: MCP messages are UTF-8 JSON, and a peer
//!   sending binary speaks something else. A text frame that is not UTF-8 closes with `1007`,
//!   other protocol violations with `1002`.
//! - **Size.** A message longer than [`WsConfig::max_message_bytes`] (default: the endpoint's
//!   [`HttpConfig::max_body_bytes`]) closes the connection with `1009`. The length is checked
//!   from the frame header, before the payload is read, and for fragmented messages as they
//!   grow, so nothing larger is ever held.
//! - **Ping and pong.** Pings from the client are answered with pongs by the WebSocket layer.
//!   The server pings every [`WsConfig::ping_interval`]; a connection that sent nothing at all,
//!   not even the pong, for a whole interval after a ping is closed (`1001`).
//! - **Back-pressure.** What the peer sends goes through a queue of
//!   [`WsConfig::outbound_capacity`] messages to the socket; when the client reads slowly,
//!   handlers wait. Reading goes on meanwhile, bounded by the peer's handler slots.
//! - **Both eras on one socket.** The connection's service is made by the endpoint's
//!   `make_service`, as for a stdio connection: `initialize` starts a 2024-11-05 … 2025-11-25
//!   session on the socket, and a request whose `_meta` names 2026-07-28 is served statelessly,
//!   on the same socket. Server→client requests (sampling, elicitation, roots) go out as frames;
//!   the client's answers come back as frames.
//! - **Closing.** When the client closes the socket or the connection drops, the peer is
//!   closed: handlers still running are cancelled and the server's own requests fail. When the
//!   endpoint shuts down ([`HttpConfig::shutdown`]), every socket is closed with `1001`.
//!
//! Not supported: per-message compression (`permessage-deflate` is not negotiated) and
//! WebSocket over HTTP/2 (the server speaks HTTP/1.1).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{FromRequestParts, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use portico_core::{Extensions, Outbound};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite;

use super::error::HttpError;
use super::{DynPeer, HttpConfig, State, tick};

/// The WebSocket subprotocol of MCP, negotiated with `Sec-WebSocket-Protocol`.
pub const SUBPROTOCOL: &str = "mcp";

/// How long closing a socket may take: sending the close frame and reading the client's.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The longest reason a close frame can carry (a control frame holds 125 bytes, 2 are the code).
pub(crate) const MAX_REASON: usize = 123;

/// The WebSocket side of an MCP endpoint ([`HttpConfig::websocket`]).
#[derive(Debug, Clone)]
pub struct WsConfig {
    /// The longest message accepted, in bytes; longer closes the connection with `1009`.
    /// `None` (the default): the endpoint's [`HttpConfig::max_body_bytes`].
    pub max_message_bytes: Option<usize>,
    /// WebSocket connections open at once; an upgrade beyond that is `503` (default 10 000).
    pub max_connections: usize,
    /// Messages queued for one socket before the handlers sending them wait (default 64).
    pub outbound_capacity: usize,
    /// How often the server pings; a connection silent for a whole interval after a ping is
    /// closed (default 30 s; `None`: never ping).
    pub ping_interval: Option<Duration>,
    /// Decides on each text message before the server reads it (a gateway's rate limits,
    /// which on Streamable HTTP are HTTP middleware no WebSocket frame passes through);
    /// `None` (the default): every message is read.
    pub admit: Option<WsAdmit>,
}

/// [`WsConfig::admit`]: given a message's text and the connection's [`Extensions`] (what
/// [`HttpConfig::carry`] took from the upgrade request), `None` lets the message in; `Some`
/// refuses it and is sent back in its place (a JSON-RPC error response for a request; nothing
/// is sent for an empty string).
#[derive(Clone)]
pub struct WsAdmit(Arc<AdmitFn>);

type AdmitFn =
    dyn Fn(String, Extensions) -> std::pin::Pin<Box<dyn Future<Output = Option<String>> + Send>> + Send + Sync;

impl WsAdmit {
    /// Wraps the decision.
    pub fn new<F, Fut>(decide: F) -> Self
    where
        F: Fn(String, Extensions) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<String>> + Send + 'static,
    {
        Self(Arc::new(move |text, extensions| Box::pin(decide(text, extensions))))
    }
}

impl std::fmt::Debug for WsAdmit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WsAdmit(..)")
    }
}

impl Default for WsConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: None,
            max_connections: 10_000,
            outbound_capacity: 64,
            ping_interval: Some(Duration::from_secs(30)),
            admit: None,
        }
    }
}

/// The connection slots of an endpoint configured with `config`.
pub(crate) fn slots(config: &HttpConfig) -> Arc<Semaphore> {
    let slots = config.websocket.as_ref().map_or(0, |ws| ws.max_connections);
    Arc::new(Semaphore::new(slots.min(Semaphore::MAX_PERMITS)))
}

/// Whether a request asks to become a WebSocket (`Upgrade: websocket`, any case).
pub(crate) fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.get_all(header::UPGRADE).iter().any(|value| {
        value
            .to_str()
            .is_ok_and(|v| v.split(',').any(|token| token.trim().eq_ignore_ascii_case("websocket")))
    })
}

/// Answers an upgrade request: `101` and a socket served by a new peer, or why not.
pub(crate) async fn upgrade(state: &Arc<State>, request: Request) -> Result<Response, HttpError> {
    let config = &state.config;
    let (mut parts, _) = request.into_parts();
    state.guard.check(&parts)?;
    if config.shutdown.is_cancelled() {
        return Err(HttpError::unavailable("the server is shutting down"));
    }
    let Some(ws) = &config.websocket else {
        return Err(HttpError::client(
            StatusCode::BAD_REQUEST,
            "this endpoint does not serve WebSocket: use POST (Streamable HTTP)",
        ));
    };
    let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &())
        .await
        .map_err(|rejection| {
            HttpError::client(
                rejection.status(),
                format!("not a WebSocket upgrade: {}", rejection.body_text()),
            )
        })?;
    let offered: Vec<String> = upgrade
        .requested_protocols()
        .map(|p| String::from_utf8_lossy(p.as_bytes()).into_owned())
        .collect();
    if !offered.is_empty() && !offered.iter().any(|p| p == SUBPROTOCOL) {
        return Err(HttpError::client(
            StatusCode::BAD_REQUEST,
            format!(
                "Sec-WebSocket-Protocol offers {}; this server speaks `{SUBPROTOCOL}` (offer it, or none)",
                offered.join(", ")
            ),
        ));
    }
    let slot = state.websockets.clone().try_acquire_owned().map_err(|_| {
        HttpError::unavailable(format!(
            "{} WebSocket connections are open, the most this server accepts",
            ws.max_connections
        ))
    })?;
    let max = ws.max_message_bytes.unwrap_or(config.max_body_bytes).max(1);
    let connection = Connection {
        // The upgrade request's values go to every request of the connection.
        extensions: config.carry.copy(&parts.extensions),
        state: state.clone(),
        max,
        outbound_capacity: ws.outbound_capacity.max(1),
        ping: ws.ping_interval.filter(|p| !p.is_zero()),
        admit: ws.admit.clone(),
        slot,
    };
    Ok(upgrade
        .protocols([SUBPROTOCOL])
        .max_message_size(max)
        .max_frame_size(max)
        .on_failed_upgrade(|e| tracing::debug!("a WebSocket upgrade failed: {e}"))
        .on_upgrade(move |socket| connection.run(socket)))
}

/// One socket being served.
struct Connection {
    state: Arc<State>,
    /// What every request of the connection carries ([`HttpConfig::carry`]).
    extensions: Extensions,
    max: usize,
    outbound_capacity: usize,
    ping: Option<Duration>,
    /// [`WsConfig::admit`].
    admit: Option<WsAdmit>,
    /// Held while the socket is open.
    slot: OwnedSemaphorePermit,
}

/// Why a connection ends.
#[derive(Debug)]
enum End {
    /// The client closed the socket, or the connection dropped: nothing more can be sent.
    Gone,
    /// The server closes it, with this code and reason.
    Close(u16, String),
}

type Sink = SplitSink<WebSocket, Message>;
type Stream = SplitStream<WebSocket>;

impl Connection {
    async fn run(self, socket: WebSocket) {
        let (tx, mut rx) = mpsc::channel(self.outbound_capacity);
        // Refusals of `admit` go out on the peer's queue, in order with its answers.
        let refusals = self.admit.clone().map(|admit| (admit, tx.clone()));
        let peer = (self.state.make_peer)(tx);
        let (mut sink, mut stream) = socket.split();
        // Set by the reader on every frame, cleared by the writer on every ping.
        let heard = AtomicBool::new(true);
        let shutdown = self.state.config.shutdown.clone();
        let end = tokio::select! {
            end = read(&mut stream, &*peer, &heard, (self.max, &self.extensions, refusals.as_ref())) => end,
            end = write(&mut sink, &mut rx, self.ping, &heard) => end,
            () = shutdown.cancelled() => End::Close(close_code::AWAY, "the server is shutting down".into()),
        };
        peer.close();
        drop(rx);
        drop(self.slot);
        tracing::debug!(?end, "a WebSocket connection ended");
        let close = match end {
            End::Gone => None,
            End::Close(code, reason) => Some(CloseFrame {
                code,
                reason: truncate(reason).into(),
            }),
        };
        // Completes the closing handshake (or sends ours), bounded: a client that stopped
        // reading cannot hold the task.
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            if let Some(close) = close {
                let _ = sink.send(Message::Close(Some(close))).await;
            }
            let _ = sink.close().await;
            while let Some(Ok(_)) = stream.next().await {}
        })
        .await;
    }
}

/// Hands every text frame to the peer, with `extensions`, until the socket ends or a frame
/// ends it; `max` is the message size limit. With `admit`, a frame it refuses is answered with
/// its refusal (on `tx`) instead.
async fn read(
    stream: &mut Stream,
    peer: &dyn DynPeer,
    heard: &AtomicBool,
    (max, extensions, admit): (usize, &Extensions, Option<&(WsAdmit, mpsc::Sender<Outbound>)>),
) -> End {
    while let Some(next) = stream.next().await {
        heard.store(true, Ordering::Relaxed);
        match next {
            Ok(Message::Text(text)) => {
                if let Some((admit, tx)) = admit
                    && let Some(refusal) = (admit.0)(text.as_str().to_owned(), extensions.clone()).await
                {
                    if !refusal.is_empty() && tx.send(Outbound::message(refusal, None)).await.is_err() {
                        return End::Gone;
                    }
                    continue;
                }
                peer.receive(text.as_str(), extensions.clone()).await;
            }
            Ok(Message::Binary(_)) => {
                return End::Close(
                    close_code::UNSUPPORTED,
                    "binary frames are not MCP messages: send each JSON-RPC message as a text frame".into(),
                );
            }
            // Pings are answered by the WebSocket layer; a close is answered too, and then the
            // stream ends.
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Close(_)) => {}
            Err(e) => return read_error(e, max),
        }
    }
    End::Gone
}

/// The end a read error calls for.
fn read_error(error: axum::Error, max: usize) -> End {
    let error = error.into_inner();
    match error.downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => End::Close(
            close_code::SIZE,
            format!("a message is longer than the limit of {max} bytes"),
        ),
        Some(tungstenite::Error::Utf8(_)) => End::Close(close_code::INVALID, "a text frame is not UTF-8".into()),
        Some(tungstenite::Error::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake)) => {
            End::Gone
        }
        Some(tungstenite::Error::Protocol(e)) => End::Close(close_code::PROTOCOL, e.to_string()),
        _ => {
            tracing::debug!("reading a WebSocket failed: {error}");
            End::Gone
        }
    }
}

/// Sends what the peer queues, and the pings.
async fn write(sink: &mut Sink, rx: &mut mpsc::Receiver<Outbound>, ping: Option<Duration>, heard: &AtomicBool) -> End {
    let mut ticker = ping.map(|period| {
        let mut interval = tokio::time::interval_at(Instant::now() + period, period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        interval
    });
    loop {
        let frame = tokio::select! {
            message = rx.recv() => match message {
                Some(message) => Message::text(message.text),
                // The peer lives as long as the connection; its queue cannot close first.
                None => return End::Gone,
            },
            () = tick(&mut ticker) => {
                if !heard.swap(false, Ordering::Relaxed) {
                    return End::Close(close_code::AWAY, "no pong and no message since the last ping".into());
                }
                Message::Ping(Bytes::from_static(b"portico"))
            }
        };
        if sink.send(frame).await.is_err() {
            return End::Gone;
        }
    }
}

/// `reason`, cut at a character boundary to fit a close frame.
pub(crate) fn truncate(mut reason: String) -> String {
    if reason.len() > MAX_REASON {
        let mut end = MAX_REASON;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn upgrade_is_recognized_by_its_token() {
        let mut headers = HeaderMap::new();
        assert!(!is_upgrade(&headers));
        headers.insert(header::UPGRADE, HeaderValue::from_static("WebSocket"));
        assert!(is_upgrade(&headers));
        headers.insert(header::UPGRADE, HeaderValue::from_static("h2c, websocket"));
        assert!(is_upgrade(&headers));
        headers.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        assert!(!is_upgrade(&headers));
    }

    #[test]
    fn reasons_fit_a_close_frame() {
        assert_eq!(truncate("short".into()), "short");
        let long = "é".repeat(100);
        let cut = truncate(long);
        assert!(cut.len() <= MAX_REASON && cut.chars().all(|c| c == 'é'), "{cut}");
    }
}
