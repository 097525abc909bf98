//! `portcullis serve` as a process for the cluster tests: its config, its
//! start, raw HTTP calls with a caller's own bearer token (curl, as an
//! attacker would), and what a decision names of the request it decides
//! on (read first, as a careful caller does).

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use super::cluster::{apply, crb, docs_of, install, ControlPlane};
use super::free_port;

pub(crate) struct Served {
    pub child: Child,
    pub url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn config(cp: &ControlPlane, extra: &str) -> std::path::PathBuf {
    let path = cp.dir.join(format!("server-{}.toml", free_port()));
    std::fs::write(
        &path,
        format!(
            r#"hub = "server"
approvers = ["group:oncall"]
{extra}
[clusters.c1]
context = "c1"
max_duration = "2h"
grantable = ["ClusterRole/edit", "ClusterRole/view"]
[clusters.c2]
context = "c2"
"#
        ),
    )
    .unwrap();
    path
}

pub(crate) fn serve(cp: &ControlPlane, config: &std::path::Path, scheme: &str) -> Served {
    let port = free_port();
    let log = std::fs::File::create(cp.dir.join(format!("serve-{port}.log"))).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["serve", "--config"])
        .arg(config)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("KUBECONFIG", cp.kubeconfig())
        .env("XDG_STATE_HOME", cp.dir.join("state"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start portcullis serve");
    let url = format!("{scheme}://127.0.0.1:{port}");
    let served = Served { child, url };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !curl(&served.url, None, "GET", "/readyz", None).0.eq(&200) {
        assert!(
            std::time::Instant::now() < deadline,
            "the server never got ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    served
}

/// A raw HTTP call with `user`'s own bearer token (or none): (status, body).
pub(crate) fn curl(
    base: &str,
    user: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let token = user.map(token_or);
    let body = body.map(Value::to_string);
    super::http::json(
        method,
        &format!("{base}{path}"),
        token.as_deref(),
        body.as_deref(),
    )
}

pub(crate) fn token_or(user: &str) -> String {
    super::cluster::USERS
        .iter()
        .find(|(u, _, _)| *u == user)
        .map(|(_, t, _)| t.to_string())
        .unwrap_or_else(|| user.to_string())
}

/// What the server itself may do: the shipped server role, bound to the
/// `server` identity, plus `bind` on the roles it hands out.
pub(crate) async fn install_server(
    cp: &ControlPlane,
) -> std::sync::Arc<portcullis::backend::kube::KubeCluster> {
    let admin = install(cp).await;
    for doc in docs_of(&portcullis::crd::manifests::server("unused")) {
        let kind = doc["kind"].as_str().unwrap_or_default();
        let mut doc = doc.clone();
        match kind {
            "ClusterRole" => apply(&admin, doc).await,
            "ClusterRoleBinding" | "RoleBinding" => {
                doc["subjects"] = json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "portcullis:servers"}]);
                apply(&admin, doc).await
            }
            _ => {}
        }
    }
    apply(
        &admin,
        crb(
            "server-grantable",
            "portcullis-grantable",
            "portcullis:servers",
        ),
    )
    .await;
    admin
}

pub(crate) fn ask(cluster: &str, role: &str, ns: &[&str], duration: &str) -> Value {
    json!({"cluster": cluster, "role": {"kind": "ClusterRole", "name": role}, "namespaces": ns,
           "duration": duration, "reason": "INC-12 through the server"})
}

/// `body` with the `uid` and `seen` of the request at `path`, as `user`
/// reads it now: what an approve or deny names.
pub(crate) fn decision(base: &str, user: &str, path: &str, mut body: Value) -> Value {
    let (code, r) = curl(base, Some(user), "GET", path, None);
    assert_eq!(code, 200, "read {path} before deciding: {r}");
    body["uid"] = r["uid"].clone();
    body["seen"] = r["seen"].clone();
    body
}
