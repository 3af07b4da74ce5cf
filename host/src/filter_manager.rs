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
//! - Continue, reset and local replies asked for inside a callback take effect after the VM
//!   call returns (`addAfterVmCallAction`); a local reply travels back through this filter's
//!   response callbacks, as Envoy's `sendLocalReply` encodes it through the filter chain.
//! - At the end, the connection manager's access log reads the filter state before the
//!   filter's `on_log` runs (conn_manager_impl.cc registers `config_.accessLogs()` first),
//!   then `on_done` and `on_delete` follow.

use crate::headers::HeaderMap;
use crate::state::{CallAnswer, CallResponse, Deferred, Direction, Stream};
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

fn dir(stream: &mut Stream, way: Way) -> &mut Direction {
    match way {
        Way::Request => &mut stream.request,
        Way::Response => &mut stream.response,
    }
}

impl Vm {
    fn stream_mut(&mut self, id: u32) -> Result<&mut Stream, HostError> {
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
    fn accepts(&mut self, id: u32, way: Way) -> Result<bool, HostError> {
        let s = self.stream_mut(id)?;
        Ok(!s.ended && s.reset.is_none() && !(way == Way::Request && s.local_reply_started))
    }

    /// Starts a new HTTP stream: a new context under the root context.
    pub fn create_stream(&mut self) -> Result<u32, HostError> {
        let state = self.store.data_mut();
        let id = state.next_context_id;
        state.next_context_id += 1;
        let stream = Stream {
            context_id: id,
            started_nanos: state.now_nanos,
            ..Stream::default()
        };
        state.streams.insert(id, stream);
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
        self.data(id, Way::Request, chunk, end_of_stream)
    }
    pub fn request_trailers(
        &mut self,
        id: u32,
        trailers: &[(String, String)],
    ) -> Result<(), HostError> {
        self.trailers(id, Way::Request, HeaderMap::from_pairs(trailers))
    }
    pub fn response_headers(
        &mut self,
        id: u32,
        headers: &[(String, String)],
        end_of_stream: bool,
    ) -> Result<(), HostError> {
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

    fn headers(
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
        let d = dir(self.stream_mut(id)?, way);
        if action == CONTINUE {
            d.headers_visible = false;
            d.sent_headers = d.headers.as_ref().map(|h| h.pairs().clone());
            d.sent_end |= end_of_stream;
        } else {
            d.stopped_all = true;
        }
        Ok(())
    }

    fn data(
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
        let d = dir(self.stream_mut(id)?, way);
        if d.buffering {
            d.body.extend_from_slice(chunk);
        } else {
            d.body = chunk.to_vec();
        }
        d.end_seen |= end_of_stream;
        d.in_last_body_callback = end_of_stream;
        let size = d.body.len();
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
        self.drain_deferred()?;
        if !self.accepts(id, way)? {
            return Ok(());
        }
        let d = dir(self.stream_mut(id)?, way);
        if action == CONTINUE {
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
                Deferred::LocalReply { context_id } => self.send_local_reply(context_id)?,
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

    /// Envoy `sendLocalReply`: headers are `:status`, the filter's extra headers, then
    /// content-length and, when the body is not empty and no content-type was given,
    /// `text/plain`; the reply goes through this filter's response callbacks. Once response
    /// headers reached the client, a reply cannot replace them and the stream is reset.
    fn send_local_reply(&mut self, id: u32) -> Result<(), HostError> {
        let s = self.stream_mut(id)?;
        let Some(reply) = s.local_reply.clone() else {
            return Ok(());
        };
        if s.response.sent_headers.is_some() || s.local_reply_started {
            s.reset.get_or_insert_with(|| {
                "local reply after response headers were sent: stream reset".into()
            });
            return Ok(());
        }
        s.local_reply_started = true;
        s.request.stopped_all = false;
        s.request.buffering = false;
        s.request.headers_visible = false;
        s.response = Direction::default();
        let mut headers = HeaderMap::default();
        headers.add(":status", &reply.status.to_string());
        for (k, v) in &reply.headers {
            headers.add(k, v);
        }
        if !reply.body.is_empty() {
            headers.replace("content-length", &reply.body.len().to_string());
            if headers.get("content-type").is_none() {
                headers.add("content-type", "text/plain");
            }
        }
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

    /// Delivers the answer to a callout, as Envoy's async client does: a response (its
    /// headers, body and trailers readable during `proxy_on_http_call_response`), a reset
    /// (no headers; `get_status` gives BrokenConnection and "reset"), or a timeout (the
    /// router's 504 "upstream request timeout").
    pub fn answer_call(&mut self, token: u32, answer: CallAnswer) -> Result<(), HostError> {
        let call = self
            .store
            .data_mut()
            .pending_calls
            .remove(&token)
            .ok_or_else(|| HostError::Usage(format!("no pending callout with token {token}")))?;
        let (headers, body, trailers, status) = match answer {
            CallAnswer::Response {
                headers,
                body,
                trailers,
            } => (headers, body, trailers, (0, String::new())),
            CallAnswer::Timeout => {
                let body = b"upstream request timeout".to_vec();
                let headers = vec![
                    (":status".to_string(), "504".to_string()),
                    ("content-length".to_string(), body.len().to_string()),
                    ("content-type".to_string(), "text/plain".to_string()),
                ];
                (headers, body, Vec::new(), (0, String::new()))
            }
            CallAnswer::Reset => (
                Vec::new(),
                Vec::new(),
                Vec::new(),
                (
                    crate::abi::Status::BrokenConnection as u32,
                    "reset".to_string(),
                ),
            ),
        };
        let state = self.store.data_mut();
        let (nh, nb, nt) = (headers.len(), body.len(), trailers.len());
        state.status = status;
        state.call_response = Some(CallResponse {
            headers: HeaderMap::from_pairs(&headers),
            body,
            trailers: HeaderMap::from_pairs(&trailers),
        });
        let context = call.context_id;
        let args = [
            Val::I32(context as i32),
            Val::I32(token as i32),
            Val::I32(nh as i32),
            Val::I32(nb as i32),
            Val::I32(nt as i32),
        ];
        let result = self.call(context, "proxy_on_http_call_response", &args);
        let state = self.store.data_mut();
        state.call_response = None;
        state.status = (0, String::new());
        result?;
        self.drain_deferred()
    }

    /// Forgets a finished stream (Envoy frees the context after `on_delete`); the host keeps
    /// streams until then so tests can inspect them.
    pub fn remove_stream(&mut self, id: u32) -> Option<Stream> {
        self.store.data_mut().streams.remove(&id)
    }

    /// Ends the exchange before it finished: the client went away or the upstream reset
    /// mid-response. Envoy sets the response code details on a remote close
    /// (conn_manager_impl.cc `onEvent` -> `doConnectionClose` with
    /// `DownstreamRemoteDisconnect`, applied in `completeRequest`) and then logs as usual; the
    /// filter hears nothing before `on_log`.
    pub fn abort_stream(&mut self, id: u32, details: &str) -> Result<(), HostError> {
        let s = self.stream_mut(id)?;
        if s.ended {
            return Ok(());
        }
        s.abort_details = Some(details.to_string());
        self.complete_stream(id)
    }

    /// Ends the exchange: the access log reads the filter state, then `on_log`, `on_done`
    /// and `on_delete` run (Envoy: HCM access logs, the filter's log handler, onDestroy).
    pub fn complete_stream(&mut self, id: u32) -> Result<(), HostError> {
        let s = self.stream_mut(id)?;
        if s.ended {
            return Ok(());
        }
        s.ended = true;
        s.access_log = Some(s.filter_state.clone());
        s.access_log_phase = true;
        s.request.headers_visible = false;
        s.response.headers_visible = false;
        let logged = self.call(id, "proxy_on_log", &[Val::I32(id as i32)]);
        if let Ok(s) = self.stream_mut(id) {
            s.access_log_phase = false;
        }
        logged?;
        self.call(id, "proxy_on_done", &[Val::I32(id as i32)])?;
        self.call(id, "proxy_on_delete", &[Val::I32(id as i32)])?;
        // Envoy cancels a stream's outstanding callouts when its context goes away.
        self.store
            .data_mut()
            .pending_calls
            .retain(|_, c| c.context_id != id);
        self.drain_deferred()
    }
}
