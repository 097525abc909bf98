//! A new cluster admin's path, against a real control plane: README's
//! install block run verbatim (`portcullis crds --grantable …
//! --reaper-deployment … | kubectl apply -f -`), then a request approved
//! with exactly what it set up; the CRD's schema (`kubectl explain`,
//! refusals that name the field, an object older than the schema); the
//! reaper running as the Deployment's ServiceAccount (a token of it) with
//! exactly that account's rights, serving `/healthz` and `/metrics`; and
//! release: a requester ends their own grant, nobody else can, and the
//! right to release keeps or widens nothing (attacked with the requester's
//! and another requester's own tokens).

mod common;
use common::cli::{ok, portcullis};

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::cluster::{apply, can_i, docs_of, wait_for, ControlPlane};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::Api;
use portcullis::backend::kube::{request_resource, KubeBackend, KubeCluster};
use portcullis::crd::manifests;
use portcullis::domain::Phase;
use serde_json::{json, Value};

const README: &str = include_str!("../README.md");
const REAPER_SA: &str = "system:serviceaccount:portcullis-system:portcullis-reaper";

/// The install block: the first `sh` block of "Direct mode on a cluster".
fn install_block() -> String {
    let section = README
        .split("## Direct mode on a cluster")
        .nth(1)
        .expect("README has a direct-mode section");
    let start = section.find("```sh\n").expect("an sh block") + 6;
    let end = start + section[start..].find("```").expect("closed");
    section[start..end].to_string()
}

/// A directory on PATH where `portcullis` is this build.
fn bin_dir(cp: &ControlPlane) -> PathBuf {
    let dir = cp.dir.join("bin");
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["portcullis", "kubectl-portcullis"] {
        let link = dir.join(name);
        if !link.exists() {
            std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_portcullis"), &link).unwrap();
        }
    }
    dir
}

fn shell(cp: &ControlPlane, script: &str, kubeconfig: &Path) -> Output {
    let path = format!(
        "{}:{}",
        bin_dir(cp).display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("sh")
        .arg("-ec")
        .arg(script)
        .env("PATH", path)
        .env("KUBECONFIG", kubeconfig)
        .env("XDG_STATE_HOME", cp.dir.join("state"))
        .env("XDG_CONFIG_HOME", cp.dir.join("config"))
        .output()
        .expect("sh")
}

fn sh(cp: &ControlPlane, script: &str) -> Output {
    shell(cp, script, &cp.kubeconfig())
}

fn fails(o: &Output, expect: &str) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "expected a failure naming {expect}");
    assert!(err.contains(expect), "{expect} in {err}");
    err
}

/// The admin's view of one request.
async fn stored(admin: &KubeCluster, name: &str) -> Option<Value> {
    Api::<kube::api::DynamicObject>::all_with(admin.client.clone(), &request_resource())
        .get_opt(name)
        .await
        .unwrap()
        .map(|o| serde_json::to_value(o).unwrap())
}

/// Whether the reaper's ServiceAccount may do this (SubjectAccessReview
/// with the groups the apiserver gives a ServiceAccount).
async fn reaper_may(
    admin: &KubeCluster,
    verb: &str,
    group: &str,
    resource: &str,
    ns: Option<&str>,
) -> bool {
    use portcullis::backend::kube::verify;
    use portcullis::domain::rbac::{Permission, Scope};
    let scope = match ns {
        Some(ns) => Scope::Namespace(ns.into()),
        None => Scope::Cluster,
    };
    let groups = vec![
        "system:serviceaccounts".to_string(),
        "system:serviceaccounts:portcullis-system".to_string(),
        "system:authenticated".to_string(),
    ];
    verify::allowed(
        &admin.client,
        &verify::review_for(
            REAPER_SA,
            groups,
            &Permission::resource(scope, group, resource, verb),
        ),
    )
    .await
    .unwrap()
}

/// `portcullis reaper` as a child process with the given kubeconfig; its
/// `/healthz` and `/metrics` address.
struct ReaperProcess {
    child: Child,
    addr: String,
}

impl Drop for ReaperProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_reaper(cp: &ControlPlane, kubeconfig: &Path) -> ReaperProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["reaper", "--listen", "127.0.0.1:0"])
        .env("KUBECONFIG", kubeconfig)
        .env("XDG_STATE_HOME", cp.dir.join("state"))
        .env("XDG_CONFIG_HOME", cp.dir.join("config"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the reaper");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("/metrics on http://").nth(1) {
                let _ = tx.send(Ok(rest.split(';').next().unwrap_or_default().to_string()));
            } else if line.starts_with("portcullis:") {
                let _ = tx.send(Err(line));
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the reaper says where it listens")
        .unwrap_or_else(|e| panic!("the reaper did not start: {e}"));
    ReaperProcess { child, addr }
}

fn http_get(url: &str) -> (u16, String) {
    common::http::get(url, Duration::from_secs(5))
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} in\n{text}"))
}

fn request(cp: &ControlPlane, who: &str, role: &str, ns: &str) -> String {
    ok(&portcullis(
        cp,
        who,
        &[
            "request",
            "--role",
            role,
            "--cluster-role",
            "-n",
            ns,
            "--for",
            "30m",
            "--reason",
            "INC-9 payments stuck",
        ],
    ))
    .trim()
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_install_makes_a_working_approver_reaper_and_release() {
    let cp = ControlPlane::start();
    let admin = cp.cluster("admin").await;
    ok(&sh(
        &cp,
        "kubectl create namespace payments && kubectl create namespace orders",
    ));
    readme_block_as_the_cluster_admin(&cp, &admin).await;
    kubectl_explain_describes_every_field(&cp);
    let name = approved_with_what_the_block_set_up(&cp, &admin).await;
    let reaper = reaper_as_the_deployments_account(&cp);
    exactly_that_accounts_rights(&admin).await;
    let (rb_path, role_path) = the_reaper_gives_a_release_binding(&admin, &name).await;
    nobody_else_releases(&cp, &name, &rb_path);
    releasing_keeps_and_widens_nothing(&cp, &admin, &name, &rb_path, &role_path).await;
    alice_releases_her_grant(&cp, &admin, &reaper, &name, &role_path).await;
    expiry_by_the_in_cluster_reaper(&cp, &admin, &reaper).await;
    drop(reaper);
}

/// Step 1: README's block, verbatim, as the cluster admin.
async fn readme_block_as_the_cluster_admin(cp: &ControlPlane, admin: &KubeCluster) {
    let block = install_block();
    assert!(block.contains("--grantable view,edit"), "{block}");
    let out = sh(cp, &block);
    ok(&out);
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

/// `kubectl explain` describes every field (once the schema is published).
fn kubectl_explain_describes_every_field(cp: &ControlPlane) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let explained = loop {
        let out = sh(cp, "kubectl explain accessrequest.spec");
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(Instant::now() < deadline, "kubectl explain never worked");
        std::thread::sleep(Duration::from_millis(500));
    };
    for field in [
        "requester",
        "role",
        "namespaces",
        "duration",
        "reason",
        "ticket",
        "credentials",
        "extends",
    ] {
        assert!(explained.contains(field), "{field} in {explained}");
    }
    assert!(
        explained.contains("reason\t<string> -required-"),
        "{explained}"
    );
}

/// Step 2: a request is approved with exactly what the block set up (and
/// nothing else). Returns its name.
async fn approved_with_what_the_block_set_up(cp: &ControlPlane, admin: &KubeCluster) -> String {
    let name = request(cp, "alice", "edit", "payments");
    let approved = ok(&portcullis(cp, "bob", &["approve", &name]));
    assert!(
        approved.starts_with(&format!("approved {name}")),
        "{approved}"
    );
    assert!(can_i(admin, "alice", "list", "", "pods", Some("payments")).await);
    let table = ok(&sh(cp, "kubectl get accessrequests"));
    let header = table.lines().next().unwrap_or_default();
    for column in ["REQUESTER", "ROLE", "PHASE", "APPROVER", "AGE"] {
        assert!(header.contains(column), "{column} in {table}");
    }
    assert!(table.contains("bob"), "the approver column: {table}");
    // The same through kubectl, as a plugin (README's line, verbatim).
    let line = "kubectl portcullis get requests --all";
    assert!(README.contains(&format!("`{line}`")), "README shows {line}");
    let as_bob = cp.dir.join("bob.kubeconfig");
    std::fs::write(
        &as_bob,
        std::fs::read_to_string(cp.kubeconfig())
            .unwrap()
            .replace("current-context: admin", "current-context: bob"),
    )
    .unwrap();
    let listed = ok(&shell(cp, line, &as_bob));
    assert!(listed.contains(&name), "{listed}");
    let usage = sh(cp, "kubectl portcullis approve");
    assert!(
        String::from_utf8_lossy(&usage.stderr).contains("Usage: kubectl portcullis approve"),
        "{usage:?}"
    );
    // ... and nothing else: admin is not grantable, refused when asked
    // (issue 21, item 11) ...
    fails(
        &portcullis(
            cp,
            "alice",
            &[
                "request",
                "--role",
                "admin",
                "--cluster-role",
                "-n",
                "orders",
                "--for",
                "30m",
                "--reason",
                "INC-9 payments stuck",
            ],
        ),
        "ClusterRole admin is not a grantable role",
    );
    // ... and, asked by hand past the CLI, refused at approval.
    let (code, made) = cp.raw(
        "alice",
        "POST",
        "/apis/portcullis.dev/v1alpha1/accessrequests",
        Some(
            &serde_json::json!({"apiVersion": "portcullis.dev/v1alpha1", "kind": "AccessRequest",
                "metadata": {"generateName": "alice-admin-"},
                "spec": {"requester": {"user": "alice", "groups": ["dev"]},
                         "role": {"kind": "ClusterRole", "name": "admin"},
                         "namespaces": ["orders"], "duration": "30m", "reason": "INC-9 by hand"}})
            .to_string(),
        ),
    );
    assert_eq!(code, 201, "{made}");
    let wider = serde_json::from_str::<Value>(&made).unwrap()["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    fails(
        &portcullis(cp, "bob", &["approve", &wider]),
        "ClusterRole admin is not a grantable role",
    );
    assert!(!can_i(admin, "alice", "list", "", "pods", Some("orders")).await);
    name
}

/// Step 3: The reaper as the Deployment's ServiceAccount: a token of it.
fn reaper_as_the_deployments_account(cp: &ControlPlane) -> ReaperProcess {
    let token = ok(&sh(
        cp,
        "kubectl -n portcullis-system create token portcullis-reaper --duration 1h",
    ));
    let kubeconfig = cp.dir.join("reaper.kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: \"{}\", insecure-skip-tls-verify: true}}}}]\nusers: [{{name: r, user: {{token: \"{}\"}}}}]\ncontexts: [{{name: in-cluster-reaper, context: {{cluster: c, user: r}}}}]\ncurrent-context: in-cluster-reaper\n",
            cp.url(),
            token.trim()
        ),
    )
    .unwrap();
    let reaper = start_reaper(cp, &kubeconfig);
    let (code, body) = http_get(&format!("http://{}/healthz", reaper.addr));
    assert_eq!((code, body.trim()), (200, "ok"));
    assert!(
        reaper.addr.starts_with("127.0.0.1:"),
        "loopback by default: {}",
        reaper.addr
    );
    reaper
}

/// Exactly that account's rights.
async fn exactly_that_accounts_rights(admin: &KubeCluster) {
    let rbac = "rbac.authorization.k8s.io";
    for (verb, group, resource, ns, allowed) in [
        (
            "patch",
            "portcullis.dev",
            "accessrequests/status",
            None,
            true,
        ),
        ("watch", "portcullis.dev", "accessrequests", None, true),
        ("delete", rbac, "rolebindings", Some("payments"), true),
        ("delete", rbac, "clusterrolebindings", None, true),
        (
            "create",
            "",
            "serviceaccounts/token",
            Some("portcullis-system"),
            true,
        ),
        (
            "create",
            "",
            "serviceaccounts/token",
            Some("payments"),
            false,
        ),
        ("create", "portcullis.dev", "accessrequests", None, false),
        ("delete", "portcullis.dev", "accessrequests", None, false),
        ("create", rbac, "rolebindings", Some("payments"), false),
        ("create", rbac, "clusterrolebindings", None, false),
        ("get", "", "secrets", Some("payments"), false),
        ("get", "", "secrets", Some("portcullis-system"), false),
        ("bind", rbac, "clusterroles", None, false),
        ("escalate", rbac, "clusterroles", None, false),
        ("impersonate", "", "users", None, false),
    ] {
        assert_eq!(
            reaper_may(admin, verb, group, resource, ns).await,
            allowed,
            "the reaper's account: {verb} {resource} in {ns:?}"
        );
    }
    let deployment = docs_of(&manifests::reaper_deployment("x"))
        .into_iter()
        .find(|d| d["kind"] == "Deployment")
        .unwrap();
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["args"],
        json!(["reaper", "--listen", "0.0.0.0:9464"]),
        "as README says"
    );
}

/// Step 4, release: the reaper gives the live grant its release binding.
/// Returns the paths of that binding and of its Role.
async fn the_reaper_gives_a_release_binding(admin: &KubeCluster, name: &str) -> (String, String) {
    let release = format!("portcullis-release-{name}");
    wait_for("the grant's release binding", 30, || async {
        stored(admin, name).await.is_some_and(|o| {
            o["status"]["bindings"].as_array().is_some_and(|b| {
                b.iter()
                    .any(|b| b["name"] == release && b["uid"].is_string())
            })
        })
    })
    .await;
    let rb_path = format!(
        "/apis/rbac.authorization.k8s.io/v1/namespaces/portcullis-system/rolebindings/{release}"
    );
    let role_path =
        format!("/apis/rbac.authorization.k8s.io/v1/namespaces/portcullis-system/roles/{release}");
    (rb_path, role_path)
}

/// Another requester, with her own token: no release of alice's grant,
/// by the binding or by the verb.
fn nobody_else_releases(cp: &ControlPlane, name: &str, rb_path: &str) {
    let (code, text) = cp.raw("mallory", "DELETE", rb_path, None);
    assert_eq!(code, 403, "mallory deletes alice's release binding: {text}");
    let (code, _) = cp.raw(
        "mallory",
        "PATCH",
        rb_path,
        Some(r#"{"subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"User","name":"mallory"}]}"#),
    );
    assert_eq!(code, 403, "mallory takes over alice's release binding");
    fails(
        &portcullis(cp, "mallory", &["release", name]),
        "only its requester (alice)",
    );
}

/// Alice, with her own token: the right to release keeps and widens
/// nothing — no edit of the binding or its Role, no binding of her own
/// in portcullis-system, no write on her request.
async fn releasing_keeps_and_widens_nothing(
    cp: &ControlPlane,
    admin: &KubeCluster,
    name: &str,
    rb_path: &str,
    role_path: &str,
) {
    let (code, _) = cp.raw(
        "alice",
        "PATCH",
        rb_path,
        Some(r#"{"subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"User","name":"mallory"}]}"#),
    );
    assert_eq!(code, 403, "alice edits her release binding");
    let (code, _) = cp.raw(
        "alice",
        "PATCH",
        role_path,
        Some(r#"{"rules":[{"apiGroups":["*"],"resources":["*"],"verbs":["*"]}]}"#),
    );
    assert_eq!(code, 403, "alice widens her release Role");
    let (code, _) = cp.raw(
        "alice",
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/portcullis-system/rolebindings",
        Some(&json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                     "metadata": {"name": "alice-keeps"},
                     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
                     "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]}).to_string()),
    );
    assert_eq!(code, 403, "alice binds herself in portcullis-system");
    let (code, _) = cp.raw(
        "alice",
        "PATCH",
        &format!("/apis/portcullis.dev/v1alpha1/accessrequests/{name}/status"),
        Some(r#"{"status":{"expiresAt":"2099-01-01T00:00:00Z"}}"#),
    );
    assert_eq!(code, 403, "alice extends her grant");
    assert_eq!(
        stored(admin, name).await.unwrap()["status"]["phase"],
        "Active",
        "nothing above ended or changed it"
    );
    assert!(can_i(admin, "alice", "list", "", "pods", Some("payments")).await);
}

/// Alice releases it: ended in her name, bindings gone, verified.
async fn alice_releases_her_grant(
    cp: &ControlPlane,
    admin: &KubeCluster,
    reaper: &ReaperProcess,
    name: &str,
    role_path: &str,
) {
    let out = ok(&portcullis(cp, "alice", &["release", name]));
    assert!(
        out.starts_with(&format!(
            "released {name}: access ended (released and verified"
        )),
        "{out}"
    );
    let ended = stored(admin, name).await.unwrap();
    assert_eq!(
        ended["status"]["phase"], "Released",
        "recorded as released, not revoked"
    );
    assert_eq!(ended["status"]["revokedBy"], "alice");
    assert_eq!(ended["status"]["revokeReason"], "released by the requester");
    assert!(!can_i(admin, "alice", "list", "", "pods", Some("payments")).await);
    wait_for("the release Role to be gone", 30, || async {
        cp.raw("admin", "GET", role_path, None).0 == 404
    })
    .await;
    fails(&portcullis(cp, "alice", &["release", name]), "Released");
    let (_, metrics) = http_get(&format!("http://{}/metrics", reaper.addr));
    assert_eq!(
        metric(
            &metrics,
            "portcullis_reaper_grants_ended_total{how=\"released\"}"
        ),
        1.0
    );
}

/// Step 5: Expiry by the in-cluster reaper, with its lag measured.
async fn expiry_by_the_in_cluster_reaper(
    cp: &ControlPlane,
    admin: &KubeCluster,
    reaper: &ReaperProcess,
) {
    let short = request(cp, "mallory", "view", "orders");
    ok(&portcullis(cp, "bob", &["approve", &short, "--for", "3s"]));
    wait_for("the short grant to expire", 30, || async {
        stored(admin, &short)
            .await
            .is_some_and(|o| o["status"]["phase"] == "Expired")
    })
    .await;
    let (_, metrics) = http_get(&format!("http://{}/metrics", reaper.addr));
    assert_eq!(
        metric(
            &metrics,
            "portcullis_reaper_grants_ended_total{how=\"expired\"}"
        ),
        1.0
    );
    assert!(metric(&metrics, "portcullis_reaper_lag_seconds_count") >= 1.0);
    assert!(metric(&metrics, "portcullis_reaper_lag_seconds_sum") < 5.0);
}

/// What `kubectl apply` says about a request that can never be valid: the
/// apiserver refuses it, naming the field (client-side validation off, so
/// it is the apiserver that answers), and a requester learns at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_refuses_what_can_never_be_valid_naming_the_field() {
    let cp = ControlPlane::start();
    let admin = common::cluster::install(&cp).await;
    let base = json!({
        "apiVersion": "portcullis.dev/v1alpha1", "kind": "AccessRequest",
        "metadata": {"name": "x"},
        "spec": {"requester": {"user": "alice"}, "role": {"kind": "ClusterRole", "name": "edit"},
                 "namespaces": ["payments"], "duration": "30m", "reason": "INC-1"}
    });
    each_never_valid_one_is_refused(&cp, never_valid(&base));
    the_valid_one_goes_in(&cp, &base);
    let old = store_an_object_older_than_the_schema(&cp, &admin).await;
    let bob = KubeBackend::from_clusters(vec![cp.cluster("bob").await]).reaping(false);
    until_the_schema_is_back(&cp, &old);
    the_old_object_is_listed_as_invalid(&cp, &admin, &bob).await;
    readmes_way_out(&cp, &admin).await;
}

/// `base` made invalid in each way the schema refuses, with the field its
/// refusal names.
fn never_valid(base: &Value) -> Vec<(&'static str, Value)> {
    let mut cases: Vec<(&str, Value)> = Vec::new();
    let mut no_reason = base.clone();
    no_reason["spec"].as_object_mut().unwrap().remove("reason");
    cases.push(("spec.reason", no_reason));
    let mut blank = base.clone();
    blank["spec"]["reason"] = json!("   ");
    cases.push(("spec.reason", blank));
    let mut forever = base.clone();
    forever["spec"]["duration"] = json!("forever");
    cases.push(("spec.duration", forever));
    let mut group = base.clone();
    group["spec"]["role"]["kind"] = json!("Group");
    cases.push(("spec.role.kind", group));
    let mut long = base.clone();
    long["spec"]["reason"] = json!("x".repeat(1025));
    cases.push(("spec.reason", long));
    let mut ticket = base.clone();
    ticket["spec"]["ticket"] = json!("T".repeat(129));
    cases.push(("spec.ticket", ticket));
    let mut many = base.clone();
    many["spec"]["namespaces"] = json!((0..33).map(|i| format!("ns{i}")).collect::<Vec<_>>());
    cases.push(("spec.namespaces", many));
    let mut creds = base.clone();
    creds["spec"]["credentials"] = json!("Password");
    cases.push(("spec.credentials", creds));
    cases
}

/// Each is refused by the apiserver, naming the field.
fn each_never_valid_one_is_refused(cp: &ControlPlane, cases: Vec<(&str, Value)>) {
    for (i, (field, mut doc)) in cases.into_iter().enumerate() {
        doc["metadata"]["name"] = json!(format!("bad-{i}"));
        let file = cp.dir.join(format!("bad-{i}.json"));
        std::fs::write(&file, doc.to_string()).unwrap();
        let out = sh(
            cp,
            &format!(
                "kubectl --context alice apply --validate=false -f {}",
                file.display()
            ),
        );
        let err = fails(&out, field);
        assert!(err.contains("is invalid"), "{err}");
    }
}

/// The valid one goes in.
fn the_valid_one_goes_in(cp: &ControlPlane, base: &Value) {
    let file = cp.dir.join("good.json");
    std::fs::write(&file, base.to_string()).unwrap();
    ok(&sh(
        cp,
        &format!("kubectl --context alice apply -f {}", file.display()),
    ));
}

/// An object stored before the schema existed (under a schemaless CRD,
/// then the schema put back). Returns the object.
async fn store_an_object_older_than_the_schema(cp: &ControlPlane, admin: &KubeCluster) -> Value {
    let mut crd = docs_of(&manifests::crd()).remove(0);
    crd["spec"]["versions"][0]["schema"] = json!({"openAPIV3Schema": {"type": "object",
        "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                       "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}});
    apply(admin, crd).await;
    let old = json!({"apiVersion": "portcullis.dev/v1alpha1", "kind": "AccessRequest",
        "metadata": {"name": "before-the-schema"},
        "spec": {"requester": {"user": 42}, "role": {"kind": "Group", "name": "edit"},
                 "namespaces": "payments", "duration": "forever"}});
    let file = cp.dir.join("old.json");
    std::fs::write(&file, old.to_string()).unwrap();
    // The schemaless CRD takes a moment to be in force.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sh(
        cp,
        &format!("kubectl create --validate=false -f {}", file.display()),
    )
    .status
    .success()
    {
        assert!(Instant::now() < deadline, "the old object was never stored");
        std::thread::sleep(Duration::from_millis(300));
    }
    apply(admin, docs_of(&manifests::crd()).remove(0)).await;
    old
}

/// Waits until the schema is in force again.
fn until_the_schema_is_back(cp: &ControlPlane, old: &Value) {
    let mut probe = old.clone();
    probe["metadata"]["name"] = json!("schema-probe");
    let probe_file = cp.dir.join("probe.json");
    std::fs::write(&probe_file, probe.to_string()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // Re-applying the schema takes a moment too: then a new invalid
        // object is refused. (Not a write to the old one: from 1.30 the
        // apiserver ratchets, letting an update through that leaves the
        // invalid fields as they were.)
        let probe = sh(
            cp,
            &format!(
                "kubectl create --dry-run=server --validate=false -f {}",
                probe_file.display()
            ),
        );
        if !probe.status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "the schema never came back");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The old object is listed (as invalid), never a crash; deny says why it
/// cannot (or, with validation ratcheting, is recorded).
async fn the_old_object_is_listed_as_invalid(
    cp: &ControlPlane,
    admin: &KubeCluster,
    bob: &KubeBackend,
) {
    let listed = bob.list().await.unwrap();
    let old = listed
        .iter()
        .find(|r| r.name == "before-the-schema")
        .expect("listed");
    assert_eq!(old.phase(), Phase::Pending);
    let why = old.malformed.clone().expect("invalid");
    assert!(why.contains("spec.requester.user"), "{why}");
    let denied = portcullis(
        cp,
        "bob",
        &["deny", "before-the-schema", "--reason", "malformed"],
    );
    if cp.version >= (1, 30) {
        // Validation ratcheting: a status write that leaves the invalid
        // spec as it was is let through, so the denial is recorded.
        ok(&denied);
        let stored = stored(admin, "before-the-schema").await.unwrap();
        assert_eq!(stored["status"]["phase"], "Denied", "{stored}");
    } else {
        fails(&denied, "predates it");
    }
}

/// README's way out, verbatim (NAME is the object's name): an admin
/// deletes it.
async fn readmes_way_out(cp: &ControlPlane, admin: &KubeCluster) {
    let way_out = "kubectl delete accessrequest NAME";
    assert!(README.contains(&format!("`{way_out}`")));
    ok(&sh(cp, &way_out.replace("NAME", "before-the-schema")));
    assert!(stored(admin, "before-the-schema").await.is_none());
}

/// README "Installing the server in a cluster", run as written in a
/// folder of its own (the `server.toml` block beside it): the install
/// applies to a real apiserver, and the Deployment finds everything it
/// mounts — the Secret's config is one `serve` accepts, and names only
/// files the Secret holds. (No container runtime here: the pod itself is
/// not started.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_server_install_leaves_nothing_to_make_by_hand() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cp = ControlPlane::start();
    let section = README
        .split("### Installing the server in a cluster")
        .nth(1)
        .expect("README says how to install the server");
    let block = |fence: &str| {
        let start = section.find(fence).expect("a block") + fence.len();
        let end = start + section[start..].find("```").expect("closed");
        section[start..end].to_string()
    };
    let dir = cp.dir.join("server-install");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("server.toml"), block("```toml\n")).unwrap();
    // The CRD and namespace first (README's direct-mode install has them).
    let admin = cp.cluster("admin").await;
    for doc in docs_of(&manifests::all()) {
        apply(&admin, doc).await;
    }
    let script = format!("cd {}\n{}", dir.display(), block("```sh\n"));
    let out = sh(&cp, &script);
    ok(&out);
    let yaml = std::fs::read_to_string(dir.join("install.yaml")).unwrap();
    let docs = docs_of(&yaml);
    let of = |kind: &str, name: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{kind} {name} in the install"))
    };
    let deployment = of("Deployment", "portcullis-server");
    let secret = of("Secret", "portcullis-server");
    of("ConfigMap", "portcullis-server-policies");
    // Applied: they are in the cluster as written.
    let (code, body) = cp.raw(
        "admin",
        "GET",
        "/api/v1/namespaces/portcullis-system/secrets/portcullis-server",
        None,
    );
    assert_eq!(code, 200, "{body}");
    let (code, _) = cp.raw(
        "admin",
        "GET",
        "/apis/apps/v1/namespaces/portcullis-system/deployments/portcullis-server",
        None,
    );
    assert_eq!(code, 200);
    // What the Deployment mounts exists.
    let volumes = deployment["spec"]["template"]["spec"]["volumes"].to_string();
    assert!(
        volumes.contains("portcullis-server") && volumes.contains("portcullis-server-policies")
    );
    use base64::Engine;
    let file = |key: &str| -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(
                secret["data"][key]
                    .as_str()
                    .unwrap_or_else(|| panic!("{key} in the Secret")),
            )
            .unwrap()
    };
    let config = String::from_utf8(file("server.toml")).unwrap();
    let parsed = portcullis::server::config::ServerConfig::parse(&config, "the pod's server.toml")
        .expect("the pod's config is one serve accepts");
    // Every file it names is mounted from the Secret (or the state volume).
    let (cert, key) = parsed.tls.expect("TLS in the pod");
    for p in [cert, key, parsed.audit.key.clone().unwrap()] {
        let name = p
            .strip_prefix("/etc/portcullis")
            .expect("mounted path")
            .display()
            .to_string();
        assert!(!file(&name).is_empty(), "{name} in the Secret");
    }
    assert!(String::from_utf8(file("tls.crt"))
        .unwrap()
        .contains("BEGIN CERTIFICATE"));
    assert!(parsed.audit.log.unwrap().starts_with("/var/lib/portcullis"));
    assert_eq!(parsed.listen.to_string(), "0.0.0.0:7443");
}
