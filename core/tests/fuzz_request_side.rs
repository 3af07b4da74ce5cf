//! Bounded property runs (fuzzing) of what parses request-side input: tokens and key sets,
//! policies and their evaluation, paths, prompts. No input may panic (a panic traps the VM
//! for every request on its worker), and no token may be accepted that an independent HS256
//! verification, written here from the RFCs with the `hmac` and `base64` crates, rejects.
//!
//! `scripts/test` runs a few thousand cases per property; a long run:
//!   PROPTEST_CASES=200000 cargo test --release -p vigil-core --test fuzz_request_side
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use proptest::prelude::*;
use serde_json::{json, Value};
use vigil_core::identity::jwks::KeySet;
use vigil_core::identity::verifier::Verifier;
use vigil_core::testkit::mint_hs256;
use vigil_core::PluginConfig;

const NOW: i64 = 1_764_000_000;
const KEY: &[u8] = b"fuzz-test-key-not-a-secret-00000000";

/// The bounded count, or PROPTEST_CASES for a long run.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn policy() -> PluginConfig {
    let k = URL_SAFE_NO_PAD.encode(KEY);
    PluginConfig::parse(
        json!({"id": "p", "version": "1", "identity": {"providers": [{"name": "corp",
            "issuer": "https://corp.test", "algorithms": ["HS256"],
            "jwks": {"keys": [{"kty": "oct", "alg": "HS256", "kid": "k1", "k": k}]}}]}})
        .to_string()
        .as_bytes(),
    )
    .unwrap()
}

fn valid_token() -> String {
    mint_hs256(
        KEY,
        "k1",
        &json!({"iss": "https://corp.test", "sub": "ana", "groups": ["analysts"], "exp": NOW + 600}),
    )
}

/// RFC 7515/7519 HS256, independently: three base64url parts without padding, a JSON object
/// header with alg HS256, the HMAC over the first two parts, JSON object claims with the
/// issuer and an exp in the future. Returns the claims when all hold.
fn reference_accepts(token: &str) -> Option<Value> {
    let parts: Vec<&str> = token.split('.').collect();
    let [h, p, s] = parts.as_slice() else {
        return None;
    };
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
    if header.get("alg")? != "HS256" {
        return None;
    }
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(KEY).ok()?;
    mac.update(format!("{h}.{p}").as_bytes());
    mac.verify_slice(&URL_SAFE_NO_PAD.decode(s).ok()?).ok()?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()?;
    (claims.get("iss")? == "https://corp.test" && claims.get("exp")?.as_f64()? > NOW as f64)
        .then_some(claims)
}

fn vigil_accepts(config: &PluginConfig, token: &str) -> Option<vigil_core::identity::Identity> {
    let mut verifier = Verifier::new(&config.providers, 0);
    let header = format!("Bearer {token}");
    verifier
        .authenticate(
            &config.providers,
            |n| (n == "authorization").then(|| header.clone()),
            NOW,
        )
        .ok()
}

proptest! {
    // Failures are printed, not written into the repository; PROPTEST_CASES overrides the count.
    #![proptest_config(ProptestConfig { cases: cases(3000), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_mutated_token_is_accepted_only_if_the_reference_accepts_it_with_the_same_subject(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..4)
    ) {
        let config = policy();
        let mut bytes = valid_token().into_bytes();
        for (at, byte, kind) in edits {
            let at = at % (bytes.len() + 1);
            match kind {
                0 if at < bytes.len() => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ if at < bytes.len() => { bytes.remove(at); }
                _ => {}
            }
        }
        let token = String::from_utf8_lossy(&bytes).into_owned();
        if let Some(identity) = vigil_accepts(&config, &token) {
            // The header value around the token may carry HTTP's optional whitespace.
            let claims = reference_accepts(token.trim_matches([' ', '\t']));
            prop_assert!(claims.is_some(), "Vigil accepted {token:?}, the reference did not");
            let claims = claims.unwrap_or_default();
            prop_assert_eq!(identity.subject.as_deref(), claims["sub"].as_str());
        }
    }

    #[test]
    fn arbitrary_tokens_never_panic(token in "\\PC{0,300}") {
        let config = policy();
        let _ = vigil_accepts(&config, &token);
        let dotted = format!("{token}.{token}.{token}");
        let _ = vigil_accepts(&config, &dotted);
    }

    #[test]
    fn arbitrary_base64_json_tokens_never_panic(header in any::<Vec<u8>>(), claims in any::<Vec<u8>>()) {
        let config = policy();
        let token = format!("{}.{}.{}", URL_SAFE_NO_PAD.encode(&header), URL_SAFE_NO_PAD.encode(&claims), URL_SAFE_NO_PAD.encode(b"sig"));
        prop_assert!(vigil_accepts(&config, &token).is_none());
    }

    #[test]
    fn arbitrary_key_sets_never_panic(text in "\\PC{0,400}", bytes in any::<Vec<u8>>()) {
        let _ = KeySet::parse_text(text.as_bytes());
        let _ = KeySet::parse_text(&bytes);
        let wrapped = format!(r#"{{"keys":[{{"kty":"RSA","n":"{text}","e":"AQAB"}},{{"kty":"EC","crv":"P-256","x":"{text}","y":"{text}"}},{{"kty":"oct","k":"{text}"}}]}}"#);
        let _ = KeySet::parse_text(wrapped.as_bytes());
    }

    #[test]
    fn arbitrary_policies_never_panic(text in "\\PC{0,400}", bytes in any::<Vec<u8>>()) {
        let _ = PluginConfig::parse(text.as_bytes());
        let _ = PluginConfig::parse(&bytes);
    }

    #[test]
    fn arbitrary_paths_normalize_or_are_refused_without_panic(target in "[/%a-zA-Z0-9._~\\\\?&=\\PC]{0,80}") {
        if let Ok(p) = vigil_core::path::normalize(&target) {
            prop_assert!(p.path.starts_with('/'));
            prop_assert!(!p.path.contains("//"));
            prop_assert!(!p.path.split('/').any(|s| s == "." || s == ".."));
            prop_assert!(!p.for_record().contains('\0'));
        }
    }

    #[test]
    fn arbitrary_prompts_extract_and_normalize_without_panic(text in "\\PC{0,200}", key in "\\PC{0,10}") {
        let body = json!({key.clone(): text.clone(), "messages": [{"role": "user", "content": [{"type": "text", "text": text.clone()}]}]});
        let extracted = vigil_core::rules::prompt::extract(Some(&body), None);
        prop_assert!(extracted.contains(&text) || vigil_core::rules::prompt::normalized(&text).is_some() || text.is_empty());
        let _ = vigil_core::rules::prompt::normalized(&extracted);
        let _ = vigil_core::rules::prompt::token_ids(Some(&body));
    }
}

/// Policies and request bodies together: a policy with every kind of condition, evaluated
/// on arbitrary JSON bodies, never panics and decides the same way twice.
#[test]
fn evaluating_rules_on_arbitrary_bodies_never_panics() {
    use proptest::test_runner::{Config, TestRunner};
    let config = PluginConfig::parse(
        json!({"id": "p", "version": "1", "rules": [
            {"id": "a", "when": {"json": [{"pointer": "/inputs/*/data", "length_gt": 2}]}, "action": {"type": "block"}},
            {"id": "b", "when": {"json": [{"pointer": "/x/*/*", "gt": 1.5, "every": true}]}, "action": {"type": "block"}},
            {"id": "c", "when": {"prompt": {"matches": ["(?i)wire\\s+transfer", "\\d{3}-\\d{2}-\\d{4}"]}}, "action": {"type": "block"}},
            {"id": "d", "when": {"body_bytes": {"gt": 10}, "path": {"glob": "/v*/x"}}, "action": {"type": "allow"}}]})
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    let leaf = prop_oneof![
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,20}".prop_map(Value::from),
    ];
    let json_value = leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z*~/]{0,4}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    let mut runner = TestRunner::new(Config {
        cases: cases(2000),
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&json_value, |body| {
            let header = |_: &str| None;
            let facts = vigil_core::rules::RequestFacts {
                identity: None,
                providers: &[],
                method: "POST",
                path: "/v1/x",
                model: None,
                header: &header,
                body: Some(&body),
                body_bytes: body.to_string().len() as u64,
            };
            let first = config.rules.evaluate(&facts);
            prop_assert_eq!(first, config.rules.evaluate(&facts));
            let _ = config.rules.evaluate_at_headers(&facts, false);
            Ok(())
        })
        .unwrap();
}
