//! A JSON reader that keeps the path it is at and collects every error it meets.
//!
//! Security teams edit configuration by hand, so one typo must not hide the next: unlike a
//! serde derive, which stops at the first problem, this reader records each error with the
//! JSON path and the offending value (`$.record.max_body_bytes: expected an integer from 0 to
//! 16777216, found string "64k"`) and carries on.

use serde_json::{Map, Value};
use std::fmt;

/// One problem in a JSON document: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError {
    /// JSONPath-style location, `$` for the root, e.g. `$.rules[2].id`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Short, bounded rendering of a value for error messages, so a huge or secret-looking value
/// is never echoed in full.
pub fn describe(value: &Value) -> String {
    const MAX: usize = 40;
    let (kind, text) = match value {
        Value::Null => return "null".into(),
        Value::Bool(b) => return format!("boolean {b}"),
        Value::Number(n) => ("number", n.to_string()),
        Value::String(s) => ("string", format!("{s:?}")),
        Value::Array(a) => return format!("an array of {} items", a.len()),
        Value::Object(_) => return "an object".into(),
    };
    if text.chars().count() > MAX {
        let cut: String = text.chars().take(MAX).collect();
        format!("{kind} {cut}...")
    } else {
        format!("{kind} {text}")
    }
}

/// Collects errors while a document is read.
#[derive(Debug, Default)]
pub struct Errors {
    list: Vec<PathError>,
}

impl Errors {
    pub fn push(&mut self, path: &str, message: impl Into<String>) {
        self.list.push(PathError {
            path: path.to_string(),
            message: message.into(),
        });
    }
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
    pub fn into_vec(self) -> Vec<PathError> {
        self.list
    }
}

/// Reads the fields of one JSON object; `finish` reports the fields nobody asked for.
pub struct ObjectReader<'v> {
    path: String,
    map: &'v Map<String, Value>,
    known: Vec<&'static str>,
}

impl<'v> ObjectReader<'v> {
    /// Starts reading `value` at `path`; records an error and returns `None` if it is not an object.
    pub fn new(path: &str, value: &'v Value, errors: &mut Errors) -> Option<Self> {
        match value {
            Value::Object(map) => Some(Self {
                path: path.to_string(),
                map,
                known: Vec::new(),
            }),
            other => {
                errors.push(
                    path,
                    format!("expected an object, found {}", describe(other)),
                );
                None
            }
        }
    }

    /// The path of a field of this object.
    pub fn field_path(&self, name: &str) -> String {
        format!("{}.{}", self.path, name)
    }

    /// The raw value of a field, marking it as known.
    pub fn get(&mut self, name: &'static str) -> Option<&'v Value> {
        self.known.push(name);
        self.map.get(name)
    }

    /// A required field; records `missing required field` when absent.
    pub fn required(&mut self, name: &'static str, errors: &mut Errors) -> Option<&'v Value> {
        let value = self.get(name);
        if value.is_none() {
            errors.push(&self.path, format!("missing required field \"{name}\""));
        }
        value
    }

    /// An optional string field.
    pub fn string(&mut self, name: &'static str, errors: &mut Errors) -> Option<String> {
        let value = self.get(name)?;
        read_string(&self.field_path(name), value, errors)
    }

    /// A required string field that must not be empty.
    pub fn required_string(&mut self, name: &'static str, errors: &mut Errors) -> Option<String> {
        let value = self.required(name, errors)?;
        let path = self.field_path(name);
        let s = read_string(&path, value, errors)?;
        if s.trim().is_empty() {
            errors.push(&path, "must not be empty");
            return None;
        }
        Some(s)
    }

    /// An optional field naming an environment variable (letters, digits and `_`).
    pub fn env_var(&mut self, name: &'static str, errors: &mut Errors) -> Option<String> {
        let value = self.string(name, errors)?;
        self.check_env_var(name, value, errors)
    }

    /// A required field naming an environment variable.
    pub fn required_env_var(&mut self, name: &'static str, errors: &mut Errors) -> Option<String> {
        let value = self.required_string(name, errors)?;
        self.check_env_var(name, value, errors)
    }

    fn check_env_var(&self, name: &str, value: String, errors: &mut Errors) -> Option<String> {
        if !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Some(value);
        }
        errors.push(
            &self.field_path(name),
            format!("must be an environment variable name, found {value:?}"),
        );
        None
    }

    /// An optional unsigned integer field within `min..=max`.
    pub fn integer(
        &mut self,
        name: &'static str,
        min: u64,
        max: u64,
        errors: &mut Errors,
    ) -> Option<u64> {
        let value = self.get(name)?;
        read_integer(&self.field_path(name), value, min, max, errors)
    }

    /// An optional boolean field.
    pub fn boolean(&mut self, name: &'static str, errors: &mut Errors) -> Option<bool> {
        match self.get(name)? {
            Value::Bool(b) => Some(*b),
            other => {
                errors.push(
                    &self.field_path(name),
                    format!("expected true or false, found {}", describe(other)),
                );
                None
            }
        }
    }

    /// An optional list of strings.
    pub fn string_list(&mut self, name: &'static str, errors: &mut Errors) -> Option<Vec<String>> {
        let value = self.get(name)?;
        let path = self.field_path(name);
        let Value::Array(items) = value else {
            errors.push(
                &path,
                format!("expected a list of strings, found {}", describe(value)),
            );
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            out.push(read_string(&format!("{path}[{i}]"), item, errors)?);
        }
        Some(out)
    }

    /// Reports every field that no reader asked for, naming the fields that are allowed.
    pub fn finish(self, errors: &mut Errors) {
        let mut unknown: Vec<&String> = self
            .map
            .keys()
            .filter(|k| !self.known.contains(&k.as_str()))
            .collect();
        unknown.sort();
        for key in unknown {
            let mut allowed = self.known.clone();
            allowed.sort_unstable();
            allowed.dedup();
            errors.push(
                &format!("{}.{}", self.path, key),
                format!(
                    "unknown field \"{}\" (expected one of: {})",
                    key,
                    allowed.join(", ")
                ),
            );
        }
    }
}

/// Reads a string value.
pub fn read_string(path: &str, value: &Value, errors: &mut Errors) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        other => {
            errors.push(
                path,
                format!("expected a string, found {}", describe(other)),
            );
            None
        }
    }
}

/// Reads an unsigned integer within `min..=max`.
pub fn read_integer(
    path: &str,
    value: &Value,
    min: u64,
    max: u64,
    errors: &mut Errors,
) -> Option<u64> {
    match value.as_u64() {
        Some(n) if (min..=max).contains(&n) => Some(n),
        _ => {
            errors.push(
                path,
                format!(
                    "expected an integer from {min} to {max}, found {}",
                    describe(value)
                ),
            );
            None
        }
    }
}

/// Parses JSON text, turning a syntax error into a `PathError` at `$` with line and column.
pub fn parse(text: &[u8]) -> Result<Value, PathError> {
    serde_json::from_slice(text).map_err(|e| PathError {
        path: "$".into(),
        message: format!(
            "invalid JSON at line {} column {}: {}",
            e.line(),
            e.column(),
            syntax_reason(&e)
        ),
    })
}

/// serde_json's message without its trailing " at line X column Y", which we print ourselves.
fn syntax_reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_unknown_field_is_reported_with_the_allowed_names() {
        let value = json!({"a": 1, "zz": 2, "yy": 3});
        let mut errors = Errors::default();
        let mut reader = ObjectReader::new("$", &value, &mut errors)
            .into_iter()
            .next()
            .unwrap();
        reader.integer("a", 0, 10, &mut errors);
        reader.finish(&mut errors);
        let text: Vec<String> = errors.into_vec().iter().map(|e| e.to_string()).collect();
        assert_eq!(
            text,
            vec![
                "$.yy: unknown field \"yy\" (expected one of: a)",
                "$.zz: unknown field \"zz\" (expected one of: a)"
            ]
        );
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let long = "x".repeat(100);
        assert!(describe(&json!(long)).ends_with("..."));
        assert!(describe(&json!(long)).len() < 60);
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let err = parse(b"{\n  \"a\": ,\n}").unwrap_err();
        assert_eq!(err.path, "$");
        assert_eq!(
            err.message,
            "invalid JSON at line 2 column 8: expected value"
        );
    }
}
