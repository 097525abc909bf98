//! How a request is named on the command line: `NAME`, `CONTEXT/NAME`,
//! or what `get -o name` prints (`accessrequest.portcullis.dev/NAME`,
//! `CONTEXT/accessrequest.portcullis.dev/NAME` when several contexts are in
//! view), so a script can feed one verb's output to the next and act on
//! the right cluster.
//!
//! Object names never hold a `/`; context names may (EKS contexts are
//! ARNs ending in `cluster/NAME`), so the request name is what follows the
//! last `/` and the context is everything before it.

/// The resource as kubectl spells it in `-o name`.
pub(crate) const RESOURCE: &str = "accessrequest.portcullis.dev";

/// Spellings of the resource that may stand before the name.
const RESOURCE_SPELLINGS: &[&str] = &[
    RESOURCE,
    "accessrequests.portcullis.dev",
    "accessrequest",
    "accessrequests",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRef {
    /// The kubeconfig context (or the server's cluster), when named.
    pub context: Option<String>,
    pub name: String,
}

impl RequestRef {
    pub fn parse(text: &str) -> Self {
        let Some((before, name)) = text.rsplit_once('/') else {
            return Self {
                context: None,
                name: text.to_string(),
            };
        };
        let context = if RESOURCE_SPELLINGS.contains(&before) {
            None
        } else {
            let ctx = RESOURCE_SPELLINGS
                .iter()
                .find_map(|r| before.strip_suffix(&format!("/{r}")))
                .unwrap_or(before);
            (!ctx.is_empty()).then(|| ctx.to_string())
        };
        Self {
            context,
            name: name.to_string(),
        }
    }
}

/// `-o name`'s line for a request; `with_context` when several contexts
/// are in view.
pub(crate) fn kubectl_name(context: &str, name: &str, with_context: bool) -> String {
    if with_context {
        format!("{context}/{RESOURCE}/{name}")
    } else {
        format!("{RESOURCE}/{name}")
    }
}

/// How verbs name a request in what they print: `CONTEXT/NAME` when
/// several contexts are in view, else `NAME`.
pub(crate) fn shown(context: &str, name: &str, with_context: bool) -> String {
    if with_context {
        format!("{context}/{name}")
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(context: Option<&str>, name: &str) -> RequestRef {
        RequestRef {
            context: context.map(str::to_string),
            name: name.into(),
        }
    }

    #[test]
    fn every_spelling() {
        assert_eq!(RequestRef::parse("alice-x"), r(None, "alice-x"));
        assert_eq!(
            RequestRef::parse("prod/alice-x"),
            r(Some("prod"), "alice-x")
        );
        assert_eq!(
            RequestRef::parse("accessrequest.portcullis.dev/alice-x"),
            r(None, "alice-x")
        );
        assert_eq!(
            RequestRef::parse("accessrequest/alice-x"),
            r(None, "alice-x")
        );
        assert_eq!(
            RequestRef::parse("prod/accessrequest.portcullis.dev/alice-x"),
            r(Some("prod"), "alice-x")
        );
        let arn = "arn:aws:eks:eu-west-1:1234:cluster/prod";
        assert_eq!(
            RequestRef::parse(&format!("{arn}/alice-x")),
            r(Some(arn), "alice-x")
        );
        assert_eq!(
            RequestRef::parse(&format!("{arn}/{RESOURCE}/alice-x")),
            r(Some(arn), "alice-x")
        );
    }

    #[test]
    fn names_round_trip_through_o_name() {
        for with in [false, true] {
            let line = kubectl_name("staging", "bob-y", with);
            let back = RequestRef::parse(&line);
            assert_eq!(back.name, "bob-y");
            assert_eq!(back.context.as_deref(), with.then_some("staging"));
        }
    }
}
