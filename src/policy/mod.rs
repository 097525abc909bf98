//! Policy as code: Rego v1 policies evaluated in-process (regorus), the
//! same way by the server (enforced) and by a direct-mode console
//! (advisory). One input document in, one decision out (README "Policy"):
//!
//! - `deny` (set of strings): the request is refused, with these reasons;
//! - `max_duration_seconds` (number): the longest grant;
//! - `approvals_required` (number, default 1): distinct approvers, never
//!   the requester;
//! - `approvers` (set of `{"user"|"group": NAME, "rule": RULE}`): who may
//!   approve (empty: whoever the server's configuration lets);
//! - `auto_approve` (set of rule names): granted at once, recorded as
//!   approved by `policy:RULE`;
//! - `messages` (set of strings): shown to the approver.
//!
//! No wall-clock builtins are compiled in: `now` is in the input, so a
//! decision can be replayed from the audit log.

pub(crate) mod input;
pub(crate) mod store;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::Subject;

pub use input::policy_input;
pub use store::PolicyStore;

/// The package whose rules are the decision.
pub const PACKAGE: &str = "portcullis";

/// The decision's rules; a policy defines at least one.
pub const RULES: &[&str] = &[
    "deny",
    "max_duration_seconds",
    "approvals_required",
    "approvers",
    "auto_approve",
    "messages",
];

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PolicyError {
    #[error("{0}")]
    Load(String),
    #[error("policy evaluation failed: {0}")]
    Eval(String),
}

/// Who a policy lets approve, and the rule that says so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
pub struct ApproverRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default)]
    pub rule: String,
}

impl ApproverRule {
    pub fn matches(&self, who: &Subject) -> bool {
        self.user.as_ref().is_some_and(|u| *u == who.user)
            || self.group.as_ref().is_some_and(|g| who.groups.contains(g))
    }

    pub fn describe(&self) -> String {
        match (&self.user, &self.group) {
            (Some(u), _) => format!("user {u}"),
            (_, Some(g)) => format!("group {g}"),
            _ => "nobody".into(),
        }
    }
}

/// What a policy decided about one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// Why the request is refused (empty: allowed).
    pub deny: Vec<String>,
    #[serde(rename = "maxDurationSeconds", with = "seconds")]
    pub max_duration: Option<Duration>,
    pub approvals_required: usize,
    pub approvers: Vec<ApproverRule>,
    /// The rule that approves it at once, if any.
    pub auto_approve: Option<String>,
    pub messages: Vec<String>,
}

impl Default for Decision {
    fn default() -> Self {
        Self {
            deny: Vec::new(),
            max_duration: None,
            approvals_required: 1,
            approvers: Vec::new(),
            auto_approve: None,
            messages: Vec::new(),
        }
    }
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.deny.is_empty()
    }

    /// Whether `who` may approve by this decision; `Err` names the rules
    /// that list who may.
    pub fn may_approve(&self, who: &Subject) -> Result<(), String> {
        if self.approvers.is_empty() || self.approvers.iter().any(|a| a.matches(who)) {
            return Ok(());
        }
        let rules: BTreeSet<String> = self.approvers.iter().map(|a| a.rule.clone()).collect();
        let who_may: BTreeSet<String> = self.approvers.iter().map(ApproverRule::describe).collect();
        Err(format!(
            "policy rule {} lets only {} approve",
            rules.into_iter().collect::<Vec<_>>().join(", "),
            who_may.into_iter().collect::<Vec<_>>().join(", ")
        ))
    }

    /// One line for the approver: the verdict and why.
    pub fn summary(&self) -> String {
        if !self.allowed() {
            return format!("refused: {}", self.deny.join("; "));
        }
        let mut parts = Vec::new();
        if let Some(rule) = &self.auto_approve {
            parts.push(format!("approves itself ({rule})"));
        }
        if self.approvals_required > 1 {
            parts.push(format!("{} approvals needed", self.approvals_required));
        }
        if let Some(d) = self.max_duration {
            parts.push(format!("at most {}", crate::domain::duration::format(d)));
        }
        if parts.is_empty() {
            parts.push("allowed".into());
        }
        parts.join(", ")
    }
}

mod seconds {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_secs))
    }
}

/// A regorus error as one line: `file:line:col: message`.
fn one_line(e: impl std::fmt::Display) -> String {
    let text = e.to_string();
    let at = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("--> "))
        .map(str::trim);
    let what = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::trim);
    match (at, what) {
        (Some(at), Some(what)) => format!("{at}: {what}"),
        _ => text.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

/// A set of policy files and their data, parsed and ready to evaluate.
#[derive(Clone)]
pub struct Policy {
    engine: regorus::Engine,
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
    /// `(package, rule, file)` of every `test_` rule.
    pub tests: Vec<(String, String, PathBuf)>,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("dir", &self.dir)
            .field("files", &self.files)
            .finish()
    }
}

fn to_rego(v: &Value) -> Result<regorus::Value, PolicyError> {
    regorus::Value::from_json_str(&v.to_string()).map_err(|e| PolicyError::Eval(e.to_string()))
}

fn from_rego(v: &regorus::Value) -> Option<Value> {
    if *v == regorus::Value::Undefined {
        return None;
    }
    v.to_json_str()
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
}

/// The `test_` rules of a policy file, by a look at its text: `package X`
/// and rules named `test_…` at the start of a line.
fn find_tests(text: &str, file: &Path) -> Vec<(String, String, PathBuf)> {
    let package = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("package "))
        .map(|p| p.trim().to_string())
        .unwrap_or_default();
    let mut seen = BTreeSet::new();
    text.lines()
        .filter_map(|l| {
            let name: String = l
                .strip_prefix("test_")?
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            Some(format!("test_{name}"))
        })
        .filter(|n| seen.insert(n.clone()))
        .map(|n| (package.clone(), n, file.to_path_buf()))
        .collect()
}

impl Policy {
    /// Reads every `*.rego` and `*.json` / `*.yaml` data file of `dir`
    /// (not recursively). Parse errors name the file and line.
    pub fn load(dir: &Path) -> Result<Self, PolicyError> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| PolicyError::Load(format!("{}: {e}", dir.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("rego" | "json" | "yaml" | "yml")
                )
            })
            .collect();
        entries.sort();
        let mut sources = Vec::new();
        for path in entries {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| PolicyError::Load(format!("{}: {e}", path.display())))?;
            sources.push((path, text));
        }
        Self::from_sources(dir, sources)
    }

    /// As [`Self::load`], from named texts (a ConfigMap's keys): `*.rego`
    /// policies and `*.json` / `*.yaml` data; `origin` names where they
    /// came from in messages.
    pub fn from_sources(
        origin: &Path,
        mut sources: Vec<(PathBuf, String)>,
    ) -> Result<Self, PolicyError> {
        sources.sort_by(|a, b| a.0.cmp(&b.0));
        let dir = origin;
        let mut engine = regorus::Engine::new();
        let mut files = Vec::new();
        let mut tests = Vec::new();
        for (path, text) in sources {
            let path = &path;
            let ext = path
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or_default();
            let read = || Ok::<String, PolicyError>(text.clone());
            match ext {
                "rego" => {
                    let text = read()?;
                    tests.extend(find_tests(&text, path));
                    engine
                        .add_policy(path.display().to_string(), text)
                        .map_err(|e| PolicyError::Load(one_line(e)))?;
                    files.push(path.clone());
                }
                "json" | "yaml" | "yml" => {
                    let text = read()?;
                    let data: Value = if ext == "json" {
                        serde_json::from_str(&text)
                            .map_err(|e| PolicyError::Load(format!("{}: {e}", path.display())))?
                    } else {
                        serde_yaml_ng::from_str(&text)
                            .map_err(|e| PolicyError::Load(format!("{}: {e}", path.display())))?
                    };
                    engine
                        .add_data(to_rego(&data)?)
                        .map_err(|e| PolicyError::Load(format!("{}: {e}", path.display())))?;
                    files.push(path.clone());
                }
                _ => {}
            }
        }
        if !files
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "rego"))
        {
            return Err(PolicyError::Load(format!(
                "{}: no .rego files",
                dir.display()
            )));
        }
        let policy = Self {
            engine,
            dir: dir.to_path_buf(),
            files,
            tests,
        };
        // Compile once against an empty input: type errors and unknown
        // functions show now, not at the first request.
        policy.evaluate(&serde_json::json!({}))?;
        // A policy with none of the decision's rules (a misspelt package)
        // would silently allow everything: refuse it.
        let mut engine = policy.engine.clone();
        let defined = RULES
            .iter()
            .any(|name| engine.eval_rule(format!("data.{PACKAGE}.{name}")).is_ok());
        if !defined {
            return Err(PolicyError::Load(format!(
                "{}: package {PACKAGE} defines none of {}: is the package name right?",
                dir.display(),
                RULES.join(", ")
            )));
        }
        Ok(policy)
    }

    fn rule(engine: &mut regorus::Engine, name: &str) -> Result<Option<Value>, PolicyError> {
        match engine.eval_rule(format!("data.{PACKAGE}.{name}")) {
            Ok(v) => Ok(from_rego(&v)),
            // A policy need not define every rule: one it leaves out has
            // its default (no denials, one approval, …). regorus says so
            // only in words.
            Err(e) if e.to_string().contains("not a valid rule path") => Ok(None),
            Err(e) => Err(PolicyError::Eval(one_line(e))),
        }
    }

    /// Evaluates the decision for one input document.
    pub fn evaluate(&self, input: &Value) -> Result<Decision, PolicyError> {
        let mut engine = self.engine.clone();
        engine.set_input(to_rego(input)?);
        let strings = |v: Option<Value>| -> Vec<String> {
            let mut out: Vec<String> = v
                .and_then(|v| v.as_array().cloned())
                .unwrap_or_default()
                .into_iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect();
            out.sort();
            out
        };
        let deny = strings(Self::rule(&mut engine, "deny")?);
        let messages = strings(Self::rule(&mut engine, "messages")?);
        let auto = strings(Self::rule(&mut engine, "auto_approve")?);
        let max_duration = Self::rule(&mut engine, "max_duration_seconds")?
            .and_then(|v| v.as_f64())
            .filter(|s| *s > 0.0)
            .map(|s| Duration::from_secs(s as u64));
        let approvals_required = Self::rule(&mut engine, "approvals_required")?
            .and_then(|v| v.as_u64())
            .map(|n| n.max(1) as usize)
            .unwrap_or(1);
        let mut approvers: Vec<ApproverRule> = Self::rule(&mut engine, "approvers")?
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect();
        approvers.sort();
        Ok(Decision {
            deny,
            max_duration,
            approvals_required,
            approvers,
            auto_approve: auto.into_iter().next(),
            messages,
        })
    }

    /// Runs every `test_` rule; each must be true.
    pub fn run_tests(&self) -> Vec<TestOutcome> {
        self.tests
            .iter()
            .map(|(package, rule, file)| {
                let mut engine = self.engine.clone();
                let result = engine.eval_rule(format!("data.{package}.{rule}"));
                let outcome = match result {
                    Ok(regorus::Value::Bool(true)) => Ok(()),
                    Ok(regorus::Value::Undefined) => Err("undefined (a condition failed)".into()),
                    Ok(other) => Err(format!("gave {other}, not true")),
                    Err(e) => Err(e.to_string()),
                };
                TestOutcome {
                    name: format!("data.{package}.{rule}"),
                    file: file.clone(),
                    outcome,
                }
            })
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct TestOutcome {
    pub name: String,
    pub file: PathBuf,
    pub outcome: Result<(), String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Policy {
        Policy::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"))
            .expect("the shipped policy loads")
    }

    #[test]
    fn the_shipped_policy_tests_pass() {
        let p = shipped();
        assert!(p.tests.len() >= 6, "{:?}", p.tests);
        let failed: Vec<String> = p
            .run_tests()
            .into_iter()
            .filter(|t| t.outcome.is_err())
            .map(|t| format!("{}: {:?}", t.name, t.outcome))
            .collect();
        assert!(failed.is_empty(), "{}", failed.join("\n"));
    }

    #[test]
    fn a_decision_reads_every_rule() {
        let p = shipped();
        let input = serde_json::json!({
            "now": "2026-11-27T03:00:00Z",
            "requester": {"user": "alice", "groups": ["dev"]},
            "request": {"cluster": "prod-eu-west", "cluster_labels": {"env": "prod"},
                        "role": {"kind": "ClusterRole", "name": "edit"}, "namespaces": ["payments"],
                        "duration_seconds": 36000, "reason": "x"},
            "diff": {"worst": "critical", "flags": ["SecretsRead"], "new_permissions": 3},
            "reviews": []
        });
        let d = p.evaluate(&input).unwrap();
        assert!(!d.allowed());
        assert!(d.deny.iter().any(|m| m.contains("ticket")), "{d:?}");
        assert!(d.deny.iter().any(|m| m.contains("at most 14400s")), "{d:?}");
        assert_eq!(d.approvals_required, 2);
        assert_eq!(d.max_duration, Some(Duration::from_secs(14400)));
        assert!(d
            .may_approve(&Subject::new("bob", &["payments-team"]))
            .is_ok());
        let e = d
            .may_approve(&Subject::new("mallory", &["dev"]))
            .unwrap_err();
        assert!(
            e.contains("team-owns-namespace") && e.contains("group oncall"),
            "{e}"
        );
        assert_eq!(d.auto_approve, None);
    }

    #[test]
    fn a_broken_policy_names_the_file_and_line() {
        let dir = std::env::temp_dir().join(format!("portcullis-policy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("bad.rego"),
            "package portcullis\n\ndeny contains x if {\n  x := \n}\n",
        )
        .unwrap();
        let e = Policy::load(&dir).unwrap_err().to_string();
        assert!(e.contains("bad.rego:4:5: expecting"), "{e}");
        assert_eq!(e.lines().count(), 1, "one line: {e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
