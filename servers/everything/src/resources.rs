//! Resources: fixed text and binary contents, a template that substitutes its `{id}`, and a
//! resource clients subscribe to; and the completion of prompt and template arguments.

use portico_core::ErrorObject;
use portico_core::server::{ServerBuilder, resource, resource_template};
use portico_protocol::v2026_07_28 as wire;

use crate::content::RED_PIXEL_PNG;

/// The text of `test://static-text`.
pub(crate) const STATIC_TEXT: &str = "This is the content of the static text resource.";

/// The text of `test://watched-resource`.
pub(crate) const WATCHED_TEXT: &str = "Watched resource content";

/// Registers the resources, the template and the completion handler.
pub(crate) fn register(builder: ServerBuilder) -> ServerBuilder {
    builder
        .resource(
            resource("test://static-text", "static-text", |_cx| async {
                let contents =
                    wire::TextResourceContents::new(STATIC_TEXT, "test://static-text").with_mime_type("text/plain");
                Ok(vec![contents.into()])
            })
            .with_description("A static text resource for testing")
            .with_mime_type("text/plain"),
        )
        .resource(
            resource("test://static-binary", "static-binary", |_cx| async {
                let contents =
                    wire::BlobResourceContents::new(RED_PIXEL_PNG, "test://static-binary").with_mime_type("image/png");
                Ok(vec![contents.into()])
            })
            .with_description("A static binary resource (a 1x1 red PNG) for testing")
            .with_mime_type("image/png"),
        )
        .resource(
            resource("test://watched-resource", "watched-resource", |_cx| async {
                let contents = wire::TextResourceContents::new(WATCHED_TEXT, "test://watched-resource")
                    .with_mime_type("text/plain");
                Ok(vec![contents.into()])
            })
            .with_description("A resource to subscribe to (resources/subscribe, subscriptions/listen)")
            .with_mime_type("text/plain"),
        )
        .resource_template(
            resource_template("test://template/{id}/data", "template", |_cx, vars| async move {
                let id = vars.get("id").cloned().unwrap_or_default();
                let uri = format!("test://template/{id}/data");
                let data = serde_json::json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")});
                let contents =
                    wire::TextResourceContents::new(data.to_string(), uri).with_mime_type("application/json");
                Ok(vec![contents.into()])
            })
            .with_description("A resource template with parameter substitution")
            .with_mime_type("application/json"),
        )
        .completion(|_cx, params| async move { complete(&params) })
}

/// Suggestions for the arguments of `test_prompt_with_arguments` and the `{id}` of the template,
/// filtered by the typed prefix.
fn complete(params: &wire::CompleteRequestParams) -> Result<Vec<String>, ErrorObject> {
    let argument = params.argument.name.as_str();
    let candidates: &[&str] = match &params.r#ref {
        wire::CompleteRequestParamsRef::Prompt(prompt) => match (prompt.name.as_str(), argument) {
            ("test_prompt_with_arguments", "arg1" | "arg2") => {
                &["test", "testValue1", "testValue2", "paris", "park", "party"]
            }
            ("test_prompt_with_embedded_resource", "resourceUri") => {
                &["test://static-text", "test://static-binary", "test://watched-resource"]
            }
            _ => &[],
        },
        wire::CompleteRequestParamsRef::ResourceTemplate(template) => match (template.uri.as_str(), argument) {
            ("test://template/{id}/data", "id") => &["1", "2", "3", "42", "123"],
            _ => &[],
        },
    };
    let prefix = params.argument.value.as_str();
    Ok(candidates
        .iter()
        .filter(|c| c.starts_with(prefix))
        .map(|c| (*c).to_string())
        .collect())
}
