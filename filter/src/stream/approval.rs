//! The hold-and-ask path of a request whose rule requires approval.
//!
//! The stream itself calls the approval service, so the answers come back to it and Envoy
//! cancels its calls when the client goes away (a callout belongs to the context that
//! dispatched it). The request is paused from the decision until an answer settles it:
//!
//! 1. create-or-get the ticket for the request digest (identity + model + route + canonical
//!    body): the same request from the same caller always finds the same open ticket;
//! 2. approved: consume one use of it (atomic in the service), then resume the request;
//! 3. pending: in `ticket` mode answer 403 with the ticket id at once (a retry of the same
//!    request passes once it is approved); in `wait` mode long-poll the ticket (the service
//!    holds each poll up to [`MAX_POLL_WAIT_S`]) until it is decided or `max_wait_s` passes;
//! 4. denied, expired or used up: 403, naming why.
//!
//! Anything but a well-formed answer about this request is a 503 naming the cause (fail
//! closed). Every step leaves its trace in the record's `approval` object.

use super::VigilStream;
use crate::logging::ctx_log;
use crate::policy;
use crate::refusal::Refusal;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use serde_json::{json, Value};
use std::time::Duration;
use vigil_core::approval::digest::{request_digest, Bound};
use vigil_core::approval::excerpt::excerpt;
use vigil_core::approval::protocol::{
    consume_path, parse_answer, status_path, CalloutFault, ConsumeRequest, Status, Ticket,
    TicketRequest, FILTER_KEY_HEADER, MAX_POLL_WAIT_S, TICKETS_PATH,
};
use vigil_core::rules::{ApprovalMode, ApprovalRule};

/// Largest answer read from the service; a ticket is a few hundred bytes.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    Poll,
    Consume,
}

/// One request's approval, from the rule's verdict to its end.
pub(super) struct Approval {
    rule: ApprovalRule,
    rule_id: Option<String>,
    digest: String,
    /// When a `wait` hold gives up.
    deadline_nanos: u64,
    call: Option<(u32, Phase)>,
    ticket: Option<Ticket>,
}

impl Approval {
    /// The record's `approval` object as it stands.
    fn trace(&self, status: &str, error: Option<&CalloutFault>) -> Value {
        let mode = match self.rule.mode {
            ApprovalMode::Ticket => "ticket",
            ApprovalMode::Wait => "wait",
        };
        let mut v = json!({
            "rule_id": self.rule_id,
            "mode": mode,
            "request_digest": self.digest,
            "status": status,
        });
        if let Some(t) = &self.ticket {
            v["id"] = json!(t.id);
            v["approver"] = json!(t.approver);
            v["decided_at"] = json!(t.decided_at);
            v["reason"] = json!(t.reason);
            v["expires_at"] = json!(t.expires_at);
            if t.max_uses > 0 {
                v["uses"] = json!(t.uses);
                v["max_uses"] = json!(t.max_uses);
            }
        }
        if let Some(f) = error {
            v["error"] = json!({"code": f.code(), "message": f.to_string()});
        }
        v
    }
}

impl VigilStream {
    /// Starts asking for approval of the request the rule `rule_id` matched; the request
    /// stays paused until the service's answers settle it.
    pub(super) fn ask_approval(
        &mut self,
        rule: ApprovalRule,
        rule_id: Option<String>,
        raw: &[u8],
        parsed: Option<&Value>,
    ) -> Action {
        let shared = self.shared.clone();
        let Some(service) = &shared.config.approval else {
            // The policy parser refuses such a policy; never let the request through anyway.
            return self.refuse(
                Refusal::new(
                    503,
                    "approval_unavailable",
                    "the policy names no approval service",
                )
                .for_rule(rule_id),
            );
        };
        let (request, digest) = {
            let Some(x) = self.exchange.as_ref() else {
                return Action::Pause;
            };
            let identity = x.identity();
            let digest = request_digest(&Bound {
                issuer: identity.and_then(|i| i.issuer.as_deref()),
                subject: identity.and_then(|i| i.subject.as_deref()),
                model: x.model(),
                method: x.method(),
                path: x.path(),
                body: raw,
            });
            let request = TicketRequest {
                request_digest: digest.clone(),
                subject: identity.and_then(|i| i.subject.clone()),
                email: identity.and_then(|i| i.email.clone()),
                issuer: identity.and_then(|i| i.issuer.clone()),
                groups: identity.map(|i| i.groups.clone()).unwrap_or_default(),
                // The admitted model; without a models section, the one the body names.
                model: x.model().map(str::to_string).or_else(|| {
                    parsed
                        .and_then(|v| v.get("model"))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                }),
                rule_id: rule_id.clone().unwrap_or_else(|| "default".into()),
                approver_groups: rule.approvers.clone(),
                excerpt: excerpt(raw, parsed, &shared.config.masking, service.excerpt_chars),
                request_id: x.request_id().to_string(),
                ttl_s: rule.ttl_s,
                approved_ttl_s: rule.approved_ttl_s,
                uses: rule.uses,
            };
            (request, digest)
        };
        let wait = Duration::from_secs(rule.max_wait_s);
        self.approval = Some(Approval {
            deadline_nanos: self.now_nanos() + wait.as_nanos() as u64,
            rule,
            rule_id,
            digest,
            call: None,
            ticket: None,
        });
        let body = serde_json::to_vec(&request).unwrap_or_default();
        self.call_service(Phase::Open, TICKETS_PATH.into(), "POST", Some(&body), 0)
    }

    /// Sends one call to the approval service; a call the cluster refuses is a 503.
    fn call_service(
        &mut self,
        phase: Phase,
        path: String,
        method: &str,
        body: Option<&[u8]>,
        wait_s: u64,
    ) -> Action {
        let shared = self.shared.clone();
        let Some(service) = &shared.config.approval else {
            return Action::Pause;
        };
        let request_id = self
            .exchange
            .as_ref()
            .map(|x| x.request_id().to_string())
            .unwrap_or_default();
        let mut headers = vec![
            (":method", method),
            (":path", path.as_str()),
            (":authority", service.authority.as_str()),
            ("accept", "application/json"),
            ("x-request-id", request_id.as_str()),
        ];
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        if let Some(key) = &shared.approval_key {
            headers.push((FILTER_KEY_HEADER, key.as_str()));
        }
        // A long poll is held by the service for its wait: the call's own timeout comes on top.
        let timeout = Duration::from_millis(service.timeout_ms + wait_s * 1000);
        match self.dispatch_http_call(&service.cluster, headers, body, vec![], timeout) {
            Ok(token) => {
                if let Some(a) = self.approval.as_mut() {
                    a.call = Some((token, phase));
                }
                ctx_log!(
                    debug,
                    self.context_id,
                    "approval: {:?} call {} to cluster {}",
                    phase,
                    path,
                    service.cluster
                );
                Action::Pause
            }
            Err(status) => self.approval_failed(CalloutFault::NotDispatched(format!(
                "cluster {} refused the call ({status:?})",
                service.cluster
            ))),
        }
    }

    /// Takes the answer to an approval call; false when the token is not one.
    pub(super) fn approval_answered(
        &mut self,
        token: u32,
        num_headers: usize,
        body_size: usize,
    ) -> bool {
        let Some(approval) = self.approval.as_mut() else {
            return false;
        };
        let Some((expected, phase)) = approval.call else {
            return false;
        };
        if expected != token {
            return false;
        }
        approval.call = None;
        let digest = approval.digest.clone();
        // A reset arrives with no headers (Envoy `onFailure`); everything else as a response.
        let answer = if num_headers == 0 {
            Err(CalloutFault::Reset)
        } else if body_size > MAX_ANSWER_BYTES {
            Err(CalloutFault::Unparseable(format!(
                "the answer is {body_size} bytes, over the {MAX_ANSWER_BYTES}-byte limit"
            )))
        } else {
            let status = self
                .get_http_call_response_header(":status")
                .and_then(|s| s.parse::<u16>().ok())
                .unwrap_or(0);
            let body = self
                .get_http_call_response_body(0, body_size)
                .unwrap_or_default();
            parse_answer(status, &body, &digest)
        };
        let action = match answer {
            Ok(ticket) => self.on_ticket(ticket, phase),
            Err(fault) => self.approval_failed(fault),
        };
        if action == Action::Continue {
            self.resume_http_request();
        }
        true
    }

    /// Acts on a well-formed ticket: resume (Continue), ask again (Pause), or refuse.
    fn on_ticket(&mut self, ticket: Ticket, phase: Phase) -> Action {
        let id = ticket.id.clone();
        let status = ticket.status;
        let granted = ticket.granted;
        let Some(approval) = self.approval.as_mut() else {
            return Action::Pause;
        };
        approval.ticket = Some(ticket);
        let mode = approval.rule.mode;
        let deadline = approval.deadline_nanos;
        let digest = approval.digest.clone();
        ctx_log!(
            debug,
            self.context_id,
            "approval: ticket {} is {} ({:?})",
            id,
            status.name(),
            phase
        );
        if phase == Phase::Consume {
            if granted {
                self.note_approval("approved", None);
                policy::count(&self.shared, "vigil.approval.granted");
                return Action::Continue;
            }
            return match status {
                Status::Denied => self.refuse_approval("approval_denied", "denied"),
                Status::Expired => self.refuse_approval("approval_expired", "expired"),
                _ => self.refuse_approval("approval_used", "used"),
            };
        }
        match status {
            Status::Approved => {
                let request_id = self
                    .exchange
                    .as_ref()
                    .map(|x| x.request_id().to_string())
                    .unwrap_or_default();
                let body = serde_json::to_vec(&ConsumeRequest {
                    request_digest: digest,
                    request_id,
                })
                .unwrap_or_default();
                self.call_service(Phase::Consume, consume_path(&id), "POST", Some(&body), 0)
            }
            Status::Pending => {
                let now = self.now_nanos();
                if mode == ApprovalMode::Wait && now < deadline {
                    let left_s = (deadline - now).div_ceil(1_000_000_000);
                    let wait_s = left_s.clamp(1, MAX_POLL_WAIT_S);
                    self.note_approval("pending", None);
                    return self.call_service(
                        Phase::Poll,
                        status_path(&id, &digest, wait_s),
                        "GET",
                        None,
                        wait_s,
                    );
                }
                self.refuse_approval("approval_pending", "pending")
            }
            Status::Denied => self.refuse_approval("approval_denied", "denied"),
            Status::Expired => self.refuse_approval("approval_expired", "expired"),
            Status::Consumed => self.refuse_approval("approval_used", "used"),
        }
    }

    fn note_approval(&mut self, status: &str, fault: Option<&CalloutFault>) {
        let Some(a) = self.approval.as_ref() else {
            return;
        };
        let trace = a.trace(status, fault);
        if let Some(x) = self.exchange.as_mut() {
            x.set_approval(trace);
        }
    }

    /// 403 for a request whose approval is not (or no longer) there.
    fn refuse_approval(&mut self, code: &str, status: &str) -> Action {
        let shared = self.shared.clone();
        let Some(a) = self.approval.as_ref() else {
            return Action::Pause;
        };
        let approvers = a.rule.approvers.join(", ");
        let rule_id = a.rule_id.clone();
        let ticket = a.ticket.clone();
        let max_wait = a.rule.max_wait_s;
        let mode = a.rule.mode;
        let message = match (code, &ticket) {
            ("approval_pending", Some(t)) if mode == ApprovalMode::Wait => format!(
                "no member of {approvers} decided ticket {} within {max_wait} s; send the same request again once it is approved",
                t.id
            ),
            ("approval_pending", Some(t)) => format!(
                "this request needs approval by a member of {approvers}: ticket {} is open; send the same request again once it is approved",
                t.id
            ),
            ("approval_denied", Some(t)) => format!(
                "ticket {} was denied by {}: {}",
                t.id,
                t.approver.as_deref().unwrap_or("an approver"),
                t.reason.as_deref().unwrap_or("no reason given")
            ),
            ("approval_expired", Some(t)) => format!(
                "ticket {} expired at {} without being used",
                t.id, t.expires_at
            ),
            (_, Some(t)) => format!(
                "ticket {}'s approval has been used as many times as the rule allows",
                t.id
            ),
            _ => "the request needs approval".to_string(),
        };
        let mut refusal = Refusal::new(403, code, message).for_rule(rule_id);
        if let Some(t) = &ticket {
            refusal = refusal
                .with_detail("ticket_id", json!(t.id))
                .with_detail("ticket_status", json!(t.status.name()))
                .with_detail("expires_at", json!(t.expires_at));
            if let Some(url) = shared
                .config
                .approval
                .as_ref()
                .and_then(|s| s.follow_url.as_ref())
            {
                refusal = refusal.with_detail("follow_url", json!(format!("{url}{}", t.id)));
            }
        }
        self.note_approval(status, None);
        policy::count(&shared, &format!("vigil.approval.{status}"));
        self.refuse_for_approval(refusal)
    }

    /// 503 for a service that gave no usable answer: fail closed, and say why.
    fn approval_failed(&mut self, fault: CalloutFault) -> Action {
        ctx_log!(
            warn,
            self.context_id,
            "approval: {} ({})",
            fault,
            fault.code()
        );
        self.note_approval("error", Some(&fault));
        policy::count(&self.shared, &format!("vigil.approval.{}", fault.code()));
        let rule_id = self.approval.as_ref().and_then(|a| a.rule_id.clone());
        let refusal = Refusal::new(
            503,
            fault.code(),
            format!("{fault}; a request that needs approval is refused until the service answers"),
        )
        .for_rule(rule_id);
        self.refuse_for_approval(refusal)
    }

    /// Refuses, keeping the record's decision `require_approval` with the refusal as reason.
    fn refuse_for_approval(&mut self, refusal: Refusal) -> Action {
        if let Some(x) = self.exchange.as_mut() {
            x.refuse_keeping_action(refusal.reason());
        }
        self.send_refusal(&refusal)
    }
}
