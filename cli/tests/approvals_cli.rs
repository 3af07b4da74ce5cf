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

/// A SQLite store holding one ticket denied and one left to expire 100 days ago.
fn old_history(db: &std::path::Path) {
    use vigil_approvals::store::{Decision, Store};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let old = now - 100 * 86_400_000;
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let url = vigil_approvals::db_url(&db.display().to_string());
        let store = Store::connect(&url, 1).await.unwrap();
        for n in [1u32, 2] {
            let r: vigil_core::approval::protocol::TicketRequest =
                serde_json::from_value(serde_json::json!({
                    "request_digest": format!("{n:064x}"), "subject": format!("u-{n}"),
                    "email": null, "issuer": "https://idp", "groups": [], "model": null,
                    "rule_id": "wires", "approver_groups": ["risk"], "excerpt": "",
                    "request_id": "rq", "ttl_s": 600, "approved_ttl_s": 300, "uses": 1}))
                .unwrap();
            let t = store.create_or_get(&r, old).await.unwrap().ticket;
            if n == 1 {
                store
                    .decide(&t.id, "officer", Decision::Deny, "no", old + 1000)
                    .await
                    .unwrap()
                    .unwrap();
            }
        }
    });
}

#[test]
fn purge_deletes_what_ended_before_the_cut_and_keeps_what_the_policy_keeps() {
    let dir = std::env::temp_dir().join(format!("vigil-purge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("approvals.db");
    let _ = std::fs::remove_file(&db);
    old_history(&db);
    let policy = dir.join("policy.json");
    std::fs::write(
        &policy,
        r#"{"id": "p", "version": "1", "approval": {"cluster": "approvals",
            "retention": {"min_days": 30, "keep": ["denied"]}}}"#,
    )
    .unwrap();
    let purge = |args: &[&str]| {
        let out = vigil()
            .args(["approvals", "purge", "--db"])
            .arg(&db)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let policy = policy.to_str().unwrap();

    let (code, _, err) = purge(&["--older-than", "soon"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--older-than \"soon\""), "{err}");
    let (code, _, err) = purge(&["--older-than", "7d", "--policy", policy]);
    assert_eq!(code, Some(2));
    assert!(err.contains("shorter than the 30 days"), "{err}");

    let (code, out, err) = purge(&["--older-than", "90d", "--policy", policy, "--dry-run"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with("would purge 1 tickets") && out.contains("(expired 1)"),
        "{out}"
    );
    let (code, out, _) = purge(&["--older-than", "90d", "--policy", policy]);
    assert_eq!(code, Some(0));
    assert!(
        out.starts_with("purged 1 tickets") && out.contains("kept every denied ticket"),
        "{out}"
    );
    let (_, out, _) = purge(&["--older-than", "90d"]);
    assert!(
        out.starts_with("purged 1 tickets") && out.contains("(denied 1)"),
        "{out}"
    );
    let (_, out, _) = purge(&["--older-than", "90d"]);
    assert!(out.starts_with("purged 0 tickets"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
