//! The cache end to end, on the memory backend and on the machine's Redis: an upstream that
//! counts every call and read behind a gateway with `auth`, callers told apart by their
//! tokens' subjects. A private result never reaches another principal, a public one is shared;
//! `ttlMs` is respected; concurrent identical calls make one upstream call (and a leader that
//! goes away leaves no one hanging); only opted-in tools annotated read-only and idempotent are
//! cached; list_changed, a reload and a policy change invalidate; Redis going away fails open
//! (or closed, as configured) and the cache recovers; bad sections are refused naming the key.
//!
//! Redis (127.0.0.1:6379, or `PORTICO_TEST_REDIS`) must be running, as for the rate limit
//! tests. Each test names its upstream uniquely: entries in Redis are per upstream, and outlive
//! a test run.

use std::collections::HashMap;
use std::sync::Mutex;

use portico_core::client::RequestOptions;
use portico_core::server::catalog::{Catalog, CatalogFeatures, CatalogFuture};
use portico_core::server::{Change, Context, Server};
use portico_gateway::config::{Config, ConfigError};
use serde_json::{Map, Value};

use super::auth::{AUDIENCE, ISSUER, SECRET, claims, hs256};
use super::limits::{metrics_text, post, redis_url, unique};
use super::reload::until;
use super::*;

/// What the upstream serves: tools (some annotated read-only and idempotent), resources named
/// `cache://<scope>/<ttl ms>` whose reads say that scope and `ttlMs`, each use counted.
struct Source {
    tools: Mutex<Vec<wire::Tool>>,
    uses: Mutex<HashMap<String, usize>>,
    /// How long a tool call takes, in ms.
    delay: AtomicUsize,
}

/// The resources the upstream lists.
const RESOURCES: &[&str] = &[
    "cache://public/60000",
    "cache://private/60000",
    "cache://public/1500",
    "cache://public/0",
];

fn tool(name: &str, annotations: Value) -> wire::Tool {
    serde_json::from_value(json!({
        "name": name,
        "inputSchema": {"type": "object"},
        "annotations": annotations,
    }))
    .expect("a tool")
}

impl Source {
    fn new() -> Arc<Self> {
        let cached = json!({"readOnlyHint": true, "idempotentHint": true});
        Arc::new(Self {
            tools: Mutex::new(vec![
                tool("lookup", cached.clone()),
                tool("mirror", cached.clone()),
                tool("ask", cached),
                tool("peek", json!({"readOnlyHint": true})),
                tool("write", json!({})),
            ]),
            uses: Mutex::default(),
            delay: AtomicUsize::new(0),
        })
    }

    /// Counts a use of `name`; its number.
    fn use_of(&self, name: &str) -> usize {
        let mut uses = self.uses.lock().expect("uses");
        let n = uses.entry(name.to_string()).or_default();
        *n += 1;
        *n
    }

    fn uses(&self, name: &str) -> usize {
        self.uses.lock().expect("uses").get(name).copied().unwrap_or(0)
    }
}

/// The catalog serving a shared [`Source`].
struct Serving(Arc<Source>);

impl Catalog for Serving {
    fn features(&self) -> CatalogFeatures {
        CatalogFeatures::all()
    }

    fn list_tools<'a>(&'a self, _cx: &'a Context) -> CatalogFuture<'a, Vec<wire::Tool>> {
        Box::pin(async move { Ok(self.0.tools.lock().expect("tools").clone()) })
    }

    fn call_tool<'a>(
        &'a self,
        cx: &'a Context,
        name: &'a str,
        arguments: Option<Map<String, Value>>,
    ) -> CatalogFuture<'a, Value> {
        Box::pin(async move {
            let n = self.0.use_of(name);
            let delay = self.0.delay.load(Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(delay as u64)).await;
            if name == "ask" {
                let roots = cx
                    .list_roots()
                    .await
                    .map_err(|e| ErrorObject::internal(e.to_string()))?;
                let text = format!("ask #{n} ({} roots)", roots.roots.len());
                return Ok(json!({"content": [{"type": "text", "text": text}], "resultType": "complete"}));
            }
            let arguments = Value::Object(arguments.unwrap_or_default());
            let text = format!("{name} #{n} {arguments}");
            Ok(json!({"content": [{"type": "text", "text": text}], "resultType": "complete"}))
        })
    }

    fn list_resources<'a>(&'a self, _cx: &'a Context) -> CatalogFuture<'a, Vec<wire::Resource>> {
        Box::pin(async move {
            Ok(RESOURCES
                .iter()
                .map(|uri| serde_json::from_value(json!({"uri": uri, "name": uri})).expect("a resource"))
                .collect())
        })
    }

    fn read_resource<'a>(&'a self, _cx: &'a Context, uri: &'a str) -> CatalogFuture<'a, Option<Value>> {
        Box::pin(async move {
            let Some((scope, ttl)) = uri.strip_prefix("cache://").and_then(|rest| rest.split_once('/')) else {
                return Ok(None);
            };
            let ttl: i64 = ttl.parse().map_err(|_| ErrorObject::invalid_params("a ttl"))?;
            let n = self.0.use_of(uri);
            Ok(Some(json!({
                "contents": [{"uri": uri, "text": format!("read #{n} of {uri}")}],
                "ttlMs": ttl,
                "cacheScope": scope,
                "resultType": "complete",
            })))
        })
    }
}

/// The upstream on a Streamable HTTP listener of its own.
struct Upstream {
    url: String,
    source: Arc<Source>,
    server: Server,
    shutdown: CancellationToken,
}

impl Upstream {
    async fn start() -> Self {
        let source = Source::new();
        let server = Server::builder("cached", "1.0.0")
            .catalog(Serving(source.clone()))
            .build();
        let config = HttpConfig::default();
        let shutdown = config.shutdown.clone();
        let serving = server.clone();
        let app = StreamableHttp::new(move || serving.connection(), config).router();
        let url = serve_mcp(app, &shutdown).await;
        Self {
            url,
            source,
            server,
            shutdown,
        }
    }

    fn uses(&self, name: &str) -> usize {
        self.source.uses(name)
    }

    /// Lists one more tool, and says so.
    fn add_tool(&self, name: &str) {
        self.source.tools.lock().expect("tools").push(tool(name, json!({})));
        self.server.notify(Change::ToolsListChanged);
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The backends every test runs on: the `state` and `cache.backend` lines of each.
async fn backends() -> Vec<(&'static str, String)> {
    let redis = redis_url().await;
    vec![
        ("memory", "cache_backend: memory\n".into()),
        ("redis", format!("state_redis: '{redis}'\ncache_backend: redis\n")),
    ]
}

/// A gateway with `auth` in front of `upstream` (named `name`, unprefixed), `cache` settings
/// `cache` (a flow mapping's inside) on `backend` (one of [`backends`]), and `extra` YAML.
fn config_yaml(name: &str, upstream: &str, backend: &str, cache: &str, extra: &str) -> String {
    let redis = backend
        .lines()
        .find_map(|l| l.strip_prefix("state_redis: "))
        .map(|url| format!("state:\n  redis: {url}\n"))
        .unwrap_or_default();
    let backend = backend
        .lines()
        .find_map(|l| l.strip_prefix("cache_backend: "))
        .unwrap_or("memory");
    format!(
        "auth:\n  jwt:\n    issuer: '{ISSUER}'\n    audience: ['{AUDIENCE}']\n    keys:\n      - {{kid: hs, alg: HS256, secret: '{SECRET}'}}\nupstreams:\n  - {{name: {name}, url: '{upstream}', prefix: ''}}\n{redis}cache: {{backend: {backend}, {cache}}}\n{extra}"
    )
}

/// The bearer token of `subject`, holding `roles`.
fn bearer(subject: &str, roles: &[&str]) -> String {
    format!(
        "Bearer {}",
        hs256(
            "hs",
            &claims(|c| {
                c["sub"] = subject.into();
                c["roles"] = json!(roles);
            })
        )
    )
}

/// Calls `tool` with `arguments` as `subject`: the result's text.
async fn call_as(gateway: &Running, subject: &str, tool: &str, arguments: Value) -> String {
    let answer = post(
        &gateway.base,
        "/mcp",
        "tools/call",
        json!({"name": tool, "arguments": arguments}),
        Some(&bearer(subject, &["reader"])),
    )
    .await;
    answer.body["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{tool} as {subject}: {}", answer.body))
        .to_string()
}

/// Reads `uri` as `subject` on the endpoint `path`: the text and the result's `ttlMs`.
async fn read_as(gateway: &Running, path: &str, subject: &str, uri: &str) -> (String, Option<u64>) {
    let answer = post(
        &gateway.base,
        path,
        "resources/read",
        json!({"uri": uri}),
        Some(&bearer(subject, &["reader"])),
    )
    .await;
    let result = &answer.body["result"];
    let text = result["contents"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{uri} as {subject}: {}", answer.body))
        .to_string();
    (text, result["ttlMs"].as_u64())
}

/// `tools/list` as `subject` holding `roles`: the whole result.
async fn list_as(gateway: &Running, subject: &str, roles: &[&str]) -> Value {
    let answer = post(
        &gateway.base,
        "/mcp",
        "tools/list",
        json!({}),
        Some(&bearer(subject, roles)),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body["result"].clone()
}

fn tool_names(list: &Value) -> Vec<String> {
    list["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The value of the cache counter of `kind` and `outcome` at `/metrics` (0 when absent).
async fn counted(gateway: &Running, kind: &str, outcome: &str) -> u64 {
    let text = metrics_text(&gateway.base).await;
    let line = format!("portico_gateway_cache_requests_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&line))
        .map_or(0, |n| n.parse().expect("a count"))
}

/// A session client of `/mcp` as `subject`, answering questions.
async fn session_as(gateway: &Running, subject: &str) -> Client {
    let url = format!("{}/mcp", gateway.base);
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("authorization", bearer(subject, &["reader"]).parse().expect("a header"));
    within(
        "connecting",
        Client::builder(wire::Implementation::new("cache-test", "1"))
            .handler(Answers::default())
            .protocol(SESSION)
            .connect(|service| {
                connect(
                    &url,
                    service,
                    HttpClientConfig {
                        headers,
                        ..HttpClientConfig::default()
                    },
                )
            }),
    )
    .await
    .expect("a session")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_result_is_never_served_to_another_principal_and_a_public_one_is_shared() {
    for (backend, lines) in backends().await {
        let upstream = Upstream::start().await;
        let name = unique("private");
        let gateway = Running::start(&config_yaml(
            &name,
            &upstream.url,
            &lines,
            "default_ttl: 1h, tools: [lookup]",
            "",
        ))
        .await;
        let private = "cache://private/60000";
        let (ada, _) = read_as(&gateway, "/mcp", "ada", private).await;
        let (bob, _) = read_as(&gateway, "/mcp", "bob", private).await;
        assert_eq!(ada, format!("read #1 of {private}"), "{backend}");
        assert_eq!(
            bob,
            format!("read #2 of {private}"),
            "{backend}: bob got ada's private result"
        );
        for _ in 0..3 {
            assert_eq!(read_as(&gateway, "/mcp", "ada", private).await.0, ada, "{backend}");
            assert_eq!(read_as(&gateway, "/mcp", "bob", private).await.0, bob, "{backend}");
        }
        assert_eq!(upstream.uses(private), 2, "{backend}: one read per principal");

        let public = "cache://public/60000";
        let (first, _) = read_as(&gateway, "/mcp", "ada", public).await;
        assert_eq!(first, format!("read #1 of {public}"));
        for subject in ["bob", "cy", "ada"] {
            assert_eq!(
                read_as(&gateway, "/mcp", subject, public).await.0,
                first,
                "{backend}: shared"
            );
        }
        assert_eq!(upstream.uses(public), 1, "{backend}");

        // Tool results are always the principal's, and keyed by their arguments.
        let q1 = json!({"q": 1, "z": [1, 2]});
        let ada_q1 = call_as(&gateway, "ada", "lookup", q1.clone()).await;
        let bob_q1 = call_as(&gateway, "bob", "lookup", q1.clone()).await;
        assert_eq!(ada_q1, format!("lookup #1 {q1}"), "{backend}");
        assert_eq!(bob_q1, format!("lookup #2 {q1}"), "{backend}");
        assert_eq!(call_as(&gateway, "ada", "lookup", q1.clone()).await, ada_q1);
        assert_eq!(call_as(&gateway, "bob", "lookup", q1.clone()).await, bob_q1);
        // The same arguments written in another order are the same arguments.
        let reordered: Value = serde_json::from_str(r#"{"z": [1, 2], "q": 1}"#).expect("JSON");
        assert_eq!(call_as(&gateway, "ada", "lookup", reordered).await, ada_q1);
        let q2 = json!({"q": 2});
        assert_eq!(
            call_as(&gateway, "ada", "lookup", q2.clone()).await,
            format!("lookup #3 {q2}")
        );
        assert_eq!(upstream.uses("lookup"), 3, "{backend}");

        assert!(counted(&gateway, "resource", "hit").await >= 9, "{backend}");
        assert_eq!(counted(&gateway, "resource", "miss").await, 3, "{backend}");
        assert_eq!(counted(&gateway, "tool", "hit").await, 3, "{backend}");
        assert_eq!(counted(&gateway, "tool", "miss").await, 3, "{backend}");
        // Served from the cache: not relayed, so not counted as relayed calls.
        let metrics = metrics_text(&gateway.base).await;
        let relayed = format!(
            "portico_gateway_requests_total{{upstream=\"{name}\",method=\"tools/call\",tool=\"lookup\",outcome=\"ok\"}} 3\n"
        );
        assert!(metrics.contains(&relayed), "{backend}: {metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_ms_is_respected_and_results_without_one_get_the_default() {
    for (backend, lines) in backends().await {
        let upstream = Upstream::start().await;
        let name = unique("ttl");
        // The same server again as an upstream spoken to in a 2025-11-25 session, whose reads
        // carry no `ttlMs` and no `cacheScope`.
        let old = unique("old");
        let yaml = config_yaml(&name, &upstream.url, &lines, "default_ttl: 1h", "").replace(
            "prefix: ''}\n",
            &format!(
                "prefix: ''}}\n  - {{name: {old}, url: '{}', protocol: stateful}}\n",
                upstream.url
            ),
        );
        let gateway = Running::start(&yaml).await;

        let short = "cache://public/1500";
        let started = std::time::Instant::now();
        let (first, ttl) = read_as(&gateway, "/mcp", "ada", short).await;
        assert_eq!(first, format!("read #1 of {short}"), "{backend}");
        assert_eq!(ttl, Some(1500), "{backend}");
        let (again, left) = read_as(&gateway, "/mcp", "bob", short).await;
        if started.elapsed() < Duration::from_millis(1400) {
            assert_eq!(again, first, "{backend}: served before its ttlMs ran out");
            let left = left.expect("a ttlMs");
            assert!(left <= 1500, "{backend}: what is left of it, {left}");
        }
        tokio::time::sleep(Duration::from_millis(1600).saturating_sub(started.elapsed())).await;
        let (later, _) = read_as(&gateway, "/mcp", "ada", short).await;
        assert_eq!(later, format!("read #2 of {short}"), "{backend}: read again once stale");

        // `ttlMs: 0` is stale at once: never kept.
        let stale = "cache://public/0";
        for n in 1..=3 {
            assert_eq!(
                read_as(&gateway, "/mcp", "ada", stale).await.0,
                format!("read #{n} of {stale}")
            );
        }

        // Without `ttlMs` (an older upstream): `default_ttl`, and private.
        let path = format!("/mcp/{old}");
        let before = upstream.uses(stale);
        let (ada, ttl) = read_as(&gateway, &path, "ada", stale).await;
        assert_eq!(ttl, Some(0), "{backend}: the gateway says nothing it was not told");
        assert_eq!(read_as(&gateway, &path, "ada", stale).await.0, ada, "{backend}");
        let (bob, _) = read_as(&gateway, &path, "bob", stale).await;
        assert_ne!(bob, ada, "{backend}: private by default");
        assert_eq!(upstream.uses(stale), before + 2, "{backend}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_calls_reach_the_upstream_once() {
    for (backend, lines) in backends().await {
        let upstream = Upstream::start().await;
        let name = unique("coalesce");
        let gateway = Arc::new(
            Running::start(&config_yaml(
                &name,
                &upstream.url,
                &lines,
                "default_ttl: 1h, tools: [lookup]",
                "",
            ))
            .await,
        );
        upstream.source.delay.store(500, Ordering::SeqCst);
        const CALLS: usize = 8;
        let calls: Vec<_> = (0..CALLS)
            .map(|_| {
                let gateway = gateway.clone();
                tokio::spawn(async move { call_as(&gateway, "ada", "lookup", json!({"q": "same"})).await })
            })
            .collect();
        let mut texts = Vec::new();
        for call in calls {
            texts.push(within("a call", call).await.expect("a call"));
        }
        assert!(texts.iter().all(|t| t == &texts[0]), "{backend}: {texts:?}");
        assert_eq!(upstream.uses("lookup"), 1, "{backend}: the upstream counted {texts:?}");
        let coalesced = counted(&gateway, "tool", "coalesced").await;
        let hits = counted(&gateway, "tool", "hit").await;
        assert_eq!(coalesced + hits, CALLS as u64 - 1, "{backend}");
        assert!(coalesced >= 1, "{backend}: no call waited for the first one");

        // Another principal's identical call is its own.
        let bob = call_as(&gateway, "bob", "lookup", json!({"q": "same"})).await;
        assert_ne!(bob, texts[0]);

        // The first caller goes away (its call times out, and is cancelled): those waiting
        // for it do not hang, and each makes the call itself.
        upstream.source.delay.store(1500, Ordering::SeqCst);
        let before = upstream.uses("lookup");
        let session = session_as(&gateway, "cy").await;
        let options = RequestOptions::new().timeout(Duration::from_millis(700));
        let leader = tokio::spawn(async move {
            let outcome = session.call_tool_with("lookup", json!({"q": "gone"}), &options).await;
            (session, outcome)
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let followers: Vec<_> = (0..3)
            .map(|_| {
                let gateway = gateway.clone();
                tokio::spawn(async move { call_as(&gateway, "cy", "lookup", json!({"q": "gone"})).await })
            })
            .collect();
        let (_session, outcome) = within("the first call", leader).await.expect("the first call");
        assert!(
            outcome.is_err(),
            "{backend}: the first call was to time out: {outcome:?}"
        );
        let mut texts = Vec::new();
        for follower in followers {
            texts.push(within("a waiting call", follower).await.expect("a waiting call"));
        }
        texts.sort();
        texts.dedup();
        assert_eq!(texts.len(), 3, "{backend}: each made its own call: {texts:?}");
        assert_eq!(upstream.uses("lookup"), before + 4, "{backend}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_opted_in_tools_annotated_read_only_and_idempotent_are_cached() {
    let upstream = Upstream::start().await;
    let name = unique("optin");
    let gateway = Running::start(&config_yaml(
        &name,
        &upstream.url,
        "",
        "default_ttl: 1h, tools: [lookup, 'pe*', write, ask]",
        "",
    ))
    .await;
    let twice = |tool: &'static str| {
        let gateway = &gateway;
        async move {
            let first = call_as(gateway, "ada", tool, json!({})).await;
            let second = call_as(gateway, "ada", tool, json!({})).await;
            (first, second)
        }
    };
    let (a, b) = twice("lookup").await;
    assert_eq!(a, b, "named and annotated");
    let (a, b) = twice("mirror").await;
    assert_ne!(a, b, "annotated, not named");
    let (a, b) = twice("peek").await;
    assert_ne!(a, b, "named, read-only but not idempotent");
    let (a, b) = twice("write").await;
    assert_ne!(a, b, "named, not annotated");
    assert_eq!(counted(&gateway, "tool", "bypass").await, 4);
    assert_eq!(counted(&gateway, "tool", "miss").await, 1);

    // A result the upstream asked the client a question for depends on the answer: not kept.
    let session = session_as(&gateway, "ada").await;
    let first = session.call_tool("ask", json!({})).await.expect("ask");
    let second = session.call_tool("ask", json!({})).await.expect("ask");
    // (The upstream runs it again as it gets its answer: two uses a call.)
    assert!(
        text(&first).starts_with("ask #") && text(&first).ends_with("(1 roots)"),
        "{first:?}"
    );
    assert_ne!(text(&first), text(&second));
    assert_eq!(upstream.uses("ask"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_changed_a_reload_and_a_policy_change_invalidate() {
    const POLICY: &str = "policy:\n  roles:\n    reader:\n      grants:\n        - allow: {tools: [lookup, 'added_*']}\n    admin:\n      grants:\n        - allow: {}\n";
    for (backend, lines) in backends().await {
        let upstream = Upstream::start().await;
        let name = unique("invalidate");
        let yaml = config_yaml(&name, &upstream.url, &lines, "default_ttl: 1h, tools: [lookup]", POLICY);
        let gateway = Running::start(&yaml).await;
        let lookup = || call_as(&gateway, "ada", "lookup", json!({}));
        assert_eq!(lookup().await, "lookup #1 {}", "{backend}");
        assert_eq!(lookup().await, "lookup #1 {}", "{backend}");

        // Lists are kept per role set, and say so.
        let reader = list_as(&gateway, "ada", &["reader"]).await;
        assert_eq!(tool_names(&reader), ["lookup"], "{backend}");
        assert_eq!(reader["cacheScope"], "private", "{backend}: the policy filters lists");
        assert_eq!(reader["ttlMs"], 0);
        let admin = list_as(&gateway, "bob", &["admin"]).await;
        assert_eq!(tool_names(&admin).len(), 5, "{backend}: {admin}");
        assert_eq!(list_as(&gateway, "cy", &["reader"]).await, reader, "{backend}: kept");
        assert_eq!(tool_names(&list_as(&gateway, "bob", &["admin"]).await).len(), 5);
        assert!(counted(&gateway, "list", "hit").await >= 2, "{backend}");

        // The upstream's list changes: lists and its results go.
        upstream.add_tool("added_1");
        until("the new tool listed", || async {
            tool_names(&list_as(&gateway, "ada", &["reader"]).await).contains(&"added_1".to_string())
        })
        .await;
        assert_eq!(
            lookup().await,
            "lookup #2 {}",
            "{backend}: dropped with the list change"
        );
        assert_eq!(lookup().await, "lookup #2 {}");

        // A reload (the same file again) drops everything.
        let config = Config::parse(&yaml, false).expect("config");
        gateway.gateway.apply(config).await.expect("applied");
        assert_eq!(lookup().await, "lookup #3 {}", "{backend}: dropped by the reload");
        assert_eq!(lookup().await, "lookup #3 {}");

        // A policy change: the reader loses the added tools; lists and results are new.
        let narrower = yaml.replace("allow: {tools: [lookup, 'added_*']}", "allow: {tools: [lookup]}");
        gateway
            .gateway
            .apply(Config::parse(&narrower, false).expect("config"))
            .await
            .expect("applied");
        assert_eq!(
            tool_names(&list_as(&gateway, "ada", &["reader"]).await),
            ["lookup"],
            "{backend}"
        );
        assert_eq!(
            lookup().await,
            "lookup #4 {}",
            "{backend}: dropped by the policy change"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_are_public_without_a_policy_and_say_the_configured_ttl() {
    let upstream = Upstream::start().await;
    let name = unique("lists");
    let gateway = Running::start(&config_yaml(&name, &upstream.url, "", "list_ttl: 5s", "")).await;
    let cold = list_as(&gateway, "ada", &[]).await;
    assert_eq!(cold["cacheScope"], "public");
    assert_eq!(cold["ttlMs"], 5000);
    let warm = list_as(&gateway, "bob", &[]).await;
    assert_eq!(warm, cold, "the same list, from the cache");
    assert_eq!(counted(&gateway, "list", "miss").await, 1);
    assert_eq!(counted(&gateway, "list", "hit").await, 1);
    // Without a cache, lists say what they said before: public, and the framework's ttl.
    let plain = Running::start(&format!("upstreams:\n  - {{name: {name}, url: '{}'}}\n", upstream.url)).await;
    let listed = post(&plain.base, "/mcp", "tools/list", json!({}), None).await;
    assert_eq!(listed.body["result"]["cacheScope"], "public", "{}", listed.body);
    assert_eq!(listed.body["result"]["ttlMs"], 0);
    assert!(
        !metrics_text(&plain.base)
            .await
            .contains("portico_gateway_cache_requests_total{")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_away_fails_open_and_the_cache_recovers_without_serving_what_was_dropped() {
    let redis = redis_url().await;
    let (proxy, proxied) = Proxy::for_redis(&redis).await;
    let upstream = Upstream::start().await;
    let name = unique("away");
    let lines = format!("state_redis: '{proxied}'\ncache_backend: redis\n");
    let gateway = Running::start(&config_yaml(
        &name,
        &upstream.url,
        &lines,
        "default_ttl: 1h, tools: [lookup, mirror]",
        "",
    ))
    .await;
    let call = |tool: &'static str| call_as(&gateway, "ada", tool, json!({}));
    assert_eq!(call("lookup").await, "lookup #1 {}");
    assert_eq!(call("lookup").await, "lookup #1 {}");
    assert_eq!(call("mirror").await, "mirror #1 {}");

    proxy.down();
    // Answers stay right: relayed, as if nothing were cached.
    assert_eq!(call("lookup").await, "lookup #2 {}");
    assert_eq!(call("lookup").await, "lookup #3 {}");
    let public = "cache://public/60000";
    assert_eq!(
        read_as(&gateway, "/mcp", "ada", public).await.0,
        format!("read #1 of {public}")
    );
    assert_eq!(
        read_as(&gateway, "/mcp", "ada", public).await.0,
        format!("read #2 of {public}")
    );
    assert!(counted(&gateway, "tool", "error").await >= 2);
    assert!(counted(&gateway, "resource", "error").await >= 2);
    // Lists are this process's: still served from the cache.
    assert_eq!(tool_names(&list_as(&gateway, "ada", &[]).await).len(), 5);
    // The upstream's list changes while Redis is away: its entries must go when Redis is back.
    upstream.add_tool("added");
    until("the new tool listed", || async {
        tool_names(&list_as(&gateway, "ada", &[]).await).contains(&"added".to_string())
    })
    .await;

    proxy.up();
    // Back: the drop is made before anything is read, so the result kept before it (`#1`) is
    // never served again; results are kept again.
    let mut seen = Vec::new();
    within("results kept again", async {
        loop {
            let text = call("lookup").await;
            assert_ne!(text, "lookup #1 {}", "a result kept before the list changed: {seen:?}");
            if seen.last() == Some(&text) {
                break;
            }
            seen.push(text);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(counted(&gateway, "tool", "hit").await >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_fail_closed_redis_away_refuses_cached_requests_until_it_returns() {
    let redis = redis_url().await;
    let (proxy, proxied) = Proxy::for_redis(&redis).await;
    let upstream = Upstream::start().await;
    let name = unique("closed");
    let lines = format!("state_redis: '{proxied}'\ncache_backend: redis\n");
    let gateway = Running::start(&config_yaml(
        &name,
        &upstream.url,
        &lines,
        "fail: closed, tools: [lookup]",
        "",
    ))
    .await;
    let token = bearer("ada", &[]);
    let call = || {
        post(
            &gateway.base,
            "/mcp",
            "tools/call",
            json!({"name": "lookup", "arguments": {}}),
            Some(&token),
        )
    };
    assert!(call().await.body.get("result").is_some());
    proxy.down();
    let refused = call().await;
    let error = &refused.body["error"];
    assert_eq!(error["code"], -32056, "{}", refused.body);
    assert_eq!(error["data"]["reason"], "cache unavailable");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("`cache.fail` is `closed`")
    );
    // A tool the cache does not answer is not refused.
    let write = post(
        &gateway.base,
        "/mcp",
        "tools/call",
        json!({"name": "write", "arguments": {}}),
        Some(&bearer("ada", &[])),
    )
    .await;
    assert!(write.body.get("result").is_some(), "{}", write.body);
    proxy.up();
    until("served again", || async { call().await.body.get("result").is_some() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_cache_section_is_refused_naming_its_key_and_the_cache_in_force_stays() {
    let error = |yaml: &str| Config::parse(yaml, false).unwrap_err().to_string();
    assert_eq!(
        error("cache: {backend: redis}\n"),
        "cache.backend: `redis` needs `state.redis`"
    );
    assert_eq!(
        error("cache: {max_entries: 0}\n"),
        "cache.max_entries: must be at least 1"
    );
    assert!(error("cache: {tools: ['[abc]']}\n").starts_with("cache.tools[0]:"));
    assert!(error("cache: {default_ttl: 2h, max_ttl: 1h}\n").starts_with("cache.default_ttl:"));
    assert!(error("cache: {scope: public}\n").contains("unknown field `scope`"));
    let path = temp_path("cache.yaml");
    std::fs::write(&path, "cache:\n  max_bytes: 12\n").expect("written");
    let loaded = Config::load(&path).unwrap_err();
    let _ = std::fs::remove_file(&path);
    assert!(
        matches!(&loaded, ConfigError::Invalid { key, .. } if key == "cache.max_bytes"),
        "{loaded}"
    );

    let upstream = Upstream::start().await;
    let name = unique("bad");
    let yaml = config_yaml(&name, &upstream.url, "", "default_ttl: 1h, tools: [lookup]", "");
    let gateway = Running::start(&yaml).await;
    assert_eq!(call_as(&gateway, "ada", "lookup", json!({})).await, "lookup #1 {}");
    let mut bad = Config::parse(&yaml, false).expect("config");
    if let Some(cache) = bad.cache.as_mut() {
        cache.max_entries = 0;
    }
    let refused = gateway.gateway.apply(bad).await.unwrap_err();
    assert!(refused.to_string().starts_with("cache.max_entries:"), "{refused}");
    assert_eq!(
        call_as(&gateway, "ada", "lookup", json!({})).await,
        "lookup #1 {}",
        "the cache in force kept its entries"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_policy_filters_says_private_cache_or_not() {
    let open = Running::start("upstreams:\n  - {name: e, builtin: everything}\n").await;
    let guarded = Running::start(
        "upstreams:\n  - {name: e, builtin: everything}\npolicy:\n  default_role: all\n  roles:\n    all:\n      grants:\n        - allow: {}\n",
    )
    .await;
    for (gateway, scope) in [(&open, "public"), (&guarded, "private")] {
        for method in ["tools/list", "resources/list", "prompts/list", "skills/list"] {
            let answer = post(&gateway.base, "/mcp", method, json!({}), None).await;
            assert_eq!(answer.body["result"]["cacheScope"], scope, "{method}: {}", answer.body);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_one_redis_share_results_and_a_drop_on_one_drops_them_for_all() {
    let redis = redis_url().await;
    let upstream = Upstream::start().await;
    let name = unique("replicas");
    let lines = format!("state_redis: '{redis}'\ncache_backend: redis\n");
    let yaml = config_yaml(&name, &upstream.url, &lines, "default_ttl: 1h, tools: [lookup]", "");
    let (a, b) = (Running::start(&yaml).await, Running::start(&yaml).await);
    assert_eq!(call_as(&a, "ada", "lookup", json!({})).await, "lookup #1 {}");
    assert_eq!(
        call_as(&b, "ada", "lookup", json!({})).await,
        "lookup #1 {}",
        "kept by the other replica"
    );
    assert_eq!(call_as(&b, "bob", "lookup", json!({})).await, "lookup #2 {}");
    // A reload on one replica drops the upstream's results for both.
    a.gateway
        .apply(Config::parse(&yaml, false).expect("config"))
        .await
        .expect("applied");
    assert_eq!(
        call_as(&b, "ada", "lookup", json!({})).await,
        "lookup #3 {}",
        "dropped by the other replica"
    );
    assert_eq!(call_as(&a, "ada", "lookup", json!({})).await, "lookup #3 {}");
    assert_eq!(upstream.uses("lookup"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_from_the_cache_still_go_through_the_plugins() {
    let upstream = Upstream::start().await;
    let name = unique("plugins");
    let plugins = "plugins:\n  - {name: hide, kind: redact, builtins: [], patterns: [{name: word, literal: lookup}]}\n";
    let gateway = Running::start(&config_yaml(
        &name,
        &upstream.url,
        "",
        "default_ttl: 1h, tools: [lookup]",
        plugins,
    ))
    .await;
    for _ in 0..3 {
        let answer = post(
            &gateway.base,
            "/mcp",
            "tools/call",
            json!({"name": "lookup", "arguments": {}}),
            Some(&bearer("ada", &[])),
        )
        .await;
        let result = &answer.body["result"];
        assert_eq!(result["content"][0]["text"], "[redacted:word] #1 {}", "{}", answer.body);
        // Redacted on every answer: the cache kept the upstream's result, not the redacted one.
        assert_eq!(
            result["_meta"]["io.portico/plugins"]["hide"]["redacted"]["word"], 1,
            "{}",
            answer.body
        );
    }
    assert_eq!(upstream.uses("lookup"), 1);
    assert_eq!(counted(&gateway, "tool", "hit").await, 2);
}
