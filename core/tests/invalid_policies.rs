// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! testdata/policies/invalid.json: every invalid policy fails validation with exactly the
//! errors listed, each naming its JSON path and the bad value. The same file drives the
//! filter (host/tests/invalid_policies.rs) and `vigil policy check` (cli/tests).

use serde_json::Value;
use std::path::PathBuf;
use vigil_core::PluginConfig;

#[test]
fn every_invalid_policy_fails_with_its_exact_errors() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/policies/invalid.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut wrong = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let text = case["policy_text"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| case["policy"].to_string());
        let want: Vec<&str> = case["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        match PluginConfig::parse(text.as_bytes()) {
            Ok(_) => wrong.push(format!("{name}: accepted")),
            Err(errors) => {
                let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
                if got != want {
                    wrong.push(format!("{name}: expected {want:?}, got {got:?}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
