//! Input schemas that must reach the client as written: JSON Schema 2020-12 keywords, and the
//! `x-mcp-header` annotation.

use serde_json::{Value, json};

use crate::{both, first_text, server};

async fn listed(c: &mut crate::Client, name: &str) -> Value {
    let x = c.request("tools/list", json!({})).await;
    x.result()["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("{name} is listed"))
        .clone()
}

#[tokio::test]
async fn the_2020_12_schema_is_listed_keyword_for_keyword() {
    let expected = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {"address": {"$anchor": "addressDef", "type": "object",
                              "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
        "properties": {
            "name": {"type": "string"},
            "address": {"$ref": "#/$defs/address"},
            "contactMethod": {"type": "string", "enum": ["phone", "email"]},
            "phone": {"type": "string"},
            "email": {"type": "string"}
        },
        "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
        "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
        "then": {"required": ["phone"]},
        "else": {"required": ["email"]},
        "additionalProperties": false
    });
    let s = server();
    for mut c in both(&s).await {
        let tool = listed(&mut c, "json_schema_2020_12_tool").await;
        assert_eq!(tool["inputSchema"], expected, "{}", c.revision());
        assert_eq!(tool["description"], "Tool with JSON Schema 2020-12 features");
    }
}

#[tokio::test]
async fn the_2020_12_tool_takes_what_its_schema_allows() {
    let s = server();
    for mut c in both(&s).await {
        let call = |arguments: Value| json!({"name": "json_schema_2020_12_tool", "arguments": arguments});
        let x = c
            .request(
                "tools/call",
                call(json!({"name": "Ada", "contactMethod": "phone", "phone": "123", "address": {"city": "London"}})),
            )
            .await;
        assert_eq!(
            first_text(x.result()),
            r#"JSON Schema 2020-12 tool called with: {"name":"Ada","address":{"city":"London"},"contactMethod":"phone","phone":"123"}"#
        );
        let x = c.request("tools/call", call(json!({"email": "a@b.c"}))).await;
        assert!(x.result().get("isError").is_none());
        let x = c
            .request("tools/call", call(json!({"contactMethod": "phone", "email": "a@b.c"})))
            .await;
        assert_eq!(x.result()["isError"], true, "then: phone is required");
        let x = c.request("tools/call", call(json!({"name": "Ada"}))).await;
        assert_eq!(x.result()["isError"], true, "else: email is required");
        let x = c
            .request("tools/call", call(json!({"email": "a@b.c", "extra": 1})))
            .await;
        assert_eq!(x.error()["code"], -32602, "additionalProperties: false");
    }
}

#[tokio::test]
async fn the_header_tool_annotates_a_string_argument() {
    let s = server();
    for mut c in both(&s).await {
        let tool = listed(&mut c, "test_x_mcp_header").await;
        let region = &tool["inputSchema"]["properties"]["region"];
        assert_eq!(
            (region["type"].as_str(), region["x-mcp-header"].as_str()),
            (Some("string"), Some("Region"))
        );
        assert_eq!(tool["inputSchema"]["required"], json!(["region"]));
        let x = c
            .request(
                "tools/call",
                json!({"name": "test_x_mcp_header", "arguments": {"region": "Hello"}}),
            )
            .await;
        assert_eq!(first_text(x.result()), "region=Hello");
    }
}
