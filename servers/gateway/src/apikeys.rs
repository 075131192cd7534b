//! API keys: credentials for machines, made and revoked through the admin API
//! (`/admin/api-keys`), kept in the state store ([`crate::store`]) so every replica accepts
//! them, and presented as `Authorization: Bearer pk_…` wherever a JWT is accepted
//! ([`crate::auth`], with `auth.api_keys`, on by default).
//!
//! A key is `pk_<id>_<secret>`: `id` (12 hex digits) names the record, `secret` (32 random
//! bytes, base64url) proves it. The secret is shown once, when the key is made; the store keeps
//! its SHA-256 alone (a slow password hash buys nothing for 256 random bits), compared in
//! constant time. A key carries what a token would: a subject (default `apikey:<name>`), the
//! roles the policy ([`crate::policy`]) grants by, and scopes (checked against
//! `auth.required_scopes`); it may expire, and is revoked by deleting it (its record stays,
//! marked revoked, for the audit trail).
//!
//! Lookups are cached for [`CACHE_FOR`] per replica: a key revoked on one replica is refused
//! there at once and on the others within that time. Expiry is checked on every use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row as _;

use crate::auth::{AuthError, Principal};
use crate::store::Store;

/// What every API key starts with (a JWT starts with `eyJ`: the two never meet).
pub const PREFIX: &str = "pk_";

/// How long a looked-up key is trusted before it is read again.
pub const CACHE_FOR: Duration = Duration::from_secs(5);

/// Keys cached at most (a lookup of a key not cached when full clears the cache).
const CACHE_MAX: usize = 10_000;

/// A key's record, as the admin API shows it (never its secret or hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ApiKey {
    /// The key's id (the part after `pk_`).
    pub id: String,
    /// A name for people.
    pub name: String,
    /// The subject it authenticates as.
    pub subject: String,
    /// Its roles.
    pub roles: Vec<String>,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// When it was made, in ms since the Unix epoch.
    pub created_at_ms: i64,
    /// When it stops working, if it does.
    pub expires_at_ms: Option<i64>,
    /// When it was revoked, if it was.
    pub revoked_at_ms: Option<i64>,
}

/// What `POST /admin/api-keys` takes.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// A name for people (1 to 64 letters, digits, `-`, `_`, `.` or spaces).
    pub name: String,
    /// The subject it authenticates as (default `apikey:<name>`).
    #[serde(default)]
    pub subject: Option<String>,
    /// Its roles (the policy's).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Its scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// How long it works (`90d`, `12h`, `30m`); default: until revoked.
    #[serde(default)]
    pub ttl: Option<String>,
}

/// A key's record with its hash, as the store keeps it.
#[derive(Debug, Clone)]
struct Stored {
    key: ApiKey,
    hash: String,
}

/// The gateway's API keys.
pub struct ApiKeys {
    store: Store,
    /// Records by id, and when they were read.
    cache: Mutex<HashMap<String, (Instant, Arc<Stored>)>>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn random(bytes: usize) -> Result<Vec<u8>, String> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).map_err(|e| format!("the system's random source failed: {e}"))?;
    Ok(buffer)
}

/// Equal without stopping at the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Splits `pk_<id>_<secret>`.
fn parse(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.strip_prefix(PREFIX)?.split_once('_')?;
    let hex = id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit());
    (hex && !secret.is_empty()).then_some((id, secret))
}

fn invalid(why: &str) -> AuthError {
    AuthError::Invalid(format!("the API key is not valid: {why}"))
}

impl ApiKeys {
    /// The keys kept in `store`.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            cache: Mutex::default(),
        }
    }

    /// Makes a key; returns its record and the key itself (`pk_…`), which is shown this once.
    pub async fn create(&self, new: NewKey) -> Result<(ApiKey, String), String> {
        let name = new.name.trim().to_string();
        let well_named = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '));
        if !well_named {
            return Err("`name` must be 1 to 64 letters, digits, `-`, `_`, `.` or spaces".into());
        }
        let ttl = new
            .ttl
            .as_deref()
            .map(crate::config::duration::parse)
            .transpose()
            .map_err(|e| format!("`ttl`: {e}"))?;
        if ttl.is_some_and(|t| t.is_zero()) {
            return Err("`ttl`: a key must work for some time".into());
        }
        let id: String = random(6)?.iter().map(|b| format!("{b:02x}")).collect();
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random(32)?);
        let created_at_ms = now_ms();
        let key = ApiKey {
            id: id.clone(),
            subject: new.subject.unwrap_or_else(|| format!("apikey:{name}")),
            name,
            roles: new.roles,
            scopes: new.scopes,
            created_at_ms,
            expires_at_ms: ttl.map(|t| created_at_ms.saturating_add(i64::try_from(t.as_millis()).unwrap_or(i64::MAX))),
            revoked_at_ms: None,
        };
        self.store.insert_api_key(&key, &sha256_hex(&secret)).await?;
        Ok((key, format!("{PREFIX}{id}_{secret}")))
    }

    /// Every key, newest first.
    pub async fn list(&self) -> Result<Vec<ApiKey>, String> {
        self.store.api_keys().await
    }

    /// Revokes the key `id`: `false` when there is none (or it was revoked already).
    pub async fn revoke(&self, id: &str) -> Result<bool, String> {
        let revoked = self.store.revoke_api_key(id, now_ms()).await?;
        self.cache.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
        Ok(revoked)
    }

    /// The caller a key (`pk_…`, without `Bearer `) names, if it is valid.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        let (id, secret) = parse(token).ok_or_else(|| invalid("it is not of the form pk_<id>_<secret>"))?;
        let stored = self.lookup(id).await.map_err(|e| {
            tracing::warn!(target: "portico::auth", error = %e, "reading an API key failed");
            AuthError::Invalid("the API key could not be checked (the state store is unavailable)".into())
        })?;
        let stored = stored.ok_or_else(|| invalid("no such key"))?;
        if !same(&sha256_hex(secret), &stored.hash) {
            return Err(invalid("its secret is wrong"));
        }
        if stored.key.revoked_at_ms.is_some() {
            return Err(invalid("it was revoked"));
        }
        if stored.key.expires_at_ms.is_some_and(|at| at <= now_ms()) {
            return Err(invalid("it has expired"));
        }
        Ok(Principal {
            subject: stored.key.subject.clone(),
            roles: stored.key.roles.clone(),
            scopes: stored.key.scopes.clone(),
        })
    }

    /// The record of `id`, from the cache when read less than [`CACHE_FOR`] ago.
    async fn lookup(&self, id: &str) -> Result<Option<Arc<Stored>>, String> {
        if let Some((at, stored)) = self.cache.lock().unwrap_or_else(PoisonError::into_inner).get(id)
            && at.elapsed() < CACHE_FOR
        {
            return Ok(Some(stored.clone()));
        }
        let stored = self.store.api_key(id).await?.map(Arc::new);
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        // Unknown ids are not kept: guessing cannot fill the cache.
        if let Some(stored) = &stored {
            cache.insert(id.to_string(), (Instant::now(), stored.clone()));
        }
        Ok(stored)
    }
}

impl Store {
    async fn insert_api_key(&self, key: &ApiKey, hash: &str) -> Result<(), String> {
        sqlx::query(
            "INSERT INTO portico_api_keys (id, name, subject, roles, scopes, hash, created_at_ms, expires_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&key.id)
        .bind(&key.name)
        .bind(&key.subject)
        .bind(serde_json::to_string(&key.roles).unwrap_or_default())
        .bind(serde_json::to_string(&key.scopes).unwrap_or_default())
        .bind(hash)
        .bind(key.created_at_ms)
        .bind(key.expires_at_ms)
        .execute(self.pool())
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
    }

    async fn api_key(&self, id: &str) -> Result<Option<Stored>, String> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT_KEYS} WHERE id = $1")))
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(|e| e.to_string())?;
        row.as_ref().map(stored).transpose()
    }

    async fn api_keys(&self) -> Result<Vec<ApiKey>, String> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SELECT_KEYS} ORDER BY created_at_ms DESC, id"
        )))
        .fetch_all(self.pool())
        .await
        .map_err(|e| e.to_string())?;
        rows.iter().map(|row| stored(row).map(|s| s.key)).collect()
    }

    async fn revoke_api_key(&self, id: &str, at_ms: i64) -> Result<bool, String> {
        let done =
            sqlx::query("UPDATE portico_api_keys SET revoked_at_ms = $1 WHERE id = $2 AND revoked_at_ms IS NULL")
                .bind(at_ms)
                .bind(id)
                .execute(self.pool())
                .await
                .map_err(|e| e.to_string())?;
        Ok(done.rows_affected() > 0)
    }
}

const SELECT_KEYS: &str = "SELECT id, name, subject, roles, scopes, hash, created_at_ms, expires_at_ms, revoked_at_ms \
                           FROM portico_api_keys";

fn stored(row: &sqlx::any::AnyRow) -> Result<Stored, String> {
    let text = |i: usize| row.try_get::<String, _>(i).map_err(|e| e.to_string());
    let list = |i: usize| -> Result<Vec<String>, String> {
        serde_json::from_str(&text(i)?).map_err(|e| format!("a stored API key's list: {e}"))
    };
    Ok(Stored {
        key: ApiKey {
            id: text(0)?,
            name: text(1)?,
            subject: text(2)?,
            roles: list(3)?,
            scopes: list(4)?,
            created_at_ms: row.try_get(6).map_err(|e| e.to_string())?,
            expires_at_ms: row.try_get(7).map_err(|e| e.to_string())?,
            revoked_at_ms: row.try_get(8).map_err(|e| e.to_string())?,
        },
        hash: text(5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_key(name: &str, ttl: Option<&str>) -> NewKey {
        NewKey {
            name: name.into(),
            subject: None,
            roles: vec!["reader".into()],
            scopes: vec!["mcp".into()],
            ttl: ttl.map(str::to_string),
        }
    }

    #[test]
    fn keys_parse_only_in_their_form() {
        assert_eq!(parse("pk_0123456789ab_c2VjcmV0"), Some(("0123456789ab", "c2VjcmV0")));
        for bad in [
            "pk_0123456789ab_",
            "pk_short_x",
            "pk_0123456789zz_x",
            "eyJhbGciOi",
            "pk_0123456789ab",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn a_key_works_until_revoked_and_its_secret_is_not_stored() {
        let store = Store::open(crate::store::MEMORY).await.unwrap();
        let keys = ApiKeys::new(store.clone());
        let (record, key) = keys.create(new_key("ci bot", None)).await.unwrap();
        let principal = keys.authenticate(&key).await.unwrap();
        assert_eq!(principal.subject, "apikey:ci bot");
        assert_eq!(principal.roles, ["reader"]);
        assert_eq!(principal.scopes, ["mcp"]);
        let secret = key.splitn(3, '_').nth(2).unwrap();
        let stored = store.api_key(&record.id).await.unwrap().unwrap();
        assert_ne!(stored.hash, secret);
        assert_eq!(stored.hash, sha256_hex(secret));

        let mut tampered = key.clone();
        tampered.pop();
        tampered.push(if key.ends_with('A') { 'B' } else { 'A' });
        assert!(
            keys.authenticate(&tampered)
                .await
                .unwrap_err()
                .to_string()
                .contains("secret is wrong")
        );
        let unknown = format!("pk_000000000000_{secret}");
        assert!(
            keys.authenticate(&unknown)
                .await
                .unwrap_err()
                .to_string()
                .contains("no such key")
        );

        assert!(keys.revoke(&record.id).await.unwrap());
        assert!(!keys.revoke(&record.id).await.unwrap(), "once");
        assert!(
            keys.authenticate(&key)
                .await
                .unwrap_err()
                .to_string()
                .contains("revoked")
        );
        let listed = keys.list().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].revoked_at_ms.is_some());
    }

    #[tokio::test]
    async fn an_expired_key_is_refused_and_bad_requests_are_named() {
        let store = Store::open(crate::store::MEMORY).await.unwrap();
        let keys = ApiKeys::new(store);
        let (_, key) = keys.create(new_key("brief", Some("1ms"))).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            keys.authenticate(&key)
                .await
                .unwrap_err()
                .to_string()
                .contains("expired")
        );
        assert!(keys.create(new_key("", None)).await.unwrap_err().contains("`name`"));
        assert!(keys.create(new_key("a/b", None)).await.unwrap_err().contains("`name`"));
        assert!(
            keys.create(new_key("x", Some("soon")))
                .await
                .unwrap_err()
                .contains("`ttl`")
        );
        assert!(
            keys.create(new_key("x", Some("0s")))
                .await
                .unwrap_err()
                .contains("`ttl`")
        );
    }
}
