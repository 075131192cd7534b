//! `portico._native`: the native module of Portico's Python SDK. It puts Portico's one Rust
//! client core (`portico_core::client`) and its transports behind a small asyncio API that the
//! pure-Python package `portico` wraps; Python users never import it directly.
//!
//! What crosses the boundary is deliberately plain: requests, results and notifications travel
//! as JSON text (the wire types' own serde), so the Python side owns the user-facing shapes
//! (attribute access, exceptions, callbacks) and this module owns only I/O and the protocol.
//!
//! - `connect` ([`connect`]): a transport (Streamable HTTP, WebSocket, legacy HTTP+SSE or a
//!   spawned stdio command) and the client on it, as an awaitable `NativeClient`;
//! - [`client`]: the calls, each an awaitable that drops (and so cancels) its request when the
//!   asyncio future is cancelled, its result handed to the loop by `complete` (Unix);
//! - [`handler`]: the server's questions (sampling, elicitation, roots) answered by a Python
//!   coroutine on the caller's event loop;
//! - [`follow`]: the progress of a call handed to Python in order, before the call returns;
//! - [`notify`]: notifications and `subscriptions/listen`;
//! - [`errors`]: every `ClientError` as an exception of `portico.errors`, in one place.
//!
//! One tokio runtime serves the whole process (pyo3-async-runtimes' global runtime).

/// mimalloc for the module's own allocations (the client core's requests, results and futures;
/// Python's objects keep Python's allocator): with the system allocator, `malloc` and `free`
/// were about a seventh of the client core's instructions per call (`cargo xtask bench client`
/// under callgrind). The `portico` binary uses it for the same reason.
#[global_allocator]
static ALLOCATOR: portico_alloc::Mimalloc = portico_alloc::Mimalloc;

mod client;
#[cfg(unix)]
mod complete;
mod connect;
mod errors;
mod follow;
mod handler;
mod notify;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

/// Calls of this module running on the tokio runtime (see [`quiesce`]).
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Counts one running call for [`quiesce`] while it lives.
pub(crate) struct InFlight(());

impl InFlight {
    pub(crate) fn start() -> Self {
        IN_FLIGHT.fetch_add(1, Ordering::AcqRel);
        Self(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How many calls of this module are running on the tokio runtime (each open client's
/// notification reader is one). The tests use it to see that cancelled and closed calls free
/// their Rust task.
#[pyfunction]
fn in_flight() -> usize {
    IN_FLIGHT.load(Ordering::Acquire)
}

/// The process's tokio runtime: one worker thread. The Rust side of a call (encoding,
/// HTTP, decoding) is a few tens of microseconds, far less than the Python side, which one
/// interpreter thread runs, so one worker keeps up with any number of calls in flight; what
/// more workers bought was hand-offs. With one per core (tokio's default), each call woke and
/// parked several threads: about 7 context switches a call, which cost more than the call's own
/// work (`perf` of `cargo xtask bench sdk`'s sequential cells: about 60% of the process's time
/// in the kernel, most of it switching).
fn runtime() -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(1).thread_name("portico-io").enable_all();
    builder
}

/// Waits, without the GIL, up to `timeout` seconds for the calls still running to end, then
/// a moment more for the runtime's threads to hand their results to Python.
///
/// `portico` calls it from an `atexit` hook. A runtime thread that attaches to the
/// interpreter once it is finalizing is ended by CPython in the middle of Rust code, which
/// aborts the process; letting the last completions through before finalization avoids that.
#[pyfunction]
fn quiesce(py: Python<'_>, timeout: f64) {
    let until = Instant::now() + Duration::try_from_secs_f64(timeout).unwrap_or_default();
    py.detach(|| {
        while IN_FLIGHT.load(Ordering::Acquire) > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(20));
    });
}

/// The module `portico._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    pyo3_async_runtimes::tokio::init(runtime());
    m.add_function(wrap_pyfunction!(connect::connect, m)?)?;
    m.add_function(wrap_pyfunction!(quiesce, m)?)?;
    m.add_function(wrap_pyfunction!(in_flight, m)?)?;
    m.add_class::<client::NativeClient>()?;
    m.add_class::<follow::NativeProgress>()?;
    m.add_class::<notify::NativeNotifications>()?;
    m.add_class::<notify::NativeSubscription>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
