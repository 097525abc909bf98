//! The help screen, generated from the keymap registry, the dialog keys and
//! the command list. Wrapped here, so its scrolling stops at the end.

use ratatui::layout::{Margin, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::dialogs::centered;
use super::{wrap, Theme};
use crate::console::state::app::View;
use crate::console::state::command::COMMANDS;
use crate::console::state::filter::{KEYS, LEVELS};
use crate::console::state::keymap::{Section, DIALOG_KEYS, KEYMAP};
use crate::console::state::AppState;

/// The help box and its inside, for a screen of `area`.
pub(crate) fn areas(area: Rect) -> (Rect, Rect) {
    let rect = centered(area, 96, area.height.saturating_sub(2));
    (rect, rect.inner(Margin::new(1, 1)))
}

/// Every line of the help, wrapped to `width`.
pub(crate) fn lines(state: &AppState, theme: &Theme, width: u16) -> Vec<Line<'static>> {
    const KEY_W: usize = 16;
    let mut lines = Vec::new();
    let row = |key: &str, what: String, extra: String, dim: bool| {
        Line::from(vec![
            Span::styled(
                format!("  {key:<w$}", w = KEY_W - 2),
                if dim { theme.dim } else { theme.key },
            ),
            Span::styled(what, if dim { theme.dim } else { theme.value }),
            Span::styled(extra, theme.dim),
        ])
    };
    for section in [Section::Decide, Section::Navigate, Section::General] {
        lines.push(Line::from(Span::styled(section.title(), theme.title)));
        for b in KEYMAP.iter().filter(|b| b.section == section) {
            let mut extra = if b.views.is_empty() {
                String::new()
            } else {
                let v: Vec<&str> = b.views.iter().map(|v: &View| v.title()).collect();
                format!("  [{}]", v.join(", "))
            };
            let disabled = state.config.readonly && b.dangerous;
            if disabled {
                extra.push_str("  (disabled: read-only)");
            }
            lines.push(row(b.label, b.help.to_string(), extra, disabled));
        }
        lines.push(Line::raw(""));
    }
    lines.push(Line::from(Span::styled("In dialogs", theme.title)));
    for (dialog, key, what) in DIALOG_KEYS {
        lines.push(row(key, what.to_string(), format!("  [{dialog}]"), false));
    }
    lines.push(Line::raw(""));
    lines.push(Line::from(Span::styled("Commands", theme.title)));
    for (name, aliases, what) in COMMANDS {
        let alias = if aliases.is_empty() {
            String::new()
        } else {
            format!(" ({})", aliases.join(", "))
        };
        lines.push(row(&format!(":{name}"), what.to_string(), alias, false));
    }
    lines.push(Line::raw(""));
    lines.push(Line::from(Span::styled("Filter", theme.title)));
    lines.push(Line::from(Span::styled(
        format!(
            "  free text, or {KEYS} — risk: takes {LEVELS} (at least); a new / replaces the filter; esc clears it"
        ),
        theme.value,
    )));
    wrap::wrap_lines(&lines, width as usize, KEY_W)
}

pub(crate) fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme, scroll: u16) {
    let (rect, inner) = areas(area);
    let lines = lines(state, theme, inner.width);
    let (scroll, most) = super::measure::clamp(lines.len(), inner.height, scroll);
    let at_end = if most == 0 {
        String::new()
    } else if scroll == most {
        " (end)".into()
    } else {
        format!(" ({} more)", most - scroll)
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.dialog_border)
        .title(Line::from(Span::styled(
            format!(" Help — esc or ? to close, j/k scroll{at_end} "),
            theme.title,
        )));
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(super::measure::window(lines, scroll, inner.height))
            .block(block)
            .style(theme.dialog),
        rect,
    );
}
