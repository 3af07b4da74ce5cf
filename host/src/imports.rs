//! The `env` imports of proxy-wasm ABI 0.2.1: every `proxy_*` function the Rust SDK links,
//! with the statuses Envoy returns (source/extensions/common/wasm/context.cc and
//! proxy-wasm-cpp-host src/exports.cc). Bad pointers give `InvalidMemoryAccess`, never a
//! host crash; work Envoy defers until the VM call returns (continue, reset, local reply,
//! queue notifications) is queued in `HostState::deferred`.

use crate::abi::{
    decode_pairs, encode_pairs, BufferType, LogLevel, MapType, MetricType, Status, StreamType,
};
use crate::guest;
use crate::headers::HeaderMap;
use crate::properties;
use crate::state::{Deferred, HostState, LocalReply, Metric, PendingCall};
use wasmtime::{Caller, Linker};

type Ret = Result<i32, wasmtime::Error>;

macro_rules! mem {
    ($e:expr) => {
        match $e {
            Some(v) => v,
            None => return Ok(Status::InvalidMemoryAccess.code()),
        }
    };
}

fn seen(caller: &mut Caller<'_, HostState>, name: &'static str) {
    caller.data_mut().calls_seen.insert(name);
}

fn ok(status: Status) -> Ret {
    Ok(status.code())
}

/// Which header map a call may read or write now, following context.cc `getMap` (mutable)
/// and `getConstMap` (read-only, which in the access-log phase sees the logged maps).
fn header_map(state: &mut HostState, map: MapType, write: bool) -> Result<&mut HeaderMap, Status> {
    if matches!(
        map,
        MapType::HttpCallResponseHeaders | MapType::HttpCallResponseTrailers
    ) {
        if write {
            return Err(Status::BadArgument);
        }
        let response = state.call_response.as_mut().ok_or(Status::BadArgument)?;
        return Ok(if map == MapType::HttpCallResponseHeaders {
            &mut response.headers
        } else {
            &mut response.trailers
        });
    }
    let stream = state.current_stream().ok_or(Status::BadArgument)?;
    let access_log = stream.access_log_phase;
    let (dir, trailers) = match map {
        MapType::RequestHeaders => (&mut stream.request, false),
        MapType::RequestTrailers => (&mut stream.request, true),
        MapType::ResponseHeaders => (&mut stream.response, false),
        MapType::ResponseTrailers => (&mut stream.response, true),
        _ => return Err(Status::BadArgument),
    };
    if access_log {
        // Read-only; request trailers are never kept for the log (getConstMap returns null).
        if write || (trailers && map == MapType::RequestTrailers) {
            return Err(if write {
                Status::BadArgument
            } else {
                Status::NotFound
            });
        }
        let slot = if trailers {
            dir.trailers.as_mut()
        } else {
            dir.headers.as_mut()
        };
        return slot.ok_or(Status::NotFound);
    }
    if trailers {
        if dir.trailers.is_none() && write && dir.in_last_body_callback {
            dir.trailers = Some(HeaderMap::default());
            dir.trailers_visible = true;
        }
        if !dir.trailers_visible {
            return Err(Status::BadArgument);
        }
        dir.trailers.as_mut().ok_or(Status::BadArgument)
    } else {
        if !dir.headers_visible {
            return Err(Status::BadArgument);
        }
        dir.headers.as_mut().ok_or(Status::BadArgument)
    }
}

fn map_type(code: i32) -> Result<MapType, Status> {
    MapType::from_code(code).ok_or(Status::BadArgument)
}

/// Applies an edit to a header map the filter may write now, or answers why it may not.
fn edit_map(c: &mut Caller<'_, HostState>, map: i32, edit: impl FnOnce(&mut HeaderMap)) -> Ret {
    match map_type(map).and_then(|m| header_map(c.data_mut(), m, true)) {
        Ok(m) => {
            edit(m);
            ok(Status::Ok)
        }
        Err(s) => ok(s),
    }
}

/// The bytes a buffer type holds now, per context.cc `getBuffer`.
fn buffer_bytes(state: &mut HostState, kind: BufferType) -> Option<Vec<u8>> {
    match kind {
        BufferType::VmConfiguration => Some(state.vm_config.clone()),
        BufferType::PluginConfiguration => Some(state.plugin_config.clone()),
        BufferType::HttpCallResponseBody => state.call_response.as_ref().map(|r| r.body.clone()),
        BufferType::RequestBody => state.current_stream().map(|s| s.request.body.clone()),
        BufferType::ResponseBody => state.current_stream().map(|s| s.response.body.clone()),
        _ => None,
    }
}

pub fn add_to_linker(linker: &mut Linker<HostState>) -> Result<(), wasmtime::Error> {
    linker.func_wrap(
        "env",
        "proxy_log",
        |mut c: Caller<'_, HostState>, level: i32, ptr: i32, len: i32| -> Ret {
            seen(&mut c, "proxy_log");
            let Some(level) = LogLevel::from_code(level) else {
                return ok(Status::BadArgument);
            };
            let message = mem!(guest::read_string(&mut c, ptr, len));
            c.data_mut().log(level, message);
            ok(Status::Ok)
        },
    )?;

    linker.func_wrap(
        "env",
        "proxy_get_log_level",
        |mut c: Caller<'_, HostState>, ret: i32| -> Ret {
            seen(&mut c, "proxy_get_log_level");
            let level = c.data().log_level as u32;
            mem!(guest::write_u32(&mut c, ret, level).then_some(()));
            ok(Status::Ok)
        },
    )?;

    linker.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        |mut c: Caller<'_, HostState>, ret: i32| -> Ret {
            seen(&mut c, "proxy_get_current_time_nanoseconds");
            let now = c.data().now_nanos;
            mem!(guest::write_u64(&mut c, ret, now).then_some(()));
            ok(Status::Ok)
        },
    )?;

    linker.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        |mut c: Caller<'_, HostState>, period: i32| -> Ret {
            seen(&mut c, "proxy_set_tick_period_milliseconds");
            // Ticks belong to the root context, whichever context asks (context.cc setTimerPeriod).
            let state = c.data_mut();
            state.tick_period_ms = period as u32;
            state.last_tick_nanos = state.now_nanos;
            ok(Status::Ok)
        },
    )?;

    linker.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut c: Caller<'_, HostState>,
         kind: i32,
         start: i32,
         max: i32,
         ptr_ptr: i32,
         size_ptr: i32|
         -> Ret {
            seen(&mut c, "proxy_get_buffer_bytes");
            let Some(kind) = BufferType::from_code(kind) else {
                return ok(Status::BadArgument);
            };
            let Some(bytes) = buffer_bytes(c.data_mut(), kind) else {
                return ok(Status::NotFound);
            };
            let (start, max) = (start as u32 as usize, max as u32 as usize);
            if start.checked_add(max).is_none() {
                return ok(Status::BadArgument);
            }
            // cpp-host get_buffer_bytes: clamp to the buffer; nothing to copy is Ok with no data.
            let end = start.saturating_add(max).min(bytes.len());
            if start >= end {
                return ok(Status::Ok);
            }
            guest::give(&mut c, &bytes[start..end], ptr_ptr, size_ptr).map(Status::code)
        },
    )?;

    linker.func_wrap(
        "env",
        "proxy_set_buffer_bytes",
        |mut c: Caller<'_, HostState>,
         kind: i32,
         start: i32,
         size: i32,
         data: i32,
         data_len: i32|
         -> Ret {
            seen(&mut c, "proxy_set_buffer_bytes");
            let Some(kind) = BufferType::from_code(kind) else {
                return ok(Status::BadArgument);
            };
            let data = mem!(guest::read(&mut c, data, data_len));
            let state = c.data_mut();
            let Some(stream) = state.current_stream() else {
                return ok(Status::NotFound);
            };
            let buffer = match kind {
                BufferType::RequestBody => &mut stream.request.body,
                BufferType::ResponseBody => &mut stream.response.body,
                _ => return ok(Status::NotFound),
            };
            let (start, size) = (start as u32 as usize, size as u32 as usize);
            // Envoy Buffer::copyFrom: start 0 replaces the first `size` bytes; start at or past
            // the end appends; anything else is refused.
            if start == 0 {
                let drained = size.min(buffer.len());
                buffer.splice(0..drained, data);
            } else if start >= buffer.len() {
                buffer.extend_from_slice(&data);
            } else {
                return ok(Status::BadArgument);
            }
            ok(Status::Ok)
        },
    )?;

    linker.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        |mut c: Caller<'_, HostState>, map: i32, ptr_ptr: i32, size_ptr: i32| -> Ret {
            seen(&mut c, "proxy_get_header_map_pairs");
            let map = match map_type(map) {
                Ok(m) => m,
                Err(s) => return ok(s),
            };
            // getHeaderMapPairs answers an absent map with no pairs, not an error.
            let bytes = match header_map(c.data_mut(), map, false) {
                Ok(m) => encode_pairs(m.pairs()),
                Err(_) => encode_pairs(&[]),
            };
            guest::give(&mut c, &bytes, ptr_ptr, size_ptr).map(Status::code)
        },
    )?;

    linker.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        |mut c: Caller<'_, HostState>, map: i32, ptr: i32, len: i32| -> Ret {
            seen(&mut c, "proxy_set_header_map_pairs");
            let bytes = mem!(guest::read(&mut c, ptr, len));
            let Some(pairs) = decode_pairs(&bytes) else {
                return ok(Status::BadArgument);
            };
            edit_map(&mut c, map, |m| m.set_all(&pairs))
        },
    )?;

    linker.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut c: Caller<'_, HostState>,
         map: i32,
         kp: i32,
         kl: i32,
         ptr_ptr: i32,
         size_ptr: i32|
         -> Ret {
            seen(&mut c, "proxy_get_header_map_value");
            let key = mem!(guest::read_string(&mut c, kp, kl));
            let value = match map_type(map).and_then(|m| header_map(c.data_mut(), m, false)) {
                Ok(m) => m.get(&key).map(str::to_string),
                Err(s) => return ok(s),
            };
            match value {
                Some(v) => guest::give(&mut c, v.as_bytes(), ptr_ptr, size_ptr).map(Status::code),
                None => ok(Status::NotFound),
            }
        },
    )?;

    linker.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |mut c: Caller<'_, HostState>, map: i32, kp: i32, kl: i32| -> Ret {
            seen(&mut c, "proxy_remove_header_map_value");
            let key = mem!(guest::read_string(&mut c, kp, kl));
            edit_map(&mut c, map, |m| m.remove(&key))
        },
    )?;

    linker.func_wrap(
        "env",
        "proxy_replace_header_map_value",
        |mut c: Caller<'_, HostState>, map: i32, kp: i32, kl: i32, vp: i32, vl: i32| -> Ret {
            seen(&mut c, "proxy_replace_header_map_value");
            let key = mem!(guest::read_string(&mut c, kp, kl));
            let value = mem!(guest::read_string(&mut c, vp, vl));
            edit_map(&mut c, map, |m| m.replace(&key, &value))
        },
    )?;

    linker.func_wrap(
        "env",
        "proxy_add_header_map_value",
        |mut c: Caller<'_, HostState>, map: i32, kp: i32, kl: i32, vp: i32, vl: i32| -> Ret {
            seen(&mut c, "proxy_add_header_map_value");
            let key = mem!(guest::read_string(&mut c, kp, kl));
            let value = mem!(guest::read_string(&mut c, vp, vl));
            edit_map(&mut c, map, |m| m.add(&key, &value))
        },
    )?;

    linker.func_wrap(
        "env",
        "proxy_get_property",
        |mut c: Caller<'_, HostState>, pp: i32, pl: i32, ptr_ptr: i32, size_ptr: i32| -> Ret {
            seen(&mut c, "proxy_get_property");
            let path = mem!(guest::read(&mut c, pp, pl));
            let state = c.data();
            match properties::resolve(state, state.current_context, &path) {
                Some(value) => guest::give(&mut c, &value, ptr_ptr, size_ptr).map(Status::code),
                None => ok(Status::NotFound),
            }
        },
    )?;

    linker.func_wrap(
        "env",
        "proxy_set_property",
        |mut c: Caller<'_, HostState>, pp: i32, pl: i32, vp: i32, vl: i32| -> Ret {
            seen(&mut c, "proxy_set_property");
            let path = mem!(guest::read(&mut c, pp, pl));
            let value = mem!(guest::read(&mut c, vp, vl));
            // Only a stream has stream info to hold filter state (context.cc setProperty: NotFound).
            match c.data_mut().current_stream() {
                Some(stream) => {
                    stream
                        .filter_state
                        .insert(properties::filter_state_key(&path), value);
                    ok(Status::Ok)
                }
                None => ok(Status::NotFound),
            }
        },
    )?;

    linker.func_wrap(
        "env",
        "proxy_get_shared_data",
        |mut c: Caller<'_, HostState>,
         kp: i32,
         kl: i32,
         ptr_ptr: i32,
         size_ptr: i32,
         cas_ptr: i32|
         -> Ret {
            seen(&mut c, "proxy_get_shared_data");
            let key = mem!(guest::read_string(&mut c, kp, kl));
            let entry = c
                .data()
                .shared
                .lock()
                .map_err(|_| wasmtime::Error::msg("shared data lock poisoned"))?
                .get(&key);
            let Some((value, cas)) = entry else {
                return ok(Status::NotFound);
            };
            mem!(guest::write_u32(&mut c, cas_ptr, cas).then_some(()));
            if value.is_empty() {
                return ok(Status::Ok);
            }
            guest::give(&mut c, &value, ptr_ptr, size_ptr).map(Status::code)
        },
    )?;

    linker.func_wrap(
        "env",
        "proxy_set_shared_data",
        |mut c: Caller<'_, HostState>, kp: i32, kl: i32, vp: i32, vl: i32, cas: i32| -> Ret {
            seen(&mut c, "proxy_set_shared_data");
            let key = mem!(guest::read_string(&mut c, kp, kl));
            let value = mem!(guest::read(&mut c, vp, vl));
            let mut shared = c
                .data()
                .shared
                .lock()
                .map_err(|_| wasmtime::Error::msg("shared data lock poisoned"))?;
            match shared.set(&key, &value, cas as u32) {
                Ok(()) => ok(Status::Ok),
                Err(_) => ok(Status::CasMismatch),
            }
        },
    )?;

    linker.func_wrap(
        "env",
        "proxy_register_shared_queue",
        |mut c: Caller<'_, HostState>, np: i32, nl: i32, ret: i32| -> Ret {
            seen(&mut c, "proxy_register_shared_queue");
            let name = mem!(guest::read_string(&mut c, np, nl));
            let state = c.data();
            let id = state
                .shared
                .lock()
                .map_err(|_| wasmtime::Error::msg("shared data lock poisoned"))?
                .register_queue(
                    &state.plugin.vm_id,
                    &name,
                    state.current_context,
                    state.host_id,
                );
            mem!(guest::write_u32(&mut c, ret, id).then_some(()));
            ok(Status::Ok)
        },
    )?;

    linker.func_wrap(
        "env",
        "proxy_resolve_shared_queue",
        |mut c: Caller<'_, HostState>, vp: i32, vl: i32, np: i32, nl: i32, ret: i32| -> Ret {
            seen(&mut c, "proxy_resolve_shared_queue");
            let vm_id = mem!(guest::read_string(&mut c, vp, vl));
            let name = mem!(guest::read_string(&mut c, np, nl));
            let id = c
                .data()
                .shared
                .lock()
                .map_err(|_| wasmtime::Error::msg("shared data lock poisoned"))?
                .resolve_queue(&vm_id, &name);
            match id {
                Some(id) => {
                    mem!(guest::write_u32(&mut c, ret, id).then_some(()));
                    ok(Status::Ok)
                }
                None => ok(Status::NotFound),
            }
        },
    )?;

    linker.func_wrap(
        "env",
        "proxy_dequeue_shared_queue",
        |mut c: Caller<'_, HostState>, id: i32, ptr_ptr: i32, size_ptr: i32| -> Ret {
            seen(&mut c, "proxy_dequeue_shared_queue");
            let item = {
                let mut shared = c
                    .data()
                    .shared
                    .lock()
                    .map_err(|_| wasmtime::Error::msg("shared data lock poisoned"))?;
                match shared.queue(id as u32) {
                    None => return ok(Status::NotFound),
                    Some(q) => q.items.pop_front(),
                }
            };
            match item {
                Some(data) => guest::give(&mut c, &data, ptr_ptr, size_ptr).map(Status::code),
                None => ok(Status::Empty),
            }
        },
    )?;

    linker.func_wrap(
        "env",
        "proxy_enqueue_shared_queue",
        |mut c: Caller<'_, HostState>, id: i32, vp: i32, vl: i32| -> Ret {
            seen(&mut c, "proxy_enqueue_shared_queue");
            let data = mem!(guest::read(&mut c, vp, vl));
            let host_id = c.data().host_id;
            let owner = {
                let mut shared = c
                    .data()
                    .shared
                    .lock()
                    .map_err(|_| wasmtime::Error::msg("shared data lock poisoned"))?;
                match shared.queue(id as u32) {
                    None => return ok(Status::NotFound),
                    Some(q) => {
                        q.items.push_back(data);
                        (q.owner_host == host_id).then_some(q.owner_context)
                    }
                }
            };
            if let Some(context_id) = owner {
                c.data_mut().deferred.push_back(Deferred::QueueReady {
                    context_id,
                    queue_id: id as u32,
                });
            }
            ok(Status::Ok)
        },
    )?;

    linker.func_wrap(
        "env",
        "proxy_continue_stream",
        |mut c: Caller<'_, HostState>, kind: i32| -> Ret {
            seen(&mut c, "proxy_continue_stream");
            let state = c.data_mut();
            let context_id = state.current_context;
            let is_stream = state.streams.contains_key(&context_id);
            match StreamType::from_code(kind) {
                Some(StreamType::Request) | Some(StreamType::Response) if is_stream => {
                    state.deferred.push_back(Deferred::Continue {
                        context_id,
                        request: kind == 0,
                    });
                    ok(Status::Ok)
                }
                // Without decoder/encoder callbacks Envoy does nothing and still says Ok.
                Some(StreamType::Request)
                | Some(StreamType::Response)
                | Some(StreamType::Downstream) => ok(Status::Ok),
                Some(StreamType::Upstream) => ok(Status::Unimplemented),
                None => ok(Status::BadArgument),
            }
        },
    )?;

    linker.func_wrap(
        "env",
        "proxy_close_stream",
        |mut c: Caller<'_, HostState>, kind: i32| -> Ret {
            seen(&mut c, "proxy_close_stream");
            let state = c.data_mut();
            let context_id = state.current_context;
            let is_stream = state.streams.contains_key(&context_id);
            match StreamType::from_code(kind) {
                Some(StreamType::Request) | Some(StreamType::Response) if is_stream => {
                    state.deferred.push_back(Deferred::Reset {
                        context_id,
                        request: kind == 0,
                    });
                    ok(Status::Ok)
                }
                Some(_) => ok(Status::Ok),
                None => ok(Status::BadArgument),
            }
        },
    )?;

    linker.func_wrap(
        "env",
        "proxy_send_local_response",
        |mut c: Caller<'_, HostState>,
         status: i32,
         dp: i32,
         dl: i32,
         bp: i32,
         bl: i32,
         hp: i32,
         hl: i32,
         grpc: i32|
         -> Ret {
            seen(&mut c, "proxy_send_local_response");
            let details = mem!(guest::read_string(&mut c, dp, dl));
            let body = mem!(guest::read(&mut c, bp, bl));
            let header_bytes = mem!(guest::read(&mut c, hp, hl));
            let Some(headers) = decode_pairs(&header_bytes) else {
                return ok(Status::BadArgument);
            };
            let state = c.data_mut();
            let context_id = state.current_context;
            if let Some(stream) = state.streams.get_mut(&context_id) {
                // Envoy replaces spaces in details (StringUtil::replaceAllEmptySpace).
                let details = details.replace(char::is_whitespace, "_");
                stream.local_reply = Some(LocalReply {
                    status: status as u32,
                    details,
                    body,
                    headers,
                    grpc_status: grpc,
                });
                state
                    .deferred
                    .push_back(Deferred::LocalReply { context_id });
            }
            ok(Status::Ok)
        },
    )?;

    linker.func_wrap(
        "env",
        "proxy_http_call",
        |mut c: Caller<'_, HostState>,
         up: i32,
         ul: i32,
         hp: i32,
         hl: i32,
         bp: i32,
         bl: i32,
         tp: i32,
         tl: i32,
         timeout: i32,
         token_ptr: i32|
         -> Ret {
            seen(&mut c, "proxy_http_call");
            let cluster = mem!(guest::read_string(&mut c, up, ul));
            let header_bytes = mem!(guest::read(&mut c, hp, hl));
            let body = mem!(guest::read(&mut c, bp, bl));
            let trailer_bytes = mem!(guest::read(&mut c, tp, tl));
            let (Some(headers), Some(trailers)) =
                (decode_pairs(&header_bytes), decode_pairs(&trailer_bytes))
            else {
                return ok(Status::BadArgument);
            };
            let state = c.data_mut();
            // context.cc httpCall: negative timeout, unknown cluster, or no :path, :method and
            // host (:authority) are BadArgument; a body sets content-length.
            if timeout < 0 {
                return ok(Status::BadArgument);
            }
            if !state.clusters.contains(&cluster) {
                state.unknown_cluster_calls.push(cluster);
                return ok(Status::BadArgument);
            }
            if state.unhealthy_clusters.contains(&cluster) {
                // No healthy host: the async client fails inline and returns no request
                // (callouts.rs `set_cluster_healthy`); nothing will call back.
                return ok(Status::InternalFailure);
            }
            let mut map = HeaderMap::from_pairs(&headers);
            if map.get(":path").is_none()
                || map.get(":method").is_none()
                || map.get(":authority").is_none()
            {
                return ok(Status::BadArgument);
            }
            if !body.is_empty() {
                map.replace("content-length", &body.len().to_string());
            }
            let token = state.next_token;
            state.next_token += 1;
            let call = PendingCall {
                token,
                context_id: state.current_context,
                cluster,
                headers: map.pairs().clone(),
                body,
                trailers,
                timeout_ms: timeout as u32,
                dispatched_at_nanos: state.now_nanos,
            };
            state.calls_made.push(call.clone());
            state.pending_calls.insert(token, call);
            mem!(guest::write_u32(&mut c, token_ptr, token).then_some(()));
            ok(Status::Ok)
        },
    )?;

    // gRPC callouts: Vigil uses none, so this host carries no gRPC services. A cluster it
    // knows answers Unimplemented; an unknown one is BadArgument, as in Envoy.
    linker.func_wrap(
        "env",
        "proxy_grpc_call",
        |mut c: Caller<'_, HostState>,
         up: i32,
         ul: i32,
         _sp: i32,
         _sl: i32,
         _mp: i32,
         _ml: i32,
         _ip: i32,
         _il: i32,
         _dp: i32,
         _dl: i32,
         _t: i32,
         _ret: i32|
         -> Ret {
            seen(&mut c, "proxy_grpc_call");
            let cluster = mem!(guest::read_string(&mut c, up, ul));
            ok(if c.data().clusters.contains(&cluster) {
                Status::Unimplemented
            } else {
                Status::BadArgument
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_stream",
        |mut c: Caller<'_, HostState>,
         up: i32,
         ul: i32,
         _sp: i32,
         _sl: i32,
         _mp: i32,
         _ml: i32,
         _ip: i32,
         _il: i32,
         _ret: i32|
         -> Ret {
            seen(&mut c, "proxy_grpc_stream");
            let cluster = mem!(guest::read_string(&mut c, up, ul));
            ok(if c.data().clusters.contains(&cluster) {
                Status::Unimplemented
            } else {
                Status::BadArgument
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_send",
        |mut c: Caller<'_, HostState>, _t: i32, _p: i32, _l: i32, _e: i32| -> Ret {
            seen(&mut c, "proxy_grpc_send");
            ok(Status::BadArgument)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_cancel",
        |mut c: Caller<'_, HostState>, _t: i32| -> Ret {
            seen(&mut c, "proxy_grpc_cancel");
            ok(Status::BadArgument)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_close",
        |mut c: Caller<'_, HostState>, _t: i32| -> Ret {
            seen(&mut c, "proxy_grpc_close");
            ok(Status::BadArgument)
        },
    )?;

    linker.func_wrap(
        "env",
        "proxy_get_status",
        |mut c: Caller<'_, HostState>, code_ptr: i32, ptr_ptr: i32, size_ptr: i32| -> Ret {
            seen(&mut c, "proxy_get_status");
            let (code, message) = c.data().status.clone();
            mem!(guest::write_u32(&mut c, code_ptr, code).then_some(()));
            if message.is_empty() {
                mem!((guest::write_u32(&mut c, ptr_ptr, 0)
                    && guest::write_u32(&mut c, size_ptr, 0))
                .then_some(()));
                return ok(Status::Ok);
            }
            guest::give(&mut c, message.as_bytes(), ptr_ptr, size_ptr).map(Status::code)
        },
    )?;

    linker.func_wrap(
        "env",
        "proxy_set_effective_context",
        |mut c: Caller<'_, HostState>, id: i32| -> Ret {
            seen(&mut c, "proxy_set_effective_context");
            let state = c.data_mut();
            let id = id as u32;
            // A context whose stream ended is gone in Envoy, so switching to it is refused.
            if id == state.root_context_id || state.streams.get(&id).is_some_and(|s| !s.ended) {
                state.current_context = id;
                ok(Status::Ok)
            } else {
                ok(Status::BadArgument)
            }
        },
    )?;

    linker.func_wrap(
        "env",
        "proxy_call_foreign_function",
        |mut c: Caller<'_, HostState>,
         np: i32,
         nl: i32,
         _ap: i32,
         _al: i32,
         _rp: i32,
         _rl: i32|
         -> Ret {
            seen(&mut c, "proxy_call_foreign_function");
            let name = mem!(guest::read_string(&mut c, np, nl));
            // Of Envoy's foreign functions (source/extensions/common/wasm/foreign.cc) only
            // clear_route_cache is meaningful without a router; the rest are NotFound here.
            match name.as_str() {
                "clear_route_cache" => ok(Status::Ok),
                _ => ok(Status::NotFound),
            }
        },
    )?;

    linker.func_wrap("env", "proxy_done", |mut c: Caller<'_, HostState>| -> Ret {
        seen(&mut c, "proxy_done");
        c.data_mut().done_called = true;
        ok(Status::Ok)
    })?;

    linker.func_wrap(
        "env",
        "proxy_define_metric",
        |mut c: Caller<'_, HostState>, kind: i32, np: i32, nl: i32, ret: i32| -> Ret {
            seen(&mut c, "proxy_define_metric");
            let Some(kind) = MetricType::from_code(kind) else {
                return ok(Status::BadArgument);
            };
            let name = mem!(guest::read_string(&mut c, np, nl));
            let state = c.data_mut();
            // Envoy reuses the stat of the same name; the id encodes the type in its low 2 bits.
            let existing = state
                .metrics
                .iter()
                .find(|(_, m)| m.name == name && m.kind == kind)
                .map(|(id, _)| *id);
            let id = existing.unwrap_or_else(|| {
                let slot = &mut state.next_metric[kind as usize];
                *slot += 1;
                (*slot << 2) | kind as u32
            });
            state.metrics.entry(id).or_insert(Metric {
                name,
                kind,
                value: 0,
            });
            mem!(guest::write_u32(&mut c, ret, id).then_some(()));
            ok(Status::Ok)
        },
    )?;

    linker.func_wrap(
        "env",
        "proxy_get_metric",
        |mut c: Caller<'_, HostState>, id: i32, ret: i32| -> Ret {
            seen(&mut c, "proxy_get_metric");
            let value = match c.data().metrics.get(&(id as u32)) {
                Some(m) if m.kind == MetricType::Histogram => return ok(Status::BadArgument),
                Some(m) => m.value,
                None => return ok(Status::NotFound),
            };
            mem!(guest::write_u64(&mut c, ret, value as u64).then_some(()));
            ok(Status::Ok)
        },
    )?;

    linker.func_wrap(
        "env",
        "proxy_record_metric",
        |mut c: Caller<'_, HostState>, id: i32, value: i64| -> Ret {
            seen(&mut c, "proxy_record_metric");
            match c.data_mut().metrics.get_mut(&(id as u32)) {
                Some(m) => {
                    match m.kind {
                        MetricType::Counter => m.value = m.value.saturating_add(value),
                        MetricType::Gauge | MetricType::Histogram => m.value = value,
                    }
                    ok(Status::Ok)
                }
                None => ok(Status::NotFound),
            }
        },
    )?;

    linker.func_wrap(
        "env",
        "proxy_increment_metric",
        |mut c: Caller<'_, HostState>, id: i32, offset: i64| -> Ret {
            seen(&mut c, "proxy_increment_metric");
            match c.data_mut().metrics.get_mut(&(id as u32)) {
                // context.cc incrementMetric: counters only go up.
                Some(m) if m.kind == MetricType::Counter && offset <= 0 => ok(Status::BadArgument),
                Some(m) if m.kind == MetricType::Histogram => ok(Status::BadArgument),
                Some(m) => {
                    m.value = m.value.saturating_add(offset);
                    ok(Status::Ok)
                }
                None => ok(Status::NotFound),
            }
        },
    )?;

    Ok(())
}

/// The names of every `env` import above, for coverage checks.
pub const PROXY_IMPORTS: &[&str] = &[
    "proxy_log",
    "proxy_get_log_level",
    "proxy_get_current_time_nanoseconds",
    "proxy_set_tick_period_milliseconds",
    "proxy_get_buffer_bytes",
    "proxy_set_buffer_bytes",
    "proxy_get_header_map_pairs",
    "proxy_set_header_map_pairs",
    "proxy_get_header_map_value",
    "proxy_remove_header_map_value",
    "proxy_replace_header_map_value",
    "proxy_add_header_map_value",
    "proxy_get_property",
    "proxy_set_property",
    "proxy_get_shared_data",
    "proxy_set_shared_data",
    "proxy_register_shared_queue",
    "proxy_resolve_shared_queue",
    "proxy_dequeue_shared_queue",
    "proxy_enqueue_shared_queue",
    "proxy_continue_stream",
    "proxy_close_stream",
    "proxy_send_local_response",
    "proxy_http_call",
    "proxy_grpc_call",
    "proxy_grpc_stream",
    "proxy_grpc_send",
    "proxy_grpc_cancel",
    "proxy_grpc_close",
    "proxy_get_status",
    "proxy_set_effective_context",
    "proxy_call_foreign_function",
    "proxy_done",
    "proxy_define_metric",
    "proxy_get_metric",
    "proxy_record_metric",
    "proxy_increment_metric",
];
