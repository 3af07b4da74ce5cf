//! A proxy-wasm host on wasmtime that runs `vigil.wasm` (or any proxy-wasm 0.2.x module)
//! outside Envoy, with Envoy's semantics, so tests exercise the compiled artifact through the
//! real ABI. Each [`Vm`] owns its state (clock, logs, streams, callouts); nothing is global,
//! so tests run in parallel.

pub mod abi;
mod callouts;
pub mod capture;
pub mod filter_manager;
mod guest;
pub mod headers;
pub mod imports;
pub mod live;
mod local_reply;
pub mod properties;
pub mod replay;
pub mod state;
mod stream_end;
pub mod testkit;
pub mod traffic;
pub mod vm;
pub mod wasi;

pub use state::{CallAnswer, HostState, LogLine, PendingCall};
pub use vm::{EnvoySettings, HostError, Plugin, Vm, VmOptions};

/// A record key for tests, benches and the shipped captures: `VIGIL_RECORD_KEY` as the VM
/// sees it. Public test data, never a production key.
pub const TEST_RECORD_KEY: (&str, &str) = (
    "VIGIL_RECORD_KEY",
    "vigil-test-record-key-not-a-secret-0123456789abcdef",
);

/// A checkpoint signing key for tests: `VIGIL_CHECKPOINT_KEY` as the VM sees it (the base64
/// of a 32-byte Ed25519 seed). Public test data, never a production key.
pub const TEST_CHECKPOINT_KEY: (&str, &str) = (
    "VIGIL_CHECKPOINT_KEY",
    "dmlnaWwtdGVzdC1jaGVja3BvaW50LXNlZWQtMDAwMDA=",
);

impl VmOptions {
    /// Options for vigil.wasm with the test record key (and the test checkpoint key) in the VM
    /// environment, as every deployment hands its own keys to the VM.
    pub fn with_record_key() -> Self {
        Self {
            env: vec![
                (TEST_RECORD_KEY.0.into(), TEST_RECORD_KEY.1.into()),
                (TEST_CHECKPOINT_KEY.0.into(), TEST_CHECKPOINT_KEY.1.into()),
            ],
            ..Self::default()
        }
    }
}

/// Serializes bytes as UTF-8 text (U+FFFD for bad bytes), as the replay output shows bodies.
pub mod bytes_as_text {
    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&String::from_utf8_lossy(bytes))
    }
}

/// Where the built artifacts live, relative to the workspace root.
pub mod artifacts {
    use std::path::PathBuf;

    /// The workspace root (the parent of `host/`).
    pub fn workspace_root() -> PathBuf {
        vigil_core::testkit::workspace_root()
    }

    /// `target/wasm32-wasip1/release/<name>.wasm`, or an error that says how to build it.
    pub fn wasm(crate_file: &str) -> Result<PathBuf, String> {
        let path = workspace_root()
            .join("target/wasm32-wasip1/release")
            .join(format!("{crate_file}.wasm"));
        if path.exists() {
            Ok(path)
        } else {
            Err(format!("{} is missing; build it with: scripts/build (or cargo build --release --target wasm32-wasip1 -p vigil-filter -p vigil-probe)", path.display()))
        }
    }
}
