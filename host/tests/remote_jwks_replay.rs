//! Remote key sets as captures through `vigil replay`'s driver: the IdP's answers are
//! scripted callouts, the first fetch happens on the filter's tick while the request waits.
//! Keys and token come from testdata/conformance/jwt/jvl-rs256-kid-ok.json.

mod common;
use common::*;
use serde_json::{json, Value};
use std::path::Path;
use vigil_host::{capture, replay};

fn vector() -> Value {
    conformance_vector("jvl-rs256-kid-ok")
}

fn run(idp_answers: Value) -> replay::ReplayResult {
    let v = vector();
    let now = vigil_core::time::format_rfc3339_millis(
        v["policy"]["now"].as_u64().unwrap() * 1_000_000_000,
    );
    let c = json!({
        "name": "remote-jwks",
        "source": "generated from jvl-rs256-kid-ok (google/jwt_verify_lib) in host/tests/remote_jwks_replay.rs",
        "config": {"id": "gw", "version": "1", "identity": {"providers": [{"name": "corp", "issuer": "https://example.com",
            "remote_jwks": {"cluster": "idp", "uri": "https://idp.bank.internal/.well-known/jwks.json", "timeout_ms": 300}}]}},
        "now": now,
        "env": {vigil_host::TEST_RECORD_KEY.0: vigil_host::TEST_RECORD_KEY.1},
        "request": {"headers": [[":method", "GET"], [":path", "/v1/models"], [":authority", "models"], ["authorization", format!("Bearer {}", v["token"].as_str().unwrap())]]},
        "upstream": {"headers": [[":status", "200"]], "body": ["{}"]},
        "callouts": {"idp": idp_answers}
    });
    let loaded = capture::parse("remote-jwks", c.to_string().as_bytes(), Path::new(".")).unwrap();
    replay::run(vigil_plugin(), &loaded)
}

#[test]
fn the_first_fetch_happens_while_the_request_waits_then_it_is_forwarded() {
    let r = run(
        json!([{"status": 200, "headers": [["content-type", "application/json"]], "body": vector()["jwks"].to_string()}]),
    );
    assert_eq!(r.error, None);
    assert_eq!(
        (r.outcome.as_deref(), r.status),
        (Some("forwarded"), Some(200))
    );
    assert_eq!(r.callouts.len(), 1);
    assert_eq!(r.callouts[0].cluster, "idp");
    assert!(r.callouts[0]
        .headers
        .contains(&(":path".into(), "/.well-known/jwks.json".into())));
    assert_eq!(r.record["identity"]["subject"], "test@example.com");
    assert!(r
        .upstream_request
        .unwrap()
        .headers
        .iter()
        .all(|(k, _)| k != "authorization"));
}

#[test]
fn an_idp_that_resets_times_out_or_answers_garbage_means_401_with_nothing_cached() {
    for answer in [
        json!("reset"),
        json!("timeout"),
        json!({"status": 200, "body": "<html>login</html>"}),
        json!({"status": 503, "body": "down"}),
    ] {
        let r = run(json!([answer]));
        assert_eq!(r.error, None, "{answer}");
        assert_eq!(r.status, Some(401), "{answer}");
        assert!(
            r.client_body.contains("keys_unavailable"),
            "{answer}: {}",
            r.client_body
        );
        assert!(r.upstream_request.is_none());
        assert_eq!(r.record["decision"]["action"], "block");
    }
}
