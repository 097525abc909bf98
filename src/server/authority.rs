//! What the server does on behalf of a verified caller: the one place that
//! decides who may ask, approve and end, above the grant engine. Two
//! implementations: the embedded demo world (`serve --demo`) and the hub
//! with its target clusters.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::config::{Principal, ServerConfig};
use crate::backend::demo::{org, DemoBackend};
use crate::backend::kube::grant::{self, Caller};
use crate::backend::kube::identity::{Identity, VerifiedBy};
use crate::backend::kube::login;
use crate::backend::kube::reaper::{self, ReaperConfig};
use crate::backend::kube::topology::{Target, Topology};
use crate::backend::kube::{watch, KubeCluster};
use crate::backend::{AccessBackend, BackendError, BackendEvent, NewRequest, Op, RequestKey, Seen};
use crate::domain::{AccessRequest, Subject};

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the token was not accepted")]
    Rejected,
    #[error("cannot check the token now: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Authority: Send + Sync + 'static {
    /// `demo` or `kube`.
    fn kind(&self) -> &'static str;
    fn clusters(&self) -> Vec<String>;
    /// The one clock decisions are stamped with.
    fn now(&self) -> DateTime<Utc>;
    /// Who a bearer token belongs to, as the hub's apiserver (or the demo)
    /// says: used for everything the caller does.
    async fn authenticate(&self, token: &str) -> Result<Subject, AuthError>;
    /// Who a token belongs to if that is already known (the cache), with
    /// no call to anyone: what the refusal record may name cheaply.
    fn known(&self, _token: &str) -> Option<Subject> {
        None
    }
    /// Everything now, then every change.
    fn watch(&self) -> mpsc::UnboundedReceiver<BackendEvent>;
    /// Why the server is not ready to serve, if it is not.
    fn not_ready(&self) -> Option<String>;
    /// Audit records, also as Kubernetes Events on their requests (the
    /// hub's; nothing for the demo). Best effort, in the background.
    fn post_audit(&self, _records: Vec<crate::audit::Sealed>) {}

    /// How long `cluster`'s ended requests are kept (zero: for good).
    fn retention(&self, _cluster: &str) -> std::time::Duration {
        crate::backend::kube::settings::DEFAULT_RETENTION
    }
    /// Deletes an ended request from the store (past its retention; its
    /// audit records are what remains). `uid`: only that very object.
    async fn forget(&self, key: &RequestKey, uid: Option<&str>) -> Result<(), BackendError>;

    /// One request as it is now (not as the stream last said).
    async fn get(&self, key: &RequestKey) -> Result<AccessRequest, BackendError>;
    async fn create(
        &self,
        caller: &Subject,
        new: NewRequest,
    ) -> Result<AccessRequest, BackendError>;
    /// One operation as `caller`. A decision is refused (Conflict) unless
    /// the request is what `seen` says the caller was shown; an approval is
    /// one of `required` distinct approvals (the policy's). Withdraw and
    /// release are the requester's own (only its requester may).
    async fn apply(
        &self,
        caller: &Subject,
        key: &RequestKey,
        seen: &Seen,
        op: Op,
        required: usize,
    ) -> Result<AccessRequest, BackendError>;
    /// A token minted for the caller's own live Token-mode grant, as a
    /// kubeconfig for the grant's cluster (only its requester gets it).
    async fn credentials(
        &self,
        _caller: &Subject,
        key: &RequestKey,
    ) -> Result<Issued, BackendError> {
        Err(BackendError::Invalid(format!(
            "{}: this server has no cluster to mint a token on (the demo)",
            key.name
        )))
    }
}

/// Credentials handed to a grant's requester.
pub struct Issued {
    pub request: AccessRequest,
    pub kubeconfig: String,
    /// When the token stops working: the grant's end.
    pub until: DateTime<Utc>,
    /// `portcullis-system/pc-NAME`: whom the token is for.
    pub account: String,
}

/// Who may do what, by the server's configuration.
#[derive(Debug, Clone)]
pub struct Access {
    pub approvers: Vec<Principal>,
    /// Empty: every authenticated user may ask.
    pub requesters: Vec<Principal>,
}

impl Access {
    pub fn may_approve(&self, who: &Subject) -> bool {
        self.approvers.iter().any(|p| p.matches(who))
    }

    pub fn may_request(&self, who: &Subject) -> bool {
        self.requesters.is_empty() || self.requesters.iter().any(|p| p.matches(who))
    }

    pub fn require_approver(&self, who: &Subject, action: &str) -> Result<(), BackendError> {
        if self.may_approve(who) {
            return Ok(());
        }
        Err(BackendError::Forbidden {
            user: who.user.clone(),
            action: action.into(),
            hint: "the server's approvers list does not name you or your groups".into(),
        })
    }

    pub fn require_requester(&self, who: &Subject) -> Result<(), BackendError> {
        if self.may_request(who) {
            return Ok(());
        }
        Err(BackendError::Forbidden {
            user: who.user.clone(),
            action: "ask for access".into(),
            hint: "the server's requesters list does not name you or your groups".into(),
        })
    }
}

/// The identity a caller acts with in the grant engine: verified by the
/// server, so never "unverified".
fn acting(caller: &Subject) -> Identity {
    Identity {
        user: caller.user.clone(),
        groups: caller.groups.clone(),
        verified_by: VerifiedBy::TokenReview,
        note: None,
    }
}

/// A new request always names the caller as requester, whatever the body
/// said: the requester cannot be forged through the server.
fn as_caller(caller: &Subject, mut new: NewRequest) -> NewRequest {
    new.requester = caller.declared();
    new
}

// ---------------------------------------------------------------- demo

/// `serve --demo`: the embedded demo world; a demo person's name is their
/// token (loopback only).
pub struct DemoAuthority {
    demo: Arc<DemoBackend>,
    access: Access,
    _simulator: tokio::task::JoinHandle<()>,
}

impl DemoAuthority {
    pub fn new(demo: Arc<DemoBackend>) -> Self {
        let simulator = demo.spawn_simulator();
        Self {
            demo,
            access: Access {
                approvers: vec![Principal::Group("oncall".into())],
                requesters: Vec::new(),
            },
            _simulator: simulator,
        }
    }

    pub fn access(&self) -> &Access {
        &self.access
    }

    fn act(
        &self,
        caller: &Subject,
        f: impl FnOnce(
            &mut crate::backend::demo::DemoWorld,
            &str,
        ) -> Result<AccessRequest, BackendError>,
    ) -> Result<AccessRequest, BackendError> {
        self.demo.act_as(&caller.user, f)
    }
}

#[async_trait]
impl Authority for DemoAuthority {
    fn kind(&self) -> &'static str {
        "demo"
    }
    fn clusters(&self) -> Vec<String> {
        self.demo.info().clusters
    }
    fn now(&self) -> DateTime<Utc> {
        self.demo.now()
    }
    async fn authenticate(&self, token: &str) -> Result<Subject, AuthError> {
        org::PEOPLE
            .iter()
            .find(|p| p.user == token)
            .map(|p| p.subject())
            .ok_or(AuthError::Rejected)
    }
    fn known(&self, token: &str) -> Option<Subject> {
        org::PEOPLE
            .iter()
            .find(|p| p.user == token)
            .map(|p| p.subject())
    }
    fn watch(&self) -> mpsc::UnboundedReceiver<BackendEvent> {
        self.demo.watch()
    }
    fn not_ready(&self) -> Option<String> {
        None
    }
    async fn forget(&self, key: &RequestKey, _uid: Option<&str>) -> Result<(), BackendError> {
        self.demo.forget(key);
        Ok(())
    }
    async fn get(&self, key: &RequestKey) -> Result<AccessRequest, BackendError> {
        self.demo
            .requests()
            .into_iter()
            .find(|r| RequestKey::of(r) == *key)
            .ok_or_else(|| BackendError::NotFound(key.clone()))
    }
    async fn create(
        &self,
        caller: &Subject,
        new: NewRequest,
    ) -> Result<AccessRequest, BackendError> {
        let new = as_caller(caller, new);
        self.act(caller, |w, _| w.create(new))
    }
    async fn apply(
        &self,
        caller: &Subject,
        key: &RequestKey,
        seen: &Seen,
        op: Op,
        required: usize,
    ) -> Result<AccessRequest, BackendError> {
        self.act(caller, |w, me| w.decide(key, me, seen, op, required))
    }
}

// ---------------------------------------------------------------- kube

/// How long a TokenReview's answer is reused.
pub const TOKEN_TTL: Duration = Duration::from_secs(10);

/// What TokenReview said of a token (None: rejected), and when.
type Answer = (Option<Subject>, Instant);

/// At most this many tokens' answers are cached.
const TOKEN_CACHE_MAX: usize = 100_000;

/// The hub (every request, one clock) and the target clusters.
pub struct KubeAuthority {
    topology: Topology,
    access: Access,
    /// sha256(token) → who (or rejected), since when. Tokens are never
    /// kept; rejections are cached too, so a flood of bad tokens costs the
    /// hub one TokenReview per token per 10 s, not one per call.
    tokens: Mutex<HashMap<[u8; 32], Answer>>,
    /// Each target's URL and CA as the server reaches it: what a minted
    /// token's kubeconfig points at.
    endpoints: BTreeMap<String, login::Endpoint>,
    _reaper: tokio::task::JoinHandle<()>,
}

impl KubeAuthority {
    /// Connects the hub and the targets from the kubeconfig (or in-cluster
    /// config), and starts the reaper.
    pub async fn connect(config: &ServerConfig) -> Result<Self, BackendError> {
        let (hub, _) = connect(config.hub.as_deref(), "hub").await?;
        let mut targets = BTreeMap::new();
        let mut endpoints = BTreeMap::new();
        for c in &config.clusters {
            let (cluster, endpoint) = connect(c.context.as_deref(), &c.name).await?;
            endpoints.insert(c.name.clone(), endpoint);
            targets.insert(
                c.name.clone(),
                Target {
                    cluster: Arc::new(cluster),
                    settings: c.settings.clone(),
                },
            );
        }
        // The target that is the hub itself, if one is: direct-mode
        // requests made on the hub (no `spec.cluster`) are its.
        let home = config
            .clusters
            .iter()
            .find(|c| c.context == config.hub)
            .map(|c| c.name.clone());
        let mut me = Self::new(
            Arc::new(hub),
            targets,
            home,
            Access {
                approvers: config.approvers.clone(),
                requesters: config.requesters.clone(),
            },
            ReaperConfig::default(),
        );
        me.endpoints = endpoints;
        Ok(me)
    }

    pub fn new(
        hub: Arc<KubeCluster>,
        targets: BTreeMap<String, Target>,
        home: Option<String>,
        access: Access,
        reaper_config: ReaperConfig,
    ) -> Self {
        let topology = Topology {
            store: hub,
            targets: Some(Arc::new(targets)),
            home,
        };
        let reaper = tokio::spawn(reaper::run_topology(
            topology.clone(),
            reaper_config,
            None,
            None,
        ));
        Self {
            topology,
            access,
            tokens: Mutex::new(HashMap::new()),
            endpoints: BTreeMap::new(),
            _reaper: reaper,
        }
    }

    pub fn access(&self) -> &Access {
        &self.access
    }

    fn site(&self, key: &RequestKey) -> Result<grant::Site<'_>, BackendError> {
        self.topology
            .site_for(&key.cluster)
            .ok_or_else(|| BackendError::NotFound(key.clone()))
    }

    /// The request as stored, checked to belong to the cluster it was
    /// asked under (a name is unique in the hub; the cluster must match).
    async fn stored(&self, key: &RequestKey) -> Result<AccessRequest, BackendError> {
        self.stored_as(key).await.map(|(r, _)| r)
    }

    /// [`Self::stored`], and whether it was made in direct mode on the
    /// hub (no `spec.cluster`): a request the server never checked when it
    /// was asked (its requester, groups, extension).
    async fn stored_as(&self, key: &RequestKey) -> Result<(AccessRequest, bool), BackendError> {
        let site = self.site(key)?;
        let f = grant::fetch(&site, Caller::Approver, &key.name).await?;
        if self.topology.cluster_of(&f.obj) != Some(key.cluster.as_str()) {
            return Err(BackendError::NotFound(key.clone()));
        }
        let direct = crate::backend::kube::topology::stored_cluster(&f.obj).is_none();
        Ok((f.req, direct))
    }
}

async fn connect(
    context: Option<&str>,
    name: &str,
) -> Result<(KubeCluster, login::Endpoint), BackendError> {
    let config = match context {
        Some(ctx) => {
            let options = kube::config::KubeConfigOptions {
                context: Some(ctx.into()),
                ..Default::default()
            };
            kube::Config::from_kubeconfig(&options)
                .await
                .map_err(|e| BackendError::Config(format!("cluster {name}: context {ctx}: {e}")))?
        }
        None => kube::Config::incluster()
            .map_err(|e| BackendError::Config(format!("cluster {name}: in-cluster config: {e}")))?,
    };
    let auth = config.auth_info.clone();
    let endpoint = login::Endpoint::of(&config);
    let client = kube::Client::try_from(config)
        .map_err(|e| BackendError::Config(format!("cluster {name}: {e}")))?;
    Ok((
        KubeCluster::connect(name, client, &auth, context.unwrap_or(name)).await,
        endpoint,
    ))
}

impl KubeAuthority {
    /// One TokenReview on the hub.
    async fn review(&self, token: &str) -> Result<Subject, AuthError> {
        let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}});
        let request = http::Request::post("/apis/authentication.k8s.io/v1/tokenreviews")
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(&body).map_err(|e| AuthError::Unavailable(e.to_string()))?)
            .map_err(|e| AuthError::Unavailable(e.to_string()))?;
        let answer: serde_json::Value = self
            .topology
            .store
            .client
            .request(request)
            .await
            .map_err(|e| AuthError::Unavailable(e.to_string()))?;
        let status = &answer["status"];
        if status["authenticated"].as_bool() != Some(true) {
            return Err(AuthError::Rejected);
        }
        let user = status["user"]["username"]
            .as_str()
            .filter(|u| !u.is_empty())
            .ok_or(AuthError::Rejected)?;
        let groups = status["user"]["groups"]
            .as_array()
            .map(|g| {
                g.iter()
                    .filter_map(|x| x.as_str())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Subject {
            user: user.into(),
            groups,
        })
    }
}

#[async_trait]
impl Authority for KubeAuthority {
    fn kind(&self) -> &'static str {
        "kube"
    }
    fn clusters(&self) -> Vec<String> {
        self.topology
            .targets
            .as_ref()
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default()
    }
    fn now(&self) -> DateTime<Utc> {
        self.topology.store.clock.now()
    }

    fn retention(&self, cluster: &str) -> std::time::Duration {
        self.topology
            .targets
            .as_ref()
            .and_then(|t| t.get(cluster))
            .map(|t| t.settings.retention)
            .unwrap_or(crate::backend::kube::settings::DEFAULT_RETENTION)
    }

    async fn forget(&self, key: &RequestKey, uid: Option<&str>) -> Result<(), BackendError> {
        let params = kube::api::DeleteParams {
            preconditions: Some(kube::api::Preconditions {
                uid: uid.map(str::to_string),
                resource_version: None,
            }),
            ..Default::default()
        };
        match self
            .topology
            .store
            .requests()
            .delete(&key.name, &params)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
            Err(e) => Err(BackendError::Unavailable {
                cluster: key.cluster.clone(),
                message: format!("delete {} past its retention: {e}", key.name),
            }),
        }
    }

    async fn authenticate(&self, token: &str) -> Result<Subject, AuthError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Ok(cache) = self.tokens.lock() {
            if let Some((who, at)) = cache.get(&digest) {
                if at.elapsed() < TOKEN_TTL {
                    return who.clone().ok_or(AuthError::Rejected);
                }
            }
        }
        let answer = self.review(token).await;
        if matches!(answer, Ok(_) | Err(AuthError::Rejected)) {
            if let Ok(mut cache) = self.tokens.lock() {
                cache.retain(|_, (_, at)| at.elapsed() < TOKEN_TTL);
                // Bounded whatever arrives: a flood of fresh tokens
                // starts the cache over rather than growing it.
                if cache.len() >= TOKEN_CACHE_MAX {
                    cache.clear();
                }
                cache.insert(digest, (answer.clone().ok(), Instant::now()));
            }
        }
        answer
    }

    fn known(&self, token: &str) -> Option<Subject> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let cache = self.tokens.lock().ok()?;
        let (who, at) = cache.get(&digest)?;
        (at.elapsed() < TOKEN_TTL).then(|| who.clone()).flatten()
    }

    fn watch(&self) -> mpsc::UnboundedReceiver<BackendEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(watch::hub_requests(self.topology.clone(), tx.clone()));
        if let Some(targets) = &self.topology.targets {
            for (name, t) in targets.iter() {
                let _ = tx.send(BackendEvent::ClusterStatus {
                    cluster: name.clone(),
                    error: None,
                });
                let _ = tx.send(BackendEvent::Limits {
                    cluster: name.clone(),
                    limits: t.settings.limits.clone(),
                });
                tokio::spawn(watch::rbac(t.cluster.clone(), tx.clone()));
            }
        }
        rx
    }

    fn post_audit(&self, records: Vec<crate::audit::Sealed>) {
        let api: kube::Api<k8s_openapi::api::core::v1::Event> = kube::Api::namespaced(
            self.topology.store.client.clone(),
            crate::backend::kube::reaper::audit_trail::EVENTS_NAMESPACE,
        );
        tokio::spawn(async move {
            for r in &records {
                if let Err(e) =
                    crate::backend::kube::reaper::audit_trail::post(&api, r, None, "server").await
                {
                    tracing::warn!(error = %e, "cannot post an audit record as a Kubernetes Event");
                }
            }
        });
    }

    fn not_ready(&self) -> Option<String> {
        (!self.topology.store.clock.is_synced())
            .then(|| "the hub's apiserver has not answered yet".to_string())
    }

    async fn get(&self, key: &RequestKey) -> Result<AccessRequest, BackendError> {
        self.stored(key).await
    }

    async fn create(
        &self,
        caller: &Subject,
        new: NewRequest,
    ) -> Result<AccessRequest, BackendError> {
        let new = as_caller(caller, new);
        let key = RequestKey {
            cluster: new.cluster.clone(),
            name: String::new(),
        };
        let site = self.site(&key).map_err(|_| {
            BackendError::Invalid(format!(
                "cluster '{}' is not one this server grants access to",
                crate::domain::sanitize::inert(&new.cluster, 64)
            ))
        })?;
        let limits = site.settings.map(|s| s.limits.clone()).unwrap_or_default();
        new.clone()
            .into_request("new".into(), self.now())
            .validate(&limits)
            .map_err(|e| BackendError::Invalid(e.to_string()))?;
        // What can never be approved is refused now, not at `y`.
        limits
            .check_grantable(&new.role, &new.namespaces)
            .map_err(BackendError::Invalid)?;
        grant::create(&site, &new, true, Caller::Approver, "store the request").await
    }

    async fn apply(
        &self,
        caller: &Subject,
        key: &RequestKey,
        seen: &Seen,
        op: Op,
        required: usize,
    ) -> Result<AccessRequest, BackendError> {
        if op == Op::Release {
            return self.release(caller, key).await;
        }
        let (_, direct) = self.stored_as(key).await?;
        // The server grants only what it checked when it was asked; what
        // it only read may be denied, shortened or revoked here (that only
        // takes access away), and is approved where it was made.
        if direct && matches!(op, Op::Approve(_)) {
            return Err(BackendError::Invalid(format!(
                "{} was asked in direct mode on the hub, not through this server: approve it there (`portcullis --context …`); here it can only be denied, shortened or revoked",
                crate::domain::sanitize::inert(&key.name, 64)
            )));
        }
        grant::decide(
            &self.site(key)?,
            &acting(caller),
            &key.name,
            seen,
            op,
            required,
        )
        .await
    }

    /// The server mints as itself (it holds the minting right in
    /// portcullis-system on each target), so the requester needs no
    /// identity on the target at all; only the request's verified
    /// requester gets it.
    async fn credentials(
        &self,
        caller: &Subject,
        key: &RequestKey,
    ) -> Result<Issued, BackendError> {
        let mut req = self.stored(key).await?;
        if req.requester.user != caller.user {
            return Err(BackendError::Forbidden {
                user: caller.user.clone(),
                action: format!("get {}'s credentials", key.name),
                hint: format!("only its requester ({}) may", req.requester.user),
            });
        }
        let site = self.site(key)?;
        if req.credentials == crate::domain::Credentials::Token
            && req.phase() == crate::domain::Phase::Active
            && !grant::token_objects_recorded(&req)
        {
            // Right after the approval the reaper may not have made the
            // ServiceAccount yet: make it now (the same idempotent step).
            grant::provision_tokens(&site, &key.name)
                .await
                .map_err(|e| {
                    grant::map_err(
                        &site,
                        grant::Caller::Approver,
                        "set up the grant's credentials",
                        e,
                    )
                })?;
            req = self.stored(key).await?;
        }
        let minted = login::mint(site.target, &req).await?;
        let endpoint = self.endpoints.get(&key.cluster).ok_or_else(|| {
            BackendError::Config(format!("no endpoint for cluster {}", key.cluster))
        })?;
        let kubeconfig = login::kubeconfig(&req, endpoint, &minted.token)?;
        Ok(Issued {
            request: req,
            kubeconfig,
            until: minted.until,
            account: minted.account,
        })
    }
}

impl KubeAuthority {
    /// The server checks who asks: only the requester releases, recorded
    /// in their (verified) name; then ends it like a revoke.
    async fn release(
        &self,
        caller: &Subject,
        key: &RequestKey,
    ) -> Result<AccessRequest, BackendError> {
        let stored = self.stored(key).await?;
        crate::backend::kube::release::check(&stored, &caller.user)?;
        let site = self.site(key)?;
        match grant::end(
            &site,
            &key.name,
            grant::Ending::Release,
            &crate::domain::ValidationLimits::default(),
        )
        .await
        {
            Ok(grant::Ended::Done(req)) => Ok(*req),
            Ok(grant::Ended::Already(req)) => Err(BackendError::Conflict(format!(
                "{} had already ended ({}): its access is removed",
                key.name,
                req.phase()
            ))),
            Ok(grant::Ended::Nothing) => Err(BackendError::NotFound(key.clone())),
            Err(grant::EndError::Refused(e)) => Err(e.into()),
            Err(grant::EndError::Kube(e)) => Err(grant::map_err(
                &site,
                grant::Caller::Approver,
                "release the grant",
                e,
            )),
        }
    }
}
