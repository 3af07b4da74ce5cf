//! The root context: one per plugin per VM. It validates the plugin configuration in
//! `on_configure` (refusing to start on an invalid one, or when a variable it names is missing
//! from the VM environment), owns the [`Plugin`] every stream shares, fetches remote key sets
//! on its tick, and settles the requests held for them.

use crate::keys;
use crate::logging::ctx_log;
use crate::plugin::Plugin;
use crate::stream::{Unconfigured, VigilStream};
use crate::waits::SLOW_TICK;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::rc::Rc;
use vigil_core::record::checkpoint::Trigger;
use vigil_core::PluginConfig;

pub struct VigilRoot {
    context_id: u32,
    vm_id: String,
    plugin: Option<Rc<Plugin>>,
}

impl VigilRoot {
    pub fn new(context_id: u32) -> Self {
        Self {
            context_id,
            vm_id: String::new(),
            plugin: None,
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

impl Context for VigilRoot {
    /// The plugin is going away (Envoy drains it or shuts down): the chain ends with a
    /// checkpoint, so its end reads as an end, not as silence.
    fn on_done(&mut self) -> bool {
        if let Some(plugin) = &self.plugin {
            plugin.checkpoint(self.context_id, Some(Trigger::Shutdown));
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
        let Some(plugin) = self.plugin.clone() else {
            return;
        };
        let id = self.context_id;
        if !keys::answered(&plugin, token, id, num_headers, body_size)
            && !keys::approval_answered(&plugin, token, id, num_headers, body_size)
        {
            ctx_log!(warn, id, "answer to unknown callout {} ignored", token);
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
        let verbose = proxy_wasm::hostcalls::get_log_level()
            .is_ok_and(|l| matches!(l, LogLevel::Trace | LogLevel::Debug));
        match Plugin::prepare(config, self.vm_id.clone(), verbose) {
            Ok(plugin) => {
                ctx_log!(info, self.context_id, "on_configure: {}", summary);
                // Remote key sets load and refresh on the tick, ahead of requests; checkpoints
                // are due on it also when no request comes.
                if plugin.verifier.borrow().has_remote_keys() || plugin.checkpoint_key.is_some() {
                    self.set_tick_period(SLOW_TICK);
                }
                plugin.checkpoint(self.context_id, Some(Trigger::Start));
                self.plugin = Some(Rc::new(plugin));
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
        let Some(plugin) = self.plugin.clone() else {
            return;
        };
        let now = (crate::clock::now_nanos() / 1_000_000_000) as i64;
        let due = plugin.verifier.borrow().due(now);
        for index in due {
            keys::fetch(&plugin, index, self.context_id);
        }
        // A fetch the cluster refused leaves held requests to be settled (refused) now.
        keys::settle(&plugin, self.context_id);
        plugin.checkpoint(self.context_id, None);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Envoy never creates streams for a plugin whose on_configure failed. If a host does
        // anyway, the request is refused rather than passed unchecked (returning None here
        // would make the SDK panic and kill the VM).
        match &self.plugin {
            Some(plugin) => Some(Box::new(VigilStream::new(context_id, plugin.clone()))),
            None => Some(Box::new(Unconfigured { context_id })),
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
