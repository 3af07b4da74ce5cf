//! vigil.wasm under Envoy's own interventions (envoy_fidelity.rs pins each on a probe): the
//! buffer limit's 413, replies while the answer's headers are held, on_log before the access
//! log, the idle timeout against approval waits, callouts that outlive their stream, a
//! cluster with no healthy host, a trap of the VM, merged duplicate headers, and request
//! headers held until admission.

mod common;
use common::*;
use serde_json::{json, Value};
use vigil_core::record::SessionRecord;
use vigil_host::testkit::{pending_call, Gateway, Request};
use vigil_host::{CallAnswer, EnvoySettings, Vm};

const NOW_S: u64 = 1_764_000_000;
const CREDENTIAL: &str = "Bearer upstream-service-token";

fn gateway(policy: Value, envoy: EnvoySettings) -> Vm {
    Gateway::new(&policy)
        .at(NOW_S)
        .cluster("approvals")
        .env("VIGIL_UPSTREAM_TOKEN", "upstream-service-token")
        .envoy(envoy)
        .start()
}

/// Refuses prompts about wire transfers; the body decides, so it is buffered.
fn body_policy(hold: bool) -> Value {
    json!({"id": "gw", "version": "1", "masking": {"entities": {}},
        "envoy": {"hold_request_headers": hold},
        "upstream_credential": {"env": "VIGIL_UPSTREAM_TOKEN"},
        "rules": [{"id": "no-wires", "when": {"prompt": {"matches": ["(?i)wire transfer"]}},
                   "action": {"type": "block", "status": 403, "message": "no wires"}}]})
}

fn hold() -> EnvoySettings {
    EnvoySettings {
        allow_on_headers_stop_iteration: true,
        ..EnvoySettings::default()
    }
}

fn chat(content: &str) -> String {
    json!({"model": "m", "messages": [{"role": "user", "content": content}]}).to_string()
}

/// The record on the exchange's own access-log line.
fn record_of(vm: &Vm, id: u32) -> Option<SessionRecord> {
    let logged = vm.stream(id)?.access_log.clone()?;
    serde_json::from_slice(logged.get("wasm.vigil_record")?).ok()
}

fn sent_header(vm: &Vm, id: u32, name: &str) -> Option<String> {
    vm.stream(id)?
        .request
        .sent_headers
        .as_ref()?
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

fn answer_upstream(vm: &mut Vm, id: u32, body: &str) {
    vm.response_headers(
        id,
        &pairs(&[(":status", "200"), ("content-type", "application/json")]),
        false,
    )
    .unwrap();
    vm.response_body(id, body.as_bytes(), true).unwrap();
}

// ---- request headers wait for admission

#[test]
fn with_header_hold_an_admitted_request_goes_on_whole_with_the_credential_added_at_admission() {
    let mut vm = gateway(body_policy(true), hold());
    let id = vm.create_stream().unwrap();
    let req = Request::post("/v1/chat/completions");
    vm.request_headers(id, req.headers(), false).unwrap();
    assert!(
        vm.stream(id).unwrap().request.sent_headers.is_none(),
        "held"
    );
    vm.request_body(id, chat("hello").as_bytes(), true).unwrap();
    assert_eq!(
        sent_header(&vm, id, "authorization").as_deref(),
        Some(CREDENTIAL)
    );
    assert!(vm.stream(id).unwrap().request.sent_end);
    answer_upstream(&mut vm, id, r#"{"ok":true}"#);
    vm.complete_stream(id).unwrap();
    let r = record_of(&vm, id).unwrap();
    assert_eq!(r.outcome, "forwarded");
    assert!(!r.headers_reached_upstream);
}

#[test]
fn with_header_hold_a_refused_request_never_reaches_the_model_server() {
    let mut vm = gateway(body_policy(true), hold());
    let id = Request::post("/v1/chat/completions")
        .chunks([chat("please send a wire transfer")])
        .send(&mut vm);
    let s = vm.stream(id).unwrap();
    assert!(s.request.sent_headers.is_none(), "not even the headers");
    assert!(s.request.sent_body.is_empty());
    assert_eq!(status(&vm, id).as_deref(), Some("403"));
    let r = finish(&mut vm, id);
    assert_eq!(r.decision.action, "block");
    assert!(!r.headers_reached_upstream);
}

#[test]
fn without_header_hold_a_refused_requests_record_says_its_headers_reached_the_model_server() {
    let mut vm = gateway(body_policy(false), EnvoySettings::default());
    let id = Request::post("/v1/chat/completions")
        .chunks([chat("please send a wire transfer")])
        .send(&mut vm);
    assert!(
        vm.stream(id).unwrap().request.sent_headers.is_some(),
        "older Envoy: headers go on before the body is read"
    );
    assert!(vm.stream(id).unwrap().request.sent_body.is_empty());
    assert_eq!(status(&vm, id).as_deref(), Some("403"));
    let r = finish(&mut vm, id);
    assert!(r.headers_reached_upstream);
    let raw = String::from_utf8(
        vm.stream(id).unwrap().access_log.clone().unwrap()["wasm.vigil_record"].clone(),
    )
    .unwrap();
    assert!(raw.contains("\"headers_reached_upstream\":true"), "{raw}");
}

#[test]
fn a_forwarded_record_has_no_headers_reached_upstream_field_so_old_records_hash_the_same() {
    let mut vm = gateway(body_policy(false), EnvoySettings::default());
    let id = Request::post("/v1/chat/completions")
        .chunks([chat("hello")])
        .send(&mut vm);
    answer_upstream(&mut vm, id, "{}");
    vm.complete_stream(id).unwrap();
    let raw = vm.stream(id).unwrap().access_log.clone().unwrap()["wasm.vigil_record"].clone();
    assert!(!String::from_utf8(raw)
        .unwrap()
        .contains("headers_reached_upstream"));
}

#[test]
fn without_header_hold_an_early_answer_of_the_model_server_is_withheld() {
    // A handler that answers on headers alone: the request was never admitted.
    let mut vm = gateway(body_policy(false), EnvoySettings::default());
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, Request::post("/v1/chat/completions").headers(), false)
        .unwrap();
    vm.response_headers(
        id,
        &pairs(&[(":status", "200"), ("content-type", "application/json")]),
        false,
    )
    .unwrap();
    assert_eq!(status(&vm, id).as_deref(), Some("502"));
    let body = String::from_utf8(vm.stream(id).unwrap().response.sent_body.clone()).unwrap();
    assert!(body.contains("answered_before_decision"), "{body}");
    vm.response_body(id, b"{\"secret\":\"answer\"}", true)
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&vm.stream(id).unwrap().response.sent_body).contains("secret")
    );
    vm.complete_stream(id).unwrap();
    let r = record_of(&vm, id).unwrap();
    assert_eq!(
        (r.outcome.as_str(), r.response.status),
        ("local_response", Some(502))
    );
    assert!(
        r.decision
            .reason
            .contains("answered (200) before Vigil decided"),
        "{}",
        r.decision.reason
    );
    assert!(r.complete);
}

#[test]
fn header_hold_in_the_policy_without_it_in_envoy_ends_in_envoys_timeout_not_a_pass() {
    // The policy says Envoy holds headers, but this Envoy withholds the body instead: the
    // request can never be decided, and Envoy's idle timeout ends it; nothing reaches the
    // model server.
    let mut vm = gateway(
        body_policy(true),
        EnvoySettings {
            stream_idle_timeout_ms: 120_000,
            ..EnvoySettings::default()
        },
    );
    let id = Request::post("/v1/chat/completions")
        .chunks([chat("hello")])
        .send(&mut vm);
    vm.advance(121_000_000_000).unwrap();
    assert_eq!(status(&vm, id).as_deref(), Some("504"));
    assert!(vm.stream(id).unwrap().request.sent_headers.is_none());
    let r = record_of(&vm, id).unwrap();
    assert!(
        r.decision
            .reason
            .contains("Envoy answered 504 (stream_idle_timeout)"),
        "{}",
        r.decision.reason
    );
}

// ---- buffer limits

/// A chat body of about 6,000 bytes in two chunks.
fn send_6000_bytes(vm: &mut Vm) -> u32 {
    let pad = "x".repeat(3000);
    Request::post("/v1/chat/completions")
        .chunks([
            format!("{{\"model\":\"m\",\"pad\":\"{pad}"),
            format!("{pad}\"}}"),
        ])
        .send(vm)
}

#[test]
fn envoys_413_for_a_body_over_its_buffer_is_recorded_as_envoys_answer() {
    let mut vm = gateway(
        body_policy(true),
        EnvoySettings {
            buffer_limit_bytes: 4096,
            ..hold()
        },
    );
    let id = send_6000_bytes(&mut vm);
    assert_eq!(status(&vm, id).as_deref(), Some("413"));
    let s = vm.stream(id).unwrap();
    assert_eq!(s.response.sent_body, b"Payload Too Large");
    assert!(s.request.sent_headers.is_none());
    vm.complete_stream(id).unwrap();
    let r = record_of(&vm, id).unwrap();
    assert!(r.complete);
    assert_eq!(
        (r.outcome.as_str(), r.response.status),
        ("local_response", Some(413))
    );
    // Vigil admitted the body in the callback where Envoy had already prepared its 413.
    assert_eq!(r.decision.action, "allow");
    assert!(
        r.decision
            .reason
            .contains("Envoy answered 413 (request_payload_too_large) instead of the model server"),
        "{}",
        r.decision.reason
    );
    assert_eq!(r.response.body, "Payload Too Large");
}

#[test]
fn with_envoys_buffer_above_the_policys_limit_vigils_own_413_decides() {
    let mut policy = body_policy(true);
    policy["max_request_body_bytes"] = json!(4096);
    let mut vm = gateway(
        policy,
        EnvoySettings {
            buffer_limit_bytes: 4096 + 64 * 1024,
            ..hold()
        },
    );
    let id = send_6000_bytes(&mut vm);
    assert_eq!(status(&vm, id).as_deref(), Some("413"));
    let body = String::from_utf8(vm.stream(id).unwrap().response.sent_body.clone()).unwrap();
    assert!(body.contains("body_too_large"), "{body}");
}

// ---- replies while the answer's headers are held

#[test]
fn a_refused_compressed_answer_is_sealed_with_the_status_the_client_got_on_its_own_line() {
    let mut vm = gateway(
        json!({"id": "gw", "version": "1"}),
        EnvoySettings::default(),
    );
    let id = Request::post("/v1/chat/completions")
        .chunks([chat("hi")])
        .send(&mut vm);
    vm.response_headers(
        id,
        &pairs(&[
            (":status", "200"),
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ]),
        false,
    )
    .unwrap();
    assert_eq!(status(&vm, id).as_deref(), Some("502"));
    // Sealed now: the record is in filter state before the exchange ends.
    let r = record_of_state(&vm, id);
    assert_eq!(r.response.status, Some(502));
    assert!(r.response.body.contains("encoded_response"));
    assert_eq!(
        r.response.details, None,
        "not via_upstream: Vigil's reply replaced it"
    );
    vm.response_body(id, b"\x1f\x8b\x08\x00", true).unwrap();
    vm.complete_stream(id).unwrap();
    assert_eq!(record_of(&vm, id).unwrap().hash, r.hash, "one record");
}

fn record_of_state(vm: &Vm, id: u32) -> SessionRecord {
    serde_json::from_slice(&vm.stream(id).unwrap().filter_state["wasm.vigil_record"]).unwrap()
}

// ---- approvals against the idle timeout, callouts that outlive their stream

fn approval_policy(mode_wait: bool, idle_s: u64) -> Value {
    let action = if mode_wait {
        json!({"type": "require_approval", "approvers": ["risk"], "mode": "wait", "max_wait_s": 300})
    } else {
        json!({"type": "require_approval", "approvers": ["risk"]})
    };
    json!({"id": "gw", "version": "1", "masking": {"entities": {}},
        "envoy": {"hold_request_headers": true, "stream_idle_timeout_s": idle_s},
        "approval": {"cluster": "approvals"},
        "rules": [{"id": "wires", "when": {"prompt": {"matches": ["(?i)wire transfer"]}}, "action": action}]})
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

fn approval_call(vm: &Vm) -> (u32, String, String) {
    let call = pending_call(vm, "approvals").expect("an approval call in flight");
    let path = call
        .headers
        .iter()
        .find(|(k, _)| k == ":path")
        .unwrap()
        .1
        .clone();
    // The create-or-get call's body is the ticket request; later calls repeat its digest.
    let opened = String::from_utf8_lossy(&call.body).into_owned();
    (call.token, path, opened)
}

/// The approval service keeps answering "pending", each call within a second, for
/// `seconds` or until the client has an answer.
fn keep_pending(vm: &mut Vm, id: u32, digest: &str, seconds: u64) {
    for _ in 0..seconds {
        vm.advance(1_000_000_000).unwrap();
        if status(vm, id).is_some() {
            return;
        }
        if let Some(call) = pending_call(vm, "approvals") {
            vm.answer_call(call.token, ticket(vm, digest, "pending", false))
                .unwrap();
        }
    }
}

fn wire_request(vm: &mut Vm) -> u32 {
    Request::post("/v1/chat/completions")
        .chunks([chat("a wire transfer of $9,000")])
        .send(vm)
}

/// A wire transfer under a `wait` rule, on a route whose idle timeout is 120 s (the policy
/// states `policy_idle_s`), with the service answering "pending" for `seconds`.
fn waiting_wire_transfer(policy_idle_s: u64, seconds: u64) -> (Vm, u32) {
    let idle = EnvoySettings {
        stream_idle_timeout_ms: 120_000,
        ..hold()
    };
    let mut vm = gateway(approval_policy(true, policy_idle_s), idle);
    let id = wire_request(&mut vm);
    let (token, _, digest) = approval_call(&vm);
    vm.answer_call(token, ticket(&vm, &digest, "pending", false))
        .unwrap();
    keep_pending(&mut vm, id, &digest, seconds);
    (vm, id)
}

#[test]
fn an_approval_wait_ends_before_envoys_idle_timeout_and_says_why() {
    let (vm, id) = waiting_wire_transfer(120, 200);
    assert_eq!(
        status(&vm, id).as_deref(),
        Some("403"),
        "Vigil, not Envoy's 504, ended the wait: {}",
        String::from_utf8_lossy(&vm.stream(id).unwrap().response.sent_body)
    );
    let body = String::from_utf8(vm.stream(id).unwrap().response.sent_body.clone()).unwrap();
    assert!(body.contains("within 115 s"), "{body}");
    assert!(
        body.contains("Envoy's stream idle timeout of 120 s cuts the wait"),
        "{body}"
    );
}

#[test]
fn envoys_idle_timeout_during_an_approval_wait_is_recorded_as_envoys_answer() {
    // The policy does not know the route's idle timeout (it states the 300 s default).
    let (vm, id) = waiting_wire_transfer(300, 130);
    assert_eq!(status(&vm, id).as_deref(), Some("504"));
    let r = record_of(&vm, id).unwrap();
    assert_eq!(r.decision.action, "require_approval");
    assert!(
        r.decision.reason.contains(
            "Envoy answered 504 (stream_idle_timeout) while the request waited for approval"
        ),
        "{}",
        r.decision.reason
    );
    let trace = r.approval.unwrap();
    assert_eq!(trace.status.name(), "abandoned");
    assert!(vm.stream(id).unwrap().request.sent_headers.is_none());
}

#[test]
fn a_client_that_leaves_while_a_use_is_consumed_gets_a_record_that_says_the_use_may_be_spent() {
    let mut vm = gateway(approval_policy(false, 300), hold());
    let id = wire_request(&mut vm);
    let (token, _, digest) = approval_call(&vm);
    vm.answer_call(token, ticket(&vm, &digest, "approved", false))
        .unwrap();
    let (consume, path, _) = approval_call(&vm);
    assert_eq!(path, "/v1/tickets/t-1/consume");
    vm.abort_stream(id, "downstream_remote_disconnect").unwrap();
    let r = record_of(&vm, id).unwrap();
    assert!(!r.complete);
    let trace = r.approval.unwrap();
    assert_eq!(trace.status.name(), "abandoned");
    let error = trace.error.unwrap();
    assert_eq!(error.code, "approval_abandoned");
    assert!(
        error
            .message
            .contains("ticket t-1's history names request r-1"),
        "{}",
        error.message
    );
    assert!(
        vm.stream(id).unwrap().request.sent_headers.is_none(),
        "nothing went upstream"
    );
    // The service's answer still comes (Envoy does not cancel it) and is dropped.
    assert!(vm.state().pending_calls.contains_key(&consume));
    vm.answer_call(consume, ticket(&vm, &digest, "approved", true))
        .unwrap();
    assert!(!vm.has_failed());
    assert!(vm.stream(id).unwrap().request.sent_headers.is_none());
}

#[test]
fn an_approval_cluster_without_a_healthy_host_fails_closed_at_once() {
    let mut vm = gateway(approval_policy(false, 300), hold());
    vm.set_cluster_healthy("approvals", false);
    let id = wire_request(&mut vm);
    assert_eq!(status(&vm, id).as_deref(), Some("503"));
    let body = String::from_utf8(vm.stream(id).unwrap().response.sent_body.clone()).unwrap();
    assert!(body.contains("approval_service_unavailable"), "{body}");
    assert!(body.contains("InternalFailure"), "{body}");
    assert!(vm.state().pending_calls.is_empty());
}

// ---- a trap fails the VM

#[test]
fn a_trap_loses_only_the_records_of_exchanges_still_open() {
    let mut vm = gateway(
        json!({"id": "gw", "version": "1"}),
        EnvoySettings::default(),
    );
    // Done: its record was sealed at its last event.
    let done = Request::post("/v1/chat/completions")
        .chunks([chat("one")])
        .send(&mut vm);
    answer_upstream(&mut vm, done, "{}");
    // Open: forwarded, waiting for its answer.
    let open = Request::post("/v1/chat/completions")
        .chunks([chat("two")])
        .send(&mut vm);
    // The VM traps on the next request's headers.
    let trapping = vm.create_stream().unwrap();
    vm.inject_trap("proxy_on_request_headers", trapping);
    let err = vm
        .request_headers(
            trapping,
            Request::post("/v1/chat/completions").headers(),
            true,
        )
        .unwrap_err();
    assert!(err.to_string().contains("injected"), "{err}");
    assert_eq!(status(&vm, trapping).as_deref(), Some("503"));
    answer_upstream(&mut vm, open, "{}");
    assert_eq!(
        status(&vm, open).as_deref(),
        Some("503"),
        "failed at its next event"
    );
    let after = Request::post("/v1/chat/completions")
        .chunks([chat("three")])
        .send(&mut vm);
    assert_eq!(status(&vm, after).as_deref(), Some("503"));
    for id in [done, open, trapping, after] {
        vm.complete_stream(id).unwrap();
    }
    let kept = record_of(&vm, done).expect("sealed before the trap, logged after it");
    assert!(kept.complete);
    for lost in [open, trapping, after] {
        assert!(record_of(&vm, lost).is_none());
    }
}

// ---- duplicate headers

#[test]
fn two_authorization_headers_arrive_merged_and_are_refused_as_a_malformed_token() {
    let v = conformance_vector("jvl-rs256-kid-ok");
    let token = v["token"].as_str().unwrap();
    let policy = json!({"id": "gw", "version": "1",
        "identity": {"providers": [{"name": "corp", "issuer": "https://example.com", "jwks": v["jwks"]}]}});
    let mut vm = Gateway::new(&policy)
        .at(v["policy"]["now"].as_u64().unwrap())
        .start();
    let one = Request::get("/v1/models").bearer(token).send(&mut vm);
    assert_ne!(
        status(&vm, one).as_deref(),
        Some("401"),
        "one token verifies"
    );
    let two = Request::get("/v1/models")
        .bearer(token)
        .bearer(token)
        .send(&mut vm);
    assert_eq!(status(&vm, two).as_deref(), Some("401"));
    let body = String::from_utf8(vm.stream(two).unwrap().response.sent_body.clone()).unwrap();
    assert!(
        body.contains("token_malformed") || body.contains("malformed"),
        "{body}"
    );
}
