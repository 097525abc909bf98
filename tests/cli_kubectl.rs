//! The command line as kubectl users type it, as processes against a
//! Portcullis server on the embedded demo (seeded, no arrivals; several
//! clusters): global flags after the verb, `get -o name|jsonpath|
//! custom-columns`, `--sort-by`, the CLUSTER column and `CONTEXT/NAME`,
//! `get -w` over the server's stream, `--version`, and README's commands
//! run as written.

mod common;
use common::cli::{ok, one_line_error};

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::backend::demo::{DemoBackend, DemoConfig};
use portcullis::server::authority::DemoAuthority;
use portcullis::server::Server;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// A demo server on loopback: (its URL, its clusters).
async fn serve() -> (String, Vec<String>) {
    let world = Arc::new(DemoBackend::live(DemoConfig {
        seed: 7,
        rate: Duration::ZERO,
        hostile: false,
        ..Default::default()
    }));
    let mut clusters = portcullis::backend::AccessBackend::info(world.as_ref()).clusters;
    clusters.sort();
    let authority = DemoAuthority::new(world);
    let access = authority.access().clone();
    let server = Server::builder(Arc::new(authority), access).start();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, server.router()).await });
    // The server learns the world from its stream: ready once it lists.
    let deadline = Instant::now() + Duration::from_secs(20);
    while pc(&url, "dana", &["get", "requests", "-o", "name"])
        .stdout
        .is_empty()
    {
        assert!(Instant::now() < deadline, "the demo server never listed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (url, clusters)
}

/// Runs `portcullis ARGS` as `who` against the server at `url` (given by
/// the environment, so the arguments are exactly what a person types).
fn pc(url: &str, who: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("PORTCULLIS_BACKEND", url)
        .env("PORTCULLIS_TOKEN", who)
        .env(
            "XDG_STATE_HOME",
            std::env::temp_dir().join("pc-kubectl-state"),
        )
        .env(
            "XDG_CONFIG_HOME",
            std::env::temp_dir().join("pc-kubectl-none"),
        )
        .output()
        .expect("run portcullis")
}

/// alice asks for edit in payments on `cluster`; the new name.
fn ask(url: &str, cluster: &str) -> String {
    ok(&pc(
        url,
        "alice",
        &[
            "request",
            "--role",
            "edit",
            "--cluster-role",
            "-n",
            "payments",
            "--for",
            "30m",
            "--reason",
            "kubectl habits",
            "--context",
            cluster,
        ],
    ))
    .trim()
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_flags_before_or_after_the_verb() {
    let (url, clusters) = serve().await;
    let token = std::env::temp_dir().join(format!("pc-kubectl-token-{}", std::process::id()));
    std::fs::write(&token, "alice\n").unwrap();
    let token = token.to_str().unwrap();
    let c = clusters[0].as_str();
    // The issue's own line: --context (and the rest) after the verb.
    let after = ok(&Command::new(BIN)
        .args([
            "request",
            "--role",
            "view",
            "--cluster-role",
            "-n",
            "orders",
            "--for",
            "30m",
            "--reason",
            "after",
            "--context",
            c,
            "--backend",
            &url,
            "--token-file",
            token,
            "--color",
            "never",
            "--theme",
            "mono",
            "--readonly",
        ])
        .output()
        .unwrap());
    let name = after.trim();
    assert!(name.starts_with("alice-orders-"), "{after}");
    // Before the verb, the same.
    let before = ok(&Command::new(BIN)
        .args([
            "--context",
            c,
            "--backend",
            &url,
            "--token-file",
            token,
            "get",
            "requests",
            name,
            "-o",
            "name",
        ])
        .output()
        .unwrap());
    assert_eq!(before, format!("accessrequest.portcullis.dev/{name}\n"));
    // --context after the verb is used, not ignored: a cluster the server
    // does not have is refused.
    let err = one_line_error(&pc(
        &url,
        "dana",
        &["get", "requests", "--context", "nowhere"],
    ));
    assert!(err.contains("the server has no cluster nowhere"), "{err}");
    // Split between both sides: both contexts are in view.
    let both = ok(&Command::new(BIN)
        .args(["--context", c, "get", "requests", "-o", "name"])
        .args(["--context", &clusters[1]])
        .env("PORTCULLIS_BACKEND", &url)
        .env("PORTCULLIS_TOKEN", "dana")
        .output()
        .unwrap());
    assert!(
        both.lines().all(|l| l.starts_with(&format!("{c}/"))
            || l.starts_with(&format!("{}/", clusters[1]))),
        "{both}"
    );
    assert!(both.contains(&format!("{c}/accessrequest.portcullis.dev/{name}")));
    let _ = std::fs::remove_file(token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_formats_and_sort_by() {
    let (url, clusters) = serve().await;
    let c = clusters[0].as_str();
    let name = o_name(&url, c);
    o_jsonpath(&url, c);
    custom_columns_and_sort_by(&url);
    one_named_request(&url, c, &name);
    mistakes_are_usage_errors(&url);
}

/// `-o name` of one context's requests; the listing.
fn o_name(url: &str, c: &str) -> String {
    let name = ok(&pc(
        url,
        "dana",
        &["get", "requests", "--context", c, "-o", "name"],
    ));
    insta::assert_snapshot!("o_name", name);
    name
}

/// `-o jsonpath=`: a range, several results of one path, a filter.
fn o_jsonpath(url: &str, c: &str) {
    let jsonpath = ok(&pc(
        url,
        "dana",
        &[
            "get",
            "requests",
            "-o",
            r#"jsonpath={range .items[*]}{.cluster}/{.metadata.name}{"\t"}{.spec.role.name}{"\t"}{.status.phase}{"\n"}{end}"#,
        ],
    ));
    insta::assert_snapshot!("o_jsonpath_range", jsonpath);
    let names = ok(&pc(
        url,
        "dana",
        &[
            "get",
            "requests",
            "--context",
            c,
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ],
    ));
    // kubectl joins several results of one path with a space, no newline.
    assert!(!names.ends_with('\n') && names.contains(' '), "{names:?}");
    insta::assert_snapshot!("o_jsonpath_names", names);
    let filtered = ok(&pc(
        url,
        "dana",
        &[
            "get",
            "requests",
            "-o",
            r#"jsonpath={.items[?(@.spec.role.name=="edit")].metadata.name}"#,
        ],
    ));
    insta::assert_snapshot!("o_jsonpath_filter", filtered);
}

/// `-o custom-columns=`, and `--sort-by` durations by what they mean.
fn custom_columns_and_sort_by(url: &str) {
    let columns = ok(&pc(
        url,
        "dana",
        &[
            "get",
            "requests",
            "-o",
            "custom-columns=NAME:.metadata.name,WHO:.spec.requester.user,ROLE:.spec.role.name,NS:.spec.namespaces,PHASE:.status.phase",
        ],
    ));
    insta::assert_snapshot!("o_custom_columns", columns);
    let sorted = ok(&pc(
        url,
        "dana",
        &[
            "get",
            "requests",
            "-o",
            "custom-columns=DURATION:.spec.duration,NAME:.metadata.name",
            "--sort-by",
            ".spec.duration",
        ],
    ));
    insta::assert_snapshot!("sort_by_duration", sorted);
    // Durations by what they mean: 15m < 1h < 2h < 4h, not as text.
    let durations: Vec<u64> = sorted
        .lines()
        .skip(1)
        .map(|l| {
            portcullis::domain::duration::parse(l.split_whitespace().next().unwrap())
                .unwrap()
                .as_secs()
        })
        .collect();
    assert!(durations.len() > 3, "{sorted}");
    assert!(durations.windows(2).all(|w| w[0] <= w[1]), "{sorted}");
}

/// One named request, as kubectl: the object itself.
fn one_named_request(url: &str, c: &str, name: &str) {
    let first = name.lines().next().unwrap().rsplit('/').next().unwrap();
    let phase = ok(&pc(
        url,
        "dana",
        &[
            "get",
            "requests",
            &format!("{c}/{first}"),
            "-o",
            "jsonpath={.status.phase}",
        ],
    ));
    assert_eq!(phase, "Pending");
}

/// Mistakes are usage errors that say what is wrong.
fn mistakes_are_usage_errors(url: &str) {
    for (args, expect) in [
        (&["-o", "jsonpath={.a"][..], "unclosed"),
        (&["-o", "nme"][..], "unknown output format 'nme'"),
        (&["-o", "custom-columns=NAME"][..], "HEADER:JSONPATH"),
    ] {
        let o = pc(url, "dana", &[&["get", "requests"][..], args].concat());
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(expect),
            "{args:?}"
        );
    }
    let err = one_line_error(&pc(
        url,
        "dana",
        &["get", "requests", "--sort-by", ".spec.nothing"],
    ));
    assert!(err.contains("no request has this field"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_column_and_context_slash_name() {
    let (url, clusters) = serve().await;
    assert!(clusters.len() > 1);
    let table = ok(&pc(&url, "dana", &["get", "requests"]));
    assert!(table.starts_with("CLUSTER "), "{table}");
    let one = ok(&pc(
        &url,
        "dana",
        &["get", "requests", "--context", &clusters[0]],
    ));
    assert!(one.starts_with("NAME "), "one context, no CLUSTER: {one}");
    // -o name feeds the next verb and lands on the right cluster.
    let name = ask(&url, &clusters[1]);
    let listed = ok(&pc(&url, "dana", &["get", "requests", "-o", "name"]));
    let line = listed
        .lines()
        .find(|l| l.ends_with(&format!("/{name}")))
        .expect("listed");
    assert_eq!(
        line,
        format!("{}/accessrequest.portcullis.dev/{name}", clusters[1])
    );
    let approved = ok(&pc(&url, "dana", &["approve", line, "--for", "10m"]));
    assert!(
        approved.starts_with(&format!("approved {}/{name}: ", clusters[1])),
        "{approved}"
    );
    let phase = ok(&pc(
        &url,
        "dana",
        &[
            "get",
            "requests",
            &format!("{}/{name}", clusters[1]),
            "-o",
            "jsonpath={.status.phase}",
        ],
    ));
    assert_eq!(phase, "Active");
    // The same name on the wrong cluster is not found there.
    let err = one_line_error(&pc(
        &url,
        "dana",
        &["deny", &format!("{}/{name}", clusters[0]), "--reason", "x"],
    ));
    assert!(err.contains("not found"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_over_the_server_prints_each_change() {
    let (url, clusters) = serve().await;
    let c = clusters[0].clone();
    let mut watcher = Command::new(BIN)
        .args(["get", "requests", "-w", "--context", &c])
        .env("PORTCULLIS_BACKEND", &url)
        .env("PORTCULLIS_TOKEN", "dana")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = watcher.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let header = rx.recv_timeout(Duration::from_secs(20)).expect("a header");
    assert!(header.starts_with("NAME "), "{header}");
    // The listing first.
    while rx.recv_timeout(Duration::from_millis(300)).is_ok() {}
    let name = ask(&url, &c);
    let asked = Instant::now();
    let row = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("a row for the new request");
        if line.starts_with(&name) {
            break line;
        }
    };
    eprintln!(
        "get -w over the server: row {:?} after the request returned",
        asked.elapsed()
    );
    assert!(row.contains("Pending") && row.contains("alice"), "{row}");
    ok(&pc(&url, "dana", &["approve", &name, "--context", &c]));
    let row = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the approval");
        if line.starts_with(&name) {
            break line;
        }
    };
    assert!(row.contains("Active"), "{row}");
    let _ = watcher.kill();
    let _ = watcher.wait();
}

#[test]
fn version_for_people_and_scripts() {
    let o = Command::new(BIN).arg("--version").output().unwrap();
    let line = ok(&o);
    assert!(line.starts_with("portcullis 0."), "{line}");
    assert!(
        line.contains("commit ") && line.contains("Kubernetes API v1."),
        "{line}"
    );
    let o = Command::new(BIN)
        .args(["version", "--client", "-o", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&ok(&o)).expect("JSON");
    let client = &v["clientVersion"];
    assert_eq!(client["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(client["rustVersion"], env!("CARGO_PKG_RUST_VERSION"));
    let commit = client["gitCommit"].as_str().unwrap();
    assert!(line.contains(commit), "{line} vs {commit}");
    assert!(client["kubernetesApi"].as_str().unwrap().starts_with("v1."));
    let apis: Vec<&str> = client["apiVersions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert!(
        apis.contains(&"portcullis.dev/v1alpha1") && apis.contains(&"rbac.authorization.k8s.io/v1"),
        "{apis:?}"
    );
    // Without --client it asks the clusters: none here, one line, exit 1.
    let o = Command::new(BIN)
        .args(["version"])
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .output()
        .unwrap();
    let err = one_line_error(&o);
    assert!(String::from_utf8_lossy(&o.stdout).contains("Client Version: "));
    assert!(err.contains("kubeconfig"), "{err}");
}

/// README's "As kubectl users type it" block, each line run by `sh` as
/// written; `prod` and the example request name stand for the demo's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_kubectl_commands_run_as_written() {
    let (url, clusters) = serve().await;
    let readme = include_str!("../README.md");
    let at = readme
        .find("### As kubectl users type it")
        .expect("section");
    let start = readme[at..].find("```sh\n").unwrap() + at + 6;
    let end = readme[start..].find("```").unwrap() + start;
    let lines: Vec<&str> = readme[start..end].lines().collect();
    assert!(lines.len() >= 6, "{lines:?}");
    let bin_dir = std::path::Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let c = clusters[0].as_str();
    for line in lines {
        let name = ask(&url, c);
        let command = line
            .replace("--context prod ", &format!("--context {c} "))
            .replace("prod/alice-payments-x7k2q", &format!("{c}/{name}"));
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("exec {command}"))
            .env("PATH", &path)
            .env("PORTCULLIS_BACKEND", &url)
            .env("PORTCULLIS_TOKEN", "dana")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if command.contains(" -w") {
            // A watch runs until stopped: it must list, then show a new one.
            std::thread::sleep(Duration::from_secs(2));
            let newer = ask(&url, c);
            std::thread::sleep(Duration::from_secs(2));
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            let out = String::from_utf8_lossy(&o.stdout);
            assert!(
                out.starts_with("CLUSTER ") && out.contains(&name) && out.contains(&newer),
                "{command}: {out}"
            );
            continue;
        }
        let o = child.wait_with_output().unwrap();
        let out = ok(&o);
        assert!(!out.is_empty(), "{command} printed nothing");
        if command.contains("approve") {
            assert!(out.starts_with(&format!("approved {c}/{name}")), "{out}");
        }
        if command.contains("{.status.phase}'") {
            assert_eq!(out, "Pending");
        }
    }
}

/// `get -o name | head -1` and `get -w -o name | head -1`: when the reader
/// has had enough, portcullis ends quietly (no panic, no error line).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_early_ends_get_quietly() {
    let (url, clusters) = serve().await;
    let c = clusters[0].clone();
    let o = Command::new("sh")
        .args(["-c", &format!("{BIN} get requests -o name | head -1")])
        .env("PORTCULLIS_BACKEND", &url)
        .env("PORTCULLIS_TOKEN", "dana")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 1);
    assert_eq!(String::from_utf8_lossy(&o.stderr), "");

    let mut watcher = Command::new(BIN)
        .args(["get", "requests", "-w", "-o", "name", "--context", &c])
        .env("PORTCULLIS_BACKEND", &url)
        .env("PORTCULLIS_TOKEN", "dana")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watcher.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a line").unwrap();
    assert!(
        first.starts_with("accessrequest.portcullis.dev/"),
        "{first}"
    );
    drop(lines);
    // The next change finds the reader gone.
    ask(&url, &c);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = watcher.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = watcher.kill();
            panic!("get -w kept running after its reader went away");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut watcher.stderr.take().unwrap(), &mut err).unwrap();
    // Ended by SIGPIPE, as kubectl and other command-line tools are.
    use std::os::unix::process::ExitStatusExt;
    assert!(
        status.success() || status.signal() == Some(libc::SIGPIPE),
        "{status:?}: {err}"
    );
    assert_eq!(err, "");
}
