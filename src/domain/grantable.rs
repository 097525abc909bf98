//! Which roles a cluster lets approvers hand out (its settings' `grantable`).

use super::{RoleKind, RoleRef};

/// A role an approver may hand out: `ClusterRole/edit`, `edit` (a
/// ClusterRole), `Role/deployer` (in any namespace) or
/// `Role/payments/deployer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grantable {
    pub kind: RoleKind,
    pub namespace: Option<String>,
    pub name: String,
}

impl Grantable {
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split('/').collect();
        let (kind, namespace, name) = match parts.as_slice() {
            [name] => (RoleKind::ClusterRole, None, *name),
            ["ClusterRole", name] => (RoleKind::ClusterRole, None, *name),
            ["Role", name] => (RoleKind::Role, None, *name),
            ["Role", ns, name] => (RoleKind::Role, Some(ns.to_string()), *name),
            _ => {
                return Err(format!(
                    "'{text}' is not ClusterRole/NAME, Role/NAME or Role/NAMESPACE/NAME"
                ))
            }
        };
        if name.is_empty() {
            return Err(format!("'{text}' names no role"));
        }
        Ok(Self {
            kind,
            namespace,
            name: name.to_string(),
        })
    }

    pub fn allows(&self, role: &RoleRef, namespaces: &[String]) -> bool {
        self.kind == role.kind
            && self.name == role.name
            && match &self.namespace {
                None => true,
                Some(ns) => namespaces.iter().all(|n| n == ns),
            }
    }
}

impl std::fmt::Display for Grantable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{ns}/{}", self.kind, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}
