//! A request Vigil answers itself: status, headers, and the JSON error body
//! `{"error": {"code", "message", "request_id"}}` that says what was wrong without echoing
//! the caller's token or any credential.

use vigil_core::identity::AuthError;

pub struct Refusal {
    pub status: u32,
    pub code: String,
    pub message: String,
    pub headers: Vec<(String, String)>,
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
        }
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
        Self {
            status: 401,
            code: err.code.to_string(),
            message: err.message,
            headers: vec![
                ("www-authenticate".into(), challenge),
                ("content-type".into(), "application/json".into()),
            ],
        }
    }

    /// The reason as the session record states it.
    pub fn reason(&self) -> String {
        format!("{}: {}", self.code, self.message)
    }

    pub fn body(&self, request_id: &str) -> String {
        serde_json::json!({"error": {"code": self.code, "message": self.message, "request_id": request_id}}).to_string()
    }
}
