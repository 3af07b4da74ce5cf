//! One HTTP exchange through the filter. This first cut lets traffic pass untouched and
//! builds the session record as the exchange goes: route and client at request headers, body
//! lengths and digests chunk by chunk, status at response headers.
//!
//! When the record is written matters. Envoy's `setProperty` stores it in the stream's filter
//! state under `wasm.<name>` (source/extensions/common/wasm/context.cc, `Context::setProperty`,
//! `CelStateKeyPrefix = "wasm."`), where `%FILTER_STATE(wasm.vigil_record:PLAIN)%` reads it.
//! The HTTP connection manager's own access logs run before the filter's `on_log`: the
//! `ActiveStream` constructor registers `config_.accessLogs()` with
//! `filter_manager_.addAccessLogHandler` before the filter chain exists, and the handlers run
//! in registration order (source/common/http/conn_manager_impl.cc, filter_manager.h `log()`),
//! so a record first written in `on_log` is missed by the HCM access log. The
//! record is therefore sealed and written at the last event of the exchange the filter sees
//! (end of the response, its trailers, or a headers-only response), and only written in
//! `on_log` when the exchange never got there (client gone, upstream reset).

use crate::logging::ctx_log;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::UNIX_EPOCH;
use vigil_core::digest::StreamDigest;
use vigil_core::record::{
    BodySummary, Decision, PolicyRef, RecordChain, ResponseSummary, Route, SessionRecord,
    RECORD_VERSION,
};
use vigil_core::time::format_rfc3339_millis;
use vigil_core::PluginConfig;

pub struct VigilStream {
    context_id: u32,
    config: Rc<PluginConfig>,
    chain: Rc<RefCell<RecordChain>>,
    vm_id: Rc<str>,
    started_nanos: u64,
    request_id: String,
    client_address: Option<String>,
    route: Route,
    request_body: StreamDigest,
    response_body: StreamDigest,
    status: Option<u16>,
    sealed: bool,
}

impl VigilStream {
    pub fn new(
        context_id: u32,
        config: Rc<PluginConfig>,
        chain: Rc<RefCell<RecordChain>>,
        vm_id: Rc<str>,
    ) -> Self {
        Self {
            context_id,
            config,
            chain,
            vm_id,
            started_nanos: 0,
            request_id: String::new(),
            client_address: None,
            route: Route {
                method: String::new(),
                path: String::new(),
                authority: String::new(),
            },
            request_body: StreamDigest::default(),
            response_body: StreamDigest::default(),
            status: None,
            sealed: false,
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

    /// Builds, chains and writes the record. `complete` is false when the exchange ended
    /// before the response did.
    fn seal_record(&mut self, complete: bool) {
        if self.sealed {
            return;
        }
        self.sealed = true;
        let ended = self.now_nanos();
        let config = &self.config;
        let mut record = SessionRecord {
            v: RECORD_VERSION,
            request_id: self.request_id.clone(),
            vm_id: self.vm_id.to_string(),
            seq: 0,
            prev_hash: String::new(),
            started_at: format_rfc3339_millis(self.started_nanos),
            ended_at: format_rfc3339_millis(ended),
            duration_ms: ended.saturating_sub(self.started_nanos) / 1_000_000,
            client_address: self.client_address.clone(),
            route: self.route.clone(),
            identity: None,
            model: None,
            decision: Decision {
                action: "allow".into(),
                rule_id: None,
                reason: "pass-through: no rules configured".into(),
            },
            approval: None,
            outcome: "forwarded".into(),
            complete,
            request: BodySummary {
                bytes: self.request_body.bytes(),
                sha256: self.request_body.hex(),
            },
            response: ResponseSummary {
                status: self.status,
                bytes: self.response_body.bytes(),
                sha256: self.response_body.hex(),
            },
            masked: BTreeMap::new(),
            policy: PolicyRef {
                id: config.id.clone(),
                version: config.version.clone(),
                sha256: config.sha256.clone(),
            },
            hash: String::new(),
        };
        self.chain.borrow_mut().seal(&mut record);
        match serde_json::to_vec(&record) {
            Ok(bytes) => {
                self.set_property(vec![config.record.property.as_str()], Some(&bytes));
                ctx_log!(
                    debug,
                    self.context_id,
                    "session record seq {} hash {} written",
                    record.seq,
                    record.hash
                );
            }
            Err(e) => ctx_log!(
                error,
                self.context_id,
                "session record could not be serialized: {}",
                e
            ),
        }
    }
}

impl Context for VigilStream {}

impl HttpContext for VigilStream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.started_nanos = self.now_nanos();
        let header = |name: &str| self.get_http_request_header(name).unwrap_or_default();
        self.route = Route {
            method: header(":method"),
            path: header(":path"),
            authority: header(":authority"),
        };
        self.request_id = self
            .get_http_request_header(&self.config.record.request_id_header)
            .or_else(|| self.property_string("request.id"))
            .unwrap_or_default();
        self.client_address = self.property_string("source.address");
        ctx_log!(
            debug,
            self.context_id,
            "on_http_request_headers: {} {} request_id={}",
            self.route.method,
            self.route.path,
            self.request_id
        );
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, _end_of_stream: bool) -> Action {
        // With Continue, each callback's buffer holds only this chunk (Envoy's decodeData).
        if let Some(chunk) = self.get_http_request_body(0, body_size) {
            self.request_body.update(&chunk);
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.status = self
            .get_http_response_header(":status")
            .and_then(|s| s.parse().ok());
        ctx_log!(
            debug,
            self.context_id,
            "on_http_response_headers: status {:?}",
            self.status
        );
        if end_of_stream {
            self.seal_record(true);
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if let Some(chunk) = self.get_http_response_body(0, body_size) {
            self.response_body.update(&chunk);
        }
        if end_of_stream {
            self.seal_record(true);
        }
        Action::Continue
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        self.seal_record(true);
        Action::Continue
    }

    fn on_log(&mut self) {
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
