//! How the binary was invoked: as `portcullis`, or as the kubectl plugin
//! `kubectl-portcullis` (installed or linked under that name on PATH,
//! kubectl runs it for `kubectl portcullis ...`). Help, usage and errors
//! then name `kubectl portcullis`, so what they show can be typed as is.
//! Also the man page, generated from the same clap definitions.

use std::ffi::OsStr;
use std::path::Path;

use clap::{ArgMatches, CommandFactory, FromArgMatches};

use crate::cli::args::Cli;

/// The file name kubectl looks for on PATH.
pub(crate) const PLUGIN_FILE: &str = "kubectl-portcullis";

/// What a user types to run this program, judged by `argv[0]`'s file name:
/// `kubectl portcullis` for the plugin, else `portcullis`.
pub(crate) fn invoked_as(argv0: Option<&OsStr>) -> &'static str {
    let stem = argv0
        .map(Path::new)
        .and_then(Path::file_stem)
        .and_then(OsStr::to_str);
    match stem {
        Some(PLUGIN_FILE) => "kubectl portcullis",
        _ => "portcullis",
    }
}

/// The clap command under the name it was invoked by.
pub(crate) fn command(invoked: &'static str) -> clap::Command {
    let cmd = Cli::command();
    if invoked == "portcullis" {
        return cmd;
    }
    cmd.name(PLUGIN_FILE)
        .display_name(invoked)
        .bin_name(invoked)
}

/// Parses `args` (argv[0] first) as `Cli`; help, version and errors exit
/// as clap does, naming the invoked command.
pub(crate) fn parse<I, T>(args: I) -> Cli
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let invoked = invoked_as(args.first().map(|a| a.as_os_str()));
    let mut matches: ArgMatches = command(invoked).get_matches_from(args.clone());
    let mut cli = Cli::from_arg_matches_mut(&mut matches)
        .unwrap_or_else(|e| e.format(&mut command(invoked)).exit());
    // `--context` before and after the verb: every one counts.
    cli.keep_contexts_before_the_verb(&args);
    cli
}

/// The man page (roff) of `portcullis` itself: every flag and a list of
/// the subcommands, each with its one-line summary.
pub(crate) fn man_page() -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    Ok(out)
}

/// `portcullis.1` and one `portcullis-VERB.1` per subcommand, in `dir`.
pub(crate) fn man_pages_to(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(Cli::command(), dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plugin_name_is_judged_by_the_file_name() {
        assert_eq!(
            invoked_as(Some(OsStr::new("/usr/local/bin/kubectl-portcullis"))),
            "kubectl portcullis"
        );
        assert_eq!(
            invoked_as(Some(OsStr::new("kubectl-portcullis"))),
            "kubectl portcullis"
        );
        assert_eq!(
            invoked_as(Some(OsStr::new("/usr/bin/portcullis"))),
            "portcullis"
        );
        assert_eq!(
            invoked_as(Some(OsStr::new("kubectl-portcullis-old"))),
            "portcullis"
        );
        assert_eq!(invoked_as(None), "portcullis");
    }
}
