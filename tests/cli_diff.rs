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

#[test]
fn diff_prints_the_context_and_every_new_permission_worst_first() {
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
    let deadline = Instant::now() + Duration::from_secs(30);
    let name = loop {
        let o = cli(&url, "alice", &ask);
        if o.status.success() {
            break stdout(&o).trim().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    };

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
