//! The command line (clap). Verbs that need a cluster arrive with the
//! `kube` backend; today `portcullis demo` runs the console on the
//! embedded demo.

use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

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

#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about = "Terminal console for just-in-time Kubernetes access", long_about = None)]
pub struct Cli {
    /// Colour: auto (honours NO_COLOR), always, never.
    #[arg(long, value_enum, default_value_t = ColorMode::Auto, global = true)]
    pub color: ColorMode,

    /// Disable every action that changes access (approve, deny, shorten, revoke).
    #[arg(long, global = true)]
    pub readonly: bool,

    /// Theme name: default, light, mono, or a file in $XDG_CONFIG_HOME/portcullis/themes/.
    #[arg(long, global = true)]
    pub theme: Option<String>,

    /// Config file (default $XDG_CONFIG_HOME/portcullis/config.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,

    /// Kubeconfig context to show (repeatable).
    #[arg(long = "context", value_name = "NAME")]
    pub contexts: Vec<String>,

    /// Every context in the kubeconfig.
    #[arg(long)]
    pub all_contexts: bool,

    /// A broker URL instead of direct cluster access.
    #[arg(long, value_name = "URL")]
    pub backend: Option<String>,

    #[command(subcommand)]
    pub command: Option<Command>,
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
}
