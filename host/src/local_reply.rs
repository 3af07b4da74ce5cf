//! Replies Envoy makes itself, or on a filter's behalf, with the three paths of
//! `DownstreamFilterManager::sendLocalReply` (source/common/http/filter_manager.cc):
//!
//! - no response has started: the reply is encoded through the filter chain
//!   (`prepareLocalReplyViaFilterChain`), so this filter's response callbacks see it;
//! - response headers reached the chain but not the client (a filter holds them): the reply
//!   goes straight to the client (`sendDirectLocalReply`); the filter hears nothing more of
//!   the response;
//! - response headers went out: nothing can replace them, the stream is reset.
//!
//! A local reply to a gRPC request (`content-type: application/grpc...`) is a trailers-only
//! gRPC answer, whichever path it takes (`Utility::encodeLocalReply`, source/common/http/
//! utility.cc): `:status` 200, `content-type: application/grpc`, `grpc-status` (the one asked
//! for, or `Grpc::Utility::httpToGrpcStatus` of the HTTP status, source/common/grpc/status.cc:
//! 502 is 14 UNAVAILABLE), the body percent-encoded into `grpc-message`, and no body.
//!
//! And the buffer limit: a body a filter buffers (StopIterationAndBuffer) past the stream's
//! limit ends in Envoy's own reply (`ActiveStreamDecoderFilter::requestDataTooLarge`: 413
//! "Payload Too Large", details `request_payload_too_large`;
//! `ActiveStreamEncoderFilter::responseDataTooLarge`: 500 "Internal Server Error", details
//! `response_payload_too_large`, which by then can only go direct or reset).

use crate::filter_manager::Way;
use crate::headers::HeaderMap;
use crate::state::{Deferred, Direction, LocalReply};
use crate::vm::{HostError, Vm};

impl LocalReply {
    /// A reply Envoy makes itself (no extra headers, no gRPC status).
    pub fn envoy(status: u32, body: &str, details: &str) -> Self {
        Self {
            status,
            details: details.into(),
            body: body.as_bytes().to_vec(),
            headers: Vec::new(),
            grpc_status: -1,
        }
    }

    /// Headers as Envoy writes them: `:status`, the extra headers, then content-length and,
    /// when the body is not empty and no content-type was given, `text/plain`.
    fn header_map(&self) -> HeaderMap {
        let mut headers = HeaderMap::default();
        headers.add(":status", &self.status.to_string());
        for (k, v) in &self.headers {
            headers.add(k, v);
        }
        if !self.body.is_empty() {
            headers.replace("content-length", &self.body.len().to_string());
            if headers.get("content-type").is_none() {
                headers.add("content-type", "text/plain");
            }
        }
        headers
    }
}

/// `Grpc::Utility::httpToGrpcStatus` (source/common/grpc/status.cc), after
/// https://github.com/grpc/grpc/blob/master/doc/http-grpc-status-mapping.md.
fn http_to_grpc_status(status: u32) -> i32 {
    match status {
        400 => 13,
        401 => 16,
        403 => 7,
        404 => 12,
        429 | 502 | 503 | 504 => 14,
        _ => 2,
    }
}

/// Envoy's `PercentEncoding::encode` for `grpc-message`: bytes outside printable ASCII, and
/// `%`, as `%XX`.
fn percent_encoded(body: &[u8]) -> String {
    let mut out = String::with_capacity(body.len());
    for &b in body {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether Envoy treats the request as gRPC (`Grpc::Common::hasGrpcContentType`).
fn is_grpc(request: Option<&HeaderMap>) -> bool {
    request
        .and_then(|h| h.get("content-type"))
        .is_some_and(|ct| {
            ct == "application/grpc"
                || ct.starts_with("application/grpc+")
                || ct.starts_with("application/grpc;")
        })
}

impl LocalReply {
    /// The trailers-only gRPC answer Envoy sends instead of this reply to a gRPC request.
    fn for_grpc(&self) -> LocalReply {
        let mut headers: Vec<(String, String)> = self
            .headers
            .iter()
            .filter(|(k, _)| k != "content-type" && k != "content-length")
            .cloned()
            .collect();
        headers.push(("content-type".into(), "application/grpc".into()));
        if !headers.iter().any(|(k, _)| k == "grpc-status") {
            let code = if self.grpc_status >= 0 {
                self.grpc_status
            } else {
                http_to_grpc_status(self.status)
            };
            headers.push(("grpc-status".into(), code.to_string()));
        }
        let mut body = self.body.as_slice();
        if body.last() == Some(&b'\n') {
            body = &body[..body.len() - 1];
        }
        if !body.is_empty() {
            headers.push(("grpc-message".into(), percent_encoded(body)));
        }
        LocalReply {
            status: 200,
            details: self.details.clone(),
            body: Vec::new(),
            headers,
            grpc_status: self.grpc_status,
        }
    }
}

impl Vm {
    /// The reply the filter asked for with `send_local_response`.
    pub(crate) fn send_filter_reply(&mut self, id: u32) -> Result<(), HostError> {
        let Some(reply) = self.stream_mut(id)?.local_reply.clone() else {
            return Ok(());
        };
        self.local_reply(id, reply)
    }

    /// Sends a local reply by whichever of Envoy's three paths applies now.
    pub(crate) fn local_reply(&mut self, id: u32, reply: LocalReply) -> Result<(), HostError> {
        if self.has_failed() {
            // The filter cannot run: its encode callbacks fail the stream instead.
            self.fail_stream(id);
            return Ok(());
        }
        let s = self.stream_mut(id)?;
        if s.ended || s.reset.is_some() || s.failed_by_vm {
            return Ok(());
        }
        // `sendLocalReply` records the details before choosing a path.
        s.code_details = Some(reply.details.clone());
        let reply = if is_grpc(s.request.headers.as_ref()) {
            reply.for_grpc()
        } else {
            reply
        };
        if s.response.sent_headers.is_some() || s.direct_reply {
            s.reset.get_or_insert_with(|| {
                "local reply after response headers were sent: stream reset".into()
            });
            return Ok(());
        }
        if s.response.headers.is_some() {
            Self::direct_reply(&mut s.response, &reply);
            s.direct_reply = true;
            s.local_reply_started = true;
            Self::stop_request(&mut s.request);
            return Ok(());
        }
        s.local_reply_started = true;
        Self::stop_request(&mut s.request);
        s.response = Direction::default();
        let headers = reply.header_map();
        let pairs = headers.pairs().clone();
        self.headers(
            id,
            Way::Response,
            HeaderMap::from_pairs(&pairs),
            reply.body.is_empty(),
        )?;
        if !reply.body.is_empty() {
            self.data(id, Way::Response, &reply.body, true)?;
        }
        Ok(())
    }

    /// `sendDirectLocalReply`: the reply goes to the codec as it is; the held response
    /// (headers, buffered body) is dropped.
    fn direct_reply(response: &mut Direction, reply: &LocalReply) {
        *response = Direction {
            sent_headers: Some(reply.header_map().pairs().clone()),
            sent_body: reply.body.clone(),
            sent_end: true,
            ..Direction::default()
        };
    }

    fn stop_request(request: &mut Direction) {
        request.stopped_all = false;
        request.headers_stopped = false;
        request.buffering = false;
        request.headers_visible = false;
    }

    /// A reply the filter asked for in a callback where Envoy's overflow reply was already
    /// prepared never goes out; `sendLocalReply` still records its details (last writer wins).
    pub(crate) fn drop_filter_reply(&mut self, id: u32) {
        let state = self.store.data_mut();
        state
            .deferred
            .retain(|d| !matches!(d, Deferred::LocalReply { context_id } if *context_id == id));
        if let Some(s) = state.streams.get_mut(&id) {
            if let Some(dropped) = s.local_reply.take() {
                s.overflow_details = Some(dropped.details);
            }
        }
    }

    /// The filter buffered more than the stream's buffer limit.
    pub(crate) fn buffer_overflow(&mut self, id: u32, way: Way) -> Result<(), HostError> {
        let reply = match way {
            Way::Request => {
                LocalReply::envoy(413, "Payload Too Large", "request_payload_too_large")
            }
            Way::Response => {
                LocalReply::envoy(500, "Internal Server Error", "response_payload_too_large")
            }
        };
        self.local_reply(id, reply)?;
        let s = self.stream_mut(id)?;
        if let Some(details) = s.overflow_details.take() {
            s.code_details = Some(details);
        }
        Ok(())
    }
}
