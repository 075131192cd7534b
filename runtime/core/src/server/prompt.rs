//! Prompts: named message templates with string arguments, rendered by an async handler.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use portico_protocol::v2026_07_28 as wire;

use super::context::Context;
use crate::error::ErrorObject;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type RenderHandler =
    dyn Fn(Context, BTreeMap<String, String>) -> BoxFuture<Result<Vec<wire::PromptMessage>, ErrorObject>> + Send + Sync;

/// A registered prompt.
#[derive(Clone)]
pub struct Prompt {
    definition: wire::Prompt,
    render: Arc<RenderHandler>,
}

/// A user message holding `text`.
pub fn user_text(text: impl Into<String>) -> wire::PromptMessage {
    wire::PromptMessage::new(wire::TextContent::new(text).into(), wire::Role::User)
}

impl Prompt {
    /// The definition `prompts/list` shows.
    pub fn definition(&self) -> &wire::Prompt {
        &self.definition
    }

    /// Declares an argument.
    pub fn with_argument(mut self, name: &str, description: &str, required: bool) -> Self {
        let argument = wire::PromptArgument::new(name)
            .with_description(description)
            .with_required(required);
        self.definition.arguments.get_or_insert_with(Vec::new).push(argument);
        self
    }

    /// Renders the prompt, after checking required arguments are given and no unknown one is.
    pub(crate) async fn render(
        &self,
        cx: Context,
        arguments: BTreeMap<String, String>,
    ) -> Result<Vec<wire::PromptMessage>, ErrorObject> {
        let declared = self.definition.arguments.as_deref().unwrap_or_default();
        for arg in declared {
            if arg.required == Some(true) && !arguments.contains_key(&arg.name) {
                return Err(ErrorObject::invalid_params(format!(
                    "prompts/get: prompt `{}` needs argument `{}`",
                    self.definition.name, arg.name
                )));
            }
        }
        if let Some(unknown) = arguments.keys().find(|k| !declared.iter().any(|a| &a.name == *k)) {
            return Err(ErrorObject::invalid_params(format!(
                "prompts/get: prompt `{}` has no argument `{unknown}`",
                self.definition.name
            )));
        }
        (self.render)(cx, arguments).await
    }
}

/// A prompt named `name`, described by `description`, rendered by `render` from its arguments.
pub fn prompt<F, Fut>(name: &str, description: &str, render: F) -> Prompt
where
    F: Fn(Context, BTreeMap<String, String>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<wire::PromptMessage>, ErrorObject>> + Send + 'static,
{
    let render = Arc::new(render);
    Prompt {
        definition: wire::Prompt::new(name).with_description(description),
        render: Arc::new(move |cx, args| {
            let render = render.clone();
            Box::pin(async move { render(cx, args).await })
        }),
    }
}
