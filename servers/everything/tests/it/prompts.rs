//! The prompts.

use serde_json::json;

use crate::{both, server};

#[tokio::test]
async fn prompts_are_listed_with_their_arguments() {
    let s = server();
    for mut c in both(&s).await {
        let x = c.request("prompts/list", json!({})).await;
        let prompts = x.result()["prompts"].as_array().expect("prompts");
        for p in prompts {
            assert!(p["description"].is_string(), "{p}");
        }
        let find = |name: &str| {
            prompts
                .iter()
                .find(|p| p["name"] == name)
                .unwrap_or_else(|| panic!("{name}"))
        };
        let args: Vec<&str> = find("test_prompt_with_arguments")["arguments"]
            .as_array()
            .expect("arguments")
            .iter()
            .filter_map(|a| a["name"].as_str())
            .collect();
        assert_eq!(args, ["arg1", "arg2"]);
        assert_eq!(
            find("test_prompt_with_embedded_resource")["arguments"][0]["name"],
            "resourceUri"
        );
        assert!(find("test_simple_prompt").get("arguments").is_none());
        find("test_prompt_with_image");
        find("test_input_required_result_prompt");
    }
}

#[tokio::test]
async fn simple_arguments_embedded_resource_and_image() {
    let s = server();
    for mut c in both(&s).await {
        let x = c.request("prompts/get", json!({"name": "test_simple_prompt"})).await;
        assert_eq!(
            x.result()["messages"],
            json!([{"role": "user", "content": {"type": "text", "text": "This is a simple prompt for testing."}}])
        );
        let x = c
            .request(
                "prompts/get",
                json!({"name": "test_prompt_with_arguments", "arguments": {"arg1": "testValue1", "arg2": "testValue2"}}),
            )
            .await;
        assert_eq!(
            x.result()["messages"][0]["content"]["text"],
            "Prompt with arguments: arg1='testValue1', arg2='testValue2'"
        );
        let x = c
            .request(
                "prompts/get",
                json!({"name": "test_prompt_with_embedded_resource", "arguments": {"resourceUri": "test://example-resource"}}),
            )
            .await;
        assert_eq!(
            x.result()["messages"],
            json!([
                {"role": "user", "content": {"type": "resource", "resource": {
                    "uri": "test://example-resource", "mimeType": "text/plain", "text": "Embedded resource content for testing."}}},
                {"role": "user", "content": {"type": "text", "text": "Please process the embedded resource above."}}
            ])
        );
        let x = c
            .request("prompts/get", json!({"name": "test_prompt_with_image"}))
            .await;
        let image = &x.result()["messages"][0]["content"];
        assert_eq!(
            (image["type"].as_str(), image["mimeType"].as_str()),
            (Some("image"), Some("image/png"))
        );
        assert!(image["data"].is_string());
        assert_eq!(
            x.result()["messages"][1]["content"]["text"],
            "Please analyze the image above."
        );
    }
}

#[tokio::test]
async fn missing_prompt_arguments_are_protocol_errors() {
    let s = server();
    for mut c in both(&s).await {
        let x = c
            .request(
                "prompts/get",
                json!({"name": "test_prompt_with_arguments", "arguments": {"arg1": "x"}}),
            )
            .await;
        assert_eq!(x.error()["code"], -32602);
    }
}
