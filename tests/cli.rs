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

/// Installed or linked as `kubectl-portcullis` (how kubectl finds a
/// plugin), help, usage and errors name `kubectl portcullis`; as
/// `portcullis` they name `portcullis`. (`kubectl portcullis get requests`
/// through a real kubectl runs in cluster_install.rs.)
#[test]
fn as_a_kubectl_plugin_help_and_usage_name_kubectl_portcullis() {
    let dir = std::env::temp_dir().join(format!("portcullis-plugin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("kubectl-portcullis");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_portcullis"), &link).unwrap();
    let plugin = |args: &[&str]| {
        Command::new(&link)
            .args(args)
            .env("KUBECONFIG", dir.join("no-kubeconfig"))
            .output()
            .unwrap()
    };
    let help = plugin(&["--help"]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("Usage: kubectl portcullis [OPTIONS] [COMMAND]"),
        "{text}"
    );
    let sub = String::from_utf8_lossy(&plugin(&["get", "--help"]).stdout).into_owned();
    assert!(sub.contains("Usage: kubectl portcullis get"), "{sub}");
    let bad = plugin(&["approve"]);
    assert_eq!(bad.status.code(), Some(2));
    let err = stderr(&bad);
    assert!(err.contains("Usage: kubectl portcullis approve"), "{err}");
    // Under its own name nothing changes.
    let own = String::from_utf8_lossy(&run(&["get", "--help"], None).stdout).into_owned();
    assert!(own.contains("Usage: portcullis get"), "{own}");
    // (get's help may speak of kubectl get; it must not say `kubectl portcullis`.)
    assert!(!own.contains("kubectl portcullis"), "{own}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The man page comes from the clap definitions: every subcommand and
/// flag is in it, and `--out-dir` writes one page per subcommand.
#[test]
fn the_man_page_is_generated_from_the_clap_definitions() {
    let o = run(&["man"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let page = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        page.starts_with(".ie \\n(.g .ds Aq") || page.contains(".TH portcullis 1"),
        "{page}"
    );
    assert!(page.contains(".TH portcullis 1"), "{page}");
    use clap::CommandFactory;
    let cli = portcullis::cli::args::Cli::command();
    for sub in cli.get_subcommands().filter(|s| !s.is_hide_set()) {
        assert!(
            page.contains(&format!("portcullis\\-{}", sub.get_name())),
            "{} in the man page",
            sub.get_name()
        );
    }
    for flag in ["\\-\\-readonly", "\\-\\-context", "\\-\\-backend"] {
        assert!(page.contains(flag), "{flag} in the man page");
    }
    let dir = std::env::temp_dir().join(format!("portcullis-man-{}", std::process::id()));
    let o = run(&["man", "--out-dir", dir.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let request =
        std::fs::read_to_string(dir.join("portcullis-request.1")).expect("a page per verb");
    assert!(request.contains("\\-\\-reason"), "{request}");
    assert!(dir.join("portcullis-reaper.1").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The fenced block that follows `marker` in README.
fn readme_block(marker: &str, fence: &str) -> String {
    let readme = include_str!("../README.md");
    let at = readme.find(marker).expect("marker in README");
    let open = format!("```{fence}\n");
    let start = readme[at..].find(&open).expect("a fenced block") + at + open.len();
    let end = readme[start..].find("```").expect("closed") + start;
    readme[start..end].to_string()
}

#[test]
fn readme_policy_commands_run_as_written() {
    let root = env!("CARGO_MANIFEST_DIR");
    // The input document README shows is the example file, byte for byte.
    let input = readme_block("**The input document**", "json");
    assert_eq!(
        input,
        std::fs::read_to_string(format!("{root}/policies/examples/input.json")).unwrap()
    );
    let decision = readme_block("`portcullis policy eval policies --input", "json");
    let commands = readme_block("## Policy", "sh");
    assert_eq!(commands.lines().count(), 3, "{commands}");
    for line in commands.lines() {
        let args: Vec<&str> = line.split_whitespace().skip(1).collect();
        let o = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(&args)
            .current_dir(root)
            .output()
            .expect("run portcullis");
        assert!(o.status.success(), "{line}: {}", stderr(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        match args[1] {
            "check" => assert!(out.contains("load and compile"), "{out}"),
            "test" => assert!(out.contains("0 failed") && out.contains("PASS"), "{out}"),
            "eval" => assert_eq!(out, decision, "README shows what eval prints"),
            other => panic!("unexpected policy verb {other}"),
        }
    }
}

#[test]
fn a_broken_policy_is_one_line_naming_file_and_line() {
    let dir = std::env::temp_dir().join(format!("portcullis-broken-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("broken.rego"),
        "package portcullis\nimport rego.v1\n\ndeny contains \"x\" if {\n  input.request.\n}\n",
    )
    .unwrap();
    for verb in ["check", "test"] {
        let o = run(&["policy", verb, dir.to_str().unwrap()], None);
        assert_eq!(o.status.code(), Some(1), "{verb}");
        let e = stderr(&o);
        assert_eq!(e.trim_end().lines().count(), 1, "one line: {e}");
        assert!(e.contains("broken.rego:"), "names the file and line: {e}");
    }
    // A failing test rule fails `policy test` and names the rule.
    std::fs::write(
        dir.join("broken.rego"),
        "package portcullis\nimport rego.v1\ndefault approvals_required := 1\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("broken_test.rego"),
        "package portcullis_test\nimport rego.v1\ntest_two if data.portcullis.approvals_required == 2\n",
    )
    .unwrap();
    let o = run(&["policy", "test", dir.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("FAIL") && out.contains("test_two"), "{out}");
    // eval on a missing input file: one line, exit 1.
    let o = run(
        &[
            "policy",
            "eval",
            dir.to_str().unwrap(),
            "--input",
            "/nonexistent.json",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o).trim_end().lines().count(), 1, "{}", stderr(&o));
}
