//! Sealed payloads seen through `vigil audit`: `keygen seal` makes the examiner's key pair;
//! records written by vigil.wasm under `record.seal_to` verify as any other; `show` without
//! the examiner key shows masked text and says where the payload is sealed, with it shows
//! what was actually sent; a wrong key is refused with both keys named; an edited payload
//! fails `verify`, and one re-signed by a record-key holder does not open; `replay` with the
//! key evaluates rules on the unmasked request.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use vigil_host::TEST_RECORD_KEY;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vigil-sealed-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
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

/// An examiner key made by `vigil audit keygen seal`, and the public key it printed.
fn examiner(d: &Path, name: &str) -> (PathBuf, String) {
    let path = d.join(name);
    let (code, out, err) = vigil(&["audit", "keygen", "seal", "--out", path.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    let public = out
        .split("\"seal_to\": \"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    (path, public.to_string())
}

/// 40 exchanges through vigil.wasm under the audit test policy, sealed to `public`.
fn sealed_records(d: &Path, public: &str) -> PathBuf {
    let mut policy: serde_json::Value = serde_json::from_str(vigil_host::traffic::POLICY).unwrap();
    policy["record"] = serde_json::json!({"seal_to": public});
    let lines =
        vigil_host::traffic::records_under_policy(vigil_plugin(), &policy.to_string(), 40, 2, 0, 0)
            .unwrap();
    let path = d.join("records.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

#[test]
fn keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites_one() {
    let d = dir("keygen");
    let (path, public) = examiner(&d, "examiner.key");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("VIGIL-SEAL-SECRET-KEY-1 "), "{text}");
    assert!(text.contains(&public), "the file names its public key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let (code, _, err) = vigil(&["audit", "keygen", "seal", "--out", path.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("never overwritten"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

#[test]
fn show_opens_the_payload_with_the_examiner_key_and_only_with_it() {
    let d = dir("show");
    let (key, public) = examiner(&d, "examiner.key");
    let records = sealed_records(&d, &public);
    let records = records.to_str().unwrap();

    let (code, out, err) = vigil(&["audit", "verify", records]);
    assert_eq!(code, Some(0), "{out}{err}");

    // Everyday readers: masked text, and where the payload is sealed.
    let (code, out, _) = vigil(&["audit", "show", "req-12", records]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("customer SSN [SSN]"), "{out}");
    assert!(
        out.contains("unmasked payload sealed to examiner key"),
        "{out}"
    );
    assert!(!out.contains("123-45-1012"), "{out}");

    // The examiner: what was actually sent, beside the masked record.
    let (code, out, err) = vigil(&[
        "audit",
        "show",
        "req-12",
        records,
        "--key-file",
        key.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("sealed    opened with examiner key"), "{out}");
    assert!(
        out.contains("customer SSN 123-45-1012, mail j12@bank.example"),
        "{out}"
    );
    assert!(
        out.contains("answer 12 for card 4111 1111 1111 1111"),
        "{out}"
    );
    assert!(out.contains("verified  the record is authentic"), "{out}");

    // Another examiner's key: refused, both keys named.
    let (other, _) = examiner(&d, "other.key");
    let (code, out, err) = vigil(&[
        "audit",
        "show",
        "req-12",
        records,
        "--key-file",
        other.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        err.contains("sealed to examiner key") && err.contains("the key file(s) given hold"),
        "{err}"
    );
    assert!(!out.contains("123-45-1012"), "{out}");

    // A key file that is neither kind is named.
    let junk = d.join("junk.key");
    std::fs::write(&junk, "VIGIL-SEAL-SECRET-KEY-1 not-a-key\n").unwrap();
    let (code, _, err) = vigil(&[
        "audit",
        "show",
        "req-12",
        records,
        "--key-file",
        junk.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("junk.key: examiner key is not base64"),
        "{err}"
    );
}

#[test]
fn an_edited_payload_fails_verify_and_a_re_signed_one_does_not_open() {
    let d = dir("tamper");
    let (key, public) = examiner(&d, "examiner.key");
    let records = sealed_records(&d, &public);
    let text = std::fs::read_to_string(&records).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut line: serde_json::Value = serde_json::from_str(&lines[12]).unwrap();
    let mut record: serde_json::Value =
        serde_json::from_str(line["vigil_record"].as_str().unwrap()).unwrap();
    let ct = record["sealed"]["ct"].as_str().unwrap().to_string();
    let swapped = if ct.starts_with('A') { "B" } else { "A" };
    record["sealed"]["ct"] = format!("{swapped}{}", &ct[1..]).into();

    // Edited without the record key: verify names the line.
    line["vigil_record"] = record.to_string().into();
    lines[12] = line.to_string();
    let edited = d.join("edited.jsonl");
    std::fs::write(&edited, lines.join("\n") + "\n").unwrap();
    let (code, out, _) = vigil(&["audit", "verify", edited.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("edited.jsonl:13") && out.contains("the record was changed"),
        "{out}"
    );

    // Re-signed by someone holding the record key (hash and HMAC recomputed, and the next
    // record's link): verify passes, the payload does not open, and show says so.
    let mut r: vigil_core::record::SessionRecord = serde_json::from_value(record).unwrap();
    let (hash, hmac) = vigil_core::record::chain::digests(&r.canonical_bytes(), &key_of_tests());
    (r.hash, r.hmac) = (hash, hmac);
    line["vigil_record"] = serde_json::to_string(&r).unwrap().into();
    lines[12] = line.to_string();
    relink(&mut lines, 12);
    let forged = d.join("forged.jsonl");
    std::fs::write(&forged, lines.join("\n") + "\n").unwrap();
    let (code, out, err) = vigil(&["audit", "verify", forged.to_str().unwrap()]);
    assert_eq!(code, Some(0), "a record-key holder can re-sign: {out}{err}");
    let (code, out, err) = vigil(&[
        "audit",
        "show",
        "req-12",
        forged.to_str().unwrap(),
        "--key-file",
        key.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains("NOT OPENED: the sealed payload does not open: it was altered"),
        "{out}"
    );
    assert!(err.contains("altered"), "{err}");
}

fn key_of_tests() -> vigil_core::record::RecordKey {
    vigil_core::record::RecordKey::new(TEST_RECORD_KEY.1.as_bytes()).unwrap()
}

/// Re-signs the records after line `from` on the same VM, so the chain links hold again.
fn relink(lines: &mut [String], from: usize) {
    let record_of = |l: &str| -> vigil_core::record::SessionRecord {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        serde_json::from_str(v["vigil_record"].as_str().unwrap()).unwrap()
    };
    let first = record_of(&lines[from]);
    let mut prev = first.hash.clone();
    for line in lines.iter_mut().skip(from + 1) {
        let mut r = record_of(line);
        if r.vm_id != first.vm_id {
            continue;
        }
        r.prev_hash = prev.clone();
        let (hash, hmac) =
            vigil_core::record::chain::digests(&r.canonical_bytes(), &key_of_tests());
        (r.hash, r.hmac) = (hash, hmac);
        prev = r.hash.clone();
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["vigil_record"] = serde_json::to_string(&r).unwrap().into();
        *line = v.to_string();
    }
}

#[test]
fn replay_with_the_examiner_key_evaluates_rules_on_what_was_sent() {
    let d = dir("replay");
    let (key, public) = examiner(&d, "examiner.key");
    let records = sealed_records(&d, &public);
    let candidate = d.join("candidate.json");
    std::fs::write(
        &candidate,
        r#"{"id": "candidate", "version": "2", "rules": [
        {"id": "no-fine-tuning", "when": {"path": {"prefix": "/v1/fine_tuning/"}}, "action": {"type": "block", "status": 403}},
        {"id": "no-ssn-123-45", "when": {"prompt": {"matches": ["SSN 123-45-"]}}, "action": {"type": "block", "status": 400}}]}"#,
    )
    .unwrap();
    let args = |key: Option<&Path>| {
        let mut a = vec![
            "audit".to_string(),
            "replay".into(),
            "--policy".into(),
            candidate.display().to_string(),
            records.display().to_string(),
            "--json".into(),
        ];
        if let Some(k) = key {
            a.extend(["--key-file".to_string(), k.display().to_string()]);
        }
        a
    };
    let summary = |out: &str| -> serde_json::Value {
        serde_json::from_str(out.lines().last().unwrap()).unwrap()
    };

    // Masked copies: the rule never sees an SSN.
    let a = args(None);
    let (code, out, err) = vigil(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(summary(&out)["changed"], 0);

    // Opened: every chat request (36 of 40; 4 were fine-tuning, blocked already) would be
    // blocked by the new rule.
    let a = args(Some(&key));
    let (code, out, err) = vigil(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, Some(0), "{out}{err}");
    let s = summary(&out);
    assert_eq!(s["opened"], 40, "{s}");
    assert_eq!(s["by_change"]["allow->block"], 36, "{s}");
    assert!(s["limits"]
        .as_str()
        .unwrap()
        .contains("unless an examiner key opens"));
}
