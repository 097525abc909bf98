//! Rendered screens: insta snapshots at 80×24, 120×40 and 200×50 in the
//! default and mono themes (styles included), the too-small notice, and
//! hostile requester text rendered inert.

mod common;

use std::time::Duration;

use common::{approvable, buffer_text, Harness};
use portcullis::backend::{AccessBackend, NewRequest};
use portcullis::domain::{Credentials, RoleRef, Subject};
use portcullis::ui::Theme;

const SIZES: [(u16, u16); 3] = [(80, 24), (120, 40), (200, 50)];

/// The screen text, then one line per row listing style runs, so a theme
/// change shows up in review as well as a layout change.
fn snapshot(h: &Harness, w: u16, hgt: u16, theme: &Theme) -> String {
    let t = h.terminal(w, hgt, theme);
    let buf = t.backend().buffer();
    let mut out = buffer_text(buf);
    out.push_str("--- styles (row: x..x fg/bg/mods) ---\n");
    for y in 0..buf.area.height {
        let mut runs: Vec<String> = Vec::new();
        let mut start = 0;
        for x in 0..=buf.area.width {
            let same = x < buf.area.width && x > 0 && {
                let (a, b) = (&buf[(x - 1, y)], &buf[(x, y)]);
                a.fg == b.fg && a.bg == b.bg && a.modifier == b.modifier
            };
            if x > 0 && !same {
                let c = &buf[(start, y)];
                if c.fg != ratatui::style::Color::Reset
                    || c.bg != ratatui::style::Color::Reset
                    || !c.modifier.is_empty()
                {
                    runs.push(format!(
                        "{start}..{} {:?}/{:?}/{:?}",
                        x - 1,
                        c.fg,
                        c.bg,
                        c.modifier
                    ));
                }
                start = x;
            }
        }
        if !runs.is_empty() {
            out.push_str(&format!("{y}: {}\n", runs.join(", ")));
        }
    }
    out
}

fn themes() -> [(&'static str, Theme); 2] {
    [
        ("default", Theme::built_in("default").unwrap()),
        ("mono", Theme::mono()),
    ]
}

async fn check_all(h: &Harness, screen: &str) {
    for (name, theme) in themes() {
        for (w, hgt) in SIZES {
            insta::assert_snapshot!(
                format!("{screen}_{name}_{w}x{hgt}"),
                snapshot(h, w, hgt, &theme)
            );
        }
    }
}

#[tokio::test]
async fn pending_view() {
    let mut h = Harness::new(1);
    h.select(approvable);
    check_all(&h, "pending").await;
}

#[tokio::test]
async fn live_grants_view() {
    let mut h = Harness::new(1);
    h.press("2").await;
    check_all(&h, "grants").await;
}

#[tokio::test]
async fn history_view() {
    let mut h = Harness::new(1);
    h.press("3j").await;
    check_all(&h, "history").await;
}

#[tokio::test]
async fn help_screen() {
    let mut h = Harness::new(1);
    h.press("?").await;
    check_all(&h, "help").await;
}

#[tokio::test]
async fn approve_confirmation() {
    let mut h = Harness::new(1);
    h.select(|r| approvable(r) && r.cluster == "prod-eu-west");
    h.press("a").await;
    check_all(&h, "approve_confirm").await;
}

#[tokio::test]
async fn deny_reason_form_with_error() {
    let mut h = Harness::new(1);
    h.select(approvable);
    h.press("d<enter>").await;
    for (w, hgt) in SIZES {
        insta::assert_snapshot!(
            format!("deny_reason_{w}x{hgt}"),
            buffer_text(h.terminal(w, hgt, &Theme::mono()).backend().buffer())
        );
    }
}

#[tokio::test]
async fn too_small_terminal_shows_a_notice() {
    let h = Harness::new(1);
    let text = h.screen(59, 14);
    assert!(text.contains("Terminal too small"), "{text}");
    assert!(text.contains("59×14: Portcullis needs at least 60×15"));
    insta::assert_snapshot!("too_small_59x14", text);
    assert!(!h.screen(60, 15).contains("Terminal too small"));
}

#[tokio::test]
async fn narrow_terminals_stack_panes_and_drop_columns() {
    let h = Harness::new(1);
    let narrow = h.screen(80, 24);
    let wide = h.screen(200, 50);
    assert!(wide.contains("CLUSTER") && wide.contains(" AGE "));
    assert!(
        !narrow.contains(" AGE "),
        "columns drop by width:\n{narrow}"
    );
    // Stacked: the detail pane's border starts below the list, at column 0.
    let detail_row = narrow
        .lines()
        .position(|l| l.starts_with("┌") && l.contains(" on "))
        .expect("detail pane title");
    assert!(detail_row > 3, "{narrow}");
}

fn new_hostile() -> NewRequest {
    NewRequest {
        cluster: "prod-eu-west".into(),
        requester: Subject::new(
            "eve\x1b]52;c;cHduZWQ=\x07",
            &["dev\u{202E}nimda", "\x1b[2J"],
        ),
        role: RoleRef::cluster_role("view"),
        namespaces: vec!["payments".into()],
        duration: Duration::from_secs(600),
        reason: format!(
            "\x1b[31mred\x1b[0m \u{9b}2J \u{2067}hidden\u{2069} {}",
            "A".repeat(100_000)
        ),
        ticket: Some("\x1b[8mINC\x07".into()),
        credentials: Credentials::Identity,
        extends: None,
    }
}

#[tokio::test]
async fn hostile_text_renders_inert() {
    let mut h = Harness::new(1);
    let hostile = h.backend.create(new_hostile()).await.unwrap();
    h.pump();
    h.select(|r| r.name == hostile.name);
    for (name, theme) in themes() {
        for (w, hgt) in SIZES {
            let t = h.terminal(w, hgt, &theme);
            let buf = t.backend().buffer();
            for cell in buf.content() {
                for c in cell.symbol().chars() {
                    assert!(
                        !c.is_control()
                            && !matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{9b}'),
                        "{name} {w}x{hgt}: {c:?} reached the screen"
                    );
                }
            }
            let text = buffer_text(buf);
            assert!(text.contains("eve\u{FFFD}]52;c;cHduZWQ=\u{FFFD}"), "{text}");
        }
    }
    // The huge reason makes it invalid; with a short one the approve dialog
    // names the hostile requester inertly too.
    h.press("a").await;
    assert!(h.flash().contains("invalid"), "{}", h.flash());
    h.press("<esc>").await;
    let short = h
        .backend
        .create(NewRequest {
            reason: "\x1b[31mshort\x1b[0m".into(),
            ..new_hostile()
        })
        .await
        .unwrap();
    h.pump();
    h.select(|r| r.name == short.name);
    h.press("a").await;
    let text = buffer_text(h.terminal(200, 50, &Theme::mono()).backend().buffer());
    assert!(text.contains("Grant    eve\u{FFFD}]52"), "{text}");
}
