//! The host's clock, read only where the time matters (each read is a host call).

use proxy_wasm::hostcalls;
use std::time::UNIX_EPOCH;

/// Nanoseconds since the epoch, as Envoy's clock says.
pub fn now_nanos() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
