//! MCP's stdio transport: newline-delimited JSON-RPC over a pair of byte streams.
//!
//! Each message is one line of UTF-8 JSON ended by `\n` (a `\r` before it is tolerated on
//! input); a message never contains a newline, and stderr carries logs, never protocol.
//!
//! - [`serve`] / [`serve_stdio`]: the server end, over any reader and writer or over the
//!   process's own stdin and stdout;
//! - [`spawn`]: the client end, which launches the server as a child process and gives a
//!   [`StdioClient`] holding the [`portico_core::Peer`] that talks to it, the tail of the child's
//!   stderr, and a graceful [`StdioClient::shutdown`].
//!
//! Both ends run the same pump: lines read go to [`portico_core::Peer::receive_shared`], and what
//! the peer sends goes through a bounded queue to a writer that puts each message on its own
//! line and flushes it. A line longer than [`StdioConfig::max_message_bytes`] is skipped without
//! being kept whole and answered with `-32600`; a line that is not UTF-8 is answered with
//! `-32700`, and so is one that is not JSON.
//!
//! A line that cannot be read as a message (not JSON, no message, overlong, not UTF-8) names
//! no request, yet may have been the answer of one waiting: every request of this end waiting
//! for an answer then fails at once with
//! [`portico_core::client::ClientError::Unreadable`] naming what was wrong, and is cancelled
//! on the other side, rather than waiting for its timeout. The connection stays open — the next
//! line is read as ever — so one stray line costs the requests in flight, not the connection;
//! a program that owns the connection decides whether a server that writes what is not MCP on
//! its stdout is to be restarted (the gateway restarts it when it loses the server's
//! `subscriptions/listen` stream this way). See [`portico_core::Peer::receive_shared`].

mod child;
mod config;
mod lines;
mod pump;
mod server;
mod stderr_tail;

pub use child::{StdioClient, spawn};
pub use config::StdioConfig;
pub use server::{serve, serve_stdio};
