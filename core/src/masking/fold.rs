//! The view the detectors read: the text with the characters a model (or a person) can use
//! to disguise a value folded to the ASCII the detectors know. Digits of every script
//! become `0`-`9`, fullwidth forms their ASCII twins (`＠` is `@`), Unicode spaces a space,
//! dashes and the minus sign `-`, and invisible characters (zero-width space and joiners,
//! word joiner, soft hyphen, byte order mark, bidirectional marks, variation selectors,
//! tags) vanish. The masker keeps the original bytes beside the folded text and masks
//! those: a value is found in the folded text and replaced in the text the client wrote.

/// What becomes of one character in the folded view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fold {
    Keep,
    Drop,
    Ascii(u8),
}

/// The zero of every run of decimal digits (Unicode general category Nd) outside ASCII;
/// each run is ten code points, zero to nine.
const DIGIT_ZEROS: [u32; 66] = [
    0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6, 0x0D66,
    0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
    0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x11F50, 0x16A60, 0x16AC0,
    0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

/// Characters that render as nothing (Unicode Default_Ignorable_Code_Point and format
/// controls: soft hyphen, zero-width space and joiners, word joiner, direction marks and
/// isolates, byte order mark, variation selectors, tags, Hangul fillers): removed from the
/// view the detectors (and prompt rules) read.
pub fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}' | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

/// How `c` (not ASCII) appears to the detectors.
pub fn fold(c: char) -> Fold {
    let n = c as u32;
    match n {
        // Fullwidth ASCII (`４`, `＠`, `－`, `Ａ`).
        0xFF01..=0xFF5E => Fold::Ascii((n - 0xFEE0) as u8),
        // Spaces: no-break, Ogham, en/em and the other typographic spaces, narrow no-break,
        // medium mathematical, ideographic.
        0x00A0 | 0x1680 | 0x2000..=0x200A | 0x202F | 0x205F | 0x3000 => Fold::Ascii(b' '),
        // Dashes: hyphen, non-breaking hyphen, figure/en/em dash, horizontal bar, hyphen
        // bullet, minus sign, small and fullwidth hyphen-minus.
        0x2010..=0x2015 | 0x2043 | 0x2212 | 0xFE58 | 0xFE63 => Fold::Ascii(b'-'),
        0x2024 | 0xFE52 => Fold::Ascii(b'.'),
        0x2044 | 0x2215 => Fold::Ascii(b'/'),
        0xFE6B => Fold::Ascii(b'@'),
        _ if invisible(c) => Fold::Drop,
        _ => match DIGIT_ZEROS.iter().find(|z| (**z..**z + 10).contains(&n)) {
            Some(zero) => Fold::Ascii(b'0' + (n - zero) as u8),
            None => Fold::Keep,
        },
    }
}

/// Whether any character of `text` folds to something else (most text: none, and then the
/// masker reads the bytes as they are).
pub fn folds_any(text: &[u8]) -> bool {
    if ascii(text) {
        return false;
    }
    text.utf8_chunks().any(|c| {
        c.valid()
            .chars()
            .any(|c| !c.is_ascii() && fold(c) != Fold::Keep)
    })
}

/// Whether `text` is ASCII, eight bytes at a time: `<[u8]>::is_ascii` reads a `usize` at
/// a time, four bytes on wasm32, where this test runs on every chunk of every body.
fn ascii(text: &[u8]) -> bool {
    let mut words = text.chunks_exact(8);
    let mut high = 0u64;
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        high |= u64::from_le_bytes(b);
    }
    high & 0x8080_8080_8080_8080 == 0 && words.remainder().is_ascii()
}

/// How many bytes of `text` are whole characters: an incomplete UTF-8 sequence at its end
/// (a character cut by a chunk boundary) is left for the next chunk. Invalid bytes count as
/// whole (they are kept as they are).
pub fn complete_prefix(text: &[u8]) -> usize {
    let len = text.len();
    // The last lead byte among the final three bytes, and the length it announces.
    for back in 1..=3.min(len) {
        let b = text[len - back];
        if b < 0x80 {
            return len;
        }
        if b >= 0xC0 {
            let need = match b {
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                0xF0..=0xF7 => 4,
                _ => 1,
            };
            return if need > back { len - back } else { len };
        }
    }
    len
}

/// The original bytes of a folded text, and where folded positions map to them.
#[derive(Debug, Default)]
pub struct Original {
    pub bytes: Vec<u8>,
    /// (folded position, offset): from that position on, the original position is the
    /// folded one plus the offset (until the next entry). Sorted; offsets grow. Folded
    /// position `n` maps to where folded character `n - 1` ends in the original, so a
    /// character that vanished belongs to the character after it: a position already
    /// released never moves when more text comes.
    shifts: Vec<(usize, usize)>,
}

impl Original {
    /// The folded text is `folded`, identical so far to the original.
    pub fn identical(folded: &[u8]) -> Self {
        Self {
            bytes: folded.to_vec(),
            shifts: Vec::new(),
        }
    }

    /// Where folded position `n` lies in the original.
    pub fn at(&self, n: usize) -> usize {
        let k = self.shifts.partition_point(|(p, _)| *p <= n);
        n + k.checked_sub(1).map_or(0, |k| self.shifts[k].1)
    }

    fn offset(&self) -> usize {
        self.shifts.last().map_or(0, |s| s.1)
    }

    fn shift(&mut self, at: usize, by: usize) {
        let offset = self.offset() + by;
        match self.shifts.last_mut() {
            Some(last) if last.0 == at => last.1 = offset,
            _ => self.shifts.push((at, offset)),
        }
    }

    /// Appends `text` to the original and its folded form to `folded`.
    pub fn append(&mut self, text: &[u8], folded: &mut Vec<u8>) {
        self.bytes.extend_from_slice(text);
        for chunk in text.utf8_chunks() {
            for c in chunk.valid().chars() {
                if c.is_ascii() {
                    folded.push(c as u8);
                    continue;
                }
                let len = c.len_utf8();
                match fold(c) {
                    Fold::Keep => {
                        let mut buf = [0u8; 4];
                        folded.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                    Fold::Drop => self.shift(folded.len() + 1, len),
                    Fold::Ascii(b) => {
                        folded.push(b);
                        self.shift(folded.len(), len - 1);
                    }
                }
            }
            folded.extend_from_slice(chunk.invalid());
        }
    }

    /// Forgets the first `n` folded positions (and the original bytes before them); `true`
    /// when what is left is identical to its folded form.
    pub fn drain(&mut self, n: usize) -> bool {
        let original = self.at(n);
        let base = original - n;
        self.bytes.drain(..original);
        self.shifts.retain(|(p, _)| *p > n);
        for s in &mut self.shifts {
            s.0 -= n;
            s.1 -= base;
        }
        self.shifts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folded(s: &str) -> (String, Original) {
        let mut o = Original::default();
        let mut f = Vec::new();
        o.append(s.as_bytes(), &mut f);
        (String::from_utf8(f).unwrap_or_default(), o)
    }

    #[test]
    fn disguised_values_fold_to_ascii() {
        assert_eq!(
            folded("４１１１\u{00A0}١١١١\u{2060}-१११").0,
            "4111 1111-111"
        );
        assert_eq!(
            folded("jane\u{200B}.roe＠example.com").0,
            "jane.roe@example.com"
        );
        assert_eq!(folded("078\u{2013}05\u{2212}1123").0, "078-05-1123");
        assert_eq!(folded("𝟎𝟏𝟐 café 😀").0, "012 café 😀");
    }

    #[test]
    fn folded_positions_map_back_to_the_original_bytes() {
        let s = "a４\u{200B}b";
        let (f, o) = folded(s);
        assert_eq!(f, "a4b");
        assert_eq!(o.at(0), 0);
        assert_eq!(o.at(1), 1);
        // The zero-width space belongs to the `b` after it.
        assert_eq!(o.at(2), 1 + 3);
        assert_eq!(o.at(3), s.len());
    }

    #[test]
    fn a_character_cut_at_the_end_waits_for_the_rest() {
        let s = "ab４".as_bytes();
        assert_eq!(complete_prefix(&s[..3]), 2);
        assert_eq!(complete_prefix(&s[..4]), 2);
        assert_eq!(complete_prefix(s), 5);
        assert_eq!(complete_prefix(b"ab\xFF"), 3);
    }

    #[test]
    fn draining_rebases_the_map() {
        let (_, mut o) = folded("４４x４y");
        // Folded "44x4y": drop the first two folded positions (six original bytes).
        assert!(!o.drain(2));
        assert_eq!(o.bytes, "x４y".as_bytes());
        assert_eq!(o.at(0), 0);
        assert_eq!(o.at(1), 1);
        assert_eq!(o.at(2), 4);
        assert!(o.drain(2));
        assert_eq!(o.bytes, b"y");
    }
}
