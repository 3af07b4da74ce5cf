//! `vigil audit replay --policy CANDIDATE.json FILES... [--json]`: every verified record's
//! request through the candidate policy's gate (the code the filter runs), reporting what
//! would change: allow -> block, block -> allow, -> require_approval, model access, grouped
//! by change and rule, with the request ids.
//!
//! Limits, stated with every report: the caller is the identity the record names (as
//! verified then; the token is not kept); the body is the record's copy, masked and cut at
//! `record.max_body_bytes`, so rules on personal data see masked text; request headers are
//! not recorded, so rules on headers see none (a model read from a header is the recorded
//! model).

use super::KeySources;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use vigil_core::access::ModelSource;
use vigil_core::gate::{Callers, Cx, Gate, Phase, RequestStart, Secrets};
use vigil_core::record::sealed::OpenFault;
use vigil_core::record::{Route, SessionRecord};
use vigil_core::PluginConfig;

/// What a policy decides for a request, in the terms the report compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `allow`, `block` or `require_approval`.
    pub action: String,
    /// The rule that decided, when a rule did.
    pub rule_id: Option<String>,
    /// The rule that decided, or `model access` for a model the caller may not use.
    pub by: String,
    pub reason: String,
}

const LIMITS: &str = "limits: the caller is the identity each record names; bodies are the records' masked (and possibly cut) copies, so rules on personal data see masked text, unless an examiner key opens the record's sealed payload (then the unmasked request, cut at record.max_body_bytes); request headers are not recorded, so rules on headers see none";

fn by(rule: Option<&str>, reason: &str) -> String {
    match rule {
        Some(r) => r.to_string(),
        None if reason.contains("model") => "model access".to_string(),
        None => "the policy default".to_string(),
    }
}

/// What the record says was decided.
pub fn recorded(r: &SessionRecord) -> Outcome {
    Outcome {
        action: r.decision.action.to_string(),
        rule_id: r.decision.rule_id.clone(),
        by: by(r.decision.rule_id.as_deref(), &r.decision.reason),
        reason: r.decision.reason.clone(),
    }
}

/// The record's request through `config`'s gate; `body` replaces the record's masked copy
/// (the unmasked request from its sealed payload).
pub fn decide(config: &PluginConfig, r: &SessionRecord, body: Option<&[u8]>) -> Outcome {
    let secrets = Secrets::default();
    let started = vigil_core::time::parse_rfc3339(&r.started_at).unwrap_or(0);
    let clock = move || started;
    let mut cx = Cx {
        config,
        callers: Callers::Given(r.identity.clone()),
        secrets: &secrets,
        clock: &clock,
        verbose: false,
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    if let (Some(ModelSource::Header(h)), Some(model)) =
        (config.models.as_ref().map(|m| &m.source), &r.model)
    {
        headers.push((h.clone(), model.clone()));
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let body = body.unwrap_or(r.request.body.as_bytes()).to_vec();
    let bodyless = r.request.bytes == 0;
    let mut gate = Gate::new();
    let start = RequestStart {
        route: Route {
            method: r.route.method.clone(),
            path: r.route.path.clone(),
            authority: r.route.authority.clone(),
        },
        request_id: r.request_id.clone(),
        client_address: r.client_address.clone(),
    };
    let _ = gate.request_headers(&mut cx, start, &header, bodyless);
    if gate.phase() == Phase::AwaitingBody {
        let _ = gate.request_body(&mut cx, body.len(), true, &|| body.clone());
    }
    let d = gate.log().decision();
    Outcome {
        action: d.action.to_string(),
        rule_id: d.rule_id.clone(),
        by: by(d.rule_id.as_deref(), &d.reason),
        reason: d.reason.clone(),
    }
}

/// The name of a change: `allow->block`, `block->allow`, `allow->require_approval`, ...; for
/// the same action reached another way, `model access` or `rule` changes.
fn change(before: &Outcome, after: &Outcome) -> Option<String> {
    if before.action != after.action {
        return Some(format!("{}->{}", before.action, after.action));
    }
    (before.by != after.by).then(|| format!("{} (by {} -> {})", before.action, before.by, after.by))
}

fn load_policy(path: &Path) -> Result<PluginConfig, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    PluginConfig::parse(&text).map_err(|errors| {
        let list: Vec<String> = errors
            .iter()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect();
        format!("{}: {}", path.display(), list.join("; "))
    })
}

/// Exit 0 when it ran, whatever would change (the contract in docs/design.md); 2 on unusable
/// input: an unreadable file or policy, a key that is not the one records were sealed to.
pub fn run(
    policy: &Path,
    files: &[PathBuf],
    keys: &KeySources,
    field: &str,
    partial: bool,
    json: bool,
) -> u8 {
    let config = match load_policy(policy) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vigil audit replay: {e}");
            return 2;
        }
    };
    let (v, openers) = match super::verified_sessions("replay", files, keys, field, partial) {
        Ok(read) => read,
        Err(code) => return code,
    };
    let mut by_change: BTreeMap<String, u64> = BTreeMap::new();
    // change -> rule (after) -> request ids
    let mut grouped: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut records = 0u64;
    let (mut opened, mut unopened) = (0u64, Vec::new());
    for a in v.verified() {
        records += 1;
        let before = recorded(&a.record);
        let payload = match super::show::open_sealed(&a.record, &openers) {
            Some(Ok(p)) => {
                opened += 1;
                Some(p)
            }
            Some(Err(fault @ OpenFault::OtherKey { .. })) => {
                // The examiner key given is not the one these records were sealed to.
                eprintln!("vigil audit replay: {}: {fault}", a.at);
                return 2;
            }
            Some(Err(fault)) => {
                unopened.push(format!("{}: {fault}", a.at));
                None
            }
            None => None,
        };
        let after = decide(
            &config,
            &a.record,
            payload.as_ref().map(|p| p.request.body.as_slice()),
        );
        let Some(name) = change(&before, &after) else {
            continue;
        };
        *by_change.entry(name.clone()).or_default() += 1;
        if json {
            crate::outln!(
                "{}",
                serde_json::json!({
                    "request_id": a.record.request_id,
                    "rule_id": after.rule_id,
                    "at": a.at.to_string(),
                    "started_at": a.record.started_at,
                    "change": name,
                    "before": {"action": before.action, "by": before.by, "reason": before.reason},
                    "after": {"action": after.action, "by": after.by, "reason": after.reason},
                })
            );
        }
        grouped
            .entry(name)
            .or_default()
            .entry(after.by.clone())
            .or_default()
            .push(a.record.request_id.clone());
    }
    let changed: u64 = by_change.values().sum();
    if json {
        crate::outln!("{}", {
            // The summary's figures at the top (as the forensics issue reads them) and
            // under "summary" (the contract in docs/design.md).
            let figures =
                serde_json::json!({"records": records, "changed": changed, "by_change": by_change});
            let mut last = figures.clone();
            last["summary"] = figures;
            last["problems"] = v.problems.len().into();
            last["opened"] = opened.into();
            last["not_opened"] = unopened.clone().into();
            last["limits"] = LIMITS.into();
            last
        });
    } else {
        crate::outln!(
            "{records} verified record(s) through {}: {changed} would change",
            policy.display()
        );
        for (name, rules) in &grouped {
            let n: usize = rules.values().map(Vec::len).sum();
            crate::outln!("{name}: {n}");
            for (rule, ids) in rules {
                crate::outln!("  by {rule}: {}", ids.join(", "));
            }
        }
        if !openers.is_empty() {
            crate::outln!(
                "{opened} record(s) replayed on their unmasked request (sealed payload opened)"
            );
        }
        for u in &unopened {
            crate::outln!("sealed payload not opened, replayed on the masked copy: {u}");
        }
        if !v.problems.is_empty() {
            crate::outln!(
                "{} record problem(s): run vigil audit verify; unverified records are not replayed",
                v.problems.len()
            );
        }
        crate::outln!("{LIMITS}");
    }
    0
}
