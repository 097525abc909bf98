//! Scripted key sequences against the demo backend (`--seed`), through the
//! real reducer and effect executor.

mod common;

use std::time::Duration;

use common::{approvable, Harness};
use portcullis::backend::demo::DemoConfig;
use portcullis::backend::{AccessBackend, NewRequest};
use portcullis::console::state::app::{AppConfig, Mode, View};
use portcullis::console::update::Effect;
use portcullis::domain::{Credentials, Phase, RoleRef, Subject};

#[tokio::test]
async fn approve_moves_a_request_to_live_grants() {
    let mut h = Harness::start(1).await;
    let key = h.select(approvable);
    let asked = h.req(&key).duration;
    h.press("a").await;
    let Mode::Confirm(c) = &h.state.mode else {
        panic!("a asks to confirm: {:?}", h.state.mode)
    };
    let text = c.lines.join("\n");
    assert!(
        text.contains("Grant") && text.contains("new permission"),
        "{text}"
    );
    assert_eq!(h.phase(&key), Phase::Pending, "nothing happens before y");
    h.press("y").await;
    assert_eq!(h.phase(&key), Phase::Active);
    assert!(h.in_view(View::Grants, &key) && !h.in_view(View::Pending, &key));
    assert_eq!(
        h.req(&key).remaining(h.state.now),
        asked,
        "the clock starts at approval"
    );
    assert!(h.flash().starts_with("Approved"), "{}", h.flash());
    assert_eq!(
        h.req(&key).status.decision.as_ref().map(|d| d.by.as_str()),
        Some("dana")
    );
}

#[tokio::test]
async fn approve_with_changes_grants_shorter_and_narrower() {
    let mut h = Harness::start(1).await;
    let created = h
        .backend
        .create(NewRequest {
            cluster: "staging-eu-west".into(),
            requester: Subject::new("alice", &["dev", "payments-team"]),
            role: RoleRef::cluster_role("edit"),
            namespaces: vec!["payments".into(), "checkout".into()],
            duration: Duration::from_secs(3600),
            reason: "INC-1 two namespaces".into(),
            ticket: None,
            credentials: Credentials::Identity,
            extends: None,
        })
        .await
        .unwrap();
    h.settle().await;
    let key = h.select(|r| r.name == created.name);
    // A: duration field focused; replace 1h by 15m; move to checkout and untick it.
    h.press("A<bs><bs>15m<tab><tab><space><enter>").await;
    let Mode::Confirm(c) = &h.state.mode else {
        panic!("review step: {:?}", h.state.mode)
    };
    let text = c.lines.join("\n");
    assert!(text.contains("For      15m"), "{text}");
    assert!(
        text.contains("namespace payments") && text.contains("Asked    1h in payments, checkout"),
        "{text}"
    );
    h.press("y").await;
    let d = h.req(&key).status.decision.clone().unwrap();
    assert_eq!(d.duration, Some(Duration::from_secs(900)));
    assert_eq!(d.namespaces, vec!["payments".to_string()]);
    assert_eq!(h.req(&key).remaining(h.state.now), Duration::from_secs(900));
}

#[tokio::test]
async fn approve_with_changes_cannot_lengthen() {
    let mut h = Harness::start(1).await;
    let key = h.select(approvable);
    h.press("A<c-u>").await; // ctrl-u is not bound in the field; clear by hand
    for _ in 0..8 {
        h.press("<bs>").await;
    }
    h.press("9h<enter>").await;
    let Mode::Approve(f) = &h.state.mode else {
        panic!("stays in the form: {:?}", h.state.mode)
    };
    assert!(
        f.error
            .as_deref()
            .unwrap_or("")
            .contains("a grant can only be shorter"),
        "{:?}",
        f.error
    );
    assert_eq!(h.phase(&key), Phase::Pending);
    h.press("<esc>").await;
    assert!(h.is_normal());
}

#[tokio::test]
async fn deny_needs_a_reason() {
    let mut h = Harness::start(1).await;
    let key = h.select(approvable);
    h.press("d<enter>").await;
    let Mode::Reason(f) = &h.state.mode else {
        panic!("reason form: {:?}", h.state.mode)
    };
    assert_eq!(f.error.as_deref(), Some("a reason is required"));
    assert_eq!(h.phase(&key), Phase::Pending);
    h.press("   <enter>").await;
    assert!(
        matches!(h.state.mode, Mode::Reason(_)),
        "blank is no reason"
    );
    h.press("no ticket<enter>").await;
    assert_eq!(h.phase(&key), Phase::Denied);
    let d = h.req(&key).status.decision.clone().unwrap();
    assert_eq!(d.reason.as_deref(), Some("no ticket"));
    assert!(h.in_view(View::History, &key));
}

#[tokio::test]
async fn shorten_reduces_the_remaining_time_and_never_lengthens() {
    let mut h = Harness::start(1).await;
    h.press("2").await;
    // The grant with the most time left, so both cases apply.
    let best = h
        .state
        .list(View::Grants)
        .iter()
        .max_by_key(|k| h.state.entries.get(k).unwrap().req.status.expires_at)
        .unwrap()
        .clone();
    let key = h.select(|r| r.name == best.name);
    let before = h.req(&key).remaining(h.state.now);
    assert!(before > Duration::from_secs(1800), "{before:?}");
    h.press("s9h<enter>").await;
    let Mode::Shorten(f) = &h.state.mode else {
        panic!("stays in the form")
    };
    assert!(
        f.error
            .as_deref()
            .unwrap_or("")
            .contains("only move the end earlier"),
        "{:?}",
        f.error
    );
    h.press("<bs><bs>10m<enter>").await;
    assert!(h.is_normal());
    assert_eq!(h.req(&key).remaining(h.state.now), Duration::from_secs(600));
    assert_eq!(h.phase(&key), Phase::Active);
    assert!(h.flash().contains("now ends in 10m"), "{}", h.flash());
    // Issue 21, item 3: the trail (`:audit`) names who shortened it: this
    // console's approver, not "someone".
    let shortened: Vec<_> = h
        .state
        .trail
        .recent()
        .filter(|e| e.request == key.name && e.kind == portcullis::audit::Kind::Shortened)
        .collect();
    assert_eq!(shortened.len(), 1, "{shortened:?}");
    let who = shortened[0].actor.as_ref().map(|a| a.user.clone());
    assert_eq!(who.as_deref(), Some(h.state.approver.user.as_str()));
    h.press(":audit<enter>").await;
    let screen = h.screen(120, 40);
    assert!(
        screen.contains(&format!("shortened by {}", h.state.approver.user)),
        "{screen}"
    );
    assert!(!screen.contains("shortened by someone"), "{screen}");
    // One clock in one timeline: no UTC RFC 3339 time beside local ones.
    let utc_stamp = |s: &str| {
        s.as_bytes().windows(10).any(|w| {
            w[0] == b'T'
                && w[9] == b'Z'
                && w[3] == b':'
                && w[6] == b':'
                && [1, 2, 4, 5, 7, 8].iter().all(|&i| w[i].is_ascii_digit())
        })
    };
    assert!(!utc_stamp(&screen), "{screen}");
    h.press("<esc><enter>").await;
    let full = h.screen(120, 200);
    let events = full
        .split("EVENTS")
        .nth(1)
        .and_then(|rest| rest.split("OBJECT (YAML)").next())
        .unwrap_or_else(|| panic!("{full}"));
    assert!(events.contains("shortened by"), "{events}");
    assert!(!utc_stamp(events), "{events}");
}

#[tokio::test]
async fn revoke_ends_a_grant_with_a_reason() {
    let mut h = Harness::start(1).await;
    h.press("2").await;
    let key = h.select(|r| r.phase() == Phase::Active);
    h.press("r<enter>").await;
    assert!(matches!(h.state.mode, Mode::Reason(_)));
    h.press("work done<enter>").await;
    assert_eq!(h.phase(&key), Phase::Revoked);
    assert_eq!(
        h.req(&key).status.revoke_reason.as_deref(),
        Some("work done")
    );
    assert_eq!(h.req(&key).status.revoked_by.as_deref(), Some("dana"));
    assert!(!h.in_view(View::Grants, &key));
}

#[tokio::test]
async fn self_approval_is_refused_and_says_why() {
    let mut h = Harness::start(1).await;
    let key = h.select(|r| r.requester.user == "dana" && r.phase() == Phase::Pending);
    h.press("a").await;
    assert!(h.is_normal(), "no dialog opens");
    assert!(
        h.flash()
            .contains("you (dana) asked for this: someone else must approve it"),
        "{}",
        h.flash()
    );
    h.press("A").await;
    assert!(h.is_normal());
    assert_eq!(h.phase(&key), Phase::Pending);
    assert!(h.effects.is_empty());
    assert!(h.screen(120, 40).contains("someone else must approve it"));
}

#[tokio::test]
async fn bulk_deny_needs_the_confirmation_naming_the_count() {
    let mut h = Harness::start(1).await;
    let first = h.select(approvable);
    h.press("<space>").await;
    let second = h.state.selected_key().cloned().unwrap();
    h.press("<space>").await;
    assert_eq!(h.state.marks.len(), 2);
    h.press("dduplicate<enter>").await;
    let Mode::Confirm(c) = &h.state.mode else {
        panic!("bulk asks to confirm: {:?}", h.state.mode)
    };
    assert_eq!(c.title, "Deny 2 requests?");
    assert_eq!(h.phase(&first), Phase::Pending);
    h.press("n").await;
    assert_eq!(h.phase(&first), Phase::Pending, "cancel changes nothing");
    assert!(h.flash().contains("nothing was changed"));
    // Cancel keeps the marks, so the second attempt denies the same two.
    h.press("dduplicate<enter>y").await;
    assert_eq!(h.phase(&first), Phase::Denied);
    assert_eq!(h.phase(&second), Phase::Denied);
    assert!(h.state.marks.is_empty());
}

#[tokio::test]
async fn bulk_revoke_needs_the_confirmation() {
    let mut h = Harness::start(1).await;
    h.press("2g<space><space><space>").await;
    assert_eq!(h.state.marks.len(), 3);
    h.press("rincident over<enter>").await;
    let Mode::Confirm(c) = &h.state.mode else {
        panic!("{:?}", h.state.mode)
    };
    assert_eq!(c.title, "Revoke 3 live grants?");
    h.press("y").await;
    assert_eq!(h.state.list(View::Grants).len(), 1);
    assert_eq!(
        h.effects
            .iter()
            .filter(|e| matches!(
                e,
                Effect::Apply {
                    op: portcullis::backend::Op::Revoke { .. },
                    ..
                }
            ))
            .count(),
        3
    );
}

#[tokio::test]
async fn bulk_approve_is_never_possible() {
    let mut h = Harness::start(1).await;
    h.select(approvable);
    h.press("<space>ka").await;
    assert!(h.is_normal());
    assert!(
        h.flash().contains("bulk approve is never possible"),
        "{}",
        h.flash()
    );
}

#[tokio::test]
async fn invalid_requests_cannot_be_approved_but_can_be_denied() {
    let mut h = Harness::start(1).await;
    let key = h.select(|r| r.name.starts_with("mallory"));
    assert!(h.state.entries.get(&key).unwrap().invalid.is_some());
    h.press("a").await;
    assert!(
        h.flash().contains("invalid and can only be denied"),
        "{}",
        h.flash()
    );
    h.press("<esc>dspam<enter>").await;
    assert_eq!(h.phase(&key), Phase::Denied);
}

#[tokio::test]
async fn readonly_disables_every_dangerous_action() {
    let config = AppConfig {
        readonly: true,
        ..Default::default()
    };
    let mut h = Harness::start_with(
        DemoConfig {
            rate: Duration::ZERO,
            ..Default::default()
        },
        config,
    )
    .await;
    h.select(approvable);
    for k in ["a", "A", "d"] {
        h.press(k).await;
        assert!(h.is_normal(), "{k}");
        assert!(h.flash().contains("read-only"), "{k}: {}", h.flash());
        h.press("<esc>").await;
    }
    h.press("2").await;
    for k in ["s", "r"] {
        h.press(k).await;
        assert!(h.is_normal(), "{k}");
    }
    assert!(h.effects.is_empty());
    let screen = h.screen(120, 40);
    assert!(screen.contains("READ-ONLY"));
    assert!(
        !screen.contains("revoke"),
        "footer hides dangerous keys:\n{screen}"
    );
}

#[tokio::test]
async fn filter_by_user_namespace_and_risk() {
    let mut h = Harness::start(1).await;
    let all = h.state.list(View::Pending).len();
    h.press("/user:heidi").await;
    assert!(matches!(h.state.mode, Mode::Filter { .. }));
    let list = h.state.list(View::Pending).to_vec();
    assert!(!list.is_empty() && list.len() < all);
    assert!(list
        .iter()
        .all(|k| h.state.entries.get(k).unwrap().req.requester.user == "heidi"));
    h.press("<enter>").await;
    assert!(h.is_normal());
    assert_eq!(h.state.filter.text, "user:heidi");
    h.press("<esc>").await;
    assert_eq!(
        h.state.list(View::Pending).len(),
        all,
        "esc clears the filter"
    );
    h.press("/risk:critical<enter>").await;
    assert!(h.state.list(View::Pending).iter().all(|k| h
        .state
        .entries
        .get(k)
        .unwrap()
        .summary
        .worst
        == Some(portcullis::domain::Severity::Critical)));
    h.press("<esc>/ns:monitoring<enter>").await;
    assert!(h.state.list(View::Pending).iter().all(|k| h
        .state
        .entries
        .get(k)
        .unwrap()
        .req
        .namespaces
        .contains(&"monitoring".to_string())));
}

#[tokio::test]
async fn command_mode_views_contexts_completion_and_quit() {
    let mut h = Harness::start(1).await;
    h.press(":grants<enter>").await;
    assert_eq!(h.state.view, View::Grants);
    h.press(":hi<tab><enter>").await;
    assert_eq!(h.state.view, View::History);
    h.press(":ctx pr<tab><enter>").await;
    assert_eq!(h.state.context.as_deref(), Some("prod-eu-west"));
    assert!(h
        .state
        .list(View::History)
        .iter()
        .all(|k| k.cluster == "prod-eu-west"));
    assert!(
        h.screen(120, 40).contains("PROD"),
        "a production context is marked"
    );
    h.press(":ctx nowhere<enter>").await;
    assert!(h.flash().contains("no context 'nowhere'"));
    assert_eq!(h.state.context.as_deref(), Some("prod-eu-west"));
    h.press("<esc>:ctx all<enter>").await;
    assert_eq!(h.state.context, None);
    h.press(":bogus<enter>").await;
    assert!(h.flash().contains("unknown command ':bogus'"));
    h.press("<esc>:q<enter>").await;
    assert!(h.state.should_quit);
    assert_eq!(h.effects.last(), Some(&Effect::Quit));
}

#[tokio::test]
async fn errors_stay_until_acknowledged_and_notices_fade() {
    let mut h = Harness::start(1).await;
    h.press(":bogus<enter>").await;
    h.advance_settled(Duration::from_secs(60)).await;
    assert!(h.flash().contains("unknown command"), "errors stay");
    h.press("<esc>").await;
    assert!(h.state.flash.is_none());
    h.press(":ctx<enter>").await;
    assert!(h.flash().contains("all clusters"));
    h.advance_settled(Duration::from_secs(10)).await;
    assert!(h.state.flash.is_none(), "notices fade");
}

#[tokio::test]
async fn navigation_keys() {
    let mut h = Harness::start(1).await;
    let len = h.state.list(View::Pending).len();
    h.press("G").await;
    assert_eq!(h.state.cursor[0], len - 1);
    h.press("g").await;
    assert_eq!(h.state.cursor[0], 0);
    h.press("jj<down>").await;
    assert_eq!(h.state.cursor[0], 3);
    h.press("k<up>").await;
    assert_eq!(h.state.cursor[0], 1);
    h.press("<tab>").await;
    assert_eq!(h.state.view, View::Grants);
    h.press("h").await;
    assert_eq!(h.state.view, View::Pending);
    h.press("3").await;
    assert_eq!(h.state.view, View::History);
    h.press("?").await;
    assert!(matches!(h.state.mode, Mode::Help { .. }));
    h.press("<esc>").await;
    assert!(h.is_normal());
}

#[tokio::test]
async fn grants_expire_and_requests_arrive_live() {
    let mut h = Harness::start_with(
        DemoConfig {
            rate: Duration::from_secs(8),
            ..Default::default()
        },
        AppConfig::default(),
    )
    .await;
    let pending = h.state.counts.pending;
    assert_eq!(h.state.counts.live, 4);
    assert_eq!(h.state.counts.expiring, 1, "the grant with 3 minutes left");
    h.advance_settled(Duration::from_secs(240)).await;
    assert_eq!(h.state.counts.live, 3, "it expired by itself");
    assert!(h.state.counts.pending > pending, "new requests arrived");
    let expired = h
        .state
        .list(View::History)
        .iter()
        .filter(|k| h.state.entries.get(k).unwrap().req.phase() == Phase::Expired)
        .count();
    assert!(expired > 0);
}

#[tokio::test]
async fn selection_stays_on_the_same_request_when_rows_arrive() {
    let mut h = Harness::start_with(
        DemoConfig {
            rate: Duration::from_secs(8),
            ..Default::default()
        },
        AppConfig::default(),
    )
    .await;
    let key = h.select(approvable);
    h.advance_settled(Duration::from_secs(120)).await;
    assert_eq!(h.state.selected_key(), Some(&key));
}

#[tokio::test]
async fn a_request_decided_elsewhere_leaves_the_dialog_harmless() {
    let mut h = Harness::start(1).await;
    let key = h.select(approvable);
    h.press("a").await;
    // Someone else denies it while the dialog is open.
    h.backend
        .act_as("erin", |w, me| {
            w.deny(&key, me, "handled in the incident channel")
        })
        .unwrap();
    h.settle().await;
    h.press("y").await;
    assert!(
        matches!(h.state.mode, Mode::Notice { .. }),
        "the y lands on the notice: {:?}",
        h.state.mode
    );
    assert!(h.effects.is_empty(), "nothing was sent");
    assert_ne!(h.phase(&key), Phase::Active);
}

// ---------------------------------------------------------------------------
// Issue 11, untrue or lost information: each test failed before its fix.

/// The detail pane of the selection, as text (a tall terminal, so nothing
/// is scrolled away).
fn detail(h: &Harness) -> String {
    let key = h.state.selected_key().expect("a selection").clone();
    common::boxed(&h.screen(200, 140), &format!(" {} ", key.name))
}

/// Item 1: "Past" counts from when each request was decided or ended.
#[tokio::test]
async fn past_requests_show_time_since_they_ended() {
    let mut h = Harness::start(3).await;
    h.press("2").await;
    h.select(|r| r.requester.user == "bob" && r.role.name == "platform-operator");
    h.press("rwork done<enter>").await;
    h.advance_settled(Duration::from_secs(60)).await;
    h.select(|r| r.requester.user == "bob" && r.phase() == Phase::Active);
    let text = common::flat(&detail(&h));
    assert!(
        text.contains("Revoked platform-operator 1m ago"),
        "the revoke was a minute ago, not when it was asked:\n{text}"
    );
}

/// Item 2: an expired grant was ended by the reaper, not by its approver.
#[tokio::test]
async fn expiry_is_said_to_be_the_reapers_not_the_approvers() {
    let mut h = Harness::start(3).await;
    h.press("3").await;
    let key = h.select(|r| r.phase() == Phase::Expired && r.status.decision.is_some());
    let approver = h.req(&key).status.decision.clone().unwrap().by;
    let text = common::flat(&detail(&h));
    assert!(!text.contains(&format!("Expired by {approver}")), "{text}");
    assert!(text.contains("ended by the reaper"), "{text}");
    assert!(text.contains(&format!("approved by {approver}")), "{text}");
    let list = common::boxed(&h.screen(200, 50), " History [");
    let row = list
        .lines()
        .find(|l| l.contains("Expired"))
        .expect("an expired row");
    assert!(row.contains("reaper") && !row.contains(&approver), "{row}");
}

/// Item 3: the bulk confirmation keeps its keys when the reason wraps, and
/// the outcome names every request.
#[tokio::test]
async fn bulk_deny_keeps_its_keys_and_reports_every_request() {
    let mut h = Harness::start(3).await;
    h.press("/cluster:prod<enter>g").await;
    let rows = h.state.list(View::Pending).to_vec();
    assert_eq!(rows.len(), 6, "six pending on prod in seed 3");
    for _ in 0..6 {
        h.press("<space>").await;
    }
    assert_eq!(h.state.marks.len(), 6);
    h.press("dnot during the change freeze: ask again on Monday with a ticket and a named reviewer<enter>")
        .await;
    let screen = h.screen(80, 24);
    assert!(
        screen.contains("y confirm") && screen.contains("n/esc cancel"),
        "{screen}"
    );
    h.press("y").await;
    let flash = h.flash();
    assert!(flash.contains("Denied 6 requests"), "{flash}");
    for k in &rows {
        assert!(flash.contains(&k.name), "{} missing from: {flash}", k.name);
        assert_eq!(h.phase(k), Phase::Denied);
    }
}

/// Item 4: error text in a dialog and in the message line wraps, never cut.
#[tokio::test]
async fn dialog_and_message_errors_wrap_instead_of_being_cut() {
    let mut h = Harness::start(3).await;
    h.press("2").await;
    h.select(|r| r.role.name == "platform-operator");
    h.press("s9h<enter>").await;
    let Mode::Shorten(f) = &h.state.mode else {
        panic!("{:?}", h.state.mode)
    };
    let error = f.error.clone().expect("an error");
    let text = common::flat(&common::boxed(&h.screen(80, 24), " Shorten "));
    assert!(text.contains(&common::flat(&error)), "{error}\n---\n{text}");
    h.press("<esc>").await;
    h.press(":ctx a-context-name-long-enough-to-need-a-second-line-of-the-message<enter>")
        .await;
    let screen = h.screen(80, 24);
    assert!(screen.contains("(esc to dismiss)"), "{screen}");
    assert!(common::flat(&screen).contains("dev-sandbox"), "{screen}");
}

/// Item 5: `/` with a filter active starts over from it, selected.
#[tokio::test]
async fn a_new_filter_replaces_the_old_one() {
    let mut h = Harness::start(3).await;
    h.press("/risk:high<enter>/user:erin").await;
    assert_eq!(h.state.filter.text, "user:erin");
    assert!(h
        .state
        .list(View::Pending)
        .iter()
        .all(|k| h.req(k).requester.user == "erin"));
    h.press("<enter>/<esc>").await;
    assert!(h.state.filter.is_empty(), "esc still clears");
}

/// Item 6: an unknown filter term is an error naming the valid ones.
#[tokio::test]
async fn unknown_filter_terms_are_errors_that_say_the_valid_ones() {
    let mut h = Harness::start(3).await;
    let all = h.state.list(View::Pending).len();
    for (bad, says) in [
        ("risk:bogus", "use info, medium, high or critical"),
        ("risk:none", "use info, medium, high or critical"),
        ("colour:red", "use user:, ns:, risk:, cluster:, role:"),
    ] {
        h.press(&format!("/{bad}")).await;
        let screen = h.screen(120, 40);
        assert!(screen.contains(says), "{bad}:\n{screen}");
        h.press("<enter>").await;
        assert!(
            matches!(h.state.mode, Mode::Filter { .. }),
            "{bad}: enter does not keep a broken filter"
        );
        assert_eq!(
            h.state.list(View::Pending).len(),
            all,
            "{bad} is not a filter that matches nothing"
        );
        h.press("<esc>").await;
    }
}

/// The notice a dialog leaves when it closes under the approver's hands.
fn notice(h: &Harness) -> String {
    match &h.state.mode {
        Mode::Notice { text, .. } => text.clone(),
        other => panic!("the dialog closed with a notice: {other:?}"),
    }
}

/// Item 7: a dialog whose request was decided or withdrawn elsewhere closes
/// and says why; keys typed on meanwhile land on the notice, not the list.
#[tokio::test]
async fn dialogs_close_when_their_request_is_decided_or_withdrawn_elsewhere() {
    let mut h = Harness::start(3).await;
    let key = h.select(|r| r.requester.user == "erin" && r.role.name == "deployer");
    h.press("a").await;
    assert!(matches!(h.state.mode, Mode::Confirm(_)));
    h.backend
        .act_as("grace", |w, me| w.deny(&key, me, "handled elsewhere"))
        .unwrap();
    h.settle().await;
    let text = notice(&h);
    assert!(
        text.contains("denied by grace") && text.contains("nothing was changed"),
        "{text}"
    );
    assert!(h.screen(80, 24).contains("denied by grace"));
    h.press("yq").await;
    assert!(!h.state.should_quit, "typed-on keys land on the notice");
    // Issue 21, item 8: and the notice shows them held, not lost unseen.
    let screen = h.screen(80, 24);
    assert!(screen.contains("held here, not sent: y q"), "{screen}");
    h.press("<esc>").await;
    assert!(h.is_normal());
    let key = h.select(|r| r.requester.user == "judy" && r.phase() == Phase::Pending);
    h.press("dwrong").await;
    assert!(matches!(h.state.mode, Mode::Reason(_)));
    h.backend
        .act_as("judy", |w, me| w.withdraw(&key, me))
        .unwrap();
    h.settle().await;
    assert!(notice(&h).contains("withdrawn by judy"), "{}", notice(&h));
    h.press("<enter>").await;
    assert!(h.is_normal());
    assert!(h.effects.is_empty(), "nothing was sent");
}

/// Issue 21, item 5: the selected request is withdrawn between two keys.
/// The next key that acts on the selection is held back and says so,
/// instead of marking (or deciding) whoever moved under the cursor; the
/// key after it acts as usual. This console's own decisions moving a row
/// on are no surprise and hold nothing back.
#[tokio::test]
async fn a_request_gone_from_under_the_cursor_takes_no_key_meant_for_it() {
    let mut h = Harness::start(3).await;
    let gone = h.select(|r| r.requester.user == "judy" && r.phase() == Phase::Pending);
    h.backend
        .act_as("judy", |w, me| w.withdraw(&gone, me))
        .unwrap();
    h.settle().await;
    let under = h.state.selected_key().cloned().expect("another row");
    assert_ne!(under, gone);
    h.press(" ").await;
    assert!(
        h.state.marks.is_empty(),
        "nothing marked: {:?}",
        h.state.marks
    );
    let flash = h.flash();
    assert!(
        flash.contains(&format!("{} left this list", gone.name))
            && flash.contains(&format!("the cursor is on {} now", under.name))
            && flash.contains("nothing was done"),
        "{flash}"
    );
    assert!(h.screen(120, 40).contains("left this list"));
    // Seen: the next space marks the row under the cursor.
    h.press(" ").await;
    assert!(h.state.marks.contains(&under), "{:?}", h.state.marks);
    // An approval of one's own moves the row on: the next `a` is not held.
    h.press("<esc>").await;
    h.press("<esc>").await;
    let mine = h.select(|r| r.phase() == Phase::Pending && r.requester.user != "dana");
    h.press("ay").await;
    h.settle().await;
    assert_ne!(h.phase(&mine), Phase::Pending, "{}", h.flash());
    assert!(h.state.selection_gone.is_none());
    h.press("a").await;
    assert!(!h.is_normal(), "the next approval opens: {}", h.flash());
}

/// Item 8: a live grant's detail says when it started, when it ends and
/// who approved it.
#[tokio::test]
async fn a_live_grants_detail_says_start_end_and_approver() {
    let mut h = Harness::start(3).await;
    h.press("2").await;
    let key = h.select(|r| r.requester.user == "heidi");
    let by = h.req(&key).status.decision.clone().unwrap().by;
    let text = common::flat(&detail(&h));
    assert!(!text.contains("no live grants"), "{text}");
    assert!(!text.contains("the clock starts at approval"), "{text}");
    assert!(text.contains("started 01:03"), "{text}");
    assert!(text.contains("ends 03:03 (in 3m)"), "{text}");
    assert!(text.contains(&format!("approved by {by}")), "{text}");
}

// ---------------------------------------------------------------------------
// Issue 11: decide from one screen, type less.

/// Item 11: mismatches are flagged above the diff, in plain words.
#[tokio::test]
async fn mismatches_are_flagged_with_a_narrower_role_suggested() {
    let mut h = Harness::start(3).await;
    // The reason is about staging; the request is for production.
    h.select(|r| r.requester.user == "judy" && r.namespaces.len() == 2);
    let text = common::flat(&detail(&h));
    assert!(
        text.contains("⚠ the reason says staging; this request is for prod-eu-west (production)"),
        "{text}"
    );
    // admin to roll back a deploy: a narrower role covers it.
    h.select(|r| r.requester.user == "alice" && r.role.name == "admin");
    let text = common::flat(&detail(&h));
    assert!(
        text.contains(
            "⚠ Role deployer would cover roll back/restart: 5 new (HIGH) instead of 221 new (CRIT)"
        ),
        "{text}"
    );
    // Issue 21, item 16: against a wildcard role the comparison is said
    // in words a person can compare, not "18 new, not 2".
    let asked = h
        .backend
        .act_as("bob", |w, _| {
            w.create(portcullis::domain::NewRequest {
                cluster: "prod-eu-west".into(),
                reason: "roll back the payments deploy".into(),
                ..common::asking::ask("bob", "cluster-admin", &["payments"], 30)
            })
        })
        .unwrap();
    h.settle().await;
    h.select(|r| r.name == asked.name);
    let wild = common::flat(&detail(&h));
    assert!(
        wild.contains("instead of cluster-admin's wildcard rule"),
        "{wild}"
    );
    assert!(!wild.contains("not 2 (CRIT)"), "{wild}");
    // And alice was denied within the day.
    assert!(
        text.contains("⚠ alice was denied view on staging-eu-west") && text.contains("ago by dana"),
        "{text}"
    );
    // A role that cannot do what the reason says.
    h.select(|r| r.requester.user == "carol" && r.phase() == Phase::Pending);
    let text = common::flat(&detail(&h));
    assert!(
        text.contains(
            "⚠ the reason needs read logs, port-forward; view lacks create pods/portforward"
        ),
        "{text}"
    );
    // No flag where nothing is off.
    h.select(|r| r.requester.user == "erin" && r.role.name == "deployer");
    assert!(!detail(&h).contains('⚠'), "{}", detail(&h));
}

/// Item 13: `J`/`K` stop at the end; each request keeps its scroll; help
/// stops at its end too.
#[tokio::test]
async fn detail_and_help_scrolling_stops_at_the_end_and_is_kept_per_request() {
    let mut h = Harness::start(3).await;
    h.resize(80, 24);
    let first = h.select(|r| r.requester.user == "erin" && r.role.name == "deployer");
    for _ in 0..20 {
        h.press("J").await;
    }
    let end = h.state.detail_scroll();
    assert!(end > 0, "it scrolled");
    assert!(
        !h.screen(80, 24).contains("more lines"),
        "at the end nothing is below"
    );
    h.press("K").await;
    assert_eq!(
        h.state.detail_scroll(),
        end.saturating_sub(3),
        "one K is one step back"
    );
    h.press("J").await;
    assert_eq!(h.state.detail_scroll(), end);
    // Away and back: the scroll is kept for that request, 0 for another.
    h.press("j").await;
    assert_eq!(h.state.detail_scroll(), 0);
    h.press("k").await;
    assert_eq!(h.state.selected_key(), Some(&first));
    assert_eq!(h.state.detail_scroll(), end);
    // Help: j past the end stays at the end.
    h.press("?").await;
    for _ in 0..200 {
        h.press("j").await;
    }
    let Mode::Help { scroll } = h.state.mode else {
        panic!("{:?}", h.state.mode)
    };
    h.press("k").await;
    let Mode::Help { scroll: back } = h.state.mode else {
        panic!()
    };
    assert_eq!(back + 1, scroll, "one k is one row back from the end");
    assert!(h.screen(80, 24).contains("more)"), "{}", h.screen(80, 24));
}

/// Item 14: a duration field opens with its value selected: typing
/// replaces it; `1`/`2`/`3` in the approve dialog pick 15m, 30m, 1h.
#[tokio::test]
async fn durations_are_typed_over_and_quick_picks_never_lengthen() {
    let mut h = Harness::start(3).await;
    let key = h.select(|r| r.requester.user == "erin" && r.role.name == "deployer");
    h.press("A1").await;
    let Mode::Approve(f) = &h.state.mode else {
        panic!("{:?}", h.state.mode)
    };
    assert_eq!(f.duration.lines(), ["1"], "A then 1 gives 1, not 4h1");
    h.press("<esc>a2").await;
    let Mode::Confirm(c) = &h.state.mode else {
        panic!("{:?}", h.state.mode)
    };
    let text = c.lines.join("\n");
    assert!(text.contains("For      30m"), "{text}");
    assert!(text.contains("Asked    4h in payments"), "{text}");
    h.press("1y").await;
    assert_eq!(h.phase(&key), Phase::Active);
    assert_eq!(
        h.req(&key)
            .status
            .decision
            .as_ref()
            .and_then(|d| d.duration),
        Some(Duration::from_secs(900))
    );
    // Never longer than asked: carol asked 30m.
    h.select(|r| r.requester.user == "carol" && r.phase() == Phase::Pending);
    h.press("a3").await;
    let Mode::Confirm(c) = &h.state.mode else {
        panic!("{:?}", h.state.mode)
    };
    assert!(
        c.note
            .as_deref()
            .unwrap_or("")
            .contains("longer than the 30m asked"),
        "{:?}",
        c.note
    );
    assert!(c.lines.join("\n").contains("For      30m"));
    // Shorten opens with what is left, selected.
    h.press("<esc>2").await;
    h.select(|r| r.requester.user == "heidi");
    h.press("s").await;
    let Mode::Shorten(f) = &h.state.mode else {
        panic!("{:?}", h.state.mode)
    };
    assert_eq!(f.input.lines(), ["3m"]);
    assert!(f.input.is_selecting());
    h.press("1m<enter>").await;
    assert!(h.flash().contains("now ends in 1m"), "{}", h.flash());
}

/// Item 15: recent reasons come back with `tab`/`↑`, and the reason can be
/// edited before a bulk action is confirmed.
#[tokio::test]
async fn recent_reasons_are_offered_and_editable() {
    let mut h = Harness::start(3).await;
    let key = h.select(|r| r.requester.user == "judy" && r.namespaces.len() == 2);
    h.press("d<tab>").await;
    let Mode::Reason(f) = &h.state.mode else {
        panic!("{:?}", h.state.mode)
    };
    let newest = f.recent[0].clone();
    assert_eq!(f.input.lines(), [newest.as_str()]);
    assert!(f.recent.len() >= 3, "{:?}", f.recent);
    h.press("<up>").await;
    let Mode::Reason(f) = &h.state.mode else {
        panic!()
    };
    let second = f.recent[1].clone();
    assert_eq!(f.input.lines(), [second.as_str()]);
    h.press("<down><down>").await;
    let Mode::Reason(f) = &h.state.mode else {
        panic!()
    };
    assert_eq!(f.input.lines(), [""], "down past the newest: the draft");
    // Recall, edit, submit.
    h.press("<tab> (again)<enter>").await;
    assert_eq!(
        h.req(&key)
            .status
            .decision
            .as_ref()
            .and_then(|d| d.reason.clone()),
        Some(format!("{newest} (again)"))
    );
    // This session's reason comes first next time.
    h.press("/user:erin<enter><c-a>d<tab>").await;
    let Mode::Reason(f) = &h.state.mode else {
        panic!()
    };
    assert_eq!(f.recent[0], format!("{newest} (again)"));
    h.press("<enter>").await;
    let Mode::Confirm(c) = &h.state.mode else {
        panic!("{:?}", h.state.mode)
    };
    assert!(c.title.starts_with("Deny 3 requests"), "{}", c.title);
    // e: back to the reason, kept, to edit before confirming.
    h.press("e<bs><bs><bs><bs><bs><bs><bs><bs>, for all three<enter>")
        .await;
    let Mode::Confirm(c) = &h.state.mode else {
        panic!("{:?}", h.state.mode)
    };
    assert!(c.lines[1].ends_with(", for all three"), "{:?}", c.lines);
}

/// Issue 21, item 6: a reason typed and cancelled (in the dialog or at
/// the bulk confirmation) is kept and offered first, so `d tab enter`
/// never sends an older, unrelated reason; a typed prefix narrows what
/// `tab` recalls.
#[tokio::test]
async fn a_cancelled_reason_comes_back_first_and_a_prefix_narrows_the_recent_ones() {
    let mut h = Harness::start(3).await;
    let key = h.select(|r| r.requester.user == "judy" && r.namespaces.len() == 2);
    h.press("d<tab>").await;
    let Mode::Reason(f) = &h.state.mode else {
        panic!("{:?}", h.state.mode)
    };
    let recent = f.recent.clone();
    assert!(recent.len() >= 2, "{recent:?}");
    // A prefix of the second offered reason narrows tab to it.
    let second = recent[1].clone();
    let prefix: String = second.chars().take(4).collect();
    let narrowed: Vec<&String> = recent
        .iter()
        .filter(|r| r.to_lowercase().starts_with(&prefix.to_lowercase()))
        .collect();
    h.press("<esc>").await;
    h.press(&format!("d{prefix}<tab>")).await;
    let Mode::Reason(f) = &h.state.mode else {
        panic!("{:?}", h.state.mode)
    };
    assert_eq!(
        f.input.lines(),
        [narrowed[0].as_str()],
        "tab kept the prefix's meaning"
    );
    h.press("<esc>").await;
    // Nothing offered starts with it: said, and the text stays.
    h.press("dzzqx<tab>").await;
    let Mode::Reason(f) = &h.state.mode else {
        panic!("{:?}", h.state.mode)
    };
    assert_eq!(f.input.lines(), ["zzqx"]);
    assert!(
        f.error
            .as_deref()
            .unwrap_or("")
            .contains("no recent reason starts with"),
        "{:?}",
        f.error
    );
    h.press("<esc>").await;
    // Typed, cancelled: offered first next time, and sent by d tab enter.
    h.press("dmeant for judy<esc>").await;
    assert!(h.effects.is_empty());
    h.press("d<tab><enter>").await;
    assert_eq!(
        h.req(&key)
            .status
            .decision
            .as_ref()
            .and_then(|d| d.reason.clone()),
        Some("meant for judy".into())
    );
    // The same at a bulk confirmation: n keeps the reason.
    h.press("/user:erin<enter><c-a>dfor erin's three<enter>n")
        .await;
    assert!(h.is_normal());
    h.press("<c-a>d<tab>").await;
    let Mode::Reason(f) = &h.state.mode else {
        panic!("{:?}", h.state.mode)
    };
    assert_eq!(f.input.lines(), ["for erin's three"]);
}

/// Issue 21, item 7: one's own pending request is never marked for a bulk
/// deny (ctrl-a leaves it out and says so; space refuses) and `d` on it
/// refuses: it is withdrawn, not "denied by" its own requester.
#[tokio::test]
async fn ones_own_request_is_never_denied_by_oneself() {
    let mut h = Harness::start(3).await;
    let me = h.state.approver.user.clone();
    let mine = h.select(|r| r.requester.user == me && r.phase() == Phase::Pending);
    h.press("<c-a>").await;
    assert!(!h.state.marks.is_empty());
    assert!(!h.state.marks.contains(&mine), "own request marked");
    assert!(h.flash().contains("not your own request"), "{}", h.flash());
    h.press("<esc><esc>").await;
    h.select(|r| r.name == mine.name);
    h.press(" ").await;
    assert!(h.state.marks.is_empty());
    assert!(h.flash().contains("withdraw it"), "{}", h.flash());
    h.press("<esc>").await;
    h.select(|r| r.name == mine.name);
    h.press("d").await;
    assert!(h.is_normal(), "{:?}", h.state.mode);
    assert!(h.flash().contains("not yours to deny"), "{}", h.flash());
    assert_eq!(h.phase(&mine), Phase::Pending);
    assert!(h.effects.is_empty());
}

/// Issue 21, item 9: a requester's console says "requester", offers only
/// what they may do (no approve, deny, marks in the footer), refuses the
/// decision keys up front, and says why the diff is unavailable.
#[tokio::test]
async fn a_requester_is_shown_as_one_and_offered_only_what_they_may_do() {
    let mut h = Harness::start(3).await;
    h.state.may_approve = false;
    h.state.inventories.clear();
    h.state.detail = None;
    h.state.ensure_detail();
    let screen = h.screen(120, 40);
    assert!(screen.contains("requester: "), "{screen}");
    assert!(!screen.contains("approver: "), "{screen}");
    for offered in ["a approve", "d deny", "space mark"] {
        assert!(!screen.contains(offered), "{offered}: {screen}");
    }
    h.select(|r| r.phase() == Phase::Pending);
    for key in ["a", "A", "d", " ", "<c-a>"] {
        h.press(key).await;
        assert!(h.is_normal(), "{key}: {:?}", h.state.mode);
        assert!(
            h.flash().contains("you are a requester here"),
            "{key}: {}",
            h.flash()
        );
        h.press("<esc>").await;
    }
    assert!(h.state.marks.is_empty());
    h.state.detail = None;
    h.state.ensure_detail();
    let text = common::flat(&detail(&h));
    assert!(text.contains("only approvers may read"), "{text}");
}

/// Issue 21, item 10: where a cluster is meant, its display name, never
/// the context's (the approver's own "bob").
#[tokio::test]
async fn a_cluster_is_named_by_its_display_name_not_the_context() {
    let mut h = Harness::start(3).await;
    let key = h.select(|r| r.phase() == Phase::Pending && r.requester.user != "dana");
    h.state
        .cluster_names
        .insert(key.cluster.clone(), "payments-prod-eu".into());
    h.press("a").await;
    let Mode::Confirm(c) = &h.state.mode else {
        panic!("{:?}", h.state.mode)
    };
    let line = c.lines.iter().find(|l| l.starts_with("Cluster")).unwrap();
    assert!(line.starts_with("Cluster  payments-prod-eu"), "{line}");
    assert!(!line.contains(&key.cluster), "{line}");
}

/// Issue 21, item 11: a pending request for a role the cluster's settings
/// do not let approvers hand out is INVAL with the reason, up front (not
/// CRIT, refused only at `y`).
#[tokio::test]
async fn a_role_that_is_not_grantable_is_invalid_up_front() {
    use portcullis::domain::Grantable;
    let mut h = Harness::start(3).await;
    let key = h.select(|r| r.phase() == Phase::Pending && r.role.name != "view");
    let limits = portcullis::domain::ValidationLimits {
        grantable: Some(vec![Grantable::parse("ClusterRole/view").unwrap()]),
        ..h.state.limits_for(&key.cluster).clone()
    };
    portcullis::console::update::update(
        &mut h.state,
        portcullis::console::update::Action::Backend(vec![
            portcullis::backend::BackendEvent::Limits {
                cluster: key.cluster.clone(),
                limits,
            },
        ]),
    );
    let why = h.state.entries.get(&key).unwrap().invalid.clone();
    assert!(
        why.as_deref()
            .unwrap_or("")
            .contains("is not a grantable role on this cluster (grantable: ClusterRole/view)"),
        "{why:?}"
    );
    h.select(|r| r.name == key.name);
    let screen = h.screen(200, 50);
    let row = screen.lines().find(|l| l.contains('▶')).unwrap();
    assert!(row.contains("INVAL"), "{row}");
}

/// Issue 21, item 12: while the server is unreachable the console says
/// so, refuses to open a decision (instead of failing after `y`), and once
/// it is back the stale message goes.
#[tokio::test]
async fn an_unreachable_server_is_said_while_it_lasts_and_no_longer() {
    use portcullis::backend::BackendEvent;
    use portcullis::console::update::{update, Action};
    let mut h = Harness::start(3).await;
    h.select(|r| r.phase() == Phase::Pending && r.requester.user != "dana");
    update(
        &mut h.state,
        Action::Backend(vec![BackendEvent::Connection {
            error: Some("server http://127.0.0.1:1 unreachable".into()),
        }]),
    );
    assert!(h.flash().contains("unreachable"), "{}", h.flash());
    assert!(!h.flash().contains("nothing is lost"), "{}", h.flash());
    h.press("<esc>a").await;
    assert!(h.is_normal(), "{:?}", h.state.mode);
    assert!(
        h.flash().contains("approving waits for the server"),
        "{}",
        h.flash()
    );
    update(
        &mut h.state,
        Action::Backend(vec![BackendEvent::Connection { error: None }]),
    );
    assert_eq!(h.flash(), "reconnected to the server");
    assert!(!h.screen(120, 40).contains("unreachable"));
    h.press("a").await;
    assert!(!h.is_normal(), "decisions open again");
}

/// Issue 21, item 14: a list says what is above and below its window, and
/// History at its top follows the newest decision instead of letting it
/// scroll off the top.
#[tokio::test]
async fn lists_say_what_is_off_screen_and_history_follows_the_newest() {
    let mut h = Harness::start(3).await;
    h.press("3").await;
    let total = h.state.list(View::History).len();
    // The list's bottom border says what is off screen.
    let border = |screen: &str| {
        screen
            .lines()
            .find(|l| l.contains(" more ┘") || l.contains(" more ─"))
            .unwrap_or("")
            .to_string()
    };
    let screen = h.screen(80, 24);
    let b = border(&screen);
    assert!(b.contains("↓ ") && !b.contains("↑ "), "{screen}");
    h.press("G").await;
    let screen = h.screen(80, 24);
    let b = border(&screen);
    assert!(b.contains("↑ ") && !b.contains("↓ "), "{screen}");
    h.press("g").await;
    assert_eq!(h.state.cursor[2], 0);
    // A decision arrives: it is the top row, and selected.
    let key = h
        .state
        .list(View::Pending)
        .iter()
        .find(|k| h.state.entries.get(k).unwrap().req.requester.user != "dana")
        .unwrap()
        .clone();
    h.backend
        .act_as("grace", |w, me| w.deny(&key, me, "handled elsewhere"))
        .unwrap();
    h.settle().await;
    assert_eq!(h.state.list(View::History).len(), total + 1);
    assert_eq!(h.state.selected_key(), Some(&key), "the newest is selected");
}

/// Issue 21, item 17: flags that must fire — a reason naming another
/// namespace, "scale up" with view — and the approve dialog repeats them.
#[tokio::test]
async fn a_reason_about_another_namespace_or_a_task_the_role_lacks_is_flagged() {
    let mut h = Harness::start(3).await;
    let ask = |ns: &str, role: &str, reason: &str| portcullis::domain::NewRequest {
        cluster: "prod-eu-west".into(),
        reason: reason.into(),
        ..common::asking::ask("bob", role, &[ns], 30)
    };
    let other = h
        .backend
        .act_as("bob", |w, _| {
            w.create(ask("checkout", "view", "payments pods are crash-looping"))
        })
        .unwrap();
    let scale = h
        .backend
        .act_as("bob", |w, _| {
            w.create(ask("checkout", "view", "scale up checkout for the sale"))
        })
        .unwrap();
    h.settle().await;
    h.select(|r| r.name == other.name);
    let text = common::flat(&detail(&h));
    assert!(
        text.contains("⚠ the reason names namespace payments; this request is for checkout"),
        "{text}"
    );
    h.press("a").await;
    let Mode::Confirm(c) = &h.state.mode else {
        panic!("{:?}", h.state.mode)
    };
    assert!(
        c.lines
            .iter()
            .any(|l| l.starts_with("⚠ the reason names namespace payments")),
        "the dialog repeats the flags: {:?}",
        c.lines
    );
    h.press("n").await;
    h.select(|r| r.name == scale.name);
    let text = common::flat(&detail(&h));
    assert!(
        text.contains("⚠ the reason needs scaling; view lacks update deployments.apps/scale"),
        "{text}"
    );
}

/// Issue 21, item 15: nothing that matters is clipped at 80 columns — the
/// READ-ONLY badge, the counts beside "server unreachable", the filter in
/// force, `q quit`, a label and its value.
#[tokio::test]
async fn nothing_that_matters_is_clipped_at_80_columns() {
    use portcullis::backend::BackendEvent;
    use portcullis::console::update::{update, Action};
    let mut h = Harness::start(3).await;
    h.state.config.readonly = true;
    update(
        &mut h.state,
        Action::Backend(vec![BackendEvent::Connection {
            error: Some("server http://127.0.0.1:1 unreachable".into()),
        }]),
    );
    h.press("<esc>/risk:hi<enter>").await;
    let screen = h.screen(80, 24);
    let lines: Vec<&str> = screen.lines().collect();
    assert!(lines[0].trim_end().ends_with(" READ-ONLY"), "{}", lines[0]);
    assert!(lines[0].contains("server unreachable"), "{}", lines[0]);
    assert!(lines[0].contains("expiring"), "{}", lines[0]);
    assert!(
        lines[1].trim_end().ends_with("filter: risk:hi"),
        "{}",
        lines[1]
    );
    let footer = lines.last().unwrap();
    assert!(
        footer.contains("q quit") && footer.contains("? help"),
        "{footer}"
    );
    // Read-only offers no marks.
    assert!(!footer.contains("space mark"), "{footer}");
    // The filter's error is cut at a word, never mid-word.
    h.press("/risk:bogus user:x ns:y cluster:z role:w some more words here")
        .await;
    let screen = h.screen(80, 24);
    let footer = screen.lines().last().unwrap().trim_end().to_string();
    assert!(
        footer.ends_with('…') || footer.ends_with("(at least)"),
        "{footer}"
    );
}

/// Item 16: space marks and moves down (help and footer say so); ctrl-a
/// and `:mark all` mark every row of the filter; esc clears.
#[tokio::test]
async fn marking_every_row_of_a_filter() {
    let mut h = Harness::start(3).await;
    let screen = h.screen(120, 40);
    assert!(screen.contains("space mark ↓"), "{screen}");
    h.press("?").await;
    assert!(common::flat(&h.screen(120, 60)).contains("mark or unmark, then move down"));
    h.press("<esc>g<space>").await;
    assert_eq!(h.state.cursor[0], 1, "space moves down");
    h.press("<esc>/cluster:prod<enter><c-a>").await;
    assert_eq!(h.state.marks.len(), 6);
    assert!(h.flash().contains("marked 6"), "{}", h.flash());
    h.press("<esc><esc>").await;
    assert!(h.state.marks.is_empty(), "esc clears the marks");
    h.press(":mark all<enter>").await;
    assert_eq!(h.state.marks.len(), 6);
    h.press("3<c-a>").await;
    assert!(h.state.marks.is_empty(), "History has no marks");
}

/// Item 17: enter shows the request in full; `c` copies its name only
/// when the config allows OSC 52.
#[tokio::test]
async fn enter_shows_everything_and_c_copies_only_when_allowed() {
    let mut h = Harness::start(3).await;
    h.resize(120, 40);
    let key = h.select(|r| r.requester.user == "alice" && r.role.name == "admin");
    h.press("<enter>").await;
    assert!(matches!(h.state.mode, Mode::Full { .. }));
    let text = common::flat(&h.screen(120, 400));
    for part in [
        "OBJECT (YAML)",
        "EVENTS",
        "asked by alice for ClusterRole admin in payments for 4h (ticket INC-5720)",
        &format!("name: {}", key.name),
        "reads Secret values: passwords, keys, tokens",
    ] {
        assert!(text.contains(part), "{part}:\n{text}");
    }
    // Every new permission is there, and scrolling stops at the end.
    let rows: Vec<String> = h
        .state
        .detail
        .as_ref()
        .unwrap()
        .diff
        .iter()
        .flat_map(|g| g.rows.iter().map(|r| r.resource.clone()))
        .collect();
    assert!(rows.len() > 20);
    for r in &rows {
        assert!(text.contains(r.as_str()), "{r} is in the full view");
    }
    h.press("G").await;
    let Mode::Full { scroll, .. } = h.state.mode else {
        panic!()
    };
    h.press("j").await;
    assert!(matches!(h.state.mode, Mode::Full { scroll: s, .. } if s == scroll));
    h.press("c").await;
    assert!(h.flash().contains("copy is off"), "{}", h.flash());
    assert!(!h.effects.iter().any(|e| matches!(e, Effect::Copy(_))));
    h.press("<esc>").await;
    assert!(h.is_normal());
    // With osc52 = true: the name, and only the name.
    let mut h = Harness::start_with(
        DemoConfig {
            seed: 3,
            rate: Duration::ZERO,
            ..Default::default()
        },
        AppConfig {
            osc52: true,
            ..Default::default()
        },
    )
    .await;
    let key = h.select(|r| r.requester.user == "alice" && r.role.name == "admin");
    h.press("c").await;
    assert_eq!(h.effects, vec![Effect::Copy(key.name.clone())]);
    assert_eq!(
        portcullis::console::view::clipboard::osc52(&key.name),
        format!("\x1b]52;c;{}\x07", base64_of(&key.name))
    );
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Item 18: clock times in the approver's zone (injected, so the test does
/// not depend on the host's), with UTC on the approve dialog; ages in one
/// precision.
#[tokio::test]
async fn times_are_local_with_utc_where_it_matters() {
    let cet = chrono::FixedOffset::east_opt(3600).unwrap();
    let mut h = Harness::start_with(
        DemoConfig {
            seed: 3,
            rate: Duration::ZERO,
            ..Default::default()
        },
        AppConfig {
            zone: portcullis::console::state::when::Zone::Fixed(cet),
            ..Default::default()
        },
    )
    .await;
    h.press("2").await;
    h.select(|r| r.requester.user == "heidi");
    let text = common::flat(&detail(&h));
    assert!(
        text.contains("started 02:03") && text.contains("ends 04:03 (in 3m)"),
        "{text}"
    );
    h.press("1").await;
    h.select(|r| r.requester.user == "erin" && r.role.name == "deployer");
    h.press("a").await;
    let Mode::Confirm(c) = &h.state.mode else {
        panic!()
    };
    assert!(
        c.lines.join("\n").contains("until 08:00 (07:00 UTC)"),
        "{:?}",
        c.lines
    );
    h.press("<esc>").await;
    // One precision: no seconds once past a minute.
    let screen = h.screen(200, 50);
    assert!(
        screen.contains("4h48m") && !screen.contains("55m01s"),
        "{screen}"
    );
}

/// Item 19: `:ctx` lists the contexts; `:ctx ` and tab offers them all.
#[tokio::test]
async fn ctx_lists_and_completes_every_context() {
    let mut h = Harness::start(3).await;
    h.press(":ctx<enter>").await;
    assert!(
        h.flash()
            .contains("3 contexts: dev-sandbox, prod-eu-west [PROD], staging-eu-west"),
        "{}",
        h.flash()
    );
    assert_eq!(h.state.context, None, ":ctx alone changes nothing");
    h.press(":ctx <tab>").await;
    let screen = h.screen(120, 40);
    assert!(
        screen.contains("dev-sandbox  prod-eu-west  staging-eu-west  all"),
        "{screen}"
    );
    h.press("<tab><enter>").await;
    assert_eq!(h.state.context.as_deref(), Some("prod-eu-west"));
}

/// Done when: keystrokes per decision, before (the sequences the console
/// needed before issue 11, which still work) and after.
#[tokio::test]
async fn keystrokes_per_decision() {
    async fn count(
        seed: u64,
        pick: fn(&portcullis::domain::AccessRequest) -> bool,
        keys: &str,
    ) -> (Harness, usize) {
        let mut h = Harness::start(seed).await;
        h.select(pick);
        let before = h.keys_sent;
        h.press(keys).await;
        let n = h.keys_sent - before;
        (h, n)
    }
    let erin = |r: &portcullis::domain::AccessRequest| {
        r.requester.user == "erin" && r.role.name == "deployer"
    };
    let judy = |r: &portcullis::domain::AccessRequest| {
        r.requester.user == "judy" && r.namespaces.len() == 2
    };
    let first = |_: &portcullis::domain::AccessRequest| true;
    let granted = |h: &Harness, mins: u64| {
        let k = h
            .state
            .list(View::Grants)
            .iter()
            .find(|k| h.req(k).requester.user == "erin" && h.req(k).role.name == "deployer")
            .cloned()
            .expect("granted");
        assert_eq!(
            h.req(&k).status.decision.as_ref().and_then(|d| d.duration),
            Some(Duration::from_secs(mins * 60))
        );
    };
    // Approve as asked.
    let (h, before) = count(3, erin, "ay").await;
    granted(&h, 240);
    let (h, after) = count(3, erin, "ay").await;
    granted(&h, 240);
    println!("approve as asked: before {before}, after {after}");
    assert_eq!((before, after), (2, 2));
    // Approve shorter (15m of 4h).
    let (h, before) = count(3, erin, "A<bs><bs>15m<enter>y").await;
    granted(&h, 15);
    let (h, after) = count(3, erin, "a1y").await;
    granted(&h, 15);
    println!("approve shorter: before {before}, after {after}");
    assert_eq!((before, after), (8, 3));
    // Deny with a recent reason: before, typed in full.
    let reason = "no incident ticket: open one and ask again";
    let (h, before) = count(3, judy, &format!("d{reason}<enter>")).await;
    let denied = |h: &Harness| {
        h.state.entries.values().any(|e| {
            e.req.requester.user == "judy"
                && e.req.namespaces.len() == 2
                && e.req
                    .status
                    .decision
                    .as_ref()
                    .and_then(|d| d.reason.as_deref())
                    == Some(reason)
        })
    };
    assert!(denied(&h));
    let (h, after) = count(3, judy, "d<tab><enter>").await;
    assert!(denied(&h), "the newest reason on record is that one");
    println!("deny with a recent reason: before {before}, after {after}");
    assert_eq!((before, after), (44, 3));
    // Bulk-deny a filter (erin's three pending requests).
    let all_erin_denied = |h: &Harness| {
        h.state
            .entries
            .values()
            .filter(|e| {
                e.req.requester.user == "erin"
                    && e.req.phase() == Phase::Denied
                    && e.req.created_at > h.state.now - chrono::TimeDelta::hours(5)
            })
            .count()
    };
    let (h, before) = count(
        3,
        first,
        &format!("/user:erin<enter>g<space><space><space>d{reason}<enter>y"),
    )
    .await;
    assert_eq!(all_erin_denied(&h), 3);
    let (h, after) = count(3, first, "/user:erin<enter><c-a>d<tab><enter>y").await;
    assert_eq!(all_erin_denied(&h), 3);
    println!("bulk-deny a filter (3 requests): before {before}, after {after}");
    assert_eq!((before, after), (60, 16));
}

/// `:audit` lists what happened, newest first, filtered with the lists'
/// terms; the full view tells a request's timeline. Over the server the
/// list is the server's own trail, sent to approvers on the stream.
#[tokio::test]
async fn the_audit_view_and_the_timeline_tell_what_happened() {
    let mut h = Harness::start(1).await;
    let created = h
        .backend
        .create(NewRequest {
            cluster: "staging-eu-west".into(),
            requester: Subject::new("alice", &["dev", "payments-team"]),
            role: RoleRef::cluster_role("edit"),
            namespaces: vec!["payments".into(), "checkout".into()],
            duration: Duration::from_secs(3600),
            reason: "INC-1 audit me".into(),
            ticket: None,
            credentials: Credentials::Identity,
            extends: None,
        })
        .await
        .unwrap();
    h.settle().await;
    let key = h.select(|r| r.name == created.name);
    h.press("A<bs><bs>15m<tab><tab><space><enter>y").await;
    assert_eq!(h.phase(&key), Phase::Active);
    h.press("2").await;
    let _ = h.select(|r| r.name == created.name);
    h.press("r<enter>").await;
    h.press("no longer needed<enter>").await;
    assert_eq!(h.phase(&key), Phase::Revoked);
    // Over the server the trail arrives on the stream after the answer.
    for _ in 0..200 {
        h.settle().await;
        if h.state
            .trail
            .recent()
            .any(|e| e.kind == portcullis::audit::Kind::Revoked && e.request == created.name)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    h.press(":audit user:alice<enter>").await;
    assert!(
        matches!(h.state.mode, Mode::Audit { .. }),
        "{:?}",
        h.state.mode
    );
    let screen = h.screen(160, 40);
    let approved =
        screen.find("approved by dana for 15m in payments (asked 1h in payments, checkout)");
    let revoked = screen.find("revoked by dana: \"no longer needed\"");
    assert!(approved.is_some() && revoked.is_some(), "{screen}");
    assert!(revoked < approved, "newest first: {screen}");
    h.press("<esc>:audit user:nobody-at-all<enter>").await;
    assert!(h.screen(160, 40).contains("no event matches this filter"));
    h.press("<esc>3").await;
    let _ = h.select(|r| r.name == created.name);
    h.press("<enter>").await;
    let full = h.screen(160, 60);
    for said in [
        "asked by alice for ClusterRole edit in payments, checkout for 1h",
        "approved by dana for 15m",
        "revoked by dana: \"no longer needed\"",
    ] {
        assert_eq!(full.matches(said).count(), 1, "{said} once in {full}");
    }
}

/// Item 6 of issue 10: read-only permissions below HIGH fold into one
/// line per namespace, listed with `x` and folded again with `x`; CRIT and
/// HIGH rows always come before the folded line; the first line says in
/// plain words what the grant lets them do.
#[tokio::test]
async fn reads_fold_into_one_line_and_x_lists_them() {
    let mut h = Harness::start(1).await;
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
    h.resize(120, 40);
    let theme = portcullis::console::view::Theme::mono();
    let text = |h: &Harness| -> Vec<String> {
        let entry = h.state.selected().unwrap();
        portcullis::console::view::detail::lines(&h.state, &entry, &theme, 200)
            .iter()
            .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect()
    };
    let d = h.state.detail.clone().expect("the detail");
    assert_eq!(d.diff.len(), 2, "one group per namespace");
    let folded: Vec<usize> = d
        .diff
        .iter()
        .map(|g| g.rows.iter().filter(|r| r.collapsible()).count())
        .collect();
    assert!(folded.iter().all(|n| *n > 10), "{folded:?}");
    let lines = text(&h);
    let first = &lines[0];
    assert!(
        first.contains("asks for ClusterRole edit in payments, orders")
            && first.contains("for 30m.")
            && first.contains("Can read Secrets"),
        "{first}"
    );
    for (g, n) in d.diff.iter().zip(&folded) {
        let ns = g.scope.to_string();
        let line = format!("reads {n} resource kinds in {ns}");
        let at = lines
            .iter()
            .position(|l| l.contains(&line))
            .unwrap_or_else(|| panic!("{line}:\n{}", lines.join("\n")));
        // Every CRIT and HIGH row of the group is above its folded line.
        let header = lines.iter().position(|l| *l == ns).expect("group header");
        let above = &lines[header..at];
        let worst = g.rows.iter().filter(|r| !r.collapsible()).count();
        assert_eq!(above.len(), 1 + worst, "{}", above.join("\n"));
        assert!(above[1].trim_start().starts_with("CRIT"), "{}", above[1]);
        // A folded read is not a row of its own.
        let read = g.rows.iter().find(|r| r.collapsible()).unwrap();
        assert!(
            !above
                .iter()
                .any(|l| l.contains(&format!(" {} ", read.resource))),
            "{} folded",
            read.resource
        );
    }
    let before = lines.len();

    // x lists every read, worst first still; x again folds them.
    h.press("x").await;
    let lines = text(&h);
    assert!(!lines.iter().any(|l| l.contains("resource kinds")));
    for g in &d.diff {
        for r in &g.rows {
            // (long names are cut to the column)
            let start: String = r.resource.chars().take(30).collect();
            assert!(
                lines.iter().any(|l| l.contains(&start)),
                "{} listed",
                r.resource
            );
        }
    }
    assert_eq!(lines.len(), before - 2 + folded.iter().sum::<usize>());
    // The expanded choice follows the approver to the next request.
    h.press("k").await;
    assert_ne!(h.state.selected_key().unwrap().name, created.name);
    assert!(h.state.reads_expanded);
    h.press("jx").await;
    assert_eq!(h.state.selected_key().unwrap().name, created.name);
    assert_eq!(text(&h).len(), before);
}

/// Issue 10 item 8b: `R` in Live grants ends your own grant after a `y`;
/// on someone else's grant it refuses and points at `r`.
#[tokio::test]
async fn release_ends_your_own_grant_and_only_yours() {
    let mut h = Harness::start(1).await;
    let mine = h
        .backend
        .create(NewRequest {
            cluster: "dev-sandbox".into(),
            requester: Subject::new("dana", &["sre", "oncall"]),
            role: RoleRef::cluster_role("view"),
            namespaces: vec!["payments".into()],
            duration: Duration::from_secs(3600),
            reason: "INC-3 look at the queue".into(),
            ticket: None,
            credentials: Credentials::Identity,
            extends: None,
        })
        .await
        .unwrap();
    let key = portcullis::backend::RequestKey::of(&mine);
    let spec = portcullis::backend::ApproveSpec {
        duration: Duration::from_secs(3600),
        namespaces: vec!["payments".into()],
        reason: None,
    };
    h.backend
        .act_as("erin", |w, me| w.approve(&key, me, spec))
        .unwrap();
    h.settle().await;
    h.press("2").await;
    // Someone else's grant: refused, nothing sent.
    h.select(|r| r.requester.user != "dana");
    h.press("R").await;
    assert!(h.is_normal());
    assert!(
        h.flash().contains("can release this grant: r revokes it"),
        "{}",
        h.flash()
    );
    // Your own: a confirmation, n cancels, y releases.
    h.select(|r| r.name == mine.name);
    h.press("R").await;
    let Mode::Confirm(c) = &h.state.mode else {
        panic!("R asks to confirm: {:?}", h.state.mode)
    };
    assert!(c.lines[0].starts_with("End your grant"), "{:?}", c.lines);
    h.press("n").await;
    assert_eq!(h.phase(&key), Phase::Active);
    assert!(h.effects.is_empty());
    h.press("Ry").await;
    assert_eq!(
        h.effects,
        vec![Effect::Apply {
            key: key.clone(),
            seen: portcullis::backend::Seen::default(),
            op: portcullis::backend::Op::Release,
        }]
    );
    assert_ne!(h.phase(&key), Phase::Active, "{}", h.flash());
    assert!(h.flash().starts_with("Released"), "{}", h.flash());
    assert_eq!(h.req(&key).status.revoked_by.as_deref(), Some("dana"));
    // Issue 21, item 2: recorded and shown as released, not revoked.
    assert_eq!(h.phase(&key), Phase::Released);
    h.press("3").await;
    h.select(|r| r.name == mine.name);
    let history = h.screen(200, 50);
    let row = history
        .lines()
        .find(|l| l.contains('▶'))
        .unwrap_or_else(|| panic!("{} selected in History:\n{history}", mine.name));
    assert!(
        row.contains("Released") && !row.contains("Revoked"),
        "{row}"
    );
}

/// Issue 21, item 18: the help lists ctrl-d and ctrl-u, and they scroll
/// it (as in the full view): a page down, a page back.
#[tokio::test]
async fn the_help_scrolls_with_the_page_keys_it_lists() {
    let mut h = Harness::start(3).await;
    h.screen(80, 24);
    h.press("?").await;
    let help = h.state.mode.clone();
    assert!(matches!(help, Mode::Help { scroll: 0 }), "{help:?}");
    h.press("<c-d>").await;
    let Mode::Help { scroll } = h.state.mode else {
        panic!("{:?}", h.state.mode)
    };
    assert_eq!(scroll, 10, "ctrl-d: a page down");
    h.press("<c-u>").await;
    assert!(
        matches!(h.state.mode, Mode::Help { scroll: 0 }),
        "ctrl-u: a page back: {:?}",
        h.state.mode
    );
}
