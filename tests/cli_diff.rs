//! Issue 10 item 7: `portcullis diff NAME` against `portcullis serve
//! --demo` (alice, who holds view in payments, asks for edit there): the requester context and every new permission with risk,
//! worst first, as a table, JSON and YAML; an unknown name is one line.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn home() -> PathBuf {
    let h = std::env::temp_dir().join(format!("portcullis-cli-diff-{}", std::process::id()));
    std::fs::create_dir_all(&h).unwrap();
    h
}

fn cli(url: &str, who: &str, args: &[&str]) -> Output {
    let h = home();
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["--backend", url, "--context", "prod-eu-west"])
        .args(args)
        .env("PORTCULLIS_TOKEN", who)
        .env("XDG_STATE_HOME", h.join("state"))
        .env("XDG_CONFIG_HOME", h.join("config"))
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `serve --demo` on a free port, and its URL.
fn serve_demo() -> (Served, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let h = home();
    let _server = Served(
        Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
            .env("XDG_STATE_HOME", h.join("state"))
            .env("XDG_CONFIG_HOME", h.join("config"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve --demo"),
    );
    (_server, url)
}

/// `who` runs `args` until the demo server answers (it is starting).
fn first(url: &str, who: &str, args: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let o = cli(url, who, args);
        if o.status.success() {
            break stdout(&o).trim().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Issue 21, item 4: a grant approved shorter and narrower than asked is
/// shown as granted by `get` and `diff`, with what was asked beside it.
#[test]
fn a_grant_approved_for_less_is_shown_as_granted() {
    let (_server, url) = serve_demo();
    let name = first(
        &url,
        "alice",
        &[
            "request",
            "--role",
            "edit",
            "--cluster-role",
            "-n",
            "payments",
            "-n",
            "orders",
            "--for",
            "2h",
            "--reason",
            "INC-21 narrower",
        ],
    );
    let o = cli(
        &url,
        "dana",
        &["approve", &name, "--for", "30m", "-n", "payments"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = cli(&url, "dana", &["get", "grants", &name]);
    let table = stdout(&o);
    let row = table.lines().nth(1).unwrap_or_default();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[3..5], ["payments", "30m"], "{table}");
    let o = cli(&url, "dana", &["diff", &name, "-o", "json"]);
    let v: Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(v["namespaces"], serde_json::json!(["payments", "orders"]));
    assert_eq!(v["duration"], "2h");
    assert_eq!(
        v["approved"],
        serde_json::json!({"namespaces": ["payments"], "duration": "30m"})
    );
    assert!(
        v["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["scope"] == "payments"),
        "the diff is of what was granted: {v}"
    );
    let table = stdout(&cli(&url, "dana", &["diff", &name]));
    assert!(
        table
            .lines()
            .nth(2)
            .unwrap_or_default()
            .starts_with("approved: in payments for 30m"),
        "{table}"
    );
}

#[test]
fn diff_prints_the_context_and_every_new_permission_worst_first() {
    let (_server, url) = serve_demo();
    let ask = [
        "request",
        "--role",
        "edit",
        "--cluster-role",
        "-n",
        "payments",
        "--for",
        "30m",
        "--reason",
        "INC-8 first day on call",
    ];
    let name = first(&url, "alice", &ask);

    let o = cli(&url, "dana", &["diff", &name, "-o", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(v["name"], name.as_str());
    assert_eq!(v["requester"], "alice");
    assert_eq!(v["role"], "ClusterRole edit");
    assert_eq!(v["namespaces"], serde_json::json!(["payments"]));
    assert_eq!(v["duration"], "30m");
    assert_eq!(v["worst"], "CRIT");
    assert_eq!(v["groupsVerified"], true);
    assert!(v["can"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "read Secrets"));
    let perms = v["permissions"].as_array().unwrap();
    assert!(perms.len() > 30, "every permission, none folded");
    let rank = |s: &str| ["INFO", "MED", "HIGH", "CRIT"].iter().position(|x| *x == s);
    let ranks: Vec<usize> = perms
        .iter()
        .map(|p| rank(p["severity"].as_str().unwrap()).expect("a badge"))
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] >= w[1]), "worst first");
    assert!(perms.iter().any(|p| p["resource"] == "secrets"
        && p["severity"] == "CRIT"
        && p["scope"] == "payments"));
    let total = v["newPermissions"].as_u64().unwrap();
    assert!(total as usize >= perms.len());

    // YAML says the same; the table leads with the context and CRIT rows.
    let o = cli(&url, "dana", &["diff", &name, "-o", "yaml"]);
    let y: Value = serde_yaml_ng::from_str(&stdout(&o)).expect("YAML");
    assert_eq!(y, v);
    let o = cli(&url, "dana", &["diff", &name]);
    let table = stdout(&o);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with(&format!("{name} on prod-eu-west (Pending)")),
        "{table}"
    );
    assert!(
        lines[1].starts_with("alice asks for ClusterRole edit in payments for 30m"),
        "{table}"
    );
    let head = lines
        .iter()
        .position(|l| l.starts_with("RISK  SCOPE"))
        .expect("a header");
    assert!(lines[head + 1].starts_with("CRIT"), "{table}");
    assert_eq!(lines.len() - head - 1, perms.len(), "{table}");

    // An unknown name: one line, exit 1.
    let o = cli(&url, "dana", &["diff", "no-such-request"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
