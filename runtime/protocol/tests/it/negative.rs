//! Bad input is rejected with a message naming the type and the member at fault.

use portico_protocol::v2026_07_28 as wire;

fn error_of<T: serde::de::DeserializeOwned + std::fmt::Debug>(json: &str) -> String {
    match serde_json::from_str::<T>(json) {
        Ok(v) => panic!("accepted {json} as {v:?}"),
        Err(e) => e.to_string(),
    }
}

fn assert_mentions(message: &str, parts: &[&str]) {
    for p in parts {
        assert!(message.contains(p), "error {message:?} should mention {p:?}");
    }
}

const CALL: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;

#[test]
fn wrong_content_type_is_rejected() {
    // Untagged decoders take this for text; the tag says image, and an image needs data.
    let e = error_of::<wire::ContentBlock>(r#"{"type":"image","text":"hi"}"#);
    assert_mentions(&e, &["ImageContent.data"]);
    let e = error_of::<wire::TextContent>(r#"{"type":"image","text":"hi"}"#);
    assert_mentions(&e, &["TextContent.type", "\"text\"", "\"image\""]);
    // The same when the tag is not the first member (the buffered path).
    let e = error_of::<wire::ContentBlock>(r#"{"text":"hi","type":"image"}"#);
    assert_mentions(&e, &["ImageContent.data"]);
    let e = error_of::<wire::ContentBlock>(r#"{"type":"video","text":"hi"}"#);
    assert_mentions(&e, &["ContentBlock.type", "video", "\"text\""]);
    let e = error_of::<wire::ContentBlock>(r#"{"type":5}"#);
    assert_mentions(&e, &["ContentBlock.type", "a string"]);
}

#[test]
fn wrong_jsonrpc_version_is_rejected() {
    let bad = CALL.replace("\"2.0\"", "\"9.9\"");
    let e = error_of::<wire::CallToolRequest>(&bad);
    assert_mentions(&e, &["CallToolRequest.jsonrpc", "\"2.0\"", "\"9.9\""]);
    let e = error_of::<wire::ClientRequest>(&bad);
    assert_mentions(&e, &["CallToolRequest.jsonrpc"]);
    let e = error_of::<wire::JSONRPCMessage>(&bad);
    assert_mentions(&e, &["JSONRPCRequest.jsonrpc"]);
}

#[test]
fn result_and_error_together_are_rejected() {
    let e = error_of::<wire::JSONRPCMessage>(
        r#"{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete"},"error":{"code":-32603,"message":"x"}}"#,
    );
    assert_mentions(&e, &["JSONRPCMessage", "result", "error", "cannot both be present"]);
    let e = error_of::<wire::JSONRPCResponse>(
        r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"x"},"result":{"resultType":"complete"}}"#,
    );
    assert_mentions(&e, &["JSONRPCResponse", "cannot both be present"]);
}

#[test]
fn missing_required_member_is_rejected() {
    let e = error_of::<wire::CallToolRequest>(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#);
    assert_mentions(&e, &["missing member CallToolRequest.params"]);
    let e = error_of::<wire::ContentBlock>(r#"{"type":"text"}"#);
    assert_mentions(&e, &["missing member TextContent.text"]);
    let e =
        error_of::<wire::CallToolRequest>(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}"#);
    assert_mentions(
        &e,
        &["CallToolRequest.params", "missing member CallToolRequestParams._meta"],
    );
    let e = error_of::<wire::TextContent>(r#"{"text":"hi"}"#);
    assert_mentions(&e, &["missing member TextContent.type"]);
}

#[test]
fn unknown_method_in_a_closed_set_is_rejected() {
    let bad = CALL.replace("tools/call", "tools/frobnicate");
    let e = error_of::<wire::ClientRequest>(&bad);
    assert_mentions(
        &e,
        &["unknown ClientRequest.method", "tools/frobnicate", "\"tools/call\""],
    );
    let e = error_of::<wire::ClientRequest>(r#"{"jsonrpc":"2.0","id":1}"#);
    assert_mentions(&e, &["missing member ClientRequest.method"]);
}

#[test]
fn duplicate_and_mistyped_members_are_rejected() {
    let e = error_of::<wire::TextContent>(r#"{"type":"text","text":"a","text":"b"}"#);
    assert_mentions(&e, &["duplicate member TextContent.text"]);
    let e = error_of::<wire::TextContent>(r#"{"type":"text","text":5}"#);
    assert_mentions(&e, &["in TextContent.text", "expected a string"]);
    let e = error_of::<wire::CallToolResult>(r#"{"resultType":"complete","content":[{"type":"text","text":1}]}"#);
    assert_mentions(&e, &["in CallToolResult.content", "TextContent.text"]);
    let e = error_of::<wire::TextContent>(r#""text""#);
    assert_mentions(&e, &["TextContent object"]);
    let e = error_of::<wire::Role>(r#""robot""#);
    assert_mentions(&e, &["unknown Role \"robot\"", "\"assistant\""]);
}

#[test]
fn a_real_tools_call_dispatches_to_call_tool_request() {
    let request: wire::ClientRequest = serde_json::from_str(CALL).expect("a valid tools/call");
    let wire::ClientRequest::CallTool(call) = &request else {
        panic!("dispatched to {request:?}")
    };
    assert_eq!(call.params.name, "echo");
    assert_eq!(call.id, wire::RequestId::Integer(7));
    assert_eq!(call.params.meta.protocol_version, "2026-07-28");
    // Encoding gives the same message back.
    let back: serde_json::Value = serde_json::to_value(&request).expect("serializes");
    assert_eq!(back, serde_json::from_str::<serde_json::Value>(CALL).expect("JSON"));
}

#[test]
fn unknown_members_pass_through() {
    let json = r#"{"type":"text","text":"hi","x-vendor":{"a":[1,2.5,null]}}"#;
    let block: wire::ContentBlock = serde_json::from_str(json).expect("extra members are allowed");
    let wire::ContentBlock::Text(text) = &block else {
        panic!("{block:?}")
    };
    assert_eq!(text.extra["x-vendor"]["a"][1], serde_json::json!(2.5));
    assert_eq!(
        serde_json::to_value(&block).expect("serializes"),
        serde_json::from_str::<serde_json::Value>(json).expect("JSON")
    );
}

#[test]
fn result_type_dispatch_keeps_open_values() {
    let input = r#"{"resultType":"input_required","requestState":"abc"}"#;
    let r: wire::CallToolResultResponseResult = serde_json::from_str(input).expect("input required");
    assert!(
        matches!(r, wire::CallToolResultResponseResult::InputRequired(_)),
        "{r:?}"
    );
    // Without a resultType the value is taken for a complete result, which in this revision
    // must carry one (older servers are read with their own revision's types).
    let e = error_of::<wire::CallToolResultResponseResult>(r#"{"content":[]}"#);
    assert_mentions(&e, &["missing member CallToolResult.resultType"]);
    // An unknown resultType is the open case of a complete result, not a decoding error.
    let r: wire::CallToolResultResponseResult =
        serde_json::from_str(r#"{"resultType":"partial","content":[]}"#).expect("an open value");
    assert!(matches!(r, wire::CallToolResultResponseResult::CallTool(_)), "{r:?}");
}

#[test]
fn json_values_admit_fractions_and_null() {
    // spec/patches.toml widens JSONValue of 2026-07-28.
    for json in ["1.5", "null", "-3", "\"s\"", "[1,{\"a\":null}]", "true"] {
        let v: wire::JSONValue = serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"));
        assert_eq!(serde_json::to_string(&v).expect("serializes"), json.replace(' ', ""));
    }
}
