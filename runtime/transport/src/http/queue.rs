//! The queue between a 2026-07-28 request's own peer and its HTTP response: bounded, one
//! reader, made for the few messages one request sends.
//!
//! A stateless request's peer serves that request alone, so its outbound messages (progress,
//! log lines, then the answer; usually the answer alone) all go to one response. A tokio
//! channel per request costs a channel block of 32 slots (~2.3 KiB) and its semaphore; this
//! queue is a `VecDeque` (allocated on the first message) behind a mutex, with two [`Notify`]s,
//! in one allocation. The peer writes through it as its [`Outlet`]; [`Receiver`] reads it.
//!
//! It behaves as the channel did: a send waits while [`Queue`] holds its capacity
//! (back-pressure), and fails once the receiver is gone; [`Receiver::recv`] ends (`None`) once
//! the sender, which the peer keeps for as long as any of its handles lives, is dropped.

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
    /// The receiver is gone: sends fail.
    receiver_gone: bool,
    /// The sender is gone: once empty, the queue ends.
    sender_gone: bool,
}

/// The writing end, handed to the peer as its [`Outlet`]; dropping it ends the queue.
pub(crate) struct Sender(Arc<Queue>);

/// The reading end; dropping it fails later sends.
pub(crate) struct Receiver(Arc<Queue>);

/// A queue holding at most `capacity` messages (at least one).
pub(crate) fn queue(capacity: usize) -> (Sender, Receiver) {
    let queue = Arc::new(Queue {
        state: Mutex::new(State {
            messages: VecDeque::new(),
            receiver_gone: false,
            sender_gone: false,
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

impl Outlet for Sender {
    fn send(&self, message: Outbound) -> Pin<Box<dyn Future<Output = Result<(), Outbound>> + Send + '_>> {
        Box::pin(async move {
            let mut message = message;
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
        })
    }

    fn try_send(&self, message: Outbound) -> Result<(), Outbound> {
        self.0.push(message).map_err(|(message, _)| message)
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.0.lock().sender_gone = true;
        self.0.readable.notify_one();
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
                if state.sender_gone {
                    return None;
                }
            }
            self.0.readable.notified().await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.0.lock().receiver_gone = true;
        self.0.writable.notify_waiters();
    }
}
