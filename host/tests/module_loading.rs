//! What the host accepts as a plugin, and how it refuses the rest.

mod common;
use common::*;
use std::path::PathBuf;
use vigil_host::{HostError, Plugin, Vm, VmOptions};

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

#[test]
fn a_module_without_the_proxy_wasm_abi_is_refused_with_a_clear_message() {
    let err = Plugin::load(&testdata("not-proxy-wasm.wat")).err().unwrap();
    assert!(matches!(err, HostError::NotProxyWasm(_)));
    assert!(
        err.to_string()
            .ends_with("not-proxy-wasm.wat: it exports no proxy_abi_version_* function"),
        "{err}"
    );
}

#[test]
fn a_module_importing_what_no_host_provides_is_refused_by_name() {
    let err = Plugin::load(&testdata("unknown-import.wat")).err().unwrap();
    assert_eq!(err.to_string(), "cannot instantiate module: the module imports env::proxy_teleport, which this host does not provide");
}

#[test]
fn bytes_that_are_not_webassembly_are_refused() {
    let err = Plugin::from_bytes(b"\0asm garbage").err().unwrap();
    assert!(matches!(err, HostError::Load(_)), "{err}");
    let err = Plugin::load(&testdata("no-such-file.wasm")).err().unwrap();
    assert!(err.to_string().contains("no-such-file.wasm"), "{err}");
}

#[test]
fn a_trap_during_start_is_reported_not_raised() {
    let plugin = Plugin::load(&testdata("traps-in-start.wat")).unwrap();
    let err = Vm::start(&plugin, VmOptions::default()).err().unwrap();
    assert!(
        err.to_string()
            .starts_with("filter trapped in _initialize: wasm trap"),
        "{err}"
    );
}

#[test]
fn the_empty_baseline_module_runs_a_whole_exchange() {
    let plugin = Plugin::load(&testdata("empty.wat")).unwrap();
    assert_eq!(plugin.abi_version, "proxy_abi_version_0_2_1");
    let mut vm = Vm::start(&plugin, VmOptions::default()).unwrap();
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), true).unwrap();
    vm.response_headers(id, &pairs(&[(":status", "200")]), false)
        .unwrap();
    vm.response_body(id, b"ok", true).unwrap();
    vm.complete_stream(id).unwrap();
    assert_eq!(vm.stream(id).unwrap().response.sent_body, b"ok");
}

#[test]
fn the_probe_and_vigil_declare_abi_0_2_1() {
    assert_eq!(probe_plugin().abi_version, "proxy_abi_version_0_2_1");
    assert_eq!(vigil_plugin().abi_version, "proxy_abi_version_0_2_1");
}
