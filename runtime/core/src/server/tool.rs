//! Tools: a tool is a typed async function whose argument type derives its `inputSchema`.
//!
//! ```
//! use portico_core::server::{Server, tool};
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct Echo {
//!     /// What to say back.
//!     text: String,
//! }
//!
//! let server = Server::builder("demo", "1.0.0")
//!     .tool(tool("echo", "Says the text back", |_cx, args: Echo| async move { args.text }))
//!     .build();
//! assert!(server.capabilities().tools.is_some());
//! ```
//!
//! A handler returns anything that is [`IntoToolResult`]: a string, a [`CallToolResult`], a
//! [`Json`] value (sent as `structuredContent` with a text copy), or a `Result` of those whose
//! error becomes a result with `isError: true` — a *tool* error the model can read and act on.
//! Arguments that do not fit the argument type are a *protocol* error (`-32602`) naming the
//! member, and the tool is not run.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use portico_protocol::v2026_07_28 as wire;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::context::Context;
use super::tasks::{TaskStart, TaskSupport};
use crate::error::ErrorObject;
use crate::mirror::HeaderParam;

/// A tool's result, as the newest revision defines it.
pub type CallToolResult = wire::CallToolResult;

/// A boxed future, for the type-erased handler table.
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A type-erased tool handler: raw arguments in, result out.
type Handler = dyn Fn(Context, Arguments) -> BoxFuture<Result<CallToolResult, ErrorObject>> + Send + Sync;

/// A call's arguments as the handler gets them: a decoded map, or the JSON object as sent (read
/// straight into the tool's argument type, with no map in between).
pub(crate) enum Arguments {
    /// Decoded already.
    Map(Map<String, Value>),
    /// The `arguments` object of the request, as sent (its JSON text).
    Raw(Box<str>),
}

/// A registered tool: its definition (as listed) and its handler.
#[derive(Clone)]
pub struct Tool {
    definition: wire::Tool,
    handler: Arc<Handler>,
    /// Whether and how the tool runs as a task (the tasks extension).
    task_support: TaskSupport,
    task_start: TaskStart,
    /// The `x-mcp-header` annotations of the `inputSchema`.
    header_params: Vec<HeaderParam>,
}

impl std::fmt::Debug for Tool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tool")
            .field("name", &self.definition.name)
            .finish_non_exhaustive()
    }
}

impl Tool {
    /// The definition `tools/list` shows.
    pub fn definition(&self) -> &wire::Tool {
        &self.definition
    }

    /// The tool's name.
    pub fn name(&self) -> &str {
        &self.definition.name
    }

    /// The arguments a Streamable HTTP client mirrors into `Mcp-Param-*` headers: the
    /// `x-mcp-header` annotations of the `inputSchema` (see [`crate::mirror`]).
    pub fn header_params(&self) -> &[HeaderParam] {
        &self.header_params
    }

    /// Sets the tool's annotations (read-only, destructive, idempotent, open-world hints).
    pub fn with_annotations(mut self, annotations: wire::ToolAnnotations) -> Self {
        self.definition.annotations = Some(annotations);
        self
    }

    /// Sets the display title.
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.definition.title = Some(title.into());
        self
    }

    /// Declares the `outputSchema` of the tool's `structuredContent`, derived from `T`.
    pub fn with_output<T: schemars::JsonSchema>(mut self) -> Self {
        let schema = object_schema::<T>("output");
        self.definition.output_schema = Some(
            serde_json::from_value(schema)
                .unwrap_or_else(|e| panic!("tool `{}`: output schema: {e}", self.definition.name)),
        );
        self
    }

    /// Whether the tool may run as a task (the tasks extension; see [`super::tasks`]).
    pub fn with_task_support(mut self, support: TaskSupport) -> Self {
        self.task_support = support;
        self
    }

    /// When the tool's task is created: before the handler runs (the default), or when the
    /// handler calls [`Context::start_task`](super::Context::start_task).
    pub fn with_task_start(mut self, start: TaskStart) -> Self {
        self.task_start = start;
        self
    }

    /// Whether the tool may run as a task.
    pub fn task_support(&self) -> TaskSupport {
        self.task_support
    }

    /// When the tool's task is created.
    pub fn task_start(&self) -> TaskStart {
        self.task_start
    }

    /// Runs the tool with raw arguments (`None` counts as `{}`).
    pub async fn call(
        &self,
        cx: Context,
        arguments: Option<Map<String, Value>>,
    ) -> Result<CallToolResult, ErrorObject> {
        (self.handler)(cx, Arguments::Map(arguments.unwrap_or_default())).await
    }

    /// Runs the tool with its arguments as sent: a JSON object.
    pub(crate) async fn call_raw(&self, cx: Context, arguments: Box<str>) -> Result<CallToolResult, ErrorObject> {
        (self.handler)(cx, Arguments::Raw(arguments)).await
    }
}

/// The JSON Schema of `T`, which must describe a JSON object.
fn object_schema<T: schemars::JsonSchema>(what: &str) -> Value {
    let mut schema = schemars::schema_for!(T).to_value();
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        panic!(
            "the {what} type {} must be a struct (a JSON object), got schema {schema}",
            std::any::type_name::<T>()
        );
    }
    // The title is the Rust type's name: noise to a model.
    if let Some(map) = schema.as_object_mut() {
        map.remove("title");
    }
    schema
}

/// A tool named `name`, described by `description`, running `handler` with its arguments
/// decoded as `A`. The `inputSchema` is `A`'s JSON Schema (doc comments become descriptions).
///
/// Panics when `A` is not a struct: tool arguments are always a JSON object.
pub fn tool<A, F, Fut, R>(name: &str, description: &str, handler: F) -> Tool
where
    A: DeserializeOwned + schemars::JsonSchema + Send + 'static,
    F: Fn(Context, A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoToolResult,
{
    let schema = object_schema::<A>("argument");
    // An invalid annotation would make every conforming client drop the tool: refuse it here.
    let header_params =
        crate::mirror::header_params(&schema).unwrap_or_else(|e| panic!("tool `{name}`: input schema: {e}"));
    let input: wire::ToolInputSchema =
        serde_json::from_value(schema).unwrap_or_else(|e| panic!("tool `{name}`: input schema: {e}"));
    let definition = wire::Tool::new(input, name).with_description(description);
    let handler = Arc::new(handler);
    let tool_name: Arc<str> = name.into();
    Tool {
        definition,
        task_support: TaskSupport::default(),
        task_start: TaskStart::default(),
        header_params,
        handler: Arc::new(move |cx, arguments| {
            let handler = handler.clone();
            let tool_name = tool_name.clone();
            Box::pin(async move {
                let invalid =
                    |e: serde_json::Error| ErrorObject::invalid_params(format!("arguments of tool `{tool_name}`: {e}"));
                let args: A = match arguments {
                    Arguments::Map(map) => serde_json::from_value(Value::Object(map)).map_err(invalid)?,
                    Arguments::Raw(raw) => match serde_json::from_str(&raw) {
                        Ok(args) => args,
                        // Read through a map, as decoded arguments are: the same message (no
                        // line and column), and the same leniency (a repeated member: the last
                        // one counts).
                        Err(_) => {
                            let map = serde_json::from_str(&raw).map_err(invalid)?;
                            serde_json::from_value(Value::Object(map)).map_err(invalid)?
                        }
                    },
                };
                Ok(handler(cx, args).await.into_tool_result())
            })
        }),
    }
}

/// What a tool handler may return.
pub trait IntoToolResult {
    /// The result sent to the client.
    fn into_tool_result(self) -> CallToolResult;
}

/// A complete result with these content blocks.
pub fn result(content: Vec<wire::ContentBlock>) -> CallToolResult {
    CallToolResult::new(content, "complete")
}

/// A tool error: a result with `isError: true` and `message` as text, for the model to read.
pub fn error_result(message: impl Into<String>) -> CallToolResult {
    result(vec![wire::TextContent::new(message).into()]).with_is_error(true)
}

impl IntoToolResult for CallToolResult {
    fn into_tool_result(self) -> CallToolResult {
        self
    }
}

impl IntoToolResult for String {
    fn into_tool_result(self) -> CallToolResult {
        result(vec![wire::TextContent::new(self).into()])
    }
}

impl IntoToolResult for &'static str {
    fn into_tool_result(self) -> CallToolResult {
        self.to_string().into_tool_result()
    }
}

impl IntoToolResult for Vec<wire::ContentBlock> {
    fn into_tool_result(self) -> CallToolResult {
        result(self)
    }
}

/// A structured result: sent as `structuredContent`, with the same JSON as text for clients that
/// read only `content`.
#[derive(Debug, Clone)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoToolResult for Json<T> {
    fn into_tool_result(self) -> CallToolResult {
        match serde_json::to_value(&self.0) {
            Ok(value) => result(vec![wire::TextContent::new(value.to_string()).into()]).with_structured_content(value),
            Err(e) => error_result(format!("the tool's result could not be encoded: {e}")),
        }
    }
}

impl<T: IntoToolResult, E: std::fmt::Display> IntoToolResult for Result<T, E> {
    fn into_tool_result(self) -> CallToolResult {
        match self {
            Ok(v) => v.into_tool_result(),
            Err(e) => error_result(e.to_string()),
        }
    }
}
