//! The AccessRequest resource as it lives on a cluster: its JSON shape
//! ([`wire`]), the manifests `portcullis crds` prints ([`manifests`]) and
//! the admission policy that guards it ([`admission_policy`]). Pure.

pub(crate) mod admission_policy;
pub mod manifests;
pub mod wire;
