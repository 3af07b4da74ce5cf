//! A database written by an older service (without the columns for the route, the matched
//! text and the whole request) is upgraded when a newer one starts, and its tickets still
//! read; on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod support;
use sqlx::any::AnyPoolOptions;
use support::*;
use vigil_approvals::store::Store;

const OLD_TABLE: &str = "CREATE TABLE tickets (
    id TEXT PRIMARY KEY, open_key TEXT UNIQUE, request_digest TEXT NOT NULL,
    subject TEXT, email TEXT, issuer TEXT, groups_json TEXT NOT NULL, model TEXT,
    rule_id TEXT NOT NULL, approver_groups_json TEXT NOT NULL, excerpt TEXT NOT NULL,
    request_id TEXT NOT NULL, status TEXT NOT NULL, created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL, approved_ttl_s BIGINT NOT NULL, max_uses BIGINT NOT NULL,
    uses BIGINT NOT NULL, approver TEXT, decided_at BIGINT, reason TEXT)";

fn an_older_database_is_upgraded_and_its_tickets_read(db: Db) {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let url = vigil_approvals::db_url(&db.url());
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new().max_connections(1).connect(&url).await.unwrap();
        sqlx::query(OLD_TABLE).execute(&pool).await.unwrap();
        sqlx::query("INSERT INTO tickets VALUES ('t_old', NULL, 'd', 'u', NULL, 'i', '[]', NULL, 'wires', '[\"risk\"]', 'x', 'rq', 'denied', 1, 2, 300, 1, 0, 'o', 1, 'no')")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        // Two services starting at once both upgrade it without failing.
        let (a, b) = tokio::join!(Store::connect(&url, 2), Store::connect(&url, 2));
        let (store, _) = (a.unwrap(), b.unwrap());
        let t = store.get("t_old", 3).await.unwrap().unwrap();
        assert_eq!((t.route.as_str(), t.conditions.len(), t.matched.is_none()), ("", 0, true));
        assert_eq!(store.request_text("t_old").await.unwrap(), Some((String::new(), false)));
    });
}

on_both_databases!(an_older_database_is_upgraded_and_its_tickets_read);
