//! Detectors a policy adds: a regular expression (regex-lite syntax), optional context words
//! that must appear shortly before the value, and optionally one of the built-in validators.
//!
//! A custom detector is tried where a word or a punctuation mark starts and sees at most its
//! `max_length` bytes, which therefore also bounds the hold-back it adds.

use super::scan::{context_before, View};
use super::style::Style;
use super::validate;

pub const DEFAULT_MAX_LENGTH: usize = 64;
pub const LIMIT_MAX_LENGTH: usize = 256;

/// A built-in check a custom detector may require of its matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validator {
    /// Luhn checksum over the digits.
    Luhn,
    /// Luhn and a card issuer's prefix and length.
    CreditCard,
    /// ISO 13616 mod 97 over the letters and digits (with the country length table).
    Iban,
    /// ABA routing checksum over nine digits.
    AbaRouting,
    /// SSA issuing rules over nine digits.
    UsSsn,
    /// IRS ITIN ranges over nine digits.
    UsItin,
}

impl Validator {
    pub const NAMES: [&'static str; 6] = [
        "luhn",
        "credit_card",
        "iban",
        "aba_routing",
        "us_ssn",
        "us_itin",
    ];

    pub fn from_name(name: &str) -> Option<Validator> {
        Some(match name {
            "luhn" => Validator::Luhn,
            "credit_card" => Validator::CreditCard,
            "iban" => Validator::Iban,
            "aba_routing" => Validator::AbaRouting,
            "us_ssn" => Validator::UsSsn,
            "us_itin" => Validator::UsItin,
            _ => return None,
        })
    }

    pub fn accepts(self, value: &[u8]) -> bool {
        let digits: Vec<u8> = value.iter().copied().filter(u8::is_ascii_digit).collect();
        match self {
            Validator::Luhn => validate::luhn(&digits),
            Validator::CreditCard => validate::luhn(&digits) && validate::card_issued(&digits),
            Validator::Iban => {
                let v: Vec<u8> = value
                    .iter()
                    .filter(|b| b.is_ascii_alphanumeric())
                    .map(u8::to_ascii_uppercase)
                    .collect();
                v.len() >= 4
                    && validate::iban_length([v[0], v[1]]) == Some(v.len())
                    && validate::iban_mod97(&v)
            }
            Validator::AbaRouting => validate::aba_valid(&digits),
            Validator::UsSsn => validate::ssn_valid(&digits),
            Validator::UsItin => validate::itin_valid(&digits),
        }
    }
}

#[derive(Debug, Clone)]
pub struct CustomDetector {
    /// The entity name records and metrics count it under, e.g. `employee_id`.
    pub name: String,
    /// `[EMPLOYEE_ID]`.
    pub label: String,
    /// The policy's pattern, anchored: `^(?:pattern)`.
    pub regex: regex_lite::Regex,
    pub context: Vec<String>,
    pub validator: Option<Validator>,
    pub max_length: usize,
    pub style: Style,
}

impl CustomDetector {
    /// The length of this detector's value at the cursor, if any.
    pub fn find(&self, v: &View) -> Option<usize> {
        let window = v.ahead(self.max_length);
        let text = match std::str::from_utf8(window) {
            Ok(t) => t,
            Err(e) => std::str::from_utf8(&window[..e.valid_up_to()]).ok()?,
        };
        let m = self.regex.find(text)?;
        if m.start() != 0 || m.end() == 0 {
            return None;
        }
        let value = &window[..m.end()];
        if let Some(validator) = self.validator {
            if !validator.accepts(value) {
                return None;
            }
        }
        if !self.context.is_empty() {
            let words: Vec<&str> = self.context.iter().map(String::as_str).collect();
            if !context_before(v, 48, &words) {
                return None;
            }
        }
        Some(m.end())
    }
}
