//! Reading record files: JSON lines as Envoy's access log writes them. A line is one of
//!
//! - a bare record (`{"v": 1, ...}`: a text-format log of `%FILTER_STATE(...:PLAIN)%` alone);
//! - an access-log object whose `vigil_record` field holds the record, as a JSON string
//!   (`%FILTER_STATE(wasm.vigil_record:PLAIN)%` in a `json_format`) or as an object, and whose
//!   `vigil_record_late` field holds the records of exchanges cut short, carried by this line;
//! - an OTLP/JSON export (the OpenTelemetry collector's file exporter): every log record's body
//!   is a record, and its `vigil_record_late` attribute the late ones.
//!
//! Every line that is not readable as one of these is a problem at that line; a line with no
//! record at all (a request Vigil did not see) is counted, not a problem: the chain shows
//! whether a record is missing.

use serde_json::Value;
use std::fmt;
use std::path::Path;

/// Where an entry came from: file, 1-based line, and which record of the line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    pub file: String,
    pub line: usize,
    /// Records carried late come first on their line (`late record 1`, ...); OTLP lines
    /// number their log records.
    pub item: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if let Some(item) = &self.item {
            write!(f, " ({item})")?;
        }
        Ok(())
    }
}

/// One thing read from a file, in file order.
#[derive(Debug)]
pub enum Entry {
    Record { at: Location, value: Value },
    Problem { at: Location, message: String },
}

/// What was read from one file.
#[derive(Debug, Default)]
pub struct FileReading {
    pub entries: Vec<Entry>,
    pub lines: usize,
    pub lines_without_record: usize,
    pub sha256: String,
    pub bytes: u64,
}

/// Reads one file; `Err` only when the file itself cannot be read.
pub fn read_file(path: &Path, field: &str) -> std::io::Result<FileReading> {
    let bytes = std::fs::read(path)?;
    let mut reading = read_bytes(&path.display().to_string(), &bytes, field);
    reading.sha256 = vigil_core::digest::sha256_hex(&bytes);
    reading.bytes = bytes.len() as u64;
    Ok(reading)
}

/// Reads the lines of `bytes` as from the file named `file`.
pub fn read_bytes(file: &str, bytes: &[u8], field: &str) -> FileReading {
    let fields = Fields::named(field);
    let mut lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    // The newline ending the last line does not start another.
    if bytes.ends_with(b"\n") || bytes.is_empty() {
        lines.pop();
    }
    let numbered: Vec<(usize, &[u8])> = lines.into_iter().enumerate().collect();
    let per_line = super::par::map(&numbered, |(i, line)| {
        let at = Location {
            file: file.to_string(),
            line: i + 1,
            item: None,
        };
        let mut entries = Vec::new();
        read_line(line, &at, &fields, &mut entries);
        order_by_seq(&mut entries);
        entries
    });
    let mut reading = FileReading {
        lines: per_line.len(),
        ..FileReading::default()
    };
    for entries in per_line {
        if entries.is_empty() {
            reading.lines_without_record += 1;
        }
        reading.entries.extend(entries);
    }
    reading
}

/// The access-log fields a line carries Vigil's entries in: the record (`--field`), the late
/// records (`<field>_late`) and the checkpoints (`<field>_checkpoints`).
struct Fields<'a> {
    record: &'a str,
    late: String,
    checkpoints: String,
}

impl<'a> Fields<'a> {
    fn named(record: &'a str) -> Self {
        Self {
            record,
            late: format!("{record}_late"),
            checkpoints: format!("{record}_checkpoints"),
        }
    }
}

/// Entries of one line in chain order: a line carries checkpoints made before its record
/// (while no request came) and one made right after it (every N records).
fn order_by_seq(entries: &mut [Entry]) {
    let key = |e: &Entry| match e {
        Entry::Record { value, .. } => value.get("seq").and_then(Value::as_u64),
        Entry::Problem { .. } => None,
    };
    if entries.iter().all(|e| key(e).is_some()) {
        entries.sort_by_key(|e| key(e).unwrap_or(0));
    }
}

/// What the filter writes before a checkpoint in Envoy's log.
pub const ENVOY_LOG_MARKER: &str = "vigil checkpoint: ";

/// The `item` of an entry read from Envoy's log.
const FROM_ENVOY_LOG: &str = "Envoy log";

/// Reads the checkpoints in one of Envoy's own log files: every line with
/// `vigil checkpoint: {...}`, whatever Envoy put before it; other lines are Envoy's business.
pub fn read_envoy_log(path: &Path) -> std::io::Result<FileReading> {
    let bytes = std::fs::read(path)?;
    let file = path.display().to_string();
    let mut reading = FileReading {
        sha256: vigil_core::digest::sha256_hex(&bytes),
        bytes: bytes.len() as u64,
        ..FileReading::default()
    };
    for (i, line) in String::from_utf8_lossy(&bytes).lines().enumerate() {
        reading.lines += 1;
        let Some((_, json)) = line.split_once(ENVOY_LOG_MARKER) else {
            reading.lines_without_record += 1;
            continue;
        };
        let at = Location {
            file: file.clone(),
            line: i + 1,
            item: Some(FROM_ENVOY_LOG.into()),
        };
        match serde_json::from_str::<Value>(json.trim_end()) {
            Ok(value @ Value::Object(_)) => reading.entries.push(Entry::Record { at, value }),
            Ok(_) => problem(
                &mut reading.entries,
                &at,
                "the checkpoint is not a JSON object",
            ),
            Err(e) => problem(
                &mut reading.entries,
                &at,
                format!("the checkpoint is not JSON ({e})"),
            ),
        }
    }
    Ok(reading)
}

fn problem(entries: &mut Vec<Entry>, at: &Location, message: impl Into<String>) {
    entries.push(Entry::Problem {
        at: at.clone(),
        message: message.into(),
    });
}

fn read_line(line: &[u8], at: &Location, fields: &Fields, out: &mut Vec<Entry>) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return problem(out, at, "empty line");
    }
    let text = match std::str::from_utf8(line) {
        Ok(t) => t,
        Err(e) => return problem(out, at, format!("not UTF-8 ({e})")),
    };
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) if e.is_eof() => {
            return problem(
                out,
                at,
                format!("truncated line: the JSON ends early ({e})"),
            )
        }
        Err(e) => return problem(out, at, format!("not JSON ({e})")),
    };
    let Value::Object(map) = &value else {
        return problem(out, at, "not a JSON object");
    };
    if map.contains_key("v") {
        out.push(Entry::Record {
            at: at.clone(),
            value,
        });
        return;
    }
    if let Some(resource_logs) = map.get("resourceLogs") {
        return read_otlp(resource_logs, at, fields, out);
    }
    if let Some(late) = map.get(&fields.late) {
        read_late(late, at, &fields.late, out);
    }
    if let Some(record) = map.get(fields.record) {
        read_field(record, at, fields.record, out);
    }
    if let Some(carried) = map.get(&fields.checkpoints) {
        read_checkpoints(carried, at, &fields.checkpoints, out);
    }
}

/// A field holding one record: an object, a JSON string, or Envoy's `-`/null for "not set".
fn read_field(value: &Value, at: &Location, field: &str, out: &mut Vec<Entry>) {
    match value {
        Value::Null => {}
        Value::String(s) if s.is_empty() || s == "-" => {}
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => out.push(Entry::Record {
                at: at.clone(),
                value: v,
            }),
            Ok(_) => problem(out, at, format!("{field} is not a JSON object")),
            Err(e) if e.is_eof() => problem(
                out,
                at,
                format!("{field} is truncated: the record's JSON ends early ({e})"),
            ),
            Err(e) => problem(out, at, format!("{field} is not JSON ({e})")),
        },
        v @ Value::Object(_) => out.push(Entry::Record {
            at: at.clone(),
            value: v.clone(),
        }),
        _ => problem(out, at, format!("{field} is neither a record nor a string")),
    }
}

/// A field holding records carried late: a JSON array, or a string of one.
fn read_late(value: &Value, at: &Location, field: &str, out: &mut Vec<Entry>) {
    read_array(value, at, field, "late record", out);
}

/// The checkpoints an access-log line carries: a JSON array, or a string of one.
fn read_checkpoints(value: &Value, at: &Location, field: &str, out: &mut Vec<Entry>) {
    read_array(value, at, field, "checkpoint", out);
}

/// A field holding entries (each an object, named `<what> N` on its line): a JSON array, a
/// string of one, or Envoy's `-`/null for none.
fn read_array(value: &Value, at: &Location, field: &str, what: &str, out: &mut Vec<Entry>) {
    let parsed;
    let items = match value {
        Value::Null => return,
        Value::String(s) if s.is_empty() || s == "-" => return,
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Array(items)) => {
                parsed = items;
                &parsed
            }
            Ok(_) => return problem(out, at, format!("{field} is not a JSON array")),
            Err(e) => return problem(out, at, format!("{field} is not JSON ({e})")),
        },
        Value::Array(items) => items,
        _ => return problem(out, at, format!("{field} is not an array of {what}s")),
    };
    for (i, item) in items.iter().enumerate() {
        let name = match &at.item {
            Some(outer) => format!("{outer}, {what} {}", i + 1),
            None => format!("{what} {}", i + 1),
        };
        let item_at = Location {
            item: Some(name),
            ..at.clone()
        };
        match item {
            Value::Object(_) => out.push(Entry::Record {
                at: item_at,
                value: item.clone(),
            }),
            _ => problem(out, &item_at, format!("not a {what} object")),
        }
    }
}

/// OTLP/JSON: resourceLogs[].scopeLogs[].logRecords[] with the record in `body.stringValue`.
fn read_otlp(resource_logs: &Value, at: &Location, fields: &Fields, out: &mut Vec<Entry>) {
    let records = resource_logs
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| {
            r.get("scopeLogs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .flat_map(|s| {
            s.get("logRecords")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        });
    for (i, log_record) in records.enumerate() {
        let item_at = Location {
            item: Some(format!("log record {}", i + 1)),
            ..at.clone()
        };
        let attribute = |key: &str| {
            log_record
                .get("attributes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|a| a.get("key").and_then(Value::as_str) == Some(key))
                .and_then(|a| a.pointer("/value/stringValue"))
        };
        if let Some(late) = attribute(&fields.late) {
            read_late(late, &item_at, &fields.late, out);
        }
        if let Some(carried) = attribute(&fields.checkpoints) {
            read_checkpoints(carried, &item_at, &fields.checkpoints, out);
        }
        if let Some(body) = log_record.pointer("/body/stringValue") {
            read_field(body, &item_at, "body", out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> FileReading {
        read_bytes("f.jsonl", text.as_bytes(), "vigil_record")
    }

    fn problems(r: &FileReading) -> Vec<String> {
        r.entries
            .iter()
            .filter_map(|e| match e {
                Entry::Problem { at, message } => Some(format!("{at}: {message}")),
                Entry::Record { .. } => None,
            })
            .collect()
    }

    #[test]
    fn bare_records_envoy_json_lines_and_late_records_are_all_read_in_order() {
        let text = concat!(
            "{\"v\":1,\"seq\":1}\n",
            "{\"time\":\"t\",\"vigil_record\":\"{\\\"v\\\":1,\\\"seq\\\":3}\",\"vigil_record_late\":\"[{\\\"v\\\":1,\\\"seq\\\":2}]\"}\n",
            "{\"time\":\"t\",\"vigil_record\":\"-\"}\n",
            "{\"vigil_record\":{\"v\":1,\"seq\":4}}\n",
        );
        let r = read(text);
        let seqs: Vec<(String, u64)> = r
            .entries
            .iter()
            .map(|e| match e {
                Entry::Record { at, value } => (at.to_string(), value["seq"].as_u64().unwrap()),
                Entry::Problem { at, message } => panic!("{at}: {message}"),
            })
            .collect();
        assert_eq!(
            seqs,
            vec![
                ("f.jsonl:1".into(), 1),
                ("f.jsonl:2 (late record 1)".into(), 2),
                ("f.jsonl:2".into(), 3),
                ("f.jsonl:4".into(), 4)
            ]
        );
        assert_eq!((r.lines, r.lines_without_record), (4, 1));
    }

    #[test]
    fn truncated_non_json_empty_and_binary_lines_are_problems_at_their_line() {
        let r =
            read("{\"v\":1,\"se\n\nnot json\n[1]\n\u{0}\n{\"vigil_record\":\"{\\\"v\\\":1,\"}\n");
        let mut bin = b"{\"v\":1}\n".to_vec();
        bin.extend_from_slice(b"\xff\xfe\n");
        let rb = read_bytes("b", &bin, "vigil_record");
        assert_eq!(
            problems(&r)
                .iter()
                .map(|p| p.split(" (").next().unwrap().to_string())
                .collect::<Vec<_>>(),
            vec![
                "f.jsonl:1: truncated line: the JSON ends early",
                "f.jsonl:2: empty line",
                "f.jsonl:3: not JSON",
                "f.jsonl:4: not a JSON object",
                "f.jsonl:5: not JSON",
                "f.jsonl:6: vigil_record is truncated: the record's JSON ends early",
            ]
        );
        assert_eq!(
            problems(&rb),
            vec!["b:2: not UTF-8 (invalid utf-8 sequence of 1 bytes from index 0)"]
        );
    }

    #[test]
    fn otlp_file_exports_are_read_record_by_record() {
        let line = serde_json::json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
            {"body": {"stringValue": "{\"v\":1,\"seq\":1}"}},
            {"body": {"stringValue": "{\"v\":1,\"seq\":3}"},
             "attributes": [{"key": "vigil_record_late", "value": {"stringValue": "[{\"v\":1,\"seq\":2}]"}}]}
        ]}]}]});
        let r = read(&format!("{line}\n"));
        let at: Vec<String> = r
            .entries
            .iter()
            .map(|e| match e {
                Entry::Record { at, .. } => at.to_string(),
                Entry::Problem { message, .. } => panic!("{message}"),
            })
            .collect();
        assert_eq!(
            at,
            vec![
                "f.jsonl:1 (log record 1)",
                "f.jsonl:1 (log record 2, late record 1)",
                "f.jsonl:1 (log record 2)"
            ]
        );
    }
}
