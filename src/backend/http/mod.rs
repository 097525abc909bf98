//! The `http` backend: the console and the verbs against the Portcullis
//! server (`portcullis serve`). JSON over HTTP with reqwest; live through
//! the server's event stream (server-sent events), resumed after a
//! reconnect with `Last-Event-ID` so nothing is lost or doubled; while the
//! server is unreachable the header says so and the console keeps what it
//! has. The bearer token comes from [`credentials::BearerSource`], asked
//! on every call and every (re)connect, renewed when the server refuses it.

pub mod credentials;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::kube::clock::{parse_http_date, ClusterClock};
use super::{
    AccessBackend, BackendError, BackendEvent, BackendInfo, NewRequest, Op, RequestKey, Seen,
};
use crate::api::{self, events, ApiError, WhoAmI};
use crate::domain::rbac::Inventory;
use crate::domain::{duration, AccessRequest, Credentials, Subject};
use credentials::BearerSource;

pub struct HttpBackend {
    base: String,
    client: reqwest::Client,
    /// Where the bearer token comes from (not a grant's credentials).
    bearer: Arc<BearerSource>,
    who: WhoAmI,
    clock: Arc<ClusterClock>,
}

/// Whether a URL's host is this machine.
fn is_loopback(url: &str) -> bool {
    let Some(host) = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
    else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn unreachable(base: &str, e: impl std::fmt::Display) -> BackendError {
    BackendError::Unavailable {
        cluster: "server".into(),
        message: format!("{base} is unreachable: {e}"),
    }
}

impl HttpBackend {
    /// Connects and asks the server who the token belongs to.
    /// `bearer`: where the token comes from (`"dana".into()` is a fixed
    /// token). `ca_pem`: a CA to trust for the server's certificate,
    /// besides the system's.
    pub async fn connect(
        url: &str,
        bearer: BearerSource,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, BackendError> {
        let base = url.trim_end_matches('/').to_string();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(BackendError::Config(format!(
                "--backend {base}: give an http:// or https:// URL"
            )));
        }
        if base.starts_with("http://") && !is_loopback(&base) {
            // The bearer token (an OIDC or cloud sign-in token, good for
            // more than this server) would cross the network in clear.
            return Err(BackendError::Config(format!(
                "--backend {base}: plain http only on this machine (127.0.0.1, ::1, localhost); use https:// (your sign-in token would cross the network in clear)"
            )));
        }
        let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(5));
        if let Some(pem) = ca_pem {
            let cert = reqwest::Certificate::from_pem(pem).map_err(|e| {
                BackendError::Config(format!("the CA file is not a PEM certificate: {e}"))
            })?;
            builder = builder.add_root_certificate(cert);
        }
        let client = builder
            .build()
            .map_err(|e| BackendError::Config(format!("cannot set up HTTPS: {e}")))?;
        let clock = Arc::new(ClusterClock::default());
        let mut me = Self {
            base,
            client,
            bearer: Arc::new(bearer),
            who: WhoAmI {
                user: String::new(),
                groups: Vec::new(),
                verified_by: String::new(),
                clusters: Vec::new(),
                approver: false,
                server_version: None,
            },
            clock,
        };
        let who = me.get("/v1/whoami", None).await?;
        me.who = serde_json::from_value(who)
            .map_err(|e| BackendError::Invalid(format!("the server's whoami: {e}")))?;
        Ok(me)
    }

    pub fn whoami(&self) -> &WhoAmI {
        &self.who
    }

    /// One call with the current token; refused (401), once more with a
    /// renewed one, if there is one (the token expired or was revoked
    /// since it was issued).
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        key: Option<&RequestKey>,
    ) -> Result<Value, BackendError> {
        let token = self.bearer.token().await?;
        let again = request.try_clone();
        let mut response = self.deliver(request, &token).await?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            if let Some(again) = again {
                if let Some(fresh) = self.bearer.renewed(&token).await? {
                    response = self.deliver(again, &fresh).await?;
                }
            }
        }
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let error: ApiError = serde_json::from_value(body["error"].clone()).unwrap_or_else(|_| {
            ApiError::new(
                status.as_u16(),
                "Error",
                format!("the server answered {status}"),
            )
        });
        Err(backend_error(error, key))
    }

    /// Sends with `token`; the answer's Date sets the clock.
    async fn deliver(
        &self,
        request: reqwest::RequestBuilder,
        token: &str,
    ) -> Result<reqwest::Response, BackendError> {
        let sent = Instant::now();
        let response = request
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| unreachable(&self.base, e))?;
        if let Some(date) = response
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_http_date)
        {
            self.clock.record(sent, Instant::now(), date);
        }
        Ok(response)
    }

    async fn get(&self, path: &str, key: Option<&RequestKey>) -> Result<Value, BackendError> {
        self.send(self.client.get(format!("{}{path}", self.base)), key)
            .await
    }

    async fn act(
        &self,
        key: &RequestKey,
        action: &str,
        body: Value,
    ) -> Result<AccessRequest, BackendError> {
        let url = format!(
            "{}/v1/requests/{}/{}/{action}",
            self.base,
            urlencode(&key.cluster),
            urlencode(&key.name)
        );
        let v = self
            .send(self.client.post(url).json(&body), Some(key))
            .await?;
        Ok(api::request_from_json(&v))
    }

    /// Every request the server holds.
    pub async fn list(&self) -> Result<Vec<AccessRequest>, BackendError> {
        let v = self.get("/v1/requests", None).await?;
        Ok(v["items"]
            .as_array()
            .map(|items| items.iter().map(api::request_from_json).collect())
            .unwrap_or_default())
    }

    pub async fn get_request(&self, key: &RequestKey) -> Result<AccessRequest, BackendError> {
        let v = self
            .get(
                &format!(
                    "/v1/requests/{}/{}",
                    urlencode(&key.cluster),
                    urlencode(&key.name)
                ),
                Some(key),
            )
            .await?;
        Ok(api::request_from_json(&v))
    }
}

/// A kubeconfig from the server holds bearer tokens and nothing else: no
/// exec plugin or auth provider a server could make the user's kubectl
/// run.
fn only_tokens(kubeconfig: &str) -> Result<(), BackendError> {
    let bad =
        |why: &str| BackendError::Invalid(format!("the server's kubeconfig is refused: {why}"));
    let v: Value = serde_yaml_ng::from_str(kubeconfig).map_err(|_| bad("not YAML"))?;
    let users = v["users"].as_array().ok_or_else(|| bad("no users"))?;
    for u in users {
        let user = u["user"]
            .as_object()
            .ok_or_else(|| bad("a user without credentials"))?;
        if user.keys().any(|k| k != "token") || !user.get("token").is_some_and(Value::is_string) {
            return Err(bad("a user signs in with more than a token"));
        }
    }
    Ok(())
}

impl HttpBackend {
    /// A kubeconfig for the caller's own live Token-mode grant, with a
    /// token the server minted for the grant's ServiceAccount.
    pub async fn credentials(&self, key: &RequestKey) -> Result<String, BackendError> {
        let url = format!(
            "{}/v1/requests/{}/{}/credentials",
            self.base,
            urlencode(&key.cluster),
            urlencode(&key.name)
        );
        let v = self
            .send(self.client.post(url).json(&json!({})), Some(key))
            .await?;
        let text = v["kubeconfig"].as_str().ok_or_else(|| {
            BackendError::Invalid("the server's answer holds no kubeconfig".into())
        })?;
        only_tokens(text)?;
        Ok(text.to_string())
    }

    /// The server's audit records (newest last) matching the query
    /// (`request`, `user`, `since` as RFC 3339).
    pub async fn audit(
        &self,
        query: &[(&str, String)],
    ) -> Result<Vec<crate::audit::Sealed>, BackendError> {
        let q: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect();
        let path = if q.is_empty() {
            "/v1/audit".to_string()
        } else {
            format!("/v1/audit?{}", q.join("&"))
        };
        let v = self.get(&path, None).await?;
        Ok(v["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| serde_json::from_value(i.clone()).ok())
                    .collect()
            })
            .unwrap_or_default())
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What the console has been told exists, to drop what a snapshot lacks.
#[derive(Default)]
struct Held {
    known: BTreeSet<RequestKey>,
    snapshot: Option<BTreeSet<RequestKey>>,
}

/// One SSE event as backend events (none for bookkeeping ones).
fn translate(event: &str, data: &str, seen: &mut Held) -> Vec<BackendEvent> {
    let Ok(v) = serde_json::from_str::<Value>(data) else {
        return Vec::new();
    };
    let key = |v: &Value| RequestKey {
        cluster: v["cluster"].as_str().unwrap_or_default().to_string(),
        name: v["name"].as_str().unwrap_or_default().to_string(),
    };
    let cluster = || v["cluster"].as_str().unwrap_or_default().to_string();
    match event {
        events::UPSERT => {
            let r = api::request_from_json(&v);
            let k = RequestKey::of(&r);
            if let Some(s) = &mut seen.snapshot {
                s.insert(k.clone());
            }
            seen.known.insert(k.clone());
            let mut out = vec![BackendEvent::Upsert(Box::new(r))];
            // The server's policy decision travels with the request.
            if let Ok(decision) =
                serde_json::from_value::<crate::policy::Decision>(v["policy"].clone())
            {
                out.push(BackendEvent::Verdict {
                    key: k,
                    decision: Box::new(decision),
                });
            }
            out
        }
        events::REMOVED => {
            let k = key(&v);
            seen.known.remove(&k);
            vec![BackendEvent::Removed(k)]
        }
        events::INVENTORY => match serde_json::from_value::<Inventory>(v["inventory"].clone()) {
            Ok(inv) => vec![BackendEvent::Inventory {
                cluster: cluster(),
                inventory: Arc::new(inv),
            }],
            Err(_) => Vec::new(),
        },
        events::AUDIT => serde_json::from_str::<crate::audit::Sealed>(data)
            .map(|s| vec![BackendEvent::Audit(Box::new(s))])
            .unwrap_or_default(),
        events::CLUSTER => vec![BackendEvent::ClusterStatus {
            cluster: cluster(),
            error: v["error"].as_str().map(str::to_string),
        }],
        events::LIMITS => crate::api::limits_from_json(&v["limits"])
            .map(|limits| {
                vec![BackendEvent::Limits {
                    cluster: cluster(),
                    limits,
                }]
            })
            .unwrap_or_default(),
        events::NOTICE => vec![BackendEvent::Notice {
            cluster: cluster(),
            error: v["error"].as_bool().unwrap_or(true),
            text: v["text"].as_str().unwrap_or_default().to_string(),
        }],
        events::SNAPSHOT => {
            seen.snapshot = Some(BTreeSet::new());
            Vec::new()
        }
        events::SNAPSHOT_DONE => {
            let listed = seen.snapshot.take().unwrap_or_default();
            let gone: Vec<RequestKey> = seen.known.difference(&listed).cloned().collect();
            seen.known = listed;
            let mut out: Vec<BackendEvent> = Vec::new();
            // A snapshot after a reconnect the server could not resume
            // (it restarted): what it no longer has is said, not just
            // dropped (`serve --demo` keeps nothing across a restart).
            if !gone.is_empty() {
                out.push(BackendEvent::Notice {
                    cluster: String::new(),
                    error: true,
                    text: format!(
                        "the server could not resume (it restarted?): {} request(s) it no longer has are gone from this console",
                        gone.len()
                    ),
                });
            }
            out.extend(gone.into_iter().map(BackendEvent::Removed));
            out
        }
        _ => Vec::new(),
    }
}

/// What a run of SSE events (name, data) becomes, in order, as [`follow`]
/// translates them from one connection. Public only so the fuzz target
/// `fuzz/fuzz_targets/sse.rs` can feed it what a server could send;
/// nothing else calls it.
#[doc(hidden)]
pub fn translate_all<'a>(
    events: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<BackendEvent> {
    let mut seen = Held::default();
    events
        .into_iter()
        .flat_map(|(event, data)| translate(event, data, &mut seen))
        .collect()
}

/// Opens the server's stream with `token`, resuming after `last`.
async fn open(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    last: Option<&str>,
) -> Result<reqwest::Response, reqwest::Error> {
    let mut request = client
        .get(format!("{base}/v1/events"))
        .bearer_auth(token)
        .header(reqwest::header::ACCEPT, "text/event-stream");
    if let Some(id) = last {
        request = request.header("Last-Event-ID", id);
    }
    request.send().await
}

/// How one connection to the stream ended.
enum Ended {
    /// The console is gone: stop.
    Receiver,
    /// The server's `end` event: its reason (an expired token, a stop).
    ByServer(String),
    /// The connection broke or the stream simply ended.
    Broken(String),
}

/// Reads one connection's events into `tx` until it ends.
async fn relay(
    response: reqwest::Response,
    last: &mut Option<String>,
    seen: &mut Held,
    tx: &mpsc::UnboundedSender<BackendEvent>,
) -> Ended {
    let mut stream = response.bytes_stream().eventsource();
    let mut in_snapshot = false;
    while let Some(item) = stream.next().await {
        let event = match item {
            Ok(e) => e,
            Err(e) => return Ended::Broken(e.to_string()),
        };
        if event.event == events::END {
            let reason = serde_json::from_str::<Value>(&event.data)
                .ok()
                .and_then(|v| {
                    v["reason"]
                        .as_str()
                        .map(|r| crate::domain::sanitize::inert(r, 200).into_owned())
                })
                .unwrap_or_default();
            return Ended::ByServer(reason);
        }
        match event.event.as_str() {
            events::SNAPSHOT => in_snapshot = true,
            events::SNAPSHOT_DONE => in_snapshot = false,
            _ => {}
        }
        for e in translate(&event.event, &event.data, seen) {
            if tx.send(e).is_err() {
                return Ended::Receiver;
            }
        }
        // A snapshot cut short is not resumed from its middle.
        if !in_snapshot && !event.id.is_empty() {
            *last = Some(event.id.clone());
        }
    }
    Ended::Broken("the stream ended".into())
}

/// Follows the server's stream until the receiver goes away, reconnecting
/// with backoff and resuming from the last event id. Every (re)connect asks
/// `bearer` for the token; one the server refuses (401) is renewed and
/// tried once more at once.
async fn follow(
    base: String,
    client: reqwest::Client,
    bearer: Arc<BearerSource>,
    tx: mpsc::UnboundedSender<BackendEvent>,
) {
    let mut last: Option<String> = None;
    let mut seen = Held::default();
    let mut backoff = Duration::from_millis(250);
    let mut down = false;
    // When the server last ended a stream that was reconnected at once.
    let mut ended_at: Option<Instant> = None;
    'reconnect: loop {
        let unreachable = |why: &dyn std::fmt::Display| format!("server {base} unreachable: {why}");
        let error = 'connect: {
            let signed_out =
                |e: credentials::CredentialError| format!("cannot sign in to {base}: {e}");
            let token = match bearer.token().await {
                Ok(t) => t,
                Err(e) => break 'connect signed_out(e),
            };
            let mut response = match open(&client, &base, &token, last.as_deref()).await {
                Ok(r) => r,
                Err(e) => break 'connect unreachable(&e),
            };
            if response.status() == reqwest::StatusCode::UNAUTHORIZED {
                match bearer.renewed(&token).await {
                    Ok(Some(fresh)) => {
                        response = match open(&client, &base, &fresh, last.as_deref()).await {
                            Ok(r) => r,
                            Err(e) => break 'connect unreachable(&e),
                        }
                    }
                    Ok(None) => {}
                    Err(e) => break 'connect signed_out(e),
                }
            }
            if !response.status().is_success() {
                break 'connect unreachable(&format!("the server answered {}", response.status()));
            }
            if down && tx.send(BackendEvent::Connection { error: None }).is_err() {
                return;
            }
            down = false;
            backoff = Duration::from_millis(250);
            match relay(response, &mut last, &mut seen, &tx).await {
                Ended::Receiver => return,
                Ended::Broken(why) => unreachable(&why),
                Ended::ByServer(reason) => {
                    // The server's last word, most often: the token is no
                    // longer accepted. Reconnected at once, with a renewed
                    // token if the server refuses the one held; the console
                    // sees nothing of it. Not twice within a second: a
                    // server that keeps ending streams (it is stopping) is
                    // said in the header and retried with backoff.
                    if ended_at.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                        ended_at = Some(Instant::now());
                        continue 'reconnect;
                    }
                    unreachable(&format!("the server ended the stream: {reason}"))
                }
            }
        };
        if !down {
            down = true;
            if tx
                .send(BackendEvent::Connection { error: Some(error) })
                .is_err()
            {
                return;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

#[async_trait]
impl AccessBackend for HttpBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: "http",
            approver: Subject {
                user: self.who.user.clone(),
                groups: self.who.groups.clone(),
            },
            clusters: self.who.clusters.clone(),
            cluster_names: Default::default(),
            identity_note: None,
            may_approve: Some(self.who.approver),
            // The server stamps every requester from their verified token.
            requester_groups_verified: true,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn watch(&self) -> mpsc::UnboundedReceiver<BackendEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(follow(
            self.base.clone(),
            self.client.clone(),
            self.bearer.clone(),
            tx,
        ));
        rx
    }

    async fn create(&self, new: NewRequest) -> Result<AccessRequest, BackendError> {
        let body = json!({
            "cluster": new.cluster,
            "role": {"kind": new.role.kind.to_string(), "name": new.role.name},
            "namespaces": new.namespaces,
            "duration": duration::format_exact(new.duration),
            "reason": new.reason,
            "ticket": new.ticket,
            "credentials": match new.credentials { Credentials::Identity => "Identity", Credentials::Token => "Token" },
            "extends": new.extends,
        });
        let v = self
            .send(
                self.client
                    .post(format!("{}/v1/requests", self.base))
                    .json(&body),
                None,
            )
            .await?;
        Ok(api::request_from_json(&v))
    }

    /// Names what was seen in the body (`uid`, `seen`); naming nothing, it
    /// reads the request first and names that, so the server never decides
    /// on a request other than the one this call read.
    async fn apply(
        &self,
        key: &RequestKey,
        seen: &Seen,
        op: Op,
    ) -> Result<AccessRequest, BackendError> {
        if !op.kind().is_decision() {
            // The requester's own: nothing seen to name.
            return self.act(key, op.verb(), json!({})).await;
        }
        let seen = if seen.is_empty() {
            let path = format!(
                "/v1/requests/{}/{}",
                urlencode(&key.cluster),
                urlencode(&key.name)
            );
            Seen::of(&api::request_from_json(&self.get(&path, Some(key)).await?))
        } else {
            seen.clone()
        };
        let mut body = match &op {
            Op::Approve(spec) => {
                json!({"duration": duration::format_exact(spec.duration), "namespaces": spec.namespaces, "reason": spec.reason})
            }
            Op::Deny { reason } | Op::Revoke { reason } => json!({ "reason": reason }),
            Op::Shorten { new_end } => {
                json!({"expiresAt": new_end.to_rfc3339_opts(SecondsFormat::Secs, true)})
            }
            Op::Withdraw | Op::Release => json!({}),
        };
        body["uid"] = json!(seen.uid);
        body["seen"] = json!(seen.digest);
        self.act(key, op.verb(), body).await
    }
}

/// What the client makes of an error answer.
pub fn backend_error(e: ApiError, key: Option<&RequestKey>) -> BackendError {
    let message = crate::domain::sanitize::inert(&e.message, 1000).into_owned();
    match e.code {
        401 => BackendError::Config(format!("the server rejected the token: {message}")),
        403 if !e.details.is_empty() => BackendError::Escalation {
            user: String::new(),
            action: String::new(),
            summary: message,
            details: e
                .details
                .iter()
                .map(|d| crate::domain::sanitize::inert(d, 1000).into_owned())
                .collect(),
        },
        403 => BackendError::Forbidden {
            user: String::new(),
            action: String::new(),
            hint: message,
        },
        404 => match key {
            Some(k) => BackendError::NotFound(k.clone()),
            None => BackendError::Invalid(message),
        },
        409 => BackendError::Conflict(message),
        422 => BackendError::Invalid(message),
        _ => BackendError::Unavailable {
            cluster: "server".into(),
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_this_machine() {
        for url in [
            "http://127.0.0.1:7443",
            "http://[::1]:7443",
            "http://localhost:7443",
            "http://127.9.9.9",
        ] {
            assert!(is_loopback(url), "{url}");
        }
        for url in [
            "http://10.0.0.1:7443",
            "http://portcullis.example.com",
            "http://localhost.evil.com",
            "not a url",
        ] {
            assert!(!is_loopback(url), "{url}");
        }
    }

    #[test]
    fn a_kubeconfig_from_the_server_holds_tokens_only() {
        let good = "users:\n- name: g\n  user: {token: abc}\n";
        assert!(only_tokens(good).is_ok());
        for bad in [
            "users:\n- name: g\n  user: {token: abc, exec: {command: sh}}\n",
            "users:\n- name: g\n  user: {exec: {command: sh, args: [-c, id]}}\n",
            "users:\n- name: g\n  user: {auth-provider: {name: x}}\n",
            "users: []\n- not yaml",
            "clusters: []\n",
        ] {
            assert!(only_tokens(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_snapshot_drops_what_it_no_longer_holds() {
        let mut seen = Held::default();
        let up = |name: &str| {
            json!({"name": name, "cluster": "c", "createdAt": "2026-11-27T00:00:00Z",
                   "spec": {"requester": {"user": "a"}, "role": {"kind": "ClusterRole", "name": "view"},
                            "namespaces": ["x"], "duration": "1h", "reason": "r"}, "status": {}})
            .to_string()
        };
        translate(events::UPSERT, &up("a"), &mut seen);
        translate(events::UPSERT, &up("b"), &mut seen);
        translate(events::SNAPSHOT, "{}", &mut seen);
        translate(events::UPSERT, &up("b"), &mut seen);
        let gone = translate(events::SNAPSHOT_DONE, "{}", &mut seen);
        // Said, not only dropped (issue 21, item 12).
        assert!(
            matches!(gone.as_slice(), [BackendEvent::Notice { error: true, text, .. }, BackendEvent::Removed(k)]
                if k.name == "a" && text.contains("1 request(s) it no longer has")),
            "{gone:?}"
        );
    }

    #[test]
    fn names_are_escaped_in_paths() {
        assert_eq!(urlencode("a b/c"), "a%20b%2Fc");
    }
}
