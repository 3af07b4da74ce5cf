//! The per-file JWT vectors of testdata/conformance/jwt/ as captures through vigil.wasm:
//! every `accept` reaches upstream with the caller's token replaced by the service
//! credential and the identity in the record; every `reject` gets 401 and never reaches
//! upstream, with the reason recorded.

mod common;
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use vigil_host::capture;
use vigil_host::replay;

const CREDENTIAL: &str = "svc-credential-7f3a";

fn vectors() -> Vec<PathBuf> {
    let dir = vigil_core::testkit::workspace_root().join("testdata/conformance/jwt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (the conformance vectors live in testdata/conformance/)",
                dir.display()
            )
        })
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// The capture for one vector: its JWKS and policy as a provider, the clock at policy.now.
fn capture_for(v: &Value) -> Value {
    let p = &v["policy"];
    let mut provider = json!({
        "name": "conformance",
        "algorithms": p["allowed_algs"],
        "jwks": v["jwks"],
        "require_exp": p["require_exp"],
        "clock_skew_s": p["clock_skew_s"],
        // One vector carries an 11 KiB token; the default 8 KiB limit refuses it.
        "max_token_bytes": 16384
    });
    if let Some(iss) = p["issuer"].as_str() {
        provider["issuer"] = json!(iss);
    }
    if p["audiences"].is_array() {
        provider["audiences"] = p["audiences"].clone();
    }
    let now = vigil_core::time::format_rfc3339_millis(p["now"].as_u64().unwrap() * 1_000_000_000);
    json!({
        "name": v["id"],
        "source": v["source"].to_string(),
        "config": {"id": "conformance", "version": "1", "identity": {"providers": [provider]}, "upstream_credential": {"env": "VIGIL_UPSTREAM_TOKEN"}},
        "env": {"VIGIL_UPSTREAM_TOKEN": CREDENTIAL, vigil_host::TEST_RECORD_KEY.0: vigil_host::TEST_RECORD_KEY.1},
        "now": now,
        "request": {"headers": [[":method", "POST"], [":path", "/v1/chat/completions"], [":authority", "models"], ["authorization", format!("Bearer {}", v["token"].as_str().unwrap())], ["x-request-id", "vec-1"]], "body": ["{}"]},
        "upstream": {"headers": [[":status", "200"]], "body": ["ok"]}
    })
}

fn header<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn every_jwt_vector_is_forwarded_or_refused_as_expected_through_vigil_wasm() {
    let files = vectors();
    assert_eq!(files.len(), 38);
    let mut wrong = Vec::new();
    let (mut accepted, mut rejected) = (0, 0);
    for file in &files {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let id = v["id"].as_str().unwrap().to_string();
        let text = serde_json::to_vec(&capture_for(&v)).unwrap();
        let loaded = capture::parse(&id, &text, Path::new(".")).unwrap();
        let r = replay::run(vigil_plugin(), &loaded);
        let token = v["token"].as_str().unwrap();
        let everything = format!(
            "{} {} {}",
            r.client_body,
            r.record,
            r.logs
                .iter()
                .map(|l| l.message.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        );
        if everything.contains(CREDENTIAL) {
            wrong.push(format!(
                "{id}: the service credential leaked into a body, record or log"
            ));
        }
        if r.client_body.contains(token) || r.record.to_string().contains(token) {
            wrong.push(format!("{id}: the caller's token was echoed"));
        }
        if v["expected"] == "accept" {
            accepted += 1;
            let up = r.upstream_request.as_ref();
            let auth = up.and_then(|u| header(&u.headers, "authorization"));
            if r.status != Some(200) || auth != Some(&format!("Bearer {CREDENTIAL}")) {
                wrong.push(format!(
                    "{id} (source {}): expected accept, got status {:?}, error {:?}, body {}",
                    v["source"], r.status, r.error, r.client_body
                ));
            }
            let want_sub = serde_json::from_slice::<Value>(&base64_claims(token))
                .ok()
                .and_then(|c| c["sub"].as_str().map(str::to_string));
            if r.record["identity"]["subject"].as_str().map(str::to_string) != want_sub {
                wrong.push(format!(
                    "{id}: record identity {} does not carry sub {want_sub:?}",
                    r.record["identity"]
                ));
            }
        } else {
            rejected += 1;
            let refused = matches!(r.status, Some(401) | Some(403)) && r.upstream_request.is_none();
            let recorded = r.record["decision"]["action"] == "block"
                && r.record["outcome"] == "local_response";
            let challenge = header(&r.client_headers, "www-authenticate").unwrap_or_default();
            if !refused
                || !recorded
                || !challenge.starts_with("Bearer realm=\"vigil\", error=\"invalid_token\"")
            {
                wrong.push(format!("{id} (source {}): expected a recorded 401, got status {:?}, record decision {}, error {:?}", v["source"], r.status, r.record["decision"], r.error));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} vectors wrong:\n{}",
        wrong.len(),
        files.len(),
        wrong.join("\n")
    );
    assert_eq!((accepted, rejected), (10, 28));
}

fn base64_claims(token: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.split('.').nth(1).unwrap())
        .unwrap_or_default()
}
