//! Remote key sets through vigil.wasm: first fetch with requests held, refresh on the tick,
//! unknown-kid refetch (rate limited), and an IdP that times out, resets or answers garbage,
//! with and without a cached set. Keys and tokens come from testdata/conformance/jwt.

mod common;
use common::*;
use serde_json::{json, Value};
use vigil_host::testkit::pending_call;
use vigil_host::{CallAnswer, Vm, VmOptions};

/// jvl-rs256-kid-ok: a token whose kid names the second key of a two-key RSA set.
fn vector() -> Value {
    conformance_vector("jvl-rs256-kid-ok")
}

fn start(cache_duration_s: u64) -> (Vm, Value) {
    let v = vector();
    let config = json!({"id": "gw", "version": "1", "identity": {"providers": [{
        "name": "corp", "issuer": "https://example.com",
        "remote_jwks": {"cluster": "idp", "uri": "https://idp.bank.internal/jwks", "cache_duration_s": cache_duration_s, "timeout_ms": 500}
    }]}});
    let now = v["policy"]["now"].as_u64().unwrap() * 1_000_000_000;
    let vm = Vm::start(
        vigil_plugin(),
        VmOptions {
            plugin_config: config.to_string().into_bytes(),
            clusters: vec!["idp".into()],
            now_nanos: now,
            ..VmOptions::with_record_key()
        },
    )
    .unwrap();
    (vm, v)
}

fn jwks_answer(keys: &Value) -> CallAnswer {
    CallAnswer::Response {
        headers: pairs(&[(":status", "200"), ("content-type", "application/json")]),
        body: keys.to_string().into_bytes(),
        trailers: vec![],
    }
}

fn send(vm: &mut Vm, token: &str) -> u32 {
    let id = vm.create_stream().unwrap();
    let mut req = pairs(&[
        (":method", "GET"),
        (":path", "/v1/models"),
        (":authority", "models"),
        ("x-request-id", "r"),
    ]);
    req.push(("authorization".into(), format!("Bearer {token}")));
    vm.request_headers(id, &req, true).unwrap();
    id
}

/// The key-set fetch in flight; held requests speed the root's tick up to 20 ms, so the
/// clock moves that far first when none is dispatched yet.
fn pending_idp_call(vm: &mut Vm) -> u32 {
    if pending_call(vm, "idp").is_none() {
        vm.advance(20_000_000).unwrap();
    }
    let call = pending_call(vm, "idp").expect("a key set fetch in flight");
    assert!(call.headers.contains(&(":path".into(), "/jwks".into())));
    assert!(call
        .headers
        .contains(&(":authority".into(), "idp.bank.internal".into())));
    call.token
}

#[test]
fn requests_arriving_before_the_first_fetch_are_held_then_resumed_by_one_fetch() {
    let (mut vm, v) = start(600);
    let token = v["token"].as_str().unwrap();
    let (a, b) = (send(&mut vm, token), send(&mut vm, token));
    assert!(
        vm.state().pending_calls.is_empty(),
        "fetches go out on the root's tick"
    );
    vm.advance(20_000_000).unwrap();
    assert_eq!(
        vm.state().pending_calls.len(),
        1,
        "one fetch for both held requests"
    );
    for id in [a, b] {
        assert!(
            vm.stream(id).unwrap().request.sent_headers.is_none(),
            "held, not refused"
        );
        assert_eq!(status(&vm, id), None);
    }
    let t = pending_idp_call(&mut vm);
    vm.answer_call(t, jwks_answer(&v["jwks"])).unwrap();
    for id in [a, b] {
        let sent = vm
            .stream(id)
            .unwrap()
            .request
            .sent_headers
            .clone()
            .expect("resumed");
        assert!(
            !sent.iter().any(|(k, _)| k == "authorization"),
            "the caller's token was stripped before resuming"
        );
        let record = finish(&mut vm, id);
        assert_eq!(
            record.identity.unwrap().subject.as_deref(),
            Some("test@example.com")
        );
    }
    assert!(vm.logs().iter().any(|l| l
        .message
        .contains("key set of provider corp loaded: 2 usable key(s)")));
}

#[test]
fn the_tick_loads_keys_ahead_of_requests_and_refreshes_them_before_expiry() {
    let (mut vm, v) = start(100);
    vm.advance(1_000_000_000).unwrap();
    let t = pending_idp_call(&mut vm);
    vm.answer_call(t, jwks_answer(&v["jwks"])).unwrap();
    let id = send(&mut vm, v["token"].as_str().unwrap());
    assert!(
        vm.stream(id).unwrap().request.sent_end,
        "keys were already there: no hold"
    );
    vm.advance(78_000_000_000).unwrap();
    assert!(
        vm.state().pending_calls.is_empty(),
        "not due before 80% of the cache duration"
    );
    vm.advance(2_000_000_000).unwrap();
    pending_idp_call(&mut vm);
}

#[test]
fn an_unknown_kid_triggers_one_refetch_per_interval() {
    let (mut vm, v) = start(600);
    let token = v["token"].as_str().unwrap();
    let first_key_only = json!({"keys": [v["jwks"]["keys"][0]]});
    vm.advance(1_000_000_000).unwrap();
    let t = pending_idp_call(&mut vm);
    vm.answer_call(t, jwks_answer(&first_key_only)).unwrap();
    let id = send(&mut vm, token);
    assert!(
        vm.stream(id).unwrap().request.sent_headers.is_none(),
        "held for a refetch"
    );
    let t = pending_idp_call(&mut vm);
    vm.answer_call(t, jwks_answer(&first_key_only)).unwrap();
    assert_eq!(
        status(&vm, id).as_deref(),
        Some("401"),
        "still unknown after the refetch"
    );
    let record = finish(&mut vm, id);
    assert!(
        record.decision.reason.starts_with("unknown_key: "),
        "{}",
        record.decision.reason
    );
    let again = send(&mut vm, token);
    assert_eq!(
        status(&vm, again).as_deref(),
        Some("401"),
        "no second refetch within the interval"
    );
    assert!(vm.state().pending_calls.is_empty());
    vm.advance(31_000_000_000).unwrap();
    let later = send(&mut vm, token);
    let t = pending_idp_call(&mut vm);
    vm.answer_call(t, jwks_answer(&v["jwks"])).unwrap();
    assert!(
        vm.stream(later).unwrap().request.sent_end,
        "the rotated-in key verifies after the next refetch"
    );
}

#[test]
fn an_idp_that_fails_with_nothing_cached_means_401_for_held_requests() {
    for answer in [
        CallAnswer::Reset,
        CallAnswer::Timeout,
        jwks_answer(&json!("garbage")),
        CallAnswer::Response {
            headers: pairs(&[(":status", "500")]),
            body: vec![],
            trailers: vec![],
        },
    ] {
        let (mut vm, v) = start(600);
        let id = send(&mut vm, v["token"].as_str().unwrap());
        let token = pending_idp_call(&mut vm);
        match answer {
            CallAnswer::Timeout => vm.advance(500_000_000).unwrap(),
            other => vm.answer_call(token, other).unwrap(),
        }
        assert_eq!(status(&vm, id).as_deref(), Some("401"));
        let body = String::from_utf8(vm.stream(id).unwrap().response.sent_body.clone()).unwrap();
        assert!(body.contains("\"code\":\"keys_unavailable\""), "{body}");
        assert!(vm.stream(id).unwrap().request.sent_headers.is_none());
        let record = finish(&mut vm, id);
        assert_eq!(record.decision.action, "block");
    }
}

#[test]
fn a_bad_refresh_keeps_the_last_good_set_in_use() {
    let (mut vm, v) = start(100);
    vm.advance(1_000_000_000).unwrap();
    let t = pending_idp_call(&mut vm);
    vm.answer_call(t, jwks_answer(&v["jwks"])).unwrap();
    vm.advance(80_000_000_000).unwrap();
    let t = pending_idp_call(&mut vm);
    vm.answer_call(
        t,
        CallAnswer::Response {
            headers: pairs(&[(":status", "200")]),
            body: b"{\"keys\": 5}".to_vec(),
            trailers: vec![],
        },
    )
    .unwrap();
    assert!(vm
        .logs()
        .iter()
        .any(|l| l.message.contains("refused, keeping the last good set")));
    let id = send(&mut vm, v["token"].as_str().unwrap());
    assert!(vm.stream(id).unwrap().request.sent_end);
}

#[test]
fn a_held_request_whose_client_left_is_not_acted_on() {
    let (mut vm, v) = start(600);
    let id = send(&mut vm, v["token"].as_str().unwrap());
    vm.complete_stream(id).unwrap();
    let t = pending_idp_call(&mut vm);
    vm.answer_call(t, jwks_answer(&v["jwks"])).unwrap();
    assert!(vm.stream(id).unwrap().request.sent_headers.is_none());
    assert!(!vm.has_failed());
}

#[test]
fn a_held_request_gets_its_model_checked_when_the_keys_arrive() {
    let v = vector();
    let config = json!({"id": "gw", "version": "1",
        "identity": {"providers": [{"name": "corp", "issuer": "https://example.com", "remote_jwks": {"cluster": "idp", "uri": "https://idp.bank.internal/jwks"}}]},
        "models": {"from": "path", "allow": [{"model": "credit-*", "subjects": ["test@example.com"]}]}});
    let now = v["policy"]["now"].as_u64().unwrap() * 1_000_000_000;
    let mut vm = Vm::start(
        vigil_plugin(),
        VmOptions {
            plugin_config: config.to_string().into_bytes(),
            clusters: vec!["idp".into()],
            now_nanos: now,
            ..VmOptions::with_record_key()
        },
    )
    .unwrap();
    let token = format!("Bearer {}", v["token"].as_str().unwrap());
    let mut ids = vec![];
    for path in ["/v2/models/credit-v1/infer", "/v2/models/fraud-v1/infer"] {
        let id = vm.create_stream().unwrap();
        let mut req = pairs(&[
            (":method", "POST"),
            (":path", path),
            (":authority", "models"),
        ]);
        req.push(("authorization".into(), token.clone()));
        vm.request_headers(id, &req, true).unwrap();
        ids.push(id);
    }
    let t = pending_idp_call(&mut vm);
    vm.answer_call(t, jwks_answer(&v["jwks"])).unwrap();
    assert!(
        vm.stream(ids[0]).unwrap().request.sent_end,
        "allowed model resumed"
    );
    assert_eq!(status(&vm, ids[1]).as_deref(), Some("403"));
    assert!(vm.stream(ids[1]).unwrap().request.sent_headers.is_none());
    let r = finish(&mut vm, ids[1]);
    assert_eq!(
        (r.decision.action.as_str(), r.model.as_deref()),
        ("block", Some("fraud-v1"))
    );
    assert!(
        r.decision.reason.starts_with("model_denied: "),
        "{}",
        r.decision.reason
    );
    assert_eq!(
        r.identity.unwrap().subject.as_deref(),
        Some("test@example.com")
    );
}

#[test]
fn an_idp_cluster_without_a_healthy_host_refuses_held_requests_at_once_instead_of_leaving_them_hanging(
) {
    // Envoy fails the fetch at dispatch (InternalFailure, no callback): the requests held
    // for it are settled then, not left for Envoy's idle timeout.
    let (mut vm, v) = start(600);
    vm.set_cluster_healthy("idp", false);
    let token = v["token"].as_str().unwrap();
    let id = send(&mut vm, token);
    vm.advance(20_000_000).unwrap();
    assert!(vm.state().pending_calls.is_empty());
    assert!(
        status(&vm, id).is_some(),
        "the held request is answered at once; logs: {:#?}",
        vm.last_logs(6)
    );
    assert_eq!(status(&vm, id).as_deref(), Some("401"));
}

/// Header hold (Envoy 1.35+): a request held for the key set keeps receiving its body.
fn start_holding(mask_request: bool) -> (Vm, Value) {
    let v = vector();
    let config = json!({"id": "gw", "version": "1",
        "envoy": {"hold_request_headers": true},
        "masking": {"mask_request": mask_request},
        "rules": [{"id": "no-wires", "when": {"prompt": {"matches": ["(?i)wire transfer"]}}, "action": {"type": "block"}}],
        "identity": {"providers": [{
        "name": "corp", "issuer": "https://example.com",
        "remote_jwks": {"cluster": "idp", "uri": "https://idp.bank.internal/jwks", "timeout_ms": 500}
    }]}});
    let vm = vigil_host::testkit::Gateway::new(&config)
        .cluster("idp")
        .at(v["policy"]["now"].as_u64().unwrap())
        .envoy(vigil_host::EnvoySettings {
            allow_on_headers_stop_iteration: true,
            ..Default::default()
        })
        .start();
    (vm, v)
}

fn post_while_keys_load(vm: &mut Vm, token: &str, prompt: &str) -> u32 {
    vigil_host::testkit::Request::post("/v1/chat/completions")
        .bearer(token)
        .chunks([
            json!({"model": "m", "messages": [{"role": "user", "content": prompt}]}).to_string(),
        ])
        .send(vm)
}

#[test]
fn with_header_hold_a_body_that_ends_while_keys_load_is_decided_once_they_come() {
    let (mut vm, v) = start_holding(false);
    let token = v["token"].as_str().unwrap();
    let ok = post_while_keys_load(&mut vm, token, "hello");
    let wire = post_while_keys_load(&mut vm, token, "a wire transfer");
    let t = pending_idp_call(&mut vm);
    vm.answer_call(t, jwks_answer(&v["jwks"])).unwrap();
    let s = vm.stream(ok).unwrap();
    assert!(
        s.request.sent_end && String::from_utf8_lossy(&s.request.sent_body).contains("hello"),
        "admitted whole: {:?} {:?} {:#?}",
        s.request.sent_headers,
        String::from_utf8_lossy(&s.request.sent_body),
        vm.last_logs(12)
    );
    assert_eq!(status(&vm, wire).as_deref(), Some("403"));
    assert!(vm.stream(wire).unwrap().request.sent_headers.is_none());
}

#[test]
fn with_header_hold_and_mask_request_a_body_that_ends_while_keys_load_is_sent_back_to_retry() {
    // The masked body can only be written in a body callback, and that one has passed.
    let (mut vm, v) = start_holding(true);
    let id = post_while_keys_load(&mut vm, v["token"].as_str().unwrap(), "hello");
    let t = pending_idp_call(&mut vm);
    vm.answer_call(t, jwks_answer(&v["jwks"])).unwrap();
    assert_eq!(status(&vm, id).as_deref(), Some("503"));
    let body = String::from_utf8(vm.stream(id).unwrap().response.sent_body.clone()).unwrap();
    assert!(body.contains("keys_loading"), "{body}");
    assert!(vm.stream(id).unwrap().request.sent_headers.is_none());
}
