//! Tools that report while they run: log messages (`notifications/message`) and progress
//! (`notifications/progress`).

use std::time::Duration;

use portico_core::server::{Context, ServerBuilder, tool};
use portico_protocol::v2026_07_28::LoggingLevel;

use crate::NoArguments;

/// The pause between two reports, so a client sees them arrive while the call runs.
const PAUSE: Duration = Duration::from_millis(50);

/// Sends a log message; a client that went away cannot read it anyway.
pub(crate) async fn log(cx: &Context, level: LoggingLevel, message: &str) {
    let _ = cx.log(level, message).await;
}

/// Registers the logging and progress tools.
pub(crate) fn register(builder: ServerBuilder) -> ServerBuilder {
    builder
        .tool(tool(
            "test_tool_with_logging",
            "Logs three info messages, 50 ms apart, while it runs",
            |cx, _args: NoArguments| async move {
                log(&cx, LoggingLevel::Info, "Tool execution started").await;
                tokio::time::sleep(PAUSE).await;
                log(&cx, LoggingLevel::Info, "Tool processing data").await;
                tokio::time::sleep(PAUSE).await;
                log(&cx, LoggingLevel::Info, "Tool execution completed").await;
                "Tool with logging executed successfully"
            },
        ))
        .tool(tool(
            "test_logging_tool",
            "Logs one message at each of debug, info and warning; a 2026-07-28 request gets them \
             only if its _meta names a logLevel",
            |cx, _args: NoArguments| async move {
                log(&cx, LoggingLevel::Debug, "test_logging_tool: debug").await;
                log(&cx, LoggingLevel::Info, "test_logging_tool: info").await;
                log(&cx, LoggingLevel::Warning, "test_logging_tool: warning").await;
                "Logged at debug, info and warning"
            },
        ))
        .tool(tool(
            "test_tool_with_progress",
            "Reports progress 0, 50 and 100 of 100, 50 ms apart, if the request has a progressToken",
            |cx, _args: NoArguments| async move {
                for (i, step) in [0.0, 50.0, 100.0].into_iter().enumerate() {
                    if i > 0 {
                        tokio::time::sleep(PAUSE).await;
                    }
                    let message = format!("Completed step {step} of 100");
                    // Without a progressToken this sends nothing.
                    let _ = cx.progress(step, Some(100.0), Some(&message)).await;
                }
                "Progress reported: 0, 50 and 100 of 100"
            },
        ))
}
