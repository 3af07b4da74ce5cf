//! The compiled filter in the host against the running approval service, on SQLite and on
//! PostgreSQL: approve, deny, expire, wait-mode resume, ticket-mode retry, reuse refused,
//! another prompt refused, self-approval refused, an approver outside the group refused,
//! and concurrent consumption that never exceeds the rule's uses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod support;
use serde_json::{json, Value};
use std::time::Duration;
use support::*;

const PROMPT: &str = "Draft a wire transfer of $250,000 for client Jane Roe, SSN 536-90-4117";

fn ticket_rule() -> Value {
    json!({"type": "require_approval", "approvers": ["risk-officers"], "ttl_s": 600, "approved_ttl_s": 300})
}

fn requester() -> String {
    token("analyst-7", &["analysts"])
}

fn officer() -> String {
    token("officer-1", &["risk-officers"])
}

/// Ticket mode: 403 with the ticket, approve, the same request passes once, and its record
/// names the approval; a third send finds the approval used and opens a new ticket.
fn approve_then_retry_passes_once(db: Db) {
    let svc = Running::start(&db, Some(FILTER_KEY), |_| {});
    let mut gw = Gateway::start(svc.addr, ticket_rule(), 2000);
    let first = gw.send(&requester(), PROMPT);
    assert_eq!(gw.status(first).as_deref(), Some("403"));
    let err = gw.error(first);
    assert_eq!(err["code"], "approval_pending", "{err}");
    let ticket = err["ticket_id"].as_str().unwrap().to_string();
    assert_eq!(
        err["follow_url"],
        format!("https://approvals.bank.test/#{ticket}")
    );
    let r = gw.finish(first);
    assert_eq!(
        (r.decision.action.as_str(), r.outcome.as_str()),
        ("require_approval", "local_response")
    );
    assert_eq!(approval_json(&r.approval)["status"], "pending");

    // The approver sees it, with the prompt masked, and approves.
    let (code, list) = svc.call("GET", "/v1/tickets", &officer(), None);
    assert_eq!(code, 200, "{list}");
    let listed = &list["tickets"][0];
    assert_eq!(listed["id"], ticket.as_str());
    assert_eq!(listed["email"], "analyst-7@bank.test");
    let excerpt = listed["excerpt"].as_str().unwrap();
    assert!(
        excerpt.starts_with("Draft a wire transfer") && !excerpt.contains("536-90-4117"),
        "{listed}"
    );
    assert_eq!(listed["model"], "llama-3.1-70b");
    let (code, decided) = svc.decide(&ticket, &officer(), "approve", "client call-back verified");
    assert_eq!(
        (code, decided["status"].as_str()),
        (200, Some("approved")),
        "{decided}"
    );

    // A retry of the same request, written with other spacing, passes.
    let second = gw.send(&requester(), PROMPT);
    assert!(gw.forwarded(second), "{:?}", gw.error(second));
    let r = gw.finish(second);
    let a = approval_json(&r.approval);
    assert_eq!(a["id"], ticket.as_str());
    assert_eq!(a["status"], "approved");
    assert_eq!(a["approver"], "officer-1@bank.test");
    assert_eq!(a["reason"], "client call-back verified");
    assert!(a["decided_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        (a["uses"].as_u64(), a["max_uses"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        (r.decision.action.as_str(), r.outcome.as_str()),
        ("require_approval", "forwarded")
    );

    // Reuse: the approval was for one request; the same request again needs a new ticket.
    let third = gw.send(&requester(), PROMPT);
    assert_eq!(gw.status(third).as_deref(), Some("403"));
    let err = gw.error(third);
    assert_eq!(err["code"], "approval_pending");
    assert_ne!(err["ticket_id"], ticket.as_str());
    // And the used ticket cannot be consumed again, whoever asks.
    let digest = decided["request_digest"].as_str().unwrap();
    let again = ureq::post(&svc.url(&format!("/v1/tickets/{ticket}/consume")))
        .set("x-vigil-filter-key", FILTER_KEY)
        .send_json(json!({"request_digest": digest, "request_id": "replayed"}))
        .unwrap()
        .into_json::<Value>()
        .unwrap();
    assert_eq!(
        (again["granted"].as_bool(), again["status"].as_str()),
        (Some(false), Some("consumed"))
    );

    // The history has who, when and why for every change.
    let (_, detail) = svc.call("GET", &format!("/v1/tickets/{ticket}"), &officer(), None);
    let steps: Vec<(String, String)> = detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_string(),
                e["to_status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("analyst-7@bank.test", "pending"),
            ("officer-1@bank.test", "approved"),
            ("gateway", "consumed")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
}

/// An approval for one prompt does not pass another.
fn another_prompt_is_not_approved(db: Db) {
    let svc = Running::start(&db, Some(FILTER_KEY), |_| {});
    let mut gw = Gateway::start(svc.addr, ticket_rule(), 2000);
    let first = gw.send(&requester(), PROMPT);
    let ticket = gw.error(first)["ticket_id"].as_str().unwrap().to_string();
    svc.decide(&ticket, &officer(), "approve", "ok");
    let other = gw.send(&requester(), &format!("{PROMPT}, and another one"));
    assert_eq!(gw.status(other).as_deref(), Some("403"));
    let err = gw.error(other);
    assert_eq!(err["code"], "approval_pending");
    assert_ne!(err["ticket_id"], ticket.as_str());
    // Nor the same prompt from another caller.
    let colleague = gw.send(&token("analyst-8", &["analysts"]), PROMPT);
    assert_eq!(gw.error(colleague)["code"], "approval_pending");
    assert_ne!(gw.error(colleague)["ticket_id"], ticket.as_str());
}

/// A denial is final for that request, and its reason reaches the caller and the record.
fn deny_is_refused_with_the_reason(db: Db) {
    let svc = Running::start(&db, Some(FILTER_KEY), |_| {});
    let mut gw = Gateway::start(svc.addr, ticket_rule(), 2000);
    let first = gw.send(&requester(), PROMPT);
    let ticket = gw.error(first)["ticket_id"].as_str().unwrap().to_string();
    let (code, d) = svc.decide(&ticket, &officer(), "deny", "beneficiary on the watch list");
    assert_eq!(code, 200, "{d}");
    let again = gw.send(&requester(), PROMPT);
    assert_eq!(gw.status(again).as_deref(), Some("403"));
    let err = gw.error(again);
    assert_eq!(err["code"], "approval_denied");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("beneficiary on the watch list"),
        "{err}"
    );
    let r = gw.finish(again);
    let a = approval_json(&r.approval);
    assert_eq!(
        (a["status"].as_str(), a["approver"].as_str()),
        (Some("denied"), Some("officer-1@bank.test"))
    );
    // A decided ticket is not decided again.
    let (code, e) = svc.decide(
        &ticket,
        &token("officer-2", &["risk-officers"]),
        "approve",
        "overrule",
    );
    assert_eq!(
        (code, e["error"]["code"].as_str()),
        (409, Some("not_pending"))
    );
}

/// Pending and approved tickets expire; an expired approval passes nothing.
fn expired_tickets_pass_nothing(db: Db) {
    let svc = Running::start(&db, Some(FILTER_KEY), |_| {});
    let mut gw = Gateway::start(svc.addr, ticket_rule(), 2000);
    // A pending ticket past its 600 s cannot be approved any more.
    let first = gw.send(&requester(), PROMPT);
    let stale = gw.error(first)["ticket_id"].as_str().unwrap().to_string();
    svc.clock.advance_ms(601_000);
    gw.advance_ms(601_000);
    let (code, e) = svc.decide(&stale, &officer(), "approve", "late");
    assert_eq!(
        (code, e["error"]["code"].as_str()),
        (409, Some("not_pending")),
        "{e}"
    );
    // An approval unused for its 300 s is gone too.
    let second = gw.send(&requester(), PROMPT);
    let ticket = gw.error(second)["ticket_id"].as_str().unwrap().to_string();
    assert_ne!(ticket, stale);
    svc.decide(&ticket, &officer(), "approve", "ok");
    svc.clock.advance_ms(301_000);
    gw.advance_ms(301_000);
    let third = gw.send(&requester(), PROMPT);
    assert_eq!(gw.status(third).as_deref(), Some("403"));
    assert_eq!(gw.error(third)["code"], "approval_pending");
    assert_ne!(gw.error(third)["ticket_id"], ticket.as_str());
    for id in [&stale, &ticket] {
        let (_, d) = svc.call("GET", &format!("/v1/tickets/{id}"), &officer(), None);
        assert_eq!(d["ticket"]["status"], "expired", "{d}");
        let last = d["events"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(
            (last["actor"].as_str(), last["to_status"].as_str()),
            (Some("vigil-approvals"), Some("expired"))
        );
    }
}

/// Wait mode holds the request until an approver decides, then lets it through.
fn wait_mode_resumes_when_approved(db: Db) {
    let svc = Running::start(&db, Some(FILTER_KEY), |_| {});
    let rule = json!({"type": "require_approval", "approvers": ["risk-officers"], "mode": "wait", "max_wait_s": 30});
    let mut gw = Gateway::start(svc.addr, rule, 2000);
    let url = svc.url("/v1/tickets");
    let approver = std::thread::spawn(move || {
        let officer = officer();
        for _ in 0..200 {
            std::thread::sleep(Duration::from_millis(50));
            let list: Value = ureq::get(&url)
                .set("authorization", &format!("Bearer {officer}"))
                .call()
                .unwrap()
                .into_json()
                .unwrap();
            if let Some(id) = list["tickets"][0]["id"].as_str() {
                let r = ureq::post(&format!("{url}/{id}/decision"))
                    .set("authorization", &format!("Bearer {officer}"))
                    .send_json(
                        json!({"decision": "approve", "reason": "on the phone with the client"}),
                    );
                assert!(r.is_ok());
                return id.to_string();
            }
        }
        panic!("no ticket appeared");
    });
    let started = std::time::Instant::now();
    let id = gw.send(&requester(), PROMPT);
    let ticket = approver.join().unwrap();
    assert!(gw.forwarded(id), "{:?}", gw.error(id));
    assert!(started.elapsed() < Duration::from_secs(20));
    let r = gw.finish(id);
    let a = approval_json(&r.approval);
    assert_eq!(
        (a["id"].as_str(), a["status"].as_str(), a["mode"].as_str()),
        (Some(ticket.as_str()), Some("approved"), Some("wait"))
    );
}

/// Wait mode gives up after max_wait_s and answers like ticket mode.
fn wait_mode_gives_up_after_max_wait(db: Db) {
    let svc = Running::start(&db, Some(FILTER_KEY), |_| {});
    let rule = json!({"type": "require_approval", "approvers": ["risk-officers"], "mode": "wait", "max_wait_s": 1});
    let mut gw = Gateway::start(svc.addr, rule, 2000);
    let id = gw.send(&requester(), PROMPT);
    assert_eq!(gw.status(id).as_deref(), Some("403"));
    let err = gw.error(id);
    assert_eq!(err["code"], "approval_pending");
    assert!(
        err["message"].as_str().unwrap().contains("within 1 s"),
        "{err}"
    );
}

/// Nobody approves their own request, and only the rule's approver groups decide.
fn only_other_members_of_the_approver_groups_decide(db: Db) {
    let svc = Running::start(&db, Some(FILTER_KEY), |_| {});
    let mut gw = Gateway::start(svc.addr, ticket_rule(), 2000);
    // A risk officer's own request.
    let own = token("officer-9", &["risk-officers", "analysts"]);
    let id = gw.send(&own, PROMPT);
    let ticket = gw.error(id)["ticket_id"].as_str().unwrap().to_string();
    let (code, e) = svc.decide(&ticket, &own, "approve", "looks fine to me");
    assert_eq!(
        (code, e["error"]["code"].as_str()),
        (403, Some("self_approval")),
        "{e}"
    );
    let (_, list) = svc.call("GET", "/v1/tickets", &own, None);
    assert!(
        list["tickets"].as_array().unwrap().is_empty(),
        "own requests are not offered: {list}"
    );
    // A colleague outside the approver groups.
    let (code, e) = svc.decide(
        &ticket,
        &token("analyst-3", &["analysts"]),
        "approve",
        "sure",
    );
    assert_eq!(
        (code, e["error"]["code"].as_str()),
        (403, Some("not_an_approver")),
        "{e}"
    );
    // No token, or a forged one.
    let (code, _) = svc.call("GET", "/v1/tickets", "not-a-token", None);
    assert_eq!(code, 401);
    // Still pending: nothing above decided it.
    let again = gw.send(&own, PROMPT);
    assert_eq!(gw.error(again)["code"], "approval_pending");
    // The gateway's calls need the filter key.
    let r = ureq::get(&svc.url(&format!("/v1/tickets/{ticket}/status?digest=x"))).call();
    assert!(matches!(r, Err(ureq::Error::Status(401, _))));
}

/// Parallel consumption of one approval with three uses grants exactly three.
fn concurrent_consumption_never_exceeds_the_uses(db: Db) {
    let svc = Running::start(&db, Some(FILTER_KEY), |o| o.max_connections = 32);
    let digest = "ab".repeat(32);
    let t = svc.open(&ticket_request(&digest, "analyst-7", "x", 3));
    let id = t["id"].as_str().unwrap().to_string();
    svc.decide(&id, &officer(), "approve", "batch of three");
    let url = svc.url(&format!("/v1/tickets/{id}/consume"));
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(32));
    let granted: usize = (0..32)
        .map(|i| {
            let (url, digest, barrier) = (url.clone(), digest.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let v: Value = ureq::post(&url)
                    .set("x-vigil-filter-key", FILTER_KEY)
                    .send_json(
                        json!({"request_digest": digest, "request_id": format!("retry-{i}")}),
                    )
                    .unwrap()
                    .into_json()
                    .unwrap();
                v["granted"].as_bool().unwrap() as usize
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .sum();
    assert_eq!(granted, 3);
    let (_, d) = svc.call("GET", &format!("/v1/tickets/{id}"), &officer(), None);
    assert_eq!(
        (d["ticket"]["uses"].as_u64(), d["ticket"]["status"].as_str()),
        (Some(3), Some("consumed"))
    );
    let uses = d["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "gateway")
        .count();
    assert_eq!(uses, 3);
}

/// Concurrent first sends of one request open one ticket.
fn concurrent_first_requests_open_one_ticket(db: Db) {
    let svc = Running::start(&db, Some(FILTER_KEY), |o| o.max_connections = 16);
    let request = ticket_request(&"cd".repeat(32), "analyst-7", "x", 1);
    let ids: std::collections::BTreeSet<String> = std::thread::scope(|s| {
        (0..16)
            .map(|_| s.spawn(|| svc.open(&request)["id"].as_str().unwrap().to_string()))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(ids.len(), 1, "{ids:?}");
}

/// A long request whose risky part is deep inside: the approver reads which rule matched
/// and why, the matched words with their context (masked), the route, and the whole masked
/// request page by page.
fn approvers_see_what_matched_however_long_the_request(db: Db) {
    let svc = Running::start(&db, Some(FILTER_KEY), |_| {});
    let mut gw = Gateway::start(svc.addr, ticket_rule(), 2000);
    let prompt = format!(
        "{} Then send a wire transfer of $250,000 for Jane Roe, SSN 536-90-4117, today. {}",
        "Summarise the quarterly report. ".repeat(600),
        "Thanks. ".repeat(400)
    );
    let sent = gw.send(&requester(), &prompt);
    let id = gw.error(sent)["ticket_id"].as_str().unwrap().to_string();
    let (code, d) = svc.call("GET", &format!("/v1/tickets/{id}"), &officer(), None);
    assert_eq!(code, 200, "{d}");
    let t = &d["ticket"];
    assert_eq!(t["rule_id"], "wire-transfers");
    assert_eq!(t["route"], "POST /v1/chat/completions");
    assert_eq!(
        t["conditions"],
        json!(["prompt matches /(?i)wire transfer/"])
    );
    assert!(
        !t["excerpt"].as_str().unwrap().contains("wire transfer"),
        "the excerpt is the start of the prompt, far from the match"
    );
    let m = &t["matched"];
    assert_eq!(m["text"], "wire transfer", "{m}");
    assert!(
        m["before"].as_str().unwrap().ends_with("Then send a "),
        "{m}"
    );
    let after = m["after"].as_str().unwrap();
    assert!(after.starts_with(" of $250,000 for Jane Roe, SSN "), "{m}");
    assert!(!after.contains("4117"), "the context is masked: {m}");
    assert_eq!(
        (m["cut_before"].as_bool(), m["cut_after"].as_bool()),
        (Some(true), Some(true))
    );

    // The whole request, masked, in pages.
    let r = &d["request"];
    let pages = r["pages"].as_u64().unwrap();
    assert!(pages >= 3, "{r}");
    let mut whole = String::new();
    for page in 1..=pages {
        let (_, p) = svc.call(
            "GET",
            &format!("/v1/tickets/{id}?page={page}"),
            &officer(),
            None,
        );
        assert_eq!(p["request"]["page"].as_u64(), Some(page));
        whole.push_str(p["request"]["text"].as_str().unwrap());
    }
    assert!(
        whole.contains("wire transfer of $250,000"),
        "every page read"
    );
    assert!(!whole.contains("536-90-4117"), "the request is masked");
    assert_eq!(r["truncated"], false);
}

on_both_databases!(
    approvers_see_what_matched_however_long_the_request,
    approve_then_retry_passes_once,
    another_prompt_is_not_approved,
    deny_is_refused_with_the_reason,
    expired_tickets_pass_nothing,
    wait_mode_resumes_when_approved,
    wait_mode_gives_up_after_max_wait,
    only_other_members_of_the_approver_groups_decide,
    concurrent_consumption_never_exceeds_the_uses,
    concurrent_first_requests_open_one_ticket,
);
