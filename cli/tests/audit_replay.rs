//! `vigil audit replay`: recorded requests through a candidate policy's gate, reporting
//! what would change, grouped by change and rule with request ids, as text or JSON lines
//! ending with a summary; the recorded policy itself changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use vigil_host::TEST_RECORD_KEY;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vigil-replay-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn replay(policy: &str, d: &Path, records: &Path, json: bool) -> (Option<i32>, String) {
    let p = d.join("candidate.json");
    std::fs::write(&p, policy).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    cmd.env(TEST_RECORD_KEY.0, TEST_RECORD_KEY.1)
        .args(["audit", "replay", "--policy"])
        .arg(&p)
        .arg(records);
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap() + &String::from_utf8(out.stderr).unwrap(),
    )
}

fn records(d: &Path) -> PathBuf {
    let path = d.join("records.jsonl");
    std::fs::write(&path, records_through_filter(40, 2, 0, 0).join("\n") + "\n").unwrap();
    path
}

#[test]
fn the_recorded_policy_changes_nothing() {
    let d = dir("same");
    let (code, out) = replay(vigil_host::traffic::POLICY, &d, &records(&d), false);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("40 verified record(s) through "), "{out}");
    assert!(out.contains(": 0 would change"), "{out}");
    assert!(out.contains("limits: "), "the limits are stated: {out}");
}

#[test]
fn a_stricter_candidate_reports_each_request_it_would_block_by_rule() {
    let d = dir("stricter");
    let candidate = r#"{"id": "candidate", "version": "2", "approval": {"cluster": "approvals"}, "rules": [
        {"id": "no-fine-tuning", "when": {"path": {"prefix": "/v1/fine_tuning/"}}, "action": {"type": "block", "status": 403}},
        {"id": "wires-need-approval", "when": {"prompt": {"matches": ["request 2[0-9]:"]}}, "action": {"type": "require_approval", "approvers": ["risk"]}},
        {"id": "no-mail-in-prompts", "when": {"prompt": {"matches": ["\\[EMAIL\\]"]}}, "action": {"type": "block", "status": 400}}]}"#;
    let (code, out) = replay(candidate, &d, &records(&d), false);
    assert_eq!(code, Some(0), "it ran: {out}");
    // Requests 20-29 would wait for approval (23 was blocked already); every other chat
    // prompt carries a masked email and would be blocked (rules on personal data see the
    // masked text); the 4 fine-tuning requests were blocked already.
    assert!(out.contains(": 36 would change"), "{out}");
    assert!(out.contains("allow->require_approval: 9"), "{out}");
    assert!(
        out.contains("  by wires-need-approval: req-20, req-21, req-22, req-24"),
        "{out}"
    );
    assert!(out.contains("allow->block: 27"), "{out}");
    assert!(
        out.contains("  by no-mail-in-prompts: req-0, req-1, req-2, req-4"),
        "{out}"
    );
    // --json: one object per changed record, then the summary.
    let (code, out) = replay(candidate, &d, &records(&d), true);
    assert_eq!(code, Some(0));
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 37);
    assert_eq!(lines[0]["change"], "allow->block");
    assert_eq!(lines[0]["after"]["by"], "no-mail-in-prompts");
    assert_eq!(lines[0]["rule_id"], "no-mail-in-prompts");
    let last = lines.last().unwrap();
    // The figures at the top and under "summary" (docs/design.md's contract), the same.
    assert_eq!(last["summary"]["by_change"], last["by_change"]);
    let summary = &last["summary"];
    assert_eq!(summary["records"], 40);
    assert_eq!(summary["changed"], 36);
    assert_eq!(summary["by_change"]["allow->block"], 27);
    assert_eq!(summary["by_change"]["allow->require_approval"], 9);
}

#[test]
fn a_looser_candidate_reports_what_it_would_let_through() {
    let d = dir("looser");
    let (code, out) = replay(r#"{"id": "open", "version": "3"}"#, &d, &records(&d), false);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("block->allow: 4"), "{out}");
    assert!(out.contains("req-3, req-13, req-23, req-33"), "{out}");
}

#[test]
fn an_invalid_candidate_is_named_and_exits_2() {
    let d = dir("invalid");
    let (code, out) = replay(r#"{"id": "x"}"#, &d, &records(&d), false);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("candidate.json"), "{out}");
}
