//! How tall scrolled content is at the terminal's size, so scrolling stops
//! at the end (`J`, the help, the full view). Pure, like rendering: the
//! reducer asks, nothing here changes state.

use ratatui::layout::Rect;

use super::{detail, full, help, layout, Theme};
use crate::backend::RequestKey;
use crate::console::state::AppState;

fn screen(state: &AppState) -> Option<Rect> {
    let (w, h) = state.viewport;
    (w > 0 && h > 0).then(|| Rect::new(0, 0, w, h))
}

/// A scroll of `lines` in `height` rows, stopped at the end: where it is
/// and how far the end is.
pub(crate) fn clamp(lines: usize, height: u16, scroll: u16) -> (usize, usize) {
    let most = lines.saturating_sub(height as usize);
    ((scroll as usize).min(most), most)
}

/// The lines that show, from `scroll`, in `height` rows.
pub(crate) fn window<'a>(
    lines: Vec<ratatui::text::Line<'a>>,
    scroll: usize,
    height: u16,
) -> Vec<ratatui::text::Line<'a>> {
    lines
        .into_iter()
        .skip(scroll)
        .take(height as usize)
        .collect()
}

/// Rows past the visible ones: how far the content can scroll.
fn beyond(rows: usize, visible: u16) -> u16 {
    rows.saturating_sub(visible as usize).min(u16::MAX as usize) as u16
}

/// How far the selection's detail pane can scroll; None while the
/// terminal's size is unknown.
pub(crate) fn detail_max_scroll(state: &AppState) -> Option<u16> {
    let area = screen(state)?;
    let Some(areas) = layout(area, state) else {
        return Some(0);
    };
    let Some(entry) = state.selected() else {
        return Some(0);
    };
    let inner = areas.detail.inner(ratatui::layout::Margin::new(1, 1));
    let rows = detail::lines(state, &entry, &Theme::default(), inner.width).len();
    Some(beyond(rows, inner.height))
}

/// How far the help screen can scroll.
pub(crate) fn help_max_scroll(state: &AppState) -> Option<u16> {
    let area = screen(state)?;
    let (rect, inner) = help::areas(area);
    let _ = rect;
    let rows = help::lines(state, &Theme::default(), inner.width).len();
    Some(beyond(rows, inner.height))
}

/// How far the audit list can scroll.
pub(crate) fn audit_max_scroll(
    state: &AppState,
    filter: &crate::console::state::filter::Filter,
) -> Option<u16> {
    let area = screen(state)?;
    let inner = super::audit::inner(area);
    let rows = super::audit::lines(state, filter, &Theme::default(), inner.width).len();
    Some(beyond(rows, inner.height))
}

/// How far the full view of `key` can scroll.
pub(crate) fn full_max_scroll(state: &AppState, key: &RequestKey) -> Option<u16> {
    let area = screen(state)?;
    let inner = full::inner(area);
    let rows = full::lines(state, key, &Theme::default(), inner.width).len();
    Some(beyond(rows, inner.height))
}
