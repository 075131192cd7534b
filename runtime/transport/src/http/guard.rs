//! DNS-rebinding protection: the `Host` and `Origin` of every request checked against allow-lists
//! that start with the loopback names.
//!
//! A web page the user visits can make the browser send requests to a server on the user's
//! machine under a name the attacker controls that resolves to `127.0.0.1`. Such a request
//! carries the attacker's name in `Host` and the page's origin in `Origin`; refusing both unless
//! they are loopback names (or listed) closes that door. The checks compare names, never resolve
//! them.

use axum::http::request::Parts;
use axum::http::{StatusCode, header};

use super::error::HttpError;

/// The names a loopback server is reached by, compared case-insensitively.
const LOOPBACK: &[&str] = &["localhost", "127.0.0.1", "[::1]"];

/// An accepted `Host`: a name, and the port when only that port is accepted.
#[derive(Debug, Clone)]
struct HostRule {
    name: String,
    port: Option<String>,
}

/// The `Host` and `Origin` checks of one endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    /// `None`: any host.
    hosts: Option<Vec<HostRule>>,
    /// `None`: any origin. Entries are lower-case, without a trailing `/`.
    origins: Option<Vec<String>>,
}

impl Guard {
    pub(crate) fn new(hosts: Option<&[String]>, origins: Option<&[String]>) -> Self {
        let hosts = hosts.map(|extra| {
            LOOPBACK
                .iter()
                .map(|name| HostRule {
                    name: (*name).to_string(),
                    port: None,
                })
                .chain(extra.iter().map(|entry| {
                    let (name, port) = split_host(entry.trim());
                    HostRule {
                        name: name.to_ascii_lowercase(),
                        port: port.map(str::to_string),
                    }
                }))
                .collect()
        });
        let origins = origins.map(|extra| extra.iter().map(|o| normalize_origin(o)).collect());
        Self { hosts, origins }
    }

    /// `403` unless the request's `Host` and `Origin` are accepted.
    pub(crate) fn check(&self, parts: &Parts) -> Result<(), HttpError> {
        if let Some(rules) = &self.hosts {
            // HTTP/2 carries the authority in the URI, HTTP/1.1 in `Host`.
            let host = match parts.headers.get(header::HOST) {
                Some(value) => value.to_str().ok(),
                None => parts.uri.authority().map(|a| a.as_str()),
            };
            let Some(host) = host else {
                return Err(forbidden("the request has no readable `Host` header"));
            };
            let (name, port) = split_host(host);
            let accepted = rules.iter().any(|rule| {
                rule.name.eq_ignore_ascii_case(name) && rule.port.as_deref().is_none_or(|p| Some(p) == port)
            });
            if !accepted {
                return Err(forbidden(format!(
                    "`Host: {host}` is not an accepted name for this server (DNS-rebinding protection; \
                     add it to the allowed hosts)"
                )));
            }
        }
        if let Some(allowed) = &self.origins
            && let Some(origin) = parts.headers.get(header::ORIGIN)
        {
            let Ok(origin) = origin.to_str() else {
                return Err(forbidden("the `Origin` header is not readable"));
            };
            let normalized = normalize_origin(origin);
            if !is_loopback_origin(&normalized) && !allowed.contains(&normalized) {
                return Err(forbidden(format!(
                    "`Origin: {origin}` is not allowed to use this server (add it to the allowed origins)"
                )));
            }
        }
        Ok(())
    }
}

fn forbidden(message: impl Into<String>) -> HttpError {
    HttpError::client(StatusCode::FORBIDDEN, message)
}

/// Splits `name[:port]`, where `name` may be a bracketed IPv6 address.
fn split_host(authority: &str) -> (&str, Option<&str>) {
    // Byte searches: a `Host` is a few bytes, shorter than a `char` searcher's setup.
    let bytes = authority.as_bytes();
    let bracket = match bytes.first() {
        Some(b'[') => bytes.iter().position(|&b| b == b']'),
        _ => None,
    };
    let (name, rest) = match bracket {
        Some(end) => authority.split_at(end + 1),
        None => match bytes.iter().rposition(|&b| b == b':') {
            Some(colon) => authority.split_at(colon),
            None => (authority, ""),
        },
    };
    match rest.strip_prefix(':') {
        Some(port) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => (name, Some(port)),
        _ if rest.is_empty() => (name, None),
        // Not `name:port`: compare the whole value, which then matches no rule with a port.
        _ => (authority, None),
    }
}

fn normalize_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// `http://` or `https://` with a loopback name and any port.
fn is_loopback_origin(origin: &str) -> bool {
    let Some(authority) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let (name, _) = split_host(authority);
    LOOPBACK.contains(&name)
}

#[cfg(test)]
mod tests {
    use axum::http::Request;

    use super::*;

    fn parts(host: Option<&str>, origin: Option<&str>) -> Parts {
        let mut request = Request::builder().uri("/mcp");
        if let Some(host) = host {
            request = request.header(header::HOST, host);
        }
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        request.body(()).expect("request").into_parts().0
    }

    #[test]
    fn loopback_hosts_and_origins_pass_by_default() {
        let guard = Guard::new(Some(&[]), Some(&[]));
        for host in ["localhost", "LOCALHOST:8080", "127.0.0.1:1", "[::1]", "[::1]:3000"] {
            assert!(guard.check(&parts(Some(host), None)).is_ok(), "{host}");
        }
        for origin in ["http://localhost:5173", "https://127.0.0.1", "http://[::1]:80/"] {
            assert!(guard.check(&parts(Some("localhost"), Some(origin))).is_ok(), "{origin}");
        }
        for host in [
            "evil.example",
            "localhost.evil.example",
            "127.0.0.2",
            "[::2]:80",
            "localhost:80:80",
        ] {
            let e = guard.check(&parts(Some(host), None)).expect_err(host);
            assert_eq!(e.status, StatusCode::FORBIDDEN);
        }
        for origin in [
            "http://evil.example",
            "null",
            "file://localhost",
            "http://localhost.evil.example",
        ] {
            assert!(
                guard.check(&parts(Some("localhost"), Some(origin))).is_err(),
                "{origin}"
            );
        }
        assert!(guard.check(&parts(None, None)).is_err(), "no Host at all");
    }

    #[test]
    fn extras_and_switching_off() {
        let guard = Guard::new(
            Some(&["mcp.example.com".into(), "api.example.com:8443".into()]),
            Some(&["https://App.Example.com/".into()]),
        );
        assert!(guard.check(&parts(Some("MCP.example.com:443"), None)).is_ok());
        assert!(guard.check(&parts(Some("api.example.com:8443"), None)).is_ok());
        assert!(guard.check(&parts(Some("api.example.com:8444"), None)).is_err());
        assert!(
            guard
                .check(&parts(Some("localhost"), Some("https://app.example.com")))
                .is_ok()
        );
        assert!(
            guard
                .check(&parts(Some("localhost"), Some("https://app.example.com:444")))
                .is_err()
        );
        let open = Guard::new(None, None);
        assert!(
            open.check(&parts(Some("anything"), Some("http://evil.example")))
                .is_ok()
        );
    }
}
