//! Verified revocation: after a grant ends, ask the apiserver (one
//! SubjectAccessReview per sampled permission) whether the requester can
//! still do what the grant gave, and name the binding that still grants
//! anything that is still allowed (standing RBAC or another grant: expected,
//! shown, never removed).

use std::collections::BTreeSet;

use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, PostParams};

use super::KubeCluster;
use crate::domain::rbac::engine::{effective_groups, effective_rules, expand, rule_covers};
use crate::domain::rbac::model::{parse_objects, split_subresource};
use crate::domain::rbac::{Inventory, Permission, PolicyRule, Scope, Target};
use crate::domain::risk::classify;
use crate::domain::{AccessRequest, RoleKind};

/// How many of the grant's permissions are checked.
pub const SAMPLE: usize = 8;

/// The engine's model of objects served as k8s-openapi types; what does not
/// fit is named in `skipped`.
fn convert<T: serde::Serialize, U: serde::de::DeserializeOwned>(
    kind: &str,
    items: Vec<T>,
    skipped: &mut Vec<String>,
) -> Vec<U> {
    parse_objects(
        kind,
        items
            .into_iter()
            .filter_map(|i| serde_json::to_value(i).ok()),
        skipped,
    )
}

/// The cluster's RBAC as the engine models it, read once.
pub async fn inventory(client: &kube::Client) -> Result<Inventory, kube::Error> {
    Ok(read_rbac(client).await?.0)
}

/// The inventory, and the bindings as the apiserver serves them (with the
/// metadata the engine's model leaves out: creation times, labels).
async fn read_rbac(
    client: &kube::Client,
) -> Result<(Inventory, Vec<RoleBinding>, Vec<ClusterRoleBinding>), kube::Error> {
    let lp = Default::default();
    let rbs = Api::<RoleBinding>::all(client.clone())
        .list(&lp)
        .await?
        .items;
    let crbs = Api::<ClusterRoleBinding>::all(client.clone())
        .list(&lp)
        .await?
        .items;
    let roles = Api::<Role>::all(client.clone()).list(&lp).await?.items;
    let cluster_roles = Api::<ClusterRole>::all(client.clone())
        .list(&lp)
        .await?
        .items;
    let mut skipped = Vec::new();
    let inv = Inventory {
        roles: convert("Role", roles, &mut skipped),
        cluster_roles: convert("ClusterRole", cluster_roles, &mut skipped),
        role_bindings: convert("RoleBinding", rbs.clone(), &mut skipped),
        cluster_role_bindings: convert("ClusterRoleBinding", crbs.clone(), &mut skipped),
        namespaces: None,
        skipped: Vec::new(),
    };
    let inv = Inventory { skipped, ..inv };
    Ok((inv, rbs, crbs))
}

/// Bindings Portcullis did not make that name the grantee and were created
/// while the grant was live: what a grantee with RBAC write (an `admin`
/// grant) may have made to keep access. Left in place; named for review.
fn made_during(
    req: &AccessRequest,
    user: &str,
    rbs: &[RoleBinding],
    crbs: &[ClusterRoleBinding],
) -> Vec<String> {
    let Some(from) = req.status.granted_at else {
        return Vec::new();
    };
    let names_grantee = |subjects: &Option<Vec<k8s_openapi::api::rbac::v1::Subject>>,
                         ns: Option<&str>| {
        subjects.iter().flatten().any(|s| match s.kind.as_str() {
            "User" => s.name == user,
            "ServiceAccount" => {
                let sa_ns = s.namespace.as_deref().or(ns).unwrap_or_default();
                user == format!("system:serviceaccount:{sa_ns}:{}", s.name)
            }
            _ => false,
        })
    };
    let recent = |m: &kube::core::ObjectMeta| {
        let ours = m
            .labels
            .as_ref()
            .and_then(|l| l.get(crate::domain::rbac::engine::MANAGED_BY_LABEL))
            .is_some_and(|v| v == "portcullis");
        let created = m
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.as_second())
            .unwrap_or(i64::MIN);
        !ours && created >= from.timestamp()
    };
    let mut out = Vec::new();
    for b in rbs {
        if recent(&b.metadata) && names_grantee(&b.subjects, b.metadata.namespace.as_deref()) {
            out.push(format!(
                "RoleBinding {}/{}",
                b.metadata.namespace.as_deref().unwrap_or_default(),
                b.metadata.name.as_deref().unwrap_or_default()
            ));
        }
    }
    for b in crbs {
        if recent(&b.metadata) && names_grantee(&b.subjects, None) {
            out.push(format!(
                "ClusterRoleBinding {}",
                b.metadata.name.as_deref().unwrap_or_default()
            ));
        }
    }
    out
}

/// The grant's permissions most worth checking: concrete ones first (a
/// SubjectAccessReview asks about one request), worst risk first.
fn sample(inv: &Inventory, req: &AccessRequest) -> Vec<Permission> {
    let rules: Vec<PolicyRule> = match req.role.kind {
        RoleKind::ClusterRole => inv
            .cluster_role_rules(&req.role.name)
            .map(|(r, _)| r)
            .unwrap_or_default(),
        RoleKind::Role => req
            .granted_namespaces()
            .first()
            .and_then(|ns| inv.role(ns, &req.role.name))
            .map(|r| r.rules.clone())
            .unwrap_or_default(),
    };
    let scopes: Vec<Scope> = if req.granted_namespaces().is_empty() {
        vec![Scope::Cluster]
    } else {
        req.granted_namespaces()
            .iter()
            .map(|n| Scope::Namespace(n.clone()))
            .collect()
    };
    let mut all = BTreeSet::new();
    for scope in &scopes {
        for rule in &rules {
            expand(scope, rule, &mut all);
        }
    }
    let mut perms: Vec<Permission> = all
        .into_iter()
        .filter(|p| matches!(p.target, Target::Resource { .. }))
        .collect();
    let wild = |p: &Permission| match &p.target {
        Target::Resource {
            api_group,
            resource,
            ..
        } => p.verb == "*" || api_group == "*" || resource.contains('*'),
        Target::NonResource { .. } => true,
    };
    perms.sort_by_key(|p| (wild(p), std::cmp::Reverse(classify(p).severity)));
    perms.truncate(SAMPLE);
    perms
}

/// A SubjectAccessReview asking whether `subject` (with exactly `groups`)
/// may do `perm` — the apiserver's own answer to what the engine computes.
pub fn review_for(user: &str, groups: Vec<String>, perm: &Permission) -> SubjectAccessReview {
    let mut spec = SubjectAccessReviewSpec {
        user: Some(user.to_string()),
        groups: Some(groups),
        ..Default::default()
    };
    match &perm.target {
        Target::Resource {
            api_group,
            resource,
            name,
        } => {
            let (res, sub) = split_subresource(resource);
            spec.resource_attributes = Some(ResourceAttributes {
                namespace: match &perm.scope {
                    Scope::Namespace(ns) => Some(ns.clone()),
                    Scope::Cluster => None,
                },
                verb: Some(perm.verb.clone()),
                group: Some(api_group.clone()),
                resource: Some(res.to_string()),
                subresource: sub.map(str::to_string),
                name: name.clone(),
                ..Default::default()
            });
        }
        Target::NonResource { url } => {
            spec.non_resource_attributes = Some(NonResourceAttributes {
                path: Some(url.clone()),
                verb: Some(perm.verb.clone()),
            });
        }
    }
    SubjectAccessReview {
        spec,
        ..Default::default()
    }
}

/// Asks the apiserver; a review it cannot answer counts as not allowed.
pub async fn allowed(
    client: &kube::Client,
    review: &SubjectAccessReview,
) -> Result<bool, kube::Error> {
    let answer = Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), review)
        .await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

/// One line for the status and the console: "revoked and verified: …", or
/// which bindings still grant what. A permission still allowed that no
/// remaining binding explains is asked again for a moment: the apiserver's
/// authorizer follows binding deletions through its own cache.
pub async fn verify(cluster: &KubeCluster, req: &AccessRequest) -> Result<String, kube::Error> {
    const UNSEEN: &str = "a binding the engine cannot see";
    let mut attempt = 0;
    loop {
        let (inv, rbs, crbs) = read_rbac(&cluster.client).await?;
        let checks = sample(&inv, req);
        if checks.is_empty() {
            return Ok("verified: the role grants nothing the apiserver can check".into());
        }
        // The user as the apiserver would see them without their claimed
        // groups: what a grant of the user gives, and what is left of it.
        let subject = crate::domain::Subject {
            groups: Vec::new(),
            ..super::grant_subject(req)
        };
        let mut still = Vec::new();
        for perm in &checks {
            let review = review_for(&subject.user, effective_groups(&subject), perm);
            if allowed(&cluster.client, &review).await? {
                let via = effective_rules(&inv, &subject)
                    .into_iter()
                    .find(|r| rule_covers(&r.scope, &r.rule, perm))
                    .map(|r| r.via)
                    .unwrap_or_else(|| UNSEEN.into());
                still.push(format!(
                    "{} {} in {} ({via})",
                    perm.verb,
                    perm.resource_label(),
                    perm.scope
                ));
            }
        }
        attempt += 1;
        if attempt < 6 && still.iter().any(|s| s.contains(UNSEEN)) {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            continue;
        }
        let made = made_during(req, &subject.user, &rbs, &crbs);
        let made = if made.is_empty() {
            String::new()
        } else {
            format!(
                "; bindings naming the grantee were made while it was live (left in place, review them): {}",
                made.join(", ")
            )
        };
        // How it ended, in the words of its phase: an expiry is no revoke.
        let ended = match req.phase() {
            crate::domain::Phase::Expired => "expired",
            crate::domain::Phase::Released => "released",
            crate::domain::Phase::Revoked => "revoked",
            _ => "ended",
        };
        return Ok(if still.is_empty() {
            format!(
                "{ended} and verified: {} of {} sampled permissions now denied by the apiserver{made}",
                checks.len(),
                checks.len()
            )
        } else {
            format!(
                "verified: {} of {} sampled permissions denied; still granted by other bindings (left in place): {}{made}",
                checks.len() - still.len(),
                checks.len(),
                still.join("; ")
            )
        });
    }
}
