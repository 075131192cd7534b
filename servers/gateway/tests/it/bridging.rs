//! Cross-revision bridging: a client of one generation in front of an upstream of the other,
//! with questions, progress and log messages flowing back to the client that made the call.

use portico_core::client::{Notification, Protocol, RequestOptions};

use super::*;

/// The gateway in front of `everything` over HTTP, spoken to as `protocol` (`stateful`,
/// `stateless`), unprefixed.
async fn over_http(protocol: &str) -> (HttpEverything, Running) {
    let upstream = HttpEverything::start().await;
    let yaml = format!(
        "upstreams:\n  - {{name: everything, url: '{}', protocol: {protocol}, prefix: ''}}\n",
        upstream.url
    );
    let gateway = Running::start(&yaml).await;
    (upstream, gateway)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_client_answers_a_2026_upstreams_input_required_as_requests() {
    // The built-in upstream speaks 2026-07-28: its questions come as `input_required` results.
    let gateway = Running::start("upstreams:\n  - {name: everything, builtin: everything, prefix: ''}\n").await;
    let answers = Answers::default();
    let client = gateway.client("/mcp", SESSION, answers.clone()).await;
    let result = client
        .call_tool("test_input_required_result_elicitation", json!({}))
        .await
        .expect("call");
    assert_eq!(text(&result), "Hello, Ada!");
    assert_eq!(answers.asked(), 1, "the question reached the client as a request");
    let result = client
        .call_tool("test_input_required_result_multiple_inputs", json!({}))
        .await
        .expect("call");
    assert_eq!(answers.asked(), 4, "three more questions: {result:?}");
    assert!(text(&result).contains("Ada"), "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2026_client_answers_a_session_upstreams_requests_in_input_required_rounds() {
    let (_upstream, gateway) = over_http("stateful").await;
    let answers = Answers::default();
    let client = gateway.client("/mcp", Protocol::Stateless, answers.clone()).await;
    let result = client
        .call_tool("test_elicitation", json!({"message": "Who are you?"}))
        .await
        .expect("call");
    let text = text(&result);
    assert!(
        text.contains("action=accept") && text.contains("ada@example.com"),
        "{text}"
    );
    assert_eq!(answers.asked(), 1);
    // A session upstream asks one question at a time; the gateway gathers them all into one
    // round (the upstream's unanswered questions fail until the retry brings the answers).
    let result = client
        .call_tool("test_input_required_result_multiple_inputs", json!({}))
        .await
        .expect("call");
    assert_eq!(answers.asked(), 4, "{result:?}");
    let text = super::text(&result);
    assert!(
        text.contains("Ada") && text.contains("a sampled answer") && text.contains("file:///work"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2026_client_in_front_of_a_2026_upstream_goes_through_every_round() {
    let (_upstream, gateway) = over_http("stateless").await;
    let answers = Answers::default();
    let client = gateway.client("/mcp", Protocol::Stateless, answers.clone()).await;
    let result = client
        .call_tool("test_input_required_result_multi_round", json!({}))
        .await
        .expect("call");
    assert!(answers.asked() >= 2, "{result:?}");
    assert_eq!(result.is_error, None, "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_and_log_messages_reach_the_client_that_made_the_call() {
    for upstream_protocol in ["stateful", "stateless"] {
        let (_upstream, gateway) = over_http(upstream_protocol).await;
        for protocol in [SESSION, Protocol::Stateless] {
            let client = gateway.client("/mcp", protocol, ()).await;
            let mut notifications = client.notifications();
            let token = client.progress_token();
            let options = RequestOptions::new().progress(token.clone());
            client
                .call_tool_with("test_tool_with_progress", json!({}), &options)
                .await
                .expect("call");
            let mut progress = Vec::new();
            while let Some(Notification::Progress(p)) = notifications.try_recv() {
                assert_eq!(p.progress_token, token, "the client's own token");
                progress.push(p.progress.as_f64().expect("a number"));
            }
            assert_eq!(
                progress,
                [0.0, 50.0, 100.0],
                "{upstream_protocol} upstream, {protocol:?} client"
            );

            client.set_level(wire::LoggingLevel::Info).await.expect("level");
            client
                .call_tool("test_tool_with_logging", json!({}))
                .await
                .expect("call");
            let mut logs = 0;
            while let Some(notification) = notifications.try_recv() {
                if let Notification::Log(log) = notification {
                    assert_eq!(log.level, wire::LoggingLevel::Info);
                    logs += 1;
                }
            }
            assert_eq!(logs, 3, "{upstream_protocol} upstream, {protocol:?} client");
        }
    }
}
