//! [`OAuthProvider`]: the OAuth 2.1 client of the MCP authorization spec, an [`AuthProvider`]
//! (discovery, client identity, authorization code with PKCE or client credentials, refresh,
//! step-up, authorization server migration). The decisions are in the module above.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{RequestBuilder, StatusCode};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Mutex;
use url::Url;
use url::form_urlencoded::Serializer;

use super::authorizer::{AuthorizationResponse, Authorizer};
use super::discovery::{
    AuthorizationServerMetadata, Http, Lookup, ProtectedResourceMetadata, canonical, origin, resource_matches,
    resource_metadata_urls, server_metadata_urls,
};
use super::pkce::{Pkce, random};
use super::store::{MemoryTokenStore, TokenStore, Tokens};
use super::{AuthError, AuthProvider, BoxFuture, Challenge};

/// How the client gets its tokens.
#[derive(Clone)]
pub enum Grant {
    /// Authorization code with PKCE, through a user agent.
    AuthorizationCode(Arc<dyn Authorizer>),
    /// Client credentials (machine to machine), with [`OAuthConfig::client`].
    ClientCredentials,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AuthorizationCode(a) => write!(f, "AuthorizationCode(redirect_uri: {:?})", a.redirect_uri()),
            Self::ClientCredentials => f.write_str("ClientCredentials"),
        }
    }
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenEndpointAuth {
    /// HTTP Basic with the client id and secret.
    ClientSecretBasic,
    /// The id and secret in the form body.
    ClientSecretPost,
    /// A public client: `client_id` in the body, no secret.
    None,
}

impl TokenEndpointAuth {
    fn name(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::None => "none",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
            "none" => Some(Self::None),
            _ => None,
        }
    }
}

/// A client's identity at one authorization server. `Debug` shows no secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    /// The client id.
    pub client_id: String,
    /// The client secret, for a confidential client.
    pub client_secret: Option<String>,
    /// The token endpoint authentication method; `None` picks one from the server's metadata.
    pub auth_method: Option<TokenEndpointAuth>,
    /// The issuer these credentials belong to; `None` binds them to the first one used.
    pub issuer: Option<String>,
}

impl ClientCredentials {
    /// Credentials with an id and, for a confidential client, a secret.
    pub fn new(client_id: impl Into<String>, client_secret: Option<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret,
            auth_method: None,
            issuer: None,
        }
    }
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "<redacted>"))
            .field("auth_method", &self.auth_method)
            .field("issuer", &self.issuer)
            .finish()
    }
}

/// What a token exchange (RFC 8693, [`OAuthProvider::exchange_token`]) exchanges, and for
/// what. `Debug` shows no token.
#[derive(Clone)]
#[non_exhaustive]
pub struct TokenExchange {
    /// The token exchanged (the subject token).
    pub subject_token: String,
    /// Its type (default [`TokenExchange::ACCESS_TOKEN`]).
    pub subject_token_type: String,
    /// The `audience` parameter: the logical name of the service the token is for, if any.
    pub audience: Option<String>,
    /// Scopes asked for (besides [`OAuthConfig::scopes`]).
    pub scopes: Vec<String>,
    /// The type of token wanted (default [`TokenExchange::ACCESS_TOKEN`]).
    pub requested_token_type: Option<String>,
}

impl TokenExchange {
    /// The grant type of a token exchange.
    pub const GRANT_TYPE: &'static str = "urn:ietf:params:oauth:grant-type:token-exchange";
    /// The token type of an OAuth access token.
    pub const ACCESS_TOKEN: &'static str = "urn:ietf:params:oauth:token-type:access_token";

    /// An exchange of the access token `subject_token` for an access token.
    pub fn access_token(subject_token: impl Into<String>) -> Self {
        Self {
            subject_token: subject_token.into(),
            subject_token_type: Self::ACCESS_TOKEN.into(),
            audience: None,
            scopes: Vec::new(),
            requested_token_type: None,
        }
    }

    /// With the `audience` parameter.
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Asking for `scopes`.
    pub fn with_scopes(mut self, scopes: Vec<String>) -> Self {
        self.scopes = scopes;
        self
    }
}

impl std::fmt::Debug for TokenExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenExchange")
            .field("subject_token", &"<redacted>")
            .field("subject_token_type", &self.subject_token_type)
            .field("audience", &self.audience)
            .field("scopes", &self.scopes)
            .field("requested_token_type", &self.requested_token_type)
            .finish()
    }
}

/// How an [`OAuthProvider`] behaves.
#[derive(Clone)]
#[non_exhaustive]
pub struct OAuthConfig {
    /// `client_name` in registrations.
    pub client_name: String,
    /// How tokens are obtained.
    pub grant: Grant,
    /// Pre-registered credentials (first in the spec's order).
    pub client: Option<ClientCredentials>,
    /// The URL of this client's Client ID Metadata Document (an `https` URL with a path), used
    /// as `client_id` where the server advertises `client_id_metadata_document_supported`.
    pub client_metadata_url: Option<String>,
    /// Whether to register dynamically (RFC 7591) when nothing else applies (default `true`).
    pub dynamic_registration: bool,
    /// `application_type` in registrations (default `"native"`).
    pub application_type: String,
    /// Whether to ask for `offline_access` where the server lists it (default `true`).
    pub offline_access: bool,
    /// The 2025-03-26 rules when a server has no protected resource metadata: the
    /// authorization server at the server's origin, with default endpoints when it publishes no
    /// metadata (default `false`).
    pub legacy_discovery: bool,
    /// Where tokens are kept (default: in memory).
    pub store: Arc<dyn TokenStore>,
    /// The bound on each HTTP request of the flow (default 30 s).
    pub timeout: Duration,
    /// The longest answer read from the authorization server, in bytes (default 1 MiB).
    pub max_body_bytes: usize,
    /// How long before its expiry a token is refreshed (default 30 s).
    pub refresh_margin: Duration,
    /// Roots trusted for `https://` authorization servers besides the platform's
    /// ([`crate::http::tls`]).
    pub tls: crate::http::tls::TlsConfig,
    /// The token endpoint, when it is known in advance (default none): no discovery is made
    /// (no protected resource metadata, no authorization server metadata), and tokens are
    /// recorded as issued by this URL. For grants without a user agent (client credentials,
    /// token exchange).
    pub token_endpoint: Option<String>,
    /// The RFC 8707 `resource` parameter (default: the protected resource metadata's
    /// `resource`, else the endpoint's canonical URL).
    pub resource: Option<String>,
    /// Scopes always asked for (default none: the challenge's, else the resource metadata's
    /// `scopes_supported`, as the spec says). Scopes a challenge names are added to them.
    pub scopes: Option<Vec<String>>,
    /// Obtain a token before a request that would go without one, rather than after the
    /// server refused it with `401` (default `false`). Discovery then starts from the
    /// well-known URLs, with no challenge to name scopes. Meant for grants without a user
    /// agent: an expired token is so replaced before it is refused, and no request goes out
    /// bare.
    pub eager: bool,
}

impl std::fmt::Debug for OAuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthConfig")
            .field("client_name", &self.client_name)
            .field("grant", &self.grant)
            .field("client", &self.client)
            .field("client_metadata_url", &self.client_metadata_url)
            .field("dynamic_registration", &self.dynamic_registration)
            .field("offline_access", &self.offline_access)
            .field("legacy_discovery", &self.legacy_discovery)
            .field("token_endpoint", &self.token_endpoint)
            .field("resource", &self.resource)
            .field("scopes", &self.scopes)
            .field("eager", &self.eager)
            .finish_non_exhaustive()
    }
}

impl OAuthConfig {
    /// The authorization code flow through `authorizer`, with the defaults.
    pub fn authorization_code(client_name: impl Into<String>, authorizer: Arc<dyn Authorizer>) -> Self {
        Self::new(client_name, Grant::AuthorizationCode(authorizer))
    }

    /// The client credentials grant with pre-registered `client`.
    pub fn client_credentials(client_name: impl Into<String>, client: ClientCredentials) -> Self {
        let mut config = Self::new(client_name, Grant::ClientCredentials);
        config.client = Some(client);
        config
    }

    fn new(client_name: impl Into<String>, grant: Grant) -> Self {
        Self {
            client_name: client_name.into(),
            grant,
            client: None,
            client_metadata_url: None,
            dynamic_registration: true,
            application_type: "native".into(),
            offline_access: true,
            legacy_discovery: false,
            store: Arc::new(MemoryTokenStore::new()),
            timeout: Duration::from_secs(30),
            max_body_bytes: 1024 * 1024,
            refresh_margin: Duration::from_secs(30),
            tls: crate::http::tls::TlsConfig::default(),
            token_endpoint: None,
            resource: None,
            scopes: None,
            eager: false,
        }
    }
}

/// What the provider learned and holds between flows.
#[derive(Default)]
struct State {
    /// Authorization server metadata, by issuer.
    servers: HashMap<String, AuthorizationServerMetadata>,
    /// Dynamically registered clients, by issuer.
    registered: HashMap<String, ClientCredentials>,
    /// The issuer pre-registered credentials without one were first used with.
    pre_registered_issuer: Option<String>,
    /// The resource scopes asked for so far (the step-up union).
    requested: BTreeSet<String>,
    /// How many authorization requests were made (for tests and diagnostics).
    authorizations: u64,
    /// The `resource` parameter of the last authorization: refreshes send the same.
    resource_id: Option<String>,
    /// What token exchanges use, discovered once.
    exchange: Option<Resource>,
}

/// The resource as discovered: its metadata (absent under the 2025-03-26 rules, and with a
/// configured token endpoint) and the authorization server chosen.
#[derive(Clone)]
struct Resource {
    metadata: Option<ProtectedResourceMetadata>,
    issuer: String,
    server: AuthorizationServerMetadata,
}

/// The OAuth 2.1 client of the MCP authorization spec, for one MCP endpoint.
pub struct OAuthProvider {
    server: Url,
    /// The key of the tokens in the store: the endpoint's canonical URL.
    key: String,
    config: OAuthConfig,
    http: Http,
    state: Mutex<State>,
}

impl std::fmt::Debug for OAuthProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthProvider")
            .field("server", &self.key)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A token endpoint's answer (RFC 6749 §5.1).
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

/// A registration endpoint's answer (RFC 7591 §3.2.1).
#[derive(Deserialize)]
struct RegistrationResponse {
    client_id: String,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
}

fn bearer(token: &str) -> Result<HeaderValue, AuthError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| AuthError::BadResponse {
        step: "token response".into(),
        reason: "the access token is not a valid header value".into(),
    })?;
    value.set_sensitive(true);
    Ok(value)
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut serializer = Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

fn join(scopes: &BTreeSet<String>) -> String {
    scopes.iter().map(String::as_str).collect::<Vec<_>>().join(" ")
}

impl OAuthProvider {
    /// A provider for the MCP endpoint at `server` (an `http://` URL).
    pub fn new(server: &str, config: OAuthConfig) -> Result<Self, AuthError> {
        let parsed = Url::parse(server).map_err(|e| AuthError::InvalidUrl {
            url: server.to_string(),
            reason: e.to_string(),
        })?;
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(AuthError::InvalidUrl {
                url: server.to_string(),
                reason: "no host".into(),
            });
        }
        if let Some(url) = &config.client_metadata_url {
            // CIMD: an https URL with a path (the document is served there, not by this client).
            let parsed = Url::parse(url).map_err(|e| AuthError::InvalidUrl {
                url: url.clone(),
                reason: e.to_string(),
            })?;
            if parsed.scheme() != "https" || parsed.path().len() <= 1 {
                return Err(AuthError::InvalidUrl {
                    url: url.clone(),
                    reason: "a client ID metadata document URL is an https URL with a path".into(),
                });
            }
        }
        let client = crate::http::tls::reqwest_builder(&config.tls)
            .map_err(|e| AuthError::Config(format!("TLS: {e}")))?
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()
            .map_err(|e| AuthError::Config(format!("building the HTTP client: {e}")))?;
        Ok(Self {
            key: canonical(&parsed),
            server: parsed,
            http: Http {
                client,
                max_body: config.max_body_bytes,
            },
            config,
            state: Mutex::default(),
        })
    }

    /// The endpoint's canonical URL: the key of its tokens in the store.
    pub fn resource(&self) -> &str {
        &self.key
    }

    /// How many authorization requests (user-agent visits or client credentials grants) this
    /// provider made.
    pub async fn authorizations(&self) -> u64 {
        self.state.lock().await.authorizations
    }

    /// Runs the flow now, without waiting for a `401` (discovery from the well-known URLs).
    pub async fn authorize(&self) -> Result<(), AuthError> {
        let mut state = self.state.lock().await;
        self.reauthorize(&mut state, None, None, true).await
    }

    /// The RFC 8707 `resource` parameter for `resource`: the configured one, else its
    /// metadata's, else the endpoint's canonical URL.
    fn resource_id(&self, resource: &Resource) -> String {
        if let Some(configured) = &self.config.resource {
            return configured.clone();
        }
        resource
            .metadata
            .as_ref()
            .map_or_else(|| self.key.clone(), |m| m.resource.clone())
    }

    /// Exchanges a token (RFC 8693) at the token endpoint — [`OAuthConfig::token_endpoint`],
    /// else the one discovered for this endpoint (once) — for an access token for this
    /// resource, authenticating with the pre-registered [`OAuthConfig::client`]. The tokens are
    /// returned, not stored: an exchange is for one subject, and keeping tokens per subject is
    /// the caller's business. Exchanges run concurrently (only discovery holds the provider's
    /// lock).
    pub async fn exchange_token(&self, request: &TokenExchange) -> Result<Tokens, AuthError> {
        let (resource, client) = {
            let mut state = self.state.lock().await;
            let resource = match &state.exchange {
                Some(resource) => resource.clone(),
                None => {
                    let resource = self.discover(&mut state, None, None).await?;
                    state.exchange = Some(resource.clone());
                    resource
                }
            };
            let client = match &self.config.client {
                Some(_) => self.client_identity(&mut state, &resource).await?,
                None => {
                    return Err(AuthError::Config(
                        "a token exchange needs pre-registered credentials".into(),
                    ));
                }
            };
            (resource, client)
        };
        let resource_id = self.resource_id(&resource);
        let mut scopes: BTreeSet<String> = request.scopes.iter().cloned().collect();
        scopes.extend(self.config.scopes.iter().flatten().cloned());
        let scope = join(&scopes);
        let requested = request
            .requested_token_type
            .as_deref()
            .unwrap_or(TokenExchange::ACCESS_TOKEN);
        let mut pairs = vec![
            ("grant_type", TokenExchange::GRANT_TYPE),
            ("subject_token", request.subject_token.as_str()),
            ("subject_token_type", request.subject_token_type.as_str()),
            ("requested_token_type", requested),
            ("resource", resource_id.as_str()),
        ];
        if let Some(audience) = &request.audience {
            pairs.push(("audience", audience.as_str()));
        }
        if !scope.is_empty() {
            pairs.push(("scope", scope.as_str()));
        }
        let http = self.token_request(&resource.server, &client, &mut pairs)?;
        let step = format!(
            "token exchange ({})",
            resource.server.token_endpoint.as_deref().unwrap_or("?")
        );
        let mut tokens = self.exchange(&step, http, &resource.issuer, &scopes, None).await?;
        // A token for one subject is exchanged again, not refreshed.
        tokens.refresh_token = None;
        Ok(tokens)
    }

    /// The stored tokens, refreshed first when they expire within the margin.
    async fn current(&self, state: &mut State) -> Result<Option<Tokens>, AuthError> {
        let Some(tokens) = self.config.store.load(&self.key).await? else {
            return Ok(None);
        };
        if !tokens.expires_within(self.config.refresh_margin) {
            return Ok(Some(tokens));
        }
        if tokens.refresh_token.is_some()
            && let Some(server) = state.servers.get(&tokens.issuer).cloned()
        {
            let resource = state.resource_id.clone().unwrap_or_else(|| self.key.clone());
            match self.refresh(state, &server, &tokens, &resource).await {
                Ok(fresh) => return Ok(Some(fresh)),
                Err(e) => tracing::debug!(error = %e, "refreshing an expired token failed"),
            }
        }
        self.config.store.clear(&self.key).await?;
        Ok(None)
    }

    /// Discovery, then a token by refresh (when allowed and possible) or by the grant.
    async fn reauthorize(
        &self,
        state: &mut State,
        challenge: Option<&Challenge>,
        held: Option<&Tokens>,
        allow_refresh: bool,
    ) -> Result<(), AuthError> {
        let bearer = challenge.and_then(|c| c.bearer.as_ref());
        let resource = self
            .discover(state, bearer.and_then(|b| b.resource_metadata()), held)
            .await?;
        let resource_id = self.resource_id(&resource);
        state.resource_id = Some(resource_id.clone());
        if let Some(held) = held {
            if held.issuer != resource.issuer {
                tracing::debug!(from = %held.issuer, to = %resource.issuer, "the resource names another authorization server; its tokens are dropped");
                self.config.store.clear(&self.key).await?;
            } else if allow_refresh && held.refresh_token.is_some() {
                match self.refresh(state, &resource.server, held, &resource_id).await {
                    Ok(_) => return Ok(()),
                    Err(e) => tracing::debug!(error = %e, "refreshing failed; authorizing anew"),
                }
            }
        }
        // Scope selection: the challenge, else the metadata's scopes_supported, else none; plus
        // whatever was asked for before.
        let configured = self.config.scopes.as_deref().unwrap_or_default();
        let named = bearer.and_then(|b| b.scopes()).or_else(|| {
            let metadata = resource.metadata.as_ref()?;
            metadata
                .scopes_supported
                .clone()
                .filter(|_| self.config.scopes.is_none())
        });
        let mut scopes = state.requested.clone();
        scopes.extend(configured.iter().cloned());
        scopes.extend(named.unwrap_or_default().into_iter().filter(|s| s != "offline_access"));
        state.requested = scopes.clone();
        let client = self.client_identity(state, &resource).await?;
        state.authorizations += 1;
        let tokens = match &self.config.grant {
            Grant::AuthorizationCode(authorizer) => {
                self.authorization_code(authorizer.as_ref(), &resource, &client, &scopes, &resource_id)
                    .await?
            }
            Grant::ClientCredentials => {
                self.client_credentials(&resource, &client, &scopes, &resource_id)
                    .await?
            }
        };
        self.config.store.save(&self.key, tokens).await
    }

    /// Protected resource metadata (or the 2025-03-26 fallback) and the authorization server's
    /// metadata.
    async fn discover(
        &self,
        state: &mut State,
        from_challenge: Option<&str>,
        held: Option<&Tokens>,
    ) -> Result<Resource, AuthError> {
        if let Some(endpoint) = &self.config.token_endpoint {
            return Ok(Resource {
                metadata: None,
                issuer: endpoint.clone(),
                server: AuthorizationServerMetadata::token_endpoint_only(endpoint),
            });
        }
        let mut urls = Vec::new();
        if let Some(url) = from_challenge {
            urls.push(self.server.join(url).map_err(|e| AuthError::InvalidUrl {
                url: url.to_string(),
                reason: e.to_string(),
            })?);
        }
        for url in resource_metadata_urls(&self.server) {
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
        let mut tried = Vec::new();
        let mut metadata = None;
        for url in &urls {
            match self
                .http
                .get_json::<ProtectedResourceMetadata>("protected resource metadata", url)
                .await?
            {
                Lookup::Found(found) => {
                    metadata = Some(found);
                    break;
                }
                Lookup::Missing(why) => {
                    tracing::debug!(%url, %why, "no protected resource metadata here");
                    tried.push(url.to_string());
                }
            }
        }
        let Some(metadata) = metadata else {
            if self.config.legacy_discovery {
                let issuer = origin(&self.server);
                let server = self.server_metadata(state, &issuer, true).await?;
                return Ok(Resource {
                    metadata: None,
                    issuer,
                    server,
                });
            }
            return Err(AuthError::NoResourceMetadata {
                server: self.key.clone(),
                tried: tried.join(", "),
            });
        };
        if !resource_matches(&self.server, &metadata.resource) {
            return Err(AuthError::ResourceMismatch {
                resource: metadata.resource,
                server: self.key.clone(),
            });
        }
        // The server in use while the resource still lists it; else the first listed.
        let issuer = held
            .map(|t| &t.issuer)
            .filter(|i| metadata.authorization_servers.contains(i))
            .or_else(|| metadata.authorization_servers.first())
            .cloned()
            .ok_or_else(|| AuthError::NoAuthorizationServer {
                server: self.key.clone(),
            })?;
        let server = self.server_metadata(state, &issuer, false).await?;
        Ok(Resource {
            metadata: Some(metadata),
            issuer,
            server,
        })
    }

    /// The metadata of `issuer`, cached; with `defaults`, the 2025-03-26 default endpoints
    /// when it publishes none.
    async fn server_metadata(
        &self,
        state: &mut State,
        issuer: &str,
        defaults: bool,
    ) -> Result<AuthorizationServerMetadata, AuthError> {
        if let Some(found) = state.servers.get(issuer) {
            return Ok(found.clone());
        }
        let mut tried = Vec::new();
        let mut found = None;
        for url in server_metadata_urls(issuer)? {
            match self
                .http
                .get_json::<AuthorizationServerMetadata>("authorization server metadata", &url)
                .await?
            {
                Lookup::Found(metadata) => {
                    // RFC 8414 §3.3: identical to the identifier the URL was built from.
                    if metadata.issuer != issuer {
                        return Err(AuthError::IssuerMismatch {
                            url: url.to_string(),
                            expected: issuer.to_string(),
                            found: metadata.issuer,
                        });
                    }
                    found = Some(metadata);
                    break;
                }
                Lookup::Missing(why) => {
                    tracing::debug!(%url, %why, "no authorization server metadata here");
                    tried.push(url.to_string());
                }
            }
        }
        let metadata = match found {
            Some(metadata) => metadata,
            None if defaults => AuthorizationServerMetadata::defaults(issuer),
            None => {
                return Err(AuthError::NoServerMetadata {
                    issuer: issuer.to_string(),
                    tried: tried.join(", "),
                });
            }
        };
        if metadata.token_endpoint.is_none() {
            return Err(AuthError::ServerMetadata {
                issuer: issuer.to_string(),
                reason: "has no token_endpoint".into(),
            });
        }
        state.servers.insert(issuer.to_string(), metadata.clone());
        Ok(metadata)
    }

    /// The client's identity at the resource's authorization server, in the spec's order.
    async fn client_identity(&self, state: &mut State, resource: &Resource) -> Result<ClientCredentials, AuthError> {
        let issuer = &resource.issuer;
        if let Some(client) = &self.config.client {
            let bound = client.issuer.clone().or_else(|| state.pre_registered_issuer.clone());
            match bound {
                Some(bound) if bound != *issuer => {
                    return Err(AuthError::CredentialsBoundElsewhere {
                        bound,
                        issuer: issuer.clone(),
                    });
                }
                Some(_) => {}
                None => state.pre_registered_issuer = Some(issuer.clone()),
            }
            return Ok(client.clone());
        }
        if matches!(self.config.grant, Grant::ClientCredentials) {
            return Err(AuthError::Config(
                "the client credentials grant needs pre-registered credentials".into(),
            ));
        }
        if let Some(url) = &self.config.client_metadata_url
            && resource.server.client_id_metadata_document_supported == Some(true)
        {
            return Ok(ClientCredentials {
                client_id: url.clone(),
                client_secret: None,
                auth_method: Some(TokenEndpointAuth::None),
                issuer: Some(issuer.clone()),
            });
        }
        if let Some(client) = state.registered.get(issuer) {
            return Ok(client.clone());
        }
        if let (true, Some(endpoint)) = (
            self.config.dynamic_registration,
            resource.server.registration_endpoint.as_deref(),
        ) {
            let client = self.register(&resource.server, endpoint).await?;
            state.registered.insert(issuer.clone(), client.clone());
            return Ok(client);
        }
        Err(AuthError::NoClientIdentity { issuer: issuer.clone() })
    }

    /// Dynamic client registration (RFC 7591).
    async fn register(
        &self,
        server: &AuthorizationServerMetadata,
        endpoint: &str,
    ) -> Result<ClientCredentials, AuthError> {
        let Grant::AuthorizationCode(authorizer) = &self.config.grant else {
            return Err(AuthError::Config(
                "dynamic registration is for the authorization code grant".into(),
            ));
        };
        let supported = server.token_endpoint_auth_methods_supported.as_deref().unwrap_or(&[]);
        let method = ["none", "client_secret_basic", "client_secret_post"]
            .into_iter()
            .find(|m| supported.iter().any(|s| s == m))
            .unwrap_or("none");
        let body = json!({
            "client_name": self.config.client_name,
            "redirect_uris": [authorizer.redirect_uri()],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": method,
            "application_type": self.config.application_type,
        });
        let step = format!("client registration ({endpoint})");
        let request = self
            .http
            .client
            .post(endpoint)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .body(body.to_string());
        let registered: RegistrationResponse = self.http.json_answer(&step, request).await?;
        let auth_method = registered
            .token_endpoint_auth_method
            .as_deref()
            .and_then(TokenEndpointAuth::from_name)
            .or_else(|| TokenEndpointAuth::from_name(method));
        tracing::debug!(issuer = %server.issuer, client_id = %registered.client_id, "registered");
        Ok(ClientCredentials {
            client_id: registered.client_id,
            client_secret: registered.client_secret,
            auth_method,
            issuer: Some(server.issuer.clone()),
        })
    }

    /// The authorization code flow: PKCE, the user agent, `state` and `iss`, the exchange.
    async fn authorization_code(
        &self,
        authorizer: &dyn Authorizer,
        resource: &Resource,
        client: &ClientCredentials,
        scopes: &BTreeSet<String>,
        resource_id: &str,
    ) -> Result<Tokens, AuthError> {
        let server = &resource.server;
        let issuer = &resource.issuer;
        if !server
            .code_challenge_methods_supported
            .as_ref()
            .is_some_and(|m| m.iter().any(|m| m == "S256"))
        {
            return Err(AuthError::PkceUnsupported { issuer: issuer.clone() });
        }
        let endpoint = server
            .authorization_endpoint
            .as_deref()
            .ok_or_else(|| AuthError::ServerMetadata {
                issuer: issuer.clone(),
                reason: "has no authorization_endpoint".into(),
            })?;
        let mut url = Url::parse(endpoint).map_err(|e| AuthError::InvalidUrl {
            url: endpoint.to_string(),
            reason: e.to_string(),
        })?;
        let pkce = Pkce::new()?;
        let state = random(32)?;
        let redirect_uri = authorizer.redirect_uri();
        let mut scope = scopes.clone();
        if self.config.offline_access && !scope.is_empty() && server.supports_scope("offline_access") {
            scope.insert("offline_access".into());
        }
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &client.client_id)
                .append_pair("redirect_uri", &redirect_uri)
                .append_pair("code_challenge", &pkce.challenge)
                .append_pair("code_challenge_method", "S256")
                .append_pair("state", &state)
                .append_pair("resource", resource_id);
            if !scope.is_empty() {
                query.append_pair("scope", &join(&scope));
            }
        }
        let response = authorizer.authorize(&url).await?;
        let code = check_response(&response, server, issuer, &state)?;
        let mut pairs = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri.as_str()),
            ("code_verifier", pkce.verifier.as_str()),
            ("resource", resource_id),
        ];
        let request = self.token_request(server, client, &mut pairs)?;
        self.exchange("token request", request, issuer, &scope, None).await
    }

    /// The client credentials grant.
    async fn client_credentials(
        &self,
        resource: &Resource,
        client: &ClientCredentials,
        scopes: &BTreeSet<String>,
        resource_id: &str,
    ) -> Result<Tokens, AuthError> {
        let scope = join(scopes);
        let mut pairs = vec![("grant_type", "client_credentials"), ("resource", resource_id)];
        if !scope.is_empty() {
            pairs.push(("scope", scope.as_str()));
        }
        let request = self.token_request(&resource.server, client, &mut pairs)?;
        self.exchange("client credentials grant", request, &resource.issuer, scopes, None)
            .await
    }

    /// The refresh token grant; the new tokens are stored.
    async fn refresh(
        &self,
        state: &mut State,
        server: &AuthorizationServerMetadata,
        held: &Tokens,
        resource_id: &str,
    ) -> Result<Tokens, AuthError> {
        let Some(refresh_token) = held.refresh_token.as_deref() else {
            return Err(AuthError::Config("no refresh token".into()));
        };
        let issuer = held.issuer.clone();
        let client = match (&self.config.client, state.registered.get(&issuer)) {
            (Some(client), _) => client.clone(),
            (None, Some(client)) => client.clone(),
            (None, None) => match &self.config.client_metadata_url {
                Some(url) if server.client_id_metadata_document_supported == Some(true) => {
                    ClientCredentials::new(url.clone(), None)
                }
                _ => return Err(AuthError::NoClientIdentity { issuer }),
            },
        };
        let mut pairs = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("resource", resource_id),
        ];
        let request = self.token_request(server, &client, &mut pairs)?;
        let scopes: BTreeSet<String> = held.scopes.iter().cloned().collect();
        let tokens = self
            .exchange("refresh", request, &issuer, &scopes, held.refresh_token.clone())
            .await?;
        self.config.store.save(&self.key, tokens.clone()).await?;
        Ok(tokens)
    }

    /// A POST to the token endpoint with the client's authentication.
    fn token_request<'a>(
        &self,
        server: &AuthorizationServerMetadata,
        client: &'a ClientCredentials,
        pairs: &mut Vec<(&'a str, &'a str)>,
    ) -> Result<RequestBuilder, AuthError> {
        let endpoint = server
            .token_endpoint
            .as_deref()
            .ok_or_else(|| AuthError::ServerMetadata {
                issuer: server.issuer.clone(),
                reason: "has no token_endpoint".into(),
            })?;
        let method = client.auth_method.unwrap_or_else(|| {
            let supported = server.token_endpoint_auth_methods_supported.as_deref();
            let lists = |m: &str| supported.is_some_and(|s| s.iter().any(|x| x == m));
            match (&client.client_secret, supported) {
                (None, _) => TokenEndpointAuth::None,
                // RFC 8414 §2: absent means client_secret_basic.
                (Some(_), None) => TokenEndpointAuth::ClientSecretBasic,
                (Some(_), Some(_)) if lists("client_secret_basic") => TokenEndpointAuth::ClientSecretBasic,
                (Some(_), Some(_)) if lists("client_secret_post") => TokenEndpointAuth::ClientSecretPost,
                (Some(_), Some(_)) if lists("none") => TokenEndpointAuth::None,
                (Some(_), Some(_)) => TokenEndpointAuth::ClientSecretBasic,
            }
        });
        let mut request = self
            .http
            .client
            .post(endpoint)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json");
        let secret = client.client_secret.as_deref();
        match (method, secret) {
            (TokenEndpointAuth::ClientSecretBasic, Some(secret)) => {
                // RFC 6749 §2.3.1: each part form-encoded before Base64.
                let id: String = url::form_urlencoded::byte_serialize(client.client_id.as_bytes()).collect();
                let secret: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
                let mut value = HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))))
                    .map_err(|_| AuthError::Config("the client credentials are not a valid header value".into()))?;
                value.set_sensitive(true);
                request = request.header(AUTHORIZATION, value);
            }
            (TokenEndpointAuth::ClientSecretPost, Some(secret)) => {
                pairs.push(("client_id", &client.client_id));
                pairs.push(("client_secret", secret));
            }
            (TokenEndpointAuth::ClientSecretBasic | TokenEndpointAuth::ClientSecretPost, None) => {
                return Err(AuthError::Config(format!(
                    "token endpoint authentication {} needs a client secret",
                    method.name()
                )));
            }
            (TokenEndpointAuth::None, _) => pairs.push(("client_id", &client.client_id)),
        }
        Ok(request.body(form(pairs)))
    }

    /// Sends a token request and reads its tokens.
    async fn exchange(
        &self,
        step: &str,
        request: RequestBuilder,
        issuer: &str,
        asked: &BTreeSet<String>,
        previous_refresh: Option<String>,
    ) -> Result<Tokens, AuthError> {
        let answer: TokenResponse = self.http.json_answer(step, request).await?;
        if let Some(kind) = &answer.token_type
            && !kind.eq_ignore_ascii_case("bearer")
        {
            return Err(AuthError::BadResponse {
                step: step.to_string(),
                reason: format!("token_type {kind:?}, not Bearer"),
            });
        }
        if answer.access_token.is_empty() {
            return Err(AuthError::BadResponse {
                step: step.to_string(),
                reason: "an empty access_token".into(),
            });
        }
        bearer(&answer.access_token)?;
        let expires_in = answer.expires_in.as_ref().and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        });
        let scopes = match &answer.scope {
            Some(scope) => scope.split_ascii_whitespace().map(str::to_string).collect(),
            None => asked.iter().cloned().collect(),
        };
        Ok(Tokens {
            access_token: answer.access_token,
            refresh_token: answer.refresh_token.or(previous_refresh),
            expires_at: expires_in.map(|s| SystemTime::now() + Duration::from_secs(s.min(10 * 365 * 24 * 3600))),
            scopes,
            issuer: issuer.to_string(),
        })
    }
}

/// The checks on an authorization response, in the order that keeps an attacker's words
/// unread: `iss` (RFC 9207, as the 2026-07-28 table says), `state`, then `error`; the code.
fn check_response<'a>(
    response: &'a AuthorizationResponse,
    server: &AuthorizationServerMetadata,
    issuer: &str,
    state: &str,
) -> Result<&'a str, AuthError> {
    let advertised = server.authorization_response_iss_parameter_supported == Some(true);
    match response.get("iss") {
        Some(iss) if iss != issuer => {
            return Err(AuthError::IssMismatch {
                expected: issuer.to_string(),
                found: Some(iss.to_string()),
            });
        }
        None if advertised => {
            return Err(AuthError::IssMismatch {
                expected: issuer.to_string(),
                found: None,
            });
        }
        _ => {}
    }
    if response.get("state") != Some(state) {
        return Err(AuthError::StateMismatch);
    }
    if let Some(error) = response.get("error") {
        return Err(AuthError::Denied {
            error: error.to_string(),
            description: response.get("error_description").map(str::to_string),
        });
    }
    response
        .get("code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| AuthError::Authorizer("the authorization response has no code".into()))
}

impl AuthProvider for OAuthProvider {
    fn authorization(&self) -> BoxFuture<'_, Result<Option<HeaderValue>, AuthError>> {
        Box::pin(async move {
            let mut state = self.state.lock().await;
            let mut tokens = self.current(&mut state).await?;
            if tokens.is_none() && self.config.eager {
                self.reauthorize(&mut state, None, None, true).await?;
                tokens = self.config.store.load(&self.key).await?;
            }
            match tokens {
                Some(tokens) => Ok(Some(bearer(&tokens.access_token)?)),
                None => Ok(None),
            }
        })
    }

    fn challenge<'a>(&'a self, challenge: &'a Challenge) -> BoxFuture<'a, Result<bool, AuthError>> {
        Box::pin(async move {
            let mut state = self.state.lock().await;
            let held = self.config.store.load(&self.key).await?;
            let held_value = held.as_ref().map(|t| bearer(&t.access_token)).transpose()?;
            // Another request renewed the token while this one was refused: send it again.
            if let Some(value) = &held_value
                && challenge.sent.as_ref().map(HeaderValue::as_bytes) != Some(value.as_bytes())
            {
                return Ok(true);
            }
            match challenge.status {
                StatusCode::UNAUTHORIZED => {
                    self.reauthorize(&mut state, Some(challenge), held.as_ref(), true)
                        .await?;
                    Ok(true)
                }
                StatusCode::FORBIDDEN if challenge.is_insufficient_scope() => {
                    let named = challenge.bearer.as_ref().and_then(|b| b.scopes()).unwrap_or_default();
                    let granted: BTreeSet<&String> = held.iter().flat_map(|t| &t.scopes).collect();
                    let wanted: BTreeSet<&String> = state.requested.iter().chain(&named).collect();
                    if held.is_some() && wanted.is_subset(&granted) {
                        tracing::debug!("insufficient_scope for scopes the token holds: not re-authorizing");
                        return Ok(false);
                    }
                    self.reauthorize(&mut state, Some(challenge), held.as_ref(), false)
                        .await?;
                    Ok(true)
                }
                _ => Ok(false),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(advertised: Option<bool>) -> AuthorizationServerMetadata {
        let mut m = AuthorizationServerMetadata::defaults("http://as");
        m.authorization_response_iss_parameter_supported = advertised;
        m
    }

    fn response(pairs: &[(&str, &str)]) -> AuthorizationResponse {
        AuthorizationResponse {
            params: pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
        }
    }

    #[test]
    fn iss_follows_the_rfc_9207_table() {
        let ok = response(&[("code", "c"), ("state", "s"), ("iss", "http://as")]);
        let absent = response(&[("code", "c"), ("state", "s")]);
        let wrong = response(&[("code", "c"), ("state", "s"), ("iss", "http://as/")]);
        assert_eq!(
            check_response(&ok, &server(Some(true)), "http://as", "s").ok(),
            Some("c")
        );
        assert!(matches!(
            check_response(&absent, &server(Some(true)), "http://as", "s"),
            Err(AuthError::IssMismatch { found: None, .. })
        ));
        assert!(matches!(
            check_response(&wrong, &server(None), "http://as", "s"),
            Err(AuthError::IssMismatch { .. })
        ));
        assert_eq!(check_response(&absent, &server(None), "http://as", "s").ok(), Some("c"));
        assert_eq!(check_response(&ok, &server(None), "http://as", "s").ok(), Some("c"));
        assert!(matches!(
            check_response(&ok, &server(None), "http://as", "other"),
            Err(AuthError::StateMismatch)
        ));
        let denied = response(&[("error", "access_denied"), ("state", "s"), ("iss", "http://evil")]);
        // A mismatched iss hides the error.
        assert!(matches!(
            check_response(&denied, &server(None), "http://as", "s"),
            Err(AuthError::IssMismatch { .. })
        ));
    }
}
