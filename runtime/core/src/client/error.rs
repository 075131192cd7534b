//! [`ClientError`]: every way a client call can fail, one enum.

use std::time::Duration;

use portico_protocol::v2026_07_28 as wire;

use super::transport::{is_unreadable, transport_details};
use crate::error::{ErrorObject, PeerError};

/// Why a client call did not give its result.
///
/// Protocol errors the server answered (`Rpc`) keep their JSON-RPC code; a tool that ran and
/// failed is not an error here but a [`wire::CallToolResult`] with `is_error: Some(true)`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The transport could not be set up.
    #[error("connecting: {0}")]
    Connect(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The connection is closed (the server went away, or the client was closed).
    #[error("the connection is closed")]
    Closed,
    /// No answer within the request's timeout; the request was cancelled on the server.
    #[error("`{method}` timed out after {after:?}")]
    Timeout {
        /// The request's method.
        method: String,
        /// The timeout that ran out.
        after: Duration,
    },
    /// The server answered with a JSON-RPC error.
    #[error("`{method}` failed: {error}")]
    Rpc {
        /// The request's method.
        method: String,
        /// The error, with its code.
        #[source]
        error: ErrorObject,
    },
    /// The server no longer knows the session (Streamable HTTP `404` on a session), and the
    /// client did not start a new one: [`super::ClientConfig::renew_sessions`] is off, or the
    /// new session was forgotten as well.
    #[error("`{method}`: the session expired (the server answered 404 for it)")]
    SessionExpired {
        /// The request's method.
        method: String,
    },
    /// The transport failed to carry the request or its answer (an HTTP status without a
    /// JSON-RPC error, a stream that ended before the response, a refused connection).
    #[error("`{method}`: transport error{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Transport {
        /// The request's method.
        method: String,
        /// The HTTP status, if there was one.
        status: Option<u16>,
        /// What happened.
        message: String,
    },
    /// What the server sent as the request's answer is not a JSON-RPC message (invalid JSON, or
    /// JSON that is no message), or — on a transport whose one stream carries every message
    /// (stdio, WebSocket, the legacy SSE stream), where such a frame cannot be tied to one
    /// request — something unreadable came while the request waited. The request fails at once
    /// (and is cancelled on the server) instead of waiting for its timeout.
    #[error("`{method}`: the server sent an unreadable message: {message}")]
    Unreadable {
        /// The request's method.
        method: String,
        /// What was wrong with the message (`invalid JSON: …`).
        message: String,
    },
    /// The server broke the protocol: a result that does not decode as the method's result, an
    /// unexpected `resultType`, too many `input_required` rounds, too many pages.
    #[error("`{method}`: protocol violation: {message}")]
    Protocol {
        /// The request's method.
        method: String,
        /// What is wrong.
        message: String,
    },
    /// The server speaks no protocol revision this client does.
    #[error("the server does not support protocol revision {requested}; it supports {supported:?}")]
    UnsupportedVersion {
        /// What the client asked for.
        requested: String,
        /// What the server offered.
        supported: Vec<String>,
    },
    /// The method does not exist in the revision the connection negotiated (`ping` and
    /// `resources/subscribe` in 2026-07-28, `subscriptions/listen` before it).
    #[error("`{method}` is not part of protocol revision {revision}")]
    Unsupported {
        /// The method.
        method: String,
        /// The negotiated revision.
        revision: String,
    },
    /// The client's handler could not answer a server's input request (an `input_required`
    /// round of 2026-07-28).
    #[error("answering the server's `{method}` (input {key:?}): {error}")]
    Input {
        /// The input request's method (`elicitation/create`, …).
        method: String,
        /// Its key in `inputRequests`.
        key: String,
        /// What the handler said.
        #[source]
        error: ErrorObject,
    },
    /// A tool's `structuredContent` does not match its `outputSchema`; the result is kept.
    #[error("the structuredContent of tool `{tool}` does not match its outputSchema: {message}")]
    OutputSchema {
        /// The tool.
        tool: String,
        /// What does not match.
        message: String,
        /// The result as the server sent it.
        result: Box<wire::CallToolResult>,
    },
    /// The request's params could not be encoded.
    #[error("encoding the params of `{method}`: {source}")]
    Encode {
        /// The request's method.
        method: String,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
}

impl ClientError {
    /// The JSON-RPC error code, when the server answered with an error.
    pub fn code(&self) -> Option<i64> {
        match self {
            Self::Rpc { error, .. } => Some(error.code),
            _ => None,
        }
    }

    /// A protocol violation in the answer to `method`.
    pub(crate) fn protocol(method: &str, message: impl Into<String>) -> Self {
        Self::Protocol {
            method: method.into(),
            message: message.into(),
        }
    }

    /// The error of a request to `method` that failed in the peer.
    pub(crate) fn from_peer(method: &str, error: PeerError) -> Self {
        match error {
            PeerError::Remote(error) if is_unreadable(&error) => Self::Unreadable {
                method: method.into(),
                message: error.message,
            },
            PeerError::Remote(error) => match transport_details(&error) {
                Some((_, true)) => Self::SessionExpired { method: method.into() },
                Some((status, false)) => Self::Transport {
                    method: method.into(),
                    status,
                    message: error.message,
                },
                None => Self::Rpc {
                    method: method.into(),
                    error,
                },
            },
            PeerError::Timeout { method, after } => Self::Timeout { method, after },
            // The peer cancels only what its caller dropped; a caller that sees it was closed.
            PeerError::Cancelled(_) | PeerError::Closed => Self::Closed,
            PeerError::Encode { method, source } => Self::Encode { method, source },
            PeerError::Decode { method, source } => Self::Protocol {
                method,
                message: source.to_string(),
            },
        }
    }
}
