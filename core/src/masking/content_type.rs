//! Which response bodies the maskers can read, and what the policy does with the others
//! (`masking.content_types`). Text, JSON, JSON Lines and SSE in UTF-8 (or ASCII, Latin-1)
//! are read. Binary types (images, audio, video, fonts, octet streams, archives, PDF),
//! types nobody listed, other charsets (UTF-16 and UTF-32 would hide every digit from a
//! byte-wise masker) and gRPC (protobuf frames: rewriting bytes inside them without fixing
//! their lengths corrupts the stream) cannot be: by default such an answer is refused (502,
//! `unmaskable_response`, recorded), never passed unread. The policy may name a type to
//! `pass` (logged and counted; the record keeps no copy of the body) or to mask as `text`
//! (never gRPC).

use super::wide::WideCharset;
use super::BodyKind;

/// What a response's content type lets the maskers do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readable {
    /// Read and masked as this kind.
    Kind(BodyKind),
    /// Not readable; the reason names the type (or charset).
    Not(String),
    /// gRPC: never rewritten as text.
    Grpc(String),
    /// UTF-16 or UTF-32 (`charset=`): decoded, read as this kind, encoded back.
    Wide(BodyKind, WideCharset),
}

/// What the policy does with a content type the maskers cannot read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreadable {
    /// 502 `unmaskable_response` (the default).
    Refuse,
    /// Passed unmasked, logged and counted; the record keeps no copy.
    Pass,
    /// Masked as plain text (not for gRPC, which is refused instead).
    Text,
}

/// Charsets whose bytes are ASCII for every character a detector reads.
const READABLE_CHARSETS: [&str; 6] = ["utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin1"];

/// Types read as text beyond `text/*` and the JSON family.
const TEXT_TYPES: [&str; 7] = [
    "application/xml",
    "application/javascript",
    "application/x-www-form-urlencoded",
    "application/yaml",
    "application/x-yaml",
    "application/graphql",
    "application/sql",
];

/// The essence (`type/subtype`, lower case) and charset of a content type.
pub fn essence(content_type: &str) -> (String, Option<String>) {
    let mut parts = content_type.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let charset = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches('"').to_ascii_lowercase())
    });
    (essence, charset)
}

/// How a response with this content type can be read.
pub fn readable(content_type: Option<&str>) -> Readable {
    let Some(ct) = content_type else {
        // No type: read as text, so an unlabelled body is still masked.
        return Readable::Kind(BodyKind::Text);
    };
    let (essence, charset) = essence(ct);
    if essence == "application/grpc"
        || essence.starts_with("application/grpc+")
        || essence.starts_with("application/grpc-web")
    {
        return Readable::Grpc(essence);
    }
    let wide = match charset.filter(|c| !READABLE_CHARSETS.contains(&c.as_str())) {
        Some(cs) => match WideCharset::named(&cs) {
            Some(wide) => Some(wide),
            None => return Readable::Not(format!("{essence}; charset={cs}")),
        },
        None => None,
    };
    let readable = match BodyKind::of(Some(ct)) {
        BodyKind::Binary => Readable::Not(essence),
        BodyKind::Text
            if !(essence.is_empty()
                || essence.starts_with("text/")
                || essence.ends_with("+xml")
                || TEXT_TYPES.contains(&essence.as_str())) =>
        {
            Readable::Not(essence)
        }
        kind => Readable::Kind(kind),
    };
    match (readable, wide) {
        (Readable::Kind(kind), Some(wide)) => Readable::Wide(kind, wide),
        (readable, _) => readable,
    }
}

/// The policy's rule for `essence`: an exact type, or `type/*`.
pub fn rule_for(rules: &[(String, Unreadable)], essence: &str) -> Unreadable {
    let family = essence.split('/').next().map(|t| format!("{t}/*"));
    rules
        .iter()
        .find(|(p, _)| p == essence)
        .or_else(|| rules.iter().find(|(p, _)| Some(p) == family.as_ref()))
        .map_or(Unreadable::Refuse, |(_, a)| *a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_maskers_can_read() {
        let kind = |ct| readable(Some(ct));
        assert_eq!(
            kind("text/plain; charset=UTF-8"),
            Readable::Kind(BodyKind::Text)
        );
        assert_eq!(kind("application/json"), Readable::Kind(BodyKind::Json));
        assert_eq!(
            kind("application/problem+json"),
            Readable::Kind(BodyKind::Json)
        );
        assert_eq!(
            kind("text/event-stream"),
            Readable::Kind(BodyKind::EventStream)
        );
        assert_eq!(
            kind("application/x-ndjson"),
            Readable::Kind(BodyKind::JsonLines)
        );
        assert_eq!(kind("application/xml"), Readable::Kind(BodyKind::Text));
        assert_eq!(readable(None), Readable::Kind(BodyKind::Text));
        for binary in [
            "application/octet-stream",
            "image/png",
            "audio/wav",
            "video/mp4",
            "application/pdf",
            "application/zip",
            "font/woff2",
        ] {
            assert!(matches!(kind(binary), Readable::Not(_)), "{binary}");
        }
        assert!(matches!(
            kind("application/vnd.bank.blob"),
            Readable::Not(_)
        ));
        assert!(matches!(
            kind("text/plain; charset=utf-16"),
            Readable::Wide(BodyKind::Text, WideCharset::ByMark { utf32: false })
        ));
        assert!(matches!(
            kind("application/json; charset=\"UTF-32BE\""),
            Readable::Wide(BodyKind::Json, _)
        ));
        assert!(matches!(
            kind("text/plain; charset=shift_jis"),
            Readable::Not(_)
        ));
        assert!(matches!(
            kind("image/png; charset=utf-16"),
            Readable::Not(_)
        ));
        assert!(matches!(kind("application/grpc"), Readable::Grpc(_)));
        assert!(matches!(kind("application/grpc+proto"), Readable::Grpc(_)));
    }

    #[test]
    fn a_rule_names_a_type_or_a_family() {
        let rules = vec![
            ("image/*".to_string(), Unreadable::Pass),
            ("application/vnd.bank.blob".to_string(), Unreadable::Text),
        ];
        assert_eq!(rule_for(&rules, "image/png"), Unreadable::Pass);
        assert_eq!(
            rule_for(&rules, "application/vnd.bank.blob"),
            Unreadable::Text
        );
        assert_eq!(rule_for(&rules, "application/pdf"), Unreadable::Refuse);
    }
}
