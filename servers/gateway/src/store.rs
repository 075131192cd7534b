//! The gateway's state store, shared by its replicas: SQLite (a file; the embedded default) or
//! PostgreSQL (when `state.url` names one), through one `sqlx` `Any` pool, with versioned
//! migrations applied at start. It keeps:
//!
//! - stateful sessions ([`portico_core::server::sessions::SessionStore`]), so that any replica
//!   serves a session's next request;
//! - the admin API's changes (the overlay on the file's configuration), each under a version
//!   number, so that every replica applies them and none is lost: a change is written (in one
//!   transaction) before it is applied and answered;
//! - the audit trail ([`crate::audit`]);
//! - API keys, hashed ([`crate::apikeys`]).
//!
//! Replicas learn of a new version from Redis (`state.redis`, see [`crate::signal`]) at once,
//! and by polling the version every `state.poll_interval` whether or not Redis is there.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portico_core::server::sessions::{SessionStore, StoreFuture};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};

use crate::config::{UpstreamConfig, VirtualServerConfig};
use crate::reload::Overlay;

/// The schema, one step per version; each runs once, in a transaction, in order.
const MIGRATIONS: &[(i64, &[&str])] = &[
    (
        1,
        &[
            "CREATE TABLE portico_sessions (id TEXT PRIMARY KEY, state TEXT NOT NULL, updated_at BIGINT NOT NULL)",
            "CREATE INDEX portico_sessions_updated ON portico_sessions (updated_at)",
            "CREATE TABLE portico_overlay (kind TEXT NOT NULL, name TEXT NOT NULL, config TEXT, version BIGINT NOT NULL, PRIMARY KEY (kind, name))",
            "CREATE TABLE portico_config_version (id INTEGER PRIMARY KEY, version BIGINT NOT NULL)",
            "INSERT INTO portico_config_version (id, version) VALUES (1, 0)",
        ],
    ),
    (
        2,
        &[
            "CREATE TABLE portico_audit (id TEXT PRIMARY KEY, at_ms BIGINT NOT NULL, kind TEXT NOT NULL, \
             principal TEXT, method TEXT NOT NULL, target TEXT, upstream TEXT, endpoint TEXT, \
             arguments_digest TEXT, outcome TEXT NOT NULL, error_code BIGINT, detail TEXT, latency_us BIGINT, \
             correlation_id TEXT NOT NULL)",
            "CREATE INDEX portico_audit_at ON portico_audit (at_ms)",
            "CREATE INDEX portico_audit_principal ON portico_audit (principal, id)",
        ],
    ),
    (
        3,
        &[
            "CREATE TABLE portico_api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, subject TEXT NOT NULL, \
             roles TEXT NOT NULL, scopes TEXT NOT NULL, hash TEXT NOT NULL, created_at_ms BIGINT NOT NULL, \
             expires_at_ms BIGINT, revoked_at_ms BIGINT)",
        ],
    ),
];

/// The URL of a store in memory.
pub const MEMORY: &str = "sqlite::memory:";

/// How long a session's state is kept after it was last saved or taken on.
const SESSION_TTL: Duration = Duration::from_secs(24 * 3600);

/// A connection pool to the store.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn db(e: sqlx::Error) -> String {
    e.to_string()
}

impl Store {
    /// Connects to `url` (`sqlite://file.db`, created when missing; `sqlite::memory:`, a store
    /// of this process alone that nothing outlives; or `postgres://user@host/db`) and applies
    /// the migrations it lacks.
    pub async fn open(url: &str) -> Result<Self, String> {
        sqlx::any::install_default_drivers();
        let in_memory = url == MEMORY;
        let url = match url.strip_prefix("sqlite://") {
            Some(path) if !path.contains('?') => format!("sqlite://{path}?mode=rwc"),
            _ => url.to_string(),
        };
        // An in-memory SQLite database is its connection's own: one connection, kept.
        let options = if in_memory {
            AnyPoolOptions::new()
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            AnyPoolOptions::new().max_connections(8)
        };
        let pool = options
            .acquire_timeout(Duration::from_secs(10))
            .connect(&url)
            .await
            .map_err(|e| format!("connecting to the state store: {e}"))?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// The connection pool (for the modules that keep their own tables: [`crate::audit`]).
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    async fn migrate(&self) -> Result<(), String> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS portico_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .execute(&self.pool)
        .await
        .map_err(db)?;
        for (version, steps) in MIGRATIONS {
            let mut tx = self.pool.begin().await.map_err(db)?;
            let done = sqlx::query("SELECT version FROM portico_migrations WHERE version = $1")
                .bind(*version)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
            if done.is_some() {
                continue;
            }
            for step in *steps {
                sqlx::query(*step)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| format!("migration {version}: {e}"))?;
            }
            // Two replicas starting at once: the second one's insert fails, its transaction
            // (the same steps) rolls back, and the first one's schema stands.
            let recorded = sqlx::query("INSERT INTO portico_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(*version)
                .bind(now())
                .execute(&mut *tx)
                .await;
            match recorded {
                Ok(_) => tx.commit().await.map_err(db)?,
                Err(e) => {
                    drop(tx);
                    tracing::debug!(version, error = %e, "another replica applied the migration");
                }
            }
        }
        Ok(())
    }

    /// The version of the admin changes.
    pub async fn version(&self) -> Result<i64, String> {
        let mut connection = self.pool.acquire().await.map_err(db)?;
        current_version(&mut connection).await
    }

    /// Records one admin change (`config` `None`: deleted) and returns the new version.
    pub async fn put(&self, kind: &str, name: &str, config: Option<String>) -> Result<i64, String> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("UPDATE portico_config_version SET version = version + 1 WHERE id = 1")
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let version = current_version(&mut tx).await?;
        sqlx::query(
            "INSERT INTO portico_overlay (kind, name, config, version) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (kind, name) DO UPDATE SET config = excluded.config, version = excluded.version",
        )
        .bind(kind)
        .bind(name)
        .bind(config)
        .bind(version)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(version)
    }

    /// Every admin change, as an overlay, and its version. Rows that no longer decode (written
    /// by another version of the gateway) are skipped and logged.
    pub async fn overlay(&self) -> Result<(i64, Overlay), String> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let version = current_version(&mut tx).await?;
        let rows = sqlx::query("SELECT kind, name, config FROM portico_overlay ORDER BY version")
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let mut overlay = Overlay::default();
        for row in rows {
            let kind: String = row.try_get(0).map_err(db)?;
            let name: String = row.try_get(1).map_err(db)?;
            let config: Option<String> = row.try_get(2).map_err(db)?;
            let decoded = match (kind.as_str(), config) {
                ("upstream", config) => config
                    .map(|json| serde_json::from_str::<UpstreamConfig>(&json))
                    .transpose()
                    .map(|u| overlay.set_upstream(name.clone(), u))
                    .map_err(|e| e.to_string()),
                ("virtual_server", config) => config
                    .map(|json| serde_json::from_str::<VirtualServerConfig>(&json))
                    .transpose()
                    .map(|v| overlay.set_virtual_server(name.clone(), v))
                    .map_err(|e| e.to_string()),
                (other, _) => Err(format!("unknown kind {other:?}")),
            };
            if let Err(e) = decoded {
                tracing::warn!(kind, name, error = %e, "an admin change in the store does not decode; skipped");
            }
        }
        Ok((version, overlay))
    }

    /// Forgets sessions not saved or taken on for [`SESSION_TTL`].
    pub async fn expire_sessions(&self) -> Result<u64, String> {
        let before = now() - i64::try_from(SESSION_TTL.as_secs()).unwrap_or(i64::MAX);
        let done = sqlx::query("DELETE FROM portico_sessions WHERE updated_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected())
    }
}

/// The version of the admin changes, read on `connection`.
async fn current_version(connection: &mut sqlx::AnyConnection) -> Result<i64, String> {
    sqlx::query("SELECT version FROM portico_config_version WHERE id = 1")
        .fetch_one(connection)
        .await
        .map_err(db)?
        .try_get(0)
        .map_err(db)
}

impl SessionStore for Store {
    fn save<'a>(&'a self, id: &'a str, state: String) -> StoreFuture<'a, Result<(), String>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO portico_sessions (id, state, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            )
            .bind(id)
            .bind(state)
            .bind(now())
            .execute(&self.pool)
            .await
            .map_err(db)?;
            Ok(())
        })
    }

    fn load<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Result<Option<String>, String>> {
        Box::pin(async move {
            let before = now() - i64::try_from(SESSION_TTL.as_secs()).unwrap_or(i64::MAX);
            let row = sqlx::query("SELECT state FROM portico_sessions WHERE id = $1 AND updated_at >= $2")
                .bind(id)
                .bind(before)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
            let Some(row) = row else { return Ok(None) };
            // Taken on: kept for another TTL.
            sqlx::query("UPDATE portico_sessions SET updated_at = $1 WHERE id = $2")
                .bind(now())
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(db)?;
            row.try_get::<String, _>(0).map(Some).map_err(db)
        })
    }

    fn remove<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Result<(), String>> {
        Box::pin(async move {
            sqlx::query("DELETE FROM portico_sessions WHERE id = $1")
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(db)?;
            Ok(())
        })
    }
}

/// The sessions of one endpoint in the shared store: ids are kept under the endpoint's path, so
/// a session id is taken on only where it was started.
pub struct EndpointSessions {
    store: Store,
    prefix: String,
}

impl EndpointSessions {
    /// The sessions of the endpoint at `path`.
    pub fn new(store: Store, path: &str) -> Self {
        Self {
            store,
            prefix: format!("{path}#"),
        }
    }
}

impl SessionStore for EndpointSessions {
    fn save<'a>(&'a self, id: &'a str, state: String) -> StoreFuture<'a, Result<(), String>> {
        Box::pin(async move { self.store.save(&format!("{}{id}", self.prefix), state).await })
    }

    fn load<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Result<Option<String>, String>> {
        Box::pin(async move { self.store.load(&format!("{}{id}", self.prefix)).await })
    }

    fn remove<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Result<(), String>> {
        Box::pin(async move { self.store.remove(&format!("{}{id}", self.prefix)).await })
    }
}
