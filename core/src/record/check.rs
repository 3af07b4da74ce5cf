//! Verifying one record read back from a log: its version, its shape, its hash and its HMAC.
//! Chain order (sequence, links between records) is the auditor's job; this is what a single
//! record can say about itself.

use super::{RecordKey, SessionRecord, RECORD_VERSION};
use crate::digest::sha256_hex;
use serde::Deserialize;
use serde_json::Value;
use std::fmt;

/// What is wrong with one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordFault {
    /// `v` is missing or not a version this build reads.
    UnknownVersion(String),
    /// Fields missing, unknown or of the wrong type for the version.
    Shape(String),
    /// Signed with a key the verifier was not given.
    UnknownKey(String),
    /// The content is not what `hash` says: the record was changed.
    HashMismatch,
    /// The HMAC does not match: changed by someone without the key, or signed with another key
    /// under the same fingerprint.
    HmacMismatch,
}

impl fmt::Display for RecordFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordFault::UnknownVersion(v) => {
                write!(
                    f,
                    "record version {v} is not one this verifier reads (v {RECORD_VERSION})"
                )
            }
            RecordFault::Shape(e) => write!(f, "not a v{RECORD_VERSION} record: {e}"),
            RecordFault::UnknownKey(id) => write!(
                f,
                "signed with key {id}, which was not given (--key-env / --key-file)"
            ),
            RecordFault::HashMismatch => {
                write!(f, "content does not match its hash: the record was changed")
            }
            RecordFault::HmacMismatch => {
                write!(f, "HMAC does not match: the record was changed or forged")
            }
        }
    }
}

/// A record whose hash and HMAC hold.
#[derive(Debug, Clone)]
pub struct Checked {
    pub record: SessionRecord,
}

/// The record a parsed entry holds, when it is one of this version.
fn read(value: &Value) -> Result<SessionRecord, RecordFault> {
    match value.get("v") {
        Some(Value::Number(n)) if n.as_u64() == Some(u64::from(RECORD_VERSION)) => {}
        Some(other) => return Err(RecordFault::UnknownVersion(other.to_string())),
        None => return Err(RecordFault::UnknownVersion("(missing)".into())),
    }
    SessionRecord::deserialize(value).map_err(|e| RecordFault::Shape(e.to_string()))
}

/// Checks one record given as parsed JSON against the keys the verifier holds.
pub fn check(value: &Value, keys: &[RecordKey]) -> Result<Checked, RecordFault> {
    let record = read(value)?;
    let bytes = super::chain::canonical_bytes(value);
    let key = keys.iter().find(|k| k.id() == record.key_id);
    let Some(key) = key else {
        // Without the key, the hash alone still tells an edit from a missing key.
        if sha256_hex(&bytes) != record.hash {
            return Err(RecordFault::HashMismatch);
        }
        return Err(RecordFault::UnknownKey(record.key_id.clone()));
    };
    match super::chain::digests_hold(&bytes, key, &record.hash, &record.hmac) {
        Ok(()) => Ok(Checked { record }),
        Err(super::chain::Fault::Hash) => Err(RecordFault::HashMismatch),
        Err(super::chain::Fault::Hmac) => Err(RecordFault::HmacMismatch),
    }
}

/// Checks one record's shape and hash without a record key: what an examiner holding only
/// a checkpoint public key can check (the chain and the signatures do the rest).
pub fn check_unkeyed(value: &Value) -> Result<Checked, RecordFault> {
    let record = read(value)?;
    if sha256_hex(&super::chain::canonical_bytes(value)) != record.hash {
        return Err(RecordFault::HashMismatch);
    }
    Ok(Checked { record })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::chain::tests::test_key;
    use crate::record::tests::sample;
    use crate::record::RecordChain;

    fn sealed() -> Value {
        let mut r = sample();
        RecordChain::default().seal(&mut r, &test_key());
        serde_json::to_value(&r).unwrap()
    }

    #[test]
    fn a_sealed_record_checks() {
        let checked = check(&sealed(), &[test_key()]).unwrap();
        assert_eq!(checked.record.seq, 1);
    }

    #[test]
    fn an_edited_field_is_a_hash_mismatch() {
        let mut v = sealed();
        v["response"]["status"] = 500.into();
        assert_eq!(
            check(&v, &[test_key()]).unwrap_err(),
            RecordFault::HashMismatch
        );
    }

    #[test]
    fn an_edit_with_a_recomputed_hash_still_fails_the_hmac() {
        let mut v = sealed();
        v["model"] = "gpt-4o".into();
        v["hash"] = sha256_hex(&crate::record::chain::canonical_bytes(&v)).into();
        assert_eq!(
            check(&v, &[test_key()]).unwrap_err(),
            RecordFault::HmacMismatch
        );
    }

    #[test]
    fn unknown_versions_keys_and_fields_are_named() {
        let mut v = sealed();
        v["v"] = 2.into();
        assert_eq!(
            check(&v, &[test_key()]).unwrap_err().to_string(),
            "record version 2 is not one this verifier reads (v 1)"
        );
        let mut v = sealed();
        v["extra"] = true.into();
        assert!(check(&v, &[test_key()])
            .unwrap_err()
            .to_string()
            .contains("unknown field `extra`"));
        let other = RecordKey::new(b"another-record-key-0123456789abcdef012345").unwrap();
        assert!(matches!(
            check(&sealed(), &[other]).unwrap_err(),
            RecordFault::UnknownKey(_)
        ));
        assert!(matches!(
            check(&Value::Null, &[test_key()]).unwrap_err(),
            RecordFault::UnknownVersion(_)
        ));
    }
}
