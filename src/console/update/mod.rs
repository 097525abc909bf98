//! The pure reducer: `update(state, action) -> effects`.

pub(crate) mod forms;

use chrono::{DateTime, TimeDelta, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui_textarea::TextArea;

use crate::backend::{BackendEvent, Op, OpKind, RequestKey, Seen};
use crate::console::state::app::{
    AppState, BulkKind, Choices, ClusterInfo, FlashLevel, Mode, PendingOp, View,
};
use crate::console::state::command::{self, Command, Completion};
use crate::console::state::filter::Filter;
use crate::console::state::keymap::{self, KeyAction};
use crate::console::state::when;
use crate::domain::duration;
use crate::domain::sanitize::inert;
use crate::domain::{AccessRequest, Phase};
use forms::bulk_confirm;

#[derive(Debug, Clone)]
pub enum Action {
    Key(KeyEvent),
    /// The clock moved (countdowns, expiring-soon counts, flash timeouts).
    Tick(DateTime<Utc>),
    /// Changes from the backend, batched.
    Backend(Vec<BackendEvent>),
    /// The terminal's size (columns, rows): scrolling stops at the end.
    Resize(u16, u16),
    /// An effect finished.
    OpFinished {
        kind: OpKind,
        key: RequestKey,
        result: Result<Box<AccessRequest>, String>,
    },
}

/// IO the reducer asks the runtime to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// One operation on one request. A decision names what the approver
    /// was shown of it (the backend refuses it if the request is no longer
    /// that); the approver's release of their own grant names nothing.
    Apply {
        key: RequestKey,
        seen: Seen,
        op: Op,
    },
    /// Put this text on the clipboard (OSC 52): only ever a request's name,
    /// and only when the config turns it on.
    Copy(String),
    /// Ring the bell and raise a desktop notification: new requests.
    Notify(crate::console::state::arrivals::Notification),
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
            announce(state)
        }
        Action::Backend(events) => {
            let before = state.begin_batch();
            for event in events {
                notice_arrival(state, &event);
                apply_event(state, event);
            }
            // The views follow each change as it is stored (no rebuild).
            state.keep_selection(before);
            state.recount_expiring();
            close_stale_dialog(state);
            announce(state)
        }
        Action::Resize(w, h) => {
            state.viewport = (w, h);
            Vec::new()
        }
        Action::OpFinished { kind, key, result } => {
            on_finished(state, kind, &key, result);
            if let Some(i) = state.acting.iter().position(|k| *k == key) {
                state.acting.swap_remove(i);
            }
            state.recount_expiring();
            Vec::new()
        }
    };
    for e in &effects {
        if let Effect::Apply { key, .. } = e {
            state.acting.push(key.clone());
        }
    }
    state.ensure_detail();
    effects
}

/// Queues a new pending request for the bell; forgets one decided or gone
/// before it was announced.
fn notice_arrival(state: &mut AppState, event: &BackendEvent) {
    if !state.config.notify {
        return;
    }
    match event {
        BackendEvent::Upsert(req) if req.phase() == Phase::Pending => {
            let cluster = state
                .cluster_names
                .get(&req.cluster)
                .unwrap_or(&req.cluster);
            state.arrivals.offer(req, &state.approver.user, cluster)
        }
        BackendEvent::Upsert(req) => state.arrivals.settled(&RequestKey::of(req)),
        BackendEvent::Removed(key) => state.arrivals.settled(key),
        _ => {}
    }
}

/// The notification due now, if any.
fn announce(state: &mut AppState) -> Vec<Effect> {
    if !state.config.notify {
        return Vec::new();
    }
    state
        .arrivals
        .due(state.now)
        .map(Effect::Notify)
        .into_iter()
        .collect()
}

fn apply_event(state: &mut AppState, event: BackendEvent) {
    match event {
        BackendEvent::Upsert(req) => state.upsert(*req),
        BackendEvent::Audit(record) => state.trail.push(record.event),
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
                    format!(
                        "cluster {}: {}",
                        inert(state.cluster_label(&cluster), 64),
                        inert(e, 200)
                    ),
                );
            }
            // Production by its context or its display name: either
            // saying "prod" earns the red frame.
            let production = state.config.production.is_match(&cluster)
                || state
                    .config
                    .production
                    .is_match(state.cluster_label(&cluster));
            state
                .clusters
                .insert(cluster, ClusterInfo { error, production });
        }
        BackendEvent::Limits { cluster, limits } => state.set_limits(cluster, limits),
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
            match &error {
                Some(e) if state.backend_error.is_none() => state.flash(
                    FlashLevel::Error,
                    format!(
                        "{} — retrying; what is shown may be out of date, and nothing can be decided until it is back",
                        inert(e, 200)
                    ),
                ),
                // Back: the message about it being down is no longer true.
                None if state.backend_error.is_some() => {
                    state.flash(FlashLevel::Success, "reconnected to the server")
                }
                _ => {}
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
    if let Some(mut batch) = state.batch.take() {
        let outcome = result.as_ref().map(|_| ()).map_err(Clone::clone);
        if batch.record(key, outcome) {
            if let Ok(req) = result {
                state.upsert(*req);
            }
            if !batch.finished() {
                state.batch = Some(batch);
            } else {
                let (error, text) = batch.summary();
                if error {
                    state.flash(FlashLevel::Error, text);
                } else if state
                    .flash
                    .as_ref()
                    .is_none_or(|f| f.level != FlashLevel::Error)
                {
                    state.flash(FlashLevel::Success, text);
                }
            }
            return;
        }
        state.batch = Some(batch);
    }
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
                        .map(|t| when::clock_utc(state.config.zone, state.now, t))
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
                OpKind::Release if req.phase() == crate::domain::Phase::Active => format!(
                    "Release of {name} asked: access remains until a reaper ends the grant"
                ),
                OpKind::Release => format!("Released {name}: your access ended now"),
                // The console never withdraws (the verbs do).
                OpKind::Withdraw => format!("Withdrew {name}"),
            };
            state.upsert(*req);
            if state
                .flash
                .as_ref()
                .is_none_or(|f| f.level != FlashLevel::Error)
            {
                state.flash(FlashLevel::Success, text);
            }
        }
        Err(e) => {
            // The server records refusals itself; elsewhere the console
            // keeps what it was refused in its own trail.
            if state.backend_kind != "http" {
                let refused = crate::audit::derive::refused(
                    Some(state.me_as_actor()),
                    state.now,
                    kind.verb(),
                    Some((&key.cluster, &key.name)),
                    0,
                    &e,
                );
                state.trail.push(refused);
            }
            state.flash(
                FlashLevel::Error,
                format!(
                    "could not {} {}: {}",
                    kind.verb(),
                    inert(&key.name, 64),
                    inert(&e, 300)
                ),
            )
        }
    }
}

/// What happened to a request a dialog is about, if it no longer is what
/// the dialog expects (pending for approve and deny, live for shorten and
/// revoke): "denied by erin", "withdrawn by judy", "gone".
fn moved_on(state: &AppState, key: &RequestKey, expect: Phase) -> Option<String> {
    let Some(e) = state.entries.get(key) else {
        return Some("is gone".into());
    };
    let r = &e.req;
    if r.phase() == expect {
        return None;
    }
    let by = |who: Option<&str>| {
        who.map(|w| format!(" by {}", inert(w, 64)))
            .unwrap_or_default()
    };
    let decided = r.status.decision.as_ref().map(|d| d.by.as_str());
    Some(match r.phase() {
        Phase::Active => format!("was approved{}", by(decided)),
        Phase::Denied => format!("was denied{}", by(decided)),
        Phase::Withdrawn => format!("was withdrawn by {}", inert(&r.requester.user, 64)),
        Phase::Released => format!("was released by {}", inert(&r.requester.user, 64)),
        Phase::Revoked => format!("was revoked{}", by(r.status.revoked_by.as_deref())),
        Phase::Expired => "expired (the reaper ended it)".into(),
        Phase::Failed => "failed".into(),
        Phase::Pending => "is pending again".into(),
    })
}

/// The requests an open dialog acts on, the phase they must be in, and
/// the kind of a bulk action.
fn dialog_targets(mode: &Mode) -> Option<(Vec<RequestKey>, Phase, Option<BulkKind>)> {
    Some(match mode {
        Mode::Approve(f) => (vec![f.key.clone()], Phase::Pending, None),
        Mode::Shorten(f) => (vec![f.key.clone()], Phase::Active, None),
        Mode::Reason(f) => (f.keys.clone(), f.kind.phase(), Some(f.kind)),
        Mode::Confirm(c) => match &c.op {
            PendingOp::Approve { key, .. } => (vec![key.clone()], Phase::Pending, None),
            PendingOp::Bulk { kind, keys, .. } => (keys.clone(), kind.phase(), Some(*kind)),
            PendingOp::Release { key } => (vec![key.clone()], Phase::Active, None),
        },
        _ => return None,
    })
}

/// A dialog whose request was decided, withdrawn or ended elsewhere
/// closes, and a notice says why (keys typed on meanwhile land there, not
/// on the list); a bulk dialog just leaves those requests out.
fn close_stale_dialog(state: &mut AppState) {
    // An approval names what its dialog showed: a request deleted and
    // asked again under the same name (or changed) is not that one.
    if let Mode::Confirm(c) = &state.mode {
        if let PendingOp::Approve { key, seen, .. } = &c.op {
            let changed = state
                .entries
                .get(key)
                .is_some_and(|e| e.req.phase() == Phase::Pending && Seen::of(&e.req) != *seen);
            if changed {
                let name = inert(&key.name, 64).into_owned();
                state.mode = Mode::Notice {
                    title: "Closed: nothing was changed".into(),
                    text: format!(
                        "{name} changed meanwhile (deleted and asked again, or edited), so the dialog closed; nothing was changed. Read it again before deciding."
                    ),
                    ignored: String::new(),
                };
                return;
            }
        }
    }
    let Some((keys, expect, bulk)) = dialog_targets(&state.mode) else {
        return;
    };
    let moved: Vec<(RequestKey, String)> = keys
        .iter()
        .filter_map(|k| moved_on(state, k, expect).map(|w| (k.clone(), w)))
        .collect();
    let Some((first, what)) = moved.first() else {
        return;
    };
    let more = match moved.len() {
        1 => String::new(),
        n => format!(" (and {} more changed)", n - 1),
    };
    let left: Vec<RequestKey> = keys
        .iter()
        .filter(|k| !moved.iter().any(|(m, _)| m == *k))
        .cloned()
        .collect();
    let name = inert(&first.name, 64).into_owned();
    match (bulk, left.is_empty()) {
        (Some(kind), false) => {
            let n = left.len();
            match &mut state.mode {
                Mode::Reason(f) => f.keys = left,
                Mode::Confirm(c) => {
                    let reason = match &c.op {
                        PendingOp::Bulk { reason, .. } => reason.clone(),
                        PendingOp::Approve { .. } | PendingOp::Release { .. } => String::new(),
                    };
                    *c = bulk_confirm(kind, left, reason);
                }
                _ => {}
            }
            state.flash(
                FlashLevel::Info,
                format!(
                    "{name} {what} meanwhile{more}: left out; {n} still to {}",
                    kind.verb().to_lowercase()
                ),
            );
        }
        _ => {
            state.mode = Mode::Notice {
                title: "Closed: nothing was changed".into(),
                text: format!(
                    "{name} {what} meanwhile{more}, so the dialog closed; nothing was changed."
                ),
                ignored: String::new(),
            };
        }
    }
}

fn is_ctrl_c(key: &KeyEvent) -> bool {
    key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL)
}

fn quit(state: &mut AppState) -> Vec<Effect> {
    state.should_quit = true;
    vec![Effect::Quit]
}

pub(super) fn line_input(placeholder: &str, text: &str) -> TextArea<'static> {
    let mut t = TextArea::new(vec![text.to_string()]);
    t.set_placeholder_text(placeholder.to_string());
    t.move_cursor(ratatui_textarea::CursorMove::End);
    t
}

pub(super) fn text_of(t: &TextArea<'static>) -> String {
    t.lines().join(" ")
}

/// Feeds a key to a one-line input: Enter and newlines never reach it.
pub(super) fn feed(t: &mut TextArea<'static>, key: KeyEvent) {
    if matches!(key.code, KeyCode::Enter)
        || (key.code == KeyCode::Char('m') && key.modifiers.contains(KeyModifiers::CONTROL))
    {
        return;
    }
    t.input(key);
}

/// How far a scroll may go: the content's rows past the visible ones,
/// unbounded while the terminal's size is unknown.
fn clamp_scroll(value: u16, max: Option<u16>) -> u16 {
    max.map_or(value, |m| value.min(m))
}

fn on_key(state: &mut AppState, key: KeyEvent) -> Vec<Effect> {
    if is_ctrl_c(&key) {
        return quit(state);
    }
    let mode = std::mem::replace(&mut state.mode, Mode::Normal);
    match mode {
        Mode::Normal => on_normal_key(state, key),
        Mode::Audit { filter, scroll } => on_audit_key(state, filter, scroll, key),
        Mode::Help { scroll } => on_help_key(state, scroll, key),
        Mode::Command {
            input,
            error,
            choices,
        } => on_command_key(state, input, error, choices, key),
        Mode::Filter { input } => on_filter_key(state, input, key),
        Mode::Full { key: which, scroll } => on_full_key(state, which, scroll, key),
        Mode::Reason(form) => forms::on_reason_key(state, form, key),
        Mode::Approve(form) => forms::on_approve_form_key(state, form, key),
        Mode::Shorten(form) => forms::on_shorten_key(state, form, key),
        Mode::Confirm(confirm) => forms::on_confirm_key(state, confirm, key),
        notice @ Mode::Notice { .. } => forms::on_notice_key(state, notice, key),
    }
}

/// The audit log: scroll, quit, back.
fn on_audit_key(state: &mut AppState, filter: Filter, scroll: u16, key: KeyEvent) -> Vec<Effect> {
    let max = crate::console::view::measure::audit_max_scroll(state, &filter);
    let scroll = match key.code {
        KeyCode::Char('q') => return quit(state),
        KeyCode::Esc => return Vec::new(),
        _ => scrolled(key, scroll, 10),
    };
    state.mode = Mode::Audit {
        filter,
        scroll: clamp_scroll(scroll, max),
    };
    Vec::new()
}

/// The help screen: scroll, quit, back.
fn on_help_key(state: &mut AppState, scroll: u16, key: KeyEvent) -> Vec<Effect> {
    let max = crate::console::view::measure::help_max_scroll(state);
    let scroll = match key.code {
        KeyCode::Char('q') => return quit(state),
        KeyCode::Esc | KeyCode::Char('?') => return Vec::new(),
        _ => scrolled(key, scroll, 10),
    };
    state.mode = Mode::Help {
        scroll: clamp_scroll(scroll, max),
    };
    Vec::new()
}

/// The `:` command line: run, complete, type.
fn on_command_key(
    state: &mut AppState,
    mut input: TextArea<'static>,
    error: Option<String>,
    choices: Option<Choices>,
    key: KeyEvent,
) -> Vec<Effect> {
    match key.code {
        KeyCode::Esc => Vec::new(),
        KeyCode::Enter => run_command(state, &text_of(&input)),
        KeyCode::Tab | KeyCode::BackTab => {
            let back = key.code == KeyCode::BackTab;
            let choices = tab_complete(state, &mut input, choices, back);
            state.mode = Mode::Command {
                input,
                error: None,
                choices,
            };
            Vec::new()
        }
        _ => {
            feed(&mut input, key);
            state.mode = Mode::Command {
                input,
                error: error.filter(|_| false),
                choices: None,
            };
            Vec::new()
        }
    }
}

/// Tab (or back-tab): the next choice or the line completed, shown in `input`.
fn tab_complete(
    state: &AppState,
    input: &mut TextArea<'static>,
    choices: Option<Choices>,
    back: bool,
) -> Option<Choices> {
    match choices {
        // Tab again: the next choice.
        Some(mut c) => {
            let n = c.items.len();
            c.shown = if back {
                (c.shown + n - 1) % n
            } else {
                (c.shown + 1) % n
            };
            *input = line_input("", &c.items[c.shown]);
            Some(c)
        }
        None => {
            let contexts: Vec<String> = state.clusters.keys().cloned().collect();
            let line = text_of(input);
            match command::complete(&line, &contexts) {
                Completion::Line(done) => {
                    *input = line_input("", &done);
                    None
                }
                Completion::Choices(items) => {
                    *input = line_input("", &items[0]);
                    Some(Choices {
                        base: line,
                        items,
                        shown: 0,
                    })
                }
                Completion::Nothing => None,
            }
        }
    }
}

/// The `/` filter line: type (the list follows), keep, clear.
fn on_filter_key(state: &mut AppState, mut input: TextArea<'static>, key: KeyEvent) -> Vec<Effect> {
    match key.code {
        KeyCode::Esc => set_filter(state, ""),
        // A filter that is not understood is not kept: say why.
        KeyCode::Enter if state.filter.error().is_some() => {
            state.mode = Mode::Filter { input };
        }
        KeyCode::Enter => {}
        _ => {
            feed(&mut input, key);
            set_filter(state, &text_of(&input));
            state.mode = Mode::Filter { input };
        }
    }
    Vec::new()
}

/// The full view of one request: scroll, copy, back.
fn on_full_key(state: &mut AppState, which: RequestKey, scroll: u16, key: KeyEvent) -> Vec<Effect> {
    let max = crate::console::view::measure::full_max_scroll(state, &which);
    let page = state.viewport.1.saturating_sub(6).max(1);
    let scroll = match key.code {
        KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') => return Vec::new(),
        KeyCode::Char('c') => {
            let effects = copy(state, &which);
            state.mode = Mode::Full { key: which, scroll };
            return effects;
        }
        _ => scrolled(key, scroll, page),
    };
    state.mode = Mode::Full {
        key: which,
        scroll: clamp_scroll(scroll, max),
    };
    Vec::new()
}

/// Where a scroll key takes a scrolled view (`page` rows a page; any other
/// key leaves it where it is): the same keys in the help, `:audit` and the
/// full view.
fn scrolled(key: KeyEvent, scroll: u16, page: u16) -> u16 {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Char('j') | KeyCode::Down => scroll.saturating_add(1),
        KeyCode::Char('k') | KeyCode::Up => scroll.saturating_sub(1),
        KeyCode::Char(' ') | KeyCode::PageDown => scroll.saturating_add(page),
        KeyCode::Char('d') if ctrl => scroll.saturating_add(page),
        KeyCode::Char('u') if ctrl => scroll.saturating_sub(page),
        KeyCode::PageUp => scroll.saturating_sub(page),
        KeyCode::Char('g') | KeyCode::Home => 0,
        KeyCode::Char('G') | KeyCode::End => u16::MAX,
        _ => scroll,
    }
}

/// `c`: the request's name to the clipboard, when the config allows it.
fn copy(state: &mut AppState, key: &RequestKey) -> Vec<Effect> {
    let name = inert(&key.name, 253).into_owned();
    if !state.config.osc52 {
        state.flash(
            FlashLevel::Info,
            format!("copy is off (set osc52 = true in config.toml); the name is {name}"),
        );
        return Vec::new();
    }
    state.flash(FlashLevel::Success, format!("copied {name}"));
    vec![Effect::Copy(name)]
}

fn set_filter(state: &mut AppState, text: &str) {
    state.set_filter(Filter::parse(text));
}

fn run_command(state: &mut AppState, line: &str) -> Vec<Effect> {
    match command::parse(line) {
        Ok(Command::Pending) => switch_view(state, View::Pending),
        Ok(Command::Grants) => switch_view(state, View::Grants),
        Ok(Command::History) => switch_view(state, View::History),
        Ok(Command::Help) => state.mode = Mode::Help { scroll: 0 },
        Ok(Command::Audit(terms)) => {
            let filter = crate::console::state::filter::Filter::parse(&terms);
            match filter.error() {
                Some(e) => state.flash(FlashLevel::Error, e.to_string()),
                None => state.mode = Mode::Audit { filter, scroll: 0 },
            }
        }
        Ok(Command::Quit) => return quit(state),
        Ok(Command::MarkAll) => mark_all(state),
        Ok(Command::Contexts) => {
            let list: Vec<String> = state
                .clusters
                .iter()
                .map(|(name, c)| {
                    let mut s = inert(name, 64).into_owned();
                    if c.production {
                        s.push_str(" [PROD]");
                    }
                    if c.error.is_some() {
                        s.push_str(" [failing]");
                    }
                    s
                })
                .collect();
            let now = match &state.context {
                Some(c) => format!("showing {}", inert(c, 64)),
                None => "showing all clusters".into(),
            };
            state.flash(
                FlashLevel::Info,
                format!(
                    "{} context{}: {}; {now} (:ctx NAME shows one, :ctx all all of them)",
                    list.len(),
                    if list.len() == 1 { "" } else { "s" },
                    list.join(", ")
                ),
            );
        }
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

/// `ctrl-a` / `:mark all`: every row of the current view's filter.
fn mark_all(state: &mut AppState) {
    if readonly_refusal(state, "marking for a bulk decision")
        || decision_refusal(state, "marking for a bulk decision")
    {
        return;
    }
    if state.view == View::History {
        state.flash(
            FlashLevel::Error,
            "marks are for a bulk deny (Pending) or revoke (Live grants)",
        );
        return;
    }
    let rows = state.list(state.view).to_vec();
    // One's own requests are withdrawn, never denied: left unmarked.
    let (own, rows): (Vec<_>, Vec<_>) = rows
        .into_iter()
        .partition(|k| state.view == View::Pending && is_own(state, k));
    let n = rows.len();
    state.marks.extend(rows);
    let what = if state.filter.is_empty() {
        "every row".to_string()
    } else {
        format!("every row of the filter {}", inert(&state.filter.text, 60))
    };
    let next = match state.view {
        View::Pending => "d denies them",
        _ => "r revokes them",
    };
    let own = match own.len() {
        0 => String::new(),
        1 => " (not your own request: withdraw it instead)".into(),
        k => format!(" (not your own {k}: withdraw them instead)"),
    };
    state.flash(
        FlashLevel::Info,
        format!("marked {n}: {what}{own}; {next}, esc clears the marks"),
    );
}

/// Why one's own pending request is never marked nor denied.
pub(super) const OWN_REQUEST: &str =
    "your own request is not yours to deny: withdraw it (`portcullis withdraw`)";

/// Whether `key` is the approver's own request.
pub(super) fn is_own(state: &AppState, key: &RequestKey) -> bool {
    state
        .entries
        .get(key)
        .is_some_and(|e| e.req.requester.user == state.approver.user)
}

fn switch_view(state: &mut AppState, view: View) {
    if state.view != view {
        state.marks.clear();
    }
    state.view = view;
}

fn move_cursor(state: &mut AppState, to: impl FnOnce(usize, usize) -> usize) {
    let i = state.view.index();
    let len = state.list(state.view).len();
    if len == 0 {
        state.cursor[i] = 0;
        return;
    }
    state.cursor[i] = to(state.cursor[i], len).min(len - 1);
}

/// Nothing can be sent while the server is unreachable: said up front,
/// not after a dialog's `y`.
pub(super) fn unreachable_refusal(state: &mut AppState, what: &str) -> bool {
    let Some(e) = &state.backend_error else {
        return false;
    };
    let text = format!("{what} waits for the server: {} (retrying)", inert(e, 120));
    state.flash(FlashLevel::Error, text);
    true
}

/// Deciding (approve, deny, shorten, revoke, marking for them) is for
/// approvers: a requester's console says so up front instead of opening a
/// dialog whose `y` would be refused; and nothing is decided while the
/// server is unreachable.
pub(super) fn decision_refusal(state: &mut AppState, what: &str) -> bool {
    if unreachable_refusal(state, what) {
        return true;
    }
    if !state.may_approve {
        state.flash(
            FlashLevel::Error,
            format!("you are a requester here: {what} is for approvers (R releases a grant of your own)"),
        );
    }
    !state.may_approve
}

pub(super) fn readonly_refusal(state: &mut AppState, what: &str) -> bool {
    if state.config.readonly {
        state.flash(
            FlashLevel::Error,
            format!("read-only console (--readonly): {what} is disabled"),
        );
    }
    state.config.readonly
}

/// The selected request left the list between keys: a key that acts on
/// the selection would land on whichever request moved under the cursor.
/// Held back once, saying so; any other key shows the user where they are
/// and clears it.
fn held_for_gone_selection(state: &mut AppState, action: KeyAction) -> bool {
    let Some(gone) = state.selection_gone.take() else {
        return false;
    };
    if !action.acts_on_selection() {
        return false;
    }
    let now_on = state
        .selected_key()
        .map(|k| format!("the cursor is on {} now", inert(&k.name, 64)))
        .unwrap_or_else(|| "this list is empty now".into());
    state.flash(
        FlashLevel::Error,
        format!(
            "{} left this list (decided or withdrawn elsewhere); {now_on}: nothing was done, press again to act on it",
            inert(&gone, 64)
        ),
    );
    true
}

/// `space`: mark or unmark the selected request for a bulk deny or
/// revoke (never one's own request), then move down.
fn toggle_mark(state: &mut AppState) {
    let Some(k) = state.selected_key().cloned() else {
        return;
    };
    if readonly_refusal(state, "marking for a bulk decision")
        || decision_refusal(state, "marking for a bulk decision")
    {
        return;
    }
    if state.view == View::Pending && is_own(state, &k) && !state.marks.contains(&k) {
        state.flash(FlashLevel::Error, OWN_REQUEST);
        return;
    }
    if !state.marks.remove(&k) {
        state.marks.insert(k);
    }
    move_cursor(state, |c, _| c + 1);
}

fn on_normal_key(state: &mut AppState, key: KeyEvent) -> Vec<Effect> {
    let Some(action) = keymap::lookup(state.view, &key) else {
        return Vec::new();
    };
    if held_for_gone_selection(state, action) {
        return Vec::new();
    }
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
        KeyAction::DetailDown | KeyAction::DetailUp => {
            if let Some(k) = state.selected_key().cloned() {
                let max = crate::console::view::measure::detail_max_scroll(state);
                let now = clamp_scroll(state.detail_scroll(), max);
                let next = if action == KeyAction::DetailDown {
                    clamp_scroll(now.saturating_add(3), max)
                } else {
                    now.saturating_sub(3)
                };
                if next == 0 {
                    state.scrolls.remove(&k);
                } else {
                    state.scrolls.insert(k, next);
                }
            }
        }
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
                input: line_input(
                    "pending | grants | history | ctx [NAME|all] | mark all | q",
                    "",
                ),
                error: None,
                choices: None,
            }
        }
        KeyAction::FilterMode => {
            // The filter in force, selected: typing starts a new one.
            state.mode = Mode::Filter {
                input: forms::selected_input(
                    "text  user:NAME  ns:NS  risk:high  cluster:NAME",
                    &state.filter.text,
                ),
            }
        }
        KeyAction::MarkAll => mark_all(state),
        KeyAction::OpenFull => {
            if let Some(k) = state.selected_key().cloned() {
                state.mode = Mode::Full { key: k, scroll: 0 };
            }
        }
        KeyAction::ToggleReads => {
            state.reads_expanded = !state.reads_expanded;
            // Rows appear or fold under the scroll: start from the top.
            state.scrolls.clear();
        }
        KeyAction::Copy => {
            if let Some(k) = state.selected_key().cloned() {
                return copy(state, &k);
            }
        }
        KeyAction::ToggleMark => toggle_mark(state),
        KeyAction::Approve | KeyAction::ApproveWithChanges => {
            let with_changes = action == KeyAction::ApproveWithChanges;
            forms::start_approve(state, with_changes);
        }
        KeyAction::Deny => forms::start_bulk(state, BulkKind::Deny),
        KeyAction::Revoke => forms::start_bulk(state, BulkKind::Revoke),
        KeyAction::Shorten => forms::start_shorten(state),
        KeyAction::Release => forms::start_release(state),
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    //! Action → state + effects, with no backend at all.

    use std::sync::Arc;
    use std::time::Duration;

    use crate::backend::ApproveSpec;
    use chrono::{DateTime, TimeDelta, Utc};
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    use super::*;
    use crate::backend::demo::org;
    use crate::console::state::app::AppConfig;
    use crate::domain::request::{Approval, Status};
    use crate::domain::{Credentials, RoleRef, Severity, Subject};

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn req(name: &str, user: &str, role: &str, ns: &[&str]) -> AccessRequest {
        AccessRequest {
            name: name.into(),
            uid: None,
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

    fn arrives(name: &str, user: &str, secs_after_start: i64) -> BackendEvent {
        let mut r = req(name, user, "edit", &["payments"]);
        r.created_at = t0() + TimeDelta::seconds(secs_after_start);
        BackendEvent::Upsert(Box::new(r))
    }

    fn notices(effects: Vec<Effect>) -> Vec<crate::console::state::arrivals::Notification> {
        effects
            .into_iter()
            .filter_map(|e| match e {
                Effect::Notify(n) => Some(n),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn cluster_display_names_in_the_notification_and_production_by_either_name() {
        let mut s = state(vec![]);
        s.cluster_names
            .insert("prod-eu-west".into(), "payments-live".into());
        let n = notices(update(
            &mut s,
            Action::Backend(vec![arrives("a", "alice", 1)]),
        ));
        assert_eq!(
            n[0].text,
            "new request: alice asks for edit in payments on payments-live"
        );
        // A context that does not say "prod" whose display name does.
        s.cluster_names.insert("ctx-7".into(), "prod-us".into());
        update(
            &mut s,
            Action::Backend(vec![BackendEvent::ClusterStatus {
                cluster: "ctx-7".into(),
                error: None,
            }]),
        );
        assert!(s.is_production("ctx-7"));
    }

    #[test]
    fn a_new_request_is_announced_once_batched_and_never_the_approvers_own() {
        // Already waiting at start (10 minutes old): on screen, not news.
        let mut s = state(vec![req("old", "alice", "edit", &["payments"])]);
        assert_eq!(s.counts.oldest_pending, Some(t0() - TimeDelta::minutes(10)));
        let n = notices(update(
            &mut s,
            Action::Backend(vec![arrives("a", "alice", 1)]),
        ));
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].count, 1);
        assert_eq!(
            n[0].text,
            "new request: alice asks for edit in payments on prod-eu-west"
        );
        // Seen again (a relist, a reconnect): nothing.
        s.now = t0() + TimeDelta::minutes(5);
        assert!(notices(update(
            &mut s,
            Action::Backend(vec![arrives("a", "alice", 1)])
        ))
        .is_empty());
        // The approver's own request: never.
        assert!(notices(update(
            &mut s,
            Action::Backend(vec![arrives("mine", "dana", 300)])
        ))
        .is_empty());
        // Many at once: one notification for all of them.
        let burst: Vec<BackendEvent> = (0..5)
            .map(|i| arrives(&format!("b{i}"), "bob", 300))
            .collect();
        let n = notices(update(&mut s, Action::Backend(burst)));
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].count, 5);
        assert!(
            n[0].text.starts_with("5 new requests: bob asks"),
            "{}",
            n[0].text
        );
        assert!(n[0].text.ends_with("; and 2 more"), "{}", n[0].text);
        // One more within the quiet time waits for the next tick after it.
        let burst_at = s.now;
        let at = |secs: i64| burst_at + TimeDelta::seconds(secs);
        s.now = at(1);
        let c = vec![arrives("c", "carol", 301)];
        assert!(notices(update(&mut s, Action::Backend(c))).is_empty());
        assert!(notices(update(&mut s, Action::Tick(at(2)))).is_empty());
        let n = notices(update(&mut s, Action::Tick(at(5))));
        assert_eq!((n.len(), n[0].count), (1, 1));
        assert!(notices(update(&mut s, Action::Tick(at(65)))).is_empty());
        // Decided (gone) before it was announced: not news any more.
        let d = vec![arrives("d", "erin", 400), BackendEvent::Removed(rk("d"))];
        assert!(notices(update(&mut s, Action::Backend(d))).is_empty());
        assert!(notices(update(&mut s, Action::Tick(at(200)))).is_empty());
    }

    #[test]
    fn notify_false_is_silent() {
        let mut s = state(vec![]);
        s.config.notify = false;
        assert!(notices(update(
            &mut s,
            Action::Backend(vec![arrives("a", "alice", 1)])
        ))
        .is_empty());
        assert!(notices(update(&mut s, Action::Tick(t0() + TimeDelta::minutes(1)))).is_empty());
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
        assert_eq!(
            s.entries.get(&rk("a")).unwrap().summary.worst,
            Some(Severity::Critical)
        );
        assert!(s
            .entries
            .get(&rk("b"))
            .unwrap()
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
    fn an_approve_dialog_closes_when_its_request_is_swapped_under_it() {
        let mut shown = req("a", "alice", "view", &["payments"]);
        shown.uid = Some("u1".into());
        let mut s = state(vec![shown]);
        assert!(update(&mut s, key('a')).is_empty());
        assert!(matches!(s.mode, Mode::Confirm(_)));
        // Deleted and asked again under the same name, for more.
        let mut swapped = req("a", "alice", "edit", &["payments"]);
        swapped.uid = Some("u2".into());
        let removed = BackendEvent::Removed(rk("a"));
        let back = BackendEvent::Upsert(Box::new(swapped));
        assert!(update(&mut s, Action::Backend(vec![removed, back])).is_empty());
        match &s.mode {
            Mode::Notice { text, .. } => assert!(text.contains("changed meanwhile"), "{text}"),
            other => panic!("the dialog closed with a notice, not {other:?}"),
        }
        // `y` now lands on the notice: nothing is approved.
        assert!(update(&mut s, key('y')).is_empty());
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
            vec![Effect::Apply {
                key: rk("a"),
                seen: Seen::of(&s.entries.get(&rk("a")).unwrap().req),
                op: Op::Approve(ApproveSpec {
                    duration: Duration::from_secs(1800),
                    namespaces: vec!["payments".into(), "orders".into()],
                    reason: None
                })
            }]
        );
        assert_eq!(s.in_flight(), 1);
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
        assert!(effects.iter().all(
            |e| matches!(e, Effect::Apply { op: Op::Deny { reason }, .. } if reason == "dup")
        ));
        assert!(s.marks.is_empty());
    }

    #[test]
    fn finished_operations_update_state_and_errors_stay() {
        let mut s = state(vec![req("a", "alice", "view", &["payments"])]);
        s.acting = vec![rk("a"), rk("a")];
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
        assert_eq!(s.in_flight(), 0);
        assert_eq!(s.entries.get(&rk("a")).unwrap().req.phase(), Phase::Denied);
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
