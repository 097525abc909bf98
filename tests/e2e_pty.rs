//! End to end: the real binary in a pseudo-terminal. It starts, shows
//! Pending, `?` shows help, `q` exits 0, and the terminal is restored; a
//! SIGTERM restores it too.

#![cfg(unix)]

mod common;

use std::time::{Duration, Instant};

use common::pty::Session;

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

fn assert_restored(raw: &[u8]) {
    let entered = find(raw, b"\x1b[?1049h").expect("entered the alternate screen");
    let left = find(raw, b"\x1b[?1049l").expect("left the alternate screen");
    assert!(left > entered, "left the alternate screen last");
    let shown = find(raw, b"\x1b[?25h").expect("cursor shown again");
    assert!(shown > entered);
}

#[test]
fn starts_shows_pending_help_and_quits_cleanly() {
    let mut s = Session::start(&["demo", "--seed", "1", "--rate", "0s"]);
    s.wait_for("1 Pending (");
    s.wait_for("REQUESTER");
    s.send(b"?");
    s.wait_for("Help");
    s.wait_for("approve the selected request");
    s.send(b"q");
    let status = s.wait_exit();
    assert!(status.success(), "exit status {status:?}");
    assert_restored(&s.raw());
}

#[test]
fn sigterm_restores_the_terminal() {
    let mut s = Session::start(&["demo", "--seed", "2", "--rate", "1s", "--color", "never"]);
    s.wait_for("1 Pending (");
    let pid = s.child.process_id().expect("pid");
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
    let status = s.wait_exit();
    assert!(
        status.success(),
        "a terminate signal is a clean exit: {status:?}"
    );
    assert_restored(&s.raw());
}

/// Issue 11, item 9: `--color always` means colour even under NO_COLOR, and
/// the selected row shows.
#[test]
fn color_always_overrides_no_color_and_the_selection_shows() {
    let mut s = Session::start_env(
        &["demo", "--seed", "3", "--rate", "0s", "--color", "always"],
        &[("NO_COLOR", "1")],
    );
    s.wait_for("REQUESTER");
    s.wait_for("deployer");
    let parser = s.parsed();
    let screen = parser.screen();
    // The list is the left 56%; the detail beside it says "deployer" too.
    let row = (0..30u16)
        .find(|r| {
            let list = screen.contents_between(*r, 0, *r, 60);
            list.contains("deployer") && list.contains("erin")
        })
        .expect("the first row");
    let col = screen
        .contents_between(row, 0, row, 60)
        .find("erin")
        .expect("erin") as u16;
    let cell = screen.cell(row, col).expect("a cell");
    assert_ne!(
        cell.bgcolor(),
        vt100::Color::Default,
        "the selected row has a background colour"
    );
    s.send(b"q");
    assert!(s.wait_exit().success());
}

/// `portcullis serve --demo` as a process (no simulated arrivals), in a
/// home of its own.
struct DemoServer {
    server: std::process::Child,
    url: String,
    home: std::path::PathBuf,
}

impl DemoServer {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let home =
            std::env::temp_dir().join(format!("portcullis-e2e-notify-{}", std::process::id()));
        std::fs::create_dir_all(&home).unwrap();
        let server = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
            .env("XDG_STATE_HOME", home.join("state"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("serve --demo");
        DemoServer { server, url, home }
    }

    /// `who` asks with the CLI for view in `ns` (retried while the server
    /// starts); the new request's name.
    fn ask(&self, who: &str, ns: &str) -> String {
        let (url, home) = (&self.url, &self.home);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
                .args([
                    "--backend",
                    url,
                    "--context",
                    "dev-sandbox",
                    "request",
                    "--role",
                    "view",
                    "--cluster-role",
                    "-n",
                    ns,
                    "--for",
                    "30m",
                    "--reason",
                    "INC-7 look",
                ])
                .env("PORTCULLIS_TOKEN", who)
                .env("XDG_STATE_HOME", home.join("state"))
                .env("XDG_CONFIG_HOME", home.join("config"))
                .output()
                .unwrap();
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).trim().to_string();
            }
            assert!(
                Instant::now() < deadline,
                "request as {who}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn stop(mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// The count after " pending " on the console's screen.
fn pending(screen: &str) -> usize {
    let after = screen.split(" pending ").nth(1).unwrap_or_default();
    after
        .split(' ')
        .next()
        .unwrap_or_default()
        .parse()
        .unwrap_or(0)
}

/// The desktop notifications (OSC 9) the console wrote.
fn notes(raw: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(raw)
        .split("\x1b]9;Portcullis: ")
        .skip(1)
        .map(|t| t.split('\x07').next().unwrap_or_default().to_string())
        .collect()
}

/// Issue 10, item 5: a new request from someone else rings the bell and
/// raises a desktop notification once; the approver's own never does. The
/// console runs against `portcullis serve --demo` (no simulated arrivals),
/// and the requests are made with the CLI as alice and as dana.
#[test]
fn a_new_request_rings_once_and_never_for_the_approvers_own() {
    let demo = DemoServer::start();
    // The server is up once a request goes through (before the console).
    demo.ask("alice", "payments");
    // Older than the clock-skew allowance when the console starts.
    std::thread::sleep(Duration::from_secs(6));
    let (mut s, at_start) = dana_at_the_console(&demo);
    danas_own_request_is_silent(&demo, &s, at_start);
    let expected = "new request: alice asks for view in checkout on dev-sandbox";
    alices_new_one_rings(&demo, &s, expected);
    later_ones_never_repeat_it(&s, expected);
    s.send(b"q");
    assert!(s.wait_exit().success());
    demo.stop();
}

/// dana at the console (over the server); returns it and how many are
/// pending at start.
fn dana_at_the_console(demo: &DemoServer) -> (Session, usize) {
    let s = Session::start_env(
        &["--backend", &demo.url, "--color", "never"],
        &[("PORTCULLIS_TOKEN", "dana"), ("TERM_PROGRAM", "WezTerm")],
    );
    s.wait_for("REQUESTER");
    std::thread::sleep(Duration::from_millis(500));
    let at_start = pending(&s.screen());
    assert!(at_start > 0);
    (s, at_start)
}

/// dana's own request: on screen, silent.
fn danas_own_request_is_silent(demo: &DemoServer, s: &Session, at_start: usize) {
    demo.ask("dana", "monitoring");
    s.wait_for(&format!(" pending {} ", at_start + 1));
}

/// alice's new one: the bell and one notification naming it.
fn alices_new_one_rings(demo: &DemoServer, s: &Session, expected: &str) {
    demo.ask("alice", "checkout");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !notes(&s.raw()).iter().any(|n| n == expected) {
        assert!(
            Instant::now() < deadline,
            "no notification: {:?}",
            notes(&s.raw())
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Later ones (the demo world has its own arrivals) never repeat it.
fn later_ones_never_repeat_it(s: &Session, expected: &str) {
    let osc = b"\x1b]9;Portcullis: ";
    std::thread::sleep(Duration::from_secs(6));
    let raw = s.raw();
    let all = notes(&raw);
    assert_eq!(all.iter().filter(|n| *n == expected).count(), 1, "{all:?}");
    assert!(
        !all.iter().any(|n| n.contains("dana asks")),
        "never the approver's own: {all:?}"
    );
    assert!(
        !all.iter()
            .any(|n| n.contains("alice asks for view in payments")),
        "what was there at start is not news: {all:?}"
    );
    let mut at = 0;
    while let Some(i) = raw[at..].windows(osc.len()).position(|w| w == osc) {
        assert_eq!(raw[at + i - 1], 0x07, "the bell rings first");
        at += i + osc.len();
    }
}
