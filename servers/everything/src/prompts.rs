//! Prompts: a plain one, one that substitutes two arguments, one that embeds a resource named by
//! its argument, and one with an image.

use portico_core::server::prompt::user_text;
use portico_core::server::{ServerBuilder, prompt};
use portico_protocol::v2026_07_28 as wire;

use crate::content::{embedded, image};

/// Registers the prompts.
pub(crate) fn register(builder: ServerBuilder) -> ServerBuilder {
    builder
        .prompt(prompt(
            "test_simple_prompt",
            "A simple prompt without arguments",
            |_cx, _args| async { Ok(vec![user_text("This is a simple prompt for testing.")]) },
        ))
        .prompt(
            prompt(
                "test_prompt_with_arguments",
                "A prompt with two required arguments",
                |_cx, args| async move {
                    let arg = |name: &str| args.get(name).cloned().unwrap_or_default();
                    Ok(vec![user_text(format!(
                        "Prompt with arguments: arg1='{}', arg2='{}'",
                        arg("arg1"),
                        arg("arg2")
                    ))])
                },
            )
            .with_argument("arg1", "First test argument", true)
            .with_argument("arg2", "Second test argument", true),
        )
        .prompt(
            prompt(
                "test_prompt_with_embedded_resource",
                "A prompt that embeds the resource its argument names",
                |_cx, args| async move {
                    let uri = args.get("resourceUri").cloned().unwrap_or_default();
                    Ok(vec![
                        wire::PromptMessage::new(
                            embedded(&uri, "text/plain", "Embedded resource content for testing."),
                            wire::Role::User,
                        ),
                        user_text("Please process the embedded resource above."),
                    ])
                },
            )
            .with_argument("resourceUri", "URI of the resource to embed", true),
        )
        .prompt(prompt(
            "test_prompt_with_image",
            "A prompt that includes an image",
            |_cx, _args| async {
                Ok(vec![
                    wire::PromptMessage::new(image(), wire::Role::User),
                    user_text("Please analyze the image above."),
                ])
            },
        ))
}
