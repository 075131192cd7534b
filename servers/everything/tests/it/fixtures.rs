//! Every fixture the conformance suite calls is there, by name, for both kinds of client, and
//! the capabilities cover what the suite exercises.

use serde_json::{Value, json};

use crate::{both, server};

/// The tools the suite's server scenarios call (`../shared/conformance.md`), those of the tasks
/// extension's scenarios, and `echo`.
const TOOLS: &[&str] = &[
    "test_simple_text",
    "test_image_content",
    "test_audio_content",
    "test_embedded_resource",
    "test_multiple_content_types",
    "test_tool_with_logging",
    "test_tool_with_progress",
    "test_error_handling",
    "test_sampling",
    "test_elicitation",
    "test_elicitation_sep1034_defaults",
    "test_elicitation_sep1330_enums",
    "test_reconnection",
    "json_schema_2020_12_tool",
    "test_missing_capability",
    "test_x_mcp_header",
    "test_streaming_elicitation",
    "test_logging_tool",
    "test_trigger_tool_change",
    "test_trigger_prompt_change",
    "test_input_required_result_elicitation",
    "test_input_required_result_sampling",
    "test_input_required_result_list_roots",
    "test_input_required_result_request_state",
    "test_input_required_result_multiple_inputs",
    "test_input_required_result_multi_round",
    "test_input_required_result_tampered_state",
    "test_input_required_result_capabilities",
    // The tasks extension's scenarios (`tasks-*`).
    "test_tool_with_task",
    "greet",
    "slow_compute",
    "failing_job",
    "protocol_error_job",
    "confirm_delete",
    "multi_input",
    // Not the suite's: the tool `cargo xtask bench server` calls.
    "echo",
];

const PROMPTS: &[&str] = &[
    "test_simple_prompt",
    "test_prompt_with_arguments",
    "test_prompt_with_embedded_resource",
    "test_prompt_with_image",
    "test_input_required_result_prompt",
];

fn names(list: &Value, member: &str) -> Vec<String> {
    let mut names: Vec<String> = list[member]
        .as_array()
        .unwrap_or_else(|| panic!("{member}: {list}"))
        .iter()
        .filter_map(|item| item["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn every_fixture_is_listed_with_a_description() {
    let s = server();
    for mut c in both(&s).await {
        let tools = c.request("tools/list", json!({})).await;
        assert_eq!(names(tools.result(), "tools"), sorted(TOOLS), "{}", c.revision());
        for t in tools.result()["tools"].as_array().expect("tools") {
            let name = t["name"].as_str().expect("name");
            assert!(t["description"].as_str().is_some_and(|d| !d.is_empty()), "{t}");
            assert_eq!(t["inputSchema"]["type"], "object", "{t}");
            assert!(
                name.len() <= 128 && name.chars().all(|ch| ch.is_ascii_alphanumeric() || "_.-".contains(ch)),
                "tool names follow the spec's rules: {name}"
            );
        }
        let prompts = c.request("prompts/list", json!({})).await;
        assert_eq!(names(prompts.result(), "prompts"), sorted(PROMPTS));
    }
}

#[tokio::test]
async fn tools_are_listed_in_the_same_order_every_time() {
    let s = server();
    for mut c in both(&s).await {
        let first = c.request("tools/list", json!({})).await.result().clone();
        for _ in 0..2 {
            assert_eq!(
                c.request("tools/list", json!({})).await.result()["tools"],
                first["tools"]
            );
        }
    }
}

#[tokio::test]
async fn capabilities_cover_what_the_suite_exercises() {
    let s = server();
    let mut c = crate::Client::stateless(&s, json!({}));
    let x = c.request("server/discover", json!({})).await;
    let r = x.result();
    assert_eq!(
        r["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        portico_everything::NAME
    );
    let caps = &r["capabilities"];
    assert_eq!(caps["tools"], json!({"listChanged": true}));
    assert_eq!(caps["prompts"], json!({"listChanged": true}));
    assert_eq!(caps["resources"], json!({"listChanged": true, "subscribe": true}));
    assert!(caps["completions"].is_object() && caps["logging"].is_object(), "{caps}");
    assert!(
        r["supportedVersions"]
            .as_array()
            .expect("versions")
            .contains(&json!("2025-11-25"))
    );
    let mut c = crate::Client::session(&s, crate::SESSION, json!({})).await;
    let x = c.request("ping", json!({})).await;
    assert_eq!(x.result(), &json!({}));
}
