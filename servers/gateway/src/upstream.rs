//! One upstream MCP server: its connection — made, watched, and made again with backoff when it
//! drops — and the snapshot of what it serves, kept current from its change notifications.
//! Calls go through [`crate::relay`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use portico_core::client::{Client, ClientConfig, ClientHandler, Notification, Protocol, Subscription, memory};
use portico_core::server::Change;
use portico_core::{PeerConfig, server::Era};
use portico_protocol::v2026_07_28 as wire;
use portico_transport::http::client::HttpClientConfig;
use portico_transport::http::legacy_sse_client::LegacySseClientConfig;
use portico_transport::http::ws_client::WsClientConfig;
use portico_transport::stdio::StdioConfig;
use tokio_util::sync::CancellationToken;

use crate::config::{ProtocolChoice, TransportKind, UpstreamConfig};

/// What an upstream serves, as last listed.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Its tools.
    pub tools: Vec<wire::Tool>,
    /// Its resources.
    pub resources: Vec<wire::Resource>,
    /// Its resource templates.
    pub templates: Vec<wire::ResourceTemplate>,
    /// Its prompts.
    pub prompts: Vec<wire::Prompt>,
    /// Whether it offers completion.
    pub completions: bool,
}

/// Where an upstream's changes are announced (the gateway's endpoints).
pub type Announce = Arc<dyn Fn(&str, Change) + Send + Sync>;

/// An upstream: its configuration, its connection, its snapshot.
pub struct Upstream {
    config: UpstreamConfig,
    state: Mutex<State>,
    announce: Announce,
    stop: CancellationToken,
}

#[derive(Default)]
struct State {
    client: Option<Client>,
    snapshot: Arc<Snapshot>,
    /// Why the last connection attempt failed or the connection ended.
    last_error: Option<String>,
    /// URIs watched for `resources/updated`: a 2026-07-28 upstream's stream per URI.
    watched: BTreeMap<String, Option<Subscription>>,
}

/// Backoff between connection attempts: doubles from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(30));

/// Resources watched at most per upstream.
const MAX_WATCHED: usize = 1024;

impl Upstream {
    /// The upstream of `config`; [`Upstream::run`] connects it.
    pub fn new(config: UpstreamConfig, announce: Announce) -> Arc<Self> {
        Arc::new(Self {
            config,
            state: Mutex::default(),
            announce,
            stop: CancellationToken::new(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Its configuration.
    pub fn config(&self) -> &UpstreamConfig {
        &self.config
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The connected client, if connected.
    pub fn client(&self) -> Option<Client> {
        self.state().client.clone().filter(|c| !c.is_closed())
    }

    /// What it serves, as last listed (empty while it was never reached).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.state().snapshot.clone()
    }

    /// Why it is not connected, if it is not.
    pub fn last_error(&self) -> Option<String> {
        self.state().last_error.clone()
    }

    /// Stops the upstream: its connection is closed and not made again.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Connects, and connects again whenever the connection drops, until [`Upstream::stop`]; the
    /// first attempt is made before `connected` is told (with its outcome).
    pub async fn run(self: Arc<Self>, connected: tokio::sync::oneshot::Sender<Result<(), String>>) {
        let mut connected = Some(connected);
        let mut backoff = BACKOFF.0;
        loop {
            let attempt = tokio::select! {
                attempt = self.connect() => attempt,
                () = self.stop.cancelled() => return,
            };
            match attempt {
                Ok(client) => {
                    backoff = BACKOFF.0;
                    self.attach(client.clone()).await;
                    if let Some(tx) = connected.take() {
                        let _ = tx.send(Ok(()));
                    }
                    tracing::info!(upstream = self.name(), era = ?client.era(), "upstream connected");
                    tokio::select! {
                        () = self.follow(&client) => {}
                        () = self.stop.cancelled() => {
                            let _ = client.close().await;
                            return;
                        }
                    }
                    let message = "the connection closed".to_string();
                    tracing::warn!(upstream = self.name(), "upstream disconnected; reconnecting");
                    let mut state = self.state();
                    state.client = None;
                    state.last_error = Some(message);
                }
                Err(message) => {
                    tracing::warn!(upstream = self.name(), error = %message, retry_in = ?backoff, "upstream unreachable");
                    self.state().last_error = Some(message.clone());
                    if let Some(tx) = connected.take() {
                        let _ = tx.send(Err(message));
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = self.stop.cancelled() => return,
            }
            backoff = (backoff * 2).min(BACKOFF.1);
        }
    }

    /// Makes the connection the config asks for.
    async fn connect(&self) -> Result<Client, String> {
        let c = &self.config;
        let protocol = match c.protocol {
            ProtocolChoice::Auto => Protocol::Auto,
            ProtocolChoice::Stateless => Protocol::Stateless,
            ProtocolChoice::Stateful => Protocol::Stateful(portico_core::server::STATEFUL_REVISIONS[0]),
        };
        let config = ClientConfig {
            request_timeout: c.timeout,
            // A server that never answers `server/discover` is given up on as soon as a call
            // would be.
            probe_timeout: c.timeout.min(ClientConfig::default().probe_timeout),
            // The downstream client fills its own forms and checks its own results.
            elicitation_defaults: false,
            validate_output: false,
            ..ClientConfig::default()
        };
        let info = wire::Implementation::new("portico-gateway", env!("CARGO_PKG_VERSION"));
        let builder = Client::builder(info).handler(Gateway).protocol(protocol).config(config);
        let outcome = if let Some(command) = &c.command {
            let mut cmd = tokio::process::Command::new(&command[0]);
            cmd.args(&command[1..]).envs(&c.env);
            if let Some(cwd) = &c.cwd {
                cmd.current_dir(cwd);
            }
            let stdio = StdioConfig {
                stderr_log: Some(c.name.clone()),
                ..StdioConfig::default()
            };
            builder
                .connect(|service| async move { portico_transport::stdio::spawn(&mut cmd, service, stdio).await })
                .await
        } else if let Some(url) = &c.url {
            match c.transport_kind() {
                TransportKind::StreamableHttp => {
                    builder
                        .connect(|service| {
                            portico_transport::http::client::connect(url, service, HttpClientConfig::default())
                        })
                        .await
                }
                TransportKind::Websocket => {
                    builder
                        .connect(|service| {
                            portico_transport::http::ws_client::connect(url, service, WsClientConfig::default())
                        })
                        .await
                }
                TransportKind::Sse => {
                    builder
                        .connect(|service| {
                            portico_transport::http::legacy_sse_client::connect(
                                url,
                                service,
                                LegacySseClientConfig::default(),
                            )
                        })
                        .await
                }
            }
        } else {
            // `builtin` (the config check allows no other).
            let server = portico_everything::server();
            builder
                .connect(|service| async move {
                    Ok::<_, std::convert::Infallible>(memory::connect(
                        service,
                        server.connection(),
                        PeerConfig::default(),
                    ))
                })
                .await
        };
        outcome.map_err(|e| e.to_string())
    }

    /// Lists what a new connection serves and makes it the upstream's.
    async fn attach(&self, client: Client) {
        let snapshot = Arc::new(list(&client).await);
        let watched: Vec<String> = {
            let mut state = self.state();
            state.client = Some(client.clone());
            state.last_error = None;
            state.snapshot = snapshot;
            std::mem::take(&mut state.watched).into_keys().collect()
        };
        for uri in watched {
            if let Err(e) = self.watch(&uri).await {
                tracing::warn!(upstream = self.name(), uri, error = %e, "watching a resource again failed");
            }
        }
        // Whatever it serves now may differ from before.
        for change in [
            Change::ToolsListChanged,
            Change::PromptsListChanged,
            Change::ResourcesListChanged,
        ] {
            (self.announce)(self.name(), change);
        }
    }

    /// Follows a connection's change notifications until it closes: lists again what changed
    /// and announces it.
    async fn follow(&self, client: &Client) {
        let mut notifications = client.notifications();
        // A 2026-07-28 server announces list changes on a `subscriptions/listen` stream only.
        let _listening = if client.era() == Era::Stateless {
            let filter = wire::SubscriptionFilter::new()
                .with_tools_list_changed(true)
                .with_prompts_list_changed(true)
                .with_resources_list_changed(true);
            client.listen(filter).await.ok()
        } else {
            None
        };
        loop {
            let notification = tokio::select! {
                n = notifications.recv() => n,
                () = client.peer().closed() => return,
            };
            let Some(notification) = notification else { return };
            let change = match notification {
                Notification::ToolsListChanged { .. } => Change::ToolsListChanged,
                Notification::PromptsListChanged { .. } => Change::PromptsListChanged,
                Notification::ResourcesListChanged { .. } => Change::ResourcesListChanged,
                Notification::ResourceUpdated { uri, .. } => Change::ResourceUpdated(uri),
                _ => continue,
            };
            if !matches!(change, Change::ResourceUpdated(_)) {
                let snapshot = Arc::new(list(client).await);
                self.state().snapshot = snapshot;
            }
            (self.announce)(self.name(), change);
        }
    }

    /// Starts watching `uri` for `resources/updated` (once per URI).
    pub async fn watch(&self, uri: &str) -> Result<(), String> {
        {
            let state = self.state();
            if state.watched.contains_key(uri) {
                return Ok(());
            }
            if state.watched.len() >= MAX_WATCHED {
                return Err(format!(
                    "upstream `{}` watches {MAX_WATCHED} resources already",
                    self.name()
                ));
            }
        }
        let Some(client) = self.client() else {
            // Watched once connected.
            self.state().watched.insert(uri.to_string(), None);
            return Ok(());
        };
        let stream = if client.era() == Era::Stateless {
            let filter = wire::SubscriptionFilter::new().with_resource_subscriptions(vec![uri.to_string()]);
            Some(client.listen(filter).await.map_err(|e| e.to_string())?)
        } else {
            client.subscribe(uri).await.map_err(|e| e.to_string())?;
            None
        };
        self.state().watched.insert(uri.to_string(), stream);
        Ok(())
    }
}

/// Everything a client lists, each list only when the server offers it; a list that fails is
/// left empty (and logged).
async fn list(client: &Client) -> Snapshot {
    let caps = &client.server().capabilities;
    let mut snapshot = Snapshot {
        completions: caps.completions.is_some(),
        ..Snapshot::default()
    };
    let name = client
        .server()
        .info
        .as_ref()
        .map_or("?", |i| i.name.as_str())
        .to_string();
    let warn = |what: &str, e: portico_core::client::ClientError| {
        tracing::warn!(server = name, error = %e, "listing the {what} of an upstream failed");
    };
    if caps.tools.is_some() {
        match client.list_all_tools().await {
            Ok(tools) => snapshot.tools = tools,
            Err(e) => warn("tools", e),
        }
    }
    if caps.prompts.is_some() {
        match client.list_all_prompts().await {
            Ok(prompts) => snapshot.prompts = prompts,
            Err(e) => warn("prompts", e),
        }
    }
    if caps.resources.is_some() {
        match client.list_all_resources().await {
            Ok(resources) => snapshot.resources = resources,
            Err(e) => warn("resources", e),
        }
        match client.list_all_resource_templates().await {
            Ok(templates) => snapshot.templates = templates,
            Err(e) => warn("resource templates", e),
        }
    }
    snapshot
}

/// The gateway as its upstreams' client: it declares every input capability, since it relays
/// the questions of a call to the client that made it ([`crate::relay`]); a question no call
/// claims is refused by the defaults.
struct Gateway;

impl ClientHandler for Gateway {
    fn capabilities(&self) -> wire::ClientCapabilities {
        let elicitation: wire::ClientCapabilitiesElicitation =
            serde_json::from_value(serde_json::json!({"form": {}, "url": {}})).unwrap_or_default();
        wire::ClientCapabilities::new()
            .with_sampling(Default::default())
            .with_elicitation(elicitation)
            .with_roots(Default::default())
    }
}
