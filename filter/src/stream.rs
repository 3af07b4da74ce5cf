//! One HTTP exchange: each proxy-wasm callback becomes an event of the stream's gate
//! (vigil_core::gate), and the gate's steps are carried out (steps.rs). Nothing is decided
//! here.
//!
//! When the record is written matters. Envoy's `setProperty` stores it in the stream's filter
//! state under `wasm.<name>` (source/extensions/common/wasm/context.cc, `Context::setProperty`,
//! `CelStateKeyPrefix = "wasm."`), where `%FILTER_STATE(wasm.vigil_record:PLAIN)%` reads it.
//! Since Envoy 1.32 the filters' log handlers, this filter's `on_log` among them, run before
//! the connection manager's access logs (source/common/http/conn_manager_impl.cc
//! `ActiveStream::log`; changelogs 1.32.0 and 1.35.0). So:
//!
//! - the record is sealed and written at the last event of the exchange the filter sees (end
//!   of the response, its trailers, a headers-only response, or a reply Vigil sends while the
//!   answer's headers are held): it survives even a later trap of the VM, which stops
//!   `on_log` (docs/envoy-behaviour.md);
//! - an exchange that never gets there (client gone, upstream reset, Envoy's idle timeout) is
//!   sealed in `on_log`, in time for its own access-log line.
//!
//! With `envoy.hold_request_headers` (the plugin config's `allow_on_headers_stop_iteration`,
//! Envoy 1.35+) a request whose body decides is held at its headers while the body is read;
//! the credential is added only once it is admitted. Without it Envoy would turn that Pause
//! into StopAllIterationAndWatermark and withhold the body too, so the headers go on first
//! and a refusal at the end of the body is a local reply that resets the upstream request
//! (the record says the headers reached the model server).

use crate::logging::ctx_log;
use crate::plugin::Plugin;
use crate::steps::{self, carry_out, Carried, Within};
use crate::waits::SharedGate;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType};
use std::cell::RefCell;
use std::rc::Rc;
use vigil_core::gate::{Cx, Gate, Refusal, RefusalCode, Reply, RequestStart};
use vigil_core::record::Route;

pub struct VigilStream {
    context_id: u32,
    plugin: Rc<Plugin>,
    gate: SharedGate,
    /// The approval call in flight that this stream dispatched.
    call: Option<u32>,
}

impl VigilStream {
    pub fn new(context_id: u32, plugin: Rc<Plugin>) -> Self {
        Self {
            context_id,
            plugin,
            gate: Rc::new(RefCell::new(Gate::new())),
            call: None,
        }
    }

    /// Feeds the gate one event and carries out its reply in this callback.
    fn event(
        &self,
        body: Option<BufferType>,
        f: impl FnOnce(&mut Gate, &mut Cx<'_>) -> Reply,
    ) -> Carried {
        let reply = self.plugin.with_cx(|cx| f(&mut self.gate.borrow_mut(), cx));
        carry_out(
            &self.plugin,
            self.context_id,
            &self.gate,
            reply,
            Within::Callback { body },
        )
    }

    /// The callback's action; an approval call dispatched is remembered for its answer.
    fn act(&mut self, carried: Carried) -> Action {
        if carried.call.is_some() {
            self.call = carried.call;
        }
        carried.action
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
        if self.call != Some(token) {
            ctx_log!(
                warn,
                self.context_id,
                "answer to unknown callout {} ignored",
                token
            );
            return;
        }
        self.call = None;
        let answer = steps::callout_answer(num_headers, body_size);
        let reply = self
            .plugin
            .with_cx(|cx| self.gate.borrow_mut().approval_answer(cx, answer));
        let carried = carry_out(
            &self.plugin,
            self.context_id,
            &self.gate,
            reply,
            Within::Answer,
        );
        self.call = carried.call;
    }
}

impl HttpContext for VigilStream {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let header = |name: &str| self.get_http_request_header(name);
        let start = RequestStart {
            route: Route {
                method: header(":method").unwrap_or_default(),
                path: header(":path").unwrap_or_default(),
                authority: header(":authority").unwrap_or_default(),
            },
            request_id: header(&self.plugin.config.record.request_id_header)
                .or_else(|| steps::property_string("request.id"))
                .unwrap_or_default(),
            client_address: steps::property_string("source.address"),
        };
        ctx_log!(
            debug,
            self.context_id,
            "on_http_request_headers: {} {} request_id={}",
            start.route.method,
            vigil_core::redact::target(&start.route.path),
            vigil_core::redact::request_id(&start.request_id)
        );
        let carried = self.event(None, |gate, cx| {
            gate.request_headers(cx, start, &header, end_of_stream)
        });
        self.act(carried)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        // With Continue, each callback's buffer holds only this chunk (Envoy's decodeData);
        // after a Pause (StopIterationAndBuffer), all that was buffered.
        let read = || self.get_http_request_body(0, body_size).unwrap_or_default();
        let carried = self.event(Some(BufferType::HttpRequestBody), |gate, cx| {
            gate.request_body(cx, body_size, end_of_stream, &read)
        });
        self.act(carried)
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        // A body the gate buffered is readable and writable here; it is read only if so.
        let read = || {
            self.get_http_request_body(0, usize::MAX)
                .unwrap_or_default()
        };
        let carried = self.event(Some(BufferType::HttpRequestBody), |gate, cx| {
            gate.request_trailers(cx, &read)
        });
        self.act(carried)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        // Envoy answers a header read with the first value only (context.cc
        // getHeaderMapValue): every content-encoding header counts, so those are read whole.
        let header = |name: &str| {
            if name != "content-encoding" {
                return self.get_http_response_header(name);
            }
            let all: Vec<String> = self
                .get_http_response_headers()
                .into_iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
                .collect();
            (!all.is_empty()).then(|| all.join(","))
        };
        let details = || steps::property_string("response.code_details");
        let carried = self.event(None, |gate, cx| {
            gate.response_headers(cx, &header, &details, end_of_stream)
        });
        self.act(carried)
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let read = || {
            self.get_http_response_body(0, body_size)
                .unwrap_or_default()
        };
        let carried = self.event(Some(BufferType::HttpResponseBody), |gate, cx| {
            gate.response_body(cx, end_of_stream, &read)
        });
        self.act(carried)
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        // A buffered body (a model list being filtered) is still readable and writable here;
        // it is read only when the gate filters it.
        let read = || {
            self.get_http_response_body(0, usize::MAX)
                .unwrap_or_default()
        };
        let carried = self.event(Some(BufferType::HttpResponseBody), |gate, cx| {
            gate.response_trailers(cx, &read)
        });
        self.act(carried)
    }

    fn on_log(&mut self) {
        self.plugin.waits.borrow_mut().forget(self.context_id);
        self.event(None, |gate, cx| gate.ended(cx));
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
        let refusal = Refusal::new(
            503,
            RefusalCode::NotConfigured,
            "the Vigil plugin has no valid configuration",
        );
        let request_id = self
            .get_http_request_header("x-request-id")
            .unwrap_or_default();
        let headers: Vec<(&str, &str)> = refusal
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.send_http_response(503, headers, Some(refusal.body(&request_id).as_bytes()));
        Action::Pause
    }
}
