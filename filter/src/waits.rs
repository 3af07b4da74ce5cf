//! What waits on the root context: requests held until a key set is fetched, the key-set
//! fetches in flight, and the approval calls the root dispatched on a held stream's behalf.
//! Plain data; keys.rs acts on it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;
use vigil_core::gate::Gate;

/// The tick while requests wait for a key-set fetch, and otherwise.
pub const FAST_TICK: Duration = Duration::from_millis(20);
pub const SLOW_TICK: Duration = Duration::from_secs(1);

/// A stream's gate, reachable from the root while the stream waits on something the root
/// settles (a key set, an approval call the root dispatched for it).
pub type SharedGate = Rc<RefCell<Gate>>;

/// A request held until provider `provider`'s key set is fetched.
pub struct Held {
    pub context_id: u32,
    pub provider: usize,
    pub gate: SharedGate,
}

#[derive(Default)]
pub struct Waits {
    held: Vec<Held>,
    /// Key-set fetches in flight: callout token to provider index.
    pub fetches: HashMap<u32, usize>,
    /// Approval calls the root dispatched: callout token to the stream and its gate.
    pub root_calls: HashMap<u32, (u32, SharedGate)>,
    /// The tick is at [`FAST_TICK`]: re-arming it would postpone the fetch (Envoy restarts
    /// the timer for a full period on every `set_tick_period`).
    fast_tick: bool,
}

impl Waits {
    /// Holds a request; true when the tick must go fast now (the first hold, not every one).
    pub fn hold(&mut self, held: Held) -> bool {
        self.held.push(held);
        !std::mem::replace(&mut self.fast_tick, true)
    }

    /// Takes the held requests `ready` says can be settled; the second value is true when
    /// none is left and the tick can go slow again.
    pub fn take_ready(&mut self, ready: impl Fn(&Held) -> bool) -> (Vec<Held>, bool) {
        let (taken, still): (Vec<Held>, Vec<Held>) = self.held.drain(..).partition(ready);
        self.held = still;
        let slow = self.held.is_empty() && std::mem::replace(&mut self.fast_tick, false);
        (taken, slow)
    }

    /// Forgets a stream that ended: a held request must not be acted on later.
    pub fn forget(&mut self, context_id: u32) {
        self.held.retain(|h| h.context_id != context_id);
        self.root_calls.retain(|_, (id, _)| *id != context_id);
    }
}
