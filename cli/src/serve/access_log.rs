//! The access log `vigil serve` writes: one JSON line per exchange, in the shape of the
//! shipped `envoy/envoy.yaml` (`json_format`: time, request_id, status, flags,
//! `vigil_record`, `vigil_record_late`, `vigil_record_checkpoints`, the records as strings, a missing one null), so
//! `vigil audit verify` reads it as it reads Envoy's.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use vigil_host::state::Stream;

pub struct AccessLog {
    out: Mutex<Box<dyn Write + Send>>,
}

impl AccessLog {
    /// To a file (appended), or to stdout without one.
    pub fn open(path: Option<&Path>) -> std::io::Result<Self> {
        let out: Box<dyn Write + Send> = match path {
            Some(p) => Box::new(BufWriter::new(
                File::options().create(true).append(true).open(p)?,
            )),
            None => Box::new(std::io::stdout()),
        };
        Ok(Self {
            out: Mutex::new(out),
        })
    }

    /// Writes the line of a finished stream (its filter state as the access log read it).
    pub fn write(&self, s: &Stream, request_id: &str, start_time: &str) {
        let line = line(s, request_id, start_time);
        if let Ok(mut out) = self.out.lock() {
            // A line is written whole and flushed, so a crash loses no finished record.
            let _ = writeln!(out, "{line}").and_then(|()| out.flush());
        }
    }
}

fn line(s: &Stream, request_id: &str, start_time: &str) -> String {
    // Envoy's %RESPONSE_CODE% is 0 when no response went out.
    let status = s.status().unwrap_or("0");
    // Envoy's %RESPONSE_FLAGS%: DC for a client gone mid-stream, UC for an upstream reset,
    // "-" otherwise.
    let why = s
        .reset
        .as_deref()
        .or(s.code_details.as_deref())
        .unwrap_or("");
    let flags = if why.contains("downstream") {
        "DC"
    } else if why.contains("upstream_reset") || s.reset.is_some() {
        "UC"
    } else {
        "-"
    };
    serde_json::json!({
        "time": start_time,
        "request_id": request_id,
        "status": status,
        "flags": flags,
        "vigil_record": s.logged("wasm.vigil_record"),
        "vigil_record_late": s.logged("wasm.vigil_record_late"),
        "vigil_record_checkpoints": s.logged("wasm.vigil_record_checkpoints"),
    })
    .to_string()
}
