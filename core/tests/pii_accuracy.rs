// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Precision and recall of the detectors on the labelled corpus (the PII conformance rows
//! and 400+ generated bank-chat answers with values, disguised values and look-alikes:
//! testdata/pii_corpus/): at least 0.97 precision and 0.99 recall over the types Presidio
//! covers too, and every AWS secret key found. `scripts/bench` prints the same table beside
//! Presidio's.

use vigil_core::accuracy::{corpus, score};
use vigil_core::masking::Masking;

#[test]
fn the_detectors_are_precise_and_miss_nothing_on_the_labelled_corpus() {
    let rows = corpus().unwrap_or_else(|e| panic!("{e}"));
    assert!(rows.len() >= 900, "{} rows", rows.len());
    let r = score(&Masking::default(), &rows);
    for (ty, s) in &r.per_type {
        eprintln!(
            "{ty:<20} precision {:.3} ({}/{}) recall {:.3} ({}/{})",
            s.precision(),
            s.tp,
            s.tp + s.fp,
            s.recall(),
            s.found,
            s.found + s.missed
        );
    }
    let o = r.overall;
    eprintln!(
        "overall: precision {:.4} recall {:.4}",
        o.precision(),
        o.recall()
    );
    let mistakes = r.mistakes.join("\n");
    assert!(
        o.precision() >= 0.97,
        "precision {:.4}:\n{mistakes}",
        o.precision()
    );
    assert!(o.recall() >= 0.99, "recall {:.4}:\n{mistakes}", o.recall());
    let aws = r
        .per_type
        .get("AWS_SECRET_KEY")
        .copied()
        .unwrap_or_default();
    assert!(
        aws.found > 0 && aws.missed == 0,
        "AWS keys: {aws:?}\n{mistakes}"
    );
}
