//! The RBAC engine: a subject's effective permissions before and after a
//! requested grant, and the difference, with Kubernetes' own semantics.
//!
//! Semantics follow the RBAC authorizer (`pkg/apis/rbac/v1/evaluation_helpers.go`):
//! `*` in verbs, apiGroups and resources; `resource/subresource` and
//! `*/subresource`; resourceNames (a rule with names never covers a request
//! for "any name"); nonResourceURLs only through ClusterRoleBindings, with a
//! trailing `*` as prefix match; a RoleBinding to a ClusterRole confined to
//! its namespace; group subjects including the implicit
//! `system:authenticated`; ServiceAccount subjects; and ClusterRole
//! aggregation evaluated here from `aggregationRule.clusterRoleSelectors`.

pub mod engine;
pub mod model;

pub use engine::{analyze, effective_rules, Analysis, EngineError, GrantRequest, NewPermission};
pub use model::{
    ClusterRole, ClusterRoleBinding, Inventory, Permission, PolicyRule, Role, RoleBinding, Scope,
    SubjectRef, Target,
};
