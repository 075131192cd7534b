//! `WWW-Authenticate` parsing (RFC 9110 §11.6.1, RFC 6750 §3): the `Bearer` challenge and its
//! parameters (`resource_metadata`, `scope`, `error`, …), from any number of header lines each
//! holding any number of challenges.

use reqwest::header::HeaderValue;

/// A `Bearer` challenge: its parameters, names lower-cased, values unquoted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BearerChallenge {
    /// The parameters in the order sent; a repeated name keeps its first value.
    pub params: Vec<(String, String)>,
}

impl BearerChallenge {
    /// The first `Bearer` challenge of these `WWW-Authenticate` values.
    pub fn from_headers<'a>(values: impl IntoIterator<Item = &'a HeaderValue>) -> Option<Self> {
        values.into_iter().filter_map(|v| v.to_str().ok()).find_map(Self::parse)
    }

    /// The first `Bearer` challenge of one `WWW-Authenticate` value.
    pub fn parse(value: &str) -> Option<Self> {
        let mut parser = Parser {
            bytes: value.as_bytes(),
            at: 0,
        };
        loop {
            parser.skip(|b| b == b' ' || b == b'\t' || b == b',');
            if parser.done() {
                return None;
            }
            let scheme = parser.token();
            if scheme.is_empty() {
                // Not a token: skip the byte and look for the next challenge.
                parser.at += 1;
                continue;
            }
            let params = parser.params();
            if scheme.eq_ignore_ascii_case("bearer") {
                let mut challenge = Self::default();
                for (name, value) in params {
                    if !challenge.params.iter().any(|(n, _)| *n == name) {
                        challenge.params.push((name, value));
                    }
                }
                return Some(challenge);
            }
        }
    }

    /// A parameter's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// `resource_metadata`: the URL of the protected resource metadata (RFC 9728 §5.1).
    pub fn resource_metadata(&self) -> Option<&str> {
        self.get("resource_metadata")
    }

    /// `scope`, split on spaces.
    pub fn scopes(&self) -> Option<Vec<String>> {
        self.get("scope")
            .map(|s| s.split_ascii_whitespace().map(str::to_string).collect())
    }

    /// `error` (`invalid_token`, `insufficient_scope`, …).
    pub fn error(&self) -> Option<&str> {
        self.get("error")
    }
}

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl Parser<'_> {
    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip(&mut self, what: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&what) {
            self.at += 1;
        }
    }

    fn token(&mut self) -> String {
        let start = self.at;
        self.skip(is_tchar);
        String::from_utf8_lossy(&self.bytes[start..self.at]).into_owned()
    }

    fn quoted(&mut self) -> String {
        // At the opening quote.
        self.at += 1;
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            self.at += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(next) = self.peek() {
                        out.push(next);
                        self.at += 1;
                    }
                }
                other => out.push(other),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The `name=value` parameters after a scheme, up to the next challenge (a token not
    /// followed by `=`) or the end. A token68 is skipped.
    fn params(&mut self) -> Vec<(String, String)> {
        let mut params = Vec::new();
        loop {
            let before = self.at;
            self.skip(|b| b == b' ' || b == b'\t' || b == b',');
            let name = self.token();
            if name.is_empty() {
                if self.peek() == Some(b'=') {
                    // The padding of a token68.
                    self.skip(|b| b == b'=');
                    continue;
                }
                self.at = before.max(self.at);
                return params;
            }
            self.skip(|b| b == b' ' || b == b'\t');
            if self.peek() != Some(b'=') {
                // The next challenge's scheme, or a token68 (then followed by `,` or the end).
                let next = self.peek();
                if (next.is_none() || next == Some(b',')) && params.is_empty() {
                    continue;
                }
                self.at = before;
                // Step over the separators so the caller reads the scheme.
                self.skip(|b| b == b' ' || b == b'\t' || b == b',');
                return params;
            }
            self.at += 1;
            self.skip(|b| b == b' ' || b == b'\t');
            let value = if self.peek() == Some(b'"') {
                self.quoted()
            } else {
                let start = self.at;
                self.skip(|b| b != b',' && b != b' ' && b != b'\t');
                String::from_utf8_lossy(&self.bytes[start..self.at]).into_owned()
            };
            params.push((name.to_ascii_lowercase(), value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::BearerChallenge;

    #[test]
    fn bearer_parameters_are_read_quoted_or_not() {
        let c = BearerChallenge::parse(
            r#"Bearer error="insufficient_scope", scope="files:read files:write", resource_metadata="http://x/.well-known/oauth-protected-resource", error_description="a \"quoted\" word""#,
        )
        .expect("a bearer challenge");
        assert_eq!(c.error(), Some("insufficient_scope"));
        assert_eq!(
            c.scopes(),
            Some(vec!["files:read".to_string(), "files:write".to_string()])
        );
        assert_eq!(
            c.resource_metadata(),
            Some("http://x/.well-known/oauth-protected-resource")
        );
        assert_eq!(c.get("error_description"), Some(r#"a "quoted" word"#));
    }

    #[test]
    fn the_bearer_challenge_is_found_among_others() {
        let c = BearerChallenge::parse(r#"Basic realm="a", DPoP algs="ES256", bearer scope=x, realm=y"#)
            .expect("a bearer challenge");
        assert_eq!(c.get("scope"), Some("x"));
        assert_eq!(c.get("realm"), Some("y"));
        assert_eq!(BearerChallenge::parse("Basic abc=="), None);
        assert_eq!(
            BearerChallenge::parse("Negotiate abc==, Bearer").map(|c| c.params.len()),
            Some(0)
        );
        assert_eq!(BearerChallenge::parse(""), None);
        assert_eq!(BearerChallenge::parse("\"=,=\""), None);
    }
}
