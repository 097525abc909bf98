//! `enter`: one request in full — the detail with every new permission's
//! why, what happened to it and when (its events), and the object itself
//! as YAML. Scrolls to its end and no further.

use ratatui::layout::{Margin, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::{detail, wrap, Theme};
use crate::app::{when, AppState};
use crate::backend::RequestKey;
use crate::domain::request::Verdict;
use crate::domain::sanitize::inert;
use crate::domain::{duration, AccessRequest, Phase};

/// The inside of the full view on a screen of `area`.
pub fn inner(area: Rect) -> Rect {
    area.inner(Margin::new(1, 1))
}

/// What happened to the request, in order, with local times.
fn events(state: &AppState, r: &AccessRequest) -> Vec<String> {
    let zone = state.config.zone;
    let at = |t| format!("{:<13}", format!("{} ", when::clock(zone, state.now, t)));
    let mut out = vec![format!(
        "{}asked by {} for {} {} {} for {}{}",
        at(r.created_at),
        inert(&r.requester.user, 64),
        r.role.kind,
        inert(&r.role.name, 64),
        crate::app::verdict::scope_words(&r.namespaces),
        duration::format(r.duration),
        r.ticket
            .as_deref()
            .map(|t| format!(" (ticket {})", inert(t, 64)))
            .unwrap_or_default()
    )];
    if let Some(d) = &r.status.decision {
        out.push(match d.verdict {
            Verdict::Approved => format!(
                "{}approved by {} for {} {}",
                at(d.at),
                inert(&d.by, 64),
                d.duration.map(duration::format).unwrap_or_default(),
                crate::app::verdict::scope_words(&d.namespaces)
            ),
            Verdict::Denied => format!(
                "{}denied by {}: \"{}\"",
                at(d.at),
                inert(&d.by, 64),
                inert(d.reason.as_deref().unwrap_or(""), 300)
            ),
        });
    }
    if let Some(t) = r.status.granted_at {
        let bindings: Vec<String> = r
            .status
            .bindings
            .iter()
            .map(|b| match &b.namespace {
                Some(ns) => format!("{} {}/{}", b.kind, inert(ns, 64), inert(&b.name, 64)),
                None => format!("{} {}", b.kind, inert(&b.name, 64)),
            })
            .collect();
        out.push(format!(
            "{}granted{}",
            at(t),
            if bindings.is_empty() {
                String::new()
            } else {
                format!(": {}", bindings.join(", "))
            }
        ));
    }
    match (r.phase(), r.status.ended_at) {
        (Phase::Active, _) => {
            if let Some(end) = r.status.expires_at {
                out.push(format!(
                    "{}ends ({}; {})",
                    at(end),
                    when::until(state.now, end),
                    when::clock_utc(zone, state.now, end)
                ));
            }
        }
        (Phase::Revoked, Some(t)) => out.push(format!(
            "{}revoked by {}: \"{}\"",
            at(t),
            inert(r.status.revoked_by.as_deref().unwrap_or("someone"), 64),
            inert(r.status.revoke_reason.as_deref().unwrap_or(""), 300)
        )),
        (Phase::Expired, Some(t)) => out.push(format!("{}expired: ended by the reaper", at(t))),
        (Phase::Withdrawn, Some(t)) => out.push(format!(
            "{}withdrawn by {}",
            at(t),
            inert(&r.requester.user, 64)
        )),
        (Phase::Failed, Some(t)) => out.push(format!("{}failed", at(t))),
        _ => {}
    }
    if let Some(m) = &r.status.message {
        out.push(format!("{:<13}{}", "", inert(m, 600)));
    }
    out
}

/// Every line of the full view of `key`, wrapped to `width`.
pub fn lines(state: &AppState, key: &RequestKey, theme: &Theme, width: u16) -> Vec<Line<'static>> {
    let Some(entry) = state.entries.get(key) else {
        return vec![Line::from(Span::styled(
            "this request is gone (esc goes back)",
            theme.dim,
        ))];
    };
    let mut out = detail::lines_with(state, entry, theme, width, true);
    out.push(Line::raw(""));
    out.push(Line::from(Span::styled("EVENTS", theme.title)));
    for e in events(state, &entry.req) {
        out.extend(wrap::wrap_line(
            &Line::from(Span::styled(e, theme.value)),
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

pub fn render(
    frame: &mut Frame,
    area: Rect,
    state: &AppState,
    theme: &Theme,
    key: &RequestKey,
    scroll: u16,
) {
    let inside = inner(area);
    let lines = lines(state, key, theme, inside.width);
    let most = lines.len().saturating_sub(inside.height as usize);
    let scroll = (scroll as usize).min(most);
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
                    inert(&key.cluster, 48)
                ),
                theme.dim,
            ),
        ]))
        .style(theme.dialog);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(
            lines
                .into_iter()
                .skip(scroll)
                .take(inside.height as usize)
                .collect::<Vec<_>>(),
        )
        .block(block),
        area,
    );
}
