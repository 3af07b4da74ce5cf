//! `vigil audit show` as an investigator runs it: one session out of records vigil.wasm
//! wrote in the host, chosen by request id, by `VM#seq` or by a time; as text and as HTML;
//! a tampered record shown but marked NOT VERIFIED (exit 1); an unknown selector exit 1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use std::path::PathBuf;
use std::process::Command;
use vigil_host::TEST_RECORD_KEY;

fn file(name: &str, lines: &[String]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vigil-show-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("records.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn show(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .env(TEST_RECORD_KEY.0, TEST_RECORD_KEY.1)
        .args(["audit", "show"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap() + &String::from_utf8(out.stderr).unwrap(),
    )
}

fn record(line: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    serde_json::from_str(v["vigil_record"].as_str().unwrap()).unwrap()
}

#[test]
fn one_session_is_shown_by_request_id_by_chain_position_or_by_time() {
    let lines = records_through_filter(40, 2, 0, 0);
    let path = file("select", &lines);
    let f = path.to_str().unwrap();
    let (code, out) = show(&["req-13", f]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("session req-13 ("), "{out}");
    for part in [
        "route     POST /v1/fine_tuning/jobs",
        "decision  block by no-fine-tuning",
        "outcome   local_response, status 403",
        "verified  the record is authentic and its chain is whole",
    ] {
        assert!(out.contains(part), "{part:?} missing from\n{out}");
    }
    let (code, out) = show(&["req-12", f]);
    assert_eq!(code, Some(0), "{out}");
    for part in [
        "outcome   forwarded, status 200",
        "masked    credit_card 1, email 1, us_ssn 1",
        "customer SSN [SSN], mail [EMAIL]",
        "[CREDIT_CARD]",
    ] {
        assert!(out.contains(part), "{part:?} missing from\n{out}");
    }
    assert!(
        !out.contains("123-45-"),
        "the record holds masked text only: {out}"
    );
    let r = record(&lines[20]);
    let by_seq = format!("{}#{}", r["vm_id"].as_str().unwrap(), r["seq"]);
    let (code, out) = show(&[&by_seq, f]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("session req-20 "), "{out}");
    let (code, out) = show(&[r["started_at"].as_str().unwrap(), f]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("session req-"), "{out}");
    assert_eq!(out.matches("session ").count(), 1, "one session for a time");
    let (code, html) = show(&["req-5", "--html", f]);
    assert_eq!(code, Some(0));
    assert!(
        html.starts_with("<!doctype html>") && html.contains("Session req-5"),
        "{html}"
    );
}

#[test]
fn a_tampered_record_is_shown_but_not_verified_and_an_unknown_one_is_not_found() {
    let mut lines = records_through_filter(20, 1, 0, 0);
    lines[7] = lines[7].replace("llama-3-70b", "llama-3-8b");
    let path = file("tampered", &lines);
    let f = path.to_str().unwrap();
    let (code, out) = show(&["req-7", f]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("no verified record") || out.contains("NOT VERIFIED"),
        "{out}"
    );
    // A later record of the same chain: authentic itself, but its chain is broken.
    let (code, out) = show(&["req-12", f]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("NOT VERIFIED") && out.contains("seq 8 is missing"),
        "{out}"
    );
    let (code, out) = show(&["req-999", f]);
    assert_eq!(code, Some(1));
    assert!(out.contains("no verified record matches"), "{out}");
    assert_eq!(show(&["", f]).0, Some(2), "an empty selector");
}

#[test]
fn a_streamed_answer_is_shown_as_the_client_read_it() {
    let body = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Your card \"}}]}\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"[CREDIT_CARD]\"}}]}\n\ndata: [DONE]\n\n";
    let (text, events) = vigil_cli::audit::show::reassemble(body).unwrap();
    assert_eq!(text, "Your card [CREDIT_CARD]");
    assert_eq!(events, 3);
    assert!(vigil_cli::audit::show::reassemble("{\"a\":1}").is_none());
}

#[test]
fn the_examiner_export_has_a_page_per_session_linked_from_the_report_and_in_the_manifest() {
    let lines = records_through_filter(12, 2, 0, 0);
    let path = file("export", &lines);
    let out_dir = path.parent().unwrap().join("export");
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .env(TEST_RECORD_KEY.0, TEST_RECORD_KEY.1)
        .args(["audit", "export", "--out"])
        .arg(&out_dir)
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("manifest.json")).unwrap())
            .unwrap();
    let r = record(&lines[3]);
    let page = format!(
        "sessions/{}-{}.html",
        r["vm_id"].as_str().unwrap().replace('#', "-"),
        r["seq"]
    );
    assert!(
        report.contains(&format!("href=\"{page}\"")),
        "the report links the page"
    );
    let html = std::fs::read_to_string(out_dir.join(&page)).unwrap();
    assert!(
        html.contains("session req-3 ") && html.contains("../report.html"),
        "{html}"
    );
    let listed = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["name"].as_str().unwrap().starts_with("sessions/"))
        .count();
    assert_eq!(listed, 12, "every page is in the manifest with its SHA-256");
}
