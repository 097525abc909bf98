//! `portcullis completions SHELL`: a shell completion script.

use clap::CommandFactory;

use crate::cli::args::Cli;

/// Prints the script for `shell` on stdout.
pub(crate) fn run(shell: clap_complete::Shell) -> anyhow::Result<()> {
    clap_complete::generate(
        shell,
        &mut Cli::command(),
        "portcullis",
        &mut std::io::stdout(),
    );
    Ok(())
}
