//! `NativeClient`: the calls of a connected [`Client`], each an awaitable resolving to the
//! result as JSON text. Cancelling the awaitable (a cancelled task, a timeout around it, the
//! caller's context exiting) drops the Rust future, which cancels the request on the wire.
//!
//! A call given a `NativeProgress` (see [`crate::follow`]) hands it the call's progress
//! reports, in order, and ends it when the call ends.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use portico_core::client::{Client, ClientError, RequestOptions};
use portico_protocol::v2026_07_28 as wire;
use pyo3::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::errors;
use crate::follow::{EndGuard, Ledger, NativeProgress};
use crate::notify::{NativeNotifications, NativeSubscription};

/// A connected client (shared by clones; closing it closes them all).
#[pyclass(module = "portico._native", frozen)]
pub(crate) struct NativeClient {
    pub(crate) client: Client,
    /// The tokens of the calls whose progress Python follows.
    ledger: Arc<Ledger>,
    /// How many progress reports a followed call keeps for a reader that falls behind.
    progress_capacity: usize,
}

impl NativeClient {
    pub(crate) fn new(client: Client, progress_capacity: usize) -> Self {
        Self {
            client,
            ledger: Arc::default(),
            progress_capacity,
        }
    }

    /// The options of one request: a timeout in seconds, the progress to follow, more `_meta`;
    /// with the guard that ends that progress when the call ends.
    fn options(
        &self,
        timeout: Option<f64>,
        progress: Option<PyRef<'_, NativeProgress>>,
        meta_json: Option<&str>,
    ) -> PyResult<(RequestOptions, Option<EndGuard>)> {
        let mut options = RequestOptions::new();
        if let Some(timeout) = timeout {
            let after = std::time::Duration::try_from_secs_f64(timeout)
                .map_err(|_| errors::usage(format!("timeout must be a positive number of seconds, got {timeout}")))?;
            options = options.timeout(after);
        }
        if let Some(meta) = meta_json {
            let meta: serde_json::Map<String, Value> = parse("_meta", meta)?;
            for (key, value) in meta {
                options = options.meta(key, value);
            }
        }
        let Some(progress) = progress else {
            return Ok((options, None));
        };
        let (token, observer) = progress.observe();
        Ok((options.progress(token).observer(observer), Some(progress.guard())))
    }
}

/// `fut` as an asyncio awaitable resolving to its value as JSON text (see `crate::complete`).
#[cfg(unix)]
fn run<'py, T, F>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    T: Serialize + Send + 'static,
    F: Future<Output = Result<T, ClientError>> + Send + 'static,
{
    crate::complete::spawn(py, fut)
}

/// `fut` as an asyncio awaitable resolving to its value as JSON text, through
/// `pyo3-async-runtimes` (where `crate::complete`, which needs a Unix socket pair, is not built).
#[cfg(not(unix))]
fn run<'py, T, F>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    T: Serialize + Send + 'static,
    F: Future<Output = Result<T, ClientError>> + Send + 'static,
{
    let in_flight = crate::InFlight::start();
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        let value = fut.await.map_err(errors::to_py);
        drop(in_flight);
        serde_json::to_string(&value?).map_err(|e| errors::usage(format!("encoding the result: {e}")))
    })
}

/// JSON text from Python as `T`.
fn parse<T: DeserializeOwned>(what: &str, text: &str) -> PyResult<T> {
    serde_json::from_str(text).map_err(|e| errors::usage(format!("{what}: {e}")))
}

#[pymethods]
impl NativeClient {
    /// What the client learned of the server, as JSON: `protocolVersion`, `serverInfo`,
    /// `capabilities`, `instructions`, `supportedVersions`.
    fn server_json(&self) -> PyResult<String> {
        let server = self.client.server();
        let description = json!({
            "protocolVersion": server.protocol_version,
            "serverInfo": server.info,
            "capabilities": server.capabilities,
            "instructions": server.instructions,
            "supportedVersions": server.supported_versions,
        });
        Ok(description.to_string())
    }

    /// Whether the connection is stateless (2026-07-28).
    fn is_stateless(&self) -> bool {
        self.client.era() == portico_core::server::Era::Stateless
    }

    /// Whether the connection is closed.
    fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// A new `NativeProgress` for a call that asks for progress with `token` (give it to the
    /// call as its `progress`).
    fn progress(&self, token: String) -> PyResult<NativeProgress> {
        NativeProgress::new(token, self.ledger.clone(), self.progress_capacity)
    }

    #[pyo3(signature = (name, arguments_json, timeout=None, progress=None, meta_json=None))]
    fn call_tool<'py>(
        &self,
        py: Python<'py>,
        name: String,
        arguments_json: &str,
        timeout: Option<f64>,
        progress: Option<PyRef<'py, NativeProgress>>,
        meta_json: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let arguments: Value = parse("tool arguments", arguments_json)?;
        let (options, guard) = self.options(timeout, progress, meta_json)?;
        let client = self.client.clone();
        run(py, async move {
            let _guard = guard;
            client.call_tool_with(&name, arguments, &options).await
        })
    }

    #[pyo3(signature = (cursor=None))]
    fn list_tools<'py>(&self, py: Python<'py>, cursor: Option<String>) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        run(py, async move { client.list_tools(cursor.as_deref()).await })
    }

    #[pyo3(signature = (cursor=None))]
    fn list_resources<'py>(&self, py: Python<'py>, cursor: Option<String>) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        run(py, async move { client.list_resources(cursor.as_deref()).await })
    }

    #[pyo3(signature = (cursor=None))]
    fn list_resource_templates<'py>(&self, py: Python<'py>, cursor: Option<String>) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        run(
            py,
            async move { client.list_resource_templates(cursor.as_deref()).await },
        )
    }

    #[pyo3(signature = (cursor=None))]
    fn list_prompts<'py>(&self, py: Python<'py>, cursor: Option<String>) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        run(py, async move { client.list_prompts(cursor.as_deref()).await })
    }

    #[pyo3(signature = (uri, timeout=None, progress=None, meta_json=None))]
    fn read_resource<'py>(
        &self,
        py: Python<'py>,
        uri: String,
        timeout: Option<f64>,
        progress: Option<PyRef<'py, NativeProgress>>,
        meta_json: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (options, guard) = self.options(timeout, progress, meta_json)?;
        let client = self.client.clone();
        run(py, async move {
            let _guard = guard;
            client.read_resource_with(&uri, &options).await
        })
    }

    #[pyo3(signature = (name, arguments_json, timeout=None, progress=None, meta_json=None))]
    fn get_prompt<'py>(
        &self,
        py: Python<'py>,
        name: String,
        arguments_json: &str,
        timeout: Option<f64>,
        progress: Option<PyRef<'py, NativeProgress>>,
        meta_json: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let arguments: BTreeMap<String, String> = parse("prompt arguments (strings)", arguments_json)?;
        let (options, guard) = self.options(timeout, progress, meta_json)?;
        let client = self.client.clone();
        run(py, async move {
            let _guard = guard;
            client.get_prompt_with(&name, arguments, &options).await
        })
    }

    #[pyo3(signature = (ref_json, argument_json, context_json=None))]
    fn complete<'py>(
        &self,
        py: Python<'py>,
        ref_json: &str,
        argument_json: &str,
        context_json: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let reference: wire::CompleteRequestParamsRef = parse("completion ref", ref_json)?;
        let argument: wire::CompleteRequestParamsArgument = parse("completion argument", argument_json)?;
        let context: Option<wire::CompleteRequestParamsContext> =
            context_json.map(|c| parse("completion context", c)).transpose()?;
        let client = self.client.clone();
        run(py, async move { client.complete(reference, argument, context).await })
    }

    fn subscribe<'py>(&self, py: Python<'py>, uri: String) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        run(py, async move { client.subscribe(&uri).await })
    }

    fn unsubscribe<'py>(&self, py: Python<'py>, uri: String) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        run(py, async move { client.unsubscribe(&uri).await })
    }

    fn set_level<'py>(&self, py: Python<'py>, level: String) -> PyResult<Bound<'py, PyAny>> {
        let level: wire::LoggingLevel = parse("logging level", &Value::String(level).to_string())?;
        let client = self.client.clone();
        run(py, async move { client.set_level(level).await })
    }

    fn ping<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        run(py, async move { client.ping().await })
    }

    /// Any request; the result as the server sent it.
    #[pyo3(signature = (method, params_json, timeout=None, progress=None))]
    fn request<'py>(
        &self,
        py: Python<'py>,
        method: String,
        params_json: &str,
        timeout: Option<f64>,
        progress: Option<PyRef<'py, NativeProgress>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let params: Value = parse("params", params_json)?;
        let (options, guard) = self.options(timeout, progress, None)?;
        let client = self.client.clone();
        run(py, async move {
            let _guard = guard;
            client.request::<Value>(&method, params, &options).await
        })
    }

    /// A new receiver of the server's notifications (those sent from now on); it marks the
    /// progress reports that came after their followed call's result.
    fn notifications(&self) -> NativeNotifications {
        NativeNotifications::new(self.client.notifications(), self.ledger.clone())
    }

    /// `subscriptions/listen` (2026-07-28) or `resources/subscribe` (sessions) for the
    /// `SubscriptionFilter` given as JSON; resolves to a `NativeSubscription`.
    fn listen<'py>(&self, py: Python<'py>, filter_json: &str) -> PyResult<Bound<'py, PyAny>> {
        let filter: wire::SubscriptionFilter = parse("subscription filter", filter_json)?;
        let client = self.client.clone();
        let in_flight = crate::InFlight::start();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let _in_flight = in_flight;
            let subscription = client.listen(filter).await.map_err(errors::to_py)?;
            Ok(NativeSubscription::new(subscription))
        })
    }

    /// Closes the connection; calls in flight fail with `ConnectionClosed`.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        run(py, async move { client.close().await })
    }
}
