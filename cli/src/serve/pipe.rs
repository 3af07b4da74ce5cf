//! Chunks on their way out (to the model server, or to the client), with backpressure: the
//! filter's output for a stream is queued here, a task hands it to the connection as fast as
//! the peer reads, and whoever feeds the filter waits for the queue to empty before reading
//! more ([`Pipe::ready`]). So a slow reader slows its writer down, and what is held is only
//! what the filter released in one call (a chunk, or the body it asked to buffer).

use bytes::Bytes;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use tokio::sync::{mpsc, Notify};

/// Chunks a connection's body channel holds before the queue waits.
pub const CHANNEL_CHUNKS: usize = 4;

/// What a body channel carries: a chunk, or `Err` for a body cut short (the peer sees the
/// stream reset, not a complete body).
pub type Item = Result<Bytes, ()>;

#[derive(Default)]
pub struct Pipe {
    pending: RefCell<VecDeque<Bytes>>,
    closed: Cell<bool>,
    aborted: Cell<bool>,
    gone: Cell<bool>,
    wake: Notify,
    drained: Notify,
}

impl Pipe {
    /// A pipe feeding `tx`; its task runs on the worker's event loop.
    pub fn new(tx: mpsc::Sender<Item>) -> Rc<Self> {
        let pipe = Rc::new(Pipe::default());
        tokio::task::spawn_local(Rc::clone(&pipe).run(tx));
        pipe
    }

    pub fn push(&self, chunk: Vec<u8>) {
        if !chunk.is_empty() && !self.gone.get() {
            self.pending.borrow_mut().push_back(Bytes::from(chunk));
            self.wake.notify_one();
        }
    }

    /// No more chunks: the body ends once the queue is empty.
    pub fn close(&self) {
        self.closed.set(true);
        self.wake.notify_one();
    }

    /// The body is cut short: what is queued is dropped and the peer sees a reset.
    pub fn abort(&self) {
        self.aborted.set(true);
        self.pending.borrow_mut().clear();
        self.wake.notify_one();
    }

    /// The reader went away.
    pub fn gone(&self) -> bool {
        self.gone.get()
    }

    /// Waits until everything queued has been taken by the connection (or its reader left).
    pub async fn ready(&self) {
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.pending.borrow().is_empty() || self.gone.get() {
                return;
            }
            drained.await;
        }
    }

    async fn run(self: Rc<Self>, tx: mpsc::Sender<Item>) {
        loop {
            if self.aborted.get() {
                let _ = tx.send(Err(())).await;
                self.drained.notify_waiters();
                return;
            }
            let next = self.pending.borrow_mut().pop_front();
            match next {
                Some(chunk) => {
                    if tx.send(Ok(chunk)).await.is_err() {
                        self.gone.set(true);
                        self.pending.borrow_mut().clear();
                        self.drained.notify_waiters();
                        return;
                    }
                }
                None => {
                    self.drained.notify_waiters();
                    if self.closed.get() {
                        return; // dropping tx ends the body
                    }
                    self.wake.notified().await;
                }
            }
        }
    }
}
