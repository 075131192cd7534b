//! Calls whose progress Python follows: a `NativeProgress` receives, in order, every
//! `notifications/progress` the server sends about one call before the call's result, and
//! ends once the call has ended, so Python can hand each report to the `progress_callback`
//! before the call returns.
//!
//! The reports come from a per-call [`CallObserver`] of the client core, which gives it the
//! call's progress (matched by token) on the transport's reading path before it delivers the
//! call's result; the notification stream, which Python reads on a task of its own, may trail
//! the result, so it cannot promise that. The server's questions about a followed call
//! (elicitation, sampling, roots) are not the observer's
//! ([`CallObserver::answers_requests`]): they go to the client's handler as any others do.
//!
//! The [`Ledger`] tells the notification reader which of the progress reports it reads came
//! after their call's result (so no callback got them).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use portico_core::client::{CallObserver, Observer};
use portico_protocol::v2026_07_28 as wire;
use pyo3::prelude::*;
use serde_json::value::RawValue;
use tokio::sync::Notify;

/// The method of progress notifications.
const PROGRESS: &str = "notifications/progress";

/// How many finished calls' tokens the [`Ledger`] keeps: a report that comes after the
/// results of this many later followed calls is no longer recognised as late.
const FINISHED_KEPT: usize = 256;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The progress tokens of one client's followed calls, each with the reports its observer
/// took that the notification reader has not read yet.
///
/// The reader reads every report the observer took, in the same order, each after the
/// observer was given it (the core hands a notification to the observer, then to the
/// notification stream); it also reads the reports the observer was not given: those sent
/// after the call's result (or between two `input_required` rounds, when the call is watched
/// round by round). So a report read is one the observer took exactly when it is among the
/// taken reports not read yet; the ones taken before it were then read, or lost by a reader
/// that fell behind, and are forgotten. Reports are told apart by their params: of two equal
/// reports of one call, the reader may take the later one for the earlier.
#[derive(Default)]
pub(crate) struct Ledger {
    tokens: Mutex<Tokens>,
}

#[derive(Default)]
struct Tokens {
    /// The taken reports not read yet (params as JSON text, oldest first), by the token's
    /// JSON text.
    unread: HashMap<String, VecDeque<String>>,
    /// The tokens of finished calls, oldest first (at most [`FINISHED_KEPT`]).
    finished: VecDeque<String>,
}

/// A progress report's params as the ledger compares them.
fn report_text(params: &wire::ProgressNotificationParams) -> Option<String> {
    serde_json::to_string(params).ok()
}

impl Ledger {
    fn start(&self, key: &str) {
        lock(&self.tokens).unread.insert(key.to_owned(), VecDeque::new());
    }

    /// The observer of `key` took `report`; at most `capacity` are kept unread (a reader that
    /// far behind has lost the oldest anyway).
    fn took(&self, key: &str, report: &str, capacity: usize) {
        if let Some(unread) = lock(&self.tokens).unread.get_mut(key) {
            while unread.len() >= capacity {
                unread.pop_front();
            }
            unread.push_back(report.to_owned());
        }
    }

    fn finish(&self, key: &str) {
        let mut tokens = lock(&self.tokens);
        tokens.finished.push_back(key.to_owned());
        while tokens.finished.len() > FINISHED_KEPT {
            if let Some(oldest) = tokens.finished.pop_front() {
                tokens.unread.remove(&oldest);
            }
        }
    }

    /// Whether a progress report the notification reader read is about a followed call and
    /// was not handed to that call's reader: sent after the call's result.
    pub(crate) fn late(&self, params: &wire::ProgressNotificationParams) -> bool {
        let (Ok(key), Some(report)) = (serde_json::to_string(&params.progress_token), report_text(params)) else {
            return false;
        };
        let mut tokens = lock(&self.tokens);
        let Some(unread) = tokens.unread.get_mut(&key) else {
            return false;
        };
        match unread.iter().position(|taken| *taken == report) {
            Some(at) => {
                unread.drain(..=at);
                false
            }
            None => true,
        }
    }
}

/// The progress of one followed call, shared by its `NativeProgress`, its observer and the
/// guard its request future holds.
struct Reports {
    /// The token's JSON text (the ledger's key).
    key: String,
    ledger: Arc<Ledger>,
    /// Reports kept for a reader that falls behind; beyond, the oldest are dropped.
    capacity: usize,
    state: Mutex<State>,
    /// Wakes the reader: a report arrived, or the call ended.
    wake: Notify,
}

#[derive(Default)]
struct State {
    /// Each report's params as JSON text.
    queue: VecDeque<String>,
    missed: u64,
    ended: bool,
}

impl Reports {
    /// Queues a report (dropping the oldest when the reader is `capacity` behind). Params that
    /// are no `ProgressNotificationParams` are dropped, as the notification stream makes them
    /// no progress report either; a report that races the end of the call is not taken (the
    /// reader counts it as late).
    fn push(&self, params: Option<&RawValue>) {
        let Some(report) = params
            .and_then(|p| serde_json::from_str::<wire::ProgressNotificationParams>(p.get()).ok())
            .and_then(|p| report_text(&p))
        else {
            return;
        };
        {
            let mut state = lock(&self.state);
            if state.ended {
                return;
            }
            while state.queue.len() >= self.capacity {
                state.queue.pop_front();
                state.missed += 1;
            }
            state.queue.push_back(report.clone());
        }
        self.ledger.took(&self.key, &report, self.capacity);
        self.wake.notify_one();
    }

    /// The call has ended: the reader gets what is queued, then the end. Once only.
    fn end(&self) {
        {
            let mut state = lock(&self.state);
            if state.ended {
                return;
            }
            state.ended = true;
        }
        self.ledger.finish(&self.key);
        self.wake.notify_one();
    }
}

impl Drop for Reports {
    fn drop(&mut self) {
        self.end();
    }
}

/// The reports of one call whose progress Python follows: `next()` resolves to each report's
/// params (JSON text), in the order the server sent them, then to `None` once the call has
/// ended (its result, or its error, is then ready).
#[pyclass(module = "portico._native", frozen)]
pub(crate) struct NativeProgress {
    reports: Arc<Reports>,
    /// The token the request carries.
    token: String,
}

impl NativeProgress {
    pub(crate) fn new(token: String, ledger: Arc<Ledger>, capacity: usize) -> PyResult<Self> {
        let key = serde_json::to_string(&wire::ProgressToken::String(token.clone()))
            .map_err(|e| crate::errors::usage(format!("progress token: {e}")))?;
        ledger.start(&key);
        let reports = Reports {
            key,
            ledger,
            capacity: capacity.max(1),
            state: Mutex::default(),
            wake: Notify::new(),
        };
        Ok(Self {
            reports: Arc::new(reports),
            token,
        })
    }

    /// The token to ask for progress with, and the observer that takes the call's reports (the
    /// server's questions about the call go to the client's handler as any others do).
    pub(crate) fn observe(&self) -> (wire::ProgressToken, Observer) {
        let follower = Follower {
            reports: self.reports.clone(),
        };
        (wire::ProgressToken::String(self.token.clone()), Observer::new(follower))
    }

    /// Ends the reports when dropped: give it to the call's future, so that they end when the
    /// call does — with its result, its error, or cancelled.
    pub(crate) fn guard(&self) -> EndGuard {
        EndGuard(self.reports.clone())
    }
}

/// Ends a call's reports when dropped.
pub(crate) struct EndGuard(Arc<Reports>);

impl Drop for EndGuard {
    fn drop(&mut self) {
        self.0.end();
    }
}

#[pymethods]
impl NativeProgress {
    /// The next report's params as JSON text, or `None` once the call has ended.
    fn next<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let reports = self.reports.clone();
        let in_flight = crate::InFlight::start();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let _in_flight = in_flight;
            loop {
                {
                    let mut state = lock(&reports.state);
                    if let Some(report) = state.queue.pop_front() {
                        return Ok(Some(report));
                    }
                    if state.ended {
                        return Ok(None);
                    }
                }
                // `notify_one` keeps a permit when nobody waits: no wake-up is lost between
                // the look above and this wait.
                reports.wake.notified().await;
            }
        })
    }

    /// How many reports were dropped because the reader fell more than the client's
    /// `notification_capacity` behind.
    fn missed(&self) -> u64 {
        lock(&self.reports.state).missed
    }
}

/// The observer of one followed call.
struct Follower {
    reports: Arc<Reports>,
}

impl CallObserver for Follower {
    fn notification(&self, method: &str, params: Option<&RawValue>) {
        // Log messages about the call take the usual way (the notification stream and the
        // logging callback), as they would without the observer.
        if method == PROGRESS {
            self.reports.push(params);
        }
    }

    fn answers_requests(&self) -> bool {
        false
    }
}
