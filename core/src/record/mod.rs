//! The session record (contract, version `v` = 1): one JSON object per request that answers an
//! examiner's questions (who, what, when, which policy decided, what came back) and chains to
//! the record before it on the same VM so that edits, deletions and reorders show.
//!
//! Raw bodies never appear here: a record carries the masked bodies (capped), their length and
//! SHA-256, and counts of what was masked. [`chain`] seals records into a per-VM chain with an
//! HMAC; [`check`] verifies one record read back from a log line.

pub mod approval;
pub mod chain;
pub mod check;
pub mod checkpoint;
pub mod sealed;

pub use chain::{RecordChain, RecordKey, GENESIS_HASH};

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
    pub approval: Option<approval::ApprovalTrace>,
    pub outcome: Outcome,
    /// False when the stream ended before the response did (client went away, reset).
    pub complete: bool,
    /// True on a refused request whose headers had already gone on to the model server
    /// (Envoy without header hold); absent otherwise, so records without it hash as before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub headers_reached_upstream: bool,
    /// What the call consumed, from the model server's answer (OpenTelemetry GenAI names:
    /// crate::usage); absent when the answer said nothing of it, so older records hash the
    /// same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gen_ai: Option<crate::usage::GenAi>,
    pub request: BodySummary,
    pub response: ResponseSummary,
    /// The unmasked request and answer encrypted to an examiner's key (`record.seal_to`,
    /// [`sealed`]); absent when the policy seals nothing, so other records hash as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<sealed::SealedPayload>,
    /// Count of masked values per entity type.
    pub masked: BTreeMap<String, u64>,
    pub policy: PolicyRef,
    /// Fingerprint of the HMAC key ([`RecordKey::id`]), so a verifier holding several keys
    /// (rotation) knows which one to use.
    pub key_id: String,
    /// SHA-256 of the canonical form of this record without `hash` and `hmac`; the next record
    /// on the VM carries it as `prev_hash`.
    pub hash: String,
    /// HMAC-SHA-256 of the same canonical bytes, keyed with the record key: only a holder of
    /// the key can write a record that verifies.
    pub hmac: String,
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
    pub action: DecisionAction,
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
    pub action: DecisionAction,
}

/// What the policy decided for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionAction {
    Allow,
    Block,
    RequireApproval,
}

impl DecisionAction {
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionAction::Allow => "allow",
            DecisionAction::Block => "block",
            DecisionAction::RequireApproval => "require_approval",
        }
    }
}

/// Whether the request reached the model server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Reached the model server.
    Forwarded,
    /// Answered by Envoy or Vigil.
    LocalResponse,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Forwarded => "forwarded",
            Outcome::LocalResponse => "local_response",
        }
    }
}

/// The record's vocabularies compare with their names, as they read in the JSON.
macro_rules! named {
    ($t:ty) => {
        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
named!(DecisionAction);
named!(Outcome);

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
    /// Envoy's response code details (`via_upstream`, `upstream_reset_before_response_started`,
    /// `downstream_remote_disconnect`, ...): why an exchange ended the way it did.
    #[serde(default)]
    pub details: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRef {
    pub id: String,
    pub version: String,
    pub sha256: String,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::digest::sha256_hex;

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
                action: DecisionAction::Allow,
                rule_id: None,
                reason: "pass-through".into(),
                shadow: vec![],
            },
            approval: None,
            outcome: Outcome::Forwarded,
            complete: true,
            headers_reached_upstream: false,
            gen_ai: None,
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
                details: Some("via_upstream".into()),
            },
            sealed: None,
            masked: BTreeMap::new(),
            policy: PolicyRef {
                id: "p".into(),
                version: "1".into(),
                sha256: sha256_hex(b"{}"),
            },
            key_id: String::new(),
            hash: String::new(),
            hmac: String::new(),
        }
    }
}
