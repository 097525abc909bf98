//! The console keeps its views sorted as requests change (issue 10, item
//! 10: no rebuild per batch) and keeps ended requests compact. These tests
//! drive random changes through the reducer and check, after every batch,
//! that what it kept equals a rebuild from scratch: the rows of each view
//! in order, the counts, the oldest wait, the expiring count; and that the
//! selection stays on its request while rows arrive and leave around it.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use portcullis::backend::demo::org::{self, PEOPLE};
use portcullis::backend::{BackendEvent, RequestKey};
use portcullis::console::state::app::{AppConfig, View};
use portcullis::console::state::filter::Filter;
use portcullis::console::state::AppState;
use portcullis::console::update::{update, Action};
use portcullis::domain::request::{Approval, Status};
use portcullis::domain::{AccessRequest, Credentials, Phase, RoleRef};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const ROLES: &[&str] = &["edit", "view", "admin", "nope"];

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn request(rng: &mut ChaCha8Rng, name: &str, cluster: &str) -> AccessRequest {
    let p = &PEOPLE[rng.random_range(0..PEOPLE.len())];
    AccessRequest {
        name: name.into(),
        uid: None,
        cluster: cluster.into(),
        // Equal times are common: order then falls back to the key.
        created_at: t0() - TimeDelta::seconds(rng.random_range(0..20)),
        requester: p.subject(),
        role: RoleRef::cluster_role(ROLES[rng.random_range(0..ROLES.len())]),
        namespaces: vec![p.home[0].to_string()],
        duration: Duration::from_secs(60 * rng.random_range(1..120)),
        reason: format!("INC-{}: \u{1b}[2J hostile {name}", rng.random_range(0..50)),
        ticket: None,
        credentials: Credentials::Identity,
        extends: None,
        status: Status::default(),
        malformed: None,
    }
}

/// The next state of a request: approved, denied, withdrawn, revoked,
/// shortened or expired, as its phase allows.
fn evolve(rng: &mut ChaCha8Rng, mut r: AccessRequest) -> AccessRequest {
    let at = t0() + TimeDelta::seconds(rng.random_range(0..30));
    let limits = Default::default();
    match r.phase() {
        Phase::Pending => match rng.random_range(0..3) {
            0 => {
                let ns = r.namespaces.clone();
                let d = r.duration;
                let _ = r.approve(
                    Approval {
                        by: "oncall-x".into(),
                        at,
                        duration: d,
                        namespaces: ns,
                        reason: None,
                    },
                    &limits,
                );
            }
            1 => {
                let _ = r.deny(
                    "oncall-x",
                    at,
                    ["no", "not now", "ask your lead"][rng.random_range(0..3)],
                );
            }
            _ => {
                let who = r.requester.user.clone();
                let _ = r.withdraw(&who, at);
            }
        },
        Phase::Active => match rng.random_range(0..3) {
            0 => {
                let _ = r.revoke(
                    "oncall-x",
                    at,
                    ["done", "incident over"][rng.random_range(0..2)],
                );
            }
            1 => {
                if let Some(end) = r.status.expires_at {
                    let _ = r.shorten(end - TimeDelta::seconds(rng.random_range(1..50)), at);
                }
            }
            _ => {
                let far = at + TimeDelta::days(2);
                r.expire_if_due(far, &limits);
            }
        },
        _ => {}
    }
    r
}

/// What the views and counts are: rows in order per view, and counts.
fn snapshot(s: &AppState) -> (Vec<Vec<RequestKey>>, String) {
    (
        View::ALL.iter().map(|v| s.list(*v).to_vec()).collect(),
        format!("{:?}", s.counts),
    )
}

#[test]
fn views_kept_in_order_equal_a_rebuild_after_every_batch() {
    for seed in 0..6u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let approver = PEOPLE[0].subject();
        let mut s = AppState::new(AppConfig::default(), approver, "demo", t0());
        let clusters = ["a", "b", "c"];
        let mut inv: Vec<BackendEvent> = clusters
            .iter()
            .map(|c| BackendEvent::Inventory {
                cluster: c.to_string(),
                inventory: Arc::new(org::inventory("prod-eu-west")),
            })
            .collect();
        // One cluster's RBAC arrives late, after requests (as it may).
        inv.pop();
        update(&mut s, Action::Backend(inv));
        let mut known: Vec<AccessRequest> = Vec::new();
        for step in 0..120 {
            let mut batch = Vec::new();
            for _ in 0..rng.random_range(1..12) {
                let roll = rng.random_range(0..10);
                if roll < 4 || known.is_empty() {
                    let c = clusters[rng.random_range(0..3)];
                    let r = request(&mut rng, &format!("r{step}-{}", batch.len()), c);
                    known.push(r.clone());
                    batch.push(BackendEvent::Upsert(Box::new(r)));
                } else if roll < 9 {
                    let i = rng.random_range(0..known.len());
                    let next = evolve(&mut rng, known[i].clone());
                    known[i] = next.clone();
                    batch.push(BackendEvent::Upsert(Box::new(next)));
                } else {
                    let i = rng.random_range(0..known.len());
                    let gone = known.swap_remove(i);
                    batch.push(BackendEvent::Removed(RequestKey::of(&gone)));
                }
            }
            if step == 40 {
                batch.push(BackendEvent::Inventory {
                    cluster: "c".into(),
                    inventory: Arc::new(org::inventory("prod-eu-west")),
                });
            }
            // Move around and change the filter and :ctx now and then.
            s.view = View::ALL[rng.random_range(0..3)];
            let len = s.list(s.view).len();
            if len > 0 {
                s.cursor[s.view.index()] = rng.random_range(0..len);
            }
            if step % 17 == 5 {
                s.filter = Filter::parse(
                    ["", "risk:critical", "alice", "ns:payments", "hostile"]
                        [rng.random_range(0..5)],
                );
                s.refresh_lists();
            }
            if step % 29 == 7 {
                s.context = [None, Some("b".to_string())][rng.random_range(0..2)].clone();
                s.refresh_lists();
            }
            let selected = s.selected_key().cloned();
            // At the top of History the cursor follows the newest.
            let follows_newest = s.view == View::History && s.cursor[View::History.index()] == 0;
            update(&mut s, Action::Backend(batch));
            update(&mut s, Action::Tick(t0() + TimeDelta::seconds(step)));
            let kept = snapshot(&s);
            let cursor = s.cursor;
            // The selection stays on its request while shown (History's top follows the newest).
            if let Some(k) = &selected {
                if s.list(s.view).contains(k) && !follows_newest {
                    assert_eq!(
                        s.selected_key(),
                        Some(k),
                        "seed {seed} step {step}: selection moved"
                    );
                }
            }
            for v in View::ALL {
                let n = s.list(v).len();
                assert!(
                    cursor[v.index()] < n.max(1),
                    "seed {seed} step {step}: cursor past the end"
                );
            }
            s.refresh_lists();
            assert_eq!(
                kept,
                snapshot(&s),
                "seed {seed} step {step}: kept views differ from a rebuild"
            );
            assert_eq!(
                cursor, s.cursor,
                "seed {seed} step {step}: a rebuild moves the cursor"
            );
            // Every request is held once, ended ones read back whole.
            assert_eq!(s.entries.len(), known.len());
            for r in &known {
                let e = s.entries.get(&RequestKey::of(r)).expect("held");
                assert_eq!(
                    &e.req, r,
                    "seed {seed} step {step}: {} read back changed",
                    r.name
                );
            }
        }
    }
}

#[test]
fn a_screenful_of_new_history_above_the_selection_does_not_move_it() {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let mut s = AppState::new(AppConfig::default(), PEOPLE[0].subject(), "demo", t0());
    let mut batch = vec![BackendEvent::Inventory {
        cluster: "a".into(),
        inventory: Arc::new(org::inventory("prod-eu-west")),
    }];
    let mut live = Vec::new();
    for i in 0..30 {
        let mut r = request(&mut rng, &format!("old-{i:02}"), "a");
        r.deny(
            "oncall-x",
            t0() - TimeDelta::hours(1) + TimeDelta::seconds(i),
            "no",
        )
        .unwrap();
        batch.push(BackendEvent::Upsert(Box::new(r)));
        let mut g = request(&mut rng, &format!("live-{i:02}"), "a");
        let (ns, d) = (g.namespaces.clone(), g.duration);
        g.approve(
            Approval {
                by: "oncall-x".into(),
                at: t0(),
                duration: d,
                namespaces: ns,
                reason: None,
            },
            &Default::default(),
        )
        .unwrap();
        live.push(g.clone());
        batch.push(BackendEvent::Upsert(Box::new(g)));
    }
    update(&mut s, Action::Backend(batch));
    s.view = View::History;
    s.cursor[View::History.index()] = 10;
    update(&mut s, Action::Tick(t0()));
    let chosen = s.selected_key().cloned().expect("a row");
    // Grants end (revoked now): each lands at the top of History.
    let ended: Vec<BackendEvent> = live
        .into_iter()
        .map(|mut g| {
            g.revoke("oncall-x", t0() + TimeDelta::minutes(1), "done")
                .unwrap();
            BackendEvent::Upsert(Box::new(g))
        })
        .collect();
    update(&mut s, Action::Backend(ended));
    assert_eq!(s.selected_key(), Some(&chosen));
    assert_eq!(s.cursor[View::History.index()], 40);
    assert_eq!(
        s.detail.as_ref().map(|d| &d.key),
        Some(&chosen),
        "the detail pane shows it"
    );
}

/// Risk summaries are shared between requesters whose user name cannot
/// change the analysis (no binding names them); a user a binding names, or
/// a ServiceAccount, gets their own, in whichever order they arrive.
#[test]
fn shared_risk_summaries_never_lend_one_users_standing_to_another() {
    use portcullis::domain::rbac::model::{BindingRoleRef, ObjectMeta, RoleBinding, SubjectRef};
    use portcullis::domain::Subject;
    let mut inv = org::inventory("prod-eu-west");
    let bind = |kind: &str, name: &str| RoleBinding {
        metadata: ObjectMeta {
            name: format!("standing-{}", name.replace(':', "-")),
            namespace: Some("payments".into()),
            labels: Default::default(),
        },
        subjects: vec![SubjectRef {
            kind: kind.into(),
            name: name.into(),
            namespace: Some("payments".into()),
        }],
        role_ref: BindingRoleRef {
            kind: "ClusterRole".into(),
            name: "edit".into(),
        },
    };
    inv.role_bindings.push(bind("User", "bob"));
    inv.role_bindings.push(bind("ServiceAccount", "deployer"));
    let ask = |name: &str, user: &str| {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut r = request(&mut rng, name, "a");
        r.requester = Subject::new(user, &["payments-team"]);
        r.role = RoleRef::cluster_role("edit");
        r.namespaces = vec!["payments".into()];
        r
    };
    // The unnamed users first, so a wrong cache would answer for bob.
    let users = [
        "carol",
        "dave",
        "bob",
        "system:serviceaccount:payments:deployer",
        "system:serviceaccount:payments:other",
    ];
    let mut s = AppState::new(AppConfig::default(), PEOPLE[0].subject(), "demo", t0());
    let mut batch = vec![BackendEvent::Inventory {
        cluster: "a".into(),
        inventory: Arc::new(inv),
    }];
    batch.extend(
        users
            .iter()
            .enumerate()
            .map(|(i, u)| BackendEvent::Upsert(Box::new(ask(&format!("r{i}"), u)))),
    );
    update(&mut s, Action::Backend(batch));
    let new = |i: usize| {
        s.entries
            .get(&RequestKey {
                cluster: "a".into(),
                name: format!("r{i}"),
            })
            .unwrap()
            .summary
            .new_permissions
    };
    assert!(new(0) > 0, "carol holds nothing in payments");
    assert_eq!(new(0), new(1), "dave is carol's case");
    assert_eq!(new(2), 0, "bob already holds edit in payments");
    assert_eq!(new(3), 0, "the deployer ServiceAccount already holds it");
    assert!(new(4) > 0, "another ServiceAccount does not");
}

fn world(clusters: &[&str]) -> AppState {
    let mut s = AppState::new(AppConfig::default(), PEOPLE[0].subject(), "demo", t0());
    let inv = clusters
        .iter()
        .map(|c| BackendEvent::Inventory {
            cluster: c.to_string(),
            inventory: Arc::new(org::inventory("prod-eu-west")),
        })
        .collect();
    update(&mut s, Action::Backend(inv));
    s
}

fn granted(mut r: AccessRequest) -> AccessRequest {
    let (ns, d) = (r.namespaces.clone(), r.duration);
    r.approve(
        Approval {
            by: "oncall-x".into(),
            at: t0(),
            duration: d,
            namespaces: ns,
            reason: None,
        },
        &Default::default(),
    )
    .unwrap();
    r
}

/// A live grant that says no end is not "expiring soon".
#[test]
fn a_grant_without_an_end_is_not_counted_as_expiring() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut s = world(&["a"]);
    let mut g = granted(request(&mut rng, "g", "a"));
    g.status.expires_at = None;
    let soon = granted(request(&mut rng, "soon", "a"));
    update(
        &mut s,
        Action::Backend(vec![
            BackendEvent::Upsert(Box::new(g)),
            BackendEvent::Upsert(Box::new(soon)),
        ]),
    );
    update(&mut s, Action::Tick(t0() + TimeDelta::days(1)));
    assert_eq!(s.counts.live, 2);
    assert_eq!(s.counts.expiring, 1, "only the grant with an end");
}

/// A view emptied and refilled within one batch selects its top row.
#[test]
fn a_view_emptied_and_refilled_in_one_batch_starts_at_the_top() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut s = world(&["a"]);
    let only = request(&mut rng, "only", "a");
    update(
        &mut s,
        Action::Backend(vec![BackendEvent::Upsert(Box::new(only.clone()))]),
    );
    assert_eq!(s.selected_key(), Some(&RequestKey::of(&only)));
    let mut batch = vec![BackendEvent::Removed(RequestKey::of(&only))];
    for (i, age) in [(0, 1), (1, 9), (2, 5)] {
        let mut r = request(&mut rng, &format!("new-{i}"), "a");
        r.created_at = t0() - TimeDelta::minutes(age);
        batch.push(BackendEvent::Upsert(Box::new(r)));
    }
    update(&mut s, Action::Backend(batch));
    assert_eq!(s.cursor[View::Pending.index()], 0);
    assert_eq!(
        s.selected_key().map(|k| k.name.as_str()),
        Some("new-1"),
        "the oldest ask"
    );
}

/// The selected extension's verdict is judged again when the grant it
/// extends arrives later (the policy reads how long that grant has run).
#[test]
fn an_extensions_verdict_follows_the_grant_it_extends() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut s = world(&["a"]);
    s.policy = Some(Arc::new(
        portcullis::policy::Policy::load(std::path::Path::new("policies")).expect("policies/"),
    ));
    let grant = granted(request(&mut rng, "g1", "a"));
    let mut ext = request(&mut rng, "more", "a");
    ext.requester = grant.requester.clone();
    ext.extends = Some("g1".into());
    update(
        &mut s,
        Action::Backend(vec![BackendEvent::Upsert(Box::new(ext))]),
    );
    let said = |s: &AppState| {
        let d = s.detail.as_ref().expect("detail");
        let (verdict, advisory) = d.verdict.as_ref().expect("a verdict");
        assert!(advisory);
        verdict
            .messages
            .iter()
            .any(|m| m.starts_with("extension of g1"))
    };
    assert!(!said(&s), "no grant g1 yet: not judged as an extension");
    update(
        &mut s,
        Action::Backend(vec![BackendEvent::Upsert(Box::new(grant))]),
    );
    assert!(said(&s), "judged again once g1 is known");
}

/// The requester context and the recent reasons, read from indexes, equal
/// a scan of every request, while requests change, go and come back.
#[test]
fn indexes_by_requester_and_decision_equal_a_scan() {
    use portcullis::console::state::app::BulkKind;
    use portcullis::console::state::recent;
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut s = world(&["a", "b"]);
    let mut known: Vec<AccessRequest> = Vec::new();
    let mut gone: Vec<AccessRequest> = Vec::new();
    for step in 0..150 {
        let mut batch = Vec::new();
        for k in 0..rng.random_range(1..6) {
            let roll = rng.random_range(0..12);
            if roll < 4 || known.is_empty() {
                let c = ["a", "b"][rng.random_range(0..2)];
                let r = request(&mut rng, &format!("r{step}-{k}"), c);
                known.push(r.clone());
                batch.push(BackendEvent::Upsert(Box::new(r)));
            } else if roll < 10 {
                let i = rng.random_range(0..known.len());
                let mut next = evolve(&mut rng, known[i].clone());
                if roll == 9 {
                    // An edit that changes who asks.
                    next.requester = PEOPLE[rng.random_range(0..PEOPLE.len())].subject();
                }
                known[i] = next.clone();
                batch.push(BackendEvent::Upsert(Box::new(next)));
            } else if roll == 10 {
                let i = rng.random_range(0..known.len());
                let r = known.swap_remove(i);
                batch.push(BackendEvent::Removed(RequestKey::of(&r)));
                gone.push(r);
            } else if let Some(r) = gone.pop() {
                // Back under the same key.
                known.push(r.clone());
                batch.push(BackendEvent::Upsert(Box::new(r)));
            }
        }
        s.view = View::ALL[rng.random_range(0..3)];
        let len = s.list(s.view).len();
        if len > 0 {
            s.cursor[s.view.index()] = rng.random_range(0..len);
        }
        update(&mut s, Action::Backend(batch));
        // Recent reasons: newest first, each once.
        for kind in [BulkKind::Deny, BulkKind::Revoke] {
            // Newest first; at the same second, the later stored first.
            let id = |r: &AccessRequest| s.entries.id(&RequestKey::of(r));
            let mut on_record: Vec<(DateTime<Utc>, Option<u32>, String)> = known
                .iter()
                .filter_map(|r| match kind {
                    BulkKind::Deny => r
                        .status
                        .decision
                        .as_ref()
                        .filter(|_| r.phase() == Phase::Denied)
                        .and_then(|d| Some((d.at, id(r), d.reason.clone()?))),
                    BulkKind::Revoke => (r.phase() == Phase::Revoked)
                        .then(|| Some((r.status.ended_at?, id(r), r.status.revoke_reason.clone()?)))
                        .flatten(),
                })
                .collect();
            on_record.sort_by_key(|r| std::cmp::Reverse((r.0, r.1)));
            let mut want: Vec<String> = Vec::new();
            for (_, _, r) in on_record {
                let r = portcullis::domain::sanitize::inert(r.trim(), 1024).into_owned();
                if !r.is_empty() && !want.contains(&r) && want.len() < recent::OFFERED {
                    want.push(r);
                }
            }
            assert_eq!(recent::reasons(&s, kind), want, "step {step} {kind:?}");
        }
        // The selected request's requester context.
        let Some(d) = s.detail.as_ref() else { continue };
        let mine: Vec<&AccessRequest> = known
            .iter()
            .filter(|r| r.requester.user == d.requester && RequestKey::of(r) != d.key)
            .collect();
        let live = mine.iter().filter(|r| r.phase() == Phase::Active).count();
        assert_eq!(d.live_total, live, "step {step}: live count");
        let mut ended: Vec<&AccessRequest> = mine
            .iter()
            .copied()
            .filter(|r| r.phase().is_terminal())
            .collect();
        ended.sort_by_key(|r| std::cmp::Reverse(portcullis::console::state::app::ended_at(r)));
        let ends = |keys: &[RequestKey]| -> Vec<DateTime<Utc>> {
            keys.iter()
                .map(|k| portcullis::console::state::app::ended_at(&s.entries.get(k).unwrap().req))
                .collect()
        };
        let want: Vec<DateTime<Utc>> = ended
            .iter()
            .take(portcullis::console::state::app::PAST_SHOWN)
            .map(|r| portcullis::console::state::app::ended_at(r))
            .collect();
        assert_eq!(ends(&d.past), want, "step {step}: past, latest first");
        for k in d.live.iter().chain(&d.past) {
            let r = &s.entries.get(k).expect("held").req;
            assert_eq!(
                r.requester.user, d.requester,
                "step {step}: someone else's request"
            );
        }
    }
}

/// Typing a filter narrows the rows shown keystroke by keystroke (the
/// rows it filtered are not read again); each step shows exactly what a
/// rebuild shows, and backspace widens again.
#[test]
fn typing_a_filter_narrows_and_equals_a_rebuild_at_every_keystroke() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let key = |c: KeyCode| Action::Key(KeyEvent::new(c, KeyModifiers::NONE));
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut s = world(&["a", "b"]);
    let mut batch = Vec::new();
    for i in 0..300 {
        let r = request(&mut rng, &format!("r{i:03}"), ["a", "b"][i % 2]);
        let r = match i % 3 {
            0 => r,
            1 => granted(r),
            _ => evolve(&mut rng, granted(r)),
        };
        batch.push(BackendEvent::Upsert(Box::new(r)));
    }
    update(&mut s, Action::Backend(batch));
    update(&mut s, key(KeyCode::Char('/')));
    let typed = "risk:high user:a hostile ";
    let mut keys: Vec<KeyCode> = typed.chars().map(KeyCode::Char).collect();
    keys.extend([KeyCode::Backspace; 9]);
    keys.extend("r1".chars().map(KeyCode::Char));
    let mut narrowed = 0;
    for k in keys {
        let before = s.filter.clone();
        update(&mut s, key(k));
        if s.filter.narrows(&before) {
            narrowed += 1;
        }
        let shown = snapshot(&s);
        s.refresh_lists();
        assert_eq!(
            shown,
            snapshot(&s),
            "after {k:?} (filter {:?})",
            s.filter.text
        );
    }
    assert!(narrowed > 15, "typing narrows ({narrowed} times)");
}
