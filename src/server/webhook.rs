//! The admission webhook for direct mode (optional): the apiserver asks it
//! about every write to `accessrequests` and `accessrequests/status`, with
//! the writer's own `userInfo`, so what RBAC cannot say is enforced here:
//!
//! - a new request names its creator as requester, and only groups the
//!   creator has;
//! - a request's spec never changes;
//! - the requester never writes a status, and a decision is recorded under
//!   the name of whoever writes it, never the requester's;
//! - terminal phases never change (but for the verification note);
//! - `expiresAt` only moves earlier, and never past the decision's time
//!   plus its duration, with the decision's time the server's now;
//! - only the requester deletes a pending request.
//!
//! The server's and the reaper's identities (`webhook.privileged`) carry
//! out the lifecycle and are let through.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};

use super::Shared;
use crate::backend::kube::wire;
use crate::domain::{AccessRequest, Phase};

/// How far a decision's time may be from the server's clock.
pub const CLOCK_TOLERANCE: TimeDelta = TimeDelta::seconds(120);

#[derive(Debug, Clone)]
pub struct Webhook {
    pub privileged: Vec<String>,
}

/// The apiserver's question, reduced to what the rules read.
#[derive(Debug, Clone)]
pub struct Review {
    pub operation: String,
    pub subresource: String,
    pub user: String,
    pub groups: Vec<String>,
    pub object: Option<Value>,
    pub old: Option<Value>,
}

fn read(v: &Option<Value>) -> Option<AccessRequest> {
    v.as_ref().map(|o| wire::request_from_json("webhook", o))
}

fn time(v: &Option<Value>, path: &[&str]) -> Option<DateTime<Utc>> {
    let mut x = v.as_ref()?;
    for p in path {
        x = x.get(p)?;
    }
    DateTime::parse_from_rfc3339(x.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The verdict on one write: `Err(why)` refuses it.
pub fn decide(hook: &Webhook, r: &Review, now: DateTime<Utc>) -> Result<(), String> {
    if hook.privileged.contains(&r.user) {
        return Ok(());
    }
    let new = read(&r.object);
    let old = read(&r.old);
    match (r.operation.as_str(), r.subresource.as_str()) {
        ("CREATE", "") => {
            let new = new.ok_or("no object")?;
            if new.requester.user != r.user {
                return Err(format!(
                    "spec.requester.user must be you ({}), not {}",
                    r.user, new.requester.user
                ));
            }
            if let Some(g) = new.requester.groups.iter().find(|g| !r.groups.contains(g)) {
                return Err(format!("spec.requester.groups: you are not in {g}"));
            }
            Ok(())
        }
        ("UPDATE", "") => {
            let spec = |v: &Option<Value>| v.as_ref().and_then(|o| o.get("spec")).cloned();
            if spec(&r.object) != spec(&r.old) {
                return Err("spec is immutable: withdraw and ask again".into());
            }
            Ok(())
        }
        ("UPDATE", "status") => {
            let (new, old) = (new.ok_or("no object")?, old.ok_or("no old object")?);
            if r.user == old.requester.user {
                return Err("the requester never writes a request's status".into());
            }
            if old.phase().is_terminal() {
                let mut a = new.status.clone();
                let mut b = old.status.clone();
                a.message = None;
                b.message = None;
                if a != b || new.phase() != old.phase() {
                    return Err(format!(
                        "{} is {}: terminal phases never change",
                        old.name,
                        old.phase()
                    ));
                }
                return Ok(());
            }
            if new.status.decision != old.status.decision {
                let d = new
                    .status
                    .decision
                    .as_ref()
                    .ok_or("a decision is never removed")?;
                if d.by != r.user {
                    return Err(format!(
                        "status.decision.by must be you ({}), not {}",
                        r.user, d.by
                    ));
                }
                if (d.at - now).abs() > CLOCK_TOLERANCE {
                    return Err(format!(
                        "status.decision.at {} is not now by the server's clock ({})",
                        d.at, now
                    ));
                }
            }
            if new.status.revoked_by.is_some()
                && new.status.revoked_by != old.status.revoked_by
                && new.status.revoked_by.as_deref() != Some(r.user.as_str())
            {
                return Err(format!("status.revokedBy must be you ({})", r.user));
            }
            if new.phase() == Phase::Active {
                let end = time(&r.object, &["status", "expiresAt"])
                    .ok_or("a live grant needs status.expiresAt")?;
                if old.phase() == Phase::Active {
                    if let Some(before) = old.status.expires_at {
                        if end > before {
                            return Err("status.expiresAt only moves earlier".into());
                        }
                    }
                }
                let d = new
                    .status
                    .decision
                    .as_ref()
                    .ok_or("a live grant needs a decision")?;
                let limit = d.at
                    + TimeDelta::from_std(d.duration.unwrap_or_default()).unwrap_or(TimeDelta::MAX)
                    + TimeDelta::seconds(1);
                if end > limit {
                    return Err(format!(
                        "status.expiresAt {end} is past the decision's time plus its duration ({limit})"
                    ));
                }
            }
            Ok(())
        }
        ("DELETE", _) => {
            let old = old.ok_or("no old object")?;
            match old.phase() {
                Phase::Pending if old.requester.user == r.user => Ok(()),
                Phase::Pending => Err(format!(
                    "only its requester ({}) withdraws a pending request",
                    old.requester.user
                )),
                Phase::Active => {
                    Err("a live grant's request is deleted by Portcullis when it ends".into())
                }
                _ => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

/// `POST /validate`: an AdmissionReview (v1) in, its response out.
pub async fn validate(State(s): State<Shared>, Json(review): Json<Value>) -> Json<Value> {
    let req = &review["request"];
    let uid = req["uid"].clone();
    let Some(hook) = &s.webhook else {
        return Json(answer(
            uid,
            Err("this server does not serve the webhook".into()),
        ));
    };
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let r = Review {
        operation: req["operation"].as_str().unwrap_or_default().into(),
        subresource: req["subResource"].as_str().unwrap_or_default().into(),
        user: req["userInfo"]["username"]
            .as_str()
            .unwrap_or_default()
            .into(),
        groups: strings(&req["userInfo"]["groups"]),
        object: Some(req["object"].clone()).filter(|v| !v.is_null()),
        old: Some(req["oldObject"].clone()).filter(|v| !v.is_null()),
    };
    let verdict = decide(hook, &r, s.authority.now());
    if let Err(why) = &verdict {
        s.metrics.refused("webhook");
        tracing::info!(user = %r.user, operation = %r.operation, subresource = %r.subresource, %why, "webhook refused");
    }
    Json(answer(uid, verdict))
}

fn answer(uid: Value, verdict: Result<(), String>) -> Value {
    let response = match verdict {
        Ok(()) => json!({"uid": uid, "allowed": true}),
        Err(why) => json!({"uid": uid, "allowed": false,
            "status": {"code": 403, "reason": "Forbidden", "message": format!("portcullis: {why}")}}),
    };
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
}

/// What `portcullis crds --webhook URL --ca-file F` prints.
pub fn configuration(url: &str, ca_pem: &[u8]) -> String {
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: portcullis
  labels:
    app.kubernetes.io/managed-by: portcullis
webhooks:
- name: accessrequests.portcullis.dev
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Fail
  timeoutSeconds: 5
  clientConfig:
    url: "{url}"
    caBundle: {ca}
  rules:
  - apiGroups: [portcullis.dev]
    apiVersions: ["*"]
    operations: [CREATE, UPDATE, DELETE]
    resources: [accessrequests, accessrequests/status]
    scope: Cluster
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(requester: &str, status: Value) -> Value {
        json!({"metadata": {"name": "r", "creationTimestamp": "2026-11-27T00:00:00Z"},
               "spec": {"requester": {"user": requester, "groups": ["dev"]},
                        "role": {"kind": "ClusterRole", "name": "edit"}, "namespaces": ["payments"],
                        "duration": "1h", "reason": "x"},
               "status": status})
    }

    fn review(
        op: &str,
        sub: &str,
        user: &str,
        object: Option<Value>,
        old: Option<Value>,
    ) -> Review {
        Review {
            operation: op.into(),
            subresource: sub.into(),
            user: user.into(),
            groups: vec!["dev".into()],
            object,
            old,
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-27T01:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn active(by: &str, at: &str, expires: &str) -> Value {
        json!({"phase": "Active", "decision": {"by": by, "at": at, "verdict": "Approved", "duration": "1h", "namespaces": ["payments"]},
               "grantedAt": at, "expiresAt": expires})
    }

    const HOOK: fn() -> Webhook = || Webhook {
        privileged: vec!["system:serviceaccount:portcullis-system:portcullis-server".into()],
    };

    #[test]
    fn a_request_names_its_creator() {
        assert!(decide(
            &HOOK(),
            &review("CREATE", "", "alice", Some(obj("alice", Value::Null)), None),
            now()
        )
        .is_ok());
        let e = decide(
            &HOOK(),
            &review(
                "CREATE",
                "",
                "mallory",
                Some(obj("alice", Value::Null)),
                None,
            ),
            now(),
        )
        .unwrap_err();
        assert!(e.contains("must be you (mallory)"), "{e}");
        let mut r = review("CREATE", "", "alice", Some(obj("alice", Value::Null)), None);
        r.groups = vec![];
        assert!(decide(&HOOK(), &r, now())
            .unwrap_err()
            .contains("not in dev"));
    }

    #[test]
    fn the_requester_never_writes_status_and_decisions_carry_the_writer() {
        let pending = obj("alice", Value::Null);
        let approved = obj(
            "alice",
            active("bob", "2026-11-27T01:00:00Z", "2026-11-27T02:00:00Z"),
        );
        let e = decide(
            &HOOK(),
            &review(
                "UPDATE",
                "status",
                "alice",
                Some(approved.clone()),
                Some(pending.clone()),
            ),
            now(),
        )
        .unwrap_err();
        assert!(e.contains("requester never writes"), "{e}");
        assert!(decide(
            &HOOK(),
            &review(
                "UPDATE",
                "status",
                "bob",
                Some(approved.clone()),
                Some(pending.clone())
            ),
            now()
        )
        .is_ok());
        let e = decide(
            &HOOK(),
            &review(
                "UPDATE",
                "status",
                "carol",
                Some(approved),
                Some(pending.clone()),
            ),
            now(),
        )
        .unwrap_err();
        assert!(e.contains("decision.by must be you (carol)"), "{e}");
        let stale = obj(
            "alice",
            active("bob", "2026-11-26T01:00:00Z", "2026-11-26T02:00:00Z"),
        );
        assert!(decide(
            &HOOK(),
            &review("UPDATE", "status", "bob", Some(stale), Some(pending)),
            now()
        )
        .unwrap_err()
        .contains("server's clock"));
    }

    #[test]
    fn grants_only_get_shorter_and_terminal_phases_stay() {
        let live = obj(
            "alice",
            active("bob", "2026-11-27T01:00:00Z", "2026-11-27T02:00:00Z"),
        );
        let longer = obj(
            "alice",
            active("bob", "2026-11-27T01:00:00Z", "2099-01-01T00:00:00Z"),
        );
        let e = decide(
            &HOOK(),
            &review("UPDATE", "status", "bob", Some(longer), Some(live.clone())),
            now(),
        )
        .unwrap_err();
        assert!(e.contains("only moves earlier"), "{e}");
        let shorter = obj(
            "alice",
            active("bob", "2026-11-27T01:00:00Z", "2026-11-27T01:30:00Z"),
        );
        assert!(decide(
            &HOOK(),
            &review("UPDATE", "status", "bob", Some(shorter), Some(live)),
            now()
        )
        .is_ok());
        let ended = obj("alice", json!({"phase": "Revoked"}));
        let revived = obj("alice", json!({"phase": "Active"}));
        let e = decide(
            &HOOK(),
            &review(
                "UPDATE",
                "status",
                "bob",
                Some(revived),
                Some(ended.clone()),
            ),
            now(),
        )
        .unwrap_err();
        assert!(e.contains("terminal phases never change"), "{e}");
        let noted = obj(
            "alice",
            json!({"phase": "Revoked", "message": "revoked and verified"}),
        );
        assert!(decide(
            &HOOK(),
            &review("UPDATE", "status", "bob", Some(noted), Some(ended)),
            now()
        )
        .is_ok());
    }

    #[test]
    fn specs_are_immutable_and_only_the_requester_withdraws() {
        let a = obj("alice", Value::Null);
        let mut b = a.clone();
        b["spec"]["role"]["name"] = json!("cluster-admin");
        assert!(decide(
            &HOOK(),
            &review("UPDATE", "", "bob", Some(b), Some(a.clone())),
            now()
        )
        .unwrap_err()
        .contains("immutable"));
        assert!(decide(
            &HOOK(),
            &review("DELETE", "", "alice", None, Some(a.clone())),
            now()
        )
        .is_ok());
        assert!(decide(
            &HOOK(),
            &review("DELETE", "", "mallory", None, Some(a)),
            now()
        )
        .unwrap_err()
        .contains("only its requester"));
        let server = review(
            "UPDATE",
            "status",
            "system:serviceaccount:portcullis-system:portcullis-server",
            None,
            None,
        );
        assert!(
            decide(&HOOK(), &server, now()).is_ok(),
            "the lifecycle's own writer"
        );
    }
}
