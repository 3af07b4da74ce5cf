//! The examiner's report: one self-contained HTML file (no scripts, no outside resources) with
//! the verification result, counts per user, model, decision and masked entity type, the
//! approvals with their approvers, and the blocked requests.

use super::export::Filters;
use super::verify::{Authentic, Verification};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Rows shown per detail table; the CSV and JSONL hold them all.
const MAX_ROWS: usize = 5000;
const MAX_PROBLEMS: usize = 1000;

fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One field of a record's approval (`id`, `approver`, `decided_at`, ...) as text; empty when
/// the record has no approval or the approval no such field.
pub fn approval_field(r: &vigil_core::SessionRecord, key: &str) -> String {
    r.approval
        .as_ref()
        .and_then(|ap| serde_json::to_value(ap).ok())
        .and_then(|ap| ap.get(key).cloned())
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())
        })
        .unwrap_or_default()
}

fn who(a: &Authentic) -> String {
    match &a.record.identity {
        Some(i) => i
            .email
            .clone()
            .or_else(|| i.subject.clone())
            .unwrap_or_else(|| format!("(no subject, {})", i.provider)),
        None => "(unauthenticated)".into(),
    }
}

fn counts<'a>(
    records: &[&'a Authentic],
    key: impl Fn(&'a Authentic) -> Vec<String>,
) -> BTreeMap<String, u64> {
    let mut map = BTreeMap::new();
    for a in records {
        for k in key(a) {
            *map.entry(k).or_default() += 1;
        }
    }
    map
}

fn count_table(out: &mut String, title: &str, what: &str, map: &BTreeMap<String, u64>) {
    let _ = write!(
        out,
        "<section><h2>{}</h2><table><tr><th>{}</th><th class=n>requests</th></tr>",
        esc(title),
        esc(what)
    );
    let mut rows: Vec<_> = map.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (k, n) in rows {
        let _ = write!(out, "<tr><td>{}</td><td class=n>{n}</td></tr>", esc(k));
    }
    if map.is_empty() {
        out.push_str("<tr><td colspan=2>none</td></tr>");
    }
    out.push_str("</table></section>");
}

pub fn render(
    v: &Verification,
    records: &[&Authentic],
    filters: &Filters,
    generated_at: &str,
) -> String {
    let mut out = String::with_capacity(64 * 1024);
    out.push_str("<!doctype html><html lang=en><head><meta charset=utf-8>");
    out.push_str("<title>Vigil session records: examiner report</title><style>");
    out.push_str(
        "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#111}h1{font-size:1.5em}\
         h2{font-size:1.15em;margin-top:1.6em}table{border-collapse:collapse;margin:.4em 0}\
         th,td{border:1px solid #bbb;padding:.25em .6em;text-align:left;vertical-align:top}\
         th{background:#eee}.n{text-align:right}.ok{color:#075e00;font-weight:bold}\
         .bad{color:#a00000;font-weight:bold}code{font-size:.92em}",
    );
    out.push_str("</style></head><body><h1>Vigil session records: examiner report</h1>");
    let _ = write!(
        out,
        "<p>Generated {} by vigil {}.</p>",
        esc(generated_at),
        env!("CARGO_PKG_VERSION")
    );

    // Scope: inputs and filters.
    out.push_str("<section><h2>Scope</h2><table><tr><th>input file</th><th class=n>lines</th><th>SHA-256</th></tr>");
    for f in &v.files {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=n>{}</td><td><code>{}</code></td></tr>",
            esc(&f.path),
            f.lines,
            esc(&f.sha256)
        );
    }
    out.push_str("</table><table>");
    let filter_rows = [
        ("from (started_at &ge;)", &filters.from),
        ("to (started_at &lt;)", &filters.to),
        ("identity", &filters.identity),
        ("group", &filters.group),
        ("model", &filters.model),
        ("decision", &filters.decision),
        ("rule", &filters.rule),
    ];
    for (name, value) in filter_rows {
        let _ = write!(
            out,
            "<tr><th>{name}</th><td>{}</td></tr>",
            value.as_deref().map(esc).unwrap_or_else(|| "(any)".into())
        );
    }
    let _ = write!(
        out,
        "</table><p>{} record(s) selected.</p></section>",
        records.len()
    );

    // Verification.
    let verified = v.verified().count();
    let _ = write!(
        out,
        "<section><h2>Verification</h2><p class={}>{}</p>\
         <p>{} record(s) read, {} verified (HMAC and chain), {} problem(s).</p>",
        if v.is_clean() { "ok" } else { "bad" },
        if v.is_clean() {
            "Verified: every record is authentic and every chain is whole."
        } else {
            "NOT VERIFIED: the problems below were found."
        },
        v.records,
        verified,
        v.problems.len()
    );
    let signatures_checked = v.signatures_checked;
    out.push_str("<table><tr><th>chain (VM)</th><th class=n>records</th><th>seq</th><th>first request</th><th>last request</th><th class=n>checkpoints</th><th>covered by a signature</th></tr>");
    for (vm, c) in &v.chains {
        let covered = match &c.signed_through {
            Some(s) => format!(
                "seq 1..{} (checkpoint of {}, key {}); {} record(s) after it not yet covered{}",
                s.seq,
                s.at,
                s.key_id,
                c.not_yet_covered,
                if c.ended { "; chain ended" } else { "" }
            ),
            None if signatures_checked => "nothing: no checkpoint's signature verified".into(),
            None if c.checkpoints > 0 => {
                "signatures not checked (no checkpoint public key given)".into()
            }
            None => "no checkpoints".into(),
        };
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td class=n>{}</td><td>{}..{}</td><td>{}</td><td>{}</td><td class=n>{}</td><td>{}</td></tr>",
            esc(vm),
            c.records,
            c.first_seq,
            c.last_seq,
            esc(&c.first_started_at),
            esc(&c.last_started_at),
            c.checkpoints,
            esc(&covered)
        );
    }
    out.push_str("</table>");
    if !v.problems.is_empty() {
        out.push_str("<table><tr><th>where</th><th>problem</th></tr>");
        for p in v.problems.iter().take(MAX_PROBLEMS) {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td></tr>",
                esc(&p.at.to_string()),
                esc(&p.message)
            );
        }
        out.push_str("</table>");
        if v.problems.len() > MAX_PROBLEMS {
            let _ = write!(
                out,
                "<p>... and {} more (see `vigil audit verify`).</p>",
                v.problems.len() - MAX_PROBLEMS
            );
        }
    }
    out.push_str("</section>");

    count_table(
        &mut out,
        "Requests per user",
        "user",
        &counts(records, |a| vec![who(a)]),
    );
    count_table(
        &mut out,
        "Requests per model",
        "model",
        &counts(records, |a| {
            vec![a.record.model.clone().unwrap_or_else(|| "(none)".into())]
        }),
    );
    count_table(
        &mut out,
        "Requests per decision",
        "decision",
        &counts(records, |a| vec![a.record.decision.action.to_string()]),
    );
    let mut masked: BTreeMap<String, u64> = BTreeMap::new();
    for a in records {
        for (entity, n) in &a.record.masked {
            *masked.entry(entity.clone()).or_default() += n;
        }
    }
    let _ = write!(
        out,
        "<section><h2>Personal data masked</h2><table><tr><th>entity type</th><th class=n>values masked</th><th class=n>requests</th></tr>"
    );
    let per_request = counts(records, |a| a.record.masked.keys().cloned().collect());
    for (entity, n) in &masked {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=n>{n}</td><td class=n>{}</td></tr>",
            esc(entity),
            per_request.get(entity).copied().unwrap_or(0)
        );
    }
    if masked.is_empty() {
        out.push_str("<tr><td colspan=3>none</td></tr>");
    }
    out.push_str("</table></section>");

    // Approvals.
    let approvals: Vec<&&Authentic> = records
        .iter()
        .filter(|a| a.record.approval.is_some())
        .collect();
    let _ = write!(out, "<section><h2>Approvals ({})</h2><table><tr><th>request time</th><th>user</th><th>model</th><th>rule</th><th>approval</th><th>approver</th><th>decided</th><th>decision</th></tr>", approvals.len());
    for a in approvals.iter().take(MAX_ROWS) {
        let r = &a.record;
        let field = |k: &str| approval_field(r, k);
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.started_at),
            esc(&who(a)),
            esc(r.model.as_deref().unwrap_or("")),
            esc(r.decision.rule_id.as_deref().unwrap_or("")),
            esc(&field("id")),
            esc(&field("approver")),
            esc(&field("decided_at")),
            esc(&field("decision")),
        );
    }
    if approvals.is_empty() {
        out.push_str("<tr><td colspan=8>none</td></tr>");
    }
    out.push_str("</table></section>");

    // Blocked requests.
    let blocked: Vec<&&Authentic> = records
        .iter()
        .filter(|a| a.record.decision.action == "block")
        .collect();
    let _ = write!(out, "<section><h2>Blocked requests ({})</h2><table><tr><th>time</th><th>user</th><th>model</th><th>route</th><th class=n>status</th><th>rule</th><th>reason</th></tr>", blocked.len());
    for a in blocked.iter().take(MAX_ROWS) {
        let r = &a.record;
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} {}</td><td class=n>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.started_at),
            esc(&who(a)),
            esc(r.model.as_deref().unwrap_or("")),
            esc(&r.route.method),
            esc(&r.route.path),
            r.response.status.map(|s| s.to_string()).unwrap_or_default(),
            esc(r.decision.rule_id.as_deref().unwrap_or("")),
            esc(&r.decision.reason),
        );
    }
    if blocked.is_empty() {
        out.push_str("<tr><td colspan=7>none</td></tr>");
    }
    out.push_str("</table>");
    if blocked.len() > MAX_ROWS {
        let _ = write!(
            out,
            "<p>First {MAX_ROWS} shown; records.csv lists all {}.</p>",
            blocked.len()
        );
    }
    out.push_str("</section>");

    // Every session, each with a page of its own.
    let _ = write!(out, "<section><h2>Sessions ({})</h2><table><tr><th>time</th><th>user</th><th>route</th><th class=n>status</th><th>decision</th><th>session</th></tr>", records.len());
    for a in records.iter().take(MAX_ROWS) {
        let r = &a.record;
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{} {}</td><td class=n>{}</td><td>{}</td><td><a href=\"{}\">{}</a></td></tr>",
            esc(&r.started_at),
            esc(&who(a)),
            esc(&r.route.method),
            esc(&r.route.path),
            r.response.status.map(|s| s.to_string()).unwrap_or_default(),
            esc(&r.decision.action.to_string()),
            esc(&super::show::page_name(r)),
            esc(&r.request_id),
        );
    }
    if records.is_empty() {
        out.push_str("<tr><td colspan=6>none</td></tr>");
    }
    out.push_str("</table></section></body></html>\n");
    out
}
