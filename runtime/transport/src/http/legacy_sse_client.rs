//! The legacy HTTP+SSE transport of revision 2024-11-05, client side: [`connect`] opens the
//! server's event stream, learns from its `endpoint` event where to POST, and gives a
//! [`LegacySseClient`] holding the [`Peer`] that talks over the two.
//!
//! It is the other end of [`super::legacy_sse`], and the same shape as
//! [`crate::stdio::spawn`]: requests go out through [`LegacySseClient::peer`], and the requests
//! the server sends (sampling, elicitation, roots, ping) are served by the `Service` given to
//! [`connect`]. When the stream ends, however it ends, the peer closes: waiting requests fail
//! with [`portico_core::PeerError::Closed`] instead of hanging, and so do later ones.
//!
//! # Decisions
//!
//! - **Opening.** `GET` the SSE URL with `Accept: text/event-stream` and
//!   [`LegacySseClientConfig::headers`]. Anything but a `2xx` with `Content-Type:
//!   text/event-stream` is refused ([`LegacySseConnectError::Refused`] carries the message of the
//!   JSON-RPC error body Portico's server sends). The first event must be `endpoint` (the
//!   transport says the server MUST send it first): a `message` before it, or the stream ending,
//!   is [`LegacySseConnectError::NoEndpoint`]. The GET's answer and that event together take
//!   at most [`LegacySseClientConfig::connect_timeout`]. Redirects are not followed (a `3xx`
//!   is a refusal): where the stream lives is where the endpoint is resolved against.
//! - **The endpoint, same origin only.** Its data is a URL reference resolved against the SSE
//!   URL (`/messages?sessionId=…`, or absolute). It must have the SSE URL's origin (scheme, host
//!   and port); otherwise the connection is refused with [`LegacySseConnectError::CrossOrigin`].
//!   This is security, not pedantry: every message — and the configured headers, credentials
//!   included — goes to that URL, so a server (or whoever can inject an event into its stream)
//!   naming another origin would have the client send its traffic and its credentials there.
//!   A later `endpoint` event is ignored: the endpoint is fixed for the connection.
//! - **Inbound.** Every `message` event's data is handed to [`Peer::receive_shared`] (which
//!   answers what is not a message and, since one stream carries every answer, fails the
//!   requests waiting at once with [`portico_core::client::ClientError::Unreadable`] instead of
//!   leaving them to their timeouts); events of other names and comments (keep-alives) are
//!   skipped. An
//!   event whose data is longer than [`LegacySseClientConfig::max_message_bytes`] ends the
//!   connection: a request whose answer is too large fails with `Closed`. With
//!   [`LegacySseClientConfig::read_timeout`], a stream silent that long (no event, no
//!   keep-alive comment) ends the connection too.
//! - **Outbound.** Each message the peer sends is POSTed to the endpoint as
//!   `application/json`, one at a time and in order (from a queue of
//!   [`LegacySseClientConfig::outbound_capacity`]: when the server is slow to accept, senders
//!   wait). Order matters — a `notifications/cancelled` must not overtake the request it
//!   cancels — and Portico's server answers a POST once the message is handed to its peer, so
//!   sequential POSTs are what gives back-pressure. Each POST takes at most
//!   [`LegacySseClientConfig::post_timeout`]. Any `2xx` is success (the transport's server
//!   answers `202`; some answer `200` or `204`).
//! - **A refused POST fails its request; a lost session closes the connection.** A POST answered
//!   `404` means the server no longer knows the session (its stream closed): nothing more can be
//!   delivered, so the peer closes and every waiting request fails with `Closed`. Any other
//!   failure concerns that one message: when it is a request, the client feeds its peer an
//!   error answer for that request's id, so the caller's request fails at once with
//!   [`portico_core::PeerError::Remote`] instead of waiting for its timeout. The error's code
//!   is the code of the JSON-RPC error in the server's body, else `-32600` for a `4xx` and
//!   `-32603` otherwise (a `5xx`, a `3xx`, no answer at all, a timeout); its message says what
//!   happened; its `data` marks it as the transport's, with the status when there was one
//!   ([`portico_core::client::transport_error`]; [`http_status`] reads it). A refused notification or response has nobody waiting for it: it is logged and
//!   dropped (the server's own request then times out on its side).
//! - **`https://`** with the crate's `tls` feature ([`super::tls`]; extra roots in
//!   [`LegacySseClientConfig::tls`]); without it an `https://` URL fails at once with
//!   [`LegacySseConnectError::TlsUnsupported`].
//! - **Closing.** [`LegacySseClient::shutdown`] POSTs what is already queued (at most
//!   [`LegacySseClientConfig::shutdown_grace`]), closes the peer and drops the stream, which is
//!   how the transport ends a session. Dropping the client closes the peer and drops the stream
//!   at once.

mod events;

use std::time::Duration;

use axum::body::Bytes;
use portico_core::client::{TRANSPORT_ERROR_KEY, transport_error};
use portico_core::error::{INTERNAL_ERROR, INVALID_REQUEST};
use portico_core::message::{self, Inbound, Message};
use portico_core::{ErrorObject, Outbound, OutboundKind, Peer, PeerConfig, Service};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use self::events::Events;
use super::auth::{self, Auth, SendError};
use super::ws_client::{body_error, quote, refusal_message};

/// The most of a refusal's body that is read.
const MAX_REFUSAL_BYTES: usize = 64 * 1024;

/// How a [`LegacySseClient`] connects and behaves.
#[derive(Debug, Clone)]
pub struct LegacySseClientConfig {
    /// The client's peer (request timeout, handler slots, …).
    pub peer: PeerConfig,
    /// The longest event data (one message) accepted from the server, in bytes; longer ends the
    /// connection (default 4 MiB).
    pub max_message_bytes: usize,
    /// Messages queued for POSTing before the senders wait (default 64).
    pub outbound_capacity: usize,
    /// How long the GET's answer and the `endpoint` event may take together (default 10 s).
    pub connect_timeout: Duration,
    /// How long one POST may take (default 30 s).
    pub post_timeout: Duration,
    /// How long the stream may stay silent (no event, no keep-alive comment) before the
    /// connection is taken as gone (default `None`: as long as it stays open; Portico's server
    /// sends a comment every 15 s).
    pub read_timeout: Option<Duration>,
    /// How long [`LegacySseClient::shutdown`] may spend POSTing what is queued (default 1 s).
    pub shutdown_grace: Duration,
    /// Headers sent with the GET and every POST (credentials, say). They go to the SSE URL's
    /// origin only: an endpoint elsewhere is refused. Mark credentials with
    /// `HeaderValue::set_sensitive`, so this config's `Debug` does not print them.
    pub headers: HeaderMap,
    /// Where the GET's and every POST's `Authorization` comes from ([`super::auth`]; default
    /// none): a flow runs before the GET when the provider holds no token yet, and a POST
    /// refused with `401` is sent again once after the provider renewed it.
    pub auth: Option<Auth>,
    /// Roots trusted for `https://` besides the platform's ([`super::tls`]).
    pub tls: super::tls::TlsConfig,
}

impl Default for LegacySseClientConfig {
    fn default() -> Self {
        Self {
            peer: PeerConfig::default(),
            max_message_bytes: 4 * 1024 * 1024,
            outbound_capacity: 64,
            connect_timeout: Duration::from_secs(10),
            post_timeout: Duration::from_secs(30),
            read_timeout: None,
            shutdown_grace: Duration::from_secs(1),
            headers: HeaderMap::new(),
            auth: None,
            tls: super::tls::TlsConfig::default(),
        }
    }
}

/// Why [`connect`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LegacySseConnectError {
    /// The URL is not an `http://` URL with a host.
    #[error("invalid SSE URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An `https://` URL, and this build has no TLS ([`super::tls`]).
    #[error("{url}: https:// needs TLS: {}", super::tls::HOW_TO_GET_TLS)]
    TlsUnsupported {
        /// The URL given.
        url: String,
    },
    /// TLS could not be set up (a bad extra root, the platform's store).
    #[error("TLS: {0}")]
    Tls(#[from] super::tls::TlsError),
    /// The GET's answer and the `endpoint` event took longer than
    /// [`LegacySseClientConfig::connect_timeout`].
    #[error("opening the event stream at {url} took longer than {after:?}")]
    Timeout {
        /// The URL given.
        url: String,
        /// The timeout that ran out.
        after: Duration,
    },
    /// The GET was answered with another status than `2xx`.
    #[error("the server refused the event stream with HTTP {status}: {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The message of the JSON-RPC error in the body, else the body's start.
        message: String,
    },
    /// The GET was answered with something other than an event stream.
    #[error("the server answered with Content-Type {content_type:?}, not text/event-stream")]
    NotEventStream {
        /// The `Content-Type` it answered with.
        content_type: String,
    },
    /// No usable `endpoint` event came first.
    #[error("no endpoint event: {reason}")]
    NoEndpoint {
        /// What came instead.
        reason: String,
    },
    /// The `endpoint` event names a URL of another origin than the SSE URL.
    #[error("the endpoint event names {endpoint}, which is not of the SSE URL's origin {origin}: refused")]
    CrossOrigin {
        /// The endpoint, resolved.
        endpoint: String,
        /// The SSE URL's origin.
        origin: String,
    },
    /// The GET failed.
    #[error("GET {url}: {source}")]
    Http {
        /// The URL given.
        url: String,
        /// What the HTTP client said.
        #[source]
        source: reqwest::Error,
    },
    /// Authorizing failed.
    #[error("authorizing: {0}")]
    Auth(#[source] SendError),
}

impl From<LegacySseConnectError> for std::io::Error {
    fn from(error: LegacySseConnectError) -> Self {
        use std::io::ErrorKind;
        let kind = match &error {
            LegacySseConnectError::InvalidUrl { .. }
            | LegacySseConnectError::TlsUnsupported { .. }
            | LegacySseConnectError::Tls(_) => ErrorKind::InvalidInput,
            LegacySseConnectError::Timeout { .. } => ErrorKind::TimedOut,
            LegacySseConnectError::Refused { .. } => ErrorKind::ConnectionRefused,
            LegacySseConnectError::CrossOrigin { .. } => ErrorKind::PermissionDenied,
            LegacySseConnectError::NotEventStream { .. } | LegacySseConnectError::NoEndpoint { .. } => {
                ErrorKind::InvalidData
            }
            LegacySseConnectError::Http { .. } => ErrorKind::Other,
            LegacySseConnectError::Auth(_) => ErrorKind::PermissionDenied,
        };
        std::io::Error::new(kind, error)
    }
}

/// The HTTP status of a refused POST, from the error a request failed with (see the module
/// docs); `None` for other errors.
pub fn http_status(error: &ErrorObject) -> Option<u16> {
    let status = error.data.as_ref()?.get(TRANSPORT_ERROR_KEY)?.get("status")?.as_u64()?;
    u16::try_from(status).ok()
}

/// A legacy HTTP+SSE connection, and the [`Peer`] that talks over it.
///
/// Requests go through [`LegacySseClient::peer`]; requests the server sends are served by the
/// `Service` given to [`connect`]. When the stream ends or fails, or the server no longer knows
/// the session, the peer closes. [`LegacySseClient::shutdown`] closes gracefully; dropping the
/// client closes the peer and the stream.
pub struct LegacySseClient<S> {
    peer: Peer<S>,
    endpoint: Url,
    /// Cancelled to close the connection gracefully.
    stop: CancellationToken,
    /// Cancelled when the connection has ended (the peer is closed by then).
    ended: CancellationToken,
    /// Reads the stream and POSTs the messages.
    task: JoinHandle<()>,
    /// Closes the peer (`Drop` has no `S: Service` bound to call [`Peer::close`] with).
    close_peer: Box<dyn Fn() + Send + Sync>,
}

/// Opens the event stream at `url` (`http://host:port/sse`), waits for its `endpoint` event,
/// and serves the requests the server sends with `service`.
///
/// Fails when the URL is not `http://`, the server cannot be reached or refuses the stream,
/// sends no `endpoint` event first, names an endpoint of another origin, or all that takes
/// longer than [`LegacySseClientConfig::connect_timeout`].
pub async fn connect<S: Service>(
    url: &str,
    service: S,
    config: LegacySseClientConfig,
) -> Result<LegacySseClient<S>, LegacySseConnectError> {
    let sse_url = parse_url(url)?;
    let http = super::tls::reqwest_builder(&config.tls)?
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(config.connect_timeout)
        .build()
        .map_err(|source| LegacySseConnectError::Http {
            url: url.into(),
            source,
        })?;
    if let Some(auth) = &config.auth {
        // Outside the connect timeout: a flow may wait for a human.
        auth.initial()
            .await
            .map_err(|e| LegacySseConnectError::Auth(SendError::Auth(e)))?;
    }
    let opening = open(&http, url, &sse_url, &config);
    let (events, endpoint) = tokio::time::timeout(config.connect_timeout, opening)
        .await
        .map_err(|_| LegacySseConnectError::Timeout {
            url: url.into(),
            after: config.connect_timeout,
        })??;

    let (tx, rx) = mpsc::channel(config.outbound_capacity.max(1));
    // The stream is the connection: there is no stream of a request to end.
    let peer_config = PeerConfig {
        stream_control: false,
        ..config.peer.clone()
    };
    let peer = Peer::new(service, peer_config, tx);
    let stop = CancellationToken::new();
    let ended = CancellationToken::new();
    let poster = Poster {
        http,
        endpoint: endpoint.clone(),
        headers: config.headers.clone(),
        timeout: config.post_timeout,
        auth: config.auth.clone(),
    };
    let task = tokio::spawn(run(
        events,
        poster,
        peer.clone(),
        rx,
        stop.clone(),
        ended.clone(),
        config.shutdown_grace,
    ));
    let close_peer = Box::new({
        let peer = peer.clone();
        move || peer.close()
    });
    Ok(LegacySseClient {
        peer,
        endpoint,
        stop,
        ended,
        task,
        close_peer,
    })
}

impl<S: Service> LegacySseClient<S> {
    /// The peer connected to the server: `peer().handle()` sends it requests and notifications.
    pub fn peer(&self) -> &Peer<S> {
        &self.peer
    }

    /// Where messages are POSTed: the `endpoint` event's URL, resolved.
    pub fn endpoint(&self) -> &str {
        self.endpoint.as_str()
    }

    /// Completes when the connection has ended (the peer is closed by then).
    pub async fn closed(&self) {
        self.ended.cancelled().await;
    }

    /// Ends the session: POSTs what is queued (at most
    /// [`LegacySseClientConfig::shutdown_grace`]), closes the peer and drops the stream.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        // The task bounds its own waits; it fails only by panicking, and then it is over too.
        let _ = (&mut self.task).await;
    }
}

impl<S> Drop for LegacySseClient<S> {
    fn drop(&mut self) {
        // Aborting the task drops the stream, which ends the session on the server.
        self.task.abort();
        (self.close_peer)();
    }
}

/// The SSE URL, if it is one this client can open.
fn parse_url(url: &str) -> Result<Url, LegacySseConnectError> {
    let invalid = |reason: String| LegacySseConnectError::InvalidUrl {
        url: url.into(),
        reason,
    };
    let parsed = Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    match parsed.scheme() {
        "http" => {}
        "https" if super::tls::ENABLED => {}
        "https" => return Err(LegacySseConnectError::TlsUnsupported { url: url.into() }),
        other => {
            return Err(invalid(format!(
                "the scheme must be http:// or https://, not {other}://"
            )));
        }
    }
    if parsed.host().is_none() {
        return Err(invalid("no host".into()));
    }
    Ok(parsed)
}

/// GETs the stream and reads up to its `endpoint` event: the stream, and the endpoint resolved.
async fn open(
    http: &reqwest::Client,
    url: &str,
    sse_url: &Url,
    config: &LegacySseClientConfig,
) -> Result<(Events, Url), LegacySseConnectError> {
    let get = http
        .get(sse_url.clone())
        .headers(config.headers.clone())
        .header(header::ACCEPT, HeaderValue::from_static("text/event-stream"))
        .header(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let response = auth::send(config.auth.as_ref(), get).await.map_err(|e| match e {
        SendError::Http(source) => LegacySseConnectError::Http {
            url: url.into(),
            source,
        },
        other => LegacySseConnectError::Auth(other),
    })?;
    let status = response.status();
    if !status.is_success() {
        let body = read_bounded(response, MAX_REFUSAL_BYTES).await;
        return Err(LegacySseConnectError::Refused {
            status: status.as_u16(),
            message: refusal_message(&body),
        });
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("text/event-stream") {
        return Err(LegacySseConnectError::NotEventStream { content_type });
    }
    let mut events = Events::new(response, config.max_message_bytes.max(1), config.read_timeout);
    let no_endpoint = |reason: String| LegacySseConnectError::NoEndpoint { reason };
    loop {
        match events.next().await {
            Ok(Some(event)) if event.name == "endpoint" => {
                let endpoint = resolve(sse_url, &event.data)?;
                return Ok((events, endpoint));
            }
            Ok(Some(event)) if event.name == "message" => {
                return Err(no_endpoint("a message event came before the endpoint event".into()));
            }
            // An event of a name the transport does not define: not the endpoint, not a message.
            Ok(Some(_)) => {}
            Ok(None) => return Err(no_endpoint("the stream ended before the endpoint event".into())),
            Err(e) => return Err(no_endpoint(e.to_string())),
        }
    }
}

/// The endpoint event's URL resolved against the SSE URL; refused unless of the same origin.
fn resolve(sse_url: &Url, data: &str) -> Result<Url, LegacySseConnectError> {
    let endpoint = sse_url
        .join(data.trim())
        .map_err(|e| LegacySseConnectError::NoEndpoint {
            reason: format!("the endpoint event's URL {data:?} is invalid: {e}"),
        })?;
    if endpoint.origin() != sse_url.origin() {
        return Err(LegacySseConnectError::CrossOrigin {
            endpoint: endpoint.to_string(),
            origin: sse_url.origin().ascii_serialization(),
        });
    }
    Ok(endpoint)
}

/// Reads at most `limit` bytes of a response's body (what comes after is not read).
async fn read_bounded(mut response: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk[..chunk.len().min(limit - body.len())]),
            Ok(None) | Err(_) => break,
        }
    }
    body
}

/// Runs the connection: reads the stream and POSTs the messages, until either ends it or the
/// client shuts down.
async fn run<S: Service>(
    mut events: Events,
    poster: Poster,
    peer: Peer<S>,
    mut rx: mpsc::Receiver<Outbound>,
    stop: CancellationToken,
    ended: CancellationToken,
    grace: Duration,
) {
    let why = tokio::select! {
        why = read(&mut events, &peer) => why,
        why = write(&poster, &mut rx, &peer, &stop) => why,
        // The writer finishes the POST it is making and what is queued, within the grace.
        () = async {
            stop.cancelled().await;
            tokio::time::sleep(grace).await;
        } => "the client shut down (what was queued could not all be POSTed in time)".to_string(),
    };
    peer.close();
    ended.cancel();
    // Dropping the stream ends the session on the server.
    drop(events);
    tracing::debug!(why, "a legacy HTTP+SSE client connection ended");
}

/// Hands every `message` event to the peer until the stream ends; says why it ended.
async fn read<S: Service>(events: &mut Events, peer: &Peer<S>) -> String {
    loop {
        match events.next().await {
            Ok(Some(event)) if event.name == "message" => {
                if !event.data.trim().is_empty() {
                    peer.receive_shared(&event.data).await;
                }
            }
            Ok(Some(event)) => tracing::debug!(name = event.name, "an event that is not a message was skipped"),
            Ok(None) => return "the server ended the event stream".into(),
            Err(e) => return e.to_string(),
        }
    }
}

/// POSTs what the peer queues, one message at a time, until the server no longer knows the
/// session or the client stops (then what is queued is POSTed, and nothing new taken); says
/// why it ended. A POST under way is never dropped for `stop`.
async fn write<S: Service>(
    poster: &Poster,
    rx: &mut mpsc::Receiver<Outbound>,
    peer: &Peer<S>,
    stop: &CancellationToken,
) -> String {
    loop {
        let message = tokio::select! {
            message = rx.recv() => message,
            () = stop.cancelled() => {
                rx.close();
                rx.recv().await
            }
        };
        // The task holds a peer, so its queue closes only when the client stops.
        let Some(message) = message else {
            return "the client shut down".into();
        };
        if message.kind != OutboundKind::Message {
            continue;
        }
        if let Err(gone) = poster.post(message.text, peer).await {
            return gone;
        }
    }
}

/// POSTs messages to the endpoint.
struct Poster {
    http: reqwest::Client,
    endpoint: Url,
    headers: HeaderMap,
    timeout: Duration,
    auth: Option<Auth>,
}

impl Poster {
    /// POSTs one message. A refusal fails the request it is (see the module docs); `Err` when
    /// the server no longer knows the session, which ends the connection.
    async fn post<S: Service>(&self, text: String, peer: &Peer<S>) -> Result<(), String> {
        let body = Bytes::from(text);
        let post = self
            .http
            .post(self.endpoint.clone())
            .headers(self.headers.clone())
            .header(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .timeout(self.timeout)
            .body(body.clone());
        let sent = auth::send(self.auth.as_ref(), post).await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                let what = if matches!(&e, SendError::Http(e) if e.is_timeout()) {
                    format!("POST {} got no answer within {:?}", self.endpoint, self.timeout)
                } else {
                    format!("POST {} failed: {e}", self.endpoint)
                };
                fail(peer, &body, ErrorObject::new(INTERNAL_ERROR, what)).await;
                return Ok(());
            }
        };
        let status = response.status();
        // Read (bounded) so the connection can serve the next POST.
        let answer = read_bounded(response, MAX_REFUSAL_BYTES).await;
        if status.is_success() {
            return Ok(());
        }
        if status == StatusCode::NOT_FOUND {
            return Err(format!(
                "the server no longer knows the session (POST {} answered 404: {})",
                self.endpoint,
                refusal_message(&answer)
            ));
        }
        fail(peer, &body, post_error(status, &answer)).await;
        Ok(())
    }
}

impl<S: Service> portico_core::client::ClientTransport for LegacySseClient<S> {
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

/// The error a request fails with when its POST was answered `status` with `body`: marked as
/// the transport's ([`portico_core::client::transport_error`]), so a [`portico_core::client::Client`]
/// reports it as a transport failure carrying the status.
fn post_error(status: StatusCode, body: &[u8]) -> ErrorObject {
    let (code, detail) = match body_error(body) {
        Some(error) => (error.code, error.message),
        None if status.is_client_error() => (INVALID_REQUEST, quote(body)),
        None => (INTERNAL_ERROR, quote(body)),
    };
    let marked = transport_error(String::new(), Some(status.as_u16()), false);
    ErrorObject::new(
        code,
        format!("the server refused the message with HTTP {status}: {detail}"),
    )
    .with_data(marked.data.unwrap_or_default())
}

/// Fails the request `sent` is, if it is one, with `error`: its answer, as if the server sent it.
async fn fail<S: Service>(peer: &Peer<S>, sent: &[u8], error: ErrorObject) {
    let id = match std::str::from_utf8(sent).map(message::decode) {
        Ok(Inbound::Single(Ok(Message::Request { id, .. }))) => id,
        _ => {
            tracing::warn!(%error, "a message the server did not take was not a request: nobody waits for it");
            return;
        }
    };
    peer.receive(&message::encode_error(Some(&id), &error)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sse() -> Url {
        Url::parse("http://127.0.0.1:8080/sse").expect("a URL")
    }

    #[test]
    fn endpoints_resolve_against_the_sse_url() {
        let resolved = resolve(&sse(), "/messages?sessionId=ab\n").expect("same origin");
        assert_eq!(resolved.as_str(), "http://127.0.0.1:8080/messages?sessionId=ab");
        let resolved = resolve(&sse(), "messages?sessionId=ab").expect("same origin");
        assert_eq!(resolved.as_str(), "http://127.0.0.1:8080/messages?sessionId=ab");
        let resolved = resolve(&sse(), "http://127.0.0.1:8080/legacy/messages").expect("same origin");
        assert_eq!(resolved.path(), "/legacy/messages");
    }

    #[test]
    fn endpoints_of_another_origin_are_refused() {
        for other in [
            "http://evil.example/messages",
            "//127.0.0.1:8081/messages",
            "https://127.0.0.1:8080/messages",
            "http://localhost:8080/messages",
            "data:text/plain,hello",
        ] {
            assert!(
                matches!(resolve(&sse(), other), Err(LegacySseConnectError::CrossOrigin { .. })),
                "{other}"
            );
        }
    }

    #[test]
    fn urls_must_be_http_or_https_with_tls() {
        assert!(parse_url("http://127.0.0.1:1/sse").is_ok());
        let https = parse_url("https://example.com/sse");
        if super::super::tls::ENABLED {
            assert!(https.is_ok(), "{https:?}");
        } else {
            assert!(matches!(https, Err(LegacySseConnectError::TlsUnsupported { .. })));
        }
        assert!(matches!(
            parse_url("ws://example.com/sse"),
            Err(LegacySseConnectError::InvalidUrl { .. })
        ));
        assert!(matches!(
            parse_url("not a url"),
            Err(LegacySseConnectError::InvalidUrl { .. })
        ));
    }

    #[test]
    fn refused_posts_become_errors_carrying_the_status() {
        let body = br#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"too large"}}"#;
        let error = post_error(StatusCode::PAYLOAD_TOO_LARGE, body);
        assert_eq!(error.code, -32600);
        assert!(
            error.message.contains("413") && error.message.contains("too large"),
            "{}",
            error.message
        );
        assert_eq!(http_status(&error), Some(413));
        assert_eq!(
            post_error(StatusCode::BAD_GATEWAY, b"upstream down").code,
            INTERNAL_ERROR
        );
        assert_eq!(post_error(StatusCode::FORBIDDEN, b"").code, INVALID_REQUEST);
        assert_eq!(http_status(&ErrorObject::internal("x")), None);
    }
}
