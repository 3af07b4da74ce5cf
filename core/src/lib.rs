//! Vigil's pure logic, shared by the filter (`vigil.wasm`) and the tools (`vigil`, the host).
//!
//! Nothing here knows about proxy-wasm: the filter translates host events into calls on these
//! types, and the CLI validates and reads the very same types, so the two never disagree.

pub mod access;
#[doc(hidden)]
pub mod accuracy;
pub mod approval;
pub mod canonical;
pub mod config;
pub mod digest;
pub mod envoy;
pub mod exchange;
pub mod gate;
pub mod identity;
pub mod json_reader;
pub mod lint;
pub mod masking;
pub mod path;
pub mod record;
pub mod redact;
pub mod rules;
#[doc(hidden)]
pub mod testkit;
pub mod time;
pub mod unique_keys;
pub mod usage;

pub use config::{ConfigError, PluginConfig};
pub use record::SessionRecord;
