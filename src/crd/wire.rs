//! `AccessRequest` objects as stored on the cluster (JSON), read leniently:
//! a hand-made object with missing fields or wrong types still becomes a
//! request, marked malformed with every defect named, so the console can
//! list it as invalid and let an approver deny it. Pure: no IO.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::domain::request::{Decision, Status};
use crate::domain::{
    duration, AccessRequest, Credentials, NewRequest, Phase, RoleKind, RoleRef, Subject, Verdict,
};

pub(crate) const GROUP: &str = "portcullis.dev";
pub(crate) const VERSION: &str = "v1alpha1";
pub(crate) const KIND: &str = "AccessRequest";
pub(crate) const PLURAL: &str = "accessrequests";
pub(crate) const API_VERSION: &str = "portcullis.dev/v1alpha1";

/// Reads fields, remembering each defect.
struct Reader<'a> {
    defects: Vec<String>,
    root: &'a Value,
}

impl<'a> Reader<'a> {
    fn at(&self, path: &str) -> Option<&'a Value> {
        let mut v = self.root;
        for part in path.split('.') {
            v = v.get(part)?;
        }
        (!v.is_null()).then_some(v)
    }

    fn string(&mut self, path: &str, required: bool) -> Option<String> {
        match self.at(path) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.defects
                    .push(format!("{path}: expected a string, got {}", kind_of(other)));
                None
            }
            None => {
                if required {
                    self.defects.push(format!("{path}: missing"));
                }
                None
            }
        }
    }

    fn strings(&mut self, path: &str) -> Vec<String> {
        match self.at(path) {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| match v {
                    Value::String(s) => Some(s.clone()),
                    other => {
                        self.defects.push(format!(
                            "{path}[{i}]: expected a string, got {}",
                            kind_of(other)
                        ));
                        None
                    }
                })
                .collect(),
            Some(other) => {
                self.defects.push(format!(
                    "{path}: expected a list of strings, got {}",
                    kind_of(other)
                ));
                Vec::new()
            }
        }
    }

    fn time(&mut self, path: &str) -> Option<DateTime<Utc>> {
        let s = self.string(path, false)?;
        match DateTime::parse_from_rfc3339(&s) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                self.defects
                    .push(format!("{path}: '{s}' is not an RFC 3339 time"));
                None
            }
        }
    }

    fn duration(&mut self, path: &str, required: bool) -> Option<Duration> {
        let s = self.string(path, required)?;
        match duration::parse(&s) {
            Ok(d) => Some(d),
            Err(e) => {
                self.defects.push(format!("{path}: {e}"));
                None
            }
        }
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn phase_of(s: &str) -> Option<Phase> {
    Some(match s {
        "Pending" => Phase::Pending,
        "Active" => Phase::Active,
        "Denied" => Phase::Denied,
        "Expired" => Phase::Expired,
        "Revoked" => Phase::Revoked,
        "Released" => Phase::Released,
        "Withdrawn" => Phase::Withdrawn,
        "Failed" => Phase::Failed,
        _ => return None,
    })
}

/// Reads one stored object of `cluster`. Never fails: defects are collected
/// in `malformed`.
pub fn request_from_json(cluster: &str, obj: &Value) -> AccessRequest {
    let mut r = Reader {
        defects: Vec::new(),
        root: obj,
    };
    let name = r.string("metadata.name", true).unwrap_or_default();
    let created_at = r.time("metadata.creationTimestamp").unwrap_or_default();
    let user = r.string("spec.requester.user", true).unwrap_or_default();
    let groups = r.strings("spec.requester.groups");
    let kind = r.role_kind();
    let role_name = r.string("spec.role.name", true).unwrap_or_default();
    let namespaces = r.strings("spec.namespaces");
    let asked = r.duration("spec.duration", true).unwrap_or_default();
    let reason = r.string("spec.reason", true).unwrap_or_default();
    let ticket = r.string("spec.ticket", false);
    let credentials = r.credentials();
    let phase = r.phase();
    let decision = r.decision();
    let bindings = r.bindings();
    let reviews = r.reviews();
    let extends = r.string("spec.extends", false);
    let status = Status {
        phase,
        decision,
        granted_at: r.time("status.grantedAt"),
        expires_at: r.time("status.expiresAt"),
        ended_at: r
            .time("status.revokedAt")
            .or_else(|| r.time("status.endedAt")),
        revoked_by: r.string("status.revokedBy", false),
        revoke_reason: r.string("status.revokeReason", false),
        message: r.string("status.message", false),
        bindings,
        reviews,
    };
    AccessRequest {
        name,
        uid: obj
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .map(str::to_string),
        cluster: cluster.to_string(),
        created_at,
        requester: Subject { user, groups },
        role: RoleRef {
            kind,
            name: role_name,
        },
        namespaces,
        duration: asked,
        reason,
        ticket,
        credentials,
        extends,
        status,
        malformed: (!r.defects.is_empty()).then(|| r.defects.join("; ")),
    }
}

impl Reader<'_> {
    /// `spec.role.kind` (default ClusterRole).
    fn role_kind(&mut self) -> RoleKind {
        match self.string("spec.role.kind", true).as_deref() {
            Some("Role") => RoleKind::Role,
            Some("ClusterRole") | None => RoleKind::ClusterRole,
            Some(other) => {
                self.defects.push(format!(
                    "spec.role.kind: '{other}' is neither Role nor ClusterRole"
                ));
                RoleKind::ClusterRole
            }
        }
    }

    /// `spec.credentials` (default Identity).
    fn credentials(&mut self) -> Credentials {
        match self.string("spec.credentials", false).as_deref() {
            None | Some("Identity") => Credentials::Identity,
            Some("Token") => Credentials::Token,
            Some(other) => {
                self.defects.push(format!(
                    "spec.credentials: '{other}' is neither Identity nor Token"
                ));
                Credentials::Identity
            }
        }
    }

    /// `status.phase`, when it names one.
    fn phase(&mut self) -> Option<Phase> {
        match self.string("status.phase", false) {
            None => None,
            Some(p) => match phase_of(&p) {
                Some(p) => Some(p),
                None => {
                    self.defects
                        .push(format!("status.phase: unknown phase '{p}'"));
                    None
                }
            },
        }
    }

    /// `status.decision`, when there is one.
    fn decision(&mut self) -> Option<Decision> {
        self.at("status.decision").map(|_| {
            let verdict = match self.string("status.decision.verdict", true).as_deref() {
                Some("Denied") => Verdict::Denied,
                _ => Verdict::Approved,
            };
            Decision {
                by: self.string("status.decision.by", true).unwrap_or_default(),
                at: self.time("status.decision.at").unwrap_or_default(),
                verdict,
                reason: self.string("status.decision.reason", false),
                duration: self.duration("status.decision.duration", false),
                namespaces: self.strings("status.decision.namespaces"),
            }
        })
    }

    /// `status.bindings`: the ones that name a kind and a name.
    fn bindings(&self) -> Vec<crate::domain::request::BindingRef> {
        match self.at("status.bindings") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|b| {
                    Some(crate::domain::request::BindingRef {
                        kind: b.get("kind")?.as_str()?.to_string(),
                        namespace: b
                            .get("namespace")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        name: b.get("name")?.as_str()?.to_string(),
                        uid: b.get("uid").and_then(Value::as_str).map(str::to_string),
                    })
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// `status.reviews`: the ones that name who.
    fn reviews(&self) -> Vec<crate::domain::request::Review> {
        match self.at("status.reviews") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| {
                    Some(crate::domain::request::Review {
                        by: v.get("by")?.as_str()?.to_string(),
                        at: v
                            .get("at")
                            .and_then(Value::as_str)
                            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                            .map(|t| t.with_timezone(&Utc))
                            .unwrap_or_default(),
                        verdict: match v.get("verdict").and_then(Value::as_str) {
                            Some("Denied") => Verdict::Denied,
                            _ => Verdict::Approved,
                        },
                        duration: v
                            .get("duration")
                            .and_then(Value::as_str)
                            .and_then(|d| duration::parse(d).ok()),
                        namespaces: v
                            .get("namespaces")
                            .and_then(Value::as_array)
                            .map(|a| {
                                a.iter()
                                    .filter_map(Value::as_str)
                                    .map(str::to_string)
                                    .collect()
                            })
                            .unwrap_or_default(),
                        reason: v.get("reason").and_then(Value::as_str).map(str::to_string),
                    })
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// What a request asked for, borrowed from a stored request or a new one:
/// what `spec` says (its cluster only where the object is stored on a hub
/// for another cluster: [`new_object`]).
pub struct Spec<'a> {
    pub requester: &'a Subject,
    pub role: &'a RoleRef,
    pub namespaces: &'a [String],
    pub duration: Duration,
    pub reason: &'a str,
    pub ticket: Option<&'a str>,
    pub credentials: Credentials,
    pub extends: Option<&'a str>,
}

impl<'a> From<&'a AccessRequest> for Spec<'a> {
    fn from(r: &'a AccessRequest) -> Self {
        Spec {
            requester: &r.requester,
            role: &r.role,
            namespaces: &r.namespaces,
            duration: r.duration,
            reason: &r.reason,
            ticket: r.ticket.as_deref(),
            credentials: r.credentials,
            extends: r.extends.as_deref(),
        }
    }
}

impl<'a> From<&'a NewRequest> for Spec<'a> {
    fn from(r: &'a NewRequest) -> Self {
        Spec {
            requester: &r.requester,
            role: &r.role,
            namespaces: &r.namespaces,
            duration: r.duration,
            reason: &r.reason,
            ticket: r.ticket.as_deref(),
            credentials: r.credentials,
            extends: r.extends.as_deref(),
        }
    }
}

/// The `spec` of an object.
pub(crate) fn spec_json(asked: Spec<'_>) -> Value {
    let mut spec = json!({
        "requester": {"user": asked.requester.user, "groups": asked.requester.groups},
        "role": {"kind": asked.role.kind.to_string(), "name": asked.role.name},
        "namespaces": asked.namespaces,
        "duration": duration::format_exact(asked.duration),
        "reason": asked.reason,
        "credentials": match asked.credentials { Credentials::Identity => "Identity", Credentials::Token => "Token" },
    });
    if let Some(map) = spec.as_object_mut() {
        if let Some(t) = asked.ticket {
            map.insert("ticket".into(), json!(t));
        }
        if let Some(of) = asked.extends {
            map.insert("extends".into(), json!(of));
        }
    }
    spec
}

/// A new AccessRequest object, named by the apiserver after
/// [`NewRequest::name_prefix`]; `on_hub`: stored on a hub for another
/// cluster, so its spec names that cluster.
pub(crate) fn new_object(asked: &NewRequest, on_hub: bool) -> Value {
    let mut spec = spec_json(asked.into());
    if on_hub {
        spec["cluster"] = json!(asked.cluster);
    }
    json!({
        "apiVersion": API_VERSION, "kind": KIND,
        "metadata": {"generateName": asked.name_prefix()},
        "spec": spec,
    })
}

/// The `status` as stored; `null` for fields that are unset so a merge
/// patch clears them.
pub fn status_json(req: &AccessRequest) -> Value {
    let s = &req.status;
    let mut m = Map::new();
    m.insert("phase".into(), json!(req.phase().as_str()));
    m.insert(
        "decision".into(),
        match &s.decision {
            Some(d) => json!({
                "by": d.by,
                "at": time(d.at),
                "verdict": match d.verdict { Verdict::Approved => "Approved", Verdict::Denied => "Denied" },
                "reason": d.reason,
                "duration": d.duration.map(duration::format_exact),
                "namespaces": d.namespaces,
            }),
            None => Value::Null,
        },
    );
    m.insert("grantedAt".into(), json!(s.granted_at.map(time)));
    m.insert("expiresAt".into(), json!(s.expires_at.map(time)));
    let revoked = matches!(req.phase(), Phase::Revoked | Phase::Released);
    m.insert(
        "revokedAt".into(),
        json!(s.ended_at.filter(|_| revoked).map(time)),
    );
    m.insert(
        "endedAt".into(),
        json!(s.ended_at.filter(|_| !revoked).map(time)),
    );
    m.insert("revokedBy".into(), json!(s.revoked_by));
    m.insert("revokeReason".into(), json!(s.revoke_reason));
    m.insert("message".into(), json!(s.message));
    m.insert(
        "reviews".into(),
        json!(s
            .reviews
            .iter()
            .map(|r| json!({
                "by": r.by,
                "at": time(r.at),
                "verdict": match r.verdict { Verdict::Approved => "Approved", Verdict::Denied => "Denied" },
                "duration": r.duration.map(duration::format_exact),
                "namespaces": r.namespaces,
                "reason": r.reason,
            }))
            .collect::<Vec<_>>()),
    );
    m.insert(
        "bindings".into(),
        json!(s
            .bindings
            .iter()
            .map(
                |b| json!({"kind": b.kind, "namespace": b.namespace, "name": b.name, "uid": b.uid})
            )
            .collect::<Vec<_>>()),
    );
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Value {
        json!({
            "apiVersion": API_VERSION, "kind": KIND,
            "metadata": {"name": "alice-payments-7f3k", "creationTimestamp": "2026-11-26T03:00:00Z", "uid": "u1"},
            "spec": {
                "requester": {"user": "alice", "groups": ["dev", "oncall"]},
                "role": {"kind": "ClusterRole", "name": "edit"},
                "namespaces": ["payments"],
                "duration": "30m",
                "reason": "INC-4411 payments stuck",
                "ticket": "INC-4411",
                "credentials": "Identity"
            }
        })
    }

    #[test]
    fn reads_the_design_example() {
        let r = request_from_json("prod", &good());
        assert_eq!(r.malformed, None);
        assert_eq!(r.name, "alice-payments-7f3k");
        assert_eq!(r.requester, Subject::new("alice", &["dev", "oncall"]));
        assert_eq!(r.role, RoleRef::cluster_role("edit"));
        assert_eq!(r.duration, Duration::from_secs(1800));
        assert_eq!(r.phase(), Phase::Pending);
        assert_eq!(r.validate(&Default::default()), Ok(()));
    }

    #[test]
    fn status_round_trips() {
        let mut r = request_from_json("prod", &good());
        r.approve(
            crate::domain::request::Approval {
                by: "bob".into(),
                at: DateTime::parse_from_rfc3339("2026-11-26T03:05:00Z")
                    .unwrap()
                    .with_timezone(&Utc),
                duration: Duration::from_secs(900),
                namespaces: vec!["payments".into()],
                reason: None,
            },
            &Default::default(),
        )
        .unwrap();
        r.status.bindings.push(crate::domain::request::BindingRef {
            kind: "RoleBinding".into(),
            namespace: Some("payments".into()),
            name: "portcullis-alice-payments-7f3k".into(),
            uid: Some("b-1".into()),
        });
        let mut obj = good();
        obj["status"] = status_json(&r);
        let back = request_from_json("prod", &obj);
        assert_eq!(back, r);
        assert_eq!(obj["status"]["expiresAt"], "2026-11-26T03:20:00Z");
    }

    #[test]
    fn malformed_objects_name_every_defect() {
        let obj = json!({
            "metadata": {"name": "x"},
            "spec": {"requester": {"user": 7}, "role": {"kind": "Group", "name": "edit"}, "namespaces": "payments", "duration": "forever"}
        });
        let r = request_from_json("prod", &obj);
        let why = r.malformed.clone().unwrap();
        for part in [
            "spec.requester.user: expected a string, got a number",
            "spec.role.kind: 'Group' is neither Role nor ClusterRole",
            "spec.namespaces: expected a list of strings, got a string",
            "spec.duration: 'forever' is not a duration",
            "spec.reason: missing",
        ] {
            assert!(why.contains(part), "{part} in {why}");
        }
        assert!(r
            .validate(&Default::default())
            .unwrap_err()
            .to_string()
            .starts_with("malformed object:"));
    }

    #[test]
    fn spec_json_is_what_request_reads() {
        let spec = spec_json(Spec::from(&NewRequest {
            cluster: "c".into(),
            requester: Subject::new("alice", &["dev"]),
            role: RoleRef::role("deployer"),
            namespaces: vec!["payments".into()],
            duration: Duration::from_secs(3600),
            reason: "why".into(),
            ticket: Some("T-1".into()),
            credentials: Credentials::Token,
            extends: None,
        }));
        let obj = json!({"metadata": {"name": "n", "creationTimestamp": "2026-11-26T03:00:00Z"}, "spec": spec});
        let r = request_from_json("c", &obj);
        assert_eq!(r.malformed, None);
        assert_eq!(r.role, RoleRef::role("deployer"));
        assert_eq!(r.credentials, Credentials::Token);
        assert_eq!(r.ticket.as_deref(), Some("T-1"));
    }
}
