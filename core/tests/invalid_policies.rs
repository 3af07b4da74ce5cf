// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! testdata/policies/invalid.json: every invalid policy fails validation with exactly the
//! errors listed, each naming its JSON path and the bad value. The same file drives the
//! filter (host/tests/invalid_policies.rs) and `vigil policy check` (cli/tests).

use vigil_core::testkit;
use vigil_core::PluginConfig;

#[test]
fn every_invalid_policy_fails_with_its_exact_errors() {
    let cases = testkit::invalid_policies().unwrap();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut wrong = Vec::new();
    for case in &cases {
        match PluginConfig::parse(case.text.as_bytes()) {
            Ok(_) => wrong.push(format!("{}: accepted", case.name)),
            Err(errors) => {
                let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
                if got != case.errors {
                    wrong.push(format!(
                        "{}: expected {:?}, got {got:?}",
                        case.name, case.errors
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
