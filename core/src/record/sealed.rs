//! Sealed payloads: the unmasked request and answer of a session, encrypted to an examiner's
//! X25519 public key (`record.seal_to`) with HPKE (RFC 9180), so that a record carries what was
//! actually sent while everyday readers (the log pipeline, the SIEM, `vigil audit show` without
//! the key) see only masked text. The filter holds the public key only: the private key never
//! reaches Envoy, and a holder of the record key cannot open a payload either.
//!
//! The suite is HPKE base mode with DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and
//! ChaCha20-Poly1305 (`SEAL_ALG`): one fresh ephemeral key per record, so a key recovered from
//! one record opens nothing else. The associated data binds the ciphertext to its record (VM,
//! request id, start time); the record's hash and HMAC cover the sealed object like any other
//! field, so `vigil audit verify` catches an edited payload without opening it.
//!
//! The plaintext is a JSON header line followed by the kept bytes of each body, raw: no second
//! base64 layer inside the first. Each body is kept up to `record.max_body_bytes`, like the
//! masked copies, and `truncated` says when it was cut.

use crate::digest::hex;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::rand_core::{CryptoRng, RngCore};
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The HPKE suite, as records name it.
pub const SEAL_ALG: &str = "HPKE-base/X25519-HKDF-SHA256/HKDF-SHA256/ChaCha20-Poly1305";

/// HPKE `info`: the context every sealed payload of this version is made in.
const INFO: &[u8] = b"vigil sealed payload v1";

/// The first word of an examiner's key file (`vigil audit keygen --seal`). A `--key-file`
/// starting with it opens payloads; any other file is a record (HMAC) key.
pub const SECRET_KEY_LABEL: &str = "VIGIL-SEAL-SECRET-KEY-1";

type Suite = X25519HkdfSha256;
type PublicKey = <Suite as Kem>::PublicKey;
type PrivateKey = <Suite as Kem>::PrivateKey;

/// The examiner's public key a filter seals to, and its fingerprint.
#[derive(Clone, PartialEq, Eq)]
pub struct SealTo {
    key: Vec<u8>,
    id: String,
}

impl std::fmt::Debug for SealTo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealTo({})", self.id)
    }
}

/// 16 hex characters naming an X25519 public key (domain-separated SHA-256).
fn key_id(public: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"vigil seal key id\0");
    h.update(public);
    hex(&h.finalize()[..8])
}

fn decode_key(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim();
    let bytes = STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
        .map_err(|_| "is not base64".to_string())?;
    if bytes.len() != 32 {
        return Err(format!(
            "is {} bytes; an X25519 key is 32 (vigil audit keygen --seal writes one)",
            bytes.len()
        ));
    }
    Ok(bytes)
}

impl SealTo {
    /// The public key as the policy writes it: 32 bytes in base64 (standard or URL-safe).
    pub fn parse(text: &str) -> Result<Self, String> {
        let key = decode_key(text)?;
        let me = Self {
            id: key_id(&key),
            key,
        };
        // A key of low order makes every encapsulation fail: refuse it at load, not at each
        // record.
        let trial = Payload::default();
        seal_with(&me, b"", &trial, &mut SeedRng::from_seed([7; 32]))
            .map_err(|e| format!("is not a usable X25519 public key ({e})"))?;
        Ok(me)
    }

    /// 16 hex characters naming the key in records (`sealed.to`).
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// The sealed object a record carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedPayload {
    pub alg: String,
    /// Fingerprint of the public key sealed to ([`SealTo::id`]).
    pub to: String,
    /// The HPKE encapsulated key, base64.
    pub enc: String,
    /// The ciphertext with its tag, base64.
    pub ct: String,
    /// Why no payload could be sealed (no randomness from the host); `enc` and `ct` are then
    /// empty. The record still says, signed, that the payload is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One body as it crossed the filter, unmasked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawBody {
    /// The body's full length.
    pub bytes: u64,
    /// The kept bytes (the first `record.max_body_bytes`).
    pub body: Vec<u8>,
    pub truncated: bool,
}

impl RawBody {
    /// Counts a chunk and keeps what fits under `cap` bytes.
    pub fn feed(&mut self, chunk: &[u8], cap: usize) {
        self.bytes += chunk.len() as u64;
        let room = cap.saturating_sub(self.body.len());
        self.body.extend_from_slice(&chunk[..room.min(chunk.len())]);
        self.truncated |= chunk.len() > room;
    }

    /// The kept bytes as text (a cut character dropped, other bytes that are not UTF-8
    /// replaced; a wide body decoded).
    pub fn text(&self) -> String {
        crate::exchange::copy_text(&self.body)
    }
}

/// What a sealed payload holds: the unmasked request and the answer as the model server sent
/// it, before masking.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Payload {
    pub request: RawBody,
    pub response: RawBody,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    request: Part,
    response: Part,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Part {
    bytes: u64,
    kept: usize,
    truncated: bool,
}

impl Part {
    fn of(b: &RawBody) -> Self {
        Self {
            bytes: b.bytes,
            kept: b.body.len(),
            truncated: b.truncated,
        }
    }
}

impl Payload {
    fn encode(&self) -> Vec<u8> {
        let header = Header {
            request: Part::of(&self.request),
            response: Part::of(&self.response),
        };
        let mut out = serde_json::to_vec(&header).unwrap_or_default();
        out.push(b'\n');
        out.extend_from_slice(&self.request.body);
        out.extend_from_slice(&self.response.body);
        out
    }

    fn decode(plain: &[u8]) -> Result<Self, String> {
        let newline = plain
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("no header line")?;
        let header: Header =
            serde_json::from_slice(&plain[..newline]).map_err(|e| format!("header line: {e}"))?;
        let rest = &plain[newline + 1..];
        if header.request.kept.checked_add(header.response.kept) != Some(rest.len()) {
            return Err(format!(
                "header says {} + {} bytes, {} follow",
                header.request.kept,
                header.response.kept,
                rest.len()
            ));
        }
        let (req, resp) = rest.split_at(header.request.kept);
        let body = |p: &Part, b: &[u8]| RawBody {
            bytes: p.bytes,
            body: b.to_vec(),
            truncated: p.truncated,
        };
        Ok(Self {
            request: body(&header.request, req),
            response: body(&header.response, resp),
        })
    }
}

/// The associated data: the record's place (VM and seq) and its request id and start, so a
/// payload moved to another record does not open as that record's.
pub fn associated_data(vm_id: &str, seq: u64, request_id: &str, started_at: &str) -> Vec<u8> {
    let seq = seq.to_string();
    [vm_id, &seq, request_id, started_at]
        .join("\0")
        .into_bytes()
}

/// Seals `payload` to `to`. Never fails: without randomness from the host the record says so
/// (`error`), signed, instead of carrying a payload sealed with a guessable key.
pub fn seal(to: &SealTo, aad: &[u8], payload: &Payload) -> SealedPayload {
    let mut seed = [0u8; 32];
    let result = getrandom::getrandom(&mut seed)
        .map_err(|e| format!("no randomness from the host: {e}"))
        .and_then(|()| seal_with(to, aad, payload, &mut SeedRng::from_seed(seed)));
    match result {
        Ok(sealed) => sealed,
        Err(e) => SealedPayload {
            alg: SEAL_ALG.into(),
            to: to.id.clone(),
            enc: String::new(),
            ct: String::new(),
            error: Some(e),
        },
    }
}

fn seal_with(
    to: &SealTo,
    aad: &[u8],
    payload: &Payload,
    rng: &mut SeedRng,
) -> Result<SealedPayload, String> {
    let public = PublicKey::from_bytes(&to.key).map_err(|e| e.to_string())?;
    let (enc, ct) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, Suite, _>(
        &OpModeS::Base,
        &public,
        INFO,
        &payload.encode(),
        aad,
        rng,
    )
    .map_err(|e| e.to_string())?;
    Ok(SealedPayload {
        alg: SEAL_ALG.into(),
        to: to.id.clone(),
        enc: STANDARD.encode(enc.to_bytes()),
        ct: STANDARD.encode(ct),
        error: None,
    })
}

/// An examiner's private key, read from a key file; it opens what was sealed to its public key.
#[derive(Clone)]
pub struct OpeningKey {
    secret: Vec<u8>,
    id: String,
}

impl std::fmt::Debug for OpeningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OpeningKey({})", self.id)
    }
}

/// Why a sealed payload did not open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenFault {
    /// Sealed to another key than any given.
    OtherKey {
        sealed_to: String,
        given: Vec<String>,
    },
    /// The filter could not seal (`error` in the record).
    NotSealed(String),
    /// A suite this build does not read.
    UnknownAlg(String),
    /// The ciphertext does not open under the key: changed, or moved from another record.
    Altered,
    /// Opened, but not a payload this build reads.
    Malformed(String),
}

impl std::fmt::Display for OpenFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenFault::OtherKey { sealed_to, given } => write!(
                f,
                "sealed to examiner key {sealed_to}; the key file(s) given hold {}",
                if given.is_empty() {
                    "no examiner key".to_string()
                } else {
                    given.join(", ")
                }
            ),
            OpenFault::NotSealed(why) => write!(f, "the filter could not seal a payload: {why}"),
            OpenFault::UnknownAlg(alg) => {
                write!(f, "sealed with {alg:?}, which this build cannot open")
            }
            OpenFault::Altered => write!(
                f,
                "the sealed payload does not open: it was altered or moved from another record"
            ),
            OpenFault::Malformed(why) => write!(f, "the opened payload is malformed: {why}"),
        }
    }
}

impl OpeningKey {
    /// The key file's text: a line `VIGIL-SEAL-SECRET-KEY-1 <base64>`; `#` lines are comments.
    pub fn parse(text: &str) -> Result<Self, String> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(SECRET_KEY_LABEL))
            .ok_or_else(|| format!("has no {SECRET_KEY_LABEL} line"))?;
        let secret = decode_key(&line[SECRET_KEY_LABEL.len()..])?;
        let private = PrivateKey::from_bytes(&secret).map_err(|e| e.to_string())?;
        let public = Suite::sk_to_pk(&private).to_bytes();
        Ok(Self {
            secret,
            id: key_id(&public),
        })
    }

    /// Whether a key file's text is an examiner's key (rather than a record key).
    pub fn is_key_file(text: &[u8]) -> bool {
        std::str::from_utf8(text).is_ok_and(|t| {
            t.lines()
                .map(str::trim)
                .any(|l| l.starts_with(SECRET_KEY_LABEL))
        })
    }

    /// The fingerprint of its public key (what records name in `sealed.to`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A new key pair: the key file's text and the public key for `record.seal_to`.
    pub fn generate() -> Result<(String, String), String> {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).map_err(|e| format!("no randomness: {e}"))?;
        let (private, public) = Suite::derive_keypair(&seed);
        let public = STANDARD.encode(public.to_bytes());
        let file = format!(
            "# Vigil examiner key (X25519, HPKE RFC 9180): opens sealed payloads. Keep it offline.\n\
             # public key (record.seal_to): {public}\n\
             # key id: {}\n\
             {SECRET_KEY_LABEL} {}\n",
            key_id(&STANDARD.decode(&public).unwrap_or_default()),
            STANDARD.encode(private.to_bytes()),
        );
        Ok((file, public))
    }
}

/// Opens a record's sealed payload with whichever of `keys` it was sealed to.
pub fn open(sealed: &SealedPayload, keys: &[OpeningKey], aad: &[u8]) -> Result<Payload, OpenFault> {
    if let Some(why) = &sealed.error {
        return Err(OpenFault::NotSealed(why.clone()));
    }
    if sealed.alg != SEAL_ALG {
        return Err(OpenFault::UnknownAlg(sealed.alg.clone()));
    }
    let Some(key) = keys.iter().find(|k| k.id == sealed.to) else {
        return Err(OpenFault::OtherKey {
            sealed_to: sealed.to.clone(),
            given: keys.iter().map(|k| k.id.clone()).collect(),
        });
    };
    let private = PrivateKey::from_bytes(&key.secret).map_err(|_| OpenFault::Altered)?;
    let enc = STANDARD
        .decode(&sealed.enc)
        .ok()
        .and_then(|b| <Suite as Kem>::EncappedKey::from_bytes(&b).ok())
        .ok_or(OpenFault::Altered)?;
    let ct = STANDARD
        .decode(&sealed.ct)
        .map_err(|_| OpenFault::Altered)?;
    let plain = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Suite>(
        &OpModeR::Base,
        &private,
        &enc,
        INFO,
        &ct,
        aad,
    )
    .map_err(|_| OpenFault::Altered)?;
    Payload::decode(&plain).map_err(OpenFault::Malformed)
}

/// The ephemeral key's randomness: a 32-byte seed from the host, stretched with SHA-256 in
/// counter mode should more be asked for (X25519 asks for exactly 32).
struct SeedRng {
    seed: [u8; 32],
    counter: u64,
    block: [u8; 32],
    used: usize,
}

impl SeedRng {
    fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            seed,
            counter: 0,
            block: [0; 32],
            used: 32,
        }
    }
}

impl RngCore for SeedRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for byte in dst {
            if self.used == self.block.len() {
                let mut h = Sha256::new();
                h.update(self.seed);
                h.update(self.counter.to_le_bytes());
                self.block.copy_from_slice(&h.finalize());
                self.counter += 1;
                self.used = 0;
            }
            *byte = self.block[self.used];
            self.used += 1;
        }
    }
}

impl CryptoRng for SeedRng {}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> (SealTo, OpeningKey) {
        let (file, public) = OpeningKey::generate().unwrap();
        (
            SealTo::parse(&public).unwrap(),
            OpeningKey::parse(&file).unwrap(),
        )
    }

    fn payload() -> Payload {
        let mut p = Payload::default();
        p.request
            .feed(b"{\"prompt\":\"my SSN is 078-05-1120\"}", 1024);
        p.response.feed(b"data: {\"x\":\"\xff binary\"}\n\n", 1024);
        p
    }

    #[test]
    fn a_payload_opens_with_the_examiner_key_and_only_with_it() {
        let (to, key) = keys();
        assert_eq!(to.id(), key.id());
        let aad = associated_data("vm", 1, "r1", "2026-11-30T00:00:00.000Z");
        let sealed = seal(&to, &aad, &payload());
        assert_eq!(sealed.error, None);
        assert_eq!(
            open(&sealed, std::slice::from_ref(&key), &aad).unwrap(),
            payload()
        );
        let (_, other) = keys();
        let fault = open(&sealed, std::slice::from_ref(&other), &aad).unwrap_err();
        assert!(matches!(fault, OpenFault::OtherKey { .. }));
        assert!(fault.to_string().contains(&sealed.to), "{fault}");
        assert!(fault.to_string().contains(other.id()), "{fault}");
    }

    #[test]
    fn a_payload_moved_to_another_record_or_altered_does_not_open() {
        let (to, key) = keys();
        let aad = associated_data("vm", 1, "r1", "t");
        let sealed = seal(&to, &aad, &payload());
        let moved = associated_data("vm", 2, "r1", "t");
        assert_eq!(
            open(&sealed, std::slice::from_ref(&key), &moved),
            Err(OpenFault::Altered)
        );
        let mut ct = STANDARD.decode(&sealed.ct).unwrap();
        ct[3] ^= 1;
        let altered = SealedPayload {
            ct: STANDARD.encode(ct),
            ..sealed.clone()
        };
        assert_eq!(
            open(&altered, std::slice::from_ref(&key), &aad),
            Err(OpenFault::Altered)
        );
        for bad in ["", "!!", "AAAA"] {
            let garbled = SealedPayload {
                enc: bad.into(),
                ..sealed.clone()
            };
            assert_eq!(
                open(&garbled, std::slice::from_ref(&key), &aad),
                Err(OpenFault::Altered)
            );
        }
    }

    #[test]
    fn every_record_gets_its_own_ephemeral_key() {
        let (to, _) = keys();
        let a = seal(&to, b"", &payload());
        let b = seal(&to, b"", &payload());
        assert_ne!(a.enc, b.enc);
        assert_ne!(a.ct, b.ct);
    }

    #[test]
    fn bad_public_keys_are_refused_with_the_reason() {
        assert!(SealTo::parse("not base64!").unwrap_err().contains("base64"));
        assert!(SealTo::parse("AAAA").unwrap_err().contains("32"));
        // The all-zero point has low order: every shared secret would be zero.
        let zero = STANDARD.encode([0u8; 32]);
        assert!(SealTo::parse(&zero)
            .unwrap_err()
            .contains("not a usable X25519 public key"));
    }

    #[test]
    fn key_files_are_told_from_record_keys() {
        let (file, _) = OpeningKey::generate().unwrap();
        assert!(OpeningKey::is_key_file(file.as_bytes()));
        assert!(!OpeningKey::is_key_file(
            b"0123456789abcdef0123456789abcdef"
        ));
        assert!(OpeningKey::parse("# nothing\n")
            .unwrap_err()
            .contains(SECRET_KEY_LABEL));
        let debug = format!("{:?}", OpeningKey::parse(&file).unwrap());
        assert!(!debug.contains(file.lines().last().unwrap()));
    }

    #[test]
    fn bodies_past_the_cap_are_cut_and_flagged() {
        let mut b = RawBody::default();
        b.feed(b"0123456789", 4);
        b.feed(b"abc", 4);
        assert_eq!(
            (b.bytes, b.body.as_slice(), b.truncated),
            (13, &b"0123"[..], true)
        );
    }

    #[test]
    fn a_payload_whose_header_lies_about_its_lengths_is_malformed() {
        let mut plain = payload().encode();
        plain.push(b'x');
        assert!(Payload::decode(&plain).unwrap_err().contains("follow"));
        assert!(Payload::decode(b"no newline").is_err());
    }
}
