//! Properties with Envoy's attribute names and encodings
//! (https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/advanced/attributes and
//! context.cc `serializeValue`): strings as raw bytes, integers and timestamps as 8-byte
//! little-endian int64 (timestamps in nanoseconds since the epoch), booleans as one byte, maps
//! as serialized pairs. A path is its parts joined by NUL; unknown names fall back to the
//! stream's filter state under `wasm.<name>`, which is where `set_property` writes.

use crate::abi::encode_pairs;
use crate::state::{HostState, Stream};

fn int(v: i64) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

fn split_address(address: &str) -> (&str, i64) {
    match address.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().unwrap_or(0)),
        None => (address, 0),
    }
}

/// Resolves a property for the current context; `None` is Envoy's `NotFound`.
pub fn resolve(state: &HostState, context_id: u32, path: &[u8]) -> Option<Vec<u8>> {
    let parts: Vec<String> = path
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    let name = parts.join(".");
    let stream = state.streams.get(&context_id);
    match name.as_str() {
        "plugin_name" => return Some(state.plugin.name.clone().into_bytes()),
        "plugin_root_id" => return Some(state.plugin.root_id.clone().into_bytes()),
        "plugin_vm_id" => return Some(state.plugin.vm_id.clone().into_bytes()),
        _ => {}
    }
    let stream = stream?;
    if let Some(value) = stream_attribute(state, stream, &parts) {
        return Some(value);
    }
    // Envoy's findValue: a name it does not know is looked up as filter state `wasm.<name>`
    // (the raw path bytes, NULs included, as set_property stored it).
    stream.filter_state.get(&filter_state_key(path)).cloned()
}

/// The filter state key `set_property` uses for a path: `wasm.` + the raw path.
pub fn filter_state_key(path: &[u8]) -> String {
    format!("wasm.{}", String::from_utf8_lossy(path))
}

fn header_value(map: Option<&crate::headers::HeaderMap>, key: &str) -> Option<Vec<u8>> {
    map?.get(key).map(|v| v.as_bytes().to_vec())
}

fn stream_attribute(state: &HostState, s: &Stream, parts: &[String]) -> Option<Vec<u8>> {
    // Header-derived attributes read Envoy's live header maps, which exist only while the
    // filter is in that phase or in the access-log phase (context.cc `findValue`:
    // `request_headers_ ? request_headers_ : access_log_request_headers_`).
    let req = if s.request.headers_visible || s.access_log_phase {
        s.request.headers.as_ref()
    } else {
        None
    };
    let resp_visible = if s.response.headers_visible || s.access_log_phase {
        s.response.headers.as_ref()
    } else {
        None
    };
    // response.code comes from stream info, known once response headers went out.
    let resp = s.response.headers.as_ref();
    let req_header = |k: &str| header_value(req, k);
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let value = match parts.as_slice() {
        ["request", "path"] => req_header(":path")?,
        ["request", "url_path"] => req_header(":path")?
            .split(|b| *b == b'?')
            .next()
            .unwrap_or_default()
            .to_vec(),
        ["request", "query"] => {
            let path = req_header(":path")?;
            match path.iter().position(|b| *b == b'?') {
                Some(i) => path[i + 1..].to_vec(),
                None => Vec::new(),
            }
        }
        ["request", "host"] => req_header(":authority")?,
        ["request", "scheme"] => req_header(":scheme").unwrap_or_else(|| b"http".to_vec()),
        ["request", "method"] => req_header(":method")?,
        ["request", "referer"] => req_header("referer")?,
        ["request", "useragent"] => req_header("user-agent")?,
        ["request", "id"] => req_header("x-request-id")?,
        ["request", "protocol"] => s.connection.protocol.clone().into_bytes(),
        ["request", "time"] => int(s.started_nanos as i64),
        ["request", "duration"] => int(state.now_nanos.saturating_sub(s.started_nanos) as i64),
        ["request", "size"] => int(s.request.sent_body.len().max(s.request.body.len()) as i64),
        ["request", "headers"] => encode_pairs(req?.pairs()),
        ["request", "headers", key] => req_header(key)?,
        ["response", "code"] => int(resp?.get(":status")?.parse().ok()?),
        // source/extensions/filters/common/expr/context.cc `ResponseWrapper::operator[]`:
        // CodeDetails is returned only when `responseCodeDetails()` has a value.
        ["response", "code_details"] => s.code_details.clone()?.into_bytes(),
        ["response", "flags"] => int(0),
        ["response", "headers"] => encode_pairs(resp_visible?.pairs()),
        ["response", "headers", key] => header_value(resp_visible, key)?,
        ["response", "trailers"] => encode_pairs(s.response.trailers.as_ref()?.pairs()),
        ["response", "size"] => int(s.response.sent_body.len() as i64),
        ["source", "address"] => s.connection.source_address.clone().into_bytes(),
        ["source", "port"] => int(split_address(&s.connection.source_address).1),
        ["destination", "address"] => s.connection.destination_address.clone().into_bytes(),
        ["destination", "port"] => int(split_address(&s.connection.destination_address).1),
        ["connection", "id"] | ["connection_id"] => int(s.connection.connection_id as i64),
        ["connection", "mtls"] => vec![0],
        ["upstream", "address"] if s.request.sent_headers.is_some() => {
            s.connection.upstream_address.clone().into_bytes()
        }
        ["upstream", "port"] if s.request.sent_headers.is_some() => {
            int(split_address(&s.connection.upstream_address).1)
        }
        ["xds", "route_name"] | ["route_name"] => s.connection.route_name.clone().into_bytes(),
        ["xds", "cluster_name"] | ["cluster_name"] => {
            s.connection.cluster_name.clone().into_bytes()
        }
        _ => return None,
    };
    Some(value)
}
