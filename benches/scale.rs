//! The console at scale (a bench binary, not timed tests):
//! `cargo bench --bench scale`.
//!
//! 100,000 stored requests (5,000 pending, 10,000 live grants, 85,000 in
//! history) across 20 clusters, each with its own RBAC inventory:
//! - one frame at 200×50 (p50 / p99 / max) moving through every view, as
//!   the bytes a terminal receives (crossterm's escape sequences, into a
//!   counting sink);
//! - resident memory of the process holding them;
//! - while 1,000 new requests per second stream in (a producer thread at
//!   real time), the time from a request's arrival to the end of the first
//!   frame that includes it, written out (the event loop's batching:
//!   drain, reduce, draw), p50 / p99 over 5 s.
//!
//! The allocator is the binary's (mimalloc), and after the first batch the
//! benchmark returns freed memory as the event loop does.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use portcullis::backend::demo::org::{self, PEOPLE};
use portcullis::backend::BackendEvent;
use portcullis::console::state::app::{AppConfig, View};
use portcullis::console::state::AppState;
use portcullis::console::update::{update, Action};
use portcullis::console::view::{self, Theme};
use portcullis::domain::request::{Approval, Status};
use portcullis::domain::{AccessRequest, Credentials, RoleRef};
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};
#[path = "common/mod.rs"]
mod common;
use common::{ms, percentile, rss_kib};

const ROLES: &[&str] = &["edit", "view", "debugger", "admin", "secret-reader"];
const CLUSTERS: usize = 20;

fn cluster(i: usize) -> String {
    format!("cluster-{:02}", i % CLUSTERS)
}

/// How many distinct requesters (`PORTCULLIS_SCALE_USERS`; default 2,000):
/// each has a demo person's groups and home namespaces, so the risk of a
/// request is analysed once per requester, cluster, role and namespace.
fn users() -> usize {
    std::env::var("PORTCULLIS_SCALE_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

fn request(i: usize, now: DateTime<Utc>) -> AccessRequest {
    let p = &PEOPLE[1 + i % (PEOPLE.len() - 1)];
    let ns = p.home[i % p.home.len()];
    let mut requester = p.subject();
    let u = (i / (PEOPLE.len() - 1)) % users().div_ceil(PEOPLE.len() - 1);
    requester.user = format!("{}{u}", p.user);
    AccessRequest {
        name: format!("{}-{ns}-{i:07}", requester.user),
        uid: None,
        cluster: cluster(i),
        created_at: now - TimeDelta::seconds((i % 86_400) as i64),
        requester,
        role: RoleRef::cluster_role(ROLES[i % ROLES.len()]),
        namespaces: vec![ns.to_string()],
        duration: Duration::from_secs(3600),
        reason: format!("INC-{i}: load test request number {i} with a realistic reason length"),
        ticket: Some(format!("INC-{i}")),
        credentials: Credentials::Identity,
        extends: None,
        status: Status::default(),
        malformed: None,
    }
}

fn approved(mut r: AccessRequest, at: DateTime<Utc>) -> AccessRequest {
    let ns = r.namespaces.clone();
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
    r
}

/// A terminal that counts the bytes it is sent.
struct Counting;

static WRITTEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl std::io::Write for Counting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        WRITTEN.fetch_add(buf.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn pct(v: &[Duration], p: f64) -> String {
    ms(percentile(v, p))
}

/// How many stored requests of each kind.
#[derive(Clone, Copy)]
struct Counts {
    pending: usize,
    live: usize,
    history: usize,
}

/// The terminal the frames are drawn on: 200×50, counting its bytes.
type Counted = Terminal<CrosstermBackend<Counting>>;

fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let scale = if quick { 20 } else { 1 };
    let now = Utc::now();
    let counts = Counts {
        pending: 5_000 / scale,
        live: 10_000 / scale,
        history: 85_000 / scale,
    };
    let (mut state, ingest, rss) = ingest_in_one_batch(now, counts);
    let theme = Theme::built_in("default").expect("theme");
    let mut terminal = counting_terminal();
    let times = frames_over_every_view(&mut state, &mut terminal, &theme, now, quick);
    print_the_store(&state, counts, ingest, &times, rss);
    filter_keystrokes(&mut state);
    new_requests_streaming_in(&mut state, &mut terminal, &theme, quick);
}

/// Every stored request in one batch, as the console ingests a first
/// sync: the state, how long it took, and resident memory after it.
fn ingest_in_one_batch(now: DateTime<Utc>, counts: Counts) -> (AppState, Duration, u64) {
    let Counts {
        pending,
        live,
        history,
    } = counts;
    let mut batch: Vec<BackendEvent> = (0..CLUSTERS)
        .map(|c| BackendEvent::Inventory {
            cluster: cluster(c),
            inventory: Arc::new(org::inventory(org::CLUSTERS[c % org::CLUSTERS.len()])),
        })
        .collect();
    for i in 0..pending + live + history {
        let r = request(i, now);
        let r = if i < pending {
            r
        } else if i < pending + live {
            approved(r, now - TimeDelta::seconds((i % 3000) as i64))
        } else {
            let mut r = approved(r, now - TimeDelta::hours(30));
            let _ = r.revoke("approver-bench", now - TimeDelta::hours(29), "done");
            r
        };
        batch.push(BackendEvent::Upsert(Box::new(r)));
    }
    let mut state = AppState::new(AppConfig::default(), PEOPLE[0].subject(), "bench", now);
    let t = Instant::now();
    update(&mut state, Action::Backend(batch));
    // As the console's event loop does after a batch this large.
    portcullis::backend::batch::return_freed_memory();
    let ingest = t.elapsed();
    let rss = rss_kib();
    assert_eq!(state.list(View::Grants).len(), live);
    (state, ingest, rss)
}

/// The bytes a real terminal would receive (crossterm's escape
/// sequences), written to a counting sink: a frame ends when its bytes
/// are written and flushed.
fn counting_terminal() -> Counted {
    Terminal::with_options(
        CrosstermBackend::new(Counting),
        TerminalOptions {
            viewport: Viewport::Fixed(Rect::new(0, 0, 200, 50)),
        },
    )
    .expect("terminal")
}

/// One frame at 200×50 moving through every view; the sorted times.
fn frames_over_every_view(
    state: &mut AppState,
    terminal: &mut Counted,
    theme: &Theme,
    now: DateTime<Utc>,
    quick: bool,
) -> Vec<Duration> {
    let frames = if quick { 20 } else { 3_000 };
    let mut times = Vec::new();
    for i in 0..frames {
        state.view = [View::Pending, View::Grants, View::History][i % 3];
        let v = state.view.index();
        let len = state.list(state.view).len().max(1);
        state.cursor[v] = (i * 7919) % len;
        update(
            state,
            Action::Tick(now + TimeDelta::milliseconds(i as i64 * 250)),
        );
        let t = Instant::now();
        terminal
            .draw(|f| view::render(f, state, theme))
            .expect("draw");
        times.push(t.elapsed());
    }
    times.sort();
    times
}

/// The store, its ingest, its frames and its memory, as measured.
fn print_the_store(
    state: &AppState,
    counts: Counts,
    ingest: Duration,
    times: &[Duration],
    rss: u64,
) {
    let Counts {
        pending,
        live,
        history,
    } = counts;
    println!(
        "{} requests ({pending} pending, {live} live, {history} history) on {CLUSTERS} clusters",
        pending + live + history
    );
    println!(
        "  ingest in one batch: {:.0} ms",
        ingest.as_secs_f64() * 1000.0
    );
    println!(
        "  frame 200x50 over every view: p50 {} p99 {} max {}",
        pct(times, 0.5),
        pct(times, 0.99),
        pct(times, 1.0)
    );
    println!("  resident memory: {:.1} MiB", rss as f64 / 1024.0);
    let (compact, bytes) = state.entries.compact_footprint();
    println!(
        "  ended requests kept compact: {compact}, {:.0} bytes each",
        bytes as f64 / compact.max(1) as f64
    );
}

/// Typing a filter, as the reducer applies each keystroke: the first
/// character and a backspace filter all 100,000 (ended ones read
/// borrowed from their compact form); a keystroke that extends the text
/// filters only the rows already shown.
fn filter_keystrokes(state: &mut AppState) {
    use portcullis::console::state::filter::Filter;
    let (mut widen, mut narrow) = (Vec::new(), Vec::new());
    let typed = [
        "a",
        "al",
        "ali",
        "alic",
        "alice",
        "alic",
        "",
        "p",
        "pa",
        "pay",
        "risk:high",
        "",
    ];
    for _ in 0..3 {
        for text in typed {
            let f = Filter::parse(text);
            let narrows = f.narrows(&state.filter);
            let t = Instant::now();
            state.set_filter(f);
            let took = t.elapsed();
            if narrows {
                narrow.push(took);
            } else {
                widen.push(took);
            }
        }
    }
    widen.sort();
    narrow.sort();
    println!(
        "  a filter keystroke over all of them: p50 {} max {}; one that narrows the rows shown: p50 {} max {}",
        pct(&widen, 0.5),
        pct(&widen, 1.0),
        pct(&narrow, 0.5),
        pct(&narrow, 1.0)
    );
}

/// 1,000 new requests a second, for 5 s (0.25 s in quick mode): from a
/// request's arrival to the end of the first frame that includes it.
fn new_requests_streaming_in(
    state: &mut AppState,
    terminal: &mut Counted,
    theme: &Theme,
    quick: bool,
) {
    let (tx, rx) = mpsc::channel::<(Instant, AccessRequest)>();
    let total = if quick { 250 } else { 5_000 };
    let producer = std::thread::spawn(move || {
        let start = Instant::now();
        for k in 0..total {
            let due = start + Duration::from_micros(1_000 * k as u64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let mut r = request(1_000_000 + k, Utc::now());
            r.created_at = Utc::now();
            if tx.send((Instant::now(), r)).is_err() {
                break;
            }
        }
    });
    let mut latencies = Vec::new();
    let mut seen = 0;
    let mut frames = 0;
    while seen < total {
        let Ok(first) = rx.recv_timeout(Duration::from_secs(5)) else {
            break;
        };
        let mut arrivals = vec![first];
        arrivals.extend(rx.try_iter());
        let events: Vec<BackendEvent> = arrivals
            .iter()
            .map(|(_, r)| BackendEvent::Upsert(Box::new(r.clone())))
            .collect();
        update(state, Action::Backend(events));
        terminal
            .draw(|f| view::render(f, state, theme))
            .expect("draw");
        let shown = Instant::now();
        frames += 1;
        for (at, _) in &arrivals {
            latencies.push(shown - *at);
        }
        seen += arrivals.len();
    }
    let _ = producer.join();
    latencies.sort();
    println!(
        "  1,000 new requests/s for {:.1} s: arrival -> drawn p50 {} p99 {} max {} ({frames} frames, {:.1} requests per frame)",
        total as f64 / 1000.0,
        pct(&latencies, 0.5),
        pct(&latencies, 0.99),
        pct(&latencies, 1.0),
        seen as f64 / frames.max(1) as f64
    );
    println!(
        "  bytes written to the terminal: {:.1} MiB in all",
        WRITTEN.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1048576.0
    );
    println!(
        "  resident memory after the stream: {:.1} MiB",
        rss_kib() as f64 / 1024.0
    );
}
