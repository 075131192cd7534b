//! Who is calling: the gateway as an OAuth 2.1 resource server (the MCP authorization spec).
//! Every request to an MCP endpoint carries `Authorization: Bearer <JWT>`; the token is checked
//! — signature (by a configured key, or one of the JWKS URL's keys, by `kid`), algorithm (the
//! key's own, so a token cannot choose a weaker one), issuer, audience, expiry and not-before
//! with a leeway, size, required scopes — before anything else reads the request. A request
//! without a valid token is answered `401` (or `403` for missing scopes) with a JSON body and a
//! `WWW-Authenticate` header naming the protected-resource metadata (RFC 9728), served at
//! `/.well-known/oauth-protected-resource`. The client's token is never sent upstream: the
//! `Authorization` header is removed here, and each upstream has its own credentials
//! ([`crate::credentials`]). A valid JWT goes on only as a [`SubjectToken`], for upstreams that
//! exchange it (RFC 8693) for a token of their own.
//!
//! JWKS keys are fetched at start, cached, and fetched again when a token names a `kid` not in
//! the cache (at most every 30 s), so keys rotate without a restart.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::json;

use crate::config::{AuthConfig, JwtKey};

/// The caller a valid token names.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// `sub`.
    pub subject: String,
    /// The roles of the `roles_claim`.
    pub roles: Vec<String>,
    /// `scope` (space-separated) or `scp`.
    pub scopes: Vec<String>,
}

/// The caller's validated JWT, carried beside its [`Principal`] for upstreams that exchange
/// it (`oauth.token_exchange`, [`crate::credentials`]) and for nothing else: its value is
/// readable in this crate alone, its `Debug` shows none of it, it is neither serialized nor
/// logged, and it lives as long as the request (what is cached is the token it was exchanged
/// for, under its SHA-256). API keys are not carried: no authorization server knows them.
#[derive(Clone)]
pub struct SubjectToken(Arc<str>);

impl SubjectToken {
    pub(crate) fn new(token: &str) -> Self {
        Self(token.into())
    }

    /// The token, for the token exchange.
    pub(crate) fn secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SubjectToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SubjectToken(<redacted>)")
    }
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AuthError {
    /// No bearer token.
    #[error("the request carries no bearer token")]
    Missing,
    /// The token is not valid; the reason.
    #[error("{0}")]
    Invalid(String),
    /// Valid, but without the scopes needed.
    #[error("the token lacks the scopes {0}")]
    Scope(String),
}

/// A key to check signatures with, and the one algorithm it checks.
struct Key {
    algorithm: Algorithm,
    key: DecodingKey,
}

/// Keys by `kid`.
type KeySet = HashMap<String, Arc<Key>>;

/// Checks bearer tokens.
pub struct Authenticator {
    config: AuthConfig,
    /// Configured keys by `kid` (`""` for a key without one).
    keys: HashMap<String, Arc<Key>>,
    /// Keys of the JWKS URL by `kid`, and when they were fetched.
    jwks: RwLock<(KeySet, Option<Instant>)>,
    http: reqwest::Client,
    /// JWTs checked lately, by their text, and their callers, each kept until it expires and
    /// for [`VERIFIED_FOR`] at most: a client sending the same token on every request has its
    /// signature and claims checked once a minute, not per request.
    verified: std::sync::Mutex<HashMap<Box<str>, (Instant, Principal)>>,
    /// API keys, when `api_keys` (see [`Authenticator::with_api_keys`]).
    api_keys: Option<crate::apikeys::ApiKeys>,
}

/// How long a checked JWT is trusted before it is checked again (its `exp` still bounds it):
/// also how long a key removed from the JWKS keeps admitting the tokens it signed.
const VERIFIED_FOR: Duration = Duration::from_secs(60);

/// Checked tokens kept at most.
const VERIFIED_MAX: usize = 10_000;

/// The least time between two JWKS fetches caused by unknown `kid`s.
const JWKS_REFETCH: Duration = Duration::from_secs(30);

fn algorithm(name: &str) -> Result<Algorithm, String> {
    let algorithm = match name {
        "HS256" => Algorithm::HS256,
        "HS384" => Algorithm::HS384,
        "HS512" => Algorithm::HS512,
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        other => return Err(format!("unknown algorithm `{other}`")),
    };
    Ok(algorithm)
}

/// A configured key, read.
fn configured(key: &JwtKey) -> Result<Key, String> {
    let algorithm = algorithm(&key.alg)?;
    let decoding = match (algorithm, &key.secret, &key.pem) {
        (Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512, Some(secret), None) => {
            DecodingKey::from_secret(secret.as_bytes())
        }
        (Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512, _, _) => {
            return Err("an HMAC key needs `secret` (and no `pem`)".into());
        }
        (_, None, Some(pem)) => {
            let pem = pem.as_bytes();
            match algorithm {
                Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem),
                Algorithm::EdDSA => DecodingKey::from_ed_pem(pem),
                _ => DecodingKey::from_rsa_pem(pem),
            }
            .map_err(|e| format!("`pem`: {e}"))?
        }
        _ => return Err("a public key needs `pem` (and no `secret`)".into()),
    };
    Ok(Key {
        algorithm,
        key: decoding,
    })
}

/// Checks every configured key (for the configuration check).
pub fn check_keys(keys: &[JwtKey]) -> Result<(), (usize, String)> {
    for (i, key) in keys.iter().enumerate() {
        configured(key).map_err(|e| (i, e))?;
    }
    Ok(())
}

/// The claims read from a valid token.
#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    exp: Option<u64>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    scp: Option<Vec<String>>,
    #[serde(flatten)]
    rest: HashMap<String, serde_json::Value>,
}

impl Authenticator {
    /// The authenticator of `config` (checked already); fetches the JWKS, when there is one
    /// (a failure is logged, and retried when a token needs it).
    pub async fn new(config: AuthConfig) -> Self {
        // A reqwest client built with rustls (the `tls` feature) needs the provider first.
        portico_transport::http::tls::install_provider();
        let keys = config
            .jwt
            .keys
            .iter()
            .filter_map(|k| {
                configured(k)
                    .ok()
                    .map(|key| (k.kid.clone().unwrap_or_default(), Arc::new(key)))
            })
            .collect();
        let authenticator = Self {
            config,
            keys,
            jwks: RwLock::new((HashMap::new(), None)),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            verified: std::sync::Mutex::default(),
            api_keys: None,
        };
        if authenticator.config.jwt.jwks_url.is_some()
            && let Err(e) = authenticator.fetch_jwks().await
        {
            tracing::warn!(error = %e, "fetching the JWKS failed; tried again when a token needs it");
        }
        authenticator
    }

    /// Accepts the API keys kept in `store` too, unless `auth.api_keys` is off.
    pub fn with_api_keys(mut self, store: crate::store::Store) -> Self {
        if self.config.api_keys {
            self.api_keys = Some(crate::apikeys::ApiKeys::new(store));
        }
        self
    }

    /// The API keys, when they are accepted.
    pub fn api_keys(&self) -> Option<&crate::apikeys::ApiKeys> {
        self.api_keys.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    async fn fetch_jwks(&self) -> Result<(), String> {
        let Some(url) = &self.config.jwt.jwks_url else {
            return Ok(());
        };
        self.jwks.write().unwrap_or_else(std::sync::PoisonError::into_inner).1 = Some(Instant::now());
        let set: jsonwebtoken::jwk::JwkSet = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?
            .error_for_status()
            .map_err(|e| format!("GET {url}: {e}"))?
            .json()
            .await
            .map_err(|e| format!("{url}: not a JWK set: {e}"))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), Some(alg)) = (&jwk.common.key_id, jwk.common.key_algorithm) else {
                continue;
            };
            let Ok(algorithm) = algorithm(&format!("{alg:?}")) else {
                continue;
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                keys.insert(kid.clone(), Arc::new(Key { algorithm, key }));
            }
        }
        self.jwks.write().unwrap_or_else(std::sync::PoisonError::into_inner).0 = keys;
        Ok(())
    }

    /// The key for `kid`: configured, or from the JWKS (fetched again when the `kid` is new).
    async fn key(&self, kid: Option<&str>) -> Option<Arc<Key>> {
        if let Some(key) = self.keys.get(kid.unwrap_or_default()) {
            return Some(key.clone());
        }
        let kid = kid?;
        let (found, fetched) = {
            let jwks = self.jwks.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            (jwks.0.get(kid).cloned(), jwks.1)
        };
        if found.is_some() || self.config.jwt.jwks_url.is_none() {
            return found;
        }
        if fetched.is_some_and(|at| at.elapsed() < JWKS_REFETCH) {
            return None;
        }
        if let Err(e) = self.fetch_jwks().await {
            tracing::warn!(error = %e, "fetching the JWKS failed");
        }
        self.jwks
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
            .get(kid)
            .cloned()
    }

    /// Whether `token` is one of the API keys (rather than a JWT).
    fn is_api_key(&self, token: &str) -> bool {
        self.api_keys.is_some() && token.starts_with(crate::apikeys::PREFIX)
    }

    /// Checks the `Authorization` header's value.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
        let jwt = &self.config.jwt;
        let token = bearer_token(authorization).ok_or(AuthError::Missing)?;
        if token.len() > jwt.max_token_bytes {
            return Err(AuthError::Invalid(format!(
                "the token is longer than {} bytes",
                jwt.max_token_bytes
            )));
        }
        if let Some(keys) = &self.api_keys
            && self.is_api_key(token)
        {
            let principal = keys.authenticate(token).await?;
            self.check_scopes(&principal.scopes)?;
            return Ok(principal);
        }
        if let Some(principal) = self.verified(token) {
            return Ok(principal);
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| AuthError::Invalid(format!("a malformed token: {e}")))?;
        let key = self.key(header.kid.as_deref()).await.ok_or_else(|| {
            AuthError::Invalid(format!("no key {:?} signs tokens here", header.kid.unwrap_or_default()))
        })?;
        // The key's algorithm alone: a token cannot pick another one (an HMAC over a public key).
        let mut validation = Validation::new(key.algorithm);
        validation.leeway = jwt.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_issuer(&[jwt.issuer.as_str()]);
        validation.set_audience(&jwt.audience);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key.key, &validation)
            .map_err(|e| AuthError::Invalid(format!("the token is not valid: {e}")))?;
        let claims = data.claims;
        let scopes: Vec<String> = match (claims.scope, claims.scp) {
            (Some(scope), _) => scope.split_whitespace().map(str::to_string).collect(),
            (None, Some(scp)) => scp,
            (None, None) => Vec::new(),
        };
        self.check_scopes(&scopes)?;
        let roles = match claims.rest.get(&self.config.roles_claim) {
            Some(serde_json::Value::Array(items)) => {
                items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()
            }
            Some(serde_json::Value::String(text)) => text.split_whitespace().map(str::to_string).collect(),
            _ => Vec::new(),
        };
        let principal = Principal {
            subject: claims.sub.unwrap_or_default(),
            roles,
            scopes,
        };
        self.remember(token, claims.exp, &principal);
        Ok(principal)
    }

    /// The caller of `token` if it was checked less than [`VERIFIED_FOR`] ago and has not
    /// expired since.
    fn verified(&self, token: &str) -> Option<Principal> {
        let verified = self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (until, principal) = verified.get(token)?;
        (Instant::now() < *until).then(|| principal.clone())
    }

    /// Keeps a checked token's caller until it expires, for [`VERIFIED_FOR`] at most.
    fn remember(&self, token: &str, exp: Option<u64>, principal: &Principal) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let left = Duration::from_secs(exp.unwrap_or(0).saturating_sub(now)).min(VERIFIED_FOR);
        if left.is_zero() {
            return;
        }
        let mut verified = self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if verified.len() >= VERIFIED_MAX {
            let now = Instant::now();
            verified.retain(|_, (until, _)| *until > now);
            if verified.len() >= VERIFIED_MAX {
                verified.clear();
            }
        }
        verified.insert(token.into(), (Instant::now() + left, principal.clone()));
    }

    /// `Err` naming the `required_scopes` that `scopes` lack.
    fn check_scopes(&self, scopes: &[String]) -> Result<(), AuthError> {
        let missing: Vec<&str> = self
            .config
            .required_scopes
            .iter()
            .filter(|s| !scopes.contains(s))
            .map(String::as_str)
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(AuthError::Scope(missing.join(" ")))
        }
    }

    /// The resource's identifier: the configured `resource`, else the URL the request came to.
    fn resource(&self, request: &Request) -> String {
        if let Some(resource) = &self.config.resource {
            return resource.clone();
        }
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        format!("http://{host}/mcp")
    }

    /// The protected-resource metadata (RFC 9728) of the resource `resource`.
    pub fn metadata(&self, resource: &str) -> serde_json::Value {
        let mut metadata = json!({
            "resource": resource,
            "authorization_servers": self.config.authorization_servers,
            "bearer_methods_supported": ["header"],
        });
        if !self.config.scopes_supported.is_empty() {
            metadata["scopes_supported"] = json!(self.config.scopes_supported);
        }
        metadata
    }
}

/// The token of an `Authorization: Bearer …` value.
fn bearer_token(authorization: Option<&str>) -> Option<&str> {
    authorization
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The URL of the protected-resource metadata of a request's resource.
fn metadata_url(request: &Request) -> String {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}/.well-known/oauth-protected-resource")
}

/// The answer to a refused request: `401` or `403`, a JSON body, `WWW-Authenticate`.
fn refusal(error: &AuthError, metadata: &str) -> Response {
    let quote = |text: &str| text.replace(['"', '\\'], "'");
    let (status, challenge, code) = match error {
        AuthError::Missing => (
            StatusCode::UNAUTHORIZED,
            format!("Bearer resource_metadata=\"{metadata}\""),
            "invalid_request",
        ),
        AuthError::Invalid(reason) => (
            StatusCode::UNAUTHORIZED,
            format!(
                "Bearer error=\"invalid_token\", error_description=\"{}\", resource_metadata=\"{metadata}\"",
                quote(reason)
            ),
            "invalid_token",
        ),
        AuthError::Scope(scopes) => (
            StatusCode::FORBIDDEN,
            format!(
                "Bearer error=\"insufficient_scope\", scope=\"{}\", resource_metadata=\"{metadata}\"",
                quote(scopes)
            ),
            "insufficient_scope",
        ),
    };
    let body = json!({"error": code, "error_description": error.to_string()});
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// The middleware in front of the MCP endpoints: a request goes on, with its [`Principal`] in
/// its extensions, only with a valid token.
/// A refusal is recorded in the audit trail, when there is one.
pub async fn require(
    State((authenticator, auditor)): State<(Arc<Authenticator>, Option<crate::audit::Auditor>)>,
    request: Request,
    next: Next,
) -> Response {
    match admit(&authenticator, auditor.as_ref(), request).await {
        Ok(request) => next.run(request).await,
        Err(refused) => refused,
    }
}

/// What [`require`] does before the request goes on: the request with its caller's
/// [`Principal`] (and [`SubjectToken`]) and without its `Authorization`, or the refusal to
/// answer (recorded by `auditor`). For a front that routes MCP POSTs itself
/// ([`crate::Gateway::service`]).
pub(crate) async fn admit(
    authenticator: &Authenticator,
    auditor: Option<&crate::audit::Auditor>,
    mut request: Request,
) -> Result<Request, Response> {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match authenticator.authenticate(authorization.as_deref()).await {
        Ok(principal) => {
            // The client's token stops here: upstreams get the gateway's own credentials. A JWT
            // goes on only as the subject token of a token exchange, never as a header.
            request.headers_mut().remove(header::AUTHORIZATION);
            if let Some(token) = bearer_token(authorization.as_deref())
                && !authenticator.is_api_key(token)
            {
                request.extensions_mut().insert(SubjectToken::new(token));
            }
            request.extensions_mut().insert(principal);
            Ok(request)
        }
        Err(error) => {
            tracing::info!(target: "portico::auth", error = %error, "request refused");
            if let Some(auditor) = auditor {
                let what = format!("{} {}", request.method(), request.uri().path());
                let mut record = crate::audit::Record::new(
                    crate::audit::Kind::Denial,
                    what,
                    "denied",
                    crate::audit::correlation_id(),
                );
                record.detail = Some(error.to_string());
                auditor.record_later(record);
            }
            Err(refusal(&error, &metadata_url(&request)))
        }
    }
}

/// `GET /.well-known/oauth-protected-resource`.
pub async fn metadata(State(authenticator): State<Arc<Authenticator>>, request: Request) -> Response {
    let resource = authenticator.resource(&request);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        authenticator.metadata(&resource).to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authenticator() -> Authenticator {
        let config: AuthConfig = serde_norway::from_str(
            "jwt:\n  issuer: https://issuer.test\n  audience: [gw]\n  keys:\n    - {kid: hs, alg: HS256, secret: 'a-test-secret-of-enough-length-0123456789'}\n",
        )
        .unwrap();
        // As `Authenticator::new` does: reqwest built with rustls needs the provider first.
        portico_transport::http::tls::install_provider();
        Authenticator {
            keys: HashMap::new(),
            jwks: RwLock::new((HashMap::new(), None)),
            http: reqwest::Client::new(),
            verified: std::sync::Mutex::default(),
            api_keys: None,
            config,
        }
    }

    fn principal() -> Principal {
        Principal {
            subject: "ada".into(),
            roles: vec!["reader".into()],
            scopes: Vec::new(),
        }
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn a_checked_token_is_trusted_until_it_expires_and_no_longer() {
        let authenticator = authenticator();
        // No key is configured here: only the cache can admit these tokens.
        authenticator.remember("t-long", Some(now() + 3600), &principal());
        assert_eq!(authenticator.verified("t-long"), Some(principal()));
        assert_eq!(authenticator.verified("t-other"), None);
        // Expiring within the second: kept no longer than that.
        authenticator.remember("t-brief", Some(now() + 1), &principal());
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(authenticator.verified("t-brief"), None);
        // Expired already (accepted within the leeway), or without `exp`: not kept.
        authenticator.remember("t-late", Some(now() - 5), &principal());
        authenticator.remember("t-none", None, &principal());
        assert_eq!(authenticator.verified("t-late"), None);
        assert_eq!(authenticator.verified("t-none"), None);
    }
}
