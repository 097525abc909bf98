//! End to end: the real binary in a pseudo-terminal. It starts, shows
//! Pending, `?` shows help, `q` exits 0, and the terminal is restored; a
//! SIGTERM restores it too.

#![cfg(unix)]

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{native_pty_system, CommandBuilder, PtySize};

struct Session {
    child: Box<dyn portable_pty::Child + Send + Sync>,
    writer: Box<dyn Write + Send>,
    output: Arc<Mutex<Vec<u8>>>,
    _master: Box<dyn portable_pty::MasterPty + Send>,
}

impl Session {
    fn start(args: &[&str]) -> Self {
        Self::start_env(args, &[])
    }

    fn start_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: 30,
                cols: 110,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("openpty");
        let home = std::env::temp_dir().join(format!(
            "portcullis-e2e-{}-{}",
            std::process::id(),
            args.len()
        ));
        std::fs::create_dir_all(&home).expect("temp home");
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_portcullis"));
        cmd.args(args);
        cmd.env("HOME", &home);
        cmd.env("XDG_STATE_HOME", home.join("state"));
        cmd.env("XDG_CONFIG_HOME", home.join("config"));
        cmd.env("TERM", "xterm-256color");
        cmd.env_remove("NO_COLOR");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = pair.slave.spawn_command(cmd).expect("spawn portcullis");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("reader");
        let writer = pair.master.take_writer().expect("writer");
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Self {
            child,
            writer,
            output,
            _master: pair.master,
        }
    }

    fn screen(&self) -> String {
        self.parsed().screen().contents()
    }

    fn parsed(&self) -> vt100::Parser {
        let mut parser = vt100::Parser::new(30, 110, 0);
        parser.process(&self.output.lock().unwrap());
        parser
    }

    fn raw(&self) -> Vec<u8> {
        self.output.lock().unwrap().clone()
    }

    fn wait_for(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.screen().contains(text) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("'{text}' never appeared; screen:\n{}", self.screen());
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write to pty");
        self.writer.flush().expect("flush");
    }

    fn wait_exit(&mut self) -> portable_pty::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "did not exit; screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

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
