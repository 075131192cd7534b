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
    /// Notified when a message is taken from a full queue (one waiting sender: only a full
    /// queue has any) or the receiver is gone (all).
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

    /// Takes the first message from the locked `state`, if any, and releases the lock; a sender
    /// waits only on a full queue, so only taking from one wakes a sender.
    fn pop(&self, mut state: MutexGuard<'_, State>) -> Option<Outbound> {
        let was_full = state.messages.len() >= self.capacity;
        let message = state.messages.pop_front();
        drop(state);
        if was_full {
            self.writable.notify_one();
        }
        message
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
        // Most sends find room: no waiter is registered for them.
        match self.0.push(message) {
            Ok(()) => return Ok(()),
            Err((back, true)) => message = back,
            Err((back, false)) => return Err(back),
        }
        loop {
            // Registered before trying again, so a message taken (or the receiver leaving) in
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
                let state = self.0.lock();
                if !state.messages.is_empty() {
                    return self.0.pop(state);
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
        self.0.pop(self.0.lock())
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn message(n: usize) -> Outbound {
        Outbound::message(format!("{n}"), None)
    }

    async fn pending<F: Future>(future: &mut Pin<&mut F>) -> bool {
        tokio::time::timeout(Duration::from_millis(20), future.as_mut())
            .await
            .is_err()
    }

    #[tokio::test]
    async fn a_full_queue_holds_its_senders_until_a_message_is_taken_and_keeps_their_order() {
        let (tx, mut rx) = queue(2);
        tx.send(message(0)).await.expect("room");
        tx.send(message(1)).await.expect("room");
        // Two senders wait on the full queue.
        let (a, b) = (tx.clone(), tx.clone());
        // Each owns its sender, dropped as it completes.
        let mut third = std::pin::pin!(async move { a.send(message(2)).await });
        let mut fourth = std::pin::pin!(async move { b.send(message(3)).await });
        assert!(pending(&mut third).await);
        assert!(pending(&mut fourth).await);
        // Each message taken lets one through.
        assert_eq!(rx.try_recv().map(|m| m.text), Some("0".into()));
        assert!(
            tokio::time::timeout(Duration::from_secs(5), third.as_mut())
                .await
                .expect("woken")
                .is_ok()
        );
        assert!(pending(&mut fourth).await, "the queue is full again");
        assert_eq!(rx.recv().await.map(|m| m.text), Some("1".into()));
        assert!(
            tokio::time::timeout(Duration::from_secs(5), fourth.as_mut())
                .await
                .expect("woken")
                .is_ok()
        );
        drop(tx);
        let rest: Vec<String> = std::iter::from_fn(|| rx.try_recv()).map(|m| m.text).collect();
        assert_eq!(rest, ["2", "3"]);
        assert!(rx.recv().await.is_none(), "every sender is gone");
    }

    #[tokio::test]
    async fn a_sender_waiting_on_a_full_queue_fails_when_the_receiver_closes_it() {
        let (tx, mut rx) = queue(1);
        tx.send(message(0)).await.expect("room");
        let mut waiting = std::pin::pin!(tx.send(message(1)));
        assert!(pending(&mut waiting).await);
        rx.close();
        let refused = tokio::time::timeout(Duration::from_secs(5), waiting.as_mut())
            .await
            .expect("woken");
        assert_eq!(refused.expect_err("closed").text, "1");
        // What was queued can still be taken; nothing more is.
        assert_eq!(rx.try_recv().map(|m| m.text), Some("0".into()));
        assert!(tx.send(message(2)).await.is_err());
        assert!(tx.is_closed());
    }

    #[tokio::test]
    async fn many_senders_through_a_small_queue_lose_and_reorder_nothing_of_their_own() {
        let (tx, mut rx) = queue(1);
        let mut tasks = Vec::new();
        for sender in 0..4 {
            let tx = tx.clone();
            tasks.push(tokio::spawn(async move {
                for n in 0..200 {
                    tx.send(message(sender * 1000 + n)).await.expect("the receiver stays");
                }
            }));
        }
        drop(tx);
        let mut seen = [0usize; 4];
        while let Some(message) = rx.recv().await {
            let n: usize = message.text.parse().expect("a number");
            let (sender, i) = (n / 1000, n % 1000);
            assert_eq!(seen[sender], i, "sender {sender}'s messages in order");
            seen[sender] += 1;
        }
        assert_eq!(seen, [200; 4]);
        for task in tasks {
            task.await.expect("done");
        }
    }
}
