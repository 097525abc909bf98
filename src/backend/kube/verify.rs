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
use crate::domain::rbac::model::split_subresource;
use crate::domain::rbac::{Inventory, Permission, PolicyRule, Scope, Target};
use crate::domain::risk::classify;
use crate::domain::{AccessRequest, RoleKind};

/// How many of the grant's permissions are checked.
pub const SAMPLE: usize = 8;

fn convert<T: serde::Serialize, U: serde::de::DeserializeOwned>(items: Vec<T>) -> Vec<U> {
    items
        .into_iter()
        .filter_map(|i| {
            serde_json::to_value(i)
                .ok()
                .and_then(|v| serde_json::from_value(v).ok())
        })
        .collect()
}

/// The cluster's RBAC as the engine models it, read once.
pub async fn inventory(client: &kube::Client) -> Result<Inventory, kube::Error> {
    let lp = Default::default();
    Ok(Inventory {
        roles: convert(Api::<Role>::all(client.clone()).list(&lp).await?.items),
        cluster_roles: convert(
            Api::<ClusterRole>::all(client.clone())
                .list(&lp)
                .await?
                .items,
        ),
        role_bindings: convert(
            Api::<RoleBinding>::all(client.clone())
                .list(&lp)
                .await?
                .items,
        ),
        cluster_role_bindings: convert(
            Api::<ClusterRoleBinding>::all(client.clone())
                .list(&lp)
                .await?
                .items,
        ),
        namespaces: None,
        skipped: Vec::new(),
    })
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
/// which bindings still grant what.
pub async fn verify(cluster: &KubeCluster, req: &AccessRequest) -> Result<String, kube::Error> {
    let inv = inventory(&cluster.client).await?;
    let checks = sample(&inv, req);
    if checks.is_empty() {
        return Ok("verified: the role grants nothing the apiserver can check".into());
    }
    let subject = super::grant_subject(req);
    let mut still = Vec::new();
    for perm in &checks {
        let review = review_for(&subject.user, effective_groups(&subject), perm);
        if allowed(&cluster.client, &review).await? {
            let via = effective_rules(&inv, &subject)
                .into_iter()
                .find(|r| rule_covers(&r.scope, &r.rule, perm))
                .map(|r| r.via)
                .unwrap_or_else(|| "a binding the engine cannot see".into());
            still.push(format!(
                "{} {} in {} ({via})",
                perm.verb,
                perm.resource_label(),
                perm.scope
            ));
        }
    }
    Ok(if still.is_empty() {
        format!(
            "revoked and verified: {} of {} sampled permissions now denied by the apiserver",
            checks.len(),
            checks.len()
        )
    } else {
        format!(
            "verified: {} of {} sampled permissions denied; still granted by other bindings (left in place): {}",
            checks.len() - still.len(),
            checks.len(),
            still.join("; ")
        )
    })
}
