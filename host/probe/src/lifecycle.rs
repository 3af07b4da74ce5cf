//! Local replies, resets, panics, and the order of lifecycle callbacks.
use crate::report;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

pub struct LocalReply;
impl Context for LocalReply {}
impl HttpContext for LocalReply {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        self.send_http_response(403, vec![("x-reason", "probe")], Some(b"denied by probe"));
        Action::Pause
    }
    fn on_http_request_body(&mut self, _size: usize, _eos: bool) -> Action {
        report("body_after_local_reply", true);
        Action::Continue
    }
    fn on_http_response_headers(&mut self, n: usize, eos: bool) -> Action {
        report(
            "local_reply_headers",
            (n, eos, self.get_http_response_headers()),
        );
        Action::Continue
    }
    fn on_http_response_body(&mut self, size: usize, eos: bool) -> Action {
        report("local_reply_body", (size, eos));
        Action::Continue
    }
}

/// A local reply after response headers went out cannot change the status: reset.
pub struct LocalReplyLate;
impl Context for LocalReplyLate {}
impl HttpContext for LocalReplyLate {
    fn on_http_response_body(&mut self, _size: usize, _eos: bool) -> Action {
        self.send_http_response(500, vec![], Some(b"too late"));
        Action::Pause
    }
}

pub struct Reset;
impl Context for Reset {}
impl HttpContext for Reset {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        self.reset_http_request();
        Action::Pause
    }
}

pub struct Panic;
impl Context for Panic {}
impl HttpContext for Panic {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        log::warn!("about to fail");
        panic!("probe panics on purpose");
    }
}

/// Logs each callback, to pin the order the host calls them in.
pub struct Lifecycle;
impl Context for Lifecycle {
    fn on_done(&mut self) -> bool {
        report("on_done", true);
        true
    }
}
impl HttpContext for Lifecycle {
    fn on_http_request_headers(&mut self, n: usize, eos: bool) -> Action {
        report("on_http_request_headers", (n, eos));
        Action::Continue
    }
    fn on_http_request_body(&mut self, size: usize, eos: bool) -> Action {
        report("on_http_request_body", (size, eos));
        Action::Continue
    }
    fn on_http_request_trailers(&mut self, n: usize) -> Action {
        report("on_http_request_trailers", n);
        Action::Continue
    }
    fn on_http_response_headers(&mut self, n: usize, eos: bool) -> Action {
        report("on_http_response_headers", (n, eos));
        Action::Continue
    }
    fn on_http_response_body(&mut self, size: usize, eos: bool) -> Action {
        report("on_http_response_body", (size, eos));
        Action::Continue
    }
    fn on_http_response_trailers(&mut self, n: usize) -> Action {
        report("on_http_response_trailers", n);
        Action::Continue
    }
    fn on_log(&mut self) {
        report(
            "on_log",
            (
                self.get_http_request_header(":path"),
                self.get_http_response_header(":status"),
            ),
        );
    }
}
