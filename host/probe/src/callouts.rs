//! dispatch_http_call, pausing and resuming, reading the callout's answer.
use crate::report;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use std::time::Duration;

fn call(ctx: &dyn Context, path: &str, timeout_ms: u64) -> Result<u32, proxy_wasm::types::Status> {
    ctx.dispatch_http_call(
        "svc",
        vec![(":method", "POST"), (":path", path), (":authority", "svc")],
        Some(b"ping"),
        vec![],
        Duration::from_millis(timeout_ms),
    )
}

fn report_answer(ctx: &dyn Context, token: u32, headers: usize, body: usize, trailers: usize) {
    report("call_response", (token, headers, body, trailers));
    report("call_status", ctx.get_http_call_response_header(":status"));
    report(
        "call_body",
        ctx.get_http_call_response_body(0, body)
            .map(|b| String::from_utf8(b).unwrap()),
    );
    report("call_trailers", ctx.get_http_call_response_trailers());
    report("grpc_status", crate::raw::get_status());
}

/// Pauses request headers until a callout answers; logs every body callback.
pub struct PauseHeaders;
impl Context for PauseHeaders {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body: usize, trailers: usize) {
        report_answer(self, token, headers, body, trailers);
        report(
            "headers_during_callout",
            self.get_http_request_header(":path"),
        );
        if headers == 0 {
            self.send_http_response(503, vec![], Some(b"callout failed"));
        } else {
            self.resume_http_request();
        }
    }
}
impl HttpContext for PauseHeaders {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        report("dispatch", call(self, "/check", 500));
        Action::Pause
    }
    fn on_http_request_body(&mut self, size: usize, eos: bool) -> Action {
        report(
            "body_callback",
            (
                size,
                eos,
                self.get_http_request_body(0, size)
                    .map(|b| String::from_utf8(b).unwrap()),
            ),
        );
        Action::Continue
    }
    fn on_http_request_trailers(&mut self, n: usize) -> Action {
        report("trailers_callback", n);
        Action::Continue
    }
}

/// Pauses response headers until a callout answers, then resumes the response.
pub struct PauseResponse;
impl Context for PauseResponse {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body: usize, trailers: usize) {
        report_answer(self, token, headers, body, trailers);
        self.set_http_response_header("x-checked", Some("yes"));
        self.resume_http_response();
    }
}
impl HttpContext for PauseResponse {
    fn on_http_response_headers(&mut self, _n: usize, _eos: bool) -> Action {
        report("dispatch", call(self, "/response-check", 0));
        Action::Pause
    }
    fn on_http_response_body(&mut self, size: usize, eos: bool) -> Action {
        report("response_body_callback", (size, eos));
        Action::Continue
    }
}

/// The statuses dispatch_http_call gives for bad arguments.
pub struct CalloutErrors;
impl Context for CalloutErrors {}
impl HttpContext for CalloutErrors {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        let t = Duration::from_secs(1);
        report(
            "unknown_cluster",
            self.dispatch_http_call(
                "nope",
                vec![(":method", "GET"), (":path", "/"), (":authority", "a")],
                None,
                vec![],
                t,
            ),
        );
        report(
            "no_path",
            self.dispatch_http_call(
                "svc",
                vec![(":method", "GET"), (":authority", "a")],
                None,
                vec![],
                t,
            ),
        );
        report(
            "no_method",
            self.dispatch_http_call(
                "svc",
                vec![(":path", "/"), (":authority", "a")],
                None,
                vec![],
                t,
            ),
        );
        report(
            "no_authority",
            self.dispatch_http_call(
                "svc",
                vec![(":method", "GET"), (":path", "/")],
                None,
                vec![],
                t,
            ),
        );
        report(
            "negative_timeout",
            crate::raw::http_call_with_timeout("svc", u32::MAX),
        );
        Action::Continue
    }
}

/// Buffers the request body (Pause in body callbacks), then pauses at the trailers until a
/// callout answers, and resumes: what an approval asked at the end of a body that ends with
/// trailers does.
pub struct PauseTrailers;
impl Context for PauseTrailers {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body: usize, trailers: usize) {
        report_answer(self, token, headers, body, trailers);
        self.resume_http_request();
    }
}
impl HttpContext for PauseTrailers {
    fn on_http_request_body(&mut self, size: usize, _eos: bool) -> Action {
        report("body_callback", size);
        Action::Pause
    }
    fn on_http_request_trailers(&mut self, n: usize) -> Action {
        report("trailers_callback", n);
        report("dispatch", call(self, "/check", 500));
        Action::Pause
    }
}
