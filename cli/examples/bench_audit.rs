//! `vigil audit verify` throughput on 100,000 records written by vigil.wasm in the host (two
//! VMs, clients going away now and then), against a baseline in the same run: parsing the
//! same lines as JSON and nothing else. Then the same traffic with signed checkpoints,
//! verified with the record key, with the checkpoint public key alone, and with both.
//!
//! Usage: cargo run --release -p vigil-cli --example bench_audit [RECORDS]

use std::time::Instant;
use vigil_cli::audit::{read, verify};
use vigil_host::{artifacts, Plugin, TEST_RECORD_KEY};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let plugin = Plugin::load(&artifacts::wasm("vigil_filter").expect("scripts/build first"))
        .expect("vigil.wasm loads");
    let t = Instant::now();
    let lines =
        vigil_host::traffic::records_through_filter(&plugin, n, 2, 97, 0).expect("traffic runs");
    let generated = t.elapsed();
    let mut text = lines.join("\n");
    text.push('\n');
    let bytes = text.as_bytes();
    let key = vigil_core::record::RecordKey::new(TEST_RECORD_KEY.1.as_bytes()).expect("key");
    let options = verify::Options {
        keys: vec![key],
        field: "vigil_record".into(),
        chains: true,
        partial: false,
        expect_heads: None,
        checkpoints: Default::default(),
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "audit verify: {n} records ({:.1} MiB of access-log lines, written through vigil.wasm in {:.1} s), {threads} thread(s)",
        bytes.len() as f64 / (1024.0 * 1024.0),
        generated.as_secs_f64()
    );
    let mut best_parse = f64::MAX;
    let mut best_verify = f64::MAX;
    let mut best_read = f64::MAX;
    for _ in 0..3 {
        // Baseline: every line parsed as JSON, and the record string in it parsed again.
        let t = Instant::now();
        let mut parsed = 0usize;
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(line).expect("json");
            if let Some(r) = v["vigil_record"].as_str() {
                let r: serde_json::Value = serde_json::from_str(r).expect("record json");
                parsed += r.is_object() as usize;
            }
        }
        best_parse = best_parse.min(t.elapsed().as_secs_f64());
        assert!(parsed > 0);

        let t = Instant::now();
        let reading = read::read_bytes("bench.jsonl", bytes, "vigil_record");
        best_read = best_read.min(t.elapsed().as_secs_f64());
        let t2 = Instant::now();
        let v = verify::verify_readings(vec![("bench.jsonl".into(), reading)], &options);
        let checked = t2.elapsed().as_secs_f64();
        best_verify = best_verify.min(t.elapsed().as_secs_f64());
        assert!(v.is_clean(), "{:?}", v.problems.first());
        assert_eq!(v.records, n);
        let _ = checked;
    }
    println!(
        "  verify (read + HMAC + chains): {:.0} records/s ({:.0} MB/s), best of 3",
        n as f64 / best_verify,
        bytes.len() as f64 / best_verify / 1e6
    );
    println!(
        "  of which reading the lines: {:.0}%",
        100.0 * best_read / best_verify
    );
    println!(
        "  baseline, JSON parse of the same lines on one thread: {:.0} records/s; verify costs {:.2}x the parse",
        n as f64 / best_parse,
        best_verify / best_parse
    );
    public_key_verification(&plugin, n, best_verify);
}

/// The same traffic with a signed checkpoint every 1000 records, verified three ways: with
/// the record key (HMAC, as above), with the checkpoint public key alone (hashes, links,
/// signatures), and with both; against today's HMAC verification of the plain traffic.
fn public_key_verification(plugin: &Plugin, n: usize, hmac_plain: f64) {
    let lines = vigil_host::traffic::records_under_policy(
        plugin,
        &vigil_host::traffic::checkpoint_policy(1000, 86_400),
        n,
        2,
        97,
        0,
    )
    .expect("traffic runs");
    let mut text = lines.join("\n");
    text.push('\n');
    let bytes = text.as_bytes();
    let record_key = vigil_core::record::RecordKey::new(TEST_RECORD_KEY.1.as_bytes()).expect("key");
    let public = vigil_core::record::checkpoint::SigningKey::new(vigil_host::TEST_CHECKPOINT_KEY.1)
        .expect("key")
        .public_key();
    let options = |keys: Vec<vigil_core::record::RecordKey>, public_keys| verify::Options {
        keys,
        field: "vigil_record".into(),
        chains: true,
        partial: false,
        expect_heads: None,
        checkpoints: verify::CheckpointOptions {
            public_keys,
            ..Default::default()
        },
    };
    let ways = [
        (
            "record key (HMAC)",
            options(vec![record_key.clone()], vec![]),
        ),
        ("public key alone", options(vec![], vec![public.clone()])),
        ("both", options(vec![record_key], vec![public])),
    ];
    let mut best = [f64::MAX; 3];
    let mut checkpoints = 0;
    for _ in 0..3 {
        for (i, (_, o)) in ways.iter().enumerate() {
            let t = Instant::now();
            let reading = read::read_bytes("bench.jsonl", bytes, "vigil_record");
            let v = verify::verify_readings(vec![("bench.jsonl".into(), reading)], o);
            best[i] = best[i].min(t.elapsed().as_secs_f64());
            assert!(v.is_clean(), "{:?}", v.problems.first());
            assert_eq!(v.records, n);
            checkpoints = v.checkpoints.len();
        }
    }
    println!(
        "  with a signed checkpoint every 1000 records ({checkpoints} checkpoints), best of 3:"
    );
    for (i, (name, _)) in ways.iter().enumerate() {
        println!(
            "    {name:<18} {:>8.0} records/s, {:.2}x today's HMAC verification",
            n as f64 / best[i],
            best[i] / hmac_plain
        );
    }
}
