//! What the filter observes of one exchange (route, client, bodies as they stream, status),
//! and the sealing of those observations into a chained [`SessionRecord`]. The filter only
//! feeds events in; everything that decides what a record says lives here.

use crate::config::PluginConfig;
use crate::digest::StreamDigest;
use crate::identity::Identity;
use crate::record::sealed::{associated_data, Payload, RawBody};
use crate::record::{
    BodySummary, Decision, DecisionAction, Outcome, PolicyRef, RecordChain, RecordKey,
    ResponseSummary, Route, SessionRecord, RECORD_VERSION,
};
use crate::time::format_rfc3339_millis;
use std::collections::BTreeMap;

/// Default cap of each body copy in a record.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

/// A body's digest and length, and its first `cap` bytes. Bodies reach it masked, so
/// neither the copy nor the digest (which would let a short body be guessed) is of raw data.
#[derive(Clone, Default)]
struct BodyCopy {
    digest: StreamDigest,
    kept: RawBody,
    cap: usize,
    /// The body passes unmasked (unreadable, by policy): only its digest and length are
    /// kept, and `truncated` says the copy is not the body.
    withheld: bool,
}

impl BodyCopy {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            ..Self::default()
        }
    }

    fn update(&mut self, chunk: &[u8]) {
        self.digest.update(chunk);
        if self.withheld {
            self.kept.truncated |= !chunk.is_empty();
            return;
        }
        self.kept.feed(chunk, self.cap);
    }
}

/// The first bytes of a body as text, cut back to a whole character; a UTF-16 or UTF-32
/// body decoded.
pub fn copy_text(copy: &[u8]) -> String {
    if let Some(text) = crate::masking::wide::decode_copy(copy) {
        return text;
    }
    match std::str::from_utf8(copy) {
        Ok(s) => s.to_string(),
        Err(e) if e.error_len().is_none() => {
            String::from_utf8_lossy(&copy[..e.valid_up_to()]).into_owned()
        }
        Err(_) => String::from_utf8_lossy(copy).into_owned(),
    }
}

/// Observations of one exchange, from request headers to its end.
#[derive(Clone)]
pub struct ExchangeLog {
    started_nanos: u64,
    request_id: String,
    client_address: Option<String>,
    route: Route,
    request_body: BodyCopy,
    response_body: BodyCopy,
    masked: BTreeMap<String, u64>,
    status: Option<u16>,
    details: Option<String>,
    identity: Option<Identity>,
    model: Option<String>,
    decision: Decision,
    outcome: Outcome,
    approval: Option<crate::record::approval::ApprovalTrace>,
    headers_reached_upstream: bool,
    gen_ai: Option<crate::usage::GenAi>,
    /// The unmasked bodies, kept only when the policy seals payloads (`record.seal_to`).
    raw: Option<Box<Payload>>,
}

impl ExchangeLog {
    /// Starts the log at request headers.
    pub fn new(
        started_nanos: u64,
        route: Route,
        request_id: String,
        client_address: Option<String>,
    ) -> Self {
        Self {
            started_nanos,
            request_id,
            client_address,
            route,
            request_body: BodyCopy::new(DEFAULT_MAX_BODY_BYTES),
            response_body: BodyCopy::new(DEFAULT_MAX_BODY_BYTES),
            masked: BTreeMap::new(),
            status: None,
            details: None,
            identity: None,
            model: None,
            decision: Decision {
                action: DecisionAction::Allow,
                rule_id: None,
                reason: "no rules configured".into(),
                shadow: Vec::new(),
            },
            outcome: Outcome::Forwarded,
            approval: None,
            headers_reached_upstream: false,
            gen_ai: None,
            raw: None,
        }
    }

    /// What the call consumed, read from the answer.
    pub fn usage(&mut self, found: crate::usage::GenAi) {
        self.gen_ai = (!found.is_empty()).then_some(found);
    }

    /// When the exchange started (request headers), nanoseconds since the epoch.
    pub fn started_nanos(&self) -> u64 {
        self.started_nanos
    }

    /// The request's headers went on to the model server before the decision; a refused
    /// record says so.
    pub fn headers_went_early(&mut self) {
        self.headers_reached_upstream = true;
    }

    /// The caller, once a token verified.
    pub fn identify(&mut self, identity: Identity) {
        self.identity = Some(identity);
    }

    /// Records the rules' verdict (the action taken is recorded by `refuse` when it refuses).
    pub fn decide(&mut self, verdict: &crate::rules::Verdict) {
        self.decision = Decision {
            action: verdict.action.kind(),
            rule_id: verdict.rule_id.clone(),
            reason: verdict.reason.clone(),
            shadow: verdict
                .shadowed
                .iter()
                .map(|(id, action)| crate::record::ShadowMatch {
                    rule_id: id.clone(),
                    action: *action,
                })
                .collect(),
        };
    }

    /// The model the request names.
    /// The model the request names. Decisions read it as sent; the record keeps it only as a
    /// plain identifier, else as a digest (crate::redact).
    pub fn set_model(&mut self, model: &str) {
        self.model = Some(model.to_string());
    }

    pub fn method(&self) -> &str {
        &self.route.method
    }

    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The decision as the record will state it.
    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// Records that Vigil answered the request itself, refusing it for `reason`.
    pub fn refuse(&mut self, rule_id: Option<String>, reason: String) {
        let shadow = std::mem::take(&mut self.decision.shadow);
        self.decision = Decision {
            action: DecisionAction::Block,
            rule_id,
            reason,
            shadow,
        };
        self.outcome = Outcome::LocalResponse;
    }

    /// Records that Vigil answered the request itself, keeping the decision as recorded.
    pub fn answered_locally(&mut self) {
        self.outcome = Outcome::LocalResponse;
    }

    /// Replaces the decision's reason, keeping its action (a request that needed approval
    /// and did not get it stays `require_approval`, with the reason it was refused).
    pub fn set_reason(&mut self, reason: String) {
        self.decision.reason = reason;
    }

    /// The approval object as it stands.
    pub fn approval(&self) -> Option<&crate::record::approval::ApprovalTrace> {
        self.approval.as_ref()
    }

    /// What the approval service said about this request (ticket, approver, decision time).
    pub fn set_approval(&mut self, approval: crate::record::approval::ApprovalTrace) {
        self.approval = Some(approval);
    }

    /// How much of each (masked) body the record keeps.
    pub fn with_body_cap(mut self, cap: usize) -> Self {
        self.request_body.cap = cap;
        self.response_body.cap = cap;
        self
    }

    /// Keep the unmasked bodies too, up to the body cap, for a sealed payload.
    pub fn with_sealing(mut self, on: bool) -> Self {
        self.raw = on.then(Box::default);
        self
    }

    /// A chunk of the request body as the client sent it (for a sealed payload).
    pub fn request_raw(&mut self, chunk: &[u8]) {
        let cap = self.request_body.cap;
        if let Some(raw) = &mut self.raw {
            raw.request.feed(chunk, cap);
        }
    }

    /// A chunk of the answer as the model server sent it (for a sealed payload).
    pub fn response_raw(&mut self, chunk: &[u8]) {
        let cap = self.response_body.cap;
        if let Some(raw) = &mut self.raw {
            raw.response.feed(chunk, cap);
        }
    }

    /// A chunk of the request body, already masked.
    pub fn request_chunk(&mut self, chunk: &[u8]) {
        self.request_body.update(chunk);
    }

    /// A chunk of the response body as the client gets it (masked).
    pub fn response_chunk(&mut self, chunk: &[u8]) {
        self.response_body.update(chunk);
    }

    /// The response passes unmasked (a type or coding the maskers cannot read, passed by
    /// the policy): the record keeps its digest and length, never a copy.
    pub fn withhold_response_body(&mut self) {
        self.response_body.withheld = true;
        self.response_body.kept.body.clear();
    }

    /// Values masked, per entity name (added to what earlier calls reported).
    pub fn masked(&mut self, counts: &BTreeMap<String, u64>) {
        for (name, n) in counts {
            *self.masked.entry(name.clone()).or_default() += n;
        }
    }

    /// The `:status` the response headers carried (`None` when missing or not a number).
    pub fn response_status(&mut self, status: Option<&str>) {
        self.status = status.and_then(|s| s.parse().ok());
    }

    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// Envoy's response code details, read when the record is sealed.
    pub fn response_details(&mut self, details: Option<String>) {
        self.details = details.filter(|d| !d.is_empty());
    }

    /// Seals the observations into the next record of `chain`. `complete` is false when the
    /// exchange ended before the response did.
    pub fn seal(
        &self,
        ended_nanos: u64,
        complete: bool,
        vm_id: &str,
        policy: &PluginConfig,
        chain: &mut RecordChain,
        key: &RecordKey,
    ) -> (SessionRecord, Vec<u8>) {
        let mut record = SessionRecord {
            v: RECORD_VERSION,
            request_id: self.request_id.clone(),
            vm_id: vm_id.to_string(),
            seq: 0,
            prev_hash: String::new(),
            started_at: format_rfc3339_millis(self.started_nanos),
            ended_at: format_rfc3339_millis(ended_nanos),
            duration_ms: ended_nanos.saturating_sub(self.started_nanos) / 1_000_000,
            client_address: self.client_address.clone(),
            route: self.route.clone(),
            identity: self.identity.clone(),
            model: self.model.as_deref().map(crate::redact::model),
            decision: self.decision.clone(),
            approval: self.approval.clone(),
            outcome: self.outcome,
            complete,
            headers_reached_upstream: self.headers_reached_upstream
                && self.outcome == Outcome::LocalResponse,
            gen_ai: self.gen_ai.clone(),
            request: BodySummary {
                bytes: self.request_body.digest.bytes(),
                sha256: self.request_body.digest.hex(),
                body: copy_text(&self.request_body.kept.body),
                truncated: self.request_body.kept.truncated,
            },
            response: ResponseSummary {
                status: self.status,
                bytes: self.response_body.digest.bytes(),
                sha256: self.response_body.digest.hex(),
                body: copy_text(&self.response_body.kept.body),
                truncated: self.response_body.kept.truncated,
                details: self.details.clone(),
            },
            sealed: None,
            masked: self.masked.clone(),
            policy: PolicyRef {
                id: policy.id.clone(),
                version: policy.version.clone(),
                sha256: policy.sha256.clone(),
            },
            key_id: String::new(),
            hash: String::new(),
            hmac: String::new(),
        };
        if let (Some(to), Some(raw)) = (&policy.record.seal_to, &self.raw) {
            let seq = chain.next_seq();
            let aad = associated_data(vm_id, seq, &record.request_id, &record.started_at);
            record.sealed = Some(crate::record::sealed::seal(to, &aad, raw));
        }
        let json = chain.seal(&mut record, key);
        (record, json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::sha256_hex;

    fn route() -> Route {
        Route {
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            authority: "models".into(),
        }
    }

    #[test]
    fn a_sealed_exchange_carries_sizes_digests_times_and_policy() {
        let policy = PluginConfig::parse(br#"{"id":"p","version":"3"}"#).unwrap();
        let mut log = ExchangeLog::new(
            1_000_000_000,
            route(),
            "r".into(),
            Some("10.0.0.1:1".into()),
        );
        log.request_chunk(b"hel");
        log.request_chunk(b"lo");
        log.response_status(Some("201"));
        log.response_chunk(b"ok");
        let (r, _) = log.seal(
            1_250_000_000,
            true,
            "vm#1",
            &policy,
            &mut RecordChain::default(),
            &crate::record::chain::tests::test_key(),
        );
        assert_eq!(
            (r.request.bytes, r.request.sha256.as_str()),
            (5, sha256_hex(b"hello").as_str())
        );
        assert_eq!((r.response.status, r.response.bytes), (Some(201), 2));
        assert_eq!(
            (r.started_at.as_str(), r.duration_ms),
            ("1970-01-01T00:00:01.000Z", 250)
        );
        assert_eq!(
            (r.policy.id.as_str(), r.policy.version.as_str()),
            ("p", "3")
        );
        assert_eq!(r.hash, r.compute_hash());
    }

    #[test]
    fn a_status_that_is_not_a_number_is_recorded_as_absent() {
        let mut log = ExchangeLog::new(0, route(), String::new(), None);
        log.response_status(Some("2OO"));
        assert_eq!(log.status(), None);
    }
}
