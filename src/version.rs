//! What this build is: its version, the git commit it was built from, and
//! the Kubernetes APIs it was built for (`--version`, `portcullis version`).

use serde_json::{json, Value};

/// The crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The commit it was built from (`unknown` outside a git checkout, unless
/// `PORTCULLIS_GIT_COMMIT` was set at build time).
pub const GIT_COMMIT: &str = env!("PORTCULLIS_GIT_COMMIT");

/// The Kubernetes release whose API the client types (k8s-openapi) were
/// generated for: the oldest apiserver every typed call is written against.
pub const KUBERNETES_API: &str = env!("PORTCULLIS_K8S_API");

/// The minimum Rust toolchain (Cargo.toml `rust-version`).
pub const RUST_VERSION: &str = env!("CARGO_PKG_RUST_VERSION");

/// Every API group/version Portcullis reads or writes.
pub const API_VERSIONS: &[&str] = &[
    // AccessRequest (the CRD `portcullis crds` installs).
    crate::crd::wire::API_VERSION,
    "rbac.authorization.k8s.io/v1",
    // TokenReview, SelfSubjectReview (identity).
    "authentication.k8s.io/v1",
    // SubjectAccessReview (verification).
    "authorization.k8s.io/v1",
    // Namespaces, the settings ConfigMap, Token-mode ServiceAccounts.
    "v1",
    "apiextensions.k8s.io/v1",
    // The optional admission webhook.
    "admission.k8s.io/v1",
    "admissionregistration.k8s.io/v1",
];

/// `--version`: one line.
pub const LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("PORTCULLIS_GIT_COMMIT"),
    "; Kubernetes API v",
    env!("PORTCULLIS_K8S_API"),
    ", portcullis.dev/v1alpha1)"
);

/// `portcullis version --client -o json`.
pub fn client_json() -> Value {
    json!({
        "version": VERSION,
        "gitCommit": GIT_COMMIT,
        "kubernetesApi": format!("v{KUBERNETES_API}"),
        "apiVersions": API_VERSIONS,
        "rustVersion": RUST_VERSION,
        "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    })
}

/// `portcullis version --client`, as text.
pub fn client_text() -> String {
    format!(
        "Client Version: {VERSION}\nGit Commit: {GIT_COMMIT}\nKubernetes API: v{KUBERNETES_API}\nAPI Versions: {}\n",
        API_VERSIONS.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The build script's reading of k8s-openapi's version agrees with
    /// k8s-openapi's own version macros.
    #[test]
    // The pushes are behind k8s-openapi's version macros: only the
    // enabled one runs, which is what the test checks.
    #[allow(clippy::vec_init_then_push)]
    fn kubernetes_api_matches_k8s_openapi() {
        let mut enabled = Vec::new();
        k8s_openapi::k8s_if_1_33! { enabled.push("1.33"); }
        k8s_openapi::k8s_if_1_34! { enabled.push("1.34"); }
        k8s_openapi::k8s_if_1_35! { enabled.push("1.35"); }
        k8s_openapi::k8s_if_1_36! { enabled.push("1.36"); }
        k8s_openapi::k8s_if_1_37! { enabled.push("1.37"); }
        assert_eq!(enabled, [KUBERNETES_API]);
    }

    #[test]
    fn the_line_names_version_commit_and_api() {
        assert!(LINE.starts_with(VERSION));
        assert!(LINE.contains(GIT_COMMIT) && LINE.contains(KUBERNETES_API));
        assert_ne!(KUBERNETES_API, "unknown");
    }
}
