//! Answering one HTTP request from the messages its JSON-RPC request produces: one JSON object,
//! or an SSE stream carrying the request's notifications (and, in a session, server→client
//! requests) and ending with its response. A session's GET stream is framed here too.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portico_core::message::{self, Inbound, Message};
use portico_core::{Outbound, error::METHOD_NOT_FOUND};
use tokio::sync::mpsc;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::config::HttpConfig;
use super::error::HttpError;
use super::headers::{Accept, HEADER_MISMATCH};
use super::sse::{self, EventId};

/// `-32021` of 2026-07-28: the request needs a client capability it did not declare.
const MISSING_CLIENT_CAPABILITY: i64 = -32021;

/// The messages of one request (or one GET stream), and what to release when it is answered.
pub(crate) struct Reply {
    /// The messages, in order.
    pub(crate) rx: mpsc::Receiver<Outbound>,
    /// Dropped when the answer is complete or the client went away: unregisters the stream, and
    /// for a stateless request closes its peer (cancelling its handler, as 2026-07-28 asks).
    pub(crate) _guard: Box<dyn Send>,
    /// Cancelled when the session closes or the endpoint shuts down: the stream ends.
    pub(crate) closed: CancellationToken,
    /// The stream's number, the first half of its event ids.
    pub(crate) stream: u64,
    /// Headers for the answer besides the framing (`Mcp-Session-Id`).
    pub(crate) headers: HeaderMap,
    /// The answer when the messages end before the response does.
    pub(crate) gone: HttpError,
    /// A 2026-07-28 request: a JSON error answer gets the HTTP status that revision gives it.
    pub(crate) stateless: bool,
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
}

/// How the client may be answered, decided from `Accept` and the configured mode.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Framing {
    /// Start an SSE stream without waiting for the first message.
    pub(crate) sse_now: bool,
    /// An SSE stream may be used.
    pub(crate) sse: bool,
    /// One JSON object may be used.
    pub(crate) json: bool,
}

impl Framing {
    pub(crate) fn new(accept: Accept, mode: super::ResponseMode, wants_stream: bool) -> Self {
        use super::ResponseMode::{Auto, Json, Sse};
        // A client that takes only one format gets that one, whatever the mode.
        let sse = accept.sse && (mode != Json || !accept.json);
        let json = accept.json && (mode != Sse || !accept.sse);
        let sse_now = sse && (!json || mode == Sse || (mode == Auto && wants_stream));
        Self { sse_now, sse, json }
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

/// Answers with the request's messages: waits as [`Framing`] says, then one JSON object or an
/// SSE stream ending with the response.
pub(crate) async fn respond(mut reply: Reply, framing: Framing, config: &HttpConfig) -> Response {
    if framing.sse_now {
        return stream(reply, None, true, None, config);
    }
    loop {
        let Some(message) = reply.next().await else {
            return gone(reply, config);
        };
        match kind(&message.text) {
            Kind::Final(code) => return finish(reply, message, code, framing, config),
            Kind::Other if framing.sse => return stream(reply, Some(message), true, None, config),
            Kind::Other => tracing::debug!(
                message = %message.text,
                "dropped a message the client cannot receive: it takes one JSON object"
            ),
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
        stream(reply, Some(message), true, None, config)
    }
}

/// The answer when a request's messages ended before its response.
pub(crate) fn gone(reply: Reply, config: &HttpConfig) -> Response {
    if config.shutdown.is_cancelled() {
        return HttpError::unavailable("the server is shutting down").into_response();
    }
    reply.gone.into_response()
}

/// The response as one JSON object.
fn json(reply: Reply, message: Outbound, code: Option<i64>) -> Response {
    // 2026-07-28 gives some errors their own status, so intermediaries and era-detecting
    // clients can tell them apart; sessions answer every JSON-RPC error with 200.
    let status = match code {
        Some(METHOD_NOT_FOUND) if reply.stateless => StatusCode::NOT_FOUND,
        Some(HEADER_MISMATCH | MISSING_CLIENT_CAPABILITY | portico_core::server::UNSUPPORTED_PROTOCOL_VERSION)
            if reply.stateless =>
        {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::OK,
    };
    let mut response = (status, message.text).into_response();
    let headers = response.headers_mut();
    headers.extend(reply.headers);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The state of one SSE stream.
struct Events {
    reply: Reply,
    first: Option<Outbound>,
    preface: Option<Bytes>,
    seq: u64,
    keepalive: Option<Interval>,
    /// A POST's stream ends after the response; a GET stream carries no responses and lasts.
    ends_on_final: bool,
    done: bool,
}

/// An SSE stream starting with `first` (if any) and, when given, a `retry:` hint.
pub(crate) fn stream(
    reply: Reply,
    first: Option<Outbound>,
    ends_on_final: bool,
    preface: Option<Bytes>,
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
    headers.extend(reply.headers.clone());
    let events = Events {
        reply,
        first,
        preface,
        seq: 0,
        keepalive,
        ends_on_final,
        done: false,
    };
    let body = Body::from_stream(futures_util::stream::unfold(events, next_chunk));
    (StatusCode::OK, headers, body).into_response()
}

async fn tick(keepalive: &mut Option<Interval>) {
    match keepalive {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

async fn next_chunk(mut events: Events) -> Option<(Result<Bytes, Infallible>, Events)> {
    if events.done {
        return None;
    }
    if let Some(preface) = events.preface.take() {
        return Some((Ok(preface), events));
    }
    let message = match events.first.take() {
        Some(message) => message,
        None => tokio::select! {
            biased;
            message = events.reply.rx.recv() => message?,
            () = events.reply.closed.cancelled() => return None,
            () = tick(&mut events.keepalive) => return Some((Ok(sse::keepalive()), events)),
        },
    };
    events.seq += 1;
    if events.ends_on_final && matches!(kind(&message.text), Kind::Final(_)) {
        events.done = true;
    }
    let id = EventId {
        stream: events.reply.stream,
        seq: events.seq,
    };
    Some((Ok(sse::event(id, &message.text)), events))
}
