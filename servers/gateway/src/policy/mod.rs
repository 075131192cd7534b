//! Authorization: which tools, resources and prompts a caller may see and use, decided by the
//! roles it holds (`policy` in the configuration).
//!
//! # How a decision is made
//!
//! - **Who.** The caller is the token's [`Principal`] (subject and roles, from
//!   `auth.roles_claim`); with `auth` off, every caller is `anonymous`, with no roles. Roles
//!   that `policy.roles` does not define grant nothing; a caller left with no defined role gets
//!   `policy.default_role`, if there is one.
//! - **What.** An item is a tool, a resource (or resource template) or a prompt of an upstream,
//!   named as the upstream names it — the same decision wherever it is served (the aggregated
//!   endpoint's `files__read_file` is `read_file` of upstream `files`, as on `/mcp/files` and
//!   on a virtual server that renames it).
//! - **Which rule.** Every rule of every role the caller holds is considered. A matching `deny`
//!   decides (deny beats allow, in any role); else a matching `allow` decides; else the item is
//!   denied ("no matching allow"): once a policy is configured, only what is allowed is. The
//!   rule reported is the first that decided, in the caller's role order then rule order.
//!   Without a `policy`, everything is allowed, as if there were no policy layer.
//! - **Where.** The same decision filters `tools/list`, `resources/list`,
//!   `resources/templates/list` and `prompts/list` and guards `tools/call`, `resources/read`,
//!   `prompts/get`, `completion/complete`, the tasks of a tool and the skills of the skills
//!   extension ([`crate::catalog::View`]). An item refused is answered as an item that does not
//!   exist, with the same error, so a caller learns nothing of what it may not see.
//! - **Virtual servers** may be kept to some roles (`virtual_servers[].roles`): for a caller
//!   holding none of them the endpoint does not exist.
//!
//! Every decision is logged (target `portico::policy`) with the caller, the item and the rule
//! that decided (`roles.<role>.grants[<i>]` or `no matching allow`): a refused call, read or get
//! at `info`, everything else at `debug`.
//!
//! The policy is compiled with the configuration it belongs to and swapped with it
//! ([`crate::catalog::Routes`]): a reload applies to the next request.

pub mod glob;

use std::fmt;

pub use glob::Glob;

use crate::auth::Principal;
use crate::config::{Patterns, PolicyConfig, VirtualServerConfig};

/// The subject of a caller without a token (`auth` off).
pub const ANONYMOUS: &str = "anonymous";

/// What kind of item a decision is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A tool.
    Tool,
    /// A resource, or a resource template.
    Resource,
    /// A prompt.
    Prompt,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Tool => "tool",
            Self::Resource => "resource",
            Self::Prompt => "prompt",
        }
    }
}

/// An item of an upstream, named as the upstream names it.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    /// Its kind.
    pub kind: Kind,
    /// The upstream serving it.
    pub upstream: &'a str,
    /// Its name (a resource's URI, a template's URI template).
    pub name: &'a str,
}

impl<'a> Item<'a> {
    /// A tool.
    pub fn tool(upstream: &'a str, name: &'a str) -> Self {
        Self {
            kind: Kind::Tool,
            upstream,
            name,
        }
    }

    /// A resource or template.
    pub fn resource(upstream: &'a str, uri: &'a str) -> Self {
        Self {
            kind: Kind::Resource,
            upstream,
            name: uri,
        }
    }

    /// A prompt.
    pub fn prompt(upstream: &'a str, name: &'a str) -> Self {
        Self {
            kind: Kind::Prompt,
            upstream,
            name,
        }
    }
}

/// One rule, compiled.
#[derive(Debug)]
struct Rule {
    allow: bool,
    upstreams: Option<Vec<Glob>>,
    tools: Option<Vec<Glob>>,
    resources: Option<Vec<Glob>>,
    prompts: Option<Vec<Glob>>,
}

impl Rule {
    fn matches(&self, item: &Item<'_>) -> bool {
        let any = |globs: &[Glob], text: &str| globs.iter().any(|g| g.matches(text));
        if let Some(upstreams) = &self.upstreams
            && !any(upstreams, item.upstream)
        {
            return false;
        }
        if self.tools.is_none() && self.resources.is_none() && self.prompts.is_none() {
            return true;
        }
        let names = match item.kind {
            Kind::Tool => &self.tools,
            Kind::Resource => &self.resources,
            Kind::Prompt => &self.prompts,
        };
        names.as_deref().is_some_and(|globs| any(globs, item.name))
    }
}

#[derive(Debug)]
struct Role {
    name: String,
    rules: Vec<Rule>,
}

/// A compiled policy.
#[derive(Debug)]
pub struct Policy {
    roles: Vec<Role>,
    /// Index of `default_role` in `roles`.
    default_role: Option<usize>,
}

impl Policy {
    /// Compiles `config`; an error names the key (`policy.roles.<role>.grants[<i>].allow.tools[<j>]`)
    /// and what is wrong.
    pub fn compile(config: &PolicyConfig) -> Result<Self, (String, String)> {
        let mut roles = Vec::new();
        for (name, role) in &config.roles {
            if name.trim().is_empty() {
                return Err(("policy.roles".into(), "a role's name must not be empty".into()));
            }
            let mut rules = Vec::new();
            for (i, grant) in role.grants.iter().enumerate() {
                let (allow, patterns, effect) = match (&grant.allow, &grant.deny) {
                    (Some(patterns), None) => (true, patterns, "allow"),
                    (None, Some(patterns)) => (false, patterns, "deny"),
                    _ => {
                        return Err((
                            format!("policy.roles.{name}.grants[{i}]"),
                            "needs exactly one of `allow` and `deny`".into(),
                        ));
                    }
                };
                let key = format!("policy.roles.{name}.grants[{i}].{effect}");
                rules.push(compile_rule(allow, patterns, &key)?);
            }
            roles.push(Role {
                name: name.clone(),
                rules,
            });
        }
        let default_role = match &config.default_role {
            None => None,
            Some(name) => Some(roles.iter().position(|r| &r.name == name).ok_or_else(|| {
                (
                    "policy.default_role".to_string(),
                    format!("no role `{name}` is defined in `policy.roles`"),
                )
            })?),
        };
        Ok(Self { roles, default_role })
    }

    /// A policy that allows nothing.
    pub fn closed() -> Self {
        Self {
            roles: Vec::new(),
            default_role: None,
        }
    }
}

fn compile_rule(allow: bool, patterns: &Patterns, key: &str) -> Result<Rule, (String, String)> {
    let list = |field: &str, globs: &Option<Vec<String>>, uri: bool| -> Result<Option<Vec<Glob>>, (String, String)> {
        let Some(globs) = globs else { return Ok(None) };
        globs
            .iter()
            .enumerate()
            .map(|(j, text)| {
                let glob = if uri { Glob::uri(text) } else { Glob::name(text) };
                glob.map_err(|e| (format!("{key}.{field}[{j}]"), e))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    };
    Ok(Rule {
        allow,
        upstreams: list("upstreams", &patterns.upstreams, false)?,
        tools: list("tools", &patterns.tools, false)?,
        resources: list("resources", &patterns.resources, true)?,
        prompts: list("prompts", &patterns.prompts, false)?,
    })
}

/// What decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decider<'a> {
    /// No policy is configured: everything is allowed.
    Open,
    /// The rule `grants[index]` of `role`.
    Rule {
        /// The role.
        role: &'a str,
        /// The rule's index in the role's `grants`.
        index: usize,
    },
    /// No rule allows it (nor denies it).
    NoMatchingAllow,
}

impl fmt::Display for Decider<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Open => f.write_str("no policy"),
            Self::Rule { role, index } => write!(f, "roles.{role}.grants[{index}]"),
            Self::NoMatchingAllow => f.write_str("no matching allow"),
        }
    }
}

/// A decision and what made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision<'a> {
    /// Whether the item is allowed.
    pub allowed: bool,
    /// What decided.
    pub by: Decider<'a>,
}

/// The caller of one request, its roles resolved against the policy in force.
#[derive(Debug)]
pub struct Caller<'a> {
    policy: Option<&'a Policy>,
    subject: &'a str,
    /// Whether a token named the caller (else it is `anonymous`).
    authenticated: bool,
    /// Indices of the caller's roles in the policy's.
    roles: Vec<usize>,
    /// Where refused uses are recorded, if anywhere.
    audit: Option<&'a crate::audit::Auditor>,
}

impl<'a> Caller<'a> {
    /// `principal` (none: `anonymous`) under `policy` (none: everything allowed).
    pub fn new(policy: Option<&'a Policy>, principal: Option<&'a Principal>) -> Self {
        let subject = principal.map_or(ANONYMOUS, |p| p.subject.as_str());
        let mut roles = Vec::new();
        if let Some(policy) = policy {
            for name in principal.map(|p| p.roles.as_slice()).unwrap_or_default() {
                if let Some(i) = policy.roles.iter().position(|r| &r.name == name)
                    && !roles.contains(&i)
                {
                    roles.push(i);
                }
            }
            if roles.is_empty() {
                roles.extend(policy.default_role);
            }
        }
        Self {
            policy,
            subject,
            authenticated: principal.is_some(),
            roles,
            audit: None,
        }
    }

    /// Records the uses it refuses in `audit` (lists it filters are not recorded).
    pub fn audited(mut self, audit: Option<&'a crate::audit::Auditor>) -> Self {
        self.audit = audit;
        self
    }

    /// The decision on `item`.
    pub fn decide(&self, item: &Item<'_>) -> Decision<'a> {
        let Some(policy) = self.policy else {
            return Decision {
                allowed: true,
                by: Decider::Open,
            };
        };
        let mut allowed = None;
        for &r in &self.roles {
            let role = &policy.roles[r];
            for (index, rule) in role.rules.iter().enumerate() {
                if !rule.matches(item) {
                    continue;
                }
                let by = Decider::Rule {
                    role: role.name.as_str(),
                    index,
                };
                if !rule.allow {
                    return Decision { allowed: false, by };
                }
                allowed.get_or_insert(by);
            }
        }
        match allowed {
            Some(by) => Decision { allowed: true, by },
            None => Decision {
                allowed: false,
                by: Decider::NoMatchingAllow,
            },
        }
    }

    /// Whether `item` is allowed for `method` (`tools/list`, `tools/call`, …); the decision is
    /// logged.
    pub fn allows(&self, method: &str, item: Item<'_>) -> bool {
        let decision = self.decide(&item);
        if self.policy.is_some() {
            self.log(method, &item, &decision);
        }
        if !decision.allowed
            && !method.ends_with("/list")
            && let Some(auditor) = self.audit
        {
            let mut record = crate::audit::Record::new(
                crate::audit::Kind::Denial,
                method,
                "denied",
                crate::audit::correlation_id(),
            );
            record.principal = self.authenticated.then(|| self.subject.to_string());
            record.target = Some(item.name.to_string());
            record.upstream = Some(item.upstream.to_string());
            record.detail = Some(format!("policy: {} (roles: {})", decision.by, self.role_names()));
            auditor.record_later(record);
        }
        decision.allowed
    }

    fn log(&self, method: &str, item: &Item<'_>, decision: &Decision<'_>) {
        let listing = method.ends_with("/list");
        let outcome = if decision.allowed { "allow" } else { "deny" };
        macro_rules! event {
            ($level:expr) => {
                tracing::event!(
                    target: "portico::policy",
                    $level,
                    subject = self.subject,
                    roles = %self.role_names(),
                    method,
                    kind = item.kind.as_str(),
                    upstream = item.upstream,
                    name = item.name,
                    decision = outcome,
                    rule = %decision.by,
                    "policy decision"
                )
            };
        }
        if decision.allowed || listing {
            event!(tracing::Level::DEBUG);
        } else {
            event!(tracing::Level::INFO);
        }
    }

    /// The caller's roles, as indices in the policy's, sorted: callers with the same set are
    /// decided alike (what a list is kept per, [`crate::cache`]).
    pub fn role_set(&self) -> Vec<usize> {
        let mut roles = self.roles.clone();
        roles.sort_unstable();
        roles
    }

    /// The caller's roles, comma-separated, for logs.
    fn role_names(&self) -> String {
        let Some(policy) = self.policy else {
            return String::new();
        };
        let names: Vec<&str> = self.roles.iter().map(|&r| policy.roles[r].name.as_str()).collect();
        names.join(",")
    }

    /// Whether the caller may use the virtual server `server` (it holds one of its `roles`, or
    /// it has none); logged when it may not.
    pub fn may_use(&self, server: &VirtualServerConfig) -> bool {
        if server.roles.is_empty() {
            return true;
        }
        let Some(policy) = self.policy else {
            return true;
        };
        let allowed = self
            .roles
            .iter()
            .any(|&r| server.roles.iter().any(|name| name == &policy.roles[r].name));
        let rule = format_args!("virtual_servers.{}.roles", server.name);
        let (subject, roles, name) = (self.subject, self.role_names(), server.name.as_str());
        if allowed {
            tracing::debug!(target: "portico::policy", subject, %roles, virtual_server = name, decision = "allow", %rule, "policy decision");
        } else {
            tracing::info!(target: "portico::policy", subject, %roles, virtual_server = name, decision = "deny", %rule, "policy decision");
        }
        allowed
    }

    /// Whether any item of `upstream` among `items` is allowed (what a task of an upstream
    /// needs when the tool that started it is not known here); decisions are not logged one
    /// by one.
    pub fn allows_any<'i>(&self, items: impl IntoIterator<Item = Item<'i>>) -> bool {
        items.into_iter().any(|item| self.decide(&item).allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(yaml: &str) -> Policy {
        let config: PolicyConfig = serde_norway::from_str(yaml).expect("a policy");
        Policy::compile(&config).expect("compiles")
    }

    fn principal(roles: &[&str]) -> Principal {
        Principal {
            subject: "ada".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            scopes: Vec::new(),
        }
    }

    const POLICY: &str = "
default_role: guest
roles:
  guest:
    grants:
      - allow: {tools: [echo]}
  reader:
    grants:
      - allow: {upstreams: [files], tools: ['read_*'], resources: ['file:///public/**']}
      - allow: {prompts: ['*']}
      - deny: {tools: ['*secret*']}
  admin:
    grants:
      - allow: {}
  intern:
    grants:
      - deny: {upstreams: [billing]}
";

    #[test]
    fn allows_match_by_upstream_kind_and_name() {
        let policy = policy(POLICY);
        let reader = principal(&["reader"]);
        let caller = Caller::new(Some(&policy), Some(&reader));
        let decide = |item: Item<'_>| caller.decide(&item);
        assert_eq!(
            decide(Item::tool("files", "read_file")).by,
            Decider::Rule {
                role: "reader",
                index: 0
            }
        );
        assert!(!decide(Item::tool("other", "read_file")).allowed, "another upstream");
        assert!(!decide(Item::tool("files", "write_file")).allowed);
        assert_eq!(decide(Item::tool("files", "write_file")).by, Decider::NoMatchingAllow);
        assert!(decide(Item::resource("files", "file:///public/a/b.txt")).allowed);
        assert!(!decide(Item::resource("files", "file:///private/a")).allowed);
        // A rule naming tools and resources says nothing of prompts; the second allows them.
        assert_eq!(
            decide(Item::prompt("anywhere", "p")).by,
            Decider::Rule {
                role: "reader",
                index: 1
            }
        );
    }

    #[test]
    fn deny_beats_allow_across_roles() {
        let policy = policy(POLICY);
        let reader = principal(&["reader"]);
        let caller = Caller::new(Some(&policy), Some(&reader));
        let decision = caller.decide(&Item::tool("files", "read_secret"));
        assert!(!decision.allowed);
        assert_eq!(decision.by.to_string(), "roles.reader.grants[2]");
        let both = principal(&["admin", "intern"]);
        let caller = Caller::new(Some(&policy), Some(&both));
        assert!(
            caller.decide(&Item::tool("files", "anything")).allowed,
            "admin allows all"
        );
        let decision = caller.decide(&Item::prompt("billing", "invoice"));
        assert!(!decision.allowed, "the intern's deny wins over the admin's allow");
        assert_eq!(decision.by.to_string(), "roles.intern.grants[0]");
    }

    #[test]
    fn a_caller_without_a_known_role_gets_the_default_one() {
        let policy = policy(POLICY);
        for principal in [None, Some(principal(&[])), Some(principal(&["nobody"]))] {
            let caller = Caller::new(Some(&policy), principal.as_ref());
            assert!(caller.decide(&Item::tool("x", "echo")).allowed, "{principal:?}");
            assert!(
                !caller.decide(&Item::tool("files", "read_file")).allowed,
                "{principal:?}"
            );
        }
        let strict = self::policy("roles: {a: {grants: [{allow: {}}]}}");
        let caller = Caller::new(Some(&strict), None);
        assert_eq!(caller.decide(&Item::tool("x", "echo")).by, Decider::NoMatchingAllow);
    }

    #[test]
    fn without_a_policy_everything_is_allowed() {
        let caller = Caller::new(None, None);
        assert_eq!(caller.decide(&Item::tool("x", "y")).by, Decider::Open);
        assert!(caller.allows("tools/call", Item::resource("x", "file:///etc/passwd")));
        let closed = Policy::closed();
        assert!(!Caller::new(Some(&closed), None).decide(&Item::tool("x", "y")).allowed);
    }

    #[test]
    fn virtual_servers_are_kept_to_their_roles() {
        let policy = policy(POLICY);
        let server = VirtualServerConfig {
            name: "v".into(),
            instructions: None,
            tools: Vec::new(),
            roles: vec!["admin".into()],
        };
        let admin = principal(&["reader", "admin"]);
        assert!(Caller::new(Some(&policy), Some(&admin)).may_use(&server));
        let reader = principal(&["reader"]);
        assert!(!Caller::new(Some(&policy), Some(&reader)).may_use(&server));
        assert!(!Caller::new(Some(&policy), None).may_use(&server));
        let open = VirtualServerConfig {
            roles: Vec::new(),
            ..server
        };
        assert!(Caller::new(Some(&policy), None).may_use(&open));
    }

    #[test]
    fn every_decision_is_logged_with_the_caller_the_item_and_the_rule() {
        #[derive(Clone, Default)]
        struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Captured {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("lock").extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let policy = policy(POLICY);
        let reader = principal(&["reader"]);
        tracing::subscriber::with_default(subscriber, || {
            let caller = Caller::new(Some(&policy), Some(&reader));
            assert!(!caller.allows("tools/call", Item::tool("files", "read_secret")));
            assert!(caller.allows("tools/list", Item::tool("files", "read_file")));
            assert!(!caller.allows("prompts/get", Item::resource("files", "file:///x")));
        });
        let text = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("UTF-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        for (line, (level, decision, name, rule)) in lines.iter().zip([
            ("INFO", "deny", "read_secret", "roles.reader.grants[2]"),
            ("DEBUG", "allow", "read_file", "roles.reader.grants[0]"),
            ("INFO", "deny", "file:///x", "no matching allow"),
        ]) {
            assert!(line.contains(level) && line.contains("portico::policy"), "{line}");
            assert!(
                line.contains("subject=\"ada\"") && line.contains("roles=reader"),
                "{line}"
            );
            assert!(line.contains(&format!("decision=\"{decision}\"")), "{line}");
            assert!(line.contains(name) && line.contains("upstream=\"files\""), "{line}");
            assert!(line.contains(&format!("rule={rule}")), "{line}");
        }
    }

    #[test]
    fn bad_policies_name_the_key() {
        let compile = |yaml: &str| {
            let config: PolicyConfig = serde_norway::from_str(yaml).expect("a policy");
            Policy::compile(&config).unwrap_err()
        };
        let (key, message) = compile("roles: {r: {grants: [{allow: {}}, {deny: {tools: [ok, '[x']}}]}}");
        assert_eq!(key, "policy.roles.r.grants[1].deny.tools[1]");
        assert!(message.contains("not supported"), "{message}");
        let (key, _) = compile("roles: {r: {grants: [{allow: {resources: ['a***']}}]}}");
        assert_eq!(key, "policy.roles.r.grants[0].allow.resources[0]");
        let (key, message) = compile("default_role: x\nroles: {r: {}}");
        assert_eq!(key, "policy.default_role");
        assert!(message.contains("`x`"), "{message}");
    }
}
