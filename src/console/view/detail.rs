//! The detail pane, decision first: the verdict in plain words, what the
//! approver should not miss (flags), the reason and ticket, then the new
//! permissions worst first (low-risk reads folded into one line per scope
//! until `x`); who they are, what they hold, their live
//! grants and past requests follow. At 80×24 the verdict, the reason and
//! the worst permissions show without a key.
//!
//! Lines are wrapped here, not by the paragraph, so the pane knows its
//! height and scrolling stops at the end.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::{pane, severity_style, wrap, Theme};
use crate::console::state::app::{Detail, DiffGroup, DiffRow, Entry};
use crate::console::state::verdict::{self, Part, Tone};
use crate::console::state::{when, AppState};
use crate::domain::rbac::engine::Analysis;
use crate::domain::rbac::Scope;
use crate::domain::request::Verdict;
use crate::domain::sanitize::{field, inert};
use crate::domain::{duration, Phase, Severity};

/// How many requester-context items are listed before "and N more".
const CONTEXT_ITEMS: usize = crate::console::state::app::CONTEXT_SHOWN;
/// Labels are this wide; wrapped values hang under their start.
const LABEL: usize = 10;
/// Rows a reason may take in the pane.
const REASON_ROWS: usize = 3;
/// Rows a flag may take in the pane.
const FLAG_ROWS: usize = 2;

fn kv(theme: &Theme, key: &str, value: impl Into<String>) -> Line<'static> {
    // A label as wide as the column still gets its space: never
    // "Other livewebhook-admin".
    let label = if key.chars().count() >= LABEL {
        format!("{key} ")
    } else {
        format!("{key:<LABEL$}")
    };
    Line::from(vec![
        Span::styled(label, theme.label),
        Span::styled(value.into(), theme.value),
    ])
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
        Span::styled(
            format!("on {} ", inert(state.cluster_label(&entry.req.cluster), 48)),
            theme.dim,
        ),
    ]);
    let block = pane(title, prod, theme);
    let inner = block.inner(area);
    let lines = lines(state, &entry, theme, inner.width);
    let most = lines.len().saturating_sub(inner.height as usize);
    let scroll = (state.detail_scroll() as usize).min(most);
    let mut shown: Vec<Line> = lines
        .into_iter()
        .skip(scroll)
        .take(inner.height as usize)
        .collect();
    if scroll < most && !shown.is_empty() {
        // More below: say so on the last row, so nobody decides on half.
        let last = shown.len() - 1;
        shown[last] = Line::from(Span::styled(
            format!(
                "  ↓ {} more lines: J scrolls, enter shows it all",
                most - scroll + 1
            ),
            theme.dim,
        ));
    }
    frame.render_widget(Paragraph::new(shown).block(block), area);
}

/// The verdict's parts, styled.
pub fn verdict_line(parts: &[Part], theme: &Theme) -> Line<'static> {
    Line::from(
        parts
            .iter()
            .map(|p| {
                let style = match p.tone {
                    Tone::Risk(s) => severity_style(theme, s),
                    Tone::Nothing => theme.dim,
                    Tone::Invalid => theme.invalid,
                    Tone::Live => theme.ok,
                    Tone::Ended => theme.title,
                    Tone::Prod => theme.badge_prod,
                    Tone::Strong => theme.title,
                    Tone::Text => theme.value,
                    Tone::Warn => theme.high,
                };
                Span::styled(p.text.clone(), style)
            })
            .collect::<Vec<_>>(),
    )
}

/// Every line of the pane, wrapped to `width`.
pub fn lines(state: &AppState, entry: &Entry, theme: &Theme, width: u16) -> Vec<Line<'static>> {
    lines_with(state, entry, theme, width, false)
}

/// As [`lines`]; `whole` gives every new permission's why in full (the
/// full view).
pub fn lines_with(
    state: &AppState,
    entry: &Entry,
    theme: &Theme,
    width: u16,
    whole: bool,
) -> Vec<Line<'static>> {
    let w = width as usize;
    let r = &entry.req;
    let detail = state
        .detail
        .as_ref()
        .filter(|d| d.key.name == r.name && d.key.cluster == r.cluster);
    let mut out: Vec<Line<'static>> = Vec::new();

    // The verdict, then what not to miss.
    push_wrapped(
        &mut out,
        verdict_line(&verdict::verdict(state, entry), theme),
        w,
        0,
    );
    flag_lines(detail, theme, w, whole, &mut out);
    policy_and_extension_lines(state, entry, detail, theme, w, &mut out);
    reason_lines(r, theme, w, whole, &mut out);
    permission_lines(state, r, detail, theme, w, whole, &mut out);
    requester_lines(state, r, detail, theme, w, &mut out);
    out
}

/// Adds `line` to `out`, wrapped to `w` with a hanging `indent`.
fn push_wrapped(out: &mut Vec<Line<'static>>, line: Line<'static>, w: usize, indent: usize) {
    out.extend(wrap::wrap_line(&line, w, indent));
}

/// What not to miss: the flags, and groups that are only claimed.
fn flag_lines(
    detail: Option<&Detail>,
    theme: &Theme,
    w: usize,
    whole: bool,
    out: &mut Vec<Line<'static>>,
) {
    // At most two rows each in the pane (the full view has them whole).
    for flag in detail.map(|d| d.flags.as_slice()).unwrap_or_default() {
        let line = Line::from(Span::styled(format!("⚠ {}", inert(flag, 400)), theme.high));
        let mut rows = wrap::wrap_line(&line, w, 2);
        if !whole && rows.len() > FLAG_ROWS {
            rows.truncate(FLAG_ROWS);
            cut_last(&mut rows, w, theme.high);
        }
        out.extend(rows);
    }
    if let Some((_, held_if_true)) = detail.and_then(|d| d.claimed.as_ref()) {
        let if_true = match held_if_true {
            0 => String::new(),
            n => format!("; if true, {n} of the new permissions are already held"),
        };
        push_wrapped(
            out,
            Line::from(Span::styled(
                format!("⚠ groups are claimed, not verified: never counted as held{if_true}"),
                theme.medium,
            )),
            w,
            2,
        );
    }
}

/// The policy's verdict, and what an extension extends.
fn policy_and_extension_lines(
    state: &AppState,
    entry: &Entry,
    detail: Option<&Detail>,
    theme: &Theme,
    w: usize,
    out: &mut Vec<Line<'static>>,
) {
    let r = &entry.req;
    let mut policy = Vec::new();
    policy_lines(
        state,
        entry,
        detail.and_then(|d| d.verdict.as_ref()),
        theme,
        &mut policy,
    );
    if let Some(of) = &r.extends {
        policy.push(extension_line(state, r, of, theme));
    }
    for line in policy {
        push_wrapped(out, line, w, LABEL);
    }
}

/// The reason and the ticket.
fn reason_lines(
    r: &crate::domain::AccessRequest,
    theme: &Theme,
    w: usize,
    whole: bool,
    out: &mut Vec<Line<'static>>,
) {
    let reason = inert(&r.reason, 1024).into_owned();
    let ticket = r
        .ticket
        .as_deref()
        .map(|t| field(t).into_owned())
        .filter(|t| !t.is_empty());
    let mut spans = vec![
        Span::styled(format!("{:<LABEL$}", "Reason"), theme.label),
        Span::styled(reason.clone(), theme.value),
    ];
    if let Some(t) = ticket.as_ref().filter(|t| !reason.contains(t.as_str())) {
        spans.push(Span::styled(format!("  ticket {t}"), theme.label));
    }
    // A long reason takes at most three rows here; the full view has it all.
    let mut rows = wrap::wrap_line(&Line::from(spans), w, LABEL);
    if !whole && rows.len() > REASON_ROWS {
        rows.truncate(REASON_ROWS);
        cut_last(&mut rows, w, theme.value);
    }
    out.extend(rows);
}

/// The new permissions, worst first.
fn permission_lines(
    state: &AppState,
    r: &crate::domain::AccessRequest,
    detail: Option<&Detail>,
    theme: &Theme,
    w: usize,
    whole: bool,
    out: &mut Vec<Line<'static>>,
) {
    let analysis = detail.map(|d| &d.analysis);
    let skipped = state
        .inventories
        .get(&r.cluster)
        .map_or(&[][..], |inv| &inv.skipped[..]);
    match analysis {
        Some(Ok(a)) => {
            let groups = detail.map_or(&[][..], |d| &d.diff);
            let reads = if whole || state.reads_expanded {
                Reads::Listed
            } else {
                Reads::Folded
            };
            for line in diff_lines_with(a, groups, skipped, theme, w, whole, reads) {
                push_wrapped(out, line, w, 2);
            }
        }
        Some(Err(e)) => push_wrapped(
            out,
            Line::from(Span::styled(
                format!("RBAC diff unavailable: {}", inert(e, 200)),
                theme.invalid,
            )),
            w,
            2,
        ),
        None => {}
    }
}

/// Who they are, and what they hold and did.
fn requester_lines(
    state: &AppState,
    r: &crate::domain::AccessRequest,
    detail: Option<&Detail>,
    theme: &Theme,
    w: usize,
    out: &mut Vec<Line<'static>>,
) {
    let analysis = detail.map(|d| &d.analysis);
    out.push(Line::raw(""));
    push_wrapped(out, requester_line(r, theme), w, LABEL);
    if let Some(Ok(a)) = analysis {
        push_wrapped(out, kv(theme, "Standing", standing(a)), w, LABEL);
    }
    push_wrapped(out, live_line(state, r, detail, theme), w, LABEL);
    push_wrapped(out, past_line(state, detail, theme), w, LABEL);
    push_wrapped(out, role_line(r, analysis, theme), w, LABEL);
    if r.credentials == crate::domain::Credentials::Token {
        push_wrapped(
            out,
            kv(theme, "Creds", "Token: a per-grant ServiceAccount"),
            w,
            LABEL,
        );
    }
    push_wrapped(out, asked_line(state, r, theme), w, LABEL);
    // After a revoke or expiry the cluster backend records what the
    // apiserver said about the ended grant: auditors read it here.
    if matches!(r.phase(), Phase::Revoked | Phase::Released | Phase::Expired)
        && r.status.decision.is_some()
    {
        if let Some(m) = r.status.message.as_deref() {
            push_wrapped(
                out,
                kv(theme, "Verified", inert(m, 600).into_owned()),
                w,
                LABEL,
            );
        }
    }
}

/// The requester: their name and groups.
fn requester_line(r: &crate::domain::AccessRequest, theme: &Theme) -> Line<'static> {
    let groups: Vec<String> = r
        .requester
        .groups
        .iter()
        .map(|g| inert(g, 64).into_owned())
        .collect();
    Line::from(vec![
        Span::styled(format!("{:<LABEL$}", "Requester"), theme.label),
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
    ])
}

/// The requests `keys` name that are still in the store.
fn resolve(
    state: &AppState,
    keys: Option<&[crate::backend::RequestKey]>,
) -> Vec<crate::domain::AccessRequest> {
    keys.into_iter()
        .flatten()
        .filter_map(|k| state.entries.get(k))
        .map(|e| e.into_owned().req)
        .collect()
}

/// Their (other) live grants: role, scope, cluster, end and time left.
fn live_line(
    state: &AppState,
    r: &crate::domain::AccessRequest,
    detail: Option<&Detail>,
    theme: &Theme,
) -> Line<'static> {
    let zone = state.config.zone;
    let live: Vec<String> = resolve(state, detail.map(|d| d.live.as_slice()))
        .into_iter()
        .map(|x| {
            format!(
                "{} {} on {}, ends {} ({})",
                inert(&x.role.name, 32),
                verdict::scope_words(x.granted_namespaces()),
                inert(&x.cluster, 32),
                x.status
                    .expires_at
                    .map(|t| when::clock(zone, state.now, t))
                    .unwrap_or_default(),
                duration::format(x.remaining(state.now)) + " left"
            )
        })
        .collect();
    let other = if r.phase() == Phase::Active {
        "Other live"
    } else {
        "Live"
    };
    kv(
        theme,
        other,
        if live.is_empty() {
            if r.phase() == Phase::Active {
                "no other live grants".to_string()
            } else {
                "no live grants".to_string()
            }
        } else {
            capped(live, detail.map_or(0, |d| d.live_total))
        },
    )
}

/// Their past requests: outcome, role, when, and why where one was given.
fn past_line(state: &AppState, detail: Option<&Detail>, theme: &Theme) -> Line<'static> {
    let past: Vec<String> = resolve(state, detail.map(|d| d.past.as_slice()))
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
                "{} {} {}{}",
                x.phase(),
                inert(&x.role.name, 32),
                when::ago(state.now, crate::console::state::app::ended_at(&x)),
                why.map(|w| format!(": \"{}\"", inert(w, 60)))
                    .unwrap_or_default()
            )
        })
        .collect();
    kv(
        theme,
        "Past",
        if past.is_empty() {
            "no earlier requests".into()
        } else {
            past.join("; ")
        },
    )
}

/// The role asked for, and whether it is aggregated (it can grow).
fn role_line(
    r: &crate::domain::AccessRequest,
    analysis: Option<&Result<std::sync::Arc<Analysis>, String>>,
    theme: &Theme,
) -> Line<'static> {
    let agg = matches!(analysis, Some(Ok(a)) if a.aggregated);
    Line::from(vec![
        Span::styled(format!("{:<LABEL$}", "Role"), theme.label),
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
    ])
}

/// When it was asked, and for how long.
fn asked_line(state: &AppState, r: &crate::domain::AccessRequest, theme: &Theme) -> Line<'static> {
    let zone = state.config.zone;
    kv(
        theme,
        "Asked",
        format!(
            "{} ({}) for {}",
            when::clock(zone, state.now, r.created_at),
            when::ago(state.now, r.created_at),
            duration::format(r.duration)
        ),
    )
}

/// What an extension extends: the live grant with the time already used,
/// or — when the grant it names is not the requester's live grant — why
/// it is not (the name is the requester's own text).
fn extension_line(
    state: &AppState,
    r: &crate::domain::AccessRequest,
    of: &str,
    theme: &Theme,
) -> Line<'static> {
    let key = crate::backend::RequestKey {
        cluster: r.cluster.clone(),
        name: of.to_string(),
    };
    let live = state.entries.get(&key);
    let live = live.as_ref().map(|e| &e.req);
    let checked = match live {
        Some(live) => r.check_extends(live).map(|()| live),
        None => Err(crate::domain::ExtensionError::Unknown(of.to_string())),
    };
    match checked {
        Ok(live) => {
            let used = live
                .status
                .granted_at
                .map(|at| when::age(state.now - at))
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
            Span::styled(format!("{:<LABEL$}", "Extends"), theme.label),
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

/// The policy's verdict and why (marked advisory when only this console
/// evaluated it), and the approvals so far against those needed.
fn policy_lines(
    state: &AppState,
    entry: &Entry,
    verdict: Option<&(std::sync::Arc<crate::policy::Decision>, bool)>,
    theme: &Theme,
    out: &mut Vec<Line<'static>>,
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
            Span::styled(format!("{:<LABEL$}", "Policy"), theme.label),
            Span::styled(format!("{}{tag}", inert(&d.summary(), 300)), style),
        ]));
        for m in &d.messages {
            out.push(Line::from(Span::styled(
                format!("{:LABEL$}{}", "", inert(m, 300)),
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

/// Ends the last of `rows` in `…`: more was there.
fn cut_last(rows: &mut Vec<Line<'static>>, width: usize, style: ratatui::style::Style) {
    if let Some(last) = rows.pop() {
        let text: String = last.spans.iter().map(|s| s.content.as_ref()).collect();
        let kept = wrap::cut(&text, width.saturating_sub(1)).into_owned();
        rows.push(Line::from(Span::styled(
            format!("{}…", kept.trim_end_matches('…')),
            style,
        )));
    }
}

/// The first items, and how many more of `total` there are.
fn capped(mut items: Vec<String>, total: usize) -> String {
    let more = total
        .max(items.len())
        .saturating_sub(CONTEXT_ITEMS.min(items.len()));
    items.truncate(CONTEXT_ITEMS);
    let mut s = items.join("; ");
    if more > 0 {
        s.push_str(&format!("; and {more} more"));
    }
    s
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
        let n = own.len();
        capped(own, n)
    };
    if system > 0 {
        text.push_str(&format!(" (+{system} built-in system bindings)"));
    }
    text
}

/// Whether read-only permissions below high risk get a row each or one
/// "reads N resource kinds" line per scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    Listed,
    Folded,
}

/// New permissions grouped by scope, then resource: badge, resource,
/// verbs and why, one row each, worst first; why is cut (`…`) where the
/// pane is narrow (the full view has it all).
pub fn diff_lines(
    a: &Analysis,
    groups: &[DiffGroup],
    skipped: &[String],
    theme: &Theme,
    width: usize,
) -> Vec<Line<'static>> {
    diff_lines_with(a, groups, skipped, theme, width, false, Reads::Listed)
}

/// As [`diff_lines`]; `whole` wraps why instead of cutting it, and
/// `reads` folds low-risk read-only rows into one line per scope.
pub fn diff_lines_with(
    a: &Analysis,
    groups: &[DiffGroup],
    skipped: &[String],
    theme: &Theme,
    width: usize,
    whole: bool,
    reads: Reads,
) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let one_scope = match groups {
        [one] => Some(one.scope.to_string()),
        _ => None,
    };
    out.push(diff_heading(a, one_scope.as_deref(), theme));
    diff_caveats(a, skipped, theme, &mut out);
    if a.new.is_empty() {
        out.push(Line::from(Span::styled(
            "  nothing new: the requester already has all of it",
            theme.ok,
        )));
        return out;
    }
    let (res_w, verbs_w) = diff_column_widths(groups, reads, width, whole);
    for group in groups {
        if one_scope.is_none() {
            out.push(Line::from(Span::styled(
                group.scope.to_string(),
                theme.column_header,
            )));
        }
        for row in group.rows.iter().filter(|r| shown(r, reads)) {
            permission_row(row, theme, width, whole, res_w, verbs_w, &mut out);
        }
        out.extend(folded_reads_line(group, one_scope.as_deref(), reads, theme));
        for note in &group.notes {
            out.push(Line::from(Span::styled(
                format!("  note: {note}"),
                theme.dim,
            )));
        }
    }
    out
}

/// Whether `row` gets a row of its own, not folded into its scope's reads line.
fn shown(row: &DiffRow, reads: Reads) -> bool {
    reads == Reads::Listed || !row.collapsible()
}

/// The heading: how many new permissions, the worst counts, how many held.
fn diff_heading(a: &Analysis, one_scope: Option<&str>, theme: &Theme) -> Line<'static> {
    let crit = a.count_at_least(Severity::Critical);
    let high = a.count_at_least(Severity::High) - crit;
    let mut worst = Vec::new();
    if crit > 0 {
        worst.push(format!("{crit} critical"));
    }
    if high > 0 {
        worst.push(format!("{high} high"));
    }
    let worst = if worst.is_empty() {
        String::new()
    } else {
        format!(" ({})", worst.join(", "))
    };
    Line::from(vec![
        Span::styled("NEW PERMISSIONS", theme.title),
        Span::styled(
            one_scope
                .map(|s| format!(" {}", scope_label(s)))
                .unwrap_or_default(),
            theme.column_header,
        ),
        Span::styled(
            format!(
                ": {}{worst}; {} of {} held",
                a.new.len(),
                a.already.len(),
                a.granted.len()
            ),
            theme.value,
        ),
    ])
}

/// The caveats on "already held": system:masters, other live grants, unread RBAC.
fn diff_caveats(a: &Analysis, skipped: &[String], theme: &Theme, out: &mut Vec<Line<'static>>) {
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
}

/// The resource and verbs columns' widths: the widest shown, capped.
fn diff_column_widths(
    groups: &[DiffGroup],
    reads: Reads,
    width: usize,
    whole: bool,
) -> (usize, usize) {
    let res_w = groups
        .iter()
        .flat_map(|g| g.rows.iter())
        .filter(|r| shown(r, reads))
        .map(|r| wrap::width(&inert(&r.resource, 60)))
        .max()
        .unwrap_or(0)
        .min(if whole {
            (width / 2).max(16)
        } else {
            (width / 3).clamp(16, 34)
        });
    let verbs_w = groups
        .iter()
        .flat_map(|g| g.rows.iter())
        .filter(|r| shown(r, reads))
        .map(|r| wrap::width(&r.verbs))
        .max()
        .unwrap_or(0)
        .min(24);
    (res_w, verbs_w)
}

/// One permission's row: badge, resource, verbs and why (and why's wrapped rest).
fn permission_row(
    row: &DiffRow,
    theme: &Theme,
    width: usize,
    whole: bool,
    res_w: usize,
    verbs_w: usize,
    out: &mut Vec<Line<'static>>,
) {
    let resource = inert(&row.resource, 60);
    let used = 2 + 4 + 1 + res_w + 1 + verbs_w + 1;
    let (why, more) = why_text(row, width, used, whole);
    let mut spans = vec![
        Span::raw("  "),
        Span::styled(
            format!("{:<4}", row.risk.severity.badge()),
            severity_style(theme, row.risk.severity),
        ),
        Span::raw(" "),
        Span::styled(
            format!("{:<res_w$}", wrap::cut(&resource, res_w)),
            theme.value,
        ),
    ];
    if why.is_empty() {
        spans.push(Span::styled(format!(" {}", row.verbs), theme.value));
    } else {
        spans.push(Span::styled(
            format!(" {:<verbs_w$} ", wrap::cut(&row.verbs, verbs_w)),
            theme.value,
        ));
        spans.push(Span::styled(why, theme.dim));
    }
    out.push(Line::from(spans));
    out.extend(
        more.into_iter()
            .map(|l| Line::from(Span::styled(l, theme.dim))),
    );
}

/// A row's why: the part on the row (after `used` columns), and the rows under it.
fn why_text(row: &DiffRow, width: usize, used: usize, whole: bool) -> (String, Vec<String>) {
    let room = width.saturating_sub(used);
    // The pane cuts why to what fits; the full view wraps it whole
    // under itself (or under the row, where the row is narrow).
    if whole {
        if room >= 20 {
            let mut lines = wrap::wrap(row.risk.why, room);
            let first = lines.remove(0);
            (
                first,
                lines
                    .into_iter()
                    .map(|l| format!("{:used$}{l}", ""))
                    .collect(),
            )
        } else {
            let lines = wrap::wrap(row.risk.why, width.saturating_sub(7));
            (
                String::new(),
                lines.into_iter().map(|l| format!("{:7}{l}", "")).collect(),
            )
        }
    } else if room >= 12 {
        (wrap::cut(row.risk.why, room).into_owned(), Vec::new())
    } else {
        (String::new(), Vec::new())
    }
}

/// A scope's folded reads: "reads N resource kinds" at the worst badge.
fn folded_reads_line(
    group: &DiffGroup,
    one_scope: Option<&str>,
    reads: Reads,
    theme: &Theme,
) -> Option<Line<'static>> {
    let folded: Vec<_> = group.rows.iter().filter(|r| !shown(r, reads)).collect();
    let worst = folded.iter().map(|r| r.risk.severity).max()?;
    let where_ = match one_scope {
        Some(_) => String::new(),
        None => format!(" {}", scope_label(&group.scope.to_string())),
    };
    let kinds = if folded.len() == 1 { "kind" } else { "kinds" };
    Some(Line::from(vec![
        Span::raw("  "),
        Span::styled(
            format!("{:<4}", worst.badge()),
            severity_style(theme, worst),
        ),
        Span::styled(
            format!(" reads {} resource {kinds}{where_}", folded.len()),
            theme.value,
        ),
        Span::styled("  x lists them", theme.dim),
    ]))
}

fn scope_label(scope: &str) -> String {
    if scope == "cluster-wide" {
        "cluster-wide".into()
    } else {
        format!("in {}", inert(scope, 64))
    }
}
