//! The console's state fed by the `kube` backend: several contexts in one
//! view, one of them unreachable (shown on its own, the rest unaffected),
//! requests for namespaces that do not exist listed as invalid, and the
//! header / detail rendered from it.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::buffer_text;
use common::cluster::{install, ControlPlane};
use portcullis::backend::batch::drain;
use portcullis::backend::kube::{KubeBackend, KubeCluster};
use portcullis::backend::{AccessBackend, NewRequest};
use portcullis::console::state::app::{AppConfig, View};
use portcullis::console::state::AppState;
use portcullis::console::update::{update, Action};
use portcullis::console::view::{self, Theme};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

fn ask(role: &str, ns: &str) -> NewRequest {
    NewRequest {
        reason: "INC-9".into(),
        ..common::asking::ask("alice", role, &[ns], 30)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_contexts_one_unreachable() {
    let cp = ControlPlane::start();
    install(&cp).await;
    let alice = KubeBackend::from_clusters(vec![cp.cluster("alice").await]);
    let good = alice.create(ask("edit", "payments")).await.unwrap();
    let nowhere = alice.create(ask("view", "nowhere")).await.unwrap();
    let unknown = alice.create(ask("no-such-role", "payments")).await.unwrap();

    let dead_config = kube::Config::new("https://127.0.0.1:9".parse().unwrap());
    let dead = Arc::new(
        KubeCluster::connect(
            "dead",
            kube::Client::try_from(dead_config).unwrap(),
            &Default::default(),
            "bob",
        )
        .await,
    );
    let bob = KubeBackend::from_clusters(vec![cp.cluster("bob").await, dead]);
    let info = bob.info();
    assert_eq!(info.clusters, ["test", "dead"]);
    let mut state = AppState::new(AppConfig::default(), info.approver, info.kind, bob.now());
    let mut events = bob.watch();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let first = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("events in time")
            .expect("open");
        update(&mut state, Action::Backend(drain(first, &mut events)));
        let ready = state.list(View::Pending).len() == 3
            && state
                .inventories
                .get("test")
                .is_some_and(|i| i.namespaces.is_some())
            && state
                .clusters
                .get("dead")
                .is_some_and(|c| c.error.is_some())
            && state
                .entries
                .values()
                .all(|e| e.summary.error.is_none() || e.invalid.is_some());
        if ready {
            break;
        }
    }
    assert!(
        state.clusters["test"].error.is_none(),
        "one context failing leaves the others alone"
    );
    let dead_error = state.clusters["dead"].error.clone().unwrap();
    assert!(
        dead_error.contains("watching AccessRequests"),
        "{dead_error}"
    );
    let entry = |name: &str| state.entries.values().find(|e| e.req.name == name).unwrap();
    assert!(entry(&good.name).invalid.is_none());
    assert_eq!(
        entry(&good.name).summary.worst,
        Some(portcullis::domain::Severity::Critical)
    );
    assert_eq!(
        entry(&nowhere.name).invalid.as_deref(),
        Some("namespace 'nowhere' does not exist on test")
    );
    assert!(entry(&unknown.name)
        .invalid
        .as_deref()
        .unwrap()
        .contains("ClusterRole 'no-such-role' does not exist"));

    let mut term = Terminal::new(TestBackend::new(160, 40)).unwrap();
    term.draw(|f| view::render(f, &state, &Theme::mono()))
        .unwrap();
    let screen = buffer_text(term.backend().buffer());
    assert!(screen.contains("1 cluster(s) failing"), "{screen}");
    assert!(screen.contains("approver: bob [oncall]"), "{screen}");
    assert!(screen.contains("INVAL"), "{screen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_requests_expire_after_the_approval_timeout() {
    let cp = ControlPlane::start();
    install(&cp).await;
    let alice = KubeBackend::from_clusters(vec![cp.cluster("alice").await]);
    // The limit lives in the cluster, for every console and reaper alike.
    let admin = cp.cluster("admin").await;
    common::cluster::apply(
        &admin,
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "portcullis-settings", "namespace": "portcullis-system"},
            "data": {"approvalTimeout": "3s"}}),
    )
    .await;
    let bob = KubeBackend::from_clusters(vec![cp.cluster("bob").await]);
    let mut events = bob.watch(); // an approver's console reaps
    let stale = alice.create(ask("view", "orders")).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let e = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("expired in time")
            .expect("open");
        if let portcullis::backend::BackendEvent::Upsert(r) = e {
            if r.name == stale.name && r.phase() == portcullis::domain::Phase::Expired {
                assert_eq!(
                    r.status.message.as_deref(),
                    Some("not decided within the approval timeout")
                );
                break;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_without_the_crd_says_how_to_install_it() {
    let cp = ControlPlane::start();
    let bob = KubeBackend::from_clusters(vec![cp.cluster("admin").await]);
    let mut events = bob.watch();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let e = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("a status in time")
            .expect("open");
        if let portcullis::backend::BackendEvent::ClusterStatus {
            error: Some(message),
            ..
        } = e
        {
            assert_eq!(message, "the AccessRequest CRD is not installed: run `portcullis crds | kubectl apply -f -`");
            break;
        }
    }
}

/// Keys through the real reducer, effects through the real executor, on the
/// `kube` backend: every action from the keyboard changes the cluster.
struct KubeConsole {
    backend: KubeBackend,
    state: AppState,
    events: tokio::sync::mpsc::UnboundedReceiver<portcullis::backend::BackendEvent>,
}

impl KubeConsole {
    async fn keys(&mut self, keys: &str) {
        use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
        let mut rest = keys;
        while !rest.is_empty() {
            let (key, len) = if let Some(after) = rest.strip_prefix("<enter>") {
                (
                    KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE),
                    rest.len() - after.len(),
                )
            } else {
                let c = rest.chars().next().unwrap();
                (
                    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE),
                    c.len_utf8(),
                )
            };
            let effects = update(&mut self.state, Action::Key(key));
            for effect in effects {
                if let Some(done) = portcullis::console::run::execute(&self.backend, effect).await {
                    update(&mut self.state, done);
                }
            }
            rest = &rest[len..];
        }
    }

    /// Pumps watch events until `check` holds.
    async fn until(&mut self, what: &str, check: impl Fn(&AppState) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !check(&self.state) {
            let first = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .expect("open");
            update(
                &mut self.state,
                Action::Backend(drain(first, &mut self.events)),
            );
        }
    }

    fn select(&mut self, name: &str) {
        let view = self.state.view;
        let pos = self
            .state
            .list(view)
            .iter()
            .position(|k| k.name == name)
            .expect("listed");
        self.state.cursor[view.index()] = pos;
        update(&mut self.state, Action::Tick(chrono::Utc::now()));
    }

    fn phase(&self, name: &str) -> portcullis::domain::Phase {
        self.state
            .entries
            .values()
            .find(|e| e.req.name == name)
            .map(|e| e.req.phase())
            .expect("known")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_from_the_keyboard_on_a_real_cluster() {
    use portcullis::domain::Phase;
    let cp = ControlPlane::start();
    let admin = install(&cp).await;
    let alice = KubeBackend::from_clusters(vec![cp.cluster("alice").await]);
    let grant = alice.create(ask("edit", "payments")).await.unwrap();
    let other = alice.create(ask("view", "orders")).await.unwrap();
    let backend = KubeBackend::from_clusters(vec![cp.cluster("bob").await]);
    let info = backend.info();
    let state = AppState::new(
        AppConfig::default(),
        info.approver,
        info.kind,
        backend.now(),
    );
    let events = backend.watch();
    let mut c = KubeConsole {
        backend,
        state,
        events,
    };
    c.until("both requests with their diff", |s| {
        s.list(View::Pending).len() == 2 && s.entries.values().all(|e| e.summary.worst.is_some())
    })
    .await;

    c.select(&grant.name);
    c.keys("a").await;
    assert!(
        matches!(c.state.mode, portcullis::console::state::Mode::Confirm(_)),
        "{:?}",
        c.state.flash
    );
    c.keys("y").await;
    assert!(
        c.state.flash.as_ref().unwrap().text.starts_with("Approved"),
        "{:?}",
        c.state.flash
    );
    let rbs: kube::Api<k8s_openapi::api::rbac::v1::RoleBinding> =
        kube::Api::namespaced(admin.client.clone(), "payments");
    assert!(
        rbs.get_opt(&format!("portcullis-{}", grant.name))
            .await
            .unwrap()
            .is_some(),
        "the key made the binding"
    );
    c.until("the grant live", |s| s.list(View::Grants).len() == 1)
        .await;

    c.keys("2").await;
    c.select(&grant.name);
    c.keys("s5m<enter>").await;
    assert!(
        c.state.flash.as_ref().unwrap().text.contains("now ends in"),
        "{:?}",
        c.state.flash
    );
    c.keys("rdone<enter>").await;
    let flash = c.state.flash.clone().unwrap().text;
    assert!(flash.contains("revoked and verified"), "{flash}");
    assert!(rbs
        .get_opt(&format!("portcullis-{}", grant.name))
        .await
        .unwrap()
        .is_none());
    c.until("revoked in the console", |s| {
        s.list(View::Grants).is_empty()
    })
    .await;
    assert_eq!(c.phase(&grant.name), Phase::Revoked);

    c.keys("1").await;
    c.select(&other.name);
    c.keys("duse staging<enter>").await;
    c.until("denied in the console", |s| {
        s.list(View::Pending).is_empty()
    })
    .await;
    assert_eq!(c.phase(&other.name), Phase::Denied);
}

/// A cluster's shared policy (ConfigMap `portcullis-system/portcullis-policy`)
/// is what a direct-mode console evaluates without `--policy`; a requester
/// cannot write it; a broken one is an error, a missing one is none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clusters_policy_comes_from_its_configmap() {
    use portcullis::backend::kube::policy_source::{policy_of, POLICY_CONFIGMAP};
    let cp = ControlPlane::start();
    install(&cp).await;
    let bob = cp.cluster("bob").await;
    assert!(policy_of(&bob).await.unwrap().is_none(), "none yet");
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let data = serde_json::json!({
        "portcullis.rego": std::fs::read_to_string(shipped.join("portcullis.rego")).unwrap(),
        "data.json": std::fs::read_to_string(shipped.join("data.json")).unwrap(),
    });
    let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": POLICY_CONFIGMAP, "namespace": "portcullis-system"}, "data": data})
    .to_string();
    let path = "/api/v1/namespaces/portcullis-system/configmaps";
    // The requester and the approver may not write it: it is the admins'.
    for who in ["alice", "bob"] {
        let (code, text) = cp.raw(who, "POST", path, Some(&cm));
        assert_eq!(code, 403, "{who}: {text}");
    }
    let (code, text) = cp.raw("admin", "POST", path, Some(&cm));
    assert_eq!(code, 201, "{text}");
    let policy = policy_of(&bob).await.unwrap().expect("a policy");
    let input = serde_json::from_str(
        &std::fs::read_to_string(shipped.join("examples/input.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(policy.evaluate(&input).unwrap().approvals_required, 2);
    // A broken one says where.
    let broken = serde_json::json!({"data": {"portcullis.rego": "package portcullis\ndeny contains x if {\n"}});
    let (code, text) = cp.raw(
        "admin",
        "PATCH",
        &format!("{path}/{POLICY_CONFIGMAP}"),
        Some(&broken.to_string()),
    );
    assert_eq!(code, 200, "{text}");
    let e = policy_of(&bob).await.unwrap_err().to_string();
    assert!(
        e.contains("configmap/portcullis-system/portcullis-policy/portcullis.rego"),
        "{e}"
    );
}
