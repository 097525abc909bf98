//! The command line (clap), shaped after kubectl's habits: every global
//! flag (`--context`, `--all-contexts`, `--backend`, `--token-file`,
//! `--color`, `--theme`, `--config`, `--readonly`, `-v` …) goes before or
//! after the verb; a request is named `NAME` or `CONTEXT/NAME`; `get`
//! takes `-o`, `-w`, `--sort-by` and `--no-headers` as kubectl get does.

use std::time::Duration;

use clap::{ArgAction, Parser, Subcommand, ValueEnum};

use crate::cli::commands::get::Output;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ColorMode {
    /// Colour unless NO_COLOR is set (then mono).
    #[default]
    Auto,
    /// The chosen theme even when NO_COLOR is set.
    Always,
    /// The mono theme: bold and reverse video only.
    Never,
}

/// Where `--help` lists the flags every verb takes (before or after it), so
/// a verb's own flags stand apart.
const GLOBAL: &str = "Global options (before or after the verb)";

#[derive(Debug, Parser)]
#[command(name = "portcullis", version = crate::version::LINE, about = "Terminal console for just-in-time Kubernetes access", long_about = None)]
pub struct Cli {
    /// Colour: auto (honours NO_COLOR), always, never.
    #[arg(long, value_enum, default_value_t = ColorMode::Auto, global = true, help_heading = GLOBAL)]
    pub color: ColorMode,

    /// Disable every action that changes access (approve, deny, shorten, revoke).
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub readonly: bool,

    /// Theme name: default, light, mono, or a file in $XDG_CONFIG_HOME/portcullis/themes/.
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub theme: Option<String>,

    /// Config file (default $XDG_CONFIG_HOME/portcullis/config.toml).
    #[arg(long, global = true, help_heading = GLOBAL, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,

    /// Kubeconfig context (repeatable); with --backend, the server's
    /// cluster. A verb's NAME may carry it instead: CONTEXT/NAME.
    #[arg(long = "context", value_name = "NAME", global = true, help_heading = GLOBAL)]
    pub contexts: Vec<String>,

    /// Every context in the kubeconfig.
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub all_contexts: bool,

    /// Errors also print the full text behind their one-line summary (e.g.
    /// every rule an escalation refusal lists); so does PORTCULLIS_LOG=debug.
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count, global = true, help_heading = GLOBAL)]
    pub verbose: u8,

    /// The Portcullis server (`portcullis serve`) instead of direct cluster access.
    #[arg(long, value_name = "URL", global = true, help_heading = GLOBAL, env = "PORTCULLIS_BACKEND")]
    pub backend: Option<String>,

    /// With --backend: a file holding your bearer token (else
    /// $PORTCULLIS_TOKEN, else the kubeconfig context's token, token file
    /// or exec sign-in plugin).
    #[arg(long, value_name = "FILE", global = true, help_heading = GLOBAL)]
    pub token_file: Option<std::path::PathBuf>,

    /// Rego policies (a directory): advisory in a direct-mode console,
    /// enforced by `serve --demo`; the server takes its own from its config.
    #[arg(long, value_name = "DIR", global = true, help_heading = GLOBAL)]
    pub policy: Option<std::path::PathBuf>,

    /// A CA certificate (PEM) that signed the server's certificate: trusted
    /// with --backend, and the webhook's caBundle with `crds --webhook`.
    #[arg(long, value_name = "FILE", global = true, help_heading = GLOBAL)]
    pub ca_file: Option<std::path::PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// Parses as clap does, keeping every `--context` when some stand
    /// before the verb and some after it.
    pub fn try_parse_merged<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        let mut cli = Self::try_parse_from(&args)?;
        cli.keep_contexts_before_the_verb(&args);
        Ok(cli)
    }

    /// clap keeps only the `--context` values after the verb when some
    /// stand on both sides (a global flag's later occurrences replace the
    /// earlier ones); kubectl users expect all of them.
    pub fn keep_contexts_before_the_verb(&mut self, args: &[std::ffi::OsString]) {
        let Some(verb) = verb_position(args) else {
            return;
        };
        if let Ok(before) = Self::try_parse_from(&args[..verb]) {
            if !before.contexts.is_empty() && before.contexts != self.contexts {
                let mut all = before.contexts;
                all.append(&mut self.contexts);
                self.contexts = all;
            }
        }
    }
}

/// Where the verb stands: the first argument that is neither a top-level
/// flag nor the value of one.
fn verb_position(args: &[std::ffi::OsString]) -> Option<usize> {
    use clap::CommandFactory;
    let command = Cli::command();
    let takes_value = |long: &str| {
        command
            .get_arguments()
            .any(|a| a.get_long() == Some(long) && a.get_action().takes_values())
    };
    let mut i = 1;
    while i < args.len() {
        let token = args[i].to_str()?;
        if token == "--" {
            return None;
        }
        if let Some(long) = token.strip_prefix("--") {
            i += if !long.contains('=') && takes_value(long) {
                2
            } else {
                1
            };
            continue;
        }
        if token.starts_with('-') && token.len() > 1 {
            i += 1;
            continue;
        }
        return Some(i);
    }
    None
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The console on the embedded demo: no cluster needed.
    Demo {
        /// Seed for a deterministic story (default: different every run).
        #[arg(long)]
        seed: Option<u64>,
        /// Mean time between new requests, e.g. 8s, 2s, 1m; 0s stops arrivals.
        #[arg(long, default_value = "8s", value_parser = parse_rate)]
        rate: Duration,
    },
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (`portcullis man | man -l -`), or write one page
    /// per subcommand with --out-dir (for `man portcullis-request`).
    Man {
        #[arg(long, value_name = "DIR")]
        out_dir: Option<std::path::PathBuf>,
    },
    /// Ask for access: `request --role edit --cluster-role -n payments --for 30m --reason "INC-1 …"`,
    /// or more time on a live grant: `request --extend NAME --for 30m --reason …`.
    Request {
        /// The role to be granted.
        #[arg(long, required_unless_present = "extend")]
        role: Option<String>,
        /// The role is a ClusterRole (otherwise a namespaced Role).
        #[arg(long, conflicts_with = "extend")]
        cluster_role: bool,
        /// Namespace (repeatable); none = cluster-wide (ClusterRole only).
        /// With --extend: fewer namespaces than the live grant has.
        #[arg(short = 'n', long = "namespace", value_name = "NS")]
        namespaces: Vec<String>,
        /// Ask to extend your live grant NAME: the same role and namespaces
        /// (or fewer), approved like any request; once approved it runs
        /// for --for from its approval.
        #[arg(long, value_name = "NAME", conflicts_with_all = ["role", "credentials"])]
        extend: Option<String>,
        /// How long once granted, e.g. 30m.
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
        duration: Duration,
        /// Why (required; approvers read it).
        #[arg(long)]
        reason: String,
        #[arg(long)]
        ticket: Option<String>,
        /// Your groups, as approvers should see them (repeatable; default from config).
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
        /// identity (bind your user) or token (a per-grant ServiceAccount).
        #[arg(long, value_enum, default_value_t = CredentialsArg::Identity)]
        credentials: CredentialsArg,
        /// Block until the request is decided and print the outcome (with
        /// --credentials token, the grant's kubeconfig). Exit code: 0
        /// approved, 3 denied, 4 expired/withdrawn/failed, 5 --timeout passed.
        #[arg(long)]
        wait: bool,
        /// With --wait: stop waiting after this long (the request stays
        /// pending), e.g. 10m. Default: until decided or expired.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "wait")]
        timeout: Option<Duration>,
    },
    /// List requests (pending; --all for every phase) or live grants, as
    /// kubectl get: `get requests -o name`, `get requests NAME -o
    /// jsonpath='{.status.phase}'`, `get grants -w`.
    Get {
        #[arg(value_enum)]
        what: GetWhat,
        /// Only these requests, in any phase (NAME or CONTEXT/NAME).
        #[arg(value_name = "NAME")]
        names: Vec<String>,
        /// table, wide, name, json, yaml, jsonpath=TEMPLATE,
        /// jsonpath-file=FILE, custom-columns=SPEC, custom-columns-file=FILE.
        #[arg(short = 'o', long = "output", default_value = "table", value_parser = Output::parse)]
        output: Output,
        /// Every phase, not only the live ones.
        #[arg(long)]
        all: bool,
        /// After listing, print a row for each change until interrupted.
        #[arg(short = 'w', long)]
        watch: bool,
        /// Only the changes, without listing first.
        #[arg(long)]
        watch_only: bool,
        /// With -w: each row starts with ADDED, MODIFIED or DELETED.
        #[arg(long)]
        output_watch_events: bool,
        /// Sort by a JSONPath expression, e.g. '{.spec.duration}' or
        /// .metadata.creationTimestamp (durations and times by value).
        #[arg(long, value_name = "JSONPATH")]
        sort_by: Option<String>,
        /// Tables without their header row.
        #[arg(long)]
        no_headers: bool,
    },
    /// Approve a request, optionally shorter (--for) or narrower (-n).
    Approve {
        /// NAME, CONTEXT/NAME, or a line of `get -o name`.
        #[arg(value_name = "NAME")]
        name: String,
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
        duration: Option<Duration>,
        #[arg(short = 'n', long = "namespace", value_name = "NS")]
        namespaces: Vec<String>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Deny a request (reason required).
    Deny {
        /// NAME, CONTEXT/NAME, or a line of `get -o name`.
        #[arg(value_name = "NAME")]
        name: String,
        #[arg(long)]
        reason: String,
    },
    /// Make a live grant end sooner: `shorten NAME --to 10m` (remaining from now).
    Shorten {
        /// NAME, CONTEXT/NAME, or a line of `get -o name`.
        #[arg(value_name = "NAME")]
        name: String,
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        to: Duration,
    },
    /// End a live grant now (reason required).
    Revoke {
        /// NAME, CONTEXT/NAME, or a line of `get -o name`.
        #[arg(value_name = "NAME")]
        name: String,
        #[arg(long)]
        reason: String,
    },
    /// Withdraw your own pending request.
    Withdraw {
        /// NAME, CONTEXT/NAME, or a line of `get -o name`.
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// End your own live grant now ("I'm done"): recorded as released by
    /// you, its bindings deleted and the end verified like a revoke.
    Release {
        /// NAME, CONTEXT/NAME, or a line of `get -o name`.
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// A request's requester context and new permissions with risk, worst
    /// first (every one), to paste into a ticket or check in a script.
    Diff {
        /// NAME, CONTEXT/NAME, or a line of `get -o name`.
        #[arg(value_name = "NAME")]
        name: String,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
        output: OutputFormat,
    },
    /// Credentials mode: a kubeconfig context with a short-lived token.
    Login {
        /// NAME, CONTEXT/NAME, or a line of `get -o name`.
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Long-running: revoke expired grants, expire stale pending requests.
    Reaper {
        /// Serve /healthz and /metrics here (loopback unless you say
        /// otherwise: the numbers say which grants end when).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9464")]
        listen: std::net::SocketAddr,
        /// Append direct mode's audit trail to FILE (also posted as
        /// Kubernetes Events on each request).
        #[arg(long, value_name = "FILE")]
        audit_log: Option<std::path::PathBuf>,
        /// Sign the audit head with this key (`portcullis audit keygen`).
        #[arg(long, value_name = "FILE", requires = "audit_log")]
        audit_key: Option<std::path::PathBuf>,
    },
    /// Print the CRD and the recommended ClusterRoles (`portcullis crds | kubectl apply -f -`).
    Crds {
        /// Also the admission webhook configuration, calling the server at
        /// this URL (its CA from --ca-file).
        #[arg(long, value_name = "URL")]
        webhook: Option<String>,
        /// Also a ValidatingAdmissionPolicy and its binding (Kubernetes
        /// 1.30+): the apiserver itself enforces direct mode's rules that
        /// CEL can state, with no server running.
        #[arg(long)]
        admission_policy: bool,
        /// With --admission-policy: the identities it lets through (they
        /// carry out the lifecycle); comma-separated user names. Default:
        /// the shipped reaper's and server's ServiceAccounts.
        #[arg(
            long,
            value_name = "USERS",
            value_delimiter = ',',
            requires = "admission_policy"
        )]
        privileged: Vec<String>,
        /// Also the server's ServiceAccount, ClusterRole and Deployment
        /// running this image.
        #[arg(long, value_name = "IMAGE", requires = "server_config")]
        server_image: Option<String>,
        /// With --server-image: the server's config; it, the TLS files, the
        /// audit key and the policies it names become the Secret
        /// portcullis-server and the ConfigMap portcullis-server-policies.
        #[arg(long, value_name = "FILE", requires = "server_image")]
        server_config: Option<std::path::PathBuf>,
        /// With --server-config: the kubeconfig holding the contexts the
        /// config names (the hub and targets other than "in-cluster").
        #[arg(long, value_name = "FILE", requires = "server_config")]
        server_kubeconfig: Option<std::path::PathBuf>,
        /// Also `bind` on exactly these roles for the approvers (and the
        /// server): comma-separated NAME (a ClusterRole), ClusterRole/NAME,
        /// Role/NAME (any namespace) or Role/NAMESPACE/NAME. The settings'
        /// grantableRoles becomes the same list.
        #[arg(long, value_name = "ROLES", value_delimiter = ',')]
        grantable: Vec<String>,
        /// Who approves: comma-separated group:NAME or user:NAME; they get
        /// portcullis-approver (and the --grantable bind rights).
        #[arg(long, value_name = "WHO", value_delimiter = ',')]
        approvers: Vec<String>,
        /// Who may ask: comma-separated group:NAME or user:NAME; they get
        /// portcullis-requester.
        #[arg(long, value_name = "WHO", value_delimiter = ',')]
        requesters: Vec<String>,
        /// Also the reaper's ServiceAccount, bindings and Deployment
        /// running this image (`portcullis reaper` in the cluster).
        #[arg(long, value_name = "IMAGE")]
        reaper_deployment: Option<String>,
    },
    /// The audit trail: make a signing key, verify a log, read it.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Version, git commit and the Kubernetes API versions this was built
    /// for; without --client also each cluster's (kubectl version).
    Version {
        /// Only this program, no cluster asked.
        #[arg(long)]
        client: bool,
        #[arg(short = 'o', long = "output", value_enum)]
        output: Option<VersionOutput>,
    },
    /// Rego policies: check, evaluate one input, run their tests.
    Policy {
        #[command(subcommand)]
        action: PolicyAction,
    },
    /// The Portcullis server: one authority for identity, decisions and expiry.
    Serve {
        /// Serve the embedded demo world (loopback only; a demo person's
        /// name is their token, e.g. `dana`).
        #[arg(long)]
        demo: bool,
        /// Listen here (overrides the config's `listen`).
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// Append the audit trail to FILE (overrides the config's
        /// `[audit] log`; without either, the trail lives in memory only).
        #[arg(long, value_name = "FILE")]
        audit_log: Option<std::path::PathBuf>,
        /// Sign the audit head with this key (`portcullis audit keygen`).
        #[arg(long, value_name = "FILE")]
        audit_key: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyAction {
    /// Parse and compile every policy file (errors name file and line).
    Check { dir: std::path::PathBuf },
    /// Print the decision for one input document (JSON or YAML).
    Eval {
        dir: std::path::PathBuf,
        #[arg(long, value_name = "FILE")]
        input: std::path::PathBuf,
    },
    /// Run every `test_` rule (like `opa test`); fails if any is not true.
    Test { dir: std::path::PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Write a signing key pair: DIR/audit.key (secret, give it to the
    /// server or reaper) and DIR/audit.pub (give it to auditors).
    Keygen {
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: std::path::PathBuf,
    },
    /// Check a log: exit 0 when intact, else name the first bad record.
    /// One FILE: its rotated predecessors are checked too.
    Verify {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<std::path::PathBuf>,
        /// The public key the head must be signed with (audit.pub).
        #[arg(long, value_name = "PUB")]
        key: Option<std::path::PathBuf>,
    },
    /// Print events from a log file (--file) or the server (--backend).
    Show {
        /// The log (its rotated predecessors are read too).
        #[arg(long, value_name = "FILE")]
        file: Option<std::path::PathBuf>,
        /// A request name or CONTEXT/NAME.
        #[arg(long)]
        request: Option<String>,
        /// Events by or about this user.
        #[arg(long)]
        user: Option<String>,
        /// Only the last DURATION, e.g. 24h.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        since: Option<Duration>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = AuditOutput::Table)]
        output: AuditOutput,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditOutput {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CredentialsArg {
    Identity,
    Token,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GetWhat {
    #[value(alias = "request", alias = "accessrequests", alias = "accessrequest")]
    Requests,
    #[value(alias = "grant")]
    Grants,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VersionOutput {
    Json,
    Yaml,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Yaml,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::domain::duration::parse(s).map_err(|e| e.to_string())
}

fn parse_rate(s: &str) -> Result<Duration, String> {
    if s.trim() == "0" || s.trim() == "0s" {
        return Ok(Duration::ZERO);
    }
    crate::domain::duration::parse(s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_demo_flags() {
        let c = Cli::try_parse_from([
            "portcullis",
            "--readonly",
            "demo",
            "--seed",
            "7",
            "--rate",
            "2s",
            "--color",
            "never",
        ])
        .unwrap();
        assert!(c.readonly);
        assert_eq!(c.color, ColorMode::Never);
        match c.command {
            Some(Command::Demo { seed, rate }) => {
                assert_eq!(seed, Some(7));
                assert_eq!(rate, Duration::from_secs(2));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        let e = Cli::try_parse_from(["portcullis", "demo", "--rate", "soon"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("'soon' is not a duration"));
        let e = Cli::try_parse_from(["portcullis", "--color", "purple"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    /// kubectl accepts --context anywhere; so does every global flag here.
    #[test]
    fn global_flags_before_or_after_the_verb() {
        let after = [
            "portcullis",
            "request",
            "--role",
            "edit",
            "--for",
            "30m",
            "--reason",
            "x",
            "--context",
            "prod",
            "--context",
            "staging",
            "--all-contexts",
            "--backend",
            "https://pc.example",
            "--token-file",
            "/t",
            "--color",
            "never",
            "--theme",
            "light",
            "--config",
            "/c.toml",
            "--readonly",
            "-v",
        ];
        let c = Cli::try_parse_from(after).unwrap();
        assert_eq!(c.contexts, ["prod", "staging"]);
        assert!(c.all_contexts && c.readonly);
        assert_eq!(c.backend.as_deref(), Some("https://pc.example"));
        assert_eq!(c.token_file.as_deref(), Some(std::path::Path::new("/t")));
        assert_eq!(c.color, ColorMode::Never);
        assert_eq!(c.theme.as_deref(), Some("light"));
        assert_eq!(c.config.as_deref(), Some(std::path::Path::new("/c.toml")));
        assert_eq!(c.verbose, 1);
        let before = Cli::try_parse_merged([
            "portcullis",
            "--context",
            "prod",
            "-vv",
            "get",
            "requests",
            "--context",
            "staging",
        ])
        .unwrap();
        assert_eq!(before.contexts, ["prod", "staging"]);
        assert_eq!(before.verbose, 2);
        // A context named like a verb is still a value.
        let odd = Cli::try_parse_merged([
            "portcullis",
            "--context=get",
            "--theme",
            "get",
            "get",
            "requests",
            "--context",
            "b",
        ])
        .unwrap();
        assert_eq!(odd.contexts, ["get", "b"]);
        assert_eq!(odd.theme.as_deref(), Some("get"));
    }

    /// A verb's help lists its own flags apart from the global ones.
    #[test]
    fn help_sets_global_flags_apart() {
        use clap::CommandFactory;
        let mut cli = Cli::command();
        // Global flags reach the verbs when the command is built.
        cli.build();
        let get = cli.find_subcommand_mut("get").expect("get");
        let help = get.render_long_help().to_string();
        let (own, global) = help.split_once(GLOBAL).expect("a global heading");
        assert!(
            own.contains("--sort-by") && own.contains("--watch"),
            "{help}"
        );
        assert!(
            !own.contains("--context") && global.contains("--context"),
            "{help}"
        );
    }

    #[test]
    fn get_takes_kubectl_flags() {
        let c = Cli::try_parse_from([
            "portcullis",
            "get",
            "accessrequests",
            "prod/alice-x",
            "-o",
            "jsonpath={.status.phase}",
            "-w",
            "--sort-by",
            ".spec.duration",
            "--no-headers",
        ])
        .unwrap();
        match c.command {
            Some(Command::Get {
                what,
                names,
                output,
                watch,
                sort_by,
                no_headers,
                ..
            }) => {
                assert_eq!(what, GetWhat::Requests);
                assert_eq!(names, ["prod/alice-x"]);
                assert!(matches!(output, Output::JsonPath(_)));
                assert!(watch && no_headers);
                assert_eq!(sort_by.as_deref(), Some(".spec.duration"));
            }
            other => panic!("{other:?}"),
        }
        let e = Cli::try_parse_from(["portcullis", "get", "requests", "-o", "jsonpath={.a"])
            .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("unclosed"), "{e}");
    }
}
