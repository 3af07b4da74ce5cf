//! What a masked value becomes.
//!
//! - `redact`: a label, `[SSN]`.
//! - `partial`: the value's shape with all but the last four letters or digits starred,
//!   `***-**-6789`, so a caller can still tell which card was meant.
//! - `token`: `[SSN:3f9a0c7d5e21b846]`, the first 64 bits of HMAC-SHA-256 under a key from the
//!   environment over the entity name and the value's significant characters. The same value
//!   always gives the same token, so analysts can correlate; without the key, trying all 10^9
//!   SSNs gives nothing, which an unkeyed hash would not withstand.

use hmac::{Hmac, Mac};
use sha2::Sha256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Redact,
    Partial,
    Token,
}

impl Style {
    pub const NAMES: [&'static str; 3] = ["redact", "partial", "token"];

    pub fn from_name(name: &str) -> Option<Style> {
        match name {
            "redact" => Some(Style::Redact),
            "partial" => Some(Style::Partial),
            "token" => Some(Style::Token),
            _ => None,
        }
    }
}

/// The replacement text for `value` (the original bytes) of an entity with this label.
pub fn replacement(
    style: Style,
    label: &str,
    entity_name: &str,
    value: &[u8],
    key: Option<&[u8]>,
) -> String {
    match style {
        Style::Redact => format!("[{label}]"),
        Style::Partial => partial(value),
        Style::Token => match key {
            Some(key) => format!("[{label}:{}]", token(key, entity_name, value)),
            // Settings refuse `token` without a key; should one slip through, redact.
            None => format!("[{label}]"),
        },
    }
}

/// Stars every letter and digit but the last four, keeping separators.
fn partial(value: &[u8]) -> String {
    let significant = value.iter().filter(|b| b.is_ascii_alphanumeric()).count();
    let keep_from = significant.saturating_sub(4);
    let mut seen = 0;
    let mut out = String::with_capacity(value.len());
    for &b in value {
        if b.is_ascii_alphanumeric() {
            out.push(if seen >= keep_from { b as char } else { '*' });
            seen += 1;
        } else if b.is_ascii() {
            out.push(b as char);
        }
    }
    out
}

/// Hex of the first 8 bytes of HMAC-SHA-256(key, entity ":" significant characters).
/// Letters are folded to lower case so `GB82 WEST ...` and `gb82west...` correlate, and the
/// separators of numbers are dropped so `078-05-1123` and `078051123` do too.
pub fn token(key: &[u8], entity_name: &str, value: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(entity_name.as_bytes());
    mac.update(b":");
    // Numbers are written with any separators; for them only letters and digits count.
    let numeric = matches!(
        entity_name,
        "credit_card" | "us_ssn" | "us_itin" | "aba_routing" | "phone" | "iban"
    );
    let significant: Vec<u8> = value
        .iter()
        .filter(|b| !numeric || b.is_ascii_alphanumeric())
        .map(|b| b.to_ascii_lowercase())
        .collect();
    mac.update(&significant);
    let tag = mac.finalize().into_bytes();
    tag[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_keeps_the_shape_and_last_four() {
        assert_eq!(partial(b"078-05-1123"), "***-**-1123");
        assert_eq!(partial(b"4111 1111 1111 1111"), "**** **** **** 1111");
    }

    #[test]
    fn tokens_are_stable_keyed_and_ignore_separators() {
        let a = token(b"k1", "us_ssn", b"078-05-1123");
        assert_eq!(a, token(b"k1", "us_ssn", b"078051123"));
        assert_ne!(a, token(b"k2", "us_ssn", b"078-05-1123"));
        assert_eq!(a.len(), 16);
        assert_eq!(
            token(b"k", "iban", b"GB82 WEST 1234 5698 7654 32"),
            token(b"k", "iban", b"gb82west12345698765432")
        );
    }
}
