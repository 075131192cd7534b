//! The tasks extension (`io.modelcontextprotocol/tasks`, 2026-07-28) for clients of an
//! upstream the gateway holds a 2025-11-25 session with: that revision's tasks, bridged.
//!
//! An upstream reached over 2026-07-28 speaks the extension itself, and the catalog relays its
//! task methods as they are. A session upstream cannot: the extension is 2026-07-28's. When it
//! declares 2025-11-25's tasks for `tools/call` (`capabilities.tasks.requests.tools.call`), the
//! gateway declares the extension for it (its snapshot lists it, [`crate::upstream::Snapshot`])
//! and translates:
//!
//! | the client (2026-07-28) | the upstream (2025-11-25) |
//! |---|---|
//! | `tools/call` of a tool whose `execution.taskSupport` is `optional` or `required`, the extension declared | `tools/call` with `task: {}`; its `{task}` answered as the flat `CreateTaskResult` (`ttl` → `ttlMs`, `pollInterval` → `pollIntervalMs`) |
//! | the same, the extension not declared | `optional`: the call as it is (synchronous); `required`: `-32021` from the gateway, and the upstream is not asked |
//! | `tasks/get` | `tasks/get`; for a `completed` task its `result` (without the revision's `related-task` `_meta`), for a `failed` one its `error`, both from `tasks/result`, which answers at once for a task that ended; for `input_required`, the questions the gateway holds (below) |
//! | `tasks/update` | the answers, each to the upstream's question of its key |
//! | `tasks/cancel` | `tasks/cancel`, unless the task ended already: the extension acknowledges that, the revision refuses it |
//!
//! # Questions
//!
//! A 2025-11-25 task asks its questions as server→client requests on a pending `tasks/result`
//! (the revision's requestor calls it when it sees `input_required`). When `tasks/get` finds an
//! upstream task `input_required`, the gateway makes that call in the background (a *watcher*,
//! one per task) and keeps the questions that come on it under the upstream's own key (a
//! Portico upstream names it in `_meta`, `io.portico/inputKey`; else
//! `upstream-<method>-<n>`): `tasks/get` lists those not answered yet as `inputRequests`, and
//! `tasks/update` answers them (keys not outstanding are ignored, as the extension says).
//! While the upstream says `input_required` and no question has come yet, the task is reported
//! `working`: an `input_required` task without questions is no valid answer, and the client
//! polls again. A watcher's `tasks/result` waits as long as the task may live (its `ttl`, at
//! most [`MAX_WAIT`]); the watcher ends with it (the task ended, was cancelled or expired), or
//! when the upstream is stopped or its connection fails (the next `tasks/get` starts another;
//! the upstream asks its open questions again). At most [`MAX_WATCHERS`] run per upstream;
//! beyond that a task's questions wait for one to end.
//!
//! The questions are held in the gateway process that started the watcher: `tasks/update` has
//! to reach it, as it has to reach the process running an extension task's handler. The rest
//! of a task is the upstream's, asked of it on each request, so every replica of the gateway
//! answers `tasks/get` alike. A task's upstream calls go to a replica as any call does: the
//! replicas of an upstream must share its tasks (one server, or a shared task store).
//!
//! The upstream calls made for a client's request (`tools/call`, `tasks/get`, `tasks/result`,
//! `tasks/cancel`) are relayed as any ([`crate::relay`]: plugins, audit, metrics, under those
//! method names); a watcher's `tasks/result` is the gateway's own and goes straight to a replica.
//!
//! Errors: the upstream's own errors reach the client as they are (an unknown task is its
//! `-32602`); a failed task's error is inlined, unless `tasks/result` failed for the gateway's
//! sake (`-32050` … `-32052`: the upstream could not be asked), which is then the answer.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use portico_core::ErrorObject;
use portico_core::client::{CallObserver, Client, InputContext, Observer, ObserverFuture, RequestOptions};
use portico_core::server::Context;
use portico_core::server::context::INPUT_KEY;
use portico_core::server::tasks::{self as core_tasks, TaskSupport, session::RELATED_TASK};
use portico_protocol::v2026_07_28 as wire;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::plugin::Plugged;
use crate::relay::{self, UPSTREAM_INVALID, UPSTREAM_TIMEOUT, UPSTREAM_UNAVAILABLE};
use crate::upstream::{Snapshot, Upstream};

/// Watchers running at once per upstream.
pub const MAX_WATCHERS: usize = 1024;

/// The longest a watcher's `tasks/result` waits (a task with no `ttl` lives for ever).
pub const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

/// Whether a session upstream's capabilities declare 2025-11-25's task-augmented `tools/call`.
pub(crate) fn declares_session_tasks(capabilities: &wire::ServerCapabilities) -> bool {
    capabilities
        .extra
        .get("tasks")
        .and_then(|t| t.get("requests"))
        .and_then(|r| r.get("tools"))
        .and_then(|t| t.get("call"))
        .is_some_and(Value::is_object)
}

/// A 2025-11-25 tool's `execution.taskSupport`, taken out of the tool (the 2026-07-28 `Tool`
/// has no such member, so clients of the gateway never see it); `Forbidden` when absent.
pub(crate) fn take_support(tool: &mut wire::Tool) -> TaskSupport {
    let execution = tool.extra.remove("execution");
    match execution
        .as_ref()
        .and_then(|e| e.get("taskSupport"))
        .and_then(Value::as_str)
    {
        Some("optional") => TaskSupport::Optional,
        Some("required") => TaskSupport::Required,
        _ => TaskSupport::Forbidden,
    }
}

/// Readies a `tools/call` of `tool` (as the upstream names it; `exposed` as the client does)
/// for a session upstream with tasks: asks for a task when the tool runs as one and the
/// client declared the extension; refuses a tool that runs only as one to a client that did
/// not (`-32021`). Changes nothing for other upstreams and tools.
pub(crate) fn prepare_call(
    snapshot: &Snapshot,
    tool: &str,
    exposed: &str,
    cx: &Context,
    params: &mut Map<String, Value>,
) -> Result<(), ErrorObject> {
    if !snapshot.session_tasks {
        return Ok(());
    }
    let support = snapshot.task_support.get(tool).copied().unwrap_or_default();
    if support == TaskSupport::Forbidden {
        return Ok(());
    }
    if cx.era() == portico_core::server::Era::Stateless && core_tasks::declared(cx.client_capabilities()) {
        params.insert("task".into(), json!({}));
        return Ok(());
    }
    match support {
        TaskSupport::Required => Err(core_tasks::missing_extension(&format!("tool {exposed:?}"))),
        _ => Ok(()),
    }
}

/// The client's answer to a call [`prepare_call`] asked a task for: the upstream's `{task}` as
/// the extension's flat `CreateTaskResult`; any other answer (the upstream ran it
/// synchronously) as it is.
pub(crate) fn created(result: Value) -> Value {
    match result.get("task").and_then(Value::as_object) {
        Some(task) => {
            let mut created = modern(task);
            created.insert("resultType".into(), "task".into());
            Value::Object(created)
        }
        None => result,
    }
}

/// The extension's members of a 2025-11-25 `Task`.
fn modern(task: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for member in ["taskId", "status", "statusMessage", "createdAt", "lastUpdatedAt"] {
        if let Some(value) = task.get(member) {
            out.insert(member.into(), value.clone());
        }
    }
    out.insert("ttlMs".into(), task.get("ttl").cloned().unwrap_or(Value::Null));
    if let Some(poll) = task.get("pollInterval").filter(|p| !p.is_null()) {
        out.insert("pollIntervalMs".into(), poll.clone());
    }
    out
}

/// The answer to an extension method that changes nothing the client sees.
fn ack() -> Value {
    json!({"resultType": "complete"})
}

/// Whether an error is the gateway's own about reaching the upstream (not the upstream's).
fn unreached(error: &ErrorObject) -> bool {
    matches!(error.code, UPSTREAM_UNAVAILABLE | UPSTREAM_TIMEOUT | UPSTREAM_INVALID)
}

/// The upstream's task `id`, as 2025-11-25's `tasks/get` answers it.
async fn upstream_task(
    upstream: &Upstream,
    cx: &Context,
    id: &str,
    plugins: Plugged<'_>,
) -> Result<Value, ErrorObject> {
    relay::forward(upstream, cx, "tasks/get", task_params(id), plugins).await
}

fn task_params(id: &str) -> Map<String, Value> {
    let mut params = Map::new();
    params.insert("taskId".into(), id.into());
    params
}

/// `tasks/get` of the upstream's task `id`, as the extension answers it.
pub(crate) async fn get(
    upstream: &Upstream,
    cx: &Context,
    id: &str,
    plugins: Plugged<'_>,
) -> Result<Value, ErrorObject> {
    let task = upstream_task(upstream, cx, id, plugins).await?;
    let status = task
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut detailed = task.as_object().map(modern).unwrap_or_default();
    detailed.insert("resultType".into(), "complete".into());
    match status.as_str() {
        "completed" | "failed" => {
            let outcome = relay::forward(upstream, cx, "tasks/result", task_params(id), plugins).await;
            match (status.as_str(), outcome) {
                ("completed", Ok(mut result)) => {
                    if let Some(Value::Object(meta)) = result.get_mut("_meta") {
                        meta.remove(RELATED_TASK);
                        if meta.is_empty() {
                            result.as_object_mut().map(|r| r.remove("_meta"));
                        }
                    }
                    detailed.insert("result".into(), result);
                }
                ("failed", Err(error)) if !unreached(&error) => {
                    detailed.insert("error".into(), json!(error));
                }
                (_, Err(error)) => return Err(error),
                (_, Ok(result)) => {
                    return Err(ErrorObject::new(
                        UPSTREAM_INVALID,
                        format!(
                            "upstream `{}` answered tasks/result of its failed task {id:?} with a result",
                            upstream.name()
                        ),
                    )
                    .with_data(json!({"upstream": upstream.name(), "result": result})));
                }
            }
        }
        "input_required" => {
            let ttl = task.get("ttl").and_then(Value::as_u64).map(Duration::from_millis);
            let questions = upstream.watchers().questions(upstream, id, ttl);
            if questions.is_empty() {
                detailed.insert("status".into(), "working".into());
            } else {
                detailed.insert("inputRequests".into(), Value::Object(questions));
            }
        }
        _ => {}
    }
    Ok(Value::Object(detailed))
}

/// `tasks/update` of the upstream's task `id`: the answers go to its questions of their keys.
pub(crate) async fn update(
    upstream: &Upstream,
    cx: &Context,
    id: &str,
    responses: Map<String, Value>,
    plugins: Plugged<'_>,
) -> Result<Value, ErrorObject> {
    // An unknown task is the upstream's error.
    upstream_task(upstream, cx, id, plugins).await?;
    upstream.watchers().answer(id, responses);
    Ok(ack())
}

/// `tasks/cancel` of the upstream's task `id`: acknowledged, whether it ran or had ended.
pub(crate) async fn cancel(
    upstream: &Upstream,
    cx: &Context,
    id: &str,
    plugins: Plugged<'_>,
) -> Result<Value, ErrorObject> {
    let task = upstream_task(upstream, cx, id, plugins).await?;
    let ended = matches!(
        task.get("status").and_then(Value::as_str),
        Some("completed" | "failed" | "cancelled")
    );
    if !ended {
        match relay::forward(upstream, cx, "tasks/cancel", task_params(id), plugins).await {
            // It ended meanwhile: the revision refuses to cancel it, the extension acknowledges.
            Err(error) if error.code == portico_core::error::INVALID_PARAMS => {}
            Err(error) => return Err(error),
            Ok(_) => {}
        }
    }
    upstream.watchers().stop(id);
    Ok(ack())
}

/// The watchers of one upstream's tasks (see the module docs).
#[derive(Default)]
pub struct Watchers {
    by_task: Arc<Mutex<HashMap<String, Arc<Watcher>>>>,
    /// Cancelled when the upstream stops.
    stop: CancellationToken,
}

/// The questions of one task, as they came on its `tasks/result`.
struct Watcher {
    questions: Mutex<BTreeMap<String, Question>>,
    /// Questions without a key of the upstream's, for the keys made up.
    unnamed: AtomicUsize,
    /// Questions so far.
    seq: AtomicUsize,
    stop: CancellationToken,
}

/// One question of the upstream's, waiting for the client's answer.
struct Question {
    /// Which question of the watcher it is (a key could come again, once answered).
    seq: usize,
    /// `{method, params}`, as `inputRequests` lists it.
    request: Value,
    reply: oneshot::Sender<Value>,
}

impl Watchers {
    fn tasks(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Watcher>>> {
        self.by_task.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops every watcher (the upstream stops).
    pub fn stop_all(&self) {
        self.stop.cancel();
    }

    /// How many watchers run now.
    pub fn len(&self) -> usize {
        self.tasks().len()
    }

    /// Whether none runs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The questions of task `id` not answered yet (`key` → `{method, params}`), starting its
    /// watcher if none runs; `ttl` is how long the task may live.
    fn questions(&self, upstream: &Upstream, id: &str, ttl: Option<Duration>) -> Map<String, Value> {
        let watcher = {
            let mut tasks = self.tasks();
            match tasks.get(id) {
                Some(watcher) => watcher.clone(),
                None => {
                    if tasks.len() >= MAX_WATCHERS {
                        tracing::warn!(
                            upstream = upstream.name(),
                            task = id,
                            limit = MAX_WATCHERS,
                            "too many tasks waiting for input; this one's questions wait for a watcher to end"
                        );
                        return Map::new();
                    }
                    // The replica the call goes to, as any call's (see the module docs).
                    let Some(client) = upstream
                        .replicas()
                        .iter()
                        .filter(|r| r.is_available())
                        .find_map(|r| r.client())
                    else {
                        return Map::new();
                    };
                    let watcher = Arc::new(Watcher {
                        questions: Mutex::new(BTreeMap::new()),
                        unnamed: AtomicUsize::new(0),
                        seq: AtomicUsize::new(0),
                        stop: self.stop.child_token(),
                    });
                    tasks.insert(id.to_string(), watcher.clone());
                    let wait = ttl.unwrap_or(MAX_WAIT).min(MAX_WAIT);
                    tokio::spawn(watch(
                        client,
                        id.to_string(),
                        watcher.clone(),
                        self.by_task.clone(),
                        wait,
                        upstream.name().to_string(),
                    ));
                    watcher
                }
            }
        };
        let questions = watcher.questions.lock().unwrap_or_else(PoisonError::into_inner);
        questions
            .iter()
            .map(|(key, question)| (key.clone(), question.request.clone()))
            .collect()
    }

    /// Answers the questions of task `id` that `responses` name; others are ignored.
    fn answer(&self, id: &str, responses: Map<String, Value>) {
        let Some(watcher) = self.tasks().get(id).cloned() else {
            return;
        };
        let mut questions = watcher.questions.lock().unwrap_or_else(PoisonError::into_inner);
        for (key, answer) in responses {
            if let Some(question) = questions.remove(&key) {
                let _ = question.reply.send(answer);
            }
        }
    }

    /// Stops the watcher of task `id`, if one runs.
    fn stop(&self, id: &str) {
        if let Some(watcher) = self.tasks().remove(id) {
            watcher.stop.cancel();
        }
    }
}

/// A watcher's `tasks/result` for task `id`, on `client`: runs until it is answered (or fails),
/// or the watcher is stopped; then the watcher is forgotten.
async fn watch(
    client: Client,
    id: String,
    watcher: Arc<Watcher>,
    tasks: Arc<Mutex<HashMap<String, Arc<Watcher>>>>,
    wait: Duration,
    upstream: String,
) {
    let options = RequestOptions::new()
        .timeout(wait)
        .observer(Observer::new(Asked(watcher.clone())));
    let params = task_params(&id);
    let outcome = tokio::select! {
        outcome = client.forward("tasks/result", &params, &options) => Some(outcome),
        () = watcher.stop.cancelled() => None,
    };
    if let Some(Err(error)) = outcome {
        tracing::debug!(upstream, task = id, error = %error, "a task's tasks/result ended without its result");
    }
    {
        let mut tasks = tasks.lock().unwrap_or_else(PoisonError::into_inner);
        if tasks.get(&id).is_some_and(|w| Arc::ptr_eq(w, &watcher)) {
            tasks.remove(&id);
        }
    }
    // Questions still waiting go unanswered: their requests ended with the call.
    watcher.stop.cancel();
}

/// Receives the upstream's questions on a watcher's `tasks/result`.
struct Asked(Arc<Watcher>);

impl CallObserver for Asked {
    /// Progress and log messages about a task: the extension has none to give the client.
    fn notification(&self, _method: &str, _params: Option<&RawValue>) {}

    fn request(&self, method: String, params: Option<Box<RawValue>>, cx: InputContext) -> ObserverFuture {
        let watcher = self.0.clone();
        Box::pin(async move {
            let mut params: Value = params
                .and_then(|p| serde_json::from_str(p.get()).ok())
                .unwrap_or_else(|| json!({}));
            let named = params
                .get("_meta")
                .and_then(|m| m.get(INPUT_KEY))
                .and_then(Value::as_str)
                .map(str::to_string);
            let key = named.unwrap_or_else(|| {
                let n = watcher.unnamed.fetch_add(1, Ordering::Relaxed);
                format!("upstream-{}-{n}", method.replace('/', "-"))
            });
            if let Some(Value::Object(meta)) = params.get_mut("_meta") {
                meta.remove(RELATED_TASK);
                meta.remove(INPUT_KEY);
                if meta.is_empty() {
                    params.as_object_mut().map(|p| p.remove("_meta"));
                }
            }
            let (reply, answer) = oneshot::channel();
            let seq = watcher.seq.fetch_add(1, Ordering::Relaxed);
            watcher.questions.lock().unwrap_or_else(PoisonError::into_inner).insert(
                key.clone(),
                Question {
                    seq,
                    request: json!({"method": method, "params": params}),
                    reply,
                },
            );
            // Not listed once it is void, however it ends.
            let _listed = Listed {
                watcher: &watcher,
                key: &key,
                seq,
            };
            let void = || {
                ErrorObject::new(
                    UPSTREAM_UNAVAILABLE,
                    "the gateway stopped waiting for the client's answer",
                )
            };
            let answer = tokio::select! {
                answer = answer => answer.map_err(|_| void())?,
                () = cx.cancelled() => return Err(void()),
                () = watcher.stop.cancelled() => return Err(void()),
            };
            serde_json::value::to_raw_value(&answer).map_err(ErrorObject::internal)
        })
    }
}

/// Removes a question from its watcher when dropped (unless a later one took its key).
struct Listed<'a> {
    watcher: &'a Watcher,
    key: &'a str,
    seq: usize,
}

impl Drop for Listed<'_> {
    fn drop(&mut self) {
        let mut questions = self.watcher.questions.lock().unwrap_or_else(PoisonError::into_inner);
        if questions.get(self.key).is_some_and(|q| q.seq == self.seq) {
            questions.remove(self.key);
        }
    }
}
