//! How a call's result reaches asyncio without the runtime's thread taking the GIL.
//!
//! `pyo3_async_runtimes::tokio::future_into_py` resolves the asyncio future from the tokio
//! thread with `loop.call_soon_threadsafe`, which needs the GIL. The interpreter thread holds
//! the GIL while it runs the event loop, so the tokio thread waited for it, and `send` on the
//! loop's self-pipe releases and takes it once more: the GIL went back and forth between the
//! two threads on every call, and the one tokio worker could start no other request meanwhile.
//! `perf` of the sequential cells of `cargo xtask bench sdk` showed about 6.5 context switches
//! per call and most of the process's time in the kernel.
//!
//! Here each event loop gets an [`Inbox`]: a queue of finished calls and a socket pair whose
//! reading end the loop watches (`loop.add_reader`). The tokio side pushes the outcome and
//! writes one byte when the queue was empty — no GIL, no Python call. The loop, on its own
//! thread with the GIL it already holds, drains the queue and resolves the futures
//! ([`Inbox::drain`]), turning errors into exceptions there (`errors::to_py`).
//!
//! Cancelling the asyncio future (a cancelled task, a timeout, the caller's context exiting)
//! aborts the tokio task, which drops the call's future and so cancels the request on the wire,
//! as before. The inboxes live in a `weakref.WeakKeyDictionary` keyed by loop: a loop that is
//! collected takes its inbox (and its sockets) with it.
//!
//! Unix only (a Unix socket pair); elsewhere calls go through `future_into_py` as before
//! (`client::run`).

use std::collections::HashMap;
use std::future::Future;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use portico_core::client::ClientError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use serde::Serialize;

use crate::errors;

/// What a call ended with, made into a Python value or exception by the loop's thread.
enum Outcome {
    /// The result, as JSON text.
    Json(String),
    /// The client core's error.
    Failed(ClientError),
    /// The result could not be encoded.
    Encode(String),
}

/// The finished calls of one event loop and the signal that wakes it.
struct Shared {
    done: Mutex<Vec<(u64, Outcome)>>,
    /// The writing end of the loop's socket pair (non-blocking).
    signal: UnixStream,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Queues an outcome; wakes the loop when the queue was empty (a loop that has not drained
    /// the earlier ones yet will find this one with them).
    fn deliver(&self, slot: u64, outcome: Outcome) {
        let first = {
            let mut done = lock(&self.done);
            done.push((slot, outcome));
            done.len() == 1
        };
        if first {
            // A full socket means a wake-up is pending already; a closed one, that the loop is
            // gone: neither needs another byte.
            let _ = (&self.signal).write(&[1]);
        }
    }
}

/// One event loop's inbox of finished calls.
#[pyclass(module = "portico._native", frozen)]
pub(crate) struct Inbox {
    shared: Arc<Shared>,
    /// The reading end, watched by the loop.
    wake: UnixStream,
    /// The asyncio futures of the calls in flight, by slot.
    waiting: Mutex<HashMap<u64, Py<PyAny>>>,
    next: AtomicU64,
}

#[pymethods]
impl Inbox {
    /// The loop's reader callback: resolves every finished call.
    fn drain(&self, py: Python<'_>) -> PyResult<()> {
        let mut buffer = [0u8; 64];
        loop {
            match (&self.wake).read(&mut buffer) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let done = std::mem::take(&mut *lock(&self.shared.done));
        for (slot, outcome) in done {
            let Some(future) = lock(&self.waiting).remove(&slot) else {
                continue;
            };
            let future = future.bind(py);
            // One future that cannot take its outcome must not strand the others drained
            // with it: its error is reported as unraisable and the loop goes on.
            if let Err(error) = resolve(py, future, outcome) {
                error.write_unraisable(py, Some(future));
            }
        }
        Ok(())
    }
}

/// Sets `future`'s result or exception, unless it is done already (cancelled meanwhile: its
/// outcome has nowhere to go).
fn resolve(py: Python<'_>, future: &Bound<'_, PyAny>, outcome: Outcome) -> PyResult<()> {
    if future.call_method0("done")?.is_truthy()? {
        return Ok(());
    }
    match outcome {
        Outcome::Json(text) => future.call_method1("set_result", (text,))?,
        Outcome::Failed(error) => future.call_method1("set_exception", (errors::to_py(error).into_value(py),))?,
        Outcome::Encode(message) => future.call_method1(
            "set_exception",
            (errors::usage(format!("encoding the result: {message}")).into_value(py),),
        )?,
    };
    Ok(())
}

/// Aborts a call's tokio task when its asyncio future is cancelled (a done callback).
#[pyclass(module = "portico._native", frozen)]
struct Abort {
    task: tokio::task::AbortHandle,
    inbox: Py<Inbox>,
    slot: u64,
}

#[pymethods]
impl Abort {
    fn __call__(&self, future: &Bound<'_, PyAny>) -> PyResult<()> {
        if future.call_method0("cancelled")?.is_truthy()? {
            self.task.abort();
            lock(&self.inbox.get().waiting).remove(&self.slot);
        }
        Ok(())
    }
}

/// The inbox of `event_loop`, made and watched the first time.
fn inbox_of<'py>(py: Python<'py>, event_loop: &Bound<'py, PyAny>) -> PyResult<Bound<'py, Inbox>> {
    static INBOXES: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let inboxes = INBOXES
        .get_or_try_init(py, || -> PyResult<Py<PyAny>> {
            Ok(py.import("weakref")?.getattr("WeakKeyDictionary")?.call0()?.unbind())
        })?
        .bind(py);
    if let Some(inbox) = inboxes
        .call_method1("get", (event_loop,))?
        .extract::<Option<Bound<'py, Inbox>>>()?
    {
        return Ok(inbox);
    }
    let (wake, signal) = UnixStream::pair().map_err(|e| errors::usage(format!("a socket pair for results: {e}")))?;
    wake.set_nonblocking(true)
        .and_then(|()| signal.set_nonblocking(true))
        .map_err(|e| errors::usage(format!("a socket pair for results: {e}")))?;
    let fd = wake.as_raw_fd();
    let inbox = Bound::new(
        py,
        Inbox {
            shared: Arc::new(Shared {
                done: Mutex::new(Vec::new()),
                signal,
            }),
            wake,
            waiting: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
        },
    )?;
    event_loop.call_method1("add_reader", (fd, inbox.getattr("drain")?))?;
    inboxes.set_item(event_loop, &inbox)?;
    Ok(inbox)
}

/// `fut` as an asyncio awaitable of the running loop, resolving to its value as JSON text.
pub(crate) fn spawn<'py, T, F>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    T: Serialize + Send + 'static,
    F: Future<Output = Result<T, ClientError>> + Send + 'static,
{
    let event_loop = pyo3_async_runtimes::get_running_loop(py)?;
    let inbox = inbox_of(py, &event_loop)?;
    let future = event_loop.call_method0("create_future")?;
    let slot = inbox.get().next.fetch_add(1, Ordering::Relaxed);
    lock(&inbox.get().waiting).insert(slot, future.clone().unbind());
    let shared = inbox.get().shared.clone();
    let in_flight = crate::InFlight::start();
    let task = pyo3_async_runtimes::tokio::get_runtime().spawn(async move {
        let outcome = match fut.await {
            Ok(value) => match serde_json::to_string(&value) {
                Ok(text) => Outcome::Json(text),
                Err(e) => Outcome::Encode(e.to_string()),
            },
            Err(error) => Outcome::Failed(error),
        };
        // No longer counted once Python can see the result: a caller that has it finds the
        // call gone from `in_flight()`.
        drop(in_flight);
        shared.deliver(slot, outcome);
    });
    let abort = Abort {
        task: task.abort_handle(),
        inbox: inbox.unbind(),
        slot,
    };
    future.call_method1("add_done_callback", (abort,))?;
    Ok(future)
}
