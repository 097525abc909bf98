//! Console benchmarks (a bench binary, not timed tests): `cargo bench`.
//!
//! - one frame at 200×50 with 10,000 pending requests and 1,000 live grants
//!   (p50 / p99 / max over many frames, list scrolled to different places);
//! - ingesting those 11,000 requests (one batched backend event);
//! - resident memory of the process holding them;
//! - start to first frame of the real binary in a pseudo-terminal.

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use portcullis::backend::demo::org::{self, CLUSTERS, PEOPLE};
use portcullis::backend::BackendEvent;
use portcullis::console::state::app::{AppConfig, View};
use portcullis::console::state::AppState;
use portcullis::console::update::{update, Action};
use portcullis::console::view::{self, Theme};
use portcullis::domain::request::{Approval, Status};
use portcullis::domain::{AccessRequest, Credentials, RoleRef};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
#[path = "common/mod.rs"]
mod common;
use common::{ms, percentile, rss_kib};

const ROLES: &[(&str, bool)] = &[
    ("edit", true),
    ("view", true),
    ("debugger", true),
    ("admin", true),
    ("secret-reader", true),
];

fn request(i: usize, now: DateTime<Utc>) -> AccessRequest {
    let p = &PEOPLE[1 + i % (PEOPLE.len() - 1)];
    let (role, _) = ROLES[i % ROLES.len()];
    let ns = p.home[i % p.home.len()];
    AccessRequest {
        name: format!("{}-{ns}-{i:06}", p.user),
        uid: None,
        cluster: CLUSTERS[i % CLUSTERS.len()].to_string(),
        created_at: now - TimeDelta::seconds((i % 7200) as i64),
        requester: p.subject(),
        role: RoleRef::cluster_role(role),
        namespaces: vec![ns.to_string()],
        duration: Duration::from_secs(1800),
        reason: format!("INC-{i}: load test request number {i} with a realistic reason length"),
        ticket: Some(format!("INC-{i}")),
        credentials: Credentials::Identity,
        extends: None,
        status: Status::default(),
        malformed: None,
    }
}

fn events(now: DateTime<Utc>, pending: usize, live: usize) -> Vec<BackendEvent> {
    let mut out: Vec<BackendEvent> = CLUSTERS
        .iter()
        .map(|c| BackendEvent::Inventory {
            cluster: c.to_string(),
            inventory: Arc::new(org::inventory(c)),
        })
        .collect();
    for i in 0..pending + live {
        let mut r = request(i, now);
        if i >= pending {
            let ns = r.namespaces.clone();
            let at = now - TimeDelta::seconds((i % 1500) as i64);
            r.approve(
                Approval {
                    by: "approver-bench".into(),
                    at,
                    duration: r.duration,
                    namespaces: ns,
                    reason: None,
                },
                &Default::default(),
            )
            .expect("valid");
        }
        out.push(BackendEvent::Upsert(Box::new(r)));
    }
    out
}

fn main() {
    // `cargo test --benches` runs this with --test? Keep it quick then.
    let quick = std::env::args().any(|a| a == "--test");
    let now = DateTime::from_timestamp(1_795_662_000, 0).expect("time");
    let rss_before = rss_kib();
    let batch = events(now, 10_000, 1_000);
    let mut state = AppState::new(AppConfig::default(), PEOPLE[0].subject(), "bench", now);
    let t = Instant::now();
    update(&mut state, Action::Backend(batch));
    let ingest = t.elapsed();
    let rss_after = rss_kib();
    assert_eq!(state.list(View::Pending).len(), 10_000);
    assert_eq!(state.list(View::Grants).len(), 1_000);

    let theme = Theme::built_in("default").expect("theme");
    let mut terminal = Terminal::new(TestBackend::new(200, 50)).expect("terminal");
    let frames = std::env::var("PORTCULLIS_BENCH_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 20 } else { 3_000 });
    let mut times = Vec::with_capacity(frames);
    let mut render_only = Vec::with_capacity(frames);
    for i in 0..frames {
        // Move around the list and between views, as a user would.
        state.cursor[0] = (i * 37) % 10_000;
        state.cursor[1] = (i * 13) % 1_000;
        state.view = if i % 4 == 3 {
            View::Grants
        } else {
            View::Pending
        };
        update(
            &mut state,
            Action::Tick(now + TimeDelta::milliseconds(i as i64 * 250)),
        );
        let t = Instant::now();
        let mut inner = Duration::ZERO;
        terminal
            .draw(|f| {
                let t = Instant::now();
                view::render(f, &state, &theme);
                inner = t.elapsed();
            })
            .expect("draw");
        times.push(t.elapsed());
        render_only.push(inner);
    }
    times.sort();
    render_only.sort();
    println!(
        "frame 200x50, 10,000 pending + 1,000 live ({frames} frames; Tick reduction not included):"
    );
    println!(
        "  p50 {}  p99 {}  max {}",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        ms(*times.last().expect("frames"))
    );
    println!(
        "  of which building the frame (view::render; the rest is ratatui's diff and backend write): p50 {}  p99 {}",
        ms(percentile(&render_only, 0.5)),
        ms(percentile(&render_only, 0.99))
    );
    println!("ingest 11,000 requests in one batch: {}", ms(ingest));
    println!(
        "resident memory: {:.1} MiB total with 11,000 requests ({:.1} MiB for building and holding them)",
        rss_after as f64 / 1024.0,
        rss_after.saturating_sub(rss_before) as f64 / 1024.0
    );

    if std::env::var_os("PORTCULLIS_BENCH_PARTS").is_some() {
        parts(&state, &theme);
    }
    if quick {
        return;
    }
    // Start to first frame of the real binary in a pseudo-terminal.
    let mut starts = Vec::new();
    for _ in 0..15 {
        starts.push(first_frame());
    }
    starts.sort();
    println!(
        "start to first frame (`portcullis demo` in a pty, 15 runs): p50 {}  max {}",
        ms(percentile(&starts, 0.5)),
        ms(*starts.last().expect("runs"))
    );
}

fn first_frame() -> Duration {
    use portable_pty::{native_pty_system, CommandBuilder, PtySize};
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 50,
            cols: 200,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("pty");
    let home = std::env::temp_dir().join("portcullis-bench-home");
    std::fs::create_dir_all(&home).expect("bench home");
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.args(["demo", "--seed", "1", "--rate", "0s"]);
    cmd.env("HOME", &home);
    cmd.env("XDG_STATE_HOME", home.join("state"));
    cmd.env("XDG_CONFIG_HOME", home.join("config"));
    let start = Instant::now();
    let mut child = pair.slave.spawn_command(cmd).expect("spawn");
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().expect("reader");
    let mut writer = pair.master.take_writer().expect("writer");
    let mut seen = Vec::new();
    let mut buf = [0u8; 16384];
    let elapsed = loop {
        let n = reader.read(&mut buf).expect("read");
        assert!(n > 0, "exited before drawing");
        seen.extend_from_slice(&buf[..n]);
        // The footer is the last thing the first frame draws.
        if seen.windows(4).any(|w| w == b"quit") {
            break start.elapsed();
        }
    };
    use std::io::Write;
    writer.write_all(b"q").expect("quit");
    let _ = child.wait();
    elapsed
}

#[allow(dead_code)]
pub fn parts(state: &AppState, theme: &Theme) {
    let mut terminal = Terminal::new(TestBackend::new(200, 50)).expect("terminal");
    let area = ratatui::layout::Rect::new(0, 2, 112, 46);
    let darea = ratatui::layout::Rect::new(112, 2, 88, 46);
    for (name, which) in [("table", 0), ("detail", 1), ("all", 2)] {
        let mut v = Vec::new();
        for _ in 0..200 {
            terminal
                .draw(|f| {
                    let t = Instant::now();
                    match which {
                        0 => portcullis::console::view::table::render(f, area, state, theme),
                        1 => portcullis::console::view::detail::render(f, darea, state, theme),
                        _ => view::render(f, state, theme),
                    }
                    v.push(t.elapsed());
                })
                .expect("draw");
        }
        v.sort();
        println!("{name}: p50 {}", ms(percentile(&v, 0.5)));
    }
}
