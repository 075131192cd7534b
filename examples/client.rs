//! An MCP client over Streamable HTTP: connects in whichever generation the server speaks,
//! lists the tools, listens for tool-list changes, calls a tool and prints what comes back.
//!
//! `cargo run -p portico-examples --bin client -- http://127.0.0.1:3000/mcp echo '{"message":"hi"}'`
//! (against `portico serve everything --http 127.0.0.1:3000`, say).
use std::time::Duration;

use portico_core::client::{Client, Notification};
use portico_protocol::v2026_07_28 as wire;
use portico_transport::http::client::{HttpClientConfig, connect};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "http://127.0.0.1:3000/mcp".into());
    let tool = args.next().unwrap_or_else(|| "echo".into());
    let arguments: serde_json::Value = serde_json::from_str(&args.next().unwrap_or_else(|| "{}".into()))?;

    // `server/discover` first; a server of the stateful era gets `initialize` instead.
    let client = Client::builder(wire::Implementation::new("example-client", "1.0.0"))
        .connect(|service| connect(&url, service, HttpClientConfig::default()))
        .await?;
    let server = client.server().info.as_ref().map_or("?", |i| i.name.as_str());
    println!("connected to {server} ({})", client.server().protocol_version);
    for tool in client.list_all_tools().await? {
        println!("tool: {}", tool.name);
    }

    // Tool-list changes: a `subscriptions/listen` stream, or the session's own notifications.
    let mut notifications = client.notifications();
    let filter = wire::SubscriptionFilter::new().with_tools_list_changed(true);
    let subscription = client.listen(filter).await?;

    let result = client.call_tool(&tool, arguments).await?;
    for block in &result.content {
        if let wire::ContentBlock::Text(text) = block {
            println!("result: {}", text.text);
        }
    }
    if let Ok(Some(Notification::ToolsListChanged { .. })) =
        tokio::time::timeout(Duration::from_secs(2), notifications.recv()).await
    {
        println!("notification: the tool list changed");
    }
    subscription.close().await?;
    client.close().await?;
    Ok(())
}
