//! `vigil audit verify` and `vigil audit export` as an examiner runs them: records written by
//! vigil.wasm in the host, problems named with file and line, exit 0 / 1 / 2, and an export
//! whose manifest matches what it wrote.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use vigil_host::TEST_RECORD_KEY;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vigil-audit-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn vigil(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .env(TEST_RECORD_KEY.0, TEST_RECORD_KEY.1)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn problem_lines(out: &str) -> Vec<&str> {
    out.lines().filter(|l| l.contains(".jsonl:")).collect()
}

#[test]
fn clean_records_verify_with_a_summary_and_exit_0() {
    let dir = scratch("clean");
    let file = write(
        &dir,
        "records.jsonl",
        &records_through_filter(300, 2, 40, 0),
    );
    let (code, out, err) = vigil(&["audit", "verify", file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.starts_with("1 file(s), 300 line(s), 300 record(s): 300 verified, 0 problem(s)\n"),
        "{out}"
    );
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("chain vigil#"))
            .count(),
        2
    );
    assert!(out.ends_with("verified: every record is authentic and every chain is whole\n"));
}

#[test]
fn each_problem_is_named_with_file_and_line_and_exits_1() {
    let dir = scratch("problems");
    let mut lines = records_through_filter(40, 1, 0, 0);
    lines.remove(9); // seq 10 gone
    lines.swap(19, 20); // seq 21 and 22 swapped (lines 20, 21)
    let copy = lines[2].clone();
    lines.insert(30, copy); // seq 3 again at line 31
    lines[34] = lines[34].replace("llama-3-70b", "llama-3-8b"); // edited at line 35
    lines[36].truncate(100); // cut at line 37
    let file = write(&dir, "records.jsonl", &lines);
    let f = file.to_str().unwrap();
    let (code, out, _) = vigil(&["audit", "verify", f]);
    assert_eq!(code, Some(1), "{out}");
    let problems = problem_lines(&out);
    let at = |line: usize| format!("{f}:{line}: ");
    assert!(
        problems[0].starts_with(&format!("{}seq 10 is missing from chain vigil#", at(10))),
        "{problems:#?}"
    );
    assert!(
        problems[1].starts_with(&format!("{}out of order: seq 22 of chain", at(20))),
        "{problems:#?}"
    );
    assert!(
        problems[2].starts_with(&format!(
            "{}duplicate of the record at {f}:3 (seq 3)",
            at(31)
        )),
        "{problems:#?}"
    );
    assert_eq!(
        problems[3],
        format!(
            "{}content does not match its hash: the record was changed",
            at(35)
        )
    );
    // The chain notices what the unverifiable record at line 35 leaves out.
    assert!(
        problems[4].starts_with(&format!("{}seq 35 is missing", at(36))),
        "{problems:#?}"
    );
    assert!(
        problems[5].starts_with(&format!("{}truncated line: the JSON ends early", at(37))),
        "{problems:#?}"
    );
    assert_eq!(problems.len(), 7, "{problems:#?}");
    assert!(out.ends_with("NOT VERIFIED\n"));
}

#[test]
fn the_wrong_key_an_unknown_version_and_a_missing_key_are_told_apart() {
    let dir = scratch("keys");
    let lines = records_through_filter(3, 1, 0, 0);
    let file = write(&dir, "records.jsonl", &lines);
    let f = file.to_str().unwrap();
    let other = dir.join("other.key");
    std::fs::write(&other, "another-record-key-0123456789abcdef0123456789\n").unwrap();
    let (code, out, _) = vigil(&["audit", "verify", "--key-file", other.to_str().unwrap(), f]);
    assert_eq!(code, Some(1));
    assert!(problem_lines(&out)[0].contains("signed with key "), "{out}");
    // Two keys (rotation): the right one is picked by its fingerprint.
    let right = dir.join("right.key");
    std::fs::write(&right, TEST_RECORD_KEY.1).unwrap();
    let (code, _, _) = vigil(&[
        "audit",
        "verify",
        "--key-file",
        other.to_str().unwrap(),
        "--key-file",
        right.to_str().unwrap(),
        f,
    ]);
    assert_eq!(code, Some(0));

    let v2 = write(&dir, "v2.jsonl", &[r#"{"v": 2, "seq": 1}"#.to_string()]);
    let (code, out, _) = vigil(&["audit", "verify", v2.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(
        out.contains("v2.jsonl:1: record version 2 is not one this verifier reads (v 1)"),
        "{out}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .env_remove(TEST_RECORD_KEY.0)
        .args(["audit", "verify", f])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "vigil audit verify: no record key: the environment has no VIGIL_RECORD_KEY (or pass --key-file)\n"
    );
}

#[test]
fn an_unreadable_file_exits_2_and_is_named() {
    let (code, out, _) = vigil(&["audit", "verify", "/nonexistent/records.jsonl"]);
    assert_eq!(code, Some(2));
    assert!(
        out.contains("/nonexistent/records.jsonl: unreadable: "),
        "{out}"
    );
}

#[test]
fn heads_written_by_one_run_catch_a_deleted_tail_in_the_next() {
    let dir = scratch("heads");
    let lines = records_through_filter(20, 1, 0, 0);
    let file = write(&dir, "records.jsonl", &lines);
    let heads = dir.join("heads.json");
    let (code, _, _) = vigil(&[
        "audit",
        "verify",
        "--write-heads",
        heads.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0));
    let cut = write(&dir, "cut.jsonl", &lines[..17]);
    let (code, out, _) = vigil(&["audit", "verify", cut.to_str().unwrap()]);
    assert_eq!(
        code,
        Some(0),
        "without heads, a cut tail leaves no trace: {out}"
    );
    let (code, out, _) = vigil(&[
        "audit",
        "verify",
        "--expect-heads",
        heads.to_str().unwrap(),
        cut.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1));
    assert!(
        out.contains("but the expected heads reach seq 20: seq 18..20 are missing"),
        "{out}"
    );
}

#[test]
fn rotated_files_verify_in_order_and_a_partial_start_needs_saying() {
    let dir = scratch("rotated");
    let lines = records_through_filter(30, 1, 0, 0);
    let a = write(&dir, "a.jsonl", &lines[..12]);
    let b = write(&dir, "b.jsonl", &lines[12..]);
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    assert_eq!(vigil(&["audit", "verify", a, b]).0, Some(0));
    let (code, out, _) = vigil(&["audit", "verify", b, a]);
    assert_eq!(code, Some(1), "{out}");
    let (code, out, _) = vigil(&["audit", "verify", b]);
    assert_eq!(code, Some(1));
    assert!(
        out.contains("starts at seq 13: seq 1..12 are not in the input"),
        "{out}"
    );
    assert_eq!(vigil(&["audit", "verify", "--partial", b]).0, Some(0));
}

#[test]
fn an_export_selects_writes_four_files_and_its_manifest_hashes_them() {
    let dir = scratch("export");
    let lines = records_through_filter(200, 2, 50, 0);
    let file = write(&dir, "records.jsonl", &lines);
    let out_dir = dir.join("out");
    let (code, out, err) = vigil(&[
        "audit",
        "export",
        file.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--decision",
        "block",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    // Every tenth request asked for fine-tuning, which the policy blocks.
    assert!(out.contains("exported 20 record(s)"), "{out}");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["exported_records"], 20);
    assert_eq!(manifest["verification"]["clean"], true);
    assert_eq!(manifest["filters"]["decision"], "block");
    for f in manifest["files"].as_array().unwrap() {
        let bytes = std::fs::read(out_dir.join(f["name"].as_str().unwrap())).unwrap();
        assert_eq!(
            f["sha256"],
            vigil_core::digest::sha256_hex(&bytes),
            "{}",
            f["name"]
        );
    }
    assert_eq!(
        manifest["inputs"][0]["sha256"],
        vigil_core::digest::sha256_hex(&std::fs::read(&file).unwrap())
    );

    // The exported JSONL holds the records as written: each still verifies alone.
    let jsonl = std::fs::read_to_string(out_dir.join("records.jsonl")).unwrap();
    let key = key();
    for line in jsonl.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(vigil_core::record::check::check(&v, std::slice::from_ref(&key)).is_ok());
        assert_eq!(v["decision"]["action"], "block");
    }
    let csv = std::fs::read_to_string(out_dir.join("records.csv")).unwrap();
    assert_eq!(csv.lines().count(), 21);
    assert!(csv.starts_with("vm_id,seq,request_id,started_at,"));
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(html.contains("Verified: every record is authentic and every chain is whole."));
    assert!(html.contains("<h2>Blocked requests (20)</h2>"));
    assert!(
        html.contains("<td>no-fine-tuning</td><td>rule no-fine-tuning matched</td>"),
        "the rule and reason of each block"
    );
    assert!(html.contains("<h2>Personal data masked</h2>"));
    assert!(!html.contains("<script"), "self-contained, no scripts");
}

#[test]
fn an_export_filters_by_time_and_reports_a_failed_verification() {
    let dir = scratch("export-time");
    let mut lines = records_through_filter(100, 1, 0, 0);
    lines.remove(50);
    let file = write(&dir, "records.jsonl", &lines);
    let out_dir = dir.join("out");
    // The host clock starts at 1_795_000_000 s (2026-11-18T11:06:40Z) and each exchange
    // advances it 7 ms: the first 10 requests start before 11:06:40.071.
    let (code, out, _) = vigil(&[
        "audit",
        "export",
        file.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--to",
        "2026-11-18T11:06:40.071Z",
    ]);
    assert_eq!(code, Some(1), "the input has a gap: {out}");
    assert!(out.contains("exported 10 record(s)"), "{out}");
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(html.contains("NOT VERIFIED"));
    assert!(html.contains("seq 51 is missing from chain"));
    // Nine of the ten went to the model (the fourth asked for fine-tuning): each prompt's SSN
    // and email and each answer's card number masked before the record kept them.
    for entity in ["us_ssn", "email", "credit_card"] {
        assert!(
            html.contains(&format!(
                "<tr><td>{entity}</td><td class=n>9</td><td class=n>9</td></tr>"
            )),
            "masked entity counts: {entity}"
        );
    }
    let (code, _, err) = vigil(&[
        "audit",
        "export",
        file.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--from",
        "yesterday",
    ]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("--from: invalid RFC 3339 time \"yesterday\""),
        "{err}"
    );
}
