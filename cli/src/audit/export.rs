//! `vigil audit export`: the records an examiner asked for (time range, identity, group,
//! model, decision, rule), as JSONL (the records as written, still verifiable), CSV (one row
//! per record), an HTML report, and a manifest with the SHA-256 of every file written and
//! read. The inputs are verified first; only authentic records are exported, and the report
//! carries the verification result.

use super::report;
use super::verify::{Authentic, Options, Verification};
use serde_json::json;
use std::path::{Path, PathBuf};
use vigil_core::digest::sha256_hex;
use vigil_core::time::parse_rfc3339;

/// Which records to export. Every filter given must match.
#[derive(Debug, Default, Clone, serde::Serialize, clap::Args)]
pub struct Filters {
    /// Requests started at or after this time (RFC 3339).
    #[arg(long)]
    pub from: Option<String>,
    /// Requests started before this time (RFC 3339).
    #[arg(long)]
    pub to: Option<String>,
    /// The caller's subject or email.
    #[arg(long)]
    pub identity: Option<String>,
    /// A group the caller belongs to.
    #[arg(long)]
    pub group: Option<String>,
    /// The model called.
    #[arg(long)]
    pub model: Option<String>,
    /// allow, block or require_approval.
    #[arg(long)]
    pub decision: Option<String>,
    /// The id of the rule that decided.
    #[arg(long)]
    pub rule: Option<String>,
}

/// Filters with their times read.
struct Selection<'a> {
    filters: &'a Filters,
    from: Option<u64>,
    to: Option<u64>,
}

impl<'a> Selection<'a> {
    fn new(filters: &'a Filters) -> Result<Self, String> {
        let time = |t: &Option<String>, flag: &str| {
            t.as_deref()
                .map(parse_rfc3339)
                .transpose()
                .map_err(|e| format!("--{flag}: {e}"))
        };
        if let Some(d) = &filters.decision {
            if !["allow", "block", "require_approval"].contains(&d.as_str()) {
                return Err(format!(
                    "--decision: expected allow, block or require_approval, found {d:?}"
                ));
            }
        }
        Ok(Self {
            filters,
            from: time(&filters.from, "from")?,
            to: time(&filters.to, "to")?,
        })
    }

    fn matches(&self, a: &Authentic) -> bool {
        let r = &a.record;
        let f = self.filters;
        let started = parse_rfc3339(&r.started_at).ok();
        if let Some(from) = self.from {
            if started.is_none_or(|s| s < from) {
                return false;
            }
        }
        if let Some(to) = self.to {
            if started.is_none_or(|s| s >= to) {
                return false;
            }
        }
        if let Some(who) = &f.identity {
            let id = r.identity.as_ref();
            let hit = id.is_some_and(|i| {
                i.subject.as_deref() == Some(who.as_str())
                    || i.email.as_deref() == Some(who.as_str())
            });
            if !hit {
                return false;
            }
        }
        if let Some(group) = &f.group {
            if !r
                .identity
                .as_ref()
                .is_some_and(|i| i.groups.contains(group))
            {
                return false;
            }
        }
        if f.model
            .as_ref()
            .is_some_and(|m| r.model.as_ref() != Some(m))
        {
            return false;
        }
        if f.decision
            .as_ref()
            .is_some_and(|d| r.decision.action.as_str() != d)
        {
            return false;
        }
        if f.rule
            .as_ref()
            .is_some_and(|rule| r.decision.rule_id.as_ref() != Some(rule))
        {
            return false;
        }
        true
    }
}

/// What an export wrote.
pub struct Written {
    pub exported: usize,
    pub files: Vec<(String, String, u64)>,
}

/// Writes the export of `v` (already verified) into `out`.
pub fn export(
    v: &Verification,
    filters: &Filters,
    out: &Path,
    generated_at: &str,
    public_keys: &[String],
) -> Result<Written, String> {
    let selection = Selection::new(filters)?;
    let flagged = v.flagged();
    let chosen: Vec<&Authentic> = v
        .authentic
        .iter()
        .filter(|a| selection.matches(a))
        .collect();
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;

    let mut jsonl = String::new();
    for a in &chosen {
        jsonl.push_str(&serde_json::to_string(&a.value).map_err(|e| e.to_string())?);
        jsonl.push('\n');
    }
    let csv = to_csv(&chosen, &flagged)?;
    let html = report::render(v, &chosen, filters, generated_at);

    // A page per session, linked from the report's rows.
    let pages: Vec<(String, String)> = chosen
        .iter()
        .map(|a| {
            (
                super::show::page_name(&a.record),
                super::show::html(&super::show::session(v, a)),
            )
        })
        .collect();
    if !pages.is_empty() {
        let dir = out.join("sessions");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    // Every checkpoint read, in chain order: with the public key, an examiner checks which
    // exported records a signature covers.
    let mut checkpoints: Vec<&super::verify::CheckpointSeen> = v.checkpoints.iter().collect();
    checkpoints.sort_by(|a, b| {
        (&a.checkpoint.vm_id, a.checkpoint.seq).cmp(&(&b.checkpoint.vm_id, b.checkpoint.seq))
    });
    let mut checkpoint_lines = String::new();
    for c in &checkpoints {
        checkpoint_lines.push_str(&serde_json::to_string(&c.value).map_err(|e| e.to_string())?);
        checkpoint_lines.push('\n');
    }
    let mut files = Vec::new();
    for (name, bytes) in [
        ("records.jsonl", jsonl.as_bytes()),
        ("checkpoints.jsonl", checkpoint_lines.as_bytes()),
        ("records.csv", csv.as_slice()),
        ("report.html", html.as_bytes()),
    ]
    .into_iter()
    .chain(pages.iter().map(|(n, p)| (n.as_str(), p.as_bytes())))
    {
        let path = out.join(name);
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        files.push((name.to_string(), sha256_hex(bytes), bytes.len() as u64));
    }
    let manifest = json!({
        "generated_at": generated_at,
        "generator": format!("vigil {}", env!("CARGO_PKG_VERSION")),
        "filters": filters,
        "inputs": v.files.iter().map(|f| json!({"path": f.path, "bytes": f.bytes, "sha256": f.sha256})).collect::<Vec<_>>(),
        "verification": {
            "records": v.records,
            "verified": v.verified().count(),
            "problems": v.problems.len(),
            "clean": v.is_clean(),
        },
        "exported_records": chosen.len(),
        "checkpoints": {
            "count": checkpoints.len(),
            "signatures_checked": checkpoints.iter().any(|c| c.signed),
            "public_keys": public_keys,
            "signing_keys": signing_keys(&checkpoints),
            "chains": v.chains.iter().map(|(vm, c)| (vm.clone(), json!({
                "checkpoints": c.checkpoints,
                "signed_through": c.signed_through,
                "not_yet_covered": c.not_yet_covered,
                "ended": c.ended,
            }))).collect::<serde_json::Map<String, serde_json::Value>>(),
        },
        "files": files.iter().map(|(name, sha, bytes)| json!({"name": name, "bytes": bytes, "sha256": sha})).collect::<Vec<_>>(),
    });
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| e.to_string())? + "\n";
    let path = out.join("manifest.json");
    std::fs::write(&path, &text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Written {
        exported: chosen.len(),
        files,
    })
}

/// The fingerprints of the keys that signed the checkpoints, each once.
fn signing_keys(checkpoints: &[&super::verify::CheckpointSeen]) -> Vec<String> {
    let mut ids: Vec<String> = checkpoints
        .iter()
        .map(|c| c.checkpoint.signing_key_id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

const CSV_COLUMNS: &[&str] = &[
    "vm_id",
    "seq",
    "request_id",
    "started_at",
    "ended_at",
    "duration_ms",
    "client_address",
    "method",
    "path",
    "subject",
    "email",
    "issuer",
    "groups",
    "model",
    "decision",
    "rule_id",
    "reason",
    "approval_id",
    "approver",
    "approved_at",
    "outcome",
    "complete",
    "status",
    "request_bytes",
    "response_bytes",
    "masked",
    "policy_id",
    "policy_version",
    "policy_sha256",
    "hash",
    "verified",
];

fn to_csv(
    chosen: &[&Authentic],
    flagged: &std::collections::HashSet<usize>,
) -> Result<Vec<u8>, String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_COLUMNS).map_err(|e| e.to_string())?;
    for a in chosen {
        let r = &a.record;
        let id = r.identity.as_ref();
        let approval = |k: &str| report::approval_field(r, k);
        let opt = |s: Option<&String>| s.cloned().unwrap_or_default();
        let masked = r
            .masked
            .iter()
            .map(|(k, n)| format!("{k}={n}"))
            .collect::<Vec<_>>()
            .join(";");
        let row = [
            r.vm_id.clone(),
            r.seq.to_string(),
            r.request_id.clone(),
            r.started_at.clone(),
            r.ended_at.clone(),
            r.duration_ms.to_string(),
            opt(r.client_address.as_ref()),
            r.route.method.clone(),
            r.route.path.clone(),
            opt(id.and_then(|i| i.subject.as_ref())),
            opt(id.and_then(|i| i.email.as_ref())),
            opt(id.and_then(|i| i.issuer.as_ref())),
            id.map(|i| i.groups.join(";")).unwrap_or_default(),
            opt(r.model.as_ref()),
            r.decision.action.to_string(),
            opt(r.decision.rule_id.as_ref()),
            r.decision.reason.clone(),
            approval("id"),
            approval("approver"),
            approval("decided_at"),
            r.outcome.to_string(),
            r.complete.to_string(),
            r.response.status.map(|s| s.to_string()).unwrap_or_default(),
            r.request.bytes.to_string(),
            r.response.bytes.to_string(),
            masked,
            r.policy.id.clone(),
            r.policy.version.clone(),
            r.policy.sha256.clone(),
            r.hash.clone(),
            (!flagged.contains(&a.pos)).to_string(),
        ];
        w.write_record(row.iter().map(|c| neutralize(c)))
            .map_err(|e| e.to_string())?;
    }
    w.into_inner().map_err(|e| e.to_string())
}

/// A cell that a spreadsheet would run as a formula (`=`, `+`, `-`, `@` first) gets a leading
/// apostrophe: records carry text callers wrote (paths, request ids), and an examiner opens
/// the CSV in a spreadsheet.
fn neutralize(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '@' | '\t' | '\r') => format!("'{cell}"),
        Some('-') if cell.parse::<f64>().is_err() => format!("'{cell}"),
        _ => cell.to_string(),
    }
}

/// `vigil audit export`: verify, select, write; returns the exit status (1 when the inputs
/// did not verify, though the export is still written with the problems in its report).
pub fn run(paths: &[PathBuf], options: &Options, filters: &Filters, out: &Path) -> u8 {
    let v = super::verify::verify_files(paths, options);
    if !v.unreadable.is_empty() {
        for (p, e) in &v.unreadable {
            eprintln!("vigil audit export: {p}: {e}");
        }
        return 2;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let generated_at = vigil_core::time::format_rfc3339_millis(now);
    let public_keys: Vec<String> = options
        .checkpoints
        .public_keys
        .iter()
        .map(|k| k.id().to_string())
        .collect();
    match export(&v, filters, out, &generated_at, &public_keys) {
        Ok(written) => {
            crate::out!("{}", super::summary_text(&v));
            crate::outln!(
                "exported {} record(s) to {}: {}",
                written.exported,
                out.display(),
                written
                    .files
                    .iter()
                    .map(|(n, sha, _)| format!("{n} (sha256 {sha})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            crate::outln!("manifest: {}", out.join("manifest.json").display());
            v.exit_code()
        }
        Err(e) => {
            eprintln!("vigil audit export: {e}");
            2
        }
    }
}
