//! The approval service down, slow, resetting or answering garbage: every kind is a 503 with
//! its own code, recorded with the cause, and requests that need no approval pass as if
//! nothing were wrong. The misbehaving services are small stand-ins on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;
use serde_json::json;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;
use support::*;

/// How a stand-in answers each connection.
#[derive(Clone, Copy)]
enum Misbehaviour {
    /// Holds the connection without answering.
    Slow,
    /// Reads the request and closes without a word.
    CloseBeforeHeaders,
    /// Sends headers announcing a body, then closes mid-body.
    ResetMidBody,
    /// 500 with a JSON error.
    ServerError,
    /// 200 with an HTML page.
    Garbage,
    /// 200 with a well-formed ticket about another request.
    OtherRequest,
}

fn stand_in(how: Misbehaviour) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
                let _ = conn.read(&mut buf);
                let reply = |status: &str, ct: &str, body: &str| {
                    format!("HTTP/1.1 {status}\r\ncontent-type: {ct}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len())
                };
                let out = match how {
                    Misbehaviour::Slow => {
                        std::thread::sleep(Duration::from_secs(5));
                        return;
                    }
                    Misbehaviour::CloseBeforeHeaders => return,
                    Misbehaviour::ResetMidBody => "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"id\":\"t_1\",".to_string(),
                    Misbehaviour::ServerError => reply("500 Internal Server Error", "application/json", r#"{"error":{"code":"boom"}}"#),
                    Misbehaviour::Garbage => reply("200 OK", "text/html", "<html><body>Welcome to nginx!</body></html>"),
                    Misbehaviour::OtherRequest => reply("200 OK", "application/json", &json!({
                        "id": "t_other", "status": "approved", "request_digest": "00".repeat(32),
                        "approver": "someone@bank.test", "decided_at": "2026-11-22T10:00:00Z",
                        "expires_at": "2099-01-01T00:00:00Z", "granted": true}).to_string()),
                };
                let _ = conn.write_all(out.as_bytes());
                let _ = conn.flush();
            });
        }
    });
    addr
}

/// A port nothing listens on.
fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr
}

fn rule() -> serde_json::Value {
    json!({"type": "require_approval", "approvers": ["risk-officers"]})
}

const RISKY: &str = "Prepare the wire transfer for account 4417";

/// Sends a risky request to a gateway whose approval cluster is `addr`; checks the 503, its
/// code, and the record.
fn refused_with(addr: SocketAddr, code: &str) {
    let mut gw = Gateway::start(addr, rule(), 300);
    let user = token("analyst-7", &["analysts"]);
    let id = gw.send(&user, RISKY);
    assert_eq!(
        gw.status(id).as_deref(),
        Some("503"),
        "{code}: {:?}",
        gw.error(id)
    );
    let err = gw.error(id);
    assert_eq!(err["code"], code, "{err}");
    assert_eq!(err["rule_id"], "wire-transfers");
    let r = gw.finish(id);
    assert_eq!(
        (r.decision.action.as_str(), r.outcome.as_str()),
        ("require_approval", "local_response")
    );
    assert!(r.decision.reason.starts_with(code), "{}", r.decision.reason);
    let a = approval_json(&r.approval);
    assert_eq!(
        (a["status"].as_str(), a["error"]["code"].as_str()),
        (Some("error"), Some(code)),
        "{a}"
    );
    // The same gateway lets a request that needs no approval through.
    let fine = gw.send(&user, "Summarise the quarterly risk report");
    assert!(
        gw.forwarded(fine),
        "{code}: a request needing no approval was held: {:?}",
        gw.error(fine)
    );
    let r = gw.finish(fine);
    assert!(r.approval.is_none());
}

#[test]
fn a_service_that_is_down_is_a_503_approval_service_unavailable() {
    refused_with(closed_port(), "approval_service_unavailable");
}

#[test]
fn a_service_that_does_not_answer_in_time_is_a_503_approval_service_timeout() {
    refused_with(stand_in(Misbehaviour::Slow), "approval_service_timeout");
}

#[test]
fn a_connection_closed_before_an_answer_is_a_503_approval_service_unavailable() {
    refused_with(
        stand_in(Misbehaviour::CloseBeforeHeaders),
        "approval_service_unavailable",
    );
}

#[test]
fn an_answer_cut_mid_body_is_a_503_approval_service_reset() {
    refused_with(
        stand_in(Misbehaviour::ResetMidBody),
        "approval_service_reset",
    );
}

#[test]
fn a_non_2xx_answer_is_a_503_approval_service_error() {
    refused_with(
        stand_in(Misbehaviour::ServerError),
        "approval_service_error",
    );
}

#[test]
fn an_answer_that_is_not_a_ticket_is_a_503_approval_service_garbage() {
    refused_with(stand_in(Misbehaviour::Garbage), "approval_service_garbage");
}

#[test]
fn an_approval_for_another_request_is_a_503_approval_service_mismatch() {
    refused_with(
        stand_in(Misbehaviour::OtherRequest),
        "approval_service_mismatch",
    );
}

#[test]
fn a_cluster_envoy_does_not_know_is_a_503_approval_service_unavailable() {
    // The policy names a cluster the host (Envoy) has no such cluster for: dispatch fails.
    let approval = json!({"cluster": "no-such-cluster", "timeout_ms": 300});
    let mut gw = Gateway::with_policy(closed_port(), policy(rule(), approval));
    let id = gw.send(&token("analyst-7", &["analysts"]), RISKY);
    assert_eq!(gw.status(id).as_deref(), Some("503"));
    assert_eq!(gw.error(id)["code"], "approval_service_unavailable");
    let r = gw.finish(id);
    assert_eq!(
        approval_json(&r.approval)["error"]["code"],
        "approval_service_unavailable"
    );
}

#[test]
fn a_wrong_filter_key_is_refused_by_the_service_and_fails_closed() {
    let db = Db::sqlite("wrong-key");
    let svc = Running::start(&db, Some("another-key-entirely-000000"), |_| {});
    refused_with(svc.addr, "approval_service_error");
}

/// The attack of a service started without a filter key: the caller opens the ticket for
/// their own request first, approvable by their own group with a million uses, and a
/// colleague approves it. The service honours it; the filter checks the ticket against its
/// own rule and refuses it, recording why.
#[test]
fn a_ticket_opened_by_the_caller_with_their_own_approvers_and_uses_is_refused_by_the_filter() {
    // The digest the filter binds is public (docs/approvals.md): learn it from a throwaway
    // service, as the caller could compute it.
    let scratch = Running::start(&Db::sqlite("forge-scratch"), Some(FILTER_KEY), |_| {});
    let mut gw = Gateway::start(scratch.addr, rule(), 2000);
    let caller = token("analyst-7", &["analysts"]);
    let first = gw.send(&caller, RISKY);
    let digest = approval_json(&gw.finish(first).approval)["request_digest"]
        .as_str()
        .unwrap()
        .to_string();

    let svc = Running::start(&Db::sqlite("forge"), None, |_| {});
    let mut forged = ticket_request(&digest, "analyst-7", "nothing to see", 1_000_000);
    forged["approver_groups"] = json!(["analysts"]);
    forged["ttl_s"] = json!(31_536_000);
    forged["approved_ttl_s"] = json!(31_536_000);
    let opened: serde_json::Value = ureq::post(&svc.url("/v1/tickets"))
        .send_json(forged)
        .unwrap()
        .into_json()
        .unwrap();
    let id = opened["id"].as_str().unwrap();
    let colleague = token("analyst-9", &["analysts"]);
    let (code, decided) = svc.decide(id, &colleague, "approve", "sure");
    assert_eq!(code, 200, "the unprotected service takes it: {decided}");

    let mut gw = Gateway::start(svc.addr, rule(), 2000);
    let attempt = gw.send(&caller, RISKY);
    assert!(
        !gw.forwarded(attempt),
        "a forged approval let the request through"
    );
    assert_eq!(gw.status(attempt).as_deref(), Some("503"));
    let err = gw.error(attempt);
    assert_eq!(err["code"], "approval_ticket_untrusted", "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("the rule allows only"),
        "{err}"
    );
    let a = approval_json(&gw.finish(attempt).approval);
    assert_eq!(
        (a["status"].as_str(), a["error"]["code"].as_str()),
        (Some("error"), Some("approval_ticket_untrusted")),
        "{a}"
    );
}
