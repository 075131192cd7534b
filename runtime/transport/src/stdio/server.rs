//! The server end: [`serve`] a [`Service`] over a reader and a writer, or [`serve_stdio`] over
//! the process's own stdin and stdout.

use std::io;

use portico_core::Service;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

use super::StdioConfig;
use super::pump::Link;

/// Serves `service` over newline-delimited JSON-RPC: messages are read from `reader`, one per
/// line, and answers (and whatever the service sends the other side) are written to `writer`,
/// one per line, each flushed.
///
/// Returns `Ok` at the end of `reader`, once the peer is closed (in-flight handlers are
/// cancelled; the client has gone and cannot read their answers) and the messages already
/// queued are written; and `Ok` when the other side closes `writer` (broken pipe). Other I/O
/// errors are returned.
pub async fn serve<R, W, S>(reader: R, writer: W, service: S, config: StdioConfig) -> io::Result<()>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
    S: Service,
{
    let (peer, link) = Link::new(service, &config);
    link.run(reader, writer, &peer, &CancellationToken::new()).await
}

/// Serves `service` over the process's stdin and stdout: the stdio server of MCP, which the
/// client launches as a child process. Closing its stdin is how the client asks it to stop;
/// this then returns `Ok`.
///
/// Nothing else may write to stdout while this runs (logs go to stderr). Tokio reads stdin on a
/// blocking thread that cannot be interrupted: if this returns for another reason than the end
/// of stdin (stdout closed, an I/O error), a runtime shut down afterwards waits for that read,
/// so a server should then exit the process rather than wait for the runtime.
pub async fn serve_stdio<S: Service>(service: S, config: StdioConfig) -> io::Result<()> {
    serve(tokio::io::stdin(), tokio::io::stdout(), service, config).await
}
