//! The help screen, generated from the keymap registry and the command list.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::dialogs::centered;
use super::Theme;
use crate::app::command::COMMANDS;
use crate::app::keymap::{Section, KEYMAP};
use crate::app::state::View;
use crate::app::AppState;

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme, scroll: u16) {
    let rect = centered(area, 90, area.height.saturating_sub(2));
    let mut lines = Vec::new();
    for section in [Section::Decide, Section::Navigate, Section::General] {
        lines.push(Line::from(Span::styled(section.title(), theme.title)));
        for b in KEYMAP.iter().filter(|b| b.section == section) {
            let views = if b.views.is_empty() {
                String::new()
            } else {
                let v: Vec<&str> = b.views.iter().map(|v: &View| v.title()).collect();
                format!("  [{}]", v.join(", "))
            };
            let disabled = state.config.readonly && b.dangerous;
            lines.push(Line::from(vec![
                Span::styled(
                    format!("  {:<14}", b.label),
                    if disabled { theme.dim } else { theme.key },
                ),
                Span::styled(
                    b.help.to_string(),
                    if disabled { theme.dim } else { theme.value },
                ),
                Span::styled(views, theme.dim),
                Span::styled(
                    if disabled {
                        "  (disabled: read-only)"
                    } else {
                        ""
                    },
                    theme.dim,
                ),
            ]));
        }
        lines.push(Line::raw(""));
    }
    lines.push(Line::from(Span::styled("Commands", theme.title)));
    for (name, aliases, what) in COMMANDS {
        let alias = if aliases.is_empty() {
            String::new()
        } else {
            format!(" ({})", aliases.join(", "))
        };
        lines.push(Line::from(vec![
            Span::styled(format!("  :{:<13}", name), theme.key),
            Span::styled(what.to_string(), theme.value),
            Span::styled(alias, theme.dim),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::from(Span::styled("Filter", theme.title)));
    lines.push(Line::from(Span::styled(
        "  free text, user:NAME, ns:NS, risk:info|medium|high|critical (at least), cluster:NAME, role:NAME",
        theme.value,
    )));
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.dialog_border)
        .title(Line::from(Span::styled(
            " Help — esc or ? to close, j/k scroll ",
            theme.title,
        )));
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .style(theme.dialog)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        rect,
    );
}
