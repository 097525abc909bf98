//! The command line as kubectl users type it, in direct mode against a
//! real control plane: `--context` after the verb, `get -w` printing a new
//! request as it is made, two contexts (the CLUSTER column, a bare NAME
//! refused when both have it, `CONTEXT/NAME` acting on the right one),
//! refusals hinted by the role the caller acted in, and the apiserver's
//! escalation refusal summarised in one line (in full under `-v`).

mod common;
use common::cli::{ok, one_line_error};

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::cluster::{apply, ControlPlane};
use serde_json::json;

fn command(cp: &ControlPlane) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    c.env("KUBECONFIG", cp.kubeconfig())
        .env("XDG_STATE_HOME", cp.dir.join("state"))
        .env("XDG_CONFIG_HOME", cp.dir.join("config"))
        .env_remove("PORTCULLIS_LOG");
    c
}

/// `portcullis ARGS` exactly as given (global flags wherever they stand).
fn pc(cp: &ControlPlane, args: &[&str]) -> Output {
    command(cp).args(args).output().expect("run portcullis")
}

/// alice asks, with `--context` after the verb as kubectl users type it.
fn ask(cp: &ControlPlane, role: &str, ns: &str) -> String {
    ok(&pc(
        cp,
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
            "kubectl habits",
            "--context",
            "alice",
        ],
    ))
    .trim()
    .to_string()
}

// The control plane with Portcullis installed, and its admin.
use common::cluster::Installed as Ctx;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_habits_on_a_real_control_plane() {
    let ctx = Ctx::start().await;
    get_w_prints_new_requests(&ctx);
    version_asks_each_cluster(&ctx);
    two_contexts_told_apart(&ctx);
    let hints = refusals_hint_by_role(&ctx);
    let big = escalation_refusal_in_one_line(&ctx, &hints).await;
    nothing_was_granted(&ctx, &big);
}

/// get -w: the table, then the new request's row as it is made.
fn get_w_prints_new_requests(ctx: &Ctx) {
    let cp = &ctx.cp;
    let mut watcher = command(cp)
        .args(["get", "requests", "-w", "--context", "bob"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<(Instant, String)>();
    let stdout = watcher.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    let first = ask(cp, "view", "orders");
    let (_, header) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the watch prints a header");
    assert!(header.starts_with("NAME "), "{header}");
    let (_, row) = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(row.starts_with(&first), "{row}");
    // The watch is established (it printed the listing); a new request
    // appears within a second of the apiserver taking it.
    let mut latencies = Vec::new();
    for ns in ["payments", "orders"] {
        let asked = Instant::now();
        let name = ask(cp, "edit", ns);
        let created = Instant::now();
        let (at, row) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("a row for the new request");
        assert!(
            row.starts_with(&name) && row.contains("Pending"),
            "{row} for {name}"
        );
        // From `request` returning (zero: printed before it even exited);
        // and from `request` starting (a process start and a round trip).
        let latency = at.saturating_duration_since(created);
        latencies.push((latency, at.saturating_duration_since(asked)));
        assert!(
            latency < Duration::from_secs(1),
            "get -w printed {name} {latency:?} after it was made"
        );
    }
    eprintln!("get -w: row printed (after `request` returned, after it started): {latencies:?}");
    // A withdrawn one shows as Deleted.
    ok(&pc(cp, &["withdraw", &first, "--context", "alice"]));
    let (_, row) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(row.starts_with(&first) && row.contains("Deleted"), "{row}");
    let _ = watcher.kill();
    let _ = watcher.wait();
}

/// `version` asks each cluster in view, as kubectl version does.
fn version_asks_each_cluster(ctx: &Ctx) {
    let v: serde_json::Value = serde_json::from_str(&ok(&pc(
        &ctx.cp,
        &[
            "version",
            "-o",
            "json",
            "--context",
            "bob",
            "--context",
            "carol",
        ],
    )))
    .unwrap();
    let servers = v["serverVersions"].as_array().expect("server versions");
    assert_eq!(servers.len(), 2, "{v}");
    assert_eq!(servers[0]["name"], "bob");
    assert!(
        servers[0]["version"].as_str().unwrap().starts_with("v1."),
        "{v}"
    );
    assert_eq!(
        v["clientVersion"]["kubernetesApi"],
        format!("v{}", portcullis::version::KUBERNETES_API)
    );
}

/// Two contexts on one apiserver: the same request twice, told apart.
fn two_contexts_told_apart(ctx: &Ctx) {
    let cp = &ctx.cp;
    let name = ask(cp, "view", "payments");
    let table = ok(&pc(
        cp,
        &["get", "requests", "--context", "bob", "--context", "carol"],
    ));
    let rows: Vec<&str> = table.lines().filter(|l| l.contains(&name)).collect();
    assert!(table.starts_with("CLUSTER "), "{table}");
    assert_eq!(rows.len(), 2, "{table}");
    assert!(
        rows[0].starts_with("bob ") && rows[1].starts_with("carol "),
        "{table}"
    );
    let names = ok(&pc(
        cp,
        &[
            "--context",
            "bob",
            "get",
            "requests",
            name.as_str(),
            "-o",
            "name",
            "--context",
            "carol",
        ],
    ));
    assert_eq!(
        names,
        format!(
            "bob/accessrequest.portcullis.dev/{name}\ncarol/accessrequest.portcullis.dev/{name}\n"
        )
    );
    let err = one_line_error(&pc(
        cp,
        &["approve", &name, "--context", "bob", "--context", "carol"],
    ));
    assert!(
        err.contains(&format!("bob/{name} or carol/{name}")),
        "a bare name in two contexts is refused, naming both: {err}"
    );
    let approved = ok(&pc(
        cp,
        &[
            "approve",
            &format!("carol/{name}"),
            "--for",
            "10m",
            "--context",
            "bob",
            "--context",
            "carol",
        ],
    ));
    assert!(
        approved.starts_with(&format!("approved carol/{name}: ")),
        "{approved}"
    );
    context_name_alone_picks_the_context(cp, &name);
}

/// CONTEXT/NAME alone picks the context (no --context needed).
fn context_name_alone_picks_the_context(cp: &ControlPlane, name: &str) {
    let json: serde_json::Value = serde_json::from_str(&ok(&pc(
        cp,
        &["get", "requests", &format!("bob/{name}"), "-o", "json"],
    )))
    .unwrap();
    assert_eq!(json["status"]["phase"], "Active");
    assert_eq!(json["status"]["decision"]["by"], "carol");
    let phase = ok(&pc(
        cp,
        &[
            "get",
            "grants",
            "-o",
            "jsonpath={.items[*].metadata.name}",
            "--context",
            "bob",
        ],
    ));
    assert!(phase.split(' ').any(|n| n == name), "{phase}");
}

/// The hints the refusals printed: (to an approver who asked, to a
/// requester who approved).
struct Hints {
    asked_by_an_approver: String,
    approved_by_a_requester: String,
}

/// Refusals say what this caller needs, by the role they acted in.
fn refusals_hint_by_role(ctx: &Ctx) -> Hints {
    let cp = &ctx.cp;
    let asked_by_an_approver = one_line_error(&pc(
        cp,
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
            "x",
            "--context",
            "bob",
        ],
    ));
    assert!(
        asked_by_an_approver.contains("portcullis-requester")
            && !asked_by_an_approver.contains("portcullis-approver")
            && !asked_by_an_approver.contains("bind"),
        "{asked_by_an_approver}"
    );
    let pending = ask(cp, "view", "orders");
    let approved_by_a_requester =
        one_line_error(&pc(cp, &["approve", &pending, "--context", "mallory"]));
    assert!(
        approved_by_a_requester.contains("portcullis-approver")
            && !approved_by_a_requester.contains("portcullis-requester"),
        "{approved_by_a_requester}"
    );
    Hints {
        asked_by_an_approver,
        approved_by_a_requester,
    }
}

/// An approver without `bind` on the role: the escalation check's
/// dozens of lines become one, and -v shows them. Returns the request.
async fn escalation_refusal_in_one_line(ctx: &Ctx, hints: &Hints) -> String {
    let cp = &ctx.cp;
    apply(
        &ctx.admin,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": "payments-reader"},
               "rules": [{"apiGroups": [""], "resources": ["pods", "configmaps", "services"], "verbs": ["get", "list", "watch"]},
                         {"apiGroups": ["apps"], "resources": ["deployments", "replicasets"], "verbs": ["get", "list"]}]}),
    )
    .await;
    let big = ask(cp, "payments-reader", "payments");
    let refused = pc(cp, &["approve", &big, "--context", "bob"]);
    let err = one_line_error(&refused);
    assert!(
        err.contains("would grant 13 permissions you do not hold, e.g. get configmaps in payments")
            && err.contains("give approvers `bind` on clusterrole payments-reader"),
        "{err}"
    );
    assert!(!err.contains("APIGroups"), "{err}");
    let verbose = pc(cp, &["approve", &big, "-v", "--context", "bob"]);
    let full = String::from_utf8_lossy(&verbose.stderr);
    assert_eq!(verbose.status.code(), Some(1), "{full}");
    assert!(
        full.lines()
            .next()
            .unwrap()
            .contains("would grant 13 permissions"),
        "{full}"
    );
    assert!(
        full.lines().filter(|l| l.contains("APIGroups")).count() >= 2,
        "-v lists the apiserver's rules: {full}"
    );
    // So does PORTCULLIS_LOG=debug.
    let debug = command(cp)
        .args(["approve", &big, "--context", "bob"])
        .env("PORTCULLIS_LOG", "debug")
        .output()
        .unwrap();
    let debug = String::from_utf8_lossy(&debug.stderr);
    assert!(
        debug.lines().filter(|l| l.contains("APIGroups")).count() >= 2,
        "PORTCULLIS_LOG=debug lists them: {debug}"
    );
    let Hints {
        asked_by_an_approver,
        approved_by_a_requester,
    } = hints;
    eprintln!("requester hint: {asked_by_an_approver}approver hint: {approved_by_a_requester}escalation: {err}with -v:\n{full}");
    big
}

/// Nothing was granted: the request is still pending.
fn nothing_was_granted(ctx: &Ctx, big: &str) {
    let phase = ok(&pc(
        &ctx.cp,
        &[
            "get",
            "requests",
            big,
            "-o",
            "jsonpath={.status.phase}",
            "--context",
            "bob",
        ],
    ));
    assert_eq!(phase, "Pending");
}
