//! The capture file (contract, docs/design.md): one exchange as Envoy would see it, with the
//! plugin configuration, the VM's environment and clock, the request, the upstream's answer,
//! scripted callout answers and optional expectations. Loading reports one line naming the
//! file, the JSON path and the problem.

use base64::Engine as _;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

use crate::abi::Pairs;
use crate::state::CallAnswer;

/// A body chunk: UTF-8 text, or `{"b64": "..."}` for arbitrary bytes.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Chunk {
    Text(String),
    Bytes { b64: String },
}

impl Chunk {
    pub fn bytes(&self) -> Result<Vec<u8>, String> {
        match self {
            Chunk::Text(s) => Ok(s.as_bytes().to_vec()),
            Chunk::Bytes { b64 } => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| format!("invalid base64 in b64 chunk: {e}")),
        }
    }
}

/// One side of an exchange: headers (with pseudo-headers), body chunks, trailers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub headers: Pairs,
    #[serde(default)]
    pub body: Vec<Chunk>,
    #[serde(default)]
    pub trailers: Option<Pairs>,
}

/// A scripted answer to one `dispatch_http_call`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum CalloutScript {
    /// `"reset"` or `"timeout"`.
    Failure(String),
    Response {
        status: u16,
        #[serde(default)]
        headers: Pairs,
        #[serde(default)]
        body: Option<Chunk>,
        #[serde(default)]
        trailers: Pairs,
    },
}

/// Assertions a capture makes about its own replay.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub outcome: Option<String>,
    pub status: Option<u16>,
    /// Header name to expected value; `null` means the header must be absent.
    #[serde(default)]
    pub client_headers: BTreeMap<String, Option<String>>,
    #[serde(default)]
    pub client_body_contains: Vec<String>,
    #[serde(default)]
    pub client_body_excludes: Vec<String>,
    #[serde(default)]
    pub upstream_headers: BTreeMap<String, Option<String>>,
    #[serde(default)]
    pub upstream_body_contains: Vec<String>,
    pub callouts: Option<usize>,
    /// JSON pointer into the session record to the expected value.
    #[serde(default)]
    pub record: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub log_contains: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capture {
    pub name: String,
    pub source: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Inline JSON object, or a path relative to the capture file.
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// RFC 3339: the clock the filter sees.
    pub now: String,
    pub request: Message,
    #[serde(default)]
    pub upstream: Option<Message>,
    #[serde(default)]
    pub callouts: BTreeMap<String, Vec<CalloutScript>>,
    #[serde(default)]
    pub expect: Option<Expect>,
}

/// A capture ready to run: parsed, with its configuration bytes, clock and bodies resolved.
#[derive(Debug, Clone)]
pub struct LoadedCapture {
    pub capture: Capture,
    pub config_bytes: Vec<u8>,
    pub now_nanos: u64,
    pub request_body: Vec<Vec<u8>>,
    pub upstream_body: Vec<Vec<u8>>,
    pub callouts: BTreeMap<String, Vec<CallAnswer>>,
}

/// A capture that cannot be used, as one line: `FILE: PATH: PROBLEM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureError(pub String);

impl std::fmt::Display for CaptureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn chunks(file: &str, path: &str, chunks: &[Chunk]) -> Result<Vec<Vec<u8>>, CaptureError> {
    chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            c.bytes()
                .map_err(|e| CaptureError(format!("{file}: {path}[{i}]: {e}")))
        })
        .collect()
}

/// Reads a capture file.
pub fn load(path: &Path) -> Result<LoadedCapture, CaptureError> {
    let file = path.display().to_string();
    let text =
        std::fs::read(path).map_err(|e| CaptureError(format!("{file}: cannot read: {e}")))?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&file, &text, base)
}

/// Parses capture bytes; `base` resolves a config path.
pub fn parse(file: &str, text: &[u8], base: &Path) -> Result<LoadedCapture, CaptureError> {
    let de = &mut serde_json::Deserializer::from_slice(text);
    let capture: Capture = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." {
            "$".to_string()
        } else {
            format!("$.{path}")
        };
        let inner = e.into_inner();
        let reason = inner.to_string();
        let reason = match reason.rfind(" at line ") {
            Some(i) => reason[..i].to_string(),
            None => reason,
        };
        let position = if inner.is_syntax() || inner.is_eof() {
            format!(" (line {} column {})", inner.line(), inner.column())
        } else {
            String::new()
        };
        CaptureError(format!("{file}: {path}: {reason}{position}"))
    })?;
    let config_bytes = match &capture.config {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(v @ serde_json::Value::Object(_)) => serde_json::to_vec(v).unwrap_or_default(),
        Some(serde_json::Value::String(rel)) => {
            let p = base.join(rel);
            std::fs::read(&p).map_err(|e| {
                CaptureError(format!(
                    "{file}: $.config: cannot read {}: {e}",
                    p.display()
                ))
            })?
        }
        Some(other) => {
            return Err(CaptureError(format!(
                "{file}: $.config: expected an object or a path, found {}",
                vigil_core::json_reader::describe(other)
            )));
        }
    };
    let now_nanos = vigil_core::time::parse_rfc3339(&capture.now)
        .map_err(|e| CaptureError(format!("{file}: $.now: {e}")))?;
    let request_body = chunks(file, "$.request.body", &capture.request.body)?;
    let upstream_body = match &capture.upstream {
        Some(up) => {
            if !up.headers.iter().any(|(k, _)| k == ":status") {
                return Err(CaptureError(format!(
                    "{file}: $.upstream.headers: missing \":status\""
                )));
            }
            chunks(file, "$.upstream.body", &up.body)?
        }
        None => Vec::new(),
    };
    let mut callouts = BTreeMap::new();
    for (cluster, scripts) in &capture.callouts {
        let mut answers = Vec::new();
        for (i, script) in scripts.iter().enumerate() {
            let at = format!("$.callouts.{cluster}[{i}]");
            answers.push(match script {
                CalloutScript::Failure(kind) if kind == "reset" => CallAnswer::Reset,
                CalloutScript::Failure(kind) if kind == "timeout" => CallAnswer::Timeout,
                CalloutScript::Failure(kind) => {
                    return Err(CaptureError(format!("{file}: {at}: expected \"reset\", \"timeout\" or a response object, found {kind:?}")))
                }
                CalloutScript::Response { status, headers, body, trailers } => {
                    let mut all = vec![(":status".to_string(), status.to_string())];
                    all.extend(headers.iter().filter(|(k, _)| k != ":status").cloned());
                    let body = match body {
                        Some(c) => c.bytes().map_err(|e| CaptureError(format!("{file}: {at}.body: {e}")))?,
                        None => Vec::new(),
                    };
                    CallAnswer::Response { headers: all, body, trailers: trailers.clone() }
                }
            });
        }
        callouts.insert(cluster.clone(), answers);
    }
    Ok(LoadedCapture {
        capture,
        config_bytes,
        now_nanos,
        request_body,
        upstream_body,
        callouts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse("c.json", text.as_bytes(), Path::new("."))
            .unwrap_err()
            .0
    }

    const OK: &str = r#"{"name":"n","source":"s","now":"2026-11-22T10:00:00Z","request":{"headers":[[":method","GET"]]}}"#;

    #[test]
    fn a_minimal_capture_loads() {
        let c = parse("c.json", OK.as_bytes(), Path::new(".")).unwrap();
        assert_eq!(c.capture.name, "n");
        assert!(c.config_bytes.is_empty());
    }

    #[test]
    fn errors_name_file_path_and_problem() {
        assert_eq!(
            err(
                r#"{"name":"n","source":"s","now":"2026-11-22T10:00:00Z","request":{"headers":[[":method"]]}}"#
            ),
            "c.json: $.request.headers[0]: invalid length 1, expected a tuple of size 2"
        );
        assert_eq!(
            err(r#"{"name":"n","source":"s","now":"yesterday","request":{"headers":[]}}"#)
                .split(':')
                .take(2)
                .collect::<Vec<_>>(),
            vec!["c.json", " $.now"]
        );
        assert!(err(r#"{"name":"n","sourc":"s"}"#)
            .starts_with("c.json: $.sourc: unknown field `sourc`"));
        assert_eq!(
            err("{\"name\": 1"),
            "c.json: $.name: invalid type: integer `1`, expected a string"
        );
        assert!(
            err("{\"name\": \"n\"").contains("(line 1 column 12)"),
            "{}",
            err("{\"name\": \"n\"")
        );
    }

    #[test]
    fn bad_callout_scripts_and_b64_are_refused() {
        let text = OK.replace("}}", "},\"callouts\":{\"idp\":[\"explode\"]}}");
        assert_eq!(err(&text), "c.json: $.callouts.idp[0]: expected \"reset\", \"timeout\" or a response object, found \"explode\"");
        let text = OK.replace(
            "[[\":method\",\"GET\"]]",
            "[[\":method\",\"GET\"]],\"body\":[{\"b64\":\"***\"}]",
        );
        assert!(err(&text).starts_with("c.json: $.request.body[0]: invalid base64"));
    }
}
