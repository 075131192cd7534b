//! The content tools: fixed text, image, audio, embedded resources, a mix, a tool error.

use serde_json::{Value, json};

use crate::{both, first_text, server};

async fn call_each(name: &str) -> Vec<Value> {
    let s = server();
    let mut results = Vec::new();
    for mut c in both(&s).await {
        let x = c.request("tools/call", json!({"name": name, "arguments": {}})).await;
        results.push(x.result().clone());
    }
    results
}

#[tokio::test]
async fn simple_text() {
    for r in call_each("test_simple_text").await {
        assert_eq!(
            r["content"],
            json!([{"type": "text", "text": "This is a simple text response for testing."}])
        );
        assert!(r.get("isError").is_none(), "{r}");
    }
}

#[tokio::test]
async fn the_first_listed_tool_takes_no_arguments() {
    // The suite's header checks call the first listed tool with `{}` and expect success.
    let s = server();
    for mut c in both(&s).await {
        let list = c.request("tools/list", json!({})).await;
        let first = list.result()["tools"][0]["name"].as_str().expect("a tool").to_string();
        assert_eq!(first, "test_simple_text");
        let x = c.request("tools/call", json!({"name": first, "arguments": {}})).await;
        assert!(x.result().get("isError").is_none());
    }
}

#[tokio::test]
async fn image_and_audio() {
    for r in call_each("test_image_content").await {
        let image = &r["content"][0];
        assert_eq!(image["type"], "image");
        assert_eq!(image["mimeType"], "image/png");
        assert!(
            image["data"].as_str().is_some_and(|d| d.starts_with("iVBORw0KGgo")),
            "a PNG: {image}"
        );
    }
    for r in call_each("test_audio_content").await {
        let audio = &r["content"][0];
        assert_eq!(audio["type"], "audio");
        assert_eq!(audio["mimeType"], "audio/wav");
        assert!(
            audio["data"].as_str().is_some_and(|d| d.starts_with("UklGR")),
            "a RIFF file: {audio}"
        );
    }
}

#[tokio::test]
async fn embedded_resource() {
    for r in call_each("test_embedded_resource").await {
        assert_eq!(
            r["content"],
            json!([{"type": "resource", "resource": {
                "uri": "test://embedded-resource",
                "mimeType": "text/plain",
                "text": "This is an embedded resource content."
            }}])
        );
    }
}

#[tokio::test]
async fn multiple_content_types() {
    for r in call_each("test_multiple_content_types").await {
        let types: Vec<&str> = r["content"]
            .as_array()
            .expect("content")
            .iter()
            .filter_map(|b| b["type"].as_str())
            .collect();
        assert_eq!(types, ["text", "image", "resource"]);
        assert_eq!(first_text(&r), "Multiple content types test:");
        let resource = &r["content"][2]["resource"];
        assert_eq!(resource["mimeType"], "application/json");
        let data: Value = serde_json::from_str(resource["text"].as_str().expect("text")).expect("JSON");
        assert_eq!(data, json!({"test": "data", "value": 123}));
    }
}

#[tokio::test]
async fn error_handling_is_a_tool_error() {
    for r in call_each("test_error_handling").await {
        assert_eq!(r["isError"], true);
        assert_eq!(first_text(&r), "This tool intentionally returns an error for testing");
    }
}
