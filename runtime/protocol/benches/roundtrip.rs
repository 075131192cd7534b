//! Parse + serialize throughput of typed messages against a `serde_json::Value` round trip of
//! the same bytes, measured in the same run. Run through `cargo xtask bench codegen`.
//!
//! Each case is timed in batches for a fixed wall-clock budget; the report gives operations per
//! second, MB/s, per-operation p50/p99 over batches, and the typed/Value ratio.

use std::hint::black_box;
use std::time::{Duration, Instant};

use portico_protocol::v2026_07_28 as wire;

const CALL: &str = r#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"search_issues","arguments":{"query":"label:bug state:open","limit":25,"include_closed":false,"fields":["title","url","labels"]},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"elicitation":{"form":{}}},"io.modelcontextprotocol/clientInfo":{"name":"bench-client","version":"1.0.0"},"progressToken":"p-42"}}}"#;

/// A tool result as the official SDKs and Portico write it: each content block's `type` first.
fn result_json() -> String {
    let mut blocks = Vec::new();
    for i in 0..8 {
        blocks.push(format!(
            r#"{{"type":"text","text":"Issue #{i}: request timeout in the upstream pool when the breaker half-opens"}}"#
        ));
    }
    blocks.push(r#"{"type":"image","data":"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==","mimeType":"image/png"}"#.into());
    blocks.push(r#"{"type":"resource_link","uri":"https://example.com/issues","name":"issues"}"#.into());
    format!(
        r#"{{"resultType":"complete","content":[{}],"structuredContent":{{"count":8,"items":[{{"id":1,"score":0.93}},{{"id":2,"score":0.71}}]}},"isError":false}}"#,
        blocks.join(",")
    )
}

/// The same result with every object's members sorted, so `type` is not first in the blocks:
/// the union decoder has to buffer each block (the slow path).
fn sorted_result_json() -> String {
    let value: serde_json::Value = serde_json::from_str(&result_json()).expect("JSON");
    value.to_string()
}

struct Sample {
    ops_per_sec: f64,
    p50_ns: f64,
    p99_ns: f64,
}

/// Runs `op` in batches for `budget`, returning throughput and per-op batch percentiles.
fn measure(budget: Duration, op: &mut dyn FnMut()) -> Sample {
    const BATCH: u32 = 200;
    for _ in 0..BATCH {
        op();
    }
    let mut per_op = Vec::new();
    let start = Instant::now();
    let mut ops = 0u64;
    while start.elapsed() < budget {
        let t = Instant::now();
        for _ in 0..BATCH {
            op();
        }
        per_op.push(t.elapsed().as_nanos() as f64 / f64::from(BATCH));
        ops += u64::from(BATCH);
    }
    let total = start.elapsed().as_secs_f64();
    per_op.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| per_op[((per_op.len() - 1) as f64 * p).round() as usize];
    Sample {
        ops_per_sec: ops as f64 / total,
        p50_ns: pct(0.5),
        p99_ns: pct(0.99),
    }
}

fn row(name: &str, bytes: usize, s: &Sample) {
    println!(
        "| {name} | {:.0} | {:.1} | {:.0} | {:.0} |",
        s.ops_per_sec,
        s.ops_per_sec * bytes as f64 / 1e6,
        s.p50_ns,
        s.p99_ns
    );
}

/// Measures `ops` alternately, `rounds` times each for `budget / rounds`, so drift in machine
/// speed affects all of them alike; returns one merged sample per op.
fn interleaved(budget: Duration, rounds: u32, ops: &mut [&mut dyn FnMut()]) -> Vec<Sample> {
    let mut merged: Vec<(f64, f64, Vec<f64>)> = vec![(0.0, 0.0, Vec::new()); ops.len()];
    for _ in 0..rounds {
        for (i, op) in ops.iter_mut().enumerate() {
            let s = measure(budget / rounds, &mut **op);
            merged[i].0 += s.ops_per_sec;
            merged[i].1 += 1.0;
            merged[i].2.push(s.p50_ns);
            merged[i].2.push(s.p99_ns);
        }
    }
    merged
        .into_iter()
        .map(|(sum, n, mut ps)| {
            ps.sort_by(|a, b| a.total_cmp(b));
            Sample {
                ops_per_sec: sum / n,
                p50_ns: ps[ps.len() / 4],
                p99_ns: ps[ps.len() - 1],
            }
        })
        .collect()
}

fn case<T: serde::de::DeserializeOwned + serde::Serialize>(label: &str, json: &str, budget: Duration) -> f64 {
    // Both must accept the bytes and agree on what they mean.
    let typed: T = serde_json::from_str(json).expect("typed parse");
    let value: serde_json::Value = serde_json::from_str(json).expect("value parse");
    assert_eq!(
        serde_json::to_value(&typed).expect("serializes"),
        value,
        "{label}: typed round trip differs"
    );
    let bytes = json.as_bytes();
    let mut typed_rt = || {
        let v: T = serde_json::from_slice(black_box(bytes)).expect("parse");
        black_box(serde_json::to_vec(&v).expect("serialize"));
    };
    let mut value_rt = || {
        let v: serde_json::Value = serde_json::from_slice(black_box(bytes)).expect("parse");
        black_box(serde_json::to_vec(&v).expect("serialize"));
    };
    let mut typed_parse = || {
        black_box(serde_json::from_slice::<T>(black_box(bytes)).expect("parse"));
    };
    let mut value_parse = || {
        black_box(serde_json::from_slice::<serde_json::Value>(black_box(bytes)).expect("parse"));
    };
    let mut typed_ser = || {
        black_box(serde_json::to_vec(black_box(&typed)).expect("serialize"));
    };
    let mut value_ser = || {
        black_box(serde_json::to_vec(black_box(&value)).expect("serialize"));
    };
    let samples = interleaved(
        budget,
        10,
        &mut [
            &mut typed_rt,
            &mut value_rt,
            &mut typed_parse,
            &mut value_parse,
            &mut typed_ser,
            &mut value_ser,
        ],
    );
    let names = [
        "round trip typed",
        "round trip Value",
        "parse typed",
        "parse Value",
        "serialize typed",
        "serialize Value",
    ];
    for (name, sample) in names.iter().zip(&samples) {
        row(&format!("{label} {name}"), bytes.len(), sample);
    }
    samples[0].ops_per_sec / samples[1].ops_per_sec
}

fn main() {
    // `cargo bench` passes `--bench`; a number of seconds per case may follow `--`.
    let secs: f64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(1.0);
    let budget = Duration::from_secs_f64(secs);
    let result = result_json();
    println!("| case | ops/s | MB/s | p50 ns/op | p99 ns/op |");
    println!("|---|---|---|---|---|");
    let call = case::<wire::CallToolRequest>("CallToolRequest", CALL, budget);
    let res = case::<wire::CallToolResult>("CallToolResult", &result, budget);
    let sorted = case::<wire::CallToolResult>("CallToolResult (tag not first)", &sorted_result_json(), budget);
    println!();
    println!(
        "typed / Value round-trip throughput: CallToolRequest {call:.2}x, CallToolResult {res:.2}x, \
         CallToolResult with sorted members {sorted:.2}x"
    );
}
