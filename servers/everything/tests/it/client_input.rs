//! Tools that ask the client: sampling and elicitation as real requests in a session and as
//! `input_required` rounds in 2026-07-28; a client without the capability is refused.

use serde_json::{Value, json};

use crate::{Client, SESSION, all_capabilities, answers, both, first_text, server, until_complete};

/// Calls `tool` until it completes; returns the questions asked (whichever way) and the result.
async fn ask(c: &mut Client, tool: &str, arguments: Value, content: Value) -> (Vec<Value>, Value) {
    let rounds = until_complete(
        c,
        "tools/call",
        json!({"name": tool, "arguments": arguments}),
        3,
        answers("This is a test response from the client", content),
    )
    .await;
    let mut asked = Vec::new();
    for x in &rounds {
        asked.extend(
            x.requests
                .iter()
                .map(|r| json!({"method": r["method"], "params": r["params"]})),
        );
        if let Some(requests) = x.result().get("inputRequests").and_then(Value::as_object) {
            asked.extend(requests.values().cloned());
        }
    }
    let last = rounds.last().expect("a round");
    if c.session.is_none() {
        assert_eq!(rounds.len(), 2, "one input_required round, then the result");
        assert_eq!(rounds[0].result()["resultType"], "input_required");
        assert!(rounds[0].result()["requestState"].is_string());
    } else {
        assert_eq!(rounds.len(), 1, "a session asks within the call");
    }
    (asked, last.result().clone())
}

#[tokio::test]
async fn sampling_asks_the_prompt_and_returns_the_answer() {
    let s = server();
    for mut c in both(&s).await {
        let (asked, result) = ask(
            &mut c,
            "test_sampling",
            json!({"prompt": "Test prompt for sampling"}),
            json!({}),
        )
        .await;
        assert_eq!(asked.len(), 1, "{asked:?}");
        assert_eq!(asked[0]["method"], "sampling/createMessage");
        assert_eq!(
            asked[0]["params"]["messages"],
            json!([{"role": "user", "content": {"type": "text", "text": "Test prompt for sampling"}}])
        );
        assert_eq!(asked[0]["params"]["maxTokens"], 100);
        assert_eq!(
            first_text(&result),
            "LLM response: This is a test response from the client"
        );
    }
}

#[tokio::test]
async fn elicitation_asks_the_message_and_echoes_the_answer() {
    let s = server();
    for mut c in both(&s).await {
        let content = json!({"username": "testuser", "email": "test@example.com"});
        let (asked, result) = ask(
            &mut c,
            "test_elicitation",
            json!({"message": "Please provide your information"}),
            content.clone(),
        )
        .await;
        assert_eq!(asked[0]["method"], "elicitation/create");
        let params = &asked[0]["params"];
        assert_eq!(params["message"], "Please provide your information");
        assert_eq!(params["requestedSchema"]["required"], json!(["username", "email"]));
        let text = first_text(&result);
        assert!(text.starts_with("User response: action=accept, content="), "{text}");
        let echoed: Value =
            serde_json::from_str(text.trim_start_matches("User response: action=accept, content=")).expect("JSON");
        assert_eq!(echoed, content);
    }
}

#[tokio::test]
async fn elicitation_with_defaults_for_every_primitive_type() {
    let s = server();
    for mut c in both(&s).await {
        let content = json!({"name": "Jane Smith", "age": 25, "score": 88, "status": "inactive", "verified": false});
        let (asked, result) = ask(&mut c, "test_elicitation_sep1034_defaults", json!({}), content.clone()).await;
        let p = &asked[0]["params"]["requestedSchema"]["properties"];
        assert_eq!(
            (p["name"]["type"].as_str(), &p["name"]["default"]),
            (Some("string"), &json!("John Doe"))
        );
        assert_eq!(
            (p["age"]["type"].as_str(), &p["age"]["default"]),
            (Some("integer"), &json!(30))
        );
        assert_eq!(
            (p["score"]["type"].as_str(), &p["score"]["default"]),
            (Some("number"), &json!(95.5))
        );
        assert_eq!(p["status"]["enum"], json!(["active", "inactive", "pending"]));
        assert_eq!(p["status"]["default"], "active");
        assert_eq!(
            (p["verified"]["type"].as_str(), &p["verified"]["default"]),
            (Some("boolean"), &json!(true))
        );
        assert_eq!(
            first_text(&result),
            format!("Elicitation completed: action=accept, content={content}")
        );
    }
}

#[tokio::test]
async fn elicitation_with_the_five_enum_forms() {
    let s = server();
    for mut c in both(&s).await {
        let content = json!({"untitledSingle": "option1", "titledSingle": "value1", "legacyEnum": "opt1",
                             "untitledMulti": ["option1", "option2"], "titledMulti": ["value1", "value2"]});
        let (asked, result) = ask(&mut c, "test_elicitation_sep1330_enums", json!({}), content).await;
        let p = &asked[0]["params"]["requestedSchema"]["properties"];
        assert_eq!(p["untitledSingle"]["enum"], json!(["option1", "option2", "option3"]));
        assert!(p["untitledSingle"].get("oneOf").is_none() && p["untitledSingle"].get("enumNames").is_none());
        assert_eq!(
            p["titledSingle"]["oneOf"][0],
            json!({"const": "value1", "title": "First Option"})
        );
        assert!(p["titledSingle"].get("enum").is_none());
        assert_eq!(
            p["legacyEnum"]["enumNames"],
            json!(["Option One", "Option Two", "Option Three"])
        );
        assert_eq!(
            p["untitledMulti"]["items"],
            json!({"type": "string", "enum": ["option1", "option2", "option3"]})
        );
        assert_eq!(p["titledMulti"]["type"], "array");
        assert_eq!(
            p["titledMulti"]["items"]["anyOf"][2],
            json!({"const": "value3", "title": "Third Choice"})
        );
        assert!(first_text(&result).starts_with("Elicitation completed: action=accept, content="));
    }
}

#[tokio::test]
async fn a_client_without_the_capability_is_refused() {
    let s = server();
    let clients = vec![
        Client::stateless(&s, json!({})),
        Client::session(&s, SESSION, json!({})).await,
    ];
    for mut c in clients {
        for (tool, arguments, capability) in [
            ("test_missing_capability", json!({}), "sampling"),
            ("test_sampling", json!({"prompt": "p"}), "sampling"),
            ("test_elicitation", json!({"message": "m"}), "elicitation"),
        ] {
            // Nothing is asked: the harness panics on a server request, and no round is offered.
            let x = c
                .request("tools/call", json!({"name": tool, "arguments": arguments}))
                .await;
            match x.response.get("error") {
                // -32021 MissingRequiredClientCapabilityError, where the framework can send it.
                Some(e) => {
                    assert_eq!(e["code"], -32021, "{}", x.response);
                    assert!(e["data"]["requiredCapabilities"][capability].is_object());
                }
                None => {
                    let r = x.result();
                    assert_eq!(r["isError"], true, "{tool}: {r}");
                    assert!(first_text(r).contains(capability), "{tool}: {r}");
                }
            }
        }
    }
}

#[tokio::test]
async fn a_client_with_sampling_passes_the_capability_check() {
    let s = server();
    for mut c in both(&s).await {
        let (asked, result) = ask(&mut c, "test_missing_capability", json!({}), json!({})).await;
        assert_eq!(asked[0]["method"], "sampling/createMessage");
        assert!(result.get("isError").is_none(), "{result}");
    }
}

#[tokio::test]
async fn streaming_elicitation_sends_only_notifications_then_asks() {
    let s = server();
    // 2026-07-28: the stream of the call carries notifications and the input_required result.
    let mut c = Client::stateless(&s, json!({"elicitation": {}}));
    let params = json!({"name": "test_streaming_elicitation", "arguments": {},
                        "_meta": {"progressToken": "p1", "io.modelcontextprotocol/logLevel": "info"}});
    let rounds = until_complete(&mut c, "tools/call", params, 3, answers("", json!({"confirm": true}))).await;
    assert_eq!(rounds.len(), 2);
    let first = &rounds[0];
    assert!(first.requests.is_empty());
    assert!(!first.notifications.is_empty(), "it reports before it asks");
    assert!(
        first
            .notifications
            .iter()
            .all(|n| n["method"].as_str().is_some_and(|m| m.starts_with("notifications/")))
    );
    assert_eq!(first.result()["resultType"], "input_required");
    assert_eq!(
        first_text(rounds[1].result()),
        r#"Streaming elicitation completed: action=accept, content={"confirm":true}"#
    );
    // A session is asked within the call.
    let mut c = Client::session(&s, SESSION, all_capabilities()).await;
    let (asked, _) = ask(
        &mut c,
        "test_streaming_elicitation",
        json!({}),
        json!({"confirm": true}),
    )
    .await;
    assert_eq!(asked[0]["params"]["message"], "Please confirm to continue");
}

#[tokio::test]
async fn reconnection_answers_after_a_pause() {
    let s = server();
    for mut c in both(&s).await {
        let x = c
            .request("tools/call", json!({"name": "test_reconnection", "arguments": {}}))
            .await;
        assert!(first_text(x.result()).starts_with("Reconnection test completed successfully."));
    }
}
