//! Values from the request that records and logs keep only when they look like what they
//! claim to be. A request id or a model name is chosen by the caller; one that is not a plain
//! identifier (too long, spaces, `@`, anything a person's data could hide in) is replaced by a
//! digest, so the record still tells equal values apart without holding the text.

use crate::digest::sha256_hex;

/// Longest identifier kept as it is.
pub const MAX_IDENTIFIER: usize = 128;

fn identifier_or_digest(value: &str, extra: &str) -> String {
    let plain = !value.is_empty()
        && value.len() <= MAX_IDENTIFIER
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c) || extra.contains(c));
    if plain {
        value.to_string()
    } else {
        format!("sha256:{}", &sha256_hex(value.as_bytes())[..16])
    }
}

/// A request id: Envoy's are UUIDs; a client's own is kept when it is a plain identifier.
pub fn request_id(value: &str) -> String {
    if value.is_empty() {
        return String::new();
    }
    identifier_or_digest(value, "")
}

/// A model name: kept when it is a plain identifier (`llama-3.1-8b`, `org/model:tag`).
pub fn model(value: &str) -> String {
    identifier_or_digest(value, "/+")
}

/// A request target for a log line: the path as sent (up to 256 characters), the query's
/// values redacted.
pub fn target(raw: &str) -> String {
    let (path, query) = match raw.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (raw, None),
    };
    let path: String = path.chars().filter(|c| !c.is_control()).take(256).collect();
    match query {
        Some(q) => format!("{path}?{}", crate::path::redact_query(q)),
        None => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_identifiers_stay_and_anything_else_becomes_a_digest() {
        assert_eq!(
            request_id("0b6d7c1e-7d1f-4a8e-9a37-3f2d1c0b9a8e"),
            "0b6d7c1e-7d1f-4a8e-9a37-3f2d1c0b9a8e"
        );
        assert_eq!(
            model("meta-llama/Llama-3.1-8B:latest"),
            "meta-llama/Llama-3.1-8B:latest"
        );
        for leak in [
            "ssn 078-05-1120",
            "ana@bank.example",
            &"x".repeat(129),
            "a\nb",
        ] {
            let r = request_id(leak);
            assert!(r.starts_with("sha256:") && r.len() == 23, "{r}");
            assert!(model(leak).starts_with("sha256:"));
        }
        assert_eq!(request_id(""), "");
        assert_eq!(target("/v1/x?user=ana@bank.example"), "/v1/x?user=…");
    }
}
