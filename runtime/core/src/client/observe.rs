//! Per-call observers: a caller that needs the server's messages about one of its calls — a
//! gateway relaying progress, log messages and a session's server→client requests to the
//! client the call came from — attaches a [`CallObserver`] to the call
//! ([`super::RequestOptions::observer`]).
//!
//! Which call a message is about:
//! - `notifications/progress` carries the call's `progressToken`: matched by token, on every
//!   transport;
//! - on Streamable HTTP, and on the in-process [`super::memory`] pair, a message that came
//!   with a call (on its response stream) is about that call (the transport names it:
//!   [`crate::PeerHandle::origin`], [`crate::RequestContext::origin`]);
//! - on transports with one shared stream (stdio, WebSocket, the legacy SSE stream), a log
//!   message or a server request is given to an observed call only when it is the one observed
//!   call in flight; with several, it goes where an unobserved one goes (the notification
//!   stream, the [`super::ClientHandler`]). Messages about the client's unobserved requests
//!   (its lists, its `subscriptions/listen` streams) carry no log messages or questions in
//!   practice, so they do not make the rule ambiguous.
//!
//! Observed messages still reach [`super::Client::notifications`] as well.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::value::RawValue;

use super::InputContext;
use crate::error::ErrorObject;
use crate::message::RequestId;

/// A boxed future, as [`CallObserver::request`] returns it.
pub type ObserverFuture = Pin<Box<dyn Future<Output = Result<Box<RawValue>, ErrorObject>> + Send + 'static>>;

/// Receives what the server sends about one call.
pub trait CallObserver: Send + Sync + 'static {
    /// A `notifications/progress` or `notifications/message` about the call. Called on the
    /// transport's reading path: hand it on without waiting.
    fn notification(&self, method: &str, params: Option<&RawValue>);

    /// Whether the server's requests about the call come to [`CallObserver::request`] (the
    /// default: a gateway relays them to its own client) or go to the client's
    /// [`super::ClientHandler`] as any other request does (an observer that only follows
    /// progress).
    fn answers_requests(&self) -> bool {
        true
    }

    /// A request the server sent while serving the call (a session's `elicitation/create`,
    /// `sampling/createMessage`, `roots/list`); the answer is sent back to the server. Only
    /// called when [`CallObserver::answers_requests`]; the default answers `-32601`.
    fn request(&self, method: String, params: Option<Box<RawValue>>, cx: InputContext) -> ObserverFuture {
        let _ = (params, cx);
        Box::pin(async move { Err(crate::ErrorObject::method_not_found(&method)) })
    }
}

/// A [`CallObserver`], as [`super::RequestOptions`] holds it.
#[derive(Clone)]
pub struct Observer(pub(crate) Arc<dyn CallObserver>);

impl Observer {
    /// Wraps an observer.
    pub fn new(observer: impl CallObserver) -> Self {
        Self(Arc::new(observer))
    }
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer(..)")
    }
}

/// The observed calls of one client in flight: by request id and by progress token.
#[derive(Default)]
pub(crate) struct Observed {
    calls: Mutex<Calls>,
}

/// The tables' hasher: foldhash, seeded per process (the keys are short: our own request ids,
/// and progress tokens; SipHash cost more than the rest of a lookup).
type Hasher = foldhash::fast::RandomState;

#[derive(Default)]
struct Calls {
    by_id: HashMap<RequestId, Arc<dyn CallObserver>, Hasher>,
    /// Keyed by the token's JSON text.
    by_token: HashMap<String, Arc<dyn CallObserver>, Hasher>,
}

impl Observed {
    fn calls(&self) -> std::sync::MutexGuard<'_, Calls> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Watches the request `id`, whose progress token (JSON text) is `token`, until the
    /// returned guard is dropped.
    pub(crate) fn watch(self: &Arc<Self>, id: RequestId, token: Option<String>, observer: &Observer) -> Watch {
        let mut calls = self.calls();
        calls.by_id.insert(id.clone(), observer.0.clone());
        if let Some(token) = &token {
            calls.by_token.insert(token.clone(), observer.0.clone());
        }
        Watch {
            observed: self.clone(),
            id,
            token,
        }
    }

    /// The observer of a message the transport said came on the stream of `origin`, or, when
    /// it said nothing, of the only observed call in flight.
    pub(crate) fn find(&self, origin: Option<&RequestId>) -> Option<Arc<dyn CallObserver>> {
        let calls = self.calls();
        match origin {
            Some(id) => calls.by_id.get(id).cloned(),
            None if calls.by_id.len() == 1 => calls.by_id.values().next().cloned(),
            None => None,
        }
    }

    /// The observer of the call that asked for progress with `token` (JSON text).
    pub(crate) fn by_token(&self, token: &str) -> Option<Arc<dyn CallObserver>> {
        self.calls().by_token.get(token).cloned()
    }
}

/// Stops watching a request when dropped.
pub(crate) struct Watch {
    observed: Arc<Observed>,
    id: RequestId,
    token: Option<String>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut calls = self.observed.calls();
        calls.by_id.remove(&self.id);
        if let Some(token) = &self.token {
            calls.by_token.remove(token);
        }
    }
}
