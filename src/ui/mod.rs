//! Rendering only: every function here reads [`AppState`] and draws. No
//! state changes, no IO. Text that came from a requester or a backend goes
//! through [`crate::domain::sanitize`] before it reaches a cell.

pub mod detail;
pub mod dialogs;
pub mod help;
pub mod table;
pub mod theme;

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

pub use theme::Theme;

use crate::app::keymap;
use crate::app::state::{FlashLevel, Mode, View};
use crate::app::AppState;
use crate::domain::sanitize::inert;

/// Below this the console shows a notice instead of a broken layout.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 15;
/// Below this width the list and the detail pane stack vertically.
pub const SIDE_BY_SIDE_WIDTH: u16 = 100;

pub fn render(frame: &mut Frame, state: &AppState, theme: &Theme) {
    let area = frame.area();
    frame.render_widget(Block::default().style(theme.base), area);
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        render_too_small(frame, area, theme);
        return;
    }
    let flash_rows = u16::from(state.flash.is_some());
    let [header, body, flash, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(5),
        Constraint::Length(flash_rows),
        Constraint::Length(1),
    ])
    .areas(area);
    render_header(frame, header, state, theme);
    let (list_area, detail_area) = if area.width >= SIDE_BY_SIDE_WIDTH {
        let [l, d] = Layout::horizontal([Constraint::Percentage(56), Constraint::Percentage(44)])
            .areas(body);
        (l, d)
    } else {
        let [l, d] =
            Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(body);
        (l, d)
    };
    table::render(frame, list_area, state, theme);
    detail::render(frame, detail_area, state, theme);
    if let Some(f) = &state.flash {
        let (style, icon) = match f.level {
            FlashLevel::Error => (theme.error, "✗ "),
            FlashLevel::Success => (theme.success, "✓ "),
            FlashLevel::Info => (theme.notice, "· "),
        };
        let hint = if f.level == FlashLevel::Error {
            "  (esc to dismiss)"
        } else {
            ""
        };
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(format!("{icon}{}", inert(&f.text, 400)), style),
                Span::styled(hint, theme.dim),
            ])),
            flash,
        );
    }
    render_footer(frame, footer, state, theme);
    match &state.mode {
        Mode::Help { scroll } => help::render(frame, area, state, theme, *scroll),
        Mode::Confirm(c) => dialogs::confirm(frame, area, state, theme, c),
        Mode::Reason(f) => dialogs::reason(frame, area, state, theme, f),
        Mode::Approve(f) => dialogs::approve_form(frame, area, state, theme, f),
        Mode::Shorten(f) => dialogs::shorten(frame, area, state, theme, f),
        Mode::Normal | Mode::Command { .. } | Mode::Filter { .. } => {}
    }
}

fn render_too_small(frame: &mut Frame, area: Rect, theme: &Theme) {
    let text = vec![
        Line::from(Span::styled("Terminal too small", theme.title)),
        Line::from(format!(
            "{}×{}: Portcullis needs at least {MIN_WIDTH}×{MIN_HEIGHT}",
            area.width, area.height
        )),
        Line::from(Span::styled("enlarge the window, or q to quit", theme.dim)),
    ];
    let y = area.height.saturating_sub(3) / 2;
    let rect = Rect {
        x: area.x,
        y: area.y + y,
        width: area.width,
        height: area.height.min(3),
    };
    frame.render_widget(
        Paragraph::new(text)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true }),
        rect,
    );
}

fn render_header(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let [top, tabs] = Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(area);
    // Narrow terminals get the compact header: the counts and badges matter
    // more than the approver's groups.
    let compact = area.width < 120;
    let ctx = match (&state.context, compact) {
        (Some(c), _) => inert(c, 64).into_owned(),
        (None, false) => match state.clusters.len() {
            1 => "all (1 cluster)".to_string(),
            n => format!("all ({n} clusters)"),
        },
        (None, true) => "all".into(),
    };
    let failing = state
        .clusters
        .values()
        .filter(|c| c.error.is_some())
        .count();
    // Every authenticated user has system:authenticated: not worth a column.
    let groups: Vec<&str> = state
        .approver
        .groups
        .iter()
        .map(String::as_str)
        .filter(|g| *g != "system:authenticated")
        .collect();
    let approver = if compact || groups.is_empty() {
        inert(&state.approver.user, 24).into_owned()
    } else {
        format!(
            "{} [{}]",
            inert(&state.approver.user, 32),
            inert(&groups.join(","), 48)
        )
    };
    let mut spans = vec![
        Span::styled(" Portcullis ", theme.header_key),
        Span::styled(format!(" ctx: {ctx} "), theme.header),
        Span::styled(format!(" approver: {approver} "), theme.header),
    ];
    if state.identity_note.is_some() {
        spans.push(Span::styled(" identity unverified ", theme.error));
    }
    if state.backend_error.is_some() {
        spans.push(Span::styled(" server unreachable ", theme.error));
    }
    if !compact {
        spans.push(Span::styled(
            format!(" {} ", state.backend_kind),
            theme.header,
        ));
    }
    spans.push(Span::styled(
        format!(
            " pending {}  live {}  expiring {} ",
            state.counts.pending, state.counts.live, state.counts.expiring
        ),
        theme.header_key,
    ));
    if failing > 0 {
        spans.push(Span::styled(
            format!(" {failing} cluster(s) failing "),
            theme.error,
        ));
    }
    if state.production_in_view() {
        spans.push(Span::raw(" "));
        spans.push(Span::styled(" PROD ", theme.badge_prod));
    }
    if state.config.readonly {
        spans.push(Span::raw(" "));
        spans.push(Span::styled(" READ-ONLY ", theme.badge_prod));
    }
    if state.in_flight > 0 {
        spans.push(Span::styled(
            format!(" working… ({}) ", state.in_flight),
            theme.notice,
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)).style(theme.header), top);

    let mut tab_spans = Vec::new();
    for (i, view) in View::ALL.iter().enumerate() {
        let count = match view {
            View::Pending => state.list(View::Pending).len(),
            View::Grants => state.list(View::Grants).len(),
            View::History => state.list(View::History).len(),
        };
        let style = if *view == state.view {
            theme.tab_active
        } else {
            theme.tab_inactive
        };
        tab_spans.push(Span::styled(
            format!(" {} {} ({count}) ", i + 1, view.title()),
            style,
        ));
        tab_spans.push(Span::raw(" "));
    }
    if !state.filter.is_empty() {
        tab_spans.push(Span::styled(
            format!(" filter: {} ", inert(&state.filter.text, 60)),
            theme.notice,
        ));
    }
    if !state.marks.is_empty() {
        tab_spans.push(Span::styled(
            format!(" {} marked ", state.marks.len()),
            theme.marked,
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(tab_spans)), tabs);
}

fn render_footer(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let input_line = |prefix: &str, text: String, hint: &str| {
        Line::from(vec![
            Span::styled(prefix.to_string(), theme.key),
            Span::raw(inert(&text, 200).into_owned()),
            Span::styled("█", theme.key),
            Span::styled(format!("   {hint}"), theme.dim),
        ])
    };
    let line = match &state.mode {
        Mode::Command { input, .. } => input_line(
            ":",
            input.lines().join(""),
            "enter run · tab complete · esc cancel",
        ),
        Mode::Filter { input } => input_line(
            "/",
            input.lines().join(""),
            "enter keep · esc clear · user: ns: risk: cluster: role:",
        ),
        _ => {
            let mut spans = Vec::new();
            for b in keymap::footer(state.view, state.config.readonly) {
                spans.push(Span::styled(format!(" {}", b.label), theme.key));
                spans.push(Span::styled(format!(" {} ", b.name), theme.label));
            }
            Line::from(spans)
        }
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// A bordered block, red with a `PROD` badge when production is in view.
pub(crate) fn pane<'a>(title: Line<'a>, production: bool, theme: &Theme) -> Block<'a> {
    let mut block = Block::default()
        .borders(Borders::ALL)
        .border_style(if production {
            theme.border_prod
        } else {
            theme.border
        })
        .title(title);
    if production {
        block =
            block.title_top(Line::from(Span::styled(" PROD ", theme.badge_prod)).right_aligned());
    }
    block
}

pub(crate) fn severity_style(theme: &Theme, s: crate::domain::Severity) -> Style {
    use crate::domain::Severity::*;
    match s {
        Critical => theme.critical,
        High => theme.high,
        Medium => theme.medium,
        Info => theme.info,
    }
}
