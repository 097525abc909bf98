//! Cluster names, not context names, against a real control plane: the
//! test kubeconfig has a dozen contexts for its one cluster (`test`), as
//! real kubeconfigs have an admin and a user context per cluster. Connected
//! together they are one cluster (each request once), shown by the
//! kubeconfig cluster's name or the configured display name.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use common::buffer_text;
use common::cluster::{install, ControlPlane};
use portcullis::backend::batch::drain;
use portcullis::backend::kube::KubeBackend;
use portcullis::backend::{AccessBackend, NewRequest};
use portcullis::console::state::app::{AppConfig, View};
use portcullis::console::state::AppState;
use portcullis::console::update::{update, Action};
use portcullis::console::view::{self, Theme};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

fn ask() -> NewRequest {
    NewRequest {
        reason: "INC-12 names".into(),
        ..common::asking::ask("alice", "view", &["payments"], 30)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contexts_of_one_cluster_show_once_by_its_name() {
    let cp = ControlPlane::start();
    install(&cp).await;
    let alice = KubeBackend::from_clusters(vec![cp.cluster("alice").await]);
    let asked = alice.create(ask()).await.unwrap();

    // A second kubeconfig cluster (unreachable), so the console shows a
    // CLUSTER column.
    let mut kubeconfig = kube::config::Kubeconfig::read_from(cp.kubeconfig()).unwrap();
    let mut other = kubeconfig.clusters[0].clone();
    other.name = "eu-west-1".into();
    if let Some(c) = other.cluster.as_mut() {
        c.server = Some("https://127.0.0.1:9".into());
    }
    kubeconfig.clusters.push(other);
    let mut far = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == "bob")
        .unwrap()
        .clone();
    far.name = "bob@eu".into();
    if let Some(c) = far.context.as_mut() {
        c.cluster = "eu-west-1".into();
    }
    kubeconfig.contexts.push(far);

    // --all-contexts: every context of `test` is one cluster, connected as
    // the current context (admin); bob@eu is another cluster.
    let configured = BTreeMap::from([("test".to_string(), "staging-eu".to_string())]);
    let contexts_of_test = kubeconfig.contexts.len() - 1;
    let swept = KubeBackend::connect_from(kubeconfig.clone(), &[], true, &configured)
        .await
        .unwrap();
    assert_eq!(swept.same_cluster().len(), contexts_of_test - 1);
    assert!(swept.same_cluster().iter().all(|(_, kept)| kept == "admin"));
    let info = swept.info();
    assert_eq!(info.clusters, ["admin", "bob@eu"]);
    assert_eq!(
        info.cluster_names,
        BTreeMap::from([
            ("admin".to_string(), "staging-eu".to_string()),
            ("bob@eu".to_string(), "eu-west-1".to_string()),
        ])
    );
    // Named one by one, both contexts of `test` are connected, as asked
    // (README: how one looks at a cluster as two identities).
    let both = ["bob", "alice"].map(String::from);
    let named = KubeBackend::connect_from(kubeconfig, &both, false, &configured)
        .await
        .unwrap();
    assert_eq!(named.info().clusters, ["bob", "alice"]);
    assert!(named.same_cluster().is_empty());

    let mut state = AppState::new(
        AppConfig::default(),
        info.approver.clone(),
        info.kind,
        swept.now(),
    )
    .trust(&info);
    let mut events = swept.watch();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !(state.list(View::Pending).len() == 1
        && state
            .clusters
            .get("bob@eu")
            .is_some_and(|c| c.error.is_some()))
    {
        let first = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("events in time")
            .expect("open");
        update(&mut state, Action::Backend(drain(first, &mut events)));
    }
    // Once, not once per context.
    assert_eq!(state.entries.len(), 1);
    let mut term = Terminal::new(TestBackend::new(160, 30)).unwrap();
    term.draw(|f| view::render(f, &state, &Theme::mono()))
        .unwrap();
    let screen = buffer_text(term.backend().buffer());
    let row = screen
        .lines()
        .find(|l| l.contains('▶'))
        .unwrap_or_else(|| panic!("the request's row: {screen}"));
    assert!(row.contains("staging-eu"), "{row}\n{screen}");
    assert!(
        screen.contains(" on staging-eu ") && screen.contains("in payments on staging-eu for 30m"),
        "the detail names the cluster: {screen}"
    );
    assert!(
        screen.contains("cluster eu-west-1:") || screen.contains("1 cluster(s) failing"),
        "{screen}"
    );

    // The command line: every context of one cluster is one cluster.
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["--all-contexts", "get", "requests", "-o", "name"])
        .env("KUBECONFIG", cp.kubeconfig())
        .env("XDG_STATE_HOME", cp.dir.join("state"))
        .env("XDG_CONFIG_HOME", cp.dir.join("config"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("accessrequest.portcullis.dev/{}\n", asked.name)
    );
}
