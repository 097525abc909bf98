//! `portcullis get`: requests and grants listed as `kubectl get` lists
//! objects — a table (a CLUSTER column whenever more than one context is
//! in view), `-o wide|name|json|yaml|jsonpath=…|custom-columns=…`,
//! `--sort-by`, `--no-headers`, names as `NAME` or `CONTEXT/NAME`, and
//! `-w` (the table, then one row per change; see [`watch`]).
//!
//! JSON, YAML and JSONPath see each request as a Kubernetes object:
//! `apiVersion`, `kind`, `metadata.name` and `metadata.creationTimestamp`
//! beside the API's own fields (`name`, `cluster`, `createdAt`, `spec`,
//! `status`, `invalid`); a list is `{"apiVersion": "v1", "kind": "List",
//! "items": […]}`, one named request is the object itself.

pub mod jsonpath;
pub(crate) mod output;
mod table;
pub(crate) mod watch;

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::api::request_json;
use crate::backend::{BackendError, Caller, RequestKey};
use crate::cli::args::{Command, GetWhat};
use crate::cli::commands::verbs::VerbBackend;
use crate::cli::reference::{kubectl_name, RequestRef};
use crate::crd::wire;
use crate::domain::{duration, AccessRequest, Phase};
use jsonpath::Path;
pub use output::Output;

/// What `get` was asked for.
#[derive(Debug, Clone)]
pub struct Query {
    pub what: GetWhat,
    /// Only these (any phase); empty: by `what` and `all`.
    pub names: Vec<RequestRef>,
    pub all: bool,
    pub output: Output,
    pub sort_by: Option<Path>,
    pub no_headers: bool,
    /// The contexts in view; more than one adds a CLUSTER column and the
    /// context to `-o name`.
    pub view: Vec<String>,
}

/// What a listing prints: stdout, and a note for stderr (kubectl's "No
/// resources found").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub stdout: String,
    pub note: Option<String>,
}

impl Query {
    /// From `portcullis get …`, with the contexts in view.
    pub fn new(command: &Command, view: Vec<String>) -> Result<Self, BackendError> {
        let Command::Get {
            what,
            names,
            output,
            all,
            sort_by,
            no_headers,
            ..
        } = command
        else {
            return Err(BackendError::Invalid("not a get command".into()));
        };
        let sort_by = match sort_by {
            Some(p) => {
                Some(Path::parse(p).map_err(|e| BackendError::Invalid(format!("--sort-by: {e}")))?)
            }
            None => None,
        };
        let names: Vec<RequestRef> = names.iter().map(|n| RequestRef::parse(n)).collect();
        for n in &names {
            if let Some(c) = &n.context {
                if !view.contains(c) {
                    return Err(BackendError::Config(format!(
                        "{c}/{}: context {c} is not in view (in view: {})",
                        n.name,
                        view.join(", ")
                    )));
                }
            }
        }
        Ok(Self {
            what: *what,
            names,
            all: *all,
            output: output.clone(),
            sort_by,
            no_headers: *no_headers,
            view,
        })
    }

    /// More than one context in view.
    pub fn multi(&self) -> bool {
        self.view.len() > 1
    }

    fn in_view(&self, r: &AccessRequest) -> bool {
        self.view.is_empty() || self.view.contains(&r.cluster)
    }

    /// Whether `r` is listed.
    pub fn selects(&self, r: &AccessRequest) -> bool {
        if !self.in_view(r) {
            return false;
        }
        if !self.names.is_empty() {
            return self
                .names
                .iter()
                .any(|n| n.name == r.name && n.context.as_ref().is_none_or(|c| *c == r.cluster));
        }
        match self.what {
            GetWhat::Grants => r.phase() == Phase::Active,
            GetWhat::Requests => self.all || r.phase() == Phase::Pending,
        }
    }

    /// One named request: JSON, YAML and JSONPath print the object itself.
    fn single(&self) -> bool {
        self.names.len() == 1
    }
}

/// A request as a Kubernetes object (see the module comment).
pub fn object(r: &AccessRequest) -> Value {
    let mut v = request_json(r);
    if let Some(m) = v.as_object_mut() {
        m.insert("apiVersion".into(), json!(wire::API_VERSION));
        m.insert("kind".into(), json!(wire::KIND));
        m.insert(
            "metadata".into(),
            json!({"name": r.name, "creationTimestamp": m.get("createdAt").cloned().unwrap_or(Value::Null)}),
        );
    }
    v
}

/// kubectl's List around `items`.
fn list_object(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "items": items})
}

/// Lists what `q` asks for.
pub async fn list(backend: &dyn VerbBackend, q: &Query) -> Result<Listing, BackendError> {
    // By name when each name says where it is (or one context is in
    // view): a GET each. Otherwise one list: asking every context for a
    // name most do not have would be a refusal on the server's record each.
    let where_known = q.view.len() == 1 || q.names.iter().all(|n| n.context.is_some());
    let selected = if q.names.is_empty() || q.view.is_empty() || !where_known {
        let all = backend.list().await?;
        let selected: Vec<AccessRequest> = all.into_iter().filter(|r| q.selects(r)).collect();
        // Every name asked for must be there (kubectl's NotFound).
        for n in &q.names {
            let found = selected
                .iter()
                .any(|r| r.name == n.name && n.context.as_ref().is_none_or(|c| *c == r.cluster));
            if !found {
                return Err(not_found(n, &q.view));
            }
        }
        selected
    } else {
        named(backend, q).await?
    };
    let items = sorted(selected, q.sort_by.as_ref())?;
    Ok(render(q, &items, backend.now()))
}

/// The requests `q` names, each read by itself where it is: a GET each,
/// not a list of every request (seconds with tens of thousands stored).
async fn named(backend: &dyn VerbBackend, q: &Query) -> Result<Vec<AccessRequest>, BackendError> {
    let mut out: Vec<AccessRequest> = Vec::new();
    for n in &q.names {
        let contexts = match &n.context {
            Some(c) => std::slice::from_ref(c),
            None => q.view.as_slice(),
        };
        let mut found = false;
        for cluster in contexts {
            let key = RequestKey {
                cluster: cluster.clone(),
                name: n.name.clone(),
            };
            match backend.get(&key, Caller::Viewer).await {
                Ok(r) => {
                    found = true;
                    let listed = out
                        .iter()
                        .any(|o| o.cluster == r.cluster && o.name == r.name);
                    if !listed && q.selects(&r) {
                        out.push(r);
                    }
                }
                Err(BackendError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        if !found {
            return Err(not_found(n, &q.view));
        }
    }
    Ok(out)
}

/// kubectl's NotFound, naming where it looked.
pub fn not_found(n: &RequestRef, view: &[String]) -> BackendError {
    match (&n.context, view) {
        (Some(c), _) => BackendError::NotFound(RequestKey {
            cluster: c.clone(),
            name: n.name.clone(),
        }),
        (None, [one]) => BackendError::NotFound(RequestKey {
            cluster: one.clone(),
            name: n.name.clone(),
        }),
        (None, many) => BackendError::Config(format!(
            "{} not found in any of {} (it may have been removed)",
            n.name,
            many.join(", ")
        )),
    }
}

/// Requests with their objects, in the order `get` prints them: oldest
/// first (the queue's order), then `--sort-by` (stable).
pub fn sorted(
    mut items: Vec<AccessRequest>,
    by: Option<&Path>,
) -> Result<Vec<(AccessRequest, Value)>, BackendError> {
    items.sort_by(|a, b| {
        (a.created_at, &a.cluster, &a.name).cmp(&(b.created_at, &b.cluster, &b.name))
    });
    let mut with: Vec<(AccessRequest, Value)> = items
        .into_iter()
        .map(|r| {
            let o = object(&r);
            (r, o)
        })
        .collect();
    if let Some(path) = by {
        let keys: Vec<Option<Value>> = with
            .iter()
            .map(|(_, o)| path.eval(o).first().map(|v| (*v).clone()))
            .collect();
        if !with.is_empty() && keys.iter().all(Option::is_none) {
            return Err(BackendError::Invalid(format!(
                "--sort-by {}: no request has this field (e.g. .metadata.creationTimestamp, .spec.duration, .status.phase)",
                path.source
            )));
        }
        let mut order: Vec<usize> = (0..with.len()).collect();
        order.sort_by(|a, b| compare(keys[*a].as_ref(), keys[*b].as_ref()));
        let mut taken: Vec<Option<(AccessRequest, Value)>> = with.into_iter().map(Some).collect();
        with = order.into_iter().filter_map(|i| taken[i].take()).collect();
    }
    Ok(with)
}

/// `--sort-by`'s order: missing first; numbers by value; durations
/// (`30m`) and times as what they mean; other text as text.
fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => {
            if let (Ok(dx), Ok(dy)) = (duration::parse(x), duration::parse(y)) {
                return dx.cmp(&dy);
            }
            if let (Ok(tx), Ok(ty)) = (
                DateTime::parse_from_rfc3339(x),
                DateTime::parse_from_rfc3339(y),
            ) {
                return tx.cmp(&ty);
            }
            x.cmp(y)
        }
        (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
    }
}

/// The listing of `items` (already selected and sorted).
pub fn render(q: &Query, items: &[(AccessRequest, Value)], now: DateTime<Utc>) -> Listing {
    let none = || Listing {
        stdout: String::new(),
        note: Some("No resources found".into()),
    };
    match &q.output {
        o if o.is_table() => {
            if items.is_empty() {
                return none();
            }
            let mut t = table::Table::new(q, false);
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|(r, o)| t.cells(r, o, now, None))
                .collect();
            Listing {
                stdout: t.layout(&rows),
                note: None,
            }
        }
        Output::Name => {
            if items.is_empty() {
                return none();
            }
            Listing {
                stdout: items
                    .iter()
                    .map(|(r, _)| kubectl_name(&r.cluster, &r.name, q.multi()) + "\n")
                    .collect(),
                note: None,
            }
        }
        Output::Json => Listing {
            stdout: json_text(&whole(q, items)),
            note: None,
        },
        Output::Yaml => Listing {
            stdout: yaml_text(&whole(q, items)),
            note: None,
        },
        Output::JsonPath(t) => Listing {
            stdout: t.render(&whole(q, items)),
            note: None,
        },
        _ => unreachable!("every table format is handled above"),
    }
}

/// What JSON, YAML and JSONPath see: the one named object, or the List.
fn whole(q: &Query, items: &[(AccessRequest, Value)]) -> Value {
    match items {
        [(_, o)] if q.single() => o.clone(),
        _ => list_object(items.iter().map(|(_, o)| o.clone()).collect()),
    }
}

pub fn json_text(v: &Value) -> String {
    escape_data(
        &serde_json::to_string_pretty(v)
            .map(|s| s + "\n")
            .unwrap_or_default(),
    )
}

pub fn yaml_text(v: &Value) -> String {
    escape_data(&serde_yaml_ng::to_string(v).unwrap_or_default())
}

/// JSON and YAML keep requester text as data, but a terminal must not
/// act on it: characters a terminal interprets (C1 controls, bidi
/// overrides, zero-width marks) become `\uXXXX` escapes — lossless inside
/// JSON strings and YAML double-quoted scalars, visible and inert anywhere.
/// (C0 controls are already escaped by both serializers.)
pub fn escape_data(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if crate::domain::sanitize::is_dangerous(c) && !matches!(c, '\n' | '\t') {
            // UTF-16 units: what JSON's \u escape counts (a surrogate pair
            // above U+FFFF).
            for unit in c.encode_utf16(&mut [0; 2]) {
                out.push_str(&format!("\\u{:04X}", unit));
            }
        } else {
            out.push(c);
        }
    }
    out
}
