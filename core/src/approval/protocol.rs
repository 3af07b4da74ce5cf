//! The filter's call to the approval service and the service's answer. Anything but a
//! well-formed answer is a refusal (fail closed): a callout that resets, times out, finds no
//! healthy host, answers non-2xx or answers something this parser does not accept. Each
//! cause is a [`CalloutFault`] whose `code` goes into the client's 503 and the record.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What the filter asks: create the ticket for this request, or get the open one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketRequest {
    pub request_digest: String,
    pub subject: Option<String>,
    pub email: Option<String>,
    pub issuer: Option<String>,
    pub groups: Vec<String>,
    pub model: Option<String>,
    pub rule_id: String,
    pub approver_groups: Vec<String>,
    /// The start of the prompt, with personal data masked, for the approver to read.
    pub excerpt: String,
    /// The method and path asked for (`POST /v1/chat/completions`), query redacted.
    #[serde(default)]
    pub route: String,
    /// Why the rule matched: each of its conditions as it held, in words.
    #[serde(default)]
    pub conditions: Vec<String>,
    /// The part of the prompt the rule's pattern matched, masked, with its context.
    #[serde(default)]
    pub matched: Option<MatchedText>,
    /// The whole request, masked (cut at 256 KiB, `request_truncated` then true).
    #[serde(default)]
    pub request: String,
    #[serde(default)]
    pub request_truncated: bool,
    pub request_id: String,
    /// How long the ticket waits for a decision.
    pub ttl_s: u64,
    /// How long an approval stays usable once given.
    pub approved_ttl_s: u64,
    /// How many requests one approval lets through.
    pub uses: u32,
}

/// The part of a prompt a rule matched, masked as one text with its context, so a long
/// request never hides it from the approver.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchedText {
    pub before: String,
    pub text: String,
    pub after: String,
    /// Whether text comes before `before` / after `after`.
    pub cut_before: bool,
    pub cut_after: bool,
    /// Matched only once the prompt was Unicode-normalized: the texts are of that view.
    pub normalized: bool,
}

/// What the filter sends to use an approved ticket once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumeRequest {
    pub request_digest: String,
    pub request_id: String,
}

/// Where the filter creates (or gets) the ticket for a request.
pub const TICKETS_PATH: &str = "/v1/tickets";
/// The header the filter presents its key in.
pub const FILTER_KEY_HEADER: &str = "x-vigil-filter-key";
/// Longest long poll the service holds (the filter's wait is cut into polls of this).
pub const MAX_POLL_WAIT_S: u64 = 20;

/// Where the filter polls a ticket, holding up to `wait_s` for a decision.
pub fn status_path(id: &str, digest: &str, wait_s: u64) -> String {
    format!("{TICKETS_PATH}/{id}/status?digest={digest}&wait_s={wait_s}")
}

/// Where the filter uses an approved ticket.
pub fn consume_path(id: &str) -> String {
    format!("{TICKETS_PATH}/{id}/consume")
}

/// Where a ticket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Approved,
    Denied,
    Expired,
    /// Approved, and used as many times as the rule allows.
    Consumed,
}

impl Status {
    /// The name on the wire and in the service's database.
    pub fn name(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Denied => "denied",
            Status::Expired => "expired",
            Status::Consumed => "consumed",
        }
    }

    pub fn from_name(name: &str) -> Option<Status> {
        [
            Status::Pending,
            Status::Approved,
            Status::Denied,
            Status::Expired,
            Status::Consumed,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

/// The service's answer about one ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: String,
    pub status: Status,
    pub request_digest: String,
    /// What the ticket is about, which the filter checks against its own rule
    /// ([`super::vouch`]): a ticket without them is refused.
    #[serde(default)]
    pub rule_id: String,
    #[serde(default)]
    pub approver_groups: Vec<String>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default)]
    pub approver: Option<String>,
    #[serde(default)]
    pub decided_at: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    pub expires_at: String,
    /// Set by consumption: this call used the approval (false: nothing was used).
    #[serde(default)]
    pub granted: bool,
    /// Uses taken so far, and the most the rule allows.
    #[serde(default)]
    pub uses: u32,
    #[serde(default)]
    pub max_uses: u32,
}

/// Why an approval callout gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CalloutFault {
    /// The cluster refused the call at once (unknown cluster, no healthy host).
    NotDispatched(String),
    Reset,
    Timeout,
    Status(u16),
    Unparseable(String),
    /// A well-formed answer about another request: never taken as this one's approval.
    WrongRequest,
    /// A well-formed answer about this request that its rule does not allow (approver groups,
    /// uses, lifetimes, caller): a forged or misconfigured service, never acted on.
    Untrusted(String),
    /// The exchange ended with the call in flight; its answer never reaches the request.
    Abandoned(String),
}

impl CalloutFault {
    /// Stable code for the client's error body and the record.
    pub fn code(&self) -> &'static str {
        FaultCode::of(self).code()
    }
}

/// Why the approval service's answer was unusable, as the stable code in the client's 503
/// and the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultCode {
    Unavailable,
    Reset,
    Timeout,
    Error,
    Garbage,
    Mismatch,
    Untrusted,
    Abandoned,
}

impl FaultCode {
    pub fn of(fault: &CalloutFault) -> Self {
        match fault {
            CalloutFault::NotDispatched(_) => FaultCode::Unavailable,
            CalloutFault::Reset => FaultCode::Reset,
            CalloutFault::Timeout => FaultCode::Timeout,
            CalloutFault::Status(_) => FaultCode::Error,
            CalloutFault::Unparseable(_) => FaultCode::Garbage,
            CalloutFault::WrongRequest => FaultCode::Mismatch,
            CalloutFault::Untrusted(_) => FaultCode::Untrusted,
            CalloutFault::Abandoned(_) => FaultCode::Abandoned,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            FaultCode::Unavailable => "approval_service_unavailable",
            FaultCode::Reset => "approval_service_reset",
            FaultCode::Timeout => "approval_service_timeout",
            FaultCode::Error => "approval_service_error",
            FaultCode::Garbage => "approval_service_garbage",
            FaultCode::Mismatch => "approval_service_mismatch",
            FaultCode::Untrusted => "approval_ticket_untrusted",
            FaultCode::Abandoned => "approval_abandoned",
        }
    }
}

impl fmt::Display for CalloutFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CalloutFault::NotDispatched(why) => {
                write!(f, "the approval service could not be called: {why}")
            }
            CalloutFault::Reset => write!(f, "the approval service reset the connection"),
            CalloutFault::Timeout => write!(f, "the approval service did not answer in time"),
            CalloutFault::Status(s) => write!(f, "the approval service answered HTTP {s}"),
            CalloutFault::Unparseable(why) => {
                write!(f, "the approval service's answer is not a ticket: {why}")
            }
            CalloutFault::WrongRequest => {
                write!(f, "the approval service answered about another request")
            }
            CalloutFault::Untrusted(why) => {
                write!(
                    f,
                    "the approval service's ticket does not match the rule: {why}"
                )
            }
            CalloutFault::Abandoned(why) => f.write_str(why),
        }
    }
}

/// Longest ticket id accepted: ids go into headers, records and URLs.
const MAX_ID: usize = 128;

/// Reads the service's answer to a call about `digest`.
pub fn parse_answer(status: u16, body: &[u8], digest: &str) -> Result<Ticket, CalloutFault> {
    if !(200..300).contains(&status) {
        // Envoy answers for a cluster it cannot reach: the router's local replies are 503
        // "no healthy upstream" and "upstream connect error or disconnect/reset before
        // headers. reset reason: ..." (source/common/router/router.cc), and 504 "upstream
        // request timeout" when the callout's timeout passes. The service itself answers JSON.
        let text = String::from_utf8_lossy(&body[..body.len().min(64)]);
        return Err(match status {
            503 if text.starts_with("no healthy upstream")
                || text.starts_with("upstream connect error") =>
            {
                CalloutFault::NotDispatched(text.into_owned())
            }
            504 => CalloutFault::Timeout,
            _ => CalloutFault::Status(status),
        });
    }
    let ticket: Ticket =
        serde_json::from_slice(body).map_err(|e| CalloutFault::Unparseable(e.to_string()))?;
    if ticket.id.is_empty()
        || ticket.id.len() > MAX_ID
        || !ticket
            .id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(CalloutFault::Unparseable(format!(
            "ticket id {:?} is not 1-{MAX_ID} letters, digits, '-' or '_'",
            ticket.id.chars().take(40).collect::<String>()
        )));
    }
    if crate::time::parse_rfc3339(&ticket.expires_at).is_err() {
        return Err(CalloutFault::Unparseable(format!(
            "expires_at {:?} is not an RFC 3339 time",
            ticket.expires_at
        )));
    }
    if ticket.request_digest != digest {
        return Err(CalloutFault::WrongRequest);
    }
    if ticket.status == Status::Approved && ticket.approver.as_deref().unwrap_or("").is_empty() {
        return Err(CalloutFault::Unparseable(
            "an approved ticket names no approver".into(),
        ));
    }
    Ok(ticket)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "5f2b";

    fn answer(extra: &str) -> String {
        format!(
            r#"{{"id":"t-1","status":"approved","request_digest":"{D}","approver":"risk.officer@bank.example","decided_at":"2026-11-22T10:00:00Z","reason":"ok","expires_at":"2026-11-22T11:00:00Z"{extra}}}"#
        )
    }

    #[test]
    fn a_well_formed_approval_is_read() {
        let t = parse_answer(200, answer("").as_bytes(), D).unwrap();
        assert_eq!(
            (t.status, t.approver.as_deref()),
            (Status::Approved, Some("risk.officer@bank.example"))
        );
    }

    #[test]
    fn every_unusable_answer_is_a_fault_with_its_own_code() {
        let cases: Vec<(u16, String, &str)> = vec![
            (503, answer(""), "approval_service_error"),
            (500, answer(""), "approval_service_error"),
            (503, "no healthy upstream".into(), "approval_service_unavailable"),
            (
                503,
                "upstream connect error or disconnect/reset before headers. reset reason: connection failure".into(),
                "approval_service_unavailable",
            ),
            (504, "upstream request timeout".into(), "approval_service_timeout"),
            (200, "<html>oops</html>".into(), "approval_service_garbage"),
            (
                200,
                answer("").replace("approved", "maybe"),
                "approval_service_garbage",
            ),
            (
                200,
                answer("").replace("\"t-1\"", "\"t 1; drop\""),
                "approval_service_garbage",
            ),
            (
                200,
                answer("").replace("2026-11-22T11:00:00Z", "soon"),
                "approval_service_garbage",
            ),
            (
                200,
                answer("").replace(D, "other"),
                "approval_service_mismatch",
            ),
            (
                200,
                answer("").replace("risk.officer@bank.example", ""),
                "approval_service_garbage",
            ),
            (200, String::new(), "approval_service_garbage"),
        ];
        for (status, body, code) in cases {
            let fault = parse_answer(status, body.as_bytes(), D).unwrap_err();
            assert_eq!(fault.code(), code, "{body}: {fault}");
        }
        assert_eq!(CalloutFault::Timeout.code(), "approval_service_timeout");
        assert_eq!(CalloutFault::Reset.code(), "approval_service_reset");
    }

    #[test]
    fn unknown_fields_in_an_answer_are_tolerated_for_newer_services() {
        assert!(parse_answer(200, answer(r#","uses_left":1"#).as_bytes(), D).is_ok());
    }
}
