//! Host-side cost per request through vigil.wasm, as ratios to baselines measured in the
//! same run (scenarios interleave in rounds, so drift on a shared machine hits all alike):
//!
//! - pass-through: vigil.wasm with no identity configured and masking off, against an empty
//!   proxy-wasm module; the embedded default policy (masking every entity) against it;
//! - identity: a valid RS256 and a valid ES256 token, with the verified-token cache warm and
//!   with it off (every request verifies the signature), against the pass-through request;
//! - the same verification natively (vigil-core on this machine), against the wasm cost;
//! - the session record: the pass-through request with the record keeping no body copies
//!   (record.max_body_bytes 0), and the record's whole construction (observations, canonical
//!   form, SHA-256, HMAC, JSON) natively, against the pass-through request;
//! - sealed payloads (`record.seal_to`): the record's cost with and without its payload
//!   sealed, natively, and vigil.wasm's size (against the baseline's when one is given);
//! - signed checkpoints (`record.checkpoint`): a checkpoint's cost in vigil.wasm (a checkpoint
//!   due after every record against none due), amortised at every_records 1000, natively.
//!
//! - with VIGIL_BASELINE_WASM set to another build of vigil.wasm (scripts/bench-baseline REV),
//!   the same scenarios through both builds, interleaved, and the ratios this / baseline.
//!
//! Tokens and keys are read from testdata/conformance/jwt (jvl-rs256-kid-ok, rfc7515-a3-es256-ok).
//! Usage: scripts/bench [REQUESTS]   (default 20000 for cheap scenarios; cold ones run a tenth)

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use vigil_core::identity::provider::{FromHeader, KeySource, Provider};
use vigil_core::identity::{jwks::KeySet, token};
use vigil_host::abi::LogLevel;
use vigil_host::{artifacts, Plugin, Vm, VmOptions};

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

struct Scenario {
    name: &'static str,
    vm: Vm,
    request: Vec<(String, String)>,
    requests: usize,
    times: Vec<Duration>,
}

const BODY: &[u8] = br#"{"model":"llama-3.1-8b-instruct","messages":[{"role":"user","content":"Summarise our overdraft policy in one line."}]}"#;
const ANSWER: &[u8] = br#"{"choices":[{"message":{"role":"assistant","content":"Overdrafts over $50 need approval."}}]}"#;

/// One whole exchange; returns the host-side time it took.
fn run_one(vm: &mut Vm, request: &[(String, String)]) -> Duration {
    let start = Instant::now();
    let id = vm.create_stream().expect("create stream");
    vm.request_headers(id, request, false)
        .expect("request headers");
    vm.request_body(id, BODY, true).expect("request body");
    let forwarded = vm.stream(id).is_some_and(|s| s.request.sent_end);
    assert!(
        forwarded,
        "the bench request was not forwarded: {:?}",
        vm.logs().last()
    );
    vm.response_headers(
        id,
        &pairs(&[(":status", "200"), ("content-type", "application/json")]),
        false,
    )
    .expect("response headers");
    vm.response_body(id, ANSWER, true).expect("response body");
    vm.complete_stream(id).expect("complete");
    let took = start.elapsed();
    vm.remove_stream(id);
    took
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn vector(name: &str) -> Value {
    let path = artifacts::workspace_root()
        .join("testdata/conformance/jwt")
        .join(format!("{name}.json"));
    serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .expect("vector JSON")
}

fn provider_config(v: &Value, cache_entries: u64) -> Value {
    json!({"id": "bench", "version": "1", "masking": {"entities": {}}, "identity": {"token_cache_entries": cache_entries, "providers": [{
        "name": "corp", "issuer": v["policy"]["issuer"], "algorithms": v["policy"]["allowed_algs"], "jwks": v["jwks"]
    }]}})
}

/// A policy with `n` rules that look only at the request line and never match, so every
/// request is evaluated against all of them and allowed by the default.
fn rules_config(n: usize) -> Value {
    let rules: Vec<Value> = (0..n)
        .map(|i| json!({"id": format!("r{i}"), "when": {"methods": ["PUT", "DELETE"], "path": {"prefix": format!("/never/{i}/")}}, "action": {"type": "block"}}))
        .collect();
    json!({"id": "bench-rules", "version": "1", "masking": {"entities": {}}, "rules": rules})
}

/// A prompt rule that does not match the bench request: with `require_approval`, the policy
/// names an approval service (a cluster the bench VM does not have, never called).
fn prompt_rule_config(approval: bool) -> Value {
    let action = if approval {
        json!({"type": "require_approval", "approvers": ["risk-officers"]})
    } else {
        json!({"type": "block"})
    };
    let mut c = json!({"id": "bench-approval", "version": "1", "masking": {"entities": {}},
        "rules": [{"id": "wire-transfers", "when": {"prompt": {"matches": ["(?i)wire transfer"]}}, "action": action}]});
    if approval {
        c["approval"] = json!({"cluster": "approvals"});
    }
    c
}

fn request(token: Option<&str>) -> Vec<(String, String)> {
    let mut r = pairs(&[
        (":method", "POST"),
        (":path", "/v1/chat/completions"),
        (":authority", "models.bank.internal"),
        ("content-type", "application/json"),
        ("x-request-id", "bench"),
    ]);
    if let Some(t) = token {
        r.push(("authorization".into(), format!("Bearer {t}")));
    }
    r
}

/// The record's cost inside vigil.wasm: the pass-through exchange with its answer ending in an
/// empty last chunk. The filter seals and writes the record in that last call; an empty
/// chunk that is not the last, sent just before, is the same call without it. Returns the
/// medians of (last call, empty call before it).
fn sealing_call(vm: &mut Vm, request: &[(String, String)], rounds: usize) -> (f64, f64) {
    let mut last = Vec::with_capacity(rounds);
    let mut before = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let id = vm.create_stream().expect("create stream");
        vm.request_headers(id, request, false)
            .expect("request headers");
        vm.request_body(id, BODY, true).expect("request body");
        vm.response_headers(
            id,
            &pairs(&[(":status", "200"), ("content-type", "application/json")]),
            false,
        )
        .expect("response headers");
        vm.response_body(id, ANSWER, false).expect("response body");
        let t = Instant::now();
        vm.response_body(id, b"", false).expect("empty chunk");
        before.push(t.elapsed());
        let t = Instant::now();
        vm.response_body(id, b"", true).expect("last chunk");
        last.push(t.elapsed());
        vm.complete_stream(id).expect("complete");
        vm.remove_stream(id);
    }
    last.sort();
    before.sort();
    (micros(last[rounds / 2]), micros(before[rounds / 2]))
}

/// Native construction of the pass-through request's record, the code the filter runs at the
/// end of an exchange: median time per record.
fn native_record(rounds: usize) -> Duration {
    use vigil_core::exchange::ExchangeLog;
    use vigil_core::record::{RecordChain, RecordKey, Route};
    let key = RecordKey::new(vigil_host::TEST_RECORD_KEY.1.as_bytes()).expect("key");
    let config =
        vigil_core::PluginConfig::parse(br#"{"id": "bench", "version": "1"}"#).expect("config");
    let mut chain = RecordChain::default();
    let mut times: Vec<Duration> = (0..rounds)
        .map(|i| {
            let start = Instant::now();
            let mut log = ExchangeLog::new(
                1_000_000,
                Route {
                    method: "POST".into(),
                    path: "/v1/chat/completions".into(),
                    authority: "models".into(),
                },
                format!("bench-{i}"),
                Some("10.0.0.1:5000".into()),
            );
            log.request_chunk(BODY);
            log.response_status(Some("200"));
            log.response_chunk(ANSWER);
            let sealed = log.seal(2_000_000, true, "vigil#0", &config, &mut chain, &key);
            std::hint::black_box(sealed);
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// Native verification of a vector's token: median time per verify.
fn native_verify(v: &Value, rounds: usize) -> Duration {
    let keys = KeySet::parse(&v["jwks"]).expect("key set");
    let provider = Provider {
        name: "corp".into(),
        issuer: v["policy"]["issuer"].as_str().map(str::to_string),
        audiences: vec![],
        algorithms: v["policy"]["allowed_algs"]
            .as_array()
            .expect("algs")
            .iter()
            .map(|a| a.as_str().unwrap_or_default().to_string())
            .collect(),
        keys: KeySource::Inline(keys.clone()),
        clock_skew_s: 60,
        require_exp: false,
        groups_claim: "groups".into(),
        from_header: FromHeader {
            name: "authorization".into(),
            prefix: "Bearer ".into(),
        },
        max_token_bytes: 8192,
    };
    let now = v["policy"]["now"].as_i64().expect("now");
    let token = v["token"].as_str().expect("token");
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            token::verify(token, &provider, &keys, now).expect("the vector verifies natively");
            start.elapsed()
        })
        .collect();
    times.sort();
    percentile(&times, 0.5)
}

fn main() {
    let requests: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let vigil_path = artifacts::wasm("vigil_filter").unwrap_or_else(|e| panic!("{e}"));
    let vigil = Plugin::load(&vigil_path).unwrap_or_else(|e| panic!("{e}"));
    let empty = Plugin::load(&artifacts::workspace_root().join("host/testdata/empty.wat"))
        .unwrap_or_else(|e| panic!("{e}"));
    let (rs, es) = (vector("jvl-rs256-kid-ok"), vector("rfc7515-a3-es256-ok"));
    // Envoy's default log level: debug lines are not sent.
    let start = |plugin: &Plugin, config: Option<&Value>, now_s: u64| {
        let options = VmOptions {
            log_level: LogLevel::Info,
            plugin_config: config
                .map(|c| c.to_string().into_bytes())
                .unwrap_or_default(),
            now_nanos: now_s * 1_000_000_000,
            ..VmOptions::with_record_key()
        };
        Vm::start(plugin, options).unwrap_or_else(|e| panic!("{e}"))
    };
    let (rs_now, es_now) = (
        rs["policy"]["now"].as_u64().unwrap_or(0),
        es["policy"]["now"].as_u64().unwrap_or(0),
    );
    let cold = (requests / 10).max(200);
    let mut scenarios = vec![
        Scenario {
            name: "empty proxy-wasm module",
            vm: start(&empty, None, 0),
            request: request(None),
            requests,
            times: vec![],
        },
        Scenario {
            name: "vigil pass-through",
            vm: start(
                &vigil,
                Some(&json!({"id": "bench", "version": "1", "masking": {"entities": {}}})),
                0,
            ),
            request: request(None),
            requests,
            times: vec![],
        },
        Scenario {
            name: "pass-through, no body copy",
            vm: start(
                &vigil,
                Some(
                    &json!({"id": "bench", "version": "1", "masking": {"entities": {}}, "record": {"max_body_bytes": 0}}),
                ),
                0,
            ),
            request: request(None),
            requests,
            times: vec![],
        },
        Scenario {
            name: "default policy (masking)",
            vm: start(&vigil, None, 0),
            request: request(None),
            requests,
            times: vec![],
        },
        Scenario {
            name: "RS256, token cache warm",
            vm: start(&vigil, Some(&provider_config(&rs, 1024)), rs_now),
            request: request(rs["token"].as_str()),
            requests,
            times: vec![],
        },
        Scenario {
            name: "RS256, token cache off",
            vm: start(&vigil, Some(&provider_config(&rs, 0)), rs_now),
            request: request(rs["token"].as_str()),
            requests: cold,
            times: vec![],
        },
        Scenario {
            name: "ES256, token cache warm",
            vm: start(&vigil, Some(&provider_config(&es, 1024)), es_now),
            request: request(es["token"].as_str()),
            requests,
            times: vec![],
        },
        Scenario {
            name: "ES256, token cache off",
            vm: start(&vigil, Some(&provider_config(&es, 0)), es_now),
            request: request(es["token"].as_str()),
            requests: cold,
            times: vec![],
        },
        Scenario {
            name: "1 rule",
            vm: start(&vigil, Some(&rules_config(1)), 0),
            request: request(None),
            requests,
            times: vec![],
        },
        Scenario {
            name: "50 rules",
            vm: start(&vigil, Some(&rules_config(50)), 0),
            request: request(None),
            requests,
            times: vec![],
        },
        Scenario {
            name: "500 rules",
            vm: start(&vigil, Some(&rules_config(500)), 0),
            request: request(None),
            requests,
            times: vec![],
        },
        Scenario {
            name: "prompt rule (block)",
            vm: start(&vigil, Some(&prompt_rule_config(false)), 0),
            request: request(None),
            requests,
            times: vec![],
        },
        Scenario {
            name: "prompt rule (approval)",
            vm: start(&vigil, Some(&prompt_rule_config(true)), 0),
            request: request(None),
            requests,
            times: vec![],
        },
    ];
    // Before vs after in the same run: another build of vigil.wasm (scripts/bench-baseline REV
    // writes one), on the scenarios a change to the decision path must not slow down.
    let baseline = std::env::var("VIGIL_BASELINE_WASM").ok().map(|p| {
        let plugin = Plugin::load(std::path::Path::new(&p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        (p, plugin)
    });
    let compared = [
        (1usize, "pass-through"),
        (3, "default policy (masking)"),
        (4, "RS256 warm"),
        (10, "500 rules"),
        (12, "prompt rule (approval)"),
    ];
    if let Some((_, old)) = &baseline {
        let configs = [
            (
                json!({"id": "bench", "version": "1", "masking": {"entities": {}}}),
                0,
                None,
            ),
            (Value::Null, 0, None),
            (provider_config(&rs, 1024), rs_now, rs["token"].as_str()),
            (rules_config(500), 0, None),
            (prompt_rule_config(true), 0, None),
        ];
        for ((_, name), (config, now, token)) in compared.iter().zip(configs) {
            let config = (!config.is_null()).then_some(config);
            scenarios.push(Scenario {
                name,
                vm: start(old, config.as_ref(), now),
                request: request(token),
                requests,
                times: vec![],
            });
        }
    }
    for s in scenarios.iter_mut() {
        for _ in 0..(s.requests / 20).max(50) {
            run_one(&mut s.vm, &s.request);
        }
    }
    const ROUNDS: usize = 20;
    for _ in 0..ROUNDS {
        for s in scenarios.iter_mut() {
            for _ in 0..s.requests / ROUNDS {
                let t = run_one(&mut s.vm, &s.request);
                s.times.push(t);
            }
        }
    }
    for s in scenarios.iter_mut() {
        s.times.sort();
    }
    let median = |i: usize| micros(percentile(&scenarios[i].times, 0.5));
    let p99 = |i: usize| micros(percentile(&scenarios[i].times, 0.99));
    let size = std::fs::metadata(&vigil_path).map(|m| m.len()).unwrap_or(0);
    println!(
        "vigil.wasm size: {:.1} KiB ({})",
        size as f64 / 1024.0,
        vigil_path.display()
    );
    println!("host-side time per request (headers + 1 body chunk each way + log), interleaved in {ROUNDS} rounds:");
    for s in &scenarios {
        println!(
            "  {:<26} {:>6} requests   median {:>9.2} us   p99 {:>9.2} us",
            s.name,
            s.times.len(),
            micros(percentile(&s.times, 0.5)),
            micros(percentile(&s.times, 0.99))
        );
    }
    println!("ratios:");
    println!(
        "  pass-through / empty module         median {:>7.2}x   p99 {:>7.2}x",
        median(1) / median(0),
        p99(1) / p99(0)
    );
    println!(
        "  record without body copies / pass-through  median {:>7.2}x   p99 {:>7.2}x",
        median(2) / median(1),
        p99(2) / p99(1)
    );
    println!(
        "  masking default / pass-through      median {:>7.2}x   p99 {:>7.2}x",
        median(3) / median(1),
        p99(3) / p99(1)
    );
    for (i, name) in [
        (4, "RS256 warm"),
        (5, "RS256 cold"),
        (6, "ES256 warm"),
        (7, "ES256 cold"),
    ] {
        println!(
            "  {name:<10} / pass-through          median {:>7.2}x   p99 {:>7.2}x",
            median(i) / median(1),
            p99(i) / p99(1)
        );
    }
    for (i, name) in [(8, "1 rule"), (9, "50 rules"), (10, "500 rules")] {
        println!(
            "  {name:<10} / pass-through          median {:>7.2}x   p99 {:>7.2}x",
            median(i) / median(1),
            p99(i) / p99(1)
        );
    }
    println!(
        "  500 rules / 1 rule                  median {:>7.2}x   p99 {:>7.2}x",
        median(10) / median(8),
        p99(10) / p99(8)
    );
    println!("  a request whose rules need no approval (the policy has an approval rule that does not match):");
    println!(
        "    approval rule / pass-through      median {:>7.2}x   p99 {:>7.2}x",
        median(12) / median(1),
        p99(12) / p99(1)
    );
    println!(
        "    approval rule / same rule, block  median {:>7.2}x   p99 {:>7.2}x",
        median(12) / median(11),
        p99(12) / p99(11)
    );
    if let Some((path, _)) = &baseline {
        let old_size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        println!(
            "against the baseline module ({path}, {:.1} KiB; this build {:.1} KiB, {:+.1} KiB), same run:",
            old_size as f64 / 1024.0,
            size as f64 / 1024.0,
            (size as f64 - old_size as f64) / 1024.0
        );
        for (k, (i, name)) in compared.iter().enumerate() {
            let b = 13 + k;
            println!(
                "  {name:<26} this / baseline     median {:>7.3}x   p99 {:>7.3}x",
                median(*i) / median(b),
                p99(*i) / p99(b)
            );
        }
    }
    let (rs_native, es_native) = (
        micros(native_verify(&rs, 500)),
        micros(native_verify(&es, 500)),
    );
    let (rs_wasm, es_wasm) = (median(5) - median(1), median(7) - median(1));
    println!("verification (cold minus pass-through in wasm, against native vigil-core):");
    println!(
        "  RS256  wasm {rs_wasm:>9.2} us   native {rs_native:>9.2} us   ratio {:>6.2}x",
        rs_wasm / rs_native
    );
    println!(
        "  ES256  wasm {es_wasm:>9.2} us   native {es_native:>9.2} us   ratio {:>6.2}x",
        es_wasm / es_native
    );
    let pass_through = median(1);
    let (sealing, plain) = sealing_call(&mut scenarios[1].vm, &request(None), requests / 4);
    let record = sealing - plain;
    let native = micros(native_record(2000));
    println!("session record (build, canonical form, SHA-256, HMAC, JSON, set_property):");
    println!(
        "  in vigil.wasm: last body call {sealing:.2} us - same call without sealing {plain:.2} us = {record:.2} us per record"
    );
    println!(
        "  record / pass-through request     {:>7.2}x   ({:.2} us of {:.2} us)",
        record / pass_through,
        record,
        pass_through
    );
    println!(
        "  natively (vigil-core): {native:.2} us per record; wasm / native {:.2}x",
        record / native
    );
    sealed_payloads(&vigil, &start, requests, pass_through);
    checkpoints(&vigil, requests, record);
}

/// The cost of a signed checkpoint in vigil.wasm: the record's last body call with a
/// checkpoint due after every record (`every_records` 1) against the same call with none due,
/// interleaved in 8 rounds; amortised at the default N = 1000.
fn checkpoints(vigil: &Plugin, requests: usize, record: f64) {
    let start = |every_records: u64| {
        let mut policy: Value = serde_json::from_str(&vigil_host::traffic::checkpoint_policy(
            every_records,
            86_400,
        ))
        .expect("policy");
        policy["masking"] = json!({"entities": {}});
        policy["rules"] = json!([]);
        Vm::start(
            vigil,
            VmOptions {
                log_level: LogLevel::Info,
                plugin_config: policy.to_string().into_bytes(),
                ..VmOptions::with_record_key()
            },
        )
        .unwrap_or_else(|e| panic!("{e}"))
    };
    let (mut every, mut never) = (start(1), start(1_000_000));
    let rounds = (requests / 32).max(50);
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for _ in 0..8 {
        let (a, b) = sealing_call(&mut every, &request(None), rounds);
        with.push(a - b);
        let (a, b) = sealing_call(&mut never, &request(None), rounds);
        without.push(a - b);
        // The checkpoints logged are Envoy's business; keep the host's memory flat.
        every.state_mut().logs.clear();
        never.state_mut().logs.clear();
    }
    with.sort_by(f64::total_cmp);
    without.sort_by(f64::total_cmp);
    let checkpoint = with[4] - without[4];
    let key = vigil_core::record::checkpoint::SigningKey::new(vigil_host::TEST_CHECKPOINT_KEY.1)
        .expect("key");
    let record_key =
        vigil_core::record::RecordKey::new(vigil_host::TEST_RECORD_KEY.1.as_bytes()).expect("key");
    let mut chain = vigil_core::record::RecordChain::default();
    let mut times: Vec<Duration> = (0..2000)
        .map(|i| {
            let t = Instant::now();
            std::hint::black_box(chain.checkpoint(
                "vm#1",
                i,
                vigil_core::record::checkpoint::Trigger::Records,
                &record_key,
                &key,
            ));
            t.elapsed()
        })
        .collect();
    times.sort();
    let native = micros(times[times.len() / 2]);
    println!("signed checkpoint (record.checkpoint: Ed25519 signature, HMAC, JSON, Envoy log line, filter state):");
    println!(
        "  in vigil.wasm: record call with a checkpoint {:.2} us, without {:.2} us: +{checkpoint:.2} us per checkpoint",
        with[4], without[4]
    );
    println!(
        "  amortised at every_records 1000: {:.3} us per record ({:.4}x the record's own {record:.2} us)",
        checkpoint / 1000.0,
        checkpoint / 1000.0 / record
    );
    println!(
        "  natively (vigil-core): {native:.2} us per checkpoint; wasm / native {:.2}x",
        checkpoint / native
    );
    println!("  vigil.wasm size: checkpoints' share, measured at d61f114 against 6ca0611: +42 KiB (Ed25519 signing, its tables)");
}

/// The cost of `record.seal_to`: the pass-through exchange's record with and without its
/// payload sealed (interleaved in 8 rounds), natively, and vigil.wasm's size.
fn sealed_payloads(
    vigil: &Plugin,
    start: &dyn Fn(&Plugin, Option<&Value>, u64) -> Vm,
    requests: usize,
    pass_through: f64,
) {
    use vigil_core::record::sealed::{self, OpeningKey, Payload, SealTo};
    let (_, public) = OpeningKey::generate().expect("key pair");
    let plain_policy = json!({"id": "bench", "version": "1", "masking": {"entities": {}}});
    let mut sealed_policy = plain_policy.clone();
    sealed_policy["record"] = json!({ "seal_to": public });
    let mut plain_vm = start(vigil, Some(&plain_policy), 0);
    let mut sealed_vm = start(vigil, Some(&sealed_policy), 0);
    let rounds = (requests / 32).max(50);
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for _ in 0..8 {
        let (a, b) = sealing_call(&mut sealed_vm, &request(None), rounds);
        with.push(a - b);
        let (a, b) = sealing_call(&mut plain_vm, &request(None), rounds);
        without.push(a - b);
    }
    with.sort_by(f64::total_cmp);
    without.sort_by(f64::total_cmp);
    let (with, without) = (with[4], without[4]);
    let to = SealTo::parse(&public).expect("public key");
    let mut payload = Payload::default();
    payload.request.feed(BODY, 65_536);
    payload.response.feed(ANSWER, 65_536);
    let mut times: Vec<Duration> = (0..2000)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(sealed::seal(&to, b"aad", &payload));
            t.elapsed()
        })
        .collect();
    times.sort();
    let native = micros(times[times.len() / 2]);
    println!(
        "sealed payload (record.seal_to: HPKE X25519 + HKDF-SHA256 + ChaCha20-Poly1305 over {} + {} bytes):",
        BODY.len(),
        ANSWER.len()
    );
    println!(
        "  in vigil.wasm: record with payload {with:.2} us, without {without:.2} us: +{:.2} us per record",
        with - without
    );
    println!(
        "  sealed record / plain record      {:>7.2}x;  the payload / pass-through request {:.2}x",
        with / without,
        (with - without) / pass_through
    );
    println!("  natively (vigil-core): {native:.2} us per payload");
    let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let this = size(&artifacts::wasm("vigil_filter").unwrap_or_default());
    print!("  vigil.wasm {} KiB", this / 1024);
    match std::env::var("VIGIL_BASELINE_WASM") {
        Ok(p) => {
            let before = size(std::path::Path::new(&p));
            println!(
                "; baseline {} KiB ({:+} KiB)",
                before / 1024,
                (this as i64 - before as i64) / 1024
            );
        }
        Err(_) => println!(" (sealing's share, measured at 34b5a2c against 6f069bd: +62 KiB)"),
    }
}
