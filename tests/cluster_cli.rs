//! The scriptable verbs and `portcullis reaper`, as processes, against a
//! real control plane: exit codes, one-line errors, and a reaper killed and
//! restarted mid-grant that still closes it.

mod common;
use common::cli::{ok, portcullis};

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::cluster::{wait_for, ControlPlane};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::Api;

fn fails(o: &Output, code: i32, expect: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{err}");
    assert!(err.contains(expect), "{expect} in {err}");
    if code == 1 {
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    }
}

fn reaper(cp: &ControlPlane) -> Child {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["--context", "reaper", "reaper", "--listen", "127.0.0.1:0"])
        .env("KUBECONFIG", cp.kubeconfig())
        .env("XDG_STATE_HOME", cp.dir.join("state"))
        .stderr(Stdio::null())
        .spawn()
        .expect("start the reaper")
}

// The control plane with Portcullis installed, and its admin.
use common::cluster::Installed as Ctx;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbs_and_reaper_as_processes() {
    let ctx = Ctx::start().await;
    crds_prints_the_manifests(&ctx);
    let name = requester_asks_approver_lists(&ctx);
    approver_approves_shortens_revokes(&ctx, &name);
    let name = reaper_killed_mid_grant(&ctx).await;
    restarted_reapers_close_the_overdue_grant(&ctx, &name).await;
    attacker_text_never_reaches_a_terminal(&ctx);
}

/// `crds` prints the CRD and Portcullis's roles.
fn crds_prints_the_manifests(ctx: &Ctx) {
    let crds = ok(&portcullis(&ctx.cp, "admin", &["crds"]));
    assert!(
        crds.contains("name: accessrequests.portcullis.dev")
            && crds.contains("name: portcullis-approver")
    );
}

/// Requester asks; approver lists. Returns the request's name.
fn requester_asks_approver_lists(ctx: &Ctx) -> String {
    let cp = &ctx.cp;
    let name = ok(&portcullis(
        cp,
        "alice",
        &[
            "request",
            "--role",
            "edit",
            "--cluster-role",
            "-n",
            "payments",
            "--for",
            "30m",
            "--reason",
            "INC-7 stuck",
            "--ticket",
            "INC-7",
            "--group",
            "dev",
        ],
    ))
    .trim()
    .to_string();
    assert!(name.starts_with("alice-payments-"), "{name}");
    let table = ok(&portcullis(cp, "bob", &["get", "requests"]));
    assert!(
        table.starts_with("NAME") && table.contains(&name) && table.contains("Pending"),
        "{table}"
    );
    let json: serde_json::Value = serde_json::from_str(&ok(&portcullis(
        cp,
        "bob",
        &["get", "requests", "-o", "json"],
    )))
    .expect("json");
    // kubectl's List, each request a Kubernetes object.
    assert_eq!(json["kind"], "List");
    assert_eq!(json["items"][0]["kind"], "AccessRequest");
    assert_eq!(json["items"][0]["metadata"]["name"], name.as_str());
    assert_eq!(json["items"][0]["spec"]["requester"]["user"], "alice");
    assert_eq!(json["items"][0]["spec"]["requester"]["groups"][0], "dev");
    name
}

/// The approver approves shorter, shortens, revokes; refusals exit 1 or 2.
fn approver_approves_shortens_revokes(ctx: &Ctx, name: &str) {
    let cp = &ctx.cp;
    fails(
        &portcullis(cp, "alice", &["approve", name]),
        1,
        "someone else must approve",
    );
    fails(
        &portcullis(cp, "bob", &["approve", name, "--for", "2h"]),
        1,
        "a grant can only be shorter",
    );
    let approved = ok(&portcullis(cp, "bob", &["approve", name, "--for", "10m"]));
    assert!(
        approved.starts_with(&format!(
            "approved {name}: ClusterRole edit in payments until "
        )),
        "{approved}"
    );
    let grants = ok(&portcullis(cp, "bob", &["get", "grants", "-o", "yaml"]));
    assert!(
        grants.contains(name) && grants.contains("phase: Active"),
        "{grants}"
    );
    fails(
        &portcullis(cp, "bob", &["shorten", name, "--to", "1h"]),
        1,
        "only move the end earlier",
    );
    ok(&portcullis(cp, "bob", &["shorten", name, "--to", "5m"]));
    fails(&portcullis(cp, "bob", &["revoke", name]), 2, "--reason");
    ok(&portcullis(
        cp,
        "bob",
        &["revoke", name, "--reason", "done"],
    ));
    let all = ok(&portcullis(cp, "bob", &["get", "requests", "--all"]));
    assert!(all.contains("Revoked"), "{all}");
    fails(
        &portcullis(cp, "bob", &["deny", "no-such-request", "--reason", "x"]),
        1,
        "not found",
    );
    fails(
        &portcullis(
            cp,
            "alice",
            &[
                "request", "--role", "deployer", "--for", "30m", "--reason", "x",
            ],
        ),
        1,
        "exactly one namespace",
    );
}

/// The reaper, killed mid-grant (a 4 s grant, approved while it ran).
/// Returns the grant's name.
async fn reaper_killed_mid_grant(ctx: &Ctx) -> String {
    let cp = &ctx.cp;
    let mut first = reaper(cp);
    let name = ok(&portcullis(
        cp,
        "alice",
        &[
            "request",
            "--role",
            "view",
            "--cluster-role",
            "-n",
            "orders",
            "--for",
            "30m",
            "--reason",
            "INC-8",
        ],
    ))
    .trim()
    .to_string();
    ok(&portcullis(cp, "bob", &["approve", &name, "--for", "4s"]));
    let bindings: Api<RoleBinding> = Api::namespaced(ctx.admin.client.clone(), "orders");
    let binding = format!("portcullis-{name}");
    assert!(bindings.get_opt(&binding).await.unwrap().is_some());
    let _ = first.kill();
    let _ = first.wait();
    name
}

/// Restarted, the reapers still close it: on start they revoke what is
/// already overdue.
async fn restarted_reapers_close_the_overdue_grant(ctx: &Ctx, name: &str) {
    let cp = &ctx.cp;
    let bindings: Api<RoleBinding> = Api::namespaced(ctx.admin.client.clone(), "orders");
    let binding = format!("portcullis-{name}");
    // Past its end (stored expiresAt), with no reaper running.
    let shown = ok(&portcullis(cp, "bob", &["get", "grants", "-o", "json"]));
    let v: serde_json::Value = serde_json::from_str(&shown).unwrap();
    let end = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name)
        .and_then(|i| i["status"]["expiresAt"].as_str())
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .expect("a live grant with an end");
    while chrono::Utc::now() < end + chrono::TimeDelta::seconds(1) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        bindings.get_opt(&binding).await.unwrap().is_some(),
        "no reaper ran, nothing closed it yet"
    );
    let mut second = reaper(cp);
    let mut third = reaper(cp);
    wait_for(
        "the restarted reapers to close the overdue grant",
        15,
        || async { bindings.get_opt(&binding).await.unwrap().is_none() },
    )
    .await;
    let all = ok(&portcullis(
        cp,
        "bob",
        &["get", "requests", "--all", "-o", "json"],
    ));
    let v: serde_json::Value = serde_json::from_str(&all).unwrap();
    let item = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name)
        .expect("listed");
    assert_eq!(item["status"]["phase"], "Expired");
    for r in [&mut second, &mut third] {
        let _ = r.kill();
        let _ = r.wait();
    }
}

/// Attacker text never reaches a terminal through the CLI either: an
/// OSC 52 clipboard write in spec.requester.user, escapes in the reason.
fn attacker_text_never_reaches_a_terminal(ctx: &Ctx) {
    let cp = &ctx.cp;
    // (In spec.role.kind the CRD's schema refuses it at the door.)
    let osc52 = "\u{1b}]52;c;ZWNobyBwd25lZA==\u{7}";
    let mut hostile = serde_json::json!({
        "apiVersion": "portcullis.dev/v1alpha1", "kind": "AccessRequest",
        "metadata": {"name": "hostile-kind"},
        "spec": {"requester": {"user": "mallory"}, "role": {"kind": osc52, "name": "edit"},
                 "namespaces": ["payments"], "duration": "30m", "reason": "x"}});
    let (code, text) = cp.raw(
        "mallory",
        "POST",
        "/apis/portcullis.dev/v1alpha1/accessrequests",
        Some(&hostile.to_string()),
    );
    assert_eq!(code, 422, "{text}");
    assert!(text.contains("spec.role.kind"), "{text}");
    hostile["spec"]["role"]["kind"] = serde_json::json!("ClusterRole");
    hostile["spec"]["requester"]["user"] =
        serde_json::json!(format!("system:serviceaccount:payments:x{osc52}"));
    hostile["spec"]["reason"] = serde_json::json!("\u{1b}[2J\u{9b}31m\u{202e}gnp.exe");
    let (code, text) = cp.raw(
        "mallory",
        "POST",
        "/apis/portcullis.dev/v1alpha1/accessrequests",
        Some(&hostile.to_string()),
    );
    assert_eq!(code, 201, "{text}");
    for args in [
        &["get", "requests"][..],
        &["get", "requests", "-o", "json"][..],
        &["get", "requests", "-o", "yaml"][..],
    ] {
        let out = portcullis(cp, "bob", args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("hostile-kind"), "{args:?}: {stdout}");
        assert!(
            !stdout.contains('\u{1b}')
                && !stdout.contains('\u{7}')
                && !stdout.contains('\u{9b}')
                && !stdout.contains('\u{202e}'),
            "{args:?} prints attacker bytes: {stdout:?}"
        );
    }
    let out = portcullis(cp, "bob", &["approve", "hostile-kind"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is a system identity"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}') && !stderr.contains('\u{7}'),
        "stderr carries the escape: {stderr:?}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}
