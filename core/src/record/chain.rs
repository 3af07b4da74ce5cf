//! Sealing records into a per-VM chain: each record gets the next sequence number, the hash of
//! the record before it, its own hash and an HMAC under the record key.
//!
//! Both digests cover the same bytes: the canonical JSON ([`crate::canonical`]) of the record
//! without `hash` and `hmac`. The hash links the chain (anyone can recompute it); the HMAC
//! proves a key holder wrote the record (a forger who edits a record and recomputes every hash
//! after it still cannot produce the HMACs).

use super::SessionRecord;
use crate::canonical;
use crate::digest::{hex, sha256_hex};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Shortest record key accepted: 32 bytes, the HMAC-SHA-256 block's worth of entropy once
/// written as hex (`openssl rand -hex 32` gives 64 characters).
pub const MIN_KEY_BYTES: usize = 32;

/// The HMAC key records are signed with, and its public fingerprint.
#[derive(Clone)]
pub struct RecordKey {
    key: Vec<u8>,
    id: String,
}

impl std::fmt::Debug for RecordKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key itself.
        write!(f, "RecordKey({})", self.id)
    }
}

impl RecordKey {
    /// A key from its bytes (the environment variable's value, as is).
    pub fn new(key: &[u8]) -> Result<Self, String> {
        if key.len() < MIN_KEY_BYTES {
            return Err(format!(
                "is {} bytes long; a record key needs at least {MIN_KEY_BYTES} (e.g. `openssl rand -hex 32`)",
                key.len()
            ));
        }
        // The fingerprint is a domain-separated digest: it names the key without being a
        // digest anyone could use in place of it.
        let mut h = Sha256::new();
        h.update(b"vigil record key id\0");
        h.update(key);
        let id = hex(&h.finalize()[..8]);
        Ok(Self {
            key: key.to_vec(),
            id,
        })
    }

    /// 16 hex characters naming the key in records (`key_id`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// HMAC-SHA-256 of `bytes` in lowercase hex.
    pub fn sign(&self, bytes: &[u8]) -> String {
        match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mut mac) => {
                mac.update(bytes);
                hex(&mac.finalize().into_bytes())
            }
            // HMAC takes keys of any length; this arm is unreachable.
            Err(_) => String::new(),
        }
    }

    /// Whether `hmac_hex` is the HMAC of `bytes`, compared in constant time.
    pub fn verifies(&self, bytes: &[u8], hmac_hex: &str) -> bool {
        let Some(expected) = unhex(hmac_hex) else {
            return false;
        };
        match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mut mac) => {
                mac.update(bytes);
                mac.verify_slice(&expected).is_ok()
            }
            Err(_) => false,
        }
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The canonical bytes of a record given as a JSON object: everything but `hash` and `hmac`.
pub fn canonical_bytes(value: &serde_json::Value) -> Vec<u8> {
    canonical::to_vec_without(value, &["hash", "hmac"])
}

impl SessionRecord {
    /// The canonical bytes the record's hash and HMAC cover.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        canonical_bytes(&serde_json::to_value(self).unwrap_or(serde_json::Value::Null))
    }

    /// Recomputes the hash from the content.
    pub fn compute_hash(&self) -> String {
        sha256_hex(&self.canonical_bytes())
    }
}

/// The per-VM chain: sequence numbers and the previous record's hash.
#[derive(Debug, Clone)]
pub struct RecordChain {
    next_seq: u64,
    prev_hash: String,
}

impl Default for RecordChain {
    fn default() -> Self {
        Self {
            next_seq: 1,
            prev_hash: GENESIS_HASH.into(),
        }
    }
}

impl RecordChain {
    /// Places a record at the end of the chain: sets `seq`, `prev_hash`, `key_id`, `hash` and
    /// `hmac`.
    pub fn seal(&mut self, record: &mut SessionRecord, key: &RecordKey) {
        record.seq = self.next_seq;
        record.prev_hash = self.prev_hash.clone();
        record.key_id = key.id().to_string();
        let bytes = record.canonical_bytes();
        record.hash = sha256_hex(&bytes);
        record.hmac = key.sign(&bytes);
        self.next_seq += 1;
        self.prev_hash = record.hash.clone();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::record::tests::sample;

    pub(crate) fn test_key() -> RecordKey {
        RecordKey::new(b"test-record-key-0123456789abcdef0123456789").unwrap()
    }

    #[test]
    fn chain_links_each_record_to_the_previous_hash() {
        let mut chain = RecordChain::default();
        let (mut a, mut b) = (sample(), sample());
        chain.seal(&mut a, &test_key());
        chain.seal(&mut b, &test_key());
        assert_eq!((a.seq, b.seq), (1, 2));
        assert_eq!(a.prev_hash, GENESIS_HASH);
        assert_eq!(b.prev_hash, a.hash);
        assert_eq!(a.hash, a.compute_hash());
    }

    #[test]
    fn the_hmac_covers_the_same_bytes_as_the_hash_and_needs_the_key() {
        let mut a = sample();
        RecordChain::default().seal(&mut a, &test_key());
        let bytes = a.canonical_bytes();
        assert!(test_key().verifies(&bytes, &a.hmac));
        let other = RecordKey::new(b"another-record-key-0123456789abcdef012345").unwrap();
        assert!(!other.verifies(&bytes, &a.hmac));
        assert_ne!(other.id(), test_key().id());
        assert_eq!(a.key_id.len(), 16);
    }

    #[test]
    fn any_edit_changes_hash_and_hmac() {
        let mut a = sample();
        RecordChain::default().seal(&mut a, &test_key());
        let mut edited = a.clone();
        edited.response.status = Some(201);
        assert_ne!(edited.compute_hash(), a.hash);
        assert!(!test_key().verifies(&edited.canonical_bytes(), &a.hmac));
    }

    #[test]
    fn a_record_round_trips_through_json() {
        let mut a = sample();
        RecordChain::default().seal(&mut a, &test_key());
        let text = serde_json::to_string(&a).unwrap();
        let back: SessionRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, a);
        assert_eq!(back.compute_hash(), a.hash);
    }

    #[test]
    fn short_keys_are_refused_and_the_key_never_prints() {
        assert!(RecordKey::new(b"short")
            .unwrap_err()
            .contains("at least 32"));
        let debug = format!("{:?}", test_key());
        assert!(!debug.contains("test-record-key"), "{debug}");
    }

    #[test]
    fn malformed_hmac_text_does_not_verify() {
        for bad in ["", "zz", "abc", "é1"] {
            assert!(!test_key().verifies(b"x", bad));
        }
    }
}
