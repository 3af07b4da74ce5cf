//! What one plugin shares across its streams on one VM, owned by the root context: the
//! configuration and what the VM environment gave it, the identity state (key sets, token
//! cache), the record chain, the requests waiting on the root (waits.rs), and the
//! counters. Streams hold an `Rc` of it and own their own state (the gate).

use crate::clock::now_nanos;
use crate::waits::Waits;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;
use std::cell::RefCell;
use std::collections::HashMap;
use vigil_core::gate::{Callers, Cx, Secrets};
use vigil_core::identity::verifier::Verifier;
use vigil_core::record::checkpoint::{SigningKey, Trigger};
use vigil_core::record::RecordChain;
use vigil_core::record::RecordKey;
use vigil_core::PluginConfig;

/// Checkpoints kept for the access log while no request comes: at `every_s` 300, over five
/// hours of idleness; older ones are only in Envoy's log.
const MAX_PENDING_CHECKPOINTS: usize = 64;

pub struct Plugin {
    pub config: PluginConfig,
    pub secrets: Secrets,
    pub record_key: RecordKey,
    pub vm_id: String,
    /// Debug lines are wanted (Envoy's log level), so the gate writes its trace.
    pub verbose: bool,
    pub verifier: RefCell<Verifier>,
    /// The VM's record chain: each record carries the previous one's hash.
    pub records: RefCell<RecordChain>,
    /// The key checkpoints are signed with (`record.checkpoint`).
    pub checkpoint_key: Option<SigningKey>,
    /// Checkpoints not yet written to an access-log line: the next record of this VM carries
    /// them (Envoy's log has each at once).
    pub pending_checkpoints: RefCell<Vec<Vec<u8>>>,
    /// Requests held for key sets, the fetches in flight, the calls the root makes for them.
    pub waits: RefCell<Waits>,
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
        let checkpoint_key = match &config.record.checkpoint {
            Some(c) => {
                let text = env_var(
                    "$.record.checkpoint.key_env",
                    &c.key_env,
                    Some("the Ed25519 key checkpoints are signed with"),
                )?;
                let key = SigningKey::new(&text)
                    .map_err(|e| format!("$.record.checkpoint.key_env: {} {e}", c.key_env))?;
                if key.id() != c.key_id {
                    return Err(format!(
                        "$.record.checkpoint.key_id: the key in {} is {}, the policy names {}: put the key's id in the policy when the key changes",
                        c.key_env,
                        key.id(),
                        c.key_id
                    ));
                }
                Some(key)
            }
            None => None,
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
            records: RefCell::default(),
            checkpoint_key,
            pending_checkpoints: RefCell::default(),
            waits: RefCell::default(),
            metrics: RefCell::default(),
        })
    }

    /// Lends the gate what outlives the exchange, for one event.
    pub fn with_cx<R>(&self, f: impl FnOnce(&mut Cx<'_>) -> R) -> R {
        let mut verifier = self.verifier.borrow_mut();
        let mut cx = Cx {
            config: &self.config,
            callers: Callers::Verify(&mut verifier),
            secrets: &self.secrets,
            clock: &now_nanos,
            verbose: self.verbose,
        };
        f(&mut cx)
    }

    /// Writes a checkpoint when one is due (`trigger` forces one: start, shutdown).
    pub fn checkpoint(&self, context_id: u32, trigger: Option<Trigger>) {
        let (Some(signer), Some(every)) = (&self.checkpoint_key, &self.config.record.checkpoint)
        else {
            return;
        };
        let now = now_nanos();
        let mut chain = self.records.borrow_mut();
        let Some(trigger) = trigger.or_else(|| chain.checkpoint_due(now, every)) else {
            return;
        };
        let (c, json) = chain.checkpoint(&self.vm_id, now, trigger, &self.record_key, signer);
        drop(chain);
        // Envoy's log has it at once, also when no request comes to carry it.
        crate::logging::ctx_log!(
            info,
            context_id,
            "vigil checkpoint: {}",
            String::from_utf8_lossy(&json)
        );
        let mut pending = self.pending_checkpoints.borrow_mut();
        if pending.len() >= MAX_PENDING_CHECKPOINTS {
            pending.remove(0);
            self.count("vigil.checkpoints.not_carried", 1);
        }
        pending.push(json);
        drop(pending);
        self.count("vigil.checkpoints", 1);
        crate::logging::ctx_log!(
            debug,
            context_id,
            "checkpoint seq {} ({:?}) covers seq {}",
            c.seq,
            c.trigger,
            c.covers.seq
        );
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
}
