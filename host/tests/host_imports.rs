//! Each host import the SDK links, through a probe that calls it, with Envoy's statuses.

mod common;
use common::*;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use vigil_host::state::SharedData;
use vigil_host::{CallAnswer, Vm, VmOptions};

#[test]
fn properties_use_envoy_names_and_encodings() {
    let mut vm = probe("properties");
    vm.set_time(1_767_225_600_000_000_000);
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), true).unwrap();
    assert_eq!(report(&vm, "request.path"), "Some(\"/v1/models?x=1\")");
    assert_eq!(report(&vm, "request.url_path"), "Some(\"/v1/models\")");
    assert_eq!(report(&vm, "request.query"), "Some(\"x=1\")");
    assert_eq!(report(&vm, "request.method"), "Some(\"GET\")");
    assert_eq!(report(&vm, "request.host"), "Some(\"models\")");
    assert_eq!(report(&vm, "request.id"), "Some(\"rid-1\")");
    assert_eq!(
        report(&vm, "request.headers.x-request-id"),
        "Some(\"rid-1\")"
    );
    assert_eq!(report(&vm, "source.address"), "Some(\"127.0.0.1:51000\")");
    assert_eq!(
        report(&vm, "source.port"),
        "Some(51000)",
        "integers are 8-byte little-endian"
    );
    assert_eq!(
        report(&vm, "request.time"),
        "Some(1767225600000000000)",
        "timestamps are int64 nanoseconds"
    );
    assert_eq!(report(&vm, "plugin_root_id"), "Some(\"vigil\")");
    assert_eq!(report(&vm, "plugin_vm_id"), "Some(\"vigil\")");
    assert_eq!(report(&vm, "no.such.thing"), "None");
    assert_eq!(
        report(&vm, "round_trip"),
        "Some(\"kept\")",
        "set_property writes filter state that get_property reads back"
    );
    assert_eq!(
        vm.stream(id)
            .unwrap()
            .filter_state
            .get("wasm.probe_state")
            .map(Vec::as_slice),
        Some(&b"kept"[..])
    );
    vm.response_headers(id, &pairs(&[(":status", "404")]), true)
        .unwrap();
    assert_eq!(report(&vm, "response.code"), "Some(404)");
    assert_eq!(
        report(&vm, "request.path_in_response"),
        "None",
        "request headers are gone in the response phase"
    );
    vm.complete_stream(id).unwrap();
    assert_eq!(
        report(&vm, "request.path_in_log"),
        "Some(\"/v1/models?x=1\")",
        "the access-log phase sees them again"
    );
}

#[test]
fn shared_data_compare_and_swap() {
    let mut vm = probe("shared_data");
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), true).unwrap();
    assert_eq!(report(&vm, "absent"), "(None, None)");
    assert_eq!(report(&vm, "first_set"), "Ok(())");
    assert_eq!(report(&vm, "get"), "(Some(\"v1\"), true)");
    assert_eq!(report(&vm, "set_with_cas"), "Ok(())");
    assert_eq!(report(&vm, "stale_cas"), "Err(CasMismatch)");
    assert_eq!(report(&vm, "final"), "Some(\"v2\")");
}

#[test]
fn shared_data_is_shared_between_vms_that_share_a_store() {
    let shared = Arc::new(Mutex::new(SharedData::default()));
    let start = || {
        Vm::start(
            probe_plugin(),
            VmOptions {
                plugin_config: b"shared_data".to_vec(),
                shared: Some(shared.clone()),
                ..VmOptions::default()
            },
        )
        .unwrap()
    };
    let (mut a, mut b) = (start(), start());
    let id = a.create_stream().unwrap();
    a.request_headers(id, &get_request(), true).unwrap();
    let id = b.create_stream().unwrap();
    b.request_headers(id, &get_request(), true).unwrap();
    assert_eq!(
        report(&b, "absent"),
        "(Some([118, 50]), Some(2))",
        "the second VM sees the first VM's v2"
    );
}

#[test]
fn shared_queue_notifies_its_owner_after_the_call() {
    let mut vm = probe("queue");
    let queue_id = report(&vm, "queue_id");
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), true).unwrap();
    assert_eq!(report(&vm, "resolved"), format!("Some({queue_id})"));
    assert_eq!(report(&vm, "unknown_queue"), "None");
    assert_eq!(report(&vm, "enqueue"), "Ok(())");
    assert_eq!(report(&vm, "enqueue_unknown"), "Err(NotFound)");
    assert_eq!(report(&vm, "dequeue_unknown"), "Err(NotFound)");
    assert_eq!(report(&vm, "queue_ready"), queue_id);
    assert_eq!(report(&vm, "dequeued"), "Ok(Some(\"item-1\"))");
    assert_eq!(
        report(&vm, "dequeued_again"),
        "Ok(false)",
        "an empty queue answers Empty"
    );
}

#[test]
fn ticks_fire_as_the_clock_advances() {
    let mut vm = probe("tick");
    vm.advance(350_000_000).unwrap();
    let ticks = reports(&vm, "tick");
    assert_eq!(ticks.len(), 3);
    assert_eq!(ticks[0], "(1, 1767225600100)");
    assert_eq!(ticks[2], "(3, 1767225600300)");
    vm.tick().unwrap();
    assert_eq!(reports(&vm, "tick").len(), 4);
}

#[test]
fn metrics_follow_envoy_rules_for_counters_gauges_and_histograms() {
    let mut vm = probe("metrics");
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), true).unwrap();
    assert_eq!(report(&vm, "increment_counter"), "Ok(())");
    assert_eq!(
        report(&vm, "decrement_counter"),
        "Err(BadArgument)",
        "counters only go up"
    );
    assert_eq!(report(&vm, "counter"), "Ok(2)");
    assert_eq!(report(&vm, "gauge_down"), "Ok(())");
    assert_eq!(report(&vm, "gauge"), "Ok(3)");
    assert_eq!(report(&vm, "record_histogram"), "Ok(())");
    assert_eq!(report(&vm, "get_histogram"), "Err(BadArgument)");
    assert_eq!(report(&vm, "unknown"), "Err(NotFound)");
    let names: BTreeSet<String> = vm
        .state()
        .metrics
        .values()
        .map(|m| m.name.clone())
        .collect();
    assert_eq!(
        names,
        ["probe_inflight", "probe_latency_ms", "probe_requests"]
            .into_iter()
            .map(String::from)
            .collect()
    );
}

#[test]
fn raw_statuses_for_grpc_foreign_functions_and_bad_arguments() {
    let mut vm = probe("raw");
    assert_eq!(
        report(&vm, "root_set_property"),
        "1",
        "set_property outside a stream is NotFound"
    );
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), false).unwrap();
    let expect = [
        ("grpc_call", "12"),
        ("grpc_call_unknown_cluster", "2"),
        ("grpc_stream", "12"),
        ("grpc_send", "2"),
        ("grpc_cancel", "2"),
        ("grpc_close", "2"),
        ("effective_context_unknown", "2"),
        ("foreign_clear_route_cache", "0"),
        ("foreign_unknown", "1"),
        ("log_level", "(0, 0)"),
        ("continue_bad_type", "2"),
        ("continue_upstream", "12"),
        ("close_bad_type", "2"),
        ("log_bad_level", "2"),
        ("log_bad_pointer", "6"),
        ("map_bad_type", "2"),
        ("response_map_in_request_phase", "2"),
    ];
    for (key, want) in expect {
        assert_eq!(report(&vm, key), want, "{key}");
    }
    vm.request_body(id, b"x", true).unwrap();
    assert_eq!(
        report(&vm, "request_headers_in_body_phase"),
        "2",
        "Envoy clears request headers once their callback continued"
    );
}

#[test]
fn wasi_sees_the_vm_environment_clock_random_and_stdio_goes_to_the_log() {
    let vm = Vm::start(
        probe_plugin(),
        VmOptions {
            plugin_config: b"wasi".to_vec(),
            env: vec![("PROBE_ENV".into(), "from-vm-config".into())],
            now_nanos: 1_800_000_000_000_000_000,
            ..VmOptions::default()
        },
    )
    .unwrap();
    assert_eq!(report(&vm, "env"), "Some(\"from-vm-config\")");
    assert_eq!(report(&vm, "wasi_now_secs"), "1800000000");
    assert_eq!(report(&vm, "random_nonzero"), "true");
    let lines: Vec<_> = vm
        .logs()
        .iter()
        .map(|l| (l.level.name(), l.message.as_str()))
        .collect();
    assert!(lines.contains(&("info", "hello from stdout")));
    assert!(lines.contains(&("error", "hello from stderr")));
}

#[test]
fn vm_and_plugin_configuration_reach_the_root_context() {
    let vm = Vm::start(
        probe_plugin(),
        VmOptions {
            plugin_config: b"lifecycle".to_vec(),
            vm_config: b"vm-cfg".to_vec(),
            ..VmOptions::default()
        },
    )
    .unwrap();
    assert_eq!(report(&vm, "vm_config"), "\"vm-cfg\"");
    assert_eq!(report(&vm, "vm_config_size"), "6");
    assert_eq!(report(&vm, "root_id"), vm.root_context_id().to_string());
}

#[test]
fn a_plugin_that_refuses_its_configuration_does_not_start() {
    let err = Vm::start(
        probe_plugin(),
        VmOptions {
            plugin_config: b"refuse".to_vec(),
            ..VmOptions::default()
        },
    )
    .err()
    .unwrap();
    assert!(
        err.to_string()
            .starts_with("proxy_on_configure returned false"),
        "{err}"
    );
}

#[test]
fn root_context_callouts_are_answered_on_the_root_and_proxy_done_is_accepted() {
    let mut vm = probe("root_callout");
    assert_eq!(report(&vm, "root_dispatch"), "true");
    let token = *vm.state().pending_calls.keys().next().unwrap();
    vm.answer_call(
        token,
        CallAnswer::Response {
            headers: pairs(&[(":status", "200")]),
            body: b"k".to_vec(),
            trailers: vec![],
        },
    )
    .unwrap();
    assert_eq!(
        report(&vm, "root_call_response"),
        format!("({token}, 1, 1)")
    );
}

#[test]
fn shutdown_runs_the_roots_on_done_where_proxy_done_may_be_called() {
    let mut vm = probe("done");
    vm.shutdown().unwrap();
    assert_eq!(report(&vm, "done_status"), "0");
    assert!(vm.state().done_called);
}

/// Runs every probe through a full exchange and returns the imports they called.
fn imports_exercised() -> BTreeSet<&'static str> {
    let mut seen = BTreeSet::new();
    for name in [
        "headers",
        "pause_headers",
        "pause_response",
        "callout_errors",
        "buffer_body",
        "body_edges",
        "local_reply",
        "reset",
        "lifecycle",
        "properties",
        "shared_data",
        "queue",
        "metrics",
        "raw",
        "tick",
        "wasi",
        "root_callout",
    ] {
        let mut vm = probe(name);
        vm.advance(150_000_000).unwrap();
        let id = vm.create_stream().unwrap();
        vm.request_headers(id, &get_request(), false).unwrap();
        vm.request_body(id, b"body", false).unwrap();
        vm.request_trailers(id, &pairs(&[("x-t", "1")])).unwrap();
        if let Some(token) = vm.state().pending_calls.keys().next().copied() {
            vm.answer_call(
                token,
                CallAnswer::Response {
                    headers: pairs(&[(":status", "200")]),
                    body: b"ok".to_vec(),
                    trailers: vec![],
                },
            )
            .unwrap();
        }
        vm.response_headers(id, &pairs(&[(":status", "200")]), false)
            .unwrap();
        vm.response_body(id, b"resp", true).unwrap();
        if let Some(token) = vm.state().pending_calls.keys().next().copied() {
            vm.answer_call(token, CallAnswer::Reset).unwrap();
        }
        vm.complete_stream(id).unwrap();
        seen.extend(vm.state().calls_seen.iter().copied());
    }
    // proxy_done is called from the root's on_done, which runs when the VM shuts down.
    let mut vm = probe("done");
    vm.shutdown().unwrap();
    seen.extend(vm.state().calls_seen.iter().copied());
    // proc_exit ends the VM; its call is reported as a trap.
    let err = Vm::start(
        probe_plugin(),
        VmOptions {
            plugin_config: b"exit".to_vec(),
            ..VmOptions::default()
        },
    )
    .err()
    .unwrap();
    assert!(
        err.to_string().contains("the module called proc_exit(3)"),
        "{err}"
    );
    seen.insert("proc_exit");
    seen
}

#[test]
fn every_env_import_the_probe_links_is_exercised_and_every_sdk_import_is_provided() {
    let linked: BTreeSet<String> = probe_plugin()
        .imports()
        .into_iter()
        .filter_map(|i| i.strip_prefix("env::").map(String::from))
        .collect();
    let provided: BTreeSet<String> = vigil_host::imports::PROXY_IMPORTS
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert!(
        linked.is_subset(&provided),
        "imports the host lacks: {:?}",
        linked.difference(&provided).collect::<Vec<_>>()
    );
    let seen: BTreeSet<String> = imports_exercised().into_iter().map(String::from).collect();
    let missing: Vec<_> = provided.iter().filter(|i| !seen.contains(*i)).collect();
    assert!(
        missing.is_empty(),
        "host imports no probe exercised: {missing:?}"
    );
}
