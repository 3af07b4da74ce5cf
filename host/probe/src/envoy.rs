//! Probes for Envoy's own interventions: buffer limits, replies while response headers are
//! held, header hold under `allow_on_headers_stop_iteration`, idle timeouts, log order.
use crate::report;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use std::time::Duration;

fn text(v: Option<Vec<u8>>) -> Option<String> {
    v.map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Buffers the request body; over 8 bytes it also replies 400 itself, in the same callback.
pub struct ReplyOnBigBody;
impl Context for ReplyOnBigBody {}
impl HttpContext for ReplyOnBigBody {
    fn on_http_request_body(&mut self, size: usize, eos: bool) -> Action {
        report("request_body_size", (size, eos));
        if size > 8 {
            self.send_http_response(400, vec![], Some(b"probe says too big"));
        }
        Action::Pause
    }
    fn on_http_response_headers(&mut self, _n: usize, _eos: bool) -> Action {
        report("response_status", self.get_http_response_header(":status"));
        Action::Continue
    }
    fn on_log(&mut self) {
        report(
            "code_details",
            text(self.get_property(vec!["response", "code_details"])),
        );
    }
}

/// Holds response headers and buffers the response body; replies 502 itself when the body
/// says "refuse".
pub struct HoldResponse;
impl Context for HoldResponse {}
impl HttpContext for HoldResponse {
    fn on_http_response_headers(&mut self, _n: usize, _eos: bool) -> Action {
        report(
            "response_headers_seen",
            self.get_http_response_header(":status"),
        );
        Action::Pause
    }
    fn on_http_response_body(&mut self, size: usize, eos: bool) -> Action {
        report("response_body_size", (size, eos));
        let body = self.get_http_response_body(0, size).unwrap_or_default();
        if body.windows(6).any(|w| w == b"refuse") {
            self.send_http_response(502, vec![("x-probe", "refused")], Some(b"probe refuses"));
            return Action::Pause;
        }
        if eos {
            Action::Continue
        } else {
            Action::Pause
        }
    }
}

/// Holds request headers while it reads the whole body, then adds a header and lets all go.
/// A callout with no timeout is dispatched at headers; its answer is only reported.
pub struct HoldHeaders;
impl Context for HoldHeaders {
    fn on_http_call_response(&mut self, token: u32, headers: usize, _body: usize, _t: usize) {
        report("call_response", (token, headers));
    }
}
impl HttpContext for HoldHeaders {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        let token = self.dispatch_http_call(
            "svc",
            vec![
                (":method", "GET"),
                (":path", "/slow"),
                (":authority", "svc"),
            ],
            None,
            vec![],
            Duration::from_secs(0),
        );
        report("dispatch", token);
        Action::Pause
    }
    fn on_http_request_body(&mut self, size: usize, eos: bool) -> Action {
        report(
            "body_with_headers_held",
            (size, eos, self.get_http_request_header(":path")),
        );
        if !eos {
            return Action::Pause;
        }
        self.set_http_request_header("x-held", Some("decided"));
        Action::Continue
    }
    fn on_log(&mut self) {
        report(
            "code_details",
            text(self.get_property(vec!["response", "code_details"])),
        );
    }
}

/// Writes filter state in `on_log` and reports the response code details there.
pub struct LogWriter;
impl Context for LogWriter {}
impl HttpContext for LogWriter {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        report(
            "authorization",
            self.get_http_request_header("authorization"),
        );
        report("x_custom", self.get_http_request_header("x-custom"));
        Action::Continue
    }
    fn on_log(&mut self) {
        self.set_property(vec!["probe_log"], Some(b"written in on_log"));
        report(
            "code_details",
            text(self.get_property(vec!["response", "code_details"])),
        );
    }
}

/// Panics in request headers when the path says so; otherwise passes everything.
pub struct PanicOnPath;
impl Context for PanicOnPath {}
impl HttpContext for PanicOnPath {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        if self
            .get_http_request_header(":path")
            .is_some_and(|p| p.contains("panic"))
        {
            panic!("probe panics on purpose");
        }
        self.set_property(vec!["probe_state"], Some(b"set before the trap"));
        Action::Continue
    }
    fn on_log(&mut self) {
        report("on_log", true);
    }
}
