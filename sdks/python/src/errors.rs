//! Every way a call fails, as an exception of `portico.errors`: the one place where
//! [`ClientError`] becomes Python.

use portico_core::ErrorObject;
use portico_core::client::ClientError;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// `error` as an instance of the `portico.errors` class that stands for it.
pub(crate) fn to_py(error: ClientError) -> PyErr {
    Python::attach(|py| build(py, &error).unwrap_or_else(|e| e))
}

/// `error` met while connecting: a transport failure or a closed connection before the
/// client was up is a `ConnectError` (the HTTP transports connect with their first request).
pub(crate) fn connecting(error: ClientError) -> PyErr {
    match &error {
        ClientError::Transport { status, .. } => {
            let status = *status;
            let message = format!("connecting: {error}");
            Python::attach(|py| {
                let status = status.into_pyobject(py)?.into_any().unbind();
                raise(py, "ConnectError", &message, &[("status", status)])
            })
            .unwrap_or_else(|e| e)
        }
        ClientError::Closed => usage_class("ConnectError", format!("connecting: {error}")),
        _ => to_py(error),
    }
}

fn usage_class(class: &str, message: String) -> PyErr {
    Python::attach(|py| raise(py, class, &message, &[]).unwrap_or_else(|e| e))
}

/// A failure of this module itself (bad options, JSON the Python side sent), as
/// `portico.errors.PorticoError`.
pub(crate) fn usage(message: impl Into<String>) -> PyErr {
    usage_class("PorticoError", message.into())
}

fn build(py: Python<'_>, error: &ClientError) -> PyResult<PyErr> {
    let message = error.to_string();
    let (class, fields): (&str, Vec<(&str, Py<PyAny>)>) = match error {
        ClientError::Connect(_) => ("ConnectError", vec![]),
        ClientError::Closed => ("ConnectionClosed", vec![]),
        ClientError::Timeout { method, after } => (
            "RequestTimeout",
            vec![
                ("method", method.into_pyobject(py)?.into_any().unbind()),
                ("after", after.as_secs_f64().into_pyobject(py)?.into_any().unbind()),
            ],
        ),
        ClientError::Rpc { method, error } => ("McpError", rpc_fields(py, method, error)?),
        ClientError::Input { method, key, error } => {
            let mut fields = rpc_fields(py, method, error)?;
            fields.push(("key", key.into_pyobject(py)?.into_any().unbind()));
            ("InputError", fields)
        }
        ClientError::SessionExpired { method } => (
            "SessionExpired",
            vec![("method", method.into_pyobject(py)?.into_any().unbind())],
        ),
        ClientError::Transport { method, status, .. } => (
            "TransportError",
            vec![
                ("method", method.into_pyobject(py)?.into_any().unbind()),
                ("status", status.into_pyobject(py)?.into_any().unbind()),
            ],
        ),
        // A message that is not JSON-RPC at all breaks the protocol too.
        ClientError::Protocol { method, .. } | ClientError::Unreadable { method, .. } => (
            "ProtocolError",
            vec![("method", method.into_pyobject(py)?.into_any().unbind())],
        ),
        ClientError::UnsupportedVersion { requested, supported } => (
            "UnsupportedVersion",
            vec![
                ("requested", requested.into_pyobject(py)?.into_any().unbind()),
                ("supported", supported.clone().into_pyobject(py)?.into_any().unbind()),
            ],
        ),
        ClientError::Unsupported { method, revision } => (
            "UnsupportedMethod",
            vec![
                ("method", method.into_pyobject(py)?.into_any().unbind()),
                ("revision", revision.into_pyobject(py)?.into_any().unbind()),
            ],
        ),
        ClientError::OutputSchema { tool, result, .. } => (
            "OutputSchemaError",
            vec![
                ("tool", tool.into_pyobject(py)?.into_any().unbind()),
                (
                    "result_json",
                    json_text(result.as_ref()).into_pyobject(py)?.into_any().unbind(),
                ),
            ],
        ),
        ClientError::Encode { method, .. } => (
            "EncodeError",
            vec![("method", method.into_pyobject(py)?.into_any().unbind())],
        ),
        _ => ("PorticoError", vec![]),
    };
    raise(py, class, &message, &fields)
}

fn rpc_fields(py: Python<'_>, method: &str, error: &ErrorObject) -> PyResult<Vec<(&'static str, Py<PyAny>)>> {
    Ok(vec![
        ("method", method.into_pyobject(py)?.into_any().unbind()),
        ("code", error.code.into_pyobject(py)?.into_any().unbind()),
        (
            "rpc_message",
            error.message.clone().into_pyobject(py)?.into_any().unbind(),
        ),
        (
            "data_json",
            error
                .data
                .as_ref()
                .map(json_text)
                .into_pyobject(py)?
                .into_any()
                .unbind(),
        ),
    ])
}

fn json_text(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

/// `portico.errors.<class>(message, **fields)` as a `PyErr`; a `RuntimeError` if the package
/// cannot be imported (the native module used on its own).
fn raise(py: Python<'_>, class: &str, message: &str, fields: &[(&str, Py<PyAny>)]) -> PyResult<PyErr> {
    let module = match py.import("portico.errors") {
        Ok(module) => module,
        Err(_) => return Ok(PyRuntimeError::new_err(message.to_owned())),
    };
    let kwargs = PyDict::new(py);
    for (key, value) in fields {
        kwargs.set_item(key, value.bind(py))?;
    }
    let instance = module.getattr(class)?.call((message,), Some(&kwargs))?;
    Ok(PyErr::from_value(instance))
}
