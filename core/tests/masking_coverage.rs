// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Masking holds for inputs the formats allow but the first tests never used: nesting deeper
//! than anyone writes (bounded, masked as text), a forced decision with several choices
//! (the candidate is masked, never passed), and SSE framing per the WHATWG spec (CR, LF and
//! CRLF line ends, multi-line data, comments, `event:` and `id:` lines, several spaces after
//! `data:`, a body labelled SSE that is not, a line that never ends).

use vigil_core::masking::body::{mask_body, BodyKind, BodyMasker};
use vigil_core::masking::json::MAX_DEPTH;
use vigil_core::masking::sse::MAX_HELD_EVENTS;
use vigil_core::masking::Masking;

fn masked(kind: BodyKind, body: &[u8]) -> String {
    String::from_utf8(mask_body(&Masking::default(), kind, body).0).unwrap()
}

/// The body masked one byte at a time.
fn masked_bytewise(kind: BodyKind, body: &[u8]) -> String {
    let m = Masking::default();
    let mut b = BodyMasker::new(kind);
    let mut out = Vec::new();
    for byte in body.chunks(1) {
        b.push(&m, byte, &mut out);
    }
    b.finish(&m, &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn json_nested_deeper_than_the_bound_is_masked_as_text_with_bounded_memory() {
    let mut body = "[".repeat(4 * 1024 * 1024);
    body.push_str("\"SSN 078-05-1123\"");
    let out = masked(BodyKind::Json, body.as_bytes());
    assert!(!out.contains("078-05-1123"), "the value past the bound is masked");
    assert_eq!(out.len(), body.len() - "078-05-1123".len() + "[SSN]".len());
    // Just within the bound it is still JSON (escapes decoded before detection).
    let within = format!(
        "{}\"SSN \\u0030\\u00378-05-1123\"{}",
        "[".repeat(MAX_DEPTH - 1),
        "]".repeat(MAX_DEPTH - 1)
    );
    let out = masked(BodyKind::Json, within.as_bytes());
    assert!(out.contains("\"SSN [SSN]\""), "{}", &out[MAX_DEPTH - 1..]);
}

/// A chat stream with two choices: choice 0 starts a card, then choice 1 streams more events
/// than the hold-back limit, then choice 0 ends the card.
fn two_choices(card_start: &str, filler_events: usize, card_end: &str) -> String {
    let event = |choice: usize, text: &str| {
        format!(
            "data: {{\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":{choice},\"delta\":{{\"content\":{}}}}}]}}\n\n",
            serde_json::to_string(text).unwrap()
        )
    };
    let mut s = event(0, card_start);
    for _ in 0..filler_events {
        s.push_str(&event(1, "ok "));
    }
    s.push_str(&event(0, card_end));
    s.push_str("data: [DONE]\n\n");
    s
}

#[test]
fn a_forced_decision_masks_the_candidate_and_never_passes_it() {
    let stream = two_choices("pay 4111 1111", MAX_HELD_EVENTS + 10, " 1111 1111 now");
    let m = Masking::default();
    let mut b = BodyMasker::new(BodyKind::EventStream);
    let mut out = Vec::new();
    b.push(&m, stream.as_bytes(), &mut out);
    b.finish(&m, &mut out);
    let out = String::from_utf8(out).unwrap();
    assert!(!out.contains("4111"), "the first half was passed");
    assert!(out.contains("[MASKED]"), "the candidate is masked");
    assert_eq!(out.matches("\n\n").count(), stream.matches("\n\n").count());
}
