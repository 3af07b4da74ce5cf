//! Signed checkpoints: entries of a record chain, signed with Ed25519, that let an examiner
//! verify the chain with a public key alone. Records are authenticated with an HMAC, so
//! whoever checks them that way must hold the key that forges them; a checkpoint's signature
//! can be checked by anyone and made only by the filter.
//!
//! A checkpoint takes the next `seq` of its VM's chain like a record, so deleting one leaves a
//! gap. It names the entry it covers (the one before it: `covers.seq`, `covers.hash`), how many
//! session records came since the previous checkpoint, and that checkpoint's hash
//! (`prev_checkpoint`). `hash` is the SHA-256 of its canonical form without `hash`, `hmac` and
//! `signature`; `hmac` is the record key's HMAC of those 32 bytes (as records have), and
//! `signature` the Ed25519 signature of the same 32 bytes under the checkpoint key. Every entry
//! at or before a checkpoint whose signature holds is fixed: changing one changes a hash the
//! signature covers, through the chain's links.
//!
//! The filter writes one when its chain starts, after every `every_records` session records,
//! at least every `every_s` seconds from the root's tick (also when idle), and when the plugin
//! shuts down.

use super::{RecordKey, GENESIS_HASH, RECORD_VERSION};
use crate::canonical;
use crate::digest::hex;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ed25519_compact::{KeyPair, PublicKey as EdPublicKey, Seed, Signature};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// `kind` of a checkpoint entry (session records have none).
pub const KIND: &str = "checkpoint";

/// The label of a public key file (`vigil audit keygen checkpoint` writes `FILE.pub`).
pub const PUBLIC_KEY_LABEL: &str = "VIGIL-CHECKPOINT-PUBLIC-KEY-1";

/// Why the filter wrote a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The chain started (the plugin was configured).
    Start,
    /// `every_records` session records since the previous one.
    Records,
    /// `every_s` seconds since the previous one (the root's tick; also when idle).
    Time,
    /// The plugin is shutting down: the chain ends here.
    Shutdown,
}

/// The entry a checkpoint covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Covers {
    pub seq: u64,
    pub hash: String,
}

/// One checkpoint as it is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub v: u32,
    /// Always `checkpoint`.
    pub kind: String,
    pub vm_id: String,
    pub seq: u64,
    pub prev_hash: String,
    /// When it was made, RFC 3339 UTC with milliseconds.
    pub at: String,
    pub trigger: Trigger,
    /// The entry before it (`seq - 1`, whose hash is `prev_hash`); seq 0 and the genesis hash
    /// for a checkpoint that starts its chain.
    pub covers: Covers,
    /// Session records since the previous checkpoint.
    pub records: u64,
    /// The previous checkpoint's hash; the genesis hash for the first.
    pub prev_checkpoint: String,
    /// Fingerprint of the Ed25519 key that signed it ([`SigningKey::id`]).
    pub signing_key_id: String,
    /// Fingerprint of the record (HMAC) key, as in records.
    pub key_id: String,
    pub hash: String,
    pub hmac: String,
    /// Ed25519 signature of the 32 bytes of `hash`, base64.
    pub signature: String,
}

/// 16 hex characters naming an Ed25519 public key.
pub fn key_id(public: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"vigil checkpoint key id\0");
    h.update(public);
    hex(&h.finalize()[..8])
}

fn decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    STANDARD
        .decode(text)
        .ok()
        .or_else(|| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok())
}

/// The filter's signing key, from the VM environment: the 32-byte Ed25519 seed in base64 (or
/// the 64-byte seed and public key).
pub struct SigningKey {
    pair: KeyPair,
    id: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.id)
    }
}

impl SigningKey {
    pub fn new(text: &str) -> Result<Self, String> {
        let bytes = decode(text).ok_or("is not base64")?;
        let pair = match bytes.len() {
            32 => Seed::from_slice(&bytes)
                .ok()
                .and_then(|s| KeyPair::try_from_seed(s).ok()),
            64 => KeyPair::from_slice(&bytes)
                .ok()
                .filter(|p| p.validate().is_ok()),
            n => {
                return Err(format!(
                "is {n} bytes; an Ed25519 key is a 32-byte seed (vigil audit keygen checkpoint writes one)"
            ))
            }
        }
        .ok_or("is not a usable Ed25519 key")?;
        let id = key_id(pair.pk.as_ref());
        Ok(Self { pair, id })
    }

    /// A new key: its seed in base64 (for the VM environment) and its public half.
    pub fn from_seed(seed: [u8; 32]) -> Result<Self, String> {
        Self::new(&STANDARD.encode(seed))
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The seed, base64: what the VM environment variable holds.
    pub fn secret_text(&self) -> String {
        STANDARD.encode(self.pair.sk.seed().as_ref())
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            key: self.pair.pk,
            id: self.id.clone(),
        }
    }

    fn sign(&self, digest: &[u8]) -> String {
        STANDARD.encode(self.pair.sk.sign(digest, None).as_ref())
    }
}

/// A checkpoint key's public half: what an examiner verifies with.
#[derive(Clone)]
pub struct PublicKey {
    key: EdPublicKey,
    id: String,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.id)
    }
}

impl PublicKey {
    /// A public key file's text: a `VIGIL-CHECKPOINT-PUBLIC-KEY-1 <base64>` line (`#` lines are
    /// comments), or the base64 alone.
    pub fn parse(text: &str) -> Result<Self, String> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .ok_or("holds no key")?;
        let b64 = line.strip_prefix(PUBLIC_KEY_LABEL).unwrap_or(line);
        let bytes = decode(b64).ok_or("is not base64")?;
        let key = EdPublicKey::from_slice(&bytes)
            .map_err(|_| format!("is {} bytes; an Ed25519 public key is 32", bytes.len()))?;
        Ok(Self {
            id: key_id(key.as_ref()),
            key,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key file's text.
    pub fn file_text(&self) -> String {
        format!(
            "# Vigil checkpoint public key {}: vigil audit verify --public-key FILE\n{PUBLIC_KEY_LABEL} {}\n",
            self.id,
            STANDARD.encode(self.key.as_ref())
        )
    }

    /// Whether `signature` (base64) is this key's signature of `digest`.
    pub fn verifies(&self, digest: &[u8], signature: &str) -> bool {
        let Ok(bytes) = STANDARD.decode(signature) else {
            return false;
        };
        let Ok(sig) = Signature::from_slice(&bytes) else {
            return false;
        };
        self.key.verify(digest, &sig).is_ok()
    }
}

/// The canonical bytes a checkpoint's hash, HMAC and signature cover.
pub fn canonical_bytes(value: &serde_json::Value) -> Vec<u8> {
    canonical::to_vec_without(value, &["hash", "hmac", "signature"])
}

/// Whether a parsed entry is a checkpoint (rather than a session record).
pub fn is_checkpoint(value: &serde_json::Value) -> bool {
    value.get("kind").and_then(serde_json::Value::as_str) == Some(KIND)
}

/// What a chain remembers between checkpoints.
#[derive(Debug, Clone)]
pub struct Progress {
    pub last_hash: String,
    /// Session records since the last checkpoint.
    pub records: u64,
    /// When the last checkpoint was made; `None` before the first.
    pub last_at_nanos: Option<u64>,
}

impl Default for Progress {
    fn default() -> Self {
        Self {
            last_hash: GENESIS_HASH.into(),
            records: 0,
            last_at_nanos: None,
        }
    }
}

impl Checkpoint {
    /// A checkpoint at `seq` after the entry `prev_hash`, ready to be signed.
    pub fn new(
        vm_id: &str,
        seq: u64,
        prev_hash: &str,
        at: String,
        trigger: Trigger,
        progress: &Progress,
    ) -> Self {
        Self {
            v: RECORD_VERSION,
            kind: KIND.into(),
            vm_id: vm_id.into(),
            seq,
            prev_hash: prev_hash.into(),
            at,
            trigger,
            covers: Covers {
                seq: seq.saturating_sub(1),
                hash: prev_hash.into(),
            },
            records: progress.records,
            prev_checkpoint: progress.last_hash.clone(),
            signing_key_id: String::new(),
            key_id: String::new(),
            hash: String::new(),
            hmac: String::new(),
            signature: String::new(),
        }
    }

    /// Hashes, MACs and signs the checkpoint; returns its JSON as it is written.
    pub fn sign(&mut self, key: &RecordKey, signer: &SigningKey) -> Vec<u8> {
        self.signing_key_id = signer.id.clone();
        self.key_id = key.id().to_string();
        let value = serde_json::to_value(&*self).unwrap_or(serde_json::Value::Null);
        let digest = Sha256::digest(canonical_bytes(&value));
        self.hash = hex(&digest);
        self.hmac = key.sign(&digest);
        self.signature = signer.sign(&digest);
        serde_json::to_vec(&*self).unwrap_or_default()
    }
}

/// What is wrong with one checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointFault {
    Shape(String),
    /// The content is not what `hash` says.
    HashMismatch,
    /// Signed with a key the verifier was not given.
    UnknownSigningKey(String),
    /// The signature does not verify under the named key.
    BadSignature(String),
    /// The HMAC does not match (checked when a record key is given).
    HmacMismatch,
    /// Its `covers` is not the entry before it.
    CoversOther,
}

impl std::fmt::Display for CheckpointFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckpointFault::Shape(e) => write!(f, "not a v{RECORD_VERSION} checkpoint: {e}"),
            CheckpointFault::HashMismatch => write!(
                f,
                "checkpoint content does not match its hash: the checkpoint was changed"
            ),
            CheckpointFault::UnknownSigningKey(id) => write!(
                f,
                "checkpoint signed with key {id}, which was not given (--public-key): forged, or a key to add"
            ),
            CheckpointFault::BadSignature(id) => write!(
                f,
                "checkpoint signature does not verify under key {id}: the checkpoint was forged or changed"
            ),
            CheckpointFault::HmacMismatch => write!(
                f,
                "checkpoint HMAC does not match: the checkpoint was changed or forged"
            ),
            CheckpointFault::CoversOther => write!(
                f,
                "checkpoint names an entry other than the one before it (covers.seq must be seq - 1, covers.hash its prev_hash)"
            ),
        }
    }
}

/// How a checkpoint checked out.
#[derive(Debug, Clone)]
pub struct CheckedCheckpoint {
    pub checkpoint: Checkpoint,
    /// Its signature was verified with a public key given.
    pub signed: bool,
}

/// Checks one checkpoint: shape, hash, `covers`, then its signature when public keys are
/// given and its HMAC when record keys are.
pub fn check(
    value: &serde_json::Value,
    record_keys: &[RecordKey],
    public_keys: &[PublicKey],
) -> Result<CheckedCheckpoint, CheckpointFault> {
    let checkpoint =
        Checkpoint::deserialize(value).map_err(|e| CheckpointFault::Shape(e.to_string()))?;
    if checkpoint.v != RECORD_VERSION || checkpoint.kind != KIND {
        return Err(CheckpointFault::Shape(format!(
            "v {} kind {:?}",
            checkpoint.v, checkpoint.kind
        )));
    }
    let digest = Sha256::digest(canonical_bytes(value));
    if hex(&digest) != checkpoint.hash {
        return Err(CheckpointFault::HashMismatch);
    }
    if checkpoint.covers.seq + 1 != checkpoint.seq || checkpoint.covers.hash != checkpoint.prev_hash
    {
        return Err(CheckpointFault::CoversOther);
    }
    let mut signed = false;
    if !public_keys.is_empty() {
        let key = public_keys
            .iter()
            .find(|k| k.id == checkpoint.signing_key_id)
            .ok_or_else(|| CheckpointFault::UnknownSigningKey(checkpoint.signing_key_id.clone()))?;
        if !key.verifies(&digest, &checkpoint.signature) {
            return Err(CheckpointFault::BadSignature(key.id.clone()));
        }
        signed = true;
    }
    if let Some(key) = record_keys.iter().find(|k| k.id() == checkpoint.key_id) {
        if !key.verifies(&digest, &checkpoint.hmac) {
            return Err(CheckpointFault::HmacMismatch);
        }
    }
    Ok(CheckedCheckpoint { checkpoint, signed })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::chain::tests::test_key;

    fn signer() -> SigningKey {
        SigningKey::from_seed([9; 32]).unwrap()
    }

    fn signed() -> serde_json::Value {
        let mut c = Checkpoint::new(
            "vm#1",
            5,
            &"ab".repeat(32),
            "2026-11-30T10:00:00.000Z".into(),
            Trigger::Records,
            &Progress::default(),
        );
        let json = c.sign(&test_key(), &signer());
        serde_json::from_slice(&json).unwrap()
    }

    #[test]
    fn a_signed_checkpoint_verifies_with_the_public_key_alone() {
        let c = check(&signed(), &[], &[signer().public_key()]).unwrap();
        assert!(c.signed);
        assert_eq!(c.checkpoint.covers.seq, 4);
        // And with the record key too.
        assert!(check(&signed(), &[test_key()], &[signer().public_key()]).is_ok());
    }

    #[test]
    fn edits_forgeries_and_other_keys_are_named() {
        let mut v = signed();
        v["records"] = 7.into();
        assert_eq!(
            check(&v, &[], &[signer().public_key()]).unwrap_err(),
            CheckpointFault::HashMismatch
        );
        // Re-hashed after the edit: the signature no longer holds.
        let digest = Sha256::digest(canonical_bytes(&v));
        v["hash"] = hex(&digest).into();
        assert!(matches!(
            check(&v, &[], &[signer().public_key()]).unwrap_err(),
            CheckpointFault::BadSignature(_)
        ));
        // Signed by another key: named as not given.
        let other = SigningKey::from_seed([3; 32]).unwrap();
        let mut c: Checkpoint = serde_json::from_value(signed()).unwrap();
        let forged: serde_json::Value =
            serde_json::from_slice(&c.sign(&test_key(), &other)).unwrap();
        let fault = check(&forged, &[], &[signer().public_key()]).unwrap_err();
        assert_eq!(fault, CheckpointFault::UnknownSigningKey(other.id().into()));
        assert!(fault.to_string().contains("--public-key"));
    }

    #[test]
    fn keys_parse_from_their_files_and_bad_ones_are_refused() {
        let public = signer().public_key();
        let back = PublicKey::parse(&public.file_text()).unwrap();
        assert_eq!(back.id(), public.id());
        assert!(PublicKey::parse("").unwrap_err().contains("no key"));
        assert!(PublicKey::parse("AAAA").unwrap_err().contains("32"));
        assert!(SigningKey::new("!!").unwrap_err().contains("base64"));
        assert!(SigningKey::new(&STANDARD.encode([0u8; 32]))
            .unwrap_err()
            .contains("not a usable"));
        let again = SigningKey::new(&signer().secret_text()).unwrap();
        assert_eq!(again.id(), signer().id());
        assert!(!format!("{:?}", signer()).contains(&signer().secret_text()));
    }
}
