//! `c`: the selected request's name to the terminal's clipboard with OSC 52,
//! as k9s does. Off unless the config says `osc52 = true` (a terminal that
//! honours OSC 52 lets any program that writes to it set the clipboard, so
//! it is the user's choice). Only a request name is ever written, made
//! inert first.

use std::io::Write;

use base64::Engine;

use crate::domain::sanitize::inert;

/// The escape sequence that puts `text` on the clipboard.
pub fn osc52(text: &str) -> String {
    let text = inert(text, 253);
    let data = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    format!("\x1b]52;c;{data}\x07")
}

/// Writes the sequence to the terminal (between two frames).
pub fn copy(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout();
    out.write_all(osc52(text).as_bytes())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osc52_carries_the_name_base64() {
        assert_eq!(
            osc52("erin-payments-6ru4"),
            "\x1b]52;c;ZXJpbi1wYXltZW50cy02cnU0\x07"
        );
        // Nothing terminal-active can ride along.
        assert!(!osc52("a\x1b]52;c;x\x07b").contains("\x1b]52;c;x"));
    }
}
