//! An in-process client transport: the client's peer and a server's peer wired back to back
//! through bounded channels, each message handed over as its JSON text, as a real transport
//! would. The gateway uses it for built-in servers running in its own process; tests use it to
//! drive a server without sockets or child processes.

use std::future::Future;
use std::io;
use std::pin::Pin;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::ClientTransport;
use crate::message::Inbound;
use crate::peer::{Outbound, OutboundKind, Peer, PeerConfig, PeerHandle, Service};

/// The client's end of an in-process connection to a server (see [`connect`]).
pub struct MemoryTransport<C: Service, S: Service> {
    client: Peer<C>,
    server: Peer<S>,
    tasks: [JoinHandle<()>; 2],
}

impl<C: Service, S: Service> std::fmt::Debug for MemoryTransport<C, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTransport").finish_non_exhaustive()
    }
}

/// Wires a client peer serving `client` (for the server's requests: a
/// [`super::ClientService`]) to a server peer serving `server` (for a
/// [`crate::server::Server`]: `server.connection()`), each with `config`. Must be called within
/// a Tokio runtime: two tasks carry the messages.
pub fn connect<C: Service, S: Service>(client: C, server: S, config: PeerConfig) -> MemoryTransport<C, S> {
    let (client_tx, client_rx) = mpsc::channel(64);
    let (server_tx, server_rx) = mpsc::channel(64);
    let client = Peer::new(client, config.clone(), client_tx);
    let server = Peer::new(server, config, server_tx);
    let tasks = [
        tokio::spawn(carry(client_rx, server.clone())),
        tokio::spawn(carry(server_rx, client.clone())),
    ];
    MemoryTransport { client, server, tasks }
}

/// Hands what one peer sends to the other. A message sent by a request's handler (progress,
/// a log message, a question) reaches the other side with that request as its origin, as a
/// Streamable HTTP response stream would carry it ([`Peer::receive_in`]).
async fn carry<S: Service>(mut from: mpsc::Receiver<Outbound>, to: Peer<S>) {
    while let Some(message) = from.recv().await {
        if message.kind != OutboundKind::Message {
            continue;
        }
        if let (Some(origin), None) = (&message.related, message.answer)
            && let Inbound::Single(Ok(decoded)) = crate::message::decode(&message.text)
        {
            to.receive_in(decoded, Some(origin.clone())).await;
            continue;
        }
        to.receive(&message.text).await;
    }
}

impl<C: Service, S: Service> MemoryTransport<C, S> {
    /// The client's peer.
    pub fn peer(&self) -> &Peer<C> {
        &self.client
    }

    /// The server's peer.
    pub fn server(&self) -> &Peer<S> {
        &self.server
    }

    /// Closes both peers: waiting requests fail with [`crate::PeerError::Closed`].
    pub fn shutdown(self) {
        drop(self);
    }
}

impl<C: Service, S: Service> Drop for MemoryTransport<C, S> {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        self.client.close();
        self.server.close();
    }
}

impl<C: Service, S: Service> ClientTransport for MemoryTransport<C, S> {
    fn handle(&self) -> PeerHandle {
        self.client.handle().clone()
    }

    fn close(self: Box<Self>) -> Pin<Box<dyn Future<Output = io::Result<()>> + Send>> {
        drop(self);
        Box::pin(async { Ok(()) })
    }
}
