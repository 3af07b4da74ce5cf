//! `vigil replay` against the replay output contract (docs/design.md), through the real binary.

use serde_json::Value;
use std::process::{Command, Output};

/// The workspace root, where the scripts, policies and test data live.
use vigil_host::artifacts::workspace_root as root;

fn vigil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .current_dir(root())
        .args(args)
        .output()
        .unwrap()
}

fn probe_wasm() -> String {
    let path = root().join("target/wasm32-wasip1/release/vigil_probe.wasm");
    assert!(
        path.exists(),
        "{} is missing; build it with: scripts/build",
        path.display()
    );
    path.display().to_string()
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn shipped_captures() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(root().join("testdata/captures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| p.strip_prefix(root()).unwrap().display().to_string())
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_capture_replays_with_its_expectations_held() {
    let captures = shipped_captures();
    assert!(captures.len() >= 3);
    let mut args = vec!["replay", "--json"];
    args.extend(captures.iter().map(String::as_str));
    let out = vigil(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results = lines(&out);
    assert_eq!(results.len(), captures.len(), "one line per capture");
    for r in results {
        assert_eq!(r["expect_ok"], Value::Bool(true), "{r}");
        assert_eq!(r["error"], Value::Null, "{r}");
    }
}

#[test]
fn each_line_has_exactly_the_contract_fields_with_their_types() {
    let out = vigil(&[
        "replay",
        "--json",
        "testdata/captures/chat-completion-streamed.json",
    ]);
    let r = &lines(&out)[0];
    let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
    let mut want = vec![
        "name",
        "outcome",
        "status",
        "client_headers",
        "client_body",
        "upstream_request",
        "callouts",
        "record",
        "expect_ok",
        "error",
    ];
    want.sort();
    let mut keys_sorted = keys.clone();
    keys_sorted.sort();
    assert_eq!(keys_sorted, want);
    assert_eq!(r["name"], "chat-completion-streamed");
    assert_eq!(r["outcome"], "forwarded");
    assert_eq!(r["status"], 200);
    assert_eq!(
        r["client_headers"][0],
        serde_json::json!([":status", "200"])
    );
    assert!(r["client_body"]
        .as_str()
        .unwrap()
        .ends_with("data: [DONE]\n\n"));
    let up = &r["upstream_request"];
    assert_eq!(
        up.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["body", "headers"]
    );
    assert!(up["headers"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!([":path", "/v1/chat/completions"])));
    assert_eq!(r["callouts"], serde_json::json!([]));
    assert_eq!(r["record"]["v"], 1);
    assert_eq!(r["expect_ok"], true);
}

#[test]
fn callouts_are_answered_from_the_script_and_listed_with_what_the_filter_sent() {
    let out = vigil(&[
        "replay",
        "--json",
        "--wasm",
        &probe_wasm(),
        "cli/tests/data/scripted-callout.json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = &lines(&out)[0];
    assert_eq!(r["callouts"][0]["cluster"], "svc");
    assert_eq!(r["callouts"][0]["body"], "ping");
    assert!(r["callouts"][0]["headers"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!([":path", "/check"])));
    assert_eq!(
        r["upstream_request"]["body"], "abcdef",
        "held chunks reach upstream after the resume"
    );
    assert_eq!(r["client_body"], "ok\u{FFFD}k", "bad bytes become U+FFFD");
}

#[test]
fn an_unscripted_callout_is_a_clear_error_of_that_capture_not_a_hang() {
    let out = vigil(&[
        "replay",
        "--json",
        "--wasm",
        &probe_wasm(),
        "cli/tests/data/unscripted-callout.json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let r = &lines(&out)[0];
    assert_eq!(
        r["error"],
        "unscripted callout to cluster \"svc\" (/check): callouts.svc has no answer left"
    );
    assert_eq!(r["upstream_request"], Value::Null);
}

#[test]
fn a_filter_trap_is_reported_with_its_last_log_lines_and_the_client_gets_503() {
    let out = vigil(&[
        "replay",
        "--json",
        "--wasm",
        &probe_wasm(),
        "cli/tests/data/trapping-filter.json",
        "testdata/captures/list-models.json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let results = lines(&out);
    let r = &results[0];
    let error = r["error"].as_str().unwrap();
    assert!(
        error.starts_with("filter trapped in proxy_on_request_headers: wasm trap"),
        "{error}"
    );
    assert!(error.contains("probe panics on purpose"), "{error}");
    assert_eq!(
        (r["status"].as_u64(), r["outcome"].as_str()),
        (Some(503), Some("local_response"))
    );
    assert_eq!(results.len(), 2, "the next capture still runs");
}

#[test]
fn a_failed_expectation_exits_1_and_says_what_failed() {
    let out = vigil(&["replay", "--json", "cli/tests/data/failed-expectation.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(lines(&out)[0]["expect_ok"], false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("expectation failed: status: expected 418, got Some(200)"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "expectation failed: record /decision/action: expected \"block\", got \"allow\""
        ),
        "{stderr}"
    );
}

#[test]
fn a_malformed_capture_exits_2_with_one_line_naming_file_and_path() {
    let out = vigil(&[
        "replay",
        "--json",
        "cli/tests/data/malformed.json",
        "testdata/captures/list-models.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let results = lines(&out);
    assert_eq!(results[0]["error"], "cli/tests/data/malformed.json: $.request.headers[1]: invalid length 1, expected a tuple of size 2");
    assert_eq!(results[0]["status"], Value::Null);
    assert_eq!(results[1]["expect_ok"], true);
}

#[test]
fn a_missing_module_names_the_build_command() {
    let out = vigil(&[
        "replay",
        "--wasm",
        "/nonexistent/vigil.wasm",
        "testdata/captures/list-models.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/vigil.wasm"));
}

#[test]
fn the_readable_form_shows_each_capture_and_a_summary() {
    let out = vigil(&[
        "replay",
        "testdata/captures/list-models.json",
        "cli/tests/data/failed-expectation.json",
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("● list-models"));
    assert!(text.contains("expect    FAILED: status: expected 418, got Some(200)"));
    assert!(
        text.ends_with("2 captures: 2 ran cleanly, 1 of 2 with expectations held\n"),
        "{text}"
    );
}

#[test]
fn replay_is_deterministic() {
    let a = vigil(&["replay", "--json", "testdata/captures/embeddings-json.json"]).stdout;
    let b = vigil(&["replay", "--json", "testdata/captures/embeddings-json.json"]).stdout;
    assert_eq!(a, b);
}

/// `vigil replay ... | head -1`: the reader goes away after one line, and the command ends
/// quietly with status 0 instead of panicking on the closed pipe.
#[test]
fn replay_into_a_pipe_closed_early_ends_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let captures = shipped_captures();
    // Enough output that some of it is written after the reader has gone.
    let mut args = vec!["replay"];
    for _ in 0..20 {
        args.extend(captures.iter().map(String::as_str));
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .current_dir(root())
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with('●'), "first line: {first:?}");
    // The reader is dropped here: the pipe is closed.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
}
