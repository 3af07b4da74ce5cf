//! Session records in the filter: sealing a stream's record into the VM's chain and writing
//! it to filter state, and the queue of records sealed too late for their own access-log
//! line, which ride with the next record written (see stream.rs for why).

use crate::logging::ctx_log;
use crate::plugin::{Plugin, SharedGate};
use crate::steps::now_nanos;
use proxy_wasm::hostcalls;
use vigil_core::record::RecordChain;

/// Records sealed after their access log ran, held for the next record to carry. Each is at
/// most two body caps plus a few KiB, so the queue stays within a few tens of MiB at the cap.
pub const MAX_LATE_RECORDS: usize = 256;

/// The VM's chain and the records waiting for a line.
#[derive(Default)]
pub struct Records {
    pub chain: RecordChain,
    late: Vec<Vec<u8>>,
}

impl Records {
    /// The waiting records as one JSON array, and how many (None when there are none).
    fn take_late(&mut self) -> Option<(Vec<u8>, usize)> {
        if self.late.is_empty() {
            return None;
        }
        let late = std::mem::take(&mut self.late);
        let mut array =
            Vec::with_capacity(late.iter().map(Vec::len).sum::<usize>() + late.len() + 1);
        array.push(b'[');
        for (i, r) in late.iter().enumerate() {
            if i > 0 {
                array.push(b',');
            }
            array.extend_from_slice(r);
        }
        array.push(b']');
        Some((array, late.len()))
    }

    /// The records no line will carry any more (the VM is stopping).
    pub fn drain_late(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.late)
    }
}

fn property_string(path: &str) -> Option<String> {
    hostcalls::get_property(path.split('.').collect())
        .ok()
        .flatten()
        .and_then(|b| String::from_utf8(b).ok())
}

/// Seals the stream's record and writes it to filter state, once. `complete` is false when
/// the exchange ended before the response did (from `on_log`, after the access log ran):
/// that record waits for the next one.
pub fn seal(plugin: &Plugin, context_id: u32, gate: &SharedGate, complete: bool) {
    let mut records = plugin.records.borrow_mut();
    let sealed = gate.borrow_mut().seal(
        &plugin.config,
        now_nanos(),
        complete,
        property_string("response.code_details"),
        &plugin.vm_id,
        &mut records.chain,
        &plugin.record_key,
    );
    let Some(sealed) = sealed else {
        return;
    };
    for (name, n) in &sealed.masked {
        plugin.count(&format!("vigil.masked.{name}"), *n as i64);
    }
    let seq = sealed.record.seq;
    if !complete {
        hold_late(plugin, &mut records, context_id, sealed.bytes, seq);
        return;
    }
    let property = plugin.config.record.property.as_str();
    let late = records.take_late();
    drop(records);
    if let Some((array, _)) = &late {
        let late_property = format!("{property}_late");
        let _ = hostcalls::set_property(vec![late_property.as_str()], Some(array));
    }
    let _ = hostcalls::set_property(vec![property], Some(&sealed.bytes));
    ctx_log!(
        debug,
        context_id,
        "session record seq {} hash {} written ({} late record(s) along)",
        seq,
        sealed.record.hash,
        late.map_or(0, |(_, n)| n)
    );
}

/// Keeps a record sealed after its access log ran, for the next record to carry. The queue
/// is bounded: past it, the record goes to Envoy's log in full (and the gap shows in
/// `vigil audit verify`), never silently nowhere.
fn hold_late(plugin: &Plugin, records: &mut Records, context_id: u32, bytes: Vec<u8>, seq: u64) {
    if records.late.len() >= MAX_LATE_RECORDS {
        plugin.count("vigil.records.late_overflow", 1);
        ctx_log!(
            warn,
            context_id,
            "late record queue full; session record seq {} only in this log line: {}",
            seq,
            String::from_utf8_lossy(&bytes)
        );
        return;
    }
    records.late.push(bytes);
    ctx_log!(
        debug,
        context_id,
        "session record seq {} sealed after the access log; it rides with the next record",
        seq
    );
}
