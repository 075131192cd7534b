//! The legacy HTTP+SSE client ([`portico_transport::http::legacy_sse_client`]) against the real
//! server end over TCP on 127.0.0.1 (merged with Streamable HTTP on one listener): 2024-11-05
//! and 2025-11-25 sessions with progress and a server→client request, a 2026-07-28 request on
//! the same connection, a POST refused (`413`) failing its request alone, the server going
//! away mid-call; and, against small hand-made servers, what the real one never does: an
//! endpoint of another origin, no endpoint event first, a forgotten session, and what a
//! shutdown sends.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use futures_util::StreamExt;
use portico_core::PeerError;
use portico_transport::http::legacy_sse::{LegacySse, LegacySseConfig};
use portico_transport::http::legacy_sse_client::{
    self, LegacySseClient, LegacySseClientConfig, LegacySseConnectError, http_status,
};
use portico_transport::http::{HttpConfig, StreamableHttp, serve};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::within;
use crate::ws_client::{
    ClientService, call, client_test_server, modern_meta, mute_server, patient_peer, scenario, text,
};

/// Streamable HTTP at `/mcp` and legacy HTTP+SSE at `/sse` + `/messages`, serving
/// [`client_test_server`].
struct Endpoint {
    base: String,
    started: Arc<Notify>,
    shutdown: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

impl Endpoint {
    async fn start(mut config: LegacySseConfig) -> Self {
        let started = Arc::new(Notify::new());
        let server = client_test_server(started.clone());
        let http = HttpConfig::default();
        let shutdown = http.shutdown.clone();
        config.shutdown = shutdown.clone();
        let made = server.clone();
        let app = StreamableHttp::new(move || made.connection(), http)
            .router()
            .merge(LegacySse::new(move || server.connection(), config).router());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let task = tokio::spawn(serve(listener, app, shutdown.clone().cancelled_owned()));
        Self {
            base,
            started,
            shutdown,
            task,
        }
    }

    async fn default() -> Self {
        Self::start(LegacySseConfig::default()).await
    }

    async fn connect(&self) -> (LegacySseClient<ClientService>, mpsc::Receiver<Value>) {
        let (service, notes) = ClientService::new();
        let url = format!("{}/sse", self.base);
        let client = within("connecting", legacy_sse_client::connect(&url, service, patient()))
            .await
            .expect("connected");
        (client, notes)
    }

    async fn stop(self) {
        self.shutdown.cancel();
        within("the server stops", self.task)
            .await
            .expect("the server task")
            .expect("serve");
    }
}

fn patient() -> LegacySseClientConfig {
    LegacySseClientConfig {
        peer: patient_peer(),
        ..LegacySseClientConfig::default()
    }
}

#[tokio::test]
async fn legacy_sse_client_serves_both_revisions_with_progress_and_server_requests() {
    let endpoint = Endpoint::default().await;
    for revision in ["2024-11-05", "2025-11-25"] {
        let (client, mut notes) = endpoint.connect().await;
        let messages = format!("{}/messages?sessionId=", endpoint.base);
        assert!(client.endpoint().starts_with(&messages), "{}", client.endpoint());
        scenario(client.peer().handle(), &mut notes, revision, true).await;
        within("shutting down", client.shutdown()).await;
    }
    endpoint.stop().await;
}

#[tokio::test]
async fn legacy_sse_client_fails_a_waiting_request_when_the_server_goes_away() {
    let endpoint = Endpoint::default().await;
    let (client, _notes) = endpoint.connect().await;
    let handle = client.peer().handle().clone();
    let started = endpoint.started.notified();
    let waiting = tokio::spawn(async move {
        handle
            .request::<_, Value>(
                "tools/call",
                &json!({"name": "wait", "arguments": {}, "_meta": modern_meta()}),
            )
            .await
    });
    within("the call starts", started).await;
    // The server shuts down: every stream ends.
    endpoint.shutdown.cancel();
    let outcome = within("the waiting request ends", waiting).await.expect("the task");
    assert!(matches!(outcome, Err(PeerError::Closed)), "{outcome:?}");
    within("the client sees the end", client.closed()).await;
    let later = client.peer().handle().request::<_, Value>("ping", &json!({})).await;
    assert!(matches!(later, Err(PeerError::Closed)), "{later:?}");
    within("the server stops", endpoint.task)
        .await
        .expect("the server task")
        .expect("serve");
}

#[tokio::test]
async fn legacy_sse_client_fails_a_refused_post_and_goes_on() {
    let endpoint = Endpoint::start(LegacySseConfig {
        max_body_bytes: 512,
        ..LegacySseConfig::default()
    })
    .await;
    let (client, _notes) = endpoint.connect().await;
    let handle = client.peer().handle();
    let refused = within(
        "the refused request",
        handle.request::<_, Value>(
            "tools/call",
            &json!({"name": "echo", "arguments": {"text": "x".repeat(2000)}, "_meta": modern_meta()}),
        ),
    )
    .await;
    match refused {
        Err(PeerError::Remote(error)) => {
            assert_eq!(error.code, -32600, "{error:?}");
            assert_eq!(http_status(&error), Some(413), "{error:?}");
            assert!(error.message.contains("limit of 512 bytes"), "{}", error.message);
        }
        other => panic!("expected the POST's refusal, got {other:?}"),
    }
    // That message alone failed: the connection goes on.
    let echoed = call(
        handle,
        json!({"name": "echo", "arguments": {"text": "small"}, "_meta": modern_meta()}),
    )
    .await;
    assert_eq!(text(&echoed), "small");
    within("shutting down", client.shutdown()).await;
    endpoint.stop().await;
}

#[tokio::test]
async fn legacy_sse_client_reports_a_refused_stream_and_refuses_urls_it_cannot_serve() {
    let endpoint = Endpoint::default().await;
    // Streamable HTTP's GET without a session is 405.
    let (service, _notes) = ClientService::new();
    let url = format!("{}/mcp", endpoint.base);
    let refused = within("connecting", legacy_sse_client::connect(&url, service, patient())).await;
    match refused {
        Err(LegacySseConnectError::Refused { status, message }) => {
            assert_eq!(status, 405);
            assert!(!message.is_empty());
        }
        other => panic!("expected a refusal, got {:?}", other.err()),
    }
    endpoint.stop().await;

    // With the `tls` feature (this test crate has it) https:// is tried: nobody listens there.
    let (service, _notes) = ClientService::new();
    let refused = legacy_sse_client::connect("https://127.0.0.1:1/sse", service, patient())
        .await
        .err()
        .expect("refused");
    assert!(matches!(refused, LegacySseConnectError::Http { .. }), "{refused}");
}

/// Sends `()` when dropped: tells a test that a hand-made stream is gone.
struct Dropped(Option<oneshot::Sender<()>>);

impl Drop for Dropped {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

/// A hand-made legacy server on 127.0.0.1: `GET /sse` answers `first` (raw event-stream
/// text) and then stays open until the client drops it; `POST /messages` hands its body to
/// `posts` and answers `202`. `messages` replaces that route (by the real server's, say).
struct HandMade {
    base: String,
    posts: mpsc::Receiver<String>,
    stream_dropped: oneshot::Receiver<()>,
    shutdown: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

impl HandMade {
    async fn start(first: &'static str, messages: Option<Router>) -> Self {
        let (dropped_tx, stream_dropped) = oneshot::channel();
        let dropped = Arc::new(Mutex::new(Some(dropped_tx)));
        let sse = get(move || {
            let guard = Dropped(dropped.lock().expect("lock").take());
            async move {
                let events = futures_util::stream::once(async move { Ok::<_, Infallible>(Bytes::from(first)) })
                    .chain(futures_util::stream::pending())
                    .map(move |chunk| {
                        let _held = &guard;
                        chunk
                    });
                Response::builder()
                    .header(header::CONTENT_TYPE, "text/event-stream")
                    .body(Body::from_stream(events))
                    .expect("a response")
            }
        });
        let (posts_tx, posts) = mpsc::channel(16);
        let app = Router::new().route("/sse", sse);
        let app = match messages {
            Some(messages) => app.merge(messages),
            None => app.route(
                "/messages",
                post(move |body: String| {
                    let posts = posts_tx.clone();
                    async move {
                        let _ = posts.send(body).await;
                        StatusCode::ACCEPTED
                    }
                }),
            ),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve(listener, app, shutdown.clone().cancelled_owned()));
        Self {
            base,
            posts,
            stream_dropped,
            shutdown,
            task,
        }
    }

    async fn connect(&self) -> Result<LegacySseClient<ClientService>, LegacySseConnectError> {
        let (service, _notes) = ClientService::new();
        let url = format!("{}/sse", self.base);
        within("connecting", legacy_sse_client::connect(&url, service, patient())).await
    }

    async fn stop(self) {
        self.shutdown.cancel();
        within("the server stops", self.task)
            .await
            .expect("the server task")
            .expect("serve");
    }
}

#[tokio::test]
async fn legacy_sse_client_refuses_an_endpoint_of_another_origin() {
    for first in [
        "event: endpoint\ndata: http://evil.example/messages?sessionId=1\n\n",
        // Same host, another port: another origin.
        "event: endpoint\ndata: //127.0.0.1:1/messages?sessionId=1\n\n",
    ] {
        let server = HandMade::start(first, None).await;
        match server.connect().await {
            Err(LegacySseConnectError::CrossOrigin { endpoint, origin }) => {
                assert!(!endpoint.starts_with(&server.base), "{endpoint}");
                assert_eq!(origin, server.base);
            }
            other => panic!("{first:?}: expected a cross-origin refusal, got {:?}", other.err()),
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn legacy_sse_client_needs_the_endpoint_event_first() {
    let server = HandMade::start("event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"x\"}\n\n", None).await;
    match server.connect().await {
        Err(LegacySseConnectError::NoEndpoint { reason }) => {
            assert!(reason.contains("before the endpoint event"), "{reason}");
        }
        other => panic!("expected no endpoint, got {:?}", other.err()),
    }
    server.stop().await;
}

#[tokio::test]
async fn legacy_sse_client_closes_when_the_server_forgets_the_session() {
    // The real server's messages route, and a stream naming a session it never had: its POSTs
    // are answered 404.
    let started = Arc::new(Notify::new());
    let real = client_test_server(started);
    let config = LegacySseConfig {
        sse_path: "/real-sse".into(),
        ..LegacySseConfig::default()
    };
    let messages = LegacySse::new(move || real.connection(), config).router();
    let mut server = HandMade::start(
        "event: endpoint\ndata: /messages?sessionId=forgotten\n\n",
        Some(messages),
    )
    .await;
    let client = server.connect().await.expect("connected");
    let outcome = within(
        "the request fails",
        client.peer().handle().request::<_, Value>("tools/list", &json!({})),
    )
    .await;
    assert!(matches!(outcome, Err(PeerError::Closed)), "{outcome:?}");
    within("the client sees the end", client.closed()).await;
    within("the stream is dropped", &mut server.stream_dropped)
        .await
        .expect("dropped");
    drop(client);
    server.stop().await;
}

#[tokio::test]
async fn legacy_sse_client_shutdown_posts_what_is_queued_then_drops_the_stream() {
    let mut server = HandMade::start("event: endpoint\ndata: /messages\n\n", None).await;
    let client = server.connect().await.expect("connected");
    assert_eq!(client.endpoint(), format!("{}/messages", server.base));
    client
        .peer()
        .handle()
        .notify("notifications/initialized", &json!({}))
        .await
        .expect("queued");
    within("shutting down", client.shutdown()).await;
    let posted = within("the POST", server.posts.recv()).await.expect("a POST");
    let posted: Value = serde_json::from_str(&posted).expect("JSON");
    assert_eq!(posted["method"], "notifications/initialized");
    within("the stream is dropped", &mut server.stream_dropped)
        .await
        .expect("dropped");
    server.stop().await;
}

#[tokio::test]
async fn legacy_sse_client_waits_for_the_endpoint_event_within_the_timeout() {
    let config = || LegacySseClientConfig {
        connect_timeout: Duration::from_millis(50),
        ..LegacySseClientConfig::default()
    };
    // A stream that stays open with keep-alives only, and a server that never answers at all.
    let server = HandMade::start(":\n\n", None).await;
    let (mute, task) = mute_server().await;
    for url in [format!("{}/sse", server.base), format!("http://{mute}/sse")] {
        let (service, _notes) = ClientService::new();
        let outcome = within("connecting", legacy_sse_client::connect(&url, service, config())).await;
        match outcome {
            Err(LegacySseConnectError::Timeout { after, .. }) => assert_eq!(after, Duration::from_millis(50)),
            other => panic!("{url}: expected a timeout, got {:?}", other.err()),
        }
    }
    task.abort();
    server.stop().await;
}

#[tokio::test]
async fn legacy_sse_client_fails_the_waiting_requests_at_once_on_an_event_that_is_not_json() {
    // The stream: the endpoint, then (once a message is POSTed) an event that is no JSON in
    // place of its answer.
    let (garbage_tx, garbage_rx) = mpsc::channel::<()>(4);
    let garbage_rx = Arc::new(tokio::sync::Mutex::new(Some(garbage_rx)));
    let sse = get(move || {
        let garbage_rx = garbage_rx.clone();
        async move {
            let mut trigger = garbage_rx.lock().await.take().expect("one stream");
            let first = futures_util::stream::once(async {
                Ok::<_, Infallible>(Bytes::from("event: endpoint\ndata: /messages?sessionId=1\n\n"))
            });
            let later = futures_util::stream::once(async move {
                let _ = trigger.recv().await;
                Ok::<_, Infallible>(Bytes::from("event: message\ndata: this is not JSON {\n\n"))
            });
            let events = first.chain(later).chain(futures_util::stream::pending());
            Response::builder()
                .header(header::CONTENT_TYPE, "text/event-stream")
                .body(Body::from_stream(events))
                .expect("a response")
        }
    });
    let (posts_tx, mut posts) = mpsc::channel::<String>(16);
    let messages = post(move |body: String| {
        let (posts, garbage) = (posts_tx.clone(), garbage_tx.clone());
        async move {
            let first = posts.send(body).await.is_ok();
            if first {
                let _ = garbage.try_send(());
            }
            StatusCode::ACCEPTED
        }
    });
    let app = Router::new().route("/sse", sse).route("/messages", messages);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(serve(listener, app, shutdown.clone().cancelled_owned()));

    let (service, _notes) = ClientService::new();
    let client = within(
        "connecting",
        legacy_sse_client::connect(&format!("{base}/sse"), service, patient()),
    )
    .await
    .expect("connected");
    let outcome = within(
        "the request fails",
        client.peer().handle().request::<_, Value>("tools/list", &json!({})),
    )
    .await;
    match outcome {
        Err(PeerError::Remote(error)) => assert!(error.message.starts_with("invalid JSON: "), "{error:?}"),
        other => panic!("expected the unreadable-message error, got {other:?}"),
    }
    // The server is told the request is cancelled (after the request, and the answer to the
    // garbage).
    within("the cancellation is POSTed", async {
        loop {
            let body: Value = serde_json::from_str(&posts.recv().await.expect("a POST")).expect("JSON");
            if body["method"] == "notifications/cancelled" {
                break;
            }
        }
    })
    .await;
    assert!(!client.peer().handle().is_closed(), "the connection goes on");
    drop(client);
    shutdown.cancel();
    let _ = task.await;
}
