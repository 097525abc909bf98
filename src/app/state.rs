//! The console's state: one owner, changed only by the reducer.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use ratatui_textarea::TextArea;
use regex::Regex;

use super::batch::Batch;
use super::filter::Filter;
use super::when::Zone;
use crate::backend::{ApproveSpec, RequestKey};
use crate::domain::rbac::engine::{analyze, Analysis, GrantRequest};
use crate::domain::rbac::{Inventory, NameReach, Scope};
use crate::domain::risk::Risk;
use crate::domain::sanitize::inert;
use crate::domain::{AccessRequest, Phase, RoleRef, Severity, Subject, ValidationLimits};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    Pending,
    Grants,
    History,
}

impl View {
    pub const ALL: [View; 3] = [View::Pending, View::Grants, View::History];

    pub fn index(self) -> usize {
        match self {
            View::Pending => 0,
            View::Grants => 1,
            View::History => 2,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            View::Pending => "Pending",
            View::Grants => "Live grants",
            View::History => "History",
        }
    }

    fn of(phase: Phase) -> View {
        match phase {
            Phase::Pending => View::Pending,
            Phase::Active => View::Grants,
            _ => View::History,
        }
    }
}

/// Settings the console runs with (from flags and the config file).
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub readonly: bool,
    /// Contexts whose name matches are production: red frame, `PROD` badge.
    pub production: Regex,
    pub limits: ValidationLimits,
    /// A live grant with less than this left is "expiring soon".
    pub expiring_soon: TimeDelta,
    /// `c` copies the selected request's name to the clipboard with OSC 52
    /// (off unless the config says `osc52 = true`).
    pub osc52: bool,
    /// Where clock times are shown (local time in the console).
    pub zone: Zone,
    /// A new pending request rings the bell and raises a desktop
    /// notification (`notify = false` turns both off); see
    /// [`super::arrivals`].
    pub notify: bool,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            readonly: false,
            production: Regex::new("(?i)prod")
                .unwrap_or_else(|_| Regex::new("$^").expect("trivial regex")),
            limits: ValidationLimits::default(),
            expiring_soon: TimeDelta::minutes(5),
            osc52: false,
            zone: Zone::default(),
            notify: true,
        }
    }
}

/// Risk at a glance for a table row; the full analysis is computed only
/// for the selected request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub worst: Option<Severity>,
    pub new_permissions: usize,
    /// Every permission the grant gives (new and already held).
    pub asked: usize,
    /// Why the diff could not be computed (unknown role, no inventory yet).
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub req: AccessRequest,
    pub summary: Summary,
    /// Why the request can never be approved, if it is invalid.
    pub invalid: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashLevel {
    Info,
    Success,
    Error,
}

/// A message in the flash line. Errors stay until acknowledged (esc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    pub level: FlashLevel,
    pub text: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkKind {
    Deny,
    Revoke,
}

impl BulkKind {
    pub fn verb(self) -> &'static str {
        match self {
            BulkKind::Deny => "Deny",
            BulkKind::Revoke => "Revoke",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ReasonForm {
    pub kind: BulkKind,
    pub keys: Vec<RequestKey>,
    pub input: TextArea<'static>,
    pub error: Option<String>,
    /// Reasons used before, newest first: `tab`/`↑` bring them back.
    pub recent: Vec<String>,
    /// Which recent reason is in the input, if one is.
    pub recall: Option<usize>,
    /// What was typed before recalling, restored by `↓` past the newest.
    pub draft: String,
}

#[derive(Debug, Clone)]
pub struct ApproveForm {
    pub key: RequestKey,
    pub duration: TextArea<'static>,
    /// Asked namespaces and whether each is kept; empty for cluster-wide.
    pub namespaces: Vec<(String, bool)>,
    /// 0 = the duration field, 1.. = a namespace row.
    pub focus: usize,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ShortenForm {
    pub key: RequestKey,
    pub input: TextArea<'static>,
    pub error: Option<String>,
}

/// An operation waiting for `y` in a confirmation dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PendingOp {
    Approve {
        key: RequestKey,
        spec: ApproveSpec,
    },
    Deny {
        keys: Vec<RequestKey>,
        reason: String,
    },
    Revoke {
        keys: Vec<RequestKey>,
        reason: String,
    },
    Release {
        key: RequestKey,
    },
}

#[derive(Debug, Clone)]
pub struct Confirm {
    pub title: String,
    /// What exactly will happen, one fact a line.
    pub lines: Vec<String>,
    pub op: PendingOp,
    /// `e` changes it: the grant (approve) or the reason (bulk deny/revoke).
    pub can_edit: bool,
    /// Why the last key in the dialog did nothing (a quick pick longer than
    /// asked).
    pub note: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Mode {
    Normal,
    Help {
        scroll: u16,
    },
    Command {
        input: TextArea<'static>,
        error: Option<String>,
        /// Tab with several choices: the choices, the one shown, and the
        /// line they complete.
        choices: Option<Choices>,
    },
    Filter {
        input: TextArea<'static>,
    },
    /// A dialog closed under the approver's hands: why, until esc or enter
    /// (keys typed on meanwhile land here, never on the list).
    Notice {
        title: String,
        text: String,
    },
    /// `:audit [FILTER]`: the recent audit events, newest first.
    Audit {
        filter: super::filter::Filter,
        scroll: u16,
    },
    /// `enter`: the request in full (whole diff, the object, its events).
    Full {
        key: RequestKey,
        scroll: u16,
    },
    Reason(ReasonForm),
    Approve(ApproveForm),
    Shorten(ShortenForm),
    Confirm(Confirm),
}

/// Completions `tab` cycles through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choices {
    pub base: String,
    pub items: Vec<String>,
    pub shown: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    pub error: Option<String>,
    pub production: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub pending: usize,
    pub live: usize,
    pub expiring: usize,
    pub history: usize,
    /// When the longest-waiting pending request (not the approver's own)
    /// was made: the header says how long it has waited.
    pub oldest_pending: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct Detail {
    pub key: RequestKey,
    pub requester: String,
    pub analysis: Result<Arc<Analysis>, String>,
    /// Direct mode: the requester's claimed groups, and how many of the
    /// new permissions they would already hold if the claim were true.
    pub claimed: Option<(Vec<String>, usize)>,
    /// The policy's decision and whether it is only advisory (a console's
    /// own evaluation in direct mode) rather than the server's.
    pub verdict: Option<(Arc<crate::policy::Decision>, bool)>,
    /// The new permissions grouped for display, computed once per selection.
    pub diff: Vec<DiffGroup>,
    /// The requester's other live grants, soonest end first.
    pub live: Vec<RequestKey>,
    /// The requester's most recent ended requests, newest first (at most
    /// [`PAST_SHOWN`]).
    pub past: Vec<RequestKey>,
    /// What the approver would otherwise have to spot: a reason about
    /// another cluster, a role broader than the task, a recent denial.
    pub flags: Vec<String>,
}

/// New permissions on one resource in one scope: verbs and the worst risk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffRow {
    pub resource: String,
    pub verbs: String,
    pub risk: Risk,
    /// Only get, list or watch: collapsed into one line per scope unless
    /// its risk is high or critical (reading Secrets stays a row).
    pub read_only: bool,
}

impl DiffRow {
    /// Folded into the scope's "reads N resource kinds" line while reads
    /// are collapsed.
    pub fn collapsible(&self) -> bool {
        self.read_only && self.risk.severity < Severity::High
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffGroup {
    pub scope: Scope,
    /// Worst risk first, then by resource.
    pub rows: Vec<DiffRow>,
    /// Where a resource name in the rows does not restrict what it seems
    /// to (`resourceNames: [""]`, a name on create), one line each.
    pub notes: Vec<&'static str>,
}

impl DiffGroup {
    pub fn worst(&self) -> Severity {
        self.rows
            .iter()
            .map(|r| r.risk.severity)
            .max()
            .unwrap_or(Severity::Info)
    }
}

const READ_VERBS: [&str; 3] = ["get", "list", "watch"];
const WRITE_VERBS: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

/// Verbs as an approver reads them: `*` as "all verbs", the full read set as
/// "read", the full write set as "write", anything else by name.
pub fn verbs_text(verbs: &[&str]) -> String {
    if verbs.contains(&"*") {
        return "* (all verbs)".into();
    }
    let has_all = |set: &[&str]| set.iter().all(|v| verbs.contains(v));
    let (read, write) = (has_all(&READ_VERBS), has_all(&WRITE_VERBS));
    let mut parts: Vec<&str> = Vec::new();
    if read {
        parts.push("read");
    }
    if write {
        parts.push("write");
    }
    let mut rest: Vec<&str> = verbs
        .iter()
        .copied()
        .filter(|v| !((read && READ_VERBS.contains(v)) || (write && WRITE_VERBS.contains(v))))
        .collect();
    rest.sort_unstable();
    rest.dedup();
    parts.extend(rest);
    parts.join(" ")
}

/// Groups new permissions by scope, then resource (with resource names),
/// each name shown for what it really restricts.
pub fn group_diff(a: &Analysis) -> Vec<DiffGroup> {
    let mut groups: BTreeMap<&Scope, BTreeMap<String, (Vec<&str>, Risk)>> = BTreeMap::new();
    let mut notes: BTreeMap<&Scope, Vec<&'static str>> = BTreeMap::new();
    for p in &a.new {
        let resource = p.permission.resource_label();
        let reach = p.permission.name_reach();
        let label = match reach {
            NameReach::Any => resource,
            NameReach::Object(n) | NameReach::FieldSelected(n) => format!("{resource} \"{n}\""),
            NameReach::EveryObject => format!("{resource} (every object)"),
            NameReach::NoRequest => match &p.permission.target {
                crate::domain::rbac::Target::Resource { name: Some(n), .. } => {
                    format!("{resource} \"{n}\" (no effect)")
                }
                _ => format!("{resource} (no effect)"),
            },
        };
        if let Some(note) = reach.note() {
            let scope_notes = notes.entry(&p.permission.scope).or_default();
            if !scope_notes.contains(&note) {
                scope_notes.push(note);
            }
        }
        let slot = groups
            .entry(&p.permission.scope)
            .or_default()
            .entry(label)
            .or_insert((Vec::new(), p.risk));
        slot.0.push(&p.permission.verb);
        if p.risk.severity > slot.1.severity {
            slot.1 = p.risk;
        }
    }
    let mut out: Vec<DiffGroup> = groups
        .into_iter()
        .map(|(scope, resources)| {
            let mut rows: Vec<DiffRow> = resources
                .into_iter()
                .map(|(resource, (verbs, risk))| DiffRow {
                    resource,
                    read_only: verbs.iter().all(|v| READ_VERBS.contains(v)),
                    verbs: verbs_text(&verbs),
                    risk,
                })
                .collect();
            rows.sort_by(|x, y| {
                y.risk
                    .severity
                    .cmp(&x.risk.severity)
                    .then(x.resource.cmp(&y.resource))
            });
            DiffGroup {
                notes: notes.remove(scope).unwrap_or_default(),
                scope: scope.clone(),
                rows,
            }
        })
        .collect();
    // The scope with the worst permission first, so CRIT and HIGH lead
    // the diff whatever the scopes are called (stable: then by scope).
    out.sort_by_key(|g| std::cmp::Reverse(g.worst()));
    out
}

/// How many past requests the requester context shows.
pub const PAST_SHOWN: usize = 4;

type SummaryKey = (String, Subject, RoleRef, Vec<String>);

pub struct AppState {
    pub config: AppConfig,
    pub now: DateTime<Utc>,
    pub approver: Subject,
    pub backend_kind: &'static str,
    pub clusters: BTreeMap<String, ClusterInfo>,
    /// `:ctx NAME` shows one cluster; None shows all.
    pub context: Option<String>,
    pub entries: BTreeMap<RequestKey, Entry>,
    pub inventories: BTreeMap<String, Arc<Inventory>>,
    pub view: View,
    /// The visible rows of each view, filtered and sorted.
    pub lists: [Vec<RequestKey>; 3],
    pub cursor: [usize; 3],
    pub marks: BTreeSet<RequestKey>,
    pub filter: Filter,
    pub mode: Mode,
    pub flash: Option<Flash>,
    pub detail: Option<Detail>,
    /// How far each request's detail is scrolled, kept while the cursor is
    /// elsewhere.
    pub scrolls: HashMap<RequestKey, u16>,
    /// The terminal's size (columns, rows), for scrolling that stops at the
    /// end; (0, 0) until known.
    pub viewport: (u16, u16),
    /// A bulk deny or revoke on its way: said once, when all are back.
    pub batch: Option<Batch>,
    /// Reasons given in this session (deny and revoke), newest first.
    pub reasons_used: Vec<(BulkKind, String)>,
    pub counts: Counts,
    pub in_flight: usize,
    pub should_quit: bool,
    /// Why the approver's identity is unverified (approvals are refused).
    pub identity_note: Option<String>,
    /// Whether requesters' groups are verified; when not (direct mode)
    /// they are shown as claims and never count as access already held.
    pub requester_groups_verified: bool,
    /// What the console calls a cluster, by context, where that differs
    /// from the context (README, "Cluster names").
    pub cluster_names: BTreeMap<String, String>,
    /// The limits each cluster applies, as the backend reported them.
    pub cluster_limits: BTreeMap<String, ValidationLimits>,
    /// Why the backend (the Portcullis server) cannot be reached, while it
    /// cannot: shown in the header; the console keeps what it has.
    pub backend_error: Option<String>,
    /// The server's policy decisions (enforced), by request.
    pub verdicts: HashMap<RequestKey, Arc<crate::policy::Decision>>,
    /// A policy this console evaluates itself (direct mode: advisory).
    pub policy: Option<Arc<crate::policy::Policy>>,
    summary_cache: HashMap<SummaryKey, Summary>,
    /// Request keys by requester, for the requester context in the detail
    /// pane without scanning every request each frame.
    by_user: HashMap<String, BTreeSet<RequestKey>>,
    /// Ends of every live grant in view (ignoring the filter), sorted: the
    /// expiring-soon count is a binary search on each tick.
    live_ends: Vec<DateTime<Utc>>,
    /// New requests not yet announced, and those that were.
    pub arrivals: super::arrivals::Arrivals,
    /// Audit events (`:audit`, and each request's timeline).
    pub trail: super::trail::Trail,
    /// The detail pane lists every read-only permission instead of one
    /// "reads N resource kinds" line per scope (`x` toggles; kept across
    /// selections, as an approver who wants them wants them everywhere).
    pub reads_expanded: bool,
}

impl AppState {
    pub fn new(
        config: AppConfig,
        approver: Subject,
        backend_kind: &'static str,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            config,
            now,
            approver,
            backend_kind,
            clusters: BTreeMap::new(),
            context: None,
            entries: BTreeMap::new(),
            inventories: BTreeMap::new(),
            view: View::Pending,
            lists: Default::default(),
            cursor: [0; 3],
            marks: BTreeSet::new(),
            filter: Filter::default(),
            mode: Mode::Normal,
            flash: None,
            detail: None,
            scrolls: HashMap::new(),
            viewport: (0, 0),
            batch: None,
            reasons_used: Vec::new(),
            counts: Counts::default(),
            in_flight: 0,
            should_quit: false,
            identity_note: None,
            requester_groups_verified: true,
            cluster_names: BTreeMap::new(),
            cluster_limits: BTreeMap::new(),
            backend_error: None,
            verdicts: HashMap::new(),
            policy: None,
            summary_cache: HashMap::new(),
            arrivals: super::arrivals::Arrivals::new(now),
            by_user: HashMap::new(),
            live_ends: Vec::new(),
            trail: super::trail::Trail::default(),
            reads_expanded: false,
        }
    }

    /// How names in a request object were verified, as the trail says it.
    pub fn recorded_by(&self) -> &'static str {
        match self.backend_kind {
            "demo" => "demo",
            "http" => "TokenReview",
            _ => "request-object",
        }
    }

    pub fn list(&self, view: View) -> &[RequestKey] {
        &self.lists[view.index()]
    }

    pub fn selected_key(&self) -> Option<&RequestKey> {
        self.lists[self.view.index()].get(self.cursor[self.view.index()])
    }

    pub fn selected(&self) -> Option<&Entry> {
        self.selected_key().and_then(|k| self.entries.get(k))
    }

    /// The name the console shows for `cluster` (a context).
    pub fn cluster_label<'a>(&'a self, cluster: &'a str) -> &'a str {
        self.cluster_names
            .get(cluster)
            .map_or(cluster, String::as_str)
    }

    pub fn is_production(&self, cluster: &str) -> bool {
        self.clusters.get(cluster).map_or_else(
            || {
                self.config.production.is_match(cluster)
                    || self.config.production.is_match(self.cluster_label(cluster))
            },
            |c| c.production,
        )
    }

    /// Whether what is on screen is production: the `:ctx` cluster, or the
    /// selected request's cluster.
    pub fn production_in_view(&self) -> bool {
        match (&self.context, self.selected()) {
            (Some(ctx), _) => self.is_production(ctx),
            (None, Some(e)) => self.is_production(&e.req.cluster),
            (None, None) => false,
        }
    }

    pub fn summary_for(&mut self, req: &AccessRequest) -> Summary {
        let Some(inv) = self.inventories.get(&req.cluster) else {
            return Summary {
                worst: None,
                new_permissions: 0,
                asked: 0,
                error: Some("no RBAC inventory for this cluster yet".into()),
            };
        };
        let subject = self.subject_for(req);
        let key = (
            req.cluster.clone(),
            subject.clone().into_owned(),
            req.role.clone(),
            req.granted_namespaces().to_vec(),
        );
        if let Some(s) = self.summary_cache.get(&key) {
            return s.clone();
        }
        let s = match analyze(inv, grant_request(req, &subject)) {
            Ok(a) => Summary {
                worst: (!a.new.is_empty()).then_some(a.worst),
                new_permissions: a.new.len(),
                asked: a.granted.len(),
                error: None,
            },
            Err(e) => Summary {
                worst: None,
                new_permissions: 0,
                asked: 0,
                error: Some(e.to_string()),
            },
        };
        self.summary_cache.insert(key, s.clone());
        s
    }

    /// Stores a request as the backend reported it.
    pub fn upsert(&mut self, req: AccessRequest) {
        // Every change this console sees, whoever made it, is in its
        // trail (the server backend sends the server's own instead).
        if self.backend_kind != "http" {
            let (by, now) = (self.recorded_by(), self.now);
            let old = self.entries.get(&RequestKey::of(&req)).map(|e| &e.req);
            self.trail.observe(old, &req, by, now);
        }
        let summary = self.summary_for(&req);
        let invalid = req
            .validate(self.limits_for(&req.cluster))
            .err()
            .map(|e| e.to_string())
            .or_else(|| {
                // A grant for a role the cluster does not have can never be approved.
                (req.phase() == Phase::Pending)
                    .then(|| summary.error.clone())
                    .flatten()
                    .filter(|_| self.inventories.contains_key(&req.cluster))
            })
            .or_else(|| {
                let known = self.inventories.get(&req.cluster)?.namespaces.as_ref()?;
                let missing = req.namespaces.iter().find(|ns| !known.contains(*ns))?;
                (req.phase() == Phase::Pending).then(|| {
                    format!(
                        "namespace '{}' does not exist on {}",
                        inert(missing, 64),
                        inert(&req.cluster, 64)
                    )
                })
            });
        let key = RequestKey::of(&req);
        if self
            .entries
            .get(&key)
            .is_some_and(|e| View::of(e.req.phase()) != View::of(req.phase()))
        {
            self.marks.remove(&key);
        }
        // The detail pane lists this requester's requests: recompute it.
        if self
            .detail
            .as_ref()
            .is_some_and(|d| d.requester == req.requester.user)
        {
            self.detail = None;
        }
        if let Some(old) = self.entries.get(&key) {
            if old.req.requester.user != req.requester.user {
                if let Some(keys) = self.by_user.get_mut(&old.req.requester.user) {
                    keys.remove(&key);
                }
            }
        }
        self.by_user
            .entry(req.requester.user.clone())
            .or_default()
            .insert(key.clone());
        self.entries.insert(
            key,
            Entry {
                req,
                summary,
                invalid,
            },
        );
    }

    pub fn set_inventory(&mut self, cluster: String, inventory: Arc<Inventory>) {
        self.inventories.insert(cluster.clone(), inventory);
        self.summary_cache.retain(|k, _| k.0 != cluster);
        let keys: Vec<RequestKey> = self
            .entries
            .keys()
            .filter(|k| k.cluster == cluster)
            .cloned()
            .collect();
        for k in keys {
            if let Some(e) = self.entries.get(&k) {
                let req = e.req.clone();
                self.upsert(req);
            }
        }
        if self
            .detail
            .as_ref()
            .is_some_and(|d| d.key.cluster == cluster)
        {
            self.detail = None;
        }
    }

    /// Rebuilds the visible lists, keeping each view's selection on the same
    /// request when it is still visible.
    pub fn refresh_lists(&mut self) {
        let selected: Vec<Option<RequestKey>> = View::ALL
            .iter()
            .map(|v| self.lists[v.index()].get(self.cursor[v.index()]).cloned())
            .collect();
        let mut lists: [Vec<RequestKey>; 3] = Default::default();
        let mut live_ends = Vec::new();
        let mut counts = Counts::default();
        for (key, e) in &self.entries {
            if self.context.as_ref().is_some_and(|c| *c != key.cluster) {
                continue;
            }
            let view = View::of(e.req.phase());
            match view {
                View::Pending => {
                    counts.pending += 1;
                    if e.req.requester.user != self.approver.user
                        && counts.oldest_pending.is_none_or(|t| e.req.created_at < t)
                    {
                        counts.oldest_pending = Some(e.req.created_at);
                    }
                }
                View::Grants => {
                    counts.live += 1;
                    live_ends.extend(e.req.status.expires_at);
                }
                View::History => counts.history += 1,
            }
            let shown_as = self.cluster_label(&e.req.cluster);
            if self.filter.matches_named(&e.req, e.summary.worst, shown_as) {
                lists[view.index()].push(key.clone());
            }
        }
        let entries = &self.entries;
        let get = |k: &RequestKey| &entries[k].req;
        lists[0].sort_by(|a, b| (get(a).created_at, a).cmp(&(get(b).created_at, b)));
        lists[1].sort_by(|a, b| (get(a).status.expires_at, a).cmp(&(get(b).status.expires_at, b)));
        lists[2].sort_by(|a, b| (ended_at(get(b)), b).cmp(&(ended_at(get(a)), a)));
        for v in View::ALL {
            let i = v.index();
            self.cursor[i] = match &selected[i] {
                Some(k) => lists[i]
                    .iter()
                    .position(|x| x == k)
                    .unwrap_or(self.cursor[i]),
                None => self.cursor[i],
            }
            .min(lists[i].len().saturating_sub(1));
        }
        self.lists = lists;
        self.marks.retain(|k| entries.contains_key(k));
        self.counts = counts;
        live_ends.sort_unstable();
        self.live_ends = live_ends;
        self.recount_expiring();
    }

    pub fn recount_expiring(&mut self) {
        let soon = self.now + self.config.expiring_soon;
        self.counts.expiring = self.live_ends.partition_point(|end| *end <= soon);
    }

    /// Computes the full analysis for the selection when it changed.
    pub fn ensure_detail(&mut self) {
        let Some(key) = self.selected_key().cloned() else {
            self.detail = None;
            return;
        };
        if self.detail.as_ref().is_some_and(|d| d.key == key) {
            return;
        }
        let requester = self
            .entries
            .get(&key)
            .map(|e| e.req.requester.user.clone())
            .unwrap_or_default();
        let theirs = self.requests_of(&requester);
        let mut live: Vec<&AccessRequest> = theirs
            .iter()
            .copied()
            .filter(|r| r.phase() == Phase::Active && RequestKey::of(r) != key)
            .collect();
        live.sort_by_key(|r| r.status.expires_at);
        let live = live.into_iter().map(RequestKey::of).collect();
        let mut ended: Vec<&AccessRequest> = theirs
            .iter()
            .copied()
            .filter(|r| r.phase().is_terminal() && RequestKey::of(r) != key)
            .collect();
        ended.sort_by_key(|r| std::cmp::Reverse(ended_at(r)));
        let past = ended
            .into_iter()
            .take(PAST_SHOWN)
            .map(RequestKey::of)
            .collect();
        let analysis = match (self.entries.get(&key), self.inventories.get(&key.cluster)) {
            (Some(e), Some(inv)) => analyze(inv, grant_request(&e.req, &self.subject_for(&e.req)))
                .map(Arc::new)
                .map_err(|e| e.to_string()),
            (Some(_), None) => Err("no RBAC inventory for this cluster yet".into()),
            (None, _) => Err("gone".into()),
        };
        let verdict = self.entries.get(&key).and_then(|e| {
            if let Some(d) = self.verdicts.get(&key) {
                return Some((d.clone(), false));
            }
            let policy = self.policy.as_ref()?;
            let labels: BTreeMap<String, String> = if self.is_production(&key.cluster) {
                BTreeMap::from([("env".to_string(), "prod".to_string())])
            } else {
                BTreeMap::new()
            };
            let extension = e.req.extends.as_ref().and_then(|of| {
                let live = self.entries.get(&RequestKey {
                    cluster: key.cluster.clone(),
                    name: of.clone(),
                })?;
                let used = (self.now - live.req.status.granted_at?)
                    .num_seconds()
                    .max(0) as u64;
                Some((of.as_str(), used))
            });
            let input = crate::policy::policy_input(
                &e.req,
                analysis.as_ref().ok().map(|a| a.as_ref()),
                &labels,
                self.now,
                extension,
            );
            policy.evaluate(&input).ok().map(|d| (Arc::new(d), true))
        });
        let claimed = match (
            self.entries.get(&key),
            self.inventories.get(&key.cluster),
            &analysis,
        ) {
            (Some(e), Some(inv), Ok(unclaimed))
                if !self.requester_groups_verified && !e.req.requester.groups.is_empty() =>
            {
                let if_true = analyze(inv, grant_request(&e.req, &e.req.requester))
                    .map(|a| a.new.len())
                    .unwrap_or(unclaimed.new.len());
                Some((
                    e.req.requester.groups.clone(),
                    unclaimed.new.len().saturating_sub(if_true),
                ))
            }
            _ => None,
        };
        let diff = analysis.as_ref().map(|a| group_diff(a)).unwrap_or_default();
        let flags = match (self.entries.get(&key), &analysis) {
            (Some(e), Ok(a)) => super::flags::flags(self, &e.req, a),
            (Some(e), Err(_)) => super::flags::flags_without_diff(self, &e.req),
            _ => Vec::new(),
        };
        self.detail = Some(Detail {
            key,
            requester,
            analysis,
            claimed,
            verdict,
            diff,
            live,
            past,
            flags,
        });
    }

    /// How far the selection's detail pane is scrolled.
    pub fn detail_scroll(&self) -> u16 {
        self.selected_key()
            .and_then(|k| self.scrolls.get(k))
            .copied()
            .unwrap_or(0)
    }

    /// Requests of the same user, newest first (for the requester context).
    pub fn requests_of(&self, user: &str) -> Vec<&AccessRequest> {
        let mut v: Vec<&AccessRequest> = self
            .by_user
            .get(user)
            .into_iter()
            .flatten()
            .filter_map(|k| self.entries.get(k))
            .map(|e| &e.req)
            .collect();
        v.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        v
    }

    pub fn remove(&mut self, key: &RequestKey) {
        self.scrolls.remove(key);
        if let Some(e) = self.entries.remove(key) {
            if let Some(keys) = self.by_user.get_mut(&e.req.requester.user) {
                keys.remove(key);
            }
        }
        self.marks.remove(key);
    }

    /// Who the engine evaluates: the requester with their groups when those
    /// are verified, else the user alone (claimed groups are not access).
    pub fn subject_for<'a>(&self, req: &'a AccessRequest) -> std::borrow::Cow<'a, Subject> {
        if self.requester_groups_verified || req.requester.groups.is_empty() {
            std::borrow::Cow::Borrowed(&req.requester)
        } else {
            std::borrow::Cow::Owned(Subject {
                user: req.requester.user.clone(),
                groups: Vec::new(),
            })
        }
    }

    /// The policy's verdict on a request, if one is known: the server's
    /// (enforced) or, for the selected request, this console's (advisory).
    pub fn verdict_of(
        &self,
        key: &Option<RequestKey>,
    ) -> Option<(Arc<crate::policy::Decision>, bool)> {
        let key = key.as_ref()?;
        if let Some(d) = self.verdicts.get(key) {
            return Some((d.clone(), false));
        }
        self.detail
            .as_ref()
            .filter(|d| d.key == *key)
            .and_then(|d| d.verdict.clone())
    }

    /// The limits of `cluster`: what it reported, else the config's.
    pub fn limits_for(&self, cluster: &str) -> &ValidationLimits {
        self.cluster_limits
            .get(cluster)
            .unwrap_or(&self.config.limits)
    }

    /// Takes what the backend says about trust: whether the approver is
    /// verified and whether requesters' groups are.
    pub fn trust(mut self, info: &crate::backend::BackendInfo) -> Self {
        self.identity_note = info.identity_note.clone();
        self.cluster_names = info.cluster_names.clone();
        self.requester_groups_verified = info.requester_groups_verified;
        self
    }

    pub fn flash(&mut self, level: FlashLevel, text: impl Into<String>) {
        self.flash = Some(Flash {
            level,
            text: text.into(),
            at: self.now,
        });
    }
}

/// When a request was decided or ended: what "ago" means for a past request.
pub fn ended_at(r: &AccessRequest) -> DateTime<Utc> {
    r.status
        .ended_at
        .or(r.status.decision.as_ref().map(|d| d.at))
        .unwrap_or(r.created_at)
}

/// A pending request is analysed as asked; a decided one as granted.
pub fn grant_request<'a>(req: &'a AccessRequest, subject: &'a Subject) -> GrantRequest<'a> {
    GrantRequest {
        subject,
        role: &req.role,
        namespaces: req.granted_namespaces(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_read_as_groups() {
        assert_eq!(verbs_text(&["get", "list", "watch"]), "read");
        assert_eq!(
            verbs_text(&[
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch"
            ]),
            "read write"
        );
        assert_eq!(verbs_text(&["get", "list"]), "get list");
        assert_eq!(
            verbs_text(&["watch", "get", "list", "impersonate"]),
            "read impersonate"
        );
        assert_eq!(verbs_text(&["get", "*"]), "* (all verbs)");
    }
}
