//! `:` command mode: parsing and Tab completion, k9s style.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Pending,
    Grants,
    History,
    /// `:ctx NAME` restricts the view to one cluster; `:ctx` or `:ctx all` shows all.
    Context(Option<String>),
    Help,
    Quit,
}

/// Command names with their aliases; the first is the one completion offers.
pub const COMMANDS: &[(&str, &[&str], &str)] = &[
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
        "show one cluster (:ctx NAME) or all (:ctx)",
    ),
    ("help", &["?"], "keys and commands"),
    ("q", &["quit", "q!"], "quit"),
];

pub fn parse(line: &str) -> Result<Command, String> {
    let mut words = line.split_whitespace();
    let Some(head) = words.next() else {
        return Err("type a command, e.g. :pending, :grants, :history, :ctx NAME, :q".into());
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
        Some("ctx") => Ok(Command::Context(arg.filter(|a| a != "all"))),
        Some("help") => Ok(Command::Help),
        Some("q") => Ok(Command::Quit),
        _ => Err(format!(
            "unknown command ':{}': try :pending, :grants, :history, :ctx NAME, :q",
            crate::domain::sanitize::inert(head, 32)
        )),
    }
}

/// Completes the line: a command name, or a context name after `ctx `.
/// Returns the completed line, or None when nothing (or nothing unique) fits.
pub fn complete(line: &str, contexts: &[String]) -> Option<String> {
    let trailing_space = line.ends_with(' ');
    let words: Vec<&str> = line.split_whitespace().collect();
    let common = |cands: Vec<&str>| -> Option<String> {
        let first = *cands.first()?;
        let mut prefix = first.to_string();
        for c in &cands[1..] {
            while !c.starts_with(&prefix) {
                prefix.pop();
            }
        }
        Some(prefix)
    };
    match words.as_slice() {
        [head] if !trailing_space => {
            let cands: Vec<&str> = COMMANDS
                .iter()
                .map(|(n, _, _)| *n)
                .filter(|n| n.starts_with(head))
                .collect();
            let done = cands.len() == 1;
            common(cands)
                .map(|p| if done { format!("{p} ") } else { p })
                .filter(|p| p.trim() != *head || p.ends_with(' '))
        }
        [head, rest @ ..] if matches!(*head, "ctx" | "context") && rest.len() <= 1 => {
            let partial = if trailing_space {
                ""
            } else {
                rest.first().copied().unwrap_or("")
            };
            let mut all: Vec<&str> = contexts.iter().map(String::as_str).collect();
            all.push("all");
            let cands: Vec<&str> = all.into_iter().filter(|c| c.starts_with(partial)).collect();
            common(cands)
                .filter(|p| p != partial)
                .map(|p| format!("{head} {p}"))
        }
        _ => None,
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
        assert_eq!(parse("ctx"), Ok(Command::Context(None)));
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
        assert_eq!(complete("pe", &ctx), Some("pending ".into()));
        assert_eq!(complete("gr", &ctx), Some("grants ".into()));
        assert_eq!(complete("ctx p", &ctx), Some("ctx prod-eu-west".into()));
        assert_eq!(
            complete("ctx ", &ctx),
            None,
            "no unique prefix among all choices"
        );
        assert_eq!(complete("ctx s", &ctx), Some("ctx staging-eu-west".into()));
        assert_eq!(complete("zz", &ctx), None);
    }
}
