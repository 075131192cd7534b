//! A custom MCP server with one typed tool, served over stdio to clients of every revision.
//!
//! `cargo run -p portico-examples --bin custom-server`, then point an MCP client at it.
use portico_core::server::{Json, Server, tool};
use portico_transport::stdio::{StdioConfig, serve_stdio};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The tool's arguments: their JSON Schema, doc comments included, is the tool's `inputSchema`.
#[derive(Deserialize, JsonSchema)]
struct AddArgs {
    /// The first number.
    a: f64,
    /// The second number.
    b: f64,
}

/// The tool's structured result, declared as its `outputSchema`.
#[derive(Serialize, JsonSchema)]
struct Sum {
    sum: f64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let add = tool("add", "Adds two numbers", |_cx, args: AddArgs| async move {
        Json(Sum { sum: args.a + args.b })
    });
    let server = Server::builder("calculator", "1.0.0")
        .tool(add.with_output::<Sum>())
        .build();
    serve_stdio(server.connection(), StdioConfig::default()).await
}
