//! The console's state: one owner, changed only by the reducer.

use std::borrow::Cow;
use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use ratatui_textarea::TextArea;
use regex::Regex;

use super::batch::Batch;
use super::filter::Filter;
use super::store::{Id, Meta, Rows, Store};
use super::when::Zone;
use crate::backend::{ApproveSpec, RequestKey, Seen};
use crate::domain::rbac::engine::{analyze, user_matters, users_named, Analysis, GrantRequest};
use crate::domain::rbac::{Inventory, NameReach, Scope};
use crate::domain::request::Verdict;
use crate::domain::risk::Risk;
use crate::domain::sanitize::inert;
use crate::domain::{AccessRequest, Phase, RoleRef, Severity, Subject, ValidationLimits};

/// The approve dialog's quick picks: `1`, `2`, `3`.
pub const QUICK_PICKS: [(char, u64); 3] = [('1', 15 * 60), ('2', 30 * 60), ('3', 3600)];

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

    pub fn of(phase: Phase) -> View {
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// The operation, with its reason.
    pub(crate) fn op(self, reason: String) -> crate::backend::Op {
        match self {
            BulkKind::Deny => crate::backend::Op::Deny { reason },
            BulkKind::Revoke => crate::backend::Op::Revoke { reason },
        }
    }

    /// The phase the requests it acts on must be in.
    pub(crate) fn phase(self) -> Phase {
        match self {
            BulkKind::Deny => Phase::Pending,
            BulkKind::Revoke => Phase::Active,
        }
    }

    /// Title-cased, for dialogs ("Deny 3 requests?").
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
        /// What the dialog showed: the approval names it.
        seen: Seen,
        spec: ApproveSpec,
    },
    /// A deny or a revoke, of one request or many, with its reason.
    Bulk {
        kind: BulkKind,
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
        /// Keys typed on meanwhile, held here and shown, so none is lost
        /// without a sign.
        ignored: String,
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
    /// The requester's other live grants, soonest end first (at most
    /// [`CONTEXT_SHOWN`]), and how many there are.
    pub live: Vec<RequestKey>,
    pub live_total: usize,
    /// The requester's most recent ended requests, newest first (at most
    /// [`PAST_SHOWN`]).
    pub past: Vec<RequestKey>,
    /// What the approver would otherwise have to spot: a reason about
    /// another cluster, a role broader than the task, a recent denial.
    pub flags: Vec<String>,
    /// The live grant this request extends: the policy's verdict reads it,
    /// so a change to it recomputes the pane.
    pub extends: Option<RequestKey>,
    /// How many of `flags` are about this request itself (the rest are
    /// about its requester's other requests and are recomputed with them).
    pub own_flags: usize,
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
/// How many other live grants the requester context names (it counts all).
pub const CONTEXT_SHOWN: usize = 4;

/// What the indexes need of a request, read once as it is stored.
struct Facts {
    /// The end of a live grant.
    live_end: Option<DateTime<Utc>>,
    /// When an ended request ended.
    ended: Option<DateTime<Utc>>,
    /// When a denied request was denied.
    denied: Option<DateTime<Utc>>,
    /// When a revoked grant was revoked.
    revoked: Option<DateTime<Utc>>,
    /// The approver's own request (never the oldest waiting for them).
    mine: bool,
}

impl Facts {
    fn of(r: &AccessRequest, approver: &str) -> Self {
        let phase = r.phase();
        Self {
            live_end: (phase == Phase::Active)
                .then(|| r.status.expires_at.unwrap_or(DateTime::<Utc>::MIN_UTC)),
            ended: phase.is_terminal().then(|| ended_at(r)),
            denied: r
                .status
                .decision
                .as_ref()
                .filter(|d| phase == Phase::Denied && d.verdict == Verdict::Denied)
                .map(|d| d.at),
            revoked: matches!(phase, Phase::Revoked | Phase::Released)
                .then_some(r.status.ended_at)
                .flatten(),
            mine: r.requester.user == approver,
        }
    }
}

/// One requester's requests, for the requester context: a few entries
/// read in order, however many requests they have.
#[derive(Debug, Default)]
struct UserIndex {
    /// Live grants, soonest end first.
    live: BTreeSet<(DateTime<Utc>, Id)>,
    /// Ended requests, latest end first.
    ended: BTreeSet<(Reverse<DateTime<Utc>>, Id)>,
    /// Denials, by when.
    denied: BTreeSet<(DateTime<Utc>, Id)>,
}

impl UserIndex {
    fn add(&mut self, id: Id, f: &Facts) {
        if let Some(at) = f.live_end {
            self.live.insert((at, id));
        }
        if let Some(at) = f.ended {
            self.ended.insert((Reverse(at), id));
        }
        if let Some(at) = f.denied {
            self.denied.insert((at, id));
        }
    }

    fn remove(&mut self, id: Id, f: &Facts) {
        if let Some(at) = f.live_end {
            self.live.remove(&(at, id));
        }
        if let Some(at) = f.ended {
            self.ended.remove(&(Reverse(at), id));
        }
        if let Some(at) = f.denied {
            self.denied.remove(&(at, id));
        }
    }

    /// Nothing the requester context reads (pending requests are not
    /// indexed: the context never lists them). Denials are ended requests.
    fn is_empty(&self) -> bool {
        self.live.is_empty() && self.ended.is_empty()
    }

    /// Removes `id` without knowing what it was (see `AppState::unindex`).
    fn forget(&mut self, id: Id) {
        self.live.retain(|(_, x)| *x != id);
        self.ended.retain(|(_, x)| *x != id);
        self.denied.retain(|(_, x)| *x != id);
    }
}

/// A risk summary is shared by requests of one cluster, role, namespaces
/// and groups; the user counts only where it matters (a binding names it,
/// or it is a system user: [`crate::domain::rbac::engine::user_matters`]),
/// so thousands of requesters cost a few analyses, not one each.
type SummaryKey = (String, Option<String>, Vec<String>, RoleRef, Vec<String>);

/// At most this many summaries are remembered (then the cache starts over).
const SUMMARY_CACHE: usize = 20_000;

pub struct AppState {
    pub config: AppConfig,
    pub now: DateTime<Utc>,
    pub approver: Subject,
    pub backend_kind: &'static str,
    pub clusters: BTreeMap<String, ClusterInfo>,
    /// `:ctx NAME` shows one cluster; None shows all.
    pub context: Option<String>,
    /// Every request this console holds (ended ones compact).
    pub entries: Store,
    pub inventories: BTreeMap<String, Arc<Inventory>>,
    pub view: View,
    /// The visible rows of each view, filtered and sorted, kept in order
    /// as requests change.
    lists: [Vec<Id>; 3],
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
    /// A reason typed and then cancelled: offered first next time (it was
    /// meant for something), never sent by itself.
    pub reason_cancelled: Option<(BulkKind, String)>,
    pub counts: Counts,
    /// The requests this console's operations in flight are on, one entry
    /// per operation: a change seen on them meanwhile is this approver's
    /// own (the trail names them, not "someone", for a shorten).
    pub acting: Vec<RequestKey>,
    pub should_quit: bool,
    /// Why the approver's identity is unverified (approvals are refused).
    pub identity_note: Option<String>,
    /// Whether the one at the console may approve (false: a requester, who
    /// is shown as one and offered only what they may do).
    pub may_approve: bool,
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
    /// The user names each cluster's bindings name (for the cache key).
    users_named: HashMap<String, HashSet<String>>,
    /// Requests by requester, for the requester context in the detail
    /// pane without scanning every request.
    by_user: HashMap<String, UserIndex>,
    /// Ends of every live grant in `:ctx` (ignoring the filter), sorted:
    /// the expiring-soon count on each tick.
    live_ends: BTreeSet<(DateTime<Utc>, Id)>,
    /// Others' pending requests in `:ctx` by age: the oldest wait.
    pending_age: BTreeSet<(DateTime<Utc>, Id)>,
    /// Denials and revocations on record, by when (recent reasons).
    denials: BTreeSet<(DateTime<Utc>, Id)>,
    revocations: BTreeSet<(DateTime<Utc>, Id)>,
    /// The selected request's requester changed something: their context
    /// in the detail pane is recomputed (not the analysis).
    context_stale: bool,
    /// Which views became empty during the current batch of changes.
    emptied: [bool; 3],
    /// The current view's selected request when a batch began.
    selected_before: Option<RequestKey>,
    /// Whether History's cursor was on its top row when a batch began.
    history_at_top: bool,
    /// A request that left the current view while selected (withdrawn,
    /// decided elsewhere): the cursor is on another one now, so the next
    /// key that acts on the selection is held back and says so.
    pub selection_gone: Option<String>,
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
            entries: Store::default(),
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
            reason_cancelled: None,
            acting: Vec::new(),
            should_quit: false,
            identity_note: None,
            may_approve: true,
            requester_groups_verified: true,
            cluster_names: BTreeMap::new(),
            cluster_limits: BTreeMap::new(),
            backend_error: None,
            verdicts: HashMap::new(),
            policy: None,
            summary_cache: HashMap::new(),
            users_named: HashMap::new(),
            arrivals: super::arrivals::Arrivals::new(now),
            by_user: HashMap::new(),
            live_ends: BTreeSet::new(),
            pending_age: BTreeSet::new(),
            denials: BTreeSet::new(),
            revocations: BTreeSet::new(),
            context_stale: false,
            emptied: [false; 3],
            selected_before: None,
            history_at_top: false,
            selection_gone: None,
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

    pub fn list(&self, view: View) -> Rows<'_> {
        Rows::new(&self.lists[view.index()], &self.entries)
    }

    pub fn selected_key(&self) -> Option<&RequestKey> {
        let i = self.view.index();
        self.lists[i]
            .get(self.cursor[i])
            .map(|&id| self.entries.key(id))
    }

    pub fn selected(&self) -> Option<Cow<'_, Entry>> {
        let i = self.view.index();
        self.entries.by_id(*self.lists[i].get(self.cursor[i])?)
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
        let mut cache = std::mem::take(&mut self.summary_cache);
        let s = self.summary_with(&mut cache, req);
        self.summary_cache = cache;
        s
    }

    /// The risk summary of a request, through `cache` (one analysis per
    /// cluster, subject, role and namespaces).
    fn summary_with(
        &self,
        cache: &mut HashMap<SummaryKey, Summary>,
        req: &AccessRequest,
    ) -> Summary {
        let Some(inv) = self.inventories.get(&req.cluster) else {
            return Summary {
                worst: None,
                new_permissions: 0,
                asked: 0,
                error: Some(self.no_inventory().into()),
            };
        };
        let subject = self.subject_for(req);
        let user = self
            .users_named
            .get(&req.cluster)
            .is_none_or(|named| user_matters(named, &subject.user))
            .then(|| subject.user.clone());
        let key = (
            req.cluster.clone(),
            user,
            subject.groups.clone(),
            req.role.clone(),
            req.granted_namespaces().to_vec(),
        );
        if let Some(s) = cache.get(&key) {
            return s.clone();
        }
        if cache.len() >= SUMMARY_CACHE {
            cache.clear();
        }
        let s = match analyze(inv, GrantRequest::of(req, &subject)) {
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
        cache.insert(key, s.clone());
        s
    }

    /// Why a request can never be approved, if it cannot.
    fn invalid_for(&self, req: &AccessRequest, summary: &Summary) -> Option<String> {
        req.validate(self.limits_for(&req.cluster))
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
                // A role approvers may not hand out here: refused at `y`
                // anyway, so said up front.
                let limits = self.limits_for(&req.cluster);
                (req.phase() == Phase::Pending)
                    .then(|| {
                        limits
                            .check_grantable(&req.role, req.granted_namespaces())
                            .err()
                    })
                    .flatten()
            })
            .or_else(|| {
                let known = self.inventories.get(&req.cluster)?.namespaces.as_ref()?;
                let missing = req.namespaces.iter().find(|ns| !known.contains(*ns))?;
                (req.phase() == Phase::Pending).then(|| {
                    format!(
                        "namespace '{}' does not exist on {}",
                        inert(missing, 64),
                        inert(self.cluster_label(&req.cluster), 64)
                    )
                })
            })
    }

    /// Stores a request as the backend reported it, and moves it in the
    /// views and indexes (no view is re-sorted: see [`super::store`]).
    pub fn upsert(&mut self, req: AccessRequest) {
        let key = RequestKey::of(&req);
        let old_id = self.entries.id(&key);
        // Taken out (not copied): the new request takes its place below.
        let old = old_id.and_then(|id| self.entries.take(id));
        // Every change this console sees, whoever made it, is in its
        // trail (the server backend sends the server's own instead).
        if self.backend_kind != "http" {
            let (by, now) = (self.recorded_by(), self.now);
            let mine = self.acting.contains(&key).then(|| self.me_as_actor());
            self.trail.observe(old.as_ref(), &req, mine, by, now);
        }
        let summary = self.summary_for(&req);
        let invalid = self.invalid_for(&req, &summary);
        let listed = self.in_context(&key)
            && self
                .filter
                .matches_named(&req, summary.worst, self.cluster_label(&req.cluster));
        let new_meta = Meta::of(&req);
        let mut follow = None;
        if let Some(id) = old_id {
            let v = self.entries.meta(id).view;
            if v != new_meta.view {
                self.marks.remove(&key);
            } else if self.lists[v.index()].get(self.cursor[v.index()]) == Some(&id) {
                // The selection changed in place: the cursor follows it.
                follow = Some(v.index());
            }
            self.unindex(id, old.as_ref());
        }
        // The detail pane: this request's own analysis is stale; another
        // request of the same requester only changes its context.
        if let Some(d) = &self.detail {
            if d.key == key || d.extends.as_ref() == Some(&key) {
                self.detail = None;
            } else if d.requester == req.requester.user
                || old
                    .as_ref()
                    .is_some_and(|o| o.requester.user == d.requester)
            {
                self.context_stale = true;
            }
        }
        let facts = Facts::of(&req, &self.approver.user);
        let user = req.requester.user.clone();
        let id = self.entries.insert(Entry {
            req,
            summary,
            invalid,
        });
        self.index(id, &user, &facts, listed, follow);
    }

    /// Starts a batch of changes: each view's selected request, to give
    /// [`Self::keep_selection`] after it.
    pub fn begin_batch(&mut self) -> [Option<Id>; 3] {
        self.emptied = [false; 3];
        self.selected_before = self.selected_key().cloned();
        self.history_at_top = self.cursor[View::History.index()] == 0;
        self.selection()
    }

    /// Each view's selected request.
    fn selection(&self) -> [Option<Id>; 3] {
        [0, 1, 2].map(|i| self.lists[i].get(self.cursor[i]).copied())
    }

    /// After a batch of changes: a view that had no selection (it was
    /// empty) selects its first row, not the first row the batch brought
    /// (changes move the cursor with its row, one at a time).
    pub fn keep_selection(&mut self, before: [Option<Id>; 3]) {
        for (i, b) in before.iter().enumerate() {
            // Empty before or at some point of the batch: from the top.
            if b.is_none() || self.emptied[i] {
                self.cursor[i] = 0;
            }
        }
        self.emptied = [false; 3];
        // At the top of History (newest first), the cursor stays at the
        // top: the newest decisions come into view, not off the screen.
        if std::mem::take(&mut self.history_at_top) {
            self.cursor[View::History.index()] = 0;
        }
        if let Some(was) = self.selected_before.take() {
            // This console's own decision moving it on is no surprise; a
            // dialog on it closes with a notice of its own. The list is
            // searched only when the selection did change.
            let gone = || {
                let i = self.view.index();
                !self
                    .entries
                    .id(&was)
                    .is_some_and(|id| self.lists[i].contains(&id))
            };
            if self.selected_key() != Some(&was)
                && !self.acting.contains(&was)
                && matches!(self.mode, Mode::Normal)
                && gone()
            {
                self.selection_gone = Some(was.name);
            }
        }
    }

    /// Whether `:ctx` shows this request's cluster.
    fn in_context(&self, key: &RequestKey) -> bool {
        self.context.as_ref().is_none_or(|c| *c == key.cluster)
    }

    /// How `view` orders two of its rows: oldest ask first (Pending),
    /// soonest end first (Live grants), latest end first (History); by key
    /// when the times are equal.
    fn order(&self, view: View, a: Id, b: Id) -> Ordering {
        let (ma, mb) = (self.entries.meta(a), self.entries.meta(b));
        let (ka, kb) = (self.entries.key(a), self.entries.key(b));
        match view {
            View::History => (mb.at, kb).cmp(&(ma.at, ka)),
            _ => (ma.at, ka).cmp(&(mb.at, kb)),
        }
    }

    /// Where `id` goes in `list` (a view's ids in its order).
    fn place(&self, v: View, list: &[Id], id: Id) -> usize {
        list.partition_point(|&x| self.order(v, x, id) == Ordering::Less)
    }

    /// Puts `id` in its view's list (where its order says), keeping the
    /// selection on the same row.
    fn list_insert(&mut self, v: View, id: Id) -> usize {
        let i = v.index();
        let pos = self.place(v, &self.lists[i], id);
        let selected = self.cursor[i] < self.lists[i].len();
        self.lists[i].insert(pos, id);
        if selected && pos <= self.cursor[i] {
            self.cursor[i] += 1;
        }
        pos
    }

    /// Takes `id` out of its view's list (found by its order, so before
    /// its meta changes). The cursor stays on the same row, or on the row
    /// that took the place of a removed selection.
    fn list_remove(&mut self, v: View, id: Id) {
        let i = v.index();
        let pos = self.place(v, &self.lists[i], id);
        if self.lists[i].get(pos) != Some(&id) {
            return;
        }
        self.lists[i].remove(pos);
        if self.lists[i].is_empty() {
            self.emptied[i] = true;
        }
        if pos < self.cursor[i] {
            self.cursor[i] -= 1;
        }
        self.cursor[i] = self.cursor[i].min(self.lists[i].len().saturating_sub(1));
    }

    /// Adds a stored request to the views, counts and indexes.
    fn index(&mut self, id: Id, user: &str, f: &Facts, listed: bool, follow: Option<usize>) {
        let meta = self.entries.meta(id);
        if f.live_end.is_some() || f.ended.is_some() {
            self.by_user.entry(user.to_string()).or_default().add(id, f);
        }
        if let Some(at) = f.denied {
            self.denials.insert((at, id));
        }
        if let Some(at) = f.revoked {
            self.revocations.insert((at, id));
        }
        if !self.in_context(self.entries.key(id)) {
            return;
        }
        self.count(meta.view, 1);
        match meta.view {
            View::Pending if !f.mine => {
                self.pending_age.insert((meta.at, id));
            }
            // A grant without an end is not "expiring soon" (the reaper
            // ends it; the header does not count it).
            View::Grants if meta.at != DateTime::<Utc>::MIN_UTC => {
                self.live_ends.insert((meta.at, id));
            }
            _ => {}
        }
        self.recount_oldest();
        if listed {
            let pos = self.list_insert(meta.view, id);
            if follow == Some(meta.view.index()) {
                self.cursor[meta.view.index()] = pos;
            }
        }
    }

    /// Takes a stored request (as it was: `old`) out of the views, counts
    /// and indexes, before it changes or goes. Without `old` (a compact
    /// request that did not decode: it cannot happen with these types) the
    /// indexes by requester and decision are searched for its id instead.
    fn unindex(&mut self, id: Id, old: Option<&AccessRequest>) {
        let meta = self.entries.meta(id);
        match old {
            Some(old) => {
                let f = Facts::of(old, &self.approver.user);
                if let Some(u) = self.by_user.get_mut(&old.requester.user) {
                    u.remove(id, &f);
                    if u.is_empty() {
                        self.by_user.remove(&old.requester.user);
                    }
                }
                if let Some(at) = f.denied {
                    self.denials.remove(&(at, id));
                }
                if let Some(at) = f.revoked {
                    self.revocations.remove(&(at, id));
                }
            }
            None => {
                for u in self.by_user.values_mut() {
                    u.forget(id);
                }
                self.by_user.retain(|_, u| !u.is_empty());
                self.denials.retain(|(_, x)| *x != id);
                self.revocations.retain(|(_, x)| *x != id);
            }
        }
        if !self.in_context(self.entries.key(id)) {
            return;
        }
        self.count(meta.view, -1);
        self.pending_age.remove(&(meta.at, id));
        self.live_ends.remove(&(meta.at, id));
        self.recount_oldest();
        self.list_remove(meta.view, id);
    }

    fn count(&mut self, view: View, by: isize) {
        let n = match view {
            View::Pending => &mut self.counts.pending,
            View::Grants => &mut self.counts.live,
            View::History => &mut self.counts.history,
        };
        *n = n.saturating_add_signed(by);
    }

    fn recount_oldest(&mut self) {
        self.counts.oldest_pending = self.pending_age.first().map(|(at, _)| *at);
    }

    pub fn set_inventory(&mut self, cluster: String, inventory: Arc<Inventory>) {
        self.users_named
            .insert(cluster.clone(), users_named(&inventory));
        self.inventories.insert(cluster.clone(), inventory);
        self.summary_cache.retain(|k, _| k.0 != cluster);
        self.recheck(&cluster);
    }

    /// A cluster's limits (with its grantable roles), and its requests
    /// checked again against them.
    pub fn set_limits(&mut self, cluster: String, limits: ValidationLimits) {
        if self.cluster_limits.get(&cluster) == Some(&limits) {
            return;
        }
        self.cluster_limits.insert(cluster.clone(), limits);
        self.recheck(&cluster);
    }

    /// Every request of `cluster` summarised and checked again.
    fn recheck(&mut self, cluster: &str) {
        let ids: Vec<Id> = self
            .entries
            .ids()
            .filter(|&id| self.entries.key(id).cluster == cluster)
            .collect();
        let mut cache = std::mem::take(&mut self.summary_cache);
        for id in ids {
            let Some(req) = self.entries.req(id) else {
                continue;
            };
            let summary = self.summary_with(&mut cache, &req);
            let invalid = self.invalid_for(&req, &summary);
            drop(req);
            self.entries.set_checks(id, summary, invalid);
        }
        self.summary_cache = cache;
        // The risk filter reads the summaries just changed.
        if !self.filter.is_empty() {
            self.refresh_lists();
        }
        if self
            .detail
            .as_ref()
            .is_some_and(|d| d.key.cluster == cluster)
        {
            self.detail = None;
        }
    }

    /// Rebuilds the views and counts from every request (after the filter
    /// or `:ctx` changed), keeping each view's selection on the same
    /// request when it is still visible. A request kept compact is decoded
    /// only when a filter has to read it.
    pub fn refresh_lists(&mut self) {
        let selected = self.selection();
        let mut lists: [Vec<Id>; 3] = Default::default();
        let mut counts = Counts::default();
        let mut pending_age = BTreeSet::new();
        let mut live_ends = BTreeSet::new();
        for id in self.entries.ids() {
            let key = self.entries.key(id);
            if !self.in_context(key) {
                continue;
            }
            let meta = self.entries.meta(id);
            match meta.view {
                View::Pending => {
                    counts.pending += 1;
                    // Pending requests are never compact: no decoding.
                    if self
                        .entries
                        .req(id)
                        .is_some_and(|r| r.requester.user != self.approver.user)
                    {
                        pending_age.insert((meta.at, id));
                    }
                }
                View::Grants => {
                    counts.live += 1;
                    if meta.at != DateTime::<Utc>::MIN_UTC {
                        live_ends.insert((meta.at, id));
                    }
                }
                View::History => counts.history += 1,
            }
            let shown = self.filter.is_empty()
                || self
                    .entries
                    .passes(id, &self.filter, self.cluster_label(&key.cluster));
            if shown {
                lists[meta.view.index()].push(id);
            }
        }
        // In the order the store holds them (fast to read), then sorted.
        for v in View::ALL {
            lists[v.index()].sort_by(|&a, &b| self.order(v, a, b));
        }
        for v in View::ALL {
            let i = v.index();
            self.cursor[i] = match selected[i] {
                Some(id) => lists[i]
                    .iter()
                    .position(|&x| x == id)
                    .unwrap_or(self.cursor[i]),
                None => self.cursor[i],
            }
            .min(lists[i].len().saturating_sub(1));
        }
        self.lists = lists;
        let entries = &self.entries;
        self.marks.retain(|k| entries.contains_key(k));
        self.counts = counts;
        self.pending_age = pending_age;
        self.live_ends = live_ends;
        self.recount_oldest();
        self.recount_expiring();
    }

    /// Shows what `filter` passes. Typing narrows: when every row the new
    /// filter passes the old one passed too ([`Filter::narrows`]), only the
    /// rows shown are filtered, not every request.
    pub fn set_filter(&mut self, filter: Filter) {
        let narrows = filter.narrows(&self.filter);
        self.filter = filter;
        if narrows {
            self.narrow_lists();
        } else {
            self.refresh_lists();
        }
    }

    /// After the filter narrowed: filters the rows shown (counts do not
    /// depend on the filter), keeping each view's selection when it is
    /// still shown.
    fn narrow_lists(&mut self) {
        // Read in the store's order (its memory order: a filter pass reads
        // every shown request's bytes), not in each view's.
        let mut keep = vec![false; self.entries.id_bound()];
        for &id in self.lists.iter().flatten() {
            keep[id as usize] = true;
        }
        for (id, k) in keep.iter_mut().enumerate() {
            if *k {
                let id = id as Id;
                let cluster = &self.entries.key(id).cluster;
                *k = self
                    .entries
                    .passes(id, &self.filter, self.cluster_label(cluster));
            }
        }
        let selected = self.selection();
        for v in View::ALL {
            let i = v.index();
            self.lists[i].retain(|&id| keep[id as usize]);
            let list = &self.lists[i];
            self.cursor[i] = selected[i]
                .and_then(|id| list.iter().position(|&x| x == id))
                .unwrap_or(self.cursor[i])
                .min(list.len().saturating_sub(1));
        }
    }

    pub fn recount_expiring(&mut self) {
        let soon = self.now + self.config.expiring_soon;
        self.counts.expiring = self.live_ends.range(..=(soon, Id::MAX)).count();
    }

    /// Computes the full analysis for the selection when it changed, and
    /// its requester's context when their requests changed.
    pub fn ensure_detail(&mut self) {
        let Some(key) = self.selected_key().cloned() else {
            self.detail = None;
            return;
        };
        if self.detail.as_ref().is_some_and(|d| d.key == key) {
            if std::mem::take(&mut self.context_stale) {
                self.refresh_context();
            }
            return;
        }
        self.context_stale = false;
        let Some(entry) = self.entries.get(&key).map(Cow::into_owned) else {
            self.detail = None;
            return;
        };
        let requester = entry.req.requester.user.clone();
        let analysis = match self.inventories.get(&key.cluster) {
            Some(inv) => analyze(
                inv,
                GrantRequest::of(&entry.req, &self.subject_for(&entry.req)),
            )
            .map(Arc::new)
            .map_err(|e| e.to_string()),
            None => Err(self.no_inventory().into()),
        };
        let verdict =
            self.verdicts
                .get(&key)
                .map(|d| (d.clone(), false))
                .or_else(|| {
                    let policy = self.policy.as_ref()?;
                    let labels: BTreeMap<String, String> = if self.is_production(&key.cluster) {
                        BTreeMap::from([("env".to_string(), "prod".to_string())])
                    } else {
                        BTreeMap::new()
                    };
                    let live_of = entry.req.extends.as_ref().and_then(|of| {
                        self.entries
                            .get(&RequestKey {
                                cluster: key.cluster.clone(),
                                name: of.clone(),
                            })
                            .and_then(|live| live.req.status.granted_at)
                    });
                    let extension =
                        entry.req.extends.as_ref().zip(live_of).map(|(of, at)| {
                            (of.as_str(), (self.now - at).num_seconds().max(0) as u64)
                        });
                    let input = crate::policy::policy_input(
                        &entry.req,
                        analysis.as_ref().ok().map(|a| a.as_ref()),
                        &labels,
                        self.now,
                        extension,
                    );
                    policy.evaluate(&input).ok().map(|d| (Arc::new(d), true))
                });
        let claimed = match (self.inventories.get(&key.cluster), &analysis) {
            (Some(inv), Ok(unclaimed))
                if !self.requester_groups_verified && !entry.req.requester.groups.is_empty() =>
            {
                let if_true = analyze(inv, GrantRequest::of(&entry.req, &entry.req.requester))
                    .map(|a| a.new.len())
                    .unwrap_or(unclaimed.new.len());
                Some((
                    entry.req.requester.groups.clone(),
                    unclaimed.new.len().saturating_sub(if_true),
                ))
            }
            _ => None,
        };
        let diff = analysis.as_ref().map(|a| group_diff(a)).unwrap_or_default();
        let flags = match &analysis {
            Ok(a) => super::flags::flags(self, &entry.req, a),
            Err(_) => super::flags::flags_without_diff(self, &entry.req),
        };
        let key_cluster = key.cluster.clone();
        self.detail = Some(Detail {
            key,
            requester,
            analysis,
            claimed,
            verdict,
            diff,
            live: Vec::new(),
            live_total: 0,
            past: Vec::new(),
            own_flags: flags.len(),
            flags,
            extends: entry.req.extends.as_ref().map(|of| RequestKey {
                cluster: key_cluster.clone(),
                name: of.clone(),
            }),
        });
        self.refresh_context();
    }

    /// The requester's context in the detail pane: their other live grants,
    /// their latest ended requests, a recent denial. Read from the index by
    /// requester: a few entries, however many requests they have.
    fn refresh_context(&mut self) {
        let Some(d) = self.detail.as_ref() else {
            return;
        };
        let Some(id) = self.entries.id(&d.key) else {
            return;
        };
        let (mut live, mut live_total, mut past) = (Vec::new(), 0, Vec::new());
        if let Some(u) = self.by_user.get(&d.requester) {
            let others = u.live.iter().filter(|(_, x)| *x != id);
            live_total = u.live.len() - usize::from(u.live.iter().any(|(_, x)| *x == id));
            live = others
                .take(CONTEXT_SHOWN)
                .map(|(_, x)| self.entries.key(*x).clone())
                .collect();
            past = u
                .ended
                .iter()
                .filter(|(_, x)| *x != id)
                .take(PAST_SHOWN)
                .map(|(_, x)| self.entries.key(*x).clone())
                .collect();
        }
        let denied = match self.entries.req(id) {
            Some(req) if req.phase() == Phase::Pending => super::flags::denied_recently(self, &req),
            _ => Vec::new(),
        };
        if let Some(d) = self.detail.as_mut() {
            d.live = live;
            d.live_total = live_total;
            d.past = past;
            d.flags.truncate(d.own_flags);
            d.flags.extend(denied);
        }
    }

    /// How far the selection's detail pane is scrolled.
    pub fn detail_scroll(&self) -> u16 {
        self.selected_key()
            .and_then(|k| self.scrolls.get(k))
            .copied()
            .unwrap_or(0)
    }

    /// The requester's denials (other than `except`) decided since `since`:
    /// how many, and the latest.
    pub fn denials_of(
        &self,
        user: &str,
        except: &RequestKey,
        since: DateTime<Utc>,
    ) -> (usize, Option<Cow<'_, AccessRequest>>) {
        let Some(u) = self.by_user.get(user) else {
            return (0, None);
        };
        let except = self.entries.id(except);
        let recent: Vec<Id> = u
            .denied
            .range((since, 0)..)
            .map(|(_, id)| *id)
            .filter(|id| Some(*id) != except)
            .collect();
        let last = recent.last().and_then(|id| self.entries.req(*id));
        (recent.len(), last)
    }

    /// Denials (newest first) and revocations (newest first) on record,
    /// for the recent reasons offered in a dialog.
    pub fn decisions_on_record(
        &self,
        kind: BulkKind,
    ) -> impl Iterator<Item = Cow<'_, AccessRequest>> {
        let set = match kind {
            BulkKind::Deny => &self.denials,
            BulkKind::Revoke => &self.revocations,
        };
        set.iter().rev().filter_map(|(_, id)| self.entries.req(*id))
    }

    pub fn remove(&mut self, key: &RequestKey) {
        self.scrolls.remove(key);
        if let Some(id) = self.entries.id(key) {
            let old = self.entries.take(id);
            self.unindex(id, old.as_ref());
            if let Some(old) = old {
                if let Some(d) = &self.detail {
                    if d.key == *key || d.extends.as_ref() == Some(key) {
                        self.detail = None;
                    } else if d.requester == old.requester.user {
                        self.context_stale = true;
                    }
                }
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
        // Unknown is not refused here: the backend still refuses.
        self.may_approve = info.may_approve.unwrap_or(true);
        self.cluster_names = info.cluster_names.clone();
        self.requester_groups_verified = info.requester_groups_verified;
        self
    }

    /// How many operations this console has in flight.
    pub fn in_flight(&self) -> usize {
        self.acting.len()
    }

    /// This console's approver as the trail records them.
    pub fn me_as_actor(&self) -> crate::audit::Actor {
        crate::audit::Actor {
            user: self.approver.user.clone(),
            groups: self.approver.groups.clone(),
            verified_by: self.recorded_by().into(),
        }
    }

    /// Why a cluster's diff is unavailable: a requester can never read the
    /// RBAC it is computed from; an approver's console has not yet.
    pub fn no_inventory(&self) -> &'static str {
        if self.may_approve {
            "no RBAC inventory for this cluster yet"
        } else {
            "unavailable to a requester: the diff needs the cluster's RBAC, which only approvers may read"
        }
    }

    /// What the one at the console is here: "approver" or "requester".
    pub fn role_word(&self) -> &'static str {
        if self.may_approve {
            "approver"
        } else {
            "requester"
        }
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
