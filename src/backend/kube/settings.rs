//! One set of limits per cluster, stored in the cluster.
//!
//! `max_duration`, `approval_timeout` and the grantable roles live in the
//! ConfigMap `portcullis-system/portcullis-settings` (`portcullis crds`
//! creates it with the defaults), so every approver, console and reaper of
//! a cluster applies the same rules — not whatever each user's config file
//! says. A missing, invalid or unreadable ConfigMap refuses approvals until
//! it is fixed (fail closed) and says why; the reaper still ends grants
//! (their end is in their status) and, only when the ConfigMap is missing,
//! expires pending requests by the default timeout.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;

use super::SYSTEM_NAMESPACE;
use crate::domain::grantable::Grantable;
use crate::domain::{duration, ValidationLimits};

pub(crate) const SETTINGS_NAME: &str = "portcullis-settings";
/// How long a read of the ConfigMap is reused.
pub(crate) const SETTINGS_TTL: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// With the roles approvers may hand out (`grantableRoles`).
    pub limits: ValidationLimits,
    /// How long an ended request stays in the cluster once it ended
    /// (`retention`; zero: for good). Only where an audit log records
    /// what is deleted: the server, and `portcullis reaper --audit-log`.
    pub retention: Duration,
    /// Whether the values came from the ConfigMap (false: defaults).
    pub from_cluster: bool,
}

/// How long ended requests are kept when no setting says.
pub(crate) const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 86_400);

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            limits: ValidationLimits::default(),
            retention: DEFAULT_RETENTION,
            from_cluster: false,
        }
    }
}

/// A retention setting: a duration, or `forever` (zero: never deleted).
pub(crate) fn parse_retention(value: &str) -> Result<Duration, String> {
    match value.trim() {
        "forever" => Ok(Duration::ZERO),
        v => duration::parse(v).map_err(|e| format!("{e} (or `forever`)")),
    }
}

impl ClusterSettings {
    /// Reads the ConfigMap's data. Unknown keys are errors (a typo must not
    /// silently leave a limit at its default).
    pub fn from_data(data: &BTreeMap<String, String>) -> Result<Self, String> {
        let mut out = Self {
            from_cluster: true,
            ..Self::default()
        };
        for (key, value) in data {
            let value = value.trim();
            match key.as_str() {
                "maxDuration" => {
                    out.limits.max_duration =
                        duration::parse(value).map_err(|e| format!("maxDuration: {e}"))?
                }
                "approvalTimeout" => {
                    out.limits.approval_timeout =
                        duration::parse(value).map_err(|e| format!("approvalTimeout: {e}"))?
                }
                "retention" => {
                    out.retention =
                        parse_retention(value).map_err(|e| format!("retention: {e}"))?
                }
                "grantableRoles" => {
                    let roles: Vec<Grantable> = value
                        .split([',', '\n', ' '])
                        .filter(|s| !s.trim().is_empty())
                        .map(|s| Grantable::parse(s.trim()))
                        .collect::<Result<_, _>>()
                        .map_err(|e| format!("grantableRoles: {e}"))?;
                    out.limits.grantable = (!roles.is_empty()).then_some(roles);
                }
                other => {
                    return Err(format!(
                        "unknown key '{}' (known: maxDuration, approvalTimeout, grantableRoles, retention)",
                        crate::domain::sanitize::inert(other, 64)
                    ))
                }
            }
        }
        Ok(out)
    }
}

/// Why the cluster's settings cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("the cluster's limits ({SYSTEM_NAMESPACE}/{SETTINGS_NAME}) are missing: run `portcullis crds | kubectl apply -f -`")]
    Missing,
    #[error("{SYSTEM_NAMESPACE}/{SETTINGS_NAME} is invalid: {0}")]
    Invalid(String),
    #[error("cannot read the cluster's limits ({SYSTEM_NAMESPACE}/{SETTINGS_NAME}): {0}")]
    Unreadable(String),
}

/// The last read of the ConfigMap, reused for [`SETTINGS_TTL`].
#[derive(Debug, Default)]
pub(crate) struct SettingsCache {
    last: Mutex<Option<(Instant, Result<ClusterSettings, SettingsError>)>>,
}

impl SettingsCache {
    /// The cluster's settings; `Err` says why they cannot be used.
    pub(crate) async fn get(
        &self,
        client: &kube::Client,
    ) -> Result<ClusterSettings, SettingsError> {
        if let Ok(guard) = self.last.lock() {
            if let Some((at, value)) = guard.as_ref() {
                if at.elapsed() < SETTINGS_TTL {
                    return value.clone();
                }
            }
        }
        let value = read(client).await;
        // A failed read is not remembered: the next call asks again.
        if !matches!(value, Err(SettingsError::Unreadable(_))) {
            if let Ok(mut guard) = self.last.lock() {
                *guard = Some((Instant::now(), value.clone()));
            }
        }
        value
    }
}

async fn read(client: &kube::Client) -> Result<ClusterSettings, SettingsError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), SYSTEM_NAMESPACE);
    match api.get_opt(SETTINGS_NAME).await {
        Ok(Some(cm)) => {
            ClusterSettings::from_data(&cm.data.unwrap_or_default()).map_err(SettingsError::Invalid)
        }
        Ok(None) => Err(SettingsError::Missing),
        Err(kube::Error::Api(s)) => Err(SettingsError::Unreadable(s.message)),
        Err(e) => Err(SettingsError::Unreadable(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RoleRef;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_limits_and_grantable_roles() {
        let s = ClusterSettings::from_data(&data(&[
            ("maxDuration", "2h"),
            ("approvalTimeout", "30m"),
            (
                "grantableRoles",
                "edit, ClusterRole/view\nRole/payments/deployer",
            ),
        ]))
        .unwrap();
        assert_eq!(s.limits.max_duration, Duration::from_secs(7200));
        assert_eq!(s.limits.approval_timeout, Duration::from_secs(1800));
        let pay = vec!["payments".to_string()];
        assert!(s
            .limits
            .check_grantable(&RoleRef::cluster_role("edit"), &pay)
            .is_ok());
        assert!(s
            .limits
            .check_grantable(&RoleRef::role("deployer"), &pay)
            .is_ok());
        assert!(s
            .limits
            .check_grantable(&RoleRef::role("deployer"), &["orders".to_string()])
            .is_err());
        let e = s
            .limits
            .check_grantable(&RoleRef::cluster_role("cluster-admin"), &pay)
            .unwrap_err();
        assert!(e.contains("not a grantable role"), "{e}");
    }

    #[test]
    fn retention_is_a_duration_or_forever() {
        let s = ClusterSettings::from_data(&BTreeMap::new()).unwrap();
        assert_eq!(s.retention, DEFAULT_RETENTION);
        let s = ClusterSettings::from_data(&data(&[("retention", "90d")])).unwrap();
        assert_eq!(s.retention, Duration::from_secs(90 * 86_400));
        let s = ClusterSettings::from_data(&data(&[("retention", "forever")])).unwrap();
        assert_eq!(s.retention, Duration::ZERO);
        let e = ClusterSettings::from_data(&data(&[("retention", "a while")])).unwrap_err();
        assert!(e.starts_with("retention:") && e.contains("forever"), "{e}");
    }

    #[test]
    fn empty_means_defaults_and_typos_are_errors() {
        let s = ClusterSettings::from_data(&BTreeMap::new()).unwrap();
        assert_eq!(s.limits, ValidationLimits::default());
        assert_eq!(s.limits.grantable, None);
        let e = ClusterSettings::from_data(&data(&[("maxduration", "1h")])).unwrap_err();
        assert!(e.contains("unknown key 'maxduration'"), "{e}");
        let e = ClusterSettings::from_data(&data(&[("maxDuration", "forever")])).unwrap_err();
        assert!(e.starts_with("maxDuration:"), "{e}");
        assert!(Grantable::parse("Role/a/b/c").is_err());
    }
}
