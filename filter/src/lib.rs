//! The Vigil proxy-wasm plugin (`vigil.wasm`).
//!
//! A thin shell: [`root::VigilRoot`] validates the configuration and owns per-VM state (the
//! record chain); [`stream::VigilStream`] follows one HTTP exchange and turns it into a
//! session record. The decisions themselves live in `vigil-core`.

pub mod keys;
mod logging;
pub mod masking;
pub mod models;
pub mod policy;
pub mod refusal;
pub mod root;
pub mod stream;

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
