//! `portico gateway` as an operator runs it: on its embedded default, from a file, with a
//! stdio upstream that crashes or speaks garbage.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Running, post_to};

/// A file of the test's own in the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> Self {
        let path = std::env::temp_dir().join(format!("portico-gateway-test-{}-{name}", std::process::id()));
        std::fs::write(&path, text).expect("writing a temporary file");
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Starts `portico gateway` with `args` and returns it with its address (from the banner).
fn gateway(args: &[&str]) -> (Running, String) {
    gateway_on(args, "sqlite::memory:")
}

/// [`gateway`], its state store at `state`.
fn gateway_on(args: &[&str], state: &str) -> (Running, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portico"))
        .arg("gateway")
        .args(args)
        .args(["--listen", "127.0.0.1:0", "--state", state])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("portico starts");
    let stdout = child.stdout.take().expect("stdout");
    let running = Running(child);
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the banner");
    let addr = line
        .trim()
        .strip_prefix("gateway serving MCP on http://")
        .and_then(|a| a.strip_suffix("/mcp"))
        .unwrap_or_else(|| panic!("unexpected banner {line:?}"))
        .to_string();
    (running, addr)
}

/// A 2026-07-28 `tools/call` of `name` at `path`: the JSON-RPC answer.
fn call(addr: &str, path: &str, name: &str) -> serde_json::Value {
    let response = call_raw(addr, path, name, serde_json::json!({}));
    let json = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .unwrap_or_else(|| panic!("no body: {response}"));
    serde_json::from_str(json.trim()).unwrap_or_else(|e| panic!("{e}: {response}"))
}

/// The whole HTTP response to a 2026-07-28 `tools/call` of `name` with `arguments`.
fn call_raw(addr: &str, path: &str, name: &str, arguments: serde_json::Value) -> String {
    let body = serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": name, "arguments": arguments, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}
        }}
    })
    .to_string();
    let headers = [
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", name),
    ];
    post_to(addr, path, &headers, &body)
}

/// `GET /readyz`: the status line and body.
fn readyz(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("the gateway listens");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    write!(
        stream,
        "GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("sent");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("a response");
    response
}

#[test]
fn the_gateway_runs_on_its_embedded_default() {
    let (_running, addr) = gateway(&[]);
    let answer = call(&addr, "/mcp", "everything__test_simple_text");
    assert_eq!(answer["result"]["content"][0]["type"], "text", "{answer}");
    let answer = call(&addr, "/mcp/everything", "test_simple_text");
    assert_eq!(answer["result"]["content"][0]["type"], "text", "{answer}");
    assert!(readyz(&addr).starts_with("HTTP/1.1 200"));
}

#[test]
fn a_bad_config_file_is_refused_naming_the_key() {
    let config = TempFile::new("bad.yaml", "upstreams:\n  - {name: a, url: 'ftp://example'}\n");
    let out = Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["gateway", "--config", config.path()])
        .output()
        .expect("portico runs");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("upstreams[0].url"), "{stderr}");
    let config = TempFile::new(
        "bad.toml",
        "[[upstreams]]\nname = \"a\"\nbuiltin = \"everything\"\ntimeout = 5\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["gateway", "--config", config.path()])
        .output()
        .expect("portico runs");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("timeout"), "{out:?}");
}

#[test]
fn a_killed_stdio_upstream_is_restarted_and_serves_again() {
    let pids = TempFile::new("pids", "");
    let script = format!(
        "echo $$ >> '{}'; exec '{}' serve everything --stdio",
        pids.path(),
        env!("CARGO_BIN_EXE_portico")
    );
    let yaml = format!(
        "upstreams:\n  - name: child\n    command: [sh, -c, {}]\n",
        serde_json::to_string(&script).expect("a YAML string")
    );
    let config = TempFile::new("restart.yaml", &yaml);
    let (_running, addr) = gateway(&["--config", config.path()]);
    let answer = call(&addr, "/mcp", "child__test_simple_text");
    assert_eq!(answer["result"]["content"][0]["type"], "text", "{answer}");
    let first: Vec<String> = std::fs::read_to_string(&pids.0)
        .expect("pids")
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(first.len(), 1, "{first:?}");
    let killed = Command::new("kill").args(["-9", &first[0]]).status().expect("kill");
    assert!(killed.success());
    // Calls fail with a typed error while it is down, and succeed once it is back.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut failures = 0;
    loop {
        assert!(Instant::now() < deadline, "the upstream was not restarted");
        let answer = call(&addr, "/mcp", "child__test_simple_text");
        if answer.get("result").is_some() && std::fs::read_to_string(&pids.0).expect("pids").lines().count() == 2 {
            break;
        }
        if let Some(error) = answer.get("error") {
            failures += 1;
            assert_eq!(error["code"], -32050, "{answer}");
            assert_eq!(error["data"]["upstream"], "child", "{answer}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(readyz(&addr).starts_with("HTTP/1.1 200"));
    eprintln!("calls failed while the upstream restarted: {failures}");
}

#[test]
fn an_upstream_speaking_garbage_is_unavailable_with_the_reason() {
    let yaml = "upstreams:\n  - name: garbage\n    command: [sh, -c, 'while read line; do echo this is not JSON; done']\n    timeout: 1s\n";
    let config = TempFile::new("garbage.yaml", yaml);
    let (_running, addr) = gateway(&["--config", config.path()]);
    let ready = readyz(&addr);
    assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
    assert!(ready.contains("\"connected\":false"), "{ready}");
    let answer = call(&addr, "/mcp", "garbage__anything");
    assert_eq!(answer["error"]["code"], -32050, "{answer}");
}

/// `portico serve everything` on `port`, as a child the test can kill.
fn everything_on(port: u16) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["serve", "everything", "--http", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("portico starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the banner");
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
    Running(child)
}

/// A free local port (bound, then released).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding");
    listener.local_addr().expect("address").port()
}

#[test]
fn a_replica_killed_during_a_call_loop_is_routed_around_and_readmitted_after_restart() {
    let ports = [free_port(), free_port()];
    let _first = everything_on(ports[0]);
    let mut second = Some(everything_on(ports[1]));
    let yaml = format!(
        "upstreams:\n  - name: pair\n    protocol: stateless\n    replicas:\n      - {{url: 'http://127.0.0.1:{}/mcp'}}\n      - {{url: 'http://127.0.0.1:{}/mcp'}}\n    breaker: {{failures: 2, open_for: 500ms}}\n    health: {{interval: 200ms, timeout: 1s}}\n    timeout: 5s\n",
        ports[0], ports[1]
    );
    let config = TempFile::new("replicas.yaml", &yaml);
    let (_running, addr) = gateway(&["--config", config.path()]);
    let ok = |answer: &serde_json::Value| answer["result"]["content"][0]["type"] == "text";
    let readmitted = |addr: &str| {
        let ready = readyz(addr);
        let body = ready.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
        let json: serde_json::Value = serde_json::from_str(body.trim()).unwrap_or_default();
        let replicas = json["upstreams"][0]["replicas"].as_array().cloned().unwrap_or_default();
        replicas.len() == 2
            && replicas
                .iter()
                .all(|r| r["connected"] == true && r["breaker"] == "closed")
    };
    let mut failed = 0;
    let mut recovery = None;
    // A steady loop: the second replica is killed at call 20, started again at call 120.
    for i in 0..200 {
        if i == 20 {
            let mut child = second.take().expect("running");
            child.0.kill().expect("SIGKILL");
            let _ = child.0.wait();
        }
        if i == 120 {
            second = Some(everything_on(ports[1]));
            // The restarted replica is readmitted (the loop goes on meanwhile).
            let restarted = Instant::now();
            while !readmitted(&addr) {
                assert!(restarted.elapsed() < Duration::from_secs(30), "not readmitted");
                let answer = call(&addr, "/mcp", "pair__test_simple_text");
                if !ok(&answer) {
                    failed += 1;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            recovery = Some(restarted.elapsed());
        }
        if i == 100 {
            // The killed replica is out: its breaker open, or its connection gone.
            let ready = readyz(&addr);
            assert!(ready.starts_with("HTTP/1.1 200"), "the other replica serves: {ready}");
            assert!(
                ready.contains("\"breaker\":\"open\"") || ready.contains("\"connected\":false"),
                "{ready}"
            );
        }
        let answer = call(&addr, "/mcp", "pair__test_simple_text");
        if !ok(&answer) {
            failed += 1;
            assert_eq!(
                answer["error"]["code"], -32050,
                "only the gateway's own error: {answer}"
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // Calls routed to the killed replica before its breaker opened, at most: the breaker
    // opens after 2 failures, or a health check takes it out first.
    assert!(failed <= 2, "{failed} calls failed");
    assert!(readmitted(&addr), "both replicas serve at the end");
    eprintln!("failover: {failed} calls failed; the restarted replica was readmitted after {recovery:?}");
}

#[test]
fn sigterm_drains_calls_in_flight_then_stops() {
    let (mut running, addr) = gateway(&[]);
    let slow = {
        let addr = addr.clone();
        std::thread::spawn(move || {
            call_raw(
                &addr,
                "/mcp",
                "everything__slow_compute",
                serde_json::json!({"seconds": 2}),
            )
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let pid = running.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    std::thread::sleep(Duration::from_millis(300));
    let ready = readyz(&addr);
    assert!(
        ready.starts_with("HTTP/1.1 503") && ready.contains("draining"),
        "{ready}"
    );
    let answer = slow.join().expect("the call");
    assert!(answer.contains("Computed"), "the call in flight finished: {answer}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = running.0.try_wait().expect("wait") {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(Instant::now() < deadline, "the gateway did not stop after draining");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_token_minted_by_portico_token_opens_a_gateway_with_auth() {
    let secret = "dev-secret-0123456789-0123456789";
    let yaml = format!(
        "auth:\n  jwt:\n    issuer: dev\n    audience: [portico]\n    keys: [{{alg: HS256, secret: '{secret}'}}]\nupstreams:\n  - {{name: e, builtin: everything}}\n"
    );
    let config = TempFile::new("auth.yaml", &yaml);
    let (_running, addr) = gateway(&["--config", config.path()]);
    let out = Command::new(env!("CARGO_BIN_EXE_portico"))
        .args([
            "token",
            "--issuer",
            "dev",
            "--audience",
            "portico",
            "--roles",
            "admin",
            "--ttl",
            "5m",
        ])
        .env("PORTICO_TOKEN_SECRET", secret)
        .output()
        .expect("portico token");
    assert!(out.status.success(), "{out:?}");
    let token = String::from_utf8(out.stdout).expect("UTF-8").trim().to_string();
    assert_eq!(token.split('.').count(), 3, "{token}");
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "e__test_simple_text", "arguments": {},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}})
    .to_string();
    let headers = |auth: Option<String>| {
        let mut h = vec![
            ("MCP-Protocol-Version".to_string(), "2026-07-28".to_string()),
            ("Mcp-Method".to_string(), "tools/call".to_string()),
            ("Mcp-Name".to_string(), "e__test_simple_text".to_string()),
        ];
        if let Some(auth) = auth {
            h.push(("Authorization".to_string(), auth));
        }
        h
    };
    let send = |h: Vec<(String, String)>| {
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        post_to(&addr, "/mcp", &h, &body)
    };
    let refused = send(headers(None));
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    let admitted = send(headers(Some(format!("Bearer {token}"))));
    assert!(admitted.starts_with("HTTP/1.1 200"), "{admitted}");
}

/// `GET path` on `addr`: the JSON body.
fn get_json(addr: &str, path: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("the gateway listens");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("sent");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("a response");
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("{e}: {response}"))
}

#[test]
fn a_gateway_killed_during_a_call_loop_loses_no_acknowledged_audit_record() {
    use sha2::Digest as _;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let state = TempFile::new("audit.db", "");
    let state_url = format!("sqlite://{}", state.path());
    let config = TempFile::new(
        "audit.yaml",
        "upstreams:\n  - {name: e, builtin: everything, prefix: ''}\naudit: {}\n",
    );
    let (mut running, addr) = gateway_on(&["--config", config.path()], &state_url);
    // Four loops of calls, each with arguments of its own; an answered call is acknowledged.
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let loops: Vec<_> = (0..4)
        .map(|worker| {
            let (addr, acknowledged, stop) = (addr.clone(), acknowledged.clone(), stop.clone());
            std::thread::spawn(move || {
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let message = format!("call {worker}-{n}");
                    let arguments = serde_json::json!({"message": message});
                    let answered = std::panic::catch_unwind(|| call_raw(&addr, "/mcp", "echo", arguments.clone()));
                    match answered {
                        Ok(response) if response.contains(&format!("\"text\":\"{message}\"")) => {
                            acknowledged.lock().expect("the list").push(arguments);
                        }
                        // The gateway is gone.
                        _ => break,
                    }
                }
            })
        })
        .collect();
    // Killed while the loops run, after enough calls to mean something.
    let started = Instant::now();
    while acknowledged.lock().expect("the list").len() < 200 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the loops do not get answers"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    running.0.kill().expect("SIGKILL");
    let _ = running.0.wait();
    stop.store(true, Ordering::Relaxed);
    for handle in loops {
        handle.join().expect("a loop");
    }
    let acknowledged = acknowledged.lock().expect("the list").clone();

    // A new gateway on the same store: every acknowledged call has its record.
    let (_again, addr) = gateway_on(&["--config", config.path()], &state_url);
    let mut digests = std::collections::HashSet::new();
    let mut before = String::new();
    loop {
        let page = get_json(&addr, &format!("/admin/audit?kind=call&limit=1000{before}"));
        for record in page["records"].as_array().expect("records") {
            assert_eq!(record["outcome"], "ok", "{record}");
            digests.insert(record["arguments_digest"].as_str().expect("a digest").to_string());
        }
        match page["next"].as_str() {
            Some(next) => before = format!("&before={next}"),
            None => break,
        }
    }
    let missing: Vec<_> = acknowledged
        .iter()
        .filter(|arguments| {
            let digest: String = sha2::Sha256::digest(arguments.to_string().as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            !digests.contains(&digest)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged calls have no record: {missing:?}",
        missing.len(),
        acknowledged.len()
    );
    // Calls that reached the store but whose answers were cut off may be there too; no more.
    assert!(digests.len() >= acknowledged.len() && digests.len() <= acknowledged.len() + 4);
    eprintln!(
        "killed after {} acknowledged calls; {} records",
        acknowledged.len(),
        digests.len()
    );
    for suffix in ["-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", state.path()));
    }
}

#[test]
fn two_gateway_processes_on_one_redis_admit_no_more_than_a_bucket_holds() {
    // The machine's Redis, as the gateway's replica tests find it.
    let redis = std::env::var("PORTICO_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let address = redis
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap_or_default()
        .rsplit('@')
        .next()
        .unwrap_or_default()
        .to_string();
    if let Err(e) = std::net::TcpStream::connect(&address) {
        panic!("Redis is not reachable at {redis} ({e}): start it (`bash .ci/run` does), or set PORTICO_TEST_REDIS");
    }
    // Buckets in Redis are shared by rule name: a name of this run's own.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let rule = format!("processes-{}-{nanos}", std::process::id());
    const BURST: u64 = 5;
    let config = TempFile::new(
        "rate-limits.yaml",
        &format!(
            "upstreams:\n  - {{name: e, builtin: everything}}\nstate:\n  redis: '{redis}'\nrate_limits:\n  - {{name: {rule}, rate: 1/m, burst: {BURST}, methods: [tools/call]}}\n"
        ),
    );
    let (_a, a) = gateway(&["--config", config.path()]);
    let (_b, b) = gateway(&["--config", config.path()]);
    let started = Instant::now();
    let calls: Vec<_> = (0..40)
        .map(|i| {
            let addr = if i % 2 == 0 { a.clone() } else { b.clone() };
            std::thread::spawn(move || {
                let response = call_raw(&addr, "/mcp", "e__test_simple_text", serde_json::json!({}));
                (i % 2, response)
            })
        })
        .collect();
    let mut admitted = [0u64; 2];
    let mut refused = [0u64; 2];
    for call in calls {
        let (which, response) = call.join().expect("a call");
        if response.starts_with("HTTP/1.1 200") && response.contains("\"result\"") {
            admitted[which] += 1;
        } else {
            assert!(response.starts_with("HTTP/1.1 429"), "{response}");
            assert!(response.contains("-32053") && response.contains(&rule), "{response}");
            refused[which] += 1;
        }
    }
    // At most the burst, and what refilled meanwhile (one a minute, counted generously).
    let refilled = started.elapsed().as_secs() / 60 + 1;
    let total = admitted[0] + admitted[1];
    assert!(
        total <= BURST + refilled,
        "admitted {admitted:?} (total {total}) > burst {BURST} + {refilled} refilled"
    );
    assert!(total >= BURST, "the bucket was not used up: admitted {admitted:?}");
    assert!(
        refused[0] >= 20 - BURST - refilled && refused[1] >= 20 - BURST - refilled,
        "{refused:?}"
    );
}
