//! The canonical JSON form that record hashes, record HMACs and policy digests cover.
//!
//! Object keys sorted by their UTF-8 bytes (the same order as Unicode code points), no
//! whitespace, strings and numbers written as serde_json writes them. Sorting is done here
//! rather than left to serde_json's map, because a crate elsewhere in a build that turns on
//! serde_json's `preserve_order` feature would silently change the map's order and with it
//! every digest. Python reproduces it with
//! `json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`.

use serde_json::Value;

/// The canonical bytes of `value`.
pub fn to_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    write(value, &mut out);
    out
}

/// The canonical bytes of an object without its top-level keys in `leave_out` (a record
/// without its own digests), written without copying the object.
pub fn to_vec_without(value: &Value, leave_out: &[&str]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    match value {
        Value::Object(map) => write_object(
            map.iter().filter(|(k, _)| !leave_out.contains(&k.as_str())),
            &mut out,
        ),
        other => write(other, &mut out),
    }
    out
}

fn write_object<'a>(entries: impl Iterator<Item = (&'a String, &'a Value)>, out: &mut Vec<u8>) {
    let mut entries: Vec<(&String, &Value)> = entries.collect();
    entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    out.push(b'{');
    for (i, (key, item)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(key, out);
        out.push(b':');
        write(item, out);
    }
    out.push(b'}');
}

/// Appends the canonical bytes of `value` to `out`.
pub fn write(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => write_object(map.iter(), out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out);
            }
            out.push(b']');
        }
        Value::String(s) => write_string(s, out),
        // Null, booleans and numbers have one serde_json spelling each.
        other => {
            // Writing to a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, other);
        }
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    let _ = serde_json::to_writer(&mut *out, s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_sorted_at_every_depth_and_whitespace_dropped() {
        let v = json!({"b": 1, "a": {"z": [1, {"y": true, "x": null}], "c": "s"}});
        assert_eq!(
            String::from_utf8(to_vec(&v)).unwrap(),
            r#"{"a":{"c":"s","z":[1,{"x":null,"y":true}]},"b":1}"#
        );
    }

    #[test]
    fn strings_use_the_short_escapes_and_keep_non_ascii_as_is() {
        let v = json!({"k": "tab\t quote\" nl\n bell\u{7} é €"});
        assert_eq!(
            String::from_utf8(to_vec(&v)).unwrap(),
            "{\"k\":\"tab\\t quote\\\" nl\\n bell\\u0007 é €\"}"
        );
    }

    #[test]
    fn the_same_value_parsed_from_differently_escaped_text_is_the_same_bytes() {
        let a: Value = serde_json::from_str(r#"{"b":"\u00e9\/","a":1}"#).unwrap();
        let b: Value = serde_json::from_str("{ \"a\" : 1, \"b\" : \"é/\" }").unwrap();
        assert_eq!(to_vec(&a), to_vec(&b));
    }

    #[test]
    fn keys_sort_by_code_point_not_by_utf16_units() {
        // U+FF01 sorts before U+1F600 in code points (and UTF-8 bytes), after it in UTF-16.
        let v = json!({"\u{1F600}": 1, "\u{FF01}": 2});
        assert_eq!(
            String::from_utf8(to_vec(&v)).unwrap(),
            "{\"\u{FF01}\":2,\"\u{1F600}\":1}"
        );
    }
}
