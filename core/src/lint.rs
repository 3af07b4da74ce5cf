//! Warnings for a valid policy: things that are allowed but almost certainly not what the
//! security team meant. `vigil policy check` prints them; the filter logs them at start.
//!
//! - a rule that can never match, because an earlier enforced rule asks for a subset of its
//!   conditions (so it matches everything this one would);
//! - a prompt regex that matches the empty string (it matches every prompt);
//! - a group a rule tests that no model access entry lets call any model;
//! - a body limit Envoy's buffer cannot hold, or an approval wait longer than Envoy lets a
//!   quiet stream live (the `envoy` section, core/src/envoy.rs).

use crate::config::PluginConfig;
use crate::json_reader::PathError;
use serde_json::Value;

/// Every warning for a policy that already parsed; `raw` is its JSON.
pub fn lint(config: &PluginConfig, raw: &Value) -> Vec<PathError> {
    let mut warnings = Vec::new();
    let raw_rules = raw
        .get("rules")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let empty = Value::Object(Default::default());
    for (j, later) in config.rules.rules.iter().enumerate() {
        let later_when = raw_rules
            .get(j)
            .and_then(|r| r.get("when"))
            .unwrap_or(&empty);
        for (i, earlier) in config.rules.rules[..j].iter().enumerate() {
            if earlier.shadow {
                continue;
            }
            let earlier_when = raw_rules
                .get(i)
                .and_then(|r| r.get("when"))
                .unwrap_or(&empty);
            if subset(earlier_when, later_when) {
                warnings.push(PathError {
                    path: format!("$.rules[{j}]"),
                    message: format!("rule {:?} can never match: rule {:?} ($.rules[{i}]) comes first and matches every request this one does", later.id, earlier.id),
                });
                break;
            }
        }
        for (k, re) in later.when.prompt.iter().enumerate() {
            if re.is_match("") {
                warnings.push(PathError {
                    path: format!("$.rules[{j}].when.prompt.matches[{k}]"),
                    message: format!(
                        "regex {:?} matches the empty string, so it matches every prompt",
                        re.as_str()
                    ),
                });
            }
        }
        if let Some(models) = &config.models {
            for (kind, groups) in [
                ("any", &later.when.groups_any),
                ("all", &later.when.groups_all),
            ] {
                for g in groups {
                    if !models
                        .allow
                        .iter()
                        .any(|r| r.everyone || r.groups.contains(g))
                    {
                        warnings.push(PathError {
                            path: format!("$.rules[{j}].when.groups.{kind}"),
                            message: format!("group {g:?} may call no model ($.models.allow names it nowhere), so this rule only sees requests that are refused anyway"),
                        });
                    }
                }
            }
        }
    }
    warnings.extend(envoy_fit(config));
    warnings.extend(identity_footguns(config));
    warnings
}

/// Groups that any provider's tokens can claim, and approvals nobody can be told apart in.
fn identity_footguns(config: &PluginConfig) -> Vec<PathError> {
    let mut warnings = Vec::new();
    let scoped = |g: &str| {
        g.split_once(':')
            .is_some_and(|(p, _)| config.provider_names.iter().any(|n| n == p))
    };
    if config.provider_names.len() > 1 {
        let example = &config.provider_names[0];
        let mut unscoped = |path: String, g: &str| {
            if !scoped(g) {
                warnings.push(PathError {
                    path,
                    message: format!("group {g:?} is not scoped to a provider: with several providers, any of them can issue it; write it as \"{example}:{g}\""),
                });
            }
        };
        for (j, rule) in config.rules.rules.iter().enumerate() {
            for (kind, groups) in [
                ("any", &rule.when.groups_any),
                ("all", &rule.when.groups_all),
                ("none", &rule.when.groups_none),
            ] {
                for g in groups {
                    unscoped(format!("$.rules[{j}].when.groups.{kind}"), g);
                }
            }
            if let crate::rules::Action::RequireApproval(a) = &rule.action {
                for g in &a.approvers {
                    unscoped(format!("$.rules[{j}].action.approvers"), g);
                }
            }
        }
        if let Some(models) = &config.models {
            for (i, entry) in models.allow.iter().enumerate() {
                for g in &entry.groups {
                    unscoped(format!("$.models.allow[{i}].groups"), g);
                }
            }
        }
    }
    if let Some(crate::access::ModelSource::Header(h)) = config.models.as_ref().map(|m| &m.source) {
        warnings.push(PathError {
            path: "$.models.from".into(),
            message: format!("the model is read from the {h} header, while OpenAI-style servers run the model the body names: every request with a body is buffered to check that they agree (400 model_mismatch otherwise); prefer \"from\": \"body\""),
        });
    }
    if config.provider_names.is_empty() && config.rules.may_need_approval() {
        warnings.push(PathError {
            path: "$.identity".into(),
            message: "a rule requires approval but no identity provider verifies callers: every caller shares the same tickets, and one approval passes anyone's identical request".into(),
        });
    }
    warnings
}

/// Where the policy asks for more than the Envoy it states (`envoy`) gives.
fn envoy_fit(config: &PluginConfig) -> Vec<PathError> {
    use crate::envoy::CHUNK_HEADROOM_BYTES;
    let envoy = &config.envoy;
    let mut warnings = Vec::new();
    let needed = config.max_request_body_bytes + CHUNK_HEADROOM_BYTES;
    if envoy.buffer_limit_bytes < needed {
        warnings.push(PathError {
            path: "$.max_request_body_bytes".into(),
            message: format!(
                "Envoy buffers {} bytes per stream ($.envoy.buffer_limit_bytes), less than this limit plus one chunk ({needed}): bodies near the limit get Envoy's own 413 instead of Vigil's decision; raise the listener's per_connection_buffer_limit_bytes (and $.envoy.buffer_limit_bytes) to at least {needed}",
                envoy.buffer_limit_bytes
            ),
        });
    }
    for (j, rule) in config.rules.rules.iter().enumerate() {
        if let crate::rules::Action::RequireApproval(a) = &rule.action {
            let bound = envoy.wait_bound_s(a.max_wait_s);
            if a.mode == crate::rules::ApprovalMode::Wait && bound < a.max_wait_s {
                warnings.push(PathError {
                    path: format!("$.rules[{j}].action.max_wait_s"),
                    message: format!(
                        "Envoy ends a quiet stream after {} s ($.envoy.stream_idle_timeout_s), so this wait is cut to {bound} s; lower max_wait_s or raise the route's idle_timeout",
                        envoy.stream_idle_timeout_s
                    ),
                });
            }
        }
    }
    warnings
}

/// Whether every condition of `a` appears, identically, in `b` (so `b` implies `a`).
fn subset(a: &Value, b: &Value) -> bool {
    match (a.as_object(), b.as_object()) {
        (Some(a), Some(b)) => a.iter().all(|(k, v)| b.get(k) == Some(v)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warnings(policy: &str) -> Vec<String> {
        let raw: Value = serde_json::from_str(policy).unwrap();
        let config = PluginConfig::parse(policy.as_bytes()).unwrap();
        lint(&config, &raw)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// The warnings other than the one about approvals without identity providers, which
    /// most of these small policies would get.
    fn warnings_but_identity(policy: &str) -> Vec<String> {
        let mut w = warnings(policy);
        w.retain(|l| !l.starts_with("$.identity:"));
        w
    }

    #[test]
    fn a_rule_behind_a_broader_one_can_never_match() {
        let w = warnings_but_identity(
            r#"{"id":"p","version":"1","approval":{"cluster":"approvals"},"rules":[
                {"id":"admins","when":{"path":{"prefix":"/admin/"}},"action":{"type":"block"}},
                {"id":"admin-deletes","when":{"path":{"prefix":"/admin/"},"methods":["DELETE"]},"action":{"type":"require_approval","approvers":["ops"]}},
                {"id":"trial","mode":"shadow","when":{},"action":{"type":"block"}},
                {"id":"after-shadow","when":{"methods":["GET"]},"action":{"type":"allow"}}]}"#,
        );
        assert_eq!(w, vec!["$.rules[1]: rule \"admin-deletes\" can never match: rule \"admins\" ($.rules[0]) comes first and matches every request this one does"]);
    }

    #[test]
    fn a_body_limit_or_a_wait_that_envoy_cannot_honour_is_flagged() {
        let w = warnings_but_identity(
            r#"{"id":"p","version":"1","max_request_body_bytes":1048576,"approval":{"cluster":"approvals"},
                "envoy":{"buffer_limit_bytes":1048576,"stream_idle_timeout_s":120},"rules":[
                {"id":"wire","when":{},"action":{"type":"require_approval","approvers":["risk"],"mode":"wait","max_wait_s":300}}]}"#,
        );
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].starts_with("$.max_request_body_bytes: Envoy buffers 1048576 bytes"),
            "{}",
            w[0]
        );
        assert!(w[0].ends_with("at least 1114112"), "{}", w[0]);
        assert!(
            w[1].starts_with("$.rules[0].action.max_wait_s: Envoy ends a quiet stream after 120 s"),
            "{}",
            w[1]
        );
        assert!(w[1].contains("cut to 115 s"), "{}", w[1]);
        let defaults_fit_stock_envoy = warnings(r#"{"id":"p","version":"1"}"#);
        assert!(
            defaults_fit_stock_envoy.is_empty(),
            "{defaults_fit_stock_envoy:?}"
        );
    }

    #[test]
    fn unscoped_groups_with_several_providers_and_approvals_without_identity_are_flagged() {
        let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
        let w = warnings(&format!(
            r#"{{"id":"p","version":"1","identity":{{"providers":[
                {{"name":"corp","issuer":"https://corp","jwks":{jwks}}},
                {{"name":"partner","issuer":"https://partner","jwks":{jwks}}}]}},
                "models":{{"allow":[{{"model":"m","groups":["analysts","corp:analysts"]}}]}},
                "rules":[{{"id":"r","when":{{"groups":{{"any":["corp:analysts","tellers"]}}}},"action":{{"type":"block"}}}}]}}"#
        ));
        let unscoped: Vec<&String> = w.iter().filter(|l| l.contains("is not scoped")).collect();
        assert_eq!(unscoped.len(), 2, "{w:?}");
        assert!(
            unscoped[0].starts_with("$.rules[0].when.groups.any: group \"tellers\" is not scoped"),
            "{}",
            unscoped[0]
        );
        assert!(
            w.iter()
                .any(|l| l.starts_with("$.models.allow[0].groups: group \"analysts\"")),
            "{w:?}"
        );
        let w = warnings(
            r#"{"id":"p","version":"1","approval":{"cluster":"approvals"},"rules":[
                {"id":"r","when":{},"action":{"type":"require_approval","approvers":["risk"]}}]}"#,
        );
        assert!(
            w.iter()
                .any(|l| l
                    .starts_with("$.identity: a rule requires approval but no identity provider")),
            "{w:?}"
        );
    }

    #[test]
    fn empty_matching_regexes_and_groups_without_models_are_flagged() {
        let w = warnings(
            r#"{"id":"p","version":"1","models":{"allow":[{"model":"m","groups":["analysts"]}]},"rules":[
                {"id":"r","when":{"groups":{"any":["analyst"]},"prompt":{"matches":["x*"]}},"action":{"type":"block"}}]}"#,
        );
        assert_eq!(
            w,
            vec![
                "$.rules[0].when.prompt.matches[0]: regex \"x*\" matches the empty string, so it matches every prompt",
                "$.rules[0].when.groups.any: group \"analyst\" may call no model ($.models.allow names it nowhere), so this rule only sees requests that are refused anyway"
            ]
        );
    }
}
