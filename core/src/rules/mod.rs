//! Policy rules: ordered `rules`, each with an `id`, a `when` (every condition in it must
//! hold) and an `action` (`allow`, `block`, `require_approval`), in `enforce` or `shadow`
//! mode. The first enforced rule that matches decides; shadow rules that match are recorded
//! and evaluation goes on, so a team can trial a rule on live traffic. Regexes compile once,
//! when the policy is read.

mod parse;
pub mod prompt;
mod why;

pub use parse::read_rules;
pub use why::{PromptMatch, Why};

use crate::access::glob_matches;
use crate::identity::Identity;
use crate::record::DecisionAction;
use regex_lite::Regex;
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub description: Option<String>,
    pub when: When,
    pub action: Action,
    pub shadow: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Allow,
    Block { status: u32, message: String },
    RequireApproval(ApprovalRule),
}

/// How a request that needs approval waits for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalMode {
    /// Answer 403 at once with the ticket; a retry of the same request passes once approved.
    Ticket,
    /// Hold the request (paused) until the ticket is decided or `max_wait_s` passes.
    Wait,
}

/// What a `require_approval` action asks of the approval service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRule {
    /// Groups whose members may decide.
    pub approvers: Vec<String>,
    /// How long a ticket waits for a decision.
    pub ttl_s: u64,
    /// How long an approval stays usable once given.
    pub approved_ttl_s: u64,
    /// How many requests one approval lets through.
    pub uses: u32,
    pub mode: ApprovalMode,
    /// In `wait` mode, how long the request is held.
    pub max_wait_s: u64,
}

impl Action {
    pub fn kind(&self) -> DecisionAction {
        match self {
            Action::Allow => DecisionAction::Allow,
            Action::Block { .. } => DecisionAction::Block,
            Action::RequireApproval(_) => DecisionAction::RequireApproval,
        }
    }

    pub fn name(&self) -> &'static str {
        self.kind().as_str()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    Exact(String),
    Prefix(String),
    Glob(String),
}

/// A comparison on the value a JSON pointer finds in the body.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonTest {
    Equals(Value),
    In(Vec<Value>),
    Gt(f64),
    Gte(f64),
    Lt(f64),
    Lte(f64),
    LengthGt(usize),
    LengthLt(usize),
    Exists(bool),
}

/// A test on what a JSON pointer finds. A `*` segment stands for every element of an array
/// (or member of an object) there: the condition holds when the test holds for any value
/// found, or with `every` for all of them (and at least one exists).
#[derive(Debug, Clone, PartialEq)]
pub struct JsonCondition {
    pub pointer: String,
    pub test: JsonTest,
    pub every: bool,
}

/// Every value `pointer` finds in `v`, `*` segments expanded (RFC 6901 escapes apply to the
/// other segments).
fn pointer_all<'v>(v: &'v Value, pointer: &str, out: &mut Vec<&'v Value>) {
    let Some(rest) = pointer.strip_prefix('/') else {
        out.push(v);
        return;
    };
    let (segment, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if segment == "*" {
        match v {
            Value::Array(items) => items.iter().for_each(|i| pointer_all(i, tail, out)),
            Value::Object(map) => map.values().for_each(|i| pointer_all(i, tail, out)),
            _ => {}
        }
        return;
    }
    let key = segment.replace("~1", "/").replace("~0", "~");
    let next = match v {
        Value::Object(map) => map.get(&key),
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    };
    if let Some(next) = next {
        pointer_all(next, tail, out);
    }
}

/// Conditions of a rule; all present ones must hold.
#[derive(Debug, Clone, Default)]
pub struct When {
    pub groups_any: Vec<String>,
    pub groups_all: Vec<String>,
    pub groups_none: Vec<String>,
    pub subjects: Vec<String>,
    pub methods: Vec<String>,
    pub path: Option<PathMatch>,
    pub models: Vec<String>,
    pub headers: Vec<(String, String)>,
    pub prompt: Vec<Regex>,
    /// Where the prompt is, for APIs other than OpenAI's (a JSON pointer).
    pub prompt_pointer: Option<String>,
    pub json: Vec<JsonCondition>,
    pub body_bytes_gt: Option<u64>,
}

impl When {
    /// Whether evaluating this needs the request body.
    pub fn needs_body(&self) -> bool {
        !self.prompt.is_empty() || !self.json.is_empty() || self.body_bytes_gt.is_some()
    }
}

/// What a request looks like to the rules.
pub struct RequestFacts<'a> {
    pub identity: Option<&'a Identity>,
    /// The policy's provider names, which scope groups (`corp-idp:analysts`).
    pub providers: &'a [String],
    pub method: &'a str,
    pub path: &'a str,
    pub model: Option<&'a str>,
    pub header: &'a dyn Fn(&str) -> Option<String>,
    /// The parsed JSON body, when there is one and it is JSON.
    pub body: Option<&'a Value>,
    pub body_bytes: u64,
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64()
}

impl JsonCondition {
    fn holds(&self, body: Option<&Value>) -> bool {
        if !self.pointer.split('/').any(|s| s == "*") {
            return self.test_one(body.and_then(|b| b.pointer(&self.pointer)));
        }
        let mut found = Vec::new();
        if let Some(b) = body {
            pointer_all(b, &self.pointer, &mut found);
        }
        if let JsonTest::Exists(want) = self.test {
            return found.is_empty() != want;
        }
        if self.every {
            !found.is_empty() && found.iter().all(|v| self.test_one(Some(v)))
        } else {
            found.iter().any(|v| self.test_one(Some(v)))
        }
    }

    fn test_one(&self, found: Option<&Value>) -> bool {
        match (&self.test, found) {
            (JsonTest::Exists(want), found) => found.is_some() == *want,
            (_, None) => false,
            (JsonTest::Equals(want), Some(v)) => v == want,
            (JsonTest::In(set), Some(v)) => set.contains(v),
            (JsonTest::Gt(n), Some(v)) => number(v).is_some_and(|x| x > *n),
            (JsonTest::Gte(n), Some(v)) => number(v).is_some_and(|x| x >= *n),
            (JsonTest::Lt(n), Some(v)) => number(v).is_some_and(|x| x < *n),
            (JsonTest::Lte(n), Some(v)) => number(v).is_some_and(|x| x <= *n),
            (JsonTest::LengthGt(n), Some(v)) => length(v).is_some_and(|l| l > *n),
            (JsonTest::LengthLt(n), Some(v)) => length(v).is_some_and(|l| l < *n),
        }
    }
}

fn length(v: &Value) -> Option<usize> {
    match v {
        Value::Array(a) => Some(a.len()),
        Value::String(s) => Some(s.chars().count()),
        Value::Object(o) => Some(o.len()),
        _ => None,
    }
}

impl When {
    /// Whether every condition holds for the request.
    pub fn holds(&self, r: &RequestFacts<'_>) -> bool {
        self.first_failure(r).is_none()
    }

    /// The first condition that does not hold, named for a person (`None` when all hold).
    /// Cheap checks come first; the prompt is extracted only when a regex is there to test.
    pub fn first_failure(&self, r: &RequestFacts<'_>) -> Option<&'static str> {
        self.failure(r, true, true)
    }

    /// Whether the request body (or the model it names, when `model_known` is false) is
    /// needed to tell whether this holds.
    pub fn undecided_without_body(&self, model_known: bool) -> bool {
        self.needs_body() || (!model_known && !self.models.is_empty())
    }

    /// The first condition on what the headers say (method, path, caller, model when known,
    /// headers) that does not hold.
    fn header_failure(&self, r: &RequestFacts<'_>, model_known: bool) -> Option<&'static str> {
        self.failure(r, model_known, false)
    }

    /// One walk over the conditions (rules are evaluated hundreds of times per request: one
    /// function, no chain of calls): those on the headers, then with `body` those on it.
    fn failure(&self, r: &RequestFacts<'_>, model_known: bool, body: bool) -> Option<&'static str> {
        let failed = |what: &'static str| Some(what);
        let member = |g: &String| r.identity.is_some_and(|i| i.member_of(g, r.providers));
        if !self.methods.is_empty() && !self.methods.iter().any(|m| m == r.method) {
            return failed("methods");
        }
        if let Some(p) = &self.path {
            let path = r.path.split('?').next().unwrap_or_default();
            let ok = match p {
                PathMatch::Exact(e) => path == e,
                PathMatch::Prefix(x) => path.starts_with(x.as_str()),
                PathMatch::Glob(g) => glob_matches(g, path),
            };
            if !ok {
                return failed("path");
            }
        }
        if !self.groups_any.is_empty() && !self.groups_any.iter().any(member) {
            return failed("groups.any");
        }
        if !self.groups_all.iter().all(member) {
            return failed("groups.all");
        }
        if self.groups_none.iter().any(member) {
            return failed("groups.none");
        }
        if !self.subjects.is_empty()
            && !r
                .identity
                .and_then(|i| i.subject.as_ref())
                .is_some_and(|s| self.subjects.contains(s))
        {
            return failed("subjects");
        }
        if model_known
            && !self.models.is_empty()
            && !r
                .model
                .is_some_and(|m| self.models.iter().any(|g| glob_matches(g, m)))
        {
            return failed("models");
        }
        if !self
            .headers
            .iter()
            .all(|(name, value)| (r.header)(name).as_deref() == Some(value.as_str()))
        {
            return failed("headers");
        }
        if !body {
            return None;
        }
        if self.body_bytes_gt.is_some_and(|n| r.body_bytes <= n) {
            return failed("body_bytes");
        }
        if !self.json.iter().all(|c| c.holds(r.body)) {
            return failed("json");
        }
        if !self.prompt.is_empty() {
            let text = prompt::extract(r.body, self.prompt_pointer.as_deref());
            let folded = prompt::normalized(&text);
            let matches = |re: &Regex| {
                re.is_match(&text) || folded.as_deref().is_some_and(|f| re.is_match(f))
            };
            if !self.prompt.iter().any(matches) {
                return failed("prompt");
            }
        }
        None
    }
}

/// The outcome of evaluating the rules for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub action: Action,
    /// The deciding rule; None when the policy's default decided.
    pub rule_id: Option<String>,
    pub reason: String,
    /// Shadow rules that matched: (rule id, what they would have done).
    pub shadowed: Vec<(String, DecisionAction)>,
}

/// Ordered rules and the default.
#[derive(Debug, Clone)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub default: Action,
    /// Block (400) a request whose body is not JSON when a rule needs it; else treat the
    /// body as absent.
    pub block_non_json: bool,
    /// Let a prompt given as token ids (which no regex can read) through prompt rules
    /// (`token_id_prompts: allow`); refused by default.
    pub allow_token_ids: bool,
    /// Worked out once from the rules, not per request.
    needs_body: bool,
    has_prompt_rules: bool,
    header_names: Vec<String>,
}

impl Default for RuleSet {
    fn default() -> Self {
        Self::new(Vec::new(), Action::Allow, true)
    }
}

impl RuleSet {
    pub fn new(rules: Vec<Rule>, default: Action, block_non_json: bool) -> Self {
        // An approval is bound to the request body (an approval for one prompt must not pass
        // another), so a policy that can ask for one waits for the body before deciding.
        let approval = |a: &Action| matches!(a, Action::RequireApproval(_));
        let needs_body = rules
            .iter()
            .any(|r| r.when.needs_body() || (!r.shadow && approval(&r.action)))
            || approval(&default);
        let rules_have_prompts = rules.iter().any(|r| !r.when.prompt.is_empty());
        let mut header_names: Vec<String> = rules
            .iter()
            .flat_map(|r| r.when.headers.iter().map(|(n, _)| n.clone()))
            .collect();
        header_names.sort();
        header_names.dedup();
        Self {
            rules,
            default,
            block_non_json,
            allow_token_ids: false,
            needs_body,
            has_prompt_rules: rules_have_prompts,
            header_names,
        }
    }

    /// Whether any rule looks at the request body (or may ask for an approval bound to it).
    pub fn needs_body(&self) -> bool {
        self.needs_body
    }

    /// Whether any rule (shadow rules too) tests the prompt.
    pub fn has_prompt_rules(&self) -> bool {
        self.has_prompt_rules
    }

    /// Whether any enforced rule, or the default, asks for approval.
    pub fn may_need_approval(&self) -> bool {
        self.rules
            .iter()
            .any(|r| !r.shadow && matches!(r.action, Action::RequireApproval(_)))
            || matches!(self.default, Action::RequireApproval(_))
    }

    /// The request headers any rule tests.
    pub fn header_names(&self) -> &[String] {
        &self.header_names
    }

    /// Each rule's outcome for the request, for a person (`--explain`, debug logs): the
    /// condition that does not hold, a shadow match, the rule that decides, the rules after it.
    pub fn explain(&self, facts: &RequestFacts<'_>) -> Vec<String> {
        let mut decided_by: Option<&str> = None;
        let mut lines = Vec::with_capacity(self.rules.len());
        for (i, rule) in self.rules.iter().enumerate() {
            let outcome = match (decided_by, rule.when.first_failure(facts)) {
                (Some(by), _) => format!("not reached (rule {by} decided)"),
                (None, Some(condition)) => format!("no match ({condition} does not hold)"),
                (None, None) if rule.shadow => format!(
                    "matches in shadow mode: would {} (recorded, not enforced)",
                    rule.action.name()
                ),
                (None, None) => {
                    decided_by = Some(&rule.id);
                    format!("MATCHES: {}", rule.action.name())
                }
            };
            lines.push(format!("rule {} ($.rules[{i}]): {outcome}", rule.id));
        }
        lines
    }

    /// The verdict before the body arrives, when what the headers say already decides it:
    /// rules are walked in order, a rule whose header conditions fail cannot match, and the
    /// first rule that could match but needs the body (or the model, when it is named in the
    /// body) leaves the decision to the body (`None`). An approval is bound to the body, so it
    /// waits for it too. Otherwise the result is the one `evaluate` gives on the whole request.
    pub fn evaluate_at_headers(
        &self,
        facts: &RequestFacts<'_>,
        model_known: bool,
    ) -> Option<Verdict> {
        let mut shadowed = Vec::new();
        for rule in &self.rules {
            if rule.when.header_failure(facts, model_known).is_some() {
                continue;
            }
            if rule.when.undecided_without_body(model_known) {
                return None;
            }
            if rule.shadow {
                shadowed.push((rule.id.clone(), rule.action.kind()));
                continue;
            }
            if matches!(rule.action, Action::RequireApproval(_)) {
                return None;
            }
            return Some(self.verdict_of(rule, shadowed));
        }
        if matches!(self.default, Action::RequireApproval(_)) {
            return None;
        }
        Some(self.default_verdict(shadowed))
    }

    fn verdict_of(&self, rule: &Rule, shadowed: Vec<(String, DecisionAction)>) -> Verdict {
        let reason = rule
            .description
            .clone()
            .unwrap_or_else(|| format!("rule {} matched", rule.id));
        Verdict {
            action: rule.action.clone(),
            rule_id: Some(rule.id.clone()),
            reason,
            shadowed,
        }
    }

    fn default_verdict(&self, shadowed: Vec<(String, DecisionAction)>) -> Verdict {
        let reason = if self.rules.is_empty() {
            "no rules configured".to_string()
        } else {
            "no rule matched: policy default".to_string()
        };
        Verdict {
            action: self.default.clone(),
            rule_id: None,
            reason,
            shadowed,
        }
    }

    /// First matching enforced rule wins; matching shadow rules are noted on the way.
    pub fn evaluate(&self, facts: &RequestFacts<'_>) -> Verdict {
        let mut shadowed = Vec::new();
        for rule in &self.rules {
            if !rule.when.holds(facts) {
                continue;
            }
            if rule.shadow {
                shadowed.push((rule.id.clone(), rule.action.kind()));
                continue;
            }
            return self.verdict_of(rule, shadowed);
        }
        self.default_verdict(shadowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn condition(pointer: &str, test: JsonTest, every: bool) -> JsonCondition {
        JsonCondition {
            pointer: pointer.into(),
            test,
            every,
        }
    }

    #[test]
    fn a_star_in_a_pointer_tests_every_element_with_any_or_every_semantics() {
        let body = json!({"inputs": [{"data": [1, 2]}, {"data": vec![0; 150]}, {"name": "x"}]});
        let any_long = condition("/inputs/*/data", JsonTest::LengthGt(100), false);
        assert!(any_long.holds(Some(&body)), "the second tensor is long");
        let every_long = condition("/inputs/*/data", JsonTest::LengthGt(100), true);
        assert!(!every_long.holds(Some(&body)));
        let every_short = condition("/inputs/*/data", JsonTest::LengthLt(200), true);
        assert!(every_short.holds(Some(&body)));
        assert!(condition("/inputs/*/name", JsonTest::Exists(true), false).holds(Some(&body)));
        assert!(!condition("/outputs/*", JsonTest::Exists(true), false).holds(Some(&body)));
        assert!(!condition("/inputs/*/data", JsonTest::LengthGt(0), true)
            .holds(Some(&json!({"inputs": []}))));
        // The first element alone (the old way) misses the long one.
        assert!(!condition("/inputs/0/data", JsonTest::LengthGt(100), false).holds(Some(&body)));
    }
}
