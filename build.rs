//! Build facts the binary reports in `--version` and `portcullis version`:
//! the git commit it was built from and the Kubernetes API version its
//! client types (k8s-openapi) were generated for.

use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let dir = Path::new(&dir);

    // A packager building from a tarball can say which commit it was.
    println!("cargo::rerun-if-env-changed=PORTCULLIS_GIT_COMMIT");
    let commit = match std::env::var("PORTCULLIS_GIT_COMMIT") {
        Ok(c) if !c.trim().is_empty() => c.trim().to_string(),
        _ => {
            // Rebuild when HEAD moves: HEAD itself, the branch it names,
            // and packed refs (works in a worktree too).
            let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
            if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
                watched.push(branch);
            }
            for p in watched {
                if let Some(path) = git(dir, &["rev-parse", "--git-path", &p]) {
                    let path = dir.join(path);
                    if path.exists() {
                        println!("cargo::rerun-if-changed={}", path.display());
                    }
                }
            }
            git(dir, &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into())
        }
    };
    println!("cargo::rustc-env=PORTCULLIS_GIT_COMMIT={commit}");

    // k8s-openapi (links = "k8s-openapi-X.Y.Z") hands its enabled version
    // to direct dependants as 0x00_01_MM_00 in DEP_K8S_OPENAPI_…_VERSION.
    let k8s = std::env::vars()
        .find(|(k, _)| k.starts_with("DEP_K8S_OPENAPI") && k.ends_with("_VERSION"))
        .and_then(|(_, v)| v.trim().parse::<u32>().ok())
        .map(|n| format!("{}.{}", (n >> 16) & 0xff, (n >> 8) & 0xff))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo::rustc-env=PORTCULLIS_K8S_API={k8s}");
    println!("cargo::rerun-if-changed=build.rs");
}
