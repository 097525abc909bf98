//! Requests as the cluster tests ask them, on the test cluster: one
//! builder (each test changes what its story needs with `..ask(…)`), the
//! key of a request by name, and an approval.

#![allow(dead_code)]

use std::time::Duration;

use portcullis::backend::{ApproveSpec, NewRequest, RequestKey};
use portcullis::domain::{Credentials, RoleRef, Subject};

/// The context every cluster test's requests are on.
pub(crate) const CLUSTER: &str = "test";

/// `user` (in `dev`) asks for the ClusterRole `role` in `ns` (none:
/// cluster-wide) for `minutes`.
pub(crate) fn ask(user: &str, role: &str, ns: &[&str], minutes: u64) -> NewRequest {
    NewRequest {
        cluster: CLUSTER.into(),
        requester: Subject::new(user, &["dev"]),
        role: RoleRef::cluster_role(role),
        namespaces: ns.iter().map(|s| s.to_string()).collect(),
        duration: Duration::from_secs(minutes * 60),
        reason: "INC-9 investigate".into(),
        ticket: None,
        credentials: Credentials::Identity,
        extends: None,
    }
}

/// The request `name` on the test cluster.
pub(crate) fn key(name: &str) -> RequestKey {
    RequestKey {
        cluster: CLUSTER.into(),
        name: name.into(),
    }
}

/// An approval for `secs` in `ns`, without a reason.
pub(crate) fn spec(secs: u64, ns: &[&str]) -> ApproveSpec {
    ApproveSpec {
        duration: Duration::from_secs(secs),
        namespaces: ns.iter().map(|s| s.to_string()).collect(),
        reason: None,
    }
}
