//! The audit trail as an auditor and an attacker meet it: `portcullis
//! serve --demo` as a process writes it while callers (and impostors) act
//! with raw HTTP; `portcullis audit verify` passes the intact log and names
//! the first bad record of every edit an attacker with write access to the
//! file can make — an edited field, a deleted, reordered or cut-off record,
//! a chain rewritten and re-hashed, a head forged with another key.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
}

mod common;
use common::free_port;

fn dir(name: &str) -> PathBuf {
    common::scratch_dir(&format!("audit-{name}"))
}

struct Served {
    child: Child,
    url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    /// SIGTERM, as an operator stops it: the last head is signed.
    fn stop(mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

fn serve(d: &Path) -> Served {
    let port = free_port();
    let child = bin()
        .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--audit-log")
        .arg(d.join("audit.jsonl"))
        .arg("--audit-key")
        .arg(d.join("keys/audit.key"))
        .env("XDG_STATE_HOME", d.join("state"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let served = Served { child, url };
    for _ in 0..300 {
        if curl(&served.url, None, "GET", "/readyz", None).0 == 200 {
            return served;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the server never got ready");
}

/// A decision's body naming the request at `path` (its `…/ACTION` path)
/// as `token` reads it: uid and seen.
fn named(base: &str, token: &str, path: &str, body: &str) -> String {
    let read_path = path.rsplit_once('/').map(|(p, _)| p).unwrap_or(path);
    let (_, read) = curl(base, Some(token), "GET", read_path, None);
    let mut v: Value = serde_json::from_str(body).unwrap();
    v["uid"] = read["uid"].clone();
    v["seen"] = read["seen"].clone();
    v.to_string()
}

/// A raw HTTP call with a bearer token, as an attacker makes it.
fn curl(
    base: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, Value) {
    common::http::json(method, &format!("{base}{path}"), token, body)
}

fn verify(args: &[&Path], key: Option<&Path>) -> Output {
    let mut c = bin();
    c.args(["audit", "verify"]);
    for a in args {
        c.arg(a);
    }
    if let Some(k) = key {
        c.arg("--key").arg(k);
    }
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn records(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A pending request: (cluster, name, requester).
type Pending = (String, String, String);

/// A trail with real traffic: approvals, a self-approval, a bad token, an
/// impostor naming someone else in the body, a shorten, a revoke.
fn trail(name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let d = dir(name);
    let o = bin()
        .args(["audit", "keygen", "--out"])
        .arg(d.join("keys"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let s = serve(&d);
    let pending = pending_requests(&s);
    let other = pending
        .iter()
        .find(|p| p.2 != "dana")
        .expect("someone else's request");
    let own = pending
        .iter()
        .find(|p| p.2 == "dana")
        .expect("dana's own request");
    refused_calls(&s, own, other);
    let made = heidi_asks_for_herself(&s);
    dana_approves_shortens_revokes(&s, other);
    std::thread::sleep(Duration::from_millis(300));
    s.stop();
    let log = d.join("audit.jsonl");
    each_event_once(&log, own, other, &made);
    (log, d.join("keys/audit.pub"), d)
}

/// The valid pending requests, as dana lists them.
fn pending_requests(s: &Served) -> Vec<Pending> {
    let (_, list) = curl(
        &s.url,
        Some("dana"),
        "GET",
        "/v1/requests?phase=Pending",
        None,
    );
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["invalid"].is_null())
        .map(|r| {
            (
                r["cluster"].as_str().unwrap().to_string(),
                r["name"].as_str().unwrap().to_string(),
                r["spec"]["requester"]["user"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// `/v1/requests/CLUSTER/NAME/ACTION` of a pending request.
fn action_path(p: &Pending, action: &str) -> String {
    format!("/v1/requests/{}/{}/{action}", p.0, p.1)
}

/// A self-approval, a bad token, and an impostor: all refused.
fn refused_calls(s: &Served, own: &Pending, other: &Pending) {
    assert_eq!(
        curl(
            &s.url,
            Some("dana"),
            "POST",
            &action_path(own, "approve"),
            Some(&named(&s.url, "dana", &action_path(own, "approve"), "{}"))
        )
        .0,
        403
    );
    assert_eq!(
        curl(
            &s.url,
            Some("forged-token"),
            "POST",
            &action_path(other, "approve"),
            Some("{}")
        )
        .0,
        401
    );
    // heidi names dana as the requester in the body: refused, and the
    // trail says heidi tried.
    let (code, _) = curl(
        &s.url,
        Some("heidi"),
        "POST",
        "/v1/requests",
        Some(
            r#"{"cluster":"dev-sandbox","role":{"kind":"ClusterRole","name":"view"},"namespaces":["inventory"],"duration":"30m","reason":"INC-1 look","requester":{"user":"dana","groups":["oncall"]}}"#,
        ),
    );
    assert_eq!(code, 422);
}

/// heidi asks for herself; returns what the server made.
fn heidi_asks_for_herself(s: &Served) -> Value {
    let (code, made) = curl(
        &s.url,
        Some("heidi"),
        "POST",
        "/v1/requests",
        Some(
            r#"{"cluster":"dev-sandbox","role":{"kind":"ClusterRole","name":"view"},"namespaces":["inventory"],"duration":"30m","reason":"INC-1 look"}"#,
        ),
    );
    assert_eq!(code, 201, "{made}");
    made
}

/// dana approves someone else's request for 20m, shortens it, revokes it.
fn dana_approves_shortens_revokes(s: &Served, other: &Pending) {
    assert_eq!(
        curl(
            &s.url,
            Some("dana"),
            "POST",
            &action_path(other, "approve"),
            Some(&named(
                &s.url,
                "dana",
                &action_path(other, "approve"),
                r#"{"duration":"20m"}"#
            ))
        )
        .0,
        200
    );
    assert_eq!(
        curl(
            &s.url,
            Some("dana"),
            "POST",
            &action_path(other, "shorten"),
            Some(r#"{"to":"5m"}"#)
        )
        .0,
        200
    );
    assert_eq!(
        curl(
            &s.url,
            Some("dana"),
            "POST",
            &action_path(other, "revoke"),
            Some(r#"{"reason":"done"}"#)
        )
        .0,
        200
    );
}

/// Each event once, by the verified caller, with how it was verified.
fn each_event_once(log: &Path, own: &Pending, other: &Pending, made: &Value) {
    let recs = records(log);
    let of = |kind: &str| {
        recs.iter()
            .filter(|r| r["kind"] == kind)
            .cloned()
            .collect::<Vec<_>>()
    };
    let refused = of("attempt.refused");
    assert!(
        refused.iter().any(|r| r["actor"]["user"] == "heidi"
            && r["actor"]["verifiedBy"] == "demo"
            && r["detail"]["status"] == 422),
        "{refused:?}"
    );
    assert!(
        refused.iter().any(|r| r["actor"]["user"] == "dana"
            && r["request"] == own.1.as_str()
            && r["detail"]["status"] == 403),
        "{refused:?}"
    );
    assert!(refused
        .iter()
        .any(|r| r["actor"]["verifiedBy"] == "unverified" && r["detail"]["status"] == 401));
    let created = of("request.created");
    let heidis = created
        .iter()
        .find(|r| r["request"] == made["name"])
        .expect("heidi's request recorded");
    assert_eq!(heidis["actor"]["user"], "heidi");
    assert_eq!(heidis["requester"], "heidi");
    let approved: Vec<_> = of("review.approved")
        .into_iter()
        .filter(|r| r["request"] == other.1.as_str())
        .collect();
    assert_eq!(approved.len(), 1, "{approved:?}");
    assert_eq!(approved[0]["actor"]["user"], "dana");
    assert_eq!(approved[0]["actor"]["verifiedBy"], "demo");
    assert_eq!(approved[0]["detail"]["approved"]["duration"], "20m");
    for kind in ["grant.started", "grant.shortened", "grant.revoked"] {
        let n = of(kind)
            .iter()
            .filter(|r| r["request"] == other.1.as_str())
            .count();
        assert_eq!(n, 1, "{kind} once for {}", other.1);
    }
}

fn rewrite(log: &Path, lines: Vec<String>) {
    std::fs::write(
        log,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

fn lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// The intact trail of the tampering test, as first written.
struct Tampered {
    log: PathBuf,
    key: PathBuf,
    d: PathBuf,
    original: Vec<String>,
    n: usize,
}

#[test]
fn an_intact_trail_verifies_and_every_tampering_is_named() {
    let t = an_intact_trail_verifies();
    an_approvers_name_edited(&t);
    a_record_deleted(&t);
    two_records_swapped(&t);
    the_last_records_cut_off(&t);
    the_oldest_records_cut(&t);
    a_duplicate_key_in_front(&t);
    a_server_restarted_on_a_cut_log(&t);
    a_line_cut_in_the_middle(&t);
    let forged = the_chain_rewritten_and_rehashed(&t);
    a_head_signed_with_another_key(&t, &forged);
}

/// An intact trail verifies, its key pinned.
fn an_intact_trail_verifies() -> Tampered {
    let (log, key, d) = trail("tamper");
    let o = verify(&[&log], Some(&key));
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("intact"), "{}", text(&o));
    assert!(text(&o).contains("key pinned"), "{}", text(&o));
    let original = lines(&log);
    let n = original.len();
    assert!(n > 20, "a real trail: {n} records");
    Tampered {
        log,
        key,
        d,
        original,
        n,
    }
}

/// An approver's name edited in place.
fn an_approvers_name_edited(t: &Tampered) {
    let (log, key) = (&t.log, &t.key);
    let mut edited = t.original.clone();
    let i = edited
        .iter()
        .position(|l| l.contains("\"review.approved\""))
        .unwrap();
    edited[i] = edited[i].replacen("\"user\":\"", "\"user\":\"x", 1);
    rewrite(log, edited);
    let o = verify(&[log], Some(key));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains(&format!(":{}: record {} was edited", i + 1, i + 1)),
        "{}",
        text(&o)
    );
}

/// A record deleted.
fn a_record_deleted(t: &Tampered) {
    let (log, key) = (&t.log, &t.key);
    let mut deleted = t.original.clone();
    deleted.remove(5);
    rewrite(log, deleted);
    let o = verify(&[log], Some(key));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains(":6: record 7 follows record 5: record 6 is missing"),
        "{}",
        text(&o)
    );
}

/// Two records swapped.
fn two_records_swapped(t: &Tampered) {
    let (log, key) = (&t.log, &t.key);
    let mut swapped = t.original.clone();
    swapped.swap(3, 4);
    rewrite(log, swapped);
    let o = verify(&[log], Some(key));
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("reordered"), "{}", text(&o));
}

/// The last records cut off, whole lines: only the signed head knows.
fn the_last_records_cut_off(t: &Tampered) {
    let (log, key, n) = (&t.log, &t.key, t.n);
    rewrite(log, t.original[..n - 3].to_vec());
    let o = verify(&[log], Some(key));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains(&format!(
            "names record {n} but the log ends at record {}",
            n - 3
        )),
        "{}",
        text(&o)
    );
}

/// The oldest records cut from the front.
fn the_oldest_records_cut(t: &Tampered) {
    let (log, key) = (&t.log, &t.key);
    rewrite(log, t.original[5..].to_vec());
    let o = verify(&[log], Some(key));
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("starts at record 6"), "{}", text(&o));
}

/// A duplicate key in front of a record: JSON readers keep the last,
/// the hash still holds, `audit show` would skip it — refused.
fn a_duplicate_key_in_front(t: &Tampered) {
    let (log, key) = (&t.log, &t.key);
    let mut dup = t.original.clone();
    dup[4] = dup[4].replacen('{', "{\"seq\":1,", 1);
    rewrite(log, dup);
    let o = verify(&[log], Some(key));
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("canonical"), "{}", text(&o));
}

/// A server restarted on a cut log refuses to continue (and so never
/// signs a new head over it).
fn a_server_restarted_on_a_cut_log(t: &Tampered) {
    let (log, n) = (&t.log, t.n);
    rewrite(log, t.original[..n - 3].to_vec());
    let port = free_port();
    let o = bin()
        .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--audit-log")
        .arg(log)
        .arg("--audit-key")
        .arg(t.d.join("keys/audit.key"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("truncated"), "{}", text(&o));
}

/// A line cut in the middle.
fn a_line_cut_in_the_middle(t: &Tampered) {
    let (log, key) = (&t.log, &t.key);
    let mut cut: String = t.original.iter().map(|l| format!("{l}\n")).collect();
    cut.truncate(cut.len() - 20);
    std::fs::write(log, cut).unwrap();
    assert_eq!(verify(&[log], Some(key)).status.code(), Some(1));
}

/// The attacker rewrites a record and re-hashes the chain after it: the
/// chain is consistent, the signed head is not. Returns the forged lines.
fn the_chain_rewritten_and_rehashed(t: &Tampered) -> Vec<String> {
    let (log, key) = (&t.log, &t.key);
    let forged = rehash(&t.original, |i, v| {
        if i == 2 {
            v["message"] = Value::String("nothing to see".into());
        }
    });
    rewrite(log, forged.clone());
    let o = verify(&[log], Some(key));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("differs from the one the head signed"),
        "{}",
        text(&o)
    );
    forged
}

/// …and signs a new head with a key of their own: refused against the
/// pinned key (without one, verify says the key is not pinned).
fn a_head_signed_with_another_key(t: &Tampered, forged: &[String]) {
    let (log, key, d) = (&t.log, &t.key, &t.d);
    let o = bin()
        .args(["audit", "keygen", "--out"])
        .arg(d.join("mine"))
        .output()
        .unwrap();
    assert!(o.status.success());
    let head = forge_head(&d.join("mine/audit.key"), forged);
    std::fs::write(d.join("audit.jsonl.head"), head).unwrap();
    let o = verify(&[log], Some(key));
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("signed with another key"), "{}", text(&o));
    let o = verify(&[log], None);
    assert!(text(&o).contains("NOT pinned"), "{}", text(&o));
}

/// Recomputes every hash after `edit`, as an attacker who knows the format.
fn rehash(lines: &[String], edit: impl Fn(usize, &mut Value)) -> Vec<String> {
    let mut prev = String::from("0").repeat(64);
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let mut v: Value = serde_json::from_str(l).unwrap();
        edit(i, &mut v);
        v["prev"] = Value::String(prev.clone());
        v.as_object_mut().unwrap().remove("hash");
        let hash = portcullis::audit::chain::hash_of(&v);
        v["hash"] = Value::String(hash.clone());
        prev = hash;
        out.push(portcullis::audit::chain::canonical(&v));
    }
    out
}

fn forge_head(key: &Path, lines: &[String]) -> String {
    let k = portcullis::audit::chain::parse_secret(&std::fs::read_to_string(key).unwrap()).unwrap();
    let last: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    let head = portcullis::audit::chain::sign_head(
        &k,
        last["seq"].as_u64().unwrap(),
        last["hash"].as_str().unwrap(),
        chrono::Utc::now(),
    );
    serde_json::to_string(&head).unwrap()
}

/// A restarted server sees every request anew: what is already in the
/// log (this file or a rotated one) is not written again, and the chain
/// goes on from its last record.
#[test]
fn a_reopened_log_continues_the_chain_without_repeating_events() {
    use portcullis::audit::log::{AuditLog, LogConfig};
    use portcullis::audit::{Event, Kind};
    let d = dir("reopen");
    let events = |n: usize| {
        (0..n)
            .map(|i| Event::new(Kind::Created, chrono::Utc::now(), format!("same-{i}")))
            .collect::<Vec<_>>()
    };
    let log = AuditLog::open(LogConfig::new(d.join("audit.jsonl"))).unwrap();
    assert_eq!(log.record(events(5)).unwrap().len(), 5);
    drop(log);
    let log = AuditLog::open(LogConfig::new(d.join("audit.jsonl"))).unwrap();
    let again = log.record(events(7)).unwrap();
    assert_eq!(again.iter().map(|s| s.seq).collect::<Vec<_>>(), vec![6, 7]);
    assert_eq!(records(&d.join("audit.jsonl")).len(), 7);
    let o = verify(&[&d.join("audit.jsonl")], None);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("no signed head"), "{}", text(&o));
    // A log edited while the server was down is not continued.
    let text = std::fs::read_to_string(d.join("audit.jsonl")).unwrap();
    std::fs::write(d.join("audit.jsonl"), text.replacen("same-1", "same-9", 1)).unwrap();
    let err = AuditLog::open(LogConfig::new(d.join("audit.jsonl")))
        .err()
        .unwrap();
    assert!(err.to_string().contains("record 2 was edited"), "{err}");
}

#[test]
fn rotation_continues_the_chain_into_a_new_file() {
    use portcullis::audit::log::{AuditLog, LogConfig};
    use portcullis::audit::{Event, Kind};
    let d = dir("rotate");
    let o = bin()
        .args(["audit", "keygen", "--out"])
        .arg(&d)
        .output()
        .unwrap();
    assert!(o.status.success());
    let key = portcullis::audit::log::read_key(&d.join("audit.key")).unwrap();
    let mut config = LogConfig::new(d.join("audit.jsonl"));
    config.key = Some(key);
    config.rotate_bytes = 2_000;
    let log = AuditLog::open(config.clone()).unwrap();
    for i in 0..40 {
        let mut e = Event::new(Kind::Created, chrono::Utc::now(), format!("e{i}"));
        e.request = format!("r{i}");
        e.message = "x".repeat(40);
        log.record(vec![e]).unwrap();
    }
    log.sign(chrono::Utc::now()).unwrap();
    let rotated = portcullis::audit::log::rotated(&d.join("audit.jsonl"));
    assert!(rotated.len() >= 2, "{rotated:?}");
    // The current file alone: its predecessors are found and checked too.
    let o = verify(&[&d.join("audit.jsonl")], Some(&d.join("audit.pub")));
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("in {} file(s)", rotated.len() + 1)),
        "{}",
        text(&o)
    );
    // Reopened, the log continues from where it was.
    drop(log);
    let again = AuditLog::open(config.clone()).unwrap();
    let s = again
        .record(vec![Event::new(
            Kind::Created,
            chrono::Utc::now(),
            "late".into(),
        )])
        .unwrap();
    assert!(s[0].seq > 40);
    drop(again);
    let o = verify(&[&d.join("audit.jsonl")], Some(&d.join("audit.pub")));
    assert!(o.status.success(), "{}", text(&o));
    // A rotated file removed: the chain has a hole, and the writer will
    // not continue it.
    std::fs::remove_file(&rotated[1]).unwrap();
    let o = verify(&[&d.join("audit.jsonl")], Some(&d.join("audit.pub")));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("missing"), "{}", text(&o));
    let err = AuditLog::open(config)
        .err()
        .expect("a broken chain is not continued");
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn show_filters_and_prints_inert_text() {
    let (log, _, _) = trail("show");
    let o = bin()
        .args(["audit", "show", "--file"])
        .arg(&log)
        .args(["--user", "heidi", "-o", "json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(!out.is_empty());
    for l in out.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        assert!(
            v["actor"]["user"] == "heidi" || v["requester"] == "heidi",
            "{v}"
        );
    }
    let o = bin()
        .args(["audit", "show", "--file"])
        .arg(&log)
        .args(["--since", "1h"])
        .output()
        .unwrap();
    let table = String::from_utf8(o.stdout).unwrap();
    assert!(table.starts_with("SEQ"), "{table}");
    assert!(table.contains("attempt.refused"));
    // mallory's escape sequences reach no terminal.
    let all = bin()
        .args(["audit", "show", "--file"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(!all.stdout.contains(&0x1b), "an escape byte in the table");
    // Wrong input: one line, exit 1 or 2.
    let o = bin()
        .args(["audit", "verify"])
        .arg(log.with_extension("missing"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&o.stderr).lines().count(), 1);
    let o = bin().args(["audit", "show"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--file"));
}

/// This test thread (and what it starts) in a network namespace of its
/// own, its loopback up: README's server binds its default port there,
/// clashing with nothing else on the machine. False where the kernel or
/// our rights refuse one (not root).
fn own_network_namespace() -> bool {
    // SAFETY: unshare(2) with CLONE_NEWNET moves only the calling thread;
    // no memory is touched.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return false;
    }
    Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .is_ok_and(|s| s.success())
}

/// README's "Audit trail" commands, run as written (the server on its
/// default address until SIGTERM), in a network namespace of the test's
/// own so the fixed default port is nobody else's.
#[test]
fn readme_audit_commands_run_as_written() {
    if !own_network_namespace() {
        eprintln!("no network namespace of our own (not root?): the default port is shared with the machine");
    }
    let readme = include_str!("../README.md");
    let at = readme.find("## Audit trail").expect("the section");
    let block = &readme[at..];
    let start = block.find("```sh\n").expect("a sh block") + 6;
    let end = start + block[start..].find("```").unwrap();
    let commands: Vec<Vec<&str>> = block[start..end]
        .lines()
        .map(|l| l.split_whitespace().skip(1).collect())
        .collect();
    assert_eq!(commands.len(), 4);
    let d = dir("readme");
    let run = |args: &[&str]| bin().args(args).current_dir(&d).output().unwrap();
    let o = run(&commands[0]);
    assert!(o.status.success(), "{}", text(&o));
    let child = bin()
        .args(&commands[1])
        .current_dir(&d)
        .env("XDG_STATE_HOME", d.join("state"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let served = Served {
        child,
        url: "http://127.0.0.1:7443".into(),
    };
    let mut ready = false;
    for _ in 0..300 {
        if curl(&served.url, None, "GET", "/readyz", None).0 == 200 {
            ready = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(ready, "the README's server never got ready");
    let (code, made) = curl(
        &served.url,
        Some("alice"),
        "POST",
        "/v1/requests",
        Some(
            r#"{"cluster":"dev-sandbox","role":{"kind":"ClusterRole","name":"view"},"namespaces":["payments"],"duration":"30m","reason":"INC-3 readme"}"#,
        ),
    );
    assert_eq!(code, 201, "{made}");
    let path = format!(
        "/v1/requests/dev-sandbox/{}/approve",
        made["name"].as_str().unwrap()
    );
    assert_eq!(
        curl(
            &served.url,
            Some("dana"),
            "POST",
            &path,
            Some(&named(&served.url, "dana", &path, "{}"))
        )
        .0,
        200
    );
    served.stop();
    let o = run(&commands[2]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("key pinned"), "{}", text(&o));
    let o = run(&commands[3]);
    assert!(o.status.success(), "{}", text(&o));
    let table = text(&o);
    assert!(
        table.contains("review.approved") && table.contains("dana (demo)"),
        "{table}"
    );
    assert!(
        table.lines().skip(1).all(|l| l.contains("alice")),
        "{table}"
    );
}
