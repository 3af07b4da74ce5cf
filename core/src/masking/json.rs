//! JSON bodies, streamed: every string, object keys included (a model can put a card number
//! in a key as easily as in a value), is masked as its own text; the rest (numbers such as
//! `"created": 1700000000`, structure, whitespace) passes untouched, so the output stays
//! valid JSON and a body with nothing to mask is byte-identical.
//!
//! Strings are decoded before detection (`\u0034\u0031...` is seen as digits) and unchanged
//! stretches are written back in their original escaped form. Field rules replace the value
//! at a JSON pointer (`/predictions/*/ssn`) with `"[REDACTED]"` whatever it holds. A body that
//! turns out not to be JSON is masked as plain text from the first byte that broke it, so
//! a wrong content type never lets a value through.

use super::body::{mask_body, BodyKind};
use super::masker::{Counts, Masker, Sink};
use super::settings::{Masking, PointerSegment};
use super::sse::{mask_token_lists, Seg};
use super::Entity;

/// Deepest nesting read as JSON. Deeper, the rest of the body is masked as plain text: the
/// stack stays bounded whatever the body (a body of `[` alone once grew it by one frame per
/// byte, to a trap), and no value escapes masking, since text masking reads every byte.
pub const MAX_DEPTH: usize = 128;

/// Largest token list read whole (see [`TOKEN_LIST_ROOTS`]); a longer one is replaced by
/// `null`, since its tokens cannot be masked as one text without it all.
pub const MAX_TOKEN_LIST_BYTES: usize = 4 << 20;

/// Values that list the answer token by token, read whole and masked by
/// [`mask_token_lists`], so a value split over tokens is masked in each (masked one string
/// at a time, `"4111"`, `" 1111"`, ... each looks clean): an OpenAI-style answer's
/// `choices[].logprobs` (chat and completions, vLLM's too), the Responses API's
/// `output[].content[].logprobs`, TGI's `details`, and Ollama's `logprobs`. `None` is any
/// array element.
const TOKEN_LIST_ROOTS: [&[Option<&str>]; 4] = [
    &[Some("choices"), None, Some("logprobs")],
    &[
        Some("output"),
        None,
        Some("content"),
        None,
        Some("logprobs"),
    ],
    &[Some("details")],
    &[Some("logprobs")],
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// A value must come (after `:`, `,` in an array, or at the root).
    Value,
    /// A value or `]` (just after `[`).
    ValueOrClose,
    /// A key or `}` (just after `{`).
    KeyOrClose,
    /// A key (after `,` in an object).
    Key,
    Colon,
    /// `,` or a closing bracket (or, at the root, whitespace and another document).
    AfterValue,
    InString,
    Scalar,
    /// Inside a value replaced by a field rule.
    Skip,
    /// Not JSON after all: plain text from here on.
    Broken,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    /// After `\`.
    Backslash,
    /// After `\u` and `n` hex digits.
    Unicode {
        n: u8,
        value: u32,
    },
    /// A high surrogate was read; a `\uDC00`-`\uDFFF` may complete it.
    High {
        high: u32,
        n: u8,
        value: u32,
    },
}

#[derive(Debug)]
enum Frame {
    Object { key: Vec<u8> },
    Array { index: usize },
}

#[derive(Debug)]
pub struct JsonMasker {
    state: State,
    escape: Escape,
    stack: Vec<Frame>,
    text: Masker,
    pending: Pending,
    skip_depth: u32,
    skip_in_string: bool,
    skip_escape: bool,
    skip_scalar: bool,
    fields_masked: u64,
    /// The string being read is an object key (masked like a value; then a colon).
    in_key: bool,
    /// A document has started (a byte order mark is only skipped before one).
    started: bool,
    /// The token list being read (in the `Skip` state), with whether it outgrew
    /// [`MAX_TOKEN_LIST_BYTES`].
    token_list: Option<(Vec<u8>, bool)>,
    /// What the token lists masked.
    token_list_counts: Counts,
}

impl Default for JsonMasker {
    fn default() -> Self {
        Self {
            state: State::Value,
            escape: Escape::None,
            stack: Vec::new(),
            text: Masker::new(),
            pending: Pending::default(),
            skip_depth: 0,
            skip_in_string: false,
            skip_escape: false,
            skip_scalar: false,
            fields_masked: 0,
            in_key: false,
            started: false,
            token_list: None,
            token_list_counts: Counts::default(),
        }
    }
}

/// Writes `s` as the inside of a JSON string.
pub fn escape_into(s: &[u8], out: &mut Vec<u8>) {
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
}

fn hex(b: u8) -> Option<u32> {
    (b as char).to_digit(16)
}

fn utf8_len(cp: u32) -> usize {
    char::from_u32(cp).map_or(3, char::len_utf8)
}

/// One raw unit of a JSON string at the start of `raw`: (raw length, decoded length).
/// `None` when the unit is not complete yet.
fn unit(raw: &[u8]) -> Option<(usize, usize)> {
    let b = *raw.first()?;
    if b != b'\\' {
        return Some((1, 1));
    }
    match *raw.get(1)? {
        b'u' => {
            let cp = (2..6).try_fold(0u32, |acc, k| Some(acc * 16 + hex(*raw.get(k)?)?))?;
            if (0xD800..0xDC00).contains(&cp) {
                // A pair is one unit; a lone high surrogate decodes to U+FFFD.
                if raw.len() < 12 {
                    if raw.len() > 6 && raw.get(6) != Some(&b'\\')
                        || raw.len() > 7 && raw.get(7) != Some(&b'u')
                    {
                        return Some((6, 3));
                    }
                    return None;
                }
                let low = (8..12).try_fold(0u32, |acc, k| Some(acc * 16 + hex(raw[k])?));
                match (raw[6], raw[7], low) {
                    (b'\\', b'u', Some(lo)) if (0xDC00..0xE000).contains(&lo) => Some((12, 4)),
                    _ => Some((6, 3)),
                }
            } else {
                Some((6, utf8_len(cp)))
            }
        }
        _ => Some((2, 1)),
    }
}

/// The current string's raw (escaped) bytes not yet written out, and what the masker has
/// released of them in decoded bytes but not yet matched to whole raw units.
#[derive(Debug, Default)]
struct Pending {
    raw: Vec<u8>,
    /// Decoded bytes released unchanged.
    credit: usize,
    /// Decoded bytes replaced.
    debit: usize,
}

impl Pending {
    fn sink<'a>(&'a mut self, out: &'a mut Vec<u8>) -> RawSink<'a> {
        RawSink {
            pending: self,
            pos: 0,
            out,
        }
    }
}

/// Maps the masker's released text back onto the raw string bytes.
struct RawSink<'a> {
    pending: &'a mut Pending,
    pos: usize,
    out: &'a mut Vec<u8>,
}

impl RawSink<'_> {
    fn settle(&mut self) {
        let p = &mut *self.pending;
        loop {
            // What is replaced is settled before what is copied after it.
            let owed = if p.debit > 0 { p.debit } else { p.credit };
            if owed == 0 {
                break;
            }
            let rest = &p.raw[self.pos..];
            // A plain stretch maps byte for byte and settles at once; an escape is one unit,
            // which waits while only part of it is owed.
            let span = owed.min(rest.len());
            let plain = rest[..span]
                .iter()
                .position(|b| *b == b'\\')
                .unwrap_or(span);
            let (r, d) = match plain {
                0 => match unit(rest) {
                    Some(u) => u,
                    None => break,
                },
                n => (n, n),
            };
            if d > owed {
                break;
            }
            if p.debit > 0 {
                p.debit -= d;
            } else {
                p.credit -= d;
                self.out.extend_from_slice(&rest[..r]);
            }
            self.pos += r;
        }
    }
}

impl Sink for RawSink<'_> {
    fn copy(&mut self, text: &[u8]) {
        self.pending.credit += text.len();
        self.settle();
    }
    fn replace(&mut self, original: &[u8], replacement: &str) {
        self.settle();
        self.pending.debit += original.len();
        self.settle();
        escape_into(replacement.as_bytes(), self.out);
    }
}

impl Drop for RawSink<'_> {
    fn drop(&mut self) {
        self.pending.raw.drain(..self.pos);
    }
}

impl JsonMasker {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn counts(&self) -> Counts {
        let mut c = self.text.counts().clone();
        if self.fields_masked > 0 {
            c.add(Entity::Field, self.fields_masked);
        }
        c.merge(&self.token_list_counts);
        c
    }

    pub fn held(&self) -> usize {
        self.text.held()
            + self.pending.raw.len()
            + self.token_list.as_ref().map_or(0, |(t, _)| t.len())
    }

    /// Whether the value about to start lists the answer token by token.
    fn at_token_list(&self) -> bool {
        TOKEN_LIST_ROOTS.iter().any(|root| {
            root.len() == self.stack.len()
                && root
                    .iter()
                    .zip(&self.stack)
                    .all(|(seg, frame)| match (seg, frame) {
                        (None, Frame::Array { .. }) => true,
                        (Some(n), Frame::Object { key }) => n.as_bytes() == key.as_slice(),
                        _ => false,
                    })
        })
    }

    /// The token list was read whole: masked as a document, or `null` when it was too long
    /// to keep.
    fn end_token_list(&mut self, m: &Masking, out: &mut Vec<u8>) {
        match self.token_list.take() {
            Some((_, true)) => {
                out.extend_from_slice(b"null");
                self.fields_masked += 1;
            }
            Some((list, false)) => {
                let at = self
                    .stack
                    .iter()
                    .map(|frame| match frame {
                        Frame::Object { key } => Seg::Key(String::from_utf8_lossy(key).into()),
                        Frame::Array { index } => Seg::Index(*index),
                    })
                    .collect();
                let (masked, counts) = mask_token_lists(m, at, &list);
                out.extend_from_slice(&masked);
                self.token_list_counts.merge(&counts);
            }
            None => {}
        }
    }

    pub fn peak_held(&self) -> usize {
        self.text.peak_held()
    }

    /// Whether `rule` names the value about to start.
    fn at(&self, rule: &[PointerSegment]) -> bool {
        rule.len() == self.stack.len()
            && rule
                .iter()
                .zip(&self.stack)
                .all(|(seg, frame)| match (seg, frame) {
                    (PointerSegment::Any, _) => true,
                    (PointerSegment::Name(n), Frame::Object { key }) => {
                        n.as_bytes() == key.as_slice()
                    }
                    (PointerSegment::Name(n), Frame::Array { index }) => n.parse() == Ok(*index),
                })
    }

    /// What replaces the value about to start, if a rule names it: `null` for a stripped
    /// value (`masking.logprobs: strip`), `"[REDACTED]"` for a field rule.
    fn replacement(&self, m: &Masking) -> Option<&'static [u8]> {
        if m.strip.iter().any(|r| self.at(r)) {
            return Some(b"null");
        }
        m.fields
            .iter()
            .any(|r| self.at(r))
            .then_some(b"\"[REDACTED]\"".as_slice())
    }

    /// Feeds decoded text of the current string value to the masker.
    fn feed(&mut self, m: &Masking, decoded: &[u8], raw: &[u8], out: &mut Vec<u8>) {
        if self.in_key {
            // Field rules match the decoded key (its first 512 bytes).
            if let Some(Frame::Object { key }) = self.stack.last_mut() {
                let room = 512usize.saturating_sub(key.len());
                key.extend_from_slice(&decoded[..decoded.len().min(room)]);
            }
        }
        self.pending.raw.extend_from_slice(raw);
        self.text.push(m, decoded, &mut self.pending.sink(out));
    }

    fn end_string(&mut self, m: &Masking, out: &mut Vec<u8>) {
        let mut sink = self.pending.sink(out);
        self.text.finish(m, &mut sink);
        sink.settle();
        drop(sink);
        // Whatever raw bytes remain could not be matched (a lone escape): keep them.
        let p = &mut self.pending;
        out.extend_from_slice(&p.raw);
        p.raw.clear();
        (p.credit, p.debit) = (0, 0);
    }

    fn value_done(&mut self) {
        self.state = State::AfterValue;
    }

    fn start_value(&mut self, m: &Masking, b: u8, out: &mut Vec<u8>) -> bool {
        self.started = true;
        let replaced = if m.fields.is_empty() && m.strip.is_empty() {
            None
        } else {
            self.replacement(m)
        };
        if let Some(replacement) = replaced {
            out.extend_from_slice(replacement);
            if replacement != b"null" {
                self.fields_masked += 1;
            }
            self.state = State::Skip;
            self.skip_depth = 0;
            self.skip_in_string = b == b'"';
            self.skip_escape = false;
            self.skip_scalar = !matches!(b, b'"' | b'{' | b'[');
            if matches!(b, b'{' | b'[') {
                self.skip_depth = 1;
            }
            return true;
        }
        if matches!(b, b'{' | b'[') && self.at_token_list() {
            self.state = State::Skip;
            (self.skip_depth, self.skip_in_string, self.skip_escape) = (1, false, false);
            self.skip_scalar = false;
            self.token_list = Some((vec![b], false));
            return true;
        }
        match b {
            b'"' => {
                out.push(b);
                self.state = State::InString;
                // The key names what the value is (`"routing_number": "021000021"`).
                if let Some(Frame::Object { key }) = self.stack.last() {
                    if !key.is_empty() {
                        self.text.seed(key);
                    }
                }
                self.escape = Escape::None;
            }
            b'{' | b'[' if self.stack.len() >= MAX_DEPTH => return false,
            b'{' => {
                out.push(b);
                self.stack.push(Frame::Object { key: Vec::new() });
                self.state = State::KeyOrClose;
            }
            b'[' => {
                out.push(b);
                self.stack.push(Frame::Array { index: 0 });
                self.state = State::ValueOrClose;
            }
            b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                out.push(b);
                self.state = State::Scalar;
            }
            _ => return false,
        }
        true
    }

    fn close(&mut self, b: u8, out: &mut Vec<u8>) -> bool {
        let ok = matches!(
            (self.stack.last(), b),
            (Some(Frame::Object { .. }), b'}') | (Some(Frame::Array { .. }), b']')
        );
        if ok {
            self.stack.pop();
            out.push(b);
            self.value_done();
        }
        ok
    }

    /// Masks the next chunk of the body into `out`.
    pub fn push(&mut self, m: &Masking, chunk: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < chunk.len() {
            let b = chunk[i];
            match self.state {
                State::Broken => {
                    let mut sink = std::mem::take(out);
                    self.text.push(m, &chunk[i..], &mut sink);
                    *out = sink;
                    return;
                }
                State::InString => {
                    if self.escape == Escape::None {
                        // The common case: a run of plain characters.
                        let start = i;
                        while i < chunk.len()
                            && chunk[i] != b'"'
                            && chunk[i] != b'\\'
                            && chunk[i] >= 0x20
                        {
                            i += 1;
                        }
                        if i > start {
                            let run = &chunk[start..i];
                            self.feed(m, run, run, out);
                            continue;
                        }
                    }
                    self.string_byte(m, b, out);
                }
                State::Skip => {
                    if let Some((list, too_long)) = &mut self.token_list {
                        if list.len() < MAX_TOKEN_LIST_BYTES {
                            list.push(b);
                        } else {
                            *too_long = true;
                        }
                    }
                    let consumed = self.skip_byte(b);
                    if self.state != State::Skip {
                        self.end_token_list(m, out);
                    }
                    if !consumed {
                        continue;
                    }
                }
                State::Scalar => {
                    if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-') {
                        out.push(b);
                    } else {
                        self.value_done();
                        continue; // the delimiter is read in AfterValue
                    }
                }
                _ if b.is_ascii_whitespace() => out.push(b),
                // A byte order mark before the first document (UTF-8's EF BB BF) is kept and
                // skipped, so a JSON body that starts with one is still read as JSON.
                State::Value
                    if self.stack.is_empty()
                        && !self.started
                        && matches!(b, 0xEF | 0xBB | 0xBF) =>
                {
                    out.push(b)
                }
                State::Value | State::ValueOrClose => {
                    let ok = if b == b']' && self.state == State::ValueOrClose {
                        self.close(b, out)
                    } else {
                        self.start_value(m, b, out)
                    };
                    if !ok {
                        self.broken(m, &chunk[i..], out);
                        return;
                    }
                }
                State::KeyOrClose | State::Key => {
                    if b == b'"' {
                        out.push(b);
                        if let Some(Frame::Object { key }) = self.stack.last_mut() {
                            key.clear();
                        }
                        self.state = State::InString;
                        self.in_key = true;
                        self.escape = Escape::None;
                    } else if !(b == b'}' && self.state == State::KeyOrClose && self.close(b, out))
                    {
                        self.broken(m, &chunk[i..], out);
                        return;
                    }
                }
                State::Colon => {
                    if b == b':' {
                        out.push(b);
                        self.state = State::Value;
                    } else {
                        self.broken(m, &chunk[i..], out);
                        return;
                    }
                }
                State::AfterValue => {
                    let ok = match (b, self.stack.last_mut()) {
                        (b',', Some(Frame::Object { .. })) => {
                            self.state = State::Key;
                            out.push(b);
                            true
                        }
                        (b',', Some(Frame::Array { index })) => {
                            *index += 1;
                            self.state = State::Value;
                            out.push(b);
                            true
                        }
                        (b'}' | b']', Some(_)) => self.close(b, out),
                        // Another document (JSON Lines, concatenated JSON).
                        (_, None) => self.start_value(m, b, out),
                        _ => false,
                    };
                    if !ok {
                        self.broken(m, &chunk[i..], out);
                        return;
                    }
                }
            }
            i += 1;
        }
    }

    fn string_byte(&mut self, m: &Masking, b: u8, out: &mut Vec<u8>) {
        match self.escape {
            Escape::None => match b {
                b'"' => {
                    self.end_string(m, out);
                    out.push(b);
                    if std::mem::take(&mut self.in_key) {
                        self.state = State::Colon;
                    } else {
                        self.value_done();
                    }
                }
                b'\\' => {
                    self.pending.raw.push(b);
                    self.escape = Escape::Backslash;
                }
                // A raw control character is invalid JSON; keep it as text.
                _ => self.feed(m, &[b], &[b], out),
            },
            Escape::Backslash => {
                let decoded = match b {
                    b'"' => Some(b'"'),
                    b'\\' => Some(b'\\'),
                    b'/' => Some(b'/'),
                    b'b' => Some(0x08),
                    b'f' => Some(0x0c),
                    b'n' => Some(b'\n'),
                    b'r' => Some(b'\r'),
                    b't' => Some(b'\t'),
                    b'u' => None,
                    _ => {
                        // Not a JSON escape: not JSON either.
                        self.broken(m, &[b], out);
                        return;
                    }
                };
                self.pending.raw.push(b);
                match decoded {
                    Some(d) => {
                        self.escape = Escape::None;
                        self.feed(m, &[d], &[], out);
                    }
                    None => self.escape = Escape::Unicode { n: 0, value: 0 },
                }
            }
            Escape::Unicode { n, value } | Escape::High { n, value, .. } => {
                let high = match self.escape {
                    Escape::High { high, .. } => Some(high),
                    _ => None,
                };
                // In a High state, n counts the bytes after the first escape: `\`, `u`, 4 hex.
                if let Some(high) = high {
                    let expected = match n {
                        0 => b == b'\\',
                        1 => b == b'u',
                        _ => hex(b).is_some(),
                    };
                    if !expected {
                        // A lone high surrogate decodes to U+FFFD (as `unit` maps it); the
                        // byte is then read afresh, after the `\` when one was seen.
                        self.feed(m, "\u{FFFD}".as_bytes(), &[], out);
                        self.escape = match n {
                            0 => Escape::None,
                            1 => Escape::Backslash,
                            _ => {
                                self.broken(m, &[b], out);
                                return;
                            }
                        };
                        self.string_byte(m, b, out);
                        return;
                    }
                    self.pending.raw.push(b);
                    let value = if n >= 2 {
                        value * 16 + hex(b).unwrap_or(0)
                    } else {
                        value
                    };
                    if n == 5 {
                        self.escape = Escape::None;
                        if (0xDC00..0xE000).contains(&value) {
                            let cp = 0x10000 + ((high - 0xD800) << 10) + (value - 0xDC00);
                            let c = char::from_u32(cp).unwrap_or('\u{FFFD}');
                            let mut buf = [0u8; 4];
                            self.feed(m, c.encode_utf8(&mut buf).as_bytes(), &[], out);
                        } else {
                            // High then something else: two units, as `unit` sees them.
                            self.feed(m, "\u{FFFD}".as_bytes(), &[], out);
                            let c = char::from_u32(value).unwrap_or('\u{FFFD}');
                            let mut buf = [0u8; 4];
                            self.feed(m, c.encode_utf8(&mut buf).as_bytes(), &[], out);
                        }
                    } else {
                        self.escape = Escape::High {
                            high,
                            n: n + 1,
                            value,
                        };
                    }
                    return;
                }
                let Some(h) = hex(b) else {
                    self.broken(m, &[b], out);
                    return;
                };
                self.pending.raw.push(b);
                let value = value * 16 + h;
                if n < 3 {
                    self.escape = Escape::Unicode { n: n + 1, value };
                } else if (0xD800..0xDC00).contains(&value) {
                    self.escape = Escape::High {
                        high: value,
                        n: 0,
                        value: 0,
                    };
                } else {
                    self.escape = Escape::None;
                    let c = char::from_u32(value).unwrap_or('\u{FFFD}');
                    let mut buf = [0u8; 4];
                    self.feed(m, c.encode_utf8(&mut buf).as_bytes(), &[], out);
                }
            }
        }
    }

    /// Consumes one byte of a value replaced by a field rule; `false` when the byte is the
    /// delimiter after a skipped number or literal (it belongs to the structure around it).
    fn skip_byte(&mut self, b: u8) -> bool {
        if self.skip_scalar {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-') {
                return true;
            }
            self.value_done();
            return false;
        }
        if self.skip_in_string {
            if self.skip_escape {
                self.skip_escape = false;
            } else if b == b'\\' {
                self.skip_escape = true;
            } else if b == b'"' {
                self.skip_in_string = false;
                if self.skip_depth == 0 {
                    self.value_done();
                }
            }
            return true;
        }
        match b {
            b'"' => self.skip_in_string = true,
            b'{' | b'[' => self.skip_depth += 1,
            b'}' | b']' => {
                self.skip_depth = self.skip_depth.saturating_sub(1);
                if self.skip_depth == 0 {
                    self.value_done();
                }
            }
            _ => {}
        }
        true
    }

    /// Not JSON: the current string (if any) is finished and the rest is plain text.
    fn broken(&mut self, m: &Masking, rest: &[u8], out: &mut Vec<u8>) {
        if self.state == State::InString {
            self.end_string(m, out);
        }
        self.state = State::Broken;
        let mut sink = std::mem::take(out);
        self.text.push(m, rest, &mut sink);
        *out = sink;
    }

    /// The body ended.
    pub fn finish(&mut self, m: &Masking, out: &mut Vec<u8>) {
        if let Some((list, _)) = self.token_list.take() {
            // The body ended inside a token list: what came of it is masked as text.
            let (masked, counts) = mask_body(m, BodyKind::Text, &list);
            out.extend_from_slice(&masked);
            self.token_list_counts.merge(&counts);
        }
        match self.state {
            State::InString => self.end_string(m, out),
            State::Broken => self.text.finish(m, out),
            _ => {}
        }
    }
}
