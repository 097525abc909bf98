//! `portcullis audit keygen|verify|show`.

use anyhow::{bail, Context};

use crate::cli::args::Cli;
use crate::cli::connect;

pub(crate) async fn run(cli: &Cli, action: &crate::cli::args::AuditAction) -> anyhow::Result<()> {
    use crate::audit::{chain, files, query};
    use crate::cli::args::{AuditAction, AuditOutput};
    match action {
        AuditAction::Keygen { out } => {
            let (secret, public) = files::keygen(out)?;
            println!(
                "wrote {} (secret: the server's or reaper's `audit.key`) and {} (give it to auditors: `portcullis audit verify LOG --key {}`)",
                secret.display(),
                public.display(),
                public.display()
            );
            Ok(())
        }
        AuditAction::Verify { files: given, key } => {
            let key = match key {
                Some(p) => {
                    let text = std::fs::read_to_string(p)
                        .with_context(|| format!("cannot read {}", p.display()))?;
                    Some(chain::parse_public(&text).with_context(|| format!("{}", p.display()))?)
                }
                None => None,
            };
            match files::verify(given, key.as_ref()) {
                Ok(report) => {
                    for line in report.lines {
                        println!("{line}");
                    }
                    Ok(())
                }
                Err(why) => bail!("NOT intact: {why}"),
            }
        }
        AuditAction::Show {
            file,
            request,
            user,
            since,
            output,
        } => {
            let filter = query::Filter {
                request: request.clone(),
                user: user.clone(),
                since: since.map(|d| {
                    chrono::Utc::now()
                        - chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
                }),
            };
            let records = match (file, &cli.backend) {
                (Some(f), _) => files::read(std::slice::from_ref(f)).map_err(anyhow::Error::msg)?,
                (None, Some(url)) => {
                    let server = connect::server(cli, url).await?;
                    let mut q = Vec::new();
                    if let Some(r) = &filter.request {
                        q.push(("request", r.clone()));
                    }
                    if let Some(u) = &filter.user {
                        q.push(("user", u.clone()));
                    }
                    if let Some(t) = filter.since {
                        q.push(("since", t.to_rfc3339()));
                    }
                    server.audit(&q).await?
                }
                (None, None) => {
                    bail!("give --file LOG (the server's or reaper's audit log) or --backend URL")
                }
            };
            let chosen: Vec<_> = records
                .into_iter()
                .filter(|s| filter.matches(&s.event))
                .collect();
            match output {
                AuditOutput::Table => print!("{}", query::table(&chosen)),
                AuditOutput::Json => {
                    for s in &chosen {
                        println!("{}", chain::line(s));
                    }
                }
            }
            Ok(())
        }
    }
}
