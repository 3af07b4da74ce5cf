//! What the policy knows of the Envoy it runs in (the policy's `envoy` section). The filter
//! cannot read Envoy's configuration, yet three of its settings change what the filter must
//! do, so the operator states them here, next to the policy they constrain:
//!
//! - `hold_request_headers`: the plugin config sets `allow_on_headers_stop_iteration`
//!   (Envoy 1.35+), so the filter may hold request headers while it reads the body and
//!   decides; the model server then never sees a refused request's headers. Off, Envoy would
//!   withhold the body from a filter that holds headers, so headers go on before the
//!   decision (the fallback for older Envoy, recorded on each refusal).
//! - `buffer_limit_bytes`: the stream's buffer limit (listener
//!   `per_connection_buffer_limit_bytes`, route `request_body_buffer_limit`). A body the
//!   filter buffers past it gets Envoy's own 413, not the filter's decision.
//! - `stream_idle_timeout_s`: the route's `idle_timeout` (or the connection manager's
//!   `stream_idle_timeout`). Envoy ends a stream quiet for that long, approval waits included.
//!
//! `vigil policy check` warns where the policy and these settings disagree (lint.rs).

use crate::json_reader::{Errors, ObjectReader};

/// Envoy's defaults: 1 MiB per connection, a 5-minute stream idle timeout.
pub const DEFAULT_BUFFER_LIMIT_BYTES: usize = 1024 * 1024;
pub const DEFAULT_STREAM_IDLE_TIMEOUT_S: u64 = 300;
/// How long before Envoy's idle timeout an approval wait gives up, so that the filter, not
/// Envoy, ends it and says why.
pub const IDLE_MARGIN_S: u64 = 5;
/// How much more than `max_request_body_bytes` Envoy must buffer: Vigil's own 413 comes in
/// the callback whose chunk crosses its limit, and Envoy adds that chunk to its buffer before
/// the filter runs (one socket read or HTTP/2 frame; 64 KiB covers both).
pub const CHUNK_HEADROOM_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvoySettings {
    pub hold_request_headers: bool,
    pub buffer_limit_bytes: usize,
    pub stream_idle_timeout_s: u64,
}

impl Default for EnvoySettings {
    fn default() -> Self {
        Self {
            hold_request_headers: false,
            buffer_limit_bytes: DEFAULT_BUFFER_LIMIT_BYTES,
            stream_idle_timeout_s: DEFAULT_STREAM_IDLE_TIMEOUT_S,
        }
    }
}

impl EnvoySettings {
    /// The longest an approval may hold a request before the filter gives up: its rule's
    /// `max_wait_s`, cut to end [`IDLE_MARGIN_S`] before Envoy's idle timeout (0: no timeout).
    pub fn wait_bound_s(&self, max_wait_s: u64) -> u64 {
        if self.stream_idle_timeout_s == 0 {
            return max_wait_s;
        }
        max_wait_s.min(
            self.stream_idle_timeout_s
                .saturating_sub(IDLE_MARGIN_S)
                .max(1),
        )
    }
}

/// Reads the `envoy` section.
pub fn read_envoy(
    path: &str,
    value: &serde_json::Value,
    errors: &mut Errors,
) -> Option<EnvoySettings> {
    let mut obj = ObjectReader::new(path, value, errors)?;
    let mut s = EnvoySettings::default();
    if let Some(hold) = obj.boolean("hold_request_headers", errors) {
        s.hold_request_headers = hold;
    }
    if let Some(n) = obj.integer("buffer_limit_bytes", 1024, u32::MAX as u64, errors) {
        s.buffer_limit_bytes = n as usize;
    }
    if let Some(n) = obj.integer("stream_idle_timeout_s", 0, 86_400, errors) {
        s.stream_idle_timeout_s = n;
    }
    obj.finish(errors);
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_approval_wait_ends_before_envoys_idle_timeout() {
        let s = EnvoySettings {
            stream_idle_timeout_s: 120,
            ..EnvoySettings::default()
        };
        assert_eq!(s.wait_bound_s(60), 60);
        assert_eq!(s.wait_bound_s(300), 115);
        let off = EnvoySettings {
            stream_idle_timeout_s: 0,
            ..EnvoySettings::default()
        };
        assert_eq!(off.wait_bound_s(300), 300);
    }
}
