//! The gateway's Prometheus metrics, served at `/metrics` in the text exposition format
//! (version 0.0.4):
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `portico_gateway_requests_total` | counter | `upstream`, `method`, `tool`, `outcome` (`ok`, `tool_error`, `error`, `unavailable`, `timeout`, `input_required`) |
//! | `portico_gateway_request_duration_seconds` | histogram | `upstream`, `method` |
//! | `portico_gateway_in_flight` | gauge | `upstream` |
//! | `portico_gateway_upstream_up` | gauge | `upstream`, `replica` (1 connected and not held off) |
//! | `portico_gateway_breaker_state` | gauge | `upstream`, `replica`, `state` (1 for the current state) |
//! | `portico_gateway_sessions` | gauge | `endpoint` (stateful sessions open) |
//! | `portico_gateway_config_changes_total` | counter | `source` (`file`, `admin`), `outcome` (`applied`, `rejected`) |
//! | `portico_gateway_rate_limited_total` | counter | `rule`, `reason` (`limited`: its bucket was empty; `store_unavailable`: Redis could not be asked and the rule fails closed) |
//! | `portico_gateway_rate_limit_store_errors_total` | counter | `rule` (requests whose Redis bucket could not be read, refused or not) |
//! | `portico_gateway_cache_requests_total` | counter | `kind` (`list`, `resource`, `tool`), `outcome` (`hit`, `miss`, `coalesced`, `bypass`, `error`; see [`crate::cache`]) |
//! | `portico_gateway_cache_entries` | gauge | none (entries the memory backend holds) |
//! | `portico_gateway_cache_bytes` | gauge | none (bytes of JSON the memory backend holds) |
//! | `portico_gateway_plugin_decisions_total` | counter | `plugin`, `hook` (`before`, `after`), `decision` (`continue`, `deny`, `failed_open`, `failed_closed`) |
//!
//! Label values are bounded by the configuration (upstream, replica, rule and tool names the
//! configuration and its upstreams define, methods the gateway relays, plugin names), not by what clients
//! send: a tool or prompt name the upstream does not list is counted under `tool=""`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::cache;

/// Upper bounds of the duration histogram's buckets, in seconds.
const BUCKETS: [f64; 15] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// One relayed call's outcome, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// A result.
    Ok,
    /// A tool result with `isError`.
    ToolError,
    /// A JSON-RPC error of the upstream's.
    Error,
    /// No replica could serve, or its connection failed.
    Unavailable,
    /// The upstream took longer than its `timeout`.
    Timeout,
    /// The call ended asking the client for input (a 2026-07-28 `input_required` round).
    InputRequired,
}

impl Outcome {
    /// Every outcome, in the order of its counters ([`Calls::outcomes`]).
    const ALL: [Self; 6] = [
        Self::Ok,
        Self::ToolError,
        Self::Error,
        Self::Unavailable,
        Self::Timeout,
        Self::InputRequired,
    ];

    /// Its label value (and audit outcome): `ok`, `tool_error`, …
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::ToolError => "tool_error",
            Self::Error => "error",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::InputRequired => "input_required",
        }
    }
}

#[derive(Default)]
struct Histogram {
    /// Cumulative counts per bucket (`BUCKETS`); the `+Inf` one is `count`.
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// What was counted of the calls of one method to one upstream.
#[derive(Default)]
struct Calls {
    /// tool (`""` for none or one not listed) → calls by outcome, in [`Outcome::ALL`] order.
    outcomes: BTreeMap<String, [u64; Outcome::ALL.len()]>,
    durations: Histogram,
}

#[derive(Default)]
struct Registry {
    /// upstream → method → its calls. Nested maps keyed by `String` are looked up by `&str`, so
    /// counting a call allocates nothing once its labels were seen (a map keyed by a tuple of
    /// strings needed the tuple made, five `String`s, for every lookup).
    calls: BTreeMap<String, BTreeMap<String, Calls>>,
    /// (source, outcome) → count.
    changes: BTreeMap<(String, String), u64>,
    /// (rule, reason) → requests refused.
    rate_limited: BTreeMap<(String, &'static str), u64>,
    /// rule → requests whose bucket could not be read.
    rate_limit_store_errors: BTreeMap<String, u64>,
    /// (plugin, hook, decision) → hooks run.
    plugin_decisions: BTreeMap<(String, &'static str, &'static str), u64>,
}

/// The gateway's counters and histograms (gauges are read when rendered).
#[derive(Default)]
pub struct Metrics {
    registry: Mutex<Registry>,
    /// Cache requests by kind and outcome (in [`cache::Kind::ALL`] and [`cache::Outcome::ALL`]
    /// order): atomics, as a cached request's whole cost is a few of these.
    cache: [[AtomicU64; 5]; 3],
}

/// The entry of `key` in `map`, made when missing; the key is copied only then.
fn entry<'m, V: Default>(map: &'m mut BTreeMap<String, V>, key: &str) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), V::default());
    }
    map.get_mut(key).expect("the entry was just made")
}

impl Metrics {
    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one relayed call.
    pub fn record(&self, upstream: &str, method: &str, tool: &str, outcome: Outcome, took: Duration) {
        let mut registry = self.registry();
        let calls = entry(entry(&mut registry.calls, upstream), method);
        entry(&mut calls.outcomes, tool)[outcome as usize] += 1;
        let histogram = &mut calls.durations;
        let seconds = took.as_secs_f64();
        for (count, bound) in histogram.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *count += 1;
            }
        }
        histogram.sum += seconds;
        histogram.count += 1;
    }

    /// Counts one configuration change.
    pub fn record_change(&self, source: &str, applied: bool) {
        let outcome = if applied { "applied" } else { "rejected" };
        *self
            .registry()
            .changes
            .entry((source.into(), outcome.into()))
            .or_default() += 1;
    }

    /// Counts a request refused by the rate limit `rule`: `limited` or `store_unavailable`.
    pub fn record_rate_limited(&self, rule: &str, reason: &'static str) {
        *self.registry().rate_limited.entry((rule.into(), reason)).or_default() += 1;
    }

    /// Counts a request whose bucket of the rate limit `rule` could not be read.
    pub fn record_rate_limit_store_error(&self, rule: &str) {
        *self.registry().rate_limit_store_errors.entry(rule.into()).or_default() += 1;
    }

    /// Counts one request the cache ([`crate::cache`]) saw.
    pub fn record_cache(&self, kind: cache::Kind, outcome: cache::Outcome) {
        let k = cache::Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        let o = cache::Outcome::ALL.iter().position(|o| *o == outcome).unwrap_or(0);
        self.cache[k][o].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one hook of the plugin `plugin` (`before`, `after`) and what it decided:
    /// `continue`, `deny`, `failed_open` or `failed_closed`.
    pub fn record_plugin(&self, plugin: &str, hook: &'static str, decision: &'static str) {
        *self
            .registry()
            .plugin_decisions
            .entry((plugin.into(), hook, decision))
            .or_default() += 1;
    }

    /// The counters and histograms in the text format, then `gauges` (already rendered).
    pub fn render(&self, gauges: &Gauges) -> String {
        let registry = self.registry();
        let mut out = String::new();
        out.push_str("# HELP portico_gateway_requests_total Calls relayed to upstreams, by outcome.\n");
        out.push_str("# TYPE portico_gateway_requests_total counter\n");
        for (upstream, methods) in &registry.calls {
            for (method, calls) in methods {
                for (tool, counts) in &calls.outcomes {
                    for (outcome, count) in Outcome::ALL.iter().zip(counts).filter(|(_, count)| **count > 0) {
                        let _ = writeln!(
                            out,
                            "portico_gateway_requests_total{{upstream=\"{}\",method=\"{}\",tool=\"{}\",outcome=\"{}\"}} {count}",
                            escape(upstream),
                            escape(method),
                            escape(tool),
                            outcome.as_str()
                        );
                    }
                }
            }
        }
        out.push_str(
            "# HELP portico_gateway_request_duration_seconds How long relayed calls took, from the gateway's side.\n",
        );
        out.push_str("# TYPE portico_gateway_request_duration_seconds histogram\n");
        for (upstream, methods) in &registry.calls {
            for (method, calls) in methods {
                let histogram = &calls.durations;
                let labels = format!("upstream=\"{}\",method=\"{}\"", escape(upstream), escape(method));
                for (bound, count) in BUCKETS.iter().zip(&histogram.buckets) {
                    let _ = writeln!(
                        out,
                        "portico_gateway_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                    );
                }
                let _ = writeln!(
                    out,
                    "portico_gateway_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                    histogram.count
                );
                let _ = writeln!(
                    out,
                    "portico_gateway_request_duration_seconds_sum{{{labels}}} {}",
                    histogram.sum
                );
                let _ = writeln!(
                    out,
                    "portico_gateway_request_duration_seconds_count{{{labels}}} {}",
                    histogram.count
                );
            }
        }
        out.push_str("# HELP portico_gateway_config_changes_total Configuration changes, by source and outcome.\n");
        out.push_str("# TYPE portico_gateway_config_changes_total counter\n");
        for ((source, outcome), count) in &registry.changes {
            let _ = writeln!(
                out,
                "portico_gateway_config_changes_total{{source=\"{source}\",outcome=\"{outcome}\"}} {count}"
            );
        }
        out.push_str(
            "# HELP portico_gateway_rate_limited_total Requests refused by a rate limit, by rule and reason.\n",
        );
        out.push_str("# TYPE portico_gateway_rate_limited_total counter\n");
        for ((rule, reason), count) in &registry.rate_limited {
            let _ = writeln!(
                out,
                "portico_gateway_rate_limited_total{{rule=\"{}\",reason=\"{reason}\"}} {count}",
                escape(rule)
            );
        }
        out.push_str(
            "# HELP portico_gateway_rate_limit_store_errors_total Requests whose rate limit bucket could not be read (Redis away), by rule.\n",
        );
        out.push_str("# TYPE portico_gateway_rate_limit_store_errors_total counter\n");
        for (rule, count) in &registry.rate_limit_store_errors {
            let _ = writeln!(
                out,
                "portico_gateway_rate_limit_store_errors_total{{rule=\"{}\"}} {count}",
                escape(rule)
            );
        }
        out.push_str("# HELP portico_gateway_cache_requests_total Requests the cache saw, by kind and outcome.\n");
        out.push_str("# TYPE portico_gateway_cache_requests_total counter\n");
        for (k, kind) in cache::Kind::ALL.iter().enumerate() {
            for (o, outcome) in cache::Outcome::ALL.iter().enumerate() {
                let count = self.cache[k][o].load(Ordering::Relaxed);
                if count > 0 {
                    let _ = writeln!(
                        out,
                        "portico_gateway_cache_requests_total{{kind=\"{}\",outcome=\"{}\"}} {count}",
                        kind.as_str(),
                        outcome.as_str()
                    );
                }
            }
        }
        out.push_str("# HELP portico_gateway_plugin_decisions_total Plugin hooks run, by plugin, hook and decision.\n");
        out.push_str("# TYPE portico_gateway_plugin_decisions_total counter\n");
        for ((plugin, hook, decision), count) in &registry.plugin_decisions {
            let _ = writeln!(
                out,
                "portico_gateway_plugin_decisions_total{{plugin=\"{}\",hook=\"{hook}\",decision=\"{decision}\"}} {count}",
                escape(plugin)
            );
        }
        gauges.render(&mut out);
        out
    }
}

/// The gauges, read from the gateway's state when `/metrics` is asked for.
#[derive(Default)]
pub struct Gauges {
    /// (upstream, calls in flight).
    pub in_flight: Vec<(String, usize)>,
    /// (upstream, replica, up, breaker state).
    pub replicas: Vec<(String, String, bool, &'static str)>,
    /// (endpoint, sessions).
    pub sessions: Vec<(String, usize)>,
    /// The memory cache's (entries, bytes), when it is on.
    pub cache: Option<(usize, usize)>,
}

impl Gauges {
    fn render(&self, out: &mut String) {
        out.push_str("# HELP portico_gateway_in_flight Calls in flight, per upstream.\n");
        out.push_str("# TYPE portico_gateway_in_flight gauge\n");
        for (upstream, n) in &self.in_flight {
            let _ = writeln!(
                out,
                "portico_gateway_in_flight{{upstream=\"{}\"}} {n}",
                escape(upstream)
            );
        }
        out.push_str(
            "# HELP portico_gateway_upstream_up Whether a replica is connected and not held off by its breaker.\n",
        );
        out.push_str("# TYPE portico_gateway_upstream_up gauge\n");
        for (upstream, replica, up, _) in &self.replicas {
            let _ = writeln!(
                out,
                "portico_gateway_upstream_up{{upstream=\"{}\",replica=\"{}\"}} {}",
                escape(upstream),
                escape(replica),
                u8::from(*up)
            );
        }
        out.push_str(
            "# HELP portico_gateway_breaker_state A replica's circuit breaker state (1 for the current one).\n",
        );
        out.push_str("# TYPE portico_gateway_breaker_state gauge\n");
        for (upstream, replica, _, state) in &self.replicas {
            for candidate in ["closed", "open", "half-open"] {
                let _ = writeln!(
                    out,
                    "portico_gateway_breaker_state{{upstream=\"{}\",replica=\"{}\",state=\"{candidate}\"}} {}",
                    escape(upstream),
                    escape(replica),
                    u8::from(*state == candidate)
                );
            }
        }
        out.push_str("# HELP portico_gateway_sessions Stateful sessions open, per endpoint.\n");
        out.push_str("# TYPE portico_gateway_sessions gauge\n");
        for (endpoint, n) in &self.sessions {
            let _ = writeln!(out, "portico_gateway_sessions{{endpoint=\"{}\"}} {n}", escape(endpoint));
        }
        if let Some((entries, bytes)) = self.cache {
            out.push_str("# HELP portico_gateway_cache_entries Results the memory cache holds.\n");
            out.push_str("# TYPE portico_gateway_cache_entries gauge\n");
            let _ = writeln!(out, "portico_gateway_cache_entries {entries}");
            out.push_str("# HELP portico_gateway_cache_bytes Bytes of JSON the memory cache holds.\n");
            out.push_str("# TYPE portico_gateway_cache_bytes gauge\n");
            let _ = writeln!(out, "portico_gateway_cache_bytes {bytes}");
        }
    }
}

/// A label value escaped as the format asks (backslash, quote, newline).
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_outcome_is_counted_under_its_own_label_and_none_is_rendered_at_zero() {
        let metrics = Metrics::default();
        for (n, outcome) in Outcome::ALL.iter().enumerate() {
            for _ in 0..=n {
                metrics.record("u", "tools/call", "t", *outcome, Duration::from_millis(1));
            }
        }
        metrics.record("u", "prompts/get", "p", Outcome::Timeout, Duration::from_millis(1));
        let text = metrics.render(&Gauges::default());
        for (n, outcome) in Outcome::ALL.iter().enumerate() {
            let line = format!(
                "portico_gateway_requests_total{{upstream=\"u\",method=\"tools/call\",tool=\"t\",outcome=\"{}\"}} {}\n",
                outcome.as_str(),
                n + 1
            );
            assert!(text.contains(&line), "{line} in {text}");
        }
        let prompts: Vec<_> = text.lines().filter(|l| l.contains("tool=\"p\"")).collect();
        assert_eq!(
            prompts,
            ["portico_gateway_requests_total{upstream=\"u\",method=\"prompts/get\",tool=\"p\",outcome=\"timeout\"} 1"]
        );
        assert!(
            text.contains("_count{upstream=\"u\",method=\"tools/call\"} 21\n"),
            "{text}"
        );
        assert!(
            text.contains("_count{upstream=\"u\",method=\"prompts/get\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn counters_and_histograms_render_in_the_text_format() {
        let metrics = Metrics::default();
        metrics.record("a", "tools/call", "echo", Outcome::Ok, Duration::from_millis(3));
        metrics.record("a", "tools/call", "echo", Outcome::Ok, Duration::from_millis(40));
        metrics.record("a", "tools/call", "bad\"name", Outcome::Error, Duration::from_secs(60));
        metrics.record_change("file", false);
        metrics.record_rate_limited("calls", "limited");
        metrics.record_rate_limited("calls", "limited");
        metrics.record_rate_limit_store_error("shared");
        metrics.record_cache(cache::Kind::List, cache::Outcome::Hit);
        metrics.record_cache(cache::Kind::List, cache::Outcome::Hit);
        metrics.record_cache(cache::Kind::Tool, cache::Outcome::Coalesced);
        metrics.record_plugin("guard", "before", "deny");
        let text = metrics.render(&Gauges {
            in_flight: vec![("a".into(), 2)],
            replicas: vec![("a".into(), "http://x".into(), true, "half-open")],
            sessions: vec![("/mcp".into(), 7)],
            cache: Some((3, 1200)),
        });
        assert!(
            text.contains(
                "portico_gateway_requests_total{upstream=\"a\",method=\"tools/call\",tool=\"echo\",outcome=\"ok\"} 2\n"
            ),
            "{text}"
        );
        assert!(text.contains("tool=\"bad\\\"name\",outcome=\"error\"} 1\n"), "{text}");
        assert!(
            text.contains("_bucket{upstream=\"a\",method=\"tools/call\",le=\"0.005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("_bucket{upstream=\"a\",method=\"tools/call\",le=\"0.05\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("_bucket{upstream=\"a\",method=\"tools/call\",le=\"+Inf\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("_count{upstream=\"a\",method=\"tools/call\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("portico_gateway_config_changes_total{source=\"file\",outcome=\"rejected\"} 1\n"));
        assert!(
            text.contains("portico_gateway_breaker_state{upstream=\"a\",replica=\"http://x\",state=\"half-open\"} 1\n")
        );
        assert!(text.contains("portico_gateway_breaker_state{upstream=\"a\",replica=\"http://x\",state=\"open\"} 0\n"));
        assert!(text.contains("portico_gateway_sessions{endpoint=\"/mcp\"} 7\n"));
        assert!(text.contains("portico_gateway_in_flight{upstream=\"a\"} 2\n"));
        assert!(text.contains("portico_gateway_rate_limited_total{rule=\"calls\",reason=\"limited\"} 2\n"));
        assert!(text.contains("portico_gateway_rate_limit_store_errors_total{rule=\"shared\"} 1\n"));
        assert!(text.contains("portico_gateway_cache_requests_total{kind=\"list\",outcome=\"hit\"} 2\n"));
        assert!(text.contains("portico_gateway_cache_requests_total{kind=\"tool\",outcome=\"coalesced\"} 1\n"));
        assert!(!text.contains("outcome=\"miss\""), "{text}");
        assert!(text.contains("portico_gateway_cache_entries 3\n"));
        assert!(text.contains("portico_gateway_cache_bytes 1200\n"));
        assert!(text.contains(
            "portico_gateway_plugin_decisions_total{plugin=\"guard\",hook=\"before\",decision=\"deny\"} 1\n"
        ));
        // Every line is a comment or `name{labels} value`.
        for line in text.lines() {
            assert!(
                line.starts_with('#') || line.rsplit_once(' ').is_some_and(|(_, v)| v.parse::<f64>().is_ok()),
                "{line}"
            );
        }
    }
}
