//! How well the detectors find personal data, per entity: precision and recall on a
//! labelled corpus (the PII conformance rows and the generated bank-chat answers of
//! `testdata/pii_corpus/`), scored by the rule `scripts/presidio_score.py` applies to
//! Presidio, so the two tables compare. Test and benchmark material: the filter never
//! calls it, so it is not in `vigil.wasm`.
//!
//! The rule: a found value is right when it overlaps (shares a character with) a labelled
//! value of the same type, wrong otherwise; a labelled value is found when a found value
//! of its type overlaps it. Types are Presidio's names; the shared ones are scored
//! together, and Vigil's AWS secret keys on their own.

use crate::masking::{Entity, Masker, Masking, Sink};
use serde_json::Value;
use std::collections::BTreeMap;

/// The types both Vigil and Presidio's pattern recognizers cover.
pub const SHARED: [&str; 8] = [
    "CREDIT_CARD",
    "US_SSN",
    "US_ITIN",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "IBAN_CODE",
    "ABA_ROUTING_NUMBER",
    "IP_ADDRESS",
];

/// The Presidio type name of an entity (AWS keys are Vigil's `secret`).
pub fn type_name(e: Entity) -> &'static str {
    match e {
        Entity::CreditCard => "CREDIT_CARD",
        Entity::UsSsn => "US_SSN",
        Entity::UsItin => "US_ITIN",
        Entity::Email => "EMAIL_ADDRESS",
        Entity::Phone => "PHONE_NUMBER",
        Entity::Iban => "IBAN_CODE",
        Entity::AbaRouting => "ABA_ROUTING_NUMBER",
        Entity::IpAddress => "IP_ADDRESS",
        Entity::Secret => "AWS_SECRET_KEY",
        _ => "OTHER",
    }
}

/// One labelled text.
pub struct Row {
    pub id: String,
    pub text: String,
    /// (type, start, end) in bytes of `text`.
    pub gold: Vec<(String, usize, usize)>,
}

/// Rows from JSON lines of either format (the conformance rows' or the corpus'), with
/// character offsets turned into byte offsets.
pub fn rows(lines: &[Value]) -> Vec<Row> {
    lines
        .iter()
        .enumerate()
        .map(|(k, l)| {
            let text = l["text"].as_str().unwrap_or_default().to_string();
            let byte = |c: u64| {
                text.char_indices()
                    .nth(c as usize)
                    .map_or(text.len(), |(b, _)| b)
            };
            let gold = l["entities"]
                .as_array()
                .map(|es| {
                    es.iter()
                        .map(|e| {
                            (
                                e["type"].as_str().unwrap_or_default().to_string(),
                                byte(e["start"].as_u64().unwrap_or(0)),
                                byte(e["end"].as_u64().unwrap_or(0)),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            Row {
                id: l["id"].as_str().map_or(format!("row-{k}"), str::to_string),
                text,
                gold,
            }
        })
        .collect()
}

/// What the masker replaced, with its place in the text.
struct Found<'a> {
    labels: &'a [(String, Entity)],
    at: usize,
    spans: Vec<(&'static str, usize, usize)>,
}

impl Sink for Found<'_> {
    fn copy(&mut self, text: &[u8]) {
        self.at += text.len();
    }
    fn replace(&mut self, original: &[u8], replacement: &str) {
        if let Some((_, e)) = self.labels.iter().find(|(l, _)| l == replacement) {
            self.spans
                .push((type_name(*e), self.at, self.at + original.len()));
        }
        self.at += original.len();
    }
}

/// The values the masker finds in `text`: (type, start, end) in bytes.
pub fn found(m: &Masking, text: &str) -> Vec<(&'static str, usize, usize)> {
    let labels: Vec<(String, Entity)> = Entity::BUILTIN
        .iter()
        .map(|e| (format!("[{}]", e.label()), *e))
        .collect();
    let mut masker = Masker::new();
    let mut sink = Found {
        labels: &labels,
        at: 0,
        spans: Vec::new(),
    };
    masker.push(m, text.as_bytes(), &mut sink);
    masker.finish(m, &mut sink);
    sink.spans
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Score {
    pub tp: u64,
    pub fp: u64,
    pub missed: u64,
    pub found: u64,
}

impl Score {
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    pub fn recall(&self) -> f64 {
        ratio(self.found, self.found + self.missed)
    }
    fn add(&mut self, o: &Score) {
        self.tp += o.tp;
        self.fp += o.fp;
        self.missed += o.missed;
        self.found += o.found;
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

/// Scores per type, the mistakes by row, and the overall score of the shared types.
#[derive(Debug, Default)]
pub struct Report {
    pub per_type: BTreeMap<String, Score>,
    pub overall: Score,
    /// "id: wrong TYPE 'text'" / "id: missed TYPE 'text'".
    pub mistakes: Vec<String>,
}

pub fn score(m: &Masking, rows: &[Row]) -> Report {
    let mut r = Report::default();
    let overlaps = |a: (usize, usize), b: (usize, usize)| a.0 < b.1 && b.0 < a.1;
    for row in rows {
        let found = found(m, &row.text);
        for (ty, s, e) in &found {
            let right = row
                .gold
                .iter()
                .any(|(g, gs, ge)| g == ty && overlaps((*s, *e), (*gs, *ge)));
            let score = r.per_type.entry(ty.to_string()).or_default();
            if right {
                score.tp += 1;
            } else {
                score.fp += 1;
                r.mistakes
                    .push(format!("{}: wrong {ty} {:?}", row.id, &row.text[*s..*e]));
            }
        }
        for (ty, s, e) in &row.gold {
            let hit = found
                .iter()
                .any(|(f, fs, fe)| f == ty && overlaps((*s, *e), (*fs, *fe)));
            let score = r.per_type.entry(ty.clone()).or_default();
            if hit {
                score.found += 1;
            } else {
                score.missed += 1;
                r.mistakes
                    .push(format!("{}: missed {ty} {:?}", row.id, &row.text[*s..*e]));
            }
        }
    }
    for ty in SHARED {
        if let Some(s) = r.per_type.get(ty) {
            r.overall.add(s);
        }
    }
    r
}

/// The rows of the labelled corpus: the PII conformance rows and the bank-chat answers.
pub fn corpus() -> Result<Vec<Row>, String> {
    let mut lines = crate::testkit::conformance_lines("pii/pii_vectors.jsonl")?;
    let answers = crate::testkit::read("testdata/pii_corpus/bank_answers.jsonl")?;
    for (i, l) in answers.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        lines.push(
            serde_json::from_str(l)
                .map_err(|e| format!("testdata/pii_corpus/bank_answers.jsonl:{}: {e}", i + 1))?,
        );
    }
    Ok(rows(&lines))
}
