//! The approval service's history of a recorded approval, for `vigil audit show --approvals
//! URL`: who opened the ticket, who decided it and why, each use, as the service keeps them
//! (GET /v1/tickets/{id}). The service shows a ticket to its approvers and its requester
//! only, so the token (`--approvals-token-env`, default VIGIL_APPROVALS_TOKEN) must be one of
//! theirs. An unreachable service or a refused token is reported beside the record, never
//! in place of it: the record is the evidence, the history a second witness.

use std::time::Duration;

/// How long the service gets to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The history as lines (`at  actor  from -> to: reason`), or why it is not available.
pub fn fetch(base: &str, token: Option<&str>, ticket: &str) -> Result<Vec<String>, String> {
    if !ticket
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!(
            "the ticket id {ticket:?} is not one the service issues"
        ));
    }
    let url = format!("{}/v1/tickets/{ticket}", base.trim_end_matches('/'));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let (status, body) = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| e.to_string())?;
        let mut request = client.get(&url);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let answer = request.send().await.map_err(|e| format!("{url}: {e}"))?;
        let status = answer.status().as_u16();
        let body = answer.bytes().await.map_err(|e| format!("{url}: {e}"))?;
        Ok::<_, String>((status, body))
    })?;
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|_| format!("{url} answered {status} with a body that is not JSON"))?;
    if status != 200 {
        let message = value["message"].as_str().unwrap_or("no message");
        let hint = match status {
            401 => " (set VIGIL_APPROVALS_TOKEN or --approvals-token-env to an approver's token)",
            404 => " (unknown, or not shown to this token: the service shows a ticket to its approvers and requester only)",
            _ => "",
        };
        return Err(format!("{url} answered {status}: {message}{hint}"));
    }
    let events = value["events"]
        .as_array()
        .ok_or_else(|| format!("{url}: the answer has no events"))?;
    Ok(events.iter().map(line).collect())
}

fn line(e: &serde_json::Value) -> String {
    let s = |k: &str| e[k].as_str().unwrap_or("-").to_string();
    let transition = match e["from_status"].as_str() {
        Some(from) => format!("{from} -> {}", s("to_status")),
        None => format!("opened {}", s("to_status")),
    };
    let mut out = format!("{}  {}  {transition}", s("at"), s("actor"));
    if let Some(reason) = e["reason"].as_str() {
        out.push_str(&format!(": {reason}"));
    }
    if let Some(rid) = e["request_id"].as_str() {
        out.push_str(&format!(" (request {rid})"));
    }
    out
}
