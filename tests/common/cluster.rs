//! A real control plane for a test binary: etcd, kube-apiserver (RBAC,
//! token auth, service-account keys) and kube-controller-manager
//! (clusterrole-aggregation, garbagecollector, namespace) on free loopback
//! ports, found or built by `scripts/control-plane`. Dropping it stops every
//! process, also when a test panics.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use portcullis::backend::kube::clock::ClusterClock;
use portcullis::backend::kube::KubeCluster;
use portcullis::crd::manifests;
use serde_json::{json, Value};

/// Test identities: (user, token, groups).
pub(crate) const USERS: &[(&str, &str, &str)] = &[
    ("admin", "admin-token", "system:masters"),
    ("alice", "alice-token", "dev"),
    ("bob", "bob-token", "oncall"),
    ("carol", "carol-token", "oncall"),
    ("mallory", "mallory-token", "dev"),
    ("reaper", "reaper-token", "portcullis:reapers"),
    // An approver whose role lacks TokenReview: its identity cannot be verified.
    ("dave", "dave-token", "unverifiable"),
    // The Portcullis server's own identity (hub and targets).
    ("server", "server-token", "portcullis:servers"),
];

pub(crate) fn token(user: &str) -> &'static str {
    USERS
        .iter()
        .find(|(u, _, _)| *u == user)
        .map(|(_, t, _)| *t)
        .expect("a test user")
}

pub(crate) struct ControlPlane {
    pub dir: PathBuf,
    pub port: u16,
    /// kube-apiserver's (major, minor): `scripts/control-plane` builds the
    /// current version, or 1.20 when `PORTCULLIS_K8S_VERSION=1.20.2`.
    pub version: (u32, u32),
    children: Vec<(String, Child)>,
    /// How kube-apiserver was started, to start it again.
    apiserver: Option<(PathBuf, Vec<String>)>,
    etcd_url: String,
}

/// A free loopback port for a server the test starts (etcd, an
/// apiserver), which binds it a moment later. Taken below the kernel's
/// ephemeral range, so no outgoing connection of a test running beside it
/// takes it in that moment, and never handed out twice by one process.
pub(crate) fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    static DRAW: AtomicU64 = AtomicU64::new(0);
    let seed = u64::from(std::process::id())
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
    let mut handed = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..1000 {
        let n = DRAW.fetch_add(1, Ordering::Relaxed);
        let mixed =
            (seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let port = 20_000 + (mixed >> 33) as u16 % 12_000;
        if !handed.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed.push(port);
            return port;
        }
    }
    panic!("no free loopback port in 20000..32000")
}

/// `Kubernetes v1.34.4` → (1, 34).
fn version_of(apiserver: &Path) -> (u32, u32) {
    let out = Command::new(apiserver)
        .arg("--version")
        .output()
        .expect("kube-apiserver --version");
    let text = String::from_utf8_lossy(&out.stdout);
    let v = text.trim().rsplit(' ').next().unwrap_or_default();
    let mut parts = v.trim_start_matches('v').split('.');
    let mut next = || parts.next().and_then(|p| p.parse().ok());
    match (next(), next()) {
        (Some(major), Some(minor)) => (major, minor),
        _ => panic!("kube-apiserver --version said {text:?}"),
    }
}

fn assets() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/control-plane");
    let out = Command::new(&script)
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/control-plane");
    assert!(
        out.status.success(),
        "scripts/control-plane failed: the cluster tests need etcd and kube-apiserver"
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

impl ControlPlane {
    pub(crate) fn start() -> Self {
        // PORTCULLIS_LOG=debug shows what the library logs during a test.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_env("PORTCULLIS_LOG"))
            .with_test_writer()
            .try_init();
        let assets = assets();
        let dir = std::env::temp_dir().join(format!(
            "portcullis-cp-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(dir.join("certs")).expect("temp dir");
        let version = version_of(&assets.join("kube-apiserver"));
        let mut cp = ControlPlane {
            dir: dir.clone(),
            port: free_port(),
            version,
            children: Vec::new(),
            apiserver: None,
            etcd_url: String::new(),
        };
        let run = |cmd: &str, args: &[&str]| {
            let ok = Command::new(cmd)
                .args(args)
                .current_dir(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            assert!(ok.is_ok_and(|s| s.success()), "{cmd} {args:?} failed");
        };
        run("openssl", &["genrsa", "-out", "sa.key", "2048"]);
        run(
            "openssl",
            &["rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub"],
        );
        let tokens: String = USERS
            .iter()
            .enumerate()
            .map(|(i, (user, token, groups))| format!("{token},{user},{},\"{groups}\"\n", i + 1))
            .collect();
        std::fs::write(dir.join("tokens.csv"), tokens).expect("tokens");

        let (client, peer) = (free_port(), free_port());
        let etcd_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        cp.spawn(
            "etcd",
            &assets.join("etcd"),
            &[
                "--data-dir",
                &dir.join("etcd").display().to_string(),
                "--listen-client-urls",
                &etcd_url,
                "--advertise-client-urls",
                &etcd_url,
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
                "--initial-cluster",
                &format!("default={peer_url}"),
                "--log-level",
                "warn",
            ],
        );
        let d = |f: &str| dir.join(f).display().to_string();
        cp.etcd_url = etcd_url.clone();
        let args = Self::apiserver_args(&dir, &etcd_url, cp.port, "certs", version);
        let bin = assets.join("kube-apiserver");
        cp.spawn_owned("kube-apiserver", &bin, &args);
        cp.apiserver = Some((bin, args));
        cp.write_kubeconfig();
        cp.wait_ready();
        let kubeconfig = d("kubeconfig");
        let mut args = vec![
            "--kubeconfig",
            &kubeconfig,
            "--controllers",
            "clusterrole-aggregation,garbagecollector,namespace",
            "--leader-elect=false",
            "--secure-port",
            "0",
        ];
        if version < (1, 24) {
            // Its insecure port (gone in 1.24).
            args.extend(["--port", "0"]);
        }
        cp.spawn(
            "kube-controller-manager",
            &assets.join("kube-controller-manager"),
            &args,
        );
        cp
    }

    fn apiserver_args(
        dir: &Path,
        etcd_url: &str,
        port: u16,
        certs: &str,
        version: (u32, u32),
    ) -> Vec<String> {
        let d = |f: &str| dir.join(f).display().to_string();
        let mut args: Vec<String> = [
            "--etcd-servers",
            etcd_url,
            "--bind-address",
            "127.0.0.1",
            "--advertise-address",
            "127.0.0.1",
            "--secure-port",
            &port.to_string(),
            "--cert-dir",
            &d(certs),
            "--token-auth-file",
            &d("tokens.csv"),
            "--authorization-mode",
            "RBAC",
            "--service-account-key-file",
            &d("sa.pub"),
            "--service-account-signing-key-file",
            &d("sa.key"),
            "--service-account-issuer",
            "https://kubernetes.default.svc",
            "--api-audiences",
            "https://kubernetes.default.svc",
            "--service-cluster-ip-range",
            "10.0.0.0/24",
            "--enable-priority-and-fairness=false",
        ]
        .map(String::from)
        .to_vec();
        if version < (1, 24) {
            // Its plain-HTTP port (gone in 1.24).
            args.extend(["--insecure-port", "0"].map(String::from));
        }
        args
    }

    /// Whether the apiserver serves SelfSubjectReview (1.28+) and
    /// ValidatingAdmissionPolicy (1.30+): the current version's paths.
    pub(crate) fn is_current(&self) -> bool {
        self.version >= (1, 30)
    }

    fn spawn_owned(&mut self, name: &str, bin: &Path, args: &[String]) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.spawn(name, bin, &args);
    }

    /// Stops kube-apiserver (etcd keeps the state).
    pub(crate) fn stop_apiserver(&mut self) {
        if let Some(pos) = self
            .children
            .iter()
            .position(|(n, _)| n == "kube-apiserver")
        {
            let (_, mut child) = self.children.remove(pos);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts kube-apiserver again, as before, and waits until it is ready.
    pub(crate) fn start_apiserver(&mut self) {
        let (bin, args) = self.apiserver.clone().expect("started once");
        self.spawn_owned("kube-apiserver", &bin, &args);
        self.wait_ready();
    }

    /// A second kube-apiserver on the same etcd (an HA pair); returns its URL.
    pub(crate) fn start_second_apiserver(&mut self) -> String {
        let (bin, _) = self.apiserver.clone().expect("started once");
        let port = free_port();
        std::fs::create_dir_all(self.dir.join("certs2")).expect("certs2");
        let args = Self::apiserver_args(&self.dir, &self.etcd_url, port, "certs2", self.version);
        self.spawn_owned("kube-apiserver-2", &bin, &args);
        let url = format!("https://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while super::http::send(
            "GET",
            &format!("{url}/readyz"),
            Some("admin-token"),
            "application/json",
            None,
        )
        .0 != 200
        {
            assert!(Instant::now() < deadline, "second apiserver not ready");
            std::thread::sleep(Duration::from_millis(200));
        }
        url
    }

    /// An HTTP request as `user` would send it by hand (curl with their
    /// bearer token): the attacker's own token, no client of ours.
    /// Returns the status code and the body.
    pub(crate) fn raw(
        &self,
        user: &str,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (u16, String) {
        self.raw_at(&self.url(), user, method, path, body)
    }

    /// As [`Self::raw`], a JSON patch (RFC 6902): what moves list items.
    pub(crate) fn raw_json_patch(&self, user: &str, path: &str, patch: &str) -> (u16, String) {
        super::http::send(
            "PATCH",
            &format!("{}{path}", self.url()),
            Some(token(user)),
            "application/json-patch+json",
            Some(patch),
        )
    }

    pub(crate) fn raw_at(
        &self,
        url: &str,
        user: &str,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (u16, String) {
        let content_type = match method {
            "PATCH" => "application/merge-patch+json",
            _ => "application/json",
        };
        super::http::send(
            method,
            &format!("{url}{path}"),
            Some(token(user)),
            content_type,
            body,
        )
    }

    fn spawn(&mut self, name: &str, bin: &Path, args: &[&str]) {
        let log = std::fs::File::create(self.dir.join(format!("{name}.log"))).expect("log file");
        let child = Command::new(bin)
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        self.children.push((name.to_string(), child));
    }

    pub(crate) fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// etcd's client URL (plain HTTP on loopback; its /metrics too).
    pub(crate) fn etcd_url(&self) -> &str {
        &self.etcd_url
    }

    /// A kubeconfig with one context per test identity; `admin` is current.
    pub(crate) fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    fn write_kubeconfig(&self) {
        let mut users = String::new();
        let mut contexts = String::new();
        for (user, token, _) in USERS {
            users.push_str(&format!("- name: {user}\n  user: {{token: {token}}}\n"));
            contexts.push_str(&format!(
                "- name: {user}\n  context: {{cluster: test, user: {user}}}\n"
            ));
        }
        // Two target "clusters" for the server (the same control plane).
        for target in ["c1", "c2"] {
            contexts.push_str(&format!(
                "- name: {target}\n  context: {{cluster: test, user: server}}\n"
            ));
        }
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster: {{server: \"{}\", insecure-skip-tls-verify: true}}\nusers:\n{users}contexts:\n{contexts}current-context: admin\n",
            self.url()
        );
        std::fs::write(self.kubeconfig(), text).expect("kubeconfig");
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (code, _) = super::http::send(
                "GET",
                &format!("{}/readyz", self.url()),
                Some("admin-token"),
                "application/json",
                None,
            );
            if code == 200 {
                return;
            }
            for (name, child) in &mut self.children {
                if let Ok(Some(status)) = child.try_wait() {
                    let log = std::fs::read_to_string(self.dir.join(format!("{name}.log")))
                        .unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(15).collect();
                    panic!(
                        "{name} exited ({status}):\n{}",
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "kube-apiserver not ready within 60 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A client acting as `user` (a context of the kubeconfig), connected
    /// as the console connects: identity from the apiserver, its clock.
    pub(crate) async fn cluster(&self, user: &str) -> Arc<KubeCluster> {
        self.cluster_with_clock(user, ClusterClock::default()).await
    }

    /// As [`Self::cluster`], with this machine's clock pretending to be off.
    pub(crate) async fn cluster_with_clock(
        &self,
        user: &str,
        clock: ClusterClock,
    ) -> Arc<KubeCluster> {
        let kc = kube::config::Kubeconfig::read_from(self.kubeconfig()).expect("kubeconfig");
        let opts = kube::config::KubeConfigOptions {
            context: Some(user.into()),
            ..Default::default()
        };
        let config = kube::Config::from_custom_kubeconfig(kc, &opts)
            .await
            .expect("config");
        let auth = config.auth_info.clone();
        let client = kube::Client::try_from(config).expect("client");
        Arc::new(KubeCluster::connect_with_clock("test", client, &auth, user, clock).await)
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // Reverse order: controller manager, apiserver, then etcd.
        for (_, child) in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("control plane logs kept in {}", self.dir.display());
        }
    }
}

pub(crate) fn docs_of(yaml: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|d| serde::Deserialize::deserialize(d).expect("manifest"))
        .collect()
}

pub(crate) async fn apply(admin: &KubeCluster, obj: Value) {
    let kind = obj["kind"].as_str().unwrap().to_string();
    let name = obj["metadata"]["name"].as_str().unwrap().to_string();
    let pp = PatchParams::apply("portcullis-test").force();
    let c = admin.client.clone();
    let r = match kind.as_str() {
        "CustomResourceDefinition" => Api::<CustomResourceDefinition>::all(c)
            .patch(&name, &pp, &Patch::Apply(&obj))
            .await
            .map(|_| ()),
        "ClusterRole" => Api::<k8s_openapi::api::rbac::v1::ClusterRole>::all(c)
            .patch(&name, &pp, &Patch::Apply(&obj))
            .await
            .map(|_| ()),
        "ClusterRoleBinding" => Api::<ClusterRoleBinding>::all(c)
            .patch(&name, &pp, &Patch::Apply(&obj))
            .await
            .map(|_| ()),
        "Namespace" => Api::<Namespace>::all(c)
            .patch(&name, &pp, &Patch::Apply(&obj))
            .await
            .map(|_| ()),
        "ConfigMap" => {
            let ns = obj["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string();
            Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(c, &ns)
                .patch(&name, &pp, &Patch::Apply(&obj))
                .await
                .map(|_| ())
        }
        "RoleBinding" => {
            let ns = obj["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string();
            Api::<k8s_openapi::api::rbac::v1::RoleBinding>::namespaced(c, &ns)
                .patch(&name, &pp, &Patch::Apply(&obj))
                .await
                .map(|_| ())
        }
        other => panic!("unexpected kind {other}"),
    };
    r.unwrap_or_else(|e| panic!("apply {kind} {name}: {e}"));
}

pub(crate) fn crb(name: &str, role: &str, group: &str) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
           "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}]})
}

pub(crate) async fn wait_for<F, Fut>(what: &str, secs: u64, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A control plane with Portcullis installed, and its admin (declared
/// first: dropped before the control plane stops).
pub(crate) struct Installed {
    pub(crate) admin: Arc<KubeCluster>,
    pub(crate) cp: ControlPlane,
}

impl Installed {
    pub(crate) async fn start() -> Self {
        let cp = ControlPlane::start();
        let admin = install(&cp).await;
        Installed { admin, cp }
    }
}

/// CRD, Portcullis roles, who may do what, namespaces; and waits until the
/// aggregation controller has filled `edit`.
pub(crate) async fn install(cp: &ControlPlane) -> Arc<KubeCluster> {
    let admin = cp.cluster("admin").await;
    for doc in docs_of(&manifests::all()) {
        apply(&admin, doc).await;
    }
    bind_the_roles(&admin).await;
    unverifiable_approver(&admin).await;
    for ns in ["payments", "orders"] {
        apply(
            &admin,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await;
    }
    established_and_aggregated(&admin).await;
    admin
}

/// Requesters (dev), approvers (oncall, who may bind edit, view and
/// admin) and reapers.
async fn bind_the_roles(admin: &KubeCluster) {
    apply(
        admin,
        crb("portcullis-requesters", "portcullis-requester", "dev"),
    )
    .await;
    apply(
        admin,
        crb("portcullis-approvers", "portcullis-approver", "oncall"),
    )
    .await;
    apply(
        admin,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "portcullis-grantable"},
               "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": ["edit", "view", "admin"]}]}),
    )
    .await;
    apply(
        admin,
        crb("portcullis-grantable", "portcullis-grantable", "oncall"),
    )
    .await;
    apply(
        admin,
        crb(
            "portcullis-reapers",
            "portcullis-reaper",
            "portcullis:reapers",
        ),
    )
    .await;
    // Token mode: the reaper makes per-grant ServiceAccounts in portcullis-system only.
    apply(
        admin,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "portcullis-reaper-tokens", "namespace": "portcullis-system"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "portcullis-reaper-tokens"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "portcullis:reapers"}]}),
    )
    .await;
}

/// dave: an approver's rights except TokenReview, so nothing verifies him.
async fn unverifiable_approver(admin: &KubeCluster) {
    let mut unverifiable = docs_of(&manifests::all())
        .into_iter()
        .find(|d| d["metadata"]["name"] == "portcullis-approver")
        .expect("approver role");
    unverifiable["metadata"]["name"] = json!("approver-without-tokenreview");
    if let Some(rules) = unverifiable["rules"].as_array_mut() {
        rules.retain(|r| r["resources"][0] != "tokenreviews");
    }
    apply(admin, unverifiable).await;
    apply(
        admin,
        crb(
            "approver-without-tokenreview",
            "approver-without-tokenreview",
            "unverifiable",
        ),
    )
    .await;
    apply(
        admin,
        crb(
            "unverifiable-grantable",
            "portcullis-grantable",
            "unverifiable",
        ),
    )
    .await;
}

/// Waits until the CRD is established and aggregation has filled `edit`.
async fn established_and_aggregated(admin: &KubeCluster) {
    let crds: Api<CustomResourceDefinition> = Api::all(admin.client.clone());
    wait_for("the CRD to be established", 30, || async {
        crds.get("accessrequests.portcullis.dev")
            .await
            .ok()
            .and_then(|c| c.status)
            .and_then(|s| s.conditions)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            })
    })
    .await;
    let roles: Api<k8s_openapi::api::rbac::v1::ClusterRole> = Api::all(admin.client.clone());
    wait_for("aggregation to fill `edit`", 60, || async {
        roles
            .get("edit")
            .await
            .ok()
            .and_then(|r| r.rules)
            .is_some_and(|r| !r.is_empty())
    })
    .await;
}

/// Runs a reaper in-process as the `reaper` identity (the shipped
/// portcullis-reaper and portcullis-reaper-tokens roles), with a short grace
/// for half-done approvals and a quick sweep. Aborted when dropped.
pub(crate) struct Reaper(tokio::task::JoinHandle<()>);

impl Drop for Reaper {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(crate) async fn reaper(cp: &ControlPlane) -> Reaper {
    reaper_as(cp, "reaper", None).await
}

pub(crate) async fn reaper_as(
    cp: &ControlPlane,
    user: &str,
    notices: Option<tokio::sync::mpsc::UnboundedSender<portcullis::backend::BackendEvent>>,
) -> Reaper {
    use portcullis::backend::kube::reaper::{run, ReaperConfig};
    let cluster = cp.cluster(user).await;
    let config = ReaperConfig {
        incomplete_grace: Duration::from_secs(2),
        provision_tokens: true,
        sweep_every: Duration::from_secs(1),
        ..Default::default()
    };
    Reaper(tokio::spawn(run(cluster, config, notices)))
}

/// The groups the token file gives `user`, plus system:authenticated, as
/// the apiserver evaluates them.
pub(crate) fn groups_of(user: &str) -> Vec<String> {
    let g = USERS
        .iter()
        .find(|(u, _, _)| *u == user)
        .map(|(_, _, g)| *g)
        .unwrap_or_default();
    vec![g.to_string(), "system:authenticated".to_string()]
}

/// `kubectl auth can-i VERB RESOURCE -n NS --as USER`, asked of the
/// apiserver by the admin.
pub(crate) async fn can_i(
    admin: &KubeCluster,
    user: &str,
    verb: &str,
    group: &str,
    resource: &str,
    ns: Option<&str>,
) -> bool {
    can_i_named(admin, user, verb, group, resource, ns, None).await
}

/// As [`can_i`], for one named object.
pub(crate) async fn can_i_named(
    admin: &KubeCluster,
    user: &str,
    verb: &str,
    group: &str,
    resource: &str,
    ns: Option<&str>,
    name: Option<&str>,
) -> bool {
    use portcullis::backend::kube::verify;
    use portcullis::domain::rbac::{Permission, Scope, Target};
    let scope = match ns {
        Some(ns) => Scope::Namespace(ns.into()),
        None => Scope::Cluster,
    };
    let mut perm = Permission::resource(scope, group, resource, verb);
    if let (Target::Resource { name: n, .. }, Some(name)) = (&mut perm.target, name) {
        *n = Some(name.to_string());
    }
    verify::allowed(
        &admin.client,
        &verify::review_for(user, groups_of(user), &perm),
    )
    .await
    .expect("SubjectAccessReview")
}
