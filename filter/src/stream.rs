//! One HTTP exchange through the filter: identity, model access and rules on the way in,
//! masking on the way out, and the session record built as the exchange goes.
//!
//! When the record is written matters. Envoy's `setProperty` stores it in the stream's filter
//! state under `wasm.<name>` (source/extensions/common/wasm/context.cc, `Context::setProperty`,
//! `CelStateKeyPrefix = "wasm."`), where `%FILTER_STATE(wasm.vigil_record:PLAIN)%` reads it.
//! The HTTP connection manager's own access logs run before the filter hears the exchange is
//! over: the `ActiveStream` constructor registers `config_.accessLogs()` with
//! `filter_manager_.addAccessLogHandler` before the filter chain exists, the handlers run in
//! registration order, and `doDeferredStreamDestroy` calls `onStreamComplete()`, `log()` and
//! only then `destroyFilters()` (source/common/http/conn_manager_impl.cc); the Wasm context
//! overrides neither `onStreamComplete` (its `onDone` runs from `onDestroy`) nor comes before
//! the HCM loggers in `log()`. So:
//!
//! - the record is sealed and written at the last event of the exchange the filter sees (end
//!   of the response, its trailers, or a headers-only response);
//! - an exchange that never gets there (client gone, upstream reset mid-body) is sealed in
//!   `on_log`, too late for its own access-log line. Its record waits in the root and rides
//!   with the next record this VM writes, under `wasm.<name>_late` (a JSON array), so the
//!   chain stays whole and `vigil audit verify` finds it in sequence.

mod approval;

use crate::keys::{self, Waiting};
use crate::logging::ctx_log;
use crate::masking::{ExchangeMasking, ResponsePlan};
use crate::models::{self, ModelCheck};
use crate::policy;
use crate::refusal::Refusal;
use crate::root::Shared;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use std::rc::Rc;
use std::time::UNIX_EPOCH;
use vigil_core::access::ModelSource;
use vigil_core::exchange::ExchangeLog;
use vigil_core::identity::authenticate::authenticate;
use vigil_core::identity::AuthError;
use vigil_core::record::Route;

/// Records sealed after their access log ran, held for the next record to carry. Each is at
/// most two body caps plus a few KiB, so the queue stays within a few tens of MiB at the cap.
const MAX_LATE_RECORDS: usize = 256;

/// Why request headers cannot go on yet.
enum Hold {
    Refuse(Refusal),
    ForKeys,
}

pub struct VigilStream {
    context_id: u32,
    shared: Rc<Shared>,
    /// Set at request headers; every later callback feeds it.
    exchange: Option<ExchangeLog>,
    sealed: bool,
    /// The model is in the body: buffer it and decide at its end.
    awaiting_body: bool,
    /// A model list request: its answer is filtered to the caller's models.
    list_request: bool,
    /// The list answer is being buffered for filtering.
    filtering_response: bool,
    /// The model must be read from the body (the awaited body is also for the rules).
    model_in_body: bool,
    /// The request headers the rules refer to, saved while they are reachable.
    rule_headers: Vec<(String, Option<String>)>,
    /// Personal data masked in both bodies.
    masking: ExchangeMasking,
    /// The approval this request waits for, when its rule requires one.
    approval: Option<approval::Approval>,
}

impl VigilStream {
    pub fn new(context_id: u32, shared: Rc<Shared>) -> Self {
        Self {
            context_id,
            shared,
            exchange: None,
            sealed: false,
            awaiting_body: false,
            list_request: false,
            filtering_response: false,
            model_in_body: false,
            rule_headers: Vec::new(),
            masking: ExchangeMasking::default(),
            approval: None,
        }
    }

    fn now_nanos(&self) -> u64 {
        self.get_current_time()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    }

    fn property_string(&self, path: &str) -> Option<String> {
        self.get_property(path.split('.').collect())
            .and_then(|b| String::from_utf8(b).ok())
    }

    fn now_secs(&self) -> i64 {
        (self.now_nanos() / 1_000_000_000) as i64
    }

    /// Verifies the caller when the policy configures identity providers; on success the
    /// caller's token is removed and the upstream credential added. A request whose provider
    /// has no keys yet (or names a key a refetch may bring) is held for the fetch.
    fn check_identity(&mut self, end_of_stream: bool) -> Result<(), Hold> {
        let shared = self.shared.clone();
        let config = &shared.config;
        if !config.providers.is_empty() {
            let now = self.now_secs();
            let result = {
                let remote = shared.remote.borrow();
                authenticate(
                    &config.providers,
                    |name| self.get_http_request_header(name),
                    |i| keys::keys_of(&shared, &remote, i),
                    &mut shared.tokens.borrow_mut(),
                    now,
                )
            };
            let identity = match result {
                Ok(identity) => identity,
                Err(e) => {
                    return Err(self
                        .hold_for_keys(&e, now, end_of_stream)
                        .unwrap_or_else(|| Hold::Refuse(Refusal::unauthenticated(e))))
                }
            };
            ctx_log!(
                debug,
                self.context_id,
                "identity: {:?} via provider {}",
                identity.subject,
                identity.provider
            );
            // The caller's token never reaches the model server.
            for provider in &config.providers {
                self.set_http_request_header(&provider.from_header.name, None);
            }
            if let Some(exchange) = self.exchange.as_mut() {
                exchange.identify(identity);
            }
        }
        if let (Some(c), Some(value)) = (&config.upstream_credential, &shared.credential) {
            self.set_http_request_header(&c.header, Some(value));
        }
        Ok(())
    }

    /// Holds the request for a key-set fetch when that can help: the provider's remote keys
    /// are not loaded yet, or the token names a key a (rate-limited) refetch may bring.
    fn hold_for_keys(&mut self, e: &AuthError, now: i64, end_of_stream: bool) -> Option<Hold> {
        let index = e.provider?;
        let shared = self.shared.clone();
        let worth_fetching = {
            let mut remote = shared.remote.borrow_mut();
            let r = remote.get_mut(index)?.as_mut()?;
            match e.code {
                "keys_unavailable" => true,
                "unknown_key" => r.pending() || r.allow_kid_refetch(now),
                _ => false,
            }
        };
        if !worth_fetching {
            return None;
        }
        keys::request_fetch(&shared, index);
        let mut names: Vec<String> = shared
            .config
            .providers
            .iter()
            .map(|p| p.from_header.name.clone())
            .collect();
        if let Some(ModelSource::Header(h)) = shared.config.models.as_ref().map(|m| &m.source) {
            names.push(h.clone());
        }
        names.extend(shared.config.rules.header_names().iter().cloned());
        let headers = names
            .into_iter()
            .map(|n| {
                let v = self.get_http_request_header(&n);
                (n, v)
            })
            .collect();
        let (method, path) = self
            .exchange
            .as_ref()
            .map(|x| (x.method().to_string(), x.path().to_string()))
            .unwrap_or_default();
        let request_id = self
            .exchange
            .as_ref()
            .map(|x| x.request_id().to_string())
            .unwrap_or_default();
        shared.waiting.borrow_mut().push(Waiting {
            context_id: self.context_id,
            provider: index,
            headers,
            request_id,
            method,
            path,
            end_of_stream,
        });
        ctx_log!(
            debug,
            self.context_id,
            "held until the key set of provider {} arrives",
            shared.config.providers[index].name
        );
        Some(Hold::ForKeys)
    }

    /// Records the decision taken for this request while it was held, once.
    fn take_verdict(&mut self) {
        let Some(settled) = self.shared.verdicts.borrow_mut().remove(&self.context_id) else {
            return;
        };
        self.awaiting_body = settled.await_body;
        self.model_in_body = settled.model_in_body;
        self.list_request = settled.list;
        self.rule_headers = settled.rule_headers;
        if let Some(exchange) = self.exchange.as_mut() {
            match settled.identity {
                Ok(identity) => exchange.identify(identity),
                Err(e) => exchange.refuse(None, Refusal::unauthenticated(e).reason()),
            }
            if let Some(model) = &settled.model {
                exchange.set_model(model);
            }
            if let Some(reason) = settled.refusal {
                exchange.refuse(
                    settled.rules.as_ref().and_then(|v| v.rule_id.clone()),
                    reason,
                );
            }
            if let Some(verdict) = &settled.rules {
                exchange.decide(verdict);
            }
        }
    }

    /// The model list narrowed to the caller's models. A body that is not a list is not
    /// passed on whole: the caller gets an empty list (the status already went out).
    fn filter_model_list(&mut self, body: &[u8]) -> Vec<u8> {
        let identity = self.exchange.as_ref().and_then(|x| x.identity()).cloned();
        match self
            .shared
            .config
            .models
            .as_ref()
            .and_then(|m| m.filter_list(body, identity.as_ref()))
        {
            Some(filtered) => filtered,
            None => {
                ctx_log!(
                    warn,
                    self.context_id,
                    "model list answer is not an OpenAI-style list; answering an empty list"
                );
                br#"{"object":"list","data":[]}"#.to_vec()
            }
        }
    }

    /// Checks what the request headers say about the model (path, header, or a body to
    /// wait for); a model named now is admitted or denied at once.
    fn check_model(&mut self, end_of_stream: bool) -> Result<(), Refusal> {
        let shared = self.shared.clone();
        let Some(access) = &shared.config.models else {
            return Ok(());
        };
        let (method, path) = self
            .exchange
            .as_ref()
            .map(|x| (x.method().to_string(), x.path().to_string()))
            .unwrap_or_default();
        match models::from_headers(
            access,
            &method,
            &path,
            |name| self.get_http_request_header(name),
            end_of_stream,
        )? {
            ModelCheck::NotNeeded { list } => self.list_request = list,
            ModelCheck::AwaitBody => {
                self.awaiting_body = true;
                self.model_in_body = true;
            }
            ModelCheck::Named(model) => self.admit_model(&model)?,
        }
        Ok(())
    }

    /// Saves the headers the rules refer to, then either evaluates the rules now or, when a
    /// rule looks at the body, waits for it.
    fn check_rules_at_headers(&mut self, end_of_stream: bool) -> Action {
        let shared = self.shared.clone();
        let rules = &shared.config.rules;
        self.rule_headers = rules
            .header_names()
            .iter()
            .cloned()
            .map(|n| {
                let v = self.get_http_request_header(&n);
                (n, v)
            })
            .collect();
        if rules.needs_body() && !end_of_stream {
            self.awaiting_body = true;
        }
        if self.awaiting_body {
            return Action::Continue;
        }
        self.apply_rules(None, b"")
    }

    /// Evaluates the rules and acts on the verdict.
    fn apply_rules(&mut self, body: Option<&serde_json::Value>, raw: &[u8]) -> Action {
        let body_bytes = raw.len() as u64;
        let shared = self.shared.clone();
        let verdict = {
            let x = self.exchange.as_ref();
            let facts = policy::Facts {
                identity: x.and_then(|x| x.identity()),
                method: x.map(|x| x.method()).unwrap_or_default(),
                path: x.map(|x| x.path()).unwrap_or_default(),
                model: x.and_then(|x| x.model()),
                headers: &self.rule_headers,
                body,
                body_bytes,
            };
            policy::evaluate(&shared, &facts)
        };
        if let Some(x) = self.exchange.as_mut() {
            x.decide(&verdict);
        }
        if let vigil_core::rules::Action::RequireApproval(rule) = &verdict.action {
            return self.ask_approval(rule.clone(), verdict.rule_id.clone(), raw, body);
        }
        match policy::refusal(&verdict) {
            None => Action::Continue,
            Some(refusal) => {
                let action = self.refuse(refusal);
                // The record keeps the rules' own decision and reason (require_approval
                // stays so); the error body carries the block message.
                if let Some(x) = self.exchange.as_mut() {
                    x.decide(&verdict);
                }
                action
            }
        }
    }

    fn admit_model(&mut self, model: &str) -> Result<(), Refusal> {
        let shared = self.shared.clone();
        let Some(access) = &shared.config.models else {
            return Ok(());
        };
        let exchange = self.exchange.as_mut();
        let identity = exchange.as_ref().and_then(|x| x.identity()).cloned();
        if let Some(x) = exchange {
            x.set_model(model);
        }
        models::admit(access, model, identity.as_ref())
    }

    /// Decides on the whole buffered request body: the model it names, admitted or not.
    fn decide_on_body(&mut self, body: &[u8]) -> Action {
        self.awaiting_body = false;
        let shared = self.shared.clone();
        self.request_body_seen(body, body.len(), true);
        let rules = &shared.config.rules;
        let model_in_body = std::mem::take(&mut self.model_in_body);
        // One parse serves both the model check and the rules.
        let parsed = serde_json::from_slice::<serde_json::Value>(body);
        if model_in_body {
            if let Err(refusal) =
                models::from_body(parsed.as_ref()).and_then(|model| self.admit_model(&model))
            {
                return self.refuse(refusal);
            }
        }
        let parsed = match parsed {
            _ if !rules.needs_body() => None,
            Ok(v) => Some(v),
            Err(_) if rules.block_non_json => {
                return self.refuse(Refusal::new(
                    400,
                    "body_not_json",
                    "the policy inspects request bodies as JSON, and this one is not JSON",
                ));
            }
            Err(_) => None,
        };
        self.apply_rules(parsed.as_ref(), body)
    }

    /// Answers the request with the refusal and records why.
    fn refuse(&mut self, refusal: Refusal) -> Action {
        if let Some(exchange) = self.exchange.as_mut() {
            exchange.refuse(refusal.rule_id.clone(), refusal.reason());
        }
        self.send_refusal(&refusal)
    }

    /// Sends the refusal's answer to the client.
    fn send_refusal(&mut self, refusal: &Refusal) -> Action {
        let request_id = self
            .exchange
            .as_ref()
            .map(|e| e.request_id().to_string())
            .unwrap_or_default();
        ctx_log!(
            info,
            self.context_id,
            "refused with {}: {}",
            refusal.status,
            refusal.reason()
        );
        let body = refusal.body(&request_id);
        let headers: Vec<(&str, &str)> = refusal
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.send_http_response(refusal.status, headers, Some(body.as_bytes()));
        Action::Pause
    }

    /// A piece of the request body (the whole of it when buffered): its masked copy goes to
    /// the record, and with `mask_request` the model gets the masked bytes too.
    fn request_body_seen(&mut self, chunk: &[u8], body_size: usize, end: bool) {
        let shared = self.shared.clone();
        let m = &shared.config.masking;
        match self.masking.request(m, chunk, end) {
            Some(masked) => {
                if m.mask_request {
                    self.set_http_request_body(0, body_size, &masked);
                }
                if let Some(x) = self.exchange.as_mut() {
                    x.request_chunk(&masked);
                }
            }
            None => {
                if let Some(x) = self.exchange.as_mut() {
                    x.request_chunk(chunk);
                }
            }
        }
    }

    /// Decides at the response headers whether and how the body is masked.
    fn plan_masking(&mut self, end_of_stream: bool) -> Option<Action> {
        let shared = self.shared.clone();
        if end_of_stream || self.list_request || shared.config.masking.is_off() {
            return None;
        }
        let content_type = self.get_http_response_header("content-type");
        let encoding = self.get_http_response_header("content-encoding");
        match self.masking.plan_response(
            &shared.config.masking,
            content_type.as_deref(),
            encoding.as_deref(),
        ) {
            ResponsePlan::Pass => None,
            ResponsePlan::Mask => {
                // The length may change; Envoy re-frames the body (chunked or HTTP/2 DATA).
                self.set_http_response_header("content-length", None);
                None
            }
            ResponsePlan::PassEncoded(enc) => {
                ctx_log!(
                    warn,
                    self.context_id,
                    "response body is {}-encoded and passes unmasked (masking.encoded_responses = pass)",
                    enc
                );
                policy::count(&shared, "vigil.masking.encoded_passed");
                None
            }
            ResponsePlan::RefuseEncoded(enc) => Some(self.refuse(Refusal::new(
                502,
                "encoded_response",
                format!("the model answered with content-encoding {enc}, which Vigil cannot inspect for personal data"),
            ))),
        }
    }

    /// Seals the record and writes it to filter state, once. `complete` is false when the
    /// exchange ended before the response did (called from `on_log`, after the access log).
    fn seal_record(&mut self, complete: bool) {
        if self.sealed {
            return;
        }
        self.sealed = true;
        let now = self.now_nanos();
        // An exchange Envoy ended before request headers reached the filter still gets a
        // record: one with an empty route.
        let exchange = self.exchange.take().unwrap_or_else(|| {
            ExchangeLog::new(
                now,
                Route {
                    method: String::new(),
                    path: String::new(),
                    authority: String::new(),
                },
                String::new(),
                None,
            )
        });
        let shared = &self.shared;
        let mut exchange = exchange;
        let counts = self.masking.counts(&shared.config.masking);
        for (name, n) in &counts {
            policy::count_by(shared, &format!("vigil.masked.{name}"), *n as i64);
        }
        exchange.masked(&counts);
        exchange.response_details(self.property_string("response.code_details"));
        let (record, bytes) = exchange.seal(
            now,
            complete,
            &shared.vm_id,
            &shared.config,
            &mut shared.chain.borrow_mut(),
            &shared.record_key,
        );
        if !complete {
            // Too late for this exchange's access-log line: the next record carries it.
            self.hold_late(bytes, record.seq);
            return;
        }
        let property = shared.config.record.property.as_str();
        let late = std::mem::take(&mut *shared.late_records.borrow_mut());
        if !late.is_empty() {
            let mut array = Vec::with_capacity(late.iter().map(Vec::len).sum::<usize>() + 2);
            array.push(b'[');
            for (i, r) in late.iter().enumerate() {
                if i > 0 {
                    array.push(b',');
                }
                array.extend_from_slice(r);
            }
            array.push(b']');
            let late_property = format!("{property}_late");
            self.set_property(vec![late_property.as_str()], Some(&array));
        }
        self.set_property(vec![property], Some(&bytes));
        ctx_log!(
            debug,
            self.context_id,
            "session record seq {} hash {} written ({} late record(s) along)",
            record.seq,
            record.hash,
            late.len()
        );
    }

    /// Keeps a record sealed after its access log ran, for the next record to carry. The
    /// queue is bounded: past it, the record goes to Envoy's log in full (and the gap shows
    /// in `vigil audit verify`), never silently nowhere.
    fn hold_late(&self, bytes: Vec<u8>, seq: u64) {
        let mut late = self.shared.late_records.borrow_mut();
        if late.len() >= MAX_LATE_RECORDS {
            drop(late);
            policy::count(&self.shared, "vigil.records.late_overflow");
            ctx_log!(
                warn,
                self.context_id,
                "late record queue full; session record seq {} only in this log line: {}",
                seq,
                String::from_utf8_lossy(&bytes)
            );
            return;
        }
        late.push(bytes);
        ctx_log!(
            debug,
            self.context_id,
            "session record seq {} sealed after the access log; it rides with the next record",
            seq
        );
    }
}

// Key-set fetches are dispatched by the root; a stream's own callouts are its approval calls.
impl Context for VigilStream {
    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        if !self.approval_answered(token, num_headers, body_size) {
            ctx_log!(
                warn,
                self.context_id,
                "answer to unknown callout {} ignored",
                token
            );
        }
    }
}

impl HttpContext for VigilStream {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let header = |name: &str| self.get_http_request_header(name).unwrap_or_default();
        let route = Route {
            method: header(":method"),
            path: header(":path"),
            authority: header(":authority"),
        };
        let request_id = self
            .get_http_request_header(&self.shared.config.record.request_id_header)
            .or_else(|| self.property_string("request.id"))
            .unwrap_or_default();
        ctx_log!(
            debug,
            self.context_id,
            "on_http_request_headers: {} {} request_id={}",
            route.method,
            route.path,
            request_id
        );
        let shared = self.shared.clone();
        self.exchange = Some(
            ExchangeLog::new(
                self.now_nanos(),
                route,
                request_id,
                self.property_string("source.address"),
            )
            .with_body_cap(shared.config.record.max_body_bytes),
        );
        let masking = &shared.config.masking;
        if !masking.is_off() {
            let content_type = self.get_http_request_header("content-type");
            self.masking.start_request(masking, content_type.as_deref());
            // Compressed answers cannot be inspected: ask for them uncompressed.
            self.set_http_request_header("accept-encoding", Some("identity"));
            if masking.mask_request {
                self.set_http_request_header("content-length", None);
            }
        }
        match self.check_identity(end_of_stream) {
            Ok(()) => {}
            Err(Hold::Refuse(refusal)) => return self.refuse(refusal),
            Err(Hold::ForKeys) => return Action::Pause,
        }
        match self.check_model(end_of_stream) {
            Ok(()) => self.check_rules_at_headers(end_of_stream),
            Err(refusal) => self.refuse(refusal),
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.take_verdict();
        if self.awaiting_body {
            let limit = self.shared.config.max_request_body_bytes;
            if body_size > limit {
                self.awaiting_body = false;
                return self.refuse(Refusal::new(
                    413,
                    "body_too_large",
                    format!("the request body is over the {limit}-byte limit for inspection"),
                ));
            }
            if !end_of_stream {
                // Buffer: the next callback sees everything so far (StopIterationAndBuffer).
                return Action::Pause;
            }
            let body = self.get_http_request_body(0, body_size).unwrap_or_default();
            return self.decide_on_body(&body);
        }
        // With Continue, each callback's buffer holds only this chunk (Envoy's decodeData).
        let chunk = self.get_http_request_body(0, body_size).unwrap_or_default();
        self.request_body_seen(&chunk, body_size, end_of_stream);
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.take_verdict();
        let status = self.get_http_response_header(":status");
        if let Some(exchange) = self.exchange.as_mut() {
            exchange.response_status(status.as_deref());
        }
        ctx_log!(
            debug,
            self.context_id,
            "on_http_response_headers: status {:?}",
            status
        );
        // A model list the caller asked for is filtered to the models they may use; its
        // length changes, so content-length goes (headers leave when this returns).
        if self.list_request && status.as_deref() == Some("200") && !end_of_stream {
            self.filtering_response = true;
            self.set_http_response_header("content-length", None);
        }
        if let Some(action) = self.plan_masking(end_of_stream) {
            return action;
        }
        if end_of_stream {
            self.seal_record(true);
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.filtering_response {
            if !end_of_stream {
                return Action::Pause;
            }
            self.filtering_response = false;
            let body = self
                .get_http_response_body(0, body_size)
                .unwrap_or_default();
            let filtered = self.filter_model_list(&body);
            self.set_http_response_body(0, body_size, &filtered);
            if let Some(exchange) = self.exchange.as_mut() {
                exchange.response_chunk(&filtered);
            }
            self.seal_record(true);
            return Action::Continue;
        }
        let chunk = self
            .get_http_response_body(0, body_size)
            .unwrap_or_default();
        let shared = self.shared.clone();
        let out = match self
            .masking
            .response(&shared.config.masking, &chunk, end_of_stream)
        {
            Some(masked) => {
                // The chunk is replaced by what can be released; text that may still be part
                // of a value waits for the next chunk (at most the hold-back bound).
                self.set_http_response_body(0, body_size, &masked);
                masked
            }
            None => chunk,
        };
        if let Some(exchange) = self.exchange.as_mut() {
            exchange.response_chunk(&out);
        }
        if end_of_stream {
            self.seal_record(true);
        }
        Action::Continue
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.take_verdict();
        if self.awaiting_body {
            // The body ended without end_of_stream: it is all buffered now.
            let body = self
                .get_http_request_body(0, usize::MAX)
                .unwrap_or_default();
            return self.decide_on_body(&body);
        }
        Action::Continue
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        // The body ended without end_of_stream. Text still held back (at most the hold-back
        // bound) cannot be written any more: the proxy-wasm SDK panics on a refused
        // set_buffer, and Envoy only keeps a response body buffer in the trailers phase when
        // the body was buffered. It is dropped, never passed unmasked, and the drop counted.
        let shared = self.shared.clone();
        if self.masking.masking_response() {
            if let Some(rest) = self.masking.response(&shared.config.masking, &[], true) {
                if !rest.is_empty() {
                    ctx_log!(
                        warn,
                        self.context_id,
                        "response trailers came while {} bytes of body were held for masking; they are dropped",
                        rest.len()
                    );
                    policy::count(&shared, "vigil.masking.dropped_at_trailers");
                }
            }
        }
        self.seal_record(true);
        Action::Continue
    }

    fn on_log(&mut self) {
        self.take_verdict();
        // A held request that ends (client gone) must not be acted on later.
        self.shared
            .waiting
            .borrow_mut()
            .retain(|w| w.context_id != self.context_id);
        if !self.sealed {
            ctx_log!(
                info,
                self.context_id,
                "on_log: exchange ended before the response did; record marked incomplete"
            );
        }
        self.seal_record(false);
    }
}

/// Stands in for a stream when the plugin has no valid configuration: fails closed.
pub struct Unconfigured {
    pub context_id: u32,
}

impl Context for Unconfigured {}

impl HttpContext for Unconfigured {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        ctx_log!(
            error,
            self.context_id,
            "on_http_request_headers: plugin is not configured; refusing with 503"
        );
        self.send_http_response(
            503,
            vec![("content-type", "application/json")],
            Some(br#"{"error":{"code":"not_configured","message":"the Vigil plugin has no valid configuration"}}"#),
        );
        Action::Pause
    }
}
