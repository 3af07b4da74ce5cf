//! Why a rule matched, in words an approver reads: each condition of the rule, as it held for
//! this request, and for a prompt condition where in the prompt its pattern matched. Only
//! the deciding rule of a request that needs approval is explained, so this costs nothing
//! on the path every request takes.

use super::{prompt, JsonTest, PathMatch, RequestFacts, When};

/// Why a rule held for one request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Why {
    /// Each condition of the rule, as a sentence.
    pub conditions: Vec<String>,
    /// Where the prompt condition matched.
    pub prompt: Option<PromptMatch>,
}

/// The prompt a pattern matched in, and the byte range of the match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptMatch {
    pub text: String,
    pub start: usize,
    pub end: usize,
    /// The pattern matched the prompt only once Unicode-normalized (NFKC, invisible
    /// characters removed): `text` is that normalized view.
    pub normalized: bool,
}

fn list(items: &[String]) -> String {
    items.join(", ")
}

fn test_words(t: &JsonTest) -> String {
    match t {
        JsonTest::Equals(v) => format!("equals {v}"),
        JsonTest::In(vs) => format!(
            "is one of {}",
            vs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        JsonTest::Gt(n) => format!("is over {n}"),
        JsonTest::Gte(n) => format!("is at least {n}"),
        JsonTest::Lt(n) => format!("is under {n}"),
        JsonTest::Lte(n) => format!("is at most {n}"),
        JsonTest::LengthGt(n) => format!("is longer than {n}"),
        JsonTest::LengthLt(n) => format!("is shorter than {n}"),
        JsonTest::Exists(true) => "is present".into(),
        JsonTest::Exists(false) => "is absent".into(),
    }
}

impl When {
    /// The conditions of this rule as they held for `r`, and where its prompt pattern matched.
    pub fn why(&self, r: &RequestFacts<'_>) -> Why {
        let mut c = Vec::new();
        if !self.methods.is_empty() {
            c.push(format!(
                "method {} is one of {}",
                r.method,
                list(&self.methods)
            ));
        }
        if let Some(p) = &self.path {
            let (how, pattern) = match p {
                PathMatch::Exact(x) => ("is", x),
                PathMatch::Prefix(x) => ("starts with", x),
                PathMatch::Glob(x) => ("matches", x),
            };
            c.push(format!("path {} {how} {pattern}", r.path));
        }
        if !self.groups_any.is_empty() {
            c.push(format!("caller is in one of {}", list(&self.groups_any)));
        }
        if !self.groups_all.is_empty() {
            c.push(format!("caller is in all of {}", list(&self.groups_all)));
        }
        if !self.groups_none.is_empty() {
            c.push(format!("caller is in none of {}", list(&self.groups_none)));
        }
        if !self.subjects.is_empty() {
            c.push(format!("caller is one of {}", list(&self.subjects)));
        }
        if !self.models.is_empty() {
            c.push(format!(
                "model {} matches one of {}",
                r.model.unwrap_or("(none)"),
                list(&self.models)
            ));
        }
        for (name, value) in &self.headers {
            c.push(format!("header {name} is {value:?}"));
        }
        if let Some(n) = self.body_bytes_gt {
            c.push(format!("body is {} bytes, over {n}", r.body_bytes));
        }
        for j in &self.json {
            let each = if j.every {
                "every value at"
            } else {
                "a value at"
            };
            c.push(format!("{each} {} {}", j.pointer, test_words(&j.test)));
        }
        let mut found = None;
        if !self.prompt.is_empty() {
            let text = prompt::extract(r.body, self.prompt_pointer.as_deref());
            let folded = prompt::normalized(&text);
            for re in &self.prompt {
                let hit = re
                    .find(&text)
                    .map(|m| (m.start(), m.end(), false))
                    .or_else(|| {
                        let f = folded.as_deref()?;
                        re.find(f).map(|m| (m.start(), m.end(), true))
                    });
                if let Some((start, end, normalized)) = hit {
                    c.push(format!(
                        "prompt matches /{}/{}",
                        re.as_str(),
                        if normalized {
                            " once Unicode-normalized"
                        } else {
                            ""
                        }
                    ));
                    let text = if normalized {
                        folded.clone().unwrap_or_default()
                    } else {
                        text
                    };
                    found = Some(PromptMatch {
                        text,
                        start,
                        end,
                        normalized,
                    });
                    break;
                }
            }
        }
        Why {
            conditions: c,
            prompt: found,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex_lite::Regex;
    use serde_json::json;

    fn facts<'a>(
        body: &'a serde_json::Value,
        header: &'a dyn Fn(&str) -> Option<String>,
    ) -> RequestFacts<'a> {
        RequestFacts {
            identity: None,
            providers: &[],
            method: "POST",
            path: "/v1/chat/completions",
            model: Some("llama-3.1-70b"),
            header,
            body: Some(body),
            body_bytes: 120,
        }
    }

    #[test]
    fn the_prompt_match_is_located_and_every_condition_is_named() {
        let when = When {
            methods: vec!["POST".into()],
            models: vec!["llama-*".into()],
            prompt: vec![Regex::new("(?i)wire transfer").unwrap()],
            ..When::default()
        };
        let body = json!({"messages": [{"role": "user", "content": "Hello. Please make a Wire Transfer now."}]});
        let none = |_: &str| None;
        let why = when.why(&facts(&body, &none));
        assert_eq!(
            why.conditions,
            vec![
                "method POST is one of POST",
                "model llama-3.1-70b matches one of llama-*",
                "prompt matches /(?i)wire transfer/"
            ]
        );
        let m = why.prompt.unwrap();
        assert_eq!(&m.text[m.start..m.end], "Wire Transfer");
        assert!(!m.normalized);
    }

    #[test]
    fn a_match_only_the_normalized_prompt_has_is_shown_in_that_view() {
        let when = When {
            prompt: vec![Regex::new("wire transfer").unwrap()],
            ..When::default()
        };
        // Fullwidth letters and a zero-width space: only the NFKC view reads "wire transfer".
        let body = json!({"prompt": "please ｗｉｒｅ\u{200B} transfer"});
        let none = |_: &str| None;
        let m = when.why(&facts(&body, &none)).prompt.unwrap();
        assert!(m.normalized);
        assert_eq!(&m.text[m.start..m.end], "wire transfer");
    }
}
