//! One call relayed to an upstream, and everything that flows back through it to the client
//! that made it, whatever revision each side speaks:
//!
//! - **progress**: the client's `progressToken` is replaced by one of the gateway's own, and the
//!   upstream's progress is reported to the client under the client's token;
//! - **log messages** about the call go to the client at the level it asked for;
//! - **questions** (elicitation, sampling, roots) go to the client with
//!   [`Context::request_input`]: a server→client request in a 2025-x session, an
//!   `input_required` result to a 2026-07-28 client. They come from the upstream either as a
//!   session's server→client requests or as its own `input_required` results, which the
//!   gateway answers and retries itself;
//! - **cancellation**: a client that cancels (or disconnects) drops the relayed call, and the
//!   upstream is sent `notifications/cancelled`;
//! - **credentials**: never the client's. The replica's connection carries the gateway's own;
//!   on an upstream with token exchange, the call carries the caller's exchanged token, got
//!   before a replica is picked ([`crate::credentials`]; a failure is [`UPSTREAM_UNAVAILABLE`]
//!   naming the upstream, and no replica is blamed for it).
//!
//! A 2026-07-28 client answers questions by retrying its request with the answers. The
//! gateway then relays the call again from the start, and gives the upstream the answers as
//! it asks the same questions, so the upstream's own state never leaves the gateway and
//! upstreams of either generation work the same way. A question's key is the upstream's own
//! (its `inputRequests` key; for a Portico server in a session, the `io.portico/inputKey` of
//! the request's `_meta`), else made from its method and the order it was asked in.
//!
//! A session upstream asks one question at a time and waits for each answer. While relaying
//! for a 2026-07-28 client that has not answered a question yet, the gateway answers it to
//! the upstream with an error and lets the call go on: an upstream that asks its next
//! questions before giving up (as a handler gathering several answers at once does) has them
//! all collected, and the client gets them in one `input_required` round rather than one
//! round each. That relay's own result is then dropped; the retry, answers in hand, is the one
//! whose result the client gets. An upstream tool relayed this way may so run up to its
//! questions more than once, as it would for a client retrying it.
//!
//! Errors: the upstream's own JSON-RPC errors reach the client as they are; the gateway's are
//! in the `-32050 … -32052` range and name the upstream ([`UPSTREAM_UNAVAILABLE`] and the rest;
//! a message from the upstream that is not JSON-RPC at all is [`UPSTREAM_INVALID`], at once —
//! on stdio and WebSocket for every call then waiting on the connection, since such a message
//! names none — and the upstream is told the call is cancelled);
//! `-32053` is the rate limiter's ([`crate::ratelimit::RATE_LIMITED`]), `-32054` the audit
//! trail's ([`crate::audit::AUDIT_UNAVAILABLE`]), `-32055` the plugins'
//! ([`crate::plugin::PLUGIN_DENIED`]) and `-32056` the cache's ([`crate::cache::CACHE_UNAVAILABLE`]).
//!
//! The configured plugins ([`crate::plugin`]) run here, around the relay: every request relayed
//! goes through [`forward`]. So does the cache ([`crate::cache`]), between the plugins' `before`
//! and `after` hooks: a request the cache answers still goes through every plugin, and the
//! cache keeps the upstream's result as it came, before any `after` hook changed it.

use std::sync::atomic::{AtomicU64, Ordering};

use portico_core::client::{CallObserver, ClientError, InputContext, Observer, ObserverFuture, Params, RequestOptions};
use portico_core::server::input::InputError;
use portico_core::server::{Answered, Context};
use portico_core::{ErrorObject, server::Era};
use portico_protocol::v2026_07_28 as wire;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot};

use portico_transport::http::auth::Auth;
use portico_transport::otel::{self, ActiveSpan, SpanKind};

use crate::audit;
use crate::auth::Principal;
use crate::cache::{self, Cache};
use crate::metrics::Outcome;
use crate::plugin::{Plugged, Refusal};
use crate::upstream::Upstream;

/// The message of the error a relay ends with when the client is to answer questions first
/// (the framework answers `input_required` in its place).
const INPUT_REQUIRED: &str = "input required from the client";

/// The upstream is not connected, or its connection failed during the call.
pub const UPSTREAM_UNAVAILABLE: i64 = -32050;
/// The upstream did not answer within its `timeout`.
pub const UPSTREAM_TIMEOUT: i64 = -32051;
/// The upstream answered with something that is not a valid answer.
pub const UPSTREAM_INVALID: i64 = -32052;
/// No upstream serves the tool, prompt or resource named.
pub const UNKNOWN_TARGET: i64 = -32602;

/// `input_required` rounds relayed at most for one call.
const MAX_ROUNDS: usize = 16;

/// The `_meta` key carrying a 2026-07-28 request's client capabilities.
const CAPABILITIES_KEY: &str = "io.modelcontextprotocol/clientCapabilities";
/// The `_meta` key carrying a 2026-07-28 request's log level.
const LOG_LEVEL_KEY: &str = "io.modelcontextprotocol/logLevel";
/// The `_meta` key naming the server in 2026-07-28 results: the gateway names itself.
const SERVER_INFO_KEY: &str = "io.modelcontextprotocol/serverInfo";

/// Progress tokens the gateway gives upstreams.
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

/// What the upstream sent about the call.
enum Event {
    Notification {
        method: String,
        params: Value,
    },
    Request {
        method: String,
        params: Value,
        reply: oneshot::Sender<Result<Box<RawValue>, ErrorObject>>,
    },
}

/// Hands the upstream's messages about one call to the task relaying it.
struct Relay {
    events: mpsc::Sender<Event>,
}

impl CallObserver for Relay {
    fn notification(&self, method: &str, params: Option<&RawValue>) {
        let params = params
            .and_then(|p| serde_json::from_str(p.get()).ok())
            .unwrap_or(Value::Null);
        // Progress and log messages are hints: dropped, not waited for, when the client is slow.
        let _ = self.events.try_send(Event::Notification {
            method: method.to_string(),
            params,
        });
    }

    fn request(&self, method: String, params: Option<Box<RawValue>>, _cx: InputContext) -> ObserverFuture {
        let events = self.events.clone();
        Box::pin(async move {
            let params = params
                .and_then(|p| serde_json::from_str(p.get()).ok())
                .unwrap_or_else(|| json!({}));
            let (reply, answer) = oneshot::channel();
            let ended = || ErrorObject::new(UPSTREAM_UNAVAILABLE, "the call this request belongs to has ended");
            events
                .send(Event::Request { method, params, reply })
                .await
                .map_err(|_| ended())?;
            answer.await.map_err(|_| ended())?
        })
    }
}

/// Methods that change nothing: tried on another replica when theirs fails.
const IDEMPOTENT: &[&str] = &["resources/read", "prompts/get", "completion/complete"];

/// Relays `method` with `params` (the client's, without their `_meta`) to a replica of
/// `upstream` for the call `cx`, and returns the upstream's complete result (a newest-revision
/// result object). The replica is picked by the upstream's `balance` policy; a call that fails
/// for the replica's sake (no connection, a transport error, a timeout) counts against its
/// breaker, and an idempotent one is tried on another replica (`retries`).
///
/// The `plugins` that apply to the request run around it ([`crate::plugin`]): their `before`
/// hooks first (a denial answers [`crate::plugin::PLUGIN_DENIED`] and no upstream is asked),
/// their `after` hooks on the upstream's result.
pub async fn forward(
    upstream: &Upstream,
    cx: &Context,
    method: &str,
    params: Map<String, Value>,
    plugins: Plugged<'_>,
) -> Result<Value, ErrorObject> {
    forward_through(upstream, cx, method, params, plugins, None).await
}

/// [`forward`], answered by `cache` when it has the result (`resources/read`, or a call of a
/// tool it keeps: the [`cache::Kind`]): after the plugins' `before` hooks (the cache is keyed by
/// the arguments they leave), before their `after` hooks. A result served from the cache is
/// logged and audited as a relayed one is (the audit record's `detail` says so), and not
/// counted in `portico_gateway_requests_total`.
pub(crate) async fn forward_through(
    upstream: &Upstream,
    cx: &Context,
    method: &str,
    params: Map<String, Value>,
    plugins: Plugged<'_>,
    cache: Option<(&Cache, cache::Kind)>,
) -> Result<Value, ErrorObject> {
    forward_through_as(upstream, cx, method, params, None, plugins, cache, false)
        .await?
        .into_value()
}

/// [`forward_through`], its result handed on as the upstream's text ([`Answered::Text`]) when
/// `text` is set and nothing on the way reads it: no plugin applies, the cache does not
/// keep it, and the result is a plain complete one (see [`as_text`]). Else a value.
///
/// `arguments`, when given, are a `tools/call`'s arguments as the client sent them (the text
/// of a JSON object, as the request carried it: [`portico_core::server::Catalog::call_tool_raw`]),
/// the member `arguments` of the params: they go to the upstream as they came, unless
/// something on the way reads them (a plugin or the cache: then they are decoded into
/// `params` first; the audit trail digests them decoded, as it digests `params`' own).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn forward_through_as(
    upstream: &Upstream,
    cx: &Context,
    method: &str,
    mut params: Map<String, Value>,
    mut arguments: Option<&RawValue>,
    plugins: Plugged<'_>,
    cache: Option<(&Cache, cache::Kind)>,
    text: bool,
) -> Result<Answered, ErrorObject> {
    let started = std::time::Instant::now();
    let tool = params
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    // What the audit record names: the digest of the arguments as the client sent them, and
    // the target (a resource's URI; a tool's or prompt's name is `tool`).
    let (arguments_digest, target) = match upstream.auditor() {
        Some(_) => (
            match arguments {
                Some(raw) => Some(audit::digest(&read_arguments::<Value>(raw.get())?)),
                None => params.get("arguments").map(audit::digest),
            },
            params
                .get("uri")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| (!tool.is_empty()).then(|| tool.clone())),
        ),
        None => (None, None),
    };
    // The plugins read the arguments as they start, the cache keys by them.
    if cache.is_some() || plugins.apply(upstream, method, &params) {
        merge(&mut params, &mut arguments)?;
    }
    // The paths most calls do not take (a refusal, the cache, the audit trail, the upstream's
    // questions) are awaited boxed: a future holds the state of every await in it, and this
    // one is moved whole into the catalog's box as each call starts — with those states inline
    // that was several KiB copied per call.
    let mut plugged = plugins.start(upstream, cx, method, &params);
    if let Some(run) = plugged.as_mut()
        && let Err(refusal) = run.before(&mut params).await
    {
        let record = Denied {
            method,
            target,
            arguments_digest,
            took: None,
        };
        return Box::pin(refused(upstream, cx, record, &refusal, run.annotations())).await;
    }
    let text = text && plugged.is_none();
    let (mut outcome, cached) = match cache {
        None => (
            forward_to_replicas_as(upstream, cx, method, (params, arguments), &|| {}, text).await,
            None,
        ),
        Some((cache, kind)) => match Box::pin(cache.relay(upstream, cx, kind, method, params)).await {
            cache::Answer::Relayed(outcome) => (outcome.map(Answered::Value), None),
            cache::Answer::Served(result, how) => (Ok(Answered::Value(result)), Some(how)),
            cache::Answer::Refused(error) => (Err(error), Some("unavailable")),
        },
    };
    let counted = match &outcome {
        Ok(result) if result.is_error() => Outcome::ToolError,
        Ok(_) => Outcome::Ok,
        Err(e) if e.message == INPUT_REQUIRED => Outcome::InputRequired,
        Err(e) if e.code == UPSTREAM_UNAVAILABLE => Outcome::Unavailable,
        Err(e) if e.code == UPSTREAM_TIMEOUT => Outcome::Timeout,
        Err(_) => Outcome::Error,
    };
    // Only names the upstream lists become label values: a name sent to an upstream that is
    // down (routed there unchecked) must not grow the metrics without bound.
    let snapshot = upstream.snapshot();
    let listed = match method {
        "tools/call" => snapshot.tools.iter().any(|t| t.name == tool),
        "prompts/get" => snapshot.prompts.iter().any(|p| p.name == tool),
        _ => false,
    };
    let listed_tool = if listed { tool.as_str() } else { "" };
    let took = started.elapsed();
    if cached.is_none() {
        upstream
            .metrics()
            .record(upstream.name(), method, listed_tool, counted, took);
    }
    if let (Some(run), Ok(answered)) = (plugged.as_mut(), outcome.as_mut()) {
        // The hooks read and change a value (a result with plugins on is never text).
        let mut result = std::mem::replace(answered, Answered::Value(Value::Null)).into_value()?;
        if let Err(refusal) = run.after(&mut result).await {
            let record = Denied {
                method,
                target,
                arguments_digest,
                took: Some(took),
            };
            return Box::pin(refused(upstream, cx, record, &refusal, run.annotations())).await;
        }
        *answered = Answered::Value(result);
    }
    // The access log line: `relayed`, or `served from the cache` with how.
    macro_rules! access {
        ($($field:tt)*) => {
            match cached {
                None => tracing::info!(target: "portico::access", upstream = upstream.name(), method,
                    tool = listed_tool, outcome = ?counted, micros = took.as_micros() as u64, $($field)* "relayed"),
                Some(how) => tracing::info!(target: "portico::access", upstream = upstream.name(), method,
                    tool = listed_tool, outcome = ?counted, micros = took.as_micros() as u64, cache = how,
                    $($field)* "served from the cache"),
            }
        };
    }
    let Some(auditor) = upstream.auditor() else {
        access!();
        return outcome;
    };
    let correlation = otel::current().map_or_else(crate::audit::correlation_id, |trace| trace.trace_id_hex());
    access!(correlation = %correlation,);
    let mut record = audit::Record::new(audit::Kind::Call, method, counted.as_str(), correlation);
    record.principal = cx.extension::<Principal>().map(|p| p.subject.clone());
    record.target = target;
    record.upstream = Some(upstream.name().to_string());
    record.arguments_digest = arguments_digest;
    record.latency_us = Some(i64::try_from(took.as_micros()).unwrap_or(i64::MAX));
    if let Some(how) = cached {
        record.detail = Some(format!("the gateway's cache: {how}"));
    }
    if let Err(e) = &outcome {
        record.error_code = Some(e.code);
        record.detail = Some(e.message.clone());
    }
    if let Some(run) = &plugged
        && !run.annotations().is_empty()
    {
        let plugins = format!("plugins: {}", Value::Object(run.annotations().clone()));
        record.detail = Some(match record.detail.take() {
            Some(detail) => format!("{detail}; {plugins}"),
            None => plugins,
        });
    }
    match Box::pin(auditor.record_or_refuse(record)).await {
        Ok(()) => outcome,
        Err(refusal) => Err(ErrorObject::new(audit::AUDIT_UNAVAILABLE, refusal)),
    }
}

/// What the audit record of a request a plugin refused names.
struct Denied<'a> {
    method: &'a str,
    target: Option<String>,
    arguments_digest: Option<String>,
    /// How long the upstream took, when it was asked (a refusal `after`).
    took: Option<std::time::Duration>,
}

/// The answer to a request a plugin refused, recorded in the audit trail (a `denial`) when
/// there is one.
async fn refused<T>(
    upstream: &Upstream,
    cx: &Context,
    denied: Denied<'_>,
    refusal: &Refusal,
    annotations: &Map<String, Value>,
) -> Result<T, ErrorObject> {
    let error = refusal.error(annotations);
    let Some(auditor) = upstream.auditor() else {
        return Err(error);
    };
    let correlation = otel::current().map_or_else(crate::audit::correlation_id, |trace| trace.trace_id_hex());
    let mut record = audit::Record::new(audit::Kind::Denial, denied.method, "denied", correlation);
    record.principal = cx.extension::<Principal>().map(|p| p.subject.clone());
    record.target = denied.target;
    record.upstream = Some(upstream.name().to_string());
    record.arguments_digest = denied.arguments_digest;
    record.latency_us = denied
        .took
        .map(|took| i64::try_from(took.as_micros()).unwrap_or(i64::MAX));
    record.error_code = Some(error.code);
    record.detail = Some(refusal.detail());
    match auditor.record_or_refuse(record).await {
        Ok(()) => Err(error),
        Err(refusal) => Err(ErrorObject::new(audit::AUDIT_UNAVAILABLE, refusal)),
    }
}

/// A `tools/call`'s arguments as the client sent them (see [`forward_through_as`]), read as
/// `T` (a value, or the `&RawValue` of the text); `-32602` naming the problem if they do not read.
pub(crate) fn read_arguments<'a, T: serde::Deserialize<'a>>(arguments: &'a str) -> Result<T, ErrorObject> {
    serde_json::from_str(arguments).map_err(|e| ErrorObject::invalid_params(format!("tools/call: {e}")))
}

/// Puts `arguments`, if given apart, into `params` as their member `arguments`, decoded.
fn merge(params: &mut Map<String, Value>, arguments: &mut Option<&RawValue>) -> Result<(), ErrorObject> {
    if let Some(raw) = arguments.take() {
        params.insert("arguments".into(), read_arguments::<Value>(raw.get())?);
    }
    Ok(())
}

/// The span name of a relayed call: `tools/call echo`, or the method alone.
fn span_name(method: &str, params: &Map<String, Value>) -> String {
    match params.get("name").or_else(|| params.get("uri")).and_then(Value::as_str) {
        Some(target) => format!("{method} {target}"),
        None => method.to_string(),
    }
}

/// [`forward`], uncounted and without plugins, calling `asked` whenever the upstream asks the
/// client something about the call (elicitation, sampling, roots): its result then depends on
/// the answers ([`crate::cache`] keeps no such result).
pub(crate) async fn forward_to_replicas(
    upstream: &Upstream,
    cx: &Context,
    method: &str,
    params: Map<String, Value>,
    asked: &(dyn Fn() + Sync),
) -> Result<Value, ErrorObject> {
    forward_to_replicas_as(upstream, cx, method, (params, None), asked, false)
        .await?
        .into_value()
}

/// [`forward_to_replicas`], the result as text when `text` is set and it can be ([`as_text`]);
/// the params with a tool call's arguments apart, as they came (see [`forward_through_as`]).
async fn forward_to_replicas_as(
    upstream: &Upstream,
    cx: &Context,
    method: &str,
    (params, arguments): (Map<String, Value>, Option<&RawValue>),
    asked: &(dyn Fn() + Sync),
    text: bool,
) -> Result<Answered, ErrorObject> {
    let name = upstream.name();
    let attempts = if IDEMPOTENT.contains(&method) {
        1 + upstream.config().retries as usize
    } else {
        1
    };
    // A caller's own credentials, when the upstream exchanges callers' tokens: obtained before
    // any replica is picked, so a caller the authorization server refuses costs no replica.
    let credentials = upstream.caller_credentials(cx).await?;
    let mut tried = Vec::new();
    let mut last = None;
    for _ in 0..attempts {
        let Some(replica) = upstream.pick(cx.connection_id(), &tried) else {
            break;
        };
        tried.push(replica.index());
        let Some(client) = replica.client() else {
            replica.failed();
            continue;
        };
        let _in_flight = replica.start_call();
        // A client span per attempt, a child of the request's server span; the upstream gets
        // its context in `_meta.traceparent` (and, over HTTP, the `traceparent` header). With
        // no trace to continue and nowhere to send spans, there is none (no cost).
        let parent = otel::current();
        let mut span = (parent.is_some() || upstream.exporter().is_some()).then(|| {
            let mut span = ActiveSpan::new(
                upstream.exporter().cloned(),
                span_name(method, &params),
                SpanKind::Client,
                parent.as_ref(),
            );
            span.set_attribute("mcp.method.name", method);
            span.set_attribute("portico.upstream", name);
            span.set_attribute("server.address", replica.describe());
            span
        });
        let traced = span.as_ref().map(|s| s.context().traceparent());
        let outcome = relay(
            name,
            &client,
            cx,
            Call {
                method,
                params: &params,
                arguments,
                timeout: upstream.config().timeout,
                traceparent: traced,
                credentials: credentials.as_ref(),
                on_question: asked,
                text,
            },
        )
        .await;
        if let (Err(failed), Some(span)) = (&outcome, span.as_mut()) {
            span.set_error(failed.error.message.clone());
        }
        if let Some(span) = span {
            span.end();
        }
        match outcome {
            Ok(value) => {
                replica.succeeded();
                return Ok(value);
            }
            Err(Failed {
                error,
                replica_fault: true,
            }) => {
                replica.failed();
                tracing::warn!(upstream = name, replica = %replica.describe(), method, error = %error.message, "call failed");
                last = Some(error);
            }
            Err(Failed { error, .. }) => {
                replica.succeeded();
                return Err(error);
            }
        }
    }
    Err(last.unwrap_or_else(|| {
        let why = upstream.unavailable_reason();
        ErrorObject::new(UPSTREAM_UNAVAILABLE, format!("upstream `{name}` is unavailable: {why}"))
            .with_data(json!({"upstream": name, "reason": why}))
    }))
}

/// A relay that failed: the client's error, and whether the replica is to blame.
struct Failed {
    error: ErrorObject,
    replica_fault: bool,
}

impl From<ErrorObject> for Failed {
    fn from(error: ErrorObject) -> Self {
        Self {
            error,
            replica_fault: false,
        }
    }
}

/// What one relay sends.
struct Call<'a> {
    method: &'a str,
    params: &'a Map<String, Value>,
    /// A tool call's arguments as the client sent them, the params' member `arguments`.
    arguments: Option<&'a RawValue>,
    timeout: std::time::Duration,
    traceparent: Option<String>,
    /// The caller's own credentials for the upstream (token exchange), if it has them.
    credentials: Option<&'a Auth>,
    /// Called for each question the upstream asks.
    on_question: &'a (dyn Fn() + Sync),
    /// Whether the result may be handed on as text ([`as_text`]).
    text: bool,
}

/// One relay of the call on `client` (one replica of the upstream `name`).
async fn relay(
    name: &str,
    client: &portico_core::client::Client,
    cx: &Context,
    call: Call<'_>,
) -> Result<Answered, Failed> {
    let Call {
        method,
        params,
        arguments,
        timeout,
        traceparent,
        credentials,
        on_question,
        text,
    } = call;
    let (events_tx, mut events) = mpsc::channel(64);
    let mut options = RequestOptions::new()
        .timeout(timeout)
        .observer(Observer::new(Relay { events: events_tx }));
    if let Some(credentials) = credentials {
        // Sent with this call's requests alone, on the replica's shared connection.
        options = options.extension(credentials.clone());
    }
    if let Some(traceparent) = traceparent {
        options = options.meta(otel::TRACEPARENT, traceparent.into());
    }
    if cx.request().progress_token().is_some() {
        let token = format!("portico-{}", NEXT_TOKEN.fetch_add(1, Ordering::Relaxed));
        options = options.progress(wire::ProgressToken::String(token));
    }
    if client.era() == Era::Stateless {
        // The upstream learns what the client can do, and the level it wants, call by call. A
        // session's client that set no level gets every message (as a session does), so the
        // upstream is asked for all of them; the client's level filters them here.
        options = options.meta(CAPABILITIES_KEY, cx.client_capabilities().clone());
        let level = match (cx.era(), cx.log_level()) {
            (_, Some(level)) => Some(level),
            (Era::Stateful(_), None) => Some(wire::LoggingLevel::Debug),
            (Era::Stateless, None) => None,
        };
        if let Some(level) = level {
            options = options.meta(LOG_LEVEL_KEY, serde_json::to_value(level).unwrap_or(Value::Null));
        }
    }
    // Questions are numbered in the order the upstream asks them, the same on every relay of
    // the call, so that a retried 2026-07-28 request's answers meet the same questions.
    let mut asked = 0usize;
    // Whether a question of the upstream's was left for the client to answer in its retry.
    let mut unanswered = false;
    // The params of a round after the first: the client's, with the answers so far.
    let mut answered: Option<Map<String, Value>> = None;
    for _ in 0..MAX_ROUNDS {
        let result = {
            let mut sent = Params::new(answered.as_ref().unwrap_or(params));
            if let Some(arguments) = arguments {
                sent = sent.with_raw("arguments", arguments);
            }
            let call = client.forward_text(method, sent, &options);
            tokio::pin!(call);
            // No look at the client's cancellation here: a cancelled request's handler is not
            // polled again (`portico_core::unless_cancelled`), and dropping it drops the
            // upstream call, which cancels it there.
            loop {
                tokio::select! {
                    // What the upstream sent before its answer goes first.
                    biased;
                    Some(event) = events.recv() => Box::pin(relay_event(cx, event, &mut asked, &mut unanswered, on_question)).await.map_err(Failed::from)?,
                    result = &mut call => break result,
                }
            }
        };
        // Notifications handed on just before the answer arrived.
        while let Ok(event) = events.try_recv() {
            Box::pin(relay_event(cx, event, &mut asked, &mut unanswered, on_question))
                .await
                .map_err(Failed::from)?;
        }
        if unanswered {
            // The client is a 2026-07-28 one: the framework answers `input_required` with
            // every question the upstream asked.
            return Err(ErrorObject::internal(INPUT_REQUIRED).into());
        }
        let raw = result.map_err(|e| upstream_error(name, e, credentials.is_some()))?;
        let raw = match text {
            true => match as_text(raw) {
                Ok(answered) => return Ok(answered),
                Err(raw) => raw,
            },
            false => raw,
        };
        let mut result =
            portico_core::client::value_of(method, &raw).map_err(|e| upstream_error(name, e, credentials.is_some()))?;
        if result.get("resultType").and_then(Value::as_str) != Some(wire::InputRequiredResult::RESULT_TYPE) {
            if let Some(Value::Object(meta)) = result.get_mut("_meta") {
                meta.remove(SERVER_INFO_KEY);
                if meta.is_empty() {
                    result.as_object_mut().map(|r| r.remove("_meta"));
                }
            }
            return Ok(Answered::Value(result));
        }
        // A 2026-07-28 upstream's questions: asked of the client, answered, and the request
        // sent again with the answers and the upstream's state.
        on_question();
        let required: wire::InputRequiredResult = serde_json::from_value(result).map_err(|e| {
            Failed::from(ErrorObject::new(
                UPSTREAM_INVALID,
                format!("upstream `{name}` sent an invalid input_required result: {e}"),
            ))
        })?;
        let mut responses = Map::new();
        let mut missing = false;
        for (key, request) in required.input_requests.into_iter().flatten() {
            match Box::pin(cx.request_input(&key, request)).await {
                Ok(answer) => {
                    responses.insert(key, answer);
                }
                Err(InputError::Required) => missing = true,
                Err(e) => return Err(input_error(e).into()),
            }
        }
        if missing {
            // The client is a 2026-07-28 one: the framework answers `input_required`.
            return Err(ErrorObject::internal(INPUT_REQUIRED).into());
        }
        let mut round = params.clone();
        round.insert("inputResponses".into(), Value::Object(responses));
        if let Some(state) = required.request_state {
            round.insert("requestState".into(), state.into());
        }
        answered = Some(round);
        asked += 1;
    }
    Err(ErrorObject::new(
        UPSTREAM_INVALID,
        format!("upstream `{name}` still asked for input after {MAX_ROUNDS} rounds"),
    )
    .into())
}

/// An upstream's result handed on as its text, unread ([`Answered::Text`]), when it is a
/// plain complete result of any revision ([`Answered::relayed`] says which, and cuts the
/// upstream's `_meta` and `resultType` out) holding no `taskId` (task handles are renamed on the way). Any other result is given
/// back, to be read into a value.
fn as_text(raw: Box<RawValue>) -> Result<Answered, Box<RawValue>> {
    static TASK_ID: portico_core::message::Mention = portico_core::message::Mention::new("\"taskId\"");
    if TASK_ID.is_in(raw.get()) {
        return Err(raw);
    }
    Answered::relayed(raw)
}

/// Hands one of the upstream's messages about the call to the client. A question a 2026-07-28
/// client has not answered yet is answered with an error, and `unanswered` set: the upstream
/// goes on to its next question (if it asks more before giving up), so that the client gets
/// every question it can in one round; the call ends with `input_required` and is relayed
/// again, answers in hand, when the client retries.
async fn relay_event(
    cx: &Context,
    event: Event,
    asked: &mut usize,
    unanswered: &mut bool,
    on_question: &(dyn Fn() + Sync),
) -> Result<(), ErrorObject> {
    match event {
        Event::Notification { method, params } if method == "notifications/progress" => {
            let progress = params.get("progress").and_then(Value::as_f64).unwrap_or(0.0);
            let total = params.get("total").and_then(Value::as_f64);
            let message = params.get("message").and_then(Value::as_str);
            // A client gone away is noticed by the cancellation; nothing to do here.
            let _ = cx.progress(progress, total, message).await;
        }
        Event::Notification { params, .. } => {
            let level = params
                .get("level")
                .and_then(|l| serde_json::from_value::<wire::LoggingLevel>(l.clone()).ok());
            if let Some(level) = level
                && cx.wants_log(level)
            {
                let _ = cx.peer().notify("notifications/message", &params).await;
            }
        }
        Event::Request { method, params, reply } => {
            on_question();
            *asked += 1;
            // The upstream handler's own key when it is a Portico server, else one made up.
            let key = params
                .get("_meta")
                .and_then(|m| m.get(portico_core::server::context::INPUT_KEY))
                .and_then(Value::as_str)
                .map_or_else(
                    || format!("upstream-{}-{asked}", method.replace('/', "-")),
                    str::to_string,
                );
            let request = serde_json::from_value::<wire::InputRequest>(json!({"method": method, "params": params}));
            let request = match request {
                Ok(request) => request,
                Err(e) => {
                    let _ = reply.send(Err(ErrorObject::invalid_params(format!("{method}: {e}"))));
                    return Ok(());
                }
            };
            match cx.request_input(&key, request).await {
                Ok(answer) => {
                    let answer = serde_json::value::to_raw_value(&answer).map_err(ErrorObject::internal);
                    let _ = reply.send(answer);
                }
                Err(InputError::Required) => {
                    *unanswered = true;
                    let _ = reply.send(Err(ErrorObject::internal(
                        "the client is asked first; the call will be made again with its answer",
                    )));
                }
                Err(e) => {
                    let _ = reply.send(Err(input_error(e)));
                }
            }
        }
    }
    Ok(())
}

/// The error a client gets for a failed question.
fn input_error(error: InputError) -> ErrorObject {
    match error {
        InputError::Unsupported(capability) => ErrorObject::method_not_found(capability).with_data(json!({
            "reason": format!("the client did not declare the `{capability}` capability")
        })),
        InputError::Peer(portico_core::PeerError::Remote(error)) => error,
        other => ErrorObject::internal(other.to_string()),
    }
}

/// The client's error for a failed relay: the upstream's own JSON-RPC errors as they are, the
/// rest in the gateway's range, naming the upstream; the replica is to blame for a connection
/// that failed or a timeout — not for refusing a caller's own credentials (`caller_credentials`:
/// the call carried an exchanged token, and the upstream answered `401` or `403`).
fn upstream_error(name: &str, error: ClientError, caller_credentials: bool) -> Failed {
    let refused_caller = caller_credentials
        && matches!(
            error,
            ClientError::Transport {
                status: Some(401 | 403),
                ..
            }
        );
    // A replica that sends what is not JSON-RPC is broken: its breaker counts it, and an
    // idempotent call is tried on another replica.
    let replica_fault = !refused_caller
        && matches!(
            error,
            ClientError::Closed
                | ClientError::Connect(_)
                | ClientError::Timeout { .. }
                | ClientError::Transport { .. }
                | ClientError::SessionExpired { .. }
                | ClientError::Unreadable { .. }
        );
    Failed {
        error: client_error(name, error),
        replica_fault,
    }
}

/// [`upstream_error`]'s error.
fn client_error(name: &str, error: ClientError) -> ErrorObject {
    let data = |reason: String| json!({"upstream": name, "reason": reason});
    match error {
        ClientError::Rpc { error, .. } => error,
        ClientError::Timeout { method, after } => ErrorObject::new(
            UPSTREAM_TIMEOUT,
            format!("upstream `{name}` did not answer `{method}` within {after:?}"),
        )
        .with_data(data(format!("timeout after {after:?}"))),
        ClientError::Protocol { method, message } => ErrorObject::new(
            UPSTREAM_INVALID,
            format!("upstream `{name}` sent an invalid answer to `{method}`: {message}"),
        )
        .with_data(data(message)),
        ClientError::Unreadable { method, message } => ErrorObject::new(
            UPSTREAM_INVALID,
            format!("upstream `{name}` sent an unreadable answer to `{method}`: {message}"),
        )
        .with_data(data(message)),
        ClientError::Input { error, .. } => error,
        other => {
            let reason = other.to_string();
            ErrorObject::new(
                UPSTREAM_UNAVAILABLE,
                format!("upstream `{name}` is unavailable: {reason}"),
            )
            .with_data(data(reason))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).expect("JSON")
    }

    #[test]
    fn a_plain_result_is_handed_on_as_text_without_its_envelope() {
        let info = r#""io.modelcontextprotocol/serverInfo":{"name":"up","version":"1"}"#;
        for (given, expected, is_error) in [
            (
                format!(
                    r#"{{"content":[{{"type":"text","text":"a \"_meta\""}}],"resultType":"complete","_meta":{{{info}}}}}"#
                ),
                r#"{"content":[{"type":"text","text":"a \"_meta\""}]}"#,
                false,
            ),
            (
                format!(r#"{{ "_meta" : {{{info}}} , "isError":true, "content":[ ], "resultType":"complete" }}"#),
                r#"{"isError":true,"content":[ ]}"#,
                true,
            ),
            (
                r#"{"resultType":"complete","content":[],"isError":false}"#.to_owned(),
                r#"{"content":[],"isError":false}"#,
                false,
            ),
            (
                r#"{"resultType":"complete","content":[],"_meta":{}}"#.to_owned(),
                r#"{"content":[]}"#,
                false,
            ),
            // A result of a revision before 2026-07-28 (no `resultType`): as it came.
            (
                r#"{"content":[{"type":"text","text":"x"}], "isError": true}"#.to_owned(),
                r#"{"content":[{"type":"text","text":"x"}], "isError": true}"#,
                true,
            ),
            (
                format!(r#"{{"content":[],"_meta":{{{info}}}}}"#),
                r#"{"content":[]}"#,
                false,
            ),
        ] {
            let answered = as_text(raw(&given)).unwrap_or_else(|_| panic!("as text: {given}"));
            let Answered::Text { text, is_error: error } = &answered else {
                panic!("text: {given}")
            };
            assert_eq!(text.get(), expected, "{given}");
            assert_eq!(*error, is_error, "{given}");
            assert_eq!(answered.is_error(), is_error);
            // Read as a value, it is a complete result again.
            let value = answered.into_value().expect("a value");
            assert_eq!(value["resultType"], "complete", "{given}");
            assert!(value.get("_meta").is_none(), "{given}");
        }
    }

    #[test]
    fn a_result_something_reads_is_given_back_whole() {
        for given in [
            // Not complete.
            r#"{"resultType":"input_required","inputRequests":{}}"#,
            // A cacheable result's members (answered with them, read).
            r#"{"resultType":"complete","content":[],"ttlMs":5}"#,
            r#"{"content":[],"cacheScope":"public"}"#,
            // A `_meta` naming more than the upstream.
            r#"{"resultType":"complete","content":[],"_meta":{"io.modelcontextprotocol/serverInfo":{"name":"u","version":"1"},"trace":"x"}}"#,
            // A task handle, renamed on the way.
            r#"{"resultType":"complete","task":{"taskId":"t-1"}}"#,
            // Not a result object the relay can read.
            r#"{"resultType":"complete","isError":"yes"}"#,
            r#"[1,2]"#,
            // What the scan does not take as it is: an escaped key (which may be one it looks
            // for), a member it looks at written twice, a `_meta` that is no object or names
            // the upstream twice.
            r#"{"resultType":"complete","\u005fmeta":{},"content":[]}"#,
            r#"{"resultType":"complete","content":[],"resultType":"complete"}"#,
            r#"{"resultType":"complete","content":[],"_meta":null}"#,
            r#"{"resultType":"complete","_meta":{"io.modelcontextprotocol/serverInfo":{},"io.modelcontextprotocol/serverInfo":{}}}"#,
        ] {
            let given_back = as_text(raw(given))
                .err()
                .unwrap_or_else(|| panic!("given back: {given}"));
            assert_eq!(given_back.get(), given);
        }
    }
}
