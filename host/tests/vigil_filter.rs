//! vigil.wasm itself, through the host: configuration, logging, and session records.

mod common;
use common::*;
use vigil_core::record::{SessionRecord, GENESIS_HASH};
use vigil_host::{HostError, Vm, VmOptions, TEST_RECORD_KEY};

fn vigil(config: &str) -> Result<Vm, HostError> {
    Vm::start(
        vigil_plugin(),
        VmOptions {
            plugin_config: config.as_bytes().to_vec(),
            ..VmOptions::with_record_key()
        },
    )
}

fn chat_request() -> Vec<(String, String)> {
    pairs(&[
        (":method", "POST"),
        (":path", "/v1/chat/completions"),
        (":authority", "models"),
        ("x-request-id", "req-7"),
    ])
}

/// Runs one complete exchange and returns the record the access log saw.
fn exchange(vm: &mut Vm, body: &[&str], response: &[&str]) -> SessionRecord {
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &chat_request(), body.is_empty())
        .unwrap();
    for (i, chunk) in body.iter().enumerate() {
        vm.request_body(id, chunk.as_bytes(), i + 1 == body.len())
            .unwrap();
    }
    vm.response_headers(id, &pairs(&[(":status", "200")]), response.is_empty())
        .unwrap();
    for (i, chunk) in response.iter().enumerate() {
        vm.response_body(id, chunk.as_bytes(), i + 1 == response.len())
            .unwrap();
    }
    vm.complete_stream(id).unwrap();
    let logged = vm.stream(id).unwrap().access_log.clone().unwrap();
    serde_json::from_slice(
        logged
            .get("wasm.vigil_record")
            .expect("record in the access log's filter state"),
    )
    .unwrap()
}

#[test]
fn the_vm_logs_version_and_git_hash_at_start() {
    let vm = vigil("").unwrap();
    let first = &vm.logs()[0].message;
    assert!(
        first.starts_with(&format!("#1 vigil {} (git ", env!("CARGO_PKG_VERSION"))),
        "{first}"
    );
    assert!(!first.contains("(git )"), "{first}");
}

#[test]
fn an_empty_configuration_uses_the_embedded_default_policy() {
    let vm = vigil("   ").unwrap();
    assert!(vm.logs().iter().any(|l| l
        .message
        .starts_with("#1 on_configure: embedded default policy vigil-default version 1")));
}

#[test]
fn invalid_json_stops_the_plugin_with_one_line_naming_the_position() {
    let err = vigil("{\"id\": \"p\",").err().unwrap();
    let HostError::Rejected {
        function,
        last_logs,
    } = err
    else {
        panic!("expected a refusal")
    };
    assert_eq!(function, "proxy_on_configure");
    assert_eq!(last_logs.last().unwrap().message, "#1 on_configure: invalid plugin configuration: $: invalid JSON at line 1 column 11: EOF while parsing a value");
}

#[test]
fn unknown_fields_and_bad_values_stop_the_plugin_naming_path_and_value() {
    let err =
        vigil(r#"{"id": "p", "version": "1", "record": {"property": "bad name!"}, "rulez": []}"#)
            .err()
            .unwrap();
    let HostError::Rejected { last_logs, .. } = err else {
        panic!("expected a refusal")
    };
    assert_eq!(
        last_logs.last().unwrap().message,
        "#1 on_configure: invalid plugin configuration: $.record.property: must be letters, digits, '_' or '.', found \"bad name!\"; $.rulez: unknown field \"rulez\" (expected one of: approval, default_action, description, envoy, id, identity, masking, max_request_body_bytes, models, non_json_body, record, rules, token_id_prompts, upstream_credential, version)"
    );
}

#[test]
fn every_log_line_starts_with_the_context_id() {
    let mut vm = vigil("").unwrap();
    exchange(&mut vm, &["{}"], &["ok"]);
    for line in vm.logs() {
        let id = line
            .message
            .strip_prefix('#')
            .and_then(|m| m.split_once(' '))
            .map(|(id, _)| id);
        assert!(id.is_some_and(|id| id.parse::<u32>().is_ok()), "{line:?}");
    }
}

#[test]
fn each_request_gets_a_record_chained_to_the_previous_one() {
    let mut vm = vigil("").unwrap();
    let records: Vec<SessionRecord> = (0..3)
        .map(|_| exchange(&mut vm, &["{\"model\":", "\"m\"}"], &["data: x\n\n"]))
        .collect();
    assert_eq!(
        records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(records[0].prev_hash, GENESIS_HASH);
    for pair in records.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
    for r in &records {
        assert_eq!(
            r.hash,
            r.compute_hash(),
            "the hash covers the canonical record"
        );
        assert_eq!(r.vm_id, records[0].vm_id);
        assert!(r.complete);
    }
}

#[test]
fn the_record_describes_the_exchange_without_raw_bodies() {
    let mut vm = vigil("").unwrap();
    vm.set_time(vigil_core::time::parse_rfc3339("2026-11-22T10:00:00Z").unwrap());
    let r = exchange(&mut vm, &["{\"prompt\":\"SSN 078-05-1123\"}"], &["fine"]);
    assert_eq!(r.v, 1);
    assert_eq!(r.request_id, "req-7");
    assert_eq!(
        (
            r.route.method.as_str(),
            r.route.path.as_str(),
            r.route.authority.as_str()
        ),
        ("POST", "/v1/chat/completions", "models")
    );
    assert_eq!(r.client_address.as_deref(), Some("127.0.0.1:51000"));
    assert_eq!(r.started_at, "2026-11-22T10:00:00.000Z");
    // The record keeps the body masked, and its length and digest are of the masked body
    // (a digest of a short raw body would let the SSN be found by trying them all).
    assert_eq!(r.request.body, "{\"prompt\":\"SSN [SSN]\"}");
    assert_eq!(r.request.bytes, 22);
    assert_eq!(
        r.request.sha256,
        vigil_core::digest::sha256_hex(b"{\"prompt\":\"SSN [SSN]\"}")
    );
    assert_eq!(r.masked.get("us_ssn"), Some(&1));
    assert_eq!(r.response.status, Some(200));
    assert_eq!(r.policy.id, "vigil-default");
    assert_eq!(r.decision.action, "allow");
    let text = serde_json::to_string(&r).unwrap();
    assert!(
        !text.contains("078-05-1123"),
        "raw bodies never reach a record"
    );
}

#[test]
fn a_headers_only_response_seals_the_record_at_response_headers() {
    let mut vm = vigil("").unwrap();
    let r = exchange(&mut vm, &[], &[]);
    assert!(r.complete);
    assert_eq!(r.response.bytes, 0);
}

#[test]
fn a_client_that_goes_away_gets_an_incomplete_record_on_its_own_log_line() {
    let mut vm = vigil("").unwrap();
    let gone = vm.create_stream().unwrap();
    vm.request_headers(gone, &chat_request(), true).unwrap();
    vm.response_headers(gone, &pairs(&[(":status", "200")]), false)
        .unwrap();
    vm.response_body(gone, b"data: partial\n\n", false).unwrap();
    vm.abort_stream(gone, "downstream_remote_disconnect")
        .unwrap();
    // on_log runs before the access log (Envoy 1.32+), so this line carries the record.
    let logged = vm.stream(gone).unwrap().access_log.clone().unwrap();
    let r: SessionRecord =
        serde_json::from_slice(logged.get("wasm.vigil_record").unwrap()).unwrap();
    assert!(!logged.contains_key("wasm.vigil_record_late"));
    assert!(!r.complete);
    assert_eq!(r.response.status, Some(200));
    assert_eq!(r.response.body, "data: partial\n\n");
    assert_eq!(
        r.response.details.as_deref(),
        Some("downstream_remote_disconnect")
    );

    // The chain goes on from it: the next exchange's record names it as previous.
    let next = vm.create_stream().unwrap();
    vm.request_headers(next, &chat_request(), true).unwrap();
    let own = finish(&mut vm, next);
    assert_eq!((r.seq, own.seq), (1, 2));
    assert_eq!(own.prev_hash, r.hash);
}

#[test]
fn the_record_property_name_comes_from_the_configuration() {
    let mut vm =
        vigil(r#"{"id": "gw", "version": "7", "record": {"property": "audit.session"}}"#).unwrap();
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &chat_request(), true).unwrap();
    vm.response_headers(id, &pairs(&[(":status", "204")]), true)
        .unwrap();
    vm.complete_stream(id).unwrap();
    let logged = vm.stream(id).unwrap().access_log.clone().unwrap();
    let r: SessionRecord =
        serde_json::from_slice(logged.get("wasm.audit.session").unwrap()).unwrap();
    assert_eq!(
        (
            r.policy.id.as_str(),
            r.policy.version.as_str(),
            r.response.status
        ),
        ("gw", "7", Some(204))
    );
}

#[test]
fn workers_with_their_own_randomness_keep_separate_chains() {
    let start = |seed| {
        Vm::start(
            vigil_plugin(),
            VmOptions {
                random_seed: seed,
                ..VmOptions::with_record_key()
            },
        )
        .unwrap()
    };
    let (mut a, mut b) = (start(1), start(2));
    let (ra, rb) = (exchange(&mut a, &[], &["x"]), exchange(&mut b, &[], &["x"]));
    assert_ne!(ra.vm_id, rb.vm_id);
    assert!(ra.vm_id.starts_with("vigil#"));
    assert_eq!((ra.seq, rb.seq), (1, 1));
}

#[test]
fn traffic_passes_through_untouched_when_the_policy_masks_nothing() {
    let mut vm = vigil(r#"{"id": "p", "version": "1", "masking": {"entities": {}}}"#).unwrap();
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &chat_request(), false).unwrap();
    vm.request_body(id, b"hello", true).unwrap();
    vm.response_headers(
        id,
        &pairs(&[(":status", "200"), ("content-length", "2")]),
        false,
    )
    .unwrap();
    vm.response_body(id, b"ok", true).unwrap();
    let s = vm.stream(id).unwrap();
    assert_eq!(s.request.sent_headers.as_ref().unwrap(), &chat_request());
    assert_eq!(s.request.sent_body, b"hello");
    assert_eq!(
        s.response.sent_headers.as_ref().unwrap(),
        &pairs(&[(":status", "200"), ("content-length", "2")])
    );
    assert_eq!(s.response.sent_body, b"ok");
}

#[test]
fn the_filter_follows_the_hosts_log_level() {
    let mut vm = Vm::start(
        vigil_plugin(),
        VmOptions {
            log_level: vigil_host::abi::LogLevel::Info,
            ..VmOptions::with_record_key()
        },
    )
    .unwrap();
    exchange(&mut vm, &["{}"], &["ok"]);
    assert!(
        vm.logs()
            .iter()
            .all(|l| l.level >= vigil_host::abi::LogLevel::Info),
        "{:?}",
        vm.logs()
    );
    assert!(vm.logs().iter().any(|l| l.message.contains("vigil 0.1.0")));
}

const RSA_JWKS: &str = r#"{"keys":[{"kty":"RSA","alg":"RS256","use":"sig","kid":"62a93512c9ee4c7f8067b5a216dade2763d32a47","n":"0YWnm_eplO9BFtXszMRQNL5UtZ8HJdTH2jK7vjs4XdLkPW7YBkkm_2xNgcaVpkW0VT2l4mU3KftR-6s3Oa5Rnz5BrWEUkCTVVolR7VYksfqIB2I_x5yZHdOiomMTcm3DheUUCgbJRv5OKRnNqszA4xHn3tA3Ry8VO3X7BgKZYAUh9fyZTFLlkeAh0-bLK5zvqCmKW5QgDIXSxUTJxPjZCgfx1vmAfGqaJb-nvmrORXQ6L284c73DUL7mnt6wj3H6tVqPKA27j56N0TB1Hfx4ja6Slr8S4EB3F1luYhATa1PKUSH8mYDW11HolzZmTQpRoLV8ZoHbHEaTfqX_aYahIw","e":"AQAB"}]}"#;

fn identity_config(extra: &str) -> String {
    format!(
        r#"{{"id": "gw", "version": "1", "identity": {{"providers": [{{"name": "corp", "jwks": {RSA_JWKS}}}]}}{extra}}}"#
    )
}

#[test]
fn a_request_without_a_token_gets_401_with_a_plain_bearer_challenge_and_a_record() {
    let mut vm = vigil(&identity_config("")).unwrap();
    let id = vm.create_stream().unwrap();
    vm.request_headers(id, &chat_request(), true).unwrap();
    vm.complete_stream(id).unwrap();
    let s = vm.stream(id).unwrap();
    assert!(
        s.request.sent_headers.is_none(),
        "nothing reaches the model server"
    );
    let headers = s.response.sent_headers.clone().unwrap();
    assert!(headers.contains(&(":status".into(), "401".into())));
    assert!(headers.contains(&("www-authenticate".into(), "Bearer realm=\"vigil\"".into())));
    let body: serde_json::Value = serde_json::from_slice(&s.response.sent_body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"error": {"code": "token_missing", "message": "no bearer token in the authorization header", "request_id": "req-7"}})
    );
    let r: SessionRecord = serde_json::from_slice(
        s.access_log
            .as_ref()
            .unwrap()
            .get("wasm.vigil_record")
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (
            r.decision.action.as_str(),
            r.outcome.as_str(),
            r.response.status
        ),
        ("block", "local_response", Some(401))
    );
    assert_eq!(
        r.decision.reason,
        "token_missing: no bearer token in the authorization header"
    );
}

#[test]
fn a_garbage_token_is_refused_without_being_echoed() {
    let mut vm = vigil(&identity_config("")).unwrap();
    let id = vm.create_stream().unwrap();
    let mut req = chat_request();
    req.push((
        "authorization".into(),
        "Bearer not.a-valid.token-SECRETISH".into(),
    ));
    vm.request_headers(id, &req, true).unwrap();
    let s = vm.stream(id).unwrap();
    let body = String::from_utf8(s.response.sent_body.clone()).unwrap();
    assert!(body.contains("\"code\":\"token_malformed\""), "{body}");
    assert!(!body.contains("SECRETISH"));
    let challenge = s
        .response
        .sent_headers
        .as_ref()
        .unwrap()
        .iter()
        .find(|(k, _)| k == "www-authenticate")
        .unwrap()
        .1
        .clone();
    assert!(
        challenge
            .starts_with("Bearer realm=\"vigil\", error=\"invalid_token\", error_description=\""),
        "{challenge}"
    );
}

#[test]
fn a_missing_credential_variable_stops_the_plugin_without_naming_a_value() {
    let config = identity_config(r#", "upstream_credential": {"env": "VIGIL_UPSTREAM_TOKEN"}"#);
    let err = vigil(&config).err().unwrap();
    let HostError::Rejected { last_logs, .. } = err else {
        panic!("expected a refusal")
    };
    assert_eq!(
        last_logs.last().unwrap().message,
        "#1 on_configure: cannot start with plugin configuration: $.upstream_credential.env: the VM environment has no VIGIL_UPSTREAM_TOKEN (hand it to the VM with vm_config.environment_variables)"
    );
}

#[test]
fn a_missing_or_short_record_key_stops_the_plugin_without_printing_the_key() {
    let start = |env: Vec<(String, String)>| {
        let err = Vm::start(
            vigil_plugin(),
            VmOptions {
                env,
                ..VmOptions::default()
            },
        )
        .err()
        .unwrap();
        let HostError::Rejected { last_logs, .. } = err else {
            panic!("expected a refusal")
        };
        last_logs.last().unwrap().message.clone()
    };
    assert_eq!(
        start(vec![]),
        "#1 on_configure: cannot start with embedded default policy: $.record.key_env: the VM environment has no VIGIL_RECORD_KEY (the key session records are signed with; hand it to the VM with vm_config.environment_variables)"
    );
    let short = start(vec![("VIGIL_RECORD_KEY".into(), "hunter2-hunter2".into())]);
    assert_eq!(
        short,
        "#1 on_configure: cannot start with embedded default policy: $.record.key_env: VIGIL_RECORD_KEY is 15 bytes long; a record key needs at least 32 (e.g. `openssl rand -hex 32`)"
    );
}

#[test]
fn records_are_signed_with_the_key_from_the_vm_environment() {
    let mut vm = vigil("").unwrap();
    let r = exchange(&mut vm, &["{}"], &["ok"]);
    let key = vigil_core::record::RecordKey::new(TEST_RECORD_KEY.1.as_bytes()).unwrap();
    assert_eq!(r.key_id, key.id());
    let value = serde_json::to_value(&r).unwrap();
    assert!(vigil_core::record::check::check(&value, &[key]).is_ok());
}

#[test]
fn the_credential_is_injected_even_without_identity_and_never_logged() {
    let config = r#"{"id": "gw", "version": "1", "upstream_credential": {"env": "MODEL_KEY", "header": "x-api-key", "prefix": ""}}"#;
    let mut vm = Vm::start(
        vigil_plugin(),
        VmOptions {
            plugin_config: config.as_bytes().to_vec(),
            env: vec![
                ("MODEL_KEY".into(), "k-123".into()),
                (TEST_RECORD_KEY.0.into(), TEST_RECORD_KEY.1.into()),
            ],
            ..VmOptions::with_record_key()
        },
    )
    .unwrap();
    let id = vm.create_stream().unwrap();
    let mut req = chat_request();
    req.push(("x-api-key".into(), "caller-supplied".into()));
    vm.request_headers(id, &req, true).unwrap();
    let sent = vm.stream(id).unwrap().request.sent_headers.clone().unwrap();
    assert_eq!(
        sent.iter()
            .filter(|(k, _)| k == "x-api-key")
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>(),
        vec!["k-123"],
        "the caller's value is replaced"
    );
    assert!(vm.logs().iter().all(|l| !l.message.contains("k-123")));
}

#[test]
fn a_remote_key_set_behind_an_unknown_cluster_fails_requests_closed() {
    let config = r#"{"id": "gw", "version": "1", "identity": {"providers": [{"name": "corp", "remote_jwks": {"cluster": "idp", "uri": "https://idp/jwks"}}]}}"#;
    let mut vm = vigil(config).unwrap();
    let id = vm.create_stream().unwrap();
    let mut req = chat_request();
    req.push((
        "authorization".into(),
        "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln".into(),
    ));
    vm.request_headers(id, &req, true).unwrap();
    assert!(
        vm.stream(id).unwrap().response.sent_headers.is_none(),
        "held for the fetch"
    );
    vm.advance(20_000_000).unwrap();
    let s = vm.stream(id).unwrap();
    assert_eq!(s.response.sent_headers.as_ref().unwrap()[0].1, "401");
    assert!(String::from_utf8_lossy(&s.response.sent_body).contains("keys_unavailable"));
    assert!(vm.logs().iter().any(|l| l
        .message
        .contains("cannot fetch key set of provider corp: cluster idp refused the call")));
}

#[test]
fn policy_warnings_are_logged_at_start_without_stopping_the_plugin() {
    let config = r#"{"id":"p","version":"1","rules":[{"id":"a","action":{"type":"allow"}},{"id":"b","when":{"methods":["GET"]},"action":{"type":"block"}}]}"#;
    let vm = vigil(config).unwrap();
    assert!(vm.logs().iter().any(|l| l.level == vigil_host::abi::LogLevel::Warn
        && l.message == "#1 on_configure: policy warning: $.rules[1]: rule \"b\" can never match: rule \"a\" ($.rules[0]) comes first and matches every request this one does"));
}
