//! Integration tests of the peer engine: two peers wired back to back, and raw frames fed to
//! one peer with its answers read off its outbound channel.

mod client;
mod frames;
mod pair;
mod server;
mod skills;
mod tasks;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use portico_core::{ErrorObject, JsonText, Outbound, Peer, PeerConfig, PeerHandle, RequestContext, Service};
use serde_json::value::RawValue;
use tokio::sync::{Notify, mpsc};

/// A test service with a method per behaviour under test.
#[derive(Default)]
pub struct TestService {
    /// Set when a `slow` handler saw its cancellation.
    pub saw_cancel: AtomicBool,
    /// Signalled with it.
    pub cancel_seen: Notify,
    /// Handlers running now, and the most seen at once.
    pub active: AtomicUsize,
    /// The most handlers seen at once.
    pub max_active: AtomicUsize,
    /// Notifications received: (method, params).
    pub notes: std::sync::Mutex<Vec<(String, String)>>,
    /// Signalled on each notification.
    pub noted: Notify,
}

/// A value a transport attaches to requests (read by the `whoami` method).
#[derive(Debug, Clone, PartialEq)]
pub struct Caller(pub String);

/// Records that a `slow` handler ended (it only ends by cancellation).
struct CancelGuard<'a>(&'a TestService);

impl Drop for CancelGuard<'_> {
    fn drop(&mut self) {
        self.0.saw_cancel.store(true, Ordering::SeqCst);
        self.0.cancel_seen.notify_waiters();
    }
}

fn raw(text: &str) -> Box<RawValue> {
    RawValue::from_string(text.to_string()).expect("valid JSON")
}

impl Service for TestService {
    async fn request(
        &self,
        cx: RequestContext,
        method: String,
        params: Option<Box<RawValue>>,
    ) -> Result<JsonText, ErrorObject> {
        let answer: Result<Box<RawValue>, ErrorObject> = {
            match method.as_str() {
                "echo" => Ok(params.unwrap_or_else(|| raw("null"))),
                "slow" => {
                    // Runs until cancelled: the peer either lets it see the cancellation or drops
                    // it; the guard notices both.
                    let _guard = CancelGuard(self);
                    cx.cancelled().await;
                    Ok(raw("\"cancelled\""))
                }
                "panic" => panic!("boom"),
                "progress" => {
                    for i in 1..=3 {
                        cx.progress(f64::from(i), Some(3.0), Some("step"))
                            .await
                            .map_err(ErrorObject::internal)?;
                    }
                    Ok(raw("\"done\""))
                }
                "count" => {
                    let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
                    self.max_active.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    self.active.fetch_sub(1, Ordering::SeqCst);
                    Ok(raw("true"))
                }
                "ask" => {
                    let answer: serde_json::Value = cx
                        .peer()
                        .request("ping_back", &serde_json::json!({"q": 1}))
                        .await
                        .map_err(ErrorObject::internal)?;
                    Ok(serde_json::value::to_raw_value(&serde_json::json!({"client said": answer})).expect("JSON"))
                }
                "ping_back" => Ok(raw("\"pong\"")),
                // What the transport attached: the `Caller` extension's name, or `null`.
                "whoami" => Ok(raw(&match cx.extensions().get::<Caller>() {
                    Some(Caller(name)) => format!("{name:?}"),
                    None => "null".into(),
                })),
                "bad_params" => match params.as_deref().map(|p| serde_json::from_str::<u32>(p.get())) {
                    Some(Ok(n)) => Ok(raw(&n.to_string())),
                    _ => Err(ErrorObject::invalid_params("`params` must be a non-negative integer")),
                },
                other => Err(ErrorObject::method_not_found(other)),
            }
        };
        answer.map(JsonText::from)
    }

    async fn notification(&self, _peer: PeerHandle, method: String, params: Option<Box<RawValue>>) {
        let params = params.map(|p| p.get().to_string()).unwrap_or_default();
        self.notes.lock().expect("lock").push((method, params));
        self.noted.notify_waiters();
    }
}

/// A peer serving a fresh [`TestService`], and the receiving end of its outbound channel.
pub fn lone_peer(config: PeerConfig) -> (Peer<Arc<TestService>>, Arc<TestService>, mpsc::Receiver<Outbound>) {
    let service = Arc::new(TestService::default());
    let (tx, rx) = mpsc::channel(64);
    (Peer::new(service.clone(), config, tx), service, rx)
}

/// Two peers wired back to back: (client, client's service, server, server's service).
pub type Wired = (
    Peer<Arc<TestService>>,
    Arc<TestService>,
    Peer<Arc<TestService>>,
    Arc<TestService>,
);

/// Wires two peers back to back.
pub fn wired(config: PeerConfig) -> Wired {
    let (client, client_service, mut client_out) = lone_peer(config.clone());
    let (server, server_service, mut server_out) = lone_peer(config);
    let to_server = server.clone();
    tokio::spawn(async move {
        while let Some(frame) = client_out.recv().await {
            to_server.receive(&frame.text).await;
        }
    });
    let to_client = client.clone();
    tokio::spawn(async move {
        while let Some(frame) = server_out.recv().await {
            to_client.receive(&frame.text).await;
        }
    });
    (client, client_service, server, server_service)
}

/// Waits (bounded, so a bug fails instead of hanging) for `notify`, unless `done` already holds.
pub async fn wait_for(notify: &Notify, done: impl Fn() -> bool) {
    let wait = async {
        while !done() {
            let notified = notify.notified();
            if done() {
                break;
            }
            notified.await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .expect("the awaited event never came");
}

/// The MCP spec inputs: `MCP_SPEC_DIR`, else `../shared/mcp-spec` beside the repository.
pub fn spec_dir() -> std::path::PathBuf {
    match std::env::var_os("MCP_SPEC_DIR") {
        Some(dir) => dir.into(),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/mcp-spec"),
    }
}

/// A revision's official schema.
pub fn schema(revision: &str) -> serde_json::Value {
    let path = spec_dir().join(revision).join("schema.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; set MCP_SPEC_DIR to the MCP spec folder", path.display()));
    serde_json::from_str(&text).expect("schema.json is JSON")
}
