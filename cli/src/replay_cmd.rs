//! `vigil replay`: captures through the compiled filter, as JSON lines or for a person.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use vigil_host::replay::{replay_file_live, ReplayResult};
use vigil_host::Plugin;

pub fn run(
    json: bool,
    wasm: Option<PathBuf>,
    show_logs: bool,
    live: &[(String, SocketAddr)],
    captures: &[PathBuf],
) -> u8 {
    let wasm = match wasm
        .map(Ok)
        .unwrap_or_else(|| vigil_host::artifacts::wasm("vigil_filter"))
    {
        Ok(p) => p,
        Err(e) => {
            eprintln!("vigil replay: {e}");
            return 2;
        }
    };
    let plugin = match Plugin::load(&wasm) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("vigil replay: {e}");
            return 2;
        }
    };
    let mut code = 0;
    let mut results = Vec::new();
    for path in captures {
        let result = replay_file_live(&plugin, path, live);
        code = code.max(exit_code(&result));
        if json {
            match serde_json::to_string(&result) {
                Ok(line) => vigil_cli::outln!("{line}"),
                Err(e) => eprintln!("{}: cannot print result: {e}", path.display()),
            }
            for failure in &result.expect_failures {
                eprintln!("{}: expectation failed: {failure}", path.display());
            }
        } else {
            print_readable(path, &result, show_logs);
        }
        results.push(result);
    }
    if !json {
        print_summary(&results);
    }
    code
}

/// 2 for a capture that cannot be used, 1 for a failed run or expectation, else 0.
fn exit_code(r: &ReplayResult) -> u8 {
    if r.unusable {
        2
    } else if r.error.is_some() || r.expect_ok == Some(false) {
        1
    } else {
        0
    }
}

fn header<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn print_readable(path: &Path, r: &ReplayResult, show_logs: bool) {
    vigil_cli::outln!("● {}  ({})", r.name, path.display());
    if r.unusable {
        vigil_cli::outln!("  unusable  {}", r.error.as_deref().unwrap_or(""));
        vigil_cli::outln!();
        return;
    }
    match &r.upstream_request {
        Some(up) => vigil_cli::outln!(
            "  upstream  {} {} reached the model server ({} body bytes)",
            header(&up.headers, ":method").unwrap_or("?"),
            header(&up.headers, ":path").unwrap_or("?"),
            up.body.len()
        ),
        None => vigil_cli::outln!("  upstream  nothing reached the model server"),
    }
    vigil_cli::outln!(
        "  client    {} {} ({} body bytes)",
        r.status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into()),
        r.outcome.as_deref().unwrap_or("did not run"),
        r.client_body.len()
    );
    if !r.callouts.is_empty() {
        let clusters: Vec<&str> = r.callouts.iter().map(|c| c.cluster.as_str()).collect();
        vigil_cli::outln!("  callouts  {}", clusters.join(", "));
    }
    let rec = &r.record;
    if rec.is_null() {
        vigil_cli::outln!("  record    none written");
    } else {
        let s = |p: &str| {
            rec.pointer(p)
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
                .unwrap_or_default()
        };
        vigil_cli::outln!(
            "  record    seq {} · decision {} ({}) · policy {} v{} · complete {}",
            s("/seq"),
            s("/decision/action"),
            s("/decision/reason"),
            s("/policy/id"),
            s("/policy/version"),
            s("/complete")
        );
        vigil_cli::outln!(
            "            request {} bytes · response {} bytes · hash {}…",
            s("/request/bytes"),
            s("/response/bytes"),
            s("/hash").chars().take(16).collect::<String>()
        );
        let masked: Vec<String> = rec
            .pointer("/masked")
            .and_then(|m| m.as_object())
            .map(|m| m.iter().map(|(k, v)| format!("{k} {v}")).collect())
            .unwrap_or_default();
        if !masked.is_empty() {
            vigil_cli::outln!("            masked {}", masked.join(", "));
        }
    }
    match r.expect_ok {
        Some(true) => vigil_cli::outln!("  expect    ok"),
        Some(false) => {
            for f in &r.expect_failures {
                vigil_cli::outln!("  expect    FAILED: {f}");
            }
        }
        None => {}
    }
    if let Some(e) = &r.error {
        vigil_cli::outln!("  error     {e}");
    }
    if show_logs {
        for l in &r.logs {
            vigil_cli::outln!("  log       [{}] {}", l.level.name(), l.message);
        }
    }
    vigil_cli::outln!();
}

fn print_summary(results: &[ReplayResult]) {
    let width = results
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(7)
        .max(7);
    vigil_cli::outln!(
        "{:<width$}  {:<15} {:>6}  {:<8} {:>8}  {:<7}  EXPECT",
        "CAPTURE",
        "OUTCOME",
        "STATUS",
        "UPSTREAM",
        "CALLOUTS",
        "RECORD"
    );
    for r in results {
        let record = r
            .record
            .get("seq")
            .map(|s| format!("seq {s}"))
            .unwrap_or_else(|| "-".into());
        let expect = match (r.expect_ok, &r.error) {
            (_, Some(_)) if r.unusable => "unusable",
            (_, Some(_)) => "error",
            (Some(true), None) => "ok",
            (Some(false), None) => "FAILED",
            (None, None) => "-",
        };
        vigil_cli::outln!(
            "{:<width$}  {:<15} {:>6}  {:<8} {:>8}  {:<7}  {}",
            r.name,
            r.outcome.as_deref().unwrap_or("-"),
            r.status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            if r.upstream_request.is_some() {
                "yes"
            } else {
                "no"
            },
            r.callouts.len(),
            record,
            expect
        );
    }
    let ran = results.iter().filter(|r| r.error.is_none()).count();
    let with_expect = results.iter().filter(|r| r.expect_ok.is_some()).count();
    let held = results.iter().filter(|r| r.expect_ok == Some(true)).count();
    vigil_cli::outln!(
        "{} captures: {} ran cleanly, {} of {} with expectations held",
        results.len(),
        ran,
        held,
        with_expect
    );
}
