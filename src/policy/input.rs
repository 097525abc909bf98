//! The policy's input document, built from what Portcullis knows about a
//! request. Everything a decision depends on is in it (including `now`),
//! so the audit log can replay any decision.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::domain::rbac::Analysis;
use crate::domain::{AccessRequest, Credentials, Verdict};

/// The input for `req`: its requester (as verified), what it asks, the
/// cluster's labels, the diff's summary (None: not computed), the reviews
/// so far, whether it extends a live grant (and how long that one ran).
pub fn policy_input(
    req: &AccessRequest,
    analysis: Option<&Analysis>,
    cluster_labels: &BTreeMap<String, String>,
    now: DateTime<Utc>,
    extension: Option<(&str, u64)>,
) -> Value {
    let diff = match analysis {
        Some(a) => {
            let mut flags: Vec<String> =
                a.new.iter().map(|p| format!("{:?}", p.risk.flag)).collect();
            flags.sort();
            flags.dedup();
            json!({
                "worst": if a.new.is_empty() { "none" } else { a.worst.label() },
                "flags": flags,
                "new_permissions": a.new.len(),
                "already_held": a.already.len(),
                "aggregated": a.aggregated,
            })
        }
        None => json!({"worst": "unknown", "flags": [], "new_permissions": 0}),
    };
    let reviews: Vec<Value> = req
        .status
        .reviews
        .iter()
        .map(|r| {
            json!({
                "by": r.by,
                "verdict": match r.verdict { Verdict::Approved => "Approved", Verdict::Denied => "Denied" },
                "at": r.at.to_rfc3339_opts(SecondsFormat::Secs, true),
                "duration_seconds": r.duration.map(|d| d.as_secs()),
                "namespaces": r.namespaces,
            })
        })
        .collect();
    let mut request = json!({
        "name": req.name,
        "cluster": req.cluster,
        "cluster_labels": cluster_labels,
        "role": {"kind": req.role.kind.to_string(), "name": req.role.name},
        "namespaces": req.namespaces,
        "duration_seconds": req.duration.as_secs(),
        "reason": req.reason,
        "credentials": match req.credentials { Credentials::Identity => "Identity", Credentials::Token => "Token" },
    });
    if let Some(t) = &req.ticket {
        request["ticket"] = json!(t);
    }
    if let Some(of) = &req.extends {
        request["extends"] = json!(of);
    }
    let mut input = json!({
        "now": now.to_rfc3339_opts(SecondsFormat::Secs, true),
        "requester": {"user": req.requester.user, "groups": req.requester.groups},
        "request": request,
        "diff": diff,
        "reviews": reviews,
    });
    if let Some((of, used)) = extension {
        input["extension"] = json!({"of": of, "used_seconds": used});
    }
    input
}
