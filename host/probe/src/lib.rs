//! Probe filters for testing the host on its own: each probe is one small behaviour, chosen by
//! the plugin configuration (its name as plain text), that reports what it saw through log
//! lines `probe <what>=<value>` for the host tests to assert on. Not part of Vigil.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod body;
mod callouts;
mod envoy;
mod headers;
mod lifecycle;
mod raw;
mod state;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

/// Logs one observation.
pub fn report(what: &str, value: impl std::fmt::Debug) {
    log::info!("probe {what}={value:?}");
}

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|id| -> Box<dyn RootContext> { Box::new(ProbeRoot { id, probe: String::new(), ticks: 0, queue: 0 }) });
}}

pub struct ProbeRoot {
    id: u32,
    probe: String,
    ticks: u32,
    queue: u32,
}

impl Context for ProbeRoot {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body: usize, _trailers: usize) {
        report("root_call_response", (token, headers, body));
    }
    fn on_done(&mut self) -> bool {
        if self.probe == "done" {
            report("done_status", raw::done());
        }
        true
    }
}

impl RootContext for ProbeRoot {
    fn on_vm_start(&mut self, size: usize) -> bool {
        report(
            "vm_config",
            String::from_utf8_lossy(&self.get_vm_configuration().unwrap_or_default()).into_owned(),
        );
        report("vm_config_size", size);
        true
    }

    fn on_configure(&mut self, _size: usize) -> bool {
        self.probe =
            String::from_utf8(self.get_plugin_configuration().unwrap_or_default()).unwrap();
        report("root_id", self.id);
        match self.probe.as_str() {
            "refuse" => return false,
            "raw" => report("root_set_property", raw::set_property_status("x")),
            "exit" => std::process::exit(3),
            "tick" => self.set_tick_period(std::time::Duration::from_millis(100)),
            "queue" => {
                self.queue = self.register_shared_queue("probe_q");
                report("queue_id", self.queue);
            }
            "wasi" => {
                report("env", std::env::var("PROBE_ENV").ok());
                println!("hello from stdout");
                eprintln!("hello from stderr");
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                report("wasi_now_secs", now);
                use std::hash::{BuildHasher, Hasher};
                report(
                    "random_nonzero",
                    std::collections::hash_map::RandomState::new()
                        .build_hasher()
                        .finish()
                        != 0,
                );
            }
            "root_callout" => {
                let r = self.dispatch_http_call(
                    "svc",
                    vec![
                        (":method", "GET"),
                        (":path", "/root"),
                        (":authority", "svc"),
                    ],
                    None,
                    vec![],
                    std::time::Duration::from_secs(1),
                );
                report("root_dispatch", r.is_ok());
            }
            _ => {}
        }
        true
    }

    fn on_tick(&mut self) {
        self.ticks += 1;
        report(
            "tick",
            (
                self.ticks,
                self.get_current_time()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis(),
            ),
        );
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        report("queue_ready", queue_id);
        report(
            "dequeued",
            self.dequeue_shared_queue(queue_id)
                .map(|b| b.map(|b| String::from_utf8(b).unwrap())),
        );
        report(
            "dequeued_again",
            self.dequeue_shared_queue(queue_id).map(|b| b.is_some()),
        );
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(match self.probe.as_str() {
            "headers" => Box::new(headers::Headers),
            "pause_headers" => Box::new(callouts::PauseHeaders),
            "pause_response" => Box::new(callouts::PauseResponse),
            "pause_trailers" => Box::new(callouts::PauseTrailers),
            "callout_errors" => Box::new(callouts::CalloutErrors),
            "buffer_body" => Box::new(body::BufferBody),
            "body_edges" => Box::new(body::BodyEdges),
            "local_reply" => Box::new(lifecycle::LocalReply),
            "local_reply_late" => Box::new(lifecycle::LocalReplyLate),
            "reset" => Box::new(lifecycle::Reset),
            "panic" => Box::new(lifecycle::Panic),
            "lifecycle" => Box::new(lifecycle::Lifecycle),
            "properties" => Box::new(state::Properties),
            "shared_data" => Box::new(state::SharedData),
            "queue" => Box::new(state::Queue),
            "metrics" => Box::new(state::Metrics),
            "raw" => Box::new(raw::Raw),
            "reply_on_big_body" => Box::new(envoy::ReplyOnBigBody),
            "hold_response" => Box::new(envoy::HoldResponse),
            "hold_headers" => Box::new(envoy::HoldHeaders),
            "log_writer" => Box::new(envoy::LogWriter),
            "panic_on_path" => Box::new(envoy::PanicOnPath),
            _ => Box::new(lifecycle::Lifecycle),
        })
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
