//! The folders are the layers (README, "Layout"): a module uses only the
//! layers below its own, never one above. This reads every `crate::…` path
//! in `src/` (code, not comments) and fails naming each path that points up.

use std::path::{Path, PathBuf};

/// Lowest first. A module may use its own layer's folder and any below.
const LAYERS: &[&[&str]] = &[
    &["domain"],
    &["policy", "audit"],
    &["crd", "version"],
    &["api"],
    &["backend"],
    &["server"],
    &["console"],
    &["cli"],
];

/// Inside the console: the state, what draws it, what changes it, the loop.
const CONSOLE: &[&str] = &["state", "view", "update", "run"];

fn layer(top: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&top))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/console/view/table.rs` → `["console", "view", "table"]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    file.strip_prefix(src)
        .expect("under src")
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .filter(|c| c != "mod")
        .collect()
}

/// Every `crate::a::b…` in a line of code, as its segments.
fn crate_paths(line: &str) -> Vec<Vec<&str>> {
    let code = line.split("//").next().unwrap_or("");
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        let tail = &rest[at + "crate::".len()..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            out.push(tail[..end].split("::").filter(|s| !s.is_empty()).collect());
        }
        rest = &tail[end..];
    }
    out
}

fn violations() -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut bad = Vec::new();
    for file in &files {
        let module = module_of(&src, file);
        let Some(from) = module.first().and_then(|t| layer(t)) else {
            continue; // lib.rs and main.rs sit above every layer
        };
        let text = std::fs::read_to_string(file).expect("read");
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for path in crate_paths(line) {
                let Some(to) = path.first().and_then(|t| layer(t)) else {
                    continue;
                };
                let where_ = format!("{}:{}", file.display(), n + 1);
                if to > from {
                    bad.push(format!(
                        "{where_}: {} uses crate::{}",
                        module[0],
                        path.join("::")
                    ));
                } else if module[0] == "console" && path[0] == "console" {
                    let inner =
                        |p: Option<&str>| p.and_then(|s| CONSOLE.iter().position(|c| *c == s));
                    if let (Some(a), Some(b)) = (
                        inner(module.get(1).map(String::as_str)),
                        inner(path.get(1).copied()),
                    ) {
                        if b > a {
                            bad.push(format!(
                                "{where_}: console::{} uses crate::{}",
                                module[1],
                                path.join("::")
                            ));
                        }
                    }
                }
            }
        }
    }
    bad
}

#[test]
fn imports_point_only_down_the_layers() {
    let bad = violations();
    assert!(bad.is_empty(), "imports pointing up:\n{}", bad.join("\n"));
}

#[test]
fn every_top_level_folder_is_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut unknown = Vec::new();
    for entry in std::fs::read_dir(&src).expect("read src") {
        let path = entry.expect("entry").path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name != "lib" && name != "main" && layer(&name).is_none() {
            unknown.push(name);
        }
    }
    assert!(unknown.is_empty(), "not in any layer: {unknown:?}");
}

#[test]
fn the_checker_sees_an_upward_path() {
    assert_eq!(
        crate_paths("use crate::console::view::measure; // crate::cli"),
        vec![vec!["console", "view", "measure"]]
    );
    assert!(crate_paths("let x = portcullis_crate::a;").is_empty());
}
