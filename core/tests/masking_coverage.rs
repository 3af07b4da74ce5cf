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
    assert!(
        !out.contains("078-05-1123"),
        "the value past the bound is masked"
    );
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

/// A chat chunk event carrying `content`, with `eol` line ends.
fn chunk(content: &str, eol: &str) -> String {
    format!(
        "data: {{\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{}}}}}]}}{eol}{eol}",
        serde_json::to_string(content).unwrap()
    )
}

#[test]
fn sse_line_ends_cr_lf_and_crlf_all_frame_events_and_a_split_value_is_masked() {
    for eol in ["\n", "\r", "\r\n"] {
        let stream = [chunk("card 4111 11", eol), chunk("11 1111 1111 ok", eol)].concat();
        let whole = masked(BodyKind::EventStream, stream.as_bytes());
        assert!(
            !whole.contains("4111") && !whole.contains("1111"),
            "{eol:?}: {whole}"
        );
        assert_eq!(
            whole.matches(&format!("{eol}{eol}")).count(),
            2,
            "{eol:?}: {whole}"
        );
        // Cut anywhere, even between the CR and the LF of a CRLF, the output is the same.
        assert_eq!(
            masked_bytewise(BodyKind::EventStream, stream.as_bytes()),
            whole,
            "{eol:?}"
        );
    }
}

#[test]
fn sse_data_lines_of_one_event_are_one_value() {
    // A JSON document split over two data lines: neither line alone is JSON, and only JSON
    // decoding shows the digits (\u0030 is 0).
    let stream = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\ndata: \"SSN \\u0030\\u00378-05-1123 ok\"}}]}\n\n";
    let out = masked(BodyKind::EventStream, stream.as_bytes());
    assert!(!out.contains("1123"), "{out}");
    assert!(out.contains("[SSN]"), "{out}");
    // A raw line end inside a JSON string: not JSON to a client either; masked as text.
    let stream = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"SSN 078-05-1123\ndata: ok\"}}]}\n\n";
    let out = masked(BodyKind::EventStream, stream.as_bytes());
    assert!(!out.contains("1123"), "{out}");
    // And a text value: the email is on one line of a three-line value.
    let stream = "data: write to\ndata: jane.roe@example.com\ndata: today\n\n";
    let out = masked(BodyKind::EventStream, stream.as_bytes());
    assert_eq!(out, "data: write to\ndata: [EMAIL]\ndata: today\n\n");
}

#[test]
fn sse_comments_event_and_id_lines_are_masked_too() {
    let stream = ": debug SSN 078-05-1123\nevent: jane.roe@example.com\nid: 4111 1111 1111 1111\nretry: 1000\ndata: hello\n\n";
    let out = masked(BodyKind::EventStream, stream.as_bytes());
    for leak in ["1123", "jane.roe", "4111"] {
        assert!(!out.contains(leak), "{leak}: {out}");
    }
    assert!(out.ends_with("retry: 1000\ndata: hello\n\n"), "{out}");
    assert_eq!(
        masked_bytewise(BodyKind::EventStream, stream.as_bytes()),
        out
    );
}

#[test]
fn sse_data_with_several_spaces_is_still_read_as_json() {
    // Only JSON decoding shows the digits: \u0030 is 0.
    let stream = "data:    {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"SSN \\u0030\\u00378-05-1123\"}}]}\n\n";
    let out = masked(BodyKind::EventStream, stream.as_bytes());
    assert!(out.contains("[SSN]") && !out.contains("1123"), "{out}");
}

#[test]
fn a_body_labelled_sse_that_is_not_is_masked_as_text_with_bounded_memory() {
    // A JSON answer with no line end at all.
    let short = "{\"choices\":[{\"message\":{\"content\":\"SSN 078-05-1123\"}}]}";
    let out = masked(BodyKind::EventStream, short.as_bytes());
    assert!(!out.contains("1123"), "{out}");
    // A long one: past the line bound the rest is masked as text, never held whole.
    let long = format!(
        "{{\"filler\":\"{}\",\"content\":\"SSN 078-05-1123\"}}",
        "x".repeat(3 * 1024 * 1024)
    );
    let m = Masking::default();
    let mut b = BodyMasker::new(BodyKind::EventStream);
    let mut out = Vec::new();
    for piece in long.as_bytes().chunks(16 * 1024) {
        b.push(&m, piece, &mut out);
    }
    b.finish(&m, &mut out);
    let out = String::from_utf8(out).unwrap();
    assert!(!out.contains("1123") && out.contains("[SSN]"));
    assert_eq!(out.len(), long.len() - "078-05-1123".len() + "[SSN]".len());
    let (_, peak_bytes) = b.peak_held();
    assert!(
        peak_bytes <= vigil_core::masking::sse::MAX_LINE_BYTES + 16 * 1024,
        "{peak_bytes} bytes held"
    );
}

#[test]
fn sse_framing_of_every_kind_masks_the_same_however_the_body_is_cut() {
    let eols = ["\n", "\r", "\r\n"];
    let mut stream = String::new();
    for (k, part) in [
        "pay 4111 1111 ",
        "1111 1111 to ",
        "jane.roe@exam",
        "ple.com, SSN 078-05-",
        "1123.",
    ]
    .iter()
    .enumerate()
    {
        let eol = eols[k % 3];
        stream.push_str(&format!(": keep-alive {k}{eol}"));
        stream.push_str(&chunk(part, eol));
    }
    stream.push_str("data: plain\r\ndata: 212-555-0187\r\n\r\n");
    let whole = masked(BodyKind::EventStream, stream.as_bytes());
    for leak in ["4111", "1111 1111", "jane.roe", "078-05", "0187"] {
        assert!(!whole.contains(leak), "{leak}: {whole}");
    }
    let m = Masking::default();
    let mut rng = vigil_core::testkit::Rng(0x5EED);
    for round in 0..300 {
        let mut b = BodyMasker::new(BodyKind::EventStream);
        let mut out = Vec::new();
        let mut rest = stream.as_bytes();
        while !rest.is_empty() {
            let n = (rng.below(12) + 1).min(rest.len());
            b.push(&m, &rest[..n], &mut out);
            rest = &rest[n..];
        }
        b.finish(&m, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), whole, "round {round}");
    }
    assert_eq!(
        masked_bytewise(BodyKind::EventStream, stream.as_bytes()),
        whole
    );
}

/// Two events of a streaming format, the SSN split between them, framed as SSE (`data: `
/// lines) or as JSON Lines.
fn split_ssn(kind: BodyKind, first: serde_json::Value, second: serde_json::Value) -> String {
    let frame = |v: &serde_json::Value| match kind {
        BodyKind::JsonLines => format!("{v}\n"),
        _ => format!("data: {v}\n\n"),
    };
    format!("{}{}", frame(&first), frame(&second))
}

#[test]
fn every_named_streaming_format_masks_a_value_split_across_events() {
    use serde_json::json;
    let (a, b) = ("SSN 078-05-", "1123 is on file");
    let cases: Vec<(&str, BodyKind, serde_json::Value, serde_json::Value)> = vec![
        (
            "OpenAI Responses API",
            BodyKind::EventStream,
            json!({"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": a}),
            json!({"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": b}),
        ),
        (
            "OpenAI refusal",
            BodyKind::EventStream,
            json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"refusal": a}}]}),
            json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"refusal": b}}]}),
        ),
        (
            "OpenAI logprobs tokens",
            BodyKind::EventStream,
            json!({"choices": [{"index": 0, "delta": {"content": "x"}, "logprobs": {"content": [{"token": "SSN", "logprob": -0.1}, {"token": " 078-05-", "logprob": -0.2}]}}]}),
            json!({"choices": [{"index": 0, "delta": {"content": "y"}, "logprobs": {"content": [{"token": "1123", "logprob": -0.1}, {"token": " ok", "logprob": -0.3}]}}]}),
        ),
        (
            "OpenAI top logprobs",
            BodyKind::EventStream,
            json!({"choices": [{"index": 0, "delta": {"content": "x"}, "logprobs": {"content": [{"token": "a", "top_logprobs": [{"token": "b"}, {"token": a}]}]}}]}),
            json!({"choices": [{"index": 0, "delta": {"content": "y"}, "logprobs": {"content": [{"token": "c", "top_logprobs": [{"token": "d"}, {"token": b}]}]}}]}),
        ),
        (
            "Hugging Face TGI",
            BodyKind::EventStream,
            json!({"index": 1, "token": {"id": 1, "text": a, "logprob": -0.1, "special": false}, "generated_text": null, "details": null}),
            json!({"index": 2, "token": {"id": 2, "text": b, "logprob": -0.1, "special": false}, "generated_text": null, "details": null}),
        ),
        (
            "Ollama chat (JSON Lines)",
            BodyKind::JsonLines,
            json!({"model": "llama3", "created_at": "2026-11-30T10:00:00Z", "message": {"role": "assistant", "content": a}, "done": false}),
            json!({"model": "llama3", "created_at": "2026-11-30T10:00:01Z", "message": {"role": "assistant", "content": b}, "done": false}),
        ),
        (
            "Ollama generate (JSON Lines)",
            BodyKind::JsonLines,
            json!({"model": "llama3", "response": a, "done": false}),
            json!({"model": "llama3", "response": b, "done": false}),
        ),
        (
            "llama.cpp /completion",
            BodyKind::EventStream,
            json!({"content": a, "stop": false, "id_slot": 0}),
            json!({"content": b, "stop": false, "id_slot": 0}),
        ),
        (
            "Triton generate_stream",
            BodyKind::EventStream,
            json!({"model_name": "ensemble", "model_version": "1", "text_output": a}),
            json!({"model_name": "ensemble", "model_version": "1", "text_output": b}),
        ),
        (
            "a format nobody listed",
            BodyKind::EventStream,
            json!({"result": {"pieces": [{"piece": a}]}, "seq": 1}),
            json!({"result": {"pieces": [{"piece": b}]}, "seq": 2}),
        ),
    ];
    for (name, kind, first, second) in cases {
        let stream = split_ssn(kind, first, second);
        let out = masked(kind, stream.as_bytes());
        assert!(
            !out.contains("1123") && !out.contains("078-05"),
            "{name}: {out}"
        );
        assert_eq!(
            out.lines().filter(|l| !l.is_empty()).count(),
            2,
            "{name}: events kept: {out}"
        );
        assert_eq!(
            masked_bytewise(kind, stream.as_bytes()),
            out,
            "{name}: cut at every byte"
        );
        if kind == BodyKind::JsonLines {
            for line in out.lines() {
                serde_json::from_str::<serde_json::Value>(line)
                    .unwrap_or_else(|e| panic!("{name}: {e}: {line}"));
            }
        }
    }
}

#[test]
fn every_other_string_of_a_recognised_event_is_masked_too() {
    let stream = "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"system_fingerprint\":\"jane.roe@example.com\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"hi\"},\"finish_reason\":\"SSN 078-05-1123\"}]}\n\n";
    let out = masked(BodyKind::EventStream, stream.as_bytes());
    assert!(!out.contains("jane.roe") && !out.contains("1123"), "{out}");
    assert!(
        out.contains("\"chatcmpl-1\"") && out.contains("\"content\":\"hi\""),
        "{out}"
    );
}

#[test]
fn json_object_keys_are_masked_like_values() {
    let body = br#"{"078-05-1123": {"jane.roe@example.com": 1}, "n": "ok"}"#;
    let out = masked(BodyKind::Json, body);
    assert!(
        !out.contains("078-05-1123") && !out.contains("jane.roe"),
        "{out}"
    );
    serde_json::from_str::<serde_json::Value>(&out).unwrap();
    assert_eq!(masked_bytewise(BodyKind::Json, body), out);
    // In events too.
    let stream = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}],\"078-05-1123\":true}\n\n";
    let out = masked(BodyKind::EventStream, stream.as_bytes());
    assert!(!out.contains("078-05-1123"), "{out}");
}

#[test]
fn a_json_body_with_a_byte_order_mark_is_still_read_as_json() {
    // Only JSON decoding shows the digits.
    let body = "\u{FEFF}{\"note\": \"SSN \\u0030\\u00378-05-1123\"}";
    let out = masked(BodyKind::Json, body.as_bytes());
    assert!(
        out.starts_with('\u{FEFF}') && out.contains("[SSN]"),
        "{out}"
    );
}

#[test]
fn a_request_body_labelled_binary_is_read_by_what_it_holds() {
    use vigil_core::masking::exchange::ExchangeMasking;
    let m = Masking::default();
    for (ct, body) in [
        (
            "application/octet-stream",
            "{\"prompt\": \"SSN \\u0030\\u00378-05-1123\"}",
        ),
        ("image/png", "SSN 078-05-1123 as text"),
        (
            "application/vnd.unknown",
            "  \u{FEFF}[\"4111 1111 1111 1111\"]",
        ),
    ] {
        let mut x = ExchangeMasking::default();
        x.start_request(&m, Some(ct));
        let mut out = Vec::new();
        for (i, byte) in body.as_bytes().chunks(3).enumerate() {
            let end = (i + 1) * 3 >= body.len();
            out.extend(x.request(&m, byte, end).unwrap());
        }
        let out = String::from_utf8(out).unwrap();
        assert!(
            !out.contains("1123") && !out.contains("4111"),
            "{ct}: {out}"
        );
    }
}

fn with(masking: serde_json::Value) -> Masking {
    vigil_core::masking::settings::read_masking(
        "$",
        &masking,
        &mut vigil_core::json_reader::Errors::default(),
    )
    .unwrap()
}

#[test]
fn logprobs_strip_removes_them_from_answers_and_events_alike() {
    let m = with(serde_json::json!({"logprobs": "strip"}));
    let answer = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"logprobs":{"content":[{"token":"4111","bytes":[52,49,49,49],"logprob":-0.1,"top_logprobs":[{"token":" 1111"}]}]}}]}"#;
    let (out, _) = mask_body(&m, BodyKind::Json, answer.as_bytes());
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["choices"][0]["logprobs"], serde_json::Value::Null);
    assert_eq!(v["choices"][0]["message"]["content"], "ok");
    let stream = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"},\"logprobs\":{\"content\":[{\"token\":\"4111\",\"bytes\":[52,49,49,49]}]}}]}\n\n";
    let (out, _) = mask_body(&m, BodyKind::EventStream, stream.as_bytes());
    let out = String::from_utf8(out).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(out.trim().strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(
        v["choices"][0]["logprobs"],
        serde_json::Value::Null,
        "{out}"
    );
    assert_eq!(v["choices"][0]["delta"]["content"], "ok");
    // Field rules now apply in events too.
    let m = with(serde_json::json!({"fields": ["/choices/*/delta/content"]}));
    let (out, _) = mask_body(&m, BodyKind::EventStream, stream.as_bytes());
    assert!(String::from_utf8(out)
        .unwrap()
        .contains("\"content\":\"[REDACTED]\""));
}

#[test]
fn an_empty_chunk_after_a_cr_does_not_end_the_line() {
    // Envoy may deliver an empty body chunk (an end of stream with no data, a trailer).
    let body = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"SSN 078-05-\"}}]}\r\n\r\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"1123\"}}]}\r\n\r\n";
    let m = Masking::default();
    let mut b = BodyMasker::new(BodyKind::EventStream);
    let mut out = Vec::new();
    for piece in body.split_inclusive('\r') {
        b.push(&m, piece.as_bytes(), &mut out);
        b.push(&m, b"", &mut out);
    }
    b.finish(&m, &mut out);
    assert_eq!(out, mask_body(&m, BodyKind::EventStream, body.as_bytes()).0);
}

#[test]
fn a_json_key_is_the_context_of_its_value() {
    let body = r#"{"routing_number": "253325228", "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "phone": "4155550132", "claim_id": "340220201"}"#;
    let out = masked(BodyKind::Json, body.as_bytes());
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["routing_number"], "[ABA_ROUTING]", "{out}");
    assert_eq!(v["aws_secret_access_key"], "[SECRET]", "{out}");
    assert_eq!(v["phone"], "[PHONE]", "{out}");
    assert_eq!(v["claim_id"], "340220201", "another kind of number: {out}");
}
