//! The audit trail: every relayed call, read and prompt (`tools/call`, `resources/read`,
//! `prompts/get`, `completion/complete`, task requests), every refusal (a bad or missing token,
//! a policy denial) and every admin change, recorded in the state store ([`crate::store`]:
//! SQLite by default, PostgreSQL when `state.url` names one) and queryable through the admin
//! API (`GET /admin/audit`).
//!
//! A record says who (the token's subject), what (method, target, upstream, endpoint, a
//! SHA-256 digest of the arguments — never the arguments themselves), the outcome (and the
//! JSON-RPC error code), the latency and a correlation id (the request's trace id when it is
//! traced, so a record meets its spans; else one made up, also written in the access log).
//!
//! # Durability
//!
//! With `audit.durable` (the default) a call's answer waits until its record is committed: an
//! answer a client received always has its record, and a gateway killed (`kill -9`) loses only
//! records of calls it had not answered yet. Records are written by one task in group commits
//! (every record waiting when a commit starts goes in the same transaction), so under load a
//! commit serves many calls. A commit is as durable as the database makes it: for SQLite, a
//! committed transaction survives the process dying; surviving the machine losing power takes
//! `PRAGMA synchronous=FULL` (in the `state.url`'s options) as it does for any SQLite data.
//!
//! Without `durable`, records are queued and the answer does not wait (faster, but a crash
//! loses the queue). When a record cannot be written (the database is away), `on_failure`
//! decides: `deny` (the default) answers the call with [`AUDIT_UNAVAILABLE`] instead of its
//! result — the upstream did run it —, `allow` answers it and logs the loss.
//!
//! Records older than `audit.retention` are deleted hourly.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::{AuditConfig, AuditFailure};
use crate::store::Store;

/// The JSON-RPC error of a call whose record could not be written (`on_failure: deny`).
pub const AUDIT_UNAVAILABLE: i64 = -32054;

/// Records written in one transaction at most.
const MAX_BATCH: usize = 512;
/// Records waiting to be written at most; past it, recording waits (durable) or drops
/// (not durable, logged).
const QUEUE: usize = 8192;

/// What a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A request relayed to an upstream.
    Call,
    /// A request refused before any upstream saw it (authentication, policy).
    Denial,
    /// A change through the admin API.
    Admin,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Call => "call",
            Self::Denial => "denial",
            Self::Admin => "admin",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "call" => Some(Self::Call),
            "denial" => Some(Self::Denial),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Record {
    /// Unique, and ordered as the records were made (`<ms since epoch, hex>-<process>-<n>`).
    pub id: String,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// What it is about.
    pub kind: Kind,
    /// Who: the token's subject; `None` without authentication (or before it succeeded).
    pub principal: Option<String>,
    /// The JSON-RPC method (`tools/call`), or the HTTP method and path of an admin change or a
    /// refused HTTP request (`PUT /admin/upstreams/echo`).
    pub method: String,
    /// The tool, prompt or resource URI named.
    pub target: Option<String>,
    /// The upstream that served it.
    pub upstream: Option<String>,
    /// The gateway endpoint it came to (`/mcp`, `/mcp/<name>`).
    pub endpoint: Option<String>,
    /// SHA-256 (hex) of the arguments as sent (their JSON), when there were any.
    pub arguments_digest: Option<String>,
    /// `ok`, `tool_error`, `error`, `denied`, `input_required`, `unavailable`, `timeout`…
    pub outcome: String,
    /// The JSON-RPC error code, when it ended with one.
    pub error_code: Option<i64>,
    /// Why (an error's message, the rule that denied).
    pub detail: Option<String>,
    /// How long it took, in microseconds.
    pub latency_us: Option<i64>,
    /// The request's trace id, or an id made up for it (also in the access log).
    pub correlation_id: String,
}

impl Record {
    /// A record made now.
    pub fn new(kind: Kind, method: impl Into<String>, outcome: impl Into<String>, correlation_id: String) -> Self {
        let at_ms = now_ms();
        Self {
            id: next_id(at_ms),
            at_ms,
            kind,
            principal: None,
            method: method.into(),
            target: None,
            upstream: None,
            endpoint: None,
            arguments_digest: None,
            outcome: outcome.into(),
            error_code: None,
            detail: None,
            latency_us: None,
            correlation_id,
        }
    }
}

/// The SHA-256 (hex) of `arguments`' JSON.
pub fn digest(arguments: &Value) -> String {
    let json = serde_json::to_vec(arguments).unwrap_or_default();
    hex(&Sha256::digest(&json))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// This process's part of record ids and made-up correlation ids: two replicas never make the
/// same.
fn process_tag() -> &'static str {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let seed = format!("{nanos}-{}", std::process::id());
        hex(&Sha256::digest(seed.as_bytes())[..6])
    })
}

static NEXT: AtomicU64 = AtomicU64::new(0);

fn next_id(at_ms: i64) -> String {
    format!(
        "{at_ms:012x}-{}-{:010x}",
        process_tag(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A correlation id for a request that has no trace id: unique across replicas.
pub fn correlation_id() -> String {
    format!("{}{:012x}", process_tag(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Which records [`Auditor::query`] returns (newest first).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Only this kind.
    pub kind: Option<Kind>,
    /// Only this principal.
    pub principal: Option<String>,
    /// Only this method.
    pub method: Option<String>,
    /// Only this outcome.
    pub outcome: Option<String>,
    /// Only this upstream.
    pub upstream: Option<String>,
    /// Only this correlation id.
    pub correlation_id: Option<String>,
    /// Only records made at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Only records older than this id (the previous page's `next`).
    pub before: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<usize>,
}

/// A record waiting to be written, and who waits for it.
struct Job {
    record: Record,
    done: Option<oneshot::Sender<Result<(), String>>>,
}

/// Records audit records ([`Auditor::record`]) and reads them back ([`Auditor::query`]).
#[derive(Clone)]
pub struct Auditor {
    jobs: mpsc::Sender<Job>,
    store: Store,
    config: Arc<AuditConfig>,
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auditor")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Auditor {
    /// Starts the writer (and the retention sweep) on `store`; both stop with `stop`, after
    /// writing what is queued.
    pub fn start(store: Store, config: AuditConfig, stop: CancellationToken) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(write(store.clone(), queue));
        let retention = config.retention;
        let sweeper = store.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = every.tick() => {}
                }
                let before = now_ms() - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
                match sweeper.expire_audit(before).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(target: "portico::audit", deleted = n, "old audit records deleted"),
                    Err(e) => tracing::warn!(target: "portico::audit", error = %e, "deleting old audit records failed"),
                }
            }
        });
        Self {
            jobs,
            store,
            config: Arc::new(config),
        }
    }

    /// Records `record`. Durable: returns once it is committed, or with why it is not. Not
    /// durable: queues it and returns at once (`Ok`, or `Err` when the queue is full).
    pub async fn record(&self, record: Record) -> Result<(), String> {
        if !self.config.durable {
            return self
                .jobs
                .try_send(Job { record, done: None })
                .map_err(|_| "the audit queue is full".to_string());
        }
        let (done, committed) = oneshot::channel();
        self.jobs
            .send(Job {
                record,
                done: Some(done),
            })
            .await
            .map_err(|_| "the audit writer has stopped".to_string())?;
        committed
            .await
            .map_err(|_| "the audit writer has stopped".to_string())?
    }

    /// [`Auditor::record`], with the `on_failure` policy applied: `Err` (a message for the
    /// client) only when the record was lost and the policy is `deny`.
    pub async fn record_or_refuse(&self, record: Record) -> Result<(), String> {
        let what = format!("{} {}", record.method, record.target.as_deref().unwrap_or_default());
        match self.record(record).await {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::error!(target: "portico::audit", error = %e, what = what.trim(), "an audit record was not written");
                match self.config.on_failure {
                    AuditFailure::Deny => Err(format!("the audit trail is unavailable ({e}); the result is withheld")),
                    AuditFailure::Allow => Ok(()),
                }
            }
        }
    }

    /// Records `record` without waiting (refusals, whose answer does not depend on it).
    pub fn record_later(&self, record: Record) {
        let auditor = self.clone();
        tokio::spawn(async move {
            if let Err(e) = auditor.record(record).await {
                tracing::error!(target: "portico::audit", error = %e, "an audit record was not written");
            }
        });
    }

    /// The records `filter` picks, newest first.
    pub async fn query(&self, filter: &Filter) -> Result<Vec<Record>, String> {
        self.store.query_audit(filter).await
    }
}

/// The writer: takes every job waiting, writes them in one transaction, tells their callers.
async fn write(store: Store, mut queue: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let records: Vec<&Record> = batch.iter().map(|job| &job.record).collect();
        let written = store.insert_audit(&records).await;
        if let Err(e) = &written {
            tracing::error!(target: "portico::audit", error = %e, records = batch.len(), "writing audit records failed");
        }
        for job in batch.drain(..) {
            if let Some(done) = job.done {
                let _ = done.send(written.clone());
            }
        }
    }
}

impl Store {
    /// Writes `records` in one transaction.
    pub async fn insert_audit(&self, records: &[&Record]) -> Result<(), String> {
        let mut tx = self.pool().begin().await.map_err(|e| e.to_string())?;
        for record in records {
            sqlx::query(
                "INSERT INTO portico_audit (id, at_ms, kind, principal, method, target, upstream, endpoint, \
                 arguments_digest, outcome, error_code, detail, latency_us, correlation_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(&record.id)
            .bind(record.at_ms)
            .bind(record.kind.as_str())
            .bind(record.principal.as_deref())
            .bind(&record.method)
            .bind(record.target.as_deref())
            .bind(record.upstream.as_deref())
            .bind(record.endpoint.as_deref())
            .bind(record.arguments_digest.as_deref())
            .bind(&record.outcome)
            .bind(record.error_code)
            .bind(record.detail.as_deref())
            .bind(record.latency_us)
            .bind(&record.correlation_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| e.to_string())?;
        }
        tx.commit().await.map_err(|e| e.to_string())
    }

    /// The records `filter` picks, newest first.
    pub async fn query_audit(&self, filter: &Filter) -> Result<Vec<Record>, String> {
        use sqlx::Row as _;
        let mut sql = String::from(
            "SELECT id, at_ms, kind, principal, method, target, upstream, endpoint, arguments_digest, outcome, \
             error_code, detail, latency_us, correlation_id FROM portico_audit WHERE 1 = 1",
        );
        let mut texts: Vec<String> = Vec::new();
        let kind = filter.kind.map(|k| k.as_str().to_string());
        let equal = [
            ("kind", &kind),
            ("principal", &filter.principal),
            ("method", &filter.method),
            ("outcome", &filter.outcome),
            ("upstream", &filter.upstream),
            ("correlation_id", &filter.correlation_id),
        ];
        for (name, value) in equal {
            if let Some(value) = value {
                texts.push(value.clone());
                sql.push_str(&format!(" AND {name} = ${}", texts.len()));
            }
        }
        if let Some(before) = &filter.before {
            texts.push(before.clone());
            sql.push_str(&format!(" AND id < ${}", texts.len()));
        }
        if filter.since_ms.is_some() {
            sql.push_str(&format!(" AND at_ms >= ${}", texts.len() + 1));
        }
        let limit = filter.limit.unwrap_or(100).clamp(1, 1000);
        sql.push_str(&format!(" ORDER BY id DESC LIMIT {limit}"));
        // Only fixed column names and numbered placeholders are spliced in; values are bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for text in &texts {
            query = query.bind(text.as_str());
        }
        if let Some(since) = filter.since_ms {
            query = query.bind(since);
        }
        let rows = query.fetch_all(self.pool()).await.map_err(|e| e.to_string())?;
        rows.iter()
            .map(|row| {
                let kind: String = row.try_get(2).map_err(|e| e.to_string())?;
                Ok(Record {
                    id: row.try_get(0).map_err(|e| e.to_string())?,
                    at_ms: row.try_get(1).map_err(|e| e.to_string())?,
                    kind: Kind::parse(&kind).ok_or_else(|| format!("unknown audit record kind {kind:?}"))?,
                    principal: row.try_get(3).map_err(|e| e.to_string())?,
                    method: row.try_get(4).map_err(|e| e.to_string())?,
                    target: row.try_get(5).map_err(|e| e.to_string())?,
                    upstream: row.try_get(6).map_err(|e| e.to_string())?,
                    endpoint: row.try_get(7).map_err(|e| e.to_string())?,
                    arguments_digest: row.try_get(8).map_err(|e| e.to_string())?,
                    outcome: row.try_get(9).map_err(|e| e.to_string())?,
                    error_code: row.try_get(10).map_err(|e| e.to_string())?,
                    detail: row.try_get(11).map_err(|e| e.to_string())?,
                    latency_us: row.try_get(12).map_err(|e| e.to_string())?,
                    correlation_id: row.try_get(13).map_err(|e| e.to_string())?,
                })
            })
            .collect()
    }

    /// Deletes the records made before `before_ms`; returns how many.
    pub async fn expire_audit(&self, before_ms: i64) -> Result<u64, String> {
        sqlx::query("DELETE FROM portico_audit WHERE at_ms < $1")
            .bind(before_ms)
            .execute(self.pool())
            .await
            .map(|done| done.rows_affected())
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_in_the_order_records_were_made() {
        let a = next_id(1_000);
        let b = next_id(1_000);
        let c = next_id(2_000);
        assert!(a < b && b < c, "{a} {b} {c}");
        assert_ne!(correlation_id(), correlation_id());
    }

    #[test]
    fn the_digest_is_sha256_of_the_json() {
        // sha256("{}")
        assert_eq!(
            digest(&serde_json::json!({})),
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }

    #[tokio::test]
    async fn records_are_committed_before_record_returns_and_read_back_newest_first() {
        let store = Store::open(crate::store::MEMORY).await.unwrap();
        let stop = CancellationToken::new();
        let auditor = Auditor::start(store, AuditConfig::default(), stop.clone());
        let mut tasks = Vec::new();
        for n in 0..20 {
            let auditor = auditor.clone();
            tasks.push(tokio::spawn(async move {
                let mut record = Record::new(Kind::Call, "tools/call", "ok", correlation_id());
                record.target = Some(format!("tool{n}"));
                record.principal = Some(if n % 2 == 0 { "ada" } else { "bob" }.into());
                auditor.record(record).await
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let all = auditor.query(&Filter::default()).await.unwrap();
        assert_eq!(all.len(), 20);
        assert!(all.windows(2).all(|w| w[0].id > w[1].id));
        let ada = auditor
            .query(&Filter {
                principal: Some("ada".into()),
                limit: Some(3),
                ..Filter::default()
            })
            .await
            .unwrap();
        assert_eq!(ada.len(), 3);
        assert!(ada.iter().all(|r| r.principal.as_deref() == Some("ada")));
        let next = auditor
            .query(&Filter {
                principal: Some("ada".into()),
                before: Some(ada[2].id.clone()),
                ..Filter::default()
            })
            .await
            .unwrap();
        assert_eq!(next.len(), 7);
        assert!(next.iter().all(|r| r.id < ada[2].id));
        stop.cancel();
    }
}
