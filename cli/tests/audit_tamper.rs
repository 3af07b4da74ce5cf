//! The integrity proof: 10,000 records written by vigil.wasm in the host (two VMs, so two
//! chains, and clients that go away so some records ride late), then single edits,
//! deletions, insertions, swaps and truncations at random places. Every one must be caught,
//! and the first problem reported must be at the line that was tampered with.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use vigil_cli::audit::verify::{Head, Heads, Options};

use vigil_core::testkit::Rng;

/// Options that know each chain's head, as a previous verification wrote them.
fn with_heads(lines: &[String]) -> Options {
    let v = verify_lines(lines, &options());
    let heads: Heads = v
        .heads()
        .into_iter()
        .map(|(vm, h)| {
            (
                vm,
                Head {
                    seq: h.seq,
                    hash: h.hash,
                },
            )
        })
        .collect();
    Options {
        expect_heads: Some(heads),
        ..options()
    }
}

/// Re-encodes one line with `edit` applied to its record (parsed from the string field).
fn edit_record(line: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Option<String> {
    let mut outer: serde_json::Value = serde_json::from_str(line).unwrap();
    let text = outer["vigil_record"].as_str()?;
    let mut record: serde_json::Value = serde_json::from_str(text).unwrap();
    edit(&mut record);
    outer["vigil_record"] = record.to_string().into();
    Some(outer.to_string())
}

fn has_record(line: &str) -> bool {
    line.contains("\"vigil_record\":\"")
}

#[derive(Debug)]
enum Tamper {
    FieldEdit,
    ByteFlip,
    ForgedWithHash,
    Deletion,
    DuplicateInsertion,
    ForeignInsertion,
    Swap,
    LineTruncation,
    TailTruncation,
}

const KINDS: [Tamper; 9] = [
    Tamper::FieldEdit,
    Tamper::ByteFlip,
    Tamper::ForgedWithHash,
    Tamper::Deletion,
    Tamper::DuplicateInsertion,
    Tamper::ForeignInsertion,
    Tamper::Swap,
    Tamper::LineTruncation,
    Tamper::TailTruncation,
];

/// Applies one tampering; returns the file and the 1-based line where it must be reported
/// first (None for a tail cut exactly at a line end: reported at the chain's last record).
fn tamper(kind: &Tamper, lines: &[String], rng: &mut Rng, foreign: &[String]) -> (String, usize) {
    let mut l = lines.to_vec();
    // A line with a record of its own (every line but those of aborted exchanges).
    let pick = |rng: &mut Rng| loop {
        let i = rng.below(l.len());
        if has_record(&l[i]) {
            return i;
        }
    };
    let expected = match kind {
        Tamper::FieldEdit => {
            let i = pick(rng);
            let field = rng.below(6);
            // Each edit changes the value, whatever it was.
            l[i] = edit_record(&l[i], |r| match field {
                0 => {
                    r["response"]["status"] =
                        (r["response"]["status"].as_u64().unwrap_or(0) + 1).into()
                }
                1 => r["model"] = format!("{}-x", r["model"].as_str().unwrap_or("")).into(),
                2 => {
                    r["decision"]["reason"] =
                        format!("{}.", r["decision"]["reason"].as_str().unwrap()).into()
                }
                3 => {
                    r["request"]["body"] =
                        format!("{} ", r["request"]["body"].as_str().unwrap()).into()
                }
                4 => r["seq"] = (r["seq"].as_u64().unwrap() + 1).into(),
                _ => {
                    r["masked"]["us_ssn"] = (r["masked"]["us_ssn"].as_u64().unwrap_or(0) + 1).into()
                }
            })
            .unwrap();
            i + 1
        }
        Tamper::ByteFlip => {
            let i = pick(rng);
            // Flip one character inside the record string (between its quotes).
            let start = l[i].find("\"vigil_record\":\"").unwrap() + 16;
            let end = l[i][start..]
                .find("\",\"")
                .map(|e| start + e)
                .unwrap_or(l[i].len() - 2);
            let mut bytes = l[i].clone().into_bytes();
            let at = start + rng.below(end - start);
            bytes[at] = if bytes[at] == b'7' { b'8' } else { b'7' };
            l[i] = String::from_utf8_lossy(&bytes).into_owned();
            i + 1
        }
        Tamper::ForgedWithHash => {
            // An edit whose hash is recomputed: only the HMAC can catch it.
            let i = pick(rng);
            l[i] = edit_record(&l[i], |r| {
                r["decision"]["reason"] = "approved by the examiner".into();
                r["hash"] =
                    vigil_core::digest::sha256_hex(&vigil_core::record::chain::canonical_bytes(r))
                        .into();
            })
            .unwrap();
            i + 1
        }
        Tamper::Deletion => {
            // Not the last line: deleting the newest record is a tail cut.
            let i = loop {
                let i = pick(rng);
                if l[i + 1..].iter().any(|x| has_record(x)) {
                    break i;
                }
            };
            l.remove(i);
            // Reported at the next line carrying a record of that chain... which is the line
            // that now holds position i or later; the first problem is at the first such line.
            let vm = vm_of(&lines[i]);
            let next = (i..l.len())
                .find(|&j| vm_of_any(&l[j]).contains(&vm))
                .unwrap();
            next + 1
        }
        Tamper::DuplicateInsertion => {
            let from = pick(rng);
            let mut to = rng.below(l.len() + 1);
            // Right next to the original, the two copies cannot be told apart: both are
            // acceptable answers, so keep the test's expectation exact by moving away.
            if to == from || to == from + 1 {
                to = if from >= 2 { from - 2 } else { from + 3 };
            }
            let copy = l[from].clone();
            l.insert(to, copy);
            to + 1
        }
        Tamper::ForeignInsertion => {
            // A genuine record (right key, right chain id, a seq the chain has) from a run
            // that never happened here: a replayed or forged-by-insider line.
            let to = rng.below(l.len() + 1);
            l.insert(to, foreign[rng.below(foreign.len())].clone());
            to + 1
        }
        Tamper::Swap => {
            let i = pick(rng);
            let j = loop {
                let j = pick(rng);
                // Two records of the same chain (records of different chains may interleave
                // in any order: they are different workers).
                if j != i && vm_of(&l[j]) == vm_of(&l[i]) {
                    break j;
                }
            };
            l.swap(i, j);
            i.min(j) + 1
        }
        Tamper::LineTruncation => {
            let i = pick(rng);
            let cut = 1 + rng.below(l[i].len() - 2);
            l[i].truncate(cut);
            i + 1
        }
        Tamper::TailTruncation => {
            // Cut the file somewhere in its last 50 lines, mid-line or at a line end.
            let i = l.len() - 1 - rng.below(50);
            let cut = rng.below(l[i].len() + 1);
            if cut == 0 {
                l.truncate(i);
                // Reported at the newest remaining record of a chain that lost its tail.
                let mut text = l.join("\n");
                text.push('\n');
                return (text, usize::MAX);
            }
            l[i].truncate(cut);
            l.truncate(i + 1);
            let mut text = l.join("\n");
            if cut == lines[i].len() {
                // Exactly at the end of a line: its newline gone, the line is whole.
                return (text, usize::MAX);
            }
            text.push('\n');
            return (text, i + 1);
        }
    };
    let mut text = l.join("\n");
    text.push('\n');
    (text, expected)
}

fn vm_of(line: &str) -> String {
    let outer: serde_json::Value = serde_json::from_str(line).unwrap();
    let record: serde_json::Value =
        serde_json::from_str(outer["vigil_record"].as_str().unwrap()).unwrap();
    record["vm_id"].as_str().unwrap().to_string()
}

/// Every chain a line carries records of (its own and late ones).
fn vm_of_any(line: &str) -> Vec<String> {
    let outer: serde_json::Value = serde_json::from_str(line).unwrap();
    let mut vms = Vec::new();
    if let Some(late) = outer["vigil_record_late"].as_str() {
        let late: Vec<serde_json::Value> = serde_json::from_str(late).unwrap();
        vms.extend(
            late.iter()
                .map(|r| r["vm_id"].as_str().unwrap().to_string()),
        );
    }
    if let Some(text) = outer["vigil_record"].as_str() {
        let record: serde_json::Value = serde_json::from_str(text).unwrap();
        vms.push(record["vm_id"].as_str().unwrap().to_string());
    }
    vms
}

#[test]
fn every_single_tampering_of_ten_thousand_records_is_caught_at_its_line() {
    // As older Envoy logged them, so that records carried late are tampered with too.
    let lines = records_logged_before_envoy_1_32(10_000, 2, 97, 0);
    let clean = verify_lines(&lines, &options());
    assert!(
        clean.is_clean(),
        "{:?}",
        &clean.problems[..clean.problems.len().min(5)]
    );
    assert_eq!(clean.records, 10_000);
    assert_eq!(clean.verified().count(), 10_000);
    assert_eq!(clean.chains.len(), 2);
    let late = clean
        .authentic
        .iter()
        .filter(|a| a.at.item.is_some())
        .count();
    assert!(late > 50, "aborted exchanges ride late: {late}");

    let foreign = records_through_filter(60, 2, 0, 3);
    let options = with_heads(&lines);
    let mut rng = Rng(0x005E_ED0F_7161_u64);
    let mut per_kind = std::collections::BTreeMap::new();
    let cases = 1_008;
    for case in 0..cases {
        let kind = &KINDS[case % KINDS.len()];
        let (text, expected) = tamper(kind, &lines, &mut rng, &foreign);
        let v = verify_text(text.as_bytes(), &options);
        assert_eq!(v.exit_code(), 1, "case {case} {kind:?} went unnoticed");
        let first = v.problems.first().unwrap();
        if expected != usize::MAX {
            assert_eq!(
                first.at.line,
                expected,
                "case {case} {kind:?}: first problem {}: {} (all: {:?})",
                first.at,
                first.message,
                &v.problems[..v.problems.len().min(4)]
            );
        } else {
            assert!(
                first.message.contains("expected heads reach"),
                "case {case} {kind:?}: {}: {}",
                first.at,
                first.message
            );
        }
        *per_kind.entry(format!("{kind:?}")).or_insert(0) += 1;
    }
    eprintln!("caught at the right line: {per_kind:?}");
    assert_eq!(per_kind.values().sum::<usize>(), cases);
}
