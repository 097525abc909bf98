//! `portcullis release`: end your own live grant now ("I'm done").

use crate::backend::BackendError;
use crate::cli::commands::verbs::Verb;
use crate::domain::sanitize::inert;

/// `portcullis release NAME`: fails unless the grant has ended (a reaper
/// ends it in direct mode).
pub(crate) async fn run(verb: &Verb<'_>, name: &str) -> Result<String, BackendError> {
    let r = verb.backend.release(&verb.key(name)).await?;
    if !r.phase().is_terminal() {
        return Err(BackendError::Unavailable {
            cluster: verb.cluster.clone(),
            message: format!(
                "{name}: release asked (its release binding is deleted), but no reaper has ended the grant yet: access remains until one does (is `portcullis reaper` running?)"
            ),
        });
    }
    Ok(format!(
        "released {}: access ended{}\n",
        verb.show(&r.name),
        r.status
            .message
            .as_deref()
            .map(|m| format!(" ({})", inert(m, 300)))
            .unwrap_or_default()
    ))
}
