//! Connecting to the Portcullis server (`--backend URL`): its credentials
//! and its CA.

use anyhow::Context;

use super::args::Cli;
use crate::backend::http::credentials::BearerSource;
use crate::backend::http::HttpBackend;

/// The credentials for the server: --token-file, else $PORTCULLIS_TOKEN,
/// else how the current kubeconfig context's user signs in (`token`,
/// `tokenFile` or an `exec` plugin; `$KUBECONFIG` as kubectl reads it).
pub(crate) fn server_credentials(cli: &Cli) -> anyhow::Result<BearerSource> {
    if let Some(file) = &cli.token_file {
        let t = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the token file {}", file.display()))?;
        return Ok(BearerSource::fixed(t));
    }
    if let Some(t) = std::env::var("PORTCULLIS_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
    {
        return Ok(BearerSource::fixed(t));
    }
    let kubeconfig = kube::config::Kubeconfig::read().map_err(|e| {
        anyhow::anyhow!("no token for the server: pass --token-file or set PORTCULLIS_TOKEN ({e})")
    })?;
    Ok(BearerSource::from_kubeconfig(&kubeconfig)?)
}

/// The server at `url`, signed in as `--backend`'s flags say.
pub(crate) async fn server(cli: &Cli, url: &str) -> anyhow::Result<HttpBackend> {
    let credentials = server_credentials(cli)?;
    let ca = match &cli.ca_file {
        Some(f) => Some(std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?),
        None => None,
    };
    Ok(HttpBackend::connect(url, credentials, ca.as_deref()).await?)
}
