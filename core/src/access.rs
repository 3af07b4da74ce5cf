//! Which callers may use which models (`models` in the policy): entries name a model (exact
//! or a glob with `*` and `?`) and the groups or subjects allowed to call it. A request for
//! any other model is denied (403); a request that names no model where one is required is
//! malformed (400). `GET` on a list path (`/v1/models`) is allowed, and its answer is
//! filtered down to the models the caller may use.

use crate::identity::Identity;
use crate::json_reader::{describe, Errors, ObjectReader};
use serde_json::Value;

/// Where a request names its model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// The JSON body's `model` field (OpenAI-style APIs).
    Body,
    /// The path segment after `/models/` (KServe `/v2/models/{name}/infer`, Vertex-style
    /// `/v1/models/{name}:predict`), up to `/` or `:`.
    Path,
    /// A request header.
    Header(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRule {
    pub model: String,
    pub groups: Vec<String>,
    pub subjects: Vec<String>,
    pub everyone: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelAccess {
    pub source: ModelSource,
    pub allow: Vec<ModelRule>,
    pub list_paths: Vec<String>,
}

/// Matches `*` (any run) and `?` (one character); everything else literally.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

impl ModelRule {
    fn admits(&self, identity: Option<&Identity>, providers: &[String]) -> bool {
        if self.everyone {
            return true;
        }
        let Some(who) = identity else { return false };
        who.subject
            .as_ref()
            .is_some_and(|s| self.subjects.contains(s))
            || self.groups.iter().any(|g| who.member_of(g, providers))
    }
}

impl ModelAccess {
    /// Whether `identity` may call `model`; `providers` scope the groups named.
    pub fn allows(&self, model: &str, identity: Option<&Identity>, providers: &[String]) -> bool {
        self.allow
            .iter()
            .any(|r| glob_matches(&r.model, model) && r.admits(identity, providers))
    }

    pub fn is_list_request(&self, method: &str, path: &str) -> bool {
        let path = path.split('?').next().unwrap_or_default();
        method == "GET" && self.list_paths.iter().any(|p| p == path)
    }

    /// The model named in a path, when the source is the path.
    pub fn model_from_path(path: &str) -> Option<String> {
        let path = path.split('?').next().unwrap_or_default();
        let rest = &path[path.find("/models/")? + "/models/".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| *c != '/' && *c != ':')
            .collect();
        (!name.is_empty()).then_some(name)
    }

    /// Keeps the entries of an OpenAI-style list (`{"data": [{"id": ...}]}`) the caller may
    /// use; `None` when the body is not such a list (it is then refused, never passed whole).
    pub fn filter_list(
        &self,
        body: &[u8],
        identity: Option<&Identity>,
        providers: &[String],
    ) -> Option<Vec<u8>> {
        let mut list: Value = serde_json::from_slice(body).ok()?;
        let data = list.get_mut("data")?.as_array_mut()?;
        data.retain(|entry| {
            entry
                .get("id")
                .and_then(Value::as_str)
                .is_some_and(|id| self.allows(id, identity, providers))
        });
        serde_json::to_vec(&list).ok()
    }
}

/// Why a request's model could not be read from its body.
pub fn model_from_body(body: &[u8]) -> Result<String, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the request body is not JSON ({e})"))?;
    model_in_json(&value)
}

/// The model a parsed JSON body names (its `model` field).
pub fn model_in_json(value: &Value) -> Result<String, String> {
    match value.get("model") {
        Some(Value::String(m)) if !m.is_empty() => Ok(m.clone()),
        Some(other) => Err(format!(
            "the request body's model is not a model name: {}",
            describe(other)
        )),
        None => Err("the request body names no model".into()),
    }
}

/// Reads `models`.
pub fn read_models(path: &str, value: &Value, errors: &mut Errors) -> Option<ModelAccess> {
    let mut obj = ObjectReader::new(path, value, errors)?;
    let source = match obj.string("from", errors).as_deref() {
        None | Some("body") => Some(ModelSource::Body),
        Some("path") => Some(ModelSource::Path),
        Some("header") => match obj.string("header", errors) {
            Some(h) if !h.is_empty() => Some(ModelSource::Header(h.to_ascii_lowercase())),
            _ => {
                errors.push(
                    path,
                    "\"from\": \"header\" needs \"header\", the header's name",
                );
                None
            }
        },
        Some(other) => {
            errors.push(
                &obj.field_path("from"),
                format!("expected \"body\", \"path\" or \"header\", found {other:?}"),
            );
            None
        }
    };
    if !matches!(source, Some(ModelSource::Header(_))) && obj.get("header").is_some() {
        errors.push(
            &obj.field_path("header"),
            "is only used with \"from\": \"header\"",
        );
    }
    let list_paths = obj
        .string_list("list_paths", errors)
        .unwrap_or_else(|| vec!["/v1/models".into()]);
    let allow_path = obj.field_path("allow");
    let mut allow = Vec::new();
    match obj.required("allow", errors) {
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if let Some(rule) = read_rule(&format!("{allow_path}[{i}]"), item, errors) {
                    allow.push(rule);
                }
            }
        }
        Some(other) => errors.push(
            &allow_path,
            format!("expected a list of model rules, found {}", describe(other)),
        ),
        None => {}
    }
    obj.finish(errors);
    Some(ModelAccess {
        source: source?,
        allow,
        list_paths,
    })
}

fn read_rule(path: &str, value: &Value, errors: &mut Errors) -> Option<ModelRule> {
    let mut obj = ObjectReader::new(path, value, errors)?;
    let model = obj.required_string("model", errors);
    let groups = obj.string_list("groups", errors).unwrap_or_default();
    let subjects = obj.string_list("subjects", errors).unwrap_or_default();
    let everyone = obj.boolean("everyone", errors).unwrap_or(false);
    if groups.is_empty() && subjects.is_empty() && !everyone {
        errors.push(path, "names no \"groups\" or \"subjects\" (say \"everyone\": true to open a model to every caller)");
    }
    obj.finish(errors);
    Some(ModelRule {
        model: model?,
        groups,
        subjects,
        everyone,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(groups: &[&str]) -> Identity {
        Identity {
            provider: "p".into(),
            issuer: None,
            subject: Some("alice".into()),
            email: None,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            expires_at: None,
        }
    }

    fn access() -> ModelAccess {
        let v = serde_json::json!({"allow": [
            {"model": "llama-3.1-*", "groups": ["analysts"]},
            {"model": "bge-large-en", "everyone": true},
            {"model": "credit-score-v?", "subjects": ["alice"]}
        ]});
        let mut errors = Errors::default();
        let a = read_models("$.models", &v, &mut errors).unwrap();
        assert!(errors.is_empty(), "{:?}", errors.into_vec());
        a
    }

    #[test]
    fn globs_match_whole_names() {
        assert!(glob_matches("llama-3.1-*", "llama-3.1-8b-instruct"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("a?c", "abc"));
        assert!(!glob_matches("llama-3.1-*", "xllama-3.1-8b"));
        assert!(!glob_matches("gpt", "gpt-4"));
        assert!(glob_matches("a*b*c", "aXXbYYc"));
    }

    #[test]
    fn groups_subjects_and_everyone_decide_access() {
        let a = access();
        assert!(a.allows("llama-3.1-70b", Some(&who(&["analysts"])), &[]));
        assert!(!a.allows("llama-3.1-70b", Some(&who(&["tellers"])), &[]));
        assert!(a.allows("bge-large-en", None, &[]));
        assert!(a.allows("credit-score-v2", Some(&who(&[])), &[]));
        assert!(!a.allows("mistral-7b", Some(&who(&["analysts"])), &[]));
    }

    #[test]
    fn model_lists_are_filtered_to_what_the_caller_may_use() {
        let body = br#"{"object":"list","data":[{"id":"llama-3.1-8b"},{"id":"mistral-7b"},{"id":"bge-large-en"}]}"#;
        let filtered = access()
            .filter_list(body, Some(&who(&["analysts"])), &[])
            .unwrap();
        assert_eq!(
            String::from_utf8(filtered).unwrap(),
            r#"{"data":[{"id":"llama-3.1-8b"},{"id":"bge-large-en"}],"object":"list"}"#
        );
        assert!(access().filter_list(b"not json", None, &[]).is_none());
    }

    #[test]
    fn models_are_read_from_paths_and_bodies() {
        assert_eq!(
            ModelAccess::model_from_path("/v2/models/credit-score-v2/infer").as_deref(),
            Some("credit-score-v2")
        );
        assert_eq!(
            ModelAccess::model_from_path("/v1/models/gemma:predict?x=1").as_deref(),
            Some("gemma")
        );
        assert_eq!(ModelAccess::model_from_path("/v1/chat/completions"), None);
        assert_eq!(model_from_body(br#"{"model":"m"}"#), Ok("m".into()));
        assert_eq!(
            model_from_body(br#"{"model":5}"#),
            Err("the request body's model is not a model name: number 5".into())
        );
        assert!(model_from_body(b"{")
            .unwrap_err()
            .starts_with("the request body is not JSON"));
    }

    #[test]
    fn bad_rules_are_reported_with_their_paths() {
        let v = serde_json::json!({"from": "query", "allow": [{"model": "m"}, {"groups": ["g"]}]});
        let mut errors = Errors::default();
        read_models("$.models", &v, &mut errors);
        let text: Vec<String> = errors.into_vec().iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            vec![
                "$.models.from: expected \"body\", \"path\" or \"header\", found \"query\"",
                "$.models.allow[0]: names no \"groups\" or \"subjects\" (say \"everyone\": true to open a model to every caller)",
                "$.models.allow[1]: missing required field \"model\""
            ]
        );
    }
}
