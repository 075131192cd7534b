//! Stateful (2025-x) sessions: one peer per `Mcp-Session-Id`, the routing of what the peer
//! sends to the HTTP stream it belongs to, the logs that let a client resume a stream, the
//! registry of sessions with its bound and idle reaper, and [`Sessions`], the application's
//! view of them.
//!
//! Routing: each outbound message names the inbound request it belongs to
//! ([`Outbound::related`]). A message of a request goes on that request's stream; a message of
//! the session as a whole goes on the session's own stream (number 0), which a GET attaches to.
//! The session's peer delivers each message itself, from the task that sent it, through the
//! session's [`Outlet`] (no channel or routing task between the peer and the streams): an idle
//! session is a few records and no task, and a request's answer reaches its HTTP response
//! with one hop fewer. A slow stream holds up only the handler writing to it.
//!
//! Resuming: every SSE event of a session is numbered `{stream}-{seq}` and kept in its stream's
//! [`StreamLog`] (the last [`HttpConfig::backlog`] events). When a request's stream is not
//! attached to an HTTP response — the client went away, or the handler ended the stream early
//! ([`portico_core::PeerHandle::close_stream`]) — its messages are numbered and logged without
//! being sent, and the request goes on. A GET with `Last-Event-ID: {stream}-{seq}` replays the
//! stream's events after `seq` and carries on with it: to the response for a request's stream,
//! for as long as the client stays for the session's stream. The logs of request streams that
//! carried events are kept after their response too (an event written is not an event read),
//! up to [`MAX_DETACHED`] per session, the oldest going first; an unknown or expired id resumes
//! nothing and opens the session's stream afresh. Messages of the
//! session's stream sent while no GET is attached wait in its log and go out when one attaches.
//!
//! [`HttpConfig::backlog`]: super::HttpConfig::backlog

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use axum::http::StatusCode;
use portico_core::{Outbound, OutboundKind, Outlet, PeerHandle, RequestId};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::error::HttpError;
use super::queue;
use super::sse::EventId;
use super::{DynPeer, State};

/// The hasher of the session tables (foldhash, seeded per process; keys are short ids).
type Hasher = foldhash::fast::RandomState;

/// Request streams of one session kept for resuming while no response carries them.
pub(crate) const MAX_DETACHED: usize = 32;

/// The number of a session's own stream (the one a plain GET attaches to).
pub(crate) const SESSION_STREAM: u64 = 0;

/// The numbered events of one SSE stream, kept so its client can resume it.
#[derive(Debug)]
pub(crate) struct StreamLog {
    /// The number the next event gets (from 1; 0 is the priming event).
    next_seq: u64,
    /// The highest number written to a client.
    delivered: u64,
    /// The last events: (number, text).
    events: VecDeque<(u64, Arc<str>)>,
    cap: usize,
    /// The stream's last message (a request's response) is among the events.
    finished: bool,
}

/// A stream's log, shared by the session's router and the response carrying the stream.
pub(crate) type Log = Arc<Mutex<StreamLog>>;

impl StreamLog {
    fn new(cap: usize) -> Log {
        Arc::new(Mutex::new(Self {
            next_seq: 1,
            delivered: 0,
            events: VecDeque::new(),
            cap: cap.max(1),
            finished: false,
        }))
    }

    /// Numbers and keeps one message; `delivered` when it is being written to a client now,
    /// `last` when it is the stream's last (a request's response).
    pub(crate) fn record(&mut self, text: &str, delivered: bool, last: bool) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.events.len() == self.cap {
            self.events.pop_front();
        }
        self.events.push_back((seq, text.into()));
        if delivered {
            self.delivered = seq;
        }
        self.finished |= last;
        seq
    }

    /// Marks the stream over without a last message (its request was cancelled).
    pub(crate) fn end(&mut self) {
        self.finished = true;
    }

    /// Marks the stream complete without logging its end (a response written as JSON).
    pub(crate) fn finish(&mut self) {
        self.finished = true;
        self.delivered = self.next_seq - 1;
    }

    /// The highest event number written to a client (0 before any).
    pub(crate) fn last_delivered(&self) -> u64 {
        self.delivered
    }

    /// Notes that event `seq` was written to a client.
    pub(crate) fn delivered(&mut self, seq: u64) {
        self.delivered = self.delivered.max(seq);
    }

    /// The kept events after `seq`.
    fn after(&self, seq: u64) -> VecDeque<(u64, Arc<str>)> {
        self.events.iter().filter(|(n, _)| *n > seq).cloned().collect()
    }

    /// Whether the stream is over and holds nothing a client could ask for again (it was
    /// answered as one JSON object). A stream whose events were written is kept a while: an
    /// event written is not an event read.
    fn spent(&self) -> bool {
        self.finished && self.events.is_empty()
    }
}

/// Locks a log (a poisoned lock still holds consistent data: every update is one step).
pub(crate) fn lock(log: &Log) -> MutexGuard<'_, StreamLog> {
    log.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a new HTTP response carries for a stream.
pub(crate) struct Attached {
    /// The stream's number, the first half of its event ids.
    pub(crate) stream: u64,
    /// Its messages from now on.
    pub(crate) rx: queue::Receiver,
    /// Its log.
    pub(crate) log: Log,
    /// Events to send first: logged ones the client has not seen.
    pub(crate) replay: VecDeque<(u64, Arc<str>)>,
    /// Detaches the stream when the response is done.
    pub(crate) guard: RouteGuard,
}

/// One session.
pub(crate) struct Session {
    pub(crate) id: Arc<str>,
    pub(crate) peer: Arc<dyn DynPeer>,
    routes: Mutex<Routes>,
    /// Cancelled when the session ends (DELETE, idle, shutdown): its streams end.
    pub(crate) closed: CancellationToken,
    /// Streams open now (POSTs waiting for their answer, the GET stream).
    open: AtomicUsize,
    /// When it was last used, in milliseconds since the registry's epoch.
    last_used: AtomicU64,
    next_stream: AtomicU64,
    /// Events kept per stream.
    log_cap: usize,
    /// The revision `initialize` negotiated, once answered.
    revision: std::sync::OnceLock<String>,
}

/// A stream of the session and where its messages go.
struct Route {
    stream: u64,
    /// The response carrying it, when one does.
    tx: Option<queue::Sender>,
    log: Log,
    /// When it was detached (an order among the session's detached streams), if it is.
    detached: Option<u64>,
    /// Which attachment (HTTP response) carries it now: a response that ends detaches the
    /// stream only if it is still the one carrying it, not one that resumed it since.
    attachment: u64,
}

impl Route {
    fn new(stream: u64, cap: usize) -> Self {
        Self {
            stream,
            tx: None,
            log: StreamLog::new(cap),
            detached: None,
            attachment: 0,
        }
    }

    /// The live response's sender, if one is attached and still reading.
    fn live(&self) -> Option<&queue::Sender> {
        self.tx.as_ref().filter(|tx| !tx.is_closed())
    }
}

/// The streams of a session's requests, by request id: the one a session mostly has at a time
/// held inline, a table only for more at once. (A table made for each request and dropped
/// again after it, as an idle session keeps none, cost ~0.4k instructions a call.)
#[derive(Default)]
struct RequestRoutes {
    one: Option<(RequestId, Route)>,
    more: HashMap<RequestId, Route, Hasher>,
}

impl RequestRoutes {
    fn get(&self, id: &RequestId) -> Option<&Route> {
        match &self.one {
            Some((held, route)) if held == id => Some(route),
            _ => self.more.get(id),
        }
    }

    fn get_mut(&mut self, id: &RequestId) -> Option<&mut Route> {
        match &mut self.one {
            Some((held, route)) if held == id => Some(route),
            _ => self.more.get_mut(id),
        }
    }

    /// Puts `route` under `id`, in place of the one there.
    fn insert(&mut self, id: RequestId, route: Route) {
        match &mut self.one {
            Some((held, old)) if *held == id => *old = route,
            None if !self.more.contains_key(&id) => self.one = Some((id, route)),
            _ => {
                self.more.insert(id, route);
            }
        }
    }

    fn remove(&mut self, id: &RequestId) {
        match &self.one {
            Some((held, _)) if held == id => self.one = None,
            _ => {
                self.more.remove(id);
            }
        }
    }

    fn iter(&self) -> impl Iterator<Item = (&RequestId, &Route)> {
        self.one.iter().map(|(id, route)| (id, route)).chain(&self.more)
    }

    fn values(&self) -> impl Iterator<Item = &Route> {
        self.iter().map(|(_, route)| route)
    }

    /// The log of the stream numbered `stream`, if a request's stream is.
    fn log_of(&self, stream: u64) -> Option<Log> {
        self.values().find(|r| r.stream == stream).map(|r| r.log.clone())
    }

    fn retain(&mut self, mut keep: impl FnMut(&RequestId, &mut Route) -> bool) {
        if let Some((id, route)) = &mut self.one
            && !keep(id, route)
        {
            self.one = None;
        }
        self.more.retain(|id, route| keep(id, route));
    }

    fn clear(&mut self) {
        self.one = None;
        self.more.clear();
    }

    /// Gives back the table's memory once it holds nothing.
    fn shrink_when_empty(&mut self) {
        if self.more.is_empty() && self.more.capacity() > 0 {
            self.more.shrink_to_fit();
        }
    }
}

/// Where the session's outbound messages go.
struct Routes {
    /// The streams of requests, by request id (every request of a batch shares one stream).
    requests: RequestRoutes,
    /// The session's own stream.
    session: Route,
    /// Orders detachments.
    detach_count: u64,
}

impl Session {
    fn routes(&self) -> MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes the revision of a session restored from another process.
    pub(crate) fn restored(&self, revision: String) {
        let _ = self.revision.set(revision);
    }

    /// Notes the revision the successful answer to `initialize` names.
    pub(crate) fn negotiated(&self, answer: &str) {
        #[derive(serde::Deserialize)]
        struct Answer {
            result: Initialized,
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Initialized {
            protocol_version: String,
        }
        if let Ok(answer) = serde_json::from_str::<Answer>(answer) {
            let _ = self.revision.set(answer.result.protocol_version);
        }
    }

    /// Whether the session's SSE streams start with a priming event and a `retry:` hint: when it
    /// negotiated 2025-11-25 or later, whose clients resume streams. Older clients may not take
    /// an event without data. (The revision negotiated decides, not a request's
    /// `MCP-Protocol-Version`, which some clients send stale.)
    pub(crate) fn primes_streams(&self) -> bool {
        self.revision.get().is_some_and(|r| r.as_str() >= "2025-11-25")
    }

    /// A number unique in the session: for a stream, or for an attachment of one to a response.
    fn stream_number(&self) -> u64 {
        self.next_stream.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers a new stream for the requests `ids` (one, or those of a batch). An id whose
    /// request is still being answered is `400`: JSON-RPC forbids reusing it, and its messages
    /// could not be told apart.
    pub(crate) fn open_request(
        self: &Arc<Self>,
        ids: &[RequestId],
        capacity: usize,
        registry: &Registry,
    ) -> Result<Attached, HttpError> {
        let (tx, rx) = queue::queue(capacity);
        let stream = self.stream_number();
        let attachment = self.stream_number();
        let log = StreamLog::new(self.log_cap);
        {
            let mut routes = self.routes();
            for id in ids {
                if routes.requests.get(id).is_some_and(|r| r.live().is_some()) {
                    return Err(HttpError::client(
                        StatusCode::BAD_REQUEST,
                        format!("request id {id} is already in use by a request being answered"),
                    )
                    .with_id(Some(id.clone())));
                }
            }
            for id in ids {
                let route = Route {
                    stream,
                    tx: Some(tx.clone()),
                    log: log.clone(),
                    detached: None,
                    attachment,
                };
                routes.requests.insert(id.clone(), route);
            }
        }
        Ok(Attached {
            stream,
            rx,
            log,
            replay: VecDeque::new(),
            guard: self.guard(Stream::Requests(ids.to_vec()), attachment, registry),
        })
    }

    /// Attaches a GET response to a stream: the session's own stream (`from` absent or naming
    /// it) or, with `Last-Event-ID` naming a request's stream that is kept, that stream. The
    /// events after `from` (after the last delivered one, without it) are replayed first.
    /// `409` when the session's stream is attached already.
    pub(crate) fn open_get(
        self: &Arc<Self>,
        from: Option<EventId>,
        capacity: usize,
        registry: &Registry,
    ) -> Result<(Attached, bool), HttpError> {
        let mut routes = self.routes();
        // A request's stream, resumed.
        if let Some(from) = from.filter(|f| f.stream != SESSION_STREAM)
            && let Some(log) = routes.requests.log_of(from.stream)
        {
            let (tx, rx) = queue::queue(capacity);
            let attachment = self.stream_number();
            let (replay, finished) = {
                let log = lock(&log);
                (log.after(from.seq), log.finished)
            };
            let ids: Vec<RequestId> = routes
                .requests
                .iter()
                .filter(|(_, r)| r.stream == from.stream)
                .map(|(id, _)| id.clone())
                .collect();
            for id in &ids {
                if let Some(route) = routes.requests.get_mut(id) {
                    // A response still attached (its client has not noticed it is gone) ends.
                    route.tx = (!finished).then(|| tx.clone());
                    route.detached = None;
                    route.attachment = attachment;
                }
            }
            drop(routes);
            let attached = Attached {
                stream: from.stream,
                rx,
                log,
                replay,
                guard: self.guard(Stream::Requests(ids), attachment, registry),
            };
            return Ok((attached, true));
        }
        if routes.session.live().is_some() {
            return Err(HttpError::client(
                StatusCode::CONFLICT,
                "this session already has a GET stream open; close it first",
            ));
        }
        let log = routes.session.log.clone();
        let (tx, rx) = queue::queue(capacity);
        let replay = {
            let log = lock(&log);
            let seq = from
                .filter(|f| f.stream == SESSION_STREAM)
                .map_or(log.delivered, |f| f.seq);
            log.after(seq)
        };
        let attachment = self.stream_number();
        routes.session.tx = Some(tx);
        routes.session.attachment = attachment;
        drop(routes);
        let attached = Attached {
            stream: SESSION_STREAM,
            rx,
            log,
            replay,
            guard: self.guard(Stream::Session, attachment, registry),
        };
        Ok((attached, false))
    }

    fn guard(self: &Arc<Self>, which: Stream, attachment: u64, registry: &Registry) -> RouteGuard {
        self.open.fetch_add(1, Ordering::Relaxed);
        self.touch(registry);
        RouteGuard {
            session: self.clone(),
            which,
            attachment,
            epoch: registry.epoch,
        }
    }

    /// Marks the session used now.
    pub(crate) fn touch(&self, registry: &Registry) {
        self.last_used.store(registry.now(), Ordering::Relaxed);
    }

    fn idle_for(&self, registry: &Registry) -> Option<Duration> {
        if self.open.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let since = registry.now().saturating_sub(self.last_used.load(Ordering::Relaxed));
        Some(Duration::from_millis(since))
    }

    /// Ends the session: its handlers are cancelled and its streams end.
    pub(crate) fn close(&self) {
        self.closed.cancel();
        self.peer.close();
        let mut routes = self.routes();
        routes.requests.clear();
        routes.session.tx = None;
    }

    /// Puts one outbound message where it belongs (see the module docs).
    async fn deliver(&self, mut message: Outbound) {
        let (tx, log) = {
            let mut routes = self.routes();
            let route = match &message.related {
                Some(id) => match routes.requests.get_mut(id) {
                    Some(route) => route,
                    None => {
                        tracing::debug!(session = %self.id, request = %id, "dropped a message of a request whose stream is gone");
                        return;
                    }
                },
                None => &mut routes.session,
            };
            match route.live() {
                // Room in the stream's queue (most messages): queued here, in order with the
                // messages routed before it.
                Some(tx) => match tx.try_send(message) {
                    Ok(()) => return,
                    Err(back) => {
                        message = back;
                        (tx.clone(), route.log.clone())
                    }
                },
                None => {
                    // Nobody reads the stream now: keep the message for a client resuming it.
                    match message.kind {
                        OutboundKind::Message => {
                            let last = route.stream != SESSION_STREAM && message.answer.is_some();
                            lock(&route.log).record(&message.text, false, last);
                        }
                        OutboundKind::Ended => lock(&route.log).end(),
                        _ => {}
                    }
                    return;
                }
            }
        };
        // A full queue: waits while the stream's client reads slowly (back-pressure on the
        // session's peer); a closed one fails at once.
        if let Err(message) = tx.send(message).await {
            // The response went away meanwhile (it logged what it had not sent, under the
            // log's lock, before closing): this one follows.
            match message.kind {
                OutboundKind::Message => {
                    let last = message.related.is_some() && message.answer.is_some();
                    lock(&log).record(&message.text, false, last);
                }
                OutboundKind::Ended => lock(&log).end(),
                _ => {}
            }
        }
    }

    /// Puts one outbound message where it belongs without waiting: a stream whose response is
    /// full drops it (given back).
    fn try_deliver(&self, message: Outbound) -> Result<(), Outbound> {
        let mut routes = self.routes();
        let route = match &message.related {
            Some(id) => match routes.requests.get_mut(id) {
                Some(route) => route,
                None => return Err(message),
            },
            None => &mut routes.session,
        };
        match route.live() {
            Some(tx) => tx.try_send(message),
            None => {
                match message.kind {
                    OutboundKind::Message => {
                        let last = route.stream != SESSION_STREAM && message.answer.is_some();
                        lock(&route.log).record(&message.text, false, last);
                    }
                    OutboundKind::Ended => lock(&route.log).end(),
                    _ => {}
                }
                Ok(())
            }
        }
    }

    /// Detaches the stream of a response that is done (its `attachment`), keeping what a client
    /// could resume; a stream another response carries by now is left alone.
    fn detach(&self, which: &Stream, attachment: u64) {
        let mut routes = self.routes();
        let routes = &mut *routes;
        match which {
            Stream::Session => {
                if routes.session.attachment == attachment {
                    routes.session.tx = None;
                }
            }
            Stream::Requests(ids) => {
                routes.detach_count += 1;
                let order = routes.detach_count;
                for id in ids {
                    let Some(route) = routes.requests.get_mut(id) else {
                        continue;
                    };
                    if route.attachment != attachment {
                        continue;
                    }
                    if lock(&route.log).spent() {
                        routes.requests.remove(id);
                    } else {
                        route.tx = None;
                        route.detached = Some(order);
                    }
                }
                // Bounded: the streams detached longest ago go first.
                loop {
                    let mut detached: Vec<u64> = routes.requests.values().filter_map(|r| r.detached).collect();
                    detached.sort_unstable();
                    detached.dedup();
                    if detached.len() <= MAX_DETACHED {
                        break;
                    }
                    let oldest = detached[0];
                    routes.requests.retain(|_, r| r.detached != Some(oldest));
                }
                // An idle session keeps no table: one its requests grew is a few hundred bytes
                // per session, for nothing.
                routes.requests.shrink_when_empty();
            }
        }
    }
}

/// Which streams a guard detaches.
enum Stream {
    Requests(Vec<RequestId>),
    Session,
}

/// Detaches a stream when its HTTP answer is done or its client went away.
pub(crate) struct RouteGuard {
    session: Arc<Session>,
    which: Stream,
    attachment: u64,
    epoch: Instant,
}

impl Drop for RouteGuard {
    fn drop(&mut self) {
        self.session.detach(&self.which, self.attachment);
        self.session.open.fetch_sub(1, Ordering::Relaxed);
        self.session
            .last_used
            .store(millis_since(self.epoch), Ordering::Relaxed);
    }
}

fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The sessions of one endpoint.
pub(crate) struct Registry {
    map: Mutex<HashMap<Arc<str>, Arc<Session>, Hasher>>,
    epoch: Instant,
    reaper: AtomicBool,
}

impl Registry {
    pub(crate) fn new() -> Self {
        Self {
            map: Mutex::new(HashMap::default()),
            epoch: Instant::now(),
            reaper: AtomicBool::new(false),
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<Arc<str>, Arc<Session>, Hasher>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> u64 {
        millis_since(self.epoch)
    }

    /// The session with this id; `404` when there is none (never was, ended, or expired).
    pub(crate) fn get(&self, id: &str, idle_timeout: Duration) -> Result<Arc<Session>, HttpError> {
        let session = self.map().get(id).cloned();
        match session {
            Some(session) if session.idle_for(self).is_none_or(|idle| idle <= idle_timeout) => {
                session.touch(self);
                Ok(session)
            }
            Some(_) => {
                self.remove(id);
                Err(not_found())
            }
            None => Err(not_found()),
        }
    }

    /// Removes and closes a session; whether it existed.
    pub(crate) fn remove(&self, id: &str) -> bool {
        let session = self.map().remove(id);
        match session {
            Some(session) => {
                session.close();
                true
            }
            None => false,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map().len()
    }

    /// Closes every session (the endpoint shuts down; later requests are refused before they
    /// look for one).
    fn close_all(&self) {
        let sessions: Vec<Arc<Session>> = self.map().values().cloned().collect();
        for session in sessions {
            session.close();
        }
    }

    /// Closes every session idle longer than `idle_timeout`.
    fn sweep(&self, idle_timeout: Duration) {
        let expired: Vec<Arc<Session>> = {
            let mut map = self.map();
            let ids: Vec<Arc<str>> = map
                .values()
                .filter(|s| s.idle_for(self).is_some_and(|idle| idle > idle_timeout))
                .map(|s| s.id.clone())
                .collect();
            ids.iter().filter_map(|id| map.remove(id)).collect()
        };
        for session in expired {
            tracing::debug!(session = %session.id, "closed an idle session");
            session.close();
        }
    }

    /// Starts a session: a fresh service and a peer delivering through the session's outlet.
    /// `503` when `max_sessions` are open (after closing idle ones). The first session starts
    /// the endpoint's reaper.
    pub(crate) fn create(state: &Arc<State>) -> Result<Arc<Session>, HttpError> {
        let session = Self::prepare(state, None)?;
        Self::admit(state, session)
    }

    /// A session not yet registered: with a new id, or `id` (one another process started, to be
    /// restored). `503` when the server shuts down.
    pub(crate) fn prepare(state: &Arc<State>, id: Option<&str>) -> Result<Arc<Session>, HttpError> {
        let registry = &state.sessions;
        let config = &state.config;
        if config.shutdown.is_cancelled() {
            return Err(HttpError::unavailable("the server is shutting down"));
        }
        let id: Arc<str> = match id {
            Some(id) => id.into(),
            None => new_session_id()?.into(),
        };
        Ok(Arc::new_cyclic(|weak| {
            let peer = (state.make_session_peer)(Arc::new(SessionOutlet(weak.clone())));
            Session {
                id: id.clone(),
                // The peer's own token, which `close` cancels with it: a token of the session's
                // own would be another allocation per idle session. Shutdown reaches it
                // through the reaper, which closes every session (`Registry::close_all`).
                closed: peer.handle().closing(),
                peer,
                routes: Mutex::new(Routes {
                    requests: RequestRoutes::default(),
                    session: Route::new(SESSION_STREAM, config.backlog),
                    detach_count: 0,
                }),
                open: AtomicUsize::new(0),
                last_used: AtomicU64::new(registry.now()),
                next_stream: AtomicU64::new(SESSION_STREAM + 1),
                log_cap: config.backlog,
                revision: std::sync::OnceLock::new(),
            }
        }))
    }

    /// Registers a prepared session (`503` at `max_sessions`, after closing idle ones); when one
    /// of its id is registered already (restored by a concurrent request), that one is
    /// returned and `session` closed. The first session starts the endpoint's reaper.
    pub(crate) fn admit(state: &Arc<State>, session: Arc<Session>) -> Result<Arc<Session>, HttpError> {
        let registry = &state.sessions;
        let config = &state.config;
        if registry.len() >= config.max_sessions {
            registry.sweep(config.session_idle_timeout);
        }
        let id = session.id.clone();
        {
            let mut map = registry.map();
            if let Some(existing) = map.get(&id).cloned() {
                drop(map);
                session.close();
                return Ok(existing);
            }
            if map.len() >= config.max_sessions {
                drop(map);
                session.close();
                return Err(HttpError::unavailable(format!(
                    "the server has {} sessions open, its limit; try again later",
                    config.max_sessions
                )));
            }
            map.insert(id, session.clone());
        }
        // Shutdown began since `prepare`: the reaper may have closed every session already
        // (`Registry::close_all`), and a session's streams end only when it is closed.
        if config.shutdown.is_cancelled() {
            registry.map().remove(&session.id);
            session.close();
            return Err(HttpError::unavailable("the server is shutting down"));
        }
        if !registry.reaper.swap(true, Ordering::Relaxed) {
            tokio::spawn(reap(
                Arc::downgrade(state),
                config.shutdown.clone(),
                config.session_idle_timeout,
            ));
        }
        Ok(session)
    }
}

fn not_found() -> HttpError {
    HttpError::client(
        StatusCode::NOT_FOUND,
        "no such session: it ended or expired; start a new one with `initialize` (without Mcp-Session-Id)",
    )
}

/// 128 random bits from the operating system, as 32 hex digits.
pub(crate) fn new_session_id() -> Result<String, HttpError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| HttpError::internal(format!("no randomness for a session id: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// How a session's peer delivers what it sends: to the stream each message belongs to (see the
/// module docs). Weak, so the peer does not keep its session alive: once the session is gone,
/// sending fails as on a closed connection.
struct SessionOutlet(Weak<Session>);

impl Outlet for SessionOutlet {
    fn send(&self, message: Outbound) -> Pin<Box<dyn Future<Output = Result<(), Outbound>> + Send + '_>> {
        Box::pin(async move {
            let Some(session) = self.0.upgrade().filter(|s| !s.closed.is_cancelled()) else {
                return Err(message);
            };
            // A session that closes meanwhile drops the message with its streams. The delivery
            // goes first: most are done at once, without the closing being waited for.
            tokio::select! {
                biased;
                () = session.deliver(message) => {}
                () = session.closed.cancelled() => {}
            }
            Ok(())
        })
    }

    fn try_send(&self, message: Outbound) -> Result<(), Outbound> {
        match self.0.upgrade().filter(|s| !s.closed.is_cancelled()) {
            Some(session) => session.try_deliver(message),
            None => Err(message),
        }
    }
}

/// Closes idle sessions every so often, until the endpoint shuts down (then it closes them all:
/// their handlers stop) or is dropped.
async fn reap(state: Weak<State>, shutdown: CancellationToken, idle_timeout: Duration) {
    let period = (idle_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(60));
    loop {
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            () = shutdown.cancelled() => {
                if let Some(state) = state.upgrade() {
                    state.sessions.close_all();
                }
                return;
            }
        }
        let Some(state) = state.upgrade() else { return };
        state.sessions.sweep(idle_timeout);
    }
}

/// The application's view of an endpoint's sessions: to send a session a message of its own
/// (a list change, a log line) or to end it.
#[derive(Clone)]
pub struct Sessions {
    pub(crate) state: Arc<State>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").field("open", &self.len()).finish()
    }
}

impl Sessions {
    /// How many sessions are open.
    pub fn len(&self) -> usize {
        self.state.sessions.len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ids of the open sessions.
    pub fn ids(&self) -> Vec<String> {
        self.state.sessions.map().keys().map(|id| id.to_string()).collect()
    }

    /// The peer handle of a session: what it sends belongs to the session as a whole and goes
    /// on its GET stream.
    pub fn peer(&self, id: &str) -> Option<PeerHandle> {
        self.state.sessions.map().get(id).map(|s| s.peer.handle())
    }

    /// The peer handles of every open session.
    pub fn peers(&self) -> Vec<PeerHandle> {
        self.state.sessions.map().values().map(|s| s.peer.handle()).collect()
    }

    /// Ends a session, as a DELETE from its client would; whether it was open.
    pub fn close(&self, id: &str) -> bool {
        self.state.sessions.remove(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(routes: &RequestRoutes) -> Vec<(String, u64)> {
        let mut ids: Vec<(String, u64)> = routes.iter().map(|(id, r)| (id.to_string(), r.stream)).collect();
        ids.sort();
        ids
    }

    #[test]
    fn request_routes_hold_one_inline_and_more_in_a_table_given_back_when_empty() {
        let mut routes = RequestRoutes::default();
        let (a, b, c) = (
            RequestId::Number(1),
            RequestId::Number(2),
            RequestId::String("c".into()),
        );
        routes.insert(a.clone(), Route::new(10, 4));
        assert!(
            routes.one.is_some() && routes.more.capacity() == 0,
            "the first is inline"
        );
        // The same id again replaces its route, wherever it is.
        routes.insert(a.clone(), Route::new(11, 4));
        routes.insert(b.clone(), Route::new(20, 4));
        routes.insert(c.clone(), Route::new(30, 4));
        routes.insert(b.clone(), Route::new(21, 4));
        assert_eq!(ids(&routes), [("\"c\"".into(), 30), ("1".into(), 11), ("2".into(), 21)]);
        assert_eq!(routes.get(&b).map(|r| r.stream), Some(21));
        assert!(routes.log_of(30).is_some() && routes.log_of(10).is_none());
        // With the inline one gone, a new id is not put beside one held in the table.
        routes.remove(&a);
        assert!(routes.get(&a).is_none());
        routes.insert(b.clone(), Route::new(22, 4));
        assert_eq!(ids(&routes), [("\"c\"".into(), 30), ("2".into(), 22)]);
        routes.retain(|id, _| *id != c);
        assert_eq!(ids(&routes), [("2".into(), 22)]);
        routes.remove(&b);
        assert!(routes.iter().next().is_none());
        routes.shrink_when_empty();
        assert_eq!(routes.more.capacity(), 0, "an idle session keeps no table");
        routes.insert(c.clone(), Route::new(31, 4));
        if let Some(route) = routes.get_mut(&c) {
            route.detached = Some(1);
        }
        assert_eq!(routes.get(&c).and_then(|r| r.detached), Some(1));
        routes.clear();
        assert!(routes.get(&c).is_none());
    }
}
