//! The tasks extension (SEP-2663) of the server framework, driven with raw JSON-RPC as a
//! 2026-07-28 client: task creation, polling, input through `tasks/update`, cancellation,
//! failures, TTL expiry, and the errors of clients that did not declare the extension.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use portico_core::server::input::InputError;
use portico_core::server::tasks::{
    InMemoryTaskStore, TaskConfig, TaskRecord, TaskStart, TaskStatus, TaskStore, TaskSupport,
};
use portico_core::server::{Context, Server, tool};
use portico_core::{Outbound, Peer, PeerConfig};
use portico_protocol::v2026_07_28 as wire;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

use crate::server::validate;

const EXT: &str = "io.modelcontextprotocol/tasks";

#[derive(Deserialize, schemars::JsonSchema)]
struct Nothing {}

/// Sets its flag when dropped: tells that a handler's future was dropped.
struct Dropped(Arc<AtomicBool>);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn form(message: &str, member: &str) -> wire::ElicitRequestParams {
    let schema = json!({"type": "object", "properties": {member: {"type": "string"}}, "required": [member]});
    wire::ElicitRequestFormParams::new(message, serde_json::from_value(schema).expect("schema")).into()
}

fn answered(result: &Result<wire::ElicitResult, InputError>, member: &str) -> String {
    match result {
        Ok(r) => serde_json::to_value(&r.content).expect("JSON")[member]
            .as_str()
            .unwrap_or("?")
            .to_string(),
        Err(e) => format!("error: {e}"),
    }
}

/// What the test tools share with the tests.
#[derive(Default)]
struct Probes {
    /// Releases `gated`.
    gate: Notify,
    /// Set when `forever`'s future is dropped.
    forever_dropped: Arc<AtomicBool>,
}

fn server(probes: &Arc<Probes>, config: Option<TaskConfig>) -> Server {
    let (p1, p2) = (probes.clone(), probes.clone());
    let builder = Server::builder("tasks-test", "1.0.0");
    let builder = match config {
        Some(config) => builder.tasks_with(InMemoryTaskStore::default(), config),
        None => builder,
    };
    builder
        .tool(tool("plain", "Never a task", |_cx, _a: Nothing| async move { "plain" }))
        .tool(
            tool("gated", "Finishes when the test says", move |_cx, _a: Nothing| {
                let p = p1.clone();
                async move {
                    p.gate.notified().await;
                    "released"
                }
            })
            .with_task_support(TaskSupport::Optional),
        )
        .tool(
            tool("forever", "Runs until cancelled", move |cx: Context, _a: Nothing| {
                let flag = p2.forever_dropped.clone();
                async move {
                    let _dropped = Dropped(flag);
                    cx.cancelled().await;
                    std::future::pending::<()>().await;
                    "unreachable"
                }
            })
            .with_task_support(TaskSupport::Optional),
        )
        .tool(
            tool("tool_error", "A tool error", |_cx, _a: Nothing| async move {
                Err::<String, _>("the disk is full")
            })
            .with_task_support(TaskSupport::Required),
        )
        .tool(
            tool("crash", "Panics", |_cx, _a: Nothing| async move {
                if std::hint::black_box(true) {
                    panic!("boom");
                }
                String::new()
            })
            .with_task_support(TaskSupport::Optional),
        )
        .tool(
            tool(
                "two_questions",
                "Asks two questions at once",
                |cx: Context, _a: Nothing| async move {
                    let (a, b) = tokio::join!(cx.elicit(form("First?", "a")), cx.elicit(form("Second?", "b")));
                    format!("a={} b={}", answered(&a, "a"), answered(&b, "b"))
                },
            )
            .with_task_support(TaskSupport::Optional),
        )
        .tool(
            tool(
                "ask_then_task",
                "Asks a name in rounds, then becomes a task",
                |cx: Context, _a: Nothing| async move {
                    let name = cx.elicit(form("Name?", "name")).await;
                    let name = answered(&name, "name");
                    if name.starts_with("error") {
                        return Err(name);
                    }
                    let started = cx.start_task().await;
                    Ok(format!(
                        "hello {name}; task={started} id={}",
                        cx.task_id().unwrap_or("-")
                    ))
                },
            )
            .with_task_support(TaskSupport::Required)
            .with_task_start(TaskStart::Handler),
        )
        .build()
}

/// A 2026-07-28 client of one connection.
struct Client {
    peer: Peer<portico_core::server::Connection>,
    out: mpsc::Receiver<Outbound>,
    next: i64,
    capabilities: Value,
}

impl Client {
    fn new(server: &Server, capabilities: Value) -> Self {
        let (tx, out) = mpsc::channel(16);
        Self {
            peer: Peer::new(server.connection(), PeerConfig::default(), tx),
            out,
            next: 0,
            capabilities,
        }
    }

    /// A client declaring the tasks extension (and elicitation).
    fn declaring(server: &Server) -> Self {
        Self::new(server, json!({"elicitation": {}, "extensions": {EXT: {}}}))
    }

    async fn send(&mut self, method: &str, mut params: Value) -> Value {
        self.next += 1;
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": self.capabilities,
        });
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

    async fn result(&mut self, method: &str, params: Value) -> Value {
        let v = self.send(method, params).await;
        assert!(v.get("result").is_some(), "{method}: {v}");
        v["result"].clone()
    }

    async fn error_code(&mut self, method: &str, params: Value) -> i64 {
        let v = self.send(method, params).await;
        v["error"]["code"]
            .as_i64()
            .unwrap_or_else(|| panic!("{method}: expected an error, got {v}"))
    }

    /// Calls `name` and returns the task handle, which must be one.
    async fn create(&mut self, name: &str) -> String {
        let r = self.result("tools/call", json!({"name": name, "arguments": {}})).await;
        assert_eq!(r["resultType"], "task", "{r}");
        r["taskId"].as_str().expect("taskId").to_string()
    }

    async fn get(&mut self, task: &str) -> Value {
        let r = self.result("tasks/get", json!({"taskId": task})).await;
        assert_eq!(r["resultType"], "complete", "{r}");
        assert_eq!(r["taskId"], task);
        r
    }

    /// Polls `tasks/get` until `done` holds (within 5 s).
    async fn until(&mut self, task: &str, done: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..500 {
            let r = self.get(task).await;
            if done(&r) {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("task {task} never reached the awaited state");
    }
}

fn is(status: &'static str) -> impl Fn(&Value) -> bool {
    move |r| r["status"] == status
}

/// Task messages carry no member of the other shapes.
fn assert_ack(r: &Value) {
    assert_eq!(r["resultType"], "complete", "{r}");
    for member in ["taskId", "status", "result", "error", "inputRequests"] {
        assert!(r.get(member).is_none(), "{member} in the acknowledgement {r}");
    }
}

fn iso8601(v: &Value) -> bool {
    let s = v.as_str().unwrap_or_default();
    s.len() == 24 && s.as_bytes()[10] == b'T' && s.ends_with('Z') && s[..4].bytes().all(|b| b.is_ascii_digit())
}

#[tokio::test]
async fn a_task_runs_on_after_its_handle_and_tasks_get_inlines_the_result() {
    let probes = Arc::new(Probes::default());
    let s = server(&probes, None);
    let mut c = Client::declaring(&s);
    let created = c.result("tools/call", json!({"name": "gated", "arguments": {}})).await;
    assert_eq!(created["resultType"], "task");
    assert_eq!(created["status"], "working");
    assert!(
        iso8601(&created["createdAt"]) && iso8601(&created["lastUpdatedAt"]),
        "{created}"
    );
    assert_eq!(created["ttlMs"], 3_600_000, "the default TTL");
    assert_eq!(created["pollIntervalMs"], 500);
    for absent in [
        "result",
        "error",
        "inputRequests",
        "requestState",
        "ttl",
        "pollInterval",
        "task",
    ] {
        assert!(created.get(absent).is_none(), "{absent} in {created}");
    }
    assert!(created["_meta"]["io.modelcontextprotocol/serverInfo"].is_object());
    let task = created["taskId"].as_str().expect("id").to_string();
    assert_eq!(task.len(), 32);

    // Durable at once, and still working: the handler waits for the gate.
    let working = c.get(&task).await;
    assert_eq!(working["status"], "working");
    assert!(working.get("result").is_none(), "{working}");

    probes.gate.notify_one();
    let done = c.until(&task, is("completed")).await;
    assert_eq!(done["result"]["content"][0]["text"], "released");
    assert!(
        done["result"]["_meta"]
            .get("io.modelcontextprotocol/related-task")
            .is_none()
    );
    // A terminal task stays readable until its TTL.
    assert_eq!(c.get(&task).await["status"], "completed");

    // A tool that never makes a task answers as ever.
    let plain = c.result("tools/call", json!({"name": "plain", "arguments": {}})).await;
    assert_eq!(plain["resultType"], "complete");
    assert_eq!(plain["content"][0]["text"], "plain");
    assert!(plain.get("taskId").is_none());
}

#[tokio::test]
async fn tool_errors_complete_and_protocol_errors_fail() {
    let s = server(&Arc::new(Probes::default()), None);
    let mut c = Client::declaring(&s);
    let task = c.create("tool_error").await;
    let done = c.until(&task, |r| r["status"] != "working").await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["isError"], true);
    assert_eq!(done["result"]["content"][0]["text"], "the disk is full");

    let task = c.create("crash").await;
    let failed = c.until(&task, |r| r["status"] != "working").await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error"]["code"], -32603);
    assert!(
        failed["error"]["message"].as_str().is_some_and(|m| m.contains("boom")),
        "{failed}"
    );
    assert_eq!(failed["statusMessage"], failed["error"]["message"]);
    assert!(failed.get("result").is_none());
}

#[tokio::test]
async fn cancel_drops_the_handler_and_is_idempotent() {
    let probes = Arc::new(Probes::default());
    let s = server(&probes, None);
    let mut c = Client::declaring(&s);
    let task = c.create("forever").await;
    assert_eq!(c.get(&task).await["status"], "working");
    assert!(!probes.forever_dropped.load(Ordering::SeqCst));

    let ack = c.result("tasks/cancel", json!({"taskId": task})).await;
    assert_ack(&ack);
    let cancelled = c.get(&task).await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    for _ in 0..100 {
        if probes.forever_dropped.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(probes.forever_dropped.load(Ordering::SeqCst), "the handler was dropped");

    // Cancelling a terminal task changes nothing and is acknowledged alike.
    let again = c.result("tasks/cancel", json!({"taskId": task})).await;
    assert_ack(&again);
    let done = c.create("tool_error").await;
    c.until(&done, is("completed")).await;
    assert_ack(&c.result("tasks/cancel", json!({"taskId": done})).await);
    assert_eq!(c.get(&done).await["status"], "completed");
}

#[tokio::test]
async fn questions_park_the_task_until_tasks_update_answers_them() {
    let s = server(&Arc::new(Probes::default()), None);
    let mut c = Client::declaring(&s);
    let task = c.create("two_questions").await;
    let parked = c
        .until(&task, |r| r["inputRequests"].as_object().is_some_and(|q| q.len() == 2))
        .await;
    assert_eq!(parked["status"], "input_required");
    let keys: Vec<String> = parked["inputRequests"]
        .as_object()
        .expect("map")
        .keys()
        .cloned()
        .collect();
    assert_eq!(keys, ["elicit-0", "elicit-1"]);
    assert_eq!(parked["inputRequests"]["elicit-0"]["method"], "elicitation/create");
    assert_eq!(parked["inputRequests"]["elicit-1"]["params"]["message"], "Second?");
    assert!(parked.get("requestState").is_none());

    // Keys that are not outstanding are ignored.
    let ack = c
        .result(
            "tasks/update",
            json!({"taskId": task, "inputResponses": {"nope": {"action": "accept"}}}),
        )
        .await;
    assert_ack(&ack);
    assert_eq!(
        c.get(&task).await["inputRequests"].as_object().map(|q| q.len()),
        Some(2)
    );

    // A partial answer leaves only the other question.
    let first = json!({"elicit-0": {"action": "accept", "content": {"a": "one"}}});
    assert_ack(
        &c.result("tasks/update", json!({"taskId": task, "inputResponses": first}))
            .await,
    );
    let partial = c.get(&task).await;
    assert_eq!(partial["status"], "input_required", "{partial}");
    assert_eq!(
        partial["inputRequests"]
            .as_object()
            .expect("map")
            .keys()
            .collect::<Vec<_>>(),
        ["elicit-1"]
    );

    // Answering a key again is ignored too.
    assert_ack(
        &c.result("tasks/update", json!({"taskId": task, "inputResponses": first}))
            .await,
    );
    let second = json!({"elicit-1": {"action": "accept", "content": {"b": "two"}}});
    assert_ack(
        &c.result("tasks/update", json!({"taskId": task, "inputResponses": second}))
            .await,
    );
    let done = c.until(&task, is("completed")).await;
    assert_eq!(done["result"]["content"][0]["text"], "a=one b=two");
}

#[tokio::test]
async fn input_required_rounds_come_before_a_task_the_handler_starts() {
    let s = server(&Arc::new(Probes::default()), None);
    let mut c = Client::declaring(&s);
    let call = json!({"name": "ask_then_task", "arguments": {}});
    let round1 = c.result("tools/call", call.clone()).await;
    assert_eq!(round1["resultType"], "input_required", "{round1}");
    assert!(round1.get("taskId").is_none());
    let state = round1["requestState"].clone();
    assert!(state.is_string());

    let mut retry = call;
    retry["inputResponses"] = json!({"elicit-0": {"action": "accept", "content": {"name": "Alice"}}});
    retry["requestState"] = state;
    let created = c.result("tools/call", retry).await;
    assert_eq!(created["resultType"], "task", "{created}");
    assert!(created.get("requestState").is_none() && created.get("inputRequests").is_none());
    let task = created["taskId"].as_str().expect("id").to_string();
    let done = c.until(&task, is("completed")).await;
    assert_eq!(
        done["result"]["content"][0]["text"],
        format!("hello Alice; task=true id={task}")
    );
}

#[tokio::test]
async fn tasks_are_forgotten_after_their_ttl() {
    let config = TaskConfig {
        ttl: Some(Duration::from_millis(150)),
        poll_interval: None,
    };
    let probes = Arc::new(Probes::default());
    let s = server(&probes, Some(config));
    let mut c = Client::declaring(&s);
    let created = c
        .result("tools/call", json!({"name": "forever", "arguments": {}}))
        .await;
    assert_eq!(created["ttlMs"], 150);
    assert!(created.get("pollIntervalMs").is_none());
    let task = created["taskId"].as_str().expect("id").to_string();
    assert_eq!(c.get(&task).await["status"], "working");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(c.error_code("tasks/get", json!({"taskId": task})).await, -32602);
    assert!(
        probes.forever_dropped.load(Ordering::SeqCst),
        "a handler outliving its TTL is dropped"
    );
}

#[tokio::test]
async fn the_in_memory_store_keeps_its_rules() {
    let store = InMemoryTaskStore::with_capacity(2);
    let ttl = Some(Duration::from_secs(60));
    store.create(TaskRecord::new("a", ttl, None)).await.expect("created");
    assert!(
        store.create(TaskRecord::new("a", ttl, None)).await.is_err(),
        "ids are unique"
    );
    store.create(TaskRecord::new("b", ttl, None)).await.expect("created");
    assert!(
        store.create(TaskRecord::new("c", ttl, None)).await.is_err(),
        "full of live tasks"
    );

    // A terminal task never changes, and makes room when the store is full.
    let mut a = store.get("a").await.expect("ok").expect("a");
    a.status = TaskStatus::Completed;
    assert!(store.update(a.clone()).await.expect("ok"));
    a.status = TaskStatus::Working;
    assert!(!store.update(a).await.expect("ok"), "terminal is final");
    assert_eq!(
        store.cancel("a").await.expect("ok").expect("a").status,
        TaskStatus::Completed
    );
    assert_eq!(
        store.cancel("b").await.expect("ok").expect("b").status,
        TaskStatus::Cancelled
    );
    store.create(TaskRecord::new("c", ttl, None)).await.expect("room made");
    let ids: Vec<String> = store.list().await.expect("ok").into_iter().map(|t| t.task_id).collect();
    assert_eq!(ids.len(), 2);
    assert!(store.get("unknown").await.expect("ok").is_none());

    // Expired tasks are never returned, and are reaped.
    let short = InMemoryTaskStore::default();
    short
        .create(TaskRecord::new("x", Some(Duration::from_millis(20)), None))
        .await
        .expect("created");
    tokio::time::sleep(Duration::from_millis(40)).await;
    assert!(short.get("x").await.expect("ok").is_none());
    assert!(short.list().await.expect("ok").is_empty());
    assert!(short.is_empty());
}

#[tokio::test]
async fn clients_without_the_extension_get_no_tasks() {
    let probes = Arc::new(Probes::default());
    let s = server(&probes, None);
    let mut c = Client::new(&s, json!({"elicitation": {}}));
    for method in ["tasks/get", "tasks/update", "tasks/cancel"] {
        let v = c.send(method, json!({"taskId": "x", "inputResponses": {}})).await;
        assert_eq!(v["error"]["code"], -32021, "{v}");
        assert_eq!(
            v["error"]["data"]["requiredCapabilities"]["extensions"],
            json!({EXT: {}})
        );
    }
    // A required task is refused before the handler runs; an optional one runs synchronously.
    let v = c
        .send("tools/call", json!({"name": "tool_error", "arguments": {}}))
        .await;
    assert_eq!(v["error"]["code"], -32021, "{v}");
    assert_eq!(v["error"]["data"]["requiredCapabilities"]["extensions"][EXT], json!({}));
    probes.gate.notify_one();
    let sync = c.result("tools/call", json!({"name": "gated", "arguments": {}})).await;
    assert_eq!(sync["resultType"], "complete");
    assert_eq!(sync["content"][0]["text"], "released");

    // The extension declared on one request only: that request gets a task.
    let mut c = Client::new(&s, json!({"extensions": {EXT: {}}}));
    let task = c.create("forever").await;
    assert_ack(&c.result("tasks/cancel", json!({"taskId": task})).await);
}

#[tokio::test]
async fn unknown_tasks_and_removed_methods_are_protocol_errors() {
    let s = server(&Arc::new(Probes::default()), None);
    let mut c = Client::declaring(&s);
    for method in ["tasks/get", "tasks/update", "tasks/cancel"] {
        let code = c
            .error_code(method, json!({"taskId": "nonexistent", "inputResponses": {}}))
            .await;
        assert_eq!(code, -32602, "{method}");
        assert_eq!(c.error_code(method, json!({})).await, -32602, "{method} without taskId");
    }
    for removed in ["tasks/result", "tasks/list"] {
        assert_eq!(c.error_code(removed, json!({"taskId": "x"})).await, -32601, "{removed}");
    }
    // The legacy `task` param neither fails nor makes a task.
    let r = c
        .result(
            "tools/call",
            json!({"name": "plain", "arguments": {}, "task": {"ttl": 1000}}),
        )
        .await;
    assert_eq!(r["resultType"], "complete");

    // A server without task-capable tools has no tasks at all.
    let bare = Server::builder("bare", "1")
        .tool(tool("plain", "p", |_cx, _a: Nothing| async move { "p" }))
        .build();
    assert!(bare.capabilities().extensions.is_none());
    let mut c = Client::declaring(&bare);
    assert_eq!(c.error_code("tasks/get", json!({"taskId": "x"})).await, -32601);
}

/// A session client of one connection, at the revision it opens with: requests are sent
/// without waiting, and what the server sends is read in order (its answers, and its requests
/// to the client, which the test answers).
struct Session {
    peer: Peer<portico_core::server::Connection>,
    out: mpsc::Receiver<Outbound>,
    next: i64,
}

impl Session {
    /// A session at `revision`, its `initialize` answer.
    async fn open(server: &Server, revision: &str) -> (Self, Value) {
        let (tx, out) = mpsc::channel(16);
        let mut session = Self {
            peer: Peer::new(server.connection(), PeerConfig::default(), tx),
            out,
            next: 0,
        };
        let capabilities = json!({"elicitation": {}, "extensions": {EXT: {}}});
        let init = session
            .call(
                "initialize",
                json!({"protocolVersion": revision, "capabilities": capabilities, "clientInfo": {"name": "t", "version": "1"}}),
            )
            .await;
        (session, init)
    }

    /// Sends a request; its id.
    async fn send(&mut self, method: &str, params: Value) -> i64 {
        self.next += 1;
        let frame = json!({"jsonrpc": "2.0", "id": self.next, "method": method, "params": params});
        self.peer.receive(&frame.to_string()).await;
        self.next
    }

    /// The next message the server sends, and the request it belongs to.
    async fn next(&mut self) -> (Value, Option<String>) {
        let message = tokio::time::timeout(Duration::from_secs(10), self.out.recv())
            .await
            .expect("a message")
            .expect("open");
        let related = message.related.map(|id| id.to_string());
        (serde_json::from_str(&message.text).expect("JSON"), related)
    }

    /// Sends a request and returns the server's answer, the whole response.
    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.send(method, params).await;
        let (answer, _) = self.next().await;
        assert_eq!(answer["id"], id, "{method}: {answer}");
        answer
    }

    /// Answers the server's request `request` with `result`.
    async fn answer(&mut self, request: &Value, result: Value) {
        let frame = json!({"jsonrpc": "2.0", "id": request["id"], "result": result});
        self.peer.receive(&frame.to_string()).await;
    }

    /// Polls `tasks/get` until `done` holds (within 5 s).
    async fn until(&mut self, task: &str, done: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..500 {
            let r = self.call("tasks/get", json!({"taskId": task})).await;
            if done(&r["result"]) {
                return r["result"].clone();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("task {task} never reached the awaited state");
    }

    /// Calls `name` as a task; its id.
    async fn create(&mut self, name: &str) -> String {
        let r = self
            .call(
                "tools/call",
                json!({"name": name, "arguments": {}, "task": {"ttl": 60000}}),
            )
            .await;
        r["result"]["task"]["taskId"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: not a task: {r}"))
            .to_string()
    }
}

#[tokio::test]
async fn the_extension_is_advertised_and_2025_11_25_sessions_get_that_revisions_tasks() {
    let probes = Arc::new(Probes::default());
    let s = server(&probes, None);
    let caps = serde_json::to_value(s.capabilities()).expect("JSON");
    assert_eq!(caps["extensions"], json!({EXT: {}}));
    assert!(
        caps.get("tasks").is_none(),
        "no 2025-11-25 tasks capability in 2026-07-28"
    );

    // A 2025-11-25 session: the revision's capability, not the extension; `tools/list` says
    // which tools run as tasks.
    let (mut c, init) = Session::open(&s, "2025-11-25").await;
    validate("2025-11-25", "InitializeResult", &init["result"]);
    let caps = &init["result"]["capabilities"];
    assert!(caps.get("extensions").is_none(), "{init}");
    assert_eq!(
        caps["tasks"],
        json!({"cancel": {}, "requests": {"tools": {"call": {}}}}),
        "{init}"
    );
    let tools = c.call("tools/list", json!({})).await;
    validate("2025-11-25", "ListToolsResult", &tools["result"]);
    let support = |name: &str| {
        tools["result"]["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .find(|t| t["name"] == name)
            .map(|t| t["execution"]["taskSupport"].clone())
            .expect("listed")
    };
    assert_eq!(support("gated"), "optional");
    assert_eq!(support("tool_error"), "required");
    assert_eq!(support("plain"), Value::Null, "forbidden is the default, not written");

    // Without `task` an optional tool answers synchronously, as ever.
    probes.gate.notify_one();
    let r = c.call("tools/call", json!({"name": "gated", "arguments": {}})).await;
    assert_eq!(r["result"]["content"][0]["text"], "released", "{r}");
    assert!(r["result"].get("task").is_none());
    for removed in ["tasks/update", "tasks/list"] {
        let r = c.call(removed, json!({"taskId": "x"})).await;
        assert_eq!(r["error"]["code"], -32601, "{removed}: {r}");
    }

    // Older sessions have no tasks at all.
    let (mut old, init) = Session::open(&s, "2025-06-18").await;
    assert!(init["result"]["capabilities"].get("tasks").is_none(), "{init}");
    let tools = old.call("tools/list", json!({})).await;
    assert!(!tools.to_string().contains("execution"), "{tools}");
    let r = old.call("tasks/get", json!({"taskId": "x"})).await;
    assert_eq!(r["error"]["code"], -32601, "{r}");
    probes.gate.notify_one();
    let r = old
        .call("tools/call", json!({"name": "gated", "arguments": {}, "task": {}}))
        .await;
    assert_eq!(r["result"]["content"][0]["text"], "released", "{r}");
}

#[tokio::test]
async fn a_2025_11_25_session_runs_a_task_and_tasks_result_answers_the_call() {
    let probes = Arc::new(Probes::default());
    let s = server(&probes, None);
    let (mut c, _) = Session::open(&s, "2025-11-25").await;
    let r = c
        .call(
            "tools/call",
            json!({"name": "gated", "arguments": {}, "task": {"ttl": 1000}}),
        )
        .await;
    let created = &r["result"];
    validate("2025-11-25", "CreateTaskResult", created);
    let task = created["task"]["taskId"].as_str().expect("a task").to_string();
    assert_eq!(created["task"]["status"], "working");
    assert_eq!(
        created["task"]["ttl"], 3_600_000,
        "the server's TTL, not the requested one"
    );
    assert_eq!(created["task"]["pollInterval"], 500);
    assert!(
        iso8601(&created["task"]["createdAt"]) && iso8601(&created["task"]["lastUpdatedAt"]),
        "{created}"
    );
    for absent in ["resultType", "taskId", "ttlMs", "_meta"] {
        assert!(created.get(absent).is_none(), "{absent} in {created}");
    }
    for absent in ["ttlMs", "pollIntervalMs", "resultType"] {
        assert!(created["task"].get(absent).is_none(), "{absent} in {created}");
    }

    let got = c.call("tasks/get", json!({"taskId": task})).await;
    validate("2025-11-25", "GetTaskResult", &got["result"]);
    assert_eq!(got["result"]["taskId"], task.as_str());
    assert_eq!(got["result"]["status"], "working");
    assert_eq!(got["result"]["ttl"], 3_600_000);
    assert!(got["result"].get("result").is_none(), "{got}");

    // `tasks/result` waits for the end, then answers what the call would have.
    let waiting = c.send("tasks/result", json!({"taskId": task})).await;
    probes.gate.notify_one();
    let (answer, _) = c.next().await;
    assert_eq!(answer["id"], waiting, "{answer}");
    validate("2025-11-25", "CallToolResult", &answer["result"]);
    assert_eq!(answer["result"]["content"][0]["text"], "released", "{answer}");
    assert_eq!(
        answer["result"]["_meta"]["io.modelcontextprotocol/related-task"],
        json!({"taskId": task})
    );
    assert!(answer["result"].get("resultType").is_none(), "{answer}");
    assert_eq!(c.until(&task, is("completed")).await["taskId"], task.as_str());

    // A terminal task cannot be cancelled (the revision's -32602), nor can an unknown one.
    let r = c.call("tasks/cancel", json!({"taskId": task})).await;
    assert_eq!(r["error"]["code"], -32602, "{r}");
    let r = c.call("tasks/get", json!({"taskId": "nonexistent"})).await;
    assert_eq!(r["error"]["code"], -32602, "{r}");

    // A tool error completes; a protocol error fails, and `tasks/result` answers the error.
    let failing = c.create("tool_error").await;
    let r = c.call("tasks/result", json!({"taskId": failing})).await;
    assert_eq!(r["result"]["isError"], true, "{r}");
    let crash = c.create("crash").await;
    let r = c.call("tasks/result", json!({"taskId": crash})).await;
    assert_eq!(r["error"]["code"], -32603, "{r}");
    assert!(
        r["error"]["message"].as_str().is_some_and(|m| m.contains("boom")),
        "{r}"
    );
    assert_eq!(
        c.until(&crash, is("failed")).await["statusMessage"],
        r["error"]["message"]
    );

    // The revision's rules on who asks for a task: a required tool needs `task`, a tool that
    // never runs as one refuses it.
    let r = c
        .call("tools/call", json!({"name": "tool_error", "arguments": {}}))
        .await;
    assert_eq!(r["error"]["code"], -32601, "{r}");
    let r = c
        .call("tools/call", json!({"name": "plain", "arguments": {}, "task": {}}))
        .await;
    assert_eq!(r["error"]["code"], -32601, "{r}");
}

#[tokio::test]
async fn a_2025_11_25_task_is_cancelled_with_the_revisions_answers() {
    let probes = Arc::new(Probes::default());
    let s = server(&probes, None);
    let (mut c, _) = Session::open(&s, "2025-11-25").await;
    let task = c.create("forever").await;
    let r = c.call("tasks/cancel", json!({"taskId": task})).await;
    validate("2025-11-25", "CancelTaskResult", &r["result"]);
    assert_eq!(r["result"]["taskId"], task.as_str(), "{r}");
    assert_eq!(r["result"]["status"], "cancelled", "{r}");
    assert!(r["result"].get("resultType").is_none(), "{r}");
    for _ in 0..100 {
        if probes.forever_dropped.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(probes.forever_dropped.load(Ordering::SeqCst), "the handler was dropped");
    let r = c.call("tasks/result", json!({"taskId": task})).await;
    assert_eq!(r["error"]["code"], -32602, "a cancelled task has no result: {r}");
    let r = c.call("tasks/cancel", json!({"taskId": task})).await;
    assert_eq!(r["error"]["code"], -32602, "{r}");
}

#[tokio::test]
async fn a_2025_11_25_tasks_questions_are_asked_on_tasks_result() {
    let s = server(&Arc::new(Probes::default()), None);
    let (mut c, _) = Session::open(&s, "2025-11-25").await;
    let task = c.create("two_questions").await;
    let parked = c.until(&task, |r| r["status"] == "input_required").await;
    assert!(parked.get("inputRequests").is_none(), "no 2026-07-28 members: {parked}");

    // Both questions come on the `tasks/result` stream, each naming the task and its key.
    let waiting = c.send("tasks/result", json!({"taskId": task})).await;
    let mut questions = Vec::new();
    while questions.len() < 2 {
        let (message, related) = c.next().await;
        assert_eq!(message["method"], "elicitation/create", "{message}");
        assert_eq!(related.as_deref(), Some(waiting.to_string().as_str()), "{message}");
        validate("2025-11-25", "ElicitRequest", &message);
        let meta = &message["params"]["_meta"];
        assert_eq!(meta["io.modelcontextprotocol/related-task"], json!({"taskId": task}));
        questions.push(message);
    }
    questions.sort_by_key(|q| q["params"]["message"].as_str().map(str::to_string));
    let keys: Vec<&Value> = questions
        .iter()
        .map(|q| &q["params"]["_meta"]["io.portico/inputKey"])
        .collect();
    assert_eq!(
        keys,
        [&json!("elicit-0"), &json!("elicit-1")],
        "keys unique in the task"
    );

    // One answer, then the client's error for the other: the handler gets both.
    c.answer(&questions[0], json!({"action": "accept", "content": {"a": "one"}}))
        .await;
    let frame = json!({"jsonrpc": "2.0", "id": questions[1]["id"], "error": {"code": -1, "message": "no thanks"}});
    c.peer.receive(&frame.to_string()).await;
    let (answer, _) = c.next().await;
    assert_eq!(answer["id"], waiting, "{answer}");
    let text = answer["result"]["content"][0]["text"].as_str().expect("text");
    assert!(
        text.starts_with("a=one b=error: ") && text.contains("no thanks"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_2025_11_25_handler_asks_on_the_call_before_its_task_starts() {
    let s = server(&Arc::new(Probes::default()), None);
    let (mut c, _) = Session::open(&s, "2025-11-25").await;
    let call = c
        .send(
            "tools/call",
            json!({"name": "ask_then_task", "arguments": {}, "task": {}}),
        )
        .await;
    let (question, related) = c.next().await;
    assert_eq!(question["method"], "elicitation/create", "{question}");
    assert_eq!(related.as_deref(), Some(call.to_string().as_str()));
    c.answer(&question, json!({"action": "accept", "content": {"name": "Alice"}}))
        .await;
    let (created, _) = c.next().await;
    assert_eq!(created["id"], call, "{created}");
    let task = created["result"]["task"]["taskId"]
        .as_str()
        .expect("a task")
        .to_string();
    let r = c.call("tasks/result", json!({"taskId": task})).await;
    assert_eq!(
        r["result"]["content"][0]["text"],
        format!("hello Alice; task=true id={task}"),
        "{r}"
    );
}

#[tokio::test]
async fn shutdown_stops_running_task_handlers() {
    let probes = Arc::new(Probes::default());
    let s = server(&probes, None);
    let mut c = Client::declaring(&s);
    let task = c.create("forever").await;
    assert_eq!(c.get(&task).await["status"], "working");
    s.shutdown();
    for _ in 0..100 {
        if probes.forever_dropped.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(probes.forever_dropped.load(Ordering::SeqCst), "the handler was stopped");
}
