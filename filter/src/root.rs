//! The root context: one per plugin per VM. It validates the plugin configuration in
//! `on_configure` (refusing to start on an invalid one, or when the upstream credential it
//! names is missing from the VM environment) and owns what outlives a request: the
//! configuration, the record chain and the verified-token cache, shared with every stream.

use crate::keys::{self, Verdict, Waiting};
use crate::logging::ctx_log;
use crate::stream::{Unconfigured, VigilStream};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use std::cell::RefCell;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::rc::Rc;
use vigil_core::identity::cache::TokenCache;
use vigil_core::identity::provider::KeySource;
use vigil_core::identity::remote::RemoteKeys;
use vigil_core::record::{RecordChain, RecordKey};
use vigil_core::PluginConfig;

/// What every stream of this plugin shares.
pub struct Shared {
    pub config: PluginConfig,
    pub chain: RefCell<RecordChain>,
    /// The key records are signed with (from `record.key_env`). Never logged.
    pub record_key: RecordKey,
    /// Records of exchanges that ended after the access log had run (client gone, reset),
    /// waiting to ride along with the next record written (see stream.rs).
    pub late_records: RefCell<Vec<Vec<u8>>>,
    pub tokens: RefCell<TokenCache>,
    pub vm_id: String,
    /// The header value carrying the upstream credential (prefix included). Never logged.
    pub credential: Option<String>,
    /// The key the filter presents to the approval service, when the policy names one.
    pub approval_key: Option<String>,
    /// Per provider index: the remote key set state (None for inline providers).
    pub remote: RefCell<Vec<Option<RemoteKeys>>>,
    /// Key-set fetches in flight, by callout token.
    pub fetches: RefCell<HashMap<u32, usize>>,
    /// Requests held until their provider's keys arrive.
    pub waiting: RefCell<Vec<Waiting>>,
    /// Decision counters by name, defined on first use.
    pub metrics: RefCell<HashMap<String, u32>>,
    /// Decisions taken for held requests, until each stream records its own.
    pub verdicts: RefCell<HashMap<u32, Verdict>>,
}

impl Shared {
    pub fn has_remote_keys(&self) -> bool {
        self.remote.borrow().iter().any(Option::is_some)
    }
}

pub struct VigilRoot {
    context_id: u32,
    vm_id: String,
    shared: Option<Rc<Shared>>,
}

impl VigilRoot {
    pub fn new(context_id: u32) -> Self {
        Self {
            context_id,
            vm_id: String::new(),
            shared: None,
        }
    }

    /// Every Envoy worker runs its own copy of the VM under the same `plugin_vm_id`, so the
    /// chain id adds 64 random bits (WASI `random_get`, through std's hasher seed) to keep the
    /// workers' chains apart.
    fn chain_id(&self) -> String {
        let vm = self
            .get_property(vec!["plugin_vm_id"])
            .and_then(|b| String::from_utf8(b).ok())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "vigil".into());
        let nonce = RandomState::new().build_hasher().finish();
        format!("{vm}#{nonce:016x}")
    }

    /// Checks what the configuration needs from the VM, and builds the shared state.
    fn prepare(&self, config: PluginConfig) -> Result<Shared, String> {
        let remote = config
            .providers
            .iter()
            .map(|p| match &p.keys {
                KeySource::Remote(settings) => Some(RemoteKeys::new(settings.clone())),
                KeySource::Inline(_) => None,
            })
            .collect();
        let credential = match &config.upstream_credential {
            Some(c) => match std::env::var(&c.env) {
                Ok(value) if !value.is_empty() => Some(format!("{}{}", c.prefix, value)),
                _ => {
                    return Err(format!(
                        "$.upstream_credential.env: the VM environment has no {} (hand it to the VM with vm_config.environment_variables)",
                        c.env
                    ))
                }
            },
            None => None,
        };
        let mut config = config;
        if let Some(env) = config.masking.token_key_env.clone() {
            match std::env::var(&env) {
                Ok(key) if !key.is_empty() => config.masking.token_key = Some(key.into_bytes()),
                _ => {
                    return Err(format!(
                        "$.masking.token_key_env: the VM environment has no {env} (the key of the token style; hand it to the VM with vm_config.environment_variables)"
                    ))
                }
            }
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
            Some(env) => match std::env::var(env) {
                Ok(value) if !value.is_empty() => Some(value),
                _ => {
                    return Err(format!(
                        "$.approval.key_env: the VM environment has no {env} (the key the filter presents to the approval service; hand it to the VM with vm_config.environment_variables)"
                    ))
                }
            },
            None => None,
        };
        let tokens = TokenCache::new(config.token_cache_entries);
        Ok(Shared {
            config,
            chain: RefCell::default(),
            record_key,
            late_records: RefCell::default(),
            tokens: RefCell::new(tokens),
            vm_id: self.vm_id.clone(),
            credential,
            approval_key,
            remote: RefCell::new(remote),
            fetches: RefCell::default(),
            waiting: RefCell::default(),
            verdicts: RefCell::default(),
            metrics: RefCell::default(),
        })
    }
}

impl VigilRoot {
    fn now_secs(&self) -> i64 {
        self.get_current_time()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}

impl Context for VigilRoot {
    /// The VM is stopping (Envoy drains or reloads the plugin): records still waiting for a
    /// line to ride on go to Envoy's log in full, rather than nowhere.
    fn on_done(&mut self) -> bool {
        if let Some(shared) = &self.shared {
            for record in shared.late_records.borrow_mut().drain(..) {
                ctx_log!(
                    warn,
                    self.context_id,
                    "stopping with a session record no access-log line carried: {}",
                    String::from_utf8_lossy(&record)
                );
            }
        }
        true
    }

    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let now = self.now_secs();
        if let Some(shared) = self.shared.clone() {
            if !keys::answered(
                &shared,
                token,
                self,
                self.context_id,
                now,
                num_headers,
                body_size,
            ) {
                ctx_log!(
                    warn,
                    self.context_id,
                    "answer to unknown callout {} ignored",
                    token
                );
            }
        }
    }
}

impl RootContext for VigilRoot {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        // Follow Envoy's log level (info by default) so debug lines are not formatted and sent
        // across the ABI only to be dropped there.
        if let Ok(level) = proxy_wasm::hostcalls::get_log_level() {
            proxy_wasm::set_log_level(level);
        }
        self.vm_id = self.chain_id();
        ctx_log!(
            info,
            self.context_id,
            "vigil {} (git {}) starting, chain {}",
            crate::VERSION,
            crate::GIT_HASH,
            self.vm_id
        );
        true
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = self
            .get_plugin_configuration()
            .filter(|b| !b.iter().all(u8::is_ascii_whitespace));
        let (source, bytes) = match bytes {
            Some(b) => ("plugin configuration", b),
            None => (
                "embedded default policy",
                crate::EMBEDDED_POLICY.as_bytes().to_vec(),
            ),
        };
        let config = match PluginConfig::parse(&bytes) {
            Ok(config) => config,
            Err(errors) => {
                let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
                ctx_log!(
                    error,
                    self.context_id,
                    "on_configure: invalid {}: {}",
                    source,
                    all.join("; ")
                );
                return false;
            }
        };
        if let Ok(raw) = serde_json::from_slice::<serde_json::Value>(&bytes) {
            for w in vigil_core::lint::lint(&config, &raw) {
                ctx_log!(warn, self.context_id, "on_configure: policy warning: {}", w);
            }
        }
        let summary = format!(
            "{} {} version {} (sha256 {}), {} identity provider(s), records signed with the key in {}",
            source,
            config.id,
            config.version,
            config.sha256,
            config.providers.len(),
            config.record.key_env
        );
        match self.prepare(config) {
            Ok(shared) => {
                ctx_log!(info, self.context_id, "on_configure: {}", summary);
                if shared.has_remote_keys() {
                    // Remote key sets load and refresh on the tick, ahead of requests.
                    self.set_tick_period(keys::SLOW_TICK);
                }
                self.shared = Some(Rc::new(shared));
                true
            }
            Err(e) => {
                ctx_log!(
                    error,
                    self.context_id,
                    "on_configure: cannot start with {}: {}",
                    source,
                    e
                );
                false
            }
        }
    }

    fn on_tick(&mut self) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        let now = self.now_secs();
        let due: Vec<usize> = shared
            .remote
            .borrow()
            .iter()
            .enumerate()
            .filter(|(_, r)| r.as_ref().is_some_and(|r| r.due(now)))
            .map(|(i, _)| i)
            .collect();
        for index in due {
            keys::fetch(&shared, index, self, self.context_id);
        }
        // A fetch the cluster refused leaves held requests to fail closed now.
        keys::settle(&shared, self.context_id, now);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Envoy never creates streams for a plugin whose on_configure failed. If a host does
        // anyway, the request is refused rather than passed unchecked (returning None here
        // would make the SDK panic and kill the VM).
        match &self.shared {
            Some(shared) => Some(Box::new(VigilStream::new(context_id, shared.clone()))),
            None => Some(Box::new(Unconfigured { context_id })),
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
