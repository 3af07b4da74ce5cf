//! Bounded property runs (fuzzing) of the response maskers: plain text, JSON, SSE and JSON
//! Lines. For any input: no panic (a panic traps the VM), the output does not depend on how
//! the body is cut into chunks, and a validated value written into the content (split at
//! any point, over any events, with any line ends) never appears in what the client reads.
//!
//! `scripts/test` runs a few hundred cases per property; a long run:
//!   PROPTEST_CASES=100000 cargo test --release -p vigil-core --test fuzz_maskers
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use serde_json::{json, Value};
use vigil_core::masking::body::{mask_body, BodyKind, BodyMasker};
use vigil_core::masking::wide::{Wide, WideCharset, WideMasker};
use vigil_core::masking::Masking;

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Values every built-in detector validates, as the client would read them.
const VALUES: [&str; 8] = [
    "4111 1111 1111 1111",
    // Disguised: fullwidth digits, an en dash, a zero-width space inside.
    "４１１１ １１１１ １１１１ １１１１",
    "078\u{2013}05\u{2013}1123",
    "4111\u{200B}1111 1111 1111",
    "078-05-1123",
    "jane.roe@example.com",
    "GB82 WEST 1234 5698 7654 32",
    "(415) 555-0132",
];

/// Pieces of every format's syntax and of values, for byte soups.
const FRAGMENTS: [&str; 29] = [
    "data: ",
    "data:",
    "event: x",
    ": c",
    "id: 7",
    "\n",
    "\r",
    "\r\n",
    "{",
    "}",
    "[",
    "]",
    "\"",
    "\\",
    "\\u0030",
    ":",
    ",",
    "4111 1111",
    " 1111 1111",
    "078-05-",
    "1123",
    "é",
    "\u{200B}",
    "４",
    "\u{00A0}",
    "\u{2013}",
    "٣",
    "＠",
    "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"",
];

const KINDS: [BodyKind; 4] = [
    BodyKind::Text,
    BodyKind::Json,
    BodyKind::EventStream,
    BodyKind::JsonLines,
];

fn in_chunks(kind: BodyKind, body: &[u8], sizes: &[usize]) -> Vec<u8> {
    let m = Masking::default();
    let mut b = BodyMasker::new(kind);
    let mut out = Vec::new();
    let mut rest = body;
    let mut k = 0;
    while !rest.is_empty() {
        let n = sizes
            .get(k % sizes.len().max(1))
            .copied()
            .unwrap_or(1)
            .clamp(1, rest.len());
        b.push(&m, &rest[..n], &mut out);
        rest = &rest[n..];
        k += 1;
    }
    b.finish(&m, &mut out);
    out
}

/// The content a client reads from a masked stream: the deltas (SSE) or message contents
/// (JSON Lines), joined.
fn content(kind: BodyKind, out: &[u8]) -> String {
    let text = String::from_utf8_lossy(out);
    let mut joined = String::new();
    for line in text.split(['\n', '\r']) {
        let json = match kind {
            BodyKind::JsonLines => line,
            _ => match line.strip_prefix("data:") {
                Some(v) => v.strip_prefix(' ').unwrap_or(v),
                None => continue,
            },
        };
        let Ok(v) = serde_json::from_str::<Value>(json) else {
            continue;
        };
        let piece = v["choices"][0]["delta"]["content"]
            .as_str()
            .or(v["message"]["content"].as_str())
            .unwrap_or_default();
        joined.push_str(piece);
    }
    joined
}

/// `text` split at `cuts` into the events of `kind`, with line ends `eol`.
fn stream(kind: BodyKind, text: &str, cuts: &[usize], eol: &str) -> String {
    let mut at: Vec<usize> = cuts
        .iter()
        .map(|c| c % (text.len() + 1))
        .filter(|c| text.is_char_boundary(*c))
        .collect();
    at.push(0);
    at.push(text.len());
    at.sort_unstable();
    at.dedup();
    let mut s = String::new();
    for w in at.windows(2) {
        let piece = &text[w[0]..w[1]];
        match kind {
            BodyKind::JsonLines => {
                let e = json!({"model": "m", "message": {"role": "assistant", "content": piece}, "done": false});
                s.push_str(&format!("{e}{eol}"));
            }
            _ => {
                let e = json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": piece}}]});
                s.push_str(&format!("data: {e}{eol}{eol}"));
            }
        }
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn any_byte_soup_masks_the_same_however_it_is_cut(
        parts in proptest::collection::vec(0..FRAGMENTS.len() + 1, 0..60),
        noise in proptest::collection::vec(any::<u8>(), 0..16),
        sizes in proptest::collection::vec(1usize..9, 1..8),
    ) {
        let mut body = Vec::new();
        for p in parts {
            match FRAGMENTS.get(p) {
                Some(f) => body.extend_from_slice(f.as_bytes()),
                None => body.extend_from_slice(&noise),
            }
        }
        for kind in KINDS {
            let (whole, _) = mask_body(&Masking::default(), kind, &body);
            prop_assert_eq!(&in_chunks(kind, &body, &sizes), &whole, "{:?}", kind);
            prop_assert_eq!(&in_chunks(kind, &body, &[1]), &whole, "{:?} bytewise", kind);
        }
    }

    #[test]
    fn any_wide_body_masks_the_same_however_it_is_cut(
        parts in proptest::collection::vec(0..FRAGMENTS.len() + 1, 0..40),
        noise in proptest::collection::vec(any::<u8>(), 0..16),
        sizes in proptest::collection::vec(1usize..9, 1..8),
        wide in 0usize..4,
        kind in 0..KINDS.len(),
    ) {
        let wide = [Wide::Utf16Le, Wide::Utf16Be, Wide::Utf32Le, Wide::Utf32Be][wide];
        let mut body = Vec::new();
        for p in parts {
            match FRAGMENTS.get(p) {
                Some(f) => for c in f.chars() {
                    let mut units = [0u16; 2];
                    match wide {
                        Wide::Utf16Le => c.encode_utf16(&mut units).iter().for_each(|u| body.extend(u.to_le_bytes())),
                        Wide::Utf16Be => c.encode_utf16(&mut units).iter().for_each(|u| body.extend(u.to_be_bytes())),
                        Wide::Utf32Le => body.extend((c as u32).to_le_bytes()),
                        Wide::Utf32Be => body.extend((c as u32).to_be_bytes()),
                    }
                },
                None => body.extend_from_slice(&noise),
            }
        }
        let run = |sizes: &[usize]| {
            let m = Masking::default();
            let mut b = BodyMasker::Wide(Box::new(WideMasker::new(WideCharset::Fixed(wide), BodyMasker::new(KINDS[kind]))));
            let mut out = Vec::new();
            let mut rest = body.as_slice();
            let mut k = 0;
            while !rest.is_empty() {
                let n = sizes[k % sizes.len()].clamp(1, rest.len());
                b.push(&m, &rest[..n], &mut out);
                rest = &rest[n..];
                k += 1;
            }
            b.finish(&m, &mut out);
            out
        };
        prop_assert_eq!(run(&sizes), run(&[body.len().max(1)]));
    }

    #[test]
    fn a_value_split_over_events_at_any_point_is_never_read_by_the_client(
        value in 0..VALUES.len(),
        before in "[a-z ]{0,30}",
        after in "[a-z .]{0,30}",
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
        eol in prop_oneof![Just("\n"), Just("\r"), Just("\r\n")],
        sizes in proptest::collection::vec(1usize..64, 1..6),
    ) {
        let text = format!("{before} {} {after}", VALUES[value]);
        for kind in [BodyKind::EventStream, BodyKind::JsonLines] {
            let body = stream(kind, &text, &cuts, eol);
            let out = in_chunks(kind, body.as_bytes(), &sizes);
            let read = content(kind, &out);
            prop_assert!(!read.contains(VALUES[value]), "{:?}: {:?} from {:?}", kind, read, body);
            let (whole, _) = mask_body(&Masking::default(), kind, body.as_bytes());
            prop_assert_eq!(out, whole);
        }
        let (plain, _) = mask_body(&Masking::default(), BodyKind::Text, text.as_bytes());
        prop_assert!(!String::from_utf8_lossy(&plain).contains(VALUES[value]));
    }

    #[test]
    fn a_value_split_over_logprob_tokens_at_any_point_is_never_read_by_the_client(
        value in 0..VALUES.len(),
        before in "[a-z ]{0,30}",
        after in "[a-z .]{0,30}",
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
        sizes in proptest::collection::vec(1usize..64, 1..6),
    ) {
        let text = format!("{before} {} {after}", VALUES[value]);
        let mut at: Vec<usize> = cuts
            .iter()
            .map(|c| c % (text.len() + 1))
            .filter(|c| text.is_char_boundary(*c))
            .chain([0, text.len()])
            .collect();
        at.sort_unstable();
        at.dedup();
        let tokens: Vec<Value> = at
            .windows(2)
            .map(|w| json!({"token": &text[w[0]..w[1]], "bytes": &text.as_bytes()[w[0]..w[1]], "logprob": -0.5}))
            .collect();
        let answer = json!({"choices": [{"index": 0, "message": {"content": "x"}, "logprobs": {"content": tokens}}]});
        let out = in_chunks(BodyKind::Json, answer.to_string().as_bytes(), &sizes);
        let v: Value = serde_json::from_slice(&out).unwrap_or(Value::Null);
        let list = v["choices"][0]["logprobs"]["content"].as_array().cloned().unwrap_or_default();
        let tokens: String = list.iter().filter_map(|t| t["token"].as_str()).collect();
        let bytes: Vec<u8> = list
            .iter()
            .flat_map(|t| t["bytes"].as_array().cloned().unwrap_or_default())
            .filter_map(|b| b.as_u64().map(|b| b as u8))
            .collect();
        prop_assert!(!tokens.is_empty(), "{}", String::from_utf8_lossy(&out));
        prop_assert!(!tokens.contains(VALUES[value]), "{:?}", tokens);
        prop_assert!(!String::from_utf8_lossy(&bytes).contains(VALUES[value]));
    }
}
