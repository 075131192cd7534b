//! Plugins end to end: the shipped kinds (redaction of results, the arguments guard, the tool
//! deny-list), a webhook (an in-test HTTP server) that denies, rewrites and annotates, a webhook
//! that is down, slow or answers garbage, the order of plugins, reloads, a kind registered from
//! Rust, and configurations refused naming the key.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use portico_gateway::plugin::{
    META_KEY, Options, PLUGIN_DENIED, Plugin, PluginFuture, PluginRegistry, PluginRequest, Verdict,
};
use serde_json::Value;

use super::reload::{File, until};
use super::*;

/// A JWT (not a valid one: redaction does not check signatures).
const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZGEifQ.c2lnbmF0dXJl";

/// A 2026-07-28 request POSTed to `path`: its JSON-RPC answer.
async fn post_request(gateway: &Running, path: &str, method: &str, mut params: Value) -> Value {
    let name = params
        .get("name")
        .or_else(|| params.get("uri"))
        .and_then(Value::as_str)
        .map(str::to_string);
    params["_meta"] = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}});
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let mut request = reqwest::Client::new()
        .post(format!("{}{path}", gateway.base))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method);
    if let Some(name) = name {
        request = request.header("mcp-name", name);
    }
    let response = within("a request", request.body(body.to_string()).send())
        .await
        .expect("sent");
    let status = response.status().as_u16();
    let text = response.text().await.expect("a body");
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// `tools/call` of `tool` on the aggregated endpoint.
async fn call(gateway: &Running, tool: &str, arguments: Value) -> Value {
    post_request(
        gateway,
        "/mcp",
        "tools/call",
        json!({"name": tool, "arguments": arguments}),
    )
    .await
}

/// The `data` of an answer that must be a plugin's refusal.
fn refusal(answer: &Value) -> &Value {
    assert_eq!(answer["error"]["code"], PLUGIN_DENIED, "{answer}");
    &answer["error"]["data"]
}

/// The text of an answer's first content block.
fn first_text(answer: &Value) -> &str {
    answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("a text result: {answer}"))
}

/// The value of the series `series` (`name{labels}`) at `/metrics`, if it is there.
async fn metric(gateway: &Running, series: &str) -> Option<f64> {
    let text = reqwest::get(format!("{}/metrics", gateway.base))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("a body");
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// How many calls of `tool` upstream `e` answered, by the gateway's count.
async fn upstream_calls(gateway: &Running, tool: &str) -> f64 {
    let mut calls = 0.0;
    for outcome in ["ok", "tool_error", "error"] {
        let series = format!(
            "portico_gateway_requests_total{{upstream=\"e\",method=\"tools/call\",tool=\"{tool}\",outcome=\"{outcome}\"}}"
        );
        calls += metric(gateway, &series).await.unwrap_or(0.0);
    }
    calls
}

/// How many hooks of `plugin` decided `decision`.
async fn decisions(gateway: &Running, plugin: &str, hook: &str, decision: &str) -> f64 {
    let series = format!(
        "portico_gateway_plugin_decisions_total{{plugin=\"{plugin}\",hook=\"{hook}\",decision=\"{decision}\"}}"
    );
    metric(gateway, &series).await.unwrap_or(0.0)
}

/// The audit records `GET /admin/audit?{query}` returns.
async fn records(gateway: &Running, query: &str) -> Vec<Value> {
    let (status, body) = gateway.get_json(&format!("/admin/audit?{query}")).await;
    assert_eq!(status, 200, "{body}");
    body["records"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redaction_hides_secrets_in_results_and_annotates_them() {
    let gateway = Running::start(
        "upstreams:\n  - {name: e, builtin: everything}\naudit: {}\nplugins:\n  - {name: redact, kind: redact}\n",
    )
    .await;
    let message = format!("mail ada@example.com, card 4111 1111 1111 1111, token {JWT}");
    let answer = call(&gateway, "e__echo", json!({"message": message})).await;
    assert_eq!(
        first_text(&answer),
        "mail [redacted:email], card [redacted:credit_card], token [redacted:jwt]"
    );
    assert_eq!(
        answer["result"]["_meta"][META_KEY],
        json!({"redact": {"redacted": {"credit_card": 1, "email": 1, "jwt": 1}}}),
        "{answer}"
    );
    let calls = records(&gateway, "kind=call").await;
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_eq!(
        calls[0]["detail"],
        r#"plugins: {"redact":{"redacted":{"credit_card":1,"email":1,"jwt":1}}}"#
    );
    // The digest is of the arguments as the client sent them.
    assert!(calls[0]["arguments_digest"].is_string());

    // A resource's text.
    let read = post_request(
        &gateway,
        "/mcp",
        "resources/read",
        json!({"uri": "test://template/ada@example.com/data"}),
    )
    .await;
    let contents = &read["result"]["contents"][0];
    assert!(
        contents["text"]
            .as_str()
            .is_some_and(|t| t.contains("Data for ID: [redacted:email]")),
        "{read}"
    );
    assert!(!read.to_string().contains("ada@example.com"), "{read}");

    // A 2025-11-25 session gets the same.
    let client = gateway.client("/mcp", SESSION, ()).await;
    let result = client
        .call_tool("e__echo", json!({"message": "ssn 123-45-6789"}))
        .await
        .expect("a call");
    assert_eq!(text(&result), "ssn [redacted:us_ssn]");
    // Nothing to redact: no annotation.
    let clean = call(&gateway, "e__echo", json!({"message": "nothing secret"})).await;
    assert!(clean["result"]["_meta"].get(META_KEY).is_none(), "{clean}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_refuses_oversized_and_ill_typed_arguments_without_calling_the_upstream() {
    let gateway = Running::start(
        "upstreams:\n  - {name: e, builtin: everything}\naudit: {}\nplugins:\n  - {name: guard, kind: guard, max_argument_bytes: 64, schema: true}\n",
    )
    .await;
    let big = call(&gateway, "e__echo", json!({"message": "x".repeat(100)})).await;
    let data = refusal(&big);
    assert_eq!(data["plugin"], "guard");
    assert_eq!(data["hook"], "before");
    assert_eq!(
        data["reason"],
        "the arguments are 114 bytes of JSON; at most 64 are accepted"
    );
    assert_eq!(data["annotations"], json!({"guard": {"argument_bytes": 114}}));
    assert!(
        big["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("refused by plugin `guard`: ")),
        "{big}"
    );
    let wrong = call(&gateway, "e__echo", json!({"message": 5})).await;
    let reason = refusal(&wrong)["reason"].as_str().unwrap_or_default().to_string();
    assert!(
        reason.contains("inputSchema") && reason.contains("/message"),
        "{reason}"
    );
    let fine = call(&gateway, "e__echo", json!({"message": "fine"})).await;
    assert_eq!(first_text(&fine), "fine");

    assert_eq!(
        upstream_calls(&gateway, "echo").await,
        1.0,
        "only the good call went up"
    );
    assert_eq!(decisions(&gateway, "guard", "before", "deny").await, 2.0);
    assert_eq!(decisions(&gateway, "guard", "before", "continue").await, 1.0);
    assert_eq!(records(&gateway, "kind=call").await.len(), 1);
    let denials = records(&gateway, "kind=denial").await;
    assert_eq!(denials.len(), 2, "{denials:#?}");
    for denial in &denials {
        assert_eq!(denial["outcome"], "denied");
        assert_eq!(denial["error_code"], PLUGIN_DENIED);
        assert_eq!(denial["target"], "echo");
        assert_eq!(denial["upstream"], "e");
        assert!(denial["arguments_digest"].is_string(), "{denial}");
        assert!(denial["latency_us"].is_null(), "no upstream was asked: {denial}");
        assert!(
            denial["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("plugin `guard` (before): the arguments")),
            "{denial}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_tools_refuses_by_pattern_without_calling_the_upstream() {
    let gateway = Running::start(
        "upstreams:\n  - {name: e, builtin: everything}\nplugins:\n  - {name: no-media, kind: deny_tools, patterns: ['test_*_content', echo], reason: media is not served here}\n",
    )
    .await;
    let image = call(&gateway, "e__test_image_content", json!({})).await;
    assert_eq!(
        refusal(&image),
        &json!({"plugin": "no-media", "hook": "before", "reason": "media is not served here",
            "annotations": {"no-media": {"pattern": "test_*_content"}}})
    );
    // The upstream's names decide, on whichever endpoint.
    let echo = post_request(
        &gateway,
        "/mcp/e",
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "x"}}),
    )
    .await;
    assert_eq!(refusal(&echo)["plugin"], "no-media");
    let simple = call(&gateway, "e__test_simple_text", json!({})).await;
    assert!(simple["result"].is_object(), "{simple}");

    assert_eq!(upstream_calls(&gateway, "test_image_content").await, 0.0);
    assert_eq!(upstream_calls(&gateway, "echo").await, 0.0);
    assert_eq!(upstream_calls(&gateway, "test_simple_text").await, 1.0);
    // Refusing calls does not hide: the policy does.
    let listed = post_request(&gateway, "/mcp", "tools/list", json!({})).await;
    assert!(listed.to_string().contains("e__test_image_content"));
}

/// An in-test webhook server: every body it was sent, and the routes of the tests.
struct Webhooks {
    /// `http://127.0.0.1:PORT`.
    base: String,
    seen: Arc<Mutex<Vec<Value>>>,
    shutdown: CancellationToken,
}

impl Drop for Webhooks {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Webhooks {
    async fn start() -> Self {
        let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
        let app = axum::Router::new()
            .route("/policy", post(policy))
            .route("/mailer", post(mailer))
            .route(
                "/slow",
                post(|| async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    r#"{"decision": "continue"}"#
                }),
            )
            .route("/garbage", post(|| async { "this is not JSON" }))
            .route("/status", post(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let shutdown = CancellationToken::new();
        tokio::spawn(portico_transport::http::serve(
            listener,
            app,
            shutdown.clone().cancelled_owned(),
        ));
        Self { base, seen, shutdown }
    }

    /// The bodies sent by the plugin `plugin`.
    fn seen_by(&self, plugin: &str) -> Vec<Value> {
        let seen = self.seen.lock().expect("seen");
        seen.iter().filter(|b| b["plugin"] == plugin).cloned().collect()
    }
}

fn answer(value: Value) -> Response {
    ([("content-type", "application/json")], value.to_string()).into_response()
}

/// Denies `test_simple_text`, upper-cases `echo`'s message and annotates, before; denies
/// `test_image_content`'s result and annotates `echo`'s, after. Wants its key.
async fn policy(State(seen): State<Arc<Mutex<Vec<Value>>>>, headers: HeaderMap, body: Bytes) -> Response {
    if headers.get("x-hook-key").and_then(|v| v.to_str().ok()) != Some("k1") {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let body: Value = serde_json::from_slice(&body).expect("a JSON body");
    seen.lock().expect("seen").push(body.clone());
    let name = body["name"].as_str().unwrap_or_default();
    match (body["hook"].as_str(), name) {
        (Some("before"), "test_simple_text") => answer(json!({"decision": "deny", "reason": "no simple text today"})),
        (Some("before"), "echo") => {
            let message = body["arguments"]["message"].as_str().unwrap_or_default().to_uppercase();
            answer(json!({"decision": "continue", "arguments": {"message": message}, "annotations": {"rewrote": true}}))
        }
        (Some("after"), "test_image_content") => answer(json!({"decision": "deny", "reason": "no images out"})),
        (Some("after"), "echo") => {
            answer(json!({"decision": "continue", "annotations": {"saw": body["result"]["content"][0]["text"]}}))
        }
        _ => answer(json!({"decision": "continue"})),
    }
}

/// Replaces every result with one giving an email address.
async fn mailer(State(seen): State<Arc<Mutex<Vec<Value>>>>, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).expect("a JSON body");
    seen.lock().expect("seen").push(body.clone());
    match body["hook"].as_str() {
        Some("after") => answer(json!({"decision": "continue",
            "result": {"content": [{"type": "text", "text": "reach me at bob@example.org"}]}})),
        _ => answer(json!({"decision": "continue"})),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_denies_rewrites_and_annotates() {
    let hooks = Webhooks::start().await;
    let gateway = Running::start(&format!(
        "upstreams:\n  - {{name: e, builtin: everything}}\naudit: {{}}\nplugins:\n  - name: policy\n    kind: webhook\n    url: {}/policy\n    headers: {{X-Hook-Key: k1}}\n",
        hooks.base
    ))
    .await;

    // Its headers are credentials: not shown by the admin API.
    let (_, config) = gateway.get_json("/admin/config").await;
    assert_eq!(
        config["config"]["plugins"][0]["headers"],
        json!({"X-Hook-Key": "<redacted>"})
    );
    assert_eq!(config["config"]["plugins"][0]["url"], format!("{}/policy", hooks.base));

    let echo = call(&gateway, "e__echo", json!({"message": "hello"})).await;
    assert_eq!(first_text(&echo), "HELLO", "the arguments were rewritten: {echo}");
    assert_eq!(
        echo["result"]["_meta"][META_KEY],
        json!({"policy": {"rewrote": true, "saw": "HELLO"}})
    );
    let sent = hooks.seen_by("policy");
    assert_eq!(
        sent[0],
        json!({"hook": "before", "plugin": "policy", "method": "tools/call", "upstream": "e",
            "name": "echo", "clientName": "e__echo", "arguments": {"message": "hello"}})
    );
    assert_eq!(sent[1]["hook"], "after");
    assert_eq!(
        sent[1]["arguments"],
        json!({"message": "HELLO"}),
        "as the upstream got them"
    );
    assert_eq!(sent[1]["result"]["content"][0]["text"], "HELLO");

    let denied = call(&gateway, "e__test_simple_text", json!({})).await;
    assert_eq!(
        refusal(&denied),
        &json!({"plugin": "policy", "hook": "before", "reason": "no simple text today"})
    );
    assert_eq!(upstream_calls(&gateway, "test_simple_text").await, 0.0);

    // Denied after the upstream answered: the result is withheld.
    let image = call(&gateway, "e__test_image_content", json!({})).await;
    assert_eq!(
        refusal(&image),
        &json!({"plugin": "policy", "hook": "after", "reason": "no images out"})
    );
    assert_eq!(upstream_calls(&gateway, "test_image_content").await, 1.0);
    let denials = records(&gateway, "kind=denial").await;
    assert_eq!(denials.len(), 2, "{denials:#?}");
    assert_eq!(denials[0]["detail"], "plugin `policy` (after): no images out");
    assert!(
        denials[0]["latency_us"].is_i64(),
        "the upstream was asked: {}",
        denials[0]
    );
    assert_eq!(denials[1]["detail"], "plugin `policy` (before): no simple text today");
    let calls = records(&gateway, "kind=call").await;
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_eq!(
        calls[0]["detail"],
        r#"plugins: {"policy":{"rewrote":true,"saw":"HELLO"}}"#
    );

    // A prompt goes through the same hooks.
    let prompt = post_request(
        &gateway,
        "/mcp",
        "prompts/get",
        json!({"name": "e__test_prompt_with_arguments", "arguments": {"arg1": "a", "arg2": "b"}}),
    )
    .await;
    assert!(prompt["result"]["messages"].is_array(), "{prompt}");
    let last = hooks.seen_by("policy").pop().expect("a body");
    assert_eq!(last["method"], "prompts/get");
    assert_eq!(last["name"], "test_prompt_with_arguments");
    assert_eq!(last["clientName"], "e__test_prompt_with_arguments");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_down_slow_or_answering_garbage_fails_as_its_on_error_says() {
    let hooks = Webhooks::start().await;
    // A port bound and let go: nothing listens there.
    let down = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port");
    let base = &hooks.base;
    let plugin = |name: &str, url: String, tool: &str, extra: &str| {
        format!("  - {{name: {name}, kind: webhook, url: '{url}', tools: [{tool}], timeout: 300ms{extra}}}\n")
    };
    let yaml = [
        "upstreams:\n  - {name: e, builtin: everything}\nplugins:\n".to_string(),
        plugin("down", format!("http://{down}/hook"), "test_simple_text", ""),
        plugin("slow", format!("{base}/slow"), "test_image_content", ""),
        plugin(
            "slow-open",
            format!("{base}/slow"),
            "test_audio_content",
            ", on_error: allow",
        ),
        plugin("garbage", format!("{base}/garbage"), "test_embedded_resource", ""),
        plugin("garbage-open", format!("{base}/garbage"), "echo", ", on_error: allow"),
        plugin("status", format!("{base}/status"), "test_multiple_content_types", ""),
    ]
    .concat();
    let gateway = Running::start(&yaml).await;

    let cases = [
        (
            "e__test_simple_text",
            "down",
            "the plugin failed: the webhook could not be reached",
        ),
        (
            "e__test_image_content",
            "slow",
            "the plugin failed: no answer within 300ms",
        ),
        (
            "e__test_embedded_resource",
            "garbage",
            "the plugin failed: the webhook's answer is not a decision",
        ),
        (
            "e__test_multiple_content_types",
            "status",
            "the plugin failed: the webhook answered HTTP 500",
        ),
    ];
    for (tool, plugin, reason) in cases {
        let answer = call(&gateway, tool, json!({})).await;
        let data = refusal(&answer);
        assert_eq!(data["plugin"], plugin, "{answer}");
        assert!(
            data["reason"].as_str().is_some_and(|r| r.starts_with(reason)),
            "{tool}: {answer}"
        );
        assert!(
            !answer.to_string().contains(&down.port().to_string()),
            "no URL told: {answer}"
        );
        assert_eq!(decisions(&gateway, plugin, "before", "failed_closed").await, 1.0);
    }
    // Failing open: the call goes on, as if the plugin were not there.
    let audio = call(&gateway, "e__test_audio_content", json!({})).await;
    assert_eq!(audio["result"]["content"][0]["type"], "audio", "{audio}");
    let echo = call(&gateway, "e__echo", json!({"message": "through"})).await;
    assert_eq!(first_text(&echo), "through");
    assert!(echo["result"]["_meta"].get(META_KEY).is_none(), "{echo}");
    // Both hooks of each failed open.
    assert_eq!(decisions(&gateway, "slow-open", "before", "failed_open").await, 1.0);
    assert_eq!(decisions(&gateway, "slow-open", "after", "failed_open").await, 1.0);
    assert_eq!(decisions(&gateway, "garbage-open", "after", "failed_open").await, 1.0);
    assert_eq!(upstream_calls(&gateway, "test_simple_text").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_run_in_order_and_the_first_denial_stops_the_chain() {
    let hooks = Webhooks::start().await;
    let mailer = format!(
        "  - {{name: mailer, kind: webhook, url: '{}/mailer', hooks: [after]}}\n",
        hooks.base
    );
    let redact = "  - {name: redact, kind: redact, builtins: [email]}\n";
    let config = |plugins: &[&str]| {
        Config::parse(
            &format!(
                "upstreams:\n  - {{name: e, builtin: everything}}\nplugins:\n{}",
                plugins.concat()
            ),
            false,
        )
        .expect("a config")
    };
    let gateway = Running::serve(config(&[&mailer, redact])).await;

    // The mailer's result, then redacted.
    let first = call(&gateway, "e__echo", json!({"message": "hi"})).await;
    assert_eq!(first_text(&first), "reach me at [redacted:email]", "{first}");
    assert_eq!(
        first["result"]["_meta"][META_KEY],
        json!({"redact": {"redacted": {"email": 1}}})
    );

    // Redacted, then the mailer's result: the other order, applied while serving.
    gateway
        .gateway
        .apply(config(&[redact, &mailer]))
        .await
        .expect("applied");
    let second = call(&gateway, "e__echo", json!({"message": "hi"})).await;
    assert_eq!(first_text(&second), "reach me at bob@example.org", "{second}");

    // A denial first: the plugins after it do not run.
    let asked = hooks.seen_by("mailer").len();
    let deny = "  - {name: no-echo, kind: deny_tools, patterns: [echo]}\n";
    let mailer_both = format!("  - {{name: mailer, kind: webhook, url: '{}/mailer'}}\n", hooks.base);
    gateway
        .gateway
        .apply(config(&[deny, &mailer_both]))
        .await
        .expect("applied");
    let refused = call(&gateway, "e__echo", json!({"message": "hi"})).await;
    assert_eq!(refusal(&refused)["plugin"], "no-echo");
    assert_eq!(hooks.seen_by("mailer").len(), asked, "the mailer was not asked");
    // Its `before` runs for another tool (before and after: two bodies).
    call(&gateway, "e__test_simple_text", json!({})).await;
    assert_eq!(hooks.seen_by("mailer").len(), asked + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_changes_the_plugins_and_a_bad_one_is_refused_naming_the_key() {
    let upstreams = "upstreams:\n  - {name: e, builtin: everything}\n";
    let file = File::new(
        "plugins.yaml",
        &format!("{upstreams}plugins:\n  - {{name: no-echo, kind: deny_tools, patterns: [echo]}}\n"),
    );
    let gateway = Running::start_file(&file.0).await;
    gateway.gateway.watch_file(file.0.clone(), Duration::from_millis(100));
    let refused = call(&gateway, "e__echo", json!({"message": "hi"})).await;
    assert_eq!(refusal(&refused)["plugin"], "no-echo");

    file.write(&format!("{upstreams}plugins:\n  - {{name: redact, kind: redact}}\n"));
    until("the new plugins applied", || async {
        call(&gateway, "e__echo", json!({"message": "a@b.io"})).await["result"]["content"][0]["text"]
            == "[redacted:email]"
    })
    .await;

    for (bad, key) in [
        (
            "  - {name: g, kind: guard, max_argument_bytes: -1}\n",
            "plugins[0].max_argument_bytes",
        ),
        // Not a kind this gateway knows: the configuration reads, the gateway refuses it.
        ("  - {name: m, kind: mine}\n", "plugins[0].kind"),
    ] {
        file.write(&format!("{upstreams}plugins:\n{bad}"));
        until("the bad file refused", || async {
            gateway
                .gateway
                .last_change()
                .is_some_and(|c| c.error.as_deref().is_some_and(|e| e.starts_with(key)))
        })
        .await;
        let served = call(&gateway, "e__echo", json!({"message": "a@b.io"})).await;
        assert_eq!(
            first_text(&served),
            "[redacted:email]",
            "the plugins in force still run"
        );
    }
}

/// A plugin of the test's own: counts the calls it sees and annotates them with its label;
/// refuses the message `forbidden`; puts its label before the result's text.
struct Stamp {
    label: String,
    calls: Arc<AtomicUsize>,
}

impl Plugin for Stamp {
    fn before<'a>(&'a self, request: &'a mut PluginRequest) -> PluginFuture<'a, Verdict> {
        Box::pin(async move {
            let count = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            let message = request
                .arguments()
                .and_then(|a| a.get("message"))
                .and_then(Value::as_str);
            if message == Some("forbidden") {
                return Ok(Verdict::deny("that word is forbidden"));
            }
            Ok(Verdict::proceed()
                .with_annotation("label", self.label.clone())
                .with_annotation("count", count))
        })
    }

    fn after<'a>(&'a self, _request: &'a PluginRequest, result: &'a mut Value) -> PluginFuture<'a, Verdict> {
        Box::pin(async move {
            if let Some(Value::String(text)) = result.pointer_mut("/content/0/text") {
                *text = format!("{}: {text}", self.label);
            }
            Ok(Verdict::proceed())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_kind_registered_from_rust_is_used_from_yaml() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let registry = PluginRegistry::new().with("stamp", move |options: &mut Options| {
        let label: String = options.require("label")?;
        Ok(Box::new(Stamp {
            label,
            calls: counted.clone(),
        }) as Box<dyn Plugin>)
    });
    let yaml = "upstreams:\n  - {name: e, builtin: everything}\nplugins:\n  - {name: mine, kind: stamp, label: hello, tools: [echo]}\n";
    let config = Config::parse(yaml, false).expect("a kind the file does not know is left to the gateway");

    // A gateway without the kind refuses the configuration, naming the key.
    let refused = Gateway::start(config.clone(), Duration::from_secs(1))
        .await
        .err()
        .expect("refused");
    assert!(
        refused.starts_with("plugins[0].kind: unknown plugin kind `stamp`; known: deny_tools, guard, redact, webhook"),
        "{refused}"
    );
    // Its options are the kind's to check, naming the key too.
    let mistyped = Config::parse(&yaml.replace("label:", "lable:"), false).expect("reads");
    let refused = Gateway::start_with(mistyped, Duration::from_secs(1), registry.clone())
        .await
        .err()
        .expect("refused");
    assert_eq!(refused, "plugins[0].label: is required for a `stamp` plugin");

    let gateway = Running::serve_with(config, registry).await;
    let echo = call(&gateway, "e__echo", json!({"message": "hi"})).await;
    assert_eq!(first_text(&echo), "hello: hi");
    assert_eq!(
        echo["result"]["_meta"][META_KEY],
        json!({"mine": {"label": "hello", "count": 1}})
    );
    let forbidden = call(&gateway, "e__echo", json!({"message": "forbidden"})).await;
    assert_eq!(
        refusal(&forbidden),
        &json!({"plugin": "mine", "hook": "before", "reason": "that word is forbidden"})
    );
    // Out of its scope (`tools: [echo]`): not run.
    let simple = call(&gateway, "e__test_simple_text", json!({})).await;
    assert!(!first_text(&simple).starts_with("hello: "), "{simple}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn invalid_plugin_configurations_are_refused_at_load_naming_the_key() {
    let cases = [
        (
            "- {name: g, kind: guard, max_argument_bytes: lots}",
            "plugins[0].max_argument_bytes: invalid type",
        ),
        (
            "- {name: g, kind: guard}",
            "plugins[0].max_argument_bytes: a `guard` plugin needs",
        ),
        (
            "- {name: g, kind: guard, schema: true, max_bytes: 3}",
            "plugins[0].max_bytes: is not a key of a `guard` plugin",
        ),
        (
            "- {name: w, kind: webhook, url: 'ftp://x'}",
            "plugins[0].url: `ftp://x` is not an http:// or https:// URL",
        ),
        (
            "- {name: w, kind: webhook, url: 'http://x', headers: {'a b': c}}",
            "plugins[0].headers.a b:",
        ),
        (
            "- {name: r, kind: redact, builtins: [phone]}",
            "plugins[0].builtins[0]: unknown built-in pattern `phone`",
        ),
        (
            "- {name: r, kind: redact, patterns: [{name: x, regex: '(('}]}",
            "plugins[0].patterns[0].regex:",
        ),
        ("- {name: d, kind: deny_tools}", "plugins[0].patterns: is required"),
        (
            "- {name: d, kind: deny_tools, patterns: [x]}\n- {name: d, kind: deny_tools, patterns: [y]}",
            "plugins[1].name: `d` names two plugins",
        ),
        (
            "- {name: d, kind: deny_tools, patterns: [x], methods: ['{a,b}']}",
            "plugins[0].methods[0]:",
        ),
        (
            "- {name: d, kind: deny_tools, patterns: [x], timeout: 0ms}",
            "plugins[0].timeout: must be longer than 0",
        ),
    ];
    for (plugins, expected) in cases {
        let yaml = format!("plugins:\n{plugins}\n");
        let error = Config::parse(&yaml, false).expect_err("refused").to_string();
        assert!(error.starts_with(expected), "{plugins}: {error}");
    }
    // Mistyped common keys, as the parser says them (with the line).
    let error = Config::parse(
        "plugins:\n  - {name: d, kind: deny_tools, patterns: [x], on_error: maybe}\n",
        false,
    )
    .expect_err("refused")
    .to_string();
    assert!(
        error.contains("plugins[0]") && error.contains("unknown variant `maybe`"),
        "{error}"
    );
    let error = Config::parse("plugins:\n  - {kind: guard}\n", false)
        .expect_err("refused")
        .to_string();
    assert!(error.contains("missing field `name`"), "{error}");
    // TOML names the key the same way.
    let error = Config::parse(
        "[[plugins]]\nname = \"g\"\nkind = \"guard\"\nmax_argument_bytes = \"lots\"\n",
        true,
    )
    .expect_err("refused")
    .to_string();
    assert!(
        error.starts_with("plugins[0].max_argument_bytes: invalid type"),
        "{error}"
    );
}
