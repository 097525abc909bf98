//! The dialogs: what opens them, what each key does in them, and the
//! effects a confirmed one asks for. Approve (as asked, with quick picks,
//! or changed), deny and revoke with a reason (recent ones offered), the
//! bulk confirmation, shorten, and the notice a closed dialog leaves.

use chrono::TimeDelta;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui_textarea::TextArea;

use super::{feed, line_input, readonly_refusal, text_of, Effect};
use crate::backend::{ApproveSpec, Op, RequestKey, Seen};
use crate::console::state::app::QUICK_PICKS;
use crate::console::state::app::{
    AppState, ApproveForm, BulkKind, Confirm, FlashLevel, Mode, PendingOp, ReasonForm, ShortenForm,
};
use crate::console::state::batch::Batch;
use crate::console::state::{recent, when};
use crate::domain::duration;
use crate::domain::rbac::engine::{analyze, GrantRequest};
use crate::domain::request::Approval;
use crate::domain::sanitize::inert;
use crate::domain::{AccessRequest, Phase, Severity};

/// A one-line input holding `text`, all of it selected: typing replaces it.
pub(crate) fn selected_input(placeholder: &str, text: &str) -> TextArea<'static> {
    let mut t = line_input(placeholder, text);
    if !text.is_empty() {
        t.select_all();
    }
    t
}

/// Checks that the selection may be approved by this approver; flashes why not.
fn approvable(state: &mut AppState) -> Option<AccessRequest> {
    if readonly_refusal(state, "approving") || super::decision_refusal(state, "approving") {
        return None;
    }
    // The server's policy is enforced: say why before the round trip. A
    // console's own (advisory) verdict is shown, not enforced.
    let verdict = state.verdict_of(&state.selected_key().cloned());
    if let Some((d, false)) = verdict.as_ref().filter(|(d, _)| !d.allowed()) {
        let text = format!(
            "the policy refuses this request: {}",
            inert(&d.deny.join("; "), 300)
        );
        state.flash(FlashLevel::Error, text);
        return None;
    }
    if let Some(Err(why)) = verdict
        .filter(|(_, advisory)| !advisory)
        .map(|(d, _)| d.may_approve(&state.approver))
    {
        let text = format!(
            "the policy does not let you approve this: {}",
            inert(&why, 300)
        );
        state.flash(FlashLevel::Error, text);
        return None;
    }
    if let Some(note) = &state.identity_note {
        let text = format!(
            "approvals are refused: the apiserver could not verify who you are ({})",
            inert(note, 200)
        );
        state.flash(FlashLevel::Error, text);
        return None;
    }
    if !state.marks.is_empty() {
        state.flash(
            FlashLevel::Error,
            "approve one request at a time: bulk approve is never possible (marks are for deny)",
        );
        return None;
    }
    let entry = state.selected()?.clone();
    if let Some(why) = &entry.invalid {
        state.flash(
            FlashLevel::Error,
            format!(
                "this request is invalid and can only be denied: {}",
                inert(why, 200)
            ),
        );
        return None;
    }
    let probe = Approval {
        by: state.approver.user.clone(),
        at: state.now,
        duration: entry.req.duration,
        namespaces: entry.req.namespaces.clone(),
        reason: None,
    };
    if let Err(e) = entry
        .req
        .check_approval(&probe, state.limits_for(&entry.req.cluster))
    {
        state.flash(
            FlashLevel::Error,
            format!("cannot approve: {}", inert(&e.to_string(), 200)),
        );
        return None;
    }
    Some(entry.into_owned().req)
}

pub(crate) fn start_approve(state: &mut AppState, with_changes: bool) {
    let Some(req) = approvable(state) else { return };
    if with_changes {
        state.mode = Mode::Approve(approve_form(&req, None));
    } else {
        let spec = ApproveSpec {
            duration: req.duration,
            namespaces: req.namespaces.clone(),
            reason: None,
        };
        state.mode = Mode::Confirm(approve_confirm(state, &req, spec));
    }
}

fn approve_form(req: &AccessRequest, previous: Option<&ApproveSpec>) -> ApproveForm {
    let dur = previous.map_or(req.duration, |s| s.duration);
    ApproveForm {
        key: RequestKey::of(req),
        duration: selected_input("e.g. 15m", &duration::format_exact(dur)),
        namespaces: req
            .namespaces
            .iter()
            .map(|ns| {
                (
                    ns.clone(),
                    previous.is_none_or(|s| s.namespaces.contains(ns)),
                )
            })
            .collect(),
        focus: 0,
        error: None,
    }
}

/// The dialog that states exactly what will be granted.
///
/// Under the server's policy, the grant is what the server will do: never
/// longer than the policy's maximum, and not yet a grant while more
/// approvals are needed.
pub(crate) fn approve_confirm(
    state: &AppState,
    req: &AccessRequest,
    mut spec: ApproveSpec,
) -> Confirm {
    let verdict = state
        .verdict_of(&Some(RequestKey::of(req)))
        .filter(|(_, advisory)| !advisory)
        .map(|(d, _)| d);
    let capped = verdict
        .as_ref()
        .and_then(|d| d.max_duration)
        .filter(|max| *max < spec.duration);
    if let Some(max) = capped {
        spec.duration = max;
    }
    let approvals = req.approvals().len();
    let more_needed = verdict
        .as_ref()
        .map(|d| d.approvals_required.saturating_sub(approvals + 1))
        .unwrap_or(0);
    let mut lines = grant_lines(state, req, &spec, more_needed);
    if let Some(max) = capped {
        lines.push(format!(
            "Policy   at most {} here: the grant is shortened to it",
            duration::format(max)
        ));
    }
    if more_needed > 0 {
        lines.push(format!(
            "Approvals yours makes {} of {}: nothing is granted until {more_needed} more approve",
            approvals + 1,
            approvals + 1 + more_needed
        ));
    }
    let narrowed = spec.duration < req.duration || spec.namespaces.len() < req.namespaces.len();
    if narrowed {
        let asked_ns = if req.namespaces.is_empty() {
            "cluster-wide".into()
        } else {
            req.namespaces.join(", ")
        };
        lines.push(format!(
            "Asked    {} in {asked_ns}",
            duration::format_exact(req.duration)
        ));
    }
    diff_summary_lines(state, req, &spec, &mut lines);
    // The warnings the detail showed, repeated where the decision is made.
    if let Some(d) = state
        .detail
        .as_ref()
        .filter(|d| d.key == RequestKey::of(req))
    {
        lines.extend(d.flags.iter().map(|f| format!("⚠ {f}")));
    }
    if req.credentials == crate::domain::Credentials::Token {
        lines.push("Creds    a per-grant ServiceAccount; tokens end with the grant".into());
    }
    Confirm {
        title: format!("Approve {}?", inert(&req.name, 64)),
        lines,
        op: PendingOp::Approve {
            key: RequestKey::of(req),
            seen: Seen::of(req),
            spec,
        },
        can_edit: true,
        note: None,
    }
}

/// The grant itself: who, what role, where, on which cluster, for how long.
fn grant_lines(
    state: &AppState,
    req: &AccessRequest,
    spec: &ApproveSpec,
    more_needed: usize,
) -> Vec<String> {
    let who = inert(&req.requester.user, 64);
    let groups: Vec<String> = req
        .requester
        .groups
        .iter()
        .map(|g| inert(g, 64).into_owned())
        .collect();
    let prod = if state.is_production(&req.cluster) {
        "  [PROD]"
    } else {
        ""
    };
    let scope = grant_scope(&spec.namespaces);
    let until = state.now + TimeDelta::from_std(spec.duration).unwrap_or(TimeDelta::MAX);
    let until = when::clock_utc(state.config.zone, state.now, until);
    vec![
        format!(
            "Grant    {who} (groups: {})",
            if groups.is_empty() {
                "none".into()
            } else {
                groups.join(", ")
            }
        ),
        format!("Role     {} {}", req.role.kind, inert(&req.role.name, 64)),
        format!("Where    {scope}"),
        format!(
            "Cluster  {}{prod}",
            inert(state.cluster_label(&req.cluster), 64)
        ),
        if more_needed == 0 {
            format!(
                "For      {} — until {until}; the clock starts now",
                duration::format_exact(spec.duration),
            )
        } else {
            format!(
                "For      at most {}; the clock starts at the last approval",
                duration::format_exact(spec.duration),
            )
        },
    ]
}

/// Where the grant applies: the namespaces, or cluster-wide.
fn grant_scope(namespaces: &[String]) -> String {
    if namespaces.is_empty() {
        "cluster-wide (every namespace and cluster-scoped resources)".to_string()
    } else {
        format!(
            "namespace{} {}",
            if namespaces.len() == 1 { "" } else { "s" },
            namespaces.join(", ")
        )
    }
}

/// What the grant adds over what they hold, or why the diff is unavailable.
fn diff_summary_lines(
    state: &AppState,
    req: &AccessRequest,
    spec: &ApproveSpec,
    lines: &mut Vec<String>,
) {
    let subject = &req.requester;
    match state.inventories.get(&req.cluster).map(|inv| {
        analyze(
            inv,
            GrantRequest {
                subject,
                role: &req.role,
                namespaces: &spec.namespaces,
            },
        )
    }) {
        Some(Ok(a)) => {
            let crit = a.count_at_least(Severity::Critical);
            let high = a.count_at_least(Severity::High) - crit;
            lines.push(format!(
                "Adds     {} new permission{}: {crit} critical, {high} high ({} already held)",
                a.new.len(),
                if a.new.len() == 1 { "" } else { "s" },
                a.already.len()
            ));
            if let Some(worst) = a.new.iter().rev().max_by_key(|p| p.risk.severity) {
                if worst.risk.severity >= Severity::High {
                    lines.push(format!(
                        "Worst    {} {}: {}",
                        worst.permission.verb,
                        worst.permission.resource_label(),
                        worst.risk.why
                    ));
                }
            }
            if a.aggregated {
                lines.push("Note     aggregated role: can grow when new CRDs install".into());
            }
        }
        Some(Err(e)) => lines.push(format!("Diff     unavailable: {e}")),
        None => lines.push(format!("Diff     unavailable: {}", state.no_inventory())),
    }
}

/// A deny or revoke reason form for `keys`, with `text` in it.
pub(crate) fn reason_form(
    state: &AppState,
    kind: BulkKind,
    keys: Vec<RequestKey>,
    text: &str,
) -> ReasonForm {
    let placeholder = match kind {
        BulkKind::Deny => "why is this denied? (required; the requester sees it)",
        BulkKind::Revoke => "why is this grant ended early? (required)",
    };
    let mut input = line_input(placeholder, text);
    input.set_placeholder_text(placeholder);
    ReasonForm {
        kind,
        keys,
        input,
        error: None,
        recent: recent::reasons(state, kind),
        recall: None,
        draft: String::new(),
    }
}

pub(crate) fn start_bulk(state: &mut AppState, kind: BulkKind) {
    let what = match kind {
        BulkKind::Deny => "denying",
        BulkKind::Revoke => "revoking",
    };
    if readonly_refusal(state, what) || super::decision_refusal(state, what) {
        return;
    }
    let wanted = kind.phase();
    let keys: Vec<RequestKey> = if state.marks.is_empty() {
        state.selected_key().cloned().into_iter().collect()
    } else {
        state.marks.iter().cloned().collect()
    };
    let (own, keys): (Vec<RequestKey>, Vec<RequestKey>) = keys
        .into_iter()
        .filter(|k| {
            state
                .entries
                .get(k)
                .is_some_and(|e| e.req.phase() == wanted)
        })
        .partition(|k| kind == BulkKind::Deny && super::is_own(state, k));
    if keys.is_empty() {
        let why = if own.is_empty() {
            format!("nothing to {}", kind.verb().to_lowercase())
        } else {
            super::OWN_REQUEST.into()
        };
        state.flash(FlashLevel::Error, why);
        return;
    }
    state.mode = Mode::Reason(reason_form(state, kind, keys, ""));
}

/// `R` on your own live grant: end it now, after a `y` ("I'm done").
/// Only the requester releases; anyone else's grant is revoked (`r`),
/// with a reason the requester reads.
pub(crate) fn start_release(state: &mut AppState) {
    if readonly_refusal(state, "releasing") || super::unreachable_refusal(state, "releasing") {
        return;
    }
    let Some(entry) = state.selected() else {
        return;
    };
    if entry.req.phase() != Phase::Active {
        state.flash(FlashLevel::Error, "only a live grant can be released");
        return;
    }
    if entry.req.requester.user != state.approver.user {
        state.flash(
            FlashLevel::Error,
            format!(
                "only {} can release this grant: r revokes it, with a reason",
                inert(&entry.req.requester.user, 64)
            ),
        );
        return;
    }
    let req = &entry.req;
    let key = RequestKey::of(req);
    let lines = vec![
        format!(
            "End your grant {} now: {} {} {} on {} ({} left).",
            inert(&req.name, 64),
            req.role.kind,
            inert(&req.role.name, 64),
            crate::console::state::verdict::scope_words(req.granted_namespaces()),
            inert(&req.cluster, 64),
            duration::format(req.remaining(state.now))
        ),
        "Recorded as released by you; to get access again you ask again.".into(),
    ];
    state.mode = Mode::Confirm(Confirm {
        title: "Release your grant".into(),
        lines,
        op: PendingOp::Release { key },
        can_edit: false,
        note: None,
    });
}

pub(crate) fn start_shorten(state: &mut AppState) {
    if readonly_refusal(state, "shortening") || super::decision_refusal(state, "shortening") {
        return;
    }
    let Some(entry) = state.selected() else {
        return;
    };
    if entry.req.phase() != Phase::Active {
        state.flash(FlashLevel::Error, "only a live grant can be shortened");
        return;
    }
    let key = RequestKey::of(&entry.req);
    // What is left, to the minute: the value to type over.
    let left = entry.req.remaining(state.now).as_secs() / 60 * 60;
    let shown = if left == 0 {
        String::new()
    } else {
        duration::format(std::time::Duration::from_secs(left))
    };
    state.mode = Mode::Shorten(ShortenForm {
        key,
        input: selected_input("new remaining time, e.g. 10m", &shown),
        error: None,
    });
}

/// Every name, up to 20, then how many more.
fn names(keys: &[RequestKey]) -> String {
    const SHOWN: usize = 20;
    let shown: Vec<String> = keys
        .iter()
        .take(SHOWN)
        .map(|k| inert(&k.name, 64).into_owned())
        .collect();
    let more = keys.len().saturating_sub(SHOWN);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// The one confirmation a bulk deny or revoke asks for.
pub(crate) fn bulk_confirm(kind: BulkKind, keys: Vec<RequestKey>, reason: String) -> Confirm {
    let n = keys.len();
    let noun = match (kind, n) {
        (BulkKind::Deny, 1) => "request",
        (BulkKind::Deny, _) => "requests",
        (BulkKind::Revoke, 1) => "live grant",
        (BulkKind::Revoke, _) => "live grants",
    };
    let lines = vec![
        format!("{} {n} {noun}: {}", kind.verb(), names(&keys)),
        format!("Reason   {}", inert(&reason, 1024)),
    ];
    let op = PendingOp::Bulk { kind, keys, reason };
    Confirm {
        title: format!("{} {n} {noun}?", kind.verb()),
        lines,
        op,
        can_edit: true,
        note: None,
    }
}

/// Puts recent reason `i` in the input (or the draft back, for None).
fn recall(form: &mut ReasonForm, to: Option<usize>) {
    if form.recall.is_none() {
        form.draft = text_of(&form.input);
    }
    form.recall = to;
    let text = match to {
        Some(i) => form.recent[i].clone(),
        None => form.draft.clone(),
    };
    let placeholder = form.input.placeholder_text().to_string();
    form.input = line_input(&placeholder, &text);
    form.error = None;
}

pub(crate) fn on_reason_key(
    state: &mut AppState,
    mut form: ReasonForm,
    key: KeyEvent,
) -> Vec<Effect> {
    // What was typed before recalling narrows what is recalled.
    let typed = match form.recall {
        None => text_of(&form.input),
        Some(_) => form.draft.clone(),
    };
    let offered = recent::starting_with(&form.recent, &typed);
    let at = form
        .recall
        .and_then(|r| offered.iter().position(|&i| i == r));
    match key.code {
        KeyCode::Esc => {
            // Kept, and offered first next time: it was meant for something.
            let text = typed.trim();
            if !text.is_empty() {
                state.reason_cancelled = Some((form.kind, text.to_string()));
            }
            return Vec::new();
        }
        KeyCode::Tab | KeyCode::Up if offered.is_empty() => {
            form.error = Some(if typed.trim().is_empty() {
                "no recent reasons yet".into()
            } else {
                format!(
                    "no recent reason starts with \"{}\"",
                    inert(typed.trim(), 40)
                )
            });
        }
        KeyCode::Tab | KeyCode::Up => {
            let last = offered.len() - 1;
            let next = match at {
                None => 0,
                Some(i) if key.code == KeyCode::Tab && i == last => 0,
                Some(i) => (i + 1).min(last),
            };
            recall(&mut form, Some(offered[next]));
        }
        KeyCode::BackTab | KeyCode::Down => match at {
            Some(0) | None => recall(&mut form, None),
            Some(i) => recall(&mut form, Some(offered[i - 1])),
        },
        KeyCode::Enter => {
            let reason = text_of(&form.input).trim().to_string();
            if reason.is_empty() {
                form.error = Some("a reason is required".into());
                state.mode = Mode::Reason(form);
                return Vec::new();
            }
            if reason.chars().count() > state.config.limits.max_reason_chars {
                form.error = Some(format!(
                    "at most {} characters",
                    state.config.limits.max_reason_chars
                ));
                state.mode = Mode::Reason(form);
                return Vec::new();
            }
            if form.keys.len() > 1 {
                state.mode = Mode::Confirm(bulk_confirm(form.kind, form.keys, reason));
                return Vec::new();
            }
            let op = PendingOp::Bulk {
                kind: form.kind,
                keys: form.keys,
                reason,
            };
            return dispatch(state, op);
        }
        _ => {
            feed(&mut form.input, key);
            form.error = None;
        }
    }
    state.mode = Mode::Reason(form);
    Vec::new()
}

pub(crate) fn on_approve_form_key(
    state: &mut AppState,
    mut form: ApproveForm,
    key: KeyEvent,
) -> Vec<Effect> {
    let rows = form.namespaces.len();
    match key.code {
        KeyCode::Esc => return Vec::new(),
        KeyCode::Tab | KeyCode::Down => form.focus = (form.focus + 1) % (rows + 1),
        KeyCode::BackTab | KeyCode::Up => form.focus = (form.focus + rows) % (rows + 1),
        KeyCode::Char(' ') if form.focus > 0 => {
            if let Some(row) = form.namespaces.get_mut(form.focus - 1) {
                row.1 = !row.1;
            }
        }
        KeyCode::Enter => {
            let Some(req) = state.entries.get(&form.key).map(|e| e.req.clone()) else {
                state.flash(FlashLevel::Error, "the request is gone");
                return Vec::new();
            };
            let spec = match duration::parse(&text_of(&form.duration)) {
                Ok(d) => ApproveSpec {
                    duration: d,
                    namespaces: form
                        .namespaces
                        .iter()
                        .filter(|(_, keep)| *keep)
                        .map(|(ns, _)| ns.clone())
                        .collect(),
                    reason: None,
                },
                Err(e) => {
                    form.error = Some(e.to_string());
                    state.mode = Mode::Approve(form);
                    return Vec::new();
                }
            };
            if let Err(e) = check(state, &req, &spec) {
                form.error = Some(e);
                state.mode = Mode::Approve(form);
                return Vec::new();
            }
            state.mode = Mode::Confirm(approve_confirm(state, &req, spec));
            return Vec::new();
        }
        _ if form.focus == 0 => {
            feed(&mut form.duration, key);
            form.error = None;
        }
        _ => {}
    }
    state.mode = Mode::Approve(form);
    Vec::new()
}

/// Whether this approver may grant `spec` on `req` now.
fn check(state: &AppState, req: &AccessRequest, spec: &ApproveSpec) -> Result<(), String> {
    let probe = Approval {
        by: state.approver.user.clone(),
        at: state.now,
        duration: spec.duration,
        namespaces: spec.namespaces.clone(),
        reason: None,
    };
    req.check_approval(&probe, state.limits_for(&req.cluster))
        .map_err(|e| e.to_string())
}

pub(crate) fn on_shorten_key(
    state: &mut AppState,
    mut form: ShortenForm,
    key: KeyEvent,
) -> Vec<Effect> {
    match key.code {
        KeyCode::Esc => Vec::new(),
        KeyCode::Enter => {
            let Some(req) = state.entries.get(&form.key).map(|e| e.req.clone()) else {
                state.flash(FlashLevel::Error, "the grant is gone");
                return Vec::new();
            };
            let result = duration::parse(&text_of(&form.input))
                .map_err(|e| e.to_string())
                .and_then(|d| {
                    let new_end = state.now + TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX);
                    let mut probe = req.clone();
                    probe
                        .shorten(new_end, state.now)
                        .map(|_| new_end)
                        .map_err(|e| e.to_string())
                });
            match result {
                Ok(new_end) => {
                    vec![Effect::Apply {
                        key: form.key,
                        seen: Seen::of(&req),
                        op: Op::Shorten { new_end },
                    }]
                }
                Err(e) => {
                    form.error = Some(e);
                    state.mode = Mode::Shorten(form);
                    Vec::new()
                }
            }
        }
        _ => {
            feed(&mut form.input, key);
            form.error = None;
            state.mode = Mode::Shorten(form);
            Vec::new()
        }
    }
}

/// `1`/`2`/`3` in the approve dialog: the same grant for 15m, 30m or 1h,
/// never longer than asked.
fn quick_pick(state: &AppState, confirm: &mut Confirm, secs: u64, pressed: char) {
    let PendingOp::Approve { key, spec, .. } = &confirm.op else {
        return;
    };
    let Some(req) = state.entries.get(key).map(|e| e.req.clone()) else {
        return;
    };
    let d = std::time::Duration::from_secs(secs);
    if d > req.duration {
        confirm.note = Some(format!(
            "{pressed} = {} is longer than the {} asked: a grant is never longer",
            duration::format(d),
            duration::format(req.duration)
        ));
        return;
    }
    let spec = ApproveSpec {
        duration: d,
        ..spec.clone()
    };
    match check(state, &req, &spec) {
        Ok(()) => *confirm = approve_confirm(state, &req, spec),
        Err(e) => confirm.note = Some(e),
    }
}

pub(crate) fn on_confirm_key(
    state: &mut AppState,
    mut confirm: Confirm,
    key: KeyEvent,
) -> Vec<Effect> {
    match key.code {
        KeyCode::Char('y') | KeyCode::Char('Y') => return dispatch(state, confirm.op),
        KeyCode::Char('e') if confirm.can_edit => {
            match &confirm.op {
                PendingOp::Approve { key, spec, .. } => {
                    if let Some(e) = state.entries.get(key) {
                        state.mode = Mode::Approve(approve_form(&e.req, Some(spec)));
                    }
                }
                PendingOp::Bulk { kind, keys, reason } => {
                    let form = reason_form(state, *kind, keys.clone(), reason);
                    state.mode = Mode::Reason(form);
                }
                PendingOp::Release { .. } => {}
            }
            return Vec::new();
        }
        KeyCode::Char('n') | KeyCode::Esc | KeyCode::Char('q') => {
            if let PendingOp::Bulk { kind, reason, .. } = confirm.op {
                state.reason_cancelled = Some((kind, reason));
            }
            state.flash(FlashLevel::Info, "cancelled: nothing was changed");
            return Vec::new();
        }
        KeyCode::Char(c) if matches!(confirm.op, PendingOp::Approve { .. }) => {
            if let Some((_, secs)) = QUICK_PICKS.iter().find(|(k, _)| *k == c) {
                quick_pick(state, &mut confirm, *secs, c);
            }
        }
        _ => {}
    }
    state.mode = Mode::Confirm(confirm);
    Vec::new()
}

/// Any key but ctrl-c (handled before) acknowledges with esc or enter; the
/// rest are swallowed, so keys typed on never reach the list.
pub(crate) fn on_notice_key(state: &mut AppState, mut mode: Mode, key: KeyEvent) -> Vec<Effect> {
    if matches!(key.code, KeyCode::Esc | KeyCode::Enter) {
        return Vec::new();
    }
    if let Mode::Notice { ignored, .. } = &mut mode {
        // Shown in the notice: keys held here are seen to go nowhere.
        if ignored.chars().count() < 24 {
            if !ignored.is_empty() {
                ignored.push(' ');
            }
            ignored.push_str(&key_name(&key));
        }
    }
    state.mode = mode;
    Vec::new()
}

/// A key as the notice shows it was held: `a`, `space`, `ctrl-a`.
fn key_name(key: &KeyEvent) -> String {
    let base = match key.code {
        KeyCode::Char(' ') => "space".to_string(),
        KeyCode::Char(c) => c.to_string(),
        other => format!("{other:?}").to_lowercase(),
    };
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        format!("ctrl-{base}")
    } else {
        base
    }
}

/// What the approver has of `key` now (a bulk deny or revoke names each
/// request as the list shows it when confirmed).
fn seen_now(state: &AppState, key: &RequestKey) -> Seen {
    state
        .entries
        .get(key)
        .map(|e| Seen::of(&e.req))
        .unwrap_or_default()
}

/// Sends a confirmed operation: one effect per request, a bulk one said
/// once when all are back; the reason is remembered for next time.
pub(crate) fn dispatch(state: &mut AppState, op: PendingOp) -> Vec<Effect> {
    let effects: Vec<Effect> = match op {
        PendingOp::Approve { key, seen, spec } => vec![Effect::Apply {
            key,
            seen,
            op: Op::Approve(spec),
        }],
        PendingOp::Release { key } => vec![Effect::Apply {
            key,
            seen: Seen::default(),
            op: Op::Release,
        }],
        PendingOp::Bulk { kind, keys, reason } => {
            // The reason is offered first next time; a cancelled one is
            // no longer waiting.
            state.reason_cancelled = None;
            state
                .reasons_used
                .retain(|(k, r)| !(*k == kind && *r == reason));
            state.reasons_used.insert(0, (kind, reason.clone()));
            if keys.len() > 1 {
                state.batch = Some(Batch::new(kind, &keys));
            }
            keys.into_iter()
                .map(|key| Effect::Apply {
                    seen: seen_now(state, &key),
                    key,
                    op: kind.op(reason.clone()),
                })
                .collect()
        }
    };
    state.marks.clear();
    effects
}
