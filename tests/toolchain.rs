//! The toolchain requirement is honest: Cargo.toml's `rust-version` is the
//! highest `rust-version` among the dependencies a build of Portcullis
//! actually compiles (normal and build dependencies on this platform, as
//! locked), so a newcomer on an older toolchain gets cargo's clear "requires
//! rustc X" instead of a compile error deep inside a dependency; and README
//! names it.

use std::collections::{HashMap, HashSet};
use std::process::Command;

use serde_json::Value;

fn version(text: &str) -> Vec<u64> {
    text.split('.').filter_map(|p| p.parse().ok()).collect()
}

/// `cargo metadata` as locked, offline, for the platform the tests run on.
fn metadata() -> Value {
    let root = env!("CARGO_MANIFEST_DIR");
    let host = Command::new(env!("CARGO"))
        .args(["-vV"])
        .output()
        .expect("cargo -vV");
    let host = String::from_utf8_lossy(&host.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .expect("cargo names its host");
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--offline",
            "--filter-platform",
            &host,
        ])
        .current_dir(root)
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("metadata is JSON")
}

/// (rust-version, package) of every package a build compiles, highest last.
fn built_rust_versions(m: &Value) -> Vec<(Vec<u64>, String)> {
    let packages: HashMap<&str, &Value> = m["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p))
        .collect();
    let nodes: HashMap<&str, &Value> = m["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let root = m["resolve"]["root"].as_str().expect("a root package");
    let mut seen = HashSet::new();
    let mut todo = vec![root];
    while let Some(id) = todo.pop() {
        if !seen.insert(id) {
            continue;
        }
        for dep in nodes[id]["deps"].as_array().unwrap() {
            // Dev-dependencies are built for our tests, not for a user's
            // `cargo install`; normal (kind null) and build ones are.
            let built = dep["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].is_null() || k["kind"] == "build");
            if built {
                todo.push(dep["pkg"].as_str().unwrap());
            }
        }
    }
    let mut out: Vec<(Vec<u64>, String)> = seen
        .into_iter()
        .filter(|id| *id != root)
        .filter_map(|id| {
            let p = packages[id];
            let rv = p["rust_version"].as_str()?;
            Some((
                version(rv),
                format!(
                    "{} {} (rust-version {rv})",
                    p["name"].as_str().unwrap_or("?"),
                    p["version"].as_str().unwrap_or("?")
                ),
            ))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn rust_version_is_the_highest_a_dependency_needs() {
    let m = metadata();
    let ours = m["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == m["resolve"]["root"])
        .and_then(|p| p["rust_version"].as_str())
        .expect("Cargo.toml sets rust-version")
        .to_string();
    let deps = built_rust_versions(&m);
    assert!(deps.len() > 50, "the graph was walked: {}", deps.len());
    let (highest, who) = deps.last().expect("dependencies declare rust-version");
    let needing: Vec<&String> = deps
        .iter()
        .filter(|(v, _)| v == highest)
        .map(|(_, w)| w)
        .collect();
    assert_eq!(
        version(&ours),
        *highest,
        "Cargo.toml says rust-version = \"{ours}\" but the build needs {who} (also: {needing:?}); set rust-version to the highest"
    );
    // README names it where the two commands are.
    let readme = include_str!("../README.md");
    assert!(
        readme.contains(&format!("Rust {ours} or newer")),
        "README must say \"Rust {ours} or newer\""
    );
}
