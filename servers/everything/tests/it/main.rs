//! The fixtures server driven in-process with raw JSON-RPC, as a 2026-07-28 client (every
//! request with `_meta`) and as a 2025-11-25 session; every result, error, notification and
//! server→client request is validated against the official schema of its revision.

mod changes;
mod client_input;
mod client_interop;
mod content;
mod fixtures;
mod logging;
mod mrtr;
mod prompts;
mod python_interop;
mod resources;
mod schemas;
mod tasks;
mod transports;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use portico_core::server::{Connection, Server};
use portico_core::{Outbound, Peer, PeerConfig};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// The stateless revision.
pub const NEW: &str = "2026-07-28";
/// The newest stateful revision.
pub const SESSION: &str = "2025-11-25";

/// What one request produced: the notifications and server→client requests sent while it ran,
/// and its response.
#[derive(Debug, Default)]
pub struct Exchange {
    /// Notifications, in order.
    pub notifications: Vec<Value>,
    /// Requests the server sent the client, in order.
    pub requests: Vec<Value>,
    /// The response to the request.
    pub response: Value,
}

impl Exchange {
    /// The `result`, which must be there.
    pub fn result(&self) -> &Value {
        assert!(
            self.response.get("result").is_some(),
            "expected a result: {}",
            self.response
        );
        &self.response["result"]
    }

    /// The `error`, which must be there.
    pub fn error(&self) -> &Value {
        assert!(
            self.response.get("error").is_some(),
            "expected an error: {}",
            self.response
        );
        &self.response["error"]
    }

    /// The notifications of `method`.
    pub fn notes(&self, method: &str) -> Vec<&Value> {
        self.notifications.iter().filter(|n| n["method"] == method).collect()
    }
}

/// A client's end of one connection to the server.
pub struct Client {
    /// The server's peer; frames go in with `receive`.
    pub peer: Peer<Connection>,
    out: mpsc::Receiver<Outbound>,
    next: i64,
    /// `Some(revision)` for a session; `None` for 2026-07-28 (stateless).
    pub session: Option<&'static str>,
    /// The client's capabilities (sent in `_meta` when stateless).
    pub capabilities: Value,
}

impl Client {
    fn new(server: &Server, session: Option<&'static str>, capabilities: Value) -> Self {
        let (tx, out) = mpsc::channel(64);
        Self {
            peer: Peer::new(server.connection(), PeerConfig::default(), tx),
            out,
            next: 0,
            session,
            capabilities,
        }
    }

    /// A 2026-07-28 client declaring `capabilities`.
    pub fn stateless(server: &Server, capabilities: Value) -> Self {
        Self::new(server, None, capabilities)
    }

    /// A session at `revision`, initialized, declaring `capabilities`.
    pub async fn session(server: &Server, revision: &'static str, capabilities: Value) -> Self {
        let mut c = Self::new(server, Some(revision), capabilities.clone());
        let init = c
            .request(
                "initialize",
                json!({"protocolVersion": revision, "capabilities": capabilities, "clientInfo": {"name": "it", "version": "1"}}),
            )
            .await;
        assert_eq!(init.result()["protocolVersion"], revision);
        validate(revision, "InitializeResult", init.result());
        c.peer
            .receive(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string())
            .await;
        c
    }

    /// The revision the client speaks.
    pub fn revision(&self) -> &'static str {
        self.session.unwrap_or(NEW)
    }

    /// `params` as this client sends them: stateless clients add the `_meta` of 2026-07-28
    /// (members already in `params._meta` win).
    pub fn params(&self, mut params: Value) -> Value {
        if self.session.is_none() {
            let mut meta = json!({
                "io.modelcontextprotocol/protocolVersion": NEW,
                "io.modelcontextprotocol/clientInfo": {"name": "it", "version": "1"},
                "io.modelcontextprotocol/clientCapabilities": self.capabilities,
            });
            if let Some(given) = params.get("_meta").and_then(Value::as_object) {
                for (k, v) in given {
                    meta[k] = v.clone();
                }
            }
            params["_meta"] = meta;
        }
        params
    }

    /// Sends a request and collects what comes back until its response; server→client requests
    /// are answered with `answer(method, params)`.
    pub async fn exchange(
        &mut self,
        method: &str,
        params: Value,
        mut answer: impl FnMut(&str, &Value) -> Value,
    ) -> Exchange {
        self.next += 1;
        let id = self.next;
        let frame = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": self.params(params)});
        self.peer.receive(&frame.to_string()).await;
        let mut exchange = Exchange::default();
        loop {
            let message = self.next_message().await;
            if message.get("id") == Some(&json!(id)) && message.get("method").is_none() {
                exchange.response = message;
                break;
            }
            if message.get("method").is_some() && message.get("id").is_some() {
                let result = answer(message["method"].as_str().unwrap_or_default(), &message["params"]);
                let reply = json!({"jsonrpc": "2.0", "id": message["id"], "result": result});
                exchange.requests.push(message);
                self.peer.receive(&reply.to_string()).await;
            } else {
                exchange.notifications.push(message);
            }
        }
        self.check(method, &exchange);
        exchange
    }

    /// Sends a request the server must answer without asking the client anything.
    pub async fn request(&mut self, method: &str, params: Value) -> Exchange {
        self.exchange(method, params, |m, p| panic!("unexpected request {m} {p}"))
            .await
    }

    /// The next message the server sends, within 10 s.
    pub async fn next_message(&mut self) -> Value {
        let out = tokio::time::timeout(Duration::from_secs(10), self.out.recv())
            .await
            .expect("a message within 10 s")
            .expect("the connection is open");
        serde_json::from_str(&out.text).expect("JSON")
    }

    /// Asserts nothing arrives within a short while.
    pub async fn assert_quiet(&mut self) {
        tokio::task::yield_now().await;
        if let Ok(Some(out)) = tokio::time::timeout(Duration::from_millis(150), self.out.recv()).await {
            panic!("unexpected message {}", out.text);
        }
    }

    /// Validates every message of an exchange against this client's revision.
    fn check(&self, method: &str, exchange: &Exchange) {
        let revision = self.revision();
        for n in &exchange.notifications {
            validate(revision, notification_def(n), n);
        }
        for r in &exchange.requests {
            let def = match r["method"].as_str() {
                Some("elicitation/create") => "ElicitRequest",
                Some("sampling/createMessage") => "CreateMessageRequest",
                Some("roots/list") => "ListRootsRequest",
                other => panic!("unexpected server request {other:?}"),
            };
            validate(revision, def, r);
        }
        validate_response(revision, method, &exchange.response);
    }
}

/// The schema definition of a server notification.
pub fn notification_def(n: &Value) -> &'static str {
    match n["method"].as_str() {
        Some("notifications/message") => "LoggingMessageNotification",
        Some("notifications/progress") => "ProgressNotification",
        Some("notifications/tools/list_changed") => "ToolListChangedNotification",
        Some("notifications/prompts/list_changed") => "PromptListChangedNotification",
        Some("notifications/resources/list_changed") => "ResourceListChangedNotification",
        Some("notifications/resources/updated") => "ResourceUpdatedNotification",
        Some("notifications/subscriptions/acknowledged") => "SubscriptionsAcknowledgedNotification",
        other => panic!("unexpected notification {other:?}: {n}"),
    }
}

/// Validates the response to `method` as `revision` defines it: the whole response where the
/// schema names a `…ResultResponse` (2026-07-28), else the result, or the error envelope.
pub fn validate_response(revision: &str, method: &str, response: &Value) {
    let schema = schema(revision);
    let defs = &schema["$defs"];
    if response.get("error").is_some() {
        let envelope = if defs.get("JSONRPCErrorResponse").is_some() {
            "JSONRPCErrorResponse"
        } else {
            "JSONRPCError"
        };
        validate(revision, envelope, response);
        return;
    }
    // 2025-11-25's tasks (the 2026-07-28 extension's results are no type of its schema).
    let has = |def: &str| defs.get(def).is_some();
    let result = match method {
        "tools/call" if response["result"].get("task").is_some() && has("CreateTaskResult") => "CreateTaskResult",
        "tasks/get" if has("GetTaskResult") => "GetTaskResult",
        "tasks/cancel" if has("CancelTaskResult") => "CancelTaskResult",
        "tasks/result" if has("GetTaskPayloadResult") => "GetTaskPayloadResult",
        "initialize" => "InitializeResult",
        "server/discover" => "DiscoverResult",
        "tools/list" => "ListToolsResult",
        "tools/call" => "CallToolResult",
        "resources/list" => "ListResourcesResult",
        "resources/templates/list" => "ListResourceTemplatesResult",
        "resources/read" => "ReadResourceResult",
        "prompts/list" => "ListPromptsResult",
        "prompts/get" => "GetPromptResult",
        "completion/complete" => "CompleteResult",
        "subscriptions/listen" => "SubscriptionsListenResult",
        _ => "EmptyResult",
    };
    let envelope = format!("{result}Response");
    if defs.get(&envelope).is_some() {
        validate(revision, &envelope, response);
    } else {
        validate(revision, result, &response["result"]);
    }
}

/// The MCP spec inputs: `MCP_SPEC_DIR`, else `../shared/mcp-spec` beside the repository.
pub fn spec_dir() -> std::path::PathBuf {
    match std::env::var_os("MCP_SPEC_DIR") {
        Some(dir) => dir.into(),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/mcp-spec"),
    }
}

/// A revision's official schema (read once per test binary).
pub fn schema(revision: &str) -> Arc<Value> {
    static SCHEMAS: OnceLock<Mutex<HashMap<String, Arc<Value>>>> = OnceLock::new();
    let mut schemas = SCHEMAS.get_or_init(Default::default).lock().expect("lock");
    schemas
        .entry(revision.to_string())
        .or_insert_with(|| {
            let path = spec_dir().join(revision).join("schema.json");
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}; set MCP_SPEC_DIR to the MCP spec folder", path.display()));
            Arc::new(serde_json::from_str(&text).expect("schema.json is JSON"))
        })
        .clone()
}

/// Compiled validators by (revision, definition).
type Validators = Mutex<HashMap<(String, String), Arc<jsonschema::Validator>>>;

/// Validates `value` as the definition `def` of `revision`'s official schema.
pub fn validate(revision: &str, def: &str, value: &Value) {
    static VALIDATORS: OnceLock<Validators> = OnceLock::new();
    let validator = {
        let mut validators = VALIDATORS.get_or_init(Default::default).lock().expect("lock");
        validators
            .entry((revision.to_string(), def.to_string()))
            .or_insert_with(|| {
                let schema = schema(revision);
                let defs_key = if schema.get("$defs").is_some() {
                    "$defs"
                } else {
                    "definitions"
                };
                assert!(
                    schema[defs_key].get(def).is_some(),
                    "{revision} has no definition {def}"
                );
                let wrapper = json!({"$schema": schema["$schema"], "$ref": format!("#/{defs_key}/{def}"), defs_key: schema[defs_key]});
                Arc::new(jsonschema::validator_for(&wrapper).expect("schema compiles"))
            })
            .clone()
    };
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{revision} {def} {value}:\n{}", errors.join("\n"));
}

/// Capabilities of a client that can answer every kind of input request.
pub fn all_capabilities() -> Value {
    json!({"sampling": {}, "elicitation": {"form": {}}, "roots": {"listChanged": true}})
}

/// Both kinds of client, each declaring every input capability: a 2026-07-28 client and a
/// 2025-11-25 session.
pub async fn both(server: &Server) -> Vec<Client> {
    vec![
        Client::stateless(server, all_capabilities()),
        Client::session(server, SESSION, all_capabilities()).await,
    ]
}

/// The text of the first content block of a tool result.
pub fn first_text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or_default()
}

/// The `resultType` of a result (`complete` when absent, as in sessions).
pub fn result_type(result: &Value) -> &str {
    result["resultType"].as_str().unwrap_or("complete")
}

/// The answers to every request of an `input_required` result, keyed as asked, made by
/// `answer(method, params)`.
pub fn answer_all(input_requests: &Value, mut answer: impl FnMut(&str, &Value) -> Value) -> Value {
    let requests = input_requests.as_object().expect("inputRequests is an object");
    let answers: serde_json::Map<String, Value> = requests
        .iter()
        .map(|(key, request)| {
            (
                key.clone(),
                answer(request["method"].as_str().unwrap_or_default(), &request["params"]),
            )
        })
        .collect();
    Value::Object(answers)
}

/// Makes `method` with `params` until it completes (at most `rounds` rounds): a session answers
/// the server's requests as they come; a 2026-07-28 client answers each `input_required` result
/// and retries with `inputResponses` and the echoed `requestState`. Returns every exchange.
pub async fn until_complete(
    c: &mut Client,
    method: &str,
    params: Value,
    rounds: usize,
    mut answer: impl FnMut(&str, &Value) -> Value,
) -> Vec<Exchange> {
    let mut exchanges = Vec::new();
    let mut next = params.clone();
    for _ in 0..rounds {
        let x = c.exchange(method, next.clone(), &mut answer).await;
        let done = x.response.get("error").is_some() || result_type(x.result()) != "input_required";
        if !done {
            let r = x.result();
            next = params.clone();
            next["inputResponses"] = answer_all(&r["inputRequests"], &mut answer);
            if let Some(state) = r.get("requestState") {
                next["requestState"] = state.clone();
            }
        }
        exchanges.push(x);
        if done {
            return exchanges;
        }
    }
    panic!("{method} did not complete in {rounds} rounds: {exchanges:?}");
}

/// What a test client answers: a sampling result with `text`, an accepted form with `content`,
/// and one root.
pub fn answers(text: &'static str, content: Value) -> impl FnMut(&str, &Value) -> Value {
    move |method, _params| match method {
        "sampling/createMessage" => {
            json!({"role": "assistant", "content": {"type": "text", "text": text}, "model": "test-model", "stopReason": "endTurn"})
        }
        "elicitation/create" => json!({"action": "accept", "content": content}),
        "roots/list" => json!({"roots": [{"uri": "file:///test/root", "name": "Test Root"}]}),
        other => panic!("unexpected input request {other}"),
    }
}

/// The server, for tests that need only one of it.
pub fn server() -> Server {
    portico_everything::server()
}
