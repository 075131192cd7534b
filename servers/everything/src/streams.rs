//! Tools about the response stream of a call: one that reports and then asks the user (over
//! Streamable HTTP a 2026-07-28 response stream must carry only notifications and the result —
//! the question comes back as `input_required`, never as a request on the stream), and the
//! SSE reconnection fixture.

use std::time::Duration;

use portico_core::server::{ServerBuilder, tool};
use portico_protocol::v2026_07_28::LoggingLevel;
use serde_json::json;

use crate::NoArguments;
use crate::client::{content_json, form, input_error};
use crate::logging::log;

/// Registers the stream tools.
pub(crate) fn register(builder: ServerBuilder) -> ServerBuilder {
    builder
        .tool(tool(
            "test_streaming_elicitation",
            "Logs and reports progress, then asks the user to confirm (elicitation/create)",
            |cx, _args: NoArguments| async move {
                log(
                    &cx,
                    LoggingLevel::Info,
                    "test_streaming_elicitation: asking for confirmation",
                )
                .await;
                let _ = cx.progress(0.0, Some(1.0), Some("waiting for the user")).await;
                let schema = json!({
                    "type": "object",
                    "properties": {"confirm": {"type": "boolean", "description": "Continue?"}},
                    "required": ["confirm"]
                });
                let answer = cx
                    .elicit(form("Please confirm to continue", schema))
                    .await
                    .map_err(input_error)?;
                let _ = cx.progress(1.0, Some(1.0), Some("answered")).await;
                Ok::<_, String>(format!(
                    "Streaming elicitation completed: action={}, content={}",
                    answer.action,
                    content_json(&answer)
                ))
            },
        ))
        .tool(tool(
            "test_reconnection",
            "Closes the response's SSE stream mid-call, waits briefly, then answers: the client gets \
             the result after reconnecting with Last-Event-ID (SEP-1699)",
            |cx, _args: NoArguments| async move {
                // Ends the response's SSE stream now (where the transport has one); the answer
                // below waits in the stream's log for the client to resume it (Last-Event-ID).
                cx.close_stream().await;
                tokio::time::sleep(Duration::from_millis(100)).await;
                "Reconnection test completed successfully. If you received this, the client properly \
                 reconnected after stream closure."
            },
        ))
}
