//! The policy cells of `cargo xtask bench gateway`: what the gateway's policy layers cost. The
//! echo load (2026-07-28 stateless `tools/call`, concurrency `--policy-concurrency`) through
//! gateways that differ only in their layers, all relaying to one `portico serve everything`:
//!
//! | variant | layers |
//! |---|---|
//! | `off` | none (the baseline) |
//! | `auth + rbac` | `auth` (an HS256 bearer token on every request, checked) and a `policy` |
//! | `auth + rbac + limit (memory)` | and a per-caller, per-tool rate limit in memory |
//! | `auth + rbac + limit (redis)` | the limit in Redis (`state.redis`, the machine's) |
//! | `auth + rbac + limit + audit` | memory limit, and a durable audit trail (SQLite file) |
//!
//! The limits are too generous to refuse anything: what is measured is their bookkeeping. The
//! variants are loaded in turn, round after round, so a drift in the machine's speed reaches
//! all alike; each figure is compared with `off` of the same run. Goal (issue 8): auth + RBAC +
//! a memory rate limit cost at most 15% of the throughput with everything off.
//!
//! And the cache: whole `tools/list`s (2026-07-28) on the fan-out gateway (`--upstreams`
//! built-in upstreams) without a cache — cold: every listing assembled from the upstreams'
//! snapshots and encoded again — and with `cache: {}` — warm: the listing kept, its pages
//! encoded once. Goal (issue 8): warm ≥ 2× cold.

use std::path::Path;

use anyhow::{Context as _, bail};

use super::{Args, Bench, echo_config, fanout_config, row};
use crate::bench_server::{Figures, Round, Server, Subject as ServerKind, load_args, per_call, ratio, run_bench_tool};

/// The goal: auth + RBAC + memory rate limit at least this share of `off`'s req/s.
pub(super) const GOAL: f64 = 0.85;
/// The goal: warm-cache `tools/list` at least this many times cold.
pub(super) const CACHE_GOAL: f64 = 2.0;

/// The layers of one variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Variant {
    Off,
    Auth,
    AuthLimit,
    AuthRedisLimit,
    AuthLimitAudit,
}

const VARIANTS: [Variant; 5] = [
    Variant::Off,
    Variant::Auth,
    Variant::AuthLimit,
    Variant::AuthRedisLimit,
    Variant::AuthLimitAudit,
];

/// The issuer, audience and secret of the bench's tokens.
const ISSUER: &str = "https://bench.portico.test";
const AUDIENCE: &str = "portico-bench";
const SECRET: &str = "portico-bench-secret-of-enough-length-0123456789";

impl Variant {
    pub(super) fn name(self) -> &'static str {
        match self {
            Variant::Off => "off",
            Variant::Auth => "auth + rbac",
            Variant::AuthLimit => "auth + rbac + limit (memory)",
            Variant::AuthRedisLimit => "auth + rbac + limit (redis)",
            Variant::AuthLimitAudit => "auth + rbac + limit (memory) + audit",
        }
    }

    fn authenticated(self) -> bool {
        self != Variant::Off
    }

    /// The gateway's configuration: the echo gateway's, with this variant's layers; its state
    /// store in `dir`.
    fn config(self, url: &str, redis: &str, dir: &Path) -> String {
        let mut config = echo_config(url, "stateless");
        let state = dir.join(format!("policy-{}.db", self as u8));
        let _ = std::fs::remove_file(&state);
        config.push_str(&format!("state:\n  url: \"sqlite://{}\"\n", state.display()));
        if self == Variant::AuthRedisLimit {
            config.push_str(&format!("  redis: \"{redis}\"\n"));
        }
        if !self.authenticated() {
            return config;
        }
        config.push_str(&format!(
            "auth:\n  jwt:\n    issuer: \"{ISSUER}\"\n    audience: [\"{AUDIENCE}\"]\n    keys:\n      \
             - {{kid: bench, alg: HS256, secret: \"{SECRET}\"}}\n\
             policy:\n  roles:\n    bench:\n      grants:\n        - allow: {{tools: [echo, \"test_*\"]}}\n        \
             - deny: {{tools: [\"*delete*\"]}}\n    other:\n      grants:\n        - allow: {{upstreams: [\"*\"]}}\n"
        ));
        let backend = match self {
            Variant::AuthLimit | Variant::AuthLimitAudit => Some("memory"),
            Variant::AuthRedisLimit => Some("redis"),
            _ => None,
        };
        if let Some(backend) = backend {
            config.push_str(&format!(
                "rate_limits:\n  - {{name: bench, key: [principal, tool], rate: 1000000/s, backend: {backend}}}\n"
            ));
        }
        if self == Variant::AuthLimitAudit {
            config.push_str("audit: {}\n");
        }
        config
    }
}

/// One variant's figures.
pub(super) struct Row {
    pub(super) variant: Variant,
    pub(super) figures: Figures,
}

/// A token for the variants with `auth`, minted by `portico token` (the binary under test).
fn mint(portico: &Path) -> anyhow::Result<String> {
    crate::bench_server::mint_token(portico, (ISSUER, AUDIENCE), ("bench", "bench", "bench"), SECRET)
}

impl Bench<'_> {
    /// The policy cells: one server, a gateway per variant, loaded in turn.
    pub(super) fn policy(&self) -> anyhow::Result<Vec<Row>> {
        let args: &Args = self.args;
        let redis = std::env::var("PORTICO_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let address = redis
            .trim_start_matches("redis://")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        if let Err(e) = std::net::TcpStream::connect(&address) {
            bail!(
                "Redis is not reachable at {redis} ({e}): the `limit (redis)` variant needs it; start it (`bash .ci/run` does) or set PORTICO_TEST_REDIS"
            );
        }
        let token = format!("Bearer {}", mint(&self.binaries.portico)?);
        let server_log = self.logs.join("policy-server.log");
        // The gateways' upstream, where the echo cells have theirs.
        let mut server = Server::start(self.binaries, ServerKind::Portico, args.upstream_cpu, &server_log)?;
        let mut gateways = Vec::new();
        for variant in VARIANTS {
            let name = format!("policy-{}", variant as u8);
            gateways.push(self.gateway(&name, &variant.config(&server.url, &redis, self.logs), args.gateway_cpu)?);
        }
        let concurrency = args.policy_concurrency;
        let mut rounds: Vec<Vec<Round>> = VARIANTS.iter().map(|_| Vec::new()).collect();
        for round in 0..args.load.rounds {
            for (i, variant) in VARIANTS.into_iter().enumerate() {
                let gateway = &mut gateways[i];
                let mut tool_args = load_args(
                    &gateway.url,
                    "stateless",
                    concurrency,
                    args.load.round_seconds(),
                    gateway.pid(),
                );
                tool_args.extend(["--upstream-pid".into(), server.pid().to_string()]);
                if variant.authenticated() {
                    tool_args.extend(["--authorization".into(), token.clone()]);
                }
                let log = self.logs.join(format!("policy-{}-{round}.load.log", variant as u8));
                let report = run_bench_tool(self.binaries, args.load.load_cpu, &tool_args, &log)
                    .with_context(|| format!("policy {}; see {}", variant.name(), gateway.log.display()))?;
                rounds[i].push(Round::of_load(&report).with_context(|| format!("policy {}", variant.name()))?);
                server.check_alive()?;
                gateway.check_alive()?;
            }
        }
        let mut rows = Vec::new();
        for (i, variant) in VARIANTS.into_iter().enumerate() {
            let figures = Figures::of(&rounds[i], gateways[i].status_kib("VmHWM")?);
            println!(
                "  policy {:<38} c={concurrency:<4} {:>8.0} calls/s  p50 {:>7.0} µs  p99 {:>7.0} µs  CPU {:>3.0}% ({:>6.1} µs/call)  other CPU {:>3.0}%",
                variant.name(),
                figures.rps,
                figures.p50_us,
                figures.p99_us,
                figures.server_cpu,
                figures.cpu_us_per_call(),
                figures.other_cpu,
            );
            rows.push(Row { variant, figures });
        }
        Ok(rows)
    }
}

/// The most CPU other processes used while any variant was measured.
pub(super) fn other_cpu(rows: &[Row]) -> f64 {
    rows.iter().map(|r| r.figures.other_cpu).fold(0.0, f64::max)
}

/// The policy table, and its goal line.
pub(super) fn render(out: &mut String, args: &Args, rows: &[Row]) {
    out.push_str(&format!(
        "### Policy layers: echo through the gateway with each layer on (ratios: variant / off)\n\n\
         2026-07-28 stateless `tools/call` of `echo` at concurrency {}, through gateways that differ only in\n\
         their policy layers, relaying to one `portico serve everything`: `auth` (an HS256 bearer token\n\
         checked on every request), a `policy` of two roles, a per-caller, per-tool rate limit (in memory, or\n\
         in the machine's Redis) too generous to refuse, and a durable audit trail (SQLite).\n\n",
        args.policy_concurrency
    ));
    out.push_str("| layers | req/s | p50 µs | p99 µs | gateway CPU µs/call | peak RSS MiB | other CPU % |\n");
    out.push_str("|---|---|---|---|---|---|---|\n");
    let off = rows
        .iter()
        .find(|r| r.variant == Variant::Off)
        .map(|r| r.figures.clone())
        .unwrap_or_default();
    for r in rows {
        let baseline = (r.variant != Variant::Off).then_some(&off);
        out.push_str(&figures_row(&format!("`{}`", r.variant.name()), &r.figures, baseline));
    }
    out.push('\n');
}

/// The goal line: auth + RBAC + memory limit against off.
pub(super) fn goal(rows: &[Row]) -> Option<String> {
    let rps = |v: Variant| rows.iter().find(|r| r.variant == v).map(|r| r.figures.rps);
    let (off, layered) = (rps(Variant::Off)?, rps(Variant::AuthLimit)?);
    let share = layered / off.max(f64::MIN_POSITIVE);
    let met = if share >= GOAL { "met" } else { "**missed**" };
    Some(format!(
        "- Policy goal (auth + RBAC + memory rate limit cost ≤ 15% of the throughput with every layer off): {met} — {:.2}× ({:.0} vs {:.0} req/s).",
        share, layered, off
    ))
}

/// The cache cells' figures: cold (no cache), then warm.
pub(super) struct CacheRows {
    pub(super) cold: Figures,
    pub(super) warm: Figures,
}

impl Bench<'_> {
    /// `tools/list` on two fan-out gateways, one without a cache and one with, loaded in turn.
    pub(super) fn cache(&self) -> anyhow::Result<CacheRows> {
        let args: &Args = self.args;
        let concurrency = args.fanout_concurrency.first().copied().unwrap_or(32);
        let mut gateways = Vec::new();
        for (name, extra) in [("cache-cold", ""), ("cache-warm", "cache: {}\n")] {
            let config = format!("{}{extra}", fanout_config(args.upstreams));
            gateways.push(self.gateway(name, &config, args.load.server_cpu)?);
        }
        let mut rounds: [Vec<Round>; 2] = [Vec::new(), Vec::new()];
        for round in 0..args.load.rounds {
            for (i, gateway) in gateways.iter_mut().enumerate() {
                let mut tool_args = load_args(
                    &gateway.url,
                    "stateless",
                    concurrency,
                    args.load.round_seconds(),
                    gateway.pid(),
                );
                tool_args.extend(["--method".into(), "tools/list".into()]);
                let label = if i == 0 { "cold" } else { "warm" };
                let log = self.logs.join(format!("cache-{label}-{round}.load.log"));
                let report = run_bench_tool(self.binaries, args.load.load_cpu, &tool_args, &log)
                    .with_context(|| format!("cache {label}; see {}", gateway.log.display()))?;
                rounds[i].push(Round::of_load(&report).with_context(|| format!("cache {label}"))?);
                gateway.check_alive()?;
            }
        }
        let cold = Figures::of(&rounds[0], gateways[0].status_kib("VmHWM")?);
        let warm = Figures::of(&rounds[1], gateways[1].status_kib("VmHWM")?);
        for (label, f) in [("cold", &cold), ("warm", &warm)] {
            println!(
                "  cache  tools/list {label:<5} c={concurrency:<4} {:>8.0} listings/s  p50 {:>7.0} µs  p99 {:>7.0} µs  CPU {:>3.0}% ({:>7.1} µs/listing)  other CPU {:>3.0}%",
                f.rps,
                f.p50_us,
                f.p99_us,
                f.server_cpu,
                f.cpu_us_per_call(),
                f.other_cpu,
            );
        }
        Ok(CacheRows { cold, warm })
    }
}

/// The cache table.
pub(super) fn render_cache(out: &mut String, args: &Args, rows: &CacheRows) {
    out.push_str(&format!(
        "### Cache: tools/list on the fan-out gateway, cold and warm (ratio: warm / cold)\n\n\
         Whole 2026-07-28 `tools/list`s (every page) at concurrency {} on a gateway with {} built-in\n\
         upstreams: without a cache (cold: each listing assembled from the upstreams' snapshots and\n\
         encoded again) and with `cache: {{}}` (warm: the listing kept, its pages encoded once).\n\n",
        args.fanout_concurrency.first().copied().unwrap_or(32),
        args.upstreams
    ));
    out.push_str("| cache | listings/s | p50 µs | p99 µs | gateway CPU µs/listing | peak RSS MiB | other CPU % |\n");
    out.push_str("|---|---|---|---|---|---|---|\n");
    out.push_str(&figures_row("cold (off)", &rows.cold, None));
    out.push_str(&figures_row("warm (`cache: {}`)", &rows.warm, Some(&rows.cold)));
    out.push('\n');
}

/// One line of the policy and cache tables: `label`, then `f`'s rate (as a ratio of
/// `baseline`'s, when given), latencies, gateway CPU per call, peak RSS and other CPU.
fn figures_row(label: &str, f: &Figures, baseline: Option<&Figures>) -> String {
    let rate = match baseline {
        Some(baseline) => format!("{:.0} ({})", f.rps, ratio(f.rps, baseline.rps)),
        None => format!("{:.0}", f.rps),
    };
    let cells = [
        label.to_owned(),
        rate,
        format!("{:.0}", f.p50_us),
        format!("{:.0}", f.p99_us),
        format!("{:.1}", per_call(f.server_cpu, f.rps)),
        format!("{:.1}", f.peak_rss_kib as f64 / 1024.0),
        format!("{:.0}", f.other_cpu),
    ];
    row(&cells) + "\n"
}

/// The cache goal line.
pub(super) fn cache_goal(rows: &CacheRows) -> String {
    let times = rows.warm.rps / rows.cold.rps.max(f64::MIN_POSITIVE);
    let met = if times >= CACHE_GOAL { "met" } else { "**missed**" };
    format!(
        "- Cache goal (warm-cache `tools/list` ≥ {CACHE_GOAL}× cold): {met} — {times:.1}× ({:.0} vs {:.0} listings/s).",
        rows.warm.rps, rows.cold.rps
    )
}
