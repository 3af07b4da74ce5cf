//! Carrying out the gate's steps through the host, for whichever context is in effect: the
//! stream in its own callbacks, or a held stream the root switched to with
//! `set_effective_context` (Envoy's way to act on another stream from a callout answer;
//! every hostcall below acts on the effective context).

use crate::logging::ctx_log;
use crate::plugin::{Plugin, SharedGate};
use crate::{keys, records};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{Action, BufferType, MapType};
use std::time::{Duration, UNIX_EPOCH};
use vigil_core::approval::protocol::CalloutFault;
use vigil_core::gate::{Flow, Level, Reply, ServiceCall, Step};

/// Where the steps are carried out.
#[derive(Clone, Copy)]
pub enum Within {
    /// A callback of the stream that can pause: the flow is its return value. `body` is the
    /// body this callback sees, for `ReplaceBody`.
    Callback { body: Option<(BufferType, usize)> },
    /// An answer that came outside the stream's callbacks: `Continue` resumes the request.
    Answer,
}

/// What came of carrying out a reply.
pub struct Carried {
    pub action: Action,
    /// The approval call dispatched, whose answer comes back to the dispatching context.
    pub call: Option<u32>,
}

pub fn now_nanos() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Carries out `reply` for stream `context_id`, feeding the gate again when a step fails in
/// a way the gate must hear of (an approval call the cluster refuses).
pub fn carry_out(
    plugin: &Plugin,
    context_id: u32,
    gate: &SharedGate,
    mut reply: Reply,
    within: Within,
) -> Carried {
    let mut call = None;
    loop {
        let mut refused = false;
        let mut failed_call = None;
        for step in reply.steps.drain(..) {
            match step {
                Step::RequestHeader(name, value) => {
                    let _ = hostcalls::set_map_value(
                        MapType::HttpRequestHeaders,
                        &name,
                        value.as_deref(),
                    );
                }
                Step::ResponseHeader(name, value) => {
                    let _ = hostcalls::set_map_value(
                        MapType::HttpResponseHeaders,
                        name,
                        value.as_deref(),
                    );
                }
                Step::ReplaceBody(bytes) => {
                    if let Within::Callback {
                        body: Some((buffer, size)),
                    } = within
                    {
                        let _ = hostcalls::set_buffer(buffer, 0, size, &bytes);
                    }
                }
                Step::FetchKeys(provider) => keys::hold(plugin, context_id, provider, gate.clone()),
                Step::CallApproval(c) => match dispatch(&c) {
                    Ok(token) => call = Some(token),
                    Err(fault) => failed_call = Some(fault),
                },
                Step::Refuse(refusal) => {
                    let body = refusal.body(gate.borrow().request_id());
                    let headers: Vec<(&str, &str)> = refusal
                        .headers
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    let _ = hostcalls::send_http_response(
                        refusal.status,
                        headers,
                        Some(body.as_bytes()),
                    );
                    refused = true;
                }
                Step::Count(name, n) => plugin.count(&name, n),
                Step::Seal { complete } => records::seal(plugin, context_id, gate, complete),
                Step::Note(level, message) => match level {
                    Level::Debug => ctx_log!(debug, context_id, "{}", message),
                    Level::Info => ctx_log!(info, context_id, "{}", message),
                    Level::Warn => ctx_log!(warn, context_id, "{}", message),
                },
            }
        }
        if let Some(fault) = failed_call {
            reply = plugin.with_cx(now_nanos(), |cx| {
                gate.borrow_mut().approval_answer(cx, Err(fault))
            });
            continue;
        }
        let action = match (reply.flow, within) {
            (Flow::Continue, Within::Callback { .. }) => Action::Continue,
            (Flow::Continue, Within::Answer) if !refused => {
                let _ = hostcalls::resume_http_request();
                Action::Continue
            }
            _ => Action::Pause,
        };
        return Carried { action, call };
    }
}

/// Dispatches an approval call; a call the cluster refuses is a fault the gate hears of.
fn dispatch(c: &ServiceCall) -> Result<u32, CalloutFault> {
    let headers: Vec<(&str, &str)> = c
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    hostcalls::dispatch_http_call(
        &c.cluster,
        headers,
        c.body.as_deref(),
        vec![],
        Duration::from_millis(c.timeout_ms),
    )
    .map_err(|status| {
        CalloutFault::NotDispatched(format!(
            "cluster {} refused the call ({status:?})",
            c.cluster
        ))
    })
}

/// Reads the answer to a callout for the gate (in the callout's own callback).
pub fn callout_answer(
    num_headers: usize,
    body_size: usize,
) -> Result<(u16, Vec<u8>), CalloutFault> {
    vigil_core::gate::read_answer(
        num_headers,
        body_size,
        || {
            hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
                .ok()
                .flatten()
        },
        || {
            hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
                .ok()
                .flatten()
                .unwrap_or_default()
        },
    )
}
