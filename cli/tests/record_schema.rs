//! docs/session-record.schema.json and the record vigil.wasm writes agree: every record the
//! filter writes (traffic through the host and every shipped capture) validates, and the
//! schema refuses what the Rust type refuses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use serde_json::Value;
use std::path::PathBuf;

/// The workspace root, where the scripts, policies and test data live.
use vigil_host::artifacts::workspace_root as root;

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(root().join("docs/session-record.schema.json")).unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

fn records(lines: &[String]) -> Vec<Value> {
    let mut out = Vec::new();
    for line in lines {
        let v: Value = serde_json::from_str(line).unwrap();
        if let Some(late) = v["vigil_record_late"].as_str() {
            out.extend(serde_json::from_str::<Vec<Value>>(late).unwrap());
        }
        if let Some(r) = v["vigil_record"].as_str() {
            out.push(serde_json::from_str(r).unwrap());
        }
    }
    out
}

/// A request refused at the end of its body by a filter without header hold: its record
/// carries `headers_reached_upstream`.
fn refused_after_headers_went_on() -> Value {
    use vigil_host::testkit::{Gateway, Request};
    let policy = serde_json::json!({"id": "p", "version": "1",
        "rules": [{"id": "no-wires", "when": {"prompt": {"matches": ["wire"]}}, "action": {"type": "block"}}]});
    let mut vm = Gateway::new(&policy).start();
    let id = Request::post("/v1/chat/completions")
        .chunks([r#"{"model":"m","messages":[{"role":"user","content":"a wire"}]}"#])
        .send(&mut vm);
    vm.complete_stream(id).unwrap();
    let logged = vm.stream(id).unwrap().access_log.clone().unwrap();
    let record: Value = serde_json::from_slice(&logged["wasm.vigil_record"]).unwrap();
    assert_eq!(record["headers_reached_upstream"], true);
    record
}

/// An answer that reports its usage: the record carries `gen_ai`.
fn answered_with_usage() -> Value {
    use vigil_host::testkit::{Gateway, Request};
    let mut vm = Gateway::new(&serde_json::json!({"id": "p", "version": "1"})).start();
    let id = Request::post("/v1/chat/completions")
        .chunks([r#"{"model":"m","messages":[]}"#])
        .send(&mut vm);
    let headers = [(":status", "200"), ("content-type", "application/json")]
        .map(|(k, v)| (k.to_string(), v.to_string()));
    vm.response_headers(id, &headers, false).unwrap();
    let body = r#"{"id":"c","model":"m","choices":[{"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#;
    vm.response_body(id, body.as_bytes(), true).unwrap();
    vm.complete_stream(id).unwrap();
    let logged = vm.stream(id).unwrap().access_log.clone().unwrap();
    let record: Value = serde_json::from_slice(&logged["wasm.vigil_record"]).unwrap();
    assert_eq!(record["gen_ai"]["usage.output_tokens"], 2);
    record
}

#[test]
fn every_record_the_filter_writes_validates_under_the_schema() {
    let schema = schema();
    let mut all = records(&records_through_filter(120, 2, 30, 0));
    // Older files carry incomplete records late; and a refusal whose headers went on early.
    all.extend(records(&records_logged_before_envoy_1_32(40, 1, 10, 0)));
    all.push(refused_after_headers_went_on());
    all.push(answered_with_usage());
    // Records carrying a sealed payload (record.seal_to).
    let (_, public) = vigil_core::record::sealed::OpeningKey::generate().unwrap();
    let mut sealing: Value = serde_json::from_str(vigil_host::traffic::POLICY).unwrap();
    sealing["record"] = serde_json::json!({ "seal_to": public });
    let sealed = records(
        &vigil_host::traffic::records_under_policy(
            vigil_plugin(),
            &sealing.to_string(),
            4,
            1,
            2,
            0,
        )
        .unwrap(),
    );
    assert!(sealed.iter().all(|r| r["sealed"]["ct"].is_string()));
    all.extend(sealed);
    // Every shipped capture's record, through `vigil replay --json`.
    let captures: Vec<PathBuf> = std::fs::read_dir(root().join("testdata/captures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["replay", "--json"])
        .args(&captures)
        .output()
        .unwrap();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let result: Value = serde_json::from_str(line).unwrap();
        assert!(
            result["record"].is_object(),
            "{}: no record",
            result["name"]
        );
        all.push(result["record"].clone());
    }
    assert!(all.len() > 120);
    assert!(all.iter().any(|r| r["complete"] == false));
    assert!(all.iter().any(|r| r["identity"].is_object()));
    for r in &all {
        let errors: Vec<String> = schema
            .iter_errors(r)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}\n{r}");
    }
}

#[test]
fn the_schema_refuses_what_the_record_type_refuses() {
    let schema = schema();
    let good = records(&records_through_filter(1, 1, 0, 0)).remove(0);
    type Edit = Box<dyn Fn(&mut Value)>;
    let edits: Vec<(&str, Edit)> = vec![
        ("unknown field", Box::new(|r| r["colour"] = "red".into())),
        (
            "missing hmac",
            Box::new(|r| {
                r.as_object_mut().unwrap().remove("hmac");
            }),
        ),
        ("seq 0", Box::new(|r| r["seq"] = 0.into())),
        (
            "unknown decision",
            Box::new(|r| r["decision"]["action"] = "maybe".into()),
        ),
        ("short hash", Box::new(|r| r["hash"] = "abc".into())),
        ("version 2", Box::new(|r| r["v"] = 2.into())),
    ];
    for (what, edit) in edits {
        let mut r = good.clone();
        edit(&mut r);
        assert!(!schema.is_valid(&r), "schema accepted: {what}");
        let rust = serde_json::from_value::<vigil_core::SessionRecord>(r.clone());
        let checked = vigil_core::record::check::check(&r, &[key()]);
        assert!(rust.is_err() || checked.is_err(), "Vigil accepted: {what}");
    }
    assert!(schema.is_valid(&good));
}

#[test]
fn the_standard_library_of_another_language_reproduces_hash_and_hmac() {
    // docs/verify_record.py: Python's json.dumps(sort_keys, compact, ensure_ascii=False)
    // gives the same canonical bytes, so an examiner needs no Vigil code to check a record.
    let mut lines = records_through_filter(60, 2, 20, 0);
    // Non-ASCII, escapes and control characters in a body survive the round trip.
    let tricky = vigil_host::traffic::records_through_filter_with_prompt(
        vigil_plugin(),
        r#"Grüße \"quoted\" tab\t € 😀 line\nbreak \u0007 \u2028"#,
    )
    .unwrap();
    lines.extend(tricky);
    let mut child = std::process::Command::new("python3")
        .arg(root().join("docs/verify_record.py"))
        .env(vigil_host::TEST_RECORD_KEY.0, vigil_host::TEST_RECORD_KEY.1)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (CPython 3 is on every machine of this kind)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all((lines.join("\n") + "\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 60 exchanges (the last one's client gone, its incomplete record on its own line), plus
    // the awkward one.
    assert_eq!(stdout.trim(), "ok 61");
}
