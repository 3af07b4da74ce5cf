//! One HTTP exchange through the filter, with the rules of Envoy's filter manager for a
//! single proxy-wasm filter:
//!
//! - Headers that return Pause stop everything: Envoy converts `StopIteration` to
//!   `StopAllIterationAndWatermark` (proxy-wasm-cpp-host src/context.cc
//!   `convertVmCallResultToFilterHeadersStatus`), so body and trailers are held, unseen by the
//!   filter, and on resume the filter gets the held body in one callback.
//! - A body callback that returns Pause is `StopIterationAndBuffer`: the next body callback
//!   sees everything buffered so far plus the new chunk (Envoy context.cc `decodeData`,
//!   `addDecodedData`, `getBuffer` returning the decoding buffer).
//! - Header maps are reachable only during their own callback, or while that phase is
//!   paused (context.cc clears `request_headers_` once a callback returns Continue).
//! - Under the plugin's `allow_on_headers_stop_iteration` (Envoy 1.35+) a Pause at headers is
//!   plain `StopIteration`: headers are held and editable while body callbacks still run.
//! - A body a filter buffers past the stream's buffer limit gets Envoy's own reply
//!   (limits.rs); local replies and the end of a stream live in local_reply.rs and
//!   stream_end.rs.
//! - Continue, reset and local replies asked for inside a callback take effect after the VM
//!   call returns (`addAfterVmCallAction`).

use crate::headers::HeaderMap;
use crate::state::{Deferred, Direction, Stream};
use crate::vm::{HostError, Vm};
use wasmtime::Val;

const CONTINUE: i32 = 0;

/// Which way data flows: towards the model server, or back to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    Request,
    Response,
}

impl Way {
    fn exports(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Way::Request => (
                "proxy_on_request_headers",
                "proxy_on_request_body",
                "proxy_on_request_trailers",
            ),
            Way::Response => (
                "proxy_on_response_headers",
                "proxy_on_response_body",
                "proxy_on_response_trailers",
            ),
        }
    }
}

pub(crate) fn dir(stream: &mut Stream, way: Way) -> &mut Direction {
    match way {
        Way::Request => &mut stream.request,
        Way::Response => &mut stream.response,
    }
}

impl Vm {
    pub(crate) fn stream_mut(&mut self, id: u32) -> Result<&mut Stream, HostError> {
        self.store
            .data_mut()
            .streams
            .get_mut(&id)
            .ok_or_else(|| HostError::Usage(format!("no stream with context id {id}")))
    }

    /// The stream of a context, for assertions.
    pub fn stream(&self, id: u32) -> Option<&Stream> {
        self.store.data().streams.get(&id)
    }

    /// Whether the exchange still takes events in this direction.
    /// On a failed VM, a stream's next event fails it instead (stream_end.rs).
    pub(crate) fn accepts(&mut self, id: u32, way: Way) -> Result<bool, HostError> {
        if self.has_failed() {
            if !self.stream_mut(id)?.ended {
                self.fail_stream(id);
            }
            return Ok(false);
        }
        let s = self.stream_mut(id)?;
        let closed = match way {
            Way::Request => s.local_reply_started,
            Way::Response => s.direct_reply,
        };
        Ok(!(s.ended || s.reset.is_some() || s.failed_by_vm || closed))
    }

    /// Starts a new HTTP stream: a new context under the root context.
    pub fn create_stream(&mut self) -> Result<u32, HostError> {
        let state = self.store.data_mut();
        let id = state.next_context_id;
        state.next_context_id += 1;
        let stream = Stream {
            context_id: id,
            started_nanos: state.now_nanos,
            last_activity_nanos: state.now_nanos,
            ..Stream::default()
        };
        state.streams.insert(id, stream);
        if self.has_failed() {
            // A failed VM creates no context; the stream gets Envoy's 503 (stream_end.rs).
            self.fail_stream(id);
            return Ok(id);
        }
        let root = self.root_context_id();
        self.call(
            id,
            "proxy_on_context_create",
            &[Val::I32(id as i32), Val::I32(root as i32)],
        )?;
        Ok(id)
    }

    pub fn request_headers(
        &mut self,
        id: u32,
        headers: &[(String, String)],
        end_of_stream: bool,
    ) -> Result<(), HostError> {
        self.client_traffic(id)?;
        self.stream_mut(id)?.client_done |= end_of_stream;
        self.headers(
            id,
            Way::Request,
            HeaderMap::from_pairs(headers),
            end_of_stream,
        )
    }
    pub fn request_body(
        &mut self,
        id: u32,
        chunk: &[u8],
        end_of_stream: bool,
    ) -> Result<(), HostError> {
        self.client_traffic(id)?;
        self.stream_mut(id)?.client_done |= end_of_stream;
        self.data(id, Way::Request, chunk, end_of_stream)
    }
    pub fn request_trailers(
        &mut self,
        id: u32,
        trailers: &[(String, String)],
    ) -> Result<(), HostError> {
        self.client_traffic(id)?;
        self.stream_mut(id)?.client_done = true;
        self.trailers(id, Way::Request, HeaderMap::from_pairs(trailers))
    }
    /// Response headers from the upstream. The router marks them `via_upstream`
    /// (source/common/router/router.cc `Filter::onUpstreamHeaders`) before the filter chain
    /// sees them.
    pub fn response_headers(
        &mut self,
        id: u32,
        headers: &[(String, String)],
        end_of_stream: bool,
    ) -> Result<(), HostError> {
        if self.accepts(id, Way::Response)? {
            self.stream_mut(id)?.code_details = Some("via_upstream".into());
        }
        self.headers(
            id,
            Way::Response,
            HeaderMap::from_pairs(headers),
            end_of_stream,
        )
    }
    pub fn response_body(
        &mut self,
        id: u32,
        chunk: &[u8],
        end_of_stream: bool,
    ) -> Result<(), HostError> {
        self.data(id, Way::Response, chunk, end_of_stream)
    }
    pub fn response_trailers(
        &mut self,
        id: u32,
        trailers: &[(String, String)],
    ) -> Result<(), HostError> {
        self.trailers(id, Way::Response, HeaderMap::from_pairs(trailers))
    }

    pub(crate) fn headers(
        &mut self,
        id: u32,
        way: Way,
        headers: HeaderMap,
        end_of_stream: bool,
    ) -> Result<(), HostError> {
        if !self.accepts(id, way)? {
            return Ok(());
        }
        let d = dir(self.stream_mut(id)?, way);
        let count = headers.len();
        d.headers = Some(headers);
        d.headers_visible = true;
        d.end_seen = end_of_stream;
        let args = [
            Val::I32(id as i32),
            Val::I32(count as i32),
            Val::I32(end_of_stream as i32),
        ];
        let action = self.call(id, way.exports().0, &args)?.unwrap_or(CONTINUE);
        self.drain_deferred()?;
        if !self.accepts(id, way)? {
            return Ok(());
        }
        let hold_headers_only = self.store.data().envoy.allow_on_headers_stop_iteration;
        let d = dir(self.stream_mut(id)?, way);
        if action == CONTINUE {
            d.headers_visible = false;
            d.sent_headers = d.headers.as_ref().map(|h| h.pairs().clone());
            d.sent_end |= end_of_stream;
        } else if hold_headers_only {
            // context.cc `convertVmCallResultToFilterHeadersStatus`: with
            // `allow_on_headers_stop_iteration`, Pause is StopIteration.
            d.headers_stopped = true;
        } else {
            d.stopped_all = true;
        }
        Ok(())
    }

    /// Headers held by StopIteration go on when the filter first continues (Envoy's
    /// `commonContinue` sends the headers before the data that continued them).
    fn release_headers(d: &mut Direction) {
        if d.headers_stopped {
            d.headers_stopped = false;
            d.headers_visible = false;
            d.sent_headers = d.headers.as_ref().map(|h| h.pairs().clone());
        }
    }

    pub(crate) fn data(
        &mut self,
        id: u32,
        way: Way,
        chunk: &[u8],
        end_of_stream: bool,
    ) -> Result<(), HostError> {
        if !self.accepts(id, way)? {
            return Ok(());
        }
        let d = dir(self.stream_mut(id)?, way);
        if d.stopped_all {
            d.held_body.extend_from_slice(chunk);
            d.held_end |= end_of_stream;
            return Ok(());
        }
        self.deliver_data(id, way, chunk, end_of_stream)
    }

    /// Calls the body callback with this chunk (or all buffered data plus this chunk).
    fn deliver_data(
        &mut self,
        id: u32,
        way: Way,
        chunk: &[u8],
        end_of_stream: bool,
    ) -> Result<(), HostError> {
        let limit = self.store.data().envoy.buffer_limit_bytes;
        let d = dir(self.stream_mut(id)?, way);
        let was_buffering = d.buffering;
        if d.buffering {
            d.body.extend_from_slice(chunk);
        } else {
            d.body = chunk.to_vec();
        }
        d.end_seen |= end_of_stream;
        d.in_last_body_callback = end_of_stream;
        let size = d.body.len();
        // Envoy's Wasm `Context::decodeData`/`encodeData` add a chunk to the filter's buffer
        // before the VM runs, so a buffer already held goes over the limit here, and Envoy's
        // reply is prepared before the filter sees the chunk (limits: local_reply.rs).
        let overflow_before = was_buffering && limit > 0 && size > limit;
        let args = [
            Val::I32(id as i32),
            Val::I32(size as i32),
            Val::I32(end_of_stream as i32),
        ];
        let action = self.call(id, way.exports().1, &args);
        if let Ok(s) = self.stream_mut(id) {
            dir(s, way).in_last_body_callback = false;
        }
        let action = action?.unwrap_or(CONTINUE);
        if overflow_before {
            // The prepared reply wins (`prepareLocalReplyViaFilterChain` returns early for a
            // second one); the filter's reply only leaves its details behind.
            self.drop_filter_reply(id);
            self.drain_deferred()?;
            return self.buffer_overflow(id, way);
        }
        self.drain_deferred()?;
        if action != CONTINUE && limit > 0 && size > limit && self.accepts(id, way)? {
            // The first chunk buffered after the callback returned: over the limit, Envoy
            // replies at once. A filter that replied in that callback already ended decoding.
            return self.buffer_overflow(id, way);
        }
        if !self.accepts(id, way)? {
            return Ok(());
        }
        let d = dir(self.stream_mut(id)?, way);
        if action == CONTINUE {
            Self::release_headers(d);
            d.buffering = false;
            let body = std::mem::take(&mut d.body);
            d.sent_body.extend_from_slice(&body);
            if end_of_stream {
                // Trailers the filter added in its last body callback go out with the end.
                if d.trailers.is_some() {
                    d.trailers_visible = false;
                    d.sent_trailers = d.trailers.as_ref().map(|t| t.pairs().clone());
                }
                d.sent_end = true;
            }
        } else {
            d.buffering = true;
        }
        Ok(())
    }

    fn trailers(&mut self, id: u32, way: Way, trailers: HeaderMap) -> Result<(), HostError> {
        if !self.accepts(id, way)? {
            return Ok(());
        }
        let d = dir(self.stream_mut(id)?, way);
        if d.stopped_all {
            d.held_trailers = Some(trailers);
            return Ok(());
        }
        self.deliver_trailers(id, way, trailers)
    }

    fn deliver_trailers(
        &mut self,
        id: u32,
        way: Way,
        trailers: HeaderMap,
    ) -> Result<(), HostError> {
        let d = dir(self.stream_mut(id)?, way);
        let count = trailers.len();
        d.trailers = Some(trailers);
        d.trailers_visible = true;
        d.end_seen = true;
        let action = self
            .call(
                id,
                way.exports().2,
                &[Val::I32(id as i32), Val::I32(count as i32)],
            )?
            .unwrap_or(CONTINUE);
        self.drain_deferred()?;
        if !self.accepts(id, way)? {
            return Ok(());
        }
        let d = dir(self.stream_mut(id)?, way);
        if action == CONTINUE {
            Self::release_headers(d);
            Self::flush_end(d);
        } else {
            d.trailers_stopped = true;
        }
        Ok(())
    }

    /// Sends buffered body and trailers and ends the direction.
    fn flush_end(d: &mut Direction) {
        d.buffering = false;
        let body = std::mem::take(&mut d.body);
        d.sent_body.extend_from_slice(&body);
        d.trailers_visible = false;
        d.trailers_stopped = false;
        d.sent_trailers = d.trailers.as_ref().map(|t| t.pairs().clone());
        d.sent_end = true;
    }

    /// Resumes a direction the filter paused (Envoy `continueDecoding`/`continueEncoding`).
    fn resume(&mut self, id: u32, way: Way) -> Result<(), HostError> {
        if !self.accepts(id, way)? {
            return Ok(());
        }
        let d = dir(self.stream_mut(id)?, way);
        if d.headers_stopped {
            Self::release_headers(d);
            if d.end_seen && !d.buffering && !d.trailers_stopped && d.trailers.is_none() {
                d.sent_end = true;
            }
        }
        if d.stopped_all {
            d.stopped_all = false;
            d.headers_visible = false;
            d.sent_headers = d.headers.as_ref().map(|h| h.pairs().clone());
            let body = std::mem::take(&mut d.held_body);
            let held_end = d.held_end;
            let trailers = d.held_trailers.take();
            if !body.is_empty() || held_end {
                self.deliver_data(id, way, &body, held_end && trailers.is_none())?;
            } else if d.end_seen && trailers.is_none() {
                d.sent_end = true;
            }
            if let Some(t) = trailers {
                self.deliver_trailers(id, way, t)?;
            }
        } else if d.trailers_stopped {
            // The filter stopped at trailers after buffering the body (an approval asked at the
            // end of a body that ended with trailers). Envoy's continue sends the buffered body
            // without end of stream, then the trailers (source/common/http/filter_manager.cc,
            // `ActiveStreamFilterBase::commonContinue`: `doData(complete() &&
            // !had_trailers_before_data)` then `doTrailers()`).
            Self::flush_end(d);
        } else if d.buffering {
            d.buffering = false;
            let body = std::mem::take(&mut d.body);
            d.sent_body.extend_from_slice(&body);
            if d.end_seen && d.trailers.is_none() {
                d.sent_end = true;
            }
        }
        Ok(())
    }

    /// Runs the work queued during VM calls until none is left.
    pub(crate) fn drain_deferred(&mut self) -> Result<(), HostError> {
        while let Some(action) = self.store.data_mut().deferred.pop_front() {
            match action {
                Deferred::Continue {
                    context_id,
                    request,
                } => {
                    self.resume(
                        context_id,
                        if request { Way::Request } else { Way::Response },
                    )?;
                }
                Deferred::Reset {
                    context_id,
                    request,
                } => {
                    let s = self.stream_mut(context_id)?;
                    let side = if request { "request" } else { "response" };
                    s.reset.get_or_insert_with(|| {
                        format!("reset by the filter (close_stream on the {side})")
                    });
                }
                Deferred::LocalReply { context_id } => self.send_filter_reply(context_id)?,
                Deferred::QueueReady {
                    context_id,
                    queue_id,
                } => {
                    self.call(
                        context_id,
                        "proxy_on_queue_ready",
                        &[Val::I32(context_id as i32), Val::I32(queue_id as i32)],
                    )?;
                }
            }
        }
        Ok(())
    }

    /// Forgets a finished stream (Envoy frees the context after `on_delete`); the host keeps
    /// streams until then so tests can inspect them.
    pub fn remove_stream(&mut self, id: u32) -> Option<Stream> {
        self.store.data_mut().streams.remove(&id)
    }
}
