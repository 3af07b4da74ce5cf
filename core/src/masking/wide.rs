//! Bodies in UTF-16 or UTF-32, masked through UTF-8. Read byte by byte they put a zero
//! beside every digit (`4\0 1\0 1\0 1\0`), so no detector sees a value: the body is decoded
//! as it streams, masked by the masker of its format, and encoded back in its own encoding
//! (byte order mark and all), so a client reads the encoding it asked for. A code unit, a
//! surrogate pair or a character cut by a chunk boundary waits for the rest. What is not
//! valid in the encoding comes back as U+FFFD.

use super::body::BodyMasker;
use super::masker::Counts;
use super::settings::Masking;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wide {
    Utf16Le,
    Utf16Be,
    Utf32Le,
    Utf32Be,
}

/// How a body labelled with a wide charset is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WideCharset {
    /// The byte order is given (`utf-16le`, ...).
    Fixed(Wide),
    /// `utf-16` or `utf-32`: a byte order mark says which; little-endian without one, as
    /// the WHATWG Encoding Standard decodes the `utf-16` label.
    ByMark { utf32: bool },
}

impl WideCharset {
    /// The wide charset a `charset=` parameter names, if it names one.
    pub fn named(charset: &str) -> Option<Self> {
        Some(match charset {
            "utf-16le" | "utf16le" => Self::Fixed(Wide::Utf16Le),
            "utf-16be" | "utf16be" => Self::Fixed(Wide::Utf16Be),
            "utf-32le" | "utf32le" => Self::Fixed(Wide::Utf32Le),
            "utf-32be" | "utf32be" => Self::Fixed(Wide::Utf32Be),
            "utf-16" | "utf16" | "ucs-2" => Self::ByMark { utf32: false },
            "utf-32" | "utf32" | "ucs-4" => Self::ByMark { utf32: true },
            _ => return None,
        })
    }
}

impl Wide {
    fn unit(self) -> usize {
        match self {
            Wide::Utf16Le | Wide::Utf16Be => 2,
            Wide::Utf32Le | Wide::Utf32Be => 4,
        }
    }

    /// The encoding of a body that starts with `head`, from its byte order mark or, without
    /// one, from where the zero bytes of ASCII text fall (`{\0"\0` is UTF-16LE). `None`
    /// when the head does not look wide (or is too short to tell).
    pub fn sniff(head: &[u8]) -> Option<Wide> {
        match head {
            [0xFF, 0xFE, 0, 0, ..] => Some(Wide::Utf32Le),
            [0, 0, 0xFE, 0xFF, ..] => Some(Wide::Utf32Be),
            [0xFF, 0xFE, ..] => Some(Wide::Utf16Le),
            [0xFE, 0xFF, ..] => Some(Wide::Utf16Be),
            [a, 0, 0, 0, ..] if *a != 0 => Some(Wide::Utf32Le),
            [0, 0, 0, a, ..] if *a != 0 => Some(Wide::Utf32Be),
            [a, 0, b, 0, ..] if *a != 0 && *b != 0 => Some(Wide::Utf16Le),
            [0, a, 0, b, ..] if *a != 0 && *b != 0 => Some(Wide::Utf16Be),
            _ => None,
        }
    }

    fn encode(self, c: char, out: &mut Vec<u8>) {
        match self {
            Wide::Utf16Le | Wide::Utf16Be => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    let b = if self == Wide::Utf16Le {
                        u.to_le_bytes()
                    } else {
                        u.to_be_bytes()
                    };
                    out.extend_from_slice(&b);
                }
            }
            Wide::Utf32Le => out.extend_from_slice(&(c as u32).to_le_bytes()),
            Wide::Utf32Be => out.extend_from_slice(&(c as u32).to_be_bytes()),
        }
    }
}

#[derive(Debug)]
pub struct WideMasker {
    charset: WideCharset,
    /// Known once the first bytes are read (at once for a fixed byte order).
    wide: Option<Wide>,
    /// Encoded bytes not yet decoded (a unit or pair cut by a chunk boundary).
    encoded: Vec<u8>,
    /// The inner masker's UTF-8 output not yet encoded back (a character cut in two).
    decoded: Vec<u8>,
    inner: BodyMasker,
}

impl WideMasker {
    pub fn new(charset: WideCharset, inner: BodyMasker) -> Self {
        let wide = match charset {
            WideCharset::Fixed(w) => Some(w),
            WideCharset::ByMark { .. } => None,
        };
        Self {
            charset,
            wide,
            encoded: Vec::new(),
            decoded: Vec::new(),
            inner,
        }
    }

    pub fn counts(&self) -> Counts {
        self.inner.counts()
    }

    pub fn peak_held(&self) -> (usize, usize) {
        self.inner.peak_held()
    }

    pub fn push(&mut self, m: &Masking, chunk: &[u8], out: &mut Vec<u8>) {
        self.encoded.extend_from_slice(chunk);
        self.run(m, false, out);
    }

    pub fn finish(&mut self, m: &Masking, out: &mut Vec<u8>) {
        self.run(m, true, out);
    }

    fn run(&mut self, m: &Masking, ended: bool, out: &mut Vec<u8>) {
        let wide = match self.wide {
            Some(w) => w,
            None => {
                let WideCharset::ByMark { utf32 } = self.charset else {
                    return;
                };
                let need = if utf32 { 4 } else { 2 };
                if self.encoded.len() < need && !ended {
                    return;
                }
                let w = match (utf32, self.encoded.as_slice()) {
                    (false, [0xFE, 0xFF, ..]) => Wide::Utf16Be,
                    (false, _) => Wide::Utf16Le,
                    (true, [0, 0, 0xFE, 0xFF, ..]) => Wide::Utf32Be,
                    (true, _) => Wide::Utf32Le,
                };
                self.wide = Some(w);
                w
            }
        };
        let text = decode(wide, &mut self.encoded, ended);
        let mut masked = std::mem::take(&mut self.decoded);
        if !text.is_empty() {
            self.inner.push(m, text.as_bytes(), &mut masked);
        }
        if ended {
            self.inner.finish(m, &mut masked);
        }
        self.decoded = encode(wide, masked, ended, out);
    }
}

/// A whole body (or the start of one) in UTF-16 or UTF-32, as its first bytes show, as
/// text: records show such a body as text, not as characters with zeros between them.
pub fn decode_copy(body: &[u8]) -> Option<String> {
    let wide = Wide::sniff(body)?;
    let mut encoded = body.to_vec();
    // A cut last unit is left out (a copy may stop anywhere).
    let mut text = decode(wide, &mut encoded, false);
    if let Some(rest) = text.strip_prefix('\u{feff}') {
        text = rest.to_string();
    }
    Some(text)
}

/// Decodes the complete units of `encoded` (all of it when the body `ended`), leaving a cut
/// unit or a high surrogate that may be completed.
fn decode(wide: Wide, encoded: &mut Vec<u8>, ended: bool) -> String {
    let unit = wide.unit();
    let mut whole = encoded.len() / unit * unit;
    let mut text = String::with_capacity(whole);
    match wide {
        Wide::Utf16Le | Wide::Utf16Be => {
            let units: Vec<u16> = encoded[..whole]
                .chunks_exact(2)
                .map(|b| {
                    let pair = [b[0], b[1]];
                    if wide == Wide::Utf16Le {
                        u16::from_le_bytes(pair)
                    } else {
                        u16::from_be_bytes(pair)
                    }
                })
                .collect();
            let mut units = units.as_slice();
            if !ended && units.last().is_some_and(|u| (0xD800..0xDC00).contains(u)) {
                units = &units[..units.len() - 1];
                whole -= 2;
            }
            text.extend(
                char::decode_utf16(units.iter().copied())
                    .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)),
            );
        }
        Wide::Utf32Le | Wide::Utf32Be => {
            text.extend(encoded[..whole].chunks_exact(4).map(|b| {
                let quad = [b[0], b[1], b[2], b[3]];
                let n = if wide == Wide::Utf32Le {
                    u32::from_le_bytes(quad)
                } else {
                    u32::from_be_bytes(quad)
                };
                char::from_u32(n).unwrap_or(char::REPLACEMENT_CHARACTER)
            }));
        }
    }
    if ended && whole < encoded.len() {
        // A cut unit at the very end.
        text.push(char::REPLACEMENT_CHARACTER);
        whole = encoded.len();
    }
    encoded.drain(..whole);
    text
}

/// Encodes the masker's UTF-8 output back into `wide`, returning a character cut at the end
/// (to wait for its rest).
fn encode(wide: Wide, utf8: Vec<u8>, ended: bool, out: &mut Vec<u8>) -> Vec<u8> {
    let mut rest = utf8.as_slice();
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                s.chars().for_each(|c| wide.encode(c, out));
                return Vec::new();
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                // Checked by from_utf8 up to valid_up_to.
                String::from_utf8_lossy(valid)
                    .chars()
                    .for_each(|c| wide.encode(c, out));
                match e.error_len() {
                    Some(n) => {
                        wide.encode(char::REPLACEMENT_CHARACTER, out);
                        rest = &after[n..];
                    }
                    None if ended => {
                        wide.encode(char::REPLACEMENT_CHARACTER, out);
                        return Vec::new();
                    }
                    None => return after.to_vec(),
                }
            }
        }
    }
}
