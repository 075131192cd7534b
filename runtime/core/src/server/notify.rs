//! Change notifications: the server announces that a list changed or a resource was updated,
//! and every connection that asked for it is told — a 2026-07-28 `subscriptions/listen` stream
//! (only what its filter names, each notification carrying the subscription id) or a stateful
//! session (list changes, and `notifications/resources/updated` for URIs it subscribed to with
//! `resources/subscribe`).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;

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

/// The live listeners of a server.
#[derive(Default)]
pub struct Listeners {
    listeners: Mutex<Vec<(Filter, mpsc::Sender<Change>)>>,
}

impl Listeners {
    /// Registers a listener; changes it wants arrive on the returned receiver until it is
    /// dropped.
    pub fn listen(&self, filter: Filter) -> mpsc::Receiver<Change> {
        let (tx, rx) = mpsc::channel(QUEUE);
        self.listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((filter, tx));
        rx
    }

    /// Tells every listener that wants it; forgets listeners that are gone.
    pub fn announce(&self, change: &Change) {
        let mut listeners = self.listeners.lock().unwrap_or_else(PoisonError::into_inner);
        listeners.retain(|(filter, tx)| {
            if tx.is_closed() {
                return false;
            }
            if filter.wants(change) {
                // A full queue drops this change for that listener (see QUEUE).
                let _ = tx.try_send(change.clone());
            }
            true
        });
    }

    /// How many listeners are registered (for tests and metrics).
    pub fn len(&self) -> usize {
        let mut listeners = self.listeners.lock().unwrap_or_else(PoisonError::into_inner);
        listeners.retain(|(_, tx)| !tx.is_closed());
        listeners.len()
    }

    /// Whether no listener is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
