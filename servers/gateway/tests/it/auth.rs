//! The gateway as an OAuth 2.1 resource server: the JWT attack set, each refused with `401` and
//! a JSON body before any upstream is called; valid tokens admitted; the protected-resource
//! metadata. The RSA key pair in `keys/` was made for these tests alone (`openssl genrsa 2048`).

use jsonwebtoken::{Algorithm, EncodingKey, Header};

use super::*;

pub(super) const SECRET: &str = "a-test-secret-of-enough-length-0123456789";
pub(super) const ISSUER: &str = "https://issuer.test";
pub(super) const AUDIENCE: &str = "https://gateway.test/mcp";
const RSA_PRIVATE: &str = include_str!("keys/rsa-private.pem");
const RSA_PUBLIC: &str = include_str!("keys/rsa-public.pem");

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs() as i64
}

/// Valid claims, changed by `edit`.
pub(super) fn claims(edit: impl FnOnce(&mut serde_json::Value)) -> serde_json::Value {
    let mut claims = json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "ada", "exp": now() + 600, "nbf": now() - 10,
        "iat": now(), "scope": "mcp", "roles": ["reader"],
    });
    edit(&mut claims);
    claims
}

pub(super) fn hs256(kid: &str, claims: &serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(SECRET.as_bytes())).expect("signed")
}

fn rs256(claims: &serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rsa".into());
    let key = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).expect("the test key");
    jsonwebtoken::encode(&header, claims, &key).expect("signed")
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

async fn gateway() -> Running {
    let yaml = format!(
        "auth:\n  jwt:\n    issuer: '{ISSUER}'\n    audience: ['{AUDIENCE}']\n    leeway: 5s\n    keys:\n      - {{kid: hs, alg: HS256, secret: '{SECRET}'}}\n      - {{kid: rsa, alg: RS256, pem: {}}}\n  authorization_servers: ['{ISSUER}']\n  scopes_supported: [mcp]\n  required_scopes: [mcp]\nupstreams:\n  - {{name: e, builtin: everything}}\n",
        serde_json::to_string(RSA_PUBLIC).expect("a YAML string")
    );
    Running::start(&yaml).await
}

/// Calls a tool with `authorization`: the status, `WWW-Authenticate`, and the JSON body.
async fn call_with(gateway: &Running, authorization: Option<&str>) -> (u16, String, serde_json::Value) {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "e__test_simple_text", "arguments": {},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}});
    let mut request = reqwest::Client::new()
        .post(format!("{}/mcp", gateway.base))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "e__test_simple_text")
        .body(body.to_string());
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    let response = request.send().await.expect("sent");
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = serde_json::from_str(&response.text().await.expect("body")).expect("a JSON body");
    (status, challenge, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jwt_attack_set_is_refused_before_any_upstream_call() {
    let gateway = gateway().await;
    let valid = claims(|_| {});
    let mut attacks: Vec<(&str, String)> = Vec::new();
    let header_none = b64(br#"{"alg":"none","typ":"JWT","kid":"hs"}"#);
    attacks.push((
        "alg none",
        format!("{header_none}.{}.", b64(valid.to_string().as_bytes())),
    ));
    // HS256 with the RSA public key as the HMAC secret, naming the RSA key.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rsa".into());
    let confused =
        jsonwebtoken::encode(&header, &valid, &EncodingKey::from_secret(RSA_PUBLIC.as_bytes())).expect("signed");
    attacks.push(("HS256 signed with the RSA public key", confused));
    attacks.push(("expired", hs256("hs", &claims(|c| c["exp"] = json!(now() - 60)))));
    attacks.push(("not yet valid", hs256("hs", &claims(|c| c["nbf"] = json!(now() + 600)))));
    attacks.push((
        "wrong issuer",
        hs256("hs", &claims(|c| c["iss"] = json!("https://evil.test"))),
    ));
    attacks.push((
        "wrong audience",
        hs256("hs", &claims(|c| c["aud"] = json!("https://other.test/mcp"))),
    ));
    attacks.push(("unknown kid", hs256("nobody", &valid)));
    let good = hs256("hs", &valid);
    let mut parts: Vec<&str> = good.split('.').collect();
    let tampered_payload = b64(claims(|c| c["sub"] = json!("root")).to_string().as_bytes());
    parts[1] = &tampered_payload;
    attacks.push(("tampered payload", parts.join(".")));
    attacks.push((
        "oversized",
        hs256("hs", &claims(|c| c["pad"] = json!("x".repeat(9000)))),
    ));
    attacks.push(("not a JWT", "hello".to_string()));
    for (what, token) in &attacks {
        let (status, challenge, body) = call_with(&gateway, Some(&format!("Bearer {token}"))).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(body["error"], "invalid_token", "{what}: {body}");
        assert!(challenge.contains("error=\"invalid_token\""), "{what}: {challenge}");
        assert!(challenge.contains("resource_metadata=\"http://"), "{what}: {challenge}");
    }
    // No token at all.
    let (status, challenge, body) = call_with(&gateway, None).await;
    assert_eq!(status, 401, "{body}");
    assert!(challenge.starts_with("Bearer resource_metadata="), "{challenge}");
    // A valid token without the required scope.
    let (status, challenge, body) = call_with(
        &gateway,
        Some(&format!(
            "Bearer {}",
            hs256("hs", &claims(|c| c["scope"] = json!("other")))
        )),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        challenge.contains("insufficient_scope") && challenge.contains("scope=\"mcp\""),
        "{challenge}"
    );
    // None of them reached an upstream.
    let metrics = reqwest::get(format!("{}/metrics", gateway.base))
        .await
        .expect("GET")
        .text()
        .await
        .expect("body");
    assert!(!metrics.contains("portico_gateway_requests_total{"), "{metrics}");

    // Valid tokens of both keys go through.
    for token in [hs256("hs", &valid), rs256(&valid)] {
        let (status, _, body) = call_with(&gateway, Some(&format!("Bearer {token}"))).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["result"]["content"][0]["type"], "text", "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_protected_resource_metadata_says_where_tokens_come_from() {
    let gateway = gateway().await;
    let (status, metadata) = gateway.get_json("/.well-known/oauth-protected-resource").await;
    assert_eq!(status, 200);
    assert_eq!(metadata["authorization_servers"], json!([ISSUER]));
    assert_eq!(metadata["scopes_supported"], json!(["mcp"]));
    assert!(
        metadata["resource"].as_str().is_some_and(|r| r.ends_with("/mcp")),
        "{metadata}"
    );
    // Health and metrics stay open; the admin API has its own rule.
    let (status, _) = gateway.get_json("/healthz").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_core_gets_through_with_a_token_in_either_generation() {
    let gateway = gateway().await;
    let url = format!("{}/mcp", gateway.base);
    let mut headers = axum::http::HeaderMap::new();
    let token = format!("Bearer {}", hs256("hs", &claims(|_| {})));
    headers.insert("authorization", token.parse().expect("a header"));
    for protocol in [portico_core::client::Protocol::Stateless, SESSION] {
        let client = Client::builder(wire::Implementation::new("t", "1"))
            .protocol(protocol)
            .connect(|service| {
                connect(
                    &url,
                    service,
                    HttpClientConfig {
                        headers: headers.clone(),
                        ..HttpClientConfig::default()
                    },
                )
            })
            .await
            .expect("connect with a token");
        client.call_tool("e__test_simple_text", json!({})).await.expect("call");
    }
}
