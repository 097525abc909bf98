//! The list of the current view: only the rows on screen are built, so a
//! frame costs the same with ten requests or ten thousand. Column widths
//! follow those rows' content and the space ([`super::columns`]); RISK is
//! in every list at every width; cut text ends in `…`. The selected row is
//! one style edge to edge, with a `▶` so it shows without colour too.

use std::borrow::Cow;

use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};
use ratatui::Frame;

use super::columns::{col, fit, Column};
use super::{pane, severity_style, wrap, Theme};
use crate::console::state::app::{ended_at, Entry, View};
use crate::console::state::{when, AppState};
use crate::domain::sanitize::inert;
use crate::domain::{duration, Phase};

// col(title, min, soft, max, priority): priority 0 never drops; short
// columns (times, counts) are comfortable only whole, so long text gives way
// first.
const PENDING: &[Column] = &[
    col("REQUESTER", 6, 10, 24, 0),
    col("CLUSTER", 7, 12, 24, 2),
    col("NAMESPACES", 8, 16, 40, 3),
    col("ROLE", 6, 12, 32, 1),
    col("ASKED", 5, 6, 6, 5).whole(),
    col("AGE", 3, 6, 6, 6).whole(),
    col("NEW", 3, 9, 9, 4).whole(),
    col("RISK", 5, 5, 5, 0),
    col("REASON", 10, 20, 400, 7),
];
const GRANTS: &[Column] = &[
    col("REQUESTER", 6, 10, 24, 0),
    col("CLUSTER", 7, 12, 24, 3),
    col("NAMESPACES", 8, 16, 40, 4),
    col("ROLE", 6, 12, 32, 2),
    col("LEFT", 5, 8, 8, 1).whole(),
    col("ENDS", 5, 5, 12, 6).whole(),
    col("BY", 4, 8, 24, 5),
    col("RISK", 5, 5, 5, 0),
];
// In History the why matters more than where.
const HISTORY: &[Column] = &[
    col("REQUESTER", 6, 10, 24, 0),
    col("CLUSTER", 7, 12, 24, 6),
    col("ROLE", 6, 12, 32, 4),
    col("NAMESPACES", 8, 16, 40, 7),
    col("OUTCOME", 7, 9, 9, 1).whole(),
    col("BY", 4, 8, 24, 2),
    col("WHEN", 4, 6, 6, 3).whole(),
    col("RISK", 5, 5, 5, 0),
    col("WHY", 8, 20, 400, 5),
];

/// A cell's text and style.
type StyledText<'a> = (Cow<'a, str>, Style);

fn columns(view: View) -> &'static [Column] {
    match view {
        View::Pending => PENDING,
        View::Grants => GRANTS,
        View::History => HISTORY,
    }
}

fn namespaces(e: &Entry) -> Cow<'_, str> {
    match e.req.granted_namespaces() {
        [] => Cow::Borrowed("cluster-wide"),
        [one] => Cow::Borrowed(one.as_str()),
        many => Cow::Owned(many.join(",")),
    }
}

/// Who (or what) made the request what it is now.
fn by(e: &Entry) -> &str {
    let r = &e.req;
    match r.phase() {
        Phase::Withdrawn => r.requester.user.as_str(),
        // The end of a grant, or a request left undecided: the reaper.
        Phase::Expired => "reaper",
        Phase::Released => r.requester.user.as_str(),
        Phase::Revoked => r.status.revoked_by.as_deref().unwrap_or("-"),
        _ => r.status.decision.as_ref().map_or("-", |d| d.by.as_str()),
    }
}

/// A cell's text and style, borrowed from the request where it can be.
fn cell_text<'a>(
    state: &'a AppState,
    e: &'a Entry,
    title: &str,
    theme: &Theme,
) -> (Cow<'a, str>, Style) {
    let r = &e.req;
    let value = theme.value;
    match title {
        "REQUESTER" => (Cow::Borrowed(r.requester.user.as_str()), value),
        "CLUSTER" => (Cow::Borrowed(state.cluster_label(&r.cluster)), value),
        "NAMESPACES" => (namespaces(e), value),
        "ROLE" => (Cow::Borrowed(r.role.name.as_str()), value),
        // An extension asks for more time on a live grant: "+30m".
        "ASKED" if r.extends.is_some() => {
            (format!("+{}", duration::format(r.duration)).into(), value)
        }
        "ASKED" => (duration::format(r.duration).into(), value),
        "AGE" => (when::age(state.now - r.created_at).into(), value),
        "NEW" => match (&e.invalid, e.summary.error.is_some()) {
            (Some(_), _) | (None, true) => ("-".into(), theme.dim),
            _ => (
                format!("{}/{}", e.summary.new_permissions, e.summary.asked).into(),
                value,
            ),
        },
        "LEFT" => {
            let soon = r
                .status
                .expires_at
                .is_some_and(|end| end <= state.now + state.config.expiring_soon);
            (
                duration::format(r.remaining(state.now)).into(),
                if soon { theme.expiring } else { value },
            )
        }
        "ENDS" => (
            r.status
                .expires_at
                .map(|t| when::clock(state.config.zone, state.now, t))
                .unwrap_or_default()
                .into(),
            value,
        ),
        "BY" => (by(e).into(), value),
        "OUTCOME" => (
            Cow::Borrowed(r.phase().as_str()),
            match r.phase() {
                Phase::Denied | Phase::Revoked | Phase::Failed => theme.high,
                Phase::Expired | Phase::Withdrawn | Phase::Released => theme.dim,
                _ => value,
            },
        ),
        "WHEN" => (when::age(state.now - ended_at(r)).into(), value),
        "WHY" => (
            r.status
                .revoke_reason
                .as_deref()
                .or_else(|| r.status.decision.as_ref().and_then(|d| d.reason.as_deref()))
                .or(r.status.message.as_deref())
                .unwrap_or_default()
                .into(),
            value,
        ),
        "REASON" => (Cow::Borrowed(r.reason.as_str()), value),
        "RISK" => match (&e.invalid, e.summary.worst) {
            (Some(_), _) => ("INVAL".into(), theme.invalid),
            (None, Some(s)) => (s.badge().into(), severity_style(theme, s)),
            (None, None) => ("none".into(), theme.dim),
        },
        _ => (Cow::Borrowed(""), value),
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
    let rows_visible = inner.height.saturating_sub(1) as usize;
    let offset = scroll_offset(list.len(), cursor, rows_visible);
    // What the screen does not show, said on the frame: rows above and
    // below the window.
    let below = list.len().saturating_sub(offset + rows_visible);
    let more: Vec<Span<'static>> = [(offset, "↑"), (below, "↓")]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, arrow)| Span::styled(format!(" {arrow} {n} more "), theme.dim))
        .collect();
    let block = if more.is_empty() {
        block
    } else {
        block.title_bottom(Line::from(more).right_aligned())
    };
    frame.render_widget(block, area);
    if list.is_empty() {
        let msg = empty_message(view, state.filter.is_empty());
        frame.render_widget(Paragraph::new(Span::styled(msg, theme.dim)), inner);
        return;
    }
    let cols = columns(view);
    // The rows on screen, cells made inert once: their widths decide the
    // columns'.
    // Ended requests are kept compact: decoded here, a screenful at most.
    let entries: Vec<(usize, Cow<'_, Entry>)> = list
        .ids()
        .iter()
        .enumerate()
        .skip(offset)
        .take(rows_visible)
        .filter_map(|(i, &id)| Some((i, state.entries.by_id(id)?)))
        .collect();
    let cells: Vec<(usize, &Entry, Vec<StyledText<'_>>)> = entries
        .iter()
        .map(|(i, e)| {
            let (i, e) = (*i, e.as_ref());
            (i, e, row_texts(state, e, cols, theme))
        })
        .collect();
    let desired = desired_widths(cols.len(), &cells);
    // Two for the cursor and mark, one space after them.
    let shown = fit(cols, &desired, inner.width.saturating_sub(3));
    let mut widths: Vec<Constraint> = vec![Constraint::Length(2)];
    widths.extend(shown.iter().map(|(_, w)| Constraint::Length(*w)));
    let header = header_row(cols, &shown, theme);
    let rows = cells
        .into_iter()
        .map(|(i, e, texts)| table_row(state, theme, &shown, e, i == cursor, &texts));
    let table = Table::new(rows, widths).header(header).column_spacing(1);
    frame.render_widget(table, inner);
}

/// What an empty list says: nothing matches the filter, or why it is empty.
fn empty_message(view: View, unfiltered: bool) -> &'static str {
    match (view, unfiltered) {
        (_, false) => "nothing matches the filter (esc clears it)",
        (View::Pending, true) => "no pending requests: the queue is empty",
        (View::Grants, true) => "no live grants: every cluster is locked",
        (View::History, true) => "no history yet",
    }
}

/// The first row shown of a list of `len`.
fn scroll_offset(len: usize, cursor: usize, rows_visible: usize) -> usize {
    // Keep the selection in the middle third when scrolling a long list.
    if len <= rows_visible {
        0
    } else {
        cursor
            .saturating_sub(rows_visible / 2)
            .min(len - rows_visible)
    }
}

/// One row's cell texts for `cols`, made inert.
fn row_texts<'a>(
    state: &'a AppState,
    e: &'a Entry,
    cols: &[Column],
    theme: &Theme,
) -> Vec<StyledText<'a>> {
    cols.iter()
        .map(|c| {
            let (text, style) = cell_text(state, e, c.title, theme);
            let text: Cow<'_, str> = match text {
                Cow::Borrowed(b) => inert(b, 400),
                Cow::Owned(o) => Cow::Owned(inert(&o, 400).into_owned()),
            };
            (text, style)
        })
        .collect()
}

/// Each column's widest cell on screen.
fn desired_widths(count: usize, cells: &[(usize, &Entry, Vec<StyledText<'_>>)]) -> Vec<u16> {
    (0..count)
        .map(|c| {
            cells
                .iter()
                .map(|(_, _, t)| wrap::width(&t[c].0) as u16)
                .max()
                .unwrap_or(0)
        })
        .collect()
}

/// The column titles, after the cursor and mark column.
fn header_row(cols: &[Column], shown: &[(usize, u16)], theme: &Theme) -> Row<'static> {
    Row::new(
        std::iter::once(Cell::from("  "))
            .chain(shown.iter().map(|(i, _)| Cell::from(cols[*i].title)))
            .collect::<Vec<_>>(),
    )
    .style(theme.column_header)
}

/// One request's row: cursor and mark, then the shown columns, cut to fit.
fn table_row(
    state: &AppState,
    theme: &Theme,
    shown: &[(usize, u16)],
    e: &Entry,
    selected: bool,
    texts: &[StyledText<'_>],
) -> Row<'static> {
    let key = crate::backend::RequestKey::of(&e.req);
    let marked = state.marks.contains(&key);
    let lead = format!(
        "{}{}",
        if selected { "▶" } else { " " },
        if marked { "●" } else { " " }
    );
    let mut row_cells = vec![Cell::from(Span::styled(
        lead,
        if selected {
            theme.selected
        } else {
            theme.marked
        },
    ))];
    for (ci, w) in shown {
        let (text, style) = &texts[*ci];
        let text = wrap::cut(text, *w as usize).into_owned();
        // The selection is one style: no cell keeps a colour of its own.
        let style = if selected { theme.selected } else { *style };
        row_cells.push(Cell::from(Span::styled(text, style)));
    }
    let row = Row::new(row_cells);
    if selected {
        row.style(theme.selected)
    } else if marked {
        row.style(theme.marked)
    } else {
        row
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn risk_is_in_every_list_and_history_has_when() {
        for v in View::ALL {
            let cols = columns(v);
            let risk = cols.iter().find(|c| c.title == "RISK").expect("RISK");
            assert_eq!(risk.priority, 0, "{v:?}: RISK never drops");
        }
        assert!(HISTORY.iter().any(|c| c.title == "WHEN"));
        assert!(PENDING.iter().any(|c| c.title == "NEW"));
    }
}
