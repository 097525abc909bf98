//! Drives the real reducer, effect executor and demo backend (on a manual
//! clock) the way the event loop does, from key strings. With
//! `PORTCULLIS_TEST_BACKEND=http`, [`Harness::start`] puts the same demo
//! world behind an in-process `portcullis serve` and drives the console
//! through the `http` backend instead (`scripts/test` runs the key tests
//! both ways).

#![allow(dead_code)]

pub(crate) mod asking;
pub(crate) mod cli;
pub(crate) mod cluster;
pub(crate) mod http;
#[cfg(unix)]
pub(crate) mod pty;
pub(crate) mod server;

#[allow(unused_imports)] // some tests start no server
pub(crate) use cluster::free_port;

/// An empty directory of this test process: `portcullis-{what}-{pid}-{n}`.
pub(crate) fn scratch_dir(what: &str) -> std::path::PathBuf {
    // One per call: tests of one binary run side by side, and one must
    // not empty another's directory.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("portcullis-{what}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("a scratch directory");
    d
}

use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use portcullis::backend::batch::drain;
use portcullis::backend::demo::{DemoBackend, DemoConfig};
use portcullis::backend::{AccessBackend, BackendEvent, RequestKey};
use portcullis::console::run::execute;
use portcullis::console::state::app::{AppConfig, Mode, View};
use portcullis::console::state::AppState;
use portcullis::console::update::{update, Action, Effect};
use portcullis::console::view::{self, Theme};
use portcullis::domain::{AccessRequest, Phase};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use tokio::sync::mpsc::UnboundedReceiver;

pub(crate) struct Harness {
    /// The demo world (tests set it up and play the others through it).
    pub backend: Arc<DemoBackend>,
    /// What the console's effects run against: the world itself, or the
    /// `http` backend in front of a server over the same world.
    exec: Arc<dyn AccessBackend>,
    pub state: AppState,
    events: UnboundedReceiver<BackendEvent>,
    /// Every effect the reducer asked for, in order.
    pub effects: Vec<Effect>,
    /// How many keys were pressed (keystrokes per decision).
    pub keys_sent: usize,
    over_http: bool,
    /// The in-process server's address, when over HTTP.
    pub server_url: Option<String>,
}

impl Harness {
    pub(crate) fn new(seed: u64) -> Self {
        Self::with(
            DemoConfig {
                seed,
                rate: Duration::ZERO,
                ..Default::default()
            },
            AppConfig::default(),
        )
    }

    pub(crate) fn with(demo: DemoConfig, config: AppConfig) -> Self {
        let backend = Arc::new(DemoBackend::manual(demo));
        let info = backend.info();
        let state = AppState::new(config, info.approver, info.kind, backend.now());
        let events = backend.watch();
        let mut h = Self {
            exec: backend.clone(),
            backend,
            state,
            events,
            effects: Vec::new(),
            keys_sent: 0,
            over_http: false,
            server_url: None,
        };
        h.pump();
        h
    }

    /// As [`Self::new`], over HTTP when `PORTCULLIS_TEST_BACKEND=http`.
    pub(crate) async fn start(seed: u64) -> Self {
        Self::start_with(
            DemoConfig {
                seed,
                rate: Duration::ZERO,
                ..Default::default()
            },
            AppConfig::default(),
        )
        .await
    }

    pub(crate) async fn start_with(demo: DemoConfig, config: AppConfig) -> Self {
        if std::env::var("PORTCULLIS_TEST_BACKEND").as_deref() != Ok("http") {
            return Self::with(demo, config);
        }
        Self::over_server(demo, config, "dana", None, &[]).await
    }

    /// A console connected as `user` over HTTP to an in-process demo
    /// server with `policy` in force (the demo clusters labelled
    /// `env=prod|staging|dev`) and `approvers` added to its approvers list.
    pub(crate) async fn over_server(
        demo: DemoConfig,
        config: AppConfig,
        user: &str,
        policy: Option<&std::path::Path>,
        approvers: &[&str],
    ) -> Self {
        use portcullis::server::authority::DemoAuthority;
        use portcullis::server::config::Principal;
        use portcullis::server::Server;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let backend = Arc::new(DemoBackend::manual(demo));
        let authority = DemoAuthority::new(backend.clone());
        let mut access = authority.access().clone();
        for a in approvers {
            access
                .approvers
                .push(Principal::parse(a).expect("a principal like group:NAME"));
        }
        let labels = portcullis::backend::demo::org::CLUSTERS
            .iter()
            .map(|c| {
                let env = c.split('-').next().unwrap_or_default();
                (
                    c.to_string(),
                    std::collections::BTreeMap::from([("env".to_string(), env.to_string())]),
                )
            })
            .collect();
        let policy =
            policy.map(|dir| portcullis::policy::PolicyStore::open(dir).expect("the policy loads"));
        let server = Server::builder(Arc::new(authority), access)
            .policy(policy)
            .labels(labels)
            .start();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("bound");
        tokio::spawn(async move { axum::serve(listener, server.router()).await });
        let http = portcullis::backend::http::HttpBackend::connect(
            &format!("http://{addr}"),
            user.into(),
            None,
        )
        .await
        .expect("the console connects to the server");
        let info = http.info();
        let state = AppState::new(config, info.approver, info.kind, backend.now());
        let events = http.watch();
        let mut h = Self {
            exec: Arc::new(http),
            backend,
            state,
            events,
            effects: Vec::new(),
            keys_sent: 0,
            over_http: true,
            server_url: Some(format!("http://{addr}")),
        };
        h.settle().await;
        h
    }

    /// Delivers what the backend reported, and over HTTP waits (generous
    /// deadline) until the console shows exactly the world's requests.
    pub(crate) async fn settle(&mut self) {
        if !self.over_http {
            self.pump();
            return;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            self.pump();
            if self.in_step() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the console over HTTP never caught up with the world"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Whether the console holds exactly the world's requests, as decided.
    fn in_step(&self) -> bool {
        let world = self.backend.requests();
        world.len() == self.state.entries.len()
            && world.iter().all(|r| {
                self.state.entries.get(&RequestKey::of(r)).is_some_and(|e| {
                    e.req.phase() == r.phase()
                        && e.req.status.expires_at.map(|t| t.timestamp())
                            == r.status.expires_at.map(|t| t.timestamp())
                })
            })
    }

    /// Delivers waiting backend events, as the event loop does.
    pub(crate) fn pump(&mut self) {
        if let Ok(first) = self.events.try_recv() {
            let batch = drain(first, &mut self.events);
            self.dispatch(Action::Backend(batch));
        }
    }

    fn dispatch(&mut self, action: Action) -> Vec<Effect> {
        update(&mut self.state, action)
    }

    /// Sends one key and runs whatever effects it asks for to completion.
    pub(crate) async fn key(&mut self, key: KeyEvent) {
        self.keys_sent += 1;
        let effects = self.dispatch(Action::Key(key));
        self.run(effects).await;
    }

    pub(crate) async fn run(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            self.effects.push(effect.clone());
            if let Some(done) = execute(self.exec.as_ref(), effect).await {
                self.dispatch(done);
            }
        }
        self.settle().await;
    }

    /// Types keys: plain characters, plus `<enter>`, `<esc>`, `<space>`,
    /// `<tab>`, `<s-tab>`, `<bs>`, `<up>`, `<down>`, `<c-c>`, `<c-u>`,
    /// `<c-a>`, `<c-d>`.
    pub(crate) async fn press(&mut self, keys: &str) {
        let mut rest = keys;
        while !rest.is_empty() {
            let (key, len) = if rest.starts_with('<') {
                let end = rest.find('>').expect("closed <key>");
                let name = &rest[1..end];
                let code = match name {
                    "enter" => KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE),
                    "esc" => KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE),
                    "space" => KeyEvent::new(KeyCode::Char(' '), KeyModifiers::NONE),
                    "tab" => KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE),
                    "bs" => KeyEvent::new(KeyCode::Backspace, KeyModifiers::NONE),
                    "up" => KeyEvent::new(KeyCode::Up, KeyModifiers::NONE),
                    "down" => KeyEvent::new(KeyCode::Down, KeyModifiers::NONE),
                    "c-c" => KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
                    "c-u" => KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL),
                    "c-a" => KeyEvent::new(KeyCode::Char('a'), KeyModifiers::CONTROL),
                    "c-d" => KeyEvent::new(KeyCode::Char('d'), KeyModifiers::CONTROL),
                    "s-tab" => KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT),
                    other => panic!("unknown key <{other}>"),
                };
                (code, end + 1)
            } else {
                let c = rest.chars().next().expect("non-empty");
                let mods = if c.is_ascii_uppercase() {
                    KeyModifiers::SHIFT
                } else {
                    KeyModifiers::NONE
                };
                (KeyEvent::new(KeyCode::Char(c), mods), c.len_utf8())
            };
            self.key(key).await;
            rest = &rest[len..];
        }
    }

    /// Tells the console the terminal's size (scrolling stops at the end).
    pub(crate) fn resize(&mut self, width: u16, height: u16) {
        self.dispatch(Action::Resize(width, height));
    }

    /// Moves time on the demo's clock and delivers what the simulator did.
    pub(crate) fn advance(&mut self, by: Duration) {
        self.backend.advance(by);
        self.dispatch(Action::Tick(self.backend.now()));
        self.pump();
    }

    /// As [`Self::advance`], waiting for what travels over HTTP.
    pub(crate) async fn advance_settled(&mut self, by: Duration) {
        self.backend.advance(by);
        self.settle().await;
        self.dispatch(Action::Tick(self.backend.now()));
    }

    /// Moves the cursor to the first row of the current view matching `pred`.
    pub(crate) fn select(&mut self, pred: impl Fn(&AccessRequest) -> bool) -> RequestKey {
        let view = self.state.view;
        let pos = self
            .state
            .list(view)
            .iter()
            .position(|k| pred(&self.state.entries.get(k).unwrap().req))
            .expect("a row matches");
        self.state.cursor[view.index()] = pos;
        // As moving there with keys would: the approver sees the row.
        self.state.selection_gone = None;
        self.dispatch(Action::Tick(self.backend.now()));
        self.state.list(view)[pos].clone()
    }

    /// The request as the console holds it (ended ones are decoded).
    pub(crate) fn req(&self, key: &RequestKey) -> AccessRequest {
        self.state.entries.get(key).unwrap().into_owned().req
    }

    pub(crate) fn phase(&self, key: &RequestKey) -> Phase {
        self.req(key).phase()
    }

    pub(crate) fn in_view(&self, view: View, key: &RequestKey) -> bool {
        self.state.list(view).contains(key)
    }

    pub(crate) fn is_normal(&self) -> bool {
        matches!(self.state.mode, Mode::Normal)
    }

    pub(crate) fn flash(&self) -> String {
        self.state
            .flash
            .as_ref()
            .map(|f| f.text.clone())
            .unwrap_or_default()
    }

    pub(crate) fn terminal(&self, width: u16, height: u16, theme: &Theme) -> Terminal<TestBackend> {
        let mut t = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
        t.draw(|f| view::render(f, &self.state, theme))
            .expect("draw");
        t
    }

    /// The screen as text.
    pub(crate) fn screen(&self, width: u16, height: u16) -> String {
        let t = self.terminal(width, height, &Theme::built_in("default").expect("theme"));
        buffer_text(t.backend().buffer())
    }
}

pub(crate) fn buffer_text(buf: &ratatui::buffer::Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        for x in 0..buf.area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub(crate) fn own(h: &Harness) -> impl Fn(&AccessRequest) -> bool + '_ {
    move |r: &AccessRequest| r.requester.user == h.state.approver.user
}

/// A pending request from someone else that is valid and approvable.
pub(crate) fn approvable(r: &AccessRequest) -> bool {
    r.phase() == Phase::Pending && r.requester.user != "dana" && !r.name.starts_with("mallory")
}

/// The text inside the bordered box whose top border holds `title` (a
/// dialog or a pane), one line per row, borders removed.
pub(crate) fn boxed(screen: &str, title: &str) -> String {
    let lines: Vec<Vec<char>> = screen.lines().map(|l| l.chars().collect()).collect();
    let Some((top, at)) = lines.iter().enumerate().find_map(|(i, l)| {
        let s: String = l.iter().collect();
        s.find(title).map(|b| (i, s[..b].chars().count()))
    }) else {
        panic!("no box titled '{title}' on screen:\n{screen}");
    };
    let left = (0..=at)
        .rev()
        .find(|x| lines[top][*x] == '┌')
        .expect("top-left corner");
    let right = (at..lines[top].len())
        .find(|x| lines[top][*x] == '┐')
        .expect("top-right corner");
    let mut out = Vec::new();
    for l in &lines[top + 1..] {
        if l.get(left) == Some(&'└') {
            break;
        }
        let row: String = l
            .iter()
            .skip(left + 1)
            .take(right.saturating_sub(left + 1))
            .collect();
        out.push(row.trim_end().to_string());
    }
    out.join("\n")
}

/// Text with every run of whitespace (line breaks included) made one space:
/// wrapped sentences read as one.
pub(crate) fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
