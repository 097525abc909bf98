//! `portcullis revoke`: end a live grant now (reason required).

use crate::backend::BackendError;
use crate::cli::commands::verbs::Verb;

/// `portcullis revoke NAME --reason …`.
pub(crate) async fn run(verb: &Verb<'_>, name: &str, reason: &str) -> Result<String, BackendError> {
    verb.backend
        .revoke(&verb.key(name), reason)
        .await
        .map(|r| format!("revoked {}\n", verb.show(&r.name)))
}
