//! Policy benchmarks (a bench binary, not timed tests): `cargo bench --bench policy`.
//!
//! - decision time per request with the shipped `policies/` (input built
//!   from the request, the diff against the demo's real RBAC, then the Rego
//!   evaluation), p50 / p99 over 10,000 varied requests;
//! - one console frame at 200×50 with 10,000 pending requests that each
//!   carry the server's verdict (verdicts are stored once per change; a
//!   frame only reads them);
//! - direct mode's advisory verdict: moving the selection (which computes
//!   the selected request's detail, diff and verdict once) plus a frame.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use portcullis::backend::demo::org::{self, CLUSTERS, PEOPLE};
use portcullis::backend::{BackendEvent, RequestKey};
use portcullis::console::state::app::{AppConfig, View};
use portcullis::console::state::AppState;
use portcullis::console::update::{update, Action};
use portcullis::console::view::{self, Theme};
use portcullis::domain::rbac::engine::{analyze, GrantRequest};
use portcullis::domain::request::Status;
use portcullis::domain::{AccessRequest, Credentials, RoleRef};
use portcullis::policy::{policy_input, Policy};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
#[path = "common/mod.rs"]
mod common;
use common::{ms, percentile};

const ROLES: &[&str] = &["edit", "view", "debugger", "admin", "secret-reader"];

fn request(i: usize, now: DateTime<Utc>) -> AccessRequest {
    let p = &PEOPLE[1 + i % (PEOPLE.len() - 1)];
    let ns = p.home[i % p.home.len()];
    AccessRequest {
        name: format!("{}-{ns}-{i:06}", p.user),
        uid: None,
        cluster: CLUSTERS[i % CLUSTERS.len()].to_string(),
        created_at: now - TimeDelta::seconds((i % 7200) as i64),
        requester: p.subject(),
        role: RoleRef::cluster_role(ROLES[i % ROLES.len()]),
        namespaces: vec![ns.to_string()],
        duration: Duration::from_secs(600 * (1 + (i % 12) as u64)),
        reason: format!("INC-{i}: load test request number {i}"),
        ticket: (!i.is_multiple_of(3)).then(|| format!("INC-{i}")),
        credentials: Credentials::Identity,
        extends: None,
        status: Status::default(),
        malformed: None,
    }
}

fn labels(cluster: &str) -> std::collections::BTreeMap<String, String> {
    let env = cluster.split('-').next().unwrap_or_default();
    std::collections::BTreeMap::from([("env".to_string(), env.to_string())])
}

fn report(name: &str, mut v: Vec<Duration>) {
    v.sort();
    println!(
        "{name} ({} samples): p50 {}  p99 {}  max {}",
        v.len(),
        ms(percentile(&v, 0.5)),
        ms(percentile(&v, 0.99)),
        ms(*v.last().expect("samples"))
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let n = if quick { 50 } else { 10_000 };
    let now = DateTime::from_timestamp(1_795_662_000, 0).expect("time");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let policy = Policy::load(&dir).expect("the shipped policies load");
    let inventories: std::collections::HashMap<&str, _> =
        CLUSTERS.iter().map(|c| (*c, org::inventory(c))).collect();
    let requests: Vec<AccessRequest> = (0..n).map(|i| request(i, now)).collect();

    // Decision time: input (with the diff) + evaluation, and evaluation alone.
    let mut whole = Vec::with_capacity(n);
    let mut eval_only = Vec::with_capacity(n);
    let mut verdicts = Vec::with_capacity(n);
    for r in &requests {
        let t = Instant::now();
        let analysis = analyze(
            &inventories[r.cluster.as_str()],
            GrantRequest {
                subject: &r.requester,
                role: &r.role,
                namespaces: &r.namespaces,
            },
        )
        .ok();
        let input = policy_input(r, analysis.as_ref(), &labels(&r.cluster), now, None);
        let t_eval = Instant::now();
        let d = policy.evaluate(&input).expect("evaluates");
        eval_only.push(t_eval.elapsed());
        whole.push(t.elapsed());
        verdicts.push(d);
    }
    report(
        "decision per request, shipped policies (diff + input + evaluation)",
        whole,
    );
    report("  of which the Rego evaluation", eval_only);
    let refused = verdicts.iter().filter(|d| !d.allowed()).count();
    let two = verdicts.iter().filter(|d| d.approvals_required > 1).count();
    println!("  verdicts: {refused} refused, {two} need two approvals, of {n}");

    // A console holding 10,000 pending requests with the server's verdicts.
    let mut batch: Vec<BackendEvent> = CLUSTERS
        .iter()
        .map(|c| BackendEvent::Inventory {
            cluster: c.to_string(),
            inventory: Arc::new(org::inventory(c)),
        })
        .collect();
    for (r, d) in requests.iter().zip(verdicts) {
        batch.push(BackendEvent::Upsert(Box::new(r.clone())));
        batch.push(BackendEvent::Verdict {
            key: RequestKey::of(r),
            decision: Box::new(d),
        });
    }
    let mut state = AppState::new(AppConfig::default(), PEOPLE[0].subject(), "bench", now);
    update(&mut state, Action::Backend(batch));
    assert_eq!(state.list(View::Pending).len(), n);
    let theme = Theme::built_in("default").expect("theme");
    let mut terminal = Terminal::new(TestBackend::new(200, 50)).expect("terminal");
    let frames = if quick { 20 } else { 3_000 };
    let mut times = Vec::with_capacity(frames);
    for i in 0..frames {
        state.cursor[0] = (i * 37) % n;
        update(
            &mut state,
            Action::Tick(now + TimeDelta::milliseconds(i as i64 * 250)),
        );
        let t = Instant::now();
        terminal
            .draw(|f| view::render(f, &state, &theme))
            .expect("draw");
        times.push(t.elapsed());
    }
    report(
        &format!("frame 200x50, {n} pending with server verdicts"),
        times,
    );

    // Direct mode: the console evaluates the selected request's verdict
    // itself when the selection changes (once per change, not per frame).
    state.verdicts.clear();
    state.policy = Some(Arc::new(policy));
    let mut changes = Vec::with_capacity(frames);
    for i in 0..frames {
        state.cursor[0] = (i * 37) % n;
        let t = Instant::now();
        update(
            &mut state,
            Action::Tick(now + TimeDelta::milliseconds(i as i64 * 250)),
        );
        terminal
            .draw(|f| view::render(f, &state, &theme))
            .expect("draw");
        changes.push(t.elapsed());
    }
    report(
        "selection change + frame, advisory verdict computed by the console",
        changes,
    );
}
