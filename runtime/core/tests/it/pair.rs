//! Two peers back to back: correlation, timeouts, cancellation, progress, server→client
//! requests, bounded concurrency, closing.

use std::sync::atomic::Ordering;
use std::time::Duration;

use portico_core::{PeerConfig, PeerError};
use serde_json::{Value, json};

use crate::{wait_for, wired};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_get_their_own_answers() {
    let (client, _, _server, _) = wired(PeerConfig::default());
    let mut tasks = Vec::new();
    for i in 0..200 {
        let handle = client.handle().clone();
        tasks.push(tokio::spawn(async move {
            let answer: Value = handle.request("echo", &json!({"n": i})).await.expect("an answer");
            assert_eq!(answer, json!({"n": i}));
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_request_is_cancelled_on_the_other_side() {
    let (client, _, _server, server_service) = wired(PeerConfig::default());
    let err = client
        .handle()
        .request_raw("slow", None, Some(Duration::from_millis(100)))
        .await
        .expect_err("times out");
    assert!(
        matches!(err, PeerError::Timeout { ref method, .. } if method == "slow"),
        "{err:?}"
    );
    let seen = server_service.clone();
    wait_for(&server_service.cancel_seen, move || {
        seen.saw_cancel.load(Ordering::SeqCst)
    })
    .await;
}

#[tokio::test]
async fn dropping_a_request_cancels_it() {
    let (client, _, _server, server_service) = wired(PeerConfig::default());
    let handle = client.handle().clone();
    let call = tokio::spawn(async move { handle.request_raw("slow", None, None).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    call.abort();
    let seen = server_service.clone();
    wait_for(&server_service.cancel_seen, move || {
        seen.saw_cancel.load(Ordering::SeqCst)
    })
    .await;
}

#[tokio::test]
async fn remote_errors_and_panics_come_back_as_errors() {
    let (client, _, _server, _) = wired(PeerConfig::default());
    let err = client
        .handle()
        .request::<_, Value>("nope", &json!({}))
        .await
        .expect_err("unknown");
    assert!(matches!(err, PeerError::Remote(ref e) if e.code == -32601), "{err:?}");
    let err = client
        .handle()
        .request::<_, Value>("panic", &json!({}))
        .await
        .expect_err("panics");
    assert!(matches!(err, PeerError::Remote(ref e) if e.code == -32603), "{err:?}");
    let ok: Value = client
        .handle()
        .request("echo", &json!("after"))
        .await
        .expect("still serving");
    assert_eq!(ok, "after");
    let err = client
        .handle()
        .request::<_, u32>("echo", &json!("not a number"))
        .await
        .expect_err("wrong type");
    assert!(matches!(err, PeerError::Decode { .. }), "{err:?}");
}

#[tokio::test]
async fn progress_reaches_the_requester() {
    let (client, client_service, _server, _) = wired(PeerConfig::default());
    let done: Value = client
        .handle()
        .request("progress", &json!({"_meta": {"progressToken": "tok-1"}}))
        .await
        .expect("answer");
    assert_eq!(done, "done");
    let notes = client_service.clone();
    wait_for(&client_service.noted, move || {
        notes.notes.lock().expect("lock").len() >= 3
    })
    .await;
    let notes = client_service.notes.lock().expect("lock").clone();
    assert_eq!(notes.len(), 3);
    for (i, (method, params)) in notes.iter().enumerate() {
        assert_eq!(method, "notifications/progress");
        let p: Value = serde_json::from_str(params).expect("JSON");
        assert_eq!(
            p,
            json!({"progressToken": "tok-1", "progress": (i + 1) as f64, "total": 3.0, "message": "step"})
        );
    }
    // Without a token, no progress is sent.
    let _: Value = client.handle().request("progress", &json!({})).await.expect("answer");
    assert_eq!(client_service.notes.lock().expect("lock").len(), 3);
}

#[tokio::test]
async fn a_handler_can_ask_the_other_side() {
    let (client, _, _server, _) = wired(PeerConfig::default());
    let answer: Value = client.handle().request("ask", &json!({})).await.expect("answer");
    assert_eq!(answer, json!({"client said": "pong"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_handlers_are_bounded() {
    let (client, _, _server, server_service) = wired(PeerConfig {
        max_in_flight: 2,
        ..PeerConfig::default()
    });
    let calls = (0..12).map(|_| {
        let handle = client.handle().clone();
        tokio::spawn(async move { handle.request::<_, bool>("count", &json!({})).await })
    });
    for call in calls.collect::<Vec<_>>() {
        assert!(call.await.expect("task").expect("answer"));
    }
    let max = server_service.max_active.load(Ordering::SeqCst);
    assert!((1..=2).contains(&max), "at most 2 handlers at once, saw {max}");
}

#[tokio::test]
async fn closing_fails_waiting_requests_and_refuses_new_ones() {
    let (client, _, _server, _) = wired(PeerConfig::default());
    let handle = client.handle().clone();
    let call = tokio::spawn(async move { handle.request_raw("slow", None, None).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    client.close();
    let err = call.await.expect("task").expect_err("closed");
    assert!(matches!(err, PeerError::Closed), "{err:?}");
    let err = client
        .handle()
        .request_raw("echo", None, None)
        .await
        .expect_err("closed");
    assert!(matches!(err, PeerError::Closed), "{err:?}");
}
