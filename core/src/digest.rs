//! SHA-256 in lowercase hex: the form every digest takes in records, policies and manifests.

use sha2::{Digest, Sha256};

/// SHA-256 of `data` as 64 lowercase hex characters.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// A digest fed chunk by chunk, for bodies that stream through the filter.
#[derive(Clone, Default)]
pub struct StreamDigest {
    hasher: Sha256,
    bytes: u64,
}

impl StreamDigest {
    pub fn update(&mut self, chunk: &[u8]) {
        self.hasher.update(chunk);
        self.bytes += chunk.len() as u64;
    }
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
    /// The hex digest of everything fed so far (the digest itself can keep going).
    pub fn hex(&self) -> String {
        hex(&self.hasher.clone().finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_digest_equals_one_shot_digest() {
        let mut d = StreamDigest::default();
        d.update(b"hello ");
        d.update(b"world");
        assert_eq!(d.hex(), sha256_hex(b"hello world"));
        assert_eq!(d.bytes(), 11);
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
