//! Bad input and failing upstreams: each gives the client a typed error naming the cause,
//! never a hang.

use portico_core::client::Protocol;
use portico_gateway::relay::{UPSTREAM_TIMEOUT, UPSTREAM_UNAVAILABLE};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_upstream_is_reported_and_its_calls_fail_naming_it() {
    // A port nobody listens on: bound, then closed.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding");
        listener.local_addr().expect("address").port()
    };
    let yaml = format!(
        "upstreams:\n  - {{name: here, builtin: everything}}\n  - {{name: gone, url: 'http://127.0.0.1:{port}/mcp'}}\n"
    );
    let gateway = Running::start(&yaml).await;
    let (status, ready) = gateway.get_json("/readyz").await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["upstreams"][1]["name"], "gone");
    assert_eq!(ready["upstreams"][1]["connected"], false);
    assert!(
        ready["upstreams"][1]["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{ready}"
    );
    let (status, health) = gateway.get_json("/healthz").await;
    assert_eq!((status, health), (200, json!({"status": "ok"})));

    for protocol in [Protocol::Stateless, SESSION] {
        let client = gateway.client("/mcp", protocol, ()).await;
        // The reachable upstream still serves.
        client
            .call_tool("here__test_simple_text", json!({}))
            .await
            .expect("call");
        let error = rpc_error(client.call_tool("gone__anything", json!({})).await.unwrap_err());
        assert_eq!(error.code, UPSTREAM_UNAVAILABLE, "{error:?}");
        assert!(error.message.contains("`gone`"), "{error:?}");
        assert_eq!(
            error.data.as_ref().and_then(|d| d.get("upstream")),
            Some(&json!("gone"))
        );
    }
    let client = gateway.client("/mcp/gone", Protocol::Stateless, ()).await;
    let error = rpc_error(client.call_tool("anything", json!({})).await.unwrap_err());
    assert_eq!(error.code, UPSTREAM_UNAVAILABLE, "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_slower_than_its_timeout_gives_a_timeout_error() {
    let gateway = Running::start("upstreams:\n  - {name: slow, builtin: everything, timeout: 300ms}\n").await;
    for protocol in [Protocol::Stateless, SESSION] {
        let client = gateway.client("/mcp", protocol, ()).await;
        let started = std::time::Instant::now();
        let error = rpc_error(
            client
                .call_tool("slow__slow_compute", json!({"seconds": 5}))
                .await
                .unwrap_err(),
        );
        assert_eq!(error.code, UPSTREAM_TIMEOUT, "{error:?}");
        assert!(error.message.contains("`slow`"), "{error:?}");
        assert!(started.elapsed() < Duration::from_secs(5), "the timeout ended the call");
        // The upstream is fine afterwards.
        client
            .call_tool("slow__test_simple_text", json!({}))
            .await
            .expect("call");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_and_unknown_names_are_protocol_errors() {
    let gateway = Running::start("upstreams:\n  - {name: e, builtin: everything}\n").await;
    let client = gateway.client("/mcp", Protocol::Stateless, ()).await;
    let error = rpc_error(
        client
            .call_tool("e__slow_compute", json!({"seconds": "soon"}))
            .await
            .unwrap_err(),
    );
    assert_eq!(error.code, -32602, "the upstream's own error, as it is: {error:?}");
    let error = rpc_error(
        client
            .get_prompt("e__no_such_prompt", Default::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(error.code, -32602, "{error:?}");
    assert!(error.message.contains("e__no_such_prompt"), "{error:?}");
    let error = rpc_error(client.read_resource("test://nothing-here").await.unwrap_err());
    assert_eq!(error.code, -32602, "{error:?}");
    let session = gateway.client("/mcp", SESSION, ()).await;
    let error = rpc_error(session.read_resource("test://nothing-here").await.unwrap_err());
    assert_eq!(error.code, -32002, "a session's resource-not-found code: {error:?}");
}
