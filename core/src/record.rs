//! The session record (contract, version `v` = 1): one JSON object per request that answers an
//! examiner's questions (who, what, when, which policy decided, what came back) and chains to
//! the record before it on the same VM so that edits, deletions and reorders show.
//!
//! Raw bodies never appear here: until the masking engine fills in masked copies, a record
//! carries each body's length and SHA-256 only.

use crate::digest::sha256_hex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const RECORD_VERSION: u32 = 1;

/// One request, as the examiner sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRecord {
    pub v: u32,
    pub request_id: String,
    /// The Envoy VM (`plugin_vm_id`) and its worker-local context: together with `seq` they
    /// name one position in one chain.
    pub vm_id: String,
    pub seq: u64,
    /// `hash` of the previous record on this VM; 64 zeros for the first.
    pub prev_hash: String,
    pub started_at: String,
    pub ended_at: String,
    pub duration_ms: u64,
    pub client_address: Option<String>,
    pub route: Route,
    /// The verified caller; null when the policy configures no identity providers or the
    /// request was refused before a token verified.
    pub identity: Option<crate::identity::Identity>,
    pub model: Option<String>,
    pub decision: Decision,
    pub approval: Option<serde_json::Value>,
    /// `forwarded` (reached the model server) or `local_response` (answered by Envoy or Vigil).
    pub outcome: String,
    /// False when the stream ended before the response did (client went away, reset).
    pub complete: bool,
    pub request: BodySummary,
    pub response: ResponseSummary,
    /// Count of masked values per entity type.
    pub masked: BTreeMap<String, u64>,
    pub policy: PolicyRef,
    /// SHA-256 of the canonical form of this record without `hash`.
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub method: String,
    pub path: String,
    pub authority: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// `allow`, `block`, `require_approval`.
    pub action: String,
    pub rule_id: Option<String>,
    pub reason: String,
    /// Shadow-mode rules that matched: what they would have done, had they been enforced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shadow: Vec<ShadowMatch>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowMatch {
    pub rule_id: String,
    pub action: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodySummary {
    pub bytes: u64,
    pub sha256: String,
    /// The masked body, up to the record's body cap (`record.max_body_bytes`).
    #[serde(default)]
    pub body: String,
    /// The body was longer than the cap; `bytes` is its full length.
    #[serde(default)]
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseSummary {
    pub status: Option<u16>,
    pub bytes: u64,
    pub sha256: String,
    /// The masked body as the client received it, up to the record's body cap.
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRef {
    pub id: String,
    pub version: String,
    pub sha256: String,
}

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl SessionRecord {
    /// The canonical bytes the record hash covers: the record without `hash`, as JSON with
    /// keys sorted and no whitespace (serde_json's map is ordered), so any verifier in any
    /// language can rebuild them.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let Some(map) = value.as_object_mut() {
            map.remove("hash");
        }
        serde_json::to_vec(&value).unwrap_or_default()
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
    /// Places a record at the end of the chain: sets `seq`, `prev_hash` and `hash`.
    pub fn seal(&mut self, record: &mut SessionRecord) {
        record.seq = self.next_seq;
        record.prev_hash = self.prev_hash.clone();
        record.hash = record.compute_hash();
        self.next_seq += 1;
        self.prev_hash = record.hash.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> SessionRecord {
        SessionRecord {
            v: RECORD_VERSION,
            request_id: "r1".into(),
            vm_id: "vm".into(),
            seq: 0,
            prev_hash: String::new(),
            started_at: "2026-11-22T10:00:00.000Z".into(),
            ended_at: "2026-11-22T10:00:00.010Z".into(),
            duration_ms: 10,
            client_address: Some("10.0.0.1:5000".into()),
            route: Route {
                method: "POST".into(),
                path: "/v1/chat/completions".into(),
                authority: "models".into(),
            },
            identity: None,
            model: None,
            decision: Decision {
                action: "allow".into(),
                rule_id: None,
                reason: "pass-through".into(),
                shadow: vec![],
            },
            approval: None,
            outcome: "forwarded".into(),
            complete: true,
            request: BodySummary {
                bytes: 0,
                sha256: sha256_hex(b""),
                body: String::new(),
                truncated: false,
            },
            response: ResponseSummary {
                status: Some(200),
                bytes: 0,
                sha256: sha256_hex(b""),
                body: String::new(),
                truncated: false,
            },
            masked: BTreeMap::new(),
            policy: PolicyRef {
                id: "p".into(),
                version: "1".into(),
                sha256: sha256_hex(b"{}"),
            },
            hash: String::new(),
        }
    }

    #[test]
    fn chain_links_each_record_to_the_previous_hash() {
        let mut chain = RecordChain::default();
        let (mut a, mut b) = (sample(), sample());
        chain.seal(&mut a);
        chain.seal(&mut b);
        assert_eq!((a.seq, b.seq), (1, 2));
        assert_eq!(a.prev_hash, GENESIS_HASH);
        assert_eq!(b.prev_hash, a.hash);
        assert_eq!(a.hash, a.compute_hash());
    }

    #[test]
    fn any_edit_changes_the_hash() {
        let mut chain = RecordChain::default();
        let mut a = sample();
        chain.seal(&mut a);
        let mut edited = a.clone();
        edited.response.status = Some(201);
        assert_ne!(edited.compute_hash(), a.hash);
    }

    #[test]
    fn a_record_round_trips_through_json() {
        let mut a = sample();
        RecordChain::default().seal(&mut a);
        let text = serde_json::to_string(&a).unwrap();
        let back: SessionRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, a);
        assert_eq!(back.compute_hash(), a.hash);
    }
}
