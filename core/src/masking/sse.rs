//! Server-Sent Events (`text/event-stream`), as LLM servers stream their answers.
//!
//! The content deltas of one stream are one logical text: a card number the model writes
//! as `41`, `11 1111`, ` 1111 11`, `11` over four events is masked, because the deltas of a
//! channel (an OpenAI choice, an Anthropic content block, or plain `data:` lines) go through
//! one [`Masker`]. Everything else is left alone: framing, event order, `event:`/`id:` lines,
//! and every JSON field other than the content strings; an event whose content did not
//! change is written back byte for byte.
//!
//! Recognised content, each a channel of its own: OpenAI chat chunks (vLLM's and any
//! OpenAI-compatible server's too: `choices[].delta.content`, `.reasoning_content`,
//! `.reasoning`, `.refusal`, `.tool_calls[].function.arguments`; the log probabilities'
//! tokens `choices[].logprobs.content[].token`, and `.top_logprobs[k].token` as one channel
//! per rank k, so a card read token by token is one text) and completions (`choices[].text`);
//! the OpenAI Responses API (`delta` of `response.output_text.delta`, `.refusal.delta`,
//! `.function_call_arguments.delta`, `.reasoning_*.delta`, by `output_index` and
//! `content_index`); Anthropic `content_block_delta` (`delta.text`, `.partial_json`,
//! `.thinking`) and `content_block_start` (`content_block.text`); Hugging Face TGI
//! `/generate_stream` (`token.text`; the final `generated_text` alone); Ollama
//! (`message.content`, `message.thinking`, `response`: JSON Lines, see
//! [`SseMasker::json_lines`]); llama.cpp `/completion` (`content`); Triton
//! `generate_stream` (`text_output`); and `data:` values that are not JSON. Every other
//! string of an event of a recognised shape is masked on its own. In an event of no
//! recognised shape every string is content: the string at the same JSON path in
//! consecutive events is one channel, so a value split across events is caught in a format
//! nobody listed.
//!
//! Events wait while the masker holds back text they carry (and events after them wait to
//! keep the order). The masker holds at most [`Masking::hold_back_bound`] bytes, so at most
//! that many content events wait; a stream that queues more than [`MAX_HELD_EVENTS`] events
//! or [`MAX_HELD_BYTES`] bytes behind one undecided value (only possible with that many
//! events carrying no content, or another choice's) has the value decided early, at that
//! point, and what is still undecided masked (a candidate is never passed).

use super::body::{mask_body, BodyKind};
use super::json::escape_into;
use super::masker::{Counts, Masker, Sink};
use super::settings::{Masking, PointerSegment};
use super::Entity;
use std::collections::VecDeque;

pub const MAX_HELD_EVENTS: usize = 1024;
pub const MAX_HELD_BYTES: usize = 1024 * 1024;
/// Longest line read as SSE framing; past it, the body is masked as text.
pub const MAX_LINE_BYTES: usize = 256 * 1024;

#[derive(Debug)]
struct Piece {
    /// The bytes of the event this piece's output replaces (a JSON string's inside, or a
    /// `data:` value).
    start: usize,
    end: usize,
    json: bool,
    output: Vec<u8>,
    remaining: usize,
    /// A replacement touched this piece; otherwise its bytes are written back as they came.
    changed: bool,
    /// A log probability's `bytes` array (the UTF-8 of a token): written anew from the
    /// token piece it names when that one changed, so the bytes never spell what the token
    /// no longer does.
    bytes_of: Option<usize>,
}

/// An event's data: one data line's value (a span of the raw event: no copy, the common
/// case), or several joined with LF.
#[derive(Debug)]
enum Data {
    Span(usize, usize),
    Joined(Vec<u8>),
}

#[derive(Debug)]
struct Event {
    raw: Vec<u8>,
    data: Data,
    /// Lines other than data whose masking changed them: (where the line starts in `raw`,
    /// its masked content). Empty, and unallocated, in almost every event.
    fixes: Vec<(usize, Vec<u8>)>,
    /// Pieces index into the event's data.
    pieces: Vec<Piece>,
    pending: usize,
}

impl Event {
    fn value(&self) -> &[u8] {
        match &self.data {
            Data::Span(s, e) => &self.raw[*s..*e],
            Data::Joined(v) => v,
        }
    }
}

#[derive(Debug)]
struct Channel {
    key: String,
    masker: Masker,
    /// (event sequence number, piece index) of pieces not yet fully released.
    pieces: VecDeque<(u64, usize)>,
}

#[derive(Debug, Default)]
pub struct SseMasker {
    line: Vec<u8>,
    /// The line in `line` ended with CR at the end of a chunk: an LF may follow.
    after_cr: bool,
    event: Vec<u8>,
    fixes: Vec<(usize, Vec<u8>)>,
    data: Vec<(usize, usize)>,
    /// Not an event stream after all: the rest is masked as text.
    text: Option<Masker>,
    /// JSON Lines: every line is an event, all of it data.
    json_lines: bool,
    /// One whole document and where it sits in its body (see [`mask_token_lists`]):
    /// strings are channelled by [`token_list_channel`].
    document: Option<Vec<Seg>>,
    /// Strings that are not content, each masked on its own.
    alone: Alone,
    queue: VecDeque<Event>,
    front_seq: u64,
    channels: Vec<Channel>,
    other: Counts,
    peak_events: usize,
    peak_bytes: usize,
    forced: u64,
}

struct PieceSink<'a> {
    queue: &'a mut VecDeque<Event>,
    front_seq: u64,
    pieces: &'a mut VecDeque<(u64, usize)>,
}

impl PieceSink<'_> {
    /// Consumes `n` input bytes from the channel's pieces, copying them to the output when
    /// `text` is given.
    fn consume(&mut self, mut n: usize, text: Option<&[u8]>) {
        let mut at = 0;
        while n > 0 {
            let Some(&(seq, k)) = self.pieces.front() else {
                return;
            };
            let Some(event) = self.queue.get_mut((seq - self.front_seq) as usize) else {
                return;
            };
            let piece = &mut event.pieces[k];
            let take = piece.remaining.min(n);
            match text {
                Some(t) => piece.output.extend_from_slice(&t[at..at + take]),
                None => piece.changed = true,
            }
            piece.remaining -= take;
            n -= take;
            at += take;
            if piece.remaining == 0 {
                event.pending -= 1;
                self.pieces.pop_front();
            }
        }
    }
}

impl Sink for PieceSink<'_> {
    fn copy(&mut self, text: &[u8]) {
        self.consume(text.len(), Some(text));
    }
    fn replace(&mut self, original: &[u8], replacement: &str) {
        // The replacement goes where the value started.
        if let Some(&(seq, k)) = self.pieces.front() {
            if let Some(event) = self.queue.get_mut((seq - self.front_seq) as usize) {
                let piece = &mut event.pieces[k];
                piece.output.extend_from_slice(replacement.as_bytes());
                piece.changed = true;
            }
        }
        self.consume(original.len(), None);
    }
}

/// A string found in an event's JSON: its path and the span of its inside; `key` for an
/// object key (masked on its own, never content).
struct Found {
    path: Vec<Seg>,
    start: usize,
    end: usize,
    key: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Seg {
    Key(String),
    Index(usize),
}

/// Collects string values (with their spans) and integer `index` fields of a JSON document.
struct Scan<'a> {
    b: &'a [u8],
    m: &'a Masking,
    /// Values a field rule or `logprobs: strip` replaces: (start, end, replacement).
    replaced: Vec<(usize, usize, &'static [u8])>,
    i: usize,
    path: Vec<Seg>,
    strings: Vec<Found>,
    indexes: Vec<(Vec<Seg>, u64)>,
    /// Arrays under a `bytes` key (a log probability's token as UTF-8): path and span.
    byte_arrays: Vec<(Vec<Seg>, usize, usize)>,
    /// Whether a member at the top level names a recognised format.
    known: bool,
    /// No custom detectors: a key that is a plain lower-case word needs no masking.
    plain_keys_clean: bool,
}

/// A field line whose name and value are [`plain_word`]s (`event: message_delta`).
fn plain_field(line: &[u8]) -> bool {
    let (name, value) = match line.iter().position(|b| *b == b':') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, &[][..]),
    };
    let value = value.strip_prefix(b" ").unwrap_or(value);
    plain_word(name) && plain_word(value)
}

/// Lower-case letters, `_` and `.` only (`content`, `chat.completion.chunk`): no built-in
/// entity can be written without a digit, `@`, `:`, `-` or a capital.
fn plain_word(b: &[u8]) -> bool {
    b.iter()
        .all(|b| b.is_ascii_lowercase() || matches!(b, b'_' | b'.'))
}

impl Scan<'_> {
    fn array(&mut self, depth: usize) -> Option<()> {
        self.i += 1;
        self.ws();
        if self.b.get(self.i) == Some(&b']') {
            self.i += 1;
            return Some(());
        }
        let mut k = 0;
        loop {
            self.path.push(Seg::Index(k));
            self.value(depth + 1)?;
            self.path.pop();
            self.ws();
            match *self.b.get(self.i)? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
            k += 1;
        }
    }

    fn ws(&mut self) {
        while self.i < self.b.len() && self.b[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn string(&mut self) -> Option<(usize, usize)> {
        if self.b.get(self.i) != Some(&b'"') {
            return None;
        }
        self.i += 1;
        let start = self.i;
        while self.i < self.b.len() {
            match self.b[self.i] {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    return Some((start, self.i - 1));
                }
                _ => self.i += 1,
            }
        }
        None
    }
    /// What replaces the value at the current path, if a rule names it.
    fn replacement(&self) -> Option<&'static [u8]> {
        let at = |rule: &Vec<PointerSegment>| {
            rule.len() == self.path.len()
                && rule.iter().zip(&self.path).all(|(r, p)| match (r, p) {
                    (PointerSegment::Any, _) => true,
                    (PointerSegment::Name(n), Seg::Key(k)) => n == k,
                    (PointerSegment::Name(n), Seg::Index(i)) => n.parse() == Ok(*i),
                })
        };
        if self.m.strip.iter().any(at) {
            return Some(b"null");
        }
        self.m
            .fields
            .iter()
            .any(at)
            .then_some(b"\"[REDACTED]\"".as_slice())
    }

    fn value(&mut self, depth: usize) -> Option<()> {
        if depth > 64 {
            return None;
        }
        self.ws();
        let start = self.i;
        self.one_value(depth)?;
        if !(self.m.strip.is_empty() && self.m.fields.is_empty()) {
            if let Some(r) = self.replacement() {
                // An outer value replaced takes the inner ones with it.
                let end = self.i;
                self.replaced.retain(|&(s, e, _)| !(s >= start && e <= end));
                self.replaced.push((start, end, r));
            }
        }
        Some(())
    }

    fn one_value(&mut self, depth: usize) -> Option<()> {
        match *self.b.get(self.i)? {
            b'"' => {
                let (start, end) = self.string()?;
                self.strings.push(Found {
                    path: self.path.clone(),
                    start,
                    end,
                    key: false,
                });
            }
            b'{' => {
                self.i += 1;
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Some(());
                }
                for ordinal in 0.. {
                    self.ws();
                    let (ks, ke) = self.string()?;
                    let key = String::from_utf8_lossy(&self.b[ks..ke]).into_owned();
                    // Keys are masked too, but a plain lower-case word cannot hold a value.
                    if !(self.plain_keys_clean && plain_word(&self.b[ks..ke])) {
                        // A key's path is its object's and its place among the keys.
                        let mut path = self.path.clone();
                        path.push(Seg::Index(ordinal));
                        self.strings.push(Found {
                            path,
                            start: ks,
                            end: ke,
                            key: true,
                        });
                    }
                    self.ws();
                    if self.b.get(self.i) != Some(&b':') {
                        return None;
                    }
                    self.i += 1;
                    if self.path.is_empty() && KNOWN_ROOTS.contains(&key.as_str()) {
                        self.known = true;
                    }
                    self.path.push(Seg::Key(key));
                    self.value(depth + 1)?;
                    self.path.pop();
                    self.ws();
                    match *self.b.get(self.i)? {
                        b',' => self.i += 1,
                        b'}' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                let start = self.i;
                self.array(depth)?;
                if matches!(self.path.last(), Some(Seg::Key(k)) if k == "bytes") {
                    self.byte_arrays.push((self.path.clone(), start, self.i));
                }
            }
            _ => {
                let start = self.i;
                while self.i < self.b.len()
                    && (self.b[self.i].is_ascii_alphanumeric() || b".+-".contains(&self.b[self.i]))
                {
                    self.i += 1;
                }
                if self.i == start {
                    return None;
                }
                if matches!(self.path.last(), Some(Seg::Key(k)) if INDEX_KEYS.contains(&k.as_str()))
                {
                    if let Ok(n) = std::str::from_utf8(&self.b[start..self.i])
                        .unwrap_or("")
                        .parse()
                    {
                        self.indexes.push((self.path.clone(), n));
                    }
                }
            }
        }
        Some(())
    }
}

/// Masks strings that are not content, each on its own, remembering the last few found
/// clean (event metadata repeats in every event: an id, the object type, the model), so
/// those cost a comparison.
#[derive(Debug, Default)]
struct Alone {
    masker: Masker,
    out: Vec<u8>,
    /// Raw (quoted) strings found clean, most recent last.
    clean: VecDeque<Vec<u8>>,
}

/// How many clean strings [`Alone`] remembers.
const CLEAN_STRINGS: usize = 16;

impl Alone {
    /// Whether `raw` (a quoted JSON string) is known to hold nothing to mask: a
    /// [`plain_word`], or one found clean recently. Custom detectors may match any word, so
    /// with them only the second counts.
    fn is_clean(&self, m: &Masking, raw: &[u8]) -> bool {
        self.clean.iter().any(|c| c.as_slice() == raw)
            || (m.custom.is_empty()
                && plain_word(raw.get(1..raw.len().saturating_sub(1)).unwrap_or_default()))
    }

    /// The masked text, when masking changed it.
    fn mask(&mut self, m: &Masking, raw: &[u8], text: &str) -> Option<Vec<u8>> {
        let before = self.masker.counts().total();
        self.out.clear();
        self.masker.push(m, text.as_bytes(), &mut self.out);
        self.masker.finish(m, &mut self.out);
        if self.masker.counts().total() > before {
            return Some(self.out.clone());
        }
        if raw.len() <= 256 {
            if self.clean.len() == CLEAN_STRINGS {
                self.clean.pop_front();
            }
            self.clean.push_back(raw.to_vec());
        }
        None
    }
}

/// Top-level members of the event formats recognised by name (OpenAI chat and completions,
/// the Responses API and Anthropic's `type`, TGI, Ollama, llama.cpp, Triton): an event with
/// one of them is of a recognised shape, even one that carries no content (a role, usage).
const KNOWN_ROOTS: [&str; 9] = [
    "choices",
    "type",
    "token",
    "generated_text",
    "message",
    "response",
    "content",
    "text_output",
    "delta",
];

/// Integer fields that name which channel a string belongs to.
const INDEX_KEYS: [&str; 3] = ["index", "output_index", "content_index"];

/// The channel of a string of an event of no recognised shape: its JSON path.
fn path_channel(path: &[Seg]) -> String {
    let mut key = String::from("path");
    for s in path {
        match s {
            Seg::Key(k) => {
                key.push('/');
                key.push_str(k);
            }
            Seg::Index(i) => {
                key.push('/');
                key.push_str(&i.to_string());
            }
        }
    }
    key
}

/// Where a string sits among a document's token lists: its path with the position in a
/// token list written `*`, so a list's tokens (`content[*].token`, `tokens[*].text`) are
/// one channel and each rank of the alternatives (`content[*].top_logprobs[k].token`,
/// `top_tokens[*][k].text`) one more, while every other string is a channel of its own.
fn token_list_channel(path: &[Seg]) -> String {
    let mut key = String::from("doc");
    let mut after_list = false;
    for s in path {
        match s {
            Seg::Key(k) => {
                key.push('/');
                key.push_str(k);
                after_list = TOKEN_LISTS.contains(&k.as_str());
            }
            Seg::Index(i) => {
                key.push('/');
                if after_list {
                    key.push('*');
                } else {
                    key.push_str(&i.to_string());
                }
                after_list = false;
            }
        }
    }
    key
}

/// The channel of a key that is a token (the completions API lists each position's
/// alternatives as `{"token": logprob}` in `top_logprobs`): one per rank.
fn alternatives_channel(path: &[Seg]) -> Option<String> {
    match path {
        [list @ .., tl, Seg::Index(_), Seg::Index(rank)] if key(tl, "top_logprobs") => Some(
            format!("{}/top_logprobs/*/{rank}", token_list_channel(list)),
        ),
        _ => None,
    }
}

/// Keys whose array lists an answer token by token: OpenAI's `logprobs.content` and
/// `.refusal`, the completions API's `logprobs.tokens`, the Responses API's and Ollama's
/// `logprobs`, TGI's `details.tokens`, `.prefill` and `.top_tokens`.
const TOKEN_LISTS: [&str; 6] = [
    "content",
    "refusal",
    "tokens",
    "prefill",
    "top_tokens",
    "logprobs",
];

/// The `bytes` array beside the token at `path` (`{"token": "41", "bytes": [52, 49]}`).
fn byte_arrays_beside<'a>(
    arrays: &'a [(Vec<Seg>, usize, usize)],
    path: &[Seg],
) -> Option<&'a (Vec<Seg>, usize, usize)> {
    let (last, parent) = path.split_last()?;
    if !key(last, "token") {
        return None;
    }
    arrays.iter().find(|(p, _, _)| {
        p.len() == path.len() && p.starts_with(parent) && p.last().is_some_and(|s| key(s, "bytes"))
    })
}

/// Masks a document that lists an answer token by token (an answer's log probabilities,
/// TGI's details), whole: the tokens of a list are one text, so a value the model wrote
/// over several tokens is masked in every token that carries part of it, and the `bytes`
/// beside a changed token are written anew. `at` is where the document sits in the body
/// (field rules and `logprobs: strip` name paths from the body's root). The caller bounds
/// the document's size.
pub(super) fn mask_token_lists(m: &Masking, at: Vec<Seg>, doc: &[u8]) -> (Vec<u8>, Counts) {
    let mut s = SseMasker {
        document: Some(at),
        json_lines: true,
        ..SseMasker::default()
    };
    let mut out = Vec::with_capacity(doc.len());
    s.event = doc.to_vec();
    s.data.push((0, doc.len()));
    s.end_event(m, &mut out);
    s.flush_channels(m, &mut out);
    (out, s.counts())
}

fn seg_name(s: &Seg) -> &str {
    match s {
        Seg::Key(k) => k,
        Seg::Index(_) => "",
    }
}

fn key(s: &Seg, name: &str) -> bool {
    matches!(s, Seg::Key(k) if k == name)
}

/// The channel a content string belongs to, if it is content.
fn content_channel(path: &[Seg], indexes: &[(Vec<Seg>, u64)]) -> Option<String> {
    // The value of integer field `name` beside `prefix` (in the object `prefix` names).
    let field_at = |prefix: &[Seg], name: &str, fallback: usize| -> u64 {
        indexes
            .iter()
            .find(|(p, _)| {
                p.len() == prefix.len() + 1
                    && p.starts_with(prefix)
                    && p.last().is_some_and(|s| key(s, name))
            })
            .map_or(fallback as u64, |(_, n)| *n)
    };
    let index_at = |prefix: &[Seg], fallback: usize| field_at(prefix, "index", fallback);
    match path {
        [c, Seg::Index(i), rest @ ..] if key(c, "choices") => {
            let choice = index_at(&path[..2], *i);
            match rest {
                [d, f] if key(d, "delta") && key(f, "content") => Some(format!("choice{choice}")),
                [d, f]
                    if key(d, "delta") && (key(f, "reasoning_content") || key(f, "reasoning")) =>
                {
                    Some(format!("choice{choice}.reasoning"))
                }
                [d, f] if key(d, "delta") && key(f, "refusal") => {
                    Some(format!("choice{choice}.refusal"))
                }
                [t] if key(t, "text") => Some(format!("choice{choice}")),
                [d, tc, Seg::Index(j), f, a]
                    if key(d, "delta")
                        && key(tc, "tool_calls")
                        && key(f, "function")
                        && key(a, "arguments") =>
                {
                    let tool = index_at(&path[..5], *j);
                    Some(format!("choice{choice}.tool{tool}"))
                }
                [l, c, Seg::Index(_), t]
                    if key(l, "logprobs")
                        && (key(c, "content") || key(c, "refusal"))
                        && key(t, "token") =>
                {
                    Some(format!("choice{choice}.logprobs.{}", seg_name(c)))
                }
                [l, c, Seg::Index(_), tl, Seg::Index(k), t]
                    if key(l, "logprobs")
                        && (key(c, "content") || key(c, "refusal"))
                        && key(tl, "top_logprobs")
                        && key(t, "token") =>
                {
                    Some(format!("choice{choice}.logprobs.{}.top{k}", seg_name(c)))
                }
                // The completions API lists its tokens as strings.
                [l, t, Seg::Index(_)] if key(l, "logprobs") && key(t, "tokens") => {
                    Some(format!("choice{choice}.logprobs.tokens"))
                }
                _ => None,
            }
        }
        // The Responses API: every `*.delta` event carries its text in `delta`.
        [d] if key(d, "delta") => Some(format!(
            "output{}.{}",
            field_at(&[], "output_index", 0),
            field_at(&[], "content_index", 0)
        )),
        [d, f]
            if key(d, "delta")
                && (key(f, "text") || key(f, "partial_json") || key(f, "thinking")) =>
        {
            Some(format!("block{}", index_at(&[], 0)))
        }
        [c, t] if key(c, "content_block") && key(t, "text") => {
            Some(format!("block{}", index_at(&[], 0)))
        }
        // The log probabilities of a Responses API delta (and of Ollama's events).
        [l, Seg::Index(_), t] if key(l, "logprobs") && key(t, "token") => Some(format!(
            "output{}.{}.logprobs",
            field_at(&[], "output_index", 0),
            field_at(&[], "content_index", 0)
        )),
        [l, Seg::Index(_), tl, Seg::Index(k), t]
            if key(l, "logprobs") && key(tl, "top_logprobs") && key(t, "token") =>
        {
            Some(format!(
                "output{}.{}.logprobs.top{k}",
                field_at(&[], "output_index", 0),
                field_at(&[], "content_index", 0)
            ))
        }
        // Hugging Face TGI: the token's text; the final event's whole text apart.
        [t, x] if key(t, "token") && key(x, "text") => Some("tgi".into()),
        [tt, Seg::Index(k), x] if key(tt, "top_tokens") && key(x, "text") => {
            Some(format!("tgi.top{k}"))
        }
        [g] if key(g, "generated_text") => Some("tgi.generated".into()),
        // Ollama chat and generate.
        [msg, f] if key(msg, "message") && (key(f, "content") || key(f, "thinking")) => {
            Some(format!(
                "ollama.{}",
                if key(f, "content") {
                    "content"
                } else {
                    "thinking"
                }
            ))
        }
        [r] if key(r, "response") => Some("ollama.response".into()),
        // llama.cpp's /completion and Triton's generate_stream.
        [c] if key(c, "content") => Some("llamacpp".into()),
        [t] if key(t, "text_output") => Some("triton".into()),
        _ => None,
    }
}

impl SseMasker {
    pub fn new() -> Self {
        Self::default()
    }

    /// For JSON Lines (`application/x-ndjson`, as Ollama streams): each line is one event
    /// whose data is the whole line, so a value split across lines is caught the same way.
    pub fn json_lines() -> Self {
        Self {
            json_lines: true,
            ..Self::default()
        }
    }

    pub fn counts(&self) -> Counts {
        let mut c = self.other.clone();
        c.merge(self.alone.masker.counts());
        for ch in &self.channels {
            c.merge(ch.masker.counts());
        }
        c
    }

    /// (most events, most bytes) held at once.
    pub fn peak_held(&self) -> (usize, usize) {
        (self.peak_events, self.peak_bytes)
    }

    /// Times the hold-back limit forced an early decision.
    pub fn forced(&self) -> u64 {
        self.forced
    }

    fn held_bytes(&self) -> usize {
        self.line.len()
            + self.event.len()
            + self.queue.iter().map(|e| e.raw.len()).sum::<usize>()
            + self.channels.iter().map(|c| c.masker.held()).sum::<usize>()
    }

    pub fn push(&mut self, m: &Masking, chunk: &[u8], out: &mut Vec<u8>) {
        if let Some(text) = &mut self.text {
            text.push(m, chunk, out);
            return;
        }
        let mut rest = chunk;
        // An empty chunk tells nothing, not even that no LF follows a CR.
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if rest.first() == Some(&b'\n') {
                self.line.push(b'\n');
                rest = &rest[1..];
            }
            self.end_line(m, out);
        }
        // One comparison for almost every byte: CR and LF are the only line ends, both <= CR.
        while let Some(at) = rest
            .iter()
            .position(|&b| b <= b'\r' && (b == b'\n' || b == b'\r'))
        {
            let mut end = at + 1;
            if rest[at] == b'\r' {
                match rest.get(at + 1) {
                    Some(b'\n') => end += 1,
                    Some(_) => {}
                    None => {
                        // An LF may come in the next chunk: the line ends then.
                        self.line.extend_from_slice(rest);
                        self.after_cr = true;
                        rest = &[];
                        break;
                    }
                }
            }
            self.line.extend_from_slice(&rest[..end]);
            rest = &rest[end..];
            self.end_line(m, out);
        }
        self.line.extend_from_slice(rest);
        if self.line.len() > MAX_LINE_BYTES {
            self.not_an_event_stream(m, out);
            return;
        }
        self.note_held();
    }

    /// A line too long for SSE framing: what came before is settled as events, and the
    /// event being read and everything after it are masked as plain text.
    fn not_an_event_stream(&mut self, m: &Masking, out: &mut Vec<u8>) {
        self.flush_channels(m, out);
        let mut text = Masker::new();
        text.push(m, &std::mem::take(&mut self.event), out);
        text.push(m, &std::mem::take(&mut self.line), out);
        self.fixes.clear();
        self.data.clear();
        self.text = Some(text);
    }

    pub fn finish(&mut self, m: &Masking, out: &mut Vec<u8>) {
        if let Some(text) = &mut self.text {
            text.finish(m, out);
            return;
        }
        self.after_cr = false;
        if !self.line.is_empty() {
            self.end_line(m, out);
        }
        if !self.event.is_empty() {
            self.end_event(m, out);
        }
        self.flush_channels(m, out);
    }

    fn note_held(&mut self) {
        self.peak_events = self.peak_events.max(self.queue.len());
        let bytes = self.held_bytes();
        self.peak_bytes = self.peak_bytes.max(bytes);
    }

    fn end_line(&mut self, m: &Masking, out: &mut Vec<u8>) {
        let line = std::mem::take(&mut self.line);
        let eol = if line.ends_with(b"\r\n") {
            2
        } else {
            usize::from(line.ends_with(b"\n") || line.ends_with(b"\r"))
        };
        let content_len = line.len() - eol;
        let start = self.event.len();
        self.event.extend_from_slice(&line);
        let content = start + content_len;
        if content_len == 0 {
            // A blank line ends the event.
            self.end_event(m, out);
            self.line = line;
            self.line.clear();
            return;
        }
        let body = &line[..content_len];
        if self.json_lines {
            self.data.push((start, content));
            self.end_event(m, out);
            self.line = line;
            self.line.clear();
            return;
        }
        if is_data(body) {
            // The field's value: after the colon, less one leading space.
            let mut s = start + 4 + usize::from(body.len() > 4);
            if self.event.get(s) == Some(&b' ') && s < content {
                s += 1;
            }
            self.data.push((s.min(content), content));
        } else if !(m.custom.is_empty() && plain_field(body)) {
            // Comments, event:, id:, retry: and unknown fields: each line masked alone (an
            // `event: content_block_delta` line, plain words only, needs no masker).
            let (masked, counts) = mask_body(m, BodyKind::Text, body);
            if !counts.is_empty() {
                self.other.merge(&counts);
                self.fixes.push((start, masked));
            }
        }
        self.line = line;
        self.line.clear();
    }

    fn end_event(&mut self, m: &Masking, out: &mut Vec<u8>) {
        let raw = std::mem::take(&mut self.event);
        let data = std::mem::take(&mut self.data);
        let fixes = std::mem::take(&mut self.fixes);
        let value = match data.as_slice() {
            [] => Data::Span(0, 0),
            [(s, e)] => Data::Span(*s, *e),
            spans => {
                let mut joined = Vec::new();
                for (k, (s, e)) in spans.iter().enumerate() {
                    if k > 0 {
                        joined.push(b'\n');
                    }
                    joined.extend_from_slice(&raw[*s..*e]);
                }
                Data::Joined(joined)
            }
        };
        let mut event = Event {
            raw,
            data: value,
            fixes,
            pieces: Vec::new(),
            pending: 0,
        };
        // (channel, piece index, the piece's text) for each content piece of the event.
        let mut feeds: Vec<(String, usize, Vec<u8>)> = Vec::new();
        if !data.is_empty() {
            let value = match &event.data {
                Data::Span(s, e) => &event.raw[*s..*e],
                Data::Joined(v) => v.as_slice(),
            };
            let mut scan = Scan {
                b: value,
                m,
                replaced: Vec::new(),
                i: 0,
                path: self.document.clone().unwrap_or_default(),
                strings: Vec::new(),
                indexes: Vec::new(),
                byte_arrays: Vec::new(),
                known: false,
                plain_keys_clean: m.custom.is_empty(),
            };
            let first = value.iter().position(|b| !b.is_ascii_whitespace());
            // An event is an object; a document may be a list (`logprobs: [...]`).
            let opens = |b: u8| b == b'{' || (b == b'[' && self.document.is_some());
            let is_json = first.is_some_and(|i| opens(value[i])) && scan.value(0).is_some() && {
                scan.ws();
                scan.i == value.len()
            };
            // A string the scan took but JSON refuses (a raw control character): the event
            // is not JSON to a client either, and is masked as text.
            let mut json = is_json;
            if json {
                // Of a recognised shape when any string is content; otherwise every string
                // is, on the channel of its JSON path.
                let known = scan.known
                    || scan
                        .strings
                        .iter()
                        .any(|f| !f.key && content_channel(&f.path, &scan.indexes).is_some());
                // Values a rule replaces: their strings are not read.
                for &(start, end, replacement) in &scan.replaced {
                    if replacement != b"null" {
                        self.other.add(Entity::Field, 1);
                    }
                    event.pieces.push(Piece {
                        start,
                        end,
                        json: false,
                        remaining: 0,
                        output: replacement.to_vec(),
                        changed: true,
                        bytes_of: None,
                    });
                }
                let replaced = |f: &Found| {
                    scan.replaced
                        .iter()
                        .any(|&(s, e, _)| f.start >= s && f.end <= e)
                };
                for f in scan.strings.iter().filter(|f| !replaced(f)) {
                    let ch = if f.key {
                        self.document
                            .as_ref()
                            .and_then(|_| alternatives_channel(&f.path))
                    } else if self.document.is_some() {
                        Some(token_list_channel(&f.path))
                    } else {
                        content_channel(&f.path, &scan.indexes)
                    };
                    let quoted = &value[f.start - 1..f.end + 1];
                    // Keys and metadata repeat in every event (ids, object, model): known clean.
                    let alone = ch.is_none() && (known || f.key);
                    if alone && self.alone.is_clean(m, quoted) {
                        continue;
                    }
                    let Ok(decoded) = serde_json::from_slice::<String>(quoted) else {
                        event.pieces.clear();
                        feeds.clear();
                        json = false;
                        break;
                    };
                    let ch = match ch {
                        Some(ch) => ch,
                        None if alone => {
                            // Not content: masked on its own.
                            if let Some(masked) = self.alone.mask(m, quoted, &decoded) {
                                event.pieces.push(Piece {
                                    start: f.start,
                                    end: f.end,
                                    json: true,
                                    remaining: 0,
                                    output: masked,
                                    changed: true,
                                    bytes_of: None,
                                });
                            }
                            continue;
                        }
                        None => path_channel(&f.path),
                    };
                    event.pieces.push(Piece {
                        start: f.start,
                        end: f.end,
                        json: true,
                        remaining: decoded.len(),
                        output: Vec::new(),
                        changed: false,
                        bytes_of: None,
                    });
                    let token = event.pieces.len() - 1;
                    feeds.push((ch, token, decoded.into_bytes()));
                    if let Some(&(_, start, end)) = byte_arrays_beside(&scan.byte_arrays, &f.path) {
                        event.pieces.push(Piece {
                            start,
                            end,
                            json: false,
                            remaining: 0,
                            output: Vec::new(),
                            changed: false,
                            bytes_of: Some(token),
                        });
                    }
                }
            }
            if json {
            } else {
                feeds.push(("data".to_string(), 0, value.to_vec()));
                event.pieces.push(Piece {
                    start: 0,
                    end: value.len(),
                    json: false,
                    remaining: value.len(),
                    output: Vec::new(),
                    changed: false,
                    bytes_of: None,
                });
            }
        }
        event.pending = event.pieces.iter().filter(|p| p.remaining > 0).count();
        let seq = self.front_seq + self.queue.len() as u64;
        self.queue.push_back(event);
        for (ch, k, text) in feeds {
            if text.is_empty() {
                continue;
            }
            let c = match self.channels.iter().position(|c| c.key == ch) {
                Some(c) => c,
                None => {
                    self.channels.push(Channel {
                        key: ch,
                        masker: Masker::new(),
                        pieces: VecDeque::new(),
                    });
                    self.channels.len() - 1
                }
            };
            let Channel { masker, pieces, .. } = &mut self.channels[c];
            pieces.push_back((seq, k));
            let mut sink = PieceSink {
                queue: &mut self.queue,
                front_seq: self.front_seq,
                pieces,
            };
            masker.push(m, &text, &mut sink);
        }
        self.note_held();
        if self.document.is_none()
            && (self.queue.len() > MAX_HELD_EVENTS || self.held_bytes() > MAX_HELD_BYTES)
        {
            self.forced += 1;
            self.force_channels(m, out);
        }
        self.emit_ready(out);
    }

    /// The hold-back limit is reached: every channel decides now, masking what it holds.
    fn force_channels(&mut self, m: &Masking, out: &mut Vec<u8>) {
        self.settle_channels(m, out, true);
    }

    /// The text ended: every channel decides and releases what it holds.
    fn flush_channels(&mut self, m: &Masking, out: &mut Vec<u8>) {
        self.settle_channels(m, out, false);
    }

    fn settle_channels(&mut self, m: &Masking, out: &mut Vec<u8>, force: bool) {
        for Channel { masker, pieces, .. } in &mut self.channels {
            let mut sink = PieceSink {
                queue: &mut self.queue,
                front_seq: self.front_seq,
                pieces,
            };
            if force {
                masker.force(m, &mut sink);
            } else {
                masker.finish(m, &mut sink);
            }
        }
        self.emit_ready(out);
    }

    fn emit_ready(&mut self, out: &mut Vec<u8>) {
        while self.queue.front().is_some_and(|e| e.pending == 0) {
            let Some(event) = self.queue.pop_front() else {
                break;
            };
            self.front_seq += 1;
            write_event(&event, out);
        }
    }
}

/// Whether a line's content is a data field (`data`, or `data:` and its value).
fn is_data(content: &[u8]) -> bool {
    content == b"data" || content.starts_with(b"data:")
}

/// The lines of a raw event: (start, content end, end), each ended by CR, LF or CRLF.
fn lines(raw: &[u8]) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= raw.len() {
            return None;
        }
        let start = at;
        let content = raw[at..]
            .iter()
            .position(|b| *b == b'\n' || *b == b'\r')
            .map_or(raw.len(), |p| at + p);
        let end = match raw.get(content) {
            Some(b'\r') if raw.get(content + 1) == Some(&b'\n') => content + 2,
            Some(_) => content + 1,
            None => content,
        };
        at = end;
        Some((start, content, end))
    })
}

/// Writes an event back: byte for byte when nothing in it changed; otherwise its lines as
/// they came (masked where masking changed them) with its data, when changed, as `data: `
/// lines of the new value, where its first data line was.
fn write_event(event: &Event, out: &mut Vec<u8>) {
    let data_changed = event.pieces.iter().any(|p| p.changed);
    if !data_changed && event.fixes.is_empty() {
        out.extend_from_slice(&event.raw);
        return;
    }
    if let (Data::Span(s, e), true) = (&event.data, event.fixes.is_empty()) {
        // One data line (the common case): its new value goes where the old one was. A
        // single line's value holds no line end, and neither does its masked form.
        out.extend_from_slice(&event.raw[..*s]);
        write_value(event, out);
        out.extend_from_slice(&event.raw[*e..]);
        return;
    }
    let mut data_written = false;
    for (start, content, end) in lines(&event.raw) {
        let eol = &event.raw[content..end];
        if data_changed && is_data(&event.raw[start..content]) {
            if !data_written {
                let eol: &[u8] = if eol.is_empty() { b"\n" } else { eol };
                for part in new_value(event).split(|b| *b == b'\n') {
                    out.extend_from_slice(b"data: ");
                    out.extend_from_slice(part);
                    out.extend_from_slice(eol);
                }
                data_written = true;
            }
            continue;
        }
        match event.fixes.iter().find(|(at, _)| *at == start) {
            Some((_, fixed)) => {
                out.extend_from_slice(fixed);
                out.extend_from_slice(eol);
            }
            None => out.extend_from_slice(&event.raw[start..end]),
        }
    }
}

/// The event's data with its changed pieces written in.
fn new_value(event: &Event) -> Vec<u8> {
    let mut value = Vec::with_capacity(event.value().len());
    write_value(event, &mut value);
    value
}

/// Writes the event's data with its changed pieces written in.
fn write_value(event: &Event, out: &mut Vec<u8>) {
    let old = event.value();
    let mut last = 0;
    let mut pieces: Vec<&Piece> = event.pieces.iter().collect();
    pieces.sort_by_key(|p| p.start);
    for p in pieces {
        out.extend_from_slice(&old[last..p.start]);
        if let Some(token) = p.bytes_of {
            match event.pieces.get(token) {
                Some(t) if t.changed => {
                    out.push(b'[');
                    for (k, b) in t.output.iter().enumerate() {
                        if k > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(b.to_string().as_bytes());
                    }
                    out.push(b']');
                }
                _ => out.extend_from_slice(&old[p.start..p.end]),
            }
        } else if !p.changed {
            out.extend_from_slice(&old[p.start..p.end]);
        } else if p.json {
            escape_into(&p.output, out);
        } else {
            out.extend_from_slice(&p.output);
        }
        last = p.end;
    }
    out.extend_from_slice(&old[last..]);
}
