//! Portico's client core against a server built on the official MCP Python SDK
//! (`tests/python/official_server.py`, PyPI `mcp`), a second implementation of both
//! generations: over stdio (the SDK's server as a child process) and Streamable HTTP (the SDK's
//! Starlette app under uvicorn), with `Protocol::Auto`, `Stateless` and `Stateful`; and against
//! the same server made handshake-only, where `Auto` falls back from `server/discover` to
//! `initialize`.
//!
//! Over stdio every message the client sent is validated against the official schema of its
//! revision.
//!
//! The python comes from `PORTICO_PYTHON`, which `cargo xtask test` sets to its venv (with the
//! pinned SDK). Without it these tests fail, saying how to get one: they are never skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use portico_core::ErrorObject;
use portico_core::client::{
    Client, ClientConfig, ClientError, ClientHandler, InputContext, Notification, Protocol, RequestOptions,
};
use portico_core::server::Era;
use portico_protocol::v2026_07_28 as wire;
use portico_transport::http::client::{HttpClientConfig, connect};
use portico_transport::stdio::{StdioConfig, spawn};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The `mcp` version pinned in `xtask/src/test.rs` (`PYTHON_PACKAGES`).
const MCP_PYTHON_SDK: &str = "2.3.0";

/// How long one wait may take before the test fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(30);

async fn within<F: std::future::Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {PATIENCE:?}"))
}

/// The python with the official SDK: `PORTICO_PYTHON`, checked once to import `mcp` at the
/// pinned version. Panics with what to do otherwise.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let how = format!(
            "run `cargo xtask test` (it installs mcp=={MCP_PYTHON_SDK} into the venv \
             $PORTICO_TOOLS_DIR/venv, default .tools/venv, and sets PORTICO_PYTHON for the tests), \
             or set PORTICO_PYTHON to a python with `mcp=={MCP_PYTHON_SDK}` installed \
             (an absolute path; after one `cargo xtask test`, from the repository root: \
             PORTICO_PYTHON=$PWD/.tools/venv/bin/python)"
        );
        let Some(python) = std::env::var_os("PORTICO_PYTHON").filter(|v| !v.is_empty()) else {
            panic!("PORTICO_PYTHON is not set; these tests run a server on the official MCP Python SDK: {how}");
        };
        let python = PathBuf::from(python);
        let probe = std::process::Command::new(&python)
            .args(["-c", "import importlib.metadata as m; print(m.version('mcp'))"])
            .output()
            .unwrap_or_else(|e| panic!("PORTICO_PYTHON={} does not run ({e}): {how}", python.display()));
        let version = String::from_utf8_lossy(&probe.stdout).trim().to_owned();
        assert!(
            probe.status.success() && version == MCP_PYTHON_SDK,
            "PORTICO_PYTHON={} has mcp {:?}, not {MCP_PYTHON_SDK} ({}): {how}",
            python.display(),
            version,
            String::from_utf8_lossy(&probe.stderr).trim()
        );
        python
    })
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/official_server.py")
}

/// Answers the SDK's elicitation (`greet` asks for a name) and declares it can.
struct Answers;

impl ClientHandler for Answers {
    fn capabilities(&self) -> wire::ClientCapabilities {
        serde_json::from_value(json!({"elicitation": {"form": {}}})).expect("caps")
    }

    async fn elicit(
        &self,
        params: wire::ElicitRequestParams,
        _cx: InputContext,
    ) -> Result<wire::ElicitResult, ErrorObject> {
        let asked = serde_json::to_value(&params).expect("JSON");
        assert_eq!(asked["message"], "What is your name?", "{asked}");
        Ok(serde_json::from_value(json!({"action": "accept", "content": {"name": "Ada"}})).expect("answer"))
    }
}

fn builder(protocol: Protocol) -> portico_core::client::ClientBuilder {
    Client::builder(wire::Implementation::new("portico-interop", "1.0.0"))
        .handler(Answers)
        .protocol(protocol)
        .config(ClientConfig {
            request_timeout: PATIENCE,
            ..ClientConfig::default()
        })
}

/// A client of the SDK's server as a child process over stdio; every line the client writes is
/// also appended to `record` (`tee` in front of the server).
async fn stdio_client(protocol: Protocol, handshake_only: bool, record: &Path) -> Client {
    let result = within(
        "connecting over stdio",
        builder(protocol).connect(|service| async move {
            let mut command = Command::new("sh");
            command
                .arg("-c")
                .arg(
                    r#"record=$0 python=$1 script=$2; shift 2; tee -a "$record" | exec "$python" "$script" stdio "$@""#,
                )
                .arg(record)
                .arg(python())
                .arg(script());
            if handshake_only {
                command.arg("--handshake-only");
            }
            spawn(&mut command, service, StdioConfig::default()).await
        }),
    )
    .await;
    result.unwrap_or_else(|e| panic!("stdio {protocol:?}: {e}"))
}

/// Validates every message the client sent (one per line of `record`) against the official
/// schema of its revision: 2026-07-28 for a message carrying that revision's `_meta`, else the
/// revision of the connection (2026-07-28 after `server/discover`, then that of `initialize`).
fn validate_sent(what: &str, record: &Path) {
    let text = std::fs::read_to_string(record).expect("the recording");
    let mut connection: Option<String> = None;
    let mut checked = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let message: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{what}: {e}: {line}"));
        let modern = message["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] == "2026-07-28";
        if message["method"] == "initialize" {
            connection = message["params"]["protocolVersion"].as_str().map(str::to_owned);
        } else if modern && message["method"] == "server/discover" {
            connection = Some("2026-07-28".into());
        }
        let revision = if modern {
            "2026-07-28".to_owned()
        } else {
            connection
                .clone()
                .unwrap_or_else(|| panic!("{what}: a message before the first request of an era: {line}"))
        };
        let def = match message["method"].as_str() {
            Some("initialize") => "InitializeRequest",
            Some("notifications/initialized") => "InitializedNotification",
            Some("notifications/cancelled") => "CancelledNotification",
            Some("server/discover") => "DiscoverRequest",
            Some("ping") => "PingRequest",
            Some("logging/setLevel") => "SetLevelRequest",
            Some("tools/list") => "ListToolsRequest",
            Some("tools/call") => "CallToolRequest",
            Some("resources/list") => "ListResourcesRequest",
            Some("resources/templates/list") => "ListResourceTemplatesRequest",
            Some("resources/read") => "ReadResourceRequest",
            Some("prompts/list") => "ListPromptsRequest",
            Some("prompts/get") => "GetPromptRequest",
            Some("subscriptions/listen") => "SubscriptionsListenRequest",
            Some(other) => panic!("{what}: the client sent an unexpected {other}: {line}"),
            // A response: the only requests the server sends here are elicitations.
            None => {
                crate::validate(&revision, "ElicitResult", &message["result"]);
                "JSONRPCMessage"
            }
        };
        crate::validate(&revision, def, &message);
        checked += 1;
    }
    assert!(checked > 10, "{what}: only {checked} messages recorded");
}

/// The SDK's server on Streamable HTTP, a child process; killed when dropped.
struct HttpServer {
    url: String,
    _child: Child,
}

impl HttpServer {
    async fn start(handshake_only: bool) -> Self {
        let mut command = Command::new(python());
        command
            .arg(script())
            .args(["http", "0"])
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        if handshake_only {
            command.arg("--handshake-only");
        }
        let mut child = command.spawn().expect("starting the Python server");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let url = within("the Python server's URL", async {
            while let Some(line) = lines.next_line().await.expect("reading its stdout") {
                if let Some(url) = line.strip_prefix("listening on ") {
                    return url.to_owned();
                }
            }
            panic!("the Python server exited before listening")
        })
        .await;
        // Keep reading so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { url, _child: child }
    }

    async fn client(&self, protocol: Protocol) -> Client {
        let config = HttpClientConfig {
            default_retry: Duration::from_millis(20),
            ..HttpClientConfig::default()
        };
        within(
            "connecting over HTTP",
            builder(protocol).connect(|service| connect(&self.url, service, config)),
        )
        .await
        .unwrap_or_else(|e| panic!("http {protocol:?}: {e}"))
    }
}

fn text_of(content: &impl serde::Serialize) -> String {
    let value = serde_json::to_value(content).expect("JSON");
    value[0]["text"].as_str().unwrap_or_default().to_owned()
}

/// Every tool, resource and prompt of the server, with real content checked.
async fn scenario(what: &str, client: &Client, expected: Era) {
    assert_eq!(client.era(), expected, "{what}: era");
    let versions = &client.server().supported_versions;
    match expected {
        // From server/discover (the SDK lists the per-request revisions only).
        Era::Stateless => assert!(versions.iter().any(|v| v == "2026-07-28"), "{what}: {versions:?}"),
        Era::Stateful(revision) => assert_eq!(client.server().protocol_version, revision, "{what}"),
    }
    let info = client.server().info.as_ref().expect("serverInfo");
    assert_eq!(info.name, "python-official", "{what}");
    assert_eq!(
        client.server().instructions.as_deref(),
        Some("A test server on the official SDK.")
    );

    let tools = within(what, client.list_all_tools()).await.expect("tools/list");
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["add", "count", "echo", "greet", "touch", "wait"], "{what}");
    let add = tools.iter().find(|t| t.name == "add").expect("add");
    assert!(add.output_schema.is_some(), "{what}: add has an outputSchema");

    // Structured output, checked by the client against the outputSchema it was listed with.
    let sum = within(what, client.call_tool("add", json!({"a": 40, "b": 2})))
        .await
        .expect("add");
    assert_eq!(sum.is_error, Some(false), "{what}");
    assert_eq!(
        sum.structured_content,
        Some(json!({"sum": 42, "operands": [40, 2]})),
        "{what}"
    );
    let text: Value = serde_json::from_str(&text_of(&sum.content)).expect("add's text is its JSON");
    assert_eq!(text["sum"], 42, "{what}");

    let echoed = within(what, client.call_tool("echo", json!({"message": "Grüße, 世界"})))
        .await
        .expect("echo");
    assert_eq!(text_of(&echoed.content), "echo: Grüße, 世界", "{what}");

    // A call that outlives its timeout is cancelled (notifications/cancelled, or its HTTP
    // stream closed); the connection goes on serving.
    let hurry = RequestOptions::new().timeout(Duration::from_millis(300));
    let error = within(what, client.call_tool_with("wait", json!({"seconds": 20}), &hurry))
        .await
        .expect_err("times out");
    assert!(matches!(error, ClientError::Timeout { .. }), "{what}: {error}");
    let waited = within(what, client.call_tool("wait", json!({"seconds": 0.01})))
        .await
        .expect("wait");
    assert_eq!(text_of(&waited.content), "waited 0.01 s", "{what}");

    // A tool error (bad arguments) is a result, not an Err.
    let refused = within(what, client.call_tool("add", json!({"a": "forty"})))
        .await
        .expect("a tool error is a result");
    assert_eq!(refused.is_error, Some(true), "{what}");

    // Progress and log messages, on the notification stream.
    if expected == Era::Stateless {
        client.set_level(wire::LoggingLevel::Info).await.expect("logLevel");
    }
    let mut notes = client.notifications();
    let token = client.progress_token();
    let options = RequestOptions::new().progress(token.clone());
    let counted = within(what, client.call_tool_with("count", json!({"steps": 3}), &options))
        .await
        .expect("count");
    assert_eq!(text_of(&counted.content), "counted to 3", "{what}");
    let (mut progress, mut logs) = (Vec::new(), Vec::new());
    while progress.len() < 3 || logs.len() < 3 {
        match within(&format!("{what}: notifications"), notes.recv()).await {
            Some(Notification::Progress(p)) => {
                assert_eq!(p.progress_token, token, "{what}");
                assert_eq!(p.total.and_then(|t| t.as_f64()), Some(3.0), "{what}");
                progress.push((p.progress.as_f64().expect("a number"), p.message.unwrap_or_default()));
            }
            Some(Notification::Log(log)) => {
                assert_eq!(log.level, wire::LoggingLevel::Info, "{what}");
                logs.push(log.data.as_str().unwrap_or_default().to_owned());
            }
            Some(other) => panic!("{what}: unexpected {other:?}"),
            None => panic!("{what}: the notification stream ended"),
        }
    }
    assert_eq!(
        progress,
        [(1.0, "step 1".into()), (2.0, "step 2".into()), (3.0, "step 3".into())],
        "{what}"
    );
    assert_eq!(logs, ["step 1 of 3", "step 2 of 3", "step 3 of 3"], "{what}");

    // Elicitation: a real request in a session, an input_required round in 2026-07-28.
    let greeted = within(what, client.call_tool("greet", json!({}))).await.expect("greet");
    assert_eq!(text_of(&greeted.content), "Hello, Ada!", "{what}");

    let resources = within(what, client.list_all_resources()).await.expect("resources/list");
    assert_eq!(
        resources.iter().map(|r| r.uri.as_str()).collect::<Vec<_>>(),
        ["greeting://hello"],
        "{what}"
    );
    let templates = within(what, client.list_all_resource_templates())
        .await
        .expect("resources/templates/list");
    assert_eq!(
        templates.iter().map(|t| t.uri_template.as_str()).collect::<Vec<_>>(),
        ["greeting://{name}"],
        "{what}"
    );
    let hello = within(what, client.read_resource("greeting://hello"))
        .await
        .expect("read");
    assert_eq!(text_of(&hello.contents), "Hello from the official Python SDK", "{what}");
    let ada = within(what, client.read_resource("greeting://ada"))
        .await
        .expect("read a template");
    let contents = serde_json::to_value(&ada.contents).expect("JSON");
    assert_eq!(contents[0]["uri"], "greeting://ada", "{what}");
    assert_eq!(contents[0]["text"], "Hello, ada", "{what}");

    let prompts = within(what, client.list_all_prompts()).await.expect("prompts/list");
    let review = prompts.iter().find(|p| p.name == "review").expect("review");
    let arguments = serde_json::to_value(&review.arguments).expect("JSON");
    assert_eq!(arguments[0]["name"], "code", "{what}");
    assert_eq!(arguments[0]["required"], true, "{what}");
    assert_eq!(arguments[1]["name"], "language", "{what}");
    let args = BTreeMap::from([
        ("code".to_owned(), "fn main() {}".to_owned()),
        ("language".to_owned(), "rust".to_owned()),
    ]);
    let prompt = within(what, client.get_prompt("review", args))
        .await
        .expect("prompts/get");
    let messages = serde_json::to_value(&prompt.messages).expect("JSON");
    assert_eq!(messages.as_array().map(Vec::len), Some(1), "{what}");
    assert_eq!(messages[0]["role"], "user", "{what}");
    assert_eq!(
        messages[0]["content"]["text"], "Please review this rust code:\nfn main() {}",
        "{what}"
    );

    if expected == Era::Stateless {
        listen(what, client).await;
    } else {
        within(what, client.ping()).await.expect("ping");
    }
    within(what, client.close()).await.expect("close");
}

/// A `subscriptions/listen` stream (2026-07-28): acknowledged, then the SDK's events, each
/// tagged with the stream's id.
async fn listen(what: &str, client: &Client) {
    let mut notes = client.notifications();
    let hello = "greeting://hello";
    let filter = wire::SubscriptionFilter::new()
        .with_tools_list_changed(true)
        .with_resource_subscriptions(vec![hello.into()]);
    let subscription = within(what, client.listen(filter)).await.expect("subscriptions/listen");
    assert_eq!(subscription.granted().tools_list_changed, Some(true), "{what}");
    assert_eq!(
        subscription.granted().resource_subscriptions.as_deref(),
        Some(&[hello.to_owned()][..]),
        "{what}"
    );
    let touched = within(what, client.call_tool("touch", json!({}))).await.expect("touch");
    assert_eq!(text_of(&touched.content), "touched", "{what}");
    let (mut saw_tools, mut saw_resource) = (false, false);
    while !(saw_tools && saw_resource) {
        match within(&format!("{what}: listen"), notes.recv()).await {
            Some(Notification::ToolsListChanged { subscription: s }) => {
                assert_eq!(s.as_ref(), subscription.id(), "{what}");
                saw_tools = true;
            }
            Some(Notification::ResourceUpdated { uri, subscription: s }) => {
                assert_eq!(uri, hello, "{what}");
                assert_eq!(s.as_ref(), subscription.id(), "{what}");
                saw_resource = true;
            }
            other => panic!("{what}: unexpected {other:?}"),
        }
    }
    within(what, subscription.close()).await.expect("close the stream");
}

/// The eras each protocol choice ends in against the dual-era SDK server.
const DUAL: [(Protocol, Era); 3] = [
    (Protocol::Auto, Era::Stateless),
    (Protocol::Stateless, Era::Stateless),
    (Protocol::Stateful("2025-11-25"), Era::Stateful("2025-11-25")),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_core_drives_the_official_python_sdk_over_stdio() {
    let records = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("python-interop-{}", std::process::id()));
    std::fs::create_dir_all(&records).expect("a folder for the recordings");
    let runs = DUAL
        .into_iter()
        .map(|(protocol, era)| (protocol, era, false))
        // A server of the 2025-x era only: Auto falls back from server/discover to initialize.
        .chain([(Protocol::Auto, Era::Stateful("2025-11-25"), true)]);
    for (i, (protocol, era, handshake_only)) in runs.enumerate() {
        let what = format!(
            "stdio {protocol:?}{}",
            if handshake_only { " handshake-only" } else { "" }
        );
        let record = records.join(format!("{i}.jsonl"));
        let client = stdio_client(protocol, handshake_only, &record).await;
        scenario(&what, &client, era).await;
        validate_sent(&what, &record);
    }
    let _ = std::fs::remove_dir_all(&records);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_core_drives_the_official_python_sdk_over_streamable_http() {
    let server = HttpServer::start(false).await;
    for (protocol, era) in DUAL {
        let client = server.client(protocol).await;
        scenario(&format!("http {protocol:?}"), &client, era).await;
    }
    for revision in ["2025-06-18", "2025-03-26"] {
        let older = server.client(Protocol::Stateful(revision)).await;
        scenario(&format!("http {revision}"), &older, Era::Stateful(revision)).await;
    }

    let legacy = HttpServer::start(true).await;
    let client = legacy.client(Protocol::Auto).await;
    scenario("http handshake-only Auto", &client, Era::Stateful("2025-11-25")).await;
}
