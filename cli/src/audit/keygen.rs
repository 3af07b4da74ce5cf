//! `vigil audit keygen seal|checkpoint --out FILE`: key pairs. The private key goes to FILE
//! (created, never overwritten, readable by its owner only).
//!
//! - `seal`: an examiner's X25519 key pair for sealed payloads; the public key, for the
//!   policy's `record.seal_to`, is printed.
//! - `checkpoint`: the filter's Ed25519 key pair for signed checkpoints; FILE holds the seed
//!   for the VM environment (`record.checkpoint.key_env`), FILE.pub the public key examiners
//!   verify with (`vigil audit verify --public-key FILE.pub`), and the key id for the policy's
//!   `record.checkpoint.key_id` is printed.

use std::io::Write;
use std::path::Path;
use vigil_core::record::checkpoint::SigningKey;
use vigil_core::record::sealed::{OpeningKey, SealTo};

/// Writes `text` to a new file only its owner can read.
pub fn write_secret(path: &Path, text: &str) -> Result<(), String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => format!(
            "{} exists; a key is never overwritten (choose another --out)",
            path.display()
        ),
        _ => format!("{}: {e}", path.display()),
    })?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Exit 0 written, 2 not.
pub fn seal(out: &Path) -> u8 {
    let result = OpeningKey::generate().and_then(|(file, public)| {
        write_secret(out, &file)?;
        let id = SealTo::parse(&public)?.id().to_string();
        Ok((public, id))
    });
    match result {
        Ok((public, id)) => {
            crate::outln!("examiner key {id} written to {}", out.display());
            crate::outln!(
                "put the public key in the policy: \"record\": {{\"seal_to\": \"{public}\"}}"
            );
            0
        }
        Err(e) => {
            eprintln!("vigil audit keygen: {e}");
            2
        }
    }
}

/// Exit 0 written, 2 not.
pub fn checkpoint(out: &Path) -> u8 {
    let public_path = {
        let mut p = out.as_os_str().to_owned();
        p.push(".pub");
        std::path::PathBuf::from(p)
    };
    let result = (|| {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).map_err(|e| format!("no randomness: {e}"))?;
        let key = SigningKey::from_seed(seed)?;
        if public_path.exists() {
            return Err(format!(
                "{} exists; a key is never overwritten (choose another --out)",
                public_path.display()
            ));
        }
        write_secret(out, &(key.secret_text() + "\n"))?;
        std::fs::write(&public_path, key.public_key().file_text())
            .map_err(|e| format!("{}: {e}", public_path.display()))?;
        Ok(key.id().to_string())
    })();
    match result {
        Ok(id) => {
            crate::outln!(
                "checkpoint key {id}: private key (for the VM environment) in {}, public key (for examiners) in {}",
                out.display(),
                public_path.display()
            );
            crate::outln!(
                "put in the policy: \"record\": {{\"checkpoint\": {{\"key_env\": \"VIGIL_CHECKPOINT_KEY\", \"key_id\": \"{id}\"}}}}"
            );
            0
        }
        Err(e) => {
            eprintln!("vigil audit keygen: {e}");
            2
        }
    }
}
