//! Streamable HTTP beyond one message per POST: streams a handler ends early and the client
//! resumes with `Last-Event-ID`, `Mcp-Param-*` headers checked against tool arguments, and
//! batches in 2025-03-26 sessions.

use super::*;

/// A GET resuming a stream from `last_id`.
async fn resume(ep: &Endpoint, session: &str, last_id: &str) -> reqwest::Response {
    within(
        "GET",
        ep.client
            .get(&ep.url)
            .header("accept", "text/event-stream")
            .headers(session_headers(session))
            .header("last-event-id", last_id)
            .send(),
    )
    .await
    .expect("the server answers")
}

fn call(id: i64, name: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": arguments}})
}

#[tokio::test]
async fn a_stream_ended_by_its_handler_is_resumed_with_last_event_id() {
    let ep = Endpoint::default().await;
    let session = ep.initialize().await;
    // The POST's stream: a priming event (an id, no data) with a retry hint, then it ends.
    let mut body = call(5, "poll", json!({}));
    body["params"]["_meta"] = json!({"progressToken": "poll"});
    let response = ep.post(&body, session_headers(&session)).await;
    let mut events = Events::new(response);
    assert!(
        within("the stream ends", events.next()).await.is_none(),
        "the handler ended the stream before answering"
    );
    let primed = events.last_id.clone().expect("a priming event id");
    assert!(primed.ends_with("-0"), "{primed}");
    // Resuming it: what the handler sent meanwhile, in order, then the response, then the end.
    let mut events = Events::new(resume(&ep, &session, &primed).await);
    let progress = within("progress", events.next()).await.expect("progress");
    assert_eq!(progress.data["method"], "notifications/progress", "{:?}", progress.data);
    let answer = within("the answer", events.next()).await.expect("the answer");
    assert_eq!(answer.data["id"], 5);
    assert_eq!(
        answer.data["result"]["content"][0]["text"],
        "polled (stream closed: true)"
    );
    let stream = primed.trim_end_matches("-0");
    assert_eq!(progress.id.as_deref(), Some(format!("{stream}-1").as_str()));
    assert_eq!(answer.id.as_deref(), Some(format!("{stream}-2").as_str()));
    assert!(
        within("the end", events.next()).await.is_none(),
        "a resumed request stream ends with its response"
    );
    // Resuming again from the first event replays the rest of it.
    let mut events = Events::new(resume(&ep, &session, &format!("{stream}-1")).await);
    let again = within("the answer again", events.next()).await.expect("the answer");
    assert_eq!(again.data["id"], 5);
    ep.stop().await;
}

#[tokio::test]
async fn messages_of_a_dropped_post_stream_wait_for_the_client() {
    let ep = Endpoint::default().await;
    let session = ep.initialize().await;
    // `count` streams at once (a progress token); the client reads one event and goes away.
    let mut body = call(6, "count", json!({"steps": 3}));
    body["params"]["_meta"] = json!({"progressToken": "p"});
    let mut events = Events::new(ep.post(&body, session_headers(&session)).await);
    let first = within("the first event", events.next()).await.expect("progress");
    assert_eq!(first.data["params"]["progress"], 1.0);
    let first_id = first.id.clone().expect("an id");
    drop(events);
    // The rest is kept: resuming after the first event gives the others and the response.
    let mut events = Events::new(resume(&ep, &session, &first_id).await);
    let mut seen = Vec::new();
    while let Some(event) = within("an event", events.next()).await {
        seen.push(event.data);
    }
    let answer = seen.last().expect("events after the first");
    assert_eq!(answer["id"], 6, "{seen:?}");
    let progress: Vec<f64> = seen.iter().filter_map(|m| m["params"]["progress"].as_f64()).collect();
    assert_eq!(progress, [2.0, 3.0], "{seen:?}");
    ep.stop().await;
}

#[tokio::test]
async fn an_unknown_event_id_opens_the_session_stream() {
    let ep = Endpoint::default().await;
    let session = ep.initialize().await;
    let response = resume(&ep, &session, "999-3").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(content_type(&response), "text/event-stream");
    // It is the session's stream: a second one is refused while it is open.
    let second = resume(&ep, &session, "not-an-id").await;
    assert_eq!(second.status(), StatusCode::CONFLICT);
    drop(response);
    ep.stop().await;
}

#[tokio::test]
async fn mcp_param_headers_must_match_the_arguments() {
    let ep = Endpoint::default().await;
    let post = |arguments: Value, extra: &[(&'static str, &str)]| {
        let mut params = json!({"name": "region", "arguments": arguments});
        params["_meta"] = meta(&params);
        let body = json!({"jsonrpc": "2.0", "id": 21, "method": "tools/call", "params": params});
        let mut headers = modern_headers("tools/call", &params);
        for (name, value) in extra {
            headers.insert(*name, header(value));
        }
        let ep = &ep;
        async move { ep.post(&body, headers).await }
    };
    let ok = |response| async move {
        let body = json_body(response).await;
        assert!(body.get("result").is_some(), "{body}");
        body["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let mismatch = |response| expect_error(response, StatusCode::BAD_REQUEST, -32020, Some(21));
    let region = json!({"region": "us-west1"});
    assert_eq!(
        ok(post(region.clone(), &[("mcp-param-region", "us-west1")]).await).await,
        "us-west1 x1"
    );
    // Case-insensitive names, Base64 sentinel values, integers compared as numbers.
    let both = json!({"region": "Hello, 世界", "count": 42});
    let encoded = [
        ("MCP-PARAM-REGION", "=?base64?SGVsbG8sIOS4lueVjA==?="),
        ("mcp-param-count", "42.0"),
    ];
    assert_eq!(ok(post(both.clone(), &encoded).await).await, "Hello, 世界 x42");
    // Headers of names the tool does not annotate are ignored.
    let extra = [("mcp-param-region", "us-west1"), ("mcp-param-other", "x")];
    ok(post(region.clone(), &extra).await).await;
    // Missing, different, badly encoded, or present without a body value: -32020, 400.
    mismatch(post(region.clone(), &[]).await).await;
    mismatch(post(region.clone(), &[("mcp-param-region", "us-east1")]).await).await;
    mismatch(post(region.clone(), &[("mcp-param-region", "=?base64?dXMtd2VzdDE?=")]).await).await;
    mismatch(post(region.clone(), &[("mcp-param-region", "=?base64?dXMt!!!d2VzdDE=?=")]).await).await;
    let with_count = [("mcp-param-region", "us-west1"), ("mcp-param-count", "7")];
    let body = mismatch(post(region.clone(), &with_count).await).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Mcp-Param-Count"),
        "{body}"
    );
    let wrong_count = [("mcp-param-region", "Hello, 世界"), ("mcp-param-count", "41")];
    mismatch(post(both, &wrong_count).await).await;
    ep.stop().await;
}

#[tokio::test]
async fn batches_are_served_in_2025_03_26_sessions_only() {
    let ep = Endpoint::default().await;
    let session = ep.initialize_at("2025-03-26").await;
    let mut headers = session_headers(&session);
    headers.remove("mcp-protocol-version");
    let batch = json!([
        call(1, "echo", json!({"text": "one"})),
        {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": "x", "progress": 1}},
        call(2, "echo", json!({"text": "two"})),
    ]);
    let answer = json_body(ep.post(&batch, headers.clone()).await).await;
    let answers = answer.as_array().expect("an array of responses");
    assert_eq!(answers.len(), 2, "{answer}");
    assert_eq!(answers[0]["id"], 1);
    assert_eq!(answers[0]["result"]["content"][0]["text"], "one");
    assert_eq!(answers[1]["id"], 2);
    assert_eq!(answers[1]["result"]["content"][0]["text"], "two");
    // Notifications alone: 202. Unreadable elements alone: 400 with their errors.
    let notes = json!([{"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": "x", "progress": 1}}]);
    assert_eq!(ep.post(&notes, headers.clone()).await.status(), StatusCode::ACCEPTED);
    let junk = ep.post(&json!([1, {"jsonrpc": "2.0"}]), headers).await;
    assert_eq!(junk.status(), StatusCode::BAD_REQUEST);
    let text = within("the body", junk.text()).await.expect("a body");
    let errors: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(errors.as_array().map(Vec::len), Some(2), "{errors}");
    assert!(
        errors
            .as_array()
            .into_iter()
            .flatten()
            .all(|e| e["error"]["code"] == -32600),
        "{errors}"
    );

    // A 2025-11-25 session, or no session: -32600, 400.
    let newer = ep.initialize().await;
    let batch = json!([call(3, "echo", json!({"text": "three"}))]);
    expect_error(
        ep.post(&batch, session_headers(&newer)).await,
        StatusCode::BAD_REQUEST,
        -32600,
        None,
    )
    .await;
    expect_error(
        ep.post(&batch, HeaderMap::new()).await,
        StatusCode::BAD_REQUEST,
        -32600,
        None,
    )
    .await;
    ep.stop().await;
}

#[tokio::test]
async fn a_request_cancelled_in_a_session_ends_its_post() {
    let ep = Endpoint::default().await;
    let session = ep.initialize().await;
    let waiting = ep.waiting.clone();
    let started = waiting.started.notified();
    let body = call(31, "wait", json!({}));
    let call = ep.post(&body, session_headers(&session));
    let cancel = async {
        started.await;
        let note = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 31}});
        let response = ep.post(&note, session_headers(&session)).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    };
    let (response, ()) = tokio::join!(call, cancel);
    // A cancelled request gets no JSON-RPC response; its POST ends with `202` and no body.
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(within("the body", response.text()).await.expect("a body"), "");
    assert!(
        waiting.cancelled.load(Ordering::SeqCst),
        "the handler saw its cancellation"
    );
    ep.stop().await;
}

#[tokio::test]
async fn streams_are_primed_by_the_negotiated_revision() {
    let ep = Endpoint::default().await;
    let mut body = call(41, "poll", json!({}));
    body["params"]["_meta"] = json!({"progressToken": "p"});
    // A 2025-11-25 session is primed whatever the request's header says (some clients send a
    // stale one): the stream ends early and the client resumes it.
    let session = ep.initialize().await;
    let mut headers = session_headers(&session);
    headers.insert("mcp-protocol-version", header("2025-03-26"));
    let mut events = Events::new(ep.post(&body, headers).await);
    assert!(within("the end", events.next()).await.is_none());
    assert!(events.last_id.is_some(), "a priming event");
    // An older session's stream is not primed, so it cannot be resumed: the handler's request
    // to end it early is not honoured, and the answer comes on it.
    let older = ep.initialize_at("2025-06-18").await;
    let mut headers = session_headers(&older);
    headers.insert("mcp-protocol-version", header("2025-06-18"));
    let mut events = Events::new(ep.post(&body, headers).await);
    let mut seen = Vec::new();
    while let Some(event) = within("an event", events.next()).await {
        seen.push(event.data);
    }
    let answer = seen.last().expect("events");
    assert_eq!(answer["id"], 41, "{seen:?}");
    assert_eq!(answer["result"]["content"][0]["text"], "polled (stream closed: true)");
    ep.stop().await;
}

#[tokio::test]
async fn a_stream_resumed_while_its_first_response_lingers_keeps_flowing() {
    let ep = Endpoint::default().await;
    let session = ep.initialize().await;
    // `count` streams at once; the first response is kept open (its client "lost" it) while
    // the stream is resumed elsewhere, then dropped: the resumed one must not lose its feed.
    let mut body = call(51, "count", json!({"steps": 2}));
    body["params"]["_meta"] = json!({"progressToken": "p"});
    let mut first = Events::new(ep.post(&body, session_headers(&session)).await);
    let event = within("the first event", first.next()).await.expect("an event");
    let id = event.id.clone().expect("an id");
    let mut resumed = Events::new(resume(&ep, &session, &id).await);
    drop(first);
    let mut seen = Vec::new();
    while let Some(event) = within("an event", resumed.next()).await {
        seen.push(event.data);
    }
    assert_eq!(seen.last().map(|m| m["id"].clone()), Some(json!(51)), "{seen:?}");
    ep.stop().await;
}

#[tokio::test]
async fn a_stream_method_call_is_streamed_only_once_it_needs_a_stream() {
    // `stream_after` is long enough for a quick call on a busy machine; the last case waits it out.
    let ep = Endpoint::start(HttpConfig {
        stream_methods: vec!["tools/call".into()],
        stream_after: Duration::from_secs(1),
        ..HttpConfig::default()
    })
    .await;
    let session = ep.initialize().await;
    // Answered within the wait: one JSON object.
    let response = ep
        .post(&call(61, "echo", json!({"text": "quick"})), session_headers(&session))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    assert_eq!(body["id"], 61, "{body}");
    assert_eq!(body["result"]["content"][0]["text"], "quick", "{body}");
    // A message before the answer starts the stream when it is sent: the server's ping.
    let mut events = Events::new(ep.post(&call(62, "ask", json!({})), session_headers(&session)).await);
    let ping = within("the ping", events.next()).await.expect("the ping");
    assert_eq!(ping.data["method"], "ping", "{:?}", ping.data);
    // Still running when the wait is over: a primed stream, with nothing else on it yet.
    let mut events = Events::new(ep.post(&call(63, "wait", json!({})), session_headers(&session)).await);
    let first = within("the priming event", events.response.chunk())
        .await
        .expect("reading the stream")
        .expect("a first chunk");
    let first = std::str::from_utf8(&first).expect("UTF-8");
    assert!(
        first.starts_with("id: ") && first.contains("\nretry: ") && first.ends_with("\ndata: \n\n"),
        "{first:?}"
    );
    ep.stop().await;
}
