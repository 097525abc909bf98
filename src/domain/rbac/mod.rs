//! The RBAC engine: a subject's effective permissions before and after a
//! requested grant, and the difference, with Kubernetes' own semantics.
//!
//! Semantics follow the apiserver of the version tested (1.20.2):
//! - rule matching is `RuleAllows` (`plugin/pkg/auth/authorizer/rbac`) with
//!   the helpers of `pkg/apis/rbac/v1/evaluation_helpers.go`: `*` in verbs,
//!   apiGroups and resources; `resource/subresource` and `*/subresource`;
//!   resourceNames compared with the request's name, which is `""` for a
//!   request without one (so `resourceNames: [""]` allows listing and
//!   creating everything, and a rule with names never covers "any name");
//!   nonResourceURLs with every trailing `*` stripped before a prefix match;
//! - bindings are `VisitRulesFor` / `appliesToUser`
//!   (`pkg/registry/rbac/validation/rule.go`): nonResourceURLs only through
//!   ClusterRoleBindings, a RoleBinding to a ClusterRole confined to its
//!   namespace, ServiceAccount subjects by plain string match;
//! - identity is the authenticators': `system:authenticated` added unless
//!   anonymous or already `system:(un)authenticated`, ServiceAccount groups
//!   only for user names `serviceaccount.SplitUsername` accepts, and
//!   `system:masters` allowed everything before RBAC is asked;
//! - ClusterRole aggregation is evaluated here from
//!   `aggregationRule.clusterRoleSelectors`, not read from storage.

pub mod engine;
pub mod model;

pub use engine::{analyze, effective_rules, Analysis, EngineError, GrantRequest, NewPermission};
pub use model::{
    ClusterRole, ClusterRoleBinding, Inventory, NameReach, Permission, PolicyRule, Role,
    RoleBinding, Scope, SubjectRef, Target,
};
