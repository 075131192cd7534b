//! The pump both ends of a stdio connection run: lines read from one stream go to a [`Peer`],
//! and what the peer sends is written to the other stream, one message per line.

use std::io;

use portico_core::{ErrorObject, Outbound, OutboundKind, Peer, Service, message};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::StdioConfig;
use super::lines::LineReader;

/// The transport's side of a peer: the queue the peer sends into, and the limit on what is read.
pub(crate) struct Link {
    /// A sender of the peer's queue, for the errors the transport answers by itself.
    outbound: mpsc::Sender<Outbound>,
    /// The receiving end of the queue.
    queue: mpsc::Receiver<Outbound>,
    max_message_bytes: usize,
    /// How long handlers still running at the end of the input may take to answer.
    drain: std::time::Duration,
}

/// How the writing half ended.
enum WriterEnd {
    /// It was told to stop (or nothing can send any more) and wrote everything queued.
    Stopped,
    /// The other side closed the stream: nothing more can be written.
    Gone,
}

impl Link {
    /// A peer serving `service` and the link its transport runs.
    pub(crate) fn new<S: Service>(service: S, config: &StdioConfig) -> (Peer<S>, Self) {
        let (outbound, queue) = mpsc::channel(config.outbound_capacity.max(1));
        let peer = Peer::new(service, config.peer.clone(), outbound.clone());
        let link = Self {
            outbound,
            queue,
            max_message_bytes: config.max_message_bytes,
            drain: config.shutdown_grace,
        };
        (peer, link)
    }

    /// Runs the connection until the reader ends or the writer fails.
    ///
    /// - At the end of `reader`, handlers still running get up to `shutdown_grace` to answer
    ///   (so `echo '{…}' | server` gets its answer); then the peer is closed (in-flight handlers stop, waiting requests
    ///   fail with [`portico_core::PeerError::Closed`]), what is already queued is written, and
    ///   the writer is shut down.
    /// - When `stop_writing` is cancelled, what is queued is written, then the writer is shut
    ///   down and dropped (the other side sees the end of its input), and reading goes on until
    ///   the other side closes its output.
    /// - When the other side closes the stream being written (broken pipe), the peer is closed
    ///   and this returns `Ok`; other I/O errors are returned after closing the peer.
    pub(crate) async fn run<R, W, S>(
        self,
        reader: R,
        writer: W,
        peer: &Peer<S>,
        stop_writing: &CancellationToken,
    ) -> io::Result<()>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
        S: Service,
    {
        let drain = self.drain;
        let read = read_loop(reader, peer, self.outbound, self.max_message_bytes);
        let write = write_loop(writer, self.queue, stop_writing);
        tokio::pin!(read, write);
        tokio::select! {
                        read_end = &mut read => {
                let _ = tokio::time::timeout(drain, peer.idle()).await;
                peer.close();
                stop_writing.cancel();
                let write_end = write.await;
                read_end?;
                write_end.map(|_| ())
            }
            write_end = &mut write => match write_end {
                Ok(WriterEnd::Stopped) => {
                    let read_end = read.await;
                    peer.close();
                    read_end
                }
                Ok(WriterEnd::Gone) => {
                    peer.close();
                    Ok(())
                }
                Err(e) => {
                    peer.close();
                    Err(e)
                }
            },
        }
    }
}

/// Reads lines and hands each message to the peer ([`Peer::receive_shared`]: one stream carries
/// every message); answers overlong and non-UTF-8 lines itself, and fails the requests waiting
/// on them as `receive_shared` does for a line that is no message.
async fn read_loop<R, S>(
    reader: R,
    peer: &Peer<S>,
    outbound: mpsc::Sender<Outbound>,
    max_message_bytes: usize,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    S: Service,
{
    let mut lines = LineReader::new(reader, max_message_bytes);
    while let Some(line) = lines.next_line().await? {
        // A line that cannot be read names no request: it may have been the answer of any
        // request waiting, which fail at once rather than wait for their timeouts (see
        // `Peer::receive_shared`).
        if line.truncated {
            let detail = format!("a message longer than the limit of {max_message_bytes} bytes");
            peer.handle().fail_waiting(&detail);
            answer(
                &outbound,
                &ErrorObject::invalid_request(format!(
                    "the message is longer than the limit of {max_message_bytes} bytes"
                )),
            )
            .await;
            continue;
        }
        match std::str::from_utf8(&line.bytes) {
            Ok(text) if text.trim().is_empty() => {}
            Ok(text) => peer.receive_shared(text).await,
            Err(e) => {
                peer.handle()
                    .fail_waiting(&format!("invalid JSON: the message is not UTF-8 ({e})"));
                let error = ErrorObject::parse_error(format_args!("the message is not UTF-8 ({e})"));
                answer(&outbound, &error).await;
            }
        }
    }
    Ok(())
}

/// Answers a line that could not be read as a message: its id is unknown, so it is `null`.
async fn answer(outbound: &mpsc::Sender<Outbound>, error: &ErrorObject) {
    let text = message::encode_error(None, error);
    // The queue closes only when the writer has stopped: then nobody can be answered.
    let _ = outbound.send(Outbound::message(text, None)).await;
}

/// Writes queued messages until told to stop (then drains the queue) or the stream fails.
async fn write_loop<W>(
    mut writer: W,
    mut queue: mpsc::Receiver<Outbound>,
    stop: &CancellationToken,
) -> io::Result<WriterEnd>
where
    W: AsyncWrite + Unpin,
{
    let mut stopping = false;
    loop {
        let next = if stopping {
            queue.recv().await
        } else {
            tokio::select! {
                next = queue.recv() => next,
                () = stop.cancelled() => {
                    // Nothing new is taken; what is queued is still written.
                    queue.close();
                    stopping = true;
                    continue;
                }
            }
        };
        let Some(message) = next else { break };
        // A line is one stream for the connection's life: there is no stream to close.
        if message.kind != OutboundKind::Message {
            continue;
        }
        match write_line(&mut writer, message.text).await {
            Ok(()) => {}
            Err(e) if is_gone(&e) => return Ok(WriterEnd::Gone),
            Err(e) => return Err(e),
        }
    }
    match writer.shutdown().await {
        Ok(()) => Ok(WriterEnd::Stopped),
        Err(e) if is_gone(&e) => Ok(WriterEnd::Gone),
        Err(e) => Err(e),
    }
}

/// Writes one message and its newline, and flushes.
async fn write_line<W: AsyncWrite + Unpin>(writer: &mut W, mut text: String) -> io::Result<()> {
    // In valid JSON a line break can only be whitespace between tokens (inside a string it is
    // escaped), so a space in its place keeps the message the same and on one line. Raw JSON a
    // handler built by hand may have them.
    if text.contains(['\n', '\r']) {
        text = text.replace(['\n', '\r'], " ");
    }
    text.push('\n');
    writer.write_all(text.as_bytes()).await?;
    writer.flush().await
}

/// Whether `error` means the other side closed the stream.
fn is_gone(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset | io::ErrorKind::NotConnected
    )
}
