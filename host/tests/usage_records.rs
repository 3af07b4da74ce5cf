//! What a model call consumed, in its record, through vigil.wasm: token counts, model and id,
//! finish reasons and time to first chunk from OpenAI answers and streams, Anthropic streams,
//! Ollama lines and cut streams; GenAI attributes in filter state and token counters per model
//! and group; and a token whose groups were left out (Entra ID overage) refused.

mod common;
use common::*;
use serde_json::{json, Value};
use vigil_core::record::SessionRecord;
use vigil_core::testkit::mint_hs256;
use vigil_host::testkit::{Gateway, Request};
use vigil_host::Vm;

const NOW_S: u64 = 1_764_000_000;
const KEY: &[u8] = b"usage-test-key-not-a-secret-00000";

fn gateway() -> Vm {
    use base64::Engine;
    let k = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(KEY);
    let policy = json!({"id": "gw", "version": "1", "masking": {"entities": {}},
        "identity": {"providers": [{"name": "corp", "issuer": "https://corp.test", "algorithms": ["HS256"],
            "jwks": {"keys": [{"kty": "oct", "alg": "HS256", "kid": "k", "k": k}]}}]},
        "models": {"from": "body", "allow": [{"model": "llama-*", "groups": ["analysts"]}]}});
    Gateway::new(&policy).at(NOW_S).start()
}

fn caller(claims: Value) -> String {
    let mut c = json!({"iss": "https://corp.test", "sub": "ana", "exp": NOW_S + 600});
    for (k, v) in claims.as_object().unwrap() {
        c[k] = v.clone();
    }
    mint_hs256(KEY, "k", &c)
}

fn chat(vm: &mut Vm, path: &str) -> u32 {
    Request::post(path)
        .bearer(&caller(json!({"groups": ["analysts", "unlisted-group"]})))
        .chunks([r#"{"model":"llama-3","messages":[{"role":"user","content":"hi"}]}"#])
        .send(vm)
}

fn answer(vm: &mut Vm, id: u32, content_type: &str, chunks: &[&str]) -> SessionRecord {
    vm.response_headers(
        id,
        &pairs(&[(":status", "200"), ("content-type", content_type)]),
        false,
    )
    .unwrap();
    vm.advance(250_000_000).unwrap();
    for (i, c) in chunks.iter().enumerate() {
        vm.response_body(id, c.as_bytes(), i + 1 == chunks.len())
            .unwrap();
    }
    vm.complete_stream(id).unwrap();
    serde_json::from_slice(&vm.stream(id).unwrap().access_log.clone().unwrap()["wasm.vigil_record"])
        .unwrap()
}

#[test]
fn an_openai_answer_puts_its_usage_in_the_record_the_access_log_and_the_counters() {
    let mut vm = gateway();
    let id = chat(&mut vm, "/v1/chat/completions");
    let body = r#"{"id":"chatcmpl-9","model":"llama-3-8b-instruct","choices":[{"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":34,"completion_tokens_details":{"reasoning_tokens":5}}}"#;
    let (a, b) = body.split_at(40);
    let r = answer(&mut vm, id, "application/json", &[a, b]);
    let g = r.gen_ai.unwrap();
    assert_eq!(g.operation_name.as_deref(), Some("chat"));
    assert_eq!(
        (g.input_tokens, g.output_tokens, g.reasoning_tokens),
        (Some(12), Some(34), Some(5))
    );
    assert_eq!(g.finish_reasons, ["stop"]);
    assert_eq!(g.response_model.as_deref(), Some("llama-3-8b-instruct"));
    assert_eq!(g.response_id.as_deref(), Some("chatcmpl-9"));
    assert_eq!(g.time_to_first_chunk_ms, None, "a JSON answer comes whole");
    let logged = vm.stream(id).unwrap().access_log.clone().unwrap();
    let attr = |k: &str| String::from_utf8(logged[k].clone()).unwrap();
    assert_eq!(attr("wasm.gen_ai.usage.input_tokens"), "12");
    assert_eq!(attr("wasm.gen_ai.usage.output_tokens"), "34");
    assert_eq!(attr("wasm.gen_ai.request.model"), "llama-3");
    assert_eq!(attr("wasm.gen_ai.response.finish_reasons"), "stop");
    assert_eq!(attr("wasm.gen_ai.operation.name"), "chat");
    assert_eq!(
        metric(&vm, "vigil.gen_ai.input_tokens.model.llama-3"),
        Some(12)
    );
    assert_eq!(
        metric(&vm, "vigil.gen_ai.output_tokens.group.analysts"),
        Some(34)
    );
    assert_eq!(
        metric(&vm, "vigil.gen_ai.output_tokens.group.unlisted-group"),
        None,
        "only groups the policy names"
    );
    // Never content.
    assert!(!serde_json::to_string(&g).unwrap().contains("hello"));
}

#[test]
fn a_stream_split_anywhere_gives_the_same_usage() {
    let stream = "data: {\"id\":\"c-1\",\"model\":\"llama-3\",\"choices\":[{\"delta\":{\"content\":\"he\"}}]}\n\n\
        data: {\"id\":\"c-1\",\"choices\":[{\"delta\":{\"content\":\"llo\"},\"finish_reason\":\"length\"}]}\n\n\
        data: {\"id\":\"c-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n";
    for at in (1..stream.len()).step_by(17) {
        let mut vm = gateway();
        let id = chat(&mut vm, "/v1/chat/completions");
        let (a, b) = stream.split_at(at);
        let g = answer(&mut vm, id, "text/event-stream", &[a, b])
            .gen_ai
            .unwrap();
        assert_eq!(
            (g.input_tokens, g.output_tokens),
            (Some(3), Some(2)),
            "split at {at}"
        );
        assert_eq!(g.finish_reasons, ["length"], "split at {at}");
    }
}

#[test]
fn anthropic_and_ollama_answers_and_a_cut_stream() {
    let mut vm = gateway();
    let id = chat(&mut vm, "/v1/messages");
    let g = answer(&mut vm, id, "text/event-stream", &[
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude\",\"usage\":{\"input_tokens\":25,\"output_tokens\":1,\"cache_read_input_tokens\":7}}}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":15}}\n\n",
    ]).gen_ai.unwrap();
    assert_eq!(
        (g.input_tokens, g.output_tokens, g.cached_input_tokens),
        (Some(25), Some(15), Some(7))
    );
    assert_eq!(g.finish_reasons, ["end_turn"]);

    let id = chat(&mut vm, "/api/chat");
    let g = answer(&mut vm, id, "application/x-ndjson", &[
        "{\"model\":\"llama3\",\"message\":{\"content\":\"a\"},\"done\":false}\n",
        "{\"model\":\"llama3\",\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":26,\"eval_count\":290}\n",
    ]).gen_ai.unwrap();
    assert_eq!((g.input_tokens, g.output_tokens), (Some(26), Some(290)));

    let id = chat(&mut vm, "/v1/chat/completions");
    vm.response_headers(
        id,
        &pairs(&[(":status", "200"), ("content-type", "text/event-stream")]),
        false,
    )
    .unwrap();
    vm.response_body(id, b"data: {\"id\":\"c\",\"model\":\"llama-3\",\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n", false).unwrap();
    vm.abort_stream(id, "upstream_reset_after_response_started")
        .unwrap();
    let r: SessionRecord = serde_json::from_slice(
        &vm.stream(id).unwrap().access_log.clone().unwrap()["wasm.vigil_record"],
    )
    .unwrap();
    let g = r.gen_ai.unwrap();
    assert_eq!(g.finish_reasons, ["error"]);
    assert_eq!(g.response_model.as_deref(), Some("llama-3"));
    assert!(!r.complete);
}

#[test]
fn an_answer_without_usage_adds_nothing_to_the_record() {
    let mut vm = gateway();
    let id = chat(&mut vm, "/v1/chat/completions");
    let r = answer(&mut vm, id, "text/plain", &["just text"]);
    assert!(r.gen_ai.is_none());
    let raw = String::from_utf8(
        vm.stream(id).unwrap().access_log.clone().unwrap()["wasm.vigil_record"].clone(),
    )
    .unwrap();
    assert!(!raw.contains("gen_ai"));
}

#[test]
fn a_token_whose_groups_were_left_out_is_refused_not_taken_as_no_groups() {
    let mut vm = gateway();
    let overage = caller(json!({"_claim_names": {"groups": "src1"},
        "_claim_sources": {"src1": {"endpoint": "https://graph.microsoft.com/v1.0/users/x/getMemberObjects"}}}));
    let id = Request::post("/v1/chat/completions")
        .bearer(&overage)
        .chunks([r#"{"model":"llama-3","messages":[]}"#])
        .send(&mut vm);
    assert_eq!(status(&vm, id).as_deref(), Some("401"));
    let body = String::from_utf8(vm.stream(id).unwrap().response.sent_body.clone()).unwrap();
    assert!(body.contains("groups_overage"), "{body}");
    let r = finish(&mut vm, id);
    assert!(
        r.decision.reason.contains("too many groups"),
        "{}",
        r.decision.reason
    );
}

fn holding_gateway() -> Vm {
    let policy = json!({"id": "gw", "version": "1", "masking": {"entities": {}},
        "envoy": {"hold_request_headers": true}});
    Gateway::new(&policy)
        .at(NOW_S)
        .envoy(vigil_host::EnvoySettings {
            allow_on_headers_stop_iteration: true,
            ..Default::default()
        })
        .start()
}

const USAGE_EVENT: &str =
    "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":22}}\n\n";

fn streamed_answer(vm: &mut Vm, id: u32) -> (String, SessionRecord) {
    vm.response_headers(
        id,
        &pairs(&[
            (":status", "200"),
            ("content-type", "text/event-stream"),
            ("content-length", "999"),
        ]),
        false,
    )
    .unwrap();
    let stream = format!(
        "data: {{\"id\":\"c\",\"model\":\"llama-3\",\"choices\":[{{\"delta\":{{\"content\":\"hi\"}},\"finish_reason\":null}}]}}\n\n\
         data: {{\"id\":\"c\",\"choices\":[{{\"delta\":{{}},\"finish_reason\":\"stop\"}}]}}\n\n{USAGE_EVENT}data: [DONE]\n\n"
    );
    let (a, b) = stream.split_at(stream.len() - 40);
    vm.response_body(id, a.as_bytes(), false).unwrap();
    vm.response_body(id, b.as_bytes(), true).unwrap();
    vm.complete_stream(id).unwrap();
    let s = vm.stream(id).unwrap();
    let client = String::from_utf8(s.response.sent_body.clone()).unwrap();
    let r = serde_json::from_slice(&s.access_log.clone().unwrap()["wasm.vigil_record"]).unwrap();
    (client, r)
}

#[test]
fn a_stream_the_client_did_not_ask_usage_for_is_asked_for_it_and_the_client_sees_what_it_asked_for()
{
    let mut vm = holding_gateway();
    let id = Request::post("/v1/chat/completions")
        .chunks([
            r#"{"model":"llama-3","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
        ])
        .send(&mut vm);
    let s = vm.stream(id).unwrap();
    let upstream: Value = serde_json::from_slice(&s.request.sent_body).unwrap();
    assert_eq!(
        upstream["stream_options"]["include_usage"], true,
        "Vigil asked"
    );
    let sent = s.request.sent_headers.as_ref().unwrap();
    assert!(!sent.iter().any(|(k, _)| k == "content-length"), "{sent:?}");
    let (client, r) = streamed_answer(&mut vm, id);
    assert!(
        !client.contains("\"usage\""),
        "the client did not ask: {client}"
    );
    assert!(client.contains("finish_reason\":\"stop") && client.ends_with("data: [DONE]\n\n"));
    let g = r.gen_ai.unwrap();
    assert_eq!((g.input_tokens, g.output_tokens), (Some(11), Some(22)));
    assert!(
        g.stream_usage_added,
        "the record says Vigil changed the request"
    );
    let client_headers = vm
        .stream(id)
        .unwrap()
        .response
        .sent_headers
        .clone()
        .unwrap();
    assert!(!client_headers.iter().any(|(k, _)| k == "content-length"));
}

#[test]
fn a_client_that_asked_for_usage_gets_it_and_its_request_is_untouched() {
    let mut vm = holding_gateway();
    let body = r#"{"model":"llama-3","stream":true,"stream_options":{"include_usage":true},"messages":[]}"#;
    let id = Request::post("/v1/chat/completions")
        .chunks([body])
        .send(&mut vm);
    assert_eq!(vm.stream(id).unwrap().request.sent_body, body.as_bytes());
    let (client, r) = streamed_answer(&mut vm, id);
    assert!(client.contains(USAGE_EVENT.trim_end()), "{client}");
    let g = r.gen_ai.unwrap();
    assert_eq!(g.input_tokens, Some(11));
    assert!(!g.stream_usage_added);
    // Not streamed, or turned off in the policy: untouched too.
    let plain = r#"{"model":"llama-3","messages":[]}"#;
    let id = Request::post("/v1/chat/completions")
        .chunks([plain])
        .send(&mut vm);
    assert_eq!(vm.stream(id).unwrap().request.sent_body, plain.as_bytes());
}
