// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! External PII vectors (testdata/conformance/pii/pii_vectors.jsonl) against the masking
//! engine: every positive masked as plain text, inside a JSON string, and inside an SSE
//! stream cut one character per event; every negative untouched. Where Vigil decides
//! differently from a row, the row is listed in DEVIATIONS with the reason (the same list is
//! in docs/masking.md).

use serde_json::{json, Value};
use vigil_core::masking::body::{mask_body, BodyKind};
use vigil_core::masking::{Entity, Masker, Masking, Sink};

fn rows() -> Vec<Value> {
    vigil_core::testkit::conformance_lines("pii/pii_vectors.jsonl")
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The vectors' type names (Presidio's) and Vigil's entities.
fn entity_of(presidio: &str) -> Entity {
    match presidio {
        "CREDIT_CARD" => Entity::CreditCard,
        "US_SSN" => Entity::UsSsn,
        "US_ITIN" => Entity::UsItin,
        "EMAIL_ADDRESS" => Entity::Email,
        "PHONE_NUMBER" => Entity::Phone,
        "IBAN_CODE" => Entity::Iban,
        "ABA_ROUTING_NUMBER" => Entity::AbaRouting,
        "IP_ADDRESS" => Entity::IpAddress,
        other => panic!("unknown type {other}"),
    }
}

/// Replacements with their place in the input.
#[derive(Default)]
struct Spans {
    at: usize,
    found: Vec<(usize, usize, String)>,
}

impl Sink for Spans {
    fn copy(&mut self, text: &[u8]) {
        self.at += text.len();
    }
    fn replace(&mut self, original: &[u8], replacement: &str) {
        self.found
            .push((self.at, self.at + original.len(), replacement.to_string()));
        self.at += original.len();
    }
}

fn spans(m: &Masking, text: &str) -> Vec<(usize, usize, String)> {
    let mut masker = Masker::new();
    let mut s = Spans::default();
    masker.push(m, text.as_bytes(), &mut s);
    masker.finish(m, &mut s);
    s.found
}

fn only(e: Entity) -> Masking {
    Masking::only(&[e])
}

/// Rows where Vigil decides differently, and why.
const DEVIATIONS: &[(&str, &str)] = &[
    ("pii-0290", "not an IBAN (wrong check digits), but 2600 0560 1001 6113 inside it is a Luhn-valid Mastercard-range number, masked as a card when credit_card is on"),
    ("pii-0365", "no IBAN, but 440-600-5124 is a valid North American phone number, masked when phone is on"),
    ("pii-0025", "078051120 passes the routing checksum with a Federal Reserve prefix: a bare nine-digit number that does is masked as a routing number unless a word such as \"SSN\" is near"),
    ("pii-0372", "not a routing number, but 421-04-2111 is a valid SSN and is masked as one when us_ssn is on"),
    ("pii-0514", "(37) 788-063 follows no phone word and has no +country code or trunk 0: too loose to tell from other numbers (the row's 07700 063 966 is masked)"),
    ("pii-0536", "699 956 915 follows \"messages to\": no phone word, no +country code, no trunk 0"),
    ("pii-0541", "78 651 450 follows \"answering at\": no phone word, no +country code, no trunk 0"),
];

fn deviation(id: &str) -> Option<&'static str> {
    DEVIATIONS
        .iter()
        .find(|(i, _)| *i == id)
        .map(|(_, why)| *why)
}

/// Text masked as the SSE stream of an OpenAI chat completion, one character per event,
/// then joined back from the events.
fn through_sse_one_char_per_event(m: &Masking, text: &str) -> String {
    let mut stream = String::new();
    for c in text.chars() {
        let event = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000,
            "model": "m", "choices": [{"index": 0, "delta": {"content": c.to_string()}, "finish_reason": null}]});
        stream.push_str(&format!("data: {event}\n\n"));
    }
    stream.push_str("data: [DONE]\n\n");
    let (out, _) = mask_body(m, BodyKind::EventStream, stream.as_bytes());
    let out = String::from_utf8(out).unwrap();
    let mut joined = String::new();
    let mut events = 0;
    for block in out.split("\n\n").filter(|b| !b.is_empty()) {
        events += 1;
        let data = block.strip_prefix("data: ").unwrap();
        if data == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["created"], 1700000000);
        joined.push_str(v["choices"][0]["delta"]["content"].as_str().unwrap());
    }
    assert_eq!(events, text.chars().count() + 1, "every event kept");
    joined
}

#[test]
fn every_positive_is_masked_as_text_in_json_and_in_sse_split_per_character() {
    let all = Masking::default();
    let mut failures = Vec::new();
    let mut checked = 0;
    for row in rows() {
        let Some(entities) = row["entities"].as_array() else {
            continue;
        };
        let id = row["id"].as_str().unwrap();
        let text = row["text"].as_str().unwrap();
        let found = spans(&all, text);
        let (masked, _) = mask_body(&all, BodyKind::Text, text.as_bytes());
        let masked = String::from_utf8(masked).unwrap();
        for e in entities {
            // Offsets in the vectors count characters.
            let to_byte = |c: usize| text.char_indices().nth(c).map_or(text.len(), |(b, _)| b);
            let (start, end) = (
                to_byte(e["start"].as_u64().unwrap() as usize),
                to_byte(e["end"].as_u64().unwrap() as usize),
            );
            let want = entity_of(e["type"].as_str().unwrap());
            let covering = found.iter().find(|(s, f, _)| *s <= start && *f >= end);
            let ok = match covering {
                Some((_, _, r)) => r == &format!("[{}]", want.label()),
                None => false,
            };
            if !ok {
                failures.push(format!(
                    "{id}: {:?} expected {} got {:?}",
                    &text[start..end],
                    want.name(),
                    covering.map(|c| &c.2)
                ));
            }
            checked += 1;
        }
        // The same text inside a JSON string value, and streamed one character per event.
        let doc = serde_json::to_vec(&json!({"created": 1700000000, "text": text})).unwrap();
        let (json_out, _) = mask_body(&all, BodyKind::Json, &doc);
        let v: Value = serde_json::from_slice(&json_out).expect("masked JSON stays valid");
        assert_eq!(v["text"], masked.as_str(), "{id} as JSON");
        assert_eq!(
            through_sse_one_char_per_event(&all, text),
            masked,
            "{id} as SSE"
        );
    }
    let unexplained: Vec<_> = failures
        .iter()
        .filter(|f| deviation(f.split(':').next().unwrap()).is_none())
        .collect();
    assert!(
        unexplained.is_empty(),
        "{} of {checked} positives not masked as expected:\n{}",
        unexplained.len(),
        unexplained
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(checked > 380, "{checked}");
}

#[test]
fn every_negative_is_untouched() {
    let all = Masking::default();
    let mut failures = Vec::new();
    let mut checked = 0;
    for row in rows() {
        if row["expect_none"] != true {
            continue;
        }
        let id = row["id"].as_str().unwrap();
        let text = row["text"].as_str().unwrap();
        let tested = entity_of(row["entity_type_tested"].as_str().unwrap());
        for (m, what) in [
            (only(tested), "alone"),
            (all.clone(), "with every entity on"),
        ] {
            let found = spans(&m, text);
            if !found.is_empty() && deviation(id).is_none() {
                failures.push(format!(
                    "{id} ({} {what}): {text:?} -> {found:?}",
                    tested.name()
                ));
            }
        }
        checked += 1;
    }
    assert!(
        failures.is_empty(),
        "{} negatives masked:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(checked, 220);
}

#[test]
fn every_deviation_is_still_needed() {
    // A deviation that no longer deviates should be removed from the list and the docs.
    let all = Masking::default();
    let docs =
        std::fs::read_to_string(vigil_core::testkit::workspace_root().join("docs/masking.md"))
            .unwrap();
    for (id, _) in DEVIATIONS {
        assert!(docs.contains(id), "{id} is explained in docs/masking.md");
        let row = rows().into_iter().find(|r| r["id"] == *id).unwrap();
        let text = row["text"].as_str().unwrap();
        let found = spans(&all, text);
        let exact = match row["entities"].as_array() {
            Some(es) => es.iter().all(|e| {
                let want = format!("[{}]", entity_of(e["type"].as_str().unwrap()).label());
                let s = e["start"].as_u64().unwrap() as usize;
                let t = e["end"].as_u64().unwrap() as usize;
                let (s, t) = (
                    text.char_indices().nth(s).map_or(text.len(), |x| x.0),
                    text.char_indices().nth(t).map_or(text.len(), |x| x.0),
                );
                found
                    .iter()
                    .any(|(a, b, r)| *a <= s && *b >= t && *r == want)
            }),
            None => found.is_empty(),
        };
        assert!(
            !exact,
            "{id} now agrees with the vectors; drop it from DEVIATIONS"
        );
    }
}
