//! The console under the server's policy (the shipped `policies/`): the
//! verdict and its reasons in the detail pane, forbidden actions refused up
//! front with the rule's words, two approvals for critical diffs, and
//! on-call self-service approved by the policy itself.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::Harness;
use portcullis::backend::demo::DemoConfig;
use portcullis::backend::http::HttpBackend;
use portcullis::backend::{AccessBackend, NewRequest, RequestKey};
use portcullis::console::state::app::{AppConfig, Mode, View};
use portcullis::console::update::Effect;
use portcullis::domain::{Credentials, Phase, RoleRef, Subject};

fn shipped() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")
}

async fn console(user: &str, approvers: &[&str]) -> Harness {
    Harness::over_server(
        DemoConfig {
            seed: 1,
            rate: Duration::ZERO,
            ..Default::default()
        },
        AppConfig::default(),
        user,
        Some(&shipped()),
        approvers,
    )
    .await
}

fn ask(user: &[&str], cluster: &str, role: &str, ns: &str, ticket: Option<&str>) -> NewRequest {
    NewRequest {
        cluster: cluster.into(),
        requester: Subject::new(user[0], &user[1..]),
        role: RoleRef::cluster_role(role),
        namespaces: vec![ns.into()],
        duration: Duration::from_secs(1800),
        reason: "INC-42 checkout errors".into(),
        ticket: ticket.map(Into::into),
        credentials: Credentials::Identity,
        extends: None,
    }
}

/// Puts a request straight into the world (as if made before the policy
/// was in force) and selects it.
async fn stored(h: &mut Harness, new: NewRequest) -> RequestKey {
    let made = h.backend.create(new).await.expect("stored");
    h.settle().await;
    let key = RequestKey::of(&made);
    h.select(|r| RequestKey::of(r) == key)
}

fn approves(h: &Harness) -> usize {
    h.effects
        .iter()
        .filter(|e| {
            matches!(
                e,
                Effect::Apply {
                    op: portcullis::backend::Op::Approve(_),
                    ..
                }
            )
        })
        .count()
}

#[tokio::test]
async fn an_approver_the_policy_does_not_list_is_told_why_before_any_round_trip() {
    // grace (security) is on the server's approvers list, but the policy
    // lets only the owning team and on-call approve.
    let mut h = console("grace", &["group:security"]).await;
    let key = stored(
        &mut h,
        ask(
            &["alice", "dev", "payments-team"],
            "staging-eu-west",
            "view",
            "payments",
            None,
        ),
    )
    .await;
    let screen = h.screen(120, 40);
    assert!(screen.contains("Policy"), "{screen}");
    assert!(screen.contains("not you"), "{screen}");
    insta::assert_snapshot!("policy_not_an_approver_120x40", screen);
    insta::assert_snapshot!("policy_not_an_approver_80x24", h.screen(80, 24));
    h.press("a").await;
    assert!(h.is_normal(), "no dialog opens: {:?}", h.state.mode);
    let flash = h.flash();
    assert!(
        flash.contains("the policy does not let you approve this")
            && flash.contains("group oncall")
            && flash.contains("group payments-team"),
        "{flash}"
    );
    assert_eq!(approves(&h), 0, "nothing was sent");
    assert_eq!(h.phase(&key), Phase::Pending);
}

#[tokio::test]
async fn a_request_the_policy_refuses_shows_why_and_cannot_be_approved() {
    let mut h = console("dana", &[]).await;
    // Made in the world directly: the server would have refused it.
    let key = stored(
        &mut h,
        ask(
            &["bob", "dev", "orders-team"],
            "prod-eu-west",
            "view",
            "orders",
            None,
        ),
    )
    .await;
    let screen = h.screen(120, 40);
    assert!(
        screen.contains("refused: a ticket is required on") && screen.contains("The policy"),
        "{screen}"
    );
    h.press("a").await;
    assert!(h.is_normal(), "{:?}", h.state.mode);
    assert!(
        h.flash().contains("the policy refuses this request"),
        "{}",
        h.flash()
    );
    assert_eq!(approves(&h), 0);
    // Deny is still possible: the approver can close it with a reason.
    h.press("dno ticket, ask again with one<enter>").await;
    assert_eq!(h.phase(&key), Phase::Denied);
}

#[tokio::test]
async fn a_critical_request_needs_two_approvers_and_says_so() {
    let mut h = console("dana", &[]).await;
    // edit reads Secrets: critical.
    let key = stored(
        &mut h,
        ask(
            &["alice", "dev", "payments-team"],
            "staging-eu-west",
            "edit",
            "payments",
            None,
        ),
    )
    .await;
    assert!(
        h.screen(120, 40).contains("0 of 2"),
        "{}",
        h.screen(120, 40)
    );
    h.press("a").await;
    let Mode::Confirm(c) = &h.state.mode else {
        panic!("confirm: {:?}", h.state.mode)
    };
    let text = c.lines.join("\n");
    assert!(
        text.contains("yours makes 1 of 2: nothing is granted until 1 more approve"),
        "{text}"
    );
    assert!(
        text.contains("the clock starts at the last approval"),
        "{text}"
    );
    h.press("y").await;
    assert_eq!(h.phase(&key), Phase::Pending, "one approval is not enough");
    assert!(h.flash().contains("recorded"), "{}", h.flash());
    let screen = h.screen(120, 40);
    assert!(screen.contains("1 of 2: dana"), "{screen}");
    // The same approver twice counts once.
    h.press("ay").await;
    assert_eq!(h.phase(&key), Phase::Pending);
    assert!(h.flash().contains("already approved"), "{}", h.flash());
}

#[tokio::test]
async fn on_call_read_access_approves_itself_and_ends_on_time() {
    let mut h = console("dana", &[]).await;
    let url = h.server_url.clone().expect("over HTTP");
    let erin = HttpBackend::connect(&url, "erin".into(), None)
        .await
        .expect("erin connects");
    let mut new = ask(
        &["erin", "sre", "oncall"],
        "staging-eu-west",
        "view",
        "monitoring",
        None,
    );
    new.duration = Duration::from_secs(1800);
    let made = erin.create(new).await.expect("created");
    assert_eq!(made.phase(), Phase::Active, "granted at once");
    let d = made.status.decision.clone().expect("a decision");
    assert_eq!(d.by, "policy:oncall-read-self-service");
    h.settle().await;
    let key = RequestKey::of(&made);
    h.state.view = View::Grants;
    h.select(|r| RequestKey::of(r) == key);
    let screen = h.screen(200, 50);
    assert!(
        screen.contains("policy:oncall-read-self-service"),
        "{screen}"
    );
    // It still ends on time.
    h.advance_settled(Duration::from_secs(1801)).await;
    assert_eq!(h.phase(&key), Phase::Expired);
}

/// Verdicts judge the diff: the server reads a cluster's RBAC before it
/// judges that cluster's requests, and judges again when it changes, so no
/// request is left judged "unknown" (two approvals) for good.
#[tokio::test]
async fn verdicts_are_judged_with_the_clusters_rbac() {
    let h = console("dana", &[]).await;
    let mut judged = 0;
    for (key, e) in h.state.entries.iter() {
        if e.req.phase() != Phase::Pending || e.invalid.is_some() {
            continue;
        }
        let d = h
            .state
            .verdicts
            .get(key)
            .expect("every pending request has a verdict");
        let critical = e.summary.worst == Some(portcullis::domain::Severity::Critical);
        assert_eq!(
            d.approvals_required,
            if critical { 2 } else { 1 },
            "{} ({:?})",
            key.name,
            e.summary.worst
        );
        judged += 1;
    }
    assert!(judged >= 5, "{judged}");
}
