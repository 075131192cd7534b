//! Raw frames in, raw answers out: the error codes of JSON-RPC 2.0 and MCP.

use portico_core::PeerConfig;
use serde_json::{Value, json};

use crate::lone_peer;

/// Feeds `frame` to a fresh peer and returns its one answer.
async fn answer(config: PeerConfig, frame: &str) -> Value {
    let (peer, _service, mut out) = lone_peer(config);
    peer.receive(frame).await;
    let text = tokio::time::timeout(std::time::Duration::from_secs(10), out.recv())
        .await
        .expect("an answer")
        .expect("the channel is open")
        .text;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("answer {text} is not JSON: {e}"))
}

async fn error_of(frame: &str) -> (Value, i64, String) {
    let v = answer(PeerConfig::default(), frame).await;
    assert_eq!(v["jsonrpc"], "2.0", "{v}");
    let code = v["error"]["code"].as_i64().unwrap_or_else(|| panic!("no error in {v}"));
    (
        v["id"].clone(),
        code,
        v["error"]["message"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test]
async fn malformed_json_is_a_parse_error_with_null_id() {
    for frame in ["{", "not json", "{\"jsonrpc\":\"2.0\",}", "{} trailing", ""] {
        let (id, code, _) = error_of(frame).await;
        assert_eq!(code, -32700, "{frame}");
        assert_eq!(id, Value::Null, "{frame}");
    }
}

#[tokio::test]
async fn invalid_requests_are_rejected_keeping_the_id_when_readable() {
    let cases: &[(&str, Value, &str)] = &[
        (r#"{"jsonrpc":"1.0","id":3,"method":"echo"}"#, json!(3), "jsonrpc"),
        (r#"{"id":4,"method":"echo"}"#, json!(4), "jsonrpc"),
        (r#"{"jsonrpc":"2.0","id":1.5,"method":"echo"}"#, Value::Null, "id"),
        (r#"{"jsonrpc":"2.0","id":null,"method":"echo"}"#, Value::Null, "id"),
        (r#"{"jsonrpc":"2.0","id":"a"}"#, json!("a"), "no `method`"),
        (
            r#"{"jsonrpc":"2.0","id":8,"method":"echo","result":1}"#,
            json!(8),
            "cannot carry",
        ),
        (
            r#"{"jsonrpc":"2.0","method":5,"id":9}"#,
            Value::Null,
            "not a JSON-RPC message",
        ),
        ("5", Value::Null, "not a JSON-RPC message"),
        ("[]", Value::Null, "empty batch"),
    ];
    for (frame, want_id, mentions) in cases {
        let (id, code, message) = error_of(frame).await;
        assert_eq!(code, -32600, "{frame}: {message}");
        assert_eq!(&id, want_id, "{frame}");
        assert!(
            message.contains(mentions),
            "{frame}: {message:?} should mention {mentions:?}"
        );
    }
}

#[tokio::test]
async fn unknown_methods_and_bad_params_get_their_codes() {
    let (id, code, message) = error_of(r#"{"jsonrpc":"2.0","id":"x","method":"nope"}"#).await;
    assert_eq!((id, code), (json!("x"), -32601));
    assert!(message.contains("nope"));
    let (_, code, message) = error_of(r#"{"jsonrpc":"2.0","id":1,"method":"bad_params","params":"seven"}"#).await;
    assert_eq!(code, -32602);
    assert!(message.contains("non-negative integer"), "{message}");
    let ok = answer(
        PeerConfig::default(),
        r#"{"jsonrpc":"2.0","id":2,"method":"bad_params","params":7}"#,
    )
    .await;
    assert_eq!(ok, json!({"jsonrpc": "2.0", "id": 2, "result": 7}));
}

#[tokio::test]
async fn a_handler_panic_fails_only_its_request() {
    let (peer, _service, mut out) = lone_peer(PeerConfig::default());
    peer.receive(r#"{"jsonrpc":"2.0","id":1,"method":"panic"}"#).await;
    let first: Value = serde_json::from_str(&out.recv().await.expect("answer").text).expect("JSON");
    assert_eq!(first["error"]["code"], -32603, "{first}");
    assert!(
        first["error"]["message"].as_str().unwrap_or_default().contains("boom"),
        "{first}"
    );
    peer.receive(r#"{"jsonrpc":"2.0","id":2,"method":"echo","params":{"still":"serving"}}"#)
        .await;
    let second: Value = serde_json::from_str(&out.recv().await.expect("answer").text).expect("JSON");
    assert_eq!(
        second,
        json!({"jsonrpc": "2.0", "id": 2, "result": {"still": "serving"}})
    );
}

#[tokio::test]
async fn batches_are_rejected_unless_the_revision_has_them() {
    let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"echo","params":1},{"jsonrpc":"2.0","method":"note"}]"#;
    let (id, code, message) = error_of(batch).await;
    assert_eq!((id, code), (Value::Null, -32600));
    assert!(message.contains("batches"), "{message}");

    let config = PeerConfig {
        batches: true,
        ..PeerConfig::default()
    };
    let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"echo","params":"a"},
        {"jsonrpc":"2.0","method":"note"},
        {"jsonrpc":"2.0","id":2,"method":"nope"},
        {"jsonrpc":"1.0","id":3,"method":"echo"},
        {"jsonrpc":"2.0","id":4,"method":"echo","params":"b"}]"#;
    let answers = answer(config, batch).await;
    let answers = answers
        .as_array()
        .unwrap_or_else(|| panic!("a batch answer is an array: {answers}"));
    let ids: Vec<&Value> = answers.iter().map(|a| &a["id"]).collect();
    assert_eq!(
        ids,
        [&json!(1), &json!(2), &json!(3), &json!(4)],
        "one answer per request, in order, none for the notification"
    );
    assert_eq!(answers[0]["result"], "a");
    assert_eq!(answers[1]["error"]["code"], -32601);
    assert_eq!(answers[2]["error"]["code"], -32600);
    assert_eq!(answers[3]["result"], "b");
}

#[tokio::test]
async fn a_duplicate_in_flight_id_is_rejected() {
    let (peer, _service, mut out) = lone_peer(PeerConfig::default());
    peer.receive(r#"{"jsonrpc":"2.0","id":5,"method":"slow"}"#).await;
    peer.receive(r#"{"jsonrpc":"2.0","id":5,"method":"echo"}"#).await;
    let v: Value = serde_json::from_str(&out.recv().await.expect("answer").text).expect("JSON");
    assert_eq!(v["id"], 5);
    assert_eq!(v["error"]["code"], -32600, "{v}");
    // Cancelling the slow one sends no response for it.
    peer.receive(r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":5}}"#)
        .await;
    peer.receive(r#"{"jsonrpc":"2.0","id":6,"method":"echo","params":6}"#)
        .await;
    let v: Value = serde_json::from_str(&out.recv().await.expect("answer").text).expect("JSON");
    assert_eq!(v["id"], 6, "the cancelled request must not be answered: {v}");
}

#[tokio::test]
async fn stray_responses_are_ignored() {
    let (peer, _service, mut out) = lone_peer(PeerConfig::default());
    peer.receive(r#"{"jsonrpc":"2.0","id":99,"result":{}}"#).await;
    peer.receive(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}"#)
        .await;
    // A broken response is dropped, not answered (that could ping-pong forever).
    peer.receive(r#"{"jsonrpc":"2.0","id":3,"result":1,"error":{"code":1,"message":"x"}}"#)
        .await;
    peer.receive(r#"{"jsonrpc":"2.0","result":1}"#).await;
    peer.receive(r#"{"jsonrpc":"2.0","id":1,"method":"echo","params":1}"#)
        .await;
    let v: Value = serde_json::from_str(&out.recv().await.expect("answer").text).expect("JSON");
    assert_eq!(
        v,
        json!({"jsonrpc": "2.0", "id": 1, "result": 1}),
        "nothing is sent for stray responses"
    );
}

/// Mutated frames (bytes flipped, cut, repeated, spliced from other frames) never panic the
/// decoder, and whatever is answered is a well-formed JSON-RPC message. Deterministic for the
/// default 20 000 rounds (a fixed seed); `PORTICO_FUZZ_SECONDS=600` runs it for ten minutes
/// instead, seeded from the clock (`cargo xtask fuzz`), and prints the seed and the count.
#[tokio::test]
async fn mutated_frames_never_break_the_peer() {
    let budget = std::env::var("PORTICO_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok());
    let deadline = budget.map(|s| std::time::Instant::now() + std::time::Duration::from_secs(s));
    let seed: u64 = match budget {
        Some(_) => {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        }
        None => 0x9e37_79b9_7f4a_7c15,
    };
    let seeds = [
        r#"{"jsonrpc":"2.0","id":1,"method":"echo","params":{"a":[1,2.5,null,"x"]}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}"#,
        r#"{"jsonrpc":"2.0","id":"s","result":{"content":[{"type":"text","text":"hi"}]}}"#,
        r#"{"jsonrpc":"2.0","id":2,"error":{"code":-32601,"message":"no","data":{"x":1}}}"#,
        r#"[{"jsonrpc":"2.0","id":3,"method":"echo"},{"jsonrpc":"2.0","method":"n"}]"#,
    ];
    let mut state: u64 = seed;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let config = PeerConfig {
        batches: true,
        ..PeerConfig::default()
    };
    let (peer, _service, mut out) = lone_peer(config);
    let mut round = 0usize;
    while deadline.map_or(round < 20_000, |d| {
        !round.is_multiple_of(1024) || std::time::Instant::now() < d
    }) {
        round += 1;
        let mut bytes = seeds[(next() as usize) % seeds.len()].as_bytes().to_vec();
        for _ in 0..1 + next() % 4 {
            let at = (next() as usize) % bytes.len().max(1);
            match next() % 5 {
                0 if !bytes.is_empty() => bytes[at] = next() as u8,
                1 => bytes.truncate(at),
                2 => bytes.insert(at, b"{}[],:\"\\0-1e9tfn"[(next() % 16) as usize]),
                3 => {
                    let other = seeds[(next() as usize) % seeds.len()].as_bytes();
                    let from = (next() as usize) % other.len();
                    bytes.splice(at..at, other[from..].iter().copied());
                }
                _ => {
                    let end = (at + 1 + (next() as usize) % 8).min(bytes.len());
                    let chunk = bytes[at..end].to_vec();
                    bytes.splice(at..at, chunk);
                }
            }
        }
        let frame = String::from_utf8_lossy(&bytes);
        // The decoder alone, on every round.
        let _ = portico_core::message::decode(&frame);
        // The whole peer, on some: answers must be well-formed.
        if round.is_multiple_of(20) {
            peer.receive(&frame).await;
            tokio::task::yield_now().await;
            while let Ok(portico_core::Outbound { text: answer, .. }) = out.try_recv() {
                let v: Value =
                    serde_json::from_str(&answer).unwrap_or_else(|e| panic!("answer {answer} to {frame}: {e}"));
                let items = v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]);
                for item in items {
                    assert_eq!(item["jsonrpc"], "2.0", "answer to {frame}: {item}");
                    assert!(item.get("result").is_some() != item.get("error").is_some(), "{item}");
                }
            }
        }
    }
    println!("fuzzed the decoder with {round} mutated frames (seed {seed:#x})");
}

/// Everything a handler sends while serving a request is marked as belonging to it, so an HTTP
/// transport can stream it on that request's response; other messages are not.
#[tokio::test]
async fn outbound_messages_name_the_request_they_belong_to() {
    let (peer, _service, mut out) = lone_peer(PeerConfig::default());
    peer.receive(r#"{"jsonrpc":"2.0","id":"r1","method":"progress","params":{"_meta":{"progressToken":7}}}"#)
        .await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        let message = out.recv().await.expect("a message");
        let v: Value = serde_json::from_str(&message.text).expect("JSON");
        seen.push((
            v.get("method")
                .and_then(Value::as_str)
                .unwrap_or("response")
                .to_string(),
            message.related,
        ));
    }
    let r1 = Some(portico_core::RequestId::from("r1"));
    assert_eq!(
        seen,
        [
            ("notifications/progress".to_string(), r1.clone()),
            ("notifications/progress".to_string(), r1.clone()),
            ("notifications/progress".to_string(), r1.clone()),
            ("response".to_string(), r1),
        ]
    );
    peer.handle()
        .notify("notifications/message", &json!({"level": "info", "data": "x"}))
        .await
        .expect("sent");
    assert_eq!(out.recv().await.expect("a message").related, None);
    peer.receive("{").await;
    assert_eq!(
        out.recv().await.expect("a message").related,
        None,
        "a parse error has no request"
    );
}

#[tokio::test]
async fn a_request_reaches_the_transport_with_its_parts_only_when_asked() {
    for beside in [false, true] {
        let config = PeerConfig {
            requests_beside: beside,
            ..PeerConfig::default()
        };
        let (peer, _service, mut out) = lone_peer(config);
        let handle = peer.handle().clone();
        let call = tokio::spawn(async move { handle.request::<Value, Value>("ask", &json!({"q": [1, 2]})).await });
        let sent = out.recv().await.expect("the request");
        let text: Value = serde_json::from_str(&sent.text).expect("JSON");
        match sent.request.as_deref() {
            Some(request) => {
                assert!(beside);
                assert_eq!(serde_json::to_value(&request.id).expect("id"), text["id"]);
                assert_eq!(request.method, "ask");
                let params = request.params.as_deref().map(|p| p.get());
                assert_eq!(params, Some(r#"{"q":[1,2]}"#));
                assert_eq!(text["params"], json!({"q": [1, 2]}));
            }
            None => assert!(!beside, "requests_beside is on: {}", sent.text),
        }
        call.abort();
        // A notification never carries a request.
        peer.handle().notify("note", &json!({})).await.expect("sent");
        let mut next = out.recv().await.expect("a message");
        while next.text.contains("notifications/cancelled") {
            next = out.recv().await.expect("a message");
        }
        assert!(next.request.is_none(), "{}", next.text);
    }
}

#[test]
fn a_result_frame_is_the_envelope_serde_writes() {
    use portico_core::RequestId;
    use portico_core::message::encode_result;
    let result = portico_core::JsonText::parse(r#"{"content":[],"x":"a\"b"}"#.into()).unwrap();
    for id in [
        RequestId::Number(7),
        RequestId::Number(-42),
        RequestId::Number(i64::MAX),
        RequestId::String("abc".into()),
        RequestId::String("quo\"te \\ é \u{1}".into()),
    ] {
        let text = encode_result(&id, &result);
        let expected = format!(
            r#"{{"jsonrpc":"2.0","id":{},"result":{}}}"#,
            serde_json::to_string(&id).unwrap(),
            result.get()
        );
        assert_eq!(text, expected, "id {id}");
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["id"], serde_json::to_value(&id).unwrap());
    }
}

#[test]
fn request_and_notification_frames_are_the_envelopes_serde_writes() {
    use portico_core::RequestId;
    use portico_core::message::{encode_notification, encode_request};
    #[derive(serde::Serialize)]
    struct Envelope<'a> {
        jsonrpc: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a RequestId>,
        method: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        params: Option<&'a serde_json::value::RawValue>,
    }
    let params = serde_json::value::RawValue::from_string(r#"{"name":"x","arguments":{"q":"a\"b"}}"#.into()).unwrap();
    let ids = [
        RequestId::Number(0),
        RequestId::Number(i64::MIN),
        RequestId::String("r-1".into()),
        RequestId::String("quo\"te \\ é \u{1f}\u{7f}".into()),
    ];
    for method in ["tools/call", "notifications/progress", "odd \"method\" \n", "ünïcode"] {
        for params in [None, Some(&*params)] {
            let expected = serde_json::to_string(&Envelope {
                jsonrpc: "2.0",
                id: None,
                method,
                params,
            })
            .unwrap();
            assert_eq!(encode_notification(method, params), expected);
            for id in &ids {
                let expected = serde_json::to_string(&Envelope {
                    jsonrpc: "2.0",
                    id: Some(id),
                    method,
                    params,
                })
                .unwrap();
                assert_eq!(encode_request(id, method, params), expected, "{method} {id}");
            }
        }
    }
}

#[tokio::test]
async fn requests_carry_the_extensions_they_were_received_with() {
    use portico_core::Extensions;
    use portico_core::message::{Inbound, decode};

    use crate::Caller;

    let (peer, _service, mut out) = lone_peer(PeerConfig {
        batches: true,
        ..PeerConfig::default()
    });
    let ada = Extensions::new().with(Caller("ada".into()));
    let message = |frame: &str| match decode(frame) {
        Inbound::Single(Ok(message)) => message,
        _ => panic!("{frame} is a message"),
    };
    let mut answers = Vec::new();
    peer.receive_message_with(message(r#"{"jsonrpc":"2.0","id":1,"method":"whoami"}"#), ada.clone())
        .await;
    peer.receive_with(
        r#"[{"jsonrpc":"2.0","id":2,"method":"whoami"},{"jsonrpc":"2.0","id":3,"method":"whoami"}]"#,
        Extensions::new().with(Caller("bob".into())),
    )
    .await;
    peer.receive(r#"{"jsonrpc":"2.0","id":4,"method":"whoami"}"#).await;
    peer.receive_alone_with(message(r#"{"jsonrpc":"2.0","id":5,"method":"whoami"}"#), ada)
        .await;
    while answers.len() < 4 {
        match out.try_recv() {
            Ok(outbound) => answers.push(serde_json::from_str::<Value>(&outbound.text).expect("JSON")),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
        }
    }
    let by_id = |id: i64| {
        answers
            .iter()
            .find_map(|a| match a {
                Value::Array(batch) => batch.iter().find(|b| b["id"] == id).map(|b| b["result"].clone()),
                single if single["id"] == id => Some(single["result"].clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no answer {id} in {answers:?}"))
    };
    assert_eq!(by_id(1), json!("ada"));
    assert_eq!(by_id(2), json!("bob"));
    assert_eq!(by_id(3), json!("bob"));
    assert_eq!(by_id(4), Value::Null, "a request received without extensions has none");
    assert_eq!(by_id(5), json!("ada"));
}

/// A request of ours waiting on `peer` (with a timeout no test waits for: an answer that comes
/// is the test's doing), once it was sent.
async fn waiting(
    peer: &portico_core::Peer<std::sync::Arc<crate::TestService>>,
    out: &mut tokio::sync::mpsc::Receiver<portico_core::Outbound>,
) -> tokio::task::JoinHandle<Result<Value, portico_core::PeerError>> {
    let handle = peer.handle().clone();
    let call = tokio::spawn(async move {
        let raw = handle
            .request_raw("echo", None, Some(std::time::Duration::from_secs(3600)))
            .await?;
        Ok(serde_json::from_str(raw.get()).expect("JSON"))
    });
    let sent = next(out).await;
    assert_eq!(sent["method"], "echo", "{sent}");
    call
}

/// The next message `out` carries, as JSON.
async fn next(out: &mut tokio::sync::mpsc::Receiver<portico_core::Outbound>) -> Value {
    let text = tokio::time::timeout(std::time::Duration::from_secs(10), out.recv())
        .await
        .expect("a message")
        .expect("the channel is open")
        .text;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text} is not JSON: {e}"))
}

/// The error a waiting request ended with, which must be the unreadable-message one.
async fn unreadable(call: tokio::task::JoinHandle<Result<Value, portico_core::PeerError>>) -> String {
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(10), call)
        .await
        .expect("the request ends")
        .expect("no panic");
    match outcome {
        Err(portico_core::PeerError::Remote(error)) => {
            assert_eq!(error.code, -32700, "{error:?}");
            assert_eq!(
                error
                    .data
                    .as_ref()
                    .and_then(|d| d["io.portico/transport"]["unreadable"].as_bool()),
                Some(true),
                "{error:?}"
            );
            error.message
        }
        other => panic!("expected the unreadable-message error, got {other:?}"),
    }
}

#[tokio::test]
async fn on_a_shared_stream_an_unreadable_frame_fails_the_requests_waiting_and_cancels_them() {
    let (peer, _service, mut out) = crate::lone_peer(PeerConfig::default());
    let (first, second) = (waiting(&peer, &mut out).await, waiting(&peer, &mut out).await);
    peer.receive_shared("this is not JSON {").await;
    for call in [first, second] {
        let message = unreadable(call).await;
        assert!(message.starts_with("invalid JSON: "), "{message}");
    }
    // The frame is answered as ever, and the other side told both requests are cancelled.
    let mut sent = Vec::new();
    for _ in 0..3 {
        sent.push(next(&mut out).await);
    }
    sent.sort_by_key(|m| m["params"]["requestId"].as_i64());
    assert_eq!(sent[0]["error"]["code"], -32700, "{sent:?}");
    for (message, id) in sent[1..].iter().zip([1, 2]) {
        assert_eq!(message["method"], "notifications/cancelled", "{sent:?}");
        assert_eq!(message["params"]["requestId"], id, "{sent:?}");
    }

    // The connection goes on: the next request is answered.
    let call = waiting(&peer, &mut out).await;
    peer.receive(r#"{"jsonrpc":"2.0","id":3,"result":"three"}"#).await;
    assert_eq!(call.await.expect("no panic").expect("answered"), json!("three"));

    // JSON that is no message, and no readable id, is unreadable the same way.
    let call = waiting(&peer, &mut out).await;
    peer.receive_shared(r#"{"jsonrpc":"2.0","id":1.5,"result":{}}"#).await;
    let message = unreadable(call).await;
    assert!(message.starts_with("not a JSON-RPC message: "), "{message}");
}

#[tokio::test]
async fn a_broken_response_fails_the_request_it_names_on_any_transport() {
    let (peer, _service, mut out) = crate::lone_peer(PeerConfig::default());
    let call = waiting(&peer, &mut out).await;
    // Not `receive_shared`: the id says whose answer it was.
    peer.receive(r#"{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"x"}}"#)
        .await;
    let message = unreadable(call).await;
    assert!(message.contains("both `result` and `error`"), "{message}");
}

#[tokio::test]
async fn off_a_shared_stream_an_unreadable_frame_is_only_answered() {
    // A frame that names no request, where each answer has a stream of its own (Streamable
    // HTTP's session stream): the requests waiting are none of its business.
    let (peer, _service, mut out) = crate::lone_peer(PeerConfig::default());
    let call = waiting(&peer, &mut out).await;
    peer.receive("this is not JSON {").await;
    assert_eq!(next(&mut out).await["error"]["code"], -32700);
    peer.receive(r#"{"jsonrpc":"2.0","id":1,"result":"late"}"#).await;
    assert_eq!(call.await.expect("no panic").expect("answered"), json!("late"));
    // A broken request of the other side is its own, even on a shared stream: answered, and
    // nothing of ours fails.
    let call = waiting(&peer, &mut out).await;
    peer.receive_shared(r#"{"jsonrpc":"1.0","id":2,"method":"echo"}"#).await;
    assert_eq!(next(&mut out).await["error"]["code"], -32600);
    peer.receive(r#"{"jsonrpc":"2.0","id":2,"result":"mine"}"#).await;
    assert_eq!(call.await.expect("no panic").expect("answered"), json!("mine"));
}

#[test]
fn a_mention_is_found_wherever_it_is_and_an_escape_may_spell_any_name() {
    use portico_core::message::{Mention, may_name};
    static TOKEN: Mention = Mention::new("progressToken");
    static TASK: Mention = Mention::new(r#""task""#);
    // Searched twice: the searcher is built on the first use, and kept.
    for _ in 0..2 {
        assert!(TOKEN.is_in(r#"{"_meta":{"progressToken":1}}"#));
        assert!(TOKEN.is_in("progressToken"));
        assert!(!TOKEN.is_in(r#"{"_meta":{"progresstoken":1}}"#));
        assert!(!TOKEN.is_in(""));
        assert!(may_name(r#"{"a":1,"task":{}}"#, &[&TOKEN, &TASK]));
        assert!(!may_name(r#"{"a":1,"tasks":{}}"#, &[&TOKEN, &TASK]));
        // `\u0074ask` spells "task": the text must be read to know.
        assert!(may_name(r#"{"\u0074ask":{}}"#, &[&TASK]));
        assert!(!may_name(r#"{"name":"x"}"#, &[]));
    }
}
