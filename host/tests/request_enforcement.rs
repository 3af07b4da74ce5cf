//! Request-side enforcement through vigil.wasm, tried as an attacker would: encoded paths,
//! prompts in fields nobody listed or written in look-alike characters, token-id prompts,
//! another provider's tokens and groups, tokens that repeat a claim, and personal data in
//! query strings, request ids and model names.

mod common;
use common::*;
use serde_json::{json, Value};
use vigil_core::record::SessionRecord;
use vigil_core::testkit::{mint_hs256, mint_hs256_raw};
use vigil_host::testkit::{Gateway, Request};
use vigil_host::{EnvoySettings, Vm};

const NOW_S: u64 = 1_764_000_000;
const CORP_KEY: &[u8] = b"corp-test-key-not-a-secret-000000";
const PARTNER_KEY: &[u8] = b"partner-test-key-not-a-secret-0000";

fn b64(key: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

fn providers() -> Value {
    json!([
        {"name": "corp", "issuer": "https://corp.test", "algorithms": ["HS256"],
         "jwks": {"keys": [{"kty": "oct", "alg": "HS256", "kid": "c1", "k": b64(CORP_KEY)}]}},
        {"name": "partner", "issuer": "https://partner.test", "algorithms": ["HS256"],
         "jwks": {"keys": [{"kty": "oct", "alg": "HS256", "kid": "p1", "k": b64(PARTNER_KEY)}]}}
    ])
}

fn token(key: &[u8], kid: &str, iss: &str, sub: &str, groups: &[&str]) -> String {
    mint_hs256(
        key,
        kid,
        &json!({"iss": iss, "sub": sub, "groups": groups,
        "iat": NOW_S - 60, "exp": NOW_S + 3600}),
    )
}

fn corp(sub: &str, groups: &[&str]) -> String {
    token(CORP_KEY, "c1", "https://corp.test", sub, groups)
}

fn gateway(policy: Value) -> Vm {
    Gateway::new(&policy)
        .at(NOW_S)
        .envoy(EnvoySettings {
            allow_on_headers_stop_iteration: true,
            ..EnvoySettings::default()
        })
        .start()
}

fn policy(rules: Value) -> Value {
    json!({"id": "gw", "version": "1", "masking": {"entities": {}},
        "envoy": {"hold_request_headers": true},
        "identity": {"providers": providers()},
        "rules": rules})
}

fn error_code(vm: &Vm, id: u32) -> String {
    let body: Value =
        serde_json::from_slice(&vm.stream(id).unwrap().response.sent_body).unwrap_or(Value::Null);
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn record(vm: &mut Vm, id: u32) -> SessionRecord {
    finish(vm, id)
}

// ---- paths

fn path_rules() -> Value {
    policy(json!([
        {"id": "no-fine-tuning", "when": {"path": {"prefix": "/v1/fine_tuning/"}}, "action": {"type": "block", "status": 403}},
        {"id": "no-infer", "when": {"path": {"glob": "/v2/models/*/infer"}}, "action": {"type": "block", "status": 403}},
        {"id": "no-wires", "when": {"prompt": {"matches": ["(?i)wire transfer"]}}, "action": {"type": "block", "status": 403}}]))
}

#[test]
fn an_encoded_path_meets_the_rule_for_the_path_the_server_routes_and_nothing_reaches_it() {
    let mut vm = gateway(path_rules());
    let who = corp("ana", &[]);
    for target in [
        "/v1/fine%5Ftuning/jobs",
        "/v1/%66ine_tuning/jobs",
        "/v1/models/../fine_tuning/jobs",
        "/v1//fine_tuning/jobs",
        "/v2/models/credit/%69nfer",
    ] {
        let id = Request::post(target)
            .bearer(&who)
            .chunks([r#"{"model":"m"}"#])
            .send(&mut vm);
        assert_eq!(status(&vm, id).as_deref(), Some("403"), "{target}");
        assert_eq!(error_code(&vm, id), "blocked_by_policy", "{target}");
        assert!(
            vm.stream(id).unwrap().request.sent_headers.is_none(),
            "{target}"
        );
    }
}

#[test]
fn a_path_servers_could_read_two_ways_is_refused_with_400_and_recorded() {
    let mut vm = gateway(path_rules());
    let who = corp("ana", &[]);
    for target in [
        "/v1/fine_tuning%2Fjobs",
        "/v1%5cfine_tuning/jobs",
        "/v1/x%00y",
        "/v1/%G0",
    ] {
        let id = Request::post(target)
            .bearer(&who)
            .chunks(["{}"])
            .send(&mut vm);
        assert_eq!(status(&vm, id).as_deref(), Some("400"), "{target}");
        assert_eq!(error_code(&vm, id), "ambiguous_path", "{target}");
        let r = record(&mut vm, id);
        assert_eq!(r.outcome, "local_response");
        assert!(
            r.decision.reason.contains("ambiguous_path") || r.decision.reason.contains("path"),
            "{}",
            r.decision.reason
        );
    }
}

#[test]
fn a_rule_the_headers_decide_refuses_before_the_body_arrives() {
    let mut vm = gateway(path_rules());
    let id = vm.create_stream().unwrap();
    let req = Request::post("/v1/fine_tuning/jobs").bearer(&corp("ana", &[]));
    vm.request_headers(id, req.headers(), false).unwrap();
    assert_eq!(
        status(&vm, id).as_deref(),
        Some("403"),
        "at the headers, no body yet"
    );
}

// ---- every prompt field, in every spelling

#[test]
fn a_pattern_is_found_in_any_field_a_server_turns_into_model_input() {
    let mut vm = gateway(path_rules());
    let who = corp("ana", &[]);
    let bodies = [
        json!({"model": "m", "messages": [{"role": "system", "content": "wire transfer"}]}),
        json!({"model": "m", "messages": [{"role": "assistant", "content": null, "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "pay", "arguments": "{\"kind\":\"wire transfer\"}"}}]}]}),
        json!({"model": "m", "messages": [{"role": "tool", "tool_call_id": "c", "content": "wire transfer done"}]}),
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "pay", "description": "makes a wire transfer"}}]}),
        json!({"model": "m", "instructions": "always do a wire transfer", "input": "hi"}),
        json!({"model": "m", "system": [{"type": "text", "text": "wire transfer"}], "messages": []}),
        json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "input_text", "text": "wire transfer"}]}]}),
        json!({"model": "m", "documents": [{"data": {"text": "wire transfer"}}]}),
        json!({"model": "m", "messages": [{"role": "user", "content": "ｗｉｒｅ ｔｒａｎｓｆｅｒ"}]}),
        json!({"model": "m", "messages": [{"role": "user", "content": "wire\u{200B} trans\u{00AD}fer"}]}),
        json!({"model": "m", "messages": [{"role": "user", "content": "𝐰𝐢𝐫𝐞 𝐭𝐫𝐚𝐧𝐬𝐟𝐞𝐫"}]}),
    ];
    for body in bodies {
        let id = Request::post("/v1/chat/completions")
            .bearer(&who)
            .chunks([body.to_string()])
            .send(&mut vm);
        assert_eq!(status(&vm, id).as_deref(), Some("403"), "{body}");
        assert!(vm.stream(id).unwrap().request.sent_headers.is_none());
    }
    let ok = Request::post("/v1/chat/completions")
        .bearer(&who)
        .chunks([
            json!({"model": "m", "messages": [{"role": "user", "content": "hello"}]}).to_string(),
        ])
        .send(&mut vm);
    assert!(
        vm.stream(ok).unwrap().request.sent_end,
        "an innocent prompt passes"
    );
}

#[test]
fn a_prompt_in_token_ids_is_refused_under_prompt_rules_unless_the_policy_allows_it() {
    let mut vm = gateway(path_rules());
    let who = corp("ana", &[]);
    let id = Request::post("/v1/completions")
        .bearer(&who)
        .chunks([r#"{"model":"m","prompt":[9109,8481,315,400]}"#])
        .send(&mut vm);
    assert_eq!(status(&vm, id).as_deref(), Some("400"));
    assert_eq!(error_code(&vm, id), "prompt_unreadable");
    let mut allowing = path_rules();
    allowing["token_id_prompts"] = json!("allow");
    let mut vm = gateway(allowing);
    let id = Request::post("/v1/completions")
        .bearer(&who)
        .chunks([r#"{"model":"m","prompt":[9109,8481,315,400]}"#])
        .send(&mut vm);
    assert!(vm.stream(id).unwrap().request.sent_end);
}

#[test]
fn a_json_body_behind_a_bom_is_read_and_utf16_is_refused() {
    let mut vm = gateway(path_rules());
    let who = corp("ana", &[]);
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend_from_slice(
        json!({"model": "m", "messages": [{"role": "user", "content": "wire transfer"}]})
            .to_string()
            .as_bytes(),
    );
    let id = Request::post("/v1/chat/completions")
        .bearer(&who)
        .chunks([bom])
        .send(&mut vm);
    assert_eq!(status(&vm, id).as_deref(), Some("403"), "the rule read it");
    let utf16: Vec<u8> = "{\"model\":\"m\"}"
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect();
    let id = Request::post("/v1/chat/completions")
        .bearer(&who)
        .chunks([utf16])
        .send(&mut vm);
    assert_eq!(status(&vm, id).as_deref(), Some("400"));
    assert_eq!(error_code(&vm, id), "body_not_json");
}

// ---- identities scoped to their provider

fn scoped_models() -> Value {
    let mut p = policy(json!([]));
    p["models"] =
        json!({"from": "body", "allow": [{"model": "llama-*", "groups": ["corp:analysts"]}]});
    p
}

fn chat_for(vm: &mut Vm, token: &str) -> u32 {
    Request::post("/v1/chat/completions")
        .bearer(token)
        .chunks([r#"{"model":"llama-3","messages":[{"role":"user","content":"hi"}]}"#])
        .send(vm)
}

#[test]
fn a_partners_analysts_are_not_the_banks() {
    let mut vm = gateway(scoped_models());
    let bank = chat_for(&mut vm, &corp("ana", &["analysts"]));
    assert!(
        vm.stream(bank).unwrap().request.sent_end,
        "the bank's analyst may"
    );
    let partner = token(
        PARTNER_KEY,
        "p1",
        "https://partner.test",
        "eve",
        &["analysts", "corp:analysts"],
    );
    let id = chat_for(&mut vm, &partner);
    assert_eq!(status(&vm, id).as_deref(), Some("403"));
    assert_eq!(error_code(&vm, id), "model_denied");
}

#[test]
fn a_partner_key_cannot_vouch_for_the_banks_issuer() {
    let mut vm = gateway(scoped_models());
    // Signed with the partner's key, claiming the bank's issuer and an employee's subject.
    let forged = token(PARTNER_KEY, "p1", "https://corp.test", "ceo", &["analysts"]);
    let id = chat_for(&mut vm, &forged);
    assert_eq!(status(&vm, id).as_deref(), Some("401"));
    let forged = token(PARTNER_KEY, "c1", "https://corp.test", "ceo", &["analysts"]);
    let id = chat_for(&mut vm, &forged);
    assert_eq!(status(&vm, id).as_deref(), Some("401"));
}

#[test]
fn a_token_that_repeats_a_claim_is_refused_and_fractional_times_are_read() {
    let mut vm = gateway(scoped_models());
    let header = r#"{"alg":"HS256","typ":"JWT","kid":"c1"}"#;
    let repeated = format!(
        r#"{{"iss":"https://corp.test","sub":"eve","sub":"ana","groups":["analysts"],"exp":{}}}"#,
        NOW_S + 3600
    );
    let id = chat_for(&mut vm, &mint_hs256_raw(CORP_KEY, header, &repeated));
    assert_eq!(status(&vm, id).as_deref(), Some("401"));
    let body = String::from_utf8(vm.stream(id).unwrap().response.sent_body.clone()).unwrap();
    assert!(
        body.contains("claims_invalid") || body.contains("invalid_token"),
        "{body}"
    );
    let repeated_header = r#"{"alg":"HS256","alg":"none","kid":"c1"}"#;
    let fine = format!(
        r#"{{"iss":"https://corp.test","sub":"ana","groups":["analysts"],"exp":{}}}"#,
        NOW_S + 3600
    );
    let id = chat_for(&mut vm, &mint_hs256_raw(CORP_KEY, repeated_header, &fine));
    assert_eq!(status(&vm, id).as_deref(), Some("401"));
    // RFC 7519 NumericDate: fractions allowed; an exp half a second past now has expired.
    let fractional = format!(
        r#"{{"iss":"https://corp.test","sub":"ana","groups":["analysts"],"exp":{}.5,"iat":{}.25}}"#,
        NOW_S + 3600,
        NOW_S - 10
    );
    let id = chat_for(&mut vm, &mint_hs256_raw(CORP_KEY, header, &fractional));
    assert!(
        vm.stream(id).unwrap().request.sent_end,
        "a fractional exp in the future passes"
    );
    let past = format!(
        r#"{{"iss":"https://corp.test","sub":"ana","groups":["analysts"],"exp":{}.9}}"#,
        NOW_S - 61
    );
    let id = chat_for(&mut vm, &mint_hs256_raw(CORP_KEY, header, &past));
    assert_eq!(status(&vm, id).as_deref(), Some("401"));
}

// ---- nothing raw in records

#[test]
fn query_values_odd_request_ids_and_odd_model_names_never_reach_the_record() {
    // The default masking masks the body's copy; the query, the id and the model name are
    // kept out by the record itself.
    let mut p = scoped_models();
    p["masking"] = json!({});
    let mut vm = gateway(p);
    let id = Request::post("/v1/chat/completions?user=ana@bank.example&ssn=536-22-1234")
        .bearer(&corp("ana", &["analysts"]))
        .header("x-request-id", "customer 536-22-1234")
        .chunks([r#"{"model":"llama-536-22-1234 for ana@bank.example","messages":[]}"#])
        .send(&mut vm);
    vm.response_headers(id, &pairs(&[(":status", "200")]), true)
        .ok();
    let r = record(&mut vm, id);
    let text = serde_json::to_string(&r).unwrap();
    for leak in ["536-22-1234", "ana@bank.example"] {
        assert!(!text.contains(leak), "{leak} in {text}");
    }
    assert_eq!(r.route.path, "/v1/chat/completions?user=…&ssn=…");
    assert!(r.request_id.starts_with("sha256:"));
    assert!(r.model.as_deref().unwrap().starts_with("sha256:"));
    let logs: String = vm
        .logs()
        .iter()
        .map(|l| l.message.clone())
        .collect::<Vec<_>>()
        .join("\n");
    for leak in ["536-22-1234", "ana@bank.example"] {
        assert!(!logs.contains(leak), "{leak} in the logs");
    }
}

#[test]
fn a_body_naming_another_model_than_the_policys_header_is_refused() {
    let mut p = policy(json!([]));
    p["models"] = json!({"from": "header", "header": "x-model", "allow": [{"model": "small", "everyone": true}]});
    let mut vm = gateway(p);
    let id = Request::post("/v1/chat/completions")
        .bearer(&corp("ana", &[]))
        .header("x-model", "small")
        .chunks([r#"{"model":"huge","messages":[]}"#])
        .send(&mut vm);
    assert_eq!(status(&vm, id).as_deref(), Some("400"));
    assert_eq!(error_code(&vm, id), "model_mismatch");
    assert!(vm.stream(id).unwrap().request.sent_headers.is_none());
    let id = Request::post("/v1/chat/completions")
        .bearer(&corp("ana", &[]))
        .header("x-model", "small")
        .chunks([r#"{"model":"small","messages":[]}"#])
        .send(&mut vm);
    assert!(vm.stream(id).unwrap().request.sent_end);
}

#[test]
fn an_hmac_token_with_a_signature_of_the_wrong_length_is_refused_not_a_trap() {
    // jwt-compact panics on such a signature; found by core/tests/fuzz_request_side.rs.
    let mut vm = gateway(scoped_models());
    let good = corp("ana", &["analysts"]);
    let (signed, _) = good.rsplit_once('.').unwrap();
    for signature in [
        "",
        "AAAA",
        "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB",
    ] {
        let id = chat_for(&mut vm, &format!("{signed}.{signature}"));
        assert_eq!(status(&vm, id).as_deref(), Some("401"), "{signature:?}");
    }
    assert!(!vm.has_failed());
}
