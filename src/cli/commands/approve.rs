//! `portcullis approve`: approve a request, optionally shorter (`--for`)
//! or narrower (`-n`).

use crate::backend::{ApproveSpec, BackendError, Op, Seen};
use crate::cli::commands::verbs::Verb;

/// `portcullis approve NAME`: grants what was just read, as asked or
/// less; says what was granted until when.
pub(crate) async fn run(
    verb: &Verb<'_>,
    name: &str,
    duration: Option<std::time::Duration>,
    namespaces: &[String],
    reason: &Option<String>,
) -> Result<String, BackendError> {
    let asked = verb.get(name).await?;
    let spec = ApproveSpec {
        duration: duration.unwrap_or(asked.duration),
        namespaces: if namespaces.is_empty() {
            asked.namespaces.clone()
        } else {
            namespaces.to_vec()
        },
        reason: reason.clone(),
    };
    // What is granted is what was just read: a request deleted and
    // asked again under the name in between is refused (409).
    let r = verb
        .backend
        .apply(&verb.key(name), &Seen::of(&asked), Op::Approve(spec))
        .await?;
    Ok(format!(
        "approved {}: {} {} in {} until {}\n",
        verb.show(&r.name),
        r.role.kind,
        r.role.name,
        crate::domain::request::scope_text(r.granted_namespaces()),
        r.status
            .expires_at
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default()
    ))
}
