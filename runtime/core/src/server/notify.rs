//! Change notifications: the server announces that a list changed or a resource was updated,
//! and every connection that asked for it is told — a 2026-07-28 `subscriptions/listen` stream
//! (only what its filter names, each notification carrying the subscription id) or a stateful
//! session (list changes, and `notifications/resources/updated` for URIs it subscribed to with
//! `resources/subscribe`).
//!
//! A `subscriptions/listen` stream is a request that lives as long as it listens: it reads its
//! changes from a queue of its own. A session is told directly instead ([`Listeners::forward`]):
//! announcing a change queues its notification on the session's peer without waiting, so an
//! idle session holds no task and no queue for changes that rarely come.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use serde_json::{Map, Value};
use tokio::sync::mpsc;

use crate::peer::PeerHandle;

/// Something that changed on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The tool list changed.
    ToolsListChanged,
    /// The prompt list changed.
    PromptsListChanged,
    /// The resource list changed.
    ResourcesListChanged,
    /// The resource at this URI changed.
    ResourceUpdated(String),
}

impl Change {
    /// The notification's method.
    pub fn method(&self) -> &'static str {
        match self {
            Self::ToolsListChanged => "notifications/tools/list_changed",
            Self::PromptsListChanged => "notifications/prompts/list_changed",
            Self::ResourcesListChanged => "notifications/resources/list_changed",
            Self::ResourceUpdated(_) => "notifications/resources/updated",
        }
    }

    /// The notification's params; on a `subscriptions/listen` stream they carry its
    /// `subscription` id.
    pub fn params(&self, subscription: Option<&Value>) -> Map<String, Value> {
        let mut params = Map::new();
        if let Some(id) = subscription {
            params.insert(
                "_meta".into(),
                serde_json::json!({"io.modelcontextprotocol/subscriptionId": id}),
            );
        }
        if let Self::ResourceUpdated(uri) = self {
            params.insert("uri".into(), uri.clone().into());
        }
        params
    }
}

/// Which changes a listener wants.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Tool list changes.
    pub tools: bool,
    /// Prompt list changes.
    pub prompts: bool,
    /// Resource list changes.
    pub resources: bool,
    /// Updates of these resource URIs.
    pub uris: Arc<Mutex<BTreeSet<String>>>,
}

impl Filter {
    fn wants(&self, change: &Change) -> bool {
        match change {
            Change::ToolsListChanged => self.tools,
            Change::PromptsListChanged => self.prompts,
            Change::ResourcesListChanged => self.resources,
            Change::ResourceUpdated(uri) => self.uris.lock().unwrap_or_else(PoisonError::into_inner).contains(uri),
        }
    }
}

/// Capacity of each listener's queue; a listener that falls this far behind misses changes
/// (they are hints to re-fetch, so the next one still brings it up to date).
const QUEUE: usize = 64;

/// Where a listener's changes go.
enum Target {
    /// A queue a `subscriptions/listen` stream reads; gone when the stream drops its end.
    Queue(mpsc::Sender<Change>),
    /// A session's peer, told directly; gone when its [`Forwarding`] is dropped or the peer
    /// closes.
    Peer(Weak<PeerHandle>),
}

/// Changes forwarded to a session's peer for as long as this is held ([`Listeners::forward`]).
pub struct Forwarding {
    _peer: Arc<PeerHandle>,
}

impl std::fmt::Debug for Forwarding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarding").finish_non_exhaustive()
    }
}

/// The live listeners of a server.
#[derive(Default)]
pub struct Listeners {
    listeners: Mutex<Vec<(Filter, Target)>>,
}

impl Listeners {
    /// Registers a listener; changes it wants arrive on the returned receiver until it is
    /// dropped.
    pub fn listen(&self, filter: Filter) -> mpsc::Receiver<Change> {
        let (tx, rx) = mpsc::channel(QUEUE);
        self.listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((filter, Target::Queue(tx)));
        rx
    }

    /// Registers a session: changes it wants are sent to `peer` as notifications of the session
    /// as a whole, queued without waiting (a full queue drops one, as a full listener queue
    /// does), until the returned [`Forwarding`] is dropped or the peer closes.
    pub fn forward(&self, filter: Filter, peer: PeerHandle) -> Forwarding {
        let peer = Arc::new(peer.unrelated());
        self.listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((filter, Target::Peer(Arc::downgrade(&peer))));
        Forwarding { _peer: peer }
    }

    /// Tells every listener that wants it; forgets listeners that are gone.
    pub fn announce(&self, change: &Change) {
        let mut listeners = self.listeners.lock().unwrap_or_else(PoisonError::into_inner);
        listeners.retain(|(filter, target)| match target {
            Target::Queue(tx) => {
                if tx.is_closed() {
                    return false;
                }
                if filter.wants(change) {
                    // A full queue drops this change for that listener (see QUEUE).
                    let _ = tx.try_send(change.clone());
                }
                true
            }
            Target::Peer(peer) => {
                let Some(peer) = peer.upgrade().filter(|p| !p.is_closed()) else {
                    return false;
                };
                if filter.wants(change) {
                    peer.try_notify(change.method(), &change.params(None));
                }
                true
            }
        });
    }

    /// How many listeners are registered (for tests and metrics).
    pub fn len(&self) -> usize {
        let mut listeners = self.listeners.lock().unwrap_or_else(PoisonError::into_inner);
        listeners.retain(|(_, target)| match target {
            Target::Queue(tx) => !tx.is_closed(),
            Target::Peer(peer) => peer.upgrade().is_some_and(|p| !p.is_closed()),
        });
        listeners.len()
    }

    /// Whether no listener is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
