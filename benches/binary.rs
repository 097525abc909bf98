//! The real binary at real scale, on a real apiserver:
//! `cargo bench --bench binary -- 5000 20000 100000` (the default), or
//! `-- --quick` for 1,000.
//!
//! Starts the test control plane (`scripts/control-plane`) with Portcullis
//! installed and a reaper running (`portcullis reaper`, as a cluster has
//! one), then grows the store to each size in a realistic mix: 1 in 20
//! pending, 1 in 20 a live grant (approved for real: bindings, finalizer,
//! release binding), the rest ended (denied, revoked after approval,
//! withdrawn); 500 requesters, three roles, two namespaces. At each size:
//!
//! - the console (`portcullis --context bob`, 200×50 pseudo-terminal):
//!   launch → the header counts every pending and live request; resident
//!   memory then; `kubectl create` of one more request → counted on screen,
//!   beside kubectl's own time;
//! - the server (`portcullis serve`, the same cluster as hub and target):
//!   resident memory; 100 approver streams, a request created on the
//!   apiserver → the upsert on each stream (p50/p99, first to last);
//! - `portcullis approve` as a process vs `kubectl create rolebinding`,
//!   interleaved pairs, the median of each and their ratio;
//! - etcd's database size per request.
//!
//! It takes minutes (most of it storing requests); it is not part of
//! `./scripts/test`. `-- --hold 20000` stores 20,000 and keeps the control
//! plane running (it prints the KUBECONFIG) to try the binary by hand.

#[path = "../tests/common/cluster.rs"]
mod cluster;
#[path = "common/mod.rs"]
mod common;
#[path = "../tests/common/http.rs"]
mod http;
#[path = "../tests/common/server.rs"]
mod server;

use cluster::free_port;

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use portable_pty::{native_pty_system, CommandBuilder, PtySize};
use portcullis::backend::kube::{request_resource, KubeBackend, KubeCluster};
use portcullis::backend::{AccessBackend, ApproveSpec, RequestKey};
use portcullis::crd::wire;
use portcullis::domain::request::Approval;
use portcullis::domain::ValidationLimits;
use serde_json::{json, Value};

const ROLES: [&str; 3] = ["view", "edit", "admin"];
const NAMESPACES: [&str; 2] = ["payments", "orders"];
const REQUESTERS: usize = 500;
/// Requests stored at once while growing the store.
const IN_FLIGHT: usize = 16;

/// What request `i` of the mix becomes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    Pending,
    Live,
    Denied,
    Revoked,
    Withdrawn,
}

fn fate(i: usize) -> Fate {
    match i % 20 {
        0 => Fate::Pending,
        1 => Fate::Live,
        n => match n % 3 {
            0 => Fate::Denied,
            1 => Fate::Revoked,
            _ => Fate::Withdrawn,
        },
    }
}

/// What the header should count: pending and live requests as the
/// apiserver holds them now.
#[derive(Default, Clone, Copy)]
struct Counts {
    pending: usize,
    live: usize,
}

/// Counts the stored requests by phase (one paginated list).
async fn counted_on_the_apiserver(admin: &KubeCluster) -> Counts {
    let api = requests_api(admin);
    let mut counts = Counts::default();
    let mut params = kube::api::ListParams::default().limit(2000);
    loop {
        let page = api.list(&params).await.expect("list requests");
        for o in &page.items {
            match o.data["status"]["phase"].as_str().unwrap_or("Pending") {
                "Pending" => counts.pending += 1,
                "Active" => counts.live += 1,
                _ => {}
            }
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => params = params.continue_token(&c),
            None => return counts,
        }
    }
}

struct Setup {
    cp: cluster::ControlPlane,
    admin: Arc<KubeCluster>,
    bob: KubeBackend,
    reaper: Child,
    stored: usize,
    counts: Counts,
    /// Requests the benchmark added (names unique across sizes).
    extra: usize,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = self.reaper.kill();
        let _ = self.reaper.wait();
    }
}

fn portcullis(cp: &cluster::ControlPlane) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    c.env("KUBECONFIG", cp.kubeconfig())
        .env("XDG_STATE_HOME", cp.dir.join("state"))
        .env("XDG_CONFIG_HOME", cp.dir.join("config"))
        .env_remove("PORTCULLIS_TOKEN");
    c
}

fn kubectl(cp: &cluster::ControlPlane, args: &[&str]) -> Duration {
    let t = Instant::now();
    let out = Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", cp.kubeconfig())
        .output()
        .expect("kubectl (apt-get install kubernetes-client)");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed()
}

/// `--hold`: store the first size, then keep the control plane running
/// for a person to try the binary on it.
fn hold() -> bool {
    std::env::args().any(|a| a == "--hold")
}

fn sizes() -> Vec<usize> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--quick") {
        return vec![1_000];
    }
    let given: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    if given.is_empty() {
        vec![5_000, 20_000, 100_000]
    } else {
        given
    }
}

fn main() {
    if std::env::args().any(|a| a == "--test") {
        return; // `cargo test --benches` only checks that it builds
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let cp = cluster::ControlPlane::start();
    let admin = server::install_server(&cp).await;
    let bob = KubeBackend::from_clusters(vec![cp.cluster("bob").await]);
    let reaper = portcullis(&cp)
        .args(["--context", "reaper", "reaper", "--listen"])
        .arg(format!("127.0.0.1:{}", free_port()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("portcullis reaper");
    let mut s = Setup {
        cp,
        admin,
        bob,
        reaper,
        stored: 0,
        counts: Counts::default(),
        extra: 0,
    };
    println!("kube-apiserver {}.{}", s.cp.version.0, s.cp.version.1);
    println!("\n== 0 requests ==");
    console(&mut s, false).await;
    for n in sizes() {
        grow(&mut s, n).await;
        s.counts = counted_on_the_apiserver(&s.admin).await;
        let all = s.stored + s.extra;
        println!(
            "\n== {all} requests stored ({} pending, {} live, {} ended; {} of them added by the benchmark's own steps) ==",
            s.counts.pending,
            s.counts.live,
            all - s.counts.pending - s.counts.live,
            s.extra
        );
        etcd_bytes(&s);
        if hold() {
            println!(
                "holding: KUBECONFIG={} (Ctrl-C ends it)",
                s.cp.kubeconfig().display()
            );
            tokio::signal::ctrl_c().await.ok();
            return;
        }
        console(&mut s, true).await;
        serve(&mut s).await;
        approve_vs_kubectl(&mut s).await;
    }
}

fn requests_api(c: &KubeCluster) -> Api<DynamicObject> {
    Api::all_with(c.client.clone(), &request_resource())
}

/// Grows the store to `n` requests of the mix.
async fn grow(s: &mut Setup, n: usize) {
    if n <= s.stored {
        return;
    }
    let t = Instant::now();
    let from = s.stored;
    futures::stream::iter(from..n)
        .map(|i| store_one(&s.admin, &s.bob, i))
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<Fate>>()
        .await;
    s.stored += n - from;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "stored {} requests in {secs:.0} s ({:.0}/s)",
        n - from,
        (n - from) as f64 / secs
    );
    // The reaper provisions the new live grants' release bindings: let it
    // finish before anything is measured.
    tokio::time::sleep(Duration::from_secs(5)).await;
}

fn new_object(i: usize, name: &str) -> DynamicObject {
    let user = format!("u{:03}", i % REQUESTERS);
    serde_json::from_value(json!({
        "apiVersion": "portcullis.dev/v1alpha1", "kind": "AccessRequest",
        "metadata": {"name": name},
        "spec": {"requester": {"user": user, "groups": ["dev"]},
                 "role": {"kind": "ClusterRole", "name": ROLES[i % ROLES.len()]},
                 "namespaces": [NAMESPACES[i % NAMESPACES.len()]],
                 "duration": "8h",
                 "reason": format!("INC-{i}: the scale benchmark's request {i} of its mix")}
    }))
    .expect("an AccessRequest")
}

/// Stores request `i` of the mix as its fate says.
async fn store_one(admin: &KubeCluster, bob: &KubeBackend, i: usize) -> Fate {
    let api = requests_api(admin);
    let name = format!("scale-{i:06}");
    let created = loop {
        match api
            .create(&PostParams::default(), &new_object(i, &name))
            .await
        {
            Ok(o) => break o,
            Err(kube::Error::Api(e)) if e.code == 409 => {
                break api.get(&name).await.expect("the request just stored")
            }
            Err(e) => {
                eprintln!("store {name}: {e}; again");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let f = fate(i);
    match f {
        Fate::Pending => {}
        Fate::Live => {
            let key = RequestKey {
                cluster: "test".into(),
                name: name.clone(),
            };
            let spec = ApproveSpec {
                duration: Duration::from_secs(8 * 3600),
                namespaces: vec![NAMESPACES[i % NAMESPACES.len()].into()],
                reason: None,
            };
            bob.approve(&key, spec).await.expect("bob approves");
        }
        ended => end(&api, &created, ended).await,
    }
    f
}

/// Writes an ended request's status as Portcullis would have.
async fn end(api: &Api<DynamicObject>, created: &DynamicObject, how: Fate) {
    let value = serde_json::to_value(created).expect("json");
    let mut req = wire::request_from_json("test", &value);
    let now = chrono::Utc::now();
    let limits = ValidationLimits::default();
    let ok = match how {
        Fate::Denied => req.deny("bob", now, "not during the freeze"),
        Fate::Withdrawn => req.withdraw(&req.requester.user.clone(), now),
        _ => {
            let approval = Approval {
                by: "bob".into(),
                at: now,
                duration: Duration::from_secs(3600),
                namespaces: req.namespaces.clone(),
                reason: None,
            };
            req.approve(approval, &limits)
                .and_then(|()| req.revoke("carol", now, "incident closed"))
        }
    };
    ok.expect("a valid ending");
    let patch = json!({"status": wire::status_json(&req)});
    let name = created.metadata.name.clone().unwrap_or_default();
    while let Err(e) = api
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        eprintln!("end {name}: {e}; again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// etcd's database: its size on disk and the part in use (what
/// compaction keeps), over the requests stored.
fn etcd_bytes(s: &Setup) {
    let (code, body) = http::send(
        "GET",
        &format!("{}/metrics", s.cp.etcd_url()),
        None,
        "text/plain",
        None,
    );
    let metric = |name: &str| -> Option<f64> {
        body.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().last()?.parse().ok())
    };
    let (Some(total), Some(in_use)) = (
        metric("etcd_mvcc_db_total_size_in_bytes "),
        metric("etcd_mvcc_db_total_size_in_use_in_bytes "),
    ) else {
        println!("etcd size: its /metrics answered {code} without the sizes");
        return;
    };
    let per = |b: f64| b / 1024.0 / s.stored.max(1) as f64;
    println!(
        "etcd database: {:.1} MiB on disk ({:.2} KiB per request), {:.1} MiB in use ({:.2} KiB per request)",
        total / 1048576.0,
        per(total),
        in_use / 1048576.0,
        per(in_use)
    );
}

/// A process in a pseudo-terminal with the screen kept current (vt100),
/// so the screen can be read as often as needed.
struct Screen {
    child: Box<dyn portable_pty::Child + Send + Sync>,
    writer: Box<dyn Write + Send>,
    parser: Arc<Mutex<vt100::Parser>>,
    _master: Box<dyn portable_pty::MasterPty + Send>,
}

impl Screen {
    fn start(cmd: CommandBuilder, rows: u16, cols: u16) -> Self {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("openpty");
        let child = pair.slave.spawn_command(cmd).expect("spawn");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("reader");
        let writer = pair.master.take_writer().expect("writer");
        let parser = Arc::new(Mutex::new(vt100::Parser::new(rows, cols, 0)));
        let sink = parser.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().process(&buf[..n]);
            }
        });
        Screen {
            child,
            writer,
            parser,
            _master: pair.master,
        }
    }

    fn text(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    /// Polls the screen until it holds `want`; the time from `since`.
    fn until(&self, want: &str, since: Instant, limit: Duration) -> Option<Duration> {
        while since.elapsed() < limit {
            if self.text().contains(want) {
                return Some(since.elapsed());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        None
    }

    fn pid(&self) -> String {
        self.child
            .process_id()
            .map(|p| p.to_string())
            .unwrap_or_default()
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = self.writer.write_all(b"q");
        std::thread::sleep(Duration::from_millis(300));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// The console: launch → every request counted; memory; one more request
/// created with kubectl → counted on screen (when `arrivals`).
async fn console(s: &mut Setup, arrivals: bool) {
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.args(["--context", "bob", "--color", "never"]);
    cmd.env("KUBECONFIG", s.cp.kubeconfig());
    cmd.env("HOME", &s.cp.dir);
    cmd.env("XDG_STATE_HOME", s.cp.dir.join("state"));
    cmd.env("XDG_CONFIG_HOME", s.cp.dir.join("config"));
    cmd.env("TERM", "xterm-256color");
    cmd.env_remove("PORTCULLIS_TOKEN");
    let counted = |c: Counts| format!("pending {}  live {} ", c.pending, c.live);
    let launched = Instant::now();
    let screen = Screen::start(cmd, 50, 200);
    let limit = Duration::from_secs(300);
    match screen.until(&counted(s.counts), launched, limit) {
        Some(t) => println!(
            "console: launch → header counts all {} pending and {} live: {}",
            s.counts.pending,
            s.counts.live,
            ms(t)
        ),
        None => println!(
            "console: never counted them all within {limit:?}; the screen:\n{}",
            screen.text()
        ),
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    println!(
        "console: resident memory: {}",
        mib(common::rss_kib_of(&screen.pid()))
    );
    if !arrivals {
        return;
    }
    let (mut by_kubectl, mut to_screen) = (Vec::new(), Vec::new());
    for _ in 0..10 {
        s.extra += 1;
        let path = s.cp.dir.join("one-more.yaml");
        let name = format!("kubectl-{:06}", s.extra);
        let mut obj = serde_json::to_value(new_object(1, &name)).expect("json");
        obj["spec"]["requester"] = json!({"user": "alice", "groups": ["dev"]});
        std::fs::write(&path, obj.to_string()).expect("write");
        s.counts.pending += 1;
        let t = Instant::now();
        let path = path.to_string_lossy().into_owned();
        by_kubectl.push(kubectl(
            &s.cp,
            &["--context", "alice", "create", "-f", &path],
        ));
        match screen.until(&counted(s.counts), t, Duration::from_secs(10)) {
            Some(d) => to_screen.push(d),
            None => println!("console: {name} never counted within 10 s"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if !to_screen.is_empty() {
        println!(
            "console: `kubectl create` of one more → counted on screen: median {} (kubectl itself: median {})",
            ms(median(to_screen)),
            ms(median(by_kubectl))
        );
    }
    println!(
        "console: resident memory after: {}",
        mib(common::rss_kib_of(&screen.pid()))
    );
}

/// The server with this cluster as its hub and its one target.
async fn serve(s: &mut Setup) {
    let config = s.cp.dir.join("bench-server.toml");
    std::fs::write(
        &config,
        "hub = \"server\"\napprovers = [\"group:oncall\"]\n[clusters.test]\ncontext = \"server\"\n",
    )
    .expect("config");
    let started = Instant::now();
    let Some(served) = serve_patiently(&s.cp, &config) else {
        println!("server: not ready within 10 minutes");
        return;
    };
    println!(
        "server: start → ready (its audit log records what it had not seen): {}",
        ms(started.elapsed())
    );
    let pid = served.child.id().to_string();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, String, Instant)>();
    // Waited for by the streams' task and this one.
    let ready = Arc::new(tokio::sync::Barrier::new(101));
    let client = reqwest::Client::new();
    for c in 0..100 {
        let (client, url, ready, tx) = (
            client.clone(),
            served.url.clone(),
            ready.clone(),
            tx.clone(),
        );
        tokio::spawn(async move {
            let r = client
                .get(format!("{url}/v1/events"))
                .bearer_auth(cluster::token("bob"))
                .send()
                .await
                .expect("a stream");
            let mut events = eventsource_stream::Eventsource::eventsource(r.bytes_stream());
            let mut synced = false;
            while let Some(Ok(e)) = events.next().await {
                if e.event == "snapshot-done" && !synced {
                    synced = true;
                    ready.wait().await;
                } else if synced && e.event == "upsert" && e.data.contains("fanout-") {
                    let v: Value = serde_json::from_str(&e.data).unwrap_or(Value::Null);
                    let name = v["name"].as_str().unwrap_or_default().to_string();
                    let _ = tx.send((c, name, Instant::now()));
                }
            }
        });
    }
    ready.wait().await;
    println!(
        "server: start → 100 approver streams past their snapshot: {}",
        ms(started.elapsed())
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "server: resident memory with 100 streams: {}",
        mib(common::rss_kib_of(&pid))
    );
    fan_out(s, &mut rx).await;
    println!(
        "server: resident memory after: {}",
        mib(common::rss_kib_of(&pid))
    );
}

/// `portcullis serve` as the tests start it, waiting as long as a first
/// start over 100,000 requests takes (it records the history of every
/// request its audit log does not have yet).
fn serve_patiently(cp: &cluster::ControlPlane, config: &std::path::Path) -> Option<server::Served> {
    let port = free_port();
    let log = std::fs::File::create(cp.dir.join(format!("serve-{port}.log"))).ok()?;
    let child = portcullis(cp)
        .args(["serve", "--config"])
        .arg(config)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("portcullis serve");
    let served = server::Served {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(600);
    while Instant::now() < deadline {
        if server::curl(&served.url, None, "GET", "/readyz", None).0 == 200 {
            return Some(served);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// A request created on the apiserver → its upsert on each of the 100
/// approver streams.
async fn fan_out(
    s: &mut Setup,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<(usize, String, Instant)>,
) {
    let api = requests_api(&s.admin);
    let (mut each, mut spread) = (Vec::new(), Vec::new());
    for _ in 0..30 {
        s.extra += 1;
        s.counts.pending += 1;
        let name = format!("fanout-{:06}", s.extra);
        let t = Instant::now();
        api.create(&PostParams::default(), &new_object(0, &name))
            .await
            .expect("create");
        let mut got = std::collections::HashSet::new();
        let (mut first, mut last) = (None, t);
        while got.len() < 100 {
            let Ok(Some((c, n, at))) =
                tokio::time::timeout(Duration::from_secs(10), rx.recv()).await
            else {
                println!(
                    "server: {name} reached {} of 100 streams within 10 s",
                    got.len()
                );
                break;
            };
            if n == name && got.insert(c) {
                each.push(at - t);
                first.get_or_insert(at);
                last = last.max(at);
            }
        }
        if let Some(first) = first {
            spread.push(last - first);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    each.sort();
    let p = |q: f64| common::ms(common::percentile(&each, q));
    println!(
        "server: created on the apiserver → upsert on each of 100 streams ({} samples): p50 {}  p99 {}  max {}; first → last stream: median {}  max {}",
        each.len(),
        p(0.5),
        p(0.99),
        p(1.0),
        ms(median(spread.clone())),
        ms(spread.iter().max().copied().unwrap_or_default())
    );
}

/// `portcullis approve` and `kubectl create rolebinding`, in interleaved
/// pairs (same machine load for both).
async fn approve_vs_kubectl(s: &mut Setup) {
    let api = requests_api(&s.admin);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        s.extra += 1;
        let name = format!("approve-{:06}", s.extra);
        let mut obj = new_object(1, &name);
        obj.data["spec"]["role"]["name"] = json!("view");
        api.create(&PostParams::default(), &obj)
            .await
            .expect("create");
        s.counts.live += 1;
        let t = Instant::now();
        let out = portcullis(&s.cp)
            .args(["--context", "bob", "approve", &name])
            .output()
            .expect("portcullis approve");
        ours.push(t.elapsed());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let binding = format!("by-kubectl-{:06}", s.extra);
        theirs.push(kubectl(
            &s.cp,
            &[
                "--context",
                "bob",
                "create",
                "rolebinding",
                &binding,
                "--clusterrole",
                "view",
                "--user",
                "alice",
                "-n",
                "orders",
            ],
        ));
    }
    let (a, k) = (median(ours), median(theirs));
    println!(
        "approve: `portcullis approve` median {} vs `kubectl create rolebinding` median {}: {:.2}×",
        ms(a),
        ms(k),
        a.as_secs_f64() / k.as_secs_f64()
    );
}
