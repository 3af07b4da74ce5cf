use std::time::Instant;
use vigil_core::masking::{Masker, Masking};
fn main() {
    let prose = "The committee reviewed the quarterly overdraft policy and agreed that exceptions need a second signature from the branch manager before the account is changed. ";
    let text = prose.repeat(1 << 20 >> 7);
    let m = Masking::default();
    let mut best = f64::MAX;
    for _ in 0..15 {
        let mut masker = Masker::new();
        let mut out = Vec::with_capacity(text.len());
        let t = Instant::now();
        for c in text.as_bytes().chunks(16384) { masker.push(&m, c, &mut out); }
        masker.finish(&m, &mut out);
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!("{:.1} MB/s", text.len() as f64 / 1e6 / best);
}
