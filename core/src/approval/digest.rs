//! The request digest an approval is bound to. An approval for one prompt must not pass
//! another, nor the same prompt from another caller or to another model, so the digest covers
//! the caller (issuer and subject), the model, the method and path, and the body. A JSON body
//! is digested in canonical form, so re-sending the same request with other whitespace or key
//! order is the same request; any other body is digested as its bytes.

use crate::canonical;
use crate::digest::sha256_hex;
use serde_json::json;

/// What an approval is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound<'a> {
    pub issuer: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub model: Option<&'a str>,
    pub method: &'a str,
    pub path: &'a str,
    pub body: &'a [u8],
}

/// SHA-256 (hex) of the canonical JSON of the bound fields, the body as its own digest.
pub fn request_digest(b: &Bound<'_>) -> String {
    let body = match serde_json::from_slice::<serde_json::Value>(b.body) {
        Ok(value) => sha256_hex(&canonical::to_vec(&value)),
        Err(_) => sha256_hex(b.body),
    };
    let value = json!({
        "v": 1,
        "issuer": b.issuer,
        "subject": b.subject,
        "model": b.model,
        "method": b.method,
        "path": b.path,
        "body_sha256": body,
    });
    sha256_hex(&canonical::to_vec(&value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(body: &'static [u8]) -> Bound<'static> {
        Bound {
            issuer: Some("https://idp.bank.internal"),
            subject: Some("u-1001"),
            model: Some("llama-3.1-70b"),
            method: "POST",
            path: "/v1/chat/completions",
            body,
        }
    }

    #[test]
    fn the_same_json_request_written_differently_has_one_digest() {
        let a = request_digest(&bound(
            br#"{"model":"llama-3.1-70b","messages":[{"role":"user","content":"hi"}]}"#,
        ));
        let b = request_digest(&bound(
            b"{ \"messages\" : [ {\"content\": \"hi\", \"role\": \"user\"} ],\n \"model\": \"llama-3.1-70b\" }",
        ));
        assert_eq!(a, b);
    }

    #[test]
    fn another_prompt_caller_model_or_path_is_another_digest() {
        let base = bound(br#"{"messages":[{"role":"user","content":"hi"}]}"#);
        let d = request_digest(&base);
        let others = [
            Bound {
                body: br#"{"messages":[{"role":"user","content":"hi!"}]}"#,
                ..base.clone()
            },
            Bound {
                subject: Some("u-1002"),
                ..base.clone()
            },
            Bound {
                issuer: Some("https://other.idp"),
                ..base.clone()
            },
            Bound {
                model: Some("llama-3.1-8b"),
                ..base.clone()
            },
            Bound {
                path: "/v1/completions",
                ..base.clone()
            },
            Bound {
                method: "PUT",
                ..base.clone()
            },
        ];
        for other in others {
            assert_ne!(request_digest(&other), d, "{other:?}");
        }
    }

    #[test]
    fn a_body_that_is_not_json_is_bound_by_its_bytes() {
        assert_ne!(
            request_digest(&bound(b"not json ")),
            request_digest(&bound(b"not json"))
        );
    }
}
