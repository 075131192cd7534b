//! Distributed tracing: W3C trace context ([`TraceContext`]) carried in a request's `_meta`
//! (`traceparent`, `tracestate`, as MCP's trace-context convention has it) and in the
//! `traceparent` HTTP header, spans ([`ActiveSpan`]), and an [`Exporter`] sending them to an
//! OpenTelemetry collector over OTLP/HTTP with the JSON encoding (`POST {endpoint}/v1/traces`).
//!
//! A server wraps its service in [`Traced`]: each request gets a server span, a child of the
//! trace context its `_meta` carries (or a new trace), and runs with that context as the
//! [`current`] one, so that what it calls on (a gateway's upstreams) continues the trace; the
//! trace id is also the request's correlation id in its log lines (the `trace_id` field of the
//! `request` tracing span). Without an exporter nothing is sent, but a trace a request carries
//! is still continued and passed on; a request with neither gets only a process-unique
//! `correlation` number for its log lines (no randomness, no span: the cheap path).
//!
//! Spans are batched (up to 256, or every 500 ms) and sent by one task; when the collector is
//! slow or away, the queue (4096 spans) is bounded and newer spans are dropped, never waited
//! for.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portico_core::{ErrorObject, JsonText, PeerHandle, RequestContext, Service};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// The `_meta` key (and HTTP header) carrying the W3C `traceparent`.
pub const TRACEPARENT: &str = "traceparent";

/// A W3C trace context: the trace and the span a request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace.
    pub trace_id: [u8; 16],
    /// The span.
    pub span_id: [u8; 8],
    /// Whether the trace is sampled (recorded).
    pub sampled: bool,
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // Without system randomness, a clock-derived id still tells spans apart in practice.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (nanos >> ((i % 16) * 8)) as u8;
        }
    }
    bytes
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

impl TraceContext {
    /// A new trace (sampled).
    pub fn root() -> Self {
        Self {
            trace_id: random(),
            span_id: random(),
            sampled: true,
        }
    }

    /// A new span in the same trace.
    pub fn child(&self) -> Self {
        Self {
            span_id: random(),
            ..*self
        }
    }

    /// Reads a `traceparent` (`00-<trace id>-<span id>-<flags>`); `None` when it is not one
    /// (an all-zero id included, as the W3C spec says).
    pub fn parse(traceparent: &str) -> Option<Self> {
        let mut parts = traceparent.trim().split('-');
        let version = parts.next()?;
        let trace_id: [u8; 16] = unhex(parts.next()?)?;
        let span_id: [u8; 8] = unhex(parts.next()?)?;
        let flags: [u8; 1] = unhex(parts.next()?)?;
        if version.len() != 2 || version == "ff" || trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        if version == "00" && parts.next().is_some() {
            return None;
        }
        Some(Self {
            trace_id,
            span_id,
            sampled: flags[0] & 1 == 1,
        })
    }

    /// The `traceparent` of this context.
    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.span_id),
            u8::from(self.sampled)
        )
    }

    /// The trace id, as 32 hex digits (the correlation id of logs).
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// The `traceparent` a request's params carry in `_meta`, read.
    pub fn from_params(params: Option<&RawValue>) -> Option<Self> {
        static MENTION: portico_core::message::Mention = portico_core::message::Mention::new(TRACEPARENT);
        let text = params?.get();
        if !MENTION.is_in(text) {
            return None;
        }
        let value: Value = serde_json::from_str(text).ok()?;
        Self::parse(value.get("_meta")?.get(TRACEPARENT)?.as_str()?)
    }
}

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// The trace context of the request being served on this task, if any ([`Traced`] sets it).
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(|cx| *cx).ok()
}

/// What a span is to its trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// Serving a request.
    Server,
    /// Sending one.
    Client,
}

/// A finished span, as exported.
#[derive(Debug, Clone)]
struct SpanData {
    context: TraceContext,
    parent: Option<[u8; 8]>,
    name: String,
    kind: SpanKind,
    start: SystemTime,
    end: SystemTime,
    attributes: Vec<(String, String)>,
    error: Option<String>,
}

impl SpanData {
    fn to_otlp(&self) -> Value {
        let nanos = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos()).to_string();
        let mut span = json!({
            "traceId": hex(&self.context.trace_id),
            "spanId": hex(&self.context.span_id),
            "name": self.name,
            "kind": match self.kind { SpanKind::Server => 2, SpanKind::Client => 3 },
            "startTimeUnixNano": nanos(self.start),
            "endTimeUnixNano": nanos(self.end),
            "attributes": self.attributes.iter().map(|(k, v)| json!({"key": k, "value": {"stringValue": v}})).collect::<Vec<_>>(),
            "status": match &self.error {
                Some(message) => json!({"code": 2, "message": message}),
                None => json!({"code": 1}),
            },
        });
        if let Some(parent) = &self.parent {
            span["parentSpanId"] = hex(parent).into();
        }
        span
    }
}

/// Spans queued for export at most.
const QUEUE: usize = 4096;
/// Spans sent in one request at most.
const BATCH: usize = 256;
/// How long spans wait for a batch to fill.
const FLUSH_EVERY: Duration = Duration::from_millis(500);

/// Sends finished spans to an OTLP/HTTP collector. Cheap to clone.
#[derive(Clone)]
pub struct Exporter {
    queue: mpsc::Sender<SpanData>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Exporter(..)")
    }
}

impl Exporter {
    /// An exporter to the collector at `endpoint` (`http://host:4318`; spans go to
    /// `{endpoint}/v1/traces`), naming the service `service_name`. Must be called within a
    /// Tokio runtime: one task sends the batches.
    pub fn start(endpoint: &str, service_name: &str) -> Self {
        let (queue, spans) = mpsc::channel(QUEUE);
        let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
        tokio::spawn(send_batches(spans, url, service_name.to_string()));
        Self { queue }
    }

    /// Starts a span named `name`, a child of `parent` (a new trace without one).
    pub fn span(&self, name: impl Into<String>, kind: SpanKind, parent: Option<&TraceContext>) -> ActiveSpan {
        ActiveSpan::new(Some(self.clone()), name, kind, parent)
    }
}

/// A span being recorded; sent when [`ActiveSpan::end`] is called (dropped unended, it is not).
#[derive(Debug)]
pub struct ActiveSpan {
    exporter: Option<Exporter>,
    data: SpanData,
}

impl ActiveSpan {
    /// A span sent to `exporter` when it ends (to none: a context only, for propagation).
    pub fn new(
        exporter: Option<Exporter>,
        name: impl Into<String>,
        kind: SpanKind,
        parent: Option<&TraceContext>,
    ) -> Self {
        let context = parent.map_or_else(TraceContext::root, TraceContext::child);
        Self {
            exporter,
            data: SpanData {
                context,
                parent: parent.map(|p| p.span_id),
                name: name.into(),
                kind,
                start: SystemTime::now(),
                end: SystemTime::now(),
                attributes: Vec::new(),
                error: None,
            },
        }
    }

    /// The span's own context: the parent of what it calls.
    pub fn context(&self) -> &TraceContext {
        &self.data.context
    }

    /// Adds an attribute.
    pub fn set_attribute(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.data.attributes.push((key.into(), value.into()));
    }

    /// Marks the span failed.
    pub fn set_error(&mut self, message: impl Into<String>) {
        self.data.error = Some(message.into());
    }

    /// Ends the span and queues it for export (dropped when the queue is full).
    pub fn end(mut self) {
        self.data.end = SystemTime::now();
        if let Some(exporter) = &self.exporter
            && self.data.context.sampled
        {
            let _ = exporter.queue.try_send(self.data.clone());
        }
    }
}

async fn send_batches(mut spans: mpsc::Receiver<SpanData>, url: String, service: String) {
    // The transports' client builder: rustls with its provider under the `tls` feature.
    let client = crate::http::tls::reqwest_builder(&crate::http::tls::TlsConfig::default())
        .ok()
        .and_then(|b| b.build().ok())
        .unwrap_or_default();
    let mut batch = Vec::new();
    loop {
        let deadline = tokio::time::sleep(FLUSH_EVERY);
        tokio::pin!(deadline);
        let closed = loop {
            tokio::select! {
                span = spans.recv() => match span {
                    Some(span) => {
                        batch.push(span);
                        if batch.len() >= BATCH {
                            break false;
                        }
                    }
                    None => break true,
                },
                () = &mut deadline => break false,
            }
        };
        if !batch.is_empty() {
            let body = json!({"resourceSpans": [{
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                "scopeSpans": [{
                    "scope": {"name": "portico", "version": env!("CARGO_PKG_VERSION")},
                    "spans": batch.drain(..).map(|s| s.to_otlp()).collect::<Vec<_>>(),
                }],
            }]});
            let sent = client
                .post(&url)
                .header("content-type", "application/json")
                .timeout(Duration::from_secs(10))
                .body(body.to_string())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => {}
                Ok(response) => tracing::warn!(url, status = %response.status(), "the OTLP collector refused spans"),
                Err(e) => tracing::warn!(url, error = %e, "sending spans to the OTLP collector failed"),
            }
        }
        if closed {
            return;
        }
    }
}

/// The span name of an MCP request: `tools/call echo`, or the method alone.
fn span_name(method: &str, params: Option<&RawValue>) -> String {
    #[derive(serde::Deserialize)]
    struct Named<'a> {
        #[serde(borrow)]
        name: Option<std::borrow::Cow<'a, str>>,
        #[serde(borrow)]
        uri: Option<std::borrow::Cow<'a, str>>,
    }
    let target = params
        .filter(|_| matches!(method, "tools/call" | "prompts/get" | "resources/read"))
        .and_then(|p| serde_json::from_str::<Named<'_>>(p.get()).ok())
        .and_then(|n| n.name.or(n.uri));
    match target {
        Some(target) => format!("{method} {target}"),
        None => method.to_string(),
    }
}

/// A server's [`Service`] with a span per request (see the module docs).
pub struct Traced<S> {
    inner: S,
    exporter: Option<Exporter>,
}

impl<S> Traced<S> {
    /// `inner`, its requests traced to `exporter` (none: contexts and log correlation only).
    pub fn new(inner: S, exporter: Option<Exporter>) -> Self {
        Self { inner, exporter }
    }
}

impl<S: Service> Service for Traced<S> {
    async fn request(
        &self,
        cx: RequestContext,
        method: String,
        params: Option<Box<RawValue>>,
    ) -> Result<JsonText, ErrorObject> {
        let parent = TraceContext::from_params(params.as_deref());
        // Without an exporter and without a trace to continue there is nothing to record or
        // pass on: the request goes through untouched but for its log correlation id.
        if self.exporter.is_none() && parent.is_none() {
            static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
            let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let log = tracing::info_span!("request", correlation = id, method = method.as_str());
            return tracing::Instrument::instrument(self.inner.request(cx, method, params), log).await;
        }
        let mut span = ActiveSpan::new(
            self.exporter.clone(),
            span_name(&method, params.as_deref()),
            SpanKind::Server,
            parent.as_ref(),
        );
        span.set_attribute("mcp.method.name", method.clone());
        span.set_attribute("jsonrpc.request.id", cx.id().to_string());
        let context = *span.context();
        let log = tracing::info_span!("request", trace_id = %context.trace_id_hex(), method = method.as_str());
        let outcome =
            tracing::Instrument::instrument(CURRENT.scope(context, self.inner.request(cx, method, params)), log).await;
        if let Err(error) = &outcome {
            span.set_attribute("rpc.jsonrpc.error_code", error.code.to_string());
            span.set_error(error.message.clone());
        }
        span.end();
        outcome
    }

    async fn notification(&self, peer: PeerHandle, method: String, params: Option<Box<RawValue>>) {
        self.inner.notification(peer, method, params).await;
    }

    fn check_mirrored(
        &self,
        method: &str,
        params: Option<&RawValue>,
        read_ahead: Option<&portico_core::server::ReadAhead>,
        sent: &[portico_core::mirror::MirroredParam<'_>],
        extensions: &portico_core::Extensions,
    ) -> Result<(), ErrorObject> {
        self.inner.check_mirrored(method, params, read_ahead, sent, extensions)
    }

    fn accepts_batches(&self) -> bool {
        self.inner.accepts_batches()
    }

    fn session_started(&self, id: &str) {
        self.inner.session_started(id);
    }

    fn restore_session(&self, peer: &PeerHandle, id: &str) -> impl std::future::Future<Output = Option<String>> + Send {
        self.inner.restore_session(peer, id)
    }

    fn session_ended(&self) -> impl std::future::Future<Output = ()> + Send {
        self.inner.session_ended()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_reads_and_writes() {
        let text = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let cx = TraceContext::parse(text).expect("valid");
        assert_eq!(cx.traceparent(), text);
        assert!(cx.sampled);
        assert_eq!(cx.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let child = cx.child();
        assert_eq!(child.trace_id, cx.trace_id);
        assert_ne!(child.span_id, cx.span_id);
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad}");
        }
        let params = RawValue::from_string(format!(r#"{{"name":"x","_meta":{{"traceparent":"{text}"}}}}"#)).unwrap();
        assert_eq!(TraceContext::from_params(Some(&params)), Some(cx));
        assert_eq!(span_name("tools/call", Some(&params)), "tools/call x");
        assert_eq!(span_name("tools/list", Some(&params)), "tools/list");
    }

    #[test]
    fn spans_encode_as_otlp_json() {
        let parent = TraceContext::root();
        let mut span = ActiveSpan::new(None, "tools/call echo", SpanKind::Client, Some(&parent));
        span.set_attribute("mcp.method.name", "tools/call");
        span.set_error("boom");
        let otlp = span.data.to_otlp();
        assert_eq!(otlp["traceId"], parent.trace_id_hex());
        assert_eq!(otlp["parentSpanId"], hex(&parent.span_id));
        assert_eq!(otlp["kind"], 3);
        assert_eq!(otlp["status"]["code"], 2);
        assert_eq!(otlp["attributes"][0]["value"]["stringValue"], "tools/call");
        assert!(
            otlp["startTimeUnixNano"]
                .as_str()
                .is_some_and(|t| t.parse::<u128>().is_ok())
        );
    }
}
