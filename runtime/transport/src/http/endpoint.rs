//! The MCP endpoint's methods: POST (one JSON-RPC message), GET (a session's stream of its own
//! messages) and DELETE (end a session), with the checks each request passes first.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Waker};

use axum::body::{Body, Bytes, HttpBody as _};
use axum::extract::{Request, State as Extract};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt as _;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use portico_core::message::{self, Inbound, Message};
use portico_core::mirror::MirroredParam;
use portico_core::server::ReadAhead;
use portico_core::{ErrorObject, Extensions, Handling, OutboundKind, RequestId};
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use super::error::{Gone, HttpError};
use super::headers::{self, Accept, LAST_EVENT_ID, MCP_SESSION_ID, McpHeaders, Peek};
use super::queue;
use super::reply::{self, Framing, Kind, Preface, Reply};
use super::session::{Attached, Registry, Session};
use super::sse::EventId;
use super::{DynPeer, State};

type Shared = Extract<Arc<State>>;

/// POST: a request is answered on this HTTP response; a notification or response is `202`.
///
/// The handling's own future, not one awaiting it: each `async fn` that awaits another copies
/// the awaited future, kilobytes here, into its own state when it first runs
/// ([`portico_core::boxed`] says what that costs).
pub(crate) fn post(Extract(state): Shared, request: Request) -> impl Future<Output = Response> + Send + 'static {
    handle_post(state, request).map(|handled| handled.unwrap_or_else(IntoResponse::into_response))
}

/// GET: opens the server→client stream of a session.
pub(crate) async fn get(Extract(state): Shared, request: Request) -> Response {
    handle_get(&state, request)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// DELETE: ends a session.
pub(crate) async fn delete(Extract(state): Shared, request: Request) -> Response {
    handle_delete(&state, request)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// Any other method.
pub(crate) async fn other_method() -> Response {
    HttpError::method_not_allowed("GET, POST, DELETE", "the MCP endpoint takes POST, GET and DELETE").into_response()
}

async fn handle_post(state: Arc<State>, request: Request) -> Result<Response, HttpError> {
    let state = &state;
    let config = &state.config;
    let (parts, body) = request.into_parts();
    state.guard.check(&parts)?;
    refuse_after_shutdown(state)?;
    headers::check_content_type(&parts.headers)?;
    // What the layers in front learned about the caller, for the handlers (see `Carry`).
    let extensions = config.carry.copy(&parts.extensions);
    let accept = Accept::of(&parts.headers);
    if !accept.json && !accept.sse {
        return Err(HttpError::client(
            StatusCode::NOT_ACCEPTABLE,
            "a POST is answered with application/json or text/event-stream, and `Accept` allows neither",
        ));
    }
    let mcp = McpHeaders::of(&parts.headers);
    let session_id = mcp.session_id()?;
    let body = read_body(body, &parts.headers, config.max_body_bytes).await?;
    let text = std::str::from_utf8(&body).map_err(|e| {
        HttpError::new(
            StatusCode::BAD_REQUEST,
            ErrorObject::parse_error(format!("the body is not UTF-8: {e}")),
        )
    })?;
    let message = match message::decode(text) {
        Inbound::Single(Ok(message)) => message,
        Inbound::Single(Err(invalid)) => {
            return Err(HttpError::new(StatusCode::BAD_REQUEST, invalid.error).with_id(invalid.id));
        }
        Inbound::Batch(_) => {
            let framing = Framing::new(accept, config.response_mode, false);
            return batch(state, &parts.headers, session_id, text, framing, extensions).await;
        }
    };
    // The headers are checked once the body is read, so an error about a request carries its id.
    let Message::Request { id, method, params } = &message else {
        let header_version = headers::protocol_version(&parts.headers, &config.protocol_versions)?;
        return not_a_request(state, &message, header_version, session_id, text, extensions).await;
    };
    let (id, method) = (id.clone(), method.as_str());
    let about = |e: HttpError| e.with_id(Some(id.clone()));
    let header_version = mcp.protocol_version().map_err(about)?;
    // A 2026-07-28 request's params are read once here, for the service too; others (and
    // those that do not read whole) are peeked at. A request in a session is read ahead only
    // when its `MCP-Protocol-Version` says 2026-07-28: should the params of another name a
    // version after all, they are peeked at, and served as 2026-07-28 all the same.
    let session_bound = session_id.is_some() && !header_version.is_some_and(headers::is_stateless);
    // Boxed: it is handed on to the service in a box.
    let read_ahead = params
        .as_deref()
        .filter(|_| !session_bound)
        .and_then(ReadAhead::of)
        .map(Box::new);
    let peek = match (&read_ahead, params.as_deref()) {
        (Some(read), Some(params)) => Peek::read_ahead(read, params),
        _ => Peek::of(params.as_deref()),
    };
    let framing = Framing::new(
        accept,
        config.response_mode,
        peek.progress || method == "subscriptions/listen",
    );
    let framing = if peek.version.is_none() && config.stream_methods.iter().any(|m| m == method) {
        framing.stream_after(config.stream_after)
    } else {
        framing
    };

    // 2026-07-28: the version is in the request's `_meta`; no session, whatever the headers say.
    // A header that disagrees with the body is reported before a version that is not supported.
    if let Some(version) = &peek.version {
        headers::check_mirrored(&mcp, config.require_request_headers, method, &peek).map_err(about)?;
        headers::check_version(version, &config.protocol_versions).map_err(about)?;
        headers::check_meta(&peek).map_err(about)?;
        let request = Stateless {
            id: &id,
            mirrored: &mcp.params,
            message,
            extensions,
            read_ahead,
        };
        return stateless(state, request, framing).await.map_err(about);
    }
    if let Some(version) = header_version {
        headers::check_version(version, &config.protocol_versions).map_err(about)?;
        if headers::is_stateless(version) {
            return Err(about(HttpError::new(
                StatusCode::BAD_REQUEST,
                ErrorObject::invalid_params(format!(
                    "MCP-Protocol-Version is {version:?}, but params._meta has no \
                     io.modelcontextprotocol/protocolVersion: a {version} request carries its protocol version, \
                     client capabilities and client info in params._meta"
                )),
            )));
        }
    }
    // Revisions up to 2025-11-25: `initialize` starts a session, everything else is in one.
    match session_id {
        None if method == "initialize" => initialize(state, &id, text, framing, extensions).await.map_err(about),
        None => Err(about(missing_session())),
        Some(session_id) => {
            let session = session(state, session_id).await.map_err(about)?;
            let framing = framing.primed(session.primes_streams());
            in_session(state, &session, &id, (message, extensions), framing)
                .await
                .map_err(about)
        }
    }
}

/// A notification or a response: handed to the session's peer, `202`.
async fn not_a_request(
    state: &Arc<State>,
    message: &Message,
    header_version: Option<&str>,
    session_id: Option<&str>,
    text: &str,
    extensions: Extensions,
) -> Result<Response, HttpError> {
    if let Some(session_id) = session_id {
        let session = session(state, session_id).await?;
        session.peer.receive(text, extensions).await;
        return Ok(StatusCode::ACCEPTED.into_response());
    }
    match (message, header_version) {
        // 2026-07-28 defines no client notifications over HTTP; one is accepted and shown to a
        // fresh service, as a stateless request would be.
        (Message::Notification { .. }, Some(version)) if headers::is_stateless(version) => {
            let (tx, _rx) = mpsc::channel(1);
            let peer = (state.make_peer)(tx);
            peer.receive(text, extensions).await;
            peer.close();
            Ok(StatusCode::ACCEPTED.into_response())
        }
        _ => Err(missing_session()),
    }
}

/// `503` once the endpoint is shutting down.
fn refuse_after_shutdown(state: &State) -> Result<(), HttpError> {
    if state.config.shutdown.is_cancelled() {
        return Err(HttpError::unavailable("the server is shutting down"));
    }
    Ok(())
}

fn missing_session() -> HttpError {
    HttpError::client(
        StatusCode::BAD_REQUEST,
        "missing Mcp-Session-Id: start a session with `initialize` (revisions up to 2025-11-25), or put \
         io.modelcontextprotocol/protocolVersion in the request's params._meta (2026-07-28)",
    )
}

/// What a stateless request holds until it is answered: its peer (closed on drop, which cancels
/// the handler if the client went away first) and its slot.
struct StatelessGuard {
    peer: Arc<dyn DynPeer>,
    _slot: OwnedSemaphorePermit,
}

impl Drop for StatelessGuard {
    fn drop(&mut self) {
        self.peer.close();
    }
}

/// A 2026-07-28 request, as read from its POST.
struct Stateless<'a> {
    id: &'a RequestId,
    /// Its `Mcp-Param-*` headers.
    mirrored: &'a [MirroredParam<'a>],
    /// The request.
    message: Message,
    /// What it carries from its HTTP request.
    extensions: Extensions,
    /// What was read of its params already, for the service.
    read_ahead: Option<Box<ReadAhead>>,
}

/// A 2026-07-28 request, served by a fresh service of its own.
async fn stateless(state: &Arc<State>, request: Stateless<'_>, framing: Framing) -> Result<Response, HttpError> {
    let config = &state.config;
    // A free slot (the usual case) is taken without the shutdown being waited for.
    let slot = tokio::select! {
        biased;
        slot = state.stateless.clone().acquire_owned() => slot.map_err(|_| HttpError::unavailable("the server is shutting down"))?,
        () = config.shutdown.cancelled() => return Err(HttpError::unavailable("the server is shutting down")),
    };
    let (tx, rx) = queue::queue(config.stream_buffer);
    let peer = (state.make_request_peer)(Arc::new(tx));
    let guard = StatelessGuard {
        peer: peer.clone(),
        _slot: slot,
    };
    let Message::Request { id, method, params } = request.message else {
        return Err(HttpError::internal("a stateless request that is no request"));
    };
    let read_ahead = request.read_ahead.as_deref();
    peer.check_mirrored(
        &method,
        params.as_deref(),
        read_ahead,
        request.mirrored,
        &request.extensions,
    )
    .map_err(|error| HttpError::new(StatusCode::BAD_REQUEST, error))?;
    start(peer.serve_alone(id, method, params, request.extensions, request.read_ahead));
    let reply = Reply {
        rx,
        _guard: Box::new(guard),
        closed: config.shutdown.clone(),
        stream: state.next_stream.fetch_add(1, Ordering::Relaxed),
        log: None,
        replay: VecDeque::new(),
        headers: HeaderMap::new(),
        gone: Gone::internal("the request ended without an answer", Some(request.id.clone())),
    };
    Ok(reply::respond(reply, framing, config).await)
}

/// `initialize`: a new session. Its id goes out only with a successful answer; a failed
/// `initialize` leaves no session behind.
async fn initialize(
    state: &Arc<State>,
    id: &RequestId,
    text: &str,
    framing: Framing,
    extensions: Extensions,
) -> Result<Response, HttpError> {
    let config = &state.config;
    let session = Registry::create(state)?;
    session.peer.session_started(&session.id);
    let attached = session.open_request(std::slice::from_ref(id), config.stream_buffer, &state.sessions)?;
    session.peer.receive(text, extensions).await;
    let mut headers = HeaderMap::new();
    let value =
        HeaderValue::from_str(&session.id).map_err(|_| HttpError::internal("a session id that is no header value"))?;
    headers.insert(MCP_SESSION_ID, value);
    let mut reply = session_reply(&session, attached, headers, session_gone(id));
    loop {
        let Some(message) = reply.next().await else {
            state.sessions.remove(&session.id);
            return Ok(reply::gone(reply, config));
        };
        if message.kind == OutboundKind::Ended {
            // Cancelled before it was answered: no session.
            state.sessions.remove(&session.id);
            return Ok(reply::gone(reply, config));
        }
        let Some(kind) = reply::kind_of(&message) else {
            continue;
        };
        match kind {
            Kind::Final(None) => {
                session.negotiated(&message.text);
                return Ok(reply::finish(reply, message, None, framing, config));
            }
            Kind::Final(error) => {
                state.sessions.remove(&session.id);
                reply.headers.clear();
                return Ok(reply::finish(reply, message, error, framing, config));
            }
            Kind::Other => {
                tracing::debug!(message = %message.text, "dropped a message sent before `initialize` was answered")
            }
        }
    }
}

fn session_gone(id: &RequestId) -> Gone {
    Gone::session_ended("the session ended before the request was answered", Some(id.clone()))
}

/// A request in an existing session.
async fn in_session(
    state: &Arc<State>,
    session: &Arc<Session>,
    id: &RequestId,
    (message, extensions): (Message, Extensions),
    framing: Framing,
) -> Result<Response, HttpError> {
    let config = &state.config;
    let attached = session.open_request(std::slice::from_ref(id), config.stream_buffer, &state.sessions)?;
    start(session.peer.serve_message(message, extensions).await);
    let reply = session_reply(session, attached, HeaderMap::new(), session_gone(id));
    Ok(reply::respond(reply, framing, config).await)
}

/// Runs a request's handling until it first waits. A call that answers at once (most do) is
/// served right here, in the connection's task: no spawn, and its answer is queued before the
/// reply looks for it. One that waits (on I/O, a timer, the client) goes on in a task of its
/// own, so its wake-ups do not go through the connection's stack of futures. A stateless
/// request's task still ends with its stream (its guard closes the peer, which cancels it);
/// a session's goes on without it, as a session's requests do.
fn start(handling: Option<Handling>) {
    let Some(mut handling) = handling else { return };
    // A waker that does nothing: a handling that is not done is polled again at once by its
    // task, which registers that task's waker.
    let mut cx = Context::from_waker(Waker::noop());
    if handling.as_mut().poll(&mut cx).is_pending() {
        tokio::spawn(handling);
    }
}

/// The reply carrying a session's stream.
fn session_reply(session: &Session, attached: Attached, headers: HeaderMap, gone: Gone) -> Reply {
    Reply {
        rx: attached.rx,
        _guard: Box::new(attached.guard),
        closed: session.closed.clone(),
        stream: attached.stream,
        log: Some(attached.log),
        replay: attached.replay,
        headers,
        gone,
    }
}

/// A JSON-RPC batch: only in a session that negotiated 2025-03-26, the one revision with
/// batches. Its requests share one answer (a JSON array, or a stream ending with it); a batch
/// of notifications and responses alone is `202`. A batch without requests whose elements
/// cannot all be read is refused whole (`400` with their errors), so nothing of it is half done.
async fn batch(
    state: &Arc<State>,
    headers: &HeaderMap,
    session_id: Option<&str>,
    text: &str,
    framing: Framing,
    extensions: Extensions,
) -> Result<Response, HttpError> {
    let config = &state.config;
    let refused = |why: &str| {
        HttpError::new(
            StatusCode::BAD_REQUEST,
            ErrorObject::invalid_request(format!(
                "JSON-RPC batches belong to protocol revision 2025-03-26 alone: {why}"
            )),
        )
    };
    let Some(session_id) = session_id else {
        return Err(refused("send one message per POST, or batch in a 2025-03-26 session"));
    };
    headers::protocol_version(headers, &config.protocol_versions)?;
    let session = state.sessions.get(session_id, config.session_idle_timeout)?;
    if !session.peer.accepts_batches() {
        return Err(refused(
            "this session negotiated another revision; send one message per POST",
        ));
    }
    let Inbound::Batch(elements) = message::decode(text) else {
        return Err(HttpError::internal("a batch that decodes as something else"));
    };
    let mut ids = Vec::new();
    let mut unreadable = Vec::new();
    for element in &elements {
        match element {
            Ok(Message::Request { id, .. }) => ids.push(id.clone()),
            Ok(_) => {}
            Err(invalid) if invalid.answer => {
                unreadable.push(message::encode_error(invalid.id.as_ref(), &invalid.error))
            }
            Err(_) => {}
        }
    }
    if ids.is_empty() {
        if !unreadable.is_empty() {
            let body = format!("[{}]", unreadable.join(","));
            let mut response = (StatusCode::BAD_REQUEST, body).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            return Ok(response);
        }
        session.peer.receive(text, extensions).await;
        return Ok(StatusCode::ACCEPTED.into_response());
    }
    let attached = session.open_request(&ids, config.stream_buffer, &state.sessions)?;
    session.peer.receive(text, extensions).await;
    let gone = Gone::session_ended("the session ended before the batch was answered", None);
    let reply = session_reply(&session, attached, HeaderMap::new(), gone);
    Ok(reply::respond(reply, framing, config).await)
}

async fn handle_get(state: &Arc<State>, request: Request) -> Result<Response, HttpError> {
    // MCP over WebSocket shares the endpoint's path: an upgrade is not a stream request.
    if super::ws::is_upgrade(request.headers()) {
        return super::ws::upgrade(state, request).await;
    }
    let config = &state.config;
    let (parts, _) = request.into_parts();
    state.guard.check(&parts)?;
    refuse_after_shutdown(state)?;
    headers::protocol_version(&parts.headers, &config.protocol_versions)?;
    if !Accept::of(&parts.headers).sse {
        return Err(HttpError::client(
            StatusCode::NOT_ACCEPTABLE,
            "a GET opens an SSE stream: `Accept` must allow text/event-stream",
        ));
    }
    // 2026-07-28 has no GET stream and asks for 405; so does a client without a session.
    let Some(session_id) = McpHeaders::of(&parts.headers).session_id()? else {
        return Err(HttpError::method_not_allowed(
            "POST",
            "GET opens the stream of a session (Mcp-Session-Id); there is none without one",
        ));
    };
    // An id that is not one of ours resumes nothing: the session's stream opens afresh.
    let from = headers::single(&parts.headers, &LAST_EVENT_ID)?.and_then(EventId::parse);
    let session = session(state, session_id).await?;
    let (attached, resumed_request) = session.open_get(from, config.stream_buffer, &state.sessions)?;
    let gone = Gone::session_ended("the session ended", None);
    let reply = session_reply(&session, attached, HeaderMap::new(), gone);
    // A request's stream ends with its response; the session's stream lasts.
    Ok(reply::stream(reply, None, resumed_request, Preface::Retry, config))
}

async fn handle_delete(state: &Arc<State>, request: Request) -> Result<Response, HttpError> {
    let (parts, _) = request.into_parts();
    state.guard.check(&parts)?;
    refuse_after_shutdown(state)?;
    headers::protocol_version(&parts.headers, &state.config.protocol_versions)?;
    let Some(session_id) = McpHeaders::of(&parts.headers).session_id()? else {
        return Err(HttpError::method_not_allowed(
            "POST",
            "DELETE ends a session (Mcp-Session-Id); there is none without one",
        ));
    };
    // A session held by another process of the server is taken on, then ended.
    let ended = session(state, session_id).await?;
    ended.peer.session_ended().await;
    state.sessions.remove(session_id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The session `id`: held here, or — when the service keeps its sessions in a store shared
/// with other processes of the same server ([`portico_core::Service::restore_session`]) —
/// taken on from there; `404` when neither has it.
async fn session(state: &Arc<State>, id: &str) -> Result<Arc<Session>, HttpError> {
    let missing = match state.sessions.get(id, state.config.session_idle_timeout) {
        Ok(session) => return Ok(session),
        Err(missing) => missing,
    };
    // Only ids that could be ours are looked up elsewhere.
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(missing);
    }
    let session = Registry::prepare(state, Some(id))?;
    match session.peer.restore_session(id).await {
        Some(revision) => {
            session.restored(revision);
            tracing::debug!(session = id, "took on a session started elsewhere");
            Registry::admit(state, session)
        }
        None => {
            session.close();
            Err(missing)
        }
    }
}

/// Reads the body, at most `max` bytes (`413` beyond).
pub(crate) async fn read_body(body: Body, headers: &HeaderMap, max: usize) -> Result<Bytes, HttpError> {
    let too_large = || {
        HttpError::client(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than the limit of {max} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return Err(too_large());
    }
    // Read up to the body's end as hyper knows it: a body with a `Content-Length` ends with
    // its last byte, before hyper's connection task gets to signal the end of the stream (on
    // its next poll). Waiting for that signal cost every request one more poll of its whole
    // handler.
    let mut body = Limited::new(body, max);
    // One chunk (most bodies) is handed on as it is; more are joined.
    let mut first = Bytes::new();
    let mut joined: Vec<u8> = Vec::new();
    while !body.is_end_stream() {
        let Some(frame) = body.frame().await else { break };
        let data = match frame {
            Ok(frame) => match frame.into_data() {
                Ok(data) => data,
                // Trailers carry nothing an MCP request reads.
                Err(_) => continue,
            },
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return Err(too_large()),
            Err(e) => {
                return Err(HttpError::client(
                    StatusCode::BAD_REQUEST,
                    format!("reading the body failed: {e}"),
                ));
            }
        };
        if first.is_empty() && joined.is_empty() {
            first = data;
        } else {
            joined.extend_from_slice(&std::mem::take(&mut first));
            joined.extend_from_slice(&data);
        }
    }
    Ok(if joined.is_empty() { first } else { Bytes::from(joined) })
}
