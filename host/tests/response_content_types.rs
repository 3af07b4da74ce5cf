//! Response types the maskers cannot read, through vigil.wasm: binary, unknown, charsets
//! other than UTF-8, Latin-1, UTF-16 and UTF-32, and gRPC are refused by default (502 `unmaskable_response`, recorded); the
//! policy can name a type (or `type/*`) to pass, logged and counted, with the record keeping
//! no copy of the body, or to mask as text; every `content-encoding` header counts, not
//! only the first.

mod common;
use common::*;
use serde_json::{json, Value};
use vigil_host::testkit::{Gateway, Request};
use vigil_host::Vm;

fn gateway(content_types: Value) -> Vm {
    let policy = json!({"id": "gw", "version": "1",
        "masking": {"content_types": content_types}});
    Gateway::new(&policy).start()
}

/// A chat request answered with `headers` and `body`: (status the client got, the body it
/// got, the record).
fn answered(
    vm: &mut Vm,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (String, Vec<u8>, vigil_core::record::SessionRecord) {
    let id = Request::post("/v1/chat/completions")
        .chunks([r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#])
        .send(vm);
    let mut all = vec![(":status", "200")];
    all.extend_from_slice(headers);
    vm.response_headers(id, &pairs(&all), false).unwrap();
    if vm
        .stream(id)
        .unwrap()
        .response
        .sent_headers
        .as_ref()
        .is_some_and(|h| h[0].1 != "200")
    {
        let r = finish(vm, id);
        let s = vm.stream(id).unwrap();
        return (status(vm, id).unwrap(), s.response.sent_body.clone(), r);
    }
    vm.response_body(id, body, true).unwrap();
    let got = vm.stream(id).unwrap().response.sent_body.clone();
    let r = finish(vm, id);
    (status(vm, id).unwrap_or_default(), got, r)
}

const SECRET: &[u8] = b"%PDF-1.7 SSN 078-05-1123 card 4111 1111 1111 1111";

#[test]
fn unreadable_types_are_refused_by_default_and_recorded() {
    for ct in [
        "application/octet-stream",
        "application/pdf",
        "image/png",
        "audio/wav",
        "video/mp4",
        "application/zip",
        "application/vnd.bank.blob",
        "text/plain; charset=shift_jis",
        "application/json; charset=EBCDIC-US",
        "application/grpc",
        "application/grpc+proto",
    ] {
        let mut vm = gateway(json!({}));
        let (status, body, r) = answered(&mut vm, &[("content-type", ct)], SECRET);
        assert_eq!(status, "502", "{ct}");
        let err: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(err["error"]["code"], "unmaskable_response", "{ct}");
        assert_eq!(r.response.status, Some(502), "{ct}");
        assert!(
            r.decision.reason.contains("unmaskable_response"),
            "{ct}: {}",
            r.decision.reason
        );
        assert!(!r.response.body.contains("078-05-1123"), "{ct}");
    }
}

#[test]
fn a_type_the_policy_passes_goes_through_unread_counted_and_never_copied_to_the_record() {
    let mut vm = gateway(json!({"image/*": "pass", "application/pdf": "pass"}));
    for ct in ["image/png", "application/pdf"] {
        let (status, body, r) = answered(&mut vm, &[("content-type", ct)], SECRET);
        assert_eq!(status, "200", "{ct}");
        assert_eq!(body, SECRET, "{ct}: passed as it came");
        assert_eq!(r.response.body, "", "{ct}: no copy");
        assert!(r.response.truncated, "{ct}: the copy is not the body");
        assert_eq!(r.response.bytes, SECRET.len() as u64);
    }
    assert_eq!(metric(&vm, "vigil.masking.unreadable_passed"), Some(2));
    // A type not named is still refused.
    let (status, _, _) = answered(&mut vm, &[("content-type", "audio/wav")], SECRET);
    assert_eq!(status, "502");
}

#[test]
fn a_type_the_policy_masks_as_text_is_masked() {
    let mut vm =
        gateway(json!({"application/vnd.bank.report": "text", "application/grpc": "text"}));
    let (status, body, r) = answered(
        &mut vm,
        &[("content-type", "application/vnd.bank.report")],
        SECRET,
    );
    assert_eq!(status, "200");
    let body = String::from_utf8(body).unwrap();
    assert!(
        !body.contains("078-05-1123") && !body.contains("4111"),
        "{body}"
    );
    assert!(!r.response.body.contains("078-05-1123"));
    // gRPC is never rewritten as text: its frames carry their lengths.
    let (status, _, _) = answered(&mut vm, &[("content-type", "application/grpc")], SECRET);
    assert_eq!(status, "502");
}

#[test]
fn every_content_encoding_header_counts_not_only_the_first() {
    let mut vm = gateway(json!({}));
    let (status, body, _) = answered(
        &mut vm,
        &[
            ("content-type", "application/json"),
            ("content-encoding", "identity"),
            ("content-encoding", "gzip"),
        ],
        b"\x1f\x8b...",
    );
    assert_eq!(status, "502");
    let err: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(err["error"]["code"], "encoded_response", "{err}");
    assert!(
        err["error"]["message"].as_str().unwrap().contains("gzip"),
        "{err}"
    );
}

#[test]
fn a_grpc_client_gets_the_refusal_as_a_grpc_status_it_understands() {
    // Envoy answers a gRPC request's local reply as a trailers-only gRPC response
    // (Utility::encodeLocalReply): 502 becomes grpc-status 14 UNAVAILABLE.
    let mut vm = gateway(json!({}));
    let id = vm.create_stream().unwrap();
    let request = pairs(&[
        (":method", "POST"),
        (":path", "/inference.GRPCInferenceService/ModelStreamInfer"),
        (":authority", "models"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]);
    vm.request_headers(id, &request, false).unwrap();
    vm.request_body(id, b"\x00\x00\x00\x00\x05hello", true)
        .unwrap();
    vm.response_headers(
        id,
        &pairs(&[(":status", "200"), ("content-type", "application/grpc")]),
        false,
    )
    .unwrap();
    let s = vm.stream(id).unwrap();
    let sent = s.response.sent_headers.clone().unwrap();
    let get = |k: &str| sent.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get(":status").as_deref(), Some("200"), "{sent:?}");
    assert_eq!(get("content-type").as_deref(), Some("application/grpc"));
    assert_eq!(get("grpc-status").as_deref(), Some("14"));
    assert!(
        get("grpc-message").unwrap().contains("unmaskable_response"),
        "{sent:?}"
    );
    assert!(s.response.sent_body.is_empty(), "trailers-only: no body");
    let r = finish(&mut vm, id);
    assert!(r.decision.reason.contains("unmaskable_response"));
}

#[test]
fn a_utf16_answer_is_masked_and_reaches_the_client_in_utf16() {
    let mut vm = gateway(json!({}));
    let text = "\u{feff}{\"choices\":[{\"message\":{\"content\":\"card 4111 1111 1111 1111\"}}]}";
    let utf16le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let (status, body, r) = answered(
        &mut vm,
        &[("content-type", "application/json; charset=utf-16")],
        &utf16le,
    );
    assert_eq!(status, "200");
    let units: Vec<u16> = body
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect();
    let got = String::from_utf16(&units).unwrap();
    assert!(
        got.starts_with('\u{feff}'),
        "the byte order mark is kept: {got:?}"
    );
    assert!(got.contains("card [CREDIT_CARD]"), "{got}");
    assert!(!got.contains("4111"), "{got}");
    assert_eq!(r.masked.get("credit_card"), Some(&1), "{:?}", r.masked);
    // The record shows the masked body as text, not with a zero beside every character.
    assert!(
        r.response.body.starts_with("{\"choices\"")
            && r.response.body.contains("card [CREDIT_CARD]"),
        "{}",
        r.response.body
    );
}
