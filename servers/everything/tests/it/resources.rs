//! Resources, the template, subscriptions and completion.

use serde_json::{Value, json};

use crate::{SESSION, both, server};

#[tokio::test]
async fn resources_and_templates_are_listed() {
    let s = server();
    for mut c in both(&s).await {
        let list = c.request("resources/list", json!({})).await;
        let uris: Vec<&str> = list.result()["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .filter_map(|r| r["uri"].as_str())
            .collect();
        assert_eq!(
            uris,
            [
                "test://static-text",
                "test://static-binary",
                "test://watched-resource",
                // The skills extension's files.
                "skill://pdf-processing/SKILL.md",
                "skill://pdf-processing/references/FORMS.md",
                "skill://portico/release-notes/SKILL.md"
            ]
        );
        for r in list.result()["resources"].as_array().expect("resources") {
            assert!(
                r["name"].is_string() && r["description"].is_string() && r["mimeType"].is_string(),
                "{r}"
            );
        }
        let templates = c.request("resources/templates/list", json!({})).await;
        assert_eq!(
            templates.result()["resourceTemplates"][0]["uriTemplate"],
            "test://template/{id}/data"
        );
        assert_eq!(
            templates.result()["resourceTemplates"][0]["mimeType"],
            "application/json"
        );
    }
}

async fn read(c: &mut crate::Client, uri: &str) -> Value {
    let x = c.request("resources/read", json!({"uri": uri})).await;
    x.result()["contents"][0].clone()
}

#[tokio::test]
async fn static_text_binary_watched_and_template() {
    let s = server();
    for mut c in both(&s).await {
        assert_eq!(
            read(&mut c, "test://static-text").await,
            json!({"uri": "test://static-text", "mimeType": "text/plain", "text": "This is the content of the static text resource."})
        );
        let binary = read(&mut c, "test://static-binary").await;
        assert_eq!(binary["mimeType"], "image/png");
        assert!(
            binary["blob"].as_str().is_some_and(|b| b.starts_with("iVBORw0KGgo")),
            "{binary}"
        );
        assert_eq!(
            read(&mut c, "test://watched-resource").await["text"],
            "Watched resource content"
        );
        let item = read(&mut c, "test://template/123/data").await;
        assert_eq!(item["uri"], "test://template/123/data");
        assert_eq!(item["mimeType"], "application/json");
        let data: Value = serde_json::from_str(item["text"].as_str().expect("text")).expect("JSON");
        assert_eq!(
            data,
            json!({"id": "123", "templateTest": true, "data": "Data for ID: 123"})
        );
    }
}

#[tokio::test]
async fn an_unknown_resource_is_an_error_naming_the_uri() {
    let s = server();
    for mut c in both(&s).await {
        let uri = "test://nonexistent-resource-for-conformance-testing";
        let x = c.request("resources/read", json!({"uri": uri})).await;
        assert_eq!(x.error()["data"]["uri"], uri);
    }
}

#[tokio::test]
async fn cacheable_results_carry_hints_for_2026_clients() {
    let s = server();
    let mut c = crate::Client::stateless(&s, json!({}));
    for (method, params) in [
        ("tools/list", json!({})),
        ("prompts/list", json!({})),
        ("resources/list", json!({})),
        ("resources/templates/list", json!({})),
        ("resources/read", json!({"uri": "test://static-text"})),
    ] {
        let x = c.request(method, params).await;
        let r = x.result();
        assert!(r["ttlMs"].as_i64().is_some_and(|t| t >= 0), "{method}: {r}");
        assert!(
            matches!(r["cacheScope"].as_str(), Some("public" | "private")),
            "{method}: {r}"
        );
    }
}

#[tokio::test]
async fn sessions_subscribe_and_unsubscribe_the_watched_resource() {
    let s = server();
    let mut c = crate::Client::session(&s, SESSION, json!({})).await;
    for method in ["resources/subscribe", "resources/unsubscribe"] {
        let x = c.request(method, json!({"uri": "test://watched-resource"})).await;
        assert_eq!(x.result(), &json!({}));
    }
}

#[tokio::test]
async fn completion_suggests_prompt_and_template_arguments() {
    let s = server();
    for mut c in both(&s).await {
        let x = c
            .request(
                "completion/complete",
                json!({"ref": {"type": "ref/prompt", "name": "test_prompt_with_arguments"}, "argument": {"name": "arg1", "value": "par"}}),
            )
            .await;
        assert_eq!(x.result()["completion"]["values"], json!(["paris", "park", "party"]));
        let x = c
            .request(
                "completion/complete",
                json!({"ref": {"type": "ref/prompt", "name": "test_prompt_with_arguments"}, "argument": {"name": "arg1", "value": "test"}}),
            )
            .await;
        assert_eq!(
            x.result()["completion"]["values"],
            json!(["test", "testValue1", "testValue2"])
        );
        let x = c
            .request(
                "completion/complete",
                json!({"ref": {"type": "ref/resource", "uri": "test://template/{id}/data"}, "argument": {"name": "id", "value": "4"}}),
            )
            .await;
        assert_eq!(x.result()["completion"]["values"], json!(["42"]));
        let x = c
            .request(
                "completion/complete",
                json!({"ref": {"type": "ref/prompt", "name": "test_simple_prompt"}, "argument": {"name": "x", "value": ""}}),
            )
            .await;
        assert_eq!(x.result()["completion"]["values"], json!([]));
    }
}
