//! The server's questions — `sampling/createMessage`, `elicitation/create`, `roots/list`, as
//! session requests or 2026-07-28 `input_required` rounds — answered by Python.
//!
//! The Python side gives one coroutine function, `dispatch(method, params_json) -> str`, which
//! runs the user's callback on the event loop the client was connected from and answers
//! `{"result": …}` or `{"error": {"code", "message", "data"}}` (an exception in the callback
//! becomes such an error there). The answer is checked against the method's result type here;
//! anything that goes wrong becomes a JSON-RPC error for the server, never a failure of the
//! client.
//!
//! The client core asks the handler ([`ClientHandler`]), except while a call whose progress
//! Python follows is in flight: the core then gives the questions about that call to the call's
//! observer (see [`crate::follow`]), which hands them here with [`PyHandler::answer`], so the
//! same callbacks answer them the same way.

use std::sync::Arc;

use portico_core::ErrorObject;
use portico_core::client::{ClientHandler, InputContext};
use portico_protocol::v2026_07_28 as wire;
use pyo3::prelude::*;
use pyo3_async_runtimes::TaskLocals;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Answers with a Python coroutine on the connecting event loop. Cheap to clone: the client
/// core holds one, and the observer of each followed call another.
#[derive(Clone)]
pub(crate) struct PyHandler(Arc<Dispatch>);

struct Dispatch {
    /// `dispatch(method, params_json)`; `None`: nothing is answered.
    dispatch: Option<Py<PyAny>>,
    /// What the client declares (the Python side derives it from the callbacks it has).
    capabilities: wire::ClientCapabilities,
    /// The event loop (and context) the coroutines run on.
    locals: TaskLocals,
}

impl PyHandler {
    pub(crate) fn new(dispatch: Option<Py<PyAny>>, capabilities: wire::ClientCapabilities, locals: TaskLocals) -> Self {
        Self(Arc::new(Dispatch {
            dispatch,
            capabilities,
            locals,
        }))
    }

    /// Answers one of the server's requests as the client core's own service does: the params
    /// decoded as the newest revision's type (`-32602` when they do not fit), the callback
    /// asked, and an accepted form given the requested schema's defaults for the fields it
    /// leaves out (the core's `ClientConfig::elicitation_defaults`, which this SDK leaves on).
    pub(crate) async fn answer(
        &self,
        method: &str,
        params: Option<&RawValue>,
        cx: InputContext,
    ) -> Result<Box<RawValue>, ErrorObject> {
        match method {
            "sampling/createMessage" => encode_raw(&self.create_message(decode(method, params)?, cx).await?),
            "elicitation/create" => {
                let params: wire::ElicitRequestParams = decode(method, params)?;
                let defaults = form_defaults(&params);
                let answer = self.elicit(params, cx).await?;
                let mut answer = serde_json::to_value(answer).map_err(ErrorObject::internal)?;
                apply_defaults(&mut answer, defaults);
                encode_raw(&answer)
            }
            "roots/list" => encode_raw(&self.list_roots(cx).await?),
            other => Err(ErrorObject::method_not_found(other)),
        }
    }

    async fn ask<R: DeserializeOwned>(&self, method: &str, params: String, cx: InputContext) -> Result<R, ErrorObject> {
        let Dispatch { dispatch, locals, .. } = &*self.0;
        let Some(dispatch) = dispatch else {
            return Err(ErrorObject::method_not_found(method));
        };
        let future = Python::attach(|py| {
            let coroutine = dispatch.bind(py).call1((method, params))?;
            pyo3_async_runtimes::into_future_with_locals(locals, coroutine)
        })
        .map_err(|e| ErrorObject::internal(format!("calling the client's {method} callback: {e}")))?;
        let answer = tokio::select! {
            answer = future => answer,
            () = cx.cancelled() => return Err(ErrorObject::internal(format!("{method}: the request was cancelled"))),
        };
        let text: String = answer
            .and_then(|a| Python::attach(|py| a.extract::<String>(py)))
            .map_err(|e| ErrorObject::internal(format!("the client's {method} callback failed: {e}")))?;
        let mut answer: Value = serde_json::from_str(&text)
            .map_err(|e| ErrorObject::internal(format!("the client's {method} callback answered bad JSON: {e}")))?;
        if let Some(error) = answer.get_mut("error") {
            return Err(serde_json::from_value(error.take())
                .unwrap_or_else(|e| ErrorObject::internal(format!("the client's {method} callback raised: {e}"))));
        }
        let result = answer.get_mut("result").map(Value::take).unwrap_or(Value::Null);
        serde_json::from_value(result).map_err(|e| {
            ErrorObject::internal(format!(
                "the client's {method} callback answered an invalid result: {e}"
            ))
        })
    }
}

fn encode(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".into())
}

fn encode_raw(value: &impl Serialize) -> Result<Box<RawValue>, ErrorObject> {
    serde_json::value::to_raw_value(value).map_err(ErrorObject::internal)
}

/// A server request's params as the newest revision's type (as the client core decodes them).
fn decode<T: DeserializeOwned>(method: &str, params: Option<&RawValue>) -> Result<T, ErrorObject> {
    serde_json::from_str(params.map_or("{}", RawValue::get))
        .map_err(|e| ErrorObject::invalid_params(format!("{method}: {e}")))
}

/// The `default` of every field of a form-mode elicitation's requested schema that has one
/// (SEP-1034), as the client core's handler path gathers them.
fn form_defaults(params: &wire::ElicitRequestParams) -> Map<String, Value> {
    let wire::ElicitRequestParams::ElicitRequestForm(form) = params else {
        return Map::new();
    };
    form.requested_schema
        .properties
        .iter()
        .filter_map(|(name, field)| {
            let default = serde_json::to_value(field).ok()?.get_mut("default")?.take();
            Some((name.clone(), default))
        })
        .collect()
}

/// Puts `defaults` into an `accept` answer's `content` where the answer has no value of its own.
fn apply_defaults(answer: &mut Value, defaults: Map<String, Value>) {
    if defaults.is_empty() || answer.get("action").and_then(Value::as_str) != Some("accept") {
        return;
    }
    let Some(answer) = answer.as_object_mut() else { return };
    let content = answer.entry("content").or_insert_with(|| Value::Object(Map::new()));
    if let Some(content) = content.as_object_mut() {
        for (name, default) in defaults {
            content.entry(name).or_insert(default);
        }
    }
}

impl ClientHandler for PyHandler {
    fn capabilities(&self) -> wire::ClientCapabilities {
        self.0.capabilities.clone()
    }

    async fn create_message(
        &self,
        params: wire::CreateMessageRequestParams,
        cx: InputContext,
    ) -> Result<wire::CreateMessageResult, ErrorObject> {
        self.ask("sampling/createMessage", encode(&params), cx).await
    }

    async fn elicit(
        &self,
        params: wire::ElicitRequestParams,
        cx: InputContext,
    ) -> Result<wire::ElicitResult, ErrorObject> {
        self.ask("elicitation/create", encode(&params), cx).await
    }

    async fn list_roots(&self, cx: InputContext) -> Result<wire::ListRootsResult, ErrorObject> {
        self.ask("roots/list", "{}".into(), cx).await
    }
}
