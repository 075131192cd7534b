//! `portico-stdio-fixture`: a small stdio server that this crate's integration tests run as a
//! real child process. It is a test fixture, not a product.
//!
//! Methods: `echo` answers its params; `stderr` writes `{"text": …, "repeat": n}` to stderr
//! (`repeat` times, default once; each line is `text`, followed by ` <i>` when repeated) and
//! answers `null`; `hang` never answers (until cancelled); `garbage` writes a line that is not
//! JSON to stdout instead of answering (and says on stderr when it is cancelled); `exit` exits the process with code 3
//! without answering. With `--linger`, the process stays up for a minute after its stdin closes,
//! so that a client has to kill it.

use std::time::Duration;

use portico_core::{ErrorObject, JsonText, RequestContext, Service};
use portico_transport::StdioConfig;
use portico_transport::stdio::serve_stdio;
use serde_json::value::RawValue;

/// The fixture's service.
struct Fixture;

impl Service for Fixture {
    async fn request(
        &self,
        cx: RequestContext,
        method: String,
        params: Option<Box<RawValue>>,
    ) -> Result<JsonText, ErrorObject> {
        let answer: Result<Box<RawValue>, ErrorObject> = {
            let null = || RawValue::from_string("null".into()).map_err(ErrorObject::internal);
            match method.as_str() {
                "echo" => params.map_or_else(null, Ok),
                "stderr" => {
                    let params: serde_json::Value = params
                        .map(|p| serde_json::from_str(p.get()))
                        .transpose()
                        .map_err(ErrorObject::invalid_params)?
                        .unwrap_or_default();
                    let Some(text) = params["text"].as_str() else {
                        return Err(ErrorObject::invalid_params("`text` must be a string"));
                    };
                    match params["repeat"].as_u64() {
                        None => eprintln!("{text}"),
                        Some(n) => (0..n).for_each(|i| eprintln!("{text} {i}")),
                    }
                    null()
                }
                "hang" => {
                    cx.cancelled().await;
                    Err(ErrorObject::internal("cancelled"))
                }
                // What a server that prints to its stdout does: a line that is no message, in
                // place of the answer (which then never comes).
                "garbage" => {
                    // The peer may drop the handler when the request is cancelled: the guard tells.
                    struct Said;
                    impl Drop for Said {
                        fn drop(&mut self) {
                            eprintln!("garbage: cancelled");
                        }
                    }
                    let _said = Said;
                    println!("this is not JSON {{");
                    cx.cancelled().await;
                    Err(ErrorObject::internal("cancelled"))
                }
                "exit" => std::process::exit(3),
                other => Err(ErrorObject::method_not_found(other)),
            }
        };
        answer.map(JsonText::from)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    serve_stdio(Fixture, StdioConfig::default()).await?;
    if std::env::args().any(|arg| arg == "--linger") {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    Ok(())
}
