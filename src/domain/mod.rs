//! The pure domain: requests, decisions, grants, the RBAC engine, risk,
//! durations and untrusted text. Nothing here does IO or async work, so every
//! rule can be tested exhaustively with plain values.

pub mod duration;
pub(crate) mod grantable;
pub(crate) mod key;
pub(crate) mod names;
pub mod rbac;
pub mod request;
pub mod risk;
pub mod sanitize;
pub(crate) mod seen;

pub use grantable::Grantable;
pub use key::RequestKey;
pub use request::NewRequest;
pub use request::{
    AccessRequest, Credentials, Decision, ExtensionError, Phase, PhaseError, RoleKind, RoleRef,
    Subject, ValidationError, ValidationLimits, Verdict,
};
pub use risk::Severity;
pub use seen::{Seen, Stale};
