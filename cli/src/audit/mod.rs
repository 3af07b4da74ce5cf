//! `vigil audit`: verify record files, export them for examiners, show one session.

pub mod export;
pub mod history;
pub mod keygen;
mod par;
pub mod read;
pub mod replay;
pub mod report;
pub mod show;
pub mod verify;

use std::path::PathBuf;
use vigil_core::record::sealed::OpeningKey;
use vigil_core::record::RecordKey;

/// Where the record keys come from: environment variables and files, as many as rotation
/// needs. With neither given, `VIGIL_RECORD_KEY`.
#[derive(Debug, Default, Clone)]
pub struct KeySources {
    pub envs: Vec<String>,
    pub files: Vec<PathBuf>,
}

impl KeySources {
    /// The record keys; examiner key files among `--key-file` are left out ([`Self::load_all`]
    /// has both).
    pub fn load(&self) -> Result<Vec<RecordKey>, String> {
        Ok(self.load_all()?.0)
    }

    /// The record keys given, or VIGIL_RECORD_KEY when it is set; none otherwise (an
    /// examiner verifying with a checkpoint public key alone).
    pub fn load_optional(&self) -> Result<Vec<RecordKey>, String> {
        let default = vigil_core::config::DEFAULT_RECORD_KEY_ENV;
        if self.envs.is_empty() && self.files.is_empty() && std::env::var(default).is_err() {
            return Ok(Vec::new());
        }
        self.load()
    }

    /// Record keys and examiner keys. A `--key-file` is an examiner key when it holds a
    /// `VIGIL-SEAL-SECRET-KEY-1` line, a record key otherwise; with no record key given,
    /// VIGIL_RECORD_KEY.
    pub fn load_all(&self) -> Result<(Vec<RecordKey>, Vec<OpeningKey>), String> {
        let mut keys = Vec::new();
        let mut openers = Vec::new();
        let mut record_files = Vec::new();
        for file in &self.files {
            let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
            if OpeningKey::is_key_file(&bytes) {
                let text = String::from_utf8_lossy(&bytes);
                openers.push(
                    OpeningKey::parse(&text)
                        .map_err(|e| format!("{}: examiner key {e}", file.display()))?,
                );
            } else {
                record_files.push((file, bytes));
            }
        }
        let envs = if self.envs.is_empty() && record_files.is_empty() {
            vec![vigil_core::config::DEFAULT_RECORD_KEY_ENV.to_string()]
        } else {
            self.envs.clone()
        };
        for env in &envs {
            let value = std::env::var(env).map_err(|_| {
                format!("no record key: the environment has no {env} (or pass --key-file)")
            })?;
            keys.push(RecordKey::new(value.as_bytes()).map_err(|e| format!("{env} {e}"))?);
        }
        for (file, bytes) in record_files {
            // A key file written by `echo` or an editor ends with a newline that is not key.
            let text = bytes
                .strip_suffix(b"\n")
                .map(|b| b.strip_suffix(b"\r").unwrap_or(b))
                .unwrap_or(&bytes);
            keys.push(RecordKey::new(text).map_err(|e| format!("{}: {e}", file.display()))?);
        }
        Ok((keys, openers))
    }
}

/// The record files verified with the keys given, and the examiner keys among them, for a
/// command that reads sessions (`show`, `replay`). `Err` is the exit status (2): keys or a file
/// could not be read, and `command` has said which on stderr.
pub fn verified_sessions(
    command: &str,
    files: &[PathBuf],
    keys: &KeySources,
    field: &str,
    partial: bool,
) -> Result<(verify::Verification, Vec<OpeningKey>), u8> {
    let (keys, openers) = keys.load_all().map_err(|e| {
        eprintln!("vigil audit {command}: {e}");
        2u8
    })?;
    let options = verify::Options {
        keys,
        field: field.to_string(),
        chains: true,
        partial,
        expect_heads: None,
        checkpoints: Default::default(),
    };
    let v = verify::verify_files(files, &options);
    if !v.unreadable.is_empty() {
        for (p, e) in &v.unreadable {
            eprintln!("vigil audit {command}: {p}: {e}");
        }
        return Err(2);
    }
    Ok((v, openers))
}

/// Checkpoint public keys from their files (`--public-key`).
pub fn load_public_keys(
    paths: &[PathBuf],
) -> Result<Vec<vigil_core::record::checkpoint::PublicKey>, String> {
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            vigil_core::record::checkpoint::PublicKey::parse(&text)
                .map_err(|e| format!("{}: checkpoint public key {e}", p.display()))
        })
        .collect()
}

/// `vigil audit verify`: prints the summary and every problem; returns the exit status.
#[allow(clippy::too_many_arguments)]
pub fn run_verify(
    paths: &[PathBuf],
    keys: &KeySources,
    field: String,
    partial: bool,
    expect_heads: Option<PathBuf>,
    write_heads: Option<PathBuf>,
    json: bool,
    checkpoints: verify::CheckpointOptions,
) -> u8 {
    // With a checkpoint public key, the record key is optional: hashes, links and signatures
    // need no secret.
    let keys = if checkpoints.public_keys.is_empty() {
        keys.load()
    } else {
        keys.load_optional()
    };
    let keys = match keys {
        Ok(k) => k,
        Err(e) => {
            eprintln!("vigil audit verify: {e}");
            return 2;
        }
    };
    let expect_heads = match expect_heads.map(|p| verify::read_heads(&p)).transpose() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("vigil audit verify: {e}");
            return 2;
        }
    };
    let options = verify::Options {
        keys,
        field,
        chains: true,
        partial,
        expect_heads,
        checkpoints,
    };
    let v = verify::verify_files(paths, &options);
    if json {
        crate::outln!("{}", summary_json(&v));
    } else {
        crate::out!("{}", summary_text(&v));
    }
    if let Some(path) = write_heads {
        let text = serde_json::to_string_pretty(&v.heads()).unwrap_or_default();
        if let Err(e) = std::fs::write(&path, text + "\n") {
            eprintln!("vigil audit verify: {}: {e}", path.display());
            return 2;
        }
    }
    v.exit_code()
}

/// The verification as a person reads it: totals, one line per chain, every problem.
pub fn summary_text(v: &verify::Verification) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let lines: usize = v.files.iter().map(|f| f.lines).sum();
    let verified = v.verified().count();
    let _ = writeln!(
        out,
        "{} file(s), {} line(s), {} record(s): {} verified, {} problem(s)",
        v.files.len() + v.unreadable.len(),
        lines,
        v.records,
        verified,
        v.problems.len()
    );
    for (path, e) in &v.unreadable {
        let _ = writeln!(out, "{path}: unreadable: {e}");
    }
    if v.hmac_unchecked {
        let _ = writeln!(
            out,
            "HMACs not checked (no record key given): records are checked by hash, chain and the checkpoints' signatures"
        );
    }
    for (vm, c) in &v.chains {
        let _ = writeln!(
            out,
            "chain {vm}: seq {}..{} ({} records, {} .. {}), head {}",
            c.first_seq, c.last_seq, c.records, c.first_started_at, c.last_started_at, c.last_hash
        );
        if c.checkpoints == 0 && !v.signatures_checked {
            continue;
        }
        let signed = match &c.signed_through {
            Some(s) => format!(
                "signed through seq {} ({}, key {}); {} record(s) after it not yet covered",
                s.seq, s.at, s.key_id, c.not_yet_covered
            ),
            None if v.signatures_checked => {
                "no signature verified: every record is not yet covered".to_string()
            }
            None => "signatures not checked (no --public-key)".to_string(),
        };
        let _ = writeln!(
            out,
            "  {} checkpoint(s); {signed}{}",
            c.checkpoints,
            if c.ended { "; ended (shutdown)" } else { "" }
        );
    }
    for p in &v.problems {
        let _ = writeln!(out, "{}: {}", p.at, p.message);
    }
    let _ = writeln!(
        out,
        "{}",
        if !v.is_clean() {
            "NOT VERIFIED"
        } else if v.hmac_unchecked {
            // Without the record key, only what a signature covers is proven the filter's.
            "verified: every chain is whole, and what a checkpoint signature covers is as the filter wrote it"
        } else {
            "verified: every record is authentic and every chain is whole"
        }
    );
    out
}

pub fn summary_json(v: &verify::Verification) -> serde_json::Value {
    serde_json::json!({
        "files": v.files,
        "unreadable": v.unreadable.iter().map(|(p, e)| serde_json::json!({"path": p, "error": e})).collect::<Vec<_>>(),
        "records": v.records,
        "checkpoints": v.checkpoints.len(),
        "hmac_checked": !v.hmac_unchecked,
        "verified": v.verified().count(),
        "chains": v.chains,
        "problems": v.problems,
        "clean": v.is_clean(),
    })
}
