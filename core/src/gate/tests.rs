//! The gate natively: each decision path as events in, steps and phase out.

use super::*;
use crate::approval::protocol::CalloutFault;
use crate::identity::verifier::Verifier;
use serde_json::json;

fn config(policy: serde_json::Value) -> PluginConfig {
    PluginConfig::parse(policy.to_string().as_bytes()).unwrap()
}

fn start(method: &str, path: &str) -> RequestStart {
    RequestStart {
        route: Route {
            method: method.into(),
            path: path.into(),
            authority: "models".into(),
        },
        request_id: "r-1".into(),
        client_address: None,
    }
}

fn cx<'a>(config: &'a PluginConfig, secrets: &'a Secrets, who: Option<Identity>) -> Cx<'a> {
    Cx {
        config,
        callers: Callers::Given(who),
        secrets,
        clock: &|| 1_000_000_000_000,
        verbose: true,
    }
}

fn analyst() -> Option<Identity> {
    Some(Identity {
        provider: "corp".into(),
        issuer: Some("https://idp".into()),
        subject: Some("ana".into()),
        email: None,
        groups: vec!["analysts".into()],
        expires_at: None,
    })
}

fn refusal(reply: &Reply) -> Option<&Refusal> {
    reply.steps.iter().find_map(|s| match s {
        Step::Refuse(r) => Some(r.as_ref()),
        _ => None,
    })
}

fn no_header(_: &str) -> Option<String> {
    None
}

const CHAT: &[u8] = br#"{"model":"llama-3.1-8b","messages":[{"role":"user","content":"wire transfer of $9,000 please"}]}"#;

#[test]
fn a_request_no_rule_needs_the_body_for_is_admitted_at_its_headers() {
    let c = config(json!({"id": "p", "version": "1"}));
    let s = Secrets::default();
    let mut gate = Gate::new();
    let reply = gate.request_headers(
        &mut cx(&c, &s, None),
        start("GET", "/v1/models"),
        &no_header,
        true,
    );
    assert_eq!(reply.flow, Flow::Continue);
    assert_eq!(gate.phase(), Phase::Admitted);
}

#[test]
fn a_model_in_the_body_is_decided_at_the_end_of_the_body() {
    let c = config(json!({"id": "p", "version": "1", "models": {"from": "body",
        "allow": [{"model": "llama-*", "groups": ["engineering"]}]}}));
    let s = Secrets::default();
    let mut gate = Gate::new();
    let mut cx = cx(&c, &s, analyst());
    let at_headers = gate.request_headers(
        &mut cx,
        start("POST", "/v1/chat/completions"),
        &no_header,
        false,
    );
    assert_eq!(
        (at_headers.flow, gate.phase()),
        (Flow::Continue, Phase::AwaitingBody)
    );
    let part = gate.request_body(&mut cx, 10, false, &|| CHAT[..10].to_vec());
    assert_eq!(part.flow, Flow::Pause, "buffered");
    let end = gate.request_body(&mut cx, CHAT.len(), true, &|| CHAT.to_vec());
    let r = refusal(&end).unwrap();
    assert_eq!((r.status, r.code), (403, RefusalCode::ModelDenied));
    assert_eq!(gate.phase(), Phase::Refused);
    assert_eq!(gate.log().model(), Some("llama-3.1-8b"));
}

#[test]
fn a_body_over_the_limit_is_refused_with_413_before_it_is_read() {
    let c = config(
        json!({"id": "p", "version": "1", "max_request_body_bytes": 1024,
        "models": {"from": "body", "allow": [{"model": "*", "everyone": true}]}}),
    );
    let s = Secrets::default();
    let mut gate = Gate::new();
    let mut cx = cx(&c, &s, None);
    gate.request_headers(&mut cx, start("POST", "/v1/chat"), &no_header, false);
    let reply = gate.request_body(&mut cx, 1025, false, &|| panic!("read"));
    assert_eq!(refusal(&reply).unwrap().code, RefusalCode::BodyTooLarge);
}

fn approval_policy(mode: &str) -> PluginConfig {
    let mut action = json!({"type": "require_approval", "approvers": ["risk"], "mode": mode});
    if mode == "wait" {
        action["max_wait_s"] = json!(30);
    }
    config(
        json!({"id": "p", "version": "1", "approval": {"cluster": "approvals"},
        "rules": [{"id": "wires", "when": {"prompt": {"matches": ["(?i)wire transfer"]}},
            "action": action}]}),
    )
}

fn asked(reply: &Reply) -> &ServiceCall {
    reply
        .steps
        .iter()
        .find_map(|s| match s {
            Step::CallApproval(c) => Some(c),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no approval call in {:?}", reply.steps))
}

/// An honest service's answer about the ticket `call` opened, at the tests' clock (1000 s).
fn ticket_answer(call: &ServiceCall, status: &str, granted: bool) -> (u16, Vec<u8>) {
    let body = forged(call, status, granted, |_| {});
    (200, body.to_string().into_bytes())
}

/// The honest answer with `tamper` applied: what a forger or a misconfigured service sends.
fn forged(
    call: &ServiceCall,
    status: &str,
    granted: bool,
    tamper: impl FnOnce(&mut serde_json::Value),
) -> serde_json::Value {
    let opened = crate::gate::twin::open_request(call).expect("an open call");
    let mut body = crate::gate::twin::honest_ticket(&opened, status, granted, 1_000_000);
    tamper(&mut body);
    body
}

#[test]
fn an_approved_request_is_consumed_then_admitted_and_recorded_as_approved() {
    let c = approval_policy("ticket");
    let s = Secrets::default();
    let mut gate = Gate::new();
    let mut cx = cx(&c, &s, analyst());
    gate.request_headers(&mut cx, start("POST", "/v1/chat"), &no_header, false);
    let open = gate.request_body(&mut cx, CHAT.len(), true, &|| CHAT.to_vec());
    assert_eq!(
        (open.flow, gate.phase()),
        (Flow::Pause, Phase::AwaitingApproval)
    );
    let call = asked(&open).clone();
    let consume = gate.approval_answer(&mut cx, Ok(ticket_answer(&call, "approved", false)));
    let consume_call = asked(&consume).clone();
    assert!(consume_call
        .headers
        .contains(&(":path".into(), "/v1/tickets/t-1/consume".into())));
    let done = gate.approval_answer(&mut cx, Ok(ticket_answer(&call, "approved", true)));
    assert_eq!((done.flow, gate.phase()), (Flow::Continue, Phase::Admitted));
}

#[test]
fn a_ticket_the_rule_does_not_allow_is_never_acted_on_and_is_a_503_naming_the_check() {
    let c = approval_policy("ticket");
    let s = Secrets::default();
    type Tamper = Box<dyn Fn(&mut serde_json::Value)>;
    let forgeries: Vec<(&str, Tamper)> = vec![
        (
            "approvable by analysts",
            Box::new(|t| t["approver_groups"] = json!(["analysts"])),
        ),
        (
            "a million uses",
            Box::new(|t| t["max_uses"] = json!(1_000_000)),
        ),
        (
            "a year-long approval",
            Box::new(|t| t["expires_at"] = json!("1971-01-01T00:00:00Z")),
        ),
        (
            "another caller",
            Box::new(|t| t["subject"] = json!("mallory")),
        ),
        ("another rule", Box::new(|t| t["rule_id"] = json!("chat"))),
        (
            "approved by the caller",
            Box::new(|t| t["approver"] = json!("ana")),
        ),
        (
            "no rule echoed (an old or foreign service)",
            Box::new(|t| {
                t.as_object_mut().map(|o| o.remove("rule_id"));
            }),
        ),
    ];
    for (what, tamper) in forgeries {
        for consume_forged in [false, true] {
            let mut gate = Gate::new();
            let mut cx = cx(&c, &s, analyst());
            gate.request_headers(&mut cx, start("POST", "/v1/chat"), &no_header, false);
            let open = gate.request_body(&mut cx, CHAT.len(), true, &|| CHAT.to_vec());
            let call = asked(&open).clone();
            let reply = if consume_forged {
                gate.approval_answer(&mut cx, Ok(ticket_answer(&call, "approved", false)));
                let body = forged(&call, "approved", true, &tamper);
                gate.approval_answer(&mut cx, Ok((200, body.to_string().into_bytes())))
            } else {
                let body = forged(&call, "approved", false, &tamper);
                gate.approval_answer(&mut cx, Ok((200, body.to_string().into_bytes())))
            };
            let r = refusal(&reply).unwrap_or_else(|| panic!("{what}: not refused"));
            assert_eq!(
                (r.status, r.code.code()),
                (503, "approval_ticket_untrusted"),
                "{what}"
            );
            assert_eq!(gate.phase(), Phase::Refused, "{what}");
            let trace = gate.log().approval().expect("a trace").clone();
            assert_eq!(trace.status.name(), "error", "{what}");
            assert_eq!(
                trace.error.map(|e| e.code).as_deref(),
                Some("approval_ticket_untrusted"),
                "{what}"
            );
        }
    }
}

#[test]
fn every_unusable_answer_of_the_approval_service_is_a_503_naming_its_cause() {
    let c = approval_policy("ticket");
    let s = Secrets::default();
    for (answer, code) in [
        (Err(CalloutFault::Reset), "approval_service_reset"),
        (Err(CalloutFault::Timeout), "approval_service_timeout"),
        (
            Err(CalloutFault::NotDispatched("no cluster".into())),
            "approval_service_unavailable",
        ),
        (Ok((500, b"oops".to_vec())), "approval_service_error"),
        (Ok((200, b"<html>".to_vec())), "approval_service_garbage"),
    ] {
        let mut gate = Gate::new();
        let mut cx = cx(&c, &s, analyst());
        gate.request_headers(&mut cx, start("POST", "/v1/chat"), &no_header, false);
        gate.request_body(&mut cx, CHAT.len(), true, &|| CHAT.to_vec());
        let reply = gate.approval_answer(&mut cx, answer);
        let r = refusal(&reply).unwrap();
        assert_eq!((r.status, r.code.code()), (503, code));
        assert_eq!(gate.phase(), Phase::Refused);
    }
}

#[test]
fn a_pending_ticket_in_wait_mode_is_polled_until_the_deadline_then_refused() {
    let c = approval_policy("wait");
    let s = Secrets::default();
    let mut gate = Gate::new();
    let mut cx = cx(&c, &s, analyst());
    gate.request_headers(&mut cx, start("POST", "/v1/chat"), &no_header, false);
    let open = gate.request_body(&mut cx, CHAT.len(), true, &|| CHAT.to_vec());
    let call = asked(&open).clone();
    let poll = gate.approval_answer(&mut cx, Ok(ticket_answer(&call, "pending", false)));
    assert!(asked(&poll)
        .headers
        .iter()
        .any(|(k, v)| k == ":path" && v.contains("/status?") && v.ends_with("wait_s=20")));
    let later = || 1_031_000_000_000;
    let mut cx = Cx {
        clock: &later,
        ..cx
    };
    let late = gate.approval_answer(&mut cx, Ok(ticket_answer(&call, "pending", false)));
    assert_eq!(refusal(&late).unwrap().code, RefusalCode::ApprovalPending);
}

#[test]
fn an_answer_with_no_call_in_flight_changes_nothing() {
    let c = approval_policy("ticket");
    let s = Secrets::default();
    let mut gate = Gate::new();
    let mut cx = cx(&c, &s, analyst());
    gate.request_headers(&mut cx, start("GET", "/v1/models"), &no_header, true);
    let phase = gate.phase();
    let reply = gate.approval_answer(&mut cx, Ok((200, b"{}".to_vec())));
    assert_eq!((reply.flow, gate.phase()), (Flow::Pause, phase));
}

#[test]
fn the_callers_token_is_stripped_and_the_credential_injected_on_admission() {
    let c = config(json!({"id": "p", "version": "1",
        "identity": {"providers": [{"name": "corp", "issuer": "https://idp", "jwks": {"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "a"}]}}]},
        "upstream_credential": {"env": "X"}}));
    let s = Secrets {
        credential: Some("Bearer svc".into()),
        approval_key: None,
    };
    let mut gate = Gate::new();
    let reply = gate.request_headers(
        &mut cx(&c, &s, analyst()),
        start("GET", "/v1/models"),
        &no_header,
        true,
    );
    assert!(reply
        .steps
        .contains(&Step::RequestHeader("authorization".into(), None)));
    assert!(reply.steps.contains(&Step::RequestHeader(
        "authorization".into(),
        Some("Bearer svc".into())
    )));
}

#[test]
fn a_missing_token_is_refused_with_a_bare_challenge_when_verifying() {
    let c = config(json!({"id": "p", "version": "1",
        "identity": {"providers": [{"name": "corp", "issuer": "https://idp", "jwks": {"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "a"}]}}]}}));
    let s = Secrets::default();
    let mut verifier = Verifier::new(&c.providers, 16);
    let mut cx = Cx {
        config: &c,
        callers: Callers::Verify(&mut verifier),
        secrets: &s,
        clock: &|| 0,
        verbose: false,
    };
    let mut gate = Gate::new();
    let reply = gate.request_headers(&mut cx, start("GET", "/v1/models"), &no_header, true);
    let r = refusal(&reply).unwrap();
    assert_eq!(
        (r.status, r.code.code(), r.headers[0].1.as_str()),
        (401, "token_missing", "Bearer realm=\"vigil\"")
    );
}

#[test]
fn events_after_the_record_is_sealed_change_nothing() {
    let c = config(json!({"id": "p", "version": "1"}));
    let s = Secrets::default();
    let mut gate = Gate::new();
    let mut cx = cx(&c, &s, None);
    gate.request_headers(&mut cx, start("GET", "/v1/models"), &no_header, true);
    let reply = gate.response_headers(&mut cx, &|_| Some("200".into()), &|| None, true);
    assert!(reply.steps.contains(&Step::Seal { complete: true }));
    let key = RecordKey::new(&[7u8; 32]).unwrap();
    let sealed = gate.seal(&c, 2, true, None, "vm", &mut RecordChain::default(), &key);
    assert!(sealed.is_some());
    assert_eq!(gate.phase(), Phase::Sealed);
    assert!(gate.ended(&cx).steps.is_empty(), "no second record");
}

fn credential_step(reply: &Reply) -> Option<&str> {
    reply.steps.iter().find_map(|s| match s {
        Step::RequestHeader(name, Some(v)) if name == "authorization" => Some(v.as_ref()),
        _ => None,
    })
}

fn sealed_record(gate: &mut Gate, c: &PluginConfig) -> crate::record::SessionRecord {
    let key = crate::record::RecordKey::new(&[7; 32]).unwrap();
    gate.seal(
        c,
        2_000_000_000_000,
        true,
        None,
        "vm",
        &mut Default::default(),
        &key,
    )
    .unwrap()
    .record
}

fn body_rule_policy(hold: bool) -> PluginConfig {
    config(
        json!({"id": "p", "version": "1", "masking": {"entities": {}},
        "envoy": {"hold_request_headers": hold},
        "upstream_credential": {"env": "TOKEN"},
        "rules": [{"id": "no-wires", "when": {"prompt": {"matches": ["(?i)wire transfer"]}},
                   "action": {"type": "block"}}]}),
    )
}

fn with_credential() -> Secrets {
    Secrets {
        credential: Some("Bearer service".into()),
        approval_key: None,
    }
}

/// A chat request's headers through a gate under `body_rule_policy(hold)`, with the
/// upstream credential configured: the policy, the gate and the reply at headers.
fn chat_headers(hold: bool) -> (PluginConfig, Gate, Reply) {
    let c = body_rule_policy(hold);
    let s = with_credential();
    let mut gate = Gate::new();
    let reply = gate.request_headers(
        &mut cx(&c, &s, None),
        start("POST", "/v1/chat/completions"),
        &no_header,
        false,
    );
    (c, gate, reply)
}

#[test]
fn with_header_hold_the_credential_is_set_only_when_the_body_admits_the_request() {
    let (c, mut gate, at_headers) = chat_headers(true);
    let s = with_credential();
    let mut cx = cx(&c, &s, None);
    assert_eq!(at_headers.flow, Flow::Pause, "headers held");
    assert_eq!(credential_step(&at_headers), None);
    let body = br#"{"model":"m","messages":[{"role":"user","content":"hello"}]}"#;
    let at_end = gate.request_body(&mut cx, body.len(), true, &|| body.to_vec());
    assert_eq!(at_end.flow, Flow::Continue);
    assert_eq!(credential_step(&at_end), Some("Bearer service"));
    assert_eq!(gate.phase(), Phase::Admitted);
}

#[test]
fn with_header_hold_a_refused_request_never_gets_the_credential_and_its_record_says_so() {
    let (c, mut gate, at_headers) = chat_headers(true);
    let s = with_credential();
    let mut cx = cx(&c, &s, None);
    let at_end = gate.request_body(&mut cx, CHAT.len(), true, &|| CHAT.to_vec());
    assert!(refusal(&at_end).is_some());
    assert_eq!(
        credential_step(&at_headers).or(credential_step(&at_end)),
        None
    );
    assert!(!sealed_record(&mut gate, &c).headers_reached_upstream);
}

#[test]
fn without_header_hold_headers_go_on_with_the_credential_and_a_refusal_records_it() {
    let (c, mut gate, at_headers) = chat_headers(false);
    let s = with_credential();
    let mut cx = cx(&c, &s, None);
    assert_eq!(at_headers.flow, Flow::Continue);
    assert_eq!(credential_step(&at_headers), Some("Bearer service"));
    let at_end = gate.request_body(&mut cx, CHAT.len(), true, &|| CHAT.to_vec());
    assert!(refusal(&at_end).is_some());
    assert!(sealed_record(&mut gate, &c).headers_reached_upstream);
}

#[test]
fn an_answer_while_undecided_is_envoys_own_or_the_model_servers_withheld() {
    for (details, withheld) in [
        ("request_payload_too_large", false),
        ("stream_idle_timeout", false),
        ("via_upstream", true),
    ] {
        let c = body_rule_policy(false);
        let s = Secrets::default();
        let mut gate = Gate::new();
        let mut cx = cx(&c, &s, None);
        gate.request_headers(
            &mut cx,
            start("POST", "/v1/chat/completions"),
            &no_header,
            false,
        );
        let reply = gate.response_headers(
            &mut cx,
            &|n| (n == ":status").then(|| "413".into()),
            &|| Some(details.into()),
            false,
        );
        assert_eq!(refusal(&reply).is_some(), withheld, "{details}");
        assert_eq!(gate.phase(), Phase::Refused, "{details}");
        let reason = &gate.log().decision().reason;
        if withheld {
            assert!(reason.contains("before Vigil decided"), "{reason}");
            assert!(reply.steps.contains(&Step::Seal { complete: true }));
        } else {
            assert!(
                reason.contains(&format!("Envoy answered 413 ({details})")),
                "{reason}"
            );
        }
        // Request events after it pass nothing.
        assert_eq!(
            gate.request_body(&mut cx, 2, true, &|| b"{}".to_vec()).flow,
            Flow::Pause
        );
    }
}

fn path_rules() -> PluginConfig {
    config(
        json!({"id": "p", "version": "1", "masking": {"entities": {}}, "rules": [
        {"id": "no-fine-tuning", "when": {"path": {"prefix": "/v1/fine_tuning/"}}, "action": {"type": "block"}},
        {"id": "no-infer", "when": {"path": {"glob": "/v2/models/*/infer"}}, "action": {"type": "block"}},
        {"id": "no-wires", "when": {"prompt": {"matches": ["(?i)wire transfer"]}}, "action": {"type": "block"}}]}),
    )
}

/// A POST to `target` whose body has not come yet: it must be refused at its headers.
fn refused_at_headers(c: &PluginConfig, s: &Secrets, target: &str) -> (Gate, Refusal) {
    let mut gate = Gate::new();
    let reply = gate.request_headers(
        &mut cx(c, s, None),
        start("POST", target),
        &no_header,
        false,
    );
    let r = refusal(&reply)
        .unwrap_or_else(|| panic!("{target} passed"))
        .clone();
    (gate, r)
}

#[test]
fn an_encoded_path_is_matched_as_the_server_routes_it_and_refused_at_the_headers() {
    let c = path_rules();
    let s = Secrets::default();
    for target in [
        "/v1/fine%5Ftuning/jobs",
        "/v1/%66ine_tuning/jobs",
        "/v1/chat/../fine_tuning/jobs",
        "//v1//fine_tuning/jobs",
        "/v2/models/m/%69nfer",
        "/v2/models/m/./infer",
    ] {
        let (gate, r) = refused_at_headers(&c, &s, target);
        assert_eq!(r.code, RefusalCode::BlockedByPolicy, "{target}");
        assert_eq!(
            gate.phase(),
            Phase::Refused,
            "decided at the headers: {target}"
        );
    }
}

#[test]
fn paths_servers_read_differently_are_refused_with_400() {
    let c = path_rules();
    let s = Secrets::default();
    for target in [
        "/v1/fine_tuning%2Fjobs",
        "/v1%5Cfine_tuning",
        "/v1/x%00",
        "/v1/%zz",
        "v1/chat",
    ] {
        let (_, r) = refused_at_headers(&c, &s, target);
        assert_eq!(
            (r.status, r.code),
            (400, RefusalCode::AmbiguousPath),
            "{target}"
        );
    }
}

#[test]
fn query_values_and_odd_request_ids_never_reach_the_record() {
    let c = path_rules();
    let s = Secrets::default();
    let mut gate = Gate::new();
    let mut st = start("GET", "/v1/models?user=ana@bank.example&ssn=078-05-1120");
    st.request_id = "ana@bank.example".into();
    gate.request_headers(&mut cx(&c, &s, None), st, &no_header, true);
    let r = sealed_record(&mut gate, &c);
    assert_eq!(r.route.path, "/v1/models?user=…&ssn=…");
    assert!(r.request_id.starts_with("sha256:"), "{}", r.request_id);
}

#[test]
fn a_rule_decided_by_the_headers_does_not_wait_for_the_body() {
    let c = config(
        json!({"id": "p", "version": "1", "masking": {"entities": {}}, "rules": [
        {"id": "admins", "when": {"groups": {"any": ["analysts"]}}, "action": {"type": "allow"}},
        {"id": "no-wires", "when": {"prompt": {"matches": ["(?i)wire transfer"]}}, "action": {"type": "block"}}]}),
    );
    let s = Secrets::default();
    let mut gate = Gate::new();
    let reply = gate.request_headers(
        &mut cx(&c, &s, analyst()),
        start("POST", "/v1/chat/completions"),
        &no_header,
        false,
    );
    assert_eq!(
        (reply.flow, gate.phase()),
        (Flow::Continue, Phase::Admitted)
    );
    // Anyone else waits for the body the prompt rule reads.
    let mut gate = Gate::new();
    let reply = gate.request_headers(
        &mut cx(&c, &s, None),
        start("POST", "/v1/chat/completions"),
        &no_header,
        false,
    );
    assert_eq!(gate.phase(), Phase::AwaitingBody);
    assert!(refusal(&reply).is_none());
}
