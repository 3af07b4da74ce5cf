//! Verifying one compact JWS/JWT against a provider and its key set.
//!
//! Order matters: the header is read only to pick the algorithm and key; the signature is
//! checked before the claims are parsed and trusted. Key selection is strict: a token that
//! names a key (`kid`) verifies under that key only; one that names none may try every key
//! whose type, `alg`, `use` and `key_ops` allow its algorithm. `none` never verifies, and an
//! HMAC algorithm only ever verifies with a symmetric key its provider explicitly allows.

use super::jwks::{Jwk, KeyMaterial, KeySet};
use super::provider::Provider;
use super::{AuthCode, AuthError, Identity};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_compact::alg::{Ed25519, Es256, Hs256, Hs256Key, Hs384, Hs384Key, Hs512, Hs512Key, Rsa};
use jwt_compact::{Algorithm, AlgorithmSignature};
use serde_json::{Map, Value};

fn b64(part: &str, what: &str) -> Result<Vec<u8>, AuthError> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| {
        AuthError::new(
            AuthCode::TokenMalformed,
            format!("the token's {what} is not base64url"),
        )
    })
}

/// The parts of a compact token, header parsed, nothing verified.
pub struct UnverifiedToken<'a> {
    pub alg: String,
    pub kid: Option<String>,
    signed: &'a [u8],
    payload: Vec<u8>,
    signature: Vec<u8>,
}

impl<'a> UnverifiedToken<'a> {
    /// Splits and decodes a token; checks the header's form (alg, kid, crit).
    pub fn parse(token: &'a str, max_bytes: usize) -> Result<Self, AuthError> {
        if token.len() > max_bytes {
            return Err(AuthError::new(
                AuthCode::TokenTooLarge,
                format!(
                    "the token is {} bytes, over the {max_bytes}-byte limit",
                    token.len()
                ),
            ));
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::new(
                AuthCode::TokenMalformed,
                "the token is not three dot-separated parts",
            ));
        };
        let header_bytes = b64(h, "header")?;
        let header: Value = serde_json::from_slice(&header_bytes).map_err(|_| {
            AuthError::new(AuthCode::TokenMalformed, "the token's header is not JSON")
        })?;
        if let Some(name) = crate::unique_keys::first_repeated_member(&header_bytes) {
            return Err(AuthError::new(
                AuthCode::HeaderInvalid,
                format!("the token's header repeats the member {name}"),
            ));
        }
        let header = header.as_object().ok_or_else(|| {
            AuthError::new(
                AuthCode::HeaderInvalid,
                "the token's header is not a JSON object",
            )
        })?;
        let alg = match header.get("alg") {
            Some(Value::String(a)) => a.clone(),
            Some(_) => {
                return Err(AuthError::new(
                    AuthCode::HeaderInvalid,
                    "the token's alg is not a string",
                ))
            }
            None => {
                return Err(AuthError::new(
                    AuthCode::HeaderInvalid,
                    "the token's header has no alg",
                ))
            }
        };
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(k)) => Some(k.clone()),
            Some(_) => {
                return Err(AuthError::new(
                    AuthCode::HeaderInvalid,
                    "the token's kid is not a string",
                ))
            }
        };
        // RFC 7515 4.1.11: a recipient must reject a token whose crit names an extension it
        // does not understand; Vigil understands none.
        if let Some(crit) = header.get("crit") {
            return Err(AuthError::new(
                AuthCode::CritUnsupported,
                format!("the token requires header extensions Vigil does not support: {crit}"),
            ));
        }
        let signed_len = h.len() + 1 + p.len();
        Ok(Self {
            alg,
            kid,
            signed: &token.as_bytes()[..signed_len],
            payload: b64(p, "payload")?,
            signature: b64(s, "signature")?,
        })
    }

    /// The `iss` claim, read without verification, only to choose a provider.
    pub fn unverified_issuer(&self) -> Option<String> {
        let claims: Value = serde_json::from_slice(&self.payload).ok()?;
        claims.get("iss")?.as_str().map(str::to_string)
    }
}

fn check<A: Algorithm>(alg: &A, key: &A::VerifyingKey, signature: &[u8], data: &[u8]) -> bool {
    A::Signature::try_from_slice(signature)
        .map(|s| alg.verify_signature(&s, key, data))
        .unwrap_or(false)
}

/// The signature length of algorithms whose signatures have one. jwt-compact's HMAC
/// signatures panic on another length (`Hs256Signature::try_from_slice` copies into a fixed
/// array), and a panic traps the VM for every request on its worker, so the length is
/// checked first for every fixed-size algorithm (found by core/tests/fuzz_request_side.rs).
fn fixed_signature_len(alg: &str) -> Option<usize> {
    match alg {
        "HS256" | "ES256" | "EdDSA" => Some(if alg == "HS256" { 32 } else { 64 }),
        "HS384" => Some(48),
        "HS512" => Some(64),
        _ => None,
    }
}

/// Whether `signature` over `data` verifies under `key` with `alg`.
pub fn signature_verifies(key: &Jwk, alg: &str, data: &[u8], signature: &[u8]) -> bool {
    if !key.allows(alg) {
        return false;
    }
    if fixed_signature_len(alg).is_some_and(|n| n != signature.len()) {
        return false;
    }
    match (&key.material, alg) {
        (KeyMaterial::Rsa(k), "RS256") => check(&Rsa::rs256(), k, signature, data),
        (KeyMaterial::Rsa(k), "RS384") => check(&Rsa::rs384(), k, signature, data),
        (KeyMaterial::Rsa(k), "RS512") => check(&Rsa::rs512(), k, signature, data),
        (KeyMaterial::Rsa(k), "PS256") => check(&Rsa::ps256(), k, signature, data),
        (KeyMaterial::Rsa(k), "PS384") => check(&Rsa::ps384(), k, signature, data),
        (KeyMaterial::Rsa(k), "PS512") => check(&Rsa::ps512(), k, signature, data),
        (KeyMaterial::P256(k), "ES256") => check(&Es256, k, signature, data),
        (KeyMaterial::Ed25519(k), "EdDSA") => check(&Ed25519, k, signature, data),
        (KeyMaterial::Hmac(k), "HS256") => check(&Hs256, &Hs256Key::new(k), signature, data),
        (KeyMaterial::Hmac(k), "HS384") => check(&Hs384, &Hs384Key::new(k), signature, data),
        (KeyMaterial::Hmac(k), "HS512") => check(&Hs512, &Hs512Key::new(k), signature, data),
        _ => false,
    }
}

/// Checks the signature of a parsed token against an allow-list and a key set.
pub fn verify_signature(
    token: &UnverifiedToken<'_>,
    allowed: &[String],
    keys: &KeySet,
) -> Result<(), AuthError> {
    let alg = token.alg.as_str();
    if alg.eq_ignore_ascii_case("none") || !allowed.iter().any(|a| a == alg) {
        return Err(AuthError::new(
            AuthCode::AlgorithmNotAllowed,
            format!("algorithm {alg:?} is not allowed for this provider"),
        ));
    }
    let candidates: Vec<&Jwk> = match &token.kid {
        Some(kid) => {
            let named: Vec<&Jwk> = keys
                .keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid.as_str()))
                .collect();
            if named.is_empty() {
                return Err(AuthError::new(
                    AuthCode::UnknownKey,
                    format!("no key with kid {kid:?} in the provider's key set"),
                ));
            }
            if !named.iter().any(|k| k.allows(alg)) {
                return Err(AuthError::new(
                    AuthCode::KeyNotForAlgorithm,
                    format!("key {kid:?} may not verify {alg} signatures"),
                ));
            }
            named
        }
        None => keys.keys.iter().filter(|k| k.allows(alg)).collect(),
    };
    if candidates.is_empty() {
        return Err(AuthError::new(
            AuthCode::UnknownKey,
            format!("no key in the provider's key set verifies {alg}"),
        ));
    }
    if candidates
        .iter()
        .any(|k| signature_verifies(k, alg, token.signed, &token.signature))
    {
        Ok(())
    } else {
        Err(AuthError::new(
            AuthCode::BadSignature,
            "the token's signature does not verify",
        ))
    }
}

/// A NumericDate claim (RFC 7519 section 2: seconds, fractions allowed), rounded toward
/// refusal: `exp` down (it ends sooner), `nbf` and `iat` up (they start later).
fn numeric_date(
    claims: &Map<String, Value>,
    name: &str,
    round_up: bool,
) -> Result<Option<i64>, AuthError> {
    let Some(v) = claims.get(name) else {
        return Ok(None);
    };
    if let Some(i) = v.as_i64() {
        return Ok(Some(i));
    }
    match v.as_f64() {
        // Past i64 either way: saturate (an exp that far away is the integer's own limit).
        Some(f) if f.is_finite() => Ok(Some(if round_up { f.ceil() } else { f.floor() } as i64)),
        _ => Err(AuthError::new(
            AuthCode::ClaimsInvalid,
            format!("the {name} claim is not a number of seconds"),
        )),
    }
}

fn string_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<String>, AuthError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(AuthError::new(
            AuthCode::ClaimsInvalid,
            format!("the {name} claim is not a string"),
        )),
    }
}

/// Whether the token says its groups were left out for being too many: Entra ID's overage
/// indicator, `_claim_names` naming the groups claim (and `_claim_sources` where to fetch it).
fn groups_overage(claims: &Map<String, Value>, path: &str) -> bool {
    let first = path.split('.').next().unwrap_or_default();
    !claims.contains_key(first)
        && claims
            .get("_claim_names")
            .and_then(Value::as_object)
            .is_some_and(|names| names.contains_key(first))
}

/// Follows a dotted path (`realm_access.roles`) to a list of groups: an array of strings,
/// or one space-separated string.
fn groups(claims: &Map<String, Value>, path: &str) -> Vec<String> {
    let mut at = claims.get(path.split('.').next().unwrap_or_default());
    for part in path.split('.').skip(1) {
        at = at.and_then(|v| v.get(part));
    }
    match at {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// Verifies a token for a provider at `now` (seconds since the epoch) and returns who it is.
pub fn verify(
    token: &str,
    provider: &Provider,
    keys: &KeySet,
    now: i64,
) -> Result<Identity, AuthError> {
    let parsed = UnverifiedToken::parse(token, provider.max_token_bytes)?;
    verify_signature(&parsed, &provider.algorithms, keys)?;
    let claims: Value = serde_json::from_slice(&parsed.payload)
        .map_err(|_| AuthError::new(AuthCode::ClaimsInvalid, "the token's claims are not JSON"))?;
    if let Some(name) = crate::unique_keys::first_repeated_member(&parsed.payload) {
        return Err(AuthError::new(
            AuthCode::ClaimsInvalid,
            format!("the token's claims repeat the member {name}"),
        ));
    }
    let Value::Object(claims) = claims else {
        return Err(AuthError::new(
            AuthCode::ClaimsInvalid,
            "the token's claims are not a JSON object",
        ));
    };
    let skew = provider.clock_skew_s as i64;
    let exp = numeric_date(&claims, "exp", false)?;
    let nbf = numeric_date(&claims, "nbf", true)?;
    numeric_date(&claims, "iat", true)?;
    let issuer = string_claim(&claims, "iss")?;
    let subject = string_claim(&claims, "sub")?;
    match exp {
        Some(exp) if now > exp.saturating_add(skew) => {
            return Err(AuthError::new(
                AuthCode::TokenExpired,
                format!("the token expired at {exp}, now is {now}"),
            ))
        }
        None if provider.require_exp => {
            return Err(AuthError::new(
                AuthCode::ExpRequired,
                "the token has no exp claim and this provider requires one",
            ))
        }
        _ => {}
    }
    if let Some(nbf) = nbf {
        if now.saturating_add(skew) < nbf {
            return Err(AuthError::new(
                AuthCode::TokenNotYetValid,
                format!("the token is not valid before {nbf}, now is {now}"),
            ));
        }
    }
    if let Some(expected) = &provider.issuer {
        if issuer.as_deref() != Some(expected.as_str()) {
            return Err(AuthError::new(
                AuthCode::WrongIssuer,
                format!("the token's issuer is {issuer:?}, expected {expected:?}"),
            ));
        }
    }
    if !provider.audiences.is_empty() {
        let audiences: Vec<&str> = match claims.get("aud") {
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            Some(_) => {
                return Err(AuthError::new(
                    AuthCode::ClaimsInvalid,
                    "the aud claim is neither a string nor an array",
                ))
            }
            None => Vec::new(),
        };
        if !audiences
            .iter()
            .any(|a| provider.audiences.iter().any(|p| p == a))
        {
            return Err(AuthError::new(
                AuthCode::WrongAudience,
                format!(
                    "the token's audiences {audiences:?} include none of {:?}",
                    provider.audiences
                ),
            ));
        }
    }
    Ok(Identity {
        provider: provider.name.clone(),
        issuer,
        subject,
        email: claims
            .get("email")
            .and_then(Value::as_str)
            .map(str::to_string),
        groups: if groups_overage(&claims, &provider.groups_claim) {
            return Err(AuthError::new(
                AuthCode::GroupsOverage,
                format!(
                    "the token carries no {} claim: the caller is in too many groups for the IdP to list (Entra ID overage); ask the IdP to send only the groups assigned to this application",
                    provider.groups_claim
                ),
            ));
        } else {
            groups(&claims, &provider.groups_claim)
        },
        expires_at: exp,
    })
}
