//! Credentials mode Token against a real control plane: a per-grant
//! ServiceAccount, `portcullis login` minting a token only the requester
//! may mint, the token working, and the apiserver rejecting it after revoke
//! (measured).

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cluster::{can_i, install, reaper, wait_for, ControlPlane, Reaper};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::Api;
use portcullis::backend::kube::{token_account, KubeBackend, KubeCluster, SYSTEM_NAMESPACE};
use portcullis::backend::{AccessBackend, ApproveSpec, NewRequest, RequestKey};
use portcullis::domain::{Credentials, Phase, RoleRef, Subject};

async fn client_from(kubeconfig: &str) -> kube::Client {
    let kc: kube::config::Kubeconfig =
        serde_yaml_ng::from_str(kubeconfig).expect("login prints a kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    kube::Client::try_from(config).expect("client")
}

async fn list_pods(client: &kube::Client) -> Result<(), u16> {
    match Api::<Pod>::namespaced(client.clone(), "payments")
        .list(&Default::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) => Err(s.code),
        Err(e) => panic!("{e}"),
    }
}

fn login(cp: &ControlPlane, context: &str, name: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["--context", context, "login", name])
        .env("KUBECONFIG", cp.kubeconfig())
        .env("XDG_STATE_HOME", cp.dir.join("state"))
        .output()
        .expect("run portcullis login")
}

/// The control plane, its admin, alice's and bob's backends, and the
/// reaper: alone, it holds the minting right that setting up a grant's
/// credentials needs.
struct Ctx {
    _reaper: Reaper,
    bob: KubeBackend,
    alice: KubeBackend,
    alice_client: kube::Client,
    admin: Arc<KubeCluster>,
    cp: ControlPlane,
}

impl Ctx {
    async fn start() -> Self {
        let cp = ControlPlane::start();
        let admin = install(&cp).await;
        let alice: KubeCluster = std::sync::Arc::try_unwrap(cp.cluster("alice").await)
            .ok()
            .unwrap();
        let alice_client = alice.client.clone();
        let alice = KubeBackend::from_clusters(vec![std::sync::Arc::new(alice)]);
        let bob = KubeBackend::from_clusters(vec![cp.cluster("bob").await]).reaping(false);
        let _reaper = reaper(&cp).await;
        Ctx {
            _reaper,
            bob,
            alice,
            alice_client,
            admin,
            cp,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_mode_end_to_end() {
    let ctx = Ctx::start().await;
    approvers_never_may_mint(&ctx).await;
    let key = alice_asks_bob_approves(&ctx).await;
    the_grant_binds_its_service_account(&ctx, &key.name).await;
    let token_client = only_the_requester_may_mint(&ctx, &key.name).await;
    revoke_and_the_apiserver_rejects_the_token(&ctx, &key, &token_client).await;
}

/// Approvers never may mint tokens.
async fn approvers_never_may_mint(ctx: &Ctx) {
    assert!(
        !can_i(
            &ctx.admin,
            "bob",
            "create",
            "",
            "serviceaccounts/token",
            Some(SYSTEM_NAMESPACE)
        )
        .await,
        "approvers cannot mint tokens"
    );
}

/// alice asks in Token mode, bob approves; returns the request's key.
async fn alice_asks_bob_approves(ctx: &Ctx) -> RequestKey {
    let asked = ctx
        .alice
        .create(NewRequest {
            cluster: "test".into(),
            requester: Subject::new("alice", &["dev"]),
            role: RoleRef::cluster_role("edit"),
            namespaces: vec!["payments".into()],
            duration: Duration::from_secs(1800),
            reason: "INC-5 token please".into(),
            ticket: None,
            credentials: Credentials::Token,
            extends: None,
        })
        .await
        .unwrap();
    let key = RequestKey {
        cluster: "test".into(),
        name: asked.name.clone(),
    };
    let granted = ctx
        .bob
        .approve(
            &key,
            ApproveSpec {
                duration: Duration::from_secs(900),
                namespaces: vec!["payments".into()],
                reason: None,
            },
        )
        .await
        .expect("approve in Token mode");
    assert_eq!(granted.phase(), Phase::Active);
    key
}

/// The reaper makes the grant's ServiceAccount and records it in the
/// grant's status; the grant binds it, not alice.
async fn the_grant_binds_its_service_account(ctx: &Ctx, name: &str) {
    let account = token_account(name);
    let accounts = Api::<ServiceAccount>::namespaced(ctx.admin.client.clone(), SYSTEM_NAMESPACE);
    wait_for(
        "the reaper to make the grant's ServiceAccount",
        20,
        || async { accounts.get_opt(&account).await.unwrap().is_some() },
    )
    .await;
    // ... and record it in the grant's status (what `login` reads).
    wait_for("the reaper to record the token objects", 20, || async {
        ctx.bob
            .list()
            .await
            .unwrap()
            .iter()
            .any(|r| r.name == name && portcullis::backend::kube::grant::token_objects_recorded(r))
    })
    .await;
    let rb = Api::<RoleBinding>::namespaced(ctx.admin.client.clone(), "payments")
        .get(&format!("portcullis-{name}"))
        .await
        .unwrap();
    assert_eq!(
        rb.subjects.unwrap()[0].kind,
        "ServiceAccount",
        "the grant binds the ServiceAccount, not alice"
    );
    assert_eq!(
        list_pods(&ctx.alice_client).await,
        Err(403),
        "alice herself gains nothing"
    );
}

/// Only the requester may mint; the token works. Returns a client with it.
async fn only_the_requester_may_mint(ctx: &Ctx, name: &str) -> kube::Client {
    let cp = &ctx.cp;
    let denied = login(cp, "mallory", name);
    assert_eq!(denied.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("may not mint a token"),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );
    let mut out = login(cp, "alice", name);
    for _ in 0..50 {
        // The credentials are recorded a moment after the ServiceAccount exists.
        if out.status.success() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        out = login(cp, "alice", name);
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kubeconfig = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(kubeconfig.contains(&format!("portcullis-{name}")));
    let token_client = client_from(&kubeconfig).await;
    wait_for("the token to work", 10, || async {
        list_pods(&token_client).await.is_ok()
    })
    .await;
    token_client
}

/// Revoke deletes the ServiceAccount; the apiserver then rejects the token.
async fn revoke_and_the_apiserver_rejects_the_token(
    ctx: &Ctx,
    key: &RequestKey,
    token_client: &kube::Client,
) {
    let account = token_account(&key.name);
    let accounts = Api::<ServiceAccount>::namespaced(ctx.admin.client.clone(), SYSTEM_NAMESPACE);
    let revoked = ctx.bob.revoke(key, "done").await.expect("revoke");
    let t = Instant::now();
    assert!(
        revoked
            .status
            .message
            .as_deref()
            .unwrap_or("")
            .starts_with("revoked and verified"),
        "{:?}",
        revoked.status.message
    );
    // The approver may not delete in portcullis-system: the reaper does.
    wait_for(
        "the reaper to delete the grant's ServiceAccount",
        20,
        || async { accounts.get_opt(&account).await.unwrap().is_none() },
    )
    .await;
    wait_for("the apiserver to reject the revoked token", 60, || async {
        list_pods(token_client).await == Err(401)
    })
    .await;
    eprintln!(
        "token rejected {:.1} s after revoke (apiserver token cache)",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(
        login(&ctx.cp, "alice", &key.name).status.code(),
        Some(1),
        "no login after the grant ended"
    );
}
