//! The server keeps to its published API: schemathesis (from PyPI) reads
//! `/v1/openapi.json` from `portcullis serve --demo` (a process, on a free
//! port) and sends a bounded number of generated calls per operation as
//! dana (an approver: a demo person's name is their token). It fails on
//! any 5xx, on any answer whose status, content type or body the document
//! does not describe, and on any `/v1` call (but the document) answered
//! without the token or with a bad one.
//!
//! `scripts/test` installs schemathesis into a venv
//! (`~/.cache/portcullis/schemathesis-venv`) and names its `st` in
//! `PORTCULLIS_SCHEMATHESIS`. Without it this test fails, saying so, unless
//! `PORTCULLIS_SKIP_SCHEMATHESIS=1`.
//!
//! All four phases run: README's example bodies, the schema's edge cases
//! (coverage), random calls (fuzzing), and chains that follow the
//! document's links from a new request to the calls on it (stateful).
//!
//! `/v1/events` is left out: a live stream never ends, so schemathesis
//! would only time out on it (README's example and `tests/cluster_server.rs`
//! cover it).

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::free_port;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// Generated calls per operation and phase.
const MAX_EXAMPLES: &str = "20";
/// The whole run's bound (it takes well under a minute on a quiet machine).
const DEADLINE: Duration = Duration::from_secs(600);

struct Served {
    child: Child,
    url: String,
    dir: PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Served {
    /// What the server wrote to stderr (a handler's panic shows there).
    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

fn get(url: &str) -> u16 {
    common::http::status(url, Duration::from_secs(2))
}

fn serve() -> Served {
    let dir = common::scratch_dir("api-schema");
    let port = free_port();
    let log = std::fs::File::create(dir.join("server.log")).unwrap();
    let child = Command::new(BIN)
        .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("RUST_BACKTRACE", "1")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let served = Served {
        child,
        url: format!("http://127.0.0.1:{port}"),
        dir,
    };
    for _ in 0..300 {
        if get(&format!("{}/readyz", served.url)) == 200 {
            return served;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the server never got ready:\n{}", served.stderr());
}

/// schemathesis's `st`, or None when this run skips it on purpose.
fn schemathesis() -> Option<PathBuf> {
    if let Some(st) = std::env::var_os("PORTCULLIS_SCHEMATHESIS").filter(|s| !s.is_empty()) {
        return Some(PathBuf::from(st));
    }
    if std::env::var("PORTCULLIS_SKIP_SCHEMATHESIS").as_deref() == Ok("1") {
        eprintln!("api_schema: skipped (PORTCULLIS_SKIP_SCHEMATHESIS=1)");
        return None;
    }
    panic!(
        "PORTCULLIS_SCHEMATHESIS is not set: it names schemathesis's `st` \
         (scripts/test installs it into ~/.cache/portcullis/schemathesis-venv \
         and sets it). Set PORTCULLIS_SKIP_SCHEMATHESIS=1 to skip this test."
    );
}

#[test]
fn the_server_answers_as_its_openapi_document_says() {
    let Some(st) = schemathesis() else { return };
    let served = serve();
    assert_eq!(
        get(&format!("{}/v1/openapi.json", served.url)),
        200,
        "the document needs no token"
    );
    let mut run = Command::new(&st)
        .args([
            "--no-color",
            "run",
            &format!("{}/v1/openapi.json", served.url),
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,ignored_auth",
            "--max-examples",
            MAX_EXAMPLES,
            "--seed",
            "18",
            "--workers",
            "1",
            "--request-timeout",
            "10",
            "--generation-database",
            "none",
            "--exclude-path",
            "/v1/events",
            "--header",
            "Authorization: Bearer dana",
        ])
        .current_dir(&served.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", st.display()));
    // Read both pipes while it runs (a full pipe would stall it).
    let mut stdout = run.stdout.take().unwrap();
    let mut stderr = run.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = run.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > DEADLINE {
            let _ = run.kill();
            let _ = run.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let report = format!(
        "{}{}\n--- server stderr ---\n{}",
        out.join().unwrap(),
        err.join().unwrap(),
        served.stderr()
    );
    match status {
        None => panic!("schemathesis ran past {DEADLINE:?}:\n{report}"),
        Some(s) if !s.success() => panic!("schemathesis found failures ({s}):\n{report}"),
        Some(_) => {}
    }
    assert!(
        !served.stderr().contains("panicked"),
        "the server panicked:\n{report}"
    );
    eprintln!("{report}");
}
