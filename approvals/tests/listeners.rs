//! `--approvers-listen`: the gateway's routes and the approvers' on listeners of their own,
//! so approvers' browsers never reach the routes that open and consume tickets, and the mesh
//! never needs the page.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;
use support::*;
use vigil_approvals::{Options, Service};

/// The service on two listeners: (gateway, approvers).
fn start_apart(db: &Db) -> (SocketAddr, SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let options = Options {
        db: db.url(),
        providers: providers(),
        filter_key: Some(FILTER_KEY.into()),
        ..Options::default()
    };
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let service = Service::start(options).await.unwrap();
            let gateway = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let approvers = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            ready_tx
                .send((
                    gateway.local_addr().unwrap(),
                    approvers.local_addr().unwrap(),
                ))
                .unwrap();
            service
                .serve_apart(gateway, approvers, async {
                    let _ = stop_rx.await;
                })
                .await
                .unwrap();
        });
    });
    let (g, a) = ready_rx.recv_timeout(Duration::from_secs(60)).unwrap();
    (g, a, stop_tx)
}

fn status_of(method: &str, url: &str, body: Option<serde_json::Value>) -> u16 {
    let req = ureq::request(method, url)
        .set("x-vigil-filter-key", FILTER_KEY)
        .set(
            "authorization",
            &format!("Bearer {}", token("officer-1", &["risk-officers"])),
        );
    let res = match body {
        Some(b) => req.send_json(b),
        None => req.call(),
    };
    match res {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("{method} {url}: {e}"),
    }
}

#[test]
fn each_listener_serves_only_its_own_routes() {
    let (gateway, approvers, stop) = start_apart(&Db::sqlite("apart"));
    let g = |p: &str| format!("http://{gateway}{p}");
    let a = |p: &str| format!("http://{approvers}{p}");
    let open = ticket_request(&"ab".repeat(32), "analyst-7", "wire it", 1);

    // The gateway's listener: its calls work, the approvers' are not there.
    assert_eq!(
        status_of("POST", &g("/v1/tickets"), Some(open.clone())),
        201
    );
    assert_eq!(status_of("GET", &g("/healthz"), None), 200);
    assert_eq!(status_of("GET", &g("/"), None), 404);
    assert_eq!(status_of("GET", &g("/v1/tickets"), None), 405);
    assert_eq!(status_of("GET", &g("/openapi.yaml"), None), 404);
    let decision = json!({"decision": "approve", "reason": "ok"});
    assert_eq!(
        status_of(
            "POST",
            &g("/v1/tickets/t_1/decision"),
            Some(decision.clone())
        ),
        404
    );

    // The approvers' listener: the page and their calls, none of the gateway's.
    assert_eq!(status_of("GET", &a("/"), None), 200);
    assert_eq!(status_of("GET", &a("/v1/tickets"), None), 200);
    assert_eq!(status_of("POST", &a("/v1/tickets"), Some(open)), 405);
    let consume = json!({"request_digest": "ab".repeat(32), "request_id": "rq"});
    assert_eq!(
        status_of("POST", &a("/v1/tickets/t_1/consume"), Some(consume)),
        404
    );
    assert_eq!(
        status_of(
            "GET",
            &a(&format!(
                "/v1/tickets/t_1/status?digest={}",
                "ab".repeat(32)
            )),
            None
        ),
        404
    );
    let _ = stop.send(());
}
