//! JSON Web Key Sets: parsing with the rules of RFC 7517/7518 and Envoy's jwt_verify_lib.
//!
//! A key that is malformed or of a kind Vigil cannot verify with is skipped (with the reason
//! kept for logs), never used; a set with no usable key at all is refused. EC keys on P-384
//! and P-521 are well-formed signing keys that are kept but never verify (Vigil verifies
//! ES256 only), so a set holding them is usable while tokens signed with them fail.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_compact::alg::{Ed25519, Es256, Rsa};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::Algorithm;
use rsa::traits::PublicKeyParts;
use serde_json::Value;

/// Key material Vigil can verify with, or a well-formed key it cannot.
#[derive(Clone)]
pub enum KeyMaterial {
    Rsa(<Rsa as Algorithm>::VerifyingKey),
    P256(<Es256 as Algorithm>::VerifyingKey),
    Ed25519(<Ed25519 as Algorithm>::VerifyingKey),
    /// A symmetric key; only usable where a provider explicitly allows HMAC algorithms.
    Hmac(Vec<u8>),
    /// Well-formed but not verifiable here (ES384/ES512 curves).
    Unsupported(&'static str),
}

/// One key of a set with the metadata that limits its use.
#[derive(Clone)]
pub struct Jwk {
    pub kid: Option<String>,
    pub alg: Option<String>,
    pub use_: Option<String>,
    pub key_ops: Option<Vec<String>>,
    pub material: KeyMaterial,
}

impl Jwk {
    /// Whether this key may verify a token signed with `alg`: its type fits, and its own
    /// `alg`, `use` and `key_ops` (when present) allow it.
    pub fn allows(&self, alg: &str) -> bool {
        let type_fits = match &self.material {
            KeyMaterial::Rsa(_) => matches!(
                alg,
                "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512"
            ),
            KeyMaterial::P256(_) => alg == "ES256",
            KeyMaterial::Ed25519(_) => alg == "EdDSA",
            KeyMaterial::Hmac(_) => matches!(alg, "HS256" | "HS384" | "HS512"),
            KeyMaterial::Unsupported(_) => false,
        };
        type_fits
            && self.alg.as_deref().is_none_or(|a| a == alg)
            && self.use_.as_deref().is_none_or(|u| u == "sig")
            && self
                .key_ops
                .as_ref()
                .is_none_or(|ops| ops.iter().any(|o| o == "verify"))
    }
}

impl std::fmt::Debug for Jwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.material {
            KeyMaterial::Rsa(_) => "RSA",
            KeyMaterial::P256(_) => "EC P-256",
            KeyMaterial::Ed25519(_) => "Ed25519",
            KeyMaterial::Hmac(_) => "oct",
            KeyMaterial::Unsupported(alg) => alg,
        };
        write!(f, "Jwk({kind}, kid {:?}, alg {:?})", self.kid, self.alg)
    }
}

/// A parsed key set: the usable keys, and why any others were skipped.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    pub keys: Vec<Jwk>,
    pub skipped: Vec<String>,
}

/// Largest JWKS document accepted (a remote IdP answer or an inline set).
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

impl KeySet {
    /// Parses JWKS text.
    pub fn parse_text(text: &[u8]) -> Result<Self, String> {
        if text.len() > MAX_JWKS_BYTES {
            return Err(format!(
                "key set is {} bytes, over the {MAX_JWKS_BYTES}-byte limit",
                text.len()
            ));
        }
        let value: Value =
            serde_json::from_slice(text).map_err(|e| format!("key set is not JSON: {e}"))?;
        Self::parse(&value)
    }

    /// Parses a JWKS value: an object with a non-empty `keys` array.
    pub fn parse(value: &Value) -> Result<Self, String> {
        let keys = value
            .get("keys")
            .ok_or("key set has no \"keys\" array")?
            .as_array()
            .ok_or("key set \"keys\" is not an array")?;
        let mut set = KeySet::default();
        for (i, key) in keys.iter().enumerate() {
            match parse_key(key) {
                Ok(Some(jwk)) => set.keys.push(jwk),
                Ok(None) => set
                    .skipped
                    .push(format!("keys[{i}]: not a signature key (ignored)")),
                Err(e) => set.skipped.push(format!("keys[{i}]: {e}")),
            }
        }
        if set.keys.is_empty() {
            let why = if set.skipped.is_empty() {
                "it is empty".to_string()
            } else {
                set.skipped.join("; ")
            };
            return Err(format!("key set has no usable key: {why}"));
        }
        Ok(set)
    }
}

fn optional_string(key: &Value, name: &str) -> Result<Option<String>, String> {
    match key.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("\"{name}\" is not a string")),
    }
}

fn coordinate(key: &Value, name: &str) -> Result<Vec<u8>, String> {
    let text = key
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing or non-string \"{name}\""))?;
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| format!("\"{name}\" is not base64url"))
}

/// One key; `Ok(None)` for a well-formed key that is not for signatures (X25519 and the like).
fn parse_key(key: &Value) -> Result<Option<Jwk>, String> {
    if !key.is_object() {
        return Err("not an object".into());
    }
    let kty = optional_string(key, "kty")?.ok_or("missing \"kty\"")?;
    let kid = optional_string(key, "kid")?;
    let alg = optional_string(key, "alg")?;
    let use_ = optional_string(key, "use")?;
    let key_ops = match key.get("key_ops") {
        None => None,
        Some(Value::Array(ops)) => Some(
            ops.iter()
                .map(|o| {
                    o.as_str()
                        .map(str::to_string)
                        .ok_or("\"key_ops\" holds a non-string")
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => return Err("\"key_ops\" is not an array".into()),
    };
    let material = match kty.as_str() {
        "RSA" => {
            if alg.as_deref().is_some_and(|a| {
                !matches!(a, "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512")
            }) {
                return Err(format!("RSA key with alg {:?}", alg.unwrap_or_default()));
            }
            coordinate(key, "n")?;
            coordinate(key, "e")?;
            let jwk: JsonWebKey<'_> =
                serde_json::from_value(key.clone()).map_err(|e| format!("bad RSA key: {e}"))?;
            let public = <Rsa as Algorithm>::VerifyingKey::try_from(&jwk)
                .map_err(|e| format!("bad RSA key: {e}"))?;
            if public.n().bits() < 2048 {
                return Err(format!(
                    "RSA modulus of {} bits is under 2048",
                    public.n().bits()
                ));
            }
            KeyMaterial::Rsa(public)
        }
        "EC" => {
            let crv = optional_string(key, "crv")?;
            // jwt_verify_lib: a missing crv follows alg; both missing means P-256.
            let crv = match (crv.as_deref(), alg.as_deref()) {
                (Some(c), _) => c.to_string(),
                (None, Some("ES384")) => "P-384".into(),
                (None, Some("ES512")) => "P-521".into(),
                (None, _) => "P-256".into(),
            };
            let expected_alg = match crv.as_str() {
                "P-256" => "ES256",
                "P-384" => "ES384",
                "P-521" => "ES512",
                other => return Err(format!("EC curve {other:?} is not supported")),
            };
            if alg.as_deref().is_some_and(|a| a != expected_alg) {
                return Err(format!(
                    "EC key on {crv} with alg {:?}",
                    alg.unwrap_or_default()
                ));
            }
            let (x, y) = (coordinate(key, "x")?, coordinate(key, "y")?);
            let size = match crv.as_str() {
                "P-256" => 32,
                "P-384" => 48,
                _ => 66,
            };
            // Some IdPs drop a leading zero byte from P-521 (and P-384) coordinates;
            // jwt_verify_lib accepts them, and so does Vigil for these never-used curves.
            let short_ok = if crv == "P-256" { size } else { size - 1 };
            if !(short_ok..=size).contains(&x.len()) || !(short_ok..=size).contains(&y.len()) {
                return Err(format!("EC coordinates on {crv} must be {size} bytes"));
            }
            if crv == "P-256" {
                let mut fixed = key.clone();
                if let Some(map) = fixed.as_object_mut() {
                    map.insert("crv".into(), Value::String("P-256".into()));
                }
                let jwk: JsonWebKey<'_> =
                    serde_json::from_value(fixed).map_err(|e| format!("bad EC key: {e}"))?;
                KeyMaterial::P256(
                    <Es256 as Algorithm>::VerifyingKey::try_from(&jwk)
                        .map_err(|e| format!("bad EC key: {e}"))?,
                )
            } else {
                KeyMaterial::Unsupported(expected_alg)
            }
        }
        "OKP" => {
            let crv = optional_string(key, "crv")?.ok_or("OKP key without \"crv\"")?;
            match crv.as_str() {
                "Ed25519" => {}
                "X25519" | "X448" => return Ok(None),
                other => return Err(format!("OKP curve {other:?} is not supported")),
            }
            if alg.as_deref().is_some_and(|a| a != "EdDSA") {
                return Err(format!(
                    "Ed25519 key with alg {:?}",
                    alg.unwrap_or_default()
                ));
            }
            if coordinate(key, "x")?.len() != 32 {
                return Err("Ed25519 \"x\" must be 32 bytes".into());
            }
            let jwk: JsonWebKey<'_> =
                serde_json::from_value(key.clone()).map_err(|e| format!("bad Ed25519 key: {e}"))?;
            KeyMaterial::Ed25519(
                <Ed25519 as Algorithm>::VerifyingKey::try_from(&jwk)
                    .map_err(|e| format!("bad Ed25519 key: {e}"))?,
            )
        }
        "oct" => {
            if alg
                .as_deref()
                .is_some_and(|a| !matches!(a, "HS256" | "HS384" | "HS512"))
            {
                return Err(format!(
                    "symmetric key with alg {:?}",
                    alg.unwrap_or_default()
                ));
            }
            let k = coordinate(key, "k")?;
            if k.is_empty() {
                return Err("empty symmetric key".into());
            }
            KeyMaterial::Hmac(k)
        }
        other => return Err(format!("unknown kty {other:?}")),
    };
    Ok(Some(Jwk {
        kid,
        alg,
        use_,
        key_ops,
        material,
    }))
}
