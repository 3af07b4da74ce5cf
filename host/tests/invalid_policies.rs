//! vigil.wasm refuses to start on every policy of testdata/policies/invalid.json, with one
//! log line carrying every error.

mod common;
use common::*;
use vigil_host::{HostError, Vm, VmOptions};

#[test]
fn the_filter_refuses_to_start_on_every_invalid_policy() {
    for case in vigil_core::testkit::invalid_policies().unwrap() {
        let name = &case.name;
        match Vm::start(
            vigil_plugin(),
            VmOptions {
                plugin_config: case.text.into_bytes(),
                ..VmOptions::with_record_key()
            },
        ) {
            Err(HostError::Rejected {
                function,
                last_logs,
            }) => {
                assert_eq!(function, "proxy_on_configure", "{name}");
                assert_eq!(
                    last_logs.last().unwrap().message,
                    format!(
                        "#1 on_configure: invalid plugin configuration: {}",
                        case.errors.join("; ")
                    ),
                    "{name}"
                );
            }
            other => panic!(
                "{name}: expected a refusal, got {:?}",
                other.map(|_| "a running VM")
            ),
        }
    }
}
