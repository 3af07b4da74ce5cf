//! The way out: the answer's status for the record, a model list narrowed to the caller's
//! models, personal data masked as the body streams, and the record sealed at the last event
//! of the exchange the filter sees (end of the answer, its trailers, or a headers-only answer).
//!
//! Two answers come while the request is undecided. Envoy's own replies (its 413 for a body
//! over the stream's buffer limit, its 408/504 at the idle timeout) pass through the filter
//! chain, and the record says Envoy answered. The model server's answer to a request whose
//! headers went on early (no header hold) is withheld: the request was never admitted.
//!
//! A reply Vigil sends while the answer's headers are held goes straight to the client
//! (Envoy's `sendDirectLocalReply`), never back through this filter, so the record is
//! sealed with it, in the same callback.

use super::{Cx, Flow, Gate, Level, Phase, Refusal, RefusalCode, Reply, Step};
use crate::masking::exchange::ResponsePlan;

/// What happens to the answer's body, decided at its headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plan {
    /// Passed as it comes (masking off, binary, encoded and allowed to pass).
    Pass,
    /// Masked chunk by chunk.
    Mask,
    /// A model list: buffered whole, then narrowed to the caller's models.
    FilterList,
}

impl Gate {
    /// Event: response headers. `header` reads them while this callback runs.
    /// `details` reads Envoy's response code details (only for an answer to an undecided
    /// request).
    pub fn response_headers(
        &mut self,
        cx: &mut Cx<'_>,
        header: &dyn Fn(&str) -> Option<String>,
        details: &dyn Fn() -> Option<String>,
        end_of_stream: bool,
    ) -> Reply {
        if self.phase == Phase::Sealed {
            return self.reply(Flow::Continue);
        }
        let status = header(":status");
        self.log.response_status(status.as_deref());
        self.note(cx, Level::Debug, || {
            format!("on_http_response_headers: status {status:?}")
        });
        match self.phase {
            Phase::Start
            | Phase::HeldForKeys(_)
            | Phase::AwaitingBody
            | Phase::AwaitingApproval => {
                if let Some(reply) = self.answered_undecided(cx, status.as_deref(), details()) {
                    return reply;
                }
            }
            _ => {}
        }
        let masking = &cx.config.masking;
        if !end_of_stream && !self.list_request && self.asked_stream_usage {
            // The usage event Vigil asked for is kept from the client: the length changes.
            self.usage_filter = Some(crate::usage::UsageEventFilter::default());
            self.steps
                .push(Step::ResponseHeader("content-length", None));
        }
        if !end_of_stream && !self.list_request {
            // The framing comes from the body's first bytes: no header read for it.
            let operation = crate::usage::operation_name(&self.path);
            self.usage = Some(crate::usage::UsageScanner::new(
                crate::usage::Framing::None,
                operation,
            ));
        }
        if self.list_request && status.as_deref() == Some("200") && !end_of_stream {
            // Its length changes, so content-length goes (headers leave when this returns).
            self.response = Plan::FilterList;
            self.steps
                .push(Step::ResponseHeader("content-length", None));
        } else if !end_of_stream && !self.list_request && !masking.is_off() {
            let content_type = header("content-type");
            let encoding = header("content-encoding");
            match self
                .masking
                .plan_response(masking, content_type.as_deref(), encoding.as_deref())
            {
                ResponsePlan::Pass => {}
                ResponsePlan::Mask => {
                    // The length may change; Envoy re-frames the body (chunked or HTTP/2 DATA).
                    self.response = Plan::Mask;
                    self.steps
                        .push(Step::ResponseHeader("content-length", None));
                }
                ResponsePlan::PassEncoded(enc) => {
                    self.note(cx, Level::Warn, || format!(
                        "response body is {enc}-encoded and passes unmasked (masking.encoded_responses = pass)"
                    ));
                    self.count("vigil.masking.encoded_passed".into());
                    self.log.withhold_response_body();
                }
                ResponsePlan::PassUnreadable(ty) => {
                    self.note(cx, Level::Warn, || format!(
                        "response body of type {ty} passes unmasked (masking.content_types names it to pass)"
                    ));
                    self.count("vigil.masking.unreadable_passed".into());
                    self.log.withhold_response_body();
                }
                ResponsePlan::RefuseUnreadable(ty) => {
                    return self.refuse_uninspectable(cx, RefusalCode::UnmaskableResponse, format!(
                        "content type {ty}, which Vigil cannot inspect for personal data (masking.content_types can name it to pass or to mask as text)"
                    ));
                }
                ResponsePlan::RefuseEncoded(enc) => {
                    return self.refuse_uninspectable(
                        cx,
                        RefusalCode::EncodedResponse,
                        format!(
                            "content-encoding {enc}, which Vigil cannot inspect for personal data"
                        ),
                    );
                }
            }
        }
        if end_of_stream {
            self.steps.push(Step::Seal { complete: true });
        }
        self.reply(Flow::Continue)
    }

    /// 502 for an answer the maskers cannot read: `what` says what it came with.
    fn refuse_uninspectable(&mut self, cx: &Cx<'_>, code: RefusalCode, what: String) -> Reply {
        let refusal = Refusal::new(502, code, format!("the model answered with {what}"));
        self.log.refuse(None, refusal.reason());
        self.refuse_at_response(cx, refusal)
    }

    /// An answer while the request is undecided: Envoy's own reply passes and is recorded;
    /// the model server's answer to a request it should not have seen is withheld.
    fn answered_undecided(
        &mut self,
        cx: &Cx<'_>,
        status: Option<&str>,
        details: Option<String>,
    ) -> Option<Reply> {
        let status = status.unwrap_or("none");
        if details.as_deref() == Some("via_upstream") {
            let refusal = Refusal::new(
                502,
                RefusalCode::AnsweredBeforeDecision,
                format!("the model server answered ({status}) before Vigil decided on the request; its answer is withheld"),
            );
            self.log.refuse(None, refusal.reason());
            return Some(self.refuse_at_response(cx, refusal));
        }
        let why = details.as_deref().unwrap_or("no details");
        let waiting = match self.phase {
            Phase::AwaitingApproval => "while the request waited for approval",
            Phase::HeldForKeys(_) => "while the request waited for the key set",
            Phase::AwaitingBody => "while Vigil read the request body",
            _ => "before Vigil decided",
        };
        self.note(cx, Level::Info, || {
            format!("Envoy answered {status} ({why}) {waiting}")
        });
        let reason =
            format!("Envoy answered {status} ({why}) {waiting}; the request was not admitted");
        if self.forwarded_before_decision {
            self.log.headers_went_early();
        }
        if self.phase == Phase::AwaitingApproval {
            // The decision stays `require_approval`; the reason says how it ended.
            self.abandon_approval(cx);
            self.log.set_reason(reason);
            self.log.answered_locally();
        } else {
            self.log.refuse(None, reason);
        }
        self.phase = Phase::Refused;
        None
    }

    /// At sealing, for a request Vigil admitted: details other than the router's
    /// `via_upstream` on a complete exchange mean Envoy answered instead of the model server
    /// (its 413 prepared in the very callback that admitted the body, a router 503 when the
    /// upstream could not be reached or reset). The reason says so; the outcome becomes
    /// `local_response` only for details that mean the request never left Envoy. Read from
    /// the details the seal reads anyway, so an ordinary exchange pays nothing for it.
    pub(super) fn note_envoy_answer(&mut self, details: Option<&str>) {
        /// Envoy's response code details (envoy/stream_info/stream_info.h
        /// `ResponseCodeDetailValues`) for replies made before any upstream was asked.
        const NEVER_LEFT_ENVOY: &[&str] = &[
            "request_payload_too_large",
            "no_healthy_upstream",
            "cluster_not_found",
            "route_not_found",
            "maintenance_mode",
        ];
        let Some(why) = details.filter(|d| !d.is_empty() && *d != "via_upstream") else {
            return;
        };
        let status = self
            .log
            .status()
            .map_or_else(|| "none".to_string(), |s| s.to_string());
        let reason = format!(
            "{}; Envoy answered {status} ({why}) instead of the model server",
            self.log.decision().reason
        );
        self.log.set_reason(reason);
        if NEVER_LEFT_ENVOY.contains(&why) {
            self.log.answered_locally();
        }
    }

    /// Refuses while the answer's headers are held: Envoy sends the reply straight to the
    /// client, so this is the exchange's last event; the record says what the client got.
    fn refuse_at_response(&mut self, cx: &Cx<'_>, refusal: Refusal) -> Reply {
        self.refused_at_response = true;
        self.log.response_status(Some(&refusal.status.to_string()));
        let body = refusal.body(self.log.request_id());
        self.log.response_chunk(body.as_bytes());
        let mut reply = self.refuse_as_recorded(cx, refusal);
        reply.steps.push(Step::Seal { complete: true });
        reply
    }

    /// Event: a piece of the answer. `read` gives the body this callback sees (all of it so
    /// far while the gate buffers).
    pub fn response_body(
        &mut self,
        cx: &mut Cx<'_>,
        end_of_stream: bool,
        read: &dyn Fn() -> Vec<u8>,
    ) -> Reply {
        if self.phase == Phase::Sealed {
            return self.reply(Flow::Continue);
        }
        if self.response == Plan::FilterList {
            if !end_of_stream {
                return self.reply(Flow::Pause);
            }
            self.filter_list(cx, &read());
            self.steps.push(Step::Seal { complete: true });
            return self.reply(Flow::Continue);
        }
        let chunk = read();
        self.log.response_raw(&chunk);
        if let Some(usage) = &mut self.usage {
            if !chunk.is_empty() && usage.streams() {
                let ms = || cx.now_nanos().saturating_sub(self.log.started_nanos()) / 1_000_000;
                usage.first_chunk_with(ms);
            }
            usage.feed(&chunk);
        }
        // The chunk is replaced by what can be released (masked); text that may still be
        // part of a value waits for the next chunk (at most the hold-back bound).
        let masked = self
            .masking
            .response(&cx.config.masking, &chunk, end_of_stream);
        let released = match &mut self.usage_filter {
            Some(f) => Some(f.filter(masked.as_deref().unwrap_or(&chunk), end_of_stream)),
            None => masked,
        };
        match released {
            Some(out) => {
                self.log.response_chunk(&out);
                self.steps.push(Step::ReplaceBody(out, chunk.len()));
            }
            None => self.log.response_chunk(&chunk),
        }
        if end_of_stream {
            self.steps.push(Step::Seal { complete: true });
        }
        self.reply(Flow::Continue)
    }

    /// Event: response trailers: the body ended without end of stream.
    pub fn response_trailers(&mut self, cx: &mut Cx<'_>, read: &dyn Fn() -> Vec<u8>) -> Reply {
        if self.phase == Phase::Sealed {
            return self.reply(Flow::Continue);
        }
        match self.response {
            // The list was buffered (Envoy keeps a buffered body readable and writable in the
            // trailers callback), so it is filtered here like at a body's end.
            Plan::FilterList => self.filter_list(cx, &read()),
            // Text still held back (at most the hold-back bound) cannot be written any more:
            // Envoy only keeps a response body buffer in the trailers phase when the body was
            // buffered. It is dropped, never passed unmasked, and the drop counted.
            Plan::Mask => {
                let rest = self.masking.response(&cx.config.masking, &[], true);
                if let Some(rest) = rest.filter(|r| !r.is_empty()) {
                    self.note(cx, Level::Warn, || format!(
                        "response trailers came while {} bytes of body were held for masking; they are dropped",
                        rest.len()
                    ));
                    self.count("vigil.masking.dropped_at_trailers".into());
                }
            }
            Plan::Pass => {}
        }
        self.steps.push(Step::Seal { complete: true });
        self.reply(Flow::Continue)
    }

    /// The model list narrowed to the caller's models. A body that is not a list is not
    /// passed on whole: the caller gets an empty list (the status already went out).
    fn filter_list(&mut self, cx: &Cx<'_>, body: &[u8]) {
        self.log.response_raw(body);
        let filtered = cx
            .config
            .models
            .as_ref()
            .and_then(|m| m.filter_list(body, self.log.identity(), &cx.config.provider_names));
        let filtered = match filtered {
            Some(f) => f,
            None => {
                self.note(cx, Level::Warn, || {
                    "model list answer is not an OpenAI-style list; answering an empty list".into()
                });
                br#"{"object":"list","data":[]}"#.to_vec()
            }
        };
        self.log.response_chunk(&filtered);
        self.steps.push(Step::ReplaceBody(filtered, body.len()));
    }
}
