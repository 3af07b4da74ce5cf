//! Body buffering: Pause in a body callback buffers, and the next callback sees it all.
use crate::report;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

pub struct BufferBody;
impl Context for BufferBody {}
impl HttpContext for BufferBody {
    fn on_http_request_body(&mut self, size: usize, eos: bool) -> Action {
        report("request_body_size", (size, eos));
        if !eos {
            return Action::Pause;
        }
        let body = self.get_http_request_body(0, size).unwrap_or_default();
        let upper = String::from_utf8(body).unwrap().to_uppercase();
        self.set_http_request_body(0, size, upper.as_bytes());
        Action::Continue
    }
    fn on_http_response_body(&mut self, size: usize, eos: bool) -> Action {
        report("response_body_size", (size, eos));
        if eos {
            // Append after the end: start at the buffer's length.
            self.set_http_response_body(size, 0, b"<appended>");
        }
        Action::Continue
    }
}

/// Reads with offsets past the end, and a write in the middle (which Envoy refuses).
pub struct BodyEdges;
impl Context for BodyEdges {}
impl HttpContext for BodyEdges {
    fn on_http_request_body(&mut self, size: usize, _eos: bool) -> Action {
        report(
            "slice",
            self.get_http_request_body(2, 3)
                .map(|b| String::from_utf8(b).unwrap()),
        );
        report("past_end", self.get_http_request_body(size + 5, 10));
        report(
            "clamped",
            self.get_http_request_body(size - 2, 100).map(|b| b.len()),
        );
        report("write_middle", crate::raw::set_buffer(0, 1, 1, b"X"));
        Action::Continue
    }
}
