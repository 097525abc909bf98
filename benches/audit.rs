//! Audit trail benchmarks (a bench binary, not timed tests):
//! `cargo bench --bench audit`.
//!
//! - deriving the events of one change (pending → approved and started),
//!   p50 / p99 over 10,000 requests;
//! - appending one record to a file log, sealed and synced before the call
//!   returns (what an approve waits for), p50 / p99 over 2,000;
//! - appending batches of 100 (a burst: one write, one sync);
//! - `audit verify` speed: records per second over a 100,000-record log;
//! - signing the head;
//! - the size of a record on disk.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use portcullis::audit::derive::{self, Context};
use portcullis::audit::log::{AuditLog, LogConfig};
use portcullis::audit::{chain, Event, Kind};
use portcullis::domain::request::{Decision, Review, Status, Verdict};
use portcullis::domain::{AccessRequest, Credentials, RoleRef, Subject};

fn request(i: usize, now: DateTime<Utc>) -> AccessRequest {
    AccessRequest {
        name: format!("alice-payments-{i:06}"),
        uid: None,
        cluster: "prod-eu-west".into(),
        created_at: now - TimeDelta::seconds(600),
        requester: Subject::new("alice", &["dev", "payments-team"]),
        role: RoleRef::cluster_role("edit"),
        namespaces: vec!["payments".into(), "orders".into()],
        duration: Duration::from_secs(7200),
        reason: format!("INC-{i}: database migration stuck, need exec into the job pod"),
        ticket: Some(format!("INC-{i}")),
        credentials: Credentials::Identity,
        extends: None,
        status: Status::default(),
        malformed: None,
    }
}

fn approved(mut r: AccessRequest, now: DateTime<Utc>) -> AccessRequest {
    let review = Review {
        by: "dana".into(),
        at: now,
        verdict: Verdict::Approved,
        duration: Some(Duration::from_secs(1800)),
        namespaces: vec!["payments".into()],
        reason: Some("one namespace is enough".into()),
    };
    r.status.reviews = vec![review.clone()];
    r.status.decision = Some(Decision {
        by: review.by,
        at: now,
        verdict: Verdict::Approved,
        reason: review.reason,
        duration: review.duration,
        namespaces: review.namespaces,
    });
    r.status.granted_at = Some(now);
    r.status.expires_at = Some(now + TimeDelta::minutes(30));
    r.status.phase = Some(portcullis::domain::Phase::Active);
    r
}

fn pct(mut v: Vec<Duration>, p: f64) -> String {
    v.sort();
    let d = v[((v.len() as f64 - 1.0) * p).round() as usize];
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn event(i: usize, now: DateTime<Utc>) -> Event {
    let ctx = Context {
        actor: None,
        recorded_by: "TokenReview".into(),
        risk: Some("critical".into()),
        now,
    };
    let before = request(i, now);
    let after = approved(before.clone(), now);
    derive::changes(Some(&before), &after, &ctx)
        .into_iter()
        .find(|e| e.kind == Kind::Approved)
        .expect("an approval")
}

fn main() {
    let now = Utc::now();
    let dir = std::env::temp_dir().join(format!("portcullis-audit-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    // Deriving one change's events.
    let ctx = Context {
        actor: None,
        recorded_by: "TokenReview".into(),
        risk: None,
        now,
    };
    let mut times = Vec::new();
    for i in 0..10_000 {
        let before = request(i, now);
        let after = approved(before.clone(), now);
        let t = Instant::now();
        let events = derive::changes(Some(&before), &after, &ctx);
        times.push(t.elapsed());
        assert_eq!(events.len(), 2);
    }
    println!(
        "derive one change (approved + started): p50 {} p99 {}",
        pct(times.clone(), 0.5),
        pct(times, 0.99)
    );

    // One record per call, synced.
    let log = AuditLog::open(LogConfig::new(dir.join("one.jsonl"))).unwrap();
    let mut times = Vec::new();
    for i in 0..2_000 {
        let e = event(i, now);
        let t = Instant::now();
        log.record(vec![e]).unwrap();
        times.push(t.elapsed());
    }
    println!(
        "append one record, sealed and synced: p50 {} p99 {}",
        pct(times.clone(), 0.5),
        pct(times, 0.99)
    );
    let size = std::fs::metadata(dir.join("one.jsonl")).unwrap().len();
    println!("record size on disk: {} bytes on average", size / 2_000);

    // Bursts of 100.
    let log = AuditLog::open(LogConfig::new(dir.join("burst.jsonl"))).unwrap();
    let mut times = Vec::new();
    for b in 0..50 {
        let batch: Vec<Event> = (0..100).map(|i| event(b * 100 + i, now)).collect();
        let t = Instant::now();
        log.record(batch).unwrap();
        times.push(t.elapsed());
    }
    println!(
        "append a burst of 100 (one write, one sync): p50 {} p99 {}",
        pct(times.clone(), 0.5),
        pct(times, 0.99)
    );

    // A 100,000-record log, then verify it.
    let mut text = String::new();
    let (mut seq, mut hash) = (0, chain::GENESIS.to_string());
    for i in 0..100_000 {
        let s = chain::seal(event(i, now), seq, &hash);
        seq = s.seq;
        hash = s.hash.clone();
        text.push_str(&chain::line(&s));
        text.push('\n');
    }
    let path = dir.join("big.jsonl");
    std::fs::write(&path, &text).unwrap();
    let t = Instant::now();
    let report = portcullis::audit::files::verify(std::slice::from_ref(&path), None).unwrap();
    let took = t.elapsed();
    println!(
        "verify 100,000 records ({:.1} MiB): {:.2} s, {:.0} records/s ({})",
        text.len() as f64 / 1048576.0,
        took.as_secs_f64(),
        100_000.0 / took.as_secs_f64(),
        report.lines[0]
    );

    // Signing the head.
    let key = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    let mut times = Vec::new();
    for _ in 0..1_000 {
        let t = Instant::now();
        let _ = chain::sign_head(&key, seq, &hash, now);
        times.push(t.elapsed());
    }
    println!(
        "sign the head: p50 {} p99 {}",
        pct(times.clone(), 0.5),
        pct(times, 0.99)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
