//! Notifying approvers of new tickets: a Slack-compatible JSON body (`{"text": ...}`) posted
//! to a webhook URL, retried with exponential backoff. Deliveries run on their own task from
//! a bounded queue, so a slow or dead webhook never holds up the API: when the queue is full
//! the notice is dropped and counted, and the ticket is still in the pending list.
//!
//! What the requester wrote reaches approvers as text, never as markup: everything taken
//! from the ticket is escaped for Slack's mrkdwn (`&`, `<`, `>`: `<!channel>` and
//! `<https://...|Review ticket>` stay literal), the excerpt sits in a code block (no
//! auto-links, no formatting), and the only link is the service's own page with the
//! service's own ticket id. With a signing key, each body carries
//! `x-vigil-signature: t=<unix seconds>,v1=<hex HMAC-SHA-256 of "<t>.<body>">`, so the
//! receiver can tell the service's notices from forged ones and refuse replays
//! (docs/approvals.md).

use crate::store::TicketView;
use hmac::{Hmac, Mac};
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

/// Text for Slack's mrkdwn: the three characters it reads as markup are escaped.
fn mrkdwn(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A code fence inside the excerpt would end its code block early.
const FENCE: &str = "```";

/// The Slack-compatible message for a new ticket.
pub fn message(t: &TicketView, ui_url: Option<&str>) -> serde_json::Value {
    let who = t
        .email
        .as_deref()
        .or(t.subject.as_deref())
        .unwrap_or("an unknown caller");
    // The only link: the service's own page (configured) and its own ticket id.
    let link = ui_url
        .map(|u| format!("\n<{u}#{}|Review ticket {}>", t.id, t.id))
        .unwrap_or_else(|| format!("\nTicket {}", t.id));
    // What made the rule match, when a pattern did; the start of the prompt otherwise.
    let excerpt: String = match &t.matched {
        Some(m) => {
            let before: Vec<char> = m.before.chars().collect();
            let before: String = before[before.len().saturating_sub(100)..].iter().collect();
            let after: String = m.after.chars().take(100).collect();
            format!("…{before}{}{after}…", m.text)
        }
        None => t.excerpt.chars().take(300).collect(),
    };
    serde_json::json!({
        "text": format!(
            "Approval needed: {} asks model {} (rule {}). Approvers: {}. Expires {}.\n{FENCE}\n{}\n{FENCE}{link}",
            mrkdwn(who),
            mrkdwn(t.model.as_deref().unwrap_or("?")),
            mrkdwn(&t.rule_id),
            mrkdwn(&t.approver_groups.join(", ")),
            mrkdwn(&t.expires_at),
            mrkdwn(&excerpt).replace(FENCE, "` ` `"),
        ),
        "ticket_id": t.id,
    })
}

/// The `x-vigil-signature` value for `body` sent at `t` (seconds since the epoch).
pub fn signature(key: &[u8], t: u64, body: &[u8]) -> Option<String> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).ok()?;
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Some(format!("t={t},v1={hex}"))
}

impl Webhook {
    /// Starts the delivery task for `url`; with `key`, every body is signed.
    pub fn start(url: String, retry: Retry, key: Option<Vec<u8>>, log: crate::notice::Log) -> Self {
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
                    let bytes = serde_json::to_vec(&body).unwrap_or_default();
                    let mut request = client
                        .post(&url)
                        .timeout(retry.timeout)
                        .header("content-type", "application/json");
                    // Signed at each attempt: the timestamp says when this one was sent.
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or_default();
                    if let Some(sig) = key.as_deref().and_then(|k| signature(k, now, &bytes)) {
                        request = request.header("x-vigil-signature", sig);
                    }
                    let sent = request.body(bytes).send().await;
                    if matches!(&sent, Ok(r) if r.status().is_success()) {
                        ok = true;
                        break;
                    }
                }
                if ok {
                    s.delivered.fetch_add(1, Ordering::Relaxed);
                } else {
                    s.failed.fetch_add(1, Ordering::Relaxed);
                    log.line(format_args!(
                        "webhook gave up on ticket {} after {} attempts",
                        body["ticket_id"], retry.attempts
                    ));
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

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::approval::protocol::Status;

    fn ticket(subject: &str, model: &str, excerpt: &str) -> TicketView {
        TicketView {
            id: "t-1".into(),
            status: Status::Pending,
            request_digest: "d".into(),
            subject: Some(subject.into()),
            email: None,
            issuer: None,
            groups: Vec::new(),
            model: Some(model.into()),
            rule_id: "r".into(),
            approver_groups: vec!["risk".into()],
            excerpt: excerpt.into(),
            route: "POST /v1/chat/completions".into(),
            conditions: Vec::new(),
            matched: None,
            request_id: String::new(),
            created_at: "c".into(),
            expires_at: "e".into(),
            approver: None,
            decided_at: None,
            reason: None,
            uses: 0,
            max_uses: 1,
            granted: false,
        }
    }

    #[test]
    fn request_text_reaches_approvers_as_text_never_as_markup_or_links() {
        let t = ticket(
            "<!channel>",
            "m&<b>",
            "wire now <!channel> <https://evil.example|Review ticket t-1> ``` & done",
        );
        let text = message(&t, Some("https://approvals.bank.test/"))["text"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            !text.contains("<!channel>") && !text.contains("<https://evil"),
            "{text}"
        );
        assert!(
            text.contains("&lt;!channel&gt;") && text.contains("m&amp;&lt;b&gt;"),
            "{text}"
        );
        // One fence opens the excerpt and one closes it: the excerpt's own is neutralised.
        assert_eq!(text.matches(FENCE).count(), 2, "{text}");
        // The one link is the service's own page.
        assert_eq!(text.matches('<').count(), 1, "{text}");
        assert!(text.contains("<https://approvals.bank.test/#t-1|Review ticket t-1>"));
    }

    #[test]
    fn the_notice_shows_what_matched_escaped_like_the_rest() {
        let mut t = ticket("u", "m", "Summarise the report.");
        t.matched = Some(vigil_core::approval::protocol::MatchedText {
            before: format!("{}then <!channel> ", "x".repeat(300)),
            text: "wire transfer".into(),
            after: " of $9,000 ```".into(),
            ..Default::default()
        });
        let text = message(&t, None)["text"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            text.contains("then &lt;!channel&gt; wire transfer of $9,000"),
            "{text}"
        );
        assert!(
            !text.contains("Summarise") && !text.contains("<!channel>"),
            "{text}"
        );
        assert!(!text.contains(&"x".repeat(101)), "context is cut: {text}");
    }

    #[test]
    fn the_signature_is_an_hmac_of_the_timestamp_and_the_body() {
        let sig = signature(b"webhook-key", 1_764_000_000, b"{}").unwrap_or_default();
        assert!(sig.starts_with("t=1764000000,v1="), "{sig}");
        assert_eq!(sig.len(), "t=1764000000,v1=".len() + 64);
        assert_ne!(
            Some(sig.clone()),
            signature(b"webhook-key", 1_764_000_001, b"{}")
        );
        assert_ne!(Some(sig), signature(b"other-key", 1_764_000_000, b"{}"));
    }
}
