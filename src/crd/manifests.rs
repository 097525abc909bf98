//! What `portcullis crds` prints: the AccessRequest CRD and the least-rights
//! ClusterRoles for requesters, approvers and the reaper; on request the
//! bind rights for the grantable roles, who holds which role, the reaper's
//! and the server's Deployments.
//!
//! The CRD has a structural schema: `kubectl explain accessrequest.spec`
//! describes every field, and the apiserver refuses at `kubectl apply`
//! time what can never be valid (no reason, a duration that is not one,
//! an unknown role kind or credentials mode, over-long text, too many
//! namespaces), naming the field. What the schema cannot say (a Role
//! without exactly one namespace, a role the cluster lacks, a duration
//! over the cluster's limit) and objects stored before the schema are
//! still read leniently ([`super::wire`]) and listed as INVAL. `status`
//! is described but keeps unknown fields: only Portcullis writes it.

use serde_json::{json, Value};

use crate::domain::grantable::Grantable;
use crate::domain::request::{MAX_NAMESPACES, MAX_REASON_CHARS, MAX_TICKET_CHARS};
use crate::domain::RoleKind;

pub use crate::domain::duration::DURATION_PATTERN;

/// A DNS label (a namespace name).
const DNS_LABEL: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/// What RBAC allows in a role name (`system:aggregate-to-edit`).
const ROLE_NAME: &str = "^[A-Za-z0-9._:-]+$";

/// The AccessRequest CRD.
#[expect(
    clippy::too_many_lines,
    reason = "one YAML document, read whole as kubectl would show it"
)]
pub fn crd() -> String {
    format!(
        r#"apiVersion: apiextensions.k8s.io/v1
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
      status: {{}}
    additionalPrinterColumns:
    - {{name: Requester, type: string, jsonPath: .spec.requester.user}}
    - {{name: Role, type: string, jsonPath: .spec.role.name}}
    - {{name: Namespaces, type: string, jsonPath: .spec.namespaces}}
    - {{name: Duration, type: string, jsonPath: .spec.duration}}
    - {{name: Phase, type: string, jsonPath: .status.phase}}
    - {{name: Approver, type: string, jsonPath: .status.decision.by}}
    - {{name: Expires, type: string, jsonPath: .status.expiresAt}}
    - {{name: Age, type: date, jsonPath: .metadata.creationTimestamp}}
    schema:
      openAPIV3Schema:
        type: object
        description: A request for a role, in some namespaces, for a while, with a reason; approved, it is a grant that ends by itself.
        required: [spec]
        properties:
          apiVersion: {{type: string}}
          kind: {{type: string}}
          metadata: {{type: object}}
          spec:
            type: object
            description: What is asked. Never changes once made (withdraw and ask again).
            required: [requester, role, duration, reason]
            properties:
              requester:
                type: object
                description: Who asks. In direct mode these are the creator's words; the admission webhook or the server makes them the caller's verified identity.
                required: [user]
                properties:
                  user:
                    type: string
                    description: The user name the grant binds (as the apiserver authenticates them).
                    minLength: 1
                    maxLength: 253
                  groups:
                    type: array
                    description: The requester's groups, shown to approvers (claims in direct mode).
                    maxItems: 64
                    items: {{type: string, maxLength: 253}}
              role:
                type: object
                description: The role to be bound.
                required: [kind, name]
                properties:
                  kind:
                    type: string
                    description: ClusterRole, or Role (namespaced; then exactly one namespace).
                    enum: [ClusterRole, Role]
                  name:
                    type: string
                    description: The role's name.
                    minLength: 1
                    maxLength: 253
                    pattern: '{ROLE_NAME}'
              namespaces:
                type: array
                description: Where the role applies, one RoleBinding each; empty = cluster-wide (a ClusterRoleBinding; ClusterRole only). Never portcullis-system.
                maxItems: {MAX_NAMESPACES}
                items: {{type: string, maxLength: 63, pattern: '{DNS_LABEL}'}}
              duration:
                type: string
                description: How long once granted, e.g. 30m or 1h30m; the clock starts at approval. At most the cluster's maxDuration (portcullis-system/portcullis-settings).
                maxLength: 64
                pattern: '{DURATION_PATTERN}'
              reason:
                type: string
                description: Why, for the approver (required).
                minLength: 1
                maxLength: {MAX_REASON_CHARS}
                pattern: '\S'
              ticket:
                type: string
                description: A ticket or incident reference (optional).
                maxLength: {MAX_TICKET_CHARS}
              credentials:
                type: string
                description: Identity binds the requester's user; Token binds a per-grant ServiceAccount the requester mints short-lived tokens for (portcullis login).
                enum: [Identity, Token]
              cluster:
                type: string
                description: Server mode only, written by the server - which of its target clusters the grant is made on.
                maxLength: 253
              extends:
                type: string
                description: The requester's live grant this asks to extend (same role, no more namespaces); approved, it is a grant of its own from its approval.
                maxLength: 253
          status:
            type: object
            description: Written by Portcullis only (approvers, the reaper, the server); requesters have no write on it.
            x-kubernetes-preserve-unknown-fields: true
            properties:
              phase:
                type: string
                description: Pending, Active, Denied, Expired, Revoked, Released (ended early by its requester), Withdrawn or Failed. Terminal phases never change.
                enum: [Pending, Active, Denied, Expired, Revoked, Released, Withdrawn, Failed]
              decision:
                type: object
                description: Who decided, when, and what was granted (at most what was asked).
                x-kubernetes-preserve-unknown-fields: true
                properties:
                  by: {{type: string, description: "The approver (or denier) as the apiserver verified them."}}
                  at: {{type: string, description: "When, by the apiserver's clock."}}
                  verdict: {{type: string, description: "Approved or Denied."}}
                  reason: {{type: string, description: "Why (required for a denial)."}}
                  duration: {{type: string, description: "What was granted; may be shorter than asked."}}
                  namespaces: {{type: array, items: {{type: string}}, description: "What was granted; may be fewer than asked."}}
              grantedAt: {{type: string, description: "When the grant started."}}
              expiresAt: {{type: string, description: "When the grant ends; shorten moves it earlier, never later."}}
              revokedAt: {{type: string, description: "When the grant was revoked or released."}}
              endedAt: {{type: string, description: "When the request or grant ended otherwise."}}
              revokedBy: {{type: string, description: "Who revoked it (the requester, when they released it)."}}
              revokeReason: {{type: string, description: "Why it was revoked."}}
              message: {{type: string, description: "Why it failed, or what the apiserver said when the grant's end was verified."}}
              reviews:
                type: array
                description: Approvals so far, when a policy needs several.
                maxItems: 32
                items: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
              bindings:
                type: array
                description: The objects the grant created, by uid; its end deletes exactly these.
                maxItems: 64
                items: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
"#
    )
}

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
# The audit trail as Kubernetes Events on each request (a cluster-scoped
# object's Events live in namespace default).
- apiGroups: [""]
  resources: [events]
  verbs: [create]
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
#[expect(
    clippy::too_many_lines,
    reason = "one YAML stream (account, roles, Deployment, Service), read whole"
)]
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
- apiGroups: [""]
  resources: [events]
  verbs: [create]
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
        env: [{{name: KUBECONFIG, value: /etc/portcullis/kubeconfig}}]
        volumeMounts:
        - {{name: config, mountPath: /etc/portcullis, readOnly: true}}
        - {{name: policies, mountPath: /etc/portcullis-policies, readOnly: true}}
        - {{name: state, mountPath: /var/lib/portcullis}}
      volumes:
      # From `crds --server-config FILE` (README "Installing the server").
      - name: config
        secret: {{secretName: portcullis-server}}
      - name: policies
        configMap: {{name: portcullis-server-policies, optional: true}}
      # The audit log: an emptyDir keeps it for the pod's life only; put a
      # PersistentVolumeClaim here to keep it (and its chain) for good.
      - name: state
        emptyDir: {{}}
"#
    )
}

/// Who holds a shipped role: `group:NAME` or `user:NAME` (as the server's
/// config names approvers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    User(String),
    Group(String),
}

impl Holder {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim().split_once(':') {
            Some(("user", n)) if !n.is_empty() => Ok(Self::User(n.into())),
            Some(("group", n)) if !n.is_empty() => Ok(Self::Group(n.into())),
            _ => Err(format!(
                "'{text}' is not group:NAME or user:NAME (e.g. group:oncall)"
            )),
        }
    }

    fn subject(&self) -> Value {
        let (kind, name) = match self {
            Self::User(n) => ("User", n),
            Self::Group(n) => ("Group", n),
        };
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name})
    }
}

fn service_account(name: &str) -> Value {
    json!({"kind": "ServiceAccount", "name": name, "namespace": crate::domain::request::SYSTEM_NAMESPACE})
}

fn managed(name: &str, namespace: Option<&str>) -> Value {
    let mut meta = json!({"name": name, "labels": {"app.kubernetes.io/managed-by": "portcullis"}});
    if let Some(ns) = namespace {
        meta["namespace"] = json!(ns);
    }
    meta
}

fn cluster_role_binding(name: &str, role: &str, subjects: Vec<Value>) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": managed(name, None),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": subjects,
    })
}

fn role_binding(
    name: &str,
    namespace: &str,
    kind: &str,
    role: &str,
    subjects: Vec<Value>,
) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": managed(name, Some(namespace)),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
        "subjects": subjects,
    })
}

/// Documents as one YAML stream, each after `---`.
fn stream(docs: &[Value]) -> String {
    docs.iter()
        .map(|d| format!("---\n{}", serde_yaml_ng::to_string(d).unwrap_or_default()))
        .collect()
}

/// `--requesters` and `--approvers`: who holds portcullis-requester and
/// portcullis-approver (ClusterRoleBindings of those names).
pub fn holders(requesters: &[Holder], approvers: &[Holder]) -> String {
    let mut docs = Vec::new();
    if !requesters.is_empty() {
        docs.push(cluster_role_binding(
            "portcullis-requesters",
            "portcullis-requester",
            requesters.iter().map(Holder::subject).collect(),
        ));
    }
    if !approvers.is_empty() {
        docs.push(cluster_role_binding(
            "portcullis-approvers",
            "portcullis-approver",
            approvers.iter().map(Holder::subject).collect(),
        ));
    }
    stream(&docs)
}

/// `--grantable`: `bind` on exactly these roles (Kubernetes' escalation
/// check lets a RoleBinding to a role be made only by whoever may `bind`
/// it or holds all of it), for the approvers and, with the server, its
/// ServiceAccount. ClusterRoles and `Role/NAME` (that name in any
/// namespace) go in one ClusterRole `portcullis-grantable`, bound
/// cluster-wide; `Role/NAMESPACE/NAME` in a Role `portcullis-grantable` in
/// that namespace, bound there only. The settings' `grantableRoles` is set
/// to the same list, so a console refuses anything else up front.
pub fn grantable(roles: &[Grantable], approvers: &[Holder], server: bool) -> String {
    let mut subjects: Vec<Value> = approvers.iter().map(Holder::subject).collect();
    if server {
        subjects.push(service_account("portcullis-server"));
    }
    let names = |kind: RoleKind, ns: Option<&str>| -> Vec<String> {
        let mut v: Vec<String> = roles
            .iter()
            .filter(|r| r.kind == kind && r.namespace.as_deref() == ns)
            .map(|r| r.name.clone())
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let mut docs = Vec::new();
    let cluster_roles = names(RoleKind::ClusterRole, None);
    let any_ns_roles = names(RoleKind::Role, None);
    if !cluster_roles.is_empty() || !any_ns_roles.is_empty() {
        let mut rules = Vec::new();
        if !cluster_roles.is_empty() {
            rules.push(json!({"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": cluster_roles}));
        }
        if !any_ns_roles.is_empty() {
            rules.push(json!({"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["bind"], "resourceNames": any_ns_roles}));
        }
        docs.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": managed("portcullis-grantable", None),
            "rules": rules,
        }));
        docs.push(cluster_role_binding(
            "portcullis-grantable",
            "portcullis-grantable",
            subjects.clone(),
        ));
    }
    let mut namespaces: Vec<&str> = roles
        .iter()
        .filter_map(|r| r.namespace.as_deref())
        .collect();
    namespaces.sort();
    namespaces.dedup();
    for ns in namespaces {
        docs.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": managed("portcullis-grantable", Some(ns)),
            "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["bind"], "resourceNames": names(RoleKind::Role, Some(ns))}],
        }));
        docs.push(role_binding(
            "portcullis-grantable",
            ns,
            "Role",
            "portcullis-grantable",
            subjects.clone(),
        ));
    }
    stream(&docs)
}

/// A grantable role names what RBAC can name: a role name, a namespace.
pub fn check_grantable(g: &Grantable) -> Result<(), String> {
    let role = regex::Regex::new(ROLE_NAME).expect("a valid pattern");
    let label = regex::Regex::new(DNS_LABEL).expect("a valid pattern");
    if !role.is_match(&g.name) || g.name.len() > 253 {
        return Err(format!("'{}' is not a role name", g.name));
    }
    if let Some(ns) = &g.namespace {
        if !label.is_match(ns) || ns.len() > 63 {
            return Err(format!("'{ns}' is not a namespace name"));
        }
    }
    Ok(())
}

/// The settings ConfigMap's `grantableRoles` value for `roles`.
pub fn grantable_setting(roles: &[Grantable]) -> String {
    roles
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The port `portcullis reaper` serves `/healthz` and `/metrics` on in
/// its Deployment.
pub const REAPER_PORT: u16 = 9464;

/// `--reaper-deployment IMAGE`: the reaper in the cluster, as its own
/// ServiceAccount holding exactly portcullis-reaper (cluster-wide) and
/// portcullis-reaper-tokens (in portcullis-system only); two replicas
/// (several reapers are safe), probes on `/healthz`, resource limits, no
/// privileges. It listens on all of the pod's addresses because the
/// kubelet probes the pod's IP; `portcullis reaper` itself defaults to
/// loopback.
pub fn reaper_deployment(image: &str) -> String {
    let ns = crate::domain::request::SYSTEM_NAMESPACE;
    let probe = |delay: u32| json!({"httpGet": {"path": "/healthz", "port": "metrics"}, "initialDelaySeconds": delay, "periodSeconds": 10, "timeoutSeconds": 2, "failureThreshold": 3});
    let docs = [
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": managed("portcullis-reaper", Some(ns))}),
        cluster_role_binding(
            "portcullis-reaper",
            "portcullis-reaper",
            vec![service_account("portcullis-reaper")],
        ),
        role_binding(
            "portcullis-reaper-tokens",
            ns,
            "ClusterRole",
            "portcullis-reaper-tokens",
            vec![service_account("portcullis-reaper")],
        ),
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": managed("portcullis-reaper", Some(ns)),
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app.kubernetes.io/name": "portcullis-reaper"}},
                "template": {
                    "metadata": {
                        "labels": {"app.kubernetes.io/name": "portcullis-reaper", "app.kubernetes.io/managed-by": "portcullis"},
                        "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": REAPER_PORT.to_string()},
                    },
                    "spec": {
                        "serviceAccountName": "portcullis-reaper",
                        "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
                        "containers": [{
                            "name": "reaper",
                            "image": image,
                            "args": ["reaper", "--listen", format!("0.0.0.0:{REAPER_PORT}")],
                            "ports": [{"name": "metrics", "containerPort": REAPER_PORT}],
                            "livenessProbe": probe(5),
                            "readinessProbe": probe(2),
                            "resources": {
                                "requests": {"cpu": "10m", "memory": "32Mi"},
                                "limits": {"cpu": "500m", "memory": "128Mi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": false,
                                "readOnlyRootFilesystem": true,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }],
                    },
                },
            },
        }),
    ];
    stream(&docs)
}

/// Everything, as one multi-document YAML stream.
pub fn all() -> String {
    format!("{}---\n{ROLES}", crd())
}

/// As [`all`], with the settings' `grantableRoles` set to `roles`.
pub fn all_granting(roles: &[Grantable]) -> String {
    all().replace(
        "  grantableRoles: \"\"\n",
        &format!(
            "  grantableRoles: {}\n",
            serde_json::to_string(&grantable_setting(roles)).unwrap_or_default()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(yaml: &str) -> Vec<Value> {
        serde_yaml_ng::Deserializer::from_str(yaml)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .filter(|v: &Value| !v.is_null())
            .collect()
    }

    #[test]
    fn the_duration_pattern_agrees_with_the_parser() {
        let pattern = regex::Regex::new(DURATION_PATTERN).unwrap();
        for ok in [
            "30m",
            "1h30m",
            "2h 5m",
            " 90s ",
            "1d",
            "45 minutes",
            "2hours",
        ] {
            assert!(pattern.is_match(ok), "{ok}");
            assert!(crate::domain::duration::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["forever", "30", "-5m", "m", "", "1h30", "5 fortnights"] {
            assert!(!pattern.is_match(bad), "{bad}");
            assert!(crate::domain::duration::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_crd_schema_is_structural_yaml_with_the_domain_bounds() {
        let crd = &docs(&crd())[0];
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        assert_eq!(
            spec["required"],
            json!(["requester", "role", "duration", "reason"])
        );
        let p = &spec["properties"];
        assert_eq!(p["namespaces"]["maxItems"], json!(MAX_NAMESPACES));
        assert_eq!(p["reason"]["maxLength"], json!(MAX_REASON_CHARS));
        assert_eq!(p["ticket"]["maxLength"], json!(MAX_TICKET_CHARS));
        assert_eq!(
            p["role"]["properties"]["kind"]["enum"],
            json!(["ClusterRole", "Role"])
        );
        assert_eq!(p["duration"]["pattern"], json!(DURATION_PATTERN));
        let columns: Vec<&str> = crd["spec"]["versions"][0]["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert!(
            columns.contains(&"Age") && columns.contains(&"Approver"),
            "{columns:?}"
        );
    }

    /// A structural schema prunes what it does not declare: every field
    /// Portcullis writes in `spec` must be in it.
    #[test]
    fn the_schema_declares_every_spec_field_written() {
        use crate::domain::{Credentials, NewRequest, RoleRef, Subject};
        let crd = &docs(&crd())[0];
        let declared = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
            ["spec"]["properties"];
        let asked = NewRequest {
            cluster: "c1".into(),
            requester: Subject {
                user: "alice".into(),
                groups: vec!["dev".into()],
            },
            role: RoleRef {
                kind: RoleKind::ClusterRole,
                name: "edit".into(),
            },
            namespaces: vec!["payments".into()],
            duration: std::time::Duration::from_secs(60),
            reason: "why".into(),
            ticket: Some("T-1".into()),
            credentials: Credentials::Token,
            // What an extension adds.
            extends: Some("alice-1".into()),
        };
        // What the server adds: the cluster (stored on a hub).
        let spec = crate::crd::wire::new_object(&asked, true)["spec"].clone();
        for key in spec.as_object().unwrap().keys() {
            assert!(declared.get(key).is_some(), "spec.{key} is pruned");
        }
        for key in ["user", "groups"] {
            assert!(declared["requester"]["properties"].get(key).is_some());
        }
    }

    #[test]
    fn grantable_binds_exactly_the_named_roles() {
        let roles: Vec<Grantable> = [
            "view",
            "ClusterRole/edit",
            "Role/payments/deployer",
            "Role/any",
        ]
        .iter()
        .map(|r| Grantable::parse(r).unwrap())
        .collect();
        let out = docs(&grantable(
            &roles,
            &[Holder::parse("group:oncall").unwrap()],
            false,
        ));
        let kinds: Vec<&str> = out.iter().map(|d| d["kind"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]
        );
        assert_eq!(
            out[0]["rules"],
            json!([
                {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": ["edit", "view"]},
                {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["bind"], "resourceNames": ["any"]}
            ])
        );
        assert_eq!(out[1]["subjects"][0]["name"], "oncall");
        assert_eq!(out[2]["metadata"]["namespace"], "payments");
        assert_eq!(out[2]["rules"][0]["resourceNames"], json!(["deployer"]));
        assert_eq!(out[3]["roleRef"]["kind"], "Role");
        // The settings list the same roles.
        let all = docs(&all_granting(&roles));
        let settings = all.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
        assert_eq!(
            settings["data"]["grantableRoles"],
            "ClusterRole/view,ClusterRole/edit,Role/payments/deployer,Role/any"
        );
        assert!(Holder::parse("oncall").is_err());
        assert!(check_grantable(&Grantable::parse("Role/Bad_NS/x").unwrap()).is_err());
    }

    #[test]
    fn the_reaper_deployment_runs_as_its_own_account_with_probes_and_limits() {
        let out = docs(&reaper_deployment("example.com/portcullis:1"));
        let kinds: Vec<&str> = out.iter().map(|d| d["kind"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "ServiceAccount",
                "ClusterRoleBinding",
                "RoleBinding",
                "Deployment"
            ]
        );
        let pod = &out[3]["spec"]["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], "portcullis-reaper");
        let c = &pod["containers"][0];
        assert_eq!(c["image"], "example.com/portcullis:1");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert!(c["resources"]["limits"]["memory"].is_string());
        assert_eq!(out[2]["metadata"]["namespace"], "portcullis-system");
    }

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
