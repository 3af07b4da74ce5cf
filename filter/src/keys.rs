//! Remote key sets in the filter: fetching them through the IdP's cluster, and settling the
//! requests held while a fetch was in flight.
//!
//! Fetches are always dispatched by the root context, on its tick: a callout belongs to the
//! context that dispatched it (the SDK routes the answer there, and Envoy cancels a stream's
//! callouts when the stream ends), so a fetch started by a request whose client then left
//! would never finish. A request that needs keys is held by its gate; the tick goes fast
//! until the answer is in (plugin.rs).
//!
//! A held request is settled by its own gate: the root switches to the stream with
//! `set_effective_context` (Envoy's way to act on another stream from a callout answer),
//! feeds the gate the event, and carries out its steps there: resumed with its token
//! stripped, refused, or asked for approval like any other request. An approval call
//! dispatched this way comes back to the root, which hands it to the stream's gate.

use crate::logging::ctx_log;
use crate::plugin::{Plugin, SharedGate};
use crate::steps::{self, carry_out, now_nanos, Within};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType};
use std::collections::HashMap;
use std::time::Duration;
use vigil_core::identity::jwks::MAX_JWKS_BYTES;

/// The tick while requests wait for a key-set fetch, and otherwise.
pub const FAST_TICK: Duration = Duration::from_millis(20);
pub const SLOW_TICK: Duration = Duration::from_secs(1);

/// A request held until provider `provider`'s key set is fetched.
pub struct Held {
    pub context_id: u32,
    pub provider: usize,
    pub gate: SharedGate,
}

/// What waits on the root: held requests, the key-set fetches in flight (callout token to
/// provider), and the approval calls the root dispatched for held streams (callout token to
/// the stream and its gate).
#[derive(Default)]
pub struct Waits {
    held: Vec<Held>,
    fetches: HashMap<u32, usize>,
    root_calls: HashMap<u32, (u32, SharedGate)>,
    /// The tick is at [`FAST_TICK`]: re-arming it would postpone the fetch (Envoy restarts
    /// the timer for a full period on every `set_tick_period`).
    fast_tick: bool,
}

/// Holds a stream's request until the provider's key set is fetched, and makes the tick fast
/// (once: re-arming it would postpone the fetch).
pub fn hold(plugin: &Plugin, context_id: u32, provider: usize, gate: SharedGate) {
    let mut waits = plugin.waits.borrow_mut();
    waits.held.push(Held {
        context_id,
        provider,
        gate,
    });
    if !std::mem::replace(&mut waits.fast_tick, true) {
        let _ = hostcalls::set_tick_period(FAST_TICK);
    }
}

/// Forgets a stream that ended: a held request must not be acted on later.
pub fn forget(plugin: &Plugin, context_id: u32) {
    let mut waits = plugin.waits.borrow_mut();
    waits.held.retain(|h| h.context_id != context_id);
    waits.root_calls.retain(|_, (id, _)| *id != context_id);
}

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
        let mut waits = plugin.waits.borrow_mut();
        let (ready, still): (Vec<Held>, Vec<Held>) = waits
            .held
            .drain(..)
            .partition(|h| !verifier.pending(h.provider));
        waits.held = still;
        if waits.held.is_empty() && std::mem::replace(&mut waits.fast_tick, false) {
            let _ = hostcalls::set_tick_period(SLOW_TICK);
        }
        ready
    };
    for h in ready {
        // The held stream may have ended meanwhile (client gone): Envoy refuses the switch.
        if hostcalls::set_effective_context(h.context_id).is_err() {
            continue;
        }
        let reply = plugin.with_cx(now_nanos(), |cx| h.gate.borrow_mut().keys_settled(cx));
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
        let reply = plugin.with_cx(now_nanos(), |cx| {
            gate.borrow_mut().approval_answer(cx, answer)
        });
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
