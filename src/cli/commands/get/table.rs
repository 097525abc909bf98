//! The tables of `get` (default, `-o wide`, `-o custom-columns`): kubectl's
//! layout — upper-case headers, columns three spaces apart, requester text
//! made inert and bounded.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::output::Output;
use super::watch::Change;
use super::Query;
use crate::cli::args::GetWhat;
use crate::domain::sanitize::inert;
use crate::domain::{duration, AccessRequest};

/// The widest a custom column's value prints.
const CELL_MAX: usize = 200;

pub(super) struct Table<'q> {
    q: &'q Query,
    /// With `--output-watch-events`: an EVENT column first.
    events: bool,
    /// The columns so far (rows printed later keep them aligned).
    printer: crate::cli::table::Table,
}

impl<'q> Table<'q> {
    pub(super) fn new(q: &'q Query, events: bool) -> Self {
        Self {
            q,
            events,
            printer: crate::cli::table::Table::new(3),
        }
    }

    pub(super) fn headers(&self) -> Vec<String> {
        let mut h: Vec<String> = Vec::new();
        if self.events {
            h.push("EVENT".into());
        }
        if let Output::CustomColumns(cols) = &self.q.output {
            h.extend(cols.iter().map(|c| c.header.to_uppercase()));
            return h;
        }
        if self.q.multi() {
            h.push("CLUSTER".into());
        }
        let last = match self.q.what {
            GetWhat::Requests => "AGE",
            GetWhat::Grants => "LEFT",
        };
        h.extend(
            [
                "NAME",
                "REQUESTER",
                "ROLE",
                "NAMESPACES",
                "DURATION",
                "PHASE",
                last,
            ]
            .map(String::from),
        );
        if self.q.output == Output::Wide {
            h.extend(["TICKET", "APPROVER", "REASON"].map(String::from));
        }
        h
    }

    /// One row; `change` is the watch event that printed it (a deleted
    /// request's PHASE says Deleted).
    pub(super) fn cells(
        &self,
        r: &AccessRequest,
        object: &Value,
        now: DateTime<Utc>,
        change: Option<Change>,
    ) -> Vec<String> {
        let mut row = Vec::new();
        if self.events {
            row.push(change.unwrap_or(Change::Added).as_str().to_string());
        }
        if let Output::CustomColumns(cols) = &self.q.output {
            for c in cols {
                let found = c.path.eval(object);
                // Nothing there, or only empty lists (a cluster-wide
                // request's namespaces), reads as kubectl's <none>.
                let empty = found
                    .iter()
                    .all(|v| v.as_array().is_some_and(|a| a.is_empty()));
                row.push(if empty {
                    "<none>".into()
                } else {
                    // A list of plain values reads as a,b (as kubectl's
                    // `.spec.namespaces[*]` would), not as JSON.
                    let shown: Vec<String> = found
                        .into_iter()
                        .map(|v| match v {
                            Value::Array(items)
                                if items.iter().all(|i| !i.is_object() && !i.is_array()) =>
                            {
                                items
                                    .iter()
                                    .map(super::jsonpath::show)
                                    .collect::<Vec<_>>()
                                    .join(",")
                            }
                            v => super::jsonpath::show(v),
                        })
                        .collect();
                    inert(&shown.join(","), CELL_MAX).into_owned()
                });
            }
            return row;
        }
        if self.q.multi() {
            row.push(inert(&r.cluster, 64).into_owned());
        }
        let phase = if change == Some(Change::Deleted) {
            "Deleted".to_string()
        } else if r.malformed.is_some() {
            "Invalid".into()
        } else {
            r.phase().to_string()
        };
        row.extend([
            inert(&r.name, 64).into_owned(),
            inert(&r.requester.user, 32).into_owned(),
            inert(&r.role.name, 40).into_owned(),
            inert(
                &crate::domain::request::scope_text(r.granted_namespaces()),
                60,
            )
            .into_owned(),
            duration::format(r.granted_duration()),
            phase,
            match self.q.what {
                GetWhat::Requests => duration::format_chrono(now - r.created_at),
                GetWhat::Grants => duration::format(r.remaining(now)),
            },
        ]);
        if self.q.output == Output::Wide {
            let approver = r
                .status
                .decision
                .as_ref()
                .map(|d| d.by.as_str())
                .unwrap_or("<none>");
            row.extend([
                inert(r.ticket.as_deref().unwrap_or("<none>"), 32).into_owned(),
                inert(approver, 32).into_owned(),
                inert(&r.reason, 60).into_owned(),
            ]);
        }
        row
    }

    /// The header (unless `--no-headers`) and `rows`, aligned.
    pub(super) fn layout(&mut self, rows: &[Vec<String>]) -> String {
        let header = (!self.q.no_headers).then(|| self.headers());
        for r in header.iter().chain(rows) {
            self.printer.grow(r);
        }
        header
            .iter()
            .chain(rows)
            .map(|r| self.printer.line(r))
            .collect()
    }

    /// Watching: room for the longest event and phase from the start, so
    /// the rows that follow line up with the first ones.
    pub(super) fn watching(mut self) -> Self {
        let headers = self.headers();
        self.printer = crate::cli::table::Table::new(3).at_least(
            headers
                .iter()
                .map(|h| match h.as_str() {
                    "EVENT" => "MODIFIED".len(),
                    "PHASE" => "Withdrawn".len(),
                    h => h.len(),
                })
                .collect(),
        );
        self
    }

    /// One more row under what was laid out (columns only ever widen).
    pub(super) fn row(&mut self, row: &[String]) -> String {
        self.printer.grow(row);
        self.printer.line(row)
    }
}
