//! The examples run as real processes and are driven as a client would.

use std::time::Duration;

use portico_core::{ErrorObject, JsonText, RequestContext, Service};
use portico_transport::stdio::{StdioConfig, spawn};
use serde_json::value::RawValue;
use serde_json::{Value, json};

/// A client that serves nothing.
struct NoService;

impl Service for NoService {
    async fn request(
        &self,
        _cx: RequestContext,
        method: String,
        _params: Option<Box<RawValue>>,
    ) -> Result<JsonText, ErrorObject> {
        Err(ErrorObject::method_not_found(&method))
    }
}

#[tokio::test]
async fn the_custom_server_serves_its_typed_tool_to_both_generations() {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_custom-server"));
    let client = spawn(&mut command, NoService, StdioConfig::default())
        .await
        .expect("the example starts");
    let peer = client.peer().handle().clone();
    let call = |params: Value| {
        let peer = peer.clone();
        async move {
            tokio::time::timeout(Duration::from_secs(30), peer.request::<_, Value>("tools/call", &params))
                .await
                .expect("an answer in time")
                .expect("a result")
        }
    };
    // 2026-07-28: stateless, everything in `_meta`.
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}});
    let result = call(json!({"_meta": meta, "name": "add", "arguments": {"a": 2, "b": 40.5}})).await;
    assert_eq!(result["structuredContent"], json!({"sum": 42.5}));
    assert_eq!(result["resultType"], "complete");
    let tools: Value = peer
        .request("tools/list", &json!({"_meta": meta}))
        .await
        .expect("tools");
    assert_eq!(
        tools["tools"][0]["inputSchema"]["properties"]["a"]["description"],
        "The first number."
    );
    // 2025-11-25: a session.
    let init: Value = peer
        .request(
            "initialize",
            &json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
        )
        .await
        .expect("initialized");
    assert_eq!(init["serverInfo"]["name"], "calculator");
    let result = call(json!({"name": "add", "arguments": {"a": 1, "b": 1}})).await;
    assert_eq!(
        result,
        json!({"content": [{"type": "text", "text": "{\"sum\":2.0}"}], "structuredContent": {"sum": 2.0}})
    );
    let status = client.shutdown().await.expect("shuts down");
    assert!(status.success(), "{status:?}");
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Shout {
    /// What to shout.
    text: String,
}

#[tokio::test]
async fn the_client_example_lists_calls_and_hears_a_change() {
    use std::sync::{Arc, OnceLock};

    use portico_core::server::{Change, Server, tool};
    use portico_transport::http::{HttpConfig, router, serve};

    // A server whose tool changes the tool list, so the example's listener has news.
    let cell: Arc<OnceLock<Server>> = Arc::default();
    let announcer = cell.clone();
    let server = Server::builder("shouter", "1.0.0")
        .tool(tool(
            "shout",
            "Shouts the text, then changes the tool list",
            move |_cx, args: Shout| {
                let announcer = announcer.clone();
                async move {
                    if let Some(server) = announcer.get() {
                        server.notify(Change::ToolsListChanged);
                    }
                    args.text.to_uppercase()
                }
            },
        ))
        .build();
    let _ = cell.set(server.clone());
    let config = HttpConfig::default();
    let shutdown = config.shutdown.clone();
    let app = router(move || server.connection(), config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/mcp", listener.local_addr().expect("address"));
    let serving = tokio::spawn(serve(listener, app, shutdown.clone().cancelled_owned()));

    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_client"))
            .args([url.as_str(), "shout", r#"{"text": "hello"}"#])
            .output(),
    )
    .await
    .expect("the example ends in time")
    .expect("the example runs");
    shutdown.cancel();
    let _ = serving.await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        stdout,
        "connected to shouter (2026-07-28)\ntool: shout\nresult: HELLO\nnotification: the tool list changed\n"
    );
}

/// The client core over a real child process: `StdioClient` as the `Client`'s transport, in
/// both generations.
#[tokio::test]
async fn the_client_core_drives_the_custom_server_over_stdio() {
    use portico_core::client::{Client, Protocol};
    use portico_protocol::v2026_07_28 as wire;

    for protocol in [Protocol::Stateless, Protocol::Stateful("2025-11-25"), Protocol::Auto] {
        let client = Client::builder(wire::Implementation::new("stdio-test", "1.0.0"))
            .protocol(protocol)
            .connect(|service| async move {
                let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_custom-server"));
                spawn(&mut command, service, StdioConfig::default()).await
            })
            .await
            .unwrap_or_else(|e| panic!("{protocol:?}: {e}"));
        let tools = client.list_all_tools().await.expect("tools");
        assert_eq!(
            tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["add"],
            "{protocol:?}"
        );
        let result = client
            .call_tool("add", json!({"a": 2, "b": 40.5}))
            .await
            .unwrap_or_else(|e| panic!("{protocol:?}: {e}"));
        assert_eq!(result.structured_content, Some(json!({"sum": 42.5})), "{protocol:?}");
        tokio::time::timeout(Duration::from_secs(30), client.close())
            .await
            .expect("closes in time")
            .expect("closes");
    }
}
