//! Plugins: code run on every request the gateway relays to an upstream — before it goes, and
//! after the upstream's result comes back — that may let it through, refuse it with a reason,
//! change it, and annotate it.
//!
//! # The hooks
//!
//! A [`Plugin`] has two hooks, both optional:
//!
//! - [`Plugin::before`] sees the request (method, upstream, the tool's, prompt's or resource's
//!   name as the upstream names it and as the client named it, the arguments, the caller's
//!   [`Principal`]) before any upstream does, and may change its arguments;
//! - [`Plugin::after`] sees the same request and the upstream's result (a newest-revision result
//!   object, before the framework adapts it to the client's revision), and may change the
//!   result.
//!
//! Each answers a [`Verdict`]: go on, or deny with a reason; with annotations either way.
//!
//! # Where they run
//!
//! In [`crate::relay::forward`], the one place every relayed request goes through: `tools/call`,
//! `resources/read`, `prompts/get`, `completion/complete`, the tasks extension's requests and the
//! skills extension's. Lists are not relayed (they are served from the upstreams' snapshots) and
//! do not go through plugins: to hide a tool, use the policy ([`crate::policy`]). A request asked
//! of several upstreams in turn (a resource URI no upstream lists, matched against each one's
//! templates) goes through the hooks once per upstream asked. The policy decides first: a request
//! the caller may not make never reaches a plugin.
//!
//! # Order, denial, failure
//!
//! Plugins run in the order of `plugins` in the configuration, for both hooks (the second
//! plugin's `before` sees the arguments as the first left them; its `after` sees the result as
//! the first left it). A plugin applies to a request when its `methods`, `tools` and `upstreams`
//! patterns all match it (an empty list matches everything; with `tools`, it applies to
//! `tools/call` alone). The first plugin that denies stops the chain: the plugins after it do
//! not run, and:
//!
//! - denied `before`, no upstream is called;
//! - denied `after`, the upstream did run the request, and its result is withheld.
//!
//! The client gets a JSON-RPC error, [`PLUGIN_DENIED`] (`-32055`), with `data: {plugin, hook,
//! reason}`, whatever the method. A denial is the gateway's answer, not the tool's: it is not
//! a tool result with `isError` (which would tell a model the tool ran and failed), and it is
//! the same for a read or a prompt as for a call. The denial is recorded in the audit trail (a
//! `denial` record naming the plugin, its hook and the reason) and counted in
//! `portico_gateway_plugin_decisions_total`.
//!
//! A plugin that fails — returns an error, panics, or does not answer within its `timeout`
//! (default 2 s) — is decided for by its `on_error`: `deny` (the default, for every kind: a
//! guard that cannot answer must not let everything through, and a redaction that cannot run
//! must not let secrets out) refuses the request as a denial would, with the reason "the plugin
//! failed: …"; `allow` logs the failure and goes on as if the plugin had not been there (a
//! plugin that failed after changing the arguments or the result leaves its changes).
//!
//! # Annotations
//!
//! A verdict's annotations (key/value pairs) are gathered by plugin name and
//!
//! - put in the result's `_meta` under [`META_KEY`] (`io.portico/plugins`):
//!   `{"_meta": {"io.portico/plugins": {"redact": {"redacted": {"email": 1}}}}}`;
//! - written in the audit record's `detail` (`plugins: {"redact": …}`);
//! - put in a denial's error `data` (`annotations`).
//!
//! # Configuration and reload
//!
//! `plugins` entries name a `kind` of the gateway's [`PluginRegistry`]: the shipped ones —
//! [`redact`], [`guard`], [`deny`] (`deny_tools`) and [`webhook`] — and any a program embedding
//! the gateway adds ([`crate::Gateway::start_with`]). Entries are compiled into a [`Chain`] with
//! the rest of the configuration, held by the routes ([`crate::catalog::Routes`]): a reload
//! swaps the chain atomically with everything else, and a configuration whose plugins do not
//! compile is refused whole, naming the key (`plugins[1].max_argument_bytes: …`).
//! [`crate::config::Config::check`] checks every entry's common keys and the options of the
//! shipped kinds; a kind it does not know is checked by the gateway that has the registry, at
//! start and at every reload.
//!
//! # A plugin of your own
//!
//! Implement [`Plugin`], register a constructor for its `kind` (which reads its options from
//! [`Options`], so that errors name the key) and start the gateway with the registry:
//!
//! ```no_run
//! use portico_gateway::plugin::{Hook, Options, Plugin, PluginFuture, PluginRegistry, PluginRequest, Verdict};
//! use portico_gateway::{Gateway, config::Config};
//!
//! /// Refuses calls made without a token.
//! struct SignedInOnly {
//!     reason: String,
//! }
//!
//! impl Plugin for SignedInOnly {
//!     fn hooks(&self) -> &[Hook] {
//!         &[Hook::Before]
//!     }
//!
//!     fn before<'a>(&'a self, request: &'a mut PluginRequest) -> PluginFuture<'a, Verdict> {
//!         Box::pin(async move {
//!             Ok(match request.principal() {
//!                 Some(principal) => Verdict::proceed().with_annotation("subject", principal.subject.clone()),
//!                 None => Verdict::deny(self.reason.clone()),
//!             })
//!         })
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let registry = PluginRegistry::new().with("signed_in_only", |options: &mut Options| {
//!     let reason = options.take::<String>("reason")?.unwrap_or_else(|| "sign in first".into());
//!     Ok(Box::new(SignedInOnly { reason }) as Box<dyn Plugin>)
//! });
//! let config = Config::parse("plugins:\n  - {name: sign-in, kind: signed_in_only, methods: [tools/call]}\n", false)?;
//! let gateway = Gateway::start_with(config, std::time::Duration::from_secs(10), registry).await?;
//! # drop(gateway);
//! # Ok(())
//! # }
//! ```

pub mod deny;
pub mod guard;
pub mod redact;
pub mod webhook;

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use portico_core::ErrorObject;
use portico_core::server::Context;
use portico_protocol::v2026_07_28 as wire;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::auth::Principal;
use crate::config::ConfigError;
use crate::metrics::Metrics;
use crate::policy::Glob;
use crate::upstream::{Snapshot, Upstream};

/// The JSON-RPC error of a request a plugin refused (or that failed, `on_error: deny`): the
/// next of the gateway's codes after the audit trail's.
pub const PLUGIN_DENIED: i64 = -32055;

/// The `_meta` key of a result under which plugins' annotations go, by plugin name.
pub const META_KEY: &str = "io.portico/plugins";

/// The boxed future of a hook: a plugin is used as `dyn Plugin`.
pub type PluginFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, PluginError>> + Send + 'a>>;

/// Code run on the requests the gateway relays (see the [module docs](self)).
///
/// Both hooks default to letting everything through unchanged: implement the ones you need,
/// and say which in [`Plugin::hooks`] (the others are then not run, nor counted). An error ([`PluginError`]) is a failure of the plugin, decided for by its `on_error`; to
/// refuse a request, answer [`Verdict::deny`].
pub trait Plugin: Send + Sync + 'static {
    /// The hooks it has: those not listed are not run (nor counted). Default: both.
    fn hooks(&self) -> &[Hook] {
        &[Hook::Before, Hook::After]
    }

    /// Before the request goes to the upstream: may change its arguments
    /// ([`PluginRequest::arguments_mut`]).
    fn before<'a>(&'a self, request: &'a mut PluginRequest) -> PluginFuture<'a, Verdict> {
        let _ = request;
        Box::pin(async { Ok(Verdict::proceed()) })
    }

    /// After the upstream's result: may change `result`.
    fn after<'a>(&'a self, request: &'a PluginRequest, result: &'a mut Value) -> PluginFuture<'a, Verdict> {
        let _ = (request, result);
        Box::pin(async { Ok(Verdict::proceed()) })
    }
}

/// A plugin's answer: go on or deny, and annotations either way.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    denied: Option<String>,
    annotations: Map<String, Value>,
}

impl Verdict {
    /// Let the request (or result) through.
    pub fn proceed() -> Self {
        Self::default()
    }

    /// Refuse it, saying why (the reason reaches the client).
    pub fn deny(reason: impl Into<String>) -> Self {
        Self {
            denied: Some(reason.into()),
            annotations: Map::new(),
        }
    }

    /// With the annotation `key`: `value`.
    pub fn with_annotation(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.annotations.insert(key.into(), value.into());
        self
    }

    /// The reason, when it denies.
    pub fn denied(&self) -> Option<&str> {
        self.denied.as_deref()
    }

    /// Its annotations.
    pub fn annotations(&self) -> &Map<String, Value> {
        &self.annotations
    }
}

/// A plugin that could not decide (a webhook down, slow or answering garbage).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PluginError {
    message: String,
}

impl PluginError {
    /// A failure, saying what failed. It may reach the client (`on_error: deny`): no secrets.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// The request a hook sees.
#[derive(Debug, Clone)]
pub struct PluginRequest {
    method: String,
    upstream: String,
    name: Option<String>,
    client_name: Option<String>,
    uri: Option<String>,
    arguments: Option<Map<String, Value>>,
    principal: Option<Principal>,
    snapshot: Arc<Snapshot>,
}

impl PluginRequest {
    /// A request of `method` to `upstream`, with nothing else (for testing a plugin).
    pub fn new(method: impl Into<String>, upstream: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            upstream: upstream.into(),
            name: None,
            client_name: None,
            uri: None,
            arguments: None,
            principal: None,
            snapshot: Arc::default(),
        }
    }

    /// With the tool's or prompt's name, as the upstream names it.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// With the name the client used.
    pub fn with_client_name(mut self, name: impl Into<String>) -> Self {
        self.client_name = Some(name.into());
        self
    }

    /// With a resource URI.
    pub fn with_uri(mut self, uri: impl Into<String>) -> Self {
        self.uri = Some(uri.into());
        self
    }

    /// With arguments.
    pub fn with_arguments(mut self, arguments: Map<String, Value>) -> Self {
        self.arguments = Some(arguments);
        self
    }

    /// With a caller.
    pub fn with_principal(mut self, principal: Principal) -> Self {
        self.principal = Some(principal);
        self
    }

    /// With the tools the upstream serves (what [`PluginRequest::tool`] looks in).
    pub fn with_tools(mut self, tools: Vec<wire::Tool>) -> Self {
        self.snapshot = Arc::new(Snapshot {
            tools,
            ..Snapshot::default()
        });
        self
    }

    /// The JSON-RPC method: `tools/call`, `resources/read`, `prompts/get`, …
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The upstream it goes to.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// The tool's or prompt's name as the upstream names it (`echo`), when the request names
    /// one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The name the client used (`everything__echo` on the aggregated endpoint, a virtual
    /// server's rename), when it named a tool or prompt.
    pub fn client_name(&self) -> Option<&str> {
        self.client_name.as_deref()
    }

    /// The resource URI, when the request names one.
    pub fn uri(&self) -> Option<&str> {
        self.uri.as_deref()
    }

    /// The arguments (`params.arguments`), when there are any.
    pub fn arguments(&self) -> Option<&Map<String, Value>> {
        self.arguments.as_ref()
    }

    /// The arguments, to change in [`Plugin::before`] (what the upstream then gets).
    pub fn arguments_mut(&mut self) -> &mut Option<Map<String, Value>> {
        &mut self.arguments
    }

    /// The caller: the token's principal; `None` without `auth`.
    pub fn principal(&self) -> Option<&Principal> {
        self.principal.as_ref()
    }

    /// The upstream's definition of the tool called (`tools/call`), as it last listed it.
    pub fn tool(&self) -> Option<&wire::Tool> {
        let name = self.name.as_deref()?;
        if self.method != "tools/call" {
            return None;
        }
        self.snapshot.tools.iter().find(|t| t.name == name)
    }

    /// The request as JSON, as a webhook gets it: `method`, `upstream`, and `name`,
    /// `clientName`, `uri`, `arguments` and `principal` (`{subject, roles, scopes}`) when
    /// there are.
    pub fn to_json(&self) -> Value {
        let mut json = Map::new();
        json.insert("method".into(), self.method.clone().into());
        json.insert("upstream".into(), self.upstream.clone().into());
        if let Some(name) = &self.name {
            json.insert("name".into(), name.clone().into());
        }
        if let Some(name) = &self.client_name {
            json.insert("clientName".into(), name.clone().into());
        }
        if let Some(uri) = &self.uri {
            json.insert("uri".into(), uri.clone().into());
        }
        if let Some(arguments) = &self.arguments {
            json.insert("arguments".into(), Value::Object(arguments.clone()));
        }
        if let Some(principal) = &self.principal {
            json.insert(
                "principal".into(),
                json!({"subject": principal.subject, "roles": principal.roles, "scopes": principal.scopes}),
            );
        }
        Value::Object(json)
    }
}

/// One `plugins` entry: the keys every plugin has, and its kind's own (`options`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PluginConfig {
    /// Its name: letters, digits, `-` and `_`, unique. Named in denials, metrics, logs, audit
    /// records and annotations.
    pub name: String,
    /// What it is: `redact`, `guard`, `deny_tools`, `webhook`, or a kind registered by the
    /// program embedding the gateway.
    pub kind: String,
    /// When it fails (an error, a panic, its `timeout`): `deny` (the default) refuses the
    /// request, `allow` goes on without it.
    #[serde(default)]
    pub on_error: OnError,
    /// How long each of its hooks may take (default `2s`); past it, it has failed.
    #[serde(default = "default_timeout", with = "crate::config::duration")]
    #[schemars(with = "String")]
    pub timeout: Duration,
    /// Methods it applies to, as glob patterns (`tools/call`, `resources/*`; default: every
    /// relayed request).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// Tools it applies to, by their name at their upstream (glob patterns); with it, the
    /// plugin applies to `tools/call` alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    /// Upstreams it applies to, by name (glob patterns).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upstreams: Vec<String>,
    /// Its kind's own keys (`max_argument_bytes`, `url`, …), checked by the kind.
    #[serde(flatten)]
    pub options: BTreeMap<String, Value>,
}

fn default_timeout() -> Duration {
    Duration::from_secs(2)
}

/// What a plugin that fails decides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// The request is refused (fail closed).
    #[default]
    Deny,
    /// The request goes on as if the plugin were not there (fail open).
    Allow,
}

/// The keys every plugin has, besides its kind's.
const COMMON_KEYS: &[&str] = &["name", "kind", "on_error", "timeout", "methods", "tools", "upstreams"];

/// A plugin's own keys, read by its kind's constructor: an error names the key
/// (`plugins[2].max_argument_bytes: …`), and a key no one read is refused once the
/// constructor is done.
#[derive(Debug)]
pub struct Options {
    key: String,
    name: String,
    kind: String,
    values: BTreeMap<String, Value>,
}

impl Options {
    /// The options of a plugin `name` of `kind` at `key` (`plugins[0]`), for testing a
    /// constructor.
    pub fn new(
        key: impl Into<String>,
        name: impl Into<String>,
        kind: impl Into<String>,
        values: BTreeMap<String, Value>,
    ) -> Self {
        Self {
            key: key.into(),
            name: name.into(),
            kind: kind.into(),
            values,
        }
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The full key of the option `option`: `plugins[2].url`.
    pub fn key(&self, option: &str) -> String {
        format!("{}.{option}", self.key)
    }

    /// An error about the option `option`.
    pub fn invalid(&self, option: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            key: self.key(option),
            message: message.into(),
        }
    }

    /// Takes the option `option`, if given, as a `T`.
    pub fn take<T: DeserializeOwned>(&mut self, option: &str) -> Result<Option<T>, ConfigError> {
        match self.values.remove(option) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => serde_json::from_value(value)
                .map(Some)
                .map_err(|e| self.invalid(option, e.to_string())),
        }
    }

    /// Takes the option `option`, which must be given.
    pub fn require<T: DeserializeOwned>(&mut self, option: &str) -> Result<T, ConfigError> {
        let kind = self.kind.clone();
        self.take(option)?
            .ok_or_else(|| self.invalid(option, format!("is required for a `{kind}` plugin")))
    }

    /// Refuses the options no one took.
    fn finish(self) -> Result<(), ConfigError> {
        match self.values.keys().next() {
            None => Ok(()),
            Some(unknown) => Err(self.invalid(
                unknown,
                format!(
                    "is not a key of a `{}` plugin (nor one every plugin has: {})",
                    self.kind,
                    COMMON_KEYS.join(", ")
                ),
            )),
        }
    }
}

/// Makes a plugin of one kind from its options.
type Constructor = dyn Fn(&mut Options) -> Result<Box<dyn Plugin>, ConfigError> + Send + Sync;

/// The plugin kinds a gateway knows, by the name `kind` gives: the shipped ones, and those the
/// program embedding the gateway adds.
#[derive(Clone)]
pub struct PluginRegistry {
    kinds: BTreeMap<String, Arc<Constructor>>,
}

impl std::fmt::Debug for PluginRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.kinds.keys()).finish()
    }
}

impl Default for PluginRegistry {
    fn default() -> Self {
        Self::new()
    }
}

/// The kinds every gateway knows.
pub const SHIPPED: &[&str] = &["deny_tools", "guard", "redact", "webhook"];

impl PluginRegistry {
    /// The shipped kinds: `redact`, `guard`, `deny_tools`, `webhook`.
    pub fn new() -> Self {
        let empty = Self { kinds: BTreeMap::new() };
        empty
            .with("redact", |options: &mut Options| {
                Ok(Box::new(redact::Redact::from_options(options)?) as Box<dyn Plugin>)
            })
            .with("guard", |options: &mut Options| {
                Ok(Box::new(guard::Guard::from_options(options)?) as Box<dyn Plugin>)
            })
            .with("deny_tools", |options: &mut Options| {
                Ok(Box::new(deny::DenyTools::from_options(options)?) as Box<dyn Plugin>)
            })
            .with("webhook", |options: &mut Options| {
                Ok(Box::new(webhook::Webhook::from_options(options)?) as Box<dyn Plugin>)
            })
    }

    /// With the kind `kind`, made by `constructor` from each entry's options.
    ///
    /// # Panics
    ///
    /// When `kind` is known already (a shipped kind cannot be replaced): a mistake of the
    /// program, found the first time it runs.
    pub fn with(
        mut self,
        kind: impl Into<String>,
        constructor: impl Fn(&mut Options) -> Result<Box<dyn Plugin>, ConfigError> + Send + Sync + 'static,
    ) -> Self {
        let kind = kind.into();
        assert!(
            !self.kinds.contains_key(&kind),
            "the plugin kind `{kind}` is registered already"
        );
        self.kinds.insert(kind, Arc::new(constructor));
        self
    }

    /// The kinds it knows.
    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.kinds.keys().map(String::as_str)
    }
}

/// One plugin of the chain, with its scope.
struct Entry {
    name: String,
    on_error: OnError,
    timeout: Duration,
    methods: Vec<Glob>,
    tools: Vec<Glob>,
    upstreams: Vec<Glob>,
    plugin: Box<dyn Plugin>,
}

impl Entry {
    /// Whether it applies to `method` of `upstream`, naming the tool `name`.
    fn applies(&self, method: &str, upstream: &str, name: Option<&str>) -> bool {
        let any = |globs: &[Glob], text: &str| globs.is_empty() || globs.iter().any(|g| g.matches(text));
        if !any(&self.methods, method) || !any(&self.upstreams, upstream) {
            return false;
        }
        if self.tools.is_empty() {
            return true;
        }
        method == "tools/call" && name.is_some_and(|name| self.tools.iter().any(|g| g.matches(name)))
    }
}

/// The configured plugins, compiled, in order.
#[derive(Default)]
pub struct Chain {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.entries.iter().map(|e| &e.name)).finish()
    }
}

impl Chain {
    /// Compiles `configs` with the kinds of `registry`; an error names the key.
    pub fn compile(configs: &[PluginConfig], registry: &PluginRegistry) -> Result<Self, ConfigError> {
        compile(configs, registry, false)
    }

    /// Whether it has no plugin.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The plugins' names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.name.as_str())
    }

    /// The chain for a request whose tool or prompt the client named `client_name`.
    pub fn on<'a>(&'a self, client_name: Option<&'a str>) -> Plugged<'a> {
        Plugged {
            chain: self,
            client_name,
        }
    }
}

/// Checks `configs` as far as the shipped kinds go: every entry's common keys, and the options
/// of the shipped kinds. Other kinds are checked by the gateway's registry.
pub(crate) fn check(configs: &[PluginConfig]) -> Result<(), ConfigError> {
    compile(configs, &PluginRegistry::new(), true).map(|_| ())
}

fn compile(configs: &[PluginConfig], registry: &PluginRegistry, skip_unknown: bool) -> Result<Chain, ConfigError> {
    let mut entries: Vec<Entry> = Vec::with_capacity(configs.len());
    let mut names = std::collections::BTreeSet::new();
    for (i, config) in configs.iter().enumerate() {
        let key = format!("plugins[{i}]");
        crate::config::check_name(&format!("{key}.name"), &config.name)?;
        if !names.insert(config.name.as_str()) {
            return Err(ConfigError::Invalid {
                key: format!("{key}.name"),
                message: format!("`{}` names two plugins", config.name),
            });
        }
        if config.timeout.is_zero() {
            return Err(ConfigError::Invalid {
                key: format!("{key}.timeout"),
                message: "must be longer than 0".into(),
            });
        }
        let globs = |field: &str, patterns: &[String]| -> Result<Vec<Glob>, ConfigError> {
            patterns
                .iter()
                .enumerate()
                .map(|(j, pattern)| {
                    Glob::name(pattern).map_err(|message| ConfigError::Invalid {
                        key: format!("{key}.{field}[{j}]"),
                        message,
                    })
                })
                .collect()
        };
        let methods = globs("methods", &config.methods)?;
        let tools = globs("tools", &config.tools)?;
        let upstreams = globs("upstreams", &config.upstreams)?;
        let Some(constructor) = registry.kinds.get(&config.kind) else {
            if skip_unknown {
                continue;
            }
            let known: Vec<&str> = registry.kinds().collect();
            return Err(ConfigError::Invalid {
                key: format!("{key}.kind"),
                message: format!("unknown plugin kind `{}`; known: {}", config.kind, known.join(", ")),
            });
        };
        let mut options = Options::new(key, config.name.clone(), config.kind.clone(), config.options.clone());
        let plugin = constructor(&mut options)?;
        options.finish()?;
        entries.push(Entry {
            name: config.name.clone(),
            on_error: config.on_error,
            timeout: config.timeout,
            methods,
            tools,
            upstreams,
            plugin,
        });
    }
    Ok(Chain { entries })
}

/// The chain a relayed request goes through, and the name its client used.
#[derive(Clone, Copy)]
pub struct Plugged<'a> {
    chain: &'a Chain,
    client_name: Option<&'a str>,
}

/// Which hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// [`Plugin::before`].
    Before,
    /// [`Plugin::after`].
    After,
}

impl Hook {
    /// `before` or `after`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Before => "before",
            Self::After => "after",
        }
    }
}

/// A request a plugin refused.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    pub(crate) plugin: String,
    pub(crate) hook: Hook,
    pub(crate) reason: String,
}

/// The plugins that apply to one relayed request, as they run.
pub(crate) struct Run<'a> {
    entries: Vec<&'a Entry>,
    request: PluginRequest,
    /// Annotations by plugin name.
    annotations: Map<String, Value>,
    metrics: &'a Metrics,
}

impl<'a> Plugged<'a> {
    /// The plugins that apply to `method` with `params` (its `name`) to `upstream`.
    fn applying(
        &self,
        upstream: &Upstream,
        method: &str,
        params: &Map<String, Value>,
    ) -> impl Iterator<Item = &'a Entry> {
        let name = params.get("name").and_then(Value::as_str);
        let (upstream, chain) = (upstream.name(), self.chain);
        chain.entries.iter().filter(move |e| e.applies(method, upstream, name))
    }

    /// Whether any plugin applies ([`Plugged::start`] would run one).
    pub(crate) fn apply(&self, upstream: &Upstream, method: &str, params: &Map<String, Value>) -> bool {
        self.applying(upstream, method, params).next().is_some()
    }

    /// The plugins that apply to `method` with `params` to `upstream`, ready to run; `None`
    /// when none does (nothing is copied then).
    pub(crate) fn start(
        self,
        upstream: &'a Upstream,
        cx: &Context,
        method: &str,
        params: &Map<String, Value>,
    ) -> Option<Run<'a>> {
        let name = params.get("name").and_then(Value::as_str);
        let entries: Vec<&Entry> = self.applying(upstream, method, params).collect();
        if entries.is_empty() {
            return None;
        }
        let request = PluginRequest {
            method: method.to_string(),
            upstream: upstream.name().to_string(),
            name: name.map(str::to_string),
            client_name: self.client_name.map(str::to_string),
            uri: params.get("uri").and_then(Value::as_str).map(str::to_string),
            arguments: params.get("arguments").and_then(Value::as_object).cloned(),
            principal: cx.extension::<Principal>().cloned(),
            snapshot: upstream.snapshot(),
        };
        Some(Run {
            entries,
            request,
            annotations: Map::new(),
            metrics: upstream.metrics(),
        })
    }
}

impl Run<'_> {
    /// Runs the `before` hooks in order; the arguments they leave go into `params`.
    pub(crate) async fn before(&mut self, params: &mut Map<String, Value>) -> Result<(), Refusal> {
        let had_arguments = self.request.arguments.is_some();
        let hooked: Vec<&Entry> = self
            .entries
            .iter()
            .copied()
            .filter(|e| e.plugin.hooks().contains(&Hook::Before))
            .collect();
        if hooked.is_empty() {
            return Ok(());
        }
        for entry in hooked {
            let request = &mut self.request;
            let verdict = guarded(entry, || entry.plugin.before(request)).await;
            self.decide(entry, Hook::Before, verdict)?;
        }
        match &self.request.arguments {
            Some(arguments) => {
                params.insert("arguments".into(), Value::Object(arguments.clone()));
            }
            None if had_arguments => {
                params.remove("arguments");
            }
            None => {}
        }
        Ok(())
    }

    /// Runs the `after` hooks in order on `result`, then puts the annotations in its `_meta`.
    pub(crate) async fn after(&mut self, result: &mut Value) -> Result<(), Refusal> {
        let hooked: Vec<&Entry> = self
            .entries
            .iter()
            .copied()
            .filter(|e| e.plugin.hooks().contains(&Hook::After))
            .collect();
        for entry in hooked {
            let request = &self.request;
            let verdict = guarded(entry, || entry.plugin.after(request, &mut *result)).await;
            self.decide(entry, Hook::After, verdict)?;
        }
        if !self.annotations.is_empty()
            && let Some(object) = result.as_object_mut()
        {
            let meta = object.entry("_meta").or_insert_with(|| Value::Object(Map::new()));
            if let Some(meta) = meta.as_object_mut() {
                meta.insert(META_KEY.into(), Value::Object(self.annotations.clone()));
            }
        }
        Ok(())
    }

    /// The annotations gathered, by plugin name.
    pub(crate) fn annotations(&self) -> &Map<String, Value> {
        &self.annotations
    }

    /// Counts and logs one plugin's verdict, keeps its annotations, and says whether the chain
    /// goes on.
    fn decide(&mut self, entry: &Entry, hook: Hook, verdict: Result<Verdict, PluginError>) -> Result<(), Refusal> {
        let (plugin, method, upstream) = (
            entry.name.as_str(),
            self.request.method.as_str(),
            self.request.upstream.as_str(),
        );
        let refusal = |reason: String| Refusal {
            plugin: entry.name.clone(),
            hook,
            reason,
        };
        match verdict {
            Ok(verdict) => {
                if !verdict.annotations.is_empty() {
                    let mine = self
                        .annotations
                        .entry(entry.name.clone())
                        .or_insert_with(|| Value::Object(Map::new()));
                    if let Some(mine) = mine.as_object_mut() {
                        mine.extend(verdict.annotations);
                    }
                }
                match verdict.denied {
                    None => {
                        self.metrics.record_plugin(plugin, hook.as_str(), "continue");
                        Ok(())
                    }
                    Some(reason) => {
                        self.metrics.record_plugin(plugin, hook.as_str(), "deny");
                        tracing::info!(target: "portico::plugins", plugin, hook = hook.as_str(), method, upstream, reason, "plugin denied");
                        Err(refusal(reason))
                    }
                }
            }
            Err(error) => match entry.on_error {
                OnError::Deny => {
                    self.metrics.record_plugin(plugin, hook.as_str(), "failed_closed");
                    tracing::warn!(target: "portico::plugins", plugin, hook = hook.as_str(), method, upstream, error = %error, "plugin failed; the request is refused (on_error: deny)");
                    Err(refusal(format!("the plugin failed: {error}")))
                }
                OnError::Allow => {
                    self.metrics.record_plugin(plugin, hook.as_str(), "failed_open");
                    tracing::warn!(target: "portico::plugins", plugin, hook = hook.as_str(), method, upstream, error = %error, "plugin failed; the request goes on without it (on_error: allow)");
                    Ok(())
                }
            },
        }
    }
}

impl Refusal {
    /// The client's error.
    pub(crate) fn error(&self, annotations: &Map<String, Value>) -> ErrorObject {
        let mut data = json!({"plugin": self.plugin, "hook": self.hook.as_str(), "reason": self.reason});
        if !annotations.is_empty() {
            data["annotations"] = Value::Object(annotations.clone());
        }
        ErrorObject::new(
            PLUGIN_DENIED,
            format!("refused by plugin `{}`: {}", self.plugin, self.reason),
        )
        .with_data(data)
    }

    /// What the audit record's `detail` says.
    pub(crate) fn detail(&self) -> String {
        format!("plugin `{}` ({}): {}", self.plugin, self.hook.as_str(), self.reason)
    }
}

/// Runs one hook of `entry` within its timeout, a panic or a timeout being a failure.
async fn guarded<'a>(entry: &Entry, hook: impl FnOnce() -> PluginFuture<'a, Verdict>) -> Result<Verdict, PluginError> {
    let future = std::panic::catch_unwind(AssertUnwindSafe(hook)).map_err(|panic| panicked(&*panic))?;
    match tokio::time::timeout(entry.timeout, AssertUnwindSafe(future).catch_unwind()).await {
        Err(_) => Err(PluginError::new(format!("no answer within {:?}", entry.timeout))),
        Ok(Err(panic)) => Err(panicked(&*panic)),
        Ok(Ok(outcome)) => outcome,
    }
}

fn panicked(panic: &(dyn std::any::Any + Send)) -> PluginError {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into());
    PluginError::new(format!("it panicked: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configs(yaml: &str) -> Vec<PluginConfig> {
        serde_norway::from_str(yaml).expect("plugin configs")
    }

    fn error(yaml: &str) -> String {
        Chain::compile(&configs(yaml), &PluginRegistry::new())
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn entries_compile_and_errors_name_the_key() {
        let chain = Chain::compile(
            &configs("- {name: a, kind: deny_tools, patterns: ['x*']}\n- {name: b, kind: guard, max_argument_bytes: 10, methods: [tools/call], on_error: allow, timeout: 100ms}\n"),
            &PluginRegistry::new(),
        )
        .expect("compiles");
        assert_eq!(chain.names().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(chain.entries[1].on_error, OnError::Allow);
        assert_eq!(chain.entries[1].timeout, Duration::from_millis(100));

        assert_eq!(
            error("- {name: a, kind: nope}\n"),
            "plugins[0].kind: unknown plugin kind `nope`; known: deny_tools, guard, redact, webhook"
        );
        assert!(
            error("- {name: a, kind: guard, max_argument_bytes: 3, shema: true}\n")
                .starts_with("plugins[0].shema: is not a key of a `guard` plugin")
        );
        assert!(
            error("- {name: a, kind: guard, max_argument_bytes: many}\n")
                .starts_with("plugins[0].max_argument_bytes: invalid type")
        );
        assert!(
            error("- {name: a, kind: deny_tools, patterns: ['x']}\n- {name: a, kind: deny_tools, patterns: ['y']}\n")
                .starts_with("plugins[1].name: `a` names two plugins")
        );
        assert!(error("- {name: 'a b', kind: deny_tools, patterns: ['x']}\n").starts_with("plugins[0].name:"));
        assert!(
            error("- {name: a, kind: deny_tools, patterns: ['x'], methods: ['[x]']}\n")
                .starts_with("plugins[0].methods[0]:")
        );
        assert!(
            error("- {name: a, kind: deny_tools, patterns: ['x'], timeout: 0s}\n").starts_with("plugins[0].timeout:")
        );
        // The shipped check leaves kinds it does not know to the gateway's registry.
        check(&configs("- {name: a, kind: mine, anything: 1}\n")).expect("deferred");
        assert!(
            check(&configs(
                "- {name: a, kind: mine}\n- {name: a, kind: guard, max_argument_bytes: 1}\n"
            ))
            .is_err(),
            "common keys are checked whatever the kind"
        );
    }

    #[test]
    fn scope_patterns_pick_requests() {
        let chain = Chain::compile(
            &configs("- {name: a, kind: deny_tools, patterns: ['*'], tools: ['get_*'], upstreams: [files]}\n- {name: b, kind: guard, max_argument_bytes: 10, methods: ['resources/*']}\n"),
            &PluginRegistry::new(),
        )
        .expect("compiles");
        let (a, b) = (&chain.entries[0], &chain.entries[1]);
        assert!(a.applies("tools/call", "files", Some("get_x")));
        assert!(!a.applies("tools/call", "other", Some("get_x")));
        assert!(!a.applies("tools/call", "files", Some("put_x")));
        assert!(
            !a.applies("prompts/get", "files", Some("get_x")),
            "with `tools`, calls alone"
        );
        assert!(b.applies("resources/read", "any", None));
        assert!(!b.applies("tools/call", "any", Some("x")));
    }

    #[test]
    #[should_panic(expected = "registered already")]
    fn a_shipped_kind_cannot_be_replaced() {
        let _ = PluginRegistry::new().with("guard", |_: &mut Options| Ok(Box::new(Nothing) as Box<dyn Plugin>));
    }

    struct Nothing;
    impl Plugin for Nothing {}

    struct Panics;
    impl Plugin for Panics {
        fn before<'a>(&'a self, _request: &'a mut PluginRequest) -> PluginFuture<'a, Verdict> {
            Box::pin(async { panic!("boom") })
        }
    }

    #[tokio::test]
    async fn a_panic_or_a_timeout_is_a_failure() {
        let entry = |plugin: Box<dyn Plugin>| Entry {
            name: "p".into(),
            on_error: OnError::Deny,
            timeout: Duration::from_millis(50),
            methods: Vec::new(),
            tools: Vec::new(),
            upstreams: Vec::new(),
            plugin,
        };
        let panics = entry(Box::new(Panics));
        let mut request = PluginRequest::new("tools/call", "u");
        let outcome = guarded(&panics, || panics.plugin.before(&mut request)).await;
        assert_eq!(outcome, Err(PluginError::new("it panicked: boom")));

        struct Sleeps;
        impl Plugin for Sleeps {
            fn after<'a>(&'a self, _request: &'a PluginRequest, _result: &'a mut Value) -> PluginFuture<'a, Verdict> {
                Box::pin(async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Ok(Verdict::proceed())
                })
            }
        }
        let sleeps = entry(Box::new(Sleeps));
        let mut result = json!({});
        let outcome = guarded(&sleeps, || sleeps.plugin.after(&request, &mut result)).await;
        assert!(outcome.is_err_and(|e| e.to_string().contains("no answer within")));
    }
}
