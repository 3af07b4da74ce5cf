//! Policy rules in the filter: the facts a request shows the rules, the refusal a verdict
//! means, and the decision counters Envoy exports (`vigil.decision.<action>.<rule>`).
//!
//! Request headers are only reachable during their own callback (Envoy clears them once it
//! returns Continue, and the SDK panics on the BadArgument that follows), so the headers the
//! rules look at are saved then, and rules that run at the end of the body read the copy.

use crate::refusal::Refusal;
use crate::root::Shared;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;
use serde_json::Value;
use vigil_core::identity::Identity;
use vigil_core::rules::{Action, RequestFacts, Verdict};

/// What the rules need to know about a request.
pub struct Facts<'a> {
    pub identity: Option<&'a Identity>,
    pub method: &'a str,
    pub path: &'a str,
    pub model: Option<&'a str>,
    pub headers: &'a [(String, Option<String>)],
    pub body: Option<&'a Value>,
    pub body_bytes: u64,
}

/// Evaluates the policy's rules and counts the decision.
pub fn evaluate(shared: &Shared, f: &Facts<'_>) -> Verdict {
    let header = |name: &str| {
        f.headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.clone())
    };
    let facts = RequestFacts {
        identity: f.identity,
        method: f.method,
        path: f.path,
        model: f.model,
        header: &header,
        body: f.body,
        body_bytes: f.body_bytes,
    };
    let verdict = shared.config.rules.evaluate(&facts);
    count(
        shared,
        &format!(
            "vigil.decision.{}.{}",
            verdict.action.name(),
            verdict.rule_id.as_deref().unwrap_or("default")
        ),
    );
    for (id, action) in &verdict.shadowed {
        count(shared, &format!("vigil.shadow.{action}.{id}"));
    }
    verdict
}

/// Increments a counter, defining it on first use (Envoy exports it as a custom stat).
pub fn count(shared: &Shared, name: &str) {
    count_by(shared, name, 1);
}

/// Adds `n` to a counter, defining it on first use.
pub fn count_by(shared: &Shared, name: &str, n: i64) {
    let known = shared.metrics.borrow().get(name).copied();
    let id = match known {
        Some(id) => id,
        None => match hostcalls::define_metric(MetricType::Counter, name) {
            Ok(id) => {
                shared.metrics.borrow_mut().insert(name.to_string(), id);
                id
            }
            Err(_) => return,
        },
    };
    let _ = hostcalls::increment_metric(id, n);
}

/// The answer a verdict means, when it is not to let the request through.
pub fn refusal(verdict: &Verdict) -> Option<Refusal> {
    let rule = verdict.rule_id.clone();
    match &verdict.action {
        Action::Allow => None,
        Action::Block { status, message } => Some(Refusal::new(*status, "blocked_by_policy", message.clone()).for_rule(rule)),
        // The stream asks for approval itself (stream/approval.rs). This is the path of a
        // body-less request decided by the root after a key-set fetch, which cannot hold a
        // stream's callouts: it is refused, and a retry (keys now cached) asks normally.
        Action::RequireApproval(approval) => Some(
            Refusal::new(503, "approval_retry", format!("{}; it needs approval by a member of {}, which could not be asked while the identity provider's keys were loading; send the request again", verdict.reason, approval.approvers.join(", ")))
                .for_rule(rule),
        ),
    }
}
