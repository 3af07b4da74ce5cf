//! Approval service throughput on loopback: ticket create-or-get and consume under 32
//! concurrent clients, on SQLite and on PostgreSQL (a server started here), with p99
//! latency, against `GET /healthz` (no database) measured in the same run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/support/mod.rs"]
mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::*;

const CLIENTS: usize = 32;

struct Figures {
    rps: f64,
    p50: Duration,
    p99: Duration,
}

type MakeRequest = dyn Fn(usize, usize) -> (reqwest::Method, String, Option<Value>) + Send + Sync;

/// Runs `per_client` requests on each of 32 clients; `make(client, i)` gives (method, path, body).
fn load(
    rt: &tokio::runtime::Runtime,
    base: &str,
    per_client: usize,
    make: std::sync::Arc<MakeRequest>,
) -> Figures {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .unwrap();
    let started = Instant::now();
    let mut times: Vec<Duration> = rt.block_on(async {
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (client, make, base) = (client.clone(), make.clone(), base.to_string());
                tokio::spawn(async move {
                    let mut times = Vec::with_capacity(per_client);
                    for i in 0..per_client {
                        let (method, path, body) = make(c, i);
                        let mut req = client
                            .request(method, format!("{base}{path}"))
                            .header("x-vigil-filter-key", FILTER_KEY);
                        if let Some(b) = body {
                            req = req
                                .header("content-type", "application/json")
                                .body(b.to_string());
                        }
                        let t = Instant::now();
                        let res = req.send().await.unwrap();
                        assert!(res.status().is_success(), "{path}: {}", res.status());
                        let _ = res.bytes().await.unwrap();
                        times.push(t.elapsed());
                    }
                    times
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    let wall = started.elapsed();
    times.sort();
    let at = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    Figures {
        rps: times.len() as f64 / wall.as_secs_f64(),
        p50: at(0.5),
        p99: at(0.99),
    }
}

fn digest(tag: u8, c: usize, i: usize) -> String {
    format!("{tag:02x}{c:030x}{i:032x}")
}

fn open(tag: u8) -> std::sync::Arc<MakeRequest> {
    std::sync::Arc::new(move |c, i| {
        (
            reqwest::Method::POST,
            "/v1/tickets".into(),
            Some(ticket_request(
                &digest(tag, c, i),
                "analyst-7",
                "Draft a wire transfer of $250,000 for client [PERSON]",
                1,
            )),
        )
    })
}

fn bench(name: &str, db: Db, per_client: usize) {
    let svc = Running::start(&db, Some(FILTER_KEY), |o| o.max_connections = 32);
    let base = format!("http://{}", svc.addr);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Warm up connections and the database.
    load(&rt, &base, 5, open(0xaa));
    let health = load(
        &rt,
        &base,
        per_client,
        std::sync::Arc::new(|_, _| (reqwest::Method::GET, "/healthz".into(), None)),
    );
    let create = load(&rt, &base, per_client, open(0x01));
    let get = load(&rt, &base, per_client, open(0x01));
    // One approved ticket per client, with uses to spare.
    let officer = token("officer-1", &["risk-officers"]);
    let ids: Vec<String> = (0..CLIENTS)
        .map(|c| {
            let t = svc.open(&ticket_request(
                &digest(0x02, c, 0),
                "analyst-7",
                "bench",
                1000,
            ));
            let id = t["id"].as_str().unwrap().to_string();
            assert_eq!(svc.decide(&id, &officer, "approve", "bench").0, 200);
            id
        })
        .collect();
    let consume = load(
        &rt,
        &base,
        per_client,
        std::sync::Arc::new(move |c, i| {
            (
                reqwest::Method::POST,
                format!("/v1/tickets/{}/consume", ids[c]),
                Some(
                    json!({"request_digest": digest(0x02, c, 0), "request_id": format!("bench-{i}")}),
                ),
            )
        }),
    );
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("{name} ({CLIENTS} clients x {per_client} requests each):");
    for (what, f) in [
        ("GET /healthz (baseline)", &health),
        ("create-or-get, new ticket", &create),
        ("create-or-get, open ticket", &get),
        ("consume", &consume),
    ] {
        println!(
            "  {what:<28} {:>8.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   ({:.2}x the baseline's rate)",
            f.rps,
            ms(f.p50),
            ms(f.p99),
            f.rps / health.rps
        );
    }
}

fn main() {
    let per_client: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(60);
    println!("approval service on loopback, client and service sharing this machine's cores:");
    bench("SQLite", Db::sqlite("bench"), per_client);
    bench("PostgreSQL", Db::postgres("bench"), per_client);
}
