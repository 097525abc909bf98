//! The real binary in a pseudo-terminal, as a person at it sees it: the
//! screen as a terminal would draw it (vt100), keys typed into it.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{native_pty_system, CommandBuilder, PtySize};

pub(crate) struct Session {
    pub child: Box<dyn portable_pty::Child + Send + Sync>,
    writer: Box<dyn Write + Send>,
    output: Arc<Mutex<Vec<u8>>>,
    _master: Box<dyn portable_pty::MasterPty + Send>,
}

impl Session {
    pub(crate) fn start(args: &[&str]) -> Self {
        Self::start_env(args, &[])
    }

    pub(crate) fn start_env(args: &[&str], env: &[(&str, &str)]) -> Self {
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
        // A token in the test's own environment never reaches the console:
        // each test says how it signs in.
        cmd.env_remove("PORTCULLIS_TOKEN");
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

    pub(crate) fn screen(&self) -> String {
        self.parsed().screen().contents()
    }

    pub(crate) fn parsed(&self) -> vt100::Parser {
        let mut parser = vt100::Parser::new(30, 110, 0);
        parser.process(&self.output.lock().unwrap());
        parser
    }

    pub(crate) fn raw(&self) -> Vec<u8> {
        self.output.lock().unwrap().clone()
    }

    pub(crate) fn wait_for(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.screen().contains(text) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("'{text}' never appeared; screen:\n{}", self.screen());
    }

    pub(crate) fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write to pty");
        self.writer.flush().expect("flush");
    }

    pub(crate) fn wait_exit(&mut self) -> portable_pty::ExitStatus {
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
