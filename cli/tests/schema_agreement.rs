//! policies/schema.json and the Rust policy types agree: every shipped and test policy
//! that Vigil accepts validates under the schema, and every invalid policy of
//! testdata/policies/invalid.json is refused by both, except the few whose fault only
//! Vigil's own checks can see (each listed with why).

use serde_json::Value;
use std::path::{Path, PathBuf};
use vigil_core::PluginConfig;

/// The workspace root, where the scripts, policies and test data live.
use vigil_host::artifacts::workspace_root as root;

fn schema() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("policies/schema.json")).unwrap(),
    )
    .unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// Faults a JSON Schema cannot express.
const ONLY_VIGIL_SEES: &[(&str, &str)] = &[
    (
        "approval-rule-without-approval-section",
        "a section required because of a value deep in another (an action type)",
    ),
    (
        "approval-max-wait-in-ticket-mode",
        "a field allowed only with another field's value (written as prose in the schema)",
    ),
    (
        "duplicate-provider-names",
        "uniqueness of a field across array items",
    ),
    (
        "duplicate-rule-ids",
        "uniqueness of a field across array items",
    ),
    ("regex-invalid", "the regex must compile in regex-lite"),
    (
        "regex-matches-empty",
        "the regex must not match the empty string",
    ),
    (
        "masking-token-without-key",
        "a field required only when another field has a given value somewhere in an object",
    ),
    (
        "masking-custom-bad-regex",
        "the regex must compile in regex-lite",
    ),
    (
        "masking-custom-matches-empty",
        "the regex must not match the empty string",
    ),
];

#[test]
fn every_policy_vigil_accepts_validates_under_the_schema() {
    let validator = schema();
    let mut policies: Vec<(String, Value)> = Vec::new();
    for file in json_files(&root().join("policies"))
        .into_iter()
        .chain(json_files(&root().join("policies/examples")))
    {
        if file.ends_with("schema.json") {
            continue;
        }
        policies.push((
            file.display().to_string(),
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap(),
        ));
    }
    for file in json_files(&root().join("testdata/captures")) {
        let capture: Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        if capture["config"].is_object() {
            policies.push((
                format!("{} (inline config)", file.display()),
                capture["config"].clone(),
            ));
        }
    }
    assert!(policies.len() >= 4);
    for (name, policy) in &policies {
        assert!(
            PluginConfig::parse(policy.to_string().as_bytes()).is_ok(),
            "{name}: Vigil refuses it"
        );
        let errors: Vec<String> = validator
            .iter_errors(policy)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{name}: schema refuses it: {errors:?}");
    }
}

#[test]
fn every_invalid_policy_is_refused_by_the_schema_too_unless_only_vigil_can_see_why() {
    let validator = schema();
    let mut disagree = Vec::new();
    for case in vigil_core::testkit::invalid_policies().unwrap() {
        let name = case.name.as_str();
        let Some(policy) = &case.policy else {
            // Not JSON at all: nothing for a schema to see, and Vigil refuses it.
            assert!(serde_json::from_str::<Value>(&case.text).is_err(), "{name}");
            continue;
        };
        let schema_accepts = validator.is_valid(policy);
        let exempt = ONLY_VIGIL_SEES.iter().any(|(n, _)| *n == name);
        if schema_accepts != exempt {
            disagree.push(format!(
                "{name}: schema {}",
                if schema_accepts {
                    "accepts it"
                } else {
                    "refuses it (remove it from ONLY_VIGIL_SEES)"
                }
            ));
        }
    }
    assert!(disagree.is_empty(), "{}", disagree.join("\n"));
}
