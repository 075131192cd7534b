//! The load generator: N workers, each with its own keep-alive connection and one call in
//! flight. Closed loop by default: each sends its next call as soon as the last one is
//! answered. Paced with a rate: a thread of its own releases one call every `1 / rate` seconds,
//! to the workers in turn (a thread's sleep, not tokio's timer, whose millisecond ticks would
//! release the calls in bursts); a worker still waiting for its last answer when its turn comes
//! sends as soon as it is answered, and that call is counted as late (its latency is still from
//! when it was sent; a worker further behind loses the turns it missed, so the rate reached
//! falls short of the rate asked for). Requests answered during
//! the warm-up are not counted; the latency of each one answered in the measured window is.
//! Given the server's process id, it also reads the server's CPU time at the window's edges
//! (and that of a second process under test, a gateway's upstream, given its id). A call is a
//! `tools/call`, or a whole `tools/list` (every page, following `nextCursor`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::Serialize;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::client::Target;
use crate::mcp::{Call, Client, Method, Mode};
use crate::proc;

/// A request not answered within this long is an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A worker that saw this many errors gives up, failing the run.
const MAX_ERRORS: u64 = 100;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The endpoint.
    pub target: Target,
    /// Workers, each with one connection and one request in flight.
    pub concurrency: usize,
    /// Time before the measurement starts.
    pub warmup: Duration,
    /// The measured time.
    pub duration: Duration,
    /// The request each worker sends.
    pub call: Call,
    /// The client generation.
    pub mode: Mode,
    /// The server's process, whose CPU time is read when the measurement starts and stops.
    pub server_pid: Option<u32>,
    /// Another process under test (the upstream server behind a gateway), whose CPU time is
    /// read likewise.
    pub upstream_pid: Option<u32>,
    /// Calls per second over all workers, paced; `None`: closed loop.
    pub rate: Option<f64>,
}

/// The results of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The client generation.
    pub mode: Mode,
    /// What each call asks.
    pub method: Method,
    /// Workers.
    pub concurrency: usize,
    /// The measured time, in seconds.
    pub seconds: f64,
    /// Calls answered in the measured time.
    pub requests: u64,
    /// Calls that failed, warm-up included.
    pub errors: u64,
    /// The paced rate asked for, calls per second (`None`: closed loop).
    pub rate: Option<f64>,
    /// Paced: the share of the measured calls whose turn came while their worker still waited
    /// for its last answer (the server did not keep up with the rate), in %.
    pub late_percent: Option<f64>,
    /// The first failure, if any.
    pub first_error: Option<String>,
    /// Calls answered per second.
    pub rps: f64,
    /// Median latency, in microseconds.
    pub p50_us: f64,
    /// 99th percentile latency, in microseconds.
    pub p99_us: f64,
    /// Largest latency, in microseconds.
    pub max_us: f64,
    /// HTTP requests per call answered in the measured time (a `tools/list` makes one per page).
    pub pages_per_call: f64,
    /// Response body bytes per call answered in the measured time.
    pub bytes_per_call: f64,
    /// The tools of a whole `tools/list` (`None` for `tools/call`).
    pub tools_listed: Option<usize>,
    /// The load generator's own CPU time over the measured time, in % of one core (`None` where
    /// `/proc` is not available).
    pub client_cpu_percent: Option<f64>,
    /// The server's CPU time over the measured time, in % of one core (`None` without
    /// [`Options::server_pid`]).
    pub server_cpu_percent: Option<f64>,
    /// The upstream's CPU time over the measured time, in % of one core (`None` without
    /// [`Options::upstream_pid`]).
    pub upstream_cpu_percent: Option<f64>,
    /// CPU time the rest of the machine used over the measured time (every CPU's busy time
    /// minus the server's, the upstream's and the load generator's), in % of one core: other work that
    /// distorts the figures. Network processing the kernel does not charge to either process
    /// shows here too, so a few % is normal.
    pub other_cpu_percent: Option<f64>,
}

/// What one worker saw.
#[derive(Default)]
struct Tally {
    latencies: Vec<u64>,
    /// HTTP requests and bytes of the calls in `latencies`.
    pages: u64,
    bytes: u64,
    listed: Option<usize>,
    errors: u64,
    first_error: Option<String>,
    /// Measured calls whose turn came before their worker was free (paced).
    late: u64,
}

/// Releases a call every `every`, to each of `turns` in turn, until `done` is set.
fn pace(every: Duration, turns: Vec<Arc<Notify>>, done: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut next = Instant::now();
        for turn in turns.iter().cycle() {
            if done.load(Ordering::Relaxed) {
                break;
            }
            next += every;
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            turn.notify_one();
        }
    })
}

/// Runs the load.
pub async fn run(options: &Options) -> anyhow::Result<Report> {
    if options.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let every = match options.rate {
        Some(rate) if !(rate.is_finite() && rate > 0.0) => {
            bail!("--rate must be a positive number of calls per second")
        }
        Some(rate) => Some(Duration::from_secs_f64(1.0 / rate)),
        None => None,
    };
    let mut connecting = JoinSet::new();
    for _ in 0..options.concurrency {
        let (target, call) = (options.target.clone(), options.call.clone());
        connecting.spawn(async move { Client::connect(&target, call).await });
    }
    let mut clients = Vec::with_capacity(options.concurrency);
    while let Some(client) = connecting.join_next().await {
        clients.push(client.context("a connecting worker")??);
    }

    let start = Instant::now() + options.warmup;
    let stop = start + options.duration;
    let shared = Arc::new((options.target.clone(), options.call.clone()));
    let mut workers = JoinSet::new();
    let turns: Vec<Arc<Notify>> = clients.iter().map(|_| Arc::default()).collect();
    for (client, turn) in clients.into_iter().zip(&turns) {
        let turn = every.map(|_| turn.clone());
        workers.spawn(worker(client, shared.clone(), start, stop, turn));
    }
    let paced = Arc::new(AtomicBool::new(false));
    let pacer = every.map(|every| pace(every, turns, paced.clone()));

    let ticks = proc::clock_ticks() as f64;
    let server = options.server_pid.map(|pid| pid.to_string());
    let upstream = options.upstream_pid.map(|pid| pid.to_string());
    let cpu = || {
        let machine = proc::machine_ticks().map(|(busy, _)| busy);
        [
            proc::cpu_ticks("self"),
            server.as_deref().and_then(proc::cpu_ticks),
            upstream.as_deref().and_then(proc::cpu_ticks),
            machine,
        ]
    };
    tokio::time::sleep_until(start.into()).await;
    let [client_start, server_start, upstream_start, machine_start] = cpu();
    let measured_from = Instant::now();
    tokio::time::sleep_until(stop.into()).await;
    let [client_stop, server_stop, upstream_stop, machine_stop] = cpu();
    let measured = measured_from.elapsed().as_secs_f64();
    let percent = |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?) as f64 / ticks / measured * 100.0);
    let client_cpu_percent = percent(client_start, client_stop);
    let server_cpu_percent = percent(server_start, server_stop);
    let upstream_cpu_percent = percent(upstream_start, upstream_stop);
    let other_cpu_percent = percent(machine_start, machine_stop).map(|machine| {
        let ours = [client_cpu_percent, server_cpu_percent, upstream_cpu_percent];
        (machine - ours.iter().flatten().sum::<f64>()).max(0.0)
    });

    let mut all = Tally::default();
    let mut outcome = Ok(());
    while let Some(tally) = workers.join_next().await {
        let tally = match tally.context("a worker").and_then(|t| t) {
            Ok(tally) => tally,
            Err(e) => {
                outcome = Err(e);
                continue;
            }
        };
        all.latencies.extend_from_slice(&tally.latencies);
        all.pages += tally.pages;
        all.bytes += tally.bytes;
        all.listed = all.listed.or(tally.listed);
        all.errors += tally.errors;
        all.first_error = all.first_error.or(tally.first_error);
        all.late += tally.late;
    }
    // Every worker has ended (the pacer gave each its last turn): the pacer stops now.
    paced.store(true, Ordering::Relaxed);
    if let Some(pacer) = pacer {
        let _ = pacer.join();
    }
    outcome?;
    all.latencies.sort_unstable();
    let us = |ns: u64| ns as f64 / 1e3;
    let seconds = options.duration.as_secs_f64();
    let per_call = |total: u64| total as f64 / all.latencies.len().max(1) as f64;
    Ok(Report {
        mode: options.mode,
        method: options.call.method(),
        concurrency: options.concurrency,
        seconds,
        requests: all.latencies.len() as u64,
        errors: all.errors,
        rate: options.rate,
        late_percent: options
            .rate
            .map(|_| all.late as f64 * 100.0 / all.latencies.len().max(1) as f64),
        first_error: all.first_error,
        rps: all.latencies.len() as f64 / seconds,
        p50_us: us(percentile(&all.latencies, 0.50)),
        p99_us: us(percentile(&all.latencies, 0.99)),
        max_us: us(all.latencies.last().copied().unwrap_or_default()),
        pages_per_call: per_call(all.pages),
        bytes_per_call: per_call(all.bytes),
        tools_listed: all.listed,
        client_cpu_percent,
        server_cpu_percent,
        upstream_cpu_percent,
        other_cpu_percent,
    })
}

/// Calls until `stop`, recording the latency of each call answered in `[start, stop)`.
async fn worker(
    mut client: Client,
    shared: Arc<(Target, Call)>,
    start: Instant,
    stop: Instant,
    turn: Option<Arc<Notify>>,
) -> anyhow::Result<Tally> {
    let mut tally = Tally {
        latencies: Vec::with_capacity(4096),
        ..Tally::default()
    };
    loop {
        let mut late = false;
        if let Some(turn) = &turn {
            // A turn that came while the last call was out is waiting already: late.
            let next = turn.notified();
            tokio::pin!(next);
            late = next.as_mut().enable();
            next.await;
        }
        let sent = Instant::now();
        let outcome = tokio::time::timeout(REQUEST_TIMEOUT, client.call()).await;
        let done = Instant::now();
        match outcome {
            Ok(Ok(answered)) => {
                if done >= start && done < stop {
                    tally.latencies.push((done - sent).as_nanos() as u64);
                    tally.late += u64::from(late);
                    tally.pages += answered.pages;
                    tally.bytes += answered.bytes;
                }
            }
            failed => {
                let error = match failed {
                    Ok(Err(e)) => format!("{e:#}"),
                    _ => format!("no answer within {}s", REQUEST_TIMEOUT.as_secs()),
                };
                tally.errors += 1;
                if tally.errors >= MAX_ERRORS {
                    bail!("{} errors on one connection; the first: {error}", tally.errors);
                }
                tally.first_error.get_or_insert(error);
                // The connection may be mid-response: start over on a new one.
                client = Client::connect(&shared.0, shared.1.clone()).await?;
            }
        }
        if done >= stop {
            break;
        }
    }
    tally.listed = client.listed();
    client.close().await;
    Ok(tally)
}

/// The nearest-rank percentile `q` of sorted `values` (0 when empty).
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 50);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&v, 1.0), 100);
        assert_eq!(percentile(&[7], 0.99), 7);
        assert_eq!(percentile(&[], 0.5), 0);
    }
}
