//! Masking throughput of vigil.wasm in the host, as MB/s and as a ratio to the same bytes
//! streamed through vigil.wasm with masking off (the pass-through filter), measured in the
//! same run with the scenarios interleaved:
//!
//! - 1 MiB of plain text with no personal data;
//! - 1 MiB of plain text with one value (card, SSN, email, phone, IBAN, IP) per ~200 bytes;
//! - the dense text as the string values of a 1 MiB JSON document;
//! - the dense text as an OpenAI SSE stream of 4-token deltas (about 1 MiB of events).
//!
//! Bodies arrive in 16 KiB transport chunks (Envoy's default read size). The peak memory a
//! stream holds back is measured with vigil-core on the same chunks (the engine is the same
//! code) and checked against the stated bound; the memory a stream costs the VM is the
//! growth of vigil.wasm's linear memory over one stream of each body on a fresh VM (memory
//! only grows, so that is the stream's peak, allocator slack included).
//! Usage: scripts/bench (runs this after the per-request bench) or
//! `cargo run -p vigil-host --example bench_masking -- [ROUNDS]`.

use serde_json::json;
use std::time::{Duration, Instant};
use vigil_core::masking::{BodyKind, BodyMasker, Masking};
use vigil_host::abi::LogLevel;
use vigil_host::{artifacts, Plugin, Vm, VmOptions};

const MIB: usize = 1024 * 1024;
const CHUNK: usize = 16 * 1024;

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const PROSE: &str = "The committee reviewed the quarterly overdraft policy and agreed that \
exceptions need a second signature from the branch manager before the account is changed. ";

fn clean_text(len: usize) -> String {
    PROSE.repeat(len / PROSE.len() + 1)[..len].to_string()
}

/// One personal data value every ~200 bytes, cycling through the entity types.
fn dense_text(len: usize) -> String {
    let values = [
        "card 4111 1111 1111 1111",
        "SSN 078-05-1123",
        "mail dana.white@bankmail.example",
        "phone (415) 555-0132",
        "IBAN GB82 WEST 1234 5698 7654 32",
        "host 192.168.14.7",
    ];
    let filler = "the customer asked whether the standing order could move to the new account ";
    let mut s = String::with_capacity(len + 256);
    let mut i = 0;
    while s.len() < len {
        s.push_str(&filler[..filler.len().min(200 - values[i % values.len()].len())]);
        s.push_str(values[i % values.len()]);
        s.push_str(". ");
        i += 1;
    }
    s.truncate(len);
    s
}

fn json_doc(len: usize) -> String {
    let text = dense_text(len);
    let items: Vec<_> = text
        .as_bytes()
        .chunks(4000)
        .enumerate()
        .map(
            |(i, c)| json!({"index": i, "created": 1700000000, "text": String::from_utf8_lossy(c)}),
        )
        .collect();
    json!({"object": "list", "data": items}).to_string()
}

/// An SSE stream of 4-token deltas (~16 characters each) of the dense text, ~`len` bytes.
fn sse_stream(len: usize) -> String {
    let text = dense_text(len / 8);
    let mut s = String::new();
    let chars: Vec<char> = text.chars().collect();
    for piece in chars.chunks(16) {
        let d: String = piece.iter().collect();
        let e = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000,
            "model": "llama-3.1-70b-instruct", "choices": [{"index": 0, "delta": {"content": d}, "finish_reason": null}]});
        s.push_str(&format!("data: {e}\n\n"));
        if s.len() >= len {
            break;
        }
    }
    s.push_str("data: [DONE]\n\n");
    s
}

/// Ollama's chat stream (JSON Lines) of the same 4-token deltas, ~`len` bytes.
fn ndjson_stream(len: usize) -> String {
    let text = dense_text(len / 8);
    let mut s = String::new();
    let chars: Vec<char> = text.chars().collect();
    for piece in chars.chunks(16) {
        let d: String = piece.iter().collect();
        let e = json!({"model": "llama3.1:70b", "created_at": "2026-11-30T10:00:00.000Z",
            "message": {"role": "assistant", "content": d}, "done": false});
        s.push_str(&format!("{e}\n"));
        if s.len() >= len {
            break;
        }
    }
    s
}

struct Body {
    name: &'static str,
    content_type: &'static str,
    bytes: Vec<u8>,
}

/// Streams one response through the filter; returns the host-side time of the body.
fn stream(vm: &mut Vm, body: &Body) -> (Duration, usize) {
    let id = vm.create_stream().expect("stream");
    let request = pairs(&[
        (":method", "POST"),
        (":path", "/v1/chat/completions"),
        (":authority", "models"),
        ("content-type", "application/json"),
    ]);
    vm.request_headers(id, &request, true)
        .expect("request headers");
    vm.response_headers(
        id,
        &pairs(&[(":status", "200"), ("content-type", body.content_type)]),
        false,
    )
    .expect("response headers");
    let start = Instant::now();
    let chunks: Vec<&[u8]> = body.bytes.chunks(CHUNK).collect();
    for (i, c) in chunks.iter().enumerate() {
        vm.response_body(id, c, i + 1 == chunks.len())
            .expect("body");
    }
    let took = start.elapsed();
    let out = vm
        .stream(id)
        .map(|s| s.response.sent_body.len())
        .unwrap_or(0);
    vm.complete_stream(id).expect("complete");
    vm.remove_stream(id);
    (took, out)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(9);
    let path = artifacts::wasm("vigil_filter").unwrap_or_else(|e| panic!("{e}"));
    let plugin = Plugin::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let start = |masking: serde_json::Value| {
        let config = json!({"id": "bench", "version": "1", "masking": masking, "record": {"max_body_bytes": 0}});
        Vm::start(
            &plugin,
            VmOptions {
                log_level: LogLevel::Info,
                plugin_config: config.to_string().into_bytes(),
                ..VmOptions::with_record_key()
            },
        )
        .unwrap_or_else(|e| panic!("{e}"))
    };
    let bodies = [
        Body {
            name: "plain text, no PII",
            content_type: "text/plain",
            bytes: clean_text(MIB).into_bytes(),
        },
        Body {
            name: "plain text, 1 value/200 B",
            content_type: "text/plain",
            bytes: dense_text(MIB).into_bytes(),
        },
        Body {
            name: "JSON, 1 value/200 B",
            content_type: "application/json",
            bytes: json_doc(MIB).into_bytes(),
        },
        Body {
            name: "SSE, 4-token deltas",
            content_type: "text/event-stream",
            bytes: sse_stream(MIB).into_bytes(),
        },
        Body {
            name: "Ollama JSON Lines, 4-token",
            content_type: "application/x-ndjson",
            bytes: ndjson_stream(MIB).into_bytes(),
        },
    ];
    // The VM memory one stream of each body needs: a fresh VM per body, warmed by one small
    // answer of the same type so that start-up allocations are not counted.
    let grown_by = |b: &Body| {
        let mut vm = start(json!({}));
        let small = Body {
            name: b.name,
            content_type: b.content_type,
            bytes: b.bytes[..4096].to_vec(),
        };
        stream(&mut vm, &small);
        let before = vm.memory_bytes();
        stream(&mut vm, b);
        vm.memory_bytes() - before
    };
    let grown: Vec<usize> = bodies.iter().map(grown_by).collect();
    let mut masking_vm = start(json!({}));
    let mut pass_vm = start(json!({"entities": {}}));
    let mut masked: Vec<Vec<Duration>> = vec![Vec::new(); bodies.len()];
    let mut passed: Vec<Vec<Duration>> = vec![Vec::new(); bodies.len()];
    let mut out_len = vec![0; bodies.len()];
    for b in &bodies {
        stream(&mut masking_vm, b);
        stream(&mut pass_vm, b);
    }
    for _ in 0..rounds {
        for (i, b) in bodies.iter().enumerate() {
            let (t, n) = stream(&mut masking_vm, b);
            masked[i].push(t);
            out_len[i] = n;
            passed[i].push(stream(&mut pass_vm, b).0);
        }
    }
    let m = Masking::default();
    let bound = m.hold_back_bound();
    println!("masking throughput in vigil.wasm ({CHUNK}-byte chunks, median of {rounds} rounds; pass-through = vigil.wasm with masking off):");
    println!(
        "  {:<27} {:>9} {:>11} {:>11} {:>8} {:>10} {:>16} {:>10}",
        "body", "bytes", "masked", "pass", "ratio", "out bytes", "peak held", "VM memory"
    );
    for (i, b) in bodies.iter().enumerate() {
        let (tm, tp) = (median(masked[i].clone()), median(passed[i].clone()));
        let mbs = |t: Duration| b.bytes.len() as f64 / 1e6 / t.as_secs_f64();
        // The same chunks through vigil-core natively: what a stream holds back at most.
        let kind = BodyKind::of(Some(b.content_type));
        let mut masker = BodyMasker::new(kind);
        let mut out = Vec::new();
        for c in b.bytes.chunks(CHUNK) {
            masker.push(&m, c, &mut out);
        }
        masker.finish(&m, &mut out);
        let (held_bytes, held_events) = masker.peak_held();
        let held = if matches!(kind, BodyKind::EventStream | BodyKind::JsonLines) {
            format!("{held_bytes} B/{held_events} ev")
        } else {
            format!("{held_bytes} B")
        };
        println!(
            "  {:<27} {:>9} {:>6.1} MB/s {:>6.1} MB/s {:>7.2}x {:>10} {:>16} {:>6} KiB",
            b.name,
            b.bytes.len(),
            mbs(tm),
            mbs(tp),
            tm.as_secs_f64() / tp.as_secs_f64(),
            out_len[i],
            held,
            grown[i] / 1024
        );
    }
    // Bodies made to grow memory: each stays bounded.
    let logprob =
        json!({"token": " 4111", "logprob": -0.1, "bytes": [32, 52, 49, 49, 49]}).to_string();
    let hostile = [
        Body {
            name: "JSON, 16 MiB of [",
            content_type: "application/json",
            bytes: vec![b'['; 16 * MIB],
        },
        Body {
            name: "SSE, one 16 MiB line",
            content_type: "text/event-stream",
            bytes: [b"data: ".as_slice(), &vec![b'x'; 16 * MIB]].concat(),
        },
        Body {
            name: "JSON, 8 MiB of logprobs",
            content_type: "application/json",
            bytes: format!(
                "{{\"choices\":[{{\"index\":0,\"logprobs\":{{\"content\":[{}]}}}}]}}",
                vec![logprob.as_str(); 8 * MIB / logprob.len()].join(",")
            )
            .into_bytes(),
        },
    ];
    for b in &hostile {
        println!(
            "  {:<27} {:>9} {:>83} KiB",
            b.name,
            b.bytes.len(),
            grown_by(b) / 1024
        );
    }
    println!("  VM memory: how much vigil.wasm's linear memory grew over one stream of the body on a fresh VM (in 64 KiB pages; the chunks the host hands in are part of it)");
    println!("  hold-back bound: {bound} bytes of text per stream (SSE and JSON Lines: events carrying at most that much text, plus the events queued behind them); peak held is the most a stream kept at once");
}
