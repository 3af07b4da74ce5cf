//! How an exchange ends: completion and its logs, a client or upstream cutting it short, the
//! idle timeout, and a VM that trapped.
//!
//! - Log order: since Envoy 1.32 the filters' log handlers run before the connection
//!   manager's access logs (source/common/http/conn_manager_impl.cc `ActiveStream::log`
//!   calls `filter_manager_.log()` first, then `config_->accessLogs()`; changelogs 1.32.0 and
//!   1.35.0), so a record the filter writes in `on_log` is on the exchange's own line. Then
//!   `on_done` and `on_delete` run (`onDestroy`).
//! - Idle timeout: a stream with no traffic to or from the client for the route's
//!   `idle_timeout` (or the connection manager's `stream_idle_timeout`) gets 408 "stream
//!   timeout" if no response has started, else it is ended (conn_manager_impl.cc
//!   `ActiveStream::onIdleTimeout`, details `stream_idle_timeout`). The timer restarts on
//!   traffic from the client and on traffic sent to it (`resetIdleTimer` in `decodeData`,
//!   `encodeHeaders`, `encodeData`...), not on a filter's callouts.
//! - A trap fails the VM. Under FAIL_CLOSED (the default: wasm.cc `PluginConfig` maps
//!   UNSPECIFIED to it) every stream of that VM fails with 503 `wasm_fail_stream` at its next
//!   event (context.cc `Context::failStream`, reached from the `CHECK_FAIL_HTTP` guards
//!   around every callback in proxy-wasm-cpp-host src/context.cc), a stream created
//!   afterwards gets an empty context that fails the same way (wasm.cc
//!   `PluginConfig::createContext`), answers to callouts are dropped
//!   (`onHttpCallResponse` returns when failed), so a stream waiting on one sits until its
//!   idle timeout, and `on_log`, `on_done` and `on_delete` no longer run (cpp-host
//!   `ContextBase::onLog`/`onDone`/`onDelete` check `isFailed()`). What the filter had
//!   written to filter state stays there for the access log.

use crate::state::{LocalReply, Stream};
use crate::vm::{HostError, Vm};
use wasmtime::Val;

impl Vm {
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
        s.code_details = Some(details.to_string());
        self.complete_stream(id)
    }

    /// Ends the exchange: the filter's `on_log`, then the access log reads the filter state,
    /// then `on_done` and `on_delete`. A stream's callouts stay in flight (callouts.rs).
    pub fn complete_stream(&mut self, id: u32) -> Result<(), HostError> {
        let s = self.stream_mut(id)?;
        if s.ended {
            return Ok(());
        }
        s.ended = true;
        s.request.headers_visible = false;
        s.response.headers_visible = false;
        if self.has_failed() {
            let s = self.stream_mut(id)?;
            s.access_log = Some(s.filter_state.clone());
            return Ok(());
        }
        self.stream_mut(id)?.access_log_phase = true;
        let logged = self.call(id, "proxy_on_log", &[Val::I32(id as i32)]);
        let s = self.stream_mut(id)?;
        s.access_log_phase = false;
        s.access_log = Some(s.filter_state.clone());
        logged?;
        self.call(id, "proxy_on_done", &[Val::I32(id as i32)])?;
        self.call(id, "proxy_on_delete", &[Val::I32(id as i32)])?;
        self.drain_deferred()
    }

    /// Traffic from the client restarts the idle timer.
    pub(crate) fn client_traffic(&mut self, id: u32) -> Result<(), HostError> {
        let now = self.store.data().now_nanos;
        let s = self.stream_mut(id)?;
        s.client_events += 1;
        s.last_activity_nanos = now;
        Ok(())
    }

    /// Restarts the idle timer of every stream that sent something to the client since the
    /// last look. The clock moves only in `advance` and `set_time`, which call this first, so
    /// everything sent meanwhile happened at the current time.
    pub(crate) fn note_traffic(&mut self) {
        let state = self.store.data_mut();
        let now = state.now_nanos;
        for s in state.streams.values_mut() {
            let seen = Self::traffic_mark(s);
            if seen != s.traffic_mark {
                s.traffic_mark = seen;
                s.last_activity_nanos = now;
            }
        }
    }

    fn traffic_mark(s: &Stream) -> u64 {
        let r = &s.response;
        s.client_events
            + r.sent_headers.is_some() as u64
            + r.sent_body.len() as u64
            + r.sent_end as u64
    }

    /// The next stream whose idle timeout falls due, and when.
    pub(crate) fn next_idle_timeout(&self) -> Option<(u64, u32)> {
        let timeout = self.store.data().envoy.stream_idle_timeout_ms;
        if timeout == 0 {
            return None;
        }
        self.store
            .data()
            .streams
            .values()
            .filter(|s| !s.ended)
            .map(|s| (s.last_activity_nanos + timeout * 1_000_000, s.context_id))
            .min()
    }

    /// `ActiveStream::onIdleTimeout`: a local reply, 408 while the request is still arriving
    /// and 504 once it is complete (`Utility::maybeRequestTimeoutCode(remoteDecodeComplete())`),
    /// by the usual three paths (local_reply.rs); then the stream ends.
    pub(crate) fn idle_timeout(&mut self, id: u32) -> Result<(), HostError> {
        let s = self.stream_mut(id)?;
        let status = if s.client_done { 504 } else { 408 };
        if s.reset.is_none() && !s.failed_by_vm {
            let reply = LocalReply::envoy(status, "stream timeout", "stream_idle_timeout");
            self.local_reply(id, reply).or_else(Self::failed_is_done)?;
        }
        let s = self.stream_mut(id)?;
        s.code_details = Some("stream_idle_timeout".into());
        self.complete_stream(id).or_else(Self::failed_is_done)
    }

    /// A trap inside a call the host made on its own (a timer) is not the caller's error;
    /// the VM is failed and its streams with it.
    fn failed_is_done(e: HostError) -> Result<(), HostError> {
        match e {
            HostError::Trap { .. } | HostError::VmFailed => Ok(()),
            other => Err(other),
        }
    }

    /// `Context::failStream`: 503 with details `wasm_fail_stream` and no body, straight to the
    /// client (the filter's own callbacks cannot run on a failed VM), or a reset once response
    /// headers went out.
    pub(crate) fn fail_stream(&mut self, id: u32) {
        let Some(s) = self.store.data_mut().streams.get_mut(&id) else {
            return;
        };
        s.failed_by_vm = true;
        s.code_details = Some("wasm_fail_stream".into());
        if s.response.sent_headers.is_some() || s.direct_reply {
            s.reset
                .get_or_insert_with(|| "the VM failed: stream reset".into());
            return;
        }
        s.direct_reply = true;
        s.local_reply_started = true;
        s.request.stopped_all = false;
        s.request.headers_stopped = false;
        s.request.buffering = false;
        s.request.headers_visible = false;
        s.response = crate::state::Direction {
            sent_headers: Some(vec![(":status".into(), "503".into())]),
            sent_end: true,
            ..Default::default()
        };
    }
}
