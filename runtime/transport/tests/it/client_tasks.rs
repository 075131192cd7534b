//! No task outlives a client: whatever the server does (garbage, a wrong id, a stream cut short,
//! silence, going away in the middle of a session), once the client core is closed the tokio
//! runtime it ran on holds exactly the tasks it held before. The servers run on a runtime of
//! their own, in another thread, so the count is the client's alone.

use std::time::Duration;

use axum::Router;
use axum::routing::post;
use portico_core::client::{ClientConfig, Protocol, RequestOptions};
use portico_core::server::{Context, Server, tool};
use portico_transport::http::client::{HttpClientConfig, connect};
use portico_transport::http::{HttpConfig, StreamableHttp, serve};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::http_client::{Nothing, builder, misbehave};
use crate::within;

/// A router served on 127.0.0.1:0 by a runtime in a thread of its own; stopped on drop.
struct Elsewhere {
    url: String,
    stop: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Elsewhere {
    fn start(router: impl FnOnce() -> Router + Send + 'static) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("non-blocking");
        let url = format!("http://{}/mcp", listener.local_addr().expect("address"));
        let stop = CancellationToken::new();
        let until = stop.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("server runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                // Stopping does not wait for requests in flight (`silent` never ends): the
                // runtime is dropped with them, which is what a crashed server looks like.
                tokio::select! {
                    _ = serve(listener, router(), std::future::pending()) => {}
                    () = until.cancelled() => {}
                }
            });
        });
        Self {
            url,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Elsewhere {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Waits until the current runtime holds at most `baseline` live tasks; fails the test (with
/// the count) if that never happens.
async fn settled(baseline: usize, after: &str) {
    let metrics = tokio::runtime::Handle::current().metrics();
    let wait = async {
        while metrics.num_alive_tasks() > baseline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), wait).await.is_err() {
        panic!(
            "{after}: {} tasks still alive, {baseline} before the client existed",
            metrics.num_alive_tasks()
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_closed_client_leaves_no_task_behind_whatever_the_server_did() {
    let baseline = tokio::runtime::Handle::current().metrics().num_alive_tasks();

    // A 2026-07-28 server that misbehaves in every way it can; some calls are abandoned by
    // their callers, some end by their timeout, some are still waiting when the client closes.
    let misbehaving = Elsewhere::start(|| Router::new().route("/mcp", post(misbehave)));
    let client = within(
        "connect",
        builder()
            .protocol(Protocol::Stateless)
            .config(ClientConfig {
                request_timeout: Duration::from_secs(3600),
                ..ClientConfig::default()
            })
            .connect(|service| {
                connect(
                    &misbehaving.url,
                    service,
                    HttpClientConfig {
                        max_message_bytes: 2048,
                        ..HttpClientConfig::default()
                    },
                )
            }),
    )
    .await
    .expect("connects");
    for name in [
        "garbage",
        "wrong_id",
        "accepted",
        "cut_short",
        "bad_event",
        "not_a_message",
        "plain_500",
        "huge",
        "refused",
    ] {
        let outcome = within(name, client.call_tool(name, json!({}))).await;
        assert!(outcome.is_err(), "{name}: {outcome:?}");
    }
    let short = RequestOptions::new().timeout(Duration::from_millis(50));
    let timed_out =
        futures_util::future::join_all((0..8).map(|_| client.call_tool_with("silent", json!({}), &short))).await;
    assert!(timed_out.iter().all(Result::is_err));
    // Abandoned by their callers (dropped futures), and still waiting when the client closes.
    for _ in 0..8 {
        let _ = tokio::time::timeout(Duration::from_millis(5), client.call_tool("silent", json!({}))).await;
    }
    // Still waiting when the client closes: closing ends them with an error.
    let waiting = futures_util::future::join_all((0..8).map(|_| client.call_tool("silent", json!({}))));
    let close = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        client.close().await
    };
    let (outcomes, closed) = within("close with calls in flight", async { tokio::join!(waiting, close) }).await;
    closed.expect("close");
    assert!(outcomes.iter().all(Result::is_err), "{outcomes:?}");
    drop(client);
    settled(baseline, "after the misbehaving server").await;
    drop(misbehaving);

    // A 2025-11-25 session (with its GET stream) whose server goes away in the middle.
    let server = Server::builder("leaks", "1.0.0")
        .tool(tool(
            "echo",
            "Echoes",
            |_cx: Context, _a: Nothing| async move { "echo" },
        ))
        .build();
    let session_server =
        Elsewhere::start(move || StreamableHttp::new(move || server.connection(), HttpConfig::default()).router());
    let client = within(
        "connect",
        builder()
            .protocol(Protocol::Stateful("2025-11-25"))
            .connect(|service| connect(&session_server.url, service, HttpClientConfig::default())),
    )
    .await
    .expect("connects");
    let answer = within("echo", client.call_tool("echo", json!({}))).await.expect("echo");
    assert_eq!(answer.content.len(), 1);
    drop(session_server);
    let gone = within("echo after the server went away", client.call_tool("echo", json!({}))).await;
    assert!(gone.is_err(), "{gone:?}");
    let _ = within("close", client.close()).await;
    drop(client);
    settled(baseline, "after the session whose server went away").await;
}
