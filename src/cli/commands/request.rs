//! `portcullis request`: ask for access, or for more time on a live grant
//! (`--extend`); with `--wait`, block until the request is decided.

use chrono::Utc;

use crate::backend::{BackendError, Caller, NewRequest};
use crate::cli::args::{Command, CredentialsArg};
use crate::cli::commands::verbs::{not_a_verb, Verb};
use crate::cli::wait::{Exit, Outcome};
use crate::domain::{AccessRequest, Credentials, RoleRef, Subject};

/// How long `request --credentials token --wait` waits, once approved, for
/// the reaper to set the grant's credentials up before saying it cannot.
const CREDENTIALS_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// `portcullis request`: makes the request and prints its name; with
/// `--wait`, what came of it (`exit`: how the command ends when not
/// approved).
pub(crate) async fn run(
    verb: &Verb<'_>,
    command: &Command,
    config_groups: &[String],
    progress: &mut (dyn std::io::Write + Send),
    exit: &mut Option<Exit>,
) -> Result<String, BackendError> {
    let Command::Request {
        groups,
        extend,
        wait,
        timeout,
        ..
    } = command
    else {
        return Err(not_a_verb(command));
    };
    let requester = Subject {
        user: verb.me.user.clone(),
        groups: requester_groups(verb, groups, config_groups),
    };
    let live = match extend {
        Some(of) => Some(verb.get(of).await?),
        None => None,
    };
    let new = new_request(verb, command, requester, live.as_ref())?;
    // Refuse what can never be approved before it reaches anyone.
    let draft = new.clone().into_request("new".into(), Utc::now());
    let limits = verb.backend.limits(&verb.cluster).await;
    draft
        .validate(&limits)
        .map_err(|e| BackendError::Invalid(e.to_string()))?;
    limits
        .check_grantable(&draft.role, &draft.namespaces)
        .map_err(BackendError::Invalid)?;
    if let Some(live) = &live {
        draft
            .check_extends(live)
            .map_err(|e| BackendError::Invalid(e.to_string()))?;
    }
    let made = verb.backend.create(new).await?;
    let name = verb.show(&made.name);
    if !*wait {
        return Ok(format!("{name}\n"));
    }
    wait_for(verb, &made.name, &name, *timeout, progress, exit).await
}

/// The requester's groups: the apiserver's (or the server's) word for who
/// asks; only an unverified identity falls back to the groups given here
/// (`--group`, else the config's).
fn requester_groups(verb: &Verb<'_>, groups: &[String], config_groups: &[String]) -> Vec<String> {
    if verb.verified {
        // Every user has these; they say nothing to an approver.
        verb.me.declared_groups().map(str::to_string).collect()
    } else if groups.is_empty() {
        config_groups.to_vec()
    } else {
        groups.to_vec()
    }
}

/// What is asked: for an extension, what the `live` grant holds (or
/// less); else the role given.
fn new_request(
    verb: &Verb<'_>,
    command: &Command,
    requester: Subject,
    live: Option<&AccessRequest>,
) -> Result<NewRequest, BackendError> {
    let Command::Request {
        role,
        cluster_role,
        namespaces,
        duration,
        reason,
        ticket,
        credentials,
        ..
    } = command
    else {
        return Err(not_a_verb(command));
    };
    let new = match (live, role) {
        // An extension asks for what the live grant holds (or less).
        (Some(live), _) => NewRequest {
            cluster: verb.cluster.clone(),
            requester,
            role: live.role.clone(),
            namespaces: if namespaces.is_empty() {
                live.granted_namespaces().to_vec()
            } else {
                namespaces.clone()
            },
            duration: *duration,
            reason: reason.clone(),
            ticket: ticket.clone().or_else(|| live.ticket.clone()),
            credentials: live.credentials,
            extends: Some(live.name.clone()),
        },
        (None, Some(role)) => NewRequest {
            cluster: verb.cluster.clone(),
            requester,
            role: if *cluster_role {
                RoleRef::cluster_role(role)
            } else {
                RoleRef::role(role)
            },
            namespaces: namespaces.clone(),
            duration: *duration,
            reason: reason.clone(),
            ticket: ticket.clone(),
            credentials: match credentials {
                CredentialsArg::Identity => Credentials::Identity,
                CredentialsArg::Token => Credentials::Token,
            },
            extends: None,
        },
        (None, None) => {
            return Err(BackendError::Invalid(
                "name a role (--role) or a grant to extend (--extend)".into(),
            ))
        }
    };
    Ok(new)
}

/// `request --wait`: waits for the decision on `made_name` (shown as
/// `name`); returns the outcome (or the kubeconfig), and sets `exit` when
/// it is not approved.
async fn wait_for(
    verb: &Verb<'_>,
    made_name: &str,
    name: &str,
    timeout: Option<std::time::Duration>,
    progress: &mut (dyn std::io::Write + Send),
    exit: &mut Option<Exit>,
) -> Result<String, BackendError> {
    // stdout keeps the outcome alone (or the kubeconfig), so
    // `request --wait > kubeconfig` works.
    let _ = writeln!(
        progress,
        "requested {name}; waiting for a decision (Ctrl-C stops waiting, the request stays)"
    );
    let _ = progress.flush();
    let waited = crate::cli::wait::wait(verb.backend, &verb.key(made_name), timeout).await?;
    let said = crate::cli::wait::describe(&waited, name);
    match (waited.outcome, &waited.request) {
        (Outcome::Approved, Some(r)) if r.credentials == Credentials::Token => {
            token_kubeconfig(verb, r, made_name, name, said, progress).await
        }
        (Outcome::Approved, _) => Ok(said),
        (Outcome::TimedOut, _) => {
            *exit = Some(Exit {
                code: Outcome::TimedOut.exit_code(),
                message: Some(crate::cli::wait::timed_out(
                    name,
                    timeout.unwrap_or_default(),
                )),
            });
            Ok(String::new())
        }
        (outcome, _) => {
            *exit = Some(Exit {
                code: outcome.exit_code(),
                message: None,
            });
            Ok(said)
        }
    }
}

/// Approved `r`, credentials mode Token: the grant's kubeconfig (with
/// `said` on stderr), or `said` when there is none (why, on stderr).
async fn token_kubeconfig(
    verb: &Verb<'_>,
    r: &AccessRequest,
    made_name: &str,
    name: &str,
    said: String,
    progress: &mut (dyn std::io::Write + Send),
) -> Result<String, BackendError> {
    // Direct mode: the reaper sets the grant's credentials
    // up within seconds of approval; wait for them (bounded).
    let mut r = r.clone();
    let until = tokio::time::Instant::now() + CREDENTIALS_WAIT;
    while verb.backend.info().kind == "kube"
        && !crate::backend::kube::grant::token_objects_recorded(&r)
        && tokio::time::Instant::now() < until
    {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        r = verb
            .backend
            .get(&verb.key(made_name), Caller::Requester)
            .await?;
    }
    match verb.backend.login(&r).await {
        Ok(kubeconfig) => {
            let _ = write!(progress, "{said}");
            Ok(kubeconfig)
        }
        // Approved is still the outcome: said on stdout, and
        // why there is no kubeconfig on stderr.
        Err(e) => {
            let _ = writeln!(progress, "no kubeconfig for {name}: {e}");
            Ok(said)
        }
    }
}
