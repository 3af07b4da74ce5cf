//! `vigil policy check`: the same validation the filter runs in `on_configure`, the
//! warnings of `vigil_core::lint`, and `--explain`, which walks a sample request through the
//! rules and says which one decides and why the others did not match.

use serde_json::Value;
use std::path::{Path, PathBuf};
use vigil_core::access::{model_from_body, ModelAccess, ModelSource};
use vigil_core::identity::Identity;
use vigil_core::rules::RequestFacts;
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

/// Walks a sample request (`{"method", "path", "headers", "identity": {"subject", "groups"},
/// "model", "body"}`) through the rules.
fn explain_request(config: &PluginConfig, file: &Path) -> Result<String, String> {
    let text = std::fs::read(file).map_err(|e| format!("cannot read: {e}"))?;
    let req: Value = serde_json::from_slice(&text).map_err(|e| format!("not JSON: {e}"))?;
    let method = req.get("method").and_then(Value::as_str).unwrap_or("POST");
    let path = req
        .get("path")
        .and_then(Value::as_str)
        .ok_or("the sample request needs a \"path\"")?;
    let headers: Vec<(String, String)> = req
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
    let body = req.get("body").cloned();
    let body_text = match &body {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    };
    let parsed: Option<Value> = serde_json::from_str(&body_text).ok();
    let model = req
        .get("model")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| match config.models.as_ref().map(|m| &m.source) {
            Some(ModelSource::Path) => ModelAccess::model_from_path(path),
            Some(ModelSource::Header(h)) => {
                headers.iter().find(|(k, _)| k == h).map(|(_, v)| v.clone())
            }
            _ => model_from_body(body_text.as_bytes()).ok(),
        });
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let facts = RequestFacts {
        identity: identity.as_ref(),
        method,
        path,
        model: model.as_deref(),
        header: &header,
        body: parsed.as_ref(),
        body_bytes: body_text.len() as u64,
    };
    let who = match &identity {
        Some(i) => format!(
            "{} (groups {})",
            i.subject.as_deref().unwrap_or("?"),
            i.groups.join(", ")
        ),
        None => "an unauthenticated caller".into(),
    };
    let mut out = format!(
        "request: {method} {path} by {who}, model {}\n",
        model.as_deref().unwrap_or("(none)")
    );
    if let (Some(access), Some(m)) = (&config.models, &model) {
        out += &format!(
            "  models: {}\n",
            if access.allows(m, identity.as_ref()) {
                "the caller may use this model"
            } else {
                "DENIED: the caller may not use this model (403 before any rule)"
            }
        );
    }
    let mut decided_by: Option<&str> = None;
    for (i, rule) in config.rules.rules.iter().enumerate() {
        if let Some(by) = decided_by {
            out += &format!(
                "  rule {} ($.rules[{i}]): not reached (rule {by} decided)\n",
                rule.id
            );
            continue;
        }
        let verdict = match rule.when.first_failure(&facts) {
            Some(condition) => format!("no match ({condition} does not hold)"),
            None if rule.shadow => format!(
                "matches in shadow mode: would {} (recorded, not enforced)",
                rule.action.name()
            ),
            None => {
                decided_by = Some(&rule.id);
                format!("MATCHES: {}", rule.action.name())
            }
        };
        out += &format!("  rule {} ($.rules[{i}]): {verdict}\n", rule.id);
    }
    let v = config.rules.evaluate(&facts);
    out += &format!(
        "decision: {} by {}: {}\n",
        v.action.name(),
        v.rule_id
            .as_deref()
            .map(|r| format!("rule {r}"))
            .unwrap_or_else(|| "the policy default".into()),
        v.reason
    );
    Ok(out)
}
