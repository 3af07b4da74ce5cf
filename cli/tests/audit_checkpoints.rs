//! `vigil audit verify --public-key`: chains written by vigil.wasm with signed checkpoints,
//! verified by an examiner who holds only the checkpoint public key. Each way of hiding
//! something is caught and named with file and line: an edited record, an edited checkpoint,
//! a deleted checkpoint, a checkpoint forged under another key, a cut tail and a silent
//! worker; an idle worker whose heartbeats are in Envoy's log is not silent; rotated keys
//! verify together.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use vigil_core::record::checkpoint::SigningKey;
use vigil_host::traffic::{checkpoint_policy, envoy_log_lines, exchange_line};
use vigil_host::{Vm, VmOptions, TEST_CHECKPOINT_KEY, TEST_RECORD_KEY};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vigil-cp-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(d: &Path, name: &str, lines: &[String]) -> PathBuf {
    let p = d.join(name);
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

/// The examiner's public key file.
fn public_key(d: &Path, key: &str) -> PathBuf {
    let p = d.join(format!("checkpoint-{}.pub", &key[..6]));
    std::fs::write(&p, SigningKey::new(key).unwrap().public_key().file_text()).unwrap();
    p
}

/// `vigil audit verify` with no record key in the environment: the examiner's position.
fn verify(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .env_remove(TEST_RECORD_KEY.0)
        .args(["audit", "verify"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap() + &String::from_utf8(out.stderr).unwrap(),
    )
}

/// 40 exchanges on two VMs, a checkpoint every 5 records per VM.
fn traffic() -> Vec<String> {
    vigil_host::traffic::records_under_policy(
        vigil_plugin(),
        &checkpoint_policy(5, 3600),
        40,
        2,
        0,
        0,
    )
    .unwrap()
}

fn record_of(line: &str) -> Value {
    let v: Value = serde_json::from_str(line).unwrap();
    serde_json::from_str(v["vigil_record"].as_str().unwrap()).unwrap()
}

fn carried(line: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(line).unwrap();
    v["vigil_record_checkpoints"]
        .as_str()
        .map(|s| serde_json::from_str(s).unwrap())
        .unwrap_or_default()
}

fn set_carried(line: &str, checkpoints: &[Value]) -> String {
    let mut v: Value = serde_json::from_str(line).unwrap();
    v["vigil_record_checkpoints"] = if checkpoints.is_empty() {
        Value::Null
    } else {
        Value::String(Value::Array(checkpoints.to_vec()).to_string())
    };
    v.to_string()
}

/// The index of the first line carrying a checkpoint made after N records (not the start).
fn line_with_records_checkpoint(lines: &[String], from: usize) -> usize {
    (from..lines.len())
        .find(|&i| carried(&lines[i]).iter().any(|c| c["trigger"] == "records"))
        .unwrap()
}

#[test]
fn a_chain_verifies_with_the_public_key_alone() {
    let d = dir("clean");
    let key = public_key(&d, TEST_CHECKPOINT_KEY.1);
    let f = write(&d, "records.jsonl", &traffic());
    let (code, out) = verify(&["--public-key", key.to_str().unwrap(), f.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("HMACs not checked (no record key given)"),
        "{out}"
    );
    // Each VM: start checkpoint, then one every 5 records: 20 records, 5 checkpoints; the
    // newest covers everything.
    assert_eq!(
        out.matches("5 checkpoint(s); signed through seq 25")
            .count(),
        2,
        "{out}"
    );
    assert!(
        out.contains("0 record(s) after it not yet covered"),
        "{out}"
    );
    // Without the key, the same command cannot vouch for anything: it needs a key.
    let (code, out) = verify(&[f.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{out}");
    // With the record key too, HMACs are checked as well.
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .env(TEST_RECORD_KEY.0, TEST_RECORD_KEY.1)
        .args([
            "audit",
            "verify",
            "--public-key",
            key.to_str().unwrap(),
            f.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!text.contains("HMACs not checked"), "{text}");
    assert!(
        text.contains("verified: every record is authentic"),
        "{text}"
    );
    // The record key alone: checkpoints chain and carry HMACs, their signatures unchecked.
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .env(TEST_RECORD_KEY.0, TEST_RECORD_KEY.1)
        .args(["audit", "verify", f.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(
        text.matches("5 checkpoint(s); signatures not checked (no --public-key)")
            .count(),
        2,
        "{text}"
    );
}

#[test]
fn records_after_the_last_checkpoint_are_named_not_yet_covered() {
    let d = dir("tail");
    let key = public_key(&d, TEST_CHECKPOINT_KEY.1);
    let mut lines = traffic();
    lines.extend(
        vigil_host::traffic::records_under_policy(
            vigil_plugin(),
            &checkpoint_policy(5, 3600),
            46,
            2,
            0,
            0,
        )
        .unwrap()
        .split_off(40),
    );
    let f = write(&d, "records.jsonl", &lines);
    let (code, out) = verify(&["--public-key", key.to_str().unwrap(), f.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        out.matches("3 record(s) after it not yet covered").count(),
        2,
        "{out}"
    );
}

#[test]
fn an_edited_record_a_checkpoint_edited_deleted_or_forged_are_each_named_at_their_line() {
    let d = dir("tamper");
    let key = public_key(&d, TEST_CHECKPOINT_KEY.1);
    let k = key.to_str().unwrap().to_string();
    let clean = traffic();
    let name = |f: &Path, line: usize| format!("{}:{line}", f.display());

    // A covered record edited, its hash recomputed: the next entry no longer chains to it.
    let mut lines = clean.clone();
    let mut line: Value = serde_json::from_str(&lines[6]).unwrap();
    let mut r = record_of(&lines[6]);
    r["model"] = "llama-3-8b".into();
    r["hash"] =
        vigil_core::digest::sha256_hex(&vigil_core::record::chain::canonical_bytes(&r)).into();
    line["vigil_record"] = r.to_string().into();
    lines[6] = line.to_string();
    let f = write(&d, "edited-record.jsonl", &lines);
    let (code, out) = verify(&["--public-key", &k, f.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!("{}: does not chain to seq", name(&f, 9))),
        "{out}"
    );

    // A checkpoint edited: its hash no longer matches; re-hashed: its signature fails.
    let i = line_with_records_checkpoint(&clean, 0);
    let mut cps = carried(&clean[i]);
    let j = cps.iter().position(|c| c["trigger"] == "records").unwrap();
    cps[j]["records"] = 4.into();
    let mut lines = clean.clone();
    lines[i] = set_carried(&clean[i], &cps);
    let f = write(&d, "edited-checkpoint.jsonl", &lines);
    let (code, out) = verify(&["--public-key", &k, f.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "{} (checkpoint {}): checkpoint content does not match its hash",
            name(&f, i + 1),
            j + 1
        )),
        "{out}"
    );
    cps[j]["hash"] =
        vigil_core::digest::sha256_hex(&vigil_core::record::checkpoint::canonical_bytes(&cps[j]))
            .into();
    lines[i] = set_carried(&clean[i], &cps);
    let f = write(&d, "resigned-checkpoint.jsonl", &lines);
    let (_, out) = verify(&["--public-key", &k, f.to_str().unwrap()]);
    assert!(
        out.contains("checkpoint signature does not verify under key"),
        "{out}"
    );

    // A checkpoint deleted: a gap in the chain, and the next checkpoint does not follow.
    let mut lines = clean.clone();
    let deleted_seq = carried(&clean[i])[j]["seq"].as_u64().unwrap();
    let mut cps = carried(&clean[i]);
    cps.remove(j);
    lines[i] = set_carried(&clean[i], &cps);
    let f = write(&d, "deleted-checkpoint.jsonl", &lines);
    let (code, out) = verify(&["--public-key", &k, f.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!("seq {deleted_seq} is missing from chain")),
        "{out}"
    );
    assert!(
        out.contains("does not follow the previous checkpoint"),
        "{out}"
    );

    // A checkpoint forged under another key, the chain otherwise intact.
    let other = SigningKey::from_seed([42; 32]).unwrap();
    let mut forged: vigil_core::record::checkpoint::Checkpoint =
        serde_json::from_value(carried(&clean[i])[j].clone()).unwrap();
    forged.sign(&key_of_tests(), &other);
    let mut cps = carried(&clean[i]);
    cps[j] = serde_json::to_value(&forged).unwrap();
    let mut lines = clean.clone();
    lines[i] = set_carried(&clean[i], &cps);
    let f = write(&d, "forged-checkpoint.jsonl", &lines);
    let (code, out) = verify(&["--public-key", &k, f.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "{} (checkpoint {}): checkpoint signed with key {}, which was not given (--public-key)",
            name(&f, i + 1),
            j + 1,
            other.id()
        )),
        "{out}"
    );
}

fn key_of_tests() -> vigil_core::record::RecordKey {
    vigil_core::record::RecordKey::new(TEST_RECORD_KEY.1.as_bytes()).unwrap()
}

/// Two workers of one Envoy (the same plugin_vm_id), checkpointing every 60 s: worker A
/// serves a request every 30 s for 20 minutes; worker B serves for the first 5 minutes, then
/// none. Returns the access log and B's Envoy log (its heartbeats while idle).
fn two_workers(every_s: u64) -> (Vec<String>, Vec<String>) {
    let start = |seed: u64| {
        Vm::start(
            vigil_plugin(),
            VmOptions {
                plugin_config: checkpoint_policy(1000, every_s).into_bytes(),
                random_seed: seed,
                now_nanos: 1_795_000_000_000_000_000,
                ..VmOptions::with_record_key()
            },
        )
        .unwrap()
    };
    let (mut a, mut b) = (start(1), start(2));
    let mut lines = Vec::new();
    let mut b_log = Vec::new();
    for i in 0..40 {
        a.advance(30_000_000_000).unwrap();
        b.advance(30_000_000_000).unwrap();
        lines.push(exchange_line(&mut a, 2 * i, false).unwrap());
        if i < 10 {
            lines.push(exchange_line(&mut b, 2 * i + 1, false).unwrap());
        }
        b_log.extend(envoy_log_lines(&mut b));
    }
    (lines, b_log)
}

#[test]
fn a_cut_tail_and_a_silent_worker_are_reported_and_an_idle_one_with_its_log_is_not() {
    let d = dir("gaps");
    let key = public_key(&d, TEST_CHECKPOINT_KEY.1);
    let k = key.to_str().unwrap().to_string();
    let (lines, b_log) = two_workers(60);
    let f = write(&d, "records.jsonl", &lines);
    let log = write(&d, "envoy.log", &b_log);

    // B went quiet after 5 minutes; A went on for 20. Without Envoy's log, B looks silent.
    let (code, out) = verify(&[
        "--public-key",
        &k,
        "--max-gap-s",
        "180",
        f.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("has no checkpoint in the last") && out.contains("of the same Envoy"),
        "{out}"
    );
    assert!(out.contains("the worker went silent"), "{out}");
    assert_eq!(
        out.matches("has no checkpoint in the last").count(),
        1,
        "only B: {out}"
    );
    // With Envoy's log, B's idle heartbeats show it was alive and had nothing to log.
    let (code, out) = verify(&[
        "--public-key",
        &k,
        "--max-gap-s",
        "180",
        "--envoy-log",
        log.to_str().unwrap(),
        f.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}");

    // A's last 8 minutes deleted (its records and the checkpoints they carry): A's chain
    // stops while B's heartbeats go on.
    let a_vm = record_of(&lines[0])["vm_id"].as_str().unwrap().to_string();
    let cut: Vec<String> = lines
        .iter()
        .enumerate()
        .filter(|(i, l)| *i < lines.len() - 16 || record_of(l)["vm_id"] != a_vm.as_str())
        .map(|(_, l)| l.clone())
        .collect();
    let f = write(&d, "cut.jsonl", &cut);
    let (code, out) = verify(&[
        "--public-key",
        &k,
        "--max-gap-s",
        "180",
        "--envoy-log",
        log.to_str().unwrap(),
        f.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!("chain {a_vm} has no checkpoint in the last")),
        "{out}"
    );
    assert!(out.contains("records were deleted from its tail"), "{out}");
    // The period's end given: both chains' ends are judged against it.
    let (code, out) = verify(&[
        "--public-key",
        &k,
        "--max-gap-s",
        "180",
        "--to",
        "2026-11-18T12:00:00Z",
        "--envoy-log",
        log.to_str().unwrap(),
        f.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("before the end of the period (2026-11-18T12:00:00Z)"),
        "{out}"
    );
}

#[test]
fn a_rotated_checkpoint_key_verifies_with_both_public_keys() {
    let d = dir("rotation");
    let old = public_key(&d, TEST_CHECKPOINT_KEY.1);
    let new_key = SigningKey::from_seed([77; 32]).unwrap();
    let new = public_key(&d, &new_key.secret_text());
    // Before the rotation: the test key; after: a new key, new VMs (chains) under it.
    let mut lines = traffic();
    let mut policy: Value = serde_json::from_str(&checkpoint_policy(5, 3600)).unwrap();
    policy["record"]["checkpoint"]["key_id"] = new_key.id().into();
    let mut vm = Vm::start(
        vigil_plugin(),
        VmOptions {
            plugin_config: policy.to_string().into_bytes(),
            random_seed: 99,
            env: vec![
                (TEST_RECORD_KEY.0.into(), TEST_RECORD_KEY.1.into()),
                (TEST_CHECKPOINT_KEY.0.into(), new_key.secret_text()),
            ],
            ..VmOptions::default()
        },
    )
    .unwrap();
    for i in 0..10 {
        lines.push(exchange_line(&mut vm, 100 + i, false).unwrap());
    }
    let f = write(&d, "records.jsonl", &lines);
    let (code, out) = verify(&[
        "--public-key",
        old.to_str().unwrap(),
        "--public-key",
        new.to_str().unwrap(),
        f.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(&format!("key {})", new_key.id())), "{out}");
    // Only the old key: the new chain's checkpoints are named as signed by a key not given.
    let (code, out) = verify(&["--public-key", old.to_str().unwrap(), f.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "checkpoint signed with key {}, which was not given",
            new_key.id()
        )),
        "{out}"
    );
}

#[test]
fn keygen_writes_a_key_the_filter_signs_with_and_a_public_key_that_verifies_its_chain() {
    let d = dir("keygen");
    let secret = d.join("checkpoint.key");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(["audit", "keygen", "checkpoint", "--out"])
            .arg(&secret)
            .output()
            .unwrap()
    };
    let out = run();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{text}");
    let id = text
        .split("\"key_id\": \"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let again = run();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwritten"));

    let seed = std::fs::read_to_string(&secret).unwrap().trim().to_string();
    let mut policy: Value = serde_json::from_str(&checkpoint_policy(3, 3600)).unwrap();
    policy["record"]["checkpoint"]["key_id"] = id.into();
    let mut vm = Vm::start(
        vigil_plugin(),
        VmOptions {
            plugin_config: policy.to_string().into_bytes(),
            env: vec![
                (TEST_RECORD_KEY.0.into(), TEST_RECORD_KEY.1.into()),
                (TEST_CHECKPOINT_KEY.0.into(), seed),
            ],
            ..VmOptions::default()
        },
    )
    .unwrap();
    let lines: Vec<String> = (0..6)
        .map(|i| exchange_line(&mut vm, i, false).unwrap())
        .collect();
    let f = write(&d, "records.jsonl", &lines);
    let public = d.join("checkpoint.key.pub");
    let (code, out) = verify(&[
        "--public-key",
        public.to_str().unwrap(),
        f.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("signed through seq 9"), "{out}");
}

#[test]
fn the_examiner_export_carries_the_checkpoints_and_says_per_chain_what_a_signature_covers() {
    let d = dir("export");
    let key = public_key(&d, TEST_CHECKPOINT_KEY.1);
    let f = write(&d, "records.jsonl", &traffic());
    let out_dir = d.join("exam");
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .env_remove(TEST_RECORD_KEY.0)
        .args([
            "audit",
            "export",
            "--public-key",
            key.to_str().unwrap(),
            "--out",
        ])
        .arg(&out_dir)
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("manifest.json")).unwrap())
            .unwrap();
    let public_id = SigningKey::new(TEST_CHECKPOINT_KEY.1)
        .unwrap()
        .id()
        .to_string();
    assert_eq!(manifest["checkpoints"]["count"], 10);
    assert_eq!(
        manifest["checkpoints"]["public_keys"],
        serde_json::json!([public_id])
    );
    assert_eq!(
        manifest["checkpoints"]["signing_keys"],
        serde_json::json!([public_id])
    );
    for (_, chain) in manifest["checkpoints"]["chains"].as_object().unwrap() {
        assert_eq!(chain["signed_through"]["seq"], 25);
        assert_eq!(chain["not_yet_covered"], 0);
    }
    let files: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(files.contains(&"checkpoints.jsonl"), "{files:?}");
    let lines = std::fs::read_to_string(out_dir.join("checkpoints.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 10);
    let report = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(
        report.contains("covered by a signature"),
        "the report's chain table"
    );
    assert!(report.contains("seq 1..25 (checkpoint of"), "{report}");
    // The exported records and checkpoints verify on their own with the public key.
    let (code, out) = verify(&[
        "--public-key",
        key.to_str().unwrap(),
        out_dir.join("records.jsonl").to_str().unwrap(),
        out_dir.join("checkpoints.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}");
}

/// docs/verify_record.py on `lines`, with the public key; (exit code, stdout + stderr).
fn python_verify(lines: &[String], key: &Path, with_record_key: bool) -> (Option<i32>, String) {
    use std::io::Write;
    let mut cmd = Command::new("python3");
    cmd.arg(vigil_host::artifacts::workspace_root().join("docs/verify_record.py"))
        .arg("--public-key")
        .arg(key)
        .env_remove(TEST_RECORD_KEY.0);
    if with_record_key {
        cmd.env(TEST_RECORD_KEY.0, TEST_RECORD_KEY.1);
    }
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all((lines.join("\n") + "\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn the_standard_library_script_verifies_chains_and_with_cryptography_the_signatures() {
    let d = dir("python");
    let key = public_key(&d, TEST_CHECKPOINT_KEY.1);
    let clean = traffic();
    let (code, out) = python_verify(&clean, &key, true);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("ok 40\n"), "{out}");
    if out.contains("signatures not checked") {
        // No `cryptography` package here: hashes, HMACs and chains were still checked.
        assert!(
            out.contains("Python cryptography package is not installed"),
            "{out}"
        );
    } else {
        assert_eq!(
            out.matches("5 checkpoint(s), signed through seq 25, 0 record(s) after it")
                .count(),
            2,
            "{out}"
        );
        // Forged under another key: named.
        let i = line_with_records_checkpoint(&clean, 0);
        let mut cps = carried(&clean[i]);
        let mut forged: vigil_core::record::checkpoint::Checkpoint =
            serde_json::from_value(cps[0].clone()).unwrap();
        forged.sign(&key_of_tests(), &SigningKey::from_seed([5; 32]).unwrap());
        cps[0] = serde_json::to_value(&forged).unwrap();
        let mut lines = clean.clone();
        lines[i] = set_carried(&clean[i], &cps);
        let (code, out) = python_verify(&lines, &key, false);
        assert_eq!(code, Some(1), "{out}");
        assert!(
            out.contains(&format!("line {}: checkpoint signed with key", i + 1)),
            "{out}"
        );
    }
    // A deleted checkpoint is a gap, whatever is installed.
    let i = line_with_records_checkpoint(&clean, 0);
    let mut lines = clean.clone();
    lines[i] = set_carried(&clean[i], &[]);
    let (code, out) = python_verify(&lines, &key, false);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("is missing from chain"), "{out}");
}

#[test]
fn every_checkpoint_the_filter_writes_validates_under_its_schema() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(
            vigil_host::artifacts::workspace_root().join("docs/checkpoint.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let mut all: Vec<Value> = traffic().iter().flat_map(|l| carried(l)).collect();
    let (_, b_log) = two_workers(60);
    all.extend(
        b_log
            .iter()
            .filter_map(|l| l.split("vigil checkpoint: ").nth(1))
            .map(|j| serde_json::from_str::<Value>(j).unwrap()),
    );
    for trigger in ["start", "records", "time"] {
        assert!(all.iter().any(|c| c["trigger"] == trigger), "{trigger}");
    }
    for c in &all {
        let errors: Vec<String> = validator
            .iter_errors(c)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}\n{c}");
    }
    // What the schema refuses, the type refuses too.
    let mut bad = all[0].clone();
    bad["trigger"] = "later".into();
    assert!(!validator.is_valid(&bad));
    assert!(serde_json::from_value::<vigil_core::record::checkpoint::Checkpoint>(bad).is_err());
}
