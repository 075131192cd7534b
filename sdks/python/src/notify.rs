//! The server's notifications as JSON (`{"method", "params"}`), read one at a time, and
//! `subscriptions/listen` streams. A progress report that came after the result of the
//! followed call it is about (see [`crate::follow`]) also has `"late": true`.

use std::sync::Arc;

use portico_core::client::{Notification, Notifications, SUBSCRIPTION_ID, Subscription};
use pyo3::prelude::*;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::errors;
use crate::follow::Ledger;

/// A receiver of notifications.
#[pyclass(module = "portico._native", frozen)]
pub(crate) struct NativeNotifications {
    receiver: Arc<Mutex<Notifications>>,
    ledger: Arc<Ledger>,
}

impl NativeNotifications {
    pub(crate) fn new(receiver: Notifications, ledger: Arc<Ledger>) -> Self {
        Self {
            receiver: Arc::new(Mutex::new(receiver)),
            ledger,
        }
    }
}

/// `{"_meta": {subscriptionId}}` when the notification came on a listen stream.
fn list_params(subscription: Option<portico_core::RequestId>) -> Value {
    match subscription {
        Some(id) => json!({"_meta": {SUBSCRIPTION_ID: id}}),
        None => json!({}),
    }
}

fn to_json(notification: Notification, ledger: &Ledger) -> Value {
    let (method, params) = match notification {
        Notification::Progress(p) => {
            if ledger.late(&p) {
                return json!({"method": "notifications/progress", "params": p, "late": true});
            }
            ("notifications/progress".to_string(), json!(p))
        }
        Notification::Log(p) => ("notifications/message".to_string(), json!(p)),
        Notification::ToolsListChanged { subscription } => (
            "notifications/tools/list_changed".to_string(),
            list_params(subscription),
        ),
        Notification::PromptsListChanged { subscription } => (
            "notifications/prompts/list_changed".to_string(),
            list_params(subscription),
        ),
        Notification::ResourcesListChanged { subscription } => (
            "notifications/resources/list_changed".to_string(),
            list_params(subscription),
        ),
        Notification::ResourceUpdated { uri, subscription } => {
            let mut params = list_params(subscription);
            params["uri"] = Value::String(uri);
            ("notifications/resources/updated".to_string(), params)
        }
        Notification::Other { method, params } => (method, params.unwrap_or_else(|| json!({}))),
        _ => ("notifications/unknown".to_string(), json!({})),
    };
    json!({"method": method, "params": params})
}

#[pymethods]
impl NativeNotifications {
    /// The next notification as JSON text, or `None` once the connection is closed.
    fn recv<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let receiver = self.receiver.clone();
        let ledger = self.ledger.clone();
        let in_flight = crate::InFlight::start();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let _in_flight = in_flight;
            let next = receiver.lock().await.recv().await;
            Ok(next.map(|n| to_json(n, &ledger).to_string()))
        })
    }

    /// How many notifications this receiver lost by falling behind.
    fn missed(&self) -> u64 {
        self.receiver.try_lock().map_or(0, |r| r.missed())
    }
}

/// One `subscriptions/listen` stream (or a session's resource subscriptions).
#[pyclass(module = "portico._native", frozen)]
pub(crate) struct NativeSubscription {
    granted: String,
    id: Option<String>,
    inner: Arc<Mutex<Option<Subscription>>>,
}

impl NativeSubscription {
    pub(crate) fn new(subscription: Subscription) -> Self {
        Self {
            granted: serde_json::to_string(subscription.granted()).unwrap_or_else(|_| "{}".into()),
            id: subscription.id().map(|id| json!(id).to_string()),
            inner: Arc::new(Mutex::new(Some(subscription))),
        }
    }
}

#[pymethods]
impl NativeSubscription {
    /// What the server agreed to send, as JSON.
    fn granted_json(&self) -> String {
        self.granted.clone()
    }

    /// The listen request's id as JSON (notifications carry it), `None` in a session.
    fn id_json(&self) -> Option<String> {
        self.id.clone()
    }

    /// Ends the subscription.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        let in_flight = crate::InFlight::start();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let _in_flight = in_flight;
            if let Some(subscription) = inner.lock().await.take() {
                subscription.close().await.map_err(errors::to_py)?;
            }
            Ok(())
        })
    }
}
