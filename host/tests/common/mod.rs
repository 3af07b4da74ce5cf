//! Shared helpers for host tests: the built probe and filter modules, and log parsing.
#![allow(dead_code, unused_imports)]

use vigil_host::{Vm, VmOptions};

pub use vigil_host::testkit::{probe_plugin, vigil_plugin};

/// A VM running one probe, with the cluster `svc` known.
pub fn probe(name: &str) -> Vm {
    Vm::start(
        probe_plugin(),
        VmOptions {
            plugin_config: name.as_bytes().to_vec(),
            clusters: vec!["svc".into()],
            ..VmOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A VM running one probe under these Envoy settings (buffer limit, idle timeout, header hold).
pub fn probe_under(name: &str, envoy: vigil_host::EnvoySettings) -> Vm {
    Vm::start(
        probe_plugin(),
        VmOptions {
            plugin_config: name.as_bytes().to_vec(),
            clusters: vec!["svc".into()],
            envoy,
            ..VmOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Every value the probe reported for `key`, in order.
pub fn reports(vm: &Vm, key: &str) -> Vec<String> {
    let prefix = format!("probe {key}=");
    vm.logs()
        .iter()
        .filter_map(|l| l.message.strip_prefix(&prefix).map(str::to_string))
        .collect()
}

/// The last value the probe reported for `key`.
pub fn report(vm: &Vm, key: &str) -> String {
    reports(vm, key)
        .pop()
        .unwrap_or_else(|| panic!("probe reported nothing for {key}; logs: {:#?}", vm.logs()))
}

pub fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn get_request() -> Vec<(String, String)> {
    pairs(&[
        (":method", "GET"),
        (":path", "/v1/models?x=1"),
        (":authority", "models"),
        ("x-request-id", "rid-1"),
    ])
}

/// One per-file vector of testdata/conformance/jwt (the shared test kit's loader).
pub fn conformance_vector(name: &str) -> serde_json::Value {
    vigil_core::testkit::conformance_vector(name).unwrap_or_else(|e| panic!("{e}"))
}

/// The status the client got, if response headers went out.
pub fn status(vm: &vigil_host::Vm, id: u32) -> Option<String> {
    vm.stream(id)
        .unwrap()
        .response
        .sent_headers
        .as_ref()
        .map(|h| h[0].1.clone())
}

/// Ends an exchange (answering 200 upstream if the request went through unanswered) and
/// returns the session record the access log saw.
pub fn finish(vm: &mut vigil_host::Vm, id: u32) -> vigil_core::record::SessionRecord {
    let s = vm.stream(id).unwrap();
    if s.request.sent_end && s.response.sent_headers.is_none() {
        vm.response_headers(id, &pairs(&[(":status", "200")]), true)
            .unwrap();
    }
    vm.complete_stream(id).unwrap();
    serde_json::from_slice(
        vm.stream(id)
            .unwrap()
            .access_log
            .as_ref()
            .unwrap()
            .get("wasm.vigil_record")
            .unwrap(),
    )
    .unwrap()
}

/// The value of the metric the filter defined under `name`, if it did.
pub fn metric(vm: &vigil_host::Vm, name: &str) -> Option<i64> {
    vm.state()
        .metrics
        .values()
        .find(|m| m.name == name)
        .map(|m| m.value)
}
