//! The detail pane: who asks, why, what for, and exactly which permissions
//! a grant would add, grouped by namespace and resource with risk.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use super::{pane, severity_style, Theme};
use crate::app::state::{DiffGroup, Entry};
use crate::app::AppState;
use crate::domain::rbac::engine::Analysis;
use crate::domain::rbac::Scope;
use crate::domain::request::Verdict;
use crate::domain::sanitize::{field, inert};
use crate::domain::{duration, Phase, Severity};

/// How many requester-context items are listed before "and N more".
const CONTEXT_ITEMS: usize = 4;

fn kv<'a>(theme: &Theme, key: &'a str, value: impl Into<String>) -> Line<'a> {
    Line::from(vec![
        Span::styled(format!("{key:<10}"), theme.label),
        Span::styled(value.into(), theme.value),
    ])
}

fn ago(state: &AppState, at: chrono::DateTime<chrono::Utc>) -> String {
    format!("{} ago", duration::format_chrono(state.now - at))
}

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let Some(entry) = state.selected() else {
        let block = pane(
            Line::from(Span::styled(" Detail ", theme.title)),
            false,
            theme,
        );
        frame.render_widget(
            Paragraph::new(Span::styled("nothing selected", theme.dim)).block(block),
            area,
        );
        return;
    };
    let prod = state.is_production(&entry.req.cluster);
    let title = Line::from(vec![
        Span::styled(format!(" {} ", inert(&entry.req.name, 64)), theme.title),
        Span::styled(format!("on {} ", inert(&entry.req.cluster, 48)), theme.dim),
    ]);
    let block = pane(title, prod, theme);
    let width = block.inner(area).width;
    let mut lines = lines(state, entry, theme, width);
    // Every line takes at least one row, so lines past scroll + height are
    // never visible: don't make the paragraph wrap them.
    lines.truncate(state.detail_scroll as usize + area.height as usize);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false })
            .scroll((state.detail_scroll, 0)),
        area,
    );
}

fn lines<'a>(state: &'a AppState, entry: &'a Entry, theme: &Theme, width: u16) -> Vec<Line<'a>> {
    let r = &entry.req;
    let detail = state
        .detail
        .as_ref()
        .filter(|d| d.key.name == r.name && d.key.cluster == r.cluster);
    let analysis = detail.map(|d| &d.analysis);
    let resolve = |keys: Option<&'a Vec<crate::backend::RequestKey>>| -> Vec<&'a crate::domain::AccessRequest> {
        keys.into_iter().flatten().filter_map(|k| state.entries.get(k)).map(|e| &e.req).collect()
    };
    let mut out = Vec::new();
    let groups: Vec<String> = r
        .requester
        .groups
        .iter()
        .map(|g| inert(g, 64).into_owned())
        .collect();
    out.push(Line::from(vec![
        Span::styled(format!("{:<10}", "Requester"), theme.label),
        Span::styled(inert(&r.requester.user, 64).into_owned(), theme.title),
        Span::styled(
            format!(
                "  groups: {}",
                if groups.is_empty() {
                    "none".into()
                } else {
                    groups.join(", ")
                }
            ),
            theme.value,
        ),
    ]));
    if let Some((_, held_if_true)) = detail.and_then(|d| d.claimed.as_ref()) {
        let if_true = match held_if_true {
            0 => String::new(),
            n => format!("; if true, {n} of the new permissions are already held"),
        };
        out.push(Line::from(Span::styled(
            format!("          groups are claimed, not verified: never counted as held{if_true}"),
            theme.dim,
        )));
    }
    if r.requester.user == state.approver.user {
        out.push(Line::from(Span::styled(
            "          this is your own request: someone else must approve it",
            theme.high,
        )));
    }
    if let Some(Ok(a)) = analysis {
        out.push(kv(theme, "Standing", standing(a)));
    }
    let live: Vec<String> = resolve(detail.map(|d| &d.live))
        .into_iter()
        .map(|x| {
            let scope = match x.granted_namespaces() {
                [] => "cluster-wide".to_string(),
                ns => format!(
                    "in {}",
                    ns.iter()
                        .map(|n| inert(n, 64).into_owned())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            format!(
                "{} {scope} on {} ({} left)",
                inert(&x.role.name, 32),
                inert(&x.cluster, 32),
                duration::format(x.remaining(state.now))
            )
        })
        .collect();
    out.push(kv(
        theme,
        "Live",
        if live.is_empty() {
            "no live grants".into()
        } else {
            capped(live)
        },
    ));
    let past: Vec<String> = resolve(detail.map(|d| &d.past))
        .into_iter()
        .map(|x| {
            let why = x.status.revoke_reason.as_deref().or_else(|| {
                x.status
                    .decision
                    .as_ref()
                    .filter(|d| d.verdict == Verdict::Denied)
                    .and_then(|d| d.reason.as_deref())
            });
            format!(
                "{} {} ({}){}",
                x.phase(),
                inert(&x.role.name, 32),
                ago(state, x.created_at),
                why.map(|w| format!(": \"{}\"", inert(w, 60)))
                    .unwrap_or_default()
            )
        })
        .collect();
    out.push(kv(
        theme,
        "Past",
        if past.is_empty() {
            "first request".into()
        } else {
            past.join("; ")
        },
    ));
    out.push(Line::raw(""));
    let agg = matches!(analysis, Some(Ok(a)) if a.aggregated);
    out.push(Line::from(vec![
        Span::styled(format!("{:<10}", "Role"), theme.label),
        Span::styled(
            format!("{} {}", r.role.kind, inert(&r.role.name, 64)),
            theme.value,
        ),
        Span::styled(
            if agg {
                "  aggregated: can grow when new CRDs install"
            } else {
                ""
            },
            theme.medium,
        ),
    ]));
    out.push(kv(theme, "Scope", scope_text(&r.namespaces)));
    out.push(kv(
        theme,
        "Duration",
        format!(
            "{} (the clock starts at approval)",
            duration::format(r.duration)
        ),
    ));
    if let Some(of) = &r.extends {
        out.push(extension_line(state, r, of, theme));
    }
    if let Some(t) = &r.ticket {
        out.push(kv(theme, "Ticket", field(t).into_owned()));
    }
    out.push(kv(theme, "Reason", inert(&r.reason, 600).into_owned()));
    if r.credentials == crate::domain::Credentials::Token {
        out.push(kv(theme, "Creds", "Token: a per-grant ServiceAccount"));
    }
    out.push(status_line(state, entry, theme));
    policy_lines(
        state,
        entry,
        detail.and_then(|d| d.verdict.as_ref()),
        theme,
        &mut out,
    );
    // After a revoke or expiry the cluster backend records what the
    // apiserver said about the ended grant: auditors read it here.
    if matches!(r.phase(), Phase::Revoked | Phase::Expired) && r.status.decision.is_some() {
        if let Some(m) = r.status.message.as_deref() {
            out.push(kv(theme, "Verified", inert(m, 600).into_owned()));
        }
    }
    if let Some(why) = &entry.invalid {
        out.push(Line::from(vec![
            Span::styled(format!("{:<10}", "Invalid"), theme.invalid),
            Span::styled(
                format!("{} — it can only be denied", inert(why, 200)),
                theme.invalid,
            ),
        ]));
    }
    out.push(Line::raw(""));
    let skipped = state
        .inventories
        .get(&r.cluster)
        .map_or(&[][..], |inv| &inv.skipped[..]);
    match analysis {
        Some(Ok(a)) => diff_lines(
            a,
            detail.map_or(&[][..], |d| &d.diff),
            skipped,
            theme,
            width,
            &mut out,
        ),
        Some(Err(e)) => out.push(Line::from(Span::styled(
            format!("RBAC diff unavailable: {}", inert(e, 200)),
            theme.invalid,
        ))),
        None => {}
    }
    out
}

fn capped(mut items: Vec<String>) -> String {
    let more = items.len().saturating_sub(CONTEXT_ITEMS);
    items.truncate(CONTEXT_ITEMS);
    let mut s = items.join("; ");
    if more > 0 {
        s.push_str(&format!("; and {more} more"));
    }
    s
}

fn scope_text(namespaces: &[String]) -> String {
    if namespaces.is_empty() {
        "cluster-wide (every namespace and cluster-scoped resources)".into()
    } else {
        namespaces
            .iter()
            .map(|n| inert(n, 64).into_owned())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn standing(a: &Analysis) -> String {
    let own: Vec<String> = a
        .standing
        .iter()
        .filter(|s| !s.system && !s.live_grant)
        .map(|s| match &s.scope {
            Scope::Cluster => format!(
                "{} cluster-wide ({})",
                inert(&s.role, 48),
                inert(&s.through, 64)
            ),
            Scope::Namespace(ns) => format!(
                "{} in {} ({})",
                inert(&s.role, 48),
                inert(ns, 64),
                inert(&s.through, 64)
            ),
        })
        .collect();
    let system = a.standing.iter().filter(|s| s.system).count();
    let mut text = if own.is_empty() {
        "nothing beyond the defaults".to_string()
    } else {
        capped(own)
    };
    if system > 0 {
        text.push_str(&format!(" (+{system} built-in system bindings)"));
    }
    text
}

/// What an extension extends: the live grant with the time already used,
/// or — when the grant it names is not the requester's live grant — why
/// it is not (the name is the requester's own text).
fn extension_line<'a>(
    state: &AppState,
    r: &crate::domain::AccessRequest,
    of: &str,
    theme: &Theme,
) -> Line<'a> {
    let key = crate::backend::RequestKey {
        cluster: r.cluster.clone(),
        name: of.to_string(),
    };
    let live = state.entries.get(&key).map(|e| &e.req);
    let checked = match live {
        Some(live) => r.check_extends(live).map(|()| live),
        None => Err(crate::domain::ExtensionError::Unknown(of.to_string())),
    };
    match checked {
        Ok(live) => {
            let used = live
                .status
                .granted_at
                .map(|at| duration::format_chrono(state.now - at))
                .unwrap_or_default();
            let asked = live
                .status
                .decision
                .as_ref()
                .and_then(|d| d.duration)
                .map(duration::format)
                .unwrap_or_default();
            kv(
                theme,
                "Extends",
                format!(
                    "{}: live, {used} of {asked} used, {} left; approving adds a grant of {} from approval",
                    inert(of, 63),
                    duration::format(live.remaining(state.now)),
                    duration::format(r.duration)
                ),
            )
        }
        Err(why) => Line::from(vec![
            Span::styled(format!("{:<10}", "Extends"), theme.label),
            Span::styled(
                format!(
                    "not a live grant of theirs: {}",
                    inert(&why.to_string(), 200)
                ),
                theme.high,
            ),
        ]),
    }
}

fn status_line<'a>(state: &AppState, entry: &Entry, theme: &Theme) -> Line<'a> {
    let r = &entry.req;
    let decision = r.status.decision.as_ref();
    let text = match r.phase() {
        Phase::Pending => format!(
            "Pending for {}",
            duration::format_chrono(state.now - r.created_at)
        ),
        Phase::Active => {
            let d = decision
                .map(|d| format!(", approved by {} {}", inert(&d.by, 32), ago(state, d.at)))
                .unwrap_or_default();
            let narrowed = decision
                .filter(|d| {
                    d.duration.is_some_and(|x| x < r.duration)
                        || d.namespaces.len() < r.namespaces.len()
                })
                .map(|d| {
                    format!(
                        " — granted {} in {} (asked {})",
                        d.duration.map(duration::format).unwrap_or_default(),
                        scope_text(&d.namespaces),
                        duration::format(r.duration)
                    )
                })
                .unwrap_or_default();
            format!(
                "Live: {} left{d}{narrowed}",
                duration::format(r.remaining(state.now))
            )
        }
        phase => {
            let by = r
                .status
                .revoked_by
                .as_deref()
                .or(decision.map(|d| d.by.as_str()))
                .map(|b| format!(" by {}", inert(b, 32)))
                .unwrap_or_default();
            let when = r
                .status
                .ended_at
                .map(|t| format!(" {}", ago(state, t)))
                .unwrap_or_default();
            let why = r
                .status
                .revoke_reason
                .as_deref()
                .or(decision
                    .filter(|d| d.verdict == Verdict::Denied)
                    .and_then(|d| d.reason.as_deref()))
                .or(r
                    .status
                    .message
                    .as_deref()
                    .filter(|_| decision.is_none() || r.phase() == Phase::Failed))
                .map(|w| format!(": \"{}\"", inert(w, 200)))
                .unwrap_or_default();
            let granted = decision
                .filter(|d| d.verdict == Verdict::Approved)
                .map(|d| {
                    format!(
                        " (was approved by {} for {} in {})",
                        inert(&d.by, 32),
                        d.duration.map(duration::format).unwrap_or_default(),
                        scope_text(&d.namespaces)
                    )
                })
                .unwrap_or_default();
            format!("{phase}{by}{when}{why}{granted}")
        }
    };
    Line::from(vec![
        Span::styled(format!("{:<10}", "Status"), theme.label),
        Span::styled(text, theme.notice),
    ])
}

/// The policy's verdict and why (marked advisory when only this console
/// evaluated it), and the approvals so far against those needed.
fn policy_lines<'a>(
    state: &AppState,
    entry: &Entry,
    verdict: Option<&(std::sync::Arc<crate::policy::Decision>, bool)>,
    theme: &Theme,
    out: &mut Vec<Line<'a>>,
) {
    let r = &entry.req;
    let approvals = r.approvals();
    if let Some((d, advisory)) = verdict {
        let tag = if *advisory { " (advisory)" } else { "" };
        let style = if d.allowed() {
            theme.value
        } else {
            theme.error
        };
        out.push(Line::from(vec![
            Span::styled(format!("{:<10}", "Policy"), theme.label),
            Span::styled(format!("{}{tag}", inert(&d.summary(), 300)), style),
        ]));
        for m in &d.messages {
            out.push(Line::from(Span::styled(
                format!("          {}", inert(m, 300)),
                theme.dim,
            )));
        }
        if r.phase() == crate::domain::Phase::Pending && d.allowed() {
            let may: Vec<String> = d
                .approvers
                .iter()
                .map(|a| inert(&a.describe(), 64).into_owned())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let who = if may.is_empty() {
                String::new()
            } else {
                format!("; may approve: {}", may.join(", "))
            };
            let mine = match d.may_approve(&state.approver) {
                Ok(()) => String::new(),
                Err(_) => " — not you".into(),
            };
            out.push(kv(
                theme,
                "Approvals",
                format!(
                    "{} of {}{}{who}{mine}",
                    approvals.len(),
                    d.approvals_required,
                    if approvals.is_empty() {
                        String::new()
                    } else {
                        format!(
                            ": {}",
                            approvals
                                .iter()
                                .map(|a| inert(a, 32).into_owned())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    }
                ),
            ));
        }
    } else if !approvals.is_empty() && r.phase() == crate::domain::Phase::Pending {
        out.push(kv(
            theme,
            "Approvals",
            format!(
                "{} so far: {}",
                approvals.len(),
                inert(&approvals.join(", "), 200)
            ),
        ));
    }
}

/// New permissions grouped by scope, then resource, with verbs and the worst risk.
fn diff_lines<'a>(
    a: &Analysis,
    groups: &'a [DiffGroup],
    skipped: &[String],
    theme: &Theme,
    width: u16,
    out: &mut Vec<Line<'a>>,
) {
    // Wide panes show why on the same line; narrow ones on the next.
    let inline_why = width >= 110;
    let res_w = if inline_why {
        26
    } else {
        (width as usize).saturating_sub(20).clamp(12, 26)
    };
    let crit = a.count_at_least(Severity::Critical);
    let high = a.count_at_least(Severity::High) - crit;
    out.push(Line::from(vec![
        Span::styled("NEW PERMISSIONS ", theme.title),
        Span::styled(
            format!(
                "{} new · {crit} critical · {high} high · {} of {} asked already held",
                a.new.len(),
                a.already.len(),
                a.granted.len()
            ),
            theme.value,
        ),
    ]));
    if a.privileged {
        out.push(Line::from(Span::styled(
            "  in system:masters: the apiserver already allows them everything, whatever the bindings",
            theme.high,
        )));
    }
    if a.other_live_grants > 0 {
        out.push(Line::from(Span::styled(
            "  their other live grants are not counted as already held: those end on their own",
            theme.dim,
        )));
    }
    if let Some(first) = skipped.first() {
        out.push(Line::from(Span::styled(
            format!(
                "  {} RBAC objects could not be read and are not counted, so \"already held\" may be short (first: {})",
                skipped.len(),
                inert(first, 120)
            ),
            theme.medium,
        )));
    }
    if a.new.is_empty() {
        out.push(Line::from(Span::styled(
            "  nothing new: the requester already has all of it",
            theme.ok,
        )));
        return;
    }
    for group in groups {
        out.push(Line::from(Span::styled(
            group.scope.to_string(),
            theme.column_header,
        )));
        for row in &group.rows {
            let mut spans = vec![
                Span::raw("  "),
                Span::styled(
                    format!("{:<4}", row.risk.severity.badge()),
                    severity_style(theme, row.risk.severity),
                ),
                Span::raw(" "),
                Span::styled(
                    format!("{:<res_w$} ", inert(&row.resource, 60)),
                    theme.value,
                ),
                // Padding only when something follows on the line: trailing
                // spaces would wrap into blank rows in a narrow pane.
                Span::styled(
                    if inline_why {
                        format!("{:<24} ", row.verbs)
                    } else {
                        row.verbs.clone()
                    },
                    theme.value,
                ),
            ];
            if inline_why {
                spans.push(Span::styled(row.risk.why, theme.dim));
                out.push(Line::from(spans));
            } else if row.risk.severity == Severity::Info {
                // "read-only" under every INFO row is noise: the badge says it.
                out.push(Line::from(spans));
            } else {
                out.push(Line::from(spans));
                out.push(Line::from(Span::styled(
                    format!("       {}", row.risk.why),
                    theme.dim,
                )));
            }
        }
        for note in &group.notes {
            out.push(Line::from(Span::styled(
                format!("  note: {note}"),
                theme.dim,
            )));
        }
    }
}
