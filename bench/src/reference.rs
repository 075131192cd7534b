//! The reference server: a bare hyper 1 HTTP/1.1 endpoint that does the least an MCP server
//! must — read the body, parse it as a JSON-RPC request with serde (`params` included) — and
//! answers every request with one fixed result carrying the request's id.
//!
//! It is the floor Portico is measured against: the same runtime shape (tokio's multi-thread
//! runtime, pinned to the same core), the same socket options (`TCP_NODELAY`), the same HTTP
//! library underneath (axum serves with hyper), and an answer the same shape as `echo`'s. What
//! it leaves out is everything Portico adds: header and `_meta` validation, sessions, the peer,
//! typed decoding and dispatch, the tool handler.

use std::borrow::Cow;
use std::convert::Infallible;
use std::sync::LazyLock;

use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::net::TcpListener;

use crate::mcp::MESSAGE;

/// A JSON-RPC message as the reference reads it.
#[derive(Deserialize)]
struct JsonRpc<'a> {
    #[serde(borrow)]
    jsonrpc: Cow<'a, str>,
    id: Option<Value>,
    #[expect(dead_code, reason = "parsed as a server must, never read: the answer is fixed")]
    #[serde(borrow)]
    method: Cow<'a, str>,
    #[expect(dead_code, reason = "parsed as a server must, never read: the answer is fixed")]
    params: Option<Value>,
}

#[derive(Serialize)]
struct Answer<'a> {
    jsonrpc: &'static str,
    id: &'a Value,
    result: &'a RawValue,
}

/// The fixed result: what `echo` answers, in the same shape.
static RESULT: LazyLock<Box<RawValue>> = LazyLock::new(|| {
    let result = serde_json::json!({"content": [{"type": "text", "text": MESSAGE}], "isError": false});
    serde_json::value::to_raw_value(&result).unwrap_or_default()
});

/// Serves connections from `listener` until the task is dropped.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let service = hyper::service::service_fn(answer);
            // A connection that fails (the client went away) only ends itself.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() != Method::POST {
        return Ok(reply(StatusCode::METHOD_NOT_ALLOWED, Bytes::new()));
    }
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Ok(reply(StatusCode::BAD_REQUEST, Bytes::new())),
    };
    let message = match serde_json::from_slice::<JsonRpc<'_>>(&body) {
        Ok(message) if message.jsonrpc == "2.0" => message,
        _ => {
            let error = br#"{"jsonrpc":"2.0","error":{"code":-32700,"message":"not a JSON-RPC message"}}"#;
            return Ok(reply(StatusCode::BAD_REQUEST, Bytes::from_static(error)));
        }
    };
    let Some(id) = &message.id else {
        return Ok(reply(StatusCode::ACCEPTED, Bytes::new()));
    };
    let answer = Answer {
        jsonrpc: "2.0",
        id,
        result: &RESULT,
    };
    match serde_json::to_vec(&answer) {
        Ok(bytes) => Ok(reply(StatusCode::OK, bytes.into())),
        Err(_) => Ok(reply(StatusCode::INTERNAL_SERVER_ERROR, Bytes::new())),
    }
}

fn reply(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let json = !body.is_empty();
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    if json {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    response
}
