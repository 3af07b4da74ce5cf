//! The streaming engine over one logical text (a plain body, one JSON string value, or the
//! joined deltas of one SSE channel).
//!
//! The engine moves a cursor through the text. Where a value can start (a cheap byte test:
//! a digit or letter at the start of a word, `+`, `(`, `:`, `-`), it asks the detectors; a
//! detector that needs bytes that have not arrived yet makes the engine stop and hold the
//! text from the cursor on, everything before it having been released. Since a decision is
//! only ever taken on bytes that are present, and the history a detector sees is clamped to
//! the same 64 bytes, the output does not depend on how the text was cut into chunks. The
//! text held back never exceeds [`Masking::hold_back_bound`] bytes (319 for the built-in
//! entities: the longest email), and in clean prose it is the unfinished last word.

use super::detect::{self, can_start, pem_footer, Follow, Hit};
use super::fold::{complete_prefix, folds_any, Original};
use super::scan::View;
use super::settings::Masking;
use super::style::replacement;
use super::Entity;
use std::collections::BTreeMap;

/// Where released text goes.
pub trait Sink {
    /// Text released unchanged.
    fn copy(&mut self, text: &[u8]);
    /// `original` was replaced by `replacement` (which may be empty, for the rest of a long
    /// secret).
    fn replace(&mut self, original: &[u8], replacement: &str);
}

impl Sink for Vec<u8> {
    fn copy(&mut self, text: &[u8]) {
        self.extend_from_slice(text);
    }
    fn replace(&mut self, _original: &[u8], replacement: &str) {
        self.extend_from_slice(replacement.as_bytes());
    }
}

/// Masked values per entity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts(BTreeMap<Entity, u64>);

impl Counts {
    pub fn add(&mut self, e: Entity, n: u64) {
        *self.0.entry(e).or_default() += n;
    }
    pub fn merge(&mut self, other: &Counts) {
        for (e, n) in &other.0 {
            self.add(*e, *n);
        }
    }
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// By entity name, as records and metrics show them.
    pub fn named(&self, m: &Masking) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (e, n) in &self.0 {
            *out.entry(m.entity_name(*e).to_string()).or_default() += n;
        }
        out
    }
}

/// A byte for the fast path, in one lookup: [`LETTER`] or [`DIGIT`], and [`START`] when a
/// value can start with it.
const fn table(custom: bool) -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let class = if c.is_ascii_alphabetic() {
            LETTER
        } else if c.is_ascii_digit() {
            DIGIT
        } else {
            0
        };
        let start = can_start(c) || (custom && c.is_ascii_punctuation());
        t[b] = class | if start { START } else { 0 };
        b += 1;
    }
    t
}
const LETTER: u8 = 1;
const DIGIT: u8 = 2;
const START: u8 = 0x80;
static STARTS: [u8; 256] = table(false);
static STARTS_CUSTOM: [u8; 256] = table(true);

#[derive(Debug, Default)]
pub struct Masker {
    /// History (at most the lookbehind) followed by the undecided text, as the detectors
    /// read it: folded (see [`super::fold`]) when `original` is kept, else as it came.
    buf: Vec<u8>,
    /// The text as it came, while `buf` holds a folded form that differs from it.
    original: Option<Original>,
    /// The start of a character cut by the end of the last chunk.
    partial: Vec<u8>,
    /// Up to where in `buf` an AWS secret access key may start: shortly after the word its
    /// labels all have ("secret"), noted where a word starts, so clean text pays nothing.
    secret_until: usize,
    /// First undecided byte of `buf`.
    cursor: usize,
    follow: Option<Follow>,
    counts: Counts,
    peak_held: usize,
}

/// What replaces text a forced decision could not decide.
pub const FORCED: &str = "[MASKED]";

impl Masker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds text and releases what can be decided.
    pub fn push(&mut self, m: &Masking, text: &[u8], sink: &mut impl Sink) {
        if self.partial.is_empty() {
            let whole = complete_prefix(text);
            self.append(&text[..whole]);
            self.partial.extend_from_slice(&text[whole..]);
        } else {
            let mut joined = std::mem::take(&mut self.partial);
            joined.extend_from_slice(text);
            let whole = complete_prefix(&joined);
            self.append(&joined[..whole]);
            self.partial.extend_from_slice(&joined[whole..]);
        }
        self.run(m, false, sink);
    }

    /// Adds whole characters to the buffer, folded when any of them folds.
    fn append(&mut self, text: &[u8]) {
        match &mut self.original {
            None if !folds_any(text) => self.buf.extend_from_slice(text),
            Some(original) => original.append(text, &mut self.buf),
            None => {
                let mut original = Original::identical(&self.buf);
                original.append(text, &mut self.buf);
                self.original = Some(original);
            }
        }
    }

    /// The original bytes of folded positions `from..to`.
    fn original(&self, from: usize, to: usize) -> &[u8] {
        match &self.original {
            None => &self.buf[from..to],
            Some(o) => &o.bytes[o.at(from)..o.at(to)],
        }
    }

    fn reset(&mut self) {
        self.buf.clear();
        self.secret_until = 0;
        self.original = None;
        self.cursor = 0;
        self.follow = None;
    }

    /// The text ended: decide and release the rest. The masker can then take a new text.
    pub fn finish(&mut self, m: &Masking, sink: &mut impl Sink) {
        let partial = std::mem::take(&mut self.partial);
        self.append(&partial);
        self.run(m, true, sink);
        self.reset();
    }

    /// Decides now, before the text ends (a stream's hold-back limit was reached): what
    /// can be decided is, and the rest, held because it may be the start of a value, is
    /// masked as [`FORCED`], never released. The masker can then go on with more text.
    pub fn force(&mut self, m: &Masking, sink: &mut impl Sink) {
        self.run(m, false, sink);
        let held = self.original(self.cursor, self.buf.len());
        if !held.is_empty() {
            sink.replace(held, FORCED);
        }
        self.reset();
    }

    /// Gives the next text context it does not mask (a JSON value's key: `"ssn":
    /// "078051123"`, `"aws_secret_access_key": "..."`): detectors that read the words
    /// before a value read it as if it came just before. Only before a text starts.
    pub fn seed(&mut self, context: &[u8]) {
        if !self.buf.is_empty() || !self.partial.is_empty() {
            return;
        }
        let tail = &context[context.len().saturating_sub(super::scan::LOOKBEHIND - 2)..];
        self.append(tail);
        self.append(b": ");
        self.cursor = self.buf.len();
        if tail.windows(6).any(|w| w.eq_ignore_ascii_case(b"secret")) {
            self.secret_until = self.buf.len() + detect::SECRET_LABEL_REACH;
        }
    }

    /// Bytes pushed but not yet released.
    pub fn held(&self) -> usize {
        self.buf.len() - self.cursor + self.partial.len()
    }

    pub fn peak_held(&self) -> usize {
        self.peak_held
    }

    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    fn run(&mut self, m: &Masking, ended: bool, sink: &mut impl Sink) {
        // Without custom detectors, letters can be ruled out by the cheap tests below.
        let letters_cheap = m.custom.is_empty();
        let starts = if letters_cheap {
            &STARTS
        } else {
            &STARTS_CUSTOM
        };
        let len = self.buf.len();
        let mut i = self.cursor;
        let mut copy_from = i;
        // The next '@' at or after the cursor (usize::MAX: none in the buffer), for emails.
        let mut next_at = 0;
        'text: while i < len {
            match self.follow {
                Some(Follow::Token(class)) => {
                    let start = i;
                    while i < len && class.contains(self.buf[i]) {
                        i += 1;
                    }
                    if i > start {
                        sink.replace(self.original(start, i), "");
                        copy_from = i;
                    }
                    if i < len {
                        self.follow = None;
                    }
                    continue;
                }
                Some(Follow::PemBody) => {
                    let start = i;
                    let mut starved = false;
                    while i < len {
                        if self.buf[i] == b'-' {
                            let v = View::new(&self.buf, i, ended);
                            let footer = pem_footer(&v);
                            if v.starved() {
                                starved = true;
                                break;
                            }
                            if let Some(n) = footer {
                                i += n;
                                self.follow = None;
                                break;
                            }
                        }
                        i += 1;
                    }
                    if i > start {
                        sink.replace(self.original(start, i), "");
                        copy_from = i;
                    }
                    if starved {
                        break 'text;
                    }
                    continue;
                }
                Some(Follow::None) | None => {}
            }
            // Fast path: skip bytes where no value can start (inside words, spaces, ...), and
            // word starts that a few byte tests rule out, before building a view for the
            // detectors.
            // Inside a word nothing starts, except a digit right after a letter
            // (`SSN078-05-1123`).
            let buf = self.buf.as_slice();
            let mut secret_until = self.secret_until;
            let mut prev = if i > 0 {
                starts[buf[i - 1] as usize] & 3
            } else {
                0
            };
            while i < len {
                let b = buf[i];
                let e = starts[b as usize];
                // Inside a word: after a letter (1) a letter, after a digit (2) a letter or
                // a digit; `prev | prev >> 1` is that set of classes, without a lookup.
                if e & START != 0 && e & (prev | (prev >> 1)) & 3 == 0 {
                    if !(letters_cheap && b.is_ascii_alphabetic()) {
                        break;
                    }
                    if next_at < i {
                        next_at = buf[i..]
                            .iter()
                            .position(|b| *b == b'@')
                            .map_or(usize::MAX, |p| i + p);
                    }
                    if b | 0x20 == b's'
                        && buf
                            .get(i..i + 6)
                            .is_some_and(|w| w.eq_ignore_ascii_case(b"secret"))
                    {
                        secret_until = i + 6 + detect::SECRET_LABEL_REACH;
                    }
                    let secret_word = i < secret_until;
                    if detect::letter_may_start(buf, i, ended, next_at, secret_word, m.on) {
                        break;
                    }
                }
                prev = e & 3;
                i += 1;
            }
            self.secret_until = secret_until;
            if i >= len {
                break;
            }
            let v = View::new(&self.buf, i, ended);
            let hit = find(m, &v);
            if v.starved() {
                break;
            }
            match hit {
                Some(hit) => {
                    sink.copy(self.original(copy_from, i));
                    // The style reads the value as the detector did (`partial` keeps its
                    // last digits as ASCII); the original bytes are what is replaced.
                    let text = replacement(
                        m.style(hit.entity),
                        m.label(hit.entity),
                        m.entity_name(hit.entity),
                        &self.buf[i..i + hit.len],
                        m.token_key.as_deref(),
                    );
                    sink.replace(self.original(i, i + hit.len), &text);
                    self.counts.add(hit.entity, 1);
                    i += hit.len;
                    copy_from = i;
                    self.follow = Some(hit.follow);
                }
                None => i += 1,
            }
        }
        sink.copy(self.original(copy_from, i));
        self.cursor = i;
        self.peak_held = self.peak_held.max(len - i);
        // Keep only the lookbehind of released text.
        let keep_from = self.cursor.saturating_sub(super::scan::LOOKBEHIND);
        if keep_from > 0 {
            if let Some(original) = &mut self.original {
                if original.drain(keep_from) {
                    self.original = None;
                }
            }
            self.buf.drain(..keep_from);
            self.cursor -= keep_from;
            self.secret_until = self.secret_until.saturating_sub(keep_from);
        }
    }
}

/// The longest value at the cursor among the built-in and custom detectors (a custom one
/// wins a tie: the policy asked for it specifically).
fn find(m: &Masking, v: &View) -> Option<Hit> {
    let mut best = detect::detect(v, m.on);
    if !m.custom.is_empty() {
        let b = v.at(0)?;
        let word_start = b.is_ascii_alphanumeric() && !super::scan::is_alnum(v.before(1));
        if word_start || b.is_ascii_punctuation() {
            for (k, c) in m.custom.iter().enumerate() {
                if let Some(len) = c.find(v) {
                    if best.is_none_or(|h| len >= h.len) {
                        best = Some(Hit {
                            len,
                            entity: Entity::Custom(k as u8),
                            follow: Follow::None,
                        });
                    }
                }
            }
        }
    }
    best
}
