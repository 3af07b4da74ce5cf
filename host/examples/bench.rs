//! Host-side cost of a pass-through request through vigil.wasm, as a ratio to the same
//! lifecycle through an empty proxy-wasm module measured in the same run (interleaved in
//! blocks, so drift on a shared machine hits both alike), and the size of vigil.wasm.
//!
//! Usage: scripts/bench [REQUESTS]   (default 20000 per module)

use std::time::{Duration, Instant};
use vigil_host::abi::LogLevel;
use vigil_host::{artifacts, Plugin, Vm, VmOptions};

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

struct Exchange {
    request: Vec<(String, String)>,
    body: Vec<u8>,
    response: Vec<(String, String)>,
    answer: Vec<u8>,
}

/// One whole pass-through exchange; returns the host-side time it took.
fn run_one(vm: &mut Vm, x: &Exchange) -> Duration {
    let start = Instant::now();
    let id = vm.create_stream().expect("create stream");
    vm.request_headers(id, &x.request, false)
        .expect("request headers");
    vm.request_body(id, &x.body, true).expect("request body");
    vm.response_headers(id, &x.response, false)
        .expect("response headers");
    vm.response_body(id, &x.answer, true)
        .expect("response body");
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

fn main() {
    let requests: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let vigil_path = artifacts::wasm("vigil_filter").unwrap_or_else(|e| panic!("{e}"));
    let empty_path = artifacts::workspace_root().join("host/testdata/empty.wat");
    let vigil = Plugin::load(&vigil_path).unwrap_or_else(|e| panic!("{e}"));
    let empty = Plugin::load(&empty_path).unwrap_or_else(|e| panic!("{e}"));
    // Envoy's default log level: debug lines are not sent.
    let options = VmOptions {
        log_level: LogLevel::Info,
        ..VmOptions::default()
    };
    let mut vms = [
        Vm::start(&empty, options.clone()).unwrap_or_else(|e| panic!("{e}")),
        Vm::start(&vigil, options).unwrap_or_else(|e| panic!("{e}")),
    ];
    let x = Exchange {
        request: pairs(&[(":method", "POST"), (":path", "/v1/chat/completions"), (":authority", "models.bank.internal"), ("content-type", "application/json"), ("x-request-id", "bench")]),
        body: br#"{"model":"llama-3.1-8b-instruct","messages":[{"role":"user","content":"Summarise our overdraft policy in one line."}]}"#.to_vec(),
        response: pairs(&[(":status", "200"), ("content-type", "application/json")]),
        answer: br#"{"choices":[{"message":{"role":"assistant","content":"Overdrafts over $50 need approval."}}]}"#.to_vec(),
    };
    for vm in vms.iter_mut() {
        for _ in 0..1_000 {
            run_one(vm, &x);
        }
    }
    let mut times = [Vec::with_capacity(requests), Vec::with_capacity(requests)];
    const BLOCK: usize = 500;
    while times[0].len() < requests {
        for (vm, t) in vms.iter_mut().zip(times.iter_mut()) {
            for _ in 0..BLOCK.min(requests - t.len()) {
                t.push(run_one(vm, &x));
            }
        }
    }
    for t in times.iter_mut() {
        t.sort();
    }
    let (empty_t, vigil_t) = (&times[0], &times[1]);
    let size = std::fs::metadata(&vigil_path).map(|m| m.len()).unwrap_or(0);
    println!(
        "vigil.wasm size: {:.1} KiB ({})",
        size as f64 / 1024.0,
        vigil_path.display()
    );
    println!("pass-through request (headers + 1 body chunk each way + log), {requests} requests per module, interleaved in blocks of {BLOCK}:");
    for (name, t) in [
        ("empty proxy-wasm module", empty_t),
        ("vigil.wasm", vigil_t),
    ] {
        println!(
            "  {name:<24} median {:>8.2} µs   p99 {:>8.2} µs",
            micros(percentile(t, 0.5)),
            micros(percentile(t, 0.99))
        );
    }
    println!(
        "  ratio vigil/empty        median {:>8.2}x    p99 {:>8.2}x",
        micros(percentile(vigil_t, 0.5)) / micros(percentile(empty_t, 0.5)),
        micros(percentile(vigil_t, 0.99)) / micros(percentile(empty_t, 0.99))
    );
}
