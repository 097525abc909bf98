//! The Kubernetes objects a grant consists of, created and deleted in one
//! place.
//!
//! A grant's bindings are created with a plain `create` (never an apply
//! over someone else's object): a same-named object that was not made for
//! this grant makes the approval fail instead of being adopted. What was
//! created is recorded by uid in the request's status, which the grantee
//! cannot write; deletion goes by that uid, so a grantee who strips the
//! labels or annotations of their own binding (an `admin` grant may edit
//! RoleBindings in its namespace) still loses it on time.
//!
//! No ownerReference points at the request: deleting a request with
//! `propagationPolicy: Foreground` (which any requester may do) would have
//! the garbage collector delete a live grant's bindings behind the
//! finalizer's back. The request's uid travels in an annotation instead;
//! the reaper's sweep does what garbage collection would have done.

use kube::api::{Api, DeleteParams, DynamicObject, PostParams, Preconditions};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{json, Value};

use super::{binding_name, token_account, REQUEST_LABEL, SYSTEM_NAMESPACE};
use crate::domain::rbac::engine::MANAGED_BY_LABEL;
use crate::domain::request::BindingRef;
use crate::domain::{AccessRequest, Credentials};

pub const EXPIRES_ANNOTATION: &str = "portcullis.dev/expires-at";
pub const APPROVED_BY_ANNOTATION: &str = "portcullis.dev/approved-by";
/// The uid of the request an object was made for.
pub(crate) const REQUEST_UID_ANNOTATION: &str = "portcullis.dev/request-uid";

/// The API resource of each kind a grant may create.
pub(crate) fn resource(kind: &str) -> Option<ApiResource> {
    let (group, version, plural) = match kind {
        "RoleBinding" => ("rbac.authorization.k8s.io", "v1", "rolebindings"),
        "ClusterRoleBinding" => ("rbac.authorization.k8s.io", "v1", "clusterrolebindings"),
        "Role" => ("rbac.authorization.k8s.io", "v1", "roles"),
        "ServiceAccount" => ("", "v1", "serviceaccounts"),
        _ => return None,
    };
    Some(ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, version, kind),
        plural,
    ))
}

fn api(client: &kube::Client, kind: &str, namespace: Option<&str>) -> Option<Api<DynamicObject>> {
    let ar = resource(kind)?;
    Some(match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    })
}

/// One object to create, with the reference recorded for it.
#[derive(Debug, Clone)]
pub struct Planned {
    pub reference: BindingRef,
    pub body: Value,
}

fn metadata(req: &AccessRequest, request_uid: &str, name: &str, namespace: Option<&str>) -> Value {
    let mut m = json!({
        "name": name,
        "labels": {MANAGED_BY_LABEL: "portcullis", REQUEST_LABEL: req.name},
        "annotations": {REQUEST_UID_ANNOTATION: request_uid},
    });
    if let Some(ns) = namespace {
        m["namespace"] = json!(ns);
    }
    m
}

fn planned(kind: &str, namespace: Option<&str>, name: &str, body: Value) -> Planned {
    Planned {
        reference: BindingRef {
            kind: kind.into(),
            namespace: namespace.map(str::to_string),
            name: name.into(),
            uid: None,
        },
        body,
    }
}

/// The bindings an approval creates: one RoleBinding per granted namespace,
/// or one ClusterRoleBinding; their subject is the requester (Identity) or
/// the grant's ServiceAccount (Token).
pub(crate) fn grant_plan(req: &AccessRequest, request_uid: &str, approver: &str) -> Vec<Planned> {
    let name = binding_name(&req.name);
    let subject = match req.credentials {
        Credentials::Identity => {
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": req.requester.user})
        }
        Credentials::Token => {
            json!({"kind": "ServiceAccount", "name": token_account(&req.name), "namespace": SYSTEM_NAMESPACE})
        }
    };
    let body = |namespace: Option<&str>| {
        let mut meta = metadata(req, request_uid, &name, namespace);
        // Informational only: the end is enforced from the request's
        // status, which the grantee cannot write.
        meta["annotations"] = json!({
            REQUEST_UID_ANNOTATION: request_uid,
            EXPIRES_ANNOTATION: req.status.expires_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            APPROVED_BY_ANNOTATION: approver,
        });
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": if namespace.is_some() { "RoleBinding" } else { "ClusterRoleBinding" },
            "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": req.role.kind.to_string(), "name": req.role.name},
            "subjects": [subject.clone()],
        })
    };
    let namespaces = req.granted_namespaces();
    if namespaces.is_empty() {
        vec![planned("ClusterRoleBinding", None, &name, body(None))]
    } else {
        namespaces
            .iter()
            .map(|ns| planned("RoleBinding", Some(ns), &name, body(Some(ns))))
            .collect()
    }
}

/// Token mode: the grant's ServiceAccount, and a Role + RoleBinding that let
/// the requester (only) mint tokens for that one ServiceAccount. Made by the
/// reaper, which alone holds the minting right these need.
pub(crate) fn token_plan(req: &AccessRequest, request_uid: &str) -> Vec<Planned> {
    let account = token_account(&req.name);
    let minting = binding_name(&req.name);
    let ns = Some(SYSTEM_NAMESPACE);
    vec![
        planned(
            "ServiceAccount",
            ns,
            &account,
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata(req, request_uid, &account, ns)}),
        ),
        planned(
            "Role",
            ns,
            &minting,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": metadata(req, request_uid, &minting, ns),
                "rules": [{"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"], "resourceNames": [account]}]}),
        ),
        planned(
            "RoleBinding",
            ns,
            &minting,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": metadata(req, request_uid, &minting, ns),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": minting},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": req.requester.user}]}),
        ),
    ]
}

/// Server mode's Token-mode objects: the grant's ServiceAccount alone
/// (the server mints for it; nobody else gets the right to).
pub(crate) fn token_account_plan(req: &AccessRequest, request_uid: &str) -> Vec<Planned> {
    token_plan(req, request_uid)
        .into_iter()
        .filter(|p| p.reference.kind == "ServiceAccount")
        .collect()
}

/// The name of a grant's release binding (and its Role).
pub(crate) fn release_name(request: &str) -> String {
    let mut name = format!("portcullis-release-{request}");
    name.truncate(253);
    name
}

/// The requester's right to end their own live grant early: a Role and a
/// RoleBinding in portcullis-system that let the requester (the user the
/// apiserver authenticates, only) get and delete that very RoleBinding.
/// Deleting it is the release: the reaper sees it gone and ends the grant
/// in their name. Made by the reaper (which holds what it hands out).
pub(crate) fn release_plan(req: &AccessRequest, request_uid: &str) -> Vec<Planned> {
    let name = release_name(&req.name);
    let ns = Some(SYSTEM_NAMESPACE);
    vec![
        planned(
            "Role",
            ns,
            &name,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": metadata(req, request_uid, &name, ns),
                "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings"], "verbs": ["get", "delete"], "resourceNames": [name]}]}),
        ),
        planned(
            "RoleBinding",
            ns,
            &name,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": metadata(req, request_uid, &name, ns),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": req.requester.user}]}),
        ),
    ]
}

/// Why one object could not be created.
#[derive(Debug)]
pub(crate) struct CreateError {
    pub reference: BindingRef,
    pub error: kube::Error,
}

/// Whether `obj` says it was made for the request with uid `request_uid`
/// (its annotation; an ownerReference on objects made by older versions).
pub(crate) fn made_for(obj: &kube::core::ObjectMeta, request_uid: &str) -> bool {
    obj.annotations
        .as_ref()
        .and_then(|a| a.get(REQUEST_UID_ANNOTATION))
        .is_some_and(|uid| uid == request_uid)
        || obj
            .owner_references
            .as_ref()
            .is_some_and(|refs| refs.iter().any(|r| r.uid == request_uid))
}

/// Whether an existing object grants exactly what the plan would: the same
/// roleRef, subjects and rules. A look-alike with other subjects (made by
/// someone who saw the claim) is never taken over.
fn same_grant(existing: &DynamicObject, planned: &Value) -> bool {
    ["roleRef", "subjects", "rules"]
        .iter()
        .all(|k| existing.data.get(*k) == planned.get(*k))
}

/// Creates each planned object (or only checks, with `dry_run`), returning
/// the references with the uids the apiserver gave them. An object that
/// already exists is taken over only if it was made for this same request
/// (a retry after a crash); anything else is an error, and `made` holds
/// what was created before it.
pub(crate) async fn create_all(
    client: &kube::Client,
    plan: &[Planned],
    request_uid: &str,
    dry_run: bool,
    made: &mut Vec<BindingRef>,
) -> Result<(), CreateError> {
    let params = PostParams {
        dry_run,
        field_manager: Some(super::FIELD_MANAGER.into()),
    };
    for p in plan {
        let r = &p.reference;
        let fail = |error| CreateError {
            reference: r.clone(),
            error,
        };
        let Some(api) = api(client, &r.kind, r.namespace.as_deref()) else {
            continue;
        };
        let obj: DynamicObject =
            serde_json::from_value(p.body.clone()).map_err(|e| fail(kube::Error::SerdeError(e)))?;
        let uid = match api.create(&params, &obj).await {
            Ok(created) => created.metadata.uid,
            Err(kube::Error::Api(s)) if s.code == 409 && !dry_run => {
                let existing = api.get(&r.name).await.map_err(fail)?;
                if !made_for(&existing.metadata, request_uid) || !same_grant(&existing, &p.body) {
                    return Err(fail(kube::Error::Api(s)));
                }
                existing.metadata.uid
            }
            Err(e) => return Err(fail(e)),
        };
        if !dry_run {
            made.push(BindingRef { uid, ..r.clone() });
        }
    }
    Ok(())
}

/// What [`delete_recorded`] did.
#[derive(Debug, Default)]
pub(crate) struct Deletion {
    pub deleted: usize,
    /// Token-mode objects in portcullis-system this identity may not delete
    /// (an approver's revoke): harmless once the bindings are gone, and
    /// left for the reaper, which may.
    pub left: Vec<BindingRef>,
    /// Objects the status named that Portcullis did not make for this
    /// request (see [`provably_ours`]): never deleted.
    pub refused: Vec<BindingRef>,
}

/// How far a target's clock may trail the hub's: an object made for a
/// request is never older than the request by more than this.
pub(crate) const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::seconds(120);

/// Whether `kind` `namespace`/`name` is an object Portcullis makes for
/// `req`: its binding (a RoleBinding in a granted namespace, or the
/// ClusterRoleBinding of a cluster-wide grant; in Token mode also the
/// minting Role and RoleBinding in portcullis-system), its Token-mode
/// ServiceAccount, or its release Role and RoleBinding (portcullis-system).
/// Name, kind and namespace together: a name alone can collide (the
/// release objects of `a` share their name with the binding of a request
/// named `release-a`).
pub(crate) fn makes_for(
    req: &AccessRequest,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
) -> bool {
    let system = namespace == Some(SYSTEM_NAMESPACE);
    let granted = req.granted_namespaces();
    let token = req.credentials == Credentials::Token;
    (name == binding_name(&req.name)
        && match kind {
            "RoleBinding" => {
                namespace.is_some_and(|ns| granted.iter().any(|g| g == ns)) || (token && system)
            }
            "ClusterRoleBinding" => namespace.is_none() && granted.is_empty(),
            "Role" => token && system,
            _ => false,
        })
        || (name == token_account(&req.name) && kind == "ServiceAccount" && system && token)
        || (name == release_name(&req.name) && matches!(kind, "Role" | "RoleBinding") && system)
}

/// Whether `obj` is provably one Portcullis made for `req` (stored with
/// uid `request_uid`), so that ending the grant may delete it. A status can
/// be written by others (an approver in direct mode, a hub writer), so what
/// it says is never enough on its own: the object must be one Portcullis
/// makes for this request ([`makes_for`]: name, kind and namespace), and either carry this
/// request's uid (written when it was made; only someone with rights on it
/// could forge that) or be the object the status recorded by uid *and*
/// younger than the request (a standing object predates any request that
/// names it). The second way keeps a grantee who stripped the annotation of
/// their own binding from keeping it.
pub(crate) fn provably_ours(
    obj: &kube::core::ObjectMeta,
    kind: &str,
    req: &AccessRequest,
    request_uid: &str,
    recorded_uid: Option<&str>,
) -> bool {
    let Some(name) = obj.name.as_deref() else {
        return false;
    };
    if !makes_for(req, kind, obj.namespace.as_deref(), name) {
        return false;
    }
    if made_for(obj, request_uid) {
        return true;
    }
    let recorded = recorded_uid.is_some() && obj.uid.as_deref() == recorded_uid;
    let younger = obj
        .creation_timestamp
        .as_ref()
        // k8s-openapi speaks jiff; the domain speaks chrono.
        .is_some_and(|t| t.0.as_second() >= (req.created_at - CLOCK_SKEW).timestamp());
    recorded && younger
}

/// Deletes the objects a grant recorded, each with a uid precondition,
/// but only those [`provably_ours`]: a status naming anything else (a
/// standing binding's uid) deletes nothing. Already gone is success.
pub(crate) async fn delete_recorded(
    client: &kube::Client,
    req: &AccessRequest,
    request_uid: &str,
) -> Result<Deletion, kube::Error> {
    let mut out = Deletion::default();
    for b in &req.status.bindings {
        let Some(api) = api(client, &b.kind, b.namespace.as_deref()) else {
            continue;
        };
        let token_object = matches!(b.kind.as_str(), "ServiceAccount" | "Role");
        let obj = match api.get_opt(&b.name).await {
            Ok(Some(obj)) => obj,
            Ok(None) => continue,
            Err(kube::Error::Api(s)) if s.code == 403 && token_object => {
                out.left.push(b.clone());
                continue;
            }
            Err(e) => return Err(e),
        };
        if !provably_ours(&obj.metadata, &b.kind, req, request_uid, b.uid.as_deref()) {
            tracing::warn!(request = %req.name, kind = %b.kind, namespace = ?b.namespace, name = %b.name,
                "the status names an object Portcullis did not make for this request: left alone");
            out.refused.push(b.clone());
            continue;
        }
        match delete_uid(&api, &b.name, obj.metadata.uid.clone()).await {
            Ok(true) => out.deleted += 1,
            Ok(false) => {}
            Err(kube::Error::Api(s)) if s.code == 403 && token_object => out.left.push(b.clone()),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Deletes one object if it still has `uid`; gone or replaced is not an error.
pub(crate) async fn delete_uid(
    api: &Api<DynamicObject>,
    name: &str,
    uid: Option<String>,
) -> Result<bool, kube::Error> {
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid,
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

/// Deletes what `made` lists (used to undo a failed approval).
pub(crate) async fn delete_refs(
    client: &kube::Client,
    made: &[BindingRef],
) -> Result<(), kube::Error> {
    for b in made {
        if let Some(api) = api(client, &b.kind, b.namespace.as_deref()) {
            delete_uid(&api, &b.name, b.uid.clone()).await?;
        }
    }
    Ok(())
}

/// Keeps the bindings' informational `expires-at` annotation in step after
/// a shorten (best effort: the status is what rules).
pub(crate) async fn annotate_expiry(client: &kube::Client, req: &AccessRequest) {
    let Some(end) = req.status.expires_at else {
        return;
    };
    let stamp = end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let patch = json!({"metadata": {"annotations": {EXPIRES_ANNOTATION: stamp}}});
    for b in &req.status.bindings {
        if !b.kind.ends_with("Binding") || b.namespace.as_deref() == Some(SYSTEM_NAMESPACE) {
            continue;
        }
        let Some(api) = api(client, &b.kind, b.namespace.as_deref()) else {
            continue;
        };
        if let Err(e) = api
            .patch(
                &b.name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await
        {
            tracing::warn!(binding = %b.name, error = %e, "could not update the expires-at annotation");
        }
    }
}
