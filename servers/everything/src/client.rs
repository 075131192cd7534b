//! Tools that ask the client for something while they run — sampling, elicitation — through
//! [`Context::sample`] and [`Context::elicit`]: in a session these are real server→client
//! requests; in 2026-07-28 the call ends `input_required` and is retried with the answers (see
//! [`crate::mrtr`]). A client without the capability gets a tool error saying so.

use portico_core::server::input::InputError;
use portico_core::server::{Context, ServerBuilder, tool};
use portico_protocol::v2026_07_28 as wire;
use serde_json::{Value, json};

use crate::NoArguments;

/// Form elicitation params: `message`, and a requested schema given as JSON.
///
/// Panics when `schema` is not a valid requested schema: the schemas are constants of this
/// crate, and the tests send each one.
pub(crate) fn form(message: &str, schema: Value) -> wire::ElicitRequestParams {
    let schema: wire::ElicitRequestFormParamsRequestedSchema =
        serde_json::from_value(schema).unwrap_or_else(|e| panic!("requested schema of {message:?}: {e}"));
    wire::ElicitRequestFormParams::new(message, schema).into()
}

/// Sampling params: one user message `text`, at most `max_tokens` tokens back.
pub(crate) fn question(text: &str, max_tokens: i64) -> wire::CreateMessageRequestParams {
    let message = wire::SamplingMessage::new(wire::TextContent::new(text).into(), wire::Role::User);
    wire::CreateMessageRequestParams::new(max_tokens, vec![message])
}

/// The text of a sampling answer (text blocks joined by spaces).
pub(crate) fn sampled_text(result: &wire::CreateMessageResult) -> String {
    use wire::CreateMessageResultContent as C;
    match &result.content {
        C::TextContent(text) => text.text.clone(),
        C::Array(blocks) => blocks
            .iter()
            .filter_map(|b| match b {
                wire::SamplingMessageContentBlock::Text(text) => Some(text.text.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// The submitted content of an elicitation answer, as JSON (`{}` when there is none).
pub(crate) fn content_json(result: &wire::ElicitResult) -> Value {
    result
        .content
        .as_ref()
        .and_then(|c| serde_json::to_value(c).ok())
        .unwrap_or_else(|| json!({}))
}

/// A string member of an elicitation answer's content.
pub(crate) fn content_str(result: &wire::ElicitResult, name: &str) -> Option<String> {
    match result.content.as_ref()?.get(name)? {
        wire::ElicitResultContentValue::String(s) => Some(s.clone()),
        other => serde_json::to_value(other).ok().map(|v| v.to_string()),
    }
}

/// How an elicitation ended, as the suite's tools report it.
pub(crate) fn elicitation_summary(result: &wire::ElicitResult) -> String {
    format!(
        "Elicitation completed: action={}, content={}",
        result.action,
        content_json(result)
    )
}

/// An input error as the tool error the model reads (for [`InputError::Required`] the framework
/// answers `input_required` instead).
pub(crate) fn input_error(e: InputError) -> String {
    e.to_string()
}

/// Asks the client's model `prompt`.
async fn sample(cx: &Context, prompt: &str) -> Result<String, String> {
    let answer = cx.sample(question(prompt, 100)).await.map_err(input_error)?;
    Ok(sampled_text(&answer))
}

/// `test_sampling` arguments.
#[derive(serde::Deserialize, schemars::JsonSchema)]
struct SamplingArgs {
    /// The prompt to send to the LLM.
    prompt: String,
}

/// `test_elicitation` arguments.
#[derive(serde::Deserialize, schemars::JsonSchema)]
struct ElicitationArgs {
    /// The message to show the user.
    message: String,
}

/// The requested schema of `test_elicitation_sep1034_defaults`: a default for every primitive
/// type (SEP-1034).
fn defaults_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "User name", "default": "John Doe"},
            "age": {"type": "integer", "description": "User age", "default": 30},
            "score": {"type": "number", "description": "User score", "default": 95.5},
            "status": {"type": "string", "description": "User status", "enum": ["active", "inactive", "pending"], "default": "active"},
            "verified": {"type": "boolean", "description": "Verification status", "default": true}
        },
        "required": []
    })
}

/// The requested schema of `test_elicitation_sep1330_enums`: the five enum forms (SEP-1330).
fn enums_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "untitledSingle": {"type": "string", "description": "Select one option", "enum": ["option1", "option2", "option3"]},
            "titledSingle": {"type": "string", "description": "Select one option with titles", "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"}
            ]},
            "legacyEnum": {"type": "string", "description": "Select one option (legacy)",
                "enum": ["opt1", "opt2", "opt3"], "enumNames": ["Option One", "Option Two", "Option Three"]},
            "untitledMulti": {"type": "array", "description": "Select multiple options", "minItems": 1, "maxItems": 3,
                "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
            "titledMulti": {"type": "array", "description": "Select multiple options with titles", "minItems": 1, "maxItems": 3,
                "items": {"anyOf": [
                    {"const": "value1", "title": "First Choice"},
                    {"const": "value2", "title": "Second Choice"},
                    {"const": "value3", "title": "Third Choice"}
                ]}}
        },
        "required": []
    })
}

/// Registers the tools that ask the client.
pub(crate) fn register(builder: ServerBuilder) -> ServerBuilder {
    builder
        .tool(tool(
            "test_sampling",
            "Asks the client's model the prompt (sampling/createMessage, maxTokens 100) and returns its answer",
            |cx, args: SamplingArgs| async move {
                sample(&cx, &args.prompt)
                    .await
                    .map(|text| format!("LLM response: {text}"))
            },
        ))
        .tool(tool(
            "test_elicitation",
            "Asks the user the message (elicitation/create: username and email) and returns the answer",
            |cx, args: ElicitationArgs| async move {
                let schema = json!({
                    "type": "object",
                    "properties": {
                        "username": {"type": "string", "description": "User's response"},
                        "email": {"type": "string", "description": "User's email address"}
                    },
                    "required": ["username", "email"]
                });
                let answer = cx.elicit(form(&args.message, schema)).await.map_err(input_error)?;
                Ok::<_, String>(format!(
                    "User response: action={}, content={}",
                    answer.action,
                    content_json(&answer)
                ))
            },
        ))
        .tool(tool(
            "test_elicitation_sep1034_defaults",
            "Asks the user to review a form whose fields all have defaults (SEP-1034)",
            |cx, _args: NoArguments| async move {
                let question = form(
                    "Please review and update the form fields with defaults",
                    defaults_schema(),
                );
                let answer = cx.elicit(question).await.map_err(input_error)?;
                Ok::<_, String>(elicitation_summary(&answer))
            },
        ))
        .tool(tool(
            "test_elicitation_sep1330_enums",
            "Asks the user to choose from the five enum forms (SEP-1330)",
            |cx, _args: NoArguments| async move {
                let question = form("Please select options from the enum fields", enums_schema());
                let answer = cx.elicit(question).await.map_err(input_error)?;
                Ok::<_, String>(elicitation_summary(&answer))
            },
        ))
        .tool(tool(
            "test_missing_capability",
            "Needs the client's sampling capability; a client that did not declare it gets an error",
            |cx, _args: NoArguments| async move {
                sample(&cx, "Reply with one word: ready?")
                    .await
                    .map(|text| format!("Sampling answered: {text}"))
            },
        ))
}
