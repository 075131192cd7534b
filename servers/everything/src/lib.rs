//! `portico-everything`: the conformance fixtures server, built on Portico's server framework.
//!
//! [`server`] registers every tool, resource and prompt the official MCP conformance suite
//! (`@modelcontextprotocol/conformance` 0.2.0-alpha.12) calls in its server scenarios, named and
//! behaving as the scenario sources expect. It is served to clients of both protocol
//! generations: 2026-07-28 (stateless, per-request `_meta`; client input through
//! `input_required` results) and 2025-11-25 … 2024-11-05 (`initialize` sessions; client input
//! through real server→client requests). The suite drives it over Streamable HTTP; this crate
//! is transport-free (serve [`Server::connection`] over any transport).
//!
//! # Fixtures
//!
//! | fixture | kind | what it does |
//! |---|---|---|
//! | `test_simple_text` | tool | text `This is a simple text response for testing.` (listed first: the suite calls the first tool with `{}`) |
//! | `test_image_content` | tool | one `image` block, a 1×1 red PNG, `image/png` |
//! | `test_audio_content` | tool | one `audio` block, a short WAV, `audio/wav` |
//! | `test_embedded_resource` | tool | one `resource` block: `test://embedded-resource`, `text/plain` |
//! | `test_multiple_content_types` | tool | text, image and an embedded `application/json` resource |
//! | `test_error_handling` | tool | a tool error (`isError: true`) with a text message |
//! | `json_schema_2020_12_tool` | tool | `inputSchema` with `$schema`, `$defs`+`$anchor`, `allOf`/`anyOf`, `if`/`then`/`else`, `additionalProperties: false`, listed unchanged; echoes its arguments |
//! | `test_x_mcp_header` | tool | argument `region` annotated `x-mcp-header: Region`; echoes it |
//! | `test_tool_with_logging` | tool | three `info` log messages 50 ms apart |
//! | `test_logging_tool` | tool | one log message each at `debug`, `info`, `warning` (a 2026-07-28 request without `logLevel` gets none) |
//! | `test_tool_with_progress` | tool | progress 0, 50, 100 of 100, 50 ms apart, when the request has a `progressToken` |
//! | `test_trigger_tool_change` | tool | [`Server::notify`]`(ToolsListChanged)` |
//! | `test_trigger_prompt_change` | tool | [`Server::notify`]`(PromptsListChanged)` |
//! | `test_sampling(prompt)` | tool | asks the client's model the prompt (`maxTokens` 100); `LLM response: …` |
//! | `test_elicitation(message)` | tool | asks the user for `username` and `email`; `User response: action=…, content=…` |
//! | `test_elicitation_sep1034_defaults` | tool | a form with a default for each primitive type; `Elicitation completed: action=…, content=…` |
//! | `test_elicitation_sep1330_enums` | tool | a form with the five enum forms (untitled/titled single, legacy `enumNames`, untitled/titled multi) |
//! | `test_missing_capability` | tool | needs sampling; a client that did not declare it is refused: `-32021` naming it in 2026-07-28, a tool error in a session |
//! | `test_streaming_elicitation` | tool | logs and reports progress, then asks for a confirmation (2026-07-28: `input_required`, never a request on the response stream) |
//! | `test_reconnection` | tool | ends its SSE stream at once ([`portico_core::server::Context::close_stream`]), answers after 100 ms; the client resumes with `Last-Event-ID` |
//! | `test_input_required_result_elicitation` | tool | asks the name; `Hello, <name>!` |
//! | `test_input_required_result_sampling` | tool | asks the model the capital of France; `Sampling response: …` |
//! | `test_input_required_result_list_roots` | tool | asks for the roots; lists them |
//! | `test_input_required_result_request_state` | tool | asks a confirmation; the retry's sealed `requestState` is verified; answer says `state-ok` |
//! | `test_input_required_result_multiple_inputs` | tool | asks elicitation, sampling and roots in one round |
//! | `test_input_required_result_multi_round` | tool | asks step 1 (name), then step 2 (color) in a second round |
//! | `test_input_required_result_tampered_state` | tool | asks a confirmation; an altered `requestState` is refused with `-32602` |
//! | `test_input_required_result_capabilities` | tool | asks only for the input kinds the client declared |
//! | `test://static-text` | resource | `text/plain`: `This is the content of the static text resource.` |
//! | `test://static-binary` | resource | `image/png` blob (the red pixel) |
//! | `test://watched-resource` | resource | `text/plain`; the URI the suite subscribes to (`resources/subscribe`/`unsubscribe`) |
//! | `test://template/{id}/data` | template | `application/json` `{"id", "templateTest": true, "data": "Data for ID: <id>"}` |
//! | `test_simple_prompt` | prompt | one user text message |
//! | `test_prompt_with_arguments(arg1, arg2)` | prompt | `Prompt with arguments: arg1='…', arg2='…'` (both required) |
//! | `test_prompt_with_embedded_resource(resourceUri)` | prompt | the resource at `resourceUri`, embedded, then a text message |
//! | `test_prompt_with_image` | prompt | an image message, then a text message |
//! | `test_input_required_result_prompt` | prompt | asks what context to use (elicitation), then renders it; without the capability `-32021` |
//! | `echo(message)` | tool | returns `message` as one text block (the tool `cargo xtask bench server` calls; not a suite fixture) |
//! | `greet(name)` | tool | `Hello, <name>!`, synchronously (tasks extension: never a task) |
//! | `slow_compute(seconds, label?)` | tool | sleeps `seconds` (at most 300), then `Computed <label> in <n> s`; a task for clients of the tasks extension (task support optional) |
//! | `failing_job` | tool | after 500 ms a tool error (`isError`); task support required (`-32021` to a client without the extension) |
//! | `protocol_error_job` | tool | its handler panics: `-32603`, or as a task `failed` with that error |
//! | `confirm_delete(filename)` | tool | asks to confirm (elicitation); as a task it waits in `input_required` for `tasks/update` |
//! | `multi_input` | tool | asks two questions at once; as a task both wait in `input_required`, answerable one at a time |
//! | `test_tool_with_task` | tool | asks `user_name` in `input_required` rounds, then becomes a task (task support required) that greets the user |
//! | `skill://pdf-processing/SKILL.md` | skill | Agent Skill with `references/FORMS.md` (the skills extension: `skills/list`, `skills/get`, `resources/directory/read`) |
//! | `skill://portico/release-notes/SKILL.md` | skill | Agent Skill under a path prefix, `SKILL.md` only |
//! | `completion/complete` | completion | prefix-filtered values for `arg1`/`arg2`, `resourceUri` and the template's `id` |
//!
//! The framework provides the rest the suite checks of a server: `initialize`, `ping`,
//! `logging/setLevel`, `resources/subscribe`/`unsubscribe`, `server/discover`,
//! `subscriptions/listen`, `ttlMs`/`cacheScope`, sealed `requestState`. Transports own the HTTP
//! checks (headers, DNS-rebinding protection, SSE resumability).
//!
//! # Not yet as the suite expects
//!
//! These need the framework or a transport, not this crate:
//! - task status notifications (`notifications/tasks` on `subscriptions/listen`, optional in
//!   SEP-2663) are not sent; the suite skips `tasks-status-notifications` itself.
//!
//! The crate has no features.

mod changes;
mod client;
mod content;
mod logging;
mod mrtr;
mod prompts;
mod resources;
mod schemas;
mod skills;
mod streams;
mod tasks;

use portico_core::server::{Server, tool};

/// The server's name, as `serverInfo` shows it.
pub const NAME: &str = "portico-everything";

/// The server's version, as `serverInfo` shows it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The arguments of a tool that takes none (unknown members are ignored).
#[derive(serde::Deserialize, schemars::JsonSchema)]
struct NoArguments {}

/// The arguments of `echo`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
struct EchoArguments {
    /// The text to return.
    message: String,
}

/// The fixtures server, with every fixture of the table in the crate docs.
///
/// Each call builds a new server. The change tools hold the server they announce on (see
/// `changes`), so a server built here lives as long as the process: build one and serve its
/// connections.
pub fn server() -> Server {
    let builder = Server::builder(NAME, VERSION).instructions(
        "Conformance fixtures: tools, resources and prompts named test_* that the MCP conformance suite calls.",
    );
    let cell = changes::ServerCell::default();
    let builder = content::register(builder);
    let builder = logging::register(builder);
    let builder = schemas::register(builder);
    let builder = changes::register(builder, &cell);
    let builder = client::register(builder);
    let builder = streams::register(builder);
    let builder = mrtr::register(builder);
    let builder = resources::register(builder);
    let builder = prompts::register(builder);
    let builder = tasks::register(builder);
    let builder = skills::register(builder);
    let builder = builder.tool(tool(
        "echo",
        "Returns its message argument as text",
        |_cx, args: EchoArguments| async move { args.message },
    ));
    let server = builder.build();
    cell.set(server.clone());
    server
}
