//! How the client's POSTs are sent: on hyper's pooled HTTP/1.1 client straight when nothing
//! reqwest adds is needed, through reqwest otherwise; and [`Answer`], the response of either.
//!
//! # Decisions
//!
//! - **Why not reqwest for every POST.** reqwest runs each request through layers this client
//!   does not use: its redirect layer parses the request's URL again from text twice (even with
//!   redirects off), its proxy matcher is consulted, and header maps are cloned. In
//!   `valgrind --tool=callgrind` of a gateway relaying `tools/call`, that was about 25k
//!   instructions a call, an eighth of the relayed call. hyper's own client (the one reqwest
//!   wraps) sends the same request without them.
//! - **When hyper's client is used ([`Direct`]):** the endpoint is `http://`, the request has no
//!   [`super::auth::Auth`] provider (the `401`/`403` retry with a renewed token is
//!   [`super::auth::send`]'s, on reqwest), the URL carries no user name or password (reqwest
//!   sends them as Basic credentials), and the environment names no proxy (`http_proxy`,
//!   `HTTP_PROXY`, `all_proxy`, `ALL_PROXY`: reqwest honours them, hyper does not). Everything
//!   else — `https://`, proxies, OAuth, and the session's GET stream and `DELETE` — goes
//!   through reqwest as before.
//! - **The same connection behaviour as reqwest's defaults:** `TCP_NODELAY`, the configured
//!   connect timeout, TCP keep-alive (15 s, probes every 15 s, 3 retries), idle connections
//!   kept 90 s, `Host` from the URL.

use std::time::Duration;

use axum::body::Bytes;
use axum::http;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode, Url};

/// Environment variables through which reqwest finds a proxy for `http://` URLs.
const PROXY_VARIABLES: [&str; 4] = ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"];

/// hyper's pooled client for one `http://` endpoint.
pub(super) struct Direct {
    client: Client<HttpConnector, Full<Bytes>>,
    uri: http::Uri,
}

impl Direct {
    /// The client for `url`, or `None` when its POSTs must go through reqwest (an `https://`
    /// URL, one with credentials, or a proxy in the environment).
    pub(super) fn new(url: &Url, connect_timeout: Duration) -> Option<Self> {
        let credentials = !url.username().is_empty() || url.password().is_some();
        if url.scheme() != "http" || credentials || names_a_proxy(std::env::var_os) {
            return None;
        }
        let uri = url.as_str().parse().ok()?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(connect_timeout));
        connector.set_keepalive(Some(Duration::from_secs(15)));
        connector.set_keepalive_interval(Some(Duration::from_secs(15)));
        connector.set_keepalive_retries(Some(3));
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        Some(Self { client, uri })
    }

    /// POSTs `body` with `headers` (all of them: the caller adds the content type and the rest).
    pub(super) async fn post(
        &self,
        headers: HeaderMap,
        body: String,
    ) -> Result<http::Response<Incoming>, hyper_util::client::legacy::Error> {
        let mut request = http::Request::new(Full::new(Bytes::from(body)));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = headers;
        self.client.request(request).await
    }
}

/// Whether the environment (read with `get`) names a proxy for `http://` URLs.
fn names_a_proxy(get: impl Fn(&'static str) -> Option<std::ffi::OsString>) -> bool {
    PROXY_VARIABLES
        .iter()
        .any(|name| get(name).is_some_and(|value| !value.is_empty()))
}

/// An answer to one of the client's requests, from whichever client sent it.
pub(super) enum Answer {
    Reqwest(reqwest::Response),
    Hyper(http::Response<Incoming>),
}

impl Answer {
    pub(super) fn status(&self) -> StatusCode {
        match self {
            Answer::Reqwest(response) => response.status(),
            Answer::Hyper(response) => response.status(),
        }
    }

    pub(super) fn headers(&self) -> &HeaderMap {
        match self {
            Answer::Reqwest(response) => response.headers(),
            Answer::Hyper(response) => response.headers(),
        }
    }

    /// The next chunk of the body; `None` at its end.
    pub(super) async fn chunk(&mut self) -> Result<Option<Bytes>, Box<dyn std::error::Error + Send + Sync>> {
        match self {
            Answer::Reqwest(response) => Ok(response.chunk().await?),
            Answer::Hyper(response) => loop {
                match response.body_mut().frame().await {
                    None => return Ok(None),
                    Some(Err(e)) => return Err(e.into()),
                    // Trailers carry nothing this client reads.
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            return Ok(Some(data));
                        }
                    }
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyper_sends_only_to_plain_http_endpoints() {
        let url = |text: &str| Url::parse(text).unwrap();
        let timeout = Duration::from_secs(1);
        // No proxy in the test environment is assumed: CI sets none.
        if !names_a_proxy(std::env::var_os) {
            assert!(Direct::new(&url("http://127.0.0.1:8080/mcp"), timeout).is_some());
        }
        assert!(Direct::new(&url("https://127.0.0.1:8443/mcp"), timeout).is_none());
        assert!(Direct::new(&url("http://user:secret@127.0.0.1:8080/mcp"), timeout).is_none());
        assert!(Direct::new(&url("http://user@127.0.0.1:8080/mcp"), timeout).is_none());
    }

    #[test]
    fn a_proxy_in_the_environment_leaves_the_posts_to_reqwest() {
        let with = |set: &'static str, value: &'static str| {
            move |name: &'static str| (name == set).then(|| std::ffi::OsString::from(value))
        };
        for name in PROXY_VARIABLES {
            assert!(names_a_proxy(with(name, "http://proxy:3128")), "{name}");
            assert!(!names_a_proxy(with(name, "")), "{name} set but empty");
        }
        assert!(!names_a_proxy(with("https_proxy", "http://proxy:3128")));
        assert!(!names_a_proxy(|_| None));
    }
}
