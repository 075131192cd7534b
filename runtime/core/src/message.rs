//! JSON-RPC 2.0 envelopes: decoding an inbound frame, encoding outbound messages.
//!
//! Only the envelope is decoded here (`jsonrpc`, `id`, `method`, whether `result` or `error` is
//! present). `params` and `result` stay raw JSON ([`RawValue`]) until the handler that knows
//! their type decodes them, so nothing is parsed twice.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::error::ErrorObject;

/// A request id: a string or an integer (MCP forbids `null` and fractions).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RequestId {
    /// An integer id.
    Number(i64),
    /// A string id.
    String(Arc<str>),
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::String(s) => write!(f, "{s:?}"),
        }
    }
}

impl From<i64> for RequestId {
    fn from(n: i64) -> Self {
        Self::Number(n)
    }
}

impl From<&str> for RequestId {
    fn from(s: &str) -> Self {
        Self::String(s.into())
    }
}

impl Serialize for RequestId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Number(n) => serializer.serialize_i64(*n),
            Self::String(s) => serializer.serialize_str(s),
        }
    }
}

impl<'de> Deserialize<'de> for RequestId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl Visitor<'_> for IdVisitor {
            type Value = RequestId;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or integer request id")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RequestId, E> {
                Ok(RequestId::Number(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RequestId, E> {
                i64::try_from(v)
                    .map(RequestId::Number)
                    .map_err(|_| E::custom("request id out of range"))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<RequestId, E> {
                Ok(RequestId::String(v.into()))
            }
        }
        deserializer.deserialize_any(IdVisitor)
    }
}

/// One decoded JSON-RPC message.
#[derive(Debug)]
pub enum Message {
    /// A request: expects a response with the same id.
    Request {
        /// The request id.
        id: RequestId,
        /// The method.
        method: String,
        /// The raw `params`, if any.
        params: Option<Box<RawValue>>,
    },
    /// A notification: no response.
    Notification {
        /// The method.
        method: String,
        /// The raw `params`, if any.
        params: Option<Box<RawValue>>,
    },
    /// A successful response.
    Response {
        /// The id of the request it answers.
        id: RequestId,
        /// The raw `result`.
        result: Box<RawValue>,
    },
    /// An error response; the id is absent when the other side could not read the request's id.
    Error {
        /// The id of the request it answers.
        id: Option<RequestId>,
        /// The error.
        error: ErrorObject,
    },
}

/// An element of a frame that is not a valid message: it is answered with `error` (and `id`,
/// when one could be read), unless it was a response: a broken response is dropped, since
/// answering it could start an endless exchange of errors.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    /// The id, if the element had a readable one.
    pub id: Option<RequestId>,
    /// The error to answer with (`-32700` or `-32600`).
    pub error: ErrorObject,
    /// Whether to answer at all (`false` for a broken response).
    pub answer: bool,
}

impl Invalid {
    fn new(id: Option<RequestId>, error: ErrorObject) -> Self {
        Self {
            id,
            error,
            answer: true,
        }
    }

    /// What is wrong with the element, for an error about it: `invalid JSON: <why>` (not JSON at
    /// all) or `not a JSON-RPC message: <why>` (JSON, but no message).
    pub fn describe(&self) -> String {
        let message = &self.error.message;
        if self.error.code == crate::error::PARSE_ERROR {
            format!(
                "invalid JSON: {}",
                message.strip_prefix("parse error: ").unwrap_or(message)
            )
        } else {
            format!(
                "not a JSON-RPC message: {}",
                message.strip_prefix("invalid request: ").unwrap_or(message)
            )
        }
    }

    /// Whether the element may have been the answer to a request of the receiver's that it
    /// cannot name: a broken response without a readable id, or something with no shape of a
    /// message at all (not JSON, not an object). A broken request (it names a method and an id)
    /// is the other side's, and a broken response with an id is that request's answer.
    pub fn unattributed(&self) -> bool {
        self.id.is_none()
    }
}

/// One inbound frame: a single message or a batch (a JSON array of messages).
#[derive(Debug)]
pub enum Inbound {
    /// A single message.
    Single(Result<Message, Invalid>),
    /// A batch, element by element.
    Batch(Vec<Result<Message, Invalid>>),
}

/// The members of an envelope, borrowed from the frame where possible.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    jsonrpc: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "present_borrowed")]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(default)]
    params: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    result: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    error: Option<Box<RawValue>>,
}

/// `Some(raw)` for any present member, `null` included (`Option` alone would read `null` as
/// absent, and `"result": null` is a valid result).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(deserializer).map(Some)
}

/// [`present`], borrowed from the text (the id, read into a [`RequestId`] at once).
fn present_borrowed<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(deserializer).map(Some)
}

/// Whether the JSON `text` can hold a member whose name contains one of `names` as written
/// plainly: `false` only when none of them appears and no `\u` escape could spell one. A
/// cheap test before reading params for a member most of them lack.
pub fn may_name(text: &str, names: &[&Mention]) -> bool {
    static ESCAPE: Mention = Mention::new("\\u");
    ESCAPE.is_in(text) || names.iter().any(|name| name.is_in(text))
}

/// The string a JSON value's text (`json`) holds, if it is a string: borrowed when it has no
/// escapes.
pub fn string_in(json: &str) -> Option<Cow<'_, str>> {
    match serde_json::from_str::<&str>(json) {
        Ok(text) => Some(text.into()),
        Err(_) => serde_json::from_str::<String>(json).ok().map(Into::into),
    }
}

/// A fixed text looked for in JSON text before reading it (a member's name, say): its
/// searcher is built once, on first use, where `str::contains` sets one up on every call.
/// Meant for `static`s.
pub struct Mention {
    needle: &'static str,
    finder: OnceLock<memchr::memmem::Finder<'static>>,
}

impl Mention {
    /// Looks for `needle`.
    pub const fn new(needle: &'static str) -> Self {
        Self {
            needle,
            finder: OnceLock::new(),
        }
    }

    /// Whether `text` contains the needle.
    pub fn is_in(&self, text: &str) -> bool {
        let finder = self.finder.get_or_init(|| memchr::memmem::Finder::new(self.needle));
        finder.find(text.as_bytes()).is_some()
    }
}

/// Decodes one inbound frame. Never fails: what cannot be understood becomes an [`Invalid`]
/// element carrying the error to answer with.
pub fn decode(frame: &str) -> Inbound {
    let trimmed = frame.trim_start();
    if trimmed.starts_with('[') {
        let elements: Vec<&RawValue> = match serde_json::from_str(trimmed) {
            Ok(elements) => elements,
            Err(e) => return Inbound::Single(Err(Invalid::new(None, ErrorObject::parse_error(e)))),
        };
        if elements.is_empty() {
            return Inbound::Single(Err(Invalid::new(None, ErrorObject::invalid_request("empty batch"))));
        }
        return Inbound::Batch(elements.into_iter().map(|raw| decode_one(raw.get())).collect());
    }
    // The common case in one pass: a frame that reads as a message is JSON. Anything else is
    // read again below, to tell "not JSON" (-32700) from "JSON but not a message" (-32600).
    if let Ok(message) = decode_one(trimmed) {
        return Inbound::Single(Ok(message));
    }
    match serde_json::from_str::<&RawValue>(trimmed) {
        Err(e) => Inbound::Single(Err(Invalid::new(None, ErrorObject::parse_error(e)))),
        Ok(raw) => Inbound::Single(decode_one(raw.get())),
    }
}

/// Decodes one element that is known to be JSON.
fn decode_one(text: &str) -> Result<Message, Invalid> {
    let envelope: Envelope<'_> = match serde_json::from_str(text) {
        Ok(envelope) => envelope,
        Err(e) if e.classify() == serde_json::error::Category::Data => {
            return Err(Invalid::new(
                None,
                ErrorObject::invalid_request(format!("not a JSON-RPC message object ({e})")),
            ));
        }
        Err(e) => return Err(Invalid::new(None, ErrorObject::parse_error(e))),
    };
    let is_response = envelope.method.is_none() && (envelope.result.is_some() || envelope.error.is_some());
    let invalid = |id: Option<RequestId>, detail: &str| Invalid {
        id,
        error: ErrorObject::invalid_request(detail),
        answer: !is_response,
    };
    // `null` is an id only an error response may carry (its request's id was unreadable).
    let id = match envelope.id.map(RawValue::get) {
        None => None,
        Some("null") if envelope.error.is_some() => None,
        Some(raw) => match serde_json::from_str::<RequestId>(raw) {
            Ok(id) => Some(id),
            Err(_) => {
                return Err(invalid(
                    None,
                    &format!("`id` must be a string or an integer, got {raw}"),
                ));
            }
        },
    };
    if envelope.jsonrpc.as_deref() != Some("2.0") {
        let got = envelope
            .jsonrpc
            .as_deref()
            .map_or("nothing".to_string(), |v| format!("{v:?}"));
        return Err(invalid(id, &format!("`jsonrpc` must be \"2.0\", got {got}")));
    }
    match (envelope.method, envelope.result, envelope.error) {
        (Some(method), None, None) => match id {
            Some(id) => Ok(Message::Request {
                id,
                method: method.into_owned(),
                params: envelope.params,
            }),
            None => Ok(Message::Notification {
                method: method.into_owned(),
                params: envelope.params,
            }),
        },
        (Some(_), _, _) => Err(invalid(id, "a request cannot carry `result` or `error`")),
        (None, Some(_), Some(_)) => Err(invalid(id, "a response cannot carry both `result` and `error`")),
        (None, Some(result), None) => match id {
            Some(id) => Ok(Message::Response { id, result }),
            None => Err(invalid(None, "a response needs the `id` of its request")),
        },
        (None, None, Some(error)) => match serde_json::from_str::<ErrorObject>(error.get()) {
            Ok(error) => Ok(Message::Error { id, error }),
            Err(e) => Err(invalid(id, &format!("`error` must be {{code, message, data?}}: {e}"))),
        },
        (None, None, None) => Err(invalid(id, "no `method`, `result` or `error`")),
    }
}

/// `{"jsonrpc":"2.0","id":…,"method":…,"params":…}`.
pub fn encode_request(id: &RequestId, method: &str, params: Option<&RawValue>) -> String {
    let mut out = Writer::new(method.len() + params.map_or(0, |p| p.get().len()));
    out.id(id);
    out.method(method);
    if let Some(params) = params {
        out.member(r#","params":"#, params);
    }
    out.finish()
}

/// `{"jsonrpc":"2.0","method":…,"params":…}`.
pub fn encode_notification(method: &str, params: Option<&RawValue>) -> String {
    let mut out = Writer::new(method.len() + params.map_or(0, |p| p.get().len()));
    out.method(method);
    if let Some(params) = params {
        out.member(r#","params":"#, params);
    }
    out.finish()
}

/// `{"jsonrpc":"2.0","id":…,"result":…}`: the answer to every request goes through here.
pub fn encode_result(id: &RequestId, result: &JsonText) -> String {
    let mut out = Writer::new(result.get().len());
    out.id(id);
    out.push(r#","result":"#, result.get());
    out.finish()
}

/// The text of a JSON value that is known to be valid JSON: what a service answers a request
/// with ([`crate::Service::request`]), written into the response as it is.
///
/// It is made from a `Box<RawValue>` (which serde_json checked, at no cost), by encoding a
/// value ([`JsonText::encode`]), or by checking text ([`JsonText::parse`]); and, inside this crate,
/// from text the framework put together from such parts (a result with the server's `_meta`
/// spliced in, a relayed result with the upstream's cut out), which serde_json would only
/// turn into a `RawValue` by reading all of it again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonText(Box<str>);

impl JsonText {
    /// `value` encoded.
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::to_string(value).map(|text| Self(text.into()))
    }

    /// `text`, checked to be JSON.
    pub fn parse(text: String) -> Result<Self, serde_json::Error> {
        RawValue::from_string(text).map(Self::from)
    }

    /// Text this crate put together from valid JSON only (see the type's docs).
    pub(crate) fn trusted(text: String) -> Self {
        Self(text.into())
    }

    /// The text.
    pub fn get(&self) -> &str {
        &self.0
    }

    /// The value read as `T`.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.0)
    }
}

impl From<Box<RawValue>> for JsonText {
    fn from(raw: Box<RawValue>) -> Self {
        Self(raw.into())
    }
}

impl fmt::Display for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Calls `each` with the key (its text between the quotes, escapes as written) and the value's
/// text of each member of `object`, the text of a JSON object known to be valid JSON (a
/// `RawValue`'s, a [`JsonText`]'s), until `each` answers `false`. Not a validator: on valid JSON
/// it finds the members, skipping their values (a string to its closing quote, an array or
/// object to its closing bracket) unread. `true` when every member was seen and `each` took
/// it; `false` when `each` refused one or the text is no object.
pub fn each_member<'a>(object: &'a str, mut each: impl FnMut(&'a str, &'a str) -> bool) -> bool {
    let bytes = object.as_bytes();
    let mut at = skip_space(bytes, 0);
    if bytes.get(at) != Some(&b'{') {
        return false;
    }
    at = skip_space(bytes, at + 1);
    if bytes.get(at) == Some(&b'}') {
        return skip_space(bytes, at + 1) == bytes.len();
    }
    loop {
        if bytes.get(at) != Some(&b'"') {
            return false;
        }
        let Some(key_end) = string_end(bytes, at) else {
            return false;
        };
        let key = &object[at + 1..key_end - 1];
        at = skip_space(bytes, key_end);
        if bytes.get(at) != Some(&b':') {
            return false;
        }
        let start = skip_space(bytes, at + 1);
        let Some(end) = value_end(bytes, start) else {
            return false;
        };
        if !each(key, &object[start..end]) {
            return false;
        }
        at = skip_space(bytes, end);
        match bytes.get(at) {
            Some(b',') => at = skip_space(bytes, at + 1),
            Some(b'}') => return skip_space(bytes, at + 1) == bytes.len(),
            _ => return false,
        }
    }
}

/// The index of the first byte at or after `at` that is not JSON whitespace.
fn skip_space(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// The index just after the string that starts (with its quote) at `at`.
fn string_end(bytes: &[u8], at: usize) -> Option<usize> {
    let mut from = at + 1;
    loop {
        let found = from + memchr::memchr2(b'"', b'\\', bytes.get(from..)?)?;
        if bytes[found] == b'"' {
            return Some(found + 1);
        }
        // An escape: the character after the backslash never ends the string.
        from = found + 2;
    }
}

/// The index just after the value that starts at `at`.
fn value_end(bytes: &[u8], at: usize) -> Option<usize> {
    match bytes.get(at)? {
        b'"' => string_end(bytes, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            loop {
                match bytes.get(i)? {
                    b'"' => {
                        i = string_end(bytes, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        // A number, `true`, `false` or `null`: up to what ends it.
        _ => {
            let len = bytes[at..]
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .unwrap_or(bytes.len() - at);
            (len > 0).then_some(at + len)
        }
    }
}

/// `object` (an object's text, valid JSON) written again without the members whose key (as
/// [`each_member`] gives it: unescaped text between the quotes) `cut` names: `{`, the members
/// kept as they were written (`"key":value`, each value's text unchanged), `,` between them,
/// `}` (the whitespace between members is not kept). `None` when the text is no object.
pub(crate) fn without_members(object: &str, cut: impl Fn(&str) -> bool) -> Option<String> {
    let mut kept = String::with_capacity(object.len());
    kept.push('{');
    let read = each_member(object, |key, value| {
        if !cut(key) {
            if kept.len() > 1 {
                kept.push(',');
            }
            kept.push('"');
            kept.push_str(key);
            kept.push_str("\":");
            kept.push_str(value);
        }
        true
    });
    kept.push('}');
    read.then_some(kept)
}

/// An outbound envelope written member by member into one buffer of the right size (where
/// serializing a struct of its members grows its buffer a few times for a message of a few
/// hundred bytes): the same text serde_json writes for such a struct.
struct Writer(String);

impl Writer {
    /// Starts an envelope whose members other than `jsonrpc` and `id` are about `size` bytes.
    fn new(size: usize) -> Self {
        let mut out = String::with_capacity(size + 64);
        out.push_str(r#"{"jsonrpc":"2.0""#);
        Self(out)
    }

    fn id(&mut self, id: &RequestId) {
        self.0.push_str(r#","id":"#);
        match id {
            RequestId::Number(n) => self.0.push_str(itoa::Buffer::new().format(*n)),
            RequestId::String(s) => self.string(s),
        }
    }

    fn method(&mut self, method: &str) {
        self.0.push_str(r#","method":"#);
        self.string(method);
    }

    /// `key` (with its comma and colon) and `value`'s text.
    fn member(&mut self, key: &str, value: &RawValue) {
        self.push(key, value.get());
    }

    /// `key` (with what goes before it) and a value's text.
    fn push(&mut self, key: &str, value: &str) {
        self.0.push_str(key);
        self.0.push_str(value);
    }

    /// A JSON string: as is between quotes when nothing in it needs escaping (a method, most
    /// ids), else as serde_json escapes it.
    fn string(&mut self, text: &str) {
        if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
            self.0.push('"');
            self.0.push_str(text);
            self.0.push('"');
        } else {
            // A string always encodes.
            self.0.push_str(&serde_json::to_string(text).unwrap_or_default());
        }
    }

    fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

/// `{"jsonrpc":"2.0","id":…,"error":…}`; the id is `null` when it could not be read.
pub fn encode_error(id: Option<&RequestId>, error: &ErrorObject) -> String {
    #[derive(Serialize)]
    struct ErrorOut<'a> {
        jsonrpc: &'static str,
        id: Option<&'a RequestId>,
        error: &'a ErrorObject,
    }
    serde_json::to_string(&ErrorOut {
        jsonrpc: "2.0",
        id,
        error,
    })
    .unwrap_or_default()
}

/// Encodes a value as raw JSON, for `params` and `result`.
pub fn to_raw<T: Serialize + ?Sized>(value: &T) -> Result<Box<RawValue>, serde_json::Error> {
    serde_json::value::to_raw_value(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scan_finds_the_top_level_members_past_nested_values_and_strings() {
        let object = r#" { "a" : {"b":[1,{"c":"}]\"{["}]} , "d":"x\\\"y" ,"e":-1.5e3,"f":[],"g":null,"h":true } "#;
        let mut seen = Vec::new();
        assert!(each_member(object, |key, value| {
            seen.push((key, value));
            true
        }));
        assert_eq!(
            seen,
            [
                ("a", r#"{"b":[1,{"c":"}]\"{["}]}"#),
                ("d", r#""x\\\"y""#),
                ("e", "-1.5e3"),
                ("f", "[]"),
                ("g", "null"),
                ("h", "true"),
            ]
        );
        assert!(each_member(" {} ", |_, _| false));
        assert!(!each_member(r#"{"a":1,"b":2}"#, |key, _| key == "a"));
        for not_an_object in ["[1]", r#""a""#, r#"{"a":1} x"#, "", "{", r#"{"a""#] {
            assert!(!each_member(not_an_object, |_, _| true), "{not_an_object}");
        }
    }

    #[test]
    fn members_are_cut_and_the_rest_written_as_they_were() {
        let cut = |object: &str| without_members(object, |key| key == "_meta" || key == "b");
        assert_eq!(cut(r#"{"_meta":{}}"#).as_deref(), Some("{}"));
        assert_eq!(cut(r#"{"a":1,"_meta":{"b":[2]}}"#).as_deref(), Some(r#"{"a":1}"#));
        assert_eq!(cut(r#"{"_meta":null,"a":1,"b":2}"#).as_deref(), Some(r#"{"a":1}"#));
        assert_eq!(
            cut(r#"{ "a" : [1, "x"] , "_meta" :{}, "b":3,"c":{"_meta":4} }"#).as_deref(),
            Some(r#"{"a":[1, "x"],"c":{"_meta":4}}"#)
        );
        assert_eq!(cut("{}").as_deref(), Some("{}"));
        // A key written with an escape is kept as written (its caller decides about those).
        assert_eq!(
            cut(r#"{"\u005fmeta":{},"a":1}"#).as_deref(),
            Some(r#"{"\u005fmeta":{},"a":1}"#)
        );
        assert_eq!(cut("[1]"), None);
    }
}
