//! What an approver reads: the start of the prompt, with personal data masked. Approvers are
//! people outside the request, so the excerpt is masked even when the policy masks nothing
//! else (every built-in entity, redacted).

use crate::masking::body::mask_body;
use crate::masking::{BodyKind, Masking};
use crate::rules::prompt;
use serde_json::Value;

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
}
