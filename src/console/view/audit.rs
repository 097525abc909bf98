//! `:audit`: the recent audit events, newest first, filtered with the same
//! terms as the lists. On the server backend these are the server's signed
//! trail (refusals included); on the demo and directly on clusters, what
//! this console saw change since it started (`portcullis audit show` reads
//! the reaper's log for the rest).

use ratatui::layout::{Margin, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::{wrap, Theme};
use crate::audit::query::describe_in;
use crate::console::state::filter::Filter;
use crate::console::state::{when, AppState};
use crate::domain::sanitize::inert;

pub(crate) fn inner(area: Rect) -> Rect {
    area.inner(Margin::new(1, 1))
}

/// Every line of the list, wrapped to `width`.
pub(crate) fn lines(
    state: &AppState,
    filter: &Filter,
    theme: &Theme,
    width: u16,
) -> Vec<Line<'static>> {
    const TIME_W: usize = 13;
    let zone = state.config.zone;
    let mut out = Vec::new();
    for e in state.trail.recent().filter(|e| filter.matches_event(e)) {
        let style = if e.kind.is_refusal() {
            theme.error
        } else {
            theme.value
        };
        let request = if e.request.is_empty() {
            String::new()
        } else {
            format!("{}/{}  ", inert(&e.cluster, 40), inert(&e.request, 80))
        };
        let line = Line::from(vec![
            Span::styled(
                format!("{:<TIME_W$}", when::clock(zone, state.now, e.time)),
                theme.dim,
            ),
            Span::styled(request, theme.label),
            Span::styled(describe_in(e, |t| when::clock(zone, state.now, t)), style),
        ]);
        out.extend(wrap::wrap_line(&line, width as usize, TIME_W));
    }
    if out.is_empty() {
        out.push(Line::from(Span::styled(
            if state.trail.is_empty() {
                match state.backend_kind {
                    "http" => "no audit events yet (the server sends its trail to approvers)",
                    _ => "no events since this console started: `portcullis audit show --file LOG` reads the reaper's log",
                }
            } else {
                "no event matches this filter"
            },
            theme.dim,
        )));
    }
    out
}

pub(crate) fn render(
    frame: &mut Frame,
    area: Rect,
    state: &AppState,
    theme: &Theme,
    filter: &Filter,
    scroll: u16,
) {
    let inner = inner(area);
    let lines = lines(state, filter, theme, inner.width);
    let (scroll, _) = super::measure::clamp(lines.len(), inner.height, scroll);
    let source = if state.backend_kind == "http" {
        "server trail"
    } else {
        "seen by this console"
    };
    let filtered = if filter.text.trim().is_empty() {
        String::new()
    } else {
        format!(", filter: {}", inert(&filter.text, 60))
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.dialog_border)
        .title(Line::from(Span::styled(
            format!(
                " Audit — {} event(s), {source}{filtered}; esc closes, j/k scroll ",
                state.trail.len()
            ),
            theme.title,
        )));
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(super::measure::window(lines, scroll, inner.height))
            .block(block)
            .style(theme.dialog),
        area,
    );
}
