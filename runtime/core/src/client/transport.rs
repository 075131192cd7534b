//! What a [`super::Client`] needs of a transport: the handle of its connected peer, and a way to
//! close it. Every client transport (stdio, Streamable HTTP, WebSocket, legacy HTTP+SSE, the
//! in-process [`super::memory`] pair) implements [`ClientTransport`], so one client core runs on
//! all of them.
//!
//! A transport that cannot deliver a request's answer (an HTTP status without a JSON-RPC body, a
//! stream that ended early, an expired session) answers the request itself with a JSON-RPC error
//! made by [`transport_error`]: the error's `data` carries [`TRANSPORT_ERROR_KEY`], and the client
//! turns it into [`super::ClientError::Transport`] or [`super::ClientError::SessionExpired`]
//! instead of a server's error.

use std::future::Future;
use std::io;
use std::pin::Pin;

use serde_json::{Value, json};

use crate::error::{ErrorObject, INTERNAL_ERROR};
use crate::peer::PeerHandle;

/// The `data` member of a JSON-RPC error a transport made up itself (the server sent no such
/// error): `{"io.portico/transport": {"status": <HTTP status or null>, "sessionExpired": bool}}`.
pub const TRANSPORT_ERROR_KEY: &str = "io.portico/transport";

/// A client's connection: the handle its requests go through, and how it ends.
///
/// Implemented for `portico_transport::StdioClient`, `portico_transport::http::client::HttpClient`
/// and [`super::memory::MemoryTransport`]; a transport of one's own implements it the same way
/// (a connect function generic over the peer's `S: Service`, returning a struct that holds the
/// [`crate::Peer`]).
pub trait ClientTransport: Send + 'static {
    /// The handle of the peer talking to the server.
    fn handle(&self) -> PeerHandle;

    /// Whether requests carry `Mcp-Param-*` headers mirrored from tool arguments (Streamable
    /// HTTP). Such a client must drop tools whose `x-mcp-header` annotations are invalid from
    /// `tools/list` (2026-07-28); other transports may ignore the annotations. Default: `false`.
    fn mirrors_params(&self) -> bool {
        false
    }

    /// Closes the connection gracefully (ends the session, stops the child process, …); waiting
    /// requests fail with [`super::ClientError::Closed`].
    fn close(self: Box<Self>) -> Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;
}

/// A JSON-RPC error a transport answers a request with when the server gave none it could
/// deliver: `message` says what happened, `status` is the HTTP status (if any), and
/// `session_expired` marks a session the server no longer knows (HTTP `404` on a session).
pub fn transport_error(message: impl Into<String>, status: Option<u16>, session_expired: bool) -> ErrorObject {
    ErrorObject::new(INTERNAL_ERROR, message).with_data(json!({
        TRANSPORT_ERROR_KEY: {"status": status, "sessionExpired": session_expired}
    }))
}

/// A JSON-RPC error a transport (or the peer) answers a request with when what came as its
/// answer — or, on a connection whose one stream carries every message, what came while it
/// waited — cannot be read as a JSON-RPC message. `detail` says what is wrong with it
/// ([`crate::message::Invalid::describe`]: `invalid JSON: …`); the client turns the error into
/// [`super::ClientError::Unreadable`], and the peer tells the server the request is cancelled.
pub fn unreadable_error(detail: impl Into<String>) -> ErrorObject {
    ErrorObject::new(crate::error::PARSE_ERROR, detail).with_data(json!({
        TRANSPORT_ERROR_KEY: {"status": null, "sessionExpired": false, "unreadable": true}
    }))
}

/// Whether [`unreadable_error`] made `error`.
pub(crate) fn is_unreadable(error: &ErrorObject) -> bool {
    error
        .data
        .as_ref()
        .and_then(|data| data.get(TRANSPORT_ERROR_KEY))
        .and_then(|details| details.get("unreadable"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// What [`transport_error`] put in an error, if it made it: (HTTP status, session expired).
pub(crate) fn transport_details(error: &ErrorObject) -> Option<(Option<u16>, bool)> {
    let details = error.data.as_ref()?.get(TRANSPORT_ERROR_KEY)?;
    let status = details
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok());
    let expired = details.get("sessionExpired").and_then(Value::as_bool).unwrap_or(false);
    Some((status, expired))
}
