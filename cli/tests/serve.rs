// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! `vigil serve` on real sockets: a client's requests through vigil.wasm to a model-server
//! stand-in on 127.0.0.1, answers masked as they stream, refusals answered by the filter,
//! Envoy's 503 for a model server that cannot be reached, one access-log line per exchange
//! that `vigil audit verify` accepts (one chain per worker), Prometheus text on the admin
//! address, and a stop that lets exchanges in flight finish.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "serve-test-record-key-0123456789abcdef";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vigil-serve-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A model server stand-in: JSON answers with an SSN and a card, or (`"stream": true`) an
/// SSE stream with the card split over three events, `pause_ms` apart. One request per
/// connection.
fn model_server(pause_ms: u64) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || answer(conn, pause_ms));
        }
    });
    port
}

fn answer(conn: TcpStream, pause_ms: u64) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut len = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    let mut out = conn;
    if String::from_utf8_lossy(&body).contains("\"stream\":true") {
        let _ = out.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n");
        for piece in ["Your card 4111 11", "11 1111 ", "1111 is active.", "[DONE]"] {
            let event = if piece == "[DONE]" {
                "data: [DONE]\n\n".to_string()
            } else {
                format!(
                    "data: {}\n\n",
                    serde_json::json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": piece}}]})
                )
            };
            let _ = write!(out, "{:x}\r\n{event}\r\n", event.len());
            let _ = out.flush();
            std::thread::sleep(Duration::from_millis(pause_ms));
        }
        let _ = out.write_all(b"0\r\n\r\n");
        return;
    }
    let answer = serde_json::json!({"object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant",
        "content": format!("SSN 536-22-1234, card 4111 1111 1111 1111 ({} bytes asked)", body.len())}}]})
    .to_string();
    let _ = write!(
        out,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
        answer.len()
    );
}

struct Serve {
    child: Child,
    port: u16,
    admin: u16,
    log: PathBuf,
}

impl Serve {
    fn start(dir: &Path, upstream: &str) -> Serve {
        Serve::start_with(
            dir,
            upstream,
            r#"{"id": "serve-test", "version": "1",
                "rules": [{"id": "no-fine-tuning", "when": {"path": {"prefix": "/v1/fine_tuning/"}},
                           "action": {"type": "block", "status": 403, "message": "not through the gateway"}}]}"#,
            &[],
        )
    }

    fn start_with(dir: &Path, upstream: &str, policy_json: &str, extra: &[String]) -> Serve {
        let policy = dir.join("policy.json");
        std::fs::write(&policy, policy_json).unwrap();
        let (port, admin) = (free_port(), free_port());
        let log = dir.join("access.log");
        let child = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(["serve", "--policy"])
            .arg(&policy)
            .args(["--upstream", upstream])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--admin", &format!("127.0.0.1:{admin}")])
            .args(["--workers", "2", "--access-log"])
            .arg(&log)
            .args(["--env", &format!("VIGIL_RECORD_KEY={KEY}")])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "vigil serve did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Serve {
            child,
            port,
            admin,
            log,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn post(&self, path: &str, body: &str) -> (u16, String) {
        match ureq::post(&self.url(path))
            .set("content-type", "application/json")
            .send_string(body)
        {
            Ok(r) => (r.status(), r.into_string().unwrap()),
            Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
            Err(e) => panic!("{e}"),
        }
    }

    /// SIGTERM, then waits for the process to end (it finishes what is in flight first).
    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut err = String::new();
                let _ = self.child.stderr.take().unwrap().read_to_string(&mut err);
                assert!(status.success(), "vigil serve exited {status}: {err}");
                return err;
            }
            assert!(Instant::now() < deadline, "vigil serve did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn verify(log: &Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["audit", "verify"])
        .arg(log)
        .env("VIGIL_RECORD_KEY", KEY)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn records(log: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const CHAT: &str = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
const STREAM: &str = r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

#[test]
fn answers_are_masked_on_real_sockets_and_every_exchange_is_a_record_that_verifies() {
    let dir = scratch("masked");
    let serve = Serve::start(&dir, &format!("http://127.0.0.1:{}", model_server(20)));
    let (status, body) = serve.post("/v1/chat/completions", CHAT);
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        format!("SSN [SSN], card [CREDIT_CARD] ({} bytes asked)", CHAT.len())
    );
    // The card split over three events reaches the client masked.
    let (status, body) = serve.post("/v1/chat/completions", STREAM);
    assert_eq!(status, 200);
    assert!(!body.contains("4111") && !body.contains("1111"), "{body}");
    assert!(
        body.contains("[CREDIT_CARD]") && body.ends_with("data: [DONE]\n\n"),
        "{body}"
    );
    // A refusal is the filter's own answer.
    let (status, body) = serve.post("/v1/fine_tuning/jobs", "{}");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("not through the gateway"), "{body}");
    for _ in 0..9 {
        assert_eq!(serve.post("/v1/chat/completions", CHAT).0, 200);
    }
    let metrics = ureq::get(&format!(
        "http://127.0.0.1:{}/stats/prometheus",
        serve.admin
    ))
    .call()
    .unwrap()
    .into_string()
    .unwrap();
    assert!(metrics.contains("vigil_masked_credit_card "), "{metrics}");
    let log = serve.log.clone();
    serve.stop();
    let lines = records(&log);
    assert_eq!(lines.len(), 12, "one line per exchange");
    assert!(lines.iter().all(|l| l["vigil_record"].is_string()));
    assert!(lines.iter().any(|l| l["status"] == "403"));
    assert!(
        lines
            .iter()
            .all(|l| l["request_id"].as_str().is_some_and(|r| r.len() == 36)),
        "Envoy gives every request an id"
    );
    let (code, out) = verify(&log);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("12 verified"), "{out}");
}

#[test]
fn a_stop_lets_the_exchanges_in_flight_finish_and_writes_their_records() {
    let dir = scratch("stop");
    let serve = Serve::start(&dir, &format!("http://127.0.0.1:{}", model_server(300)));
    let url = serve.url("/v1/chat/completions");
    let client = std::thread::spawn(move || {
        ureq::post(&url)
            .set("content-type", "application/json")
            .send_string(STREAM)
            .unwrap()
            .into_string()
            .unwrap()
    });
    std::thread::sleep(Duration::from_millis(400));
    let log = serve.log.clone();
    let stderr = serve.stop();
    let body = client.join().unwrap();
    assert!(
        body.ends_with("data: [DONE]\n\n") && body.contains("[CREDIT_CARD]"),
        "{body}"
    );
    assert!(stderr.contains("stopping"), "{stderr}");
    assert_eq!(records(&log).len(), 1);
    assert_eq!(verify(&log).0, Some(0));
}

#[test]
fn checkpoints_are_signed_on_real_sockets_and_a_stopped_server_ends_its_chains() {
    let dir = scratch("checkpoints");
    let (var, seed) = vigil_host::TEST_CHECKPOINT_KEY;
    let serve = Serve::start_with(
        &dir,
        &format!("http://127.0.0.1:{}", model_server(0)),
        &vigil_host::traffic::checkpoint_policy(3, 3600),
        &["--env".to_string(), format!("{var}={seed}")],
    );
    for _ in 0..8 {
        assert_eq!(serve.post("/v1/chat/completions", CHAT).0, 200);
    }
    let log = serve.log.clone();
    let stderr = serve.stop();
    // stderr stands for Envoy's log: the checkpoints as they were made, shutdown included.
    let envoy_log = dir.join("envoy.log");
    std::fs::write(&envoy_log, &stderr).unwrap();
    assert_eq!(
        stderr.matches("\"trigger\":\"shutdown\"").count(),
        2,
        "{stderr}"
    );
    let public = dir.join("checkpoint.pub");
    let key = vigil_core::record::checkpoint::SigningKey::new(seed).unwrap();
    std::fs::write(&public, key.public_key().file_text()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["audit", "verify", "--public-key"])
        .arg(&public)
        .args(["--max-gap-s", "60", "--envoy-log"])
        .arg(&envoy_log)
        .arg(&log)
        .env_remove("VIGIL_RECORD_KEY")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(text.matches("; ended (shutdown)").count(), 2, "{text}");
    assert_eq!(
        text.matches("0 record(s) after it not yet covered").count(),
        2,
        "{text}"
    );
}

#[test]
fn a_model_server_that_cannot_be_reached_gets_envoys_503() {
    let dir = scratch("down");
    let serve = Serve::start(&dir, &format!("http://127.0.0.1:{}", free_port()));
    let (status, body) = serve.post("/v1/chat/completions", CHAT);
    assert_eq!(status, 503);
    assert!(body.starts_with("upstream connect error"), "{body}");
    let log = serve.log.clone();
    serve.stop();
    assert_eq!(records(&log)[0]["status"], "503");
}

/// A model server that answers every request with `len` bytes of plain text and counts how
/// many it managed to write.
fn big_answer_server(len: usize, written: std::sync::Arc<std::sync::atomic::AtomicUsize>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let written = std::sync::Arc::clone(&written);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                    line.clear();
                }
                let mut out = conn;
                let _ = write!(out, "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {len}\r\nconnection: close\r\n\r\n");
                let chunk = "the branch opens at nine and closes at five ".repeat(1500);
                let mut sent = 0;
                while sent < len {
                    let n = chunk.len().min(len - sent);
                    if out.write_all(&chunk.as_bytes()[..n]).is_err() {
                        return;
                    }
                    sent += n;
                    written.store(sent, std::sync::atomic::Ordering::SeqCst);
                }
            });
        }
    });
    port
}

#[test]
fn a_slow_client_slows_the_model_server_down_instead_of_filling_memory() {
    const LEN: usize = 128 << 20;
    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let dir = scratch("backpressure");
    let serve = Serve::start(
        &dir,
        &format!(
            "http://127.0.0.1:{}",
            big_answer_server(LEN, std::sync::Arc::clone(&written))
        ),
    );
    let mut client = TcpStream::connect(("127.0.0.1", serve.port)).unwrap();
    write!(
        client,
        "GET /v1/files/report HTTP/1.1\r\nhost: models\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    // The client reads nothing for a while: the model server must be held back, by the
    // socket buffers and a few chunks in Vigil, not stream its whole answer into memory.
    std::thread::sleep(Duration::from_millis(1500));
    let early = written.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        early < LEN / 4,
        "{early} bytes written while the client read nothing"
    );
    let mut total = 0;
    let mut buf = vec![0; 1 << 16];
    let mut head = Vec::new();
    loop {
        let n = client.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        if head.len() < 512 {
            head.extend_from_slice(&buf[..n.min(512)]);
        }
        total += n;
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(total > LEN, "the whole answer arrived: {total}");
    serve.stop();
}

/// `vigil audit verify` on `lines` written to a file: exit code and stdout.
fn verify_lines(dir: &Path, name: &str, lines: &[String]) -> (Option<i32>, String) {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    verify(&path)
}

#[test]
fn two_hundred_concurrent_streams_leave_one_record_each_in_chains_that_catch_tampering() {
    const CLIENTS: usize = 200;
    const EACH: usize = 3;
    let dir = scratch("load");
    let serve = Serve::start(&dir, &format!("http://127.0.0.1:{}", model_server(2)));
    let url = serve.url("/v1/chat/completions");
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(60))
                    .build();
                for _ in 0..EACH {
                    let body = agent
                        .post(&url)
                        .set("content-type", "application/json")
                        .send_string(STREAM)
                        .unwrap()
                        .into_string()
                        .unwrap();
                    assert!(
                        body.contains("[CREDIT_CARD]") && !body.contains("4111"),
                        "{body}"
                    );
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let log = serve.log.clone();
    serve.stop();
    let lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        lines.len(),
        CLIENTS * EACH,
        "exactly one record per request"
    );
    let (code, out) = verify(&log);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("chain ")).count(),
        2,
        "one chain per worker: {out}"
    );
    // Tampering inside these chains: each is caught and named by its line.
    let mut edited = lines.clone();
    edited[100] = edited[100].replacen("[CREDIT_CARD]", "4111 1111 1111 1111", 1);
    if edited[100] == lines[100] {
        edited[100] = edited[100].replacen("\\\"status\\\":200", "\\\"status\\\":201", 1);
    }
    assert_ne!(edited[100], lines[100]);
    let mut deleted = lines.clone();
    deleted.remove(300);
    // Two records of one chain change places.
    let vm = |l: &String| {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let r: serde_json::Value =
            serde_json::from_str(v["vigil_record"].as_str().unwrap()).unwrap();
        r["vm_id"].as_str().unwrap().to_string()
    };
    let next = (11..lines.len())
        .find(|k| vm(&lines[*k]) == vm(&lines[10]))
        .unwrap();
    let mut swapped = lines.clone();
    swapped.swap(10, next);
    let mut truncated = lines.clone();
    let last = truncated.len() - 1;
    truncated[last].truncate(lines[last].len() / 2);
    for (name, tampered) in [
        ("edited.log", &edited),
        ("deleted.log", &deleted),
        ("swapped.log", &swapped),
        ("truncated.log", &truncated),
    ] {
        let (code, out) = verify_lines(&dir, name, tampered);
        assert_eq!(code, Some(1), "{name} went unnoticed: {out}");
        assert!(
            out.contains(&format!("{name}:")),
            "{name}: the problem names its line: {out}"
        );
    }
}

#[test]
fn http2_with_prior_knowledge_is_served_and_masked_too() {
    use http_body_util::BodyExt;
    let dir = scratch("h2c");
    let serve = Serve::start(&dir, &format!("http://127.0.0.1:{}", model_server(5)));
    let url = serve.url("/v1/chat/completions");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bodies = rt.block_on(async {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .http2_only(true)
                .build_http::<http_body_util::Full<bytes::Bytes>>();
        let mut out = Vec::new();
        for body in [CHAT, STREAM] {
            let req = hyper::Request::post(url.as_str())
                .header("content-type", "application/json")
                .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                .unwrap();
            let resp = client.request(req).await.unwrap();
            assert_eq!(resp.version(), hyper::Version::HTTP_2);
            assert_eq!(resp.status(), 200);
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            out.push(String::from_utf8(bytes.to_vec()).unwrap());
        }
        out
    });
    assert!(
        bodies[0].contains("SSN [SSN], card [CREDIT_CARD]"),
        "{}",
        bodies[0]
    );
    assert!(
        bodies[1].contains("[CREDIT_CARD]") && !bodies[1].contains("4111"),
        "{}",
        bodies[1]
    );
    let log = serve.log.clone();
    serve.stop();
    assert_eq!(records(&log).len(), 2);
    assert_eq!(verify(&log).0, Some(0));
}

/// A model server that starts a stream and then goes away mid-answer.
fn dying_model_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                line.clear();
            }
            let mut out = conn;
            let event = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Your card 4111 11\"}}]}\n\n";
            let _ = write!(out, "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{event}\r\n", event.len());
            let _ = out.flush();
            std::thread::sleep(Duration::from_millis(100));
            // Gone, without the last chunk.
            let _ = out.shutdown(std::net::Shutdown::Both);
        }
    });
    port
}

#[test]
fn a_model_server_gone_mid_answer_cuts_the_client_off_and_still_leaves_a_record() {
    let dir = scratch("dying");
    let serve = Serve::start(&dir, &format!("http://127.0.0.1:{}", dying_model_server()));
    let got = ureq::post(&serve.url("/v1/chat/completions"))
        .set("content-type", "application/json")
        .send_string(STREAM)
        .map(|r| r.into_string());
    if let Ok(Ok(body)) = got {
        panic!("the client was told the answer was whole: {body:?}");
    }
    let log = serve.log.clone();
    let started = Instant::now();
    serve.stop();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the cut exchange does not hold the stop"
    );
    let lines = records(&log);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["flags"], "UC", "{}", lines[0]);
    assert_eq!(verify(&log).0, Some(0));
}

/// The test IdP (approvals/tests/oidc/machine-tokens.mjs): callers' access tokens as JWTs.
struct Idp {
    child: Child,
    port: u16,
}

impl Idp {
    fn start(port: u16, keys: &Path, rotate: bool) -> Idp {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../approvals/tests/oidc");
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "the test IdP is not installed: scripts/setup runs npm ci in {}",
            dir.display()
        );
        let mut child = Command::new("node")
            .arg("machine-tokens.mjs")
            .arg(port.to_string())
            .arg(keys)
            .env("ROTATE", if rotate { "1" } else { "0" })
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node is not installed (scripts/setup installs it)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("idp listening"), "{line}");
        Idp { child, port }
    }

    fn token(&self, client: &str) -> String {
        let v: serde_json::Value = ureq::post(&format!("http://127.0.0.1:{}/token", self.port))
            .set(
                "authorization",
                &format!(
                    "Basic {}",
                    base64_basic(&format!("{client}:{client}-secret"))
                ),
            )
            .send_form(&[("grant_type", "client_credentials"), ("scope", "chat")])
            .unwrap()
            .into_json()
            .unwrap();
        v["access_token"].as_str().unwrap().to_string()
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn base64_basic(s: &str) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                out.push(T[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The kid a JWT names.
fn kid(token: &str) -> String {
    let head = token.split('.').next().unwrap();
    let bytes = {
        use std::collections::HashMap;
        let t: HashMap<u8, u32> =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                .iter()
                .enumerate()
                .map(|(i, c)| (*c, i as u32))
                .collect();
        let mut out = Vec::new();
        let (mut acc, mut bits) = (0u32, 0);
        for c in head.bytes() {
            acc = (acc << 6) | t[&c];
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        out
    };
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["kid"].as_str().unwrap().to_string()
}

#[test]
fn callers_tokens_from_a_real_openid_provider_are_verified_through_its_remote_keys_across_a_rotation(
) {
    let dir = scratch("oidc");
    let idp_port = free_port();
    let keys = dir.join("idp-keys.json");
    let idp = Idp::start(idp_port, &keys, false);
    let policy = format!(
        r#"{{"id": "serve-oidc", "version": "1",
            "identity": {{"providers": [{{"name": "test-idp", "issuer": "http://127.0.0.1:{idp_port}",
                "audiences": ["model-gateway"], "algorithms": ["RS256"], "groups_claim": "groups",
                "remote_jwks": {{"cluster": "idp", "uri": "http://127.0.0.1:{idp_port}/jwks", "cache_duration_s": 2, "timeout_ms": 1000}}}}]}},
            "models": {{"allow": [{{"model": "llama-3.1-*", "groups": ["analysts"]}}]}}}}"#
    );
    let serve = Serve::start_with(
        &dir,
        &format!("http://127.0.0.1:{}", model_server(2)),
        &policy,
        &["--cluster".into(), format!("idp=127.0.0.1:{idp_port}")],
    );
    let chat = r#"{"model":"llama-3.1-8b","messages":[{"role":"user","content":"hi"}]}"#;
    let call = |token: Option<&str>| {
        let mut req =
            ureq::post(&serve.url("/v1/chat/completions")).set("content-type", "application/json");
        if let Some(t) = token {
            req = req.set("authorization", &format!("Bearer {t}"));
        }
        match req.send_string(chat) {
            Ok(r) => (r.status(), String::new(), r.into_string().unwrap()),
            Err(ureq::Error::Status(code, r)) => (
                code,
                r.header("www-authenticate").unwrap_or_default().to_string(),
                r.into_string().unwrap(),
            ),
            Err(e) => panic!("{e}"),
        }
    };
    let analyst = idp.token("analyst-app");
    let (status, _, body) = call(Some(&analyst));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("[CREDIT_CARD]"), "{body}");
    let (status, _, body) = call(Some(&idp.token("teller-app")));
    assert_eq!(status, 403, "a teller may not use the model: {body}");
    let (status, www, _) = call(None);
    assert_eq!(status, 401);
    assert!(www.starts_with("Bearer realm=\"vigil\""), "{www}");
    let forged = format!("{}x", &analyst[..analyst.len() - 1]);
    assert_eq!(
        call(Some(&forged)).0,
        401,
        "a token whose signature does not verify"
    );
    // The IdP rotates: a new key signs, the old one is still published.
    drop(idp);
    let idp = Idp::start(idp_port, &keys, true);
    let rotated = idp.token("analyst-app");
    assert_ne!(kid(&rotated), kid(&analyst), "signed with the new key");
    let (status, _, body) = call(Some(&rotated));
    assert_eq!(
        status, 200,
        "the new key is fetched and the request goes on: {body}"
    );
    assert_eq!(
        call(Some(&analyst)).0,
        200,
        "the old key still verifies while published"
    );
    let log = serve.log.clone();
    serve.stop();
    let lines = records(&log);
    assert_eq!(lines.len(), 6);
    assert_eq!(verify(&log).0, Some(0));
}
