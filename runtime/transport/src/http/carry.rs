//! Which values of an HTTP request's extensions reach the handlers of the MCP requests it
//! carries: what a layer in front of the endpoint learned (an authenticated principal, a
//! tenant) becomes the requests' [`portico_core::Extensions`].

use std::sync::Arc;

use axum::http::Extensions as HttpExtensions;
use portico_core::Extensions;

/// Copies one type's value from an HTTP request's extensions, if it is there.
type Copy = dyn Fn(&HttpExtensions, &mut Extensions) + Send + Sync;

/// The types whose values an endpoint copies from each HTTP request's extensions
/// (`http::Extensions`, where axum middleware puts what it learned) into the MCP requests it
/// carries, for their handlers to read ([`portico_core::server::Context::extension`]).
///
/// The embedder names the types ([`Carry::with`]); nothing else is copied. A value is cloned
/// once per HTTP request, and the requests it carries share it. Nothing is allocated for an
/// HTTP request that holds none of the types, nor when no type is named (the default).
///
/// What carries what:
///
/// - **Streamable HTTP**: each POST's values go to the requests of that POST (a session's
///   requests may so come from different HTTP requests with different values: a refreshed
///   token, another caller holding the session id); a stateless (2026-07-28) request's to it.
/// - **WebSocket**: the upgrade request's values go to every request of the connection.
/// - **Legacy HTTP+SSE**: each POST's values go to the requests it carries (not the `GET`
///   that opened the stream: the POST is what says who sends each message).
///
/// ```
/// use portico_transport::http::{Carry, HttpConfig};
///
/// #[derive(Clone)]
/// struct Principal(String);
///
/// let config = HttpConfig {
///     carry: Carry::new().with::<Principal>(),
///     ..HttpConfig::default()
/// };
/// assert_eq!(config.carry.len(), 1);
/// ```
#[derive(Clone, Default)]
pub struct Carry {
    copies: Vec<Arc<Copy>>,
    names: Vec<&'static str>,
}

impl Carry {
    /// Carries nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also carries the value of type `T`.
    pub fn with<T: Clone + Send + Sync + 'static>(mut self) -> Self {
        self.copies.push(Arc::new(|from: &HttpExtensions, to: &mut Extensions| {
            if let Some(value) = from.get::<T>() {
                to.insert(value.clone());
            }
        }));
        self.names.push(std::any::type_name::<T>());
        self
    }

    /// Whether it carries `T`.
    pub(crate) fn carries<T: 'static>(&self) -> bool {
        self.names.contains(&std::any::type_name::<T>())
    }

    /// How many types it carries.
    pub fn len(&self) -> usize {
        self.copies.len()
    }

    /// Whether it carries nothing.
    pub fn is_empty(&self) -> bool {
        self.copies.is_empty()
    }

    /// The values of `from` it carries.
    pub(crate) fn copy(&self, from: &HttpExtensions) -> Extensions {
        let mut to = Extensions::new();
        for copy in &self.copies {
            copy(from, &mut to);
        }
        to
    }
}

impl std::fmt::Debug for Carry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.names).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct Principal(&'static str);

    #[test]
    fn only_the_named_types_are_copied() {
        let mut from = HttpExtensions::new();
        from.insert(Principal("ada"));
        from.insert(5_u32);
        let carried = Carry::new().with::<Principal>().copy(&from);
        assert_eq!(carried.get::<Principal>(), Some(&Principal("ada")));
        assert_eq!(carried.get::<u32>(), None);
        assert!(Carry::new().copy(&from).is_empty());
        assert!(Carry::new().with::<Principal>().copy(&HttpExtensions::new()).is_empty());
        assert!(format!("{:?}", Carry::new().with::<Principal>()).contains("Principal"));
    }
}
