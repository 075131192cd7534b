//! The server's questions — `sampling/createMessage`, `elicitation/create`, `roots/list`, as
//! session requests or 2026-07-28 `input_required` rounds — answered by Python.
//!
//! The Python side gives one coroutine function, `dispatch(method, params_json) -> str`, which
//! runs the user's callback on the event loop the client was connected from and answers
//! `{"result": …}` or `{"error": {"code", "message", "data"}}` (an exception in the callback
//! becomes such an error there). The answer is checked against the method's result type here;
//! anything that goes wrong becomes a JSON-RPC error for the server, never a failure of the
//! client.

use portico_core::ErrorObject;
use portico_core::client::{ClientHandler, InputContext};
use portico_protocol::v2026_07_28 as wire;
use pyo3::prelude::*;
use pyo3_async_runtimes::TaskLocals;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Answers with a Python coroutine on the connecting event loop.
pub(crate) struct PyHandler {
    /// `dispatch(method, params_json)`; `None`: nothing is answered.
    pub(crate) dispatch: Option<Py<PyAny>>,
    /// What the client declares (the Python side derives it from the callbacks it has).
    pub(crate) capabilities: wire::ClientCapabilities,
    /// The event loop (and context) the coroutines run on.
    pub(crate) locals: TaskLocals,
}

impl PyHandler {
    async fn ask<R: DeserializeOwned>(&self, method: &str, params: String, cx: InputContext) -> Result<R, ErrorObject> {
        let Some(dispatch) = &self.dispatch else {
            return Err(ErrorObject::method_not_found(method));
        };
        let future = Python::attach(|py| {
            let coroutine = dispatch.bind(py).call1((method, params))?;
            pyo3_async_runtimes::into_future_with_locals(&self.locals, coroutine)
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

fn encode(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".into())
}

impl ClientHandler for PyHandler {
    fn capabilities(&self) -> wire::ClientCapabilities {
        self.capabilities.clone()
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
