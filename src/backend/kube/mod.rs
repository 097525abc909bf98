//! The `kube` backend: direct on clusters through kube-rs, one client per
//! kubeconfig context, live through watchers (no polling).
//!
//! Identity: the approver (and the requester of `portcullis request`) is the
//! kubeconfig user name of the context — Kubernetes 1.20 has no
//! SelfSubjectReview to ask the apiserver who we are. RBAC on the cluster
//! still decides what each of them may do.

pub mod manifests;
pub mod reaper;
pub mod verify;
pub mod wire;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::watcher;
use kube::{Client, Config};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{
    AccessBackend, ApproveSpec, BackendError, BackendEvent, BackendInfo, NewRequest, RequestKey,
};
use crate::domain::rbac::engine::MANAGED_BY_LABEL;
use crate::domain::rbac::Inventory;
use crate::domain::request::{Approval, BindingRef};
use crate::domain::{AccessRequest, Credentials, Phase, PhaseError, Subject, ValidationLimits};

pub const FIELD_MANAGER: &str = "portcullis";
pub const REQUEST_LABEL: &str = "portcullis.dev/request";
pub const EXPIRES_ANNOTATION: &str = "portcullis.dev/expires-at";
pub const APPROVED_BY_ANNOTATION: &str = "portcullis.dev/approved-by";
/// Where per-grant ServiceAccounts live (credentials mode Token).
pub const SYSTEM_NAMESPACE: &str = "portcullis-system";

/// The per-grant ServiceAccount of a Token-mode request.
pub fn token_account(request: &str) -> String {
    let mut name = format!("pc-{request}");
    name.truncate(253);
    name
}

/// The user the apiserver sees for a Token-mode grant.
pub fn grant_subject(req: &AccessRequest) -> crate::domain::Subject {
    match req.credentials {
        Credentials::Identity => req.requester.clone(),
        Credentials::Token => crate::domain::Subject {
            user: format!(
                "system:serviceaccount:{SYSTEM_NAMESPACE}:{}",
                token_account(&req.name)
            ),
            groups: Vec::new(),
        },
    }
}

/// One kubeconfig context.
pub struct KubeCluster {
    pub context: String,
    pub user: String,
    pub client: Client,
}

impl KubeCluster {
    pub fn requests(&self) -> Api<DynamicObject> {
        Api::all_with(self.client.clone(), &request_resource())
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
    approver: Subject,
    limits: ValidationLimits,
    /// Contexts that could not be loaded, with why (shown, not fatal).
    failed: Vec<(String, String)>,
}

fn api_error(e: &kube::Error) -> Option<(u16, String)> {
    match e {
        kube::Error::Api(s) => Some((s.code, s.message.clone())),
        _ => None,
    }
}

impl KubeBackend {
    /// Loads the named contexts (or the current one, or all) from the
    /// kubeconfig. A context that fails is reported, not fatal, unless none
    /// loads.
    pub async fn connect(
        contexts: &[String],
        all: bool,
        groups: Vec<String>,
    ) -> Result<Self, BackendError> {
        let kubeconfig = Kubeconfig::read().map_err(|e| {
            BackendError::Config(format!("no usable kubeconfig ({e}): set KUBECONFIG, or run `portcullis demo` for the embedded demo"))
        })?;
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
        let mut clusters = Vec::new();
        let mut failed = Vec::new();
        for name in names {
            let user = kubeconfig
                .contexts
                .iter()
                .find(|c| c.name == name)
                .and_then(|c| c.context.as_ref())
                .and_then(|c| c.user.clone());
            let Some(user) = user else {
                failed.push((
                    name.clone(),
                    format!("context '{name}' is not in the kubeconfig or names no user"),
                ));
                continue;
            };
            let options = KubeConfigOptions {
                context: Some(name.clone()),
                ..Default::default()
            };
            match Config::from_custom_kubeconfig(kubeconfig.clone(), &options)
                .await
                .map_err(|e| e.to_string())
                .and_then(|mut config| {
                    config.read_timeout = Some(Duration::from_secs(300));
                    Client::try_from(config).map_err(|e| e.to_string())
                }) {
                Ok(client) => clusters.push(Arc::new(KubeCluster {
                    context: name,
                    user,
                    client,
                })),
                Err(e) => failed.push((name, e)),
            }
        }
        let Some(first) = clusters.first() else {
            let why: Vec<String> = failed.iter().map(|(c, e)| format!("{c}: {e}")).collect();
            return Err(BackendError::Unavailable {
                cluster: "kubeconfig".into(),
                message: why.join("; "),
            });
        };
        let approver = Subject {
            user: first.user.clone(),
            groups,
        };
        Ok(Self {
            clusters,
            approver,
            limits: ValidationLimits::default(),
            failed,
        })
    }

    /// A backend over ready clients (tests).
    pub fn from_clusters(clusters: Vec<Arc<KubeCluster>>, groups: Vec<String>) -> Self {
        let user = clusters.first().map(|c| c.user.clone()).unwrap_or_default();
        Self {
            clusters,
            approver: Subject { user, groups },
            limits: ValidationLimits::default(),
            failed: Vec::new(),
        }
    }

    pub fn with_limits(mut self, limits: ValidationLimits) -> Self {
        self.limits = limits;
        self
    }

    pub fn limits(&self) -> &ValidationLimits {
        &self.limits
    }

    pub fn clusters(&self) -> &[Arc<KubeCluster>] {
        &self.clusters
    }

    /// Every request on every context (one List call each).
    pub async fn list(&self) -> Result<Vec<AccessRequest>, BackendError> {
        let mut out = Vec::new();
        for c in &self.clusters {
            let list = c
                .requests()
                .list(&Default::default())
                .await
                .map_err(|e| self.map_err(c, "list AccessRequests", e))?;
            for obj in list.items {
                let value =
                    serde_json::to_value(&obj).map_err(|e| BackendError::Invalid(e.to_string()))?;
                out.push(wire::request_from_json(&c.context, &value));
            }
        }
        Ok(out)
    }

    /// One request as stored, with its object.
    pub async fn get(
        &self,
        key: &RequestKey,
    ) -> Result<(AccessRequest, DynamicObject), BackendError> {
        let cluster = self.cluster(&key.cluster)?;
        self.fetch(cluster, &key.name).await
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

    fn map_err(&self, cluster: &KubeCluster, action: &str, e: kube::Error) -> BackendError {
        match api_error(&e) {
            Some((403, message)) => BackendError::Forbidden {
                user: cluster.user.clone(),
                action: action.into(),
                hint: format!(
                    "ask for the portcullis-approver role and `bind` on the role ({message})"
                ),
            },
            Some((404, _)) => BackendError::Invalid(format!("{action}: not found")),
            _ => BackendError::Unavailable {
                cluster: cluster.context.clone(),
                message: format!("{action}: {e}"),
            },
        }
    }

    async fn fetch(
        &self,
        cluster: &KubeCluster,
        name: &str,
    ) -> Result<(AccessRequest, DynamicObject), BackendError> {
        let obj = cluster
            .requests()
            .get(name)
            .await
            .map_err(|e| match api_error(&e) {
                Some((404, _)) => BackendError::NotFound(RequestKey {
                    cluster: cluster.context.clone(),
                    name: name.into(),
                }),
                _ => self.map_err(cluster, "read the request", e),
            })?;
        let value = serde_json::to_value(&obj).map_err(|e| BackendError::Invalid(e.to_string()))?;
        Ok((wire::request_from_json(&cluster.context, &value), obj))
    }

    /// Writes the status with a resourceVersion precondition: when two
    /// approvers race, the second is told who decided first.
    async fn write_status(
        &self,
        cluster: &KubeCluster,
        req: &AccessRequest,
        resource_version: &str,
    ) -> Result<AccessRequest, BackendError> {
        let patch = json!({"metadata": {"resourceVersion": resource_version}, "status": wire::status_json(req)});
        match cluster
            .requests()
            .patch_status(&req.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(obj) => {
                let value =
                    serde_json::to_value(&obj).map_err(|e| BackendError::Invalid(e.to_string()))?;
                Ok(wire::request_from_json(&cluster.context, &value))
            }
            Err(e) if api_error(&e).is_some_and(|(code, _)| code == 409) => {
                let (now, _) = self.fetch(cluster, &req.name).await?;
                let who = now
                    .status
                    .decision
                    .as_ref()
                    .map(|d| format!("{} already decided it ({:?})", d.by, d.verdict))
                    .unwrap_or_else(|| "someone else changed it first".into());
                Err(BackendError::Invalid(format!(
                    "{}: {who}; nothing was changed",
                    req.name
                )))
            }
            Err(e) => Err(self.map_err(cluster, "update the request status", e)),
        }
    }

    /// Applies a pure transition to the stored request and writes it.
    async fn transition(
        &self,
        key: &RequestKey,
        change: impl FnOnce(&mut AccessRequest, DateTime<Utc>) -> Result<(), PhaseError>,
    ) -> Result<AccessRequest, BackendError> {
        let cluster = self.cluster(&key.cluster)?;
        let (mut req, obj) = self.fetch(cluster, &key.name).await?;
        change(&mut req, Utc::now())?;
        let rv = obj.metadata.resource_version.unwrap_or_default();
        self.write_status(cluster, &req, &rv).await
    }

    fn binding_json(
        req: &AccessRequest,
        uid: &str,
        namespace: Option<&str>,
        approver: &str,
    ) -> Value {
        let mut metadata = json!({
            "name": binding_name(&req.name),
            "labels": {MANAGED_BY_LABEL: "portcullis", REQUEST_LABEL: req.name},
            "annotations": {
                EXPIRES_ANNOTATION: req.status.expires_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                APPROVED_BY_ANNOTATION: approver,
            },
            "ownerReferences": [{"apiVersion": wire::API_VERSION, "kind": wire::KIND, "name": req.name, "uid": uid}],
        });
        if let (Some(ns), Some(m)) = (namespace, metadata.as_object_mut()) {
            m.insert("namespace".into(), json!(ns));
        }
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": if namespace.is_some() { "RoleBinding" } else { "ClusterRoleBinding" },
            "metadata": metadata,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": req.role.kind.to_string(), "name": req.role.name},
            "subjects": [match req.credentials {
                Credentials::Identity => json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": req.requester.user}),
                Credentials::Token => json!({"kind": "ServiceAccount", "name": token_account(&req.name), "namespace": SYSTEM_NAMESPACE}),
            }],
        })
    }

    /// Token mode: the ServiceAccount, and a Role + RoleBinding that let the
    /// requester mint tokens for that one ServiceAccount only.
    async fn apply_token_objects(
        &self,
        cluster: &KubeCluster,
        req: &AccessRequest,
        uid: &str,
        dry_run: bool,
    ) -> Result<(), BackendError> {
        let mut params = PatchParams::apply(FIELD_MANAGER).force();
        params.dry_run = dry_run;
        let meta = |name: &str| {
            json!({
                "name": name, "namespace": SYSTEM_NAMESPACE,
                "labels": {MANAGED_BY_LABEL: "portcullis", REQUEST_LABEL: req.name},
                "ownerReferences": [{"apiVersion": wire::API_VERSION, "kind": wire::KIND, "name": req.name, "uid": uid}],
            })
        };
        let account = token_account(&req.name);
        let minting = binding_name(&req.name);
        let c = cluster.client.clone();
        let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(&account)});
        Api::<ServiceAccount>::namespaced(c.clone(), SYSTEM_NAMESPACE)
            .patch(&account, &params, &Patch::Apply(&sa))
            .await
            .map_err(|e| {
                self.map_err(
                    cluster,
                    &format!("create a ServiceAccount in {SYSTEM_NAMESPACE}"),
                    e,
                )
            })?;
        let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta(&minting),
            "rules": [{"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"], "resourceNames": [account]}]});
        Api::<Role>::namespaced(c.clone(), SYSTEM_NAMESPACE)
            .patch(&minting, &params, &Patch::Apply(&role))
            .await
            .map_err(|e| {
                self.map_err(cluster, &format!("create a Role in {SYSTEM_NAMESPACE}"), e)
            })?;
        if dry_run {
            // A RoleBinding to a Role that does not exist yet cannot be
            // dry-run (the escalation check needs the Role); the real run
            // cleans up and marks the request Failed if it is refused.
            return Ok(());
        }
        let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta(&minting),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": minting},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": req.requester.user}]});
        Api::<RoleBinding>::namespaced(c, SYSTEM_NAMESPACE)
            .patch(&minting, &params, &Patch::Apply(&binding))
            .await
            .map_err(|e| {
                self.map_err(
                    cluster,
                    &format!("create a RoleBinding in {SYSTEM_NAMESPACE}"),
                    e,
                )
            })?;
        Ok(())
    }

    async fn apply_bindings(
        &self,
        cluster: &KubeCluster,
        req: &AccessRequest,
        uid: &str,
        dry_run: bool,
    ) -> Result<Vec<BindingRef>, BackendError> {
        if req.credentials == Credentials::Token {
            self.apply_token_objects(cluster, req, uid, dry_run).await?;
        }
        let mut params = PatchParams::apply(FIELD_MANAGER).force();
        params.dry_run = dry_run;
        let name = binding_name(&req.name);
        let mut made = Vec::new();
        let namespaces = req.granted_namespaces().to_vec();
        if namespaces.is_empty() {
            let body = Self::binding_json(req, uid, None, &self.approver.user);
            let api: Api<ClusterRoleBinding> = Api::all(cluster.client.clone());
            api.patch(&name, &params, &Patch::Apply(&body))
                .await
                .map_err(|e| self.map_err(cluster, "create a ClusterRoleBinding", e))?;
            made.push(BindingRef {
                kind: "ClusterRoleBinding".into(),
                namespace: None,
                name: name.clone(),
            });
        }
        for ns in namespaces {
            let body = Self::binding_json(req, uid, Some(&ns), &self.approver.user);
            let api: Api<RoleBinding> = Api::namespaced(cluster.client.clone(), &ns);
            api.patch(&name, &params, &Patch::Apply(&body))
                .await
                .map_err(|e| self.map_err(cluster, &format!("create a RoleBinding in {ns}"), e))?;
            made.push(BindingRef {
                kind: "RoleBinding".into(),
                namespace: Some(ns),
                name: name.clone(),
            });
        }
        Ok(made)
    }
}

pub fn binding_name(request: &str) -> String {
    format!("portcullis-{request}")
}

/// Deletes the bindings a grant created, each with a uid precondition so a
/// binding recreated under the same name by someone else is never touched.
/// Already gone is success. Returns how many were deleted.
pub async fn delete_bindings(client: &Client, req: &AccessRequest) -> Result<usize, kube::Error> {
    let mut deleted = 0;
    for b in &req.status.bindings {
        let result = match (b.kind.as_str(), &b.namespace) {
            ("RoleBinding", Some(ns)) => {
                delete_owned::<RoleBinding>(Api::namespaced(client.clone(), ns), &b.name, &req.name)
                    .await
            }
            ("ServiceAccount", Some(ns)) => {
                delete_owned::<ServiceAccount>(
                    Api::namespaced(client.clone(), ns),
                    &b.name,
                    &req.name,
                )
                .await
            }
            ("Role", Some(ns)) => {
                delete_owned::<Role>(Api::namespaced(client.clone(), ns), &b.name, &req.name).await
            }
            ("ClusterRoleBinding", None) => {
                delete_owned::<ClusterRoleBinding>(Api::all(client.clone()), &b.name, &req.name)
                    .await
            }
            _ => Ok(false),
        };
        if result? {
            deleted += 1;
        }
    }
    Ok(deleted)
}

async fn delete_owned<K>(api: Api<K>, name: &str, request: &str) -> Result<bool, kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let Some(obj) = api.get_opt(name).await? else {
        return Ok(false);
    };
    let meta = obj.meta();
    if meta
        .labels
        .as_ref()
        .and_then(|l| l.get(REQUEST_LABEL))
        .map(String::as_str)
        != Some(request)
    {
        // Not ours (same name, made by someone else): never delete it.
        return Ok(false);
    }
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: meta.uid.clone(),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(name, &dp).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

#[async_trait]
impl AccessBackend for KubeBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: "kube",
            approver: self.approver.clone(),
            clusters: self.clusters.iter().map(|c| c.context.clone()).collect(),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        Utc::now()
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
            tokio::spawn(watch_requests(cluster.clone(), tx.clone()));
            tokio::spawn(watch_rbac(cluster.clone(), tx.clone()));
            // Every console also reaps: a grant closes even if no reaper runs.
            tokio::spawn(reaper::run(cluster.clone(), self.limits.clone()));
        }
        rx
    }

    async fn create(&self, new: NewRequest) -> Result<AccessRequest, BackendError> {
        let cluster = self.cluster(&new.cluster)?;
        let prefix: String = format!(
            "{}-{}-",
            new.requester
                .user
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_lowercase(),
            new.namespaces
                .first()
                .map(String::as_str)
                .unwrap_or("cluster")
        );
        let spec = wire::spec_json(
            &new.requester,
            &new.role,
            &new.namespaces,
            new.duration,
            &new.reason,
            new.ticket.as_deref(),
            new.credentials,
        );
        let obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": wire::API_VERSION, "kind": wire::KIND,
            "metadata": {"generateName": prefix},
            "spec": spec,
        }))
        .map_err(|e| BackendError::Invalid(e.to_string()))?;
        let created = cluster
            .requests()
            .create(&PostParams::default(), &obj)
            .await
            .map_err(|e| self.map_err(cluster, "create an AccessRequest", e))?;
        let value =
            serde_json::to_value(&created).map_err(|e| BackendError::Invalid(e.to_string()))?;
        Ok(wire::request_from_json(&cluster.context, &value))
    }

    async fn approve(
        &self,
        key: &RequestKey,
        spec: ApproveSpec,
    ) -> Result<AccessRequest, BackendError> {
        let cluster = self.cluster(&key.cluster)?;
        let (mut req, obj) = self.fetch(cluster, &key.name).await?;
        let uid = obj.metadata.uid.clone().unwrap_or_default();
        let rv = obj.metadata.resource_version.clone().unwrap_or_default();
        let approval = Approval {
            by: self.approver.user.clone(),
            at: Utc::now(),
            duration: spec.duration,
            namespaces: spec.namespaces,
            reason: spec.reason,
        };
        req.approve(approval, &self.limits)?;
        // Dry run first: a missing right fails before anything is written.
        self.apply_bindings(cluster, &req, &uid, true).await?;
        // Claim the decision (resourceVersion precondition), then bind:
        // of two racing approvers only the one whose claim lands binds.
        req.status.bindings = expected_bindings(&req);
        let claimed = self.write_status(cluster, &req, &rv).await?;
        match self.apply_bindings(cluster, &claimed, &uid, false).await {
            Ok(_) => Ok(claimed),
            Err(e) => {
                // Nothing half-applied: remove what was made, mark Failed.
                let _ = delete_bindings(&cluster.client, &claimed).await;
                if let Ok((mut failed, obj)) = self.fetch(cluster, &key.name).await {
                    failed.status.phase = Some(Phase::Failed);
                    failed.status.message = Some(e.to_string());
                    failed.status.ended_at = Some(Utc::now());
                    let _ = self
                        .write_status(
                            cluster,
                            &failed,
                            &obj.metadata.resource_version.unwrap_or_default(),
                        )
                        .await;
                }
                Err(e)
            }
        }
    }

    async fn deny(&self, key: &RequestKey, reason: &str) -> Result<AccessRequest, BackendError> {
        let by = self.approver.user.clone();
        self.transition(key, |r, now| r.deny(&by, now, reason))
            .await
    }

    async fn shorten(
        &self,
        key: &RequestKey,
        new_end: DateTime<Utc>,
    ) -> Result<AccessRequest, BackendError> {
        let cluster = self.cluster(&key.cluster)?;
        let (mut req, obj) = self.fetch(cluster, &key.name).await?;
        req.shorten(new_end, Utc::now())?;
        let updated = self
            .write_status(
                cluster,
                &req,
                &obj.metadata.resource_version.unwrap_or_default(),
            )
            .await?;
        // Keep the bindings' annotation in step (informational; the status rules).
        let stamp = new_end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let patch = json!({"metadata": {"annotations": {EXPIRES_ANNOTATION: stamp}}});
        for b in &updated.status.bindings {
            let result = match &b.namespace {
                Some(ns) => Api::<RoleBinding>::namespaced(cluster.client.clone(), ns)
                    .patch(&b.name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(|_| ()),
                None => Api::<ClusterRoleBinding>::all(cluster.client.clone())
                    .patch(&b.name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(|_| ()),
            };
            if let Err(e) = result {
                tracing::warn!(binding = %b.name, error = %e, "could not update the expires-at annotation");
            }
        }
        Ok(updated)
    }

    async fn revoke(&self, key: &RequestKey, reason: &str) -> Result<AccessRequest, BackendError> {
        let cluster = self.cluster(&key.cluster)?;
        let (mut req, obj) = self.fetch(cluster, &key.name).await?;
        req.revoke(&self.approver.user, Utc::now(), reason)?;
        delete_bindings(&cluster.client, &req)
            .await
            .map_err(|e| self.map_err(cluster, "delete the grant's bindings", e))?;
        let mut revoked = self
            .write_status(
                cluster,
                &req,
                &obj.metadata.resource_version.unwrap_or_default(),
            )
            .await?;
        if let Some(message) = record_verification(cluster, &revoked).await {
            revoked.status.message = Some(message);
        }
        Ok(revoked)
    }

    async fn withdraw(&self, key: &RequestKey) -> Result<AccessRequest, BackendError> {
        let by = self.approver.user.clone();
        self.transition(key, |r, now| r.withdraw(&by, now)).await
    }
}

/// The bindings an approval will create, recorded in the status before
/// they exist so a crash in between still lets revocation find them.
pub fn expected_bindings(req: &AccessRequest) -> Vec<BindingRef> {
    let name = binding_name(&req.name);
    let ns = req.granted_namespaces();
    let mut out = if req.credentials == Credentials::Token {
        // Deleted first on revoke: the ServiceAccount (its tokens stop
        // authenticating), then the minting Role and RoleBinding.
        vec![
            BindingRef {
                kind: "ServiceAccount".into(),
                namespace: Some(SYSTEM_NAMESPACE.into()),
                name: token_account(&req.name),
            },
            BindingRef {
                kind: "RoleBinding".into(),
                namespace: Some(SYSTEM_NAMESPACE.into()),
                name: name.clone(),
            },
            BindingRef {
                kind: "Role".into(),
                namespace: Some(SYSTEM_NAMESPACE.into()),
                name: name.clone(),
            },
        ]
    } else {
        Vec::new()
    };
    out.extend(grant_bindings(&name, ns));
    out
}

fn grant_bindings(name: &str, ns: &[String]) -> Vec<BindingRef> {
    let name = name.to_string();
    if ns.is_empty() {
        vec![BindingRef {
            kind: "ClusterRoleBinding".into(),
            namespace: None,
            name,
        }]
    } else {
        ns.iter()
            .map(|n| BindingRef {
                kind: "RoleBinding".into(),
                namespace: Some(n.clone()),
                name: name.clone(),
            })
            .collect()
    }
}

async fn watch_requests(cluster: Arc<KubeCluster>, tx: mpsc::UnboundedSender<BackendEvent>) {
    let mut stream = watcher(cluster.requests(), watcher::Config::default()).boxed();
    let mut reported_error = false;
    loop {
        match stream.try_next().await {
            Ok(Some(event)) => {
                if reported_error {
                    reported_error = false;
                    let _ = tx.send(BackendEvent::ClusterStatus {
                        cluster: cluster.context.clone(),
                        error: None,
                    });
                }
                let (obj, deleted) = match event {
                    watcher::Event::Apply(o) | watcher::Event::InitApply(o) => (o, false),
                    watcher::Event::Delete(o) => (o, true),
                    watcher::Event::Init | watcher::Event::InitDone => continue,
                };
                let name = obj.metadata.name.clone().unwrap_or_default();
                let sent = if deleted {
                    tx.send(BackendEvent::Removed(RequestKey {
                        cluster: cluster.context.clone(),
                        name,
                    }))
                } else {
                    let value = serde_json::to_value(&obj).unwrap_or(Value::Null);
                    tx.send(BackendEvent::Upsert(Box::new(wire::request_from_json(
                        &cluster.context,
                        &value,
                    ))))
                };
                if sent.is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(e) => {
                if !reported_error {
                    reported_error = true;
                    let text = e.to_string();
                    let message = if text.contains("404")
                        || text.contains("could not find the requested resource")
                    {
                        "the AccessRequest CRD is not installed: run `portcullis crds | kubectl apply -f -`".to_string()
                    } else {
                        format!("watching AccessRequests: {text}")
                    };
                    if tx
                        .send(BackendEvent::ClusterStatus {
                            cluster: cluster.context.clone(),
                            error: Some(message),
                        })
                        .is_err()
                    {
                        return;
                    }
                }
                // The watcher retries by itself on the next poll; back off a little.
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

enum RbacChange {
    Apply(&'static str, String, Value),
    Delete(&'static str, String),
    Ready,
    Failed(String),
}

fn rbac_stream<K>(
    api: Api<K>,
    kind: &'static str,
) -> futures::stream::BoxStream<'static, RbacChange>
where
    K: kube::Resource
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug
        + Send
        + 'static,
{
    watcher(api, watcher::Config::default())
        .map(move |e| match e {
            Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                let key = format!(
                    "{}/{}",
                    o.meta().namespace.clone().unwrap_or_default(),
                    o.meta().name.clone().unwrap_or_default()
                );
                RbacChange::Apply(kind, key, serde_json::to_value(&o).unwrap_or(Value::Null))
            }
            Ok(watcher::Event::Delete(o)) => RbacChange::Delete(
                kind,
                format!(
                    "{}/{}",
                    o.meta().namespace.clone().unwrap_or_default(),
                    o.meta().name.clone().unwrap_or_default()
                ),
            ),
            Ok(watcher::Event::InitDone) => RbacChange::Ready,
            Ok(watcher::Event::Init) => RbacChange::Ready,
            Err(e) => RbacChange::Failed(format!("watching {kind}: {e}")),
        })
        .boxed()
}

/// Watches the RBAC inventory and sends it whole after each burst of changes.
async fn watch_rbac(cluster: Arc<KubeCluster>, tx: mpsc::UnboundedSender<BackendEvent>) {
    let c = cluster.client.clone();
    let mut merged = futures::stream::select_all([
        rbac_stream(Api::<Role>::all(c.clone()), "Role"),
        rbac_stream(Api::<ClusterRole>::all(c.clone()), "ClusterRole"),
        rbac_stream(Api::<RoleBinding>::all(c.clone()), "RoleBinding"),
        rbac_stream(
            Api::<ClusterRoleBinding>::all(c.clone()),
            "ClusterRoleBinding",
        ),
        rbac_stream(Api::<Namespace>::all(c), "Namespace"),
    ]);
    let mut objects: HashMap<&'static str, BTreeMap<String, Value>> = HashMap::new();
    let mut dirty = false;
    loop {
        let next = if dirty {
            match tokio::time::timeout(Duration::from_millis(100), merged.next()).await {
                Ok(n) => n,
                Err(_) => {
                    dirty = false;
                    let inventory = build_inventory(&objects);
                    if tx
                        .send(BackendEvent::Inventory {
                            cluster: cluster.context.clone(),
                            inventory: Arc::new(inventory),
                        })
                        .is_err()
                    {
                        return;
                    }
                    continue;
                }
            }
        } else {
            merged.next().await
        };
        match next {
            None => return,
            Some(RbacChange::Apply(kind, key, v)) => {
                objects.entry(kind).or_default().insert(key, v);
                dirty = true;
            }
            Some(RbacChange::Delete(kind, key)) => {
                objects.entry(kind).or_default().remove(&key);
                dirty = true;
            }
            Some(RbacChange::Ready) => dirty = true,
            Some(RbacChange::Failed(message)) => {
                tracing::warn!(cluster = %cluster.context, %message);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

fn build_inventory(objects: &HashMap<&'static str, BTreeMap<String, Value>>) -> Inventory {
    fn items<T: serde::de::DeserializeOwned>(
        objects: &HashMap<&'static str, BTreeMap<String, Value>>,
        kind: &str,
    ) -> Vec<T> {
        objects
            .get(kind)
            .map(|m| {
                m.values()
                    .filter_map(|v| serde_json::from_value(v.clone()).ok())
                    .collect()
            })
            .unwrap_or_default()
    }
    Inventory {
        roles: items(objects, "Role"),
        cluster_roles: items(objects, "ClusterRole"),
        role_bindings: items(objects, "RoleBinding"),
        cluster_role_bindings: items(objects, "ClusterRoleBinding"),
        namespaces: objects.get("Namespace").map(|m| {
            m.keys()
                .map(|k| k.trim_start_matches('/').to_string())
                .collect()
        }),
        skipped: Vec::new(),
    }
}

/// Ends a grant whose time is up: delete its bindings, then mark it
/// Expired. Idempotent; safe with several reapers (the status write has a
/// resourceVersion precondition and losing the race is fine).
pub async fn expire(
    cluster: &KubeCluster,
    name: &str,
    limits: &ValidationLimits,
) -> Result<bool, kube::Error> {
    let Some(obj) = cluster.requests().get_opt(name).await? else {
        return Ok(false);
    };
    let value = serde_json::to_value(&obj).unwrap_or(Value::Null);
    let mut req = wire::request_from_json(&cluster.context, &value);
    let was_active = req.phase() == Phase::Active;
    if !req.expire_if_due(Utc::now(), limits) {
        return Ok(false);
    }
    if was_active {
        delete_bindings(&cluster.client, &req).await?;
    }
    let patch = json!({"metadata": {"resourceVersion": obj.metadata.resource_version}, "status": wire::status_json(&req)});
    match cluster
        .requests()
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => {
            if was_active {
                record_verification(cluster, &req).await;
            }
            Ok(true)
        }
        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Checks with the apiserver that an ended grant's permissions are gone and
/// records the outcome in `status.message` for auditors. Failure to verify
/// is logged, never fatal: the bindings are already deleted.
pub async fn record_verification(cluster: &KubeCluster, req: &AccessRequest) -> Option<String> {
    let message = match verify::verify(cluster, req).await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(request = %req.name, error = %e, "could not verify the revocation");
            return None;
        }
    };
    let patch = json!({"status": {"message": message}});
    if let Err(e) = cluster
        .requests()
        .patch_status(&req.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        tracing::warn!(request = %req.name, error = %e, "could not record the verification");
    }
    Some(message)
}

/// When the request needs the reaper next: a grant's end, or a pending
/// request's approval timeout.
pub fn deadline(req: &AccessRequest, limits: &ValidationLimits) -> Option<DateTime<Utc>> {
    match req.phase() {
        Phase::Active => req.status.expires_at,
        Phase::Pending => Some(
            req.created_at + TimeDelta::from_std(limits.approval_timeout).unwrap_or(TimeDelta::MAX),
        ),
        _ => None,
    }
}

/// Credentials mode Token: mints a token for the grant's ServiceAccount (no
/// longer than the grant has left, but at least the apiserver's 10-minute
/// minimum: deleting the ServiceAccount at the grant's end invalidates it),
/// and returns a kubeconfig with one context for it.
pub async fn login(
    cluster: &KubeCluster,
    req: &AccessRequest,
    server: &str,
    ca_data: Option<&str>,
    insecure: bool,
) -> Result<String, BackendError> {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    if req.credentials != Credentials::Token {
        return Err(BackendError::Invalid(format!(
            "{} uses your own identity: no login needed",
            req.name
        )));
    }
    if req.phase() != Phase::Active {
        return Err(BackendError::Invalid(format!(
            "{} is {}: only a live grant can log in",
            req.name,
            req.phase()
        )));
    }
    let left = req.remaining(Utc::now()).as_secs().max(600) as i64;
    let tr = TokenRequest {
        spec: TokenRequestSpec {
            audiences: Vec::new(),
            expiration_seconds: Some(left),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<ServiceAccount> = Api::namespaced(cluster.client.clone(), SYSTEM_NAMESPACE);
    let minted: TokenRequest = api
        .create_subresource(
            "token",
            &token_account(&req.name),
            &PostParams::default(),
            &tr,
        )
        .await
        .map_err(|e| match api_error(&e) {
            Some((403, m)) => BackendError::Forbidden {
                user: cluster.user.clone(),
                action: "mint a token for this grant".into(),
                hint: format!("only the requester may ({m})"),
            },
            _ => BackendError::Unavailable {
                cluster: cluster.context.clone(),
                message: e.to_string(),
            },
        })?;
    let token = minted.status.map(|s| s.token).unwrap_or_default();
    let context = format!("portcullis-{}", req.name);
    let mut cluster_entry = json!({"server": server});
    if let Some(ca) = ca_data {
        cluster_entry["certificate-authority-data"] = json!(ca);
    }
    if insecure {
        cluster_entry["insecure-skip-tls-verify"] = json!(true);
    }
    let config = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": context, "cluster": cluster_entry}],
        "users": [{"name": context, "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
        "current-context": context,
    });
    serde_yaml_ng::to_string(&config).map_err(|e| BackendError::Invalid(e.to_string()))
}
