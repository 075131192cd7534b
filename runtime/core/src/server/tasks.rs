//! The tasks extension (`io.modelcontextprotocol/tasks`, SEP-2663, 2026-07-28): a `tools/call`
//! answered with a task handle (`resultType: "task"`) while the tool keeps running, polled with
//! `tasks/get`, fed input with `tasks/update`, stopped with `tasks/cancel`.
//!
//! # What a server author does
//!
//! ```
//! use portico_core::server::tasks::{InMemoryTaskStore, TaskSupport};
//! use portico_core::server::{Server, tool};
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct Job {
//!     seconds: u64,
//! }
//!
//! let server = Server::builder("demo", "1.0.0")
//!     .tasks(InMemoryTaskStore::default())
//!     .tool(
//!         tool("render", "Renders a long video", |_cx, job: Job| async move {
//!             tokio::time::sleep(std::time::Duration::from_secs(job.seconds)).await;
//!             "rendered"
//!         })
//!         .with_task_support(TaskSupport::Optional),
//!     )
//!     .build();
//! let caps = server.capabilities();
//! assert!(caps.extensions.expect("extensions").contains_key("io.modelcontextprotocol/tasks"));
//! ```
//!
//! # Decisions
//!
//! - **The server decides; the tool says what it supports.** [`TaskSupport`] on a
//!   [`Tool`]: `Forbidden` (the default) never makes a task; `Optional` makes one
//!   whenever the request's client capabilities (`_meta`, per request — never an earlier
//!   request's) name the extension, and runs synchronously otherwise; `Required` refuses a client
//!   that did not declare it with `-32021`, naming the extension in
//!   `data.requiredCapabilities.extensions`, before the handler runs. The 2026-07-28 `Tool` has no
//!   member for this, so it is not advertised. A client's legacy (2025-11-25) `task` param is an
//!   unknown member and is ignored.
//! - **When the task is created.** By default ([`TaskStart::Call`]) the task is created, durably
//!   (the store has it before the handle is sent, so an immediate `tasks/get` resolves), before the
//!   handler runs. With [`TaskStart::Handler`] the handler first runs as an ordinary call — it can
//!   gather input through `input_required` rounds (SEP-2322) — and calls
//!   [`Context::start_task`](super::Context::start_task) once it has what it needs; the call is
//!   then answered with the task handle (never carrying `requestState`) and the handler goes on.
//!   A handler that returns without starting one answers synchronously.
//! - **Input inside a task.** `cx.elicit(…)` and friends, in a started task, park the task in
//!   `input_required` with the question under a key unique over the task's life (`elicit-0`,
//!   `elicit-1`, … continuing the round counters, or the handler's own key), and wait for
//!   `tasks/update`. Answers to keys that are not outstanding are ignored; a partial answer leaves
//!   the task in `input_required` with only the unanswered keys; the last answer puts it back to
//!   `working`. Answers gathered in `input_required` rounds before the task started are found
//!   again by their keys.
//! - **Outcomes.** A handler that returns a result (also `isError: true`) completes the task with
//!   the result inlined; a protocol error (`ErrorObject`) or a panic fails it with the JSON-RPC
//!   error inlined and its message as `statusMessage`. Terminal states are final: the store
//!   refuses to change them, so a cancel racing a completion is settled by whichever lands
//!   first.
//! - **Cancellation.** `tasks/cancel` marks the task `cancelled` and drops the handler's future at
//!   its next await point (as a cancelled request's is); [`Context::cancelled`](super::Context::cancelled)
//!   fires first for handlers that watch it. Cancelling a terminal task is acknowledged and
//!   changes nothing. `notifications/cancelled` does not touch tasks.
//! - **TTL.** Every task has `ttlMs` from its creation ([`TaskConfig::ttl`]); the store forgets it
//!   after that (an unknown task is `-32602`) and a handler still running then is dropped.
//! - **The store is pluggable** ([`TaskStore`]): it holds what `tasks/get` reports, so several
//!   replicas sharing one store answer polls alike. The running handler and its pending questions
//!   live in the process that runs it: `tasks/update` must reach that process (the spec's
//!   `Mcp-Name: <taskId>` header lets a load balancer route by task). [`InMemoryTaskStore`] is the
//!   default: bounded, expired tasks reaped as it goes.
//! - **Era.** The extension is 2026-07-28's: `tasks/get`, `tasks/update` and `tasks/cancel` are
//!   served to 2026-07-28 requests, and there `tasks/result` and `tasks/list` (2025-11-25's
//!   methods) are unknown (`-32601`). Sessions that negotiated 2025-11-25 get that revision's
//!   tasks over the same store and handlers ([`session`]); older sessions have none and run
//!   task-supporting tools synchronously.
//! - **Not done:** `notifications/tasks` on `subscriptions/listen` (optional in the SEP).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::FutureExt;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::input::InputError;
use super::tool::{CallToolResult, Tool};
use super::{Connection, Context, Era, MISSING_REQUIRED_CLIENT_CAPABILITY, decode};
use crate::error::ErrorObject;

pub mod session;

/// The extension's identifier, the key under `capabilities.extensions`.
pub const EXTENSION: &str = "io.modelcontextprotocol/tasks";

/// The methods of the extension.
pub const METHODS: &[&str] = &["tasks/get", "tasks/update", "tasks/cancel"];

/// A boxed future, for the object-safe [`TaskStore`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Whether a tool may run as a task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TaskSupport {
    /// Never: the tool always answers synchronously.
    #[default]
    Forbidden,
    /// When the client declared the extension on the request; synchronously otherwise.
    Optional,
    /// Only as a task: a client that did not declare the extension gets `-32021`.
    Required,
}

/// When a task-supporting tool's task is created (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TaskStart {
    /// Before the handler runs.
    #[default]
    Call,
    /// When the handler calls [`Context::start_task`] (after gathering input synchronously).
    Handler,
}

/// The status of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Running.
    Working,
    /// Waiting for the client's answers (`inputRequests`).
    InputRequired,
    /// Finished with a result (possibly `isError: true`).
    Completed,
    /// Finished with a JSON-RPC error.
    Failed,
    /// Cancelled before it finished.
    Cancelled,
}

impl TaskStatus {
    /// Whether the status is final (completed, failed or cancelled).
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

/// What a [`TaskStore`] keeps of one task: everything `tasks/get` reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRecord {
    /// The task's id: unguessable (128 random bits), it is the client's bearer of the task.
    pub task_id: String,
    /// The current status.
    pub status: TaskStatus,
    /// A human-readable note on the status (the error message of a failed task).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// Time of the last change, milliseconds since the Unix epoch.
    pub last_updated_at_ms: u64,
    /// How long after creation the task is kept; `None` for ever.
    pub ttl_ms: Option<u64>,
    /// The polling interval suggested to clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval_ms: Option<u64>,
    /// Outstanding questions to the client, by key (`{method, params}` each), while
    /// `input_required`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub input_requests: BTreeMap<String, Value>,
    /// The result of a completed task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The error of a failed task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorObject>,
}

impl TaskRecord {
    /// A `working` task created now.
    pub fn new(task_id: impl Into<String>, ttl: Option<Duration>, poll_interval: Option<Duration>) -> Self {
        let now = now_ms();
        Self {
            task_id: task_id.into(),
            status: TaskStatus::Working,
            status_message: None,
            created_at_ms: now,
            last_updated_at_ms: now,
            ttl_ms: ttl.map(duration_ms),
            poll_interval_ms: poll_interval.map(duration_ms),
            input_requests: BTreeMap::new(),
            result: None,
            error: None,
        }
    }

    /// Whether the TTL ran out at `now_ms`.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.ttl_ms
            .is_some_and(|ttl| now_ms >= self.created_at_ms.saturating_add(ttl))
    }

    /// The `Task` members every task message carries.
    fn task(&self) -> Map<String, Value> {
        let mut task = Map::new();
        task.insert("taskId".into(), self.task_id.clone().into());
        task.insert("status".into(), json!(self.status));
        if let Some(message) = &self.status_message {
            task.insert("statusMessage".into(), message.clone().into());
        }
        task.insert("createdAt".into(), iso8601(self.created_at_ms).into());
        task.insert("lastUpdatedAt".into(), iso8601(self.last_updated_at_ms).into());
        task.insert("ttlMs".into(), json!(self.ttl_ms));
        if let Some(poll) = self.poll_interval_ms {
            task.insert("pollIntervalMs".into(), poll.into());
        }
        task
    }

    /// The `CreateTaskResult` of the task (`resultType: "task"`; no result, error or questions).
    pub fn created(&self) -> Value {
        let mut task = self.task();
        task.insert("resultType".into(), "task".into());
        Value::Object(task)
    }

    /// The `tasks/get` result (a `DetailedTask`, `resultType: "complete"`): the status's own
    /// member (`inputRequests`, `result` or `error`) inlined.
    pub fn detailed(&self) -> Value {
        let mut task = self.task();
        task.insert("resultType".into(), "complete".into());
        match self.status {
            TaskStatus::InputRequired => {
                task.insert("inputRequests".into(), json!(self.input_requests));
            }
            TaskStatus::Completed => {
                task.insert("result".into(), self.result.clone().unwrap_or_else(|| json!({})));
            }
            TaskStatus::Failed => {
                let error = self
                    .error
                    .clone()
                    .unwrap_or_else(|| ErrorObject::internal("the task failed"));
                task.insert("error".into(), json!(error));
            }
            TaskStatus::Working | TaskStatus::Cancelled => {}
        }
        Value::Object(task)
    }

    fn touch(&mut self) {
        self.last_updated_at_ms = now_ms().max(self.last_updated_at_ms);
    }
}

/// Why a [`TaskStore`] could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum TaskStoreError {
    /// The store holds as many live tasks as it may.
    #[error("the task store is full ({capacity} live tasks)")]
    Full {
        /// How many it may hold.
        capacity: usize,
    },
    /// A task with this id exists already.
    #[error("a task with id {0:?} exists already")]
    Exists(String),
    /// The store's backend failed.
    #[error("the task store failed: {0}")]
    Backend(String),
}

/// Where tasks are kept. Object-safe (boxed futures), because a server holds one behind `Arc<dyn
/// TaskStore>` and shares it between connections; an implementation on a shared database lets
/// several replicas answer `tasks/get` alike.
///
/// Rules every implementation keeps:
/// - [`create`](Self::create) returns only once [`get`](Self::get) finds the task (durable,
///   strongly consistent creation);
/// - a task whose TTL ran out is never returned, and may be forgotten;
/// - a terminal task never changes: [`update`](Self::update) and [`cancel`](Self::cancel) leave
///   it as it is.
pub trait TaskStore: Send + Sync + 'static {
    /// Stores a new task.
    fn create(&self, task: TaskRecord) -> BoxFuture<'_, Result<(), TaskStoreError>>;

    /// The task with this id, unless unknown or expired.
    fn get<'a>(&'a self, task_id: &'a str) -> BoxFuture<'a, Result<Option<TaskRecord>, TaskStoreError>>;

    /// Replaces a live task's record; `false` (and no change) when the task is unknown, expired
    /// or already terminal.
    fn update(&self, task: TaskRecord) -> BoxFuture<'_, Result<bool, TaskStoreError>>;

    /// Marks a task `cancelled` unless it is terminal; the task as it now is, or `None` when
    /// unknown or expired.
    fn cancel<'a>(&'a self, task_id: &'a str) -> BoxFuture<'a, Result<Option<TaskRecord>, TaskStoreError>>;

    /// Every live task (for operators; `tasks/list` is not part of the extension).
    fn list(&self) -> BoxFuture<'_, Result<Vec<TaskRecord>, TaskStoreError>>;
}

/// The default [`TaskStore`]: in this process's memory, at most `capacity` tasks; expired tasks
/// are reaped as it goes (at most once a second, and whenever it is full); when full of live
/// tasks, the oldest terminal one makes room, and with none a new task is refused.
pub struct InMemoryTaskStore {
    capacity: usize,
    state: Mutex<MemoryState>,
}

#[derive(Default)]
struct MemoryState {
    tasks: HashMap<String, TaskRecord>,
    next_reap_ms: u64,
}

/// Default capacity of [`InMemoryTaskStore`].
pub const DEFAULT_STORE_CAPACITY: usize = 10_000;

impl Default for InMemoryTaskStore {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_STORE_CAPACITY)
    }
}

impl InMemoryTaskStore {
    /// A store holding at most `capacity` tasks (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            state: Mutex::new(MemoryState::default()),
        }
    }

    /// How many tasks it holds now, expired ones not yet reaped included.
    pub fn len(&self) -> usize {
        self.lock().tasks.len()
    }

    /// Whether it holds no task.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Inserts a new task, making room as the type's docs say.
    fn insert(&self, task: TaskRecord) -> Result<(), TaskStoreError> {
        let now = now_ms();
        let mut state = self.lock();
        Self::reap(&mut state, now, false);
        if state.tasks.contains_key(&task.task_id) {
            return Err(TaskStoreError::Exists(task.task_id));
        }
        if state.tasks.len() >= self.capacity {
            Self::reap(&mut state, now, true);
        }
        if state.tasks.len() >= self.capacity {
            let oldest_done = state
                .tasks
                .values()
                .filter(|t| t.status.is_terminal())
                .min_by_key(|t| t.last_updated_at_ms)
                .map(|t| t.task_id.clone());
            match oldest_done {
                Some(id) => {
                    state.tasks.remove(&id);
                }
                None => {
                    return Err(TaskStoreError::Full {
                        capacity: self.capacity,
                    });
                }
            }
        }
        state.tasks.insert(task.task_id.clone(), task);
        Ok(())
    }

    /// Forgets expired tasks (every call when `force`, else at most once a second).
    fn reap(state: &mut MemoryState, now: u64, force: bool) {
        if force || now >= state.next_reap_ms {
            state.tasks.retain(|_, t| !t.is_expired(now));
            state.next_reap_ms = now + 1000;
        }
    }

    fn live(state: &mut MemoryState, task_id: &str, now: u64) -> Option<TaskRecord> {
        match state.tasks.get(task_id) {
            Some(t) if t.is_expired(now) => {
                state.tasks.remove(task_id);
                None
            }
            other => other.cloned(),
        }
    }
}

impl TaskStore for InMemoryTaskStore {
    fn create(&self, task: TaskRecord) -> BoxFuture<'_, Result<(), TaskStoreError>> {
        Box::pin(std::future::ready(self.insert(task)))
    }

    fn get<'a>(&'a self, task_id: &'a str) -> BoxFuture<'a, Result<Option<TaskRecord>, TaskStoreError>> {
        let now = now_ms();
        let mut state = self.lock();
        Self::reap(&mut state, now, false);
        let task = Self::live(&mut state, task_id, now);
        Box::pin(std::future::ready(Ok(task)))
    }

    fn update(&self, task: TaskRecord) -> BoxFuture<'_, Result<bool, TaskStoreError>> {
        let now = now_ms();
        let mut state = self.lock();
        let updated = match Self::live(&mut state, &task.task_id, now) {
            Some(old) if !old.status.is_terminal() => {
                state.tasks.insert(task.task_id.clone(), task);
                true
            }
            _ => false,
        };
        Box::pin(std::future::ready(Ok(updated)))
    }

    fn cancel<'a>(&'a self, task_id: &'a str) -> BoxFuture<'a, Result<Option<TaskRecord>, TaskStoreError>> {
        let now = now_ms();
        let mut state = self.lock();
        let task = Self::live(&mut state, task_id, now).map(|mut task| {
            if !task.status.is_terminal() {
                cancel_record(&mut task);
                state.tasks.insert(task.task_id.clone(), task.clone());
            }
            task
        });
        Box::pin(std::future::ready(Ok(task)))
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<TaskRecord>, TaskStoreError>> {
        let now = now_ms();
        let mut state = self.lock();
        Self::reap(&mut state, now, true);
        let mut tasks: Vec<TaskRecord> = state.tasks.values().cloned().collect();
        tasks.sort_by_key(|t| t.created_at_ms);
        Box::pin(std::future::ready(Ok(tasks)))
    }
}

fn cancel_record(task: &mut TaskRecord) {
    task.status = TaskStatus::Cancelled;
    task.status_message = Some("cancelled by the client".into());
    task.input_requests.clear();
    task.touch();
}

/// How tasks are made.
#[derive(Debug, Clone)]
pub struct TaskConfig {
    /// How long a task is kept after its creation (`ttlMs`); `None` keeps it until the store
    /// needs the room. Default: one hour.
    pub ttl: Option<Duration>,
    /// The polling interval suggested to clients (`pollIntervalMs`). Default: 500 ms.
    pub poll_interval: Option<Duration>,
}

impl Default for TaskConfig {
    fn default() -> Self {
        Self {
            ttl: Some(Duration::from_secs(3600)),
            poll_interval: Some(Duration::from_millis(500)),
        }
    }
}

/// A server's tasks: the store, and the handlers this process runs.
pub(crate) struct Tasks {
    store: Arc<dyn TaskStore>,
    config: TaskConfig,
    running: Mutex<HashMap<String, Arc<TaskHandle>>>,
}

/// How a `tools/call` ended for the framework.
pub(crate) enum Called {
    /// A task was created: the `CreateTaskResult`.
    Task(Value),
    /// The handler finished without starting a task (boxed: results are large).
    Finished(Box<Result<CallToolResult, ErrorObject>>),
}

impl Tasks {
    pub(crate) fn new(store: Arc<dyn TaskStore>, config: TaskConfig) -> Self {
        Self {
            store,
            config,
            running: Mutex::new(HashMap::new()),
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<TaskHandle>>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops every handler this process runs (their records stay as they were in the store).
    pub(crate) fn shutdown(&self) {
        let running: Vec<Arc<TaskHandle>> = self.running().drain().map(|(_, h)| h).collect();
        for handle in running {
            handle.cancel.cancel();
            if let Some(abort) = handle.abort.lock().unwrap_or_else(PoisonError::into_inner).take() {
                abort.abort();
            }
        }
    }

    /// Runs `tool` for a client that declared the extension: as a task from the start, or (with
    /// [`TaskStart::Handler`]) synchronously until the handler starts one.
    pub(crate) async fn call(
        self: &Arc<Self>,
        tool: Tool,
        cx: Context,
        arguments: Option<Map<String, Value>>,
    ) -> Result<Called, ErrorObject> {
        let handle = Arc::new(TaskHandle::new(self.clone()));
        let cx = cx.with_task(handle.clone());
        if tool.task_start() == TaskStart::Call {
            handle.start().await.map_err(ErrorObject::internal)?;
        }
        let (done_tx, done_rx) = oneshot::channel();
        let supervisor = handle.clone();
        let run = async move {
            let outcome = AssertUnwindSafe(tool.call(cx, arguments))
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| Err(panicked(panic.as_ref())));
            if supervisor.is_started() {
                supervisor.finish(outcome).await;
            } else {
                let _ = done_tx.send(outcome);
            }
        };
        let expiry = handle.clone();
        let join = tokio::spawn(async move {
            tokio::select! {
                () = run => {}
                () = expiry.expired() => expiry.forget(),
            }
        });
        handle.set_abort(join.abort_handle());
        // A client that gives up on the call before a task exists stops the handler too.
        let mut guard = AbortUnlessDisarmed(Some(join.abort_handle()));
        let mut started = handle.started.subscribe();
        tokio::select! {
            biased;
            created = started.wait_for(Option::is_some) => {
                guard.0 = None;
                let created = created.map_err(ErrorObject::internal)?.clone().unwrap_or_default();
                Ok(Called::Task(created))
            }
            outcome = done_rx => {
                guard.0 = None;
                outcome
                    .map(|outcome| Called::Finished(Box::new(outcome)))
                    .map_err(|_| ErrorObject::internal("the tool's handler stopped without an answer"))
            }
        }
    }
}

/// Aborts a spawned handler when dropped, unless disarmed.
struct AbortUnlessDisarmed(Option<tokio::task::AbortHandle>);

impl Drop for AbortUnlessDisarmed {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            handle.abort();
        }
    }
}

/// One task-capable call, before and after its task exists: what the handler's [`Context`] and
/// the `tasks/*` methods share.
pub(crate) struct TaskHandle {
    tasks: Arc<Tasks>,
    task_id: String,
    /// The `CreateTaskResult`, once the task exists.
    started: watch::Sender<Option<Value>>,
    /// The task's record as this process last wrote it (the lock orders writes to the store).
    record: tokio::sync::Mutex<Option<TaskRecord>>,
    /// Answers awaited by the handler, by question key: the client's answer, or (a session's
    /// client answering a question with an error) the error the handler gets.
    pending: Mutex<BTreeMap<String, oneshot::Sender<Result<Value, InputError>>>>,
    /// Keys of the questions being asked of a session's client now ([`session`]).
    asking: Mutex<std::collections::BTreeSet<String>>,
    /// Counts the questions of a handler without `input_required` rounds (a session's), for
    /// their keys.
    asked: std::sync::atomic::AtomicUsize,
    /// Bumped at every change of the record this process makes.
    version: watch::Sender<u64>,
    cancel: CancellationToken,
    abort: Mutex<Option<tokio::task::AbortHandle>>,
}

impl TaskHandle {
    fn new(tasks: Arc<Tasks>) -> Self {
        Self {
            tasks,
            task_id: new_task_id(),
            started: watch::Sender::new(None),
            record: tokio::sync::Mutex::new(None),
            pending: Mutex::new(BTreeMap::new()),
            asking: Mutex::new(std::collections::BTreeSet::new()),
            asked: std::sync::atomic::AtomicUsize::new(0),
            version: watch::Sender::new(0),
            cancel: CancellationToken::new(),
            abort: Mutex::new(None),
        }
    }

    /// The task's id (reserved before the task exists).
    pub(crate) fn task_id(&self) -> &str {
        &self.task_id
    }

    /// Whether the task exists (the call was answered with its handle).
    pub(crate) fn is_started(&self) -> bool {
        self.started.borrow().is_some()
    }

    /// Completes when the task is cancelled.
    pub(crate) async fn cancelled(&self) {
        self.cancel.cancelled().await;
    }

    /// Whether the task was cancelled.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// A key for a question of a handler that has no `input_required` rounds to number its
    /// questions (a session's): `<kind>-<n>`, unique over the task's life, so questions asked
    /// at once do not take one another's place.
    pub(crate) fn next_key(&self, kind: &str) -> String {
        let n = self.asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{kind}-{n}")
    }

    fn set_abort(&self, handle: tokio::task::AbortHandle) {
        *self.abort.lock().unwrap_or_else(PoisonError::into_inner) = Some(handle);
    }

    /// Creates the task (durably) and answers the call with its handle; `Ok(false)` when it
    /// exists already.
    pub(crate) async fn start(self: &Arc<Self>) -> Result<bool, TaskStoreError> {
        let mut record = self.record.lock().await;
        if record.is_some() {
            return Ok(false);
        }
        let config = &self.tasks.config;
        let task = TaskRecord::new(self.task_id.clone(), config.ttl, config.poll_interval);
        self.tasks.store.create(task.clone()).await?;
        let created = task.created();
        *record = Some(task);
        self.tasks.running().insert(self.task_id.clone(), self.clone());
        self.started.send_replace(Some(created));
        Ok(true)
    }

    /// Completes when the started task's TTL runs out (never for an unlimited TTL).
    async fn expired(&self) {
        let mut started = self.started.subscribe();
        if started.wait_for(Option::is_some).await.is_err() {
            return std::future::pending().await;
        }
        match self.tasks.config.ttl {
            Some(ttl) => tokio::time::sleep(ttl).await,
            None => std::future::pending().await,
        }
    }

    /// Forgets the task in this process (its record stays in the store until its TTL).
    fn forget(&self) {
        self.tasks.running().remove(&self.task_id);
        self.pending.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// Applies `change` to the record and writes it to the store; `false` when the task is
    /// terminal (or gone).
    async fn change(&self, change: impl FnOnce(&mut TaskRecord)) -> bool {
        let mut record = self.record.lock().await;
        let Some(task) = record.as_mut() else { return false };
        if task.status.is_terminal() {
            return false;
        }
        change(task);
        task.touch();
        let task = task.clone();
        let changed = match self.tasks.store.update(task).await {
            Ok(true) => true,
            // Terminal or gone in the store (cancelled elsewhere, expired): this copy follows.
            _ => {
                if let Ok(Some(stored)) = self.tasks.store.get(&self.task_id).await {
                    *record = Some(stored);
                } else if let Some(task) = record.as_mut() {
                    task.status = TaskStatus::Cancelled;
                }
                false
            }
        };
        self.version.send_modify(|v| *v = v.wrapping_add(1));
        changed
    }

    /// Asks the client through the task: parks it in `input_required` under `key` until
    /// `tasks/update` answers.
    pub(crate) async fn ask(&self, key: &str, method: &str, params: Value) -> Result<Value, InputError> {
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.to_string(), tx);
        let question = json!({"method": method, "params": params});
        self.change(|task| {
            task.input_requests.insert(key.to_string(), question);
            task.status = TaskStatus::InputRequired;
        })
        .await;
        let stopped = || InputError::Invalid {
            key: key.to_string(),
            message: "the task ended before the client answered".into(),
        };
        tokio::select! {
            answer = rx => answer.map_err(|_| stopped())?,
            () = self.cancel.cancelled() => Err(stopped()),
        }
    }

    /// Delivers the answers to outstanding questions; others are ignored.
    async fn respond(&self, responses: Map<String, Value>) {
        self.settle(responses.into_iter().map(|(key, answer)| (key, Ok(answer))))
            .await;
    }

    /// Delivers answers (or errors) to outstanding questions; others are ignored. Once the
    /// last is settled the task is `working` again.
    async fn settle(&self, responses: impl IntoIterator<Item = (String, Result<Value, InputError>)>) {
        let mut answered = Vec::new();
        {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            for (key, answer) in responses {
                if let Some(tx) = pending.remove(&key) {
                    answered.push((key, tx, answer));
                }
            }
        }
        if answered.is_empty() {
            return;
        }
        // The record first, so a poll right after the acknowledgement sees the answers taken.
        self.change(|task| {
            for (key, _, _) in &answered {
                task.input_requests.remove(key);
            }
            if task.input_requests.is_empty() && task.status == TaskStatus::InputRequired {
                task.status = TaskStatus::Working;
            }
        })
        .await;
        for (_, tx, answer) in answered {
            let _ = tx.send(answer);
        }
    }

    /// Records the handler's outcome.
    async fn finish(&self, outcome: Result<CallToolResult, ErrorObject>) {
        let outcome = outcome.and_then(|result| serde_json::to_value(result).map_err(ErrorObject::internal));
        self.change(|task| {
            task.input_requests.clear();
            match outcome {
                Ok(result) => {
                    task.status = TaskStatus::Completed;
                    task.result = Some(result);
                }
                Err(error) => {
                    task.status = TaskStatus::Failed;
                    task.status_message = Some(error.message.clone());
                    task.error = Some(error);
                }
            }
        })
        .await;
        self.forget();
    }

    /// Cancels the task: recorded, the handler told and then dropped.
    async fn cancel(&self) {
        self.change(cancel_record).await;
        self.cancel.cancel();
        self.forget();
        if let Some(abort) = self.abort.lock().unwrap_or_else(PoisonError::into_inner).take() {
            abort.abort();
        }
    }
}

/// The error of a handler that panicked.
fn panicked(panic: &(dyn std::any::Any + Send)) -> ErrorObject {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into());
    ErrorObject::internal(format!("the tool's handler failed: {what}"))
}

/// `-32021` naming the tasks extension, for `what` (a method, or `tool "name"`) asked by a
/// client that did not declare it: what an intermediary answers in the server's place.
pub fn missing_extension(what: &str) -> ErrorObject {
    ErrorObject::new(
        MISSING_REQUIRED_CLIENT_CAPABILITY,
        format!("{what} needs the client capability extensions[\"{EXTENSION}\"]"),
    )
    .with_data(json!({"requiredCapabilities": {"extensions": {EXTENSION: {}}}}))
}

/// Whether capabilities (as declared) name the tasks extension.
pub fn declared(capabilities: &Value) -> bool {
    capabilities
        .get("extensions")
        .and_then(|e| e.get(EXTENSION))
        .is_some_and(|v| !v.is_null())
}

impl Connection {
    /// How `tools/call` runs `tool`: as a task (the server's tasks), synchronously (`None`), or
    /// not at all (`-32021`, a required task the client cannot take). In a 2025-11-25 session
    /// the client decides, with the `task` param (`augmented`; see [`session`]).
    pub(super) fn task_route(
        &self,
        tool: &Tool,
        cx: &Context,
        augmented: bool,
    ) -> Result<Option<Arc<Tasks>>, ErrorObject> {
        if let (Era::Stateful(revision), Some(tasks)) = (cx.era(), &self.server.tasks)
            && session::served_to(revision)
        {
            return session::route(tool, augmented, tasks);
        }
        let support = tool.task_support();
        if support == TaskSupport::Forbidden {
            return Ok(None);
        }
        let able = cx.era() == Era::Stateless && declared(cx.client_capabilities());
        match (&self.server.tasks, able) {
            (Some(tasks), true) => Ok(Some(tasks.clone())),
            _ if support == TaskSupport::Required => Err(missing_extension(&format!("tool {:?}", tool.name()))),
            _ => Ok(None),
        }
    }

    /// `tasks/get`, `tasks/update`, `tasks/cancel` (2026-07-28 requests).
    pub(super) async fn task_method(
        &self,
        cx: &Context,
        method: &str,
        params: Option<&RawValue>,
    ) -> Result<Value, ErrorObject> {
        let Some(tasks) = &self.server.tasks else {
            return Err(ErrorObject::method_not_found(method));
        };
        if !declared(cx.client_capabilities()) {
            return Err(missing_extension(method));
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Params {
            task_id: String,
            #[serde(default)]
            input_responses: Option<Map<String, Value>>,
        }
        let Params {
            task_id,
            input_responses,
        } = decode(method, params)?;
        let unknown = || {
            ErrorObject::invalid_params(format!(
                "{method}: unknown task {task_id:?} (never created, or expired)"
            ))
            .with_data(json!({"taskId": task_id}))
        };
        let running = tasks.running().get(&task_id).cloned();
        match method {
            "tasks/get" => {
                let task = tasks.store.get(&task_id).await.map_err(ErrorObject::internal)?;
                Ok(task.ok_or_else(unknown)?.detailed())
            }
            "tasks/update" => {
                let known = tasks.store.get(&task_id).await.map_err(ErrorObject::internal)?;
                if known.is_none() {
                    return Err(unknown());
                }
                if let Some(handle) = running {
                    handle.respond(input_responses.unwrap_or_default()).await;
                }
                Ok(json!({"resultType": "complete"}))
            }
            _ => {
                match running {
                    Some(handle) => handle.cancel().await,
                    None => {
                        let task = tasks.store.cancel(&task_id).await.map_err(ErrorObject::internal)?;
                        task.ok_or_else(unknown)?;
                    }
                }
                Ok(json!({"resultType": "complete"}))
            }
        }
    }
}

/// Input for a handler in a started task: an answer it already has (from `input_required` rounds
/// before the task), or a question parked on the task.
pub(crate) async fn task_input(
    task: &TaskHandle,
    answers: Option<&BTreeMap<String, Value>>,
    key: &str,
    method: &str,
    params: Value,
) -> Result<Value, InputError> {
    if let Some(answer) = answers.and_then(|a| a.get(key)) {
        return Ok(answer.clone());
    }
    task.ask(key, method, params).await
}

/// 128 random bits, hex.
fn new_task_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        use sha2::Digest;
        let seed = format!("{:?}{:p}", SystemTime::now(), &bytes);
        bytes.copy_from_slice(&sha2::Sha256::digest(seed.as_bytes())[..16]);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, duration_ms)
}

/// `YYYY-MM-DDThh:mm:ss.mmmZ` of milliseconds since the Unix epoch (proleptic Gregorian, UTC).
pub fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_iso8601_utc() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(iso8601(1_785_196_799_999), "2026-07-27T23:59:59.999Z");
    }

    #[test]
    fn task_ids_are_unguessable_hex() {
        let (a, b) = (new_task_id(), new_task_id());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
