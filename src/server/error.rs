//! What the server answers for an error: one JSON shape ([`ApiError`]).

use crate::api::ApiError;
use crate::backend::BackendError;

/// What the server answers for a backend error.
pub fn from_backend(e: &BackendError) -> ApiError {
    use crate::domain::PhaseError;
    let text = e.to_string();
    match e {
        BackendError::NotFound(_) => ApiError::new(404, "NotFound", text),
        BackendError::Forbidden { .. } => ApiError::new(403, "Forbidden", text),
        BackendError::Escalation { details, .. } => ApiError {
            details: details.clone(),
            ..ApiError::new(403, "Forbidden", text)
        },
        BackendError::Refused(PhaseError::SelfApproval(_) | PhaseError::NotRequester(_)) => {
            ApiError::new(403, "Forbidden", text)
        }
        BackendError::Refused(PhaseError::NotPending { .. } | PhaseError::NotActive { .. }) => {
            ApiError::new(409, "Conflict", text)
        }
        BackendError::Refused(_) | BackendError::Invalid(_) => ApiError::new(422, "Invalid", text),
        BackendError::Conflict(_) => ApiError::new(409, "Conflict", text),
        BackendError::Unavailable { .. } | BackendError::Config(_) => {
            ApiError::new(503, "Unavailable", text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::http::backend_error;
    use crate::domain::RequestKey;

    #[test]
    fn errors_map_both_ways() {
        let k = RequestKey {
            cluster: "prod".into(),
            name: "x".into(),
        };
        let e = from_backend(&BackendError::NotFound(k.clone()));
        assert_eq!(e.code, 404);
        assert_eq!(
            backend_error(e.clone(), Some(&k)),
            BackendError::NotFound(k)
        );
        let e = from_backend(&BackendError::Refused(
            crate::domain::PhaseError::SelfApproval("bob".into()),
        ));
        assert_eq!(e.code, 403);
        assert_eq!(ApiError::field("duration", "bad").code, 422);
        let hostile = ApiError::new(422, "Invalid", "\u{1b}]52;c;x\u{7}");
        assert!(!backend_error(hostile, None).to_string().contains('\u{1b}'));
    }
}
