//! The hold-and-ask path of a request whose rule requires approval. The request stays paused
//! from the rule's verdict until an answer of the approval service settles it:
//!
//! 1. create-or-get the ticket for the request digest (identity + model + route + canonical
//!    body): the same request from the same caller always finds the same open ticket;
//! 2. approved: consume one use of it (atomic in the service), then admit the request;
//! 3. pending: in `ticket` mode refuse with 403 and the ticket id at once (a retry of the same
//!    request passes once approved); in `wait` mode long-poll the ticket (the service holds
//!    each poll up to [`MAX_POLL_WAIT_S`]) until it is decided or `max_wait_s` passes;
//! 4. denied, expired or used up: 403, naming why.
//!
//! Anything but a well-formed answer about this request is a 503 naming the cause (fail
//! closed). Every step leaves its trace in the record's `approval` object.

use super::{Cx, Flow, Gate, Level, Phase, Refusal, RefusalCode, Reply, Step};
use crate::approval::digest::{request_digest, Bound};
use crate::approval::excerpt::{excerpt, matched, request_text};
use crate::approval::protocol::{
    consume_path, parse_answer, status_path, CalloutFault, ConsumeRequest, Status, Ticket,
    TicketRequest, FILTER_KEY_HEADER, MAX_POLL_WAIT_S, TICKETS_PATH,
};
use crate::approval::vouch::{vouch, Expected};
use crate::record::approval::{ApprovalTrace, TraceError, TraceStatus};
use crate::rules::{ApprovalMode, ApprovalRule, Why};
use serde_json::{json, Value};

/// The rule id a ticket names when the policy's default asked for approval.
const DEFAULT_RULE_ID: &str = "default";

/// Characters of context shown either side of the part of the prompt a rule matched.
const MATCH_CONTEXT_CHARS: usize = 200;

/// Largest answer read from the service; a ticket is a few hundred bytes.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// One call to the approval service, for the filter to dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceCall {
    pub cluster: String,
    /// Pseudo-headers first, then the rest.
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Open,
    Poll,
    Consume,
}

/// One request's approval, from the rule's verdict to its end.
pub(super) struct Asking {
    rule: ApprovalRule,
    rule_id: Option<String>,
    digest: String,
    /// When a `wait` hold gives up, and the wait that gives (the rule's, or less so that
    /// Envoy's idle timeout does not end the stream first).
    deadline_nanos: u64,
    wait_s: u64,
    call: Option<Call>,
    ticket: Option<Ticket>,
}

impl Asking {
    /// The record's `approval` object as it stands.
    fn trace(&self, status: TraceStatus, error: Option<&CalloutFault>) -> ApprovalTrace {
        let t = self.ticket.as_ref();
        ApprovalTrace {
            rule_id: self.rule_id.clone(),
            mode: self.rule.mode,
            request_digest: self.digest.clone(),
            status,
            id: t.map(|t| t.id.clone()),
            approver: t.and_then(|t| t.approver.clone()),
            decided_at: t.and_then(|t| t.decided_at.clone()),
            reason: t.and_then(|t| t.reason.clone()),
            expires_at: t.map(|t| t.expires_at.clone()),
            uses: t.filter(|t| t.max_uses > 0).map(|t| t.uses),
            max_uses: t.filter(|t| t.max_uses > 0).map(|t| t.max_uses),
            error: error.map(|f| TraceError {
                code: f.code().to_string(),
                message: f.to_string(),
            }),
        }
    }
}

/// Turns a callout's answer into what `Gate::approval_answer` takes: a reset has no headers
/// (Envoy `onFailure`); an answer over [`MAX_ANSWER_BYTES`] is not read.
pub fn read_answer(
    num_headers: usize,
    body_size: usize,
    status: impl FnOnce() -> Option<String>,
    body: impl FnOnce() -> Vec<u8>,
) -> Result<(u16, Vec<u8>), CalloutFault> {
    if num_headers == 0 {
        return Err(CalloutFault::Reset);
    }
    if body_size > MAX_ANSWER_BYTES {
        return Err(CalloutFault::Unparseable(format!(
            "the answer is {body_size} bytes, over the {MAX_ANSWER_BYTES}-byte limit"
        )));
    }
    let status = status().and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok((status, body()))
}

impl Gate {
    /// Starts asking for approval of the request rule `rule_id` matched.
    pub(super) fn ask_approval(
        &mut self,
        cx: &mut Cx<'_>,
        rule: ApprovalRule,
        rule_id: Option<String>,
        raw: &[u8],
        parsed: Option<&Value>,
    ) -> Reply {
        let Some(service) = &cx.config.approval else {
            // The policy parser refuses such a policy; never let the request through anyway.
            let refusal = Refusal::new(
                503,
                RefusalCode::ApprovalUnavailable,
                "the policy names no approval service",
            )
            .for_rule(rule_id);
            return self.refuse_as_recorded(cx, refusal);
        };
        let why = self.why(cx.config, rule_id.as_deref(), parsed, raw.len() as u64);
        let conditions = match rule_id {
            Some(_) => why.conditions.clone(),
            None => vec!["no rule matched; the policy's default requires approval".into()],
        };
        let (shown, request_truncated) = request_text(raw, parsed, &cx.config.masking);
        let x = &self.log;
        let identity = x.identity();
        // Bound to the query too: an approval for one query must not pass another.
        let target = match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        };
        let digest = request_digest(&Bound {
            issuer: identity.and_then(|i| i.issuer.as_deref()),
            subject: identity.and_then(|i| i.subject.as_deref()),
            model: x.model(),
            method: x.method(),
            path: &target,
            body: raw,
        });
        let request = TicketRequest {
            request_digest: digest.clone(),
            subject: identity.and_then(|i| i.subject.clone()),
            email: identity.and_then(|i| i.email.clone()),
            issuer: identity.and_then(|i| i.issuer.clone()),
            groups: identity.map(|i| i.groups.clone()).unwrap_or_default(),
            // The admitted model; without a models section, the one the body names.
            model: x
                .model()
                .or_else(|| parsed.and_then(|v| v.get("model")).and_then(Value::as_str))
                .map(crate::redact::model),
            rule_id: rule_id.clone().unwrap_or_else(|| DEFAULT_RULE_ID.into()),
            approver_groups: rule.approvers.clone(),
            excerpt: excerpt(raw, parsed, &cx.config.masking, service.excerpt_chars),
            route: format!(
                "{} {}{}",
                x.method(),
                self.path,
                self.query
                    .as_deref()
                    .map(|q| format!("?{}", crate::path::redact_query(q)))
                    .unwrap_or_default()
            ),
            conditions,
            matched: why
                .prompt
                .as_ref()
                .map(|m| matched(m, &cx.config.masking, MATCH_CONTEXT_CHARS)),
            request: shown,
            request_truncated,
            request_id: x.request_id().to_string(),
            ttl_s: rule.ttl_s,
            approved_ttl_s: rule.approved_ttl_s,
            uses: rule.uses,
        };
        // Envoy ends a quiet stream at its idle timeout: the wait ends first, and says so.
        let wait_s = cx.config.envoy.wait_bound_s(rule.max_wait_s);
        self.approval = Some(Asking {
            deadline_nanos: cx.now_nanos() + wait_s * 1_000_000_000,
            wait_s,
            rule,
            rule_id,
            digest,
            call: None,
            ticket: None,
        });
        self.phase = Phase::AwaitingApproval;
        let body = serde_json::to_vec(&request).unwrap_or_default();
        self.call_service(cx, Call::Open, TICKETS_PATH.into(), "POST", Some(body), 0)
    }

    /// Why rule `rule_id` matched this request (nothing for the policy's default).
    fn why(
        &self,
        config: &crate::PluginConfig,
        rule_id: Option<&str>,
        parsed: Option<&Value>,
        body_bytes: u64,
    ) -> Why {
        let Some(rule) = rule_id.and_then(|id| config.rules.rules.iter().find(|r| r.id == id))
        else {
            return Why::default();
        };
        self.with_facts(config, parsed, body_bytes, |facts| rule.when.why(facts))
    }

    fn call_service(
        &mut self,
        cx: &Cx<'_>,
        call: Call,
        path: String,
        method: &str,
        body: Option<Vec<u8>>,
        wait_s: u64,
    ) -> Reply {
        let Some(service) = &cx.config.approval else {
            return self.reply(Flow::Pause);
        };
        let mut headers = vec![
            (":method".to_string(), method.to_string()),
            (":path".to_string(), path),
            (":authority".to_string(), service.authority.clone()),
            ("accept".to_string(), "application/json".to_string()),
            (
                "x-request-id".to_string(),
                self.log.request_id().to_string(),
            ),
        ];
        if body.is_some() {
            headers.push(("content-type".into(), "application/json".into()));
        }
        if let Some(key) = &cx.secrets.approval_key {
            headers.push((FILTER_KEY_HEADER.into(), key.clone()));
        }
        if let Some(a) = self.approval.as_mut() {
            a.call = Some(call);
        }
        self.note(cx, Level::Debug, || {
            format!("approval: {call:?} call to cluster {}", service.cluster)
        });
        self.steps.push(Step::CallApproval(ServiceCall {
            cluster: service.cluster.clone(),
            headers,
            body,
            // A long poll is held by the service for its wait: the call's own timeout comes on top.
            timeout_ms: service.timeout_ms + wait_s * 1000,
        }));
        self.reply(Flow::Pause)
    }

    /// Event: the approval service's answer to the call in flight (or why there is none:
    /// the cluster refused the dispatch, a reset, a timeout).
    pub fn approval_answer(
        &mut self,
        cx: &mut Cx<'_>,
        answer: Result<(u16, Vec<u8>), CalloutFault>,
    ) -> Reply {
        let Some(call) = self.approval.as_mut().and_then(|a| a.call.take()) else {
            self.note(cx, Level::Warn, || {
                "an approval answer came with no call in flight; ignored".into()
            });
            return self.reply(Flow::Pause);
        };
        if self.phase != Phase::AwaitingApproval {
            return self.reply(Flow::Pause);
        }
        let digest = self.approval.as_ref().map(|a| a.digest.clone());
        let parsed = answer
            .and_then(|(status, body)| {
                parse_answer(status, &body, digest.as_deref().unwrap_or_default())
            })
            .and_then(|ticket| self.vouch_for(cx, ticket));
        match parsed {
            Ok(ticket) => self.on_ticket(cx, ticket, call),
            Err(fault) => self.approval_failed(cx, fault),
        }
    }

    /// The ticket, when it matches the rule that asked for it and this caller
    /// ([`crate::approval::vouch`]).
    fn vouch_for(&self, cx: &Cx<'_>, ticket: Ticket) -> Result<Ticket, CalloutFault> {
        let Some(a) = self.approval.as_ref() else {
            return Err(CalloutFault::Untrusted("no approval is being asked".into()));
        };
        let identity = self.log.identity();
        let expected = Expected {
            rule_id: a.rule_id.as_deref().unwrap_or(DEFAULT_RULE_ID),
            rule: &a.rule,
            issuer: identity.and_then(|i| i.issuer.as_deref()),
            subject: identity.and_then(|i| i.subject.as_deref()),
            email: identity.and_then(|i| i.email.as_deref()),
        };
        let now_ms = (cx.now_nanos() / 1_000_000) as i64;
        vouch(&ticket, &expected, now_ms).map_err(CalloutFault::Untrusted)?;
        Ok(ticket)
    }

    fn on_ticket(&mut self, cx: &mut Cx<'_>, ticket: Ticket, call: Call) -> Reply {
        let (id, status, granted) = (ticket.id.clone(), ticket.status, ticket.granted);
        let Some(a) = self.approval.as_mut() else {
            return self.reply(Flow::Pause);
        };
        a.ticket = Some(ticket);
        let (mode, deadline, digest) = (a.rule.mode, a.deadline_nanos, a.digest.clone());
        self.note(cx, Level::Debug, || {
            format!("approval: ticket {id} is {} ({call:?})", status.name())
        });
        if call == Call::Consume {
            if granted {
                self.set_trace(TraceStatus::Approved, None);
                self.count("vigil.approval.granted".into());
                return self.admit(cx);
            }
            let status = match status {
                Status::Denied | Status::Expired => status,
                _ => Status::Consumed,
            };
            return self.refuse_approval(cx, status);
        }
        match status {
            Status::Approved => {
                let body = serde_json::to_vec(&ConsumeRequest {
                    request_digest: digest,
                    request_id: self.log.request_id().to_string(),
                })
                .unwrap_or_default();
                self.call_service(cx, Call::Consume, consume_path(&id), "POST", Some(body), 0)
            }
            Status::Pending if mode == ApprovalMode::Wait && cx.now_nanos() < deadline => {
                let left_s = (deadline - cx.now_nanos()).div_ceil(1_000_000_000);
                let wait_s = left_s.clamp(1, MAX_POLL_WAIT_S);
                self.set_trace(TraceStatus::Pending, None);
                let path = status_path(&id, &digest, wait_s);
                self.call_service(cx, Call::Poll, path, "GET", None, wait_s)
            }
            other => self.refuse_approval(cx, other),
        }
    }

    fn set_trace(&mut self, status: TraceStatus, fault: Option<&CalloutFault>) {
        if let Some(a) = &self.approval {
            self.log.set_approval(a.trace(status, fault));
        }
    }

    /// 403 for a request whose approval is not (or no longer) there.
    fn refuse_approval(&mut self, cx: &Cx<'_>, status: Status) -> Reply {
        // Only a ticket the service sent leads here; without one, fail closed all the same.
        let Some((a, t)) = self
            .approval
            .as_ref()
            .and_then(|a| Some((a, a.ticket.clone()?)))
        else {
            let fault = CalloutFault::Unparseable("no ticket to decide on".into());
            return self.approval_failed(cx, fault);
        };
        let approvers = a.rule.approvers.join(", ");
        let (rule_id, max_wait, mode) = (a.rule_id.clone(), a.rule.max_wait_s, a.rule.mode);
        let waited = a.wait_s;
        let cut = if waited < max_wait {
            format!(
                " (the rule allows {max_wait} s; Envoy's stream idle timeout of {} s cuts the wait)",
                cx.config.envoy.stream_idle_timeout_s
            )
        } else {
            String::new()
        };
        let (code, message) = match status {
            Status::Pending if mode == ApprovalMode::Wait => (
                RefusalCode::ApprovalPending,
                format!(
                    "no member of {approvers} decided ticket {} within {waited} s{cut}; send the same request again once it is approved",
                    t.id
                ),
            ),
            Status::Pending | Status::Approved => (
                RefusalCode::ApprovalPending,
                format!(
                    "this request needs approval by a member of {approvers}: ticket {} is open; send the same request again once it is approved",
                    t.id
                ),
            ),
            Status::Denied => (
                RefusalCode::ApprovalDenied,
                format!(
                    "ticket {} was denied by {}: {}",
                    t.id,
                    t.approver.as_deref().unwrap_or("an approver"),
                    t.reason.as_deref().unwrap_or("no reason given")
                ),
            ),
            Status::Expired => (
                RefusalCode::ApprovalExpired,
                format!("ticket {} expired at {} without being used", t.id, t.expires_at),
            ),
            Status::Consumed => (
                RefusalCode::ApprovalUsed,
                format!(
                    "ticket {}'s approval has been used as many times as the rule allows",
                    t.id
                ),
            ),
        };
        let mut refusal = Refusal::new(403, code, message)
            .for_rule(rule_id)
            .with_detail("ticket_id", json!(t.id))
            .with_detail("ticket_status", json!(t.status.name()))
            .with_detail("expires_at", json!(t.expires_at));
        if let Some(url) = cx
            .config
            .approval
            .as_ref()
            .and_then(|s| s.follow_url.as_ref())
        {
            refusal = refusal.with_detail("follow_url", json!(format!("{url}{}", t.id)));
        }
        let trace_status = TraceStatus::from(status);
        self.set_trace(trace_status, None);
        self.count(format!("vigil.approval.{}", trace_status.name()));
        self.refuse_keeping_action(cx, refusal)
    }

    /// 503 for a service that gave no usable answer: fail closed, and say why.
    fn approval_failed(&mut self, cx: &Cx<'_>, fault: CalloutFault) -> Reply {
        self.note(cx, Level::Warn, || {
            format!("approval: {fault} ({})", fault.code())
        });
        self.set_trace(TraceStatus::Error, Some(&fault));
        self.count(format!("vigil.approval.{}", fault.code()));
        let rule_id = self.approval.as_ref().and_then(|a| a.rule_id.clone());
        let refusal = Refusal::new(
            503,
            RefusalCode::ApprovalService(super::FaultCode::of(&fault)),
            format!("{fault}; a request that needs approval is refused until the service answers"),
        )
        .for_rule(rule_id);
        self.refuse_keeping_action(cx, refusal)
    }

    /// The exchange ended with a call to the service in flight: its answer will never reach
    /// this request (Envoy does not cancel a callout when the stream goes, and the SDK drops
    /// the answer). A `consume` may still spend a use: the record says so, and the ticket's
    /// history names this request id.
    pub(super) fn abandon_approval(&mut self, cx: &Cx<'_>) {
        let Some(a) = self.approval.as_ref() else {
            return;
        };
        let (call, ticket) = (a.call, a.ticket.as_ref().map(|t| t.id.clone()));
        let fault = match (call, ticket) {
            (Some(Call::Consume), Some(id)) => CalloutFault::Abandoned(format!(
                "the exchange ended while a use of ticket {id} was being consumed; if the service spent it, ticket {id}'s history names request {}",
                self.log.request_id()
            )),
            _ => CalloutFault::Abandoned(
                "the exchange ended while the approval service was being asked".into(),
            ),
        };
        self.note(cx, Level::Warn, || format!("approval: {fault}"));
        self.set_trace(TraceStatus::Abandoned, Some(&fault));
        self.count("vigil.approval.abandoned".into());
    }

    /// Refuses, keeping the record's decision `require_approval` with the refusal as reason.
    fn refuse_keeping_action(&mut self, cx: &Cx<'_>, refusal: Refusal) -> Reply {
        self.log.set_reason(refusal.reason());
        self.refuse_as_recorded(cx, refusal)
    }
}
