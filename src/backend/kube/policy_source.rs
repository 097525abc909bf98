//! A cluster's shared policy for direct-mode consoles: the ConfigMap
//! `portcullis-system/portcullis-policy`, one key per file (`*.rego`,
//! `*.json`, `*.yaml`). Every approver of the cluster then sees the same
//! advisory verdicts without passing `--policy DIR`; writing it takes the
//! rights to `portcullis-system` (no shipped role has them).

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;

use super::{KubeCluster, SYSTEM_NAMESPACE};
use crate::policy::{Policy, PolicyError};

pub const POLICY_CONFIGMAP: &str = "portcullis-policy";

/// The cluster's policy: `Ok(None)` when there is no such ConfigMap (or it
/// may not be read); a ConfigMap that does not load is an error saying why.
pub async fn policy_of(cluster: &KubeCluster) -> Result<Option<Policy>, PolicyError> {
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), SYSTEM_NAMESPACE);
    let cm = match api.get_opt(POLICY_CONFIGMAP).await {
        Ok(Some(cm)) => cm,
        Ok(None) => return Ok(None),
        Err(kube::Error::Api(e)) if e.code == 403 => return Ok(None),
        Err(e) => {
            return Err(PolicyError::Load(format!(
                "{SYSTEM_NAMESPACE}/{POLICY_CONFIGMAP}: {e}"
            )))
        }
    };
    let origin = PathBuf::from(format!("configmap/{SYSTEM_NAMESPACE}/{POLICY_CONFIGMAP}"));
    let sources: Vec<(PathBuf, String)> = cm
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            (
                origin.join(Path::new(&k).file_name().unwrap_or_default()),
                v,
            )
        })
        .collect();
    Policy::from_sources(&origin, sources).map(Some)
}
