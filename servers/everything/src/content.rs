//! Tools whose result is fixed content: text, an image, audio, an embedded resource, a mix of
//! them, and a tool error.

use portico_core::server::tool::CallToolResult;
use portico_core::server::{ServerBuilder, tool};
use portico_protocol::v2026_07_28 as wire;

use crate::NoArguments;

/// A 1×1 red PNG, base64-encoded.
pub(crate) const RED_PIXEL_PNG: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

/// A WAV file of one silent 16-bit sample at 8 kHz, base64-encoded.
pub(crate) const SILENT_WAV: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

/// The image as a content block.
pub(crate) fn image() -> wire::ContentBlock {
    wire::ImageContent::new(RED_PIXEL_PNG, "image/png").into()
}

/// A resource embedded in a content block: `text` at `uri`, of type `mime`.
pub(crate) fn embedded(uri: &str, mime: &str, text: &str) -> wire::ContentBlock {
    let contents = wire::TextResourceContents::new(text, uri).with_mime_type(mime);
    wire::EmbeddedResource::new(contents.into()).into()
}

fn text(text: &str) -> wire::ContentBlock {
    wire::TextContent::new(text).into()
}

/// Registers the content tools. `test_simple_text` comes first: the suite calls the first listed
/// tool with empty arguments and expects it to succeed (`http-header-validation`).
pub(crate) fn register(builder: ServerBuilder) -> ServerBuilder {
    builder
        .tool(tool(
            "test_simple_text",
            "Returns one text block",
            |_cx, _args: NoArguments| async { "This is a simple text response for testing." },
        ))
        .tool(tool(
            "test_image_content",
            "Returns one image block (a 1x1 red PNG)",
            |_cx, _args: NoArguments| async { vec![image()] },
        ))
        .tool(tool(
            "test_audio_content",
            "Returns one audio block (a short WAV)",
            |_cx, _args: NoArguments| async {
                vec![wire::ContentBlock::from(wire::AudioContent::new(
                    SILENT_WAV,
                    "audio/wav",
                ))]
            },
        ))
        .tool(tool(
            "test_embedded_resource",
            "Returns one embedded text resource",
            |_cx, _args: NoArguments| async {
                vec![embedded(
                    "test://embedded-resource",
                    "text/plain",
                    "This is an embedded resource content.",
                )]
            },
        ))
        .tool(tool(
            "test_multiple_content_types",
            "Returns text, an image and an embedded resource",
            |_cx, _args: NoArguments| async {
                vec![
                    text("Multiple content types test:"),
                    image(),
                    embedded(
                        "test://mixed-content-resource",
                        "application/json",
                        r#"{"test":"data","value":123}"#,
                    ),
                ]
            },
        ))
        .tool(tool(
            "test_error_handling",
            "Always fails with a tool error (isError: true)",
            |_cx, _args: NoArguments| async {
                Err::<CallToolResult, _>("This tool intentionally returns an error for testing")
            },
        ))
}
