//! `vigil audit keygen seal --out FILE`: an examiner's key pair for sealed payloads. The
//! private key goes to FILE (created, never overwritten, readable by its owner only); the
//! public key, for the policy's `record.seal_to`, is printed.

use std::io::Write;
use std::path::Path;
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
