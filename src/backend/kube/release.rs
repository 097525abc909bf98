//! Release: a requester ends their own live grant early ("I'm done").
//!
//! Kubernetes RBAC cannot say "your own request", and a requester may not
//! write any request (nothing they write may start, keep or widen a
//! grant). So the right to release is a capability the apiserver checks
//! against the requester's own identity: for each live grant the reaper
//! makes a RoleBinding `portcullis-release-<request>` in portcullis-system
//! (and its Role) that lets that requester alone get and delete that one
//! RoleBinding ([`objects::release_plan`]). Deleting it is the release;
//! the reaper, watching those bindings, ends the grant as revoked by the
//! requester ([`RELEASE_REASON`](crate::domain::request::RELEASE_REASON)),
//! deleting its bindings and verifying the end like any revoke.
//!
//! What this can and cannot do:
//! - it can only end a grant, now; it never keeps, extends or widens one
//!   (the end and the bindings live in the status, which it never touches);
//! - another requester cannot release your grant (RBAC refuses them the
//!   delete), and cannot release anything by deleting requests;
//! - whoever else may delete RoleBindings in portcullis-system (cluster
//!   admins, approvers, the reaper) could end it the same way: such an end
//!   is still recorded as a release, which is why it only ever ends access.

use kube::api::{Api, DeleteParams, DynamicObject, Preconditions};

use super::grant::{self, Caller, Ended, Ending, Site};
use super::identity::Identity;
use super::objects;
use super::SYSTEM_NAMESPACE;
use crate::backend::BackendError;
use crate::domain::{AccessRequest, PhaseError};

/// The grant's recorded release binding (with its uid), if the reaper has
/// made it.
pub(crate) fn recorded(req: &AccessRequest) -> Option<&crate::domain::request::BindingRef> {
    let name = objects::release_name(&req.name);
    req.status.bindings.iter().find(|b| {
        b.kind == "RoleBinding"
            && b.name == name
            && b.namespace.as_deref() == Some(SYSTEM_NAMESPACE)
            && b.uid.is_some()
    })
}

fn is_recorded(req: &AccessRequest) -> bool {
    recorded(req).is_some()
}

fn bindings(client: &kube::Client) -> Api<DynamicObject> {
    let ar = objects::resource("RoleBinding").expect("a known kind");
    Api::namespaced_with(client.clone(), SYSTEM_NAMESPACE, &ar)
}

/// The reaper gives a live grant its release capability.
pub(crate) async fn provision(site: &Site<'_>, name: &str) -> Result<(), kube::Error> {
    grant::provision(site, name, objects::release_plan, is_recorded).await
}

/// Whether the requester has released this live grant: its recorded
/// release binding is gone (or is another object now).
pub(crate) async fn released(site: &Site<'_>, req: &AccessRequest) -> Result<bool, kube::Error> {
    let Some(b) = recorded(req) else {
        return Ok(false);
    };
    Ok(
        match bindings(&site.target.client).get_opt(&b.name).await? {
            None => true,
            Some(obj) => obj.metadata.uid != b.uid,
        },
    )
}

/// The reaper ends a released grant in its requester's name.
pub(crate) async fn end_released(
    site: &Site<'_>,
    req: &AccessRequest,
    limits: &crate::domain::ValidationLimits,
) -> Result<Ended, grant::EndError> {
    grant::end(site, &req.name, Ending::Release, limits).await
}

/// The requester releases their own live grant: deletes its release
/// binding with their own credentials (the apiserver checks it is theirs),
/// uid precondition and all. The reaper does the rest.
pub(crate) async fn request(
    site: &Site<'_>,
    me: &Identity,
    name: &str,
) -> Result<AccessRequest, BackendError> {
    let f = grant::fetch(site, Caller::Requester, name).await?;
    let mut probe = f.req.clone();
    // The domain's rules first: live, and theirs.
    probe.release(&me.user, site.store.clock.now())?;
    let Some(b) = recorded(&f.req) else {
        return Err(BackendError::Invalid(format!(
            "{name}: release is not set up yet: a reaper with the portcullis-reaper-tokens role makes each live grant's release binding (try again in a moment, or ask an approver to revoke it)"
        )));
    };
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: b.uid.clone(),
            resource_version: None,
        }),
        ..Default::default()
    };
    match bindings(&site.target.client).delete(&b.name, &dp).await {
        Ok(_) => Ok(f.req),
        // Gone already: released a moment ago (or the grant is ending).
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(f.req),
        Err(kube::Error::Api(s)) if s.code == 403 => Err(BackendError::Forbidden {
            user: me.user.clone(),
            action: format!("release {name}"),
            hint: format!(
                "only its requester ({}) may: the apiserver refused ({})",
                f.req.requester.user, s.message
            ),
        }),
        Err(e) => Err(grant::map_err(
            site,
            Caller::Requester,
            "delete the release binding",
            e,
        )),
    }
}

/// Refuses what the domain refuses, before anything is sent (the console
/// and the verbs say why at once).
pub(crate) fn check(req: &AccessRequest, me: &str) -> Result<(), PhaseError> {
    let mut probe = req.clone();
    probe.release(me, chrono::Utc::now())
}
