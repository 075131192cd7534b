//! The audit trail: calls, refusals and admin changes recorded with who, what, the arguments'
//! digest, outcome, latency and correlation id; read back through `GET /admin/audit` with its
//! filters and pages; on the embedded SQLite store and on PostgreSQL; and `on_failure` when
//! the store is gone. (A gateway killed during a call loop: servers/portico/tests/it/gateway.rs.)

use sha2::{Digest, Sha256};

use super::auth::{AUDIENCE, ISSUER, SECRET, claims, hs256};
use super::replicas::Database;
use super::*;

/// A gateway with auth (HS256 tokens) and `audit` (`audit_yaml`), its state at `state_url`
/// (or a file of its own).
async fn audited(audit_yaml: &str, state_url: Option<&str>) -> Running {
    let state = state_url.map_or_else(String::new, |url| format!("state:\n  url: '{url}'\n"));
    let yaml = format!(
        "auth:\n  jwt:\n    issuer: '{ISSUER}'\n    audience: ['{AUDIENCE}']\n    keys:\n      - {{kid: hs, alg: HS256, secret: '{SECRET}'}}\n\
         upstreams:\n  - {{name: e, builtin: everything}}\n{audit_yaml}{state}"
    );
    Running::start(&yaml).await
}

/// A 2026-07-28 `tools/call` as `subject` (no token: `None`): the status and JSON body.
async fn call_as(
    gateway: &Running,
    subject: Option<&str>,
    tool: &str,
    arguments: serde_json::Value,
) -> (u16, serde_json::Value) {
    let authorization =
        subject.map(|subject| format!("Bearer {}", hs256("hs", &claims(|c| c["sub"] = json!(subject)))));
    gateway
        .post_tool_call("/mcp", authorization.as_deref(), tool, arguments)
        .await
}

fn sha256_hex(json: &serde_json::Value) -> String {
    Sha256::digest(json.to_string().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The records `GET /admin/audit?{query}` returns, and its `next`.
async fn records(gateway: &Running, query: &str) -> (Vec<serde_json::Value>, serde_json::Value) {
    let (status, body) = gateway.get_json(&format!("/admin/audit?{query}")).await;
    assert_eq!(status, 200, "{body}");
    (
        body["records"].as_array().expect("records").clone(),
        body["next"].clone(),
    )
}

/// Calls, a refusal and an admin change on `gateway`, and what the trail says of them.
async fn calls_refusals_and_changes_are_recorded(gateway: &Running) {
    let (status, answer) = call_as(gateway, Some("ada"), "e__echo", json!({"message": "audited"})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["result"]["content"][0]["text"], "audited", "{answer}");
    let (_, failed) = call_as(gateway, Some("bob"), "e__test_error_handling", json!({})).await;
    assert_eq!(failed["result"]["isError"], true, "{failed}");
    let (status, refused) = call_as(gateway, None, "e__echo", json!({"message": "no token"})).await;
    assert_eq!(status, 401, "{refused}");
    let put = reqwest::Client::new()
        .put(format!("{}/admin/virtual-servers/picked", gateway.base))
        .json(&json!({"name": "picked", "tools": [{"upstream": "e", "tool": "echo"}]}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(put.status().as_u16(), 201);

    // The refusal is recorded without waiting for its answer: wait for it here.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let all = loop {
        let (all, _) = records(gateway, "").await;
        if all.len() >= 4 || std::time::Instant::now() > deadline {
            break all;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(all.len(), 4, "{all:#?}");
    let ids: Vec<&str> = all.iter().map(|r| r["id"].as_str().expect("an id")).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");

    let (calls, _) = records(gateway, "kind=call&principal=ada").await;
    let [echo] = calls.as_slice() else {
        panic!("one call by ada: {calls:#?}")
    };
    assert_eq!(echo["method"], "tools/call");
    assert_eq!(echo["target"], "echo", "the upstream's name of the tool");
    assert_eq!(echo["upstream"], "e");
    assert_eq!(echo["outcome"], "ok");
    assert_eq!(echo["arguments_digest"], sha256_hex(&json!({"message": "audited"})));
    assert!(echo["latency_us"].as_i64().is_some_and(|us| us > 0), "{echo}");
    assert_eq!(echo["correlation_id"].as_str().map(str::len), Some(24), "{echo}");
    assert!(echo.get("error_code").is_none_or(serde_json::Value::is_null));

    let (bobs, _) = records(gateway, "principal=bob").await;
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0]["outcome"], "tool_error");

    let (denials, _) = records(gateway, "kind=denial").await;
    assert_eq!(denials.len(), 1, "{denials:#?}");
    assert_eq!(denials[0]["method"], "POST /mcp");
    assert_eq!(denials[0]["outcome"], "denied");
    assert!(denials[0]["principal"].is_null());
    assert!(
        denials[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("no bearer token")),
        "{denials:#?}"
    );

    let (changes, _) = records(gateway, "kind=admin").await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["method"], "PUT /admin/virtual-servers/picked");
    assert_eq!(changes[0]["principal"], "admin");
    assert_eq!(changes[0]["outcome"], "ok");

    // Pages: two of one record each, then the rest.
    let (first, next) = records(gateway, "limit=1").await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["id"], all[0]["id"]);
    let before = next.as_str().expect("a next page");
    let (second, _) = records(gateway, &format!("limit=1&before={before}")).await;
    assert_eq!(second[0]["id"], all[1]["id"]);
    let (rest, last) = records(
        gateway,
        &format!("before={}", all[1]["id"].as_str().unwrap_or_default()),
    )
    .await;
    assert_eq!(rest.len(), 2);
    assert!(last.is_null(), "the last page has no next");

    // By time: every record since the epoch, none from the far future.
    assert_eq!(records(gateway, "since_ms=0").await.0.len(), 4);
    assert!(records(gateway, "since_ms=99999999999999").await.0.is_empty());

    // A bad filter is a 400 with a JSON body.
    let (status, body) = gateway.get_json("/admin/audit?kind=everything").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("kind")), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trail_on_the_embedded_store() {
    let gateway = audited("audit: {}\n", None).await;
    calls_refusals_and_changes_are_recorded(&gateway).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trail_on_postgresql() {
    let database = Database::create().await;
    {
        let gateway = audited("audit: {}\n", Some(&database.url)).await;
        calls_refusals_and_changes_are_recorded(&gateway).await;
    }
    database.drop_it().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_its_store_a_call_is_withheld_or_answered_as_on_failure_says() {
    for (policy, withheld) in [("deny", true), ("allow", false)] {
        let database = Database::create().await;
        let gateway = audited(&format!("audit: {{on_failure: {policy}}}\n"), Some(&database.url)).await;
        let (_, answer) = call_as(&gateway, Some("ada"), "e__echo", json!({"message": "before"})).await;
        assert_eq!(answer["result"]["content"][0]["text"], "before", "{answer}");
        // The store goes away under the gateway.
        database.drop_it().await;
        let (status, answer) = call_as(&gateway, Some("ada"), "e__echo", json!({"message": "after"})).await;
        assert_eq!(status, 200, "{answer}");
        if withheld {
            assert_eq!(answer["error"]["code"], -32054, "{policy}: {answer}");
            assert!(
                answer["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("audit trail is unavailable")),
                "{answer}"
            );
        } else {
            assert_eq!(answer["result"]["content"][0]["text"], "after", "{policy}: {answer}");
        }
        // Reading the trail says why it cannot.
        let (status, body) = gateway.get_json("/admin/audit").await;
        assert_eq!(status, 503, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_audit_the_trail_is_off() {
    let gateway = Running::start("upstreams:\n  - {name: e, builtin: everything}\n").await;
    let (status, body) = gateway.get_json("/admin/audit").await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("audit")), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_use_the_policy_refuses_is_recorded_with_the_rule() {
    let policy = "policy:\n  roles:\n    reader:\n      grants:\n        - allow: {tools: [echo]}\naudit: {}\n";
    let gateway = audited(policy, None).await;
    let (_, allowed) = call_as(&gateway, Some("ada"), "e__echo", json!({"message": "hi"})).await;
    assert_eq!(allowed["result"]["content"][0]["text"], "hi", "{allowed}");
    let (_, refused) = call_as(&gateway, Some("ada"), "e__test_error_handling", json!({})).await;
    assert_eq!(refused["error"]["code"], -32602, "refused as unknown: {refused}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let denials = loop {
        let (denials, _) = records(&gateway, "kind=denial").await;
        if !denials.is_empty() || std::time::Instant::now() > deadline {
            break denials;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let [denial] = denials.as_slice() else {
        panic!("one denial: {denials:#?}")
    };
    assert_eq!(denial["principal"], "ada");
    assert_eq!(denial["method"], "tools/call");
    assert_eq!(denial["target"], "test_error_handling");
    assert_eq!(denial["upstream"], "e");
    assert_eq!(denial["detail"], "policy: no matching allow (roles: reader)");
    let (calls, _) = records(&gateway, "kind=call").await;
    assert_eq!(calls.len(), 1, "only the allowed call reached an upstream: {calls:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trail_recovers_when_postgresql_returns() {
    let database = Database::create().await;
    // The database's URL with a proxy the test takes down in place of the server.
    let (server, name) = database
        .url
        .trim_start_matches("postgres://")
        .split_once('/')
        .expect("host/db");
    let (user, host) = server.rsplit_once('@').expect("user@host");
    let proxy = Proxy::start(host).await;
    let url = format!("postgres://{user}@{}/{name}", proxy.address);
    {
        let gateway = audited("audit: {}\n", Some(&url)).await;
        let (_, answer) = call_as(&gateway, Some("ada"), "e__echo", json!({"message": "one"})).await;
        assert_eq!(answer["result"]["content"][0]["text"], "one", "{answer}");

        proxy.down();
        let (status, answer) = call_as(&gateway, Some("ada"), "e__echo", json!({"message": "two"})).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            answer["error"]["code"], -32054,
            "withheld while the store is away: {answer}"
        );
        let (status, body) = gateway.get_json("/admin/audit").await;
        assert_eq!(status, 503, "{body}");

        proxy.up();
        // New connections are made as they are needed: the next call is recorded again.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (_, answer) = call_as(&gateway, Some("ada"), "e__echo", json!({"message": "three"})).await;
            if answer["result"]["content"][0]["text"] == "three" {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "not recovered: {answer}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (calls, _) = records(&gateway, "kind=call&outcome=ok").await;
        let digests: Vec<&str> = calls.iter().filter_map(|r| r["arguments_digest"].as_str()).collect();
        assert!(
            digests.contains(&sha256_hex(&json!({"message": "one"})).as_str()),
            "{calls:#?}"
        );
        assert!(
            digests.contains(&sha256_hex(&json!({"message": "three"})).as_str()),
            "{calls:#?}"
        );
    }
    drop(proxy);
    database.drop_it().await;
}
