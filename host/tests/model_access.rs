//! Model access through vigil.wasm: models named in the body, path or a header, admitted
//! by subject or group, denied with 403, malformed with 400, oversized with 413, and model
//! lists filtered to the caller. The caller's token comes from
//! testdata/conformance/jwt/jvl-rs256-kid-ok.json (subject test@example.com).

mod common;
use common::*;
use serde_json::{json, Value};
use vigil_host::{Vm, VmOptions};

fn vector() -> Value {
    conformance_vector("jvl-rs256-kid-ok")
}

fn start(models: Value) -> (Vm, String) {
    let v = vector();
    let config = json!({"id": "gw", "version": "1", "max_request_body_bytes": 2048,
        "identity": {"providers": [{"name": "corp", "issuer": "https://example.com", "jwks": v["jwks"]}]},
        "models": models});
    let now = v["policy"]["now"].as_u64().unwrap() * 1_000_000_000;
    let vm = Vm::start(
        vigil_plugin(),
        VmOptions {
            plugin_config: config.to_string().into_bytes(),
            now_nanos: now,
            ..VmOptions::with_record_key()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    (vm, v["token"].as_str().unwrap().to_string())
}

fn body_rules() -> Value {
    json!({"allow": [{"model": "llama-3.1-*", "subjects": ["test@example.com"]}, {"model": "bge-*", "groups": ["search"]}]})
}

fn headers(method: &str, path: &str, token: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut h = pairs(&[
        (":method", method),
        (":path", path),
        (":authority", "models"),
        ("x-request-id", "m-1"),
    ]);
    h.push(("authorization".into(), format!("Bearer {token}")));
    h.extend(pairs(extra));
    h
}

fn post(vm: &mut Vm, token: &str, chunks: &[&str]) -> u32 {
    let id = vm.create_stream().unwrap();
    vm.request_headers(
        id,
        &headers("POST", "/v1/chat/completions", token, &[]),
        false,
    )
    .unwrap();
    for (i, c) in chunks.iter().enumerate() {
        vm.request_body(id, c.as_bytes(), i + 1 == chunks.len())
            .unwrap();
    }
    id
}

fn error_code(vm: &Vm, id: u32) -> String {
    let body: Value = serde_json::from_slice(&vm.stream(id).unwrap().response.sent_body).unwrap();
    body["error"]["code"].as_str().unwrap().to_string()
}

#[test]
fn an_allowed_model_in_the_body_goes_upstream_whole_and_is_recorded() {
    let (mut vm, token) = start(body_rules());
    let id = post(
        &mut vm,
        &token,
        &["{\"model\":\"llama-3.1", "-8b\",\"messages\":[]}"],
    );
    let s = vm.stream(id).unwrap();
    assert_eq!(
        s.request.sent_body,
        b"{\"model\":\"llama-3.1-8b\",\"messages\":[]}"
    );
    assert!(s.request.sent_end);
    vm.response_headers(id, &pairs(&[(":status", "200")]), true)
        .unwrap();
    let r = finish(&mut vm, id);
    assert_eq!(r.model.as_deref(), Some("llama-3.1-8b"));
    assert_eq!(r.request.bytes, 38);
    assert_eq!(r.decision.action, "allow");
}

#[test]
fn a_model_the_caller_may_not_use_gets_403_and_its_body_never_goes_upstream() {
    let (mut vm, token) = start(body_rules());
    let id = post(
        &mut vm,
        &token,
        &["{\"model\":\"bge-large-en\",\"input\":\"x\"}"],
    );
    assert_eq!(status(&vm, id).as_deref(), Some("403"));
    assert_eq!(error_code(&vm, id), "model_denied");
    assert!(
        vm.stream(id).unwrap().request.sent_body.is_empty(),
        "the buffered body is not released"
    );
    let r = finish(&mut vm, id);
    assert_eq!(
        (r.decision.action.as_str(), r.model.as_deref()),
        ("block", Some("bge-large-en"))
    );
    assert_eq!(
        r.decision.reason,
        "model_denied: test@example.com (groups []) may not call model \"bge-large-en\""
    );
}

#[test]
fn bodies_that_name_no_model_are_refused_with_400() {
    for body in ["not json", "{\"messages\":[]}", "{\"model\":7}"] {
        let (mut vm, token) = start(body_rules());
        let id = post(&mut vm, &token, &[body]);
        assert_eq!(status(&vm, id).as_deref(), Some("400"), "{body}");
        assert_eq!(error_code(&vm, id), "model_missing");
    }
}

#[test]
fn a_body_over_the_inspection_limit_gets_413() {
    let (mut vm, token) = start(body_rules());
    let big = "x".repeat(1500);
    let id = post(
        &mut vm,
        &token,
        &[
            &format!("{{\"model\":\"llama-3.1-8b\",\"pad\":\"{big}"),
            &format!("{big}\"}}"),
        ],
    );
    assert_eq!(status(&vm, id).as_deref(), Some("413"));
    assert_eq!(error_code(&vm, id), "body_too_large");
}

#[test]
fn a_model_in_the_path_is_decided_at_the_headers() {
    let (mut vm, token) = start(
        json!({"from": "path", "allow": [{"model": "credit-score-v?", "subjects": ["test@example.com"]}]}),
    );
    let id = vm.create_stream().unwrap();
    vm.request_headers(
        id,
        &headers("POST", "/v2/models/credit-score-v2/infer", &token, &[]),
        false,
    )
    .unwrap();
    assert!(vm.stream(id).unwrap().request.sent_headers.is_some());
    let denied = vm.create_stream().unwrap();
    vm.request_headers(
        denied,
        &headers("POST", "/v2/models/fraud-v1/infer", &token, &[]),
        false,
    )
    .unwrap();
    assert_eq!(status(&vm, denied).as_deref(), Some("403"));
    assert!(
        vm.stream(denied).unwrap().request.sent_headers.is_none(),
        "nothing reached the model server"
    );
}

#[test]
fn a_model_in_a_header_is_decided_at_the_headers() {
    let (mut vm, token) = start(
        json!({"from": "header", "header": "x-model", "allow": [{"model": "gemma-2b", "everyone": true}]}),
    );
    let id = vm.create_stream().unwrap();
    vm.request_headers(
        id,
        &headers("POST", "/generate", &token, &[("x-model", "gemma-2b")]),
        true,
    )
    .unwrap();
    assert!(vm.stream(id).unwrap().request.sent_end);
    let missing = vm.create_stream().unwrap();
    vm.request_headers(missing, &headers("POST", "/generate", &token, &[]), true)
        .unwrap();
    assert_eq!(status(&vm, missing).as_deref(), Some("400"));
}

#[test]
fn model_lists_are_filtered_to_the_callers_models() {
    let (mut vm, token) = start(body_rules());
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &headers("GET", "/v1/models", &token, &[]), true)
        .unwrap();
    assert!(
        vm.stream(id).unwrap().request.sent_end,
        "list requests need no model"
    );
    vm.response_headers(
        id,
        &pairs(&[
            (":status", "200"),
            ("content-type", "application/json"),
            ("content-length", "120"),
        ]),
        false,
    )
    .unwrap();
    vm.response_body(
        id,
        br#"{"object":"list","data":[{"id":"llama-3.1-8b","object":"model"},"#,
        false,
    )
    .unwrap();
    vm.response_body(id, br#"{"id":"bge-large-en","object":"model"}]}"#, true)
        .unwrap();
    let s = vm.stream(id).unwrap();
    assert!(!s
        .response
        .sent_headers
        .as_ref()
        .unwrap()
        .iter()
        .any(|(k, _)| k == "content-length"));
    let listed: Value = serde_json::from_slice(&s.response.sent_body).unwrap();
    assert_eq!(
        listed["data"],
        json!([{"id": "llama-3.1-8b", "object": "model"}])
    );
}
