//! Regressions on the decision path through vigil.wasm, one per bug the single gate fixed:
//! a request with trailers that needs approval, held requests postponing their own key-set
//! fetch, a body-less request that needs approval while keys load, and a model list answer
//! that ends with trailers. Each failed on the filter before the gate.

mod common;
use common::*;
use serde_json::{json, Value};
use vigil_host::testkit::{pending_call, Gateway, Request};
use vigil_host::{CallAnswer, Vm};

const NOW_S: u64 = 1_764_000_000;

fn vm(config: Value, clusters: &[&str]) -> Vm {
    clusters
        .iter()
        .fold(Gateway::new(&config).at(NOW_S), |g, c| g.cluster(c))
        .start()
}

/// The approval call in flight, and the digest the filter bound it to.
fn approval_call(vm: &Vm) -> (u32, String, String) {
    let call = pending_call(vm, "approvals")
        .unwrap_or_else(|| panic!("no approval call in flight; logs: {:#?}", vm.logs()));
    let path = call
        .headers
        .iter()
        .find(|(k, _)| k == ":path")
        .map(|(_, v)| v.clone())
        .unwrap();
    // The create-or-get call's body is the ticket request; later calls repeat its digest.
    let opened = String::from_utf8_lossy(&call.body).into_owned();
    (call.token, path, opened)
}

/// An honest service's answer about the ticket `opened` (the create-or-get body) asked for,
/// at the VM's clock.
fn ticket(vm: &Vm, opened: &str, status: &str, granted: bool) -> CallAnswer {
    let opened = serde_json::from_str(opened).expect("the create-or-get body");
    let now_ms = (vm.state().now_nanos / 1_000_000) as i64;
    let body = vigil_core::gate::twin::honest_ticket(&opened, status, granted, now_ms);
    CallAnswer::Response {
        headers: pairs(&[(":status", "200"), ("content-type", "application/json")]),
        body: body.to_string().into_bytes(),
        trailers: vec![],
    }
}

/// Answers the open call with an approved ticket and the consume call with a granted use.
fn approve(vm: &mut Vm) {
    let (token, path, digest) = approval_call(vm);
    assert_eq!(path, "/v1/tickets");
    vm.answer_call(token, ticket(vm, &digest, "approved", false))
        .unwrap();
    let (token, path, _) = approval_call(vm);
    assert_eq!(path, "/v1/tickets/t-1/consume");
    vm.answer_call(token, ticket(vm, &digest, "approved", true))
        .unwrap();
}

fn approval_policy() -> Value {
    json!({"id": "gw", "version": "1", "masking": {"entities": {}},
        "approval": {"cluster": "approvals"},
        "rules": [{"id": "wires", "when": {"prompt": {"matches": ["(?i)wire transfer"]}},
                   "action": {"type": "require_approval", "approvers": ["risk-officers"]}}]})
}

#[test]
fn a_request_with_trailers_that_needs_approval_is_forwarded_once_approved() {
    let mut vm = vm(approval_policy(), &["approvals"]);
    let id = Request::post("/v1/chat/completions")
        .chunks([
            r#"{"model":"m","messages":[{"role":"user","content":"wire transfer of $9,000"}]}"#,
        ])
        .trailers(&[("x-checksum", "abc")])
        .send(&mut vm);
    approve(&mut vm);
    let s = vm.stream(id).unwrap();
    assert!(
        s.request.sent_end && s.local_reply.is_none(),
        "the approved request went nowhere; logs: {:#?}",
        vm.logs()
    );
    assert!(
        s.request.sent_trailers.is_some(),
        "its trailers went on too"
    );
    let r = finish(&mut vm, id);
    assert_eq!(
        (r.decision.action.as_str(), r.outcome.as_str()),
        ("require_approval", "forwarded")
    );
}

fn remote_keys_policy(extra: Value) -> Value {
    let mut p = json!({"id": "gw", "version": "1", "masking": {"entities": {}},
        "identity": {"providers": [{"name": "corp", "issuer": "https://example.com",
            "remote_jwks": {"cluster": "idp", "uri": "https://idp.bank.internal/jwks", "cache_duration_s": 600, "timeout_ms": 500}}]}});
    if let (Some(p), Some(extra)) = (p.as_object_mut(), extra.as_object()) {
        p.extend(extra.clone());
    }
    p
}

fn idp_calls(vm: &Vm) -> usize {
    vm.state()
        .calls_made
        .iter()
        .filter(|c| c.cluster == "idp")
        .count()
}

#[test]
fn held_requests_arriving_faster_than_the_tick_do_not_postpone_the_key_set_fetch() {
    let v = conformance_vector("jvl-rs256-kid-ok");
    let mut vm = vm(remote_keys_policy(json!({})), &["idp"]);
    vm.set_time(v["policy"]["now"].as_u64().unwrap() * 1_000_000_000);
    let token = v["token"].as_str().unwrap();
    // One held request every 10 ms (100/s on one worker), for 200 ms.
    for _ in 0..20 {
        Request::get("/v1/models").bearer(token).send(&mut vm);
        vm.advance(10_000_000).unwrap();
    }
    assert_eq!(
        idp_calls(&vm),
        1,
        "the fetch starts within one fast tick of the first hold, whatever comes after"
    );
}

#[test]
fn a_bodyless_request_that_needs_approval_while_keys_load_is_asked_for_approval() {
    let v = conformance_vector("jvl-rs256-kid-ok");
    let policy = remote_keys_policy(json!({"approval": {"cluster": "approvals"},
        "default_action": {"type": "require_approval", "approvers": ["risk-officers"]}}));
    let mut vm = vm(policy, &["idp", "approvals"]);
    vm.set_time(v["policy"]["now"].as_u64().unwrap() * 1_000_000_000);
    let id = Request::get("/v1/models")
        .bearer(v["token"].as_str().unwrap())
        .send(&mut vm);
    vm.advance(20_000_000).unwrap();
    let fetch = pending_call(&vm, "idp").expect("a key set fetch").token;
    vm.answer_call(
        fetch,
        CallAnswer::Response {
            headers: pairs(&[(":status", "200")]),
            body: v["jwks"].to_string().into_bytes(),
            trailers: vec![],
        },
    )
    .unwrap();
    assert!(
        vm.stream(id).unwrap().local_reply.is_none(),
        "not refused: {:?}",
        vm.stream(id).unwrap().local_reply
    );
    approve(&mut vm);
    let s = vm.stream(id).unwrap();
    assert!(
        s.request.sent_end,
        "approved and forwarded; logs: {:#?}",
        vm.logs()
    );
    let token_sent = s
        .request
        .sent_headers
        .as_ref()
        .unwrap()
        .iter()
        .any(|(k, _)| k == "authorization");
    assert!(!token_sent, "the caller's token never reaches the model");
    let r = finish(&mut vm, id);
    assert_eq!(r.decision.action.as_str(), "require_approval");
    assert_eq!(
        r.identity.and_then(|i| i.subject).as_deref(),
        Some("test@example.com")
    );
}

#[test]
fn a_model_list_answer_that_ends_with_trailers_is_filtered() {
    let policy = json!({"id": "gw", "version": "1", "masking": {"entities": {}},
        "models": {"from": "body", "allow": [{"model": "bge-*", "everyone": true}]}});
    let mut vm = vm(policy, &[]);
    let id = Request::get("/v1/models").send(&mut vm);
    vm.response_headers(
        id,
        &pairs(&[(":status", "200"), ("content-type", "application/json")]),
        false,
    )
    .unwrap();
    vm.response_body(
        id,
        br#"{"object":"list","data":[{"id":"llama-3.1-70b"},{"id":"bge-large-en"}]}"#,
        false,
    )
    .unwrap();
    vm.response_trailers(id, &pairs(&[("grpc-status", "0")]))
        .unwrap();
    let body = String::from_utf8(vm.stream(id).unwrap().response.sent_body.clone()).unwrap();
    assert!(body.contains("bge-large-en"), "{body}");
    assert!(
        !body.contains("llama"),
        "a model the caller may not use is listed: {body}"
    );
}

#[test]
fn a_buffered_body_that_ends_with_trailers_reaches_the_model_masked_under_mask_request() {
    let policy = json!({"id": "gw", "version": "1",
        "masking": {"mask_request": true},
        "rules": [{"id": "no-wires", "when": {"prompt": {"matches": ["(?i)wire transfer"]}},
                   "action": {"type": "block"}}]});
    let mut vm = vm(policy, &[]);
    let id = Request::post("/v1/chat/completions")
        .chunks([
            r#"{"model":"m","messages":[{"role":"user","content":"card 4111 1111 "#,
            r#"1111 1111 please"}]}"#,
        ])
        .trailers(&[("x-checksum", "abc")])
        .send(&mut vm);
    let s = vm.stream(id).unwrap();
    assert!(s.request.sent_end, "admitted: {:?}", s.local_reply);
    let sent = String::from_utf8_lossy(&s.request.sent_body).to_string();
    assert!(
        !sent.contains("4111 1111 1111 1111") && sent.contains("please"),
        "the model got: {sent}"
    );
}
