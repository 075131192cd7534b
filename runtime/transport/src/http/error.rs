//! HTTP error answers: a status with a JSON-RPC error object as the body, so a client always has
//! something to read (invariant: every byte from outside gets a typed error).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portico_core::error::{INTERNAL_ERROR, INVALID_REQUEST};
use portico_core::{ErrorObject, RequestId};
use serde::Serialize;

/// An HTTP error answer. Its body is a JSON-RPC error response, carrying the request's `id` when
/// one was read and no `id` otherwise (the 2025-11-25 and 2026-07-28 schemas allow no `null` id).
#[derive(Debug, Clone)]
pub(crate) struct HttpError {
    pub(crate) status: StatusCode,
    pub(crate) id: Option<RequestId>,
    pub(crate) error: ErrorObject,
    /// The `Allow` header of a `405`.
    pub(crate) allow: Option<&'static str>,
}

impl HttpError {
    pub(crate) fn new(status: StatusCode, error: ErrorObject) -> Self {
        Self {
            status,
            id: None,
            error,
            allow: None,
        }
    }

    /// A client error that is no particular JSON-RPC error: `-32600` with `message`.
    pub(crate) fn client(status: StatusCode, message: impl Into<String>) -> Self {
        Self::new(status, ErrorObject::new(INVALID_REQUEST, message))
    }

    /// `500`, for what should not happen.
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorObject::new(INTERNAL_ERROR, message),
        )
    }

    /// `503`: the server is shutting down or full.
    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorObject::new(INTERNAL_ERROR, message),
        )
    }

    /// `405` with the methods that are allowed.
    pub(crate) fn method_not_allowed(allow: &'static str, message: impl Into<String>) -> Self {
        Self {
            allow: Some(allow),
            ..Self::client(StatusCode::METHOD_NOT_ALLOWED, message)
        }
    }

    /// The same error, about the request with this id.
    pub(crate) fn with_id(mut self, id: Option<RequestId>) -> Self {
        self.id = id;
        self
    }
}

/// The answer of a reply whose messages end before its response (see `reply::gone`), made
/// only then: every POST has one, and few use it.
#[derive(Debug)]
pub(crate) struct Gone {
    status: StatusCode,
    message: &'static str,
    id: Option<RequestId>,
}

impl Gone {
    /// `500`: a stateless request's handling ended without an answer.
    pub(crate) fn internal(message: &'static str, id: Option<RequestId>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message,
            id,
        }
    }

    /// `404` with `-32600`: the session ended first.
    pub(crate) fn session_ended(message: &'static str, id: Option<RequestId>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message,
            id,
        }
    }

    /// The error answer.
    pub(crate) fn error(&self) -> HttpError {
        let code = if self.status.is_server_error() {
            INTERNAL_ERROR
        } else {
            INVALID_REQUEST
        };
        HttpError::new(self.status, ErrorObject::new(code, self.message)).with_id(self.id.clone())
    }
}

/// A JSON-RPC error response, without an `id` member when there is none.
pub(crate) fn error_body(id: Option<&RequestId>, error: &ErrorObject) -> String {
    #[derive(Serialize)]
    struct Body<'a> {
        jsonrpc: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a RequestId>,
        error: &'a ErrorObject,
    }
    // Plain strings, numbers and a JSON value: this cannot fail.
    serde_json::to_string(&Body {
        jsonrpc: "2.0",
        id,
        error,
    })
    .unwrap_or_default()
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = error_body(self.id.as_ref(), &self.error);
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            body,
        )
            .into_response();
        if let Some(allow) = self.allow {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        response
    }
}
