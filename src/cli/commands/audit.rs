//! `portcullis audit keygen|verify|show`.

use anyhow::{bail, Context};

use crate::audit::Sealed;
use crate::cli::args::Cli;
use crate::cli::connect;
use crate::domain::sanitize::inert;

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
                AuditOutput::Table => print!("{}", table(&chosen)),
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

/// One line per record: time, kind, who, what, why — inert and bounded.
pub fn table(records: &[Sealed]) -> String {
    let mut rows: Vec<Vec<String>> = vec![vec![
        "SEQ".into(),
        "TIME (UTC)".into(),
        "EVENT".into(),
        "ACTOR".into(),
        "REQUEST".into(),
        "DETAIL".into(),
    ]];
    for s in records {
        let e = &s.event;
        let actor = match &e.actor {
            Some(a) => format!("{} ({})", a.user, a.verified_by),
            None => "-".into(),
        };
        let request = if e.request.is_empty() {
            "-".to_string()
        } else {
            format!("{}/{}", e.cluster, e.request)
        };
        let mut detail = e.message.clone();
        if let Some(risk) = &e.risk {
            detail = format!("[{risk}] {detail}");
        }
        rows.push(vec![
            s.seq.to_string(),
            e.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            e.kind.as_str().to_string(),
            inert(&actor, 60).into_owned(),
            inert(&request, 80).into_owned(),
            inert(&detail, 120).into_owned(),
        ]);
    }
    crate::cli::table::Table::new(2).layout(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::{Actor, Event, Kind};

    #[test]
    fn the_table_is_inert_and_aligned() {
        let mut e = Event::new(Kind::Refused, chrono::DateTime::UNIX_EPOCH, "x".into());
        e.actor = Some(Actor::new("mallory", "TokenReview"));
        e.cluster = "prod".into();
        e.request = "alice-x".into();
        e.requester = "alice".into();
        e.message = "why \u{1b}[2J".into();
        let sealed = |seq| Sealed {
            seq,
            prev: String::new(),
            hash: String::new(),
            event: e.clone(),
        };
        let t = table(&[sealed(1), sealed(10)]);
        assert!(!t.contains('\u{1b}'), "{t:?}");
        assert!(t.contains("attempt.refused"));
        assert!(t.contains("mallory (TokenReview)"));
        let starts: Vec<Option<usize>> = t
            .lines()
            .map(|l| l.find("TIME").or(l.find("1970")))
            .collect();
        assert!(starts.windows(2).all(|w| w[0] == w[1]), "{t}");
    }
}
