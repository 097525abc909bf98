//! Signing in to the server as users of kubelogin, `aws eks get-token` or
//! `gke-gcloud-auth-plugin` have it: the kubeconfig's current context has
//! a user with `exec:`, and `portcullis --backend URL` runs that plugin
//! for its token. The plugin here is a real one (a shell script) that
//! counts its runs and prints an ExecCredential for a demo person (a demo
//! person's name is their token on `portcullis serve --demo`) that expires
//! a few seconds later: verbs and the console sign in with it, keep the
//! token while it is fresh, run the plugin again when it expires or the
//! server refuses it, and a plugin that fails says so in one line.

#![cfg(unix)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::pty::Session;
use common::server::curl;
use serde_json::{json, Value};

const V1: &str = "client.authentication.k8s.io/v1";
const V1BETA1: &str = "client.authentication.k8s.io/v1beta1";

/// The test plugin: one line per run in `$DIR/runs`, the exec info it was
/// given in `$DIR/info`, and an ExecCredential in `$API` whose token is
/// line N of `$DIR/tokens` on the Nth run (the last line after that),
/// expiring `$LIFE` seconds from now.
const PLUGIN: &str = r#"#!/bin/sh
echo run >> "$DIR/runs"
printf '%s' "$KUBERNETES_EXEC_INFO" > "$DIR/info"
n=$(wc -l < "$DIR/runs" | tr -d ' ')
token=$(sed -n "${n}p" "$DIR/tokens")
[ -n "$token" ] || token=$(tail -n 1 "$DIR/tokens")
at=$(( $(date +%s) + LIFE ))
expires=$(date -u -d "@$at" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -r "$at" +%Y-%m-%dT%H:%M:%SZ)
printf '{"apiVersion":"%s","kind":"ExecCredential","status":{"token":"%s","expirationTimestamp":"%s"}}\n' "$API" "$token" "$expires"
"#;

/// A scratch folder with a kubeconfig (in `kube/`, naming the plugin by a
/// path relative to that folder, as kubectl resolves it) whose current
/// context signs in with the plugin.
struct Plugin {
    dir: PathBuf,
    kubeconfig: PathBuf,
}

impl Drop for Plugin {
    /// Kept when the test fails, to look at.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Plugin {
    fn new(what: &str, api: &str, life_secs: u64, tokens: &[&str]) -> Self {
        Self::with_script(what, api, life_secs, tokens, PLUGIN)
    }

    fn with_script(what: &str, api: &str, life_secs: u64, tokens: &[&str], script: &str) -> Self {
        let dir = common::scratch_dir(&format!("exec-{what}"));
        let kube = dir.join("kube");
        std::fs::create_dir_all(&kube).unwrap();
        let plugin = kube.join("plugin.sh");
        std::fs::write(&plugin, script).unwrap();
        std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.join("tokens"), tokens.join("\n") + "\n").unwrap();
        let kubeconfig = kube.join("config");
        std::fs::write(
            &kubeconfig,
            format!(
                r#"apiVersion: v1
kind: Config
current-context: hub
clusters:
- name: hub
  cluster: {{server: "https://hub.invalid"}}
contexts:
- name: hub
  context: {{cluster: hub, user: me}}
users:
- name: me
  user:
    exec:
      apiVersion: {api}
      command: ./plugin.sh
      interactiveMode: Never
      env:
      - {{name: DIR, value: "{dir}"}}
      - {{name: API, value: "{api}"}}
      - {{name: LIFE, value: "{life_secs}"}}
"#,
                dir = dir.display()
            ),
        )
        .unwrap();
        Self { dir, kubeconfig }
    }

    fn runs(&self) -> usize {
        std::fs::read_to_string(self.dir.join("runs"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    /// `portcullis ARGS` signing in through this kubeconfig, run from the
    /// scratch folder (not the kubeconfig's).
    fn portcullis(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(args)
            .current_dir(&self.dir)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", &self.dir)
            .env("XDG_STATE_HOME", self.dir.join("state"))
            .env("XDG_CONFIG_HOME", self.dir.join("config"))
            .env_remove("PORTCULLIS_TOKEN")
            .env_remove("PORTCULLIS_BACKEND")
            .stdin(Stdio::null())
            .output()
            .expect("run portcullis")
    }
}

/// `portcullis serve --demo` on a free loopback port.
struct Demo {
    child: std::process::Child,
    url: String,
    dir: PathBuf,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn serve_demo() -> Demo {
    let port = common::free_port();
    let dir = common::scratch_dir(&format!("exec-serve-{port}"));
    let child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("portcullis serve --demo");
    let demo = Demo {
        child,
        url: format!("http://127.0.0.1:{port}"),
        dir,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while curl(&demo.url, None, "GET", "/readyz", None).0 != 200 {
        assert!(Instant::now() < deadline, "serve --demo never got ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    demo
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_verb_signs_in_with_the_plugin_and_keeps_its_token() {
    let demo = serve_demo();
    let plugin = Plugin::new("verb", V1, 60, &["dana"]);
    let out = plugin.portcullis(&["--backend", &demo.url, "get", "requests", "--all"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("NAME"), "{}", text(&out.stdout));
    // whoami and the list: two calls, one run.
    assert_eq!(plugin.runs(), 1);
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(plugin.dir.join("info")).unwrap()).unwrap();
    assert_eq!(
        info,
        json!({"apiVersion": V1, "kind": "ExecCredential", "spec": {"interactive": false}})
    );
}

#[test]
fn a_v1beta1_plugin_signs_in_too() {
    let demo = serve_demo();
    let plugin = Plugin::new("v1beta1", V1BETA1, 60, &["erin"]);
    let out = plugin.portcullis(&["--backend", &demo.url, "version"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(plugin.dir.join("info")).unwrap()).unwrap();
    assert_eq!(info["apiVersion"], V1BETA1);
    assert_eq!(plugin.runs(), 1);
}

#[test]
fn a_token_the_server_refuses_runs_the_plugin_again_once() {
    let demo = serve_demo();
    // Not a demo person the first time; dana the second.
    let plugin = Plugin::new("refused", V1, 60, &["nobody", "dana"]);
    let out = plugin.portcullis(&["--backend", &demo.url, "get", "requests"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(plugin.runs(), 2);
    // A plugin that only ever gives a refused token: refused, said once.
    let plugin = Plugin::new("refused-always", V1, 60, &["nobody"]);
    let out = plugin.portcullis(&["--backend", &demo.url, "get", "requests"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("the server rejected the token"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(plugin.runs(), 2, "the first try and one renewal, no more");
}

/// What a verb says when its plugin is broken: one line naming the plugin
/// and what it printed, bounded, with no escape byte; exit code 1.
fn one_clear_line(out: &Output) -> String {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err:?}");
    assert!(
        !err.contains('\x1b') && !err.contains("panicked"),
        "{err:?}"
    );
    assert!(err.contains("plugin.sh"), "names the plugin: {err}");
    assert!(
        err.chars().count() < 600,
        "bounded: {} chars",
        err.chars().count()
    );
    err
}

#[test]
fn a_plugin_that_fails_is_one_clear_line() {
    let plugin = Plugin::with_script(
        "fails",
        V1,
        60,
        &["dana"],
        "#!/bin/sh\nprintf 'error: the identity provider said \\033[31mno\\033[0m\\nsecond line\\n' >&2\nexit 1\n",
    );
    // No server is needed: the plugin fails before the first call.
    let out = plugin.portcullis(&["--backend", "http://127.0.0.1:9", "get", "requests"]);
    let err = one_clear_line(&out);
    assert!(
        err.contains("exit code 1") && err.contains("the identity provider said"),
        "{err}"
    );
}

#[test]
fn a_plugin_that_prints_garbage_is_one_bounded_line() {
    let plugin = Plugin::with_script(
        "garbage",
        V1,
        60,
        &["dana"],
        "#!/bin/sh\nprintf '\\033[2J\\033]0;owned\\007Welcome!'\nhead -c 20000 /dev/zero | tr '\\0' x\n",
    );
    let out = plugin.portcullis(&["--backend", "http://127.0.0.1:9", "get", "requests"]);
    let err = one_clear_line(&out);
    assert!(
        err.contains("ExecCredential") && err.contains("Welcome!"),
        "{err}"
    );
}

#[test]
fn a_plugin_that_is_missing_names_its_install_hint() {
    let plugin = Plugin::new("missing", V1, 60, &["dana"]);
    let config = std::fs::read_to_string(&plugin.kubeconfig)
        .unwrap()
        .replace(
        "command: ./plugin.sh",
        "command: ./no-such-plugin.sh\n      installHint: \"plugin.sh is missing: see the wiki\"",
    );
    std::fs::write(&plugin.kubeconfig, config).unwrap();
    let out = plugin.portcullis(&["--backend", "http://127.0.0.1:9", "get", "requests"]);
    let err = one_clear_line(&out);
    assert!(
        err.contains("was not found: plugin.sh is missing: see the wiki"),
        "{err}"
    );
}

/// The console over `--backend`, signed in with a plugin whose tokens live
/// 3 s, across three expiries: each round a request another user makes
/// (curl, with their own token) appears on screen and the console approves
/// it (a call with a token renewed since), and the server never shows as
/// unreachable.
#[test]
fn the_console_keeps_working_across_token_expiries() {
    let demo = serve_demo();
    let plugin = Plugin::new("console", V1, 3, &["dana"]);
    let kubeconfig = plugin.kubeconfig.display().to_string();
    let mut s = Session::start_env(
        &["--backend", &demo.url, "--color", "never"],
        &[("KUBECONFIG", &kubeconfig)],
    );
    s.wait_for("REQUESTER");
    let rounds = 3;
    for round in 1..=rounds {
        let reason = format!("INC-9 look, round {round}");
        // Past the token's expiry.
        std::thread::sleep(Duration::from_millis(3200));
        // A namespace the demo has (asks for others are refused); each
        // round's ask is approved, so the filter shows only the new one.
        let ns = "notifications";
        s.send(b"/");
        s.send(format!("user:erin ns:{ns} \r").as_bytes());
        s.wait_for(&format!("filter: user:erin ns:{ns}"));
        let (code, r) = curl(
            &demo.url,
            Some("erin"),
            "POST",
            "/v1/requests",
            Some(
                &json!({"cluster": "dev-sandbox", "role": {"kind": "ClusterRole", "name": "view"},
                         "namespaces": [ns], "duration": "30m", "reason": reason}),
            ),
        );
        assert_eq!(code, 201, "{r}");
        let name = r["name"].as_str().expect("a name").to_string();
        s.wait_for(&format!("{ns} view"));
        s.send(b"a");
        s.wait_for(&format!("Approve {name}?"));
        s.send(b"y");
        s.wait_for(&format!("Approved {name}"));
        let (code, r) = curl(
            &demo.url,
            Some("erin"),
            "GET",
            &format!("/v1/requests/dev-sandbox/{name}"),
            None,
        );
        assert_eq!(code, 200, "{r}");
        assert_eq!(r["status"]["decision"]["by"], "dana", "{r}");
    }
    let screen = s.screen();
    assert!(!screen.contains("unreachable"), "{screen}");
    // One run at the start (whoami and the stream), one per expired token
    // the console needed; not one per call.
    let runs = plugin.runs();
    assert!(
        (rounds + 1..=2 * rounds + 1).contains(&runs),
        "{runs} runs of the plugin"
    );
    s.send(b"q");
    assert!(s.wait_exit().success());
}

/// The stand-in server of the test below: it ends the first stream as the
/// real one does when its token stops being valid, then refuses that token.
mod stand_in {
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::sse::{Event, Sse};
    use axum::response::{IntoResponse, Response};
    use futures::StreamExt;
    use serde_json::json;
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    pub(super) struct Seen {
        /// (token, Last-Event-ID) of every stream asked for.
        pub(super) streams: Vec<(String, Option<String>)>,
        t1_ended: bool,
    }
    pub(super) type Shared = Arc<Mutex<Seen>>;
    fn bearer(h: &HeaderMap) -> String {
        h.get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default()
            .to_string()
    }
    fn upsert(name: &str, id: &str) -> Result<Event, std::convert::Infallible> {
        Ok(Event::default().event("upsert").id(id).data(
            json!({"name": name, "cluster": "c", "createdAt": "2026-11-27T00:00:00Z",
                   "spec": {"requester": {"user": "erin"}, "role": {"kind": "ClusterRole", "name": "view"},
                            "namespaces": ["x"], "duration": "1h", "reason": "r"}, "status": {}})
            .to_string(),
        ))
    }
    async fn whoami(h: HeaderMap) -> Response {
        if !["t1", "t2"].contains(&bearer(&h).as_str()) {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        axum::Json(json!({"user": "dana", "groups": [], "verified_by": "test",
                          "clusters": ["c"], "approver": true}))
        .into_response()
    }
    async fn events(State(seen): State<Shared>, h: HeaderMap) -> Response {
        let token = bearer(&h);
        let last = h
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut s = seen.lock().unwrap();
        s.streams.push((token.clone(), last));
        match token.as_str() {
            "t1" if !s.t1_ended => {
                s.t1_ended = true;
                let end = Ok(Event::default().event("end").data(
                    json!({"reason": "the token is no longer accepted (expired, revoked or deleted): sign in again"}).to_string(),
                ));
                Sse::new(futures::stream::iter([upsert("first", "e-1"), end])).into_response()
            }
            "t2" => Sse::new(
                futures::stream::iter([upsert("second", "e-2")]).chain(futures::stream::pending()),
            )
            .into_response(),
            _ => StatusCode::UNAUTHORIZED.into_response(),
        }
    }

    /// The stand-in on loopback: its URL, and what it saw.
    pub(super) async fn start() -> (String, Shared) {
        let seen: Shared = Arc::default();
        let app = axum::Router::new()
            .route("/v1/whoami", axum::routing::get(whoami))
            .route("/v1/events", axum::routing::get(events))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, seen)
    }
}

/// A server (a small stand-in) that ends the first stream as the real one
/// does when its token stops being valid, then refuses that token: the
/// backend runs the plugin again and resumes from the last event id, and
/// the console is told of no outage.
#[tokio::test]
async fn a_stream_ended_for_its_token_resumes_with_a_renewed_one() {
    use portcullis::backend::AccessBackend;

    let _ = rustls::crypto::ring::default_provider().install_default();
    let (url, seen) = stand_in::start().await;
    // Tokens that live an hour: only the server's refusal renews them.
    let plugin = Plugin::new("stream", V1, 3600, &["t1", "t2"]);
    let http = sign_in_with_the_plugin(&url, &plugin).await;
    let mut rx = http.watch();
    let names = two_upserts_and_no_outage(&mut rx).await;
    assert_eq!(names, ["first", "second"]);
    assert_eq!(plugin.runs(), 2);
    the_refused_token_renewed_resumes(&seen);
}

/// The backend signs in to `url` with the plugin's tokens.
async fn sign_in_with_the_plugin(
    url: &str,
    plugin: &Plugin,
) -> portcullis::backend::http::HttpBackend {
    use portcullis::backend::http::credentials::{BearerSource, ExecPlugin};
    use portcullis::backend::http::HttpBackend;

    let exec: kube::config::ExecConfig = serde_json::from_value(json!({
        "apiVersion": V1,
        "command": plugin.kubeconfig.parent().unwrap().join("plugin.sh"),
        "env": [{"name": "DIR", "value": plugin.dir}, {"name": "API", "value": V1},
                {"name": "LIFE", "value": "3600"}],
    }))
    .unwrap();
    let credentials = BearerSource::exec(ExecPlugin::from_config(&exec, None).unwrap());
    HttpBackend::connect(url, credentials, None).await.unwrap()
}

/// The first stream's request, then the second's; never an outage.
async fn two_upserts_and_no_outage(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<portcullis::backend::BackendEvent>,
) -> Vec<String> {
    use portcullis::backend::BackendEvent;

    let mut names = Vec::new();
    while names.len() < 2 {
        let event = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("the second stream's event")
            .expect("the stream goes on");
        match event {
            BackendEvent::Upsert(r) => names.push(r.name.clone()),
            BackendEvent::Connection { error } => {
                panic!("the console was told of an outage: {error:?}")
            }
            _ => {}
        }
    }
    names
}

/// The held token, refused, then the renewed one, resuming after e-1.
fn the_refused_token_renewed_resumes(seen: &stand_in::Shared) {
    let streams = seen.lock().unwrap().streams.clone();
    let e1 = Some("e-1".to_string());
    assert_eq!(
        streams,
        [
            ("t1".to_string(), None),
            ("t1".to_string(), e1.clone()),
            ("t2".to_string(), e1)
        ],
        "the held token, refused, then the renewed one, resuming after e-1"
    );
}
