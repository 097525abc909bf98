//! `portcullis man [--out-dir DIR]`: the manual pages.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::cli::invocation;

/// Writes every page into `out_dir`, or the main page to stdout.
pub(crate) fn run(out_dir: Option<&Path>) -> anyhow::Result<()> {
    match out_dir {
        Some(dir) => invocation::man_pages_to(dir)
            .with_context(|| format!("cannot write man pages to {}", dir.display())),
        None => Ok(std::io::stdout().write_all(&invocation::man_page()?)?),
    }
}
