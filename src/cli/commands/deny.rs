//! `portcullis deny`: deny a request (reason required).

use crate::backend::{BackendError, Op, Seen};
use crate::cli::commands::verbs::Verb;

/// `portcullis deny NAME --reason …`: denies the request as just read.
pub(crate) async fn run(verb: &Verb<'_>, name: &str, reason: &str) -> Result<String, BackendError> {
    let asked = verb.get(name).await?;
    let op = Op::Deny {
        reason: reason.to_string(),
    };
    verb.backend
        .apply(&verb.key(name), &Seen::of(&asked), op)
        .await
        .map(|r| format!("denied {}\n", verb.show(&r.name)))
}
