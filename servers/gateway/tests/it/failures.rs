//! Bad input and failing upstreams: each gives the client a typed error naming the cause,
//! never a hang.

use portico_core::client::Protocol;
use portico_gateway::relay::{UPSTREAM_TIMEOUT, UPSTREAM_UNAVAILABLE};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_upstream_is_reported_and_its_calls_fail_naming_it() {
    // A port nobody listens on: bound, then closed.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding");
        listener.local_addr().expect("address").port()
    };
    let yaml = format!(
        "upstreams:\n  - {{name: here, builtin: everything}}\n  - {{name: gone, url: 'http://127.0.0.1:{port}/mcp'}}\n"
    );
    let gateway = Running::start(&yaml).await;
    let (status, ready) = gateway.get_json("/readyz").await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["upstreams"][1]["name"], "gone");
    assert_eq!(ready["upstreams"][1]["connected"], false);
    assert!(
        ready["upstreams"][1]["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{ready}"
    );
    let (status, health) = gateway.get_json("/healthz").await;
    assert_eq!((status, health), (200, json!({"status": "ok"})));

    for protocol in [Protocol::Stateless, SESSION] {
        let client = gateway.client("/mcp", protocol, ()).await;
        // The reachable upstream still serves.
        client
            .call_tool("here__test_simple_text", json!({}))
            .await
            .expect("call");
        let error = rpc_error(client.call_tool("gone__anything", json!({})).await.unwrap_err());
        assert_eq!(error.code, UPSTREAM_UNAVAILABLE, "{error:?}");
        assert!(error.message.contains("`gone`"), "{error:?}");
        assert_eq!(
            error.data.as_ref().and_then(|d| d.get("upstream")),
            Some(&json!("gone"))
        );
    }
    let client = gateway.client("/mcp/gone", Protocol::Stateless, ()).await;
    let error = rpc_error(client.call_tool("anything", json!({})).await.unwrap_err());
    assert_eq!(error.code, UPSTREAM_UNAVAILABLE, "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_slower_than_its_timeout_gives_a_timeout_error() {
    let gateway = Running::start("upstreams:\n  - {name: slow, builtin: everything, timeout: 300ms}\n").await;
    for protocol in [Protocol::Stateless, SESSION] {
        let client = gateway.client("/mcp", protocol, ()).await;
        let started = std::time::Instant::now();
        let error = rpc_error(
            client
                .call_tool("slow__slow_compute", json!({"seconds": 5}))
                .await
                .unwrap_err(),
        );
        assert_eq!(error.code, UPSTREAM_TIMEOUT, "{error:?}");
        assert!(error.message.contains("`slow`"), "{error:?}");
        assert!(started.elapsed() < Duration::from_secs(5), "the timeout ended the call");
        // The upstream is fine afterwards.
        client
            .call_tool("slow__test_simple_text", json!({}))
            .await
            .expect("call");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_and_unknown_names_are_protocol_errors() {
    let gateway = Running::start("upstreams:\n  - {name: e, builtin: everything}\n").await;
    let client = gateway.client("/mcp", Protocol::Stateless, ()).await;
    let error = rpc_error(
        client
            .call_tool("e__slow_compute", json!({"seconds": "soon"}))
            .await
            .unwrap_err(),
    );
    assert_eq!(error.code, -32602, "the upstream's own error, as it is: {error:?}");
    let error = rpc_error(
        client
            .get_prompt("e__no_such_prompt", Default::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(error.code, -32602, "{error:?}");
    assert!(error.message.contains("e__no_such_prompt"), "{error:?}");
    let error = rpc_error(client.read_resource("test://nothing-here").await.unwrap_err());
    assert_eq!(error.code, -32602, "{error:?}");
    let session = gateway.client("/mcp", SESSION, ()).await;
    let error = rpc_error(session.read_resource("test://nothing-here").await.unwrap_err());
    assert_eq!(error.code, -32002, "a session's resource-not-found code: {error:?}");
}

/// `everything` over HTTP behind a check of the `Authorization` it is sent: only
/// `Bearer upstream-secret` passes; every value seen is recorded.
async fn guarded_upstream() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>, CancellationToken) {
    use axum::extract::Request;
    use axum::middleware::{self, Next};
    let seen: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let record = seen.clone();
    let server = portico_everything::server();
    let config = HttpConfig::default();
    let shutdown = config.shutdown.clone();
    let app = StreamableHttp::new(move || server.connection(), config)
        .router()
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            let record = record.clone();
            async move {
                let sent = request
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                record.lock().unwrap().push(sent.clone());
                if sent != "Bearer upstream-secret" {
                    return axum::http::Response::builder()
                        .status(401)
                        .body(axum::body::Body::from("{}"))
                        .expect("a response");
                }
                next.run(request).await
            }
        }));
    let url = serve_mcp(app, &shutdown).await;
    (url, seen, shutdown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstreams_get_the_gateways_own_credentials_never_the_clients() {
    let (url, seen, stop) = guarded_upstream().await;
    let _stop = stop.drop_guard();
    let gateway = Running::start(&format!(
        "upstreams:\n  - name: guarded\n    url: '{url}'\n    headers: {{Authorization: 'Bearer upstream-secret'}}\n"
    ))
    .await;
    // The client sends a token of its own, to the gateway.
    let client_url = format!("{}/mcp", gateway.base);
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("authorization", "Bearer client-token".parse().expect("a header"));
    let client = Client::builder(wire::Implementation::new("t", "1"))
        .protocol(Protocol::Stateless)
        .connect(|service| {
            connect(
                &client_url,
                service,
                HttpClientConfig {
                    headers,
                    ..HttpClientConfig::default()
                },
            )
        })
        .await
        .expect("connect");
    client
        .call_tool("guarded__test_simple_text", json!({}))
        .await
        .expect("call");
    let seen = seen.lock().unwrap().clone();
    assert!(!seen.is_empty());
    assert!(seen.iter().all(|s| s == "Bearer upstream-secret"), "{seen:?}");

    // Without its credentials the upstream is unreachable, and says why.
    let (url, _, stop) = guarded_upstream().await;
    let _stop = stop.drop_guard();
    let gateway = Running::start(&format!("upstreams:\n  - {{name: guarded, url: '{url}'}}\n")).await;
    let (status, ready) = gateway.get_json("/readyz").await;
    assert_eq!(status, 503);
    assert!(
        ready["upstreams"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("401")),
        "{ready}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_at_its_limit_of_calls_in_flight_refuses_more() {
    let gateway = Running::start("upstreams:\n  - {name: e, builtin: everything, max_in_flight: 1}\n").await;
    let client = gateway.client("/mcp", Protocol::Stateless, ()).await;
    let (first, second) = tokio::join!(client.call_tool("e__slow_compute", json!({"seconds": 1})), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        client.call_tool("e__test_simple_text", json!({})).await
    });
    first.expect("the first call");
    let error = rpc_error(second.unwrap_err());
    assert_eq!(error.code, UPSTREAM_UNAVAILABLE, "{error:?}");
    assert!(error.message.contains("limit of 1 calls in flight"), "{error:?}");
    client
        .call_tool("e__test_simple_text", json!({}))
        .await
        .expect("room again");
}
