//! Tickets and their history, in SQLite (one machine) or PostgreSQL (several replicas),
//! through one SQL dialect both accept. Every rule that must hold under concurrency is a
//! single conditional statement, so the database decides races, not the service:
//!
//! - create-or-get: `open_key` (digest + issuer + subject) is unique while a ticket can
//!   still answer that request, and the insert does nothing on conflict, so concurrent
//!   first requests end up with one ticket;
//! - consume: one `UPDATE ... WHERE status = 'approved' AND uses < max_uses AND
//!   expires_at > now` takes a use, so an approval is never used more often than the rule allows, even
//!   by parallel retries on several replicas (PostgreSQL re-checks the `WHERE` on the row
//!   version it locks);
//! - decide: `UPDATE ... WHERE status = 'pending' AND expires_at > now`, so two approvers
//!   cannot both decide, and nobody decides an expired ticket.
//!
//! Every change of state is written to `ticket_events` with who, when and why.

use crate::clock::rfc3339;
use serde::Serialize;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use std::collections::BTreeMap;
use vigil_core::approval::protocol::{MatchedText, Status, TicketRequest};

#[derive(Debug)]
pub enum StoreError {
    Db(sqlx::Error),
    Corrupt(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Db(e) => write!(f, "database: {e}"),
            StoreError::Corrupt(why) => write!(f, "database holds a bad ticket: {why}"),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Db(e)
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A ticket as the service shows it (to the filter and to approvers).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TicketView {
    pub id: String,
    pub status: Status,
    pub request_digest: String,
    pub subject: Option<String>,
    pub email: Option<String>,
    pub issuer: Option<String>,
    pub groups: Vec<String>,
    pub model: Option<String>,
    pub rule_id: String,
    pub approver_groups: Vec<String>,
    pub excerpt: String,
    /// The method and path asked for.
    pub route: String,
    /// Why the rule matched, and the part of the prompt it matched (masked, with context).
    pub conditions: Vec<String>,
    pub matched: Option<MatchedText>,
    pub request_id: String,
    pub created_at: String,
    pub expires_at: String,
    pub approver: Option<String>,
    pub decided_at: Option<String>,
    pub reason: Option<String>,
    pub uses: u32,
    pub max_uses: u32,
    /// Set by consumption only: this call took a use.
    pub granted: bool,
}

/// One change of a ticket's state.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Event {
    pub at: String,
    pub actor: String,
    pub from_status: Option<String>,
    pub to_status: String,
    pub reason: Option<String>,
    pub request_id: Option<String>,
}

/// An approver's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny,
}

/// Why a decision was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecideRefused {
    NotFound,
    /// Decided already, expired or used: the current state.
    NotPending(Status),
}

const COLUMNS: &str = "id, status, request_digest, subject, email, issuer, groups_json, model, rule_id, approver_groups_json, excerpt, route, details_json, request_id, created_at, expires_at, approver, decided_at, reason, uses, max_uses";

/// Why a rule matched, as stored (`details_json`).
#[derive(Serialize, serde::Deserialize, Default)]
struct Details {
    #[serde(default)]
    conditions: Vec<String>,
    #[serde(default)]
    matched: Option<MatchedText>,
}

/// Columns added after the first release, with their types: added to an older database when
/// the service starts (a column a replica added first is taken as it is).
const ADDED_COLUMNS: [(&str, &str); 4] = [
    ("route", "TEXT"),
    ("details_json", "TEXT"),
    ("request_text", "TEXT"),
    ("request_truncated", "BIGINT"),
];

/// Most tickets one sweep expires.
const SWEEP_BATCH: usize = 1000;

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
}

/// One change of state to write to the history.
struct Change<'a> {
    ticket: &'a str,
    at: i64,
    actor: &'a str,
    from: Option<&'a str>,
    to: &'a str,
    reason: Option<&'a str>,
    request_id: Option<&'a str>,
}

/// Writes a change to the history, on the connection (transaction) that made it, so a
/// change is never stored without its who, when and why.
async fn record(conn: &mut sqlx::AnyConnection, c: Change<'_>) -> Result<()> {
    sqlx::query("INSERT INTO ticket_events (ticket_id, at, actor, from_status, to_status, reason, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(c.ticket)
        .bind(c.at)
        .bind(c.actor)
        .bind(c.from)
        .bind(c.to)
        .bind(c.reason)
        .bind(c.request_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// What a create-or-get found.
pub struct Opened {
    pub ticket: TicketView,
    pub created: bool,
}

fn strings(json: &str) -> Result<Vec<String>> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("group list: {e}")))
}

fn view(row: &AnyRow) -> Result<TicketView> {
    let decided: Option<i64> = row.try_get("decided_at")?;
    let details: Details = match row.try_get::<Option<String>, _>("details_json")? {
        Some(json) => {
            serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(format!("details: {e}")))?
        }
        None => Details::default(),
    };
    Ok(TicketView {
        id: row.try_get("id")?,
        status: {
            let name: String = row.try_get("status")?;
            Status::from_name(&name)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown status {name:?}")))?
        },
        request_digest: row.try_get("request_digest")?,
        subject: row.try_get("subject")?,
        email: row.try_get("email")?,
        issuer: row.try_get("issuer")?,
        groups: strings(&row.try_get::<String, _>("groups_json")?)?,
        model: row.try_get("model")?,
        rule_id: row.try_get("rule_id")?,
        approver_groups: strings(&row.try_get::<String, _>("approver_groups_json")?)?,
        excerpt: row.try_get("excerpt")?,
        route: row
            .try_get::<Option<String>, _>("route")?
            .unwrap_or_default(),
        conditions: details.conditions,
        matched: details.matched,
        request_id: row.try_get("request_id")?,
        created_at: rfc3339(row.try_get("created_at")?),
        expires_at: rfc3339(row.try_get("expires_at")?),
        approver: row.try_get("approver")?,
        decided_at: decided.map(rfc3339),
        reason: row.try_get("reason")?,
        uses: row.try_get::<i64, _>("uses")?.max(0) as u32,
        max_uses: row.try_get::<i64, _>("max_uses")?.max(0) as u32,
        granted: false,
    })
}

/// Random ticket id: `t_` and 24 hex digits (96 bits).
fn new_id() -> String {
    let mut bytes = [0u8; 12];
    // Without randomness there is no safe id; a fixed one would collide and be refused.
    let _ = getrandom::fill(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("t_{hex}")
}

/// The key of the one open ticket of a request from a caller.
fn open_key(digest: &str, issuer: Option<&str>, subject: Option<&str>) -> String {
    format!(
        "{digest}|{}|{}",
        issuer.unwrap_or_default(),
        subject.unwrap_or_default()
    )
}

/// The advisory lock replicas take while they migrate (any fixed number: "vigil-ap").
const MIGRATION_LOCK: i64 = 0x7669_6769_6c2d_6170;

/// Creates the tables and indexes, then adds the columns an older database lacks.
async fn migrate_on(conn: &mut sqlx::AnyConnection, statements: &[String]) -> Result<()> {
    for s in statements {
        sqlx::query(s).execute(&mut *conn).await?;
    }
    for (name, kind) in ADDED_COLUMNS {
        let probe = format!("SELECT {name} FROM tickets LIMIT 0");
        if sqlx::query(&probe).execute(&mut *conn).await.is_ok() {
            continue;
        }
        let added = sqlx::query(&format!("ALTER TABLE tickets ADD COLUMN {name} {kind}"))
            .execute(&mut *conn)
            .await;
        // SQLite has no advisory lock: another service starting on the same file may have
        // added it first, which is as good.
        if let Err(e) = added {
            if sqlx::query(&probe).execute(&mut *conn).await.is_err() {
                return Err(e.into());
            }
        }
    }
    Ok(())
}

impl Store {
    /// Connects (`sqlite://PATH?mode=rwc` or `postgres://...`) and creates the tables.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite");
        // SQLite takes one writer at a time: several connections only queue on its lock with
        // sleeping retries (measured by scripts/bench: p99 1.6 s at 32 clients, against
        // milliseconds through one connection), so SQLite gets one connection.
        let max_connections = if sqlite { 1 } else { max_connections };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .connect(url)
            .await?;
        let store = Self { pool };
        store.migrate(sqlite).await?;
        Ok(store)
    }

    async fn migrate(&self, sqlite: bool) -> Result<()> {
        // The only difference between the two dialects: an auto-numbered key.
        let serial = if sqlite {
            "INTEGER PRIMARY KEY AUTOINCREMENT"
        } else {
            "BIGSERIAL PRIMARY KEY"
        };
        let statements = [
            "CREATE TABLE IF NOT EXISTS tickets (
                id TEXT PRIMARY KEY,
                open_key TEXT UNIQUE,
                request_digest TEXT NOT NULL,
                subject TEXT, email TEXT, issuer TEXT,
                groups_json TEXT NOT NULL,
                model TEXT,
                rule_id TEXT NOT NULL,
                approver_groups_json TEXT NOT NULL,
                excerpt TEXT NOT NULL,
                request_id TEXT NOT NULL,
                status TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL,
                approved_ttl_s BIGINT NOT NULL,
                max_uses BIGINT NOT NULL,
                uses BIGINT NOT NULL,
                approver TEXT, decided_at BIGINT, reason TEXT)"
                .to_string(),
            "CREATE INDEX IF NOT EXISTS tickets_by_status ON tickets (status, expires_at)".into(),
            format!(
                "CREATE TABLE IF NOT EXISTS ticket_events (
                    n {serial},
                    ticket_id TEXT NOT NULL,
                    at BIGINT NOT NULL,
                    actor TEXT NOT NULL,
                    from_status TEXT,
                    to_status TEXT NOT NULL,
                    reason TEXT,
                    request_id TEXT)"
            ),
            "CREATE INDEX IF NOT EXISTS ticket_events_by_ticket ON ticket_events (ticket_id)"
                .into(),
        ];
        // Replicas starting together would race on PostgreSQL's catalog (`IF NOT EXISTS` is
        // not safe against a concurrent creator): one migrates at a time, under an advisory
        // lock held on the connection that migrates. SQLite serialises writers itself.
        let mut conn = self.pool.acquire().await?;
        if !sqlite {
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(MIGRATION_LOCK)
                .execute(&mut *conn)
                .await?;
        }
        let migrated = migrate_on(&mut conn, &statements).await;
        if !sqlite {
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(MIGRATION_LOCK)
                .execute(&mut *conn)
                .await?;
        }
        migrated
    }

    /// The whole masked request of a ticket, and whether the gateway cut it.
    pub async fn request_text(&self, id: &str) -> Result<Option<(String, bool)>> {
        let row = sqlx::query("SELECT request_text, request_truncated FROM tickets WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let text: Option<String> = row.try_get("request_text")?;
        let cut: Option<i64> = row.try_get("request_truncated")?;
        Ok(Some((text.unwrap_or_default(), cut.unwrap_or(0) != 0)))
    }

    /// Expires the tickets past their time among those `open_key` (or `id`) names: pending
    /// and approved ones become `expired`; a denial stays a denial but stops answering.
    async fn expire_due(&self, column: &str, value: &str, now: i64) -> Result<()> {
        let due = sqlx::query(&format!(
            "SELECT id, status FROM tickets WHERE {column} = $1 AND expires_at <= $2 AND open_key IS NOT NULL"
        ))
        .bind(value)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        for row in due {
            let id: String = row.try_get("id")?;
            let status: String = row.try_get("status")?;
            let to = if status == "denied" {
                "denied"
            } else {
                "expired"
            };
            let mut tx = self.pool.begin().await?;
            let changed = sqlx::query(
                "UPDATE tickets SET status = $1, open_key = NULL WHERE id = $2 AND status = $3 AND open_key IS NOT NULL AND expires_at <= $4",
            )
            .bind(to)
            .bind(&id)
            .bind(&status)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 1 && to == "expired" {
                let why = format!("{status} ticket reached its expiry");
                record(
                    &mut tx,
                    Change {
                        ticket: &id,
                        at: now,
                        actor: "vigil-approvals",
                        from: Some(&status),
                        to,
                        reason: Some(&why),
                        request_id: None,
                    },
                )
                .await?;
            }
            tx.commit().await?;
        }
        Ok(())
    }

    /// The open ticket of this request from this caller, created when there is none.
    pub async fn create_or_get(&self, r: &TicketRequest, now: i64) -> Result<Opened> {
        let key = open_key(&r.request_digest, r.issuer.as_deref(), r.subject.as_deref());
        for _ in 0..3 {
            self.expire_due("open_key", &key, now).await?;
            let id = new_id();
            let mut tx = self.pool.begin().await?;
            let inserted = sqlx::query(
                "INSERT INTO tickets (id, open_key, request_digest, subject, email, issuer, groups_json, model, rule_id, approver_groups_json, excerpt, request_id, status, created_at, expires_at, approved_ttl_s, max_uses, uses, route, details_json, request_text, request_truncated)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'pending', $13, $14, $15, $16, 0, $17, $18, $19, $20)
                 ON CONFLICT (open_key) DO NOTHING",
            )
            .bind(&id)
            .bind(&key)
            .bind(&r.request_digest)
            .bind(&r.subject)
            .bind(&r.email)
            .bind(&r.issuer)
            .bind(serde_json::to_string(&r.groups).unwrap_or_else(|_| "[]".into()))
            .bind(&r.model)
            .bind(&r.rule_id)
            .bind(serde_json::to_string(&r.approver_groups).unwrap_or_else(|_| "[]".into()))
            .bind(&r.excerpt)
            .bind(&r.request_id)
            .bind(now)
            .bind(now + (r.ttl_s as i64) * 1000)
            .bind(r.approved_ttl_s as i64)
            .bind(i64::from(r.uses.max(1)))
            .bind(&r.route)
            .bind(
                serde_json::to_string(&Details {
                    conditions: r.conditions.clone(),
                    matched: r.matched.clone(),
                })
                .unwrap_or_else(|_| "{}".into()),
            )
            .bind(&r.request)
            .bind(i64::from(r.request_truncated))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 1 {
                let who = r
                    .email
                    .as_deref()
                    .or(r.subject.as_deref())
                    .unwrap_or("anonymous");
                record(
                    &mut tx,
                    Change {
                        ticket: &id,
                        at: now,
                        actor: who,
                        from: None,
                        to: "pending",
                        reason: Some("requested"),
                        request_id: Some(&r.request_id),
                    },
                )
                .await?;
            }
            tx.commit().await?;
            let row = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM tickets WHERE open_key = $1"
            ))
            .bind(&key)
            .fetch_optional(&self.pool)
            .await?;
            // None: the open ticket expired between the insert and the read; go again.
            if let Some(row) = row {
                return Ok(Opened {
                    ticket: view(&row)?,
                    created: inserted == 1,
                });
            }
        }
        Err(StoreError::Corrupt(
            "no open ticket after three attempts".into(),
        ))
    }

    /// A ticket by id (expired first if its time has passed).
    pub async fn get(&self, id: &str, now: i64) -> Result<Option<TicketView>> {
        self.expire_due("id", id, now).await?;
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM tickets WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(view).transpose()
    }

    /// Takes one use of an approved ticket for the request `digest`; the answer says
    /// whether this call got it (`granted`).
    pub async fn consume(
        &self,
        id: &str,
        digest: &str,
        request_id: &str,
        now: i64,
    ) -> Result<Option<TicketView>> {
        let mut tx = self.pool.begin().await?;
        let taken = sqlx::query(
            "UPDATE tickets SET uses = uses + 1,
                status = CASE WHEN uses + 1 >= max_uses THEN 'consumed' ELSE status END,
                open_key = CASE WHEN uses + 1 >= max_uses THEN NULL ELSE open_key END
             WHERE id = $1 AND request_digest = $2 AND status = 'approved' AND uses < max_uses AND expires_at > $3
             RETURNING uses, max_uses, status",
        )
        .bind(id)
        .bind(digest)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = &taken {
            let (uses, max): (i64, i64) = (row.try_get("uses")?, row.try_get("max_uses")?);
            let to: String = row.try_get("status")?;
            let why = format!("use {uses} of {max}");
            record(
                &mut tx,
                Change {
                    ticket: id,
                    at: now,
                    actor: "gateway",
                    from: Some("approved"),
                    to: &to,
                    reason: Some(&why),
                    request_id: Some(request_id),
                },
            )
            .await?;
        }
        tx.commit().await?;
        let Some(mut ticket) = self.get(id, now).await? else {
            return Ok(None);
        };
        if ticket.request_digest != digest {
            return Ok(None);
        }
        ticket.granted = taken.is_some();
        Ok(Some(ticket))
    }

    /// Records an approver's decision on a pending ticket. An approval starts the approved
    /// time to live.
    pub async fn decide(
        &self,
        id: &str,
        approver: &str,
        decision: Decision,
        reason: &str,
        now: i64,
    ) -> Result<std::result::Result<TicketView, DecideRefused>> {
        let (to, sql) = match decision {
            Decision::Approve => ("approved", "UPDATE tickets SET status = 'approved', approver = $1, decided_at = $2, reason = $3, expires_at = $2 + approved_ttl_s * 1000 WHERE id = $4 AND status = 'pending' AND expires_at > $2"),
            Decision::Deny => ("denied", "UPDATE tickets SET status = 'denied', approver = $1, decided_at = $2, reason = $3 WHERE id = $4 AND status = 'pending' AND expires_at > $2"),
        };
        let mut tx = self.pool.begin().await?;
        let changed = sqlx::query(sql)
            .bind(approver)
            .bind(now)
            .bind(reason)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if changed == 1 {
            record(
                &mut tx,
                Change {
                    ticket: id,
                    at: now,
                    actor: approver,
                    from: Some("pending"),
                    to,
                    reason: Some(reason),
                    request_id: None,
                },
            )
            .await?;
        }
        tx.commit().await?;
        let Some(ticket) = self.get(id, now).await? else {
            return Ok(Err(DecideRefused::NotFound));
        };
        if changed != 1 {
            return Ok(Err(DecideRefused::NotPending(ticket.status)));
        }
        Ok(Ok(ticket))
    }

    /// Pending tickets whose time has not passed, oldest first.
    pub async fn pending(&self, now: i64, limit: i64) -> Result<Vec<TicketView>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM tickets WHERE status = 'pending' AND expires_at > $1 ORDER BY created_at LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(view).collect()
    }

    /// A ticket's history, oldest first.
    pub async fn events(&self, id: &str) -> Result<Vec<Event>> {
        let rows = sqlx::query("SELECT at, actor, from_status, to_status, reason, request_id FROM ticket_events WHERE ticket_id = $1 ORDER BY n")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Event {
                    at: rfc3339(r.try_get("at")?),
                    actor: r.try_get("actor")?,
                    from_status: r.try_get("from_status")?,
                    to_status: r.try_get("to_status")?,
                    reason: r.try_get("reason")?,
                    request_id: r.try_get("request_id")?,
                })
            })
            .collect()
    }

    /// Deletes tickets that ended (denied, expired or consumed) before `before` (ms), with
    /// their history, except those whose status is in `keep`; pending and usable approved
    /// tickets are never touched (approvals past their time are expired first). A ticket ends
    /// at its expiry (expired), its decision (denied) or its last use (consumed). Answers how many went, by status; `dry_run` only counts.
    pub async fn purge(
        &self,
        before: i64,
        now: i64,
        keep: &[Status],
        dry_run: bool,
    ) -> Result<BTreeMap<String, u64>> {
        while self.sweep(now).await? == SWEEP_BATCH {}
        let statuses: Vec<String> = [Status::Denied, Status::Expired, Status::Consumed]
            .into_iter()
            .filter(|s| !keep.contains(s))
            .map(|s| format!("'{}'", s.name()))
            .collect();
        let mut gone = BTreeMap::new();
        if statuses.is_empty() {
            return Ok(gone);
        }
        // Final statuses never change again, so what is selected here stays purgeable.
        let select = format!(
            "SELECT id, status FROM tickets t WHERE status IN ({}) AND open_key IS NULL
               AND CASE status
                     WHEN 'expired' THEN expires_at
                     WHEN 'denied' THEN COALESCE(decided_at, created_at)
                     ELSE COALESCE((SELECT MAX(at) FROM ticket_events e WHERE e.ticket_id = t.id), created_at)
                   END < $1
             ORDER BY id LIMIT 500",
            statuses.join(", ")
        );
        let mut after = String::new();
        loop {
            let rows = sqlx::query(&select.replace("ORDER BY id", "AND id > $2 ORDER BY id"))
                .bind(before)
                .bind(&after)
                .fetch_all(&self.pool)
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.try_get("id")?;
            let mut tx = self.pool.begin().await?;
            for row in &rows {
                let id: String = row.try_get("id")?;
                let status: String = row.try_get("status")?;
                if !dry_run {
                    sqlx::query("DELETE FROM ticket_events WHERE ticket_id = $1")
                        .bind(&id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM tickets WHERE id = $1")
                        .bind(&id)
                        .execute(&mut *tx)
                        .await?;
                }
                *gone.entry(status).or_default() += 1;
            }
            tx.commit().await?;
        }
        Ok(gone)
    }

    /// Expires every ticket whose time passed (the service runs this now and then, so the
    /// history shows expiries even for tickets nobody asks about again).
    pub async fn sweep(&self, now: i64) -> Result<usize> {
        let rows = sqlx::query(
            "SELECT id FROM tickets WHERE open_key IS NOT NULL AND expires_at <= $1 LIMIT $2",
        )
        .bind(now)
        .bind(SWEEP_BATCH as i64)
        .fetch_all(&self.pool)
        .await?;
        for row in &rows {
            let id: String = row.try_get("id")?;
            self.expire_due("id", &id, now).await?;
        }
        Ok(rows.len())
    }
}
