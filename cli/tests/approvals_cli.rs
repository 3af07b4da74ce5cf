//! `vigil approvals serve` refuses to run open to forged tickets: without a filter key it does
//! not start unless told it is insecure, and then says so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn vigil() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
}

#[test]
fn the_service_does_not_start_without_a_filter_key() {
    let db = std::env::temp_dir().join(format!("vigil-approvals-cli-{}.db", std::process::id()));
    let out = vigil()
        .args(["approvals", "serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to start without --filter-key-env"),
        "{err}"
    );
    assert!(!db.exists(), "nothing was created");
}

#[test]
fn told_it_is_insecure_the_service_starts_and_says_so_on_every_line_and_on_its_page() {
    let db = std::env::temp_dir().join(format!(
        "vigil-approvals-insecure-{}.db",
        std::process::id()
    ));
    let mut child = vigil()
        .args([
            "approvals",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--insecure-no-filter-key",
            "--db",
        ])
        .arg(&db)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let addr = loop {
        let line = lines
            .next()
            .expect("the service ends before listening")
            .unwrap();
        seen.push(line.clone());
        if let Some(addr) = line.split("listening on http://").nth(1) {
            break addr.to_string();
        }
    };
    let page = ureq::get(&format!("http://{addr}/"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let health: serde_json::Value = ureq::get(&format!("http://{addr}/healthz"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&db);
    for line in &seen {
        assert!(
            line.starts_with("vigil approvals: INSECURE: no filter key"),
            "a line that does not say so: {line}"
        );
    }
    assert!(seen.len() >= 2, "{seen:?}");
    assert!(
        page.contains(r#"<p class="insecure" role="alert">INSECURE"#),
        "the page does not say so"
    );
    assert_eq!(health["insecure"], true);
}
