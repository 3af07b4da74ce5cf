//! The host side of the shared test kit (the pure side is `vigil_core::testkit`): the built
//! modules, compiled once per test binary, and a gateway of vigil.wasm started on a policy.

use crate::{artifacts, Plugin, Vm, VmOptions};
use std::sync::OnceLock;

fn load(name: &str) -> Plugin {
    let path = artifacts::wasm(name).unwrap_or_else(|e| panic!("{e}"));
    Plugin::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// vigil.wasm as scripts/build wrote it, compiled once per process (compiling is the slow part).
pub fn vigil_plugin() -> &'static Plugin {
    static PLUGIN: OnceLock<Plugin> = OnceLock::new();
    PLUGIN.get_or_init(|| load("vigil_filter"))
}

/// The probe module (host/probe), compiled once per process.
pub fn probe_plugin() -> &'static Plugin {
    static PLUGIN: OnceLock<Plugin> = OnceLock::new();
    PLUGIN.get_or_init(|| load("vigil_probe"))
}

/// vigil.wasm started as Envoy would start it on `policy`: the test record key in the VM
/// environment, and the clusters, variables and clock a test names.
pub struct Gateway {
    options: VmOptions,
}

impl Gateway {
    pub fn new(policy: &serde_json::Value) -> Self {
        Self {
            options: VmOptions {
                plugin_config: policy.to_string().into_bytes(),
                ..VmOptions::with_record_key()
            },
        }
    }

    pub fn cluster(mut self, name: &str) -> Self {
        self.options.clusters.push(name.to_string());
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.options.env.push((name.to_string(), value.to_string()));
        self
    }

    /// The Envoy settings the streams run under (buffer limit, idle timeout, header hold).
    pub fn envoy(mut self, envoy: crate::EnvoySettings) -> Self {
        self.options.envoy = envoy;
        self
    }

    /// The clock the filter sees, in seconds since the epoch.
    pub fn at(mut self, now_s: u64) -> Self {
        self.options.now_nanos = now_s * 1_000_000_000;
        self
    }

    pub fn start(self) -> Vm {
        Vm::start(vigil_plugin(), self.options).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// A request as a client sends it: headers, body chunks, trailers.
pub struct Request {
    headers: Vec<(String, String)>,
    chunks: Vec<Vec<u8>>,
    trailers: Option<Vec<(String, String)>>,
}

impl Request {
    pub fn new(method: &str, path: &str) -> Self {
        let headers = [
            (":method", method),
            (":path", path),
            (":authority", "models"),
            ("content-type", "application/json"),
            ("x-request-id", "r-1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Self {
            headers,
            chunks: Vec::new(),
            trailers: None,
        }
    }

    pub fn get(path: &str) -> Self {
        Self::new("GET", path)
    }

    pub fn post(path: &str) -> Self {
        Self::new("POST", path)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// `authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// The body, as these chunks in turn.
    pub fn chunks<I: IntoIterator<Item = impl AsRef<[u8]>>>(mut self, chunks: I) -> Self {
        self.chunks = chunks.into_iter().map(|c| c.as_ref().to_vec()).collect();
        self
    }

    /// Trailers end the request (the last chunk does not).
    pub fn trailers(mut self, pairs: &[(&str, &str)]) -> Self {
        self.trailers = Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        self
    }

    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// Sends the request on a new stream of `vm`; returns the stream id.
    pub fn send(&self, vm: &mut Vm) -> u32 {
        let id = vm.create_stream().unwrap_or_else(|e| panic!("{e}"));
        let bodyless = self.chunks.is_empty() && self.trailers.is_none();
        vm.request_headers(id, &self.headers, bodyless)
            .unwrap_or_else(|e| panic!("{e}"));
        let n = self.chunks.len();
        for (i, chunk) in self.chunks.iter().enumerate() {
            let end = i + 1 == n && self.trailers.is_none();
            vm.request_body(id, chunk, end)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        if let Some(t) = &self.trailers {
            vm.request_trailers(id, t).unwrap_or_else(|e| panic!("{e}"));
        }
        id
    }
}

/// The callout in flight to `cluster`, if there is one.
pub fn pending_call(vm: &Vm, cluster: &str) -> Option<crate::PendingCall> {
    vm.state()
        .pending_calls
        .values()
        .find(|c| c.cluster == cluster)
        .cloned()
}
