//! `/metrics`: what was relayed, how it ended, and the state of upstreams and sessions.

use super::*;

async fn metrics(gateway: &Running) -> String {
    let response = reqwest::get(format!("{}/metrics", gateway.base))
        .await
        .expect("GET /metrics");
    assert_eq!(response.status().as_u16(), 200);
    let kind = response.headers()["content-type"].to_str().expect("type").to_string();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    response.text().await.expect("body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_calls_by_outcome_and_show_upstreams_and_sessions() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding");
        listener.local_addr().expect("address").port()
    };
    let yaml = format!(
        "upstreams:\n  - {{name: e, builtin: everything, timeout: 300ms}}\n  - {{name: gone, url: 'http://127.0.0.1:{port}/mcp'}}\n"
    );
    let gateway = Running::start(&yaml).await;
    let client = gateway.client("/mcp", SESSION, ()).await;
    for _ in 0..3 {
        client.call_tool("e__test_simple_text", json!({})).await.expect("call");
    }
    client
        .call_tool("e__test_error_handling", json!({}))
        .await
        .expect("a tool error is a result");
    client
        .call_tool("e__slow_compute", json!({"seconds": 3}))
        .await
        .unwrap_err();
    client.call_tool("gone__x", json!({})).await.unwrap_err();
    client.read_resource("test://static-text").await.expect("read");

    let text = metrics(&gateway).await;
    let has = |line: &str| assert!(text.lines().any(|l| l == line), "no line {line:?} in\n{text}");
    has(r#"portico_gateway_requests_total{upstream="e",method="tools/call",tool="test_simple_text",outcome="ok"} 3"#);
    has(
        r#"portico_gateway_requests_total{upstream="e",method="tools/call",tool="test_error_handling",outcome="tool_error"} 1"#,
    );
    has(r#"portico_gateway_requests_total{upstream="e",method="tools/call",tool="slow_compute",outcome="timeout"} 1"#);
    // A name no upstream lists is not a label value.
    has(r#"portico_gateway_requests_total{upstream="gone",method="tools/call",tool="",outcome="unavailable"} 1"#);
    has(r#"portico_gateway_requests_total{upstream="e",method="resources/read",tool="",outcome="ok"} 1"#);
    has(r#"portico_gateway_request_duration_seconds_count{upstream="e",method="tools/call"} 5"#);
    has(r#"portico_gateway_upstream_up{upstream="e",replica="builtin:everything"} 1"#);
    has(&format!(
        r#"portico_gateway_upstream_up{{upstream="gone",replica="http://127.0.0.1:{port}/mcp"}} 0"#
    ));
    has(r#"portico_gateway_breaker_state{upstream="e",replica="builtin:everything",state="closed"} 1"#);
    has(r#"portico_gateway_sessions{endpoint="/mcp"} 1"#);
    has(r#"portico_gateway_in_flight{upstream="e"} 0"#);
}

/// An OTLP/HTTP receiver: every span posted to `/v1/traces`, with its service's name.
struct Collector {
    url: String,
    spans: std::sync::Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>,
}

impl Collector {
    async fn start() -> Self {
        use axum::routing::post;
        let spans: std::sync::Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>> = Default::default();
        let store = spans.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            post(move |body: String| {
                let store = store.clone();
                async move {
                    let export: serde_json::Value = serde_json::from_str(&body).expect("OTLP JSON");
                    for resource in export["resourceSpans"].as_array().expect("resourceSpans") {
                        let service = resource["resource"]["attributes"][0]["value"]["stringValue"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string();
                        for scope in resource["scopeSpans"].as_array().expect("scopeSpans") {
                            for span in scope["spans"].as_array().expect("spans") {
                                store.lock().unwrap().push((service.clone(), span.clone()));
                            }
                        }
                    }
                    "{}"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, spans }
    }

    /// The span of `service` named `name`, once it arrived.
    async fn span(&self, service: &str, name: &str) -> serde_json::Value {
        within(&format!("the span {name:?} of {service}"), async {
            loop {
                let found = self
                    .spans
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|(s, span)| s == service && span["name"] == name)
                    .map(|(_, span)| span.clone());
                if let Some(span) = found {
                    return span;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_link_the_client_the_gateway_and_the_upstream() {
    use portico_core::client::{Protocol, RequestOptions};
    use portico_transport::otel::{Exporter, TraceContext};
    let collector = Collector::start().await;
    let upstream = HttpEverything::traced(Some(Exporter::start(&collector.url, "upstream"))).await;
    let yaml = format!(
        "telemetry: {{otlp_endpoint: '{}'}}\nupstreams:\n  - {{name: e, url: '{}', protocol: stateless}}\n",
        collector.url, upstream.url
    );
    let gateway = Running::start(&yaml).await;
    for protocol in [Protocol::Stateless, SESSION] {
        let client = gateway.client("/mcp", protocol, ()).await;
        let root = TraceContext::root();
        let options = RequestOptions::new().meta("traceparent", root.traceparent().into());
        client
            .call_tool_with("e__test_simple_text", json!({}), &options)
            .await
            .expect("call");
        let server = collector
            .span("portico-gateway", "tools/call e__test_simple_text")
            .await;
        let relayed = collector.span("portico-gateway", "tools/call test_simple_text").await;
        let upstream_span = collector.span("upstream", "tools/call test_simple_text").await;
        let trace = root.trace_id_hex();
        assert_eq!(server["traceId"], trace.as_str(), "{server}");
        assert_eq!(
            server["parentSpanId"].as_str(),
            Some(&root.traceparent()[36..52]),
            "{server}"
        );
        assert_eq!(server["kind"], 2);
        assert_eq!(relayed["traceId"], trace.as_str());
        assert_eq!(
            relayed["parentSpanId"], server["spanId"],
            "the relay is a child of the gateway's server span"
        );
        assert_eq!(relayed["kind"], 3);
        assert_eq!(upstream_span["traceId"], trace.as_str());
        assert_eq!(
            upstream_span["parentSpanId"], relayed["spanId"],
            "the upstream's span is a child of the relay's"
        );
        collector.spans.lock().unwrap().clear();
    }
}
