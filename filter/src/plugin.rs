//! What one plugin shares across its streams on one VM, owned by the root context: the
//! configuration and what the VM environment gave it, the identity state (key sets, token
//! cache), the record chain and the records waiting for a log line, the requests held for
//! key sets, and the counters. Streams hold an `Rc` of it and own their own state (the gate).

use crate::logging::ctx_log;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;
use vigil_core::gate::{Callers, Cx, Gate, Secrets};
use vigil_core::identity::verifier::Verifier;
use vigil_core::record::{RecordChain, RecordKey};
use vigil_core::PluginConfig;

/// The tick while requests wait for a key-set fetch, and otherwise.
pub const FAST_TICK: Duration = Duration::from_millis(20);
pub const SLOW_TICK: Duration = Duration::from_secs(1);

/// Records sealed after their access log ran, held for the next record to carry. Each is at
/// most two body caps plus a few KiB, so the queue stays within a few tens of MiB at the cap.
pub const MAX_LATE_RECORDS: usize = 256;

/// A stream's gate, reachable from the root while the stream waits on something the root
/// settles (a key set, an approval call the root dispatched for it).
pub type SharedGate = Rc<RefCell<Gate>>;

/// A request held until provider `provider`'s key set is fetched.
pub struct Held {
    pub context_id: u32,
    pub provider: usize,
    pub gate: SharedGate,
}

pub struct Plugin {
    pub config: PluginConfig,
    pub secrets: Secrets,
    pub record_key: RecordKey,
    pub vm_id: String,
    /// Debug lines are wanted (Envoy's log level), so the gate writes its trace.
    pub verbose: bool,
    pub verifier: RefCell<Verifier>,
    pub chain: RefCell<RecordChain>,
    /// Records of exchanges that ended after the access log had run (client gone, reset),
    /// waiting to ride along with the next record written (see records.rs).
    pub late_records: RefCell<Vec<Vec<u8>>>,
    /// Requests held until their provider's keys arrive.
    pub held: RefCell<Vec<Held>>,
    /// Key-set fetches in flight, by callout token: the provider index.
    pub fetches: RefCell<HashMap<u32, usize>>,
    /// Approval calls the root dispatched for a held stream, by callout token.
    pub root_calls: RefCell<HashMap<u32, (u32, SharedGate)>>,
    /// The tick is at [`FAST_TICK`]: re-arming it would postpone the fetch (Envoy restarts
    /// the timer for a full period on every `set_tick_period`).
    pub fast_tick: Cell<bool>,
    /// Counter ids by name, defined on first use.
    metrics: RefCell<HashMap<String, u32>>,
}

/// Reads a variable the policy names from the VM environment.
fn env_var(path: &str, name: &str, what: Option<&str>) -> Result<String, String> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Ok(value),
        _ => Err(format!(
            "{path}: the VM environment has no {name} ({}hand it to the VM with vm_config.environment_variables)",
            what.map(|w| format!("{w}; ")).unwrap_or_default()
        )),
    }
}

impl Plugin {
    /// Checks what the configuration needs from the VM environment, and builds the state.
    pub fn prepare(mut config: PluginConfig, vm_id: String, verbose: bool) -> Result<Self, String> {
        let credential = match &config.upstream_credential {
            Some(c) => Some(format!(
                "{}{}",
                c.prefix,
                env_var("$.upstream_credential.env", &c.env, None)?
            )),
            None => None,
        };
        if let Some(env) = config.masking.token_key_env.clone() {
            let key = env_var(
                "$.masking.token_key_env",
                &env,
                Some("the key of the token style"),
            )?;
            config.masking.token_key = Some(key.into_bytes());
        }
        let key_env = &config.record.key_env;
        let record_key = match std::env::var(key_env) {
            Ok(value) => RecordKey::new(value.as_bytes())
                .map_err(|e| format!("$.record.key_env: {key_env} {e}"))?,
            Err(_) => {
                return Err(format!(
                    "$.record.key_env: the VM environment has no {key_env} (the key session records are signed with; hand it to the VM with vm_config.environment_variables)"
                ))
            }
        };
        let approval_key = match config.approval.as_ref().and_then(|a| a.key_env.as_ref()) {
            Some(env) => Some(env_var(
                "$.approval.key_env",
                env,
                Some("the key the filter presents to the approval service"),
            )?),
            None => None,
        };
        let verifier = Verifier::new(&config.providers, config.token_cache_entries);
        Ok(Plugin {
            config,
            secrets: Secrets {
                credential,
                approval_key,
            },
            record_key,
            vm_id,
            verbose,
            verifier: RefCell::new(verifier),
            chain: RefCell::default(),
            late_records: RefCell::default(),
            held: RefCell::default(),
            fetches: RefCell::default(),
            root_calls: RefCell::default(),
            fast_tick: Cell::new(false),
            metrics: RefCell::default(),
        })
    }

    /// Lends the gate what outlives the exchange, for one event.
    pub fn with_cx<R>(&self, now_nanos: u64, f: impl FnOnce(&mut Cx<'_>) -> R) -> R {
        let mut verifier = self.verifier.borrow_mut();
        let mut cx = Cx {
            config: &self.config,
            callers: Callers::Verify(&mut verifier),
            secrets: &self.secrets,
            now_nanos,
            verbose: self.verbose,
        };
        f(&mut cx)
    }

    /// Holds a stream's request until the provider's key set is fetched, and makes the tick
    /// fast (once: re-arming it would postpone the fetch).
    pub fn hold(&self, context_id: u32, provider: usize, gate: SharedGate) {
        self.held.borrow_mut().push(Held {
            context_id,
            provider,
            gate,
        });
        if !self.fast_tick.replace(true) {
            let _ = hostcalls::set_tick_period(FAST_TICK);
        }
    }

    /// Forgets a stream that ended: a held request must not be acted on later.
    pub fn forget(&self, context_id: u32) {
        self.held
            .borrow_mut()
            .retain(|h| h.context_id != context_id);
        self.root_calls
            .borrow_mut()
            .retain(|_, (id, _)| *id != context_id);
    }

    /// Adds `n` to a counter, defining it on first use (Envoy exports it as a custom stat).
    pub fn count(&self, name: &str, n: i64) {
        let known = self.metrics.borrow().get(name).copied();
        let id = match known {
            Some(id) => id,
            None => match hostcalls::define_metric(MetricType::Counter, name) {
                Ok(id) => {
                    self.metrics.borrow_mut().insert(name.to_string(), id);
                    id
                }
                Err(_) => return,
            },
        };
        let _ = hostcalls::increment_metric(id, n);
    }

    /// Keeps a record sealed after its access log ran, for the next record to carry. The
    /// queue is bounded: past it, the record goes to Envoy's log in full (and the gap shows
    /// in `vigil audit verify`), never silently nowhere.
    pub fn hold_late(&self, context_id: u32, bytes: Vec<u8>, seq: u64) {
        let mut late = self.late_records.borrow_mut();
        if late.len() >= MAX_LATE_RECORDS {
            drop(late);
            self.count("vigil.records.late_overflow", 1);
            ctx_log!(
                warn,
                context_id,
                "late record queue full; session record seq {} only in this log line: {}",
                seq,
                String::from_utf8_lossy(&bytes)
            );
            return;
        }
        late.push(bytes);
        ctx_log!(
            debug,
            context_id,
            "session record seq {} sealed after the access log; it rides with the next record",
            seq
        );
    }

    /// The records waiting for a line, as one JSON array (None when there are none).
    pub fn take_late(&self) -> Option<(Vec<u8>, usize)> {
        let late = std::mem::take(&mut *self.late_records.borrow_mut());
        if late.is_empty() {
            return None;
        }
        let mut array =
            Vec::with_capacity(late.iter().map(Vec::len).sum::<usize>() + late.len() + 1);
        array.push(b'[');
        for (i, r) in late.iter().enumerate() {
            if i > 0 {
                array.push(b',');
            }
            array.extend_from_slice(r);
        }
        array.push(b']');
        Some((array, late.len()))
    }
}
