//! The config file: `$XDG_CONFIG_HOME/portcullis/config.toml` (fallback
//! `~/.config/portcullis/config.toml`). Every key is optional:
//!
//! ```toml
//! theme = "default"                # default | light | mono | a user theme name
//! production_pattern = "(?i)prod"  # contexts matching it get a red frame and a PROD badge
//! max_duration = "8h"              # longest grant a request may ask for
//! approval_timeout = "24h"         # a pending request older than this expires
//! expiring_soon = "5m"             # live grants under this are highlighted
//! groups = ["dev", "oncall"]       # your groups, as approvers should see them
//! osc52 = true                     # `c` copies a request's name to the clipboard
//! notify = false                   # no bell or desktop notification for new requests
//!
//! [cluster_names]                  # what the console calls a cluster (by context
//! "gke_acme_europe-west1_prod" = "prod-eu"   # or kubeconfig cluster name)
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::TimeDelta;
use regex::Regex;
use serde::Deserialize;
use thiserror::Error;

use crate::console::state::app::AppConfig;
use crate::domain::{duration, ValidationLimits};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    pub theme: Option<String>,
    pub production_pattern: Option<String>,
    pub max_duration: Option<String>,
    pub approval_timeout: Option<String>,
    pub expiring_soon: Option<String>,
    /// Your groups, shown to approvers on `portcullis request` and used as
    /// the approver's groups in the console header.
    pub groups: Option<Vec<String>>,
    /// `c` copies the selected request's name with OSC 52 (off by default:
    /// a terminal that honours it lets any program set the clipboard).
    pub osc52: Option<bool>,
    /// A new pending request rings the bell and raises a desktop
    /// notification where the terminal can (on unless `notify = false`).
    pub notify: Option<bool>,
    /// Display names by context or kubeconfig cluster name (default: the
    /// kubeconfig cluster's name).
    #[serde(default)]
    pub cluster_names: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Error)]
pub(crate) enum ConfigError {
    #[error("config {path}: {message}")]
    Invalid { path: String, message: String },
    #[error("config {path}: cannot read it: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

pub(crate) fn config_dir() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("portcullis"))
}

pub(crate) fn state_dir() -> Option<PathBuf> {
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .map(|d| d.join("portcullis"))
}

impl ConfigFile {
    /// Reads the file; a missing file is an empty config.
    pub(crate) fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        Self::parse(&text, &path.display().to_string())
    }

    pub(crate) fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: origin.into(),
            message: e.message().to_string(),
        })
    }

    /// The console settings this file asks for, over the defaults.
    pub(crate) fn app_config(
        &self,
        origin: &str,
        readonly: bool,
    ) -> Result<AppConfig, ConfigError> {
        let bad = |message: String| ConfigError::Invalid {
            path: origin.into(),
            message,
        };
        let dur =
            |key: &str, v: &Option<String>, default: Duration| -> Result<Duration, ConfigError> {
                match v {
                    Some(text) => duration::parse(text).map_err(|e| bad(format!("{key}: {e}"))),
                    None => Ok(default),
                }
            };
        let limits = ValidationLimits::default();
        let defaults = AppConfig::default();
        let production = match &self.production_pattern {
            Some(p) => Regex::new(p).map_err(|e| bad(format!("production_pattern: {e}")))?,
            None => defaults.production,
        };
        Ok(AppConfig {
            readonly,
            production,
            limits: ValidationLimits {
                max_duration: dur("max_duration", &self.max_duration, limits.max_duration)?,
                approval_timeout: dur(
                    "approval_timeout",
                    &self.approval_timeout,
                    limits.approval_timeout,
                )?,
                ..limits
            },
            expiring_soon: TimeDelta::from_std(dur(
                "expiring_soon",
                &self.expiring_soon,
                Duration::from_secs(300),
            )?)
            .unwrap_or(defaults.expiring_soon),
            osc52: self.osc52.unwrap_or(false),
            notify: self.notify.unwrap_or(true),
            // The console shows local time (TZ); tests inject an offset.
            zone: crate::console::state::when::Zone::System,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// README's example file, as written: every key parses, and
    /// `[cluster_names]` maps a kubeconfig cluster to a display name.
    #[test]
    fn the_readme_config_parses() {
        let readme = include_str!("../../README.md");
        let at = readme.find("\n## Configuration\n").expect("section");
        let start = readme[at..].find("```toml\n").expect("block") + at + 8;
        let end = readme[start..].find("```").expect("end") + start;
        let c = ConfigFile::parse(&readme[start..end], "README").unwrap();
        assert_eq!(
            c.cluster_names
                .get("gke_acme_europe-west1_prod")
                .map(String::as_str),
            Some("prod-eu")
        );
        c.app_config("README", false).unwrap();
    }

    #[test]
    fn empty_config_gives_defaults() {
        let c = ConfigFile::parse("", "x")
            .unwrap()
            .app_config("x", false)
            .unwrap();
        assert!(c.production.is_match("prod-eu-west"));
        assert!(!c.production.is_match("staging"));
        assert_eq!(c.limits.max_duration, Duration::from_secs(8 * 3600));
        assert!(!c.osc52, "copying to the clipboard is off by default");
        assert_eq!(c.zone, crate::console::state::when::Zone::System);
        let on = ConfigFile::parse("osc52 = true\n", "x")
            .unwrap()
            .app_config("x", false)
            .unwrap();
        assert!(on.osc52);
    }

    #[test]
    fn values_override_and_errors_name_the_key() {
        let c = ConfigFile::parse("production_pattern = '^live-'\nmax_duration = '2h'\n", "x")
            .unwrap()
            .app_config("x", true)
            .unwrap();
        assert!(c.readonly);
        assert!(c.production.is_match("live-1") && !c.production.is_match("prod"));
        assert_eq!(c.limits.max_duration, Duration::from_secs(7200));
        let e = ConfigFile::parse("max_duration = 'forever'\n", "c.toml")
            .unwrap()
            .app_config("c.toml", false)
            .unwrap_err();
        assert!(
            e.to_string().starts_with("config c.toml: max_duration:"),
            "{e}"
        );
        let e = ConfigFile::parse("colour = 'red'\n", "c.toml").unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
    }
}
