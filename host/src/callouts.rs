//! Answers to `dispatch_http_call`, as Envoy delivers them. In Envoy every callout belongs to
//! the root context: proxy-wasm-cpp-host src/exports.cc `http_call` dispatches on
//! `contextOrEffectiveContext()->root_context()`, the answer reaches the module as
//! `proxy_on_http_call_response(root_context_id, token, ...)` (context.cc
//! `Context::onHttpCallSuccess`/`onHttpCallFailure` on the root), and its body is the root's
//! `http_call_response_` (`Context::getBuffer`, `HttpCallResponseBody`). A stream ending does
//! not cancel it; the Rust SDK maps the token to the context that dispatched it and drops the
//! answer when that context is gone (dispatcher.rs `on_http_call_response`).

use crate::headers::HeaderMap;
use crate::state::{CallAnswer, CallResponse};
use crate::vm::{HostError, Vm};
use wasmtime::Val;

impl Vm {
    /// Delivers the answer to a callout: a response (its headers, body and trailers readable
    /// during `proxy_on_http_call_response`), a reset (no headers; `get_status` gives
    /// BrokenConnection and "reset"), or a timeout (the router's 504 "upstream request
    /// timeout").
    pub fn answer_call(&mut self, token: u32, answer: CallAnswer) -> Result<(), HostError> {
        self.store
            .data_mut()
            .pending_calls
            .remove(&token)
            .ok_or_else(|| HostError::Usage(format!("no pending callout with token {token}")))?;
        if self.has_failed() {
            // context.cc `onHttpCallSuccess`: nothing reaches a failed VM.
            return Ok(());
        }
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
        let root = self.root_context_id();
        let args = [
            Val::I32(root as i32),
            Val::I32(token as i32),
            Val::I32(nh as i32),
            Val::I32(nb as i32),
            Val::I32(nt as i32),
        ];
        let result = self.call(root, "proxy_on_http_call_response", &args);
        let state = self.store.data_mut();
        state.call_response = None;
        state.status = (0, String::new());
        result?;
        self.drain_deferred()
    }

    /// Marks a known cluster as having (or not having) a healthy host. A callout to a cluster
    /// with none fails at once with InternalFailure and no callback: the router's async
    /// client calls `onFailure` inline from `AsyncClientImpl::send` and returns no request,
    /// and context.cc `Context::httpCall` then answers InternalFailure.
    pub fn set_cluster_healthy(&mut self, cluster: &str, healthy: bool) {
        let state = self.store.data_mut();
        if healthy {
            state.unhealthy_clusters.remove(cluster);
        } else {
            state.unhealthy_clusters.insert(cluster.to_string());
        }
    }
}
