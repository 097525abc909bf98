//! `portcullis::domain::duration::parse` on arbitrary text: no panic; what
//! parses is longer than zero, its compact form parses again to at most
//! the same length and formats the same (format is a fixed point), and an
//! error's message is inert for the terminal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::domain::duration;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match duration::parse(text) {
        Ok(d) => {
            assert!(!d.is_zero(), "{text:?} parsed to zero");
            let shown = duration::format(d);
            if d.as_secs() == 0 {
                // Under a second shows as `0s`, which is no duration.
                assert_eq!(shown, "0s");
                return;
            }
            let back = duration::parse(&shown)
                .unwrap_or_else(|e| panic!("{text:?} -> {d:?} -> {shown:?} does not parse: {e}"));
            assert!(
                back <= d,
                "{text:?}: {shown:?} is {back:?}, more than {d:?}"
            );
            assert_eq!(duration::format(back), shown, "{text:?}");
            let signed = chrono::TimeDelta::from_std(d).ok();
            if let Some(s) = signed {
                assert_eq!(duration::format_chrono(s), shown);
                assert_eq!(duration::format_chrono(-s), "0s");
            }
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(
                !msg.chars().any(|c| c.is_control()),
                "{text:?}: the error {msg:?} carries a control character"
            );
        }
    }
});
