//! The `auth/*` scenarios of the conformance suite's client side: the OAuth 2.1 client of
//! [`portico_transport::http::auth`] against the suite's mock authorization server.
//!
//! Every scenario is the same run — connect through an [`OAuthProvider`], list the tools, call
//! `test-tool`, close — with the provider configured the way a real client would be for it:
//!
//! - the user agent is a [`HeadlessAuthorizer`] (the mock server approves at once and redirects
//!   straight back; nothing needs to listen on the redirect URI);
//! - pre-registered credentials come from `MCP_CONFORMANCE_CONTEXT` (`client_id`,
//!   `client_secret`) when it has them; the client's Client ID Metadata Document URL is the one
//!   the suite expects (`https://conformance-test.local/client-metadata.json`), used only where
//!   the server advertises support;
//! - `auth/client-credentials-*` use the client credentials grant (machine to machine) with the
//!   context's credentials; `auth/2025-03-26-*` turn on the 2025-03-26 discovery fallback.
//!
//! The scenarios in which the client must refuse (a mismatched `resource`, `iss` or `issuer`, a
//! server that refuses scopes forever) end with the provider's typed error, reported on
//! standard error and as a failed exit: the suite judges them by what was (not) sent.

use std::sync::Arc;

use portico_core::client::{Client, Protocol};
use portico_core::server::STATEFUL_REVISIONS;
use portico_protocol::v2026_07_28 as wire;
use portico_transport::http::auth::{Auth, ClientCredentials, HeadlessAuthorizer, OAuthConfig, OAuthProvider};
use portico_transport::http::client::{HttpClientConfig, connect};
use serde_json::{Value, json};

/// The Client ID Metadata Document URL the suite's CIMD scenarios look for.
const CLIENT_METADATA_URL: &str = "https://conformance-test.local/client-metadata.json";

/// Where the authorization server sends the browser back (nobody listens: the headless
/// authorizer reads the redirect instead of following it).
const REDIRECT_URI: &str = "http://localhost:3000/callback";

/// Runs an `auth/*` scenario against `url`.
pub async fn run(url: &str, scenario: &str) -> Result<(), String> {
    let version =
        std::env::var("MCP_CONFORMANCE_PROTOCOL_VERSION").unwrap_or_else(|_| STATEFUL_REVISIONS[0].to_string());
    let context: Value = std::env::var("MCP_CONFORMANCE_CONTEXT")
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null);
    let credentials = context["client_id"]
        .as_str()
        .map(|id| ClientCredentials::new(id, context["client_secret"].as_str().map(str::to_string)));

    let mut config = if scenario.starts_with("auth/client-credentials") {
        let client = credentials.ok_or("the scenario's context has no client_id")?;
        OAuthConfig::client_credentials("portico-conformance-client", client)
    } else {
        let authorizer = Arc::new(HeadlessAuthorizer::new(REDIRECT_URI));
        let mut config = OAuthConfig::authorization_code("portico-conformance-client", authorizer);
        config.client = credentials;
        config.client_metadata_url = Some(CLIENT_METADATA_URL.into());
        config
    };
    config.legacy_discovery = scenario.starts_with("auth/2025-03-26");
    let provider = OAuthProvider::new(url, config).map_err(|e| e.to_string())?;

    let protocol = if version == "2026-07-28" {
        Protocol::Stateless
    } else {
        let revision = STATEFUL_REVISIONS
            .iter()
            .find(|r| **r == version)
            .ok_or_else(|| format!("unknown protocol version {version:?}"))?;
        Protocol::Stateful(revision)
    };
    let http = HttpClientConfig {
        auth: Some(Auth::new(provider)),
        ..HttpClientConfig::default()
    };
    let client = Client::builder(wire::Implementation::new(
        "portico-conformance-client",
        env!("CARGO_PKG_VERSION"),
    ))
    .protocol(protocol)
    .connect(|service| connect(url, service, http))
    .await
    .map_err(|e| format!("connecting: {e}"))?;
    let outcome = act(&client).await;
    let closed = client.close().await.map_err(|e| format!("closing: {e}"));
    outcome.and(closed)
}

/// What every auth scenario expects once connected: list the tools, call one.
async fn act(client: &Client) -> Result<(), String> {
    let tools = client.list_all_tools().await.map_err(|e| format!("tools/list: {e}"))?;
    let name = tools
        .iter()
        .map(|t| t.name.as_str())
        .find(|n| *n == "test-tool")
        .or_else(|| tools.first().map(|t| t.name.as_str()))
        .ok_or("the server lists no tools")?
        .to_string();
    client
        .call_tool(&name, json!({}))
        .await
        .map_err(|e| format!("tools/call {name}: {e}"))?;
    Ok(())
}
