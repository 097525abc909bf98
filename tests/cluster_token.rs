//! Credentials mode Token against a real control plane: a per-grant
//! ServiceAccount, `portcullis login` minting a token only the requester
//! may mint, the token working, and the apiserver rejecting it after revoke
//! (measured).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::cluster::{can_i, install, reaper, wait_for, ControlPlane};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_mode_end_to_end() {
    let cp = ControlPlane::start();
    let admin = install(&cp).await;
    let alice: KubeCluster = std::sync::Arc::try_unwrap(cp.cluster("alice").await)
        .ok()
        .unwrap();
    let alice_client = alice.client.clone();
    let alice = KubeBackend::from_clusters(vec![std::sync::Arc::new(alice)]);
    let bob = KubeBackend::from_clusters(vec![cp.cluster("bob").await]).reaping(false);
    // The reaper, alone, holds the minting right that setting up a grant's
    // credentials needs: approvers never may mint.
    let _reaper = reaper(&cp).await;
    assert!(
        !can_i(
            &admin,
            "bob",
            "create",
            "",
            "serviceaccounts/token",
            Some(SYSTEM_NAMESPACE)
        )
        .await,
        "approvers cannot mint tokens"
    );
    let asked = alice
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
    let granted = bob
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
    let account = token_account(&asked.name);
    let accounts = Api::<ServiceAccount>::namespaced(admin.client.clone(), SYSTEM_NAMESPACE);
    wait_for(
        "the reaper to make the grant's ServiceAccount",
        20,
        || async { accounts.get_opt(&account).await.unwrap().is_some() },
    )
    .await;
    // ... and record it in the grant's status (what `login` reads).
    wait_for("the reaper to record the token objects", 20, || async {
        bob.list().await.unwrap().iter().any(|r| {
            r.name == asked.name && portcullis::backend::kube::grant::token_objects_recorded(r)
        })
    })
    .await;
    let rb = Api::<RoleBinding>::namespaced(admin.client.clone(), "payments")
        .get(&format!("portcullis-{}", asked.name))
        .await
        .unwrap();
    assert_eq!(
        rb.subjects.unwrap()[0].kind,
        "ServiceAccount",
        "the grant binds the ServiceAccount, not alice"
    );
    assert_eq!(
        list_pods(&alice_client).await,
        Err(403),
        "alice herself gains nothing"
    );

    // Only the requester may mint.
    let denied = login(&cp, "mallory", &asked.name);
    assert_eq!(denied.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("may not mint a token"),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );
    let mut out = login(&cp, "alice", &asked.name);
    for _ in 0..50 {
        // The credentials are recorded a moment after the ServiceAccount exists.
        if out.status.success() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        out = login(&cp, "alice", &asked.name);
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kubeconfig = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(kubeconfig.contains(&format!("portcullis-{}", asked.name)));
    let token_client = client_from(&kubeconfig).await;
    wait_for("the token to work", 10, || async {
        list_pods(&token_client).await.is_ok()
    })
    .await;

    // Revoke deletes the ServiceAccount; the apiserver then rejects the token.
    let revoked = bob.revoke(&key, "done").await.expect("revoke");
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
        list_pods(&token_client).await == Err(401)
    })
    .await;
    eprintln!(
        "token rejected {:.1} s after revoke (apiserver token cache)",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(
        login(&cp, "alice", &asked.name).status.code(),
        Some(1),
        "no login after the grant ended"
    );
}
