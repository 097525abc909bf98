//! Live state for the console: AccessRequests and the RBAC inventory,
//! streamed as [`BackendEvent`]s.
//!
//! Both follow kube-runtime's watcher protocol to the letter: after a
//! (re)list (`Init` … `InitApply`* … `InitDone`) whatever was known before
//! and is not in the new list is gone — a binding deleted while the watch
//! was down stops counting as held, and a request deleted meanwhile leaves
//! the console.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, DynamicObject};
use kube::runtime::{watcher, WatchStreamExt};
use serde_json::Value;
use tokio::sync::mpsc;

use super::cluster::KubeCluster;
use crate::backend::{BackendEvent, RequestKey};
use crate::crd::wire;
use crate::domain::rbac::model::{self, parse_objects};
use crate::domain::rbac::Inventory;

/// The names a watch knows, with re-list bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct Relist {
    known: BTreeSet<String>,
    listing: Option<BTreeSet<String>>,
}

impl Relist {
    /// Applies one watcher event; returns the names that disappeared
    /// (only ever at `InitDone`).
    pub(crate) fn on<K>(
        &mut self,
        event: &watcher::Event<K>,
        name: impl Fn(&K) -> String,
    ) -> Vec<String> {
        match event {
            watcher::Event::Init => {
                self.listing = Some(BTreeSet::new());
                Vec::new()
            }
            watcher::Event::InitApply(o) => {
                let n = name(o);
                if let Some(l) = &mut self.listing {
                    l.insert(n.clone());
                }
                self.known.insert(n);
                Vec::new()
            }
            watcher::Event::InitDone => {
                let listed = self.listing.take().unwrap_or_default();
                let gone: Vec<String> = self.known.difference(&listed).cloned().collect();
                self.known = listed;
                gone
            }
            watcher::Event::Apply(o) => {
                self.known.insert(name(o));
                Vec::new()
            }
            watcher::Event::Delete(o) => {
                self.known.remove(&name(o));
                Vec::new()
            }
        }
    }
}

fn crd_missing(text: &str) -> bool {
    text.contains("404") || text.contains("could not find the requested resource")
}

/// Streams the cluster's AccessRequests until the receiver goes away
/// (direct mode: every request is for the context it was read from).
pub(crate) async fn requests(cluster: Arc<KubeCluster>, tx: mpsc::UnboundedSender<BackendEvent>) {
    let context = cluster.context.clone();
    follow_requests(cluster, tx, move |_: &DynamicObject| Some(context.clone())).await
}

/// Streams the hub's AccessRequests (the server): each names its target
/// cluster in `spec.cluster`.
pub(crate) async fn hub_requests(
    topology: super::topology::Topology,
    tx: mpsc::UnboundedSender<BackendEvent>,
) {
    let hub = topology.store.clone();
    // A request for no target of the server (made in direct mode on a hub
    // that is no target) is not the server's to show or record.
    follow_requests(hub, tx, move |o| topology.cluster_of(o).map(str::to_string)).await
}

async fn follow_requests(
    cluster: Arc<KubeCluster>,
    tx: mpsc::UnboundedSender<BackendEvent>,
    cluster_of: impl Fn(&DynamicObject) -> Option<String>,
) {
    let mut stream = watcher(cluster.requests(), cluster.watch_config().await)
        .modify(super::lean::lean)
        .backoff(super::backoff::quick())
        .boxed();
    let mut feed = RequestFeed::new(&cluster.context, cluster_of);
    while let Some(item) = stream.next().await {
        for e in feed.on(&item) {
            if tx.send(e).is_err() {
                return;
            }
        }
    }
}

/// The console's events from a watch of AccessRequests: each request
/// under the cluster it is for, removals after a re-list, and the watch
/// failing and coming back, said once each.
pub(crate) struct RequestFeed<F> {
    context: String,
    cluster_of: F,
    relist: Relist,
    /// The cluster each known request was reported under, to report its
    /// removal under the same key.
    clusters: HashMap<String, String>,
    reported_error: bool,
}

/// A direct-mode feed: every request is for the context it was read from.
pub(crate) fn direct_feed(context: &str) -> RequestFeed<impl Fn(&DynamicObject) -> Option<String>> {
    let cluster = context.to_string();
    RequestFeed::new(context, move |_: &DynamicObject| Some(cluster.clone()))
}

impl<F: Fn(&DynamicObject) -> Option<String>> RequestFeed<F> {
    pub(crate) fn new(context: &str, cluster_of: F) -> Self {
        Self {
            context: context.to_string(),
            cluster_of,
            relist: Relist::default(),
            clusters: HashMap::new(),
            reported_error: false,
        }
    }

    /// The events one item of the watch stream makes.
    pub(crate) fn on(
        &mut self,
        item: &Result<watcher::Event<DynamicObject>, watcher::Error>,
    ) -> Vec<BackendEvent> {
        let event = match item {
            Ok(e) => e,
            Err(e) => {
                // The watcher re-lists by itself on the next poll, after
                // its backoff.
                if self.reported_error {
                    return Vec::new();
                }
                self.reported_error = true;
                let text = e.to_string();
                let message = if crd_missing(&text) {
                    "the AccessRequest CRD is not installed: run `portcullis crds | kubectl apply -f -`".to_string()
                } else {
                    format!("watching AccessRequests: {text}")
                };
                return vec![BackendEvent::ClusterStatus {
                    cluster: self.context.clone(),
                    error: Some(message),
                }];
            }
        };
        let mut out = Vec::new();
        if self.reported_error {
            self.reported_error = false;
            out.push(BackendEvent::ClusterStatus {
                cluster: self.context.clone(),
                error: None,
            });
        }
        let gone = self
            .relist
            .on(event, |o| o.metadata.name.clone().unwrap_or_default());
        let clusters = &mut self.clusters;
        let mut removed = |name: &str| {
            let cluster = clusters.remove(name)?;
            Some(BackendEvent::Removed(RequestKey {
                cluster,
                name: name.to_string(),
            }))
        };
        out.extend(gone.iter().filter_map(|n| removed(n)));
        match event {
            watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
                if let Some(cluster) = (self.cluster_of)(o) {
                    let value = serde_json::to_value(o).unwrap_or(Value::Null);
                    let req = wire::request_from_json(&cluster, &value);
                    self.clusters.insert(req.name.clone(), req.cluster.clone());
                    out.push(BackendEvent::Upsert(Box::new(req)));
                }
            }
            watcher::Event::Delete(o) => {
                out.extend(removed(o.metadata.name.as_deref().unwrap_or_default()))
            }
            watcher::Event::InitDone => out.push(BackendEvent::Synced),
            watcher::Event::Init => {}
        }
        out
    }
}

#[derive(Debug)]
enum RbacChange {
    Event(&'static str, watcher::Event<(String, Value)>),
    Failed(String),
}

fn rbac_stream<K>(
    api: Api<K>,
    kind: &'static str,
    config: watcher::Config,
) -> futures::stream::BoxStream<'static, RbacChange>
where
    K: kube::Resource
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug
        + Send
        + 'static,
{
    let entry = |o: K| {
        let key = format!(
            "{}/{}",
            o.meta().namespace.clone().unwrap_or_default(),
            o.meta().name.clone().unwrap_or_default()
        );
        (key, serde_json::to_value(&o).unwrap_or(Value::Null))
    };
    watcher(api, config)
        .backoff(super::backoff::quick())
        .map(move |e| match e {
            Ok(watcher::Event::Apply(o)) => {
                RbacChange::Event(kind, watcher::Event::Apply(entry(o)))
            }
            Ok(watcher::Event::InitApply(o)) => {
                RbacChange::Event(kind, watcher::Event::InitApply(entry(o)))
            }
            Ok(watcher::Event::Delete(o)) => {
                RbacChange::Event(kind, watcher::Event::Delete(entry(o)))
            }
            Ok(watcher::Event::Init) => RbacChange::Event(kind, watcher::Event::Init),
            Ok(watcher::Event::InitDone) => RbacChange::Event(kind, watcher::Event::InitDone),
            Err(e) => RbacChange::Failed(format!("watching {kind}: {e}")),
        })
        .boxed()
}

/// One RBAC object as the engine reads it, parsed once when it arrives
/// (not kept as JSON and parsed again for every new inventory).
#[derive(Debug, Clone)]
enum Parsed {
    Role(model::Role),
    ClusterRole(model::ClusterRole),
    RoleBinding(model::RoleBinding),
    ClusterRoleBinding(model::ClusterRoleBinding),
    /// A namespace: its name (the key) is all that is read.
    Namespace,
    /// One the engine cannot read: `Kind ns/name: why`.
    Unreadable(String),
}

impl Parsed {
    fn from_json(kind: &str, value: Value) -> Self {
        let mut skipped = Vec::new();
        let parsed = match kind {
            "Role" => parse_objects(kind, [value], &mut skipped)
                .pop()
                .map(Parsed::Role),
            "ClusterRole" => parse_objects(kind, [value], &mut skipped)
                .pop()
                .map(Parsed::ClusterRole),
            "RoleBinding" => parse_objects(kind, [value], &mut skipped)
                .pop()
                .map(Parsed::RoleBinding),
            "ClusterRoleBinding" => parse_objects(kind, [value], &mut skipped)
                .pop()
                .map(Parsed::ClusterRoleBinding),
            _ => Some(Parsed::Namespace),
        };
        parsed.unwrap_or_else(|| Parsed::Unreadable(skipped.pop().unwrap_or_default()))
    }
}

/// The RBAC objects of one cluster as last listed and watched, per kind.
#[derive(Debug, Default)]
pub(crate) struct RbacObjects {
    objects: HashMap<&'static str, BTreeMap<String, Parsed>>,
    relist: HashMap<&'static str, Relist>,
}

impl RbacObjects {
    /// Applies one event; true when the inventory changed.
    pub(crate) fn apply(
        &mut self,
        kind: &'static str,
        event: watcher::Event<(String, Value)>,
    ) -> bool {
        let gone = self
            .relist
            .entry(kind)
            .or_default()
            .on(&event, |(k, _)| k.clone());
        let map = self.objects.entry(kind).or_default();
        for k in &gone {
            map.remove(k);
        }
        match event {
            watcher::Event::Apply((k, v)) | watcher::Event::InitApply((k, v)) => {
                map.insert(k, Parsed::from_json(kind, v));
                true
            }
            watcher::Event::Delete((k, _)) => {
                map.remove(&k);
                true
            }
            watcher::Event::InitDone => true,
            watcher::Event::Init => !gone.is_empty(),
        }
    }

    /// The inventory the engine reads; objects that do not parse are
    /// skipped and each is named in `skipped`.
    pub(crate) fn inventory(&self) -> Inventory {
        let mut inventory = Inventory::default();
        for kind in ["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"] {
            for parsed in self.objects.get(kind).into_iter().flat_map(|m| m.values()) {
                match parsed {
                    Parsed::Role(r) => inventory.roles.push(r.clone()),
                    Parsed::ClusterRole(r) => inventory.cluster_roles.push(r.clone()),
                    Parsed::RoleBinding(b) => inventory.role_bindings.push(b.clone()),
                    Parsed::ClusterRoleBinding(b) => {
                        inventory.cluster_role_bindings.push(b.clone())
                    }
                    Parsed::Unreadable(why) => inventory.skipped.push(why.clone()),
                    Parsed::Namespace => {}
                }
            }
        }
        inventory.namespaces = self.objects.get("Namespace").map(|m| {
            m.keys()
                .map(|k| k.trim_start_matches('/').to_string())
                .collect()
        });
        if let Some(first) = inventory.skipped.first() {
            tracing::warn!(count = inventory.skipped.len(), %first, "RBAC objects the engine cannot read were skipped");
        }
        inventory
    }
}

/// Watches the RBAC inventory and sends it whole after each burst of changes.
pub(crate) async fn rbac(cluster: Arc<KubeCluster>, tx: mpsc::UnboundedSender<BackendEvent>) {
    let c = cluster.client.clone();
    // Paginated lists: a few hundred objects, and a streaming list of
    // them was seen to keep the first inventory back for seconds.
    let config = watcher::Config::default;
    let mut merged = futures::stream::select_all([
        rbac_stream(Api::<Role>::all(c.clone()), "Role", config()),
        rbac_stream(Api::<ClusterRole>::all(c.clone()), "ClusterRole", config()),
        rbac_stream(Api::<RoleBinding>::all(c.clone()), "RoleBinding", config()),
        rbac_stream(
            Api::<ClusterRoleBinding>::all(c.clone()),
            "ClusterRoleBinding",
            config(),
        ),
        rbac_stream(Api::<Namespace>::all(c), "Namespace", config()),
    ]);
    let mut objects = RbacObjects::default();
    let mut dirty = false;
    loop {
        let next = if dirty {
            match tokio::time::timeout(Duration::from_millis(100), merged.next()).await {
                Ok(n) => n,
                Err(_) => {
                    dirty = false;
                    let event = BackendEvent::Inventory {
                        cluster: cluster.context.clone(),
                        inventory: Arc::new(objects.inventory()),
                    };
                    if tx.send(event).is_err() {
                        return;
                    }
                    continue;
                }
            }
        } else {
            merged.next().await
        };
        match next {
            None => return,
            Some(RbacChange::Event(kind, event)) => dirty |= objects.apply(kind, event),
            Some(RbacChange::Failed(message)) => {
                // The watcher comes back by itself, after its backoff.
                tracing::warn!(cluster = %cluster.context, %message);
            }
        }
    }
}

/// Sends the cluster's limits now and whenever they change (polled: one
/// small GET every few seconds).
pub(crate) async fn limits(cluster: Arc<KubeCluster>, tx: mpsc::UnboundedSender<BackendEvent>) {
    let mut last = None;
    loop {
        let now = cluster.settings().await;
        if last.as_ref() != Some(&now) {
            let event = match &now {
                Ok(s) => BackendEvent::Limits {
                    cluster: cluster.context.clone(),
                    limits: s.limits.clone(),
                },
                Err(e) => BackendEvent::Notice {
                    cluster: cluster.context.clone(),
                    error: true,
                    text: e.to_string(),
                },
            };
            if tx.send(event).is_err() {
                return;
            }
            last = Some(now);
        }
        tokio::time::sleep(super::settings::SETTINGS_TTL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rb(name: &str) -> (String, Value) {
        (
            format!("payments/{name}"),
            json!({"metadata": {"name": name, "namespace": "payments"},
                   "roleRef": {"kind": "ClusterRole", "name": "edit"},
                   "subjects": [{"kind": "User", "name": "alice"}]}),
        )
    }

    #[test]
    fn a_relist_drops_what_was_deleted_while_the_watch_was_down() {
        let mut o = RbacObjects::default();
        for e in [
            watcher::Event::Init,
            watcher::Event::InitApply(rb("a")),
            watcher::Event::InitApply(rb("b")),
            watcher::Event::InitDone,
        ] {
            o.apply("RoleBinding", e);
        }
        assert_eq!(o.inventory().role_bindings.len(), 2);
        // The watch breaks; `b` is deleted meanwhile; the re-list lacks it.
        for e in [
            watcher::Event::Init,
            watcher::Event::InitApply(rb("a")),
            watcher::Event::InitDone,
        ] {
            o.apply("RoleBinding", e);
        }
        let names: Vec<String> = o
            .inventory()
            .role_bindings
            .iter()
            .map(|b| b.metadata.name.clone())
            .collect();
        assert_eq!(names, ["a"]);
    }

    #[test]
    fn unreadable_objects_are_counted_not_dropped_silently() {
        let mut o = RbacObjects::default();
        o.apply(
            "RoleBinding",
            watcher::Event::Apply((
                "payments/broken".into(),
                json!({"metadata": {"name": "broken"}, "subjects": "nope"}),
            )),
        );
        o.apply("RoleBinding", watcher::Event::Apply(rb("ok")));
        let inv = o.inventory();
        assert_eq!(inv.role_bindings.len(), 1);
        assert_eq!(inv.skipped.len(), 1);
        assert!(
            inv.skipped[0].starts_with("RoleBinding broken:"),
            "{:?}",
            inv.skipped
        );
    }

    #[test]
    fn request_relist_reports_removed_names() {
        let mut r = Relist::default();
        let name = |s: &String| s.clone();
        r.on(&watcher::Event::Apply("x".to_string()), name);
        r.on(&watcher::Event::Apply("y".to_string()), name);
        r.on(&watcher::Event::<String>::Init, name);
        r.on(&watcher::Event::InitApply("y".to_string()), name);
        assert_eq!(r.on(&watcher::Event::<String>::InitDone, name), ["x"]);
    }

    fn request(name: &str, cluster: Option<&str>) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "portcullis.dev/v1alpha1", "kind": "AccessRequest",
            "metadata": {"name": name},
            "spec": {"cluster": cluster, "requester": {"user": "alice"},
                     "role": {"kind": "ClusterRole", "name": "view"}, "namespaces": ["payments"],
                     "duration": "1h", "reason": "INC-1"}
        }))
        .unwrap()
    }

    fn said(events: &[BackendEvent]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                BackendEvent::Upsert(r) => format!("upsert {}/{}", r.cluster, r.name),
                BackendEvent::Removed(k) => format!("removed {}/{}", k.cluster, k.name),
                BackendEvent::Synced => "synced".into(),
                BackendEvent::ClusterStatus { error, .. } => format!("status {}", error.is_some()),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn the_feed_names_each_request_by_its_cluster_and_says_a_failing_watch_once() {
        let mut feed = RequestFeed::new("hub", |o: &DynamicObject| {
            o.data["spec"]["cluster"].as_str().map(str::to_string)
        });
        let failed = || -> Result<watcher::Event<DynamicObject>, watcher::Error> {
            Err(watcher::Error::NoResourceVersion)
        };
        let mut all = Vec::new();
        for item in [
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitApply(request("a", Some("c1")))),
            Ok(watcher::Event::InitApply(request("b", Some("c2")))),
            // No target's: not shown.
            Ok(watcher::Event::InitApply(request("x", None))),
            Ok(watcher::Event::InitDone),
            failed(),
            failed(),
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitApply(request("a", Some("c1")))),
            Ok(watcher::Event::InitDone),
        ] {
            all.extend(said(&feed.on(&item)));
        }
        assert_eq!(
            all,
            [
                "upsert c1/a",
                "upsert c2/b",
                "synced",
                "status true",
                "status false",
                "upsert c1/a",
                // Gone while the watch was down: removed under its cluster.
                "removed c2/b",
                "synced"
            ]
        );
    }
}
