//! The `masking` block of a policy, validated with a JSON path for every problem:
//!
//! ```json
//! "masking": {
//!   "entities": {"us_ssn": "redact", "credit_card": "partial", "email": "token"},
//!   "custom": [{"name": "employee_id", "pattern": "E-\\d{6}", "context": ["employee"]}],
//!   "fields": ["/predictions/*/ssn"],
//!   "token_key_env": "VIGIL_MASK_KEY",
//!   "mask_request": false,
//!   "encoded_responses": "refuse"
//! }
//! ```
//!
//! Without a `masking` block every built-in entity is redacted: a policy has to say so to
//! let personal data through. `entities` may also be a list of names (each redacted).

use super::custom::{CustomDetector, Validator, DEFAULT_MAX_LENGTH, LIMIT_MAX_LENGTH};
use super::detect::{Enabled, MAX_LOOKAHEAD};
use super::style::Style;
use super::Entity;
use crate::json_reader::{describe, read_string, Errors, ObjectReader};
use serde_json::Value;

/// What to do with a response whose `content-encoding` the filter cannot read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodedResponses {
    /// Answer 502 instead of passing an uninspected body (the default).
    Refuse,
    /// Pass it unmasked (and say so in the record).
    Pass,
}

/// Where answers carry log probabilities, each format's (`None`: any element):
/// `logprobs: strip` replaces them by `null`. OpenAI chat and completions answers and
/// chunks (vLLM's too), the Responses API's answers and its delta events (and Ollama's
/// answers and events), TGI's details and its events' `top_tokens`.
const LOGPROBS: [&[Option<&str>]; 8] = [
    &[Some("choices"), None, Some("logprobs")],
    &[
        Some("output"),
        None,
        Some("content"),
        None,
        Some("logprobs"),
    ],
    &[Some("logprobs")],
    &[Some("details"), Some("tokens")],
    &[Some("details"), Some("prefill")],
    &[Some("details"), Some("top_tokens")],
    &[Some("details"), Some("best_of_sequences")],
    &[Some("top_tokens")],
];

/// One segment of a field rule's JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PointerSegment {
    /// An object member name or an array index written as digits.
    Name(String),
    /// `*`: any array element or object member.
    Any,
}

#[derive(Debug, Clone)]
pub struct Masking {
    pub on: Enabled,
    styles: [Style; 9],
    pub custom: Vec<CustomDetector>,
    pub fields: Vec<Vec<PointerSegment>>,
    /// Values replaced by `null` whatever they hold (`logprobs: "strip"`:
    /// `/choices/*/logprobs`), in JSON bodies and in events.
    pub strip: Vec<Vec<PointerSegment>>,
    pub token_key_env: Option<String>,
    /// The key for `token`, read from `token_key_env` by the filter at start.
    pub token_key: Option<Vec<u8>>,
    /// Mask the request body before it goes to the model.
    pub mask_request: bool,
    pub encoded_responses: EncodedResponses,
    /// What to do with response types the maskers cannot read (`content_types`: a type or
    /// `type/*` to `refuse`, `pass` or `text`); anything unnamed is refused.
    pub content_types: Vec<(String, super::content_type::Unreadable)>,
}

impl Default for Masking {
    /// Every built-in entity, redacted.
    fn default() -> Self {
        Self {
            on: Entity::BUILTIN
                .iter()
                .fold(Enabled::default(), |on, e| on.with(*e)),
            styles: [Style::Redact; 9],
            custom: Vec::new(),
            fields: Vec::new(),
            strip: Vec::new(),
            token_key_env: None,
            token_key: None,
            mask_request: false,
            encoded_responses: EncodedResponses::Refuse,
            content_types: Vec::new(),
        }
    }
}

impl Masking {
    /// Only these built-in entities, redacted.
    pub fn only(entities: &[Entity]) -> Self {
        Self {
            on: entities
                .iter()
                .fold(Enabled::default(), |on, e| on.with(*e)),
            ..Self::default()
        }
    }

    /// Nothing is masked: no entity, no custom detector, no field rule.
    pub fn off() -> Self {
        Self {
            on: Enabled::default(),
            ..Self::default()
        }
    }

    pub fn is_off(&self) -> bool {
        self.on == Enabled::default()
            && self.custom.is_empty()
            && self.fields.is_empty()
            && self.strip.is_empty()
    }

    pub fn style(&self, e: Entity) -> Style {
        match e {
            Entity::Custom(i) => self
                .custom
                .get(usize::from(i))
                .map_or(Style::Redact, |c| c.style),
            Entity::Field => Style::Redact,
            e => self.styles[e.bit() as usize],
        }
    }

    /// The name a masked value is counted under.
    pub fn entity_name(&self, e: Entity) -> &str {
        match e {
            Entity::Custom(i) => self
                .custom
                .get(usize::from(i))
                .map_or("custom", |c| c.name.as_str()),
            e => e.name(),
        }
    }

    pub fn label(&self, e: Entity) -> &str {
        match e {
            Entity::Custom(i) => self
                .custom
                .get(usize::from(i))
                .map_or("CUSTOM", |c| c.label.as_str()),
            e => e.label(),
        }
    }

    /// Whether any entity is masked with `token` (so a key is needed).
    pub fn uses_tokens(&self) -> bool {
        Entity::BUILTIN
            .iter()
            .any(|e| self.on.has(*e) && self.style(*e) == Style::Token)
            || self.custom.iter().any(|c| c.style == Style::Token)
    }

    /// The most bytes of text the streaming engine holds back: the longest look-ahead of any
    /// enabled detector.
    pub fn hold_back_bound(&self) -> usize {
        self.custom
            .iter()
            .map(|c| c.max_length + 1)
            .fold(MAX_LOOKAHEAD, usize::max)
    }
}

/// Reads `masking` from a policy object.
pub fn read_masking(path: &str, value: &Value, errors: &mut Errors) -> Option<Masking> {
    let mut obj = ObjectReader::new(path, value, errors)?;
    let mut m = Masking::default();
    let mut ok = true;
    let mut custom_default = Style::Redact;
    if let Some(entities) = obj.get("entities") {
        m.on = Enabled::default();
        let p = obj.field_path("entities");
        let mut enable = |name: &str, style: Style, at: &str, errors: &mut Errors| {
            if name == "custom" {
                custom_default = style;
            } else if let Some(e) = Entity::from_name(name) {
                if e == Entity::Secret && style != Style::Redact {
                    errors.push(at, "secrets can only be redacted (a partial or token of a key is still a lead to it)");
                }
                m.on = m.on.with(e);
                m.styles[e.bit() as usize] = style;
            } else {
                errors.push(
                    at,
                    format!(
                        "unknown entity {name:?} (expected one of: {}, custom)",
                        entity_names()
                    ),
                );
            }
        };
        match entities {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let at = format!("{p}[{i}]");
                    if let Some(name) = read_string(&at, item, errors) {
                        enable(&name, Style::Redact, &at, errors);
                    }
                }
            }
            Value::Object(map) => {
                for (name, style) in map {
                    let at = format!("{p}.{name}");
                    match style.as_str().and_then(Style::from_name) {
                        Some(style) => enable(name, style, &at, errors),
                        None => errors.push(
                            &at,
                            format!(
                                "expected one of \"redact\", \"partial\", \"token\", found {}",
                                describe(style)
                            ),
                        ),
                    }
                }
            }
            other => {
                ok = false;
                errors.push(
                    &p,
                    format!(
                        "expected an object of entity: style, or a list of entity names, found {}",
                        describe(other)
                    ),
                );
            }
        }
    }
    if let Some(list) = obj.get("custom") {
        let p = obj.field_path("custom");
        match list {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if m.custom.len() >= 32 {
                        errors.push(&p, "at most 32 custom detectors");
                        break;
                    }
                    if let Some(c) = read_custom(&format!("{p}[{i}]"), item, custom_default, errors)
                    {
                        if Entity::from_name(&c.name).is_some()
                            || m.custom.iter().any(|o| o.name == c.name)
                            || c.name == "field"
                        {
                            errors.push(
                                &format!("{p}[{i}].name"),
                                format!("{:?} is already the name of an entity", c.name),
                            );
                        }
                        m.custom.push(c);
                    } else {
                        ok = false;
                    }
                }
            }
            other => {
                ok = false;
                errors.push(
                    &p,
                    format!("expected a list of detectors, found {}", describe(other)),
                );
            }
        }
    }
    if let Some(fields) = obj.string_list("fields", errors) {
        for (i, f) in fields.iter().enumerate() {
            match parse_pointer(f) {
                Ok(segments) => m.fields.push(segments),
                Err(e) => errors.push(&format!("{}[{i}]", obj.field_path("fields")), e),
            }
        }
    }
    if let Some(env) = obj.env_var("token_key_env", errors) {
        m.token_key_env = Some(env);
    }
    if let Some(b) = obj.boolean("mask_request", errors) {
        m.mask_request = b;
    }
    if let Some(v) = obj.get("encoded_responses") {
        match v.as_str() {
            Some("refuse") => m.encoded_responses = EncodedResponses::Refuse,
            Some("pass") => m.encoded_responses = EncodedResponses::Pass,
            _ => errors.push(
                &obj.field_path("encoded_responses"),
                format!("expected \"refuse\" or \"pass\", found {}", describe(v)),
            ),
        }
    }
    if let Some(v) = obj.get("logprobs") {
        match v.as_str() {
            // Each token is masked as part of its choice's text (the default).
            Some("mask") => {}
            Some("strip") => m.strip.extend(LOGPROBS.iter().map(|path| {
                path.iter()
                    .map(|seg| match seg {
                        Some(name) => PointerSegment::Name((*name).into()),
                        None => PointerSegment::Any,
                    })
                    .collect()
            })),
            _ => errors.push(
                &obj.field_path("logprobs"),
                format!("expected \"mask\" or \"strip\", found {}", describe(v)),
            ),
        }
    }
    if let Some(v) = obj.get("content_types") {
        let at = obj.field_path("content_types");
        match v.as_object() {
            Some(map) => {
                for (ty, action) in map {
                    let action = match action.as_str() {
                        Some("refuse") => super::content_type::Unreadable::Refuse,
                        Some("pass") => super::content_type::Unreadable::Pass,
                        Some("text") => super::content_type::Unreadable::Text,
                        _ => {
                            errors.push(
                                &format!("{at}.{ty}"),
                                format!(
                                    "expected \"refuse\", \"pass\" or \"text\", found {}",
                                    describe(action)
                                ),
                            );
                            continue;
                        }
                    };
                    let ty = ty.trim().to_ascii_lowercase();
                    if !ty.contains('/') || ty.contains(';') {
                        errors.push(
                            &format!("{at}.{ty}"),
                            "expected a type like \"application/pdf\" or \"image/*\"",
                        );
                        continue;
                    }
                    m.content_types.push((ty, action));
                }
            }
            None => errors.push(
                &at,
                format!("expected an object of content types, found {}", describe(v)),
            ),
        }
    }
    if m.uses_tokens() && m.token_key_env.is_none() {
        errors.push(path, "the token style needs \"token_key_env\", the environment variable that holds the key (an unkeyed hash of an SSN can be reversed by trying them all)");
    }
    obj.finish(errors);
    ok.then_some(m)
}

fn entity_names() -> String {
    Entity::BUILTIN.map(Entity::name).join(", ")
}

fn read_custom(
    path: &str,
    value: &Value,
    default_style: Style,
    errors: &mut Errors,
) -> Option<CustomDetector> {
    let mut obj = ObjectReader::new(path, value, errors)?;
    let name = obj.required_string("name", errors);
    if let Some(n) = &name {
        if !n
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            || n.len() > 40
        {
            errors.push(
                &obj.field_path("name"),
                format!("must be lowercase letters, digits and '_' (at most 40), found {n:?}"),
            );
        }
    }
    let max_length = obj
        .integer("max_length", 1, LIMIT_MAX_LENGTH as u64, errors)
        .map_or(DEFAULT_MAX_LENGTH, |n| n as usize);
    let pattern = obj.required_string("pattern", errors);
    let regex = pattern
        .as_ref()
        .and_then(|p| match regex_lite::Regex::new(&format!("^(?:{p})")) {
            Ok(r) => {
                if r.is_match("") {
                    errors.push(
                        &format!("{path}.pattern"),
                        "matches the empty string, so it would match everywhere",
                    );
                    None
                } else {
                    Some(r)
                }
            }
            Err(e) => {
                let msg = e
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or("invalid")
                    .trim()
                    .to_string();
                errors.push(
                    &format!("{path}.pattern"),
                    format!("not a valid regular expression: {msg}"),
                );
                None
            }
        });
    let context = obj
        .string_list("context", errors)
        .unwrap_or_default()
        .into_iter()
        .map(|w| w.to_ascii_lowercase())
        .collect();
    let validator = match obj.string("validator", errors) {
        Some(v) => match Validator::from_name(&v) {
            Some(v) => Some(v),
            None => {
                errors.push(
                    &obj.field_path("validator"),
                    format!(
                        "unknown validator {v:?} (expected one of: {})",
                        Validator::NAMES.join(", ")
                    ),
                );
                None
            }
        },
        None => None,
    };
    let style = match obj.string("style", errors) {
        Some(s) => match Style::from_name(&s) {
            Some(s) => s,
            None => {
                errors.push(
                    &obj.field_path("style"),
                    format!("expected one of \"redact\", \"partial\", \"token\", found {s:?}"),
                );
                default_style
            }
        },
        None => default_style,
    };
    obj.finish(errors);
    let name = name?;
    Some(CustomDetector {
        label: name.to_ascii_uppercase(),
        name,
        regex: regex?,
        context,
        validator,
        max_length,
        style,
    })
}

/// A JSON pointer (RFC 6901) whose segments may be `*`.
pub fn parse_pointer(text: &str) -> Result<Vec<PointerSegment>, String> {
    if text.is_empty() {
        return Err(
            "the whole document cannot be a field rule; name a field, e.g. \"/predictions/*/ssn\""
                .into(),
        );
    }
    let Some(rest) = text.strip_prefix('/') else {
        return Err(format!("a JSON pointer starts with '/', found {text:?}"));
    };
    rest.split('/')
        .map(|s| {
            if s == "*" {
                Ok(PointerSegment::Any)
            } else if s.contains('~')
                && !s
                    .replace("~0", "")
                    .replace("~1", "")
                    .chars()
                    .all(|c| c != '~')
            {
                Err(format!(
                    "'~' must be written ~0 or ~1 in a JSON pointer, found {s:?}"
                ))
            } else {
                Ok(PointerSegment::Name(
                    s.replace("~1", "/").replace("~0", "~"),
                ))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(json: &str) -> Vec<String> {
        let v: Value = serde_json::from_str(json).unwrap();
        let mut e = Errors::default();
        let _ = read_masking("$.masking", &v, &mut e);
        e.into_vec().iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn every_problem_is_named_with_its_path() {
        assert_eq!(
            errors(r#"{"entities": {"ssn": "redact", "email": "hash", "secret": "partial"},
                       "custom": [{"name": "Emp", "pattern": "(", "validator": "crc"}],
                       "fields": ["predictions/ssn"], "encoded_responses": "gzip"}"#),
            vec![
                "$.masking.entities.email: expected one of \"redact\", \"partial\", \"token\", found string \"hash\"",
                "$.masking.entities.secret: secrets can only be redacted (a partial or token of a key is still a lead to it)",
                "$.masking.entities.ssn: unknown entity \"ssn\" (expected one of: secret, iban, credit_card, aba_routing, us_itin, us_ssn, phone, ip_address, email, custom)",
                "$.masking.custom[0].name: must be lowercase letters, digits and '_' (at most 40), found \"Emp\"",
                "$.masking.custom[0].pattern: not a valid regular expression: found open group without closing ')'",
                "$.masking.custom[0].validator: unknown validator \"crc\" (expected one of: luhn, credit_card, iban, aba_routing, us_ssn, us_itin)",
                "$.masking.fields[0]: a JSON pointer starts with '/', found \"predictions/ssn\"",
                "$.masking.encoded_responses: expected \"refuse\" or \"pass\", found string \"gzip\"",
            ]
        );
    }

    #[test]
    fn token_style_without_a_key_variable_is_refused() {
        assert_eq!(
            errors(r#"{"entities": {"us_ssn": "token"}}"#),
            vec!["$.masking: the token style needs \"token_key_env\", the environment variable that holds the key (an unkeyed hash of an SSN can be reversed by trying them all)"]
        );
    }

    #[test]
    fn a_list_of_names_redacts_those_only() {
        let v: Value = serde_json::from_str(r#"{"entities": ["us_ssn", "email"]}"#).unwrap();
        let m = read_masking("$", &v, &mut Errors::default()).unwrap();
        assert!(m.on.has(Entity::UsSsn) && m.on.has(Entity::Email));
        assert!(!m.on.has(Entity::CreditCard));
    }

    #[test]
    fn pointers_take_wildcards_and_escapes() {
        assert_eq!(
            parse_pointer("/a~1b/*/c~0").unwrap(),
            vec![
                PointerSegment::Name("a/b".into()),
                PointerSegment::Any,
                PointerSegment::Name("c~".into())
            ]
        );
    }
}
