//! Sealing records into a per-VM chain: each record gets the next sequence number, the hash of
//! the record before it, its own hash and an HMAC under the record key.
//!
//! `hash` is the SHA-256 of the canonical JSON ([`crate::canonical`]) of the record without
//! `hash` and `hmac`; `hmac` is HMAC-SHA-256 under the record key of those 32 hash bytes
//! (hash-then-MAC, as signatures do: one pass over the record, not two). The hash links the
//! chain (anyone can recompute it); the HMAC proves a key holder wrote the record (a forger
//! who edits a record and recomputes every hash after it still cannot produce the HMACs).

use super::checkpoint::{Checkpoint, Progress, SigningKey, Trigger};
use super::SessionRecord;
use crate::canonical;
use crate::config::CheckpointSettings;
use crate::digest::hex;
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
        hex(&Sha256::digest(self.canonical_bytes()))
    }
}

/// The two digests of canonical record bytes: (`hash`, `hmac`) in hex.
pub fn digests(canonical: &[u8], key: &RecordKey) -> (String, String) {
    let hash = Sha256::digest(canonical);
    (hex(&hash), key.sign(&hash))
}

/// Whether `hash_hex` and `hmac_hex` are the digests of `canonical` under `key`.
pub fn digests_hold(
    canonical: &[u8],
    key: &RecordKey,
    hash_hex: &str,
    hmac_hex: &str,
) -> Result<(), Fault> {
    let hash = Sha256::digest(canonical);
    if hex(&hash) != hash_hex {
        return Err(Fault::Hash);
    }
    if !key.verifies(&hash, hmac_hex) {
        return Err(Fault::Hmac);
    }
    Ok(())
}

/// Which digest failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Hash,
    Hmac,
}

/// The per-VM chain: sequence numbers and the previous entry's hash, and where the chain
/// stands since its last signed checkpoint.
#[derive(Debug, Clone)]
pub struct RecordChain {
    next_seq: u64,
    prev_hash: String,
    checkpoints: Progress,
}

impl Default for RecordChain {
    fn default() -> Self {
        Self {
            next_seq: 1,
            prev_hash: GENESIS_HASH.into(),
            checkpoints: Progress::default(),
        }
    }
}

impl RecordChain {
    /// The seq the next sealed record gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Places a record at the end of the chain: sets `seq`, `prev_hash`, `key_id`, `hash` and
    /// `hmac`, and returns the record as the JSON to write. That JSON is the canonical form
    /// with the two digests appended: built once, it is both what the digests cover and
    /// (plus 150 bytes) what goes to the log.
    pub fn seal(&mut self, record: &mut SessionRecord, key: &RecordKey) -> Vec<u8> {
        record.seq = self.next_seq;
        record.prev_hash = self.prev_hash.clone();
        record.key_id = key.id().to_string();
        let mut json = record.canonical_bytes();
        let (hash, hmac) = digests(&json, key);
        // `{...}` becomes `{...,"hash":"..","hmac":".."}`; hex needs no escaping.
        if json.last() == Some(&b'}') {
            json.pop();
            json.extend_from_slice(
                format!(",\"hash\":\"{hash}\",\"hmac\":\"{hmac}\"}}").as_bytes(),
            );
        }
        record.hash = hash;
        record.hmac = hmac;
        self.next_seq += 1;
        self.prev_hash = record.hash.clone();
        self.checkpoints.records += 1;
        json
    }

    /// Whether a checkpoint is due at `now_nanos`, and why: the chain has none yet, or
    /// `every_records` records came since the last, or `every_s` seconds passed.
    pub fn checkpoint_due(&self, now_nanos: u64, every: &CheckpointSettings) -> Option<Trigger> {
        let Some(last) = self.checkpoints.last_at_nanos else {
            return Some(Trigger::Start);
        };
        if self.checkpoints.records >= every.every_records {
            Some(Trigger::Records)
        } else if now_nanos.saturating_sub(last) >= every.every_s.saturating_mul(1_000_000_000) {
            Some(Trigger::Time)
        } else {
            None
        }
    }

    /// Writes a signed checkpoint at the end of the chain; returns it and its JSON.
    pub fn checkpoint(
        &mut self,
        vm_id: &str,
        now_nanos: u64,
        trigger: Trigger,
        key: &RecordKey,
        signer: &SigningKey,
    ) -> (Checkpoint, Vec<u8>) {
        let mut c = Checkpoint::new(
            vm_id,
            self.next_seq,
            &self.prev_hash,
            crate::time::format_rfc3339_millis(now_nanos),
            trigger,
            &self.checkpoints,
        );
        let json = c.sign(key, signer);
        self.next_seq += 1;
        self.prev_hash = c.hash.clone();
        self.checkpoints = Progress {
            last_hash: c.hash.clone(),
            records: 0,
            last_at_nanos: Some(now_nanos),
        };
        (c, json)
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
    fn the_hmac_covers_the_hash_of_the_canonical_bytes_and_needs_the_key() {
        let mut a = sample();
        RecordChain::default().seal(&mut a, &test_key());
        let bytes = a.canonical_bytes();
        assert_eq!(digests_hold(&bytes, &test_key(), &a.hash, &a.hmac), Ok(()));
        let other = RecordKey::new(b"another-record-key-0123456789abcdef012345").unwrap();
        assert_eq!(
            digests_hold(&bytes, &other, &a.hash, &a.hmac),
            Err(Fault::Hmac)
        );
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
        assert_eq!(
            digests_hold(&edited.canonical_bytes(), &test_key(), &a.hash, &a.hmac),
            Err(Fault::Hash)
        );
    }

    #[test]
    fn the_sealed_json_is_the_record_with_its_digests() {
        let mut a = sample();
        let json = RecordChain::default().seal(&mut a, &test_key());
        let back: SessionRecord = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, a);
        assert!(json.ends_with(format!(",\"hmac\":\"{}\"}}", a.hmac).as_bytes()));
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
