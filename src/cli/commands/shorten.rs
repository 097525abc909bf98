//! `portcullis shorten`: make a live grant end sooner.

use chrono::TimeDelta;

use crate::backend::BackendError;
use crate::cli::commands::verbs::Verb;
use crate::domain::duration;

/// `portcullis shorten NAME --to 10m`: the grant ends `to` from now.
pub(crate) async fn run(
    verb: &Verb<'_>,
    name: &str,
    to: std::time::Duration,
) -> Result<String, BackendError> {
    // "From now" on the apiserver's clock, not this machine's.
    let end = TimeDelta::from_std(to)
        .ok()
        .and_then(|d| verb.backend.now().checked_add_signed(d))
        .ok_or_else(|| BackendError::Invalid("--to is too far in the future".into()))?;
    verb.backend.shorten(&verb.key(name), end).await.map(|r| {
        format!(
            "shortened {}: ends in {}\n",
            verb.show(&r.name),
            duration::format(to)
        )
    })
}
