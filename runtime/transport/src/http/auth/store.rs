//! Token storage: the [`TokenStore`] trait, keyed by the resource's canonical URL, and
//! [`MemoryTokenStore`], the default.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use super::{AuthError, BoxFuture};

/// The tokens held for one resource. `Debug` shows no secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Tokens {
    /// The access token.
    pub access_token: String,
    /// The refresh token, if the server issued one.
    pub refresh_token: Option<String>,
    /// When the access token expires (from `expires_in`), if the server said.
    pub expires_at: Option<SystemTime>,
    /// The scopes granted (the response's `scope`, else those asked for).
    pub scopes: Vec<String>,
    /// The issuer of the authorization server that issued them.
    pub issuer: String,
}

impl Tokens {
    /// Whether the access token expires within `margin`.
    pub fn expires_within(&self, margin: Duration) -> bool {
        self.expires_at.is_some_and(|at| at <= SystemTime::now() + margin)
    }
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("access_token", &"<redacted>")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "<redacted>"))
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .field("issuer", &self.issuer)
            .finish()
    }
}

/// Where an [`super::OAuthProvider`] keeps tokens, by the resource's canonical URL. An
/// implementation persisting them must keep them confidential (OAuth 2.1 §4.3).
pub trait TokenStore: Send + Sync + 'static {
    /// The tokens for `resource`, if any.
    fn load<'a>(&'a self, resource: &'a str) -> BoxFuture<'a, Result<Option<Tokens>, AuthError>>;
    /// Keeps `tokens` for `resource`, replacing any.
    fn save<'a>(&'a self, resource: &'a str, tokens: Tokens) -> BoxFuture<'a, Result<(), AuthError>>;
    /// Forgets the tokens for `resource`.
    fn clear<'a>(&'a self, resource: &'a str) -> BoxFuture<'a, Result<(), AuthError>>;
}

/// Tokens in memory, for the life of the process.
#[derive(Default)]
pub struct MemoryTokenStore {
    tokens: Mutex<HashMap<String, Tokens>>,
}

impl MemoryTokenStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl std::fmt::Debug for MemoryTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("MemoryTokenStore")
            .field("resources", &tokens.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl TokenStore for MemoryTokenStore {
    fn load<'a>(&'a self, resource: &'a str) -> BoxFuture<'a, Result<Option<Tokens>, AuthError>> {
        let tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        let found = tokens.get(resource).cloned();
        Box::pin(async move { Ok(found) })
    }

    fn save<'a>(&'a self, resource: &'a str, tokens: Tokens) -> BoxFuture<'a, Result<(), AuthError>> {
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(resource.to_string(), tokens);
        Box::pin(async { Ok(()) })
    }

    fn clear<'a>(&'a self, resource: &'a str) -> BoxFuture<'a, Result<(), AuthError>> {
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(resource);
        Box::pin(async { Ok(()) })
    }
}
