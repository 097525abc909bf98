//! The console's `/` filter (`app::filter::Filter::parse`) on arbitrary
//! text, matched against fixed requests and audit events. Properties: no
//! panic; the error names no control character; when the filter narrows a
//! prefix of its text (typing extended it, and the console then filters
//! only the rows the prefix showed), everything it passes the prefix
//! passed too.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portcullis::console::state::filter::Filter;
use portcullis::audit::{Actor, Event, Kind};
use portcullis::crd::wire;
use portcullis::domain::{AccessRequest, Severity};
use serde_json::json;

fn requests() -> &'static [(AccessRequest, Option<Severity>)] {
    static R: OnceLock<Vec<(AccessRequest, Option<Severity>)>> = OnceLock::new();
    R.get_or_init(|| {
        let obj = |name: &str, user: &str, groups: &[&str], role: &str, ns: &[&str], reason: &str| {
            json!({
                "metadata": {"name": name, "creationTimestamp": "2026-11-26T03:00:00Z"},
                "spec": {"requester": {"user": user, "groups": groups},
                         "role": {"kind": "ClusterRole", "name": role},
                         "namespaces": ns, "duration": "30m", "reason": reason, "ticket": "INC-4411"}
            })
        };
        vec![
            (
                wire::request_from_json(
                    "prod-eu-west",
                    &obj("alice-payments-7f3k", "alice", &["dev", "oncall"], "edit", &["payments"], "INC-4411 payments stuck"),
                ),
                Some(Severity::High),
            ),
            (
                wire::request_from_json(
                    "staging",
                    &obj("bob-x", "Bob.K\u{212a}elvin", &["Ünïcode-İ"], "cluster-admin", &[], "ẞtraße ǅ ΣΑΣ"),
                ),
                Some(Severity::Critical),
            ),
            (
                wire::request_from_json("c", &obj("", "", &[], "", &["", "kube-system"], "")),
                None,
            ),
        ]
    })
}

fn events() -> Vec<Event> {
    let t = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let mut a = Event::new(Kind::Created, t, "e1".into());
    a.actor = Some(Actor::new("alice", "demo"));
    a.cluster = "prod-eu-west".into();
    a.request = "alice-payments-7f3k".into();
    a.requester = "alice".into();
    a.role = "ClusterRole/edit".into();
    a.namespaces = vec!["payments".into()];
    a.risk = Some("HIGH".into());
    a.message = "asked İstanbul K".into();
    let mut b = Event::new(Kind::Denied, t, "e2".into());
    b.risk = Some("bogus".into());
    vec![a, b]
}

fn check(f: &Filter) {
    if let Some(e) = f.error() {
        assert!(!e.chars().any(char::is_control), "error {e:?}");
    }
    for (r, worst) in requests() {
        let _ = f.matches(r, *worst);
        let _ = f.matches_named(r, *worst, "Production (EU)");
    }
    for e in events() {
        let _ = f.matches_event(&e);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let new = Filter::parse(text);
    assert_eq!(new.text, text);
    check(&new);
    let mut k = (cut as usize) % (text.len() + 1);
    while !text.is_char_boundary(k) {
        k -= 1;
    }
    let old = Filter::parse(&text[..k]);
    check(&old);
    if new.narrows(&old) {
        for (r, worst) in requests() {
            if new.matches_named(r, *worst, "Production (EU)") {
                assert!(
                    old.matches_named(r, *worst, "Production (EU)"),
                    "{text:?} narrows {:?} but passes {} which it does not",
                    &text[..k],
                    r.name
                );
            }
        }
        for e in events() {
            if new.matches_event(&e) {
                assert!(
                    old.matches_event(&e),
                    "{text:?} / {:?} on event {}",
                    &text[..k],
                    e.id
                );
            }
        }
    }
    if Filter::parse("").narrows(&new) {
        // Only a filter with no terms is narrowed by the empty filter.
        assert!(new.is_empty() || new.error().is_some());
    }
});
