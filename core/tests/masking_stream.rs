// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The streaming engine's promises: the output does not depend on how the body is cut into
//! chunks (random cuts, one byte per chunk, a cut at every position), a body with nothing to
//! mask comes out byte-identical, and the hold-back never exceeds the stated bound.

use serde_json::{json, Value};
use vigil_core::json_reader::Errors;
use vigil_core::masking::body::{mask_body, BodyKind, BodyMasker};
use vigil_core::masking::settings::read_masking;
use vigil_core::masking::{Masker, Masking};

use vigil_core::testkit::Rng;

/// Text dense with values, look-alikes and multi-byte characters.
fn corpus() -> String {
    [
        "Card 4111 1111 1111 1111 and 4012-8888-8888-1881, not 4111 1111 1111 1112. ",
        "SSN 078-05-1123; ITIN 911-70-1234; routing number 121000358; void 078-05-1120. ",
        "Write to ana.pérez+bank@example.co.uk or call (415) 555-0132 / +44 20 7946 0958. ",
        "IBAN GB82 WEST 1234 5698 7654 32 — DE89370400440532013000 — café ☕ 3.14159265358979. ",
        "Hosts 192.168.1.1, 2001:db8::8a2e:370:7334 and fe80::1%eth0; std::cout is code. ",
        "Key AKIAIOSFODNN7EXAMPLE, token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U end. ",
        "Bearer abcdefghij0123456789KLMNOPQRST and sk-proj-abc123DEF456ghi789JKL012 done. ",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1234567890abcdef\n-----END RSA PRIVATE KEY-----\nafter the key. ",
        "Order 1234567 shipped 2026-11-22 at 12:34:56 for 19.99 USD. ",
    ]
    .concat()
}

fn masking() -> Masking {
    let v: Value = serde_json::from_str(
        r#"{"entities": {"credit_card": "partial", "us_ssn": "token", "email": "redact", "phone": "redact",
            "iban": "token", "ip_address": "redact", "secret": "redact", "aba_routing": "redact", "us_itin": "redact"},
            "custom": [{"name": "employee_id", "pattern": "E-\\d{6}", "context": ["employee"]}],
            "fields": ["/predictions/*/ssn"], "token_key_env": "K"}"#,
    )
    .unwrap();
    let mut m = read_masking("$", &v, &mut Errors::default()).unwrap();
    m.token_key = Some(b"test key".to_vec());
    m
}

fn in_chunks(m: &Masking, kind: BodyKind, body: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut b = BodyMasker::new(kind);
    let mut out = Vec::new();
    let mut last = 0;
    for &c in cuts {
        b.push(m, &body[last..c], &mut out);
        last = c;
    }
    b.push(m, &body[last..], &mut out);
    b.finish(m, &mut out);
    out
}

fn random_cuts(rng: &mut Rng, len: usize) -> Vec<usize> {
    let n = rng.below(40) + 1;
    let mut cuts: Vec<usize> = (0..n).map(|_| rng.below(len + 1)).collect();
    cuts.sort_unstable();
    cuts
}

fn assert_cut_independent(m: &Masking, kind: BodyKind, body: &[u8]) {
    let (whole, _) = mask_body(m, kind, body);
    let one_byte: Vec<usize> = (1..body.len()).collect();
    assert_eq!(
        in_chunks(m, kind, body, &one_byte),
        whole,
        "one byte per chunk"
    );
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..200 {
        let cuts = random_cuts(&mut rng, body.len());
        assert_eq!(
            in_chunks(m, kind, body, &cuts),
            whole,
            "round {round}, cuts {cuts:?}"
        );
    }
}

#[test]
fn plain_text_output_is_the_same_however_the_body_is_cut() {
    let m = masking();
    let text = corpus();
    let (whole, counts) = mask_body(&m, BodyKind::Text, text.as_bytes());
    let whole = String::from_utf8(whole).unwrap();
    assert_eq!(counts.total(), 18, "{whole}");
    assert!(
        whole.contains("void 078-05-1120") && whole.contains("Write to [EMAIL]"),
        "{whole}"
    );
    assert!(!whole.contains("4111 1111 1111 1111") && whole.contains("**** **** **** 1111"));
    assert!(!whole.contains("MIIEow") && whole.contains("after the key"));
    assert_cut_independent(&m, BodyKind::Text, text.as_bytes());
    // Every two-piece cut of a shorter text.
    let short = &text.as_bytes()[..400];
    let (expected, _) = mask_body(&m, BodyKind::Text, short);
    for c in 0..=short.len() {
        assert_eq!(
            in_chunks(&m, BodyKind::Text, short, &[c]),
            expected,
            "cut at {c}"
        );
    }
}

#[test]
fn json_output_is_the_same_however_the_body_is_cut_and_stays_valid() {
    let m = masking();
    let body = serde_json::to_vec(&json!({
        "id": "chatcmpl-9", "created": 1700000000, "total": 4111111111111111u64,
        "choices": [{"message": {"role": "assistant", "content": corpus()}}],
        "predictions": [{"ssn": 78051123, "score": 0.93}, {"ssn": "078-05-1123", "nested": {"a": [1, 2]}}],
    }))
    .unwrap();
    let (out, counts) = mask_body(&m, BodyKind::Json, &body);
    let v: Value = serde_json::from_slice(&out).expect("still JSON");
    assert_eq!(
        v["created"], 1700000000,
        "numbers outside strings are not content"
    );
    assert_eq!(v["total"], 4111111111111111u64);
    assert_eq!(v["predictions"][0]["ssn"], "[REDACTED]");
    assert_eq!(v["predictions"][0]["score"], 0.93);
    assert_eq!(v["predictions"][1]["ssn"], "[REDACTED]");
    assert_eq!(v["predictions"][1]["nested"]["a"], json!([1, 2]));
    assert_eq!(counts.named(&m)["field"], 2);
    assert_cut_independent(&m, BodyKind::Json, &body);
}

#[test]
fn values_written_with_unicode_escapes_are_masked_and_other_escapes_kept() {
    let m = Masking::default();
    let body = br#"{"a":"SSN \u0030\u0037\u0038-05-1123 \u00e9\ud83d\ude00 \"q\" line\nnext"}"#;
    let (out, _) = mask_body(&m, BodyKind::Json, body);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"a":"SSN [SSN] \u00e9\ud83d\ude00 \"q\" line\nnext"}"#
    );
    assert_cut_independent(&m, BodyKind::Json, body);
}

#[test]
fn a_body_with_nothing_to_mask_comes_out_byte_identical() {
    let m = masking();
    let text = "Plain prose, numbers like 42 and 3.14, times 12:30, versions 1.2.3, café ☕.\r\n"
        .repeat(50);
    let json = format!(
        "{{\"text\": \"{}\", \"n\": [1, 2.5e3, true, null], \"esc\": \"\\u00e9\\t\"}}",
        text.replace("\r\n", "\\r\\n")
    );
    let sse = "event: message\nid: 7\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hello  world\"}}]}\n\n: keep-alive\n\ndata: [DONE]\n\n";
    for (kind, body) in [
        (BodyKind::Text, text.as_str()),
        (BodyKind::Json, json.as_str()),
        (BodyKind::EventStream, sse),
    ] {
        let (out, counts) = mask_body(&m, kind, body.as_bytes());
        assert!(counts.is_empty());
        assert_eq!(out, body.as_bytes(), "{kind:?}");
    }
}

#[test]
fn hold_back_never_exceeds_the_bound() {
    let m = masking();
    let bound = m.hold_back_bound();
    let long_word = "x".repeat(5000);
    let long_local = format!("{}@", "a".repeat(64));
    let digits = "1 ".repeat(2000);
    for text in [corpus(), long_word, long_local, digits] {
        let mut masker = Masker::new();
        let mut out = Vec::new();
        for b in text.as_bytes() {
            masker.push(&m, &[*b], &mut out);
            assert!(masker.held() <= bound, "{} > {bound}", masker.held());
        }
        assert!(masker.peak_held() <= bound);
    }
}

fn openai_stream(deltas: &[String]) -> String {
    let mut s = String::new();
    for (i, d) in deltas.iter().enumerate() {
        let e = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000 + i,
            "model": "gpt-x", "choices": [{"index": 0, "delta": {"content": d}, "finish_reason": null}]});
        s.push_str(&format!("data: {e}\n\n"));
    }
    s.push_str("data: [DONE]\n\n");
    s
}

fn anthropic_stream(deltas: &[String]) -> String {
    let mut s = String::from("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude-x\"}}\n\n");
    s.push_str("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
    for d in deltas {
        let e = json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": d}});
        s.push_str(&format!("event: content_block_delta\r\ndata: {e}\r\n\r\n"));
    }
    s.push_str("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    s
}

fn split_text(rng: &mut Rng, text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let n = (rng.below(6) + 1).min(chars.len() - i);
        out.push(chars[i..i + n].iter().collect());
        i += n;
    }
    out
}

/// The content of a masked stream, joined back.
fn joined(out: &[u8], anthropic: bool) -> String {
    let text = String::from_utf8(out.to_vec()).unwrap();
    let mut s = String::new();
    for line in text.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            continue;
        };
        let piece = if anthropic {
            &v["delta"]["text"]
        } else {
            &v["choices"][0]["delta"]["content"]
        };
        if let Some(p) = piece.as_str() {
            s.push_str(p);
        }
    }
    s
}

#[test]
fn sse_values_split_across_events_and_transport_chunks_are_masked() {
    let m = masking();
    let text = corpus();
    let (expected, _) = mask_body(&m, BodyKind::Text, text.as_bytes());
    let expected = String::from_utf8(expected).unwrap();
    let mut rng = Rng(7);
    for anthropic in [false, true] {
        for _ in 0..5 {
            let deltas = split_text(&mut rng, &text);
            let stream = if anthropic {
                anthropic_stream(&deltas)
            } else {
                openai_stream(&deltas)
            };
            let (out, _) = mask_body(&m, BodyKind::EventStream, stream.as_bytes());
            assert_eq!(joined(&out, anthropic), expected);
            // Framing and every event kept, in order.
            let events_in = stream.matches("data: ").count();
            let events_out = String::from_utf8(out.clone())
                .unwrap()
                .matches("data: ")
                .count();
            assert_eq!(events_in, events_out);
            assert_cut_independent(&m, BodyKind::EventStream, stream.as_bytes());
        }
    }
}

#[test]
fn a_card_number_over_ten_events_is_masked_and_the_events_stay() {
    let m = Masking::default();
    let deltas: Vec<String> = [
        "My", " card", " is 41", "11", " 11", "11 1", "111", " 11", "11", ".",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let stream = openai_stream(&deltas);
    let (out, counts) = mask_body(&m, BodyKind::EventStream, stream.as_bytes());
    assert_eq!(joined(&out, false), "My card is [CREDIT_CARD].");
    assert_eq!(counts.named(&m)["credit_card"], 1);
    let out = String::from_utf8(out).unwrap();
    assert_eq!(out.matches("\n\n").count(), 11);
    assert!(!out.contains("\"41\"") && !out.contains(" 11"));
}

#[test]
fn sse_events_hold_back_is_bounded_in_events_and_bytes() {
    let m = Masking::default();
    let text = corpus().repeat(3);
    let deltas: Vec<String> = text.chars().map(|c| c.to_string()).collect();
    let stream = openai_stream(&deltas);
    let mut b = BodyMasker::new(BodyKind::EventStream);
    let mut out = Vec::new();
    for chunk in stream.as_bytes().chunks(100) {
        b.push(&m, chunk, &mut out);
    }
    b.finish(&m, &mut out);
    let (bytes, events) = b.peak_held();
    assert!(events <= m.hold_back_bound() + 1, "{events} events held");
    assert!(bytes < 200 * 1024, "{bytes} bytes held");
}

#[test]
fn generic_data_lines_are_joined_and_unknown_json_events_masked_alone() {
    let m = Masking::default();
    let stream =
        "data: call 415-55\n\ndata: 5-0132 now\n\ndata: {\"note\": \"078-05-1123\", \"n\": 5}\n\n";
    let (out, counts) = mask_body(&m, BodyKind::EventStream, stream.as_bytes());
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "data: call [PHONE]\n\ndata:  now\n\ndata: {\"note\": \"[SSN]\", \"n\": 5}\n\n"
    );
    assert_eq!(counts.total(), 2);
}

#[test]
fn a_body_that_is_not_json_is_masked_as_text() {
    let m = Masking::default();
    let (out, _) = mask_body(&m, BodyKind::Json, b"{\"a\": 1} oops 078-05-1123");
    assert_eq!(String::from_utf8(out).unwrap(), "{\"a\": 1} oops [SSN]");
    let (out, _) = mask_body(&m, BodyKind::Json, b"<html>078-05-1123</html>");
    assert_eq!(String::from_utf8(out).unwrap(), "<html>[SSN]</html>");
}

#[test]
fn custom_detectors_use_their_context_and_validator() {
    let m = masking();
    let (out, counts) = mask_body(
        &m,
        BodyKind::Text,
        b"employee E-123456, and further on, far from that word, a part number E-654321",
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "employee [EMPLOYEE_ID], and further on, far from that word, a part number E-654321"
    );
    assert_eq!(counts.named(&m)["employee_id"], 1);
}

#[test]
fn tokens_correlate_the_same_value_and_need_the_key() {
    let m = masking();
    let (out, _) = mask_body(
        &m,
        BodyKind::Text,
        b"078-05-1123 then 078051123 then 219-09-9998",
    );
    let out = String::from_utf8(out).unwrap();
    let tokens: Vec<&str> = out.split(" then ").collect();
    assert_eq!(tokens[0], tokens[1]);
    assert_ne!(tokens[0], tokens[2]);
    assert!(tokens[0].starts_with("[SSN:") && tokens[0].len() == "[SSN:]".len() + 16);
}
