//! The gate: one exchange's decision as one explicit state machine. Identity, then model
//! access, then the rules, then (when a rule asks) a human's approval; then the request is
//! admitted or refused, and the answer is masked, filtered and recorded on its way back.
//!
//! The gate is pure. The filter turns each proxy-wasm callback into an event here (request
//! headers, a body chunk, trailers, a key set settled, the approval service's answer, the
//! response's parts, the end of the exchange) and carries out the [`Step`]s the gate returns,
//! in order, then does what [`Flow`] says. `vigil policy check --explain` runs the same gate
//! on a sample request and prints its trace, and the tests run it natively and through
//! `vigil.wasm`, so what is explained, tested and run is one thing.
//!
//! The phases and their transitions are drawn in docs/gate.md.

mod admission;
mod approval;
pub mod refusal;
mod response;
#[doc(hidden)]
pub mod twin;

pub use approval::{read_answer, ServiceCall, MAX_ANSWER_BYTES};
pub use refusal::{FaultCode, Refusal, RefusalCode};

use crate::config::PluginConfig;
use crate::exchange::ExchangeLog;
use crate::identity::verifier::Verifier;
use crate::identity::Identity;
use crate::masking::exchange::ExchangeMasking;
use crate::record::{RecordChain, RecordKey, Route, SessionRecord};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Where one exchange stands. Each event moves it at most one way; see docs/gate.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Nothing seen yet.
    Start,
    /// Request headers paused until provider `0`'s key set is fetched.
    HeldForKeys(usize),
    /// The body is buffered to decide at its end; the headers are held with it
    /// (`envoy.hold_request_headers`) or went on before it (older Envoy).
    AwaitingBody,
    /// Paused while the approval service decides.
    AwaitingApproval,
    /// The request goes (or went) to the model server.
    Admitted,
    /// Vigil answered the request itself.
    Refused,
    /// The record is written; later events change nothing.
    Sealed,
}

/// What the filter does with the callback once the steps are carried out. In a callback
/// that can pause (request and response callbacks) this is its return; after an answer that
/// came outside them (key set, approval service), `Continue` means resume the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Pause,
}

/// Log levels of the gate's notes, as Envoy's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
}

/// One thing the filter does for the gate.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Set (`Some`) or remove (`None`) a request header.
    RequestHeader(Cow<'static, str>, Option<Cow<'static, str>>),
    /// Set or remove a response header (while response headers are reachable).
    ResponseHeader(&'static str, Option<String>),
    /// Replace the first `1` bytes of the body this callback sees (the bytes the gate read:
    /// a chunk, or all that was buffered) with `0` (masked request, masked or filtered answer).
    ReplaceBody(Vec<u8>, usize),
    /// Fetch provider `0`'s key set; the request stays held until `keys_settled`.
    FetchKeys(usize),
    /// Call the approval service; its answer goes to `approval_answer`.
    CallApproval(ServiceCall),
    /// Answer the client with this refusal (a local reply).
    Refuse(Box<Refusal>),
    /// Add to a counter Envoy exports.
    Count(String, i64),
    /// Seal the session record now (`Gate::seal`): this is the exchange's last event.
    /// `complete` is false when the exchange ended before the response did.
    Seal { complete: bool },
    /// A line for the log (and for `--explain`).
    Note(Level, String),
}

/// The gate's answer to one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub steps: Vec<Step>,
    pub flow: Flow,
}

/// Values the filter holds for the gate and never logs.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    /// The header value carrying the upstream credential (prefix included).
    pub credential: Option<String>,
    /// The key the filter presents to the approval service.
    pub approval_key: Option<String>,
}

/// Where the caller's identity comes from.
pub enum Callers<'a> {
    /// Verify the request's token (the filter).
    Verify(&'a mut Verifier),
    /// Take this identity as verified (`--explain` on a sample request).
    Given(Option<Identity>),
}

/// What outlives the exchange, lent to the gate for one event.
pub struct Cx<'a> {
    pub config: &'a PluginConfig,
    pub callers: Callers<'a>,
    pub secrets: &'a Secrets,
    /// The clock, read only by events that need the time (each read is a host call).
    pub clock: &'a dyn Fn() -> u64,
    /// Write `Debug` notes (the filter's log level allows them, or `--explain`).
    pub verbose: bool,
}

impl Cx<'_> {
    pub fn now_nanos(&self) -> u64 {
        (self.clock)()
    }

    fn now_secs(&self) -> i64 {
        (self.now_nanos() / 1_000_000_000) as i64
    }
}

/// The request line and where it came from, read at request headers.
pub struct RequestStart {
    pub route: Route,
    pub request_id: String,
    pub client_address: Option<String>,
}

/// A sealed record: the record, its JSON bytes, and the values masked per entity.
pub struct Sealed {
    pub record: SessionRecord,
    pub bytes: Vec<u8>,
    pub masked: BTreeMap<String, u64>,
}

/// One exchange through Vigil.
pub struct Gate {
    phase: Phase,
    log: ExchangeLog,
    /// The request path as the model server routes it (percent-decoded, dot segments and
    /// repeated slashes resolved), and the raw query: rules and model access read these.
    path: String,
    query: Option<String>,
    /// The values of `config.decision_headers`, in that order (token headers while held, the
    /// model header, headers rules test): Envoy's are unreachable after their own callback.
    headers: Vec<Option<String>>,
    /// The request had no body (end of stream at its headers).
    bodyless: bool,
    /// The model is named in the body.
    model_in_body: bool,
    /// The model is named in a header, and the body (which the server reads) must agree.
    model_in_header: bool,
    /// A model list request: its answer is filtered to the caller's models.
    list_request: bool,
    response: response::Plan,
    masking: ExchangeMasking,
    approval: Option<approval::Asking>,
    /// The request headers went on to the model server (admitted, or early without hold).
    headers_forwarded: bool,
    /// They went on before the decision (Envoy without header hold).
    forwarded_before_decision: bool,
    /// Vigil replied while the answer's headers were held: Envoy sends that reply straight to
    /// the client, so the record is sealed with it.
    refused_at_response: bool,
    /// A body that ended while the request was held for a key set (header hold only).
    held_body: Option<Vec<u8>>,
    /// Reads what the call consumed from the model server's answer (crate::usage).
    usage: Option<crate::usage::UsageScanner>,
    /// Vigil added `stream_options.include_usage` to the request, so the usage event the
    /// server adds is kept from the client (`usage_filter`).
    asked_stream_usage: bool,
    usage_filter: Option<crate::usage::UsageEventFilter>,
    steps: Vec<Step>,
}

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

impl Gate {
    pub fn new() -> Self {
        Self {
            phase: Phase::Start,
            log: ExchangeLog::new(
                0,
                Route {
                    method: String::new(),
                    path: String::new(),
                    authority: String::new(),
                },
                String::new(),
                None,
            ),
            path: String::new(),
            query: None,
            headers: Vec::new(),
            bodyless: false,
            model_in_body: false,
            model_in_header: false,
            list_request: false,
            response: response::Plan::Pass,
            masking: ExchangeMasking::default(),
            approval: None,
            headers_forwarded: false,
            forwarded_before_decision: false,
            refused_at_response: false,
            held_body: None,
            usage: None,
            asked_stream_usage: false,
            usage_filter: None,
            steps: Vec::new(),
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn request_id(&self) -> &str {
        self.log.request_id()
    }

    /// What the record will say so far (for tests and `--explain`).
    pub fn log(&self) -> &ExchangeLog {
        &self.log
    }

    fn note(&mut self, cx: &Cx<'_>, level: Level, message: impl FnOnce() -> String) {
        if level > Level::Debug || cx.verbose {
            self.steps.push(Step::Note(level, message()));
        }
    }

    fn count(&mut self, name: String) {
        self.steps.push(Step::Count(name, 1));
    }

    fn reply(&mut self, flow: Flow) -> Reply {
        Reply {
            steps: std::mem::take(&mut self.steps),
            flow,
        }
    }

    /// Refuses the request: the local reply, the record's reason, and the phase.
    fn refuse(&mut self, cx: &Cx<'_>, refusal: Refusal) -> Reply {
        self.log.refuse(refusal.rule_id.clone(), refusal.reason());
        self.refuse_as_recorded(cx, refusal)
    }

    /// Refuses without changing the record's decision (the caller has written it).
    fn refuse_as_recorded(&mut self, cx: &Cx<'_>, refusal: Refusal) -> Reply {
        self.log.answered_locally();
        if self.forwarded_before_decision {
            self.log.headers_went_early();
        }
        self.note(cx, Level::Info, || {
            format!("refused with {}: {}", refusal.status, refusal.reason())
        });
        self.phase = Phase::Refused;
        self.steps.push(Step::Refuse(Box::new(refusal)));
        self.reply(Flow::Pause)
    }

    /// Event: request headers. `header` reads them while this callback runs.
    pub fn request_headers(
        &mut self,
        cx: &mut Cx<'_>,
        start: RequestStart,
        header: &dyn Fn(&str) -> Option<String>,
        end_of_stream: bool,
    ) -> Reply {
        let mut route = start.route;
        let target = crate::path::normalize(&route.path);
        route.path = match &target {
            Ok(t) => t.for_record(),
            // Refused below; the record keeps the path as sent, its query redacted.
            Err(_) => crate::redact::target(&route.path),
        };
        self.log = ExchangeLog::new(
            cx.now_nanos(),
            route,
            crate::redact::request_id(&start.request_id),
            start.client_address,
        )
        .with_body_cap(cx.config.record.max_body_bytes)
        .with_sealing(cx.config.record.seal_to.is_some());
        match target {
            Ok(t) => (self.path, self.query) = (t.path, t.query),
            Err(why) => {
                return self.refuse(
                    cx,
                    Refusal::new(
                        400,
                        RefusalCode::AmbiguousPath,
                        format!("{why}; send the path plainly"),
                    ),
                )
            }
        }
        self.bodyless = end_of_stream;
        let masking = &cx.config.masking;
        if !masking.is_off() {
            self.masking
                .start_request(masking, header("content-type").as_deref());
            // Compressed answers cannot be inspected: ask for them uncompressed.
            self.steps.push(Step::RequestHeader(
                "accept-encoding".into(),
                Some("identity".into()),
            ));
            if masking.mask_request {
                self.steps
                    .push(Step::RequestHeader("content-length".into(), None));
            }
        }
        self.headers = cx
            .config
            .decision_headers
            .iter()
            .map(|n| header(n))
            .collect();
        self.identify(cx, true)
    }

    /// Event: the key-set fetch a held request waits for is over (keys or not).
    pub fn keys_settled(&mut self, cx: &mut Cx<'_>) -> Reply {
        if !matches!(self.phase, Phase::HeldForKeys(_)) {
            return self.reply(Flow::Pause);
        }
        self.identify(cx, false)
    }

    /// Event: a piece of the request body. `read` gives the body this callback sees (the
    /// whole buffered body when the gate buffered it).
    pub fn request_body(
        &mut self,
        cx: &mut Cx<'_>,
        body_size: usize,
        end_of_stream: bool,
        read: &dyn Fn() -> Vec<u8>,
    ) -> Reply {
        match self.phase {
            Phase::AwaitingBody => {
                if body_size > cx.config.max_request_body_bytes {
                    return self.refuse(cx, Refusal::body_too_large(cx.config));
                }
                if !end_of_stream {
                    // Buffer: the next callback sees everything so far.
                    return self.reply(Flow::Pause);
                }
                let body = read();
                self.decide_on_body(cx, &body)
            }
            Phase::Admitted => {
                let chunk = read();
                self.request_seen(cx, &chunk, end_of_stream);
                self.reply(Flow::Continue)
            }
            // Under header hold the body keeps coming while the key set loads: Envoy buffers
            // it; a body that ends first is kept for the decision.
            Phase::HeldForKeys(_) if end_of_stream => {
                if body_size > cx.config.max_request_body_bytes {
                    return self.refuse(cx, Refusal::body_too_large(cx.config));
                }
                self.held_body = Some(read());
                self.reply(Flow::Pause)
            }
            // Nothing passes a refused, held or undecided request.
            _ => self.reply(Flow::Pause),
        }
    }

    /// Event: request trailers. A body the gate was buffering is complete now.
    pub fn request_trailers(&mut self, cx: &mut Cx<'_>, read: &dyn Fn() -> Vec<u8>) -> Reply {
        match self.phase {
            Phase::AwaitingBody => {
                let body = read();
                self.decide_on_body(cx, &body)
            }
            Phase::Admitted => self.reply(Flow::Continue),
            Phase::HeldForKeys(_) => {
                self.held_body = Some(read());
                self.reply(Flow::Pause)
            }
            _ => self.reply(Flow::Pause),
        }
    }

    /// A piece of the request body on its way: its masked copy goes to the record, and with
    /// `mask_request` the model gets the masked bytes.
    fn request_seen(&mut self, cx: &Cx<'_>, chunk: &[u8], end: bool) {
        self.log.request_raw(chunk);
        let m = &cx.config.masking;
        match self.masking.request(m, chunk, end) {
            Some(masked) => {
                self.log.request_chunk(&masked);
                if m.mask_request {
                    self.steps.push(Step::ReplaceBody(masked, chunk.len()));
                }
            }
            None => self.log.request_chunk(chunk),
        }
    }

    /// Event: the end of the exchange as Envoy logs it (`on_log`). A held request must not
    /// be acted on later; a record not yet written is sealed as incomplete.
    pub fn ended(&mut self, cx: &Cx<'_>) -> Reply {
        if self.phase != Phase::Sealed {
            self.note(cx, Level::Info, || {
                "on_log: exchange ended before the response did; record marked incomplete".into()
            });
            if self.phase == Phase::AwaitingApproval {
                self.abandon_approval(cx);
                self.log.set_reason(format!(
                    "{}; the exchange ended before the approval was settled",
                    self.log.decision().reason
                ));
            }
            self.steps.push(Step::Seal { complete: false });
        }
        self.reply(Flow::Continue)
    }

    /// Seals the record, once: `complete` is false when the exchange ended before the
    /// response did. `details` are Envoy's response code details.
    #[allow(clippy::too_many_arguments)]
    pub fn seal(
        &mut self,
        config: &PluginConfig,
        now_nanos: u64,
        complete: bool,
        details: Option<String>,
        vm_id: &str,
        chain: &mut RecordChain,
        key: &RecordKey,
    ) -> Option<Sealed> {
        if self.phase == Phase::Sealed {
            return None;
        }
        if self.phase == Phase::Admitted && complete {
            self.note_envoy_answer(details.as_deref());
        }
        let mut found = self
            .usage
            .take()
            .map(|mut u| u.finish(!complete))
            .unwrap_or_default();
        found.stream_usage_added = self.asked_stream_usage;
        self.log.usage(found);
        self.phase = Phase::Sealed;
        let masked = self.masking.counts(&config.masking);
        self.log.masked(&masked);
        // A reply Vigil sent while the answer's headers were held replaced the upstream's
        // answer: the router's `via_upstream` no longer describes what the client got.
        self.log
            .response_details(details.filter(|_| !self.refused_at_response));
        let (record, bytes) = self
            .log
            .seal(now_nanos, complete, vm_id, config, chain, key);
        Some(Sealed {
            record,
            bytes,
            masked,
        })
    }
}

#[cfg(test)]
mod tests;
