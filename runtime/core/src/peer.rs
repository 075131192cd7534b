//! The JSON-RPC peer: one end of a connection, transport-agnostic.
//!
//! A transport calls [`Peer::receive`] with each inbound frame and writes every [`Outbound`]
//! message that arrives on the channel it gave [`Peer::new`] (or that the peer hands to the
//! [`Outlet`] it gave [`Peer::with_outlet`]: a transport that routes messages itself, such as a
//! Streamable HTTP session, needs no channel and no task between the peer and its streams).
//! Each outbound message says which inbound request it belongs to (a response, a progress
//! notification, a server→client request made while handling it), so an HTTP transport can put
//! it on that request's response stream. Inbound requests run on their own tasks (or, handed
//! back by [`Peer::serve_message_with`], on the transport's), at most
//! [`PeerConfig::max_in_flight`] at once: `receive` waits for a free slot, which
//! slows the transport's reading (back-pressure) instead of queueing without bound. Outbound
//! requests ([`PeerHandle::request`]) get increasing integer ids and are matched with their
//! responses; each has a timeout, after which the other side is told with
//! `notifications/cancelled`.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use futures_util::FutureExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::error::{ErrorObject, PeerError};
use crate::extensions::Extensions;
use crate::message::{self, Inbound, Invalid, JsonText, Message, RequestId};
use crate::server::ReadAhead;

/// The method a peer uses to cancel a request it sent.
pub const CANCELLED: &str = "notifications/cancelled";
/// The method of progress notifications.
pub const PROGRESS: &str = "notifications/progress";

/// Limits and behaviour of a [`Peer`].
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// Inbound requests handled at once; further frames wait (default 64).
    pub max_in_flight: usize,
    /// How long an outbound request waits for its response (default 60 s).
    pub request_timeout: Duration,
    /// Whether inbound batches (JSON arrays) are always accepted (default `false`: a batch is
    /// accepted only when [`Service::accepts_batches`] says so, else answered with `-32600`).
    pub batches: bool,
    /// Whether the transport takes the stream-control items [`OutboundKind::CloseStream`] and
    /// [`OutboundKind::Ended`] (default `false`: stream transports such as Streamable HTTP turn
    /// it on; [`PeerHandle::close_stream`] is then honoured, else it does nothing).
    pub stream_control: bool,
    /// Whether a request this side sends reaches the transport with what its sender knew of it
    /// beside its text: its id, method and params ([`Outbound::request`]) and, from the client
    /// core, what a 2026-07-28 request's headers mirror ([`crate::mirror::Mirror`]). Default
    /// `false`: a transport that only writes the text neither holds the params twice nor gets
    /// what it would not read. The HTTP client turns it on: it reads them for the request's
    /// headers and its table of requests in flight.
    pub requests_beside: bool,
}

impl Default for PeerConfig {
    fn default() -> Self {
        Self {
            max_in_flight: 64,
            request_timeout: Duration::from_secs(60),
            batches: false,
            stream_control: false,
            requests_beside: false,
        }
    }
}

/// What serves the requests and notifications a peer receives.
pub trait Service: Send + Sync + 'static {
    /// Handles a request. `params` is the raw JSON the peer sent; decode it into the method's
    /// type and answer `-32602` naming the member when it does not fit. The result is JSON
    /// text ([`JsonText`]: from a `Box<RawValue>` with `.into()`, or [`JsonText::encode`] of a value).
    fn request(
        &self,
        cx: RequestContext,
        method: String,
        params: Option<Box<RawValue>>,
    ) -> impl Future<Output = Result<JsonText, ErrorObject>> + Send;

    /// Handles a notification (cancellation is handled by the peer itself and not passed on).
    /// The default ignores it, as JSON-RPC allows.
    fn notification(
        &self,
        peer: PeerHandle,
        method: String,
        params: Option<Box<RawValue>>,
    ) -> impl Future<Output = ()> + Send {
        let _ = (peer, method, params);
        async {}
    }

    /// Checks values the transport carried beside a request's body, mirrored from it (the
    /// `Mcp-Param-*` headers of Streamable HTTP), before the request is received. An error is
    /// the request's answer (`-32020` for a mismatch). `extensions` are those the request will
    /// be received with (what a service that shows different callers different tools needs to
    /// tell which definition applies). The default accepts everything: a service that mirrors
    /// nothing recognizes no such value, and unrecognized ones are ignored. `read_ahead` is
    /// what the transport read of `params` already, if it did ([`crate::server::ReadAhead`]).
    fn check_mirrored(
        &self,
        method: &str,
        params: Option<&RawValue>,
        read_ahead: Option<&crate::server::ReadAhead>,
        sent: &[crate::mirror::MirroredParam<'_>],
        extensions: &Extensions,
    ) -> Result<(), ErrorObject> {
        let _ = (method, params, read_ahead, sent, extensions);
        Ok(())
    }

    /// Whether a JSON-RPC batch may be received now: when the protocol revision in use allows
    /// them (MCP 2025-03-26 alone). The default says no; [`PeerConfig::batches`] overrides it.
    fn accepts_batches(&self) -> bool {
        false
    }

    /// The transport made this service a session's, with id `id` (Streamable HTTP's
    /// `Mcp-Session-Id`), before its first message. The default ignores it.
    fn session_started(&self, id: &str) {
        let _ = id;
    }

    /// A request named session `id`, which this process does not hold: another process of the
    /// same server started it (a replica behind a load balancer). A service that keeps its
    /// sessions' state in a shared store takes the session on, on the connection `peer`, and
    /// returns the protocol revision it negotiated; `None` (the default) lets the transport
    /// answer that there is no such session.
    fn restore_session(&self, peer: &PeerHandle, id: &str) -> impl Future<Output = Option<String>> + Send {
        let _ = (peer, id);
        async { None }
    }

    /// The client ended the session (Streamable HTTP's `DELETE`). The default ignores it.
    fn session_ended(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// A shared service serves as itself, so one service can back several peers.
impl<T: Service> Service for Arc<T> {
    fn request(
        &self,
        cx: RequestContext,
        method: String,
        params: Option<Box<RawValue>>,
    ) -> impl Future<Output = Result<JsonText, ErrorObject>> + Send {
        T::request(self, cx, method, params)
    }

    fn notification(
        &self,
        peer: PeerHandle,
        method: String,
        params: Option<Box<RawValue>>,
    ) -> impl Future<Output = ()> + Send {
        T::notification(self, peer, method, params)
    }

    fn check_mirrored(
        &self,
        method: &str,
        params: Option<&RawValue>,
        read_ahead: Option<&crate::server::ReadAhead>,
        sent: &[crate::mirror::MirroredParam<'_>],
        extensions: &Extensions,
    ) -> Result<(), ErrorObject> {
        T::check_mirrored(self, method, params, read_ahead, sent, extensions)
    }

    fn accepts_batches(&self) -> bool {
        T::accepts_batches(self)
    }

    fn session_started(&self, id: &str) {
        T::session_started(self, id);
    }

    fn restore_session(&self, peer: &PeerHandle, id: &str) -> impl Future<Output = Option<String>> + Send {
        T::restore_session(self, peer, id)
    }

    fn session_ended(&self) -> impl Future<Output = ()> + Send {
        T::session_ended(self)
    }
}

/// One message for the transport to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    /// The encoded message (for a batch answer, the JSON array).
    pub text: String,
    /// The inbound request this message belongs to: the request it answers, or the one whose
    /// handler sent it (progress, logging, sampling, …). `None` for messages of the connection
    /// as a whole. A batch answer belongs to the batch's first request.
    pub related: Option<RequestId>,
    /// What the transport is to do with it.
    pub kind: OutboundKind,
    /// Set when the message answers [`Outbound::related`] (a response, an error response, or a
    /// batch's array of them): the last message of that request, which a transport can tell
    /// without decoding the text.
    pub answer: Option<Answer>,
    /// What the sender of a request attached for the transport that writes it
    /// ([`PeerHandle::request_raw_with_extensions`]; for the HTTP client, credentials of this
    /// request alone). Never written: it stays in the process. Empty for every other message.
    pub extensions: Extensions,
    /// Set on a request this side sends ([`PeerHandle::request_raw`] and the rest) when
    /// [`PeerConfig::requests_beside`] is on: its id, method and params as the sender had them,
    /// so a transport that needs them (the HTTP client: the request's headers, its table of
    /// requests in flight) does not decode [`Outbound::text`] again. `None` on every other
    /// message.
    pub request: Option<Box<OutboundRequest>>,
}

/// A request as [`Outbound::request`] carries it, beside its encoded text.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    /// Its id.
    pub id: RequestId,
    /// Its method.
    pub method: String,
    /// Its params, as encoded in the text.
    pub params: Option<Box<RawValue>>,
}

impl PartialEq for OutboundRequest {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.method == other.method
            && self.params.as_deref().map(RawValue::get) == other.params.as_deref().map(RawValue::get)
    }
}

impl Eq for OutboundRequest {}

/// What kind of answer an [`Outbound`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A result (or a batch's array of answers).
    Result,
    /// An error response with this code.
    Error(i64),
}

impl Outbound {
    /// A message to write.
    pub fn message(text: String, related: Option<RequestId>) -> Self {
        Self {
            text,
            related,
            kind: OutboundKind::Message,
            answer: None,
            extensions: Extensions::new(),
            request: None,
        }
    }

    /// The answer to the request `related` (`None` for an error about a message without id).
    pub fn answer(text: String, related: Option<RequestId>, answer: Answer) -> Self {
        Self {
            answer: Some(answer),
            ..Self::message(text, related)
        }
    }
}

/// What an [`Outbound`] asks of the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutboundKind {
    /// Write [`Outbound::text`].
    Message,
    /// End the stream now carrying the messages of the related request, before its response
    /// (its `text` is empty). Sent only when [`PeerConfig::stream_control`] is on: Streamable
    /// HTTP ends the request's SSE stream and keeps what follows for the client to resume.
    CloseStream,
    /// The related request ended without an answer: it was cancelled, and a cancelled request
    /// is not answered (its `text` is empty). Sent only when [`PeerConfig::stream_control`] is
    /// on, so a transport holding a response open for the request can end it.
    Ended,
}

/// Where a peer's outbound messages go when the transport delivers them itself
/// ([`Peer::with_outlet`]) instead of reading a channel.
///
/// The peer calls it from the task that produced the message (a request's handler, the
/// transport's task receiving a frame), so an outlet needs no task of its own; the messages one
/// task sends arrive in the order it sent them.
pub trait Outlet: Send + Sync + 'static {
    /// Delivers one message, waiting while its destination is full (back-pressure). Gives the
    /// message back when it cannot be delivered any more (the connection is gone).
    fn send(&self, message: Outbound) -> Pin<Box<dyn Future<Output = Result<(), Outbound>> + Send + '_>>;

    /// Delivers one message without waiting; gives it back when that cannot be done now.
    fn try_send(&self, message: Outbound) -> Result<(), Outbound>;
}

/// Where a peer writes: the channel a transport reads, or an outlet that delivers by itself.
enum Outgoing {
    Channel(mpsc::Sender<Outbound>),
    Outlet(Arc<dyn Outlet>),
}

impl Outgoing {
    async fn send(&self, message: Outbound) -> Result<(), Outbound> {
        match self {
            Self::Channel(tx) => tx.send(message).await.map_err(|e| e.0),
            Self::Outlet(outlet) => outlet.send(message).await,
        }
    }

    fn try_send(&self, message: Outbound) -> Result<(), Outbound> {
        match self {
            Self::Channel(tx) => tx.try_send(message).map_err(|e| match e {
                mpsc::error::TrySendError::Full(m) | mpsc::error::TrySendError::Closed(m) => m,
            }),
            Self::Outlet(outlet) => outlet.try_send(message),
        }
    }
}

/// Where the answer to an outbound request is delivered.
type Waiter = oneshot::Sender<Result<Box<RawValue>, ErrorObject>>;

/// A table by request id, hashed with foldhash (seeded per process): ids are short, and SipHash
/// cost a few hundred instructions per request for each lookup.
pub(crate) type Table<V> = std::collections::HashMap<RequestId, V, foldhash::fast::RandomState>;

/// State shared by a peer and its handles.
struct Shared {
    config: PeerConfig,
    outbound: Outgoing,
    next_id: AtomicI64,
    /// Outbound requests waiting for their response.
    pending: Mutex<Table<Waiter>>,
    /// Inbound requests being handled, by id.
    in_flight: Mutex<Table<CancellationToken>>,
    /// Cancelled when the peer closes: every handler stops.
    closed: CancellationToken,
    /// The handler slots ([`PeerConfig::max_in_flight`]), made on first use: a peer serving
    /// one request alone ([`Peer::serve_alone`]) takes none.
    slots: OnceLock<Arc<Semaphore>>,
}

impl Shared {
    fn slots(&self) -> &Arc<Semaphore> {
        self.slots
            .get_or_init(|| Arc::new(Semaphore::new(self.config.max_in_flight.max(1))))
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Table<Waiter>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, Table<CancellationToken>> {
        self.in_flight.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tells a transport that takes stream control that the request `related` ended without
    /// an answer.
    async fn ended(&self, related: Option<RequestId>) {
        if self.config.stream_control && related.is_some() {
            let ended = Outbound {
                kind: OutboundKind::Ended,
                ..Outbound::message(String::new(), related)
            };
            let _ = self.outbound.send(ended).await;
        }
    }

    /// Queues an answer (see [`Outbound::answer`]).
    async fn send_answer(&self, text: String, related: Option<&RequestId>, answer: Answer) -> Result<(), PeerError> {
        self.outbound
            .send(Outbound::answer(text, related.cloned(), answer))
            .await
            .map_err(|_| PeerError::Closed)
    }

    async fn send(&self, text: String, related: Option<&RequestId>) -> Result<(), PeerError> {
        self.outbound
            .send(Outbound::message(text, related.cloned()))
            .await
            .map_err(|_| PeerError::Closed)
    }

    /// Sends the request `request` (encoded as `text`), with what its sender attached for the
    /// transport.
    async fn send_request(
        &self,
        text: String,
        request: OutboundRequest,
        related: Option<&RequestId>,
        extensions: Extensions,
    ) -> Result<(), PeerError> {
        let message = Outbound {
            extensions,
            request: self.config.requests_beside.then(|| Box::new(request)),
            ..Outbound::message(text, related.cloned())
        };
        self.outbound.send(message).await.map_err(|_| PeerError::Closed)
    }
}

/// A cheap handle for sending requests and notifications to the other side. A handle taken
/// from a [`RequestContext`] marks what it sends as belonging to that request.
#[derive(Clone)]
pub struct PeerHandle {
    shared: Arc<Shared>,
    related: Option<RequestId>,
    /// Set on the handle given with an inbound notification that came on the response stream
    /// of one of our requests (see [`PeerHandle::origin`]).
    origin: Option<RequestId>,
}

impl PeerHandle {
    /// Whether the transport takes what a sender knew of its requests
    /// ([`PeerConfig::requests_beside`]).
    pub(crate) fn requests_beside(&self) -> bool {
        self.shared.config.requests_beside
    }

    /// Asks the transport to end the stream carrying this request's messages now, before the
    /// response (Streamable HTTP's "polling", SEP-1699): the client reconnects with
    /// `Last-Event-ID` and receives what the request sent meanwhile. The request goes on.
    /// Returns whether the transport was asked; `false` on a handle of the connection as a
    /// whole, or when the transport has no such streams ([`PeerConfig::stream_control`]).
    pub async fn close_stream(&self) -> bool {
        let Some(related) = &self.related else {
            return false;
        };
        if !self.shared.config.stream_control {
            return false;
        }
        let close = Outbound {
            kind: OutboundKind::CloseStream,
            ..Outbound::message(String::new(), Some(related.clone()))
        };
        self.shared.outbound.send(close).await.is_ok()
    }

    /// Sends a request and waits for its result, decoded as `R`, within the configured timeout.
    pub async fn request<P: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        method: &str,
        params: &P,
    ) -> Result<R, PeerError> {
        let params = message::to_raw(params).map_err(|source| PeerError::Encode {
            method: method.into(),
            source,
        })?;
        let raw = self.request_raw(method, Some(params), None).await?;
        serde_json::from_str(raw.get()).map_err(|source| PeerError::Decode {
            method: method.into(),
            source,
        })
    }

    /// Sends a request with raw `params` and waits for its raw result; `timeout` overrides the
    /// configured one. Dropping the future cancels the request on the other side.
    pub async fn request_raw(
        &self,
        method: &str,
        params: Option<Box<RawValue>>,
        timeout: Option<Duration>,
    ) -> Result<Box<RawValue>, PeerError> {
        self.request_raw_with_id(method, params, timeout, |_| {}).await
    }

    /// [`PeerHandle::request_raw`], telling `assigned` the request's id before it is sent, for
    /// callers that correlate what the other side tags with it (the notifications of a
    /// `subscriptions/listen` stream carry its id).
    pub async fn request_raw_with_id(
        &self,
        method: &str,
        params: Option<Box<RawValue>>,
        timeout: Option<Duration>,
        assigned: impl FnOnce(&RequestId) + Send,
    ) -> Result<Box<RawValue>, PeerError> {
        self.request_raw_with_extensions(method, params, timeout, Extensions::new(), assigned)
            .await
    }

    /// [`PeerHandle::request_raw_with_id`], with `extensions` for the transport that writes the
    /// request ([`Outbound::extensions`]): values it reads to send this request alone
    /// differently, such as the HTTP client's per-request credentials. They are not written.
    pub async fn request_raw_with_extensions(
        &self,
        method: &str,
        params: Option<Box<RawValue>>,
        timeout: Option<Duration>,
        extensions: Extensions,
        assigned: impl FnOnce(&RequestId) + Send,
    ) -> Result<Box<RawValue>, PeerError> {
        let shared = &self.shared;
        if shared.closed.is_cancelled() {
            return Err(PeerError::Closed);
        }
        let id = RequestId::Number(shared.next_id.fetch_add(1, Ordering::Relaxed));
        assigned(&id);
        let (tx, rx) = oneshot::channel();
        shared.pending().insert(id.clone(), tx);
        let mut guard = Outstanding {
            shared,
            id: Some(id.clone()),
            related: self.related.clone(),
        };
        // Closing cancels `closed`, then drops every waiter (`Peer::close`), which ends the
        // wait below with `Closed`; a waiter entered after that is seen here. (No waiter is
        // registered with `closed` for each request.)
        if shared.closed.is_cancelled() {
            guard.id = None;
            shared.pending().remove(&id);
            return Err(PeerError::Closed);
        }
        let text = message::encode_request(&id, method, params.as_deref());
        let request = OutboundRequest {
            id: id.clone(),
            method: method.to_owned(),
            params,
        };
        shared
            .send_request(text, request, self.related.as_ref(), extensions)
            .await?;
        let after = timeout.unwrap_or(shared.config.request_timeout);
        let answer = tokio::time::timeout(after, rx).await;
        match answer {
            Ok(Ok(Err(error))) if crate::client::is_unreadable(&error) => {
                // Its answer could not be read: the other side may still be working on it.
                guard.id = None;
                send_cancel(
                    shared,
                    &id,
                    self.related.clone(),
                    "its answer could not be read (the message was unreadable)",
                );
                Err(PeerError::Remote(error))
            }
            Ok(Ok(answer)) => {
                guard.id = None;
                answer.map_err(PeerError::Remote)
            }
            Ok(Err(_)) => {
                guard.id = None;
                Err(PeerError::Closed)
            }
            Err(_) => Err(PeerError::Timeout {
                method: method.into(),
                after,
            }),
        }
    }

    /// Sends a notification.
    pub async fn notify<P: Serialize + ?Sized>(&self, method: &str, params: &P) -> Result<(), PeerError> {
        let params = message::to_raw(params).map_err(|source| PeerError::Encode {
            method: method.into(),
            source,
        })?;
        self.shared
            .send(
                message::encode_notification(method, Some(&params)),
                self.related.as_ref(),
            )
            .await
    }

    /// Sends a notification without waiting, for hints a later one supersedes (list changes):
    /// when the outbound queue is full or the connection is gone it is dropped. Whether it was
    /// queued (`false` as well when `params` does not encode).
    pub fn try_notify<P: Serialize + ?Sized>(&self, method: &str, params: &P) -> bool {
        let Ok(params) = message::to_raw(params) else {
            return false;
        };
        let text = message::encode_notification(method, Some(&params));
        self.shared
            .outbound
            .try_send(Outbound::message(text, self.related.clone()))
            .is_ok()
    }

    /// Fails every request of ours waiting for an answer with
    /// [`unreadable_error`](crate::client::unreadable_error)`(detail)` (each is then cancelled on
    /// the other side by its sender); how many there were. See [`Peer::receive_shared`].
    pub fn fail_waiting(&self, detail: &str) -> usize {
        let waiting: Vec<Waiter> = self.shared.pending().drain().map(|(_, waiter)| waiter).collect();
        let failed = waiting.len();
        for waiter in waiting {
            let _ = waiter.send(Err(crate::client::unreadable_error(detail)));
        }
        failed
    }

    /// Fails our request that a broken response names (an envelope that is no valid response,
    /// with a readable id) with [`unreadable_error`](crate::client::unreadable_error): that was
    /// its answer, and no other will come. Whether one was waiting.
    fn fail_broken_response(&self, invalid: &message::Invalid) -> bool {
        if invalid.answer {
            return false;
        }
        let Some(id) = &invalid.id else { return false };
        let Some(waiter) = self.shared.pending().remove(id) else {
            return false;
        };
        let _ = waiter.send(Err(crate::client::unreadable_error(invalid.describe())));
        true
    }

    /// Whether the peer has closed.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.is_cancelled()
    }

    /// Completes when the peer closes (at once if it has).
    pub async fn closed(&self) {
        self.shared.closed.cancelled().await;
    }

    /// The token cancelled when the peer closes, for what should end with the connection (a
    /// transport's streams of it): sharing it costs nothing, where a token of one's own is an
    /// allocation per connection.
    pub fn closing(&self) -> CancellationToken {
        self.shared.closed.clone()
    }

    /// The same connection, with what it sends belonging to no request (for notifications of
    /// the connection as a whole, sent after the request that set them up has been answered).
    pub fn unrelated(&self) -> PeerHandle {
        PeerHandle {
            shared: self.shared.clone(),
            related: None,
            origin: None,
        }
    }

    /// On the handle a [`Service`] gets with an inbound notification: the request of ours on
    /// whose response stream the notification came (Streamable HTTP answers a request with a
    /// stream that also carries the server's messages about it), when the transport knows.
    /// `None` on other handles, and on transports with one shared stream (stdio, WebSocket).
    pub fn origin(&self) -> Option<&RequestId> {
        self.origin.as_ref()
    }
}

/// An outbound request still waiting: dropped before its answer (timeout, or the caller gave
/// up), it leaves the pending table and tells the other side it is cancelled.
struct Outstanding<'a> {
    shared: &'a Shared,
    id: Option<RequestId>,
    related: Option<RequestId>,
}

impl Drop for Outstanding<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take()
            && self.shared.pending().remove(&id).is_some()
        {
            send_cancel(self.shared, &id, self.related.take(), "the caller stopped waiting");
        }
    }
}

/// Tells the other side our request `id` is cancelled (`notifications/cancelled`), best effort:
/// a full queue or a closed connection leaves nothing to tell.
fn send_cancel(shared: &Shared, id: &RequestId, related: Option<RequestId>, reason: &str) {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Cancel<'a> {
        request_id: &'a RequestId,
        reason: &'a str,
    }
    if let Ok(params) = message::to_raw(&Cancel { request_id: id, reason }) {
        let text = message::encode_notification(CANCELLED, Some(&params));
        let _ = shared.outbound.try_send(Outbound::message(text, related));
    }
}

/// The start of a frame, for a log line: at most 120 characters, on one line.
fn snippet(frame: &str) -> String {
    let mut out: String = frame
        .chars()
        .take(120)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if frame.chars().nth(120).is_some() {
        out.push('…');
    }
    out
}

/// What a request handler knows about its request, and how it talks back.
pub struct RequestContext {
    id: RequestId,
    method: String,
    cancel: CancellationToken,
    progress_token: Option<Box<RawValue>>,
    peer: PeerHandle,
    /// The request of ours on whose response stream this request came, when known.
    origin: Option<RequestId>,
    /// What the transport attached to the request.
    extensions: Extensions,
    /// What the transport read of the params already, for the service to take.
    read_ahead: Option<Box<ReadAhead>>,
}

impl RequestContext {
    /// What the transport read of the request's params already
    /// ([`Peer::serve_alone_read_ahead`]), taken: the service reads it once.
    pub(crate) fn take_read_ahead(&mut self) -> Option<Box<ReadAhead>> {
        self.read_ahead.take()
    }

    /// What the transport attached to the request (see [`crate::extensions`]): empty unless the
    /// transport was told to carry something, and for requests that came without a transport
    /// request of their own.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// The request of ours on whose response stream this request came (a server's
    /// `elicitation/create` sent while answering our `tools/call`, over Streamable HTTP), when
    /// the transport knows; see [`PeerHandle::origin`].
    pub fn origin(&self) -> Option<&RequestId> {
        self.origin.as_ref()
    }

    /// The request's id.
    pub fn id(&self) -> &RequestId {
        &self.id
    }

    /// The request's method.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// Whether the other side cancelled the request (or the connection closed).
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Completes when the request is cancelled.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await;
    }

    /// The token cancelled with the request, for handing to sub-tasks.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// The `_meta.progressToken` the request carried, as raw JSON.
    pub fn progress_token(&self) -> Option<&RawValue> {
        self.progress_token.as_deref()
    }

    /// Sends `notifications/progress` for this request, if it asked for progress; otherwise does
    /// nothing.
    pub async fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) -> Result<(), PeerError> {
        let Some(token) = &self.progress_token else {
            return Ok(());
        };
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Progress<'a> {
            progress_token: &'a RawValue,
            progress: f64,
            #[serde(skip_serializing_if = "Option::is_none")]
            total: Option<f64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            message: Option<&'a str>,
        }
        self.peer
            .notify(
                PROGRESS,
                &Progress {
                    progress_token: token,
                    progress,
                    total,
                    message,
                },
            )
            .await
    }

    /// The handle for requests and notifications to the other side (sampling, elicitation, …).
    pub fn peer(&self) -> &PeerHandle {
        &self.peer
    }
}

/// One end of a JSON-RPC connection, serving inbound messages with `S`.
pub struct Peer<S> {
    service: Arc<S>,
    handle: PeerHandle,
}

impl<S> Clone for Peer<S> {
    fn clone(&self) -> Self {
        Self {
            service: self.service.clone(),
            handle: self.handle.clone(),
        }
    }
}

impl<S: Service> Peer<S> {
    /// A peer serving `service`, writing outbound messages to `outbound`.
    pub fn new(service: S, config: PeerConfig, outbound: mpsc::Sender<Outbound>) -> Self {
        Self::with(service, config, Outgoing::Channel(outbound))
    }

    /// A peer serving `service`, handing outbound messages to `outlet` (see [`Outlet`]).
    pub fn with_outlet(service: S, config: PeerConfig, outlet: Arc<dyn Outlet>) -> Self {
        Self::with(service, config, Outgoing::Outlet(outlet))
    }

    fn with(service: S, config: PeerConfig, outbound: Outgoing) -> Self {
        let shared = Arc::new(Shared {
            config,
            outbound,
            next_id: AtomicI64::new(1),
            pending: Mutex::new(Table::default()),
            in_flight: Mutex::new(Table::default()),
            closed: CancellationToken::new(),
            slots: OnceLock::new(),
        });
        Self {
            service: Arc::new(service),
            handle: PeerHandle {
                shared,
                related: None,
                origin: None,
            },
        }
    }

    /// The handle for sending to the other side.
    pub fn handle(&self) -> &PeerHandle {
        &self.handle
    }

    /// The service.
    pub fn service(&self) -> &S {
        &self.service
    }

    /// Completes when no inbound request is being handled (a later frame may start another).
    /// A transport whose input ended waits for this, bounded, before [`Peer::close`], so the
    /// answers to the last requests are not lost.
    pub async fn idle(&self) {
        let all = u32::try_from(self.handle.shared.config.max_in_flight.max(1)).unwrap_or(u32::MAX);
        if let Ok(permits) = self.handle.shared.slots().acquire_many(all).await {
            drop(permits);
        }
    }

    /// Closes the peer: in-flight handlers are cancelled, waiting outbound requests fail with
    /// [`PeerError::Closed`], and later frames are ignored.
    pub fn close(&self) {
        let shared = &self.handle.shared;
        shared.closed.cancel();
        shared.pending().clear();
        for (_, token) in shared.in_flight().drain() {
            token.cancel();
        }
    }

    /// Handles one message a transport decoded already (with [`message::decode`]), as
    /// [`Peer::receive`] would: a transport that had to read the message (to route it, to check
    /// headers against it) does not pay for decoding it twice.
    pub async fn receive_message(&self, message: Message) {
        self.receive_in(message, None).await;
    }

    /// [`Peer::receive_message`], the request (if the message is one) carrying `extensions`
    /// ([`RequestContext::extensions`]).
    pub async fn receive_message_with(&self, message: Message, extensions: Extensions) {
        if let Some(handling) = self.serve_message_with(message, extensions).await {
            tokio::spawn(handling);
        }
    }

    /// [`Peer::receive_message_with`], but a request's handling is handed back rather than
    /// spawned: it runs the handler and sends the answer, and the caller polls or spawns it.
    /// A Streamable HTTP POST polls it once in the connection's task, which spares a task for
    /// a call that answers at once, and spawns it if it waits. Dropping it stops the handler
    /// where it is, with no answer and no [`OutboundKind::Ended`]. `None` for a message that
    /// is no request (dispatched already) and when the peer is closed.
    pub async fn serve_message_with(&self, message: Message, extensions: Extensions) -> Option<Handling> {
        if self.handle.is_closed() {
            return None;
        }
        let Message::Request { id, method, params } = message else {
            // Dispatched now: no handling to hand back.
            let _ = self.dispatch_with(message, None, extensions).await;
            return None;
        };
        // What `dispatch_with` hands back for a request, made in its box (`crate::boxed`): the
        // handling is built once where it runs, not returned up through the dispatching
        // futures and copied at each.
        let shared = self.handle.shared.clone();
        let slot = shared.slots().clone().acquire_owned().await.ok()?;
        let related = Some(id.clone());
        Some(match self.track(&id) {
            Ok(cancel) => crate::boxed(|| {
                let run = self.run(id, method, params, cancel, true, (None, extensions, None));
                answering(shared, related, run, Some(slot))
            }),
            Err(refused) => crate::boxed(|| answering(shared, related, std::future::ready(Some(refused)), Some(slot))),
        })
    }

    /// [`Peer::receive_message`] for a message that came on the response stream of our request
    /// `origin` (Streamable HTTP): the service sees `origin` ([`RequestContext::origin`],
    /// [`PeerHandle::origin`]) and can tell which of its requests the message is about.
    pub async fn receive_in(&self, message: Message, origin: Option<RequestId>) {
        if self.handle.is_closed() {
            return;
        }
        if let Some(task) = self.dispatch_with(message, origin, Extensions::new()).await {
            tokio::spawn(task);
        }
    }

    /// Handles the one message of a peer made for it alone (a 2026-07-28 request over HTTP, which
    /// gets a service and a peer of its own), as [`Peer::receive_message`] would, but lighter:
    /// a request takes no handler slot and no in-flight entry, and its cancellation is the
    /// peer's own ([`Peer::close`] cancels it). Nothing else reaches such a peer, so no later
    /// message can reuse its id or cancel it by id, and no other request competes for a slot.
    pub async fn receive_alone(&self, message: Message) {
        self.receive_alone_with(message, Extensions::new()).await;
    }

    /// [`Peer::receive_alone`], the request carrying `extensions`
    /// ([`RequestContext::extensions`]).
    pub async fn receive_alone_with(&self, message: Message, extensions: Extensions) {
        match message {
            Message::Request { id, method, params } => {
                if let Some(handling) = self.serve_alone(id, method, params, extensions) {
                    tokio::spawn(handling);
                }
            }
            other => self.receive_message_with(other, extensions).await,
        }
    }

    /// The request [`Peer::receive_alone_with`] would spawn, handed back to be polled by the
    /// caller as [`Peer::serve_message_with`] says; `None` when the peer is closed.
    pub fn serve_alone(
        &self,
        id: RequestId,
        method: String,
        params: Option<Box<RawValue>>,
        extensions: Extensions,
    ) -> Option<Handling> {
        self.serve_alone_read_ahead(id, method, params, extensions, None)
    }

    /// [`Peer::serve_alone`], with what the transport read of the params already
    /// ([`ReadAhead`], read from these `params`, in the box they are handed on in), for the
    /// service not to read it again. Read from other params, it is not used.
    pub fn serve_alone_read_ahead(
        &self,
        id: RequestId,
        method: String,
        params: Option<Box<RawValue>>,
        extensions: Extensions,
        read_ahead: Option<Box<ReadAhead>>,
    ) -> Option<Handling> {
        if self.handle.is_closed() {
            return None;
        }
        let cancel = self.handle.shared.closed.clone();
        let carried = (None, extensions, read_ahead);
        let shared = self.handle.shared.clone();
        // Made in its box (`crate::boxed`): the handling is a few hundred bytes.
        Some(crate::boxed(|| {
            let related = Some(id.clone());
            answering(
                shared,
                related,
                self.run(id, method, params, cancel, false, carried),
                None,
            )
        }))
    }

    /// Handles one inbound frame. Returns once the frame is dispatched (requests run on their
    /// own tasks; this waits only for a free handler slot).
    pub async fn receive(&self, frame: &str) {
        self.receive_with(frame, Extensions::new()).await;
    }

    /// [`Peer::receive`], every request of the frame (each of a batch) carrying `extensions`
    /// ([`RequestContext::extensions`]).
    pub async fn receive_with(&self, frame: &str, extensions: Extensions) {
        if self.handle.is_closed() {
            return;
        }
        self.receive_decoded(message::decode(frame), extensions).await;
    }

    /// [`Peer::receive`] for a transport whose one stream carries every message of the
    /// connection (stdio, WebSocket, the legacy HTTP+SSE stream).
    ///
    /// There, a frame that is not a JSON-RPC message and names no request (not JSON; JSON that
    /// is no message and has no readable id) cannot be tied to one of the requests of ours
    /// waiting for an answer, and may have been the answer of any of them: left alone, they
    /// would wait for their timeouts and their callers would never learn why. So every request
    /// of ours waiting then fails at once with
    /// [`unreadable_error`](crate::client::unreadable_error) naming what was wrong, and the other
    /// side is told each is cancelled (`notifications/cancelled`, as for a timeout). The frame
    /// is answered as [`Peer::receive`] answers it (`-32700` or `-32600`, id `null`).
    ///
    /// The connection stays open: the framing (a line, a WebSocket frame, an SSE event) keeps
    /// the next message readable, and later requests are not touched. The price: a request
    /// whose own answer was still to come fails as well (that answer is then ignored), and so
    /// does a long-lived one (a `subscriptions/listen` stream, which its owner sees end). A
    /// broken response that names its request (an unreadable envelope with a readable id) fails
    /// that request alone, on every transport ([`Peer::receive`] does that too).
    pub async fn receive_shared(&self, frame: &str) {
        self.receive_shared_with(frame, Extensions::new()).await;
    }

    /// [`Peer::receive_shared`], every request of the frame carrying `extensions`.
    pub async fn receive_shared_with(&self, frame: &str, extensions: Extensions) {
        if self.handle.is_closed() {
            return;
        }
        match message::decode(frame) {
            Inbound::Single(Err(invalid)) if invalid.unattributed() => {
                let failed = self.handle.fail_waiting(&invalid.describe());
                if failed > 0 {
                    tracing::warn!(
                        requests = failed,
                        problem = %invalid.describe(),
                        frame = %snippet(frame),
                        "an unreadable message came on the connection: the requests waiting on it failed"
                    );
                } else {
                    tracing::debug!(problem = %invalid.describe(), frame = %snippet(frame),
                        "an unreadable message came on the connection, no request waiting");
                }
                self.answer_invalid(invalid).await;
            }
            inbound => self.receive_decoded(inbound, extensions).await,
        }
    }

    /// Handles a decoded frame (see [`Peer::receive_with`]).
    async fn receive_decoded(&self, inbound: Inbound, extensions: Extensions) {
        match inbound {
            Inbound::Single(Ok(message)) => {
                if let Some(task) = self.dispatch_with(message, None, extensions).await {
                    // A single request answers by itself, as soon as it is done.
                    tokio::spawn(async move {
                        task.await;
                    });
                }
            }
            Inbound::Single(Err(invalid)) => {
                self.handle.fail_broken_response(&invalid);
                self.answer_invalid(invalid).await;
            }
            Inbound::Batch(_) if !self.handle.shared.config.batches && !self.service.accepts_batches() => {
                let error = ErrorObject::invalid_request("batches are not part of the negotiated protocol revision");
                let text = message::encode_error(None, &error);
                let _ = self
                    .handle
                    .shared
                    .send_answer(text, None, Answer::Error(error.code))
                    .await;
            }
            Inbound::Batch(elements) => self.receive_batch(elements, extensions).await,
        }
    }

    async fn answer_invalid(&self, invalid: Invalid) {
        if invalid.answer {
            let text = message::encode_error(invalid.id.as_ref(), &invalid.error);
            let answer = Answer::Error(invalid.error.code);
            let _ = self.handle.shared.send_answer(text, invalid.id.as_ref(), answer).await;
        }
    }

    /// Answers a batch with one array holding the responses of its requests, in order.
    async fn receive_batch(&self, elements: Vec<Result<Message, Invalid>>, extensions: Extensions) {
        let (tx, mut rx) = mpsc::channel::<(usize, String)>(elements.len().max(1));
        let mut expected = 0;
        // The batch answer belongs to its first request.
        let related = elements.iter().find_map(|e| match e {
            Ok(Message::Request { id, .. }) => Some(id.clone()),
            _ => None,
        });
        for (index, element) in elements.into_iter().enumerate() {
            match element {
                Err(invalid) if !invalid.answer => {
                    self.handle.fail_broken_response(&invalid);
                }
                Err(invalid) => {
                    expected += 1;
                    let _ = tx
                        .send((index, message::encode_error(invalid.id.as_ref(), &invalid.error)))
                        .await;
                }
                Ok(message) => {
                    if let Some(task) = self.dispatch_collecting(message, None, extensions.clone()).await {
                        expected += 1;
                        let tx = tx.clone();
                        tokio::spawn(async move {
                            let (answer, _slot) = task.await;
                            if let Some((answer, _)) = answer {
                                let _ = tx.send((index, answer)).await;
                            }
                        });
                    }
                }
            }
        }
        drop(tx);
        let shared = self.handle.shared.clone();
        tokio::spawn(async move {
            let mut answers = Vec::with_capacity(expected);
            while let Some(answer) = rx.recv().await {
                answers.push(answer);
            }
            if answers.is_empty() {
                // Every request of the batch was cancelled.
                shared.ended(related).await;
                return;
            }
            answers.sort_by_key(|(i, _)| *i);
            let body: Vec<&str> = answers.iter().map(|(_, a)| a.as_str()).collect();
            let text = format!("[{}]", body.join(","));
            let _ = shared.send_answer(text, related.as_ref(), Answer::Result).await;
        });
    }

    /// Dispatches a message; for a request, returns the task that handles it and sends its
    /// answer. `origin` and `extensions` go to the request's context.
    async fn dispatch_with(
        &self,
        message: Message,
        origin: Option<RequestId>,
        extensions: Extensions,
    ) -> Option<impl Future<Output = ()> + Send + 'static> {
        let related = match &message {
            Message::Request { id, .. } => Some(id.clone()),
            _ => None,
        };
        let task = self.dispatch_collecting(message, origin, extensions).await?;
        let shared = self.handle.shared.clone();
        Some(async move {
            // The handler slot is held until the answer is queued, so `Peer::idle` does not
            // report idle while an answer is still on its way.
            let (answer, _slot) = task.await;
            send_answer(&shared, related, answer).await;
        })
    }

    /// Dispatches a message; for a request, returns the task producing its encoded answer
    /// (`None` when it was cancelled: a cancelled request gets no response) and the handler
    /// slot, which the caller keeps until the answer is queued.
    async fn dispatch_collecting(
        &self,
        message: Message,
        origin: Option<RequestId>,
        extensions: Extensions,
    ) -> Option<impl Future<Output = (Option<(String, Answer)>, OwnedSemaphorePermit)> + Send + 'static> {
        let shared = &self.handle.shared;
        match message {
            Message::Request { id, method, params } => {
                let permit = shared.slots().clone().acquire_owned().await.ok()?;
                let cancel = match self.track(&id) {
                    Ok(cancel) => cancel,
                    Err(refused) => {
                        return Some(futures_util::future::Either::Left(
                            async move { (Some(refused), permit) },
                        ));
                    }
                };
                let run = self.run(id, method, params, cancel, true, (origin, extensions, None));
                Some(futures_util::future::Either::Right(async move { (run.await, permit) }))
            }
            Message::Notification { method, params } => {
                if method == CANCELLED {
                    self.cancel_inbound(params.as_deref());
                } else {
                    let handle = PeerHandle {
                        origin,
                        ..self.handle.clone()
                    };
                    self.service.notification(handle, method, params).await;
                }
                None
            }
            Message::Response { id, result } => {
                if let Some(waiter) = shared.pending().remove(&id) {
                    let _ = waiter.send(Ok(result));
                }
                None
            }
            Message::Error { id: Some(id), error } => {
                if let Some(waiter) = shared.pending().remove(&id) {
                    let _ = waiter.send(Err(error));
                }
                None
            }
            // An error about a message we sent that the other side could not read: nothing to
            // match it with.
            Message::Error { id: None, .. } => None,
        }
    }

    /// Enters the inbound request `id` in the requests in flight; its cancellation, or the
    /// answer refusing it when another request in flight has its id.
    fn track(&self, id: &RequestId) -> Result<CancellationToken, (String, Answer)> {
        let shared = &self.handle.shared;
        let mut in_flight = shared.in_flight();
        if in_flight.contains_key(id) {
            let error = ErrorObject::invalid_request(format!("request id {id} is already in use"));
            return Err((message::encode_error(Some(id), &error), Answer::Error(error.code)));
        }
        let cancel = shared.closed.child_token();
        in_flight.insert(id.clone(), cancel.clone());
        Ok(cancel)
    }

    /// Runs a request's handler until it answers or `cancel` fires; its encoded answer (`None`
    /// when cancelled). A `tracked` request leaves the in-flight table when done. `carried` is
    /// the request's origin and extensions.
    fn run(
        &self,
        id: RequestId,
        method: String,
        params: Option<Box<RawValue>>,
        cancel: CancellationToken,
        tracked: bool,
        carried: (Option<RequestId>, Extensions, Option<Box<ReadAhead>>),
    ) -> impl Future<Output = Option<(String, Answer)>> + Send + 'static {
        let (origin, extensions, read_ahead) = carried;
        let cx = RequestContext {
            progress_token: progress_token(params.as_deref()),
            id: id.clone(),
            method: method.clone(),
            cancel: cancel.clone(),
            peer: PeerHandle {
                shared: self.handle.shared.clone(),
                related: Some(id.clone()),
                origin: None,
            },
            origin,
            extensions,
            read_ahead,
        };
        let service = self.service.clone();
        let shared = self.handle.shared.clone();
        async move {
            // Boxed: a service's future can be kilobytes, and the task holding it is moved a
            // few times as it is spawned; a pointer is cheaper to move. Made in its box, not
            // copied there (`crate::boxed`).
            let run = AssertUnwindSafe(crate::boxed(|| service.request(cx, method, params))).catch_unwind();
            // Cancelled before it starts, it does not start; cancelled once it has waited, it
            // is not polled again. A handler that answers at once registers no waiter with the
            // cancellation (`unless_cancelled`).
            let outcome = crate::unless_cancelled(&cancel, run).await;
            if tracked {
                let mut in_flight = shared.in_flight();
                in_flight.remove(&id);
                // An idle connection (a session between requests) keeps at most the smallest
                // table (room for 3 entries, ~200 bytes), the one a session's requests one after
                // another take in turn: dropping it too made every request allocate and rehash
                // a new one (~0.4k instructions a call, callgrind). A larger one, grown by
                // requests at once, is a few hundred bytes or more, per connection, for nothing.
                if in_flight.is_empty() && in_flight.capacity() > SMALLEST_TABLE {
                    in_flight.shrink_to_fit();
                }
            }
            // A cancelled request gets no response, even if its handler finished first.
            let outcome = outcome.filter(|_| !cancel.is_cancelled());
            outcome.map(|outcome| match outcome {
                Ok(Ok(result)) => (message::encode_result(&id, &result), Answer::Result),
                Ok(Err(error)) => (message::encode_error(Some(&id), &error), Answer::Error(error.code)),
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic".into());
                    let error = ErrorObject::internal(format!("the handler failed: {what}"));
                    (message::encode_error(Some(&id), &error), Answer::Error(error.code))
                }
            })
        }
    }

    /// `notifications/cancelled`: stops the named inbound request, if it is still running.
    fn cancel_inbound(&self, params: Option<&RawValue>) {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Cancelled {
            request_id: RequestId,
        }
        let Some(params) = params else { return };
        if let Ok(Cancelled { request_id }) = serde_json::from_str(params.get())
            && let Some(token) = self.handle.shared.in_flight().get(&request_id)
        {
            token.cancel();
        }
    }
}

/// The capacity of the smallest table a `HashMap` allocates (4 buckets), which an idle
/// connection's table of requests in flight keeps.
const SMALLEST_TABLE: usize = 3;

/// A request's handler and the sending of its answer, for the caller to poll (see
/// [`Peer::serve_message_with`]).
pub type Handling = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Runs `run` (a request's handler, [`Peer::run`]) and sends its answer, holding the request's
/// handler `slot` (if it takes one) until the answer is queued, so that `Peer::idle` does not
/// report idle while an answer is still on its way.
async fn answering(
    shared: Arc<Shared>,
    related: Option<RequestId>,
    run: impl Future<Output = Option<(String, Answer)>>,
    slot: Option<OwnedSemaphorePermit>,
) {
    let answer = run.await;
    send_answer(&shared, related, answer).await;
    drop(slot);
}

/// Sends a request's encoded answer, or, when it was cancelled, marks it ended.
async fn send_answer(shared: &Shared, related: Option<RequestId>, answer: Option<(String, Answer)>) {
    match answer {
        Some((text, answer)) => {
            let _ = shared.send_answer(text, related.as_ref(), answer).await;
        }
        None => shared.ended(related).await,
    }
}

/// `params._meta.progressToken`, if present (looked for only when the text mentions it).
fn progress_token(params: Option<&RawValue>) -> Option<Box<RawValue>> {
    #[derive(serde::Deserialize)]
    struct Params {
        #[serde(rename = "_meta")]
        meta: Option<Meta>,
    }
    #[derive(serde::Deserialize)]
    struct Meta {
        #[serde(rename = "progressToken")]
        progress_token: Option<Box<RawValue>>,
    }
    static PROGRESS_TOKEN: crate::message::Mention = crate::message::Mention::new("progressToken");
    let params = params?;
    if !PROGRESS_TOKEN.is_in(params.get()) {
        return None;
    }
    serde_json::from_str::<Params>(params.get()).ok()?.meta?.progress_token
}
