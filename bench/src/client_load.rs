//! The client benchmark (`portico-bench client`): calls `tools/call` of `echo` as fast as a
//! client can, with Portico's client core (`portico_core::client::Client` over
//! `portico_transport::http::client`) or with the reference — bare hyper 1 HTTP/1.1 connections
//! POSTing a pre-built JSON-RPC body and reading the answer, the floor a client can reach — and
//! measures calls/s, latency, this process's CPU time and its peak RSS.
//!
//! Concurrency is calls in flight: Portico's side is one [`Client`] shared by N tasks (its HTTP
//! client pools connections); the reference's is N tasks, each with its own connection. A
//! stateful run opens one 2025-11-25 session first, shared by every task on both sides.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use portico_core::client::{Client, Protocol};
use portico_protocol::v2026_07_28 as wire;
use portico_transport::http::client::{HttpClientConfig, connect};
use serde::Serialize;
use serde_json::json;
use tokio::task::JoinSet;

use crate::client::{Target, find};
use crate::mcp::{Call, MESSAGE, Mode, STATEFUL, STATELESS};
use crate::proc;

/// A call not answered within this long fails the run.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The client under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Subject {
    /// Bare hyper 1 HTTP/1.1 connections, pre-built bodies.
    Reference,
    /// Portico's client core over its Streamable HTTP client transport.
    Portico,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The endpoint (`http://HOST:PORT/mcp`).
    pub url: String,
    /// The client under test.
    pub subject: Subject,
    /// The protocol generation.
    pub mode: Mode,
    /// Calls in flight.
    pub concurrency: usize,
    /// Time before the measurement starts.
    pub warmup: Duration,
    /// The measured time.
    pub duration: Duration,
    /// The server's process, whose CPU time is read at the window's edges.
    pub server_pid: Option<u32>,
}

/// The results of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The client under test.
    pub subject: Subject,
    /// The protocol generation.
    pub mode: Mode,
    /// Calls in flight.
    pub concurrency: usize,
    /// The measured time, in seconds.
    pub seconds: f64,
    /// Calls answered in the measured time.
    pub calls: u64,
    /// Calls answered per second.
    pub calls_per_second: f64,
    /// Median latency, in microseconds.
    pub p50_us: f64,
    /// 99th percentile latency, in microseconds.
    pub p99_us: f64,
    /// This process's CPU time over the measured time, in % of one core.
    pub client_cpu_percent: Option<f64>,
    /// The server's CPU time over the measured time, in % of one core.
    pub server_cpu_percent: Option<f64>,
    /// The rest of the machine's CPU time over the measured time, in % of one core.
    pub other_cpu_percent: Option<f64>,
    /// This process's peak resident memory (`VmHWM`) at the end, in KiB.
    pub peak_rss_kib: Option<u64>,
}

/// Runs the benchmark on the current (single-threaded) runtime.
pub async fn run(options: &Options) -> anyhow::Result<Report> {
    if options.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let start = Instant::now() + options.warmup;
    let stop = start + options.duration;
    let mut workers = JoinSet::new();
    let closer: Option<Client> = match options.subject {
        Subject::Portico => {
            let client = portico_client(&options.url, options.mode).await?;
            for _ in 0..options.concurrency {
                workers.spawn(portico_worker(client.clone(), start, stop));
            }
            Some(client)
        }
        Subject::Reference => {
            let target = Target::parse(&options.url)?;
            let session = match options.mode {
                Mode::Stateless => None,
                Mode::Stateful => Some(open_session(&target).await?),
            };
            let request = Arc::new(Prepared::new(&target, options.mode, session));
            for _ in 0..options.concurrency {
                let sender = connection(&target).await?;
                workers.spawn(reference_worker(sender, request.clone(), start, stop));
            }
            None
        }
    };

    let ticks = proc::clock_ticks() as f64;
    let server = options.server_pid.map(|pid| pid.to_string());
    let cpu = || {
        (
            proc::cpu_ticks("self"),
            server.as_deref().and_then(proc::cpu_ticks),
            proc::machine_ticks().map(|(busy, _)| busy),
        )
    };
    tokio::time::sleep_until(start.into()).await;
    let (client_start, server_start, machine_start) = cpu();
    let measured_from = Instant::now();
    tokio::time::sleep_until(stop.into()).await;
    let (client_stop, server_stop, machine_stop) = cpu();
    let measured = measured_from.elapsed().as_secs_f64();
    let percent = |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?) as f64 / ticks / measured * 100.0);
    let client_cpu_percent = percent(client_start, client_stop);
    let server_cpu_percent = percent(server_start, server_stop);
    let other_cpu_percent = percent(machine_start, machine_stop)
        .map(|machine| (machine - client_cpu_percent.unwrap_or(0.0) - server_cpu_percent.unwrap_or(0.0)).max(0.0));

    let mut latencies = Vec::new();
    while let Some(worker) = workers.join_next().await {
        latencies.extend(worker.context("a worker")??);
    }
    if let Some(client) = closer {
        client.close().await.context("closing the client")?;
    }
    latencies.sort_unstable();
    let us = |ns: u64| ns as f64 / 1e3;
    let seconds = options.duration.as_secs_f64();
    Ok(Report {
        subject: options.subject,
        mode: options.mode,
        concurrency: options.concurrency,
        seconds,
        calls: latencies.len() as u64,
        calls_per_second: latencies.len() as f64 / seconds,
        p50_us: us(crate::load::percentile(&latencies, 0.50)),
        p99_us: us(crate::load::percentile(&latencies, 0.99)),
        client_cpu_percent,
        server_cpu_percent,
        other_cpu_percent,
        peak_rss_kib: proc::status_kib("self", "VmHWM"),
    })
}

/// Portico's client, connected in `mode`, its tools listed once (as a client does before
/// calling, so `structuredContent` is checked against `outputSchema` as it would be).
async fn portico_client(url: &str, mode: Mode) -> anyhow::Result<Client> {
    let protocol = match mode {
        Mode::Stateless => Protocol::Stateless,
        Mode::Stateful => Protocol::Stateful(STATEFUL),
    };
    let client = Client::builder(wire::Implementation::new("portico-bench", env!("CARGO_PKG_VERSION")))
        .protocol(protocol)
        .connect(|service| connect(url, service, HttpClientConfig::default()))
        .await
        .context("connecting Portico's client")?;
    let tools = client.list_all_tools().await.context("tools/list")?;
    if !tools.iter().any(|t| t.name == "echo") {
        bail!("the server has no `echo` tool");
    }
    let result = client.call_tool("echo", json!({"message": MESSAGE})).await?;
    let text = serde_json::to_value(&result.content)?;
    if !text[0]["text"].as_str().is_some_and(|t| t.contains(MESSAGE)) {
        bail!("echo answered {text}");
    }
    Ok(client)
}

/// Calls until `stop`; the latencies (ns) of the calls answered in `[start, stop)`.
async fn portico_worker(client: Client, start: Instant, stop: Instant) -> anyhow::Result<Vec<u64>> {
    let arguments = json!({"message": MESSAGE});
    let mut latencies = Vec::with_capacity(4096);
    loop {
        let sent = Instant::now();
        let result = tokio::time::timeout(CALL_TIMEOUT, client.call_tool("echo", &arguments))
            .await
            .context("no answer in time")?
            .context("tools/call")?;
        let done = Instant::now();
        if result.is_error == Some(true) {
            bail!("echo failed: {result:?}");
        }
        if done >= start && done < stop {
            latencies.push((done - sent).as_nanos() as u64);
        }
        if done >= stop {
            return Ok(latencies);
        }
    }
}

/// The reference's request: everything but the id prepared once. Ids are unique across the
/// workers (a session's requests share one id space).
struct Prepared {
    call: Call,
    headers: Vec<(&'static str, String)>,
    next_id: AtomicU64,
}

impl Prepared {
    fn new(target: &Target, mode: Mode, session: Option<String>) -> Self {
        let mut headers = vec![
            ("host", target.authority.clone()),
            ("content-type", "application/json".to_owned()),
            ("accept", "application/json, text/event-stream".to_owned()),
        ];
        match mode {
            Mode::Stateless => headers.extend([
                ("mcp-protocol-version", STATELESS.to_owned()),
                ("mcp-method", "tools/call".to_owned()),
                ("mcp-name", "echo".to_owned()),
            ]),
            Mode::Stateful => {
                headers.push(("mcp-protocol-version", STATEFUL.to_owned()));
                headers.extend(session.map(|s| ("mcp-session-id", s)));
            }
        }
        Self {
            call: Call::new(mode, "echo", MESSAGE),
            headers,
            next_id: AtomicU64::new(1),
        }
    }

    fn request(&self, path: &str) -> anyhow::Result<hyper::Request<Full<Bytes>>> {
        let mut body = Vec::with_capacity(512);
        self.call.body(self.next_id.fetch_add(1, Ordering::Relaxed), &mut body);
        let mut request = hyper::Request::post(path);
        for (name, value) in &self.headers {
            request = request.header(*name, value.as_str());
        }
        Ok(request.body(Full::new(Bytes::from(body)))?)
    }
}

type Sender = http1::SendRequest<Full<Bytes>>;

/// A hyper HTTP/1.1 connection to `target`, its driver spawned.
async fn connection(target: &Target) -> anyhow::Result<(Sender, String)> {
    let stream = tokio::net::TcpStream::connect(&target.authority)
        .await
        .with_context(|| format!("connecting to {}", target.authority))?;
    stream.set_nodelay(true)?;
    let (sender, driver) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = driver.await;
    });
    Ok((sender, target.path.clone()))
}

/// One POST: the status and the whole body.
async fn post(
    sender: &mut Sender,
    request: hyper::Request<Full<Bytes>>,
) -> anyhow::Result<(u16, Bytes, Option<String>)> {
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let session = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body, session))
}

/// `initialize` + `notifications/initialized` with hyper; the session id.
async fn open_session(target: &Target) -> anyhow::Result<String> {
    let (mut sender, path) = connection(target).await?;
    let message = |body: serde_json::Value, session: Option<&str>| {
        let mut request = hyper::Request::post(path.as_str())
            .header("host", target.authority.as_str())
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", STATEFUL);
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        request.body(Full::new(Bytes::from(body.to_string())))
    };
    let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": STATEFUL,
        "capabilities": {},
        "clientInfo": {"name": "portico-bench", "version": env!("CARGO_PKG_VERSION")},
    }});
    let (status, body, session) = post(&mut sender, message(initialize, None)?).await?;
    let Some(session) = session.filter(|_| status == 200) else {
        bail!("initialize: HTTP {status}, {}", String::from_utf8_lossy(&body));
    };
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let (status, body, _) = post(&mut sender, message(initialized, Some(&session))?).await?;
    if status != 202 {
        bail!(
            "notifications/initialized: HTTP {status}, {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(session)
}

/// Calls until `stop` on one connection; the latencies (ns) of the calls answered in
/// `[start, stop)`. Every answer must be `200` with a JSON-RPC result; the first is checked to
/// echo the message.
async fn reference_worker(
    (mut sender, path): (Sender, String),
    prepared: Arc<Prepared>,
    start: Instant,
    stop: Instant,
) -> anyhow::Result<Vec<u64>> {
    let mut latencies = Vec::with_capacity(4096);
    let mut checked = false;
    loop {
        let sent = Instant::now();
        let request = prepared.request(&path)?;
        let (status, body, _) = tokio::time::timeout(CALL_TIMEOUT, post(&mut sender, request))
            .await
            .context("no answer in time")??;
        let done = Instant::now();
        if status != 200 || find(&body, br#""result""#).is_none() {
            bail!("tools/call: HTTP {status}, {}", String::from_utf8_lossy(&body));
        }
        if !checked {
            if find(&body, MESSAGE.as_bytes()).is_none() {
                bail!("echo did not echo: {}", String::from_utf8_lossy(&body));
            }
            checked = true;
        }
        if done >= start && done < stop {
            latencies.push((done - sent).as_nanos() as u64);
        }
        if done >= stop {
            return Ok(latencies);
        }
    }
}
