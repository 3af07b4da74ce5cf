//! A body of any kind, masked chunk by chunk: the format is chosen by content type.

use super::json::JsonMasker;
use super::masker::{Counts, Masker};
use super::settings::Masking;
use super::sse::SseMasker;
use super::wide::{Wide, WideCharset, WideMasker};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Text,
    Json,
    EventStream,
    /// JSON Lines (`application/x-ndjson`, as Ollama streams): each line one event.
    JsonLines,
    /// Images, audio, archives: no text to mask.
    Binary,
}

impl BodyKind {
    /// `application/json` and `*/*+json` are JSON; JSON Lines (`application/x-ndjson`) is a
    /// stream of events, one per line; `text/event-stream` is SSE;
    /// images, audio, video, fonts and octet streams are binary; everything else (including
    /// a missing content type) is read as text, so an unlabelled body is still masked.
    pub fn of(content_type: Option<&str>) -> BodyKind {
        let Some(ct) = content_type else {
            return BodyKind::Text;
        };
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if essence == "text/event-stream" {
            BodyKind::EventStream
        } else if matches!(
            essence.as_str(),
            "application/x-ndjson" | "application/jsonl" | "application/jsonlines"
        ) {
            BodyKind::JsonLines
        } else if essence == "application/json"
            || essence.ends_with("+json")
            || essence == "application/json-seq"
        {
            BodyKind::Json
        } else if ["image/", "audio/", "video/", "font/"]
            .iter()
            .any(|p| essence.starts_with(p))
            || matches!(
                essence.as_str(),
                "application/octet-stream"
                    | "application/zip"
                    | "application/gzip"
                    | "application/pdf"
            )
        {
            BodyKind::Binary
        } else {
            BodyKind::Text
        }
    }
}

#[derive(Debug)]
pub enum BodyMasker {
    Text(Masker),
    Json(JsonMasker),
    EventStream(Box<SseMasker>),
    Binary,
    /// UTF-16 or UTF-32, decoded for the masker of its format and encoded back.
    Wide(Box<WideMasker>),
    /// The format is read from the body's first bytes: UTF-16 or UTF-32 whatever the
    /// label says (a label names a charset only when its sender thinks of it); then, for a
    /// body whose label says nothing useful (`None`), JSON when it starts with `{` or `[`
    /// (after whitespace and a byte order mark), text otherwise. Holds at most
    /// [`SNIFF_BYTES`] until it knows.
    Sniff(Vec<u8>, Option<BodyKind>),
}

/// Most bytes held while the format of a body is sniffed.
pub const SNIFF_BYTES: usize = 64;

/// The masker for a body from its first bytes, once they tell: UTF-16 or UTF-32 (by a
/// byte order mark or where the zero bytes fall; four bytes tell), then JSON or text.
fn sniffed(head: &[u8], ended: bool, label: Option<BodyKind>) -> Option<BodyMasker> {
    if head.len() < 4 && !ended {
        return None;
    }
    if let Some(wide) = Wide::sniff(head) {
        let inner = label.map_or_else(BodyMasker::sniffing, BodyMasker::new);
        return Some(BodyMasker::Wide(Box::new(WideMasker::new(
            WideCharset::Fixed(wide),
            inner,
        ))));
    }
    if let Some(kind) = label {
        return Some(BodyMasker::new(kind));
    }
    let first = head
        .iter()
        .find(|b| !(b.is_ascii_whitespace() || matches!(**b, 0xEF | 0xBB | 0xBF)));
    let kind = match first {
        Some(b'{' | b'[') => BodyKind::Json,
        Some(_) => BodyKind::Text,
        None if ended || head.len() >= SNIFF_BYTES => BodyKind::Text,
        None => return None,
    };
    Some(BodyMasker::new(kind))
}

impl BodyMasker {
    pub fn new(kind: BodyKind) -> Self {
        match kind {
            BodyKind::Text => BodyMasker::Text(Masker::new()),
            BodyKind::Json => BodyMasker::Json(JsonMasker::new()),
            BodyKind::EventStream => BodyMasker::EventStream(Box::default()),
            BodyKind::JsonLines => BodyMasker::EventStream(Box::new(SseMasker::json_lines())),
            BodyKind::Binary => BodyMasker::Binary,
        }
    }

    /// A masker that reads the format from the body itself (for request bodies, whose
    /// label a caller chooses: an octet stream carrying JSON is still read as JSON, and no
    /// request body is ever copied unmasked as "binary").
    pub fn sniffing() -> Self {
        BodyMasker::Sniff(Vec::new(), None)
    }

    /// A masker for a body labelled `kind` that still reads its first bytes: a UTF-16 or
    /// UTF-32 body labelled JSON (or text) without a charset is decoded, not read byte by
    /// byte with a zero beside every digit.
    pub fn labelled(kind: BodyKind) -> Self {
        match kind {
            BodyKind::Binary => BodyMasker::Binary,
            kind => BodyMasker::Sniff(Vec::new(), Some(kind)),
        }
    }

    /// Masks the next chunk into `out` (which may get less than the chunk: text that could
    /// still be part of a value is held back).
    pub fn push(&mut self, m: &Masking, chunk: &[u8], out: &mut Vec<u8>) {
        if let BodyMasker::Sniff(head, label) = self {
            head.extend_from_slice(chunk);
            let Some(masker) = sniffed(head, false, *label) else {
                return;
            };
            let head = std::mem::take(head);
            *self = masker;
            return self.push(m, &head, out);
        }
        match self {
            BodyMasker::Text(t) => t.push(m, chunk, out),
            BodyMasker::Json(j) => j.push(m, chunk, out),
            BodyMasker::EventStream(s) => s.push(m, chunk, out),
            BodyMasker::Binary => out.extend_from_slice(chunk),
            BodyMasker::Wide(w) => w.push(m, chunk, out),
            BodyMasker::Sniff(..) => {}
        }
    }

    /// The body ended: releases everything held.
    pub fn finish(&mut self, m: &Masking, out: &mut Vec<u8>) {
        if let BodyMasker::Sniff(head, label) = self {
            let head = std::mem::take(head);
            *self = sniffed(&head, true, *label).unwrap_or(BodyMasker::new(BodyKind::Text));
            self.push(m, &head, out);
        }
        match self {
            BodyMasker::Text(t) => t.finish(m, out),
            BodyMasker::Json(j) => j.finish(m, out),
            BodyMasker::EventStream(s) => s.finish(m, out),
            BodyMasker::Wide(w) => w.finish(m, out),
            BodyMasker::Binary | BodyMasker::Sniff(..) => {}
        }
    }

    pub fn counts(&self) -> Counts {
        match self {
            BodyMasker::Text(t) => t.counts().clone(),
            BodyMasker::Json(j) => j.counts(),
            BodyMasker::EventStream(s) => s.counts(),
            BodyMasker::Wide(w) => w.counts(),
            BodyMasker::Binary | BodyMasker::Sniff(..) => Counts::default(),
        }
    }

    /// The most bytes held back at once, and (for SSE) the most events.
    pub fn peak_held(&self) -> (usize, usize) {
        match self {
            BodyMasker::Text(t) => (t.peak_held(), 0),
            BodyMasker::Json(j) => (j.peak_held(), 0),
            BodyMasker::EventStream(s) => {
                let (events, bytes) = s.peak_held();
                (bytes, events)
            }
            BodyMasker::Wide(w) => w.peak_held(),
            BodyMasker::Binary => (0, 0),
            BodyMasker::Sniff(head, _) => (head.len(), 0),
        }
    }
}

/// Masks a whole body at once.
pub fn mask_body(m: &Masking, kind: BodyKind, body: &[u8]) -> (Vec<u8>, Counts) {
    let mut b = BodyMasker::new(kind);
    let mut out = Vec::with_capacity(body.len());
    b.push(m, body, &mut out);
    b.finish(m, &mut out);
    (out, b.counts())
}
