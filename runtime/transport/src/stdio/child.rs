//! The client end: [`spawn`] a stdio server as a child process and talk to it through a
//! [`StdioClient`].

use std::io;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use portico_core::{Peer, Service};
use tokio::process::{Child, ChildStderr, Command};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::StdioConfig;
use super::lines::LineReader;
use super::pump::Link;
use super::stderr_tail::StderrTail;

/// A stdio server running as a child process, and the [`Peer`] that talks to it.
///
/// Requests go through [`StdioClient::peer`] (`client.peer().handle().request(…)`); requests
/// the server sends are served by the `Service` given to [`spawn`]. When the child exits or
/// closes its stdout, the peer closes: waiting requests fail with
/// [`portico_core::PeerError::Closed`] instead of hanging, and so do later ones.
///
/// [`StdioClient::shutdown`] stops the child gracefully; dropping the client kills it.
pub struct StdioClient<S> {
    peer: Peer<S>,
    pid: Option<u32>,
    stderr: Arc<StderrTail>,
    /// Cancelled to close the child's stdin (once what is queued is written).
    close_stdin: CancellationToken,
    /// Cancelled to kill the child.
    kill: CancellationToken,
    grace: Duration,
    /// Waits for the child to exit, then closes the peer; gives the exit status.
    exit: JoinHandle<io::Result<ExitStatus>>,
    /// The pump between the peer and the child's stdin and stdout.
    io: JoinHandle<io::Result<()>>,
    /// Reads the child's stderr into `stderr`.
    stderr_task: JoinHandle<()>,
}

/// Launches `command` as a stdio server, with its stdin, stdout and stderr piped, and connects a
/// [`Peer`] serving `service` (for the requests the server sends) to it.
///
/// The command is also set to kill the child when it is dropped, so a child outlives neither its
/// client nor the runtime. Fails when the child cannot be started.
pub async fn spawn<S: Service>(command: &mut Command, service: S, config: StdioConfig) -> io::Result<StdioClient<S>> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let (Some(stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(io::Error::other(
            "the child's stdin, stdout and stderr were not all piped",
        ));
    };
    let pid = child.id();
    let (peer, link) = Link::new(service, &config);
    let close_stdin = CancellationToken::new();
    let kill = CancellationToken::new();
    // Cancelled when the pump ends, however it ends (aborted included).
    let pumped = CancellationToken::new();

    let io = tokio::spawn({
        let peer = peer.clone();
        let close_stdin = close_stdin.clone();
        let pumped = pumped.clone().drop_guard();
        async move {
            let _pumped = pumped;
            link.run(stdout, stdin, &peer, &close_stdin).await
        }
    });
    let stderr_tail = Arc::new(StderrTail::new(config.stderr_lines));
    let stderr_task = tokio::spawn(capture(
        stderr,
        stderr_tail.clone(),
        config.stderr_line_bytes,
        config.stderr_log.clone(),
    ));
    let exit = tokio::spawn(supervise(
        child,
        peer.clone(),
        kill.clone(),
        pumped,
        config.shutdown_grace,
    ));
    Ok(StdioClient {
        peer,
        pid,
        stderr: stderr_tail,
        close_stdin,
        kill,
        grace: config.shutdown_grace,
        exit,
        io,
        stderr_task,
    })
}

impl<S: Service> StdioClient<S> {
    /// The peer connected to the child: `peer().handle()` sends it requests and notifications.
    pub fn peer(&self) -> &Peer<S> {
        &self.peer
    }

    /// The child's process id, if it had one when it was started.
    pub fn id(&self) -> Option<u32> {
        self.pid
    }

    /// The last lines the child wrote to stderr, oldest first (as many as
    /// [`StdioConfig::stderr_lines`], each cut at [`StdioConfig::stderr_line_bytes`]).
    pub fn stderr_tail(&self) -> Vec<String> {
        self.stderr.snapshot()
    }

    /// Stops the child the way MCP asks: closes its stdin (after writing what is queued), waits
    /// up to [`StdioConfig::shutdown_grace`] for it to exit, then kills it. Returns how it
    /// exited (killed: no exit code, and on Unix the signal).
    ///
    /// Fails only when the exit status cannot be read.
    pub async fn shutdown(mut self) -> io::Result<ExitStatus> {
        self.close_stdin.cancel();
        let joined = match tokio::time::timeout(self.grace, &mut self.exit).await {
            Ok(joined) => joined,
            Err(_) => {
                self.kill.cancel();
                (&mut self.exit).await
            }
        };
        joined.map_err(io::Error::other)?
    }
}

/// A [`portico_core::client::Client`] runs on a stdio child: closing it is
/// [`StdioClient::shutdown`].
impl<S: Service> portico_core::client::ClientTransport for StdioClient<S> {
    fn handle(&self) -> portico_core::PeerHandle {
        self.peer.handle().clone()
    }

    fn close(self: Box<Self>) -> std::pin::Pin<Box<dyn std::future::Future<Output = io::Result<()>> + Send>> {
        Box::pin(async move { (*self).shutdown().await.map(|_| ()) })
    }
}

impl<S> Drop for StdioClient<S> {
    fn drop(&mut self) {
        // The supervisor kills and reaps the child; if the runtime is gone already, dropping
        // the child kills it (`kill_on_drop`).
        self.kill.cancel();
        self.io.abort();
        self.stderr_task.abort();
    }
}

/// Waits for the child to exit (or kills it when told to), then closes the peer once the pump
/// has read what the child wrote before exiting.
async fn supervise<S: Service>(
    mut child: Child,
    peer: Peer<S>,
    kill: CancellationToken,
    pumped: CancellationToken,
    drain: Duration,
) -> io::Result<ExitStatus> {
    let status = tokio::select! {
        status = child.wait() => status,
        () = kill.cancelled() => {
            // Fails only when the child has exited already; `wait` then says how.
            let _ = child.start_kill();
            child.wait().await
        }
    };
    // Answers the child wrote before exiting are still in the pipe. The pump reads them and
    // ends at the end of stdout, unless a process the child started holds stdout open: the
    // wait is bounded.
    let _ = tokio::time::timeout(drain, pumped.cancelled()).await;
    peer.close();
    status
}

/// Keeps the last lines of the child's stderr. Reading goes on to the end even when nothing is
/// kept: a child whose stderr pipe fills up would block.
async fn capture(stderr: ChildStderr, tail: Arc<StderrTail>, line_bytes: usize, log: Option<String>) {
    let mut lines = LineReader::new(stderr, line_bytes);
    // A read error ends the capture; the pipe is closed with it.
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(server) = &log {
            let text = String::from_utf8_lossy(&line.bytes);
            tracing::info!(target: "portico::stdio::stderr", server = server.as_str(), truncated = line.truncated, "{text}");
        }
        tail.push(line);
    }
}
