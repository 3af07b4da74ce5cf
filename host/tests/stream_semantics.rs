//! The HTTP lifecycle as Envoy drives one proxy-wasm filter, pinned with probe filters.

mod common;
use common::*;
use vigil_host::CallAnswer;

#[test]
fn callbacks_run_in_envoy_order_and_log_sees_both_header_maps() {
    let mut vm = probe("lifecycle");
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), false).unwrap();
    vm.request_body(id, b"abc", false).unwrap();
    vm.request_trailers(id, &pairs(&[("x-t", "1")])).unwrap();
    vm.response_headers(id, &pairs(&[(":status", "200")]), false)
        .unwrap();
    vm.response_body(id, b"hello", true).unwrap();
    vm.complete_stream(id).unwrap();
    let order: Vec<String> = vm
        .logs()
        .iter()
        .filter_map(|l| {
            l.message
                .strip_prefix("probe ")
                .map(|m| m.split('=').next().unwrap().to_string())
        })
        .filter(|k| k.starts_with("on_"))
        .collect();
    assert_eq!(
        order,
        [
            "on_http_request_headers",
            "on_http_request_body",
            "on_http_request_trailers",
            "on_http_response_headers",
            "on_http_response_body",
            "on_log",
            "on_done"
        ]
    );
    assert_eq!(report(&vm, "on_http_request_headers"), "(4, false)");
    assert_eq!(report(&vm, "on_http_request_body"), "(3, false)");
    assert_eq!(report(&vm, "on_http_response_body"), "(5, true)");
    assert_eq!(
        report(&vm, "on_log"),
        "(Some(\"/v1/models?x=1\"), Some(\"200\"))"
    );
    let s = vm.stream(id).unwrap();
    assert_eq!(s.request.sent_body, b"abc");
    assert_eq!(s.request.sent_trailers, Some(pairs(&[("x-t", "1")])));
    assert!(s.response.sent_end);
}

#[test]
fn paused_headers_hold_body_and_trailers_until_resume_then_deliver_the_whole_body_at_once() {
    let mut vm = probe("pause_headers");
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), false).unwrap();
    vm.request_body(id, b"hello ", false).unwrap();
    vm.request_body(id, b"world", false).unwrap();
    vm.request_trailers(id, &pairs(&[("x-t", "1")])).unwrap();
    assert!(
        reports(&vm, "body_callback").is_empty(),
        "Envoy holds data while headers are stopped"
    );
    assert!(vm.stream(id).unwrap().request.sent_headers.is_none());
    let call = vm.state().pending_calls.values().next().cloned().unwrap();
    assert_eq!(call.cluster, "svc");
    assert_eq!(call.body, b"ping");
    assert!(call
        .headers
        .contains(&("content-length".into(), "4".into())));
    vm.answer_call(
        call.token,
        CallAnswer::Response {
            headers: pairs(&[(":status", "200"), ("x-a", "b")]),
            body: b"allowed".to_vec(),
            trailers: pairs(&[("grpc-status", "0")]),
        },
    )
    .unwrap();
    assert_eq!(report(&vm, "call_status"), "Some(\"200\")");
    assert_eq!(report(&vm, "call_body"), "Some(\"allowed\")");
    assert_eq!(report(&vm, "call_trailers"), "[(\"grpc-status\", \"0\")]");
    assert_eq!(
        report(&vm, "headers_during_callout"),
        "Some(\"/v1/models?x=1\")",
        "paused headers stay reachable"
    );
    assert_eq!(
        reports(&vm, "body_callback"),
        vec!["(11, false, Some(\"hello world\"))"]
    );
    assert_eq!(report(&vm, "trailers_callback"), "1");
    let s = vm.stream(id).unwrap();
    assert_eq!(s.request.sent_body, b"hello world");
    assert!(s.request.sent_end);
}

#[test]
fn paused_headers_with_end_of_stream_resume_without_a_body_callback() {
    let mut vm = probe("pause_headers");
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), true).unwrap();
    let token = *vm.state().pending_calls.keys().next().unwrap();
    vm.answer_call(
        token,
        CallAnswer::Response {
            headers: pairs(&[(":status", "200")]),
            body: vec![],
            trailers: vec![],
        },
    )
    .unwrap();
    assert!(reports(&vm, "body_callback").is_empty());
    assert!(vm.stream(id).unwrap().request.sent_end);
}

#[test]
fn a_paused_body_callback_buffers_and_the_next_one_sees_everything() {
    let mut vm = probe("buffer_body");
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), false).unwrap();
    for (chunk, end) in [("ab", false), ("cd", false), ("ef", true)] {
        vm.request_body(id, chunk.as_bytes(), end).unwrap();
    }
    assert_eq!(
        reports(&vm, "request_body_size"),
        vec!["(2, false)", "(4, false)", "(6, true)"]
    );
    assert_eq!(
        vm.stream(id).unwrap().request.sent_body,
        b"ABCDEF",
        "set_buffer_bytes(0, size) replaced the buffered body"
    );
    vm.response_headers(id, &pairs(&[(":status", "200")]), false)
        .unwrap();
    vm.response_body(id, b"xyz", true).unwrap();
    assert_eq!(
        vm.stream(id).unwrap().response.sent_body,
        b"xyz<appended>",
        "a write at the end appends"
    );
}

#[test]
fn buffer_reads_clamp_to_the_buffer_and_writes_in_the_middle_are_refused() {
    let mut vm = probe("body_edges");
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), false).unwrap();
    vm.request_body(id, b"0123456789", true).unwrap();
    assert_eq!(report(&vm, "slice"), "Some(\"234\")");
    assert_eq!(report(&vm, "past_end"), "None");
    assert_eq!(report(&vm, "clamped"), "Some(2)");
    assert_eq!(
        report(&vm, "write_middle"),
        "2",
        "Envoy Buffer::copyFrom refuses a start inside the buffer with BadArgument"
    );
}

#[test]
fn header_operations_follow_envoy_including_pseudo_headers_and_added_trailers() {
    let mut vm = probe("headers");
    let id = vm.create_stream().unwrap();
    let mut req = get_request();
    req.extend(pairs(&[("X-Replaced", "old"), ("x-removed", "gone")]));
    vm.request_headers(id, &req, false).unwrap();
    assert_eq!(report(&vm, "num_headers"), "(6, false)");
    assert!(
        report(&vm, "pairs").contains("(\"x-replaced\", \"old\")"),
        "keys are lowercase"
    );
    assert_eq!(report(&vm, "path"), "Some(\"/v1/models?x=1\")");
    assert_eq!(report(&vm, "missing"), "None");
    vm.request_body(id, b"", false).unwrap();
    vm.request_trailers(id, &pairs(&[("x-end", "1")])).unwrap();
    assert_eq!(report(&vm, "request_trailers"), "(1, [(\"x-end\", \"1\")])");
    let sent = vm.stream(id).unwrap().request.sent_headers.clone().unwrap();
    assert!(sent.contains(&(":path".into(), "/rewritten".into())));
    assert!(sent.contains(&("x-added".into(), "1".into())));
    assert!(sent.contains(&("x-replaced".into(), "new".into())));
    assert!(!sent.iter().any(|(k, _)| k == "x-removed"));
    vm.response_headers(
        id,
        &pairs(&[(":status", "200"), ("x-upstream", "1")]),
        false,
    )
    .unwrap();
    vm.response_body(id, b"ok", true).unwrap();
    let s = vm.stream(id).unwrap();
    assert_eq!(
        s.response.sent_headers,
        Some(pairs(&[(":status", "201"), ("x-only", "this")])),
        "set_header_map_pairs replaces the whole map"
    );
    assert_eq!(
        s.response.sent_trailers,
        Some(pairs(&[("x-trailer", "added-at-end")])),
        "trailers may be added in the last body callback"
    );
}

#[test]
fn a_local_reply_goes_back_through_the_filter_and_nothing_reaches_upstream() {
    let mut vm = probe("local_reply");
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), false).unwrap();
    vm.request_body(id, b"ignored", true).unwrap();
    let s = vm.stream(id).unwrap();
    assert!(s.request.sent_headers.is_none());
    assert_eq!(
        s.response.sent_headers,
        Some(pairs(&[
            (":status", "403"),
            ("x-reason", "probe"),
            ("content-length", "15"),
            ("content-type", "text/plain")
        ]))
    );
    assert_eq!(s.response.sent_body, b"denied by probe");
    assert!(
        reports(&vm, "body_after_local_reply").is_empty(),
        "decoding stops after a local reply"
    );
    assert!(report(&vm, "local_reply_headers").starts_with("(4, false,"));
    assert_eq!(report(&vm, "local_reply_body"), "(15, true)");
}

#[test]
fn a_local_reply_after_response_headers_went_out_resets_the_stream() {
    let mut vm = probe("local_reply_late");
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), true).unwrap();
    vm.response_headers(id, &pairs(&[(":status", "200")]), false)
        .unwrap();
    vm.response_body(id, b"partial", false).unwrap();
    let s = vm.stream(id).unwrap();
    assert_eq!(
        s.response.sent_headers.as_ref().unwrap()[0].1,
        "200",
        "the status already sent cannot change"
    );
    assert!(s.reset.as_deref().unwrap().contains("stream reset"));
}

#[test]
fn close_stream_resets_the_request() {
    let mut vm = probe("reset");
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), true).unwrap();
    assert!(vm
        .stream(id)
        .unwrap()
        .reset
        .as_deref()
        .unwrap()
        .contains("close_stream"));
    assert!(vm.stream(id).unwrap().request.sent_headers.is_none());
}

#[test]
fn paused_response_headers_resume_after_a_callout_with_headers_edited_meanwhile() {
    let mut vm = probe("pause_response");
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), true).unwrap();
    vm.response_headers(id, &pairs(&[(":status", "200")]), false)
        .unwrap();
    vm.response_body(id, b"one", false).unwrap();
    vm.response_body(id, b"two", true).unwrap();
    assert!(vm.stream(id).unwrap().response.sent_headers.is_none());
    let token = *vm.state().pending_calls.keys().next().unwrap();
    vm.answer_call(
        token,
        CallAnswer::Response {
            headers: pairs(&[(":status", "204")]),
            body: vec![],
            trailers: vec![],
        },
    )
    .unwrap();
    assert_eq!(reports(&vm, "response_body_callback"), vec!["(6, true)"]);
    let s = vm.stream(id).unwrap();
    assert!(s
        .response
        .sent_headers
        .as_ref()
        .unwrap()
        .contains(&("x-checked".into(), "yes".into())));
    assert_eq!(s.response.sent_body, b"onetwo");
}

#[test]
fn a_reset_callout_arrives_with_no_headers_and_broken_connection_status() {
    let mut vm = probe("pause_headers");
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), true).unwrap();
    let token = *vm.state().pending_calls.keys().next().unwrap();
    vm.answer_call(token, CallAnswer::Reset).unwrap();
    assert_eq!(report(&vm, "call_response"), format!("({token}, 0, 0, 0)"));
    assert_eq!(report(&vm, "grpc_status"), "(0, 11, \"reset\")");
    assert_eq!(
        vm.stream(id)
            .unwrap()
            .response
            .sent_headers
            .as_ref()
            .unwrap()[0]
            .1,
        "503"
    );
}

#[test]
fn a_callout_that_times_out_gets_envoys_504_when_the_clock_passes_its_timeout() {
    let mut vm = probe("pause_headers");
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), true).unwrap();
    vm.advance(499_000_000).unwrap();
    assert!(
        reports(&vm, "call_response").is_empty(),
        "not yet: the timeout is 500 ms"
    );
    vm.advance(1_000_000).unwrap();
    assert_eq!(report(&vm, "call_status"), "Some(\"504\")");
    assert_eq!(
        report(&vm, "call_body"),
        "Some(\"upstream request timeout\")"
    );
    assert!(
        vm.stream(id).unwrap().request.sent_end,
        "the probe resumes on any answer with headers"
    );
}

#[test]
fn callouts_with_bad_arguments_are_refused_like_envoy() {
    let mut vm = probe("callout_errors");
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), true).unwrap();
    for key in ["unknown_cluster", "no_path", "no_method", "no_authority"] {
        assert_eq!(report(&vm, key), "Err(BadArgument)", "{key}");
    }
    assert_eq!(report(&vm, "negative_timeout"), "2");
    assert!(vm.state().pending_calls.is_empty());
    assert_eq!(vm.state().unknown_cluster_calls, vec!["nope"]);
}

#[test]
fn outstanding_callouts_stay_in_flight_when_the_stream_ends() {
    // Envoy: callouts belong to the root context (envoy_fidelity.rs).
    let mut vm = probe("pause_headers");
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), true).unwrap();
    assert_eq!(vm.state().pending_calls.len(), 1);
    vm.complete_stream(id).unwrap();
    assert_eq!(vm.state().pending_calls.len(), 1);
}

#[test]
fn a_panic_traps_the_vm_with_the_panic_message_and_later_streams_fail() {
    let mut vm = probe("panic");
    let id = vm.create_stream().unwrap();
    let err = vm
        .request_headers(id, &get_request(), true)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("filter trapped in proxy_on_request_headers: wasm trap"),
        "{err}"
    );
    assert!(
        err.contains("[critical] panicked at"),
        "the SDK's panic hook logs at critical level: {err}"
    );
    assert!(err.contains("probe panics on purpose"), "{err}");
    assert!(err.contains("[warn] about to fail"), "{err}");
    assert!(vm.has_failed());
    assert_eq!(vm.tick().unwrap_err(), vigil_host::HostError::VmFailed);
    let next = vm.create_stream().unwrap();
    assert_eq!(
        vm.stream(next).unwrap().code_details.as_deref(),
        Some("wasm_fail_stream")
    );
}

#[test]
fn vms_are_independent_so_tests_can_run_in_parallel() {
    let handles: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                let mut vm = probe("lifecycle");
                vm.set_time(1_000_000_000 * i);
                let id = vm.create_stream().unwrap();
                vm.request_headers(id, &get_request(), true).unwrap();
                (vm.state().now_nanos, vm.logs().len())
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(results
        .iter()
        .enumerate()
        .all(|(i, (now, _))| *now == 1_000_000_000 * i as u64));
    assert!(results.windows(2).all(|w| w[0].1 == w[1].1));
}

/// Envoy's `ActiveStreamFilterBase::commonContinue` (source/common/http/filter_manager.cc):
/// continuing a filter that stopped at trailers after buffering the body sends the buffered
/// body without end of stream (`doData(complete() && !had_trailers_before_data)`), then the
/// trailers (`doTrailers()`).
#[test]
fn resuming_at_trailers_after_a_buffered_body_sends_the_body_then_the_trailers() {
    let mut vm = probe("pause_trailers");
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), false).unwrap();
    vm.request_body(id, b"hello ", false).unwrap();
    vm.request_body(id, b"world", false).unwrap();
    vm.request_trailers(id, &pairs(&[("x-t", "1")])).unwrap();
    let s = vm.stream(id).unwrap();
    assert!(
        s.request.sent_body.is_empty() && !s.request.sent_end,
        "held while the callout is out"
    );
    let token = *vm.state().pending_calls.keys().next().unwrap();
    vm.answer_call(
        token,
        CallAnswer::Response {
            headers: pairs(&[(":status", "200")]),
            body: vec![],
            trailers: vec![],
        },
    )
    .unwrap();
    let s = vm.stream(id).unwrap();
    assert_eq!(s.request.sent_body, b"hello world");
    assert_eq!(
        s.request.sent_trailers,
        Some(pairs(&[("x-t", "1")])),
        "the trailers follow the body"
    );
    assert!(s.request.sent_end);
}
