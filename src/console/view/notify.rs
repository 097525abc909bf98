//! The bell and a desktop notification, written to the terminal between
//! two frames (as OSC 52 is): BEL always, then OSC 9 (iTerm2, Windows
//! Terminal, WezTerm, kitty, ConEmu) or OSC 777 (VTE terminals such as
//! GNOME Terminal, foot, Ghostty, urxvt) where the terminal is known to
//! show it. A terminal that is not known gets the bell only: an OSC it
//! does not understand may print as garbage on some.
//!
//! The text is made inert first and loses `;` (OSC 777 separates its
//! fields with it), so nothing a requester wrote can end the sequence.

use std::io::Write;

use crate::console::state::arrivals::Notification;
use crate::domain::sanitize::inert;

/// How the terminal shows a desktop notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Desktop {
    /// `ESC ] 9 ; text BEL`.
    Osc9,
    /// `ESC ] 777 ; notify ; title ; text BEL`.
    Osc777,
    /// Only the bell.
    None,
}

impl Desktop {
    /// Judged by what terminals put in the environment.
    pub(crate) fn detect(var: impl Fn(&str) -> Option<String>) -> Self {
        let program = var("TERM_PROGRAM").unwrap_or_default();
        let term = var("TERM").unwrap_or_default();
        if var("TMUX").is_some() || term.starts_with("screen") {
            // A multiplexer eats OSCs it does not know; its bell passes.
            return Self::None;
        }
        match program.as_str() {
            "iTerm.app" | "WezTerm" => return Self::Osc9,
            "ghostty" => return Self::Osc777,
            _ => {}
        }
        if var("WT_SESSION").is_some() || var("ConEmuANSI").is_some() || term == "xterm-kitty" {
            return Self::Osc9;
        }
        if var("VTE_VERSION").is_some() || term.starts_with("foot") || term.starts_with("rxvt") {
            return Self::Osc777;
        }
        Self::None
    }

    pub(crate) fn from_env() -> Self {
        Self::detect(|k| std::env::var(k).ok())
    }
}

/// The bytes for one notification.
pub(crate) fn sequence(n: &Notification, desktop: Desktop) -> String {
    let text = inert(&n.text, 400).replace(';', ",");
    let mut out = String::from("\x07");
    match desktop {
        Desktop::Osc9 => out.push_str(&format!("\x1b]9;Portcullis: {text}\x07")),
        Desktop::Osc777 => out.push_str(&format!("\x1b]777;notify;Portcullis;{text}\x07")),
        Desktop::None => {}
    }
    out
}

/// Writes the notification to the terminal (between two frames).
pub(crate) fn emit(n: &Notification, desktop: Desktop) -> std::io::Result<()> {
    let mut out = std::io::stdout();
    out.write_all(sequence(n, desktop).as_bytes())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_terminal_decides_the_sequence() {
        assert_eq!(
            Desktop::detect(env(&[("TERM_PROGRAM", "iTerm.app")])),
            Desktop::Osc9
        );
        assert_eq!(Desktop::detect(env(&[("WT_SESSION", "x")])), Desktop::Osc9);
        assert_eq!(
            Desktop::detect(env(&[("VTE_VERSION", "7600")])),
            Desktop::Osc777
        );
        assert_eq!(
            Desktop::detect(env(&[("TERM", "xterm-256color")])),
            Desktop::None
        );
        assert_eq!(
            Desktop::detect(env(&[("TERM_PROGRAM", "WezTerm"), ("TMUX", "/tmp/x")])),
            Desktop::None
        );
    }

    #[test]
    fn requester_text_cannot_end_the_sequence() {
        let n = Notification {
            count: 1,
            text: "new request: mallory\x07\x1b]52;c;eA==\x07 asks; for edit".into(),
        };
        let s = sequence(&n, Desktop::Osc777);
        assert!(s.starts_with("\x07\x1b]777;notify;Portcullis;"));
        // One BEL to ring, one to end the OSC: nothing else.
        assert_eq!(s.matches('\x07').count(), 2, "{s:?}");
        assert_eq!(s.matches('\x1b').count(), 1, "{s:?}");
        assert_eq!(s.matches(';').count(), 3, "{s:?}");
        assert_eq!(sequence(&n, Desktop::None), "\x07");
    }
}
