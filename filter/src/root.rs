//! The root context: one per plugin per VM. It validates the plugin configuration in
//! `on_configure` (refusing to start on an invalid one, or when the upstream credential it
//! names is missing from the VM environment) and owns what outlives a request: the
//! configuration, the record chain and the verified-token cache, shared with every stream.

use crate::logging::ctx_log;
use crate::stream::{Unconfigured, VigilStream};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use std::cell::RefCell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::rc::Rc;
use vigil_core::identity::cache::TokenCache;
use vigil_core::identity::provider::KeySource;
use vigil_core::record::RecordChain;
use vigil_core::PluginConfig;

/// What every stream of this plugin shares.
pub struct Shared {
    pub config: PluginConfig,
    pub chain: RefCell<RecordChain>,
    pub tokens: RefCell<TokenCache>,
    pub vm_id: String,
    /// The header value carrying the upstream credential (prefix included). Never logged.
    pub credential: Option<String>,
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
        for (i, provider) in config.providers.iter().enumerate() {
            if matches!(provider.keys, KeySource::Remote(_)) {
                return Err(format!(
                    "$.identity.providers[{i}].remote_jwks: remote key sets are not supported by this build yet; give the provider an inline \"jwks\""
                ));
            }
        }
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
        Ok(Shared {
            config,
            chain: RefCell::default(),
            tokens: RefCell::default(),
            vm_id: self.vm_id.clone(),
            credential,
        })
    }
}

impl Context for VigilRoot {}

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
        let summary = format!(
            "{} {} version {} (sha256 {}), {} identity provider(s)",
            source,
            config.id,
            config.version,
            config.sha256,
            config.providers.len()
        );
        match self.prepare(config) {
            Ok(shared) => {
                ctx_log!(info, self.context_id, "on_configure: {}", summary);
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
