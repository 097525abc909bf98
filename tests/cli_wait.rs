//! `request --wait` as a requester's script meets it: `portcullis serve
//! --demo` as a process, the requester's `portcullis request ... --wait` as
//! another, and the approver deciding with raw HTTP (curl) as dana. Each
//! outcome has its exit code and its one stdout line; README's commands
//! run as written.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

mod common;
use common::free_port;

fn dir(name: &str) -> PathBuf {
    common::scratch_dir(&format!("wait-{name}"))
}

struct Served {
    child: Child,
    url: String,
    state: PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.state);
        }
    }
}

fn serve(name: &str) -> Served {
    let d = dir(name);
    let port = free_port();
    let child = Command::new(BIN)
        .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
        .env("XDG_STATE_HOME", d.join("state"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let served = Served {
        child,
        url: format!("http://127.0.0.1:{port}"),
        state: d,
    };
    for _ in 0..300 {
        if curl(&served.url, "dana", "GET", "/readyz", None).0 == 200 {
            return served;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the server never got ready");
}

/// A raw HTTP call as `who` (a demo person's name is their token).
fn curl(base: &str, who: &str, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    common::http::json(method, &format!("{base}{path}"), Some(who), body)
}

/// `portcullis ARGS...` (or a README line run by `sh`) as alice, waiting.
struct Waiting {
    child: Child,
    /// The request's name, from the first stderr line.
    name: String,
    stderr: BufReader<std::process::ChildStderr>,
    first: String,
}

fn start(s: &Served, line: &str) -> Waiting {
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("exec {line}"))
        .env("PATH", &path)
        .env("PORTCULLIS_BACKEND", &s.url)
        .env("PORTCULLIS_TOKEN", "alice")
        .env("XDG_STATE_HOME", s.state.join("alice"))
        .env("XDG_CONFIG_HOME", s.state.join("none"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    let name = first
        .strip_prefix("requested ")
        .and_then(|r| r.split_once(';'))
        .map(|(n, _)| n.to_string())
        .unwrap_or_else(|| panic!("{line}: first stderr line {first:?}"));
    Waiting {
        child,
        name,
        stderr,
        first,
    }
}

/// Waits for the process to end (it must, within 30 s): (code, stdout, stderr).
fn finish(mut w: Waiting) -> (i32, String, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while w.child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = w.child.kill();
            panic!("{} never stopped waiting", w.name);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut w.stderr, &mut rest).unwrap();
    let o: Output = w.child.wait_with_output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        format!("{}{rest}", w.first),
    )
}

fn decide(s: &Served, name: &str, verb: &str, body: &str) {
    // The waiting process is subscribed before it prints the name; give
    // the request a moment to be still pending when decided, as in life.
    std::thread::sleep(Duration::from_millis(300));
    // A decision names what was read: the request's uid and seen.
    let (_, read) = curl(
        &s.url,
        "dana",
        "GET",
        &format!("/v1/requests/dev-sandbox/{name}"),
        None,
    );
    let mut body: Value = serde_json::from_str(body).unwrap();
    body["uid"] = read["uid"].clone();
    body["seen"] = read["seen"].clone();
    let (code, reply) = curl(
        &s.url,
        "dana",
        "POST",
        &format!("/v1/requests/dev-sandbox/{name}/{verb}"),
        Some(&body.to_string()),
    );
    assert_eq!(code, 200, "{verb} {name}: {reply}");
}

fn phase(s: &Served, name: &str) -> String {
    let o = Command::new(BIN)
        .args([
            "get",
            "requests",
            &format!("dev-sandbox/{name}"),
            "-o",
            "jsonpath={.status.phase}",
        ])
        .env("PORTCULLIS_BACKEND", &s.url)
        .env("PORTCULLIS_TOKEN", "dana")
        .env("XDG_CONFIG_HOME", s.state.join("none"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn readme_lines() -> Vec<String> {
    let readme = include_str!("../README.md");
    let at = readme.find("### Waiting for a decision").expect("section");
    let start = readme[at..].find("```sh\n").unwrap() + at + 6;
    let end = readme[start..].find("```").unwrap() + start;
    readme[start..end].lines().map(str::to_string).collect()
}

/// Every README line, decided three ways: approved exits 0 with the
/// grant on stdout, denied 3 with the reason, withdrawn 4.
#[test]
fn readme_wait_commands_exit_by_outcome() {
    let s = serve("readme");
    let lines = readme_lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    for line in &lines {
        assert!(line.contains("--wait"), "{line}");

        let w = start(&s, line);
        let name = w.name.clone();
        decide(&s, &name, "approve", "{}");
        let (code, out, err) = finish(w);
        assert_eq!(code, 0, "{line}: {err}");
        assert!(
            out.starts_with(&format!("approved {name} by dana: ClusterRole "))
                && out.contains(" in payments until "),
            "{out}"
        );
        assert_eq!(out.lines().count(), 1, "{out}");
        assert_eq!(phase(&s, &name), "Active");

        let w = start(&s, line);
        let name = w.name.clone();
        decide(&s, &name, "deny", r#"{"reason":"not during the freeze"}"#);
        let (code, out, err) = finish(w);
        assert_eq!(code, 3, "{line}: {err}");
        assert_eq!(
            out,
            format!("denied {name} by dana: not during the freeze\n")
        );

        let w = start(&s, line);
        let name = w.name.clone();
        std::thread::sleep(Duration::from_millis(300));
        let o = Command::new(BIN)
            .args(["withdraw", &format!("dev-sandbox/{name}")])
            .env("PORTCULLIS_BACKEND", &s.url)
            .env("PORTCULLIS_TOKEN", "alice")
            .env("XDG_CONFIG_HOME", s.state.join("none"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
        let (code, out, err) = finish(w);
        assert_eq!(code, 4, "{line}: {err}");
        assert_eq!(out, format!("{name} is withdrawn\n"));
    }
}

/// `--timeout` passes first: exit 5, nothing on stdout, one line saying the
/// request stays pending, and it does.
#[test]
fn a_timeout_stops_only_the_waiting() {
    let s = serve("timeout");
    let w = start(
        &s,
        "portcullis request --role view --cluster-role -n payments --for 1h --reason 'INC-2' --context dev-sandbox --wait --timeout 2s",
    );
    let name = w.name.clone();
    let (code, out, err) = finish(w);
    assert_eq!(code, 5, "{err}");
    assert_eq!(out, "");
    let last = err.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        format!("portcullis: {name} is still pending after 2s (--timeout); it stays pending: watch it with `portcullis get requests {name} -w`")
    );
    assert_eq!(err.lines().count(), 2, "{err}");
    assert_eq!(phase(&s, &name), "Pending");
}

/// `--timeout` without `--wait` is a usage error (exit 2), and nothing is asked.
#[test]
fn timeout_needs_wait() {
    let o = Command::new(BIN)
        .args([
            "request",
            "--role",
            "view",
            "--for",
            "1h",
            "--reason",
            "x",
            "--timeout",
            "2s",
        ])
        .env("PORTCULLIS_BACKEND", "http://127.0.0.1:9")
        .env("PORTCULLIS_TOKEN", "alice")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--wait"));
}

/// Token credentials through the server: approved is still the outcome
/// (exit 0, the line on stdout); stderr says why there is no kubeconfig.
#[test]
fn token_mode_through_the_server_says_why_there_is_no_kubeconfig() {
    let s = serve("token");
    let w = start(
        &s,
        "portcullis request --role view --cluster-role -n payments --for 1h --reason 'INC-3' --context dev-sandbox --credentials token --wait",
    );
    let name = w.name.clone();
    decide(&s, &name, "approve", "{}");
    let (code, out, err) = finish(w);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!("approved {name} by dana")),
        "{out}"
    );
    assert!(
        err.contains(&format!("no kubeconfig for {name}: ")),
        "{err}"
    );
}
