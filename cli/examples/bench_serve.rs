//! `vigil serve` under load on loopback: the same streamed chat requests, from the same
//! number of concurrent clients for the same time, sent to a model-server stand-in directly
//! (the baseline, measured in the same run) and through `vigil serve` in front of it.
//! Prints requests per second and the p50/p99 latency of each, and what Vigil adds.
//! Usage: scripts/bench, or `cargo run -p vigil-cli --example bench_serve -- [CLIENTS] [SECONDS]`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// An OpenAI-style stream of 16 chunks with a card split over three of them.
fn stream_body() -> String {
    let mut s = String::new();
    let pieces = ["Your card 4111 11", "11 1111 ", "1111 is active. "];
    for k in 0..16 {
        let piece = pieces
            .get(k)
            .copied()
            .unwrap_or("The branch opens at nine. ");
        s.push_str(&format!(
            "data: {{\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{}}}}}]}}\n\n",
            serde_json::to_string(piece).unwrap_or_default()
        ));
    }
    s.push_str("data: [DONE]\n\n");
    s
}

fn stand_in() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let body = stream_body();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let body = body.clone();
            std::thread::spawn(move || serve_conn(conn, &body));
        }
    });
    port
}

/// Keep-alive HTTP/1.1: answers every request on the connection with the stream.
fn serve_conn(conn: TcpStream, body: &str) {
    let _ = conn.set_nodelay(true);
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut out = conn;
    loop {
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
        let mut req = vec![0; len];
        if reader.read_exact(&mut req).is_err() {
            return;
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        if out.write_all(head.as_bytes()).is_err() || out.write_all(body.as_bytes()).is_err() {
            return;
        }
    }
}

/// `clients` threads sending streamed chats to `port` for `secs`: (requests/s, latencies).
fn load(port: u16, clients: usize, secs: u64) -> (f64, Vec<Duration>) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new().build();
                let url = format!("http://127.0.0.1:{port}/v1/chat/completions");
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let ok = agent
                        .post(&url)
                        .set("content-type", "application/json")
                        .send_string(r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#)
                        .ok()
                        .and_then(|r| r.into_string().ok())
                        .is_some_and(|b| b.ends_with("[DONE]\n\n"));
                    if ok {
                        lat.push(t.elapsed());
                    }
                }
                lat
            })
        })
        .collect();
    let mut all: Vec<Duration> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap_or_default())
        .collect();
    let took = start.elapsed().as_secs_f64();
    all.sort();
    (all.len() as f64 / took, all)
}

fn pct(v: &[Duration], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let i = ((v.len() as f64 * p) as usize).min(v.len() - 1);
    v[i].as_secs_f64() * 1000.0
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let clients: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(32);
    let secs: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(5);
    let model = stand_in();
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("vigil-bench-serve-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    // The vigil that scripts/build makes (or VIGIL_BIN).
    let bin = std::env::var("VIGIL_BIN").unwrap_or_else(|_| "target/debug/vigil".into());
    let mut serve = Command::new(bin)
        .args(["serve", "--policy", "policies/default.json"])
        .args(["--upstream", &format!("http://127.0.0.1:{model}")])
        .args(["--listen", &format!("127.0.0.1:{port}"), "--workers", "2"])
        .arg("--access-log")
        .arg(dir.join("access.log"))
        .args([
            "--env",
            "VIGIL_RECORD_KEY=bench-record-key-0123456789abcdef",
        ])
        .stderr(Stdio::null())
        .spawn()
        .expect("vigil serve");
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (base_rps, base) = load(model, clients, secs);
    let (rps, through) = load(port, clients, secs);
    let _ = serve.kill();
    let _ = serve.wait();
    let _ = std::fs::remove_dir_all(&dir);
    println!("vigil serve on loopback ({clients} clients, {secs} s each, streamed chats of 16 events with a card split over three; 2 workers; baseline = the stand-in alone, same run):");
    println!(
        "  {:<22} {:>10} {:>10} {:>10}",
        "", "req/s", "p50 ms", "p99 ms"
    );
    for (name, r, v) in [
        ("stand-in alone", base_rps, &base),
        ("through vigil serve", rps, &through),
    ] {
        println!(
            "  {:<22} {:>10.0} {:>10.2} {:>10.2}",
            name,
            r,
            pct(v, 0.50),
            pct(v, 0.99)
        );
    }
    println!(
        "  Vigil adds: p50 {:+.2} ms, p99 {:+.2} ms; throughput {:.2}x the baseline",
        pct(&through, 0.50) - pct(&base, 0.50),
        pct(&through, 0.99) - pct(&base, 0.99),
        if base_rps > 0.0 { rps / base_rps } else { 0.0 }
    );
}
