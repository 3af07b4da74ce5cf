//! `vigil replay --cluster approvals=HOST:PORT` sends a capture's approval calls to a real
//! approval service: the first replay opens a ticket (403), and once it is approved the same
//! capture replayed again reaches the model, with the approval in its record.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};
use std::process::Command;
use std::sync::Arc;
use vigil_approvals::store::Decision;
use vigil_approvals::{Options, Service};

/// A capture taken now: the filter checks the live service's ticket lifetimes against the
/// capture's clock.
fn capture(dir: &std::path::Path) -> std::path::PathBuf {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let c = json!({
        "name": "approval-live",
        "source": "written by cli/tests/replay_live.rs",
        "config": {"id": "live", "version": "1",
            "approval": {"cluster": "approvals", "timeout_ms": 2000},
            "rules": [{"id": "payments", "when": {"prompt": {"matches": ["(?i)wire transfer"]}},
                       "action": {"type": "require_approval", "approvers": ["risk-officers"]}}]},
        "env": {"VIGIL_RECORD_KEY": "vigil-test-record-key-not-a-secret-0123456789abcdef"},
        "now": vigil_core::time::format_rfc3339_millis(now),
        "request": {"headers": [[":method", "POST"], [":path", "/v1/chat/completions"], [":authority", "models"],
                                ["content-type", "application/json"], ["x-request-id", "live-1"]],
                    "body": ["{\"model\":\"llama-3.1-8b\",\"messages\":[{\"role\":\"user\",\"content\":\"Prepare a wire transfer\"}]}"]},
        "upstream": {"headers": [[":status", "200"], ["content-type", "application/json"]], "body": ["{\"choices\":[]}"]}
    });
    let path = dir.join("approval-live.json");
    std::fs::write(&path, c.to_string()).unwrap();
    path
}

fn replay(addr: std::net::SocketAddr, path: &std::path::Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args([
            "replay",
            "--json",
            "--cluster",
            &format!("approvals={addr}"),
        ])
        .arg(path)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn replay_sends_approval_calls_to_the_real_service() {
    let dir = std::env::temp_dir().join(format!("vigil-replay-live-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("approvals.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (service, addr): (Arc<Service>, _) = rt.block_on(async {
        let service = Service::start(Options {
            db: db.display().to_string(),
            ..Options::default()
        })
        .await
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(service.clone().serve(listener, std::future::pending()));
        (service, addr)
    });
    let path = capture(&dir);
    let first = replay(addr, &path);
    assert_eq!(first["status"], 403, "{first}");
    assert_eq!(first["callouts"][0]["cluster"], "approvals");
    let body: Value = serde_json::from_str(first["client_body"].as_str().unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "approval_pending");
    let ticket = body["error"]["ticket_id"].as_str().unwrap().to_string();
    assert_eq!(first["record"]["approval"]["id"], ticket.as_str());
    rt.block_on(async {
        let now = service.clock.now_ms();
        service
            .store
            .decide(
                &ticket,
                "officer-1@bank.test",
                Decision::Approve,
                "verified",
                now,
            )
            .await
            .unwrap()
            .unwrap();
    });
    let second = replay(addr, &path);
    assert_eq!(second["outcome"], "forwarded", "{second}");
    assert_eq!(second["status"], 200);
    assert_eq!(second["record"]["approval"]["status"], "approved");
    assert_eq!(
        second["record"]["approval"]["approver"],
        "officer-1@bank.test"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
