//! Dialogs: confirmation, reason entry, approve with changes, shorten.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;
use ratatui_textarea::TextArea;

use super::Theme;
use crate::app::state::{ApproveForm, BulkKind, Confirm, ReasonForm, ShortenForm};
use crate::app::AppState;
use crate::domain::duration;
use crate::domain::sanitize::inert;

/// A rectangle of at most `width`×`height` centred in `area`.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
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

fn hints<'a>(theme: &Theme, items: &[(&'a str, &'a str)]) -> Line<'a> {
    let mut spans = Vec::new();
    for (k, what) in items {
        spans.push(Span::styled(format!(" {k}"), theme.key));
        spans.push(Span::styled(format!(" {what} "), theme.label));
    }
    Line::from(spans)
}

pub fn confirm(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme, c: &Confirm) {
    let prod = match &c.op {
        crate::app::state::PendingOp::Approve { key, .. } => state.is_production(&key.cluster),
        _ => false,
    };
    let height = c.lines.len() as u16 + 5;
    let rect = centered(area, 96, height);
    let mut lines: Vec<Line> = c
        .lines
        .iter()
        .map(|l| Line::raw(inert(l, 400).into_owned()))
        .collect();
    lines.push(Line::raw(""));
    let mut keys = vec![("y", "confirm")];
    if c.can_edit {
        keys.push(("e", "change (shorter / fewer namespaces)"));
    }
    keys.push(("n/esc", "cancel"));
    lines.push(hints(theme, &keys));
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(frame_block(
                if prod {
                    format!("{}  [PROD]", c.title)
                } else {
                    c.title.clone()
                },
                theme,
                prod,
            )),
        rect,
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
    t
}

fn error_line<'a>(error: &Option<String>, theme: &Theme) -> Line<'a> {
    match error {
        Some(e) => Line::from(Span::styled(format!("✗ {}", inert(e, 200)), theme.error)),
        None => Line::raw(""),
    }
}

pub fn reason(frame: &mut Frame, area: Rect, _state: &AppState, theme: &Theme, f: &ReasonForm) {
    let what = match (f.kind, f.keys.len()) {
        (BulkKind::Deny, 1) => format!("Deny {}", inert(&f.keys[0].name, 64)),
        (BulkKind::Revoke, 1) => format!("Revoke {}", inert(&f.keys[0].name, 64)),
        (kind, n) => format!("{} {n} marked", kind.verb()),
    };
    let dialog = InputDialog {
        title: what,
        danger: f.kind == BulkKind::Revoke,
        width: 80,
        label: "Reason (required):".into(),
        submit: "submit",
    };
    dialog.render(frame, area, theme, &f.input, &f.error);
}

/// A dialog with one labelled input, an error line and key hints.
struct InputDialog {
    title: String,
    danger: bool,
    width: u16,
    label: String,
    submit: &'static str,
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
        let rect = centered(area, self.width, 9);
        let block = frame_block(self.title, theme, self.danger);
        let inner = block.inner(rect);
        frame.render_widget(Clear, rect);
        frame.render_widget(block, rect);
        let [label, field, err, keys] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(3),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .areas(inner);
        frame.render_widget(Paragraph::new(Span::styled(self.label, theme.label)), label);
        frame.render_widget(&input_box(input, theme), field);
        frame.render_widget(Paragraph::new(error_line(error, theme)), err);
        frame.render_widget(
            Paragraph::new(hints(theme, &[("enter", self.submit), ("esc", "cancel")])),
            keys,
        );
    }
}

pub fn approve_form(
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
    let rows = f.namespaces.len().max(1) as u16;
    let rect = centered(area, 72, rows + 10);
    let block = frame_block(
        format!("Approve {} with changes", inert(&f.key.name, 48)),
        theme,
        state.is_production(&f.key.cluster),
    );
    let inner = block.inner(rect);
    frame.render_widget(Clear, rect);
    frame.render_widget(block, rect);
    let [label, input, ns_label, ns, err, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(3),
        Constraint::Length(1),
        Constraint::Length(rows),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    let focus = |on: bool| if on { theme.selected } else { theme.label };
    frame.render_widget(
        Paragraph::new(Span::styled(
            format!("Duration (at most {asked}):"),
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
    frame.render_widget(Paragraph::new(error_line(&f.error, theme)), err);
    frame.render_widget(
        Paragraph::new(hints(
            theme,
            &[
                ("tab/↑↓", "move"),
                ("space", "toggle"),
                ("enter", "review"),
                ("esc", "cancel"),
            ],
        )),
        keys,
    );
}

pub fn shorten(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme, f: &ShortenForm) {
    let left = state
        .entries
        .get(&f.key)
        .map(|e| duration::format(e.req.remaining(state.now)))
        .unwrap_or_default();
    let dialog = InputDialog {
        title: format!("Shorten {}", inert(&f.key.name, 48)),
        danger: false,
        width: 72,
        label: format!("End in (now {left} left; only sooner):"),
        submit: "shorten",
    };
    dialog.render(frame, area, theme, &f.input, &f.error);
}
