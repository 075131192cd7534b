//! The tasks extension fixtures (`greet`, `slow_compute`, `failing_job`, `protocol_error_job`,
//! `confirm_delete`, `multi_input`, `test_tool_with_task`) and the skills fixtures, as the
//! suite's `tasks-*` and `sep-2640-skills-*` scenarios use them. Task messages have no
//! definition in the core 2026-07-28 schema, so they are checked member by member.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{Client, SESSION, first_text, server};

const EXT: &str = "io.modelcontextprotocol/tasks";

/// A request sent without schema validation of the answer (task handles are not a
/// `CallToolResult`); ids of its own (`t-…`) keep clear of the client's.
async fn send(c: &mut Client, method: &str, params: Value) -> Value {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let id = format!("t-{}", NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
    let frame = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": c.params(params)});
    c.peer.receive(&frame.to_string()).await;
    loop {
        let message = c.next_message().await;
        if message["id"] == id.as_str() {
            return message;
        }
    }
}

async fn result(c: &mut Client, method: &str, params: Value) -> Value {
    let v = send(c, method, params).await;
    assert!(v.get("result").is_some(), "{method}: {v}");
    v["result"].clone()
}

/// Calls `tool` and returns its task's id (the answer must be a task handle).
async fn create(c: &mut Client, tool: &str, arguments: Value) -> String {
    let r = result(c, "tools/call", json!({"name": tool, "arguments": arguments})).await;
    assert_eq!(r["resultType"], "task", "{tool}: {r}");
    assert!(r.get("result").is_none() && r.get("requestState").is_none(), "{r}");
    r["taskId"].as_str().expect("taskId").to_string()
}

/// Polls `tasks/get` until `done` holds (within 10 s).
async fn until(c: &mut Client, task: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..1000 {
        let r = result(c, "tasks/get", json!({"taskId": task})).await;
        assert_eq!(r["resultType"], "complete", "{r}");
        if done(&r) {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("task {task} never reached the awaited state");
}

fn terminal(r: &Value) -> bool {
    matches!(r["status"].as_str(), Some("completed" | "failed" | "cancelled"))
}

fn declaring(s: &portico_core::server::Server) -> Client {
    Client::stateless(s, json!({"elicitation": {}, "sampling": {}, "extensions": {EXT: {}}}))
}

#[tokio::test]
async fn the_fixtures_are_listed_and_the_extensions_declared() {
    let s = server();
    let mut c = declaring(&s);
    let tools = c.request("tools/list", json!({})).await;
    let names: Vec<&str> = tools.result()["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    for fixture in [
        "greet",
        "slow_compute",
        "failing_job",
        "protocol_error_job",
        "confirm_delete",
        "multi_input",
        "test_tool_with_task",
    ] {
        assert!(names.contains(&fixture), "{fixture} is not listed");
    }
    assert_eq!(names[0], "test_simple_text", "the suite calls the first tool with {{}}");
    let discover = c.request("server/discover", json!({})).await;
    let extensions = &discover.result()["capabilities"]["extensions"];
    assert_eq!(extensions[EXT], json!({}));
    assert_eq!(
        extensions["io.modelcontextprotocol/skills"],
        json!({"directoryRead": true})
    );
}

#[tokio::test]
async fn lifecycle_sync_task_tool_error_protocol_error_and_cancel() {
    let s = server();
    let mut c = declaring(&s);
    let greet = result(
        &mut c,
        "tools/call",
        json!({"name": "greet", "arguments": {"name": "World"}}),
    )
    .await;
    assert_eq!(greet["resultType"], "complete");
    assert_eq!(first_text(&greet), "Hello, World!");

    let task = create(&mut c, "slow_compute", json!({"seconds": 0, "label": "quick"})).await;
    let done = until(&mut c, &task, terminal).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(first_text(&done["result"]), "Computed quick in 0 s");

    let task = create(&mut c, "failing_job", json!({})).await;
    let done = until(&mut c, &task, terminal).await;
    assert_eq!(done["status"], "completed", "a tool error is not a failed task: {done}");
    assert_eq!(done["result"]["isError"], true);

    let task = create(&mut c, "protocol_error_job", json!({})).await;
    let failed = until(&mut c, &task, terminal).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error"]["code"], -32603);
    assert!(failed.get("result").is_none());

    let task = create(&mut c, "slow_compute", json!({"seconds": 60})).await;
    assert_eq!(
        result(&mut c, "tasks/get", json!({"taskId": task})).await["status"],
        "working"
    );
    let ack = result(&mut c, "tasks/cancel", json!({"taskId": task})).await;
    assert_eq!(ack["resultType"], "complete");
    assert!(ack.get("status").is_none() && ack.get("taskId").is_none(), "{ack}");
    assert_eq!(until(&mut c, &task, terminal).await["status"], "cancelled");
}

#[tokio::test]
async fn confirm_delete_and_multi_input_wait_for_tasks_update() {
    let s = server();
    let mut c = declaring(&s);
    let task = create(&mut c, "confirm_delete", json!({"filename": "a.txt"})).await;
    let parked = until(&mut c, &task, |r| r["status"] == "input_required").await;
    let (key, question) = parked["inputRequests"]
        .as_object()
        .expect("map")
        .iter()
        .next()
        .expect("one");
    assert_eq!(question["method"], "elicitation/create");
    assert_eq!(question["params"]["message"], "Delete a.txt?");
    let answer = json!({key.as_str(): {"action": "accept", "content": {"confirm": true}}});
    let ack = result(
        &mut c,
        "tasks/update",
        json!({"taskId": task, "inputResponses": answer}),
    )
    .await;
    assert_eq!(ack, json!({"resultType": "complete", "_meta": ack["_meta"]}));
    let done = until(&mut c, &task, terminal).await;
    assert_eq!(first_text(&done["result"]), "Deleted a.txt");

    let task = create(&mut c, "multi_input", json!({})).await;
    let parked = until(&mut c, &task, |r| {
        r["inputRequests"].as_object().is_some_and(|q| q.len() == 2)
    })
    .await;
    let keys: Vec<String> = parked["inputRequests"]
        .as_object()
        .expect("map")
        .keys()
        .cloned()
        .collect();
    let first = json!({keys[0].as_str(): {"action": "accept", "content": {"name": "portico", "confirm": true}}});
    result(&mut c, "tasks/update", json!({"taskId": task, "inputResponses": first})).await;
    let partial = result(&mut c, "tasks/get", json!({"taskId": task})).await;
    assert_eq!(partial["status"], "input_required");
    let left: Vec<&String> = partial["inputRequests"].as_object().expect("map").keys().collect();
    assert_eq!(left, [&keys[1]]);
    let second = json!({keys[1].as_str(): {"action": "accept", "content": {"name": "x", "confirm": true}}});
    result(
        &mut c,
        "tasks/update",
        json!({"taskId": task, "inputResponses": second}),
    )
    .await;
    let done = until(&mut c, &task, terminal).await;
    assert_eq!(first_text(&done["result"]), "project=portico; proceed=true");
}

#[tokio::test]
async fn test_tool_with_task_asks_first_then_becomes_a_task() {
    let s = server();
    let mut c = declaring(&s);
    let call = json!({"name": "test_tool_with_task", "arguments": {}});
    let round1 = result(&mut c, "tools/call", call.clone()).await;
    assert_eq!(round1["resultType"], "input_required", "{round1}");
    assert!(
        round1["inputRequests"]["user_name"].is_object(),
        "the suite's key: {round1}"
    );
    assert!(round1.get("taskId").is_none());
    let mut retry = call;
    retry["inputResponses"] = json!({"user_name": {"action": "accept", "content": {"name": "Alice"}}});
    retry["requestState"] = round1["requestState"].clone();
    let created = result(&mut c, "tools/call", retry).await;
    assert_eq!(created["resultType"], "task", "{created}");
    assert!(created.get("requestState").is_none());
    let task = created["taskId"].as_str().expect("id").to_string();
    let done = until(&mut c, &task, terminal).await;
    assert!(first_text(&done["result"]).starts_with("Hello, Alice!"), "{done}");
}

#[tokio::test]
async fn clients_without_the_extension() {
    let s = server();
    let mut c = Client::stateless(&s, json!({}));
    let v = send(&mut c, "tools/call", json!({"name": "failing_job", "arguments": {}})).await;
    assert_eq!(v["error"]["code"], -32021, "{v}");
    assert_eq!(v["error"]["data"]["requiredCapabilities"]["extensions"][EXT], json!({}));
    let sync = c
        .request(
            "tools/call",
            json!({"name": "slow_compute", "arguments": {"seconds": 0}}),
        )
        .await;
    assert_eq!(sync.result()["resultType"], "complete");
    assert_eq!(first_text(sync.result()), "Computed computation in 0 s");
    for method in ["tasks/get", "tasks/update", "tasks/cancel"] {
        let v = send(&mut c, method, json!({"taskId": "gate-test", "inputResponses": {}})).await;
        assert_eq!(v["error"]["code"], -32021, "{method}: {v}");
    }
    let mut c = declaring(&s);
    let v = send(
        &mut c,
        "tasks/get",
        json!({"taskId": "tasks-conformance-nonexistent-12345"}),
    )
    .await;
    assert_eq!(v["error"]["code"], -32602, "{v}");

    // A 2025-11-25 session has that revision's tasks, asked for with `task`: without it the
    // optional task tool runs synchronously and a required one is refused (the revision's
    // -32601); with it, the required one runs as a task.
    let mut session = Client::session(&s, SESSION, json!({"extensions": {EXT: {}}})).await;
    let sync = session
        .request(
            "tools/call",
            json!({"name": "slow_compute", "arguments": {"seconds": 0}}),
        )
        .await;
    assert_eq!(first_text(sync.result()), "Computed computation in 0 s");
    let refused = session
        .request("tools/call", json!({"name": "failing_job", "arguments": {}}))
        .await;
    assert_eq!(refused.error()["code"], -32601);
    let created = session
        .request(
            "tools/call",
            json!({"name": "failing_job", "arguments": {}, "task": {}}),
        )
        .await;
    let task = created.result()["task"]["taskId"].as_str().expect("a task").to_string();
    let done = session.request("tasks/result", json!({"taskId": task})).await;
    assert_eq!(done.result()["isError"], true);
    assert_eq!(first_text(done.result()), "failing_job failed, as it always does");
}

#[tokio::test]
async fn the_skills_are_listed_read_and_browsed() {
    let s = server();
    let mut c = Client::stateless(&s, json!({}));
    let list = result(&mut c, "skills/list", json!({})).await;
    let uris: Vec<&str> = list["skills"]
        .as_array()
        .expect("skills")
        .iter()
        .filter_map(|e| e["uri"].as_str())
        .collect();
    assert_eq!(
        uris,
        [
            "skill://pdf-processing/SKILL.md",
            "skill://portico/release-notes/SKILL.md"
        ]
    );
    let read = c
        .request("resources/read", json!({"uri": "skill://pdf-processing/SKILL.md"}))
        .await;
    let contents = &read.result()["contents"][0];
    assert_eq!(contents["mimeType"], "text/markdown");
    assert!(
        contents["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("---\nname: \"pdf-processing\"\n")),
        "{contents}"
    );
    let dir = result(
        &mut c,
        "resources/directory/read",
        json!({"uri": "skill://pdf-processing"}),
    )
    .await;
    let children: Vec<(&str, &str)> = dir["resources"]
        .as_array()
        .expect("children")
        .iter()
        .map(|r| (r["uri"].as_str().unwrap_or(""), r["mimeType"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        children,
        [
            ("skill://pdf-processing/SKILL.md", "text/markdown"),
            ("skill://pdf-processing/references", "inode/directory")
        ]
    );
}
