//! A request Vigil answers itself: status, headers, and the JSON error body
//! `{"error": {"code", "message", "request_id"[, "rule_id"][, ticket fields]}}` that says what
//! was wrong without echoing the caller's token or any credential. Every code is a
//! [`RefusalCode`], so the filter, the CLI and the tests share one vocabulary.

pub use crate::approval::protocol::FaultCode;
use crate::identity::{AuthCode, AuthError};
use serde_json::{json, Map, Value};

/// Why a request was refused, as the stable code clients match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalCode {
    /// 401: no valid token (the identity failure's own code).
    Unauthenticated(AuthCode),
    /// 400: no model named where the policy reads one.
    ModelMissing,
    /// 400: a path servers could read in different ways (an encoded `/`, NUL, a bad escape).
    AmbiguousPath,
    /// 400: the body names another model than the header the policy reads.
    ModelMismatch,
    /// 400: the prompt is token ids, which prompt rules cannot read.
    PromptUnreadable,
    /// 403: the caller may not use the model.
    ModelDenied,
    /// A `block` rule (or the default) decided.
    BlockedByPolicy,
    /// 413: the body is over `max_request_body_bytes`, so it cannot be inspected.
    BodyTooLarge,
    /// 400: a rule inspects the body as JSON and it is not JSON.
    BodyNotJson,
    /// 502: a compressed answer the masking cannot read.
    EncodedResponse,
    /// 502: the response's type is one the maskers cannot read (binary, unknown, another
    /// charset, gRPC) and the policy does not name it to pass or mask as text.
    UnmaskableResponse,
    /// 502: the model server answered a request Vigil had not decided on (its headers went
    /// on early, without header hold); the answer is withheld.
    AnsweredBeforeDecision,
    /// 403: the approval is not given yet (ticket mode, or the wait ran out).
    ApprovalPending,
    ApprovalDenied,
    ApprovalExpired,
    /// 403: the approval was used as many times as the rule allows.
    ApprovalUsed,
    /// 503: the approval service gave no usable answer.
    ApprovalService(FaultCode),
    /// 503: the policy names no approval service (the parser refuses such policies).
    ApprovalUnavailable,
    /// 503: the plugin has no valid configuration.
    NotConfigured,
    /// 503: the body ended while the key set was loading and must be masked (retry).
    KeysLoading,
}

impl RefusalCode {
    pub fn code(self) -> &'static str {
        match self {
            RefusalCode::Unauthenticated(c) => c.code(),
            RefusalCode::ModelMissing => "model_missing",
            RefusalCode::AmbiguousPath => "ambiguous_path",
            RefusalCode::ModelMismatch => "model_mismatch",
            RefusalCode::PromptUnreadable => "prompt_unreadable",
            RefusalCode::ModelDenied => "model_denied",
            RefusalCode::BlockedByPolicy => "blocked_by_policy",
            RefusalCode::BodyTooLarge => "body_too_large",
            RefusalCode::BodyNotJson => "body_not_json",
            RefusalCode::EncodedResponse => "encoded_response",
            RefusalCode::UnmaskableResponse => "unmaskable_response",
            RefusalCode::AnsweredBeforeDecision => "answered_before_decision",
            RefusalCode::ApprovalPending => "approval_pending",
            RefusalCode::ApprovalDenied => "approval_denied",
            RefusalCode::ApprovalExpired => "approval_expired",
            RefusalCode::ApprovalUsed => "approval_used",
            RefusalCode::ApprovalService(f) => f.code(),
            RefusalCode::ApprovalUnavailable => "approval_unavailable",
            RefusalCode::NotConfigured => "not_configured",
            RefusalCode::KeysLoading => "keys_loading",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub status: u32,
    pub code: RefusalCode,
    pub message: String,
    pub headers: Vec<(String, String)>,
    /// The policy rule that refused, named in the error body and the record.
    pub rule_id: Option<String>,
    /// More fields of the error object (an approval's ticket id and where to follow it).
    /// Boxed: most refusals have none.
    pub details: Option<Box<Map<String, Value>>>,
}

impl Refusal {
    /// 413: the body is over the policy's `max_request_body_bytes`.
    pub fn body_too_large(config: &crate::config::PluginConfig) -> Self {
        let limit = config.max_request_body_bytes;
        Refusal::new(
            413,
            RefusalCode::BodyTooLarge,
            format!("the request body is over the {limit}-byte limit for inspection"),
        )
    }
}

/// Quotes a value for an RFC 7235 auth-param (quoted-string: escape `\\` and `"`).
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

impl Refusal {
    /// A refusal with a JSON error body and no challenge.
    pub fn new(status: u32, code: RefusalCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            headers: vec![("content-type".into(), "application/json".into())],
            rule_id: None,
            details: None,
        }
    }

    pub fn with_detail(mut self, key: &str, value: Value) -> Self {
        self.details
            .get_or_insert_with(Default::default)
            .insert(key.into(), value);
        self
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn for_rule(mut self, rule_id: Option<String>) -> Self {
        self.rule_id = rule_id;
        self
    }

    /// 401 for a missing or invalid token. RFC 6750 3.1: a request with no token gets a
    /// challenge without an error code; an invalid one gets `error="invalid_token"`.
    pub fn unauthenticated(err: AuthError) -> Self {
        let challenge = if err.code == AuthCode::TokenMissing {
            "Bearer realm=\"vigil\"".to_string()
        } else {
            format!(
                "Bearer realm=\"vigil\", error=\"invalid_token\", error_description={}",
                quoted(&err.message)
            )
        };
        let mut refusal = Self::new(401, RefusalCode::Unauthenticated(err.code), err.message);
        refusal
            .headers
            .insert(0, ("www-authenticate".into(), challenge));
        refusal
    }

    /// The reason as the session record states it.
    pub fn reason(&self) -> String {
        format!("{}: {}", self.code.code(), self.message)
    }

    /// The JSON error body.
    pub fn body(&self, request_id: &str) -> String {
        let mut error =
            json!({"code": self.code.code(), "message": self.message, "request_id": request_id});
        if let Some(rule) = &self.rule_id {
            error["rule_id"] = json!(rule);
        }
        for (k, v) in self.details.iter().flat_map(|d| d.iter()) {
            error[k] = v.clone();
        }
        json!({ "error": error }).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_token_gets_a_quoted_challenge_without_control_characters() {
        let r =
            Refusal::unauthenticated(AuthError::new(AuthCode::BadSignature, "say \"hi\"\\\n now"));
        assert_eq!(r.status, 401);
        assert_eq!(
            r.headers[0].1,
            r#"Bearer realm="vigil", error="invalid_token", error_description="say \"hi\"\\ now""#
        );
    }

    #[test]
    fn a_missing_token_gets_a_challenge_without_an_error_code() {
        let r = Refusal::unauthenticated(AuthError::new(AuthCode::TokenMissing, "none"));
        assert_eq!(r.headers[0].1, "Bearer realm=\"vigil\"");
        assert_eq!(r.code.code(), "token_missing");
    }

    #[test]
    fn the_body_names_code_rule_request_and_details() {
        let r = Refusal::new(403, RefusalCode::ApprovalPending, "wait")
            .for_rule(Some("r1".into()))
            .with_detail("ticket_id", json!("t-1"));
        let body: Value = serde_json::from_str(&r.body("rid")).unwrap();
        assert_eq!(
            body,
            json!({"error": {"code": "approval_pending", "message": "wait", "request_id": "rid", "rule_id": "r1", "ticket_id": "t-1"}})
        );
    }
}
