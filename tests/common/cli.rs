//! The real binary on the command line, as a user runs it, and what a run
//! must have said.

#![allow(dead_code)]

use std::process::{Command, Output};

use super::cluster::ControlPlane;

/// `portcullis --context CONTEXT ARGS…` on `cp`'s kubeconfig, with its own
/// state and config folders.
pub(crate) fn portcullis(cp: &ControlPlane, context: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["--context", context])
        .args(args)
        .env("KUBECONFIG", cp.kubeconfig())
        .env("XDG_STATE_HOME", cp.dir.join("state"))
        .env("XDG_CONFIG_HOME", cp.dir.join("config"))
        .output()
        .expect("run portcullis")
}

/// A run that succeeded: its stdout (else the test fails saying what the
/// run printed).
pub(crate) fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}: {}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A run that failed with exit code 1 and one line on stderr, as every
/// error is said: that line.
pub(crate) fn one_line_error(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("portcullis: "), "{err}");
    err
}
