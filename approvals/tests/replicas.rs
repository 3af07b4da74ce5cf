//! Two service processes on one PostgreSQL, as replicas behind one address run: every race
//! between them is settled by the database, never by one process's memory. Create-or-get,
//! decide and consume are raced across the two processes (not only across one pool), and a
//! long poll on one replica sees a decision taken on the other.
//!
//! Each replica is this test binary run again in a child process (the ignored test
//! `replica`, told what to do by its environment), so each has its own runtime, pool and
//! memory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::Duration;
use support::*;
use vigil_approvals::{Options, Service};

/// The replica process's entry: serves on a free port, prints it, and stops when its stdin
/// closes (so a replica never outlives the test that started it).
#[test]
#[ignore = "a replica process, started by the race tests below"]
fn replica() {
    let Ok(db) = std::env::var("VIGIL_REPLICA_DB") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let options = Options {
            db,
            providers: providers(),
            filter_key: Some(FILTER_KEY.into()),
            max_connections: 8,
            ..Options::default()
        };
        let service = Service::start(options).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("replica listening on {}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            let _ = stop.send(());
        });
        service
            .serve(listener, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
}

/// A replica process; killed when dropped.
struct Replica {
    child: Child,
    base: String,
}

impl Replica {
    fn start(db: &Db) -> Replica {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "replica",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("VIGIL_REPLICA_DB", db.url())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("the replica ended before listening")
                .unwrap();
            // libtest writes "test replica ... " before the test's own output.
            if let Some(addr) = line.split("replica listening on ").nth(1) {
                break addr.trim().to_string();
            }
        };
        Replica {
            child,
            base: format!("http://{addr}"),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn gateway_post(url: &str, body: &Value) -> (u16, Value) {
    let res = ureq::post(url)
        .set("x-vigil-filter-key", FILTER_KEY)
        .timeout(Duration::from_secs(30))
        .send_json(body.clone());
    answer(res)
}

fn approver_post(url: &str, token: &str, body: &Value) -> (u16, Value) {
    let res = ureq::post(url)
        .set("authorization", &format!("Bearer {token}"))
        .timeout(Duration::from_secs(30))
        .send_json(body.clone());
    answer(res)
}

fn answer(res: Result<ureq::Response, ureq::Error>) -> (u16, Value) {
    match res {
        Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Value::Null)),
        Err(e) => panic!("{e}"),
    }
}

/// Runs `n` calls at once (released together by a barrier), call `i` on replica `i % 2`.
fn race<T: Send + 'static>(
    replicas: &[&Replica; 2],
    n: usize,
    call: impl Fn(usize, &str) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let barrier = Arc::new(Barrier::new(n));
    let call = Arc::new(call);
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (barrier, call) = (barrier.clone(), call.clone());
            let base = replicas[i % 2].base.clone();
            std::thread::spawn(move || {
                barrier.wait();
                call(i, &base)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn races_between_two_replica_processes_are_settled_by_the_database() {
    let db = Db::postgres("replicas");
    let (a, b) = (Replica::start(&db), Replica::start(&db));
    assert_ne!(a.pid(), b.pid());
    for round in 0..5u32 {
        // Create-or-get: sixteen first sends of one request, split over the two processes,
        // open one ticket, and exactly one call says it created it.
        let digest = format!("{round:064x}");
        let request = ticket_request(&digest, "analyst-7", "wire it", 3);
        let opened = race(&[&a, &b], 16, move |_, base| {
            gateway_post(&format!("{base}/v1/tickets"), &request)
        });
        let ids: BTreeSet<String> = opened
            .iter()
            .map(|(_, t)| t["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids.len(), 1, "round {round}: {ids:?}");
        let created = opened.iter().filter(|(code, _)| *code == 201).count();
        assert_eq!(created, 1, "round {round}: {opened:?}");
        let id = ids.into_iter().next().unwrap();

        // Decide: two officers, one on each process, approve and deny at once: one wins.
        let officers = [
            token("officer-1", &["risk-officers"]),
            token("officer-2", &["risk-officers"]),
        ];
        let path = format!("/v1/tickets/{id}/decision");
        let decided = race(&[&a, &b], 2, move |i, base| {
            let decision = if i == 0 { "approve" } else { "deny" };
            approver_post(
                &format!("{base}{path}"),
                &officers[i],
                &json!({"decision": decision, "reason": format!("officer {i}")}),
            )
        });
        let codes: Vec<u16> = decided.iter().map(|(c, _)| *c).collect();
        assert_eq!(
            codes.iter().filter(|c| **c == 200).count(),
            1,
            "round {round}: {decided:?}"
        );
        assert_eq!(
            codes.iter().filter(|c| **c == 409).count(),
            1,
            "{decided:?}"
        );
        let approved = decided
            .iter()
            .any(|(c, t)| *c == 200 && t["status"] == "approved");

        // Consume: twenty retries over both processes take at most the three uses.
        let path = format!("/v1/tickets/{id}/consume");
        let consumed = race(&[&a, &b], 20, move |i, base| {
            gateway_post(
                &format!("{base}{path}"),
                &json!({"request_digest": digest, "request_id": format!("rq-{i}")}),
            )
        });
        let granted = consumed
            .iter()
            .filter(|(_, t)| t["granted"] == true)
            .count();
        assert_eq!(granted, if approved { 3 } else { 0 }, "round {round}");

        // The history agrees: one decision, and as many uses as were granted.
        let officer = token("officer-3", &["risk-officers"]);
        let detail: Value = ureq::get(&format!("{}/v1/tickets/{id}", a.base))
            .set("authorization", &format!("Bearer {officer}"))
            .call()
            .unwrap()
            .into_json()
            .unwrap();
        let events = detail["events"].as_array().unwrap();
        let decisions = events
            .iter()
            .filter(|e| e["from_status"] == "pending")
            .count();
        let uses = events.iter().filter(|e| e["actor"] == "gateway").count();
        assert_eq!((decisions, uses), (1, granted), "round {round}: {detail}");
    }
}

#[test]
fn a_long_poll_on_one_replica_sees_a_decision_taken_on_the_other() {
    let db = Db::postgres("replica_poll");
    let (a, b) = (Replica::start(&db), Replica::start(&db));
    let digest = "ef".repeat(32);
    let (_, t) = gateway_post(
        &format!("{}/v1/tickets", a.base),
        &ticket_request(&digest, "analyst-7", "wire it", 1),
    );
    let id = t["id"].as_str().unwrap().to_string();
    let poll = {
        let url = format!(
            "{}/v1/tickets/{id}/status?digest={digest}&wait_s=15",
            a.base
        );
        std::thread::spawn(move || {
            let r = ureq::get(&url)
                .set("x-vigil-filter-key", FILTER_KEY)
                .timeout(Duration::from_secs(30))
                .call();
            answer(r)
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let (code, _) = approver_post(
        &format!("{}/v1/tickets/{id}/decision", b.base),
        &token("officer-1", &["risk-officers"]),
        &json!({"decision": "approve", "reason": "called back"}),
    );
    assert_eq!(code, 200);
    let (code, seen) = poll.join().unwrap();
    assert_eq!(
        (code, seen["status"].as_str()),
        (200, Some("approved")),
        "{seen}"
    );
}
