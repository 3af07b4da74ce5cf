//! Policy rules through vigil.wasm: first match wins, block with status and message,
//! require_approval failing closed when the approval service cannot be called, shadow mode, prompt regexes,
//! JSON pointer tests, saved headers at the end of the body, non-JSON bodies, the default
//! action, and the decision counters.

mod common;
use common::*;
use serde_json::{json, Value};
use vigil_host::{Vm, VmOptions};

fn start(rules: Value, extra: Value) -> Vm {
    let mut config = json!({"id": "rules-test", "version": "3", "rules": rules});
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    Vm::start(
        vigil_plugin(),
        VmOptions {
            plugin_config: config.to_string().into_bytes(),
            ..VmOptions::with_record_key()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn send(
    vm: &mut Vm,
    method: &str,
    path: &str,
    extra_headers: &[(&str, &str)],
    body: Option<&str>,
) -> u32 {
    let id = vm.create_stream().unwrap();
    let mut h = pairs(&[
        (":method", method),
        (":path", path),
        (":authority", "models"),
        ("x-request-id", "rq"),
    ]);
    h.extend(pairs(extra_headers));
    vm.request_headers(id, &h, body.is_none()).unwrap();
    if let Some(b) = body {
        let (a, c) = b.split_at(b.len() / 2);
        vm.request_body(id, a.as_bytes(), false).unwrap();
        vm.request_body(id, c.as_bytes(), true).unwrap();
    }
    id
}

fn error(vm: &Vm, id: u32) -> Value {
    serde_json::from_slice::<Value>(&vm.stream(id).unwrap().response.sent_body).unwrap()["error"]
        .clone()
}

#[test]
fn the_first_matching_rule_decides_and_its_id_reaches_body_and_record() {
    let mut vm = start(
        json!([
            {"id": "allow-health", "when": {"path": {"exact": "/health"}}, "action": {"type": "allow"}},
            {"id": "no-deletes", "description": "Model servers are never changed through the gateway", "when": {"methods": ["DELETE"]}, "action": {"type": "block", "status": 405, "message": "DELETE is not allowed"}},
            {"id": "no-admin", "when": {"path": {"prefix": "/admin/"}}, "action": {"type": "block"}}
        ]),
        json!({}),
    );
    let ok = send(&mut vm, "GET", "/health", &[], None);
    assert!(vm.stream(ok).unwrap().request.sent_end);
    assert_eq!(
        finish(&mut vm, ok).decision.rule_id.as_deref(),
        Some("allow-health")
    );
    let del = send(&mut vm, "DELETE", "/admin/models/x", &[], None);
    assert_eq!(
        status(&vm, del).as_deref(),
        Some("405"),
        "the earlier rule wins over no-admin"
    );
    assert_eq!(
        error(&vm, del),
        json!({"code": "blocked_by_policy", "message": "DELETE is not allowed", "request_id": "rq", "rule_id": "no-deletes"})
    );
    let r = finish(&mut vm, del);
    assert_eq!(
        (r.decision.action.as_str(), r.decision.rule_id.as_deref()),
        ("block", Some("no-deletes"))
    );
    assert_eq!(
        r.decision.reason,
        "Model servers are never changed through the gateway"
    );
    assert_eq!(r.policy.version, "3");
    let other = send(&mut vm, "GET", "/v1/models", &[], None);
    let r = finish(&mut vm, other);
    assert_eq!(
        (
            r.decision.action.as_str(),
            r.decision.rule_id.as_deref(),
            r.decision.reason.as_str()
        ),
        ("allow", None, "no rule matched: policy default")
    );
}

#[test]
fn prompt_regexes_look_at_the_chat_messages() {
    let mut vm = start(
        json!([{"id": "no-ssn", "when": {"prompt": {"matches": ["\\b\\d{3}-\\d{2}-\\d{4}\\b"]}}, "action": {"type": "block", "message": "remove personal data from the prompt"}}]),
        json!({}),
    );
    let bad = send(
        &mut vm,
        "POST",
        "/v1/chat/completions",
        &[],
        Some(r#"{"model":"m","messages":[{"role":"user","content":"my SSN is 078-05-1120"}]}"#),
    );
    assert_eq!(status(&vm, bad).as_deref(), Some("403"));
    assert!(vm.stream(bad).unwrap().request.sent_body.is_empty());
    let fine = send(
        &mut vm,
        "POST",
        "/v1/chat/completions",
        &[],
        Some(r#"{"model":"m","messages":[{"role":"user","content":"hello"}]}"#),
    );
    assert_eq!(
        vm.stream(fine).unwrap().request.sent_body.len(),
        60,
        "released whole"
    );
}

#[test]
fn a_large_batch_requires_approval_and_fails_closed_when_the_service_cannot_be_called() {
    let mut vm = start(
        json!([{"id": "big-batch", "description": "Batches over 100 instances need a risk officer", "when": {"path": {"glob": "/v2/models/*/infer"}, "json": [{"pointer": "/instances", "length_gt": 100}]},
                "action": {"type": "require_approval", "approvers": ["risk-officers"], "ttl_s": 3600}}]),
        // Envoy has no such cluster here: the call cannot be made, so the request is refused.
        json!({"approval": {"cluster": "approvals"}}),
    );
    let instances: Vec<Value> = (0..101).map(|i| json!({"income": i})).collect();
    let big = send(
        &mut vm,
        "POST",
        "/v2/models/credit-score/infer",
        &[],
        Some(&json!({"instances": instances}).to_string()),
    );
    assert_eq!(status(&vm, big).as_deref(), Some("503"));
    assert_eq!(error(&vm, big)["code"], "approval_service_unavailable");
    assert_eq!(error(&vm, big)["rule_id"], "big-batch");
    let r = finish(&mut vm, big);
    assert_eq!(
        (
            r.decision.action.as_str(),
            r.decision.rule_id.as_deref(),
            r.outcome.as_str()
        ),
        ("require_approval", Some("big-batch"), "local_response")
    );
    let small = send(
        &mut vm,
        "POST",
        "/v2/models/credit-score/infer",
        &[],
        Some(r#"{"instances":[{"income":1}]}"#),
    );
    assert!(vm.stream(small).unwrap().request.sent_end);
}

#[test]
fn shadow_rules_are_recorded_and_counted_without_blocking() {
    let mut vm = start(
        json!([{"id": "trial-block-temperature", "mode": "shadow", "when": {"json": [{"pointer": "/temperature", "gt": 1.5}]}, "action": {"type": "block"}}]),
        json!({}),
    );
    let id = send(
        &mut vm,
        "POST",
        "/v1/completions",
        &[],
        Some(r#"{"model":"m","prompt":"hi","temperature":1.9}"#),
    );
    assert!(
        vm.stream(id).unwrap().request.sent_end,
        "shadow rules never block"
    );
    let r = finish(&mut vm, id);
    assert_eq!(r.decision.action, "allow");
    assert_eq!(r.decision.shadow.len(), 1);
    assert_eq!(
        (
            r.decision.shadow[0].rule_id.as_str(),
            r.decision.shadow[0].action.as_str()
        ),
        ("trial-block-temperature", "block")
    );
    assert_eq!(
        metric(&vm, "vigil.shadow.block.trial-block-temperature"),
        Some(1)
    );
    assert_eq!(metric(&vm, "vigil.decision.allow.default"), Some(1));
}

#[test]
fn header_conditions_hold_at_the_end_of_the_body_from_the_saved_headers() {
    let mut vm = start(
        json!([{"id": "risk-team-no-embeddings", "when": {"headers": {"x-team": "risk"}, "json": [{"pointer": "/input", "exists": true}]}, "action": {"type": "block"}}]),
        json!({}),
    );
    let id = send(
        &mut vm,
        "POST",
        "/v1/embeddings",
        &[("x-team", "risk")],
        Some(r#"{"model":"bge","input":"x"}"#),
    );
    assert_eq!(status(&vm, id).as_deref(), Some("403"));
    assert!(
        !vm.has_failed(),
        "no request header was read outside its phase"
    );
    let other = send(
        &mut vm,
        "POST",
        "/v1/embeddings",
        &[("x-team", "ops")],
        Some(r#"{"model":"bge","input":"x"}"#),
    );
    assert!(vm.stream(other).unwrap().request.sent_end);
}

#[test]
fn a_body_that_is_not_json_is_blocked_where_rules_need_json_unless_told_to_ignore() {
    let rules = json!([{"id": "j", "when": {"json": [{"pointer": "/model", "equals": "x"}]}, "action": {"type": "block"}}]);
    let mut vm = start(rules.clone(), json!({}));
    let id = send(&mut vm, "POST", "/v1/x", &[], Some("not json at all"));
    assert_eq!(status(&vm, id).as_deref(), Some("400"));
    assert_eq!(error(&vm, id)["code"], "body_not_json");
    let mut vm = start(rules, json!({"non_json_body": "ignore"}));
    let id = send(&mut vm, "POST", "/v1/x", &[], Some("not json at all"));
    assert!(vm.stream(id).unwrap().request.sent_end);
}

#[test]
fn a_default_block_policy_lets_through_only_what_a_rule_allows() {
    let mut vm = start(
        json!([{"id": "chat-only", "when": {"path": {"exact": "/v1/chat/completions"}, "methods": ["POST"]}, "action": {"type": "allow"}}]),
        json!({"default_action": {"type": "block", "status": 404, "message": "no such API"}}),
    );
    let chat = send(
        &mut vm,
        "POST",
        "/v1/chat/completions",
        &[],
        Some(r#"{"model":"m"}"#),
    );
    assert!(vm.stream(chat).unwrap().request.sent_end);
    let other = send(
        &mut vm,
        "POST",
        "/v1/fine_tuning/jobs",
        &[],
        Some(r#"{"model":"m"}"#),
    );
    assert_eq!(status(&vm, other).as_deref(), Some("404"));
    let r = finish(&mut vm, other);
    assert_eq!(
        (r.decision.action.as_str(), r.decision.rule_id.as_deref()),
        ("block", None)
    );
}

#[test]
fn body_size_conditions_use_the_whole_buffered_body() {
    let mut vm = start(
        json!([{"id": "big", "when": {"body_bytes": {"gt": 40}}, "action": {"type": "block", "status": 413, "message": "too big"}}]),
        json!({}),
    );
    let big = send(
        &mut vm,
        "POST",
        "/v1/x",
        &[],
        Some(&format!("{{\"model\":\"m\",\"p\":\"{}\"}}", "a".repeat(30))),
    );
    assert_eq!(status(&vm, big).as_deref(), Some("413"));
    let small = send(&mut vm, "POST", "/v1/x", &[], Some(r#"{"model":"m"}"#));
    assert!(vm.stream(small).unwrap().request.sent_end);
}
