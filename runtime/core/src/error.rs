//! JSON-RPC error objects (what goes on the wire) and the errors of the engine (what a caller of
//! [`crate::PeerHandle::request`] gets).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// JSON-RPC 2.0: the frame is not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC 2.0: the JSON is not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC 2.0: no such method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// JSON-RPC 2.0: the parameters are invalid.
pub const INVALID_PARAMS: i64 = -32602;
/// JSON-RPC 2.0: the server failed while handling the request.
pub const INTERNAL_ERROR: i64 = -32603;

/// A JSON-RPC error object: `{"code": …, "message": …, "data": …}`.
///
/// This is a *protocol* error: the request could not be served. A tool that ran and failed is
/// not a protocol error; it returns a result with `isError: true`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("JSON-RPC error {code}: {message}")]
pub struct ErrorObject {
    /// The error code.
    pub code: i64,
    /// A short description.
    pub message: String,
    /// Anything more the sender wants to say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl ErrorObject {
    /// An error with `code` and `message` and no data.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Adds `data`.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// `-32700`: the frame is not JSON.
    pub fn parse_error(detail: impl std::fmt::Display) -> Self {
        Self::new(PARSE_ERROR, format!("parse error: {detail}"))
    }

    /// `-32600`: not a valid request.
    pub fn invalid_request(detail: impl std::fmt::Display) -> Self {
        Self::new(INVALID_REQUEST, format!("invalid request: {detail}"))
    }

    /// `-32601` for `method`.
    pub fn method_not_found(method: &str) -> Self {
        Self::new(METHOD_NOT_FOUND, format!("method not found: {method}"))
    }

    /// `-32602`: bad parameters (say which member is wrong).
    pub fn invalid_params(detail: impl std::fmt::Display) -> Self {
        Self::new(INVALID_PARAMS, format!("invalid params: {detail}"))
    }

    /// `-32603`: the handler failed.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::new(INTERNAL_ERROR, format!("internal error: {detail}"))
    }
}

/// Why an outgoing request or notification did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The other side answered with an error.
    #[error(transparent)]
    Remote(#[from] ErrorObject),
    /// No answer came within the timeout; the request was cancelled on the other side.
    #[error("`{method}` timed out after {after:?}")]
    Timeout {
        /// The request's method.
        method: String,
        /// The timeout that ran out.
        after: std::time::Duration,
    },
    /// The caller cancelled the request.
    #[error("`{0}` was cancelled")]
    Cancelled(String),
    /// The connection closed before an answer came.
    #[error("the connection is closed")]
    Closed,
    /// The parameters could not be encoded.
    #[error("encoding `{method}` params: {source}")]
    Encode {
        /// The request's method.
        method: String,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// The result could not be decoded as the expected type.
    #[error("decoding the result of `{method}`: {source}")]
    Decode {
        /// The request's method.
        method: String,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
}
