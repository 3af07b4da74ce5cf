//! Retention (`vigil approvals purge`, `Store::purge`): tickets that ended longer ago than the
//! cut are deleted with their history, statuses the policy keeps stay, and pending or usable
//! approved tickets are never touched; on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod support;
use std::collections::BTreeMap;
use support::*;
use vigil_approvals::store::{Decision, Store};
use vigil_core::approval::protocol::{Status, TicketRequest};

const DAY: i64 = 86_400_000;

fn request(n: u32) -> TicketRequest {
    serde_json::from_value(ticket_request(
        &format!("{n:064x}"),
        &format!("analyst-{n}"),
        "wire it",
        1,
    ))
    .unwrap()
}

/// Six tickets, `now` being today: (denied 100 days ago, consumed 100 days ago, expired
/// unanswered 100 days ago, pending now, approved now, denied 10 days ago).
async fn history(store: &Store, now: i64) -> Vec<String> {
    let old = now - 100 * DAY;
    let mut ids = Vec::new();
    for (n, at, end) in [
        (1, old, "deny"),
        (2, old, "consume"),
        (3, old, "leave"),
        (4, now, "leave"),
        (5, now, "approve"),
        (6, now - 10 * DAY, "deny"),
    ] {
        let r = request(n);
        let t = store.create_or_get(&r, at).await.unwrap().ticket;
        match end {
            "deny" => {
                store
                    .decide(&t.id, "officer@bank.test", Decision::Deny, "no", at + 1000)
                    .await
                    .unwrap()
                    .unwrap();
            }
            "approve" | "consume" => {
                store
                    .decide(
                        &t.id,
                        "officer@bank.test",
                        Decision::Approve,
                        "ok",
                        at + 1000,
                    )
                    .await
                    .unwrap()
                    .unwrap();
            }
            _ => {}
        }
        if end == "consume" {
            let used = store
                .consume(&t.id, &r.request_digest, "rq", at + 2000)
                .await
                .unwrap()
                .unwrap();
            assert!(used.granted);
        }
        ids.push(t.id);
    }
    ids
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(s, n)| (s.to_string(), *n)).collect()
}

fn purge_keeps_what_it_must(db: Db) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::connect(&vigil_approvals::db_url(&db.url()), 2)
            .await
            .unwrap();
        let now = 1_795_000_000_000;
        let ids = history(&store, now).await;
        let cut = now - 90 * DAY;

        // A dry run counts and deletes nothing.
        let would = store
            .purge(cut, now, &[Status::Denied], true)
            .await
            .unwrap();
        assert_eq!(would, counts(&[("consumed", 1), ("expired", 1)]));
        for id in &ids {
            assert!(store.get(id, now).await.unwrap().is_some());
        }

        // The policy keeps denials: the old consumed and expired tickets go, with history.
        let gone = store
            .purge(cut, now, &[Status::Denied], false)
            .await
            .unwrap();
        assert_eq!(gone, counts(&[("consumed", 1), ("expired", 1)]));
        let left: Vec<Option<Status>> = statuses(&store, &ids, now).await;
        assert_eq!(
            left,
            vec![
                Some(Status::Denied),
                None,
                None,
                Some(Status::Pending),
                Some(Status::Approved),
                Some(Status::Denied)
            ]
        );
        assert!(
            store.events(&ids[1]).await.unwrap().is_empty(),
            "history went too"
        );
        assert!(!store.events(&ids[0]).await.unwrap().is_empty());

        // Without that policy the old denial goes; the recent one and live tickets stay.
        let gone = store.purge(cut, now, &[], false).await.unwrap();
        assert_eq!(gone, counts(&[("denied", 1)]));
        let left = statuses(&store, &ids, now).await;
        assert_eq!(
            left,
            vec![
                None,
                None,
                None,
                Some(Status::Pending),
                Some(Status::Approved),
                Some(Status::Denied)
            ]
        );
        // Nothing is ever purged that has not ended, however old the cut.
        let gone = store.purge(now + DAY, now, &[], false).await.unwrap();
        assert_eq!(gone, counts(&[("denied", 1)]));
        assert!(store.get(&ids[3], now).await.unwrap().is_some());
        assert!(store.get(&ids[4], now).await.unwrap().is_some());
    });
}

async fn statuses(store: &Store, ids: &[String], now: i64) -> Vec<Option<Status>> {
    let mut out = Vec::new();
    for id in ids {
        out.push(store.get(id, now).await.unwrap().map(|t| t.status));
    }
    out
}

on_both_databases!(purge_keeps_what_it_must);
