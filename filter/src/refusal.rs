//! A request Vigil answers itself: status, headers, and the JSON error body
//! `{"error": {"code", "message", "request_id"[, "rule_id"]}}` that says what was wrong
//! without echoing the caller's token or any credential.

use vigil_core::identity::AuthError;

pub struct Refusal {
    pub status: u32,
    pub code: String,
    pub message: String,
    pub headers: Vec<(String, String)>,
    /// The policy rule that refused, named in the error body and the record.
    pub rule_id: Option<String>,
    /// More fields of the error object (an approval's ticket id and where to follow it).
    /// Boxed: most refusals have none, and a refusal travels in `Result`s.
    pub details: Option<Box<serde_json::Map<String, serde_json::Value>>>,
}

/// Quotes a value for an RFC 7235 auth-param (quoted-string: escape `\\` and `"`).
fn quoted(value: &str) -> String {
    let escaped: String = value
        .chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| {
            if c == '"' || c == '\\' {
                vec!['\\', c]
            } else {
                vec![c]
            }
        })
        .collect();
    format!("\"{escaped}\"")
}

impl Refusal {
    /// A refusal with a JSON error body and no challenge (400, 403, 413).
    pub fn new(status: u32, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            headers: vec![("content-type".into(), "application/json".into())],
            rule_id: None,
            details: None,
        }
    }

    pub fn with_detail(mut self, key: &str, value: serde_json::Value) -> Self {
        self.details
            .get_or_insert_with(Default::default)
            .insert(key.into(), value);
        self
    }

    pub fn for_rule(mut self, rule_id: Option<String>) -> Self {
        self.rule_id = rule_id;
        self
    }

    /// 401 for a missing or invalid token. RFC 6750 3.1: a request with no token gets a
    /// challenge without an error code; an invalid one gets `error="invalid_token"`.
    pub fn unauthenticated(err: AuthError) -> Self {
        let challenge = if err.code == "token_missing" {
            "Bearer realm=\"vigil\"".to_string()
        } else {
            format!(
                "Bearer realm=\"vigil\", error=\"invalid_token\", error_description={}",
                quoted(&err.message)
            )
        };
        let mut refusal = Self::new(401, err.code, err.message);
        refusal
            .headers
            .insert(0, ("www-authenticate".into(), challenge));
        refusal
    }

    /// The reason as the session record states it.
    pub fn reason(&self) -> String {
        format!("{}: {}", self.code, self.message)
    }

    pub fn body(&self, request_id: &str) -> String {
        let mut error = serde_json::json!({"code": self.code, "message": self.message, "request_id": request_id});
        if let Some(rule) = &self.rule_id {
            error["rule_id"] = serde_json::json!(rule);
        }
        for (k, v) in self.details.iter().flat_map(|d| d.iter()) {
            error[k] = v.clone();
        }
        serde_json::json!({ "error": error }).to_string()
    }
}
