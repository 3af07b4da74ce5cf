//! Signed checkpoints through vigil.wasm: one when the chain starts, one after every
//! `every_records` records (carried by that record's access-log line), one on the root's tick
//! once `every_s` passed, also when idle (in Envoy's log at once, and on the next record's
//! line), and one at shutdown. Each verifies with the public key alone; a policy naming another
//! key, or no key in the VM environment, stops the plugin with the reason.

use serde_json::Value;
use vigil_core::record::checkpoint::{check, Checkpoint, SigningKey, Trigger};
use vigil_host::testkit::vigil_plugin;
use vigil_host::{Vm, VmOptions, TEST_CHECKPOINT_KEY};

fn start(policy: &str) -> Result<Vm, vigil_host::HostError> {
    Vm::start(
        vigil_plugin(),
        VmOptions {
            plugin_config: policy.as_bytes().to_vec(),
            ..VmOptions::with_record_key()
        },
    )
}

fn public() -> vigil_core::record::checkpoint::PublicKey {
    SigningKey::new(TEST_CHECKPOINT_KEY.1).unwrap().public_key()
}

/// Checkpoints in the VM's log lines so far (Envoy's log), in order.
fn logged(vm: &Vm) -> Vec<Checkpoint> {
    vm.logs()
        .iter()
        .filter_map(|l| l.message.split("vigil checkpoint: ").nth(1))
        .map(|json| serde_json::from_str(json).unwrap())
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// One exchange; returns its record and the checkpoints its access-log line carries.
fn exchange(vm: &mut Vm) -> (Value, Vec<Value>) {
    let id = vm.create_stream().unwrap();
    vm.request_headers(
        id,
        &pairs(&[
            (":method", "POST"),
            (":path", "/v1/chat/completions"),
            (":authority", "m"),
            ("content-type", "application/json"),
        ]),
        false,
    )
    .unwrap();
    vm.request_body(id, br#"{"model":"m","messages":[]}"#, true)
        .unwrap();
    vm.response_headers(
        id,
        &pairs(&[(":status", "200"), ("content-type", "application/json")]),
        false,
    )
    .unwrap();
    vm.response_body(id, b"{}", true).unwrap();
    vm.complete_stream(id).unwrap();
    let s = vm.stream(id).unwrap();
    let record: Value =
        serde_json::from_str(s.logged("wasm.vigil_record").as_str().unwrap()).unwrap();
    let carried = match s.logged("wasm.vigil_record_checkpoints") {
        Value::String(text) => serde_json::from_str(&text).unwrap(),
        _ => Vec::new(),
    };
    vm.remove_stream(id);
    (record, carried)
}

#[test]
fn the_chain_starts_with_a_checkpoint_and_the_first_record_carries_it() {
    let mut vm = start(&vigil_host::traffic::checkpoint_policy(5, 60)).unwrap();
    let started = logged(&vm);
    assert_eq!(started.len(), 1);
    assert_eq!((started[0].seq, started[0].trigger), (1, Trigger::Start));
    let (record, carried) = exchange(&mut vm);
    assert_eq!(record["seq"], 2);
    assert_eq!(record["prev_hash"], started[0].hash.as_str());
    assert_eq!(carried.len(), 1);
    let c = check(&carried[0], &[], &[public()]).unwrap();
    assert!(c.signed);
    assert_eq!(c.checkpoint, started[0]);
}

#[test]
fn every_n_records_a_checkpoint_covers_the_record_whose_line_carries_it() {
    let mut vm = start(&vigil_host::traffic::checkpoint_policy(5, 3600)).unwrap();
    let mut lines = Vec::new();
    for _ in 0..10 {
        lines.push(exchange(&mut vm));
    }
    // seq 1 start, 2-6 records, 7 checkpoint, 8-12 records, 13 checkpoint.
    let (fifth, carried) = &lines[4];
    assert_eq!(fifth["seq"], 6);
    assert_eq!(carried.len(), 1);
    let c = check(&carried[0], &[], &[public()]).unwrap().checkpoint;
    assert_eq!((c.seq, c.trigger, c.records), (7, Trigger::Records, 5));
    assert_eq!(
        (c.covers.seq, c.covers.hash.as_str()),
        (6, fifth["hash"].as_str().unwrap())
    );
    let (sixth, carried) = &lines[5];
    assert!(carried.is_empty());
    assert_eq!(sixth["prev_hash"], c.hash.as_str());
    let c13 = check(&lines[9].1[0], &[], &[public()]).unwrap().checkpoint;
    assert_eq!((c13.seq, c13.prev_checkpoint), (13, c.hash));
}

#[test]
fn an_idle_vm_checkpoints_on_its_tick_into_envoys_log_and_the_next_line_carries_them() {
    let mut vm = start(&vigil_host::traffic::checkpoint_policy(1000, 60)).unwrap();
    let (_, _) = exchange(&mut vm);
    // Ten idle minutes: ten checkpoints, each in Envoy's log when it is made.
    vm.advance(600 * 1_000_000_000 + 500_000_000).unwrap();
    let log = logged(&vm);
    let timed: Vec<&Checkpoint> = log.iter().filter(|c| c.trigger == Trigger::Time).collect();
    assert_eq!(timed.len(), 10, "{log:?}");
    assert!(timed.iter().all(|c| c.records == 0 || c.seq == 3));
    // The next request's line carries all ten, oldest first.
    let (record, carried) = exchange(&mut vm);
    assert_eq!(carried.len(), 10);
    assert_eq!(carried[9]["hash"], timed[9].hash.as_str());
    assert_eq!(record["prev_hash"], timed[9].hash.as_str());
}

#[test]
fn shutdown_ends_the_chain_with_a_checkpoint() {
    let mut vm = start(&vigil_host::traffic::checkpoint_policy(1000, 60)).unwrap();
    exchange(&mut vm);
    vm.shutdown().unwrap();
    let last = logged(&vm).pop().unwrap();
    assert_eq!((last.trigger, last.seq), (Trigger::Shutdown, 3));
}

#[test]
fn a_policy_naming_another_key_or_no_key_in_the_environment_stops_the_plugin() {
    let mut policy: Value =
        serde_json::from_str(&vigil_host::traffic::checkpoint_policy(5, 60)).unwrap();
    policy["record"]["checkpoint"]["key_id"] = "0123456789abcdef".into();
    let err = start(&policy.to_string())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("the policy names 0123456789abcdef"), "{err}");
    let policy = vigil_host::traffic::checkpoint_policy(5, 60);
    let err = Vm::start(
        vigil_plugin(),
        VmOptions {
            plugin_config: policy.into_bytes(),
            env: vec![(
                vigil_host::TEST_RECORD_KEY.0.into(),
                vigil_host::TEST_RECORD_KEY.1.into(),
            )],
            ..VmOptions::default()
        },
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(
        err.contains("the VM environment has no VIGIL_CHECKPOINT_KEY"),
        "{err}"
    );
}
