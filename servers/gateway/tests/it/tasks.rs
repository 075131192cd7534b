//! The tasks extension through an upstream reached over Streamable HTTP, of either generation:
//! a 2026-07-28 client's calls made tasks, polled to their end, fed answers and cancelled. A
//! 2026-07-28 upstream runs the extension itself; a 2025-11-25 session upstream runs its
//! revision's tasks, which the gateway bridges ([`portico_gateway::tasks`]).

use portico_core::client::{Protocol, RequestOptions};
use serde_json::Value;

use super::*;

/// The extension's name.
const EXT: &str = "io.modelcontextprotocol/tasks";

/// A client that declares the tasks extension, and elicitation for the questions it answers
/// itself (through `tasks/update` and `inputResponses`).
struct TaskClient;

impl ClientHandler for TaskClient {
    fn capabilities(&self) -> wire::ClientCapabilities {
        serde_json::from_value(json!({"elicitation": {"form": {}}, "extensions": {EXT: {}}})).expect("caps")
    }
}

/// The gateway in front of `everything` on its own HTTP listener, spoken to as `protocol`
/// (`stateful`: a 2025-11-25 session; `stateless`: 2026-07-28), as the upstream `e`.
async fn over_http(protocol: &str) -> (HttpEverything, Running) {
    let upstream = HttpEverything::start().await;
    let yaml = format!(
        "upstreams:\n  - {{name: e, url: '{}', protocol: {protocol}}}\n",
        upstream.url
    );
    let gateway = Running::start(&yaml).await;
    (upstream, gateway)
}

/// Sends `method` with `params` as it is and returns the result, whatever its `resultType`.
async fn send(client: &Client, method: &str, params: Value) -> Result<Value, ClientError> {
    let Value::Object(params) = params else {
        panic!("params must be an object")
    };
    within(method, client.forward(method, &params, &RequestOptions::new())).await
}

/// A call of `tool` that must make a task: its id.
async fn create(client: &Client, tool: &str, arguments: Value) -> String {
    let created = send(client, "tools/call", json!({"name": tool, "arguments": arguments}))
        .await
        .expect("tools/call");
    assert_eq!(created["resultType"], "task", "{tool}: {created}");
    assert_eq!(created["status"], "working", "{created}");
    for member in ["createdAt", "lastUpdatedAt", "ttlMs"] {
        assert!(created.get(member).is_some(), "{member} in {created}");
    }
    // Nothing of 2025-11-25's shape leaks to a 2026-07-28 client.
    for absent in ["task", "ttl", "pollInterval", "result", "error", "inputRequests"] {
        assert!(created.get(absent).is_none(), "{absent} in {created}");
    }
    let id = created["taskId"].as_str().expect("taskId").to_string();
    assert!(id.starts_with("e/"), "the id names the upstream: {id}");
    id
}

/// `tasks/get` of `id`.
async fn get(client: &Client, id: &str) -> Value {
    let got = send(client, "tasks/get", json!({"taskId": id}))
        .await
        .expect("tasks/get");
    assert_eq!(got["taskId"], id, "{got}");
    assert_eq!(got["resultType"], "complete", "{got}");
    got
}

/// Polls `tasks/get` of `id` until `done` holds.
async fn until(client: &Client, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    within(&format!("task {id}"), async {
        loop {
            let got = get(client, id).await;
            if done(&got) {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

/// Whether a `tasks/get` answer has ended.
fn ended(got: &Value) -> bool {
    matches!(got["status"].as_str(), Some("completed" | "failed" | "cancelled"))
}

/// An acknowledgement: `resultType: complete` and nothing of a task.
fn assert_ack(ack: &Value) {
    assert_eq!(ack["resultType"], "complete", "{ack}");
    for member in ["taskId", "status", "result", "error", "inputRequests"] {
        assert!(ack.get(member).is_none(), "{member} in {ack}");
    }
}

/// The lifecycle of tasks through the gateway to an upstream of `protocol`.
async fn lifecycle(protocol: &str) {
    let (_upstream, gateway) = over_http(protocol).await;
    let client = gateway.client("/mcp", Protocol::Stateless, TaskClient).await;
    let caps = &client.server().capabilities;
    assert!(
        caps.extensions.as_ref().is_some_and(|e| e.contains_key(EXT)),
        "{protocol}: the extension is declared: {caps:?}"
    );
    let tools = serde_json::to_string(&client.list_all_tools().await.expect("tools")).expect("JSON");
    assert!(
        !tools.contains("execution"),
        "{protocol}: no 2025-11-25 member listed: {tools}"
    );

    // A tool that never runs as a task answers synchronously, the extension declared or not.
    let greeted = send(
        &client,
        "tools/call",
        json!({"name": "e__greet", "arguments": {"name": "Ada"}}),
    )
    .await
    .expect("greet");
    assert_eq!(greeted["resultType"], "complete", "{protocol}: {greeted}");
    assert_eq!(greeted["content"][0]["text"], "Hello, Ada!");

    // A task runs on after its handle, and its result is inlined once it completes.
    let id = create(&client, "e__slow_compute", json!({"seconds": 1, "label": "x"})).await;
    let working = get(&client, &id).await;
    assert!(
        matches!(working["status"].as_str(), Some("working" | "completed")),
        "{working}"
    );
    let done = until(&client, &id, ended).await;
    assert_eq!(done["status"], "completed", "{protocol}: {done}");
    assert_eq!(done["result"]["content"][0]["text"], "Computed x in 1 s", "{done}");
    assert!(
        done["result"]["_meta"]
            .get("io.modelcontextprotocol/related-task")
            .is_none(),
        "{done}"
    );
    assert!(done.get("ttl").is_none() && done.get("error").is_none(), "{done}");

    // A tool error completes the task; a protocol error fails it, with the error inlined.
    let id = create(&client, "e__failing_job", json!({})).await;
    let done = until(&client, &id, ended).await;
    assert_eq!(done["status"], "completed", "{protocol}: {done}");
    assert_eq!(done["result"]["isError"], true, "{done}");
    let id = create(&client, "e__protocol_error_job", json!({})).await;
    let failed = until(&client, &id, ended).await;
    assert_eq!(failed["status"], "failed", "{protocol}: {failed}");
    assert_eq!(failed["error"]["code"], -32603, "{failed}");
    assert!(failed.get("result").is_none(), "{failed}");

    // Cancelled while it runs, acknowledged; cancelling it again is acknowledged alike.
    let id = create(&client, "e__slow_compute", json!({"seconds": 60})).await;
    assert_ack(
        &send(&client, "tasks/cancel", json!({"taskId": id}))
            .await
            .expect("cancel"),
    );
    assert_eq!(get(&client, &id).await["status"], "cancelled");
    assert_ack(
        &send(&client, "tasks/cancel", json!({"taskId": id}))
            .await
            .expect("cancel"),
    );

    // An unknown task is the upstream's -32602.
    let error = send(&client, "tasks/get", json!({"taskId": "e/nonexistent"}))
        .await
        .expect_err("unknown");
    assert_eq!(error.code(), Some(-32602), "{protocol}: {error:?}");

    // A client without the extension: optional tools run synchronously, required ones are
    // refused with the extension's -32021.
    let plain = gateway.client("/mcp", Protocol::Stateless, Answers::default()).await;
    let result = send(
        &plain,
        "tools/call",
        json!({"name": "e__slow_compute", "arguments": {"seconds": 0}}),
    )
    .await
    .expect("a synchronous call");
    assert_eq!(result["resultType"], "complete", "{protocol}: {result}");
    assert_eq!(result["content"][0]["text"], "Computed computation in 0 s");
    let error = rpc_error(
        send(&plain, "tools/call", json!({"name": "e__failing_job", "arguments": {}}))
            .await
            .expect_err("refused"),
    );
    assert_eq!(error.code, -32021, "{protocol}: {error:?}");
    let data = error.data.expect("data");
    assert!(data["requiredCapabilities"]["extensions"].get(EXT).is_some(), "{data}");
    for method in ["tasks/get", "tasks/cancel"] {
        let error = send(&plain, method, json!({"taskId": "e/x"}))
            .await
            .expect_err("refused");
        assert_eq!(error.code(), Some(-32021), "{protocol}: {method}: {error:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_lives_its_life_through_a_2025_11_25_session_upstream() {
    lifecycle("stateful").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_lives_its_life_through_a_2026_07_28_upstream() {
    lifecycle("stateless").await;
}

/// A task's questions through the gateway to an upstream of `protocol`: listed by
/// `tasks/get`, answered one at a time by `tasks/update`; and a call that gathers its answers
/// in `input_required` rounds before it becomes a task.
async fn questions(protocol: &str) {
    let (_upstream, gateway) = over_http(protocol).await;
    let client = gateway.client("/mcp", Protocol::Stateless, TaskClient).await;
    let id = create(&client, "e__multi_input", json!({})).await;
    let parked = until(&client, &id, |got| {
        ended(got) || got["inputRequests"].as_object().is_some_and(|q| q.len() == 2)
    })
    .await;
    assert_eq!(parked["status"], "input_required", "{protocol}: {parked}");
    let asked = parked["inputRequests"].as_object().expect("questions").clone();
    let keys: Vec<&String> = asked.keys().collect();
    assert_eq!(keys, ["elicit-0", "elicit-1"], "{protocol}: the upstream's own keys");
    for question in asked.values() {
        assert_eq!(question["method"], "elicitation/create", "{question}");
        assert!(question["params"]["message"].is_string(), "{question}");
        assert!(question["params"].get("_meta").is_none(), "{question}");
    }
    // Which key asks what is the upstream's business: answer each by its message.
    let answer = |key: &str| {
        let question = &asked[key]["params"]["message"];
        if question == "Which project?" {
            json!({"action": "accept", "content": {"name": "apollo"}})
        } else {
            json!({"action": "accept", "content": {"confirm": true}})
        }
    };

    // A key that is not outstanding is ignored.
    let ack = send(
        &client,
        "tasks/update",
        json!({"taskId": id, "inputResponses": {"nope": {"action": "accept"}}}),
    )
    .await
    .expect("tasks/update");
    assert_ack(&ack);

    // One answer: only the other question is left.
    let first = json!({"elicit-0": answer("elicit-0")});
    assert_ack(
        &send(&client, "tasks/update", json!({"taskId": id, "inputResponses": first}))
            .await
            .expect("tasks/update"),
    );
    let partial = get(&client, &id).await;
    assert_eq!(partial["status"], "input_required", "{protocol}: {partial}");
    let left: Vec<&String> = partial["inputRequests"]
        .as_object()
        .expect("questions")
        .keys()
        .collect();
    assert_eq!(left, ["elicit-1"], "{protocol}: {partial}");

    let second = json!({"elicit-1": answer("elicit-1")});
    assert_ack(
        &send(&client, "tasks/update", json!({"taskId": id, "inputResponses": second}))
            .await
            .expect("tasks/update"),
    );
    let done = until(&client, &id, ended).await;
    assert_eq!(done["status"], "completed", "{protocol}: {done}");
    assert_eq!(
        done["result"]["content"][0]["text"], "project=apollo; proceed=true",
        "{done}"
    );

    // Input gathered in rounds, then a task: the answer reaches the task's result.
    let call = json!({"name": "e__test_tool_with_task", "arguments": {}});
    let round = send(&client, "tools/call", call.clone()).await.expect("round 1");
    assert_eq!(round["resultType"], "input_required", "{protocol}: {round}");
    assert!(round.get("taskId").is_none(), "{round}");
    let key = round["inputRequests"]
        .as_object()
        .and_then(|q| q.keys().next().cloned())
        .expect("a question");
    let mut retry = call;
    retry["inputResponses"] = json!({key: {"action": "accept", "content": {"name": "Alice"}}});
    if let Some(state) = round.get("requestState") {
        retry["requestState"] = state.clone();
    }
    let created = send(&client, "tools/call", retry).await.expect("round 2");
    assert_eq!(created["resultType"], "task", "{protocol}: {created}");
    assert!(created.get("requestState").is_none(), "{created}");
    let id = created["taskId"].as_str().expect("taskId").to_string();
    let done = until(&client, &id, ended).await;
    assert_eq!(done["status"], "completed", "{protocol}: {done}");
    let text = done["result"]["content"][0]["text"].as_str().unwrap_or_default();
    assert!(text.starts_with("Hello, Alice!"), "{protocol}: {done}");

    // A question left unanswered ends with its task: the gateway holds nothing for it after.
    let id = create(&client, "e__confirm_delete", json!({"filename": "a.txt"})).await;
    until(&client, &id, |got| ended(got) || got.get("inputRequests").is_some()).await;
    assert_ack(
        &send(&client, "tasks/cancel", json!({"taskId": id}))
            .await
            .expect("cancel"),
    );
    assert_eq!(get(&client, &id).await["status"], "cancelled");
    let upstream = gateway.gateway.routes().upstreams[0].clone();
    within("the watchers ending", async {
        while !upstream.watchers().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tasks_questions_are_answered_through_a_2025_11_25_session_upstream() {
    questions("stateful").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tasks_questions_are_answered_through_a_2026_07_28_upstream() {
    questions("stateless").await;
}
