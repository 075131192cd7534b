//! Log messages and progress while a tool runs, at the level each kind of client asked for.

use serde_json::{Value, json};

use crate::{Client, SESSION, first_text, server};

fn log_data(x: &crate::Exchange) -> Vec<String> {
    x.notes("notifications/message")
        .iter()
        .map(|n| {
            format!(
                "{}:{}",
                n["params"]["level"].as_str().unwrap_or_default(),
                n["params"]["data"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

#[tokio::test]
async fn a_session_gets_the_logs_of_its_level() {
    let s = server();
    let mut c = Client::session(&s, SESSION, json!({})).await;
    let x = c.request("logging/setLevel", json!({"level": "debug"})).await;
    assert_eq!(x.result(), &json!({}));
    let x = c
        .request("tools/call", json!({"name": "test_tool_with_logging", "arguments": {}}))
        .await;
    assert_eq!(
        log_data(&x),
        [
            "info:Tool execution started",
            "info:Tool processing data",
            "info:Tool execution completed"
        ]
    );
    assert_eq!(first_text(x.result()), "Tool with logging executed successfully");
    let x = c
        .request("tools/call", json!({"name": "test_logging_tool", "arguments": {}}))
        .await;
    assert_eq!(
        log_data(&x),
        [
            "debug:test_logging_tool: debug",
            "info:test_logging_tool: info",
            "warning:test_logging_tool: warning"
        ]
    );
    c.request("logging/setLevel", json!({"level": "warning"})).await;
    let x = c
        .request("tools/call", json!({"name": "test_logging_tool", "arguments": {}}))
        .await;
    assert_eq!(log_data(&x), ["warning:test_logging_tool: warning"]);
}

#[tokio::test]
async fn a_2026_request_gets_logs_only_with_a_log_level() {
    let s = server();
    let mut c = Client::stateless(&s, json!({}));
    let x = c
        .request("tools/call", json!({"name": "test_logging_tool", "arguments": {}}))
        .await;
    assert!(
        x.notifications.is_empty(),
        "no logLevel, no logs: {:?}",
        x.notifications
    );
    assert_eq!(first_text(x.result()), "Logged at debug, info and warning");
    let x = c
        .request(
            "tools/call",
            json!({"name": "test_logging_tool", "arguments": {}, "_meta": {"io.modelcontextprotocol/logLevel": "info"}}),
        )
        .await;
    assert_eq!(
        log_data(&x),
        ["info:test_logging_tool: info", "warning:test_logging_tool: warning"]
    );
    let x = c
        .request(
            "tools/call",
            json!({"name": "test_tool_with_logging", "arguments": {}, "_meta": {"io.modelcontextprotocol/logLevel": "debug"}}),
        )
        .await;
    assert_eq!(log_data(&x).len(), 3);
}

#[tokio::test]
async fn progress_is_reported_when_asked_for() {
    let s = server();
    for mut c in crate::both(&s).await {
        let x = c
            .request(
                "tools/call",
                json!({"name": "test_tool_with_progress", "arguments": {}, "_meta": {"progressToken": "progress-test-1"}}),
            )
            .await;
        let progress: Vec<(Value, Value, Value)> = x
            .notes("notifications/progress")
            .iter()
            .map(|n| {
                (
                    n["params"]["progressToken"].clone(),
                    n["params"]["progress"].clone(),
                    n["params"]["total"].clone(),
                )
            })
            .collect();
        let token = json!("progress-test-1");
        assert_eq!(
            progress,
            [
                (token.clone(), json!(0.0), json!(100.0)),
                (token.clone(), json!(50.0), json!(100.0)),
                (token, json!(100.0), json!(100.0))
            ],
            "{}",
            c.revision()
        );
        let x = c
            .request(
                "tools/call",
                json!({"name": "test_tool_with_progress", "arguments": {}}),
            )
            .await;
        assert!(x.notifications.is_empty());
        assert_eq!(first_text(x.result()), "Progress reported: 0, 50 and 100 of 100");
    }
}
