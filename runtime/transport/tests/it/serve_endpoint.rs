//! [`portico_transport::http::serve_endpoint`]: POSTs to the endpoint's path are answered by
//! the endpoint straight, with every check of the router's way and the peer's address; the
//! rest (GET streams, other paths) goes to the router.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::routing::get;
use portico_core::server::{Context, Server, tool};
use portico_transport::http::{Carry, HttpConfig, StreamableHttp, serve_endpoint};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::http_client::Nothing;
use crate::within;

/// An endpoint at `/mcp` whose one tool says the caller's address, and `/ping` and `/peer`
/// (the caller's address, as the router's handlers see it) beside it.
async fn start() -> (String, CancellationToken) {
    let server = Server::builder("front-door-test", "1.0.0")
        .tool(tool(
            "whereami",
            "The caller's address, as the handler sees it",
            |cx: Context, _: Nothing| async move {
                cx.extension::<ConnectInfo<SocketAddr>>()
                    .map_or_else(|| "unknown".to_string(), |c| c.0.to_string())
            },
        ))
        .build();
    let http = HttpConfig {
        carry: Carry::new().with::<ConnectInfo<SocketAddr>>(),
        ..HttpConfig::default()
    };
    let shutdown = http.shutdown.clone();
    let endpoint = StreamableHttp::new(move || server.connection(), http);
    let router = endpoint.router().route("/ping", get(|| async { "pong" })).route(
        "/peer",
        get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(serve_endpoint(
        listener,
        endpoint,
        router,
        shutdown.clone().cancelled_owned(),
    ));
    (base, shutdown)
}

fn post(client: &reqwest::Client, url: &str, body: &Value) -> reqwest::RequestBuilder {
    client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "whereami")
        .body(body.to_string())
}

fn whereami(id: i64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "whereami", "arguments": {},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"}}}})
}

#[tokio::test]
async fn posts_reach_the_endpoint_with_the_peer_s_address_and_the_rest_reaches_the_router() {
    let (base, shutdown) = start().await;
    let client = crate::http_client();

    // A call: answered by the endpoint, whose handler sees the caller's address.
    let response = within("POST", post(&client, &format!("{base}/mcp"), &whereami(1)).send())
        .await
        .expect("an answer");
    assert_eq!(response.status(), 200);
    // Its length is sent as the router's way sends it.
    let length = response.headers().get("content-length").cloned();
    let text = within("body", response.text()).await.expect("a body");
    assert_eq!(
        length.as_ref().and_then(|l| l.to_str().ok()),
        Some(text.len().to_string().as_str())
    );
    let answer: Value = serde_json::from_str(&text).expect("JSON");
    let said = answer["result"]["content"][0]["text"].as_str().expect("text");
    let address: SocketAddr = said
        .parse()
        .unwrap_or_else(|e| panic!("{said:?} is no address ({e}): {answer}"));
    assert!(address.ip().is_loopback(), "{answer}");

    // The endpoint's checks are made on this way too: a header that disagrees with the body
    // is the spec's 400, naming the request.
    let response = within(
        "POST",
        post(&client, &format!("{base}/mcp"), &whereami(2))
            .header("mcp-name", "elsewhere")
            .send(),
    )
    .await
    .expect("an answer");
    assert_eq!(response.status(), 400);
    let answer: Value = serde_json::from_str(&within("body", response.text()).await.expect("a body")).expect("JSON");
    assert_eq!(answer["id"], 2, "{answer}");

    // So is the DNS-rebinding guard of a loopback endpoint.
    let response = within(
        "POST",
        post(&client, &format!("{base}/mcp"), &whereami(3))
            .header("origin", "http://evil.example")
            .send(),
    )
    .await
    .expect("an answer");
    assert_eq!(response.status(), 403);

    // Other methods of the endpoint's path, and other paths, are the router's.
    let response = within("GET", client.get(format!("{base}/ping")).send())
        .await
        .expect("an answer");
    assert_eq!(within("body", response.text()).await.expect("a body"), "pong");
    // The router's handlers are given the caller's address too (the endpoint's POSTs only when
    // its handlers are: see `serve_endpoint`).
    let response = within("GET", client.get(format!("{base}/peer")).send())
        .await
        .expect("an answer");
    assert_eq!(response.status(), 200);
    let said = within("body", response.text()).await.expect("a body");
    let peer: SocketAddr = said.parse().unwrap_or_else(|e| panic!("{said:?} is no address ({e})"));
    assert!(peer.ip().is_loopback(), "{said}");
    let response = within("PUT", client.put(format!("{base}/mcp")).send())
        .await
        .expect("an answer");
    assert_eq!(response.status(), 405);
    assert!(response.headers().get("allow").is_some(), "{response:?}");
    let response = within("POST", client.post(format!("{base}/nowhere")).send())
        .await
        .expect("an answer");
    assert_eq!(response.status(), 404);
    shutdown.cancel();
}
