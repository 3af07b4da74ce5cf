//! New tickets are announced to a Slack-compatible webhook: `{"text": ...}` naming the
//! requester, model, rule and ticket; failed deliveries are retried with backoff; and a
//! webhook that hangs never holds up the API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;
use support::*;
use vigil_approvals::webhook::Retry;

/// A webhook that holds its first request until released, then answers 500, 500, 200.
fn webhook() -> (String, mpsc::Receiver<Value>, mpsc::Sender<()>) {
    let (url, seen, release, _) = signed_webhook();
    (url, seen, release)
}

/// Each delivery's `x-vigil-signature` and raw body.
type Signed = mpsc::Receiver<(String, Vec<u8>)>;

/// The same, also handing over each delivery's signature and body.
fn signed_webhook() -> (String, mpsc::Receiver<Value>, mpsc::Sender<()>, Signed) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/approvals", listener.local_addr().unwrap());
    let (seen_tx, seen_rx) = mpsc::channel();
    let (signed_tx, signed_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().enumerate() {
            let mut conn = conn.unwrap();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut length = 0;
            let mut signature = String::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("x-vigil-signature:") {
                    signature = v.trim().to_string();
                }
                if line == "\r\n" || line.is_empty() {
                    break;
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            seen_tx
                .send(serde_json::from_slice::<Value>(&body).unwrap())
                .unwrap();
            let _ = signed_tx.send((signature, body.clone()));
            if n == 0 {
                let _ = release_rx.recv();
            }
            let status = if n < 2 {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
            );
        }
    });
    (url, seen_rx, release_tx, signed_rx)
}

#[test]
fn new_tickets_are_announced_with_retries_and_a_hung_webhook_never_blocks_the_api() {
    let (url, seen, release) = webhook();
    let db = Db::sqlite("webhook");
    let svc = Running::start(&db, Some(FILTER_KEY), |o| {
        o.webhook_url = Some(url);
        o.ui_url = Some("https://approvals.bank.test/".into());
        o.webhook_retry = Retry {
            attempts: 4,
            first_backoff: Duration::from_millis(50),
            timeout: Duration::from_secs(10),
        };
    });
    let open = ticket_request(
        &"ef".repeat(32),
        "analyst-7",
        "Wire transfer for [US_SSN]",
        1,
    );
    let t = svc.open(&open);
    let id = t["id"].as_str().unwrap();
    // The webhook holds its first delivery; the API answered anyway, and answers again.
    let first = seen.recv_timeout(Duration::from_secs(10)).unwrap();
    let again = svc.open(&open);
    assert_eq!(again["id"], id);
    let text = first["text"].as_str().unwrap();
    assert!(
        text.starts_with(
            "Approval needed: analyst-7@bank.test asks model llama-3.1-70b (rule wire-transfers)"
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "<https://approvals.bank.test/#{id}|Review ticket {id}>"
        )),
        "{text}"
    );
    assert_eq!(first["ticket_id"], id);
    release.send(()).unwrap();
    // 500, 500, then 200: delivered on the third attempt, each the same message.
    for _ in 0..2 {
        assert_eq!(seen.recv_timeout(Duration::from_secs(10)).unwrap(), first);
    }
    let mut health = Value::Null;
    for _ in 0..200 {
        health = ureq::get(&svc.url("/healthz"))
            .call()
            .unwrap()
            .into_json()
            .unwrap();
        if health["webhook"]["delivered"] == 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(
        health["webhook"],
        json!({"delivered": 1, "failed": 0, "dropped": 0, "attempts": 3}),
        "{health}"
    );
}

#[test]
fn webhook_bodies_are_signed_and_request_text_stays_text() {
    use hmac::{Hmac, Mac};
    let key = b"webhook-signing-key-for-tests-only-0000".to_vec();
    let (url, seen, release, signed) = signed_webhook();
    release.send(()).unwrap();
    let db = Db::sqlite("webhook-signed");
    let k = key.clone();
    let svc = Running::start(&db, Some(FILTER_KEY), move |o| {
        o.webhook_url = Some(url);
        o.webhook_key = Some(k);
        o.webhook_retry = Retry {
            attempts: 1,
            first_backoff: Duration::from_millis(10),
            timeout: Duration::from_secs(10),
        };
    });
    let open = ticket_request(
        &"ab".repeat(32),
        "analyst-8",
        "<!channel> <https://evil.example|Review>",
        1,
    );
    svc.open(&open);
    let text = seen.recv_timeout(Duration::from_secs(10)).unwrap()["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !text.contains("<!channel>") && !text.contains("<https://evil"),
        "{text}"
    );
    let (signature, body) = signed.recv_timeout(Duration::from_secs(10)).unwrap();
    // Checked the way a receiver would: t and v1, the HMAC of "t.body".
    let (t, v1) = signature.split_once(",v1=").unwrap();
    let t = t.strip_prefix("t=").unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&body);
    let want: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(v1, want);
    let age = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .abs_diff(t.parse().unwrap());
    assert!(age < 60, "a fresh timestamp: {age} s");
}
