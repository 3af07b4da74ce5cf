//! Sealed payloads through vigil.wasm: with `record.seal_to`, each record also carries the
//! unmasked request and answer sealed to the examiner's key. The record's own bodies stay
//! masked, the payload opens only with the examiner's private key, each record has its own
//! ephemeral key (drawn from WASI random_get), and the HMAC covers the payload.

mod common;
use common::*;
use serde_json::json;
use vigil_core::record::check::{check, RecordFault};
use vigil_core::record::sealed::{associated_data, open, OpenFault, OpeningKey};
use vigil_core::record::{RecordKey, SessionRecord};
use vigil_host::testkit::{Gateway, Request};
use vigil_host::Vm;

const PROMPT: &str =
    r#"{"model":"m","messages":[{"role":"user","content":"my SSN is 078-05-1123"}]}"#;
const ANSWER: &[&str] = &[
    "data: {\"choices\":[{\"delta\":{\"content\":\"card 4111 1111 \"}}]}\n\n",
    "data: {\"choices\":[{\"delta\":{\"content\":\"1111 1111 on file\"}}]}\n\ndata: [DONE]\n\n",
];

fn gateway(public: &str, extra: serde_json::Value) -> Vm {
    let mut masking = json!({"mask_request": true});
    if let Some(m) = extra.get("masking") {
        masking = m.clone();
    }
    let policy = json!({"id": "sealed", "version": "1", "masking": masking,
        "record": {"seal_to": public, "max_body_bytes": extra.get("cap").cloned().unwrap_or(json!(65536))}});
    Gateway::new(&policy).start()
}

fn exchange(vm: &mut Vm) -> (SessionRecord, serde_json::Value) {
    let id = Request::post("/v1/chat/completions")
        .chunks([PROMPT])
        .send(vm);
    vm.response_headers(
        id,
        &pairs(&[(":status", "200"), ("content-type", "text/event-stream")]),
        false,
    )
    .unwrap();
    for (i, c) in ANSWER.iter().enumerate() {
        vm.response_body(id, c.as_bytes(), i + 1 == ANSWER.len())
            .unwrap();
    }
    vm.complete_stream(id).unwrap();
    let bytes = vm.stream(id).unwrap().access_log.clone().unwrap()["wasm.vigil_record"].clone();
    (
        serde_json::from_slice(&bytes).unwrap(),
        serde_json::from_slice(&bytes).unwrap(),
    )
}

fn record_key() -> RecordKey {
    RecordKey::new(vigil_host::TEST_RECORD_KEY.1.as_bytes()).unwrap()
}

fn aad(r: &SessionRecord) -> Vec<u8> {
    associated_data(&r.vm_id, r.seq, &r.request_id, &r.started_at)
}

#[test]
fn the_record_stays_masked_and_the_sealed_payload_holds_what_was_sent() {
    let (file, public) = OpeningKey::generate().unwrap();
    let key = OpeningKey::parse(&file).unwrap();
    let mut vm = gateway(&public, json!({}));
    let (r, _) = exchange(&mut vm);
    assert!(
        !r.request.body.contains("078-05-1123"),
        "{}",
        r.request.body
    );
    assert!(!r.response.body.contains("4111"), "{}", r.response.body);
    let sealed = r.sealed.clone().unwrap();
    assert_eq!(sealed.to, key.id());
    let payload = open(&sealed, &[key], &aad(&r)).unwrap();
    assert_eq!(payload.request.body, PROMPT.as_bytes());
    assert_eq!(payload.response.body, ANSWER.concat().as_bytes());
    assert_eq!(payload.response.bytes as usize, ANSWER.concat().len());
    assert!(!payload.request.truncated && !payload.response.truncated);
    // The record holds no trace of the private key and the public key alone opens nothing.
    assert!(!serde_json::to_string(&r)
        .unwrap()
        .contains(file.lines().last().unwrap()));
}

#[test]
fn each_record_is_sealed_with_its_own_ephemeral_key() {
    let (_, public) = OpeningKey::generate().unwrap();
    let mut vm = gateway(&public, json!({}));
    let (a, _) = exchange(&mut vm);
    let (b, _) = exchange(&mut vm);
    assert_ne!(a.sealed.unwrap().enc, b.sealed.unwrap().enc);
}

#[test]
fn an_edited_sealed_payload_fails_verification_and_a_re_signed_one_does_not_open() {
    let (file, public) = OpeningKey::generate().unwrap();
    let key = OpeningKey::parse(&file).unwrap();
    let mut vm = gateway(&public, json!({}));
    let (r, value) = exchange(&mut vm);
    assert!(check(&value, &[record_key()]).is_ok());

    // Anyone without the record key: the HMAC catches the edit.
    let mut edited = value.clone();
    let ct = edited["sealed"]["ct"].as_str().unwrap().to_string();
    let flipped = if ct.starts_with('A') { "B" } else { "A" };
    edited["sealed"]["ct"] = format!("{flipped}{}", &ct[1..]).into();
    assert_eq!(
        check(&edited, &[record_key()]).unwrap_err(),
        RecordFault::HashMismatch
    );

    // An insider with the record key re-signs the edit: verify passes, the payload does not
    // open, and it says so.
    let mut forged: SessionRecord = serde_json::from_value(edited).unwrap();
    let bytes = forged.canonical_bytes();
    let (hash, hmac) = vigil_core::record::chain::digests(&bytes, &record_key());
    (forged.hash, forged.hmac) = (hash, hmac);
    let forged_value = serde_json::to_value(&forged).unwrap();
    assert!(check(&forged_value, &[record_key()]).is_ok());
    let fault = open(
        forged.sealed.as_ref().unwrap(),
        std::slice::from_ref(&key),
        &aad(&r),
    )
    .unwrap_err();
    assert_eq!(fault, OpenFault::Altered);
    assert!(fault.to_string().contains("altered"), "{fault}");

    // A payload moved onto another record does not open there.
    let (other, _) = exchange(&mut vm);
    assert_eq!(
        open(r.sealed.as_ref().unwrap(), &[key], &aad(&other)).unwrap_err(),
        OpenFault::Altered
    );
}

#[test]
fn a_wrong_key_is_refused_with_both_key_ids_named() {
    let (_, public) = OpeningKey::generate().unwrap();
    let (other_file, _) = OpeningKey::generate().unwrap();
    let other = OpeningKey::parse(&other_file).unwrap();
    let mut vm = gateway(&public, json!({}));
    let (r, _) = exchange(&mut vm);
    let sealed = r.sealed.clone().unwrap();
    let message = open(&sealed, std::slice::from_ref(&other), &aad(&r))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains(&sealed.to) && message.contains(other.id()),
        "{message}"
    );
}

#[test]
fn sealed_bodies_are_cut_at_the_record_cap_and_say_so() {
    let (file, public) = OpeningKey::generate().unwrap();
    let mut vm = gateway(&public, json!({"cap": 16}));
    let (r, _) = exchange(&mut vm);
    let p = open(
        r.sealed.as_ref().unwrap(),
        &[OpeningKey::parse(&file).unwrap()],
        &aad(&r),
    )
    .unwrap();
    assert_eq!(p.request.body, &PROMPT.as_bytes()[..16]);
    assert!(p.request.truncated && p.response.truncated);
    assert_eq!(p.request.bytes as usize, PROMPT.len());
}

#[test]
fn without_seal_to_records_carry_no_payload() {
    let policy = json!({"id": "plain", "version": "1"});
    let mut vm = Gateway::new(&policy).start();
    let id = Request::post("/v1/chat/completions")
        .chunks([PROMPT])
        .send(&mut vm);
    let r = finish(&mut vm, id);
    assert!(r.sealed.is_none());
}

#[test]
fn a_low_order_or_malformed_public_key_is_a_configuration_error() {
    use base64::Engine;
    let zero = base64::engine::general_purpose::STANDARD.encode([0u8; 32]);
    for (key, says) in [
        (zero.as_str(), "not a usable X25519"),
        ("nope!", "base64"),
        ("AAAA", "32"),
    ] {
        let policy = json!({"id": "p", "version": "1", "record": {"seal_to": key}});
        let errors = vigil_core::PluginConfig::parse(policy.to_string().as_bytes()).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.path == "$.record.seal_to" && e.message.contains(says)),
            "{errors:?}"
        );
    }
}
