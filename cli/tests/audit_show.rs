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
    // The events themselves, numbered, as they went.
    let list = vigil_cli::audit::show::event_list(body);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 3, "{list}");
    assert!(
        lines[1].trim_start().starts_with("2  {\"choices\""),
        "{list}"
    );
    assert!(lines[2].ends_with("3  [DONE]"), "{list}");
    let named = vigil_cli::audit::show::event_list("event: message_stop\ndata: {}\n\n");
    assert!(named.ends_with("1  message_stop {}"), "{named}");
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

/// The approval service, started for real (SQLite), with one ticket opened by the gateway
/// and decided by a risk officer; returns the child, its address and the ticket.
fn approval_service(d: &std::path::Path) -> (std::process::Child, String, serde_json::Value) {
    use std::io::{BufRead, BufReader};
    const FILTER_KEY: &str = "show-test-filter-key-0123456789";
    let policy = d.join("policy.json");
    std::fs::write(&policy, serde_json::json!({"id": "p", "version": "1",
        "identity": {"providers": [{"name": "bank-idp", "issuer": "https://idp.bank.test", "algorithms": ["HS256"],
            "jwks": {"keys": [{"kty": "oct", "alg": "HS256", "kid": "t1", "k": APPROVER_KEY_B64}]}}]}}).to_string()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .env("SHOW_TEST_FILTER_KEY", FILTER_KEY)
        .args([
            "approvals",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--filter-key-env",
            "SHOW_TEST_FILTER_KEY",
            "--policy",
        ])
        .arg(&policy)
        .arg("--db")
        .arg(d.join("approvals.db"))
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the service ends before listening")
            .unwrap();
        if let Some(addr) = line.split("listening on http://").nth(1) {
            break addr.split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    let ticket: serde_json::Value = ureq::post(&format!("http://{addr}/v1/tickets"))
        .set("x-vigil-filter-key", FILTER_KEY)
        .send_json(
            serde_json::json!({"request_digest": "ab".repeat(32), "subject": "ana",
            "email": "ana@bank.test", "issuer": "https://idp.bank.test", "groups": ["analysts"],
            "model": "llama-3-70b", "rule_id": "wires", "approver_groups": ["risk"],
            "excerpt": "wire 25,000 to account [ACCOUNT]", "request_id": "req-12",
            "ttl_s": 600, "approved_ttl_s": 600, "uses": 1}),
        )
        .unwrap()
        .into_json()
        .unwrap();
    let id = ticket["id"].as_str().unwrap();
    ureq::post(&format!("http://{addr}/v1/tickets/{id}/decision"))
        .set("authorization", &format!("Bearer {}", approver_token("rita", &["risk"])))
        .send_json(serde_json::json!({"decision": "approve", "reason": "callback verified with the customer"}))
        .unwrap();
    (child, format!("http://{addr}"), ticket)
}

const APPROVER_KEY_B64: &str = "c2hvdy10ZXN0LWFwcHJvdmVyLWtleS1ub3QtYS1zZWNyZXQtMDAwMDAw";

fn approver_token(subject: &str, groups: &[&str]) -> String {
    use base64::Engine;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({"iss": "https://idp.bank.test", "sub": subject,
        "email": format!("{subject}@bank.test"), "groups": groups, "iat": now - 60, "exp": now + 3600});
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(APPROVER_KEY_B64)
        .unwrap();
    vigil_core::testkit::mint_hs256(&key, "t1", &claims)
}

#[test]
fn the_approval_history_comes_from_the_service_when_it_is_reachable() {
    let d = std::env::temp_dir().join(format!("vigil-show-history-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let (mut service, url, ticket) = approval_service(&d);

    // A record whose approval names the ticket, sealed into a chain of its own.
    let line: serde_json::Value =
        serde_json::from_str(&records_through_filter(1, 1, 0, 0)[0]).unwrap();
    let mut r: vigil_core::record::SessionRecord =
        serde_json::from_str(line["vigil_record"].as_str().unwrap()).unwrap();
    r.approval = Some(serde_json::from_value(serde_json::json!({"rule_id": "wires", "mode": "ticket",
        "request_digest": "ab".repeat(32), "status": "approved", "id": ticket["id"], "approver": "rita@bank.test"})).unwrap());
    let json = vigil_core::record::RecordChain::default().seal(&mut r, &key());
    let path = d.join("records.jsonl");
    std::fs::write(
        &path,
        serde_json::json!({"vigil_record": String::from_utf8(json).unwrap()}).to_string() + "\n",
    )
    .unwrap();
    let f = path.to_str().unwrap();

    let show = |token: Option<String>, url: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
        cmd.env(TEST_RECORD_KEY.0, TEST_RECORD_KEY.1)
            .env_remove("VIGIL_APPROVALS_TOKEN")
            .args(["audit", "show", "req-0", f, "--approvals", url]);
        if let Some(t) = token {
            cmd.env("VIGIL_APPROVALS_TOKEN", t);
        }
        let out = cmd.output().unwrap();
        (out.status.code(), String::from_utf8(out.stdout).unwrap())
    };
    // A risk officer's token: the history, opened and decided, with the reason.
    let (code, out) = show(Some(approver_token("rolf", &["risk"])), &url);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("history   of the ticket, from the approval service:"),
        "{out}"
    );
    assert!(out.contains("opened pending"), "{out}");
    assert!(
        out.contains("rita@bank.test  pending -> approved: callback verified with the customer"),
        "{out}"
    );
    // A token the service does not show the ticket to, and no token: said, record still shown.
    let (code, out) = show(Some(approver_token("tom", &["tellers"])), &url);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("history   not available:") && out.contains("answered 404"),
        "{out}"
    );
    let (_, out) = show(None, &url);
    assert!(
        out.contains("answered 401") && out.contains("VIGIL_APPROVALS_TOKEN"),
        "{out}"
    );
    let _ = service.kill();
    let _ = service.wait();
    // The service gone: the record is shown, verified, and the history said to be missing.
    let (code, out) = show(Some(approver_token("rolf", &["risk"])), &url);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("history   not available: ") && out.contains("verified  the record"),
        "{out}"
    );
}
