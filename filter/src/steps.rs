//! Carrying out the gate's steps through the host, for whichever context is in effect: the
//! stream in its own callbacks, or a held stream the root switched to with
//! `set_effective_context` (Envoy's way to act on another stream from a callout answer;
//! every hostcall below acts on the effective context).

use crate::clock::now_nanos;
use crate::logging::ctx_log;
use crate::plugin::Plugin;
use crate::waits::{Held, SharedGate, FAST_TICK};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{Action, BufferType, MapType};
use std::time::Duration;
use vigil_core::approval::protocol::CalloutFault;
use vigil_core::gate::{Flow, Level, Reply, ServiceCall, Step};

/// Where the steps are carried out.
#[derive(Clone, Copy)]
pub enum Within {
    /// A callback of the stream that can pause: the flow is its return value. `body` is the
    /// buffer this callback sees, for `ReplaceBody`.
    Callback { body: Option<BufferType> },
    /// An answer that came outside the stream's callbacks: `Continue` resumes the request.
    Answer,
}

/// What came of carrying out a reply.
pub struct Carried {
    pub action: Action,
    /// The approval call dispatched, whose answer comes back to the dispatching context.
    pub call: Option<u32>,
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
                Step::ReplaceBody(bytes, len) => {
                    if let Within::Callback { body: Some(buffer) } = within {
                        let _ = hostcalls::set_buffer(buffer, 0, len, &bytes);
                    }
                }
                Step::FetchKeys(provider) => {
                    let held = Held {
                        context_id,
                        provider,
                        gate: gate.clone(),
                    };
                    if plugin.waits.borrow_mut().hold(held) {
                        let _ = hostcalls::set_tick_period(FAST_TICK);
                    }
                }
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
                Step::Seal { complete } => seal(plugin, context_id, gate, complete),
                Step::Note(level, message) => match level {
                    Level::Debug => ctx_log!(debug, context_id, "{}", message),
                    Level::Info => ctx_log!(info, context_id, "{}", message),
                    Level::Warn => ctx_log!(warn, context_id, "{}", message),
                },
            }
        }
        if let Some(fault) = failed_call {
            reply = plugin.with_cx(|cx| gate.borrow_mut().approval_answer(cx, Err(fault)));
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

/// A property of the context in effect, as text (None when absent or not UTF-8).
pub fn property_string(path: &str) -> Option<String> {
    hostcalls::get_property(path.split('.').collect())
        .ok()
        .flatten()
        .and_then(|b| String::from_utf8(b).ok())
}

/// Seals the stream's record and writes it to filter state, once. The access log reads
/// filter state after `on_log` (stream.rs), so every record, an incomplete one sealed in
/// `on_log` too, is on its own exchange's line.
fn seal(plugin: &Plugin, context_id: u32, gate: &SharedGate, complete: bool) {
    let mut records = plugin.records.borrow_mut();
    let sealed = gate.borrow_mut().seal(
        &plugin.config,
        now_nanos(),
        complete,
        property_string("response.code_details"),
        &plugin.vm_id,
        &mut records,
        &plugin.record_key,
    );
    drop(records);
    let Some(sealed) = sealed else {
        return;
    };
    for (name, n) in &sealed.masked {
        plugin.count(&format!("vigil.masked.{name}"), *n as i64);
    }
    let property = plugin.config.record.property.as_str();
    if let Err(status) = hostcalls::set_property(vec![property], Some(&sealed.bytes)) {
        // Never silently nowhere: the record goes to Envoy's log in full.
        plugin.count("vigil.records.unwritten", 1);
        ctx_log!(
            warn,
            context_id,
            "session record seq {} could not be written to filter state ({:?}): {}",
            sealed.record.seq,
            status,
            String::from_utf8_lossy(&sealed.bytes)
        );
        return;
    }
    publish_usage(plugin, &sealed.record);
    plugin.checkpoint(context_id, None);
    carry_checkpoints(plugin, context_id);
    ctx_log!(
        debug,
        context_id,
        "session record seq {} hash {} written{}",
        sealed.record.seq,
        sealed.record.hash,
        if complete { "" } else { " (incomplete)" }
    );
}

/// Writes the checkpoints made since the last record of this VM to this exchange's filter
/// state (`<record.property>_checkpoints`, a JSON array), for its access-log line.
fn carry_checkpoints(plugin: &Plugin, context_id: u32) {
    let pending = std::mem::take(&mut *plugin.pending_checkpoints.borrow_mut());
    if pending.is_empty() {
        return;
    }
    let mut array = b"[".to_vec();
    array.extend_from_slice(&pending.join(&b","[..]));
    array.push(b']');
    let name = format!("{}_checkpoints", plugin.config.record.property);
    if let Err(status) = hostcalls::set_property(vec![name.as_str()], Some(&array)) {
        // They are in Envoy's log already; say that this line does not carry them.
        plugin.count("vigil.checkpoints.not_carried", pending.len() as i64);
        ctx_log!(
            warn,
            context_id,
            "{} checkpoint(s) could not be written to filter state ({:?}); Envoy's log has them",
            pending.len(),
            status
        );
    }
}

/// What the call consumed: GenAI attributes in filter state for the access log, and token
/// counters per model and group (vigil_core::usage).
fn publish_usage(plugin: &Plugin, record: &vigil_core::record::SessionRecord) {
    if record.gen_ai.is_none() {
        return;
    }
    for (name, value) in vigil_core::usage::attributes(record) {
        let _ = hostcalls::set_property(vec![name], Some(value.as_bytes()));
    }
    let config = &plugin.config;
    for (name, n) in
        vigil_core::usage::counters(record, &config.named_groups, &config.provider_names)
    {
        plugin.count(&name, n);
    }
}
