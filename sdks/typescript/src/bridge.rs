//! The way back into JavaScript: one event function per client ([`Bridge`]) carrying the
//! server's notifications and its requests for input, which [`JsHandler`] (the client core's
//! [`ClientHandler`]) sends there and whose answers come back through [`Bridge::respond`].
//!
//! Everything crosses as JSON text: an event is `{"type": "notification", "method", "params"}`,
//! `{"type": "request", "id", "method", "params", "key"}` (answer with `respond(id, ok, json)`),
//! `{"type": "cancelled", "id"}` (the question is void; its answer is no longer read) or
//! `{"type": "closed"}` (the connection ended).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use portico_core::ErrorObject;
use portico_core::client::{ClientHandler, InputContext, Notification, Notifications};
use portico_protocol::v2026_07_28 as wire;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// The JavaScript function every event of a client is given to, as JSON text. Not weak: an
/// open client keeps Node running, as an open socket does, until it is closed.
pub type EventFn = ThreadsafeFunction<String, napi::Unknown<'static>, String, napi::Status, false>;

/// The JSON-RPC code of a question the server or the caller gave up on.
const REQUEST_CANCELLED: i64 = -32800;

/// The event function and the questions waiting for their answers.
pub struct Bridge {
    events: Mutex<Option<EventFn>>,
    pending: Mutex<HashMap<u32, oneshot::Sender<Result<Value, ErrorObject>>>>,
    next: AtomicU32,
}

impl Bridge {
    pub fn new(events: EventFn) -> Self {
        Self {
            events: Mutex::new(Some(events)),
            pending: Mutex::new(HashMap::new()),
            next: AtomicU32::new(1),
        }
    }

    /// Queues `event` for JavaScript; `false` once the bridge is released.
    pub fn emit(&self, event: &Value) -> bool {
        let events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        match events.as_ref() {
            Some(events) => events.call(event.to_string(), ThreadsafeFunctionCallMode::NonBlocking) == napi::Status::Ok,
            None => false,
        }
    }

    /// Stops calling JavaScript (the client is closed): Node may exit, and the questions
    /// still waiting fail.
    pub fn release(&self) {
        self.events.lock().unwrap_or_else(PoisonError::into_inner).take();
        self.pending.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// The answer of JavaScript to question `id`: its result when `ok`, else its error
    /// (`{code?, message, data?}`; a handler that threw without a code is an internal error).
    pub fn respond(&self, id: u32, ok: bool, payload: &str) {
        let Some(sender) = self.pending.lock().unwrap_or_else(PoisonError::into_inner).remove(&id) else {
            return;
        };
        let value: Value = serde_json::from_str(payload).unwrap_or(Value::Null);
        let answer = if ok {
            Ok(value)
        } else {
            let message = value
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("the handler failed")
                .to_string();
            let code = value
                .get("code")
                .and_then(Value::as_i64)
                .unwrap_or(portico_core::error::INTERNAL_ERROR);
            let mut error = ErrorObject::new(code, message);
            if let Some(data) = value.get("data").filter(|d| !d.is_null()) {
                error = error.with_data(data.clone());
            }
            Err(error)
        };
        let _ = sender.send(answer);
    }

    /// Asks JavaScript `method` and waits for the answer, or for the question to become void.
    async fn ask<P: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        params: &P,
        cx: &InputContext,
    ) -> Result<R, ErrorObject> {
        let params = serde_json::to_value(params).map_err(ErrorObject::internal)?;
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, sender);
        let event = json!({"type": "request", "id": id, "method": method, "params": params, "key": cx.key()});
        if !self.emit(&event) {
            self.pending.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
            return Err(ErrorObject::internal("the client is closed"));
        }
        let answer = tokio::select! {
            answer = receiver => answer.unwrap_or_else(|_| Err(ErrorObject::internal("the client is closed"))),
            () = cx.cancelled() => {
                self.pending.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
                self.emit(&json!({"type": "cancelled", "id": id}));
                Err(ErrorObject::new(REQUEST_CANCELLED, format!("{method} was cancelled")))
            }
        }?;
        serde_json::from_value(answer).map_err(|e| {
            ErrorObject::internal(format!("the client's {method} handler returned an invalid result: {e}"))
        })
    }
}

/// The client core's handler: every question goes to JavaScript. The capabilities are the
/// ones the JavaScript options declared (from the handlers given, or explicitly).
pub struct JsHandler {
    pub capabilities: wire::ClientCapabilities,
    pub bridge: Arc<Bridge>,
}

impl ClientHandler for JsHandler {
    fn capabilities(&self) -> wire::ClientCapabilities {
        self.capabilities.clone()
    }

    async fn create_message(
        &self,
        params: wire::CreateMessageRequestParams,
        cx: InputContext,
    ) -> Result<wire::CreateMessageResult, ErrorObject> {
        self.bridge.ask("sampling/createMessage", &params, &cx).await
    }

    async fn elicit(
        &self,
        params: wire::ElicitRequestParams,
        cx: InputContext,
    ) -> Result<wire::ElicitResult, ErrorObject> {
        self.bridge.ask("elicitation/create", &params, &cx).await
    }

    async fn list_roots(&self, cx: InputContext) -> Result<wire::ListRootsResult, ErrorObject> {
        self.bridge.ask("roots/list", &json!({}), &cx).await
    }
}

/// Hands every notification to JavaScript until the connection closes (or the task is
/// aborted by `close`).
pub async fn forward(mut notifications: Notifications, bridge: Arc<Bridge>) {
    while let Some(notification) = notifications.recv().await {
        let (method, params) = wire_form(notification);
        if !bridge.emit(&json!({"type": "notification", "method": method, "params": params})) {
            return;
        }
    }
}

/// A notification as it was on the wire: its method and params.
fn wire_form(notification: Notification) -> (String, Value) {
    let value = |v: Result<Value, serde_json::Error>| v.unwrap_or(Value::Null);
    let listen_meta = |subscription: Option<portico_core::RequestId>| match subscription {
        Some(id) => json!({"_meta": {portico_core::client::SUBSCRIPTION_ID: id}}),
        None => json!({}),
    };
    match notification {
        Notification::Progress(p) => ("notifications/progress".into(), value(serde_json::to_value(p))),
        Notification::Log(p) => ("notifications/message".into(), value(serde_json::to_value(p))),
        Notification::ToolsListChanged { subscription } => {
            ("notifications/tools/list_changed".into(), listen_meta(subscription))
        }
        Notification::PromptsListChanged { subscription } => {
            ("notifications/prompts/list_changed".into(), listen_meta(subscription))
        }
        Notification::ResourcesListChanged { subscription } => {
            ("notifications/resources/list_changed".into(), listen_meta(subscription))
        }
        Notification::ResourceUpdated { uri, subscription } => {
            let mut params = listen_meta(subscription);
            params["uri"] = Value::String(uri);
            ("notifications/resources/updated".into(), params)
        }
        Notification::Other { method, params } => (method, params.unwrap_or(Value::Null)),
        other => ("unknown".into(), Value::String(format!("{other:?}"))),
    }
}
