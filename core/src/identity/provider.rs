//! Identity providers as the policy configures them (`identity.providers[]`; the field names
//! are a contract outside test suites write), validated with the JSON path of every problem.

use super::cache::DEFAULT_CAPACITY;
use super::jwks::KeySet;
use crate::json_reader::{describe, Errors, ObjectReader};
use serde_json::Value;

/// Algorithms a provider accepts when its policy names none.
pub const DEFAULT_ALGORITHMS: &[&str] = &["RS256", "ES256", "EdDSA"];
const KNOWN_ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "EdDSA", "HS256", "HS384",
    "HS512",
];
pub const DEFAULT_MAX_TOKEN_BYTES: u64 = 8 * 1024;

/// Where a provider's keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    Inline(KeySet),
    Remote(RemoteJwks),
}

/// A key set fetched from the IdP through an Envoy cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteJwks {
    pub cluster: String,
    pub uri: String,
    pub cache_duration_s: u64,
    pub timeout_ms: u64,
}

/// Where the token is read from: a header and the prefix before the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromHeader {
    pub name: String,
    pub prefix: String,
}

#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    /// When set, the token's `iss` must equal it; providers are chosen by issuer.
    pub issuer: Option<String>,
    /// When non-empty, the token's `aud` must name one of them.
    pub audiences: Vec<String>,
    pub algorithms: Vec<String>,
    pub keys: KeySource,
    pub clock_skew_s: u64,
    pub require_exp: bool,
    pub groups_claim: String,
    pub from_header: FromHeader,
    pub max_token_bytes: usize,
}

impl Provider {
    /// The key set, when it is inline.
    pub fn inline_keys(&self) -> Option<&KeySet> {
        match &self.keys {
            KeySource::Inline(k) => Some(k),
            KeySource::Remote(_) => None,
        }
    }
}

/// The `identity` section: providers, and how many verified tokens each VM caches
/// (0 turns the cache off).
#[derive(Debug, Clone)]
pub struct IdentitySettings {
    pub providers: Vec<Provider>,
    pub token_cache_entries: usize,
}

/// Reads `identity` (`{"providers": [...], "token_cache_entries": N}`).
pub fn read_identity(path: &str, value: &Value, errors: &mut Errors) -> Option<IdentitySettings> {
    let mut obj = ObjectReader::new(path, value, errors)?;
    let providers_path = obj.field_path("providers");
    let list = obj.required("providers", errors);
    let token_cache_entries = obj
        .integer("token_cache_entries", 0, 100_000, errors)
        .unwrap_or(DEFAULT_CAPACITY as u64) as usize;
    obj.finish(errors);
    let Some(Value::Array(items)) = list else {
        if let Some(other) = list {
            errors.push(
                &providers_path,
                format!("expected a list of providers, found {}", describe(other)),
            );
        }
        return None;
    };
    if items.is_empty() {
        errors.push(&providers_path, "must name at least one provider");
        return None;
    }
    let mut providers = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{providers_path}[{i}]");
        if let Some(p) = read_provider(&at, item, errors) {
            if providers.iter().any(|q: &Provider| q.name == p.name) {
                errors.push(
                    &format!("{at}.name"),
                    format!("duplicate provider name {:?}", p.name),
                );
            }
            providers.push(p);
        }
    }
    Some(IdentitySettings {
        providers,
        token_cache_entries,
    })
}

fn read_provider(path: &str, value: &Value, errors: &mut Errors) -> Option<Provider> {
    let mut obj = ObjectReader::new(path, value, errors)?;
    let name = obj.required_string("name", errors);
    let issuer = obj.string("issuer", errors);
    let audiences = obj.string_list("audiences", errors).unwrap_or_default();
    let algorithms = match obj.string_list("algorithms", errors) {
        Some(list) => {
            for (i, alg) in list.iter().enumerate() {
                if !KNOWN_ALGORITHMS.contains(&alg.as_str()) {
                    let why = if alg.eq_ignore_ascii_case("none") {
                        "unsigned tokens are never accepted".to_string()
                    } else {
                        format!("expected one of {}", KNOWN_ALGORITHMS.join(", "))
                    };
                    errors.push(
                        &format!("{path}.algorithms[{i}]"),
                        format!("unsupported algorithm {alg:?}: {why}"),
                    );
                }
            }
            if list.is_empty() {
                errors.push(
                    &obj.field_path("algorithms"),
                    "must allow at least one algorithm",
                );
            }
            list
        }
        None => DEFAULT_ALGORITHMS.iter().map(|a| a.to_string()).collect(),
    };
    let jwks = obj.get("jwks");
    let remote = obj.get("remote_jwks");
    let keys = match (jwks, remote) {
        (Some(_), Some(_)) => {
            errors.push(path, "has both \"jwks\" and \"remote_jwks\"; give one");
            None
        }
        (None, None) => {
            errors.push(
                path,
                "needs \"jwks\" (an inline key set) or \"remote_jwks\"",
            );
            None
        }
        (Some(set), None) => match KeySet::parse(set) {
            Ok(keys) => Some(KeySource::Inline(keys)),
            Err(e) => {
                errors.push(&obj.field_path("jwks"), e);
                None
            }
        },
        (None, Some(remote)) => {
            read_remote(&obj.field_path("remote_jwks"), remote, errors).map(KeySource::Remote)
        }
    };
    let clock_skew_s = obj.integer("clock_skew_s", 0, 3600, errors).unwrap_or(60);
    let require_exp = obj.boolean("require_exp", errors).unwrap_or(true);
    let groups_claim = obj
        .string("groups_claim", errors)
        .unwrap_or_else(|| "groups".into());
    let from_header = match obj.get("from_header") {
        Some(v) => read_from_header(&obj.field_path("from_header"), v, errors),
        None => Some(FromHeader {
            name: "authorization".into(),
            prefix: "Bearer ".into(),
        }),
    };
    let max_token_bytes = obj
        .integer("max_token_bytes", 256, 1024 * 1024, errors)
        .unwrap_or(DEFAULT_MAX_TOKEN_BYTES) as usize;
    obj.finish(errors);
    Some(Provider {
        name: name?,
        issuer,
        audiences,
        algorithms,
        keys: keys?,
        clock_skew_s,
        require_exp,
        groups_claim,
        from_header: from_header?,
        max_token_bytes,
    })
}

fn read_remote(path: &str, value: &Value, errors: &mut Errors) -> Option<RemoteJwks> {
    let mut obj = ObjectReader::new(path, value, errors)?;
    let cluster = obj.required_string("cluster", errors);
    let uri = obj.required_string("uri", errors);
    if let Some(uri) = &uri {
        if !(uri.starts_with("https://") || uri.starts_with("http://")) {
            errors.push(
                &obj.field_path("uri"),
                format!("expected an http(s) URL, found {uri:?}"),
            );
        }
    }
    let cache_duration_s = obj
        .integer("cache_duration_s", 1, 7 * 24 * 3600, errors)
        .unwrap_or(600);
    let timeout_ms = obj.integer("timeout_ms", 1, 60_000, errors).unwrap_or(1000);
    obj.finish(errors);
    Some(RemoteJwks {
        cluster: cluster?,
        uri: uri?,
        cache_duration_s,
        timeout_ms,
    })
}

fn read_from_header(path: &str, value: &Value, errors: &mut Errors) -> Option<FromHeader> {
    let mut obj = ObjectReader::new(path, value, errors)?;
    let name = obj
        .required_string("name", errors)
        .map(|n| n.to_ascii_lowercase());
    let prefix = obj.string("prefix", errors).unwrap_or_default();
    obj.finish(errors);
    Some(FromHeader {
        name: name?,
        prefix,
    })
}
