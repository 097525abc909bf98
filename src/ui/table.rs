//! The list of the current view: only the rows on screen are built, so a
//! frame costs the same with ten requests or ten thousand. Columns drop by
//! priority as the width shrinks.

use std::borrow::Cow;

use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};
use ratatui::Frame;

use super::{pane, severity_style, Theme};
use crate::app::state::{Entry, View};
use crate::app::AppState;
use crate::domain::sanitize::inert;
use crate::domain::{duration, Phase};

#[derive(Clone, Copy)]
struct Column {
    title: &'static str,
    width: u16,
    /// Lower is kept longer.
    priority: u8,
}

const fn col(title: &'static str, width: u16, priority: u8) -> Column {
    Column {
        title,
        width,
        priority,
    }
}

const PENDING: &[Column] = &[
    col("REQUESTER", 12, 0),
    col("CLUSTER", 15, 3),
    col("NAMESPACES", 16, 4),
    col("ROLE", 14, 2),
    col("ASKED", 6, 5),
    col("AGE", 6, 6),
    col("RISK", 6, 1),
];
const GRANTS: &[Column] = &[
    col("REQUESTER", 12, 0),
    col("CLUSTER", 15, 3),
    col("NAMESPACES", 16, 4),
    col("ROLE", 14, 2),
    col("LEFT", 8, 1),
    col("BY", 10, 5),
    col("RISK", 6, 6),
];
// In History the why matters more than where: it drops last but one.
const HISTORY: &[Column] = &[
    col("REQUESTER", 12, 0),
    col("CLUSTER", 15, 5),
    col("ROLE", 14, 3),
    col("NAMESPACES", 16, 6),
    col("OUTCOME", 10, 1),
    col("BY", 10, 2),
    col("WHEN", 6, 7),
    col("WHY", 20, 4),
];

fn columns(view: View) -> &'static [Column] {
    match view {
        View::Pending => PENDING,
        View::Grants => GRANTS,
        View::History => HISTORY,
    }
}

/// Indices of the columns that fit in `width`, in display order.
fn fit(cols: &[Column], width: u16) -> Vec<usize> {
    let mut by_priority: Vec<usize> = (0..cols.len()).collect();
    by_priority.sort_by_key(|i| cols[*i].priority);
    let mut used = 2u16; // mark column
    let mut keep = Vec::new();
    for i in by_priority {
        let need = cols[i].width + 1;
        if used + need <= width {
            used += need;
            keep.push(i);
        }
    }
    keep.sort_unstable();
    keep
}

fn namespaces(e: &Entry) -> Cow<'_, str> {
    match e.req.granted_namespaces() {
        [] => Cow::Borrowed("cluster-wide"),
        [one] => Cow::Borrowed(one.as_str()),
        many => Cow::Owned(many.join(",")),
    }
}

/// A cell's text, borrowed from the request where it can be (most cells), so
/// a frame allocates little.
fn cell_text<'a>(state: &AppState, e: &'a Entry, title: &str) -> (Cow<'a, str>, Style) {
    let r = &e.req;
    let plain = Style::default();
    match title {
        "REQUESTER" => (Cow::Borrowed(r.requester.user.as_str()), plain),
        "CLUSTER" => (Cow::Borrowed(r.cluster.as_str()), plain),
        "NAMESPACES" => (namespaces(e), plain),
        "ROLE" => (Cow::Borrowed(r.role.name.as_str()), plain),
        // An extension asks for more time on a live grant: "+30m".
        "ASKED" if r.extends.is_some() => {
            (format!("+{}", duration::format(r.duration)).into(), plain)
        }
        "ASKED" => (duration::format(r.duration).into(), plain),
        "AGE" => (
            duration::format_chrono(state.now - r.created_at).into(),
            plain,
        ),
        "LEFT" => {
            let left = r.remaining(state.now);
            let soon = r
                .status
                .expires_at
                .is_some_and(|end| end <= state.now + state.config.expiring_soon);
            (
                duration::format(left).into(),
                if soon {
                    Style::default().add_modifier(ratatui::style::Modifier::BOLD)
                } else {
                    plain
                },
            )
        }
        "BY" => (
            r.status
                .revoked_by
                .as_deref()
                .or_else(|| r.status.decision.as_ref().map(|d| d.by.as_str()))
                .unwrap_or_else(|| {
                    if r.phase() == Phase::Withdrawn {
                        r.requester.user.as_str()
                    } else {
                        "-"
                    }
                })
                .into(),
            plain,
        ),
        "OUTCOME" => (Cow::Borrowed(r.phase().as_str()), plain),
        "WHEN" => {
            let at = r
                .status
                .ended_at
                .or(r.status.decision.as_ref().map(|d| d.at))
                .unwrap_or(r.created_at);
            (duration::format_chrono(state.now - at).into(), plain)
        }
        "WHY" => (
            r.status
                .revoke_reason
                .as_deref()
                .or_else(|| r.status.decision.as_ref().and_then(|d| d.reason.as_deref()))
                .or(r.status.message.as_deref())
                .unwrap_or_default()
                .into(),
            plain,
        ),
        "RISK" => match (&e.invalid, e.summary.worst) {
            (Some(_), _) => ("INVAL".into(), plain),
            (None, Some(s)) => (s.badge().into(), plain),
            (None, None) => ("none".into(), plain),
        },
        _ => (Cow::Borrowed(""), plain),
    }
}

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let view = state.view;
    let list = state.list(view);
    let cursor = state.cursor[view.index()];
    let prod = state.production_in_view();
    let title = Line::from(vec![
        Span::styled(format!(" {} ", view.title()), theme.title),
        Span::styled(format!("[{}] ", list.len()), theme.dim),
    ]);
    let block = pane(title, prod, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if list.is_empty() {
        let msg = match (view, state.filter.is_empty()) {
            (_, false) => "nothing matches the filter (esc clears it)",
            (View::Pending, true) => "no pending requests: the queue is empty",
            (View::Grants, true) => "no live grants: every cluster is locked",
            (View::History, true) => "no history yet",
        };
        frame.render_widget(Paragraph::new(Span::styled(msg, theme.dim)), inner);
        return;
    }
    let cols = columns(view);
    let keep = fit(cols, inner.width);
    let rows_visible = inner.height.saturating_sub(1) as usize;
    // Keep the selection in the middle third when scrolling a long list.
    let offset = if list.len() <= rows_visible {
        0
    } else {
        cursor
            .saturating_sub(rows_visible / 2)
            .min(list.len() - rows_visible)
    };
    let mut widths: Vec<Constraint> = vec![Constraint::Length(1)];
    widths.extend(keep.iter().map(|i| Constraint::Length(cols[*i].width)));
    if let Some(last) = widths.last_mut() {
        *last = Constraint::Fill(1);
    }
    let header = Row::new(
        std::iter::once(Cell::from(" "))
            .chain(keep.iter().map(|i| Cell::from(cols[*i].title)))
            .collect::<Vec<_>>(),
    )
    .style(theme.column_header);
    let rows = list
        .iter()
        .enumerate()
        .skip(offset)
        .take(rows_visible)
        .filter_map(|(i, key)| {
            let e = state.entries.get(key)?;
            let marked = state.marks.contains(key);
            let selected = i == cursor;
            let mark = if marked { "●" } else { " " };
            let mut cells = vec![Cell::from(Span::styled(mark, theme.marked))];
            for ci in &keep {
                let title = cols[*ci].title;
                let (text, extra) = cell_text(state, e, title);
                // Untrusted text made inert; clean borrowed text stays borrowed.
                let text: Cow<'_, str> = match text {
                    Cow::Borrowed(b) => inert(b, 128),
                    Cow::Owned(o) => Cow::Owned(inert(&o, 128).into_owned()),
                };
                let style = match title {
                    "RISK" if e.invalid.is_some() => theme.invalid,
                    "RISK" => e
                        .summary
                        .worst
                        .map_or(theme.dim, |s| severity_style(theme, s)),
                    "LEFT" if extra != Style::default() => theme.expiring,
                    "OUTCOME" => match e.req.phase() {
                        Phase::Denied | Phase::Revoked | Phase::Failed => theme.high,
                        Phase::Expired | Phase::Withdrawn => theme.dim,
                        _ => theme.value,
                    },
                    _ => theme.value,
                };
                cells.push(Cell::from(Span::styled(text, style)));
            }
            let row = Row::new(cells);
            Some(if selected {
                row.style(theme.selected)
            } else if marked {
                row.style(theme.marked)
            } else {
                row
            })
        });
    let table = Table::new(rows, widths).header(header).column_spacing(1);
    frame.render_widget(table, inner);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_drop_by_priority() {
        let cols = columns(View::Pending);
        let all = fit(cols, 200);
        assert_eq!(all.len(), cols.len());
        let narrow = fit(cols, 40);
        let titles: Vec<_> = narrow.iter().map(|i| cols[*i].title).collect();
        assert_eq!(titles, ["REQUESTER", "ROLE", "RISK"]);
    }
}
