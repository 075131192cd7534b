//! Which endpoint serves what: namespacing on the aggregated endpoint, per-upstream endpoints,
//! virtual servers, collisions.

use portico_core::client::Protocol;

use super::*;

const TWO_UPSTREAMS: &str = "
upstreams:
  - {name: alpha, builtin: everything}
  - {name: beta, builtin: everything, prefix: b}
virtual_servers:
  - name: curated
    instructions: Only the greeting tools.
    tools:
      - {upstream: beta, tool: test_simple_text, rename: hello, description: Says hello}
      - {upstream: alpha, tool: test_error_handling}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aggregated_endpoint_namespaces_every_upstream_and_routes_by_name() {
    let gateway = Running::start(TWO_UPSTREAMS).await;
    for protocol in [Protocol::Stateless, SESSION] {
        let client = gateway.client("/mcp", protocol, ()).await;
        let names: Vec<String> = client
            .list_all_tools()
            .await
            .expect("tools")
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert!(names.contains(&"alpha__test_simple_text".to_string()), "{names:?}");
        assert!(names.contains(&"b__test_simple_text".to_string()), "{names:?}");
        assert!(!names.iter().any(|n| n == "test_simple_text"), "{names:?}");
        // Each upstream serves 36 tools: all of both are there, namespaced apart.
        assert_eq!(names.len(), 72, "{names:?}");

        let result = client.call_tool("b__test_simple_text", json!({})).await.expect("call");
        assert!(text(&result).contains("simple text"), "{result:?}");

        let prompts: Vec<String> = client
            .list_all_prompts()
            .await
            .expect("prompts")
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert!(
            prompts.contains(&"alpha__test_simple_prompt".to_string()),
            "{prompts:?}"
        );
        let prompt = client
            .get_prompt(
                "b__test_prompt_with_arguments",
                [("arg1", "x"), ("arg2", "y")]
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .into(),
            )
            .await
            .expect("prompt");
        assert!(!prompt.messages.is_empty());

        // Resources keep their URIs; both upstreams list the same ones, so each is served once.
        let resources = client.list_all_resources().await.expect("resources");
        let uris: std::collections::BTreeSet<_> = resources.iter().map(|r| r.uri.clone()).collect();
        assert_eq!(uris.len(), resources.len(), "a URI listed twice: {resources:?}");
        let read = client.read_resource("test://static-text").await.expect("read");
        assert!(!read.contents.is_empty());

        let error = rpc_error(
            client
                .call_tool("gamma__test_simple_text", json!({}))
                .await
                .unwrap_err(),
        );
        assert_eq!(error.code, -32602, "{error:?}");
        assert!(error.message.contains("gamma__test_simple_text"), "{error:?}");
    }
    // The collisions of the two upstreams' resources are reported.
    let (status, ready) = gateway.get_json("/readyz").await;
    assert_eq!(status, 200, "{ready}");
    let collisions = ready["collisions"].as_array().expect("collisions");
    assert!(
        collisions
            .iter()
            .any(|c| c["kind"] == "resource" && c["name"] == "test://static-text"),
        "{ready}"
    );
    assert_eq!(ready["upstreams"][0]["tools"], 36, "{ready}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_endpoint_serves_its_items_unprefixed() {
    let gateway = Running::start(TWO_UPSTREAMS).await;
    let client = gateway.client("/mcp/beta", Protocol::Stateless, ()).await;
    let names: Vec<String> = client
        .list_all_tools()
        .await
        .expect("tools")
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names.len(), 36, "{names:?}");
    assert!(names.contains(&"test_simple_text".to_string()), "{names:?}");
    let result = client.call_tool("test_simple_text", json!({})).await.expect("call");
    assert!(text(&result).contains("simple text"));
    // The other upstream's prefix means nothing here.
    let error = rpc_error(
        client
            .call_tool("alpha__test_simple_text", json!({}))
            .await
            .unwrap_err(),
    );
    assert_eq!(error.code, -32602);
    // A name no endpoint has is a `404` with a JSON body; an empty one matches no route
    // (`404`).
    let (status, body) = gateway
        .post_tool_call("/mcp/nope", None, "test_simple_text", json!({}))
        .await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("`nope`")), "{body}");
    let status = reqwest::Client::new()
        .post(format!("{}/mcp/", gateway.base))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("sent")
        .status();
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_checks_mirrored_argument_headers_against_the_upstreams_annotations() {
    let gateway = Running::start(TWO_UPSTREAMS).await;
    let region = json!({"region": "us-west1"});
    let call = |tool: &'static str, arguments: serde_json::Value, headers: &'static [(&'static str, &'static str)]| {
        gateway.post_tool_call_with("/mcp", None, tool, arguments, headers)
    };
    // `test_x_mcp_header` annotates `region` with `x-mcp-header: Region`.
    let (status, body) = call(
        "alpha__test_x_mcp_header",
        region.clone(),
        &[("mcp-param-region", "us-west1")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["result"]["content"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("us-west1")),
        "{body}"
    );
    for headers in [&[("mcp-param-region", "eu-central1")][..], &[]] {
        let (status, body) = call("alpha__test_x_mcp_header", region.clone(), headers).await;
        assert_eq!(status, 400, "{headers:?}: {body}");
        assert_eq!(body["error"]["code"], -32020, "{headers:?}: {body}");
    }
    // The prefixed upstream's tool is checked by its annotations too.
    let (status, body) = call(
        "b__test_x_mcp_header",
        region.clone(),
        &[("mcp-param-region", "elsewhere")],
    )
    .await;
    assert_eq!((status, &body["error"]["code"]), (400, &json!(-32020)), "{body}");
    // A header no tool annotates is not the gateway's to check.
    let (status, body) = call(
        "alpha__test_simple_text",
        json!({}),
        &[("mcp-param-region", "anything")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_virtual_server_serves_its_curated_renamed_tools_only() {
    let gateway = Running::start(TWO_UPSTREAMS).await;
    let client = gateway.client("/mcp/curated", SESSION, ()).await;
    assert_eq!(
        client.server().instructions.as_deref(),
        Some("Only the greeting tools.")
    );
    let tools = client.list_all_tools().await.expect("tools");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["hello", "test_error_handling"]);
    assert_eq!(tools[0].description.as_deref(), Some("Says hello"));
    let result = client.call_tool("hello", json!({})).await.expect("call");
    assert!(text(&result).contains("simple text"));
    // A tool error stays a result, with `isError`.
    let failed = client.call_tool("test_error_handling", json!({})).await.expect("call");
    assert_eq!(failed.is_error, Some(true));
    let error = rpc_error(client.call_tool("test_simple_text", json!({})).await.unwrap_err());
    assert_eq!(error.code, -32602);
    // A virtual server has tools only.
    assert!(client.server().capabilities.prompts.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unprefixed_upstream_colliding_with_another_keeps_the_first_name() {
    let gateway = Running::start(
        "upstreams:\n  - {name: one, builtin: everything, prefix: ''}\n  - {name: two, builtin: everything, prefix: ''}\n",
    )
    .await;
    let client = gateway.client("/mcp", Protocol::Stateless, ()).await;
    let tools = client.list_all_tools().await.expect("tools");
    assert_eq!(tools.len(), 36, "each name once");
    let (_, ready) = gateway.get_json("/readyz").await;
    let collisions = ready["collisions"].as_array().expect("collisions");
    let tool = collisions
        .iter()
        .find(|c| c["kind"] == "tool" && c["name"] == "test_simple_text")
        .unwrap_or_else(|| panic!("{ready}"));
    assert_eq!(tool["upstreams"], json!(["one", "two"]));
}

/// How many calls each replica of the first upstream was sent, from `/readyz`.
async fn calls_per_replica(gateway: &Running) -> Vec<u64> {
    let (_, ready) = gateway.get_json("/readyz").await;
    ready["upstreams"][0]["replicas"]
        .as_array()
        .expect("replicas")
        .iter()
        .map(|r| r["calls"].as_u64().expect("calls"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_calls_by_their_balance_policy() {
    let replicas = "replicas: [{builtin: everything}, {builtin: everything}]";
    // Round robin: each in turn.
    let gateway = Running::start(&format!("upstreams:\n  - {{name: r, {replicas}}}\n")).await;
    let client = gateway.client("/mcp", SESSION, ()).await;
    for _ in 0..10 {
        client.call_tool("r__test_simple_text", json!({})).await.expect("call");
    }
    assert_eq!(calls_per_replica(&gateway).await, [5, 5]);

    // Session hash: one session's calls stay on one replica.
    let gateway = Running::start(&format!(
        "upstreams:\n  - {{name: r, {replicas}, balance: session-hash}}\n"
    ))
    .await;
    let client = gateway.client("/mcp", SESSION, ()).await;
    for _ in 0..10 {
        client.call_tool("r__test_simple_text", json!({})).await.expect("call");
    }
    let mut calls = calls_per_replica(&gateway).await;
    calls.sort_unstable();
    assert_eq!(calls, [0, 10]);

    // Least in flight: two slow calls at once go to different replicas.
    let gateway = Running::start(&format!(
        "upstreams:\n  - {{name: r, {replicas}, balance: least-in-flight}}\n"
    ))
    .await;
    let client = gateway.client("/mcp", Protocol::Stateless, ()).await;
    let (a, b) = tokio::join!(
        client.call_tool("r__slow_compute", json!({"seconds": 1})),
        client.call_tool("r__slow_compute", json!({"seconds": 1})),
    );
    a.expect("call");
    b.expect("call");
    assert_eq!(calls_per_replica(&gateway).await, [1, 1]);
}

/// A 2026-07-28 client's call of a plain tool gets the upstream's result handed on as its text
/// (`relay::as_text`): the result must be the upstream's, named by the gateway alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayed_result_names_the_gateway_and_not_its_upstream() {
    let gateway = Running::start(TWO_UPSTREAMS).await;
    let info_key = "io.modelcontextprotocol/serverInfo";
    for (tool, arguments, is_error) in [
        ("alpha__echo", json!({"message": "hi, \"there\""}), false),
        ("b__test_simple_text", json!({}), false),
        ("alpha__test_error_handling", json!({}), true),
    ] {
        let (status, body) = gateway.post_tool_call_with("/mcp", None, tool, arguments, &[]).await;
        assert_eq!(status, 200, "{tool}: {body}");
        let result = &body["result"];
        assert_eq!(result["resultType"], "complete", "{tool}: {body}");
        assert_eq!(
            result["_meta"][info_key]["name"],
            portico_gateway::NAME,
            "{tool}: {body}"
        );
        assert_eq!(
            result["_meta"].as_object().map(|m| m.len()),
            Some(1),
            "{tool}: the gateway's `_meta` alone: {body}"
        );
        assert_eq!(body.to_string().matches(info_key).count(), 1, "{tool}: {body}");
        assert_eq!(result["isError"].as_bool().unwrap_or(false), is_error, "{tool}: {body}");
        assert!(result["content"][0]["text"].is_string(), "{tool}: {body}");
        if tool == "alpha__echo" {
            assert!(
                result["content"][0]["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("hi, \"there\"")),
                "{body}"
            );
        }
    }
}
