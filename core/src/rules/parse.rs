//! Reading `rules`, `default_action` and `non_json_body` from a policy, with an error for
//! every problem, each naming its JSON path and the bad value.

use super::{
    Action, ApprovalMode, ApprovalRule, JsonCondition, JsonTest, PathMatch, Rule, RuleSet, When,
};
use crate::json_reader::{describe, read_string, Errors, ObjectReader};
use regex_lite::Regex;
use serde_json::Value;

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Reads the rule set from the policy's root object reader.
pub fn read_rules(root: &mut ObjectReader<'_>, errors: &mut Errors) -> Option<RuleSet> {
    let mut rules: Vec<Rule> = Vec::new();
    let mut default_action = Action::Allow;
    let mut block_non_json = true;
    let rules_path = root.field_path("rules");
    if let Some(value) = root.get("rules") {
        match value {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let at = format!("{rules_path}[{i}]");
                    if let Some(rule) = read_rule(&at, item, errors) {
                        if rules.iter().any(|r| r.id == rule.id) {
                            errors.push(
                                &format!("{at}.id"),
                                format!("duplicate rule id {:?}", rule.id),
                            );
                        }
                        rules.push(rule);
                    }
                }
            }
            other => errors.push(
                &rules_path,
                format!("expected a list of rules, found {}", describe(other)),
            ),
        }
    }
    if let Some(v) = root.get("default_action") {
        if let Some(action) = read_action(&root.field_path("default_action"), v, errors) {
            default_action = action;
        }
    }
    match root.string("non_json_body", errors).as_deref() {
        None | Some("block") => {}
        Some("ignore") => block_non_json = false,
        Some(other) => errors.push(
            &root.field_path("non_json_body"),
            format!("expected \"block\" or \"ignore\", found {other:?}"),
        ),
    }
    let mut set = RuleSet::new(rules, default_action, block_non_json);
    match root.string("token_id_prompts", errors).as_deref() {
        None | Some("block") => {}
        Some("allow") => set.allow_token_ids = true,
        Some(other) => errors.push(
            &root.field_path("token_id_prompts"),
            format!("expected \"block\" or \"allow\", found {other:?}"),
        ),
    }
    Some(set)
}

fn read_rule(path: &str, value: &Value, errors: &mut Errors) -> Option<Rule> {
    let mut obj = ObjectReader::new(path, value, errors)?;
    let id = obj.required_string("id", errors);
    if let Some(id) = &id {
        if !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            errors.push(
                &obj.field_path("id"),
                format!("must use only letters, digits, '-', '_' and '.', found {id:?}"),
            );
        }
    }
    let description = obj.string("description", errors);
    let when = match obj.get("when") {
        Some(v) => read_when(&obj.field_path("when"), v, errors),
        None => Some(When::default()),
    };
    let action = match obj.required("action", errors) {
        Some(v) => read_action(&obj.field_path("action"), v, errors),
        None => None,
    };
    let shadow = match obj.string("mode", errors).as_deref() {
        None | Some("enforce") => false,
        Some("shadow") => true,
        Some(other) => {
            errors.push(
                &obj.field_path("mode"),
                format!("expected \"enforce\" or \"shadow\", found {other:?}"),
            );
            false
        }
    };
    obj.finish(errors);
    Some(Rule {
        id: id?,
        description,
        when: when?,
        action: action?,
        shadow,
    })
}

fn non_empty_list(
    obj: &mut ObjectReader<'_>,
    name: &'static str,
    errors: &mut Errors,
) -> Vec<String> {
    let list = obj.string_list(name, errors).unwrap_or_default();
    if obj_has_empty(obj, name, &list) {
        errors.push(
            &obj.field_path(name),
            "must not be empty (leave the condition out instead)",
        );
    }
    list
}

fn obj_has_empty(obj: &mut ObjectReader<'_>, name: &'static str, list: &[String]) -> bool {
    list.is_empty()
        && obj
            .get(name)
            .is_some_and(|v| v.as_array().is_some_and(Vec::is_empty))
}

fn read_when(path: &str, value: &Value, errors: &mut Errors) -> Option<When> {
    let mut obj = ObjectReader::new(path, value, errors)?;
    let mut when = When::default();
    if let Some(groups) = obj.get("groups") {
        let gpath = obj.field_path("groups");
        if let Some(mut g) = ObjectReader::new(&gpath, groups, errors) {
            when.groups_any = non_empty_list(&mut g, "any", errors);
            when.groups_all = non_empty_list(&mut g, "all", errors);
            when.groups_none = non_empty_list(&mut g, "none", errors);
            if when.groups_any.is_empty()
                && when.groups_all.is_empty()
                && when.groups_none.is_empty()
                && groups.as_object().is_some_and(|m| m.is_empty())
            {
                errors.push(&gpath, "needs \"any\", \"all\" or \"none\"");
            }
            g.finish(errors);
        }
    }
    when.subjects = non_empty_list(&mut obj, "subjects", errors);
    when.methods = non_empty_list(&mut obj, "methods", errors);
    for (i, m) in when.methods.iter().enumerate() {
        if !METHODS.contains(&m.as_str()) {
            errors.push(
                &format!("{path}.methods[{i}]"),
                format!(
                    "expected an upper-case HTTP method ({}), found {m:?}",
                    METHODS.join(", ")
                ),
            );
        }
    }
    if let Some(v) = obj.get("path") {
        when.path = read_path_match(&obj.field_path("path"), v, errors);
    }
    when.models = non_empty_list(&mut obj, "models", errors);
    if let Some(v) = obj.get("headers") {
        let hpath = obj.field_path("headers");
        match v {
            Value::Object(map) if !map.is_empty() => {
                for (name, value) in map {
                    if let Some(value) = read_string(&format!("{hpath}.{name}"), value, errors) {
                        when.headers.push((name.to_ascii_lowercase(), value));
                    }
                }
            }
            other => errors.push(
                &hpath,
                format!(
                    "expected an object of header names to values, found {}",
                    describe(other)
                ),
            ),
        }
    }
    if let Some(v) = obj.get("prompt") {
        let ppath = obj.field_path("prompt");
        if let Some(mut p) = ObjectReader::new(&ppath, v, errors) {
            let patterns = p.string_list("matches", errors);
            match patterns {
                Some(list) if !list.is_empty() => {
                    for (i, pattern) in list.iter().enumerate() {
                        let at = format!("{ppath}.matches[{i}]");
                        match Regex::new(pattern) {
                            Ok(re) => when.prompt.push(re),
                            Err(e) => errors.push(
                                &at,
                                format!(
                                    "invalid regex {pattern:?}: {}",
                                    e.to_string().lines().last().unwrap_or_default().trim()
                                ),
                            ),
                        }
                    }
                }
                Some(_) => errors.push(&format!("{ppath}.matches"), "must not be empty"),
                None => errors.push(&ppath, "missing required field \"matches\""),
            }
            if let Some(ptr) = p.string("pointer", errors) {
                if !(ptr.is_empty() || ptr.starts_with('/')) {
                    errors.push(
                        &p.field_path("pointer"),
                        format!("a JSON pointer starts with '/', found {ptr:?}"),
                    );
                }
                when.prompt_pointer = Some(ptr);
            }
            p.finish(errors);
        }
    }
    if let Some(v) = obj.get("json") {
        let jpath = obj.field_path("json");
        match v {
            Value::Array(items) if !items.is_empty() => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(c) = read_json_condition(&format!("{jpath}[{i}]"), item, errors) {
                        when.json.push(c);
                    }
                }
            }
            other => errors.push(
                &jpath,
                format!(
                    "expected a non-empty list of JSON conditions, found {}",
                    describe(other)
                ),
            ),
        }
    }
    if let Some(v) = obj.get("body_bytes") {
        let bpath = obj.field_path("body_bytes");
        if let Some(mut b) = ObjectReader::new(&bpath, v, errors) {
            when.body_bytes_gt = b.integer("gt", 0, u64::MAX >> 1, errors);
            if when.body_bytes_gt.is_none() && b.get("gt").is_none() {
                errors.push(&bpath, "missing required field \"gt\"");
            }
            b.finish(errors);
        }
    }
    obj.finish(errors);
    Some(when)
}

fn read_path_match(path: &str, value: &Value, errors: &mut Errors) -> Option<PathMatch> {
    let mut obj = ObjectReader::new(path, value, errors)?;
    let exact = obj.string("exact", errors);
    let prefix = obj.string("prefix", errors);
    let glob = obj.string("glob", errors);
    obj.finish(errors);
    let given: Vec<(PathMatch, &String)> = [
        exact.as_ref().map(|e| (PathMatch::Exact(e.clone()), e)),
        prefix.as_ref().map(|p| (PathMatch::Prefix(p.clone()), p)),
        glob.as_ref().map(|g| (PathMatch::Glob(g.clone()), g)),
    ]
    .into_iter()
    .flatten()
    .collect();
    match given.as_slice() {
        [(m, text)] if text.starts_with('/') => Some(m.clone()),
        [(_, text)] => {
            errors.push(path, format!("a path starts with '/', found {text:?}"));
            None
        }
        _ => {
            errors.push(
                path,
                "needs exactly one of \"exact\", \"prefix\" or \"glob\"",
            );
            None
        }
    }
}

fn read_json_condition(path: &str, value: &Value, errors: &mut Errors) -> Option<JsonCondition> {
    let mut obj = ObjectReader::new(path, value, errors)?;
    let pointer = obj.required_string("pointer", errors);
    if let Some(p) = &pointer {
        if !p.starts_with('/') {
            errors.push(
                &obj.field_path("pointer"),
                format!("a JSON pointer starts with '/', found {p:?}"),
            );
        }
    }
    let mut tests = Vec::new();
    // Tests named, valid or not: a bad one is reported once, not also as "missing".
    let mut named = 0;
    for name in [
        "gt",
        "gte",
        "lt",
        "lte",
        "length_gt",
        "length_lt",
        "equals",
        "in",
        "exists",
    ] {
        if value.get(name).is_some() {
            named += 1;
        }
    }
    for name in ["gt", "gte", "lt", "lte"] {
        if let Some(v) = obj.get(name) {
            match v.as_f64() {
                Some(n) => tests.push(match name {
                    "gt" => JsonTest::Gt(n),
                    "gte" => JsonTest::Gte(n),
                    "lt" => JsonTest::Lt(n),
                    _ => JsonTest::Lte(n),
                }),
                None => errors.push(
                    &obj.field_path(name),
                    format!("expected a number, found {}", describe(v)),
                ),
            }
        }
    }
    for name in ["length_gt", "length_lt"] {
        if let Some(v) = obj.get(name) {
            match v.as_u64() {
                Some(n) => tests.push(if name == "length_gt" {
                    JsonTest::LengthGt(n as usize)
                } else {
                    JsonTest::LengthLt(n as usize)
                }),
                None => errors.push(
                    &obj.field_path(name),
                    format!("expected a whole number, found {}", describe(v)),
                ),
            }
        }
    }
    if let Some(v) = obj.get("equals") {
        tests.push(JsonTest::Equals(v.clone()));
    }
    if let Some(v) = obj.get("in") {
        match v {
            Value::Array(set) if !set.is_empty() => tests.push(JsonTest::In(set.clone())),
            other => errors.push(
                &obj.field_path("in"),
                format!("expected a non-empty list, found {}", describe(other)),
            ),
        }
    }
    if let Some(b) = obj.boolean("exists", errors) {
        tests.push(JsonTest::Exists(b));
    }
    let every = obj.boolean("every", errors).unwrap_or(false);
    if every
        && !pointer
            .as_deref()
            .is_some_and(|p| p.split('/').any(|s| s == "*"))
    {
        errors.push(
            &obj.field_path("every"),
            "applies only to a pointer with a * segment",
        );
    }
    obj.finish(errors);
    if named != 1 {
        errors.push(path, format!("needs exactly one test (equals, in, gt, gte, lt, lte, length_gt, length_lt, exists), found {named}"));
        return None;
    }
    if tests.len() != 1 {
        return None;
    }
    Some(JsonCondition {
        pointer: pointer?,
        test: tests.remove(0),
        every,
    })
}

fn read_action(path: &str, value: &Value, errors: &mut Errors) -> Option<Action> {
    let mut obj = ObjectReader::new(path, value, errors)?;
    let kind = obj.required_string("type", errors);
    let action = match kind.as_deref() {
        Some("allow") => Some(Action::Allow),
        Some("block") => {
            let status = obj.integer("status", 400, 599, errors).unwrap_or(403) as u32;
            let message = obj
                .string("message", errors)
                .unwrap_or_else(|| "blocked by policy".into());
            Some(Action::Block { status, message })
        }
        Some("require_approval") => {
            let approvers = obj.string_list("approvers", errors).unwrap_or_default();
            if approvers.is_empty() {
                errors.push(
                    &obj.field_path("approvers"),
                    "an approval needs at least one approver group",
                );
            }
            let ttl_s = obj
                .integer("ttl_s", 60, 7 * 24 * 3600, errors)
                .unwrap_or(3600);
            let approved_ttl_s = obj
                .integer("approved_ttl_s", 60, 7 * 24 * 3600, errors)
                .unwrap_or(900);
            let uses = obj.integer("uses", 1, 1000, errors).unwrap_or(1) as u32;
            let mode = match obj.string("mode", errors).as_deref() {
                None | Some("ticket") => ApprovalMode::Ticket,
                Some("wait") => ApprovalMode::Wait,
                Some(other) => {
                    errors.push(
                        &obj.field_path("mode"),
                        format!("expected \"ticket\" or \"wait\", found {other:?}"),
                    );
                    ApprovalMode::Ticket
                }
            };
            // Envoy's stream idle timeout (5 minutes by default) ends a held request that
            // waits longer, so a longer wait is refused here rather than cut there.
            let max_wait_s = obj.integer("max_wait_s", 1, 300, errors);
            if max_wait_s.is_some() && mode != ApprovalMode::Wait {
                errors.push(
                    &obj.field_path("max_wait_s"),
                    "applies only to \"mode\": \"wait\"",
                );
            }
            Some(Action::RequireApproval(ApprovalRule {
                approvers,
                ttl_s,
                approved_ttl_s,
                uses,
                mode,
                max_wait_s: max_wait_s.unwrap_or(60),
            }))
        }
        Some(other) => {
            errors.push(
                &obj.field_path("type"),
                format!("expected \"allow\", \"block\" or \"require_approval\", found {other:?}"),
            );
            None
        }
        None => None,
    };
    obj.finish(errors);
    action
}
