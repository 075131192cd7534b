//! The Multi Round-Trip Request fixtures (`test_input_required_result_*`, SEP-2322): tools and a
//! prompt that need the client's input before they can answer.
//!
//! Each is written once against [`Context::elicit`], [`Context::sample`] and
//! [`Context::list_roots`]. For a 2026-07-28 client the framework answers the first call with
//! `resultType: "input_required"`, the questions (`inputRequests`, keyed `elicit-0`, `sample-0`,
//! `roots-0`, … in the order the handler asks) and a sealed `requestState`; the client retries
//! with `inputResponses` and the state, and the handler runs again and finds its answers. A
//! state that was altered, or sent with another request, is refused (`-32602`). In a session
//! the same calls are real server→client requests answered within the call.
//!
//! A handler asks every question it can before it stops (it does not return at the first
//! unanswered one), so one round carries them all.

use portico_core::ErrorObject;
use portico_core::server::input::InputError;
use portico_core::server::prompt::user_text;
use portico_core::server::{Context, ServerBuilder, prompt, tool};
use portico_protocol::v2026_07_28 as wire;
use serde_json::json;

use crate::NoArguments;
use crate::client::{content_str, form, input_error, question, sampled_text};

/// The name question of `test_input_required_result_elicitation` and `…_multiple_inputs`.
fn name_question(message: &str) -> wire::ElicitRequestParams {
    form(
        message,
        json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}),
    )
}

/// The yes/no question of `test_input_required_result_request_state` and `…_tampered_state`.
fn confirm_question() -> wire::ElicitRequestParams {
    form(
        "Please confirm",
        json!({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}),
    )
}

/// What an elicitation gave for `member`, or how it ended without one.
fn answered(result: &wire::ElicitResult, member: &str) -> String {
    match (&result.action, content_str(result, member)) {
        (wire::ElicitResultAction::Accept, Some(value)) => value,
        (action, _) => format!("(no {member}: {action})"),
    }
}

/// The roots of a `roots/list` answer, listed.
fn roots_text(roots: &wire::ListRootsResult) -> String {
    let listed: Vec<String> = roots
        .roots
        .iter()
        .map(|r| match &r.name {
            Some(name) => format!("{} ({name})", r.uri),
            None => r.uri.clone(),
        })
        .collect();
    format!("{} root(s): {}", listed.len(), listed.join(", "))
}

/// Whether the client lacks the capability (the question was not asked).
fn undeclared<T>(outcome: &Result<T, InputError>) -> bool {
    matches!(outcome, Err(InputError::Unsupported(_)))
}

/// `-32021` MissingRequiredClientCapabilityError for `capability`.
fn missing_capability(capability: &str) -> ErrorObject {
    ErrorObject::new(
        wire::error_codes::MISSING_REQUIRED_CLIENT_CAPABILITY,
        format!("this request needs the client's {capability} capability"),
    )
    .with_data(json!({"requiredCapabilities": {capability: {}}}))
}

/// Registers the MRTR tools and prompt.
pub(crate) fn register(builder: ServerBuilder) -> ServerBuilder {
    builder
        .tool(tool(
            "test_input_required_result_elicitation",
            "Asks the user's name (elicitation), then greets them",
            |cx, _args: NoArguments| async move {
                // The suite looks for its question under the key `user_name`.
                let request = wire::ElicitRequest::new(name_question("What is your name?")).into();
                let answer = cx.request_input("user_name", request).await.map_err(input_error)?;
                let answer: wire::ElicitResult = serde_json::from_value(answer).map_err(|e| e.to_string())?;
                Ok::<_, String>(format!("Hello, {}!", answered(&answer, "name")))
            },
        ))
        .tool(tool(
            "test_input_required_result_sampling",
            "Asks the client's model for the capital of France (sampling), then returns its answer",
            |cx, _args: NoArguments| async move {
                let answer = cx
                    .sample(question("What is the capital of France?", 100))
                    .await
                    .map_err(input_error)?;
                Ok::<_, String>(format!("Sampling response: {}", sampled_text(&answer)))
            },
        ))
        .tool(tool(
            "test_input_required_result_list_roots",
            "Asks the client for its roots (roots/list), then lists them",
            |cx, _args: NoArguments| async move {
                let roots = cx.list_roots().await.map_err(input_error)?;
                Ok::<_, String>(format!("Received {}", roots_text(&roots)))
            },
        ))
        .tool(tool(
            "test_input_required_result_request_state",
            "Asks for a confirmation; the retry must carry the sealed requestState, which is verified \
             before the tool runs again (the answer says state-ok)",
            |cx, _args: NoArguments| async move {
                let answer = cx.elicit(confirm_question()).await.map_err(input_error)?;
                Ok::<_, String>(format!(
                    "state-ok: requestState verified; confirmed={}",
                    answered(&answer, "ok")
                ))
            },
        ))
        .tool(tool(
            "test_input_required_result_multiple_inputs",
            "Asks for a name (elicitation), a greeting (sampling) and the roots (roots/list) in one round",
            |cx, _args: NoArguments| async move {
                // Every question is asked before any answer is needed: one round asks all three.
                let name = cx.elicit(name_question("What is your name?")).await;
                let greeting = cx.sample(question("Generate a greeting", 50)).await;
                let roots = cx.list_roots().await;
                let name = name.map_err(input_error)?;
                let greeting = greeting.map_err(input_error)?;
                let roots = roots.map_err(input_error)?;
                Ok::<_, String>(format!(
                    "name={}; greeting={}; {}",
                    answered(&name, "name"),
                    sampled_text(&greeting),
                    roots_text(&roots)
                ))
            },
        ))
        .tool(tool(
            "test_input_required_result_multi_round",
            "Asks two questions in two rounds: a name (step 1), then a favorite color (step 2)",
            |cx, _args: NoArguments| async move {
                let step1 = cx
                    .elicit(name_question("Step 1: What is your name?"))
                    .await
                    .map_err(input_error)?;
                let color = form(
                    "Step 2: What is your favorite color?",
                    json!({"type": "object", "properties": {"color": {"type": "string"}}, "required": ["color"]}),
                );
                let step2 = cx.elicit(color).await.map_err(input_error)?;
                Ok::<_, String>(format!(
                    "{}'s favorite color is {}",
                    answered(&step1, "name"),
                    answered(&step2, "color")
                ))
            },
        ))
        .tool(tool(
            "test_input_required_result_tampered_state",
            "Asks for a confirmation; a retry whose requestState was altered is refused (-32602)",
            |cx, _args: NoArguments| async move {
                let answer = cx.elicit(confirm_question()).await.map_err(input_error)?;
                Ok::<_, String>(format!(
                    "Confirmed with an intact requestState: ok={}",
                    answered(&answer, "ok")
                ))
            },
        ))
        .tool(tool(
            "test_input_required_result_capabilities",
            "Asks for whichever of elicitation, sampling and roots the client declared, and only those",
            |cx, _args: NoArguments| async move {
                let name = cx.elicit(name_question("What is your name?")).await;
                let greeting = cx.sample(question("Generate a greeting", 50)).await;
                let roots = cx.list_roots().await;
                let mut parts = Vec::new();
                if !undeclared(&name) {
                    parts.push(format!("name={}", answered(&name.map_err(input_error)?, "name")));
                }
                if !undeclared(&greeting) {
                    parts.push(format!("greeting={}", sampled_text(&greeting.map_err(input_error)?)));
                }
                if !undeclared(&roots) {
                    parts.push(roots_text(&roots.map_err(input_error)?));
                }
                if parts.is_empty() {
                    parts.push("the client declared none of elicitation, sampling and roots".into());
                }
                Ok::<_, String>(format!("Asked only for declared capabilities: {}", parts.join("; ")))
            },
        ))
        .prompt(prompt(
            "test_input_required_result_prompt",
            "A prompt that first asks the user what context to use (elicitation)",
            |cx: Context, _args| async move {
                let question = form(
                    "What context should the prompt use?",
                    json!({"type": "object", "properties": {"context": {"type": "string"}}, "required": ["context"]}),
                );
                let answer = cx.elicit(question).await.map_err(|e| match e {
                    InputError::Unsupported(capability) => missing_capability(capability),
                    other => ErrorObject::internal(other),
                })?;
                Ok(vec![user_text(format!(
                    "Use this context: {}",
                    answered(&answer, "context")
                ))])
            },
        ))
}
