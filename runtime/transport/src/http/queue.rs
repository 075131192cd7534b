//! The queue between the messages of a request (or of a session's GET stream) and the HTTP
//! response carrying them: bounded, one reader, made for the few messages a request sends.
//!
//! Every POST's answer is read from one: a 2026-07-28 request's own peer writes to it as its
//! [`Outlet`] (the peer serves that request alone), a session routes each message of a request
//! to the queue of the response carrying that request's stream. Usually a queue carries one
//! message, the answer. A tokio channel per response cost a block of 32 slots (~2.3 KiB) and a
//! semaphore; this is a `VecDeque` (allocated on the first message) behind a mutex, with two
//! [`Notify`]s, in one allocation.
//!
//! It behaves as that channel did: a send waits while the queue holds its capacity
//! (back-pressure) and fails once the receiver is gone or closed; [`Receiver::recv`] ends
//! (`None`) once every [`Sender`] is dropped and nothing is left.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use portico_core::{Outbound, Outlet};
use tokio::sync::Notify;

/// A bounded queue of one request's outbound messages.
pub(crate) struct Queue {
    state: Mutex<State>,
    capacity: usize,
    /// Notified when a message is queued or the sender is gone (one reader: a stored permit
    /// covers a message queued before the reader waits).
    readable: Notify,
    /// Notified when a message is taken (one waiting sender) or the receiver is gone (all).
    writable: Notify,
}

struct State {
    messages: VecDeque<Outbound>,
    /// The receiver is gone or closed: sends fail.
    receiver_gone: bool,
    /// The senders alive; at none, once empty, the queue ends.
    senders: usize,
}

/// A writing end (a stateless peer's [`Outlet`], a session's route); dropping the last one
/// ends the queue.
pub(crate) struct Sender(Arc<Queue>);

/// The reading end; dropping it fails later sends.
pub(crate) struct Receiver(Arc<Queue>);

/// A queue holding at most `capacity` messages (at least one).
pub(crate) fn queue(capacity: usize) -> (Sender, Receiver) {
    let queue = Arc::new(Queue {
        state: Mutex::new(State {
            messages: VecDeque::new(),
            receiver_gone: false,
            senders: 1,
        }),
        capacity: capacity.max(1),
        readable: Notify::new(),
        writable: Notify::new(),
    });
    (Sender(queue.clone()), Receiver(queue))
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `message` if there is room; gives it back with whether waiting could help.
    fn push(&self, message: Outbound) -> Result<(), (Outbound, bool)> {
        let mut state = self.lock();
        if state.receiver_gone {
            return Err((message, false));
        }
        if state.messages.len() >= self.capacity {
            return Err((message, true));
        }
        state.messages.push_back(message);
        drop(state);
        self.readable.notify_one();
        Ok(())
    }
}

impl Sender {
    /// Queues `message`, waiting while the queue is full; gives it back once the receiver is
    /// gone or closed.
    pub(crate) async fn send(&self, mut message: Outbound) -> Result<(), Outbound> {
        loop {
            // Registered before trying, so a message taken (or the receiver leaving) in
            // between is not missed.
            let writable = self.0.writable.notified();
            tokio::pin!(writable);
            writable.as_mut().enable();
            match self.0.push(message) {
                Ok(()) => return Ok(()),
                Err((back, true)) => message = back,
                Err((back, false)) => return Err(back),
            }
            writable.await;
        }
    }

    /// Queues `message` if there is room now; gives it back otherwise.
    pub(crate) fn try_send(&self, message: Outbound) -> Result<(), Outbound> {
        self.0.push(message).map_err(|(message, _)| message)
    }

    /// Whether the receiver is gone or closed (sends fail).
    pub(crate) fn is_closed(&self) -> bool {
        self.0.lock().receiver_gone
    }
}

impl Clone for Sender {
    fn clone(&self) -> Self {
        self.0.lock().senders += 1;
        Self(self.0.clone())
    }
}

impl Outlet for Sender {
    fn send(&self, message: Outbound) -> Pin<Box<dyn Future<Output = Result<(), Outbound>> + Send + '_>> {
        Box::pin(Sender::send(self, message))
    }

    fn try_send(&self, message: Outbound) -> Result<(), Outbound> {
        Sender::try_send(self, message)
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.senders -= 1;
        if state.senders == 0 {
            drop(state);
            self.0.readable.notify_one();
        }
    }
}

impl Receiver {
    /// The next message; `None` once the sender is gone and the queue is empty.
    pub(crate) async fn recv(&mut self) -> Option<Outbound> {
        loop {
            {
                let mut state = self.0.lock();
                if let Some(message) = state.messages.pop_front() {
                    drop(state);
                    self.0.writable.notify_one();
                    return Some(message);
                }
                if state.senders == 0 {
                    return None;
                }
            }
            self.0.readable.notified().await;
        }
    }

    /// The next message if one is queued.
    pub(crate) fn try_recv(&mut self) -> Option<Outbound> {
        let message = self.0.lock().messages.pop_front();
        if message.is_some() {
            self.0.writable.notify_one();
        }
        message
    }

    /// Closes the queue for sending: sends fail from now on, and what is queued can still be
    /// taken.
    pub(crate) fn close(&mut self) {
        self.0.lock().receiver_gone = true;
        self.0.writable.notify_waiters();
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.close();
    }
}
