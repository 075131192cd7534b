//! Authorization of the HTTP-based clients: the [`AuthProvider`] hook every request of
//! [`super::client`], [`super::ws_client`] and [`super::legacy_sse_client`] goes through, and
//! [`OAuthProvider`], the OAuth 2.1 client of the MCP authorization spec (2025-11-25 and
//! 2026-07-28 `basic/authorization`).
//!
//! ```no_run
//! use std::sync::Arc;
//! use portico_transport::http::auth::{Auth, HeadlessAuthorizer, OAuthConfig, OAuthProvider};
//! use portico_transport::http::client::HttpClientConfig;
//!
//! # fn build() -> Result<HttpClientConfig, portico_transport::http::auth::AuthError> {
//! let authorizer = Arc::new(HeadlessAuthorizer::new("http://127.0.0.1:3000/callback"));
//! let oauth = OAuthProvider::new("http://127.0.0.1:8080/mcp", OAuthConfig::authorization_code("my-app", authorizer))?;
//! let config = HttpClientConfig { auth: Some(Auth::new(oauth)), ..HttpClientConfig::default() };
//! # Ok(config) }
//! ```
//!
//! # Decisions
//!
//! - **One hook, two calls.** [`AuthProvider::authorization`] gives the `Authorization` value of
//!   the next request (cheap: a stored token, refreshed first when it has expired);
//!   [`AuthProvider::challenge`] is told of a `401` or of a `403 insufficient_scope`, with the
//!   parsed `WWW-Authenticate` and the value the refused request carried, and says whether to
//!   send the request again. [`send`] is the loop the clients share: a request is retried at most
//!   once after a `401` and at most [`MAX_STEP_UPS`] times after a `403`, whatever the provider
//!   says, so a server that refuses forever cannot make the client loop (the suite's
//!   `auth/scope-retry-limit`). The trait returns boxed futures because it is used as a trait
//!   object (`Arc<dyn AuthProvider>` in [`Auth`], held by `Clone`able configs).
//! - **One flow at a time.** Concurrent requests refused together run one flow: the provider
//!   holds a lock while it authorizes, and a request whose token was already replaced when it
//!   gets the lock is simply retried with the new one.
//! - **Discovery in the spec's order.** The protected-resource metadata (RFC 9728) comes from the
//!   challenge's `resource_metadata`, else from the well-known URL with the endpoint's path
//!   inserted, else from the root well-known URL; its `resource` must name the server the
//!   client talks to (the same origin, and a path that is the endpoint's or one of its parent
//!   segments), else [`AuthError::ResourceMismatch`] and no authorization request is made. The
//!   authorization server's metadata is looked up at the RFC 8414 and OpenID Connect URLs in the
//!   order the spec lists (path insertion first for issuers with a path), and its `issuer` must
//!   equal, as a string, the identifier the URL was built from
//!   ([`AuthError::IssuerMismatch`]). Without protected-resource metadata the 2025-03-26 rules
//!   (metadata or default endpoints at the server's origin) apply only when
//!   [`OAuthConfig::legacy_discovery`] is set.
//! - **Authorization code with PKCE S256 only**, refused when the server's metadata does not
//!   list `S256` in `code_challenge_methods_supported` ([`AuthError::PkceUnsupported`]). Each
//!   request has a fresh verifier and `state`; the response's `state` must match, and `iss`
//!   follows RFC 9207 as the 2026-07-28 table says (compared as plain strings, no URL
//!   normalisation; a missing `iss` is refused only when the server advertises
//!   `authorization_response_iss_parameter_supported`). An error response is reported only
//!   after its `iss` passed. The RFC 8707 `resource` parameter (the metadata's `resource`, else
//!   the endpoint's canonical URL) is sent on authorization, token and refresh requests.
//! - **Scopes.** The first authorization asks for the challenge's `scope`, else the resource
//!   metadata's `scopes_supported`, else for none (no `scope` parameter). Later ones ask for the
//!   union of what was asked before and what the challenge names (step-up, SEP-2350). A `403
//!   insufficient_scope` whose scopes the current token already holds is not retried: asking
//!   again for the same grant cannot help. `offline_access` is added when the authorization
//!   server lists it in `scopes_supported`, [`OAuthConfig::offline_access`] is on, and other
//!   scopes are asked for; it is never added on the server's say-so (SEP-2207).
//! - **Refresh before re-authorizing.** An expired token with a refresh token is refreshed
//!   before it is sent; a `401` for a token of the same authorization server tries the refresh
//!   token first, then the full flow. A `401` always re-reads the resource metadata: when it
//!   names another authorization server (migration, SEP-2352), the tokens are dropped and the
//!   client registers anew there — dynamic registrations are kept per issuer, and
//!   pre-registered credentials are bound to the first issuer they are used with (or the one
//!   configured) and refused for any other ([`AuthError::CredentialsBoundElsewhere`]).
//! - **Client identity in the spec's order**: pre-registered credentials
//!   ([`OAuthConfig::client`]), then a Client ID Metadata Document URL
//!   ([`OAuthConfig::client_metadata_url`]) when the server advertises
//!   `client_id_metadata_document_supported`, then dynamic registration (RFC 7591, with
//!   `application_type` and `grant_types` including `refresh_token`), else
//!   [`AuthError::NoClientIdentity`]. The token endpoint is authenticated with
//!   `client_secret_basic`, `client_secret_post` or `none`: the registered method, else the best
//!   the server lists for the credentials held.
//! - **Machine to machine**: [`Grant::ClientCredentials`] uses the `client_credentials` grant
//!   with pre-registered credentials instead of a user agent. A known token endpoint
//!   ([`OAuthConfig::token_endpoint`]) skips discovery, [`OAuthConfig::scopes`] and
//!   [`OAuthConfig::resource`] fix what is asked for, and [`OAuthConfig::eager`] gets a token
//!   before a request would go without one (a gateway's upstream credentials: no request goes
//!   out bare, an expired token is replaced before the server refuses it).
//! - **Token exchange** (RFC 8693): [`OAuthProvider::exchange_token`] exchanges a subject token
//!   (a caller's) for a token for the provider's resource, with the same discovery and client
//!   authentication; the tokens are returned, not stored, since they belong to one subject.
//! - **Per-request credentials.** An [`Auth`] attached to one request
//!   (`RequestOptions::extension`) replaces the connection's for that request in the
//!   Streamable HTTP client ([`super::client`]); the WebSocket and legacy SSE clients
//!   authorize their connection once and ignore it.
//! - **The user agent is a trait**, [`Authorizer`]: given the authorization URL it returns the
//!   redirect's query. [`HeadlessAuthorizer`] fetches the URL without following redirects and
//!   reads `Location` (a server that approves at once, like the conformance suite's);
//!   [`LoopbackAuthorizer`] shows the URL to a human and waits on
//!   `http://127.0.0.1:<port>/callback`.
//! - **Tokens are stored through a trait**, [`TokenStore`], keyed by the resource's canonical
//!   URL; [`MemoryTokenStore`] is the default.
//! - **Bounded and quiet.** Every request of the flow has [`OAuthConfig::timeout`] and reads at
//!   most [`OAuthConfig::max_body_bytes`]; errors are [`AuthError`], never a panic. Tokens,
//!   secrets, codes and verifiers are never logged, and their `Debug` output is redacted.
//! - **WebSocket and legacy SSE.** [`super::ws_client`] opens its socket with [`Auth::initial`]
//!   (the stored token, or one from a flow run before connecting, discovered from the
//!   well-known URLs since there is no challenge yet); a socket has no later requests to
//!   renew. [`super::legacy_sse_client`] does the same for its stream and sends every POST
//!   through [`send`]. Their providers are built for the endpoint's `http://` URL.
//! - **TLS** with the crate's `tls` feature ([`super::tls`]; extra roots in
//!   [`OAuthConfig::tls`] and [`HeadlessAuthorizer::with_tls`]). Without it the OAuth client
//!   speaks `http://` only, and an `https://` authorization server fails with a transport error
//!   naming the URL.

mod authorizer;
mod challenge;
mod discovery;
mod oauth;
mod pkce;
mod store;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use reqwest::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response, StatusCode};

pub use self::authorizer::{AuthorizationResponse, Authorizer, HeadlessAuthorizer, LoopbackAuthorizer};
pub use self::challenge::BearerChallenge;
pub use self::discovery::{AuthorizationServerMetadata, ProtectedResourceMetadata};
pub use self::oauth::{ClientCredentials, Grant, OAuthConfig, OAuthProvider, TokenEndpointAuth, TokenExchange};
pub use self::store::{MemoryTokenStore, TokenStore, Tokens};

/// A boxed, sendable future: what the object-safe traits of this module return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How many times [`send`] retries one request after `403 insufficient_scope`.
pub const MAX_STEP_UPS: u32 = 2;

/// Why authorizing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// A URL (the server's, or one from metadata) is not usable.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An HTTP request of the flow failed (connection, timeout, TLS).
    #[error("{step}: {source}")]
    Http {
        /// What the request was for, and its URL.
        step: String,
        /// The failure.
        #[source]
        source: reqwest::Error,
    },
    /// An answer of the flow was not what its step expects.
    #[error("{step}: {reason}")]
    BadResponse {
        /// What the request was for, and its URL.
        step: String,
        /// What is wrong with the answer.
        reason: String,
    },
    /// No protected-resource metadata was found at any of the URLs tried.
    #[error("no protected resource metadata for {server} (tried {tried})")]
    NoResourceMetadata {
        /// The MCP endpoint.
        server: String,
        /// The URLs tried, comma-separated.
        tried: String,
    },
    /// The protected-resource metadata names another resource than the server.
    #[error("the protected resource metadata is for {resource:?}, not for {server}")]
    ResourceMismatch {
        /// The metadata's `resource`.
        resource: String,
        /// The MCP endpoint.
        server: String,
    },
    /// The protected-resource metadata lists no authorization server.
    #[error("the protected resource metadata of {server} lists no authorization server")]
    NoAuthorizationServer {
        /// The MCP endpoint.
        server: String,
    },
    /// No authorization server metadata was found at any of the URLs tried.
    #[error("no authorization server metadata for issuer {issuer} (tried {tried})")]
    NoServerMetadata {
        /// The issuer identifier.
        issuer: String,
        /// The URLs tried, comma-separated.
        tried: String,
    },
    /// The authorization server metadata's `issuer` is not the identifier it was looked up by.
    #[error("the authorization server metadata at {url} has issuer {found:?}, expected {expected:?}")]
    IssuerMismatch {
        /// Where the metadata was read.
        url: String,
        /// The identifier the URL was built from.
        expected: String,
        /// The document's `issuer`.
        found: String,
    },
    /// The authorization server metadata lacks what the flow needs.
    #[error("the authorization server {issuer} {reason}")]
    ServerMetadata {
        /// The issuer.
        issuer: String,
        /// What is missing.
        reason: String,
    },
    /// The authorization server does not advertise PKCE with `S256`.
    #[error("the authorization server {issuer} does not advertise PKCE S256 (code_challenge_methods_supported)")]
    PkceUnsupported {
        /// The issuer.
        issuer: String,
    },
    /// No way to obtain a client identity at this authorization server.
    #[error(
        "no client identity for {issuer}: no pre-registered credentials, no client ID metadata document it accepts, and no dynamic registration"
    )]
    NoClientIdentity {
        /// The issuer.
        issuer: String,
    },
    /// Pre-registered credentials belong to another authorization server.
    #[error("the pre-registered client credentials belong to {bound}, not to {issuer}")]
    CredentialsBoundElsewhere {
        /// The issuer the credentials belong to.
        bound: String,
        /// The issuer the resource now names.
        issuer: String,
    },
    /// The user agent step failed.
    #[error("authorization in the user agent: {0}")]
    Authorizer(String),
    /// The authorization response's `state` is missing or not the one sent.
    #[error("the authorization response's state does not match the request's")]
    StateMismatch,
    /// The authorization response's `iss` is missing (but required) or not the issuer.
    #[error("the authorization response's iss {found:?} is not the issuer {expected:?} (RFC 9207)")]
    IssMismatch {
        /// The recorded issuer.
        expected: String,
        /// The `iss` received (`None`: absent although advertised).
        found: Option<String>,
    },
    /// The authorization server refused the authorization request.
    #[error("the authorization server refused: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Denied {
        /// The `error` code.
        error: String,
        /// The `error_description`, if any.
        description: Option<String>,
    },
    /// The token endpoint (or registration endpoint) answered with an OAuth error.
    #[error("{step}: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Endpoint {
        /// Which request, and its URL.
        step: String,
        /// The `error` code (or the HTTP status when the body has none).
        error: String,
        /// The `error_description`, if any.
        description: Option<String>,
    },
    /// The configuration cannot work (client credentials grant without a secret, say).
    #[error("OAuth configuration: {0}")]
    Config(String),
    /// The token store failed.
    #[error("token store: {0}")]
    Store(String),
}

/// A `401`/`403` answer, as an [`AuthProvider`] is told of it.
#[derive(Debug, Clone)]
pub struct Challenge {
    /// `401` or `403`.
    pub status: StatusCode,
    /// The `Bearer` challenge of `WWW-Authenticate`, if the answer had one.
    pub bearer: Option<BearerChallenge>,
    /// The `Authorization` value the refused request carried (`None`: it had none).
    pub sent: Option<HeaderValue>,
}

impl Challenge {
    /// Whether this is a `403` with `error="insufficient_scope"`.
    pub fn is_insufficient_scope(&self) -> bool {
        self.status == StatusCode::FORBIDDEN
            && self.bearer.as_ref().and_then(|b| b.error()) == Some("insufficient_scope")
    }
}

/// What gives the HTTP clients their `Authorization` header, and renews it when refused.
pub trait AuthProvider: Send + Sync + 'static {
    /// The `Authorization` value of the next request; `None` sends none.
    fn authorization(&self) -> BoxFuture<'_, Result<Option<HeaderValue>, AuthError>>;

    /// A request was refused with `401`, or `403 insufficient_scope`: renew the credentials
    /// if that can help. `Ok(true)` sends the request again (with [`Self::authorization`]'s new
    /// value); `Ok(false)` gives the caller the refusal.
    fn challenge<'a>(&'a self, challenge: &'a Challenge) -> BoxFuture<'a, Result<bool, AuthError>>;
}

/// A shared [`AuthProvider`], as the client configs hold it.
#[derive(Clone)]
pub struct Auth(Arc<dyn AuthProvider>);

impl Auth {
    /// Wraps a provider.
    pub fn new(provider: impl AuthProvider) -> Self {
        Self(Arc::new(provider))
    }

    /// Wraps a provider that is shared already.
    pub fn from_arc(provider: Arc<dyn AuthProvider>) -> Self {
        Self(provider)
    }

    /// A fixed bearer token (never renewed).
    pub fn bearer(token: impl Into<String>) -> Result<Self, AuthError> {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", token.into()))
            .map_err(|_| AuthError::Config("the bearer token is not a valid header value".into()))?;
        value.set_sensitive(true);
        Ok(Self::new(StaticToken(value)))
    }

    /// The provider.
    pub fn provider(&self) -> &dyn AuthProvider {
        &*self.0
    }

    /// The `Authorization` value to open a connection with (WebSocket, legacy SSE): the
    /// stored one, or, when there is none yet, the one a flow started without a challenge
    /// gives (discovery from the well-known URLs).
    pub async fn initial(&self) -> Result<Option<HeaderValue>, AuthError> {
        if let Some(value) = self.0.authorization().await? {
            return Ok(Some(value));
        }
        let challenge = Challenge {
            status: StatusCode::UNAUTHORIZED,
            bearer: None,
            sent: None,
        };
        if self.0.challenge(&challenge).await? {
            self.0.authorization().await
        } else {
            Ok(None)
        }
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth(..)")
    }
}

/// A fixed `Authorization` value.
struct StaticToken(HeaderValue);

impl AuthProvider for StaticToken {
    fn authorization(&self) -> BoxFuture<'_, Result<Option<HeaderValue>, AuthError>> {
        Box::pin(async move { Ok(Some(self.0.clone())) })
    }

    fn challenge<'a>(&'a self, _challenge: &'a Challenge) -> BoxFuture<'a, Result<bool, AuthError>> {
        Box::pin(async { Ok(false) })
    }
}

/// Why [`send`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The request itself failed.
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    /// Authorizing failed.
    #[error("authorization failed: {0}")]
    Auth(#[from] AuthError),
    /// The request's body cannot be sent twice (a stream).
    #[error("the request cannot be retried after authorizing (its body is a stream)")]
    NotRetryable,
}

/// Sends `request` with the provider's `Authorization` (if any provider), renewing it and
/// sending again after a `401` (once) or a `403 insufficient_scope` (at most [`MAX_STEP_UPS`]
/// times) when the provider says that helps. The last answer is returned, refusals included.
pub async fn send(auth: Option<&Auth>, request: RequestBuilder) -> Result<Response, SendError> {
    let Some(auth) = auth else {
        return Ok(request.send().await?);
    };
    let mut retried_401 = false;
    let mut step_ups = 0;
    loop {
        let value = auth.0.authorization().await?;
        let mut attempt = request.try_clone().ok_or(SendError::NotRetryable)?;
        if let Some(value) = &value {
            attempt = attempt.header(AUTHORIZATION, value.clone());
        }
        let response = attempt.send().await?;
        let status = response.status();
        let challenge = Challenge {
            status,
            bearer: BearerChallenge::from_headers(response.headers().get_all(WWW_AUTHENTICATE).iter()),
            sent: value,
        };
        let again = match status {
            StatusCode::UNAUTHORIZED if !retried_401 => {
                retried_401 = true;
                true
            }
            StatusCode::FORBIDDEN if challenge.is_insufficient_scope() && step_ups < MAX_STEP_UPS => {
                step_ups += 1;
                true
            }
            _ => false,
        };
        if !again || !auth.0.challenge(&challenge).await? {
            return Ok(response);
        }
        tracing::debug!(%status, "authorization renewed; the request is sent again");
    }
}
