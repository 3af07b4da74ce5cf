//! What a model call consumed, read from the model server's answer as it streams: token
//! counts, the response model and id, finish reasons, the time to the first chunk. Names follow
//! OpenTelemetry's GenAI semantic conventions (`gen_ai.usage.input_tokens`,
//! `gen_ai.response.finish_reasons`, ...; "Development" status), without the `gen_ai.` prefix
//! inside the record's `gen_ai` object. Never content: only counts, identifiers and reasons.
//!
//! Formats: OpenAI chat/completions/embeddings answers and their streamed chunks (`usage`,
//! `model`, `id`, `choices[].finish_reason`), the Responses API (`response.completed` and its
//! `response.usage`), Anthropic (`message_start` usage and model, `message_delta` usage and
//! `stop_reason`), Hugging Face TGI (`details.finish_reason`, `details.generated_tokens`,
//! `details.prefill`), Ollama (`prompt_eval_count`, `eval_count`, `done_reason`), and any other
//! JSON with these names.
//!
//! Memory and work are bounded whatever the answer: only its first and last [`EDGE_BYTES`]
//! are kept (identifiers and Anthropic's input usage come first; OpenAI's `usage`, the final
//! stream events, Ollama's counts and TGI's details come last), and they are parsed once, at
//! the end. Per chunk, the scanner only copies bytes into those two buffers, so the streaming
//! path pays almost nothing for it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How much of an answer's start is kept (identifiers, Anthropic's `message_start`).
pub const EDGE_BYTES: usize = 16 * 1024;
/// How much of its end is kept: a final usage event or object is a few hundred bytes, and
/// copying less per chunk keeps the streaming path fast.
pub const TAIL_BYTES: usize = 4 * 1024;
/// Finish reasons kept (a stream with many choices has one each).
const MAX_REASONS: usize = 16;

/// The record's `gen_ai` object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenAi {
    /// `chat`, `text_completion` or `embeddings`, from the request's path.
    #[serde(
        rename = "operation.name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub operation_name: Option<String>,
    #[serde(
        rename = "response.model",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub response_model: Option<String>,
    #[serde(
        rename = "response.id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub response_id: Option<String>,
    #[serde(
        rename = "response.finish_reasons",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub finish_reasons: Vec<String>,
    #[serde(
        rename = "usage.input_tokens",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub input_tokens: Option<u64>,
    #[serde(
        rename = "usage.output_tokens",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub output_tokens: Option<u64>,
    /// Output tokens spent on reasoning (OpenAI `completion_tokens_details.reasoning_tokens`,
    /// Responses `output_tokens_details.reasoning_tokens`): billed, yet often dropped.
    #[serde(
        rename = "usage.reasoning_tokens",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub reasoning_tokens: Option<u64>,
    /// Input tokens served from the server's prompt cache.
    #[serde(
        rename = "usage.cached_input_tokens",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cached_input_tokens: Option<u64>,
    /// Vigil added `stream_options.include_usage` to the request (the client did not ask):
    /// the record says that Vigil changed what the model server got.
    #[serde(
        rename = "request.stream_usage_added",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub stream_usage_added: bool,
    /// From the request's arrival to a stream's first body bytes, in milliseconds.
    #[serde(
        rename = "server.time_to_first_chunk_ms",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub time_to_first_chunk_ms: Option<u64>,
}

impl GenAi {
    /// Whether the answer said anything (the operation name alone is the request's).
    pub fn is_empty(&self) -> bool {
        GenAi {
            operation_name: None,
            ..self.clone()
        } == GenAi::default()
    }
}

/// The request body with `"stream_options":{"include_usage":true}` added, when it is an
/// OpenAI-style streamed request (`"stream": true`) that names no `stream_options`. The text is
/// kept as sent; the member goes before the object's closing brace.
pub fn ask_for_stream_usage(text: &[u8], parsed: &Value) -> Option<Vec<u8>> {
    let object = parsed.as_object()?;
    if object.get("stream") != Some(&Value::Bool(true)) || object.contains_key("stream_options") {
        return None;
    }
    let end = text.iter().rposition(|b| !b.is_ascii_whitespace())?;
    if text[end] != b'}' {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() + 40);
    out.extend_from_slice(&text[..end]);
    let needs_comma = text[..end].iter().rev().find(|b| !b.is_ascii_whitespace()) != Some(&b'{');
    if needs_comma {
        out.push(b',');
    }
    out.extend_from_slice(br#""stream_options":{"include_usage":true}"#);
    out.extend_from_slice(&text[end..]);
    Some(out)
}

/// Keeps the usage-only event a server sends because Vigil asked for it (`"choices":[]` with
/// `"usage"`) from a client that did not ask. Events pass whole once complete; at most
/// [`MAX_EVENT_BYTES`] of an incomplete one is held, past that it passes as it is.
#[derive(Debug, Clone, Default)]
pub struct UsageEventFilter {
    pending: Vec<u8>,
    /// Usage events kept from the client.
    pub removed: u32,
}

/// The longest incomplete event held back by [`UsageEventFilter`].
pub const MAX_EVENT_BYTES: usize = 64 * 1024;

impl UsageEventFilter {
    /// What of `out` (the bytes bound for the client) goes now.
    pub fn filter(&mut self, out: &[u8], end: bool) -> Vec<u8> {
        self.pending.extend_from_slice(out);
        let mut emitted = Vec::with_capacity(self.pending.len());
        let mut start = 0;
        while let Some(len) = event_len(&self.pending[start..]) {
            let event = &self.pending[start..start + len];
            if is_usage_only(event) {
                self.removed += 1;
            } else {
                emitted.extend_from_slice(event);
            }
            start += len;
        }
        self.pending.drain(..start);
        if end || self.pending.len() > MAX_EVENT_BYTES {
            emitted.append(&mut self.pending);
        }
        emitted
    }
}

/// The length of the first complete event (its blank line included), if there is one. A
/// line ends with CRLF, LF or CR (WHATWG); a CR that ends the buffer may be the first half of
/// a CRLF, so it waits for the next bytes.
fn event_len(text: &[u8]) -> Option<usize> {
    // The end of the line break starting at `i` (None: undecidable yet).
    let eol_end = |i: usize| -> Option<usize> {
        match text[i] {
            b'\n' => Some(i + 1),
            _ => match text.get(i + 1) {
                None => None,
                Some(b'\n') => Some(i + 2),
                Some(_) => Some(i + 1),
            },
        }
    };
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'\n' || text[i] == b'\r' {
            let next = eol_end(i)?;
            match text.get(next) {
                Some(b'\n') | Some(b'\r') => return eol_end(next),
                Some(_) => i = next,
                None => return None,
            }
        } else {
            i += 1;
        }
    }
    None
}

/// An event whose data is a chunk with no choices and a usage object.
fn is_usage_only(event: &[u8]) -> bool {
    if !names_usage(event, false) {
        return false;
    }
    let data: Vec<u8> = event
        .split(|&b| b == b'\n' || b == b'\r')
        .filter_map(|l| l.strip_prefix(b"data:"))
        .flat_map(|d| d.iter().copied().chain(std::iter::once(b'\n')))
        .collect();
    match serde_json::from_slice::<Value>(data.trim_ascii()) {
        Ok(v) => {
            v.get("usage").is_some_and(Value::is_object)
                && v.get("choices")
                    .and_then(Value::as_array)
                    .is_some_and(|c| c.is_empty())
        }
        Err(_) => false,
    }
}

/// The filter-state properties [`attributes`] may write.
pub const ATTRIBUTE_NAMES: &[&str] = &[
    "gen_ai.operation.name",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.response.finish_reasons",
];

/// The GenAI attributes of a sealed record, as filter-state properties for the access log
/// (`%FILTER_STATE(wasm.gen_ai.usage.input_tokens:PLAIN)%`): the shipped OpenTelemetry config
/// puts them on the log record beside the record body, so a collector routes and aggregates
/// without parsing the record. Empty when the answer said nothing of usage.
pub fn attributes(record: &crate::record::SessionRecord) -> Vec<(&'static str, String)> {
    let Some(g) = &record.gen_ai else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut put = |k: &'static str, v: Option<String>| {
        if let Some(v) = v {
            out.push((k, v));
        }
    };
    put("gen_ai.operation.name", g.operation_name.clone());
    put("gen_ai.request.model", record.model.clone());
    put("gen_ai.response.model", g.response_model.clone());
    put(
        "gen_ai.usage.input_tokens",
        g.input_tokens.map(|n| n.to_string()),
    );
    put(
        "gen_ai.usage.output_tokens",
        g.output_tokens.map(|n| n.to_string()),
    );
    put(
        "gen_ai.response.finish_reasons",
        (!g.finish_reasons.is_empty()).then(|| g.finish_reasons.join(",")),
    );
    out
}

/// Token counters for a sealed record, per model and per group (low cardinality: models and
/// the groups the policy names, never subjects): `vigil.gen_ai.<kind>_tokens.model.<model>`
/// and `vigil.gen_ai.<kind>_tokens.group.<group>`.
pub fn counters(
    record: &crate::record::SessionRecord,
    named_groups: &[String],
    providers: &[String],
) -> Vec<(String, i64)> {
    let Some(g) = &record.gen_ai else {
        return Vec::new();
    };
    let model = record
        .model
        .clone()
        .or_else(|| g.response_model.clone())
        .unwrap_or_else(|| "unknown".into());
    let groups: Vec<&String> = record
        .identity
        .as_ref()
        .map(|i| {
            named_groups
                .iter()
                .filter(|n| i.member_of(n, providers))
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    for (kind, n) in [
        ("input", g.input_tokens),
        ("output", g.output_tokens),
        ("reasoning", g.reasoning_tokens),
    ] {
        let Some(n) = n.and_then(|n| i64::try_from(n).ok()) else {
            continue;
        };
        out.push((format!("vigil.gen_ai.{kind}_tokens.model.{model}"), n));
        for group in &groups {
            out.push((format!("vigil.gen_ai.{kind}_tokens.group.{group}"), n));
        }
    }
    out
}

/// The GenAI operation a request path names (OpenAI, Anthropic, Ollama, TGI paths).
pub fn operation_name(path: &str) -> Option<&'static str> {
    let last = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    match last {
        "completions" if path.ends_with("/chat/completions") => Some("chat"),
        "messages" | "chat" | "responses" => Some("chat"),
        "completions" | "generate" | "generate_stream" => Some("text_completion"),
        "embeddings" | "embed" => Some("embeddings"),
        _ => None,
    }
}

/// The answer's framing, sniffed from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One JSON document.
    Json,
    /// Server-Sent Events: `data:` lines.
    Sse,
    /// One JSON object per line (Ollama, `application/x-ndjson`).
    Lines,
    /// Nothing to read (binary, text).
    None,
}

impl Framing {
    /// The framing a body's first bytes show (no header read: the answer's own bytes say it):
    /// `{` or `[` is JSON (or JSON lines, tried when it is not one document), `data:`,
    /// `event:`, `id:` or `:` an event stream.
    pub fn sniff(first: &[u8]) -> Self {
        let start = first.trim_ascii_start();
        match start.first() {
            Some(b'{') | Some(b'[') => Framing::Json,
            Some(_)
                if [&b"data:"[..], b"event:", b"id:", b":", b"retry:"]
                    .iter()
                    .any(|p| start.starts_with(p)) =>
            {
                Framing::Sse
            }
            _ => Framing::None,
        }
    }
}

/// Reads usage from an answer as its chunks pass.
#[derive(Debug, Clone)]
pub struct UsageScanner {
    framing: Framing,
    found: GenAi,
    /// The first and the last bytes of the answer, and how many went by.
    head: Vec<u8>,
    tail: Vec<u8>,
    seen: usize,
    /// The framing was decided (given, or sniffed from the first bytes).
    sniffed: bool,
}

impl UsageScanner {
    pub fn new(framing: Framing, operation: Option<&str>) -> Self {
        Self {
            framing,
            found: GenAi {
                operation_name: operation.map(str::to_string),
                ..GenAi::default()
            },
            head: Vec::new(),
            tail: Vec::new(),
            seen: 0,
            sniffed: framing != Framing::None,
        }
    }

    /// Whether the answer is a stream, whose time to first chunk is worth a clock read (a
    /// JSON answer comes whole: its first chunk is its end).
    pub fn streams(&self) -> bool {
        matches!(self.framing, Framing::Sse | Framing::Lines)
    }

    /// A chunk of the answer as the model server sent it.
    pub fn feed(&mut self, chunk: &[u8]) {
        if chunk.is_empty() {
            return;
        }
        if !self.sniffed {
            // Decided on the first bytes that say something (a chunk may be one byte).
            self.head.extend_from_slice(
                &chunk[..chunk
                    .len()
                    .min(EDGE_BYTES - self.head.len().min(EDGE_BYTES))],
            );
            self.seen += chunk.len();
            self.keep_tail(chunk);
            if self.head.trim_ascii_start().len() >= 6 || self.seen >= EDGE_BYTES {
                self.sniffed = true;
                self.framing = Framing::sniff(&self.head);
            }
            return;
        }
        if self.framing == Framing::None {
            return;
        }
        self.seen += chunk.len();
        let room = EDGE_BYTES.saturating_sub(self.head.len());
        self.head.extend_from_slice(&chunk[..room.min(chunk.len())]);
        self.keep_tail(chunk);
    }

    fn keep_tail(&mut self, chunk: &[u8]) {
        if chunk.len() >= TAIL_BYTES {
            self.tail.clear();
            self.tail
                .extend_from_slice(&chunk[chunk.len() - TAIL_BYTES..]);
        } else {
            // Small chunks (stream events) are appended; the buffer is cut back to the last
            // TAIL_BYTES only when it doubles, so each byte moves at most once.
            self.tail.extend_from_slice(chunk);
            if self.tail.len() > 2 * TAIL_BYTES {
                let cut = self.tail.len() - TAIL_BYTES;
                self.tail.drain(..cut);
            }
        }
    }

    /// The usage found, at the end of the answer. `cut`: the exchange ended before the
    /// answer did, so the finish reason is `error`.
    pub fn finish(&mut self, cut: bool) -> GenAi {
        if !self.sniffed {
            self.framing = Framing::sniff(&self.head);
        }
        match self.framing {
            Framing::Json => {
                self.read_json_edges();
                if self.found.is_empty() {
                    // Not one JSON document: JSON lines (Ollama).
                    self.framing = Framing::Lines;
                    self.read_stream_edges();
                }
            }
            Framing::Sse | Framing::Lines => self.read_stream_edges(),
            Framing::None => {}
        }
        let mut found = std::mem::take(&mut self.found);
        if cut {
            found.finish_reasons = vec!["error".into()];
        }
        found
    }

    /// The whole answer when both edges hold it (`None`: a long answer).
    fn whole(&self) -> Option<Vec<u8>> {
        if self.seen > EDGE_BYTES + TAIL_BYTES {
            return None;
        }
        let beyond = self.seen - self.head.len();
        let from = self.tail.len().saturating_sub(beyond);
        let mut whole = Vec::with_capacity(self.seen);
        whole.extend_from_slice(&self.head);
        whole.extend_from_slice(&self.tail[from..]);
        Some(whole)
    }

    fn read_stream_edges(&mut self) {
        match self.whole() {
            Some(whole) => self.read_lines(&whole, false, false, true),
            None => {
                // The head's last line and the tail's first may be cut: both are skipped. The
                // head is read for identifiers and opening usage (Anthropic's message_start),
                // the tail for the rest: finish reasons and final counts come last.
                let (head, tail) = (
                    std::mem::take(&mut self.head),
                    std::mem::take(&mut self.tail),
                );
                self.read_lines(&head, false, true, false);
                self.read_lines(&tail, true, false, true);
                (self.head, self.tail) = (head, tail);
            }
        }
    }

    /// Parses the lines of `text` that can carry usage, identifiers or (with `reasons`)
    /// finish reasons.
    fn read_lines(&mut self, text: &[u8], skip_first: bool, skip_last: bool, reasons: bool) {
        let lines: Vec<&[u8]> = text.split(|&b| b == b'\n' || b == b'\r').collect();
        let n = lines.len();
        // Identifiers come in the first events: a few are parsed for them, the rest only
        // when they can carry usage or a reason.
        let mut probes = 4;
        for (i, line) in lines.into_iter().enumerate() {
            if (skip_first && i == 0) || (skip_last && i + 1 == n) || line.is_empty() {
                continue;
            }
            let payload = match self.framing {
                Framing::Sse => match line.strip_prefix(b"data:") {
                    Some(p) => p,
                    None => continue,
                },
                _ => line,
            };
            let probe = self.found.response_model.is_none() && probes > 0;
            let worth = probe || names_usage(payload, reasons);
            if worth {
                probes -= usize::from(probe);
                if let Ok(v) = serde_json::from_slice::<Value>(payload.trim_ascii()) {
                    self.read(&v);
                }
            }
        }
    }

    fn read_json_edges(&mut self) {
        if let Some(whole) = self.whole() {
            // Most answers are short; one that names no usage is not parsed at all.
            if contains(&whole, b"\"usage\"")
                || contains(&whole, b"eval_count")
                || contains(&whole, b"\"details\"")
            {
                if let Ok(v) = serde_json::from_slice::<Value>(&whole) {
                    self.read(&v);
                }
            }
            return;
        }
        // A long answer: the identifiers at its start, `usage` (an object of numbers) at its
        // end, each found by name.
        let Some(v) = last_object_after(&self.tail, b"\"usage\"") else {
            return;
        };
        self.read_usage(&v);
        let head = String::from_utf8_lossy(&self.head).into_owned();
        self.found.response_id = first_string(&head, "id").map(|s| crate::redact::request_id(&s));
        self.found.response_model = first_string(&head, "model").map(|s| crate::redact::model(&s));
        let tail = String::from_utf8_lossy(&self.tail).into_owned();
        for reason in all_strings(&tail, "finish_reason") {
            self.add_reason(reason);
        }
    }

    /// Reads usage, identifiers and finish reasons from one JSON value (an answer or an event).
    fn read(&mut self, v: &Value) {
        // Envelopes: Anthropic's `message_start` carries `message`, the Responses API's events
        // carry `response`.
        for inner in ["message", "response"] {
            if let Some(o) = v.get(inner).filter(|o| o.is_object()) {
                self.read(o);
            }
        }
        if let Some(model) = v.get("model").and_then(Value::as_str) {
            self.found.response_model = Some(crate::redact::model(model));
        }
        if let Some(id) = v.get("id").and_then(Value::as_str) {
            if self.found.response_id.is_none() {
                self.found.response_id = Some(crate::redact::request_id(id));
            }
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            self.read_usage(u);
        }
        if let Some(choices) = v.get("choices").and_then(Value::as_array) {
            for c in choices {
                if let Some(r) = c.get("finish_reason").and_then(Value::as_str) {
                    self.add_reason(r.to_string());
                }
            }
        }
        for key in ["stop_reason", "done_reason"] {
            if let Some(r) = v.get(key).and_then(Value::as_str) {
                self.add_reason(r.to_string());
            }
        }
        if let Some(d) = v.get("delta") {
            if let Some(r) = d.get("stop_reason").and_then(Value::as_str) {
                self.add_reason(r.to_string());
            }
        }
        if v.get("type").and_then(Value::as_str) == Some("response.completed") {
            if let Some(s) = v.pointer("/response/status").and_then(Value::as_str) {
                self.add_reason(s.to_string());
            }
        }
        // TGI: `details` on the answer or the last streamed event.
        if let Some(d) = v.get("details").filter(|d| d.is_object()) {
            if let Some(r) = d.get("finish_reason").and_then(Value::as_str) {
                self.add_reason(r.to_string());
            }
            if let Some(n) = d.get("generated_tokens").and_then(Value::as_u64) {
                self.found.output_tokens = Some(n);
            }
            if let Some(p) = d.get("prefill").and_then(Value::as_array) {
                if !p.is_empty() {
                    self.found.input_tokens = Some(p.len() as u64);
                }
            }
        }
        // Ollama: counts on the last line.
        if let Some(n) = v.get("prompt_eval_count").and_then(Value::as_u64) {
            self.found.input_tokens = Some(n);
        }
        if let Some(n) = v.get("eval_count").and_then(Value::as_u64) {
            self.found.output_tokens = Some(n);
        }
    }

    fn read_usage(&mut self, u: &Value) {
        let n = |p: &str| u.pointer(p).and_then(Value::as_u64);
        // OpenAI chat/completions/embeddings, then the Responses API and Anthropic.
        if let Some(x) = n("/prompt_tokens").or(n("/input_tokens")) {
            self.found.input_tokens = Some(x);
        }
        if let Some(x) = n("/completion_tokens").or(n("/output_tokens")) {
            // Anthropic's message_delta counts output tokens so far: the last one holds.
            self.found.output_tokens = Some(x);
        }
        if let Some(x) = n("/completion_tokens_details/reasoning_tokens")
            .or(n("/output_tokens_details/reasoning_tokens"))
        {
            self.found.reasoning_tokens = Some(x);
        }
        if let Some(x) = n("/prompt_tokens_details/cached_tokens")
            .or(n("/input_tokens_details/cached_tokens"))
            .or(n("/cache_read_input_tokens"))
        {
            self.found.cached_input_tokens = Some(x);
        }
    }

    fn add_reason(&mut self, reason: String) {
        let plain: String = reason
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(40)
            .collect();
        if !plain.is_empty() && self.found.finish_reasons.len() < MAX_REASONS {
            self.found.finish_reasons.push(plain);
        }
    }

    /// Notes when the answer's first body bytes came, in milliseconds since the request
    /// started; `ms` is asked once (reading the clock is a host call).
    pub fn first_chunk_with(&mut self, ms: impl FnOnce() -> u64) {
        if self.found.time_to_first_chunk_ms.is_none() {
            self.found.time_to_first_chunk_ms = Some(ms());
        }
    }
}

/// Whether a stream line names a member that carries usage (or, with `reasons`, a reason
/// that is set: OpenAI sends `"finish_reason":null` in every chunk): one pass over its quotes
/// (a text delta has few), not one search per name.
fn names_usage(line: &[u8], reasons: bool) -> bool {
    const USAGE: &[&[u8]] = &[
        b"usage\"",
        b"eval_count\"",
        b"prompt_eval_count\"",
        b"details\"",
    ];
    const REASONS: &[&[u8]] = &[b"finish_reason\"", b"stop_reason\"", b"done_reason\""];
    let mut rest = line;
    while let Some(i) = rest.iter().position(|&b| b == b'"') {
        rest = &rest[i + 1..];
        if USAGE.iter().any(|n| rest.starts_with(n)) {
            return true;
        }
        if reasons {
            if let Some(n) = REASONS.iter().find(|n| rest.starts_with(n)) {
                let value = rest[n.len()..].trim_ascii_start();
                let value = value.strip_prefix(b":").unwrap_or(value).trim_ascii_start();
                if !value.starts_with(b"null") {
                    return true;
                }
            }
        }
    }
    false
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The JSON object after the last `key` in `text` (`"usage": {...}`), brace-matched.
fn last_object_after(text: &[u8], key: &[u8]) -> Option<Value> {
    let at = text.windows(key.len()).rposition(|w| w == key)? + key.len();
    let open = at + text[at..].iter().position(|&b| b == b'{')?;
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &b) in text[open..].iter().enumerate() {
        match (in_string, b) {
            (true, b'\\') if !escaped => escaped = true,
            (true, b'"') if !escaped => in_string = false,
            (true, _) => escaped = false,
            (false, b'"') => in_string = true,
            (false, b'{') => depth += 1,
            (false, b'}') => {
                depth -= 1;
                if depth == 0 {
                    return serde_json::from_slice(&text[open..=open + i]).ok();
                }
            }
            _ => {}
        }
    }
    None
}

/// `"key": "value"` occurrences in text that is not a whole JSON document.
fn all_strings(text: &str, key: &str) -> Vec<String> {
    let pattern = format!(r#""{key}"\s*:\s*"([A-Za-z0-9_.:/-]{{1,128}})""#);
    match regex_lite::Regex::new(&pattern) {
        Ok(re) => re
            .captures_iter(text)
            .filter_map(|c| c.get(1).map(|m| m.as_str().to_string()))
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn first_string(text: &str, key: &str) -> Option<String> {
    all_strings(text, key).into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(framing: Framing, body: &str, chunk: usize) -> GenAi {
        let mut s = UsageScanner::new(framing, None);
        for part in body.as_bytes().chunks(chunk.max(1)) {
            s.feed(part);
        }
        s.finish(false)
    }

    #[test]
    fn an_openai_answer_gives_its_usage_model_id_and_finish_reason() {
        let body = r#"{"id":"chatcmpl-1","object":"chat.completion","model":"llama-3.1-8b","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":34,"total_tokens":46,"completion_tokens_details":{"reasoning_tokens":5},"prompt_tokens_details":{"cached_tokens":3}}}"#;
        for chunk in [1, 7, 4096] {
            let g = scan(Framing::Json, body, chunk);
            assert_eq!(g.response_model.as_deref(), Some("llama-3.1-8b"));
            assert_eq!(g.response_id.as_deref(), Some("chatcmpl-1"));
            assert_eq!(g.finish_reasons, ["stop"]);
            assert_eq!((g.input_tokens, g.output_tokens), (Some(12), Some(34)));
            assert_eq!(
                (g.reasoning_tokens, g.cached_input_tokens),
                (Some(5), Some(3))
            );
        }
    }

    #[test]
    fn a_long_answer_is_read_from_its_edges_in_bounded_memory() {
        let filler = "x".repeat(200_000);
        let body = format!(
            r#"{{"id":"c-2","model":"m","choices":[{{"message":{{"content":"{filler}"}},"finish_reason":"length"}}],"usage":{{"prompt_tokens":1,"completion_tokens":2}}}}"#
        );
        let mut s = UsageScanner::new(Framing::Json, None);
        for part in body.as_bytes().chunks(1000) {
            s.feed(part);
            assert!(s.head.len() + s.tail.len() <= EDGE_BYTES + 2 * TAIL_BYTES);
        }
        let g = s.finish(false);
        assert_eq!((g.input_tokens, g.output_tokens), (Some(1), Some(2)));
        assert_eq!(g.response_model.as_deref(), Some("m"));
        assert_eq!(g.finish_reasons, ["length"]);
    }

    #[test]
    fn openai_and_anthropic_streams_give_their_usage_split_anywhere() {
        let openai = "data: {\"id\":\"c-3\",\"model\":\"gpt\",\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n\
            data: {\"id\":\"c-3\",\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
            data: {\"id\":\"c-3\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":9}}\n\ndata: [DONE]\n\n";
        let anthropic = "event: message_start\r\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude\",\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\r\n\r\n\
            event: message_delta\r\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":15}}\r\n\r\n";
        for chunk in [1, 3, 50, 10_000] {
            let g = scan(Framing::Sse, openai, chunk);
            assert_eq!(
                (g.input_tokens, g.output_tokens),
                (Some(7), Some(9)),
                "{chunk}"
            );
            assert_eq!(g.finish_reasons, ["stop"]);
            assert_eq!(g.response_model.as_deref(), Some("gpt"));
            let g = scan(Framing::Sse, anthropic, chunk);
            assert_eq!(
                (g.input_tokens, g.output_tokens),
                (Some(25), Some(15)),
                "{chunk}"
            );
            assert_eq!(g.finish_reasons, ["end_turn"]);
            assert_eq!(g.response_id.as_deref(), Some("msg_1"));
        }
    }

    #[test]
    fn responses_tgi_and_ollama_give_their_usage() {
        let responses = "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"model\":\"o\",\"status\":\"completed\",\"usage\":{\"input_tokens\":5,\"output_tokens\":6,\"output_tokens_details\":{\"reasoning_tokens\":2},\"input_tokens_details\":{\"cached_tokens\":1}}}}\n\n";
        let g = scan(Framing::Sse, responses, 13);
        assert_eq!(
            (
                g.input_tokens,
                g.output_tokens,
                g.reasoning_tokens,
                g.cached_input_tokens
            ),
            (Some(5), Some(6), Some(2), Some(1))
        );
        assert_eq!(g.finish_reasons, ["completed"]);
        let tgi = "data:{\"token\":{\"text\":\"a\"}}\n\ndata:{\"token\":{\"text\":\"b\"},\"generated_text\":\"ab\",\"details\":{\"finish_reason\":\"eos_token\",\"generated_tokens\":2}}\n\n";
        let g = scan(Framing::Sse, tgi, 5);
        assert_eq!(
            (g.output_tokens, g.finish_reasons.as_slice()),
            (Some(2), ["eos_token".to_string()].as_slice())
        );
        let ollama = "{\"model\":\"llama3\",\"message\":{\"content\":\"a\"},\"done\":false}\n{\"model\":\"llama3\",\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":26,\"eval_count\":290}\n";
        let g = scan(Framing::Lines, ollama, 9);
        assert_eq!((g.input_tokens, g.output_tokens), (Some(26), Some(290)));
        assert_eq!(g.finish_reasons, ["stop"]);
    }

    #[test]
    fn a_cut_stream_finishes_in_error_and_a_long_one_is_read_from_its_edges() {
        let mut s = UsageScanner::new(Framing::Sse, None);
        s.feed(b"data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[]}\n\n");
        for _ in 0..200 {
            s.feed(
                b"data: {\"choices\":[{\"delta\":{\"content\":\"some words of the answer\"}}]}\n\n",
            );
            assert!(s.head.len() <= EDGE_BYTES && s.tail.len() <= 2 * TAIL_BYTES);
        }
        s.feed(b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":200}}\n\ndata: [DONE]\n\n");
        let mut cut = s.clone();
        let g = s.finish(false);
        assert_eq!((g.input_tokens, g.output_tokens), (Some(1), Some(200)));
        assert_eq!(g.response_model.as_deref(), Some("m"));
        assert_eq!(cut.finish(true).finish_reasons, ["error"]);
    }

    #[test]
    fn the_framing_is_read_from_the_first_bytes_however_they_are_cut() {
        let sse = "data: {\"id\":\"c\",\"model\":\"m\"}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":4}}\n\n";
        let json = "  {\"model\":\"m\",\"usage\":{\"prompt_tokens\":4}}";
        let lines = "{\"model\":\"m\",\"done\":false}\n{\"done\":true,\"prompt_eval_count\":4}\n";
        for body in [sse, json, lines] {
            for chunk in [1, 2, 5, 1000] {
                assert_eq!(
                    scan(Framing::None, body, chunk).input_tokens,
                    Some(4),
                    "{body} by {chunk}"
                );
            }
        }
        assert!(scan(Framing::None, "plain text answer", 3).is_empty());
        assert_eq!(Framing::sniff(b"  {\"a\":1}"), Framing::Json);
        assert_eq!(Framing::sniff(b"event: x\ndata: {}"), Framing::Sse);
        assert_eq!(Framing::sniff(b": keep-alive\n"), Framing::Sse);
        assert_eq!(Framing::sniff(b"\x89PNG\r\n"), Framing::None);
        assert_eq!(Framing::sniff(b""), Framing::None);
    }

    #[test]
    fn a_streamed_request_without_stream_options_is_asked_for_usage() {
        let ask = |t: &str| {
            let v: Value = serde_json::from_str(t).unwrap();
            ask_for_stream_usage(t.as_bytes(), &v).map(|b| String::from_utf8(b).unwrap())
        };
        let added = ask("{\"model\":\"m\",\"stream\":true}\n").unwrap();
        assert_eq!(
            added,
            "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}\n"
        );
        assert!(serde_json::from_str::<Value>(&added).is_ok());
        assert_eq!(
            ask("{\"stream\":true,\"stream_options\":{\"include_usage\":false}}"),
            None,
            "the client chose"
        );
        assert_eq!(ask("{\"stream\":false}"), None);
        assert_eq!(ask("[1]"), None);
    }

    #[test]
    fn the_usage_event_vigil_asked_for_is_kept_from_the_client_however_the_stream_is_cut() {
        let stream = "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n\
            data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\r\n\r\n\
            data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n\n\
            data: [DONE]\n\n";
        let want = stream.replace(
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n\n",
            "",
        );
        for cut in 1..stream.len() {
            let mut f = UsageEventFilter::default();
            let (a, b) = stream.split_at(cut);
            let mut out = f.filter(a.as_bytes(), false);
            out.extend(f.filter(b.as_bytes(), true));
            assert_eq!(String::from_utf8(out).unwrap(), want, "cut at {cut}");
            assert_eq!(f.removed, 1);
        }
    }

    #[test]
    fn the_operation_comes_from_the_path() {
        assert_eq!(operation_name("/v1/chat/completions"), Some("chat"));
        assert_eq!(operation_name("/v1/completions"), Some("text_completion"));
        assert_eq!(operation_name("/v1/embeddings"), Some("embeddings"));
        assert_eq!(operation_name("/v1/messages"), Some("chat"));
        assert_eq!(operation_name("/api/generate"), Some("text_completion"));
        assert_eq!(operation_name("/v1/models"), None);
    }
}
