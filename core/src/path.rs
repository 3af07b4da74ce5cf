//! The request path as the model server will understand it. Python servers behind Vigil
//! (uvicorn/Starlette under vLLM and KServe) percent-decode the path before routing, so
//! `/v1/fine%5Ftuning/jobs` runs the fine-tuning handler; rules, model-from-path and list
//! paths must match the same path. [`normalize`] decodes every escape, removes dot segments
//! (RFC 3986 5.2.4) and merges repeated slashes; forms servers disagree on are refused rather
//! than guessed: an encoded `/` or `\`, a literal `\`, NUL and other control characters,
//! invalid escapes or UTF-8, a path that does not start with `/`.
//!
//! The query is kept apart. Its values never reach a record or a log ([`redact_query`]):
//! they can carry anything, and the record keeps the names.

use std::fmt;

/// Why a path is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmbiguousPath(pub &'static str);

impl fmt::Display for AmbiguousPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A request target split into its normalized path and its raw query (without `?`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPath {
    pub path: String,
    pub query: Option<String>,
}

impl RequestPath {
    /// The path and the query with every value redacted: what records and logs show.
    pub fn for_record(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{}", self.path, redact_query(q)),
            None => self.path.clone(),
        }
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes; an encoded `/`, `\` or NUL and a malformed escape are refused.
fn percent_decode(raw: &str) -> Result<String, AmbiguousPath> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) else {
                return Err(AmbiguousPath("the path has an invalid percent escape"));
            };
            let decoded = h * 16 + l;
            match decoded {
                b'/' => return Err(AmbiguousPath("the path has an encoded '/' (%2F)")),
                b'\\' => return Err(AmbiguousPath("the path has an encoded '\\' (%5C)")),
                _ => out.push(decoded),
            }
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| AmbiguousPath("the decoded path is not UTF-8"))
}

/// Removes `.` and `..` segments and merges repeated slashes; `..` never climbs above `/`.
fn resolve(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let trailing = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() || (trailing && !segments.is_empty()) {
        out.push('/');
    }
    out
}

/// Whether `raw` is its own normal form (most paths): printable ASCII without `%`, and no
/// empty, `.` or `..` segment (one trailing slash aside, which normalizing keeps).
fn already_normal(raw: &str) -> bool {
    let Some(rest) = raw.strip_prefix('/') else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    if !raw.bytes().all(|b| b.is_ascii_graphic() && b != b'%') {
        return false;
    }
    let body = rest.strip_suffix('/').unwrap_or(rest);
    !body.is_empty()
        && body
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
}

/// The normalized path of a request target (`:path`), and its query.
pub fn normalize(target: &str) -> Result<RequestPath, AmbiguousPath> {
    let (raw, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (target, None),
    };
    if !raw.starts_with('/') {
        return Err(AmbiguousPath("the path does not start with '/'"));
    }
    if raw.contains('\\') {
        return Err(AmbiguousPath("the path has a '\\'"));
    }
    if already_normal(raw) {
        // Most paths: nothing to decode or resolve.
        return Ok(RequestPath {
            path: raw.to_string(),
            query,
        });
    }
    let decoded = percent_decode(raw)?;
    if decoded.chars().any(char::is_control) {
        return Err(AmbiguousPath("the path has a control character"));
    }
    Ok(RequestPath {
        path: resolve(&decoded),
        query,
    })
}

/// `a=1&b=x` -> `a=…&b=…`: names kept (percent-encoded as sent), values never.
pub fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) => format!("{}=…", printable(name)),
            None => printable(pair),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A query name as it may appear in a record: up to 64 characters, no control characters.
fn printable(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(target: &str) -> String {
        normalize(target).unwrap().path
    }

    #[test]
    fn escapes_dot_segments_and_repeated_slashes_normalize_to_what_the_server_routes() {
        assert_eq!(path("/v1/fine%5Ftuning/jobs"), "/v1/fine_tuning/jobs");
        assert_eq!(path("/v2/models/m/%69nfer"), "/v2/models/m/infer");
        assert_eq!(
            path("/v1/chat/../fine_tuning/./jobs"),
            "/v1/fine_tuning/jobs"
        );
        assert_eq!(path("/v1/%2e%2e/%2E%2E/v1/fine_tuning"), "/v1/fine_tuning");
        assert_eq!(path("//v1///fine_tuning//jobs/"), "/v1/fine_tuning/jobs/");
        assert_eq!(path("/../../etc"), "/etc");
        assert_eq!(path("/"), "/");
        assert_eq!(path("/v1/models/caf%C3%A9"), "/v1/models/café");
        let q = normalize("/v1/chat?user=ana@bank.example&stream=true").unwrap();
        assert_eq!(q.path, "/v1/chat");
        assert_eq!(q.for_record(), "/v1/chat?user=…&stream=…");
    }

    #[test]
    fn ambiguous_forms_are_refused() {
        for bad in [
            "/v1/fine_tuning%2Fjobs",
            "/v1/fine_tuning%2fjobs",
            "/v1%5Cfine_tuning",
            "/v1\\fine_tuning",
            "/v1/%00",
            "/v1/%zz",
            "/v1/%4",
            "/v1/%C3",
            "v1/chat",
            "",
            "*",
            "/v1/%0A",
        ] {
            assert!(normalize(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn the_fast_path_gives_what_the_full_normalization_gives() {
        for raw in [
            "/",
            "/v1/chat/completions",
            "/a/b/",
            "/a//b",
            "//",
            "/a/./b",
            "/a/../b",
            "/.",
            "/..",
            "/a/.",
            "/a/..",
            "/.hidden/x",
            "/a..b/c",
            "/a/b//",
            "/x/~y-z_",
        ] {
            let full = percent_decode(raw).map(|d| resolve(&d)).unwrap();
            if already_normal(raw) {
                assert_eq!(full, raw, "{raw}");
            }
            assert_eq!(path(raw), full, "{raw}");
        }
    }

    #[test]
    fn normalizing_twice_changes_nothing() {
        for target in ["/a/./b/../c//d/", "/%7Euser/x", "/x/%25/y"] {
            let once = path(target);
            // A decoded '%' is data; the normalized form is what rules see, not re-decoded.
            if !once.contains('%') {
                assert_eq!(path(&once), once, "{target}");
            }
        }
    }
}
