//! Live callouts: a cluster's `dispatch_http_call`s sent to a real address
//! (`--cluster approvals=127.0.0.1:8080`), so the compiled filter can run against the real
//! approval service. Each call goes out on its own thread; the driver pumps the answers back
//! into the VM, with the VM's clock moved on by the real time that passed, so callout
//! timeouts fire as they would in Envoy.
//!
//! What Envoy's async client hands the filter when the cluster cannot be reached is the
//! router's local reply, not a failure: 503 with "upstream connect error or disconnect/reset
//! before headers. reset reason: ..." (source/common/router/router.cc, `onUpstreamReset` and
//! `upstreamResetBodyFormat`). A stream reset after the headers is `onFailure(Reset)`, and a
//! timeout is the router's 504 (`CallAnswer::Timeout`, fired by the VM's clock).

use crate::state::{CallAnswer, PendingCall};
use crate::vm::{HostError, Vm};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// Clusters whose callouts go to real addresses.
pub struct LiveClusters {
    addrs: BTreeMap<String, SocketAddr>,
    started: BTreeSet<u32>,
    tx: Sender<(u32, Option<CallAnswer>)>,
    rx: Receiver<(u32, Option<CallAnswer>)>,
    synced: Instant,
}

/// Reads `NAME=HOST:PORT`.
pub fn parse_cluster(spec: &str) -> Result<(String, SocketAddr), String> {
    let (name, addr) = spec
        .split_once('=')
        .ok_or_else(|| format!("--cluster {spec:?}: expected NAME=HOST:PORT"))?;
    if name.is_empty() {
        return Err(format!("--cluster {spec:?}: the cluster name is empty"));
    }
    let addr = std::net::ToSocketAddrs::to_socket_addrs(addr)
        .map_err(|e| format!("--cluster {spec:?}: {addr:?} is not HOST:PORT ({e})"))?
        .next()
        .ok_or_else(|| format!("--cluster {spec:?}: {addr:?} resolves to no address"))?;
    Ok((name.to_string(), addr))
}

impl LiveClusters {
    pub fn new(addrs: impl IntoIterator<Item = (String, SocketAddr)>) -> Self {
        let (tx, rx) = channel();
        Self {
            addrs: addrs.into_iter().collect(),
            started: BTreeSet::new(),
            tx,
            rx,
            synced: Instant::now(),
        }
    }

    pub fn is_live(&self, cluster: &str) -> bool {
        self.addrs.contains_key(cluster)
    }

    /// Whether the VM has a live call still waiting for its answer.
    pub fn waiting(&self, vm: &Vm) -> bool {
        vm.state()
            .pending_calls
            .values()
            .any(|c| self.is_live(&c.cluster))
    }

    /// Sends every live call the VM dispatched and this has not sent yet.
    fn start(&mut self, vm: &Vm) {
        for call in vm.state().pending_calls.values() {
            let Some(addr) = self.addrs.get(&call.cluster) else {
                continue;
            };
            if !self.started.insert(call.token) {
                continue;
            }
            let (call, addr, tx) = (call.clone(), *addr, self.tx.clone());
            std::thread::spawn(move || {
                let answer = send(&call, addr);
                let _ = tx.send((call.token, answer));
            });
        }
    }

    /// Moves the VM's clock on by the real time since the last sync (firing due ticks and
    /// callout timeouts).
    fn sync_clock(&mut self, vm: &mut Vm) -> Result<(), HostError> {
        let now = Instant::now();
        let elapsed = now.duration_since(self.synced);
        self.synced = now;
        vm.advance(elapsed.as_nanos() as u64)
    }

    /// Sends new live calls, then waits up to `max_wait` for one answer and delivers it.
    /// Returns whether an answer (or a timeout) reached the VM.
    pub fn pump(&mut self, vm: &mut Vm, max_wait: Duration) -> Result<bool, HostError> {
        self.start(vm);
        let before = vm.state().pending_calls.len();
        // Wake up no later than the first live call's timeout, which the clock then fires.
        let until_timeout = vm
            .state()
            .pending_calls
            .values()
            .filter(|c| self.is_live(&c.cluster) && c.timeout_ms > 0)
            .map(|c| {
                let due = c.dispatched_at_nanos + c.timeout_ms as u64 * 1_000_000;
                Duration::from_nanos(due.saturating_sub(vm.state().now_nanos))
            })
            .min()
            .unwrap_or(max_wait);
        let got = match self.rx.recv_timeout(max_wait.min(until_timeout)) {
            Ok(got) => Some(got),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => None,
        };
        self.sync_clock(vm)?;
        if let Some((token, Some(answer))) = got {
            // The call may have timed out (or its stream ended) meanwhile: Envoy drops it.
            if vm.state().pending_calls.contains_key(&token) {
                vm.answer_call(token, answer)?;
                return Ok(true);
            }
        }
        Ok(vm.state().pending_calls.len() < before)
    }
}

fn connect_error(reason: &str) -> CallAnswer {
    let body = format!(
        "upstream connect error or disconnect/reset before headers. reset reason: {reason}"
    )
    .into_bytes();
    CallAnswer::Response {
        headers: vec![
            (":status".into(), "503".into()),
            ("content-length".into(), body.len().to_string()),
            ("content-type".into(), "text/plain".into()),
        ],
        body,
        trailers: Vec::new(),
    }
}

/// Sends one call over HTTP/1.1. `None`: no answer before the call's timeout (the VM's
/// clock answers it with the router's 504).
fn send(call: &PendingCall, addr: SocketAddr) -> Option<CallAnswer> {
    let header = |name: &str| {
        call.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let method = header(":method").unwrap_or_else(|| "GET".into());
    let path = header(":path").unwrap_or_else(|| "/".into());
    let timeout = match call.timeout_ms {
        0 => Duration::from_secs(300),
        ms => Duration::from_millis(ms as u64 + 500),
    };
    let agent = ureq::AgentBuilder::new()
        .timeout(timeout)
        .redirects(0)
        .build();
    let mut request = agent.request(&method, &format!("http://{addr}{path}"));
    for (k, v) in &call.headers {
        if k.starts_with(':') {
            if k == ":authority" {
                request = request.set("host", v);
            }
            continue;
        }
        request = request.set(k, v);
    }
    let response = match request.send_bytes(&call.body) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(ureq::Error::Transport(t)) => {
            return match t.kind() {
                ureq::ErrorKind::ConnectionFailed | ureq::ErrorKind::Dns => {
                    Some(connect_error("remote connection failure"))
                }
                ureq::ErrorKind::Io if is_timeout(&t) => None,
                _ => Some(connect_error("connection termination")),
            };
        }
    };
    let mut headers = vec![(":status".to_string(), response.status().to_string())];
    for name in response.headers_names() {
        for value in response.all(&name) {
            headers.push((name.to_ascii_lowercase(), value.to_string()));
        }
    }
    let mut body = Vec::new();
    match response.into_reader().read_to_end(&mut body) {
        Ok(_) => Some(CallAnswer::Response {
            headers,
            body,
            trailers: Vec::new(),
        }),
        Err(e) if is_timeout_kind(e.kind()) => None,
        Err(_) => Some(CallAnswer::Reset),
    }
}

/// Whether the transport error is the socket's read or write timeout.
fn is_timeout(t: &ureq::Transport) -> bool {
    let mut cause = std::error::Error::source(t);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return is_timeout_kind(io.kind());
        }
        cause = e.source();
    }
    false
}

fn is_timeout_kind(kind: std::io::ErrorKind) -> bool {
    matches!(
        kind,
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    )
}
