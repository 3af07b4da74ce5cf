//! Whether a JSON text repeats a member name in any object. serde_json keeps the last of
//! repeated members, another parser may keep the first; a token whose header or claims
//! repeat a name (`"sub"` twice) could be read one way here and another way elsewhere.
//! RFC 7515 section 4 and RFC 7519 section 4 let a verifier refuse such JSON, and Vigil does.

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::BTreeSet;
use std::fmt;

/// The first repeated member name, if any (a JSON syntax error is not reported here).
pub fn first_repeated_member(text: &[u8]) -> Option<String> {
    let mut de = serde_json::Deserializer::from_slice(text);
    match de.deserialize_any(Check) {
        Err(e) => {
            let message = e.to_string();
            message
                .strip_prefix("repeated member ")
                .map(|rest| rest.split(" at line").next().unwrap_or(rest).to_string())
        }
        Ok(()) => None,
    }
}

struct Check;

impl<'de> de::DeserializeSeed<'de> for Check {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(Check)
    }
}

impl<'de> Visitor<'de> for Check {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Check)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = BTreeSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("repeated member {key:?}")));
            }
            map.next_value_seed(Check)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_member_is_found_at_any_depth_and_unique_ones_pass() {
        assert_eq!(
            first_repeated_member(br#"{"sub":"a","sub":"b"}"#).as_deref(),
            Some("\"sub\"")
        );
        assert_eq!(
            first_repeated_member(br#"{"x":[{"a":1,"b":{"c":1,"c":2}}]}"#).as_deref(),
            Some("\"c\"")
        );
        // Escaped and unescaped spellings of one name are one name.
        assert!(first_repeated_member(br#"{"sub":"a","\u0073ub":"b"}"#).is_some());
        assert_eq!(first_repeated_member(br#"{"a":1,"b":[1,{"a":2}]}"#), None);
        assert_eq!(first_repeated_member(b"not json"), None);
    }
}
