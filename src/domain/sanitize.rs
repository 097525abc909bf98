//! Text a requester controls (names, reasons, tickets, groups) is untrusted.
//!
//! Before it reaches the terminal it is made inert: C0/C1 control characters
//! (ESC among them, so no escape sequence survives), DEL, bidi overrides and
//! isolates, zero-width characters, tag characters and Hangul fillers (both
//! invisible, so they can hide or fake text) are replaced by a visible `�`;
//! line breaks (also U+2028/U+2029) and tabs become a single space; a flood
//! of combining marks ("zalgo", which smears over neighbouring rows) keeps
//! [`COMBINING_MAX`] marks per base character and the rest of the run
//! becomes one `�`; and the result is bounded in characters with a trailing
//! `…` when cut.

use std::borrow::Cow;

/// The replacement shown where a dangerous character was.
pub const REPLACEMENT: char = '\u{FFFD}';

/// Default bound for one field shown in a table cell or a detail line.
pub const FIELD_MAX: usize = 256;

/// Combining marks kept on one base character (enough for real scripts,
/// e.g. Vietnamese stacks two).
pub const COMBINING_MAX: usize = 2;

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
            | '\u{E0000}'..='\u{E007F}' // tag characters (invisible ASCII copies)
            | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' // Hangul fillers
        )
}

/// Line and paragraph breaks, and tabs: shown as one space.
fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\t' | '\u{2028}' | '\u{2029}')
}

/// The combining-mark blocks (general category Mn in practice) that stack
/// on the previous character.
fn is_combining(c: char) -> bool {
    matches!(
        c,
        '\u{0300}'..='\u{036F}'
            | '\u{1AB0}'..='\u{1AFF}'
            | '\u{1DC0}'..='\u{1DFF}'
            | '\u{20D0}'..='\u{20FF}'
            | '\u{FE20}'..='\u{FE2F}'
    )
}

/// Whether `text` is already inert: nothing to replace, no break, no run
/// of more than [`COMBINING_MAX`] combining marks.
fn is_clean(text: &str) -> bool {
    let mut run = 0;
    text.chars().all(|c| {
        run = if is_combining(c) { run + 1 } else { 0 };
        run <= COMBINING_MAX && !is_dangerous(c) && !is_break(c)
    })
}

/// Makes `text` inert for the terminal and bounds it to `max` characters.
pub fn inert(text: &str, max: usize) -> Cow<'_, str> {
    let clean = is_clean(text);
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
    let mut combining_run = 0;
    for c in text.chars() {
        if taken == max {
            out.pop();
            out.push('…');
            return Cow::Owned(out);
        }
        combining_run = if is_combining(c) {
            combining_run + 1
        } else {
            0
        };
        let mapped = if is_break(c) {
            if last_space {
                continue;
            }
            ' '
        } else if combining_run > COMBINING_MAX {
            // One `�` says "marks were dropped here"; the rest add nothing.
            if combining_run > COMBINING_MAX + 1 {
                continue;
            }
            REPLACEMENT
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
    fn line_and_paragraph_separators_become_one_space() {
        assert_eq!(inert("a\u{2028}b\u{2029}\u{2028}c", 100), "a b c");
        assert_eq!(inert("a\n\u{2029}b", 100), "a b");
    }

    #[test]
    fn tag_characters_are_replaced() {
        // "ok" followed by an invisible tagged "hi" and the cancel tag.
        let s = inert("ok\u{E0068}\u{E0069}\u{E007F}", 100);
        assert_eq!(s, "ok\u{FFFD}\u{FFFD}\u{FFFD}");
        assert_eq!(inert("\u{E0000}", 100), "\u{FFFD}");
        // Just outside the block survives (variation selectors supplement).
        assert_eq!(inert("a\u{E0100}", 100), "a\u{E0100}");
    }

    #[test]
    fn hangul_fillers_are_replaced() {
        for filler in ['\u{115F}', '\u{1160}', '\u{3164}', '\u{FFA0}'] {
            let text = format!("a{filler}b");
            assert_eq!(inert(&text, 100), "a\u{FFFD}b", "{:X}", filler as u32);
        }
        assert_eq!(inert("한국어", 100), "한국어");
    }

    #[test]
    fn combining_floods_keep_two_marks_per_base() {
        let zalgo = format!("a{}b", "\u{0301}".repeat(50));
        assert_eq!(inert(&zalgo, 100), "a\u{0301}\u{0301}\u{FFFD}b");
        // Each block counts, and runs mix blocks.
        let mixed = "x\u{1AB0}\u{1DC0}\u{20D0}\u{FE20}\u{0300}y";
        assert_eq!(inert(mixed, 100), "x\u{1AB0}\u{1DC0}\u{FFFD}y");
        // Two marks (Vietnamese "ệ" decomposed) are text, left borrowed.
        let viet = "e\u{0323}\u{0302}";
        assert!(matches!(inert(viet, 100), Cow::Borrowed(_)));
        // The count restarts at every base character.
        let ok = "a\u{0301}\u{0301}b\u{0301}\u{0301}";
        assert!(matches!(inert(ok, 100), Cow::Borrowed(_)));
    }

    #[test]
    fn a_combining_flood_cannot_beat_the_bound() {
        let flood = "\u{0301}".repeat(10_000);
        let s = inert(&flood, 20);
        assert!(s.chars().count() <= 20);
        assert_eq!(s, "\u{0301}\u{0301}\u{FFFD}");
    }

    #[test]
    fn unicode_letters_survive() {
        assert_eq!(inert("Zoë 日本", 100), "Zoë 日本");
    }
}
