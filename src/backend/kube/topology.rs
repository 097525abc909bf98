//! Which cluster holds the requests, and where each request's bindings go.
//!
//! Direct mode: one cluster does both, and a request's cluster is the
//! kubeconfig context it was read from. Under the server: every request
//! lives in the hub and names its target in `spec.cluster`; the server's
//! configuration names the targets and the limits each applies.

use std::collections::BTreeMap;
use std::sync::Arc;

use kube::api::DynamicObject;

use super::cluster::KubeCluster;
use super::grant::Site;
use super::settings::ClusterSettings;

/// A target cluster of the server, with the limits it applies.
pub struct Target {
    pub cluster: Arc<KubeCluster>,
    pub settings: ClusterSettings,
}

#[derive(Clone)]
pub struct Topology {
    pub store: Arc<KubeCluster>,
    /// Server mode: the targets by name. None: direct mode.
    pub targets: Option<Arc<BTreeMap<String, Target>>>,
    /// Server mode: the target that is the hub itself (same kubeconfig
    /// context), if one is. Requests stored without `spec.cluster` were
    /// made in direct mode on the hub, and are that target's; with no such
    /// target they are no target's, and the server leaves them alone.
    pub home: Option<String>,
}

/// The target named in a stored request (`spec.cluster`), if any.
pub(crate) fn stored_cluster(obj: &DynamicObject) -> Option<&str> {
    obj.data.get("spec")?.get("cluster")?.as_str()
}

impl Topology {
    pub fn direct(cluster: Arc<KubeCluster>) -> Self {
        Self {
            store: cluster,
            targets: None,
            home: None,
        }
    }

    /// The target `obj` is for (server mode): the one its `spec.cluster`
    /// names, or without one, the hub's own target.
    pub fn cluster_of<'a>(&'a self, obj: &'a DynamicObject) -> Option<&'a str> {
        stored_cluster(obj).or(self.home.as_deref())
    }

    /// Where `obj`'s grant lives; None when it names no configured target.
    pub fn site(&self, obj: &DynamicObject) -> Option<Site<'_>> {
        match &self.targets {
            None => Some(Site::direct(&self.store)),
            Some(targets) => self.site_named(targets, self.cluster_of(obj)?),
        }
    }

    /// The site of the target called `name` (direct mode: the one cluster,
    /// whatever the name).
    pub fn site_for(&self, name: &str) -> Option<Site<'_>> {
        match &self.targets {
            None => Some(Site::direct(&self.store)),
            Some(targets) => self.site_named(targets, name),
        }
    }

    fn site_named<'a>(
        &'a self,
        targets: &'a BTreeMap<String, Target>,
        name: &str,
    ) -> Option<Site<'a>> {
        let t = targets.get(name)?;
        Some(Site {
            store: &self.store,
            target: &t.cluster,
            settings: Some(&t.settings),
        })
    }

    /// Every cluster that gets bindings, with the name requests use for it.
    pub fn target_clusters(&self) -> Vec<Arc<KubeCluster>> {
        match &self.targets {
            None => vec![self.store.clone()],
            Some(targets) => targets.values().map(|t| t.cluster.clone()).collect(),
        }
    }
}
