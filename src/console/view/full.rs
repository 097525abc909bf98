//! `enter`: one request in full — the detail with every new permission's
//! why, what happened to it and when (its events), and the object itself
//! as YAML. Scrolls to its end and no further.

use ratatui::layout::{Margin, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::{detail, wrap, Theme};
use crate::audit::query::describe_in;
use crate::backend::RequestKey;
use crate::console::state::{when, AppState};
use crate::domain::sanitize::inert;
use crate::domain::{AccessRequest, Phase};

/// The inside of the full view on a screen of `area`.
pub(crate) fn inner(area: Rect) -> Rect {
    area.inner(Margin::new(1, 1))
}

/// What happened to the request, in order, with local times: its
/// timeline (the object's story and what the audit trail adds).
fn events(state: &AppState, r: &AccessRequest) -> Vec<(String, bool)> {
    let zone = state.config.zone;
    let at = |t| format!("{:<13}", format!("{} ", when::clock(zone, state.now, t)));
    let mut out: Vec<(String, bool)> = state
        .trail
        .timeline(r, state.recorded_by(), state.now)
        .iter()
        .map(|e| {
            (
                format!(
                    "{}{}",
                    at(e.time),
                    describe_in(e, |t| when::clock(zone, state.now, t))
                ),
                e.kind.is_refusal(),
            )
        })
        .collect();
    if r.phase() == Phase::Active {
        if let Some(end) = r.status.expires_at {
            out.push((
                format!(
                    "{}ends ({}; {})",
                    at(end),
                    when::until(state.now, end),
                    when::clock_utc(zone, state.now, end)
                ),
                false,
            ));
        }
    }
    out
}

/// Every line of the full view of `key`, wrapped to `width`.
pub(crate) fn lines(
    state: &AppState,
    key: &RequestKey,
    theme: &Theme,
    width: u16,
) -> Vec<Line<'static>> {
    let Some(entry) = state.entries.get(key) else {
        return vec![Line::from(Span::styled(
            "this request is gone (esc goes back)",
            theme.dim,
        ))];
    };
    let mut out = detail::lines_with(state, &entry, theme, width, true);
    out.push(Line::raw(""));
    out.push(Line::from(Span::styled("EVENTS", theme.title)));
    for (e, refusal) in events(state, &entry.req) {
        let style = if refusal { theme.error } else { theme.value };
        out.extend(wrap::wrap_line(
            &Line::from(Span::styled(e, style)),
            width as usize,
            13,
        ));
    }
    out.push(Line::raw(""));
    out.push(Line::from(Span::styled("OBJECT (YAML)", theme.title)));
    let yaml = serde_yaml_ng::to_string(&crate::api::request_json(&entry.req))
        .unwrap_or_else(|e| format!("cannot show it as YAML: {e}"));
    for l in yaml.lines() {
        let indent = l.len() - l.trim_start().len();
        out.extend(wrap::wrap_line(
            &Line::from(Span::styled(inert(l, 2000).into_owned(), theme.value)),
            width as usize,
            indent + 2,
        ));
    }
    out
}

pub(crate) fn render(
    frame: &mut Frame,
    area: Rect,
    state: &AppState,
    theme: &Theme,
    key: &RequestKey,
    scroll: u16,
) {
    let inside = inner(area);
    let lines = lines(state, key, theme, inside.width);
    let (scroll, most) = super::measure::clamp(lines.len(), inside.height, scroll);
    let place = if most == 0 {
        String::new()
    } else if scroll == most {
        " · end".into()
    } else {
        format!(" · {} more", most - scroll)
    };
    let prod = state.is_production(&key.cluster);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(if prod {
            theme.border_prod
        } else {
            theme.dialog_border
        })
        .title(Line::from(vec![
            Span::styled(format!(" {} ", inert(&key.name, 64)), theme.title),
            Span::styled(
                format!(
                    "on {}{place} · esc back · j/k · c copy ",
                    inert(state.cluster_label(&key.cluster), 48)
                ),
                theme.dim,
            ),
        ]))
        .style(theme.dialog);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(super::measure::window(lines, scroll, inside.height)).block(block),
        area,
    );
}
