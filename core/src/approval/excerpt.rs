//! What an approver reads, always with personal data masked: the start of the prompt, the
//! part of it the rule matched with its context, and the whole request. Approvers are people
//! outside the request, so all of it is masked even when the policy masks nothing else
//! (every built-in entity, redacted).

use super::protocol::MatchedText;
use crate::masking::body::mask_body;
use crate::masking::masker::{Masker, Sink};
use crate::masking::{BodyKind, Masking};
use crate::rules::{prompt, PromptMatch};
use serde_json::Value;

/// Longest whole request sent to the service for approvers (the rest is cut, and said so;
/// the matched part travels on its own, so a cut never hides it).
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// The policy's masking, or every built-in entity when the policy masks nothing.
fn for_approvers(masking: &Masking) -> std::borrow::Cow<'_, Masking> {
    if masking.is_off() {
        std::borrow::Cow::Owned(Masking::default())
    } else {
        std::borrow::Cow::Borrowed(masking)
    }
}

/// One piece of masked output and the original bytes it came from.
struct Piece {
    from: std::ops::Range<usize>,
    to: std::ops::Range<usize>,
    copied: bool,
}

/// Masked output that remembers where each piece came from, to cut it at original offsets.
#[derive(Default)]
struct Tracked {
    out: Vec<u8>,
    pieces: Vec<Piece>,
    read: usize,
}

impl Tracked {
    fn piece(&mut self, original: usize, output: &[u8], copied: bool) {
        let (o, r) = (self.out.len(), self.read);
        self.out.extend_from_slice(output);
        self.read += original;
        self.pieces.push(Piece {
            from: r..self.read,
            to: o..self.out.len(),
            copied,
        });
    }

    /// Where original byte `at` lands in the output. Inside a replaced value a start goes
    /// before the replacement and an end after it, so a cut never splits one.
    fn out_at(&self, at: usize, is_end: bool) -> usize {
        let Some(p) = self.pieces.iter().find(|p| p.from.contains(&at)) else {
            return self.out.len();
        };
        if p.copied {
            p.to.start + (at - p.from.start)
        } else if is_end && at > p.from.start {
            p.to.end
        } else {
            p.to.start
        }
    }
}

impl Sink for Tracked {
    fn copy(&mut self, text: &[u8]) {
        self.piece(text.len(), text, true);
    }
    fn replace(&mut self, original: &[u8], replacement: &str) {
        self.piece(original.len(), replacement.as_bytes(), false);
    }
}

/// The part of the prompt the rule matched, with up to `context` characters either side,
/// masked as one text (so a value across the match's edge is still caught) and then cut.
pub fn matched(m: &PromptMatch, masking: &Masking, context: usize) -> MatchedText {
    let masking = for_approvers(masking);
    let text = m.text.as_str();
    let (start, end) = (m.start.min(text.len()), m.end.min(text.len()));
    let before_start = text
        .get(..start)
        .and_then(|b| {
            b.char_indices()
                .rev()
                .nth(context.saturating_sub(1))
                .map(|(i, _)| i)
        })
        .unwrap_or(0);
    let after_end = text
        .get(end..)
        .and_then(|a| a.char_indices().nth(context).map(|(i, _)| end + i))
        .unwrap_or(text.len());
    let mut masker = Masker::new();
    let mut tracked = Tracked::default();
    masker.push(&masking, text.as_bytes(), &mut tracked);
    masker.finish(&masking, &mut tracked);
    let cut = |a: usize, b: usize| {
        String::from_utf8_lossy(tracked.out.get(a..b).unwrap_or_default()).into_owned()
    };
    let (o0, o1) = (
        tracked.out_at(before_start, false),
        tracked.out_at(start, false),
    );
    let (o2, o3) = (
        tracked.out_at(end, true).max(o1),
        tracked.out_at(after_end, true),
    );
    MatchedText {
        before: cut(o0, o1),
        text: cut(o1, o2),
        after: cut(o2, o3.max(o2)),
        cut_before: before_start > 0,
        cut_after: after_end < text.len(),
        normalized: m.normalized,
    }
}

/// The whole request as approvers read it: a JSON body laid out (escapes decoded, so
/// `\u0035` cannot hide a digit from the masker), anything else as text; masked; cut at
/// [`MAX_REQUEST_BYTES`] on a character boundary. Answers the text and whether it was cut.
pub fn request_text(raw: &[u8], parsed: Option<&Value>, masking: &Masking) -> (String, bool) {
    let masking = for_approvers(masking);
    let shown = match parsed.and_then(|v| serde_json::to_string_pretty(v).ok()) {
        Some(pretty) => pretty.into_bytes(),
        None => raw.to_vec(),
    };
    let (masked, _) = mask_body(&masking, BodyKind::Text, &shown);
    let masked = String::from_utf8_lossy(&masked);
    if masked.len() <= MAX_REQUEST_BYTES {
        return (masked.into_owned(), false);
    }
    let mut at = MAX_REQUEST_BYTES;
    while !masked.is_char_boundary(at) {
        at -= 1;
    }
    (masked[..at].to_string(), true)
}

/// The masked prompt of a request body, cut to `chars` characters (with "…" when cut). A body
/// that is not JSON is read as text.
pub fn excerpt(raw: &[u8], parsed: Option<&Value>, masking: &Masking, chars: usize) -> String {
    let text = match parsed {
        Some(v) => {
            let p = prompt::extract(Some(v), None);
            if p.is_empty() {
                v.to_string()
            } else {
                p
            }
        }
        None => String::from_utf8_lossy(raw).into_owned(),
    };
    let fallback;
    let masking = if masking.is_off() {
        fallback = Masking::default();
        &fallback
    } else {
        masking
    };
    let (masked, _) = mask_body(masking, BodyKind::Text, text.as_bytes());
    let masked = String::from_utf8_lossy(&masked);
    let mut cut: String = masked.chars().take(chars).collect();
    if masked.chars().nth(chars).is_some() {
        cut.push('…');
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_excerpt_is_the_masked_prompt_even_when_the_policy_masks_nothing() {
        let body = br#"{"model":"m","messages":[{"role":"user","content":"Score SSN 536-90-4117 for me"}]}"#;
        let v: Value = serde_json::from_slice(body).unwrap();
        let mut off = Masking::default();
        off.on = Default::default();
        let e = excerpt(body, Some(&v), &off, 600);
        assert!(e.starts_with("Score SSN "), "{e}");
        assert!(!e.contains("536-90-4117"), "{e}");
    }

    #[test]
    fn a_long_prompt_is_cut_on_a_character_boundary() {
        let e = excerpt("é".repeat(50).as_bytes(), None, &Masking::default(), 10);
        assert_eq!(e, format!("{}…", "é".repeat(10)));
    }

    fn at(text: &str, needle: &str) -> PromptMatch {
        let start = text.find(needle).unwrap();
        PromptMatch {
            text: text.into(),
            start,
            end: start + needle.len(),
            normalized: false,
        }
    }

    #[test]
    fn the_match_is_shown_with_its_context_however_far_into_a_long_prompt() {
        let text = format!(
            "{} Call 212-555-0187 and wire transfer $90,000 to the usual account. {}",
            "filler ".repeat(2000),
            "more ".repeat(500)
        );
        let m = matched(&at(&text, "wire transfer"), &Masking::default(), 40);
        assert_eq!(m.text, "wire transfer");
        assert!(m.before.ends_with("and "), "{m:?}");
        assert!(!m.before.contains("0187"), "the phone is masked: {m:?}");
        assert!(m.after.starts_with(" $90,000 to the usual"), "{m:?}");
        assert!(m.cut_before && m.cut_after);
        assert!(m.before.chars().count() <= 40 + 20, "{m:?}");
    }

    #[test]
    fn a_value_across_the_edge_of_the_match_is_masked_whole_and_never_split() {
        let text = "pay with card 4111 1111 1111 1111 today";
        let m = matched(&at(text, "card 4111"), &Masking::default(), 200);
        let all = format!("{}|{}|{}", m.before, m.text, m.after);
        assert!(!all.contains("4111") && !all.contains("1111"), "{all}");
        assert!(m.text.starts_with("card ") && m.text.len() > 5, "{all}");
        assert_eq!(m.after, " today");
    }

    #[test]
    fn context_is_counted_in_characters() {
        let text = format!("{}wire{}", "é".repeat(30), "ü".repeat(30));
        let m = matched(&at(&text, "wire"), &Masking::default(), 5);
        assert_eq!((m.before.as_str(), m.after.as_str()), ("ééééé", "üüüüü"));
    }

    #[test]
    fn the_whole_request_is_masked_with_json_escapes_decoded_and_cut_on_a_character() {
        let body = br#"{"messages":[{"role":"user","content":"SSN 536-90-4117"}]}"#;
        let v: Value = serde_json::from_slice(body).unwrap();
        let (text, cut) = request_text(body, Some(&v), &Masking::default());
        assert!(!cut && !text.contains("4117"), "{text}");
        let long = "é".repeat(MAX_REQUEST_BYTES);
        let (text, cut) = request_text(long.as_bytes(), None, &Masking::default());
        assert!(cut && text.len() <= MAX_REQUEST_BYTES && text.ends_with('é'));
    }
}
