//! The client core against the server framework, in process: a client peer wired to a server
//! peer over channels (`client::memory`), in both eras — `server/discover` with per-request
//! `_meta` and `input_required` rounds, and `initialize` sessions with real server→client
//! requests — plus pagination, notifications, subscriptions, cancellation, timeouts, output
//! schemas and servers that misbehave.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use portico_core::client::{
    Client, ClientConfig, ClientError, ClientHandler, InputContext, Notification, Protocol, RequestOptions, memory,
};
use portico_core::server::{Change, Connection, Era, Json, Server, prompt, resource, tool};
use portico_core::{ErrorObject, JsonText, PeerConfig, RequestContext, Service};
use portico_protocol::v2026_07_28 as wire;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::sync::Notify;

#[derive(Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    text: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct Nothing {}

#[derive(Deserialize, schemars::JsonSchema)]
struct AddArgs {
    a: i64,
    b: i64,
}

#[derive(Deserialize, Serialize, schemars::JsonSchema)]
struct Sum {
    sum: i64,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct Count {
    n: u32,
}

/// Set and signalled when a `slow` call's handler is dropped (it ends only by cancellation).
#[derive(Default)]
struct Slow {
    started: Notify,
    running: AtomicBool,
    cancelled: AtomicBool,
    ended: Notify,
}

struct Dropped(Arc<Slow>);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
        self.0.ended.notify_waiters();
    }
}

fn form(message: &str) -> wire::ElicitRequestParams {
    serde_json::from_value(json!({
        "mode": "form",
        "message": message,
        "requestedSchema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    }))
    .expect("form params")
}

fn text_of(result: &wire::CallToolResult) -> String {
    serde_json::to_value(&result.content).expect("JSON")[0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The server the tests talk to: two tools per page, so listing takes pages.
fn test_server(slow: Arc<Slow>) -> Server {
    let asked = Arc::new(AtomicUsize::new(0));
    let mut builder = Server::builder("client-it", "1.0.0")
        .instructions("A server for the client tests.")
        .page_size(2)
        .tool(tool(
            "echo",
            "Says the text back",
            |_cx, a: EchoArgs| async move { a.text },
        ))
        .tool(
            tool(
                "add",
                "Adds",
                |_cx, a: AddArgs| async move { Json(Sum { sum: a.a + a.b }) },
            )
            .with_output::<Sum>(),
        )
        .tool(
            tool(
                "liar",
                "Declares a Sum, returns something else",
                |_cx, _a: Nothing| async move { Json(json!({"sum": "many"})) },
            )
            .with_output::<Sum>(),
        )
        .tool(tool("greet", "Asks the user's name", |cx, _a: Nothing| async move {
            let answer = cx.elicit(form("Your name?")).await.map_err(|e| e.to_string())?;
            let name = serde_json::to_value(&answer.content).expect("JSON")["name"].clone();
            Ok::<_, String>(format!("Hello, {}! ({})", name.as_str().unwrap_or("?"), answer.action))
        }))
        .tool(tool(
            "ask_all",
            "Asks the model, the user and the roots",
            |cx, _a: Nothing| async move {
                let question =
                    wire::SamplingMessage::new(wire::TextContent::new("Capital of France?").into(), wire::Role::User);
                let sampled = cx
                    .sample(wire::CreateMessageRequestParams::new(50, vec![question]))
                    .await;
                let elicited = cx.elicit(form("Name?")).await;
                let roots = cx.list_roots().await;
                let (sampled, elicited, roots) = (
                    sampled.map_err(|e| e.to_string())?,
                    elicited.map_err(|e| e.to_string())?,
                    roots.map_err(|e| e.to_string())?,
                );
                let said = serde_json::to_value(&sampled.content).expect("JSON")["text"].clone();
                Ok::<_, String>(format!(
                    "{} / {} / {}",
                    said.as_str().unwrap_or("?"),
                    elicited.action,
                    roots.roots[0].uri
                ))
            },
        ))
        .tool(tool(
            "insatiable",
            "Asks a new question every round",
            move |cx, _a: Nothing| {
                let asked = asked.clone();
                async move {
                    let n = asked.fetch_add(1, Ordering::SeqCst);
                    let question = wire::InputRequest::Elicit(wire::ElicitRequest::new(form("Again?")));
                    cx.request_input(&format!("q-{n}"), question)
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok::<_, String>("never".to_string())
                }
            },
        ))
        .tool(tool("visit", "Sends the user to a URL", |cx, _a: Nothing| async move {
            let params = serde_json::from_value(json!({
                "mode": "url",
                "message": "Sign in, please",
                "url": "https://example.com/login",
                "elicitationId": "e-1"
            }))
            .expect("URL params");
            let answer = cx.elicit(params).await.map_err(|e| e.to_string())?;
            Ok::<_, String>(format!("visited: {}", answer.action))
        }))
        .tool(tool(
            "progress",
            "Reports progress n times",
            |cx, a: Count| async move {
                for i in 1..=a.n {
                    let _ = cx.progress(f64::from(i), Some(f64::from(a.n)), None).await;
                }
                "done"
            },
        ))
        .tool(tool("chatty", "Logs at info and debug", |cx, _a: Nothing| async move {
            let _ = cx.log(wire::LoggingLevel::Info, &json!("an info line")).await;
            let _ = cx.log(wire::LoggingLevel::Debug, &json!("a debug line")).await;
            "logged"
        }))
        .tool(tool("slow", "Runs until cancelled", move |_cx, _a: Nothing| {
            let slow = slow.clone();
            async move {
                let _dropped = Dropped(slow.clone());
                slow.running.store(true, Ordering::SeqCst);
                slow.started.notify_waiters();
                std::future::pending::<()>().await;
                "unreachable"
            }
        }))
        .resource(resource("test://a", "a", |_cx| async move {
            Ok(vec![portico_core::server::resource::text(
                "test://a",
                "the content of a",
            )])
        }))
        .prompt(
            prompt("hello", "Says hello", |_cx, args| async move {
                let who = args.get("who").cloned().unwrap_or_default();
                Ok(vec![portico_core::server::prompt::user_text(format!("Hello, {who}"))])
            })
            .with_argument("who", "Whom to greet", true),
        )
        .completion(|_cx, _params| async move { Ok(vec!["alpha".to_string(), "beta".to_string()]) });
    for i in 0..3 {
        builder = builder.tool(tool(&format!("filler_{i}"), "Filler", |_cx, _a: Nothing| async move {
            "ok"
        }));
    }
    builder.build()
}

const TOOLS: usize = 13;

/// Answers every kind of input request, declaring every capability.
struct Answers;

impl ClientHandler for Answers {
    fn capabilities(&self) -> wire::ClientCapabilities {
        serde_json::from_value(json!({"sampling": {}, "elicitation": {"form": {}}, "roots": {}})).expect("caps")
    }

    async fn create_message(
        &self,
        _params: wire::CreateMessageRequestParams,
        _cx: InputContext,
    ) -> Result<wire::CreateMessageResult, ErrorObject> {
        Ok(wire::CreateMessageResult::new(
            wire::TextContent::new("Paris").into(),
            "test-model",
            wire::Role::Assistant,
        ))
    }

    async fn elicit(
        &self,
        _params: wire::ElicitRequestParams,
        _cx: InputContext,
    ) -> Result<wire::ElicitResult, ErrorObject> {
        Ok(serde_json::from_value(json!({"action": "accept", "content": {"name": "Ada"}})).expect("answer"))
    }

    async fn list_roots(&self, _cx: InputContext) -> Result<wire::ListRootsResult, ErrorObject> {
        Ok(wire::ListRootsResult::new(vec![wire::Root::new("file:///work")]))
    }
}

/// Elicits in URL mode only: accepts when sent to the expected page.
struct Browser;

impl ClientHandler for Browser {
    fn capabilities(&self) -> wire::ClientCapabilities {
        serde_json::from_value(json!({"elicitation": {"url": {}}})).expect("caps")
    }

    async fn elicit(
        &self,
        params: wire::ElicitRequestParams,
        _cx: InputContext,
    ) -> Result<wire::ElicitResult, ErrorObject> {
        match params {
            wire::ElicitRequestParams::ElicitRequestURL(url) if url.url == "https://example.com/login" => {
                Ok(wire::ElicitResult::new(wire::ElicitResultAction::Accept))
            }
            other => Err(ErrorObject::invalid_params(format!(
                "not the expected URL elicitation: {other:?}"
            ))),
        }
    }
}

/// Declares elicitation and fails to answer it.
struct Refuses;

impl ClientHandler for Refuses {
    fn capabilities(&self) -> wire::ClientCapabilities {
        serde_json::from_value(json!({"elicitation": {"form": {}}})).expect("caps")
    }

    async fn elicit(
        &self,
        _params: wire::ElicitRequestParams,
        _cx: InputContext,
    ) -> Result<wire::ElicitResult, ErrorObject> {
        Err(ErrorObject::internal("no user at the keyboard"))
    }
}

const ERAS: [Protocol; 3] = [
    Protocol::Stateless,
    Protocol::Stateful("2025-11-25"),
    Protocol::Stateful("2025-03-26"),
];

fn info() -> wire::Implementation {
    wire::Implementation::new("client-it", "1.0.0")
}

/// A client of `service` over the in-process transport.
async fn connect_service<S: Service>(
    service: S,
    protocol: Protocol,
    handler: impl ClientHandler,
    config: ClientConfig,
) -> Result<Client, ClientError> {
    Client::builder(info())
        .handler(handler)
        .protocol(protocol)
        .config(config)
        .connect(
            |client| async move { Ok::<_, std::io::Error>(memory::connect(client, service, PeerConfig::default())) },
        )
        .await
}

async fn connect(server: &Server, protocol: Protocol, handler: impl ClientHandler) -> Client {
    connect_service(server.connection(), protocol, handler, ClientConfig::default())
        .await
        .expect("connects")
}

#[tokio::test]
async fn both_eras_list_call_read_get_and_complete() {
    let server = test_server(Arc::default());
    for protocol in ERAS {
        let client = connect(&server, protocol, ()).await;
        let expected_era = match protocol {
            Protocol::Stateful(revision) => Era::Stateful(revision),
            _ => Era::Stateless,
        };
        assert_eq!(client.era(), expected_era);
        let described = client.server();
        assert_eq!(described.info.as_ref().map(|i| i.name.as_str()), Some("client-it"));
        assert_eq!(
            described.instructions.as_deref(),
            Some("A server for the client tests.")
        );
        assert!(described.capabilities.tools.is_some());

        let first = client.list_tools(None).await.expect("first page");
        assert_eq!(first.tools.len(), 2, "{protocol:?}");
        assert!(first.next_cursor.is_some());
        assert_eq!(first.result_type, "complete", "absent resultType reads as complete");
        let tools = client.list_all_tools().await.expect("every page");
        assert_eq!(tools.len(), TOOLS, "{protocol:?}");

        let echoed = client.call_tool("echo", json!({"text": "hi"})).await.expect("echo");
        assert_eq!(text_of(&echoed), "hi");
        assert_ne!(echoed.is_error, Some(true));

        let read = client.read_resource("test://a").await.expect("read");
        assert_eq!(
            serde_json::to_value(&read.contents).expect("JSON")[0]["text"],
            "the content of a"
        );
        assert_eq!(client.list_all_resources().await.expect("resources").len(), 1);
        let prompt = client
            .get_prompt("hello", BTreeMap::from([("who".to_string(), "Ada".to_string())]))
            .await
            .expect("prompt");
        assert_eq!(
            serde_json::to_value(&prompt.messages).expect("JSON")[0]["content"]["text"],
            "Hello, Ada"
        );
        assert_eq!(client.list_all_prompts().await.expect("prompts").len(), 1);
        let completed = client
            .complete(
                wire::PromptReference::new("hello").into(),
                wire::CompleteRequestParamsArgument::new("who", "a"),
                None,
            )
            .await
            .expect("complete");
        assert_eq!(completed.completion.values, ["alpha", "beta"]);

        // An unknown tool is a protocol error with its code; a resource that is not there too.
        let error = client.call_tool("nope", json!({})).await.expect_err("unknown tool");
        assert_eq!(error.code(), Some(-32602), "{error}");
        let error = client
            .read_resource("test://missing")
            .await
            .expect_err("unknown resource");
        let expected = if expected_era == Era::Stateless { -32602 } else { -32002 };
        assert_eq!(error.code(), Some(expected), "{error}");

        match protocol {
            Protocol::Stateless => {
                assert!(matches!(client.ping().await, Err(ClientError::Unsupported { .. })));
                assert!(matches!(
                    client.subscribe("test://a").await,
                    Err(ClientError::Unsupported { .. })
                ));
                let discovered = client.discover().await.expect("discover");
                assert!(discovered.supported_versions.iter().any(|v| v == "2026-07-28"));
            }
            _ => {
                client.ping().await.expect("ping");
                assert!(matches!(client.discover().await, Err(ClientError::Unsupported { .. })));
            }
        }
        client.close().await.expect("close");
        assert!(client.is_closed());
        assert!(matches!(
            client.call_tool("echo", json!({"text": "x"})).await,
            Err(ClientError::Closed)
        ));
    }
}

/// A server of the stateful era: it knows nothing of `server/discover`.
struct LegacyOnly(Connection);

impl Service for LegacyOnly {
    async fn request(
        &self,
        cx: RequestContext,
        method: String,
        params: Option<Box<RawValue>>,
    ) -> Result<JsonText, ErrorObject> {
        if method == "server/discover" {
            return Err(ErrorObject::method_not_found(&method));
        }
        self.0.request(cx, method, params).await
    }

    async fn notification(&self, peer: portico_core::PeerHandle, method: String, params: Option<Box<RawValue>>) {
        self.0.notification(peer, method, params).await;
    }
}

#[tokio::test]
async fn auto_discovers_and_falls_back_to_initialize() {
    let server = test_server(Arc::default());
    let modern = connect(&server, Protocol::Auto, ()).await;
    assert_eq!(modern.era(), Era::Stateless);
    let legacy = connect_service(
        LegacyOnly(server.connection()),
        Protocol::Auto,
        (),
        ClientConfig::default(),
    )
    .await
    .expect("falls back");
    assert_eq!(legacy.era(), Era::Stateful("2025-11-25"));
    assert_eq!(legacy.server().protocol_version, "2025-11-25");
    let echoed = legacy.call_tool("echo", json!({"text": "old"})).await.expect("echo");
    assert_eq!(text_of(&echoed), "old");
    // A revision the client does not speak is refused before anything is sent.
    let error = connect_service(
        server.connection(),
        Protocol::Stateful("1999-01-01"),
        (),
        ClientConfig::default(),
    )
    .await
    .expect_err("unknown revision");
    assert!(matches!(error, ClientError::UnsupportedVersion { .. }), "{error}");
}

/// Observes a call: answers its questions itself (when `answers`), counts what it is given.
struct Watcher {
    answers: bool,
    asked: Arc<AtomicUsize>,
}

impl portico_core::client::CallObserver for Watcher {
    fn notification(&self, _method: &str, _params: Option<&RawValue>) {}

    fn answers_requests(&self) -> bool {
        self.answers
    }

    fn request(
        &self,
        _method: String,
        _params: Option<Box<RawValue>>,
        _cx: InputContext,
    ) -> portico_core::client::ObserverFuture {
        self.asked.fetch_add(1, Ordering::SeqCst);
        Box::pin(async {
            serde_json::value::to_raw_value(&json!({"action": "accept", "content": {"name": "Grace"}}))
                .map_err(ErrorObject::internal)
        })
    }
}

#[tokio::test]
async fn an_observer_answers_its_calls_questions_unless_it_leaves_them_to_the_handler() {
    let server = test_server(Arc::default());
    let client = connect(&server, Protocol::Stateful("2025-11-25"), Answers).await;
    for (answers, expected) in [(true, "Hello, Grace! (accept)"), (false, "Hello, Ada! (accept)")] {
        let asked = Arc::new(AtomicUsize::new(0));
        let watcher = Watcher {
            answers,
            asked: asked.clone(),
        };
        let options = RequestOptions::new().observer(portico_core::client::Observer::new(watcher));
        let greeted = client
            .call_tool_with("greet", json!({}), &options)
            .await
            .expect("greet");
        assert_eq!(text_of(&greeted), expected);
        assert_eq!(asked.load(Ordering::SeqCst), usize::from(answers));
    }
}

#[tokio::test]
async fn input_is_answered_by_the_handler_in_both_eras() {
    let server = test_server(Arc::default());
    for protocol in ERAS {
        let client = connect(&server, protocol, Answers).await;
        let greeted = client.call_tool("greet", json!({})).await.expect("greet");
        assert_eq!(text_of(&greeted), "Hello, Ada! (accept)", "{protocol:?}");
        let all = client.call_tool("ask_all", json!({})).await.expect("ask_all");
        assert_eq!(text_of(&all), "Paris / accept / file:///work", "{protocol:?}");
    }
}

#[tokio::test]
async fn url_elicitation_reaches_the_handler_in_both_eras() {
    let server = test_server(Arc::default());
    for protocol in ERAS {
        let client = connect(&server, protocol, Browser).await;
        let visited = client.call_tool("visit", json!({})).await.expect("visit");
        assert_eq!(text_of(&visited), "visited: accept", "{protocol:?}");
    }
}

#[tokio::test]
async fn input_the_client_cannot_give_fails_as_each_era_says() {
    let server = test_server(Arc::default());
    // No capability declared: 2026-07-28 refuses with -32021; a session gets a tool error.
    let stateless = connect(&server, Protocol::Stateless, ()).await;
    let error = stateless.call_tool("greet", json!({})).await.expect_err("-32021");
    assert_eq!(error.code(), Some(-32021), "{error}");
    let session = connect(&server, Protocol::Stateful("2025-11-25"), ()).await;
    let result = session.call_tool("greet", json!({})).await.expect("a tool error");
    assert_eq!(result.is_error, Some(true));

    // Declared, but the handler fails: the call fails in the client, or the tool reports it.
    let stateless = connect(&server, Protocol::Stateless, Refuses).await;
    match stateless.call_tool("greet", json!({})).await {
        Err(ClientError::Input { method, key, error }) => {
            assert_eq!(method, "elicitation/create");
            assert_eq!(key, "elicit-0");
            assert!(error.message.contains("no user at the keyboard"), "{error}");
        }
        other => panic!("expected an input error, got {other:?}"),
    }
    let session = connect(&server, Protocol::Stateful("2025-11-25"), Refuses).await;
    let result = session.call_tool("greet", json!({})).await.expect("a tool error");
    assert_eq!(result.is_error, Some(true));
    assert!(
        text_of(&result).contains("no user at the keyboard"),
        "{}",
        text_of(&result)
    );
}

#[tokio::test]
async fn input_rounds_are_bounded() {
    let server = test_server(Arc::default());
    let config = ClientConfig {
        max_input_rounds: 3,
        ..ClientConfig::default()
    };
    let client = connect_service(server.connection(), Protocol::Stateless, Answers, config)
        .await
        .expect("connects");
    let error = client.call_tool("insatiable", json!({})).await.expect_err("bounded");
    assert!(
        matches!(&error, ClientError::Protocol { message, .. } if message.contains("after 3 rounds")),
        "{error}"
    );
}

#[tokio::test]
async fn progress_and_log_messages_reach_the_notification_stream() {
    let server = test_server(Arc::default());
    for protocol in ERAS {
        let client = connect(&server, protocol, ()).await;
        let mut notes = client.notifications();
        let token = client.progress_token();
        let options = RequestOptions::new().progress(token.clone());
        let done = client
            .call_tool_with("progress", json!({"n": 3}), &options)
            .await
            .expect("progress");
        assert_eq!(text_of(&done), "done");
        for i in 1..=3u32 {
            match notes.recv().await {
                Some(Notification::Progress(p)) => {
                    assert_eq!(p.progress_token, token);
                    assert_eq!(p.progress.as_f64(), Some(f64::from(i)));
                }
                other => panic!("{protocol:?}: expected progress, got {other:?}"),
            }
        }
        client.set_level(wire::LoggingLevel::Info).await.expect("set level");
        client.call_tool("chatty", json!({})).await.expect("chatty");
        match notes.recv().await {
            Some(Notification::Log(log)) => {
                assert_eq!(log.level, wire::LoggingLevel::Info);
                assert_eq!(log.data, json!("an info line"));
            }
            other => panic!("{protocol:?}: expected a log message, got {other:?}"),
        }
        // The debug line is below the level asked for.
        assert_eq!(notes.try_recv(), None, "{protocol:?}");
        client.close().await.expect("close");
        assert_eq!(notes.recv().await, None, "the stream ends with the connection");
    }
}

#[tokio::test]
async fn listen_in_2026_and_subscribe_in_sessions() {
    let server = test_server(Arc::default());

    let client = connect(&server, Protocol::Stateless, ()).await;
    let mut notes = client.notifications();
    let filter = wire::SubscriptionFilter::new()
        .with_tools_list_changed(true)
        .with_resource_subscriptions(vec!["test://a".into()]);
    let subscription = client.listen(filter).await.expect("listen");
    assert_eq!(subscription.granted().tools_list_changed, Some(true));
    assert_eq!(
        subscription.granted().resource_subscriptions.as_deref(),
        Some(&["test://a".to_string()][..])
    );
    let id = subscription.id().cloned().expect("a listen request has an id");
    server.notify(Change::ToolsListChanged);
    server.notify(Change::ResourceUpdated("test://a".into()));
    server.notify(Change::PromptsListChanged); // not asked for
    assert_eq!(
        notes.recv().await,
        Some(Notification::ToolsListChanged {
            subscription: Some(id.clone())
        })
    );
    assert_eq!(
        notes.recv().await,
        Some(Notification::ResourceUpdated {
            uri: "test://a".into(),
            subscription: Some(id.clone())
        })
    );
    // Closing cancels the request: the server forgets the listener.
    let before = server.listeners();
    subscription.close().await.expect("close");
    let mut waited = 0;
    while server.listeners() >= before && waited < 200 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        waited += 1;
    }
    assert!(server.listeners() < before, "the listen stream ended on the server");

    let session = connect(&server, Protocol::Stateful("2025-11-25"), ()).await;
    let mut notes = session.notifications();
    let filter = wire::SubscriptionFilter::new()
        .with_resources_list_changed(true)
        .with_resource_subscriptions(vec!["test://a".into()]);
    let subscription = session.listen(filter).await.expect("subscribe");
    assert_eq!(subscription.id(), None);
    assert_eq!(subscription.granted().resources_list_changed, Some(true));
    server.notify(Change::ResourceUpdated("test://a".into()));
    assert_eq!(
        notes.recv().await,
        Some(Notification::ResourceUpdated {
            uri: "test://a".into(),
            subscription: None
        })
    );
    subscription.close().await.expect("unsubscribe");
    server.notify(Change::ResourceUpdated("test://a".into()));
    session.ping().await.expect("ping");
    assert_eq!(notes.try_recv(), None, "unsubscribed");
}

#[tokio::test]
async fn a_listen_stream_ended_by_the_server_ends_gracefully() {
    let server = test_server(Arc::default());
    let client = connect(&server, Protocol::Stateless, ()).await;
    let mut subscription = client
        .listen(wire::SubscriptionFilter::new().with_tools_list_changed(true))
        .await
        .expect("listen");
    server.shutdown();
    subscription.ended().await.expect("a graceful end");
}

#[tokio::test]
async fn dropping_a_call_cancels_it_on_the_server() {
    for protocol in ERAS {
        let slow = Arc::new(Slow::default());
        let server = test_server(slow.clone());
        let client = connect(&server, protocol, ()).await;
        let started = slow.started.notified();
        let call = tokio::spawn({
            let client = client.clone();
            async move { client.call_tool("slow", json!({})).await }
        });
        if !slow.running.load(Ordering::SeqCst) {
            started.await;
        }
        let ended = slow.ended.notified();
        call.abort();
        if !slow.cancelled.load(Ordering::SeqCst) {
            tokio::time::timeout(Duration::from_secs(10), ended)
                .await
                .expect("the server stops the handler");
        }
        assert!(slow.cancelled.load(Ordering::SeqCst), "{protocol:?}");
        // The connection goes on.
        client.call_tool("echo", json!({"text": "still"})).await.expect("echo");
    }
}

#[tokio::test(start_paused = true)]
async fn a_request_times_out_and_is_cancelled() {
    let slow = Arc::new(Slow::default());
    let server = test_server(slow.clone());
    let client = connect(&server, Protocol::Stateless, ()).await;
    let options = RequestOptions::new().timeout(Duration::from_millis(200));
    let error = client
        .call_tool_with("slow", json!({}), &options)
        .await
        .expect_err("times out");
    assert!(
        matches!(&error, ClientError::Timeout { method, after } if method == "tools/call" && *after == Duration::from_millis(200)),
        "{error}"
    );
    let ended = slow.ended.notified();
    if !slow.cancelled.load(Ordering::SeqCst) {
        ended.await;
    }
}

#[tokio::test]
async fn structured_content_is_checked_against_the_output_schema() {
    let server = test_server(Arc::default());
    for protocol in ERAS {
        let client = connect(&server, protocol, ()).await;
        // Before the tools are listed, nothing is known of their schemas.
        client.call_tool("liar", json!({})).await.expect("unchecked");
        client.list_all_tools().await.expect("tools");
        let added = client.call_tool("add", json!({"a": 2, "b": 3})).await.expect("add");
        assert_eq!(added.structured_content, Some(json!({"sum": 5})));
        let liar = client.call_tool("liar", json!({})).await;
        if protocol == Protocol::Stateful("2025-03-26") {
            // That revision has no `outputSchema`: the server leaves it out, nothing is checked.
            liar.expect("unchecked in 2025-03-26");
            continue;
        }
        match liar {
            Err(ClientError::OutputSchema { tool, message, result }) => {
                assert_eq!(tool, "liar");
                assert!(message.contains("many"), "{message}");
                assert_eq!(result.structured_content, Some(json!({"sum": "many"})));
            }
            other => panic!("{protocol:?}: expected an output schema error, got {other:?}"),
        }
    }
    let unchecked = ClientConfig {
        validate_output: false,
        ..ClientConfig::default()
    };
    let client = connect_service(server.connection(), Protocol::Stateless, (), unchecked)
        .await
        .expect("connects");
    client.list_all_tools().await.expect("tools");
    client.call_tool("liar", json!({})).await.expect("not checked when off");
}

/// A server that answers nothing, or answers garbage, as told by the method.
struct Misbehaving;

impl Service for Misbehaving {
    async fn request(
        &self,
        _cx: RequestContext,
        method: String,
        params: Option<Box<RawValue>>,
    ) -> Result<JsonText, ErrorObject> {
        let answer: Result<Box<RawValue>, ErrorObject> = {
            let raw = |v: Value| serde_json::value::to_raw_value(&v).map_err(ErrorObject::internal);
            match method.as_str() {
                "initialize" => raw(json!({
                    "protocolVersion": "2025-11-25",
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "misbehaving", "version": "0"}
                })),
                // Not a list of tools.
                "tools/list" => raw(json!({"tools": 5})),
                // The same cursor again and again.
                "prompts/list" => raw(json!({"prompts": [], "nextCursor": "again"})),
                "resources/list" => {
                    let cursor = params
                        .and_then(|p| serde_json::from_str::<Value>(p.get()).ok())
                        .and_then(|p| p["cursor"].as_str().map(str::to_string))
                        .unwrap_or_default();
                    raw(json!({"resources": [], "nextCursor": format!("{cursor}+")}))
                }
                // A resultType no request of this client asked for.
                "tools/call" => raw(json!({"resultType": "task", "content": []})),
                _ => std::future::pending().await,
            }
        };
        answer.map(JsonText::from)
    }
}

#[tokio::test(start_paused = true)]
async fn misbehaving_servers_give_typed_errors() {
    let config = ClientConfig {
        request_timeout: Duration::from_secs(5),
        probe_timeout: Duration::from_secs(1),
        max_pages: 10,
        ..ClientConfig::default()
    };
    // A server that never answers `server/discover`.
    let error = connect_service(Misbehaving, Protocol::Stateless, (), config.clone())
        .await
        .expect_err("silence");
    assert!(
        matches!(&error, ClientError::Timeout { method, .. } if method == "server/discover"),
        "{error}"
    );
    // Auto gives up on discovery after the probe timeout and initializes.
    let client = connect_service(Misbehaving, Protocol::Auto, (), config)
        .await
        .expect("falls back");
    assert_eq!(client.era(), Era::Stateful("2025-11-25"));
    let error = client.list_tools(None).await.expect_err("garbage");
    assert!(
        matches!(&error, ClientError::Protocol { method, .. } if method == "tools/list"),
        "{error}"
    );
    let error = client.list_all_prompts().await.expect_err("a cursor loop");
    assert!(
        matches!(&error, ClientError::Protocol { message, .. } if message.contains("twice")),
        "{error}"
    );
    let error = client.list_all_resources().await.expect_err("endless pages");
    assert!(
        matches!(&error, ClientError::Protocol { message, .. } if message.contains("10 pages")),
        "{error}"
    );
    let error = client.call_tool("x", json!({})).await.expect_err("wrong resultType");
    assert!(
        matches!(&error, ClientError::Protocol { message, .. } if message.contains("task")),
        "{error}"
    );
    let error = client.ping().await.expect_err("never answers");
    assert!(matches!(&error, ClientError::Timeout { .. }), "{error}");
    // A call in flight when the client closes fails at once.
    let waiting = tokio::spawn({
        let client = client.clone();
        async move { client.ping().await }
    });
    tokio::task::yield_now().await;
    client.close().await.expect("close");
    let error = waiting.await.expect("task").expect_err("closed");
    assert!(matches!(error, ClientError::Closed), "{error}");
}

#[tokio::test]
async fn a_notification_flood_keeps_memory_bounded() {
    let server = test_server(Arc::default());
    let config = ClientConfig {
        notification_capacity: 8,
        ..ClientConfig::default()
    };
    let client = connect_service(server.connection(), Protocol::Stateless, (), config)
        .await
        .expect("connects");
    let mut notes = client.notifications();
    let options = RequestOptions::new().progress(client.progress_token());
    // Nobody reads while 2000 notifications arrive: the call still completes.
    let done = client
        .call_tool_with("progress", json!({"n": 2000}), &options)
        .await
        .expect("not held back by the unread notifications");
    assert_eq!(text_of(&done), "done");
    let mut kept = Vec::new();
    while let Some(n) = notes.try_recv() {
        kept.push(n);
    }
    assert_eq!(kept.len(), 8, "the ring keeps the newest");
    assert_eq!(notes.missed(), 2000 - 8);
    match kept.last() {
        Some(Notification::Progress(p)) => assert_eq!(p.progress.as_f64(), Some(2000.0)),
        other => panic!("expected the last progress, got {other:?}"),
    }
}

/// The client's end of an in-process connection that keeps a copy of every frame the client
/// sends.
struct Tapped {
    client: portico_core::Peer<portico_core::client::ClientService>,
    server: portico_core::Peer<Connection>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Tapped {
    fn connect(
        server: &Server,
        service: portico_core::client::ClientService,
        sent: Arc<std::sync::Mutex<Vec<String>>>,
    ) -> Self {
        Self::recording(server, service, move |out| {
            sent.lock().expect("lock").push(out.text.clone());
        })
    }

    /// Shows `record` every message the client sends, before the server gets it.
    fn recording(
        server: &Server,
        service: portico_core::client::ClientService,
        record: impl Fn(&portico_core::Outbound) + Send + 'static,
    ) -> Self {
        let (client_tx, mut client_rx) = tokio::sync::mpsc::channel::<portico_core::Outbound>(64);
        let (server_tx, mut server_rx) = tokio::sync::mpsc::channel::<portico_core::Outbound>(64);
        // As the HTTP client's: requests come with their parts ([`PeerConfig::requests_beside`]).
        let config = PeerConfig {
            requests_beside: true,
            ..PeerConfig::default()
        };
        let client = portico_core::Peer::new(service, config, client_tx);
        let server = portico_core::Peer::new(server.connection(), PeerConfig::default(), server_tx);
        let to_server = server.clone();
        let to_client = client.clone();
        let tasks = vec![
            tokio::spawn(async move {
                while let Some(out) = client_rx.recv().await {
                    record(&out);
                    to_server.receive(&out.text).await;
                }
            }),
            tokio::spawn(async move {
                while let Some(out) = server_rx.recv().await {
                    to_client.receive(&out.text).await;
                }
            }),
        ];
        Self { client, server, tasks }
    }
}

impl Drop for Tapped {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        self.client.close();
        self.server.close();
    }
}

impl portico_core::client::ClientTransport for Tapped {
    fn handle(&self) -> portico_core::PeerHandle {
        self.client.handle().clone()
    }

    fn close(self: Box<Self>) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send>> {
        drop(self);
        Box::pin(async { Ok(()) })
    }
}

/// Validates `value` as the definition `def` of `revision`'s official schema.
fn validate(revision: &str, def: &str, value: &Value) {
    let schema = crate::schema(revision);
    let defs = if schema.get("$defs").is_some() {
        "$defs"
    } else {
        "definitions"
    };
    assert!(schema[defs].get(def).is_some(), "{revision} has no {def}");
    let wrapper = json!({"$schema": schema["$schema"], "$ref": format!("#/{defs}/{def}"), defs: schema[defs]});
    let validator = jsonschema::validator_for(&wrapper).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{revision} {def} {value}:\n{}", errors.join("\n"));
}

#[tokio::test]
async fn every_message_the_client_sends_validates_against_its_revision() {
    let server = test_server(Arc::default());
    for (protocol, revision) in [
        (Protocol::Stateless, "2026-07-28"),
        (Protocol::Stateful("2025-11-25"), "2025-11-25"),
    ] {
        let sent = Arc::new(std::sync::Mutex::new(Vec::new()));
        let tap = sent.clone();
        let client = Client::builder(info())
            .handler(Answers)
            .protocol(protocol)
            .connect(|service| {
                let server = server.clone();
                async move { Ok::<_, std::io::Error>(Tapped::connect(&server, service, tap)) }
            })
            .await
            .expect("connects");
        client.set_level(wire::LoggingLevel::Info).await.expect("level");
        client.list_all_tools().await.expect("tools");
        let options = RequestOptions::new().progress(client.progress_token());
        client
            .call_tool_with("progress", json!({"n": 1}), &options)
            .await
            .expect("progress");
        client.call_tool("ask_all", json!({})).await.expect("input");
        client.list_all_resources().await.expect("resources");
        client.list_all_resource_templates().await.expect("templates");
        client.read_resource("test://a").await.expect("read");
        client.list_all_prompts().await.expect("prompts");
        let args = BTreeMap::from([("who".to_string(), "Ada".to_string())]);
        client.get_prompt("hello", args).await.expect("prompt");
        client
            .complete(
                wire::PromptReference::new("hello").into(),
                wire::CompleteRequestParamsArgument::new("who", "a"),
                None,
            )
            .await
            .expect("complete");
        let filter = wire::SubscriptionFilter::new().with_resource_subscriptions(vec!["test://a".into()]);
        client
            .listen(filter)
            .await
            .expect("listen")
            .close()
            .await
            .expect("close");
        if protocol != Protocol::Stateless {
            client.ping().await.expect("ping");
            client.notify_roots_changed().await.expect("roots changed");
        }
        // A request given up on: its cancellation is sent too.
        let _ = client
            .call_tool_with(
                "slow",
                json!({}),
                &RequestOptions::new().timeout(Duration::from_millis(10)),
            )
            .await;
        // The cancellation went out before this request, on the same channel.
        client.list_tools(None).await.expect("tools");
        client.close().await.expect("close");

        let sent = sent.lock().expect("lock").clone();
        let mut methods = std::collections::BTreeSet::new();
        for text in &sent {
            let message: Value = serde_json::from_str(text).expect("JSON");
            let def = match message["method"].as_str() {
                None => {
                    // An answer to the server's request (sessions).
                    validate(revision, "JSONRPCResponse", &message);
                    validate(revision, "ClientResult", &message["result"]);
                    continue;
                }
                Some(method) => {
                    methods.insert(method.to_string());
                    match method {
                        "initialize" => "InitializeRequest",
                        "notifications/initialized" => "InitializedNotification",
                        "notifications/cancelled" => "CancelledNotification",
                        "notifications/roots/list_changed" => "RootsListChangedNotification",
                        "server/discover" => "DiscoverRequest",
                        "tools/list" => "ListToolsRequest",
                        "tools/call" => "CallToolRequest",
                        "resources/list" => "ListResourcesRequest",
                        "resources/templates/list" => "ListResourceTemplatesRequest",
                        "resources/read" => "ReadResourceRequest",
                        "prompts/list" => "ListPromptsRequest",
                        "prompts/get" => "GetPromptRequest",
                        "completion/complete" => "CompleteRequest",
                        "subscriptions/listen" => "SubscriptionsListenRequest",
                        "resources/subscribe" => "SubscribeRequest",
                        "resources/unsubscribe" => "UnsubscribeRequest",
                        "logging/setLevel" => "SetLevelRequest",
                        "ping" => "PingRequest",
                        other => panic!("{revision}: the client sent {other}"),
                    }
                }
            };
            validate(revision, def, &message);
        }
        assert!(methods.contains("notifications/cancelled"), "{revision}: {methods:?}");
        assert!(methods.contains("tools/call"), "{revision}: {methods:?}");
    }
}

/// A server with one tool that asks for a form whose fields have defaults, and says what it got.
fn defaults_server() -> Server {
    Server::builder("defaults-it", "1.0.0")
        .tool(tool("profile", "Asks for a profile", |cx, _a: Nothing| async move {
            let params = serde_json::from_value(json!({
                "mode": "form",
                "message": "Your profile?",
                "requestedSchema": {"type": "object", "properties": {
                    "name": {"type": "string", "default": "John Doe"},
                    "age": {"type": "integer", "default": 30},
                    "score": {"type": "number", "default": 95.5},
                    "status": {"type": "string", "enum": ["active", "inactive"], "default": "active"},
                    "verified": {"type": "boolean", "default": true},
                    "nickname": {"type": "string"}
                }}
            }))
            .expect("form params");
            let answer = cx.elicit(params).await.map_err(|e| e.to_string())?;
            Ok::<_, String>(serde_json::to_string(&answer.content).expect("JSON"))
        }))
        .build()
}

#[tokio::test]
async fn an_accepted_form_gets_the_schema_defaults_in_both_eras() {
    let server = defaults_server();
    for protocol in ERAS {
        // `Answers` accepts with {"name": "Ada"}: its own value stays, the rest are defaults, and
        // a field without a default stays out.
        let client = connect(&server, protocol, Answers).await;
        let result = client.call_tool("profile", json!({})).await.expect("profile");
        let content: Value = serde_json::from_str(&text_of(&result)).expect("JSON");
        assert_eq!(
            content,
            json!({"name": "Ada", "age": 30, "score": 95.5, "status": "active", "verified": true}),
            "{protocol:?}"
        );
        let config = ClientConfig {
            elicitation_defaults: false,
            ..ClientConfig::default()
        };
        let client = connect_service(server.connection(), protocol, Answers, config)
            .await
            .expect("connects");
        let result = client.call_tool("profile", json!({})).await.expect("profile");
        let content: Value = serde_json::from_str(&text_of(&result)).expect("JSON");
        assert_eq!(content, json!({"name": "Ada"}), "{protocol:?}");
    }
}

/// Refuses `server/discover` with `-32022` listing 2026-07-28 the first `refusals` times.
struct RefusesDiscover {
    inner: Connection,
    refusals: usize,
    seen: Arc<AtomicUsize>,
}

impl Service for RefusesDiscover {
    async fn request(
        &self,
        cx: RequestContext,
        method: String,
        params: Option<Box<RawValue>>,
    ) -> Result<JsonText, ErrorObject> {
        if method == "server/discover" && self.seen.fetch_add(1, Ordering::SeqCst) < self.refusals {
            return Err(ErrorObject::new(-32022, "Unsupported protocol version")
                .with_data(json!({"supported": ["2026-07-28"], "requested": "2026-07-28"})));
        }
        self.inner.request(cx, method, params).await
    }

    async fn notification(&self, peer: portico_core::PeerHandle, method: String, params: Option<Box<RawValue>>) {
        self.inner.notification(peer, method, params).await;
    }
}

#[tokio::test]
async fn a_refused_discover_that_lists_2026_is_retried_once() {
    let server = test_server(Arc::default());
    // Refused once: the retry connects.
    let seen = Arc::new(AtomicUsize::new(0));
    let service = RefusesDiscover {
        inner: server.connection(),
        refusals: 1,
        seen: seen.clone(),
    };
    let client = connect_service(service, Protocol::Stateless, (), ClientConfig::default())
        .await
        .expect("the retry connects");
    assert_eq!(client.era(), Era::Stateless);
    assert_eq!(seen.load(Ordering::SeqCst), 2);
    // Refused every time: two attempts, then the refusal is the error.
    let seen = Arc::new(AtomicUsize::new(0));
    let service = RefusesDiscover {
        inner: server.connection(),
        refusals: usize::MAX,
        seen: seen.clone(),
    };
    let error = connect_service(service, Protocol::Stateless, (), ClientConfig::default())
        .await
        .expect_err("refused twice");
    assert!(
        matches!(&error, ClientError::UnsupportedVersion { supported, .. } if supported == &["2026-07-28"]),
        "{error}"
    );
    assert_eq!(seen.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn what_a_request_carries_for_the_transport_reaches_it_with_that_request_alone() {
    struct Marker(&'static str);
    /// Each message's method and the marker it carried.
    type Seen = Vec<(String, Option<&'static str>)>;
    let server = test_server(Arc::default());
    let seen: Arc<std::sync::Mutex<Seen>> = Arc::default();
    let record = seen.clone();
    let client = Client::builder(info())
        .protocol(Protocol::Stateless)
        .connect(|service| {
            let server = server.clone();
            async move {
                Ok::<_, std::io::Error>(Tapped::recording(&server, service, move |out| {
                    let method = serde_json::from_str::<Value>(&out.text)
                        .ok()
                        .and_then(|v| v["method"].as_str().map(str::to_string));
                    let marker = out.extensions.get::<Marker>().map(|m| m.0);
                    record.lock().expect("lock").push((method.unwrap_or_default(), marker));
                }))
            }
        })
        .await
        .expect("connects");
    let options = RequestOptions::new().extension(Marker("caller-a"));
    client
        .call_tool_with("add", json!({"a": 1, "b": 2}), &options)
        .await
        .expect("a call");
    client.call_tool("add", json!({"a": 3, "b": 4})).await.expect("another");
    let seen = seen.lock().expect("lock").clone();
    let calls: Vec<_> = seen.iter().filter(|(method, _)| method == "tools/call").collect();
    assert_eq!(calls.len(), 2, "{:?}", seen.iter().map(|(m, _)| m).collect::<Vec<_>>());
    assert_eq!(calls[0].1, Some("caller-a"));
    assert_eq!(calls[1].1, None);
    assert!(
        seen.iter()
            .filter(|(method, _)| method != "tools/call")
            .all(|(_, marker)| marker.is_none())
    );
}

#[tokio::test]
async fn a_request_reaches_the_transport_with_what_it_holds_and_what_its_headers_mirror() {
    use portico_core::mirror::Mirror;
    /// Each message as the transport got it: its text decoded, the request the peer handed
    /// beside it (id, method, params) and the mirror the client attached.
    type Seen = Vec<(Value, Option<(Value, String, Value)>, Option<Mirror>)>;
    async fn run(protocol: Protocol, calls: impl AsyncFnOnce(&Client)) -> Seen {
        let server = test_server(Arc::default());
        let seen: Arc<std::sync::Mutex<Seen>> = Arc::default();
        let record = seen.clone();
        let client = Client::builder(info())
            .protocol(protocol)
            .connect(|service| {
                let server = server.clone();
                async move {
                    Ok::<_, std::io::Error>(Tapped::recording(&server, service, move |out| {
                        let text = serde_json::from_str::<Value>(&out.text).expect("JSON");
                        let request = out.request.as_ref().map(|r| {
                            let params = r
                                .params
                                .as_ref()
                                .map_or(Value::Null, |p| serde_json::from_str(p.get()).expect("params"));
                            (serde_json::to_value(&r.id).expect("id"), r.method.clone(), params)
                        });
                        let mirror = out.extensions.get::<Mirror>().cloned();
                        record.lock().expect("lock").push((text, request, mirror));
                    }))
                }
            })
            .await
            .expect("connects");
        calls(&client).await;
        seen.lock().expect("lock").clone()
    }
    let seen = run(Protocol::Stateless, async |client| {
        client.call_tool("add", json!({"a": 1, "b": 2})).await.expect("a call");
        client.list_tools(None).await.expect("a list");
        // A version the caller set itself: the client is not sure of it, and attaches none.
        let own = RequestOptions::new().meta("io.modelcontextprotocol/protocolVersion", json!("2026-07-28"));
        client
            .call_tool_with("add", json!({"a": 3, "b": 4}), &own)
            .await
            .expect("a call with its own version");
    })
    .await;
    let requests: Vec<_> = seen.iter().filter(|(text, ..)| text.get("id").is_some()).collect();
    assert!(requests.len() >= 3, "{seen:?}");
    for (text, request, mirror) in &requests {
        // The request beside the text is the text's.
        let (id, method, params) = request.as_ref().expect("a request carries itself");
        assert_eq!(
            (id, method.as_str(), params),
            (&text["id"], text["method"].as_str().expect("method"), &text["params"])
        );
        let version = &text["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"];
        assert_eq!(version, "2026-07-28");
        let Some(mirror) = mirror else { continue };
        // What the headers mirror is what the body says.
        assert_eq!(mirror.version, *version);
        let named = portico_core::mirror::name_member(method).and_then(|m| text["params"][m].as_str());
        assert_eq!(mirror.name.as_deref(), named, "{text}");
    }
    let mirrored: Vec<_> = requests
        .iter()
        .map(|(text, _, mirror)| {
            (
                text["method"].as_str().unwrap_or_default(),
                mirror.as_ref().map(|m| m.name.clone()),
            )
        })
        .collect();
    assert!(
        mirrored.contains(&("tools/call", Some(Some("add".into())))),
        "{mirrored:?}"
    );
    assert!(mirrored.contains(&("tools/list", Some(None))), "{mirrored:?}");
    assert!(
        mirrored.contains(&("tools/call", None)),
        "the call with its own version: {mirrored:?}"
    );

    // A session's requests mirror nothing from their body; notifications carry no request.
    let seen = run(Protocol::Stateful("2025-11-25"), async |client| {
        client.call_tool("add", json!({"a": 1, "b": 2})).await.expect("a call");
    })
    .await;
    for (text, request, mirror) in &seen {
        assert!(mirror.is_none(), "{text}");
        assert_eq!(
            request.is_some(),
            text.get("id").is_some() && text.get("method").is_some(),
            "{text}"
        );
    }
    assert!(
        seen.iter()
            .any(|(text, ..)| text["method"] == "notifications/initialized")
    );
}
