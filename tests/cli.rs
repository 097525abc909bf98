//! The binary's non-interactive edges: exit codes and one-line errors.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn run(args: &[&str], config: Option<&str>) -> Output {
    let home = std::env::temp_dir().join(format!(
        "portcullis-cli-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(home.join("config/portcullis")).unwrap();
    if let Some(text) = config {
        std::fs::write(home.join("config/portcullis/config.toml"), text).unwrap();
    }
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_STATE_HOME", home.join("state"))
        .env("KUBECONFIG", home.join("no-kubeconfig"))
        .output()
        .expect("run portcullis")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn version_and_completions() {
    let o = run(&["--version"], None);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("portcullis "));
    for shell in ["bash", "zsh", "fish"] {
        let o = run(&["completions", shell], None);
        assert!(o.status.success(), "{shell}");
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains("portcullis") && out.contains("demo"),
            "{shell}"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    let o = run(&["demo", "--rate", "soon"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("'soon' is not a duration"));
    assert_eq!(run(&["--frobnicate"], None).status.code(), Some(2));
}

#[test]
fn runtime_errors_are_one_line_and_exit_1() {
    let cases: [(&[&str], Option<&str>, &str); 6] = [
        (&[], None, "run `portcullis demo` for the embedded demo"),
        (&["get", "requests"], None, "no usable kubeconfig"),
        (&["login", "x"], None, "no usable kubeconfig"),
        (&["demo"], None, "needs a terminal"),
        (&["--theme", "neon", "demo"], None, "theme 'neon' not found"),
        (
            &["demo"],
            Some("max_duration = 'forever'\n"),
            "max_duration: 'forever' is not a duration",
        ),
    ];
    for (args, config, expect) in cases {
        let o = run(args, config);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = stderr(&o);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("portcullis: ") && err.contains(expect),
            "{args:?}: {err}"
        );
    }
}
