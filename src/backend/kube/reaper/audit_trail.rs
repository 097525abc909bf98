//! Direct mode's audit trail, written by the reaper (`portcullis reaper
//! --audit-log FILE`): it watches every AccessRequest, turns each change
//! into events with the same [`crate::audit::derive`] the server uses,
//! appends them to its hash-chained log and posts each as a Kubernetes
//! Event on the request (a cluster-scoped object's Events live in
//! namespace `default`: `kubectl get events --field-selector
//! involvedObject.name=NAME`, and `kubectl describe accessrequest NAME`).
//!
//! Who did what is read from the request object: in direct mode that is
//! the cluster's RBAC plus, when installed, the webhook's check against the
//! apiserver's own userInfo (`verifiedBy: "request-object"`). Refused
//! attempts never reach the object in direct mode; the apiserver's audit
//! log is where those live.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event as KubeEvent, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::ResourceExt;

use crate::audit::derive::{self, Context};
use crate::audit::log::AuditLog;
use crate::audit::{Outcome, Sealed};
use crate::backend::kube::cluster::KubeCluster;
use crate::crd::wire;
use crate::domain::AccessRequest;

/// Where Events about cluster-scoped objects go: the apiserver accepts a
/// core/v1 Event without `eventTime` about one in `default` (with
/// `eventTime` only in `kube-system`, which is no place for ours).
pub(crate) const EVENTS_NAMESPACE: &str = "default";

/// Follows `cluster`'s requests into `log` until the task is dropped.
pub(crate) async fn follow(cluster: Arc<KubeCluster>, log: Arc<AuditLog>, component: &'static str) {
    let mut seen: HashMap<String, AccessRequest> = HashMap::new();
    let mut uids: HashMap<String, String> = HashMap::new();
    let events: Api<KubeEvent> = Api::namespaced(cluster.client.clone(), EVENTS_NAMESPACE);
    let mut warned = false;
    let mut stream = watcher(cluster.requests(), cluster.watch_config().await)
        .modify(super::super::lean::lean)
        .default_backoff()
        .boxed();
    let mut retention_check = tokio::time::interval(RETENTION_CHECK);
    // Until the apiserver says this identity may not delete requests.
    let mut may_forget = true;
    loop {
        let event = tokio::select! {
            e = stream.next() => match e {
                Some(e) => e,
                None => return,
            },
            _ = retention_check.tick() => {
                if may_forget {
                    may_forget = forget_past_retention(&cluster, &seen, &uids, &log).await;
                }
                continue;
            }
        };
        let obj = match event {
            Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => o,
            Ok(watcher::Event::Delete(o)) => {
                // A pending request deleted is a withdrawal in direct mode;
                // who deleted it is not in the object (the apiserver's own
                // audit log has it).
                if let Some(was) = seen.remove(&o.name_any()) {
                    if was.phase() == crate::domain::Phase::Pending {
                        let mut gone = was.clone();
                        gone.status.phase = Some(crate::domain::Phase::Withdrawn);
                        gone.status.ended_at = Some(cluster.clock.now());
                        let ctx = Context {
                            actor: None,
                            recorded_by: "request-object".into(),
                            risk: None,
                            now: cluster.clock.now(),
                        };
                        let mut events = derive::changes(Some(&was), &gone, &ctx);
                        for e in &mut events {
                            e.actor = Some(crate::audit::Actor::new(
                                "(whoever deleted it: see the apiserver's audit log)",
                                "unverified",
                            ));
                            e.message = "deleted while pending".into();
                        }
                        if let Err(e) = log.record(events) {
                            tracing::error!(error = %e, "cannot write the audit log");
                        }
                    }
                }
                continue;
            }
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(error = %e, context = %cluster.context, "audit watch");
                continue;
            }
        };
        let value = serde_json::to_value(&obj).unwrap_or_default();
        let req = wire::request_from_json(&cluster.context, &value);
        let ctx = Context {
            actor: None,
            recorded_by: "request-object".into(),
            risk: None,
            now: cluster.clock.now(),
        };
        let fresh: Vec<_> = derive::changes(seen.get(&req.name), &req, &ctx)
            .into_iter()
            .filter(|e| !log.has(&e.id))
            .collect();
        if let Some(uid) = obj.uid() {
            uids.insert(req.name.clone(), uid);
        }
        if !fresh.is_empty() {
            match log.record(fresh) {
                Ok(sealed) => {
                    for s in &sealed {
                        let uid = uids.get(&s.event.request).cloned();
                        if let Err(e) = post(&events, s, uid, component).await {
                            if !warned {
                                warned = true;
                                tracing::warn!(error = %e, "cannot post audit events as Kubernetes Events (the reaper needs create on events in namespace default)");
                                eprintln!("portcullis reaper: {}: cannot post Kubernetes Events ({e}); the audit log still has them", cluster.context);
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot write the audit log");
                    eprintln!("portcullis reaper: {e}");
                }
            }
        }
        seen.insert(req.name.clone(), req);
    }
}

/// How often ended requests are checked against the cluster's retention.
const RETENTION_CHECK: std::time::Duration = std::time::Duration::from_secs(60);

/// Deletes the ended requests past the cluster's retention whose every
/// record is in the log (their history is the log's from then on: `audit
/// show`). Nothing when the settings cannot be read: kept, not guessed.
/// The shipped reaper role may not delete requests (a stolen reaper token
/// must not erase them): this needs `delete` on accessrequests granted to
/// the reaper's identity; refused, it says so once and returns false.
async fn forget_past_retention(
    cluster: &KubeCluster,
    seen: &HashMap<String, AccessRequest>,
    uids: &HashMap<String, String>,
    log: &AuditLog,
) -> bool {
    let Ok(settings) = cluster.settings().await else {
        return true;
    };
    let now = cluster.clock.now();
    let ctx = Context {
        actor: None,
        recorded_by: "request-object".into(),
        risk: None,
        now,
    };
    for (name, req) in seen {
        let due = req
            .forgettable_at(settings.retention)
            .is_some_and(|at| at <= now);
        let recorded = || {
            derive::changes(None, req, &ctx)
                .iter()
                .all(|e| log.has(&e.id))
        };
        if !due || !recorded() {
            continue;
        }
        let params = kube::api::DeleteParams {
            preconditions: Some(kube::api::Preconditions {
                uid: uids.get(name).cloned(),
                resource_version: None,
            }),
            ..Default::default()
        };
        match cluster.requests().delete(name, &params).await {
            Ok(_) => tracing::info!(request = %name, "deleted past its retention"),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(kube::Error::Api(e)) if e.code == 403 => {
                tracing::warn!(context = %cluster.context, "ended requests past their retention stay: this identity may not delete accessrequests (grant it to enable retention in direct mode)");
                return false;
            }
            Err(e) => {
                tracing::warn!(request = %name, error = %e, "could not delete a request past its retention");
                return true;
            }
        }
    }
    true
}

/// `ReviewApproved` for `review.approved`: Kubernetes' reason style.
fn reason(kind: &str) -> String {
    kind.split(['.', '_'])
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// One record as an Event on its request. The name is the record's id, so
/// two reapers (or a restart) post it once; AlreadyExists is success.
pub(crate) async fn post(
    api: &Api<KubeEvent>,
    s: &Sealed,
    uid: Option<String>,
    component: &str,
) -> Result<(), kube::Error> {
    let e = &s.event;
    if e.request.is_empty() {
        return Ok(());
    }
    let actor = e
        .actor
        .as_ref()
        .map(|a| a.user.clone())
        .unwrap_or_else(|| "someone".into());
    let mut message = format!("{actor}: {}", e.kind.as_str());
    if !e.message.is_empty() {
        message.push_str(": ");
        message.push_str(&e.message);
    }
    let message = crate::domain::sanitize::inert(&message, 1000).into_owned();
    // k8s-openapi speaks jiff; the domain speaks chrono.
    let at = k8s_openapi::jiff::Timestamp::new(
        e.time.timestamp(),
        e.time.timestamp_subsec_nanos() as i32,
    )
    .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
    let time = Time(at);
    let event = KubeEvent {
        metadata: ObjectMeta {
            name: Some(format!("{}.{}", e.request, &e.id[..e.id.len().min(16)])),
            namespace: Some(EVENTS_NAMESPACE.into()),
            labels: Some([("portcullis.dev/audit-seq".to_string(), s.seq.to_string())].into()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("portcullis.dev/v1alpha1".into()),
            kind: Some("AccessRequest".into()),
            name: Some(e.request.clone()),
            uid,
            ..Default::default()
        },
        reason: Some(reason(e.kind.as_str())),
        message: Some(message),
        type_: Some(
            match e.outcome {
                Outcome::Success => "Normal",
                Outcome::Failure => "Warning",
            }
            .into(),
        ),
        first_timestamp: Some(time.clone()),
        last_timestamp: Some(time),
        action: Some(e.kind.as_str().into()),
        reporting_component: Some(format!("portcullis.dev/{component}")),
        reporting_instance: Some(component.into()),
        count: Some(1),
        ..Default::default()
    };
    match api.create(&PostParams::default(), &event).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reasons_read_as_kubernetes_reasons() {
        assert_eq!(super::reason("review.approved"), "ReviewApproved");
        assert_eq!(super::reason("request.timed_out"), "RequestTimedOut");
    }
}
