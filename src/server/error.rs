//! What the server answers when it refuses: one error type for every
//! handler ([`Error`]), said in the API's one JSON shape ([`ApiError`]),
//! and carried with what the handler knew of the call (who, doing what, on
//! which request) so the refusal is on the record ([`Failure`]).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::api::ApiError;
use crate::backend::BackendError;
use crate::domain::{RequestKey, Subject};

/// Why a call is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// No token, or one the hub does not accept (401).
    #[error("no valid bearer token")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// 422 naming the field that is wrong.
    #[error("{field}: {message}")]
    Field { field: String, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    /// A body the API's own types refused, already phrased.
    #[error("{}", .0.message)]
    Api(ApiError),
    /// What a backend refused, mapped by [`from_backend`].
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Self {
        Error::Api(e)
    }
}

impl Error {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Error::Field {
            field: field.into(),
            message: message.into(),
        }
    }

    /// As the API says it.
    pub fn to_api(&self) -> ApiError {
        match self {
            Error::Unauthorized => ApiError::unauthorized(),
            Error::Forbidden(m) => ApiError::new(403, "Forbidden", m.clone()),
            Error::NotFound(m) => ApiError::new(404, "NotFound", m.clone()),
            Error::Field { field, message } => ApiError::field(field, message.clone()),
            Error::Invalid(m) => ApiError::new(422, "Invalid", m.clone()),
            Error::Conflict(m) => ApiError::new(409, "Conflict", m.clone()),
            Error::Unavailable(m) => ApiError::new(503, "Unavailable", m.clone()),
            Error::Api(e) => e.clone(),
            Error::Backend(e) => from_backend(e),
        }
    }
}

/// What the server answers for a backend error.
pub(crate) fn from_backend(e: &BackendError) -> ApiError {
    use crate::domain::PhaseError;
    let text = e.to_string();
    match e {
        BackendError::NotFound(_) => ApiError::new(404, "NotFound", text),
        BackendError::Forbidden { .. } => ApiError::new(403, "Forbidden", text),
        BackendError::Escalation { details, .. } => ApiError {
            details: details.clone(),
            ..ApiError::new(403, "Forbidden", text)
        },
        BackendError::Refused(
            PhaseError::SelfApproval(_) | PhaseError::SelfDenial(_) | PhaseError::NotRequester(_),
        ) => ApiError::new(403, "Forbidden", text),
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

/// What a handler knew about a call it refused, for the record.
#[derive(Clone)]
pub(crate) struct Refused {
    pub(crate) who: Option<Subject>,
    pub(crate) action: Option<String>,
    pub(crate) target: Option<RequestKey>,
    pub(crate) error: ApiError,
}

/// An API error as a response, with what the handler knew of the call
/// (who, doing what, on which request) for the record.
pub struct Failure(ApiError, Option<Box<Refused>>);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.0.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let refused = self.1.map(|b| *b).unwrap_or(Refused {
            who: None,
            action: None,
            target: None,
            error: self.0.clone(),
        });
        let mut r = (code, Json(self.0.body())).into_response();
        r.extensions_mut().insert(refused);
        r
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure(e, None)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure(e.to_api(), None)
    }
}

/// Names the verified caller (and what they tried) on a refusal.
pub(crate) trait Refusal<T> {
    fn by(self, who: &Subject, action: &str, target: Option<&RequestKey>) -> ApiResult<T>;
}

impl<T> Refusal<T> for Result<T, Error> {
    fn by(self, who: &Subject, action: &str, target: Option<&RequestKey>) -> ApiResult<T> {
        self.map_err(|e| {
            let e = e.to_api();
            Failure(
                e.clone(),
                Some(Box::new(Refused {
                    who: Some(who.clone()),
                    action: Some(action.to_string()),
                    target: target.cloned(),
                    error: e,
                })),
            )
        })
    }
}

/// What a handler answers.
pub(crate) type ApiResult<T> = Result<T, Failure>;

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
