//! The client side of `cargo xtask conformance`: `client --suite all --spec-version V` of every
//! suite that pins the wire revision (0.2.x), at each spec version, against
//! `portico conformance-client` (`servers/portico/src/conformance_client/`).
//!
//! The suite starts a mock server per scenario, all of a run's scenarios at once, and runs the
//! client command against each. The scenarios it ran (and those it skipped as not applicable)
//! are read from its `=== SUITE SUMMARY ===`, each scenario's checks from
//! `<out>/<suite>/client-<V>/<scenario>-<timestamp>/checks.json` (`auth/x` scenarios one folder
//! down). A scenario passes as a server scenario does: at least one SUCCESS and no FAILURE.
//!
//! [`CLIENT_PENDING`] lists the scenarios not expected to pass yet. They are reported apart as
//! pending; one that passes is a stale entry and fails the run, as does an entry no run knows.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::{DEFAULT_SPEC_VERSIONS, KillOnDrop, Outcome, Scenario, Suite, parse_checks};
use crate::test::{human, strip_ansi};

/// Temporary baseline: client scenarios that do not pass yet, reported as "pending (not
/// passed)" instead of failing the run. It held the `auth/*` scenarios until the OAuth client
/// (`servers/portico/src/conformance_client/auth.rs`) landed; keep it empty, and add a scenario
/// only with the issue that will make it pass. A listed scenario that passes fails the run
/// (remove the stale entry), and so does an entry that no client run has.
pub(super) const CLIENT_PENDING: &[&str] = &[];

/// How long the suite gives the client in one scenario, in milliseconds (its default, 30 s, is
/// tight when all scenarios run at once on two cores).
const CLIENT_TIMEOUT_MS: &str = "120000";

/// One client run to make: a suite (index into the run's suites) at a spec version.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ClientPlan {
    pub(super) suite: usize,
    pub(super) spec_version: String,
}

/// The client runs: every suite that pins the wire revision, at each requested spec version (the
/// defaults when none is).
pub(super) fn plans(suites: &[Suite], spec_versions: &[String]) -> Vec<ClientPlan> {
    let versions: Vec<String> = match spec_versions {
        [] => DEFAULT_SPEC_VERSIONS.iter().map(|v| v.to_string()).collect(),
        some => some.to_vec(),
    };
    suites
        .iter()
        .enumerate()
        .filter(|(_, s)| Suite::pins_wire(&s.version))
        .flat_map(|(suite, _)| {
            versions.iter().map(move |v| ClientPlan {
                suite,
                spec_version: v.clone(),
            })
        })
        .collect()
}

/// The results of one client run.
#[derive(Debug)]
pub(super) struct ClientGroup {
    pub(super) suite: String,
    pub(super) spec_version: String,
    pub(super) scenarios: Vec<Scenario>,
    /// Scenarios the suite skipped as not applicable at the spec version.
    pub(super) not_applicable: Vec<String>,
    pub(super) elapsed: Duration,
}

impl ClientGroup {
    /// `0.2.0-alpha.12 2026-07-28`.
    pub(super) fn name(&self) -> String {
        format!("{} {}", self.suite, self.spec_version)
    }
}

/// Runs every plan at once (each suite run starts all its scenarios at once too).
pub(super) fn run(
    suites: &[Suite],
    plans: &[ClientPlan],
    portico: &Path,
    out: &Path,
) -> anyhow::Result<Vec<ClientGroup>> {
    if plans.is_empty() {
        return Ok(Vec::new());
    }
    // The suite splits the command at spaces.
    let command = format!("{} conformance-client", portico.display());
    if portico.to_string_lossy().contains(char::is_whitespace) {
        bail!(
            "the suite splits its client command at spaces, and the portico path has one: {}",
            portico.display()
        );
    }
    std::thread::scope(|scope| {
        let runs: Vec<_> = plans
            .iter()
            .map(|plan| {
                let command = &command;
                scope.spawn(move || run_one(&suites[plan.suite], &plan.spec_version, command, out))
            })
            .collect();
        runs.into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a client suite run panicked")))
            })
            .collect()
    })
}

/// `client --suite all --spec-version V` of `suite`, then its results.
fn run_one(suite: &Suite, spec_version: &str, command: &str, out: &Path) -> anyhow::Result<ClientGroup> {
    let started = Instant::now();
    let name = format!("{}_client-{spec_version}", suite.version);
    let dir = out.join(&suite.version).join(format!("client-{spec_version}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let logs = out.join("logs");
    std::fs::create_dir_all(&logs)?;
    let log_path = logs.join(format!("{name}.log"));
    let mut log = File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let mut child = suite.command(&[
        "client",
        "--command",
        command,
        "--suite",
        "all",
        "--spec-version",
        spec_version,
        "--timeout",
        CLIENT_TIMEOUT_MS,
    ]);
    child
        .arg("-o")
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(log.try_clone()?);
    let line = format!("{child:?}");
    writeln!(log, "$ {line}")?;
    let mut process = KillOnDrop(child.spawn().with_context(|| format!("starting {line}"))?);
    let mut stdout = String::new();
    if let Some(out) = process.0.stdout.take() {
        for bytes in BufReader::new(out).split(b'\n') {
            let bytes = bytes?;
            log.write_all(&bytes)?;
            log.write_all(b"\n")?;
            stdout.push_str(&strip_ansi(&String::from_utf8_lossy(&bytes)));
            stdout.push('\n');
        }
    }
    let status = process.0.wait()?;
    // The suite exits 1 when a check failed; anything else means it did not run properly.
    if !(status.success() || status.code() == Some(1)) {
        bail!("{line} ended with {status}; see {}", log_path.display());
    }
    let (ran, not_applicable) = parse_summary(&stdout);
    if ran.is_empty() {
        bail!("{line} reported no scenario; see {}", log_path.display());
    }
    let mut scenarios = Vec::new();
    for scenario in ran {
        let found = match find_checks(&dir, &scenario) {
            Some(file) => {
                let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
                let checks = parse_checks(&text).with_context(|| format!("reading {}", file.display()))?;
                Scenario { name: scenario, checks }
            }
            None => Scenario::crashed(scenario, &log_path),
        };
        scenarios.push(found);
    }
    let elapsed = started.elapsed();
    println!(
        "  done {name:<52} {:>7}  {} client scenarios",
        human(elapsed),
        scenarios.len()
    );
    Ok(ClientGroup {
        suite: suite.version.clone(),
        spec_version: spec_version.to_owned(),
        scenarios,
        not_applicable,
        elapsed,
    })
}

/// The scenarios of a `--suite` run's summary (`✓ name: …`, `✗ name: …`) and those it skipped
/// (`- name: skipped`), in its order.
fn parse_summary(stdout: &str) -> (Vec<String>, Vec<String>) {
    let mut ran = Vec::new();
    let mut skipped = Vec::new();
    let Some((_, summary)) = stdout.split_once("=== SUITE SUMMARY ===") else {
        return (ran, skipped);
    };
    for line in summary.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("- ")
            && let Some(name) = rest.strip_suffix(": skipped")
        {
            skipped.push(name.to_owned());
        } else if let Some(rest) = line.strip_prefix("✓ ").or_else(|| line.strip_prefix("✗ "))
            && let Some((name, _)) = rest.split_once(": ")
        {
            ran.push(name.to_owned());
        }
    }
    (ran, skipped)
}

/// `<dir>/<scenario>-<YYYY-MM-DDTHH-MM-SS-mmmZ>/checks.json`, the newest if there are several.
fn find_checks(dir: &Path, scenario: &str) -> Option<PathBuf> {
    const SHAPE: &str = "-0000-00-00T00-00-00-000Z";
    let (parent, base) = match scenario.rsplit_once('/') {
        Some((parent, base)) => (dir.join(parent), base),
        None => (dir.to_owned(), scenario),
    };
    let mut found: Vec<PathBuf> = std::fs::read_dir(&parent)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|path| {
            let Some(stamp) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix(base))
            else {
                return false;
            };
            stamp.len() == SHAPE.len()
                && stamp
                    .bytes()
                    .zip(SHAPE.bytes())
                    .all(|(c, s)| if s == b'0' { c.is_ascii_digit() } else { c == s })
        })
        .map(|path| path.join("checks.json"))
        .filter(|file| file.is_file())
        .collect();
    found.sort();
    found.pop()
}

/// How the client runs went, judged against [`CLIENT_PENDING`].
#[derive(Debug, Default, PartialEq)]
pub(super) struct Verdict {
    pub(super) scenarios: usize,
    pub(super) passed: usize,
    /// (group, scenario) that did not pass and are not pending.
    pub(super) failed: Vec<(String, String)>,
    /// (group, scenario) pending and not passed, as expected.
    pub(super) pending: Vec<(String, String)>,
    /// (group, scenario) pending that passed: stale entries.
    pub(super) stale: Vec<(String, String)>,
    /// Entries of the pending list that no run has.
    pub(super) unknown: Vec<String>,
}

impl Verdict {
    pub(super) fn of(groups: &[ClientGroup], pending: &[&str]) -> Self {
        let mut verdict = Verdict::default();
        let mut seen = BTreeSet::new();
        for group in groups {
            for s in &group.scenarios {
                verdict.scenarios += 1;
                let listed = pending.contains(&s.name.as_str());
                if listed {
                    seen.insert(s.name.as_str());
                }
                let entry = (group.name(), s.name.clone());
                match (s.outcome() == Outcome::Pass, listed) {
                    (true, false) => verdict.passed += 1,
                    (true, true) => verdict.stale.push(entry),
                    (false, true) => verdict.pending.push(entry),
                    (false, false) => verdict.failed.push(entry),
                }
            }
            seen.extend(group.not_applicable.iter().map(String::as_str));
        }
        if !groups.is_empty() {
            verdict.unknown = pending
                .iter()
                .filter(|p| !seen.contains(**p))
                .map(|p| p.to_string())
                .collect();
        }
        verdict
    }

    /// What fails the run, one line each.
    pub(super) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.failed.is_empty() {
            problems.push(format!(
                "{} of {} client scenario runs did not pass",
                self.failed.len(),
                self.scenarios
            ));
        }
        if !self.stale.is_empty() {
            let names: Vec<String> = self.stale.iter().map(|(g, s)| format!("{s} [{g}]")).collect();
            problems.push(format!(
                "client scenarios listed in CLIENT_PENDING passed; remove them from xtask/src/conformance/client.rs: {}",
                names.join(", ")
            ));
        }
        if !self.unknown.is_empty() {
            problems.push(format!(
                "CLIENT_PENDING names scenarios no client run has: {}",
                self.unknown.join(", ")
            ));
        }
        problems
    }

    /// `13/38 client scenario runs passed, 0 failed, 25 pending (not passed, …), 0 stale …`.
    pub(super) fn line(&self) -> String {
        format!(
            "{}/{} client scenario runs passed, {} failed, {} pending (not passed, CLIENT_PENDING), {} stale pending entries",
            self.passed,
            self.scenarios,
            self.failed.len(),
            self.pending.len(),
            self.stale.len()
        )
    }
}

/// The console report of the client runs.
pub(super) fn render_table(groups: &[ClientGroup], verdict: &Verdict) -> String {
    let mut out = String::new();
    let width = groups
        .iter()
        .flat_map(|g| &g.scenarios)
        .map(|s| s.name.len())
        .chain([8])
        .max()
        .unwrap_or(8);
    for group in groups {
        let _ = writeln!(out, "\n{} (client, {})", group.name(), human(group.elapsed));
        let _ = writeln!(out, "  {:<width$}  SUCCESS  FAILURE  WARNING  result", "scenario");
        for s in &group.scenarios {
            let label = match (s.outcome(), CLIENT_PENDING.contains(&s.name.as_str())) {
                (Outcome::Pass, true) => "PASS (stale CLIENT_PENDING entry)",
                (_, true) => "PENDING",
                (outcome, false) => outcome.label(),
            };
            let _ = writeln!(
                out,
                "  {:<width$}  {:>7}  {:>7}  {:>7}  {label}",
                s.name,
                s.count("SUCCESS"),
                s.count("FAILURE"),
                s.count("WARNING")
            );
        }
        for name in &group.not_applicable {
            let _ = writeln!(out, "  {name:<width$}  not applicable at {}", group.spec_version);
        }
    }
    for (group, name) in &verdict.failed {
        if let Some(s) = scenario(groups, group, name) {
            let _ = writeln!(out, "\nnot passed: {name} [{group}]: {}", s.outcome().label());
            for finding in s.findings(s.outcome() == Outcome::NoSuccess) {
                let _ = writeln!(out, "    {}", finding.line(false));
            }
        }
    }
    let _ = writeln!(out, "\nclient totals: {}", verdict.line());
    out
}

fn scenario<'a>(groups: &'a [ClientGroup], group: &str, name: &str) -> Option<&'a Scenario> {
    groups
        .iter()
        .find(|g| g.name() == group)?
        .scenarios
        .iter()
        .find(|s| s.name == name)
}

/// The client section of `docs/conformance.md`.
pub(super) fn render_docs(groups: &[ClientGroup], verdict: &Verdict) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n## Client: `portico conformance-client`\n");
    if groups.is_empty() {
        let _ = writeln!(out, "Not run (`--no-client`).");
        return out;
    }
    let _ = writeln!(
        out,
        "The client scenarios (`client --suite all --spec-version V`) against `portico \
         conformance-client`, which acts each scenario out with Portico's client core over \
         Streamable HTTP (`servers/portico/src/conformance_client/`). The same rule: at least one \
         SUCCESS and no FAILURE. Scenarios in the baseline `CLIENT_PENDING` \
         (`xtask/src/conformance/client.rs`) would be reported as pending, not passed.\n"
    );
    let _ = writeln!(
        out,
        "| suite | spec version | scenarios | passed | failed | pending (not passed) | SUCCESS checks | FAILURE checks | time |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---|");
    for group in groups {
        let name = group.name();
        let count = |list: &[(String, String)]| list.iter().filter(|(g, _)| *g == name).count();
        let passed = group.scenarios.iter().filter(|s| s.outcome() == Outcome::Pass).count();
        let success: usize = group.scenarios.iter().map(|s| s.count("SUCCESS")).sum();
        let failure: usize = group.scenarios.iter().map(|s| s.count("FAILURE")).sum();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {success} | {failure} | {} |",
            group.suite,
            group.spec_version,
            group.scenarios.len(),
            passed,
            count(&verdict.failed),
            count(&verdict.pending),
            human(group.elapsed)
        );
    }
    let _ = writeln!(out, "\nPassed:\n");
    for group in groups {
        let passed: Vec<String> = group
            .scenarios
            .iter()
            .filter(|s| s.outcome() == Outcome::Pass)
            .map(|s| format!("`{}`", s.name))
            .collect();
        let shown = if passed.is_empty() {
            "none".to_owned()
        } else {
            passed.join(", ")
        };
        let _ = writeln!(out, "- {}: {shown}", group.name());
    }
    let _ = writeln!(out, "\n### Failing client scenarios\n");
    if verdict.failed.is_empty() && verdict.stale.is_empty() {
        let _ = writeln!(out, "None.");
    }
    for (group, name) in verdict.failed.iter().chain(&verdict.stale) {
        if let Some(s) = scenario(groups, group, name) {
            let _ = writeln!(
                out,
                "- `{name}` [{group}]: {} SUCCESS, {} FAILURE, {} WARNING",
                s.count("SUCCESS"),
                s.count("FAILURE"),
                s.count("WARNING")
            );
            for finding in s.findings(false) {
                let _ = writeln!(out, "  - {}", finding.line(true));
            }
        }
    }
    let _ = writeln!(out, "\n### Pending (not passed)\n");
    if verdict.pending.is_empty() {
        let _ = writeln!(out, "None.");
    }
    for group in groups {
        let name = group.name();
        let pending: Vec<String> = verdict
            .pending
            .iter()
            .filter(|(g, _)| *g == name)
            .map(|(_, s)| format!("`{s}`"))
            .collect();
        if !pending.is_empty() {
            let _ = writeln!(out, "- {name} ({}): {}", pending.len(), pending.join(", "));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::Check;
    use super::*;

    #[test]
    fn the_summary_names_the_scenarios_run_and_skipped() {
        let stdout = "Running all suite (3 scenarios) in parallel...\n\n✓ not-this: 1 passed\n\
                      \n=== SUITE SUMMARY ===\n\n✓ initialize: 1 passed, 0 failed\n\
                      ✗ auth/metadata-default: 0 passed, 7 failed\n- sse-retry: skipped\n\
                      \nTotal: 1 passed, 7 failed, 0 warnings, 1 skipped\n";
        let (ran, skipped) = parse_summary(stdout);
        assert_eq!(ran, ["initialize", "auth/metadata-default"]);
        assert_eq!(skipped, ["sse-retry"]);
    }

    #[test]
    fn checks_are_found_by_scenario_and_timestamp() {
        let dir = std::env::temp_dir().join(format!("xtask-client-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for folder in [
            "tools_call-2026-11-25T14-29-18-684Z",
            "tools_call_extra-2026-11-25T14-29-18-684Z",
            "auth/scope-step-up-2026-11-25T14-29-18-685Z",
        ] {
            std::fs::create_dir_all(dir.join(folder)).expect("mkdir");
            std::fs::write(dir.join(folder).join("checks.json"), "[]").expect("write");
        }
        let found = |name| find_checks(&dir, name).map(|p| p.strip_prefix(&dir).expect("inside").to_owned());
        assert_eq!(
            found("tools_call"),
            Some(PathBuf::from("tools_call-2026-11-25T14-29-18-684Z/checks.json"))
        );
        assert_eq!(
            found("auth/scope-step-up"),
            Some(PathBuf::from("auth/scope-step-up-2026-11-25T14-29-18-685Z/checks.json"))
        );
        assert_eq!(found("auth/scope"), None);
        assert_eq!(found("initialize"), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn pending_scenarios_are_apart_and_a_passing_one_is_stale() {
        let scenario = |name: &str, status: &str| Scenario {
            name: name.to_owned(),
            checks: vec![Check {
                id: "x".to_owned(),
                status: status.to_owned(),
                message: String::new(),
                description: String::new(),
            }],
        };
        let group = ClientGroup {
            suite: "0.2.0-alpha.12".to_owned(),
            spec_version: "2026-07-28".to_owned(),
            scenarios: vec![
                scenario("tools_call", "SUCCESS"),
                scenario("broken", "FAILURE"),
                scenario("auth/a", "FAILURE"),
                scenario("auth/b", "SUCCESS"),
            ],
            not_applicable: vec!["auth/c".to_owned()],
            elapsed: Duration::from_secs(1),
        };
        let verdict = Verdict::of(&[group], &["auth/a", "auth/b", "auth/c", "auth/gone"]);
        let at = |s: &str| ("0.2.0-alpha.12 2026-07-28".to_owned(), s.to_owned());
        assert_eq!(verdict.passed, 1);
        assert_eq!(verdict.failed, [at("broken")]);
        assert_eq!(verdict.pending, [at("auth/a")]);
        assert_eq!(verdict.stale, [at("auth/b")]);
        assert_eq!(verdict.unknown, ["auth/gone"]);
        assert_eq!(verdict.problems().len(), 3);
        let clean = Verdict::of(&[], &["auth/a"]);
        assert!(clean.problems().is_empty(), "no client run, nothing to judge");
    }
}
