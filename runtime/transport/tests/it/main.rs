//! Integration tests of the stdio transport: the server end over in-memory pipes, and the
//! client end against a real child process (the crate's `portico-stdio-fixture` binary).

mod carry;
mod child;
mod client_tasks;
mod front;
mod http;
mod http_client;
mod legacy_sse;
mod legacy_sse_client;
mod oauth;
mod serve;
mod serve_endpoint;
mod tls;
mod ws;
mod ws_client;

use std::future::Future;
use std::time::Duration;

use portico_core::{ErrorObject, JsonText, RequestContext, Service};
use serde_json::value::RawValue;

/// How long any single wait may take before the test fails: generous, so only a bug (a hang)
/// reaches it.
const PATIENCE: Duration = Duration::from_secs(30);

/// Awaits `future`, failing the test (instead of hanging) if it takes longer than [`PATIENCE`].
pub async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no outcome within {PATIENCE:?}"))
}

/// An HTTP client for the tests, built after the process's rustls provider is installed
/// (reqwest needs one; which test runs first must not matter).
pub fn http_client() -> reqwest::Client {
    portico_transport::http::tls::install_provider();
    reqwest::Client::new()
}

/// The service the in-memory tests serve.
pub struct TestService;

fn raw(text: &str) -> Box<RawValue> {
    RawValue::from_string(text.to_string()).expect("valid JSON")
}

impl Service for TestService {
    async fn request(
        &self,
        cx: RequestContext,
        method: String,
        params: Option<Box<RawValue>>,
    ) -> Result<JsonText, ErrorObject> {
        let answer: Result<Box<RawValue>, ErrorObject> = {
            match method.as_str() {
                "echo" => Ok(params.unwrap_or_else(|| raw("null"))),
                // Never answers: it ends only by cancellation.
                "nap" => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Ok(raw("\"rested\""))
                }
                "hang" => {
                    cx.cancelled().await;
                    Err(ErrorObject::internal("cancelled"))
                }
                // A result whose raw JSON spans several lines.
                "pretty" => Ok(raw("{\n  \"a\": 1,\r\n  \"b\": [\n    \"x\\ny\"\n  ]\n}")),
                other => Err(ErrorObject::method_not_found(other)),
            }
        };
        answer.map(JsonText::from)
    }
}
