//! Rate limits: token buckets in front of the MCP endpoints, configured as `rate_limits` rules
//! and kept in memory or in Redis.
//!
//! # Rules and buckets
//!
//! A rule ([`RuleConfig`]) picks requests by method, tool and upstream (glob patterns) and
//! gives each distinct value of its `key` — any combination of `principal`, `upstream`,
//! `tool` and `method` — a token bucket holding at most `burst` tokens and refilled at `rate`
//! (`10/s`, `600/m`, `5/250ms`). A request takes one token from the bucket of every rule it
//! matches, in configuration order; the first rule whose bucket is empty refuses it (tokens
//! taken by the rules before stay taken). Refill is computed from the time elapsed when a
//! bucket is next used: nothing ticks in the background. A bucket idle long enough to be full
//! again is the same as no bucket, so it is dropped: in memory by a sweep (every 10 s, and
//! when a shard holds [`MAX_BUCKETS`]/16 buckets, then also dropping the fullest buckets),
//! in Redis by `PEXPIRE` at the moment it would be full. Memory stays bounded whatever keys
//! clients cause.
//!
//! The key's parts:
//!
//! - `principal`: the caller — `sub:<subject>` of the bearer token ([`crate::auth`]); without
//!   `auth`, `ip:<address>` of the TCP peer (behind a proxy, every caller is the proxy: use
//!   `auth` for limits per caller), or `anonymous` when the address is not known;
//! - `upstream`: the upstream serving the request — the one a `tools/call`, `prompts/get` or
//!   `resources/read` goes to, or the upstream of an `/mcp/<upstream>` endpoint; empty for what
//!   no single upstream serves (lists on the aggregated endpoint);
//! - `tool`: the tool a `tools/call` calls, as `<upstream>/<name there>`, so a tool has one
//!   bucket whichever endpoint or virtual-server name it is called by; empty for other
//!   requests and for names no upstream serves;
//! - `method`: the JSON-RPC method.
//!
//! `tools` patterns match the tool's name at its upstream (as `/mcp/<upstream>` lists it), so
//! a rule with `tools` matches `tools/call` requests alone; `upstreams` patterns match the
//! upstream as above. A request no rule matches costs nothing but the body's parse.
//!
//! # Where limits apply
//!
//! In the HTTP layer (`enforce`, which `Gateway::serve` calls for every MCP endpoint, after
//! authentication): every POST to an MCP endpoint (Streamable HTTP of both generations, the
//! legacy transport's `/messages`) is read — the body is bounded already; only `method`, `id` and
//! `params.name`/`params.uri` are parsed, and a 2026-07-28 request to the Streamable HTTP endpoint
//! that names its method and target in `Mcp-Method`/`Mcp-Name` is taken from those headers, which
//! the transport checks against the body before anything serves it, its body parsed only to answer
//! a refusal — and each JSON-RPC request in it (a batch counts each one; notifications and
//! responses are free) is checked before the transport sees it. A refused request is answered at
//! once:
//!
//! - `429 Too Many Requests` with `Retry-After` (seconds, rounded up), the `RateLimit-Policy`
//!   and `RateLimit` fields of draft-ietf-httpapi-ratelimit-headers-10
//!   (`RateLimit-Policy: "rule";q=<burst>;w=<seconds to refill the burst>`,
//!   `RateLimit: "rule";r=0;t=<seconds until a request is admitted>`), and a JSON-RPC error
//!   body: code [`RATE_LIMITED`] (`-32053`), `data: {rule, retryAfterMs}`, the request's `id`
//!   (`null` for a batch; a batch is refused whole);
//! - an admitted request's response carries `RateLimit-Policy` and `RateLimit` for every rule
//!   it matched, `t` then being the seconds until the bucket is full.
//!
//! WebSocket messages pass no HTTP middleware: the transport hands each text message to
//! [`ws_admit`] first (`WsConfig::admit`), which checks it as a POST body is, the caller known
//! from what the upgrade request carried; a refused one is answered on the socket with the same
//! JSON-RPC error (no HTTP status or headers there), and the socket stays open.
//!
//! # When Redis is away
//!
//! A Redis rule whose bucket cannot be read (Redis unreachable, slow past 1 s, answering
//! errors) does as its `fail` says: `open` admits, `closed` refuses, and `closed-for-writes`
//! (the default) refuses writes and admits reads. A **write** is a `tools/call` of a tool not
//! annotated `readOnlyHint: true` (or of a name no upstream serves); everything else —
//! lists, `resources/read`, `prompts/get`, `completion/complete`, `ping`, `initialize` — is a
//! read. A refusal for this reason is `503` with the same JSON-RPC code, `data.reason`
//! `"store unavailable"`, and a `Retry-After` of the time until the gateway tries Redis again.
//! The Redis client ([`crate::redis`]) stops trying for a short while after a failure
//! (100 ms doubling to 2 s), so while Redis is away requests are decided at once; the first
//! request after the wait that reaches Redis ends it.
//!
//! # Redis
//!
//! One Lua script ([`SCRIPT`]) reads, refills, takes from and writes a bucket atomically, on
//! Redis's own clock (`TIME`), so every replica shares each bucket exactly and their clocks do
//! not matter. It runs with `EVALSHA` (the script loaded once with `SCRIPT LOAD`), and `EVAL`
//! when Redis answers `NOSCRIPT` (after a restart). Keys are
//! `portico:ratelimit:<rule>:<len>:<part>…` (each part prefixed with its length, so parts
//! cannot be confused); a rule's buckets are shared by every gateway using the same Redis and
//! rule name. One key per script call: Redis Cluster works as long as nothing else is needed.
//!
//! # Concurrency caps
//!
//! Calls in flight are capped per replica by the upstream's `max_in_flight` ([`crate::upstream`]):
//! a call no replica has room for is refused at once (`-32050`, "at its limit of N calls in
//! flight"), not queued.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt as _;
use portico_transport::http::{MCP_METHOD, MCP_NAME, MCP_PROTOCOL_VERSION, MCP_SESSION_ID};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::Gateway;
use crate::catalog::{Routes, Scope, View};
use crate::config::{Config, ConfigError};
use crate::metrics::Metrics;
use crate::redis;

/// The JSON-RPC error code of a request refused by a rate limit (or because its limit could
/// not be checked): the next of the gateway's codes after [`crate::relay`]'s.
pub const RATE_LIMITED: i64 = -32053;

/// Buckets held in memory at most (in 16 shards).
pub const MAX_BUCKETS: usize = 1 << 16;

/// How long one Redis command of the limiter may take.
const REDIS_TIMEOUT: Duration = Duration::from_secs(1);

/// One `rate_limits` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Its name: letters, digits, `-` and `_`, unique. Named in metrics, in the `RateLimit`
    /// headers, in refusals, and in Redis keys (gateways sharing a Redis share a rule's
    /// buckets by its name).
    pub name: String,
    /// What gets a bucket of its own: any of `principal`, `upstream`, `tool`, `method`
    /// (default: none, one bucket for every request the rule matches).
    #[serde(default)]
    pub key: Vec<KeyPart>,
    /// Tokens added per period: `10/s`, `600/m`, `1000/h`, `5/250ms`, `1/2s`.
    pub rate: String,
    /// Tokens a bucket holds at most: requests admitted at once after an idle time (default:
    /// the rate's count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
    /// Methods it applies to, as glob patterns (`*`, `?`): `tools/call`, `resources/*`
    /// (default: every request).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// Tools it applies to, by their name at their upstream (glob patterns); with it, the rule
    /// applies to `tools/call` alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    /// Upstreams it applies to, by name (glob patterns).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upstreams: Vec<String>,
    /// Where its buckets are kept (default: `redis` when `state.redis` is set, else `memory`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,
    /// What a Redis rule does when Redis cannot be asked (default `closed-for-writes`).
    #[serde(default)]
    pub fail: Fail,
}

/// A part of a rule's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyPart {
    /// The caller.
    Principal,
    /// The upstream serving the request.
    Upstream,
    /// The tool called.
    Tool,
    /// The JSON-RPC method.
    Method,
}

/// Where a rule's buckets are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// In this process: each gateway replica has its own buckets.
    Memory,
    /// In Redis (`state.redis`): shared by every replica.
    Redis,
}

/// What a Redis rule does with a request when its bucket cannot be read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Fail {
    /// Admits it.
    Open,
    /// Refuses it.
    Closed,
    /// Refuses writes (a `tools/call` of a tool not annotated read-only), admits the rest.
    #[default]
    ClosedForWrites,
}

/// Reads a rate: `N/s`, `N/m`, `N/h` or `N/<duration>`; the count and the period.
fn parse_rate(text: &str) -> Result<(u64, Duration), String> {
    let wrong = || format!("`{text}` is not a rate such as `10/s`, `600/m`, `1000/h` or `5/250ms`");
    let (count, period) = text.split_once('/').ok_or_else(wrong)?;
    let count: u64 = count.trim().parse().map_err(|_| wrong())?;
    let period = match period.trim() {
        "s" => Duration::from_secs(1),
        "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        other if other.ends_with('h') => {
            let hours: u64 = other.trim_end_matches('h').parse().map_err(|_| wrong())?;
            Duration::from_secs(hours.saturating_mul(3600))
        }
        other => crate::config::duration::parse(other).map_err(|_| wrong())?,
    };
    if count == 0 || count > 1_000_000_000 {
        return Err(format!("`{text}`: the count must be 1 to 1000000000"));
    }
    if period < Duration::from_millis(1) || period > Duration::from_secs(366 * 86_400) {
        return Err(format!("`{text}`: the period must be 1ms to 366 days"));
    }
    Ok((count, period))
}

/// A glob pattern: `*` any run of characters, `?` any one.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < t.len() {
        if i < p.len() && (p[i] == '?' || p[i] == t[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

/// A rule, compiled.
#[derive(Debug)]
struct Rule {
    name: String,
    key: Vec<KeyPart>,
    /// `burst`.
    capacity: u64,
    /// Microseconds per token.
    interval_us: f64,
    methods: Vec<String>,
    tools: Vec<String>,
    upstreams: Vec<String>,
    backend: Backend,
    fail: Fail,
    /// `"name";q=…;w=…`.
    policy: String,
}

impl Rule {
    fn compile(config: &RuleConfig, redis: bool, key: &str) -> Result<Self, ConfigError> {
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            key: format!("{key}.{field}"),
            message,
        };
        let name = &config.name;
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            return Err(invalid(
                "name",
                format!("`{name}` must be 1 to 64 letters, digits, `-` or `_`"),
            ));
        }
        let (count, period) = parse_rate(&config.rate).map_err(|e| invalid("rate", e))?;
        let capacity = config.burst.unwrap_or(count);
        if capacity == 0 || capacity > 1_000_000_000 {
            return Err(invalid("burst", "must be 1 to 1000000000".into()));
        }
        for (i, part) in config.key.iter().enumerate() {
            if config.key[..i].contains(part) {
                return Err(invalid("key", format!("names `{}` twice", part.name())));
            }
        }
        for (field, patterns) in [
            ("methods", &config.methods),
            ("tools", &config.tools),
            ("upstreams", &config.upstreams),
        ] {
            if let Some(i) = patterns.iter().position(String::is_empty) {
                return Err(invalid(&format!("{field}[{i}]"), "must not be empty".into()));
            }
        }
        let backend = match config.backend {
            Some(backend) => backend,
            None if redis => Backend::Redis,
            None => Backend::Memory,
        };
        if backend == Backend::Redis && !redis {
            return Err(invalid("backend", "`redis` needs `state.redis`".into()));
        }
        let interval_us = period.as_micros() as f64 / count as f64;
        let window = (capacity as f64 * interval_us / 1e6).ceil().max(1.0) as u64;
        Ok(Self {
            name: name.clone(),
            key: config.key.clone(),
            capacity,
            interval_us,
            methods: config.methods.clone(),
            tools: config.tools.clone(),
            upstreams: config.upstreams.clone(),
            backend,
            fail: config.fail,
            policy: format!("\"{name}\";q={capacity};w={window}"),
        })
    }

    /// Whether the request needs its target (upstream, tool) resolved for this rule.
    fn needs_target(&self) -> bool {
        !self.tools.is_empty()
            || !self.upstreams.is_empty()
            || self.key.iter().any(|k| matches!(k, KeyPart::Upstream | KeyPart::Tool))
    }

    /// Whether the rule applies to a request of `method` to `target`.
    fn matches(&self, method: &str, target: Option<&Target>) -> bool {
        if !self.methods.is_empty() && !self.methods.iter().any(|p| glob(p, method)) {
            return false;
        }
        if !self.tools.is_empty() {
            let tool = target.and_then(|t| t.tool.as_deref());
            if method != "tools/call" || !tool.is_some_and(|tool| self.tools.iter().any(|p| glob(p, tool))) {
                return false;
            }
        }
        if !self.upstreams.is_empty() {
            let upstream = target.and_then(|t| t.upstream.as_deref());
            if !upstream.is_some_and(|u| self.upstreams.iter().any(|p| glob(p, u))) {
                return false;
            }
        }
        true
    }

    /// The bucket's key for a request.
    fn bucket(&self, principal: &str, method: &str, target: Option<&Target>) -> String {
        let mut key = String::with_capacity(64);
        key.push_str("portico:ratelimit:");
        key.push_str(&self.name);
        for part in &self.key {
            let value = match part {
                KeyPart::Principal => principal,
                KeyPart::Method if method.len() <= 128 => method,
                KeyPart::Method => "",
                KeyPart::Upstream => target.and_then(|t| t.upstream.as_deref()).unwrap_or_default(),
                KeyPart::Tool => match target.and_then(|t| Some((t.upstream.as_deref()?, t.tool.as_deref()?))) {
                    Some((upstream, tool)) => {
                        push_part(&mut key, &[upstream, "/", tool]);
                        continue;
                    }
                    None => "",
                },
            };
            push_part(&mut key, &[value]);
        }
        key
    }
}

/// Appends one part of a bucket's key, `:<length>:<text>` (the length makes every key read one
/// way only), `text` being `pieces` joined. Written without `fmt`: it runs for every request.
fn push_part(key: &mut String, pieces: &[&str]) {
    let length: usize = pieces.iter().map(|piece| piece.len()).sum();
    key.push(':');
    key.push_str(itoa::Buffer::new().format(length));
    key.push(':');
    for piece in pieces {
        key.push_str(piece);
    }
}

impl KeyPart {
    fn name(self) -> &'static str {
        match self {
            Self::Principal => "principal",
            Self::Upstream => "upstream",
            Self::Tool => "tool",
            Self::Method => "method",
        }
    }
}

/// Checks the `rate_limits` of a configuration; an error names the key.
pub fn check(config: &Config) -> Result<(), ConfigError> {
    compile(config).map(|_| ())
}

fn compile(config: &Config) -> Result<Vec<Rule>, ConfigError> {
    let redis = config.state.redis.is_some();
    let mut rules: Vec<Rule> = Vec::with_capacity(config.rate_limits.len());
    for (i, rule) in config.rate_limits.iter().enumerate() {
        let key = format!("rate_limits[{i}]");
        let rule = Rule::compile(rule, redis, &key)?;
        if rules.iter().any(|r| r.name == rule.name) {
            return Err(ConfigError::Invalid {
                key: format!("{key}.name"),
                message: format!("`{}` names two rules", rule.name),
            });
        }
        rules.push(rule);
    }
    Ok(rules)
}

/// What taking a token from a bucket found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Taken {
    /// Whether a token was taken.
    pub admitted: bool,
    /// Whole tokens left.
    pub remaining: u64,
    /// Microseconds until a token is there (0 when admitted).
    pub wait_us: u64,
    /// Microseconds until the bucket is full.
    pub full_us: u64,
}

/// A bucket's state: its tokens at a moment (microseconds on the store's clock).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Tokens, fractions included.
    pub tokens: f64,
    /// When `tokens` was right.
    pub at: u64,
}

/// Takes a token from `bucket` (none: a full one) at `now`: the bucket afterwards and what was
/// found. The Lua [`SCRIPT`] does the same in Redis.
pub fn take(bucket: Option<Bucket>, now: u64, capacity: u64, interval_us: f64) -> (Bucket, Taken) {
    let capacity = capacity as f64;
    let Bucket { mut tokens, mut at } = bucket.unwrap_or(Bucket {
        tokens: capacity,
        at: now,
    });
    if now > at {
        tokens = (tokens + (now - at) as f64 / interval_us).min(capacity);
        at = now;
    }
    let admitted = tokens >= 1.0;
    let mut wait_us = 0;
    if admitted {
        tokens -= 1.0;
    } else {
        wait_us = ((1.0 - tokens) * interval_us).ceil() as u64;
    }
    let taken = Taken {
        admitted,
        remaining: tokens.floor() as u64,
        wait_us,
        full_us: ((capacity - tokens) * interval_us).ceil() as u64,
    };
    (Bucket { tokens, at }, taken)
}

/// The Redis side of [`take`]: `KEYS[1]` the bucket, `ARGV[1]` the capacity, `ARGV[2]` the
/// microseconds per token; returns `{admitted, remaining, wait_us, full_us}`. The bucket is a
/// hash (`tokens`, `at`) that expires when it would be full.
pub const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local capacity = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = capacity
  at = now
end
if now > at then
  tokens = math.min(capacity, tokens + (now - at) / interval)
  at = now
end
local admitted = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  admitted = 1
else
  wait = math.ceil((1 - tokens) * interval)
end
local full = math.ceil((capacity - tokens) * interval)
if full > 0 then
  redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%d', at))
  redis.call('PEXPIRE', KEYS[1], math.ceil(full / 1000) + 1)
else
  redis.call('DEL', KEYS[1])
end
return {admitted, math.floor(tokens), wait, full}
";

/// Buckets in this process: 16 shards, each a map behind its own lock.
struct Memory {
    shards: Vec<Mutex<Shard>>,
    hasher: std::collections::hash_map::RandomState,
    epoch: Instant,
}

#[derive(Default)]
struct Shard {
    /// Buckets, with the moment each is full again (when it can go).
    buckets: HashMap<String, (Bucket, u64)>,
    next_sweep: u64,
}

const SHARDS: usize = 16;
/// How often a shard drops its full buckets, in microseconds.
const SWEEP_EVERY_US: u64 = 10_000_000;

impl Memory {
    fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
            epoch: Instant::now(),
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    fn take(&self, key: String, capacity: u64, interval_us: f64) -> Taken {
        let now = self.now();
        let shard = &self.shards[(self.hasher.hash_one(&key) as usize) % SHARDS];
        let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((bucket, full_at)) = shard.buckets.get_mut(&key) {
            let (next, taken) = take(Some(*bucket), now, capacity, interval_us);
            *bucket = next;
            *full_at = now + taken.full_us;
            return taken;
        }
        let (bucket, taken) = take(None, now, capacity, interval_us);
        if now >= shard.next_sweep || shard.buckets.len() >= MAX_BUCKETS / SHARDS {
            shard.sweep(now);
        }
        shard.buckets.insert(key, (bucket, now + taken.full_us));
        taken
    }

    /// Buckets held now (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).buckets.len())
            .sum()
    }
}

impl Shard {
    /// Drops the buckets that are full again; when that leaves too many, the fullest half
    /// (the ones closest to full, so the least tokens are given away).
    fn sweep(&mut self, now: u64) {
        self.next_sweep = now + SWEEP_EVERY_US;
        self.buckets.retain(|_, (_, full_at)| *full_at > now);
        let cap = MAX_BUCKETS / SHARDS;
        if self.buckets.len() >= cap {
            let mut moments: Vec<u64> = self.buckets.values().map(|(_, full_at)| *full_at).collect();
            let middle = moments.len() / 2;
            let (_, median, _) = moments.select_nth_unstable(middle);
            let median = *median;
            self.buckets.retain(|_, (_, full_at)| *full_at > median);
        }
    }
}

/// Buckets in Redis.
struct RedisBuckets {
    client: redis::Client,
    /// The bucket script.
    script: redis::Script,
}

impl RedisBuckets {
    async fn take(&self, key: &str, capacity: u64, interval_us: f64) -> Result<Taken, redis::Error> {
        let capacity = capacity.to_string();
        let interval = format!("{interval_us}");
        let reply = self
            .script
            .run(
                &self.client,
                &[key.as_bytes()],
                &[capacity.as_bytes(), interval.as_bytes()],
            )
            .await?;
        let numbers: Option<Vec<i64>> = match &reply {
            redis::Reply::Array(Some(items)) if items.len() == 4 => items
                .iter()
                .map(|item| match item {
                    redis::Reply::Integer(n) => Some(*n),
                    _ => None,
                })
                .collect(),
            _ => None,
        };
        let [admitted, remaining, wait_us, full_us] = numbers
            .as_deref()
            .and_then(|n| <[i64; 4]>::try_from(n).ok())
            .ok_or_else(|| redis::Error::Protocol(format!("the rate limit script answered {reply:?}")))?;
        Ok(Taken {
            admitted: admitted == 1,
            remaining: remaining.max(0) as u64,
            wait_us: wait_us.max(0) as u64,
            full_us: full_us.max(0) as u64,
        })
    }
}

/// The rules in force and their buckets; one per gateway.
pub(crate) struct Limiter {
    rules: RwLock<Arc<Vec<Rule>>>,
    memory: Memory,
    redis: Option<RedisBuckets>,
    metrics: Arc<Metrics>,
}

/// What a request is for, as far as rules care.
#[derive(Debug, Default)]
struct Target {
    upstream: Option<String>,
    /// The tool's name at its upstream (`tools/call`).
    tool: Option<String>,
    /// The tool is annotated `readOnlyHint: true`.
    read_only: bool,
}

/// A rule that admitted a request, for its `RateLimit` headers.
struct Admitted {
    rule: usize,
    taken: Taken,
}

/// Why a request is refused.
struct Refusal {
    status: StatusCode,
    rule: String,
    policy: String,
    wait: Duration,
    message: String,
    reason: &'static str,
}

impl Limiter {
    /// A limiter keeping Redis buckets at `redis` (when given), counting in `metrics`.
    pub(crate) fn new(redis: Option<redis::Address>, metrics: Arc<Metrics>) -> Self {
        Self {
            rules: RwLock::default(),
            memory: Memory::new(),
            redis: redis.map(|address| RedisBuckets {
                client: redis::Client::new(address, REDIS_TIMEOUT),
                script: redis::Script::new(SCRIPT),
            }),
            metrics,
        }
    }

    /// Takes the rules of `config` (checked already). Memory buckets of rules that stay keep
    /// their tokens.
    pub(crate) fn configure(&self, config: &Config) {
        let rules = match compile(config) {
            Ok(rules) => rules,
            Err(e) => {
                tracing::error!(error = %e, "rate limits not applied");
                return;
            }
        };
        if self.redis.is_none() && rules.iter().any(|r| r.backend == Backend::Redis) {
            tracing::warn!(
                "`state.redis` is read at start: Redis rate limits act as if Redis were away until a restart"
            );
        }
        *self.rules.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(rules);
    }

    fn rules(&self) -> Arc<Vec<Rule>> {
        self.rules.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Takes a token for one request from each rule it matches; the rules that admitted it,
    /// or why it is refused.
    async fn admit(
        &self,
        rules: &[Rule],
        (view, scope): (&View, &Scope),
        routes: &Routes,
        principal: &str,
        message: &Message<'_>,
        admitted: &mut Vec<Admitted>,
    ) -> Result<(), Refusal> {
        let method = message.method.as_deref().unwrap_or_default();
        let mut target: Option<Target> = None;
        for (index, rule) in rules.iter().enumerate() {
            if rule.needs_target() && target.is_none() {
                target = Some(resolve((view, scope), routes, method, message));
            }
            if !rule.matches(method, target.as_ref()) {
                continue;
            }
            let key = rule.bucket(principal, method, target.as_ref());
            let taken = match rule.backend {
                Backend::Memory => Ok(self.memory.take(key, rule.capacity, rule.interval_us)),
                Backend::Redis => match &self.redis {
                    Some(redis) => redis.take(&key, rule.capacity, rule.interval_us).await,
                    None => Err(redis::Error::Unavailable {
                        address: "(none)".into(),
                        reason: "`state.redis` was not set when the gateway started".into(),
                    }),
                },
            };
            match taken {
                Ok(taken) if taken.admitted => admitted.push(Admitted { rule: index, taken }),
                Ok(taken) => {
                    self.metrics.record_rate_limited(&rule.name, "limited");
                    let wait = Duration::from_micros(taken.wait_us);
                    return Err(Refusal {
                        status: StatusCode::TOO_MANY_REQUESTS,
                        rule: rule.name.clone(),
                        policy: rule.policy.clone(),
                        wait,
                        message: format!("rate limit `{}` exceeded: try again in {} ms", rule.name, millis(wait)),
                        reason: "limited",
                    });
                }
                Err(error) => {
                    self.metrics.record_rate_limit_store_error(&rule.name);
                    let target = target.get_or_insert_with(|| resolve((view, scope), routes, method, message));
                    let write = method == "tools/call" && !target.read_only;
                    let refuse = match rule.fail {
                        Fail::Open => false,
                        Fail::Closed => true,
                        Fail::ClosedForWrites => write,
                    };
                    // The Redis client warns once per failure; this is per request.
                    tracing::debug!(rule = %rule.name, error = %error, refused = refuse, "a rate limit could not be checked");
                    if refuse {
                        self.metrics.record_rate_limited(&rule.name, "store_unavailable");
                        let retry = self.redis.as_ref().and_then(|r| r.client.retry_in());
                        let wait = retry.unwrap_or(Duration::from_secs(1)).max(Duration::from_millis(100));
                        let what = if write { "a write" } else { "a request" };
                        let fail = match rule.fail {
                            Fail::Closed => "closed",
                            _ => "closed-for-writes",
                        };
                        return Err(Refusal {
                            status: StatusCode::SERVICE_UNAVAILABLE,
                            rule: rule.name.clone(),
                            policy: rule.policy.clone(),
                            wait,
                            message: format!(
                                "rate limit `{}` cannot be checked ({error}); {what} is refused while it cannot (`fail: {fail}`)",
                                rule.name
                            ),
                            reason: "store unavailable",
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

/// Milliseconds, rounded up.
fn millis(duration: Duration) -> u64 {
    duration.as_micros().div_ceil(1000) as u64
}

/// Seconds, rounded up.
fn seconds(duration: Duration) -> u64 {
    duration.as_micros().div_ceil(1_000_000) as u64
}

/// What a request is for: the upstream and tool it goes to, if one does.
fn resolve((view, scope): (&View, &Scope), routes: &Routes, method: &str, message: &Message<'_>) -> Target {
    let name = message.params.as_ref().and_then(|p| p.name.as_deref());
    let uri = message.params.as_ref().and_then(|p| p.uri.as_deref());
    let scoped = match scope {
        Scope::Upstream(name) => Some(name.clone()),
        _ => None,
    };
    match (method, name, uri) {
        ("tools/call", Some(name), _) => match view.tool(routes, name) {
            Some((upstream, tool)) => {
                let read_only = upstream
                    .snapshot()
                    .tools
                    .iter()
                    .find(|t| t.name == tool)
                    .and_then(|t| t.annotations.as_ref())
                    .and_then(|a| a.read_only_hint)
                    == Some(true);
                Target {
                    upstream: Some(upstream.name().to_string()),
                    tool: Some(tool),
                    read_only,
                }
            }
            None => Target {
                upstream: scoped,
                ..Target::default()
            },
        },
        ("prompts/get", Some(name), _) => Target {
            upstream: view.prompt(routes, name).map(|(u, _)| u.name().to_string()).or(scoped),
            ..Target::default()
        },
        ("resources/read" | "resources/subscribe" | "resources/unsubscribe", _, Some(uri)) if scoped.is_none() => {
            let owner = match scope {
                Scope::All => routes
                    .upstreams
                    .iter()
                    .find(|u| u.snapshot().resources.iter().any(|r| r.uri == uri))
                    .map(|u| u.name().to_string()),
                _ => None,
            };
            Target {
                upstream: owner,
                ..Target::default()
            }
        }
        _ => Target {
            upstream: scoped,
            ..Target::default()
        },
    }
}

/// What the limiter reads of a JSON-RPC message.
#[derive(Deserialize, Default)]
struct Message<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<Params<'a>>,
    /// The id of a message read leniently ([`Message::from_value`]).
    #[serde(skip)]
    owned_id: Option<Box<RawValue>>,
}

#[derive(Deserialize, Default)]
struct Params<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    uri: Option<Cow<'a, str>>,
}

impl Message<'_> {
    fn id(&self) -> Option<&RawValue> {
        self.id.or(self.owned_id.as_deref())
    }

    /// A request (not a notification or a response): only requests are limited. A `null` id
    /// is none (the server refuses such a request).
    fn is_request(&self) -> bool {
        self.id().is_some() && self.method.is_some()
    }

    /// A message read leniently, from a parsed value (repeated keys, `params` of another
    /// shape).
    fn from_value(value: &Value) -> Message<'static> {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(|s| Cow::Owned(s.to_string()));
        let params = value.get("params");
        Message {
            id: None,
            method: text(value.get("method")),
            params: Some(Params {
                name: text(params.and_then(|p| p.get("name"))),
                uri: text(params.and_then(|p| p.get("uri"))),
            }),
            owned_id: value
                .get("id")
                .filter(|id| !id.is_null())
                .and_then(|id| serde_json::value::to_raw_value(id).ok()),
        }
    }
}

/// The JSON-RPC messages of a body: one, or a batch. `None` when it is not JSON (the
/// transport answers that).
fn messages(body: &[u8]) -> Option<Vec<Message<'_>>> {
    let batch = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let strict = if batch {
        serde_json::from_slice::<Vec<Message<'_>>>(body).ok()
    } else {
        serde_json::from_slice::<Message<'_>>(body).ok().map(|m| vec![m])
    };
    if strict.is_some() {
        return strict;
    }
    // What the strict reading refuses, the server may still take (a repeated key, `params`
    // of another shape): read as a value, so nothing passes unchecked.
    match serde_json::from_slice::<Value>(body).ok()? {
        Value::Array(items) => Some(items.iter().map(Message::from_value).collect()),
        value => Some(vec![Message::from_value(&value)]),
    }
}

/// A 2026-07-28 request to the Streamable HTTP endpoint, as its headers name it: `Mcp-Method`,
/// and `Mcp-Name` for the methods that mirror a name ([`portico_core::mirror::name_member`]).
/// The transport checks those headers against the body before anything serves the request (a
/// mismatch is refused, `400` with `-32020`, and reaches no upstream), so the limiter takes them
/// as they are and does not parse the body. Anything else is read from the body: a request
/// in a session or of the legacy transport (whose headers nothing checks), a batch, one
/// without those headers.
fn mirrored(request: &axum::http::request::Parts) -> Option<Message<'_>> {
    let path = request.uri.path();
    let headers = &request.headers;
    // `/mcp` and `/mcp/<name>`; `/mcp/<name>/sse` and `/messages` are the legacy transport's.
    let streamable = path == "/mcp" || path.strip_prefix("/mcp/").is_some_and(|name| !name.contains('/'));
    if !streamable || headers.contains_key(MCP_SESSION_ID) {
        return None;
    }
    let version = headers.get(MCP_PROTOCOL_VERSION)?.to_str().ok()?;
    if portico_core::server::STATEFUL_REVISIONS.contains(&version) {
        return None;
    }
    let method = headers.get(MCP_METHOD)?.to_str().ok()?;
    let mut params = Params::default();
    if let Some(member) = portico_core::mirror::name_member(method) {
        let name = portico_core::mirror::decode_value(headers.get(MCP_NAME)?.to_str().ok()?).ok()?;
        match member {
            "name" => params.name = Some(name),
            "uri" => params.uri = Some(name),
            // The limiter keys no bucket by task.
            _ => {}
        }
    }
    Some(Message {
        method: Some(method.into()),
        params: Some(params),
        ..Message::default()
    })
}

/// The caller, as the `principal` key part names it.
fn principal(request: &axum::http::request::Parts) -> String {
    caller(
        request.extensions.get::<crate::auth::Principal>(),
        request.extensions.get::<ConnectInfo<SocketAddr>>(),
    )
}

/// The caller: the token's subject, else the client's address.
fn caller(principal: Option<&crate::auth::Principal>, address: Option<&ConnectInfo<SocketAddr>>) -> String {
    match (principal, address) {
        (Some(principal), _) => ["sub:", principal.subject.as_str()].concat(),
        (None, Some(ConnectInfo(address))) => format!("ip:{}", address.ip()),
        (None, None) => "anonymous".to_string(),
    }
}

/// The endpoint a path belongs to.
fn scope(routes: &Routes, path: &str) -> Option<Scope> {
    if matches!(path, "/mcp" | "/sse" | "/messages") {
        return Some(Scope::All);
    }
    let name = path.strip_prefix("/mcp/")?.split('/').next()?;
    if routes.config.upstream(name).is_some() {
        Some(Scope::Upstream(name.to_string()))
    } else if routes.config.virtual_servers.iter().any(|v| v.name == name) {
        Some(Scope::Virtual(name.to_string()))
    } else {
        None
    }
}

static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// Whether [`enforce`] has anything to do for `request`: rate limits are configured and it is
/// a POST. When not, the endpoint serves it as it is.
pub(crate) fn applies(gateway: &Gateway, request: &Request) -> bool {
    request.method() == axum::http::Method::POST && !gateway.inner.limiter.rules().is_empty()
}

/// The rate limits in front of the MCP endpoints (after authentication), `next` serving what
/// they admit: see the module's docs. Called by `Gateway::serve` rather than as a middleware
/// layer, which cost every request a boxed service and a boxed future.
pub(crate) async fn enforce<F>(gateway: &Gateway, request: Request, next: impl FnOnce(Request) -> F) -> Response
where
    F: Future<Output = Response>,
{
    let limiter = &gateway.inner.limiter;
    let rules = limiter.rules();
    if rules.is_empty() || request.method() != axum::http::Method::POST {
        return next(request).await;
    }
    let routes = gateway.routes();
    let Some(scope) = scope(&routes, request.uri().path()) else {
        return next(request).await;
    };
    let max = routes.config.limits.max_body_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        // The transport refuses it, unread.
        return next(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match http_body_util::Limited::new(body, max).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let (status, message) = if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the body is larger than the limit of {max} bytes"),
                )
            } else {
                (StatusCode::BAD_REQUEST, format!("reading the body failed: {e}"))
            };
            let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": message}});
            return crate::http::json_response(status, &body);
        }
    };
    let mut admitted = Vec::new();
    if let Some(message) = mirrored(&parts) {
        let principal = principal(&parts);
        let view = View::new(gateway.inner.routes.clone(), scope.clone());
        if let Err(refusal) = limiter
            .admit(&rules, (&view, &scope), &routes, &principal, &message, &mut admitted)
            .await
        {
            // Its id, for the refusal: the body is read for it now.
            let read = messages(&bytes);
            let id = read.as_deref().and_then(|m| m.first()).and_then(Message::id);
            return refused(&refusal, id);
        }
    } else if let Some(messages) = messages(&bytes) {
        let principal = principal(&parts);
        let view = View::new(gateway.inner.routes.clone(), scope.clone());
        let batch = messages.len() != 1;
        for message in messages.iter().filter(|m| m.is_request()) {
            if let Err(refusal) = limiter
                .admit(&rules, (&view, &scope), &routes, &principal, message, &mut admitted)
                .await
            {
                let id = if batch { None } else { message.id() };
                return refused(&refusal, id);
            }
        }
    }
    let mut response = next(Request::from_parts(parts, Body::from(bytes))).await;
    if !admitted.is_empty() {
        add_headers(response.headers_mut(), &rules, &admitted);
    }
    response
}

/// `RateLimit-Policy` and `RateLimit` of the rules that admitted a request (the emptiest bucket
/// of each rule, for a batch).
fn add_headers(headers: &mut HeaderMap, rules: &[Rule], admitted: &[Admitted]) {
    let mut policy = String::new();
    let mut state = String::new();
    for (i, a) in admitted.iter().enumerate() {
        if admitted[..i].iter().any(|b| b.rule == a.rule) {
            continue;
        }
        let least = admitted
            .iter()
            .filter(|b| b.rule == a.rule)
            .min_by_key(|b| b.taken.remaining)
            .map_or(a.taken, |b| b.taken);
        let rule = &rules[a.rule];
        if !policy.is_empty() {
            policy.push_str(", ");
            state.push_str(", ");
        }
        policy.push_str(&rule.policy);
        // `"<name>";r=<remaining>;t=<seconds>`, written without `fmt` (every admitted request).
        state.push('"');
        state.push_str(&rule.name);
        state.push_str("\";r=");
        state.push_str(itoa::Buffer::new().format(least.remaining));
        state.push_str(";t=");
        state.push_str(itoa::Buffer::new().format(seconds(Duration::from_micros(least.full_us))));
    }
    if let (Ok(policy), Ok(state)) = (HeaderValue::from_str(&policy), HeaderValue::from_str(&state)) {
        headers.insert(RATELIMIT_POLICY.clone(), policy);
        headers.insert(RATELIMIT.clone(), state);
    }
}

/// The answer to a refused request.
fn refused(refusal: &Refusal, id: Option<&RawValue>) -> Response {
    let body = refusal_body(refusal, id);
    let mut response = (
        refusal.status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    let retry_s = seconds(refusal.wait).max(1);
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_s));
    if refusal.reason == "limited" {
        let state = format!("\"{}\";r=0;t={retry_s}", refusal.rule);
        if let (Ok(policy), Ok(state)) = (HeaderValue::from_str(&refusal.policy), HeaderValue::from_str(&state)) {
            headers.insert(RATELIMIT_POLICY.clone(), policy);
            headers.insert(RATELIMIT.clone(), state);
        }
    }
    response
}

/// The JSON-RPC error response of a refusal, for the request `id` (`None`: a batch's).
fn refusal_body(refusal: &Refusal, id: Option<&RawValue>) -> Value {
    let retry_ms = millis(refusal.wait).max(1);
    let mut data = json!({"rule": refusal.rule, "retryAfterMs": retry_ms});
    if refusal.reason != "limited" {
        data["reason"] = refusal.reason.into();
    }
    let id: Value = id
        .and_then(|raw| serde_json::from_str(raw.get()).ok())
        .unwrap_or(Value::Null);
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": RATE_LIMITED, "message": refusal.message, "data": data},
    })
}

/// The limits of WebSocket messages on the endpoint serving `scope`: each text message is
/// checked as a POST body is ([`enforce`]), the caller known from what the upgrade request
/// carried (its principal, or its address); a refused one is answered with the same JSON-RPC
/// error (`-32053`, `data.retryAfterMs`), on the socket.
pub(crate) fn ws_admit(gateway: &Gateway, scope: Scope) -> portico_transport::http::ws::WsAdmit {
    // Weak: the endpoint holding this belongs to the gateway.
    let gateway = Arc::downgrade(&gateway.inner);
    portico_transport::http::ws::WsAdmit::new(move |text: String, extensions: portico_core::Extensions| {
        let (gateway, scope) = (gateway.upgrade().map(|inner| Gateway { inner }), scope.clone());
        async move {
            let gateway = gateway?;
            let limiter = &gateway.inner.limiter;
            let rules = limiter.rules();
            if rules.is_empty() {
                return None;
            }
            // Not JSON: the server answers that.
            let messages = messages(text.as_bytes())?;
            let routes = gateway.routes();
            let principal = caller(
                extensions.get::<crate::auth::Principal>(),
                extensions.get::<ConnectInfo<SocketAddr>>(),
            );
            let view = View::new(gateway.inner.routes.clone(), scope.clone());
            let batch = messages.len() != 1;
            let mut admitted = Vec::new();
            for message in messages.iter().filter(|m| m.is_request()) {
                if let Err(refusal) = limiter
                    .admit(&rules, (&view, &scope), &routes, &principal, message, &mut admitted)
                    .await
                {
                    let id = if batch { None } else { message.id() };
                    return Some(refusal_body(&refusal, id).to_string());
                }
            }
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(yaml: &str) -> String {
        Config::parse(yaml, false).unwrap_err().to_string()
    }

    #[test]
    fn rates_read() {
        assert_eq!(parse_rate("10/s").unwrap(), (10, Duration::from_secs(1)));
        assert_eq!(parse_rate("600/m").unwrap(), (600, Duration::from_secs(60)));
        assert_eq!(parse_rate("1000/h").unwrap(), (1000, Duration::from_secs(3600)));
        assert_eq!(parse_rate("5/250ms").unwrap(), (5, Duration::from_millis(250)));
        assert_eq!(parse_rate(" 1 / 2s ").unwrap(), (1, Duration::from_secs(2)));
        assert_eq!(parse_rate("2/3h").unwrap(), (2, Duration::from_secs(3 * 3600)));
        for bad in ["10", "10/", "/s", "x/s", "10/d", "0/s", "-1/s", "1/0ms", "10/s/s"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn globs_match() {
        assert!(glob("*", ""));
        assert!(glob("tools/*", "tools/call"));
        assert!(!glob("tools/*", "prompts/get"));
        assert!(glob("get_?", "get_a"));
        assert!(!glob("get_?", "get_ab"));
        assert!(glob("*search*", "web_search_v2"));
        assert!(glob("a*b*c", "aXbYbZc"));
        assert!(!glob("a*b*c", "aXbYbZ"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exactly"));
    }

    #[test]
    fn a_bucket_admits_its_burst_then_refills_over_time() {
        // 2 tokens a second (500 000 µs each), a burst of 3.
        let (capacity, interval) = (3, 500_000.0);
        let mut bucket = None;
        for left in [2, 1, 0] {
            let (next, taken) = take(bucket, 0, capacity, interval);
            assert!(taken.admitted);
            assert_eq!(taken.remaining, left);
            assert_eq!(taken.wait_us, 0);
            assert_eq!(taken.full_us, (3 - left) * 500_000);
            bucket = Some(next);
        }
        let (next, taken) = take(bucket, 0, capacity, interval);
        assert!(!taken.admitted);
        assert_eq!((taken.remaining, taken.wait_us), (0, 500_000));
        // 200 ms later: 0.4 of a token; 300 ms more are needed.
        let (next, taken) = take(Some(next), 200_000, capacity, interval);
        assert!(!taken.admitted);
        assert_eq!(taken.wait_us, 300_000);
        // At 500 ms: one token, taken.
        let (next, taken) = take(Some(next), 500_000, capacity, interval);
        assert!(taken.admitted, "{taken:?}");
        // Long idle: full again, never more than the burst.
        let (_, taken) = take(Some(next), 60_000_000, capacity, interval);
        assert!(taken.admitted);
        assert_eq!(taken.remaining, 2);
        // A clock going back refills nothing.
        let (next, _) = take(None, 1_000_000, 1, interval);
        let (_, taken) = take(Some(next), 0, 1, interval);
        assert!(!taken.admitted);
    }

    #[test]
    fn memory_buckets_are_per_key_and_bounded() {
        let memory = Memory::new();
        assert!(memory.take("a".into(), 1, 1e12).admitted);
        assert!(!memory.take("a".into(), 1, 1e12).admitted);
        assert!(memory.take("b".into(), 1, 1e12).admitted);
        // Far more keys than the cap: memory stays bounded.
        for i in 0..(MAX_BUCKETS * 2) {
            memory.take(format!("k{i}"), 1, 1e12);
        }
        assert!(memory.len() <= MAX_BUCKETS, "{}", memory.len());
        // Buckets full again (a fast refill) are swept.
        let memory = Memory::new();
        for i in 0..100 {
            memory.take(format!("k{i}"), 10, 1.0);
        }
        std::thread::sleep(Duration::from_millis(5));
        {
            let mut shard = memory.shards[0].lock().unwrap();
            let now = memory.now();
            shard.sweep(now);
            assert!(shard.buckets.is_empty());
        }
    }

    #[test]
    fn rules_read_and_bad_ones_are_refused_naming_the_key() {
        let config = Config::parse(
            "rate_limits:\n  - {name: calls, key: [principal, tool], rate: 10/s, burst: 20, methods: [tools/call], tools: ['search*'], upstreams: [web]}\n  - {name: all, rate: 100/m}\n",
            false,
        )
        .unwrap();
        let rules = compile(&config).unwrap();
        assert_eq!(rules[0].capacity, 20);
        assert_eq!(rules[0].interval_us, 100_000.0);
        assert_eq!(rules[0].policy, "\"calls\";q=20;w=2");
        assert_eq!(rules[0].backend, Backend::Memory);
        assert_eq!(rules[0].fail, Fail::ClosedForWrites);
        assert_eq!(rules[1].capacity, 100);
        assert_eq!(rules[1].policy, "\"all\";q=100;w=60");
        // With Redis, rules default to it.
        let config = Config::parse(
            "state: {redis: 'redis://127.0.0.1:6379'}\nrate_limits:\n  - {name: a, rate: 1/s}\n  - {name: b, rate: 1/s, backend: memory, fail: open}\n",
            false,
        )
        .unwrap();
        let rules = compile(&config).unwrap();
        assert_eq!((rules[0].backend, rules[1].backend), (Backend::Redis, Backend::Memory));
        assert_eq!(rules[1].fail, Fail::Open);

        assert_eq!(
            error("rate_limits:\n  - {name: a, rate: 10/d}\n"),
            "rate_limits[0].rate: `10/d` is not a rate such as `10/s`, `600/m`, `1000/h` or `5/250ms`"
        );
        assert!(
            error("rate_limits:\n  - {name: a, rate: 1/s}\n  - {name: b, rate: 0/s}\n")
                .starts_with("rate_limits[1].rate:")
        );
        assert!(error("rate_limits:\n  - {name: a, rate: 1/s, burst: 0}\n").starts_with("rate_limits[0].burst:"));
        assert!(error("rate_limits:\n  - {name: 'a b', rate: 1/s}\n").starts_with("rate_limits[0].name:"));
        assert!(
            error("rate_limits:\n  - {name: a, rate: 1/s}\n  - {name: a, rate: 2/s}\n")
                .starts_with("rate_limits[1].name: `a` names two rules")
        );
        assert_eq!(
            error("rate_limits:\n  - {name: a, rate: 1/s, backend: redis}\n"),
            "rate_limits[0].backend: `redis` needs `state.redis`"
        );
        assert!(
            error("rate_limits:\n  - {name: a, rate: 1/s, key: [tool, tool]}\n").starts_with("rate_limits[0].key:")
        );
        assert!(error("rate_limits:\n  - {name: a, rate: 1/s, tools: ['']}\n").starts_with("rate_limits[0].tools[0]:"));
        // Unknown keys and values are the decoder's errors, which name the path.
        let unknown = error("rate_limits:\n  - {name: a, rate: 1/s, key: [user]}\n");
        assert!(
            unknown.contains("rate_limits[0].key[0]") && unknown.contains("unknown variant `user`"),
            "{unknown}"
        );
        let unknown = error("rate_limits:\n  - {name: a, rate: 1/s, fail: maybe}\n");
        assert!(
            unknown.contains("rate_limits[0].fail") && unknown.contains("unknown variant"),
            "{unknown}"
        );
        let unknown = error("rate_limits:\n  - {name: a, rate: 1/s, per: 3}\n");
        assert!(
            unknown.contains("rate_limits[0]") && unknown.contains("unknown field `per`"),
            "{unknown}"
        );
        let missing = error("rate_limits:\n  - {name: a}\n");
        assert!(missing.contains("missing field `rate`"), "{missing}");
    }

    #[test]
    fn keys_separate_their_parts() {
        let config = Config::parse(
            "rate_limits:\n  - {name: r, key: [principal, tool, method], rate: 1/s}\n",
            false,
        )
        .unwrap();
        let rule = &compile(&config).unwrap()[0];
        let target = Target {
            upstream: Some("e".into()),
            tool: Some("echo".into()),
            read_only: false,
        };
        assert_eq!(
            rule.bucket("sub:ada", "tools/call", Some(&target)),
            "portico:ratelimit:r:7:sub:ada:6:e/echo:10:tools/call"
        );
        assert_eq!(
            rule.bucket("sub:a:1", "x", None),
            "portico:ratelimit:r:7:sub:a:1:0::1:x"
        );
        assert_ne!(rule.bucket("sub:a:1", "x", None), rule.bucket("sub:a", "1:x", None));
    }

    #[test]
    fn bodies_are_read_for_what_rules_need() {
        let one = messages(
            br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"e__echo","arguments":{"x":[1,2]}}}"#,
        )
        .unwrap();
        assert_eq!(one.len(), 1);
        assert!(one[0].is_request());
        assert_eq!(one[0].id().map(RawValue::get), Some("7"));
        assert_eq!(one[0].params.as_ref().and_then(|p| p.name.as_deref()), Some("e__echo"));
        let batch = messages(
            br#" [{"jsonrpc":"2.0","id":"a","method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"}]"#,
        )
        .unwrap();
        assert_eq!(batch.len(), 2);
        assert!(batch[0].is_request() && !batch[1].is_request());
        // A repeated key: the last one counts, as a lenient reader would take it.
        let repeated =
            messages(br#"{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call","params":{"name":"x"}}"#)
                .unwrap();
        assert_eq!(repeated[0].method.as_deref(), Some("tools/call"));
        assert_eq!(repeated[0].id().map(RawValue::get), Some("1"));
        // Escaped strings are read (owned).
        let escaped = messages(br#"{"id":1,"method":"tools\/call","params":{"name":"a\u0062"}}"#).unwrap();
        assert_eq!(escaped[0].method.as_deref(), Some("tools/call"));
        assert_eq!(escaped[0].params.as_ref().and_then(|p| p.name.as_deref()), Some("ab"));
        assert!(messages(b"not json").is_none());
    }

    /// The machine's Redis, as the integration tests find it.
    fn test_redis() -> redis::Client {
        let url = std::env::var("PORTICO_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        redis::Client::new(
            redis::Address::parse(&url).expect("a redis:// URL"),
            Duration::from_secs(2),
        )
    }

    #[tokio::test]
    async fn the_script_keeps_buckets_in_redis() {
        let buckets = RedisBuckets {
            client: test_redis(),
            script: redis::Script::new(SCRIPT),
        };
        if let Err(e) = buckets.client.command(&[b"PING"]).await {
            panic!("Redis is not reachable ({e}): start it (`bash .ci/run` does), or set PORTICO_TEST_REDIS");
        }
        let key = format!("portico:test:ratelimit:{}:{}", std::process::id(), line!());
        // 10 tokens a second (100 ms each), a burst of 3.
        for left in [2, 1, 0] {
            let taken = buckets.take(&key, 3, 100_000.0).await.unwrap();
            assert!(taken.admitted, "{taken:?}");
            assert_eq!(taken.remaining, left);
        }
        let refused = buckets.take(&key, 3, 100_000.0).await.unwrap();
        assert!(!refused.admitted);
        assert!(refused.wait_us > 0 && refused.wait_us <= 100_000, "{refused:?}");
        // The key expires when the bucket would be full again (300 ms, and a millisecond).
        let ttl = buckets.client.command(&[b"PTTL", key.as_bytes()]).await.unwrap();
        assert!(
            matches!(ttl, redis::Reply::Integer(ms) if ms > 0 && ms <= 301),
            "{ttl:?}"
        );
        // After the wait, a token is there again.
        tokio::time::sleep(Duration::from_micros(refused.wait_us) + Duration::from_millis(5)).await;
        assert!(buckets.take(&key, 3, 100_000.0).await.unwrap().admitted);
        // Redis does not know the script (as after a restart): EVAL stands in.
        buckets
            .script
            .pretend_loaded("0000000000000000000000000000000000000000");
        let other = format!("{key}:other");
        assert!(buckets.take(&other, 1, 1e9).await.unwrap().admitted);
        assert!(!buckets.take(&other, 1, 1e9).await.unwrap().admitted);
        // Idle until full: the key is gone.
        tokio::time::sleep(Duration::from_millis(350)).await;
        let exists = buckets.client.command(&[b"EXISTS", key.as_bytes()]).await.unwrap();
        assert_eq!(exists, redis::Reply::Integer(0));
        buckets.client.command(&[b"DEL", other.as_bytes()]).await.unwrap();
    }
}
