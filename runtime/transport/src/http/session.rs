//! Stateful (2025-x) sessions: one peer per `Mcp-Session-Id`, the task that routes what the peer
//! sends to the HTTP stream it belongs to, the registry of sessions with its bound and idle
//! reaper, and [`Sessions`], the application's view of them.
//!
//! Routing: each outbound message names the inbound request it belongs to
//! ([`Outbound::related`]). A message of a request whose POST is still open goes on that POST's
//! stream; a message of the session as a whole goes on the GET stream, or waits in a bounded
//! backlog until one opens; a message of a request whose POST has gone (the client
//! disconnected) is dropped, since only the stream it belonged to may carry it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use axum::http::StatusCode;
use portico_core::{Outbound, PeerHandle, RequestId};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::error::HttpError;
use super::{DynPeer, State};

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
}

/// Where the session's outbound messages go.
#[derive(Default)]
struct Routes {
    /// The POST streams of requests being answered: (stream number, sender).
    requests: HashMap<RequestId, (u64, mpsc::Sender<Outbound>)>,
    /// The GET stream, if open.
    get: Option<(u64, mpsc::Sender<Outbound>)>,
    /// Messages of the session as a whole waiting for a GET stream.
    backlog: VecDeque<Outbound>,
}

impl Session {
    fn routes(&self) -> MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stream_number(&self) -> u64 {
        self.next_stream.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers the POST stream of request `id`. An id whose request is still being answered
    /// is `400`: JSON-RPC forbids reusing it, and its messages could not be told apart.
    pub(crate) fn open_request(
        self: &Arc<Self>,
        id: &RequestId,
        capacity: usize,
        registry: &Registry,
    ) -> Result<(u64, mpsc::Receiver<Outbound>, RouteGuard), HttpError> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let stream = self.stream_number();
        {
            let mut routes = self.routes();
            if routes.requests.get(id).is_some_and(|(_, tx)| !tx.is_closed()) {
                return Err(HttpError::client(
                    StatusCode::BAD_REQUEST,
                    format!("request id {id} is already in use by a request being answered"),
                )
                .with_id(Some(id.clone())));
            }
            routes.requests.insert(id.clone(), (stream, tx));
        }
        Ok((stream, rx, self.guard(Stream::Request(id.clone()), stream, registry)))
    }

    /// Opens the GET stream, handing it the backlog; `409` when one is open already.
    pub(crate) fn open_get(
        self: &Arc<Self>,
        capacity: usize,
        registry: &Registry,
    ) -> Result<(u64, mpsc::Receiver<Outbound>, RouteGuard), HttpError> {
        let stream = self.stream_number();
        let mut routes = self.routes();
        if routes.get.as_ref().is_some_and(|(_, tx)| !tx.is_closed()) {
            return Err(HttpError::client(
                StatusCode::CONFLICT,
                "this session already has a GET stream open; close it first",
            ));
        }
        let (tx, rx) = mpsc::channel(capacity.max(routes.backlog.len()).max(1));
        for message in routes.backlog.drain(..) {
            // The channel was made large enough for the whole backlog.
            let _ = tx.try_send(message);
        }
        routes.get = Some((stream, tx));
        drop(routes);
        Ok((stream, rx, self.guard(Stream::Get, stream, registry)))
    }

    fn guard(self: &Arc<Self>, which: Stream, stream: u64, registry: &Registry) -> RouteGuard {
        self.open.fetch_add(1, Ordering::Relaxed);
        self.touch(registry);
        RouteGuard {
            session: self.clone(),
            which,
            stream,
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
        routes.get = None;
        routes.backlog.clear();
    }

    /// Puts one outbound message where it belongs (see the module docs).
    async fn deliver(&self, message: Outbound, backlog: usize) {
        let target = {
            let mut routes = self.routes();
            match &message.related {
                Some(id) => match routes.requests.get(id) {
                    Some((_, tx)) => Some(tx.clone()),
                    None => {
                        tracing::debug!(session = %self.id, request = %id, "dropped a message of a request whose client went away");
                        return;
                    }
                },
                None => match &routes.get {
                    Some((_, tx)) if !tx.is_closed() => Some(tx.clone()),
                    _ => {
                        if routes.backlog.len() < backlog {
                            routes.backlog.push_back(message);
                        } else {
                            tracing::warn!(session = %self.id, "dropped a session message: no GET stream is open and the backlog is full");
                        }
                        return;
                    }
                },
            }
        };
        // Waits while the stream's client reads slowly: back-pressure on the session's peer.
        if let Some(tx) = target
            && let Err(mpsc::error::SendError(message)) = tx.send(message).await
            && message.related.is_none()
        {
            // The GET stream closed meanwhile: keep the message for the next one.
            let mut routes = self.routes();
            if routes.backlog.len() < backlog {
                routes.backlog.push_front(message);
            }
        }
    }
}

/// Which stream a guard unregisters.
enum Stream {
    Request(RequestId),
    Get,
}

/// Unregisters a stream when its HTTP answer is done or its client went away.
pub(crate) struct RouteGuard {
    session: Arc<Session>,
    which: Stream,
    stream: u64,
    epoch: Instant,
}

impl Drop for RouteGuard {
    fn drop(&mut self) {
        let session = &self.session;
        {
            let mut routes = session.routes();
            match &self.which {
                Stream::Request(id) => {
                    if routes.requests.get(id).is_some_and(|(n, _)| *n == self.stream) {
                        routes.requests.remove(id);
                    }
                }
                Stream::Get => {
                    if routes.get.as_ref().is_some_and(|(n, _)| *n == self.stream) {
                        routes.get = None;
                    }
                }
            }
        }
        session.open.fetch_sub(1, Ordering::Relaxed);
        session.last_used.store(millis_since(self.epoch), Ordering::Relaxed);
    }
}

fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The sessions of one endpoint.
pub(crate) struct Registry {
    map: Mutex<HashMap<Arc<str>, Arc<Session>>>,
    epoch: Instant,
    reaper: AtomicBool,
}

impl Registry {
    pub(crate) fn new() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            epoch: Instant::now(),
            reaper: AtomicBool::new(false),
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<Arc<str>, Arc<Session>>> {
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

    /// Starts a session: a fresh service and peer, and the task routing what the peer sends.
    /// `503` when `max_sessions` are open (after closing idle ones).
    pub(crate) fn create(state: &Arc<State>) -> Result<Arc<Session>, HttpError> {
        let registry = &state.sessions;
        let config = &state.config;
        if config.shutdown.is_cancelled() {
            return Err(HttpError::unavailable("the server is shutting down"));
        }
        if registry.len() >= config.max_sessions {
            registry.sweep(config.session_idle_timeout);
        }
        let id: Arc<str> = new_session_id()?.into();
        let capacity = config.stream_buffer.max(1);
        let (tx, rx) = mpsc::channel(capacity);
        let session = Arc::new(Session {
            id: id.clone(),
            peer: (state.make_peer)(tx),
            routes: Mutex::new(Routes::default()),
            closed: config.shutdown.child_token(),
            open: AtomicUsize::new(0),
            last_used: AtomicU64::new(registry.now()),
            next_stream: AtomicU64::new(1),
        });
        {
            let mut map = registry.map();
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
        tokio::spawn(route(session.clone(), rx, config.backlog));
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
fn new_session_id() -> Result<String, HttpError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| HttpError::internal(format!("no randomness for a session id: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The session's router: every message its peer sends, to the stream it belongs to. Ends with
/// the session.
async fn route(session: Arc<Session>, mut rx: mpsc::Receiver<Outbound>, backlog: usize) {
    loop {
        let message = tokio::select! {
            message = rx.recv() => message,
            () = session.closed.cancelled() => None,
        };
        let Some(message) = message else { break };
        tokio::select! {
            () = session.deliver(message, backlog) => {}
            () = session.closed.cancelled() => break,
        }
    }
    session.close();
}

/// Closes idle sessions every so often, until the endpoint shuts down or is dropped.
async fn reap(state: Weak<State>, shutdown: CancellationToken, idle_timeout: Duration) {
    let period = (idle_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(60));
    loop {
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            () = shutdown.cancelled() => return,
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
