//! The filter's own check of every ticket the approval service sends, against the rule that
//! asked for it. The service is a separate process on the network: a service started without
//! a filter key, a compromised one, or anything that answers on its cluster could otherwise
//! hand back a ticket with approver groups, uses or lifetimes of its choosing ("approved by
//! an analyst, a million uses, valid for a year") and the filter would honour it. So a ticket
//! is used only when it is about this caller, for this rule, approvable only by the rule's
//! approver groups, with no more uses and no longer lifetimes than the rule gives, and not
//! approved by the caller. Anything else is refused (fail closed) and recorded.

use super::protocol::{Status, Ticket};
use crate::rules::ApprovalRule;

/// How far the service's clock may run ahead of the filter's before its lifetimes are
/// suspect (hosts keep time with NTP; a minute is generous and still bounds a forgery).
pub const CLOCK_SKEW_MS: i64 = 60_000;

/// What the filter knows about the request it asked approval for.
pub struct Expected<'a> {
    pub rule_id: &'a str,
    pub rule: &'a ApprovalRule,
    pub issuer: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub email: Option<&'a str>,
}

fn millis(rfc3339: &str) -> Option<i64> {
    crate::time::parse_rfc3339(rfc3339)
        .ok()
        .map(|nanos| (nanos / 1_000_000) as i64)
}

/// Why the ticket cannot be trusted, or `Ok` when it matches the rule. `now_ms` is the
/// filter's clock.
pub fn vouch(t: &Ticket, x: &Expected<'_>, now_ms: i64) -> Result<(), String> {
    if t.rule_id != x.rule_id {
        return Err(format!(
            "ticket {} is for rule {:?}, not {:?}",
            t.id, t.rule_id, x.rule_id
        ));
    }
    let allowed = &x.rule.approvers;
    if t.approver_groups.is_empty() || !t.approver_groups.iter().all(|g| allowed.contains(g)) {
        return Err(format!(
            "ticket {} may be decided by {:?}; the rule allows only {:?}",
            t.id, t.approver_groups, allowed
        ));
    }
    if t.issuer.as_deref() != x.issuer || t.subject.as_deref() != x.subject {
        return Err(format!(
            "ticket {} was opened for another caller ({:?} at {:?})",
            t.id,
            t.subject.as_deref().unwrap_or(""),
            t.issuer.as_deref().unwrap_or("")
        ));
    }
    if t.max_uses == 0 || t.max_uses > x.rule.uses || t.uses > t.max_uses {
        return Err(format!(
            "ticket {} allows {} uses ({} taken); the rule allows {}",
            t.id, t.max_uses, t.uses, x.rule.uses
        ));
    }
    let expires =
        millis(&t.expires_at).ok_or_else(|| format!("ticket {} has no readable expiry", t.id))?;
    match t.status {
        Status::Pending => {
            let latest = now_ms + (x.rule.ttl_s as i64) * 1000 + CLOCK_SKEW_MS;
            if expires > latest {
                return Err(format!(
                    "pending ticket {} expires at {}, later than the rule's {} s to decide",
                    t.id, t.expires_at, x.rule.ttl_s
                ));
            }
        }
        Status::Approved | Status::Consumed => {
            let approver = t.approver.as_deref().unwrap_or_default();
            let caller = [x.email, x.subject];
            if approver.is_empty() || caller.contains(&Some(approver)) {
                return Err(format!(
                    "ticket {} was approved by {approver:?}, who is the caller or nobody",
                    t.id
                ));
            }
            let decided = t
                .decided_at
                .as_deref()
                .and_then(millis)
                .ok_or_else(|| format!("approved ticket {} has no decision time", t.id))?;
            if decided > now_ms + CLOCK_SKEW_MS {
                return Err(format!(
                    "ticket {} was decided at {}, in the future",
                    t.id,
                    t.decided_at.as_deref().unwrap_or_default()
                ));
            }
            // The service stores milliseconds: one second covers its rounding.
            if expires > decided + (x.rule.approved_ttl_s as i64) * 1000 + 1000 {
                return Err(format!(
                    "ticket {}'s approval lasts until {}, longer than the rule's {} s",
                    t.id, t.expires_at, x.rule.approved_ttl_s
                ));
            }
            if t.granted && expires <= now_ms - CLOCK_SKEW_MS {
                return Err(format!(
                    "ticket {} granted a use after it expired at {}",
                    t.id, t.expires_at
                ));
            }
        }
        Status::Denied | Status::Expired => {}
    }
    if t.granted && !matches!(t.status, Status::Approved | Status::Consumed) {
        return Err(format!(
            "ticket {} granted a use while {}",
            t.id,
            t.status.name()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::ApprovalMode;

    const NOW: i64 = 1_795_000_000_000; // 2026-11-18T11:06:40Z

    fn rule() -> ApprovalRule {
        ApprovalRule {
            approvers: vec!["risk-officers".into(), "corp-idp:treasury".into()],
            mode: ApprovalMode::Ticket,
            max_wait_s: 0,
            ttl_s: 3600,
            approved_ttl_s: 600,
            uses: 1,
        }
    }

    fn at(ms: i64) -> String {
        crate::time::format_rfc3339_millis((ms as u64) * 1_000_000)
    }

    /// An honest approved-and-granted answer for `rule()`.
    fn honest() -> Ticket {
        Ticket {
            id: "t_1".into(),
            status: Status::Approved,
            request_digest: "d".into(),
            rule_id: "wires".into(),
            approver_groups: vec!["risk-officers".into()],
            subject: Some("u-1".into()),
            issuer: Some("https://idp.bank.test".into()),
            approver: Some("officer@bank.test".into()),
            decided_at: Some(at(NOW - 10_000)),
            reason: Some("ok".into()),
            expires_at: at(NOW - 10_000 + 600_000),
            granted: true,
            uses: 1,
            max_uses: 1,
        }
    }

    fn check(t: &Ticket) -> Result<(), String> {
        let rule = rule();
        let x = Expected {
            rule_id: "wires",
            rule: &rule,
            issuer: Some("https://idp.bank.test"),
            subject: Some("u-1"),
            email: Some("analyst@bank.test"),
        };
        vouch(t, &x, NOW)
    }

    #[test]
    fn an_honest_ticket_is_used() {
        check(&honest()).unwrap();
        let pending = Ticket {
            status: Status::Pending,
            approver: None,
            decided_at: None,
            granted: false,
            uses: 0,
            expires_at: at(NOW + 3_600_000),
            ..honest()
        };
        check(&pending).unwrap();
    }

    #[test]
    fn every_field_a_forger_could_choose_is_refused() {
        let forged: Vec<(&str, Ticket)> = vec![
            (
                "another rule",
                Ticket {
                    rule_id: "chat".into(),
                    ..honest()
                },
            ),
            (
                "no rule",
                Ticket {
                    rule_id: String::new(),
                    ..honest()
                },
            ),
            (
                "an analyst approves",
                Ticket {
                    approver_groups: vec!["analysts".into()],
                    ..honest()
                },
            ),
            (
                "an extra group",
                Ticket {
                    approver_groups: vec!["risk-officers".into(), "analysts".into()],
                    ..honest()
                },
            ),
            (
                "no group at all",
                Ticket {
                    approver_groups: vec![],
                    ..honest()
                },
            ),
            (
                "an unscoped group for a scoped one",
                Ticket {
                    approver_groups: vec!["treasury".into()],
                    ..honest()
                },
            ),
            (
                "another subject",
                Ticket {
                    subject: Some("u-2".into()),
                    ..honest()
                },
            ),
            (
                "another issuer",
                Ticket {
                    issuer: Some("https://evil.test".into()),
                    ..honest()
                },
            ),
            (
                "no caller",
                Ticket {
                    subject: None,
                    ..honest()
                },
            ),
            (
                "a million uses",
                Ticket {
                    max_uses: 1_000_000,
                    ..honest()
                },
            ),
            (
                "no uses",
                Ticket {
                    max_uses: 0,
                    uses: 0,
                    ..honest()
                },
            ),
            (
                "more uses taken than allowed",
                Ticket {
                    uses: 2,
                    ..honest()
                },
            ),
            (
                "a year-long approval",
                Ticket {
                    expires_at: at(NOW + 365 * 86_400_000),
                    ..honest()
                },
            ),
            (
                "decided in the future",
                Ticket {
                    decided_at: Some(at(NOW + 86_400_000)),
                    expires_at: at(NOW + 86_400_000 + 600_000),
                    ..honest()
                },
            ),
            (
                "no decision time",
                Ticket {
                    decided_at: None,
                    ..honest()
                },
            ),
            (
                "granted after expiry",
                Ticket {
                    decided_at: Some(at(NOW - 3_600_000)),
                    expires_at: at(NOW - 3_000_000),
                    ..honest()
                },
            ),
            (
                "self-approved by email",
                Ticket {
                    approver: Some("analyst@bank.test".into()),
                    ..honest()
                },
            ),
            (
                "self-approved by subject",
                Ticket {
                    approver: Some("u-1".into()),
                    ..honest()
                },
            ),
            (
                "approved by nobody",
                Ticket {
                    approver: None,
                    ..honest()
                },
            ),
            (
                "granted while pending",
                Ticket {
                    status: Status::Pending,
                    ..honest()
                },
            ),
            (
                "granted while denied",
                Ticket {
                    status: Status::Denied,
                    ..honest()
                },
            ),
            (
                "a pending ticket open for a year",
                Ticket {
                    status: Status::Pending,
                    granted: false,
                    expires_at: at(NOW + 365 * 86_400_000),
                    ..honest()
                },
            ),
        ];
        for (what, t) in forged {
            let why = check(&t).expect_err(what);
            assert!(why.contains("t_1"), "{what}: {why}");
        }
    }

    #[test]
    fn a_service_clock_a_little_ahead_is_tolerated() {
        let ahead = NOW + CLOCK_SKEW_MS / 2;
        let t = Ticket {
            decided_at: Some(at(ahead)),
            expires_at: at(ahead + 600_000),
            ..honest()
        };
        check(&t).unwrap();
    }
}
