//! `portico conformance-client URL`: the client side of the official MCP conformance suite
//! (`@modelcontextprotocol/conformance`, `client` command), acted out with Portico's client core.
//!
//! The suite starts a mock server per scenario and runs this command with the server's URL; the
//! scenario's name is in `MCP_CONFORMANCE_SCENARIO`, the revision to speak in
//! `MCP_CONFORMANCE_PROTOCOL_VERSION` (`2026-07-28`: stateless; a 2025-x revision: a session
//! opened with `initialize` at that revision), and some scenarios pass calls to make as JSON in
//! `MCP_CONFORMANCE_CONTEXT` (`{"toolCalls": [{"name", "arguments"}]}`). The checks are judged by
//! the suite from the traffic; this command exits 0 when it could act the scenario out, and 1
//! with the reason on standard error otherwise.
//!
//! Everything goes through the public client API — [`portico_core::client::Client`] over
//! [`portico_transport::http::client`] — so what the suite grades is what every Portico client
//! does: the scenarios below only choose which calls to make. `auth/*` scenarios are in
//! [`auth`]. A scenario this command does not know gets the generic run (connect, list the
//! tools, call those the context names) and a note saying so.

mod auth;

use std::collections::BTreeMap;
use std::process::ExitCode;

use portico_core::ErrorObject;
use portico_core::client::{Client, ClientHandler, InputContext, Protocol};
use portico_core::server::{STATEFUL_REVISIONS, STATELESS_REVISION};
use portico_protocol::v2026_07_28 as wire;
use portico_transport::http::client::{HttpClientConfig, connect};
use serde_json::{Map, Value, json};

/// Runs the scenario named in the environment against `url`.
pub fn run(url: &str) -> ExitCode {
    let scenario = std::env::var("MCP_CONFORMANCE_SCENARIO").unwrap_or_default();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("portico conformance-client: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        if scenario.starts_with("auth/") {
            return auth::run(url, &scenario).await;
        }
        Scenario::from_env(url, &scenario)?.run().await
    });
    match outcome {
        Ok(()) => {
            eprintln!("portico conformance-client: scenario {scenario:?} done");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("portico conformance-client: scenario {scenario:?} failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One run: what the suite asked for.
struct Scenario {
    name: String,
    url: String,
    protocol: Protocol,
    /// `MCP_CONFORMANCE_CONTEXT`, `null` when unset.
    context: Value,
}

type Outcome = Result<(), String>;

impl Scenario {
    fn from_env(url: &str, name: &str) -> Result<Self, String> {
        // The suite's own default when a scenario names no revision.
        let revision =
            std::env::var("MCP_CONFORMANCE_PROTOCOL_VERSION").unwrap_or_else(|_| STATEFUL_REVISIONS[0].into());
        let protocol = protocol(&revision)?;
        let context = match std::env::var("MCP_CONFORMANCE_CONTEXT") {
            Ok(text) => {
                serde_json::from_str(&text).map_err(|e| format!("MCP_CONFORMANCE_CONTEXT is not JSON ({e}): {text}"))?
            }
            Err(_) => Value::Null,
        };
        Ok(Self {
            name: name.into(),
            url: url.into(),
            protocol,
            context,
        })
    }

    async fn connect(&self) -> Result<Client, String> {
        let info = wire::Implementation::new("portico-conformance-client", env!("CARGO_PKG_VERSION"));
        let url = self.url.clone();
        Client::builder(info)
            .handler(Answers)
            .protocol(self.protocol)
            .connect(|service| async move { connect(&url, service, HttpClientConfig::default()).await })
            .await
            .map_err(|e| format!("connecting to {}: {e}", self.url))
    }

    async fn run(&self) -> Outcome {
        let client = self.connect().await?;
        let outcome = match self.name.as_str() {
            // The handshake is the test; the listing shows the session works after it.
            "initialize" | "request-metadata" | "json-schema-ref-no-deref" => list_tools(&client).await.map(drop),
            "tools_call" => {
                list_tools(&client).await?;
                call(&client, "add_numbers", json!({"a": 5, "b": 3})).await
            }
            "elicitation-sep1034-client-defaults" => {
                list_tools(&client).await?;
                call(&client, "test_client_elicitation_defaults", json!({})).await
            }
            "sse-retry" => {
                list_tools(&client).await?;
                call(&client, "test_reconnection", json!({})).await
            }
            "sep-2322-client-request-state" => request_state(&client).await,
            "http-standard-headers" => standard_headers(&client).await,
            "json-schema-2020-12-preservation" => schema_echo(&client).await,
            // http-custom-headers, http-invalid-tool-headers: the generic run.
            "http-custom-headers" | "http-invalid-tool-headers" => self.generic(&client).await,
            other => {
                eprintln!(
                    "portico conformance-client: scenario {other:?} is not known to this client; \
                     doing the generic run (list the tools, call those the context names, or every one)"
                );
                self.generic(&client).await
            }
        };
        let closed = client.close().await.map_err(|e| format!("closing: {e}"));
        outcome.and(closed)
    }

    /// Lists the tools, then calls those the context's `toolCalls` names (with their
    /// arguments), or, without any, every listed tool with arguments made from its schema.
    async fn generic(&self, client: &Client) -> Outcome {
        let tools = list_tools(client).await?;
        let calls: Vec<(String, Value)> = match self.context.get("toolCalls").and_then(Value::as_array) {
            Some(calls) => calls
                .iter()
                .filter_map(|c| {
                    let name = c.get("name")?.as_str()?.to_string();
                    Some((name, c.get("arguments").cloned().unwrap_or_else(|| json!({}))))
                })
                .collect(),
            None => tools
                .iter()
                .map(|tool| (tool.name.clone(), sample_arguments(&tool.input_schema)))
                .collect(),
        };
        for (name, arguments) in calls {
            call(client, &name, arguments).await?;
        }
        Ok(())
    }
}

/// The era a revision names.
fn protocol(revision: &str) -> Result<Protocol, String> {
    if revision == STATELESS_REVISION {
        return Ok(Protocol::Stateless);
    }
    STATEFUL_REVISIONS
        .iter()
        .find(|r| **r == revision)
        .map(|r| Protocol::Stateful(r))
        .ok_or_else(|| {
            format!(
                "MCP_CONFORMANCE_PROTOCOL_VERSION {revision:?} is not a revision this client speaks \
                 ({STATELESS_REVISION}, {})",
                STATEFUL_REVISIONS.join(", ")
            )
        })
}

async fn list_tools(client: &Client) -> Result<Vec<wire::Tool>, String> {
    client.list_all_tools().await.map_err(|e| e.to_string())
}

/// Calls `name`; a protocol error fails the run, a tool error (`isError`) does not.
async fn call(client: &Client, name: &str, arguments: Value) -> Outcome {
    let result = client.call_tool(name, arguments).await.map_err(|e| e.to_string())?;
    if result.is_error == Some(true) {
        eprintln!("portico conformance-client: tool {name} answered with isError");
    }
    Ok(())
}

/// `sep-2322-client-request-state`: `input_required` rounds with and without `requestState`,
/// a call without `resultType`, and a plain call made while another is between rounds.
async fn request_state(client: &Client) -> Outcome {
    let tools = list_tools(client).await?;
    for expected in ["test_mrtr_echo_state", "test_mrtr_no_state", "test_mrtr_unrelated"] {
        if !tools.iter().any(|t| t.name == expected) {
            return Err(format!("the server did not list {expected}"));
        }
    }
    // The unrelated call runs beside the echo call's rounds: it must carry neither's answers.
    let (echoed, unrelated) = tokio::join!(
        call(client, "test_mrtr_echo_state", json!({})),
        call(client, "test_mrtr_unrelated", json!({})),
    );
    echoed?;
    unrelated?;
    call(client, "test_mrtr_no_state", json!({})).await?;
    call(client, "test_mrtr_no_result_type", json!({})).await
}

/// `http-standard-headers`: one request of every kind that carries `Mcp-Method` and `Mcp-Name`.
async fn standard_headers(client: &Client) -> Outcome {
    let err = |e: portico_core::client::ClientError| e.to_string();
    for tool in list_tools(client).await? {
        call(client, &tool.name, sample_arguments(&tool.input_schema)).await?;
    }
    for resource in client.list_all_resources().await.map_err(err)? {
        client.read_resource(&resource.uri).await.map_err(err)?;
    }
    for prompt in client.list_all_prompts().await.map_err(err)? {
        let arguments = prompt
            .arguments
            .iter()
            .flatten()
            .filter(|a| a.required == Some(true))
            .map(|a| (a.name.clone(), "value".to_string()))
            .collect::<BTreeMap<_, _>>();
        client.get_prompt(&prompt.name, arguments).await.map_err(err)?;
    }
    Ok(())
}

/// `json-schema-2020-12-preservation`: the focal tool's `inputSchema`, as the client core
/// returned it from `tools/list`, goes back verbatim through the echo tool.
async fn schema_echo(client: &Client) -> Outcome {
    const FOCAL: &str = "json_schema_2020_12_tool";
    let tools = list_tools(client).await?;
    let focal = tools
        .iter()
        .find(|t| t.name == FOCAL)
        .ok_or_else(|| format!("the server did not list {FOCAL}"))?;
    let schema = serde_json::to_value(&focal.input_schema).map_err(|e| e.to_string())?;
    call(client, "json_schema_echo", json!({ "schema": schema })).await
}

/// Arguments for a tool made from its input schema: a value of the declared type (its
/// `default` or first `enum` member when it has one) for every required property.
fn sample_arguments(schema: &wire::ToolInputSchema) -> Value {
    let schema = serde_json::to_value(schema).unwrap_or(Value::Null);
    let mut arguments = Map::new();
    let properties = schema.get("properties").and_then(Value::as_object);
    for name in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
        let Some(name) = name.as_str() else { continue };
        let property = properties.and_then(|p| p.get(name)).unwrap_or(&Value::Null);
        arguments.insert(name.into(), sample_value(property));
    }
    Value::Object(arguments)
}

fn sample_value(property: &Value) -> Value {
    if let Some(value) = property.get("default") {
        return value.clone();
    }
    if let Some(first) = property.get("enum").and_then(Value::as_array).and_then(|e| e.first()) {
        return first.clone();
    }
    match property.get("type").and_then(Value::as_str) {
        Some("integer" | "number") => json!(1),
        Some("boolean") => json!(true),
        Some("object") => json!({}),
        Some("array") => json!([]),
        Some("null") => Value::Null,
        _ => json!("value"),
    }
}

/// What the conformance client answers when a server asks: it declares sampling, form
/// elicitation and roots, accepts every form (the client core fills in the schema's defaults),
/// samples a fixed text and has one root.
struct Answers;

impl ClientHandler for Answers {
    fn capabilities(&self) -> wire::ClientCapabilities {
        serde_json::from_value(json!({"sampling": {}, "elicitation": {"form": {}}, "roots": {}}))
            .unwrap_or_else(|_| wire::ClientCapabilities::new())
    }

    async fn create_message(
        &self,
        _params: wire::CreateMessageRequestParams,
        _cx: InputContext,
    ) -> Result<wire::CreateMessageResult, ErrorObject> {
        Ok(wire::CreateMessageResult::new(
            wire::TextContent::new("a sampled answer from portico conformance-client").into(),
            "portico-conformance",
            wire::Role::Assistant,
        ))
    }

    async fn elicit(
        &self,
        params: wire::ElicitRequestParams,
        _cx: InputContext,
    ) -> Result<wire::ElicitResult, ErrorObject> {
        Ok(match params {
            wire::ElicitRequestParams::ElicitRequestForm(_) => {
                wire::ElicitResult::new(wire::ElicitResultAction::Accept).with_content(BTreeMap::new())
            }
            // Nobody can follow a URL here.
            wire::ElicitRequestParams::ElicitRequestURL(_) => {
                wire::ElicitResult::new(wire::ElicitResultAction::Decline)
            }
        })
    }

    async fn list_roots(&self, _cx: InputContext) -> Result<wire::ListRootsResult, ErrorObject> {
        Ok(wire::ListRootsResult::new(vec![wire::Root::new("file:///tmp")]))
    }
}
