//! The server framework, driven with raw JSON-RPC as clients of each revision send it; every
//! result is validated against the negotiated revision's official schema.

use std::time::Duration;

use portico_core::server::{Json, Server, tool};
use portico_core::{Outbound, Peer, PeerConfig};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;

#[derive(Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    /// The text to say back.
    text: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct AddArgs {
    a: i64,
    b: i64,
}

#[derive(Serialize, schemars::JsonSchema)]
struct Sum {
    sum: i64,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct Nothing {}

fn server(page_size: usize, extra_tools: usize) -> Server {
    let mut builder = Server::builder("portico-test", "1.0.0")
        .instructions("Test server.")
        .page_size(page_size)
        .tool(
            tool(
                "echo",
                "Says the text back",
                |_cx, args: EchoArgs| async move { args.text },
            )
            .with_title("Echo"),
        )
        .tool(
            tool("add", "Adds two integers", |_cx, args: AddArgs| async move {
                Json(Sum { sum: args.a + args.b })
            })
            .with_output::<Sum>(),
        )
        .tool(tool("fail", "Always fails", |_cx, _args: Nothing| async move {
            Err::<String, _>("the disk is full")
        }));
    for i in 0..extra_tools {
        builder = builder.tool(tool(
            &format!("extra_{i}"),
            "Filler",
            |_cx, _args: Nothing| async move { "ok" },
        ));
    }
    builder.build()
}

/// A client's view of one connection: send a frame, get the answer.
struct Client {
    peer: Peer<portico_core::server::Connection>,
    out: mpsc::Receiver<Outbound>,
    next: i64,
}

impl Client {
    fn new(server: &Server) -> Self {
        let (tx, out) = mpsc::channel(16);
        Self {
            peer: Peer::new(server.connection(), PeerConfig::default(), tx),
            out,
            next: 1,
        }
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let frame = json!({"jsonrpc": "2.0", "id": self.next, "method": method, "params": params});
        self.peer.receive(&frame.to_string()).await;
        let answer = tokio::time::timeout(Duration::from_secs(10), self.out.recv())
            .await
            .expect("an answer")
            .expect("open");
        let v: Value = serde_json::from_str(&answer.text).expect("JSON");
        assert_eq!(v["id"], self.next, "{v}");
        v
    }

    async fn notify(&mut self, method: &str) {
        self.peer
            .receive(&json!({"jsonrpc": "2.0", "method": method}).to_string())
            .await;
    }
}

/// Validates `value` as the definition `def` of `revision`'s official schema.
pub(crate) fn validate(revision: &str, def: &str, value: &Value) {
    let schema = crate::schema(revision);
    let defs_key = if schema.get("$defs").is_some() {
        "$defs"
    } else {
        "definitions"
    };
    let wrapper =
        json!({"$schema": schema["$schema"], "$ref": format!("#/{defs_key}/{def}"), defs_key: schema[defs_key]});
    let validator = jsonschema::validator_for(&wrapper).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{revision} {def} {value}:\n{}", errors.join("\n"));
}

fn meta() -> Value {
    json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}})
}

#[tokio::test]
async fn stateless_2026_clients_discover_list_and_call() {
    let mut c = Client::new(&server(100, 0));
    let r = "2026-07-28";
    let v = c.call("server/discover", json!({"_meta": meta()})).await;
    validate(r, "DiscoverResultResponse", &v);
    assert_eq!(
        v["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "portico-test"
    );
    assert!(
        v["result"]["supportedVersions"]
            .as_array()
            .expect("versions")
            .contains(&json!("2025-11-25"))
    );
    assert_eq!(v["result"]["capabilities"]["tools"], json!({"listChanged": true}));

    let v = c.call("tools/list", json!({"_meta": meta()})).await;
    validate(r, "ListToolsResultResponse", &v);
    let tools = v["result"]["tools"].as_array().expect("tools");
    assert_eq!(tools.len(), 3);
    assert_eq!(tools[0]["name"], "echo");
    assert_eq!(tools[0]["title"], "Echo");
    assert_eq!(
        tools[0]["inputSchema"]["properties"]["text"]["description"],
        "The text to say back."
    );
    assert_eq!(tools[0]["inputSchema"]["required"], json!(["text"]));
    assert_eq!(tools[1]["outputSchema"]["properties"]["sum"]["type"], "integer");

    let v = c
        .call(
            "tools/call",
            json!({"_meta": meta(), "name": "echo", "arguments": {"text": "hi"}}),
        )
        .await;
    validate(r, "CallToolResultResponse", &v);
    assert_eq!(
        v["result"],
        json!({"resultType": "complete", "content": [{"type": "text", "text": "hi"}],
               "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "portico-test", "version": "1.0.0"}}})
    );
    let v = c
        .call(
            "tools/call",
            json!({"_meta": meta(), "name": "add", "arguments": {"a": 2, "b": 40}}),
        )
        .await;
    validate(r, "CallToolResultResponse", &v);
    assert_eq!(v["result"]["structuredContent"], json!({"sum": 42}));
    let v = c
        .call("tools/call", json!({"_meta": meta(), "name": "fail", "arguments": {}}))
        .await;
    validate(r, "CallToolResultResponse", &v);
    assert_eq!(v["result"]["isError"], true);
    assert_eq!(v["result"]["content"][0]["text"], "the disk is full");
}

#[tokio::test]
async fn bad_calls_get_protocol_errors() {
    let mut c = Client::new(&server(100, 0));
    let v = c
        .call(
            "tools/call",
            json!({"_meta": meta(), "name": "echo", "arguments": {"txt": "hi"}}),
        )
        .await;
    validate("2026-07-28", "JSONRPCErrorResponse", &v);
    assert_eq!(v["error"]["code"], -32602);
    assert!(
        v["error"]["message"].as_str().unwrap_or_default().contains("`text`"),
        "{v}"
    );
    let v = c.call("tools/call", json!({"_meta": meta(), "name": "nope"})).await;
    assert_eq!(v["error"]["code"], -32602);
    assert!(
        v["error"]["message"].as_str().unwrap_or_default().contains("nope"),
        "{v}"
    );
    let v = c
        .call(
            "tools/call",
            json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}, "name": "echo"}),
        )
        .await;
    assert_eq!(
        v["error"]["code"], -32602,
        "clientCapabilities is required in 2026-07-28: {v}"
    );
    let mut wrong = meta();
    wrong["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let v = c.call("tools/list", json!({"_meta": wrong})).await;
    validate("2026-07-28", "UnsupportedProtocolVersionError", &v);
    assert_eq!(v["error"]["data"]["requested"], "2099-01-01");
    let v = c.call("tools/list", json!({})).await;
    assert_eq!(v["error"]["code"], -32600, "no initialize and no _meta: {v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("initialize"),
        "{v}"
    );
    let v = c.call("resources/frobnicate", json!({})).await;
    assert_eq!(v["error"]["code"], -32601);
    // Methods 2026-07-28 removed are unknown to a 2026-07-28 request.
    for removed in ["initialize", "ping", "logging/setLevel", "resources/subscribe"] {
        let v = c.call(removed, json!({"_meta": meta()})).await;
        assert_eq!(v["error"]["code"], -32601, "{removed}: {v}");
    }
}

#[tokio::test]
async fn stateful_clients_of_every_revision_get_results_of_their_revision() {
    let (init_result, list_result, call_result, error) =
        ("InitializeResult", "ListToolsResult", "CallToolResult", "JSONRPCError");
    for revision in ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"] {
        let mut c = Client::new(&server(100, 0));
        let v = c
            .call(
                "initialize",
                json!({"protocolVersion": revision, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
            )
            .await;
        validate(revision, init_result, &v["result"]);
        assert_eq!(v["result"]["protocolVersion"], revision);
        assert_eq!(v["result"]["instructions"], "Test server.");
        c.notify("notifications/initialized").await;
        let v = c.call("ping", json!({})).await;
        assert_eq!(v["result"], json!({}));

        let v = c.call("tools/list", json!({})).await;
        validate(revision, list_result, &v["result"]);
        let echo = &v["result"]["tools"][0];
        assert!(
            echo.get("resultType").is_none() && v["result"].get("ttlMs").is_none(),
            "{v}"
        );
        assert_eq!(
            echo.get("title").is_some(),
            revision >= "2025-06-18",
            "{revision}: {echo}"
        );
        assert_eq!(
            v["result"]["tools"][1].get("outputSchema").is_some(),
            revision >= "2025-06-18",
            "{revision}"
        );

        let v = c
            .call("tools/call", json!({"name": "echo", "arguments": {"text": "hi"}}))
            .await;
        validate(revision, call_result, &v["result"]);
        assert_eq!(
            v["result"],
            json!({"content": [{"type": "text", "text": "hi"}]}),
            "{revision}"
        );

        let v = c.call("tools/call", json!({"name": "echo", "arguments": {}})).await;
        let envelope = if revision == "2025-11-25" {
            "JSONRPCErrorResponse"
        } else {
            error
        };
        validate(revision, envelope, &v);
        assert_eq!(v["error"]["code"], -32602);
    }
}

#[tokio::test]
async fn an_unknown_client_version_gets_the_newest_stateful_revision() {
    let mut c = Client::new(&server(100, 0));
    let v = c
        .call(
            "initialize",
            json!({"protocolVersion": "1999-01-01", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
        )
        .await;
    assert_eq!(v["result"]["protocolVersion"], "2025-11-25");
    let v = c.call("initialize", json!({"capabilities": {}})).await;
    assert_eq!(
        v["error"]["code"], -32602,
        "protocolVersion and clientInfo are required: {v}"
    );
}

#[tokio::test]
async fn lists_page_with_opaque_cursors() {
    let mut c = Client::new(&server(2, 4));
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let mut params = json!({"_meta": meta()});
        if let Some(c) = &cursor {
            params["cursor"] = json!(c);
        }
        let v = c.call("tools/list", params).await;
        validate("2026-07-28", "ListToolsResultResponse", &v);
        names.extend(
            v["result"]["tools"]
                .as_array()
                .expect("tools")
                .iter()
                .map(|t| t["name"].as_str().unwrap_or_default().to_string()),
        );
        cursor = v["result"]["nextCursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(
        names,
        ["echo", "add", "fail", "extra_0", "extra_1", "extra_2", "extra_3"]
    );
    let v = c
        .call("tools/list", json!({"_meta": meta(), "cursor": "garbage"}))
        .await;
    assert_eq!(v["error"]["code"], -32602);
}

fn full_server() -> Server {
    use portico_core::server::prompt::user_text;
    use portico_core::server::resource::{blob, text};
    use portico_core::server::{prompt, resource, resource_template};
    Server::builder("portico-test", "1.0.0")
        .tool(tool("log", "Logs at every level", |cx, _args: Nothing| async move {
            use portico_protocol::v2026_07_28::LoggingLevel;
            for level in [LoggingLevel::Debug, LoggingLevel::Info, LoggingLevel::Error] {
                cx.log(level, &format!("{level}")).await.map_err(|e| e.to_string())?;
            }
            Ok::<_, String>("logged")
        }))
        .resource(
            resource("test://static-text", "static", |_cx| async {
                Ok(vec![text("test://static-text", "hello")])
            })
            .with_mime_type("text/plain"),
        )
        .resource(resource("test://static-binary", "binary", |_cx| async {
            Ok(vec![blob("test://static-binary", "AAEC")])
        }))
        .resource_template(resource_template(
            "test://template/{id}/data",
            "by id",
            |_cx, vars| async move {
                Ok(vec![text(
                    format!("test://template/{}/data", vars["id"]),
                    format!("item {}", vars["id"]),
                )])
            },
        ))
        .prompt(
            prompt("greet", "Greets someone", |_cx, args| async move {
                Ok(vec![user_text(format!("Hello, {}!", args["name"]))])
            })
            .with_argument("name", "Who to greet", true),
        )
        .completion(|_cx, params| async move {
            let prefix = params.argument.value.clone();
            Ok(["alice", "albert", "bob"]
                .iter()
                .filter(|n| n.starts_with(&prefix))
                .map(|n| n.to_string())
                .collect())
        })
        .build()
}

#[tokio::test]
async fn resources_prompts_and_completion_in_both_eras() {
    let s = full_server();
    // 2026-07-28.
    let mut c = Client::new(&s);
    let r = "2026-07-28";
    let v = c.call("resources/list", json!({"_meta": meta()})).await;
    validate(r, "ListResourcesResultResponse", &v);
    assert_eq!(v["result"]["resources"][0]["mimeType"], "text/plain");
    let v = c.call("resources/templates/list", json!({"_meta": meta()})).await;
    validate(r, "ListResourceTemplatesResultResponse", &v);
    let v = c
        .call(
            "resources/read",
            json!({"_meta": meta(), "uri": "test://template/42/data"}),
        )
        .await;
    validate(r, "ReadResourceResultResponse", &v);
    assert_eq!(v["result"]["contents"][0]["text"], "item 42");
    let v = c
        .call(
            "resources/read",
            json!({"_meta": meta(), "uri": "test://static-binary"}),
        )
        .await;
    assert_eq!(v["result"]["contents"][0]["blob"], "AAEC");
    let v = c
        .call("resources/read", json!({"_meta": meta(), "uri": "test://missing"}))
        .await;
    assert_eq!(v["error"]["code"], -32602, "2026-07-28 says invalid params: {v}");
    let v = c
        .call(
            "prompts/get",
            json!({"_meta": meta(), "name": "greet", "arguments": {"name": "Ada"}}),
        )
        .await;
    validate(r, "GetPromptResultResponse", &v);
    assert_eq!(v["result"]["messages"][0]["content"]["text"], "Hello, Ada!");
    let v = c.call("prompts/get", json!({"_meta": meta(), "name": "greet"})).await;
    assert_eq!(v["error"]["code"], -32602);
    assert!(
        v["error"]["message"].as_str().unwrap_or_default().contains("`name`"),
        "{v}"
    );
    let v = c
        .call(
            "prompts/get",
            json!({"_meta": meta(), "name": "greet", "arguments": {"name": "x", "extra": "y"}}),
        )
        .await;
    assert_eq!(v["error"]["code"], -32602);
    let complete = json!({"_meta": meta(), "ref": {"type": "ref/prompt", "name": "greet"}, "argument": {"name": "name", "value": "al"}});
    let v = c.call("completion/complete", complete).await;
    validate(r, "CompleteResultResponse", &v);
    assert_eq!(v["result"]["completion"]["values"], json!(["alice", "albert"]));
    let v = c.call("server/discover", json!({"_meta": meta()})).await;
    let caps = &v["result"]["capabilities"];
    assert!(
        caps["resources"].is_object()
            && caps["prompts"].is_object()
            && caps["completions"].is_object()
            && caps["logging"].is_object(),
        "{caps}"
    );

    // 2025-11-25, and the oldest revision.
    for revision in ["2025-11-25", "2024-11-05"] {
        let mut c = Client::new(&s);
        c.call(
            "initialize",
            json!({"protocolVersion": revision, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
        )
        .await;
        let v = c.call("resources/read", json!({"uri": "test://static-text"})).await;
        validate(revision, "ReadResourceResult", &v["result"]);
        let v = c
            .call("prompts/get", json!({"name": "greet", "arguments": {"name": "Ada"}}))
            .await;
        validate(revision, "GetPromptResult", &v["result"]);
        let v = c
            .call(
                "completion/complete",
                json!({"ref": {"type": "ref/prompt", "name": "greet"}, "argument": {"name": "name", "value": "b"}}),
            )
            .await;
        validate(revision, "CompleteResult", &v["result"]);
        assert_eq!(v["result"]["completion"]["values"], json!(["bob"]));
    }
}

/// Collects the `notifications/message` a call produced, then its answer.
async fn logs_of(c: &mut Client, params: Value) -> Vec<String> {
    c.next += 1;
    let frame = json!({"jsonrpc": "2.0", "id": c.next, "method": "tools/call", "params": params});
    c.peer.receive(&frame.to_string()).await;
    let mut logs = Vec::new();
    loop {
        let out = tokio::time::timeout(Duration::from_secs(10), c.out.recv())
            .await
            .expect("a message")
            .expect("open");
        let v: Value = serde_json::from_str(&out.text).expect("JSON");
        if v["method"] == "notifications/message" {
            logs.push(v["params"]["data"].as_str().unwrap_or_default().to_string());
        } else {
            assert_eq!(v["result"]["content"][0]["text"], "logged", "{v}");
            return logs;
        }
    }
}

#[tokio::test]
async fn logging_follows_the_level_the_client_asked_for() {
    let s = full_server();
    let mut c = Client::new(&s);
    let call = |meta: Value| json!({"_meta": meta, "name": "log", "arguments": {}});
    assert!(
        logs_of(&mut c, call(meta())).await.is_empty(),
        "2026-07-28 without a logLevel gets no logs"
    );
    let mut m = meta();
    m["io.modelcontextprotocol/logLevel"] = json!("info");
    assert_eq!(logs_of(&mut c, call(m)).await, ["info", "error"]);

    let mut c = Client::new(&s);
    c.call(
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
    )
    .await;
    assert_eq!(
        logs_of(&mut c, json!({"name": "log", "arguments": {}})).await,
        ["debug", "info", "error"]
    );
    let v = c.call("logging/setLevel", json!({"level": "error"})).await;
    assert_eq!(v["result"], json!({}));
    assert_eq!(
        logs_of(&mut c, json!({"name": "log", "arguments": {}})).await,
        ["error"]
    );
    let v = c.call("logging/setLevel", json!({"level": "loud"})).await;
    assert_eq!(v["error"]["code"], -32602);
}

/// The next message on the connection, parsed.
async fn next_message(c: &mut Client) -> (Value, Option<portico_core::RequestId>) {
    let out = tokio::time::timeout(Duration::from_secs(10), c.out.recv())
        .await
        .expect("a message")
        .expect("open");
    (serde_json::from_str(&out.text).expect("JSON"), out.related)
}

/// Nothing arrives within a short while.
async fn assert_quiet(c: &mut Client) {
    tokio::task::yield_now().await;
    if let Ok(Some(out)) = tokio::time::timeout(Duration::from_millis(100), c.out.recv()).await {
        panic!("unexpected message {}", out.text);
    }
}

#[tokio::test]
async fn subscriptions_listen_streams_what_its_filter_names() {
    use portico_core::server::Change;
    let s = full_server();
    let mut c = Client::new(&s);
    let listen = json!({"jsonrpc": "2.0", "id": "sub-1", "method": "subscriptions/listen", "params": {
        "_meta": meta(),
        "notifications": {"toolsListChanged": true, "promptsListChanged": true, "resourceSubscriptions": ["test://static-text"]}
    }});
    c.peer.receive(&listen.to_string()).await;
    let (ack, related) = next_message(&mut c).await;
    validate("2026-07-28", "SubscriptionsAcknowledgedNotification", &ack);
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "sub-1"
    );
    assert_eq!(
        ack["params"]["notifications"],
        json!({"toolsListChanged": true, "promptsListChanged": true, "resourceSubscriptions": ["test://static-text"]})
    );
    assert_eq!(
        related,
        Some("sub-1".into()),
        "the stream's messages belong to the listen request"
    );

    s.notify(Change::ToolsListChanged);
    let (n, _) = next_message(&mut c).await;
    validate("2026-07-28", "ToolListChangedNotification", &n);
    assert_eq!(n["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], "sub-1");
    s.notify(Change::ResourcesListChanged);
    s.notify(Change::ResourceUpdated("test://other".into()));
    assert_quiet(&mut c).await;
    s.notify(Change::ResourceUpdated("test://static-text".into()));
    let (n, _) = next_message(&mut c).await;
    validate("2026-07-28", "ResourceUpdatedNotification", &n);
    assert_eq!(n["params"]["uri"], "test://static-text");

    s.shutdown();
    let (end, _) = next_message(&mut c).await;
    validate("2026-07-28", "SubscriptionsListenResultResponse", &end);
    assert_eq!(end["id"], "sub-1");
}

#[tokio::test]
async fn a_cancelled_listen_stream_stops_without_a_response() {
    use portico_core::server::Change;
    let s = full_server();
    let mut c = Client::new(&s);
    let listen = json!({"jsonrpc": "2.0", "id": 9, "method": "subscriptions/listen", "params": {"_meta": meta(), "notifications": {"toolsListChanged": true}}});
    c.peer.receive(&listen.to_string()).await;
    let _ack = next_message(&mut c).await;
    assert_eq!(s.listeners(), 1);
    c.peer
        .receive(
            &json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 9}}).to_string(),
        )
        .await;
    s.notify(Change::ToolsListChanged);
    assert_quiet(&mut c).await;
    assert_eq!(s.listeners(), 0, "the stream's listener is gone");
}

#[tokio::test]
async fn sessions_get_list_changes_and_their_subscribed_resources() {
    use portico_core::server::Change;
    let s = full_server();
    let mut c = Client::new(&s);
    let v = c
        .call(
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
        )
        .await;
    assert_eq!(
        v["result"]["capabilities"]["resources"],
        json!({"listChanged": true, "subscribe": true})
    );
    s.notify(Change::ToolsListChanged);
    let (n, related) = next_message(&mut c).await;
    validate("2025-11-25", "ToolListChangedNotification", &n);
    assert_eq!(related, None, "session notifications belong to no request");
    s.notify(Change::ResourceUpdated("test://static-text".into()));
    assert_quiet(&mut c).await;
    let v = c
        .call("resources/subscribe", json!({"uri": "test://static-text"}))
        .await;
    assert_eq!(v["result"], json!({}));
    s.notify(Change::ResourceUpdated("test://static-text".into()));
    let (n, _) = next_message(&mut c).await;
    validate("2025-11-25", "ResourceUpdatedNotification", &n);
    let v = c
        .call("resources/unsubscribe", json!({"uri": "test://static-text"}))
        .await;
    assert_eq!(v["result"], json!({}));
    s.notify(Change::ResourceUpdated("test://static-text".into()));
    assert_quiet(&mut c).await;
    drop(c);
    tokio::task::yield_now().await;
    assert_eq!(s.listeners(), 0, "a closed session stops listening");
}

fn asking_server() -> Server {
    use portico_protocol::v2026_07_28 as wire;
    Server::builder("portico-test", "1.0.0")
        .tool(tool(
            "greet_user",
            "Asks the user's name, then greets them",
            |cx, _args: Nothing| async move {
                let schema: wire::ElicitRequestFormParamsRequestedSchema = serde_json::from_value(json!({
                    "type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]
                }))
                .map_err(|e| e.to_string())?;
                let question = wire::ElicitRequestFormParams::new("What is your name?", schema);
                let answer = cx.elicit(question.into()).await.map_err(|e| e.to_string())?;
                let name = answer
                    .content
                    .as_ref()
                    .and_then(|c| c.get("name"))
                    .map(|v| serde_json::to_value(v).unwrap_or_default());
                Ok::<_, String>(format!(
                    "Hello, {}!",
                    name.and_then(|n| n.as_str().map(str::to_string)).unwrap_or_default()
                ))
            },
        ))
        .build()
}

#[tokio::test]
async fn a_2026_handler_asks_for_input_and_is_retried_with_the_answer() {
    let s = asking_server();
    let mut c = Client::new(&s);
    let mut m = meta();
    m["io.modelcontextprotocol/clientCapabilities"] = json!({"elicitation": {"form": {}}});
    let call = json!({"_meta": m, "name": "greet_user", "arguments": {}});
    let v = c.call("tools/call", call.clone()).await;
    validate("2026-07-28", "CallToolResultResponse", &v);
    assert_eq!(v["result"]["resultType"], "input_required", "{v}");
    let question = &v["result"]["inputRequests"]["elicit-0"];
    assert_eq!(question["method"], "elicitation/create");
    assert_eq!(question["params"]["message"], "What is your name?");
    let state = v["result"]["requestState"]
        .as_str()
        .expect("a sealed state")
        .to_string();

    let mut retry = call.clone();
    retry["inputResponses"] = json!({"elicit-0": {"action": "accept", "content": {"name": "Ada"}}});
    retry["requestState"] = json!(state);
    let v = c.call("tools/call", retry.clone()).await;
    validate("2026-07-28", "CallToolResultResponse", &v);
    assert_eq!(v["result"]["content"][0]["text"], "Hello, Ada!", "{v}");

    let mut tampered = retry.clone();
    // Change the MAC's last digit (to another digit, whatever it was).
    let last = if state.ends_with('0') { '1' } else { '0' };
    tampered["requestState"] = json!(format!("{}{last}", &state[..state.len() - 1]));
    let v = c.call("tools/call", tampered).await;
    assert_eq!(v["error"]["code"], -32602, "{v}");
    let mut other_call = retry.clone();
    other_call["arguments"] = json!({"x": 1});
    let v = c.call("tools/call", other_call).await;
    assert_eq!(
        v["error"]["code"], -32602,
        "a state is bound to its request's arguments: {v}"
    );
    let mut no_state = retry;
    no_state.as_object_mut().expect("object").remove("requestState");
    let v = c.call("tools/call", no_state).await;
    assert_eq!(
        v["result"]["resultType"], "input_required",
        "answers without a state are ignored and asked again: {v}"
    );

    // A client without the elicitation capability: -32021 naming it.
    let v = c
        .call(
            "tools/call",
            json!({"_meta": meta(), "name": "greet_user", "arguments": {}}),
        )
        .await;
    validate("2026-07-28", "MissingRequiredClientCapabilityError", &v);
    assert_eq!(
        v["error"]["data"]["requiredCapabilities"],
        json!({"elicitation": {}}),
        "{v}"
    );
}

#[tokio::test]
async fn a_session_handler_asks_the_client_directly() {
    let s = asking_server();
    let mut c = Client::new(&s);
    c.call("initialize", json!({"protocolVersion": "2025-11-25", "capabilities": {"elicitation": {}}, "clientInfo": {"name": "t", "version": "1"}}))
        .await;
    c.next += 1;
    let id = c.next;
    c.peer.receive(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "greet_user", "arguments": {}}}).to_string()).await;
    let (request, related) = next_message(&mut c).await;
    assert_eq!(request["method"], "elicitation/create", "{request}");
    assert_eq!(
        related,
        Some(portico_core::RequestId::Number(id)),
        "sent while serving the call"
    );
    validate("2025-11-25", "ElicitRequest", &request);
    let answer =
        json!({"jsonrpc": "2.0", "id": request["id"], "result": {"action": "accept", "content": {"name": "Grace"}}});
    c.peer.receive(&answer.to_string()).await;
    let (v, _) = next_message(&mut c).await;
    assert_eq!(v["id"], id);
    validate("2025-11-25", "CallToolResult", &v["result"]);
    assert_eq!(v["result"]["content"][0]["text"], "Hello, Grace!");
}

#[tokio::test]
async fn later_rounds_keep_earlier_answers_and_keys_can_be_chosen() {
    use portico_protocol::v2026_07_28 as wire;
    let s = Server::builder("portico-test", "1.0.0")
        .tool(tool("two_steps", "Asks twice", |cx, _args: Nothing| async move {
            let ask = |message: &str| -> wire::InputRequest {
                let schema: wire::ElicitRequestFormParamsRequestedSchema =
                    serde_json::from_value(json!({"type": "object", "properties": {"v": {"type": "string"}}}))
                        .expect("a schema");
                wire::ElicitRequest::new(wire::ElicitRequestFormParams::new(message, schema).into()).into()
            };
            let first = cx
                .request_input("user_name", ask("Name?"))
                .await
                .map_err(|e| e.to_string())?;
            let second = cx
                .request_input("favorite_color", ask("Color?"))
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(format!("{} likes {}", first["content"]["v"], second["content"]["v"]))
        }))
        .build();
    let mut c = Client::new(&s);
    let mut m = meta();
    m["io.modelcontextprotocol/clientCapabilities"] = json!({"elicitation": {}});
    let call = json!({"_meta": m, "name": "two_steps", "arguments": {}});
    let v = c.call("tools/call", call.clone()).await;
    assert!(
        v["result"]["inputRequests"]["user_name"].is_object(),
        "the handler's own key: {v}"
    );
    let mut round2 = call.clone();
    round2["inputResponses"] = json!({"user_name": {"action": "accept", "content": {"v": "Ada"}}});
    round2["requestState"] = v["result"]["requestState"].clone();
    let v = c.call("tools/call", round2).await;
    validate("2026-07-28", "CallToolResultResponse", &v);
    assert!(v["result"]["inputRequests"]["favorite_color"].is_object(), "{v}");
    // The third round sends only the new answer: the first comes back from the state.
    let mut round3 = call;
    round3["inputResponses"] = json!({"favorite_color": {"action": "accept", "content": {"v": "teal"}}});
    round3["requestState"] = v["result"]["requestState"].clone();
    let v = c.call("tools/call", round3).await;
    assert_eq!(v["result"]["content"][0]["text"], "\"Ada\" likes \"teal\"", "{v}");
}
