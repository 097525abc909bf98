//! `portcullis version [--client] [-o json|yaml]`.

use anyhow::Context;

use crate::backend::kube::KubeBackend;
use crate::cli::args::Cli;
use crate::cli::connect;
use crate::version;

/// `portcullis version [--client] [-o json|yaml]`: this build, and
/// (without --client) each cluster's apiserver or the Portcullis server.
pub(crate) fn run(
    cli: &Cli,
    client_only: bool,
    output: Option<crate::cli::args::VersionOutput>,
) -> anyhow::Result<()> {
    use crate::cli::args::VersionOutput;
    let mut doc = serde_json::json!({ "clientVersion": version::client_json() });
    let mut text = version::client_text();
    let mut failure = None;
    if !client_only {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let servers = runtime.block_on(async {
            if let Some(url) = &cli.backend {
                let http = connect::server(cli, url).await?;
                let v = http
                    .whoami()
                    .server_version
                    .clone()
                    .unwrap_or_else(|| "unknown (an older server)".into());
                return anyhow::Ok(vec![("server".to_string(), url.clone(), v)]);
            }
            let kube = KubeBackend::connect(&cli.contexts, cli.all_contexts).await?;
            let mut out = Vec::new();
            for c in kube.clusters() {
                let v = c
                    .client
                    .apiserver_version()
                    .await
                    .map(|i| i.git_version)
                    .with_context(|| {
                        format!("{}: cannot read the apiserver's version", c.context)
                    })?;
                out.push(("kubernetes".to_string(), c.context.clone(), v));
            }
            Ok(out)
        });
        match servers {
            Ok(servers) => {
                let mut list = Vec::new();
                for (kind, name, v) in servers {
                    let name = crate::domain::sanitize::inert(&name, 200).into_owned();
                    let v = crate::domain::sanitize::inert(&v, 200).into_owned();
                    if kind == "server" {
                        text.push_str(&format!("Portcullis Server Version ({name}): {v}\n"));
                    } else {
                        text.push_str(&format!("Server Version ({name}): {v}\n"));
                    }
                    list.push(serde_json::json!({"kind": kind, "name": name, "version": v}));
                }
                doc["serverVersions"] = serde_json::Value::Array(list);
            }
            Err(e) => failure = Some(e),
        }
    }
    match output {
        Some(VersionOutput::Json) => println!("{}", serde_json::to_string_pretty(&doc)?),
        Some(VersionOutput::Yaml) => print!("{}", serde_yaml_ng::to_string(&doc)?),
        None => print!("{text}"),
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
