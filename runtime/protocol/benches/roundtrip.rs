//! Parse + serialize throughput of typed messages against a `serde_json::Value` round trip of
//! the same bytes, measured in the same run. Run through `cargo xtask bench codegen`.
//!
//! Each case is timed in batches for a fixed wall-clock budget; the report gives operations per
//! second, MB/s, per-operation p50/p99 over batches, and the typed/Value ratio.

use std::hint::black_box;
use std::time::{Duration, Instant};

use portico_protocol::v2026_07_28 as wire;

const CALL: &str = r#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"search_issues","arguments":{"query":"label:bug state:open","limit":25,"include_closed":false,"fields":["title","url","labels"]},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"elicitation":{"form":{}}},"io.modelcontextprotocol/clientInfo":{"name":"bench-client","version":"1.0.0"},"progressToken":"p-42"}}}"#;

fn result_json() -> String {
    let mut content = Vec::new();
    for i in 0..8 {
        content.push(serde_json::json!({"type": "text", "text": format!("Issue #{i}: request timeout in the upstream pool when the breaker half-opens")}));
    }
    content.push(serde_json::json!({"type": "image", "data": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==", "mimeType": "image/png"}));
    content.push(serde_json::json!({"type": "resource_link", "uri": "https://example.com/issues", "name": "issues"}));
    serde_json::json!({
        "resultType": "complete",
        "content": content,
        "structuredContent": {"count": 8, "items": [{"id": 1, "score": 0.93}, {"id": 2, "score": 0.71}]},
        "isError": false
    })
    .to_string()
}

struct Sample {
    ops_per_sec: f64,
    p50_ns: f64,
    p99_ns: f64,
}

/// Runs `op` in batches for `budget`, returning throughput and per-op batch percentiles.
fn measure(budget: Duration, mut op: impl FnMut()) -> Sample {
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
    let typed = measure(budget, || {
        let v: T = serde_json::from_slice(black_box(bytes)).expect("parse");
        black_box(serde_json::to_vec(&v).expect("serialize"));
    });
    let value = measure(budget, || {
        let v: serde_json::Value = serde_json::from_slice(black_box(bytes)).expect("parse");
        black_box(serde_json::to_vec(&v).expect("serialize"));
    });
    row(&format!("{label} typed"), bytes.len(), &typed);
    row(&format!("{label} Value"), bytes.len(), &value);
    typed.ops_per_sec / value.ops_per_sec
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
    println!();
    println!("typed / Value throughput: CallToolRequest {call:.2}x, CallToolResult {res:.2}x");
}
