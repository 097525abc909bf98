//! README.md stays true: every key in the registry is documented, and the
//! two commands are the ones CI runs.

use portcullis::console::state::keymap::KEYMAP;

const README: &str = include_str!("../README.md");

#[test]
fn every_key_is_in_the_readme() {
    for b in KEYMAP {
        for label in b.label.split(' ') {
            assert!(
                README.contains(&format!("`{label}`")),
                "README misses key `{label}` ({})",
                b.help
            );
        }
    }
}

#[test]
fn ci_runs_the_readme_test_command() {
    assert!(README.contains("```sh\n./scripts/test\n```"));
    assert!(README.contains("```sh\ncargo run --release -- demo\n```"));
    let ci = include_str!("../.ci/run");
    assert!(ci.contains("./scripts/test"));
}
