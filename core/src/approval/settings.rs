//! The policy's `approval` section: where the filter finds the approval service. Required
//! as soon as a rule (or the default) can `require_approval`, so a policy never asks for an
//! approval it has no way to get.

use super::protocol::Status;
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
    /// What `vigil approvals purge` must keep.
    pub retention: Retention,
}

/// What the approval service's history must keep (`approval.retention`): a purge never
/// deletes a decided ticket younger than `min_days`, nor one whose status is in `keep`
/// (a bank may keep every denial for as long as the records it explains).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Retention {
    pub min_days: u64,
    pub keep: Vec<Status>,
}

/// Statuses a ticket ends in, which a purge may delete.
pub const FINAL_STATUSES: [Status; 3] = [Status::Denied, Status::Expired, Status::Consumed];

fn read_retention(path: &str, value: &Value, errors: &mut Errors) -> Retention {
    let Some(mut obj) = ObjectReader::new(path, value, errors) else {
        return Retention::default();
    };
    let min_days = obj.integer("min_days", 0, 36_500, errors).unwrap_or(0);
    let mut keep = Vec::new();
    for name in obj.string_list("keep", errors).unwrap_or_default() {
        match Status::from_name(&name).filter(|s| FINAL_STATUSES.contains(s)) {
            Some(s) => keep.push(s),
            None => errors.push(
                &obj.field_path("keep"),
                format!("{name:?} is not a final status (denied, expired, consumed)"),
            ),
        }
    }
    obj.finish(errors);
    Retention { min_days, keep }
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
    let retention = match obj.get("retention") {
        Some(v) => read_retention(&obj.field_path("retention"), v, errors),
        None => Retention::default(),
    };
    obj.finish(errors);
    let cluster = cluster?;
    Some(ApprovalService {
        authority: authority.unwrap_or_else(|| cluster.clone()),
        cluster,
        timeout_ms,
        follow_url,
        key_env,
        excerpt_chars,
        retention,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(v: Value) -> (Option<ApprovalService>, Vec<String>) {
        let mut errors = Errors::default();
        let s = read_approval("$.approval", &v, &mut errors);
        let all = errors.into_vec().iter().map(ToString::to_string).collect();
        (s, all)
    }

    #[test]
    fn retention_names_final_statuses_only() {
        let (s, errors) =
            read(json!({"cluster": "a", "retention": {"min_days": 2555, "keep": ["denied"]}}));
        assert!(errors.is_empty(), "{errors:?}");
        let r = s.unwrap().retention;
        assert_eq!((r.min_days, r.keep), (2555, vec![Status::Denied]));
        let (_, errors) =
            read(json!({"cluster": "a", "retention": {"keep": ["pending"], "days": 3}}));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("not a final status"), "{errors:?}");
    }
}
