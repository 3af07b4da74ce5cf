//! The Vigil proxy-wasm plugin (`vigil.wasm`).
//!
//! A thin shell over `vigil_core::gate`: [`root::VigilRoot`] validates the configuration and
//! owns the plugin-wide state ([`plugin::Plugin`]); [`stream::VigilStream`] turns each
//! callback of one HTTP exchange into a gate event and [`steps`] carries out what the gate
//! decides. No identity, model, rule or approval condition is decided here.

mod clock;
mod keys;
mod logging;
pub mod plugin;
pub mod root;
mod steps;
pub mod stream;
mod waits;

use proxy_wasm::types::LogLevel;

/// Version and commit of this build, logged when the VM starts.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const GIT_HASH: &str = env!("VIGIL_GIT_HASH");

/// The policy used when Envoy passes no plugin configuration.
pub const EMBEDDED_POLICY: &str = include_str!("../../policies/default.json");

proxy_wasm::main! {{
    // set_log_level also installs the SDK's panic hook, which logs the panic at critical level
    // before the module aborts, so a trap in Envoy's log always says why.
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(root::VigilRoot::new(context_id))
    });
}}
