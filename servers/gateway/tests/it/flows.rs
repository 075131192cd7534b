//! What flows back to clients besides answers — list changes, resource updates, cancellation —
//! and clients on the other transports of the gateway's listener (WebSocket, legacy HTTP+SSE).

use portico_core::client::{Notification, Protocol, RequestOptions};
use portico_core::server::{Change, Server, resource, tool};
use portico_transport::http::legacy_sse_client::{self, LegacySseClientConfig};
use portico_transport::http::ws_client::{self, WsClientConfig};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_and_legacy_sse_clients_are_served_on_the_same_listener() {
    let gateway = Running::start("upstreams:\n  - {name: e, builtin: everything}\n").await;
    let ws_url = format!("{}/mcp", gateway.base.replace("http://", "ws://"));
    let ws = Client::builder(wire::Implementation::new("ws-test", "1.0.0"))
        .connect(|service| ws_client::connect(&ws_url, service, WsClientConfig::default()))
        .await
        .expect("WebSocket");
    let result = ws.call_tool("e__test_simple_text", json!({})).await.expect("call");
    assert_eq!(result.is_error, None);
    let sse_url = format!("{}/sse", gateway.base);
    let sse = Client::builder(wire::Implementation::new("sse-test", "1.0.0"))
        .protocol(Protocol::Stateful("2024-11-05"))
        .connect(|service| legacy_sse_client::connect(&sse_url, service, LegacySseClientConfig::default()))
        .await
        .expect("legacy SSE");
    let result = sse.call_tool("e__test_simple_text", json!({})).await.expect("call");
    assert_eq!(result.is_error, None);
    // An upstream's own endpoint has its legacy SSE transport too.
    let sse_url = format!("{}/mcp/e/sse", gateway.base);
    let sse = Client::builder(wire::Implementation::new("sse-test", "1.0.0"))
        .protocol(Protocol::Stateful("2024-11-05"))
        .connect(|service| legacy_sse_client::connect(&sse_url, service, LegacySseClientConfig::default()))
        .await
        .expect("legacy SSE");
    sse.call_tool("test_simple_text", json!({})).await.expect("call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstreams_list_changes_reach_the_listening_clients() {
    let (_upstream, gateway) = {
        let upstream = HttpEverything::start().await;
        let yaml = format!(
            "upstreams:\n  - {{name: e, url: '{}', protocol: stateful}}\n",
            upstream.url
        );
        let gateway = Running::start(&yaml).await;
        (upstream, gateway)
    };
    // A session client hears it on the session; a 2026-07-28 client on its listen stream.
    let session = gateway.client("/mcp", SESSION, ()).await;
    let mut heard = session.notifications();
    let stateless = gateway.client("/mcp", Protocol::Stateless, ()).await;
    let mut stream_heard = stateless.notifications();
    let _listening = stateless
        .listen(wire::SubscriptionFilter::new().with_tools_list_changed(true))
        .await
        .expect("listen");
    session
        .call_tool("e__test_trigger_tool_change", json!({}))
        .await
        .expect("call");
    within("the session hearing the change", async {
        while !matches!(heard.recv().await, Some(Notification::ToolsListChanged { .. })) {}
    })
    .await;
    within("the listen stream hearing the change", async {
        while !matches!(stream_heard.recv().await, Some(Notification::ToolsListChanged { .. })) {}
    })
    .await;
}

/// A server with one resource and a tool that announces it changed.
fn touching_server() -> Server {
    let cell: Arc<std::sync::OnceLock<Server>> = Arc::default();
    let for_tool = cell.clone();
    let server = Server::builder("touch", "1.0.0")
        .resource(resource("test://counter", "counter", |_cx| async move {
            Ok(vec![portico_core::server::resource::text("test://counter", "1")])
        }))
        .tool(tool(
            "touch",
            "Announces that test://counter changed",
            move |_cx, _args: serde_json::Map<String, serde_json::Value>| {
                let cell = for_tool.clone();
                async move {
                    if let Some(server) = cell.get() {
                        server.notify(Change::ResourceUpdated("test://counter".into()));
                    }
                    "touched"
                }
            },
        ))
        .build();
    let _ = cell.set(server.clone());
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2026_listen_stream_follows_a_session_upstreams_resource_subscription() {
    let server = touching_server();
    let config = HttpConfig::default();
    let shutdown = config.shutdown.clone();
    let app = StreamableHttp::new(move || server.connection(), config).router();
    let url = serve_mcp(app, &shutdown).await;
    let _stop = shutdown.drop_guard();
    let gateway = Running::start(&format!(
        "upstreams:\n  - {{name: t, url: '{url}', protocol: stateful, prefix: ''}}\n"
    ))
    .await;
    let client = gateway.client("/mcp", Protocol::Stateless, ()).await;
    let mut heard = client.notifications();
    let listening = client
        .listen(wire::SubscriptionFilter::new().with_resource_subscriptions(vec!["test://counter".into()]))
        .await
        .expect("listen");
    assert_eq!(
        listening.granted().resource_subscriptions.as_deref(),
        Some(&["test://counter".to_string()][..])
    );
    client.call_tool("touch", json!({})).await.expect("call");
    within("the update on the listen stream", async {
        loop {
            if let Some(Notification::ResourceUpdated { uri, .. }) = heard.recv().await {
                assert_eq!(uri, "test://counter");
                break;
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_gives_up_cancels_the_upstream_call() {
    let gateway = Running::start("upstreams:\n  - {name: e, builtin: everything}\n").await;
    for protocol in [Protocol::Stateless, SESSION] {
        let client = gateway.client("/mcp", protocol, ()).await;
        let options = RequestOptions::new().timeout(Duration::from_millis(300));
        let outcome = client
            .call_tool_with("e__slow_compute", json!({"seconds": 60}), &options)
            .await;
        assert!(outcome.is_err(), "{outcome:?}");
        // The relayed call ends with it, long before the tool would have.
        within("the relayed call ending", async {
            loop {
                let (_, ready) = gateway.get_json("/readyz").await;
                if ready["upstreams"][0]["replicas"][0]["in_flight"] == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
    }
}

/// A client that declares the tasks extension.
struct TaskClient;

impl portico_core::client::ClientHandler for TaskClient {
    fn capabilities(&self) -> wire::ClientCapabilities {
        serde_json::from_value(json!({"extensions": {"io.modelcontextprotocol/tasks": {}}})).expect("caps")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_run_on_the_upstream_with_ids_that_name_it() {
    let gateway = Running::start("upstreams:\n  - {name: e, builtin: everything}\n").await;
    let client = gateway.client("/mcp", Protocol::Stateless, TaskClient).await;
    let caps = &client.server().capabilities;
    assert!(
        caps.extensions
            .as_ref()
            .is_some_and(|e| e.contains_key("io.modelcontextprotocol/tasks")),
        "the upstream's extension is declared: {caps:?}"
    );
    let call = serde_json::Map::from_iter([
        ("name".to_string(), json!("e__slow_compute")),
        ("arguments".to_string(), json!({"seconds": 1, "label": "x"})),
    ]);
    let created = client
        .forward("tools/call", &call, &RequestOptions::new())
        .await
        .expect("call");
    assert_eq!(created["resultType"], "task", "{created}");
    let id = created["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("a task id in {created}"))
        .to_string();
    assert!(id.starts_with("e/"), "the id names the upstream: {id}");
    let done = within("the task completing", async {
        loop {
            let params = serde_json::Map::from_iter([("taskId".to_string(), json!(id))]);
            let got = client
                .forward("tasks/get", &params, &RequestOptions::new())
                .await
                .expect("tasks/get");
            assert_eq!(got["taskId"], id.as_str(), "{got}");
            if got["status"] == "completed" {
                break got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(done.to_string().contains("Computed x"), "{done}");
    // Unknown and foreign ids are refused as unknown tasks.
    for bad in ["nope", "other/123"] {
        let params = serde_json::Map::from_iter([("taskId".to_string(), json!(bad))]);
        let error = client
            .forward("tasks/get", &params, &RequestOptions::new())
            .await
            .unwrap_err();
        assert_eq!(error.code(), Some(-32602), "{bad}: {error:?}");
    }
}
