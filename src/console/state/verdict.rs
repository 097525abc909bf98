//! The verdict: the detail pane's first line, in plain words — how risky,
//! who, what role where (PROD marked), for how long, what the worst new
//! permissions let them do, what they already hold. For a live grant: when
//! it started, when it ends, who approved. For an ended one: who or what
//! did each thing, and when.
//!
//! A view model: parts with a tone, which the UI styles. Every piece of
//! requester or cluster text is made inert here.

use std::collections::BTreeSet;

use super::app::{AppState, Entry};
use super::when;
use crate::domain::request::Verdict;
use crate::domain::sanitize::inert;
use crate::domain::{duration, AccessRequest, Phase, Severity};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// The worst new permission's badge.
    Risk(Severity),
    /// Nothing new (`none`).
    Nothing,
    /// Can only be denied (`INVAL`).
    Invalid,
    /// A live grant (`LIVE`).
    Live,
    /// An ended request (its outcome as the badge).
    Ended,
    /// The red `PROD` badge.
    Prod,
    /// A name worth the eye: the requester, the role.
    Strong,
    Text,
    /// Something to stop at (your own request).
    Warn,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub tone: Tone,
    pub text: String,
}

struct Parts(Vec<Part>);

impl Parts {
    fn push(&mut self, tone: Tone, text: impl Into<String>) -> &mut Self {
        self.0.push(Part {
            tone,
            text: text.into(),
        });
        self
    }
    fn text(&mut self, text: impl Into<String>) -> &mut Self {
        self.push(Tone::Text, text)
    }
}

/// `in payments, checkout` or `cluster-wide`.
pub(crate) fn scope_words(namespaces: &[String]) -> String {
    if namespaces.is_empty() {
        "cluster-wide".into()
    } else {
        format!(
            "in {}",
            namespaces
                .iter()
                .map(|n| inert(n, 64).into_owned())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// How long the grant was (or is) for: the decision's, else the asked.
fn granted_duration(r: &AccessRequest) -> std::time::Duration {
    r.status
        .decision
        .as_ref()
        .and_then(|d| d.duration)
        .unwrap_or(r.duration)
}

pub(crate) fn verdict(state: &AppState, entry: &Entry) -> Vec<Part> {
    let r = &entry.req;
    let mut p = Parts(Vec::new());
    let who = inert(&r.requester.user, 64).into_owned();
    match r.phase() {
        Phase::Pending => pending_verdict(&mut p, state, entry, &who),
        Phase::Active => live_verdict(&mut p, state, r, &who),
        phase => ended_verdict(&mut p, state, r, phase, &who),
    }
    access(&mut p, state, entry, &who);
    p.0
}

/// `t` on the console's clock.
fn clock(state: &AppState, t: chrono::DateTime<chrono::Utc>) -> String {
    when::clock(state.config.zone, state.now, t)
}

/// The role: its kind and name.
fn role_words(r: &AccessRequest) -> String {
    format!("{} {}", r.role.kind, inert(&r.role.name, 64))
}

/// Where: the namespaces, then the cluster (PROD marked).
fn place(p: &mut Parts, state: &AppState, r: &AccessRequest, namespaces: &[String]) {
    p.text(format!(" {} on ", scope_words(namespaces)));
    if state.is_production(&r.cluster) {
        p.push(Tone::Prod, "PROD");
        p.text(" ");
    }
    p.text(inert(state.cluster_label(&r.cluster), 64).into_owned());
}

/// A pending request: the badge, who asks for what, where, how long; the policy.
fn pending_verdict(p: &mut Parts, state: &AppState, entry: &Entry, who: &str) {
    let r = &entry.req;
    badge(p, state, entry);
    p.text(" ").push(Tone::Strong, who).text(" asks for ");
    p.push(Tone::Strong, role_words(r));
    place(p, state, r, &r.namespaces);
    p.text(format!(" for {}.", duration::format(r.duration)));
    if r.requester.user == state.approver.user {
        p.text(" ").push(
            Tone::Warn,
            "Your own request: someone else must approve it.",
        );
    }
    policy_word(p, state, r);
}

/// What the policy says, in a word (its reasons follow below).
fn policy_word(p: &mut Parts, state: &AppState, r: &AccessRequest) {
    let key = Some(crate::backend::RequestKey::of(r));
    if let Some((d, advisory)) = state.verdict_of(&key) {
        let tag = if advisory { " (advisory)" } else { "" };
        if !d.allowed() {
            p.text(" ")
                .push(Tone::Warn, format!("The policy{tag} refuses it."));
        } else if d.may_approve(&state.approver).is_err() {
            p.text(" ").push(
                Tone::Warn,
                format!("The policy{tag} does not list you as an approver."),
            );
        } else if d.approvals_required > 1 {
            p.text(format!(" Needs {} approvals{tag}.", d.approvals_required));
        }
    }
}

/// A live grant: who holds what where, its start, end and approver, any narrowing.
fn live_verdict(p: &mut Parts, state: &AppState, r: &AccessRequest, who: &str) {
    let now = state.now;
    let decision = r.status.decision.as_ref();
    p.push(Tone::Live, "LIVE");
    p.text(" ").push(Tone::Strong, who).text(" holds ");
    p.push(Tone::Strong, role_words(r));
    place(p, state, r, r.granted_namespaces());
    let start = r.status.granted_at.or(decision.map(|d| d.at));
    if let Some(t) = start {
        p.text(format!(
            ": started {} ({})",
            clock(state, t),
            when::ago(now, t)
        ));
    }
    if let Some(end) = r.status.expires_at {
        p.text(format!(
            ", ends {} ({})",
            clock(state, end),
            when::until(now, end)
        ));
    }
    if let Some(d) = decision {
        p.text(", approved by ")
            .push(Tone::Strong, inert(&d.by, 64).into_owned());
    }
    p.text(".");
    if let Some(d) = decision.filter(|d| {
        d.duration.is_some_and(|x| x < r.duration) || d.namespaces.len() < r.namespaces.len()
    }) {
        p.text(format!(
            " Granted {} {} of the {} {} asked.",
            d.duration.map(duration::format).unwrap_or_default(),
            scope_words(&d.namespaces),
            duration::format(r.duration),
            scope_words(&r.namespaces)
        ));
    }
}

/// An ended request: its outcome, who had (or asked for) what where, how it ended.
fn ended_verdict(p: &mut Parts, state: &AppState, r: &AccessRequest, phase: Phase, who: &str) {
    let decision = r.status.decision.as_ref();
    p.push(Tone::Ended, phase.as_str());
    let approved = decision.filter(|d| d.verdict == Verdict::Approved);
    p.text(" ").push(Tone::Strong, who);
    p.text(if approved.is_some() {
        " had "
    } else {
        " asked for "
    });
    p.push(Tone::Strong, role_words(r));
    place(
        p,
        state,
        r,
        if approved.is_some() {
            r.granted_namespaces()
        } else {
            &r.namespaces
        },
    );
    match approved {
        Some(d) => {
            p.text(format!(
                ": approved by {} at {} for {}",
                inert(&d.by, 64),
                clock(state, d.at),
                duration::format(granted_duration(r))
            ));
        }
        None => {
            p.text(format!(" for {}", duration::format(r.duration)));
        }
    }
    how_ended(p, state, r, phase, approved.is_some(), who);
}

/// How an ended request ended: by whom, when, and why where it was said.
fn how_ended(
    p: &mut Parts,
    state: &AppState,
    r: &AccessRequest,
    phase: Phase,
    approved: bool,
    who: &str,
) {
    let now = state.now;
    let decision = r.status.decision.as_ref();
    let ended = r
        .status
        .ended_at
        .map(|t| format!("{} ({})", clock(state, t), when::ago(now, t)));
    let ended = ended.unwrap_or_else(|| "at an unknown time".into());
    match phase {
        Phase::Denied => {
            let by = decision
                .map(|d| inert(&d.by, 64).into_owned())
                .unwrap_or_default();
            let why = decision
                .and_then(|d| d.reason.as_deref())
                .map(quote)
                .unwrap_or_default();
            p.text(format!("; denied by {by} at {ended}{why}."));
        }
        Phase::Withdrawn => {
            p.text(format!("; withdrawn by {who} at {ended}."));
        }
        Phase::Expired if approved => {
            p.text(format!("; ended by the reaper at its end, {ended}."));
        }
        Phase::Expired => {
            p.text(format!(
                "; not decided in time: ended by the reaper at {ended}."
            ));
        }
        Phase::Released => {
            let who = inert(&r.requester.user, 64);
            p.text(format!("; released by {who} at {ended} (done with it)."));
        }
        Phase::Revoked => {
            let by = r
                .status
                .revoked_by
                .as_deref()
                .map(|b| inert(b, 64).into_owned())
                .unwrap_or_else(|| "someone".into());
            let why = r
                .status
                .revoke_reason
                .as_deref()
                .map(quote)
                .unwrap_or_default();
            p.text(format!("; revoked by {by} at {ended}{why}."));
        }
        _ => {
            let why = r.status.message.as_deref().map(quote).unwrap_or_default();
            p.text(format!("; the grant failed at {ended}{why}."));
        }
    }
}

/// `: "why"`, made inert.
fn quote(w: &str) -> String {
    format!(": \"{}\"", inert(w, 200))
}

/// The pending badge: INVAL, none, or the worst new permission's severity.
fn badge(p: &mut Parts, state: &AppState, entry: &Entry) {
    if entry.invalid.is_some() {
        p.push(Tone::Invalid, "INVAL");
        return;
    }
    match detail_of(state, entry).map(|d| &d.analysis) {
        Some(Ok(a)) if a.new.is_empty() => p.push(Tone::Nothing, "none"),
        Some(Ok(a)) => p.push(Tone::Risk(worst_new(a)), worst_new(a).badge()),
        _ => match entry.summary.worst {
            Some(s) => p.push(Tone::Risk(s), s.badge()),
            None => p.push(Tone::Nothing, "?"),
        },
    };
}

fn worst_new(a: &crate::domain::rbac::Analysis) -> Severity {
    a.new
        .iter()
        .map(|p| p.risk.severity)
        .max()
        .unwrap_or(Severity::Info)
}

fn detail_of<'a>(state: &'a AppState, entry: &Entry) -> Option<&'a super::app::Detail> {
    state
        .detail
        .as_ref()
        .filter(|d| d.key.name == entry.req.name && d.key.cluster == entry.req.cluster)
}

/// What the worst new permissions let them do, and what they already hold.
fn access(p: &mut Parts, state: &AppState, entry: &Entry, who: &str) {
    if let Some(why) = &entry.invalid {
        p.text(format!(" It can only be denied: {}.", inert(why, 200)));
        return;
    }
    let Some(detail) = detail_of(state, entry) else {
        return;
    };
    let a = match &detail.analysis {
        Ok(a) => a,
        Err(e) => {
            p.text(format!(" The diff is unavailable: {}.", inert(e, 200)));
            return;
        }
    };
    if a.privileged {
        p.text(format!(
            " {who} is in system:masters: the apiserver already allows them everything."
        ));
        return;
    }
    if a.new.is_empty() {
        p.text(format!(
            " Nothing new: {who} already holds all {} asked permissions.",
            a.granted.len()
        ));
        return;
    }
    let worst = worst_new(a);
    if worst == Severity::Info {
        p.text(" Read-only.");
    } else {
        p.text(format!(" Can {}.", can(detail, worst)));
    }
    let own: Vec<String> = a
        .standing
        .iter()
        .filter(|s| !s.system && !s.live_grant)
        .map(|s| match &s.scope {
            crate::domain::rbac::Scope::Cluster => format!("{} cluster-wide", inert(&s.role, 48)),
            crate::domain::rbac::Scope::Namespace(ns) => {
                format!("{} in {}", inert(&s.role, 48), inert(ns, 64))
            }
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let holds = match own.len() {
        0 => "nothing beyond the defaults".to_string(),
        1..=2 => own.join(", "),
        n => format!("{}, {}, +{}", own[0], own[1], n - 2),
    };
    p.text(format!(
        " Already holds {} of {} asked ({holds}).",
        a.already.len(),
        a.granted.len()
    ));
}

/// What the grant lets them do, in words: every high and critical kind
/// (worst first), else the kinds at the worst level; at most
/// [`CAN_SHOWN`], then how many more.
fn can(detail: &super::app::Detail, worst: Severity) -> String {
    let floor = worst.min(Severity::High);
    let mut rows: Vec<&crate::domain::risk::Risk> = detail
        .diff
        .iter()
        .flat_map(|g| g.rows.iter())
        .map(|r| &r.risk)
        .filter(|r| r.severity >= floor)
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.severity));
    let mut words: Vec<&str> = Vec::new();
    for r in rows {
        if !words.contains(&r.plain()) {
            words.push(r.plain());
        }
    }
    // "do anything" says all the rest.
    if words.contains(&"do anything") {
        words = vec!["do anything"];
    }
    let more = words.len().saturating_sub(CAN_SHOWN);
    words.truncate(CAN_SHOWN);
    let mut text = match words.as_slice() {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    };
    if more > 0 {
        text.push_str(&format!(" (+{more} more)"));
    }
    text
}

/// How many kinds of access the first line names.
const CAN_SHOWN: usize = 3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_in_words() {
        assert_eq!(scope_words(&[]), "cluster-wide");
        assert_eq!(scope_words(&["a".to_string(), "b".to_string()]), "in a, b");
    }
}
