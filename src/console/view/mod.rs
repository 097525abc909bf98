//! Rendering only: every function here reads [`AppState`] and draws. No
//! state changes, no IO. Text that came from a requester or a backend goes
//! through [`crate::domain::sanitize`] before it reaches a cell.

pub(crate) mod audit;
pub mod clipboard;
pub(crate) mod columns;
pub mod detail;
pub(crate) mod dialogs;
pub(crate) mod full;
pub(crate) mod help;
pub(crate) mod measure;
pub(crate) mod notify;
pub mod table;
pub mod theme;
pub(crate) mod wrap;

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;
use ratatui_textarea::TextArea;

pub use theme::Theme;

use crate::console::state::app::{FlashLevel, Mode, View};
use crate::console::state::keymap;
use crate::console::state::when;
use crate::console::state::AppState;
use crate::domain::sanitize::inert;

/// Below this the console shows a notice instead of a broken layout.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 15;
/// Below this width the list and the detail pane stack vertically: side
/// by side, the list needs about 80 columns to show every column whole.
pub const SIDE_BY_SIDE_WIDTH: u16 = 140;

/// Where each part of the screen goes.
pub struct Areas {
    pub header: Rect,
    pub list: Rect,
    pub detail: Rect,
    pub flash: Rect,
    pub footer: Rect,
}

/// Most rows the message line may take (it wraps; only a message longer
/// than a quarter of the screen is cut, its dismiss hint kept).
fn flash_rows(area: Rect) -> usize {
    (area.height as usize / 4).max(3)
}
const DISMISS: &str = "  (esc to dismiss)";

/// The message line's text: icon, message, and the dismiss hint on errors.
fn flash_text(state: &AppState) -> Option<(FlashLevel, String)> {
    let f = state.flash.as_ref()?;
    let icon = match f.level {
        FlashLevel::Error => "✗ ",
        FlashLevel::Success => "✓ ",
        FlashLevel::Info => "· ",
    };
    let hint = if f.level == FlashLevel::Error {
        DISMISS
    } else {
        ""
    };
    Some((f.level, format!("{icon}{}{hint}", inert(&f.text, 1200))))
}

/// The screen's layout for `area`, or None when it is too small.
pub fn layout(area: Rect, state: &AppState) -> Option<Areas> {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        return None;
    }
    let flash_rows = flash_text(state).map_or(0, |(_, text)| {
        wrap::wrap(&text, area.width as usize)
            .len()
            .min(flash_rows(area)) as u16
    });
    let [header, body, flash, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(5),
        Constraint::Length(flash_rows),
        Constraint::Length(1),
    ])
    .areas(area);
    let (list, detail) = if area.width >= SIDE_BY_SIDE_WIDTH {
        let [l, d] = Layout::horizontal([Constraint::Percentage(56), Constraint::Percentage(44)])
            .areas(body);
        (l, d)
    } else {
        // Stacked: the list takes what its rows need, at most two fifths;
        // the detail (the verdict, the reason, the worst permissions)
        // gets the rest.
        let rows = state.list(state.view).len().max(1) as u16 + 3;
        let most = (body.height * 2 / 5).max(5);
        let [l, d] =
            Layout::vertical([Constraint::Length(rows.min(most)), Constraint::Min(3)]).areas(body);
        (l, d)
    };
    Some(Areas {
        header,
        list,
        detail,
        flash,
        footer,
    })
}

pub fn render(frame: &mut Frame, state: &AppState, theme: &Theme) {
    let area = frame.area();
    frame.render_widget(Block::default().style(theme.base), area);
    let Some(areas) = layout(area, state) else {
        render_too_small(frame, area, theme);
        return;
    };
    render_header(frame, areas.header, state, theme);
    table::render(frame, areas.list, state, theme);
    detail::render(frame, areas.detail, state, theme);
    if let Some((level, text)) = flash_text(state) {
        let style = match level {
            FlashLevel::Error => theme.error,
            FlashLevel::Success => theme.success,
            FlashLevel::Info => theme.notice,
        };
        let mut rows = wrap::wrap(&text, areas.flash.width as usize);
        if rows.len() > areas.flash.height as usize {
            // Longer than the line can hold: keep the start and the hint.
            rows.truncate(areas.flash.height as usize);
            let last = rows.last_mut().expect("rows");
            let keep = (areas.flash.width as usize).saturating_sub(wrap::width(DISMISS) + 1);
            *last = format!(
                "{}{}",
                wrap::cut(last, keep),
                if level == FlashLevel::Error {
                    DISMISS
                } else {
                    "…"
                }
            );
        }
        let lines: Vec<Line> = rows
            .into_iter()
            .map(|r| {
                // The dismiss hint, dim, wherever it wrapped to.
                match r
                    .strip_suffix(DISMISS.trim_start())
                    .filter(|_| level == FlashLevel::Error)
                {
                    Some(head) => Line::from(vec![
                        Span::styled(head.to_string(), style),
                        Span::styled(DISMISS.trim_start().to_string(), theme.dim),
                    ]),
                    None => Line::from(Span::styled(r, style)),
                }
            })
            .collect();
        frame.render_widget(Paragraph::new(lines), areas.flash);
    }
    render_footer(frame, areas.footer, state, theme);
    match &state.mode {
        Mode::Help { scroll } => help::render(frame, area, state, theme, *scroll),
        Mode::Audit { filter, scroll } => audit::render(frame, area, state, theme, filter, *scroll),
        Mode::Confirm(c) => dialogs::confirm(frame, area, state, theme, c),
        Mode::Reason(f) => dialogs::reason(frame, area, state, theme, f),
        Mode::Approve(f) => dialogs::approve_form(frame, area, state, theme, f),
        Mode::Shorten(f) => dialogs::shorten(frame, area, state, theme, f),
        Mode::Notice {
            title,
            text,
            ignored,
        } => dialogs::notice(frame, area, theme, title, text, ignored),
        Mode::Full { key, scroll } => full::render(frame, area, state, theme, key, *scroll),
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
    let spans = header_spans(state, theme, compact, top.width);
    frame.render_widget(Paragraph::new(Line::from(spans)).style(theme.header), top);
    frame.render_widget(
        Paragraph::new(Line::from(tab_spans(state, theme, tabs.width))),
        tabs,
    );
}

/// The header's first row: who and where, the counts, then the badges;
/// what does not fit the width goes, least needed first (the badges and
/// the counts stay: a badge cut to `RE` says nothing).
fn header_spans(state: &AppState, theme: &Theme, compact: bool, width: u16) -> Vec<Span<'static>> {
    let ctx = context_label(state, compact);
    let approver = approver_label(state, compact);
    // (how dispensable: 0 never goes, higher goes first; the span)
    let mut spans: Vec<(u8, Span<'static>)> = vec![
        (4, Span::styled(" Portcullis ", theme.header_key)),
        (2, Span::styled(format!(" ctx: {ctx} "), theme.header)),
        (
            3,
            Span::styled(format!(" {}: {approver} ", state.role_word()), theme.header),
        ),
    ];
    if state.identity_note.is_some() {
        spans.push((0, Span::styled(" identity unverified ", theme.error)));
    }
    if state.backend_error.is_some() {
        spans.push((0, Span::styled(" server unreachable ", theme.error)));
    }
    if !compact {
        spans.push((
            5,
            Span::styled(format!(" {} ", state.backend_kind), theme.header),
        ));
    }
    spans.push((
        1,
        Span::styled(
            format!(
                " pending {}  live {}  expiring {} ",
                state.counts.pending, state.counts.live, state.counts.expiring
            ),
            theme.header_key,
        ),
    ));
    header_badges(state, theme, &mut spans);
    let total = |s: &[(u8, Span<'static>)]| -> usize {
        s.iter().map(|(_, sp)| wrap::width(&sp.content)).sum()
    };
    while total(&spans) > width as usize {
        let Some(i) = spans
            .iter()
            .enumerate()
            .filter(|(_, (p, _))| *p > 0)
            .max_by_key(|(i, (p, _))| (*p, *i))
            .map(|(i, _)| i)
        else {
            break;
        };
        spans.remove(i);
    }
    spans.into_iter().map(|(_, s)| s).collect()
}

/// The cluster context shown: one cluster's label, or all of them.
fn context_label(state: &AppState, compact: bool) -> String {
    match (&state.context, compact) {
        (Some(c), _) => inert(state.cluster_label(c), 64).into_owned(),
        (None, false) => match state.clusters.len() {
            1 => "all (1 cluster)".to_string(),
            n => format!("all ({n} clusters)"),
        },
        (None, true) => "all".into(),
    }
}

/// The approver, with their groups where there is room.
fn approver_label(state: &AppState, compact: bool) -> String {
    // Groups every user of their kind has: not worth a column.
    let groups: Vec<&str> = state.approver.declared_groups().collect();
    if compact || groups.is_empty() {
        inert(&state.approver.user, 24).into_owned()
    } else {
        format!(
            "{} [{}]",
            inert(&state.approver.user, 32),
            inert(&groups.join(","), 48)
        )
    }
}

/// The badges after the counts: failing clusters, PROD, READ-ONLY, work in flight.
fn header_badges(state: &AppState, theme: &Theme, spans: &mut Vec<(u8, Span<'static>)>) {
    let failing = state
        .clusters
        .values()
        .filter(|c| c.error.is_some())
        .count();
    if failing > 0 {
        spans.push((
            0,
            Span::styled(format!(" {failing} cluster(s) failing "), theme.error),
        ));
    }
    if state.production_in_view() {
        spans.push((0, Span::raw(" ")));
        spans.push((0, Span::styled(" PROD ", theme.badge_prod)));
    }
    if state.config.readonly {
        spans.push((0, Span::raw(" ")));
        spans.push((0, Span::styled(" READ-ONLY ", theme.badge_prod)));
    }
    if state.in_flight() > 0 {
        spans.push((
            1,
            Span::styled(format!(" working… ({}) ", state.in_flight()), theme.notice),
        ));
    }
}

/// The header's second row: a tab per view with its count, the filter, the marks.
fn tab_spans(state: &AppState, theme: &Theme, width: u16) -> Vec<Span<'static>> {
    // The filter and the marks are never cut: the tabs say less first
    // (no "oldest", then the short titles).
    let mut tail = Vec::new();
    if !state.filter.is_empty() {
        tail.push(Span::styled(
            format!(" filter: {} ", inert(&state.filter.text, 60)),
            theme.notice,
        ));
    }
    if !state.marks.is_empty() {
        tail.push(Span::styled(
            format!(" {} marked ", state.marks.len()),
            theme.marked,
        ));
    }
    let tail_w: usize = tail.iter().map(|s| wrap::width(&s.content)).sum();
    let mut spans = Vec::new();
    for level in 0..3 {
        spans = tabs(state, theme, level);
        let w: usize = spans.iter().map(|s| wrap::width(&s.content)).sum();
        if w + tail_w <= width as usize {
            break;
        }
    }
    spans.extend(tail);
    spans
}

/// The view tabs, saying less at each `level`: 0 all, 1 without how long
/// the oldest has waited, 2 with short titles.
fn tabs(state: &AppState, theme: &Theme, level: u8) -> Vec<Span<'static>> {
    let mut spans = Vec::new();
    for (i, view) in View::ALL.iter().enumerate() {
        let count = state.list(*view).len();
        let style = if *view == state.view {
            theme.tab_active
        } else {
            theme.tab_inactive
        };
        // How long the longest-waiting requester has waited.
        let oldest = match (view, state.counts.oldest_pending) {
            (View::Pending, Some(at)) if level == 0 => {
                format!(", oldest {}", when::age(state.now - at))
            }
            _ => String::new(),
        };
        let title = match (level, view) {
            (2, View::Grants) => "Live",
            _ => view.title(),
        };
        spans.push(Span::styled(
            format!(" {} {title} ({count}{oldest}) ", i + 1),
            style,
        ));
        spans.push(Span::raw(" "));
    }
    spans
}

/// A one-line input as the footer shows it: the text, a selection in
/// reverse video (typing replaces it), the cursor.
fn input_spans<'a>(input: &TextArea<'static>, theme: &Theme) -> Vec<Span<'a>> {
    let text = input.lines().join("");
    let text = inert(&text, 200).into_owned();
    match input.selection_range() {
        Some(((_, from), (_, to))) if from < to => {
            let chars: Vec<char> = text.chars().collect();
            let (from, to) = (from.min(chars.len()), to.min(chars.len()));
            vec![
                Span::raw(chars[..from].iter().collect::<String>()),
                Span::styled(chars[from..to].iter().collect::<String>(), theme.selected),
                Span::raw(chars[to..].iter().collect::<String>()),
            ]
        }
        _ => vec![Span::raw(text), Span::styled("█", theme.key)],
    }
}

/// `text` in `room` columns: whole, or cut after its last whole word
/// with `…`.
fn cut_at_word(text: &str, room: usize) -> String {
    if wrap::width(text) <= room {
        return text.to_string();
    }
    let mut out = String::new();
    for word in text.split(' ') {
        let next = if out.is_empty() {
            word.to_string()
        } else {
            format!("{out} {word}")
        };
        if wrap::width(&next) + 1 > room {
            break;
        }
        out = next;
    }
    if out.is_empty() {
        String::new()
    } else {
        out + "…"
    }
}

fn render_footer(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let input_line = |prefix: &str, input: &TextArea<'static>, hint: Span<'static>| {
        let mut spans = vec![Span::styled(prefix.to_string(), theme.key)];
        spans.extend(input_spans(input, theme));
        spans.push(Span::raw("   "));
        // The hint in the room left, cut at a word (never mid-word).
        let used: usize = spans.iter().map(|s| wrap::width(&s.content)).sum();
        let room = (area.width as usize).saturating_sub(used);
        spans.push(Span::styled(cut_at_word(&hint.content, room), hint.style));
        Line::from(spans)
    };
    let line = match &state.mode {
        Mode::Command { input, choices, .. } => {
            let hint = match choices {
                Some(c) => format!(
                    "tab next · {}",
                    c.items
                        .iter()
                        .map(|i| inert(i.rsplit(' ').next().unwrap_or(i), 40).into_owned())
                        .collect::<Vec<_>>()
                        .join("  ")
                ),
                None => "enter run · tab complete · esc cancel".into(),
            };
            input_line(":", input, Span::styled(hint, theme.dim))
        }
        Mode::Filter { input } => {
            let hint = match state.filter.error() {
                Some(e) => Span::styled(format!("✗ {}", inert(e, 200)), theme.error),
                None => Span::styled(
                    "enter keep · esc clear · user: ns: risk: cluster: role:",
                    theme.dim,
                ),
            };
            input_line("/", input, hint)
        }
        _ => {
            // As many hints as fit, in registry order; help, quit and
            // the filter always show (a newcomer needs them first).
            let mut spans = Vec::new();
            let mut used = 0usize;
            let all: Vec<_> =
                keymap::footer(state.view, state.config.readonly || !state.may_approve).collect();
            let kept = |b: &keymap::KeyBinding| {
                matches!(
                    b.action,
                    keymap::KeyAction::Help
                        | keymap::KeyAction::Quit
                        | keymap::KeyAction::FilterMode
                )
            };
            let width = |b: &keymap::KeyBinding| wrap::width(b.label) + wrap::width(b.name) + 3;
            let reserved: usize = all.iter().filter(|b| kept(b)).map(|b| width(b)).sum();
            for b in &all {
                // The kept ones' room was held back from the start.
                if !kept(b) {
                    let w = width(b);
                    if used + w + reserved > area.width as usize {
                        continue;
                    }
                    used += w;
                }
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
