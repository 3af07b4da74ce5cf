//! `vigil approvals serve` refuses to run open to forged tickets: without a filter key it does
//! not start unless told it is insecure, and then says so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};
use std::time::Duration;

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
fn told_it_is_insecure_the_service_starts_and_says_so() {
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
    std::thread::sleep(Duration::from_millis(700));
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("INSECURE: no filter key"), "{err}");
    let _ = std::fs::remove_file(&db);
}
