//! Two replicas of one gateway — the same configuration, one state store — on the embedded
//! SQLite store, and on the machine's PostgreSQL with Redis: a session started on one goes on
//! on the other, and an admin change made on one is served by the other (and by a replica
//! started later).
//!
//! PostgreSQL (127.0.0.1:5432, user `postgres`, trust) and Redis (127.0.0.1:6379) must be
//! running: `bash .ci/run` starts them; on another machine, start them or point
//! `PORTICO_TEST_POSTGRES` (a `postgres://` URL of a user allowed to create databases) and
//! `PORTICO_TEST_REDIS` (a `redis://` URL) at yours. A test that cannot reach them fails
//! saying so.

use portico_core::client::Protocol;
use portico_gateway::config::StateConfig;

use super::*;

const CONFIG: &str = "upstreams:\n  - {name: e, builtin: everything}\n";

/// A replica of the gateway on `state`.
async fn replica(state: &StateConfig) -> Running {
    let mut config = Config::parse(CONFIG, false).expect("config");
    config.state = state.clone();
    Running::serve(config).await
}

/// Posts a JSON-RPC message to `base`'s `/mcp` in session `session` (when given): the status,
/// the session id the answer names, and the JSON-RPC messages of the body (JSON or SSE).
async fn post(
    base: &str,
    session: Option<&str>,
    body: serde_json::Value,
) -> (u16, Option<String>, Vec<serde_json::Value>) {
    let mut request = reqwest::Client::new()
        .post(format!("{base}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .body(body.to_string());
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    let response = request.send().await.expect("sent");
    let status = response.status().as_u16();
    let id = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = response.text().await.expect("body");
    let messages = if text.trim_start().starts_with('{') {
        vec![serde_json::from_str(&text).expect("JSON")]
    } else {
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter(|d| !d.trim().is_empty())
            .map(|d| serde_json::from_str(d.trim()).expect("an SSE data line of JSON"))
            .collect()
    };
    (status, id, messages)
}

/// The answer (the message with `id`) among `messages`.
fn answer(messages: &[serde_json::Value], id: i64) -> &serde_json::Value {
    messages
        .iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("no answer {id} in {messages:?}"))
}

async fn session_moves_between_replicas(a: &Running, b: &Running) {
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let (status, session, messages) = post(&a.base, None, init).await;
    assert_eq!(status, 200, "{messages:?}");
    assert_eq!(answer(&messages, 1)["result"]["protocolVersion"], "2025-11-25");
    let session = session.expect("a session id");
    let (status, _, _) = post(
        &a.base,
        Some(&session),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(status, 202);

    // The next requests land on the other replica.
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "e__test_simple_text", "arguments": {}}});
    let (status, _, messages) = post(&b.base, Some(&session), call).await;
    assert_eq!(status, 200, "{messages:?}");
    let result = &answer(&messages, 2)["result"];
    assert_eq!(result["content"][0]["type"], "text", "{messages:?}");
    assert!(
        result.get("resultType").is_none(),
        "answered at the session's revision: {result}"
    );
    let level = json!({"jsonrpc": "2.0", "id": 3, "method": "logging/setLevel", "params": {"level": "error"}});
    let (status, _, messages) = post(&b.base, Some(&session), level).await;
    assert_eq!((status, &answer(&messages, 3)["result"]), (200, &json!({})));
    // A session id nobody started is still unknown.
    let (status, _, _) = post(
        &b.base,
        Some("0123456789abcdef0123456789abcdef"),
        json!({"jsonrpc": "2.0", "id": 4, "method": "ping"}),
    )
    .await;
    assert_eq!(status, 404);
}

async fn admin_changes_reach_every_replica(a: &Running, b: &Running, state: &StateConfig) {
    let response = reqwest::Client::new()
        .put(format!("{}/admin/upstreams/extra", a.base))
        .header("content-type", "application/json")
        .body(json!({"name": "extra", "builtin": "everything"}).to_string())
        .send()
        .await
        .expect("PUT");
    assert_eq!(response.status().as_u16(), 201);
    let client = b.client("/mcp", Protocol::Stateless, ()).await;
    within("the change reaching the other replica", async {
        loop {
            let names: Vec<String> = client
                .list_all_tools()
                .await
                .expect("tools")
                .into_iter()
                .map(|t| t.name)
                .collect();
            if names.contains(&"extra__test_simple_text".to_string()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    client
        .call_tool("extra__test_simple_text", json!({}))
        .await
        .expect("served by the other replica");
    // A replica started afterwards has it too: the change is in the store, not in memory.
    let c = replica(state).await;
    let (_, upstreams) = c.get_json("/admin/upstreams").await;
    let names: Vec<&str> = upstreams["upstreams"]
        .as_array()
        .expect("upstreams")
        .iter()
        .filter_map(|u| u["config"]["name"].as_str())
        .collect();
    assert_eq!(names, ["e", "extra"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_the_embedded_store_share_sessions_and_admin_changes() {
    let shared = temp_path("shared.db");
    let state = StateConfig {
        url: format!("sqlite://{}", shared.display()),
        redis: None,
        poll_interval: Duration::from_millis(200),
    };
    {
        let (a, b) = (replica(&state).await, replica(&state).await);
        session_moves_between_replicas(&a, &b).await;
        admin_changes_reach_every_replica(&a, &b, &state).await;
    }
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", shared.display()));
    }
}

/// A fresh PostgreSQL database for one test, dropped when done.
pub(super) struct Database {
    admin: sqlx::AnyPool,
    name: String,
    pub(super) url: String,
}

impl Database {
    pub(super) async fn create() -> Self {
        sqlx::any::install_default_drivers();
        let server =
            std::env::var("PORTICO_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        let admin = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&format!("{}/postgres", server.trim_end_matches('/')))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is not reachable at {server} ({e}): start it (`bash .ci/run` does), or set \
                     PORTICO_TEST_POSTGRES to a postgres:// URL of a user that may create databases"
                )
            });
        let name = format!("portico_it_{}_{}", std::process::id(), rand_suffix());
        // The name is ours (digits and underscores): safe to put in the statement.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .expect("creating the test database");
        let url = format!("{}/{name}", server.trim_end_matches('/'));
        Self { admin, name, url }
    }

    pub(super) async fn drop_it(self) {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&self.admin)
        .await;
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64 % 1_000_000_007)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_postgresql_and_redis_share_sessions_and_admin_changes() {
    let redis = std::env::var("PORTICO_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let address = redis
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    if let Err(e) = tokio::net::TcpStream::connect(&address).await {
        panic!("Redis is not reachable at {redis} ({e}): start it (`bash .ci/run` does), or set PORTICO_TEST_REDIS");
    }
    let database = Database::create().await;
    // Polling is slow here: the other replica hears of the change from Redis.
    let state = StateConfig {
        url: database.url.clone(),
        redis: Some(redis),
        poll_interval: Duration::from_secs(600),
    };
    {
        let (a, b) = (replica(&state).await, replica(&state).await);
        session_moves_between_replicas(&a, &b).await;
        admin_changes_reach_every_replica(&a, &b, &state).await;
    }
    database.drop_it().await;
}
