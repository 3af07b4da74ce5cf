//! Remote key sets in the filter: fetching them through the IdP's cluster, and settling the
//! requests held while a fetch was in flight.
//!
//! Fetches are always dispatched by the root context, on its tick: the Rust SDK routes a
//! callout's answer to the context that dispatched it and drops it when that stream is gone
//! (proxy-wasm-rust-sdk src/dispatcher.rs, `on_http_call_response`), so a fetch started by a
//! request whose client then left would never be taken. A request that needs keys is held by
//! its gate; the tick goes fast, once, until the answer is in (waits.rs).
//!
//! A held request is settled by its own gate: the root switches to the stream with
//! `set_effective_context` (Envoy's way to act on another stream from a callout answer),
//! feeds the gate the event, and carries out its steps there: resumed with its token
//! stripped, refused, or asked for approval like any other request. An approval call
//! dispatched this way comes back to the root, which hands it to the stream's gate.

use crate::clock::now_nanos;
use crate::logging::ctx_log;
use crate::plugin::Plugin;
use crate::steps::{self, carry_out, Within};
use crate::waits::{Held, SLOW_TICK};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType};
use std::time::Duration;
use vigil_core::identity::jwks::MAX_JWKS_BYTES;

/// Starts fetching provider `index`'s key set from the root context. When the cluster
/// refuses the call, the fetch counts as failed, so held requests fail closed.
pub fn fetch(plugin: &Plugin, index: usize, root_id: u32) {
    let mut verifier = plugin.verifier.borrow_mut();
    let Some(r) = verifier.remote_mut(index) else {
        return;
    };
    let (authority, path) = r.authority_and_path();
    let headers = vec![
        (":method", "GET"),
        (":path", path.as_str()),
        (":authority", authority.as_str()),
        ("accept", "application/json"),
    ];
    let name = &plugin.config.providers[index].name;
    r.started();
    let cluster = r.settings.cluster.clone();
    match hostcalls::dispatch_http_call(
        &cluster,
        headers,
        None,
        vec![],
        Duration::from_millis(r.settings.timeout_ms),
    ) {
        Ok(token) => {
            plugin.waits.borrow_mut().fetches.insert(token, index);
            ctx_log!(
                info,
                root_id,
                "fetching key set of provider {} from cluster {}",
                name,
                cluster
            );
        }
        Err(status) => {
            r.failed(format!("cluster {cluster} refused the call ({status:?})"));
            ctx_log!(
                error,
                root_id,
                "cannot fetch key set of provider {}: cluster {} refused the call ({:?})",
                name,
                cluster,
                status
            );
        }
    }
}

/// Takes a callout answer if it is a key-set fetch (false otherwise), then settles the
/// requests that were waiting for it.
pub fn answered(
    plugin: &Plugin,
    token: u32,
    root_id: u32,
    num_headers: usize,
    body_size: usize,
) -> bool {
    let Some(index) = plugin.waits.borrow_mut().fetches.remove(&token) else {
        return false;
    };
    let name = plugin.config.providers[index].name.clone();
    // A reset arrives with no headers (Envoy onFailure); a timeout as the router's 504.
    let status = if num_headers == 0 {
        None
    } else {
        hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
            .ok()
            .flatten()
            .and_then(|s| s.parse().ok())
    };
    let now = (now_nanos() / 1_000_000_000) as i64;
    let result = {
        let mut verifier = plugin.verifier.borrow_mut();
        match verifier.remote_mut(index) {
            Some(r) if body_size > MAX_JWKS_BYTES => {
                let why = format!(
                    "the key set is {body_size} bytes, over the {MAX_JWKS_BYTES}-byte limit"
                );
                r.failed(why.clone());
                Err(why)
            }
            Some(r) => {
                let body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                r.answered(status, &body, now)
            }
            None => Err("not a remote provider".into()),
        }
    };
    match result {
        Ok(n) => ctx_log!(
            info,
            root_id,
            "key set of provider {} loaded: {} usable key(s)",
            name,
            n
        ),
        Err(e) => ctx_log!(
            error,
            root_id,
            "key set of provider {} refused, keeping the last good set if any: {}",
            name,
            e
        ),
    }
    settle(plugin, root_id);
    true
}

/// Settles every held request whose provider's fetch is no longer in flight, each through
/// its own gate, in its own stream.
pub fn settle(plugin: &Plugin, root_id: u32) {
    let ready: Vec<Held> = {
        let verifier = plugin.verifier.borrow();
        let (ready, slow) = plugin
            .waits
            .borrow_mut()
            .take_ready(|h| !verifier.pending(h.provider));
        if slow {
            let _ = hostcalls::set_tick_period(SLOW_TICK);
        }
        ready
    };
    for h in ready {
        // The held stream may have ended meanwhile (client gone): Envoy refuses the switch.
        if hostcalls::set_effective_context(h.context_id).is_err() {
            continue;
        }
        let reply = plugin.with_cx(|cx| h.gate.borrow_mut().keys_settled(cx));
        let carried = carry_out(plugin, h.context_id, &h.gate, reply, Within::Answer);
        if let Some(token) = carried.call {
            plugin
                .waits
                .borrow_mut()
                .root_calls
                .insert(token, (h.context_id, h.gate.clone()));
        }
    }
    let _ = hostcalls::set_effective_context(root_id);
}

/// Takes a callout answer if it is an approval call the root dispatched for a held stream
/// (false otherwise), and hands it to that stream's gate.
pub fn approval_answered(
    plugin: &Plugin,
    token: u32,
    root_id: u32,
    num_headers: usize,
    body_size: usize,
) -> bool {
    let call = plugin.waits.borrow_mut().root_calls.remove(&token);
    let Some((context_id, gate)) = call else {
        return false;
    };
    // Envoy reads a callout's answer from the root context whichever context is in effect
    // (source/extensions/common/wasm/context.cc, `Context::getBuffer`:
    // `rootContext()->http_call_response_`), so it can be read after the switch.
    if hostcalls::set_effective_context(context_id).is_ok() {
        let answer = steps::callout_answer(num_headers, body_size);
        let reply = plugin.with_cx(|cx| gate.borrow_mut().approval_answer(cx, answer));
        let carried = carry_out(plugin, context_id, &gate, reply, Within::Answer);
        if let Some(next) = carried.call {
            plugin
                .waits
                .borrow_mut()
                .root_calls
                .insert(next, (context_id, gate.clone()));
        }
    }
    let _ = hostcalls::set_effective_context(root_id);
    true
}
