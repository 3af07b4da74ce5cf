//! The prompt text of a request body, for prompt rules.
//!
//! Model servers turn far more than `messages[].content` into model input: system and
//! developer messages, every kind of content part (text, refusal, reasoning, input_text...),
//! tool-call arguments and tool results, tool and parameter descriptions, the Responses API's
//! `input` and `instructions`, Anthropic's `system`, `documents`, embeddings `input`, JSON
//! schemas' descriptions. Listing fields would leave every field nobody listed, so without a
//! pointer the prompt is **every string in the body** except a few that are identifiers, not
//! text (`model`, `role`, `type`, `id`, `tool_call_id`, `object`, `user`, `encoding_format`)
//! and inline binary data (`data:image/...` and the like). With a pointer (other APIs), it is
//! every string beneath it.
//!
//! A prompt given as token ids (completions `prompt` or embeddings `input` as integers)
//! cannot be read; [`token_ids`] says so and the rules refuse it unless the policy allows.
//!
//! Regexes are matched against the text as sent and against a normalized view
//! ([`normalized`]): compatibility forms folded (NFKC: fullwidth `０７８`, ligatures,
//! mathematical letters) and invisible characters removed (zero-width spaces and joiners,
//! soft hyphens, bidirectional controls, tag characters), so a pattern cannot be dodged by
//! writing its text differently.

use crate::masking::fold::invisible;
use serde_json::Value;
use unicode_normalization::UnicodeNormalization;

/// Keys whose string values are identifiers or settings, never model input.
const NOT_TEXT: &[&str] = &[
    "model",
    "role",
    "type",
    "id",
    "tool_call_id",
    "object",
    "user",
    "encoding_format",
];

/// Inline binary payloads (images, audio, files): not text a regex could mean.
fn is_binary_data(s: &str) -> bool {
    [
        "data:image/",
        "data:audio/",
        "data:video/",
        "data:application/octet-stream",
    ]
    .iter()
    .any(|p| s.len() > p.len() && s.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p)))
}

fn strings_in(v: &Value, out: &mut Vec<String>, skip_keys: bool) {
    match v {
        Value::String(s) if !is_binary_data(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|i| strings_in(i, out, skip_keys)),
        Value::Object(map) => {
            for (key, value) in map {
                if !(skip_keys && NOT_TEXT.contains(&key.as_str())) {
                    strings_in(value, out, skip_keys);
                }
            }
        }
        _ => {}
    }
}

/// The prompt text of `body` (empty when there is none), parts joined with newlines.
pub fn extract(body: Option<&Value>, pointer: Option<&str>) -> String {
    let Some(body) = body else {
        return String::new();
    };
    let mut parts = Vec::new();
    match pointer {
        Some(p) => {
            if let Some(v) = body.pointer(p) {
                strings_in(v, &mut parts, false);
            }
        }
        None => strings_in(body, &mut parts, true),
    }
    parts.join("\n")
}

/// Whether the body gives its prompt as token ids (`prompt` or `input` made of integers, or
/// of lists of them), which no regex can read.
pub fn token_ids(body: Option<&Value>) -> bool {
    fn ints(v: &Value) -> bool {
        match v {
            Value::Array(items) => {
                !items.is_empty()
                    && items
                        .iter()
                        .all(|i| i.is_i64() || i.is_u64() || (i.is_array() && ints(i)))
            }
            _ => false,
        }
    }
    body.is_some_and(|b| {
        ["prompt", "input"]
            .iter()
            .any(|k| b.get(k).is_some_and(ints))
    })
}

/// The text as a pattern should see it: NFKC, invisible characters removed. `None` when that
/// changes nothing (most prompts), so the caller matches once.
pub fn normalized(text: &str) -> Option<String> {
    if text.is_ascii() {
        return None;
    }
    let folded: String = text.nfkc().filter(|c| !invisible(*c)).collect();
    (folded != text).then_some(folded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_string_a_server_turns_into_model_input_is_in_the_prompt() {
        let body = json!({
            "model": "m",
            "instructions": "responses api instructions",
            "system": [{"type": "text", "text": "anthropic system"}],
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "developer", "content": "developer note"},
                {"role": "user", "content": [{"type": "text", "text": "my SSN"},
                    {"type": "input_text", "text": "input text part"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
                {"role": "assistant", "content": null, "refusal": "a refusal",
                 "reasoning_content": "thinking aloud",
                 "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "pay", "arguments": "{\"to\":\"wire transfer\"}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "tool result"}],
            "tools": [{"type": "function", "function": {"name": "pay", "description": "tool description",
                "parameters": {"type": "object", "properties": {"to": {"type": "string", "description": "param description"}}}}}],
            "documents": [{"text": "a document"}],
            "input": [{"role": "user", "content": [{"type": "input_text", "text": "responses input"}]}]
        });
        let text = extract(Some(&body), None);
        for want in [
            "responses api instructions",
            "anthropic system",
            "be brief",
            "developer note",
            "my SSN",
            "input text part",
            "a refusal",
            "thinking aloud",
            "wire transfer",
            "tool result",
            "tool description",
            "param description",
            "a document",
            "responses input",
        ] {
            assert!(text.contains(want), "{want} missing from {text:?}");
        }
        for not in ["AAAA", "\nm\n", "c1", "function"] {
            assert!(!text.contains(not), "{not} in {text:?}");
        }
        assert_eq!(extract(Some(&json!({"prompt": ["a", "b"]})), None), "a\nb");
        assert_eq!(
            extract(
                Some(&json!({"instances": [{"text": "t1"}, {"text": "t2"}]})),
                Some("/instances")
            ),
            "t1\nt2"
        );
        assert_eq!(extract(None, None), "");
    }

    #[test]
    fn strings_of_any_characters_are_read_without_slicing_inside_one() {
        let body = json!({"a": "ｗｉｒｅ ｔｒａｎｓｆｅｒ", "b": "é", "c": "data:imag€"});
        assert_eq!(
            extract(Some(&body), None),
            "ｗｉｒｅ ｔｒａｎｓｆｅｒ\né\ndata:imag€"
        );
    }

    #[test]
    fn prompts_as_token_ids_are_recognised() {
        assert!(token_ids(Some(&json!({"prompt": [1, 2, 3]}))));
        assert!(token_ids(Some(&json!({"prompt": [[1, 2], [3]]}))));
        assert!(token_ids(Some(&json!({"input": [15496, 995]}))));
        assert!(!token_ids(Some(&json!({"prompt": "text"}))));
        assert!(!token_ids(Some(&json!({"input": ["text"]}))));
        assert!(!token_ids(Some(&json!({"prompt": []}))));
    }

    #[test]
    fn the_normalized_view_folds_lookalikes_and_drops_invisible_characters() {
        assert_eq!(
            normalized("ｗｉｒｅ ｔｒａｎｓｆｅｒ").as_deref(),
            Some("wire transfer")
        );
        assert_eq!(
            normalized("wi\u{200B}re trans\u{00AD}fer").as_deref(),
            Some("wire transfer")
        );
        assert_eq!(normalized("𝐰𝐢𝐫𝐞").as_deref(), Some("wire"));
        assert_eq!(
            normalized("０７８-０５-１１２０").as_deref(),
            Some("078-05-1120")
        );
        assert_eq!(normalized("plain ascii"), None);
        assert_eq!(normalized("café"), None, "already NFKC");
    }
}
