//! `vigil policy check`: every error with its JSON path; exit 0, 1 or 2.

use std::path::PathBuf;
use std::process::Command;

fn check(files: &[&str]) -> (Option<i32>, String, String) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .current_dir(root)
        .arg("policy")
        .arg("check")
        .args(files)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn the_shipped_default_policy_is_valid() {
    let (code, out, _) = check(&["policies/default.json"]);
    assert_eq!(code, Some(0));
    assert!(
        out.starts_with("policies/default.json: ok: policy vigil-default version 1 (sha256 "),
        "{out}"
    );
}

#[test]
fn an_invalid_policy_lists_every_error_with_path_and_exits_1() {
    let (code, out, _) = check(&["cli/tests/data/invalid-policy.json"]);
    assert_eq!(code, Some(1));
    let f = "cli/tests/data/invalid-policy.json";
    assert_eq!(
        out,
        format!(
            "{f}: $.id: must use only letters, digits, '-', '_' and '.', found \"bad id!\"\n\
             {f}: $.version: expected a string, found number 2\n\
             {f}: $.record.request_id_header: must be a lowercase header name, found \"X-Request-Id\"\n\
             {f}: $.record.colour: unknown field \"colour\" (expected one of: ask_stream_usage, checkpoint, key_env, max_body_bytes, property, request_id_header, seal_to)\n\
             {f}: invalid: 4 errors\n"
        )
    );
}

#[test]
fn an_unreadable_file_exits_2_even_next_to_invalid_ones() {
    let (code, out, err) = check(&["cli/tests/data/invalid-policy.json", "no/such/policy.json"]);
    assert_eq!(code, Some(2));
    assert!(out.contains("invalid: 4 errors"));
    assert!(
        err.starts_with("no/such/policy.json: cannot read:"),
        "{err}"
    );
}

#[test]
fn a_file_that_is_not_json_is_invalid_with_its_position() {
    let (code, out, _) = check(&["README.md"]);
    assert_eq!(code, Some(1));
    assert!(
        out.starts_with("README.md: $: invalid JSON at line 1 column"),
        "{out}"
    );
}

#[test]
fn every_invalid_policy_in_testdata_exits_1_with_its_errors() {
    let dir = std::env::temp_dir().join(format!("vigil-invalid-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for case in vigil_core::testkit::invalid_policies().unwrap() {
        let name = &case.name;
        let file = dir.join(format!("{name}.json"));
        std::fs::write(&file, &case.text).unwrap();
        let f = file.display().to_string();
        let (code, out, _) = check(&[f.as_str()]);
        assert_eq!(code, Some(1), "{name}");
        let mut want: Vec<String> = case.errors.iter().map(|e| format!("{f}: {e}")).collect();
        let n = want.len();
        want.push(format!(
            "{f}: invalid: {n} error{}",
            if n == 1 { "" } else { "s" }
        ));
        assert_eq!(out.lines().collect::<Vec<_>>(), want, "{name}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn warnings_are_printed_and_a_valid_policy_with_warnings_still_exits_0() {
    let dir = std::env::temp_dir().join(format!("vigil-warn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("p.json");
    std::fs::write(
        &file,
        r#"{"id":"p","version":"1","rules":[
            {"id":"all-admin","when":{"path":{"prefix":"/admin/"}},"action":{"type":"block"}},
            {"id":"admin-get","when":{"path":{"prefix":"/admin/"},"methods":["GET"]},"action":{"type":"allow"}}]}"#,
    )
    .unwrap();
    let f = file.display().to_string();
    let (code, out, _) = check(&[f.as_str()]);
    assert_eq!(code, Some(0));
    assert!(out.contains(&format!("{f}: warning: $.rules[1]: rule \"admin-get\" can never match: rule \"all-admin\" ($.rules[0]) comes first")), "{out}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn explain_shows_which_rule_decides_a_sample_request_and_why_the_others_do_not() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .current_dir(root)
        .args([
            "policy",
            "check",
            "policies/examples/credit-scoring.json",
            "--explain",
            "policies/examples/requests/large-batch.json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("request: POST /v2/models/credit-score-v3/infer by svc-batch-scoring (groups ), model credit-score-v3\n"), "{text}");
    assert!(
        text.contains(
            "  rule large-batch-needs-approval ($.rules[0]): MATCHES: require_approval\n"
        ),
        "{text}"
    );
    assert!(text.contains("  rule no-model-management ($.rules[2]): not reached (rule large-batch-needs-approval decided)\n"), "{text}");
    // The trace is the gate's: the steps the filter would carry out, and where it ends.
    assert!(
        text.contains("  step: ask the approval service: POST /v1/tickets on cluster approvals\n"),
        "{text}"
    );
    assert!(
        text.contains("outcome: held: the approval service decides"),
        "{text}"
    );
    assert!(text.ends_with("decision: require_approval by rule large-batch-needs-approval: A batch of more than 100 applications is a bulk decision and needs a risk officer\n"), "{text}");
}
