//! Properties, shared data with CAS, shared queues, metrics.
use crate::report;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, MetricType};

fn int(bytes: Option<Vec<u8>>) -> Option<i64> {
    bytes.map(|b| i64::from_le_bytes(b.try_into().unwrap()))
}

fn text(bytes: Option<Vec<u8>>) -> Option<String> {
    bytes.map(|b| String::from_utf8(b).unwrap())
}

pub struct Properties;
impl Context for Properties {}
impl HttpContext for Properties {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        for name in [
            "request.path",
            "request.url_path",
            "request.query",
            "request.method",
            "request.host",
            "request.id",
            "source.address",
            "destination.address",
            "plugin_root_id",
            "plugin_vm_id",
            "plugin_name",
            "request.headers.x-request-id",
            "no.such.thing",
        ] {
            report(name, text(self.get_property(name.split('.').collect())));
        }
        report(
            "source.port",
            int(self.get_property(vec!["source", "port"])),
        );
        report(
            "request.time",
            int(self.get_property(vec!["request", "time"])),
        );
        self.set_property(vec!["probe_state"], Some(b"kept"));
        report("round_trip", text(self.get_property(vec!["probe_state"])));
        Action::Continue
    }
    fn on_http_response_headers(&mut self, _n: usize, _eos: bool) -> Action {
        report(
            "response.code",
            int(self.get_property(vec!["response", "code"])),
        );
        report(
            "request.path_in_response",
            text(self.get_property(vec!["request", "path"])),
        );
        Action::Continue
    }
    fn on_log(&mut self) {
        report(
            "request.path_in_log",
            text(self.get_property(vec!["request", "path"])),
        );
    }
}

pub struct SharedData;
impl Context for SharedData {}
impl HttpContext for SharedData {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        report("absent", self.get_shared_data("k"));
        report("first_set", self.set_shared_data("k", Some(b"v1"), None));
        let (value, cas) = self.get_shared_data("k");
        report(
            "get",
            (value.map(|v| String::from_utf8(v).unwrap()), cas.is_some()),
        );
        report("set_with_cas", self.set_shared_data("k", Some(b"v2"), cas));
        report("stale_cas", self.set_shared_data("k", Some(b"v3"), cas));
        report(
            "final",
            self.get_shared_data("k")
                .0
                .map(|v| String::from_utf8(v).unwrap()),
        );
        Action::Continue
    }
}

pub struct Queue;
impl Context for Queue {}
impl HttpContext for Queue {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        let id = self.resolve_shared_queue("vigil", "probe_q");
        report("resolved", id);
        report("unknown_queue", self.resolve_shared_queue("vigil", "nope"));
        if let Some(id) = id {
            report("enqueue", self.enqueue_shared_queue(id, Some(b"item-1")));
        }
        report(
            "enqueue_unknown",
            self.enqueue_shared_queue(999, Some(b"x")),
        );
        report("dequeue_unknown", self.dequeue_shared_queue(999));
        Action::Continue
    }
}

pub struct Metrics;
impl Context for Metrics {}
impl HttpContext for Metrics {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        let counter =
            proxy_wasm::hostcalls::define_metric(MetricType::Counter, "probe_requests").unwrap();
        let gauge =
            proxy_wasm::hostcalls::define_metric(MetricType::Gauge, "probe_inflight").unwrap();
        let histogram =
            proxy_wasm::hostcalls::define_metric(MetricType::Histogram, "probe_latency_ms")
                .unwrap();
        report(
            "increment_counter",
            proxy_wasm::hostcalls::increment_metric(counter, 2),
        );
        report(
            "decrement_counter",
            proxy_wasm::hostcalls::increment_metric(counter, -1),
        );
        report("counter", proxy_wasm::hostcalls::get_metric(counter));
        report(
            "gauge_up",
            proxy_wasm::hostcalls::increment_metric(gauge, 5),
        );
        report(
            "gauge_down",
            proxy_wasm::hostcalls::increment_metric(gauge, -2),
        );
        report("gauge", proxy_wasm::hostcalls::get_metric(gauge));
        report(
            "record_histogram",
            proxy_wasm::hostcalls::record_metric(histogram, 42),
        );
        report(
            "get_histogram",
            proxy_wasm::hostcalls::get_metric(histogram),
        );
        report("unknown", proxy_wasm::hostcalls::get_metric(4097));
        Action::Continue
    }
}
