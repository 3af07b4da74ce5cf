//! Precision and recall of Vigil's detectors on the labelled corpus (the PII conformance
//! rows and testdata/pii_corpus/), per type, beside Presidio's pattern recognizers on the
//! same rows under the same rule when their scores are given (`--presidio FILE`: the
//! `--json` output of `scripts/presidio`, one object per score threshold).
//! Usage: scripts/bench, or `cargo run -p vigil-core --example accuracy [-- --presidio FILE]`.

use serde_json::Value;
use vigil_core::accuracy::{corpus, score, Score, SHARED};
use vigil_core::masking::Masking;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let presidio: Vec<Value> = args
        .iter()
        .position(|a| a == "--presidio")
        .and_then(|i| args.get(i + 1))
        .and_then(|f| std::fs::read_to_string(f).ok())
        .map(|text| {
            text.lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()
        })
        .unwrap_or_default();
    let rows = match corpus() {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("accuracy: {e}");
            std::process::exit(1);
        }
    };
    let r = score(&Masking::default(), &rows);
    println!(
        "detection accuracy on {} labelled texts (PII conformance rows and bank-chat answers; a found value is right when it overlaps a labelled one of its type):",
        rows.len()
    );
    let mut header = format!("  {:<20} {:>6} {:>17}", "type", "values", "Vigil P / R");
    for p in &presidio {
        header.push_str(&format!(
            " {:>20}",
            format!("Presidio@{} P / R", p["threshold"])
        ));
    }
    println!("{header}");
    let cell = |p: f64, r: f64| format!("{p:.3} / {r:.3}");
    let line = |name: &str, s: &Score, key: &str| {
        let mut l = format!(
            "  {:<20} {:>6} {:>17}",
            name,
            s.found + s.missed,
            cell(s.precision(), s.recall())
        );
        for p in &presidio {
            let e = if key == "overall" {
                &p["overall"]
            } else {
                &p["per_entity"][key]
            };
            l.push_str(&format!(
                " {:>20}",
                match (e["precision"].as_f64(), e["recall"].as_f64()) {
                    (Some(p), Some(r)) => cell(p, r),
                    _ => "-".to_string(),
                }
            ));
        }
        println!("{l}");
    };
    for ty in SHARED {
        line(ty, &r.per_type.get(ty).copied().unwrap_or_default(), ty);
    }
    line("overall (shared)", &r.overall, "overall");
    if let Some(aws) = r.per_type.get("AWS_SECRET_KEY") {
        line("AWS_SECRET_KEY", aws, "AWS_SECRET_KEY");
    }
    if presidio.is_empty() {
        println!(
            "  (Presidio not run: scripts/presidio installs it from PyPI into target/presidio)"
        );
    }
}
