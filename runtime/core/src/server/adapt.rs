//! Revision adapters: a result built with the newest revision's types, made fit for a client
//! that negotiated an older revision, so it never receives a member its revision lacks.
//!
//! Each rule is a documented difference between revisions (their changelogs), applied to the
//! encoded result. Tests validate every adapted result against the negotiated revision's schema.

use serde_json::Value;

/// Members of results that first appear in 2026-07-28.
const RESULT_MEMBERS_2026: &[&str] = &["resultType", "ttlMs", "cacheScope"];
/// `_meta` keys of results that first appear in 2026-07-28.
const RESULT_META_2026: &[&str] = &["io.modelcontextprotocol/serverInfo"];
/// Members of `Tool` newer than 2025-06-18 / 2025-03-26, with the revision that added them.
const TOOL_MEMBERS: &[(&str, &str)] = &[
    ("title", "2025-06-18"),
    ("outputSchema", "2025-06-18"),
    ("_meta", "2025-06-18"),
    ("icons", "2025-11-25"),
    ("execution", "2025-11-25"),
    ("annotations", "2025-03-26"),
];
/// Members of `Implementation` newer than the revision given.
const IMPLEMENTATION_MEMBERS: &[(&str, &str)] = &[
    ("title", "2025-06-18"),
    ("icons", "2025-11-25"),
    ("websiteUrl", "2025-11-25"),
    ("description", "2025-11-25"),
];

/// Adapts the `result` of `method` for a client at `revision` (a stateful revision).
pub fn result(revision: &str, method: &str, mut result: Value) -> Value {
    let Some(object) = result.as_object_mut() else {
        return result;
    };
    for member in RESULT_MEMBERS_2026 {
        object.remove(*member);
    }
    if let Some(Value::Object(meta)) = object.get_mut("_meta") {
        for key in RESULT_META_2026 {
            meta.remove(*key);
        }
        if meta.is_empty() {
            object.remove("_meta");
        }
    }
    match method {
        "tools/list" => {
            if let Some(Value::Array(tools)) = object.get_mut("tools") {
                for tool in tools.iter_mut().filter_map(Value::as_object_mut) {
                    drop_newer(tool, TOOL_MEMBERS, revision);
                }
            }
        }
        "initialize" => {
            if let Some(Value::Object(info)) = object.get_mut("serverInfo") {
                drop_newer(info, IMPLEMENTATION_MEMBERS, revision);
            }
        }
        _ => {}
    }
    result
}

/// Whether [`result`] changes nothing of `method`'s results but their envelope (the members
/// and `_meta` keys of 2026-07-28's results): a result's text without those is answered to a
/// session's client of any revision as it is.
pub fn envelope_only(method: &str) -> bool {
    !matches!(method, "tools/list" | "initialize")
}

/// Removes the members added after `revision` (dates compare as strings).
fn drop_newer(object: &mut serde_json::Map<String, Value>, members: &[(&str, &str)], revision: &str) {
    for (member, since) in members {
        if revision < *since {
            object.remove(*member);
        }
    }
}
