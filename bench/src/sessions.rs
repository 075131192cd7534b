//! Idle sessions: open many (`initialize` + `notifications/initialized`, nothing after), and,
//! given the server's process id, read how much the server's resident memory grew.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::client::{Connection, Target};
use crate::mcp;
use crate::proc;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The endpoint.
    pub target: Target,
    /// Sessions to open and hold.
    pub count: usize,
    /// Sessions opened and ended first, so that what the server sets up once (buffers, tables,
    /// its first session) is not counted.
    pub warm: usize,
    /// The server's process, whose `VmRSS` is read before and after.
    pub server_pid: Option<u32>,
    /// How long to wait after opening before reading the memory (the server's background tasks
    /// settle).
    pub settle: Duration,
    /// How long to hold the sessions after reading, before ending them.
    pub hold: Duration,
}

/// The results.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Sessions opened (all on one connection, one after another).
    pub opened: usize,
    /// Of those, how many got an `Mcp-Session-Id` (none from a server without sessions).
    pub with_id: usize,
    /// Time to open them all, in seconds.
    pub seconds: f64,
    /// The server's `VmRSS` before, in KiB.
    pub rss_before_kib: Option<u64>,
    /// The server's `VmRSS` with the sessions open, in KiB.
    pub rss_after_kib: Option<u64>,
    /// `(after - before) / opened`, in KiB.
    pub kib_per_session: Option<f64>,
}

/// Opens `count` idle sessions, reads the server's memory, and ends them.
pub async fn run(options: &Options) -> anyhow::Result<Report> {
    let pid = options.server_pid.map(|pid| pid.to_string());
    let rss = || pid.as_deref().and_then(|pid| proc::status_kib(pid, "VmRSS"));
    let mut connection = Connection::open(&options.target).await?;
    let warm = open(&mut connection, options.warm).await?;
    close(&mut connection, &warm).await;
    tokio::time::sleep(options.settle).await;
    let rss_before_kib = rss();

    let started = Instant::now();
    let sessions = open(&mut connection, options.count).await?;
    let seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(options.settle).await;
    let rss_after_kib = rss();
    tokio::time::sleep(options.hold).await;
    close(&mut connection, &sessions).await;

    let kib_per_session = match (rss_before_kib, rss_after_kib) {
        (Some(before), Some(after)) if options.count > 0 => Some((after as f64 - before as f64) / options.count as f64),
        _ => None,
    };
    Ok(Report {
        opened: sessions.len(),
        with_id: sessions.iter().flatten().count(),
        seconds,
        rss_before_kib,
        rss_after_kib,
        kib_per_session,
    })
}

async fn open(connection: &mut Connection, count: usize) -> anyhow::Result<Vec<Option<String>>> {
    let mut sessions = Vec::with_capacity(count);
    for _ in 0..count {
        sessions.push(mcp::open_session(connection, None).await?);
    }
    Ok(sessions)
}

async fn close(connection: &mut Connection, sessions: &[Option<String>]) {
    for session in sessions.iter().flatten() {
        // Errors are ignored: a session that cannot be ended expires on the server.
        let _ = mcp::delete_session(connection, session).await;
    }
}
