//! Bad input and failing upstreams: each gives the client a typed error naming the cause,
//! never a hang.

use portico_core::client::Protocol;
use portico_gateway::relay::{UPSTREAM_INVALID, UPSTREAM_TIMEOUT, UPSTREAM_UNAVAILABLE};

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

/// `everything` over HTTP (2026-07-28), but for two tools whose calls it answers with what is
/// not JSON: `test_simple_text` with a JSON body, `test_image_content` with an event.
async fn garbling_upstream() -> (String, CancellationToken) {
    use axum::extract::Request;
    use axum::middleware::{self, Next};
    use axum::response::IntoResponse;
    let server = portico_everything::server();
    let config = HttpConfig::default();
    let shutdown = config.shutdown.clone();
    let app = StreamableHttp::new(move || server.connection(), config)
        .router()
        .layer(middleware::from_fn(|request: Request, next: Next| async move {
            let name = request.headers().get("mcp-name").and_then(|v| v.to_str().ok());
            match name {
                Some("test_simple_text") => (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    "this is not JSON {",
                )
                    .into_response(),
                Some("test_image_content") => (
                    [(axum::http::header::CONTENT_TYPE, "text/event-stream")],
                    "event: message\ndata: {not json\n\n",
                )
                    .into_response(),
                _ => next.run(request).await,
            }
        }));
    (serve_mcp(app, &shutdown).await, shutdown)
}

/// A stdio server (a POSIX shell script) speaking a 2025-11-25 session with two tools: `fine`
/// answers, `garbage` writes a line that is not JSON in place of its answer.
fn garbling_script() -> std::path::PathBuf {
    let script = r#"
while IFS= read -r line; do
  id=$(printf '%s' "$line" | sed -n 's/^{"jsonrpc":"2.0","id":\([0-9]*\),.*/\1/p')
  case "$line" in
    *'"method":"initialize"'*)
      printf '{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"garbling","version":"1"}}}\n' "$id" ;;
    *'"method":"tools/list"'*)
      printf '{"jsonrpc":"2.0","id":%s,"result":{"tools":[{"name":"fine","inputSchema":{"type":"object"}},{"name":"garbage","inputSchema":{"type":"object"}}]}}\n' "$id" ;;
    *'"method":"tools/call"'*'"name":"garbage"'*)
      printf 'this is not JSON {\n' ;;
    *'"method":"tools/call"'*)
      printf '{"jsonrpc":"2.0","id":%s,"result":{"content":[{"type":"text","text":"fine"}]}}\n' "$id" ;;
    *'"method":"ping"'*)
      printf '{"jsonrpc":"2.0","id":%s,"result":{}}\n' "$id" ;;
    *)
      if [ -n "$id" ]; then
        printf '{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"method not found"}}\n' "$id"
      fi ;;
  esac
done
"#;
    let path = temp_path("garbling.sh");
    std::fs::write(&path, script).expect("the script is written");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_answering_what_is_not_json_gives_a_typed_error_and_the_gateway_serves_on() {
    let (url, stop) = garbling_upstream().await;
    let _stop = stop.drop_guard();
    let script = garbling_script();
    // Timeouts no test waits for: the errors must come from the garbage, not from them.
    let yaml = format!(
        "upstreams:\n  - {{name: h, url: '{url}', protocol: stateless, timeout: 1h}}\n  - {{name: s, command: [sh, '{}'], protocol: stateful, timeout: 1h}}\n",
        script.display()
    );
    let gateway = Running::start(&yaml).await;
    for protocol in [Protocol::Stateless, SESSION] {
        let client = gateway.client("/mcp", protocol, ()).await;
        for (garbled, fine, upstream, problem) in [
            ("h__test_simple_text", "h__test_audio_content", "h", "invalid JSON: "),
            (
                "h__test_image_content",
                "h__test_audio_content",
                "h",
                "invalid JSON: key must be a string",
            ),
            ("s__garbage", "s__fine", "s", "invalid JSON: "),
        ] {
            let error = rpc_error(within(garbled, client.call_tool(garbled, json!({}))).await.unwrap_err());
            assert_eq!(error.code, UPSTREAM_INVALID, "{garbled}: {error:?}");
            assert!(
                error.message.starts_with(&format!(
                    "upstream `{upstream}` sent an unreadable answer to `tools/call`: {problem}"
                )),
                "{garbled}: {error:?}"
            );
            let data = error.data.expect("data");
            assert_eq!(data["upstream"], upstream, "{data}");
            assert!(
                data["reason"].as_str().is_some_and(|r| r.starts_with("invalid JSON")),
                "{data}"
            );
            // The upstream serves on, through the gateway.
            let result = within(fine, client.call_tool(fine, json!({}))).await.expect(fine);
            assert_eq!(result.is_error, None, "{fine}: {result:?}");
        }
    }
    let _ = std::fs::remove_file(&script);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_subscriptions_listen_stream_makes_the_gateway_connect_again() {
    lost_listen(false).await;
}

/// The stream fails before the gateway saw its acknowledgement: `subscriptions/listen` itself
/// fails, and the gateway connects again as when the stream fails later (it used to go on
/// without listening, so changes went unnoticed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriptions_listen_that_fails_before_its_acknowledgement_makes_the_gateway_connect_again() {
    lost_listen(true).await;
}

/// `everything` over HTTP, whose first `subscriptions/listen` stream carries what is not JSON
/// right after its acknowledgement (or, `before_ack`, right before it); the gateway must listen
/// again and serve calls.
async fn lost_listen(before_ack: bool) {
    use axum::body::{Body, Bytes};
    use axum::extract::Request;
    use axum::middleware::{self, Next};
    use futures_util::StreamExt;
    // `everything` over HTTP, whose first `subscriptions/listen` stream carries what is not
    // JSON once the subscription is acknowledged: the gateway's subscription fails.
    let listens = Arc::new(AtomicUsize::new(0));
    let counted = listens.clone();
    let server = portico_everything::server();
    let config = HttpConfig::default();
    let shutdown = config.shutdown.clone();
    let app = StreamableHttp::new(move || server.connection(), config)
        .router()
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            let counted = counted.clone();
            async move {
                let listen = request
                    .headers()
                    .get("mcp-method")
                    .is_some_and(|m| m == "subscriptions/listen");
                let first = listen && counted.fetch_add(1, Ordering::SeqCst) == 0;
                let response = next.run(request).await;
                if !first {
                    return response;
                }
                let (parts, body) = response.into_parts();
                let mut garbled = false;
                let events = body.into_data_stream().flat_map(move |chunk| {
                    let acknowledged = chunk
                        .as_ref()
                        .is_ok_and(|c| String::from_utf8_lossy(c).contains("subscriptions/acknowledged"));
                    let mut out = vec![chunk];
                    if acknowledged && !garbled {
                        garbled = true;
                        let garbage = Ok(Bytes::from("event: message\ndata: {not json\n\n"));
                        if before_ack {
                            out.insert(0, garbage);
                        } else {
                            out.push(garbage);
                        }
                    }
                    futures_util::stream::iter(out)
                });
                axum::http::Response::from_parts(parts, Body::from_stream(events))
            }
        }));
    let url = serve_mcp(app, &shutdown).await;
    let _stop = shutdown.drop_guard();
    let gateway = Running::start(&format!(
        "upstreams:\n  - {{name: h, url: '{url}', protocol: stateless}}\n"
    ))
    .await;
    // Changes would go unnoticed: the gateway connects again, and listens again.
    within("listening again", async {
        while listens.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let client = gateway.client("/mcp", Protocol::Stateless, ()).await;
    within("a call", async {
        loop {
            match client.call_tool("h__test_simple_text", json!({})).await {
                Ok(result) => break result,
                // Between the two connections.
                Err(e) if e.code() == Some(UPSTREAM_UNAVAILABLE) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("{e:?}"),
            }
        }
    })
    .await;
    assert_eq!(
        listens.load(Ordering::SeqCst),
        2,
        "one subscription lost, one made again"
    );
}
