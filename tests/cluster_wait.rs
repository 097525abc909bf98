//! `request --wait` in direct mode against a real control plane, as
//! processes: alice waits, bob decides with `portcullis approve`; a request
//! nobody decides ends at the cluster's approval timeout (exit 4) even
//! with no reaper running; Token mode prints the grant's kubeconfig.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::cluster::{apply, install, reaper, ControlPlane};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

fn portcullis(cp: &ControlPlane, context: &str, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(["--context", context])
        .args(args)
        .env("KUBECONFIG", cp.kubeconfig())
        .env("XDG_STATE_HOME", cp.dir.join("state"))
        .env("XDG_CONFIG_HOME", cp.dir.join("config"));
    c
}

/// alice asks and waits: (the process, the request's name, stderr so far).
fn ask_and_wait(cp: &ControlPlane, extra: &[&str]) -> (Child, String, String) {
    let mut args = vec![
        "request",
        "--role",
        "view",
        "--cluster-role",
        "-n",
        "payments",
        "--for",
        "10m",
        "--reason",
        "INC-11 waiting",
        "--wait",
    ];
    args.extend_from_slice(extra);
    let mut child = portcullis(cp, "alice", &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stderr.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    let name = first
        .strip_prefix("requested ")
        .and_then(|r| r.split_once(';'))
        .map(|(n, _)| n.to_string())
        .unwrap_or_else(|| panic!("first stderr line {first:?}"));
    (child, name, first)
}

fn finish(mut child: Child, secs: u64) -> Output {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("--wait never ended");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_in_direct_mode_approve_deny_expire_and_token() {
    let cp = ControlPlane::start();
    let admin = install(&cp).await;

    // Approved by bob in another process: exit 0, the outcome on stdout.
    let (child, name, _) = ask_and_wait(&cp, &[]);
    let approved = portcullis(&cp, "bob", &["approve", &name])
        .output()
        .unwrap();
    assert!(approved.status.success(), "{approved:?}");
    let o = finish(child, 30);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.starts_with(&format!(
            "approved {name} by bob: ClusterRole view in payments until "
        )),
        "{out}"
    );

    // Denied: exit 3, bob's reason.
    let (child, name, _) = ask_and_wait(&cp, &[]);
    let denied = portcullis(&cp, "bob", &["deny", &name, "--reason", "use the runbook"])
        .output()
        .unwrap();
    assert!(denied.status.success(), "{denied:?}");
    let o = finish(child, 30);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("denied {name} by bob: use the runbook\n")
    );

    // Withdrawn (deleted in direct mode): exit 4.
    let (child, name, _) = ask_and_wait(&cp, &[]);
    let gone = portcullis(&cp, "alice", &["withdraw", &name])
        .output()
        .unwrap();
    assert!(gone.status.success(), "{gone:?}");
    let o = finish(child, 30);
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("{name} is withdrawn (deleted)\n")
    );

    // Token mode: once approved (and the reaper has made the grant's
    // ServiceAccount), stdout is the kubeconfig alone.
    let reaping = reaper(&cp).await;
    let (child, name, _) = ask_and_wait(&cp, &["--credentials", "token"]);
    let approved = portcullis(&cp, "bob", &["approve", &name])
        .output()
        .unwrap();
    assert!(approved.status.success(), "{approved:?}");
    let o = finish(child, 60);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let kubeconfig: serde_json::Value =
        serde_yaml_ng::from_slice(&o.stdout).expect("stdout is a kubeconfig");
    assert_eq!(kubeconfig["kind"], "Config");
    assert_eq!(kubeconfig["current-context"], format!("portcullis-{name}"));
    assert!(
        err.contains(&format!("approved {name} by bob")),
        "the outcome on stderr: {err}"
    );
    drop(reaping);

    // Nobody decides: the cluster's approval timeout ends the wait (exit 4)
    // even with no reaper to mark it.
    apply(
        &admin,
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "portcullis-settings", "namespace": "portcullis-system"},
            "data": {"approvalTimeout": "3s"}}),
    )
    .await;
    let (child, name, _) = ask_and_wait(&cp, &[]);
    let o = finish(child, 30);
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("{name} expired: not decided within the approval timeout\n")
    );
}
