//! What `portcullis crds --server-image IMAGE --server-config FILE` puts
//! in the cluster besides the server's roles and Deployment: the Secret
//! `portcullis-server` (the config as the pod reads it, its TLS files, the
//! audit signing key, a kubeconfig for target clusters) and the ConfigMap
//! `portcullis-server-policies` (the Rego policies). Every file the config
//! names is read here and its path rewritten to where the pod mounts it,
//! so the install is complete: nothing is left for the operator to create
//! by hand, and a config that names a missing file fails here, not in the
//! pod.

use std::path::{Path, PathBuf};

use base64::Engine;
use thiserror::Error;

use super::config::ServerConfig;

/// Where the Deployment mounts the Secret.
pub(crate) const MOUNT: &str = "/etc/portcullis";
/// Where it mounts the policies' ConfigMap.
/// (Not under MOUNT: a Secret volume is read-only, so no mount point can be
/// made inside it.)
pub(crate) const POLICY_MOUNT: &str = "/etc/portcullis-policies";
/// Where the audit log goes (an emptyDir: use a PersistentVolume to keep it).
pub(crate) const STATE: &str = "/var/lib/portcullis";

#[derive(Debug, Error)]
pub(crate) enum InstallError {
    #[error("--server-config {path}: cannot read {what} {file}: {source}")]
    Read {
        path: String,
        what: &'static str,
        file: String,
        source: std::io::Error,
    },
    #[error("--server-config {path}: {message}")]
    Invalid { path: String, message: String },
}

/// The server's config and files, as the pod sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bundle {
    /// Secret keys and contents (`server.toml`, `tls.crt`, …).
    pub secret: Vec<(String, Vec<u8>)>,
    /// ConfigMap keys and contents (the policy files).
    pub policies: Vec<(String, String)>,
}

/// Reads `config` (and `kubeconfig`, for target clusters named by
/// context) into a [`Bundle`].
pub(crate) fn bundle(config: &Path, kubeconfig: Option<&Path>) -> Result<Bundle, InstallError> {
    let src = Source {
        origin: config.display().to_string(),
        base: config.parent().unwrap_or(Path::new(".")),
    };
    let text = String::from_utf8(src.read("the config", config)?)
        .map_err(|_| src.invalid("not UTF-8".into()))?;
    // Valid as written first: the same errors `serve` would give.
    ServerConfig::parse(&text, &src.origin).map_err(|e| src.invalid(e.to_string()))?;
    let mut doc: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| src.invalid(e.to_string()))?;
    let mut secret: Vec<(String, Vec<u8>)> = Vec::new();
    tls_files(&src, &mut doc, &mut secret)?;
    doc.insert("listen".into(), "0.0.0.0:7443".into());
    kubeconfig_file(&src, &doc, kubeconfig, &mut secret)?;
    let policies = policy_files(&src, &mut doc)?;
    audit_files(&src, &mut doc, &mut secret)?;
    let rewritten = toml::to_string(&doc).map_err(|e| src.invalid(e.to_string()))?;
    ServerConfig::parse(&rewritten, "the config as the pod reads it")
        .map_err(|e| src.invalid(e.to_string()))?;
    secret.insert(0, ("server.toml".into(), rewritten.into_bytes()));
    Ok(Bundle { secret, policies })
}

/// The config being bundled: where its files are, and how errors name it.
struct Source<'a> {
    /// The config's path, as errors say it.
    origin: String,
    /// The folder the config's relative paths start from.
    base: &'a Path,
}

impl Source<'_> {
    /// The config is wrong: `message` says how.
    fn invalid(&self, message: String) -> InstallError {
        InstallError::Invalid {
            path: self.origin.clone(),
            message,
        }
    }

    /// The contents of `file` (`what` names it in the error).
    fn read(&self, what: &'static str, file: &Path) -> Result<Vec<u8>, InstallError> {
        std::fs::read(file).map_err(|source| InstallError::Read {
            path: self.origin.clone(),
            what,
            file: file.display().to_string(),
            source,
        })
    }

    /// A path the config names: a relative one is from the config's folder.
    fn local(&self, p: &str) -> PathBuf {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            self.base.join(p)
        }
    }
}

/// The TLS files into the Secret, their paths rewritten to the mount.
fn tls_files(
    src: &Source<'_>,
    doc: &mut toml::Table,
    secret: &mut Vec<(String, Vec<u8>)>,
) -> Result<(), InstallError> {
    // TLS: the pod listens on all addresses, so HTTPS unless behind a
    // TLS proxy (insecure_http).
    let insecure = doc
        .get("insecure_http")
        .and_then(toml::Value::as_bool)
        .unwrap_or(false);
    for (key, file) in [("tls_cert", "tls.crt"), ("tls_key", "tls.key")] {
        match doc.get(key).and_then(toml::Value::as_str).map(str::to_string) {
            Some(p) => {
                secret.push((file.into(), src.read("TLS file", &src.local(&p))?));
                doc.insert(key.into(), format!("{MOUNT}/{file}").into());
            }
            None if !insecure => {
                return Err(src.invalid(format!(
                    "{key} is required in a cluster (the pod listens on 0.0.0.0:7443): give tls_cert and tls_key, or insecure_http = true behind a TLS proxy"
                )))
            }
            None => {}
        }
    }
    Ok(())
}

/// The kubeconfig into the Secret: required when a context is not
/// in-cluster.
fn kubeconfig_file(
    src: &Source<'_>,
    doc: &toml::Table,
    kubeconfig: Option<&Path>,
    secret: &mut Vec<(String, Vec<u8>)>,
) -> Result<(), InstallError> {
    // Contexts other than in-cluster come from the kubeconfig.
    let mut contexts: Vec<String> = Vec::new();
    if let Some(h) = doc.get("hub").and_then(toml::Value::as_str) {
        contexts.push(h.to_string());
    }
    if let Some(clusters) = doc.get("clusters").and_then(toml::Value::as_table) {
        for (name, c) in clusters {
            contexts.push(
                c.get("context")
                    .and_then(toml::Value::as_str)
                    .unwrap_or(name)
                    .to_string(),
            );
        }
    }
    let named: Vec<&String> = contexts.iter().filter(|c| *c != "in-cluster").collect();
    match kubeconfig {
        Some(k) => secret.push(("kubeconfig".into(), src.read("the kubeconfig", k)?)),
        None if !named.is_empty() => {
            return Err(src.invalid(format!(
                "contexts {} are not \"in-cluster\": give --server-kubeconfig FILE with them (it goes into the Secret)",
                named.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
            )))
        }
        None => {}
    }
    Ok(())
}

/// Policies: every file of the directory, for the ConfigMap; the path
/// rewritten to its mount.
fn policy_files(
    src: &Source<'_>,
    doc: &mut toml::Table,
) -> Result<Vec<(String, String)>, InstallError> {
    let mut policies = Vec::new();
    if let Some(p) = doc
        .get("policy")
        .and_then(toml::Value::as_str)
        .map(str::to_string)
    {
        let dir = src.local(&p);
        let entries = std::fs::read_dir(&dir).map_err(|source| InstallError::Read {
            path: src.origin.clone(),
            what: "the policy directory",
            file: dir.display().to_string(),
            source,
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for f in files {
            let name = f
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            let body = String::from_utf8(src.read("a policy file", &f)?)
                .map_err(|_| src.invalid(format!("policy file {name} is not UTF-8")))?;
            policies.push((name, body));
        }
        doc.insert("policy".into(), POLICY_MOUNT.into());
    }
    Ok(policies)
}

/// The audit log in the pod's state volume; its key in the Secret.
fn audit_files(
    src: &Source<'_>,
    doc: &mut toml::Table,
    secret: &mut Vec<(String, Vec<u8>)>,
) -> Result<(), InstallError> {
    if let Some(audit) = doc.get_mut("audit").and_then(toml::Value::as_table_mut) {
        if let Some(k) = audit
            .get("key")
            .and_then(toml::Value::as_str)
            .map(str::to_string)
        {
            secret.push((
                "audit.key".into(),
                src.read("the audit key", &src.local(&k))?,
            ));
            audit.insert("key".into(), format!("{MOUNT}/audit.key").into());
        }
        if audit.contains_key("log") {
            audit.insert("log".into(), format!("{STATE}/audit.jsonl").into());
        }
    }
    Ok(())
}

/// The Secret and the ConfigMap as YAML documents.
pub(crate) fn manifests(b: &Bundle) -> String {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = String::from(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: portcullis-server\n  namespace: portcullis-system\n  labels:\n    app.kubernetes.io/managed-by: portcullis\ntype: Opaque\ndata:\n",
    );
    for (k, v) in &b.secret {
        out.push_str(&format!("  {k}: {}\n", b64(v)));
    }
    out.push_str(
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: portcullis-server-policies\n  namespace: portcullis-system\n  labels:\n    app.kubernetes.io/managed-by: portcullis\ndata:\n",
    );
    if b.policies.is_empty() {
        out.push_str("  {}\n");
        out = out.replace("data:\n  {}\n", "data: {}\n");
    }
    for (k, v) in &b.policies {
        // JSON strings are YAML: any content, one line.
        out.push_str(&format!(
            "  {}: {}\n",
            serde_json::Value::String(k.clone()),
            serde_json::Value::String(v.clone())
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder of the test's own (tests run in parallel in one process).
    fn dir(test: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("portcullis-install-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("pol")).unwrap();
        d
    }

    #[test]
    fn every_file_the_config_names_goes_into_the_install() {
        let d = dir("every-file");
        std::fs::write(d.join("tls.crt"), "CERT").unwrap();
        std::fs::write(d.join("tls.key"), "KEY").unwrap();
        std::fs::write(d.join("a.key"), "SIGNING").unwrap();
        std::fs::write(d.join("pol/p.rego"), "package portcullis\n").unwrap();
        std::fs::write(
            d.join("server.toml"),
            "hub = \"in-cluster\"\ntls_cert = \"tls.crt\"\ntls_key = \"tls.key\"\napprovers = [\"group:oncall\"]\npolicy = \"pol\"\n[audit]\nlog = \"/x/audit.jsonl\"\nkey = \"a.key\"\n[clusters.prod]\ncontext = \"in-cluster\"\n",
        )
        .unwrap();
        let b = bundle(&d.join("server.toml"), None).unwrap();
        let keys: Vec<&str> = b.secret.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["server.toml", "tls.crt", "tls.key", "audit.key"]);
        let toml = String::from_utf8(b.secret[0].1.clone()).unwrap();
        for line in [
            "listen = \"0.0.0.0:7443\"",
            "tls_cert = \"/etc/portcullis/tls.crt\"",
            "policy = \"/etc/portcullis-policies\"",
            "key = \"/etc/portcullis/audit.key\"",
            "log = \"/var/lib/portcullis/audit.jsonl\"",
        ] {
            assert!(toml.contains(line), "{line} in\n{toml}");
        }
        assert_eq!(
            b.policies,
            vec![("p.rego".into(), "package portcullis\n".into())]
        );
        let yaml = manifests(&b);
        assert!(yaml.contains("kind: Secret") && yaml.contains("kind: ConfigMap"));
    }

    #[test]
    fn what_the_pod_could_not_find_is_refused_here() {
        let d = dir("not-found");
        std::fs::write(
            d.join("server.toml"),
            "hub = \"hub\"\napprovers = [\"group:oncall\"]\ninsecure_http = true\n[clusters.prod]\n",
        )
        .unwrap();
        let e = bundle(&d.join("server.toml"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--server-kubeconfig"), "{e}");
        std::fs::write(
            d.join("server.toml"),
            "hub = \"in-cluster\"\napprovers = [\"group:oncall\"]\n[clusters.prod]\ncontext = \"in-cluster\"\n",
        )
        .unwrap();
        let e = bundle(&d.join("server.toml"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("tls_cert is required"), "{e}");
    }
}
