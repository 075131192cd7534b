//! The Multi Round-Trip Request fixtures: `input_required` rounds for 2026-07-28 clients, real
//! server→client requests in sessions.

use serde_json::{Value, json};

use crate::{Client, SESSION, all_capabilities, answers, both, first_text, result_type, server, until_complete};

/// Calls `tool` as a 2026-07-28 client and returns the `input_required` result of round one.
async fn round_one(c: &mut Client, tool: &str) -> Value {
    let x = c.request("tools/call", json!({"name": tool, "arguments": {}})).await;
    let r = x.result().clone();
    assert_eq!(r["resultType"], "input_required", "{r}");
    assert!(r["requestState"].as_str().is_some_and(|s| !s.is_empty()), "{r}");
    r
}

/// The methods asked in an `input_required` result, in key order.
fn methods(r: &Value) -> Vec<&str> {
    r["inputRequests"]
        .as_object()
        .expect("inputRequests")
        .values()
        .filter_map(|q| q["method"].as_str())
        .collect()
}

/// The final text of `tool` for each kind of client, answering with the test answers.
async fn final_texts(tool: &str, content: Value) -> Vec<String> {
    let s = server();
    let mut texts = Vec::new();
    for mut c in both(&s).await {
        let rounds = until_complete(
            &mut c,
            "tools/call",
            json!({"name": tool, "arguments": {}}),
            2,
            answers("The capital of France is Paris.", content.clone()),
        )
        .await;
        let r = rounds.last().expect("a round").result();
        assert!(r.get("isError").is_none(), "{r}");
        texts.push(first_text(r).to_string());
    }
    texts
}

#[tokio::test]
async fn elicitation_asks_the_name_then_greets() {
    let s = server();
    let mut c = Client::stateless(&s, all_capabilities());
    let r = round_one(&mut c, "test_input_required_result_elicitation").await;
    let (key, q) = r["inputRequests"]
        .as_object()
        .expect("requests")
        .iter()
        .next()
        .expect("one");
    assert_eq!(q["method"], "elicitation/create");
    assert_eq!(q["params"]["message"], "What is your name?");
    assert_eq!(
        q["params"]["requestedSchema"],
        json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]})
    );
    assert!(!key.is_empty());
    for text in final_texts("test_input_required_result_elicitation", json!({"name": "Alice"})).await {
        assert_eq!(text, "Hello, Alice!");
    }
}

#[tokio::test]
async fn sampling_and_roots() {
    let s = server();
    let mut c = Client::stateless(&s, all_capabilities());
    let r = round_one(&mut c, "test_input_required_result_sampling").await;
    assert_eq!(methods(&r), ["sampling/createMessage"]);
    let q = r["inputRequests"]
        .as_object()
        .expect("requests")
        .values()
        .next()
        .expect("one");
    assert_eq!(
        q["params"]["messages"][0]["content"]["text"],
        "What is the capital of France?"
    );
    assert_eq!(q["params"]["maxTokens"], 100);
    for text in final_texts("test_input_required_result_sampling", json!({})).await {
        assert_eq!(text, "Sampling response: The capital of France is Paris.");
    }
    let r = round_one(&mut c, "test_input_required_result_list_roots").await;
    assert_eq!(methods(&r), ["roots/list"]);
    for text in final_texts("test_input_required_result_list_roots", json!({})).await {
        assert_eq!(text, "Received 1 root(s): file:///test/root (Test Root)");
    }
}

#[tokio::test]
async fn request_state_is_verified_before_the_tool_runs_again() {
    for text in final_texts("test_input_required_result_request_state", json!({"ok": true})).await {
        assert_eq!(text, "state-ok: requestState verified; confirmed=true");
    }
}

#[tokio::test]
async fn multiple_inputs_are_asked_in_one_round() {
    let s = server();
    let mut c = Client::stateless(&s, all_capabilities());
    let r = round_one(&mut c, "test_input_required_result_multiple_inputs").await;
    let mut asked = methods(&r);
    asked.sort_unstable();
    assert_eq!(asked, ["elicitation/create", "roots/list", "sampling/createMessage"]);
    for text in final_texts("test_input_required_result_multiple_inputs", json!({"name": "Alice"})).await {
        assert_eq!(
            text,
            "name=Alice; greeting=The capital of France is Paris.; 1 root(s): file:///test/root (Test Root)"
        );
    }
}

#[tokio::test]
async fn multi_round_asks_step_two_after_step_one() {
    let s = server();
    // A session: two requests within the call.
    let mut c = Client::session(&s, SESSION, all_capabilities()).await;
    let x = c
        .exchange(
            "tools/call",
            json!({"name": "test_input_required_result_multi_round", "arguments": {}}),
            |_, p| {
                if p["message"].as_str().is_some_and(|m| m.starts_with("Step 1")) {
                    json!({"action": "accept", "content": {"name": "Alice"}})
                } else {
                    json!({"action": "accept", "content": {"color": "blue"}})
                }
            },
        )
        .await;
    assert_eq!(x.requests.len(), 2);
    assert_eq!(first_text(x.result()), "Alice's favorite color is blue");

    // 2026-07-28: round two asks only step two; the client sends every answer it has given.
    let mut c = Client::stateless(&s, all_capabilities());
    let call = json!({"name": "test_input_required_result_multi_round", "arguments": {}});
    let r1 = round_one(&mut c, "test_input_required_result_multi_round").await;
    let (k1, q1) = r1["inputRequests"]
        .as_object()
        .expect("requests")
        .iter()
        .next()
        .expect("one");
    assert_eq!(q1["params"]["message"], "Step 1: What is your name?");
    let mut retry = call.clone();
    retry["inputResponses"] = json!({k1: {"action": "accept", "content": {"name": "Alice"}}});
    retry["requestState"] = r1["requestState"].clone();
    let x = c.request("tools/call", retry.clone()).await;
    let r2 = x.result();
    assert_eq!(r2["resultType"], "input_required");
    let asked: Vec<&String> = r2["inputRequests"].as_object().expect("requests").keys().collect();
    assert_eq!(asked.len(), 1, "only step two: {r2}");
    let k2 = asked[0].clone();
    assert_eq!(
        r2["inputRequests"][&k2]["params"]["message"],
        "Step 2: What is your favorite color?"
    );
    retry["inputResponses"][&k2] = json!({"action": "accept", "content": {"color": "blue"}});
    retry["requestState"] = r2["requestState"].clone();
    let x = c.request("tools/call", retry).await;
    assert_eq!(first_text(x.result()), "Alice's favorite color is blue");
}

#[tokio::test]
async fn a_tampered_or_foreign_request_state_is_refused() {
    let s = server();
    let mut c = Client::stateless(&s, all_capabilities());
    let r = round_one(&mut c, "test_input_required_result_tampered_state").await;
    let key = r["inputRequests"]
        .as_object()
        .expect("requests")
        .keys()
        .next()
        .expect("one")
        .clone();
    let state = r["requestState"].as_str().expect("state");
    let retry = |state: String| {
        json!({"name": "test_input_required_result_tampered_state", "arguments": {},
               "inputResponses": {&key: {"action": "accept", "content": {"ok": true}}}, "requestState": state})
    };
    let x = c.request("tools/call", retry(format!("{state}-TAMPERED"))).await;
    assert_eq!(x.error()["code"], -32602);
    // The state of another tool's call does not open this one.
    let other = round_one(&mut c, "test_input_required_result_request_state").await;
    let x = c
        .request(
            "tools/call",
            retry(other["requestState"].as_str().expect("state").to_string()),
        )
        .await;
    assert_eq!(x.error()["code"], -32602);
    let x = c.request("tools/call", retry(state.to_string())).await;
    assert_eq!(first_text(x.result()), "Confirmed with an intact requestState: ok=true");
}

#[tokio::test]
async fn only_declared_capabilities_are_asked_for() {
    let s = server();
    let mut c = Client::stateless(&s, json!({"sampling": {}}));
    let r = round_one(&mut c, "test_input_required_result_capabilities").await;
    assert_eq!(methods(&r), ["sampling/createMessage"]);
    let rounds = until_complete(
        &mut c,
        "tools/call",
        json!({"name": "test_input_required_result_capabilities", "arguments": {}}),
        2,
        answers("Hello there!", json!({})),
    )
    .await;
    assert_eq!(
        first_text(rounds[1].result()),
        "Asked only for declared capabilities: greeting=Hello there!"
    );
    let mut c = Client::stateless(&s, json!({}));
    let x = c
        .request(
            "tools/call",
            json!({"name": "test_input_required_result_capabilities", "arguments": {}}),
        )
        .await;
    assert_eq!(result_type(x.result()), "complete");
    assert!(first_text(x.result()).contains("declared none"));
    // A session is asked only what it declared, too.
    let mut c = Client::session(&s, SESSION, json!({"roots": {}})).await;
    let x = c
        .exchange(
            "tools/call",
            json!({"name": "test_input_required_result_capabilities", "arguments": {}}),
            answers("", json!({})),
        )
        .await;
    let asked: Vec<&Value> = x.requests.iter().map(|r| &r["method"]).collect();
    assert_eq!(asked, [&json!("roots/list")]);
}

#[tokio::test]
async fn wrong_or_extra_input_responses() {
    let s = server();
    let mut c = Client::stateless(&s, all_capabilities());
    let r = round_one(&mut c, "test_input_required_result_elicitation").await;
    let key = r["inputRequests"]
        .as_object()
        .expect("requests")
        .keys()
        .next()
        .expect("one")
        .clone();
    let base =
        json!({"name": "test_input_required_result_elicitation", "arguments": {}, "requestState": r["requestState"]});
    // An answer under a key that was not asked: the question is asked again.
    let mut wrong = base.clone();
    wrong["inputResponses"] = json!({"wrong_key": {"action": "accept", "content": {"data": "wrong"}}});
    let x = c.request("tools/call", wrong).await;
    assert_eq!(x.result()["resultType"], "input_required");
    assert_eq!(methods(x.result()), ["elicitation/create"]);
    // Extra keys beside the right one are ignored.
    let mut extra = base.clone();
    extra["inputResponses"] = json!({
        &key: {"action": "accept", "content": {"name": "Alice"}},
        "unknown_extra_key": {"action": "accept", "content": {"foo": "bar"}}
    });
    let x = c.request("tools/call", extra).await;
    assert_eq!(first_text(x.result()), "Hello, Alice!");
    // Answers are only taken with the state sealed when they were asked for: without one they
    // are ignored and the question is asked again.
    let x = c
        .request(
            "tools/call",
            json!({"name": "test_input_required_result_elicitation", "arguments": {},
                   "inputResponses": {&key: {"action": "accept", "content": {"name": "Alice"}}}}),
        )
        .await;
    assert_eq!(x.result()["resultType"], "input_required");
    // An answer of the wrong shape is not taken as a name.
    let mut invalid = base.clone();
    invalid["inputResponses"] = json!({&key: 12345});
    let x = c.request("tools/call", invalid).await;
    assert_ne!(first_text(x.result()), "Hello, 12345!");
    assert_eq!(x.result()["isError"], true, "{}", x.response);
}

#[tokio::test]
async fn lists_never_ask_for_input() {
    let s = server();
    let mut c = Client::stateless(&s, all_capabilities());
    for method in ["tools/list", "prompts/list", "resources/list"] {
        let x = c.request(method, json!({})).await;
        assert_eq!(x.result()["resultType"], "complete", "{method}");
    }
}

#[tokio::test]
async fn the_prompt_asks_for_context_first() {
    let s = server();
    for mut c in both(&s).await {
        let rounds = until_complete(
            &mut c,
            "prompts/get",
            json!({"name": "test_input_required_result_prompt"}),
            2,
            answers("", json!({"context": "test context"})),
        )
        .await;
        if c.session.is_none() {
            assert_eq!(rounds.len(), 2);
            assert_eq!(methods(rounds[0].result()), ["elicitation/create"]);
        }
        let r = rounds.last().expect("a round").result();
        assert_eq!(r["messages"][0]["content"]["text"], "Use this context: test context");
    }
    // Without the elicitation capability: -32021, naming it.
    let clients = vec![
        Client::stateless(&s, json!({"sampling": {}})),
        Client::session(&s, SESSION, json!({})).await,
    ];
    for mut c in clients {
        let x = c
            .request("prompts/get", json!({"name": "test_input_required_result_prompt"}))
            .await;
        assert_eq!(x.error()["code"], -32021);
        assert_eq!(x.error()["data"]["requiredCapabilities"], json!({"elicitation": {}}));
        if c.session.is_none() {
            crate::validate(crate::NEW, "MissingRequiredClientCapabilityError", &x.response);
        }
    }
}
