//! The prompt text of a request body, for prompt rules: OpenAI chat `messages[].content`
//! (strings, or the text parts of content arrays), completions `prompt`, embeddings `input`
//! (string or list of strings), or, for other APIs, whatever a JSON pointer finds (strings
//! anywhere beneath it). Parts are joined with newlines.

use serde_json::Value;

fn strings_in(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|i| strings_in(i, out)),
        Value::Object(map) => map.values().for_each(|i| strings_in(i, out)),
        _ => {}
    }
}

/// The prompt text of `body` (empty when there is none).
pub fn extract(body: Option<&Value>, pointer: Option<&str>) -> String {
    let Some(body) = body else {
        return String::new();
    };
    let mut parts = Vec::new();
    if let Some(p) = pointer {
        if let Some(v) = body.pointer(p) {
            strings_in(v, &mut parts);
        }
        return parts.join("\n");
    }
    if let Some(Value::Array(messages)) = body.get("messages") {
        for m in messages {
            match m.get("content") {
                Some(Value::String(s)) => parts.push(s.clone()),
                Some(Value::Array(items)) => {
                    for item in items {
                        if let Some(t) = item.get("text").and_then(Value::as_str) {
                            parts.push(t.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
    }
    for key in ["prompt", "input"] {
        if let Some(v) = body.get(key) {
            strings_in(v, &mut parts);
        }
    }
    parts.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chat_completions_and_embeddings_prompts_are_found() {
        let chat = json!({"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": [{"type": "text", "text": "my SSN"}, {"type": "image_url"}]}]});
        assert_eq!(extract(Some(&chat), None), "be brief\nmy SSN");
        assert_eq!(extract(Some(&json!({"prompt": ["a", "b"]})), None), "a\nb");
        assert_eq!(extract(Some(&json!({"input": "x"})), None), "x");
        assert_eq!(
            extract(
                Some(&json!({"instances": [{"text": "t1"}, {"text": "t2"}]})),
                Some("/instances")
            ),
            "t1\nt2"
        );
        assert_eq!(extract(None, None), "");
    }
}
