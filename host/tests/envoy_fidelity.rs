//! Envoy's own interventions in a stream, pinned with probe filters; each test names the
//! Envoy source it follows (docs/envoy-behaviour.md lists them all).

mod common;
use common::*;
use vigil_host::{CallAnswer, EnvoySettings};

fn limit(bytes: usize) -> EnvoySettings {
    EnvoySettings {
        buffer_limit_bytes: bytes,
        ..EnvoySettings::default()
    }
}

/// The plugin's `allow_on_headers_stop_iteration` on.
fn hold() -> EnvoySettings {
    EnvoySettings {
        allow_on_headers_stop_iteration: true,
        ..EnvoySettings::default()
    }
}

fn client_status(vm: &vigil_host::Vm, id: u32) -> Option<String> {
    vm.stream(id)?
        .response
        .sent_headers
        .as_ref()
        .map(|h| h[0].1.clone())
}

fn client_body(vm: &vigil_host::Vm, id: u32) -> String {
    String::from_utf8_lossy(&vm.stream(id).unwrap().response.sent_body).into_owned()
}

/// filter_manager.cc `ActiveStreamDecoderFilter::requestDataTooLarge`.
#[test]
fn a_request_body_buffered_past_the_limit_gets_envoys_413_through_the_filter_chain() {
    let mut vm = probe_under("buffer_body", limit(10));
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), false).unwrap();
    vm.request_body(id, b"123456", false).unwrap();
    assert_eq!(client_status(&vm, id), None, "6 bytes fit");
    vm.request_body(id, b"789012", false).unwrap();
    assert_eq!(client_status(&vm, id).as_deref(), Some("413"));
    // The reply passed back through the filter, which appends to every response body.
    assert_eq!(client_body(&vm, id), "Payload Too Large<appended>");
    let s = vm.stream(id).unwrap();
    assert!(s.request.sent_body.is_empty(), "nothing reached upstream");
    assert_eq!(s.code_details.as_deref(), Some("request_payload_too_large"));
    assert_eq!(
        reports(&vm, "request_body_size"),
        ["(6, false)", "(12, false)"],
        "the filter still saw the chunk that went over"
    );
}

#[test]
fn a_body_at_the_limit_or_passed_on_is_not_refused() {
    let mut vm = probe_under("buffer_body", limit(10));
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), false).unwrap();
    vm.request_body(id, b"12345", false).unwrap();
    vm.request_body(id, b"67890", true).unwrap();
    assert_eq!(vm.stream(id).unwrap().request.sent_body, b"1234567890");
    // A filter that does not buffer streams any size.
    let mut vm = probe_under("lifecycle", limit(10));
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), false).unwrap();
    vm.request_body(id, &[b'x'; 64], true).unwrap();
    assert_eq!(vm.stream(id).unwrap().request.sent_body.len(), 64);
}

/// `prepareLocalReplyViaFilterChain` returns early once a reply is prepared.
#[test]
fn a_filter_reply_in_the_callback_that_went_over_the_limit_is_dropped_for_envoys_413() {
    let mut vm = probe_under("reply_on_big_body", limit(10));
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), false).unwrap();
    vm.request_body(id, b"123456", false).unwrap();
    vm.request_body(id, b"789012", false).unwrap();
    assert_eq!(client_status(&vm, id).as_deref(), Some("413"));
    assert_eq!(client_body(&vm, id), "Payload Too Large");
    vm.complete_stream(id).unwrap();
    // The filter's reply still set the details last (empty from the Rust SDK: not found).
    assert_eq!(report(&vm, "code_details"), "None");
}

#[test]
fn a_filter_reply_in_the_first_buffering_callback_wins_over_the_limit() {
    let mut vm = probe_under("reply_on_big_body", limit(10));
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), false).unwrap();
    vm.request_body(id, b"123456789012", false).unwrap();
    assert_eq!(client_status(&vm, id).as_deref(), Some("400"));
    assert_eq!(client_body(&vm, id), "probe says too big");
}

/// `ActiveStreamEncoderFilter::responseDataTooLarge`, then `sendLocalReply`'s direct path.
#[test]
fn a_response_body_buffered_past_the_limit_gets_a_direct_500_while_headers_are_held() {
    let mut vm = probe_under(
        "hold_response",
        EnvoySettings {
            buffer_limit_bytes: 10,
            ..hold()
        },
    );
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), true).unwrap();
    vm.response_headers(id, &pairs(&[(":status", "200")]), false)
        .unwrap();
    vm.response_body(id, b"123456", false).unwrap();
    vm.response_body(id, b"789012", false).unwrap();
    assert_eq!(client_status(&vm, id).as_deref(), Some("500"));
    assert_eq!(client_body(&vm, id), "Internal Server Error");
    assert_eq!(
        vm.stream(id).unwrap().code_details.as_deref(),
        Some("response_payload_too_large")
    );
}

/// `DownstreamFilterManager::sendLocalReply` -> `sendDirectLocalReply`.
#[test]
fn a_reply_while_response_headers_are_held_goes_straight_to_the_client() {
    let mut vm = probe_under("hold_response", hold());
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), true).unwrap();
    vm.response_headers(id, &pairs(&[(":status", "200")]), false)
        .unwrap();
    vm.response_body(id, b"please refuse this", false).unwrap();
    assert_eq!(client_status(&vm, id).as_deref(), Some("502"));
    assert_eq!(client_body(&vm, id), "probe refuses");
    let s = vm.stream(id).unwrap();
    assert!(s
        .response
        .sent_headers
        .as_ref()
        .unwrap()
        .contains(&("x-probe".into(), "refused".into())));
    assert!(s.reset.is_none() && s.response.sent_end);
    assert_eq!(
        reports(&vm, "response_headers_seen"),
        ["Some(\"200\")"],
        "the reply did not pass back through the filter"
    );
    // The rest of the upstream answer is dropped.
    vm.response_body(id, b"more", true).unwrap();
    assert_eq!(client_body(&vm, id), "probe refuses");
    assert_eq!(reports(&vm, "response_body_size").len(), 1);
}

/// conn_manager_impl.cc `ActiveStream::log`: filter log handlers first (Envoy 1.32+).
#[test]
fn filter_state_written_in_on_log_reaches_the_exchanges_own_access_log_line() {
    let mut vm = probe("log_writer");
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), true).unwrap();
    vm.complete_stream(id).unwrap();
    let logged = vm.stream(id).unwrap().access_log.clone().unwrap();
    assert_eq!(logged.get("wasm.probe_log").unwrap(), b"written in on_log");
}

/// expr/context.cc `ResponseWrapper`: code details only once something set them.
#[test]
fn response_code_details_are_absent_until_set_and_via_upstream_after_upstream_headers() {
    let mut vm = probe("log_writer");
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), true).unwrap();
    vm.complete_stream(id).unwrap();
    assert_eq!(report(&vm, "code_details"), "None");
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), true).unwrap();
    vm.response_headers(id, &pairs(&[(":status", "200")]), true)
        .unwrap();
    vm.complete_stream(id).unwrap();
    assert_eq!(report(&vm, "code_details"), "Some(\"via_upstream\")");
}

/// header_map_impl.cc `HeaderMapImpl::insertByKey` -> `appendToHeader`.
#[test]
fn duplicate_inline_headers_reach_the_filter_as_one_comma_joined_value() {
    let mut vm = probe("log_writer");
    let id = vm.create_stream().unwrap();
    let mut headers = get_request();
    headers.extend(pairs(&[
        ("authorization", "Bearer first"),
        ("x-custom", "one"),
        ("Authorization", "Bearer second"),
        ("x-custom", "two"),
    ]));
    vm.request_headers(id, &headers, true).unwrap();
    assert_eq!(
        report(&vm, "authorization"),
        "Some(\"Bearer first,Bearer second\")"
    );
    assert_eq!(
        report(&vm, "x_custom"),
        "Some(\"one\")",
        "a header that is not inline keeps its entries; the first is read"
    );
}

/// cpp-host src/context.cc `convertVmCallResultToFilterHeadersStatus`.
#[test]
fn with_allow_on_headers_stop_iteration_body_callbacks_run_while_headers_are_held() {
    let mut vm = probe_under("hold_headers", hold());
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), false).unwrap();
    vm.request_body(id, b"hello ", false).unwrap();
    assert!(vm.stream(id).unwrap().request.sent_headers.is_none());
    vm.request_body(id, b"world", true).unwrap();
    assert_eq!(
        reports(&vm, "body_with_headers_held"),
        [
            "(6, false, Some(\"/v1/models?x=1\"))",
            "(11, true, Some(\"/v1/models?x=1\"))"
        ]
    );
    let s = vm.stream(id).unwrap();
    let sent = s.request.sent_headers.as_ref().unwrap();
    assert!(
        sent.contains(&("x-held".into(), "decided".into())),
        "{sent:?}"
    );
    assert_eq!(s.request.sent_body, b"hello world");
    assert!(s.request.sent_end);
}

#[test]
fn without_allow_on_headers_stop_iteration_a_pause_at_headers_withholds_the_body() {
    let mut vm = probe("hold_headers");
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), false).unwrap();
    vm.request_body(id, b"hello", true).unwrap();
    assert!(reports(&vm, "body_with_headers_held").is_empty());
}

/// conn_manager_impl.cc `ActiveStream::onIdleTimeout`; callouts do not reset the timer.
#[test]
fn an_idle_stream_gets_envoys_timeout_even_with_a_callout_in_flight() {
    let idle = EnvoySettings {
        stream_idle_timeout_ms: 120_000,
        ..EnvoySettings::default()
    };
    // Request complete: 504.
    let mut vm = probe_under("hold_headers", idle.clone());
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), true).unwrap();
    vm.advance(119_000_000_000).unwrap();
    assert_eq!(client_status(&vm, id), None);
    vm.advance(1_000_000_000).unwrap();
    assert_eq!(client_status(&vm, id).as_deref(), Some("504"));
    assert_eq!(client_body(&vm, id), "stream timeout");
    let s = vm.stream(id).unwrap();
    assert!(s.ended, "the stream ended and logged");
    assert_eq!(report(&vm, "code_details"), "Some(\"stream_idle_timeout\")");
    // Request still arriving: 408; traffic from the client restarts the timer.
    let mut vm = probe_under("hold_headers", idle);
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), false).unwrap();
    vm.advance(100_000_000_000).unwrap();
    vm.request_body(id, b"more", false).unwrap();
    vm.advance(100_000_000_000).unwrap();
    assert_eq!(client_status(&vm, id), None, "the body restarted the timer");
    vm.advance(20_000_000_000).unwrap();
    assert_eq!(client_status(&vm, id).as_deref(), Some("408"));
}

/// cpp-host exports.cc `http_call` on the root context; Context::onDestroy cancels nothing.
#[test]
fn a_callout_outlives_its_stream_and_the_sdk_drops_its_answer() {
    let mut vm = probe("hold_headers");
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), true).unwrap();
    let token = vm.state().pending_calls.keys().next().copied().unwrap();
    vm.abort_stream(id, "downstream_remote_disconnect").unwrap();
    assert!(
        vm.state().pending_calls.contains_key(&token),
        "not cancelled"
    );
    vm.answer_call(
        token,
        CallAnswer::Response {
            headers: pairs(&[(":status", "200")]),
            body: Vec::new(),
            trailers: Vec::new(),
        },
    )
    .unwrap();
    assert!(!vm.has_failed(), "no trap");
    assert!(
        reports(&vm, "call_response").is_empty(),
        "dropped by the SDK"
    );
}

#[test]
fn a_callout_answer_reaches_the_stream_that_dispatched_it_while_it_lives() {
    let mut vm = probe("hold_headers");
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), true).unwrap();
    let token = vm.state().pending_calls.keys().next().copied().unwrap();
    vm.answer_call(token, CallAnswer::Reset).unwrap();
    assert_eq!(report(&vm, "call_response"), format!("({token}, 0)"));
}

/// router async client `AsyncClientImpl::send` fails inline; context.cc `httpCall`.
#[test]
fn a_callout_to_a_cluster_without_a_healthy_host_fails_at_once_with_no_callback() {
    let mut vm = probe("hold_headers");
    vm.set_cluster_healthy("svc", false);
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &get_request(), true).unwrap();
    assert_eq!(report(&vm, "dispatch"), "Err(InternalFailure)");
    assert!(vm.state().pending_calls.is_empty());
}

/// cpp-host context.cc `CHECK_FAIL_HTTP`, Envoy context.cc `failStream`, wasm.cc
/// `PluginConfig::createContext`.
#[test]
fn a_trap_fails_the_whole_vm_and_every_stream_meets_a_503_at_its_next_event() {
    let mut vm = probe("panic_on_path");
    let before = vm.create_stream().unwrap();
    vm.request_headers(before, &get_request(), true).unwrap();
    let trapping = vm.create_stream().unwrap();
    let mut panic_request = get_request();
    panic_request[1].1 = "/panic".into();
    let err = vm
        .request_headers(trapping, &panic_request, true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("probe panics on purpose"), "{err}");
    assert_eq!(client_status(&vm, trapping).as_deref(), Some("503"));
    // The stream in flight fails when its response arrives.
    vm.response_headers(before, &pairs(&[(":status", "200")]), true)
        .unwrap();
    assert_eq!(client_status(&vm, before).as_deref(), Some("503"));
    // A new stream fails at once.
    let after = vm.create_stream().unwrap();
    vm.request_headers(after, &get_request(), true).unwrap();
    assert_eq!(client_status(&vm, after).as_deref(), Some("503"));
    assert_eq!(
        vm.stream(after).unwrap().code_details.as_deref(),
        Some("wasm_fail_stream")
    );
    // on_log never runs again; what the filter wrote before the trap is still logged.
    for id in [before, trapping, after] {
        vm.complete_stream(id).unwrap();
    }
    assert!(reports(&vm, "on_log").is_empty());
    let logged = vm.stream(before).unwrap().access_log.clone().unwrap();
    assert_eq!(
        logged.get("wasm.probe_state").unwrap(),
        b"set before the trap"
    );
}
