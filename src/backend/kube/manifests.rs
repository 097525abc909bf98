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

pub const ROLES: &str = r#"# Token-mode ServiceAccounts and their minting rights live here; no grant
# is ever made into this namespace.
apiVersion: v1
kind: Namespace
metadata:
  name: portcullis-system
  labels:
    app.kubernetes.io/managed-by: portcullis
---
# One set of limits for every approver, console and reaper of this cluster.
# Keys: maxDuration, approvalTimeout, grantableRoles (comma-separated
# ClusterRole/NAME, Role/NAME or Role/NAMESPACE/NAME; empty = any role the
# approver may bind). An invalid value refuses approvals until fixed.
apiVersion: v1
kind: ConfigMap
metadata:
  name: portcullis-settings
  namespace: portcullis-system
  labels:
    app.kubernetes.io/managed-by: portcullis
data:
  maxDuration: 8h
  approvalTimeout: 24h
  grantableRoles: ""
---
# Requesters: ask, read, and withdraw a pending request by deleting it.
# No write on status: nothing a requester can write starts, extends or
# keeps a grant. RBAC cannot say "only your own": any requester may delete
# any request; a live grant's request is held by a finalizer until the
# grant has ended, so deleting it never ends (or extends) a grant.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: portcullis-requester
  labels:
    app.kubernetes.io/managed-by: portcullis
rules:
- apiGroups: [portcullis.dev]
  resources: [accessrequests]
  verbs: [create, get, list, watch, delete]
- apiGroups: [authentication.k8s.io]
  resources: [tokenreviews]
  verbs: [create]
- apiGroups: [""]
  resources: [configmaps]
  resourceNames: [portcullis-settings]
  verbs: [get]
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
  verbs: [get, list, watch, patch]
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
- apiGroups: [authentication.k8s.io]
  resources: [tokenreviews]
  verbs: [create]
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [configmaps]
  resourceNames: [portcullis-settings, portcullis-policy]
  verbs: [get]
---
# The reaper: ends grants at expiry, expires stale requests, undoes
# approvals that died half-way, sweeps bindings no live grant accounts for.
# It deletes only objects Portcullis made (recorded by uid in the request's
# status, or owned by or labelled for a request).
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: portcullis-reaper
  labels:
    app.kubernetes.io/managed-by: portcullis
rules:
- apiGroups: [portcullis.dev]
  resources: [accessrequests]
  verbs: [get, list, watch, patch]
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
- apiGroups: [authentication.k8s.io]
  resources: [tokenreviews]
  verbs: [create]
- apiGroups: [""]
  resources: [configmaps]
  resourceNames: [portcullis-settings]
  verbs: [get]
---
# The reaper, Token mode: bind this with a RoleBinding in portcullis-system
# only (never cluster-wide). It makes each grant's ServiceAccount and the
# Role + RoleBinding that let that grant's requester alone mint its tokens;
# Kubernetes lets only a holder of the minting right delegate it, so the
# reaper holds it here and no approver needs it.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: portcullis-reaper-tokens
  labels:
    app.kubernetes.io/managed-by: portcullis
rules:
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [get, create, delete]
- apiGroups: [""]
  resources: [serviceaccounts/token]
  verbs: [create]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [get, create, delete]
"#;

/// The server (`portcullis crds --server-image IMAGE`): its ServiceAccount,
/// the one ClusterRole with status writes and binding writes, a Service and
/// a Deployment. It also needs `bind` on each role it may hand out, as
/// approvers do in direct mode; and in server mode requesters and approvers
/// need no Kubernetes rights on the target clusters at all.
pub fn server(image: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: ServiceAccount
metadata:
  name: portcullis-server
  namespace: portcullis-system
  labels:
    app.kubernetes.io/managed-by: portcullis
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: portcullis-server
  labels:
    app.kubernetes.io/managed-by: portcullis
rules:
- apiGroups: [portcullis.dev]
  resources: [accessrequests]
  verbs: [get, list, watch, create, patch, delete]
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
- apiGroups: [authentication.k8s.io]
  resources: [tokenreviews]
  verbs: [create]
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: portcullis-server
  labels:
    app.kubernetes.io/managed-by: portcullis
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: portcullis-server}}
subjects:
- {{kind: ServiceAccount, name: portcullis-server, namespace: portcullis-system}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: portcullis-server-tokens
  namespace: portcullis-system
  labels:
    app.kubernetes.io/managed-by: portcullis
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: portcullis-reaper-tokens}}
subjects:
- {{kind: ServiceAccount, name: portcullis-server, namespace: portcullis-system}}
---
apiVersion: v1
kind: Service
metadata:
  name: portcullis-server
  namespace: portcullis-system
  labels:
    app.kubernetes.io/managed-by: portcullis
spec:
  selector: {{app.kubernetes.io/name: portcullis-server}}
  ports:
  - {{name: https, port: 443, targetPort: 7443}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: portcullis-server
  namespace: portcullis-system
  labels:
    app.kubernetes.io/managed-by: portcullis
spec:
  replicas: 2
  selector:
    matchLabels: {{app.kubernetes.io/name: portcullis-server}}
  template:
    metadata:
      labels: {{app.kubernetes.io/name: portcullis-server}}
    spec:
      serviceAccountName: portcullis-server
      containers:
      - name: server
        image: "{image}"
        args: [serve, --config, /etc/portcullis/server.toml]
        ports: [{{containerPort: 7443}}]
        readinessProbe: {{httpGet: {{path: /readyz, port: 7443, scheme: HTTPS}}}}
        livenessProbe: {{httpGet: {{path: /healthz, port: 7443, scheme: HTTPS}}}}
        resources:
          requests: {{cpu: 50m, memory: 64Mi}}
          limits: {{memory: 256Mi}}
        volumeMounts: [{{name: config, mountPath: /etc/portcullis, readOnly: true}}]
      volumes:
      - name: config
        secret: {{secretName: portcullis-server}}
"#
    )
}

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
                "ConfigMap",
                "ClusterRole",
                "ClusterRole",
                "ClusterRole",
                "ClusterRole"
            ]
        );
    }
}
