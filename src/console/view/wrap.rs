//! Text to cells: word wrapping that knows how many rows it takes (so a
//! dialog can be as tall as its text and never lose its key hints), and
//! cutting to a width with `…` (so a cut is always visible as one).

use std::borrow::Cow;

use ratatui::style::Style;
use ratatui::text::{Line, Span};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// The display width of `text`.
pub(crate) fn width(text: &str) -> usize {
    UnicodeWidthStr::width(text)
}

/// `text` in at most `max` columns, ending in `…` when cut.
pub(crate) fn cut(text: &str, max: usize) -> Cow<'_, str> {
    if width(text) <= max {
        return Cow::Borrowed(text);
    }
    if max == 0 {
        return Cow::Borrowed("");
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > max - 1 {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    Cow::Owned(out)
}

/// Wraps `text` into lines of at most `max` columns, at spaces where it
/// can, inside a word where one is longer than a line. Never loses text.
pub(crate) fn wrap(text: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut used = 0;
    for word in text.split(' ') {
        let w = width(word);
        let gap = usize::from(!line.is_empty());
        if used + gap + w <= max {
            if gap == 1 {
                line.push(' ');
            }
            line.push_str(word);
            used += gap + w;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
            used = 0;
        }
        // A word longer than a line is split where it must be.
        for c in word.chars() {
            let cw = c.width().unwrap_or(0);
            if used + cw > max {
                lines.push(std::mem::take(&mut line));
                used = 0;
            }
            line.push(c);
            used += cw;
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// Wraps a styled line into rows of at most `max` columns, at spaces where
/// it can; rows after the first start with `indent` spaces (a hanging
/// indent under a label). Styles are kept; the line's own style too.
pub(crate) fn wrap_line(line: &Line<'_>, max: usize, indent: usize) -> Vec<Line<'static>> {
    type Run = Vec<(char, Style)>;
    let max = max.max(1);
    let indent = if indent * 2 > max { 0 } else { indent };
    // Words, each with the spaces before it (styles kept on both).
    let mut words: Vec<(Run, Run)> = Vec::new();
    let (mut gap, mut word): (Run, Run) = (Vec::new(), Vec::new());
    for span in &line.spans {
        for c in span.content.chars() {
            if c == ' ' {
                if !word.is_empty() {
                    words.push((std::mem::take(&mut gap), std::mem::take(&mut word)));
                }
                gap.push((c, span.style));
            } else {
                word.push((c, span.style));
            }
        }
    }
    if !word.is_empty() {
        words.push((gap, word));
    }
    let run_width = |r: &Run| r.iter().map(|(c, _)| c.width().unwrap_or(0)).sum::<usize>();
    let pad = || -> Run { vec![(' ', Style::default()); indent] };
    let mut rows: Vec<Run> = vec![Vec::new()];
    let mut used = 0usize;
    for (gap, word) in words {
        let ww = run_width(&word);
        // A continuation row holding only its indent takes no gap.
        let fresh = rows.len() > 1 && used == indent;
        let gw = if fresh { 0 } else { gap.len() };
        if used + gw + ww <= max {
            let row = rows.last_mut().expect("a row");
            if !fresh {
                row.extend(gap);
            }
            row.extend(word);
            used += gw + ww;
            continue;
        }
        if used > 0 && !fresh {
            rows.push(pad());
            used = indent;
            if used + ww <= max {
                rows.last_mut().expect("a row").extend(word);
                used += ww;
                continue;
            }
        } else if used == 0 {
            // Leading spaces on the first row stay.
            let keep = gap.len().min(max.saturating_sub(1));
            rows.last_mut()
                .expect("a row")
                .extend(gap.into_iter().take(keep));
            used = keep;
        }
        // Longer than a row: split where it must be.
        for (c, st) in word {
            let cw = c.width().unwrap_or(0);
            if used + cw > max {
                rows.push(pad());
                used = indent;
            }
            rows.last_mut().expect("a row").push((c, st));
            used += cw;
        }
    }
    rows.into_iter()
        .map(|row| {
            let mut spans: Vec<Span<'static>> = Vec::new();
            let mut text = String::new();
            let mut style: Option<Style> = None;
            for (c, st) in row {
                if style.is_some_and(|s| s != st) {
                    spans.push(Span::styled(
                        std::mem::take(&mut text),
                        style.unwrap_or_default(),
                    ));
                }
                style = Some(st);
                text.push(c);
            }
            if !text.is_empty() {
                spans.push(Span::styled(text, style.unwrap_or_default()));
            }
            Line::from(spans).style(line.style)
        })
        .collect()
}

/// Wraps every line; see [`wrap_line`].
pub(crate) fn wrap_lines(lines: &[Line<'_>], max: usize, indent: usize) -> Vec<Line<'static>> {
    lines
        .iter()
        .flat_map(|l| wrap_line(l, max, indent))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_show_an_ellipsis() {
        assert_eq!(cut("identity,notifications", 10), "identity,…");
        assert_eq!(cut("short", 10), "short");
        assert_eq!(width(&cut("αβγδε", 3)), 3);
    }

    #[test]
    fn wrapping_keeps_every_character() {
        let text = "shorten can only move the end earlier: the grant already ends in 1h35m";
        let lines = wrap(text, 20);
        assert!(lines.iter().all(|l| width(l) <= 20), "{lines:?}");
        assert_eq!(lines.join(" "), text);
        let long = "a".repeat(45);
        let lines = wrap(&long, 20);
        assert_eq!(lines.concat(), long);
        assert_eq!(wrap("", 10), vec![String::new()]);
    }

    fn plain(lines: &[Line<'_>]) -> Vec<String> {
        lines
            .iter()
            .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect()
    }

    #[test]
    fn styled_lines_wrap_with_a_hanging_indent_and_keep_styles() {
        let bold = Style::default().add_modifier(ratatui::style::Modifier::BOLD);
        let line = Line::from(vec![
            Span::styled("Reason    ", Style::default()),
            Span::styled("INC-1: roll back the bad deploy", bold),
        ]);
        let rows = wrap_line(&line, 24, 10);
        assert_eq!(
            plain(&rows),
            [
                "Reason    INC-1: roll",
                "          back the bad",
                "          deploy"
            ]
        );
        assert_eq!(rows[1].spans.last().unwrap().style, bold);
        assert_eq!(plain(&wrap_line(&Line::from("short"), 24, 10)), ["short"]);
        assert_eq!(plain(&wrap_line(&Line::from(""), 24, 10)), [""]);
        let long = "x".repeat(30);
        assert_eq!(
            plain(&wrap_line(&Line::from(long.as_str()), 24, 0)),
            [&long[..24], &long[24..]]
        );
        assert_eq!(
            plain(&wrap_line(&Line::from("  HIGH deployments"), 40, 7)),
            ["  HIGH deployments"],
            "leading spaces stay"
        );
    }
}
