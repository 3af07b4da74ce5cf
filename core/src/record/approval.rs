//! The record's `approval` object: what the approval service said about a request whose rule
//! requires approval (docs/session-record.schema.json). Its status uses the protocol's own
//! names ([`Status`]), plus `error` for a service that gave no usable answer.

use crate::approval::protocol::Status;
use crate::rules::ApprovalMode;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalTrace {
    /// The rule that asked (null: the policy default).
    pub rule_id: Option<String>,
    pub mode: ApprovalMode,
    /// What the approval is bound to (identity, model, route, canonical body).
    pub request_digest: String,
    pub status: TraceStatus,
    /// The ticket, once the service answered with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_uses: Option<u32>,
    /// Why the service's answer was unusable (`status` is `error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<TraceError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceError {
    /// `approval_service_*`, as in the client's 503.
    pub code: String,
    pub message: String,
}

/// Where the approval stood when the exchange was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceStatus {
    Pending,
    Approved,
    Denied,
    Expired,
    /// Used as many times as the rule allows (records before this vocabulary said `used`).
    #[serde(alias = "used")]
    Consumed,
    /// The service gave no usable answer.
    Error,
    /// The exchange ended (client gone, Envoy's timeout) while the service was being asked.
    /// When the call in flight was a `consume`, the service may have spent a use on this
    /// request: `error` says so, and the ticket's history names this request id.
    Abandoned,
}

impl From<Status> for TraceStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Pending => TraceStatus::Pending,
            Status::Approved => TraceStatus::Approved,
            Status::Denied => TraceStatus::Denied,
            Status::Expired => TraceStatus::Expired,
            Status::Consumed => TraceStatus::Consumed,
        }
    }
}

impl TraceStatus {
    pub fn name(self) -> &'static str {
        match self {
            TraceStatus::Pending => Status::Pending.name(),
            TraceStatus::Approved => Status::Approved.name(),
            TraceStatus::Denied => Status::Denied.name(),
            TraceStatus::Expired => Status::Expired.name(),
            TraceStatus::Consumed => Status::Consumed.name(),
            TraceStatus::Error => "error",
            TraceStatus::Abandoned => "abandoned",
        }
    }
}
