//! `portico-node`: the native half of the TypeScript SDK, `@portico-mcp/client`. It wraps
//! Portico's one client core ([`portico_core::client`]) and its transports for Node as a
//! Node-API addon (napi-rs); the package's JavaScript (`lib/`) gives it the promise API, the
//! events and the error classes, so this crate stays a thin, JSON-in JSON-out layer:
//!
//! - [`connect`] opens a [`NativeClient`] over Streamable HTTP, WebSocket, legacy HTTP+SSE or a
//!   child process's stdio (`connect` module), with bearer or OAuth credentials;
//! - [`NativeClient::request`] sends one request (typed in the core, so tool output schemas,
//!   `Mcp-Param` retries and multi round-trip input apply) and resolves with its result as JSON;
//! - the server's notifications and its questions (sampling, elicitation, roots, in a session
//!   or as `input_required` rounds) go to one JavaScript function (`bridge` module);
//! - failures reject with a JSON reason the package maps to `McpError` (`error` module).
//!
//! Every async function runs on napi's tokio runtime (feature `tokio_rt`). No features.

mod bridge;
mod connect;
mod error;

/// mimalloc for the addon's own allocations (the client core's requests, results and futures;
/// V8's heap is Node's): with the system allocator, `malloc` and `free` were about a seventh of
/// the client core's instructions per call (`cargo xtask bench client` under callgrind). The
/// `portico` binary and the Python SDK use it for the same reason.
#[global_allocator]
static ALLOCATOR: portico_alloc::Mimalloc = portico_alloc::Mimalloc;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use napi_derive::napi;
use portico_core::client::{Client, ClientError, Notification, Notifications, RequestOptions, Subscription};
use portico_core::server::Era;
use portico_protocol::v2026_07_28 as wire;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::bridge::{Bridge, EventFn};

/// Connects to `target` (JSON: `{transport: "http" | "ws" | "sse", url}` or
/// `{transport: "stdio", command, args, env, cwd}`) with `options` (JSON: `clientInfo`,
/// `protocol`, `requestTimeoutMs`, `probeTimeoutMs`, `handlers`, `capabilities`, `auth`,
/// `tls.rootCertificates`), sending
/// every event to `events`.
#[napi]
pub async fn connect(target: String, options: String, events: EventFn) -> napi::Result<NativeClient> {
    let target: Value = parse("target", &target)?;
    let options: Value = parse("options", &options)?;
    let target = connect::Target::parse(&target)?;
    let bridge = Arc::new(Bridge::new(events));
    let client = match connect::connect(target, &options, bridge.clone()).await {
        Ok(client) => client,
        Err(e) => {
            bridge.release();
            return Err(e);
        }
    };
    let forward = tokio::spawn(bridge::forward(client.notifications(), bridge.clone()));
    // When the server goes away, Node need not wait for `close` to exit.
    let watch = {
        let (client, bridge) = (client.clone(), bridge.clone());
        tokio::spawn(async move {
            client.peer().closed().await;
            bridge.emit(&json!({"type": "closed"}));
            bridge.release();
        })
    };
    Ok(NativeClient {
        client,
        bridge,
        calls: Mutex::new(HashMap::new()),
        listens: Mutex::new(HashMap::new()),
        next_listen: AtomicU32::new(1),
        tasks: Mutex::new(vec![forward, watch]),
    })
}

fn parse(what: &str, text: &str) -> napi::Result<Value> {
    serde_json::from_str(text).map_err(|e| error::other("invalidArgument", format!("{what} is not JSON: {e}")))
}

/// A connected client (used through `Client` of the package).
#[napi]
pub struct NativeClient {
    client: Client,
    bridge: Arc<Bridge>,
    /// The cancellation of each call JavaScript may abort, by its call id.
    calls: Mutex<HashMap<u32, CancellationToken>>,
    /// Open `listen` subscriptions, by id.
    listens: Mutex<HashMap<u32, Subscription>>,
    next_listen: AtomicU32,
    /// The notification forwarder and the close watcher, aborted by `close`.
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// Removes a call's cancellation when the call ends, however it ends.
struct CallGuard<'a> {
    calls: &'a Mutex<HashMap<u32, CancellationToken>>,
    id: u32,
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

#[napi]
impl NativeClient {
    /// What the client learned of the server, as JSON: `protocolVersion`, `serverInfo`,
    /// `capabilities`, `instructions`, `supportedVersions`, `stateless`.
    #[napi]
    pub fn server(&self) -> String {
        let server = self.client.server();
        json!({
            "protocolVersion": server.protocol_version,
            "serverInfo": server.info,
            "capabilities": server.capabilities,
            "instructions": server.instructions,
            "supportedVersions": server.supported_versions,
            "stateless": self.client.era() == Era::Stateless,
        })
        .to_string()
    }

    /// Sends `method` with `params` (JSON object or `null`) and `options` (JSON:
    /// `timeoutMs`, `progressToken`, `callId` — the id `cancel` aborts it by —, `meta`), and
    /// resolves with the result as JSON.
    #[napi]
    pub async fn request(&self, method: String, params: String, options: String) -> napi::Result<String> {
        let params = parse("params", &params)?;
        let options = parse("options", &options)?;
        let mut request = RequestOptions::new();
        if let Some(ms) = options.get("timeoutMs").and_then(Value::as_f64).filter(|ms| *ms >= 0.0) {
            request = request.timeout(Duration::from_millis(ms as u64));
        }
        let token = options.get("progressToken").and_then(Value::as_str);
        if let Some(token) = token {
            request = request.progress(wire::ProgressToken::String(token.into()));
        }
        if let Some(meta) = options.get("meta").and_then(Value::as_object) {
            for (key, value) in meta {
                request = request.meta(key.clone(), value.clone());
            }
        }
        let cancel = CancellationToken::new();
        let call_id = options.get("callId").and_then(Value::as_u64).map(|id| id as u32);
        let _guard = call_id.map(|id| {
            self.calls
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(id, cancel.clone());
            CallGuard { calls: &self.calls, id }
        });
        // The call's progress goes to JavaScript through the event function, then `settled`,
        // so JavaScript sees all of it before it drops the call's callback (the promise's
        // answer comes another way, in no set order with the events).
        let mut progress = match (token, call_id) {
            (Some(token), Some(id)) => Some(Progress {
                token: wire::ProgressToken::String(token.into()),
                receiver: self.client.notifications(),
                bridge: &self.bridge,
                call_id: id,
            }),
            _ => None,
        };
        let call = dispatch(&self.client, &method, params, &request);
        tokio::pin!(call);
        // Dropping the call (on abort) cancels its request on the server.
        let result = loop {
            tokio::select! {
                result = &mut call => break result.map_err(error::to_js)?,
                () = cancel.cancelled() => {
                    return Err(error::other("aborted", format!("`{method}` was aborted")));
                }
                Some(notification) = next_notification(&mut progress) => {
                    if let Some(progress) = &progress {
                        progress.forward(notification);
                    }
                }
            }
        };
        if let Some(progress) = &mut progress {
            while let Some(notification) = progress.receiver.try_recv() {
                progress.forward(notification);
            }
        }
        drop(progress);
        serde_json::to_string(&result).map_err(|e| error::other("protocol", e.to_string()))
    }

    /// Aborts the call with this id (see `request`); nothing when it has ended.
    #[napi]
    pub fn cancel(&self, call_id: u32) {
        if let Some(token) = self
            .calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&call_id)
        {
            token.cancel();
        }
    }

    /// The answer to the server's question `id` (a `request` event): its result as JSON when
    /// `ok`, else `{code?, message, data?}`.
    #[napi]
    pub fn respond(&self, id: u32, ok: bool, payload: String) {
        self.bridge.respond(id, ok, &payload);
    }

    /// Asks for change notifications (`filter`: a `SubscriptionFilter` as JSON): a
    /// `subscriptions/listen` stream in 2026-07-28, `resources/subscribe` in a session.
    /// Resolves with `{"id", "granted"}`; `unlisten(id)` ends it.
    #[napi]
    pub async fn listen(&self, filter: String) -> napi::Result<String> {
        let filter: wire::SubscriptionFilter =
            serde_json::from_str(&filter).map_err(|e| error::other("invalidArgument", format!("the filter: {e}")))?;
        let subscription = self.client.listen(filter).await.map_err(error::to_js)?;
        let granted = serde_json::to_value(subscription.granted()).unwrap_or(Value::Null);
        let id = self.next_listen.fetch_add(1, Ordering::Relaxed);
        self.listens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, subscription);
        Ok(json!({"id": id, "granted": granted}).to_string())
    }

    /// Ends the subscription `id` made by `listen`.
    #[napi]
    pub async fn unlisten(&self, id: u32) -> napi::Result<()> {
        let subscription = self.listens.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
        match subscription {
            Some(subscription) => subscription.close().await.map_err(error::to_js),
            None => Ok(()),
        }
    }

    /// Closes the connection: calls in flight reject, the child process stops, the session
    /// ends; Node no longer waits for this client.
    #[napi]
    pub async fn close(&self) -> napi::Result<()> {
        let listens: Vec<_> = self
            .listens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .collect();
        drop(listens);
        let outcome = self.client.close().await;
        for task in self.tasks.lock().unwrap_or_else(PoisonError::into_inner).drain(..) {
            task.abort();
        }
        self.bridge.release();
        outcome.map_err(error::to_js)
    }
}

/// The progress of one call, handed to JavaScript as `{"type": "progress", "callId", "params"}`
/// events; `{"type": "settled", "callId"}` follows the last one (when this is dropped).
struct Progress<'a> {
    token: wire::ProgressToken,
    receiver: Notifications,
    bridge: &'a Bridge,
    call_id: u32,
}

impl Progress<'_> {
    fn forward(&self, notification: Notification) {
        if let Notification::Progress(params) = notification
            && params.progress_token == self.token
        {
            let params = serde_json::to_value(params).unwrap_or(Value::Null);
            self.bridge
                .emit(&json!({"type": "progress", "callId": self.call_id, "params": params}));
        }
    }
}

impl Drop for Progress<'_> {
    fn drop(&mut self) {
        self.bridge.emit(&json!({"type": "settled", "callId": self.call_id}));
    }
}

/// The next notification of a call's progress receiver; never, without one.
async fn next_notification(progress: &mut Option<Progress<'_>>) -> Option<Notification> {
    match progress {
        Some(progress) => progress.receiver.recv().await,
        None => std::future::pending().await,
    }
}

/// One request, through the client core's typed call where there is one (so its checks and
/// retries apply), else as a raw request; the result as JSON.
async fn dispatch(
    client: &Client,
    method: &str,
    params: Value,
    options: &RequestOptions,
) -> Result<Value, ClientError> {
    let text = |key: &str| params.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
    let encode = |v: Result<Value, serde_json::Error>| {
        v.map_err(|source| ClientError::Encode {
            method: method.into(),
            source,
        })
    };
    match method {
        "tools/list" => {
            let cursor = params.get("cursor").and_then(Value::as_str);
            encode(serde_json::to_value(client.list_tools(cursor).await?))
        }
        "tools/call" => {
            let arguments = params.get("arguments").cloned().unwrap_or(Value::Null);
            let result = client.call_tool_with(&text("name"), arguments, options).await?;
            encode(serde_json::to_value(result))
        }
        "resources/read" => encode(serde_json::to_value(
            client.read_resource_with(&text("uri"), options).await?,
        )),
        "prompts/get" => {
            let arguments: BTreeMap<String, String> = params
                .get("arguments")
                .and_then(Value::as_object)
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                        .collect()
                })
                .unwrap_or_default();
            encode(serde_json::to_value(
                client.get_prompt_with(&text("name"), arguments, options).await?,
            ))
        }
        "ping" => client.ping().await.map(|()| json!({})),
        "logging/setLevel" => {
            let level: wire::LoggingLevel = serde_json::from_value(params.get("level").cloned().unwrap_or_default())
                .map_err(|source| ClientError::Encode {
                    method: method.into(),
                    source,
                })?;
            client.set_level(level).await.map(|()| json!({}))
        }
        _ => client.request(method, params, options).await,
    }
}
