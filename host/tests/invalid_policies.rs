//! vigil.wasm refuses to start on every policy of testdata/policies/invalid.json, with one
//! log line carrying every error.

mod common;
use common::*;
use serde_json::Value;
use std::path::PathBuf;
use vigil_host::{HostError, Vm, VmOptions};

#[test]
fn the_filter_refuses_to_start_on_every_invalid_policy() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/policies/invalid.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for case in doc["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let text = case["policy_text"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| case["policy"].to_string());
        let errors: Vec<&str> = case["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        match Vm::start(
            vigil_plugin(),
            VmOptions {
                plugin_config: text.into_bytes(),
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
                        errors.join("; ")
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
