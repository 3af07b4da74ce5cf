//! One worker: a thread with its own `vigil.wasm` VM, as Envoy has one VM per worker
//! thread, serving the connections it accepts on one event loop. Every stream of the
//! worker goes through its VM; after each call into the VM every open stream is looked at
//! again ([`Worker::settle`]), because one event can move another stream on (a JWKS or
//! approval answer releases every request that waited for it).

use super::access_log::AccessLog;
use super::exchange::Link;
use super::pipe::{Item, Pipe, CHANNEL_CHUNKS};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use vigil_host::live::LiveClusters;
use vigil_host::{HostError, Vm};

/// How often the worker moves its VM's clock on (ticks, callout timeouts) and collects
/// callout answers.
pub const PUMP_EVERY: Duration = Duration::from_millis(5);

pub struct Worker {
    pub vm: RefCell<Vm>,
    live: RefCell<LiveClusters>,
    pub links: RefCell<HashMap<u32, Link>>,
    pub upstream: super::upstream::Upstream,
    pub log: Arc<AccessLog>,
    pub metrics: Arc<super::admin::Metrics>,
    pub index: usize,
}

impl Worker {
    pub fn new(
        vm: Vm,
        live: LiveClusters,
        upstream: super::upstream::Upstream,
        log: Arc<AccessLog>,
        metrics: Arc<super::admin::Metrics>,
        index: usize,
    ) -> Self {
        Self {
            vm: RefCell::new(vm),
            live: RefCell::new(live),
            links: RefCell::new(HashMap::new()),
            upstream,
            log,
            metrics,
            index,
        }
    }

    /// Calls into the VM, then settles every stream. A VM error (a trap) fails the VM:
    /// the host then fails every stream as Envoy's FAIL_CLOSED does.
    pub fn with_vm<T: Default>(
        self: &Rc<Self>,
        f: impl FnOnce(&mut Vm) -> Result<T, HostError>,
    ) -> T {
        let out = {
            let mut vm = self.vm.borrow_mut();
            let out = f(&mut vm);
            match &out {
                // An event for a stream already over (a late body chunk): nothing to do.
                Err(HostError::Usage(_)) | Ok(_) => {}
                Err(e) => eprintln!("vigil serve: worker {}: {e}", self.index),
            }
            out.unwrap_or_default()
        };
        self.settle();
        out
    }

    /// Moves the clock on by the real time that passed and delivers callout answers.
    pub fn pump(self: &Rc<Self>) {
        self.with_vm(|vm| self.live.borrow_mut().pump(vm, Duration::ZERO).map(|_| ()));
    }

    /// Looks at every open stream and carries out what the VM decided for it: headers and
    /// body to the model server, headers and body to the client, the end of the exchange.
    pub fn settle(self: &Rc<Self>) {
        let ids: Vec<u32> = self.links.borrow().keys().copied().collect();
        for id in ids {
            self.settle_stream(id);
        }
        self.drain_logs();
    }

    fn settle_stream(self: &Rc<Self>, id: u32) {
        let mut finished = false;
        {
            let mut vm = self.vm.borrow_mut();
            let mut links = self.links.borrow_mut();
            let Some(link) = links.get_mut(&id) else {
                return;
            };
            let Some(s) = vm.state_mut().streams.get_mut(&id) else {
                return;
            };
            // Towards the model server.
            if !link.upstream_started && s.request.sent_headers.is_some() && !s.local_reply_started
            {
                link.upstream_started = true;
                let headers = s.request.sent_headers.clone().unwrap_or_default();
                let (tx, rx) = tokio::sync::mpsc::channel::<Item>(CHANNEL_CHUNKS);
                link.upstream = Some(Pipe::new(tx));
                let end = s.request.sent_end && s.request.sent_body.is_empty();
                let worker = Rc::clone(self);
                tokio::task::spawn_local(super::exchange::forward(worker, id, headers, rx, end));
            }
            if let Some(pipe) = &link.upstream {
                pipe.push(std::mem::take(&mut s.request.sent_body));
                if s.request.sent_end {
                    pipe.close();
                }
            }
            // Towards the client.
            if let Some(headers) = &s.response.sent_headers {
                if let Some(head) = link.head.take() {
                    let (tx, rx) = tokio::sync::mpsc::channel::<Item>(CHANNEL_CHUNKS);
                    link.client = Some(Pipe::new(tx));
                    if head.send((headers.clone(), rx)).is_err() {
                        link.client_gone = true;
                    }
                }
            }
            if let Some(pipe) = &link.client {
                pipe.push(std::mem::take(&mut s.response.sent_body));
                link.client_gone |= pipe.gone();
                if s.response.sent_end {
                    // The queue still delivers what it holds, then ends the body.
                    pipe.close();
                    finished = true;
                }
            }
            // Reset, failed, or ended before the answer did (the model server went away
            // mid-answer, the client left): the client's body is cut short, as Envoy resets
            // the downstream stream.
            let cut = s.reset.is_some()
                || (s.failed_by_vm && s.response.sent_headers.is_none())
                || (s.ended && !s.response.sent_end);
            if cut && !finished {
                link.head = None;
                if let Some(pipe) = link.client.take() {
                    pipe.abort();
                }
                if let Some(pipe) = link.upstream.take() {
                    pipe.abort();
                }
                finished = true;
            }
            if link.client_gone && !finished {
                drop(links);
                let _ = vm.abort_stream(id, "downstream_remote_disconnect");
                finished = true;
            }
        }
        if finished {
            self.finish(id);
        }
    }

    /// The exchange is over: Envoy ends the stream, the access log writes its line, and the
    /// stream is forgotten.
    fn finish(self: &Rc<Self>, id: u32) {
        let Some(link) = self.links.borrow_mut().remove(&id) else {
            return;
        };
        let mut vm = self.vm.borrow_mut();
        if let Err(e) = vm.complete_stream(id) {
            eprintln!("vigil serve: worker {}: {e}", self.index);
        }
        if let Some(s) = vm.stream(id) {
            self.log.write(s, &link.request_id, &link.start_time);
        }
        vm.remove_stream(id);
        self.metrics.publish(self.index, &vm);
        link.done.notify_waiters();
    }

    /// The filter's warnings and checkpoints go to stderr as they come (the host keeps none).
    pub(super) fn drain_logs(&self) {
        let Ok(mut vm) = self.vm.try_borrow_mut() else {
            return;
        };
        for line in std::mem::take(&mut vm.state_mut().logs) {
            // Warnings, and the signed checkpoints (Envoy's log carries them at info, for
            // `vigil audit verify --envoy-log`).
            if line.level >= vigil_host::abi::LogLevel::Warn
                || line.message.contains("vigil checkpoint: ")
            {
                eprintln!(
                    "vigil.wasm[{}] {:?}: {}",
                    self.index, line.level, line.message
                );
            }
        }
    }
}
