//! Notifying approvers of new tickets: a Slack-compatible JSON body (`{"text": ...}`) posted
//! to a webhook URL, retried with exponential backoff. Deliveries run on their own task from
//! a bounded queue, so a slow or dead webhook never holds up the API: when the queue is full
//! the notice is dropped and counted, and the ticket is still in the pending list.

use crate::store::TicketView;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Notices waiting for delivery before new ones are dropped.
const QUEUE: usize = 1024;

/// Delivery counts, for the service's `/healthz` and tests.
#[derive(Debug, Default)]
pub struct WebhookStats {
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
    pub attempts: AtomicU64,
}

#[derive(Clone)]
pub struct Webhook {
    tx: mpsc::Sender<serde_json::Value>,
    pub stats: Arc<WebhookStats>,
}

/// How deliveries are retried.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub attempts: u32,
    pub first_backoff: Duration,
    pub timeout: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempts: 5,
            first_backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(5),
        }
    }
}

/// The Slack-compatible message for a new ticket.
pub fn message(t: &TicketView, ui_url: Option<&str>) -> serde_json::Value {
    let who = t
        .email
        .as_deref()
        .or(t.subject.as_deref())
        .unwrap_or("an unknown caller");
    let link = ui_url
        .map(|u| format!("\n<{u}#{}|Review ticket {}>", t.id, t.id))
        .unwrap_or_else(|| format!("\nTicket {}", t.id));
    let excerpt: String = t.excerpt.chars().take(300).collect();
    serde_json::json!({
        "text": format!(
            "Approval needed: {who} asks model {} (rule {}). Approvers: {}. Expires {}.\n> {}{link}",
            t.model.as_deref().unwrap_or("?"),
            t.rule_id,
            t.approver_groups.join(", "),
            t.expires_at,
            excerpt.replace('\n', "\n> "),
        ),
        "ticket_id": t.id,
    })
}

impl Webhook {
    /// Starts the delivery task for `url`.
    pub fn start(url: String, retry: Retry) -> Self {
        let (tx, mut rx) = mpsc::channel::<serde_json::Value>(QUEUE);
        let stats = Arc::new(WebhookStats::default());
        let s = stats.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            while let Some(body) = rx.recv().await {
                let mut backoff = retry.first_backoff;
                let mut ok = false;
                for attempt in 0..retry.attempts {
                    if attempt > 0 {
                        tokio::time::sleep(backoff).await;
                        backoff *= 2;
                    }
                    s.attempts.fetch_add(1, Ordering::Relaxed);
                    let sent = client
                        .post(&url)
                        .timeout(retry.timeout)
                        .json(&body)
                        .send()
                        .await;
                    if matches!(&sent, Ok(r) if r.status().is_success()) {
                        ok = true;
                        break;
                    }
                }
                if ok {
                    s.delivered.fetch_add(1, Ordering::Relaxed);
                } else {
                    s.failed.fetch_add(1, Ordering::Relaxed);
                    eprintln!(
                        "vigil approvals: webhook gave up on ticket {} after {} attempts",
                        body["ticket_id"], retry.attempts
                    );
                }
            }
        });
        Self { tx, stats }
    }

    /// Queues a notice; never waits.
    pub fn notify(&self, body: serde_json::Value) {
        if self.tx.try_send(body).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
