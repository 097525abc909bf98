//! `get -w`: kubectl's watch output — what is there now (the table, or
//! one object or name each), then one row for each change, as it happens,
//! until interrupted. Live from the backend's stream (the apiserver's
//! watch in direct mode, the server's event stream with `--backend`), not
//! by polling.
//!
//! A request is printed when it changes and is selected, and once more
//! when it stops being selected (a pending request approved shows as
//! Active under `get requests -w`; a grant that ends shows its end under
//! `get grants -w`); a deleted one prints with PHASE `Deleted`. The same
//! state reported twice (a re-list after a reconnect) prints nothing.
//! With `--output-watch-events` each row starts with ADDED, MODIFIED or
//! DELETED, and JSON/YAML print `{"type": …, "object": …}`.

use std::collections::{HashMap, HashSet};
use std::io::Write;

use serde_json::{json, Value};

use super::table::Table;
use super::{json_text, object, sorted, yaml_text, Output, Query};
use crate::backend::{BackendError, BackendEvent, RequestKey};
use crate::cli::commands::verbs::VerbBackend;
use crate::cli::reference::kubectl_name;
use crate::domain::sanitize::inert;
use crate::domain::AccessRequest;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    Added,
    Modified,
    Deleted,
}

impl Change {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Change::Added => "ADDED",
            Change::Modified => "MODIFIED",
            Change::Deleted => "DELETED",
        }
    }
}

/// How `get -w` was asked to watch.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WatchOptions {
    /// `--watch-only`: no listing first.
    pub only: bool,
    /// `--output-watch-events`.
    pub events: bool,
}

/// Prints what `q` selects, then each change, to `out`; stream trouble
/// goes to `err` (one line each), and the watch goes on.
pub(crate) async fn watch(
    backend: &dyn VerbBackend,
    q: &Query,
    options: WatchOptions,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> Result<(), BackendError> {
    // Subscribed before listing, so nothing between the two is lost; what
    // the stream repeats of the listing is recognised and skipped.
    let mut events = backend.watch_requests();
    let listed = backend.list().await?;
    let mut printer = Printer {
        q,
        table: Table::new(q, options.events).watching(),
        events: options.events,
        header_done: q.no_headers,
    };
    let mut known: HashMap<RequestKey, AccessRequest> = HashMap::new();
    let mut shown: HashSet<RequestKey> = HashSet::new();
    let selected: Vec<AccessRequest> = listed.iter().filter(|r| q.selects(r)).cloned().collect();
    for r in listed {
        known.insert(RequestKey::of(&r), r);
    }
    let first = sorted(selected, q.sort_by.as_ref())?;
    for (r, _) in &first {
        shown.insert(RequestKey::of(r));
    }
    if !options.only {
        let text = printer.initial(&first, backend.now());
        write(out, &text)?;
    }
    let mut trouble: HashMap<String, String> = HashMap::new();
    while let Some(event) = events.recv().await {
        match event {
            BackendEvent::Upsert(r) => {
                let r = *r;
                if !q.view.is_empty() && !q.view.contains(&r.cluster) {
                    continue;
                }
                let key = RequestKey::of(&r);
                let before = known.insert(key.clone(), r.clone());
                if before.as_ref() == Some(&r) {
                    continue;
                }
                let selects = q.selects(&r);
                let was_shown = if selects {
                    !shown.insert(key)
                } else {
                    shown.remove(&key)
                };
                if selects || was_shown {
                    let change = if before.is_none() {
                        Change::Added
                    } else {
                        Change::Modified
                    };
                    let text = printer.change(&r, change, backend.now());
                    write(out, &text)?;
                }
            }
            BackendEvent::Removed(key) => {
                let last = known.remove(&key);
                if let (true, Some(r)) = (shown.remove(&key), last) {
                    let text = printer.change(&r, Change::Deleted, backend.now());
                    write(out, &text)?;
                }
            }
            BackendEvent::ClusterStatus { cluster, error } => {
                say_trouble(err, &mut trouble, &cluster, error)?;
            }
            BackendEvent::Connection { error } => {
                say_trouble(err, &mut trouble, "server", error)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// A stream that fails (or recovers) is said once on stderr.
fn say_trouble(
    err: &mut (dyn Write + Send),
    trouble: &mut HashMap<String, String>,
    source: &str,
    error: Option<String>,
) -> Result<(), BackendError> {
    match error {
        Some(e) => {
            if trouble.get(source) != Some(&e) {
                let line = format!("portcullis: {}\n", inert(&format!("{source}: {e}"), 2000));
                trouble.insert(source.to_string(), e);
                write(err, &line)?;
            }
        }
        None => {
            if trouble.remove(source).is_some() {
                let line = format!(
                    "portcullis: {}\n",
                    inert(&format!("{source}: watching again"), 200)
                );
                write(err, &line)?;
            }
        }
    }
    Ok(())
}

fn write(to: &mut (dyn Write + Send), text: &str) -> Result<(), BackendError> {
    to.write_all(text.as_bytes())
        .and_then(|_| to.flush())
        .map_err(|e| BackendError::Config(format!("cannot write the output: {e}")))
}

struct Printer<'q> {
    q: &'q Query,
    table: Table<'q>,
    events: bool,
    header_done: bool,
}

impl Printer<'_> {
    /// What is there now: a table (its widths kept for the rows to come),
    /// else each object on its own, as kubectl's watch prints them.
    fn initial(
        &mut self,
        items: &[(AccessRequest, Value)],
        now: chrono::DateTime<chrono::Utc>,
    ) -> String {
        if self.q.output.is_table() {
            if items.is_empty() {
                return String::new();
            }
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|(r, o)| self.table.cells(r, o, now, Some(Change::Added)))
                .collect();
            self.header_done = true;
            return self.table.layout(&rows);
        }
        items
            .iter()
            .map(|(r, o)| self.one(r, o, Change::Added))
            .collect()
    }

    fn change(
        &mut self,
        r: &AccessRequest,
        change: Change,
        now: chrono::DateTime<chrono::Utc>,
    ) -> String {
        let o = object(r);
        if self.q.output.is_table() {
            let row = self.table.cells(r, &o, now, Some(change));
            if !self.header_done {
                self.header_done = true;
                return self.table.layout(&[row]);
            }
            return self.table.row(&row);
        }
        self.one(r, &o, change)
    }

    /// One object in a non-table format.
    fn one(&self, r: &AccessRequest, o: &Value, change: Change) -> String {
        let wrapped = || json!({"type": change.as_str(), "object": o});
        match &self.q.output {
            Output::Name => {
                let name = kubectl_name(&r.cluster, &r.name, self.q.multi());
                if self.events {
                    format!("{}   {name}\n", change.as_str())
                } else {
                    name + "\n"
                }
            }
            Output::Json if self.events => json_text(&wrapped()),
            Output::Json => json_text(o),
            Output::Yaml if self.events => format!("---\n{}", yaml_text(&wrapped())),
            Output::Yaml => format!("---\n{}", yaml_text(o)),
            Output::JsonPath(t) if self.events => t.render(&wrapped()),
            Output::JsonPath(t) => t.render(o),
            _ => String::new(),
        }
    }
}
