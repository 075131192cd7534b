//! The user-agent step of the authorization code flow: the [`Authorizer`] trait, given the
//! authorization URL it returns the query of the redirect back to the client, and its two
//! implementations, [`HeadlessAuthorizer`] and [`LoopbackAuthorizer`].

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::LOCATION;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use url::Url;

use super::{AuthError, BoxFuture};

/// The parameters of an authorization response (the redirect's query), as received.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AuthorizationResponse {
    /// The query's parameters, decoded, in order.
    pub params: Vec<(String, String)>,
}

impl AuthorizationResponse {
    /// The response of a redirect URL.
    pub fn from_url(url: &Url) -> Self {
        Self {
            params: url
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }

    /// A parameter's first value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

impl std::fmt::Debug for AuthorizationResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The code is a credential: names only.
        f.debug_struct("AuthorizationResponse")
            .field(
                "params",
                &self.params.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The user agent: takes the user to the authorization URL and brings back the redirect.
pub trait Authorizer: Send + Sync + 'static {
    /// The redirect URI registered for, and sent in, authorization requests.
    fn redirect_uri(&self) -> String;

    /// Visits `url` (an authorization request) and returns the query of the redirect to
    /// [`Self::redirect_uri`].
    fn authorize<'a>(&'a self, url: &'a Url) -> BoxFuture<'a, Result<AuthorizationResponse, AuthError>>;
}

/// Whether `url` is a redirect to `redirect_uri` (same scheme, host, port and path).
fn is_redirect_to(url: &Url, redirect_uri: &Url) -> bool {
    url.scheme() == redirect_uri.scheme()
        && url.host_str() == redirect_uri.host_str()
        && url.port_or_known_default() == redirect_uri.port_or_known_default()
        && url.path() == redirect_uri.path()
}

/// An authorizer without a human: GETs the authorization URL without following redirects and
/// reads the `Location` of the answer, which must be the redirect URI. It suits authorization
/// servers that approve at once (test servers, the conformance suite's); anything that shows a
/// login page fails with [`AuthError::Authorizer`].
#[derive(Debug)]
pub struct HeadlessAuthorizer {
    redirect_uri: String,
    /// The HTTP client, or why it could not be built (reported by `authorize`).
    http: Result<reqwest::Client, String>,
}

impl HeadlessAuthorizer {
    /// An authorizer that registers `redirect_uri` (nothing needs to listen there).
    pub fn new(redirect_uri: impl Into<String>) -> Self {
        Self::with_timeout(redirect_uri, Duration::from_secs(30))
    }

    /// The same, with a bound on the GET (default 30 s).
    pub fn with_timeout(redirect_uri: impl Into<String>, timeout: Duration) -> Self {
        Self::with_tls(redirect_uri, timeout, &crate::http::tls::TlsConfig::default())
    }

    /// The same, trusting `tls`'s roots for an `https://` authorization endpoint besides the
    /// platform's ([`crate::http::tls`]).
    pub fn with_tls(redirect_uri: impl Into<String>, timeout: Duration, tls: &crate::http::tls::TlsConfig) -> Self {
        let http = crate::http::tls::reqwest_builder(tls)
            .map_err(|e| e.to_string())
            .and_then(|builder| {
                builder
                    .redirect(reqwest::redirect::Policy::none())
                    .timeout(timeout)
                    .build()
                    .map_err(|e| e.to_string())
            });
        Self {
            redirect_uri: redirect_uri.into(),
            http,
        }
    }
}

impl Authorizer for HeadlessAuthorizer {
    fn redirect_uri(&self) -> String {
        self.redirect_uri.clone()
    }

    fn authorize<'a>(&'a self, url: &'a Url) -> BoxFuture<'a, Result<AuthorizationResponse, AuthError>> {
        Box::pin(async move {
            let redirect_uri = Url::parse(&self.redirect_uri).map_err(|e| AuthError::InvalidUrl {
                url: self.redirect_uri.clone(),
                reason: e.to_string(),
            })?;
            let http = self
                .http
                .as_ref()
                .map_err(|e| AuthError::Config(format!("building the HTTP client: {e}")))?;
            let response = http.get(url.clone()).send().await.map_err(|source| AuthError::Http {
                step: "authorization request".into(),
                source,
            })?;
            let status = response.status();
            if !status.is_redirection() {
                return Err(AuthError::Authorizer(format!(
                    "the authorization endpoint answered HTTP {status}, not a redirect"
                )));
            }
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| AuthError::Authorizer("a redirect without Location".into()))?;
            let target = url
                .join(location)
                .map_err(|e| AuthError::Authorizer(format!("the redirect's Location is not a URL: {e}")))?;
            if !is_redirect_to(&target, &redirect_uri) {
                return Err(AuthError::Authorizer(format!(
                    "the authorization endpoint redirected to {}, not to the redirect URI (a login page needs a browser)",
                    target.origin().ascii_serialization()
                )));
            }
            Ok(AuthorizationResponse::from_url(&target))
        })
    }
}

/// What [`LoopbackAuthorizer`] does with the authorization URL: show it to the user.
pub type ShowUrl = Arc<dyn Fn(&Url) + Send + Sync>;

/// An authorizer for a human at this machine: shows the authorization URL (on stderr, or
/// through [`LoopbackAuthorizer::on_url`]) and waits, at most [`LoopbackAuthorizer::timeout`],
/// for the browser's redirect to `http://127.0.0.1:<port>/callback`, answered with a page
/// saying the window can be closed. Other paths are answered `404` and waited past.
pub struct LoopbackAuthorizer {
    listener: TcpListener,
    redirect_uri: String,
    timeout: Duration,
    show: ShowUrl,
}

impl std::fmt::Debug for LoopbackAuthorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopbackAuthorizer")
            .field("redirect_uri", &self.redirect_uri)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The most of a callback request that is read.
const MAX_CALLBACK_REQUEST: usize = 16 * 1024;

impl LoopbackAuthorizer {
    /// Listens on `127.0.0.1:port` (`0`: any free port) for the callback.
    pub async fn bind(port: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let port = listener.local_addr()?.port();
        Ok(Self {
            listener,
            redirect_uri: format!("http://127.0.0.1:{port}/callback"),
            timeout: Duration::from_secs(300),
            show: Arc::new(|url: &Url| eprintln!("Open this URL in a browser to authorize: {url}")),
        })
    }

    /// How long to wait for the browser (default 5 minutes).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Shows the URL another way (opens a browser, say) instead of printing it.
    pub fn on_url(mut self, show: impl Fn(&Url) + Send + Sync + 'static) -> Self {
        self.show = Arc::new(show);
        self
    }

    /// Accepts connections until one is the callback; its query.
    async fn callback(&self) -> Result<AuthorizationResponse, AuthError> {
        loop {
            let (mut socket, _) = self
                .listener
                .accept()
                .await
                .map_err(|e| AuthError::Authorizer(format!("accepting the callback: {e}")))?;
            let mut buffer = Vec::new();
            let mut chunk = [0u8; 2048];
            while !buffer.windows(4).any(|w| w == b"\r\n\r\n") && buffer.len() < MAX_CALLBACK_REQUEST {
                match socket.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                }
            }
            let head = String::from_utf8_lossy(&buffer);
            let target = head
                .lines()
                .next()
                .and_then(|line| {
                    let mut parts = line.split(' ');
                    (parts.next() == Some("GET")).then(|| parts.next()).flatten()
                })
                .and_then(|target| Url::parse(&self.redirect_uri).ok()?.join(target).ok());
            let (status, page) = match &target {
                Some(url) if url.path() == "/callback" => (
                    StatusCode::OK,
                    "<!doctype html><title>Authorized</title><p>Authorization is complete; you can close this window.",
                ),
                _ => (StatusCode::NOT_FOUND, "<!doctype html><title>Not found</title>"),
            };
            let answer = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
            let _ = socket.shutdown().await;
            if let Some(url) = target.filter(|u| u.path() == "/callback") {
                return Ok(AuthorizationResponse::from_url(&url));
            }
        }
    }
}

impl Authorizer for LoopbackAuthorizer {
    fn redirect_uri(&self) -> String {
        self.redirect_uri.clone()
    }

    fn authorize<'a>(&'a self, url: &'a Url) -> BoxFuture<'a, Result<AuthorizationResponse, AuthError>> {
        Box::pin(async move {
            (self.show)(url);
            tokio::time::timeout(self.timeout, self.callback())
                .await
                .map_err(|_| AuthError::Authorizer(format!("no callback within {:?}", self.timeout)))?
        })
    }
}
