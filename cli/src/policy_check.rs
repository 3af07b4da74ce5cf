//! `vigil policy check`: the same validation the filter runs in `on_configure`, the
//! warnings of `vigil_core::lint`, and `--explain`, which runs a sample request through the
//! filter's own gate and prints its trace: which rule decides, why the others did not match,
//! and what the filter would do.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use vigil_core::access::ModelSource;
use vigil_core::gate::{Callers, Cx, Gate, Phase, RequestStart, Secrets, Step};
use vigil_core::identity::Identity;
use vigil_core::record::Route;
use vigil_core::PluginConfig;

pub fn run(files: &[PathBuf], explain: Option<&Path>) -> u8 {
    let mut worst = 0;
    for file in files {
        let shown = file.display();
        let bytes = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{shown}: cannot read: {e}");
                worst = 2;
                continue;
            }
        };
        match PluginConfig::parse(&bytes) {
            Ok(config) => {
                vigil_cli::outln!(
                    "{shown}: ok: policy {} version {} (sha256 {})",
                    config.id,
                    config.version,
                    config.sha256
                );
                let raw: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                for w in vigil_core::lint::lint(&config, &raw) {
                    vigil_cli::outln!("{shown}: warning: {w}");
                }
                if let Some(request) = explain {
                    match explain_request(&config, request) {
                        Ok(text) => vigil_cli::out!("{text}"),
                        Err(e) => {
                            eprintln!("{}: {e}", request.display());
                            worst = 2;
                        }
                    }
                }
            }
            Err(errors) => {
                for e in &errors {
                    vigil_cli::outln!("{shown}: {e}");
                }
                vigil_cli::outln!(
                    "{shown}: invalid: {} error{}",
                    errors.len(),
                    if errors.len() == 1 { "" } else { "s" }
                );
                worst = worst.max(1);
            }
        }
    }
    worst
}

/// Runs a sample request (`{"method", "path", "headers", "identity": {"subject", "groups"},
/// "model", "body"}`) through the same gate the filter runs, with the sample's identity taken
/// as verified, and prints the gate's trace: each decision and why, each step the filter would
/// carry out, and where the request ends up. A `model` the request does not name is put where
/// the policy reads it (the header it names, or the body's `model`).
fn explain_request(config: &PluginConfig, file: &Path) -> Result<String, String> {
    let text = std::fs::read(file).map_err(|e| format!("cannot read: {e}"))?;
    let req: Value = serde_json::from_slice(&text).map_err(|e| format!("not JSON: {e}"))?;
    let method = req.get("method").and_then(Value::as_str).unwrap_or("POST");
    let path = req
        .get("path")
        .and_then(Value::as_str)
        .ok_or("the sample request needs a \"path\"")?;
    let mut headers: Vec<(String, String)> = req
        .get("headers")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.to_ascii_lowercase(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let identity = req
        .get("identity")
        .filter(|v| v.is_object())
        .map(|i| Identity {
            provider: "sample".into(),
            issuer: None,
            subject: i.get("subject").and_then(Value::as_str).map(str::to_string),
            email: None,
            groups: i
                .get("groups")
                .and_then(Value::as_array)
                .map(|g| {
                    g.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            expires_at: None,
        });
    let mut body = req.get("body").cloned();
    if let Some(model) = req.get("model").and_then(Value::as_str) {
        match config.models.as_ref().map(|m| &m.source) {
            Some(ModelSource::Header(h)) if !headers.iter().any(|(k, _)| k == h) => {
                headers.push((h.clone(), model.to_string()));
            }
            Some(ModelSource::Path) => {}
            _ => {
                if let Some(Value::Object(o)) = body.as_mut() {
                    o.entry("model").or_insert_with(|| json!(model));
                }
            }
        }
    }
    let body_bytes = match &body {
        Some(Value::String(s)) => Some(s.clone().into_bytes()),
        Some(v) => Some(v.to_string().into_bytes()),
        None => None,
    };
    let who = match &identity {
        Some(i) => format!(
            "{} (groups {})",
            i.subject.as_deref().unwrap_or("?"),
            i.groups.join(", ")
        ),
        None => "an unauthenticated caller".into(),
    };
    let secrets = Secrets::default();
    let mut cx = Cx {
        config,
        callers: Callers::Given(identity),
        secrets: &secrets,
        clock: &|| 0,
        verbose: true,
    };
    let mut gate = Gate::new();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let start = RequestStart {
        route: Route {
            method: method.into(),
            path: path.into(),
            authority: "sample".into(),
        },
        request_id: "sample".into(),
        client_address: None,
    };
    let mut steps = gate
        .request_headers(&mut cx, start, &header, body_bytes.is_none())
        .steps;
    if let (Phase::AwaitingBody, Some(b)) = (gate.phase(), &body_bytes) {
        steps.extend(
            gate.request_body(&mut cx, b.len(), true, &|| b.clone())
                .steps,
        );
    }
    let mut out = format!(
        "request: {method} {path} by {who}, model {}\n",
        gate.log().model().unwrap_or("(none)")
    );
    for step in &steps {
        if let Some(line) = describe(step) {
            out += &format!("  {line}\n");
        }
    }
    out += &format!("outcome: {}\n", outcome(gate.phase()));
    let d = gate.log().decision();
    out += &format!(
        "decision: {} by {}: {}\n",
        d.action,
        d.rule_id
            .as_deref()
            .map(|r| format!("rule {r}"))
            .unwrap_or_else(|| "the policy default".into()),
        d.reason
    );
    Ok(out)
}

/// A gate step as a line of the trace (counters are left out).
fn describe(step: &Step) -> Option<String> {
    Some(match step {
        Step::Note(_, line) => line.clone(),
        Step::RequestHeader(name, None) => format!("step: remove request header {name}"),
        Step::RequestHeader(name, Some(_)) => format!("step: set request header {name}"),
        Step::ResponseHeader(name, _) => format!("step: remove response header {name}"),
        Step::ReplaceBody(..) => "step: replace the body with its masked copy".into(),
        Step::FetchKeys(p) => format!("step: hold until the key set of provider {p} is fetched"),
        Step::CallApproval(c) => {
            let h = |k: &str| {
                c.headers
                    .iter()
                    .find(|(n, _)| n == k)
                    .map_or("", |(_, v)| v.as_str())
            };
            format!(
                "step: ask the approval service: {} {} on cluster {}",
                h(":method"),
                h(":path"),
                c.cluster
            )
        }
        Step::Refuse(r) => format!(
            "step: refuse with {} {}: {}",
            r.status,
            r.code.code(),
            r.message
        ),
        Step::Seal { .. } => "step: seal the session record".into(),
        Step::Count(..) => return None,
    })
}

fn outcome(phase: Phase) -> &'static str {
    match phase {
        Phase::Admitted => "admitted: forwarded to the model server",
        Phase::Refused => "refused: Vigil answers the request itself",
        Phase::AwaitingApproval => "held: the approval service decides (see docs/approvals.md)",
        Phase::AwaitingBody => "waiting for the body (the sample has none)",
        Phase::HeldForKeys(_) => "held until the identity provider's keys arrive",
        Phase::Start | Phase::Sealed => "no decision",
    }
}
