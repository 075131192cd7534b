//! Discovery: protected resource metadata (RFC 9728) and authorization server metadata
//! (RFC 8414, OpenID Connect Discovery 1.0), the URLs they are looked up at, and the checks on
//! what they say (`resource`, `issuer`).

use reqwest::header::ACCEPT;
use reqwest::{RequestBuilder, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

use super::AuthError;

/// Protected resource metadata (RFC 9728 §2), the members the client uses.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct ProtectedResourceMetadata {
    /// The resource identifier.
    pub resource: String,
    /// The issuers of the authorization servers accepted.
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    /// The scopes the resource uses.
    #[serde(default)]
    pub scopes_supported: Option<Vec<String>>,
}

/// Authorization server metadata (RFC 8414 §2, OpenID Connect Discovery §3), the members the
/// client uses.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct AuthorizationServerMetadata {
    /// The issuer identifier.
    pub issuer: String,
    /// Where the user agent is sent.
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    /// Where codes, refresh tokens and client credentials are exchanged.
    #[serde(default)]
    pub token_endpoint: Option<String>,
    /// Dynamic client registration (RFC 7591).
    #[serde(default)]
    pub registration_endpoint: Option<String>,
    /// Scopes the server knows.
    #[serde(default)]
    pub scopes_supported: Option<Vec<String>>,
    /// Grant types the server supports.
    #[serde(default)]
    pub grant_types_supported: Option<Vec<String>>,
    /// How clients may authenticate at the token endpoint.
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// PKCE methods (absent: no PKCE).
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// RFC 9207: the server sends `iss` in authorization responses.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: Option<bool>,
    /// Client ID Metadata Documents are accepted as `client_id`.
    #[serde(default)]
    pub client_id_metadata_document_supported: Option<bool>,
}

impl AuthorizationServerMetadata {
    /// The metadata the 2025-03-26 revision assumes when a server publishes none: the default
    /// endpoints at the issuer.
    pub(crate) fn defaults(issuer: &str) -> Self {
        Self {
            issuer: issuer.to_string(),
            authorization_endpoint: Some(format!("{issuer}/authorize")),
            token_endpoint: Some(format!("{issuer}/token")),
            registration_endpoint: Some(format!("{issuer}/register")),
            scopes_supported: None,
            grant_types_supported: None,
            token_endpoint_auth_methods_supported: None,
            code_challenge_methods_supported: Some(vec!["S256".into()]),
            authorization_response_iss_parameter_supported: None,
            client_id_metadata_document_supported: None,
        }
    }

    /// The metadata of a server known only by its token endpoint (configured, not discovered).
    pub(crate) fn token_endpoint_only(endpoint: &str) -> Self {
        Self {
            issuer: endpoint.to_string(),
            authorization_endpoint: None,
            token_endpoint: Some(endpoint.to_string()),
            registration_endpoint: None,
            scopes_supported: None,
            grant_types_supported: None,
            token_endpoint_auth_methods_supported: None,
            code_challenge_methods_supported: None,
            authorization_response_iss_parameter_supported: None,
            client_id_metadata_document_supported: None,
        }
    }

    /// Whether `scopes_supported` lists `scope`.
    pub(crate) fn supports_scope(&self, scope: &str) -> bool {
        self.scopes_supported
            .as_ref()
            .is_some_and(|s| s.iter().any(|x| x == scope))
    }
}

/// The HTTP client of the flow, with its bounds.
pub(crate) struct Http {
    pub client: reqwest::Client,
    pub max_body: usize,
}

/// What a metadata lookup found.
pub(crate) enum Lookup<T> {
    Found(T),
    /// Not there (a non-`2xx` answer, or not JSON of the right shape): try the next URL.
    Missing(String),
}

impl Http {
    /// Sends a request of the flow; `step` names it in errors.
    pub async fn send(&self, step: &str, request: RequestBuilder) -> Result<Response, AuthError> {
        request.send().await.map_err(|source| AuthError::Http {
            step: step.to_string(),
            source,
        })
    }

    /// Reads a body, at most `max_body` bytes.
    pub async fn body(&self, step: &str, mut response: Response) -> Result<Vec<u8>, AuthError> {
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|source| AuthError::Http {
            step: step.to_string(),
            source,
        })? {
            if body.len() + chunk.len() > self.max_body {
                return Err(AuthError::BadResponse {
                    step: step.to_string(),
                    reason: format!("the answer is longer than {} bytes", self.max_body),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// GETs a JSON document.
    pub async fn get_json<T: DeserializeOwned>(&self, step: &str, url: &Url) -> Result<Lookup<T>, AuthError> {
        let step = format!("{step} ({url})");
        let response = self
            .send(&step, self.client.get(url.clone()).header(ACCEPT, "application/json"))
            .await?;
        let status = response.status();
        if !status.is_success() {
            return Ok(Lookup::Missing(format!("HTTP {status}")));
        }
        let body = self.body(&step, response).await?;
        match serde_json::from_slice(&body) {
            Ok(value) => Ok(Lookup::Found(value)),
            Err(e) => Ok(Lookup::Missing(format!("not the expected JSON: {e}"))),
        }
    }

    /// POSTs and reads a JSON answer, `2xx` or an OAuth error (`{"error": …}`).
    pub async fn json_answer<T: DeserializeOwned>(&self, step: &str, request: RequestBuilder) -> Result<T, AuthError> {
        let response = self.send(step, request).await?;
        let status = response.status();
        let body = self.body(step, response).await?;
        if !status.is_success() {
            #[derive(Deserialize)]
            struct OAuthError {
                error: String,
                error_description: Option<String>,
            }
            return Err(match serde_json::from_slice::<OAuthError>(&body) {
                Ok(e) => AuthError::Endpoint {
                    step: step.to_string(),
                    error: e.error,
                    description: e.error_description,
                },
                Err(_) => AuthError::Endpoint {
                    step: step.to_string(),
                    error: format!("HTTP {status}"),
                    description: None,
                },
            });
        }
        serde_json::from_slice(&body).map_err(|e| AuthError::BadResponse {
            step: step.to_string(),
            reason: format!("not the expected JSON: {e}"),
        })
    }
}

/// `origin` of a URL, without a trailing slash: `http://host:port`.
pub(crate) fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// The canonical URI of the resource (RFC 8707 §2, the MCP spec's "canonical server URI"):
/// no fragment, lower-case scheme and host (as parsed), no trailing slash on an empty path.
pub(crate) fn canonical(url: &Url) -> String {
    let mut url = url.clone();
    url.set_fragment(None);
    let text = url.to_string();
    if url.path() == "/" && url.query().is_none() {
        text.trim_end_matches('/').to_string()
    } else {
        text
    }
}

/// The well-known URLs of the protected resource metadata of `server`, in the order tried:
/// with the endpoint's path inserted, then at the root (RFC 9728 §3.1).
pub(crate) fn resource_metadata_urls(server: &Url) -> Vec<Url> {
    let origin = origin(server);
    let path = server.path().trim_end_matches('/');
    let mut urls = Vec::new();
    if !path.is_empty() {
        urls.extend(Url::parse(&format!("{origin}/.well-known/oauth-protected-resource{path}")).ok());
    }
    urls.extend(Url::parse(&format!("{origin}/.well-known/oauth-protected-resource")).ok());
    urls
}

/// The metadata URLs of an issuer, in the order the MCP spec lists: for an issuer with a path,
/// OAuth with the path inserted, OpenID Connect with the path inserted, OpenID Connect with the
/// path appended; without one, OAuth then OpenID Connect.
pub(crate) fn server_metadata_urls(issuer: &str) -> Result<Vec<Url>, AuthError> {
    let parsed = Url::parse(issuer).map_err(|e| AuthError::InvalidUrl {
        url: issuer.to_string(),
        reason: e.to_string(),
    })?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(AuthError::InvalidUrl {
            url: issuer.to_string(),
            reason: "an issuer identifier has no query or fragment (RFC 8414 §2)".into(),
        });
    }
    let origin = origin(&parsed);
    let path = parsed.path().trim_end_matches('/');
    let texts = if path.is_empty() {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server"),
            format!("{origin}/.well-known/openid-configuration"),
        ]
    } else {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
            format!("{origin}/.well-known/openid-configuration{path}"),
            format!("{origin}{path}/.well-known/openid-configuration"),
        ]
    };
    texts
        .iter()
        .map(|t| {
            Url::parse(t).map_err(|e| AuthError::InvalidUrl {
                url: t.clone(),
                reason: e.to_string(),
            })
        })
        .collect()
}

/// Whether protected resource metadata for `resource` covers the endpoint `server`: the same
/// origin, and a path that is the endpoint's or one of its parent segments (RFC 9728 §3.3 with
/// the root metadata of a server at a path allowed, as the spec's discovery order implies).
pub(crate) fn resource_matches(server: &Url, resource: &str) -> bool {
    let Ok(resource) = Url::parse(resource) else {
        return false;
    };
    if resource.fragment().is_some() || resource.origin() != server.origin() {
        return false;
    }
    let wanted = resource.path().trim_end_matches('/');
    let have = server.path().trim_end_matches('/');
    wanted.is_empty() || have == wanted || have.starts_with(&format!("{wanted}/"))
}

#[cfg(test)]
mod tests {
    use url::Url;

    use super::*;

    #[test]
    fn well_known_urls_follow_the_spec_order() {
        let server = Url::parse("http://h:1/public/mcp").expect("url");
        let prm: Vec<String> = resource_metadata_urls(&server).iter().map(Url::to_string).collect();
        assert_eq!(
            prm,
            [
                "http://h:1/.well-known/oauth-protected-resource/public/mcp",
                "http://h:1/.well-known/oauth-protected-resource"
            ]
        );
        let root = Url::parse("http://h:1/").expect("url");
        assert_eq!(resource_metadata_urls(&root).len(), 1);
        let with_path: Vec<String> = server_metadata_urls("http://a/tenant1")
            .expect("urls")
            .iter()
            .map(Url::to_string)
            .collect();
        assert_eq!(
            with_path,
            [
                "http://a/.well-known/oauth-authorization-server/tenant1",
                "http://a/.well-known/openid-configuration/tenant1",
                "http://a/tenant1/.well-known/openid-configuration"
            ]
        );
        let bare: Vec<String> = server_metadata_urls("http://a")
            .expect("urls")
            .iter()
            .map(Url::to_string)
            .collect();
        assert_eq!(
            bare,
            [
                "http://a/.well-known/oauth-authorization-server",
                "http://a/.well-known/openid-configuration"
            ]
        );
        assert!(server_metadata_urls("not a url").is_err());
    }

    #[test]
    fn the_resource_must_cover_the_endpoint() {
        let server = Url::parse("http://localhost:9/mcp").expect("url");
        assert!(resource_matches(&server, "http://localhost:9/mcp"));
        assert!(resource_matches(&server, "http://LOCALHOST:9/mcp/"));
        assert!(resource_matches(&server, "http://localhost:9"));
        assert!(!resource_matches(&server, "https://evil.example.com/mcp"));
        assert!(!resource_matches(&server, "http://localhost:9/other"));
        assert!(!resource_matches(&server, "http://localhost:9/mc"));
        assert!(!resource_matches(&server, "http://localhost:10/mcp"));
        assert!(!resource_matches(&server, "garbage"));
        assert_eq!(canonical(&Url::parse("HTTP://Host:8/").expect("url")), "http://host:8");
        assert_eq!(canonical(&Url::parse("http://h/mcp#x").expect("url")), "http://h/mcp");
    }
}
