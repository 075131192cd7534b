//! The configuration replaced while the gateway serves: from its file, and through the admin
//! API.

use portico_core::client::Protocol;

use super::*;

/// A configuration file of the test's own, removed when dropped.
pub(super) struct File(pub(super) std::path::PathBuf);

impl File {
    pub(super) fn new(name: &str, text: &str) -> Self {
        let path = std::env::temp_dir().join(format!("portico-gateway-it-{}-{name}", std::process::id()));
        std::fs::write(&path, text).expect("writing");
        Self(path)
    }

    pub(super) fn write(&self, text: &str) {
        // Written beside and renamed over, as editors and deployments do.
        let next = self.0.with_extension("next");
        std::fs::write(&next, text).expect("writing");
        std::fs::rename(&next, &self.0).expect("renaming");
    }
}

impl Drop for File {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn tool_names(client: &Client) -> Vec<String> {
    client
        .list_all_tools()
        .await
        .expect("tools")
        .into_iter()
        .map(|t| t.name)
        .collect()
}

/// Waits until `done` holds.
pub(super) async fn until<F: std::future::Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    within(what, async {
        while !done().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_file_is_applied_without_dropping_calls_and_a_bad_one_is_refused() {
    let file = File::new("reload.yaml", "upstreams:\n  - {name: a, builtin: everything}\n");
    let gateway = Running::start_file(&file.0).await;
    gateway.gateway.watch_file(file.0.clone(), Duration::from_millis(100));
    let client = gateway.client("/mcp", Protocol::Stateless, ()).await;
    assert!(tool_names(&client).await.contains(&"a__slow_compute".to_string()));

    // A call in flight on `a` while `a` is replaced (a new prefix) and `b` added.
    let slow = {
        let client = client.clone();
        tokio::spawn(async move { client.call_tool("a__slow_compute", json!({"seconds": 2})).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    file.write("upstreams:\n  - {name: a, builtin: everything, prefix: x}\n  - {name: b, builtin: everything}\n");
    until("the new file applied", || async {
        let names = tool_names(&client).await;
        names.contains(&"x__slow_compute".to_string()) && names.contains(&"b__test_simple_text".to_string())
    })
    .await;
    assert!(!tool_names(&client).await.contains(&"a__slow_compute".to_string()));
    let finished = within("the call in flight", slow)
        .await
        .expect("task")
        .expect("it finished");
    assert!(text(&finished).contains("Computed"), "{finished:?}");
    // The new upstream has its endpoint.
    let b = gateway.client("/mcp/b", Protocol::Stateless, ()).await;
    b.call_tool("test_simple_text", json!({})).await.expect("call");

    // A bad file is refused, naming the key; the configuration in force keeps serving.
    file.write("upstreams:\n  - {name: a, builtin: everything, prefix: x}\n  - {name: b, url: 'ftp://nowhere'}\n");
    until("the bad file refused", || async {
        gateway.gateway.last_change().is_some_and(|c| c.outcome == "rejected")
    })
    .await;
    let change = gateway.gateway.last_change().expect("a change");
    assert!(
        change.error.as_deref().is_some_and(|e| e.contains("upstreams[1].url")),
        "{change:?}"
    );
    assert!(tool_names(&client).await.contains(&"b__test_simple_text".to_string()));
    client
        .call_tool("b__test_simple_text", json!({}))
        .await
        .expect("still served");
    let (_, config) = gateway.get_json("/admin/config").await;
    assert_eq!(config["last_change"]["outcome"], "rejected", "{config}");
}

/// Sends `method` to the gateway's `path` with a JSON `body`: status and JSON answer.
async fn send(
    gateway: &Running,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::new().request(method, format!("{}{path}", gateway.base));
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = request.send().await.expect("sent");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_adds_changes_and_removes_upstreams_and_virtual_servers() {
    use reqwest::Method;
    let gateway = Running::start("upstreams:\n  - {name: a, builtin: everything}\n").await;
    let (status, body) = send(
        &gateway,
        Method::PUT,
        "/admin/upstreams/b",
        Some(json!({"name": "b", "builtin": "everything"})),
        None,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let client = gateway.client("/mcp/b", Protocol::Stateless, ()).await;
    client
        .call_tool("test_simple_text", json!({}))
        .await
        .expect("the new endpoint serves");
    let (status, body) = send(
        &gateway,
        Method::PUT,
        "/admin/upstreams/b",
        Some(json!({"name": "b", "builtin": "everything", "prefix": "bee"})),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, listed) = send(&gateway, Method::GET, "/admin/upstreams", None, None).await;
    assert_eq!(listed["upstreams"][1]["config"]["prefix"], "bee", "{listed}");

    // Refused changes name the key and change nothing.
    let (status, body) = send(
        &gateway,
        Method::PUT,
        "/admin/upstreams/c",
        Some(json!({"name": "c", "url": "ftp://x"})),
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("upstreams[2].url")),
        "{body}"
    );
    let (status, body) = send(
        &gateway,
        Method::PUT,
        "/admin/upstreams/c",
        Some(json!({"name": "other", "builtin": "everything"})),
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = send(
        &gateway,
        Method::PUT,
        "/admin/upstreams/c",
        Some(json!({"name": "c", "comand": []})),
        None,
    )
    .await;
    assert_eq!(status, 400);

    // A virtual server over the new upstream.
    let server = json!({"name": "v", "tools": [{"upstream": "b", "tool": "test_simple_text", "rename": "hello"}]});
    let (status, body) = send(&gateway, Method::PUT, "/admin/virtual-servers/v", Some(server), None).await;
    assert_eq!(status, 201, "{body}");
    let v = gateway.client("/mcp/v", SESSION, ()).await;
    v.call_tool("hello", json!({}))
        .await
        .expect("the virtual server serves");
    // The upstream cannot go while the virtual server uses it.
    let (status, body) = send(&gateway, Method::DELETE, "/admin/upstreams/b", None, None).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("virtual_servers[0]")),
        "{body}"
    );
    let (status, _) = send(&gateway, Method::DELETE, "/admin/virtual-servers/v", None, None).await;
    assert_eq!(status, 204);
    let (status, _) = send(&gateway, Method::DELETE, "/admin/upstreams/b", None, None).await;
    assert_eq!(status, 204);
    let (status, body) = send(&gateway, Method::POST, "/mcp/b", Some(json!({})), None).await;
    assert_eq!(status, 404, "the endpoint went with its upstream: {body}");
    let (status, _) = send(&gateway, Method::DELETE, "/admin/upstreams/b", None, None).await;
    assert_eq!(status, 404);

    // The document and its page.
    let (status, document) = send(&gateway, Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(document["openapi"], "3.1.0");
    assert!(
        document["paths"]["/admin/upstreams/{name}"]["put"].is_object(),
        "{document}"
    );
    assert!(
        document["components"]["schemas"]["ReplicaConfig"].is_object(),
        "{document}"
    );
    let page = reqwest::get(format!("{}/admin/docs", gateway.base))
        .await
        .expect("GET")
        .text()
        .await
        .expect("page");
    assert!(page.contains("PUT /admin/upstreams/{name}"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_wants_its_token_when_one_is_set() {
    use reqwest::Method;
    let gateway = Running::start("admin: {token: s3cret}\nupstreams:\n  - {name: a, builtin: everything}\n").await;
    let (status, body) = send(&gateway, Method::GET, "/admin/config", None, None).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = send(&gateway, Method::GET, "/admin/config", None, Some("wrong")).await;
    assert_eq!(status, 401);
    let (status, body) = send(&gateway, Method::GET, "/admin/config", None, Some("s3cret")).await;
    assert_eq!(status, 200);
    assert_eq!(body["config"]["admin"]["token"], "<redacted>", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_command_line_set_over_the_file_holds_across_reloads() {
    let file = File::new("overridden.yaml", "upstreams:\n  - {name: a, builtin: everything}\n");
    let gateway = Running::start_file(&file.0).await;
    // The gateway runs on a state store and an address the file does not name (as `portico
    // gateway --state … --listen …` does).
    let started = gateway.gateway.config();
    assert_ne!(started.state.url, Config::default().state.url);
    let (listen, state) = (started.listen, started.state.url.clone());
    gateway
        .gateway
        .watch_file_with(file.0.clone(), Duration::from_millis(100), move |config| {
            config.listen = listen;
            config.state.url.clone_from(&state);
        });
    file.write("upstreams:\n  - {name: a, builtin: everything}\n  - {name: b, builtin: everything}\n");
    // The change is recorded after the new configuration is in force: wait for the record.
    until("the new file applied", || async {
        gateway.gateway.last_change().is_some_and(|c| c.source == "file")
    })
    .await;
    assert_eq!(gateway.gateway.last_change().map(|c| c.outcome), Some("applied".into()));
    let reloaded = gateway.gateway.config();
    assert!(reloaded.upstream("b").is_some(), "the new file is in force");
    assert_eq!(reloaded.state.url, started.state.url, "the override holds");
    assert_eq!(reloaded.listen, started.listen);
}
