//! The `kube` backend: direct on clusters through kube-rs, one client per
//! kubeconfig context, live through watchers (no polling).
//!
//! Each concept lives in one file: [`cluster`] (a context: client,
//! verified identity, clock, limits), [`identity`], [`clock`],
//! [`settings`], [`grant`] (approve, deny, shorten, revoke, withdraw,
//! expire, undo — shared by the console, the verbs and the reaper),
//! [`objects`] (the bindings a grant creates and deletes), [`watch`] (live
//! requests and RBAC inventory), [`reaper`], [`verify`], [`login`], [`wire`]
//! (the stored object format) and [`manifests`] (what `portcullis crds`
//! prints).

pub(crate) mod backoff;
pub mod clock;
pub(crate) mod cluster;
pub(crate) mod contexts;
pub mod grant;
pub(crate) mod identity;
pub(crate) mod lean;
pub(crate) mod login;
pub(crate) mod objects;
pub mod policy_source;
pub mod reaper;
pub(crate) mod refusal;
pub(crate) mod release;
pub(crate) mod settings;
pub(crate) mod topology;
pub mod verify;
pub(crate) mod watch;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kube::api::DynamicObject;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, Config};
use tokio::sync::mpsc;

pub use cluster::{Fault, KubeCluster};
pub use identity::{Identity, VerifiedBy};
pub use login::login;

use super::{
    AccessBackend, BackendError, BackendEvent, BackendInfo, NewRequest, Op, RequestKey, Seen,
};
use crate::crd::wire;
pub use crate::domain::request::SYSTEM_NAMESPACE;
use crate::domain::{AccessRequest, Credentials, Subject};
use grant::Caller;

pub const FIELD_MANAGER: &str = "portcullis";
pub const REQUEST_LABEL: &str = "portcullis.dev/request";
pub use objects::{APPROVED_BY_ANNOTATION, EXPIRES_ANNOTATION};

/// The per-grant ServiceAccount of a Token-mode request.
pub fn token_account(request: &str) -> String {
    let mut name = format!("pc-{request}");
    name.truncate(253);
    name
}

/// The name of every object a grant creates.
pub fn binding_name(request: &str) -> String {
    format!("portcullis-{request}")
}

/// The user the apiserver sees for a grant: the requester, or in Token mode
/// the grant's ServiceAccount.
pub fn grant_subject(req: &AccessRequest) -> Subject {
    match req.credentials {
        Credentials::Identity => req.requester.clone(),
        Credentials::Token => Subject {
            user: format!(
                "system:serviceaccount:{SYSTEM_NAMESPACE}:{}",
                token_account(&req.name)
            ),
            groups: Vec::new(),
        },
    }
}

pub fn request_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(wire::GROUP, wire::VERSION, wire::KIND),
        wire::PLURAL,
    )
}

pub struct KubeBackend {
    clusters: Vec<Arc<KubeCluster>>,
    /// Contexts that could not be loaded, with why (shown, not fatal).
    failed: Vec<(String, String)>,
    /// Whether a console on this backend also reaps (when its identity may).
    reap_in_console: bool,
    /// Display names by context, where they differ (see [`contexts`]).
    names: BTreeMap<String, String>,
    /// Contexts not connected because another one of the same cluster is:
    /// (context, the one kept).
    same_cluster: Vec<(String, String)>,
}

impl KubeBackend {
    /// Loads the named contexts (or the current one, or all) from the
    /// kubeconfig and asks each apiserver who we are. A context that fails
    /// is reported, not fatal, unless none loads.
    pub async fn connect(contexts: &[String], all: bool) -> Result<Self, BackendError> {
        Self::connect_named(contexts, all, &BTreeMap::new()).await
    }

    /// As [`Self::connect`]; with `all`, one context per cluster (see
    /// [`contexts`]); each shown by its display name (`configured`: by context or
    /// kubeconfig cluster name, from the config's `[cluster_names]`).
    pub async fn connect_named(
        contexts: &[String],
        all: bool,
        configured: &BTreeMap<String, String>,
    ) -> Result<Self, BackendError> {
        let kubeconfig = match Kubeconfig::read() {
            Ok(k) => k,
            // In a pod with no kubeconfig (the reaper's Deployment): the
            // pod's own ServiceAccount.
            Err(_)
                if contexts.is_empty()
                    && !all
                    && std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() =>
            {
                return Self::in_cluster().await;
            }
            Err(e) => {
                return Err(BackendError::Config(format!("no usable kubeconfig ({e}): set KUBECONFIG, or run `portcullis demo` for the embedded demo")))
            }
        };
        Self::connect_from(kubeconfig, contexts, all, configured).await
    }

    /// As [`Self::connect_named`], from this kubeconfig.
    pub async fn connect_from(
        kubeconfig: Kubeconfig,
        contexts: &[String],
        all: bool,
        configured: &BTreeMap<String, String>,
    ) -> Result<Self, BackendError> {
        let names: Vec<String> = if all {
            kubeconfig.contexts.iter().map(|c| c.name.clone()).collect()
        } else if contexts.is_empty() {
            kubeconfig.current_context.clone().into_iter().collect()
        } else {
            contexts.to_vec()
        };
        if names.is_empty() {
            return Err(BackendError::Config(
                "the kubeconfig has no current context: pass --context NAME".into(),
            ));
        }
        let entries: Vec<contexts::ContextEntry> = kubeconfig
            .contexts
            .iter()
            .map(|c| {
                let cluster = c
                    .context
                    .as_ref()
                    .map(|x| x.cluster.clone())
                    .unwrap_or_default();
                let server = kubeconfig
                    .clusters
                    .iter()
                    .find(|k| k.name == cluster)
                    .and_then(|k| k.cluster.as_ref())
                    .and_then(|k| k.server.clone());
                contexts::ContextEntry {
                    context: c.name.clone(),
                    cluster,
                    server,
                }
            })
            .collect();
        let picked = contexts::pick(
            &entries,
            &names,
            kubeconfig.current_context.as_deref(),
            configured,
            all,
        );
        let names = picked.connect;
        let connecting = names.into_iter().map(|name| {
            let kubeconfig = kubeconfig.clone();
            async move {
                let user = kubeconfig
                    .contexts
                    .iter()
                    .find(|c| c.name == name)
                    .and_then(|c| c.context.as_ref())
                    .and_then(|c| c.user.clone())
                    .ok_or_else(|| {
                        (
                            name.clone(),
                            format!("context '{name}' is not in the kubeconfig or names no user"),
                        )
                    })?;
                let options = KubeConfigOptions {
                    context: Some(name.clone()),
                    ..Default::default()
                };
                let mut config = Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .map_err(|e| (name.clone(), e.to_string()))?;
                config.read_timeout = Some(Duration::from_secs(300));
                config.connect_timeout = Some(Duration::from_secs(10));
                let auth = config.auth_info.clone();
                let client = Client::try_from(config).map_err(|e| (name.clone(), e.to_string()))?;
                Ok::<_, (String, String)>(Arc::new(
                    KubeCluster::connect(&name, client, &auth, &user).await,
                ))
            }
        });
        let mut clusters = Vec::new();
        let mut failed = Vec::new();
        for result in futures::future::join_all(connecting).await {
            match result {
                Ok(c) => clusters.push(c),
                Err(f) => failed.push(f),
            }
        }
        if clusters.is_empty() {
            let why: Vec<String> = failed.iter().map(|(c, e)| format!("{c}: {e}")).collect();
            return Err(BackendError::Unavailable {
                cluster: "kubeconfig".into(),
                message: why.join("; "),
            });
        }
        Ok(Self {
            clusters,
            failed,
            reap_in_console: true,
            names: picked.names,
            same_cluster: picked.same_cluster,
        })
    }

    /// Contexts left out because another context of their cluster is
    /// connected: (context, the one kept).
    pub fn same_cluster(&self) -> &[(String, String)] {
        &self.same_cluster
    }

    /// The cluster this process runs in, as its pod's ServiceAccount.
    pub async fn in_cluster() -> Result<Self, BackendError> {
        let config = Config::incluster()
            .map_err(|e| BackendError::Config(format!("in-cluster config: {e}")))?;
        let auth = config.auth_info.clone();
        let client = Client::try_from(config).map_err(|e| BackendError::Config(e.to_string()))?;
        let cluster = KubeCluster::connect("in-cluster", client, &auth, "in-cluster").await;
        Ok(Self::from_clusters(vec![Arc::new(cluster)]))
    }

    /// A backend over connected clusters (tests).
    pub fn from_clusters(clusters: Vec<Arc<KubeCluster>>) -> Self {
        Self {
            clusters,
            failed: Vec::new(),
            reap_in_console: true,
            names: BTreeMap::new(),
            same_cluster: Vec::new(),
        }
    }

    /// Whether the console also runs a reaper (default: when it may).
    pub fn reaping(mut self, on: bool) -> Self {
        self.reap_in_console = on;
        self
    }

    pub fn clusters(&self) -> &[Arc<KubeCluster>] {
        &self.clusters
    }

    fn cluster(&self, name: &str) -> Result<&Arc<KubeCluster>, BackendError> {
        self.clusters
            .iter()
            .find(|c| c.context == name)
            .ok_or_else(|| BackendError::Unavailable {
                cluster: name.into(),
                message: "not one of the contexts this console was started with".into(),
            })
    }

    /// Every request on every context (one List call each).
    pub async fn list(&self) -> Result<Vec<AccessRequest>, BackendError> {
        let mut out = Vec::new();
        for c in &self.clusters {
            let list = c.requests().list(&Default::default()).await.map_err(|e| {
                grant::map_err(
                    &grant::Site::direct(c),
                    Caller::Viewer,
                    "list AccessRequests",
                    e,
                )
            })?;
            out.extend(
                list.items
                    .into_iter()
                    .map(|o| grant::read(&grant::Site::direct(c), o).req),
            );
        }
        Ok(out)
    }

    /// One request as stored, with its object; `caller` is the role the
    /// reader acts in (what a refusal tells them).
    pub async fn get(
        &self,
        key: &RequestKey,
        caller: Caller,
    ) -> Result<(AccessRequest, DynamicObject), BackendError> {
        let cluster = self.cluster(&key.cluster)?;
        let f = grant::fetch(&grant::Site::direct(cluster), caller, &key.name).await?;
        Ok((f.req, f.obj))
    }

    /// Contexts that could not be loaded, with why.
    pub fn failed(&self) -> &[(String, String)] {
        &self.failed
    }

    /// The requests of every context, live (as `get -w` follows them):
    /// no RBAC inventory, no reaper.
    pub fn watch_requests(&self) -> mpsc::UnboundedReceiver<BackendEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        for cluster in &self.clusters {
            tokio::spawn(watch::requests(cluster.clone(), tx.clone()));
        }
        rx
    }

    /// The cluster's limits for a new request: the cluster's settings when
    /// readable, else the defaults (approval re-checks them anyway).
    pub async fn limits(&self, cluster: &str) -> crate::domain::ValidationLimits {
        match self.cluster(cluster) {
            Ok(c) => c.settings().await.map(|s| s.limits).unwrap_or_default(),
            Err(_) => Default::default(),
        }
    }
}

#[async_trait]
impl AccessBackend for KubeBackend {
    fn info(&self) -> BackendInfo {
        let first = &self.clusters[0].identity;
        BackendInfo {
            kind: "kube",
            approver: Subject {
                user: first.user.clone(),
                groups: first.groups.clone(),
            },
            clusters: self.clusters.iter().map(|c| c.context.clone()).collect(),
            cluster_names: self.names.clone(),
            identity_note: (!first.is_verified()).then(|| {
                format!(
                    "identity unverified: {}",
                    first
                        .note
                        .as_deref()
                        .unwrap_or("the apiserver could not confirm it")
                )
            }),
            // An approver on any of the clusters is one here.
            may_approve: self
                .clusters
                .iter()
                .filter_map(|c| c.may_decide)
                .reduce(|a, b| a || b),
            requester_groups_verified: false,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.clusters[0].clock.now()
    }

    fn watch(&self) -> mpsc::UnboundedReceiver<BackendEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        for (cluster, error) in &self.failed {
            let _ = tx.send(BackendEvent::ClusterStatus {
                cluster: cluster.clone(),
                error: Some(error.clone()),
            });
        }
        for cluster in &self.clusters {
            let _ = tx.send(BackendEvent::ClusterStatus {
                cluster: cluster.context.clone(),
                error: None,
            });
            tokio::spawn(watch::rbac(cluster.clone(), tx.clone()));
            tokio::spawn(watch::limits(cluster.clone(), tx.clone()));
            // An approver's console reaps too, so a grant closes even if no
            // reaper runs; a requester's console may not (and never expires
            // other people's requests). A console that reaps reads its
            // requests from the reaper's watch: one list and one copy.
            let (cluster, tx, reap) = (cluster.clone(), tx.clone(), self.reap_in_console);
            tokio::spawn(async move {
                if reap && reaper::missing_rights(&cluster).await.is_empty() {
                    let config = reaper::ReaperConfig {
                        provision_tokens: false,
                        ..Default::default()
                    };
                    let mut feed = watch::direct_feed(&cluster.context);
                    let to_console = tx.clone();
                    let tap: reaper::Tap = Box::new(move |item| {
                        for e in feed.on(item) {
                            let _ = to_console.send(e);
                        }
                    });
                    let topology = topology::Topology::direct(cluster);
                    reaper::run_topology(topology, config, Some(tx), Some(tap)).await;
                } else {
                    watch::requests(cluster, tx).await;
                }
            });
        }
        rx
    }

    async fn create(&self, new: NewRequest) -> Result<AccessRequest, BackendError> {
        let cluster = self.cluster(&new.cluster)?;
        let site = grant::Site::direct(cluster);
        grant::create(
            &site,
            &new,
            false,
            Caller::Requester,
            "create an AccessRequest",
        )
        .await
    }

    async fn apply(
        &self,
        key: &RequestKey,
        seen: &Seen,
        op: Op,
    ) -> Result<AccessRequest, BackendError> {
        let cluster = self.cluster(&key.cluster)?;
        if op == Op::Release {
            return self.release_directly(cluster, key).await;
        }
        grant::decide(
            &grant::Site::direct(cluster),
            &cluster.identity,
            &key.name,
            seen,
            op,
            1,
        )
        .await
    }
}

impl KubeBackend {
    /// A release, direct: deletes the grant's release binding with the
    /// requester's own credentials, then waits (up to [`RELEASE_WAIT`]) for
    /// a reaper to end the grant; returns the request as it then stands.
    async fn release_directly(
        &self,
        cluster: &KubeCluster,
        key: &RequestKey,
    ) -> Result<AccessRequest, BackendError> {
        let site = grant::Site::direct(cluster);
        release::request(&site, &cluster.identity, &key.name).await?;
        // Ended, and the end verified (or no more time to wait): watched,
        // not polled.
        let ended = |obj: Option<&kube::api::DynamicObject>| {
            obj.is_some_and(|o| {
                let r = grant::read(&site, o.clone()).req;
                r.phase().is_terminal() && r.status.message.is_some()
            })
        };
        let watched = kube::runtime::wait::await_condition(cluster.requests(), &key.name, ended);
        let _ = tokio::time::timeout(RELEASE_WAIT, watched).await;
        Ok(grant::fetch(&site, Caller::Requester, &key.name).await?.req)
    }
}

/// How long `release` waits for a reaper to record the end.
pub const RELEASE_WAIT: Duration = Duration::from_secs(20);
