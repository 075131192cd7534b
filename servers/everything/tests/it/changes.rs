//! The change triggers reach `subscriptions/listen` streams (only those that asked for that
//! change) and sessions.

use serde_json::{Value, json};

use crate::{Client, NEW, SESSION, server, validate};

/// Opens a `subscriptions/listen` stream on `c` and returns its acknowledgement.
async fn listen(c: &mut Client, id: &str, notifications: Value) -> Value {
    let params = c.params(json!({"notifications": notifications}));
    let frame = json!({"jsonrpc": "2.0", "id": id, "method": "subscriptions/listen", "params": params});
    c.peer.receive(&frame.to_string()).await;
    let ack = c.next_message().await;
    validate(NEW, "SubscriptionsAcknowledgedNotification", &ack);
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], id);
    ack
}

async fn trigger(c: &mut Client, tool: &str) {
    let x = c.request("tools/call", json!({"name": tool, "arguments": {}})).await;
    assert!(x.result().get("isError").is_none(), "{}", x.response);
}

#[tokio::test]
async fn listen_streams_get_the_changes_they_asked_for() {
    let s = server();
    let mut tools = Client::stateless(&s, json!({}));
    let mut prompts = Client::stateless(&s, json!({}));
    let mut caller = Client::stateless(&s, json!({}));
    let ack = listen(&mut tools, "tools", json!({"toolsListChanged": true})).await;
    assert_eq!(ack["params"]["notifications"], json!({"toolsListChanged": true}));
    listen(&mut prompts, "prompts", json!({"promptsListChanged": true})).await;

    trigger(&mut caller, "test_trigger_tool_change").await;
    let n = tools.next_message().await;
    validate(NEW, "ToolListChangedNotification", &n);
    assert_eq!(n["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], "tools");
    prompts.assert_quiet().await;

    trigger(&mut caller, "test_trigger_prompt_change").await;
    let n = prompts.next_message().await;
    validate(NEW, "PromptListChangedNotification", &n);
    assert_eq!(
        n["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "prompts"
    );
    tools.assert_quiet().await;

    s.shutdown();
    let end = tools.next_message().await;
    validate(NEW, "SubscriptionsListenResultResponse", &end);
}

#[tokio::test]
async fn sessions_get_both_changes() {
    let s = server();
    let mut listener = Client::session(&s, SESSION, json!({})).await;
    let mut caller = Client::session(&s, SESSION, json!({})).await;
    trigger(&mut caller, "test_trigger_tool_change").await;
    let n = listener.next_message().await;
    validate(SESSION, "ToolListChangedNotification", &n);
    trigger(&mut caller, "test_trigger_prompt_change").await;
    let n = listener.next_message().await;
    validate(SESSION, "PromptListChangedNotification", &n);
    assert_eq!(n["method"], "notifications/prompts/list_changed");
}
