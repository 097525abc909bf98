//! Text a requester controls (names, reasons, tickets, groups) is untrusted.
//!
//! Before it reaches the terminal it is made inert: C0/C1 control characters
//! (ESC among them, so no escape sequence survives), DEL, bidi overrides and
//! isolates, and zero-width characters are replaced by a visible `�`, line
//! breaks and tabs become a single space, and the result is bounded in
//! characters with a trailing `…` when cut.

use std::borrow::Cow;

/// The replacement shown where a dangerous character was.
pub const REPLACEMENT: char = '\u{FFFD}';

/// Default bound for one field shown in a table cell or a detail line.
pub const FIELD_MAX: usize = 256;

pub fn is_dangerous(c: char) -> bool {
    c.is_control() && !matches!(c, '\n' | '\r' | '\t')
        || matches!(
            c,
            '\u{200B}'..='\u{200F}'   // zero-width space/joiners, LRM, RLM
            | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // bidi isolates
            | '\u{061C}'              // arabic letter mark
            | '\u{FEFF}'              // BOM / zero-width no-break space
            | '\u{FFF9}'..='\u{FFFB}' // interlinear annotations
        )
}

/// Makes `text` inert for the terminal and bounds it to `max` characters.
pub fn inert(text: &str, max: usize) -> Cow<'_, str> {
    let clean = text
        .chars()
        .all(|c| !is_dangerous(c) && !matches!(c, '\n' | '\r' | '\t'));
    let count = if clean {
        text.chars().take(max + 1).count()
    } else {
        0
    };
    if clean && count <= max {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().min(max * 4));
    let mut taken = 0;
    let mut last_space = false;
    for c in text.chars() {
        if taken == max {
            out.pop();
            out.push('…');
            return Cow::Owned(out);
        }
        let mapped = if matches!(c, '\n' | '\r' | '\t') {
            if last_space {
                continue;
            }
            ' '
        } else if is_dangerous(c) {
            REPLACEMENT
        } else {
            c
        };
        last_space = mapped == ' ';
        out.push(mapped);
        taken += 1;
    }
    Cow::Owned(out)
}

/// `inert` with the default field bound.
pub fn field(text: &str) -> Cow<'_, str> {
    inert(text, FIELD_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        assert!(matches!(inert("alice", 10), Cow::Borrowed("alice")));
    }

    #[test]
    fn escape_sequences_become_inert() {
        let s = inert("\x1b]0;pwned\x07\x1b[2Jok", 100);
        assert!(!s.contains('\x1b') && !s.contains('\x07'));
        assert_eq!(s, "\u{FFFD}]0;pwned\u{FFFD}\u{FFFD}[2Jok");
    }

    #[test]
    fn c1_controls_and_del_are_replaced() {
        assert_eq!(inert("a\u{9b}31mb\u{7f}", 100), "a\u{FFFD}31mb\u{FFFD}");
    }

    #[test]
    fn bidi_overrides_and_zero_width_are_replaced() {
        let s = inert("evil\u{202E}gnp.exe\u{2066}x\u{200B}", 100);
        assert_eq!(s, "evil\u{FFFD}gnp.exe\u{FFFD}x\u{FFFD}");
    }

    #[test]
    fn newlines_and_tabs_collapse_to_one_space() {
        assert_eq!(inert("a\r\n\tb", 100), "a b");
    }

    #[test]
    fn long_text_is_bounded_with_ellipsis() {
        let long = "x".repeat(10_000);
        let s = inert(&long, 20);
        assert_eq!(s.chars().count(), 20);
        assert!(s.ends_with('…'));
        assert_eq!(inert("exactly", 7), "exactly");
    }

    #[test]
    fn unicode_letters_survive() {
        assert_eq!(inert("Zoë 日本", 100), "Zoë 日本");
    }
}
