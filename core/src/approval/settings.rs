//! The policy's `approval` section: where the filter finds the approval service. Required
//! as soon as a rule (or the default) can `require_approval`, so a policy never asks for an
//! approval it has no way to get.

use crate::json_reader::{Errors, ObjectReader};
use serde_json::Value;

/// How the filter reaches the approval service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalService {
    /// The Envoy cluster callouts go to.
    pub cluster: String,
    /// The `:authority` of callouts (default: the cluster name).
    pub authority: String,
    /// How long one call may take before it counts as a timeout (a long poll adds its wait).
    pub timeout_ms: u64,
    /// Where a person follows a ticket: the 403 names this URL with the ticket id appended.
    pub follow_url: Option<String>,
    /// The VM environment variable holding the key the filter presents to the service
    /// (`x-vigil-filter-key`), so only the gateway can open and consume tickets.
    pub key_env: Option<String>,
    /// Characters of the masked prompt shown to approvers.
    pub excerpt_chars: usize,
}

pub const DEFAULT_TIMEOUT_MS: u64 = 2000;
pub const DEFAULT_EXCERPT_CHARS: usize = 600;

/// Reads the `approval` section.
pub fn read_approval(path: &str, value: &Value, errors: &mut Errors) -> Option<ApprovalService> {
    let mut obj = ObjectReader::new(path, value, errors)?;
    let cluster = obj.required_string("cluster", errors);
    let authority = obj.string("authority", errors);
    let timeout_ms = obj
        .integer("timeout_ms", 50, 60_000, errors)
        .unwrap_or(DEFAULT_TIMEOUT_MS);
    let follow_url = obj.string("follow_url", errors);
    if let Some(url) = &follow_url {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            errors.push(
                &obj.field_path("follow_url"),
                format!("must be an http(s) URL, found {url:?}"),
            );
        }
    }
    let key_env = obj.env_var("key_env", errors);
    let excerpt_chars = obj
        .integer("excerpt_chars", 0, 10_000, errors)
        .map_or(DEFAULT_EXCERPT_CHARS, |n| n as usize);
    obj.finish(errors);
    let cluster = cluster?;
    Some(ApprovalService {
        authority: authority.unwrap_or_else(|| cluster.clone()),
        cluster,
        timeout_ms,
        follow_url,
        key_env,
        excerpt_chars,
    })
}
