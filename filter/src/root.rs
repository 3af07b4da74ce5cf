//! The root context: one per plugin per VM. It validates the plugin configuration in
//! `on_configure` (refusing to start on an invalid one) and owns what outlives a request:
//! the configuration and the chain that links this VM's session records.

use crate::logging::ctx_log;
use crate::stream::VigilStream;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use std::cell::RefCell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::rc::Rc;
use vigil_core::record::RecordChain;
use vigil_core::PluginConfig;

pub struct VigilRoot {
    context_id: u32,
    config: Option<Rc<PluginConfig>>,
    chain: Rc<RefCell<RecordChain>>,
    vm_id: Rc<str>,
}

impl VigilRoot {
    pub fn new(context_id: u32) -> Self {
        Self {
            context_id,
            config: None,
            chain: Rc::default(),
            vm_id: Rc::from(""),
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
}

impl Context for VigilRoot {}

impl RootContext for VigilRoot {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        // Follow Envoy's log level (info by default) so debug lines are not formatted and sent
        // across the ABI only to be dropped there.
        if let Ok(level) = proxy_wasm::hostcalls::get_log_level() {
            proxy_wasm::set_log_level(level);
        }
        self.vm_id = Rc::from(self.chain_id());
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
        match PluginConfig::parse(&bytes) {
            Ok(config) => {
                ctx_log!(
                    info,
                    self.context_id,
                    "on_configure: {} {} version {} (sha256 {})",
                    source,
                    config.id,
                    config.version,
                    config.sha256
                );
                self.config = Some(Rc::new(config));
                true
            }
            Err(errors) => {
                let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
                ctx_log!(
                    error,
                    self.context_id,
                    "on_configure: invalid {}: {}",
                    source,
                    all.join("; ")
                );
                false
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Envoy never creates streams for a plugin whose on_configure failed. If a host does
        // anyway, the request is refused rather than passed unchecked (returning None here
        // would make the SDK panic and kill the VM).
        match &self.config {
            Some(config) => Some(Box::new(VigilStream::new(
                context_id,
                config.clone(),
                self.chain.clone(),
                self.vm_id.clone(),
            ))),
            None => Some(Box::new(crate::stream::Unconfigured { context_id })),
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
