//! Answering one HTTP request from the messages its JSON-RPC request produces: one JSON object,
//! or an SSE stream carrying the request's notifications (and, in a session, server→client
//! requests) and ending with its response. A session's GET stream is framed here too.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::OptionFuture;
use portico_core::message::{self, Inbound, Message};
use portico_core::server::{MISSING_REQUIRED_CLIENT_CAPABILITY, UNSUPPORTED_PROTOCOL_VERSION};
use portico_core::{Answer, Outbound, OutboundKind, error::METHOD_NOT_FOUND};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::config::HttpConfig;
use super::error::{Gone, HttpError};
use super::headers::{Accept, HEADER_MISMATCH};
use super::queue;
use super::session::{self, Log};
use super::sse::{self, EventId};
use super::tick;

/// The messages of one request (or one GET stream), and what to release when it is answered.
pub(crate) struct Reply {
    /// The messages, in order.
    pub(crate) rx: queue::Receiver,
    /// Dropped when the answer is complete or the client went away: detaches the stream, and
    /// for a stateless request closes its peer (cancelling its handler, as 2026-07-28 asks).
    pub(crate) _guard: Box<dyn Send>,
    /// Cancelled when the session closes or the endpoint shuts down: the stream ends.
    pub(crate) closed: CancellationToken,
    /// The stream's number, the first half of its event ids.
    pub(crate) stream: u64,
    /// The stream's log, in a session: events are numbered and kept by it, so a client can
    /// resume the stream. Stateless streams number their own events and keep none.
    pub(crate) log: Option<Log>,
    /// Logged events to send before the live ones (a resumed stream).
    pub(crate) replay: VecDeque<(u64, Arc<str>)>,
    /// Headers for the answer besides the framing (`Mcp-Session-Id`).
    pub(crate) headers: HeaderMap,
    /// The answer when the messages end before the response does.
    pub(crate) gone: Gone,
}

impl Reply {
    /// A 2026-07-28 request (the only kind without a session, so without a log): a JSON error
    /// answer gets the HTTP status that revision gives it.
    fn stateless(&self) -> bool {
        self.log.is_none()
    }
}

impl Reply {
    /// The next message; `None` when they ended or the stream was closed.
    pub(crate) async fn next(&mut self) -> Option<Outbound> {
        tokio::select! {
            biased;
            message = self.rx.recv() => message,
            () = self.closed.cancelled() => None,
        }
    }

    /// Numbers an event written now.
    fn number(&mut self, seq: &mut u64, text: &str, last: bool) -> u64 {
        match &self.log {
            Some(log) => session::lock(log).record(text, true, last),
            None => {
                *seq += 1;
                *seq
            }
        }
    }
}

impl Drop for Reply {
    /// Messages queued for this response and not written are logged for a client resuming the
    /// stream. The queue is closed under the log's lock, so the router, whose send then
    /// fails, logs what it was sending after them, in order.
    fn drop(&mut self) {
        let Some(log) = &self.log else { return };
        let mut log = session::lock(log);
        self.rx.close();
        while let Some(message) = self.rx.try_recv() {
            if message.kind == OutboundKind::Message {
                let last = message.related.is_some() && message.answer.is_some();
                log.record(&message.text, false, last);
            }
        }
    }
}

/// How the client may be answered, decided from `Accept` and the configured mode.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Framing {
    /// Start an SSE stream without waiting for the first message.
    pub(crate) sse_now: bool,
    /// Start an SSE stream once this has passed without a message (`None`: wait for it).
    pub(crate) sse_after: Option<Duration>,
    /// An SSE stream may be used.
    pub(crate) sse: bool,
    /// One JSON object may be used.
    pub(crate) json: bool,
    /// An SSE stream starts with a priming event (an id, no data) and a `retry:` hint, so the
    /// client can resume it from the start (session clients of 2025-11-25 and later).
    pub(crate) prime: bool,
}

impl Framing {
    pub(crate) fn new(accept: Accept, mode: super::ResponseMode, wants_stream: bool) -> Self {
        use super::ResponseMode::{Auto, Json, Sse};
        // A client that takes only one format gets that one, whatever the mode.
        let sse = accept.sse && (mode != Json || !accept.json);
        let json = accept.json && (mode != Sse || !accept.sse);
        let sse_now = sse && (!json || mode == Sse || (mode == Auto && wants_stream));
        Self {
            sse_now,
            sse_after: None,
            sse,
            json,
            prime: false,
        }
    }

    /// The same, for a call that may take long ([`HttpConfig::stream_methods`]): where the mode
    /// and `Accept` leave the choice of framing to the server, an SSE stream starts once
    /// `after` has passed without a message (at once when it is zero).
    pub(crate) fn stream_after(self, after: Duration) -> Self {
        if self.sse_now || !self.sse || !self.json {
            return self;
        }
        if after.is_zero() {
            return Self { sse_now: true, ..self };
        }
        Self {
            sse_after: Some(after),
            ..self
        }
    }

    /// The same, priming SSE streams when `prime`.
    pub(crate) fn primed(self, prime: bool) -> Self {
        Self { prime, ..self }
    }
}

/// What an outbound message is to the request it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The response (with the error code, for an error): the last message of the request.
    Final(Option<i64>),
    /// A notification or a server→client request made while handling it.
    Other,
}

pub(crate) fn kind(text: &str) -> Kind {
    match message::decode(text) {
        Inbound::Single(Ok(Message::Response { .. })) | Inbound::Batch(_) => Kind::Final(None),
        Inbound::Single(Ok(Message::Error { error, .. })) => Kind::Final(Some(error.code)),
        Inbound::Single(_) => Kind::Other,
    }
}

/// Whether a message a request sent is its response, the last of its stream.
pub(crate) fn is_final(text: &str) -> bool {
    matches!(kind(text), Kind::Final(_))
}

/// The kind of an outbound item, from what the peer marked on it (no decoding): `None` for
/// stream control (ending a stream, a cancelled request), which is no message.
pub(crate) fn kind_of(message: &Outbound) -> Option<Kind> {
    if message.kind != OutboundKind::Message {
        return None;
    }
    Some(match message.answer {
        Some(Answer::Result) => Kind::Final(None),
        Some(Answer::Error(code)) => Kind::Final(Some(code)),
        None => Kind::Other,
    })
}

/// Answers with the request's messages: waits as [`Framing`] says, then one JSON object or an
/// SSE stream ending with the response.
pub(crate) async fn respond(mut reply: Reply, framing: Framing, config: &HttpConfig) -> Response {
    if framing.sse_now {
        return stream(reply, None, true, Preface::of(framing), config);
    }
    let deadline = OptionFuture::from(framing.sse_after.map(tokio::time::sleep));
    let mut deadline = std::pin::pin!(deadline);
    loop {
        let next = tokio::select! {
            biased;
            message = reply.next() => message,
            // Still running: the (primed) stream starts now, empty.
            Some(()) = &mut deadline => return stream(reply, None, true, Preface::of(framing), config),
        };
        let Some(message) = next else {
            return gone(reply, config);
        };
        if message.kind == OutboundKind::Ended {
            return ended(reply);
        }
        match kind_of(&message) {
            Some(Kind::Final(code)) => return finish(reply, message, code, framing, config),
            // Other messages, and a request to end the stream early (which needs a stream).
            _ if framing.sse => return stream(reply, Some(message), true, Preface::of(framing), config),
            Some(Kind::Other) => tracing::debug!(
                message = %message.text,
                "dropped a message the client cannot receive: it takes one JSON object"
            ),
            None => {}
        }
    }
}

/// Answers with the response alone: one JSON object when allowed, else a one-event stream.
pub(crate) fn finish(
    reply: Reply,
    message: Outbound,
    code: Option<i64>,
    framing: Framing,
    config: &HttpConfig,
) -> Response {
    if framing.json {
        json(reply, message, code)
    } else {
        stream(reply, Some(message), true, Preface::of(framing), config)
    }
}

/// The answer when a request's messages ended before its response.
pub(crate) fn gone(reply: Reply, config: &HttpConfig) -> Response {
    if config.shutdown.is_cancelled() {
        return HttpError::unavailable("the server is shutting down").into_response();
    }
    reply.gone.error().into_response()
}

/// The answer to a request that was cancelled, which gets no JSON-RPC response: `202` with no
/// body, as for a message that needs no answer.
fn ended(reply: Reply) -> Response {
    if let Some(log) = &reply.log {
        session::lock(log).end();
    }
    StatusCode::ACCEPTED.into_response()
}

/// The response as one JSON object.
fn json(mut reply: Reply, mut message: Outbound, code: Option<i64>) -> Response {
    // 2026-07-28 gives some errors their own status, so intermediaries and era-detecting
    // clients can tell them apart; sessions answer every JSON-RPC error with 200.
    let status = match code {
        Some(METHOD_NOT_FOUND) if reply.stateless() => StatusCode::NOT_FOUND,
        Some(HEADER_MISMATCH | MISSING_REQUIRED_CLIENT_CAPABILITY | UNSUPPORTED_PROTOCOL_VERSION)
            if reply.stateless() =>
        {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::OK,
    };
    if let Some(log) = &reply.log {
        // Answered whole: nothing is left to resume.
        session::lock(log).finish();
    }
    // Built directly, with the reply's headers as its map (usually empty): no `text/plain`
    // inserted first and then replaced.
    let mut response = Response::new(Body::from(std::mem::take(&mut message.text)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    *headers = std::mem::take(&mut reply.headers);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The state of one SSE stream.
struct Events {
    reply: Reply,
    first: Option<Outbound>,
    preface: Option<Bytes>,
    /// The last event number, for streams without a log.
    seq: u64,
    keepalive: Option<Interval>,
    /// A POST's stream ends after the response; a GET stream carries no responses and lasts.
    ends_on_final: bool,
    /// It started with a priming event (or a `retry:` hint: a resumed stream).
    primed: bool,
    /// An event with an id was written.
    sent: bool,
    done: bool,
}

/// What an SSE stream starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Preface {
    /// Nothing.
    None,
    /// The `retry:` hint.
    Retry,
    /// A priming event (the id to resume from, no data) with the `retry:` hint.
    Prime,
}

impl Preface {
    fn of(framing: Framing) -> Self {
        if framing.prime { Self::Prime } else { Self::None }
    }
}

/// An SSE stream starting with its preface, the reply's replayed events and `first` (if any).
pub(crate) fn stream(
    mut reply: Reply,
    first: Option<Outbound>,
    ends_on_final: bool,
    preface: Preface,
    config: &HttpConfig,
) -> Response {
    let keepalive = config.sse_keepalive.filter(|p| !p.is_zero()).map(|period| {
        let mut interval = tokio::time::interval_at(Instant::now() + period, period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        interval
    });
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells nginx and friends not to hold events back.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    headers.extend(std::mem::take(&mut reply.headers));
    let retry = config.sse_retry.as_millis();
    let preface = match preface {
        Preface::None => None,
        Preface::Retry => Some(sse::retry(retry)),
        Preface::Prime => {
            let seq = reply.log.as_ref().map_or(0, |log| session::lock(log).last_delivered());
            let id = EventId {
                stream: reply.stream,
                seq,
            };
            Some(sse::priming(id, retry))
        }
    };
    let events = Events {
        reply,
        first,
        primed: preface.is_some(),
        sent: false,
        preface,
        seq: 0,
        keepalive,
        ends_on_final,
        done: false,
    };
    let body = Body::from_stream(futures_util::stream::unfold(events, next_chunk));
    (StatusCode::OK, headers, body).into_response()
}

async fn next_chunk(mut events: Events) -> Option<(Result<Bytes, Infallible>, Events)> {
    if events.done {
        return None;
    }
    if let Some(preface) = events.preface.take() {
        return Some((Ok(preface), events));
    }
    if let Some((seq, text)) = events.reply.replay.pop_front() {
        if let Some(log) = &events.reply.log {
            session::lock(log).delivered(seq);
        }
        if events.ends_on_final && is_final(&text) {
            events.done = true;
        }
        let id = EventId {
            stream: events.reply.stream,
            seq,
        };
        events.sent = true;
        return Some((Ok(sse::event(id, &text)), events));
    }
    let (message, kind) = loop {
        let message = match events.first.take() {
            Some(message) => message,
            None => tokio::select! {
                biased;
                message = events.reply.rx.recv() => message?,
                () = events.reply.closed.cancelled() => return None,
                () = tick(&mut events.keepalive) => return Some((Ok(sse::keepalive()), events)),
            },
        };
        if let Some(kind) = kind_of(&message) {
            break (message, kind);
        }
        match message.kind {
            // The request was cancelled (it gets no response): its stream is over.
            OutboundKind::Ended => {
                if let Some(log) = &events.reply.log {
                    session::lock(log).end();
                }
                return None;
            }
            // The handler asked to end the stream before its response: the client resumes it
            // from the last event id it saw. A stream that gave none (not primed, nothing sent
            // yet) could not be resumed, so it stays open.
            _ if events.reply.log.is_some() && (events.primed || events.sent) => return None,
            _ => {}
        }
    };
    events.sent = true;
    let last = matches!(kind, Kind::Final(_));
    if events.ends_on_final && last {
        events.done = true;
    }
    let mut seq = events.seq;
    let number = events
        .reply
        .number(&mut seq, &message.text, last && message.related.is_some());
    events.seq = seq;
    let id = EventId {
        stream: events.reply.stream,
        seq: number,
    };
    Some((Ok(sse::event(id, &message.text)), events))
}
