//! The gateway's own credentials at its upstreams (`upstreams[].oauth`): no caller's token ever
//! goes upstream (the `Authorization` header stops at [`crate::auth`]); each upstream gets what
//! the gateway holds for it.
//!
//! - **Client credentials.** Each replica of an upstream with `oauth` has an
//!   [`OAuthProvider`] of the transport's, with the `client_credentials` grant: made once with
//!   the replica (so its token outlives reconnections), eager (a token is obtained before a
//!   request would go without one), cached, replaced `refresh_margin` before it expires, and
//!   replaced once when the upstream answers `401`. Every request of the replica's connection
//!   carries it: Streamable HTTP on every POST and GET, WebSocket and legacy SSE when they
//!   open (and legacy SSE on every POST).
//! - **Token exchange** (`oauth.token_exchange`, RFC 8693). The calls the gateway relays for a
//!   caller carry a token exchanged for the caller's own ([`crate::auth::SubjectToken`]), on the
//!   upstream's shared connection: the exchanged token is attached to the call
//!   ([`portico_core::client::RequestOptions::extension`]) and the Streamable HTTP client sends
//!   that request alone with it. The gateway's own requests there (listing, health checks,
//!   list-change streams) keep the client credentials. Tokens are cached per caller token — by
//!   its SHA-256, so the caller's token itself is kept nowhere — until `refresh_margin` before
//!   they expire, at most `max_subjects` of them; concurrent calls of one caller wait for one
//!   exchange. A `401` from the upstream drops the caller's cached token and exchanges again,
//!   once.
//!
//! # Why per-call credentials, not a connection per caller
//!
//! A stateless (2026-07-28) upstream is a sequence of independent HTTP requests, so a token
//! per request is all it takes: one connection (one HTTP connection pool, one `server/discover`,
//! one set of health checks) serves every caller. A connection per caller would cost a
//! connection pool, a discovery and tasks per caller, and would need an eviction policy of its
//! own, for nothing the upstream can tell apart. The price is a transport hook (a request's
//! extensions, which the Streamable HTTP client reads) and the restriction the configuration
//! check enforces: token exchange needs `protocol: stateless` and Streamable HTTP, since a
//! session, a WebSocket or a legacy SSE stream is authorized once for every caller.
//!
//! # Failures
//!
//! An exchange that fails (the authorization server unreachable or refusing the caller's
//! token), or a caller without a token to exchange (no `auth`, an API key), fails the call with
//! [`crate::relay::UPSTREAM_UNAVAILABLE`] naming the upstream and the reason, before any replica
//! is picked: one caller's refused token does not count against the replicas' breakers, nor
//! does an upstream's `401` or `403` to a caller's token. The client credentials grant failing
//! makes the replica's connection fail, as any unreachable upstream does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use portico_core::ErrorObject;
use portico_core::server::Context;
use portico_transport::http::auth::{
    Auth, AuthError, AuthProvider, BoxFuture, Challenge, ClientCredentials, OAuthConfig as ProviderConfig,
    OAuthProvider, TokenEndpointAuth, TokenExchange, Tokens,
};
use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::auth::SubjectToken;
use crate::config::{OAuthConfig, ReplicaConfig, TokenEndpointAuthMethod, UpstreamConfig};
use crate::relay::UPSTREAM_UNAVAILABLE;

/// The `client_name` the gateway gives its OAuth clients.
const CLIENT_NAME: &str = "portico-gateway";

/// How long one request to an authorization server may take.
const AS_TIMEOUT: Duration = Duration::from_secs(10);

/// The transport's name for a token endpoint authentication method.
fn method(choice: TokenEndpointAuthMethod) -> TokenEndpointAuth {
    match choice {
        TokenEndpointAuthMethod::ClientSecretBasic => TokenEndpointAuth::ClientSecretBasic,
        TokenEndpointAuthMethod::ClientSecretPost => TokenEndpointAuth::ClientSecretPost,
    }
}

/// The URL an OAuth provider is made for: the replica's, `ws(s)://` read as `http(s)://` (the
/// WebSocket handshake is an HTTP request to the same resource).
fn http_url(url: &str) -> String {
    if let Some(rest) = url.strip_prefix("ws://") {
        format!("http://{rest}")
    } else if let Some(rest) = url.strip_prefix("wss://") {
        format!("https://{rest}")
    } else {
        url.to_string()
    }
}

/// The provider settings shared by the grant and the exchange.
fn provider_config(
    oauth: &OAuthConfig,
    client_id: &str,
    secret: String,
    auth: Option<TokenEndpointAuthMethod>,
    token_endpoint: Option<&String>,
) -> ProviderConfig {
    let mut client = ClientCredentials::new(client_id, Some(secret));
    client.auth_method = auth.map(method);
    let mut config = ProviderConfig::client_credentials(CLIENT_NAME, client);
    config.token_endpoint = token_endpoint.cloned();
    config.resource = oauth.resource.clone();
    config.refresh_margin = oauth.refresh_margin;
    config.timeout = AS_TIMEOUT;
    config
}

/// The credentials of one replica's connection: a client credentials provider when the
/// upstream has `oauth`, `None` without; `Err` (why) when they cannot be made, which the
/// replica's connection attempts then report.
pub(crate) fn for_replica(upstream: &UpstreamConfig, target: &ReplicaConfig) -> Result<Option<Auth>, String> {
    let (Some(oauth), Some(url)) = (&upstream.oauth, &target.url) else {
        return Ok(None);
    };
    let secret = oauth.secret()?;
    let mut config = provider_config(
        oauth,
        &oauth.client_id,
        secret,
        oauth.token_endpoint_auth,
        oauth.token_endpoint.as_ref(),
    );
    config.scopes = (!oauth.scopes.is_empty()).then(|| oauth.scopes.clone());
    config.eager = true;
    let provider = OAuthProvider::new(&http_url(url), config).map_err(|e| format!("oauth: {e}"))?;
    Ok(Some(Auth::new(provider)))
}

/// The exchanged tokens of one caller token (`None` until exchanged, or once refused). Its lock
/// is held while its token is exchanged.
type Slot = Arc<tokio::sync::Mutex<Option<Tokens>>>;

/// A caller token's key in the cache: its SHA-256.
type SubjectKey = [u8; 32];

/// An upstream's token exchange: the provider that exchanges, and the tokens obtained, by
/// caller token.
pub struct Exchanger {
    upstream: String,
    provider: OAuthProvider,
    audience: Option<String>,
    scopes: Vec<String>,
    margin: Duration,
    max_subjects: usize,
    /// Exchanged tokens by the SHA-256 of the caller's token. Each slot's lock is held while
    /// its token is exchanged, so a caller's concurrent calls wait for one exchange.
    cache: Mutex<HashMap<SubjectKey, Slot>>,
}

impl std::fmt::Debug for Exchanger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchanger")
            .field("upstream", &self.upstream)
            .field("audience", &self.audience)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl Exchanger {
    /// The exchanger of `upstream`, when it has `oauth.token_exchange`; `Err` (why) when it
    /// cannot be made (calls then fail with it). Exchanges ask for the resource of the first
    /// replica's URL, unless `oauth.resource` names one.
    pub(crate) fn for_upstream(upstream: &UpstreamConfig) -> Option<Result<Arc<Self>, String>> {
        let oauth = upstream.oauth.as_ref()?;
        let exchange = oauth.token_exchange.as_ref()?;
        let made = (|| {
            let url = upstream
                .targets()
                .into_iter()
                .find_map(|t| t.url)
                .ok_or("token exchange needs a `url` upstream")?;
            let secret = exchange.secret(oauth)?;
            let config = provider_config(
                oauth,
                exchange.client_id.as_deref().unwrap_or(&oauth.client_id),
                secret,
                exchange.token_endpoint_auth.or(oauth.token_endpoint_auth),
                exchange.token_endpoint.as_ref().or(oauth.token_endpoint.as_ref()),
            );
            let provider = OAuthProvider::new(&url, config).map_err(|e| format!("oauth.token_exchange: {e}"))?;
            Ok(Arc::new(Self {
                upstream: upstream.name.clone(),
                provider,
                audience: exchange.audience.clone(),
                scopes: exchange.scopes.clone(),
                margin: oauth.refresh_margin,
                max_subjects: exchange.max_subjects,
                cache: Mutex::default(),
            }))
        })();
        Some(made)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<SubjectKey, Slot>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cache slot of a caller's token, made when missing (dropping others first when the
    /// cache is full: those not in use whose token expired, else any not in use).
    fn slot(&self, key: SubjectKey) -> Slot {
        let mut cache = self.cache();
        if let Some(slot) = cache.get(&key) {
            return slot.clone();
        }
        if cache.len() >= self.max_subjects {
            let margin = self.margin;
            cache.retain(|_, slot| {
                if Arc::strong_count(slot) > 1 {
                    return true;
                }
                match slot.try_lock() {
                    Ok(held) => held.as_ref().is_some_and(|t| !t.expires_within(margin)),
                    Err(_) => true,
                }
            });
            while cache.len() >= self.max_subjects {
                let Some(idle) = cache
                    .iter()
                    .find(|(_, slot)| Arc::strong_count(slot) == 1)
                    .map(|(k, _)| *k)
                else {
                    break;
                };
                cache.remove(&idle);
            }
        }
        cache.entry(key).or_default().clone()
    }

    /// The `Authorization` value of a call of the caller whose token is `subject`: the cached
    /// exchanged token while it is not about to expire, else a fresh exchange.
    async fn authorization(&self, subject: &SubjectToken) -> Result<HeaderValue, AuthError> {
        let slot = self.slot(Sha256::digest(subject.secret().as_bytes()).into());
        let mut held = slot.lock().await;
        let tokens = match held.as_ref() {
            Some(tokens) if !tokens.expires_within(self.margin) => tokens.clone(),
            _ => {
                let request = TokenExchange::access_token(subject.secret()).with_scopes(self.scopes.clone());
                let request = match &self.audience {
                    Some(audience) => request.with_audience(audience.clone()),
                    None => request,
                };
                let tokens = self.provider.exchange_token(&request).await?;
                tracing::debug!(upstream = self.upstream, "a caller's token exchanged");
                *held = Some(tokens.clone());
                tokens
            }
        };
        let mut value =
            HeaderValue::from_str(&format!("Bearer {}", tokens.access_token)).map_err(|_| AuthError::BadResponse {
                step: "token exchange".into(),
                reason: "the access token is not a valid header value".into(),
            })?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// Forgets the caller's exchanged token, when it is the one `sent` (the upstream refused
    /// it): the next call exchanges again.
    async fn forget(&self, subject: &SubjectToken, sent: Option<&HeaderValue>) {
        let key: SubjectKey = Sha256::digest(subject.secret().as_bytes()).into();
        let Some(slot) = self.cache().get(&key).cloned() else {
            return;
        };
        let mut held = slot.lock().await;
        let same = held
            .as_ref()
            .zip(sent)
            .is_some_and(|(t, sent)| sent.as_bytes() == format!("Bearer {}", t.access_token).as_bytes());
        if same {
            *held = None;
        }
    }

    /// How many callers' tokens are cached.
    pub fn cached(&self) -> usize {
        self.cache().len()
    }

    /// The credentials of a call made for the caller of `cx`, its token exchanged already (so
    /// a failure fails the call before any replica is picked); the error names the upstream.
    pub(crate) async fn for_call(self: &Arc<Self>, cx: &Context) -> Result<Auth, ErrorObject> {
        let unavailable = |reason: String| {
            ErrorObject::new(
                UPSTREAM_UNAVAILABLE,
                format!("upstream `{}` is unavailable: {reason}", self.upstream),
            )
            .with_data(json!({"upstream": self.upstream, "reason": reason}))
        };
        let Some(subject) = cx.extension::<SubjectToken>() else {
            return Err(unavailable(
                "its calls carry the caller's token exchanged (oauth.token_exchange), and this caller has no token to exchange (a JWT is needed, not an API key)".into(),
            ));
        };
        self.authorization(subject)
            .await
            .map_err(|e| unavailable(format!("token exchange failed: {e}")))?;
        Ok(Auth::new(CallerAuth {
            exchanger: self.clone(),
            subject: subject.clone(),
        }))
    }
}

/// The credentials of one relayed call: the caller's exchanged token, exchanged again once when
/// the upstream refuses it. Lives as long as the call.
struct CallerAuth {
    exchanger: Arc<Exchanger>,
    subject: SubjectToken,
}

impl AuthProvider for CallerAuth {
    fn authorization(&self) -> BoxFuture<'_, Result<Option<HeaderValue>, AuthError>> {
        Box::pin(async move { self.exchanger.authorization(&self.subject).await.map(Some) })
    }

    fn challenge<'a>(&'a self, challenge: &'a Challenge) -> BoxFuture<'a, Result<bool, AuthError>> {
        Box::pin(async move {
            if challenge.status != StatusCode::UNAUTHORIZED {
                return Ok(false);
            }
            self.exchanger.forget(&self.subject, challenge.sent.as_ref()).await;
            Ok(true)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_urls_get_the_provider_of_their_http_url() {
        assert_eq!(http_url("ws://h:1/mcp"), "http://h:1/mcp");
        assert_eq!(http_url("wss://h/mcp"), "https://h/mcp");
        assert_eq!(http_url("http://h/sse"), "http://h/sse");
    }

    fn exchanger(max_subjects: usize) -> Exchanger {
        let config = ProviderConfig::client_credentials("test", ClientCredentials::new("c", Some("s".into())));
        Exchanger {
            upstream: "u".into(),
            provider: OAuthProvider::new("http://127.0.0.1:1/mcp", config).expect("a provider"),
            audience: None,
            scopes: Vec::new(),
            margin: Duration::ZERO,
            max_subjects,
            cache: Mutex::default(),
        }
    }

    #[test]
    fn the_cache_is_bounded_and_keeps_the_slots_in_use() {
        let exchanger = exchanger(2);
        let in_use = exchanger.slot([1; 32]);
        drop(exchanger.slot([2; 32]));
        // Full: the idle slot goes, the one in use stays.
        drop(exchanger.slot([3; 32]));
        assert_eq!(exchanger.cached(), 2);
        assert!(exchanger.cache().contains_key(&[1; 32]));
        assert!(exchanger.cache().contains_key(&[3; 32]));
        // No longer in use, slots without a live token all go when the cache is full.
        drop(in_use);
        drop(exchanger.slot([4; 32]));
        assert_eq!(exchanger.cached(), 1, "empty slots are dropped first");
    }

    #[test]
    fn nothing_shows_a_subject_token() {
        let subject = SubjectToken::new("eyJ-the-callers-token");
        assert_eq!(format!("{subject:?}"), "SubjectToken(<redacted>)");
    }
}
