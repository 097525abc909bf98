//! RBAC objects as the apiserver serves them (deserialisable from its YAML or
//! JSON), and the permission tuples the engine reasons about.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    #[serde(default)]
    pub verbs: Vec<String>,
    #[serde(default)]
    pub api_groups: Vec<String>,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub resource_names: Vec<String>,
    #[serde(default, rename = "nonResourceURLs")]
    pub non_resource_urls: Vec<String>,
}

impl PolicyRule {
    /// A resource rule, for tests and seeds: `rule(&["get"], &[""], &["pods"])`.
    pub fn resource(verbs: &[&str], groups: &[&str], resources: &[&str]) -> Self {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect();
        Self {
            verbs: v(verbs),
            api_groups: v(groups),
            resources: v(resources),
            ..Default::default()
        }
    }

    pub fn with_names(mut self, names: &[&str]) -> Self {
        self.resource_names = names.iter().map(|x| x.to_string()).collect();
        self
    }

    pub fn non_resource(verbs: &[&str], urls: &[&str]) -> Self {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect();
        Self {
            verbs: v(verbs),
            non_resource_urls: v(urls),
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ObjectMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelectorRequirement {
    pub key: String,
    pub operator: String,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

impl LabelSelector {
    /// Kubernetes label selector semantics. An empty selector matches
    /// everything; an unknown operator matches nothing (fail closed).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|e| {
                let value = labels.get(&e.key);
                match e.operator.as_str() {
                    "In" => value.is_some_and(|v| e.values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !e.values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AggregationRule {
    #[serde(default)]
    pub cluster_role_selectors: Vec<LabelSelector>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRole {
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub rules: Vec<PolicyRule>,
    #[serde(default)]
    pub aggregation_rule: Option<AggregationRule>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Role {
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub rules: Vec<PolicyRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubjectRef {
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BindingRoleRef {
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleBinding {
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub subjects: Vec<SubjectRef>,
    pub role_ref: BindingRoleRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRoleBinding {
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub subjects: Vec<SubjectRef>,
    pub role_ref: BindingRoleRef,
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// A `kind: List` (what `kubectl get -o yaml` prints).
#[derive(Debug, Deserialize)]
pub struct List<T> {
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
}

/// Everything the engine needs to know about one cluster's RBAC.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Inventory {
    pub roles: Vec<Role>,
    pub cluster_roles: Vec<ClusterRole>,
    pub role_bindings: Vec<RoleBinding>,
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
    /// The cluster's namespaces, when known (None: not watched, e.g. the
    /// fixtures): a request for a namespace that does not exist is invalid.
    pub namespaces: Option<BTreeSet<String>>,
    /// One line per object that could not be read (`RoleBinding ns/name:
    /// why`). A skipped binding can hide standing access, so "already held"
    /// may be understated while this is not empty; the console says so.
    pub skipped: Vec<String>,
}

/// Where a permission applies. `Cluster` means every namespace and the
/// cluster-scoped resources (what a ClusterRoleBinding gives).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Cluster,
    Namespace(String),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Cluster => f.write_str("cluster-wide"),
            Scope::Namespace(ns) => f.write_str(ns),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// `resource` may be `res/sub`, `*/sub` or `*`.
    ///
    /// `name` keeps "any name" and "a request without a name" apart, as the
    /// authorizer does (it compares the request's name, `""` when there is
    /// none, with `resourceNames`):
    /// - `None`: any name — a rule without `resourceNames`; every object and
    ///   every request without a name (list, watch, create, deletecollection);
    /// - `Some("")`: only requests that carry no name — what
    ///   `resourceNames: [""]` matches, i.e. listing or creating everything;
    /// - `Some(n)`: only requests that name `n`.
    ///
    /// See [`Permission::name_reach`] for what each means to an approver.
    Resource {
        api_group: String,
        resource: String,
        name: Option<String>,
    },
    NonResource {
        url: String,
    },
}

/// `pods/exec` → (`pods`, Some(`exec`)); `pods` → (`pods`, None).
pub fn split_subresource(resource: &str) -> (&str, Option<&str>) {
    match resource.split_once('/') {
        Some((base, sub)) => (base, Some(sub)),
        None => (resource, None),
    }
}

/// What a tuple's resource name really restricts, given how requests carry
/// names (`k8s.io/apiserver/pkg/endpoints/request/requestinfo.go`): a name is
/// in the URL for get/update/patch/delete and subresources; list and watch
/// carry one only with the field selector `metadata.name=NAME`; create (of a
/// resource itself) and deletecollection never carry one, so their name is `""`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameReach<'a> {
    /// No `resourceNames`: every object.
    Any,
    /// Requests that name this object.
    Object(&'a str),
    /// list/watch of this object only, with the field selector `metadata.name=NAME`.
    FieldSelected(&'a str),
    /// `resourceNames: [""]` on list/watch/create/deletecollection: every
    /// request of that verb carries no name, so the "name" restricts nothing.
    EveryObject,
    /// A non-empty name on create or deletecollection: no such request ever
    /// carries a name, so the tuple allows no real request.
    NoRequest,
}

impl NameReach<'_> {
    /// One line for the approver, when the name does not mean what it looks like.
    pub fn note(self) -> Option<&'static str> {
        match self {
            NameReach::Any | NameReach::Object(_) => None,
            NameReach::FieldSelected(_) => {
                Some("a named list/watch works only with the field selector metadata.name=NAME")
            }
            NameReach::EveryObject => Some(
                "resourceNames [\"\"] matches every request without a name: list, watch, create, deletecollection of every object",
            ),
            NameReach::NoRequest => Some(
                "create and deletecollection cannot be restricted by name: a name there allows nothing",
            ),
        }
    }
}

/// One (scope, apiGroup, resource[/subresource], verb, resourceName) tuple,
/// wildcards kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Permission {
    pub scope: Scope,
    pub target: Target,
    pub verb: String,
}

impl Permission {
    pub fn resource(scope: Scope, group: &str, resource: &str, verb: &str) -> Self {
        Self {
            scope,
            target: Target::Resource {
                api_group: group.into(),
                resource: resource.into(),
                name: None,
            },
            verb: verb.into(),
        }
    }

    /// A concrete request for one object (`name` may be `""`: the request
    /// without a name, as list or create send it).
    pub fn named(scope: Scope, group: &str, resource: &str, name: &str, verb: &str) -> Self {
        Self {
            scope,
            target: Target::Resource {
                api_group: group.into(),
                resource: resource.into(),
                name: Some(name.into()),
            },
            verb: verb.into(),
        }
    }

    pub fn non_resource(url: &str, verb: &str) -> Self {
        Self {
            scope: Scope::Cluster,
            target: Target::NonResource { url: url.into() },
            verb: verb.into(),
        }
    }

    /// What the tuple's resource name really restricts (see [`NameReach`]).
    pub fn name_reach(&self) -> NameReach<'_> {
        let Target::Resource { resource, name, .. } = &self.target else {
            return NameReach::Any;
        };
        let Some(name) = name.as_deref() else {
            return NameReach::Any;
        };
        // `*` covers subresources too, and a subresource create (pods/exec,
        // serviceaccounts/token) names its parent object.
        let top_level_create = self.verb == "create" && resource != "*" && !resource.contains('/');
        let nameless_verb = matches!(
            self.verb.as_str(),
            "list" | "watch" | "deletecollection" | "*"
        ) || top_level_create;
        match (name.is_empty(), self.verb.as_str()) {
            (true, _) if nameless_verb => NameReach::EveryObject,
            (true, _) => NameReach::Object(name),
            (false, "list" | "watch") => NameReach::FieldSelected(name),
            (false, "deletecollection") => NameReach::NoRequest,
            (false, _) if top_level_create => NameReach::NoRequest,
            (false, _) => NameReach::Object(name),
        }
    }

    /// `resource.group/subresource` as kubectl shows it (`deployments.apps`,
    /// `pods/exec`, `deployments.apps/scale`).
    pub fn resource_label(&self) -> String {
        match &self.target {
            Target::Resource {
                api_group,
                resource,
                ..
            } => {
                let (base, sub) = split_subresource(resource);
                let mut label = base.to_string();
                if !api_group.is_empty() {
                    label.push('.');
                    label.push_str(api_group);
                }
                if let Some(sub) = sub {
                    label.push('/');
                    label.push_str(sub);
                }
                label
            }
            Target::NonResource { url } => url.clone(),
        }
    }
}

/// Reads each object on its own: one the model cannot read is skipped and
/// said in `skipped` (`Kind ns/name: why`) instead of failing the whole
/// inventory or vanishing without a trace.
pub fn parse_objects<T: DeserializeOwned>(
    kind: &str,
    objects: impl IntoIterator<Item = serde_json::Value>,
    skipped: &mut Vec<String>,
) -> Vec<T> {
    objects
        .into_iter()
        .filter_map(|v| {
            let who = object_key(&v);
            serde_json::from_value(v)
                .map_err(|e| skipped.push(format!("{kind} {who}: {e}")))
                .ok()
        })
        .collect()
}

/// `ns/name`, `name`, or `(unnamed)` for a skipped-object line.
fn object_key(v: &serde_json::Value) -> String {
    let meta = &v["metadata"];
    match (meta["namespace"].as_str(), meta["name"].as_str()) {
        (Some(ns), Some(name)) => format!("{ns}/{name}"),
        (None, Some(name)) => name.to_string(),
        _ => "(unnamed)".to_string(),
    }
}

impl Inventory {
    /// From `kubectl get clusterroles,clusterrolebindings -o yaml` style
    /// lists. A list that is not YAML is an error; an item the model cannot
    /// read is skipped and listed in `skipped`.
    pub fn from_yaml_lists(
        cluster_roles: &str,
        cluster_role_bindings: &str,
    ) -> Result<Self, serde_yaml_ng::Error> {
        let roles: List<serde_json::Value> = serde_yaml_ng::from_str(cluster_roles)?;
        let bindings: List<serde_json::Value> = serde_yaml_ng::from_str(cluster_role_bindings)?;
        let mut skipped = Vec::new();
        let cluster_roles = parse_objects("ClusterRole", roles.items, &mut skipped);
        let cluster_role_bindings =
            parse_objects("ClusterRoleBinding", bindings.items, &mut skipped);
        Ok(Self {
            cluster_roles,
            cluster_role_bindings,
            skipped,
            ..Default::default()
        })
    }

    pub fn cluster_role(&self, name: &str) -> Option<&ClusterRole> {
        self.cluster_roles.iter().find(|r| r.metadata.name == name)
    }

    pub fn role(&self, namespace: &str, name: &str) -> Option<&Role> {
        self.roles
            .iter()
            .find(|r| r.metadata.name == name && r.metadata.namespace.as_deref() == Some(namespace))
    }

    /// The rules of a ClusterRole, evaluating aggregation ourselves (as the
    /// clusterrole-aggregation controller does) rather than trusting the
    /// stored rules. Returns the rules and whether aggregation was involved.
    pub fn cluster_role_rules(&self, name: &str) -> Option<(Vec<PolicyRule>, bool)> {
        let mut visiting = BTreeSet::new();
        self.resolve(name, &mut visiting)
    }

    fn resolve(
        &self,
        name: &str,
        visiting: &mut BTreeSet<String>,
    ) -> Option<(Vec<PolicyRule>, bool)> {
        let role = self.cluster_role(name)?;
        let Some(agg) = &role.aggregation_rule else {
            return Some((role.rules.clone(), false));
        };
        if !visiting.insert(name.to_string()) {
            // A cycle: the controller would converge on the union, which the
            // outer call already collects.
            return Some((Vec::new(), true));
        }
        let mut rules: BTreeSet<PolicyRule> = BTreeSet::new();
        for other in &self.cluster_roles {
            if other.metadata.name == name {
                continue;
            }
            if agg
                .cluster_role_selectors
                .iter()
                .any(|s| s.matches(&other.metadata.labels))
            {
                if let Some((r, _)) = self.resolve(&other.metadata.name, visiting) {
                    rules.extend(r);
                }
            }
        }
        visiting.remove(name);
        Some((rules.into_iter().collect(), true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selector_operators() {
        let l = labels(&[("a", "1"), ("b", "2")]);
        let req = |op: &str, key: &str, vals: &[&str]| LabelSelector {
            match_expressions: vec![LabelSelectorRequirement {
                key: key.into(),
                operator: op.into(),
                values: vals.iter().map(|v| v.to_string()).collect(),
            }],
            ..Default::default()
        };
        assert!(LabelSelector::default().matches(&l));
        assert!(req("In", "a", &["1", "3"]).matches(&l));
        assert!(!req("In", "a", &["3"]).matches(&l));
        assert!(req("NotIn", "a", &["3"]).matches(&l));
        assert!(req("NotIn", "zz", &["3"]).matches(&l));
        assert!(!req("NotIn", "a", &["1"]).matches(&l));
        assert!(req("Exists", "b", &[]).matches(&l));
        assert!(!req("Exists", "c", &[]).matches(&l));
        assert!(req("DoesNotExist", "c", &[]).matches(&l));
        assert!(!req("Bogus", "a", &[]).matches(&l));
        let ml = LabelSelector {
            match_labels: labels(&[("a", "1")]),
            ..Default::default()
        };
        assert!(ml.matches(&l));
        assert!(!ml.matches(&labels(&[("a", "2")])));
    }

    #[test]
    fn name_reach_says_what_a_name_restricts() {
        let ns = || Scope::Namespace("a".into());
        let p = |res: &str, name: &str, verb: &str| Permission::named(ns(), "", res, name, verb);
        assert_eq!(
            Permission::resource(ns(), "", "pods", "create").name_reach(),
            NameReach::Any
        );
        for verb in ["list", "watch", "create", "deletecollection", "*"] {
            assert_eq!(
                p("pods", "", verb).name_reach(),
                NameReach::EveryObject,
                "{verb}"
            );
        }
        for verb in ["get", "update", "patch", "delete", "use"] {
            assert_eq!(
                p("pods", "", verb).name_reach(),
                NameReach::Object(""),
                "{verb}"
            );
        }
        for verb in ["list", "watch"] {
            assert_eq!(
                p("pods", "x", verb).name_reach(),
                NameReach::FieldSelected("x")
            );
        }
        assert_eq!(p("pods", "x", "create").name_reach(), NameReach::NoRequest);
        assert_eq!(
            p("pods", "x", "deletecollection").name_reach(),
            NameReach::NoRequest
        );
        assert_eq!(
            p("pods/x", "x", "deletecollection").name_reach(),
            NameReach::NoRequest
        );
        // A subresource create, or `*` (which covers subresources), names its object.
        assert_eq!(
            p("pods/exec", "x", "create").name_reach(),
            NameReach::Object("x")
        );
        assert_eq!(p("*", "x", "create").name_reach(), NameReach::Object("x"));
        assert_eq!(
            p("pods/exec", "", "create").name_reach(),
            NameReach::Object("")
        );
        assert_eq!(p("pods", "x", "*").name_reach(), NameReach::Object("x"));
        assert_eq!(p("pods", "x", "get").name_reach(), NameReach::Object("x"));
        assert!(NameReach::EveryObject
            .note()
            .is_some_and(|n| n.contains("[\"\"]")));
        assert!(NameReach::NoRequest.note().is_some());
        assert!(NameReach::FieldSelected("x").note().is_some());
        assert_eq!(NameReach::Object("x").note(), None);
        assert_eq!(
            Permission::non_resource("/x", "get").name_reach(),
            NameReach::Any
        );
    }

    #[test]
    fn unreadable_objects_are_skipped_and_said() {
        let roles =
            "items:\n- metadata: {name: ok}\n  rules: []\n- metadata: {name: bad}\n  rules: 7\n";
        let bindings = "items:\n- metadata: {name: no-ref}\n  subjects: []\n- metadata: {name: b}\n  roleRef: {kind: ClusterRole, name: ok}\n";
        let inv = Inventory::from_yaml_lists(roles, bindings).unwrap();
        assert_eq!(inv.cluster_roles.len(), 1);
        assert_eq!(inv.cluster_role_bindings.len(), 1);
        assert_eq!(inv.skipped.len(), 2, "{:?}", inv.skipped);
        assert!(inv.skipped[0].starts_with("ClusterRole bad: "));
        assert!(inv.skipped[1].starts_with("ClusterRoleBinding no-ref: "));
        assert!(inv.skipped[1].contains("roleRef"));
        // Not YAML at all is still an error.
        assert!(Inventory::from_yaml_lists("items: [", "items: []").is_err());
    }

    #[test]
    fn parse_objects_names_namespaced_and_unnamed_objects() {
        let mut skipped = Vec::new();
        let rbs: Vec<RoleBinding> = parse_objects(
            "RoleBinding",
            [
                serde_json::json!({"metadata": {"name": "x", "namespace": "a"}}),
                serde_json::json!({"kind": "RoleBinding"}),
                serde_json::json!({"metadata": {"name": "y", "namespace": "a"},
                    "roleRef": {"kind": "Role", "name": "r"}, "subjects": null}),
            ],
            &mut skipped,
        );
        assert_eq!(rbs.len(), 1);
        assert!(skipped[0].starts_with("RoleBinding a/x: "), "{skipped:?}");
        assert!(
            skipped[1].starts_with("RoleBinding (unnamed): "),
            "{skipped:?}"
        );
    }

    #[test]
    fn null_rules_deserialize_as_empty() {
        let r: ClusterRole = serde_yaml_ng::from_str("metadata: {name: x}\nrules: null\n").unwrap();
        assert!(r.rules.is_empty());
    }
}
