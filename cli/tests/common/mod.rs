//! Session records written by vigil.wasm in the host, as Envoy's access log would write them.
#![allow(dead_code)]

use vigil_host::TEST_RECORD_KEY;

pub use vigil_host::testkit::vigil_plugin;

/// `n` exchanges through vigil.wasm on `vms` VMs; see `vigil_host::traffic`.
pub fn records_through_filter(
    n: usize,
    vms: usize,
    abort_every: usize,
    clock_offset_ms: u64,
) -> Vec<String> {
    vigil_host::traffic::records_through_filter(
        vigil_plugin(),
        n,
        vms,
        abort_every,
        clock_offset_ms,
    )
    .unwrap()
}

/// The same, as a file written before Envoy 1.32 holds them (incomplete records ride late).
pub fn records_logged_before_envoy_1_32(
    n: usize,
    vms: usize,
    abort_every: usize,
    clock_offset_ms: u64,
) -> Vec<String> {
    vigil_host::traffic::as_logged_before_envoy_1_32(&records_through_filter(
        n,
        vms,
        abort_every,
        clock_offset_ms,
    ))
}

pub fn key() -> vigil_core::record::RecordKey {
    vigil_core::record::RecordKey::new(TEST_RECORD_KEY.1.as_bytes()).unwrap()
}

pub fn options() -> vigil_cli::audit::verify::Options {
    vigil_cli::audit::verify::Options {
        keys: vec![key()],
        field: "vigil_record".into(),
        chains: true,
        partial: false,
        expect_heads: None,
        checkpoints: Default::default(),
    }
}

/// Verifies lines as one file named `records.jsonl`.
pub fn verify_lines(
    lines: &[String],
    options: &vigil_cli::audit::verify::Options,
) -> vigil_cli::audit::verify::Verification {
    let mut text = lines.join("\n");
    text.push('\n');
    verify_text(text.as_bytes(), options)
}

pub fn verify_text(
    bytes: &[u8],
    options: &vigil_cli::audit::verify::Options,
) -> vigil_cli::audit::verify::Verification {
    let reading = vigil_cli::audit::read::read_bytes("records.jsonl", bytes, "vigil_record");
    vigil_cli::audit::verify::verify_readings(vec![("records.jsonl".into(), reading)], options)
}
