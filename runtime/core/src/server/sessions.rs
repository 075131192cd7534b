//! Sessions that outlive the process serving them: a [`SessionStore`] shared by several
//! processes of one server (replicas behind a load balancer) keeps each stateful session's
//! state, so that any of them can serve its next request ([`crate::Service::restore_session`]).
//!
//! What is kept ([`SessionState`]) is what `initialize` and the session's later requests set:
//! the negotiated revision, the client's capabilities and identity, the log level, and the
//! resources subscribed to. It is saved when it changes, before the answer of the request that
//! changed it goes out, so a client's next request finds it wherever it lands. What lives only
//! in the process that served it is not carried over: a server→client request still waiting
//! for its answer, a response stream to resume.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

use portico_protocol::v2026_07_28 as wire;
use serde::{Deserialize, Serialize};

/// A boxed future of a store.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where sessions' state is kept. Errors are the store's to report (logged); a session whose
/// state cannot be saved goes on in the process serving it.
pub trait SessionStore: Send + Sync + 'static {
    /// Keeps `state` (JSON text) under `id`, replacing what was there.
    fn save<'a>(&'a self, id: &'a str, state: String) -> StoreFuture<'a, Result<(), String>>;
    /// The state kept under `id`, if any.
    fn load<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Result<Option<String>, String>>;
    /// Forgets `id` (the client ended the session).
    fn remove<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Result<(), String>>;
}

/// A session's state, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionState {
    /// The revision `initialize` negotiated.
    pub revision: String,
    /// The capabilities the client declared.
    pub client_capabilities: serde_json::Value,
    /// The level `logging/setLevel` asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<wire::LoggingLevel>,
    /// The resources subscribed to.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub subscriptions: BTreeSet<String>,
}
