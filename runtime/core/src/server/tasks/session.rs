//! 2025-11-25's tasks, served to sessions of that revision with the extension's machinery: the
//! same [`TaskStore`](super::TaskStore), handlers, questions and TTL, in the revision's wire.
//! What lets a gateway (or any 2025-11-25 client) run a tool as a task over a session, and so
//! offer the extension to its own 2026-07-28 clients in front of a session upstream.
//!
//! # Decisions
//!
//! - **Where.** Sessions that negotiated 2025-11-25 (the first revision with tasks), on a
//!   server that has tasks. `capabilities.tasks` declares task-augmented `tools/call` and
//!   `tasks/cancel`, and `tools/list` gives each task-supporting tool its
//!   `execution.taskSupport`. Older sessions have no tasks: they run task-supporting tools
//!   synchronously and refuse `Required` ones with `-32021`, as before.
//! - **Who decides.** The revision is requestor-driven: the client asks for a task with the
//!   `task` param. An `Optional` or `Required` tool called with it runs as a task; without it an
//!   `Optional` tool runs synchronously and a `Required` one is refused with `-32601` (the
//!   revision's MUST); a `Forbidden` tool called with it is refused with `-32601` (its SHOULD).
//!   The requested `ttl` is not honoured: [`TaskConfig`](super::TaskConfig) decides, as the
//!   revision allows, and the task says its own `ttl`.
//! - **Results.** `CreateTaskResult` is `{task}`; `tasks/get` and `tasks/cancel` answer the
//!   `Task` (`ttl`, `pollInterval`); `tasks/result` waits for the task to end and answers what
//!   the call would have: the tool's result (its `_meta` naming the task,
//!   `io.modelcontextprotocol/related-task`), or the JSON-RPC error of a failed task. A
//!   cancelled task has no result: `tasks/result` answers `-32602` saying so.
//! - **Questions.** A handler's questions park the task in `input_required`, as in the
//!   extension. They reach the client as server→client requests (`_meta`: `related-task`, and
//!   the question's key under [`INPUT_KEY`](crate::server::context::INPUT_KEY), so an
//!   intermediary can ask its own client under the same key) sent on a pending `tasks/result`:
//!   the revision's requestor calls it when it sees `input_required`, and its response stream
//!   is where a Streamable HTTP server can reach the client. The answers resume the task; an
//!   error the client answers with is the handler's error, as in a session's ordinary call. A
//!   question asked on one `tasks/result` is not asked on another at the same time; one whose
//!   `tasks/result` ended unanswered is asked again on the next. When asking fails other than
//!   by the client's answer (the connection closed, the request timed out), that
//!   `tasks/result` ends with the error and the question stays for the next one.
//! - **Cancellation.** `tasks/cancel` of a terminal (or unknown) task is `-32602`, the
//!   revision's MUST, unlike the extension's idempotent acknowledgement.
//! - **Not served:** `tasks/list` (not declared; `-32601`): task ids are the bearers of their
//!   tasks and every connection of the server shares them (as in the extension), so a list
//!   would hand one session's tasks to another. `notifications/tasks/status` (optional: the
//!   requestor polls). Progress and log messages from a running task (none in the extension
//!   either).

use std::collections::BTreeSet;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::{TaskHandle, TaskRecord, TaskStatus, TaskSupport, Tasks};
use crate::error::{ErrorObject, PeerError};
use crate::server::context::INPUT_KEY;
use crate::server::input::InputError;
use crate::server::tool::Tool;
use crate::server::{Connection, Context, adapt, decode};
use portico_protocol::v2026_07_28 as wire;

/// The first revision with tasks.
pub(crate) const REVISION: &str = "2025-11-25";

/// The `_meta` key that ties a message to its task (2025-11-25).
pub const RELATED_TASK: &str = "io.modelcontextprotocol/related-task";

/// How often `tasks/result` looks at a task another process runs (or one whose handler this
/// process no longer holds), when no poll interval is configured.
const POLL: Duration = Duration::from_millis(500);

/// Whether sessions of `revision` have tasks (revisions compare as dates).
pub(crate) fn served_to(revision: &str) -> bool {
    revision >= REVISION
}

/// The session's `capabilities.tasks`.
pub(crate) fn capability() -> Value {
    json!({"cancel": {}, "requests": {"tools": {"call": {}}}})
}

/// `tool`'s definition for a session with tasks: with `execution.taskSupport` when it may run
/// as one.
pub(crate) fn definition(tool: &Tool) -> wire::Tool {
    let mut definition = tool.definition().clone();
    let support = match tool.task_support() {
        TaskSupport::Forbidden => return definition,
        TaskSupport::Optional => "optional",
        TaskSupport::Required => "required",
    };
    definition
        .extra
        .insert("execution".into(), json!({"taskSupport": support}));
    definition
}

/// Whether a `tools/call`'s params ask for a task (a `task` member that is not `null`).
pub(crate) fn augmented(params: Option<&RawValue>) -> bool {
    #[derive(Deserialize)]
    struct Augmented {
        #[serde(default)]
        task: Option<serde::de::IgnoredAny>,
    }
    params
        .filter(|p| {
            static TASK: crate::message::Mention = crate::message::Mention::new(r#""task""#);
            crate::message::may_name(p.get(), &[&TASK])
        })
        .and_then(|p| serde_json::from_str::<Augmented>(p.get()).ok())
        .is_some_and(|a| a.task.is_some())
}

/// How a session's `tools/call` of `tool` runs: as a task of `tasks`, synchronously (`None`),
/// or not at all (`-32601`; see the module docs).
pub(crate) fn route(tool: &Tool, augmented: bool, tasks: &Arc<Tasks>) -> Result<Option<Arc<Tasks>>, ErrorObject> {
    match (tool.task_support(), augmented) {
        (TaskSupport::Forbidden, true) => Err(ErrorObject::method_not_found("tools/call").with_data(json!({
            "reason": format!("tool {:?} does not run as a task (execution.taskSupport: forbidden)", tool.name())
        }))),
        (TaskSupport::Required, false) => Err(ErrorObject::method_not_found("tools/call").with_data(json!({
            "reason": format!("tool {:?} runs only as a task (execution.taskSupport: required): call it with `task`", tool.name())
        }))),
        (_, true) => Ok(Some(tasks.clone())),
        (_, false) => Ok(None),
    }
}

/// A 2025-11-25 `Task` of an extension task object (`taskId`, `status`, ..., `ttlMs`,
/// `pollIntervalMs`): the revision's member names, none of the extension's others.
fn legacy(task: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    for member in ["taskId", "status", "statusMessage", "createdAt", "lastUpdatedAt"] {
        if let Some(value) = task.get(member) {
            out.insert(member.into(), value.clone());
        }
    }
    out.insert("ttl".into(), task.get("ttlMs").cloned().unwrap_or(Value::Null));
    if let Some(poll) = task.get("pollIntervalMs") {
        out.insert("pollInterval".into(), poll.clone());
    }
    Value::Object(out)
}

/// The session's `CreateTaskResult` of the extension's one (`created`).
pub(crate) fn created(created: &Value) -> Value {
    let task = created.as_object().map(legacy).unwrap_or_else(|| json!({}));
    json!({"task": task})
}

impl TaskRecord {
    /// The task as 2025-11-25's `tasks/get` and `tasks/cancel` answer it.
    fn legacy(&self) -> Value {
        legacy(&self.task())
    }
}

impl Connection {
    /// `tasks/get`, `tasks/result`, `tasks/cancel` in a 2025-11-25 session (the dispatcher
    /// calls it only with the server's tasks and a session of that revision).
    pub(crate) async fn session_task_method(
        &self,
        cx: &Context,
        revision: &'static str,
        method: &str,
        params: Option<&RawValue>,
    ) -> Result<Value, ErrorObject> {
        let Some(tasks) = &self.server.tasks else {
            return Err(ErrorObject::method_not_found(method));
        };
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Params {
            task_id: String,
        }
        let Params { task_id } = decode(method, params)?;
        let unknown = || {
            ErrorObject::invalid_params(format!(
                "{method}: unknown task {task_id:?} (never created, or expired)"
            ))
            .with_data(json!({"taskId": task_id}))
        };
        let stored = async || {
            tasks
                .store
                .get(&task_id)
                .await
                .map_err(ErrorObject::internal)?
                .ok_or_else(unknown)
        };
        match method {
            "tasks/get" => Ok(stored().await?.legacy()),
            "tasks/cancel" => {
                let task = stored().await?;
                if task.status.is_terminal() {
                    return Err(ErrorObject::invalid_params(format!(
                        "tasks/cancel: task {task_id:?} is {} already",
                        json!(task.status).as_str().unwrap_or("terminal")
                    ))
                    .with_data(json!({"taskId": task_id, "status": task.status})));
                }
                let running = tasks.running().get(&task_id).cloned();
                match running {
                    Some(handle) => handle.cancel().await,
                    None => {
                        tasks.store.cancel(&task_id).await.map_err(ErrorObject::internal)?;
                    }
                }
                Ok(stored().await?.legacy())
            }
            _ => self.task_result(cx, tasks, revision, &task_id).await,
        }
    }

    /// `tasks/result`: waits for the task to end, asking its questions of the client on the
    /// way (see the module docs).
    async fn task_result(
        &self,
        cx: &Context,
        tasks: &Arc<Tasks>,
        revision: &'static str,
        task_id: &str,
    ) -> Result<Value, ErrorObject> {
        let poll = tasks.config.poll_interval.unwrap_or(POLL);
        let mut asking = FuturesUnordered::new();
        loop {
            let handle = tasks.running().get(task_id).cloned();
            // Subscribed before the store is read, so no change in between is missed.
            let mut version = handle.as_ref().map(|h| h.version.subscribe());
            let task = tasks.store.get(task_id).await.map_err(ErrorObject::internal)?;
            let task = task.ok_or_else(|| {
                ErrorObject::invalid_params(format!(
                    "tasks/result: unknown task {task_id:?} (never created, or expired)"
                ))
                .with_data(json!({"taskId": task_id}))
            })?;
            match task.status {
                TaskStatus::Completed => {
                    let mut result = task.result.unwrap_or_else(|| json!({}));
                    if let Some(object) = result.as_object_mut() {
                        let meta = object.entry("_meta").or_insert_with(|| json!({}));
                        if let Some(meta) = meta.as_object_mut() {
                            meta.insert(RELATED_TASK.into(), json!({"taskId": task_id}));
                        }
                    }
                    return Ok(adapt::result(revision, "tools/call", result));
                }
                TaskStatus::Failed => {
                    return Err(task.error.unwrap_or_else(|| ErrorObject::internal("the task failed")));
                }
                TaskStatus::Cancelled => {
                    return Err(ErrorObject::invalid_params(format!(
                        "tasks/result: task {task_id:?} was cancelled; it has no result"
                    ))
                    .with_data(json!({"taskId": task_id, "status": "cancelled"})));
                }
                TaskStatus::Working | TaskStatus::InputRequired => {}
            }
            if let Some(handle) = &handle {
                for (key, question) in &task.input_requests {
                    if let Some(claim) = Claim::take(handle, key) {
                        asking.push(ask(cx, claim, question.clone()));
                    }
                }
            }
            tokio::select! {
                Some(asked) = asking.next(), if !asking.is_empty() => asked?,
                () = changed(version.as_mut()) => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
    }
}

/// Completes when the record changes (never without a receiver, or once its handle is gone).
async fn changed(version: Option<&mut tokio::sync::watch::Receiver<u64>>) {
    let Some(version) = version else {
        return std::future::pending().await;
    };
    if version.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// A question of a task being asked now: its key stays in the handle's `asking` set while it
/// lives.
struct Claim {
    handle: Arc<TaskHandle>,
    key: String,
}

impl Claim {
    /// The claim on `key`, unless the question is being asked already.
    fn take(handle: &Arc<TaskHandle>, key: &str) -> Option<Self> {
        let mut asking = handle.asking.lock().unwrap_or_else(PoisonError::into_inner);
        asking.insert(key.to_string()).then(|| Self {
            handle: handle.clone(),
            key: key.to_string(),
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut asking: std::sync::MutexGuard<'_, BTreeSet<String>> =
            self.handle.asking.lock().unwrap_or_else(PoisonError::into_inner);
        asking.remove(&self.key);
    }
}

/// Asks `question` (`{method, params}`) of the client on the `tasks/result` of `cx`, and hands
/// the answer (or the client's error) to the task. Fails when the request fails otherwise: the
/// question stays for the next `tasks/result`.
async fn ask(cx: &Context, claim: Claim, question: Value) -> Result<(), ErrorObject> {
    let method = question
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut params = question.get("params").cloned().unwrap_or_else(|| json!({}));
    if let Some(object) = params.as_object_mut() {
        let meta = object.entry("_meta").or_insert_with(|| json!({}));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert(RELATED_TASK.into(), json!({"taskId": claim.handle.task_id()}));
            meta.insert(INPUT_KEY.into(), claim.key.clone().into());
        }
    }
    let answer = match cx.peer().request::<Value, Value>(&method, &params).await {
        Ok(answer) => Ok(answer),
        Err(PeerError::Remote(error)) => Err(InputError::Peer(PeerError::Remote(error))),
        Err(other) => {
            return Err(ErrorObject::internal(format!(
                "asking the client `{method}` for task {} failed: {other}",
                claim.handle.task_id()
            )));
        }
    };
    claim.handle.settle([(claim.key.clone(), answer)]).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::value::RawValue;

    fn augmented(params: &str) -> bool {
        let raw = RawValue::from_string(params.to_owned()).expect("JSON");
        super::augmented(Some(&raw))
    }

    #[test]
    fn a_task_member_augments_a_call_however_it_is_spelled() {
        assert!(augmented(r#"{"name":"echo","task":{"ttl":1000}}"#));
        assert!(augmented(r#"{"name":"echo","t\u0061sk":{}}"#));
        assert!(!augmented(r#"{"name":"echo","task":null}"#));
        assert!(!augmented(r#"{"name":"task","arguments":{"tasks":"task"}}"#));
        assert!(!augmented(r#"{"name":"echo","arguments":{"text":"\u0074ask"}}"#));
        assert!(!augmented(r#"{"name":"echo"}"#));
        assert!(!super::augmented(None));
    }
}
