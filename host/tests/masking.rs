// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Masking as vigil.wasm does it in the host: response bodies masked as they stream (values
//! cut across transport chunks and SSE events), headers adjusted, compressed answers refused,
//! prompts masked on request, counts in records and metrics, and no raw value in a record.

mod common;

use common::{finish, metric, pairs, status, vigil_plugin};
use serde_json::{json, Value};
use vigil_host::{Vm, VmOptions};

fn vigil(config: Value, env: &[(&str, &str)]) -> Vm {
    Vm::start(
        vigil_plugin(),
        VmOptions {
            plugin_config: config.to_string().into_bytes(),
            env: env
                .iter()
                .chain([&vigil_host::TEST_RECORD_KEY])
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..VmOptions::with_record_key()
        },
    )
    .unwrap()
}

fn policy(masking: Value) -> Value {
    json!({"id": "masking-test", "version": "1", "masking": masking})
}

fn chat(content_type: &str) -> Vec<(String, String)> {
    pairs(&[
        (":method", "POST"),
        (":path", "/v1/chat/completions"),
        (":authority", "models"),
        ("content-type", content_type),
        ("content-length", "40"),
        ("accept-encoding", "gzip, br"),
        ("x-request-id", "req-m"),
    ])
}

fn sse_event(content: &str) -> String {
    let e = json!({"id": "chatcmpl-7", "object": "chat.completion.chunk", "created": 1700000000,
        "model": "llama-3-70b", "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]});
    format!("data: {e}\n\n")
}

/// Streams `body` to the filter in transport chunks of `chunk` bytes.
fn respond(vm: &mut Vm, id: u32, headers: &[(&str, &str)], body: &[u8], chunk: usize) {
    vm.response_headers(id, &pairs(headers), false).unwrap();
    let pieces: Vec<&[u8]> = body.chunks(chunk).collect();
    for (i, p) in pieces.iter().enumerate() {
        vm.response_body(id, p, i + 1 == pieces.len()).unwrap();
    }
}

#[test]
fn a_streamed_answer_is_masked_across_events_and_chunks_and_framing_kept() {
    let mut vm = vigil(
        policy(
            json!({"entities": {"credit_card": "partial", "us_ssn": "redact", "email": "redact"}}),
        ),
        &[],
    );
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &chat("application/json"), false)
        .unwrap();
    vm.request_body(id, br#"{"model":"llama-3-70b","stream":true}"#, true)
        .unwrap();
    let deltas = [
        "Your card",
        " 4111",
        " 1111 ",
        "1111",
        " 1111 and SSN 07",
        "8-05-",
        "1123; mail ",
        "ana@",
        "bank.example",
        ".com.",
    ];
    let mut body: String = deltas.iter().map(|d| sse_event(d)).collect();
    body.push_str("data: [DONE]\n\n");
    // 7-byte transport chunks cut events in the middle of lines.
    respond(
        &mut vm,
        id,
        &[
            (":status", "200"),
            ("content-type", "text/event-stream"),
            ("content-length", "9999"),
        ],
        body.as_bytes(),
        7,
    );
    let s = vm.stream(id).unwrap();
    let sent = String::from_utf8(s.response.sent_body.clone()).unwrap();
    let headers = s.response.sent_headers.clone().unwrap();
    assert!(
        !headers.iter().any(|(k, _)| k == "content-length"),
        "content-length goes: the length changes"
    );
    let mut joined = String::new();
    let mut events = 0;
    for block in sent.split("\n\n").filter(|b| !b.is_empty()) {
        events += 1;
        let data = block.strip_prefix("data: ").unwrap();
        if data != "[DONE]" {
            let v: Value = serde_json::from_str(data).unwrap();
            assert_eq!(v["model"], "llama-3-70b");
            joined.push_str(v["choices"][0]["delta"]["content"].as_str().unwrap());
        }
    }
    assert_eq!(events, deltas.len() + 1, "every event is kept, in order");
    assert_eq!(
        joined,
        "Your card **** **** **** 1111 and SSN [SSN]; mail [EMAIL]."
    );
    for raw in ["4111", "078", "1123", "ana@"] {
        assert!(!sent.contains(raw), "{raw} leaked: {sent}");
    }
    let r = finish(&mut vm, id);
    assert_eq!(r.masked.get("credit_card"), Some(&1));
    assert_eq!(r.masked.get("us_ssn"), Some(&1));
    assert_eq!(r.masked.get("email"), Some(&1));
    assert_eq!(
        r.response.body, sent,
        "the record keeps what the client got"
    );
    assert_eq!(
        r.response.sha256,
        vigil_core::digest::sha256_hex(sent.as_bytes())
    );
    assert_eq!(metric(&vm, "vigil.masked.credit_card"), Some(1));
    assert_eq!(metric(&vm, "vigil.masked.email"), Some(1));
}

#[test]
fn the_upstream_is_asked_for_identity_encoding_and_a_compressed_answer_is_refused() {
    let mut vm = vigil(policy(json!({})), &[]);
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &chat("application/json"), false)
        .unwrap();
    vm.request_body(id, b"{}", true).unwrap();
    let upstream = vm.stream(id).unwrap().request.sent_headers.clone().unwrap();
    assert!(upstream.contains(&("accept-encoding".into(), "identity".into())));
    respond(
        &mut vm,
        id,
        &[
            (":status", "200"),
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ],
        b"\x1f\x8b\x08\x00",
        4,
    );
    assert_eq!(status(&vm, id).as_deref(), Some("502"));
    let body = String::from_utf8(vm.stream(id).unwrap().response.sent_body.clone()).unwrap();
    assert!(body.contains("\"code\":\"encoded_response\""), "{body}");
    assert!(!body.contains('\u{1f}'));
    let r = finish(&mut vm, id);
    assert_eq!(r.outcome, "local_response");
    assert!(
        r.decision.reason.contains("content-encoding gzip"),
        "{}",
        r.decision.reason
    );
}

#[test]
fn a_policy_can_let_compressed_answers_pass() {
    let mut vm = vigil(policy(json!({"encoded_responses": "pass"})), &[]);
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &chat("application/json"), true)
        .unwrap();
    respond(
        &mut vm,
        id,
        &[
            (":status", "200"),
            ("content-type", "application/json"),
            ("content-encoding", "br"),
        ],
        b"\x0b\x02\x80",
        8,
    );
    assert_eq!(status(&vm, id).as_deref(), Some("200"));
    assert_eq!(vm.stream(id).unwrap().response.sent_body, b"\x0b\x02\x80");
}

#[test]
fn prompts_are_masked_before_the_model_when_the_policy_says_so() {
    let mut vm = vigil(
        policy(json!({"mask_request": true, "entities": ["us_ssn"]})),
        &[],
    );
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &chat("application/json"), false)
        .unwrap();
    vm.request_body(
        id,
        br#"{"messages":[{"role":"user","content":"my SSN is 078-"#,
        false,
    )
    .unwrap();
    vm.request_body(id, br#"05-1123"}]}"#, true).unwrap();
    let s = vm.stream(id).unwrap();
    let upstream = String::from_utf8(s.request.sent_body.clone()).unwrap();
    assert_eq!(
        upstream,
        r#"{"messages":[{"role":"user","content":"my SSN is [SSN]"}]}"#
    );
    assert!(!s
        .request
        .sent_headers
        .clone()
        .unwrap()
        .iter()
        .any(|(k, _)| k == "content-length"));
    let r = finish(&mut vm, id);
    assert_eq!(r.request.body, upstream);
}

#[test]
fn without_mask_request_the_model_gets_the_prompt_and_the_record_a_masked_copy() {
    let mut vm = vigil(policy(json!({"entities": ["us_ssn"]})), &[]);
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &chat("application/json"), false)
        .unwrap();
    vm.request_body(id, br#"{"prompt":"SSN 078-05-1123"}"#, true)
        .unwrap();
    let s = vm.stream(id).unwrap();
    assert_eq!(s.request.sent_body, br#"{"prompt":"SSN 078-05-1123"}"#);
    let r = finish(&mut vm, id);
    assert_eq!(r.request.body, r#"{"prompt":"SSN [SSN]"}"#);
    let text = serde_json::to_string(&r).unwrap();
    assert!(!text.contains("078-05-1123"));
}

#[test]
fn tokens_use_the_key_from_the_vm_environment_and_the_plugin_refuses_to_start_without_it() {
    let config =
        policy(json!({"entities": {"us_ssn": "token"}, "token_key_env": "VIGIL_MASK_KEY"}));
    let missing = Vm::start(
        vigil_plugin(),
        VmOptions {
            plugin_config: config.to_string().into_bytes(),
            ..VmOptions::with_record_key()
        },
    );
    match missing {
        Err(e) => assert!(e.to_string().contains("VIGIL_MASK_KEY"), "{e}"),
        Ok(vm) => {
            let logs: Vec<String> = vm.logs().iter().map(|l| l.message.clone()).collect();
            assert!(
                logs.iter().any(|l| l
                    .contains("$.masking.token_key_env: the VM environment has no VIGIL_MASK_KEY")),
                "{logs:?}"
            );
        }
    }
    let answer = |key: &str| {
        let mut vm = vigil(config.clone(), &[("VIGIL_MASK_KEY", key)]);
        let id = vm.create_stream().unwrap();
        vm.request_headers(id, &chat("text/plain"), true).unwrap();
        respond(
            &mut vm,
            id,
            &[(":status", "200"), ("content-type", "text/plain")],
            b"SSN 078-05-1123 again 078051123",
            5,
        );
        let body = String::from_utf8(vm.stream(id).unwrap().response.sent_body.clone()).unwrap();
        assert!(!body.contains("1123"));
        body
    };
    let a = answer("key one");
    let parts: Vec<&str> = a.split(" again ").collect();
    assert_eq!(
        parts[0].trim_start_matches("SSN "),
        parts[1],
        "same value, same token"
    );
    assert_ne!(a, answer("key two"), "another key, another token");
}

#[test]
fn field_rules_mask_structured_predictions_whatever_they_hold() {
    let mut vm = vigil(
        policy(json!({"fields": ["/predictions/*/ssn", "/predictions/*/income"]})),
        &[],
    );
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &chat("application/json"), true)
        .unwrap();
    let answer = br#"{"predictions":[{"ssn":"078-05-1123","income":85000,"score":0.91},{"ssn":78051123,"income":null,"score":0.12}]}"#;
    respond(
        &mut vm,
        id,
        &[(":status", "200"), ("content-type", "application/json")],
        answer,
        11,
    );
    let v: Value = serde_json::from_slice(&vm.stream(id).unwrap().response.sent_body).unwrap();
    assert_eq!(
        v,
        json!({"predictions":[{"ssn":"[REDACTED]","income":"[REDACTED]","score":0.91},{"ssn":"[REDACTED]","income":"[REDACTED]","score":0.12}]})
    );
    let r = finish(&mut vm, id);
    assert_eq!(r.masked.get("field"), Some(&4));
}

#[test]
fn a_long_answer_is_copied_into_the_record_up_to_the_cap() {
    let mut vm = vigil(
        json!({"id": "p", "version": "1", "record": {"max_body_bytes": 100}}),
        &[],
    );
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &chat("text/plain"), true).unwrap();
    let answer = "word ".repeat(100);
    respond(
        &mut vm,
        id,
        &[(":status", "200"), ("content-type", "text/plain")],
        answer.as_bytes(),
        64,
    );
    let r = finish(&mut vm, id);
    assert_eq!(r.response.body.len(), 100);
    assert!(r.response.truncated);
    assert_eq!(r.response.bytes, 500);
}

#[test]
fn images_pass_untouched_when_the_policy_names_them_to_pass() {
    // By default they are refused (host/tests/response_content_types.rs).
    let mut vm = vigil(policy(json!({"content_types": {"image/*": "pass"}})), &[]);
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &chat("application/json"), true)
        .unwrap();
    let png = b"\x89PNG\r\n\x1a\n078-05-1123";
    respond(
        &mut vm,
        id,
        &[
            (":status", "200"),
            ("content-type", "image/png"),
            ("content-length", "19"),
        ],
        png,
        4,
    );
    let s = vm.stream(id).unwrap();
    assert_eq!(s.response.sent_body, png);
    assert!(s
        .response
        .sent_headers
        .clone()
        .unwrap()
        .iter()
        .any(|(k, _)| k == "content-length"));
}
