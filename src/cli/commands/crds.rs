//! `portcullis crds [...]`: every manifest asked for, one YAML stream.

use anyhow::{bail, Context};

use crate::cli::args::{Cli, Command};
use crate::crd::{admission_policy, manifests};

/// Prints what `crds` was asked for.
pub(crate) fn run(cli: &Cli) -> anyhow::Result<()> {
    let Some(Command::Crds {
        webhook,
        admission_policy,
        privileged,
        server_image,
        server_config,
        server_kubeconfig,
        grantable,
        approvers,
        requesters,
        reaper_deployment,
    }) = &cli.command
    else {
        unreachable!("crds::run runs the crds command");
    };
    let out = manifests(
        cli,
        webhook.as_deref(),
        server_image
            .as_deref()
            .zip(server_config.as_deref())
            .map(|(i, c)| (i, c, server_kubeconfig.as_deref())),
        grantable,
        approvers,
        requesters,
        reaper_deployment.as_deref(),
    )?;
    print!("{out}");
    if *admission_policy {
        let privileged: Vec<String> = if privileged.iter().all(|p| p.trim().is_empty()) {
            admission_policy::DEFAULT_PRIVILEGED
                .iter()
                .map(|p| p.to_string())
                .collect()
        } else {
            privileged
                .iter()
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect()
        };
        print!("---\n{}", admission_policy::manifests(&privileged));
    }
    Ok(())
}

/// `portcullis crds [...]`: every manifest asked for, one YAML stream.
fn manifests(
    cli: &Cli,
    webhook: Option<&str>,
    server: Option<(&str, &std::path::Path, Option<&std::path::Path>)>,
    grantable: &[String],
    approvers: &[String],
    requesters: &[String],
    reaper_deployment: Option<&str>,
) -> anyhow::Result<String> {
    use crate::crd::manifests::Holder;
    use crate::domain::grantable::Grantable;
    let holders = |list: &[String], flag: &str| -> anyhow::Result<Vec<Holder>> {
        list.iter()
            .filter(|t| !t.trim().is_empty())
            .map(|t| Holder::parse(t).map_err(|e| anyhow::anyhow!("--{flag}: {e}")))
            .collect()
    };
    let approvers = holders(approvers, "approvers")?;
    let requesters = holders(requesters, "requesters")?;
    let roles: Vec<Grantable> = grantable
        .iter()
        .filter(|t| !t.trim().is_empty())
        .map(|t| {
            let g = Grantable::parse(t.trim()).map_err(|e| anyhow::anyhow!("--grantable: {e}"))?;
            manifests::check_grantable(&g).map_err(|e| anyhow::anyhow!("--grantable: {e}"))?;
            Ok(g)
        })
        .collect::<anyhow::Result<_>>()?;
    let server_image = server.map(|(image, _, _)| image);
    if !roles.is_empty() && approvers.is_empty() && server_image.is_none() {
        bail!("--grantable needs --approvers (who gets the bind rights), e.g. --approvers group:oncall");
    }
    let mut out = if roles.is_empty() {
        manifests::all()
    } else {
        manifests::all_granting(&roles)
    };
    out.push_str(&manifests::holders(&requesters, &approvers));
    out.push_str(&manifests::grantable(
        &roles,
        &approvers,
        server_image.is_some(),
    ));
    if let Some((image, config, kubeconfig)) = server {
        let bundle = crate::server::install::bundle(config, kubeconfig)?;
        out.push_str("---\n");
        out.push_str(&manifests::server(image));
        out.push_str("---\n");
        out.push_str(&crate::server::install::manifests(&bundle));
    }
    if let Some(image) = reaper_deployment {
        out.push_str(&manifests::reaper_deployment(image));
    }
    if let Some(url) = webhook {
        let Some(ca) = &cli.ca_file else {
            bail!("--webhook needs --ca-file: the CA that signed the server's certificate");
        };
        let pem = std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?;
        out.push_str("---\n");
        out.push_str(&crate::server::webhook::configuration(url, &pem));
    }
    Ok(out)
}
