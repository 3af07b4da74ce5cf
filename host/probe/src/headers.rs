//! Header-map operations, including pseudo-headers and trailers.
use crate::report;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

pub struct Headers;
impl Context for Headers {}
impl HttpContext for Headers {
    fn on_http_request_headers(&mut self, n: usize, eos: bool) -> Action {
        report("num_headers", (n, eos));
        report("pairs", self.get_http_request_headers());
        report("path", self.get_http_request_header(":path"));
        report("missing", self.get_http_request_header("x-nope"));
        self.add_http_request_header("x-added", "1");
        self.set_http_request_header("x-replaced", Some("new"));
        self.set_http_request_header("x-removed", None);
        self.set_http_request_header(":path", Some("/rewritten"));
        Action::Continue
    }
    fn on_http_request_trailers(&mut self, n: usize) -> Action {
        report("request_trailers", (n, self.get_http_request_trailers()));
        Action::Continue
    }
    fn on_http_response_headers(&mut self, _n: usize, _eos: bool) -> Action {
        self.set_http_response_headers(vec![(":status", "201"), ("x-only", "this")]);
        Action::Continue
    }
    fn on_http_response_body(&mut self, _size: usize, eos: bool) -> Action {
        if eos {
            self.add_http_response_trailer("x-trailer", "added-at-end");
        }
        Action::Continue
    }
}
