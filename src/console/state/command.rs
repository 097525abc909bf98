//! `:` command mode: parsing and Tab completion, k9s style.

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    Pending,
    Grants,
    History,
    /// `:ctx NAME` restricts the view to one cluster; `:ctx all` shows all.
    Context(Option<String>),
    /// `:ctx` alone lists the contexts.
    Contexts,
    /// `:mark all` marks every row of the current filter.
    MarkAll,
    /// `:audit [FILTER]`: the recent audit events.
    Audit(String),
    Help,
    Quit,
}

/// Command names with their aliases; the first is the one completion offers.
pub(crate) const COMMANDS: &[(&str, &[&str], &str)] = &[
    (
        "pending",
        &["p", "requests", "req"],
        "the queue of pending requests",
    ),
    ("grants", &["g", "live"], "live grants with their countdown"),
    ("history", &["h", "hist"], "decided and ended requests"),
    (
        "ctx",
        &["context"],
        "list the contexts (:ctx), show one (:ctx NAME) or all (:ctx all)",
    ),
    (
        "mark",
        &[],
        "mark all: mark every row of the filter for a bulk deny or revoke",
    ),
    (
        "audit",
        &["events"],
        "the audit trail, newest first (:audit user:bob, :audit risk:high — the filter's terms)",
    ),
    ("help", &["?"], "keys and commands"),
    ("q", &["quit", "q!"], "quit"),
];

pub(crate) fn parse(line: &str) -> Result<Command, String> {
    let mut words = line.split_whitespace();
    let Some(head) = words.next() else {
        return Err("type a command, e.g. :pending, :grants, :history, :ctx, :mark all, :q".into());
    };
    let name = COMMANDS
        .iter()
        .find(|(n, aliases, _)| *n == head || aliases.contains(&head))
        .map(|(n, _, _)| *n);
    let arg = words.next().map(str::to_string);
    match name {
        Some("pending") => Ok(Command::Pending),
        Some("grants") => Ok(Command::Grants),
        Some("history") => Ok(Command::History),
        Some("ctx") => Ok(match arg.as_deref() {
            None => Command::Contexts,
            Some("all") => Command::Context(None),
            Some(_) => Command::Context(arg),
        }),
        Some("mark") => match arg.as_deref() {
            Some("all") | None => Ok(Command::MarkAll),
            Some(other) => Err(format!(
                "':mark {}': did you mean :mark all?",
                crate::domain::sanitize::inert(other, 32)
            )),
        },
        Some("audit") => Ok(Command::Audit(
            line.split_whitespace()
                .skip(1)
                .collect::<Vec<_>>()
                .join(" "),
        )),
        Some("help") => Ok(Command::Help),
        Some("q") => Ok(Command::Quit),
        _ => Err(format!(
            "unknown command ':{}': try :pending, :grants, :history, :ctx, :mark all, :q",
            crate::domain::sanitize::inert(head, 32)
        )),
    }
}

/// What Tab offers for a line: the completed line when one choice (or a
/// longer common prefix) fits, else every choice, each as a whole line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Completion {
    Line(String),
    Choices(Vec<String>),
    Nothing,
}

/// Completes the line: a command name, or a context name after `ctx `
/// (every context when nothing is typed yet), or `all` after `mark `.
pub(crate) fn complete(line: &str, contexts: &[String]) -> Completion {
    let trailing_space = line.ends_with(' ');
    let words: Vec<&str> = line.split_whitespace().collect();
    let common = |cands: &[&str]| -> Option<String> {
        let first = *cands.first()?;
        let mut prefix = first.to_string();
        for c in &cands[1..] {
            while !c.starts_with(&prefix) {
                prefix.pop();
            }
        }
        Some(prefix)
    };
    let offer = |head: &str, partial: &str, cands: Vec<&str>| -> Completion {
        let line = |p: &str| {
            if head.is_empty() {
                p.to_string()
            } else {
                format!("{head} {p}")
            }
        };
        match cands.as_slice() {
            [] => Completion::Nothing,
            [one] => Completion::Line(if head.is_empty() {
                format!("{one} ")
            } else {
                line(one)
            }),
            many => match common(many) {
                Some(p) if p.len() > partial.len() => Completion::Line(line(&p)),
                _ => Completion::Choices(many.iter().map(|c| line(c)).collect()),
            },
        }
    };
    match words.as_slice() {
        [] => offer("", "", COMMANDS.iter().map(|(n, _, _)| *n).collect()),
        [head] if !trailing_space => offer(
            "",
            head,
            COMMANDS
                .iter()
                .map(|(n, _, _)| *n)
                .filter(|n| n.starts_with(head))
                .collect(),
        ),
        [head, rest @ ..] if rest.len() <= 1 => {
            let partial = if trailing_space {
                ""
            } else {
                rest.first().copied().unwrap_or("")
            };
            let all: Vec<&str> = match *head {
                "ctx" | "context" => contexts.iter().map(String::as_str).chain(["all"]).collect(),
                "mark" => vec!["all"],
                _ => return Completion::Nothing,
            };
            let cands: Vec<&str> = all.into_iter().filter(|c| c.starts_with(partial)).collect();
            if cands == [partial] {
                return Completion::Nothing;
            }
            offer(head, partial, cands)
        }
        _ => Completion::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands_and_aliases() {
        assert_eq!(parse("pending"), Ok(Command::Pending));
        assert_eq!(parse("live"), Ok(Command::Grants));
        assert_eq!(parse("h"), Ok(Command::History));
        assert_eq!(
            parse("ctx prod-eu"),
            Ok(Command::Context(Some("prod-eu".into())))
        );
        assert_eq!(parse("ctx all"), Ok(Command::Context(None)));
        assert_eq!(parse("ctx"), Ok(Command::Contexts));
        assert_eq!(parse("mark all"), Ok(Command::MarkAll));
        assert!(parse("mark some").is_err());
        assert_eq!(parse("q"), Ok(Command::Quit));
        assert_eq!(parse("quit"), Ok(Command::Quit));
        assert!(parse("frobnicate")
            .unwrap_err()
            .contains("unknown command ':frobnicate'"));
        assert!(parse("").is_err());
    }

    #[test]
    fn completes_names_and_contexts() {
        let ctx = vec!["prod-eu-west".to_string(), "staging-eu-west".to_string()];
        let line = |s: &str| Completion::Line(s.into());
        assert_eq!(complete("pe", &ctx), line("pending "));
        assert_eq!(complete("gr", &ctx), line("grants "));
        assert_eq!(complete("ctx p", &ctx), line("ctx prod-eu-west"));
        assert_eq!(
            complete("ctx ", &ctx),
            Completion::Choices(vec![
                "ctx prod-eu-west".into(),
                "ctx staging-eu-west".into(),
                "ctx all".into()
            ]),
            "every context when nothing is typed"
        );
        assert_eq!(complete("ctx s", &ctx), line("ctx staging-eu-west"));
        assert_eq!(complete("mark ", &ctx), line("mark all"));
        assert_eq!(complete("zz", &ctx), Completion::Nothing);
        assert_eq!(complete("ctx prod-eu-west", &ctx), Completion::Nothing);
    }
}
