//! Drives the real reducer, effect executor and demo backend (on a manual
//! clock) the way the event loop does, from key strings.

#![allow(dead_code)]

pub mod cluster;

use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use portcullis::app::state::{AppConfig, Mode, View};
use portcullis::app::{update, Action, AppState, Effect};
use portcullis::backend::demo::{DemoBackend, DemoConfig};
use portcullis::backend::{AccessBackend, BackendEvent, RequestKey};
use portcullis::domain::{AccessRequest, Phase};
use portcullis::runtime::{drain, execute};
use portcullis::ui::{self, Theme};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use tokio::sync::mpsc::UnboundedReceiver;

pub struct Harness {
    pub backend: Arc<DemoBackend>,
    pub state: AppState,
    events: UnboundedReceiver<BackendEvent>,
    /// Every effect the reducer asked for, in order.
    pub effects: Vec<Effect>,
}

impl Harness {
    pub fn new(seed: u64) -> Self {
        Self::with(
            DemoConfig {
                seed,
                rate: Duration::ZERO,
                ..Default::default()
            },
            AppConfig::default(),
        )
    }

    pub fn with(demo: DemoConfig, config: AppConfig) -> Self {
        let backend = Arc::new(DemoBackend::manual(demo));
        let info = backend.info();
        let state = AppState::new(config, info.approver, info.kind, backend.now());
        let events = backend.watch();
        let mut h = Self {
            backend,
            state,
            events,
            effects: Vec::new(),
        };
        h.pump();
        h
    }

    /// Delivers waiting backend events, as the event loop does.
    pub fn pump(&mut self) {
        if let Ok(first) = self.events.try_recv() {
            let batch = drain(first, &mut self.events);
            self.dispatch(Action::Backend(batch));
        }
    }

    fn dispatch(&mut self, action: Action) -> Vec<Effect> {
        update(&mut self.state, action)
    }

    /// Sends one key and runs whatever effects it asks for to completion.
    pub async fn key(&mut self, key: KeyEvent) {
        let effects = self.dispatch(Action::Key(key));
        self.run(effects).await;
    }

    pub async fn run(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            self.effects.push(effect.clone());
            if let Some(done) = execute(self.backend.as_ref() as &dyn AccessBackend, effect).await {
                self.dispatch(done);
            }
        }
        self.pump();
    }

    /// Types keys: plain characters, plus `<enter>`, `<esc>`, `<space>`,
    /// `<tab>`, `<bs>`, `<up>`, `<down>`, `<c-c>`.
    pub async fn press(&mut self, keys: &str) {
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

    /// Moves time on the demo's clock and delivers what the simulator did.
    pub fn advance(&mut self, by: Duration) {
        self.backend.advance(by);
        self.dispatch(Action::Tick(self.backend.now()));
        self.pump();
    }

    /// Moves the cursor to the first row of the current view matching `pred`.
    pub fn select(&mut self, pred: impl Fn(&AccessRequest) -> bool) -> RequestKey {
        let view = self.state.view;
        let pos = self
            .state
            .list(view)
            .iter()
            .position(|k| pred(&self.state.entries[k].req))
            .expect("a row matches");
        self.state.cursor[view.index()] = pos;
        self.dispatch(Action::Tick(self.backend.now()));
        self.state.list(view)[pos].clone()
    }

    pub fn req(&self, key: &RequestKey) -> &AccessRequest {
        &self.state.entries[key].req
    }

    pub fn phase(&self, key: &RequestKey) -> Phase {
        self.req(key).phase()
    }

    pub fn in_view(&self, view: View, key: &RequestKey) -> bool {
        self.state.list(view).contains(key)
    }

    pub fn is_normal(&self) -> bool {
        matches!(self.state.mode, Mode::Normal)
    }

    pub fn flash(&self) -> String {
        self.state
            .flash
            .as_ref()
            .map(|f| f.text.clone())
            .unwrap_or_default()
    }

    pub fn terminal(&self, width: u16, height: u16, theme: &Theme) -> Terminal<TestBackend> {
        let mut t = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
        t.draw(|f| ui::render(f, &self.state, theme)).expect("draw");
        t
    }

    /// The screen as text.
    pub fn screen(&self, width: u16, height: u16) -> String {
        let t = self.terminal(width, height, &Theme::built_in("default").expect("theme"));
        buffer_text(t.backend().buffer())
    }
}

pub fn buffer_text(buf: &ratatui::buffer::Buffer) -> String {
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

pub fn own(h: &Harness) -> impl Fn(&AccessRequest) -> bool + '_ {
    move |r: &AccessRequest| r.requester.user == h.state.approver.user
}

/// A pending request from someone else that is valid and approvable.
pub fn approvable(r: &AccessRequest) -> bool {
    r.phase() == Phase::Pending && r.requester.user != "dana" && !r.name.starts_with("mallory")
}
