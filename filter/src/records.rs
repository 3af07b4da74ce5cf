//! The VM's session-record state: the chain, and the queue of records sealed too late for
//! their own access-log line, which ride with the next record written (see stream.rs for
//! why). Plain data; steps.rs seals and writes.

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
    pub fn take_late(&mut self) -> Option<(Vec<u8>, usize)> {
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

    /// Queues a record sealed after its access log ran; gives it back when the queue is full.
    pub fn push_late(&mut self, bytes: Vec<u8>) -> Result<(), Vec<u8>> {
        if self.late.len() >= MAX_LATE_RECORDS {
            return Err(bytes);
        }
        self.late.push(bytes);
        Ok(())
    }
}
