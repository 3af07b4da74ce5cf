//! Warnings for a valid policy: things that are allowed but almost certainly not what the
//! security team meant. `vigil policy check` prints them; the filter logs them at start.
//!
//! - a rule that can never match, because an earlier enforced rule asks for a subset of its
//!   conditions (so it matches everything this one would);
//! - a prompt regex that matches the empty string (it matches every prompt);
//! - a group a rule tests that no model access entry lets call any model.

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

    #[test]
    fn a_rule_behind_a_broader_one_can_never_match() {
        let w = warnings(
            r#"{"id":"p","version":"1","approval":{"cluster":"approvals"},"rules":[
                {"id":"admins","when":{"path":{"prefix":"/admin/"}},"action":{"type":"block"}},
                {"id":"admin-deletes","when":{"path":{"prefix":"/admin/"},"methods":["DELETE"]},"action":{"type":"require_approval","approvers":["ops"]}},
                {"id":"trial","mode":"shadow","when":{},"action":{"type":"block"}},
                {"id":"after-shadow","when":{"methods":["GET"]},"action":{"type":"allow"}}]}"#,
        );
        assert_eq!(w, vec!["$.rules[1]: rule \"admin-deletes\" can never match: rule \"admins\" ($.rules[0]) comes first and matches every request this one does"]);
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
