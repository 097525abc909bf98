//! Dialogs: confirmation, reason entry, approve with changes, shorten, and
//! the notice a closed dialog leaves. Text is wrapped here, so each dialog
//! is as tall as what it says (up to the screen) and its key hints always
//! show on its last row; an error wraps, never cut.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;
use ratatui_textarea::TextArea;

use super::{wrap, Theme};
use crate::console::state::app::QUICK_PICKS;
use crate::console::state::app::{
    ApproveForm, BulkKind, Confirm, PendingOp, ReasonForm, ShortenForm,
};
use crate::console::state::AppState;
use crate::domain::duration;
use crate::domain::sanitize::inert;

/// A rectangle of at most `width`×`height` centred in `area`.
pub(crate) fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width.saturating_sub(2)).max(1);
    let h = height.min(area.height.saturating_sub(2)).max(1);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn frame_block<'a>(title: String, theme: &Theme, danger: bool) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(if danger {
            theme.border_prod
        } else {
            theme.dialog_border
        })
        .title(Line::from(Span::styled(format!(" {title} "), theme.title)))
        .style(theme.dialog)
}

/// Key hints, wrapped into as many rows as `width` needs.
fn hints(theme: &Theme, items: &[(&str, &str)], width: u16) -> Vec<Line<'static>> {
    let mut spans = Vec::new();
    for (k, what) in items {
        spans.push(Span::styled(format!(" {k}"), theme.key));
        spans.push(Span::styled(format!(" {what} "), theme.label));
    }
    wrap::wrap_line(&Line::from(spans), width as usize, 1)
}

/// The width a dialog of at most `want` columns gets on this screen, and
/// its inside.
fn inner_width(area: Rect, want: u16) -> u16 {
    want.min(area.width.saturating_sub(2)).saturating_sub(2)
}

/// Draws a dialog: `body` rows at the top (scrolled off at the bottom when
/// the screen is short), `foot` rows always at the bottom.
fn draw(
    frame: &mut Frame,
    area: Rect,
    block: Block<'_>,
    width: u16,
    body: Vec<Line<'static>>,
    foot: Vec<Line<'static>>,
) {
    let height = (body.len() + foot.len()) as u16 + 2;
    let rect = centered(area, width, height);
    let inner = block.inner(rect);
    frame.render_widget(Clear, rect);
    frame.render_widget(block, rect);
    let foot_h = (foot.len() as u16).min(inner.height);
    let [top, bottom] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(foot_h)]).areas(inner);
    frame.render_widget(Paragraph::new(body), top);
    frame.render_widget(Paragraph::new(foot), bottom);
}

fn error_lines(error: &Option<String>, theme: &Theme, width: u16) -> Vec<Line<'static>> {
    match error {
        Some(e) => wrap::wrap_line(
            &Line::from(Span::styled(format!("✗ {}", inert(e, 600)), theme.error)),
            width as usize,
            2,
        ),
        None => Vec::new(),
    }
}

pub(crate) fn confirm(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme, c: &Confirm) {
    let (prod, approve) = match &c.op {
        PendingOp::Approve { key, .. } => (state.is_production(&key.cluster), true),
        _ => (false, false),
    };
    let w = inner_width(area, 100);
    let mut body: Vec<Line<'static>> = Vec::new();
    for l in &c.lines {
        body.extend(wrap::wrap_line(
            &Line::raw(inert(l, 2000).into_owned()),
            w as usize,
            9,
        ));
    }
    if let Some(note) = &c.note {
        body.extend(wrap::wrap_line(
            &Line::from(Span::styled(format!("✗ {}", inert(note, 300)), theme.error)),
            w as usize,
            2,
        ));
    }
    let pick_keys: Vec<String> = QUICK_PICKS.iter().map(|(k, _)| k.to_string()).collect();
    let pick_keys = pick_keys.join("/");
    let picks: Vec<String> = QUICK_PICKS
        .iter()
        .map(|(_, secs)| duration::format(std::time::Duration::from_secs(*secs)))
        .collect();
    let picks = format!("for {}", picks.join("/"));
    let mut keys: Vec<(&str, &str)> = vec![("y", "confirm")];
    if approve {
        keys.push((&pick_keys, &picks));
        keys.push(("e", "change"));
    } else if c.can_edit {
        keys.push(("e", "edit reason"));
    }
    keys.push(("n/esc", "cancel"));
    let mut foot = vec![Line::raw("")];
    foot.extend(hints(theme, &keys, w));
    let title = if prod {
        format!("{}  [PROD]", c.title)
    } else {
        c.title.clone()
    };
    draw(
        frame,
        area,
        frame_block(title, theme, prod),
        w + 2,
        body,
        foot,
    );
}

fn input_box<'a>(t: &TextArea<'static>, theme: &Theme) -> TextArea<'a> {
    let mut t: TextArea<'a> = t.clone();
    t.set_block(
        Block::default()
            .borders(Borders::ALL)
            .border_style(theme.border_focus),
    );
    t.set_cursor_line_style(ratatui::style::Style::default());
    t.set_style(theme.value);
    t.set_placeholder_style(theme.dim);
    t.set_selection_style(theme.selected);
    t
}

pub(crate) fn reason(
    frame: &mut Frame,
    area: Rect,
    _state: &AppState,
    theme: &Theme,
    f: &ReasonForm,
) {
    let what = match (f.kind, f.keys.len()) {
        (BulkKind::Deny, 1) => format!("Deny {}", inert(&f.keys[0].name, 64)),
        (BulkKind::Revoke, 1) => format!("Revoke {}", inert(&f.keys[0].name, 64)),
        (kind, n) => format!("{} {n} marked", kind.verb()),
    };
    let w = inner_width(area, 84);
    // Recent reasons: the one in the input marked, a few around it.
    let mut extra = Vec::new();
    if !f.recent.is_empty() {
        extra.push(Line::from(Span::styled(
            "Recent (tab/↑ older, ↓ newer; edit before enter):",
            theme.label,
        )));
        let from = f.recall.unwrap_or(0).saturating_sub(1);
        for (i, r) in f.recent.iter().enumerate().skip(from).take(3) {
            let on = f.recall == Some(i);
            extra.push(Line::from(Span::styled(
                format!(
                    "{} {}",
                    if on { "▶" } else { " " },
                    wrap::cut(&inert(r, 400), (w as usize).saturating_sub(2))
                ),
                if on { theme.selected } else { theme.dim },
            )));
        }
    }
    let dialog = InputDialog {
        title: what,
        danger: f.kind == BulkKind::Revoke,
        width: w + 2,
        label: "Reason (required):".into(),
        submit: "submit",
        extra,
    };
    dialog.render(frame, area, theme, &f.input, &f.error);
}

/// A dialog with one labelled input, lines below it, an error and key hints.
struct InputDialog {
    title: String,
    danger: bool,
    width: u16,
    label: String,
    submit: &'static str,
    extra: Vec<Line<'static>>,
}

impl InputDialog {
    fn render(
        self,
        frame: &mut Frame,
        area: Rect,
        theme: &Theme,
        input: &TextArea<'static>,
        error: &Option<String>,
    ) {
        let w = self.width.saturating_sub(2);
        let errors = error_lines(error, theme, w);
        let keys = hints(theme, &[("enter", self.submit), ("esc", "cancel")], w);
        let height = 1 + 3 + self.extra.len() as u16 + errors.len() as u16 + keys.len() as u16 + 2;
        let rect = centered(area, self.width, height);
        let block = frame_block(self.title, theme, self.danger);
        let inner = block.inner(rect);
        frame.render_widget(Clear, rect);
        frame.render_widget(block, rect);
        let [label, field, extra, err, foot] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(3),
            Constraint::Length(self.extra.len() as u16),
            Constraint::Min(0),
            Constraint::Length(keys.len() as u16),
        ])
        .areas(inner);
        frame.render_widget(Paragraph::new(Span::styled(self.label, theme.label)), label);
        frame.render_widget(&input_box(input, theme), field);
        frame.render_widget(Paragraph::new(self.extra), extra);
        frame.render_widget(Paragraph::new(errors), err);
        frame.render_widget(Paragraph::new(keys), foot);
    }
}

pub(crate) fn approve_form(
    frame: &mut Frame,
    area: Rect,
    state: &AppState,
    theme: &Theme,
    f: &ApproveForm,
) {
    let asked = state
        .entries
        .get(&f.key)
        .map(|e| duration::format(e.req.duration))
        .unwrap_or_default();
    let w = inner_width(area, 76);
    let rows = f.namespaces.len().max(1) as u16;
    let errors = error_lines(&f.error, theme, w);
    let keys = hints(
        theme,
        &[
            ("tab/↑↓", "move"),
            ("space", "toggle"),
            ("enter", "review"),
            ("esc", "cancel"),
        ],
        w,
    );
    let height = 1 + 3 + 1 + rows + errors.len() as u16 + keys.len() as u16 + 2;
    let rect = centered(area, w + 2, height);
    let block = frame_block(
        format!("Approve {} with changes", inert(&f.key.name, 48)),
        theme,
        state.is_production(&f.key.cluster),
    );
    let inner = block.inner(rect);
    frame.render_widget(Clear, rect);
    frame.render_widget(block, rect);
    let [label, input, ns_label, ns, err, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(3),
        Constraint::Length(1),
        Constraint::Length(rows),
        Constraint::Min(0),
        Constraint::Length(keys.len() as u16),
    ])
    .areas(inner);
    let focus = |on: bool| if on { theme.selected } else { theme.label };
    frame.render_widget(
        Paragraph::new(Span::styled(
            format!("Duration (at most {asked}; typing replaces it):"),
            focus(f.focus == 0),
        )),
        label,
    );
    frame.render_widget(&input_box(&f.duration, theme), input);
    frame.render_widget(
        Paragraph::new(Span::styled("Namespaces (space toggles):", theme.label)),
        ns_label,
    );
    let ns_lines: Vec<Line> = if f.namespaces.is_empty() {
        vec![Line::from(Span::styled(
            "  cluster-wide (cannot be narrowed here: deny and ask for namespaces)",
            theme.dim,
        ))]
    } else {
        f.namespaces
            .iter()
            .enumerate()
            .map(|(i, (name, keep))| {
                let style = if f.focus == i + 1 {
                    theme.selected
                } else {
                    theme.value
                };
                Line::from(Span::styled(
                    format!("  [{}] {}", if *keep { "x" } else { " " }, inert(name, 64)),
                    style,
                ))
            })
            .collect()
    };
    frame.render_widget(Paragraph::new(ns_lines), ns);
    frame.render_widget(Paragraph::new(errors), err);
    frame.render_widget(Paragraph::new(keys), foot);
}

pub(crate) fn shorten(
    frame: &mut Frame,
    area: Rect,
    state: &AppState,
    theme: &Theme,
    f: &ShortenForm,
) {
    let left = state
        .entries
        .get(&f.key)
        .map(|e| duration::format(e.req.remaining(state.now)))
        .unwrap_or_default();
    let w = inner_width(area, 72);
    let dialog = InputDialog {
        title: format!("Shorten {}", inert(&f.key.name, 48)),
        danger: false,
        width: w + 2,
        label: format!("End in (now {left} left; only sooner; typing replaces):"),
        submit: "shorten",
        extra: Vec::new(),
    };
    dialog.render(frame, area, theme, &f.input, &f.error);
}

pub(crate) fn notice(
    frame: &mut Frame,
    area: Rect,
    theme: &Theme,
    title: &str,
    text: &str,
    ignored: &str,
) {
    let w = inner_width(area, 72);
    let mut body = wrap::wrap_line(
        &Line::from(Span::styled(inert(text, 600).into_owned(), theme.value)),
        w as usize,
        0,
    );
    if !ignored.is_empty() {
        body.push(Line::raw(""));
        body.extend(wrap::wrap_line(
            &Line::from(Span::styled(
                format!("held here, not sent: {ignored}"),
                theme.error,
            )),
            w as usize,
            0,
        ));
    }
    let mut foot = vec![Line::raw("")];
    foot.extend(hints(theme, &[("esc/enter", "ok")], w));
    draw(
        frame,
        area,
        frame_block(title.to_string(), theme, false),
        w + 2,
        body,
        foot,
    );
}
