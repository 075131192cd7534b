//! [`StdioConfig`]: the limits of a stdio connection, both ends.

use std::time::Duration;

use portico_core::PeerConfig;

/// Limits and behaviour of a stdio connection (server or client end).
#[derive(Debug, Clone)]
pub struct StdioConfig {
    /// The peer's own limits: handlers in flight, request timeout, batches.
    pub peer: PeerConfig,
    /// The longest line read as a message, in bytes, without its newline (default 16 MiB). A
    /// longer line is discarded as it streams in and answered with `-32600`.
    pub max_message_bytes: usize,
    /// Messages queued for the writer before senders wait (default 64).
    pub outbound_capacity: usize,
    /// Client end: how many of the child's last stderr lines are kept (default 200).
    pub stderr_lines: usize,
    /// Client end: the longest stderr line kept, in bytes; longer lines are cut and end with `…`
    /// (default 4 KiB).
    pub stderr_line_bytes: usize,
    /// Client end: how long [`super::StdioClient::shutdown`] waits for the child to exit once its
    /// stdin is closed before killing it, and how long output still in the child's stdout is
    /// read after it exits (default 2 s).
    pub shutdown_grace: Duration,
    /// Client end: when set, every line the child writes to stderr is also logged (`tracing`,
    /// level info, target `portico::stdio::stderr`) with this name as its `server` field.
    pub stderr_log: Option<String>,
}

impl Default for StdioConfig {
    fn default() -> Self {
        Self {
            peer: PeerConfig::default(),
            max_message_bytes: 16 * 1024 * 1024,
            outbound_capacity: 64,
            stderr_lines: 200,
            stderr_line_bytes: 4 * 1024,
            shutdown_grace: Duration::from_secs(2),
            stderr_log: None,
        }
    }
}
