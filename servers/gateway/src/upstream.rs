//! One upstream MCP server and its replicas. Each [`Replica`] keeps its own connection — made
//! with the gateway's credentials for the upstream (`headers`, or its own OAuth client,
//! [`crate::credentials`]), health-checked, and made again with backoff when it drops or fails
//! its check — with a circuit breaker ([`crate::breaker`]) fed by the calls it serves. The
//! upstream picks a replica per call by its `balance` policy, and keeps the snapshot of what it
//! serves (the replicas serve the same thing: the first connected one's lists are taken)
//! current from their change notifications. Calls go through [`crate::relay`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use portico_core::PeerConfig;
use portico_core::client::{
    Client, ClientConfig, ClientError, ClientHandler, Notification, Protocol, Subscription, memory,
};
use portico_core::server::{Change, Era};
use portico_protocol::v2026_07_28 as wire;
use portico_transport::http::client::HttpClientConfig;
use portico_transport::http::legacy_sse_client::LegacySseClientConfig;
use portico_transport::http::ws_client::WsClientConfig;
use portico_transport::stdio::StdioConfig;
use tokio_util::sync::CancellationToken;

use crate::breaker::Breaker;
use crate::config::{Balance, ProtocolChoice, ReplicaConfig, TransportKind, UpstreamConfig};

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
    /// The extensions it declares (`capabilities.extensions`: name → settings), and the tasks
    /// extension when the gateway bridges it to the upstream's 2025-11-25 tasks
    /// (`session_tasks`).
    pub extensions: BTreeMap<String, serde_json::Value>,
    /// Whether it is a session upstream with 2025-11-25's tasks for `tools/call`, bridged to
    /// the tasks extension ([`crate::tasks`]).
    pub session_tasks: bool,
    /// With `session_tasks`: how each tool runs as a task (its `execution.taskSupport`); a tool
    /// not named never does.
    pub task_support: BTreeMap<String, portico_core::server::tasks::TaskSupport>,
    /// The tools whose `inputSchema` has `x-mcp-header` annotations (checked against a
    /// Streamable HTTP client's `Mcp-Param-*` headers).
    pub header_tools: std::collections::BTreeSet<String>,
}

/// Where an upstream's changes are announced (the gateway's endpoints).
pub type Announce = Arc<dyn Fn(&str, Change) + Send + Sync>;

/// Backoff between connection attempts: doubles from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));

/// Resources watched at most per replica.
const MAX_WATCHED: usize = 1024;

/// What an upstream reports to: the gateway's endpoints, metrics and traces.
#[derive(Clone)]
pub struct Hooks {
    /// Where its changes are announced.
    pub announce: Announce,
    /// Where its calls are counted.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Where the spans of its calls go.
    pub exporter: Option<portico_transport::otel::Exporter>,
    /// Where its calls are recorded (`audit`).
    pub audit: Option<crate::audit::Auditor>,
}

/// An upstream: its configuration and its replicas.
pub struct Upstream {
    config: UpstreamConfig,
    replicas: Vec<Arc<Replica>>,
    /// Its token exchange, with `oauth.token_exchange` (`Err`: why it could not be made).
    exchanger: Option<Result<Arc<crate::credentials::Exchanger>, String>>,
    /// The round-robin position.
    next: AtomicUsize,
    hooks: Hooks,
    /// The watchers of its bridged tasks' questions ([`crate::tasks`]).
    watchers: crate::tasks::Watchers,
}

impl Upstream {
    /// The upstream of `config`; [`Upstream::run`] connects its replicas.
    pub fn new(config: UpstreamConfig, hooks: Hooks) -> Arc<Self> {
        let replicas = config
            .targets()
            .into_iter()
            .enumerate()
            .map(|(index, target)| {
                Arc::new(Replica {
                    index,
                    auth: crate::credentials::for_replica(&config, &target),
                    target,
                    upstream: config.clone(),
                    state: Mutex::default(),
                    breaker: Mutex::new(Breaker::new(config.breaker.clone())),
                    in_flight: AtomicUsize::new(0),
                    calls: AtomicU64::new(0),
                    announce: hooks.announce.clone(),
                    stop: CancellationToken::new(),
                })
            })
            .collect();
        Arc::new(Self {
            exchanger: crate::credentials::Exchanger::for_upstream(&config),
            config,
            replicas,
            next: AtomicUsize::new(0),
            hooks,
            watchers: crate::tasks::Watchers::default(),
        })
    }

    /// The credentials of a call relayed for the caller of `cx`, when this upstream exchanges
    /// callers' tokens (`oauth.token_exchange`): `Ok(None)` when it does not; an error naming
    /// the upstream when the exchange fails ([`crate::credentials`]).
    pub async fn caller_credentials(
        &self,
        cx: &portico_core::server::Context,
    ) -> Result<Option<portico_transport::http::auth::Auth>, portico_core::ErrorObject> {
        match &self.exchanger {
            None => Ok(None),
            // Boxed: every relayed call's future holds this one's, and few upstreams exchange.
            Some(Ok(exchanger)) => Box::pin(exchanger.for_call(cx)).await.map(Some),
            Some(Err(why)) => {
                let reason = format!("its token exchange cannot be set up: {why}");
                Err(portico_core::ErrorObject::new(
                    crate::relay::UPSTREAM_UNAVAILABLE,
                    format!("upstream `{}` is unavailable: {reason}", self.name()),
                )
                .with_data(serde_json::json!({"upstream": self.name(), "reason": reason})))
            }
        }
    }

    /// Its token exchange, with `oauth.token_exchange`.
    pub fn exchanger(&self) -> Option<&crate::credentials::Exchanger> {
        self.exchanger.as_ref()?.as_ref().ok().map(|e| &**e)
    }

    /// Its configuration.
    pub fn config(&self) -> &UpstreamConfig {
        &self.config
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Where its calls are counted.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.hooks.metrics
    }

    /// Where the spans of its calls go, if anywhere.
    pub fn exporter(&self) -> Option<&portico_transport::otel::Exporter> {
        self.hooks.exporter.as_ref()
    }

    /// Where its calls are recorded, with `audit`.
    pub fn auditor(&self) -> Option<&crate::audit::Auditor> {
        self.hooks.audit.as_ref()
    }

    /// Its replicas, in configuration order.
    pub fn replicas(&self) -> &[Arc<Replica>] {
        &self.replicas
    }

    /// Whether a call could be served now: some replica is connected and not held off.
    pub fn is_available(&self) -> bool {
        self.replicas.iter().any(|r| r.is_available())
    }

    /// What it serves: the first connected replica's lists, else the last ones any replica
    /// listed (empty while none was ever reached).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        let connected = self.replicas.iter().find(|r| r.is_connected());
        connected
            .or_else(|| self.replicas.iter().find(|r| r.has_listed()))
            .map_or_else(Arc::default, |r| r.snapshot())
    }

    /// Why no replica can serve, when none can: each one's reason.
    pub fn unavailable_reason(&self) -> String {
        let reasons: Vec<String> = self
            .replicas
            .iter()
            .map(|r| format!("{}: {}", r.describe(), r.unavailable_reason()))
            .collect();
        reasons.join("; ")
    }

    /// Stops the replicas: their connections are closed and not made again (and the watchers
    /// of its tasks' questions end).
    pub fn stop(&self) {
        self.watchers.stop_all();
        for replica in &self.replicas {
            replica.stop.cancel();
        }
    }

    /// The watchers of its bridged tasks' questions ([`crate::tasks`]).
    pub fn watchers(&self) -> &crate::tasks::Watchers {
        &self.watchers
    }

    /// Connects every replica, and each again whenever its connection drops, until
    /// [`Upstream::stop`]; `connected` is told once every replica made its first attempt (`Ok`
    /// when one succeeded).
    pub async fn run(self: Arc<Self>, connected: tokio::sync::oneshot::Sender<Result<(), String>>) {
        let mut firsts = Vec::new();
        for replica in &self.replicas {
            let (tx, rx) = tokio::sync::oneshot::channel();
            tokio::spawn(replica.clone().run(tx));
            firsts.push(rx);
        }
        let outcomes = futures_util::future::join_all(firsts).await;
        let outcome = if outcomes.iter().any(|o| matches!(o, Ok(Ok(())))) {
            Ok(())
        } else {
            Err(self.unavailable_reason())
        };
        let _ = connected.send(outcome);
    }

    /// The replica for a call of the client connection `affinity`, by the `balance` policy,
    /// among the available ones not in `tried`; the breaker of the one picked is told a call
    /// goes there (a half-open breaker lets one trial through).
    pub fn pick(&self, affinity: u64, tried: &[usize]) -> Option<Arc<Replica>> {
        let candidates: Vec<&Arc<Replica>> = self
            .replicas
            .iter()
            .filter(|r| !tried.contains(&r.index) && r.is_available())
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let n = candidates.len();
        let order: Vec<&Arc<Replica>> = match self.config.balance {
            Balance::RoundRobin => {
                let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
                candidates.iter().cycle().skip(start).take(n).copied().collect()
            }
            Balance::LeastInFlight => {
                let mut sorted = candidates.clone();
                sorted.sort_by_key(|r| r.in_flight());
                sorted
            }
            Balance::SessionHash => {
                // The same replica for a connection while the set of replicas is the same:
                // a hash of the connection over every replica, then the next available one.
                let all = self.replicas.len();
                let home = (splitmix(affinity) % all as u64) as usize;
                let mut by_distance = candidates.clone();
                by_distance.sort_by_key(|r| (r.index + all - home) % all);
                by_distance
            }
        };
        order.into_iter().find(|r| r.admit()).cloned()
    }

    /// Starts watching `uri` for `resources/updated` on every replica.
    pub async fn watch(&self, uri: &str) -> Result<(), String> {
        let mut errors = Vec::new();
        for replica in &self.replicas {
            if let Err(e) = replica.watch(uri).await {
                errors.push(e);
            }
        }
        if errors.len() == self.replicas.len() {
            return Err(errors.join("; "));
        }
        Ok(())
    }
}

/// A well-mixed hash of a number (SplitMix64's finalizer).
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// One server of an upstream: its connection, its breaker, its calls in flight.
pub struct Replica {
    index: usize,
    target: ReplicaConfig,
    /// The credentials of its connection, with `oauth` (made once: its tokens outlive
    /// reconnections); `Err`: why they could not be made.
    auth: Result<Option<portico_transport::http::auth::Auth>, String>,
    /// The upstream's configuration (name, protocol, timeout, health, breaker).
    upstream: UpstreamConfig,
    state: Mutex<State>,
    breaker: Mutex<Breaker>,
    in_flight: AtomicUsize,
    /// Calls sent to it so far.
    calls: AtomicU64,
    announce: Announce,
    stop: CancellationToken,
}

#[derive(Default)]
struct State {
    client: Option<Client>,
    snapshot: Arc<Snapshot>,
    listed: bool,
    /// Why the last connection attempt failed or the connection ended.
    last_error: Option<String>,
    /// URIs watched for `resources/updated`: a 2026-07-28 server's stream per URI.
    watched: BTreeMap<String, Option<Subscription>>,
}

/// Counts a call in flight on a replica while it lives.
pub struct InFlight(Arc<Replica>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Replica {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Its position in the upstream's replicas.
    pub fn index(&self) -> usize {
        self.index
    }

    /// What it is: its URL, program or built-in.
    pub fn describe(&self) -> String {
        self.target.describe()
    }

    /// The connected client, if connected.
    pub fn client(&self) -> Option<Client> {
        self.state().client.clone().filter(|c| !c.is_closed())
    }

    /// Whether it is connected ([`Replica::client`] without a handle to the client).
    pub fn is_connected(&self) -> bool {
        self.state().client.as_ref().is_some_and(|c| !c.is_closed())
    }

    fn has_listed(&self) -> bool {
        self.state().listed
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.state().snapshot.clone()
    }

    /// Connected, and its breaker lets calls through.
    pub fn is_available(&self) -> bool {
        self.is_connected() && self.breaker().available()
    }

    /// Tells the breaker a call goes there; `false` when it holds calls off or the replica has
    /// `max_in_flight` calls already.
    fn admit(&self) -> bool {
        self.in_flight() < self.upstream.max_in_flight && self.is_connected() && self.breaker().admit()
    }

    /// Counts a call in flight until the guard is dropped.
    pub fn start_call(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Calls sent to it so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// A call it served succeeded (or was answered with the server's own error).
    pub fn succeeded(&self) {
        self.breaker().succeeded();
    }

    /// A call failed for its sake (no connection, a transport error, a timeout).
    pub fn failed(&self) {
        let opened = self.breaker().failed();
        if opened {
            tracing::warn!(upstream = self.upstream.name, replica = %self.describe(), "circuit breaker opened");
        }
    }

    /// Its breaker's state: `closed`, `open` or `half-open`.
    pub fn breaker_state(&self) -> &'static str {
        self.breaker().name()
    }

    /// Why it cannot serve now (empty when it can).
    pub fn unavailable_reason(&self) -> String {
        if self.client().is_none() {
            return self
                .state()
                .last_error
                .clone()
                .unwrap_or_else(|| "not connected yet".into());
        }
        match self.breaker().name() {
            "closed" if self.in_flight() >= self.upstream.max_in_flight => {
                format!("at its limit of {} calls in flight", self.upstream.max_in_flight)
            }
            "closed" => String::new(),
            state => format!("circuit breaker {state}"),
        }
    }

    /// Connects, health-checks, and connects again whenever the connection drops or fails its
    /// check, until stopped; the first attempt's outcome goes to `connected`.
    async fn run(self: Arc<Self>, connected: tokio::sync::oneshot::Sender<Result<(), String>>) {
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
                    // A connection just made is the best health check there is.
                    self.breaker().succeeded();
                    if let Some(tx) = connected.take() {
                        let _ = tx.send(Ok(()));
                    }
                    tracing::info!(upstream = self.upstream.name, replica = %self.describe(), era = ?client.era(), "upstream connected");
                    let why = tokio::select! {
                        why = self.follow(&client) => why,
                        why = self.check_health(&client) => why,
                        () = self.stop.cancelled() => {
                            let _ = client.close().await;
                            return;
                        }
                    };
                    tracing::warn!(upstream = self.upstream.name, replica = %self.describe(), reason = %why, "upstream disconnected; reconnecting");
                    let _ = client.close().await;
                    let mut state = self.state();
                    state.client = None;
                    state.last_error = Some(why);
                }
                Err(message) => {
                    tracing::warn!(upstream = self.upstream.name, replica = %self.describe(), error = %message, retry_in = ?backoff, "upstream unreachable");
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

    /// Checks the connection every `health.interval` (`ping` in a session, `server/discover`
    /// in 2026-07-28); returns why, when a check fails (the breaker is then open).
    async fn check_health(&self, client: &Client) -> String {
        let health = &self.upstream.health;
        loop {
            tokio::time::sleep(health.interval).await;
            let check = async {
                match client.era() {
                    Era::Stateless => client.discover().await.map(|_| ()),
                    Era::Stateful(_) => client.ping().await,
                }
            };
            let failed = match tokio::time::timeout(health.timeout, check).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!("health check failed: {e}")),
                Err(_) => Some(format!("health check took longer than {:?}", health.timeout)),
            };
            match failed {
                None => self.breaker().health_passed(),
                Some(why) => {
                    self.breaker().health_failed();
                    return why;
                }
            }
        }
    }

    /// Makes the connection its target asks for.
    async fn connect(&self) -> Result<Client, String> {
        let c = &self.upstream;
        let t = &self.target;
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
        let auth = self.auth.clone()?;
        let headers: axum::http::HeaderMap = c
            .headers
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    axum::http::HeaderName::from_bytes(k.as_bytes()).ok()?,
                    axum::http::HeaderValue::from_str(v).ok()?,
                ))
            })
            .collect();
        // Room in the transport's outbound queue for a message of every call the replica may
        // have in flight: with less (the transports' default is 64), calls sent in one turn of
        // the runtime beyond it wait for the queue's writer, and each is polled again when let
        // through (callgrind, 256 calls in flight: three polls of the sender a call, not one).
        let outbound = c.max_in_flight.max(64);
        let outcome = if let Some(command) = &t.command {
            let mut cmd = tokio::process::Command::new(&command[0]);
            cmd.args(&command[1..]).envs(&t.env);
            if let Some(cwd) = &t.cwd {
                cmd.current_dir(cwd);
            }
            let stdio = StdioConfig {
                stderr_log: Some(c.name.clone()),
                max_message_bytes: c.max_message_bytes,
                outbound_capacity: outbound,
                ..StdioConfig::default()
            };
            builder
                .connect(|service| async move { portico_transport::stdio::spawn(&mut cmd, service, stdio).await })
                .await
        } else if let Some(url) = &t.url {
            match t.transport_kind() {
                TransportKind::StreamableHttp => {
                    builder
                        .connect(|service| {
                            let config = HttpClientConfig {
                                headers,
                                auth,
                                max_message_bytes: c.max_message_bytes,
                                max_concurrent_requests: c.max_in_flight,
                                outbound_capacity: outbound,
                                ..HttpClientConfig::default()
                            };
                            portico_transport::http::client::connect(url, service, config)
                        })
                        .await
                }
                TransportKind::Websocket => {
                    builder
                        .connect(|service| {
                            let config = WsClientConfig {
                                headers,
                                auth,
                                max_message_bytes: c.max_message_bytes,
                                outbound_capacity: outbound,
                                ..WsClientConfig::default()
                            };
                            portico_transport::http::ws_client::connect(url, service, config)
                        })
                        .await
                }
                TransportKind::Sse => {
                    builder
                        .connect(|service| {
                            let config = LegacySseClientConfig {
                                headers,
                                auth,
                                max_message_bytes: c.max_message_bytes,
                                outbound_capacity: outbound,
                                ..LegacySseClientConfig::default()
                            };
                            portico_transport::http::legacy_sse_client::connect(url, service, config)
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

    /// Lists what a new connection serves and makes it the replica's.
    async fn attach(&self, client: Client) {
        let snapshot = Arc::new(list(&client).await);
        let watched: Vec<String> = {
            let mut state = self.state();
            state.client = Some(client.clone());
            state.last_error = None;
            state.snapshot = snapshot;
            state.listed = true;
            std::mem::take(&mut state.watched).into_keys().collect()
        };
        for uri in watched {
            if let Err(e) = self.watch(&uri).await {
                tracing::warn!(upstream = self.upstream.name, uri, error = %e, "watching a resource again failed");
            }
        }
        // Whatever it serves now may differ from before.
        for change in [
            Change::ToolsListChanged,
            Change::PromptsListChanged,
            Change::ResourcesListChanged,
        ] {
            (self.announce)(&self.upstream.name, change);
        }
    }

    /// Follows a connection's change notifications until it closes: lists again what changed
    /// and announces it. Returns why it stopped: the connection closed, or the 2026-07-28
    /// server's `subscriptions/listen` stream could not be opened (other than the server
    /// declining it) or ended (the server ended it, or it failed — an
    /// unreadable message on a stdio or WebSocket connection fails every request waiting on
    /// it): then the connection is made again, which lists and subscribes again, since changes
    /// would otherwise go unnoticed.
    async fn follow(&self, client: &Client) -> String {
        let closed = || "the connection closed".to_string();
        let mut notifications = client.notifications();
        // A 2026-07-28 server announces list changes on a `subscriptions/listen` stream only.
        let mut listening = if client.era() == Era::Stateless {
            let filter = wire::SubscriptionFilter::new()
                .with_tools_list_changed(true)
                .with_prompts_list_changed(true)
                .with_resources_list_changed(true);
            match client.listen(filter).await {
                Ok(subscription) => Some(subscription),
                // The server declined, or answered with something else than a subscription:
                // its changes are not followed (connecting again would not change that).
                Err(e @ (ClientError::Rpc { .. } | ClientError::Protocol { .. })) => {
                    tracing::warn!(upstream = self.upstream.name, replica = %self.describe(), error = %e, "the upstream's list changes are not followed");
                    None
                }
                // The stream failed before its acknowledgement was seen (an unreadable message
                // right after it, say): connected again, as when it fails later.
                Err(e) => return format!("its subscriptions/listen stream failed: {e}"),
            }
        } else {
            None
        };
        loop {
            let notification = tokio::select! {
                n = notifications.recv() => n,
                () = client.peer().closed() => return closed(),
                ended = ended(listening.as_mut()) => {
                    return match ended {
                        Ok(()) => "the server ended its subscriptions/listen stream".to_string(),
                        Err(e) => format!("its subscriptions/listen stream failed: {e}"),
                    };
                }
            };
            let Some(notification) = notification else {
                return closed();
            };
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
            (self.announce)(&self.upstream.name, change);
        }
    }

    /// Starts watching `uri` for `resources/updated` (once per URI; again on reconnection).
    async fn watch(&self, uri: &str) -> Result<(), String> {
        {
            let state = self.state();
            if state.watched.contains_key(uri) {
                return Ok(());
            }
            if state.watched.len() >= MAX_WATCHED {
                return Err(format!("{} watches {MAX_WATCHED} resources already", self.describe()));
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

/// Completes when `subscription` ends (never without one).
async fn ended(subscription: Option<&mut Subscription>) -> Result<(), ClientError> {
    match subscription {
        Some(subscription) => subscription.ended().await,
        None => std::future::pending().await,
    }
}

/// Everything a client lists, each list only when the server offers it; a list that fails is
/// left empty (and logged).
async fn list(client: &Client) -> Snapshot {
    let caps = &client.server().capabilities;
    let mut snapshot = Snapshot {
        extensions: caps
            .extensions
            .iter()
            .flatten()
            .map(|(name, settings)| (name.clone(), serde_json::to_value(settings).unwrap_or_default()))
            .collect(),
        ..Snapshot::default()
    };
    let name = client
        .server()
        .info
        .as_ref()
        .map_or("?", |i| i.name.as_str())
        .to_string();
    let warn = |what: &str, e: ClientError| {
        tracing::warn!(server = name, error = %e, "listing the {what} of an upstream failed");
    };
    // A session upstream with 2025-11-25's tasks: the gateway offers the extension for it.
    if client.era() != Era::Stateless && crate::tasks::declares_session_tasks(caps) {
        snapshot.session_tasks = true;
        snapshot
            .extensions
            .entry(portico_core::server::tasks::EXTENSION.to_string())
            .or_insert_with(|| serde_json::json!({}));
    }
    if caps.tools.is_some() {
        match client.list_all_tools().await {
            Ok(tools) => snapshot.tools = tools,
            Err(e) => warn("tools", e),
        }
        for tool in &mut snapshot.tools {
            let support = crate::tasks::take_support(tool);
            if snapshot.session_tasks && support != portico_core::server::tasks::TaskSupport::Forbidden {
                snapshot.task_support.insert(tool.name.clone(), support);
            }
        }
        snapshot.header_tools = snapshot
            .tools
            .iter()
            .filter(|t| serde_json::to_string(&t.input_schema).is_ok_and(|schema| schema.contains("x-mcp-header")))
            .map(|t| t.name.clone())
            .collect();
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
