//! Values a transport carries beside the JSON-RPC body, mirrored from it, so intermediaries can
//! route on them without parsing the body (Streamable HTTP, 2026-07-28: `Mcp-Name` and the
//! `Mcp-Param-{Name}` headers a tool asks for with `x-mcp-header`).
//!
//! The rules kept here, once for every transport and for the gateway:
//!
//! - [`decode_value`]: the Base64 sentinel, `=?base64?{Base64 of the UTF-8 text}?=` (markers
//!   lower-case, exactly as written); any other value is taken literally.
//! - [`header_params`]: the `x-mcp-header` annotations of a tool's `inputSchema`, checked
//!   against the revision's constraints (a token, unique ignoring case, on a `string`, `integer`
//!   or `boolean` property reached from the root through `properties` keys only).
//! - [`encode_value`] and [`header_values`]: the client's side — the values to send for a
//!   call's arguments, Base64-encoded when they are not safe plain ASCII.
//! - [`check`]: a request's mirrored values against its arguments. A value present in the
//!   arguments (and not `null`) needs its header, equal after decoding (integers compared as
//!   numbers, so `42.0` matches `42`); a header whose value is absent from the arguments is a
//!   mismatch too, since an intermediary may already have acted on it. Headers of names the
//!   tool does not annotate are not ours and are ignored, as the revision requires.

use std::borrow::Cow;

use base64::Engine;
use serde_json::Value;

/// `-32020` of 2026-07-28 (HeaderMismatch): values mirrored beside the body do not match it, or
/// a required one is missing or malformed.
pub const HEADER_MISMATCH: i64 = -32020;

/// The key of a 2026-07-28 request's protocol version in its `_meta`.
pub const PROTOCOL_VERSION_KEY: &str = "io.modelcontextprotocol/protocolVersion";

/// The member of a request's params that `Mcp-Name` mirrors: `name` (`tools/call`,
/// `prompts/get`), `uri` (`resources/read`) or `taskId` (the tasks extension's `tasks/get`,
/// `tasks/update`, `tasks/cancel`, which it routes by task); `None` for other methods.
pub fn name_member(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        "tasks/get" | "tasks/update" | "tasks/cancel" => Some("taskId"),
        _ => None,
    }
}

/// What the headers of a 2026-07-28 request mirror of its body, as the client that wrote the
/// body knows it: `MCP-Protocol-Version` (the version in its `_meta`) and `Mcp-Name` (the
/// string at [`name_member`], if any). The client core attaches it to a request's extensions
/// ([`crate::Outbound::extensions`]) when it is sure of both, and the HTTP client sends the
/// headers from it rather than reading the body again; without it, the body is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// `_meta["io.modelcontextprotocol/protocolVersion"]`.
    pub version: String,
    /// The string at [`name_member`] of the params, if the method has one and it is a string.
    pub name: Option<String>,
}

/// A value a transport carried beside the body: for Streamable HTTP, the `Mcp-Param-{name}`
/// header. `value` is `None` when it is not visible ASCII text (an invalid header value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MirroredParam<'a> {
    /// The name after `Mcp-Param-`, as sent (compared ignoring ASCII case).
    pub name: &'a str,
    /// The raw value, before Base64 sentinel decoding.
    pub value: Option<&'a str>,
}

/// The JSON type of an annotated property, which decides how its header value is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// `"type": "string"`: compared as text.
    String,
    /// `"type": "integer"`: compared as a number.
    Integer,
    /// `"type": "boolean"`: `true` or `false`.
    Boolean,
}

/// One `x-mcp-header` annotation of a tool's `inputSchema`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderParam {
    /// The header name after `Mcp-Param-`, as the annotation spells it.
    pub name: String,
    /// The chain of `properties` keys from the schema root to the property.
    pub path: Vec<String>,
    /// The property's type.
    pub kind: ParamKind,
}

/// Undoes the Base64 sentinel encoding; other values are returned as they are.
pub fn decode_value(raw: &str) -> Result<Cow<'_, str>, String> {
    let Some(encoded) = raw.strip_prefix("=?base64?").and_then(|rest| rest.strip_suffix("?=")) else {
        return Ok(raw.into());
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| format!("invalid Base64 in {raw:?}: {e}"))?;
    String::from_utf8(bytes)
        .map(Into::into)
        .map_err(|_| format!("the Base64 value {raw:?} is not UTF-8"))
}

/// Encodes a value for a mirrored header (`Mcp-Name`, `Mcp-Param-*`): as it is when it is
/// plain ASCII a header can carry unchanged (visible characters and inner spaces), else the
/// Base64 sentinel `=?base64?{Base64 of the UTF-8 text}?=` — also for a value that itself looks
/// like the sentinel, so it is not decoded on the other side.
pub fn encode_value(value: &str) -> Cow<'_, str> {
    let visible = value.bytes().all(|b| (0x20..=0x7e).contains(&b));
    let padded = value.starts_with(' ') || value.ends_with(' ');
    let sentinel = value.starts_with("=?base64?") && value.ends_with("?=");
    if visible && !padded && !sentinel {
        return value.into();
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(value.as_bytes());
    format!("=?base64?{encoded}?=").into()
}

/// The `Mcp-Param-{name}` headers a client sends for `arguments`, given the tool's annotations
/// `params`: `(name, encoded value)` in annotation order. A value absent from the arguments or
/// `null` sends no header; strings go as they are, integers in decimal, booleans as
/// `true`/`false` (then [`encode_value`]). A value of another JSON type cannot be mirrored and
/// sends none (the server then refuses the call with `-32020`).
pub fn header_values(params: &[HeaderParam], arguments: Option<&Value>) -> Vec<(String, String)> {
    params
        .iter()
        .filter_map(|param| {
            let value = arguments.and_then(|a| param.path.iter().try_fold(a, |v, key| v.get(key)))?;
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                    (Some(i), _, _) => i.to_string(),
                    (_, Some(u), _) => u.to_string(),
                    // An integer written with a fraction of zero (`42.0`) is still that integer.
                    (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 1e18 => format!("{f:.0}"),
                    _ => n.to_string(),
                },
                _ => return None,
            };
            Some((param.name.clone(), encode_value(&text).into_owned()))
        })
        .collect()
}

/// The `x-mcp-header` annotations of `schema` (a tool's `inputSchema`), in schema order; an
/// error naming the offending annotation when one breaks the revision's constraints.
pub fn header_params(schema: &Value) -> Result<Vec<HeaderParam>, String> {
    let mut found = Vec::new();
    collect(schema, &mut Vec::new(), &mut found)?;
    find_misplaced(schema, "", true)?;
    for (i, param) in found.iter().enumerate() {
        if let Some(twin) = found[..i].iter().find(|p| p.name.eq_ignore_ascii_case(&param.name)) {
            return Err(format!(
                "x-mcp-header {:?} (at {}) repeats {:?} (at {}), ignoring case",
                param.name,
                param.path.join("."),
                twin.name,
                twin.path.join(".")
            ));
        }
    }
    Ok(found)
}

/// Walks `properties` chains from the root, collecting annotated properties.
fn collect(schema: &Value, path: &mut Vec<String>, found: &mut Vec<HeaderParam>) -> Result<(), String> {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Ok(());
    };
    for (key, property) in properties {
        path.push(key.clone());
        if let Some(name) = property.get("x-mcp-header") {
            let at = path.join(".");
            let name = name
                .as_str()
                .ok_or_else(|| format!("x-mcp-header at {at} is not a string"))?;
            if name.is_empty() || !name.bytes().all(is_tchar) {
                return Err(format!(
                    "x-mcp-header {name:?} at {at} is not an HTTP field-name token (1*tchar)"
                ));
            }
            let kind = match primitive_type(property.get("type")) {
                Some("string") => ParamKind::String,
                Some("integer") => ParamKind::Integer,
                Some("boolean") => ParamKind::Boolean,
                _ => {
                    return Err(format!(
                        "x-mcp-header {name:?} at {at} is on a property of type {}; only string, integer and \
                         boolean properties may be mirrored",
                        property
                            .get("type")
                            .map_or_else(|| "(none)".to_owned(), Value::to_string)
                    ));
                }
            };
            found.push(HeaderParam {
                name: name.to_owned(),
                path: path.clone(),
                kind,
            });
        }
        collect(property, path, found)?;
        path.pop();
    }
    Ok(())
}

/// The one type of a property: `"integer"`, or `["integer", "null"]` (an optional argument; a
/// `null` value is not mirrored).
fn primitive_type(ty: Option<&Value>) -> Option<&str> {
    match ty? {
        Value::String(t) => Some(t),
        Value::Array(types) => {
            let mut named = types.iter().filter_map(Value::as_str).filter(|t| *t != "null");
            let one = named.next()?;
            (named.next().is_none() && types.len() <= 2).then_some(one)
        }
        _ => None,
    }
}

/// Fails on an `x-mcp-header` that is not reached through `properties` keys alone (under
/// `items`, a composition or conditional keyword, `$defs`, …). `reachable` says whether
/// `schema` itself is on such a chain.
fn find_misplaced(schema: &Value, at: &str, reachable: bool) -> Result<(), String> {
    match schema {
        Value::Object(map) => {
            if !reachable && map.contains_key("x-mcp-header") {
                return Err(format!(
                    "x-mcp-header at {at} is not reachable from the schema root through `properties` alone"
                ));
            }
            for (key, value) in map {
                if key == "properties" && reachable {
                    if let Some(properties) = value.as_object() {
                        for (name, property) in properties {
                            find_misplaced(property, &format!("{at}/properties/{name}"), true)?;
                        }
                    }
                    continue;
                }
                find_misplaced(value, &format!("{at}/{key}"), false)?;
            }
            Ok(())
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                find_misplaced(item, &format!("{at}/{i}"), false)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Checks the mirrored values `sent` against `arguments` for the annotations `params`. The
/// error is the message of a `-32020` (HeaderMismatch).
pub fn check(params: &[HeaderParam], arguments: Option<&Value>, sent: &[MirroredParam<'_>]) -> Result<(), String> {
    for param in params {
        let header = format!("Mcp-Param-{}", param.name);
        let mut matching = sent.iter().filter(|s| s.name.eq_ignore_ascii_case(&param.name));
        let raw = matching.next();
        if matching.next().is_some() {
            return Err(format!("Header mismatch: {header} appears more than once"));
        }
        let body = arguments
            .and_then(|a| param.path.iter().try_fold(a, |v, key| v.get(key)))
            .filter(|v| !v.is_null());
        let at = param.path.join(".");
        let raw = match (raw, body) {
            (None, None) => continue,
            (None, Some(_)) => {
                return Err(format!(
                    "Header mismatch: the arguments have {at} but the {header} header that mirrors it is missing"
                ));
            }
            (Some(_), None) => {
                return Err(format!(
                    "Header mismatch: {header} is present but the arguments have no value at {at}"
                ));
            }
            (Some(raw), Some(body)) => (raw, body),
        };
        let (MirroredParam { value: Some(text), .. }, body) = raw else {
            return Err(format!(
                "Header mismatch: {header} contains characters a header value may not"
            ));
        };
        let value = decode_value(text).map_err(|e| format!("Header mismatch: {header}: {e}"))?;
        if !matches(param.kind, &value, body) {
            return Err(format!(
                "Header mismatch: {header} header value {value:?} does not match the body value {body} at {at}"
            ));
        }
    }
    Ok(())
}

/// Whether a decoded header value stands for `body`.
fn matches(kind: ParamKind, header: &str, body: &Value) -> bool {
    match (kind, body) {
        (ParamKind::String, Value::String(s)) => header == s,
        (ParamKind::Boolean, Value::Bool(b)) => header == if *b { "true" } else { "false" },
        (ParamKind::Integer, Value::Number(n)) => match (header.trim().parse::<f64>(), n.as_f64()) {
            (Ok(h), Some(b)) => h.is_finite() && h == b,
            _ => false,
        },
        // A body value of another type than the annotated one cannot have been mirrored.
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sent<'a>(name: &'a str, value: &'a str) -> MirroredParam<'a> {
        MirroredParam {
            name,
            value: Some(value),
        }
    }

    #[test]
    fn sentinel_values_decode() {
        assert_eq!(decode_value("us-west1").expect("plain"), "us-west1");
        assert_eq!(
            decode_value("=?base64?SGVsbG8sIOS4lueVjA==?=").expect("utf-8"),
            "Hello, 世界"
        );
        assert_eq!(decode_value("=?base64?IHBhZGRlZCA=?=").expect("spaces"), " padded ");
        assert_eq!(
            decode_value("=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=").expect("literal"),
            "=?base64?literal?="
        );
        assert!(decode_value("=?base64?SGVsbG8?=").is_err(), "missing padding");
        assert!(decode_value("=?base64?SGVs!!!bG8=?=").is_err(), "not the alphabet");
        assert!(decode_value("=?base64?/w==?=").is_err(), "0xFF is not UTF-8");
        // Without both markers, or with upper-case ones, the value is literal.
        assert_eq!(decode_value("=?base64?SGVsbG8=").expect("plain"), "=?base64?SGVsbG8=");
        assert_eq!(decode_value("=?BASE64?SGk=?=").expect("plain"), "=?BASE64?SGk=?=");
    }

    #[test]
    fn values_encode_as_the_revision_shows() {
        // The encoding examples of the 2026-07-28 Streamable HTTP page.
        assert_eq!(encode_value("us-west1"), "us-west1");
        assert_eq!(encode_value("Hello, 世界"), "=?base64?SGVsbG8sIOS4lueVjA==?=");
        assert_eq!(encode_value(" padded "), "=?base64?IHBhZGRlZCA=?=");
        assert_eq!(encode_value("line1\nline2"), "=?base64?bGluZTEKbGluZTI=?=");
        assert_eq!(
            encode_value("=?base64?literal?="),
            "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="
        );
        assert_eq!(encode_value("a\tb"), "=?base64?YQli?=");
        for value in ["us-west1", "Hello, 世界", " padded ", "=?base64?literal?=", ""] {
            assert_eq!(decode_value(&encode_value(value)).expect("decodes"), value);
        }
    }

    #[test]
    fn header_values_follow_the_annotations() {
        let params = header_params(&json!({"properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "limits": {"type": "object", "properties": {"max": {"type": "integer", "x-mcp-header": "Max"}}},
            "dry": {"type": "boolean", "x-mcp-header": "Dry"},
            "note": {"type": "string", "x-mcp-header": "Note"}
        }}))
        .expect("valid");
        let args = json!({"region": "Zürich", "limits": {"max": 42.0}, "dry": true, "note": null});
        let values = header_values(&params, Some(&args));
        assert_eq!(
            values,
            [
                ("Dry".to_owned(), "true".to_owned()),
                ("Max".to_owned(), "42".to_owned()),
                ("Region".to_owned(), "=?base64?WsO8cmljaA==?=".to_owned()),
            ]
        );
        // What a client sends passes the server's check.
        let sent: Vec<MirroredParam<'_>> = values
            .iter()
            .map(|(name, value)| MirroredParam {
                name,
                value: Some(value),
            })
            .collect();
        assert_eq!(check(&params, Some(&args), &sent), Ok(()));
        assert!(header_values(&params, None).is_empty());
    }

    #[test]
    fn annotations_are_found_through_properties_only() {
        let schema = json!({
            "type": "object",
            "properties": {
                "region": {"type": "string", "x-mcp-header": "Region"},
                "limits": {"type": "object", "properties": {"max": {"type": "integer", "x-mcp-header": "Max"}}},
                "dry": {"type": ["boolean", "null"], "x-mcp-header": "Dry-Run"},
                "query": {"type": "string"}
            }
        });
        let params = header_params(&schema).expect("valid");
        let names: Vec<(&str, String, ParamKind)> = params
            .iter()
            .map(|p| (p.name.as_str(), p.path.join("."), p.kind))
            .collect();
        assert_eq!(
            names,
            [
                ("Dry-Run", "dry".to_owned(), ParamKind::Boolean),
                ("Max", "limits.max".to_owned(), ParamKind::Integer),
                ("Region", "region".to_owned(), ParamKind::String),
            ]
        );
    }

    #[test]
    fn invalid_annotations_are_refused() {
        let refused = |schema: Value, needle: &str| {
            let error = header_params(&schema).expect_err("invalid");
            assert!(error.contains(needle), "{error:?} should mention {needle:?}");
        };
        refused(
            json!({"properties": {"a": {"type": "number", "x-mcp-header": "A"}}}),
            "only string, integer and boolean",
        );
        refused(
            json!({"properties": {"a": {"type": ["string", "integer"], "x-mcp-header": "A"}}}),
            "only string, integer and boolean",
        );
        refused(
            json!({"properties": {"a": {"type": "string", "x-mcp-header": "A B"}}}),
            "token",
        );
        refused(
            json!({"properties": {"a": {"type": "string", "x-mcp-header": ""}}}),
            "token",
        );
        refused(
            json!({"properties": {
                "a": {"type": "string", "x-mcp-header": "Region"},
                "b": {"type": "string", "x-mcp-header": "region"}
            }}),
            "repeats",
        );
        refused(
            json!({"properties": {"a": {"type": "array", "items": {"type": "string", "x-mcp-header": "A"}}}}),
            "not reachable",
        );
        refused(
            json!({"anyOf": [{"properties": {"a": {"type": "string", "x-mcp-header": "A"}}}]}),
            "not reachable",
        );
    }

    #[test]
    fn values_are_checked_against_the_arguments() {
        let params = header_params(&json!({"properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "count": {"type": "integer", "x-mcp-header": "Count"},
            "dry": {"type": "boolean", "x-mcp-header": "Dry"}
        }}))
        .expect("valid");
        let args = json!({"region": "us-west1", "count": 42, "dry": false});
        let ok = [sent("region", "us-west1"), sent("COUNT", "42.0"), sent("Dry", "false")];
        assert_eq!(check(&params, Some(&args), &ok), Ok(()));
        // Base64-encoded values are decoded first; unknown names are ignored.
        let encoded = [
            sent("Region", "=?base64?dXMtd2VzdDE=?="),
            sent("Count", "42"),
            sent("Dry", "false"),
            sent("Other", "x"),
        ];
        assert_eq!(check(&params, Some(&args), &encoded), Ok(()));
        let fails = |headers: &[MirroredParam<'_>], needle: &str| {
            let error = check(&params, Some(&args), headers).expect_err("mismatch");
            assert!(error.contains(needle), "{error:?} should mention {needle:?}");
        };
        fails(
            &[sent("Region", "us-east1"), sent("Count", "42"), sent("Dry", "false")],
            "does not match",
        );
        fails(&[sent("Count", "42"), sent("Dry", "false")], "missing");
        fails(
            &[
                sent("Region", "=?base64?SGVsbG8?="),
                sent("Count", "42"),
                sent("Dry", "false"),
            ],
            "Base64",
        );
        fails(
            &[sent("Region", "us-west1"), sent("Count", "43"), sent("Dry", "false")],
            "does not match",
        );
        fails(
            &[sent("Region", "us-west1"), sent("Count", "42"), sent("Dry", "False")],
            "does not match",
        );
        let invalid = MirroredParam {
            name: "Region",
            value: None,
        };
        fails(&[invalid, sent("Count", "42"), sent("Dry", "false")], "characters");
        // Absent and null values expect no header, and refuse one.
        let partial = json!({"region": null});
        assert_eq!(check(&params, Some(&partial), &[]), Ok(()));
        assert!(check(&params, Some(&partial), &[sent("Region", "x")]).is_err());
        assert_eq!(check(&params, None, &[]), Ok(()));
    }
}
