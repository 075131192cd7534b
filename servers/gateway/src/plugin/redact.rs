//! `redact`: replaces secrets and personal data in results before the client gets them.
//!
//! ```yaml
//! - name: redact
//!   kind: redact
//!   builtins: [email, credit_card, aws_access_key, bearer_token, jwt, private_key, us_ssn]
//!   patterns:
//!     - {name: project, literal: "Project Nightingale"}
//!     - {name: employee_id, regex: "EMP-[0-9]{6}"}
//!   replacement: "[redacted:{kind}]"
//! ```
//!
//! Every string of the result is looked at — text content, `structuredContent`, a resource's
//! `text`, a prompt's messages, embedded resources — except `_meta`, base64 payloads (`blob`, the
//! `data` of image and audio content) and object keys. What a pattern matches is replaced by
//! `replacement`, its `{kind}` being the pattern's name (`[redacted:email]`), and the count per
//! kind is annotated (`{"redacted": {"email": 2}}`), when there is any.
//!
//! The built-in patterns are small hand-written matchers (no regular expressions):
//!
//! | name | matches |
//! |---|---|
//! | `email` | `local@domain.tld` (the local part of letters, digits and `._%+-`; a domain with a dot and a top-level part of two letters or more) |
//! | `credit_card` | 13 to 19 digits starting with 2 to 6, alone or in groups split by single spaces or dashes, that pass the Luhn check |
//! | `aws_access_key` | `AKIA`, `ASIA`, `ABIA` or `ACCA` and 16 capital letters or digits |
//! | `bearer_token` | the token after `Bearer ` (any case), 8 characters or more |
//! | `jwt` | three base64url segments split by dots, the first starting `eyJ` (a JSON object) |
//! | `private_key` | a `-----BEGIN … PRIVATE KEY-----` block to its `-----END … PRIVATE KEY-----` line (to the end of the text when it has none) |
//! | `us_ssn` | `123-45-6789`, without the numbers never issued (area `000`, `666`, `9xx`; group `00`; serial `0000`) |
//!
//! `builtins` chooses among them (default: all); `patterns` adds the operator's own, each
//! `{name, literal}` (the text itself, case sensitive) or `{name, regex}` (a regular expression
//! of the `regex` crate, which runs in linear time; already in the gateway's tree through
//! `jsonschema`). Where two matches overlap, the one that starts first (then the longer) is
//! replaced.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Hook, Options, Plugin, PluginFuture, PluginRequest, Verdict};
use crate::config::ConfigError;

/// The built-in patterns, by name, in the order they are preferred when two matches start at
/// the same place and are as long.
pub const BUILTINS: &[&str] = &[
    "private_key",
    "jwt",
    "bearer_token",
    "aws_access_key",
    "credit_card",
    "us_ssn",
    "email",
];

/// The largest compiled regular expression accepted, in bytes.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// One pattern.
enum Matcher {
    /// A built-in one, by its index in [`BUILTINS`].
    Builtin(usize),
    Literal(String),
    Regex(regex::Regex),
}

struct Pattern {
    name: String,
    matcher: Matcher,
}

/// An operator's pattern, as configured.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatternConfig {
    name: String,
    #[serde(default)]
    literal: Option<String>,
    #[serde(default)]
    regex: Option<String>,
}

/// The `redact` plugin.
pub struct Redact {
    patterns: Vec<Pattern>,
    replacement: String,
}

impl std::fmt::Debug for Redact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.patterns.iter().map(|p| p.name.as_str()).collect();
        f.debug_struct("Redact")
            .field("patterns", &names)
            .field("replacement", &self.replacement)
            .finish()
    }
}

impl Redact {
    /// From its options: `builtins`, `patterns`, `replacement`.
    pub fn from_options(options: &mut Options) -> Result<Self, ConfigError> {
        let builtins: Vec<String> = options
            .take("builtins")?
            .unwrap_or_else(|| BUILTINS.iter().map(|b| (*b).to_string()).collect());
        let mut patterns = Vec::new();
        for (i, name) in builtins.iter().enumerate() {
            let Some(index) = BUILTINS.iter().position(|b| b == name) else {
                let mut known = BUILTINS.to_vec();
                known.sort_unstable();
                return Err(options.invalid(
                    &format!("builtins[{i}]"),
                    format!("unknown built-in pattern `{name}`; known: {}", known.join(", ")),
                ));
            };
            patterns.push(Pattern {
                name: name.clone(),
                matcher: Matcher::Builtin(index),
            });
        }
        // Built-ins in their order of preference, whatever the order given.
        patterns.sort_by_key(|p| match p.matcher {
            Matcher::Builtin(index) => index,
            _ => usize::MAX,
        });
        let own: Vec<Value> = options.take("patterns")?.unwrap_or_default();
        for (i, value) in own.into_iter().enumerate() {
            let key = format!("patterns[{i}]");
            let config: PatternConfig =
                serde_json::from_value(value).map_err(|e| options.invalid(&key, e.to_string()))?;
            if config.name.is_empty() {
                return Err(options.invalid(&format!("{key}.name"), "must not be empty"));
            }
            let matcher = match (config.literal, config.regex) {
                (Some(literal), None) if !literal.is_empty() => Matcher::Literal(literal),
                (Some(_), None) => return Err(options.invalid(&format!("{key}.literal"), "must not be empty")),
                (None, Some(regex)) => Matcher::Regex(
                    regex::RegexBuilder::new(&regex)
                        .size_limit(REGEX_SIZE_LIMIT)
                        .build()
                        // The parser's message spans lines (the pattern, a caret): one line here.
                        .map_err(|e| {
                            let message = e.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
                            options.invalid(&format!("{key}.regex"), message)
                        })?,
                ),
                _ => return Err(options.invalid(&key, "needs exactly one of `literal` and `regex`")),
            };
            patterns.push(Pattern {
                name: config.name,
                matcher,
            });
        }
        if patterns.is_empty() {
            return Err(options.invalid("builtins", "no pattern left to redact: give `builtins` or `patterns`"));
        }
        let replacement = options
            .take("replacement")?
            .unwrap_or_else(|| "[redacted:{kind}]".to_string());
        Ok(Self { patterns, replacement })
    }

    /// `text` with every match replaced, if anything matched; counts by pattern name.
    pub fn redact_text(&self, text: &str, counts: &mut BTreeMap<String, u64>) -> Option<String> {
        let mut found: Vec<(usize, usize, usize)> = Vec::new();
        for (p, pattern) in self.patterns.iter().enumerate() {
            let mut add = |start: usize, end: usize| {
                if end > start {
                    found.push((start, end, p));
                }
            };
            match &pattern.matcher {
                Matcher::Builtin(index) => builtin(*index, text, &mut add),
                Matcher::Literal(literal) => text
                    .match_indices(literal.as_str())
                    .for_each(|(at, m)| add(at, at + m.len())),
                Matcher::Regex(regex) => regex.find_iter(text).for_each(|m| add(m.start(), m.end())),
            }
        }
        if found.is_empty() {
            return None;
        }
        // The first to start wins, then the longer, then the pattern listed first.
        found.sort_by_key(|&(start, end, p)| (start, std::cmp::Reverse(end), p));
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (start, end, p) in found {
            if start < at {
                continue;
            }
            let name = &self.patterns[p].name;
            out.push_str(&text[at..start]);
            out.push_str(&self.replacement.replace("{kind}", name));
            *counts.entry(name.clone()).or_default() += 1;
            at = end;
        }
        out.push_str(&text[at..]);
        Some(out)
    }

    /// Redacts every string of `value` (see the module docs for what is left alone).
    pub fn redact_value(&self, value: &mut Value, counts: &mut BTreeMap<String, u64>) {
        match value {
            Value::String(text) => {
                if let Some(redacted) = self.redact_text(text, counts) {
                    *text = redacted;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.redact_value(item, counts)),
            Value::Object(map) => {
                let media = matches!(map.get("type").and_then(Value::as_str), Some("image" | "audio"));
                for (key, item) in map.iter_mut() {
                    let payload = key == "blob" || (media && key == "data");
                    if key != "_meta" && !payload {
                        self.redact_value(item, counts);
                    }
                }
            }
            _ => {}
        }
    }
}

impl Plugin for Redact {
    fn hooks(&self) -> &[Hook] {
        &[Hook::After]
    }

    fn after<'a>(&'a self, _request: &'a PluginRequest, result: &'a mut Value) -> PluginFuture<'a, Verdict> {
        let mut counts = BTreeMap::new();
        self.redact_value(result, &mut counts);
        let verdict = if counts.is_empty() {
            Verdict::proceed()
        } else {
            let counts: Map<String, Value> = counts.into_iter().map(|(k, n)| (k, Value::from(n))).collect();
            Verdict::proceed().with_annotation("redacted", Value::Object(counts))
        };
        Box::pin(async move { Ok(verdict) })
    }
}

/// Calls `found` with the span of every match of the built-in pattern `index` in `text`.
fn builtin(index: usize, text: &str, found: &mut impl FnMut(usize, usize)) {
    let bytes = text.as_bytes();
    match BUILTINS[index] {
        "private_key" => private_keys(text, found),
        "jwt" => jwts(bytes, found),
        "bearer_token" => bearer_tokens(bytes, found),
        "aws_access_key" => aws_access_keys(bytes, found),
        "credit_card" => credit_cards(bytes, found),
        "us_ssn" => ssns(bytes, found),
        "email" => emails(bytes, found),
        _ => {}
    }
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// Whether the byte before `at` (if any) is not one `inside` accepts.
fn starts_word(bytes: &[u8], at: usize, inside: impl Fn(u8) -> bool) -> bool {
    at == 0 || !inside(bytes[at - 1])
}

/// Whether the byte at `at` (if any) is not one `inside` accepts.
fn ends_word(bytes: &[u8], at: usize, inside: impl Fn(u8) -> bool) -> bool {
    at >= bytes.len() || !inside(bytes[at])
}

/// The end of the run of bytes `inside` accepts, from `at`.
fn run(bytes: &[u8], mut at: usize, inside: impl Fn(u8) -> bool) -> usize {
    while at < bytes.len() && inside(bytes[at]) {
        at += 1;
    }
    at
}

fn emails(bytes: &[u8], found: &mut impl FnMut(usize, usize)) {
    let local = |b: u8| is_alnum(b) || b"._%+-".contains(&b);
    let domain = |b: u8| is_alnum(b) || b == b'.' || b == b'-';
    let mut from = 0;
    while let Some(offset) = bytes[from..].iter().position(|&b| b == b'@') {
        let at = from + offset;
        from = at + 1;
        let mut start = at;
        while start > 0 && local(bytes[start - 1]) {
            start -= 1;
        }
        while start < at && bytes[start] == b'.' {
            start += 1;
        }
        if start == at {
            continue;
        }
        let mut end = run(bytes, at + 1, domain);
        while end > at + 1 && matches!(bytes[end - 1], b'.' | b'-') {
            end -= 1;
        }
        let host = &bytes[at + 1..end];
        let labels: Vec<&[u8]> = host.split(|&b| b == b'.').collect();
        let tld = labels.last().copied().unwrap_or_default();
        let valid = labels.len() >= 2
            && labels.iter().all(|l| !l.is_empty() && l[0] != b'-')
            && tld.len() >= 2
            && tld.iter().all(u8::is_ascii_alphabetic);
        if valid {
            found(start, end);
            from = end;
        }
    }
}

/// Whether `digits` pass the Luhn check.
fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(d - b'0');
            if i % 2 == 1 {
                let twice = d * 2;
                if twice > 9 { twice - 9 } else { twice }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn credit_cards(bytes: &[u8], found: &mut impl FnMut(usize, usize)) {
    let mut at = 0;
    while at < bytes.len() {
        if !bytes[at].is_ascii_digit() || !starts_word(bytes, at, is_alnum) {
            at += 1;
            continue;
        }
        // Groups of digits split by single spaces or dashes: (start, end) of each.
        let mut groups = Vec::new();
        let mut cursor = at;
        loop {
            let end = run(bytes, cursor, |b| b.is_ascii_digit());
            groups.push((cursor, end));
            let separated =
                end + 1 < bytes.len() && matches!(bytes[end], b' ' | b'-') && bytes[end + 1].is_ascii_digit();
            if !separated || groups.len() > 19 {
                break;
            }
            cursor = end + 1;
        }
        let last_end = groups.last().map_or(at, |g| g.1);
        let mut matched = None;
        'starts: for first in 0..groups.len() {
            if first > 0 && !matches!(bytes[groups[first].0 - 1], b' ' | b'-') {
                continue;
            }
            let mut digits = Vec::with_capacity(19);
            let mut best = None;
            for (g, &(start, end)) in groups.iter().enumerate().skip(first) {
                digits.extend_from_slice(&bytes[start..end]);
                if digits.len() > 19 {
                    break;
                }
                let closes = g + 1 < groups.len() || ends_word(bytes, end, is_alnum);
                if digits.len() >= 13 && closes && (b'2'..=b'6').contains(&digits[0]) && luhn(&digits) {
                    best = Some((groups[first].0, end));
                }
            }
            if let Some(span) = best {
                matched = Some(span);
                break 'starts;
            }
        }
        match matched {
            Some((start, end)) => {
                found(start, end);
                at = end;
            }
            None => at = last_end,
        }
    }
}

fn aws_access_keys(bytes: &[u8], found: &mut impl FnMut(usize, usize)) {
    let key = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit();
    for at in 0..bytes.len().saturating_sub(19) {
        let prefix = &bytes[at..at + 4];
        if [b"AKIA", b"ASIA", b"ABIA", b"ACCA"].iter().any(|p| prefix == *p)
            && starts_word(bytes, at, is_alnum)
            && bytes[at + 4..at + 20].iter().all(|&b| key(b))
            && ends_word(bytes, at + 20, is_alnum)
        {
            found(at, at + 20);
        }
    }
}

fn bearer_tokens(bytes: &[u8], found: &mut impl FnMut(usize, usize)) {
    let token = |b: u8| is_alnum(b) || b"-._~+/".contains(&b);
    let mut at = 0;
    while at + 6 < bytes.len() {
        if bytes[at..at + 6].eq_ignore_ascii_case(b"bearer") && starts_word(bytes, at, is_alnum) {
            let start = run(bytes, at + 6, |b| b == b' ');
            if start > at + 6 {
                let mut end = run(bytes, start, token);
                end = run(bytes, end, |b| b == b'=');
                if end - start >= 8 {
                    found(start, end);
                    at = end;
                    continue;
                }
            }
        }
        at += 1;
    }
}

fn jwts(bytes: &[u8], found: &mut impl FnMut(usize, usize)) {
    let segment = |b: u8| is_alnum(b) || b == b'-' || b == b'_';
    let mut at = 0;
    while at + 3 <= bytes.len() {
        if &bytes[at..at + 3] != b"eyJ" || !starts_word(bytes, at, segment) {
            at += 1;
            continue;
        }
        let header = run(bytes, at, segment);
        let shaped = header - at >= 10 && bytes.get(header) == Some(&b'.');
        let payload = if shaped {
            run(bytes, header + 1, segment)
        } else {
            header
        };
        if shaped && payload - header > 2 && bytes.get(payload) == Some(&b'.') {
            let end = run(bytes, payload + 1, segment);
            found(at, end);
            at = end;
        } else {
            at = header.max(at + 1);
        }
    }
}

fn private_keys(text: &str, found: &mut impl FnMut(usize, usize)) {
    const BEGIN: &str = "-----BEGIN ";
    const TAIL: &str = "PRIVATE KEY-----";
    let mut from = 0;
    while let Some(offset) = text[from..].find(BEGIN) {
        let start = from + offset;
        let line_end = text[start..].find('\n').map_or(text.len(), |n| start + n);
        if !text[start..line_end].contains(TAIL) {
            from = start + BEGIN.len();
            continue;
        }
        let end = text[line_end..]
            .find("-----END ")
            .and_then(|n| {
                let end_start = line_end + n;
                text[end_start..].find(TAIL).map(|t| end_start + t + TAIL.len())
            })
            .unwrap_or(text.len());
        found(start, end);
        from = end;
    }
}

fn ssns(bytes: &[u8], found: &mut impl FnMut(usize, usize)) {
    let digits = |range: &[u8]| range.iter().all(u8::is_ascii_digit);
    let edge = |b: u8| is_alnum(b) || b == b'-';
    for at in 0..bytes.len().saturating_sub(10) {
        let candidate = &bytes[at..at + 11];
        if !(digits(&candidate[0..3])
            && candidate[3] == b'-'
            && digits(&candidate[4..6])
            && candidate[6] == b'-'
            && digits(&candidate[7..11]))
        {
            continue;
        }
        if !starts_word(bytes, at, edge) || !ends_word(bytes, at + 11, edge) {
            continue;
        }
        let (area, group, serial) = (&candidate[0..3], &candidate[4..6], &candidate[7..11]);
        if area == b"000" || area == b"666" || area[0] == b'9' || group == b"00" || serial == b"0000" {
            continue;
        }
        found(at, at + 11);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn plugin(options: Value) -> Result<Redact, ConfigError> {
        let values: BTreeMap<String, Value> = serde_json::from_value(options).expect("options");
        Redact::from_options(&mut Options::new("plugins[0]", "r", "redact", values))
    }

    fn redacted(text: &str) -> String {
        let redact = plugin(json!({})).expect("plugin");
        redact
            .redact_text(text, &mut BTreeMap::new())
            .unwrap_or_else(|| text.to_string())
    }

    #[test]
    fn builtin_patterns_find_what_they_should_and_leave_the_rest() {
        let cases = [
            ("mail ada.lovelace+x@example.co.uk.", "mail [redacted:email]."),
            (
                "not an email: a@b, @x.com, x@localhost",
                "not an email: a@b, @x.com, x@localhost",
            ),
            ("card 4111 1111 1111 1111 exp", "card [redacted:credit_card] exp"),
            ("card 4111-1111-1111-1111", "card [redacted:credit_card]"),
            ("card 5555555555554444, 2024", "card [redacted:credit_card], 2024"),
            (
                "not a card: 4111111111111112 or 1234567890123",
                "not a card: 4111111111111112 or 1234567890123",
            ),
            ("order 4111111111111111 2024", "order [redacted:credit_card] 2024"),
            ("key AKIAIOSFODNN7EXAMPLE!", "key [redacted:aws_access_key]!"),
            ("not AKIAIOSFODNN7EXAMPLEX", "not AKIAIOSFODNN7EXAMPLEX"),
            (
                "Authorization: Bearer abc.def-ghi_123",
                "Authorization: Bearer [redacted:bearer_token]",
            ),
            ("bearer short", "bearer short"),
            (
                "ssn 123-45-6789; 000-12-3456; 912-34-5678; 1-123-45-6789",
                "ssn [redacted:us_ssn]; 000-12-3456; 912-34-5678; 1-123-45-6789",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(redacted(text), expected, "{text}");
        }
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZGEifQ.c2lnbmF0dXJl";
        assert_eq!(redacted(&format!("token={jwt}&x")), "token=[redacted:jwt]&x");
        assert_eq!(
            redacted(&format!("Authorization: Bearer {jwt}")),
            "Authorization: Bearer [redacted:jwt]",
            "the same span: the pattern preferred"
        );
        let key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAKC\n-----END RSA PRIVATE KEY-----";
        assert_eq!(redacted(&format!("a\n{key}\nb")), "a\n[redacted:private_key]\nb");
        assert_eq!(
            redacted("x -----BEGIN PRIVATE KEY-----\nMIIE cut"),
            "x [redacted:private_key]"
        );
        assert_eq!(
            redacted("-----BEGIN PUBLIC KEY-----\nMII\n"),
            "-----BEGIN PUBLIC KEY-----\nMII\n"
        );
        assert_eq!(redacted("çé ada@example.com ü"), "çé [redacted:email] ü");
    }

    #[test]
    fn luhn_is_checked() {
        assert!(luhn(b"4111111111111111"));
        assert!(luhn(b"378282246310005"));
        assert!(!luhn(b"4111111111111112"));
    }

    #[test]
    fn operators_patterns_and_the_replacement_are_used() {
        let redact = plugin(json!({
            "builtins": ["email"],
            "patterns": [{"name": "project", "literal": "Nightingale"}, {"name": "employee", "regex": "EMP-[0-9]{6}"}],
            "replacement": "<{kind}>"
        }))
        .expect("plugin");
        let mut counts = BTreeMap::new();
        let text = redact.redact_text("Nightingale: EMP-123456, EMP-1, 123-45-6789, a@b.io", &mut counts);
        assert_eq!(
            text.as_deref(),
            Some("<project>: <employee>, EMP-1, 123-45-6789, <email>")
        );
        assert_eq!(counts.get("employee"), Some(&1));
    }

    #[tokio::test]
    async fn results_are_walked_leaving_payloads_and_meta_alone() {
        let redact = plugin(json!({})).expect("plugin");
        let mut result = json!({
            "content": [
                {"type": "text", "text": "write to ada@example.com"},
                {"type": "image", "data": "ada@example.com", "mimeType": "image/png"},
                {"type": "resource", "resource": {"uri": "test://x", "text": "ssn 123-45-6789", "blob": "ada@example.com"}}
            ],
            "structuredContent": {"people": [{"email": "bob@example.org"}]},
            "_meta": {"contact": "ada@example.com"}
        });
        let request = PluginRequest::new("tools/call", "u");
        let verdict = redact.after(&request, &mut result).await.expect("verdict");
        assert_eq!(result["content"][0]["text"], "write to [redacted:email]");
        assert_eq!(result["content"][1]["data"], "ada@example.com");
        assert_eq!(result["content"][2]["resource"]["text"], "ssn [redacted:us_ssn]");
        assert_eq!(result["content"][2]["resource"]["blob"], "ada@example.com");
        assert_eq!(result["structuredContent"]["people"][0]["email"], "[redacted:email]");
        assert_eq!(result["_meta"]["contact"], "ada@example.com");
        assert_eq!(verdict.annotations()["redacted"], json!({"email": 2, "us_ssn": 1}));
        let mut clean = json!({"content": [{"type": "text", "text": "nothing here"}]});
        assert!(
            redact
                .after(&request, &mut clean)
                .await
                .expect("verdict")
                .annotations()
                .is_empty()
        );
    }

    #[test]
    fn bad_options_name_the_key() {
        let error = |options| plugin(options).expect_err("refused").to_string();
        assert!(
            error(json!({"builtins": ["email", "phone"]}))
                .starts_with("plugins[0].builtins[1]: unknown built-in pattern `phone`")
        );
        assert_eq!(
            error(json!({"patterns": [{"name": "x", "regex": "(("}]})),
            "plugins[0].patterns[0].regex: regex parse error: (( ^ error: unclosed group"
        );
        assert!(error(json!({"patterns": [{"name": "x"}]})).starts_with("plugins[0].patterns[0]: needs exactly one"));
        assert!(
            error(json!({"patterns": [{"name": "x", "literal": "a", "regx": "b"}]}))
                .starts_with("plugins[0].patterns[0]: unknown field `regx`")
        );
        assert!(error(json!({"builtins": []})).starts_with("plugins[0].builtins: no pattern left"));
    }
}
