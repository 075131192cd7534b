//! The context a handler gets: its request (cancellation, progress, the peer), the era it is
//! served in, and logging at the level the client asked for.

use std::sync::Arc;

use portico_protocol::v2026_07_28 as wire;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Era;
use super::input::{InputError, Rounds};
use super::tasks::{self, TaskHandle};
use crate::error::PeerError;
use crate::peer::{PeerHandle, RequestContext};

/// The `_meta` member of a session's server→client request naming the key its handler asked
/// it under ([`Context::request_input`]); Portico's own, so other peers ignore it.
pub const INPUT_KEY: &str = "io.portico/inputKey";

/// What a tool, resource, prompt or completion handler knows about its request.
pub struct Context {
    request: RequestContext,
    era: Era,
    log_level: Option<wire::LoggingLevel>,
    /// The client's capabilities (from `_meta` in 2026-07-28, from `initialize` otherwise).
    client_capabilities: serde_json::Value,
    /// The round state of a 2026-07-28 request that may ask for input.
    rounds: Option<Arc<Rounds>>,
    /// The task of a task-capable call (see [`super::tasks`]).
    task: Option<Arc<TaskHandle>>,
    /// The connection's id ([`Context::connection_id`]).
    connection: u64,
}

/// How severe a level is, from `debug` (0) to `emergency` (7) (RFC 5424 order; the generated
/// enum lists them alphabetically).
pub fn severity(level: wire::LoggingLevel) -> u8 {
    use wire::LoggingLevel as L;
    match level {
        L::Debug => 0,
        L::Info => 1,
        L::Notice => 2,
        L::Warning => 3,
        L::Error => 4,
        L::Critical => 5,
        L::Alert => 6,
        L::Emergency => 7,
    }
}

impl Context {
    pub(crate) fn new(
        request: RequestContext,
        era: Era,
        log_level: Option<wire::LoggingLevel>,
        client_capabilities: serde_json::Value,
        rounds: Option<Arc<Rounds>>,
    ) -> Self {
        Self {
            request,
            era,
            log_level,
            client_capabilities,
            rounds,
            task: None,
            connection: 0,
        }
    }

    /// The context of a request on the connection `id`.
    pub(crate) fn with_connection(mut self, id: u64) -> Self {
        self.connection = id;
        self
    }

    /// An id of the connection the request came on, unique in the process: a session, a
    /// socket, a stdio pipe (each 2026-07-28 request over HTTP has a connection of its own).
    /// What a gateway keeps a client's calls on one replica by.
    pub fn connection_id(&self) -> u64 {
        self.connection
    }

    /// The context of a call that runs (or may start) a task.
    pub(crate) fn with_task(mut self, task: Arc<TaskHandle>) -> Self {
        self.task = Some(task);
        self
    }

    /// Makes the call a task, if it can be one: the call is answered with the task's handle
    /// (`resultType: "task"`) and the handler goes on, its questions parked on the task (see
    /// [`super::tasks`]). Returns whether the handler now runs as a task: `false` when the tool
    /// does not support tasks, the client did not declare the extension, questions of this
    /// round are still unanswered (the call then ends with `input_required`), or the store
    /// refused the task. Call it once the `input_required` rounds gathered what the handler
    /// needs; calling it again is harmless.
    pub async fn start_task(&self) -> bool {
        let Some(task) = &self.task else { return false };
        if task.is_started() {
            return true;
        }
        if self.rounds.as_ref().is_some_and(|r| r.has_asked()) {
            return false;
        }
        task.start().await.is_ok()
    }

    /// The id of the task the handler runs as, once started.
    pub fn task_id(&self) -> Option<&str> {
        self.started_task().map(|t| t.task_id())
    }

    fn started_task(&self) -> Option<&Arc<TaskHandle>> {
        self.task.as_ref().filter(|t| t.is_started())
    }

    /// The log level the client asked for (`_meta` in 2026-07-28, `logging/setLevel` in a
    /// session); `None` when it asked for none.
    pub fn log_level(&self) -> Option<wire::LoggingLevel> {
        self.log_level
    }

    /// The capabilities the client declared (from `_meta` in 2026-07-28, from `initialize`
    /// otherwise), as sent.
    pub fn client_capabilities(&self) -> &serde_json::Value {
        &self.client_capabilities
    }

    /// Asks the user for input through the client (see [`super::input`]).
    pub async fn elicit(&self, params: wire::ElicitRequestParams) -> Result<wire::ElicitResult, InputError> {
        self.input("elicit", "elicitation/create", "elicitation", &params).await
    }

    /// Asks the client's model for a completion (see [`super::input`]).
    pub async fn sample(
        &self,
        params: wire::CreateMessageRequestParams,
    ) -> Result<wire::CreateMessageResult, InputError> {
        self.input("sample", "sampling/createMessage", "sampling", &params)
            .await
    }

    /// Asks the client for input under a key of the handler's choosing (the 2026-07-28
    /// `inputRequests` key; ignored in sessions), for a question of any kind; returns the raw
    /// answer.
    pub async fn request_input(&self, key: &str, request: wire::InputRequest) -> Result<serde_json::Value, InputError> {
        let (method, capability) = match &request {
            wire::InputRequest::Elicit(_) => ("elicitation/create", "elicitation"),
            wire::InputRequest::CreateMessage(_) => ("sampling/createMessage", "sampling"),
            wire::InputRequest::ListRoots(_) => ("roots/list", "roots"),
        };
        let params = serde_json::to_value(&request)
            .map_err(|e| InputError::Invalid {
                key: key.to_string(),
                message: e.to_string(),
            })?
            .get("params")
            .cloned()
            .unwrap_or_else(|| serde_json::json!({}));
        self.input_with_key(Some(key.to_string()), "input", method, capability, &params)
            .await
    }

    /// Asks the client for its roots (see [`super::input`]).
    pub async fn list_roots(&self) -> Result<wire::ListRootsResult, InputError> {
        self.input("roots", "roots/list", "roots", &serde_json::json!({})).await
    }

    async fn input<P: Serialize, R: DeserializeOwned>(
        &self,
        kind: &'static str,
        method: &str,
        capability: &'static str,
        params: &P,
    ) -> Result<R, InputError> {
        self.input_with_key(None, kind, method, capability, params).await
    }

    async fn input_with_key<P: Serialize, R: DeserializeOwned>(
        &self,
        key: Option<String>,
        kind: &'static str,
        method: &str,
        capability: &'static str,
        params: &P,
    ) -> Result<R, InputError> {
        if self.client_capabilities.get(capability).is_none() {
            if let Some(rounds) = &self.rounds {
                // In 2026-07-28 the request then fails with -32021 naming the capability.
                rounds.missing(capability);
            }
            return Err(InputError::Unsupported(capability));
        }
        if let Some(task) = self.started_task() {
            let key = match (key, &self.rounds) {
                (Some(key), _) => key,
                (None, Some(rounds)) => rounds.next_key(kind),
                (None, None) => task.next_key(kind),
            };
            let params = serde_json::to_value(params).map_err(|e| InputError::Invalid {
                key: key.clone(),
                message: e.to_string(),
            })?;
            let answers = self.rounds.as_ref().map(|r| r.answers());
            let answer = tasks::task_input(task, answers, &key, method, params).await?;
            return serde_json::from_value(answer).map_err(|e| InputError::Invalid {
                key,
                message: e.to_string(),
            });
        }
        let answer = match &self.rounds {
            Some(rounds) => {
                let key = key.unwrap_or_else(|| rounds.next_key(kind));
                let params = serde_json::to_value(params).map_err(|e| InputError::Invalid {
                    key: key.clone(),
                    message: e.to_string(),
                })?;
                let answer = rounds.answer_or_ask(&key, method, params)?;
                return serde_json::from_value(answer).map_err(|e| InputError::Invalid {
                    key,
                    message: e.to_string(),
                });
            }
            // A session's request has no key of its own: a handler's key travels in `_meta`
            // ([`INPUT_KEY`]), so an intermediary relaying the question to a 2026-07-28
            // client can ask it under the same key.
            None => match key {
                Some(key) => {
                    let mut params = serde_json::to_value(params).map_err(|e| InputError::Invalid {
                        key: key.clone(),
                        message: e.to_string(),
                    })?;
                    if let Some(object) = params.as_object_mut() {
                        let meta = object.entry("_meta").or_insert_with(|| serde_json::json!({}));
                        if let Some(meta) = meta.as_object_mut() {
                            meta.insert(INPUT_KEY.into(), key.into());
                        }
                    }
                    self.request
                        .peer()
                        .request::<serde_json::Value, serde_json::Value>(method, &params)
                        .await?
                }
                None => {
                    self.request
                        .peer()
                        .request::<P, serde_json::Value>(method, params)
                        .await?
                }
            },
        };
        serde_json::from_value(answer).map_err(|e| InputError::Invalid {
            key: method.to_string(),
            message: e.to_string(),
        })
    }

    /// The round state, kept by the framework before the context goes to the handler.
    pub(crate) fn rounds(&self) -> Option<Arc<Rounds>> {
        self.rounds.clone()
    }

    /// The underlying request: id, method, cancellation token.
    pub fn request(&self) -> &RequestContext {
        &self.request
    }

    /// The value of type `T` the transport attached to the request (an authenticated
    /// principal; see [`crate::extensions`]), if any.
    pub fn extension<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.request.extensions().get::<T>()
    }

    /// Everything the transport attached to the request.
    pub fn extensions(&self) -> &crate::Extensions {
        self.request.extensions()
    }

    /// The era (and so the revision) the request is served in.
    pub fn era(&self) -> Era {
        self.era
    }

    /// Asks the transport to end the stream carrying this request's messages before the
    /// response, for the client to resume it ([`crate::PeerHandle::close_stream`]); whether it
    /// could. Streamable HTTP sessions honour it; other transports have nothing to close.
    pub async fn close_stream(&self) -> bool {
        self.request.peer().close_stream().await
    }

    /// Whether the client cancelled the request (or, in a task, the task: `tasks/cancel`).
    pub fn is_cancelled(&self) -> bool {
        match &self.task {
            Some(task) => task.is_cancelled(),
            None => self.request.is_cancelled(),
        }
    }

    /// Completes when the client cancels the request (in a task-capable call: the task; a call
    /// given up before its task exists is dropped).
    pub async fn cancelled(&self) {
        match &self.task {
            Some(task) => task.cancelled().await,
            None => self.request.cancelled().await,
        }
    }

    /// Reports progress, if the client asked for it (a `progressToken`). Nothing is sent from a
    /// task: the extension has no progress on tasks.
    pub async fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) -> Result<(), PeerError> {
        if self.started_task().is_some() {
            return Ok(());
        }
        self.request.progress(progress, total, message).await
    }

    /// Sends a log message (`notifications/message`) if the client wants messages of this level:
    /// in 2026-07-28 only when the request's `_meta` set `logLevel` at or below it; in a session,
    /// unless `logging/setLevel` set a higher level. Nothing is sent from a task (the extension
    /// has no log messages on tasks).
    pub async fn log<T: Serialize + ?Sized>(&self, level: wire::LoggingLevel, data: &T) -> Result<(), PeerError> {
        if !self.wants_log(level) {
            return Ok(());
        }
        #[derive(Serialize)]
        struct Message<'a, T: ?Sized> {
            level: wire::LoggingLevel,
            data: &'a T,
        }
        self.request
            .peer()
            .notify("notifications/message", &Message { level, data })
            .await
    }

    /// Whether the client wants log messages of `level` (what [`Context::log`] decides): in
    /// 2026-07-28 only when the request's `_meta` set `logLevel` at or below it; in a session,
    /// unless `logging/setLevel` set a higher level; never from a task.
    pub fn wants_log(&self, level: wire::LoggingLevel) -> bool {
        if self.started_task().is_some() {
            return false;
        }
        match (self.era, self.log_level) {
            (_, Some(threshold)) => severity(level) >= severity(threshold),
            (Era::Stateless, None) => false,
            (Era::Stateful(_), None) => true,
        }
    }

    /// The peer, for requests to the client (sampling, elicitation, roots) in a session.
    pub fn peer(&self) -> &PeerHandle {
        self.request.peer()
    }
}
