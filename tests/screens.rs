//! Rendered screens: insta snapshots at 80×24, 120×40 and 200×50 in the
//! default and mono themes (styles included), the too-small notice, and
//! hostile requester text rendered inert.

mod common;

use std::time::Duration;

use common::{approvable, buffer_text, Harness};
use portcullis::backend::{AccessBackend, NewRequest};
use portcullis::console::view::Theme;
use portcullis::domain::{Credentials, RoleRef, Subject};

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
    assert!(wide.contains("CLUSTER") && wide.contains(" REASON"));
    assert!(
        !narrow.contains(" REASON"),
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

// ---------------------------------------------------------------------------
// Issue 11, item 9: the selection is visible and every text is readable.

use ratatui::style::{Color, Modifier};

type Rgb = (u8, u8, u8);
/// A terminal's default colours: (text, background).
type Terminal = (Rgb, Rgb);

/// xterm's default 16-colour palette: the reference for the ANSI themes.
fn rgb(c: Color, default: Rgb) -> Rgb {
    match c {
        Color::Reset => default,
        Color::Black => (0, 0, 0),
        Color::Red => (0xcd, 0, 0),
        Color::Green => (0, 0xcd, 0),
        Color::Yellow => (0xcd, 0xcd, 0),
        Color::Blue => (0, 0, 0xee),
        Color::Magenta => (0xcd, 0, 0xcd),
        Color::Cyan => (0, 0xcd, 0xcd),
        Color::Gray => (0xe5, 0xe5, 0xe5),
        Color::DarkGray => (0x7f, 0x7f, 0x7f),
        Color::LightRed => (0xff, 0, 0),
        Color::LightGreen => (0, 0xff, 0),
        Color::LightYellow => (0xff, 0xff, 0),
        Color::LightBlue => (0x5c, 0x5c, 0xff),
        Color::LightMagenta => (0xff, 0, 0xff),
        Color::LightCyan => (0, 0xff, 0xff),
        Color::White => (0xff, 0xff, 0xff),
        Color::Rgb(r, g, b) => (r, g, b),
        Color::Indexed(i) => panic!("indexed colour {i}: not in any built-in theme"),
    }
}

/// WCAG 2 relative luminance and contrast ratio.
fn contrast(a: Rgb, b: Rgb) -> f64 {
    let lum = |(r, g, b): Rgb| {
        let lin = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.03928 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
    };
    let (x, y) = (lum(a), lum(b));
    (x.max(y) + 0.05) / (x.min(y) + 0.05)
}

/// The colours a cell shows on a terminal whose default colours are
/// `term` (fg, bg): reverse video swaps them, dim moves the text a third of
/// the way to the background.
fn shown(cell: &ratatui::buffer::Cell, term: Terminal) -> (Rgb, Rgb) {
    let (mut fg, mut bg) = (rgb(cell.fg, term.0), rgb(cell.bg, term.1));
    if cell.modifier.contains(Modifier::REVERSED) {
        std::mem::swap(&mut fg, &mut bg);
    }
    if cell.modifier.contains(Modifier::DIM) {
        let mix = |f: u8, b: u8| ((2 * u16::from(f) + u16::from(b)) / 3) as u8;
        fg = (mix(fg.0, bg.0), mix(fg.1, bg.1), mix(fg.2, bg.2));
    }
    (fg, bg)
}

const DARK: Terminal = ((0xe5, 0xe5, 0xe5), (0, 0, 0));
const LIGHT: Terminal = ((0, 0, 0), (0xff, 0xff, 0xff));

/// Every built-in theme with the terminals it is meant for.
fn every_theme() -> Vec<(&'static str, Theme, Vec<Terminal>)> {
    portcullis::console::view::theme::BUILT_IN
        .iter()
        .map(|(name, _)| {
            let terms = match *name {
                "light" => vec![LIGHT],
                "mono" => vec![DARK, LIGHT],
                _ => vec![DARK],
            };
            (*name, Theme::built_in(name).unwrap(), terms)
        })
        .collect()
}

fn check_contrast(h: &Harness, what: &str) {
    for (name, theme, terms) in every_theme() {
        for (w, hgt) in [(80, 24), (120, 40)] {
            let t = h.terminal(w, hgt, &theme);
            let buf = t.backend().buffer();
            for term in &terms {
                for y in 0..buf.area.height {
                    for x in 0..buf.area.width {
                        let cell = &buf[(x, y)];
                        let sym = cell.symbol();
                        if sym.trim().is_empty() {
                            continue;
                        }
                        let border = sym.chars().all(|c| ('\u{2500}'..='\u{257f}').contains(&c));
                        let need = if border { 3.0 } else { 4.5 };
                        let (fg, bg) = shown(cell, *term);
                        let ratio = contrast(fg, bg);
                        assert!(
                            ratio >= need,
                            "{what} in {name} at {w}x{hgt}: '{sym}' at ({x},{y}) has contrast {ratio:.2} < {need} ({:?} on {:?}, {:?})\n{}",
                            cell.fg,
                            cell.bg,
                            cell.modifier,
                            buffer_text(buf)
                        );
                    }
                }
            }
        }
    }
}

#[tokio::test]
async fn every_theme_passes_the_contrast_check() {
    let mut h = Harness::new(3);
    check_contrast(&h, "pending");
    h.press("j").await;
    check_contrast(&h, "pending, second row");
    h.press("2").await;
    check_contrast(&h, "live grants");
    h.press("3").await;
    check_contrast(&h, "history");
    h.press("1").await;
    h.select(|r| approvable(r) && r.role.name == "admin");
    h.press("a").await;
    check_contrast(&h, "approve dialog");
    h.press("<esc>d<enter>").await;
    check_contrast(&h, "deny dialog with an error");
    h.press("<esc><esc>?").await;
    check_contrast(&h, "help");
    h.press("<esc>/risk:bogus").await;
    check_contrast(&h, "filter with an error");
}

/// The selected row is one style from edge to edge: no cell keeps the
/// terminal's own foreground or a colour of its own on the selection.
#[tokio::test]
async fn the_selected_row_is_one_readable_style() {
    let mut h = Harness::new(3);
    h.select(|r| approvable(r) && r.role.name == "deployer");
    for (name, theme, _) in every_theme() {
        let t = h.terminal(120, 40, &theme);
        let buf = t.backend().buffer();
        let text = buffer_text(buf);
        // In the list (the first box on the row), not the detail beside it.
        let y = text
            .lines()
            .position(|l| {
                let list = l.split('│').nth(1).unwrap_or("");
                list.contains("deployer") && list.contains("erin")
            })
            .expect("the selected row") as u16;
        let first = (1..buf.area.width)
            .find(|x| buf[(*x, y)].symbol() != "│")
            .unwrap();
        let style = |x: u16| (buf[(x, y)].fg, buf[(x, y)].bg, buf[(x, y)].modifier);
        let expect = style(first);
        let mut x = first;
        while buf[(x, y)].symbol() != "│" {
            assert_eq!(
                style(x),
                expect,
                "{name}: column {x} of the selected row\n{text}"
            );
            x += 1;
        }
        let (fg, bg, m) = expect;
        assert!(
            (fg != Color::Reset && bg != Color::Reset) || m.contains(Modifier::REVERSED),
            "{name}: the selection sets both colours, or reverses: {expect:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Issue 11, item 10: decide from one screen.

/// Every pending request of `demo --seed 3`, at 80×24 with no key but the
/// cursor: the verdict, the reason and the worst new permission (or that
/// nothing is new, or why it can only be denied) are on screen.
#[tokio::test]
async fn every_request_of_seed_3_is_decidable_at_80x24_without_scrolling() {
    let mut h = Harness::new(3);
    let keys = h
        .state
        .list(portcullis::console::state::View::Pending)
        .to_vec();
    assert_eq!(keys.len(), 9);
    for key in keys {
        h.select(|r| r.name == key.name);
        let screen = h.screen(80, 24);
        if std::env::var("SHOW_SCREENS").is_ok() {
            println!("{screen}");
        }
        let pane = common::boxed(&screen, &format!(" {} ", key.name));
        let text = common::flat(&pane);
        let e = &h.state.entries.get(&key).unwrap();
        let reason = portcullis::domain::sanitize::inert(&e.req.reason, 30).into_owned();
        assert!(
            text.contains(&common::flat(reason.trim_end_matches('…'))),
            "{}: the reason\n{screen}",
            key.name
        );
        let d = h.state.detail.as_ref().expect("the detail");
        match (&e.invalid, &d.analysis) {
            (Some(_), _) => assert!(
                text.contains("INVAL") && text.contains("can only be denied"),
                "{screen}"
            ),
            (None, Ok(a)) if a.new.is_empty() => assert!(text.contains("Nothing new"), "{screen}"),
            (None, Ok(_)) => {
                let worst = d
                    .diff
                    .iter()
                    .flat_map(|g| g.rows.iter())
                    .map(|r| r.risk.severity)
                    .max()
                    .unwrap();
                let badge = worst.badge();
                assert!(
                    text.starts_with(badge),
                    "{}: the verdict first\n{screen}",
                    key.name
                );
                let rows: Vec<&str> = pane
                    .lines()
                    .skip_while(|l| !l.starts_with("NEW PERMISSIONS"))
                    .collect();
                assert!(
                    rows.iter().any(|l| l.trim_start().starts_with(badge)),
                    "{}: a worst permission row\n{screen}",
                    key.name
                );
            }
            (None, Err(e)) => panic!("{e}"),
        }
    }
}

/// The decision-first detail: verdict, flags, reason, worst permissions
/// first (a request with a narrower role to suggest and a recent denial).
#[tokio::test]
async fn decision_first_detail() {
    let mut h = Harness::new(3);
    h.select(|r| r.requester.user == "alice" && r.role.name == "admin");
    check_all(&h, "decision_first").await;
}

/// Item 12: RISK in every list at every width; History has WHEN; Pending
/// has NEW; a cut ends in `…` and only when no room stands empty.
#[tokio::test]
async fn columns_follow_content_and_space() {
    let mut h = Harness::new(3);
    for (key, view, must, from) in [
        ("1", "Pending", &["RISK", "NEW"][..], 160),
        ("2", "Live grants", &["RISK", "LEFT"][..], 120),
        ("3", "History", &["RISK", "WHEN"][..], 120),
    ] {
        h.press(key).await;
        for w in [60u16, 70, 80, 100, 120, 160, 200] {
            let screen = h.screen(w, 50);
            let list = common::boxed(&screen, &format!(" {view} ["));
            let header = list.lines().next().unwrap();
            assert!(header.contains("RISK"), "{view} at {w}: RISK\n{list}");
            if w >= from {
                for m in must {
                    assert!(header.contains(m), "{view} at {w}: {m}\n{list}");
                }
            }
            // A cut only when the table already fills the pane: no room
            // stands empty at its right.
            let top = screen
                .lines()
                .find(|l| l.contains(&format!(" {view} [")))
                .unwrap();
            let chars: Vec<char> = top.chars().collect();
            let left = chars.iter().position(|c| *c == '┌').unwrap();
            let right = chars.iter().position(|c| *c == '┐').unwrap();
            let inner = right - left - 1;
            let used = list.lines().map(|l| l.chars().count()).max().unwrap_or(0);
            if list.lines().skip(1).any(|l| l.contains('…')) {
                assert!(
                    inner - used < 3,
                    "{view} at {w}: cut while {} columns stand empty:\n{list}",
                    inner - used
                );
            }
        }
    }
}

/// The folded diff (issue 10, item 6): a newcomer asks for edit in two
/// namespaces; reads fold into one line per namespace under the CRIT and
/// HIGH rows, at three sizes; then listed with `x`.
#[tokio::test]
async fn folded_reads() {
    let mut h = Harness::new(1);
    let created = h
        .backend
        .create(NewRequest {
            cluster: "staging-eu-west".into(),
            requester: Subject::new("newcomer", &[]),
            role: RoleRef::cluster_role("edit"),
            namespaces: vec!["payments".into(), "orders".into()],
            duration: Duration::from_secs(1800),
            reason: "INC-2 first day on call".into(),
            ticket: None,
            credentials: Credentials::Identity,
            extends: None,
        })
        .await
        .unwrap();
    h.settle().await;
    h.select(|r| r.name == created.name);
    let theme = Theme::built_in("default").unwrap();
    for (w, hgt) in SIZES {
        insta::assert_snapshot!(
            format!("folded_reads_{w}x{hgt}"),
            snapshot(&h, w, hgt, &theme)
        );
    }
    h.press("x").await;
    insta::assert_snapshot!("listed_reads_200x50", snapshot(&h, 200, 50, &theme));
}
