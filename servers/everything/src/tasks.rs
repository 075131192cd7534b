//! The tasks extension fixtures (`io.modelcontextprotocol/tasks`, SEP-2663): the tools the
//! suite's `tasks-*` scenarios call, each declaring how it may run as a task
//! ([`TaskSupport`]); the framework makes the tasks (see `portico_core::server::tasks`).
//!
//! For a 2026-07-28 client that declares the extension on the request, a task-supporting tool
//! answers with a task handle at once and runs on; `tasks/get` reports it. Without the
//! declaration, `Optional` tools run as ordinary calls and `Required` ones are refused (`-32021`).
//! A 2025-11-25 session gets the same tools as that revision's tasks (`execution.taskSupport`,
//! the `task` param, `tasks/result`; see `portico_core::server::tasks::session`).

use std::time::Duration;

use portico_core::server::tasks::{TaskStart, TaskSupport};
use portico_core::server::{Context, ServerBuilder, tool};
use portico_protocol::v2026_07_28 as wire;
use serde_json::json;

use crate::NoArguments;
use crate::client::{content_json, content_str, form, input_error};

/// The longest `slow_compute` sleeps, so a forgotten task cannot hold a handler for long.
const MAX_SECONDS: u64 = 300;

/// The arguments of `greet`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Greet {
    /// Who to greet.
    name: String,
}

/// The arguments of `slow_compute`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
struct SlowCompute {
    /// How long the computation takes, in seconds (at most 300).
    seconds: u64,
    /// A label echoed in the result.
    #[serde(default)]
    label: Option<String>,
}

/// The arguments of `confirm_delete`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
struct ConfirmDelete {
    /// The file to delete.
    filename: String,
}

/// A yes/no question about `what`.
fn confirmation(what: &str) -> wire::ElicitRequestParams {
    form(
        what,
        json!({"type": "object", "properties": {"confirm": {"type": "boolean"}}, "required": ["confirm"]}),
    )
}

/// Whether an elicitation answer accepted with `confirm: true`.
fn confirmed(answer: &wire::ElicitResult) -> bool {
    answer.action == wire::ElicitResultAction::Accept && content_json(answer)["confirm"] == true
}

/// Asks the user's name under the suite's key `user_name`.
async fn ask_name(cx: &Context) -> Result<String, String> {
    let question = form(
        "What is your name?",
        json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}),
    );
    let answer = cx
        .request_input("user_name", wire::ElicitRequest::new(question).into())
        .await
        .map_err(input_error)?;
    let answer: wire::ElicitResult = serde_json::from_value(answer).map_err(|e| e.to_string())?;
    Ok(content_str(&answer, "name").unwrap_or_else(|| format!("(no name: {})", answer.action)))
}

/// Registers the tasks fixtures.
pub(crate) fn register(builder: ServerBuilder) -> ServerBuilder {
    builder
        .tool(tool(
            "greet",
            "Greets by name, synchronously (never a task)",
            |_cx, args: Greet| async move { format!("Hello, {}!", args.name) },
        ))
        .tool(
            tool(
                "slow_compute",
                "Computes for `seconds` seconds, then reports; runs as a task for clients of the tasks extension",
                |_cx, args: SlowCompute| async move {
                    let seconds = args.seconds.min(MAX_SECONDS);
                    tokio::time::sleep(Duration::from_secs(seconds)).await;
                    let label = args.label.unwrap_or_else(|| "computation".into());
                    format!("Computed {label} in {seconds} s")
                },
            )
            .with_task_support(TaskSupport::Optional),
        )
        .tool(
            tool(
                "failing_job",
                "Works for a moment, then fails with a tool error (isError); only runs as a task",
                |_cx, _args: NoArguments| async move {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    Err::<String, _>("failing_job failed, as it always does")
                },
            )
            .with_task_support(TaskSupport::Required),
        )
        .tool(
            tool(
                "protocol_error_job",
                "Fails with a protocol error (its handler panics: -32603); as a task, the task fails",
                |_cx, _args: NoArguments| async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if std::hint::black_box(true) {
                        panic!("protocol_error_job: an internal failure, on purpose");
                    }
                    String::new()
                },
            )
            .with_task_support(TaskSupport::Optional),
        )
        .tool(
            tool(
                "confirm_delete",
                "Asks the user to confirm deleting `filename` (elicitation), then reports",
                |cx, args: ConfirmDelete| async move {
                    let question = confirmation(&format!("Delete {}?", args.filename));
                    let answer = cx.elicit(question).await.map_err(input_error)?;
                    Ok::<_, String>(if confirmed(&answer) {
                        format!("Deleted {}", args.filename)
                    } else {
                        format!("Kept {}", args.filename)
                    })
                },
            )
            .with_task_support(TaskSupport::Optional),
        )
        .tool(
            tool(
                "multi_input",
                "Asks two questions at once (a name and a confirmation), then reports both answers",
                |cx, _args: NoArguments| async move {
                    let name = form(
                        "Which project?",
                        json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}),
                    );
                    let (name, go) = tokio::join!(cx.elicit(name), cx.elicit(confirmation("Proceed?")));
                    let (name, go) = (name.map_err(input_error)?, go.map_err(input_error)?);
                    let name = content_str(&name, "name").unwrap_or_else(|| format!("(no name: {})", name.action));
                    Ok::<_, String>(format!("project={name}; proceed={}", confirmed(&go)))
                },
            )
            .with_task_support(TaskSupport::Optional),
        )
        .tool(
            tool(
                "test_tool_with_task",
                "Asks the user's name (input_required rounds), then runs as a task that greets them",
                |cx, _args: NoArguments| async move {
                    let name = ask_name(&cx).await?;
                    if !cx.start_task().await {
                        return Err("the call could not become a task".to_string());
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Ok(format!(
                        "Hello, {name}! (finished in task {})",
                        cx.task_id().unwrap_or("?")
                    ))
                },
            )
            .with_task_support(TaskSupport::Required)
            .with_task_start(TaskStart::Handler),
        )
}
