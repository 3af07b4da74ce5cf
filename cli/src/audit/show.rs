//! `vigil audit show SELECTOR FILES...`: one recorded session for an investigator, as text
//! or HTML: who, when, the route and model, the request, the answer as the client received
//! it (an SSE stream re-assembled into its text, with its events counted), what was masked,
//! the decision and its rule, the approval, and the record's place in its chain with the
//! verification of that record and of its chain.
//!
//! A selector is a request id, `VM#seq` (the record's `vm_id`, `#`, its `seq`), or a time
//! (RFC 3339: the session that was open then, the latest started if several).

use super::verify::Verification;
use super::KeySources;
use std::fmt::Write;
use std::path::PathBuf;
use vigil_core::record::sealed::{self, OpenFault, OpeningKey, Payload};
use vigil_core::record::SessionRecord;

/// What the investigator reads of one session.
pub struct Session<'a> {
    pub record: &'a SessionRecord,
    pub at: String,
    /// Problems found on this record's line or chain.
    pub problems: Vec<String>,
    /// The sealed payload opened with the examiner keys given (`None`: no payload or no key).
    pub opened: Option<Result<Payload, OpenFault>>,
    /// The approval service's history of the record's ticket (`None`: not asked for, or no
    /// ticket).
    pub history: Option<Result<Vec<String>, String>>,
}

/// Where the approval service is, for a ticket's history.
pub struct Approvals {
    pub url: String,
    pub token: Option<String>,
}

/// A record's sealed payload opened with whichever examiner key it was sealed to; `None`
/// when the record has none or no examiner key was given.
pub fn open_sealed(
    r: &SessionRecord,
    openers: &[OpeningKey],
) -> Option<Result<Payload, OpenFault>> {
    let payload = r.sealed.as_ref()?;
    if openers.is_empty() {
        return None;
    }
    let aad = sealed::associated_data(&r.vm_id, r.seq, &r.request_id, &r.started_at);
    Some(sealed::open(payload, openers, &aad))
}

/// The records a selector names, in file order.
fn select<'a>(v: &'a Verification, selector: &str) -> Vec<Session<'a>> {
    let by_seq = selector
        .rsplit_once('#')
        .and_then(|(vm, seq)| Some((vm, seq.parse::<u64>().ok()?)));
    let mut out: Vec<Session> = v
        .verified()
        .filter(|a| {
            let r = &a.record;
            r.request_id == selector
                || by_seq.is_some_and(|(vm, seq)| r.vm_id == vm && r.seq == seq)
        })
        .map(|a| session(v, a))
        .collect();
    if out.is_empty() && selector.len() >= 20 && selector.as_bytes().get(4) == Some(&b'-') {
        // A time: the session open then (RFC 3339 strings of one format order as times).
        out = v
            .verified()
            .filter(|a| {
                a.record.started_at.as_str() <= selector && selector <= a.record.ended_at.as_str()
            })
            .map(|a| session(v, a))
            .collect();
        out.sort_by(|a, b| a.record.started_at.cmp(&b.record.started_at));
        out = out.into_iter().rev().take(1).collect();
    }
    out
}

/// The file name of a session's page in an export (`sessions/<vm>-<seq>.html`).
pub fn page_name(r: &SessionRecord) -> String {
    let vm: String = r
        .vm_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("sessions/{vm}-{}.html", r.seq)
}

pub fn session<'a>(v: &'a Verification, a: &'a super::verify::Authentic) -> Session<'a> {
    let problems = v
        .problems
        .iter()
        .filter(|p| p.at == a.at || p.message.contains(&a.record.vm_id))
        .map(|p| format!("{}: {}", p.at, p.message))
        .collect();
    Session {
        record: &a.record,
        at: a.at.to_string(),
        problems,
        opened: None,
        history: None,
    }
}

/// An SSE body as its client read it: the text of its deltas, and how many events.
pub fn reassemble(body: &str) -> Option<(String, usize)> {
    if !body.contains("data:") {
        return None;
    }
    let mut text = String::new();
    let mut events = 0;
    for line in body.lines() {
        let Some(data) = line.strip_prefix("data:") else {
            continue;
        };
        events += 1;
        let Ok(v) = serde_json::from_str::<serde_json::Value>(data.trim_start()) else {
            continue;
        };
        let piece = v["choices"][0]["delta"]["content"]
            .as_str()
            .or(v["choices"][0]["text"].as_str())
            .or(v["delta"]["text"].as_str())
            .or(v["delta"]
                .as_str()
                .filter(|_| v["type"].as_str().is_some_and(|t| t.ends_with(".delta"))))
            .or(v["message"]["content"].as_str())
            .unwrap_or_default();
        text.push_str(piece);
    }
    Some((text, events))
}

/// Each event of an SSE body on a line of its own, numbered, long ones cut at 200
/// characters: the stream as it went, beside the text it adds up to.
pub fn event_list(body: &str) -> String {
    const WIDTH: usize = 200;
    let mut out = Vec::new();
    let mut name: Option<&str> = None;
    for line in body.lines() {
        if let Some(n) = line.strip_prefix("event:") {
            name = Some(n.trim());
            continue;
        }
        let Some(data) = line.strip_prefix("data:") else {
            continue;
        };
        let data = data.trim_start();
        let mut shown: String = data.chars().take(WIDTH).collect();
        if data.chars().count() > WIDTH {
            shown.push_str(" ...");
        }
        let label = name.take().map(|n| format!("{n} ")).unwrap_or_default();
        out.push(format!("      {:>4}  {label}{shown}", out.len() + 1));
    }
    out.join("\n")
}

/// The session as text.
pub fn text(s: &Session) -> String {
    let r = s.record;
    let mut o = String::new();
    let _ = writeln!(o, "session {} ({})", r.request_id, s.at);
    let _ = writeln!(
        o,
        "  when      {} .. {} ({} ms)",
        r.started_at, r.ended_at, r.duration_ms
    );
    match &r.identity {
        Some(i) => {
            let _ = writeln!(
                o,
                "  who       {} (provider {}, issuer {}), groups [{}]",
                i.subject.as_deref().unwrap_or("-"),
                i.provider,
                i.issuer.as_deref().unwrap_or("-"),
                i.groups.join(", ")
            );
        }
        None => {
            let _ = writeln!(o, "  who       no verified identity");
        }
    }
    let _ = writeln!(
        o,
        "  from      {}",
        r.client_address.as_deref().unwrap_or("-")
    );
    let _ = writeln!(
        o,
        "  route     {} {} (authority {})",
        r.route.method, r.route.path, r.route.authority
    );
    let _ = writeln!(o, "  model     {}", r.model.as_deref().unwrap_or("-"));
    let _ = writeln!(
        o,
        "  decision  {} by {}: {}",
        serde_json::to_value(r.decision.action)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        r.decision.rule_id.as_deref().unwrap_or("no rule"),
        r.decision.reason
    );
    if let Some(a) = &r.approval {
        let _ = writeln!(
            o,
            "  approval  {}",
            serde_json::to_string(a).unwrap_or_default()
        );
    }
    match &s.history {
        Some(Ok(lines)) => {
            let _ = writeln!(o, "  history   of the ticket, from the approval service:");
            for l in lines {
                let _ = writeln!(o, "    {l}");
            }
        }
        Some(Err(why)) => {
            let _ = writeln!(o, "  history   not available: {why}");
        }
        None => {}
    }
    let _ = writeln!(
        o,
        "  outcome   {}, status {}, {}",
        r.outcome.as_str(),
        r.response
            .status
            .map_or_else(|| "-".to_string(), |s| s.to_string()),
        if r.complete { "complete" } else { "cut short" }
    );
    let masked: Vec<String> = r.masked.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let _ = writeln!(
        o,
        "  masked    {}",
        if masked.is_empty() {
            "nothing".to_string()
        } else {
            masked.join(", ")
        }
    );
    let _ = writeln!(
        o,
        "  request   {} bytes{}:\n{}",
        r.request.bytes,
        if r.request.truncated {
            " (copy cut)"
        } else {
            ""
        },
        indent(&r.request.body)
    );
    let _ = writeln!(
        o,
        "  answer    {} bytes{}:",
        r.response.bytes,
        if r.response.truncated {
            " (copy cut)"
        } else {
            ""
        }
    );
    answer_text(&mut o, &r.response.body, "as the client read it");
    if let Some(payload) = &r.sealed {
        sealed_text(&mut o, payload, s.opened.as_ref());
    }
    let _ = writeln!(
        o,
        "  chain     {} seq {}, prev {}, hash {}",
        r.vm_id, r.seq, r.prev_hash, r.hash
    );
    if s.problems.is_empty() {
        let _ = writeln!(
            o,
            "  verified  the record is authentic and its chain is whole"
        );
    } else {
        let _ = writeln!(o, "  NOT VERIFIED");
        for p in &s.problems {
            let _ = writeln!(o, "    {p}");
        }
    }
    o
}

/// The sealed payload: where it is sealed to, and once opened, the unmasked bodies.
fn sealed_text(
    o: &mut String,
    payload: &sealed::SealedPayload,
    opened: Option<&Result<Payload, OpenFault>>,
) {
    let cut = |truncated: bool| if truncated { " (copy cut)" } else { "" };
    match opened {
        None => {
            let _ = writeln!(
                o,
                "  sealed    unmasked payload sealed to examiner key {} (open with --key-file EXAMINER.key)",
                payload.to
            );
        }
        Some(Err(fault)) => {
            let _ = writeln!(o, "  sealed    NOT OPENED: {fault}");
        }
        Some(Ok(p)) => {
            let _ = writeln!(
                o,
                "  sealed    opened with examiner key {}: what was actually sent",
                payload.to
            );
            let _ = writeln!(
                o,
                "  request, unmasked   {} bytes{}:\n{}",
                p.request.bytes,
                cut(p.request.truncated),
                indent(&p.request.text())
            );
            let answer = p.response.text();
            let _ = writeln!(
                o,
                "  answer, unmasked    {} bytes{}:",
                p.response.bytes,
                cut(p.response.truncated)
            );
            answer_text(o, &answer, "as the model server sent it");
        }
    }
}

/// An answer's body: an SSE stream as the text it adds up to (`read_as`) and its events
/// listed, anything else as it is.
fn answer_text(o: &mut String, body: &str, read_as: &str) {
    match reassemble(body) {
        Some((text, events)) => {
            let _ = writeln!(o, "    {read_as} ({events} events):\n{}", indent(&text));
            let _ = writeln!(o, "    the events:\n{}", event_list(body));
        }
        None => {
            let _ = writeln!(o, "{}", indent(body));
        }
    }
}

fn indent(s: &str) -> String {
    if s.is_empty() {
        return "      (empty)".to_string();
    }
    s.lines()
        .map(|l| format!("      {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The session as an HTML page (the text view, escaped, in a page of its own).
pub fn html(s: &Session) -> String {
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Vigil session {}</title>\
         <style>body{{font-family:sans-serif;margin:2em}}pre{{white-space:pre-wrap}}</style></head>\
         <body><h1>Session {}</h1><p><a href=\"../report.html\">the report</a></p><pre>{}</pre></body></html>\n",
        escape(&s.record.request_id),
        escape(&s.record.request_id),
        escape(&text(s))
    )
}

/// `vigil audit show`: exit 0 shown (verified), 1 shown but not verified or not found, 2
/// unreadable input.
pub fn run(
    selector: &str,
    files: &[PathBuf],
    keys: &KeySources,
    field: &str,
    partial: bool,
    html_out: bool,
    approvals: Option<&Approvals>,
) -> u8 {
    if selector.trim().is_empty() {
        eprintln!("vigil audit show: the selector is empty (a request id, VM#seq or a time)");
        return 2;
    }
    let (v, openers) = match super::verified_sessions("show", files, keys, field, partial) {
        Ok(read) => read,
        Err(code) => return code,
    };
    let mut sessions = select(&v, selector);
    if sessions.is_empty() {
        eprintln!("vigil audit show: no verified record matches {selector:?}");
        return 1;
    }
    let mut code = 0;
    for s in &mut sessions {
        s.opened = open_sealed(s.record, &openers);
        let ticket = s.record.approval.as_ref().and_then(|a| a.id.as_deref());
        if let (Some(a), Some(ticket)) = (approvals, ticket) {
            s.history = Some(super::history::fetch(&a.url, a.token.as_deref(), ticket));
        }
        match &s.opened {
            // The key given is not the one: nothing to show of the payload, and said plainly.
            Some(Err(fault @ OpenFault::OtherKey { .. })) => {
                eprintln!("vigil audit show: {}: {fault}", s.record.request_id);
                code = 2;
            }
            Some(Err(fault)) => {
                eprintln!("vigil audit show: {}: {fault}", s.record.request_id);
                code = code.max(1);
            }
            _ => {}
        }
    }
    for s in &sessions {
        if html_out {
            crate::out!("{}", html(s));
        } else {
            crate::out!("{}", text(s));
        }
        if !s.problems.is_empty() {
            code = code.max(1);
        }
    }
    code
}
