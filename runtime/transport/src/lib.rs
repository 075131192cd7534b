//! `portico-transport`: the transports that carry a [`portico_core::Peer`]'s JSON-RPC messages
//! between two processes. A transport owns the bytes; the peer owns JSON-RPC.
//!
//! Transports (always built: the crate has no cargo features yet):
//!
//! - `stdio` ([`stdio`]): MCP's stdio transport, one JSON-RPC message per line on stdin and
//!   stdout, stderr left for logs. Both ends: [`stdio::serve`] and [`stdio::serve_stdio`] run a
//!   server over a pair of byte streams or the process's own stdin/stdout; [`stdio::spawn`]
//!   launches a server as a child process and gives a [`StdioClient`] whose peer talks to it.
//! - Streamable HTTP ([`http`]), server side: an axum router serving the MCP endpoint to
//!   2026-07-28 clients statelessly and to 2025-x clients in `Mcp-Session-Id` sessions, and
//!   [`http::serve`] to run it. Client end: [`http::client::connect`] gives an
//!   [`http::client::HttpClient`] whose peer talks to such an endpoint.
//! - WebSocket ([`http::ws`]), server side: a GET to the same endpoint with `Upgrade: websocket`
//!   (subprotocol `mcp`) becomes a socket carrying one JSON-RPC message per text frame, served
//!   by one peer like a stdio connection (both eras on one socket). The Streamable HTTP router
//!   serves it; [`http::HttpConfig::websocket`] configures or switches it off. Client end:
//!   [`http::ws_client::connect`] gives a [`http::ws_client::WsClient`] whose peer talks to it.
//! - Tracing ([`otel`]): W3C trace context through `_meta` and the `traceparent` header, server
//!   spans around a service ([`otel::Traced`]) and an OTLP/HTTP exporter.
//! - Legacy HTTP+SSE ([`http::legacy_sse`]), server side: the 2024-11-05 transport (`GET /sse`
//!   opens a session's stream, whose `endpoint` event names where to POST messages), as a router
//!   of its own to merge with the Streamable HTTP router on one listener. Client end:
//!   [`http::legacy_sse_client::connect`] gives a [`http::legacy_sse_client::LegacySseClient`].

pub mod http;
pub mod otel;
pub mod stdio;

pub use stdio::{StdioClient, StdioConfig};
