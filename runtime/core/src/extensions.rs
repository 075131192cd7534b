//! Typed values attached to a request on its way through the process: what the layers in front
//! of a server learned about a request it received (an authenticated principal, a tenant), for
//! its handler; and what a client gives the transport about a request it sends. Carried without
//! the core knowing any HTTP type.
//!
//! A transport fills an [`Extensions`] per message it receives and hands it to the peer with
//! the message ([`crate::Peer::receive_message_with`], [`crate::Peer::receive_with`],
//! [`crate::Peer::receive_alone_with`]); the handler reads it from its request
//! ([`crate::RequestContext::extensions`], [`crate::server::Context::extension`]). Which values
//! a transport copies is the embedder's choice (for HTTP: `portico_transport::http::Carry`).
//! Requests nobody attached anything to — messages over stdio, requests a server makes to
//! itself, the work of a task after its request was answered — have empty extensions.
//!
//! The other way, a client attaches extensions to a request it sends, for the transport that
//! writes it ([`crate::client::RequestOptions::extensions`], carried to the transport in
//! [`crate::Outbound::extensions`]): the HTTP client reads per-request credentials there
//! (`portico_transport::http::auth::Auth`). Transports that know no value attached ignore it.
//!
//! # Cost
//!
//! Empty extensions are a `None`: making, cloning and dropping them allocates nothing, so a
//! transport that attaches nothing pays nothing. Filled ones are one `Arc`'d list: cloning them
//! for each request of a connection (a WebSocket's, a batch's) is a reference count. A request
//! carries a handful of values at most, so the list is searched in order: cheaper than hashing
//! the type at every lookup.

use std::any::{Any, TypeId};
use std::sync::Arc;

/// The values, one per type.
type Values = Vec<(TypeId, Arc<dyn Any + Send + Sync>)>;

/// A map from a type to one value of it, shared: cheap to clone, read-only once shared (an
/// insertion into a shared map copies the map, not the values).
#[derive(Clone, Default)]
pub struct Extensions {
    map: Option<Arc<Values>>,
}

impl Extensions {
    /// Empty extensions (allocates nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts `value` in, replacing the value of its type already there.
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        let values = Arc::make_mut(self.map.get_or_insert_with(Default::default));
        let value: Arc<dyn Any + Send + Sync> = Arc::new(value);
        match values.iter_mut().find(|(id, _)| *id == TypeId::of::<T>()) {
            Some((_, slot)) => *slot = value,
            None => values.push((TypeId::of::<T>(), value)),
        }
    }

    /// [`Extensions::insert`], by value.
    pub fn with<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.insert(value);
        self
    }

    /// The value of type `T`, if there is one.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        let (_, value) = self.map.as_ref()?.iter().find(|(id, _)| *id == TypeId::of::<T>())?;
        value.downcast_ref::<T>()
    }

    /// Whether nothing is attached.
    pub fn is_empty(&self) -> bool {
        self.map.as_ref().is_none_or(|map| map.is_empty())
    }

    /// How many values are attached.
    pub fn len(&self) -> usize {
        self.map.as_ref().map_or(0, |map| map.len())
    }
}

/// Equal when both are empty or both are the same shared map (the values are not compared:
/// they need not be comparable). Messages carrying extensions compare equal when they carry the
/// same ones.
impl PartialEq for Extensions {
    fn eq(&self, other: &Self) -> bool {
        match (&self.map, &other.map) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b) || (a.is_empty() && b.is_empty()),
            (Some(map), None) | (None, Some(map)) => map.is_empty(),
            (None, None) => true,
        }
    }
}

impl Eq for Extensions {}

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extensions").field("len", &self.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Principal(&'static str);

    #[test]
    fn values_are_found_by_their_type() {
        let mut extensions = Extensions::new();
        assert!(extensions.is_empty());
        assert_eq!(extensions.get::<Principal>(), None);
        extensions.insert(Principal("ada"));
        extensions.insert(7_u32);
        assert_eq!(extensions.get::<Principal>(), Some(&Principal("ada")));
        assert_eq!(extensions.get::<u32>(), Some(&7));
        assert_eq!(extensions.get::<u64>(), None);
        extensions.insert(Principal("bob"));
        assert_eq!(extensions.get::<Principal>(), Some(&Principal("bob")));
        assert_eq!(extensions.len(), 2);
    }

    #[test]
    fn clones_share_and_an_insertion_into_a_clone_leaves_the_original() {
        let original = Extensions::new().with(Principal("ada"));
        let mut copy = original.clone();
        copy.insert(Principal("bob"));
        assert_eq!(original.get::<Principal>(), Some(&Principal("ada")));
        assert_eq!(copy.get::<Principal>(), Some(&Principal("bob")));
    }

    #[test]
    fn equal_when_empty_or_shared() {
        assert_eq!(Extensions::new(), Extensions::new());
        let filled = Extensions::new().with(Principal("ada"));
        assert_eq!(filled, filled.clone());
        assert_ne!(filled, Extensions::new());
        assert_ne!(
            filled,
            Extensions::new().with(Principal("ada")),
            "values are not compared"
        );
    }
}
