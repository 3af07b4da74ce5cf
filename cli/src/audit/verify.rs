//! `vigil audit verify`: every record's hash and HMAC, then every VM's chain: sequence gaps,
//! duplicates, reorders and broken links, each reported at the line where it shows.
//!
//! Chains are read per `vm_id` in the order the files are given (oldest first) and, within a
//! file, line by line. A problem is reported where the evidence is: a deleted record at the
//! line that follows the hole, an inserted copy at the copy, a record moved earlier at its new
//! place. Deleting the newest records of a chain leaves no hole to see; `--expect-heads` with
//! the heads a previous run wrote (`--write-heads`) closes that gap.

use super::read::{read_file, Entry, FileReading, Location};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use vigil_core::record::check::check;
use vigil_core::record::{RecordKey, SessionRecord, GENESIS_HASH};

/// How to verify.
pub struct Options {
    pub keys: Vec<RecordKey>,
    /// The access-log field carrying the record (`<field>_late` carries late ones).
    pub field: String,
    /// Check chains (off for an export, which holds a selection of records).
    pub chains: bool,
    /// The input starts mid-chain (rotated logs): a chain may start after seq 1.
    pub partial: bool,
    /// Each VM's newest record as a previous verification saw it.
    pub expect_heads: Option<Heads>,
}

/// The newest record of each chain: `vm_id` -> seq and hash.
pub type Heads = BTreeMap<String, Head>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}

/// A record whose hash and HMAC hold.
#[derive(Debug)]
pub struct Authentic {
    pub at: Location,
    pub pos: usize,
    pub value: Value,
    pub record: SessionRecord,
}

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(serialize_with = "display")]
    pub at: Location,
    #[serde(skip)]
    pub pos: usize,
    pub message: String,
}

fn display<S: serde::Serializer>(at: &Location, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&at.to_string())
}

#[derive(Debug, Clone, Serialize)]
pub struct FileSummary {
    pub path: String,
    pub lines: usize,
    pub lines_without_record: usize,
    pub bytes: u64,
    pub sha256: String,
}

/// One VM's chain as found in the input.
#[derive(Debug, Clone, Serialize)]
pub struct ChainSummary {
    pub records: usize,
    pub first_seq: u64,
    pub last_seq: u64,
    pub last_hash: String,
    pub first_started_at: String,
    pub last_started_at: String,
}

/// Everything a verification found.
#[derive(Debug, Default)]
pub struct Verification {
    pub files: Vec<FileSummary>,
    /// Files that could not be read at all, with why.
    pub unreadable: Vec<(String, String)>,
    /// Entries that looked like records (whether or not they verified).
    pub records: usize,
    pub authentic: Vec<Authentic>,
    pub problems: Vec<Problem>,
    pub chains: BTreeMap<String, ChainSummary>,
}

impl Verification {
    /// Positions in the input where a problem was reported.
    pub fn flagged(&self) -> HashSet<usize> {
        self.problems.iter().map(|p| p.pos).collect()
    }

    /// Authentic records with no problem reported at their place: the verified ones.
    pub fn verified(&self) -> impl Iterator<Item = &Authentic> {
        let flagged = self.flagged();
        self.authentic
            .iter()
            .filter(move |a| !flagged.contains(&a.pos))
    }

    pub fn is_clean(&self) -> bool {
        self.problems.is_empty() && self.unreadable.is_empty()
    }

    /// Exit status: 2 when a file could not be read, 1 for problems, else 0.
    pub fn exit_code(&self) -> u8 {
        if !self.unreadable.is_empty() {
            2
        } else if !self.problems.is_empty() {
            1
        } else {
            0
        }
    }

    /// Each chain's newest record, for `--write-heads`.
    pub fn heads(&self) -> Heads {
        self.chains
            .iter()
            .map(|(vm, c)| {
                (
                    vm.clone(),
                    Head {
                        seq: c.last_seq,
                        hash: c.last_hash.clone(),
                    },
                )
            })
            .collect()
    }
}

/// Reads and verifies `paths` in order.
pub fn verify_files(paths: &[PathBuf], options: &Options) -> Verification {
    let mut readings = Vec::new();
    let mut unreadable = Vec::new();
    for path in paths {
        match read_file(path, &options.field) {
            Ok(r) => readings.push((path.display().to_string(), r)),
            Err(e) => unreadable.push((path.display().to_string(), e.to_string())),
        }
    }
    let mut v = verify_readings(readings, options);
    v.unreadable = unreadable;
    v
}

/// Verifies what was read, files in the given order.
pub fn verify_readings(readings: Vec<(String, FileReading)>, options: &Options) -> Verification {
    let mut v = Verification::default();
    let mut entries = Vec::new();
    for (path, reading) in readings {
        v.files.push(FileSummary {
            path,
            lines: reading.lines,
            lines_without_record: reading.lines_without_record,
            bytes: reading.bytes,
            sha256: reading.sha256,
        });
        entries.extend(reading.entries);
    }
    // Hash and HMAC checks are independent per record: spread them over the cores.
    let checked = super::par::map(&entries, |entry| match entry {
        Entry::Record { value, .. } => Some(check(value, &options.keys)),
        Entry::Problem { .. } => None,
    });
    for (i, (entry, result)) in entries.into_iter().zip(checked).enumerate() {
        let pos = i + 1;
        match (entry, result) {
            (Entry::Problem { at, message }, _) => v.problems.push(Problem { at, pos, message }),
            (Entry::Record { at, value }, Some(Ok(checked))) => {
                v.records += 1;
                v.authentic.push(Authentic {
                    at,
                    pos,
                    value,
                    record: checked.record,
                });
            }
            (Entry::Record { at, .. }, Some(Err(fault))) => {
                v.records += 1;
                v.problems.push(Problem {
                    at,
                    pos,
                    message: fault.to_string(),
                });
            }
            (Entry::Record { at, .. }, None) => v.problems.push(Problem {
                at,
                pos,
                message: "record was not checked".into(),
            }),
        }
    }
    if options.chains {
        check_chains(&mut v, options);
    }
    v.problems.sort_by_key(|p| p.pos);
    v
}

/// Position in the input and index into `authentic` of one record of a chain.
#[derive(Clone, Copy)]
struct Link {
    pos: usize,
    index: usize,
}

fn check_chains(v: &mut Verification, options: &Options) {
    let mut by_vm: BTreeMap<&str, BTreeMap<u64, Vec<Link>>> = BTreeMap::new();
    for (index, a) in v.authentic.iter().enumerate() {
        by_vm
            .entry(a.record.vm_id.as_str())
            .or_default()
            .entry(a.record.seq)
            .or_default()
            .push(Link { pos: a.pos, index });
    }
    let mut problems = Vec::new();
    let mut chains = BTreeMap::new();
    for (vm, seqs) in &by_vm {
        let chosen = choose_among_duplicates(v, seqs, &mut problems);
        let at = |link: &Link| &v.authentic[link.index];
        let mut previous: Option<(u64, Link)> = None;
        for (&seq, link) in &chosen {
            let record = &at(link).record;
            let here = |message: String| Problem {
                at: at(link).at.clone(),
                pos: link.pos,
                message,
            };
            match previous {
                None if seq == 1 => {
                    if record.prev_hash != GENESIS_HASH {
                        problems.push(here(format!(
                            "seq 1 of chain {vm} does not start the chain: prev_hash is not the genesis hash"
                        )));
                    }
                }
                None => {
                    if !options.partial {
                        problems.push(here(format!(
                            "chain {vm} starts at seq {seq}: seq 1..{} are not in the input (pass --partial for rotated logs)",
                            seq - 1
                        )));
                    }
                }
                Some((prev_seq, prev_link)) => {
                    let prev = at(&prev_link);
                    if seq > prev_seq + 1 {
                        let missing = if seq == prev_seq + 2 {
                            format!("seq {} is", prev_seq + 1)
                        } else {
                            format!("seq {}..{} are", prev_seq + 1, seq - 1)
                        };
                        problems.push(here(format!(
                            "{missing} missing from chain {vm} (the record before is seq {prev_seq} at {})",
                            prev.at
                        )));
                    } else if record.prev_hash != prev.record.hash {
                        problems.push(here(format!(
                            "does not chain to seq {prev_seq} at {}: prev_hash differs from its hash",
                            prev.at
                        )));
                    }
                    if prev_link.pos > link.pos {
                        problems.push(here(format!(
                            "out of order: seq {seq} of chain {vm} comes before seq {prev_seq} (at {})",
                            prev.at
                        )));
                    }
                }
            }
            previous = Some((seq, *link));
        }
        if let (Some((&first_seq, first)), Some((&last_seq, last))) =
            (chosen.iter().next(), chosen.iter().next_back())
        {
            chains.insert(
                vm.to_string(),
                ChainSummary {
                    records: chosen.len(),
                    first_seq,
                    last_seq,
                    last_hash: at(last).record.hash.clone(),
                    first_started_at: at(first).record.started_at.clone(),
                    last_started_at: at(last).record.started_at.clone(),
                },
            );
        }
        if let Some(heads) = &options.expect_heads {
            if let Some(head) = heads.get(*vm) {
                let end = end_problem(v, String::new());
                check_head(vm, head, &chosen, &|l: &Link| at(l), &end, &mut problems);
            }
        }
    }
    if let Some(heads) = &options.expect_heads {
        for (vm, head) in heads {
            if !by_vm.contains_key(vm.as_str()) {
                problems.push(end_problem(
                    v,
                    format!(
                        "chain {vm} is not in the input, but the expected heads list it at seq {}",
                        head.seq
                    ),
                ));
            }
        }
    }
    v.chains = chains;
    v.problems.extend(problems);
}

/// Picks, for every seq, the copy that belongs in the chain: the one that links to its
/// predecessor and that its successor links to, then the one that sits between them in the
/// input. The other copies are reported where they are.
fn choose_among_duplicates(
    v: &Verification,
    seqs: &BTreeMap<u64, Vec<Link>>,
    problems: &mut Vec<Problem>,
) -> BTreeMap<u64, Link> {
    let mut chosen = BTreeMap::new();
    for (&seq, links) in seqs {
        let link = if links.len() == 1 {
            links[0]
        } else {
            let record = |l: &Link| &v.authentic[l.index].record;
            let pred = seq.checked_sub(1).and_then(|s| seqs.get(&s));
            let succ = seqs.get(&(seq + 1));
            let before = pred.map(|l| l[0].pos).unwrap_or(0);
            let after = succ.map(|l| l[0].pos).unwrap_or(usize::MAX);
            let score = |l: &Link| {
                let r = record(l);
                let linked_from = pred
                    .is_some_and(|p| p.iter().any(|p| record(p).hash == r.prev_hash))
                    || (seq == 1 && r.prev_hash == GENESIS_HASH);
                let linked_to =
                    succ.is_some_and(|s| s.iter().any(|s| record(s).prev_hash == r.hash));
                let in_place = l.pos > before && l.pos < after;
                (linked_from as u8 + linked_to as u8, in_place)
            };
            // Highest score; the first in the input among equals.
            let fits = links
                .iter()
                .copied()
                .fold(None::<Link>, |best, l| match best {
                    Some(b) if score(&b) >= score(&l) => Some(b),
                    _ => Some(l),
                })
                .unwrap_or(links[0]);
            let kept = &v.authentic[fits.index];
            for other in links.iter().filter(|l| l.pos != fits.pos) {
                let a = &v.authentic[other.index];
                let message = if a.record.hash == kept.record.hash {
                    format!("duplicate of the record at {} (seq {seq})", kept.at)
                } else {
                    format!(
                        "a second record claims seq {seq} of chain {} (the one that chains is at {})",
                        a.record.vm_id, kept.at
                    )
                };
                problems.push(Problem {
                    at: a.at.clone(),
                    pos: other.pos,
                    message,
                });
            }
            fits
        };
        chosen.insert(seq, link);
    }
    chosen
}

fn check_head<'a>(
    vm: &str,
    head: &Head,
    chosen: &BTreeMap<u64, Link>,
    at: &dyn Fn(&Link) -> &'a Authentic,
    end: &Problem,
    problems: &mut Vec<Problem>,
) {
    let Some((&last_seq, last)) = chosen.iter().next_back() else {
        return;
    };
    if last_seq < head.seq {
        // The hole is at the end of the input, after the chain's newest record.
        problems.push(Problem {
            message: format!(
                "chain {vm} ends at seq {last_seq} ({}), but the expected heads reach seq {}: seq {}..{} are missing",
                at(last).at,
                head.seq,
                last_seq + 1,
                head.seq
            ),
            ..end.clone()
        });
    } else if let Some(link) = chosen.get(&head.seq) {
        let a = at(link);
        if a.record.hash != head.hash {
            problems.push(Problem {
                at: a.at.clone(),
                pos: link.pos,
                message: format!(
                    "seq {} of chain {vm} is not the record the expected heads name (hash differs)",
                    head.seq
                ),
            });
        }
    }
}

/// A problem about the input as a whole, placed after its last entry.
fn end_problem(v: &Verification, message: String) -> Problem {
    let file = v.files.last().map(|f| f.path.clone()).unwrap_or_default();
    let line = v.files.last().map(|f| f.lines).unwrap_or(0);
    Problem {
        at: Location {
            file,
            line,
            item: Some("end of input".into()),
        },
        pos: usize::MAX,
        message,
    }
}

/// Reads a heads file written by `--write-heads`.
pub fn read_heads(path: &std::path::Path) -> Result<Heads, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not a heads file ({e})", path.display()))
}
