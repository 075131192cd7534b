//! Authorization end to end: JWTs of different roles in front of an upstream that counts what
//! reaches it. Lists are filtered per role; what a role may not use is refused exactly as what
//! does not exist, and never reaches the upstream; a virtual server kept to a role; a policy
//! changed by a reload; and the property of the issue — for random policies and catalogs, a
//! tool is listed for a caller exactly when its call is let through.

use std::collections::{BTreeMap, BTreeSet};

use portico_core::client::Protocol;
use portico_core::server::resource::text as resource_text;
use portico_core::server::{Context, Server, prompt, resource, tool};
use serde_json::Value;

use super::auth::{AUDIENCE, ISSUER, SECRET, claims, hs256};
use super::reload::{File, until};
use super::*;

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Nothing {}

/// An upstream over Streamable HTTP whose tools, reads and prompts count their uses.
struct Counted {
    url: String,
    uses: Arc<AtomicUsize>,
    shutdown: CancellationToken,
}

impl Counted {
    /// Tools `read_file`, `write_file`, `secret_dump`; resources `file:///public/a.txt`,
    /// `file:///private/b.txt`; prompts `greet`, `admin_prompt`.
    async fn start() -> Self {
        let uses = Arc::new(AtomicUsize::new(0));
        let mut builder = Server::builder("counted", "1.0.0");
        for name in ["read_file", "write_file", "secret_dump"] {
            let uses = uses.clone();
            builder = builder.tool(tool(name, "Counts its calls", move |_cx: Context, _: Nothing| {
                uses.fetch_add(1, Ordering::SeqCst);
                async move { format!("{name} done") }
            }));
        }
        for uri in ["file:///public/a.txt", "file:///private/b.txt"] {
            let uses = uses.clone();
            builder = builder.resource(resource(uri, uri, move |_cx| {
                uses.fetch_add(1, Ordering::SeqCst);
                async move { Ok(vec![resource_text(uri, "contents")]) }
            }));
        }
        for name in ["greet", "admin_prompt"] {
            let uses = uses.clone();
            builder = builder.prompt(prompt(name, "Counts its uses", move |_cx, _args| {
                uses.fetch_add(1, Ordering::SeqCst);
                async move {
                    Ok(vec![wire::PromptMessage::new(
                        wire::TextContent::new("hello").into(),
                        wire::Role::User,
                    )])
                }
            }));
        }
        Self::serve(builder.build(), uses).await
    }

    async fn serve(server: Server, uses: Arc<AtomicUsize>) -> Self {
        let config = HttpConfig::default();
        let shutdown = config.shutdown.clone();
        let app = StreamableHttp::new(move || server.connection(), config).router();
        let url = serve_mcp(app, &shutdown).await;
        Self { url, uses, shutdown }
    }

    fn uses(&self) -> usize {
        self.uses.load(Ordering::SeqCst)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The `auth` section every test here uses.
fn auth_yaml() -> String {
    format!(
        "auth:\n  jwt:\n    issuer: '{ISSUER}'\n    audience: ['{AUDIENCE}']\n    keys:\n      - {{kid: hs, alg: HS256, secret: '{SECRET}'}}\n"
    )
}

/// The policy of these tests: a reader reads, an admin does everything but secrets.
const POLICY: &str = "policy:
  roles:
    reader:
      grants:
        - allow: {upstreams: [files], tools: ['read_*'], resources: ['file:///public/**'], prompts: [greet]}
    admin:
      grants:
        - allow: {}
        - deny: {tools: ['*secret*']}
";

fn config_yaml(upstream: &str, policy: &str) -> String {
    format!(
        "{}upstreams:\n  - {{name: files, url: '{upstream}'}}\nvirtual_servers:\n  - name: ops\n    roles: [admin]\n    tools:\n      - {{upstream: files, tool: write_file, rename: write}}\n      - {{upstream: files, tool: secret_dump}}\n{policy}",
        auth_yaml()
    )
}

/// A bearer token for `roles`.
fn token(roles: &[&str]) -> String {
    format!("Bearer {}", hs256("hs", &claims(|c| c["roles"] = json!(roles))))
}

/// A client of `path` carrying a token for `roles`.
async fn client_as(gateway: &Running, path: &str, roles: &[&str], protocol: Protocol) -> Result<Client, ClientError> {
    let url = format!("{}{path}", gateway.base);
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("authorization", token(roles).parse().expect("a header"));
    within(
        "connecting",
        Client::builder(wire::Implementation::new("rbac-test", "1"))
            .protocol(protocol)
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
}

async fn names(client: &Client) -> (Vec<String>, Vec<String>, Vec<String>) {
    let tools = client.list_all_tools().await.expect("tools");
    let resources = client.list_all_resources().await.expect("resources");
    let prompts = client.list_all_prompts().await.expect("prompts");
    (
        tools.into_iter().map(|t| t.name).collect(),
        resources.into_iter().map(|r| r.uri).collect(),
        prompts.into_iter().map(|p| p.name).collect(),
    )
}

/// The error of a call that must fail.
async fn refusal<T: std::fmt::Debug>(
    what: &str,
    outcome: impl std::future::Future<Output = Result<T, ClientError>>,
) -> ErrorObject {
    match outcome.await {
        Ok(result) => panic!("{what}: expected a refusal, got {result:?}"),
        Err(e) => rpc_error(e),
    }
}

/// Asserts that `hidden` (refused about `hidden_name`) is the error `missing` (about
/// `missing_name`) is, but for the name.
fn same_refusal(hidden: &ErrorObject, hidden_name: &str, missing: &ErrorObject, missing_name: &str) {
    assert_eq!(hidden.code, missing.code, "{hidden:?} vs {missing:?}");
    assert_eq!(
        hidden.message.replace(hidden_name, "NAME"),
        missing.message.replace(missing_name, "NAME"),
        "{hidden:?} vs {missing:?}"
    );
    let data = |e: &ErrorObject, name: &str| {
        e.data
            .as_ref()
            .map(|d| serde_json::to_string(d).expect("JSON").replace(name, "NAME"))
    };
    assert_eq!(data(hidden, hidden_name), data(missing, missing_name));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_follow_the_token_s_roles_and_hidden_items_are_refused_as_unknown_without_an_upstream_call() {
    let upstream = Counted::start().await;
    let gateway = Running::start(&config_yaml(&upstream.url, POLICY)).await;
    for protocol in [Protocol::Stateless, SESSION] {
        let reader = client_as(&gateway, "/mcp", &["reader"], protocol)
            .await
            .expect("reader");
        let admin = client_as(&gateway, "/mcp", &["admin"], protocol).await.expect("admin");
        let nobody = client_as(&gateway, "/mcp", &["visitor"], protocol)
            .await
            .expect("visitor");

        let (tools, resources, prompts) = names(&reader).await;
        assert_eq!(tools, ["files__read_file"], "{protocol:?}");
        assert_eq!(resources, ["file:///public/a.txt"]);
        assert_eq!(prompts, ["files__greet"]);
        let (tools, resources, prompts) = names(&admin).await;
        assert_eq!(tools, ["files__read_file", "files__write_file"], "secrets denied");
        assert_eq!(resources, ["file:///public/a.txt", "file:///private/b.txt"]);
        assert_eq!(prompts, ["files__greet", "files__admin_prompt"]);
        let (tools, resources, prompts) = names(&nobody).await;
        assert!(
            tools.is_empty() && resources.is_empty() && prompts.is_empty(),
            "an unknown role"
        );

        // What a role may use reaches the upstream once per use.
        let before = upstream.uses();
        reader.call_tool("files__read_file", json!({})).await.expect("allowed");
        reader.read_resource("file:///public/a.txt").await.expect("allowed");
        reader
            .get_prompt("files__greet", BTreeMap::new())
            .await
            .expect("allowed");
        admin.call_tool("files__write_file", json!({})).await.expect("allowed");
        assert_eq!(upstream.uses(), before + 4);

        // What it may not use fails as what does not exist, and reaches nothing.
        let before = upstream.uses();
        let missing = refusal("unknown tool", reader.call_tool("files__no_such_tool", json!({}))).await;
        for (client, hidden) in [
            (&reader, "files__write_file"),
            (&reader, "files__secret_dump"),
            (&admin, "files__secret_dump"),
            (&nobody, "files__read_file"),
        ] {
            let refused = refusal(hidden, client.call_tool(hidden, json!({}))).await;
            same_refusal(&refused, hidden, &missing, "files__no_such_tool");
        }
        let missing = refusal("unknown resource", reader.read_resource("file:///public/none.txt")).await;
        let hidden = refusal("hidden resource", reader.read_resource("file:///private/b.txt")).await;
        same_refusal(&hidden, "file:///private/b.txt", &missing, "file:///public/none.txt");
        let missing = refusal("unknown prompt", reader.get_prompt("files__nothing", BTreeMap::new())).await;
        let hidden = refusal(
            "hidden prompt",
            reader.get_prompt("files__admin_prompt", BTreeMap::new()),
        )
        .await;
        same_refusal(&hidden, "files__admin_prompt", &missing, "files__nothing");
        // Completion of a hidden prompt, too.
        let reference = |name: &str| {
            serde_json::from_value::<wire::CompleteRequestParamsRef>(json!({"type": "ref/prompt", "name": name}))
                .expect("a reference")
        };
        let argument: wire::CompleteRequestParamsArgument =
            serde_json::from_value(json!({"name": "x", "value": ""})).expect("an argument");
        let missing = refusal(
            "unknown prompt",
            reader.complete(reference("files__nothing"), argument.clone(), None),
        )
        .await;
        let hidden = refusal(
            "hidden prompt",
            reader.complete(reference("files__admin_prompt"), argument, None),
        )
        .await;
        same_refusal(&hidden, "files__admin_prompt", &missing, "files__nothing");
        assert_eq!(upstream.uses(), before, "no refused use reached the upstream");

        // The upstream's own endpoint: the same policy, under the upstream's names.
        let direct = client_as(&gateway, "/mcp/files", &["reader"], protocol)
            .await
            .expect("reader");
        assert_eq!(names(&direct).await.0, ["read_file"]);
        let refused = refusal("hidden", direct.call_tool("write_file", json!({}))).await;
        let missing = refusal("missing", direct.call_tool("nothing", json!({}))).await;
        same_refusal(&refused, "write_file", &missing, "nothing");
        assert_eq!(upstream.uses(), before);
    }
}

/// A stateless `tools/call` of `name` POSTed to `path` with `authorization`: status and body.
async fn post_call(gateway: &Running, path: &str, authorization: &str, name: &str) -> (u16, Value) {
    gateway.post_tool_call(path, Some(authorization), name, json!({})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_virtual_server_kept_to_a_role_does_not_exist_for_others() {
    let upstream = Counted::start().await;
    let gateway = Running::start(&config_yaml(&upstream.url, POLICY)).await;
    let reader = token(&["reader"]);
    let (status, body) = post_call(&gateway, "/mcp/ops", &reader, "write").await;
    let (missing_status, missing_body) = post_call(&gateway, "/mcp/nothing", &reader, "write").await;
    assert_eq!((status, missing_status), (404, 404), "{body}");
    assert_eq!(
        body["error"].as_str().map(|e| e.replace("ops", "NAME")),
        missing_body["error"].as_str().map(|e| e.replace("nothing", "NAME"))
    );
    assert!(
        client_as(&gateway, "/mcp/ops", &["reader"], SESSION).await.is_err(),
        "no session either"
    );
    assert_eq!(upstream.uses(), 0);

    // An admin uses it: its grants still hide the secret tool.
    let admin = client_as(&gateway, "/mcp/ops", &["admin"], SESSION)
        .await
        .expect("admin");
    assert_eq!(names(&admin).await.0, ["write"]);
    admin.call_tool("write", json!({})).await.expect("allowed");
    let refused = refusal("hidden", admin.call_tool("secret_dump", json!({}))).await;
    let missing = refusal("missing", admin.call_tool("nothing", json!({}))).await;
    same_refusal(&refused, "secret_dump", &missing, "nothing");
    assert_eq!(upstream.uses(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_changed_by_a_reload_applies_to_the_next_request_and_a_bad_one_is_refused() {
    let upstream = Counted::start().await;
    let file = File::new("rbac.yaml", &config_yaml(&upstream.url, POLICY));
    let gateway = Running::start_file(&file.0).await;
    gateway.gateway.watch_file(file.0.clone(), Duration::from_millis(50));
    let reader = client_as(&gateway, "/mcp", &["reader"], SESSION).await.expect("reader");
    assert_eq!(names(&reader).await.0, ["files__read_file"]);

    // Readers may now write, and read nothing.
    let wider = POLICY.replace("tools: ['read_*']", "tools: ['write_*']");
    file.write(&config_yaml(&upstream.url, &wider));
    until("the new policy", || async {
        names(&reader).await.0 == ["files__write_file"]
    })
    .await;
    reader
        .call_tool("files__write_file", json!({}))
        .await
        .expect("allowed now");
    let refused = refusal("no longer allowed", reader.call_tool("files__read_file", json!({}))).await;
    assert_eq!(refused.code, portico_gateway::relay::UNKNOWN_TARGET);
    assert_eq!(upstream.uses(), 1);

    // A policy that does not check is refused, naming the key; the one in force stays.
    let bad = wider.replace("prompts: [greet]", "prompts: ['[greet']");
    file.write(&config_yaml(&upstream.url, &bad));
    until("the refusal", || async {
        gateway.gateway.last_change().is_some_and(|c| c.outcome == "rejected")
    })
    .await;
    let change = gateway.gateway.last_change().expect("a change");
    let error = change.error.unwrap_or_default();
    assert!(
        error.starts_with("policy.roles.reader.grants[0].allow.prompts[0]:"),
        "{error}"
    );
    assert_eq!(names(&reader).await.0, ["files__write_file"]);
    let unknown_role = config_yaml(&upstream.url, POLICY).replace("roles: [admin]", "roles: [auditor]");
    let error = Config::parse(&unknown_role, false).unwrap_err().to_string();
    assert!(
        error.starts_with("virtual_servers[0].roles[0]: no role `auditor`"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_auth_the_policy_applies_to_an_anonymous_caller_with_the_default_role() {
    let gateway = Running::start(
        "upstreams:\n  - {name: e, builtin: everything}\npolicy:\n  default_role: guest\n  roles:\n    guest:\n      grants:\n        - allow: {tools: [echo]}\n",
    )
    .await;
    let client = gateway.client("/mcp", Protocol::Stateless, ()).await;
    let tools: Vec<String> = client
        .list_all_tools()
        .await
        .expect("tools")
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(tools, ["e__echo"]);
    client
        .call_tool("e__echo", json!({"message": "hi"}))
        .await
        .expect("allowed");
    let refused = refusal("hidden", client.call_tool("e__test_simple_text", json!({}))).await;
    assert_eq!(refused.code, portico_gateway::relay::UNKNOWN_TARGET);
}

mod property {
    //! For random policies and random catalogs: every tool absent from `tools/list` for a
    //! caller is refused on `tools/call` for that caller (as an unknown tool), and every tool
    //! listed is let through — over the gateway's real request path (HTTP, the token, the
    //! transport carrying the principal, the catalog's list and call, the upstream).

    use proptest::prelude::*;
    use proptest::test_runner::{Config as Cases, TestRunner};

    use super::*;

    /// Tool names the catalogs draw from.
    const TOOLS: &[&str] = &["read_a", "read_b", "write_a", "admin_x", "echo", "a.b"];
    /// Patterns the policies draw from.
    const PATTERNS: &[&str] = &[
        "*", "read_*", "*_a", "echo", "u?", "u0", "u1", "a.*", "????_?", "*x*", "nothing",
    ];
    /// The upstreams: `u0` prefixed, `u1` and `u2` unprefixed (so their names can collide).
    const UPSTREAMS: &[(&str, &str)] = &[("u0", "u0"), ("u1", ""), ("u2", "")];
    const ROLES: &[&str] = &["r0", "r1", "r2"];
    /// The roles callers' tokens draw from (`unknown` is defined by no policy).
    const TOKEN_ROLES: &[&str] = &["r0", "r1", "r2", "unknown"];

    #[derive(Debug, Clone)]
    struct Rule {
        allow: bool,
        upstreams: Option<Vec<&'static str>>,
        tools: Option<Vec<&'static str>>,
    }

    #[derive(Debug, Clone)]
    struct Case {
        /// The tools of each upstream.
        catalogs: Vec<Vec<&'static str>>,
        /// Each role's rules.
        roles: Vec<Vec<Rule>>,
        default_role: Option<usize>,
        /// The roles of the callers' tokens (`unknown` is a role no policy defines).
        callers: Vec<Vec<&'static str>>,
    }

    fn patterns() -> impl Strategy<Value = Option<Vec<&'static str>>> {
        prop::option::of(prop::sample::subsequence(PATTERNS, 1..3))
    }

    fn rule() -> impl Strategy<Value = Rule> {
        (prop::bool::weighted(0.7), patterns(), patterns()).prop_map(|(allow, upstreams, tools)| Rule {
            allow,
            upstreams,
            tools,
        })
    }

    fn case() -> impl Strategy<Value = Case> {
        let catalogs = prop::collection::vec(prop::sample::subsequence(TOOLS, 0..=TOOLS.len()), UPSTREAMS.len());
        let roles = prop::collection::vec(prop::collection::vec(rule(), 0..4), ROLES.len());
        let default_role = prop::option::of(0..ROLES.len());
        let callers = prop::collection::vec(prop::sample::subsequence(TOKEN_ROLES, 0..3), 2);
        (catalogs, roles, default_role, callers).prop_map(|(catalogs, roles, default_role, callers)| Case {
            catalogs,
            roles,
            default_role,
            callers,
        })
    }

    fn list(items: &[&str]) -> String {
        let quoted: Vec<String> = items.iter().map(|i| format!("'{i}'")).collect();
        format!("[{}]", quoted.join(", "))
    }

    /// The gateway's configuration for `case`, its upstreams at `urls`.
    fn config(case: &Case, urls: &[String]) -> String {
        let mut yaml = auth_yaml();
        yaml.push_str("upstreams:\n");
        for ((name, prefix), url) in UPSTREAMS.iter().zip(urls) {
            yaml.push_str(&format!("  - {{name: {name}, url: '{url}', prefix: '{prefix}'}}\n"));
        }
        yaml.push_str("policy:\n");
        if let Some(role) = case.default_role {
            yaml.push_str(&format!("  default_role: {}\n", ROLES[role]));
        }
        yaml.push_str("  roles:\n");
        for (name, rules) in ROLES.iter().zip(&case.roles) {
            yaml.push_str(&format!("    {name}:\n      grants:\n"));
            if rules.is_empty() {
                yaml.push_str("        []\n");
            }
            for rule in rules {
                let mut fields = Vec::new();
                if let Some(upstreams) = &rule.upstreams {
                    fields.push(format!("upstreams: {}", list(upstreams)));
                }
                if let Some(tools) = &rule.tools {
                    fields.push(format!("tools: {}", list(tools)));
                }
                let effect = if rule.allow { "allow" } else { "deny" };
                yaml.push_str(&format!("        - {effect}: {{{}}}\n", fields.join(", ")));
            }
        }
        yaml
    }

    /// A stateless request as `authorization`: the JSON-RPC answer.
    async fn request(gateway: &Running, authorization: &str, method: &str, params: Value) -> Value {
        let mut params = params;
        params["_meta"] = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}});
        let mut post = reqwest::Client::new()
            .post(format!("{}/mcp", gateway.base))
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", method)
            .header("authorization", authorization);
        if let Some(name) = params["name"].as_str() {
            post = post.header("mcp-name", name);
        }
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let response = post.body(body.to_string()).send().await.expect("sent");
        let text = response.text().await.expect("a body");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    /// Runs one case: upstreams serving its catalogs, the gateway applying its policy, then
    /// every name checked for every caller.
    async fn check(gateway: &Running, case: &Case) -> Result<(), TestCaseError> {
        let mut upstreams = Vec::new();
        for catalog in &case.catalogs {
            let mut builder = Server::builder("random", "1.0.0");
            for &name in catalog {
                builder = builder.tool(tool(name, "a tool", |_cx: Context, _: Nothing| async move { "ok" }));
            }
            upstreams.push(Counted::serve(builder.build(), Arc::default()).await);
        }
        let urls: Vec<String> = upstreams.iter().map(|u| u.url.clone()).collect();
        let config = Config::parse(&config(case, &urls), false).expect("a valid configuration");
        gateway.gateway.apply(config).await.expect("applied");
        // Every upstream connected and listed.
        within("the upstreams' lists", async {
            loop {
                let routes = gateway.gateway.routes();
                let listed = routes
                    .upstreams
                    .iter()
                    .zip(&case.catalogs)
                    .all(|(u, catalog)| u.is_available() && u.snapshot().tools.len() == catalog.len());
                if listed {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        // Every name any upstream could be asked for here, and names nobody serves.
        let mut universe: BTreeSet<String> = ["nothing".to_string(), "u0__nothing".to_string()].into();
        for ((_, prefix), catalog) in UPSTREAMS.iter().zip(&case.catalogs) {
            for name in catalog {
                universe.insert(if prefix.is_empty() {
                    name.to_string()
                } else {
                    format!("{prefix}__{name}")
                });
            }
        }
        for roles in &case.callers {
            let authorization = token(roles);
            let listed = request(gateway, &authorization, "tools/list", json!({})).await;
            let listed: BTreeSet<String> = listed["result"]["tools"]
                .as_array()
                .unwrap_or_else(|| panic!("a list: {listed}"))
                .iter()
                .filter_map(|t| t["name"].as_str().map(str::to_string))
                .collect();
            let call = |name: &str| json!({"name": name, "arguments": {}});
            let missing = request(gateway, &authorization, "tools/call", call("nothing")).await;
            for name in &universe {
                let answer = request(gateway, &authorization, "tools/call", call(name)).await;
                let refused = answer["error"]["code"] == missing["error"]["code"]
                    && answer["error"]["message"]
                        .as_str()
                        .map(|m| m.replace(name.as_str(), "NAME"))
                        == missing["error"]["message"]
                            .as_str()
                            .map(|m| m.replace("nothing", "NAME"));
                prop_assert_eq!(
                    listed.contains(name),
                    !refused,
                    "caller {:?}, tool {}: listed {:?}, answered {}",
                    roles,
                    name,
                    listed,
                    answer
                );
                if !refused {
                    prop_assert_eq!(&answer["result"]["content"][0]["text"], "ok", "{}", answer);
                }
            }
        }
        Ok(())
    }

    #[test]
    fn a_tool_is_listed_for_a_caller_exactly_when_its_call_is_let_through() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let gateway = runtime.block_on(Running::start(&format!("{}policy: {{}}\n", auth_yaml())));
        let mut runner = TestRunner::new(Cases {
            cases: 64,
            failure_persistence: None,
            ..Cases::default()
        });
        runner
            .run(&case(), |case| runtime.block_on(check(&gateway, &case)))
            .unwrap_or_else(|e| panic!("{e}"));
        drop(gateway);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_method_is_refused_to_a_caller_allowed_no_tool_of_the_task_s_upstream() {
    let gateway = Running::start(&format!(
        "{}upstreams:\n  - {{name: e, builtin: everything}}\npolicy:\n  roles:\n    echoer:\n      grants:\n        - allow: {{tools: [echo]}}\n    nobody: {{}}\n",
        auth_yaml()
    ))
    .await;
    let task_get = |roles: &[&str]| {
        let authorization = token(roles);
        let base = gateway.base.clone();
        async move {
            let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {"taskId": "e/t-1",
                "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientCapabilities": {"extensions": {"io.modelcontextprotocol/tasks": {}}}}}});
            let response = reqwest::Client::new()
                .post(format!("{base}/mcp"))
                .header("content-type", "application/json")
                .header("accept", "application/json")
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", "tasks/get")
                .header("mcp-name", "e/t-1")
                .header("authorization", authorization)
                .body(body.to_string())
                .send()
                .await
                .expect("sent");
            let text = response.text().await.expect("a body");
            serde_json::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
        }
    };
    let metrics = || async {
        reqwest::get(format!("{}/metrics", gateway.base))
            .await
            .expect("GET")
            .text()
            .await
            .expect("body")
    };
    let refused = task_get(&["nobody"]).await;
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    assert_eq!(
        refused["error"]["message"],
        "invalid params: tasks/get: unknown task \"e/t-1\" (never created, or expired)"
    );
    assert!(!metrics().await.contains("method=\"tasks/get\""), "not relayed");
    // A caller allowed a tool of `e` has the task method relayed (the upstream knows no such
    // task either, and says so).
    let relayed = task_get(&["echoer"]).await;
    assert_eq!(relayed["error"]["code"], -32602, "{relayed}");
    assert!(metrics().await.contains("method=\"tasks/get\""), "relayed");
}
