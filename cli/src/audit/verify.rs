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
use vigil_core::record::check::{check, check_unkeyed};
use vigil_core::record::checkpoint::{self, Checkpoint, PublicKey, Trigger};
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
    /// Signed checkpoints: the public keys, and how long a chain may go without one.
    pub checkpoints: CheckpointOptions,
}

/// What `--public-key`, `--max-gap-s` and `--to` ask of the checkpoints.
#[derive(Debug, Clone, Default)]
pub struct CheckpointOptions {
    /// Checkpoint public keys (rotation: several); none: signatures are not checked.
    pub public_keys: Vec<PublicKey>,
    /// Report a chain whose checkpoints stop more than this many seconds before the end.
    pub max_gap_s: Option<u64>,
    /// The end of the period being verified (RFC 3339); default: the newest entry of the
    /// chain's Envoy (chains sharing its plugin_vm_id) in the input.
    pub period_end: Option<String>,
    /// Envoy's own log files (`--envoy-log`): checkpoints logged there as they were made.
    pub envoy_logs: Vec<PathBuf>,
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

/// A checkpoint whose hash (and signature, when public keys are given) holds.
#[derive(Debug)]
pub struct CheckpointSeen {
    pub at: Location,
    pub pos: usize,
    pub value: Value,
    pub checkpoint: Checkpoint,
    /// Its signature was checked with a public key given.
    pub signed: bool,
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
    /// Checkpoints in the chain.
    pub checkpoints: usize,
    /// The newest checkpoint whose signature was verified: every entry up to its seq is fixed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_through: Option<Signed>,
    /// Session records after the newest verified checkpoint: not yet covered by a signature.
    pub not_yet_covered: usize,
    /// The chain ends with a shutdown checkpoint.
    pub ended: bool,
}

/// The newest signed position of a chain.
#[derive(Debug, Clone, Serialize)]
pub struct Signed {
    pub seq: u64,
    pub hash: String,
    pub at: String,
    pub key_id: String,
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
    pub checkpoints: Vec<CheckpointSeen>,
    pub problems: Vec<Problem>,
    /// Records were checked by hash and chain only: no record key was given.
    pub hmac_unchecked: bool,
    /// Checkpoint signatures were checked: public keys were given.
    pub signatures_checked: bool,
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

/// Reads and verifies `paths` in order, then Envoy's logs (`--envoy-log`) for checkpoints.
pub fn verify_files(paths: &[PathBuf], options: &Options) -> Verification {
    let mut readings = Vec::new();
    let mut unreadable = Vec::new();
    for path in paths {
        match read_file(path, &options.field) {
            Ok(r) => readings.push((path.display().to_string(), r)),
            Err(e) => unreadable.push((path.display().to_string(), e.to_string())),
        }
    }
    for path in &options.checkpoints.envoy_logs {
        match super::read::read_envoy_log(path) {
            Ok(r) => readings.push((path.display().to_string(), r)),
            Err(e) => unreadable.push((path.display().to_string(), e.to_string())),
        }
    }
    let mut v = verify_readings(readings, options);
    v.unreadable = unreadable;
    v
}

/// What one entry checked out as. A record's result is as large as it was before checkpoints
/// existed; boxing it would add an allocation per record to the hot loop for nothing.
#[allow(clippy::large_enum_variant)]
enum Checked {
    Record(Result<vigil_core::record::check::Checked, String>),
    Checkpoint(Result<checkpoint::CheckedCheckpoint, String>),
}

/// Verifies what was read, files in the given order.
pub fn verify_readings(readings: Vec<(String, FileReading)>, options: &Options) -> Verification {
    let mut v = Verification {
        hmac_unchecked: options.keys.is_empty(),
        signatures_checked: !options.checkpoints.public_keys.is_empty(),
        ..Verification::default()
    };
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
    // Hash, HMAC and signature checks are independent per entry: spread them over the cores.
    let public = &options.checkpoints.public_keys;
    let checked = super::par::map(&entries, |entry| match entry {
        Entry::Record { value, .. } if checkpoint::is_checkpoint(value) => {
            Some(Checked::Checkpoint(
                checkpoint::check(value, &options.keys, public).map_err(|e| e.to_string()),
            ))
        }
        Entry::Record { value, .. } if options.keys.is_empty() => Some(Checked::Record(
            check_unkeyed(value).map_err(|e| e.to_string()),
        )),
        Entry::Record { value, .. } => Some(Checked::Record(
            check(value, &options.keys).map_err(|e| e.to_string()),
        )),
        Entry::Problem { .. } => None,
    });
    // The same checkpoint arrives twice when Envoy's log is read beside the access log.
    let mut seen_checkpoints = HashSet::new();
    for (i, (entry, result)) in entries.into_iter().zip(checked).enumerate() {
        let pos = i + 1;
        match (entry, result) {
            (Entry::Problem { at, message }, _) => v.problems.push(Problem { at, pos, message }),
            (Entry::Record { at, value }, Some(Checked::Record(Ok(checked)))) => {
                v.records += 1;
                v.authentic.push(Authentic {
                    at,
                    pos,
                    value,
                    record: checked.record,
                });
            }
            (Entry::Record { at, value }, Some(Checked::Checkpoint(Ok(c)))) => {
                let key = (
                    c.checkpoint.vm_id.clone(),
                    c.checkpoint.seq,
                    c.checkpoint.hash.clone(),
                );
                if seen_checkpoints.insert(key) {
                    v.checkpoints.push(CheckpointSeen {
                        at,
                        pos,
                        value,
                        checkpoint: c.checkpoint,
                        signed: c.signed,
                    });
                }
            }
            (Entry::Record { at, .. }, Some(Checked::Record(Err(message)))) => {
                v.records += 1;
                v.problems.push(Problem { at, pos, message });
            }
            (Entry::Record { at, .. }, Some(Checked::Checkpoint(Err(message)))) => {
                v.problems.push(Problem { at, pos, message });
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

/// One entry of a chain, record or checkpoint: where it is and how it links.
#[derive(Clone, Copy)]
struct Link {
    pos: usize,
    index: usize,
    checkpoint: bool,
}

/// What the chain check reads of an entry.
struct Node<'a> {
    at: &'a Location,
    vm: &'a str,
    prev_hash: &'a str,
    hash: &'a str,
    /// When it was made (a record's start, a checkpoint's time).
    time: &'a str,
    /// `record` or `checkpoint`, as messages name it.
    noun: &'static str,
}

fn node<'a>(v: &'a Verification, l: &Link) -> Node<'a> {
    if l.checkpoint {
        let c = &v.checkpoints[l.index];
        Node {
            at: &c.at,
            vm: &c.checkpoint.vm_id,
            prev_hash: &c.checkpoint.prev_hash,
            hash: &c.checkpoint.hash,
            time: &c.checkpoint.at,
            noun: "checkpoint",
        }
    } else {
        let a = &v.authentic[l.index];
        Node {
            at: &a.at,
            vm: &a.record.vm_id,
            prev_hash: &a.record.prev_hash,
            hash: &a.record.hash,
            time: &a.record.started_at,
            noun: "record",
        }
    }
}

fn check_chains(v: &mut Verification, options: &Options) {
    let mut by_vm: BTreeMap<String, BTreeMap<u64, Vec<Link>>> = BTreeMap::new();
    let records = v.authentic.iter().enumerate().map(|(index, a)| {
        (
            a.record.vm_id.clone(),
            a.record.seq,
            Link {
                pos: a.pos,
                index,
                checkpoint: false,
            },
        )
    });
    let checkpoints = v.checkpoints.iter().enumerate().map(|(index, c)| {
        (
            c.checkpoint.vm_id.clone(),
            c.checkpoint.seq,
            Link {
                pos: c.pos,
                index,
                checkpoint: true,
            },
        )
    });
    for (vm, seq, link) in records.chain(checkpoints) {
        by_vm
            .entry(vm)
            .or_default()
            .entry(seq)
            .or_default()
            .push(link);
    }
    let mut problems = Vec::new();
    let mut chains = BTreeMap::new();
    for (vm, seqs) in &by_vm {
        let chosen = choose_among_duplicates(v, seqs, &mut problems);
        let mut previous: Option<(u64, Link)> = None;
        for (&seq, link) in &chosen {
            let here_node = node(v, link);
            let here = |message: String| Problem {
                at: here_node.at.clone(),
                pos: link.pos,
                message,
            };
            match previous {
                None if seq == 1 => {
                    if here_node.prev_hash != GENESIS_HASH {
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
                    let prev = node(v, &prev_link);
                    if seq > prev_seq + 1 {
                        let missing = if seq == prev_seq + 2 {
                            format!("seq {} is", prev_seq + 1)
                        } else {
                            format!("seq {}..{} are", prev_seq + 1, seq - 1)
                        };
                        problems.push(here(format!(
                            "{missing} missing from chain {vm} (the {} before is seq {prev_seq} at {})",
                            prev.noun, prev.at
                        )));
                    } else if here_node.prev_hash != prev.hash {
                        problems.push(here(format!(
                            "does not chain to seq {prev_seq} at {}: prev_hash differs from its hash",
                            prev.at
                        )));
                    }
                    // Order is read between records: checkpoints travel apart (in Envoy's
                    // log, on a later line, in an export's own file); their place in the
                    // chain is fixed by its hashes.
                    if prev_link.pos > link.pos && !prev_link.checkpoint && !link.checkpoint {
                        problems.push(here(format!(
                            "out of order: seq {seq} of chain {vm} comes before seq {prev_seq} (at {})",
                            prev.at
                        )));
                    }
                }
            }
            previous = Some((seq, *link));
        }
        let summary = summarize(v, &chosen, options.partial, &mut problems);
        if let Some(summary) = summary {
            chains.insert(vm.to_string(), summary);
        }
        if let Some(heads) = &options.expect_heads {
            if let Some(head) = heads.get(vm.as_str()) {
                let end = end_problem(v, String::new());
                check_head(v, vm, head, &chosen, &end, &mut problems);
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
    if let Some(max_gap_s) = options.checkpoints.max_gap_s {
        silences(
            v,
            &chains,
            max_gap_s,
            options.checkpoints.period_end.as_deref(),
            &mut problems,
        );
    }
    v.chains = chains;
    v.problems.extend(problems);
}

/// A chain's summary, and the checkpoints' own links: each follows the previous checkpoint
/// and counts the records between them.
fn summarize(
    v: &Verification,
    chosen: &BTreeMap<u64, Link>,
    partial: bool,
    problems: &mut Vec<Problem>,
) -> Option<ChainSummary> {
    let (&first_seq, first) = chosen.iter().next()?;
    let (&last_seq, last) = chosen.iter().next_back()?;
    let mut last_checkpoint: Option<&CheckpointSeen> = None;
    let mut records_since = 0u64;
    // Before the first checkpoint of a partial input, the count is unknown.
    let mut counting = first_seq == 1 || !partial;
    let mut signed_through = None;
    let mut checkpoints = 0;
    let mut records = 0;
    let mut uncovered = 0;
    for link in chosen.values() {
        if !link.checkpoint {
            records += 1;
            records_since += 1;
            uncovered += 1;
            continue;
        }
        checkpoints += 1;
        let c = &v.checkpoints[link.index];
        let expected_prev = last_checkpoint.map_or(GENESIS_HASH, |p| p.checkpoint.hash.as_str());
        let here = |message: String| Problem {
            at: c.at.clone(),
            pos: link.pos,
            message,
        };
        if (last_checkpoint.is_some() || counting) && c.checkpoint.prev_checkpoint != expected_prev
        {
            problems.push(here(format!(
                "checkpoint seq {} does not follow the previous checkpoint{}: a checkpoint between them is missing or was replaced",
                c.checkpoint.seq,
                last_checkpoint
                    .map(|p| format!(" (seq {} at {})", p.checkpoint.seq, p.at))
                    .unwrap_or_default()
            )));
        } else if counting && c.checkpoint.records != records_since {
            problems.push(here(format!(
                "checkpoint seq {} counts {} record(s) since the previous checkpoint; the chain has {records_since}",
                c.checkpoint.seq, c.checkpoint.records
            )));
        }
        if c.signed {
            signed_through = Some(Signed {
                seq: c.checkpoint.seq,
                hash: c.checkpoint.hash.clone(),
                at: c.checkpoint.at.clone(),
                key_id: c.checkpoint.signing_key_id.clone(),
            });
            uncovered = 0;
        }
        last_checkpoint = Some(c);
        records_since = 0;
        counting = true;
    }
    let (first_node, last_node) = (node(v, first), node(v, last));
    Some(ChainSummary {
        records,
        first_seq,
        last_seq,
        last_hash: last_node.hash.to_string(),
        first_started_at: first_node.time.to_string(),
        last_started_at: last_node.time.to_string(),
        checkpoints,
        signed_through,
        not_yet_covered: uncovered,
        ended: last_checkpoint
            .is_some_and(|c| c.checkpoint.trigger == Trigger::Shutdown && last.checkpoint),
    })
}

/// Chains whose checkpoints stop more than `max_gap_s` before the end of the period: the end
/// given (`--to`), or the newest entry among the chains of the same Envoy (the same
/// plugin_vm_id, the part of vm_id before `#`). A chain that ended with a shutdown checkpoint
/// is closed, not silent.
fn silences(
    v: &Verification,
    chains: &BTreeMap<String, ChainSummary>,
    max_gap_s: u64,
    period_end: Option<&str>,
    problems: &mut Vec<Problem>,
) {
    let nanos = |t: &str| vigil_core::time::parse_rfc3339(t).ok();
    let envoy = |vm: &str| vm.split('#').next().unwrap_or(vm).to_string();
    // The newest time each chain shows: its last checkpoint, or a record's end.
    let mut newest: BTreeMap<&str, u64> = BTreeMap::new();
    let mut last_checkpoint: BTreeMap<&str, (u64, &CheckpointSeen)> = BTreeMap::new();
    for a in &v.authentic {
        let t = nanos(&a.record.ended_at).unwrap_or(0);
        let e = newest.entry(a.record.vm_id.as_str()).or_default();
        *e = (*e).max(t);
    }
    for c in &v.checkpoints {
        let t = nanos(&c.checkpoint.at).unwrap_or(0);
        let e = newest.entry(c.checkpoint.vm_id.as_str()).or_default();
        *e = (*e).max(t);
        let l = last_checkpoint
            .entry(c.checkpoint.vm_id.as_str())
            .or_insert((t, c));
        if c.checkpoint.seq > l.1.checkpoint.seq {
            *l = (t, c);
        }
    }
    let given_end = period_end.and_then(nanos);
    for (vm, summary) in chains {
        if summary.ended {
            continue;
        }
        let (end, end_is) = match given_end {
            Some(t) => (
                t,
                format!("the end of the period ({})", period_end.unwrap_or_default()),
            ),
            None => {
                let same: Vec<(&&str, &u64)> = newest
                    .iter()
                    .filter(|(other, _)| envoy(other) == envoy(vm))
                    .collect();
                match same.iter().max_by_key(|(_, t)| **t) {
                    Some((other, t)) if *other != vm => (
                        **t,
                        format!("the newest entry of chain {other} of the same Envoy"),
                    ),
                    Some((_, t)) => (**t, "the chain's own newest record".to_string()),
                    None => continue,
                }
            }
        };
        let (since, what) = match last_checkpoint.get(vm.as_str()) {
            Some((t, c)) => (
                *t,
                format!(
                    "its last checkpoint is seq {} at {} ({})",
                    c.checkpoint.seq, c.checkpoint.at, c.at
                ),
            ),
            None => (
                nanos(&summary.first_started_at).unwrap_or(0),
                format!("it has no checkpoint since {}", summary.first_started_at),
            ),
        };
        let gap_s = end.saturating_sub(since) / 1_000_000_000;
        if gap_s > max_gap_s {
            problems.push(end_problem(
                v,
                format!(
                    "chain {vm} has no checkpoint in the last {gap_s} s before {end_is} (--max-gap-s {max_gap_s}): {what}; records were deleted from its tail, or the worker went silent"
                ),
            ));
        }
    }
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
            let pred = seq.checked_sub(1).and_then(|s| seqs.get(&s));
            let succ = seqs.get(&(seq + 1));
            let before = pred.map(|l| l[0].pos).unwrap_or(0);
            let after = succ.map(|l| l[0].pos).unwrap_or(usize::MAX);
            let score = |l: &Link| {
                let r = node(v, l);
                let linked_from = pred
                    .is_some_and(|p| p.iter().any(|p| node(v, p).hash == r.prev_hash))
                    || (seq == 1 && r.prev_hash == GENESIS_HASH);
                let linked_to =
                    succ.is_some_and(|s| s.iter().any(|s| node(v, s).prev_hash == r.hash));
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
            let kept = node(v, &fits);
            for other in links.iter().filter(|l| l.pos != fits.pos) {
                let a = node(v, other);
                let message = if a.hash == kept.hash {
                    format!("duplicate of the {} at {} (seq {seq})", kept.noun, kept.at)
                } else {
                    format!(
                        "a second {} claims seq {seq} of chain {} (the one that chains is at {})",
                        a.noun, a.vm, kept.at
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

fn check_head(
    v: &Verification,
    vm: &str,
    head: &Head,
    chosen: &BTreeMap<u64, Link>,
    end: &Problem,
    problems: &mut Vec<Problem>,
) {
    let Some((&last_seq, last)) = chosen.iter().next_back() else {
        return;
    };
    if last_seq < head.seq {
        // The hole is at the end of the input, after the chain's newest entry.
        problems.push(Problem {
            message: format!(
                "chain {vm} ends at seq {last_seq} ({}), but the expected heads reach seq {}: seq {}..{} are missing",
                node(v, last).at,
                head.seq,
                last_seq + 1,
                head.seq
            ),
            ..end.clone()
        });
    } else if let Some(link) = chosen.get(&head.seq) {
        let a = node(v, link);
        if a.hash != head.hash {
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
