//! The gateway runs of `cargo xtask conformance`: the server suite runs of each suite that pins
//! the wire revision (0.2.x), but for the extension scenarios, made again against the aggregated
//! endpoint `/mcp` of `portico gateway` with `portico serve everything` as its one upstream,
//! attached three ways ([`Attachment`]): over stdio, and over Streamable HTTP as a 2025-11-25
//! upstream (`protocol: stateful`) and as a 2026-07-28 one (`protocol: stateless`).
//!
//! Each run gets a gateway of its own (and, attached over HTTP, a `portico serve everything
//! --http 127.0.0.1:0` of its own behind it), started from a configuration written into the
//! run's results folder (`gateway.yaml`; an extension scenario's run, one of several of its
//! plan going at once, into `<scenario>.gateway/` there: the gateway reloads its file when it
//! changes, so runs must not share one), on a free port (`--listen 127.0.0.1:0`). The upstream
//! has `prefix: ""`, so that the aggregated endpoint serves its tools, resources and prompts
//! under their own names, those the suite's fixtures call. The recording proxy sits between the
//! suite and the gateway, so what is validated is what the gateway sent.
//!
//! With the proxy, every policy layer of the gateway is on — `auth` (HS256 bearer tokens), a
//! `policy` whose one role is allowed everything, a rate limit per caller, and a durable
//! `audit` trail — and the proxy supplies the token (minted by `portico token`) that the suite
//! cannot send, so the suite runs against the request path an operator deploys.
//!
//! The extension scenarios (`tasks-*`, `sep-2640-skills-*`) run through every attachment too.
//! Over stdio and as a 2026-07-28 upstream, `everything` serves the tasks extension itself and
//! the gateway relays it; as a 2025-11-25 session it serves that revision's tasks, which the
//! gateway bridges to the extension (`portico_gateway::tasks`).
//!
//! Everything else is the server runs' code: the units, the judging and the report
//! (`conformance.rs`); this module only plans the runs, starts the gateway and writes its
//! section of `docs/conformance.md`.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

use super::{Group, Plan, Server, Suite, render_validation, results_table};
use crate::capture;

/// How the gateway reaches `portico serve everything`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Attachment {
    /// A child process of the gateway, over stdio.
    Stdio,
    /// Streamable HTTP, an `initialize` session at 2025-11-25 (`protocol: stateful`).
    Stateful,
    /// Streamable HTTP at 2026-07-28 (`protocol: stateless`).
    Stateless,
}

impl Attachment {
    /// Every attachment, in the order of the report.
    pub(super) const ALL: [Attachment; 3] = [Attachment::Stdio, Attachment::Stateful, Attachment::Stateless];

    /// The results folder and the part of a run's name: `gateway-stdio`, ...
    pub(super) fn folder(self) -> &'static str {
        match self {
            Attachment::Stdio => "gateway-stdio",
            Attachment::Stateful => "gateway-http-stateful",
            Attachment::Stateless => "gateway-http-stateless",
        }
    }

    /// In a group's name: `stdio upstream`, ...
    fn short(self) -> &'static str {
        match self {
            Attachment::Stdio => "stdio upstream",
            Attachment::Stateful => "HTTP upstream at 2025-11-25",
            Attachment::Stateless => "HTTP upstream at 2026-07-28",
        }
    }

    /// In the table of `docs/conformance.md`.
    fn describe(self) -> &'static str {
        match self {
            Attachment::Stdio => "stdio (`command: [portico, serve, everything, --stdio]`)",
            Attachment::Stateful => "Streamable HTTP, a 2025-11-25 session (`protocol: stateful`)",
            Attachment::Stateless => "Streamable HTTP, 2026-07-28 (`protocol: stateless`)",
        }
    }

    /// The `protocol` of an upstream attached over HTTP; `None` over stdio.
    fn protocol(self) -> Option<&'static str> {
        match self {
            Attachment::Stdio => None,
            Attachment::Stateful => Some("stateful"),
            Attachment::Stateless => Some("stateless"),
        }
    }
}

/// ` via the gateway, stdio upstream` after a group's name; empty for the server runs.
pub(super) fn via(gateway: Option<Attachment>) -> String {
    gateway.map_or_else(String::new, |a| format!(" via the gateway, {}", a.short()))
}

/// The gateway runs: each plan of `plans` made by a suite that pins the wire revision (the
/// extension scenarios included), once per attachment.
pub(super) fn plans(plans: &[Plan]) -> Vec<Plan> {
    let eligible: Vec<&Plan> = plans
        .iter()
        .filter(|p| p.gateway.is_none() && Suite::pins_wire(&p.suite_version))
        .collect();
    Attachment::ALL
        .iter()
        .flat_map(|&attachment| {
            eligible.iter().map(move |plan| Plan {
                gateway: Some(attachment),
                ..(*plan).clone()
            })
        })
        .collect()
}

/// The issuer and audience of the runs' tokens (`auth`).
const ISSUER: &str = "https://conformance.portico.test";
const AUDIENCE: &str = "portico-conformance";

/// The gateway's configuration: `portico serve everything` as the upstream `everything`, over
/// stdio (`portico` is the binary under test) or at `upstream`, unprefixed. With `secret`,
/// every policy layer is on: `auth` (HS256 tokens signed with it), a `policy` whose one role
/// is allowed everything, a rate limit too generous to refuse a suite's requests, and `audit`.
fn config(attachment: Attachment, portico: &Path, upstream: Option<&str>, dir: &Path, secret: Option<&str>) -> String {
    // JSON strings are YAML double-quoted scalars: any path or URL goes in as it is.
    let quote = |text: &str| serde_json::Value::from(text).to_string();
    let mut out = String::from(
        "# Written by `cargo xtask conformance` (xtask/src/conformance/gateway.rs) for one suite run.\n\
         listen: 127.0.0.1:0\n",
    );
    // The run's own state store, beside its configuration.
    let state = format!("sqlite://{}", dir.join("state.db").to_string_lossy());
    let _ = writeln!(out, "state:\n  url: {}", quote(&state));
    out.push_str("upstreams:\n  - name: everything\n");
    match (attachment.protocol(), upstream) {
        (Some(protocol), Some(url)) => {
            let _ = writeln!(out, "    url: {}\n    protocol: {protocol}", quote(url));
        }
        _ => {
            let _ = writeln!(
                out,
                "    command: [{}, serve, everything, --stdio]",
                quote(&portico.to_string_lossy())
            );
        }
    }
    // The suite calls the fixtures by their own names.
    out.push_str("    prefix: \"\"\n");
    if let Some(secret) = secret {
        let _ = write!(
            out,
            "auth:\n  jwt:\n    issuer: {issuer}\n    audience: [{audience}]\n    keys:\n      \
             - {{kid: conformance, alg: HS256, secret: {secret}}}\n\
             policy:\n  roles:\n    conformance:\n      grants:\n        - allow: {{upstreams: [\"*\"]}}\n\
             rate_limits:\n  - {{name: conformance, key: [principal], rate: 100000/s}}\n\
             audit: {{}}\n",
            issuer = quote(ISSUER),
            audience = quote(AUDIENCE),
            secret = quote(secret),
        );
    }
    out
}

/// A secret for one run's tokens: not guessable from outside the machine's processes, which is
/// all a test run needs.
fn run_secret(dir: &Path) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write(dir.as_os_str().as_encoded_bytes());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("conformance-{:016x}-{nanos:x}-{}", hasher.finish(), std::process::id())
}

/// A token for the run's gateway, minted by `portico token` (the binary under test).
fn mint(portico: &Path, secret: &str) -> anyhow::Result<String> {
    crate::bench_server::mint_token(
        portico,
        (ISSUER, AUDIENCE),
        ("conformance-suite", "conformance", "conformance"),
        secret,
    )
}

/// Starts the gateway of one run (after its HTTP upstream, if it has one) with its configuration
/// in `dir`; returns the gateway, then the upstream, and (`with_auth`: every policy layer on)
/// the token to call it with. Logs: `<logs>/<name>.gateway.log` and
/// `<logs>/<name>.upstream.log`.
pub(super) fn start(
    attachment: Attachment,
    portico: &Path,
    dir: &Path,
    logs: &Path,
    name: &str,
    with_auth: bool,
) -> anyhow::Result<(Vec<Server>, Option<String>)> {
    let secret = with_auth.then(|| run_secret(dir));
    let token = secret.as_deref().map(|s| mint(portico, s)).transpose()?;
    let upstream = match attachment.protocol() {
        Some(_) => Some(Server::everything(portico, &logs.join(format!("{name}.upstream.log")))?),
        None => None,
    };
    let path = dir.join("gateway.yaml");
    let text = config(
        attachment,
        portico,
        upstream.as_ref().map(|u| u.url.as_str()),
        dir,
        secret.as_deref(),
    );
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    let args = [
        OsStr::new("gateway"),
        OsStr::new("--config"),
        path.as_os_str(),
        OsStr::new("--listen"),
        OsStr::new("127.0.0.1:0"),
    ];
    let gateway = Server::start(
        portico,
        &args,
        "gateway serving MCP on ",
        &logs.join(format!("{name}.gateway.log")),
    )?;
    Ok((std::iter::once(gateway).chain(upstream).collect(), token))
}

/// The section `## Gateway` of `docs/conformance.md`: the gateway runs' table and the validation
/// of what the gateway sent (`None`: not captured; `Some(None)`: no gateway run). Their
/// scenarios that did not pass are in the lists above it, with the server runs'.
pub(super) fn render_docs(groups: &[&Group], validation: Option<Option<&capture::Report>>) -> String {
    let mut out = String::from("\n## Gateway\n\n");
    if groups.is_empty() {
        let _ = writeln!(out, "Not run (`--no-gateway`, or no 0.2.x suite among those run).");
        return out;
    }
    let _ = writeln!(
        out,
        "The server runs of each 0.2.x suite (`server --suite all --spec-version V`) again, against \
         the aggregated endpoint `/mcp` of `portico gateway` with `portico serve everything` as its \
         one upstream, attached three ways: over stdio, and over Streamable HTTP as a 2025-11-25 \
         upstream (the gateway holds an `initialize` session with it) and as a 2026-07-28 one. The \
         upstream has `prefix: \"\"`, so the aggregated endpoint serves its tools, resources and \
         prompts under their own names, as the suite's fixtures expect. Each run has a gateway (and \
         an HTTP upstream) of its own, configured by `gateway.yaml` in the run's results folder, \
         with every policy layer on: `auth` (the recording proxy supplies a bearer token minted by \
         `portico token`, which the suite cannot send), a `policy` role allowed everything, a rate \
         limit per caller and a durable `audit` trail. \
         The extension scenarios (`tasks-*`, `sep-2640-skills-*`) run through every attachment too: \
         the gateway passes both extensions through, and bridges the tasks extension to the 2025-11-25 \
         upstream's own tasks of that revision (`task` param, `tasks/get`, `tasks/result`, \
         `tasks/cancel`). The same rule judges them; their scenarios that did not \
         pass are in the lists above, named `… via the gateway, …`.\n"
    );
    out.push_str(&results_table(&["suite", "upstream", "spec version"], groups, |g| {
        vec![
            g.suite.clone(),
            g.gateway.map_or("", Attachment::describe).to_owned(),
            g.title(),
        ]
    }));
    let _ = writeln!(out, "\n### Messages the gateway sent\n");
    match validation {
        None => {
            let _ = writeln!(out, "Not captured: the run used `--no-proxy`.");
        }
        Some(None) => {
            let _ = writeln!(out, "None captured.");
        }
        Some(Some(report)) => {
            let _ = writeln!(
                out,
                "The recording proxy stood between the suite and the gateway: every message the \
                 gateway sent was validated as the server's are (above).\n"
            );
            out.push_str(&render_validation(report));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::EXTENSIONS;
    use super::*;

    #[test]
    fn gateway_runs_repeat_the_0_2_runs_extensions_included_per_attachment() {
        let catalogue = super::super::parse_list("- a [2025-11-25,2026-07-28]\n- tasks-x [extension]");
        let mut all = super::super::plan(0, "0.2.0-alpha.12", &catalogue, &[], true, None).unwrap();
        all.extend(super::super::plan(1, "0.1.16", &catalogue, &[], true, None).unwrap());
        let through = plans(&all);
        assert_eq!(through.len(), 9);
        assert!(through.iter().all(|p| p.suite == 0));
        let extensions: Vec<_> = through
            .iter()
            .filter(|p| p.label == EXTENSIONS)
            .map(|p| p.gateway)
            .collect();
        assert_eq!(extensions, Attachment::ALL.map(Some));
        assert_eq!(through[0].gateway, Some(Attachment::Stdio));
        assert_eq!(through[8].gateway, Some(Attachment::Stateless));
        assert_eq!(
            (through[7].label.as_str(), &through[7].invocations),
            ("2026-07-28", &all[1].invocations)
        );
        // No second round through the gateway.
        assert!(plans(&through).is_empty());
    }

    #[test]
    fn configurations_attach_the_server_unprefixed() {
        let stdio = config(
            Attachment::Stdio,
            Path::new("/opt/my tools/portico"),
            None,
            Path::new("/r"),
            None,
        );
        assert!(
            stdio.contains("    command: [\"/opt/my tools/portico\", serve, everything, --stdio]\n"),
            "{stdio}"
        );
        assert!(
            stdio.contains("    prefix: \"\"\n") && !stdio.contains("    url:"),
            "{stdio}"
        );
        assert!(stdio.contains("state:\n  url: \"sqlite:///r/state.db\"\n"), "{stdio}");
        let http = config(
            Attachment::Stateful,
            Path::new("/p"),
            Some("http://127.0.0.1:4000/mcp"),
            Path::new("/r"),
            None,
        );
        assert!(
            http.contains("    url: \"http://127.0.0.1:4000/mcp\"\n    protocol: stateful\n"),
            "{http}"
        );
        assert!(!http.contains("command:"), "{http}");
        assert!(!http.contains("auth:") && !http.contains("audit:"), "{http}");
        let guarded = config(
            Attachment::Stateless,
            Path::new("/p"),
            Some("http://h/mcp"),
            Path::new("/r"),
            Some("s3cret"),
        );
        for layer in [
            "auth:\n  jwt:\n    issuer: \"https://conformance.portico.test\"\n",
            "      - {kid: conformance, alg: HS256, secret: \"s3cret\"}\n",
            "policy:\n  roles:\n    conformance:\n",
            "rate_limits:\n",
            "audit: {}\n",
        ] {
            assert!(guarded.contains(layer), "{layer:?} in {guarded}");
        }
        assert_eq!(via(None), "");
        assert_eq!(via(Some(Attachment::Stdio)), " via the gateway, stdio upstream");
    }

    #[test]
    fn the_gateway_section_has_a_row_per_attachment_and_spec_version() {
        let check = |status: &str| super::super::Check {
            id: "c".to_owned(),
            status: status.to_owned(),
            message: String::new(),
            description: String::new(),
        };
        let group = Group {
            suite: "0.2.0-alpha.12".to_owned(),
            label: "2025-11-25".to_owned(),
            wire: "2025-11-25".to_owned(),
            scenarios: vec![super::super::Scenario {
                name: "server-sse-polling".to_owned(),
                checks: vec![check("SUCCESS"), check("INFO")],
            }],
            not_applicable: Vec::new(),
            elapsed: std::time::Duration::from_millis(2_500),
            longest: std::time::Duration::from_millis(2_500),
            runs: 1,
            gateway: Some(Attachment::Stateful),
        };
        assert_eq!(
            group.name(),
            "0.2.0-alpha.12 2025-11-25 via the gateway, HTTP upstream at 2025-11-25"
        );
        let docs = render_docs(&[&group], Some(None));
        assert!(
            docs.contains(
                "| 0.2.0-alpha.12 | Streamable HTTP, a 2025-11-25 session (`protocol: stateful`) | 2025-11-25 | 1 | 1 | 0 | 0 | 0 | 1 | 0 | 0 | 2.5s |\n"
            ),
            "{docs}"
        );
        assert!(docs.contains("|---|---|---|---:|"), "{docs}");
        assert!(render_docs(&[&group], None).contains("`--no-proxy`"));
        assert!(render_docs(&[], None).contains("Not run"));
    }
}
