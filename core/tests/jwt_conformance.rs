// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! External JWT/JWKS vectors (testdata/conformance/jwt/) against the verifier in core.
//! The same per-file vectors also run through vigil.wasm in the host (host/tests).

use serde_json::Value;
use std::path::PathBuf;
use vigil_core::identity::jwks::KeySet;
use vigil_core::identity::provider::{FromHeader, KeySource, Provider};
use vigil_core::identity::token::{self, UnverifiedToken};
use vigil_core::testkit;

fn conformance() -> PathBuf {
    testkit::workspace_root().join("testdata/conformance/jwt")
}

fn lines(name: &str) -> Vec<Value> {
    testkit::conformance_lines(&format!("jwt/{name}")).unwrap_or_else(|e| panic!("{e}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn jwks_parse_cases_refuse_every_malformed_set_and_accept_every_valid_one() {
    let rows = lines("jwks_parse_cases.jsonl");
    assert_eq!(rows.len(), 59);
    let mut wrong = Vec::new();
    for row in &rows {
        let id = row["id"].as_str().unwrap();
        let result = KeySet::parse_text(row["jwks_text"].as_str().unwrap().as_bytes());
        match (row["expected"].as_str().unwrap(), &result) {
            ("usable", Ok(set)) => {
                if let Some(n) = row["upstream_usable_key_count"].as_u64() {
                    // Vigil skips keys it cannot use (X25519); upstream counts the same.
                    if set.keys.len() as u64 != n {
                        wrong.push(format!(
                            "{id} (source {}): {} usable keys, upstream {n}",
                            row["source"],
                            set.keys.len()
                        ));
                    }
                }
            }
            ("reject_jwks", Err(_)) => {}
            (want, got) => wrong.push(format!(
                "{id} (source {}): expected {want}, got {:?}",
                row["source"],
                got.as_ref().map(|s| s.keys.len())
            )),
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} JWKS cases wrong:\n{}",
        wrong.len(),
        rows.len(),
        wrong.join("\n")
    );
}

#[test]
fn wycheproof_jws_cases_at_the_signature_layer() {
    let rows = lines("wycheproof_jws.jsonl");
    assert_eq!(rows.len(), 401);
    let allowed: Vec<String> = ["RS256", "ES256", "EdDSA"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut wrong = Vec::new();
    for row in &rows {
        let id = row["id"].as_str().unwrap();
        let expected = row["expected_for_project_allowlist_RS256_ES256_EdDSA"]
            .as_str()
            .unwrap();
        let verdict = KeySet::parse(&serde_json::json!({"keys": [row["key_jwk"]]}))
            .map_err(|e| format!("key refused: {e}"))
            .and_then(|keys| {
                let jws = row["jws"].as_str().unwrap();
                let parsed = UnverifiedToken::parse(jws, 64 * 1024).map_err(|e| e.to_string())?;
                token::verify_signature(&parsed, &allowed, &keys).map_err(|e| e.to_string())
            });
        let ok = match expected {
            "signature_valid" => verdict.is_ok(),
            _ => verdict.is_err(),
        };
        if !ok {
            wrong.push(format!(
                "{id} ({}, {}): expected {expected}, got {verdict:?}",
                row["group"].as_str().unwrap(),
                row["wycheproof_comment"].as_str().unwrap_or("")
            ));
        }
    }
    assert!(wrong.is_empty(), "{} of {} Wycheproof cases wrong (source C2SP/wycheproof json_web_signature_test.json):\n{}", wrong.len(), rows.len(), wrong.join("\n"));
}

#[test]
fn per_file_jwt_vectors_in_core() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(conformance())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 38);
    let mut wrong = Vec::new();
    for file in &files {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let policy = &v["policy"];
        let keys = match KeySet::parse(&v["jwks"]) {
            Ok(k) => k,
            Err(e) => {
                if v["expected"] != "reject" {
                    wrong.push(format!("{}: key set refused: {e}", v["id"]));
                }
                continue;
            }
        };
        let provider = Provider {
            name: "p".into(),
            issuer: policy["issuer"].as_str().map(str::to_string),
            audiences: strings(&policy["audiences"]),
            algorithms: strings(&policy["allowed_algs"]),
            keys: KeySource::Inline(keys.clone()),
            clock_skew_s: policy["clock_skew_s"].as_u64().unwrap(),
            require_exp: policy["require_exp"].as_bool().unwrap(),
            groups_claim: "groups".into(),
            from_header: FromHeader {
                name: "authorization".into(),
                prefix: "Bearer ".into(),
            },
            // jvl-rs256-long-claims is an 11 KiB token: over Vigil's default 8 KiB limit (which
            // refuses it, see token_limit_refuses_the_long_claims_vector), so the vectors run
            // with the limit a provider with long claims would configure.
            max_token_bytes: 16 * 1024,
        };
        let result = token::verify(
            v["token"].as_str().unwrap(),
            &provider,
            &keys,
            policy["now"].as_i64().unwrap(),
        );
        let accepted = result.is_ok();
        if accepted != (v["expected"] == "accept") {
            wrong.push(format!(
                "{} (source {}): expected {}, got {:?}",
                v["id"],
                v["source"],
                v["expected"],
                result.map(|i| i.subject)
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} vectors wrong:\n{}",
        wrong.len(),
        files.len(),
        wrong.join("\n")
    );
}

#[test]
fn token_limit_refuses_the_long_claims_vector_by_default() {
    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(conformance().join("jvl-rs256-long-claims.json")).unwrap(),
    )
    .unwrap();
    let token = v["token"].as_str().unwrap();
    let err = UnverifiedToken::parse(
        token,
        vigil_core::identity::provider::DEFAULT_MAX_TOKEN_BYTES as usize,
    )
    .err()
    .unwrap();
    assert_eq!(err.code.code(), "token_too_large");
    assert_eq!(
        err.message,
        format!(
            "the token is {} bytes, over the 8192-byte limit",
            token.len()
        )
    );
}
