//! Messages built with the generated types validate against their revision's official schema
//! (unpatched), checked with the `jsonschema` crate: draft-07 for 2024-11-05 … 2025-06-18,
//! 2020-12 for 2025-11-25 and 2026-07-28.

use serde::Serialize;
use serde_json::{Value, json};

/// Validates `message` as the definition `def` of `revision`'s schema.
fn check(revision: &str, def: &str, message: &impl Serialize) {
    let schema = crate::schema(revision);
    let defs_key = if schema.get("$defs").is_some() {
        "$defs"
    } else {
        "definitions"
    };
    let mut wrapper = serde_json::Map::new();
    wrapper.insert("$schema".into(), schema["$schema"].clone());
    wrapper.insert("$ref".into(), Value::String(format!("#/{defs_key}/{def}")));
    wrapper.insert(defs_key.into(), schema[defs_key].clone());
    let wrapper = Value::Object(wrapper);
    let validator = jsonschema::validator_for(&wrapper).unwrap_or_else(|e| panic!("{revision} schema: {e}"));
    let instance = serde_json::to_value(message).expect("serializes");
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{revision} {def} {instance} is invalid:\n{}",
        errors.join("\n")
    );
    // A value the schema rejects must fail here too, or the check proves nothing.
    assert!(
        !validator.is_valid(&json!({"jsonrpc": 2, "method": 5})),
        "{revision} {def}: the validator accepts garbage"
    );
}

fn input_schema<T: serde::de::DeserializeOwned>() -> T {
    serde_json::from_value(json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}))
        .expect("an input schema")
}

#[test]
fn revision_2026_07_28_messages_validate() {
    use portico_protocol::v2026_07_28 as w;
    let r = "2026-07-28";
    let meta = w::RequestMetaObject::new(w::ClientCapabilities::new(), r)
        .with_client_info(w::Implementation::new("portico-test", "1.0.0"));
    let mut args = serde_json::Map::new();
    args.insert("text".into(), json!("hi"));
    let call = w::CallToolRequest::new(
        w::RequestId::Integer(1),
        w::CallToolRequestParams::new(meta.clone(), "echo").with_arguments(args),
    );
    check(r, "CallToolRequest", &call);
    let result = w::CallToolResult::new(
        vec![
            w::TextContent::new("hi").into(),
            w::ImageContent::new("aGk=", "image/png").into(),
        ],
        "complete",
    )
    .with_is_error(false);
    check(r, "CallToolResult", &result);
    check(
        r,
        "CallToolResultResponse",
        &w::CallToolResultResponse::new(w::RequestId::String("a".into()), result.into()),
    );
    let tool = w::Tool::new(input_schema(), "echo").with_description("Echoes its input");
    let list = w::ListToolsResult::new("complete", vec![tool])
        .with_cache_scope(w::CacheableResultCacheScope::Public)
        .with_ttl_ms(60_000);
    check(r, "ListToolsResult", &list);
    check(
        r,
        "DiscoverRequest",
        &w::DiscoverRequest::new(w::RequestId::Integer(2), w::RequestParams::new(meta)),
    );
    let error = w::JSONRPCErrorResponse::new(w::Error::new(w::error_codes::METHOD_NOT_FOUND, "no such method"))
        .with_id(w::RequestId::Integer(3));
    check(r, "JSONRPCErrorResponse", &error);
    let progress = w::ProgressNotification::new(w::ProgressNotificationParams::new(
        serde_json::Number::from(3),
        w::ProgressToken::String("t".into()),
    ));
    check(r, "ProgressNotification", &progress);
    let mut properties = std::collections::BTreeMap::new();
    properties.insert(
        "name".to_string(),
        serde_json::from_value::<w::PrimitiveSchemaDefinition>(json!({"type": "string"})).expect("a string schema"),
    );
    let elicit = w::ElicitRequest::new(w::ElicitRequestParams::ElicitRequestForm(
        w::ElicitRequestFormParams::new("Your name?", w::ElicitRequestFormParamsRequestedSchema::new(properties)),
    ));
    let mut requests = std::collections::BTreeMap::new();
    requests.insert("name".to_string(), w::InputRequest::Elicit(elicit));
    let input = w::InputRequiredResult::new()
        .with_input_requests(requests)
        .with_request_state("opaque");
    check(r, "InputRequiredResult", &input);
}

#[test]
fn revision_2025_11_25_messages_validate() {
    use portico_protocol::v2025_11_25 as w;
    let r = "2025-11-25";
    let init = w::InitializeRequest::new(
        w::RequestId::Integer(1),
        w::InitializeRequestParams::new(
            w::ClientCapabilities::new(),
            w::Implementation::new("portico-test", "1.0.0"),
            r,
        ),
    );
    check(r, "InitializeRequest", &init);
    let call = w::CallToolRequest::new(w::RequestId::Integer(2), w::CallToolRequestParams::new("echo"));
    check(r, "CallToolRequest", &call);
    let result = w::CallToolResult::new(vec![w::TextContent::new("hi").into()]);
    check(r, "CallToolResult", &result);
    check(
        r,
        "ListToolsResult",
        &w::ListToolsResult::new(vec![w::Tool::new(input_schema(), "echo")]),
    );
    let task = w::GetTaskResult::new(
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:00:01Z",
        w::TaskStatus::Working,
        "t1",
        None,
    );
    check(r, "GetTaskResult", &task);
}

#[test]
fn revision_2025_06_18_messages_validate() {
    use portico_protocol::v2025_06_18 as w;
    let r = "2025-06-18";
    let init = w::InitializeRequest::new(w::InitializeRequestParams::new(
        w::ClientCapabilities::new(),
        w::Implementation::new("portico-test", "1.0.0"),
        r,
    ));
    check(r, "InitializeRequest", &init);
    check(
        r,
        "CallToolResult",
        &w::CallToolResult::new(vec![w::TextContent::new("hi").into()]),
    );
}

#[test]
fn revision_2025_03_26_messages_validate() {
    use portico_protocol::v2025_03_26 as w;
    let r = "2025-03-26";
    check(
        r,
        "CallToolRequest",
        &w::CallToolRequest::new(w::CallToolRequestParams::new("echo")),
    );
    check(
        r,
        "CallToolResult",
        &w::CallToolResult::new(vec![w::TextContent::new("hi").into()]),
    );
    check(
        r,
        "ListToolsResult",
        &w::ListToolsResult::new(vec![w::Tool::new(input_schema(), "echo")]),
    );
}

#[test]
fn revision_2024_11_05_messages_validate() {
    use portico_protocol::v2024_11_05 as w;
    let r = "2024-11-05";
    let init = w::InitializeRequest::new(w::InitializeRequestParams::new(
        w::ClientCapabilities::new(),
        w::Implementation::new("portico-test", "1.0.0"),
        r,
    ));
    check(r, "InitializeRequest", &init);
    check(
        r,
        "CallToolRequest",
        &w::CallToolRequest::new(w::CallToolRequestParams::new("echo")),
    );
    check(
        r,
        "CallToolResult",
        &w::CallToolResult::new(vec![w::TextContent::new("hi").into()]),
    );
    check(
        r,
        "JSONRPCRequest",
        &w::JSONRPCRequest::new(w::RequestId::Integer(1), "ping"),
    );
}
