//! The pure reducer: `update(state, action) -> effects`.

use chrono::{DateTime, TimeDelta, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui_textarea::TextArea;

use super::command::{self, Command};
use super::filter::Filter;
use super::keymap::{self, KeyAction};
use super::state::{
    AppState, ApproveForm, BulkKind, ClusterInfo, Confirm, FlashLevel, Mode, PendingOp, ReasonForm,
    ShortenForm, View,
};
use crate::backend::{ApproveSpec, BackendEvent, RequestKey};
use crate::domain::duration;
use crate::domain::rbac::engine::{analyze, GrantRequest};
use crate::domain::request::Approval;
use crate::domain::sanitize::inert;
use crate::domain::{AccessRequest, Phase, Severity};

#[derive(Debug, Clone)]
pub enum Action {
    Key(KeyEvent),
    /// The clock moved (countdowns, expiring-soon counts, flash timeouts).
    Tick(DateTime<Utc>),
    /// Changes from the backend, batched.
    Backend(Vec<BackendEvent>),
    /// An effect finished.
    OpFinished {
        kind: OpKind,
        key: RequestKey,
        result: Result<Box<AccessRequest>, String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Approve,
    Deny,
    Shorten,
    Revoke,
}

impl OpKind {
    fn verb(self) -> &'static str {
        match self {
            OpKind::Approve => "approve",
            OpKind::Deny => "deny",
            OpKind::Shorten => "shorten",
            OpKind::Revoke => "revoke",
        }
    }
}

/// IO the reducer asks the runtime to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Approve {
        key: RequestKey,
        spec: ApproveSpec,
    },
    Deny {
        key: RequestKey,
        reason: String,
    },
    Shorten {
        key: RequestKey,
        new_end: DateTime<Utc>,
    },
    Revoke {
        key: RequestKey,
        reason: String,
    },
    Quit,
}

/// Info and success messages fade after this; errors stay until esc.
const FLASH_FADE: TimeDelta = TimeDelta::seconds(6);
const PAGE: usize = 10;

pub fn update(state: &mut AppState, action: Action) -> Vec<Effect> {
    let effects = match action {
        Action::Key(key) if key.kind == KeyEventKind::Press => on_key(state, key),
        Action::Key(_) => Vec::new(),
        Action::Tick(now) => {
            state.now = now;
            state.recount_expiring();
            if state
                .flash
                .as_ref()
                .is_some_and(|f| f.level != FlashLevel::Error && now - f.at > FLASH_FADE)
            {
                state.flash = None;
            }
            Vec::new()
        }
        Action::Backend(events) => {
            for event in events {
                apply_event(state, event);
            }
            state.refresh_lists();
            Vec::new()
        }
        Action::OpFinished { kind, key, result } => {
            state.in_flight = state.in_flight.saturating_sub(1);
            on_finished(state, kind, &key, result);
            Vec::new()
        }
    };
    state.ensure_detail();
    effects
}

fn apply_event(state: &mut AppState, event: BackendEvent) {
    match event {
        BackendEvent::Upsert(req) => state.upsert(*req),
        BackendEvent::Removed(key) => state.remove(&key),
        BackendEvent::Inventory { cluster, inventory } => {
            // Say it once per change: a skipped binding can hide access
            // already held, so the diff may overstate what is new.
            let before = state
                .inventories
                .get(&cluster)
                .map(|i| i.skipped.len())
                .unwrap_or(0);
            if !inventory.skipped.is_empty() && inventory.skipped.len() != before {
                state.flash(
                    FlashLevel::Error,
                    format!(
                        "cluster {}: {} RBAC object(s) could not be read and were left out of the diff, e.g. {}",
                        inert(&cluster, 64),
                        inventory.skipped.len(),
                        inert(&inventory.skipped[0], 160)
                    ),
                );
            }
            state.set_inventory(cluster, inventory)
        }
        BackendEvent::ClusterStatus { cluster, error } => {
            if let Some(e) = &error {
                state.flash(
                    FlashLevel::Error,
                    format!("cluster {}: {}", inert(&cluster, 64), inert(e, 200)),
                );
            }
            let production = state.config.production.is_match(&cluster);
            state
                .clusters
                .insert(cluster, ClusterInfo { error, production });
        }
        BackendEvent::Limits { cluster, limits } => {
            state.cluster_limits.insert(cluster, limits);
        }
        BackendEvent::Notice {
            cluster,
            error,
            text,
        } => state.flash(
            if error {
                FlashLevel::Error
            } else {
                FlashLevel::Info
            },
            format!("cluster {}: {}", inert(&cluster, 64), inert(&text, 300)),
        ),
        BackendEvent::Connection { error } => {
            if let Some(e) = &error {
                if state.backend_error.is_none() {
                    state.flash(
                        FlashLevel::Error,
                        format!("{} — retrying; nothing is lost", inert(e, 200)),
                    );
                }
            }
            state.backend_error = error;
        }
        BackendEvent::Synced => {}
        BackendEvent::Verdict { key, decision } => {
            state.verdicts.insert(key, std::sync::Arc::new(*decision));
        }
    }
}

fn on_finished(
    state: &mut AppState,
    kind: OpKind,
    key: &RequestKey,
    result: Result<Box<AccessRequest>, String>,
) {
    match result {
        Ok(req) => {
            let name = inert(&req.name, 64).into_owned();
            let text = match kind {
                OpKind::Approve if req.phase() == crate::domain::Phase::Pending => format!(
                    "Your approval of {name} is recorded ({} so far): it needs more before anything is granted",
                    req.approvals().len()
                ),
                OpKind::Approve => format!(
                    "Approved {name}: {} {} for {} (until {})",
                    req.role.kind,
                    inert(&req.role.name, 64),
                    req.status
                        .decision
                        .as_ref()
                        .and_then(|d| d.duration)
                        .map(duration::format)
                        .unwrap_or_default(),
                    req.status
                        .expires_at
                        .map(|t| t.format("%H:%M UTC").to_string())
                        .unwrap_or_default()
                ),
                OpKind::Deny => format!("Denied {name}"),
                OpKind::Shorten => format!(
                    "Shortened {name}: now ends in {}",
                    duration::format(req.remaining(state.now))
                ),
                OpKind::Revoke => match &req.status.message {
                    Some(m) => format!("Revoked {name}: {}", inert(m, 300)),
                    None => format!("Revoked {name}: access ended now"),
                },
            };
            state.upsert(*req);
            state.refresh_lists();
            if state
                .flash
                .as_ref()
                .is_none_or(|f| f.level != FlashLevel::Error)
            {
                state.flash(FlashLevel::Success, text);
            }
        }
        Err(e) => state.flash(
            FlashLevel::Error,
            format!(
                "could not {} {}: {}",
                kind.verb(),
                inert(&key.name, 64),
                inert(&e, 300)
            ),
        ),
    }
}

fn is_ctrl_c(key: &KeyEvent) -> bool {
    key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL)
}

fn quit(state: &mut AppState) -> Vec<Effect> {
    state.should_quit = true;
    vec![Effect::Quit]
}

fn line_input(placeholder: &str, text: &str) -> TextArea<'static> {
    let mut t = TextArea::new(vec![text.to_string()]);
    t.set_placeholder_text(placeholder.to_string());
    t.move_cursor(ratatui_textarea::CursorMove::End);
    t
}

fn text_of(t: &TextArea<'static>) -> String {
    t.lines().join(" ")
}

/// Feeds a key to a one-line input: Enter and newlines never reach it.
fn feed(t: &mut TextArea<'static>, key: KeyEvent) {
    if matches!(key.code, KeyCode::Enter)
        || (key.code == KeyCode::Char('m') && key.modifiers.contains(KeyModifiers::CONTROL))
    {
        return;
    }
    t.input(key);
}

fn on_key(state: &mut AppState, key: KeyEvent) -> Vec<Effect> {
    if is_ctrl_c(&key) {
        return quit(state);
    }
    let mode = std::mem::replace(&mut state.mode, Mode::Normal);
    match mode {
        Mode::Normal => on_normal_key(state, key),
        Mode::Help { scroll } => {
            match key.code {
                KeyCode::Char('q') => return quit(state),
                KeyCode::Esc | KeyCode::Char('?') => {}
                KeyCode::Char('j') | KeyCode::Down => {
                    state.mode = Mode::Help {
                        scroll: scroll.saturating_add(1),
                    }
                }
                KeyCode::Char('k') | KeyCode::Up => {
                    state.mode = Mode::Help {
                        scroll: scroll.saturating_sub(1),
                    }
                }
                _ => state.mode = Mode::Help { scroll },
            }
            Vec::new()
        }
        Mode::Command { mut input, error } => match key.code {
            KeyCode::Esc => Vec::new(),
            KeyCode::Enter => run_command(state, &text_of(&input)),
            KeyCode::Tab => {
                let contexts: Vec<String> = state.clusters.keys().cloned().collect();
                if let Some(done) = command::complete(&text_of(&input), &contexts) {
                    input = line_input("", &done);
                }
                state.mode = Mode::Command { input, error: None };
                Vec::new()
            }
            _ => {
                feed(&mut input, key);
                state.mode = Mode::Command {
                    input,
                    error: error.filter(|_| false),
                };
                Vec::new()
            }
        },
        Mode::Filter { mut input } => {
            match key.code {
                KeyCode::Esc => set_filter(state, ""),
                KeyCode::Enter => {}
                _ => {
                    feed(&mut input, key);
                    set_filter(state, &text_of(&input));
                    state.mode = Mode::Filter { input };
                }
            }
            Vec::new()
        }
        Mode::Reason(form) => on_reason_key(state, form, key),
        Mode::Approve(form) => on_approve_form_key(state, form, key),
        Mode::Shorten(form) => on_shorten_key(state, form, key),
        Mode::Confirm(confirm) => on_confirm_key(state, confirm, key),
    }
}

fn set_filter(state: &mut AppState, text: &str) {
    state.filter = Filter::parse(text);
    state.refresh_lists();
}

fn run_command(state: &mut AppState, line: &str) -> Vec<Effect> {
    match command::parse(line) {
        Ok(Command::Pending) => switch_view(state, View::Pending),
        Ok(Command::Grants) => switch_view(state, View::Grants),
        Ok(Command::History) => switch_view(state, View::History),
        Ok(Command::Help) => state.mode = Mode::Help { scroll: 0 },
        Ok(Command::Quit) => return quit(state),
        Ok(Command::Context(None)) => {
            state.context = None;
            state.refresh_lists();
            state.flash(FlashLevel::Info, "showing all clusters");
        }
        Ok(Command::Context(Some(name))) => {
            if state.clusters.contains_key(&name) {
                state.flash(
                    FlashLevel::Info,
                    format!("showing cluster {}", inert(&name, 64)),
                );
                state.context = Some(name);
                state.marks.clear();
                state.refresh_lists();
            } else {
                let known: Vec<&str> = state.clusters.keys().map(String::as_str).collect();
                state.flash(
                    FlashLevel::Error,
                    format!(
                        "no context '{}': known are {}",
                        inert(&name, 64),
                        known.join(", ")
                    ),
                );
            }
        }
        Err(e) => state.flash(FlashLevel::Error, e),
    }
    Vec::new()
}

fn switch_view(state: &mut AppState, view: View) {
    if state.view != view {
        state.marks.clear();
    }
    state.view = view;
}

fn move_cursor(state: &mut AppState, to: impl FnOnce(usize, usize) -> usize) {
    let i = state.view.index();
    let len = state.lists[i].len();
    if len == 0 {
        state.cursor[i] = 0;
        return;
    }
    state.cursor[i] = to(state.cursor[i], len).min(len - 1);
}

fn readonly_refusal(state: &mut AppState, what: &str) -> bool {
    if state.config.readonly {
        state.flash(
            FlashLevel::Error,
            format!("read-only console (--readonly): {what} is disabled"),
        );
    }
    state.config.readonly
}

fn on_normal_key(state: &mut AppState, key: KeyEvent) -> Vec<Effect> {
    let Some(action) = keymap::lookup(state.view, &key) else {
        return Vec::new();
    };
    match action {
        KeyAction::Quit => return quit(state),
        KeyAction::Help => state.mode = Mode::Help { scroll: 0 },
        KeyAction::Back => {
            if state.flash.is_some() {
                state.flash = None;
            } else if !state.marks.is_empty() {
                state.marks.clear();
            } else if !state.filter.is_empty() {
                set_filter(state, "");
            }
        }
        KeyAction::Up => move_cursor(state, |c, _| c.saturating_sub(1)),
        KeyAction::Down => move_cursor(state, |c, _| c + 1),
        KeyAction::Top => move_cursor(state, |_, _| 0),
        KeyAction::Bottom => move_cursor(state, |_, len| len - 1),
        KeyAction::PageUp => move_cursor(state, |c, _| c.saturating_sub(PAGE)),
        KeyAction::PageDown => move_cursor(state, |c, _| c + PAGE),
        KeyAction::DetailDown => state.detail_scroll = state.detail_scroll.saturating_add(3),
        KeyAction::DetailUp => state.detail_scroll = state.detail_scroll.saturating_sub(3),
        KeyAction::NextView => {
            let next = View::ALL[(state.view.index() + 1) % 3];
            switch_view(state, next);
        }
        KeyAction::PrevView => {
            let prev = View::ALL[(state.view.index() + 2) % 3];
            switch_view(state, prev);
        }
        KeyAction::ShowPending => switch_view(state, View::Pending),
        KeyAction::ShowGrants => switch_view(state, View::Grants),
        KeyAction::ShowHistory => switch_view(state, View::History),
        KeyAction::CommandMode => {
            state.mode = Mode::Command {
                input: line_input("pending | grants | history | ctx NAME | q", ""),
                error: None,
            }
        }
        KeyAction::FilterMode => {
            state.mode = Mode::Filter {
                input: line_input(
                    "text  user:NAME  ns:NS  risk:high  cluster:NAME",
                    &state.filter.text,
                ),
            }
        }
        KeyAction::ToggleMark => {
            if let Some(k) = state.selected_key().cloned() {
                if !state.marks.remove(&k) {
                    state.marks.insert(k);
                }
                move_cursor(state, |c, _| c + 1);
            }
        }
        KeyAction::Approve | KeyAction::ApproveWithChanges => {
            let with_changes = action == KeyAction::ApproveWithChanges;
            start_approve(state, with_changes);
        }
        KeyAction::Deny => start_bulk(state, BulkKind::Deny),
        KeyAction::Revoke => start_bulk(state, BulkKind::Revoke),
        KeyAction::Shorten => start_shorten(state),
    }
    Vec::new()
}

/// Checks that the selection may be approved by this approver; flashes why not.
fn approvable(state: &mut AppState) -> Option<AccessRequest> {
    if readonly_refusal(state, "approving") {
        return None;
    }
    // The server's policy is enforced: say why before the round trip. A
    // console's own (advisory) verdict is shown, not enforced.
    let verdict = state.verdict_of(&state.selected_key().cloned());
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
    Some(entry.req)
}

fn start_approve(state: &mut AppState, with_changes: bool) {
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
        duration: line_input("e.g. 15m", &duration::format(dur)),
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
fn approve_confirm(state: &AppState, req: &AccessRequest, spec: ApproveSpec) -> Confirm {
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
    let scope = if spec.namespaces.is_empty() {
        "cluster-wide (every namespace and cluster-scoped resources)".to_string()
    } else {
        format!(
            "namespace{} {}",
            if spec.namespaces.len() == 1 { "" } else { "s" },
            spec.namespaces.join(", ")
        )
    };
    let until = state.now + TimeDelta::from_std(spec.duration).unwrap_or(TimeDelta::MAX);
    let mut lines = vec![
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
        format!("Cluster  {}{prod}", inert(&req.cluster, 64)),
        format!(
            "For      {} — until {}; the clock starts now",
            duration::format(spec.duration),
            until.format("%H:%M UTC")
        ),
    ];
    let narrowed = spec.duration < req.duration || spec.namespaces.len() < req.namespaces.len();
    if narrowed {
        let asked_ns = if req.namespaces.is_empty() {
            "cluster-wide".into()
        } else {
            req.namespaces.join(", ")
        };
        lines.push(format!(
            "Asked    {} in {asked_ns}",
            duration::format(req.duration)
        ));
    }
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
        None => lines.push("Diff     unavailable: no RBAC inventory for this cluster".into()),
    }
    if req.credentials == crate::domain::Credentials::Token {
        lines.push("Creds    a per-grant ServiceAccount; tokens end with the grant".into());
    }
    Confirm {
        title: format!("Approve {}?", inert(&req.name, 64)),
        lines,
        op: PendingOp::Approve {
            key: RequestKey::of(req),
            spec,
        },
        can_edit: true,
    }
}

fn start_bulk(state: &mut AppState, kind: BulkKind) {
    let what = match kind {
        BulkKind::Deny => "denying",
        BulkKind::Revoke => "revoking",
    };
    if readonly_refusal(state, what) {
        return;
    }
    let wanted = match kind {
        BulkKind::Deny => Phase::Pending,
        BulkKind::Revoke => Phase::Active,
    };
    let keys: Vec<RequestKey> = if state.marks.is_empty() {
        state.selected_key().cloned().into_iter().collect()
    } else {
        state.marks.iter().cloned().collect()
    };
    let keys: Vec<RequestKey> = keys
        .into_iter()
        .filter(|k| {
            state
                .entries
                .get(k)
                .is_some_and(|e| e.req.phase() == wanted)
        })
        .collect();
    if keys.is_empty() {
        state.flash(
            FlashLevel::Error,
            format!("nothing to {}", kind.verb().to_lowercase()),
        );
        return;
    }
    let placeholder = match kind {
        BulkKind::Deny => "why is this denied? (required; the requester sees it)",
        BulkKind::Revoke => "why is this grant ended early? (required)",
    };
    let mut input = TextArea::default();
    input.set_placeholder_text(placeholder);
    state.mode = Mode::Reason(ReasonForm {
        kind,
        keys,
        input,
        error: None,
    });
}

fn start_shorten(state: &mut AppState) {
    if readonly_refusal(state, "shortening") {
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
    state.mode = Mode::Shorten(ShortenForm {
        key,
        input: line_input("new remaining time, e.g. 10m", ""),
        error: None,
    });
}

fn names(keys: &[RequestKey]) -> String {
    let shown: Vec<String> = keys
        .iter()
        .take(5)
        .map(|k| inert(&k.name, 48).into_owned())
        .collect();
    let more = keys.len().saturating_sub(5);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

fn on_reason_key(state: &mut AppState, mut form: ReasonForm, key: KeyEvent) -> Vec<Effect> {
    match key.code {
        KeyCode::Esc => Vec::new(),
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
                let n = form.keys.len();
                let noun = match form.kind {
                    BulkKind::Deny => "requests",
                    BulkKind::Revoke => "live grants",
                };
                let op = match form.kind {
                    BulkKind::Deny => PendingOp::Deny {
                        keys: form.keys.clone(),
                        reason: reason.clone(),
                    },
                    BulkKind::Revoke => PendingOp::Revoke {
                        keys: form.keys.clone(),
                        reason: reason.clone(),
                    },
                };
                state.mode = Mode::Confirm(Confirm {
                    title: format!("{} {n} {noun}?", form.kind.verb()),
                    lines: vec![
                        format!("{} {n} {noun}: {}", form.kind.verb(), names(&form.keys)),
                        format!("Reason   {}", inert(&reason, 200)),
                    ],
                    op,
                    can_edit: false,
                });
                Vec::new()
            } else {
                dispatch(
                    state,
                    match form.kind {
                        BulkKind::Deny => PendingOp::Deny {
                            keys: form.keys,
                            reason,
                        },
                        BulkKind::Revoke => PendingOp::Revoke {
                            keys: form.keys,
                            reason,
                        },
                    },
                )
            }
        }
        _ => {
            feed(&mut form.input, key);
            form.error = None;
            state.mode = Mode::Reason(form);
            Vec::new()
        }
    }
}

fn on_approve_form_key(state: &mut AppState, mut form: ApproveForm, key: KeyEvent) -> Vec<Effect> {
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
            let probe = Approval {
                by: state.approver.user.clone(),
                at: state.now,
                duration: spec.duration,
                namespaces: spec.namespaces.clone(),
                reason: None,
            };
            if let Err(e) = req.check_approval(&probe, state.limits_for(&req.cluster)) {
                form.error = Some(e.to_string());
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

fn on_shorten_key(state: &mut AppState, mut form: ShortenForm, key: KeyEvent) -> Vec<Effect> {
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
                    state.in_flight += 1;
                    vec![Effect::Shorten {
                        key: form.key,
                        new_end,
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

fn on_confirm_key(state: &mut AppState, confirm: Confirm, key: KeyEvent) -> Vec<Effect> {
    match key.code {
        KeyCode::Char('y') | KeyCode::Char('Y') => dispatch(state, confirm.op),
        KeyCode::Char('e') if confirm.can_edit => {
            if let PendingOp::Approve { key, spec } = &confirm.op {
                if let Some(e) = state.entries.get(key) {
                    state.mode = Mode::Approve(approve_form(&e.req, Some(spec)));
                }
            }
            Vec::new()
        }
        KeyCode::Char('n') | KeyCode::Esc | KeyCode::Char('q') => {
            state.flash(FlashLevel::Info, "cancelled: nothing was changed");
            Vec::new()
        }
        _ => {
            state.mode = Mode::Confirm(confirm);
            Vec::new()
        }
    }
}

fn dispatch(state: &mut AppState, op: PendingOp) -> Vec<Effect> {
    let effects: Vec<Effect> = match op {
        PendingOp::Approve { key, spec } => vec![Effect::Approve { key, spec }],
        PendingOp::Deny { keys, reason } => keys
            .into_iter()
            .map(|key| Effect::Deny {
                key,
                reason: reason.clone(),
            })
            .collect(),
        PendingOp::Revoke { keys, reason } => keys
            .into_iter()
            .map(|key| Effect::Revoke {
                key,
                reason: reason.clone(),
            })
            .collect(),
    };
    state.in_flight += effects.len();
    state.marks.clear();
    effects
}

#[cfg(test)]
mod tests {
    //! Action → state + effects, with no backend at all.

    use std::sync::Arc;
    use std::time::Duration;

    use chrono::{DateTime, TimeDelta, Utc};
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    use super::*;
    use crate::app::state::AppConfig;
    use crate::backend::demo::org;
    use crate::domain::request::{Approval, Status};
    use crate::domain::{Credentials, RoleRef, Subject};

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn req(name: &str, user: &str, role: &str, ns: &[&str]) -> AccessRequest {
        AccessRequest {
            name: name.into(),
            cluster: "prod-eu-west".into(),
            created_at: t0() - TimeDelta::minutes(10),
            requester: Subject::new(user, &["dev"]),
            role: RoleRef::cluster_role(role),
            namespaces: ns.iter().map(|s| s.to_string()).collect(),
            duration: Duration::from_secs(1800),
            reason: "INC-1".into(),
            ticket: None,
            credentials: Credentials::Identity,
            extends: None,
            status: Status::default(),
            malformed: None,
        }
    }

    fn live(name: &str, mins_left: i64) -> AccessRequest {
        let mut r = req(name, "bob", "view", &["orders"]);
        let ns = r.namespaces.clone();
        r.approve(
            Approval {
                by: "erin".into(),
                at: t0() + TimeDelta::minutes(mins_left) - TimeDelta::minutes(30),
                duration: r.duration,
                namespaces: ns,
                reason: None,
            },
            &Default::default(),
        )
        .unwrap();
        r
    }

    fn state(reqs: Vec<AccessRequest>) -> AppState {
        let mut s = AppState::new(
            AppConfig::default(),
            Subject::new("dana", &["sre"]),
            "test",
            t0(),
        );
        let mut events = vec![BackendEvent::Inventory {
            cluster: "prod-eu-west".into(),
            inventory: Arc::new(org::inventory("prod-eu-west")),
        }];
        events.extend(reqs.into_iter().map(|r| BackendEvent::Upsert(Box::new(r))));
        assert!(update(&mut s, Action::Backend(events)).is_empty());
        s
    }

    fn key(c: char) -> Action {
        Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
    }

    fn code(c: KeyCode) -> Action {
        Action::Key(KeyEvent::new(c, KeyModifiers::NONE))
    }

    fn rk(name: &str) -> RequestKey {
        RequestKey {
            cluster: "prod-eu-west".into(),
            name: name.into(),
        }
    }

    #[test]
    fn backend_batch_fills_views_counts_and_risk() {
        let s = state(vec![
            req("a", "alice", "edit", &["payments"]),
            req("b", "bob", "nope", &["orders"]),
            live("c", 3),
            live("d", 30),
        ]);
        assert_eq!(s.list(View::Pending).len(), 2);
        assert_eq!(s.counts.live, 2);
        assert_eq!(s.counts.expiring, 1);
        assert_eq!(s.entries[&rk("a")].summary.worst, Some(Severity::Critical));
        assert!(s.entries[&rk("b")]
            .invalid
            .as_deref()
            .unwrap()
            .contains("ClusterRole 'nope' does not exist"));
        assert!(
            s.detail.is_some(),
            "the selection's analysis is ready for the detail pane"
        );
    }

    #[test]
    fn approve_confirm_emits_exactly_the_asked_grant() {
        let mut s = state(vec![req("a", "alice", "edit", &["payments", "orders"])]);
        assert!(update(&mut s, key('a')).is_empty());
        assert!(matches!(s.mode, Mode::Confirm(_)));
        assert!(
            update(&mut s, code(KeyCode::Enter)).is_empty(),
            "enter never confirms"
        );
        let effects = update(&mut s, key('y'));
        assert_eq!(
            effects,
            vec![Effect::Approve {
                key: rk("a"),
                spec: ApproveSpec {
                    duration: Duration::from_secs(1800),
                    namespaces: vec!["payments".into(), "orders".into()],
                    reason: None
                }
            }]
        );
        assert_eq!(s.in_flight, 1);
        assert!(matches!(s.mode, Mode::Normal));
    }

    #[test]
    fn own_request_gives_no_effect() {
        let mut s = state(vec![req("mine", "dana", "view", &["monitoring"])]);
        assert!(update(&mut s, key('a')).is_empty());
        assert!(matches!(s.mode, Mode::Normal));
        assert!(s
            .flash
            .as_ref()
            .unwrap()
            .text
            .contains("someone else must approve"));
    }

    #[test]
    fn bulk_deny_emits_one_effect_per_request_after_confirmation() {
        let mut s = state(vec![
            req("a", "alice", "view", &["payments"]),
            req("b", "bob", "view", &["orders"]),
            req("c", "carol", "view", &["search"]),
        ]);
        update(&mut s, key(' '));
        update(&mut s, key(' '));
        update(&mut s, key('d'));
        for c in "dup".chars() {
            update(&mut s, key(c));
        }
        assert!(update(&mut s, code(KeyCode::Enter)).is_empty());
        let Mode::Confirm(c) = &s.mode else {
            panic!("{:?}", s.mode)
        };
        assert_eq!(c.title, "Deny 2 requests?");
        let effects = update(&mut s, key('y'));
        assert_eq!(effects.len(), 2);
        assert!(effects
            .iter()
            .all(|e| matches!(e, Effect::Deny { reason, .. } if reason == "dup")));
        assert!(s.marks.is_empty());
    }

    #[test]
    fn finished_operations_update_state_and_errors_stay() {
        let mut s = state(vec![req("a", "alice", "view", &["payments"])]);
        s.in_flight = 2;
        update(
            &mut s,
            Action::OpFinished {
                kind: OpKind::Deny,
                key: rk("a"),
                result: Err("cluster prod-eu-west is unreachable: timeout".into()),
            },
        );
        assert_eq!(s.flash.as_ref().unwrap().level, FlashLevel::Error);
        let mut denied = req("a", "alice", "view", &["payments"]);
        denied.deny("dana", t0(), "no").unwrap();
        update(
            &mut s,
            Action::OpFinished {
                kind: OpKind::Deny,
                key: rk("a"),
                result: Ok(Box::new(denied)),
            },
        );
        assert_eq!(s.in_flight, 0);
        assert_eq!(s.entries[&rk("a")].req.phase(), Phase::Denied);
        assert!(
            s.flash.as_ref().unwrap().text.contains("unreachable"),
            "a success never hides an unread error"
        );
        update(&mut s, Action::Tick(t0() + TimeDelta::hours(1)));
        assert!(s.flash.is_some(), "errors do not fade");
        update(&mut s, code(KeyCode::Esc));
        assert!(s.flash.is_none());
    }

    #[test]
    fn tick_recounts_expiring_grants() {
        let mut s = state(vec![live("c", 8), live("d", 30)]);
        assert_eq!(s.counts.expiring, 0);
        update(&mut s, Action::Tick(t0() + TimeDelta::minutes(4)));
        assert_eq!(s.counts.expiring, 1);
    }

    #[test]
    fn failing_cluster_is_flagged_and_removed_requests_vanish() {
        let mut s = state(vec![req("a", "alice", "view", &["payments"])]);
        s.marks.insert(rk("a"));
        update(
            &mut s,
            Action::Backend(vec![
                BackendEvent::ClusterStatus {
                    cluster: "prod-eu-west".into(),
                    error: Some("connection refused".into()),
                },
                BackendEvent::Removed(rk("a")),
            ]),
        );
        assert!(
            s.clusters["prod-eu-west"].error.is_some() && s.clusters["prod-eu-west"].production
        );
        assert!(s
            .flash
            .as_ref()
            .unwrap()
            .text
            .contains("connection refused"));
        assert!(s.entries.is_empty() && s.marks.is_empty() && s.list(View::Pending).is_empty());
    }

    #[test]
    fn unreadable_rbac_objects_are_said_once_per_change() {
        let mut s = state(vec![req("a", "alice", "view", &["payments"])]);
        s.flash = None;
        let mut inv = org::inventory("prod-eu-west");
        inv.skipped = vec!["RoleBinding payments/broken: missing field `roleRef`".into()];
        let inv = Arc::new(inv);
        let event = || BackendEvent::Inventory {
            cluster: "prod-eu-west".into(),
            inventory: inv.clone(),
        };
        update(&mut s, Action::Backend(vec![event()]));
        let text = s.flash.take().expect("said").text;
        assert!(
            text.contains("1 RBAC object(s) could not be read") && text.contains("broken"),
            "{text}"
        );
        update(&mut s, Action::Backend(vec![event()]));
        assert!(s.flash.is_none(), "not again for the same inventory");
    }

    #[test]
    fn key_releases_are_ignored() {
        let mut s = state(vec![req("a", "alice", "view", &["payments"])]);
        let mut release = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
        release.kind = KeyEventKind::Release;
        assert!(update(&mut s, Action::Key(release)).is_empty());
        assert!(!s.should_quit);
        assert_eq!(update(&mut s, key('q')), vec![Effect::Quit]);
    }
}
