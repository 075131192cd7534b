//! `portico-core`: the JSON-RPC 2.0 peer engine every Portico server, client and the gateway
//! run on, independent of transport and protocol revision.
//!
//! - [`message`]: decoding one inbound frame (a message or a batch) into envelopes whose `params`
//!   and `result` stay raw JSON until a handler decodes them, and encoding outbound messages;
//! - [`error`]: JSON-RPC error objects with the standard codes, and the errors of the engine;
//! - [`extensions`]: typed values a transport attaches to a request for its handler (an
//!   authenticated principal), and a client to a request for its transport (per-request
//!   credentials), without the core knowing the transport's types;
//! - [`peer`]: the [`Peer`]: request ids and correlation, per-request timeouts, cancellation
//!   (`notifications/cancelled`) both ways, progress notifications, a bound on concurrent
//!   handlers (back-pressure on the transport), handler panics isolated to their request, and
//!   batches where the negotiated revision allows them.
//!
//! - [`client`]: the client core: a [`client::Client`] over any transport, both protocol
//!   generations (`server/discover` or `initialize`), typed calls, `input_required` rounds
//!   answered by a [`client::ClientHandler`], notifications, subscriptions;
//! - [`mirror`]: values a transport carries beside the body (`Mcp-Name`, `Mcp-Param-*`): the
//!   Base64 sentinel, tools' `x-mcp-header` annotations, and the check that they match the body;
//! - [`server`]: the server framework: tools written once against the newest revision's types
//!   (arguments typed, `inputSchema` derived), served statelessly to 2026-07-28 clients and
//!   through `initialize` sessions to 2025-11-25 … 2024-11-05 clients.
//!
//! A transport feeds inbound frames to [`Peer::receive`] and writes what arrives on the peer's
//! outbound channel (or delivers it itself, through an [`Outlet`]).
//!
//! Features: `output-schema` (default) checks tools' `structuredContent` against their
//! `outputSchema` in the client with the `jsonschema` crate.

pub mod client;
pub mod error;
pub mod extensions;
pub mod message;
pub mod mirror;
pub mod peer;
pub mod server;

pub use error::{ErrorObject, PeerError};
pub use extensions::Extensions;
pub use message::{Inbound, JsonText, Message, RequestId};
pub use peer::{
    Answer, Handling, Outbound, OutboundKind, OutboundRequest, Outlet, Peer, PeerConfig, PeerHandle, RequestContext,
    Service,
};

/// `Box::pin(make())`, with the future made in its box rather than made and then copied there.
///
/// A future's size is that of its largest state, every future it awaits included, although it
/// starts out holding only its arguments: `Box::pin(handle(request))` copies all of it, kilobytes
/// for a request's handling, from where it was made into the box (measured with callgrind, ~300
/// instructions and a cache line written for each 64 bytes). Allocating the box first and making
/// the future into it (`Box::new_uninit` then `Box::write`, which the compiler then fuses) copies
/// nothing. Use it where a large future is boxed or spawned on every request.
///
/// ```
/// let answer = portico_core::boxed(|| async { 6 * 7 });
/// assert_eq!(futures_util::FutureExt::now_or_never(answer), Some(42));
/// ```
#[inline(always)]
pub fn boxed<F: std::future::Future>(make: impl FnOnce() -> F) -> std::pin::Pin<Box<F>> {
    Box::into_pin(Box::write(Box::new_uninit(), make()))
}

/// Runs `future` until it completes, or until `token` is cancelled (then `None`, and the future
/// is dropped): the future does not start when `token` is cancelled already, and once it has
/// waited, the cancellation is looked at before it is polled again, so a future cancelled
/// meanwhile does nothing more.
///
/// Its first poll is the future's alone: one that completes at once (most request handlers)
/// completes without a waiter being registered with `token` and removed again. A
/// `select!` over the two registers one on every first poll (and, unbiased, polls the
/// cancellation first half the time): ~0.2–0.3k instructions, two locks of the token's mutex.
///
/// ```
/// let token = tokio_util::sync::CancellationToken::new();
/// let answer = portico_core::unless_cancelled(&token, async { 6 * 7 });
/// assert_eq!(futures_util::FutureExt::now_or_never(answer), Some(Some(42)));
/// token.cancel();
/// let answer = portico_core::unless_cancelled(&token, async { unreachable!("not started") });
/// assert_eq!(futures_util::FutureExt::now_or_never(answer), Some(None));
/// ```
pub async fn unless_cancelled<F: std::future::Future>(
    token: &tokio_util::sync::CancellationToken,
    future: F,
) -> Option<F::Output> {
    use std::task::Poll;
    if token.is_cancelled() {
        return None;
    }
    let mut future = std::pin::pin!(future);
    let mut cancelled = std::pin::pin!(token.cancelled());
    let mut waited = false;
    std::future::poll_fn(|cx| {
        if waited && cancelled.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        if !waited {
            waited = true;
            // Registered now, for the wake-up a cancellation brings.
            if cancelled.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
        }
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Waker};

    use tokio_util::sync::CancellationToken;

    use super::unless_cancelled;

    #[test]
    fn a_future_that_waits_is_polled_until_cancelled_and_never_after() {
        let token = CancellationToken::new();
        let polls = Arc::new(AtomicUsize::new(0));
        let counted = polls.clone();
        let waits = std::future::poll_fn(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
            Poll::<()>::Pending
        });
        let mut run = pin!(unless_cancelled(&token, waits));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(run.as_mut().poll(&mut cx).is_pending());
        assert!(run.as_mut().poll(&mut cx).is_pending());
        assert_eq!(polls.load(Ordering::SeqCst), 2);
        token.cancel();
        assert_eq!(run.as_mut().poll(&mut cx), Poll::Ready(None));
        assert_eq!(polls.load(Ordering::SeqCst), 2, "not polled once cancelled");
    }

    #[tokio::test]
    async fn a_cancellation_wakes_a_future_that_waits() {
        let token = CancellationToken::new();
        let run = tokio::spawn({
            let token = token.clone();
            async move { unless_cancelled(&token, std::future::pending::<()>()).await }
        });
        tokio::task::yield_now().await;
        token.cancel();
        let outcome = tokio::time::timeout(std::time::Duration::from_secs(5), run)
            .await
            .expect("woken by the cancellation");
        assert_eq!(outcome.expect("no panic"), None);
    }
}
