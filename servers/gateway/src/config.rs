//! The gateway's configuration: the file `portico gateway --config` reads (YAML, or TOML for a
//! `.toml` file), decoded and checked whole before anything uses it. Every key is documented in
//! `docs/configuration.md`; an error names the key (`upstreams[1].url: …`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The address the gateway listens on (default `127.0.0.1:8080`).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Put between an upstream's prefix and an item's name on the aggregated endpoint
    /// (default `__`: `everything__echo`).
    #[serde(default = "default_separator")]
    pub separator: String,
    /// The upstream MCP servers.
    #[serde(default)]
    pub upstreams: Vec<UpstreamConfig>,
    /// Curated endpoints: chosen tools of chosen upstreams, renamed or redescribed.
    #[serde(default)]
    pub virtual_servers: Vec<VirtualServerConfig>,
    /// Bounds of what clients may send.
    #[serde(default)]
    pub limits: Limits,
    /// Rate limits: token buckets by principal, upstream, tool, method ([`crate::ratelimit`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate_limits: Vec<crate::ratelimit::RuleConfig>,
    /// The admin API.
    #[serde(default)]
    pub admin: AdminConfig,
    /// Traces.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// The state store shared by replicas.
    #[serde(default)]
    pub state: StateConfig,
    /// Who may call: bearer tokens checked on every MCP endpoint ([`crate::auth`]). Without
    /// it, the MCP endpoints are open. Read at start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthConfig>,
    /// What each caller may see and use ([`crate::policy`]). Without it, everything is
    /// allowed to everyone (who passed `auth`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyConfig>,
    /// The audit trail ([`crate::audit`]): off without it. Read at start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditConfig>,
    /// Caching of lists, `resources/read` and opted-in tool results ([`crate::cache`]): off
    /// without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<crate::cache::CacheConfig>,
    /// Plugins run on every relayed request, in order ([`crate::plugin`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<crate::plugin::PluginConfig>,
}

/// Role-based access: the roles a caller holds grant (or deny) upstreams, tools, resources and
/// prompts by pattern ([`crate::policy`] says how a decision is made).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// The role of a caller that holds none of `roles`: a token without roles (or only roles
    /// not defined here), or anyone when `auth` is off. None: such a caller is allowed nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_role: Option<String>,
    /// The roles, by name (the values of the token's `auth.roles_claim`).
    #[serde(default)]
    pub roles: BTreeMap<String, RoleConfig>,
}

/// One role.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    /// Its rules, in order (the order names the rule that decided; a deny wins wherever it is).
    #[serde(default)]
    pub grants: Vec<Grant>,
}

/// One rule: `allow` or `deny` (exactly one) the items it matches.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// Allows what it matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<Patterns>,
    /// Denies what it matches, whatever allows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny: Option<Patterns>,
}

/// What a rule matches. `upstreams` limits it to the upstreams named (default: every one);
/// the item lists (`tools`, `resources`, `prompts`) limit it to those kinds and names. A rule
/// with no item list matches every item of its upstreams; one with some lists matches only
/// items of the kinds listed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Patterns {
    /// Upstream names (`files`, `prod-*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstreams: Option<Vec<String>>,
    /// Tool names as the upstream names them (`read_*`), not as an endpoint serves them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<String>>,
    /// Resource URIs and resource templates (`file:///public/**`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Vec<String>>,
    /// Prompt names as the upstream names them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompts: Option<Vec<String>>,
}

/// How calls, refusals and admin changes are recorded ([`crate::audit`]), in the state store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Answer a call only once its record is committed (default `true`): an answered call
    /// always has its record, even if the gateway is killed right after. `false`: records are
    /// queued and written soon after (faster; a crash loses the queue).
    #[serde(default = "default_true")]
    pub durable: bool,
    /// When a record cannot be written: `deny` (default) answers the call with an error
    /// (`-32054`) instead of its result; `allow` answers it and logs the lost record.
    #[serde(default)]
    pub on_failure: AuditFailure,
    /// How long records are kept (default `90d`); older ones are deleted hourly.
    #[serde(default = "default_retention", with = "duration")]
    #[schemars(with = "String")]
    pub retention: Duration,
}

fn default_true() -> bool {
    true
}

fn default_retention() -> Duration {
    Duration::from_secs(90 * 24 * 3600)
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            durable: true,
            on_failure: AuditFailure::default(),
            retention: default_retention(),
        }
    }
}

/// What happens to a call whose audit record cannot be written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditFailure {
    /// The client gets an error instead of the result.
    #[default]
    Deny,
    /// The client gets the result; the loss is logged.
    Allow,
}

/// The gateway as an OAuth 2.1 resource server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// How tokens are checked.
    pub jwt: JwtConfig,
    /// The resource's identifier in the protected-resource metadata (its canonical URL,
    /// `https://gateway.example/mcp`); default: the URL a request came to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The authorization servers that issue tokens for it (metadata).
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    /// The scopes it knows (metadata).
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    /// Scopes every token must have (`403 insufficient_scope` otherwise).
    #[serde(default)]
    pub required_scopes: Vec<String>,
    /// The claim holding the caller's roles (a list, or space-separated; default `roles`).
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// Whether API keys made through the admin API (`Bearer pk_…`) are accepted besides JWTs
    /// (default `true`; [`crate::apikeys`]).
    #[serde(default = "default_true")]
    pub api_keys: bool,
}

fn default_roles_claim() -> String {
    "roles".into()
}

/// How JWTs are checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// The `iss` every token must have.
    pub issuer: String,
    /// The `aud` values a token may have (one of them; RFC 8707: the resource's URL).
    pub audience: Vec<String>,
    /// Keys, each checking one algorithm.
    #[serde(default)]
    pub keys: Vec<JwtKey>,
    /// A JWK set's URL: its keys are used by `kid`, fetched again for a `kid` not seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// Clock skew allowed on `exp` and `nbf` (default `30s`).
    #[serde(default = "default_leeway", with = "duration")]
    #[schemars(with = "String")]
    pub leeway: Duration,
    /// The longest token accepted, in bytes (default 8192).
    #[serde(default = "default_max_token_bytes")]
    pub max_token_bytes: usize,
}

fn default_leeway() -> Duration {
    Duration::from_secs(30)
}

fn default_max_token_bytes() -> usize {
    8192
}

/// A key tokens are signed with: `secret` for HS256/384/512, `pem` (a public key) for RS*,
/// PS*, ES256/384 and EdDSA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JwtKey {
    /// The `kid` tokens name it by; a key without one checks tokens without a `kid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Its algorithm: `HS256`, `HS384`, `HS512`, `RS256`, `RS384`, `RS512`, `PS256`,
    /// `PS384`, `PS512`, `ES256`, `ES384`, `EdDSA`.
    pub alg: String,
    /// The shared secret of an HMAC key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The PEM of a public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pem: Option<String>,
}

/// Where the gateway keeps what its replicas share — sessions and the admin API's changes
/// ([`crate::store`]) — and how replicas hear of changes. Read at start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// `sqlite://FILE` (created when missing; default `sqlite://portico-gateway.db`, in the
    /// working directory), `sqlite::memory:` (this process alone; nothing kept) or
    /// `postgres://user[:password]@host[:port]/database`.
    #[serde(default = "default_state_url")]
    pub url: String,
    /// `redis://host[:port]`: a change made on one replica is announced there, and the others
    /// apply it at once. Without it they notice within `poll_interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<String>,
    /// How often the store is checked for changes made on other replicas (default `2s`).
    #[serde(default = "default_poll_interval", with = "duration")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
}

fn default_state_url() -> String {
    "sqlite://portico-gateway.db".into()
}

fn default_poll_interval() -> Duration {
    Duration::from_secs(2)
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            url: default_state_url(),
            redis: None,
            poll_interval: default_poll_interval(),
        }
    }
}

/// Distributed traces: a server span per client request, a client span per call relayed to an
/// upstream (its W3C trace context passed on in `_meta.traceparent` and the `traceparent`
/// header), sent to an OpenTelemetry collector over OTLP/HTTP when `otlp_endpoint` is set.
/// Read at start: changes take effect at restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// The collector's OTLP/HTTP base URL (`http://otel-collector:4318`); spans go to
    /// `/v1/traces` there. None: no spans are sent (trace contexts are still passed on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    /// The `service.name` of the spans (default `portico-gateway`).
    #[serde(default = "default_service_name")]
    pub service_name: String,
}

fn default_service_name() -> String {
    "portico-gateway".into()
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: default_service_name(),
        }
    }
}

/// The admin API (`/admin/…`): open to anyone who can reach the listener when `listen` is a
/// loopback address and no `token` is set; with a `token`, every request must carry
/// `Authorization: Bearer <token>`; on another address without a token it is off (`404`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// The bearer token the admin API requires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_separator() -> String {
    "__".into()
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            separator: default_separator(),
            upstreams: Vec::new(),
            virtual_servers: Vec::new(),
            limits: Limits::default(),
            rate_limits: Vec::new(),
            admin: AdminConfig::default(),
            telemetry: TelemetryConfig::default(),
            state: StateConfig::default(),
            auth: None,
            audit: None,
            policy: None,
            cache: None,
            plugins: Vec::new(),
        }
    }
}

/// One upstream MCP server: exactly one of `command` (stdio), `url` (HTTP, WebSocket),
/// `builtin` (in process) or `replicas` (several of those, serving the same thing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Its name: letters, digits, `-` and `_`. Its endpoint is `/mcp/<name>`.
    pub name: String,
    /// A stdio server: the program and its arguments, spawned by the gateway and restarted
    /// with backoff when it exits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Environment variables for `command`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// The working directory of `command`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
    /// A remote server: `http(s)://` (Streamable HTTP, or legacy HTTP+SSE with
    /// `transport: sse`) or `ws(s)://` (WebSocket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// How `url` is reached; default from its scheme (`streamable-http` or `websocket`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<TransportKind>,
    /// A server built into Portico, run in the gateway's process: `everything`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<String>,
    /// Which protocol generation to speak (default `auto`).
    #[serde(default)]
    pub protocol: ProtocolChoice,
    /// Put before its tools' and prompts' names on the aggregated endpoint, followed by the
    /// separator; default: the name. `""` serves them unprefixed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// How long one call may take (default `60s`; units `ms`, `s`, `m`).
    #[serde(default = "default_timeout", with = "duration")]
    #[schemars(with = "String")]
    pub timeout: Duration,
    /// Several servers serving the same thing, in place of `command`, `url` or `builtin`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<ReplicaConfig>,
    /// How a call picks a replica (default `round-robin`).
    #[serde(default)]
    pub balance: Balance,
    /// Active health checks of each replica.
    #[serde(default)]
    pub health: HealthConfig,
    /// The circuit breaker of each replica (passive outlier detection).
    #[serde(default)]
    pub breaker: BreakerConfig,
    /// How many more replicas an idempotent call (`resources/read`, `prompts/get`,
    /// `completion/complete`) is tried on when its replica fails (default 1). `tools/call` is
    /// never retried.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// HTTP headers sent with every request to a `url` replica: the gateway's own credentials
    /// for it (a client's are never passed on).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// OAuth credentials of the gateway's own for a `url` upstream: tokens from the client
    /// credentials grant, and optionally each caller's token exchanged for one of its own
    /// ([`crate::credentials`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth: Option<OAuthConfig>,
    /// Calls in flight to one replica at most (default 256); a replica at its limit is not
    /// picked, and a call no replica has room for is refused (`-32050`) rather than queued.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// The largest message accepted from the upstream, in bytes (default 16 MiB).
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
}

fn default_retries() -> u32 {
    1
}

/// The gateway's OAuth client at one upstream ([`crate::credentials`]): the client credentials
/// grant gives the token of every request the gateway makes there; with `token_exchange`, the
/// calls it relays for a caller carry a token exchanged for that caller's instead. `Debug`
/// shows no secret; `GET /admin/config` neither.
#[derive(Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuthConfig {
    /// The gateway's client id at the authorization server.
    pub client_id: String,
    /// The client secret (prefer `client_secret_env`, which keeps it out of the file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// The environment variable holding the client secret, read when the configuration is
    /// loaded (it must be set then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_env: Option<String>,
    /// The scopes asked for (default: those the upstream's metadata lists).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// The token endpoint; default: discovered from the upstream's protected resource metadata
    /// (RFC 9728) and its authorization server's metadata (RFC 8414).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    /// The RFC 8707 `resource` asked for; default: the upstream's protected resource
    /// metadata's `resource`, else its URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// How the gateway authenticates at the token endpoint: `client_secret_basic` or
    /// `client_secret_post`; default: what the authorization server's metadata lists
    /// (`client_secret_basic` when it lists nothing or the endpoint is configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth: Option<TokenEndpointAuthMethod>,
    /// How long before its expiry a token is replaced (default `30s`).
    #[serde(default = "default_refresh_margin", with = "duration")]
    #[schemars(with = "String")]
    pub refresh_margin: Duration,
    /// Exchange each caller's token (RFC 8693) for the token of its calls to this upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_exchange: Option<TokenExchangeConfig>,
}

/// Token exchange (RFC 8693) for one upstream: the caller's validated token is the subject
/// token; the token obtained for it is cached per caller token and carried by that caller's
/// calls only. The client authentication is the `oauth` section's unless given here.
#[derive(Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenExchangeConfig {
    /// The token endpoint exchanges go to; default: `oauth.token_endpoint`, else discovered as
    /// there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    /// The `audience` parameter (the upstream's logical name at the authorization server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// The scopes asked for (default: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Another client id for exchanges (default: `oauth.client_id`, and its secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// That client's secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// The environment variable holding that client's secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_env: Option<String>,
    /// How exchanges authenticate at the token endpoint (default: `oauth.token_endpoint_auth`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth: Option<TokenEndpointAuthMethod>,
    /// Callers whose exchanged tokens are cached at most (default 10 000); beyond, expired
    /// ones are dropped first.
    #[serde(default = "default_max_subjects")]
    pub max_subjects: usize,
}

/// How a client authenticates at a token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenEndpointAuthMethod {
    /// HTTP Basic with the client id and secret.
    ClientSecretBasic,
    /// The id and secret in the form body.
    ClientSecretPost,
}

fn default_refresh_margin() -> Duration {
    Duration::from_secs(30)
}

fn default_max_subjects() -> usize {
    10_000
}

impl std::fmt::Debug for OAuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "<redacted>"))
            .field("client_secret_env", &self.client_secret_env)
            .field("scopes", &self.scopes)
            .field("token_endpoint", &self.token_endpoint)
            .field("resource", &self.resource)
            .field("token_endpoint_auth", &self.token_endpoint_auth)
            .field("refresh_margin", &self.refresh_margin)
            .field("token_exchange", &self.token_exchange)
            .finish()
    }
}

impl std::fmt::Debug for TokenExchangeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenExchangeConfig")
            .field("token_endpoint", &self.token_endpoint)
            .field("audience", &self.audience)
            .field("scopes", &self.scopes)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "<redacted>"))
            .field("client_secret_env", &self.client_secret_env)
            .field("token_endpoint_auth", &self.token_endpoint_auth)
            .field("max_subjects", &self.max_subjects)
            .finish()
    }
}

impl OAuthConfig {
    /// Client credentials: `client_id` with its secret, from `client_secret` or the
    /// environment variable `client_secret_env`.
    pub fn new(client_id: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: None,
            client_secret_env: None,
            scopes: Vec::new(),
            token_endpoint: None,
            resource: None,
            token_endpoint_auth: None,
            refresh_margin: default_refresh_margin(),
            token_exchange: None,
        }
    }

    /// `key` names this section (`upstreams[0].oauth`).
    fn check(&self, key: &str) -> Result<(), ConfigError> {
        if self.client_id.is_empty() {
            return Err(invalid(format!("{key}.client_id"), "must not be empty"));
        }
        secret(key, self.client_secret.as_deref(), self.client_secret_env.as_deref())?;
        check_scopes(&format!("{key}.scopes"), &self.scopes)?;
        if let Some(endpoint) = &self.token_endpoint {
            check_http_url(&format!("{key}.token_endpoint"), endpoint)?;
        }
        if let Some(resource) = &self.resource {
            let parsed = reqwest::Url::parse(resource);
            if parsed
                .as_ref()
                .map_or(true, |u| u.fragment().is_some() || u.cannot_be_a_base())
            {
                return Err(invalid(
                    format!("{key}.resource"),
                    format!("`{resource}` is not an absolute URI without a fragment (RFC 8707)"),
                ));
            }
        }
        if let Some(exchange) = &self.token_exchange {
            let key = format!("{key}.token_exchange");
            if let Some(endpoint) = &exchange.token_endpoint {
                check_http_url(&format!("{key}.token_endpoint"), endpoint)?;
            }
            check_scopes(&format!("{key}.scopes"), &exchange.scopes)?;
            match &exchange.client_id {
                Some(id) if id.is_empty() => return Err(invalid(format!("{key}.client_id"), "must not be empty")),
                Some(_) => {
                    secret(
                        &key,
                        exchange.client_secret.as_deref(),
                        exchange.client_secret_env.as_deref(),
                    )?;
                }
                None if exchange.client_secret.is_some() || exchange.client_secret_env.is_some() => {
                    return Err(invalid(
                        key,
                        "a `client_secret` or `client_secret_env` here needs its own `client_id`",
                    ));
                }
                None => {}
            }
            if exchange.max_subjects == 0 {
                return Err(invalid(format!("{key}.max_subjects"), "must be at least 1"));
            }
        }
        Ok(())
    }

    /// The client secret: `client_secret`, or the value of `client_secret_env` now.
    pub fn secret(&self) -> Result<String, String> {
        secret(
            "oauth",
            self.client_secret.as_deref(),
            self.client_secret_env.as_deref(),
        )
        .map_err(|e| e.to_string())
    }
}

impl TokenExchangeConfig {
    /// The client secret of exchanges: their own client's, else `oauth`'s.
    pub fn secret(&self, oauth: &OAuthConfig) -> Result<String, String> {
        match &self.client_id {
            Some(_) => secret(
                "oauth.token_exchange",
                self.client_secret.as_deref(),
                self.client_secret_env.as_deref(),
            )
            .map_err(|e| e.to_string()),
            None => oauth.secret(),
        }
    }
}

/// A client secret, given or from the environment (exactly one of the two); `key` names the
/// section holding them.
fn secret(key: &str, given: Option<&str>, env: Option<&str>) -> Result<String, ConfigError> {
    match (given, env) {
        (Some(_), Some(_)) | (None, None) => Err(invalid(
            key,
            "needs exactly one of `client_secret` and `client_secret_env`",
        )),
        (Some(""), None) => Err(invalid(format!("{key}.client_secret"), "must not be empty")),
        (Some(secret), None) => Ok(secret.to_string()),
        (None, Some(name)) => match std::env::var(name) {
            Ok(value) if !value.is_empty() => Ok(value),
            _ => Err(invalid(
                format!("{key}.client_secret_env"),
                format!("the environment variable `{name}` is not set"),
            )),
        },
    }
}

/// Scopes are non-empty and have no spaces (RFC 6749 §3.3).
fn check_scopes(key: &str, scopes: &[String]) -> Result<(), ConfigError> {
    for (i, scope) in scopes.iter().enumerate() {
        if scope.is_empty() || scope.contains(char::is_whitespace) || scope.contains(['"', '\\']) {
            return Err(invalid(
                format!("{key}[{i}]"),
                format!("`{scope}` is not a scope (non-empty, no spaces, quotes or backslashes)"),
            ));
        }
    }
    Ok(())
}

/// An `http://` or `https://` URL with a host.
fn check_http_url(key: &str, url: &str) -> Result<(), ConfigError> {
    let ok = reqwest::Url::parse(url)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty()));
    if ok {
        Ok(())
    } else {
        Err(invalid(key, format!("`{url}` is not an http:// or https:// URL")))
    }
}

fn default_max_in_flight() -> usize {
    256
}

fn default_max_message_bytes() -> usize {
    16 << 20
}

/// One replica of an upstream: exactly one of `command`, `url` or `builtin`, with the same
/// meaning as on the upstream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplicaConfig {
    /// A stdio server's program and arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Environment variables for `command`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// The working directory of `command`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
    /// A remote server's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// How `url` is reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<TransportKind>,
    /// A built-in server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<String>,
}

/// How a call picks one of an upstream's replicas (among those connected and not held off by
/// their breaker).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Balance {
    /// Each in turn.
    #[default]
    RoundRobin,
    /// The one with the fewest calls in flight.
    LeastInFlight,
    /// The same one for every call of a client's session (by a hash of the session), the next
    /// available one when it is not.
    SessionHash,
}

/// Active health checks: every `interval`, each connected replica is sent `ping` (a session)
/// or `server/discover` (2026-07-28); a check that fails or takes longer than `timeout`
/// opens the replica's breaker, one that passes after the breaker's `open_for` closes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// How often (default `10s`).
    #[serde(default = "default_health_interval", with = "duration")]
    #[schemars(with = "String")]
    pub interval: Duration,
    /// How long a check may take (default `2s`).
    #[serde(default = "default_health_timeout", with = "duration")]
    #[schemars(with = "String")]
    pub timeout: Duration,
}

fn default_health_interval() -> Duration {
    Duration::from_secs(10)
}

fn default_health_timeout() -> Duration {
    Duration::from_secs(2)
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            interval: default_health_interval(),
            timeout: default_health_timeout(),
        }
    }
}

/// A replica's circuit breaker: `failures` calls in a row failing for the replica's sake (no
/// connection, a transport error, a timeout — not an error the server answered) open it; while
/// open no call goes there; after `open_for` one trial call (or a passing health check) may
/// go, and closes it if it succeeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// Failures in a row that open it (default 3).
    #[serde(default = "default_breaker_failures")]
    pub failures: u32,
    /// How long it stays open before a trial (default `5s`).
    #[serde(default = "default_open_for", with = "duration")]
    #[schemars(with = "String")]
    pub open_for: Duration,
}

fn default_breaker_failures() -> u32 {
    3
}

fn default_open_for() -> Duration {
    Duration::from_secs(5)
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failures: default_breaker_failures(),
            open_for: default_open_for(),
        }
    }
}

fn default_timeout() -> Duration {
    Duration::from_secs(60)
}

/// How a `url` upstream is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TransportKind {
    /// Streamable HTTP (2025-03-26 and later).
    StreamableHttp,
    /// The legacy HTTP+SSE transport (2024-11-05): `url` is the SSE endpoint.
    Sse,
    /// WebSocket.
    Websocket,
}

/// Which protocol generation the gateway speaks to an upstream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ProtocolChoice {
    /// `server/discover` first (2026-07-28), `initialize` if the server does not know it.
    #[default]
    Auto,
    /// 2026-07-28 only.
    Stateless,
    /// A 2025-x session (`initialize`), whatever else the server speaks.
    Stateful,
}

/// A curated endpoint at `/mcp/<name>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VirtualServerConfig {
    /// Its name (same rules as an upstream's, and distinct from every upstream's).
    pub name: String,
    /// Instructions for the model, sent in `initialize` and `server/discover`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// The tools it serves.
    pub tools: Vec<VirtualTool>,
    /// The roles that may use it (roles of `policy.roles`); empty (the default): every caller.
    /// Others find no such endpoint. The policy's grants still decide which of its tools a
    /// caller sees.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// One tool of a virtual server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VirtualTool {
    /// The upstream serving it.
    pub upstream: String,
    /// Its name there.
    pub tool: String,
    /// Its name here (default: the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rename: Option<String>,
    /// Its description here (default: the upstream's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Bounds of what clients may send and hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// The largest request body, in bytes (default 4 MiB).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Stateful sessions held at once per endpoint (default 10 000).
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
}

fn default_max_body() -> usize {
    4 << 20
}

fn default_max_sessions() -> usize {
    10_000
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: default_max_body(),
            max_sessions: default_max_sessions(),
        }
    }
}

/// The built-in servers an upstream can name.
pub const BUILTINS: &[&str] = &["everything"];

/// What is wrong with a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The text is not a configuration (bad syntax, unknown or mistyped key).
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, which names the key and the line.
        message: String,
    },
    /// A value is not allowed.
    #[error("{key}: {message}")]
    Invalid {
        /// The key, e.g. `upstreams[1].url`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

impl Config {
    /// Reads and checks the file at `path`: TOML when it ends in `.toml`, YAML otherwise.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let toml = path.extension().is_some_and(|e| e == "toml");
        Self::parse(&text, toml).map_err(|e| match e {
            ConfigError::Syntax { message, .. } => ConfigError::Syntax {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// Decodes and checks configuration text (TOML when `toml`, else YAML).
    pub fn parse(text: &str, toml: bool) -> Result<Self, ConfigError> {
        let syntax = |message: String| ConfigError::Syntax {
            path: PathBuf::new(),
            message,
        };
        let config: Self = if toml {
            toml::from_str(text).map_err(|e| syntax(e.to_string().trim_end().to_string()))?
        } else if text.trim().is_empty() {
            Self::default()
        } else {
            serde_norway::from_str(text).map_err(|e| syntax(e.to_string()))?
        };
        config.check()?;
        Ok(config)
    }

    /// Checks what decoding cannot: names, references, exactly one transport per upstream.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.separator.is_empty() || self.separator.contains('/') {
            return Err(invalid("separator", "must be non-empty and must not contain `/`"));
        }
        let mut names = BTreeSet::new();
        for (i, upstream) in self.upstreams.iter().enumerate() {
            let key = format!("upstreams[{i}]");
            check_name(&format!("{key}.name"), &upstream.name)?;
            if !names.insert(upstream.name.as_str()) {
                return Err(invalid(
                    format!("{key}.name"),
                    format!("`{}` names two upstreams", upstream.name),
                ));
            }
            upstream.check(&key)?;
            if upstream.oauth.as_ref().is_some_and(|o| o.token_exchange.is_some()) && self.auth.is_none() {
                return Err(invalid(
                    format!("{key}.oauth.token_exchange"),
                    "needs `auth`: the caller's validated token is what is exchanged",
                ));
            }
        }
        for (i, server) in self.virtual_servers.iter().enumerate() {
            let key = format!("virtual_servers[{i}]");
            check_name(&format!("{key}.name"), &server.name)?;
            if !names.insert(server.name.as_str()) {
                return Err(invalid(
                    format!("{key}.name"),
                    format!("`{}` is already the name of an upstream or virtual server", server.name),
                ));
            }
            let mut tools = BTreeSet::new();
            for (j, tool) in server.tools.iter().enumerate() {
                let key = format!("{key}.tools[{j}]");
                if !self.upstreams.iter().any(|u| u.name == tool.upstream) {
                    return Err(invalid(
                        format!("{key}.upstream"),
                        format!("no upstream is named `{}`", tool.upstream),
                    ));
                }
                let exposed = tool.rename.as_deref().unwrap_or(&tool.tool);
                if exposed.is_empty() {
                    return Err(invalid(format!("{key}.rename"), "must not be empty"));
                }
                if !tools.insert(exposed) {
                    return Err(invalid(key, format!("two tools are named `{exposed}` here")));
                }
            }
            for (j, role) in server.roles.iter().enumerate() {
                let known = self.policy.as_ref().is_some_and(|p| p.roles.contains_key(role));
                if !known {
                    return Err(invalid(
                        format!("{key}.roles[{j}]"),
                        format!("no role `{role}` is defined in `policy.roles`"),
                    ));
                }
            }
        }
        if let Some(policy) = &self.policy {
            crate::policy::Policy::compile(policy).map_err(|(key, message)| invalid(key, message))?;
        }
        if self.limits.max_body_bytes == 0 {
            return Err(invalid("limits.max_body_bytes", "must be at least 1"));
        }
        if let Some(endpoint) = &self.telemetry.otlp_endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(invalid(
                "telemetry.otlp_endpoint",
                format!("`{endpoint}` is not an http:// or https:// URL"),
            ));
        }
        if !(self.state.url.starts_with("sqlite://")
            || self.state.url == crate::store::MEMORY
            || self.state.url.starts_with("postgres://")
            || self.state.url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "state.url",
                format!("`{}` is neither a sqlite:// nor a postgres:// URL", self.state.url),
            ));
        }
        if let Some(redis) = &self.state.redis
            && let Err(message) = crate::redis::Address::parse(redis)
        {
            return Err(invalid("state.redis", message));
        }
        if self.state.poll_interval.is_zero() {
            return Err(invalid("state.poll_interval", "must be longer than 0"));
        }
        if let Some(auth) = &self.auth {
            if auth.jwt.keys.is_empty() && auth.jwt.jwks_url.is_none() {
                return Err(invalid("auth.jwt", "needs `keys` or a `jwks_url`"));
            }
            if auth.jwt.audience.is_empty() {
                return Err(invalid("auth.jwt.audience", "must name at least one audience"));
            }
            if let Err((i, message)) = crate::auth::check_keys(&auth.jwt.keys) {
                return Err(invalid(format!("auth.jwt.keys[{i}]"), message));
            }
        }
        if self.limits.max_sessions == 0 {
            return Err(invalid("limits.max_sessions", "must be at least 1"));
        }
        crate::ratelimit::check(self)?;
        crate::cache::check(self)?;
        crate::plugin::check(&self.plugins)?;
        Ok(())
    }

    /// The upstream named `name`.
    pub fn upstream(&self, name: &str) -> Option<&UpstreamConfig> {
        self.upstreams.iter().find(|u| u.name == name)
    }
}

impl UpstreamConfig {
    /// An upstream reached at `url`, with every other key at its default.
    pub fn url(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            url: Some(url.into()),
            ..Self::empty(name.into())
        }
    }

    /// A stdio upstream running `command`.
    pub fn command(name: impl Into<String>, command: Vec<String>) -> Self {
        Self {
            command: Some(command),
            ..Self::empty(name.into())
        }
    }

    /// A built-in server run in process.
    pub fn builtin(name: impl Into<String>, builtin: impl Into<String>) -> Self {
        Self {
            builtin: Some(builtin.into()),
            ..Self::empty(name.into())
        }
    }

    fn empty(name: String) -> Self {
        Self {
            name,
            command: None,
            env: BTreeMap::new(),
            cwd: None,
            url: None,
            transport: None,
            builtin: None,
            protocol: ProtocolChoice::Auto,
            prefix: None,
            timeout: default_timeout(),
            replicas: Vec::new(),
            balance: Balance::default(),
            health: HealthConfig::default(),
            breaker: BreakerConfig::default(),
            retries: default_retries(),
            headers: BTreeMap::new(),
            oauth: None,
            max_in_flight: default_max_in_flight(),
            max_message_bytes: default_max_message_bytes(),
        }
    }

    /// Its replicas: `replicas`, or the one its own `command`, `url` or `builtin` names.
    pub fn targets(&self) -> Vec<ReplicaConfig> {
        if !self.replicas.is_empty() {
            return self.replicas.clone();
        }
        vec![ReplicaConfig {
            command: self.command.clone(),
            env: self.env.clone(),
            cwd: self.cwd.clone(),
            url: self.url.clone(),
            transport: self.transport,
            builtin: self.builtin.clone(),
        }]
    }

    /// The prefix of its items on the aggregated endpoint.
    pub fn prefix(&self) -> &str {
        self.prefix.as_deref().unwrap_or(&self.name)
    }

    fn check(&self, key: &str) -> Result<(), ConfigError> {
        let own = self.command.is_some() || self.url.is_some() || self.builtin.is_some();
        let own_extras = !self.env.is_empty() || self.cwd.is_some() || self.transport.is_some();
        if !self.replicas.is_empty() && (own || own_extras) {
            return Err(invalid(
                key,
                format!(
                    "upstream `{}` has `replicas`: its `command`, `url`, `builtin`, `env`, `cwd` and `transport` go in each replica",
                    self.name
                ),
            ));
        }
        if self.replicas.is_empty() && !own {
            return Err(invalid(
                key,
                format!(
                    "upstream `{}` needs exactly one of `command` (stdio), `url` (HTTP, WebSocket), `builtin` and `replicas`",
                    self.name
                ),
            ));
        }
        if self.replicas.is_empty() {
            self.targets()[0].check(key)?;
        }
        for (i, replica) in self.replicas.iter().enumerate() {
            replica.check(&format!("{key}.replicas[{i}]"))?;
        }
        if let Some(prefix) = &self.prefix
            && !prefix.is_empty()
        {
            check_name(&format!("{key}.prefix"), prefix)?;
        }
        if self.timeout.is_zero() {
            return Err(invalid(format!("{key}.timeout"), "must be longer than 0"));
        }
        if self.health.interval.is_zero() || self.health.timeout.is_zero() {
            return Err(invalid(
                format!("{key}.health"),
                "`interval` and `timeout` must be longer than 0",
            ));
        }
        if self.breaker.failures == 0 {
            return Err(invalid(format!("{key}.breaker.failures"), "must be at least 1"));
        }
        if self.max_in_flight == 0 {
            return Err(invalid(format!("{key}.max_in_flight"), "must be at least 1"));
        }
        if self.max_message_bytes < 1024 {
            return Err(invalid(format!("{key}.max_message_bytes"), "must be at least 1024"));
        }
        for (name, value) in &self.headers {
            if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err()
                || axum::http::HeaderValue::from_str(value).is_err()
            {
                return Err(invalid(
                    format!("{key}.headers.{name}"),
                    "is not a valid HTTP header name and value",
                ));
            }
        }
        if let Some(oauth) = &self.oauth {
            self.check_oauth(key, oauth)?;
        }
        Ok(())
    }

    /// Where `oauth` applies: `url` replicas; token exchange on stateless Streamable HTTP ones.
    fn check_oauth(&self, key: &str, oauth: &OAuthConfig) -> Result<(), ConfigError> {
        let key = format!("{key}.oauth");
        let targets = self.targets();
        if targets.iter().any(|t| t.url.is_none()) {
            return Err(invalid(
                key,
                "applies to `url` upstreams only (Streamable HTTP, WebSocket, legacy SSE)",
            ));
        }
        if let Some(name) = self.headers.keys().find(|n| n.eq_ignore_ascii_case("authorization")) {
            return Err(invalid(
                key,
                format!("sets `Authorization`: remove `headers.{name}`, or `oauth`"),
            ));
        }
        oauth.check(&key)?;
        if oauth.token_exchange.is_some() {
            let key = format!("{key}.token_exchange");
            if self.protocol != ProtocolChoice::Stateless {
                return Err(invalid(
                    key,
                    "needs `protocol: stateless`: a caller's token goes on that caller's calls alone, which a session shared by every caller cannot do",
                ));
            }
            if targets
                .iter()
                .any(|t| t.transport_kind() != TransportKind::StreamableHttp)
            {
                return Err(invalid(
                    key,
                    "needs Streamable HTTP (`http://` or `https://`, no `transport: sse`): WebSocket and legacy SSE authorize their connection once, for every caller",
                ));
            }
        }
        Ok(())
    }
}

impl ReplicaConfig {
    /// How `url` is reached (from `transport`, else its scheme).
    pub fn transport_kind(&self) -> TransportKind {
        match (self.transport, self.url.as_deref()) {
            (Some(kind), _) => kind,
            (None, Some(url)) if url.starts_with("ws://") || url.starts_with("wss://") => TransportKind::Websocket,
            _ => TransportKind::StreamableHttp,
        }
    }

    /// What it is, for logs and `/readyz`: the URL, the program, or the built-in's name.
    pub fn describe(&self) -> String {
        if let Some(url) = &self.url {
            url.clone()
        } else if let Some(command) = &self.command {
            command.join(" ")
        } else {
            format!("builtin:{}", self.builtin.as_deref().unwrap_or("?"))
        }
    }

    /// `key` names the upstream (its single replica) or `….replicas[i]`.
    fn check(&self, key: &str) -> Result<(), ConfigError> {
        let given = [self.command.is_some(), self.url.is_some(), self.builtin.is_some()];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(invalid(
                key,
                "needs exactly one of `command` (stdio), `url` (HTTP, WebSocket) and `builtin`",
            ));
        }
        if let Some(command) = &self.command
            && command.first().is_none_or(String::is_empty)
        {
            return Err(invalid(format!("{key}.command"), "must name a program"));
        }
        if self.command.is_none() && (!self.env.is_empty() || self.cwd.is_some()) {
            return Err(invalid(key, "`env` and `cwd` apply to `command` only"));
        }
        if let Some(url) = &self.url {
            let schemes: &[&str] = match self.transport {
                Some(TransportKind::Websocket) => &["ws://", "wss://"],
                Some(_) => &["http://", "https://"],
                None => &["http://", "https://", "ws://", "wss://"],
            };
            if !schemes.iter().any(|s| url.starts_with(s)) || url.len() <= 8 {
                return Err(invalid(
                    format!("{key}.url"),
                    format!("`{url}` is not a URL starting with {}", schemes.join(" or ")),
                ));
            }
        } else if self.transport.is_some() {
            return Err(invalid(format!("{key}.transport"), "applies to `url` only"));
        }
        if let Some(builtin) = &self.builtin
            && !BUILTINS.contains(&builtin.as_str())
        {
            return Err(invalid(
                format!("{key}.builtin"),
                format!("unknown built-in server `{builtin}`; known: {}", BUILTINS.join(", ")),
            ));
        }
        Ok(())
    }
}

/// Checks a name of the configuration's (an upstream's, a plugin's): 1 to 64 letters, digits,
/// `-` or `_`.
pub(crate) fn check_name(key: &str, name: &str) -> Result<(), ConfigError> {
    let ok =
        !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!("`{name}` must be 1 to 64 letters, digits, `-` or `_`"),
        ))
    }
}

/// Durations as text: `250ms`, `30s`, `5m`, `12h`, `90d`.
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Reads `250ms`, `30s`, `5m`, `12h` or `90d`.
    pub fn parse(text: &str) -> Result<Duration, String> {
        let text = text.trim();
        let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: u64 = number
            .parse()
            .map_err(|_| format!("`{text}` is not a duration such as `250ms`, `30s` or `5m`"))?;
        match unit.trim() {
            "ms" => Ok(Duration::from_millis(number)),
            "s" => Ok(Duration::from_secs(number)),
            "m" => Ok(Duration::from_secs(number.saturating_mul(60))),
            "h" => Ok(Duration::from_secs(number.saturating_mul(3600))),
            "d" => Ok(Duration::from_secs(number.saturating_mul(86_400))),
            _ => Err(format!(
                "`{text}` has no unit `ms`, `s`, `m`, `h` or `d` (such as `250ms`, `30s` or `5m`)"
            )),
        }
    }

    /// Writes the shortest exact form.
    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        let ms = value.as_millis();
        let text = if ms.is_multiple_of(86_400_000) && ms > 0 {
            format!("{}d", ms / 86_400_000)
        } else if ms.is_multiple_of(3_600_000) && ms > 0 {
            format!("{}h", ms / 3_600_000)
        } else if ms.is_multiple_of(60_000) && ms > 0 {
            format!("{}m", ms / 60_000)
        } else if ms.is_multiple_of(1000) {
            format!("{}s", ms / 1000)
        } else {
            format!("{ms}ms")
        };
        serializer.serialize_str(&text)
    }

    /// Reads a duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        Config::parse(text, false).unwrap_err().to_string()
    }

    #[test]
    fn yaml_and_toml_read_the_same_config() {
        let yaml = "listen: 127.0.0.1:9000\nupstreams:\n  - name: a\n    command: [portico, serve, everything, --stdio]\n    timeout: 5s\n  - name: b\n    url: ws://127.0.0.1:1/mcp\n    prefix: ''\n";
        let toml = "listen = \"127.0.0.1:9000\"\n[[upstreams]]\nname = \"a\"\ncommand = [\"portico\", \"serve\", \"everything\", \"--stdio\"]\ntimeout = \"5s\"\n[[upstreams]]\nname = \"b\"\nurl = \"ws://127.0.0.1:1/mcp\"\nprefix = \"\"\n";
        let a = Config::parse(yaml, false).unwrap();
        let b = Config::parse(toml, true).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.upstreams[0].timeout, Duration::from_secs(5));
        assert_eq!(a.upstreams[1].targets()[0].transport_kind(), TransportKind::Websocket);
        assert_eq!(a.upstreams[1].prefix(), "");
        assert_eq!(a.upstreams[0].prefix(), "a");
        assert_eq!(a.separator, "__");
    }

    #[test]
    fn errors_name_the_key() {
        assert!(error("upstreams:\n  - name: a\n    comand: [x]\n").contains("unknown field `comand`"));
        assert_eq!(
            error("upstreams:\n  - name: a\n"),
            "upstreams[0]: upstream `a` needs exactly one of `command` (stdio), `url` (HTTP, WebSocket), `builtin` and `replicas`"
        );
        assert!(error("upstreams:\n  - name: a b\n    builtin: everything\n").starts_with("upstreams[0].name:"));
        assert!(
            error("upstreams:\n  - {name: a, builtin: everything}\n  - {name: a, builtin: everything}\n")
                .starts_with("upstreams[1].name: `a` names two upstreams")
        );
        assert!(error("upstreams:\n  - {name: a, url: 'ftp://x'}\n").starts_with("upstreams[0].url:"));
        assert!(error("upstreams:\n  - {name: a, builtin: nothing}\n").starts_with("upstreams[0].builtin:"));
        assert!(error("upstreams:\n  - {name: a, builtin: everything, timeout: 5}\n").contains("no unit"));
        assert!(
            error("upstreams:\n  - {name: a, builtin: everything}\nvirtual_servers:\n  - {name: v, tools: [{upstream: b, tool: x}]}\n")
                .starts_with("virtual_servers[0].tools[0].upstream: no upstream is named `b`")
        );
        assert!(
            error("upstreams:\n  - {name: a, builtin: everything}\nvirtual_servers:\n  - {name: a, tools: []}\n")
                .starts_with("virtual_servers[0].name:")
        );
        assert!(error("separator: ''\n").starts_with("separator:"));
        assert!(error("limits: {max_body_bytes: 0}\n").starts_with("limits.max_body_bytes:"));
        let toml = Config::parse("[[upstreams]]\nname = 3\n", true)
            .unwrap_err()
            .to_string();
        assert!(toml.contains("name"), "{toml}");
    }

    #[test]
    fn replicas_and_their_policies_read_and_are_checked() {
        let config = Config::parse(
            "upstreams:\n  - name: a\n    replicas:\n      - {url: 'http://127.0.0.1:1/mcp'}\n      - {command: [x]}\n    balance: least-in-flight\n    breaker: {failures: 2, open_for: 1s}\n    health: {interval: 500ms}\n    retries: 0\n",
            false,
        )
        .unwrap();
        let a = &config.upstreams[0];
        assert_eq!(a.targets().len(), 2);
        assert_eq!(a.balance, Balance::LeastInFlight);
        assert_eq!(a.breaker.failures, 2);
        assert_eq!(a.health.interval, Duration::from_millis(500));
        assert_eq!(a.health.timeout, Duration::from_secs(2));
        assert_eq!(a.targets()[1].describe(), "x");
        assert!(
            error("upstreams:\n  - {name: a, url: 'http://x.example/mcp', replicas: [{builtin: everything}]}\n")
                .starts_with("upstreams[0]: upstream `a` has `replicas`")
        );
        assert!(
            error("upstreams:\n  - {name: a, replicas: [{builtin: everything}, {url: 'ftp://x'}]}\n")
                .starts_with("upstreams[0].replicas[1].url:")
        );
        assert!(error("upstreams:\n  - {name: a, builtin: everything, balance: random}\n").contains("unknown variant"));
        assert!(
            error("upstreams:\n  - {name: a, builtin: everything, breaker: {failures: 0}}\n")
                .starts_with("upstreams[0].breaker.failures:")
        );
    }

    #[test]
    fn durations_read_and_write() {
        assert_eq!(duration::parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(duration::parse("2m").unwrap(), Duration::from_secs(120));
        assert!(duration::parse("s").is_err());
        assert_eq!(duration::parse("5h").unwrap(), Duration::from_secs(5 * 3600));
        assert_eq!(duration::parse("90d").unwrap(), Duration::from_secs(90 * 86_400));
        assert!(duration::parse("5w").is_err());
        let config = Config::parse(
            "upstreams:\n  - {name: a, builtin: everything, timeout: 1500ms}\n",
            false,
        )
        .unwrap();
        let again = Config::parse(&serde_norway::to_string(&config).unwrap(), false).unwrap();
        assert_eq!(config, again);
    }

    #[test]
    fn policies_read_and_their_errors_name_the_key() {
        let config = Config::parse(
            "upstreams:\n  - {name: a, builtin: everything}\npolicy:\n  default_role: guest\n  roles:\n    guest:\n      grants:\n        - allow: {tools: [echo]}\n        - deny: {upstreams: [a], resources: ['file:///**']}\n    admin: {}\nvirtual_servers:\n  - {name: v, tools: [], roles: [admin]}\n",
            false,
        )
        .unwrap();
        let policy = config.policy.as_ref().unwrap();
        assert_eq!(policy.roles["guest"].grants.len(), 2);
        let deny = policy.roles["guest"].grants[1].deny.as_ref().unwrap();
        assert_eq!(deny.upstreams.as_deref(), Some(&["a".to_string()][..]));
        assert_eq!(config.virtual_servers[0].roles, ["admin"]);
        let toml = Config::parse(
            "[policy.roles.guest]\ngrants = [{ allow = { tools = [\"echo\"] } }]\n",
            true,
        )
        .unwrap();
        assert!(toml.policy.unwrap().roles["guest"].grants[0].allow.is_some());

        assert!(error("policy:\n  roles:\n    r:\n      grant: []\n").contains("unknown field `grant`"));
        assert!(
            error("policy:\n  roles:\n    r:\n      grants: [{allow: {tool: [x]}}]\n").contains("unknown field `tool`")
        );
        assert!(error("policy:\n  roles:\n    r:\n      grants: [{permit: {}}]\n").contains("unknown field `permit`"));
        assert_eq!(
            error("policy:\n  roles:\n    r:\n      grants: [{allow: {}, deny: {}}]\n"),
            "policy.roles.r.grants[0]: needs exactly one of `allow` and `deny`"
        );
        assert!(error("policy:\n  rules: {}\n").contains("unknown field `rules`"));
        assert!(
            error("policy:\n  roles:\n    r:\n      grants: [{allow: {}}, {deny: {prompts: ['{a,b}']}}]\n")
                .starts_with("policy.roles.r.grants[1].deny.prompts[0]: `{a,b}`")
        );
        assert!(
            error("policy:\n  default_role: x\n  roles: {r: {}}\n").starts_with("policy.default_role: no role `x`")
        );
        assert!(
            error("upstreams:\n  - {name: a, builtin: everything}\npolicy: {roles: {r: {}}}\nvirtual_servers:\n  - {name: v, tools: [], roles: [r, s]}\n")
                .starts_with("virtual_servers[0].roles[1]: no role `s`")
        );
        assert!(
            error("virtual_servers:\n  - {name: v, tools: [], roles: [r]}\n")
                .starts_with("virtual_servers[0].roles[0]:"),
            "roles without a policy"
        );
    }

    #[test]
    fn upstream_oauth_reads_and_its_errors_name_the_key() {
        // Edition 2024 makes `set_var` unsafe, which the crate forbids: `PATH` is a variable
        // every test run has.
        let config = Config::parse(
            "upstreams:\n  - name: a\n    url: 'https://a.example/mcp'\n    oauth:\n      client_id: gateway\n      client_secret_env: PATH\n      scopes: [mcp, 'files:read']\n      token_endpoint: 'https://as.example/token'\n      resource: 'https://a.example/mcp'\n      token_endpoint_auth: client_secret_post\n      refresh_margin: 10s\n",
            false,
        )
        .unwrap();
        let oauth = config.upstreams[0].oauth.as_ref().unwrap();
        assert_eq!(oauth.secret().unwrap(), std::env::var("PATH").unwrap());
        assert_eq!(
            oauth.token_endpoint_auth,
            Some(TokenEndpointAuthMethod::ClientSecretPost)
        );
        assert_eq!(oauth.refresh_margin, Duration::from_secs(10));
        let again = Config::parse(&serde_norway::to_string(&config).unwrap(), false).unwrap();
        assert_eq!(config, again);

        let stateless = "upstreams:\n  - name: a\n    url: 'http://a.example/mcp'\n    protocol: stateless\n    oauth: {client_id: g, client_secret: s, token_exchange: {audience: a}}\n";
        let auth = "auth: {jwt: {issuer: i, audience: [a], keys: [{alg: HS256, secret: s}]}}\n";
        let config = Config::parse(&format!("{auth}{stateless}"), false).unwrap();
        let debug = format!("{:?}", config.upstreams[0]);
        assert!(
            !debug.contains("client_secret: Some(\"s\")") && debug.contains("<redacted>"),
            "{debug}"
        );

        let cases = [
            (
                "upstreams:\n  - {name: a, builtin: everything, oauth: {client_id: g, client_secret: s}}\n",
                "upstreams[0].oauth: applies to `url` upstreams only",
            ),
            (
                "upstreams:\n  - {name: a, url: 'http://a/mcp', oauth: {client_id: g}}\n",
                "upstreams[0].oauth: needs exactly one of `client_secret` and `client_secret_env`",
            ),
            (
                "upstreams:\n  - {name: a, url: 'http://a/mcp', oauth: {client_id: g, client_secret: s, client_secret_env: PATH}}\n",
                "upstreams[0].oauth: needs exactly one of",
            ),
            (
                "upstreams:\n  - {name: a, url: 'http://a/mcp', oauth: {client_id: g, client_secret_env: PORTICO_TEST_NO_SUCH_VARIABLE}}\n",
                "upstreams[0].oauth.client_secret_env: the environment variable `PORTICO_TEST_NO_SUCH_VARIABLE` is not set",
            ),
            (
                "upstreams:\n  - {name: a, url: 'http://a/mcp', oauth: {client_id: '', client_secret: s}}\n",
                "upstreams[0].oauth.client_id: must not be empty",
            ),
            (
                "upstreams:\n  - {name: a, url: 'http://a/mcp', oauth: {client_id: g, client_secret: s, token_endpoint: 'ftp://as/token'}}\n",
                "upstreams[0].oauth.token_endpoint: `ftp://as/token` is not an http:// or https:// URL",
            ),
            (
                "upstreams:\n  - {name: a, url: 'http://a/mcp', oauth: {client_id: g, client_secret: s, scopes: ['a b']}}\n",
                "upstreams[0].oauth.scopes[0]:",
            ),
            (
                "upstreams:\n  - {name: a, url: 'http://a/mcp', oauth: {client_id: g, client_secret: s, resource: 'not a uri'}}\n",
                "upstreams[0].oauth.resource:",
            ),
            (
                "upstreams:\n  - {name: a, url: 'http://a/mcp', oauth: {client_id: g, client_secret: s, token_endpoint_auth: private_key_jwt}}\n",
                "unknown variant `private_key_jwt`",
            ),
            (
                "upstreams:\n  - {name: a, url: 'http://a/mcp', headers: {Authorization: 'Bearer x'}, oauth: {client_id: g, client_secret: s}}\n",
                "upstreams[0].oauth: sets `Authorization`: remove `headers.Authorization`, or `oauth`",
            ),
            (
                "upstreams:\n  - {name: a, url: 'http://a/mcp', oauth: {client_id: g, client_secret: s, token_exchange: {}}}\n",
                "upstreams[0].oauth.token_exchange: needs `protocol: stateless`",
            ),
            (
                "upstreams:\n  - {name: a, url: 'ws://a/mcp', protocol: stateless, oauth: {client_id: g, client_secret: s, token_exchange: {}}}\n",
                "upstreams[0].oauth.token_exchange: needs Streamable HTTP",
            ),
            (
                "upstreams:\n  - {name: a, url: 'http://a/sse', transport: sse, protocol: stateless, oauth: {client_id: g, client_secret: s, token_exchange: {}}}\n",
                "upstreams[0].oauth.token_exchange: needs Streamable HTTP",
            ),
            (stateless, "upstreams[0].oauth.token_exchange: needs `auth`"),
            (
                "upstreams:\n  - {name: a, url: 'http://a/mcp', protocol: stateless, oauth: {client_id: g, client_secret: s, token_exchange: {client_secret: t}}}\n",
                "upstreams[0].oauth.token_exchange: a `client_secret` or `client_secret_env` here needs its own `client_id`",
            ),
            (
                "upstreams:\n  - {name: a, url: 'http://a/mcp', protocol: stateless, oauth: {client_id: g, client_secret: s, token_exchange: {client_id: x}}}\n",
                "upstreams[0].oauth.token_exchange: needs exactly one of",
            ),
            (
                "upstreams:\n  - {name: a, url: 'http://a/mcp', protocol: stateless, oauth: {client_id: g, client_secret: s, token_exchange: {max_subjects: 0}}}\n",
                "upstreams[0].oauth.token_exchange.max_subjects: must be at least 1",
            ),
            (
                "upstreams:\n  - {name: a, url: 'http://a/mcp', oauth: {client_id: g, client_secret: s, clientsecret: t}}\n",
                "unknown field `clientsecret`",
            ),
        ];
        for (yaml, expected) in cases {
            let yaml = if yaml.contains("token_exchange")
                && !yaml.contains("auth:")
                && expected != "upstreams[0].oauth.token_exchange: needs `auth`"
            {
                format!("{auth}{yaml}")
            } else {
                yaml.to_string()
            };
            let message = error(&yaml);
            assert!(
                message.contains(expected),
                "{yaml}\n  gave: {message}\n  expected: {expected}"
            );
        }
    }

    #[test]
    fn an_empty_file_is_the_defaults() {
        assert_eq!(Config::parse("", false).unwrap(), Config::default());
    }
}
