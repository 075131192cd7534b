//! Caching: what the gateway keeps of the answers it gave, configured as `cache` (off without
//! it: nothing below runs, the request path pays one `Option` check).
//!
//! # What is cached
//!
//! - **Lists** (`tools/list`, `resources/list`, `resources/templates/list`, `prompts/list`): the
//!   list an endpoint serves is assembled from the upstreams' snapshots ([`crate::catalog`]),
//!   its collisions settled and the policy applied, once per endpoint and per set of roles the
//!   policy knows (the policy decides by roles alone, so every caller holding the same roles
//!   sees the same list; without a policy there is one list per endpoint). Kept in this
//!   process's memory whatever the backend — each replica builds its own from its own
//!   snapshots —, at most [`MAX_LISTS`] per kind, and the framework encodes each page of a
//!   kept list once ([`portico_core::server::catalog::Listing`]). A list's results carry
//!   `cacheScope: private` when a policy is in force (the list depends on the caller), else
//!   `public`, and `ttlMs` of `cache.list_ttl` (default 0: clients ask again, and the gateway
//!   answers from what it keeps).
//! - **`resources/read`** results, as their `ttlMs` and `cacheScope` say: kept for `ttlMs`
//!   (at most `max_ttl`; `0` keeps nothing), `public` ones shared by every caller, `private`
//!   ones per principal. A result without `ttlMs` (an upstream of a revision before
//!   2026-07-28) is kept for `default_ttl` with the `default_scope` (default `private`).
//! - **`tools/call`** results of the tools `cache.tools` names (glob patterns over the tool's
//!   name at its upstream) **and** that their upstream annotates `readOnlyHint: true` and
//!   `idempotentHint: true`: kept for `default_ttl`, always per principal, keyed by the
//!   principal, the upstream, the tool and the SHA-256 of the arguments' JSON.
//!
//! Never kept: errors, tool results with `isError`, results that are not complete (a task's
//! handle, `input_required`), results the upstream asked the client questions for
//! (elicitation, sampling, roots: they depend on the answers), results larger than
//! `max_entry_bytes`. A served entry's `ttlMs` says what is left of it.
//!
//! # Plugins
//!
//! Results are looked up and kept inside [`crate::relay`], between the plugins' `before` and
//! `after` hooks ([`crate::plugin`]): a request the cache answers went through every `before`
//! hook (and is keyed by the arguments they left), and every answer, kept or relayed, goes
//! through the `after` hooks. What is kept is the upstream's result as it came.
//!
//! # Principals
//!
//! A private entry belongs to the token's subject ([`crate::auth::Principal`]); it is never
//! served to another. With `auth` off the gateway cannot tell callers apart: all of them are one
//! principal, `anonymous`, and share private entries (as they share everything the gateway's
//! own credentials reach). With `auth` on, a request without a principal (none reaches the
//! catalog) keeps and gets nothing private. The policy is checked before the cache is asked,
//! so an entry is only ever served to a caller the policy lets use the item.
//!
//! # Coalescing
//!
//! Concurrent identical requests that miss (same upstream, method, target, arguments and
//! principal) make one upstream call: the first relays, the others wait for its result
//! (single flight, per process). They get it only if it is one the cache would keep; when the
//! first one fails, asks its client a question, or is cancelled (its client cancels or goes
//! away), the others are released at once and each makes the call itself — never waiting on
//! a call that will not answer them.
//!
//! # Invalidation
//!
//! - An upstream's `list_changed` (tools, prompts, resources, also when it connects again) or
//!   `resources/updated` drops every list and every result of that upstream.
//! - A configuration change ([`crate::Gateway::apply`]: the file reloaded, an admin change, so
//!   also every policy change) starts a new, empty cache, and drops every shared entry of the
//!   upstreams of the old and the new configuration before the change is complete.
//!
//! A result relayed while its upstream's entries are dropped is not kept (each upstream has a
//! generation, read when a request looks its entry up and checked when it is kept).
//!
//! # Backends
//!
//! - `memory` (the default without `state.redis`): this process, at most `max_entries` entries
//!   and `max_bytes` bytes of JSON, the least recently used dropped first.
//! - `redis` (the default with `state.redis`): shared by every replica. An entry is
//!   `portico:cache:e:<upstream>:<generation>:<hex SHA-256 of the key's parts>`, its value the
//!   result's JSON (with when it was kept and for how long), set with `PX` its TTL. Each
//!   upstream's generation is the counter `portico:cache:g:<upstream>`, read with the entry in
//!   one Lua script; dropping an upstream's entries is an `INCR` of it, so a replica that drops
//!   them drops them for every replica (each also hears the upstream's notifications itself).
//!   An `INCR` that fails is kept and tried again before the next lookup, which is refused (as
//!   below) until it succeeds: no entry kept before a drop is served after it. Keys the script
//!   builds are not declared, so Redis Cluster is not supported (nor is it by [`crate::redis`]).
//!
//! # When Redis is away
//!
//! `fail: open` (the default): a request whose entry cannot be looked up is relayed as if
//! nothing were cached (counted `outcome="error"`), its result not kept; `fail: closed`: it is
//! refused with [`CACHE_UNAVAILABLE`]. Either way nothing waits: the Redis client stops trying
//! for a short while after a failure ([`crate::redis`]), and the first lookup after that which
//! reaches Redis ends the outage.
//!
//! # Metrics
//!
//! `portico_gateway_cache_requests_total{kind=list|resource|tool, outcome=…}`: `hit` (served
//! from the cache), `miss` (relayed, or assembled), `coalesced` (answered by a concurrent
//! identical request's result), `bypass` (a request the cache may not answer: a call of a tool
//! `cache.tools` names that its upstream does not annotate read-only and idempotent, or a call
//! without a principal while `auth` is on), `error` (Redis could not be asked). `portico_gateway_cache_entries` and
//! `portico_gateway_cache_bytes` for the memory backend. Cache hits are not counted in
//! `portico_gateway_requests_total` (nothing was relayed), but are logged (`portico::access`)
//! and audited as calls.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portico_core::ErrorObject;
use portico_core::server::Context;
use portico_core::server::catalog::Listing;
use portico_protocol::v2026_07_28 as wire;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use tokio::sync::watch;

use crate::auth::Principal;
use crate::catalog::Scope;
use crate::config::{Config, ConfigError};
use crate::metrics::Metrics;
use crate::policy::glob::Glob;
use crate::redis;
use crate::relay;
use crate::upstream::Upstream;

/// The JSON-RPC error of a request refused because its cache entry could not be looked up and
/// `cache.fail` is `closed`: the next of the gateway's codes after the plugins'.
pub const CACHE_UNAVAILABLE: i64 = -32056;

/// Lists kept at most per kind (tools, resources, templates, prompts); past it they are all
/// dropped and built again.
pub const MAX_LISTS: usize = 1024;

/// How long one Redis command of the cache may take: a cache that waits long is no cache.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

/// The principal of every caller when `auth` is off.
const ANONYMOUS: &str = "anonymous";

/// The `cache` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Where results are kept (default: `redis` when `state.redis` is set, else `memory`).
    /// Lists are kept in memory whatever this says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,
    /// Entries the memory backend holds at most (default 10 000).
    #[serde(default = "default_max_entries")]
    pub max_entries: usize,
    /// Bytes of JSON the memory backend holds at most (default 64 MiB).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// The largest result kept, in bytes of JSON (default 1 MiB), on either backend.
    #[serde(default = "default_max_entry_bytes")]
    pub max_entry_bytes: usize,
    /// How long a result without `ttlMs` is kept: `resources/read` of an upstream before
    /// 2026-07-28, and the results of the tools `tools` names (default `30s`; `0s` keeps none).
    #[serde(default = "default_ttl", with = "crate::config::duration")]
    #[schemars(with = "String")]
    pub default_ttl: Duration,
    /// The scope of a `resources/read` result without `cacheScope` (default `private`).
    #[serde(default)]
    pub default_scope: CacheScope,
    /// The longest a result is kept, whatever its `ttlMs` says (default `1h`).
    #[serde(default = "default_max_ttl", with = "crate::config::duration")]
    #[schemars(with = "String")]
    pub max_ttl: Duration,
    /// The `ttlMs` of the gateway's own list results (default `0s`).
    #[serde(default = "default_list_ttl", with = "crate::config::duration")]
    #[schemars(with = "String")]
    pub list_ttl: Duration,
    /// The tools whose results may be kept, as glob patterns over their name at their upstream;
    /// only those annotated `readOnlyHint: true` and `idempotentHint: true` are (default: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    /// What a request does when Redis cannot be asked for its entry (default `open`).
    #[serde(default)]
    pub fail: Fail,
}

fn default_max_entries() -> usize {
    10_000
}

fn default_max_bytes() -> usize {
    64 << 20
}

fn default_max_entry_bytes() -> usize {
    1 << 20
}

fn default_ttl() -> Duration {
    Duration::from_secs(30)
}

fn default_max_ttl() -> Duration {
    Duration::from_secs(3600)
}

fn default_list_ttl() -> Duration {
    Duration::ZERO
}

/// Where results are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// In this process: each replica keeps its own.
    Memory,
    /// In Redis (`state.redis`): shared by every replica.
    Redis,
}

/// Who a result may be served to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CacheScope {
    /// Any caller.
    Public,
    /// The principal it was relayed for.
    #[default]
    Private,
}

/// What a request does when its entry cannot be looked up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Fail {
    /// It is relayed as if nothing were cached.
    #[default]
    Open,
    /// It is refused ([`CACHE_UNAVAILABLE`]).
    Closed,
}

/// Checks the `cache` section of a configuration; an error names the key.
pub fn check(config: &Config) -> Result<(), ConfigError> {
    let Some(cache) = &config.cache else {
        return Ok(());
    };
    let invalid = |key: &str, message: String| ConfigError::Invalid {
        key: format!("cache.{key}"),
        message,
    };
    if cache.backend == Some(Backend::Redis) && config.state.redis.is_none() {
        return Err(invalid("backend", "`redis` needs `state.redis`".into()));
    }
    if cache.max_entries == 0 {
        return Err(invalid("max_entries", "must be at least 1".into()));
    }
    if cache.max_bytes < 1024 {
        return Err(invalid("max_bytes", "must be at least 1024".into()));
    }
    if cache.max_entry_bytes == 0 || cache.max_entry_bytes > 16 << 20 {
        return Err(invalid("max_entry_bytes", "must be 1 to 16777216 (16 MiB)".into()));
    }
    if cache.max_ttl.is_zero() {
        return Err(invalid("max_ttl", "must be longer than 0".into()));
    }
    if cache.default_ttl > cache.max_ttl {
        return Err(invalid(
            "default_ttl",
            format!("is longer than `max_ttl` ({:?})", cache.max_ttl),
        ));
    }
    for (i, pattern) in cache.tools.iter().enumerate() {
        Glob::name(pattern).map_err(|e| invalid(&format!("tools[{i}]"), format!("`{pattern}`: {e}")))?;
    }
    Ok(())
}

/// What a request is, as the metrics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A list.
    List,
    /// `resources/read`.
    Resource,
    /// `tools/call`.
    Tool,
}

impl Kind {
    /// Its label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::List => "list",
            Self::Resource => "resource",
            Self::Tool => "tool",
        }
    }

    /// Every kind, in label order.
    pub const ALL: [Self; 3] = [Self::List, Self::Resource, Self::Tool];
}

/// What the cache did for one request, as the metrics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Served from the cache.
    Hit,
    /// Relayed (or assembled).
    Miss,
    /// Answered with a concurrent identical request's result.
    Coalesced,
    /// Not answered from the cache, which may not answer it.
    Bypass,
    /// Relayed or refused because Redis could not be asked.
    Error,
}

impl Outcome {
    /// Its label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Coalesced => "coalesced",
            Self::Bypass => "bypass",
            Self::Error => "error",
        }
    }

    /// Every outcome, in label order.
    pub const ALL: [Self; 5] = [Self::Hit, Self::Miss, Self::Coalesced, Self::Bypass, Self::Error];
}

/// A key's digest: SHA-256 of its parts.
type Digest = [u8; 32];

fn digest(parts: &[&[u8]]) -> Digest {
    let mut hasher = Sha256::new();
    for part in parts {
        // Each part prefixed with its length: parts cannot run into each other.
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

fn hex(digest: &Digest) -> String {
    use std::fmt::Write as _;
    digest.iter().fold(String::with_capacity(64), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A kept result.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    /// The result.
    #[serde(rename = "v")]
    value: Value,
    /// When it was kept, in ms since the Unix epoch.
    at: u64,
    /// For how long, in ms.
    ttl: u64,
}

impl Entry {
    /// The result to serve at `now_ms`: its `ttlMs` (when it has one) what is left of it.
    fn answer(&self, now_ms: u64) -> Value {
        let mut value = self.value.clone();
        if let Some(ttl) = value.get_mut("ttlMs").filter(|t| t.is_number()) {
            let left = (self.at + self.ttl).saturating_sub(now_ms);
            *ttl = left.min(self.ttl).into();
        }
        value
    }

    fn fresh(&self, now_ms: u64) -> bool {
        now_ms < self.at + self.ttl
    }
}

/// What a lookup read that its store must check: the upstream's generations when it looked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ticket {
    /// This process's count of the upstream's drops.
    local: u64,
    /// Redis's generation of the upstream.
    remote: u64,
}

/// Results in this process, the least recently used dropped first.
struct Memory {
    max_entries: usize,
    max_bytes: usize,
    inner: Mutex<Lru>,
}

#[derive(Default)]
struct Lru {
    entries: HashMap<Digest, Slot>,
    /// Use order: tick → digest.
    order: BTreeMap<u64, Digest>,
    tick: u64,
    bytes: usize,
}

struct Slot {
    entry: Arc<Entry>,
    upstream: Arc<str>,
    tick: u64,
    bytes: usize,
}

impl Memory {
    fn lru(&self) -> std::sync::MutexGuard<'_, Lru> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The first fresh entry of `digests`.
    fn get(&self, digests: &[Digest], now_ms: u64) -> Option<Arc<Entry>> {
        let mut lru = self.lru();
        for digest in digests {
            let Some(slot) = lru.entries.get(digest) else { continue };
            if !slot.entry.fresh(now_ms) {
                lru.remove(digest);
                continue;
            }
            let entry = slot.entry.clone();
            lru.touch(digest);
            return Some(entry);
        }
        None
    }

    fn put(&self, upstream: &str, digest: Digest, entry: Entry, bytes: usize) {
        if bytes > self.max_bytes {
            return;
        }
        let mut lru = self.lru();
        lru.remove(&digest);
        while !lru.entries.is_empty() && (lru.entries.len() >= self.max_entries || lru.bytes + bytes > self.max_bytes) {
            let Some((_, oldest)) = lru.order.pop_first() else {
                break;
            };
            lru.remove(&oldest);
        }
        lru.tick += 1;
        let tick = lru.tick;
        lru.order.insert(tick, digest);
        lru.bytes += bytes;
        lru.entries.insert(
            digest,
            Slot {
                entry: Arc::new(entry),
                upstream: upstream.into(),
                tick,
                bytes,
            },
        );
    }

    fn drop_upstream(&self, upstream: &str) {
        let mut lru = self.lru();
        let gone: Vec<Digest> = lru
            .entries
            .iter()
            .filter(|(_, slot)| &*slot.upstream == upstream)
            .map(|(digest, _)| *digest)
            .collect();
        for digest in gone {
            lru.remove(&digest);
        }
    }

    /// (entries, bytes) held now.
    fn size(&self) -> (usize, usize) {
        let lru = self.lru();
        (lru.entries.len(), lru.bytes)
    }
}

impl Lru {
    fn remove(&mut self, digest: &Digest) {
        if let Some(slot) = self.entries.remove(digest) {
            self.order.remove(&slot.tick);
            self.bytes -= slot.bytes;
        }
    }

    fn touch(&mut self, digest: &Digest) {
        self.tick += 1;
        let tick = self.tick;
        if let Some(slot) = self.entries.get_mut(digest) {
            self.order.remove(&slot.tick);
            slot.tick = tick;
            self.order.insert(tick, *digest);
        }
    }
}

/// The lookup script: `KEYS[1]` the upstream's generation, `ARGV[1]` the entry keys' prefix,
/// `ARGV[2…]` the digests (hex) looked up in turn; returns the generation and each entry (or
/// nil).
const LOOKUP: &str = r"
local g = redis.call('GET', KEYS[1]) or '0'
local out = {g}
for i = 2, #ARGV do
  out[i] = redis.call('GET', ARGV[1] .. g .. ':' .. ARGV[i]) or false
end
return out
";

/// Results in Redis.
struct RedisStore {
    client: redis::Client,
    /// The lookup script.
    lookup: redis::Script,
    /// Upstreams whose generation is still to be bumped, with the count of drops asked: a
    /// bump clears its upstream only if no drop was asked meanwhile.
    pending: Mutex<HashMap<String, u64>>,
    /// Whether `pending` has any.
    dirty: AtomicBool,
}

fn generation_key(upstream: &str) -> String {
    format!("portico:cache:g:{upstream}")
}

fn entry_prefix(upstream: &str) -> String {
    format!("portico:cache:e:{upstream}:")
}

impl RedisStore {
    fn new(address: redis::Address) -> Self {
        Self {
            client: redis::Client::new(address, REDIS_TIMEOUT),
            lookup: redis::Script::new(LOOKUP),
            pending: Mutex::default(),
            dirty: AtomicBool::new(false),
        }
    }

    /// Asks for `upstream`'s generation to be bumped (now, in the background, and before the
    /// next lookup until it is).
    fn drop_upstream(&self, upstream: &str) {
        *self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(upstream.to_string())
            .or_default() += 1;
        self.dirty.store(true, Ordering::Release);
    }

    /// Bumps the generations asked for.
    async fn flush(&self) -> Result<(), redis::Error> {
        if !self.dirty.load(Ordering::Acquire) {
            return Ok(());
        }
        let asked: Vec<(String, u64)> = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(u, n)| (u.clone(), *n))
            .collect();
        for (upstream, n) in asked {
            let key = generation_key(&upstream);
            self.client.command(&[b"INCR", key.as_bytes()]).await?;
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            if pending.get(&upstream) == Some(&n) {
                pending.remove(&upstream);
            }
            if pending.is_empty() {
                self.dirty.store(false, Ordering::Release);
            }
        }
        Ok(())
    }

    /// The upstream's generation and the first entry of `digests` there.
    async fn get(&self, upstream: &str, digests: &[Digest]) -> Result<(u64, Option<Entry>), redis::Error> {
        self.flush().await?;
        let key = generation_key(upstream);
        let prefix = entry_prefix(upstream);
        let hexes: Vec<String> = digests.iter().map(hex).collect();
        let mut args: Vec<&[u8]> = vec![key.as_bytes(), prefix.as_bytes()];
        args.extend(hexes.iter().map(|h| h.as_bytes()));
        let reply = self.eval(&args).await?;
        let redis::Reply::Array(Some(items)) = reply else {
            return Err(redis::Error::Protocol(format!("the cache's lookup answered {reply:?}")));
        };
        let generation = items
            .first()
            .and_then(redis::Reply::text)
            .and_then(|g| g.parse().ok())
            .ok_or_else(|| redis::Error::Protocol(format!("the cache's lookup answered {items:?}")))?;
        let now = now_ms();
        for item in items.iter().skip(1) {
            if let redis::Reply::Bulk(Some(bytes)) = item {
                match serde_json::from_slice::<Entry>(bytes) {
                    Ok(entry) if entry.fresh(now) => return Ok((generation, Some(entry))),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(upstream, error = %e, "a cache entry in Redis does not read; ignored"),
                }
            }
        }
        Ok((generation, None))
    }

    /// Runs the lookup script (its first argument is its one key).
    async fn eval(&self, args: &[&[u8]]) -> Result<redis::Reply, redis::Error> {
        let (keys, argv) = args.split_at(1);
        self.lookup.run(&self.client, keys, argv).await
    }

    async fn put(
        &self,
        upstream: &str,
        generation: u64,
        digest: &Digest,
        json: &[u8],
        ttl_ms: u64,
    ) -> Result<(), redis::Error> {
        let key = format!("{}{generation}:{}", entry_prefix(upstream), hex(digest));
        let ttl = ttl_ms.max(1).to_string();
        self.client
            .command(&[b"SET", key.as_bytes(), json, b"PX", ttl.as_bytes()])
            .await
            .map(|_| ())
    }
}

enum Store {
    Memory(Memory),
    Redis(Box<RedisStore>),
}

/// A list kept, and the key the framework reuses its pages by.
struct KeptList<T> {
    items: Arc<[T]>,
    key: u64,
}

/// The lists of one kind, per endpoint and role set.
pub(crate) struct Lists<T> {
    kept: Mutex<HashMap<ListKey, KeptList<T>>>,
}

impl<T> Default for Lists<T> {
    fn default() -> Self {
        Self { kept: Mutex::default() }
    }
}

/// Which list: an endpoint's, for callers holding a set of the policy's roles.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ListKey {
    scope: Scope,
    /// The caller's roles, as indices in the policy's (sorted).
    roles: Vec<usize>,
}

impl ListKey {
    /// The list of the endpoint `scope` for callers holding `roles` (sorted).
    pub(crate) fn new(scope: &Scope, roles: Vec<usize>) -> Self {
        Self {
            scope: scope.clone(),
            roles,
        }
    }
}

/// Keys of kept lists: unique in the process, so that no two lists ever share one.
static NEXT_LIST_KEY: AtomicU64 = AtomicU64::new(1);

/// What [`Cache::relay`] did with a request.
pub(crate) enum Answer {
    /// Relayed it (the upstream's outcome).
    Relayed(Result<Value, ErrorObject>),
    /// Answered it with a result it had: `hit` (kept) or `coalesced` (a concurrent identical
    /// request's).
    Served(Value, &'static str),
    /// Refused it: Redis could not be asked and `fail` is `closed`.
    Refused(ErrorObject),
}

/// How a waiting request's wait ended.
#[derive(Clone)]
enum Flight {
    /// Not yet.
    Pending,
    /// With a result it may have.
    Done(Arc<Value>),
    /// Without one: it makes the call itself.
    Abandoned,
}

/// The requests being relayed, by the digest of what they ask and who for.
#[derive(Default)]
struct Flights {
    /// Each with the id of its leader.
    waiting: Mutex<HashMap<Digest, (u64, watch::Receiver<Flight>)>>,
    next: AtomicU64,
}

/// The first of concurrent identical requests: tells the others how it ended (abandoned, if it
/// ends without saying).
struct Leader<'a> {
    flights: &'a Flights,
    digest: Digest,
    id: u64,
    sender: watch::Sender<Flight>,
}

impl Leader<'_> {
    fn finish(&self, flight: Flight) {
        self.sender.send_if_modified(|current| {
            let pending = matches!(current, Flight::Pending);
            if pending {
                *current = flight;
            }
            pending
        });
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        self.finish(Flight::Abandoned);
        let mut waiting = self.flights.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        if waiting.get(&self.digest).is_some_and(|(id, _)| *id == self.id) {
            waiting.remove(&self.digest);
        }
    }
}

enum Joined<'a> {
    Leader(Leader<'a>),
    Follower(watch::Receiver<Flight>),
}

impl Flights {
    fn join(&self, digest: Digest) -> Joined<'_> {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, receiver)) = waiting.get(&digest) {
            return Joined::Follower(receiver.clone());
        }
        let (sender, receiver) = watch::channel(Flight::Pending);
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        waiting.insert(digest, (id, receiver));
        Joined::Leader(Leader {
            flights: self,
            digest,
            id,
            sender,
        })
    }
}

/// The cache of one configuration ([`crate::catalog::Routes`] holds it; a configuration
/// change makes a new one).
pub struct Cache {
    config: CacheConfig,
    tools: Vec<Glob>,
    /// Whether `auth` is on (else every caller is `anonymous`).
    auth: bool,
    /// Whether a policy filters lists (their scope is then `private`).
    policy: bool,
    store: Store,
    /// Drops asked per upstream, in this process.
    drops: Mutex<HashMap<String, u64>>,
    flights: Flights,
    /// Bumped whenever lists are dropped: a list assembled before is not kept.
    list_generation: AtomicU64,
    tool_lists: Lists<wire::Tool>,
    resource_lists: Lists<wire::Resource>,
    template_lists: Lists<wire::ResourceTemplate>,
    prompt_lists: Lists<wire::Prompt>,
    metrics: Arc<Metrics>,
}

/// One of the four list kinds a [`Cache`] keeps.
pub(crate) trait Listed: Clone + Send + Sync + 'static {
    /// Its lists in `cache`.
    fn lists(cache: &Cache) -> &Lists<Self>;
}

impl Listed for wire::Tool {
    fn lists(cache: &Cache) -> &Lists<Self> {
        &cache.tool_lists
    }
}

impl Listed for wire::Resource {
    fn lists(cache: &Cache) -> &Lists<Self> {
        &cache.resource_lists
    }
}

impl Listed for wire::ResourceTemplate {
    fn lists(cache: &Cache) -> &Lists<Self> {
        &cache.template_lists
    }
}

impl Listed for wire::Prompt {
    fn lists(cache: &Cache) -> &Lists<Self> {
        &cache.prompt_lists
    }
}

impl Cache {
    /// The cache `config` asks for (none without a `cache` section); results go to Redis at
    /// `redis` (the address read at start) for the `redis` backend. `dropped` are the
    /// upstreams whose shared entries are dropped first (a configuration change: those of the
    /// old and the new configuration).
    pub(crate) fn new(
        config: &Config,
        redis: Option<redis::Address>,
        metrics: Arc<Metrics>,
        dropped: &[&str],
    ) -> Option<Arc<Self>> {
        let cache = config.cache.clone()?;
        let tools = cache.tools.iter().filter_map(|p| Glob::name(p).ok()).collect();
        let backend = cache.backend.unwrap_or(if config.state.redis.is_some() {
            Backend::Redis
        } else {
            Backend::Memory
        });
        let store = match (backend, redis) {
            (Backend::Redis, Some(address)) => Store::Redis(Box::new(RedisStore::new(address))),
            (Backend::Redis, None) => {
                tracing::warn!("`state.redis` is read at start: the cache keeps results in memory until a restart");
                Store::Memory(Memory::new(&cache))
            }
            (Backend::Memory, _) => Store::Memory(Memory::new(&cache)),
        };
        let cache = Self {
            tools,
            auth: config.auth.is_some(),
            policy: config.policy.is_some(),
            store,
            drops: Mutex::default(),
            flights: Flights::default(),
            list_generation: AtomicU64::new(0),
            tool_lists: Lists::default(),
            resource_lists: Lists::default(),
            template_lists: Lists::default(),
            prompt_lists: Lists::default(),
            metrics,
            config: cache,
        };
        if let Store::Redis(redis) = &cache.store {
            for upstream in dropped {
                redis.drop_upstream(upstream);
            }
        }
        Some(Arc::new(cache))
    }

    /// Makes the drops asked so far in Redis now (a configuration change waits for it, so that
    /// once it is applied, no replica serves what it dropped); one that fails is made before
    /// the next lookup.
    pub(crate) async fn flush(&self) {
        if let Store::Redis(redis) = &self.store
            && let Err(e) = redis.flush().await
        {
            tracing::warn!(error = %e, "dropping cache entries in Redis failed; tried again before the next lookup");
        }
    }

    /// Bumps pending generations in the background (when there are, and a runtime to do it).
    fn flush_later(self: &Arc<Self>) {
        let Store::Redis(redis) = &self.store else { return };
        if !redis.dirty.load(Ordering::Acquire) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let cache = self.clone();
            runtime.spawn(async move { cache.flush().await });
        }
    }

    fn count(&self, kind: Kind, outcome: Outcome) {
        self.metrics.record_cache(kind, outcome);
    }

    /// Drops every list, and every result of `upstream` (its list changed, or a resource of it).
    pub(crate) fn drop_upstream(self: &Arc<Self>, upstream: &str) {
        self.drop_lists();
        *self
            .drops
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(upstream.to_string())
            .or_default() += 1;
        match &self.store {
            Store::Memory(memory) => memory.drop_upstream(upstream),
            Store::Redis(redis) => {
                redis.drop_upstream(upstream);
                self.flush_later();
            }
        }
        tracing::debug!(upstream, "cache entries dropped");
    }

    fn drop_lists(&self) {
        self.list_generation.fetch_add(1, Ordering::AcqRel);
        fn clear<T>(lists: &Lists<T>) {
            lists.kept.lock().unwrap_or_else(PoisonError::into_inner).clear();
        }
        clear(&self.tool_lists);
        clear(&self.resource_lists);
        clear(&self.template_lists);
        clear(&self.prompt_lists);
    }

    fn local_drops(&self, upstream: &str) -> u64 {
        self.drops
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(upstream)
            .copied()
            .unwrap_or(0)
    }

    /// The memory backend's (entries, bytes), for `/metrics`.
    pub(crate) fn size(&self) -> Option<(usize, usize)> {
        match &self.store {
            Store::Memory(memory) => Some(memory.size()),
            Store::Redis(_) => None,
        }
    }

    /// The `ttlMs` and `cacheScope` of the gateway's list results.
    fn list_hints<T>(&self, listing: Listing<T>) -> Listing<T> {
        let scope = if self.policy {
            wire::CacheableResultCacheScope::Private
        } else {
            wire::CacheableResultCacheScope::Public
        };
        listing
            .with_ttl_ms(i64::try_from(self.config.list_ttl.as_millis()).unwrap_or(i64::MAX))
            .with_cache_scope(scope)
    }

    /// The list `key` kept, or the one `assemble` makes (kept unless lists were dropped while
    /// it was made).
    pub(crate) async fn list<T: Listed, F>(&self, key: ListKey, assemble: F) -> Result<Listing<T>, ErrorObject>
    where
        F: Future<Output = Result<Vec<T>, ErrorObject>>,
    {
        let lists = T::lists(self);
        let generation = self.list_generation.load(Ordering::Acquire);
        let kept = lists
            .kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .map(|k| Listing::new(k.items.clone()).with_key(k.key));
        if let Some(listing) = kept {
            self.count(Kind::List, Outcome::Hit);
            return Ok(self.list_hints(listing));
        }
        self.count(Kind::List, Outcome::Miss);
        let items: Arc<[T]> = assemble.await?.into();
        let list_key = NEXT_LIST_KEY.fetch_add(1, Ordering::Relaxed);
        {
            let mut kept = lists.kept.lock().unwrap_or_else(PoisonError::into_inner);
            // Checked under the lock `drop_lists` clears: a list assembled from snapshots
            // older than a drop is not kept.
            if self.list_generation.load(Ordering::Acquire) == generation {
                if kept.len() >= MAX_LISTS {
                    kept.clear();
                }
                kept.insert(
                    key,
                    KeptList {
                        items: items.clone(),
                        key: list_key,
                    },
                );
            }
        }
        Ok(self.list_hints(Listing::new(items).with_key(list_key)))
    }

    /// Whether the cache may answer calls of `tool` (its name at `upstream`): `cache.tools`
    /// names it and its upstream annotates it read-only and idempotent (a tool named but not
    /// annotated is counted as a bypass).
    pub(crate) fn caches_tool(&self, upstream: &Upstream, tool: &str) -> bool {
        if !self.tools.iter().any(|g| g.matches(tool)) {
            return false;
        }
        let snapshot = upstream.snapshot();
        let annotated = snapshot
            .tools
            .iter()
            .find(|t| t.name == tool)
            .and_then(|t| t.annotations.as_ref())
            .is_some_and(|a| a.read_only_hint == Some(true) && a.idempotent_hint == Some(true));
        if !annotated {
            self.count(Kind::Tool, Outcome::Bypass);
        }
        annotated
    }

    /// Who private entries belong to for the request `cx`: the token's subject, `anonymous`
    /// with `auth` off, none with `auth` on and no principal.
    fn principal(&self, cx: &Context) -> Option<String> {
        match cx.extension::<Principal>() {
            Some(principal) => Some(format!("sub:{}", principal.subject)),
            None if !self.auth => Some(ANONYMOUS.to_string()),
            None => None,
        }
    }

    /// How long `result` is kept, and who for; `None`: it is not kept.
    fn freshness(&self, kind: Kind, result: &Value) -> Option<(u64, CacheScope)> {
        if result.get("isError") == Some(&Value::Bool(true)) {
            return None;
        }
        if result
            .get("resultType")
            .and_then(Value::as_str)
            .is_some_and(|t| t != "complete")
        {
            return None;
        }
        let max = self.config.max_ttl.as_millis() as u64;
        let default = self.config.default_ttl.as_millis() as u64;
        let (ttl, scope) = match kind {
            Kind::Resource => match result.get("ttlMs").and_then(Value::as_i64) {
                Some(ttl) => {
                    let scope = match result.get("cacheScope").and_then(Value::as_str) {
                        Some("public") => CacheScope::Public,
                        _ => CacheScope::Private,
                    };
                    (ttl.max(0) as u64, scope)
                }
                None => (default, self.config.default_scope),
            },
            _ => (default, CacheScope::Private),
        };
        let ttl = ttl.min(max);
        (ttl > 0).then_some((ttl, scope))
    }

    /// Answers the request `method` (`params`, as the plugins left them) of `upstream` for `cx`
    /// from the cache, from a concurrent identical request's result, or by relaying it (see the
    /// module's docs). `kind` says what it is: `resources/read` (its target the `uri`) or a
    /// `tools/call` the cache may answer (its target the tool's `name`).
    pub(crate) async fn relay(
        &self,
        upstream: &Upstream,
        cx: &Context,
        kind: Kind,
        method: &str,
        params: Map<String, Value>,
    ) -> Answer {
        let principal = self.principal(cx);
        if kind == Kind::Tool && principal.is_none() {
            self.count(kind, Outcome::Bypass);
            return Answer::Relayed(relay::forward_to_replicas(upstream, cx, method, params, &|| {}).await);
        }
        let field = if kind == Kind::Resource { "uri" } else { "name" };
        let target = params.get(field).and_then(Value::as_str).unwrap_or_default();
        let arguments = params
            .get("arguments")
            .map(|a| serde_json::to_vec(a).unwrap_or_default())
            .unwrap_or_default();
        let parts = |scope: &[u8], principal: &[u8]| {
            digest(&[
                b"v1",
                kind.as_str().as_bytes(),
                upstream.name().as_bytes(),
                method.as_bytes(),
                target.as_bytes(),
                &arguments,
                scope,
                principal,
            ])
        };
        let public = (kind == Kind::Resource).then(|| parts(b"public", b""));
        let private = principal.as_deref().map(|p| parts(b"private", p.as_bytes()));
        let digests: Vec<Digest> = public.iter().chain(private.iter()).copied().collect();

        let ticket = match self.lookup(upstream.name(), &digests).await {
            Ok((Some(entry), _)) => {
                self.count(kind, Outcome::Hit);
                return Answer::Served(entry.answer(now_ms()), "hit");
            }
            Ok((None, ticket)) => ticket,
            Err(error) => {
                self.count(kind, Outcome::Error);
                return match self.config.fail {
                    Fail::Open => {
                        tracing::debug!(upstream = upstream.name(), error = %error, "the cache cannot be asked; relayed as if uncached");
                        Answer::Relayed(relay::forward_to_replicas(upstream, cx, method, params, &|| {}).await)
                    }
                    Fail::Closed => Answer::Refused(
                        ErrorObject::new(
                            CACHE_UNAVAILABLE,
                            format!("the cache cannot be asked ({error}), and `cache.fail` is `closed`"),
                        )
                        .with_data(json!({"reason": "cache unavailable"})),
                    ),
                };
            }
        };

        // One relay for concurrent identical requests of one principal.
        let flight = private.or(public).unwrap_or_default();
        let leader = match self.flights.join(flight) {
            Joined::Follower(mut receiver) => {
                let waited = tokio::select! {
                    ended = receiver.wait_for(|f| !matches!(f, Flight::Pending)) => ended.map(|f| f.clone()).ok(),
                    () = cx.cancelled() => {
                        return Answer::Relayed(Err(ErrorObject::internal("the client cancelled the call")));
                    }
                };
                if let Some(Flight::Done(result)) = waited {
                    self.count(kind, Outcome::Coalesced);
                    return Answer::Served((*result).clone(), "coalesced");
                }
                // The first one ended without a result to share: this one makes the call.
                self.count(kind, Outcome::Miss);
                return Answer::Relayed(relay::forward_to_replicas(upstream, cx, method, params, &|| {}).await);
            }
            Joined::Leader(leader) => leader,
        };
        // A request just before this one may have kept its result as this one looked.
        if let Ok((Some(entry), _)) = self.lookup(upstream.name(), &digests).await {
            self.count(kind, Outcome::Hit);
            let answer = entry.answer(now_ms());
            leader.finish(Flight::Done(Arc::new(answer.clone())));
            return Answer::Served(answer, "hit");
        }
        self.count(kind, Outcome::Miss);
        let asked = AtomicBool::new(false);
        let on_question = || {
            if !asked.swap(true, Ordering::AcqRel) {
                // Its result will not be shared: the others go on by themselves now.
                leader.finish(Flight::Abandoned);
            }
        };
        let outcome = relay::forward_to_replicas(upstream, cx, method, params, &on_question).await;
        let Ok(result) = &outcome else {
            return Answer::Relayed(outcome);
        };
        let kept = if asked.load(Ordering::Acquire) {
            None
        } else {
            self.freshness(kind, result)
        };
        let Some((ttl, scope)) = kept else {
            return Answer::Relayed(outcome);
        };
        let digest = match scope {
            CacheScope::Public => public.or(private),
            CacheScope::Private => private,
        };
        let Some(digest) = digest else {
            // A private result and no principal: neither kept nor shared.
            return Answer::Relayed(outcome);
        };
        let entry = Entry {
            value: result.clone(),
            at: now_ms(),
            ttl,
        };
        let json = serde_json::to_vec(&entry).unwrap_or_default();
        if json.len() > self.config.max_entry_bytes {
            return Answer::Relayed(outcome);
        }
        leader.finish(Flight::Done(Arc::new(result.clone())));
        self.keep(upstream.name(), ticket, digest, entry, json).await;
        Answer::Relayed(outcome)
    }

    /// Looks `digests` up in turn: the first fresh entry, and the generations to keep a result
    /// with.
    async fn lookup(&self, upstream: &str, digests: &[Digest]) -> Result<(Option<Arc<Entry>>, Ticket), redis::Error> {
        let local = self.local_drops(upstream);
        match &self.store {
            Store::Memory(memory) => Ok((memory.get(digests, now_ms()), Ticket { local, remote: 0 })),
            Store::Redis(redis) => {
                let (remote, found) = redis.get(upstream, digests).await?;
                Ok((found.map(Arc::new), Ticket { local, remote }))
            }
        }
    }

    /// Keeps `entry` (its JSON `json`) under `digest`, unless the upstream's entries were
    /// dropped since `ticket` was read.
    async fn keep(&self, upstream: &str, ticket: Ticket, digest: Digest, entry: Entry, json: Vec<u8>) {
        if self.local_drops(upstream) != ticket.local {
            return;
        }
        match &self.store {
            Store::Memory(memory) => {
                // Checked again under the memory's lock is not needed: a drop after this check
                // removes the entry from the memory itself.
                memory.put(upstream, digest, entry, json.len() + 128);
                if self.local_drops(upstream) != ticket.local {
                    memory.drop_upstream(upstream);
                }
            }
            Store::Redis(redis) => {
                if let Err(e) = redis.put(upstream, ticket.remote, &digest, &json, entry.ttl).await {
                    tracing::debug!(upstream, error = %e, "a result was not kept in Redis");
                }
            }
        }
    }
}

impl Memory {
    fn new(config: &CacheConfig) -> Self {
        Self {
            max_entries: config.max_entries,
            max_bytes: config.max_bytes,
            inner: Mutex::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(yaml: &str) -> String {
        Config::parse(yaml, false).unwrap_err().to_string()
    }

    #[test]
    fn the_section_reads_with_its_defaults_and_bad_values_name_their_key() {
        let config = Config::parse("cache: {}\n", false).unwrap();
        let cache = config.cache.unwrap();
        assert_eq!(cache.backend, None);
        assert_eq!(cache.max_entries, 10_000);
        assert_eq!(cache.max_bytes, 64 << 20);
        assert_eq!(cache.default_ttl, Duration::from_secs(30));
        assert_eq!(cache.default_scope, CacheScope::Private);
        assert_eq!(cache.max_ttl, Duration::from_secs(3600));
        assert_eq!(cache.list_ttl, Duration::ZERO);
        assert_eq!(cache.fail, Fail::Open);
        assert!(Config::parse("", false).unwrap().cache.is_none());
        let config = Config::parse(
            "cache: {backend: memory, max_entries: 5, default_ttl: 250ms, default_scope: public, tools: ['get_*', weather], fail: closed}\n",
            false,
        )
        .unwrap();
        let cache = config.cache.unwrap();
        assert_eq!(cache.tools, ["get_*", "weather"]);
        assert_eq!(cache.default_scope, CacheScope::Public);

        assert_eq!(
            error("cache: {backend: redis}\n"),
            "cache.backend: `redis` needs `state.redis`"
        );
        assert_eq!(
            error("cache: {max_entries: 0}\n"),
            "cache.max_entries: must be at least 1"
        );
        assert!(error("cache: {max_bytes: 10}\n").starts_with("cache.max_bytes:"));
        assert!(error("cache: {max_entry_bytes: 0}\n").starts_with("cache.max_entry_bytes:"));
        assert!(error("cache: {max_ttl: 0s}\n").starts_with("cache.max_ttl:"));
        assert!(error("cache: {default_ttl: 2h}\n").starts_with("cache.default_ttl: is longer than `max_ttl`"));
        assert!(error("cache: {tools: [ok, '{a,b}']}\n").starts_with("cache.tools[1]: `{a,b}`"));
        let unknown = error("cache: {backend: disk}\n");
        assert!(
            unknown.contains("cache.backend") && unknown.contains("unknown variant"),
            "{unknown}"
        );
        let unknown = error("cache: {fail: maybe}\n");
        assert!(
            unknown.contains("cache.fail") && unknown.contains("unknown variant"),
            "{unknown}"
        );
        let unknown = error("cache: {ttl: 5s}\n");
        assert!(unknown.contains("unknown field `ttl`"), "{unknown}");
        let bad = error("cache:\n  default_ttl: soon\n");
        // The decoder names the section and the line of the key.
        assert!(
            bad.contains("cache") && bad.contains("`soon`") && bad.contains("line 2"),
            "{bad}"
        );
    }

    #[test]
    fn digests_separate_their_parts() {
        assert_ne!(digest(&[b"ab", b"c"]), digest(&[b"a", b"bc"]));
        assert_eq!(digest(&[b"a", b"b"]), digest(&[b"a", b"b"]));
        assert_eq!(hex(&digest(&[])).len(), 64);
    }

    fn entry(value: Value, ttl: u64) -> Entry {
        Entry {
            value,
            at: now_ms(),
            ttl,
        }
    }

    #[test]
    fn memory_keeps_what_fits_and_drops_the_least_recently_used() {
        let memory = Memory {
            max_entries: 3,
            max_bytes: 1000,
            inner: Mutex::default(),
        };
        let d = |n: u8| [n; 32];
        let now = now_ms();
        for n in 1..=3 {
            memory.put("u", d(n), entry(json!(n), 60_000), 100);
        }
        assert_eq!(memory.size(), (3, 300));
        // 1 used: 2 is the least recently used, and goes for 4.
        assert!(memory.get(&[d(1)], now).is_some());
        memory.put("u", d(4), entry(json!(4), 60_000), 100);
        assert!(memory.get(&[d(2)], now).is_none());
        assert!(memory.get(&[d(1)], now).is_some());
        assert_eq!(memory.size(), (3, 300));
        // Bytes bound too: a large entry pushes out as many as it needs (the least recently
        // used first).
        memory.put("v", d(5), entry(json!(5), 60_000), 850);
        assert_eq!(memory.size(), (2, 950));
        assert!(memory.get(&[d(1)], now).is_some(), "used last");
        assert!(memory.get(&[d(5)], now).is_some());
        // Larger than the whole memory: not kept.
        memory.put("v", d(6), entry(json!(6), 60_000), 2000);
        assert!(memory.get(&[d(6)], now).is_none());
        // The first fresh one of several digests; a stale one is dropped.
        memory.put("u", d(7), entry(json!(7), 1), 10);
        assert!(memory.get(&[d(7), d(5)], now + 5).is_some_and(|e| e.value == json!(5)));
        assert!(memory.get(&[d(7)], now).is_none());
        // An upstream's entries drop together.
        memory.put("u", d(8), entry(json!(8), 60_000), 10);
        memory.drop_upstream("v");
        assert!(memory.get(&[d(5)], now).is_none());
        assert!(memory.get(&[d(8)], now).is_some());
    }

    #[test]
    fn served_entries_say_what_is_left_of_their_ttl() {
        let kept = Entry {
            value: json!({"contents": [], "ttlMs": 5000, "cacheScope": "public"}),
            at: 1_000,
            ttl: 5000,
        };
        assert_eq!(kept.answer(3_000)["ttlMs"], 3000);
        assert_eq!(kept.answer(9_000)["ttlMs"], 0);
        assert!(kept.fresh(5_999) && !kept.fresh(6_000));
        // A result without `ttlMs` (an older upstream's) is served as it was.
        let old = Entry {
            value: json!({"contents": []}),
            at: 0,
            ttl: 10,
        };
        assert!(old.answer(5).get("ttlMs").is_none());
    }

    fn made(yaml: &str) -> Arc<Cache> {
        Cache::new(&Config::parse(yaml, false).unwrap(), None, Arc::default(), &[]).expect("a cache")
    }

    #[test]
    fn freshness_follows_the_result_and_the_configuration() {
        let cache = made("cache: {default_ttl: 10s, max_ttl: 1m}\n");
        let read = |v: Value| cache.freshness(Kind::Resource, &v);
        assert_eq!(
            read(json!({"contents": [], "ttlMs": 2000, "cacheScope": "public"})),
            Some((2000, CacheScope::Public))
        );
        assert_eq!(
            read(json!({"contents": [], "ttlMs": 2000, "cacheScope": "private"})),
            Some((2000, CacheScope::Private))
        );
        assert_eq!(
            read(json!({"contents": [], "ttlMs": 2000, "cacheScope": "shared"})),
            Some((2000, CacheScope::Private)),
            "an unknown scope is private"
        );
        assert_eq!(read(json!({"contents": [], "ttlMs": 0, "cacheScope": "public"})), None);
        assert_eq!(read(json!({"contents": [], "ttlMs": -5})), None);
        assert_eq!(
            read(json!({"contents": [], "ttlMs": 86_400_000})),
            Some((60_000, CacheScope::Private)),
            "capped by max_ttl"
        );
        assert_eq!(read(json!({"contents": []})), Some((10_000, CacheScope::Private)));
        let tool = |v: Value| cache.freshness(Kind::Tool, &v);
        assert_eq!(tool(json!({"content": []})), Some((10_000, CacheScope::Private)));
        assert_eq!(tool(json!({"content": [], "isError": true})), None);
        assert_eq!(tool(json!({"resultType": "task", "task": {}})), None);
        assert_eq!(
            tool(json!({"resultType": "complete", "content": []})),
            Some((10_000, CacheScope::Private))
        );
        let public = made("cache: {default_scope: public, default_ttl: 0s}\n");
        assert_eq!(public.freshness(Kind::Resource, &json!({"contents": []})), None);
    }

    #[tokio::test]
    async fn a_list_assembled_across_a_drop_is_not_kept() {
        let cache = made("cache: {}\n");
        let key = || ListKey::new(&Scope::All, Vec::new());
        let first: Listing<wire::Prompt> = cache.list(key(), async { Ok(Vec::new()) }).await.unwrap();
        let again: Listing<wire::Prompt> = cache.list(key(), async { panic!("kept") }).await.unwrap();
        assert_eq!(first.key, again.key);
        assert_eq!(again.cache_scope, Some(wire::CacheableResultCacheScope::Public));
        assert_eq!(again.ttl_ms, Some(0));
        cache.drop_upstream("u");
        let dropping = cache.clone();
        let during: Listing<wire::Prompt> = cache
            .list(key(), async move {
                dropping.drop_upstream("u");
                Ok(Vec::new())
            })
            .await
            .unwrap();
        assert_ne!(during.key, first.key);
        let after: Listing<wire::Prompt> = cache.list(key(), async { Ok(Vec::new()) }).await.unwrap();
        assert_ne!(after.key, during.key, "the list made across the drop was not kept");
        // With a policy, lists are private.
        let cache = made("cache: {list_ttl: 5s}\npolicy: {roles: {r: {}}}\n");
        let listing: Listing<wire::Tool> = cache.list(key(), async { Ok(Vec::new()) }).await.unwrap();
        assert_eq!(listing.cache_scope, Some(wire::CacheableResultCacheScope::Private));
        assert_eq!(listing.ttl_ms, Some(5000));
    }

    #[tokio::test]
    async fn a_leader_that_goes_away_releases_the_others() {
        let flights = Flights::default();
        let Joined::Leader(leader) = flights.join([1; 32]) else {
            panic!("the first is the leader")
        };
        let Joined::Follower(mut follower) = flights.join([1; 32]) else {
            panic!("the second follows")
        };
        drop(leader);
        let ended = follower
            .wait_for(|f| !matches!(f, Flight::Pending))
            .await
            .unwrap()
            .clone();
        assert!(matches!(ended, Flight::Abandoned));
        // Gone from the map: the next one leads.
        assert!(matches!(flights.join([1; 32]), Joined::Leader(_)));
        let Joined::Leader(leader) = flights.join([2; 32]) else {
            panic!("leader")
        };
        let Joined::Follower(mut follower) = flights.join([2; 32]) else {
            panic!("follower")
        };
        leader.finish(Flight::Done(Arc::new(json!(7))));
        leader.finish(Flight::Abandoned);
        drop(leader);
        let ended = follower
            .wait_for(|f| !matches!(f, Flight::Pending))
            .await
            .unwrap()
            .clone();
        assert!(
            matches!(ended, Flight::Done(v) if *v == json!(7)),
            "the first word stays"
        );
    }

    /// The machine's Redis, as the integration tests find it.
    fn test_redis() -> redis::Address {
        let url = std::env::var("PORTICO_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        redis::Address::parse(&url).expect("a redis:// URL")
    }

    #[tokio::test]
    async fn redis_keeps_entries_per_generation() {
        let store = RedisStore::new(test_redis());
        if let Err(e) = store.client.command(&[b"PING"]).await {
            panic!("Redis is not reachable ({e}): start it (`bash .ci/run` does), or set PORTICO_TEST_REDIS");
        }
        let upstream = format!("unit-{}-{}", std::process::id(), now_ms());
        let d = [9u8; 32];
        let (generation, found) = store.get(&upstream, &[d]).await.unwrap();
        assert_eq!((generation, found.is_none()), (0, true));
        let json = serde_json::to_vec(&entry(json!({"x": 1}), 10_000)).unwrap();
        store.put(&upstream, generation, &d, &json, 10_000).await.unwrap();
        let (_, found) = store.get(&upstream, &[[8; 32], d]).await.unwrap();
        assert_eq!(found.map(|e| e.value), Some(json!({"x": 1})));
        // Dropped: the generation moves on before the next lookup.
        store.drop_upstream(&upstream);
        let (generation, found) = store.get(&upstream, &[d]).await.unwrap();
        assert_eq!((generation, found.is_none()), (1, true));
        assert!(!store.dirty.load(Ordering::Acquire));
        // Redis forgot the script (a restart): EVAL stands in.
        store.lookup.pretend_loaded("0000000000000000000000000000000000000000");
        assert!(store.get(&upstream, &[d]).await.is_ok());
        let _ = store
            .client
            .command(&[b"DEL", generation_key(&upstream).as_bytes()])
            .await;
    }
}
