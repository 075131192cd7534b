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

#[tokio::test]
async fn the_extension_is_advertised_and_sessions_run_tasks_synchronously() {
    let probes = Arc::new(Probes::default());
    let s = server(&probes, None);
    let caps = serde_json::to_value(s.capabilities()).expect("JSON");
    assert_eq!(caps["extensions"], json!({EXT: {}}));
    assert!(caps.get("tasks").is_none(), "no 2025-11-25 tasks capability");

    // A 2025-11-25 session: the optional task tool answers synchronously.
    let (tx, mut out) = mpsc::channel(16);
    let peer = Peer::new(s.connection(), PeerConfig::default(), tx);
    let mut next = 0;
    let mut call = async |method: &str, params: Value| {
        next += 1;
        peer.receive(&json!({"jsonrpc": "2.0", "id": next, "method": method, "params": params}).to_string())
            .await;
        let answer = tokio::time::timeout(Duration::from_secs(10), out.recv())
            .await
            .expect("an answer")
            .expect("open");
        serde_json::from_str::<Value>(&answer.text).expect("JSON")
    };
    let init = call(
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {"extensions": {EXT: {}}}, "clientInfo": {"name": "t", "version": "1"}}),
    )
    .await;
    assert!(init["result"]["capabilities"].get("extensions").is_none(), "{init}");
    probes.gate.notify_one();
    let r = call("tools/call", json!({"name": "gated", "arguments": {}})).await;
    assert_eq!(r["result"]["content"][0]["text"], "released", "{r}");
    assert!(r["result"].get("taskId").is_none());
    let r = call("tasks/get", json!({"taskId": "x"})).await;
    assert_eq!(r["error"]["code"], -32601, "{r}");
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
