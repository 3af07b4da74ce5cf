//! What the tests of every crate share, in one place: the workspace's test data (the
//! conformance vectors, the invalid-policy cases, the twin table) and a seeded generator.
//! Test material: nothing in the filter calls it, so it is not in `vigil.wasm`.

use serde_json::Value;
use std::path::PathBuf;

/// The workspace root, where testdata/ lives.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// A file under the workspace root, as text; the error names the path.
pub fn read(path: &str) -> Result<String, String> {
    let p = workspace_root().join(path);
    std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))
}

fn json(path: &str) -> Result<Value, String> {
    serde_json::from_str(&read(path)?).map_err(|e| format!("{path}: {e}"))
}

/// One per-file JWT vector of testdata/conformance/jwt (copied unchanged from its source,
/// see testdata/conformance/README.md).
pub fn conformance_vector(name: &str) -> Result<Value, String> {
    json(&format!("testdata/conformance/jwt/{name}.json"))
}

/// The rows of a JSON-lines conformance file (`jwt/wycheproof_jws.jsonl`, `pii/pii_vectors.jsonl`).
pub fn conformance_lines(file: &str) -> Result<Vec<Value>, String> {
    read(&format!("testdata/conformance/{file}"))?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("{file}:{}: {e}", i + 1)))
        .collect()
}

/// One case of testdata/policies/invalid.json.
pub struct InvalidPolicy {
    pub name: String,
    /// The policy as the filter and `vigil policy check` read it.
    pub text: String,
    /// The policy as JSON (None: the text is not JSON at all).
    pub policy: Option<Value>,
    /// The errors, exactly as Vigil reports them.
    pub errors: Vec<String>,
}

/// The invalid-policy cases every reader of policies is tested against.
pub fn invalid_policies() -> Result<Vec<InvalidPolicy>, String> {
    let doc = json("testdata/policies/invalid.json")?;
    let cases = doc["cases"].as_array().ok_or("invalid.json: no cases")?;
    cases
        .iter()
        .map(|c| {
            let name = c["name"]
                .as_str()
                .ok_or("a case without a name")?
                .to_string();
            let policy = c.get("policy").cloned();
            let text = c["policy_text"]
                .as_str()
                .map(str::to_string)
                .or_else(|| policy.as_ref().map(Value::to_string))
                .ok_or_else(|| format!("{name}: no policy"))?;
            let errors = c["errors"]
                .as_array()
                .ok_or_else(|| format!("{name}: no errors"))?
                .iter()
                .filter_map(|e| e.as_str().map(str::to_string))
                .collect();
            Ok(InvalidPolicy {
                name,
                text,
                policy,
                errors,
            })
        })
        .collect()
}

/// A small deterministic generator (xorshift64*), so a failure names a case that replays.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// A JWT signed with HS256 under `key` (an `oct` key the test's policy lists with `kid`), for
/// tests that need callers with their own subjects and groups. Test keys only.
pub fn mint_hs256(key: &[u8], kid: &str, claims: &Value) -> String {
    let header = serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": kid}).to_string();
    mint_hs256_raw(key, &header, &claims.to_string())
}

/// The same from the header's and the claims' JSON text as given (repeated members, odd
/// numbers: what a `Value` cannot hold).
pub fn mint_hs256_raw(key: &[u8], header: &str, claims: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    let header = URL_SAFE_NO_PAD.encode(header);
    let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims));
    let signature = match Hmac::<sha2::Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(input.as_bytes());
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    };
    format!("{input}.{signature}")
}
