//! `portcullis diff NAME`: a request's requester context and its new
//! permissions with risk, worst first, as a table to paste into a ticket
//! or chat, or JSON / YAML for scripts. Every permission is listed (no
//! folding: a ticket has room and a script wants all of it).
//!
//! The analysis is the console's: the cluster's RBAC as the backend
//! reports it, the requester's standing access subtracted; in direct mode
//! a requester's groups are a claim and are not counted as access held.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::backend::{AccessBackend, BackendError, BackendEvent};
use crate::cli::args::OutputFormat;
use crate::console::state::app::group_diff;
use crate::domain::rbac::engine::analyze;
use crate::domain::rbac::engine::GrantRequest;
use crate::domain::rbac::Inventory;
use crate::domain::sanitize::{field, inert};
use crate::domain::{duration, AccessRequest, Subject};

/// How long to wait for the cluster's RBAC before giving up.
const INVENTORY_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DiffReport {
    pub name: String,
    pub cluster: String,
    pub phase: String,
    pub requester: String,
    pub groups: Vec<String>,
    /// Whether the groups were verified (server) or only claimed (direct
    /// mode: not counted as access held).
    pub groups_verified: bool,
    pub role: String,
    /// Empty: cluster-wide.
    pub namespaces: Vec<String>,
    pub duration: String,
    /// What was approved, when it was less than asked (shorter or fewer
    /// namespaces): the diff is of this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved: Option<Approved>,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// The worst new permission's severity (`none` when nothing is new).
    pub worst: String,
    /// What the new permissions let them do, in words, worst first.
    pub can: Vec<String>,
    pub new_permissions: usize,
    pub already_held: usize,
    pub granted: usize,
    pub permissions: Vec<DiffLine>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Approved {
    /// Empty: cluster-wide.
    pub namespaces: Vec<String>,
    pub duration: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct DiffLine {
    pub severity: String,
    /// A namespace, or `cluster-wide`.
    pub scope: String,
    pub resource: String,
    pub verbs: String,
    pub why: String,
}

/// The cluster's RBAC inventory, from the backend's first events.
async fn inventory(
    backend: &dyn AccessBackend,
    cluster: &str,
) -> Result<Arc<Inventory>, BackendError> {
    let mut events = backend.watch();
    let wait = async {
        while let Some(e) = events.recv().await {
            match e {
                BackendEvent::Inventory {
                    cluster: c,
                    inventory,
                } if c == cluster => return Ok(inventory),
                BackendEvent::ClusterStatus {
                    cluster: c,
                    error: Some(message),
                } if c == cluster => {
                    return Err(BackendError::Unavailable {
                        cluster: c,
                        message,
                    })
                }
                _ => {}
            }
        }
        Err(BackendError::Unavailable {
            cluster: cluster.to_string(),
            message: "the backend closed before the cluster's RBAC arrived".into(),
        })
    };
    tokio::time::timeout(INVENTORY_WAIT, wait)
        .await
        .unwrap_or_else(|_| {
            Err(BackendError::Unavailable {
                cluster: cluster.to_string(),
                message: format!("no RBAC inventory within {}s", INVENTORY_WAIT.as_secs()),
            })
        })
}

/// Analyses `req` against its cluster's RBAC.
pub(crate) async fn report(
    backend: &dyn AccessBackend,
    req: &AccessRequest,
) -> Result<DiffReport, BackendError> {
    let inv = inventory(backend, &req.cluster).await?;
    let info = backend.info();
    let verified = info.requester_groups_verified;
    // The cluster as people call it, not the context this runs in.
    let cluster = info
        .cluster_names
        .get(&req.cluster)
        .cloned()
        .unwrap_or_else(|| req.cluster.clone());
    let subject = if verified {
        req.requester.clone()
    } else {
        Subject {
            user: req.requester.user.clone(),
            groups: Vec::new(),
        }
    };
    let a = analyze(&inv, GrantRequest::of(req, &subject))
        .map_err(|e| BackendError::Invalid(format!("{}: {e}", inert(&req.name, 64))))?;
    let groups = group_diff(&a);
    let mut permissions = Vec::new();
    let mut rows: Vec<_> = groups
        .iter()
        .flat_map(|g| g.rows.iter().map(move |r| (g, r)))
        .collect();
    // Worst first across scopes (stable: scope, then resource, as grouped).
    rows.sort_by_key(|(_, r)| std::cmp::Reverse(r.risk.severity));
    let mut can: Vec<String> = Vec::new();
    for (g, r) in rows {
        let plain = r.risk.plain().to_string();
        if r.risk.severity >= crate::domain::Severity::High && !can.contains(&plain) {
            can.push(plain);
        }
        permissions.push(DiffLine {
            severity: r.risk.severity.badge().to_string(),
            scope: g.scope.to_string(),
            resource: r.resource.clone(),
            verbs: r.verbs.clone(),
            why: r.risk.why.to_string(),
        });
    }
    Ok(DiffReport {
        name: req.name.clone(),
        cluster,
        phase: req.phase().to_string(),
        requester: req.requester.user.clone(),
        groups: req.requester.groups.clone(),
        groups_verified: verified,
        role: format!("{} {}", req.role.kind, req.role.name),
        namespaces: req.namespaces.clone(),
        duration: duration::format(req.duration),
        approved: req.approved_narrower().then(|| Approved {
            namespaces: req.granted_namespaces().to_vec(),
            duration: duration::format(req.granted_duration()),
        }),
        reason: req.reason.clone(),
        ticket: req.ticket.clone(),
        worst: if a.new.is_empty() {
            "none".into()
        } else {
            a.worst.badge().to_string()
        },
        can,
        new_permissions: a.new.len(),
        already_held: a.already.len(),
        granted: a.granted.len(),
        permissions,
    })
}

/// The report in the chosen format; requester text is made inert in the
/// table (JSON and YAML escape it themselves).
pub(crate) fn render(r: &DiffReport, format: OutputFormat) -> Result<String, BackendError> {
    let fail = |e: String| BackendError::Invalid(format!("cannot print the diff: {e}"));
    match format {
        OutputFormat::Json => serde_json::to_string_pretty(r)
            .map(|s| s + "\n")
            .map_err(|e| fail(e.to_string())),
        OutputFormat::Yaml => serde_yaml_ng::to_string(r).map_err(|e| fail(e.to_string())),
        OutputFormat::Table => Ok(table(r)),
    }
}

fn table(r: &DiffReport) -> String {
    let t = |s: &str| field(s).into_owned();
    let scope_of = |namespaces: &[String]| {
        if namespaces.is_empty() {
            "cluster-wide".to_string()
        } else {
            format!(
                "in {}",
                namespaces
                    .iter()
                    .map(|n| t(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    };
    let scope = scope_of(&r.namespaces);
    let groups = if r.groups.is_empty() {
        "none".to_string()
    } else {
        let g = r.groups.iter().map(|g| t(g)).collect::<Vec<_>>().join(", ");
        if r.groups_verified {
            g
        } else {
            format!("{g} (claimed, not counted as held)")
        }
    };
    let mut out = String::new();
    out.push_str(&format!(
        "{} on {} ({})\n",
        t(&r.name),
        t(&r.cluster),
        r.phase
    ));
    out.push_str(&format!(
        "{} asks for {} {scope} for {}\n",
        t(&r.requester),
        t(&r.role),
        r.duration
    ));
    if let Some(a) = &r.approved {
        // The diff below is of what was granted, not of what was asked.
        out.push_str(&format!(
            "approved: {} for {} (less than asked; the permissions below are what it grants)\n",
            scope_of(&a.namespaces),
            a.duration
        ));
    }
    out.push_str(&format!("groups:   {groups}\n"));
    out.push_str(&format!("reason:   {}\n", inert(&r.reason, 1024)));
    if let Some(ticket) = &r.ticket {
        out.push_str(&format!("ticket:   {}\n", t(ticket)));
    }
    out.push_str(&format!(
        "risk:     {}; {} new, {} of {} already held\n",
        r.worst, r.new_permissions, r.already_held, r.granted
    ));
    if !r.can.is_empty() {
        out.push_str(&format!("can:      {}\n", r.can.join(", ")));
    }
    if r.permissions.is_empty() {
        out.push_str("nothing new: the requester already holds all of it\n");
        return out;
    }
    let mut rows = vec![vec![
        "RISK".to_string(),
        "SCOPE".into(),
        "RESOURCE".into(),
        "VERBS".into(),
        "WHY".into(),
    ]];
    rows.extend(r.permissions.iter().map(|p| {
        vec![
            p.severity.to_string(),
            t(&p.scope),
            t(&p.resource),
            p.verbs.clone(),
            p.why.to_string(),
        ]
    }));
    out.push('\n');
    out.push_str(&crate::cli::table::Table::new(2).layout(&rows));
    out
}
