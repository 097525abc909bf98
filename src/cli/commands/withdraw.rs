//! `portcullis withdraw`: withdraw your own pending request.

use crate::backend::BackendError;
use crate::cli::commands::verbs::Verb;

/// `portcullis withdraw NAME`: the request is deleted.
pub(crate) async fn run(verb: &Verb<'_>, name: &str) -> Result<String, BackendError> {
    verb.backend
        .withdraw(&verb.key(name))
        .await
        .map(|r| format!("withdrew {} (deleted)\n", verb.show(&r.name)))
}
