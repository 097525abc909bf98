//! `portcullis login`: credentials mode Token, a kubeconfig context with
//! a short-lived token for the grant.

use crate::backend::BackendError;
use crate::cli::commands::verbs::Verb;

/// `portcullis login NAME`: the grant's kubeconfig.
pub(crate) async fn run(verb: &Verb<'_>, name: &str) -> Result<String, BackendError> {
    verb.backend.login(&verb.get(name).await?).await
}
