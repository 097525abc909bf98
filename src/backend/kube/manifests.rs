//! What `portcullis crds` prints: the AccessRequest CRD and the least-rights
//! ClusterRoles for requesters, approvers and the reaper.
//!
//! The CRD keeps `spec` and `status` schemaless on purpose: hand-made
//! objects with wrong types must still reach the console, where a human
//! sees exactly what is wrong and can deny them, instead of failing at
//! admission where nobody looks.

pub const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: accessrequests.portcullis.dev
  labels:
    app.kubernetes.io/managed-by: portcullis
spec:
  group: portcullis.dev
  scope: Cluster
  names:
    plural: accessrequests
    singular: accessrequest
    kind: AccessRequest
    shortNames: [areq]
  versions:
  - name: v1alpha1
    served: true
    storage: true
    subresources:
      status: {}
    additionalPrinterColumns:
    - {name: Requester, type: string, jsonPath: .spec.requester.user}
    - {name: Role, type: string, jsonPath: .spec.role.name}
    - {name: Namespaces, type: string, jsonPath: .spec.namespaces}
    - {name: Phase, type: string, jsonPath: .status.phase}
    - {name: Expires, type: string, jsonPath: .status.expiresAt}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-preserve-unknown-fields: true
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
"#;

pub const ROLES: &str = r#"# Credentials mode Token keeps per-grant ServiceAccounts here.
apiVersion: v1
kind: Namespace
metadata:
  name: portcullis-system
  labels:
    app.kubernetes.io/managed-by: portcullis
---
# Requesters: create and read requests, and withdraw their own by writing
# its status. RBAC cannot say "only your own": on clusters with
# ValidatingAdmissionPolicy (1.30+) add a policy that checks
# request.userInfo.username against spec.requester.user (see README).
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: portcullis-requester
  labels:
    app.kubernetes.io/managed-by: portcullis
rules:
- apiGroups: [portcullis.dev]
  resources: [accessrequests]
  verbs: [create, get, list, watch]
- apiGroups: [portcullis.dev]
  resources: [accessrequests/status]
  verbs: [patch]
---
# Approvers: decide on requests and manage the bindings of grants. Creating a
# RoleBinding to a role also needs the right to `bind` it (or to hold every
# permission in it): grant `bind` on the roles an approver may hand out.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: portcullis-approver
  labels:
    app.kubernetes.io/managed-by: portcullis
rules:
- apiGroups: [portcullis.dev]
  resources: [accessrequests]
  verbs: [get, list, watch]
- apiGroups: [portcullis.dev]
  resources: [accessrequests/status]
  verbs: [get, update, patch]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [rolebindings, clusterrolebindings]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, clusterroles]
  verbs: [get, list, watch]
- apiGroups: [authorization.k8s.io]
  resources: [subjectaccessreviews]
  verbs: [create]
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get, list, watch]
---
# Approvers, Token mode: bind this with a RoleBinding in portcullis-system
# only (never cluster-wide): per-grant ServiceAccounts and the Role that lets
# the requester mint tokens for theirs.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: portcullis-approver-tokens
  labels:
    app.kubernetes.io/managed-by: portcullis
rules:
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [get, create, patch, delete]
- apiGroups: [""]
  resources: [serviceaccounts/token]
  verbs: [create]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [get, create, patch, delete]
---
# The reaper: end grants at expiry and expire stale requests. It only ever
# deletes bindings Portcullis created (listed in the request's status).
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: portcullis-reaper
  labels:
    app.kubernetes.io/managed-by: portcullis
rules:
- apiGroups: [portcullis.dev]
  resources: [accessrequests]
  verbs: [get, list, watch]
- apiGroups: [portcullis.dev]
  resources: [accessrequests/status]
  verbs: [get, update, patch]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [rolebindings, clusterrolebindings]
  verbs: [get, list, watch, delete]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, clusterroles]
  verbs: [get, list, watch]
- apiGroups: [authorization.k8s.io]
  resources: [subjectaccessreviews]
  verbs: [create]
# Token mode: the per-grant ServiceAccount and minting Role (portcullis-system).
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [get, delete]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles]
  verbs: [get, delete]
"#;

/// Everything, as one multi-document YAML stream.
pub fn all() -> String {
    format!("{CRD}---\n{ROLES}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_document_parses() {
        let mut kinds = Vec::new();
        for doc in serde_yaml_ng::Deserializer::from_str(&all()) {
            let v: serde_json::Value = serde::Deserialize::deserialize(doc).unwrap();
            kinds.push(v["kind"].as_str().unwrap().to_string());
        }
        assert_eq!(
            kinds,
            [
                "CustomResourceDefinition",
                "Namespace",
                "ClusterRole",
                "ClusterRole",
                "ClusterRole",
                "ClusterRole"
            ]
        );
    }
}
