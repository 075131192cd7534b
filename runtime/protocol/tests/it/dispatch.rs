//! The generated handler trait and dispatch table of the newest revision.

use portico_protocol::v2026_07_28 as wire;
use portico_protocol::v2026_07_28_server::{self as server, ServerHandler};

/// A handler that serves only `tools/call`, echoing the `text` argument.
struct Echo;

impl ServerHandler for Echo {
    async fn tools_call(
        &self,
        _cx: &(),
        params: wire::CallToolRequestParams,
    ) -> Result<wire::CallToolResultResponseResult, wire::Error> {
        let text = params
            .arguments
            .as_ref()
            .and_then(|a| a.get("text"))
            .and_then(|t| t.as_str())
            .unwrap_or_default();
        Ok(wire::CallToolResult::new(vec![wire::TextContent::new(text).into()], "complete").into())
    }
}

fn request(method: &str, params: serde_json::Value) -> wire::ClientRequest {
    serde_json::from_value(serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .expect("a valid request")
}

fn meta() -> serde_json::Value {
    serde_json::json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}})
}

/// Drives a future that never waits (the handlers here do not) to completion.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[test]
fn dispatch_routes_to_the_handler_and_defaults_to_method_not_found() {
    let call = request(
        "tools/call",
        serde_json::json!({"name": "echo", "arguments": {"text": "hi"}, "_meta": meta()}),
    );
    let response = block_on(server::dispatch_request(&Echo, &(), call)).expect("tools/call is served");
    assert_eq!(
        serde_json::to_value(&response).expect("serializes"),
        serde_json::json!({"resultType": "complete", "content": [{"type": "text", "text": "hi"}]})
    );
    let list = request("tools/list", serde_json::json!({"_meta": meta()}));
    let error = block_on(server::dispatch_request(&Echo, &(), list)).expect_err("tools/list is not served");
    assert_eq!(error.code, wire::error_codes::METHOD_NOT_FOUND);
    assert!(error.message.contains("tools/list"), "{}", error.message);
}

#[test]
fn the_table_lists_every_method_once_in_order() {
    let names: Vec<&str> = server::METHODS.iter().map(|m| m.name).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(names, sorted, "METHODS must be sorted and unique for binary search");
    assert_eq!(names.len(), wire::methods::ALL.len());
    let call = server::method_info("tools/call").expect("tools/call is in the table");
    assert!(call.is_request);
    assert_eq!(call.message, "CallToolRequest");
    assert_eq!(call.direction, server::Direction::Client);
    assert!(server::method_info("tools/frobnicate").is_none());
    assert_eq!(
        server::method_info("notifications/cancelled").map(|m| m.direction),
        Some(server::Direction::Both)
    );
}

#[test]
fn notifications_dispatch_by_method() {
    let params = serde_json::json!({"requestId": 3, "reason": "user"});
    block_on(server::dispatch_notification(
        &Echo,
        &(),
        "notifications/cancelled",
        Some(params),
    ))
    .expect("decodes");
    let bad = serde_json::json!({"reason": 5});
    assert!(
        block_on(server::dispatch_notification(
            &Echo,
            &(),
            "notifications/cancelled",
            Some(bad)
        ))
        .is_err()
    );
    block_on(server::dispatch_notification(&Echo, &(), "notifications/unknown", None)).expect("unknown is ignored");
}
