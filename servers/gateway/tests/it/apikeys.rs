//! API keys end to end: made through the admin API, used as bearer tokens for MCP calls with the
//! roles they carry (the policy decides with them), refused once revoked, expired, tampered with
//! or unknown — each `401` with a JSON body and no upstream call — and stored hashed.

use super::auth::{AUDIENCE, ISSUER, SECRET};
use super::*;

async fn gateway(state: &std::path::Path) -> Running {
    let yaml = format!(
        "auth:\n  jwt:\n    issuer: '{ISSUER}'\n    audience: ['{AUDIENCE}']\n    keys:\n      - {{kid: hs, alg: HS256, secret: '{SECRET}'}}\n  required_scopes: [mcp]\n\
         upstreams:\n  - {{name: e, builtin: everything}}\n\
         policy:\n  roles:\n    reader:\n      grants:\n        - allow: {{tools: [echo]}}\n\
         state:\n  url: 'sqlite://{}'\naudit: {{}}\n",
        state.display()
    );
    Running::start(&yaml).await
}

/// A 2026-07-28 `tools/call` of `tool` with `authorization`: the status and the JSON body.
async fn call(gateway: &Running, authorization: &str, tool: &str) -> (u16, serde_json::Value) {
    gateway
        .post_tool_call("/mcp", Some(authorization), tool, json!({"message": "hi"}))
        .await
}

async fn admin(
    gateway: &Running,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::new().request(method, format!("{}{path}", gateway.base));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("sent");
    let status = response.status().as_u16();
    let text = response.text().await.expect("a body");
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_made_used_with_their_roles_and_revoked() {
    let state = temp_path("keys.db");
    let gateway = gateway(&state).await;
    let (status, made) = admin(
        &gateway,
        reqwest::Method::POST,
        "/admin/api-keys",
        Some(json!({"name": "nightly", "roles": ["reader"], "scopes": ["mcp"]})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let key = made["key"].as_str().expect("the key, this once").to_string();
    let id = made["id"].as_str().expect("an id").to_string();
    assert!(key.starts_with(&format!("pk_{id}_")), "{key}");
    assert_eq!(made["subject"], "apikey:nightly");

    // Used as a bearer token, with its role: the policy lets it call echo only.
    let bearer = format!("Bearer {key}");
    let (status, answer) = call(&gateway, &bearer, "e__echo").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["result"]["content"][0]["text"], "hi", "{answer}");
    let (_, hidden) = call(&gateway, &bearer, "e__test_simple_text").await;
    assert_eq!(hidden["error"]["code"], -32602, "{hidden}");

    // Listed without its secret; stored hashed.
    let (status, listed) = admin(&gateway, reqwest::Method::GET, "/admin/api-keys", None).await;
    assert_eq!(status, 200);
    assert_eq!(listed["api_keys"][0]["id"], id.as_str());
    let secret = key.splitn(3, '_').nth(2).expect("a secret");
    assert!(!listed.to_string().contains(secret), "{listed}");
    let file = std::fs::read(&state).expect("the state file");
    assert!(
        !String::from_utf8_lossy(&file).contains(secret),
        "the secret is not stored"
    );

    // Tampered with, unknown, or a key lacking a required scope: 401/403 with a JSON body.
    let tampered = format!("Bearer {}x", &key[..key.len() - 1]);
    for (authorization, why) in [
        (tampered.as_str(), "secret is wrong"),
        ("Bearer pk_000000000000_AAAA", "no such key"),
        ("Bearer pk_nothex", "not of the form"),
    ] {
        let (status, body) = call(&gateway, authorization, "e__echo").await;
        assert_eq!(status, 401, "{authorization}: {body}");
        assert!(
            body["error_description"].as_str().is_some_and(|d| d.contains(why)),
            "{body}"
        );
    }
    let (_, scopeless) = admin(
        &gateway,
        reqwest::Method::POST,
        "/admin/api-keys",
        Some(json!({"name": "no-scope"})),
    )
    .await;
    let (status, body) = call(
        &gateway,
        &format!("Bearer {}", scopeless["key"].as_str().unwrap_or_default()),
        "e__echo",
    )
    .await;
    assert_eq!(status, 403, "{body}");

    // Revoked: refused at once on this replica; revoking twice is a 404.
    let (status, _) = admin(
        &gateway,
        reqwest::Method::DELETE,
        &format!("/admin/api-keys/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, body) = call(&gateway, &bearer, "e__echo").await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("revoked")),
        "{body}"
    );
    let (status, body) = admin(
        &gateway,
        reqwest::Method::DELETE,
        &format!("/admin/api-keys/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");

    // Expiring keys stop working; bad requests are named.
    let (_, brief) = admin(
        &gateway,
        reqwest::Method::POST,
        "/admin/api-keys",
        Some(json!({"name": "brief", "roles": ["reader"], "scopes": ["mcp"], "ttl": "1ms"})),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (status, body) = call(
        &gateway,
        &format!("Bearer {}", brief["key"].as_str().unwrap_or_default()),
        "e__echo",
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("expired")),
        "{body}"
    );
    let (status, body) = admin(
        &gateway,
        reqwest::Method::POST,
        "/admin/api-keys",
        Some(json!({"name": "x", "colour": "red"})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("colour")), "{body}");

    // Every change is in the audit trail.
    let (_, trail) = gateway.get_json("/admin/audit?kind=admin").await;
    let methods: Vec<&str> = trail["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["method"].as_str())
        .collect();
    assert!(
        methods.contains(&format!("DELETE /admin/api-keys/{id}").as_str()),
        "{methods:?}"
    );
    assert!(
        methods.contains(&format!("POST /admin/api-keys/{id}").as_str()),
        "{methods:?}"
    );
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", state.display()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_auth_there_are_no_keys() {
    let gateway = Running::start("upstreams:\n  - {name: e, builtin: everything}\n").await;
    let (status, body) = admin(
        &gateway,
        reqwest::Method::POST,
        "/admin/api-keys",
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("API keys are off")),
        "{body}"
    );
}
