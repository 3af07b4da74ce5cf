// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Answers that list their text token by token (log probabilities, TGI's details) are
//! masked as one text per list: a card the model wrote as `4111`, ` 1111`, ... is masked in
//! every token that carries part of it, in JSON answers as in events, and the `bytes` beside
//! a changed token are its new UTF-8, never the old digits.

use serde_json::{json, Value};
use vigil_core::masking::body::{mask_body, BodyKind, BodyMasker};
use vigil_core::masking::json::MAX_TOKEN_LIST_BYTES;
use vigil_core::masking::Masking;

const CARD_TOKENS: [&str; 7] = ["Card", ":", " 4111", " 1111", " 1111", " 1111", " thanks"];

fn entry(token: &str, top: &[&str]) -> Value {
    json!({
        "token": token,
        "logprob": -0.25,
        "bytes": token.as_bytes(),
        "top_logprobs": top.iter().map(|t| json!({"token": t, "logprob": -1.5, "bytes": t.as_bytes()})).collect::<Vec<_>>(),
    })
}

/// The card's tokens with, as the first alternative of each, the same token (so the card is
/// split over rank 0 too) and, as the second, a word.
fn chat_logprobs() -> Value {
    json!({"content": CARD_TOKENS.iter().map(|t| entry(t, &[t, " maybe"])).collect::<Vec<_>>()})
}

fn mask_both_ways(kind: BodyKind, body: &[u8]) -> String {
    let m = Masking::default();
    let (whole, counts) = mask_body(&m, kind, body);
    assert!(
        counts.total() > 0,
        "nothing masked in {}",
        String::from_utf8_lossy(body)
    );
    let mut b = BodyMasker::new(kind);
    let mut cut = Vec::new();
    for byte in body.chunks(1) {
        b.push(&m, byte, &mut cut);
    }
    b.finish(&m, &mut cut);
    assert_eq!(whole, cut, "the output depends on how the body is cut");
    String::from_utf8(whole).unwrap()
}

/// Every string and every `bytes` array (read as UTF-8) in `v`.
fn texts(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_u64) => {
            let bytes: Vec<u8> = a.iter().map(|b| b.as_u64().unwrap() as u8).collect();
            out.push(String::from_utf8_lossy(&bytes).into_owned());
        }
        Value::Array(a) => a.iter().for_each(|x| texts(x, out)),
        Value::Object(o) => o.iter().for_each(|(k, x)| {
            out.push(k.clone());
            texts(x, out)
        }),
        _ => {}
    }
}

/// No digit of the card is left anywhere: not in a token, not in a token's bytes, not in
/// the tokens of a list read together.
fn assert_no_card(out: &str) {
    let v: Value = serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let mut all = Vec::new();
    texts(&v, &mut all);
    let joined = all.concat();
    assert!(!joined.contains("1111"), "card digits left: {out}");
    assert!(!joined.contains("4111"), "card digits left: {out}");
}

/// Each token's `bytes` spell the token.
fn assert_bytes_match_tokens(v: &Value) {
    match v {
        Value::Object(o) => {
            if let (Some(Value::String(t)), Some(Value::Array(b))) =
                (o.get("token"), o.get("bytes"))
            {
                let bytes: Vec<u8> = b.iter().map(|x| x.as_u64().unwrap() as u8).collect();
                assert_eq!(
                    t.as_bytes(),
                    bytes.as_slice(),
                    "bytes differ from token {t:?}"
                );
            }
            o.values().for_each(assert_bytes_match_tokens);
        }
        Value::Array(a) => a.iter().for_each(assert_bytes_match_tokens),
        _ => {}
    }
}

#[test]
fn a_value_split_over_the_logprob_tokens_of_a_chat_answer_is_masked_in_every_token() {
    let answer = json!({
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": CARD_TOKENS.concat()}, "logprobs": chat_logprobs()}],
    });
    let out = mask_both_ways(BodyKind::Json, answer.to_string().as_bytes());
    assert_no_card(&out);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_bytes_match_tokens(&v);
    // The words around the card and the second alternatives are untouched.
    let content = &v["choices"][0]["logprobs"]["content"];
    assert_eq!(content[0]["token"], "Card");
    assert_eq!(content[6]["token"], " thanks");
    assert_eq!(content[3]["top_logprobs"][1]["token"], " maybe");
    assert_eq!(
        content[3]["top_logprobs"][1]["bytes"],
        json!(" maybe".as_bytes())
    );
}

#[test]
fn every_format_that_lists_tokens_is_masked_as_one_text_per_list() {
    let tokens: Vec<Value> = CARD_TOKENS.iter().map(|t| json!(t)).collect();
    let tgi_tokens: Vec<Value> = CARD_TOKENS
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"id": i, "text": t, "logprob": -0.1, "special": false}))
        .collect();
    let ollama: Vec<Value> = CARD_TOKENS.iter().map(|t| entry(t, &[t])).collect();
    let cases = [
        (
            "completions API",
            json!({"object": "text_completion", "choices": [{"index": 0, "text": "[CARD]", "logprobs": {
                "tokens": tokens,
                "token_logprobs": vec![-0.1; CARD_TOKENS.len()],
                "top_logprobs": CARD_TOKENS.iter().map(|t| json!({*t: -0.1})).collect::<Vec<_>>(),
                "text_offset": (0..CARD_TOKENS.len()).collect::<Vec<_>>(),
            }}]}),
        ),
        (
            "chat refusal",
            json!({"choices": [{"index": 0, "message": {"refusal": "no"}, "logprobs": {"content": null, "refusal": chat_logprobs()["content"]}}]}),
        ),
        (
            "Responses API",
            json!({"object": "response", "output": [{"type": "message", "content": [{"type": "output_text", "text": "ok", "logprobs": ollama}]}]}),
        ),
        (
            "TGI details",
            json!({"generated_text": "ok", "details": {"finish_reason": "length", "tokens": tgi_tokens, "prefill": tgi_tokens,
                   "top_tokens": CARD_TOKENS.iter().map(|t| json!([{"id": 1, "text": t, "logprob": -0.1, "special": false}])).collect::<Vec<_>>(),
                   "best_of_sequences": [{"generated_text": "ok", "tokens": tgi_tokens}]}}),
        ),
        (
            "Ollama",
            json!({"model": "llama3", "message": {"role": "assistant", "content": "ok"}, "done": true, "logprobs": ollama}),
        ),
    ];
    for (name, answer) in cases {
        let out = mask_both_ways(BodyKind::Json, answer.to_string().as_bytes());
        assert_no_card(&out);
        assert_bytes_match_tokens(&serde_json::from_str(&out).unwrap());
        assert!(out.contains("[CREDIT_CARD]"), "{name}: {out}");
    }
}

#[test]
fn bytes_beside_a_changed_token_of_an_event_are_written_anew() {
    let event = |tokens: &[&str]| {
        let content: Vec<Value> = tokens.iter().map(|t| entry(t, &[t])).collect();
        format!(
            "data: {}\n\n",
            json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": tokens.concat()}, "logprobs": {"content": content}}]})
        )
    };
    // One token per event, and several per event: the same stream either way.
    let one_each: String = CARD_TOKENS.iter().map(|t| event(&[t])).collect();
    let grouped = event(&CARD_TOKENS[..3]) + &event(&CARD_TOKENS[3..]);
    // Responses API deltas carry their log probabilities at the root.
    let responses: String = CARD_TOKENS
        .iter()
        .map(|t| {
            format!(
                "event: response.output_text.delta\ndata: {}\n\n",
                json!({"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "delta": t, "logprobs": [entry(t, &[t])]})
            )
        })
        .collect();
    for stream in [one_each, grouped, responses] {
        let out = mask_both_ways(BodyKind::EventStream, stream.as_bytes());
        let mut all = Vec::new();
        for line in out.lines().filter_map(|l| l.strip_prefix("data: ")) {
            let v: Value = serde_json::from_str(line).unwrap();
            assert_bytes_match_tokens(&v);
            texts(&v, &mut all);
        }
        let joined = all.concat();
        assert!(
            !joined.contains("1111") && !joined.contains("4111"),
            "{out}"
        );
    }
}

#[test]
fn an_answer_with_nothing_to_mask_in_its_token_lists_is_passed_byte_for_byte() {
    let words = ["The", " branch", " opens", " at", " nine", "."];
    let answer = serde_json::to_string_pretty(&json!({
        "choices": [{"index": 0, "message": {"content": words.concat()},
                     "logprobs": {"content": words.iter().map(|t| entry(t, &[t, " x"])).collect::<Vec<_>>()}}],
        "details": {"tokens": words.iter().map(|t| json!({"text": t})).collect::<Vec<_>>()},
    }))
    .unwrap();
    let (out, counts) = mask_body(&Masking::default(), BodyKind::Json, answer.as_bytes());
    assert!(counts.is_empty());
    assert_eq!(String::from_utf8(out).unwrap(), answer);
}

#[test]
fn a_token_list_too_long_to_hold_is_replaced_by_null_never_passed() {
    let entry = json!({"token": " 4111", "logprob": -0.1}).to_string();
    let n = MAX_TOKEN_LIST_BYTES / entry.len() + 10;
    let list = vec![entry.as_str(); n].join(",");
    let answer = format!(
        "{{\"choices\":[{{\"index\":0,\"message\":{{\"content\":\"ok\"}},\"logprobs\":{{\"content\":[{list}]}}}}],\"usage\":{{\"total_tokens\":3}}}}"
    );
    let (out, _) = mask_body(&Masking::default(), BodyKind::Json, answer.as_bytes());
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["choices"][0]["logprobs"], Value::Null);
    assert_eq!(
        v["usage"]["total_tokens"], 3,
        "what follows the list is kept"
    );
}

#[test]
fn strip_removes_every_format_of_log_probabilities() {
    let m = vigil_core::masking::settings::read_masking(
        "$",
        &json!({"logprobs": "strip"}),
        &mut vigil_core::json_reader::Errors::default(),
    )
    .unwrap();
    let answer = json!({
        "output": [{"content": [{"text": "ok", "logprobs": [entry(" 4111", &[])]}]}],
        "details": {"finish_reason": "length", "tokens": [{"text": " 4111"}], "top_tokens": [[{"text": "1"}]]},
        "logprobs": [entry(" 4111", &[])],
    });
    let (out, _) = mask_body(&m, BodyKind::Json, answer.to_string().as_bytes());
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["output"][0]["content"][0]["logprobs"], Value::Null);
    assert_eq!(v["details"]["tokens"], Value::Null);
    assert_eq!(v["details"]["top_tokens"], Value::Null);
    assert_eq!(v["details"]["finish_reason"], "length");
    assert_eq!(v["logprobs"], Value::Null);
}
